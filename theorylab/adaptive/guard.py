"""The guarded holdout: a holdout set that answers queries only through a mechanism.

Functional core (jit-able, spec §4.1)::

    state = guard.init(key, holdout, mechanism=mechanisms.gaussian(0.01, max_queries=1000),
                       train=None)
    answers, certificates, state = guard.query(state, phi, params)   # or per-row values
    guard.ledger(state)        # queries answered, rho / epsilon / bits spent, budget left

and a small object layer, :class:`ReusableHoldout`, that owns the holdout and the state so
that neither the rows nor the PRNG key can leak or be reused through its API.

Trust model: a :class:`GuardState` is an ordinary pytree that contains the holdout and the
noise key, and re-using an *old* state re-uses its noise keys (query ``i`` always draws from
``fold_in(key, i)``), which lets differences of answers cancel the noise while each branch's
ledger counts only its own queries. The certificates therefore assume that the analyst never
reads the state and never branches it -- true when the code that holds the state is the
experiment harness and the analyst only sees answers. For an untrusted analyst hand out a
:class:`ReusableHoldout` (Python cannot make its private attribute truly unreachable, but no
public method exposes data or key, and it cannot be copied or pickled).

Queries:

- a JAX function ``phi(row) -> [0, 1]`` (one query) or ``phi(param, row)`` with a batch of
  parameters ``params`` (leading axis = queries), evaluated with ``vmap`` over the holdout's
  rows (the leading axis of every leaf of ``holdout``) and over ``params``;
- or precomputed per-row values ``[q, n]`` (bring-your-own model), with optional
  ``train_values`` ``[q, n_train]`` for mechanisms that answer from a training set.

Query values must lie in ``[0, 1]`` (a statistical query). Concrete arrays outside ``[0, 1]``
or with NaN raise ``ValueError`` (the caller computed them, so the error reveals nothing new).
Values produced by ``phi`` inside the guard are *sanitised* instead: clipped to ``[0, 1]``, NaN
counted as 0. The guard cannot refuse or flag such a query: whether some holdout row gives an
invalid value is itself information about the holdout, released without noise and without
charge (a refusal flag would be an exact membership test). So make ``phi`` map into [0, 1].

Within a batch the queries are non-adaptive, but the mechanisms process them in order with
``lax.scan``, so a batch gives bit-identically the answers of the same queries submitted one
by one (the noise of query ``i`` comes from ``fold_in(key, i)``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.adaptive import mechanisms as mech_lib
from theorylab.adaptive.mechanisms import Certificate, Ledger, Mechanism, MechState
from theorylab.core.checks import check_array, check_key, describe, require_x64

__all__ = ["GuardState", "ReusableHoldout", "init", "ledger", "query"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GuardState:
    """State of a guarded holdout (a pytree; the mechanism is static metadata).

    Attributes:
      holdout: pytree of arrays with a leading axis of ``n`` rows.
      train: pytree of training arrays (leading axis ``n_train``) or None.
      mech: the mechanism's :class:`~theorylab.adaptive.mechanisms.MechState`.
      mechanism: the mechanism (static).
      dtype: float dtype of query values and answers (static).
    """

    holdout: Any
    train: Any
    mech: MechState
    mechanism: Mechanism = dataclasses.field(metadata={"static": True})
    dtype: Any = dataclasses.field(default=np.dtype(np.float32), metadata={"static": True})

    def __repr__(self) -> str:  # never print the data
        return f"GuardState(mechanism={self.mechanism!r}, n={self.mech.n})"


def _num_rows(tree, name) -> int:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{name} must contain at least one array; got {describe(tree)}")
    sizes = set()
    for leaf in leaves:
        if not hasattr(leaf, "shape") or leaf.ndim < 1:
            raise ValueError(
                f"{name} must be an array (or a pytree of arrays) with a leading axis of rows; "
                f"got {describe(leaf)}"
            )
        sizes.add(int(leaf.shape[0]))
    if len(sizes) != 1:
        raise ValueError(f"every array in {name} must have the same number of rows; got {sizes}")
    n = sizes.pop()
    if n < 1:
        raise ValueError(f"{name} must have at least 1 row; got 0")
    return n


def _as_arrays(tree, name):
    def convert(leaf):
        arr = check_array(leaf, name, ndim=None)
        if arr.ndim == 0:
            raise ValueError(f"{name} must have a leading axis of rows; got a scalar")
        return arr

    return jax.tree_util.tree_map(convert, tree)


def init(key, holdout, *, mechanism: Mechanism, train=None, dtype=jnp.float32) -> GuardState:
    """Guard ``holdout`` behind ``mechanism``.

    Args:
      key: a JAX PRNG key; all noise is derived from it (split per query internally).
      holdout: array ``[n, ...]`` or pytree of such arrays (e.g. ``(X, y)``).
      mechanism: from :mod:`theorylab.adaptive.mechanisms`.
      train: optional training data (same structure, any number of rows); required by
        mechanisms that answer from a training set (Thresholdout, Guess-and-Check) when
        queries are functions.
      dtype: float dtype in which query values are averaged and answered (float32 default;
        float64 needs ``jax_enable_x64``).

    Returns:
      a :class:`GuardState`.
    """
    check_key(key)
    if not isinstance(mechanism, Mechanism):
        raise TypeError(
            f"mechanism must be a theorylab.adaptive mechanism; got {type(mechanism).__name__}"
        )
    holdout = _as_arrays(holdout, "holdout")
    n = _num_rows(holdout, "holdout")
    if train is not None:
        train = _as_arrays(train, "train")
        _num_rows(train, "train")
        if jax.tree_util.tree_structure(train) != jax.tree_util.tree_structure(holdout):
            raise ValueError("train must have the same pytree structure as holdout")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a float dtype; got {dtype}")
    if dtype == np.float64:
        require_x64("guard.init(dtype=float64)")
    mech = mech_lib.init_mechanism(mechanism, key, n, dtype)
    return GuardState(holdout=holdout, train=train, mech=mech, mechanism=mechanism, dtype=dtype)


def _values_of(phi, params, data):
    """Per-row values ``[q, rows]`` of ``phi`` (batched over ``params``) on ``data``."""
    if params is None:
        return jax.vmap(phi)(data)[None, :]
    return jax.vmap(lambda p: jax.vmap(lambda row: phi(p, row))(data))(params)


def _sanitize(values, dtype):
    """Per-row values clipped to [0, 1], NaN -> 0 (decided row by row, never per query: a
    per-query refusal would reveal, noise-free, whether some holdout row is invalid)."""
    values = values.astype(dtype)
    return jnp.clip(jnp.where(jnp.isnan(values), 0.0, values), 0.0, 1.0)


def _core(mechanism, dtype, mech_state, holdout_values, train_values):
    holdout_values = _sanitize(holdout_values, dtype)
    h = jnp.mean(holdout_values, axis=1)
    t = None if train_values is None else jnp.mean(_sanitize(train_values, dtype), axis=1)
    if t is None and mechanism.needs_train:
        t = jnp.full_like(h, jnp.nan)  # cannot answer: no training data
    if mechanism.needs_rows:
        return mech_lib._scan_queries(
            mechanism, mech_state.n, mech_state, h, jnp.zeros_like(h) if t is None else t,
            holdout_values,
        )
    return mech_lib._scan_queries(
        mechanism, mech_state.n, mech_state, h, jnp.zeros_like(h) if t is None else t, None
    )


_core_jit = jax.jit(_core, static_argnums=(0, 1))


def _fn_core(mechanism, dtype, phi, mech_state, holdout, train, params):
    hv = _values_of(phi, params, holdout)
    tv = None if train is None else _values_of(phi, params, train)
    return _core(mechanism, dtype, mech_state, hv, tv)


_fn_core_jit = jax.jit(_fn_core, static_argnums=(0, 1, 2))


def _check_values(values, name, n=None):
    if isinstance(values, jax.core.Tracer):
        return values
    arr = check_array(values, name, ndim=(1, 2), kind="real", to_jax=False)
    if arr.ndim == 1:
        arr = arr[None, :]
    if n is not None and arr.shape[1] != n:
        raise ValueError(
            f"{name} must have shape (q, {n}) (one value per holdout row); got {arr.shape}"
        )
    if np.any(~np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got NaN or inf")
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError(
            f"{name} must lie in [0, 1] (statistical queries); got values in "
            f"[{arr.min()}, {arr.max()}] -- rescale a query with range [a, b] by (v-a)/(b-a)"
        )
    return jnp.asarray(arr)


def query(state: GuardState, queries, params=None, *, train_values=None, jit: bool = True):
    """Answer a batch of statistical queries through the guard.

    Args:
      state: a :class:`GuardState`.
      queries: ``phi(row)`` / ``phi(param, row)`` returning a value in [0, 1] (use a
        module-level function, not a fresh lambda per call, or every call recompiles), or
        per-row holdout values ``[q, n]`` (``[n]`` for one query).
      params: batch of query parameters (pytree with a leading axis ``q``) for
        ``phi(param, row)``; None for ``phi(row)``.
      train_values: per-row training values ``[q, n_train]`` when ``queries`` are values.
      jit: run the compiled path (default) or trace-free Python (same results bit for bit).

    Returns:
      ``(answers [q], certificates, new_state)``: unanswered queries give NaN with
      ``certificates.answered == False`` (budget exhausted, or invalid values).
    """
    if not isinstance(state, GuardState):
        raise TypeError(f"state must be a GuardState from guard.init; got {describe(state)}")
    mechanism = state.mechanism
    if callable(queries):
        if params is not None:
            leaves = jax.tree_util.tree_leaves(params)
            if not leaves or any(getattr(x, "ndim", 0) < 1 for x in leaves):
                raise ValueError(
                    "params must be a pytree of arrays with a leading axis of queries; got "
                    f"{describe(params)}"
                )
        if mechanism.needs_train and state.train is None:
            raise ValueError(
                f"the {mechanism.name} mechanism answers from a training set: pass train= to "
                "guard.init"
            )
        fn = _fn_core_jit if jit else _fn_core
        answers, certs, mech = fn(
            mechanism, state.dtype, queries, state.mech, state.holdout, state.train, params
        )
    else:
        if params is not None:
            raise ValueError("params is only used with a query function; got values and params")
        hv = _check_values(queries, "queries", state.mech.n)
        tv = None
        if train_values is not None:
            tv = _check_values(train_values, "train_values")
            if tv.shape[0] != hv.shape[0]:
                raise ValueError(
                    f"train_values must have {hv.shape[0]} rows (one per query); got {tv.shape[0]}"
                )
        elif mechanism.needs_train:
            raise ValueError(
                f"train_values is required by the {mechanism.name} mechanism when queries are "
                "given as values"
            )
        fn = _core_jit if jit else _core
        answers, certs, mech = fn(mechanism, state.dtype, state.mech, hv, tv)
    return answers, certs, dataclasses.replace(state, mech=mech)


def ledger(state: GuardState) -> Ledger:
    """What the guard has spent so far (see :class:`~theorylab.adaptive.mechanisms.Ledger`)."""
    if not isinstance(state, GuardState):
        raise TypeError(f"state must be a GuardState from guard.init; got {describe(state)}")
    return mech_lib.ledger(state.mechanism, state.mech)


class ReusableHoldout:
    """Object wrapper that owns a guarded holdout.

    The holdout, the training data and the PRNG key live only inside the object; no method
    returns them and none accepts a key after construction, so noise keys cannot be reused
    through this API (each query draws from ``fold_in(key, query_index)`` with an index that
    only moves forward). Example::

        rh = ReusableHoldout(jax.random.key(0), (X_h, y_h), train=(X_t, y_t),
                             mechanism=mechanisms.thresholdout_science(len(y_h)))
        answers, certs = rh.query(accuracy, params=models)
        rh.ledger
    """

    __slots__ = ("__state",)

    def __init__(self, key, holdout, *, mechanism: Mechanism, train=None, dtype=jnp.float32):
        self.__state = init(key, holdout, mechanism=mechanism, train=train, dtype=dtype)

    def query(self, queries, params=None, *, train_values=None) -> tuple[Any, Certificate]:
        """Answer queries (see :func:`query`); returns ``(answers, certificates)``."""
        answers, certs, self.__state = query(
            self.__state, queries, params, train_values=train_values
        )
        return answers, certs

    @property
    def ledger(self) -> Ledger:
        return ledger(self.__state)

    @property
    def mechanism(self) -> Mechanism:
        return self.__state.mechanism

    @property
    def n(self) -> int:
        return self.__state.mech.n

    def __repr__(self) -> str:
        return f"ReusableHoldout(mechanism={self.mechanism!r}, n={self.n})"

    def __getstate__(self):
        raise TypeError("a ReusableHoldout cannot be pickled or copied (it owns the holdout)")

    def __copy__(self):
        raise TypeError("a ReusableHoldout cannot be copied (its noise key must not be reused)")

    def __deepcopy__(self, memo):
        raise TypeError("a ReusableHoldout cannot be copied (its noise key must not be reused)")
