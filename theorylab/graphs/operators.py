"""Graph operators from a dense adjacency matrix (or a networkx graph).

Notation (Ivashkin & Chebotarev 2016, §2; spec §1.1): ``A`` symmetric non-negative adjacency,
``d = A 1`` degrees, ``D = diag(d)``, ``L = D - A`` (Laplacian), ``𝓛 = D^{-1/2} L D^{-1/2}``
(normalised Laplacian), ``𝒜 = D^{-1/2} A D^{-1/2}`` (normalised adjacency), ``P = D^{-1} A``
(random-walk matrix), ``vol = 1ᵀ A 1``, ``ρ`` the spectral radius of ``A``, ``L⁺`` the
Moore-Penrose pseudoinverse of ``L``.

:func:`adjacency_matrix` is the validated entry point (networkx graphs are read unweighted by
default, ``weight="weight"`` to opt in -- networkx's karate club carries weights that the paper
does not use). The remaining functions are pure and jittable; they assume a validated input.
:func:`graph_spectra` computes, once per graph, the three symmetric eigendecompositions from
which every diagonalisable kernel family and its whole parameter grid follow.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.sparse.csgraph import connected_components

from theorylab.core.checks import check_array, check_choice, describe, is_concrete
from theorylab.core.linalg import SpectralDecomposition

__all__ = [
    "GraphSpectra",
    "adjacency_matrix",
    "check_connected",
    "degrees",
    "graph_spectra",
    "laplacian",
    "laplacian_pinv",
    "normalized_adjacency",
    "normalized_laplacian",
    "shortest_path_distances",
    "spectral_radius",
    "transition_matrix",
    "volume",
]

OPERATORS = ("adjacency", "laplacian", "normalized_adjacency")


def adjacency_matrix(graph, *, weight: str | None = None, dtype=None, name: str = "adjacency"):
    """Validated dense adjacency matrix from an array or a networkx graph.

    Args:
      graph: ``(n, n)`` array-like, or a ``networkx.Graph`` (nodes in ``graph.nodes`` order).
      weight: for networkx input, the edge attribute holding weights; ``None`` (default) reads
        the graph unweighted, as the paper does.
      dtype: output float dtype (default: JAX's default float, float64 when x64 is enabled).
      name: argument name used in error messages.

    Returns:
      ``(n, n)`` float ``jax.Array``.

    Raises:
      TypeError / ValueError: non-square, asymmetric, negative, NaN/inf entries, or ``n < 2``.
    """
    try:
        import networkx as nx
    except ImportError:  # pragma: no cover - networkx is a hard dependency
        nx = None
    if nx is not None and isinstance(graph, nx.Graph):
        if graph.is_directed():
            raise ValueError(f"{name} must be an undirected graph; got a directed networkx graph")
        graph = nx.to_numpy_array(graph, weight=weight, dtype=np.float64)
    elif weight is not None:
        raise ValueError("weight= applies to networkx graphs only; got an array for " + name)
    arr = check_array(graph, name, ndim=2, kind="numeric", finite=True, to_jax=False)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix; got {describe(arr)}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} must have at least 2 nodes; got {describe(arr)}")
    if is_concrete(arr):
        host = np.asarray(arr, dtype=np.float64)
        if np.any(host < 0):
            raise ValueError(
                f"{name} must have non-negative entries (edge weights); got min {host.min():.3g}"
            )
        if not np.allclose(host, host.T, rtol=1e-10, atol=1e-12):
            worst = float(np.max(np.abs(host - host.T)))
            raise ValueError(
                f"{name} must be symmetric (an undirected graph); got max |A - A^T| = {worst:.3g}"
            )
    out_dtype = dtype or jnp.result_type(float)
    return jnp.asarray(arr, dtype=out_dtype)


def check_connected(adjacency, name: str = "adjacency", *, what: str = "this measure") -> None:
    """Raise ``ValueError`` if the graph has isolated nodes or several components.

    Suggests clustering each connected component separately.
    """
    host = np.asarray(adjacency)
    deg = host.sum(axis=1)
    isolated = np.flatnonzero(deg <= 0)
    if isolated.size:
        raise ValueError(
            f"{name} has {isolated.size} isolated node(s) (degree 0, e.g. node "
            f"{int(isolated[0])}); {what} needs every degree > 0: drop isolated nodes or use "
            "the connected components separately"
        )
    n_comp, _ = connected_components(host != 0, directed=False)
    if n_comp > 1:
        raise ValueError(
            f"{name} is disconnected ({n_comp} connected components); {what} needs a connected "
            "graph (entries between components are 0, so their logs and distances are "
            "infinite): compute it on each component separately "
            "(scipy.sparse.csgraph.connected_components gives them)"
        )


# --------------------------------------------------------------------------- operators


def degrees(adjacency):
    """``d = A 1``."""
    return jnp.sum(adjacency, axis=-1)


def volume(adjacency):
    """``vol = 1ᵀ A 1`` (twice the total edge weight)."""
    return jnp.sum(adjacency, axis=(-2, -1))


def laplacian(adjacency):
    """``L = D - A``."""
    eye = jnp.eye(adjacency.shape[-1], dtype=adjacency.dtype)
    return degrees(adjacency)[..., :, None] * eye - adjacency


def normalized_adjacency(adjacency):
    """``𝒜 = D^{-1/2} A D^{-1/2}`` (degrees must be positive)."""
    s = 1.0 / jnp.sqrt(degrees(adjacency))
    return s[..., :, None] * adjacency * s[..., None, :]


def normalized_laplacian(adjacency):
    """``𝓛 = I - 𝒜 = D^{-1/2} L D^{-1/2}``."""
    n = adjacency.shape[-1]
    return jnp.eye(n, dtype=adjacency.dtype) - normalized_adjacency(adjacency)


def transition_matrix(adjacency):
    """``P = D^{-1} A`` (row-stochastic random-walk matrix)."""
    return adjacency / degrees(adjacency)[..., :, None]


def spectral_radius(adjacency):
    """``ρ(A) = λ_max(A)`` for symmetric non-negative ``A`` (Perron-Frobenius)."""
    return jnp.linalg.eigvalsh(adjacency)[..., -1]


def laplacian_pinv(adjacency):
    """``L⁺`` via ``(L + J/n)^{-1} - J/n`` (valid for a connected graph; spec §1.3, CT)."""
    n = adjacency.shape[-1]
    j = jnp.full((n, n), 1.0 / n, dtype=adjacency.dtype)
    return jnp.linalg.inv(laplacian(adjacency) + j) - j


def shortest_path_distances(adjacency):
    """All-pairs shortest-path lengths with edge cost ``1 / a_ij`` (Floyd-Warshall, jittable).

    O(n³) elementwise work in a ``lax.fori_loop``; unreachable pairs are ``inf``. Agrees with
    ``scipy.sparse.csgraph.shortest_path`` (tested).
    """
    n = adjacency.shape[-1]
    edge = adjacency > 0
    cost = jnp.where(edge, 1.0 / jnp.where(edge, adjacency, 1.0), jnp.inf)
    dist = jnp.where(jnp.eye(n, dtype=bool), 0.0, cost).astype(adjacency.dtype)

    def relax(k, d):
        return jnp.minimum(d, d[:, k, None] + d[None, k, :])

    return jax.lax.fori_loop(0, n, relax, dist)


# --------------------------------------------------------------------------- spectra


class GraphSpectra(NamedTuple):
    """Per-graph data from which every measure and parameter grid is computed.

    Attributes:
      adjacency: ``(n, n)`` adjacency.
      degrees: ``(n,)`` degrees ``d``.
      volume: scalar ``vol``.
      spectral_radius: scalar ``ρ``.
      adjacency_eigh: ``eigh(A)`` or ``None`` when not requested.
      laplacian_eigh: ``eigh(L)`` or ``None``.
      normalized_adjacency_eigh: ``eigh(𝒜)`` or ``None``.
      shortest_paths: ``(n, n)`` shortest-path distances or ``None``.
    """

    adjacency: jax.Array
    degrees: jax.Array
    volume: jax.Array
    spectral_radius: jax.Array
    adjacency_eigh: SpectralDecomposition | None = None
    laplacian_eigh: SpectralDecomposition | None = None
    normalized_adjacency_eigh: SpectralDecomposition | None = None
    shortest_paths: jax.Array | None = None


def graph_spectra(
    adjacency,
    operators: tuple[str, ...] = OPERATORS,
    *,
    shortest_paths: bool = False,
) -> GraphSpectra:
    """Eigendecompositions of ``A``, ``L`` and ``𝒜`` (only those requested), once per graph.

    Jittable and vmappable over a batch of equal-size graphs (``operators`` and
    ``shortest_paths`` are static). Cost: one batched O(n³) ``eigh`` over ``A`` (always: it gives
    ``ρ``) and the requested operators, plus O(n³) Floyd-Warshall when ``shortest_paths``.
    Assumes a validated adjacency (see :func:`adjacency_matrix`) with positive degrees when
    ``normalized_adjacency`` is requested.
    """
    for op in operators:
        check_choice(op, "operators", OPERATORS)
    a = jnp.asarray(adjacency)
    d = degrees(a)
    builders = {
        "adjacency": lambda: a,
        "laplacian": lambda: laplacian(a),
        "normalized_adjacency": lambda: normalized_adjacency(a),
    }
    # eigh(A) is always computed (it gives ρ). All operators go through ONE batched eigh:
    # cheaper to dispatch, and it avoids a deadlock of the XLA CPU concurrency-optimised
    # scheduler (jaxlib 0.10) that we hit when separate eigh calls ran concurrently beside
    # loops in a re-executed program.
    wanted = [op for op in OPERATORS if op in operators or op == "adjacency"]
    values, vectors = jnp.linalg.eigh(jnp.stack([builders[op]() for op in wanted]))
    decs = dict.fromkeys(OPERATORS)
    for i, op in enumerate(wanted):
        decs[op] = SpectralDecomposition(values[i], vectors[i])
    rho = decs["adjacency"].values[-1]
    eig_a, eig_l, eig_na = decs["adjacency"], decs["laplacian"], decs["normalized_adjacency"]
    sp = shortest_path_distances(a) if shortest_paths else None
    return GraphSpectra(a, d, jnp.sum(d), rho, eig_a, eig_l, eig_na, sp)
