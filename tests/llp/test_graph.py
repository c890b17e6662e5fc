"""Tests for theorylab.llp.graph: exact cosine kNN (vs scikit-learn) and BP edge arrays."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theorylab.llp.graph import (
    KnnGraph,
    cosine_knn,
    graph_from_edges,
    knn_graph,
    undirected_edges,
)

sk_neighbors = pytest.importorskip("sklearn.neighbors")


def _features(n=103, d=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _sklearn_knn(X, k):
    nn = sk_neighbors.NearestNeighbors(n_neighbors=k, metric="cosine").fit(X)
    dist, idx = nn.kneighbors()  # without X: each point's own index is excluded
    return dist, idx


def _check_structure(graph: KnnGraph, n: int):
    src, dst, rev = (np.asarray(a) for a in (graph.src, graph.dst, graph.rev))
    w = np.asarray(graph.weight)
    assert src.dtype == dst.dtype == rev.dtype == np.int32
    assert src.shape == dst.shape == rev.shape == w.shape and src.shape[0] % 2 == 0
    assert np.all((src >= 0) & (src < n) & (dst >= 0) & (dst < n))
    assert np.all(src != dst)  # no self loops
    np.testing.assert_array_equal(src[rev], dst)
    np.testing.assert_array_equal(dst[rev], src)
    np.testing.assert_array_equal(rev[rev], np.arange(src.shape[0]))
    np.testing.assert_array_equal(w[rev], w)  # symmetric weights
    pairs = src.astype(np.int64) * n + dst
    assert np.unique(pairs).size == pairs.size  # no duplicate directed edges
    return src, dst, w


# --------------------------------------------------------------------------- cosine kNN


@pytest.mark.parametrize("block_size", [16, 4096])  # 16 does not divide n; 4096 > n
def test_cosine_knn_matches_sklearn(block_size):
    X = _features()
    res = cosine_knn(X, 5, block_size=block_size)
    dist, idx = _sklearn_knn(X, 5)
    assert res.indices.shape == (103, 5) and res.indices.dtype == jnp.int32
    np.testing.assert_array_equal(np.sort(np.asarray(res.indices), 1), np.sort(idx, 1))
    np.testing.assert_allclose(res.cosine_distance, dist, atol=2e-6)
    eucl = np.linalg.norm(X[:, None, :] - X[np.asarray(res.indices)], axis=-1)
    np.testing.assert_allclose(res.euclidean_distance, eucl, rtol=1e-5, atol=1e-6)


def test_cosine_knn_zero_rows_are_safe():
    X = _features(20, 3)
    X[4] = 0.0
    res = cosine_knn(X, 3, block_size=8)
    assert np.all(np.isfinite(np.asarray(res.cosine_distance)))
    np.testing.assert_allclose(res.cosine_distance[4], 1.0)  # as scikit-learn's cosine metric
    assert 4 not in np.asarray(res.indices[4])


# --------------------------------------------------------------------------- knn_graph


def test_knn_graph_edges_weights_and_reverse_index():
    X = _features()
    n, k = X.shape[0], 5
    graph = knn_graph(X, k, block_size=16)
    src, dst, w = _check_structure(graph, n)
    _, idx = _sklearn_knn(X, k)
    expected = {(min(i, j), max(i, j)) for i in range(n) for j in idx[i]}
    edges, ew = undirected_edges(graph)
    assert {tuple(e) for e in edges.tolist()} == expected
    assert edges.shape[0] == src.shape[0] // 2
    assert np.all(edges[:, 0] < edges[:, 1])
    # Matérn-1/2 weights on the Euclidean distance
    np.testing.assert_allclose(
        w, np.exp(-np.linalg.norm(X[src] - X[dst], axis=1)), rtol=1e-5, atol=1e-7
    )
    assert ew.shape == (edges.shape[0],)
    # every node has at least k neighbours in the undirected graph
    assert np.all(np.bincount(src, minlength=n) >= k)


def test_knn_graph_filter_and_uniform_weights():
    X = _features()
    res = cosine_knn(X, 5, block_size=16)
    graph = knn_graph(X, 5, block_size=16, max_cosine_distance=0.5, weight="uniform")
    src, dst, w = _check_structure(graph, X.shape[0])
    np.testing.assert_array_equal(w, 1.0)
    kept = np.asarray(res.cosine_distance) < 0.5
    rows = np.repeat(np.arange(X.shape[0]), 5).reshape(-1, 5)
    i, j = rows[kept], np.asarray(res.indices)[kept]
    expected = {(min(a, b), max(a, b)) for a, b in zip(i.tolist(), j.tolist())}
    assert {(int(a), int(b)) for a, b in zip(src, dst) if a < b} == expected
    assert 0 < len(expected) < 5 * X.shape[0]
    cos = 1.0 - np.sum(
        (X[src] / np.linalg.norm(X[src], axis=1, keepdims=True))
        * (X[dst] / np.linalg.norm(X[dst], axis=1, keepdims=True)),
        axis=1,
    )
    assert np.all(cos < 0.5 + 1e-5)


@pytest.mark.parametrize(
    ("X", "kwargs", "exc", "fragment"),
    [
        (np.ones((4, 2)), {"k": 4}, ValueError, "k must be <"),
        (np.ones((4, 2)), {"k": 0}, ValueError, "k"),
        (np.array([[0.0, 1.0], [np.nan, 1.0], [1.0, 1.0]]), {"k": 1}, ValueError, "X"),
        (np.ones(4), {"k": 1}, ValueError, "X"),
        (np.ones((4, 2)), {"k": 1, "weight": "gaussian"}, ValueError, "weight"),
        (np.ones((4, 2)), {"k": 1, "max_cosine_distance": 0.0}, ValueError, "max_cosine"),
        (np.ones((4, 2)), {"k": 1, "max_cosine_distance": 2.5}, ValueError, "max_cosine"),
        (np.ones((4, 2)), {"k": 1, "block_size": 0}, ValueError, "block_size"),
        (np.ones((4, 2)), {"k": 1.0}, TypeError, "k"),
    ],
)
def test_knn_graph_validation(X, kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        knn_graph(X, **kwargs)


# --------------------------------------------------------------------------- user edge lists


def test_graph_from_edges_both_directions_and_errors():
    edges = np.array([[2, 0], [0, 2], [1, 3]])
    graph = graph_from_edges(edges, 4, weights=[0.5, 0.5, 2.0])
    _check_structure(graph, 4)
    e, w = undirected_edges(graph)
    np.testing.assert_array_equal(e, [[0, 2], [1, 3]])
    np.testing.assert_allclose(w, [0.5, 2.0])
    empty = graph_from_edges(np.zeros((0, 2), dtype=np.int32), 3)
    assert empty.src.shape == (0,) and empty.weight.shape == (0,)
    with pytest.raises(ValueError, match="weights must agree"):
        graph_from_edges(edges, 4, weights=[0.5, 0.7, 2.0])
    with pytest.raises(ValueError, match="self loops"):
        graph_from_edges([[1, 1]], 4)
    with pytest.raises(ValueError, match="edges"):
        graph_from_edges([[0, 4]], 4)
    with pytest.raises(ValueError, match="edges"):
        graph_from_edges([0, 1, 2], 4)
    with pytest.raises(ValueError, match="weights"):
        graph_from_edges([[0, 1]], 4, weights=[-1.0])
    with pytest.raises(ValueError, match="weights"):
        graph_from_edges([[0, 1]], 4, weights=[np.nan])
    with pytest.raises(ValueError, match="weights"):
        graph_from_edges([[0, 1]], 4, weights=[1.0, 2.0])
    with pytest.raises(TypeError, match="edges"):
        graph_from_edges(np.array([[0.0, 1.0]]), 4)
    with pytest.raises(TypeError, match="graph"):
        undirected_edges((edges, edges))


@settings(max_examples=15)
@given(
    n=st.integers(2, 12),
    pairs=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=30),
)
def test_graph_from_edges_property(n, pairs):
    """Random (possibly repeated, either-direction) edge lists give a valid de-duplicated graph."""
    edges = np.array([(a % n, b % n) for a, b in pairs if a % n != b % n], dtype=np.int64)
    edges = edges.reshape(-1, 2)
    graph = graph_from_edges(edges, n)
    _check_structure(graph, n)
    got, _ = undirected_edges(graph)
    expected = sorted({(min(a, b), max(a, b)) for a, b in edges.tolist()})
    assert [tuple(e) for e in got.tolist()] == expected


@pytest.mark.x64
def test_knn_graph_float64_under_x64():
    X = _features(30, 4).astype(np.float64)
    graph = knn_graph(X, 3)
    assert graph.weight.dtype == jnp.float64 and graph.src.dtype == jnp.int32
    src, dst, w = _check_structure(graph, 30)
    np.testing.assert_allclose(w, np.exp(-np.linalg.norm(X[src] - X[dst], axis=1)), rtol=1e-12)
