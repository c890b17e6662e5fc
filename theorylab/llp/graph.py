"""Similarity graphs for LLP-BP: exact cosine kNN in JAX and directed edge arrays for BP.

Spec ``llp_bp.md`` section 1.2 (Havaldar et al., ICLR 2024, released code): each instance is
joined to its k nearest neighbours by **cosine** distance (itself excluded), neighbours with
cosine distance ``>= max_cosine_distance`` are dropped, the edges are made undirected and
de-duplicated as (min, max) pairs, and each edge gets the Matérn-1/2 weight
s_ij = exp(−‖x_i − x_j‖₂) on the **Euclidean** distance of the same covariates.

The released code additionally keeps an edge only when the source's bag has count ≤ 1; that is
a leftover not in the paper's model and is deliberately *not* replicated.

BP consumes the graph as :class:`KnnGraph`, a directed representation of the undirected edge set:
every undirected edge {a, b} (a < b) appears as the two directed edges a→b and b→a, ``rev[e]``
is the index of the reverse directed edge (``src[rev] == dst``, ``rev[rev] == arange``), and both
directions carry the same weight. Directed edges ``0 .. E-1`` are the forward copies (src < dst,
sorted by (src, dst)), ``E .. 2E-1`` the reverse copies in the same order.

The neighbour search (:func:`cosine_knn`) is jitted: rows are processed in blocks of
``block_size`` with ``lax.map`` (n padded to a multiple of the block), each block computes its
``(block_size, n)`` cosine-similarity slab and keeps the exact top-k with ``lax.top_k``. Rows with
zero norm are treated like scikit-learn does (unit-normalisation leaves them at zero, so their
cosine similarity to everything is 0, distance 1). Graph assembly and de-duplication run on
the host (the number of edges is data dependent), so :func:`knn_graph` is not itself jittable.

Precision: JAX's default float dtype (float32 unless x64 is enabled); the similarity matmul uses
``precision=HIGHEST`` so GPUs do not fall back to TF32. Indices are int32.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from theorylab.core.checks import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_type,
    describe,
)

__all__ = [
    "KnnGraph",
    "KnnResult",
    "cosine_knn",
    "graph_from_edges",
    "knn_graph",
    "undirected_edges",
]

WEIGHTS = ("matern12", "uniform")
"""Edge weightings: ``"matern12"`` s_ij = exp(−‖x_i − x_j‖₂) (the paper's), ``"uniform"`` 1."""


class KnnGraph(NamedTuple):
    """Directed representation of an undirected, de-duplicated weighted edge set (a pytree).

    Attributes:
      src: ``(2E,)`` int32 source node of each directed edge.
      dst: ``(2E,)`` int32 target node.
      rev: ``(2E,)`` int32 index of the reverse directed edge (``src[rev] == dst``).
      weight: ``(2E,)`` float similarity s_ij, equal for both directions.
    """

    src: jax.Array
    dst: jax.Array
    rev: jax.Array
    weight: jax.Array


class KnnResult(NamedTuple):
    """Exact k nearest neighbours of every row by cosine distance (self excluded).

    Attributes:
      indices: ``(n, k)`` int32 neighbour indices, nearest first.
      cosine_distance: ``(n, k)`` float cosine distances 1 − cos(x_i, x_j) in [0, 2].
      euclidean_distance: ``(n, k)`` float Euclidean distances ‖x_i − x_j‖₂.
    """

    indices: jax.Array
    cosine_distance: jax.Array
    euclidean_distance: jax.Array


def _float():
    return jnp.result_type(float)


# --------------------------------------------------------------------------- neighbour search


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _blocked_cosine_topk(X, *, k: int, block_size: int):
    n, d = X.shape
    sq = jnp.sum(X * X, axis=1, keepdims=True)
    safe = jnp.where(sq > 0, sq, 1.0)
    unit = jnp.where(sq > 0, X * lax.rsqrt(safe), 0.0)  # zero rows stay zero (as sklearn)
    num_blocks = -(-n // block_size)
    pad = num_blocks * block_size - n
    unit_rows = jnp.pad(unit, ((0, pad), (0, 0))).reshape(num_blocks, block_size, d)
    raw_rows = jnp.pad(X, ((0, pad), (0, 0))).reshape(num_blocks, block_size, d)
    starts = jnp.arange(num_blocks, dtype=jnp.int32) * block_size
    cols = jnp.arange(n, dtype=jnp.int32)

    def one_block(args):
        unit_block, raw_block, start = args
        sims = jnp.matmul(unit_block, unit.T, precision=lax.Precision.HIGHEST)
        rows = start + jnp.arange(block_size, dtype=jnp.int32)
        sims = jnp.where(cols[None, :] == rows[:, None], -jnp.inf, sims)  # exclude self
        top, idx = lax.top_k(sims, k)
        diff = raw_block[:, None, :] - X[idx]
        eucl = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
        return idx.astype(jnp.int32), jnp.clip(1.0 - top, 0.0, 2.0), eucl

    idx, cos_d, eucl = lax.map(one_block, (unit_rows, raw_rows, starts))
    flat = lambda a: a.reshape(num_blocks * block_size, k)[:n]  # noqa: E731
    return flat(idx), flat(cos_d), flat(eucl)


def _check_features(X, k):
    X = check_array(X, "X", ndim=2, kind="real", finite=True)
    n = X.shape[0]
    if X.dtype.kind != "f":
        X = X.astype(_float())
    k = check_int(k, "k", min_value=1)
    if k >= n:
        raise ValueError(f"k must be < the number of rows of X ({n}); got k={k}")
    return X, k


def cosine_knn(X, k: int = 5, *, block_size: int = 2048) -> KnnResult:
    """Exact k nearest neighbours of every row of ``X`` by cosine distance (self excluded).

    Args:
      X: ``(n, d)`` real features (finite; zero rows allowed: distance 1 to everything).
      k: neighbours per row, ``1 <= k < n``.
      block_size: rows per ``lax.map`` block (capped at n); memory is O(block_size × n).

    Returns:
      :class:`KnnResult`. Among exactly tied similarities the lower index wins (``lax.top_k``).

    Complexity: O(n² d) time, O(block_size × n + n k d / num_blocks) memory per block.
    """
    X, k = _check_features(X, k)
    block_size = check_int(block_size, "block_size", min_value=1)
    block_size = min(block_size, X.shape[0])
    idx, cos_d, eucl = _blocked_cosine_topk(X, k=k, block_size=block_size)
    return KnnResult(idx, cos_d, eucl)


# --------------------------------------------------------------------------- graph assembly


def _directed(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> KnnGraph:
    """Directed edge arrays from unique undirected edges a < b (sorted), weights w."""
    e = a.shape[0]
    src = np.concatenate([a, b]).astype(np.int32)
    dst = np.concatenate([b, a]).astype(np.int32)
    rev = np.concatenate([np.arange(e, 2 * e), np.arange(e)]).astype(np.int32)
    weight = np.concatenate([w, w])
    return KnnGraph(
        src=jnp.asarray(src),
        dst=jnp.asarray(dst),
        rev=jnp.asarray(rev),
        weight=jnp.asarray(weight, dtype=_float()),
    )


def knn_graph(
    X,
    k: int = 5,
    *,
    block_size: int = 2048,
    max_cosine_distance: float = 2.0,
    weight: str = "matern12",
    length_scale: float | str = 1.0,
) -> KnnGraph:
    """Undirected cosine-kNN similarity graph with Matérn-1/2 weights (spec section 1.2).

    Args:
      X: ``(n, d)`` real features (raw standardised covariates or embeddings); finite.
      k: neighbours per instance, ``1 <= k < n`` (default 5, the paper's).
      block_size: rows per block of the jitted exact search (memory O(block_size × n)).
      max_cosine_distance: keep a neighbour only if its cosine distance is strictly below this
        (in ``(0, 2]``; the default 2.0 keeps all but exactly antipodal points, as released).
      weight: ``"matern12"`` (s_ij = exp(−‖x_i − x_j‖₂ / ℓ), default) or ``"uniform"`` (1).
      length_scale: ℓ > 0 of the Matérn kernel (default 1, the released code's), or
        ``"median"``: ℓ = the median Euclidean distance of the kept neighbour pairs. The median
        rule is a theorylab option for covariates whose scale is arbitrary (MLP embeddings:
        with ℓ = 1 their kNN distances of 10-100 give weights ~e^-10 and BP loses the graph).

    Returns:
      :class:`KnnGraph` with each undirected edge once in each direction (mutual neighbours are
      one edge, no self loops); ``2E <= 2 n k`` directed edges.

    Raises:
      ValueError: ``k >= n``, ``k < 1``, NaN/inf features, bad ``max_cosine_distance``.

    Complexity: O(n² d) search on the device, O(n k log(n k)) host de-duplication.
    """
    X, k = _check_features(X, k)
    max_cos = check_float(
        max_cosine_distance,
        "max_cosine_distance",
        min_value=0.0,
        min_inclusive=False,
        max_value=2.0,
    )
    check_choice(weight, "weight", WEIGHTS)
    if isinstance(length_scale, str):
        check_choice(length_scale, "length_scale", ("median",))
    else:
        length_scale = check_float(length_scale, "length_scale", min_value=0.0,
                                   min_inclusive=False)
    res = cosine_knn(X, k, block_size=block_size)
    n = X.shape[0]
    idx = np.asarray(res.indices, dtype=np.int64)
    keep = np.asarray(res.cosine_distance) < max_cos
    rows = np.repeat(np.arange(n, dtype=np.int64), k).reshape(n, k)
    i, j = rows[keep], idx[keep]
    if weight == "matern12":
        dist = np.asarray(res.euclidean_distance, dtype=np.float64)[keep]
        if length_scale == "median":
            median = float(np.median(dist)) if dist.size else 1.0
            length_scale = median if median > 0 else 1.0
        w = np.exp(-dist / length_scale)
    else:
        w = np.ones(i.shape[0])
    a, b = np.minimum(i, j), np.maximum(i, j)
    _, first = np.unique(a * n + b, return_index=True)  # sorted by (a, b)
    return _directed(a[first], b[first], w[first])


def graph_from_edges(edges, num_nodes: int, weights=None) -> KnnGraph:
    """A :class:`KnnGraph` from a user edge list (host side).

    Args:
      edges: ``(E, 2)`` integer node pairs in ``[0, num_nodes)``. Each undirected edge may be
        listed once or in both directions (then with equal weights); no self loops.
      num_nodes: n, the number of nodes.
      weights: ``(E,)`` finite non-negative similarities s_ij (default 1).

    Returns:
      :class:`KnnGraph` (undirected edges sorted by (min, max); an empty edge list is allowed).

    Raises:
      ValueError: out-of-range nodes, self loops, negative/NaN weights, a pair listed twice with
        different weights, wrong shapes.
    """
    n = check_int(num_nodes, "num_nodes", min_value=1)
    e = check_array(edges, "edges", kind="int", to_jax=False)
    e = np.asarray(e, dtype=np.int64)
    if e.size == 0:
        e = e.reshape(0, 2)
    if e.ndim != 2 or e.shape[1] != 2:
        raise ValueError(f"edges must have shape (E, 2); got {describe(e)}")
    if e.size and (e.min() < 0 or e.max() >= n):
        raise ValueError(
            f"edges must hold node ids in [0, {n}); got values in [{e.min()}, {e.max()}]"
        )
    if np.any(e[:, 0] == e[:, 1]):
        node = int(e[np.flatnonzero(e[:, 0] == e[:, 1])[0], 0])
        raise ValueError(f"edges must not contain self loops; got ({node}, {node})")
    if weights is None:
        w = np.ones(e.shape[0])
    else:
        w = check_array(weights, "weights", ndim=1, kind="real", finite=True, to_jax=False)
        w = np.asarray(w, dtype=np.float64)
        if w.shape[0] != e.shape[0]:
            raise ValueError(f"weights must have one entry per edge ({e.shape[0]}); got {w.shape}")
        if np.any(w < 0):
            raise ValueError(f"weights must be >= 0 (similarities); got min {w.min():.3g}")
    a, b = np.minimum(e[:, 0], e[:, 1]), np.maximum(e[:, 0], e[:, 1])
    keys = a * n + b
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = np.ravel(inverse)
    if uniq.size < keys.size and np.any(w != w[first][inverse]):
        bad = int(np.flatnonzero(w != w[first][inverse])[0])
        raise ValueError(
            f"weights must agree for repeated edges; pair ({a[bad]}, {b[bad]}) has weights "
            f"{w[first][inverse][bad]} and {w[bad]}"
        )
    return _directed(a[first], b[first], w[first])


def undirected_edges(graph: KnnGraph):
    """One entry per undirected edge of a :class:`KnnGraph` (host side).

    Returns:
      ``(edges, weights)``: ``(E, 2)`` int32 numpy pairs with ``edges[:, 0] < edges[:, 1]`` and
      ``(E,)`` numpy weights.
    """
    check_type(graph, "graph", KnnGraph, "a KnnGraph")
    src, dst = np.asarray(graph.src), np.asarray(graph.dst)
    fwd = src < dst
    edges = np.stack([src[fwd], dst[fwd]], axis=1).astype(np.int32)
    return edges, np.asarray(graph.weight)[fwd]
