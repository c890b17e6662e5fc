"""Argument validation at the public API boundary.

Every public theorylab function validates its inputs *before* tracing, so that a user sees
a ``ValueError``/``TypeError`` that names the argument, says what was expected and shows what
was received, instead of an XLA shape error from deep inside a ``jit``.

All helpers accept values that are already JAX tracers (a user may call a theorylab function
inside their own ``jit``): shape and dtype checks still run (they are static), value checks
(finiteness, ranges) are skipped because the values are unknown at trace time.

Message format: ``"<name> must be <expected>; got <received>"``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_array",
    "check_bool",
    "check_choice",
    "check_finite",
    "check_float",
    "check_int",
    "check_key",
    "check_labels",
    "check_probability_vector",
    "check_same_leading_dim",
    "check_square_matrix",
    "check_symmetric",
    "check_type",
    "describe",
    "is_concrete",
    "require_x64",
    "x64_enabled",
]

_KINDS = {
    "float": ("f",),
    "int": ("i", "u"),
    "bool": ("b",),
    "numeric": ("f", "i", "u", "b"),
    "real": ("f", "i", "u"),
    "complex": ("c",),
}


def describe(value: Any) -> str:
    """Short human-readable description of a received value for error messages."""
    if isinstance(value, (np.ndarray, jax.Array)) or hasattr(value, "shape"):
        shape = tuple(getattr(value, "shape", ()))
        dtype = getattr(value, "dtype", None)
        return f"array of shape {shape} and dtype {dtype}"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def is_concrete(x: Any) -> bool:
    """True when ``x`` has known values (not an abstract tracer inside ``jit``/``vmap``)."""
    if isinstance(x, (np.ndarray, numbers.Number, np.generic)):
        return True
    try:
        np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False
    return True


def check_type(value: Any, name: str, types: type | tuple[type, ...], expected: str | None = None):
    """Raise ``TypeError`` unless ``isinstance(value, types)``; return ``value``."""
    if not isinstance(value, types):
        if expected is None:
            tnames = types if isinstance(types, tuple) else (types,)
            expected = "an instance of " + " or ".join(t.__name__ for t in tnames)
        raise TypeError(f"{name} must be {expected}; got {describe(value)}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as a Python bool; ``TypeError`` for anything but bool / numpy bool."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool; got {describe(value)}")


def check_int(
    value: Any,
    name: str,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
) -> int:
    """Return ``value`` as a Python int within ``[min_value, max_value]``.

    Booleans and floats are rejected with ``TypeError`` (``2.0`` is not a count); numpy integer
    scalars and 0-d integer arrays are accepted.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer; got {describe(value)}")
    if isinstance(value, (np.ndarray, jax.Array)) and value.ndim == 0 and value.dtype.kind in "iu":
        if not is_concrete(value):
            raise TypeError(f"{name} must be a concrete (static) integer; got a traced value")
        value = int(value)
    if not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {describe(value)}")
    value = int(value)
    _check_range(value, name, min_value, max_value, True, True)
    return value


def check_float(
    value: Any,
    name: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a finite Python float inside the given interval.

    Ints are accepted (``1`` is a valid probability); bools, strings and arrays of size > 1 are
    not. NaN is always rejected; infinities only with ``allow_inf=True``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number; got {describe(value)}")
    if isinstance(value, (np.ndarray, jax.Array)):
        if value.ndim != 0 or value.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a real scalar; got {describe(value)}")
        if not is_concrete(value):
            raise TypeError(f"{name} must be a concrete (static) number; got a traced value")
        value = float(value)
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {describe(value)}")
    value = float(value)
    if np.isnan(value):
        raise ValueError(f"{name} must not be NaN; got nan")
    if np.isinf(value) and not allow_inf:
        raise ValueError(f"{name} must be finite; got {value}")
    _check_range(value, name, min_value, max_value, min_inclusive, max_inclusive)
    return value


def _check_range(value, name, lo, hi, lo_inc, hi_inc) -> None:
    bad_lo = lo is not None and (value < lo or (not lo_inc and value == lo))
    bad_hi = hi is not None and (value > hi or (not hi_inc and value == hi))
    if bad_lo or bad_hi:
        left = "(-inf" if lo is None else ("[" if lo_inc else "(") + f"{lo}"
        right = "inf)" if hi is None else f"{hi}" + ("]" if hi_inc else ")")
        raise ValueError(f"{name} must be in {left}, {right}; got {value}")


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``; return it."""
    choices = tuple(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    kind: str | None = None,
    finite: bool = False,
    min_size: int = 0,
    to_jax: bool = True,
):
    """Validate an array-like argument and return it as an array.

    Args:
      x: the value (numpy/JAX array, list, scalar, or a tracer).
      name: argument name used in messages.
      ndim: required number of dimensions (an int or a collection of allowed values).
      shape: required shape; ``None`` entries are wildcards (``(None, 3)``).
      kind: ``"float" | "int" | "bool" | "numeric" | "real"``; bools are not ``"int"``.
      finite: reject NaN/inf (skipped for tracers).
      min_size: minimal total number of elements.
      to_jax: return a ``jax.Array`` (default) or a ``numpy.ndarray``.

    Returns:
      the array (dtype preserved; Python lists become arrays with JAX's default dtypes).

    Raises:
      TypeError: for non-array input or the wrong dtype kind.
      ValueError: for the wrong number of dimensions, shape, size, or non-finite values.
    """
    if isinstance(x, (str, bytes, dict, set)) or x is None:
        raise TypeError(f"{name} must be an array; got {describe(x)}")
    concrete = is_concrete(x)
    if concrete and not isinstance(x, (np.ndarray, jax.Array)):
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be an array; got {describe(x)} ({err})") from None
        if arr.dtype == object:
            raise TypeError(f"{name} must be a numeric array; got {describe(x)}")
        # Follow JAX's default dtypes for Python lists (float32 unless x64 is on).
        if arr.dtype.kind == "f" and not x64_enabled():
            arr = arr.astype(np.float32)
        elif arr.dtype.kind == "i" and not x64_enabled():
            arr = arr.astype(np.int32)
        x = arr
    dtype = np.dtype(x.dtype)
    if kind is not None:
        allowed = _KINDS[kind]
        if dtype.kind not in allowed:
            raise TypeError(f"{name} must have a {kind} dtype; got {describe(x)}")
    if ndim is not None:
        allowed_ndim = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed_ndim:
            want = " or ".join(str(d) for d in allowed_ndim)
            raise ValueError(f"{name} must be {want}-dimensional; got {describe(x)}")
    if shape is not None:
        shape = tuple(shape)
        ok = len(shape) == x.ndim and all(s is None or s == t for s, t in zip(shape, x.shape))
        if not ok:
            parts = ["*" if s is None else str(s) for s in shape]
            want = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
            raise ValueError(f"{name} must have shape {want}; got {describe(x)}")
    if int(np.prod(x.shape)) < min_size:
        raise ValueError(f"{name} must have at least {min_size} elements; got {describe(x)}")
    if finite and concrete:
        check_finite(x, name)
    if to_jax:
        return jnp.asarray(x)
    return np.asarray(x) if concrete else x


def check_finite(x: Any, name: str):
    """Raise ``ValueError`` if a concrete array contains NaN or inf; return ``x``."""
    if not is_concrete(x):
        return x
    arr = np.asarray(x)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        n_nan = int(np.sum(np.isnan(arr)))
        n_inf = int(np.sum(np.isinf(arr)))
        raise ValueError(
            f"{name} must contain only finite values; got {n_nan} NaN and {n_inf} inf "
            f"entries in an array of shape {arr.shape}"
        )
    return x


def check_square_matrix(x: Any, name: str, *, batched: bool = False, **kwargs):
    """Validate a square matrix (or a batch ``(..., n, n)`` when ``batched``)."""
    arr = check_array(x, name, ndim=None if batched else 2, **kwargs)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (n, n); got {describe(arr)}")
    return arr


def check_symmetric(x: Any, name: str, *, rtol: float = 1e-5, atol: float = 1e-8):
    """Raise ``ValueError`` if a concrete matrix (or batch) is not symmetric within tolerance."""
    if not is_concrete(x):
        return x
    arr = np.asarray(x)
    swapped = np.swapaxes(arr, -1, -2)
    if not np.allclose(arr, swapped, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(arr - swapped)))
        raise ValueError(
            f"{name} must be symmetric; got max |A - A^T| = {worst:.3g} (rtol={rtol}, atol={atol})"
        )
    return x


def check_probability_vector(
    p: Any, name: str, *, axis: int = -1, atol: float = 1e-5, allow_zero: bool = True
):
    """Validate non-negative entries summing to one along ``axis``; return a float array."""
    arr = check_array(p, name, kind="real", finite=True, min_size=1)
    if is_concrete(arr):
        host = np.asarray(arr, dtype=np.float64)
        if np.any(host < 0) or (not allow_zero and np.any(host == 0)):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name} must have entries {bound}; got min {host.min():.3g}")
        sums = host.sum(axis=axis)
        if not np.allclose(sums, 1.0, atol=atol):
            worst = float(np.max(np.abs(sums - 1.0)))
            raise ValueError(
                f"{name} must sum to 1 along axis {axis}; got max |sum - 1| = {worst:.3g}"
            )
    if arr.dtype.kind != "f":
        arr = arr.astype(jnp.result_type(float))
    return arr


def check_same_leading_dim(**arrays: Any) -> int:
    """Raise ``ValueError`` unless all arrays share their first dimension; return it."""
    sizes = {name: int(np.shape(a)[0]) if np.ndim(a) else None for name, a in arrays.items()}
    if any(s is None for s in sizes.values()):
        bad = [n for n, s in sizes.items() if s is None]
        raise ValueError(f"{', '.join(bad)} must be at least 1-dimensional")
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{n} has {s}" for n, s in sizes.items())
        raise ValueError(f"arguments must have the same number of rows; got {listed}")
    return next(iter(sizes.values()))


def check_labels(labels: Any, name: str, *, num_classes: int | None = None):
    """Validate a 1-D array of class labels.

    With ``num_classes`` the labels must be integers in ``[0, num_classes)`` (checked when
    concrete). Without it any 1-D array of hashable values is allowed (host side only).
    """
    if num_classes is not None:
        arr = check_array(labels, name, ndim=1, kind="int")
        if is_concrete(arr) and arr.size:
            host = np.asarray(arr)  # np.min(jax_array) would dispatch to a traced .min()
            lo, hi = int(host.min()), int(host.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(
                    f"{name} must contain integers in [0, {num_classes}); "
                    f"got values in [{lo}, {hi}]"
                )
        return arr
    if not is_concrete(labels):
        raise ValueError(
            f"{name} is traced: pass num_classes=... so that the label range is static"
        )
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional; got {describe(arr)}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must not contain NaN or inf")
    return arr


def check_key(key: Any, name: str = "key"):
    """Validate a JAX PRNG key (typed ``jax.random.key`` or legacy ``uint32[2]``).

    Only a single key is accepted; use ``jax.random.split`` yourself for batches.
    """
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        raise TypeError(
            f"{name} must be a JAX PRNG key (e.g. jax.random.key({key})); got an int {key}"
        )
    if not hasattr(key, "dtype"):
        raise TypeError(f"{name} must be a JAX PRNG key; got {describe(key)}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{name} must be a single PRNG key (shape ()); got {describe(key)}")
        return key
    if key.dtype == jnp.uint32 and key.shape == (2,):
        return key
    raise TypeError(f"{name} must be a JAX PRNG key from jax.random.key(seed); got {describe(key)}")


def x64_enabled() -> bool:
    """Whether 64-bit floats are enabled (``jax_enable_x64`` or ``jax.enable_x64()``)."""
    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


def require_x64(what: str) -> None:
    """Raise ``ValueError`` explaining how to enable float64 when it is off.

    Used by functions whose maths needs float64 (log graph kernels, log-evidence sums).
    """
    if not x64_enabled():
        raise ValueError(
            f"{what} needs float64: enable it with jax.config.update('jax_enable_x64', True) "
            "at program start, or run the call inside `with jax.enable_x64(True):`"
        )
