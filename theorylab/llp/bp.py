"""Loopy belief propagation for LLP pseudo-labels (Havaldar et al. 2024; spec §1.1, §1.4, §1.5).

Model (spec §1.1), labels ``y ∈ {0,1}^n``, bags ``B`` with positive counts ``c_B``, kNN edges
with similarities ``s_ij``:

    log p(y) = −λ_s Σ_{(i,j)∈E} s_ij (y_i − y_j)² − λ_b Σ_B (Σ_{i∈B} y_i − c_B)²  (+ Σ_i a_i y_i)

(``a`` an optional unary log-odds field, ``unary``). :func:`loopy_bp` runs sum-product loopy BP
on one of two factor graphs of this same distribution:

- ``mode="count"`` (recommended): one higher-order *count factor* per bag,
  ``ψ_B(c) = exp(−λ_b (c − c_B)²)`` of ``c = Σ_{i∈B} y_i`` (``λ_b = inf``: the hard constraint
  ``c = c_B``), plus one pairwise factor ``exp(−λ_s s_ij [y_i ≠ y_j])`` per kNN edge and no
  unary terms. BP is exact whenever this factor graph is a tree (e.g. one bag and no edges).
  Count-factor messages come from :func:`theorylab.llp.messages.count_messages`
  (``count_method``: exact DP, Gaussian/CLT approximation, ...). A kNN edge inside a bag is an
  ordinary pairwise factor next to the bag's count factor.
- ``mode="clique"`` (the paper's PGMax model): the Ising expansion returned by
  :func:`ising_parameters` — unary log-potential on state 1
  ``h_i = −λ_b (1 − 2 c_{B(i)}) − λ_s Σ_j s_ij``, log-potential ``+2 λ_s s_ij`` on ``(1,1)``
  for each kNN edge and ``−2 λ_b`` on ``(1,1)`` for each unordered pair inside a bag. **A kNN
  edge inside a bag is merged** into that bag pair's factor (coupling ``−2 λ_b + 2 λ_s s_ij``,
  the summed ``J_ij`` of the paper's "specify J_ij and h_i"), not kept as a second factor on
  the same pair (which would add a spurious 2-cycle to the loopy graph). Bag-pair messages are
  a dense ``(num_bags, K, K)`` array with the diagonal and padding masked: O(nK) memory.

Messages are stored as log-odds ``log m(1) − log m(0)``. Beliefs ``L_i`` = field + sum of
incoming messages; the cavity into a factor is ``L_i`` minus that factor's message (for the
count factor, since an instance lies in at most one bag, the cavity is computed as the sum of
the *other* messages, so an infinite message from a hard constraint never meets ``inf − inf``).
Schedule: flooding (every message recomputed from the previous iteration's), then damping
``new = d·old + (1−d)·candidate`` on log-odds (PGMax's rule; an unchanged infinite message stays
as it is). The loop is a ``lax.while_loop`` that stops when the fixed-point residual
``max |candidate − message|`` (undamped, so ``tol`` means the same for every damping) is below
``tol`` or after ``max_iters`` iterations; a NaN anywhere stops it and is reported as
``converged = False``.
Count-factor messages are requested with ``bound=None`` (true ``±inf`` for forbidden states
under ``λ_b = inf``), which the guards above make safe; beliefs are then ``±inf`` and the
marginals exactly 0 or 1.

Convergence in practice: at the paper's ``λ_s = λ_b = 10`` count mode with damping 0.9 settles
into a small limit cycle on kNN graphs (residual ~1e-2 after 200 iterations, pseudo-label AUCs
as in spec §5.2); clique mode oscillates (bag sums far from ``c_B``) and its iterates are
chaotic: rounding differences grow exponentially, so two implementations agree only for the
first few dozen iterations there (they agree to ~1e-15 in float64 at moderate couplings).

Sharding: when ``layout.index`` is split over one axis of a device mesh on its leading (bag)
dimension (e.g. by :func:`theorylab.core.sharding.shard_leading_axis`, bags padded with
``make_layout(..., pad_bags_to_multiple=num_devices)``), the iterations run under
``jax.shard_map``: each device keeps its bags' messages and count-factor (or clique) work, the
per-instance arrays and the kNN messages are replicated (their O(E) update is repeated on every
device), and one ``psum`` of an ``(n,)`` vector per iteration combines the bag messages (plus a
``pmax`` for the residual). Results equal the unsharded ones up to summation order.

Cost per iteration: O(E) for the kNN factors; count mode O(n) (Gaussian messages) or O(nK)
(exact DP); clique mode O(nK) time and memory. Dtype: the default float dtype (float32, or
float64 under ``jax.enable_x64``); the exactness tests run in float64.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from theorylab.core.checks import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_type,
    describe,
    is_concrete,
)
from theorylab.llp.bags import BagLayout
from theorylab.llp.graph import KnnGraph
from theorylab.llp.messages import GAUSSIAN_MIN_SLOTS, count_messages

__all__ = [
    "BPResult",
    "energy_clique",
    "energy_count",
    "ising_parameters",
    "loopy_bp",
]

MODES = ("count", "clique")
COUNT_METHODS = ("auto", "exact", "prefix", "gaussian", "tilted")
DEFAULT_DAMPING = {"count": 0.9, "clique": 0.5}


class BPResult(NamedTuple):
    """Output of :func:`loopy_bp`.

    Attributes:
      marginals: ``(n,)`` approximate marginals ``P(y_i = 1) = σ(L_i)``.
      log_odds: ``(n,)`` beliefs ``L_i`` (may be ``±inf`` under hard constraints).
      converged: bool scalar, ``residual < tol`` (False if anything became NaN).
      iterations: int32 scalar, number of flooding iterations run.
      residual: the last iteration's ``max |Δ message|`` (after damping).
      bag_residuals: ``(num_bags,)`` ``Σ_{i∈B} marginal_i − c_B`` (0 for padded bags).
    """

    marginals: jax.Array
    log_odds: jax.Array
    converged: jax.Array
    iterations: jax.Array
    residual: jax.Array
    bag_residuals: jax.Array


# ----------------------------------------------------------------------------------------------
# Validation


def _check_layout_arrays(layout) -> tuple[int, int, int]:
    check_type(layout, "layout", BagLayout, "a BagLayout (see theorylab.llp.bags.make_layout)")
    index = check_array(layout.index, "layout.index", ndim=2, kind="int", to_jax=False)
    num_bags, K = index.shape
    if K < 1 or num_bags < 1:
        raise ValueError(f"layout.index must have at least one bag and one slot; got {index.shape}")
    mask = check_array(layout.mask, "layout.mask", shape=(num_bags, K), kind="bool", to_jax=False)
    counts = check_array(
        layout.counts, "layout.counts", shape=(num_bags,), kind="real", finite=True, to_jax=False
    )
    bag_of = layout.bag_of
    if not hasattr(bag_of, "shape") or len(bag_of.shape) != 1:
        raise ValueError(f"layout.bag_of must be a 1-D array; got {describe(bag_of)}")
    n = int(bag_of.shape[0])
    if n < 1:
        raise ValueError("layout.bag_of must have at least one instance")
    if is_concrete(index) and is_concrete(mask):
        idx, msk = np.asarray(index), np.asarray(mask)
        members = idx[msk]
        if members.size and (members.min() < 0 or members.max() >= n):
            raise ValueError(
                f"layout.index must hold instance indices in [0, {n}) on real slots; got "
                f"values in [{members.min()}, {members.max()}]"
            )
        if members.size and np.bincount(members, minlength=n).max() > 1:
            raise ValueError("layout.index must not list an instance in two bag slots")
        if is_concrete(counts):
            cnt = np.asarray(counts, dtype=np.float64)
            sizes = msk.sum(axis=1)
            if np.any(cnt < 0) or np.any(cnt > sizes + 1e-4 * np.maximum(sizes, 1)):
                raise ValueError("layout.counts must be in [0, bag size] for every bag")
    return n, num_bags, K


def _check_graph(graph, n: int):
    if graph is None:
        return None
    check_type(graph, "graph", KnnGraph, "a KnnGraph (see theorylab.llp.graph) or None")
    src = check_array(graph.src, "graph.src", ndim=1, kind="int", to_jax=False)
    num = src.shape[0]
    dst = check_array(graph.dst, "graph.dst", shape=(num,), kind="int", to_jax=False)
    rev = check_array(graph.rev, "graph.rev", shape=(num,), kind="int", to_jax=False)
    weight = check_array(
        graph.weight, "graph.weight", shape=(num,), kind="real", finite=True, to_jax=False
    )
    if num and is_concrete(weight) and np.any(np.asarray(weight) < 0):
        raise ValueError(
            "graph.weight must be non-negative similarities s_ij; got minimum "
            f"{float(np.min(np.asarray(weight)))}"
        )
    if num and all(is_concrete(a) for a in (src, dst, rev)):
        s, d, r = (np.asarray(a) for a in (src, dst, rev))
        for name, arr in (("graph.src", s), ("graph.dst", d)):
            if arr.min() < 0 or arr.max() >= n:
                raise ValueError(
                    f"{name} must hold node indices in [0, {n}); got values in "
                    f"[{arr.min()}, {arr.max()}]"
                )
        if np.any(s == d):
            raise ValueError("graph must not contain self-loops (src == dst)")
        if r.min() < 0 or r.max() >= num:
            raise ValueError(f"graph.rev must hold edge indices in [0, {num})")
        if np.any(s[r] != d) or np.any(d[r] != s):
            raise ValueError(
                "graph.rev must index the reverse edge: src[rev] == dst and dst[rev] == src"
            )
        if is_concrete(weight) and np.any(np.asarray(weight)[r] != np.asarray(weight)):
            raise ValueError("graph.weight must be symmetric: weight[rev] == weight")
    return src, dst, rev, weight


# ----------------------------------------------------------------------------------------------
# Message kernels (log-odds, numerically guarded)


def _disagree_message(u, w):
    """Message of the factor ``exp(−w [y_i ≠ y_j])`` given the cavity log-odds ``u`` of ``y_i``.

    Equals ``logaddexp(−w, u) − logaddexp(0, u − w)``, an odd function of ``u`` bounded by
    ``|w|``, evaluated as ``sign(u)·(w + softplus(−w−|u|) − softplus(w−|u|))`` so that
    ``u = ±inf`` gives ``±w`` instead of ``inf − inf``.
    """
    a = jnp.abs(u)
    return jnp.sign(u) * (w + jax.nn.softplus(-w - a) - jax.nn.softplus(w - a))


def _log1p_exp_neg_abs(x):
    return jnp.log1p(jnp.exp(-jnp.abs(x)))


def _coupling_message(u, J):
    """Message of the factor ``exp(J·y_i·y_j)`` given the cavity log-odds ``u`` of ``y_i``.

    Equals ``softplus(u + J) − softplus(u)``, split as ``[max(u+J, 0) − max(u, 0)]`` (computed
    without cancellation on each sign of ``u``) plus the two bounded ``log1p(exp(−|·|))``
    terms; exact limits ``J`` and ``0`` at ``u = ±inf``.
    """
    linear = jnp.where(u >= 0, jnp.maximum(J, -u), jnp.maximum(u + J, 0.0))
    return linear + _log1p_exp_neg_abs(u + J) - _log1p_exp_neg_abs(u)


def _damp(old, cand, damping):
    """``d·old + (1−d)·cand``, keeping ``cand`` when it equals ``old`` (also ``±inf``) or d = 0."""
    mixed = damping * old + (1.0 - damping) * cand
    return jnp.where((cand == old) | (damping == 0), cand, mixed)


def _resolve_count_method(count_method: str, lam_b: float, layout: BagLayout) -> str:
    """Pick the count-message method before tracing.

    ``"auto"``: the exact DP under the hard constraint (``lam_b = inf``: the Gaussian
    approximation cannot enforce ``Σ y = c_B``) or when the largest bag has fewer than
    ``GAUSSIAN_MIN_SLOTS`` members (the CLT is poor for small bags; decided from the real bag
    sizes, not the padded width), else the tilted Gaussian approximation. An explicit
    ``"gaussian"``/``"tilted"`` with ``lam_b = inf`` is refused.
    """
    if math.isinf(lam_b):
        if count_method in ("gaussian", "tilted"):
            raise ValueError(
                f"count_method={count_method!r} cannot enforce the hard constraint lam_b=inf; use "
                "count_method='exact' (or 'auto')"
            )
        return "exact" if count_method == "auto" else count_method
    if count_method != "auto":
        return count_method
    sizes = layout.sizes
    largest = int(np.max(np.asarray(sizes))) if is_concrete(sizes) and sizes.size else None
    if largest is None:
        largest = int(layout.index.shape[1])
    return "exact" if largest < GAUSSIAN_MIN_SLOTS else "tilted"


def _max_change(old, new):
    """``max |new − old|`` with equal entries (also equal infinities) counting 0; NaN propagates."""
    if old.size == 0:
        return jnp.zeros((), old.dtype)
    delta = jnp.where(new == old, 0.0, jnp.abs(new - old))
    return jnp.max(delta)


# ----------------------------------------------------------------------------------------------
# Jitted core


def _bag_scatter(values, index, mask, n):
    """Sum ``values`` of real slots into their instances: ``(num_bags, K) -> (n,)``."""
    return jnp.zeros(n, values.dtype).at[index].add(jnp.where(mask, values, 0.0))


def _bp_program(
    index,
    mask,
    counts,
    src,
    dst,
    rev,
    weight,
    unary,
    lam_s,
    lam_b,
    damping,
    tol,
    max_iters,
    *,
    num_instances: int,
    mode: str,
    count_method: str,
    axis_name: str | None,
) -> BPResult:
    """The BP iterations on the bags held locally (all bags, or one shard inside ``shard_map``).

    Per-instance arrays (beliefs, kNN messages) are replicated; bag arrays are local. With an
    ``axis_name`` the per-instance contributions of the local bags are combined with ``psum``
    (sums) / ``pmax`` (scatter-max, residual), once per iteration.
    """
    if axis_name is None:
        psum = pmax = lambda x: x
        bag_offset = 0
    else:
        psum = partial(jax.lax.psum, axis_name=axis_name)
        pmax = partial(jax.lax.pmax, axis_name=axis_name)
        bag_offset = jax.lax.axis_index(axis_name) * index.shape[0]
    n = num_instances
    dtype = unary.dtype
    num_bags, K = index.shape  # local bags
    counts = counts.astype(dtype)
    weight = weight.astype(dtype)
    lam_s = jnp.asarray(lam_s, dtype)
    lam_b = jnp.asarray(lam_b, dtype)
    damping = jnp.asarray(damping, dtype)
    tol = jnp.asarray(tol, dtype)
    edge_in = lambda msg: jax.ops.segment_sum(msg, dst, num_segments=n)  # noqa: E731
    local_zeros = jnp.where(mask, 0.0, 0.0).astype(dtype)  # (num_bags, K), varies like mask

    if mode == "count":
        edge_w = lam_s * weight

        def beliefs(msgs):
            edge_msg, bag_msg = msgs
            base = unary + edge_in(edge_msg)  # everything but the bag's count factor
            return base, base + psum(_bag_scatter(bag_msg, index, mask, n))

        def step(msgs):
            edge_msg = msgs[0]
            base, L = beliefs(msgs)
            cand_edge = _disagree_message(L[src] - edge_msg[rev], edge_w)
            cand_bag = count_messages(
                base[index], mask, counts, lam_b, method=count_method, bound=None
            )
            cand_bag = jnp.where(mask, cand_bag.astype(dtype), 0.0)
            return cand_edge, cand_bag

        init = (jnp.zeros(src.shape, dtype), local_zeros)
    else:
        slots = jnp.broadcast_to(jnp.arange(K, dtype=index.dtype), (num_bags, K))
        rows = jnp.arange(num_bags, dtype=index.dtype)[:, None] + bag_offset
        bag_ids = jnp.broadcast_to(rows, (num_bags, K)).astype(index.dtype)
        bag_of = pmax(jnp.full(n, -1, index.dtype).at[index].max(jnp.where(mask, bag_ids, -1)))
        slot_of = pmax(jnp.zeros(n, index.dtype).at[index].max(jnp.where(mask, slots, 0)))
        count_of = psum(_bag_scatter(jnp.broadcast_to(counts[:, None], (num_bags, K)), index,
                                     mask, n))
        in_bag = bag_of >= 0
        degree = jax.ops.segment_sum(weight, src, num_segments=n)
        field = unary - lam_s * degree + jnp.where(in_bag, -lam_b * (1.0 - 2.0 * count_of), 0.0)
        # kNN edges inside a bag are merged into the bag-pair coupling (module docstring).
        intra = in_bag[src] & (bag_of[src] == bag_of[dst])
        edge_J = jnp.where(intra, 0.0, 2.0 * lam_s * weight)
        pair_mask = mask[:, :, None] & mask[:, None, :] & ~jnp.eye(K, dtype=bool)[None]
        local_row = bag_of[src] - bag_offset
        local_row = jnp.where(intra & (local_row >= 0) & (local_row < num_bags), local_row,
                              num_bags)  # out of range -> dropped
        bag_J = jnp.where(pair_mask, -2.0 * lam_b, 0.0).astype(dtype)
        bag_J = bag_J.at[local_row, slot_of[src], slot_of[dst]].add(2.0 * lam_s * weight,
                                                                    mode="drop")

        def beliefs(msgs):
            edge_msg, bag_msg = msgs
            base = field + edge_in(edge_msg)
            return base, base + psum(_bag_scatter(bag_msg.sum(axis=1), index, mask, n))

        def step(msgs):
            edge_msg, bag_msg = msgs
            _, L = beliefs(msgs)
            cand_edge = _coupling_message(L[src] - edge_msg[rev], edge_J)
            # bag_msg[b, k, l]: from the factor {k, l} into slot l; cavity of k excludes
            # bag_msg[b, l, k].
            cavity = L[index][:, :, None] - jnp.swapaxes(bag_msg, 1, 2)
            cand_bag = jnp.where(pair_mask, _coupling_message(cavity, bag_J), 0.0)
            return cand_edge, cand_bag

        init = (jnp.zeros(src.shape, dtype), jnp.broadcast_to(local_zeros[:, :, None],
                                                              (num_bags, K, K)))

    def cond(state):
        it, _, residual = state
        return (it < max_iters) & (residual >= tol)  # NaN residual -> False: stop

    def body(state):
        it, (edge_msg, bag_msg), _ = state
        cand_edge, cand_bag = step((edge_msg, bag_msg))
        new_edge = _damp(edge_msg, cand_edge, damping)
        new_bag = _damp(bag_msg, cand_bag, damping)
        # Fixed-point residual max |candidate − message| of the *undamped* update: the damped
        # step is (1 − d) times smaller, so testing it would loosen tol by 1/(1 − d).
        residual = jnp.maximum(
            _max_change(edge_msg, cand_edge), pmax(_max_change(bag_msg, cand_bag))
        )
        return it + 1, (new_edge, new_bag), residual

    state = (jnp.zeros((), jnp.int32), init, jnp.asarray(jnp.inf, dtype))
    iterations, msgs, residual = jax.lax.while_loop(cond, body, state)
    _, L = beliefs(msgs)
    marginals = jax.nn.sigmoid(L)
    converged = (residual < tol) & ~jnp.any(jnp.isnan(L))
    bag_sums = jnp.sum(jnp.where(mask, marginals[index], 0.0), axis=1)
    bag_residuals = jnp.where(jnp.any(mask, axis=1), bag_sums - counts, 0.0)
    return BPResult(marginals, L, converged, iterations, residual, bag_residuals)


@partial(
    jax.jit, static_argnames=("num_instances", "mode", "count_method", "mesh", "axis_name")
)
def _loopy_bp_core(
    index,
    mask,
    counts,
    src,
    dst,
    rev,
    weight,
    unary,
    lam_s,
    lam_b,
    damping,
    tol,
    max_iters,
    *,
    num_instances: int,
    mode: str,
    count_method: str,
    mesh,
    axis_name: str | None,
) -> BPResult:
    """Loopy BP for validated arrays (see :func:`loopy_bp`); static config only.

    With a ``mesh``, the bag arrays are split over its ``axis_name`` with ``jax.shard_map``
    and everything per instance is replicated.
    """
    args = (index, mask, counts, src, dst, rev, weight, unary, lam_s, lam_b, damping, tol,
            max_iters)
    program = partial(_bp_program, num_instances=num_instances, mode=mode,
                      count_method=count_method, axis_name=axis_name if mesh else None)
    if mesh is None:
        return program(*args)
    bags, rep = PartitionSpec(axis_name), PartitionSpec()
    sharded = jax.shard_map(
        program,
        mesh=mesh,
        in_specs=(bags, bags, bags, *([rep] * 10)),
        out_specs=BPResult(rep, rep, rep, rep, rep, bags),
    )
    return sharded(*args)


def _bag_mesh(layout):
    """``(mesh, axis)`` when ``layout.index`` is split over a mesh axis on its leading dim."""
    sharding = getattr(layout.index, "sharding", None)
    if not isinstance(sharding, NamedSharding) or len(sharding.device_set) < 2:
        return None, None
    spec = (*tuple(sharding.spec), None)
    axis = spec[0]
    if axis is None or any(p is not None for p in spec[1:]):
        return None, None
    if isinstance(axis, tuple):
        if len(axis) != 1:
            return None, None
        axis = axis[0]
    mesh = sharding.mesh
    if not isinstance(mesh, jax.sharding.Mesh) or layout.index.shape[0] % mesh.shape[axis]:
        return None, None
    return mesh, axis


# ----------------------------------------------------------------------------------------------
# Public API


def loopy_bp(
    layout: BagLayout,
    graph: KnnGraph | None,
    *,
    lam_s: float = 10.0,
    lam_b: float = 10.0,
    mode: str = "count",
    count_method: str = "auto",
    damping: float | None = None,
    max_iters: int = 200,
    tol: float = 1e-4,
    unary=None,
) -> BPResult:
    """Marginals ``P(y_i = 1)`` of the LLP Gibbs distribution by loopy sum-product BP.

    Spec §1.1 (model), §1.4 (messages), §1.5 (layout). See the module docstring for the two
    factor graphs.

    Args:
      layout: a :class:`~theorylab.llp.bags.BagLayout` (its ``(num_bags, ...)`` arrays may be
        sharded over a 1-D mesh). Instances in no bag only see kNN factors.
      graph: a :class:`~theorylab.llp.graph.KnnGraph` (directed both ways, ``rev`` the
        reverse edge, symmetric ``weight`` = ``s_ij``) or None for no kNN factors.
      lam_s: ``λ_s ≥ 0``, kNN smoothness strength.
      lam_b: ``λ_b ≥ 0``; ``inf`` (count mode only) imposes ``Σ_{i∈B} y_i = c_B`` exactly
        (``c_B`` must then be integers within 1e-3; they are rounded).
      mode: ``"count"`` (one count factor per bag) or ``"clique"`` (the paper's pairwise
        expansion, O(nK) memory).
      count_method: count-factor messages, passed to
        :func:`~theorylab.llp.messages.count_messages`: ``"exact"`` (DP), ``"prefix"``,
        ``"gaussian"`` (CLT, O(K)), ``"tilted"`` (CLT after exponential tilting, O(K)) or
        ``"auto"`` (exact for bags under 32 members or lam_b = inf, else tilted).
      damping: ``d ∈ [0, 1)``, ``new = d·old + (1−d)·candidate``; default 0.9 (count; 0.5
        diverges for K ≥ 32, spec §1.4) or 0.5 (clique, the paper's setting).
      max_iters: at most this many flooding iterations (``≥ 1``).
      tol: stop once ``max |Δ message| < tol`` (``> 0``).
      unary: optional ``(n,)`` finite extra log-odds field (added to the log-density as
        ``Σ unary_i y_i``).

    Returns:
      :class:`BPResult`. Non-convergence (including NaN) is reported in ``converged``.

    Raises:
      ValueError / TypeError: for invalid arguments, before anything is traced.

    Complexity: per iteration O(E) plus O(n) (count, Gaussian), O(nK) (count, exact) or
    O(nK) time and memory (clique). One compilation per (shapes, mode, count_method).
    """
    mode = check_choice(mode, "mode", MODES)
    count_method = check_choice(count_method, "count_method", COUNT_METHODS)
    lam_s = check_float(lam_s, "lam_s", min_value=0.0)
    lam_b = check_float(lam_b, "lam_b", min_value=0.0, allow_inf=(mode == "count"))
    if damping is None:
        damping = DEFAULT_DAMPING[mode]
    damping = check_float(damping, "damping", min_value=0.0, max_value=1.0, max_inclusive=False)
    max_iters = check_int(max_iters, "max_iters", min_value=1)
    tol = check_float(tol, "tol", min_value=0.0, min_inclusive=False)
    n, _, _ = _check_layout_arrays(layout)
    edges = _check_graph(graph, n)
    dtype = jnp.result_type(float)
    if unary is None:
        unary = jnp.zeros(n, dtype)
    else:
        unary = check_array(unary, "unary", shape=(n,), kind="real", finite=True).astype(dtype)
    if mode == "count":
        count_method = _resolve_count_method(count_method, lam_b, layout)
    if math.isinf(lam_b) and is_concrete(layout.counts):
        counts = np.asarray(layout.counts, dtype=np.float64)
        if np.any(np.abs(counts - np.round(counts)) > 1e-3):
            raise ValueError("layout.counts must be integers when lam_b is inf (hard constraint)")
    if edges is None:
        src = dst = rev = jnp.zeros(0, jnp.int32)
        weight = jnp.zeros(0, dtype)
    else:
        src, dst, rev = (jnp.asarray(a, jnp.int32) for a in edges[:3])
        weight = jnp.asarray(edges[3], dtype)
    mesh, axis_name = _bag_mesh(layout)
    return _loopy_bp_core(
        layout.index,
        layout.mask,
        layout.counts,
        src,
        dst,
        rev,
        weight,
        unary,
        lam_s,
        lam_b,
        damping,
        tol,
        max_iters,
        num_instances=n,
        mode=mode,
        count_method=count_method,
        mesh=mesh,
        axis_name=axis_name,
    )


def ising_parameters(layout: BagLayout, graph: KnnGraph | None, lam_s: float, lam_b: float):
    """The paper's Ising expansion (spec §1.1) of the LLP energy, with merged pairs.

    ``log p(y) = Σ_i h_i y_i + Σ_p J_p y_{i_p} y_{j_p} + const`` with
    ``h_i = −λ_b (1 − 2 c_{B(i)}) − λ_s Σ_j s_ij`` (bag term only for instances in a bag),
    ``J = +2 λ_s s_ij`` per kNN edge and ``−2 λ_b`` per unordered pair inside a bag; a pair that
    is both gets the sum (one entry). The constant is ``−λ_b Σ_B c_B²``.

    Args:
      layout, graph: as in :func:`loopy_bp`; ``lam_s, lam_b``: finite, ``≥ 0``.

    Returns:
      ``(h, pairs, J)``: ``(n,)`` float, ``(P, 2)`` int32 with ``i < j`` (sorted, unique),
      ``(P,)`` float (default float dtype). Host-side NumPy construction, ``O(Σ_B K_B² + E)``.
    """
    lam_s = check_float(lam_s, "lam_s", min_value=0.0)
    lam_b = check_float(lam_b, "lam_b", min_value=0.0)
    n, _, K = _check_layout_arrays(layout)
    edges = _check_graph(graph, n)
    index = np.asarray(layout.index, np.int64)
    mask = np.asarray(layout.mask)
    counts = np.asarray(layout.counts, np.float64)
    h = np.zeros(n)
    h[index[mask]] = -lam_b * (1.0 - 2.0 * np.broadcast_to(counts[:, None], mask.shape)[mask])
    rows, cols = np.triu_indices(K, 1)
    valid = mask[:, rows] & mask[:, cols]
    a, b = index[:, rows][valid], index[:, cols][valid]
    keys = [np.minimum(a, b) * n + np.maximum(a, b)]
    values = [np.full(a.shape, -2.0 * lam_b)]
    if edges is not None:
        src, dst, _, weight = (np.asarray(e) for e in edges)
        weight = weight.astype(np.float64)
        np.add.at(h, src, -lam_s * weight)
        one = src < dst
        keys.append(src[one].astype(np.int64) * n + dst[one])
        values.append(2.0 * lam_s * weight[one])
    keys = np.concatenate(keys)
    values = np.concatenate(values)
    unique, inverse = np.unique(keys, return_inverse=True)
    J = np.bincount(inverse.reshape(-1), weights=values, minlength=unique.size)
    pairs = np.stack([unique // n, unique % n], axis=1)
    dtype = jnp.result_type(float)
    return jnp.asarray(h, dtype), jnp.asarray(pairs, jnp.int32), jnp.asarray(J, dtype)


def energy_count(y, layout: BagLayout, graph: KnnGraph | None, lam_s, lam_b):
    """Count-form log-density ``−λ_s Σ_E s_ij (y_i − y_j)² − λ_b Σ_B (Σ_B y − c_B)²``.

    Each undirected edge counted once (``graph`` stores both directions). ``lam_b = inf`` gives
    0 on feasible ``y`` and ``−inf`` otherwise. Jittable (``vmap`` over ``y`` for batches).

    Args:
      y: ``(n,)`` labels in ``{0,1}`` (any real values are accepted).
      layout, graph, lam_s, lam_b: as in :func:`loopy_bp`.

    Returns:
      scalar log-density (up to the normalising constant).
    """
    y = jnp.asarray(y)
    dtype = jnp.result_type(y.dtype, float)
    y = y.astype(dtype)
    total = jnp.zeros((), dtype)
    if graph is not None:
        diff = y[graph.src] - y[graph.dst]
        total = total - 0.5 * lam_s * jnp.sum(jnp.asarray(graph.weight, dtype) * diff**2)
    sums = jnp.sum(jnp.where(layout.mask, y[layout.index], 0.0), axis=1)
    gap = sums - jnp.asarray(layout.counts, dtype)
    lam_b = jnp.asarray(lam_b, dtype)
    bag_term = jnp.where(
        jnp.isinf(lam_b),
        jnp.where(jnp.abs(gap) < 0.5, 0.0, -jnp.inf),
        -jnp.where(jnp.isinf(lam_b), 0.0, lam_b) * gap**2,
    )
    return total + jnp.sum(bag_term)


def energy_clique(y, h, pairs, J):
    """Ising-form log-density ``Σ_i h_i y_i + Σ_p J_p y_{i_p} y_{j_p}``.

    ``(h, pairs, J)`` as returned by :func:`ising_parameters`. Jittable; ``y`` of shape ``(n,)``.
    """
    y = jnp.asarray(y)
    dtype = jnp.result_type(y.dtype, jnp.asarray(h).dtype, float)
    y = y.astype(dtype)
    pairs = jnp.asarray(pairs)
    return jnp.dot(jnp.asarray(h, dtype), y) + jnp.sum(
        jnp.asarray(J, dtype) * y[pairs[:, 0]] * y[pairs[:, 1]]
    )
