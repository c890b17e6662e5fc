"""Helpers and verdict logic of the Havaldar et al. reproduction (CI runs the quick paper)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from papers import discover
from papers.havaldar2024 import reproduce as rep
from theorylab.llp import graph_from_edges, loopy_bp, make_layout, undirected_edges


def test_registered():
    assert "havaldar2024" in discover()
    assert set(rep.SCALES) == {"quick", "full"}
    for scale in rep.SCALES.values():
        assert set(scale["sklearn"]) == set(scale["sklearn_dllp_ks"]) <= set(rep.LOADERS)
        assert set(scale["easyllp_ks"]) <= {k for g in scale["gaussian"] for k in g["ks"]}


def test_auc_matches_pair_counting_with_ties():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.4])
    pairs = [(1.0 if sp > sn else 0.5 if sp == sn else 0.0)
             for sp in s[y == 1] for sn in s[y == 0]]
    assert math.isclose(rep.auc(y, s), np.mean(pairs))
    assert rep.auc([1, 1, 0], [3.0, 2.0, 1.0]) == 1.0
    assert rep.auc([0, 0, 1], [3.0, 2.0, 1.0]) == 0.0
    assert math.isnan(rep.auc([1, 1], [0.2, 0.3]))


def test_split_fit_validation_uses_a_multiple_of_the_largest_bag():
    X = np.arange(4096 * 2, dtype=np.float32).reshape(4096, 2)
    y = np.arange(4096) % 2
    X_fit, y_fit, X_val, y_val = rep.split_fit_validation(X, y, (8, 32, 512))
    assert len(y_val) == 410 and len(y_fit) == 3584 and len(y_fit) % 512 == 0
    np.testing.assert_array_equal(X_val, X[-410:])
    np.testing.assert_array_equal(X_fit, X[:3584])
    with pytest.raises(ValueError, match="fewer than one bag"):
        rep.split_fit_validation(X[:100], y[:100], (128,))


def test_bags_per_batch_and_runtime_bag_size():
    assert [rep.bags_per_batch(k) for k in (1, 8, 128, 512)] == [128, 16, 1, 1]
    assert rep.runtime_bag_size(2**12, 1024) == 64
    assert rep.runtime_bag_size(2**14, 1024) == 1024


def test_pad_graph_adds_distinct_zero_weight_edges():
    edges = np.array([[0, 1], [1, 2], [0, 3]])
    graph = graph_from_edges(edges, 6, weights=np.array([0.5, 0.25, 0.125]))
    padded = rep.pad_graph(graph, 9, 6)
    pairs, weights = undirected_edges(padded)
    assert pairs.shape == (9, 2) and len({tuple(p) for p in pairs.tolist()}) == 9
    kept = {tuple(p): w for p, w in zip(pairs.tolist(), weights.tolist(), strict=True)}
    assert kept[(0, 1)] == 0.5 and kept[(1, 2)] == 0.25 and kept[(0, 3)] == 0.125
    assert sum(w == 0 for w in kept.values()) == 6
    assert rep.pad_graph(graph, 3, 6) is graph
    with pytest.raises(ValueError, match="more than num_edges"):
        rep.pad_graph(graph, 2, 6)
    with pytest.raises(ValueError, match="cannot add"):
        rep.pad_graph(graph, 16, 6)  # K6 has 15 edges
    control = rep.no_edge_graph(6, 9)
    assert control.src.shape == padded.src.shape and not np.any(np.asarray(control.weight))


def test_zero_weight_padding_leaves_bp_marginals_unchanged():
    rng = np.random.default_rng(0)
    n = 12
    edges = np.array([[i, (i + 1) % n] for i in range(n)] + [[0, 6], [3, 9]])
    graph = graph_from_edges(edges, n, weights=rng.uniform(0.1, 1.0, len(edges)))
    layout = make_layout(np.repeat(np.arange(3), 4), np.array([1.0, 3.0, 2.0]))
    opts = {"lam_s": 2.0, "lam_b": 3.0, "max_iters": 50, "count_method": "gaussian"}
    plain = np.asarray(loopy_bp(layout, graph, **opts).marginals)
    padded = np.asarray(loopy_bp(layout, rep.pad_graph(graph, 2 * n, n), **opts).marginals)
    np.testing.assert_allclose(padded, plain, atol=1e-5)
    # the no-edge control (all-zero weights, padded shape) == no kNN factors (lam_s = 0)
    control = np.asarray(loopy_bp(layout, rep.no_edge_graph(n, 2 * n), **opts).marginals)
    no_knn = np.asarray(loopy_bp(layout, graph, **{**opts, "lam_s": 0.0}).marginals)
    np.testing.assert_allclose(control, no_knn, atol=1e-6)
    assert np.max(np.abs(no_knn - plain)) > 1e-3  # the edges do matter at lam_s = 2


def test_random_graph_has_no_self_loops_or_duplicates():
    import jax

    graph = rep.random_graph(jax.random.key(0), 50, k=3)
    pairs, weights = undirected_edges(graph)
    assert np.all(pairs[:, 0] < pairs[:, 1])
    assert len({tuple(p) for p in pairs.tolist()}) == len(pairs) <= 150
    assert np.all((weights > 0) & (weights < 1))


def test_gain_verdict():
    ks = [8, 32, 128, 512]
    llp = dict(zip(ks, [0.90, 0.90, 0.90, 0.90], strict=True))
    grows = dict(zip(ks, [0.90, 0.89, 0.87, 0.62], strict=True))
    v = rep.gain_verdict(ks, llp, grows)
    assert v["verdict"] == "agrees" and np.allclose(v["gaps"], [0.0, 0.01, 0.03, 0.28])
    flat = dict(zip(ks, [0.90, 0.90, 0.90, 0.895], strict=True))
    assert rep.gain_verdict(ks, llp, flat)["verdict"] == "partly"  # grows, but < 0.02
    dip = dict(zip(ks, [0.85, 0.90, 0.92, 0.87], strict=True))  # gap 0.05 -> -0.02: drops
    v = rep.gain_verdict(ks, llp, dip)
    assert v["verdict"] == "partly" and not v["grows"] and v["large_gap"]
    worse = dict(zip(ks, [0.85, 0.90, 0.92, 0.95], strict=True))
    assert rep.gain_verdict(ks, llp, worse)["verdict"] == "disagrees"


def test_small_k_verdict():
    ks = [8, 32, 128]
    v = rep.small_k_verdict(ks, {8: 0.90, 32: 0.895, 128: 0.5}, {8: 0.905, 32: 0.90, 128: 0.9})
    assert v["verdict"] == "agrees" and set(v["gaps"]) == {"8", "32"}
    v = rep.small_k_verdict(ks, {8: 0.88, 32: 0.9, 128: 0.9}, {8: 0.9, 32: 0.9, 128: 0.9})
    assert v["verdict"] == "disagrees"
    assert rep.small_k_verdict([128], {128: 0.9}, {128: 0.9})["verdict"] == "untested"


def test_pseudo_label_verdict():
    good = {32: 0.86, 128: 0.85, 512: 0.84}
    v = rep.pseudo_label_verdict(good)
    assert v["verdict"] == "agrees" and v["spec_measured"]["128"] == 0.851
    assert rep.pseudo_label_verdict({**good, 512: 0.5})["verdict"] == "partly"
    assert rep.pseudo_label_verdict({32: 0.6, 128: 0.6, 512: 0.6})["verdict"] == "disagrees"
    assert rep.pseudo_label_verdict({32: 0.9})["verdict"] == "partly"  # missing K


def test_xor_verdict_judges_only_k_up_to_128():
    bp = {32: 0.98, 128: 0.97, 512: 0.52}
    control = {32: 0.6, 128: 0.55, 512: 0.51}
    v = rep.xor_verdict(bp, control)
    assert v["verdict"] == "agrees" and not v["rows"]["512"]["judged"]
    assert rep.xor_verdict({**bp, 128: 0.94}, control)["verdict"] == "disagrees"
    assert rep.xor_verdict(bp, {**control, 32: 0.8})["verdict"] == "disagrees"  # margin 0.18


def _rows(exponent):
    return [{"mode": "count", "n": n, "warm_s_per_100_iterations": 1e-6 * n**exponent}
            for n in (2**12, 2**14, 2**16)]


def test_runtime_verdict_and_exponent():
    assert math.isclose(rep.fit_exponent([1, 10, 100], [2.0, 20.0, 200.0]), 1.0)
    cheap = {"knn_s": 0.05, "bp_s": 0.05, "train_s": 0.2}
    v = rep.runtime_verdict(cheap, _rows(1.0))
    assert v["verdict"] == "agrees" and math.isclose(v["overhead_ratio"], 0.5)
    assert math.isclose(v["exponent"], 1.0)
    assert rep.runtime_verdict({**cheap, "train_s": 0.05}, _rows(1.0))["verdict"] == "partly"
    assert rep.runtime_verdict({**cheap, "train_s": 0.01}, _rows(1.0))["verdict"] == "disagrees"
    assert rep.runtime_verdict(cheap, _rows(1.4))["verdict"] == "agrees"
    assert rep.runtime_verdict(cheap, _rows(2.0))["verdict"] == "disagrees"
    adult = [*_rows(1.0), {"mode": "count", "n": 50_000, "warm_s_per_100_iterations": 0.7}]
    v = rep.runtime_verdict(cheap, adult)
    assert v["adult_scale_warm_s"] == 0.7 and math.isclose(v["exponent"], 1.0)


def test_mean_std_ignores_nan():
    r = rep._mean_std([0.5, float("nan"), 0.7])
    assert math.isclose(r["mean"], 0.6) and math.isclose(r["std"], math.sqrt(0.02))
    assert math.isnan(rep._mean_std([float("nan")])["mean"])
