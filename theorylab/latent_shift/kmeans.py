"""Euclidean k-means (k-means++ seeding, Lloyd iterations) in JAX, with vmapped restarts.

DDFA's discretisation step (Roberts et al. 2022, §1.4 (ii) of the spec) clusters the
discriminator outputs ``f(x) ∈ Δ^{r-1}`` of validation + train with faiss ``Kmeans(niter=100,
nredo=5)``; :func:`kmeans` is the JAX counterpart, with the same defaults ``max_iter=100``,
``n_init=5``.

- **Seeding** (:func:`kmeans_plusplus_init`): D² sampling (Arthur & Vassilvitskii 2007). The
  first centre is drawn with probability proportional to the point weights; for each further
  one ``local_trials`` candidates are drawn proportionally to ``w_i · min_c ||x_i - c||²`` and
  the one leaving the lowest potential is kept (greedy k-means++, as scikit-learn; default
  ``2 + floor(ln m)`` trials, ``1`` = plain D² sampling). O(local_trials · m · n · dim).
  (faiss, used by the paper, seeds uniformly at random instead.)
- **Lloyd** (``lax.while_loop``): assign each point to its nearest centre with the GEMM form
  ``||x||² - 2 x·c + ||c||²`` (clipped at 0, matmuls at ``Precision.HIGHEST``), then move each
  centre to the weighted mean of its points. O(n · m · dim) per iteration. Points are centred
  (weighted mean subtracted) before the loop so the GEMM form does not lose float32 digits to
  a large offset; centres are shifted back at the end.
- **Stopping**: a run stops when its labels did not change (and no cluster was empty), or when
  the total squared centre shift ``Σ_c ||c_new - c_old||²`` falls to ``tol`` times the mean
  per-feature weighted variance of the data (scikit-learn's relative tolerance), or after
  ``max_iter`` iterations. ``converged`` is False only in the last case.
- **Empty clusters**: a cluster that receives no (positive-weight) point is re-seeded at the
  point farthest from its own centre among clusters with more than one member (one empty
  cluster per iteration; a run never counts as converged while a cluster is empty), and the
  next iteration reassigns.
- **Final step**: after the loop every point is assigned once more to its nearest centre, so
  the returned ``labels`` are the nearest-centre labels of the returned ``centers`` and
  ``inertia = Σ_i w_i ||x_i - centers[labels_i]||²`` (computed directly, not via the GEMM
  form). At a converged run the centres are also the weighted means of their points.
- **Restarts**: ``n_init`` runs from ``jax.random.split(key, n_init)`` are executed with
  ``vmap`` in one compiled call; the run of lowest inertia is returned.

Dtype: float32 by default; float64 inputs stay float64 when x64 is enabled. Labels are int32.
Everything behind the public functions is jittable and vmappable over keys (sizes static).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import (
    check_array,
    check_float,
    check_int,
    check_key,
    describe,
    is_concrete,
)

__all__ = [
    "ClusterAssignment",
    "KMeansResult",
    "assign_clusters",
    "kmeans",
    "kmeans_core",
    "kmeans_plusplus_init",
]

_HIGHEST = jax.lax.Precision.HIGHEST


class ClusterAssignment(NamedTuple):
    """Nearest-centre assignment (:func:`assign_clusters`).

    Attributes:
      labels: ``(n,)`` int32 index of the nearest centre (ties: the lowest index).
      sq_distances: ``(n,)`` squared Euclidean distance to that centre (GEMM form, >= 0).
    """

    labels: jax.Array
    sq_distances: jax.Array


class KMeansResult(NamedTuple):
    """Result of :func:`kmeans` (the best of ``n_init`` restarts).

    Attributes:
      centers: ``(num_clusters, dim)`` cluster centres.
      labels: ``(n,)`` int32 nearest-centre labels of the points.
      inertia: ``Σ_i w_i ||x_i - centers[labels_i]||²`` of the chosen run.
      iterations: Lloyd iterations run by the chosen restart (int32).
      converged: whether the chosen restart stopped before ``max_iter``.
      run_inertia: ``(n_init,)`` inertia of every restart.
      best_run: index of the chosen restart.
    """

    centers: jax.Array
    labels: jax.Array
    inertia: jax.Array
    iterations: jax.Array
    converged: jax.Array
    run_inertia: jax.Array
    best_run: jax.Array


# --------------------------------------------------------------------------- distances


def _pairwise_sq_distances(points, centers, point_sq=None):
    """``(n, m)`` squared distances by ``||x||² - 2 x·c + ||c||²``, clipped at 0."""
    if point_sq is None:
        point_sq = jnp.sum(points * points, axis=1)
    center_sq = jnp.sum(centers * centers, axis=1)
    cross = jnp.matmul(points, centers.T, precision=_HIGHEST)
    return jnp.maximum(point_sq[:, None] - 2.0 * cross + center_sq[None, :], 0.0)


@jax.jit
def _assign(points, centers):
    dist = _pairwise_sq_distances(points, centers)
    labels = jnp.argmin(dist, axis=1).astype(jnp.int32)
    return ClusterAssignment(labels, jnp.take_along_axis(dist, labels[:, None], axis=1)[:, 0])


def assign_clusters(points, centers) -> ClusterAssignment:
    """Assign every point to its nearest centre (squared Euclidean distance).

    Args:
      points: ``(n, dim)`` real array.
      centers: ``(m, dim)`` real array.

    Returns:
      :class:`ClusterAssignment` ``(labels, sq_distances)``. Uses the GEMM form
      ``||x||² - 2 x·c + ||c||²`` (one ``(n, dim) x (dim, m)`` matmul at highest precision),
      O(n · m · dim) time and O(n · m) memory; distances are clipped at 0, so in float32 they
      carry an absolute error of order ``1e-7 · (||x||² + ||c||²)``. Jittable.

    Raises:
      ValueError: wrong ranks, mismatched ``dim``, no centres, or NaN/inf in concrete input.
    """
    points = _as_float(check_array(points, "points", ndim=2, kind="real", finite=True))
    centers = _as_float(check_array(centers, "centers", ndim=2, kind="real", finite=True))
    if centers.shape[0] < 1:
        raise ValueError(f"centers must have at least one row; got {describe(centers)}")
    if centers.shape[1] != points.shape[1]:
        raise ValueError(
            f"centers must have the same number of columns as points ({points.shape[1]}); "
            f"got {describe(centers)}"
        )
    dtype = jnp.promote_types(points.dtype, centers.dtype)
    return _assign(points.astype(dtype), centers.astype(dtype))


# --------------------------------------------------------------------------- k-means++


def _inverse_cdf_sample(weights, u):
    """Indices drawn ∝ ``weights`` (>= 0, positive sum) for uniforms ``u`` in [0, 1).

    Inverse-CDF sampling, ``j = #{i : cdf_i <= u · total}`` (a comparison count: O(n) per draw,
    like the distance update it accompanies, and cheaper to compile than a binary search); the
    index is clamped to the last positive weight so float rounding of ``u · total`` can never
    pick a zero-weight point.
    """
    cdf = jnp.cumsum(weights)
    threshold = jnp.asarray(u)[..., None] * cdf[-1]
    j = jnp.sum(cdf <= threshold, axis=-1)
    n = weights.shape[0]
    last_positive = n - 1 - jnp.argmax(weights[::-1] > 0)
    return jnp.minimum(j, last_positive).astype(jnp.int32)


def _plusplus_indices(key, points, weights, num_clusters: int, local_trials: int = 1):
    """Indices of ``num_clusters`` D²-sampled seeds (unvalidated, jittable).

    All randomness comes from one ``(num_clusters, local_trials)`` block of uniforms (one RNG
    call keeps compile time low), turned into draws by inverse-CDF sampling.
    """
    u = jax.random.uniform(key, (num_clusters, local_trials), dtype=points.dtype)

    def sq_dist_to(j):
        diff = points - points[j]
        return jnp.sum(diff * diff, axis=-1)

    first = _inverse_cdf_sample(weights, u[0, 0])
    indices = jnp.zeros(num_clusters, dtype=jnp.int32).at[0].set(first)

    def body(c, carry):
        indices, closest = carry
        score = weights * closest
        # All scores 0 can only happen with fewer distinct points than clusters (rejected at
        # the boundary); fall back to the weights so the draw is still well defined.
        score = jnp.where(jnp.any(score > 0), score, weights)
        candidates = _inverse_cdf_sample(score, u[c])
        # (trials, n): the D² each candidate would leave; keep the one with the lowest potential.
        trial_closest = jnp.minimum(closest[None, :], jax.vmap(sq_dist_to)(candidates))
        best = jnp.argmin(trial_closest @ weights)
        return indices.at[c].set(candidates[best]), trial_closest[best]

    indices, _ = jax.lax.fori_loop(1, num_clusters, body, (indices, sq_dist_to(first)))
    return indices


def _default_local_trials(num_clusters: int) -> int:
    return 2 + int(math.log(num_clusters))


@partial(jax.jit, static_argnames=("num_clusters", "local_trials"))
def _plusplus_centers(key, points, weights, num_clusters: int, local_trials: int):
    return points[_plusplus_indices(key, points, weights, num_clusters, local_trials)]


def kmeans_plusplus_init(key, points, num_clusters: int, *, weights=None, local_trials=None):
    """k-means++ seeding by D² sampling (Arthur & Vassilvitskii 2007).

    The first centre is a point drawn with probability ∝ ``weights``; for each further centre
    ``local_trials`` candidates are drawn with probability ∝ ``w_i · D_i²`` (``D_i`` the
    distance from point ``i`` to the nearest centre chosen so far) and the candidate that
    leaves the smallest potential ``Σ_i w_i D_i²`` is kept ("greedy k-means++", Arthur &
    Vassilvitskii §6, scikit-learn's default). ``local_trials=1`` is plain D² sampling. Centres
    are data points, all distinct.

    Args:
      key: PRNG key.
      points: ``(n, dim)`` real array.
      num_clusters: number of centres ``m`` (static), at most the number of distinct points
        with positive weight.
      weights: optional ``(n,)`` non-negative sample weights (default: all ones).
      local_trials: candidates per centre (static, >= 1); default ``2 + floor(ln m)``.

    Returns:
      ``(num_clusters, dim)`` array of centres. O(local_trials · m · n · dim) time,
      O(local_trials · n) extra memory.

    Raises:
      ValueError / TypeError: see :func:`kmeans`.
    """
    key = check_key(key)
    points, weights, num_clusters = _validate_points(points, num_clusters, weights)
    local_trials = _validate_local_trials(local_trials, num_clusters)
    return _plusplus_centers(key, points, weights, num_clusters, local_trials)


# --------------------------------------------------------------------------- Lloyd


def _cluster_means(points, weights, labels, num_clusters: int):
    onehot = jax.nn.one_hot(labels, num_clusters, dtype=points.dtype) * weights[:, None]
    mass = onehot.sum(axis=0)
    sums = jnp.matmul(onehot.T, points, precision=_HIGHEST)
    return sums / jnp.where(mass > 0, mass, 1.0)[:, None], mass


def _reseed_empty(means, mass, points, weights, labels, own_dist, num_clusters: int):
    """Move the first empty cluster's centre onto the farthest movable point (module doc).

    One cluster per iteration (an ``argmax`` instead of a sort keeps compilation cheap); a run
    is not declared converged while a cluster is empty, so the next iterations fix the rest.
    """
    members = jnp.bincount(labels, weights=(weights > 0).astype(jnp.int32), length=num_clusters)
    movable = (weights > 0) & (members[labels] > 1)
    score = jnp.where(movable, own_dist, -jnp.inf)
    farthest = jnp.argmax(score)
    empty = mass <= 0
    target = (jnp.arange(num_clusters) == jnp.argmax(empty)) & empty & jnp.isfinite(score[farthest])
    return jnp.where(target[:, None], points[farthest][None, :], means), jnp.any(empty)


def _lloyd(points, point_sq, weights, centers, tol_abs, num_clusters: int, max_iter: int):
    n = points.shape[0]

    def cond(state):
        _, _, it, done = state
        return (~done) & (it < max_iter)

    def body(state):
        centers, old_labels, it, _ = state
        dist = _pairwise_sq_distances(points, centers, point_sq)
        labels = jnp.argmin(dist, axis=1).astype(jnp.int32)
        own = jnp.take_along_axis(dist, labels[:, None], axis=1)[:, 0]
        means, mass = _cluster_means(points, weights, labels, num_clusters)
        new, any_empty = _reseed_empty(means, mass, points, weights, labels, own, num_clusters)
        shift = jnp.sum((new - centers) ** 2)
        stable = jnp.all(labels == old_labels) & ~any_empty
        done = stable | ((shift <= tol_abs) & ~any_empty)
        return new, labels, it + 1, done

    init = (centers, jnp.full((n,), -1, dtype=jnp.int32), jnp.int32(0), jnp.array(False))
    centers, _, iterations, done = jax.lax.while_loop(cond, body, init)
    labels = jnp.argmin(_pairwise_sq_distances(points, centers, point_sq), axis=1)
    labels = labels.astype(jnp.int32)
    diff = points - centers[labels]
    inertia = jnp.sum(weights * jnp.sum(diff * diff, axis=1))
    return centers, labels, inertia, iterations, done


def kmeans_core(
    key,
    points,
    weights,
    num_clusters: int,
    n_init: int = 5,
    max_iter: int = 100,
    tol=1e-6,
    local_trials: int | None = None,
) -> KMeansResult:
    """Unvalidated, jittable k-means (``num_clusters``, ``n_init``, ``max_iter``,
    ``local_trials`` static).

    Use :func:`kmeans` unless you call it inside your own ``jit``/``vmap``. ``points`` must be a
    finite float ``(n, dim)`` array and ``weights`` a non-negative ``(n,)`` array of the same
    dtype (or ``None`` for unit weights); nothing is checked here. ``local_trials=None`` means
    ``2 + floor(ln num_clusters)``.
    """
    if weights is None:
        weights = jnp.ones(points.shape[0], dtype=points.dtype)
    if local_trials is None:
        local_trials = _default_local_trials(num_clusters)
    total = jnp.sum(weights)
    offset = jnp.matmul(weights, points, precision=_HIGHEST) / total
    centred = points - offset
    point_sq = jnp.sum(centred * centred, axis=1)
    variance = jnp.matmul(weights, centred * centred, precision=_HIGHEST) / total
    tol_abs = tol * jnp.mean(variance)

    def one_run(run_key):
        seeds = centred[_plusplus_indices(run_key, centred, weights, num_clusters, local_trials)]
        return _lloyd(centred, point_sq, weights, seeds, tol_abs, num_clusters, max_iter)

    centers, labels, inertia, iterations, converged = jax.vmap(one_run)(
        jax.random.split(key, n_init)
    )
    best = jnp.argmin(jnp.where(jnp.isnan(inertia), jnp.inf, inertia))
    return KMeansResult(
        centers=centers[best] + offset,
        labels=labels[best],
        inertia=inertia[best],
        iterations=iterations[best],
        converged=converged[best],
        run_inertia=inertia,
        best_run=best.astype(jnp.int32),
    )


_kmeans_jit = jax.jit(
    kmeans_core, static_argnames=("num_clusters", "n_init", "max_iter", "local_trials")
)


def kmeans(
    key,
    points,
    num_clusters: int,
    *,
    n_init: int = 5,
    max_iter: int = 100,
    tol: float = 1e-6,
    weights=None,
    local_trials: int | None = None,
) -> KMeansResult:
    """Weighted Euclidean k-means: k-means++ seeding, Lloyd iterations, best of ``n_init``.

    Minimises ``Σ_i w_i ||x_i - c_{l_i}||²`` (locally). Defaults follow the DDFA paper's faiss
    call ``Kmeans(niter=100, nredo=5)`` (spec §1.4 (ii)); unlike faiss, a run stops early once
    its labels are stable or its centres move less than ``tol`` (see the module docstring for
    the exact rule and the handling of empty clusters).

    Args:
      key: PRNG key; restart ``i`` uses ``jax.random.split(key, n_init)[i]``.
      points: ``(n, dim)`` real array without NaN/inf (ints are cast to the default float).
      num_clusters: ``m`` (static), ``1 <= m <=`` the number of distinct points (with
        positive weight).
      n_init: restarts (static, >= 1), run with ``vmap``; the lowest inertia wins.
      max_iter: maximum Lloyd iterations per restart (static, >= 1).
      tol: relative tolerance on the total squared centre shift (>= 0; multiplied by the mean
        per-feature variance of the data, as in scikit-learn). ``0`` stops only on stable
        labels.
      weights: optional ``(n,)`` non-negative sample weights with a positive sum.
      local_trials: k-means++ candidates per centre (static; default ``2 + floor(ln m)``,
        greedy seeding as scikit-learn; ``1`` is plain D² sampling). See
        :func:`kmeans_plusplus_init`.

    Returns:
      :class:`KMeansResult`. Cost O(n_init · iterations · n · m · dim) time,
      O(n_init · n · m) memory.

    Raises:
      TypeError: non-array or non-real input, a bad key, non-integer sizes.
      ValueError: wrong shapes, NaN/inf in ``points`` or ``weights``, negative or all-zero
        weights, ``n_init < 1``, ``max_iter < 1``, ``tol < 0``, or ``num_clusters`` larger than
        the data allows (more clusters than points or than distinct points).
    """
    key = check_key(key)
    points, weights, num_clusters = _validate_points(points, num_clusters, weights)
    n_init = check_int(n_init, "n_init", min_value=1)
    max_iter = check_int(max_iter, "max_iter", min_value=1)
    tol = check_float(tol, "tol", min_value=0.0)
    local_trials = _validate_local_trials(local_trials, num_clusters)
    return _kmeans_jit(
        key,
        points,
        weights,
        num_clusters=num_clusters,
        n_init=n_init,
        max_iter=max_iter,
        tol=jnp.asarray(tol, dtype=points.dtype),
        local_trials=local_trials,
    )


# --------------------------------------------------------------------------- validation


def _as_float(x):
    return x if x.dtype.kind == "f" else x.astype(jnp.result_type(float))


def _validate_local_trials(local_trials, num_clusters: int) -> int:
    if local_trials is None:
        return _default_local_trials(num_clusters)
    return check_int(local_trials, "local_trials", min_value=1)


def _validate_points(points, num_clusters, weights):
    points = _as_float(check_array(points, "points", ndim=2, kind="real", finite=True))
    n = points.shape[0]
    if n < 1 or points.shape[1] < 1:
        raise ValueError(
            f"points must have at least one row and one column; got {describe(points)}"
        )
    num_clusters = check_int(num_clusters, "num_clusters", min_value=1)
    if num_clusters > n:
        raise ValueError(
            f"num_clusters is larger than the data allows: {num_clusters} clusters for {n} points"
        )
    if weights is None:
        weights = jnp.ones(n, dtype=points.dtype)
    else:
        weights = check_array(weights, "weights", shape=(n,), kind="real", finite=True)
        if is_concrete(weights):
            host = np.asarray(weights)
            if np.any(host < 0):
                raise ValueError(f"weights must be >= 0; got min {host.min():.3g}")
            if not host.sum() > 0:
                raise ValueError("weights must have a positive sum; got all zeros")
        weights = weights.astype(points.dtype)
    if num_clusters > 1 and is_concrete(points) and is_concrete(weights):
        host = np.asarray(points)[np.asarray(weights) > 0] + 0.0  # -0.0 -> 0.0
        distinct = np.unique(host, axis=0).shape[0]
        if num_clusters > distinct:
            raise ValueError(
                f"num_clusters is larger than the data allows: {num_clusters} clusters but "
                f"points has only {distinct} distinct rows (with positive weight)"
            )
    return points, weights, num_clusters
