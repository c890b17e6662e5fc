"""Kernel k-means and kernel Ward clustering of graph nodes.

**Kernel k-means** (Lloyd iterations in feature space; Fouss, Saerens & Shimbo 2016, Alg. 7.2, as
used by pygkernels' ``KKMeans``). With ``H`` the ``(n, k)`` matrix of normalised cluster
indicators, the squared feature-space distance of node ``i`` to centroid ``c`` is

    ``d(i, c) = K_ii - 2 (K H)_ic + (Hᵀ K H)_cc``,

which costs O(k n²) per step (pygkernels evaluates an O(k n³) einsum). ``K`` is symmetrised
(``(K + Kᵀ)/2``; the quadratic form only sees the symmetric part) and may be indefinite: log
kernels are generally not PSD, distances can be negative, and no square root is taken. The
partition is invariant to ``K -> cK + u1ᵀ + 1vᵀ`` (c > 0), so centring and additive row/column
terms do not matter (tested).

- Seeding: k-means++ on the squared feature distances ``K_ii + K_jj - 2K_ij`` (clipped at 0),
  i.e. D² weighting (pygkernels squares them again, D⁴; we follow Arthur & Vassilvitskii).
- Empty clusters: after an assignment step each empty cluster takes the point farthest from its
  own centroid (deterministic; pygkernels reruns the whole initialisation instead).
- ``n_init`` restarts are vmapped over PRNG keys; the best run is chosen by inertia (default) or
  by Newman modularity when ``adjacency`` is given and ``select="modularity"``.
- Kernels may be dense ``(n, n)`` arrays or a :class:`FactoredKernel`
  ``diag(l) U diag(s) Uᵀ diag(r)`` from one eigendecomposition, in which case ``K`` is never
  formed: every product ``K B`` costs two thin GEMMs.

**Kernel Ward**: agglomerative Ward linkage on the feature-space distances
``sqrt(max(K_ii + K_jj - 2K_ij, 0))`` (clipped at 0 for non-PSD log kernels, documented
deviation) via ``scipy.cluster.hierarchy.linkage(method="ward")`` on the host (Lance-Williams
updates; exact for PSD kernels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from theorylab.core.checks import (
    check_array,
    check_choice,
    check_int,
    check_key,
    describe,
    is_concrete,
)
from theorylab.core.linalg import symmetric_reconstruct

__all__ = [
    "FactoredKernel",
    "KernelKMeansResult",
    "kernel_kmeans",
    "kernel_kmeans_core",
    "kernel_ward",
    "modularity",
]


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["vectors", "spectrum", "left", "right"],
    meta_fields=["symmetric"],
)
@dataclass(frozen=True)
class FactoredKernel:
    """``K = diag(left) · U diag(spectrum) Uᵀ · diag(right)``, never formed densely.

    ``symmetric`` (static) says ``left == right``, which halves the cost of symmetrised products.
    """

    vectors: jax.Array
    spectrum: jax.Array
    left: jax.Array
    right: jax.Array
    symmetric: bool = field(default=True)

    @property
    def shape(self):
        n = self.vectors.shape[-2]
        return (n, n)

    @property
    def dtype(self):
        return self.vectors.dtype

    def dense(self) -> jax.Array:
        """Materialise ``K`` (O(n³)); for checks and small graphs."""
        inner = symmetric_reconstruct(self.vectors, self.spectrum)
        return self.left[:, None] * inner * self.right[None, :]


def _half_product(vectors, spectrum, left, right, b):
    """``diag(l) U diag(s) Uᵀ diag(r) B``."""
    return left[:, None] * (vectors @ (spectrum[:, None] * (vectors.T @ (right[:, None] * b))))


class _KernelOps(NamedTuple):
    diag: jax.Array
    matmul: object  # B (n, m) -> K_sym B
    column: object  # j -> K_sym[:, j]
    finite: jax.Array


def _kernel_ops(kernel) -> _KernelOps:
    if isinstance(kernel, FactoredKernel):
        u, s, l, r = kernel.vectors, kernel.spectrum, kernel.left, kernel.right
        diag = l * r * jnp.einsum("ik,k,ik->i", u, s, u)

        def matmul(b):
            if kernel.symmetric:
                return _half_product(u, s, l, r, b)
            return 0.5 * (_half_product(u, s, l, r, b) + _half_product(u, s, r, l, b))

        def column(j):
            e = jax.nn.one_hot(j, u.shape[0], dtype=u.dtype)[:, None]
            return matmul(e)[:, 0]

        finite = (
            jnp.all(jnp.isfinite(u))
            & jnp.all(jnp.isfinite(s))
            & jnp.all(jnp.isfinite(l))
            & jnp.all(jnp.isfinite(r))
        )
        return _KernelOps(diag, matmul, column, finite)
    k = jnp.asarray(kernel)
    finite = jnp.all(jnp.isfinite(k))
    k = jnp.where(finite, 0.5 * (k + k.T), 0.0)  # zeros keep the iterations NaN-free
    return _KernelOps(jnp.diagonal(k), lambda b: k @ b, lambda j: k[:, j], finite)


class KernelKMeansResult(NamedTuple):
    """Result of :func:`kernel_kmeans` (best of ``n_init`` runs).

    Attributes:
      labels: ``(n,)`` int32 cluster labels in ``[0, n_clusters)``.
      inertia: Σ_i d(i, c_i) of the chosen run (can be negative for indefinite kernels).
      modularity: Newman modularity of the chosen partition (NaN without ``adjacency``).
      n_iter: Lloyd iterations of the chosen run.
      converged: whether the chosen run stopped because labels stopped changing.
      valid: the kernel was finite (a non-finite kernel yields ``valid=False`` and labels 0).
      run_inertia, run_modularity: ``(n_init,)`` per-run values.
      best_run: index of the chosen run.
    """

    labels: jax.Array
    inertia: jax.Array
    modularity: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    valid: jax.Array
    run_inertia: jax.Array
    run_modularity: jax.Array
    best_run: jax.Array


def modularity(adjacency, labels, n_clusters: int):
    """Newman modularity ``Q = Σ_c [e_c/vol - (d_c/vol)²]`` (jittable; ``e_c`` = 2·intra weight).

    ``Q = (1/vol) Σ_ij (A_ij - d_i d_j / vol) δ(c_i, c_j)`` with ``vol = Σ_ij A_ij``.
    """
    a = jnp.asarray(adjacency)
    onehot = jax.nn.one_hot(labels, n_clusters, dtype=a.dtype)
    vol = a.sum()
    intra = jnp.einsum("ic,ij,jc->", onehot, a, onehot)
    deg_c = onehot.T @ a.sum(axis=1)
    return intra / vol - jnp.sum(deg_c**2) / vol**2


def _distances_to_centroids(ops: _KernelOps, labels, k: int):
    onehot = jax.nn.one_hot(labels, k, dtype=ops.diag.dtype)
    counts = onehot.sum(axis=0)
    h = onehot / jnp.maximum(counts, 1.0)
    kh = ops.matmul(h)
    within = jnp.sum(h * kh, axis=0)
    dist = ops.diag[:, None] - 2.0 * kh + within[None, :]
    return jnp.where(counts[None, :] > 0, dist, jnp.inf), counts


def _fill_empty_clusters(labels, dist, k: int):
    """Give each empty cluster one of the points farthest from their own centroids.

    Vectorised: the e empty clusters take the e points with the largest own-distance among
    points whose cluster has more than one member. (If that empties another cluster, the next
    Lloyd step refills it; a run only counts as converged once labels stop changing.)
    """
    counts = jnp.bincount(labels, length=k)
    own = jnp.take_along_axis(dist, labels[:, None], axis=1)[:, 0]
    movable = counts[labels] > 1
    score = jnp.where(movable & jnp.isfinite(own), own, -jnp.inf)
    order = jnp.argsort(-score)[:k]  # farthest first
    empty = counts == 0
    empty_ids = jnp.argsort(~empty).astype(labels.dtype)  # empty clusters first
    use = (jnp.arange(k) < empty.sum()) & jnp.isfinite(score[order])
    return labels.at[order].set(jnp.where(use, empty_ids, labels[order]))


def _kmeans_plus_plus(key, ops: _KernelOps, n: int, k: int):
    """k-means++ seeding by inverse-CDF sampling from one vector of k uniforms.

    Centre 1 is uniform; centre c is drawn with probability proportional to the squared feature
    distance to the nearest chosen centre (uniform if all those distances are 0). One RNG call
    (instead of a split and a categorical per centre) keeps compile time low.
    """
    u = jax.random.uniform(key, (k,), dtype=ops.diag.dtype)
    first = jnp.minimum((u[0] * n).astype(jnp.int32), n - 1)

    def sq_dist_to(j):
        return jnp.maximum(ops.diag + ops.diag[j] - 2.0 * ops.column(j), 0.0)

    centers = jnp.zeros(k, dtype=jnp.int32).at[0].set(first)

    def body(c, carry):
        centers, closest = carry
        weights = jnp.where(closest.sum() > 0, closest, 1.0)
        cdf = jnp.cumsum(weights)
        j = jnp.searchsorted(cdf, u[c] * cdf[-1], side="right").astype(jnp.int32)
        j = jnp.minimum(j, n - 1)
        return centers.at[c].set(j), jnp.minimum(closest, sq_dist_to(j))

    centers, _ = jax.lax.fori_loop(1, k, body, (centers, sq_dist_to(first)))
    onehot = jax.nn.one_hot(centers, n, dtype=ops.diag.dtype).T  # (n, k)
    cross = ops.matmul(onehot)
    dist = ops.diag[:, None] + ops.diag[centers][None, :] - 2.0 * cross
    labels = jnp.argmin(dist, axis=1).astype(jnp.int32)
    return labels.at[centers].set(jnp.arange(k, dtype=jnp.int32))


def _lloyd(ops: _KernelOps, labels, k: int, max_iter: int):
    def cond(state):
        _, it, changed = state
        return changed & (it < max_iter)

    def body(state):
        lab, it, _ = state
        dist, _ = _distances_to_centroids(ops, lab, k)
        new = jnp.argmin(dist, axis=1).astype(jnp.int32)
        new = _fill_empty_clusters(new, dist, k)
        return new, it + 1, jnp.any(new != lab)

    labels, n_iter, changed = jax.lax.while_loop(cond, body, (labels, 0, jnp.array(True)))
    dist, _ = _distances_to_centroids(ops, labels, k)
    inertia = jnp.sum(jnp.take_along_axis(dist, labels[:, None], axis=1))
    return labels, inertia, n_iter, ~changed


def kernel_kmeans_core(
    key,
    kernel,
    adjacency,
    n_clusters: int,
    n_init: int = 10,
    max_iter: int = 100,
    select: str = "inertia",
) -> KernelKMeansResult:
    """Unvalidated, jittable kernel k-means (``n_clusters``, ``n_init``, ``max_iter`` and
    ``select`` static). Use :func:`kernel_kmeans` unless you call it inside your own
    ``jit``/``vmap`` (e.g. over graphs or parameter grids). ``adjacency`` may be ``None``."""
    ops = _kernel_ops(kernel)
    n = ops.diag.shape[0]

    def one_run(run_key):
        init = _kmeans_plus_plus(run_key, ops, n, n_clusters)
        return _lloyd(ops, init, n_clusters, max_iter)

    labels, inertia, n_iter, converged = jax.vmap(one_run)(jax.random.split(key, n_init))
    if adjacency is not None:
        mod = jax.vmap(lambda lab: modularity(adjacency, lab, n_clusters))(labels)
    else:
        mod = jnp.full((n_init,), jnp.nan, dtype=ops.diag.dtype)
    if select == "modularity":
        best = jnp.argmax(jnp.where(jnp.isnan(mod), -jnp.inf, mod))
    else:
        best = jnp.argmin(jnp.where(jnp.isnan(inertia), jnp.inf, inertia))
    valid = ops.finite
    return KernelKMeansResult(
        labels=jnp.where(valid, labels[best], 0),
        inertia=jnp.where(valid, inertia[best], jnp.nan),
        modularity=jnp.where(valid, mod[best], jnp.nan),
        n_iter=n_iter[best],
        converged=converged[best],
        valid=valid,
        run_inertia=inertia,
        run_modularity=mod,
        best_run=best,
    )


_kernel_kmeans_jit = jax.jit(kernel_kmeans_core, static_argnums=(3, 4, 5, 6))


def kernel_kmeans(
    key,
    kernel,
    n_clusters: int,
    *,
    n_init: int = 10,
    max_iter: int = 100,
    select: str = "inertia",
    adjacency=None,
) -> KernelKMeansResult:
    """Kernel k-means with k-means++ seeding and ``n_init`` vmapped restarts.

    Args:
      key: PRNG key (restarts use ``jax.random.split(key, n_init)``).
      kernel: ``(n, n)`` kernel (need not be symmetric or PSD) or a :class:`FactoredKernel`.
      n_clusters: number of clusters, ``1 <= n_clusters <= n``.
      n_init: restarts; the best is kept.
      max_iter: maximum Lloyd iterations per restart.
      select: ``"inertia"`` (lowest) or ``"modularity"`` (highest; needs ``adjacency``).
      adjacency: optional ``(n, n)`` adjacency for modularity.

    Returns:
      :class:`KernelKMeansResult`. Cost O(n_init · iterations · k · n²).

    Raises:
      ValueError: bad sizes, ``n_clusters > n``, NaN/inf in a concrete kernel (log kernels give
        ``-inf`` entries when a plain kernel underflows: choose a larger parameter or check
        ``kernel_grid(...).finite``).
    """
    key = check_key(key)
    if isinstance(kernel, FactoredKernel):
        n = kernel.shape[0]
        if is_concrete(kernel.spectrum) and not bool(
            jnp.all(jnp.isfinite(kernel.spectrum)) & jnp.all(jnp.isfinite(kernel.vectors))
        ):
            raise ValueError("kernel (FactoredKernel) must have finite factors")
    else:
        kernel = check_array(kernel, "kernel", ndim=2, kind="real")
        if kernel.shape[0] != kernel.shape[1]:
            raise ValueError(f"kernel must be a square (n, n) matrix; got {describe(kernel)}")
        n = kernel.shape[0]
        if is_concrete(kernel) and not bool(jnp.all(jnp.isfinite(kernel))):
            raise ValueError(
                "kernel must contain only finite values; log kernels hold -inf where the plain "
                "kernel underflowed (try a larger parameter; kernel_grid(...).finite tells which)"
            )
        if kernel.dtype.kind != "f":
            kernel = kernel.astype(jnp.result_type(float))
    n_clusters = check_int(n_clusters, "n_clusters", min_value=1, max_value=n)
    n_init = check_int(n_init, "n_init", min_value=1)
    max_iter = check_int(max_iter, "max_iter", min_value=1)
    check_choice(select, "select", ("inertia", "modularity"))
    if adjacency is not None:
        adjacency = check_array(adjacency, "adjacency", shape=(n, n), kind="real", finite=True)
    elif select == "modularity":
        raise ValueError("select='modularity' needs adjacency=...; got adjacency=None")
    return _kernel_kmeans_jit(key, kernel, adjacency, n_clusters, n_init, max_iter, select)


def kernel_ward(kernel, n_clusters: int):
    """Kernel Ward clustering (host, scipy), returns ``(n,)`` labels in ``[0, n_clusters)``.

    Feature-space squared distances ``K_ii + K_jj - 2K_ij`` of the symmetrised kernel are
    clipped at 0 (non-PSD log kernels can make them negative; documented deviation), square
    rooted, and passed to ``scipy.cluster.hierarchy.linkage(method="ward")``; the tree is cut
    at ``n_clusters`` clusters. Labels are numbered by first appearance. O(n²) memory,
    O(n² log n)-O(n³) time.
    """
    k = np.asarray(
        check_array(kernel, "kernel", ndim=2, kind="real", finite=True, to_jax=False),
        dtype=np.float64,
    )
    if k.shape[0] != k.shape[1]:
        raise ValueError(f"kernel must be a square (n, n) matrix; got {describe(k)}")
    n = k.shape[0]
    n_clusters = check_int(n_clusters, "n_clusters", min_value=1, max_value=n)
    if n == 1:
        return np.zeros(1, dtype=np.int32)
    k = 0.5 * (k + k.T)
    diag = np.diag(k)
    sq = np.maximum(diag[:, None] + diag[None, :] - 2.0 * k, 0.0)
    np.fill_diagonal(sq, 0.0)
    tree = linkage(squareform(np.sqrt(sq), checks=False), method="ward")
    raw = fcluster(tree, t=n_clusters, criterion="maxclust")
    _, first = np.unique(raw, return_index=True)
    order = {raw[i]: rank for rank, i in enumerate(sorted(first))}
    return np.array([order[c] for c in raw], dtype=np.int32)
