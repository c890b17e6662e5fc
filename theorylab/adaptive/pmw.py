"""Private multiplicative weights (PMW) over a finite domain ``X = {0, ..., D-1}``.

Hardt & Rothblum, *A multiplicative weights mechanism for privacy-preserving data analysis*
(FOCS'10), as the practical stand-in for the exponential-query mechanisms of Dwork et al.
(STOC'15, "Preserving statistical validity in adaptive data analysis"; spec ``adaptive.md``
§1.5). The holdout is reduced to its sufficient statistic, the sample histogram
``h_S = counts / n`` over ``X``; a *linear query* is a vector ``q in [0, 1]^D`` with empirical
value ``<q, h_S>`` (a statistical query ``phi: X -> [0, 1]`` tabulated over the domain).

The mechanism keeps a synthetic distribution ``w`` over ``X`` (uniform at the start) and, for
every query (spec §1.5 pseudo-code)::

    est = <q, w / sum(w)>;   d = <q, h_S> - est
    if |d + Lap(2b)| <= T_hat:        return est                  # free ("below")
    else:                                                         # an MW update
        updates += 1
        a = <q, h_S> + Lap(b);       return clip(a, 0, 1)
        w <- w * exp(eta * sign(a - est) * q)                     # in log space, renormalised
        T_hat <- T + Lap(b)                                       # fresh threshold noise

where ``T_hat = T + Lap(b)`` is the noisy threshold of the current sparse-vector epoch.
After ``U = max_updates`` updates the mechanism is *exhausted*: every later query returns
``nan`` with ``answered=False`` and neither the answers nor the state depend on the histogram
(they are selected with ``jnp.where`` from values that do not involve it). Exhaustion is sticky.

Conventions shared with :mod:`theorylab.adaptive.mechanisms`: the configuration :class:`PMW`
is a frozen, hashable dataclass (a static argument of ``jit``); the state :class:`PMWState` is
a pytree that carries its own PRNG key; the noise of query number ``i`` (counted from 0 over
the life of the state) comes from ``jax.random.fold_in(state.key, i)``, so a batch of queries
gives bit-identically the answers of the same queries submitted one at a time and no two
queries share a key; ``pmw_init`` / ``pmw_query`` can be ``vmap``-ped over keys.

Cost: ``O(D)`` memory (log-weights and histogram, 2 x 4 bytes x D) and ``O(D)`` time per
query (an ``exp`` and two dot products for the estimate, plus a log-sum-exp and an update on
the rare above-threshold queries, which run under ``lax.cond``). Practical up to
``D ~ 2^24`` on one accelerator; hopeless for ``X = {0, 1}^d`` with ``d >~ 30``.

Precision: float32 by default. The weights are kept as *normalised log-probabilities*: an
update adds ``eta * sign * q`` (``|.| <= eta``) in log space and subtracts the log-sum-exp, so
the weights can neither overflow nor underflow to an all-zero vector however many updates
happen, and the rounding error of a log-weight after ``k`` updates is ``O(k * ulp)`` in
absolute terms (relative error of the weights, not absolute error of tiny ones).

Certificates are *sample*-accuracy half-widths (``|answer - <q, h_S>|``, per answer, at level
``beta``; see :class:`PMWCertificate`); population accuracy adds the transfer-theorem term of
the ledger's epsilon. The ledger (:func:`pmw_ledger`) charges pure DP per sparse-vector epoch
and per release (spec §1.8).

Choices where the spec leaves room (documented deviations):

- the spec's pseudo-code halts at the ``(U+1)``-th above-threshold event; here the ``U``-th
  update exhausts the mechanism (as the budgets of :mod:`~theorylab.adaptive.mechanisms`
  do), so the sparse vector runs at most ``U`` epochs -- exactly what the ledger charges;
- answers are clipped to ``[0, 1]`` (post-processing); the update direction uses the
  unclipped release ``a``;
- the noise calibrated to a privacy target has the constant ``3 sqrt(2)`` in front of the
  spec's ``sqrt(U ln(1/delta)) / (epsilon n)`` (see :func:`pmw`), and without a target the
  noise is chosen for accuracy, ``b = alpha / 16``.

Float Laplace sampling is fine for the *generalisation* guarantees this package is about, not
for privacy against a side-channel attacker (Mironov 2012); use OpenDP for that.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from theorylab.core.checks import (
    check_array,
    check_float,
    check_int,
    check_key,
    describe,
    is_concrete,
    require_x64,
)

__all__ = [
    "PMW",
    "PMWCertificate",
    "PMWLedger",
    "PMWState",
    "pmw",
    "pmw_init",
    "pmw_ledger",
    "pmw_query",
]

# Default noise scale when no privacy target is given: b = alpha / _ACCURACY_NOISE_DIVISOR.
# Then the comparison noise Lap(2b) exceeds alpha with probability exp(-8) ~ 3.4e-4, so a
# query that the synthetic distribution already answers exactly (d = 0) rarely triggers a
# spurious update, and the per-answer noise tail 3 b ln(2/beta) is 0.69 alpha at beta = 0.05.
_ACCURACY_NOISE_DIVISOR = 16.0


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PMW:
    """Configuration of private multiplicative weights (hashable; static under ``jit``).

    Build it with :func:`pmw`, which validates the arguments and chooses the defaults.

    Attributes:
      alpha: target accuracy alpha (the scale of everything else).
      max_updates: ``U``, the number of MW updates after which the mechanism is exhausted.
      noise_scale: ``b``: threshold noise ``Lap(b)``, comparison noise ``Lap(2b)``, release
        noise ``Lap(b)``.
      threshold: ``T``, the sparse-vector threshold on ``|<q, h_S> - est|``.
      eta: the multiplicative-weights learning rate.
      domain_size: ``D = |X|``.
      n: number of holdout rows behind the histogram (sensitivity of a query is ``1/n``).
      delta: the delta of the advanced-composition epsilon reported by :func:`pmw_ledger`.
      beta: per-answer failure probability of the certificates' half-widths.
      epsilon: the privacy target the noise was calibrated to (None if ``noise_scale`` was
        chosen for accuracy or given directly).
    """

    alpha: float
    max_updates: int
    noise_scale: float
    threshold: float
    eta: float
    domain_size: int
    n: int
    delta: float = 1e-6
    beta: float = 0.05
    epsilon: float | None = None

    @property
    def epsilon_per_update(self) -> float:
        """Pure-DP cost of one sparse-vector epoch + its release: ``2/(b n) + 1/(b n)``."""
        return 3.0 / (self.noise_scale * self.n)

    @property
    def halfwidth_below(self) -> float:
        """Sample-accuracy half-width of an ``est`` answer: ``T + 3 b ln(2/beta)``.

        Below threshold means ``|d + nu| <= T + rho`` with ``rho ~ Lap(b)``, ``nu ~ Lap(2b)``,
        so ``|est - <q, h_S>| = |d| <= T + |rho| + |nu|``; ``P(|rho| > b ln(2/beta)) = beta/2``
        and ``P(|nu| > 2 b ln(2/beta)) = beta/2``.
        """
        return self.threshold + 3.0 * self.noise_scale * math.log(2.0 / self.beta)

    @property
    def halfwidth_above(self) -> float:
        """Sample-accuracy half-width of a released answer: ``b ln(1/beta)`` (Laplace tail;
        clipping to [0, 1] only moves the answer towards ``<q, h_S> in [0, 1]``)."""
        return self.noise_scale * math.log(1.0 / self.beta)


# exp(x) overflows float64 above ~709.78: a larger per-epoch cost makes the advanced
# composition infinite (vacuous), never an OverflowError
_MAX_EXP = 700.0


def _expm1(x: float) -> float:
    return math.inf if x > _MAX_EXP else math.expm1(x)


def _advanced_epsilon(k, eps0: float, delta: float):
    """Advanced composition (Dwork-Rothblum-Vadhan) of ``k`` eps0-DP steps at ``delta``."""
    if k == 0:
        return 0.0
    return math.sqrt(2.0 * k * math.log(1.0 / delta)) * eps0 + k * eps0 * _expm1(eps0)


def _calibrate_noise(epsilon: float, max_updates: int, delta: float, n: int) -> float:
    """Smallest ``b`` such that ``U`` epochs of cost ``3/(b n)`` compose to ``epsilon``.

    Composition: the better of basic (``U eps0``) and advanced composition at ``delta``. For
    ``U ln(1/delta) >> 1`` this is ``b ~ 3 sqrt(2 U ln(1/delta)) / (epsilon n)``: the spec's
    ``sqrt(U ln(1/delta)) / (epsilon n)`` with the constant that our noise scales require.
    """
    eps_basic = epsilon / max_updates
    lo, hi = 0.0, epsilon / math.sqrt(2.0 * max_updates * math.log(1.0 / delta))
    for _ in range(200):  # bisection on the increasing advanced-composition curve
        mid = 0.5 * (lo + hi)
        if _advanced_epsilon(max_updates, mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    eps0 = max(eps_basic, lo)
    return 3.0 / (eps0 * n)


def pmw(
    domain_size: int,
    n: int,
    alpha: float,
    *,
    epsilon: float | None = None,
    delta: float = 1e-6,
    max_updates: int | None = None,
    noise_scale: float | None = None,
    threshold: float | None = None,
    eta: float | None = None,
    beta: float = 0.05,
) -> PMW:
    """Configure private multiplicative weights (Hardt-Rothblum FOCS'10; spec §1.5).

    Defaults (each can be overridden):

    - ``eta = alpha / 2`` (spec; with this rate an update on a query with ``|d| >= alpha``
      decreases ``KL(h_S || w)`` by at least ``eta |d| - eta^2 >= alpha^2 / 4``);
    - ``max_updates = U = ceil(4 ln D / alpha^2)``
      (:func:`theorylab.adaptive.bounds.pmw_max_updates`; ``KL <= ln D`` at the start);
    - ``threshold = alpha`` (spec: "sparse-vector threshold ~ alpha");
    - ``noise_scale``: with ``epsilon`` given, the smallest ``b`` for which ``U`` epochs
      (each ``3/(b n)``-DP: sparse vector ``2/(b n)`` + release ``1/(b n)``) compose to
      ``epsilon`` by the better of basic and advanced composition at ``delta``; this is
      ``b ~ 3 sqrt(2 U ln(1/delta)) / (epsilon n)``, the spec's
      ``sqrt(U ln(1/delta)) / (epsilon n)`` up to the constant. Without ``epsilon``,
      ``b = alpha / 16`` (accuracy-first: spurious updates have probability ~ ``e^-8`` per
      query, the noise tail of a certificate is ``0.69 alpha``); :func:`pmw_ledger` reports
      the epsilon it costs. The theory-calibrated noise is large unless
      ``n >~ sqrt(ln D) log(m / beta) sqrt(ln(1/delta)) / (epsilon alpha^2)`` (spec §1.5).

    Args:
      domain_size: ``D = |X|`` (int >= 2).
      n: number of holdout rows (int >= 1).
      alpha: target accuracy in (0, 1].
      epsilon: privacy target for the whole run (> 0), or None. Exclusive with
        ``noise_scale``.
      delta: delta of the advanced composition, in (0, 1).
      max_updates: ``U`` (int >= 1), or None for the default.
      noise_scale: ``b`` (> 0), or None for the default.
      threshold: ``T`` (>= 0; ``inf`` never updates), or None for ``alpha``.
      eta: learning rate (> 0), or None for ``alpha / 2``.
      beta: per-answer failure probability of the certificates' half-widths, in (0, 1).

    Returns:
      a :class:`PMW` configuration.
    """
    from theorylab.adaptive.bounds import pmw_max_updates

    domain_size = check_int(domain_size, "domain_size", min_value=2)
    n = check_int(n, "n", min_value=1)
    alpha = check_float(alpha, "alpha", min_value=0.0, max_value=1.0, min_inclusive=False)
    delta = check_float(
        delta, "delta", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )
    beta = check_float(
        beta, "beta", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )
    if max_updates is None:
        max_updates = pmw_max_updates(domain_size, alpha)
    else:
        max_updates = check_int(max_updates, "max_updates", min_value=1)
    if epsilon is not None and noise_scale is not None:
        raise ValueError(
            "epsilon and noise_scale are exclusive: give the privacy target epsilon (the noise "
            f"is calibrated to it) or the noise_scale itself; got epsilon={epsilon}, "
            f"noise_scale={noise_scale}"
        )
    if epsilon is not None:
        epsilon = check_float(epsilon, "epsilon", min_value=0.0, min_inclusive=False)
        noise_scale = _calibrate_noise(epsilon, max_updates, delta, n)
    elif noise_scale is None:
        noise_scale = alpha / _ACCURACY_NOISE_DIVISOR
    else:
        noise_scale = check_float(noise_scale, "noise_scale", min_value=0.0, min_inclusive=False)
    if threshold is None:
        threshold = alpha
    else:
        threshold = check_float(threshold, "threshold", min_value=0.0, allow_inf=True)
    if eta is None:
        eta = alpha / 2.0
    else:
        eta = check_float(eta, "eta", min_value=0.0, min_inclusive=False)
    return PMW(
        alpha=alpha,
        max_updates=max_updates,
        noise_scale=float(noise_scale),
        threshold=threshold,
        eta=eta,
        domain_size=domain_size,
        n=n,
        delta=delta,
        beta=beta,
        epsilon=epsilon,
    )


# ---------------------------------------------------------------------------------------------
# State, certificates, ledger
# ---------------------------------------------------------------------------------------------


class PMWState(NamedTuple):
    """State of PMW (a pytree; batch it with ``vmap``).

    Attributes:
      key: base PRNG key; query ``i`` uses ``fold_in(key, i)``. Never reused.
      log_weights: ``[D]`` normalised log-probabilities of the synthetic distribution ``w``.
      histogram: ``[D]`` the sample histogram ``h_S = counts / n`` (the only holdout data kept).
      count: number of queries submitted so far (answered or not).
      answered: number of queries answered.
      updates: number of MW updates (above-threshold events) so far.
      exhausted: sticky flag, set by the ``max_updates``-th update; nothing is answered after.
      noisy_threshold: ``T + Lap(b)`` of the current sparse-vector epoch.
      epoch_open: whether the current epoch has compared a query with the noisy threshold
        (then it is charged in the ledger although it has not ended with an update).
    """

    key: Any
    log_weights: Any
    histogram: Any
    count: Any
    answered: Any
    updates: Any
    exhausted: Any
    noisy_threshold: Any
    epoch_open: Any


class PMWCertificate(NamedTuple):
    """What each answer is certified to (one entry per query).

    Attributes:
      answered: whether the query was answered (False after exhaustion or for an invalid
        query -- values outside [0, 1] or NaN inside a trace).
      halfwidth: *sample* accuracy: ``|answer - <q, h_S>| <= halfwidth`` except with
        probability ``beta`` (per answer): ``PMW.halfwidth_below`` for an ``est`` answer,
        ``PMW.halfwidth_above`` for a released one, ``inf`` when not answered. For population
        accuracy add the transfer-theorem term of the ledger's epsilon (e.g.
        :func:`theorylab.adaptive.bounds.jung_transfer`); for all ``m`` answers at once use
        ``beta / m``.
      beta: the failure probability of ``halfwidth`` (1 when not answered).
      index: global query index (0-based); with the state's key it re-derives the noise.
      updated: whether this query triggered an MW update (the answer is ``<q,h_S> + Lap(b)``).
      updates: MW updates so far, after this query.
      noise_scale: scale of the Laplace noise in the released answer (0 for ``est`` answers).
    """

    answered: Any
    halfwidth: Any
    beta: Any
    index: Any
    updated: Any
    updates: Any
    noise_scale: Any


class PMWLedger(NamedTuple):
    """Privacy spent by PMW so far (spec §1.8: pure DP, composes with the package's ledger).

    Attributes:
      queries: queries submitted.
      answered: queries answered.
      updates_used: MW updates (above-threshold events = released answers).
      updates_left: ``max_updates - updates_used``.
      exhausted: sticky exhaustion flag.
      epsilon: pure-DP epsilon by basic composition: ``2/(b n)`` per sparse-vector epoch
        started (the updates, plus the current epoch if a query has been compared in it) and
        ``1/(b n)`` per released answer.
      epsilon_delta: an (epsilon_delta, delta)-DP statement: the smaller of ``epsilon`` and
        the advanced composition at ``delta`` of the same epochs, each charged ``3/(b n)``
        (advanced composition only wins after many epochs of small cost).
      epsilon_max: the a-priori guarantee for the whole interaction, whatever the analyst
        does: ``min(basic, advanced)`` over ``max_updates`` epochs (the mechanism halts
        there), at ``delta`` when the advanced bound is the smaller. The running values
        above describe what has been spent; only ``epsilon_max`` is a fixed-horizon
        guarantee (running totals with a data-dependent horizon need an odometer).
      delta: the delta of ``epsilon_delta`` / ``epsilon_max``.
    """

    queries: Any
    answered: Any
    updates_used: Any
    updates_left: Any
    exhausted: Any
    epsilon: Any
    epsilon_delta: Any
    epsilon_max: Any
    delta: Any


def _check_config(config) -> PMW:
    if not isinstance(config, PMW):
        raise TypeError(
            f"config must be a PMW configuration from theorylab.adaptive.pmw.pmw(...); "
            f"got {describe(config)}"
        )
    return config


def _laplace(key, scale: float, dtype):
    return scale * jax.random.laplace(key, (), dtype)


def _validate_data(data, config: PMW):
    """Validate ``data`` (integer rows or a float histogram); return ``(array, is_rows)``."""
    name = "histogram_or_rows"
    d, n = config.domain_size, config.n
    arr = check_array(data, name, ndim=1, kind="real", to_jax=False)
    concrete = is_concrete(arr)
    if np.dtype(arr.dtype).kind in "iu":  # integer rows in [0, D)
        if arr.shape[0] != n:
            raise ValueError(
                f"{name} (integer rows) must have n={n} entries, the n of the config; got "
                f"{arr.shape[0]} (a histogram must be a floating array of D={d} frequencies)"
            )
        if concrete:
            host = np.asarray(arr)
            lo, hi = int(host.min()), int(host.max())
            if lo < 0 or hi >= d:
                raise ValueError(
                    f"{name} (integer rows) must lie in [0, {d}) (the domain); got values in "
                    f"[{lo}, {hi}]"
                )
        return jnp.asarray(arr), True
    # floating: a histogram of frequencies counts / n
    if arr.shape[0] != d:
        raise ValueError(
            f"{name} (a floating histogram) must have D={d} entries, the domain size of the "
            f"config; got {arr.shape[0]} (integer rows are read as data points)"
        )
    if concrete:
        host = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(host)):
            raise ValueError(f"{name} must contain only finite values")
        if host.min() < 0:
            raise ValueError(f"{name} (a histogram) must be >= 0; got min {host.min():.3g}")
        total = float(host.sum())
        if abs(total - 1.0) > 1e-4:
            raise ValueError(
                f"{name} (a histogram) must hold frequencies counts / n summing to 1; got sum "
                f"{total:.6g}"
            )
    return jnp.asarray(arr), False


def pmw_init(key, histogram_or_rows, config: PMW, *, dtype=jnp.float32) -> PMWState:
    """Initial PMW state: uniform weights, the sample histogram and a first noisy threshold.

    Args:
      key: a JAX PRNG key (may be traced: ``vmap(lambda k: pmw_init(k, rows, config))(keys)``).
      histogram_or_rows: either the holdout itself, ``n`` *integer* rows in ``[0, D)`` (their
        histogram ``counts / n`` is computed and the rows are dropped), or a *floating*
        histogram of ``D`` frequencies ``counts / n`` (non-negative, summing to 1). Values
        are checked when concrete; traced rows cannot be (``jnp.bincount`` then counts
        negative rows as 0 and drops rows ``>= D``). If ``n == D``, an integer array is read
        as rows, never as counts.
      config: a :class:`PMW` from :func:`pmw` (static under ``jit``).
      dtype: floating dtype of the weights and histogram (float32 by default; float64 needs
        x64 enabled).

    Returns:
      a :class:`PMWState`. ``O(D + n)`` time and ``O(D)`` memory.
    """
    config = _check_config(config)
    check_key(key)
    dtype = jnp.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating dtype; got {dtype}")
    if dtype.itemsize > 4:
        require_x64("pmw_init with dtype=float64")
    data, is_rows = _validate_data(histogram_or_rows, config)
    return _init_state(config, is_rows, dtype, key, data)


@jax.jit(static_argnums=(0, 1, 2))
def _init_state(config: PMW, is_rows: bool, dtype, key, data) -> PMWState:
    d = config.domain_size
    if is_rows:
        counts = jnp.bincount(data, length=d)
        histogram = counts.astype(dtype) / config.n
    else:
        histogram = data.astype(dtype)
    base, thr_key = jax.random.split(key)
    noisy_threshold = jnp.asarray(config.threshold, dtype) + _laplace(
        thr_key, config.noise_scale, dtype
    )
    return PMWState(
        key=base,
        log_weights=jnp.full((d,), -math.log(d), dtype),
        histogram=histogram,
        count=jnp.zeros((), jnp.int32),
        answered=jnp.zeros((), jnp.int32),
        updates=jnp.zeros((), jnp.int32),
        exhausted=jnp.zeros((), bool),
        noisy_threshold=noisy_threshold,
        epoch_open=jnp.zeros((), bool),
    )


# ---------------------------------------------------------------------------------------------
# Answering queries
# ---------------------------------------------------------------------------------------------


def _one_query(config: PMW, state: PMWState, q):
    """Answer one query ``q [D]``; exhaustion/validity semantics as in the module docstring."""
    dtype = state.log_weights.dtype
    b = config.noise_scale
    key = jax.random.fold_in(state.key, state.count)
    # one draw of three standard Laplace variables per query: comparison, release, threshold
    z_cmp, z_rel, z_thr = jax.random.laplace(key, (3,), dtype)

    valid = jnp.all((q >= 0) & (q <= 1))  # False for NaN entries too
    live = valid & ~state.exhausted
    q = jnp.where(valid, q, jnp.zeros_like(q))  # no NaN reaches the state

    # est = <q, w> / sum(w); the log-weights are normalised (max <= 0), so exp cannot overflow
    weights = jnp.exp(state.log_weights)
    est = jnp.dot(q, weights) / jnp.sum(weights)
    empirical = jnp.dot(q, state.histogram)
    gap = empirical - est
    above = jnp.abs(gap + 2.0 * b * z_cmp) > state.noisy_threshold
    update = live & above
    released = empirical + b * z_rel

    def mw_update(log_weights):
        step = (config.eta * jnp.sign(released - est)).astype(dtype)
        new = log_weights + step * q
        return new - logsumexp(new)

    log_weights = jax.lax.cond(update, mw_update, lambda lw: lw, state.log_weights)
    answer = jnp.clip(jnp.where(update, released, est), 0.0, 1.0)
    answer = jnp.where(live, answer, jnp.asarray(jnp.nan, dtype))

    updates = state.updates + update.astype(jnp.int32)
    fresh_threshold = jnp.asarray(config.threshold, dtype) + b * z_thr
    new_state = state._replace(
        log_weights=log_weights,
        count=state.count + 1,
        answered=state.answered + live.astype(jnp.int32),
        updates=updates,
        exhausted=state.exhausted | (update & (updates >= config.max_updates)),
        noisy_threshold=jnp.where(update, fresh_threshold, state.noisy_threshold),
        epoch_open=jnp.where(live, ~update, state.epoch_open),
    )
    halfwidth = jnp.where(update, config.halfwidth_above, config.halfwidth_below)
    cert = PMWCertificate(
        answered=live,
        halfwidth=jnp.where(live, halfwidth, jnp.inf).astype(jnp.float32),
        beta=jnp.where(live, config.beta, 1.0).astype(jnp.float32),
        index=state.count,
        updated=update,
        updates=updates,
        noise_scale=jnp.where(update, b, 0.0).astype(jnp.float32),
    )
    return answer, cert, new_state


def _check_state(config: PMW, state) -> PMWState:
    if not isinstance(state, PMWState):
        raise TypeError(f"state must be a PMWState from pmw_init; got {describe(state)}")
    d = config.domain_size
    if state.log_weights.shape[-1] != d or state.histogram.shape[-1] != d:
        raise ValueError(
            f"state must belong to a domain of D={d} (the config's domain_size); got "
            f"log_weights of shape {tuple(state.log_weights.shape)}"
        )
    return state


def pmw_query(config: PMW, state: PMWState, queries):
    """Answer a batch of linear queries in order (``lax.scan``), as PMW (spec §1.5).

    Bit-identical to submitting the queries one at a time. jit-able with ``config`` static
    (``jax.jit(pmw_query, static_argnums=0)``); ``vmap`` over a batch of states for seeds.

    Args:
      config: the :class:`PMW` configuration.
      state: its :class:`PMWState`.
      queries: ``[q, D]`` query values in ``[0, 1]`` (query ``i`` is ``phi_i`` tabulated
        over the domain). Concrete values outside ``[0, 1]`` or NaN raise ``ValueError``;
        inside a trace such a query is not answered and changes nothing but the count.

    Returns:
      ``(answers [q], PMWCertificate of [q] arrays, new state)``; unanswered entries are NaN.
      ``O(q D)`` time.
    """
    config = _check_config(config)
    state = _check_state(config, state)
    d = config.domain_size
    queries = check_array(queries, "queries", ndim=2, kind="real", to_jax=False)
    if queries.shape[1] != d:
        raise ValueError(
            f"queries must have shape (q, {d}) (one value per domain element, D={d}); got "
            f"{describe(queries)}"
        )
    if is_concrete(queries) and queries.size:
        host = np.asarray(queries)
        if not np.all(np.isfinite(host)) or host.min() < 0 or host.max() > 1:
            bad = host[~((host >= 0) & (host <= 1))]
            raise ValueError(
                f"queries must have values in [0, 1] (statistical queries); got "
                f"{bad.size} values outside, e.g. {bad.flat[0]!r}"
            )
    queries = jnp.asarray(queries).astype(state.log_weights.dtype)
    return _scan_queries(config, state, queries)


@jax.jit(static_argnums=0)
def _scan_queries(config: PMW, state: PMWState, queries):
    # jitted with the (hashable) config static, so that eager calls -- e.g. one query at a
    # time from a Python loop -- reuse one compiled program instead of re-tracing the scan
    def body(st, q):
        answer, cert, st = _one_query(config, st, q)
        return st, (answer, cert)

    state, (answers, certs) = jax.lax.scan(body, state, queries)
    return answers, certs, state


def pmw_ledger(config: PMW, state: PMWState) -> PMWLedger:
    """The privacy ledger of a PMW state (works on a batched state too).

    Composition used (spec §1.8): each sparse-vector epoch (the queries from one threshold
    draw up to and including the above-threshold query that ends it) is ``2/(b n)``-DP
    (AboveThreshold with threshold noise ``Lap(b)``, comparison noise ``Lap(2b)`` and
    sensitivity ``1/n`` of ``|<q, h_S> - est|``: ``est`` depends only on past answers);
    each release ``<q, h_S> + Lap(b)`` is ``1/(b n)``-DP; the MW update and the ``est``
    answers are post-processing. ``epsilon`` adds these up (basic composition);
    ``epsilon_delta`` is the smaller of that and the advanced composition at ``delta`` of the
    epochs, each charged ``3/(b n)``; ``epsilon_max`` is the guarantee for the whole run
    (``max_updates`` epochs).
    """
    config = _check_config(config)
    state = _check_state(config, state)
    bn = config.noise_scale * config.n
    epochs = state.updates + state.epoch_open.astype(jnp.int32)
    k = epochs.astype(jnp.float32)
    eps_basic = (2.0 * k + state.updates.astype(jnp.float32)) / bn
    eps0 = config.epsilon_per_update
    second_order = eps0 * _expm1(eps0)  # inf for absurd eps0: the advanced bound is vacuous
    eps_adv = jnp.sqrt(2.0 * k * math.log(1.0 / config.delta)) * eps0 + jnp.where(
        k > 0, k * second_order, 0.0
    )
    u = config.max_updates
    eps_max = min(u * eps0, _advanced_epsilon(u, eps0, config.delta))
    return PMWLedger(
        queries=state.count,
        answered=state.answered,
        updates_used=state.updates,
        updates_left=u - state.updates,
        exhausted=state.exhausted,
        epsilon=eps_basic,
        epsilon_delta=jnp.minimum(eps_basic, eps_adv),
        epsilon_max=jnp.full(jnp.shape(state.updates), eps_max, jnp.float32),
        delta=jnp.full(jnp.shape(state.updates), config.delta, jnp.float32),
    )
