"""Hypothesis strategies and small fixed graphs for the graph tests."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
from hypothesis import strategies as st


def connect(graph: nx.Graph) -> nx.Graph:
    """Join consecutive connected components by one edge (deterministic)."""
    comps = [sorted(c) for c in nx.connected_components(graph)]
    for a, b in itertools.pairwise(comps):
        graph.add_edge(a[0], b[0])
    return graph


@st.composite
def connected_graphs(draw, min_nodes=4, max_nodes=10):
    """Random connected simple graphs as float64 adjacency matrices."""
    n = draw(st.integers(min_nodes, max_nodes))
    p = draw(st.floats(0.2, 0.8))
    seed = draw(st.integers(0, 2**31 - 1))
    graph = connect(nx.gnp_random_graph(n, p, seed=seed))
    return nx.to_numpy_array(graph, nodelist=range(n), weight=None)


@st.composite
def glued_graphs(draw):
    """Two random connected graphs glued at one cut vertex; returns (A, left, cut, right)."""
    g1 = nx.to_numpy_array(
        connect(
            nx.gnp_random_graph(
                draw(st.integers(3, 6)), draw(st.floats(0.3, 0.9)), seed=draw(st.integers(0, 10**6))
            )
        )
    )
    g2 = nx.to_numpy_array(
        connect(
            nx.gnp_random_graph(
                draw(st.integers(3, 6)), draw(st.floats(0.3, 0.9)), seed=draw(st.integers(0, 10**6))
            )
        )
    )
    n1, n2 = len(g1), len(g2)
    n = n1 + n2 - 1
    a = np.zeros((n, n))
    a[:n1, :n1] = g1
    # node n1-1 of g1 is identified with node 0 of g2
    idx = np.r_[n1 - 1, np.arange(n1, n)]
    a[np.ix_(idx, idx)] += g2
    cut = n1 - 1
    return a, list(range(n1 - 1)), cut, list(range(n1, n))


def path_graph(n: int) -> np.ndarray:
    a = np.zeros((n, n))
    for i in range(n - 1):
        a[i, i + 1] = a[i + 1, i] = 1.0
    return a


def kivimaki_triangle() -> np.ndarray:
    """Edges 1-2, 2-3, 2-4, 3-4 (0-based: 0-1, 1-2, 1-3, 2-3)."""
    a = np.zeros((4, 4))
    for i, j in [(0, 1), (1, 2), (1, 3), (2, 3)]:
        a[i, j] = a[j, i] = 1.0
    return a
