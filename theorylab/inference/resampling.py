"""Resampling schemes as pure functions of explicit randomness.

Every scheme is a :class:`Resampler` with three pure pieces:

* ``draw(key, num_samples)`` — the uniforms the scheme consumes (``num_uniforms`` of them);
* ``from_uniforms(u, log_weights, num_samples)`` — the ancestor indices, a deterministic
  function of those uniforms (the analogue of monad-bayes' ``withRandomness``);
* ``intervals(log_weights, num_samples)`` — for each uniform coordinate, the sorted
  breakpoints in ``[0, 1]`` between which ``from_uniforms`` is constant. Integrating over
  these intervals gives the *exact* distribution of the ancestors, which is how
  :mod:`theorylab.inference.validation` enumerates a whole SMC run.

Calling the resampler, ``resampler(key, log_weights, num_samples)``, is
``from_uniforms(draw(key, num_samples), ...)``. All four schemes are *valid* in the sense of
Ścibior et al. (2018): the expected number of offspring of particle ``i`` is ``M·W_i``
(``E[O_i] = M W_i``), so ``E[Σ_j (z/M) f(x_{A_j})] = Σ_i w_i f(x_i)``; they differ only in
variance. Weights are normalised inside (the CDF is divided by its last element, never assumed
to end at 1), zero-weight particles are never chosen and ``-inf`` log-weights are safe. If all
weights are ``-inf`` the ancestors are the identity (the population has no mass; the filter
flags it as collapsed).

Numerics (Murray, Lee & Jacob 2016): CDF-based resamplers in float32 are slightly biased for
very large ``N``; run with float64 enabled for ``N ≳ 10⁵`` if that matters to you.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from theorylab.core.registry import Registry

__all__ = [
    "RESAMPLERS",
    "Resampler",
    "conditional_multinomial",
    "get_resampler",
    "multinomial",
    "normalized_cdf",
    "offspring_counts",
    "residual",
    "stratified",
    "systematic",
]


class Resampler(NamedTuple):
    """A resampling scheme as pure functions of explicit uniforms (see module docstring)."""

    name: str
    num_uniforms: Callable[[int], int]
    from_uniforms: Callable[[jax.Array, jax.Array, int], jax.Array]
    intervals: Callable[[jax.Array, int], jax.Array]

    def draw(self, key, num_samples: int) -> jax.Array:
        """The ``num_uniforms(num_samples)`` U(0,1) draws the scheme consumes."""
        return jax.random.uniform(key, (self.num_uniforms(num_samples),))

    def __call__(self, key, log_weights, num_samples: int | None = None) -> jax.Array:
        """Ancestor indices ``int32[num_samples]`` (default ``num_samples = len(log_weights)``)."""
        m = log_weights.shape[-1] if num_samples is None else num_samples
        return self.from_uniforms(self.draw(key, m), log_weights, m)


def _cumsum(x) -> jax.Array:
    """Inclusive prefix sum as a parallel (associative) scan: ~2-3x faster than ``jnp.cumsum``
    on XLA:CPU (measured 0.72 ms vs 1.7 ms at N = 10⁵; NumPy 0.6 ms) and fine on GPU."""
    return jax.lax.associative_scan(jnp.add, x)


def _cummax(x) -> jax.Array:
    return jax.lax.associative_scan(jnp.maximum, x)


def _safe_cdf(weights) -> jax.Array:
    """CDF of non-negative weights as exact fixed-point prefix sums.

    Each weight is quantised to an integer ``q_i = ⌊w_i / Σw · 2^b⌋`` (``b = 30`` in int32,
    ``62`` in int64 when x64 is on) and the prefix sums are exact integers, so they are
    monotone and a zero weight gives a bin of width exactly 0 whatever order XLA sums in
    (a float ``cumsum`` may reassociate and leave a one-ulp bin for a zero-weight particle).
    The quantisation error per weight (≤ 2⁻³⁰ ≈ 1e-9) is below float32's own resolution of
    the CDF near 1 (6e-8); the CDF ends at exactly 1 from the last positive weight on.
    """
    x64 = weights.dtype == jnp.float64
    itype, bits = (jnp.int64, 62) if x64 else (jnp.int32, 30)
    total = jnp.sum(weights)
    scaled = weights / jnp.where(total > 0, total, 1.0) * (2.0**bits)
    q = jnp.floor(jnp.clip(scaled, 0.0, 2.0**bits)).astype(itype)
    cq = _cumsum(q)
    last = cq[-1]
    c = cq.astype(weights.dtype) / jnp.where(last > 0, last, 1).astype(weights.dtype)
    return jnp.where(cq == last, jnp.ones_like(c), c)


def normalized_cdf(log_weights) -> jax.Array:
    """Cumulative distribution of the normalised weights, ending exactly at 1.

    Computed from ``exp(log_w - max)`` (never assuming the weights sum to 1); zero-weight
    particles get empty bins (see :func:`_safe_cdf`). If every weight is ``-inf`` (no mass)
    the uniform CDF is returned, so the caller's ancestors stay finite.
    """
    log_weights = jnp.asarray(log_weights)
    top = jnp.max(log_weights)
    finite_top = jnp.where(jnp.isfinite(top), top, 0.0)
    w = jnp.exp(log_weights - finite_top)
    w = jnp.where(jnp.isfinite(top), w, jnp.ones_like(w))
    return _safe_cdf(w)


def _ancestors_from_counts(counts, num_samples: int) -> jax.Array:
    """Ancestors with ``counts[i]`` copies of ``i`` in increasing order (static length).

    Slot ``j`` belongs to ``#{i : cumsum(counts)_i <= j}``: one scatter-add of the block ends
    and one cumsum, O(N + M) (a binary search per slot costs O(M log N) and is ~10x slower
    on CPU).
    """
    return _ancestors_from_ends(_cumsum(counts), num_samples)


def _inverse_cdf(cdf, points) -> jax.Array:
    """Index ``i`` with ``cdf[i-1] <= p < cdf[i]`` for each point (zero-width bins never hit)."""
    idx = jnp.searchsorted(cdf, points, side="right")
    return jnp.clip(idx, 0, cdf.shape[0] - 1).astype(jnp.int32)


def _with_ends(points) -> jax.Array:
    """Sorted breakpoints with 0 and 1 added (shape ``(len(points) + 2,)``)."""
    points = jnp.clip(points, 0.0, 1.0)
    return jnp.sort(
        jnp.concatenate([jnp.zeros(1, points.dtype), points, jnp.ones(1, points.dtype)])
    )


# --- multinomial --------------------------------------------------------------------------


def _multinomial_from_uniforms(u, log_weights, num_samples: int):
    """Independent inverse-CDF draws: ``A_j = F⁻¹(u_j)``; O(M log N)."""
    return _inverse_cdf(normalized_cdf(log_weights), u[:num_samples])


def _multinomial_intervals(log_weights, num_samples: int):
    cdf = normalized_cdf(log_weights)
    ends = _with_ends(cdf)[:-1]  # [0, C_0, ..., C_{N-1}=1]
    return jnp.broadcast_to(ends, (num_samples, ends.shape[0]))


multinomial = Resampler(
    "multinomial", lambda m: m, _multinomial_from_uniforms, _multinomial_intervals
)


# --- stratified ----------------------------------------------------------------------------


def _stratified_from_uniforms(u, log_weights, num_samples: int):
    """Points ``(k + u_k)/M`` with independent ``u_k`` (Kitagawa 1996); O(M log N)."""
    points = (jnp.arange(num_samples, dtype=u.dtype) + u[:num_samples]) / num_samples
    return _inverse_cdf(normalized_cdf(log_weights), points)


def _stratified_intervals(log_weights, num_samples: int):
    cdf = normalized_cdf(log_weights)
    k = jnp.arange(num_samples, dtype=cdf.dtype)[:, None]
    return jax.vmap(_with_ends)(num_samples * cdf[None, :] - k)


stratified = Resampler("stratified", lambda m: m, _stratified_from_uniforms, _stratified_intervals)


# --- systematic ----------------------------------------------------------------------------


def offspring_counts(cdf, u, num_samples: int) -> jax.Array:
    """Systematic offspring counts ``O_i = n(C_i) − n(C_{i−1})`` with ``n(c) = ⌈M c − u⌉``.

    ``n(c)`` is the number of grid points ``(k + u)/M`` below ``c``. Only the particle's own
    CDF values enter, which is what lets the sharded filter compute counts locally.
    """
    return jnp.diff(_points_below(cdf, u, num_samples), prepend=jnp.zeros(1, jnp.int32))


def _points_below(cdf, u, num_samples: int) -> jax.Array:
    """``n(C_i) = ⌈M C_i − u⌉`` clipped to ``[0, M]``: grid points ``(k + u)/M`` below ``C_i``."""
    return jnp.clip(jnp.ceil(num_samples * cdf - u), 0, num_samples).astype(jnp.int32)


def _ancestors_from_ends(ends, num_samples: int) -> jax.Array:
    """Slot ``j`` belongs to ``#{i < N−1 : ends_i <= j}`` (``ends`` non-decreasing)."""
    marks = jnp.zeros(num_samples, jnp.int32).at[ends[:-1]].add(1, mode="drop")
    return jnp.minimum(_cumsum(marks), ends.shape[0] - 1).astype(jnp.int32)


def _systematic_from_uniforms(u, log_weights, num_samples: int):
    """One uniform, points ``(k + u)/M``; counts in ``{⌊M W_i⌋, ⌊M W_i⌋+1}``; O(N + M).

    The cumulative counts are ``n(C_i)`` in closed form, so no search is needed.
    """
    ends = _points_below(normalized_cdf(log_weights), u[0], num_samples)
    return _ancestors_from_ends(ends, num_samples)


def _systematic_intervals(log_weights, num_samples: int):
    cdf = normalized_cdf(log_weights)
    frac = num_samples * cdf - jnp.floor(num_samples * cdf)
    return _with_ends(frac)[None, :]


systematic = Resampler("systematic", lambda m: 1, _systematic_from_uniforms, _systematic_intervals)


# --- residual ------------------------------------------------------------------------------


def _residual_parts(log_weights, num_samples: int):
    cdf = normalized_cdf(log_weights)
    w = jnp.clip(jnp.diff(cdf, prepend=jnp.zeros(1, cdf.dtype)), 0.0, None)
    floors = jnp.floor(num_samples * w).astype(jnp.int32)
    rest = jnp.clip(num_samples * w - floors, 0.0, None)
    # with no residual mass (every M·W_i an integer) the residual slots are unused anyway
    return floors, _safe_cdf(rest)


def _residual_from_uniforms(u, log_weights, num_samples: int):
    """``⌊M W_i⌋`` deterministic copies, then multinomial on the residual weights (Liu & Chen 1998).

    Slot ``j`` below ``Σ⌊M W_i⌋`` is deterministic; the remaining slots use ``u_j`` through the
    residual CDF, so the shape is static. O(M log N).
    """
    floors, rest_cdf = _residual_parts(log_weights, num_samples)
    fixed = _ancestors_from_counts(floors, num_samples)
    drawn = _inverse_cdf(rest_cdf, u[:num_samples])
    slots = jnp.arange(num_samples)
    return jnp.where(slots < jnp.sum(floors), fixed, drawn).astype(jnp.int32)


def _residual_intervals(log_weights, num_samples: int):
    _, rest_cdf = _residual_parts(log_weights, num_samples)
    ends = _with_ends(rest_cdf)[:-1]
    return jnp.broadcast_to(ends, (num_samples, ends.shape[0]))


residual = Resampler("residual", lambda m: m, _residual_from_uniforms, _residual_intervals)


RESAMPLERS: Registry = Registry("resampler")
for _r in (multinomial, stratified, systematic, residual):
    RESAMPLERS.add(_r.name, _r)


def get_resampler(resampler: str | Resampler) -> Resampler:
    """A resampler by name: ``multinomial``, ``stratified``, ``systematic`` or ``residual``."""
    if isinstance(resampler, Resampler):
        return resampler
    if not isinstance(resampler, str):
        raise TypeError(
            "resampler must be a name or a theorylab.inference.Resampler; "
            f"got {type(resampler).__name__}"
        )
    return RESAMPLERS[resampler]


def conditional_multinomial(key, log_weights, num_samples: int | None = None, reference: int = 0):
    """Multinomial resampling conditioned on slot 0 descending from ``reference``.

    The conditional resampling of conditional SMC (Andrieu, Doucet & Holenstein 2010): the
    reference particle keeps its lineage in slot 0, the other ``M − 1`` ancestors are drawn
    i.i.d. from the weights. Used by particle Gibbs.
    """
    m = log_weights.shape[-1] if num_samples is None else num_samples
    ancestors = multinomial(key, log_weights, m)
    return ancestors.at[0].set(reference)
