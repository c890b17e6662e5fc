"""Tests of theorylab.llp.bp (loopy BP, count and clique modes) against exact references.

Spec §5.1: count-mode BP is exact on tree factor graphs (checked against enumeration in
theorylab.llp.reference), the clique (Ising) energy equals the count energy up to a constant,
clique mode reproduces an independent NumPy implementation of the paper's factor graph, and the
symmetry/padding/sharding invariants hold. Shapes are reused across tests to keep compilations
few (the jit cache is shared by the whole process).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import comb

from theorylab.core.sharding import data_mesh, shard_leading_axis
from theorylab.llp import bp
from theorylab.llp import reference as R
from theorylab.llp.bags import BagLayout, make_layout
from theorylab.llp.graph import KnnGraph, graph_from_edges

INF = math.inf


def _layout(bags, counts, n, *, width=None, num_bags=None) -> BagLayout:
    """A BagLayout with the members in the given slot order (make_layout sorts them)."""
    width = width or max(len(b) for b in bags)
    num_bags = num_bags or len(bags)
    index = np.zeros((num_bags, width), np.int32)
    mask = np.zeros((num_bags, width), bool)
    bag_of = np.full(n, -1, np.int32)
    for r, members in enumerate(bags):
        index[r, : len(members)] = members
        mask[r, : len(members)] = True
        bag_of[np.asarray(members)] = r
    full_counts = np.zeros(num_bags)
    full_counts[: len(bags)] = counts
    return BagLayout(
        index=jnp.asarray(index),
        mask=jnp.asarray(mask),
        counts=jnp.asarray(full_counts, dtype=jnp.result_type(float)),
        sizes=jnp.asarray(mask.sum(1), jnp.int32),
        bag_of=jnp.asarray(bag_of),
    )


def _random_edges(rng, n, k):
    """Undirected de-duplicated edges: every node picks k random partners."""
    src = np.repeat(np.arange(n), k)
    dst = rng.integers(0, n, n * k)
    keep = src != dst
    a, b = np.minimum(src[keep], dst[keep]), np.maximum(src[keep], dst[keep])
    keys = np.unique(a * n + b)
    return np.stack([keys // n, keys % n], axis=1)


# Independent bags, no edges: bags of sizes 10, 7, 1, 5 padded to K = 10 (n = 23, one compile).
_SIZES = (10, 7, 1, 5)
_N_SINGLE = sum(_SIZES)


def _single_bags():
    starts = np.cumsum((0, *_SIZES[:-1]))
    return [np.arange(s, s + k) for s, k in zip(starts, _SIZES)]


# Random loopy instance: n = 66 (two instances in no bag), 8 bags of K = 8, random 5-NN-like
# edges, many of them inside bags.
def _loopy_instance(seed=0):
    rng = np.random.default_rng(seed)
    n, K, num_bags = 66, 8, 8
    perm = rng.permutation(n)
    bags = [np.sort(perm[b * K : (b + 1) * K]) for b in range(num_bags)]
    counts = rng.integers(0, K + 1, num_bags).astype(float)
    edges = _random_edges(rng, n, 5)
    weights = rng.uniform(0.1, 1.0, edges.shape[0])
    unary = rng.normal(0.0, 0.5, n)
    return n, bags, counts, edges, weights, unary


# ---------------------------------------------------------------------------------------------
# 1. A single bag (a tree): count-mode BP is exact


@pytest.mark.x64
@pytest.mark.parametrize("lam_b", [0.5, 10.0, INF])
def test_single_bag_count_mode_matches_enumeration(lam_b):
    rng = np.random.default_rng(1)
    bags = _single_bags()
    counts = [4.0, 7.0, 0.0, 2.0] if lam_b == INF else [4.0, 2.5, 1.0, 0.3]
    unary = rng.normal(0.0, 1.5, _N_SINGLE)
    layout = _layout(bags, counts, _N_SINGLE)
    res = bp.loopy_bp(layout, None, lam_b=lam_b, count_method="exact", damping=0.0,
                      tol=1e-12, unary=unary)
    got = np.asarray(res.marginals)
    for members, c in zip(bags, counts):
        want = R.brute_force_marginals(len(members), np.zeros((0, 2)), None,
                                       [np.arange(len(members))], [c], 0.0, lam_b,
                                       unary=unary[members])
        np.testing.assert_allclose(got[members], want, rtol=0, atol=1e-10)
    assert bool(res.converged) and int(res.iterations) == 2  # one update, one check
    assert np.all(np.isfinite(got))
    if lam_b == INF:  # c_B = |B| and c_B = 0: forced, infinite beliefs, no NaN
        assert np.all(got[bags[1]] == 1.0) and np.all(got[bags[2]] == 0.0)
        assert np.all(np.isinf(np.asarray(res.log_odds)[bags[1]]))
        np.testing.assert_allclose(np.asarray(res.bag_residuals), 0.0, atol=1e-12)


def test_single_bag_float32():
    rng = np.random.default_rng(2)
    bags = _single_bags()
    counts = [4.0, 2.5, 1.0, 0.3]
    unary = rng.normal(0.0, 1.5, _N_SINGLE).astype(np.float32)
    res = bp.loopy_bp(_layout(bags, counts, _N_SINGLE), None, lam_b=10.0,
                      count_method="exact", damping=0.0, unary=unary)
    assert res.marginals.dtype == jnp.float32
    got = np.asarray(res.marginals)
    for members, c in zip(bags, counts):
        want = R.brute_force_marginals(len(members), np.zeros((0, 2)), None,
                                       [np.arange(len(members))], [c], 0.0, 10.0,
                                       unary=unary[members])
        np.testing.assert_allclose(got[members], want, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# 2. Tree factor graphs


@pytest.mark.x64
@pytest.mark.parametrize("lam_b", [0.5, 10.0, INF])
def test_chain_of_bags_is_exact(lam_b):
    # bags {0,1,2}, {3,4,5}, ... joined by one kNN edge (3b+2, 3b+3): a tree factor graph.
    rng = np.random.default_rng(3)
    num_bags, n = 4, 12
    bags = [np.arange(3 * b, 3 * b + 3) for b in range(num_bags)]
    counts = [1.0, 2.0, 0.0, 3.0]
    edges = np.array([[3 * b + 2, 3 * b + 3] for b in range(num_bags - 1)])
    weights = rng.uniform(0.2, 1.0, len(edges))
    unary = rng.normal(0.0, 1.0, n)
    res = bp.loopy_bp(make_layout(bags, counts), graph_from_edges(edges, n, weights),
                      lam_s=2.0, lam_b=lam_b, count_method="exact", damping=0.0, tol=1e-12,
                      unary=unary)
    want = R.brute_force_marginals(n, edges, weights, bags, counts, 2.0, lam_b, unary=unary)
    np.testing.assert_allclose(np.asarray(res.marginals), want, rtol=0, atol=1e-8)
    # the longest variable-to-variable path crosses 7 factors: exact after 7 updates
    assert bool(res.converged) and int(res.iterations) <= 8


@pytest.mark.x64
@pytest.mark.parametrize("shape", ["chain", "star"])
def test_knn_tree_without_bag_term_is_exact(shape):
    # lam_b = 0: only pairwise kNN factors matter (same shapes as the chain of bags: 4 bags of
    # 3, three edges, so the compiled program is reused).
    rng = np.random.default_rng(4)
    n = 12
    edges = np.array([[0, 4], [4, 8], [8, 11]] if shape == "chain" else [[5, 0], [5, 7], [5, 10]])
    weights = rng.uniform(0.2, 1.0, 3)
    unary = rng.normal(0.0, 1.0, n)
    bags = [np.arange(3 * b, 3 * b + 3) for b in range(4)]
    counts = [1.0, 2.0, 0.0, 3.0]
    res = bp.loopy_bp(make_layout(bags, counts), graph_from_edges(edges, n, weights),
                      lam_s=3.0, lam_b=0.0, count_method="exact", damping=0.0, tol=1e-12,
                      unary=unary)
    want = R.brute_force_marginals(n, edges, weights, bags, counts, 3.0, 0.0, unary=unary)
    np.testing.assert_allclose(np.asarray(res.marginals), want, rtol=0, atol=1e-8)
    assert bool(res.converged) and int(res.iterations) <= 4


# ---------------------------------------------------------------------------------------------
# 3. Energy equivalence of the Ising (clique) and count forms


@pytest.mark.x64
def test_clique_energy_equals_count_energy_up_to_constant():
    rng = np.random.default_rng(5)
    n = 12
    bags = [np.array([0, 3, 5, 8, 11]), np.array([1, 2, 4, 9]), np.array([6, 7])]  # 10: no bag
    counts = np.array([2.0, 1.5, 2.0])
    edges = np.array([[0, 3], [3, 8], [1, 9], [6, 7],  # inside bags
                      [0, 1], [2, 5], [4, 10], [7, 11], [9, 10], [5, 6]])
    weights = rng.uniform(0.1, 1.0, len(edges))
    layout = _layout(bags, counts, n, width=6)  # padded slots too
    graph = graph_from_edges(edges, n, weights)
    lam_s, lam_b = 1.7, 0.9
    h, pairs, J = bp.ising_parameters(layout, graph, lam_s, lam_b)
    # merged pairs: one entry per pair, J = -2 lam_b + 2 lam_s s for a kNN edge inside a bag
    num_bag_pairs = sum(len(b) * (len(b) - 1) // 2 for b in bags)
    assert pairs.shape[0] == num_bag_pairs + len(edges) - 4
    row = np.flatnonzero((np.asarray(pairs) == [0, 3]).all(axis=1))[0]
    np.testing.assert_allclose(float(J[row]), -2 * lam_b + 2 * lam_s * weights[0])
    broken = J.at[row].set(-2 * lam_b)  # the kNN coupling of an intra-bag pair dropped
    hard_layout = _layout(bags, [2.0, 1.0, 2.0], n, width=6)

    @jax.jit
    @jax.vmap
    def energies(y):
        return (bp.energy_count(y, layout, graph, lam_s, lam_b),
                bp.energy_clique(y, h, pairs, J),
                bp.energy_clique(y, h, pairs, broken),
                bp.energy_count(y, hard_layout, None, 0.0, INF))

    Y = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
    e_count, e_clique, e_broken, e_hard = (np.asarray(e) for e in energies(Y))
    np.testing.assert_allclose(e_count - e_clique, -lam_b * np.sum(counts**2), rtol=0, atol=1e-9)
    assert np.ptp(e_count - e_broken) > 1e-3  # the broken expansion fails the same check
    # the hard constraint: 0 on feasible configurations, -inf elsewhere
    feasible = np.ones(len(Y), bool)
    for members, c in zip(bags, [2.0, 1.0, 2.0]):
        feasible &= Y[:, members].sum(1) == c
    assert np.all(e_hard[feasible] == 0.0) and np.all(np.isneginf(e_hard[~feasible]))


# ---------------------------------------------------------------------------------------------
# 4. Clique mode reproduces the NumPy implementation of the paper's factor graph


@pytest.mark.x64
def test_clique_mode_matches_numpy_reference():
    n, bags, counts, edges, weights, unary = _loopy_instance()
    layout = make_layout(bags, counts, num_instances=n)
    graph = graph_from_edges(edges, n, weights)
    res = bp.loopy_bp(layout, graph, lam_s=1.0, lam_b=0.5, mode="clique", damping=0.5,
                      max_iters=100, tol=1e-300, unary=unary)
    want = R.numpy_clique_bp(n, edges, weights, bags, counts, 1.0, 0.5, damping=0.5,
                             num_iters=int(res.iterations), unary=unary)
    np.testing.assert_allclose(np.asarray(res.marginals), want, rtol=0, atol=1e-10)
    assert int(res.iterations) == 100
    # a kNN edge inside a bag really occurs (the merged case is exercised)
    bag_of = np.asarray(layout.bag_of)
    assert np.any((bag_of[edges[:, 0]] == bag_of[edges[:, 1]]) & (bag_of[edges[:, 0]] >= 0))


@pytest.mark.x64
def test_clique_bp_is_exact_on_a_tree_with_merged_pairs():
    # Bags of two joined in a chain by kNN edges, plus kNN edges inside bags 0 and 2: after
    # merging, the pairwise factor graph is a chain, so undamped clique BP is exact (kept as a
    # second factor on the same pair, the intra-bag edge would create a 2-cycle).
    rng = np.random.default_rng(7)
    n = 12
    bags = [np.array([2 * b, 2 * b + 1]) for b in range(6)]
    counts = [1.0, 2.0, 0.0, 1.0, 1.0, 1.0]
    edges = np.array([[2 * b + 1, 2 * b + 2] for b in range(5)] + [[0, 1], [4, 5]])
    weights = rng.uniform(0.2, 1.0, len(edges))
    unary = rng.normal(0.0, 1.0, n)
    want = R.brute_force_marginals(n, edges, weights, bags, counts, 0.7, 0.4, unary=unary)
    ref = R.numpy_clique_bp(n, edges, weights, bags, counts, 0.7, 0.4, damping=0.0,
                            num_iters=15, unary=unary)
    np.testing.assert_allclose(ref, want, rtol=0, atol=1e-10)
    res = bp.loopy_bp(make_layout(bags, counts), graph_from_edges(edges, n, weights),
                      lam_s=0.7, lam_b=0.4, mode="clique", damping=0.0, tol=1e-13, unary=unary)
    np.testing.assert_allclose(np.asarray(res.marginals), want, rtol=0, atol=1e-10)
    assert bool(res.converged) and int(res.iterations) <= 13


def test_numpy_count_message_oracle_matches_enumeration():
    rng = np.random.default_rng(8)
    K = 7
    u = rng.normal(0.0, 2.0, K)
    u[0] = 30.0  # a nearly forced member
    for lam_b, c_b in [(0.5, 2.5), (10.0, 3.0), (INF, 0.0), (INF, 4.0), (INF, 7.0)]:
        msg = R.numpy_count_messages_prefix(u, c_b, lam_b)
        want = R.brute_force_marginals(K, np.zeros((0, 2)), None, [np.arange(K)], [c_b], 0.0,
                                       lam_b, unary=u)
        with np.errstate(over="ignore"):
            got = 1.0 / (1.0 + np.exp(-(u + msg)))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# 5. Invariants


@pytest.mark.x64
@pytest.mark.parametrize("lam_b", [0.5, 10.0, INF])
def test_no_edges_no_unary_marginals(lam_b):
    # Exchangeability: P(y_i = 1) = E[c]/|B| under p(c) ∝ binom(|B|, c) exp(-lam_b (c - c_B)^2);
    # this is c_B/|B| only for the hard constraint (the binomial entropy pulls it to 1/2).
    bags = _single_bags()
    counts = [4.0, 2.0, 1.0, 3.0]
    res = bp.loopy_bp(_layout(bags, counts, _N_SINGLE), None, lam_b=lam_b,
                      count_method="exact", damping=0.0, tol=1e-12)
    got = np.asarray(res.marginals)
    for members, c_b in zip(bags, counts):
        K = len(members)
        c = np.arange(K + 1)
        log_w = np.log(comb(K, c)) + (np.where(c == c_b, 0.0, -np.inf) if lam_b == INF
                                      else -lam_b * (c - c_b) ** 2)
        w = np.exp(log_w - log_w.max())
        np.testing.assert_allclose(got[members], (w @ c) / w.sum() / K, rtol=0, atol=1e-12)
        if lam_b == INF:
            np.testing.assert_allclose(got[members], c_b / K, rtol=0, atol=1e-12)
    if lam_b == 0.5:  # finite lam_b: not c_B/K (bag 0: K=10, c_B=4 -> pulled towards 1/2)
        assert abs(got[0] - 0.4) > 1e-3


def _count_run(layout, n, edges, weights, unary, **kw):
    return bp.loopy_bp(layout, graph_from_edges(edges, n, weights), lam_s=1.0, lam_b=2.0,
                       count_method="exact", damping=0.5, tol=1e-11, max_iters=400,
                       unary=unary, **kw)


@pytest.mark.x64
def test_relabelling_within_bags_permutes_marginals():
    n, bags, counts, edges, weights, unary = _loopy_instance()
    base = _count_run(make_layout(bags, counts, num_instances=n), n, edges, weights, unary)
    assert bool(base.converged)
    rng = np.random.default_rng(6)
    pi = np.arange(n)  # a permutation mapping every bag onto itself
    for members in bags:
        pi[members] = rng.permutation(members)
    new_bags = [pi[m] for m in bags]  # same sets, members now listed in shuffled slot order
    new_unary = np.empty(n)
    new_unary[pi] = unary
    res = _count_run(_layout(new_bags, counts, n), n, pi[edges], weights, new_unary)
    np.testing.assert_allclose(np.asarray(res.marginals)[pi], np.asarray(base.marginals),
                               rtol=0, atol=1e-9)


@pytest.mark.x64
def test_padding_invariance():
    n, bags, counts, edges, weights, unary = _loopy_instance()
    base = _count_run(make_layout(bags, counts, num_instances=n), n, edges, weights, unary)
    padded = _layout(bags, counts, n, width=11, num_bags=10)
    res = _count_run(padded, n, edges, weights, unary)
    np.testing.assert_allclose(np.asarray(res.marginals), np.asarray(base.marginals),
                               rtol=0, atol=1e-9)
    resid = np.asarray(res.bag_residuals)
    np.testing.assert_allclose(resid[:8], np.asarray(base.bag_residuals), atol=1e-9)
    assert np.all(resid[8:] == 0.0)
    sums = [np.asarray(base.marginals)[m].sum() - c for m, c in zip(bags, counts)]
    np.testing.assert_allclose(np.asarray(base.bag_residuals), sums, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# 6. Non-convergence and NaN are reported


@pytest.mark.x64
def test_non_convergence_is_reported():
    n, bags, counts, edges, weights, unary = _loopy_instance()
    res = _count_run(make_layout(bags, counts, num_instances=n), n, edges, weights, unary)
    short = bp.loopy_bp(make_layout(bags, counts, num_instances=n),
                        graph_from_edges(edges, n, weights), lam_s=1.0, lam_b=2.0,
                        count_method="exact", damping=0.5, tol=1e-11, max_iters=2, unary=unary)
    assert bool(res.converged) and not bool(short.converged)
    assert int(short.iterations) == 2 and float(short.residual) >= 1e-11
    # NaN produced inside the loop (here injected through the unvalidated core): not converged
    layout = make_layout(bags, counts, num_instances=n)
    g = graph_from_edges(edges, n, weights)
    bad = jnp.asarray(unary).at[3].set(jnp.nan)
    out = bp._loopy_bp_core(layout.index, layout.mask, layout.counts, g.src, g.dst, g.rev,
                            g.weight, bad, 1.0, 2.0, 0.5, 1e-11, 400, num_instances=n,
                            mode="count", count_method="exact", mesh=None, axis_name=None)
    assert not bool(out.converged) and int(out.iterations) < 400


# ---------------------------------------------------------------------------------------------
# 7. Bags sharded across the (fake CPU) devices


@pytest.mark.x64
@pytest.mark.parametrize("mode", ["count", "clique"])
def test_sharded_bags_match_unsharded(mode):
    n, bags, counts, edges, weights, unary = _loopy_instance()
    layout = make_layout(bags, counts, num_instances=n, pad_bags_to_multiple=4)
    mesh = data_mesh(4)
    sharded = shard_leading_axis(layout._replace(bag_of=None), mesh)._replace(
        bag_of=layout.bag_of)
    assert len(sharded.index.sharding.device_set) == 4
    graph = graph_from_edges(edges, n, weights)
    kw = dict(lam_s=1.0, lam_b=2.0 if mode == "count" else 0.5, mode=mode,
              count_method="exact", damping=0.5, tol=1e-11, max_iters=400, unary=unary)
    if mode == "clique":
        kw.update(max_iters=100, tol=1e-300)
    want = bp.loopy_bp(layout, graph, **kw)
    got = bp.loopy_bp(sharded, graph, **kw)
    np.testing.assert_allclose(np.asarray(got.marginals), np.asarray(want.marginals),
                               rtol=0, atol=1e-9)
    assert int(got.iterations) == int(want.iterations)
    np.testing.assert_allclose(np.asarray(got.bag_residuals), np.asarray(want.bag_residuals),
                               atol=1e-9)


# ---------------------------------------------------------------------------------------------
# 8. Validation before tracing


def _small():
    layout = make_layout([np.array([0, 1, 2]), np.array([3, 4])], [1.0, 2.0])
    graph = graph_from_edges(np.array([[0, 3], [1, 2]]), 5)
    return layout, graph


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(lam_s=-1.0), ValueError, r"lam_s"),
        (dict(lam_b=-0.1), ValueError, r"lam_b"),
        (dict(lam_b=INF, mode="clique"), ValueError, r"lam_b must be finite"),
        (dict(lam_b=math.nan), ValueError, r"lam_b"),
        (dict(damping=1.0), ValueError, r"damping"),
        (dict(damping=-0.1), ValueError, r"damping"),
        (dict(max_iters=0), ValueError, r"max_iters"),
        (dict(max_iters=2.0), TypeError, r"max_iters"),
        (dict(tol=0.0), ValueError, r"tol"),
        (dict(mode="ising"), ValueError, r"mode"),
        (dict(count_method="fft"), ValueError, r"count_method"),
        (dict(unary=np.zeros(4)), ValueError, r"unary"),
        (dict(unary=np.array([0.0, np.nan, 0, 0, 0])), ValueError, r"unary"),
    ],
)
def test_validation_errors(kwargs, error, match):
    layout, graph = _small()
    with pytest.raises(error, match=match):
        bp.loopy_bp(layout, graph, **kwargs)


def test_validation_of_layout_and_graph():
    layout, graph = _small()
    with pytest.raises(TypeError, match=r"layout"):
        bp.loopy_bp({"index": layout.index}, graph)
    with pytest.raises(TypeError, match=r"graph"):
        bp.loopy_bp(layout, np.array([[0, 1]]))
    far = graph._replace(dst=graph.dst.at[0].set(7))
    with pytest.raises(ValueError, match=r"graph.dst"):
        bp.loopy_bp(layout, far)
    swapped = graph._replace(rev=jnp.arange(graph.rev.shape[0], dtype=jnp.int32))
    with pytest.raises(ValueError, match=r"graph.rev"):
        bp.loopy_bp(layout, swapped)
    loop = KnnGraph(*(jnp.asarray(a) for a in ([0, 0], [0, 0], [1, 0], [1.0, 1.0])))
    with pytest.raises(ValueError, match=r"self-loops"):
        bp.loopy_bp(layout, loop)
    half = layout._replace(counts=jnp.asarray([1.5, 2.0]))
    with pytest.raises(ValueError, match=r"integers when lam_b is inf"):
        bp.loopy_bp(half, graph, lam_b=INF)
    bad_index = layout._replace(index=layout.index.at[0, 0].set(9))
    with pytest.raises(ValueError, match=r"layout.index"):
        bp.loopy_bp(bad_index, graph)
    with pytest.raises(ValueError, match=r"lam_b"):
        bp.ising_parameters(layout, graph, 1.0, INF)


def test_hard_constraint_is_enforced_with_auto_messages_on_large_bags():
    """lam_b = inf with the default count_method='auto' on bags of >= 32 members must use the
    exact DP (the Gaussian approximation cannot enforce Σ y = c_B: it gave a bag of 32 with
    c_B = 5 marginals summing to 6.16). An explicit 'gaussian' is refused."""
    rng = np.random.default_rng(7)
    n = 64
    layout = _layout([np.arange(32), np.arange(32, 64)], [5.0, 0.0], n)
    unary = rng.normal(0.0, 1.0, n)
    res = bp.loopy_bp(layout, None, lam_b=INF, unary=unary, tol=1e-6)
    np.testing.assert_allclose(np.asarray(res.bag_residuals), 0.0, atol=1e-4)
    assert np.all(np.asarray(res.marginals)[32:] == 0.0)
    with pytest.raises(ValueError, match="cannot enforce the hard constraint"):
        bp.loopy_bp(layout, None, lam_b=INF, count_method="gaussian")


@pytest.mark.x64
def test_convergence_tolerance_applies_to_the_undamped_residual():
    """With heavy damping (d = 0.99), 'converged' must mean the BP fixed-point equations hold to
    tol, not that the damped step (1 − d times smaller) is below tol. A single bag is a tree,
    so a converged run equals enumeration to about tol (the damped-step rule stopped with a
    marginal error 20x tol at d = 0.99)."""
    rng = np.random.default_rng(3)
    members = np.arange(10)
    layout = _layout([members], [4.0], 10)
    unary = rng.normal(0.0, 1.5, 10)
    res = bp.loopy_bp(layout, None, lam_b=10.0, count_method="exact", damping=0.99,
                      tol=1e-6, max_iters=5000, unary=unary)
    want = R.brute_force_marginals(10, np.zeros((0, 2)), None, [members], [4.0], 0.0, 10.0,
                                   unary=unary)
    assert bool(res.converged)
    np.testing.assert_allclose(np.asarray(res.marginals), want, rtol=0, atol=2e-6)
