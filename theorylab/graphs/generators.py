"""Random graphs with planted communities, and Zachary's karate club.

- :func:`stochastic_block_model`: independent edges with probability ``probs[c_i, c_j]``
  between nodes of blocks ``c_i, c_j`` (sizes given), sampled in JAX from an explicit key;
  :func:`planted_partition` is the paper's ``G(N, (m) p_in, p_out)`` with m equal classes.
- **Connectivity policy** (explicit, recorded in the result): with ``connected=True`` (default) a
  disconnected sample is *rejected and resampled* (keys ``fold_in(key, attempt)``), as in
  Rubanov's generator used by the Avrachenkov et al. tests, never patched with extra edges as
  pygkernels does. ``attempts`` reports how many samples each graph took; after
  ``max_attempts`` failures a ``RuntimeError`` says which parameters are too sparse.
- :func:`karate_club`: networkx's Zachary graph read *unweighted* (the paper's 78 edges; networkx
  attaches weights that sum to 231) with the ``club`` ground truth (Mr. Hi = 0, Officer = 1).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
from scipy.sparse.csgraph import connected_components

from theorylab.core.checks import check_array, check_bool, check_float, check_int, check_key

__all__ = ["GraphBatch", "karate_club", "planted_partition", "stochastic_block_model"]


class GraphBatch(NamedTuple):
    """Sampled graphs with their planted labels.

    Attributes:
      adjacency: ``(G, n, n)`` float adjacency matrices (0/1, zero diagonal).
      labels: ``(n,)`` int32 block of each node (shared by all graphs; nodes sorted by block).
      attempts: ``(G,)`` number of samples drawn until the graph was accepted.
    """

    adjacency: jax.Array
    labels: jax.Array
    attempts: np.ndarray


def _sample_one(key, probs_full):
    n = probs_full.shape[0]
    upper = jax.random.uniform(key, (n, n)) < probs_full
    upper = jnp.triu(upper, k=1)
    return (upper | upper.T).astype(jnp.result_type(float))


_sample_batch = jax.jit(jax.vmap(_sample_one, in_axes=(0, None)))


def _is_connected(adj: np.ndarray) -> bool:
    return connected_components(adj != 0, directed=False)[0] == 1


def stochastic_block_model(
    key,
    sizes,
    probs,
    *,
    num_graphs: int = 1,
    connected: bool = True,
    max_attempts: int = 1000,
) -> GraphBatch:
    """Sample ``num_graphs`` undirected SBM graphs (no self-loops).

    Args:
      key: PRNG key; graph ``g`` uses ``fold_in(split(key, num_graphs)[g], attempt)``.
      sizes: block sizes (positive ints), nodes ordered block by block.
      probs: ``(m, m)`` symmetric matrix of edge probabilities in [0, 1].
      num_graphs: how many graphs.
      connected: resample until connected (see module docstring) or accept any sample.
      max_attempts: per-graph cap on resampling.

    Returns:
      :class:`GraphBatch`.
    """
    key = check_key(key)
    sizes = [check_int(s, f"sizes[{i}]", min_value=1) for i, s in enumerate(sizes)]
    m = len(sizes)
    if m == 0:
        raise ValueError("sizes must list at least one block; got []")
    p = np.asarray(
        check_array(probs, "probs", shape=(m, m), kind="real", finite=True, to_jax=False),
        dtype=np.float64,
    )
    if np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"probs must be in [0, 1]; got values in [{p.min()}, {p.max()}]")
    if not np.allclose(p, p.T):
        raise ValueError("probs must be symmetric (undirected graphs)")
    num_graphs = check_int(num_graphs, "num_graphs", min_value=1)
    connected = check_bool(connected, "connected")
    max_attempts = check_int(max_attempts, "max_attempts", min_value=1)
    labels = np.repeat(np.arange(m, dtype=np.int32), sizes)
    probs_full = jnp.asarray(p[labels][:, labels], dtype=jnp.result_type(float))
    keys = jax.random.split(key, num_graphs)
    graphs = np.array(_sample_batch(keys, probs_full))  # writable copy
    attempts = np.ones(num_graphs, dtype=np.int64)
    if connected:
        for g in range(num_graphs):
            while not _is_connected(graphs[g]):
                if attempts[g] >= max_attempts:
                    raise RuntimeError(
                        f"graph {g} still disconnected after {max_attempts} samples: the SBM "
                        f"with sizes={sizes} and probs={p.tolist()} is too sparse; raise the "
                        "probabilities, or pass connected=False and handle components yourself"
                    )
                retry = jax.random.fold_in(keys[g], int(attempts[g]))
                graphs[g] = np.asarray(_sample_batch(retry[None], probs_full))[0]
                attempts[g] += 1
    return GraphBatch(jnp.asarray(graphs), jnp.asarray(labels), attempts)


def planted_partition(
    key,
    num_nodes: int,
    num_classes: int,
    p_in: float,
    p_out: float,
    *,
    num_graphs: int = 1,
    connected: bool = True,
    max_attempts: int = 1000,
) -> GraphBatch:
    """The paper's ``G(N, (m) p_in, p_out)``: m equal classes of N/m nodes.

    ``num_nodes`` must be divisible by ``num_classes`` (the paper's code rounds, e.g. 102 for
    three classes).
    """
    num_nodes = check_int(num_nodes, "num_nodes", min_value=2)
    num_classes = check_int(num_classes, "num_classes", min_value=1, max_value=num_nodes)
    if num_nodes % num_classes:
        raise ValueError(
            f"num_nodes must be divisible by num_classes; got {num_nodes} nodes for "
            f"{num_classes} classes (use {num_nodes - num_nodes % num_classes + num_classes})"
        )
    p_in = check_float(p_in, "p_in", min_value=0.0, max_value=1.0)
    p_out = check_float(p_out, "p_out", min_value=0.0, max_value=1.0)
    probs = np.full((num_classes, num_classes), p_out)
    np.fill_diagonal(probs, p_in)
    sizes = [num_nodes // num_classes] * num_classes
    return stochastic_block_model(
        key, sizes, probs, num_graphs=num_graphs, connected=connected, max_attempts=max_attempts
    )


def karate_club():
    """Zachary's karate club: ``(A, labels)``, unweighted 34x34 adjacency, 78 edges.

    Labels: 0 for 'Mr. Hi', 1 for 'Officer' (networkx's ``club`` node attribute).
    """
    graph = nx.karate_club_graph()
    adjacency = nx.to_numpy_array(graph, nodelist=sorted(graph.nodes), weight=None)
    clubs = [graph.nodes[v]["club"] for v in sorted(graph.nodes)]
    labels = np.array([0 if c == "Mr. Hi" else 1 for c in clubs], dtype=np.int32)
    return jnp.asarray(adjacency, dtype=jnp.result_type(float)), jnp.asarray(labels)
