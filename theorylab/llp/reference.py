"""Plain float64 NumPy references for LLP belief propagation (spec §1.1, §1.4, §5.1).

Written from the formulas only, independently of the JAX code in :mod:`theorylab.llp.bp` and
:mod:`theorylab.llp.messages`. The tests compare the JAX results with these functions, and
:func:`numpy_clique_bp` is the benchmark peer that stands in for PGMax (which cannot be
installed beside current JAX, spec §4).

Conventions: labels ``y ∈ {0,1}``; ``edges`` is an ``(E, 2)`` list of *undirected* kNN edges
(each pair once) with weights ``s_ij``; ``bags`` is a sequence of index arrays (disjoint) with
positive counts ``c_B``; messages and fields are log-odds ``log m(1) − log m(0)``.

The model (spec §1.1) is the Gibbs distribution with log-density, up to a constant,

    log p(y) = −λ_s Σ_{(i,j)∈E} s_ij (y_i − y_j)² − λ_b Σ_B (Σ_{i∈B} y_i − c_B)² + Σ_i a_i y_i

(``a`` an optional unary log-odds field; ``λ_b = inf`` is the hard constraint
``Σ_{i∈B} y_i = c_B``).

Functions:

- :func:`brute_force_marginals`: exact ``P(y_i = 1)`` by enumerating all ``2^n``
  configurations (``n ≤ 16``); ``O(2^n (n + E))`` time and memory.
- :func:`numpy_clique_bp`: loopy sum-product BP on the paper's factor graph (the Ising
  expansion: unary ``h_i``, one pairwise factor per kNN edge and per bag pair, a kNN edge inside
  a bag merged into that bag pair's factor), flooding schedule, damping on log-odds messages.
  ``O(E + n K)`` time and memory per iteration, with the bag-pair messages held as a dense
  ``(num_bags, K, K)`` array (the layout the JAX clique mode uses, so the comparison is fair).
- :func:`numpy_count_messages_prefix`: the exact count-factor messages of one bag by a
  log-space prefix/suffix dynamic programme (``O(K³)``; an oracle for small ``K``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from theorylab.core.checks import check_array, check_float, check_int

__all__ = ["brute_force_marginals", "numpy_clique_bp", "numpy_count_messages_prefix"]


def _edges_weights(edges, weights, n):
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if weights is None:
        weights = np.ones(edges.shape[0])
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if weights.shape[0] != edges.shape[0]:
        raise ValueError(
            f"weights must have one entry per edge ({edges.shape[0]}); got {weights.shape[0]}"
        )
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise ValueError(
            f"edges must hold node indices in [0, {n}); got values in "
            f"[{edges.min()}, {edges.max()}]"
        )
    if np.any(edges[:, 0] == edges[:, 1]):
        raise ValueError("edges must not contain self-loops")
    return edges, weights


def _bags_counts(bags, counts, n):
    bags = [np.asarray(b, dtype=np.int64).reshape(-1) for b in bags]
    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    if counts.shape[0] != len(bags):
        raise ValueError(f"counts must have one entry per bag ({len(bags)}); got {counts.shape[0]}")
    members = np.concatenate(bags) if bags else np.zeros(0, np.int64)
    if members.size and (members.min() < 0 or members.max() >= n):
        raise ValueError(f"bags must hold node indices in [0, {n})")
    if np.unique(members).size != members.size:
        raise ValueError("bags must be disjoint (an instance appears twice)")
    return bags, counts


def brute_force_marginals(
    num_nodes: int,
    edges,
    weights,
    bags: Sequence,
    counts,
    lam_s: float,
    lam_b: float,
    unary=None,
) -> np.ndarray:
    """Exact marginals ``P(y_i = 1)`` of the LLP Gibbs distribution by enumeration.

    Args:
      num_nodes: ``n ≤ 16``.
      edges: ``(E, 2)`` undirected edges (each once); ``weights``: ``(E,)`` ``s_ij`` (None: 1).
      bags: sequence of disjoint index arrays; ``counts``: ``(num_bags,)`` targets ``c_B``.
      lam_s, lam_b: penalties (``lam_b = inf``: hard constraint).
      unary: optional ``(n,)`` log-odds field ``a`` (adds ``a_i y_i`` to the log-density).

    Returns:
      ``(n,)`` float64 marginals. ``O(2^n (n + E + Σ|B|))``.

    Raises:
      ValueError: if ``n > 16`` or (hard constraints) no configuration is feasible.
    """
    n = check_int(num_nodes, "num_nodes", min_value=1, max_value=16)
    edges, weights = _edges_weights(edges, weights, n)
    bags, counts = _bags_counts(bags, counts, n)
    lam_s = check_float(lam_s, "lam_s", min_value=0.0)
    lam_b = check_float(lam_b, "lam_b", min_value=0.0, allow_inf=True)
    a = np.zeros(n) if unary is None else check_array(unary, "unary", shape=(n,), to_jax=False)
    a = np.asarray(a, dtype=np.float64)
    Y = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)
    logp = Y @ a
    if edges.shape[0]:
        diff = Y[:, edges[:, 0]] - Y[:, edges[:, 1]]
        logp = logp - lam_s * (diff**2 @ weights)
    for members, c in zip(bags, counts):
        total = Y[:, members].sum(axis=1)
        if math.isinf(lam_b):
            logp = np.where(total == c, logp, -np.inf)
        elif lam_b > 0:
            logp = logp - lam_b * (total - c) ** 2
    top = logp.max()
    if not np.isfinite(top):
        raise ValueError("no configuration satisfies the hard bag constraints (lam_b = inf)")
    p = np.exp(logp - top)
    return (p @ Y) / p.sum()


def _log_sigmoid(u):
    return -np.logaddexp(0.0, -u)


def numpy_count_messages_prefix(cavity_row, counts_b: float, lam_b: float) -> np.ndarray:
    """Exact count-factor log-odds messages of one bag (prefix/suffix DP, float64 oracle).

    For member ``i`` with the other members' count distribution ``P_{−i}`` (Poisson-binomial
    with probabilities ``σ(u_j)``, ``j ≠ i``) and ``ψ(c) = exp(−λ_b (c − c_B)²)``
    (indicator of ``c = c_B`` when ``λ_b = inf``), the message is
    ``log Σ_c ψ(c+1) P_{−i}(c) − log Σ_c ψ(c) P_{−i}(c)`` (spec §1.4). Everything is in log
    space, so cavities of ``±inf`` (forced members) and ``c_B ∈ {0, K}`` are exact (messages
    may then be ``±inf``).

    Args:
      cavity_row: ``(K,)`` cavity log-odds ``u`` of the real members (no padding).
      counts_b: the bag's ``c_B``.
      lam_b: penalty (``inf`` for the hard constraint).

    Returns:
      ``(K,)`` float64 messages. ``O(K³)`` time.
    """
    u = np.asarray(cavity_row, dtype=np.float64).reshape(-1)
    K = u.shape[0]
    lam_b = check_float(lam_b, "lam_b", min_value=0.0, allow_inf=True)
    c_range = np.arange(K + 1, dtype=np.float64)
    if math.isinf(lam_b):
        log_psi = np.where(c_range == counts_b, 0.0, -np.inf)
    else:
        log_psi = -lam_b * (c_range - counts_b) ** 2
    log_q1, log_q0 = _log_sigmoid(u), _log_sigmoid(-u)
    # prefix[k] = log P(count of members 0..k-1 = c), c = 0..K; suffix[k] for members k..K-1.
    prefix = np.full((K + 1, K + 1), -np.inf)
    prefix[0, 0] = 0.0
    for k in range(K):
        shifted = np.concatenate([[-np.inf], prefix[k, :-1]])
        prefix[k + 1] = np.logaddexp(prefix[k] + log_q0[k], shifted + log_q1[k])
    suffix = np.full((K + 1, K + 1), -np.inf)
    suffix[K, 0] = 0.0
    for k in range(K - 1, -1, -1):
        shifted = np.concatenate([[-np.inf], suffix[k + 1, :-1]])
        suffix[k] = np.logaddexp(suffix[k + 1] + log_q0[k], shifted + log_q1[k])
    out = np.empty(K)
    for i in range(K):
        # log P_{-i}(c) = logsumexp_a prefix[i, a] + suffix[i+1, c - a]
        others = np.full(K + 1, -np.inf)
        for a in range(K + 1):
            if np.isfinite(prefix[i, a]):
                others[a:] = np.logaddexp(others[a:], prefix[i, a] + suffix[i + 1, : K + 1 - a])
        with np.errstate(invalid="ignore"):
            log_one = np.logaddexp.reduce(others[:K] + log_psi[1:])
            log_zero = np.logaddexp.reduce(others + log_psi)
        out[i] = log_one - log_zero
    return out


def _padded_bags(bags, counts, n):
    num_bags = len(bags)
    K = max((b.size for b in bags), default=1)
    K = max(K, 1)
    index = np.zeros((num_bags, K), np.int64)
    mask = np.zeros((num_bags, K), bool)
    for r, members in enumerate(bags):
        index[r, : members.size] = members
        mask[r, : members.size] = True
    bag_of = np.full(n, -1, np.int64)
    slot_of = np.zeros(n, np.int64)
    bag_of[index[mask]] = np.nonzero(mask)[0]
    slot_of[index[mask]] = np.nonzero(mask)[1]
    return index, mask, bag_of, slot_of


def _coupling_message(u, J):
    """Log-odds message of a pairwise factor with log-table ``J·[y_i = y_j = 1]``."""
    return np.logaddexp(0.0, u + J) - np.logaddexp(0.0, u)


def numpy_clique_bp(
    num_nodes: int,
    edges,
    weights,
    bags: Sequence,
    counts,
    lam_s: float,
    lam_b: float,
    damping: float = 0.5,
    num_iters: int = 100,
    unary=None,
) -> np.ndarray:
    """Loopy sum-product BP on the paper's clique-expansion factor graph (PGMax stand-in).

    Factor graph (spec §1.1): unary log-potential on state 1
    ``h_i = a_i − λ_b (1 − 2 c_{B(i)}) − λ_s Σ_j s_ij`` (the bag term only for instances in a
    bag); one pairwise factor per kNN edge with log-potential ``+2 λ_s s_ij`` on ``(1, 1)``; one
    pairwise factor per unordered pair inside a bag with ``−2 λ_b`` on ``(1, 1)``. A kNN edge
    whose ends share a bag is **merged** into that bag pair's factor (log-potential
    ``−2 λ_b + 2 λ_s s_ij``), i.e. the couplings ``J_ij`` are summed as in the paper's Ising
    form. Flooding schedule: all factor-to-variable log-odds messages are recomputed from the
    previous ones, then damped ``new = d·old + (1−d)·candidate`` (PGMax's rule); ``num_iters``
    iterations without a convergence test (the released code ran 100 with ``d = 0.5``).

    Args:
      num_nodes, edges, weights, bags, counts, lam_s, lam_b, unary: as in
        :func:`brute_force_marginals` (``lam_b`` finite).
      damping: ``d ∈ [0, 1)``.
      num_iters: number of flooding iterations.

    Returns:
      ``(n,)`` float64 marginals ``σ(L_i)``.

    Cost: ``O(E + Σ_B K_B²)`` per iteration; bag messages as a dense ``(num_bags, K, K)`` array
    (``K`` the largest bag) with the diagonal and padding masked.
    """
    n = check_int(num_nodes, "num_nodes", min_value=1)
    edges, weights = _edges_weights(edges, weights, n)
    bags, counts = _bags_counts(bags, counts, n)
    lam_s = check_float(lam_s, "lam_s", min_value=0.0)
    lam_b = check_float(lam_b, "lam_b", min_value=0.0)
    damping = check_float(damping, "damping", min_value=0.0, max_value=1.0, max_inclusive=False)
    num_iters = check_int(num_iters, "num_iters", min_value=0)
    a = np.zeros(n) if unary is None else check_array(unary, "unary", shape=(n,), to_jax=False)
    a = np.asarray(a, dtype=np.float64)

    index, mask, bag_of, slot_of = _padded_bags(bags, counts, n)
    num_bags, K = index.shape
    pair_mask = mask[:, :, None] & mask[:, None, :] & ~np.eye(K, dtype=bool)[None]

    # Unary field h.
    degree = np.zeros(n)
    np.add.at(degree, edges[:, 0], weights)
    np.add.at(degree, edges[:, 1], weights)
    h = a - lam_s * degree
    in_bag = bag_of >= 0
    h[in_bag] += -lam_b * (1.0 - 2.0 * counts[bag_of[in_bag]])

    # Couplings: kNN edges between bags (or outside bags) are their own factors; kNN edges inside
    # a bag are merged into the bag-pair coupling.
    intra = (bag_of[edges[:, 0]] >= 0) & (bag_of[edges[:, 0]] == bag_of[edges[:, 1]])
    J_bag = np.where(pair_mask, -2.0 * lam_b, 0.0)
    ia, ib = edges[intra, 0], edges[intra, 1]
    extra = 2.0 * lam_s * weights[intra]
    np.add.at(J_bag, (bag_of[ia], slot_of[ia], slot_of[ib]), extra)
    np.add.at(J_bag, (bag_of[ia], slot_of[ib], slot_of[ia]), extra)
    xe = edges[~intra]
    num_x = xe.shape[0]
    src = np.concatenate([xe[:, 0], xe[:, 1]])
    dst = np.concatenate([xe[:, 1], xe[:, 0]])
    rev = np.concatenate([np.arange(num_x) + num_x, np.arange(num_x)])
    J_edge = np.tile(2.0 * lam_s * weights[~intra], 2)

    edge_msg = np.zeros(src.shape[0])  # message from factor {src, dst} into dst
    bag_msg = np.zeros((num_bags, K, K))  # [b, k, l]: from factor {k, l} into slot l
    flat_index = index[mask]

    def beliefs(edge_msg, bag_msg):
        L = h + np.bincount(dst, weights=edge_msg, minlength=n)
        into_slot = bag_msg.sum(axis=1)
        L[flat_index] += into_slot[mask]
        return L

    for _ in range(num_iters):
        L = beliefs(edge_msg, bag_msg)
        cand_edge = _coupling_message(L[src] - edge_msg[rev], J_edge)
        cavity = L[index][:, :, None] - np.swapaxes(bag_msg, 1, 2)
        cand_bag = np.where(pair_mask, _coupling_message(cavity, J_bag), 0.0)
        edge_msg = damping * edge_msg + (1.0 - damping) * cand_edge
        bag_msg = damping * bag_msg + (1.0 - damping) * cand_bag
    L = beliefs(edge_msg, bag_msg)
    return 1.0 / (1.0 + np.exp(-L))
