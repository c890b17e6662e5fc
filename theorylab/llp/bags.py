"""Bags for learning from label proportions: padded layouts, random and feature bags.

A *bag* is a set of training instances whose labels are hidden; only the bag's positive
**count** c_B = Σ_{i∈B} y_i (or its proportion c_B / |B|) is known. Labels are y ∈ {0, 1}.
(LLP-BP: Havaldar et al., ICLR 2024, arXiv 2310.08056; spec ``llp_bp.md`` sections 1.3, 1.5
and 3.)

The JAX-side representation is :class:`BagLayout`, a NamedTuple of static-shape arrays:

- ``index (num_bags, K_max)`` int32: the instance indices of each bag, padded slots hold 0,
- ``mask (num_bags, K_max)`` bool: True for real members,
- ``counts (num_bags,)`` float: c_B (float allowed, e.g. proportions × size),
- ``sizes (num_bags,)`` int32: |B|,
- ``bag_of (n,)`` int32: the bag of each instance, -1 for instances in no bag.

Bags are ordered by their id, and the members of a bag by increasing instance index. A layout
may carry *padded bags* (size 0, count 0, all slots masked), e.g. so that the number of bags
divides the device count for sharding. Padded slots are meant to contribute nothing: gathered
values are masked (:func:`gather_bags`), and :func:`bag_mean` / :func:`bag_counts` ignore them.

Host-side constructors (:func:`make_layout`, :func:`random_bags`, :func:`feature_bags`) validate
their arguments and raise ``ValueError`` / ``TypeError`` naming the argument. The array helpers
(:func:`bag_counts` on a layout, :func:`bag_mean`, :func:`bag_proportions`, :func:`gather_bags`,
:func:`scatter_bags`) are jit/vmap friendly; their value checks are skipped for tracers.

Precision: counts use JAX's default float dtype (float32 unless x64 is enabled); indices are
int32.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import (
    check_array,
    check_choice,
    check_int,
    check_key,
    check_type,
    describe,
    is_concrete,
)

__all__ = [
    "BagLayout",
    "bag_counts",
    "bag_mean",
    "bag_proportions",
    "feature_bags",
    "gather_bags",
    "make_layout",
    "num_instances",
    "numpy_rng",
    "random_bags",
    "scatter_bags",
]


class BagLayout(NamedTuple):
    """Padded, static-shape description of a set of bags (a JAX pytree).

    Attributes:
      index: ``(num_bags, K_max)`` int32 instance indices; padded slots hold 0.
      mask: ``(num_bags, K_max)`` bool, True for real members.
      counts: ``(num_bags,)`` float bag counts c_B (positives per bag; 0 for padded bags).
      sizes: ``(num_bags,)`` int32 bag sizes |B| (0 for padded bags).
      bag_of: ``(n,)`` int32 bag id of each instance, -1 if the instance is in no bag.
    """

    index: jax.Array
    mask: jax.Array
    counts: jax.Array
    sizes: jax.Array
    bag_of: jax.Array


def _float():
    return jnp.result_type(float)


def num_instances(layout: BagLayout) -> int:
    """Number of instances n the layout refers to (``layout.bag_of.shape[0]``)."""
    return int(layout.bag_of.shape[0])


def _check_layout(layout, name="layout") -> BagLayout:
    return check_type(layout, name, BagLayout, "a BagLayout (see make_layout)")


# --------------------------------------------------------------------------- constructors


def numpy_rng(key) -> np.random.Generator:
    """A numpy Generator seeded from 128 random bits of a JAX key (reproducible from it).

    Host-side samplers (random bags, data generators, splits) draw from it: one tiny compiled
    program per process instead of one per array shape, and identical draws with or without
    x64.
    """
    key = check_key(key)
    bits = np.asarray(jax.random.bits(key, (4,), dtype=jnp.uint32), dtype=np.uint64)
    return np.random.default_rng(np.random.SeedSequence([int(b) for b in bits]))


def _is_scalar_int(v) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, numbers.Integral):
        return True
    return isinstance(v, (np.ndarray, jax.Array)) and v.ndim == 0 and v.dtype.kind in "iu"


def _ids_from_sequence(bags, n_given):
    """Convert a sequence of index arrays into a bag-id vector (host side)."""
    members = []
    for b, item in enumerate(bags):
        if not isinstance(item, (str, bytes)) and np.size(item) == 0:
            raise ValueError(f"bags[{b}] is empty; every bag must have at least one member")
        arr = check_array(item, f"bags[{b}]", ndim=1, kind="int", to_jax=False)
        arr = np.asarray(arr, dtype=np.int64)
        members.append(arr)
    if not members:
        raise ValueError("bags must contain at least one bag; got an empty sequence")
    flat = np.concatenate(members)
    owner = np.concatenate([np.full(m.size, b, dtype=np.int64) for b, m in enumerate(members)])
    lo, hi = int(flat.min()), int(flat.max())
    if lo < 0:
        raise ValueError(f"bags must contain instance indices >= 0; got {lo}")
    n = hi + 1 if n_given is None else n_given
    if hi >= n:
        raise ValueError(f"bags contains instance index {hi}, out of range for num_instances={n}")
    seen = np.bincount(flat, minlength=n)
    if np.any(seen > 1):
        dup = int(np.flatnonzero(seen > 1)[0])
        where = sorted({int(b) for b in owner[flat == dup]})
        if len(where) == 1:
            raise ValueError(f"bags[{where[0]}] lists instance {dup} more than once")
        raise ValueError(
            f"bags must be disjoint; instance {dup} is in bags {where[0]} and {where[1]}"
        )
    ids = np.full(n, -1, dtype=np.int64)
    ids[flat] = owner
    return ids, len(members)


def _bag_ids(bags, n_given):
    """Return (ids (n,), num_bags_from_sequence or None)."""
    if isinstance(bags, BagLayout):
        raise TypeError("bags must be bag ids or a sequence of index arrays; got a BagLayout")
    if isinstance(bags, (np.ndarray, jax.Array)):
        arr = check_array(bags, "bags", ndim=(1, 2), kind="int", to_jax=False)
        if arr.ndim == 2:  # rows are bags of equal size
            return _ids_from_sequence(list(np.asarray(arr)), n_given)
        return np.asarray(arr, dtype=np.int64), None
    if isinstance(bags, Sequence) and not isinstance(bags, (str, bytes)):
        if len(bags) > 0 and all(_is_scalar_int(v) for v in bags):
            arr = check_array(bags, "bags", ndim=1, kind="int", to_jax=False)
            return np.asarray(arr, dtype=np.int64), None
        return _ids_from_sequence(bags, n_given)
    raise TypeError(
        f"bags must be an (n,) array of bag ids or a sequence of index arrays; got {describe(bags)}"
    )


def make_layout(
    bags,
    bag_labels,
    *,
    num_instances: int | None = None,
    label_type: str = "counts",
    pad_to: int | None = None,
    pad_bags_to_multiple: int = 1,
) -> BagLayout:
    """Build a padded :class:`BagLayout` from bag memberships and bag labels (host side).

    Args:
      bags: either an ``(n,)`` integer array of bag ids (``-1`` = the instance is in no bag;
        ids must be ``0 .. num_bags - 1`` with every id used, where ``num_bags =
        len(bag_labels)``), or a sequence of 1-D integer index arrays, one per bag (bag id =
        position in the sequence; a 2-D integer array is read as one bag per row).
      bag_labels: ``(num_bags,)`` real bag labels: counts c_B in ``[0, |B|]`` or proportions in
        ``[0, 1]`` (see ``label_type``). Non-integer counts are allowed.
      num_instances: n. Defaults to ``len(bags)`` for bag ids and to ``max index + 1`` for index
        arrays; must equal ``len(bags)`` for bag ids.
      label_type: ``"counts"`` or ``"proportions"`` (converted to counts = proportion × |B|).
      pad_to: K_max, the padded bag width (>= the largest bag; e.g. the next power of two for
        the tree DP of the count factor). Defaults to the largest bag size.
      pad_bags_to_multiple: append all-masked bags (size 0, count 0) until the number of bags
        is a multiple of this (e.g. the device count, for sharding over bags).

    Returns:
      :class:`BagLayout` with bags sorted by id and members by increasing instance index.

    Raises:
      ValueError: empty bags, an instance in two bags, indices or ids out of range, counts
        outside ``[0, |B|]``, proportions outside ``[0, 1]``, NaN/inf labels, wrong lengths,
        ``pad_to`` smaller than the largest bag.
      TypeError: non-integer bag ids / indices, non-real labels, a bad option type.

    Complexity: O(n + num_bags × K_max) on the host.
    """
    check_choice(label_type, "label_type", ("counts", "proportions"))
    if num_instances is not None:
        num_instances = check_int(num_instances, "num_instances", min_value=1)
    pad_bags_to_multiple = check_int(pad_bags_to_multiple, "pad_bags_to_multiple", min_value=1)
    if pad_to is not None:
        pad_to = check_int(pad_to, "pad_to", min_value=1)
    labels = check_array(bag_labels, "bag_labels", ndim=1, kind="real", to_jax=False)
    labels = np.asarray(labels, dtype=np.float64)
    if not np.all(np.isfinite(labels)):
        bad = int(np.sum(~np.isfinite(labels)))
        raise ValueError(f"bag_labels must be finite; got {bad} NaN/inf entries")

    ids, num_from_seq = _bag_ids(bags, num_instances)
    if num_from_seq is None:  # bag-id form
        if num_instances is not None and num_instances != ids.shape[0]:
            raise ValueError(
                f"num_instances must equal len(bags)={ids.shape[0]} when bags are bag ids; "
                f"got {num_instances}"
            )
        if ids.shape[0] == 0:
            raise ValueError("bags must have at least one instance; got an empty array")
        num_bags = labels.shape[0]
        lo, hi = int(ids.min()), int(ids.max())
        if lo < -1:
            raise ValueError(f"bags must contain bag ids >= 0 (or -1 for no bag); got {lo}")
        if hi >= num_bags:
            raise ValueError(
                f"bags contains bag id {hi} but bag_labels has {num_bags} entries "
                "(bag ids must be 0 .. len(bag_labels) - 1)"
            )
        if hi < 0:
            raise ValueError("bags must assign at least one instance to a bag; all ids are -1")
    else:
        num_bags = num_from_seq
        if labels.shape[0] != num_bags:
            raise ValueError(
                f"bag_labels must have one entry per bag ({num_bags}); got {labels.shape[0]}"
            )
    inside = ids >= 0
    sizes = np.bincount(ids[inside], minlength=num_bags)
    if np.any(sizes == 0):
        empty = int(np.flatnonzero(sizes == 0)[0])
        raise ValueError(
            f"bags must not contain empty bags; bag {empty} has no members "
            f"(bag ids must be 0 .. {num_bags - 1}, each used at least once)"
        )

    if label_type == "proportions":
        if np.any(labels < 0) or np.any(labels > 1):
            b = int(np.flatnonzero((labels < 0) | (labels > 1))[0])
            raise ValueError(
                f"bag_labels (proportions) must be in [0, 1]; got {labels[b]} for bag {b}"
            )
        counts = labels * sizes
    else:
        counts = labels
        bad = (counts < 0) | (counts > sizes)
        if np.any(bad):
            b = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"bag_labels (counts) must be in [0, bag size]; got {counts[b]} for bag {b} "
                f"of size {sizes[b]}"
            )

    k_max = int(sizes.max())
    if pad_to is not None:
        if pad_to < k_max:
            raise ValueError(f"pad_to must be >= the largest bag size {k_max}; got {pad_to}")
        k_max = pad_to
    total_bags = -(-num_bags // pad_bags_to_multiple) * pad_bags_to_multiple

    members = np.flatnonzero(inside)
    order = members[np.argsort(ids[members], kind="stable")]  # by bag, then instance index
    bag_sorted = ids[order]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    slot = np.arange(order.size) - starts[bag_sorted]
    index = np.zeros((total_bags, k_max), dtype=np.int32)
    mask = np.zeros((total_bags, k_max), dtype=bool)
    index[bag_sorted, slot] = order
    mask[bag_sorted, slot] = True
    all_counts = np.zeros(total_bags, dtype=np.float64)
    all_counts[:num_bags] = counts
    all_sizes = np.zeros(total_bags, dtype=np.int32)
    all_sizes[:num_bags] = sizes
    return BagLayout(
        index=jnp.asarray(index),
        mask=jnp.asarray(mask),
        counts=jnp.asarray(all_counts, dtype=_float()),
        sizes=jnp.asarray(all_sizes),
        bag_of=jnp.asarray(ids.astype(np.int32)),
    )


def random_bags(key, num_instances: int, bag_size: int, *, drop_remainder: bool = True):
    """Random bags of equal size: shuffle the instances and cut consecutive blocks.

    This is the paper's protocol (spec section 1.3 / 5.2): bags are consecutive blocks of a
    shuffled training set; trailing instances that do not fill a bag are dropped (bag id -1)
    unless ``drop_remainder=False``, in which case they form one smaller last bag.

    Args:
      key: JAX PRNG key.
      num_instances: n >= 1.
      bag_size: K >= 1 (<= n when ``drop_remainder``).
      drop_remainder: drop the ``n mod K`` leftover instances (default) or keep them as a bag.

    Returns:
      ``(n,)`` int32 JAX array of bag ids in ``0 .. num_bags - 1`` (``-1`` = dropped).

    Randomness: a numpy Generator seeded from ``key`` (:func:`numpy_rng`).

    Complexity: O(n) (one random permutation).
    """
    key = check_key(key)
    n = check_int(num_instances, "num_instances", min_value=1)
    k = check_int(bag_size, "bag_size", min_value=1)
    if not isinstance(drop_remainder, (bool, np.bool_)):
        raise TypeError(f"drop_remainder must be a bool; got {describe(drop_remainder)}")
    if drop_remainder and k > n:
        raise ValueError(
            f"bag_size must be <= num_instances ({n}) when drop_remainder=True; got {k}"
        )
    position = numpy_rng(key).permutation(n)  # position of each instance in the shuffle
    ids = position // k
    if drop_remainder:
        ids[position >= (n // k) * k] = -1
    return jnp.asarray(ids.astype(np.int32))


def feature_bags(X_columns):
    """Feature bags: group instances with equal values in the given columns (host side).

    Used for the "feature bags" setting of the LLP literature (e.g. bags keyed by the values of
    two categorical columns, spec section 3). Bag ids follow the lexicographic order of the
    distinct value tuples.

    Args:
      X_columns: ``(n,)`` or ``(n, c)`` numeric array holding the grouping columns.

    Returns:
      ``(n,)`` int32 JAX array of bag ids ``0 .. num_bags - 1`` (every instance is in a bag).

    Complexity: O(n c log n).
    """
    cols = check_array(
        X_columns, "X_columns", ndim=(1, 2), kind="numeric", to_jax=False, min_size=1
    )
    cols = np.asarray(cols)
    if cols.dtype.kind == "f" and not np.all(np.isfinite(cols)):
        raise ValueError("X_columns must be finite (NaN cannot define a bag)")
    if cols.ndim == 1:
        cols = cols[:, None]
    _, inverse = np.unique(cols, axis=0, return_inverse=True)
    return jnp.asarray(np.ravel(inverse).astype(np.int32))


# --------------------------------------------------------------------------- array helpers


def _check_instance_values(values, name, n):
    arr = check_array(values, name, kind="numeric")
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(f"{name} must have leading dimension n={n}; got {describe(arr)}")
    return arr


def gather_bags(values, layout: BagLayout, fill=0.0):
    """Per-instance values laid out by bag: ``(n, ...)`` -> ``(num_bags, K_max, ...)``.

    Padded slots hold ``fill``. jit/vmap friendly. O(num_bags × K_max) memory.
    """
    layout = _check_layout(layout)
    vals = _check_instance_values(values, "values", num_instances(layout))
    taken = vals[layout.index]
    mask = layout.mask.reshape(layout.mask.shape + (1,) * (vals.ndim - 1))
    return jnp.where(mask, taken, jnp.asarray(fill, dtype=taken.dtype))


def scatter_bags(bag_values, layout: BagLayout, fill=0.0):
    """Inverse of :func:`gather_bags`: ``(num_bags, K_max, ...)`` -> ``(n, ...)``.

    Instance i receives ``bag_values[bag_of[i], slot of i]``; instances in no bag get ``fill``.
    Padded slots are ignored. jit/vmap friendly. O(num_bags × K_max).
    """
    layout = _check_layout(layout)
    vals = check_array(bag_values, "bag_values", kind="numeric")
    if vals.shape[:2] != layout.index.shape:
        raise ValueError(
            f"bag_values must have leading shape {tuple(layout.index.shape)}; got {describe(vals)}"
        )
    n = num_instances(layout)
    target = jnp.where(layout.mask, layout.index, n)  # padded slots -> out of range, dropped
    out = jnp.full((n, *vals.shape[2:]), fill, dtype=vals.dtype)
    return out.at[target].set(vals, mode="drop")


def bag_counts(y, bags, *, num_bags: int | None = None):
    """Bag counts Σ_{i∈B} y_i from instance labels (for experiments and tests).

    Args:
      y: ``(n,)`` labels in {0, 1} (soft labels in [0, 1] give expected counts).
      bags: a :class:`BagLayout` (jit friendly) or an ``(n,)`` integer array of bag ids with
        ``-1`` for instances in no bag.
      num_bags: number of bags for the bag-id form (default ``max id + 1``; must be given when
        ``bags`` is traced).

    Returns:
      ``(num_bags,)`` float counts (JAX default float dtype).
    """
    yv = check_array(y, "y", ndim=1, kind="numeric")
    if is_concrete(yv) and yv.size:
        host = np.asarray(yv, dtype=np.float64)
        if not np.all(np.isfinite(host)) or host.min() < 0 or host.max() > 1:
            raise ValueError("y must contain labels in [0, 1] (y ∈ {0, 1}); got values outside")
    yv = yv.astype(_float())
    if isinstance(bags, BagLayout):
        if yv.shape[0] != num_instances(bags):
            raise ValueError(
                f"y must have length n={num_instances(bags)} (layout.bag_of); got {yv.shape[0]}"
            )
        return jnp.sum(jnp.where(bags.mask, yv[bags.index], 0.0), axis=1)
    ids = check_array(bags, "bags", ndim=1, kind="int")
    if ids.shape[0] != yv.shape[0]:
        raise ValueError(f"bags must have the same length as y ({yv.shape[0]}); got {ids.shape[0]}")
    if num_bags is None:
        if not is_concrete(ids):
            raise ValueError("num_bags must be given when bags is traced")
        num_bags = int(np.asarray(ids).max()) + 1 if ids.size else 0
    num_bags = check_int(num_bags, "num_bags", min_value=0)
    if is_concrete(ids) and ids.size:
        host = np.asarray(ids)
        if host.min() < -1 or host.max() >= num_bags:
            raise ValueError(
                f"bags must hold ids in [-1, {num_bags}); got [{host.min()}, {host.max()}]"
            )
    seg = jnp.where(ids >= 0, ids, num_bags)
    return jax.ops.segment_sum(yv, seg, num_segments=num_bags + 1)[:num_bags]


def bag_proportions(layout: BagLayout):
    """Bag proportions c_B / |B| (0 for padded bags). jit friendly."""
    layout = _check_layout(layout)
    return layout.counts / jnp.maximum(layout.sizes, 1).astype(layout.counts.dtype)


def bag_mean(values, layout: BagLayout):
    """Masked mean of per-instance values over each bag (DLLP's bag prediction).

    Args:
      values: ``(n, ...)`` per-instance values (e.g. predicted probabilities ``(n,)`` or
        embeddings ``(n, d)``).
      layout: the bags.

    Returns:
      ``(num_bags, ...)`` means over the real members (0 for padded bags). jit/vmap friendly;
      O(num_bags × K_max × prod(trailing dims)).
    """
    layout = _check_layout(layout)
    vals = _check_instance_values(values, "values", num_instances(layout))
    if vals.dtype.kind != "f":
        vals = vals.astype(_float())
    gathered = gather_bags(vals, layout, 0.0)
    size = jnp.maximum(jnp.sum(layout.mask, axis=1), 1).astype(vals.dtype)
    size = size.reshape(size.shape + (1,) * (vals.ndim - 1))
    return jnp.sum(gathered, axis=1) / size
