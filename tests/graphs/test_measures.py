"""Measures: published values, identities, limits, peers (networkx), errors, grids."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from theorylab import graphs as g
from theorylab.core import adjusted_rand_index

from .strategies import connected_graphs, glued_graphs, kivimaki_triangle, path_graph

pytestmark = pytest.mark.x64

RHO_P4 = 2 * np.cos(np.pi / 5)  # spectral radius of the path P4 (golden ratio)


def chain_values(dist):
    """Rescale so D12 + D23 + D34 = 3 and return (D12, D23, D13, D14)."""
    d = np.asarray(dist)
    d = 3 * d / (d[0, 1] + d[1, 2] + d[2, 3])
    return np.array([d[0, 1], d[1, 2], d[0, 2], d[0, 3]])


# Chebotarev, "Studying new classes of graph metrics" (pygkernels tests/article_comparison)
CHEBOTAREV_P4 = [
    ("SP", None, [1, 1, 2, 3]),
    ("CT", None, [1, 1, 2, 3]),
    ("Walk", g.walk_t_from_alpha(1.0, RHO_P4), [1.025, 0.950, 1.975, 3.000]),
    ("logFor", 2.0, [0.959, 1.081, 2.040, 3.000]),
    ("For", 1.0, [1.026, 0.947, 1.500, 1.895]),
    ("Comm", 1.0, [0.964, 1.072, 1.492, 1.564]),
    ("pWalk", g.walk_t_from_alpha(4.5, RHO_P4), [1.025, 0.950, 1.541, 1.466]),
    ("pWalk", g.walk_t_from_alpha(1.0, RHO_P4), [0.988, 1.025, 1.379, 1.416]),
]


@pytest.mark.parametrize(("measure", "param", "published"), CHEBOTAREV_P4)
def test_chebotarev_path_distances(measure, param, published):
    dist = g.distance(path_graph(4), measure, param)
    np.testing.assert_allclose(chain_values(dist), published, atol=1e-3)


def test_sqrt_resistance_on_path():
    ct = np.asarray(g.distance(path_graph(4), "CT"))
    np.testing.assert_allclose(chain_values(np.sqrt(ct)), [1, 1, 1.414, 1.732], atol=1e-3)


@settings(max_examples=15)
@given(glued_graphs(), st.floats(0.1, 0.9))
def test_walk_and_logfor_cutpoint_additive(glued, x):
    a, left, cut, right = glued
    for measure in ("Walk", "logFor"):
        d = np.asarray(g.distance(a, measure, flat=x))
        for i in left:
            for k in right:
                assert d[i, k] == pytest.approx(d[i, cut] + d[cut, k], rel=1e-7, abs=1e-9)


def test_plain_forest_is_not_cutpoint_additive():
    """The mutant check for the test above: without the log, additivity fails."""
    d = np.asarray(g.distance(path_graph(4), "For", 1.0))
    assert abs(d[0, 2] - (d[0, 1] + d[1, 2])) > 0.1


@settings(max_examples=15)
@given(connected_graphs(), st.floats(0.05, 0.95))
def test_row_sum_identities(a, x):
    for measure in ("For", "Heat"):
        k = np.asarray(g.kernel(a, measure, flat=x))
        np.testing.assert_allclose(k.sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_allclose(k.sum(axis=0), 1.0, atol=1e-9)
    ppr = np.asarray(g.kernel(a, "PPR", x))
    np.testing.assert_allclose(ppr.sum(axis=1), 1.0 / (1.0 - x), rtol=1e-9)


@settings(max_examples=15)
@given(connected_graphs(), st.floats(0.05, 0.95))
def test_log_pagerank_and_log_heat_identities(a, x):
    d_ppr = np.asarray(g.distance(a, "logPPR", flat=x))
    d_mod = np.asarray(g.distance(a, "logModifPPR", flat=x))
    np.testing.assert_allclose(d_ppr, d_mod, atol=1e-9)
    d_nheat = np.asarray(g.distance(a, "logNHeat", flat=x))
    d_heatpr = np.asarray(g.distance(a, "logHeatPR", flat=x))
    np.testing.assert_allclose(d_nheat, d_heatpr, atol=1e-9)
    # the entrywise relation behind it: ln PPR_ij = ln ModifPPR_ij + ln d_j
    deg = a.sum(axis=1)
    k_ppr = np.asarray(g.kernel(a, "logPPR", flat=x))
    k_mod = np.asarray(g.kernel(a, "logModifPPR", flat=x))
    np.testing.assert_allclose(k_ppr, k_mod + np.log(deg)[None, :], atol=1e-9)


def test_log_pagerank_kernels_cluster_identically():
    batch = g.planted_partition(jax.random.key(3), 60, 2, 0.3, 0.1, num_graphs=3)
    for a in np.asarray(batch.adjacency):
        for x in (0.3, 0.7):
            key = jax.random.key(11)
            r1 = g.kernel_kmeans(key, g.kernel(a, "logPPR", flat=x), 2)
            r2 = g.kernel_kmeans(key, g.kernel(a, "logModifPPR", flat=x), 2)
            assert float(adjusted_rand_index(r1.labels, r2.labels)) == pytest.approx(1.0)


def test_kivimaki_triangle_limits():
    """RSP/FE and logFor go from CT-like (D12/D23 = 1.5) to SP-like (1.0); atol 0.02."""
    a = kivimaki_triangle()
    ct = np.asarray(g.distance(a, "CT"))
    assert ct[0, 1] / ct[1, 2] == pytest.approx(1.5)
    for measure, ct_end, sp_end in [
        ("logFor", 500.0, 0.01),
        ("RSP", 1e-4, 20.0),
        ("FE", 1e-4, 20.0),
    ]:
        d_ct = np.asarray(g.distance(a, measure, ct_end))
        d_sp = np.asarray(g.distance(a, measure, sp_end))
        assert d_ct[0, 1] / d_ct[1, 2] == pytest.approx(1.5, abs=0.02), measure
        assert d_sp[0, 1] / d_sp[1, 2] == pytest.approx(1.0, abs=0.02), measure


def test_rsp_fe_proportional_to_ct_and_sp_on_random_graph():
    a = nx.to_numpy_array(nx.connected_watts_strogatz_graph(12, 4, 0.3, seed=2), weight=None)
    iu = np.triu_indices(12, 1)
    ct = np.asarray(g.distance(a, "CT"))[iu]
    sp = np.asarray(g.distance(a, "SP"))[iu]
    for measure in ("RSP", "FE"):
        small = np.asarray(g.distance(a, measure, 1e-5))[iu]
        ratio = small / ct
        assert np.ptp(ratio) / ratio.mean() < 1e-3, measure
    # RSP: detours cost e^{-β·extra} -> SP exponentially fast
    np.testing.assert_allclose(np.asarray(g.distance(a, "RSP", 30.0))[iu], sp, rtol=1e-8)
    # FE: the free-energy excess is an entropy term (1/β) ln(#paths ...) -> SP like 1/β
    fe50 = np.asarray(g.distance(a, "FE", 50.0))[iu]
    fe200 = np.asarray(g.distance(a, "FE", 200.0))[iu]
    np.testing.assert_allclose(50 * (fe50 - sp), 200 * (fe200 - sp), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fe200, sp, rtol=0.01)


def test_resistance_and_communicability_match_networkx():
    graph = nx.karate_club_graph()
    a = nx.to_numpy_array(graph, nodelist=sorted(graph), weight=None)
    vol = a.sum()
    ct = np.asarray(g.distance(a, "CT"))
    unweighted = nx.Graph(graph.edges())
    for i, j in [(0, 33), (5, 16), (2, 29), (11, 25)]:
        r = nx.resistance_distance(unweighted, i, j)
        assert ct[i, j] == pytest.approx(vol * r, rel=1e-8)
    comm = np.asarray(g.kernel(a, "Comm", 1.0))
    nx_comm = nx.communicability_exp(unweighted)
    want = np.array([[nx_comm[i][j] for j in range(34)] for i in range(34)])
    np.testing.assert_allclose(comm, want, rtol=1e-8, atol=1e-6)


def test_log_comm_never_overflows():
    a = nx.to_numpy_array(nx.complete_graph(30), weight=None)  # rho = 29
    t = 40.0  # t * rho = 1160 > log(max float64) ~ 709
    with pytest.warns(RuntimeWarning, match="Comm kernel has 900 non-finite entries"):
        plain = np.asarray(g.kernel(a, "Comm", t))
    assert not np.all(np.isfinite(plain))  # exp(tA) overflows, and the user is told ...
    logk = np.asarray(g.kernel(a, "logComm", t))
    assert np.all(np.isfinite(logk))  # ... its shifted log does not
    # closed form for K_n: e^{tA} = e^{-t} I + (e^{t(n-1)} - e^{-t})/n J
    n = 30
    off = t * (n - 1) + np.log1p(-np.exp(-t * n)) - np.log(n)
    np.testing.assert_allclose(logk[0, 1], off, rtol=1e-12)
    moderate = np.asarray(g.kernel(a, "logComm", 0.5))
    np.testing.assert_allclose(moderate, np.log(scipy.linalg.expm(0.5 * a)), rtol=1e-10)


@settings(max_examples=10)
@given(connected_graphs(min_nodes=7, max_nodes=7), st.floats(0.1, 0.9))
def test_every_measure_distance_symmetric_zero_diagonal(a, x):
    # One node count, so each of the 28 measures compiles once (sizes 5..9 compiled five times
    # per measure: 42 s in CI); the random graphs and parameters still vary per example.
    for name, m in g.MEASURES.items():
        if name == "logAbs" and x > 0.6:
            continue  # t > 1: pinv(tA + L) need not be positive (see the test below)
        kwargs = {} if m.parameter is None else {"flat": x}
        d = np.asarray(g.distance(a, name, **kwargs))
        np.testing.assert_allclose(d, d.T, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-8, err_msg=name)


def test_non_finite_log_kernels_are_reported():
    """pygkernels' Abs = pinv(tA + L) has negative entries for t > 1 on a bipartite graph, so
    logAbs has -inf entries: the result says so instead of passing silently."""
    a = np.array(
        [[0, 0, 0, 1, 1], [0, 0, 0, 1, 0], [0, 0, 0, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 0, 0]],
        dtype=float,
    )
    with pytest.warns(RuntimeWarning, match="logAbs kernel has .* non-finite entries"):
        k = np.asarray(g.kernel(a, "logAbs", 3.5))
    assert np.any(np.isneginf(k))
    assert np.any(np.asarray(g.kernel(a, "Abs", 3.5)) < 0)
    grid = g.kernel_grid(a, "logAbs", [0.5, 3.5])
    np.testing.assert_array_equal(np.asarray(grid.finite), [True, False])
    with pytest.raises(ValueError, match="kernel must contain only finite values"):
        g.kernel_kmeans(jax.random.key(0), k, 2)


@pytest.mark.parametrize("n", [5, 8])
@pytest.mark.parametrize("x", [0.1, 0.35, 0.6])
def test_distances_non_negative_on_chains_and_trees(n, x):
    graphs = [path_graph(n), nx.to_numpy_array(nx.balanced_tree(2, 2), weight=None)]
    for a in graphs:
        for name, m in g.MEASURES.items():
            kwargs = {} if m.parameter is None else {"flat": x}
            d = np.asarray(g.distance(a, name, **kwargs))
            assert d.min() >= -1e-9, (name, d.min())


def test_kernel_grid_matches_single_kernels_and_chunks():
    a = nx.to_numpy_array(nx.karate_club_graph(), weight=None)
    flat = np.linspace(0.05, 0.95, 7)
    for measure in ("logComm", "PPR", "Walk", "Abs", "RSP", "SP-CT", "SCCT"):
        grid = g.kernel_grid(a, measure, flat=flat, chunk_size=3)
        assert grid.kernels.shape == (7, 34, 34) and bool(np.all(grid.finite)), measure
        np.testing.assert_allclose(np.asarray(grid.flat), flat)
        for i in (0, 3, 6):
            single = np.asarray(g.kernel(a, measure, flat=flat[i]))
            np.testing.assert_allclose(
                np.asarray(grid.kernels[i]), single, rtol=1e-10, atol=1e-12, err_msg=measure
            )
    native = g.native_parameter(a, "Walk", flat)
    by_native = g.kernel_grid(a, "Walk", native, chunk_size=None)
    np.testing.assert_allclose(
        np.asarray(by_native.kernels), np.asarray(g.kernel_grid(a, "Walk", flat=flat).kernels)
    )
    assert np.all(np.isnan(np.asarray(by_native.flat)))


def test_factored_kernel_equals_dense():
    a = nx.to_numpy_array(nx.karate_club_graph(), weight=None)
    for name, m in g.MEASURES.items():
        if m.factor_fn is None:
            continue
        kwargs = {} if m.parameter is None else {"flat": 0.4}
        fk = g.factored_kernel(a, name, **kwargs)
        np.testing.assert_allclose(
            np.asarray(fk.dense()),
            np.asarray(g.kernel(a, name, **kwargs)),
            rtol=1e-10,
            atol=1e-12,
            err_msg=name,
        )
    with pytest.raises(ValueError, match="has no factored form; factorable measures: pWalk"):
        g.factored_kernel(a, "logComm", flat=0.5)


def test_spectra_vmap_over_graphs():
    batch = g.planted_partition(jax.random.key(0), 20, 2, 0.5, 0.1, num_graphs=3)
    spectra = jax.vmap(g.graph_spectra)(batch.adjacency)
    for i in range(3):
        single = g.graph_spectra(batch.adjacency[i])
        np.testing.assert_allclose(
            np.asarray(spectra.laplacian_eigh.values[i]),
            np.asarray(single.laplacian_eigh.values),
            atol=1e-10,
        )
    assert spectra.spectral_radius.shape == (3,)


def test_scalers():
    assert float(g.scale_parameter("fraction", 0.5)) == pytest.approx(0.5)
    assert float(g.scale_parameter("fraction", 2 / 3)) == pytest.approx(1.0)
    assert float(g.scale_parameter("fraction", 0.9)) == pytest.approx(4.5)
    assert float(g.scale_parameter("fraction_reversed", 0.5)) == pytest.approx(1.0)
    assert float(g.scale_parameter("rho", 0.5, 2.0)) == pytest.approx(0.25)
    a = path_graph(4)
    np.testing.assert_allclose(g.native_parameter(a, "Walk", [0.5]), [0.5 / RHO_P4])


# --------------------------------------------------------------------------- bad input


def test_bad_adjacency_is_rejected_clearly():
    with pytest.raises(ValueError, match="adjacency must be a square"):
        g.kernel(np.ones((3, 4)), "For", 1.0)
    with pytest.raises(ValueError, match="adjacency must be symmetric"):
        g.kernel(np.triu(np.ones((3, 3)), 1), "For", 1.0)
    with pytest.raises(ValueError, match="adjacency must have non-negative entries"):
        g.kernel(-path_graph(3), "For", 1.0)
    with pytest.raises(ValueError, match="adjacency must contain only finite values"):
        g.kernel(np.full((3, 3), np.nan), "For", 1.0)
    disconnected = np.zeros((4, 4))
    disconnected[0, 1] = disconnected[1, 0] = disconnected[2, 3] = disconnected[3, 2] = 1
    with pytest.raises(
        ValueError,
        match=r"disconnected \(2 connected components\); measure "
        r"'logFor' needs a connected graph.*each component",
    ):
        g.kernel(disconnected, "logFor", 1.0)
    isolated = path_graph(3)
    isolated = np.pad(isolated, ((0, 1), (0, 1)))
    with pytest.raises(ValueError, match="1 isolated node"):
        g.kernel(isolated, "PPR", 0.5)
    # plain For is defined on disconnected graphs
    assert np.all(np.isfinite(np.asarray(g.kernel(disconnected, "For", 1.0))))


def test_bad_parameters_are_rejected_clearly():
    a = path_graph(4)
    with pytest.raises(ValueError, match=r"param \(pWalk t\) must be in \(0.0, 0.618"):
        g.kernel(a, "pWalk", 1.0 / RHO_P4)
    with pytest.raises(ValueError, match=r"flat must be in \[0, 1\]"):
        g.kernel(a, "logComm", flat=1.2)
    with pytest.raises(ValueError, match="needs exactly one of param="):
        g.kernel(a, "logComm")
    with pytest.raises(ValueError, match="needs exactly one of param="):
        g.kernel(a, "logComm", 1.0, flat=0.5)
    with pytest.raises(ValueError, match="has no parameter"):
        g.kernel(a, "CT", 1.0)
    with pytest.raises(ValueError, match=r"param \(PPR alpha\) must be in \(0.0, 1.0\)"):
        g.kernel(a, "PPR", 1.0)
    with pytest.raises(ValueError, match=r"native beta \(from flat"):
        g.kernel(a, "RSP", flat=1.0)
    with pytest.raises(KeyError, match="unknown measure 'Katz'; valid names:"):
        g.kernel(a, "Katz", 0.1)
    with pytest.raises(TypeError, match="measure must be a measure name"):
        g.kernel(a, 3, 0.1)


def test_networkx_input_is_unweighted_by_default():
    graph = nx.karate_club_graph()
    a = g.adjacency_matrix(graph)
    assert float(a.sum()) == 2 * 78
    weighted = g.adjacency_matrix(graph, weight="weight")
    assert float(weighted.sum()) == 2 * 231
    with pytest.raises(ValueError, match="weight= applies to networkx graphs only"):
        g.adjacency_matrix(np.eye(2), weight="weight")
    with pytest.raises(ValueError, match="must be an undirected graph"):
        g.adjacency_matrix(nx.DiGraph([(0, 1)]))


def test_log_measures_require_x64_without_it():
    a = path_graph(4)
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match=r"measure 'logComm' needs float64: enable it"):
            g.kernel(a, "logComm", 1.0)
        with pytest.raises(ValueError, match="measure 'RSP' needs float64"):
            g.kernel(a, "RSP", 1.0)
        plain = g.kernel(a, "For", 1.0)  # plain measures run in float32
        assert plain.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(plain).sum(axis=1), 1.0, atol=1e-5)


def test_kernel_grids_share_one_spectra_and_reduce():
    a = nx.to_numpy_array(nx.karate_club_graph(), weight=None)
    flat = np.array([0.2, 0.5, 0.8])
    grids = g.kernel_grids(a, ["logComm", "logFor", "PPR"], flat=flat)
    for name, grid in grids.items():
        np.testing.assert_allclose(np.asarray(grid.kernels),
                                   np.asarray(g.kernel_grid(a, name, flat=flat).kernels),
                                   rtol=1e-10, atol=1e-12)
    sums = g.kernel_grids(a, ["PPR"], flat=flat, reduce=lambda k: k.sum(axis=1))["PPR"]
    native = np.asarray(sums.params)
    np.testing.assert_allclose(np.asarray(sums.kernels), (1 / (1 - native))[:, None]
                               * np.ones((3, 34)), rtol=1e-9)
    with pytest.raises(ValueError, match="measures must be a non-empty list"):
        g.kernel_grids(a, ["CT"], flat=flat)


def test_ari_curves_per_measure_rows_and_errors():
    batch = g.planted_partition(jax.random.key(9), 40, 2, 0.5, 0.05, num_graphs=2)
    shared = g.ari_curves(jax.random.key(0), batch.adjacency, batch.labels,
                          ["logComm", "Walk"], [0.3, 0.6], 2, n_init=3)
    rows = g.ari_curves(jax.random.key(0), batch.adjacency, batch.labels,
                        ["logComm", "Walk"], [[0.6], [0.3]], 2, n_init=3)
    np.testing.assert_allclose(rows["logComm"][:, 0], shared["logComm"][:, 1])
    np.testing.assert_allclose(rows["Walk"][:, 0], shared["Walk"][:, 0])
    single = g.ari_curve(jax.random.key(0), batch.adjacency[0], batch.labels, "logComm",
                         [0.3, 0.6], 2, n_init=3)
    assert single.shape == (2,)
    with pytest.raises(ValueError, match=r"flat with one row per measure must have shape \(2, P\)"):
        g.ari_curves(jax.random.key(0), batch.adjacency, batch.labels, ["logComm", "Walk"],
                     [[0.5]], 2)
    with pytest.raises(ValueError, match=r"labels must have shape \(40,\)"):
        g.ari_curves(jax.random.key(0), batch.adjacency, batch.labels[:5], ["Walk"], [0.5], 2)
    with pytest.raises(ValueError, match=r"n_clusters must be in \[1, 40\]"):
        g.ari_curves(jax.random.key(0), batch.adjacency, batch.labels, ["Walk"], [0.5], 41)
    ct = g.ari_curve(jax.random.key(0), batch.adjacency, batch.labels, "CT", [0.2, 0.7], 2,
                     n_init=3)
    np.testing.assert_array_equal(ct[:, 0], ct[:, 1])  # parameter-free: a constant curve
