"""Linear-algebra building blocks shared by the method families.

- **Symmetric matrix functions from one eigendecomposition.** For symmetric ``A = U Λ Uᵀ``,
  ``f(A) = U f(Λ) Uᵀ``. Graph kernels (Katz/Walk, communicability, heat, forest, ...) are all
  of this form, and a whole parameter grid ``{f_θ(A)}`` costs one ``eigh`` plus one GEMM per
  θ. :func:`spectral_decomposition` does the ``eigh``; :func:`matrix_function_grid` applies
  a grid of spectral functions in memory-bounded chunks (``lax.map(batch_size=...)``).
- **Simplex projection** (Euclidean, Held-Wolfe-Crowder / Duchi et al. 2008 sort algorithm via
  ``optax.projections.projection_simplex``), batched along any axis.
- **Stable log-space helpers**: normalise log-weights, log-mean-exp, masked log-sum-exp,
  ``log(1 - exp(x))``, log of a difference of exponentials.

Precision: everything runs in the input dtype; ``eigh`` of float32 matrices has a relative
eigenvalue error of ~1e-6·‖A‖, so functions that amplify small eigenvalues (inverses near
singularity, exponentials of large spectra) should be called with float64 inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import logsumexp

from theorylab.core.checks import (
    check_array,
    check_float,
    check_int,
    check_square_matrix,
    check_symmetric,
)

__all__ = [
    "SpectralDecomposition",
    "log1mexp",
    "log_mean_exp",
    "log_normalize",
    "log_sub_exp",
    "logsumexp",
    "masked_logsumexp",
    "matrix_function",
    "matrix_function_grid",
    "project_to_simplex",
    "reconstruct",
    "spectral_decomposition",
    "symmetric_reconstruct",
]


class SpectralDecomposition(NamedTuple):
    """``A = vectors @ diag(values) @ vectors.T``, ascending ``values`` (from ``eigh``)."""

    values: jax.Array
    vectors: jax.Array


def spectral_decomposition(matrix, *, check: bool = True) -> SpectralDecomposition:
    """Eigendecomposition of a real symmetric matrix (or a batch ``(..., n, n)``).

    Args:
      matrix: symmetric float array; symmetry is verified on host when ``check`` is true
        (relative tolerance 1e-5) because ``eigh`` silently uses only one triangle.
      check: validate shape, finiteness and symmetry (skip for pre-validated inputs).

    Returns:
      :class:`SpectralDecomposition` with ascending eigenvalues. Cost O(n³).
    """
    if check:
        matrix = check_square_matrix(matrix, "matrix", batched=True, kind="real", finite=True)
        check_symmetric(matrix, "matrix")
    matrix = jnp.asarray(matrix)
    if matrix.dtype.kind != "f":
        matrix = matrix.astype(jnp.result_type(float))
    values, vectors = jnp.linalg.eigh(matrix)
    return SpectralDecomposition(values, vectors)


def reconstruct(decomposition: SpectralDecomposition, spectrum) -> jax.Array:
    """``U diag(spectrum) Uᵀ`` for a spectrum of shape ``(..., n)`` (broadcast over batches).

    One GEMM: ``(U * spectrum) @ Uᵀ``. A leading batch axis on ``spectrum`` produces a batch
    of matrices sharing ``U``.
    """
    u = decomposition.vectors
    spectrum = jnp.asarray(spectrum, dtype=u.dtype)
    return jnp.einsum("...ik,...jk->...ij", u * spectrum[..., None, :], u)


def symmetric_reconstruct(
    vectors,
    spectrum,
    *,
    blocks: int | None = None,
    elementwise: Callable[[jax.Array], jax.Array] | None = None,
) -> jax.Array:
    """``U diag(s) Uᵀ`` computing only the lower block triangle, then mirroring.

    With ``X = U diag(sqrt|s|)`` the product is ``X diag(sign s) Xᵀ``, which is symmetric, so
    for ``b`` row blocks only ``b(b+1)/2`` of the ``b²`` block products are formed: about
    ``(b+1)/(2b)`` of the flops of :func:`reconstruct` (62% for b = 4). ``blocks=None`` picks
    ``b ≈ n/200`` (at most 8) on CPU, where GEMMs run near peak already at that block size,
    and ``b = 1`` (one GEMM) on accelerators. Unbatched ``(n, n)`` input.

    ``elementwise`` (e.g. ``log``) is applied to each computed block before mirroring, so an
    elementwise function of the product also costs only about half of its n² evaluations.
    """
    u = jnp.asarray(vectors)
    spectrum = jnp.asarray(spectrum, dtype=u.dtype)
    n = u.shape[-1]
    if blocks is None:
        blocks = 1 if jax.default_backend() != "cpu" else int(min(8, max(1, round(n / 200))))
    fn = elementwise if elementwise is not None else (lambda block: block)
    x = u * jnp.sqrt(jnp.abs(spectrum))[None, :]
    if blocks <= 1:
        return fn((x * jnp.sign(spectrum)[None, :]) @ x.T)
    xs = x * jnp.sign(spectrum)[None, :]
    bounds = [round(i * n / blocks) for i in range(blocks + 1)]
    parts = [(bounds[i], bounds[i + 1]) for i in range(blocks)]
    rows = [[None] * blocks for _ in range(blocks)]
    for i, (a0, a1) in enumerate(parts):
        for j in range(i, blocks):
            b0, b1 = parts[j]
            rows[i][j] = fn(xs[a0:a1] @ x[b0:b1].T)
    for i in range(blocks):
        for j in range(i):
            rows[i][j] = rows[j][i].T
    return jnp.block(rows)


def matrix_function(matrix_or_decomposition, fn: Callable[[jax.Array], jax.Array]):
    """``f(A) = U f(Λ) Uᵀ`` for symmetric ``A`` and an elementwise spectral function ``fn``.

    Args:
      matrix_or_decomposition: a symmetric matrix or a :class:`SpectralDecomposition`.
      fn: maps the eigenvalue vector (shape ``(n,)``) to ``f(λ)`` elementwise.

    Returns:
      the ``(n, n)`` matrix ``f(A)``.
    """
    dec = _as_decomposition(matrix_or_decomposition)
    return reconstruct(dec, fn(dec.values))


def matrix_function_grid(
    matrix_or_decomposition,
    fn: Callable[[jax.Array, jax.Array], jax.Array],
    params,
    *,
    chunk_size: int | None = None,
):
    """A grid ``[f_θ(A) for θ in params]`` from a single eigendecomposition.

    Args:
      matrix_or_decomposition: symmetric ``(n, n)`` matrix or its decomposition.
      fn: ``fn(eigenvalues, theta) -> f_theta(eigenvalues)``, elementwise in the eigenvalues;
        ``theta`` is one leaf-slice of ``params`` (a scalar or any pytree).
      params: array (or pytree of arrays) with a leading grid axis of length G.
      chunk_size: matrices built per step of ``lax.map``; bounds peak memory to
        ``chunk_size · n²`` extra floats. ``None`` builds the whole grid at once.

    Returns:
      ``(G, n, n)`` array. Cost: one ``eigh`` (O(n³), skipped if a decomposition is given) plus
      G GEMMs of O(n³) each.
    """
    dec = _as_decomposition(matrix_or_decomposition)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", min_value=1)

    def one(theta):
        return reconstruct(dec, fn(dec.values, theta))

    if chunk_size is None:
        return jax.vmap(one)(params)
    return jax.lax.map(one, params, batch_size=chunk_size)


def _as_decomposition(obj) -> SpectralDecomposition:
    if isinstance(obj, SpectralDecomposition):
        return obj
    return spectral_decomposition(obj)


# --------------------------------------------------------------------------- simplex


def project_to_simplex(v, *, radius: float = 1.0, axis: int = -1):
    """Euclidean projection onto ``{x : x >= 0, Σ x = radius}`` along ``axis``.

    ``argmin_x ‖x - v‖²`` on the scaled probability simplex; the solution is
    ``max(v - τ, 0)`` with the threshold τ found by sorting (Held, Wolfe & Crowder 1974;
    Duchi et al. 2008), O(d log d) per vector. Delegates the per-vector work to
    ``optax.projections.projection_simplex`` and vmaps over every other axis.
    """
    v = check_array(v, "v", kind="real", min_size=1)
    radius = check_float(radius, "radius", min_value=0.0, min_inclusive=False)
    if v.dtype.kind != "f":
        v = v.astype(jnp.result_type(float))
    if not -v.ndim <= axis < v.ndim:
        raise ValueError(f"axis must be in [{-v.ndim}, {v.ndim}); got {axis}")
    return _project_along(v, radius, axis)


@partial(jax.jit, static_argnums=(2,))
def _project_along(v, radius, axis: int):
    moved = jnp.moveaxis(v, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    proj = jax.vmap(lambda row: optax.projections.projection_simplex(row, scale=radius))(flat)
    return jnp.moveaxis(proj.reshape(moved.shape), -1, axis)


# --------------------------------------------------------------------------- log space


def log_normalize(log_weights, axis: int = -1):
    """``log w - logsumexp(log w)``: normalised log-weights (sum of ``exp`` equals 1).

    Entries of ``-inf`` stay ``-inf``; if all entries are ``-inf`` the result is NaN
    (there is nothing to normalise) -- callers that can meet this must check.
    """
    log_weights = jnp.asarray(log_weights)
    return log_weights - logsumexp(log_weights, axis=axis, keepdims=True)


def log_mean_exp(x, axis: int | None = None):
    """``log(mean(exp(x)))`` computed stably (``logsumexp(x) - log n``)."""
    x = jnp.asarray(x)
    n = x.size if axis is None else x.shape[axis]
    return logsumexp(x, axis=axis) - jnp.log(jnp.asarray(n, dtype=x.dtype))


def masked_logsumexp(x, mask, axis: int | None = None):
    """``log Σ_{mask} exp(x)``; an all-False slice gives ``-inf`` (an empty sum), not NaN."""
    x = jnp.asarray(x)
    mask = jnp.asarray(mask, dtype=bool)
    neg_inf = jnp.asarray(-jnp.inf, dtype=x.dtype)
    return logsumexp(jnp.where(mask, x, neg_inf), axis=axis)


def log1mexp(x):
    """``log(1 - exp(x))`` for ``x <= 0``, accurate for all x (Mächler 2012).

    Uses ``log(-expm1(x))`` for ``x > -log 2`` and ``log1p(-exp(x))`` otherwise. ``x = 0``
    gives ``-inf``; ``x > 0`` gives NaN.
    """
    x = jnp.asarray(x)
    x = x if x.dtype.kind == "f" else x.astype(jnp.result_type(float))
    log2 = jnp.log(jnp.asarray(2.0, dtype=x.dtype))
    near_zero = x > -log2
    a = jnp.log(-jnp.expm1(jnp.where(near_zero, x, -1.0)))
    b = jnp.log1p(-jnp.exp(jnp.where(near_zero, -1.0, x)))
    return jnp.where(near_zero, a, b)


def log_sub_exp(a, b):
    """``log(exp(a) - exp(b))`` for ``a >= b`` (``-inf`` when equal), stably.

    ``a + log1mexp(b - a)``.
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    diff = jnp.where(jnp.isneginf(a), 0.0, b - a)
    return jnp.where(jnp.isneginf(a), a, a + log1mexp(diff))
