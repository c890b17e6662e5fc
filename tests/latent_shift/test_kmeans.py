"""Tests for theorylab.latent_shift.kmeans (k-means++ and Lloyd in JAX).

Independent references: planted partitions (ARI via theorylab.core), scikit-learn's KMeans
(float64, greedy k-means++, n_init=5), numpy brute-force distances/means/inertia, and the exact
k-means++ (D²) sampling distribution on a tiny point set.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn.cluster import KMeans

from theorylab.core.metrics import adjusted_rand_index
from theorylab.latent_shift.kmeans import (
    KMeansResult,
    _lloyd,
    assign_clusters,
    kmeans,
    kmeans_plusplus_init,
)

# Most tests share one problem shape so that the jitted k-means compiles once per session.
N, DIM, M = 300, 3, 5


def _planted(seed, num_clusters, dim, n, *, sep, noise=1.0):
    """Gaussian blobs (sd ``noise``) whose centres are pairwise at least ``sep`` apart."""
    rng = np.random.default_rng(seed)
    while True:
        centres = rng.uniform(-1, 1, size=(num_clusters, dim)) * sep * num_clusters ** (1 / dim)
        gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
        if (gaps + np.eye(num_clusters) * 1e9).min() >= sep:
            break
    truth = rng.integers(0, num_clusters, n)
    x = centres[truth] + noise * rng.normal(size=(n, dim))
    return x.astype(np.float32), truth, centres


def _brute_inertia(x, centres, labels, weights=None):
    x = np.asarray(x, np.float64)
    c = np.asarray(centres, np.float64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, np.float64)
    return float(np.sum(w * np.sum((x - c[np.asarray(labels)]) ** 2, axis=1)))


def _brute_sq_dist(x, centres):
    x = np.asarray(x, np.float64)
    c = np.asarray(centres, np.float64)
    return np.sum((x[:, None, :] - c[None, :, :]) ** 2, axis=-1)


def test_recovers_well_separated_planted_clusters():
    # Blob centres >= 20 sd apart: every point is closer to its own centre than to any other
    # with overwhelming probability, so the optimum is the planted partition (ARI exactly 1).
    x, truth, centres = _planted(0, M, DIM, N, sep=20.0)
    res = kmeans(jax.random.key(0), x, M)
    assert isinstance(res, KMeansResult)
    assert res.centers.shape == (M, DIM) and res.labels.shape == (N,)
    assert res.labels.dtype == jnp.int32
    assert float(adjusted_rand_index(truth, np.asarray(res.labels))) == 1.0
    assert bool(res.converged) and 1 <= int(res.iterations) <= 100
    # Each returned centre is within ~3 sd/sqrt(cluster size) of a planted centre.
    gap = np.linalg.norm(np.asarray(res.centers)[:, None] - centres[None], axis=-1).min(axis=1)
    assert gap.max() < 0.5
    assert res.run_inertia.shape == (5,)  # n_init=5
    assert float(res.inertia) == pytest.approx(float(res.run_inertia[int(res.best_run)]))


def test_inertia_matches_sklearn_and_brute_force():
    # Planted blobs 4 sd apart (overlapping tails): one uniformly random init (faiss's seeding)
    # lands in local optima up to 3.3x worse on these six problems, so reaching scikit-learn's
    # best-of-5 (greedy k-means++, float64) is a real requirement. Measured over 30 problems of
    # this kind: ours was above sklearn by > 1e-5 once (by 8e-5) and below it once; on the six
    # used here the worst ratio is 1 + 1e-7 (float32 vs float64). Tolerance 1e-4.
    ratios, random_init = [], []
    for seed in range(6):
        x, _, _ = _planted(100 + seed, M, DIM, N, sep=4.0)
        res = kmeans(jax.random.key(seed), x, M)
        x64 = x.astype(np.float64)
        sk_best = KMeans(M, n_init=5, random_state=seed).fit(x64).inertia_
        ratios.append(float(res.inertia) / sk_best)
        random_init.append(
            max(
                KMeans(M, n_init=1, init="random", random_state=s).fit(x64).inertia_
                for s in range(3)
            )
            / sk_best
        )
        # The reported inertia is the objective of the returned labels and centres ...
        brute = _brute_inertia(x, res.centers, res.labels)
        assert float(res.inertia) == pytest.approx(brute, rel=1e-5)
        # ... and the labels are nearest-centre labels (up to float32 near-ties).
        dist = _brute_sq_dist(x, res.centers)
        own = dist[np.arange(len(x)), np.asarray(res.labels)]
        assert np.all(own <= dist.min(axis=1) * (1 + 1e-5) + 1e-5)
    assert max(ratios) <= 1 + 1e-4, ratios
    # The problems are not trivial: single random inits land in clearly worse local optima.
    assert max(random_init) > 1.5, random_init


def test_converged_result_is_a_lloyd_fixed_point():
    x, _, _ = _planted(7, M, DIM, N, sep=3.0)
    res = kmeans(jax.random.key(3), x, M, tol=0.0)  # tol=0: stop only on stable labels
    assert bool(res.converged)
    labels = np.asarray(res.labels)
    x64 = x.astype(np.float64)
    means = np.stack([x64[labels == c].mean(axis=0) for c in range(M)])
    np.testing.assert_allclose(np.asarray(res.centers), means, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(labels, _brute_sq_dist(x, res.centers).argmin(axis=1))


def test_weighted_kmeans_matches_sklearn_sample_weight():
    x, _, _ = _planted(11, M, DIM, N, sep=4.0)
    w = np.random.default_rng(1).integers(1, 4, size=N).astype(np.float32)
    res = kmeans(jax.random.key(5), x, M, weights=w, tol=0.0)
    sk = KMeans(M, n_init=5, random_state=0).fit(x.astype(np.float64), sample_weight=w)
    assert float(res.inertia) <= sk.inertia_ * (1 + 1e-5)
    assert float(res.inertia) == pytest.approx(_brute_inertia(x, res.centers, res.labels, w), 1e-5)
    labels = np.asarray(res.labels)
    means = np.stack([np.average(x[labels == c], axis=0, weights=w[labels == c]) for c in range(M)])
    np.testing.assert_allclose(np.asarray(res.centers), means, atol=1e-5)
    # Zero weight = point absent: compare with sklearn on the remaining points only.
    w0 = w.copy()
    w0[:100] = 0.0
    res0 = kmeans(jax.random.key(5), x, M, weights=w0)
    sub = KMeans(M, n_init=5, random_state=0).fit(x[100:].astype(np.float64), sample_weight=w[100:])
    assert float(res0.inertia) <= sub.inertia_ * (1 + 1e-5)
    assert float(res0.inertia) == pytest.approx(
        _brute_inertia(x[100:], res0.centers, res0.labels[100:], w[100:]), rel=1e-5
    )


def test_translation_invariance_with_large_offset():
    # Points are centred internally, so a large common offset changes nothing (the GEMM form
    # on uncentred float32 data would lose ~8 of 24 mantissa bits here).
    x, _, _ = _planted(3, M, DIM, N, sep=6.0)
    a = kmeans(jax.random.key(1), x, M)
    b = kmeans(jax.random.key(1), x + np.float32(300.0), M)
    assert float(adjusted_rand_index(np.asarray(a.labels), np.asarray(b.labels))) == 1.0
    assert float(b.inertia) == pytest.approx(float(a.inertia), rel=1e-3)
    np.testing.assert_allclose(np.asarray(b.centers) - 300.0, np.asarray(a.centers), atol=1e-2)


def test_same_key_same_result_and_vmap_over_keys():
    x, _, _ = _planted(5, M, DIM, N, sep=3.0)
    a = kmeans(jax.random.key(42), x, M)
    b = kmeans(jax.random.key(42), x, M)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.vmap(lambda k: kmeans(k, x, M))(keys)
    assert batched.centers.shape == (3, M, DIM) and batched.labels.shape == (3, N)
    for i in range(3):
        single = kmeans(keys[i], x, M)
        np.testing.assert_array_equal(np.asarray(batched.labels[i]), np.asarray(single.labels))
        np.testing.assert_allclose(
            np.asarray(batched.inertia[i]), np.asarray(single.inertia), rtol=1e-6
        )


def test_assign_clusters_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    c = rng.normal(size=(6, 4)).astype(np.float32)
    out = assign_clusters(x, c)
    dist = _brute_sq_dist(x, c)
    np.testing.assert_array_equal(np.asarray(out.labels), dist.argmin(axis=1))
    np.testing.assert_allclose(np.asarray(out.sq_distances), dist.min(axis=1), atol=1e-5)
    assert np.all(np.asarray(out.sq_distances) >= 0)


def test_plusplus_returns_distinct_data_points():
    x = np.array([[0, 0], [0, 0], [1, 0], [5, 5], [5, 5], [9, 1]], dtype=np.float32)
    for seed in range(5):
        c = np.asarray(kmeans_plusplus_init(jax.random.key(seed), x, 4))
        assert {tuple(row) for row in c} == {tuple(row) for row in np.unique(x, axis=0)}
    w = np.array([1, 1, 0, 1, 1, 1], dtype=np.float32)  # [1, 0] has weight 0: never a centre
    for seed in range(5):
        c = np.asarray(kmeans_plusplus_init(jax.random.key(seed), x, 3, weights=w))
        assert (1.0, 0.0) not in {tuple(row) for row in c}


def test_plusplus_d2_sampling_distribution():
    # Exact law of plain D² sampling (local_trials=1) for 2 centres from 4 points:
    # P(first=i) = 1/4 and P(second=j | first=i) = |x_i - x_j|² / Σ_l |x_i - x_l|².
    x = np.array([[0.0], [1.0], [3.0], [7.0]], dtype=np.float32)
    d2 = (x - x.T) ** 2
    expected = {}
    for i, j in itertools.permutations(range(4), 2):
        pair = frozenset((i, j))
        expected[pair] = expected.get(pair, 0.0) + 0.25 * d2[i, j] / d2[i].sum()
    draws = 4000
    keys = jax.random.split(jax.random.key(0), draws)
    centres = jax.vmap(lambda k: kmeans_plusplus_init(k, x, 2, local_trials=1))(keys)
    idx = np.asarray(centres)[..., 0]  # values 0, 1, 3, 7 identify the points
    lookup = {0.0: 0, 1.0: 1, 3.0: 2, 7.0: 3}
    pairs = [frozenset((lookup[a], lookup[b])) for a, b in idx]
    assert all(len(p) == 2 for p in pairs)
    support = sorted(expected, key=sorted)
    observed = np.array([sum(p == s for p in pairs) for s in support])
    probs = np.array([expected[s] for s in support])
    # Chi-square goodness of fit, 5 dof; false-positive rate 1e-3 (seeded, so deterministic).
    pvalue = stats.chisquare(observed, draws * probs).pvalue
    assert pvalue > 1e-3, (observed, draws * probs)
    # A broken sampler (uniform second centre) is rejected by the same test.
    uniform = np.full(len(support), 1.0 / len(support))
    assert stats.chisquare(observed, draws * uniform).pvalue < 1e-3


def test_empty_cluster_is_reseeded():
    # A centre far from all data gets no points in the first assignment; it must be moved onto
    # a data point (the farthest from its own centre) rather than stay empty or become NaN.
    x, _, _ = _planted(2, 3, 2, 90, sep=8.0)
    xj = jnp.asarray(x)
    w = jnp.ones(90, dtype=jnp.float32)
    init = jnp.asarray([x[0], x[1], [1e3, 1e3]], dtype=jnp.float32)
    centres, labels, _, _, converged = _lloyd(
        xj, jnp.sum(xj * xj, axis=1), w, init, jnp.float32(0.0), 3, 100
    )
    assert np.all(np.isfinite(np.asarray(centres)))
    assert np.bincount(np.asarray(labels), minlength=3).min() > 0
    assert bool(converged)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_clusters": 7}, ValueError, "num_clusters is larger than the data allows"),
        ({"num_clusters": 0}, ValueError, "num_clusters"),
        ({"num_clusters": 2.0}, TypeError, "num_clusters"),
        ({"n_init": 0}, ValueError, "n_init"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"weights": -np.ones(6)}, ValueError, "weights"),
        ({"weights": np.zeros(6)}, ValueError, "weights"),
        ({"weights": np.ones(5)}, ValueError, "weights"),
        ({"local_trials": 0}, ValueError, "local_trials"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    args = {"num_clusters": 2, **kwargs}
    m = args.pop("num_clusters")
    with pytest.raises(error, match=match):
        kmeans(jax.random.key(0), x, m, **args)


def test_bad_points():
    key = jax.random.key(0)
    dup = np.array([[0, 0], [0, 0], [1, 1], [1, 1]], dtype=np.float32)
    with pytest.raises(ValueError, match="only 2 distinct rows"):
        kmeans(key, dup, 3)
    with pytest.raises(ValueError, match="only 2 distinct rows"):
        kmeans_plusplus_init(key, dup, 3)
    nan = np.ones((5, 2), dtype=np.float32)
    nan[2, 1] = np.nan
    with pytest.raises(ValueError, match="points must contain only finite"):
        kmeans(key, nan, 2)
    with pytest.raises(ValueError, match="points must be 2-dimensional"):
        kmeans(key, np.ones(5, dtype=np.float32), 2)
    with pytest.raises(TypeError, match="key"):
        kmeans(0, dup, 2)
    with pytest.raises(ValueError, match="centers must have the same number of columns"):
        assign_clusters(dup, np.ones((2, 3)))
