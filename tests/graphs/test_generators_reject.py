"""Generators (SBM / planted partition / karate) and reject curves."""

from __future__ import annotations

import itertools

import jax
import networkx as nx
import numpy as np
import pytest

from theorylab import graphs as g


def test_planted_partition_shape_connectivity_and_determinism():
    batch = g.planted_partition(jax.random.key(0), 30, 3, 0.3, 0.05, num_graphs=4)
    a = np.asarray(batch.adjacency)
    assert a.shape == (4, 30, 30)
    np.testing.assert_array_equal(np.asarray(batch.labels), np.repeat([0, 1, 2], 10))
    for adj in a:
        np.testing.assert_array_equal(adj, adj.T)
        assert np.all(np.diag(adj) == 0) and set(np.unique(adj)) <= {0.0, 1.0}
        assert nx.is_connected(nx.from_numpy_array(adj))
    again = g.planted_partition(jax.random.key(0), 30, 3, 0.3, 0.05, num_graphs=4)
    np.testing.assert_array_equal(a, np.asarray(again.adjacency))
    other = g.planted_partition(jax.random.key(1), 30, 3, 0.3, 0.05, num_graphs=4)
    assert not np.array_equal(a, np.asarray(other.adjacency))


def test_edge_densities_match_probabilities():
    """400 graphs of G(60,(2)0.3,0.1) without the connectivity filter: the empirical densities
    are within 4 standard errors (false-positive rate < 1e-4 per check)."""
    n, p_in, p_out, reps = 60, 0.3, 0.1, 400
    batch = g.planted_partition(
        jax.random.key(4), n, 2, p_in, p_out, num_graphs=reps, connected=False
    )
    a = np.asarray(batch.adjacency)
    lab = np.asarray(batch.labels)
    same = (lab[:, None] == lab[None, :]) & ~np.eye(n, dtype=bool)
    diff = lab[:, None] != lab[None, :]
    n_in = reps * same.sum() / 2
    n_out = reps * diff.sum() / 2
    dens_in = a[:, same].sum() / 2 / n_in
    dens_out = a[:, diff].sum() / 2 / n_out
    assert abs(dens_in - p_in) < 4 * np.sqrt(p_in * (1 - p_in) / n_in)
    assert abs(dens_out - p_out) < 4 * np.sqrt(p_out * (1 - p_out) / n_out)


def test_resampling_policy_is_recorded_and_sparse_models_fail_clearly():
    batch = g.stochastic_block_model(
        jax.random.key(0), [10, 10], [[0.15, 0.01], [0.01, 0.15]], num_graphs=5
    )
    assert np.all(batch.attempts >= 1) and np.any(batch.attempts > 1)
    with pytest.raises(RuntimeError, match="still disconnected after 3 samples"):
        g.stochastic_block_model(jax.random.key(0), [20], [[0.0]], max_attempts=3)


def test_unequal_sizes_and_general_probability_matrix():
    probs = [[0.30, 0.20, 0.10], [0.20, 0.24, 0.08], [0.10, 0.08, 0.16]]
    batch = g.stochastic_block_model(jax.random.key(1), [30, 15, 5], probs, num_graphs=2)
    assert np.bincount(np.asarray(batch.labels)).tolist() == [30, 15, 5]


def test_generator_errors():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"num_nodes must be divisible by num_classes.*use 102"):
        g.planted_partition(key, 100, 3, 0.3, 0.1)
    with pytest.raises(ValueError, match=r"p_in must be in \[0.0, 1.0\]"):
        g.planted_partition(key, 100, 2, 1.3, 0.1)
    with pytest.raises(ValueError, match="probs must be symmetric"):
        g.stochastic_block_model(key, [2, 2], [[0.5, 0.1], [0.2, 0.5]])
    with pytest.raises(ValueError, match=r"probs must have shape \(2, 2\)"):
        g.stochastic_block_model(key, [2, 2], [[0.5]])
    with pytest.raises(ValueError, match=r"sizes\[1\] must be in \[1, inf\)"):
        g.stochastic_block_model(key, [2, 0], np.eye(2))


def test_karate_club_ground_truth():
    a, labels = g.karate_club()
    assert a.shape == (34, 34) and float(a.sum()) == 2 * 78
    lab = np.asarray(labels)
    assert lab.sum() == 17 and lab[0] == 0 and lab[33] == 1


# --------------------------------------------------------------------------- reject curves


def brute_force_pair_auc(dist, labels):
    n = len(labels)
    pairs = list(itertools.combinations(range(n), 2))
    intra = [dist[i, j] for i, j in pairs if labels[i] == labels[j]]
    inter = [dist[i, j] for i, j in pairs if labels[i] != labels[j]]
    score = sum(1.0 if a < b else 0.5 if a == b else 0.0 for a in intra for b in inter)
    return score / (len(intra) * len(inter))


def test_reject_curve_auc_matches_brute_force_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(3):
        d = rng.integers(0, 4, size=(12, 12)).astype(float)
        d = d + d.T
        labels = rng.integers(0, 3, size=12)
        curve = g.reject_curve(d, labels)
        assert float(curve.auc) == pytest.approx(brute_force_pair_auc(d, labels), abs=1e-6)
        x, y = np.asarray(curve.inter_share), np.asarray(curve.intra_share)
        assert x[-1] == pytest.approx(1.0) and y[-1] == pytest.approx(1.0)
        assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= 0)
        # trapezoidal area under the curve = AUC (ties drawn as straight segments)
        xs = np.concatenate([[0.0], x])
        ys = np.concatenate([[0.0], y])
        assert np.trapezoid(ys, xs) == pytest.approx(float(curve.auc), abs=1e-6)


def test_reject_curve_perfect_and_averaging():
    labels = np.array([0, 0, 0, 1, 1, 1])
    d = np.where(labels[:, None] == labels[None, :], 1.0, 5.0)
    np.fill_diagonal(d, 0.0)
    curve = g.reject_curve(d, labels)
    assert float(curve.auc) == 1.0
    grid, mean_y = g.average_reject_curves([curve, curve], bins=10)
    assert grid.shape == (11,) and np.all(mean_y[1:] == 1.0)
    with pytest.raises(ValueError, match="labels must define at least two classes"):
        g.reject_curve(d, np.zeros(6, dtype=int))
    with pytest.raises(ValueError, match="distance must not contain NaN"):
        g.reject_curve(np.full((6, 6), np.nan), labels)
