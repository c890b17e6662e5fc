"""Clustering quality over parameter grids: the inner loop of the paper's experiments.

:func:`ari_curves` evaluates several measures on a flat-parameter grid for a batch of
equal-size graphs: per graph one :func:`graph_spectra` (the eigendecompositions all requested
measures need), then per grid point the kernel (one GEMM for diagonalisable families), kernel
k-means with ``n_init`` restarts, and the ARI against the planted labels.

Design notes:

- The measure is a *runtime* branch index (``lax.switch``) rather than a static argument, so one
  compilation serves every measure of a call (XLA compile time, not arithmetic, dominates at
  the paper's sizes n <= 200 on CPU).
- Every grid point and every measure of a graph uses the same k-means key (common random
  numbers): differences between parameters and measures are not blurred by seeding noise.
- Non-finite kernels (e.g. log kernels whose plain kernel underflowed) give ARI = NaN, never a
  silent number.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import (
    check_array,
    check_choice,
    check_int,
    check_key,
    require_x64,
)
from theorylab.core.metrics import adjusted_rand_index
from theorylab.graphs.clustering import kernel_kmeans_core, kernel_ward
from theorylab.graphs.measures import MEASURES, Measure, get_measure, scale_parameter
from theorylab.graphs.operators import (
    OPERATORS,
    GraphSpectra,
    adjacency_matrix,
    check_connected,
    graph_spectra,
)

__all__ = ["ari_curve", "ari_curves", "ari_curves_core", "kernel_at_flat"]


def kernel_at_flat(measure: Measure, spectra: GraphSpectra, flat):
    """The kernel of ``measure`` at flat parameter ``flat`` (ignored if parameter-free)."""
    if measure.parameter is None:
        return measure.kernel_fn(spectra, None)
    native = scale_parameter(measure.scaler, flat, spectra.spectral_radius)
    return measure.kernel_fn(spectra, native)


def _binary_switch(index, branches, *operands):
    """``lax.switch`` as a balanced tree of two-way ``lax.cond``.

    Workaround: on the XLA CPU runtime (jaxlib 0.10), re-executing a compiled program that holds
    an N-way (N >= 3) conditional inside loops deadlocked in our tests, while two-way
    conditionals run fine.
    """
    if len(branches) == 1:
        return branches[0](*operands)
    mid = len(branches) // 2
    return jax.lax.cond(
        index < mid,
        lambda *ops: _binary_switch(index, branches[:mid], *ops),
        lambda *ops: _binary_switch(index - mid, branches[mid:], *ops),
        *operands,
    )


def _requirements(measures: tuple[str, ...]):
    ops = tuple(op for op in OPERATORS if any(op in MEASURES[m].operators for m in measures))
    return ops, any(MEASURES[m].shortest_paths for m in measures)


def ari_curves_core(
    key,
    adjacency,
    labels,
    flat,
    measure_index,
    *,
    measures: tuple[str, ...],
    n_clusters: int,
    num_classes: int,
    n_init: int = 10,
    max_iter: int = 100,
    select: str = "inertia",
    chunk_size: int = 4,
):
    """Jittable ARI curve of ``measures[measure_index]`` on one graph (no validation).

    ``measure_index`` may be traced (``lax.switch``); the keyword arguments are static.
    Returns ``(P,)`` ARIs, NaN where the kernel was not finite.
    """
    ops, sp = _requirements(measures)
    spectra = graph_spectra(adjacency, ops, shortest_paths=sp)
    branches = [partial(kernel_at_flat, MEASURES[m]) for m in measures]
    adj = adjacency if select == "modularity" else None

    def one(x):
        k = _binary_switch(measure_index, branches, spectra, x)
        res = kernel_kmeans_core(key, k, adj, n_clusters, n_init, max_iter, select)
        ari = adjusted_rand_index(labels, res.labels, num_true=num_classes, num_pred=n_clusters)
        return jnp.where(res.valid, ari, jnp.nan)

    return jax.lax.map(one, flat, batch_size=chunk_size)


_STATIC = ("measures", "n_clusters", "num_classes", "n_init", "max_iter", "select", "chunk_size")


@partial(jax.jit, static_argnames=_STATIC)
def _ari_curves_batch(
    keys,
    graphs,
    labels,
    flat,
    measure_index,
    *,
    measures,
    n_clusters,
    num_classes,
    n_init,
    max_iter,
    select,
    chunk_size,
):
    def one(key, adjacency):
        return ari_curves_core(
            key,
            adjacency,
            labels,
            flat,
            measure_index,
            measures=measures,
            n_clusters=n_clusters,
            num_classes=num_classes,
            n_init=n_init,
            max_iter=max_iter,
            select=select,
            chunk_size=chunk_size,
        )

    return jax.vmap(one)(keys, graphs)


def _validate_graphs(adjacency, measures: list[Measure]):
    adj = check_array(adjacency, "adjacency", ndim=(2, 3), kind="real", finite=True)
    batch = adj.ndim == 3
    graphs = adj if batch else adj[None]
    need = [m for m in measures if m.needs_connected or m.operators == ("normalized_adjacency",)]
    for g in range(graphs.shape[0]):
        a = adjacency_matrix(np.asarray(graphs[g]), name=f"adjacency[{g}]")
        if need:
            check_connected(a, f"adjacency[{g}]", what=f"measure {need[0].name!r}")
    return jnp.asarray(graphs, dtype=jnp.result_type(float)), batch


def ari_curves(
    key,
    adjacency,
    labels,
    measures,
    flat,
    n_clusters: int,
    *,
    method: str = "kmeans",
    n_init: int = 10,
    max_iter: int = 100,
    select: str = "inertia",
    chunk_size: int = 4,
) -> dict[str, np.ndarray]:
    """ARI of kernel clustering against ``labels`` along a flat grid, for several measures.

    Args:
      key: PRNG key; graph ``g`` uses ``split(key, G)[g]`` for every measure and grid point.
      adjacency: ``(n, n)`` or a batch ``(G, n, n)`` of equal-size graphs (labels shared).
      labels: ``(n,)`` non-negative integer ground-truth classes.
      measures: measure names (parameter-free ones give a constant curve).
      flat: ``(P,)`` flat parameters in [0, 1] shared by all measures, or ``(M, P)`` with one
        row per measure (e.g. each measure at its own tuned parameter, ``P = 1``).
      n_clusters: clusters to find (``<= n``).
      method: ``"kmeans"`` (jit, vmapped over graphs, one compilation for all measures) or
        ``"ward"`` (kernel Ward on the host, per graph and grid point).
      n_init, max_iter, select: kernel k-means settings (see :func:`kernel_kmeans`).
      chunk_size: grid points per ``lax.map`` step (memory bound).

    Returns:
      ``{name: ARIs}`` with arrays of shape ``(P,)`` (single graph) or ``(G, P)``.
    """
    key = check_key(key)
    if isinstance(measures, str):
        measures = [measures]
    ms = [get_measure(m) for m in measures]
    if not ms:
        raise ValueError("measures must name at least one measure")
    for m in ms:
        if m.needs_x64:
            require_x64(f"measure {m.name!r}")
    graphs, batch = _validate_graphs(adjacency, ms)
    n = graphs.shape[-1]
    lab = check_array(labels, "labels", shape=(n,), kind="int")
    host_labels = np.asarray(lab)
    if host_labels.min() < 0:
        raise ValueError(f"labels must be non-negative integers; got min {host_labels.min()}")
    num_classes = int(host_labels.max()) + 1
    x = np.asarray(
        check_array(flat, "flat", ndim=(1, 2), kind="real", finite=True, min_size=1, to_jax=False),
        dtype=np.float64,
    )
    if np.any((x < 0) | (x > 1)):
        raise ValueError(f"flat must be in [0, 1]; got values in [{x.min()}, {x.max()}]")
    if x.ndim == 2 and x.shape[0] != len(ms):
        raise ValueError(
            f"flat with one row per measure must have shape ({len(ms)}, P); got {x.shape}"
        )
    rows = x if x.ndim == 2 else np.broadcast_to(x, (len(ms), x.shape[0]))
    n_clusters = check_int(n_clusters, "n_clusters", min_value=1, max_value=n)
    check_choice(method, "method", ("kmeans", "ward"))
    check_choice(select, "select", ("inertia", "modularity"))
    n_init = check_int(n_init, "n_init", min_value=1)
    max_iter = check_int(max_iter, "max_iter", min_value=1)
    chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    names = tuple(m.name for m in ms)
    out = {}
    if method == "ward":
        for name, row in zip(names, rows):
            out[name] = np.stack(
                [
                    _ward_curve(graphs[g], host_labels, name, row, n_clusters)
                    for g in range(graphs.shape[0])
                ]
            )
    else:
        keys = jax.random.split(key, graphs.shape[0])
        for i, name in enumerate(names):
            out[name] = np.asarray(
                _ari_curves_batch(
                    keys,
                    graphs,
                    lab,
                    jnp.asarray(rows[i], dtype=graphs.dtype),
                    jnp.asarray(i, jnp.int32),
                    measures=names,
                    n_clusters=n_clusters,
                    num_classes=num_classes,
                    n_init=n_init,
                    max_iter=max_iter,
                    select=select,
                    chunk_size=chunk_size,
                )
            )
    return out if batch else {k: v[0] for k, v in out.items()}


def ari_curve(key, adjacency, labels, measure: str, flat, n_clusters: int, **kwargs):
    """:func:`ari_curves` for a single measure; returns its ``(P,)`` or ``(G, P)`` array."""
    return ari_curves(key, adjacency, labels, [measure], flat, n_clusters, **kwargs)[
        get_measure(measure).name
    ]


def _ward_curve(adjacency, labels, measure: str, flat: np.ndarray, n_clusters: int):
    m = MEASURES[measure]
    spectra = graph_spectra(adjacency, m.operators, shortest_paths=m.shortest_paths)
    scores = np.full(flat.shape, np.nan)
    for i, x in enumerate(flat):
        k = np.asarray(kernel_at_flat(m, spectra, jnp.asarray(x, adjacency.dtype)))
        if np.all(np.isfinite(k)):
            pred = kernel_ward(k, n_clusters)
            scores[i] = float(adjusted_rand_index(labels, pred))
    return scores
