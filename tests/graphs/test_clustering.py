"""Kernel k-means and kernel Ward against independent computations."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import AgglomerativeClustering

from theorylab import graphs as g
from theorylab.core import adjusted_rand_index


def blobs(seed, n_per=15, k=3, dim=4, spread=0.3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 4
    x = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centers])
    return x, np.repeat(np.arange(k), n_per)


def inertia_in_feature_space(x, labels):
    total = 0.0
    for c in np.unique(labels):
        pts = x[labels == c]
        total += np.sum((pts - pts.mean(axis=0)) ** 2)
    return total


@pytest.mark.x64
@settings(max_examples=15)
@given(seed=st.integers(0, 10**6), k=st.integers(2, 4))
def test_linear_kernel_kmeans_is_a_lloyd_fixed_point(seed, k):
    """With K = XXᵀ kernel k-means is k-means on X: the reported inertia equals the feature-
    space within-cluster sum of squares, and every point is nearest to its own centroid."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(20, 3))
    res = g.kernel_kmeans(jax.random.key(seed), x @ x.T, k, n_init=3)
    labels = np.asarray(res.labels)
    assert bool(res.converged) and bool(res.valid)
    assert len(np.unique(labels)) == k  # no empty clusters
    assert float(res.inertia) == pytest.approx(inertia_in_feature_space(x, labels), rel=1e-9)
    centroids = np.stack([x[labels == c].mean(axis=0) for c in range(k)])
    dist = ((x[:, None, :] - centroids[None]) ** 2).sum(-1)
    own = dist[np.arange(20), labels]
    assert np.all(own <= dist.min(axis=1) + 1e-9)


def test_recovers_separated_blobs_and_best_of_restarts():
    x, truth = blobs(0)
    res = g.kernel_kmeans(jax.random.key(1), x @ x.T, 3, n_init=10)
    assert float(adjusted_rand_index(truth, res.labels)) == 1.0
    run_inertia = np.asarray(res.run_inertia)
    assert float(res.inertia) == pytest.approx(run_inertia.min())
    assert int(res.best_run) == int(np.argmin(run_inertia))


@pytest.mark.x64
def test_kmeans_invariant_to_scaling_and_additive_row_column_terms():
    a = nx.to_numpy_array(nx.karate_club_graph(), weight=None)
    k = np.asarray(g.kernel(a, "logComm", flat=0.5))
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=34)[:, None], rng.normal(size=34)[None, :]
    key = jax.random.key(7)
    base = np.asarray(g.kernel_kmeans(key, k, 2).labels)
    shifted = np.asarray(g.kernel_kmeans(key, 3.0 * k + u + v, 2).labels)
    np.testing.assert_array_equal(base, shifted)
    # a kernel that is not such a transform changes the partition (the test can fail)
    other = np.asarray(g.kernel_kmeans(key, np.asarray(g.kernel(a, "For", flat=0.5)), 2).labels)
    assert float(adjusted_rand_index(base, other)) < 0.9


@pytest.mark.x64
def test_factored_and_dense_kernels_give_identical_runs():
    batch = g.planted_partition(jax.random.key(2), 40, 2, 0.4, 0.1)
    a = np.asarray(batch.adjacency[0])
    for name in ("PPR", "Heat", "pWalk", "CT"):
        kwargs = {} if name == "CT" else {"flat": 0.5}
        key = jax.random.key(5)
        dense = g.kernel_kmeans(key, g.kernel(a, name, **kwargs), 2, n_init=4)
        fact = g.kernel_kmeans(key, g.factored_kernel(a, name, **kwargs), 2, n_init=4)
        np.testing.assert_array_equal(np.asarray(dense.labels), np.asarray(fact.labels))
        assert float(dense.inertia) == pytest.approx(float(fact.inertia), rel=1e-8)


def test_empty_clusters_are_refilled():
    """Five identical points and one far point, k = 3: k-means++ picks duplicate centres, and
    the refill step must still return three non-empty clusters."""
    x = np.array([[0.0], [0.0], [0.0], [0.0], [0.0], [10.0]])
    res = g.kernel_kmeans(jax.random.key(0), x @ x.T, 3, n_init=5)
    assert sorted(np.bincount(np.asarray(res.labels), minlength=3).tolist())[0] >= 1


def test_modularity_matches_networkx_and_selection():
    graph = nx.karate_club_graph()
    a = nx.to_numpy_array(graph, nodelist=sorted(graph), weight=None)
    rng = np.random.default_rng(0)
    for _ in range(3):
        labels = rng.integers(0, 3, size=34)
        parts = [set(np.flatnonzero(labels == c)) for c in range(3)]
        want = nx.community.modularity(nx.Graph(graph.edges()), parts)
        assert float(g.modularity(a, jnp.asarray(labels), 3)) == pytest.approx(want, abs=1e-6)
    k = np.asarray(g.kernel(a, "For", flat=0.5))
    res = g.kernel_kmeans(jax.random.key(0), k, 2, select="modularity", adjacency=a)
    mods = np.asarray(res.run_modularity)
    assert float(res.modularity) == pytest.approx(mods.max())


def test_jit_vmap_over_kernels():
    x1, _ = blobs(1, k=2)
    x2, _ = blobs(2, k=2)
    ks = jnp.stack([x1 @ x1.T, x2 @ x2.T])

    @jax.jit
    def run(keys, ks):
        return jax.vmap(lambda key, k: g.kernel_kmeans_core(key, k, None, 2, 3, 50))(keys, ks)

    out = run(jax.random.split(jax.random.key(0), 2), ks)
    assert out.labels.shape == (2, 30)
    single = g.kernel_kmeans(
        jax.random.split(jax.random.key(0), 2)[1], ks[1], 2, n_init=3, max_iter=50
    )
    np.testing.assert_array_equal(np.asarray(out.labels[1]), np.asarray(single.labels))


def test_kernel_ward_matches_sklearn_ward():
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(25, 3))
        ours = g.kernel_ward(x @ x.T, 4)
        theirs = AgglomerativeClustering(n_clusters=4, linkage="ward").fit_predict(x)
        assert float(adjusted_rand_index(ours, theirs)) == pytest.approx(1.0)
        assert ours.min() == 0 and ours.max() == 3


@pytest.mark.x64
def test_kernel_ward_on_indefinite_log_kernel_runs():
    a = nx.to_numpy_array(nx.karate_club_graph(), weight=None)
    labels = g.kernel_ward(np.asarray(g.kernel(a, "logComm", flat=0.5)), 2)
    assert set(labels.tolist()) == {0, 1}


def test_brute_force_optimum_on_tiny_problem():
    """On 8 points in 2 well-separated groups, the best of 10 restarts finds the global optimum
    of the k-means objective (checked by enumerating all 2^7 bipartitions)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=(4, 2)), 6 + rng.normal(size=(4, 2))])
    best = min(
        inertia_in_feature_space(x, np.array((0, *bits)))
        for bits in itertools.product([0, 1], repeat=7)
        if sum(bits) >= 1  # point 0 fixes cluster 0; cluster 1 must be non-empty
    )
    res = g.kernel_kmeans(jax.random.key(0), x @ x.T, 2, n_init=10)
    assert float(res.inertia) == pytest.approx(best, rel=1e-5)


def test_kmeans_and_ward_errors():
    k = np.eye(4)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"n_clusters must be in \[1, 4\]; got 5"):
        g.kernel_kmeans(key, k, 5)
    with pytest.raises(ValueError, match="select='modularity' needs adjacency"):
        g.kernel_kmeans(key, k, 2, select="modularity")
    with pytest.raises(ValueError, match="select must be one of"):
        g.kernel_kmeans(key, k, 2, select="size")
    with pytest.raises(ValueError, match="kernel must be a square"):
        g.kernel_kmeans(key, np.ones((3, 4)), 2)
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        g.kernel_kmeans(0, k, 2)
    with pytest.raises(ValueError, match=r"adjacency must have shape \(4, 4\)"):
        g.kernel_kmeans(key, k, 2, adjacency=np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"n_clusters must be in \[1, 4\]"):
        g.kernel_ward(k, 9)
    with pytest.raises(ValueError, match="kernel must contain only finite"):
        g.kernel_ward(np.full((3, 3), np.inf), 2)
