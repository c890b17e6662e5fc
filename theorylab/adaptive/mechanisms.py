"""Query-answering mechanisms for adaptive data analysis, as ``init`` / ``step`` pairs.

Every mechanism answers statistical queries (SQs) ``phi: X -> [0, 1]`` about a holdout of
``n`` rows, one query at a time, from per-query summaries:

- ``holdout_mean`` -- the empirical mean ``E_S[phi]`` on the holdout;
- ``train_mean`` -- the mean on a training set (Thresholdout, Guess-and-Check's guess);
- ``holdout_rows`` -- the ``n`` per-row values (only for mechanisms with ``needs_rows``:
  sample splitting and the parameter-free Ladder).

A mechanism is a hashable frozen dataclass (pass it as a static argument to ``jit``); its state
is a :class:`MechState` pytree that carries its own PRNG key, so ``init_mechanism`` and
``answer_means`` / ``answer_rows`` can be ``vmap``-ped over seeds. The noise of query number
``i`` (counting from 0 over the life of the state) is drawn from
``jax.random.fold_in(state.key, i)``, so a batch of queries gives bit-identically the same
answers as the same queries submitted one at a time, and no two queries share a key.

Budget semantics (spec A5): once a mechanism is exhausted (its budget of above-threshold
events / failures / queries is spent) every later query returns ``answer = nan`` and
``answered = False``, and neither the answer nor the state depends on the holdout any more
(both are selected with ``jnp.where`` from values that do not involve it). Exhaustion is
sticky. A query whose summaries are not finite (NaN from a user's ``phi``) is not answered
and does not change the state.

Mechanisms (spec §1): :func:`naive`, :func:`sample_split`, :func:`laplace`, :func:`gaussian`,
:func:`thresholdout` (+ :func:`thresholdout_science`), :func:`sparse_validate`,
:func:`ladder`, :func:`guess_and_check`.

Certificates: each answer comes with ``halfwidth`` (``|answer - P[phi]| <= halfwidth``
except with probability ``beta``; ``inf`` when the mechanism has no certificate) computed from
the closed forms in :mod:`theorylab.adaptive.bounds` at ``init`` (host side, float64).

Float Laplace/Gaussian sampling is fine for the *generalisation* guarantees this module is
about, not for privacy against a side-channel attacker (Mironov 2012); use OpenDP for that.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from theorylab.core.checks import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_key,
)

__all__ = [
    "Certificate",
    "GaussianMechanism",
    "GuessAndCheck",
    "Ladder",
    "LaplaceMechanism",
    "Ledger",
    "MechState",
    "Mechanism",
    "Naive",
    "SampleSplit",
    "SparseValidate",
    "Thresholdout",
    "answer_means",
    "answer_rows",
    "gaussian",
    "guess_and_check",
    "init_mechanism",
    "ladder",
    "laplace",
    "ledger",
    "naive",
    "sample_split",
    "sparse_validate",
    "thresholdout",
    "thresholdout_science",
    "thresholdout_theorem",
]

# Method codes stored in certificates (so a vmapped array of certificates stays numeric).
METHOD_CODES = {
    "naive": 0,
    "sample_split": 1,
    "laplace": 2,
    "gaussian": 3,
    "thresholdout": 4,
    "sparse_validate": 5,
    "ladder": 6,
    "guess_and_check": 7,
}


class Certificate(NamedTuple):
    """What each answer is certified to (one entry per query).

    Attributes:
      answered: whether the mechanism answered (False after exhaustion or for invalid input).
      halfwidth: ``|answer - P[phi]| <= halfwidth`` except with probability ``beta``
        (``inf``: no certificate; for the Ladder it bounds the running minimum only; for
        SparseValidate it is the margin of the decision, see :func:`sparse_validate`).
      beta: failure probability of the certificate (joint over all answers of the run for
        the DP-based mechanisms, per answer for Guess-and-Check).
      index: global query index (0-based) of the answer.
      noise_scale: scale of the noise added to this answer (0 when none).
      budget_used: budget spent after this query (hits, failures, ladder updates).
      method: integer code of the mechanism (``METHOD_CODES``).
    """

    answered: Any
    halfwidth: Any
    beta: Any
    index: Any
    noise_scale: Any
    budget_used: Any
    method: Any


class MechState(NamedTuple):
    """State of a mechanism (a pytree; batch it with ``vmap``).

    Attributes:
      key: base PRNG key; query ``i`` uses ``fold_in(key, i)``. Never reused.
      count: number of queries submitted so far (answered or not).
      answered: number of queries answered.
      budget_used: above-threshold events / failures / leaderboard updates so far.
      exhausted: sticky flag; once set, nothing is answered.
      halfwidth: certificate half-width of every answer (computed at init; inf = none).
      beta: certificate failure probability.
      aux: mechanism-specific pytree (threshold, best score, leader losses, ...).
      size_marker: a zero-size ``bool[n, 0]`` array: carries the holdout size ``n`` in its
        *shape*, so that ``n`` stays static under ``jit`` and ``vmap``.
    """

    key: Any
    count: Any
    answered: Any
    budget_used: Any
    exhausted: Any
    halfwidth: Any
    beta: Any
    aux: Any
    size_marker: Any

    @property
    def n(self) -> int:
        """Holdout size (static)."""
        return self.size_marker.shape[-2]


class Ledger(NamedTuple):
    """Accounting of what the transcript has revealed about the holdout (spec §1.8).

    Attributes:
      queries: queries submitted.
      answered: queries answered.
      budget_used / budget_left: the mechanism's budget (``inf`` if it has none).
      exhausted: sticky exhaustion flag.
      rho: zCDP spent (Gaussian answers: ``sum 1/(2 n^2 sigma^2)``), 0 otherwise.
      epsilon: pure-DP epsilon spent by basic composition (``inf``: exposure not bounded --
        naive answers, the parameter-free Ladder, Thresholdout outside the Laplace
        sparse-vector setting; 0 for sample splitting, which never reuses a row; Laplace
        answers ``1/(b n)``,
        Laplace Thresholdout ``2/(sigma n)`` per above-threshold event plus ``1/(sigma n)`` for
        an open sparse-vector epoch; ``inf`` with ``redraw="every_query"``, which the
        sparse-vector analysis does not cover), 0 otherwise.
      bits: description length of the holdout-dependent part of the transcript
        (SparseValidate / Guess-and-Check / Ladder), 0 otherwise.
    """

    queries: Any
    answered: Any
    budget_used: Any
    budget_left: Any
    exhausted: Any
    rho: Any
    epsilon: Any
    bits: Any


# ---------------------------------------------------------------------------------------------
# Mechanism base class
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mechanism:
    """Base class: a frozen, hashable description of a mechanism (static under ``jit``)."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    needs_rows = False
    needs_train = False

    def max_queries_or_none(self) -> int | None:
        return getattr(self, "max_queries", None)

    def budget_or_none(self) -> int | None:
        return getattr(self, "budget", None)

    def certificate(self, n: int) -> tuple[float, float]:
        """(halfwidth, beta) of every answer for a holdout of ``n`` rows (host side)."""
        return math.inf, 1.0

    def init_aux(self, key, n: int, dtype) -> Any:
        return ()

    def step(self, state: MechState, key, holdout_mean, train_mean, rows, n: int):
        """One query -> (answer, noise_scale, budget_increment, aux, exhaust_now)."""
        raise NotImplementedError

    def ledger_terms(self, state: MechState, n: int):
        """(rho, epsilon, bits) spent so far."""
        zero = jnp.zeros((), jnp.float32)
        return zero, zero, zero


def _unaccounted(state):
    """Ledger entry of a mechanism whose holdout exposure is not bounded: epsilon = inf once
    something has been answered (an empirical mean has unbounded privacy loss)."""
    zero = jnp.zeros((), jnp.float32)
    eps = jnp.where(state.answered > 0, jnp.inf, 0.0).astype(jnp.float32)
    return zero, eps, zero


def _laplace(key, scale, dtype):
    return scale * jax.random.laplace(key, (), dtype)


def _normal(key, scale, dtype):
    return scale * jax.random.normal(key, (), dtype)


# ---------------------------------------------------------------------------------------------
# Naive and sample splitting
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Naive(Mechanism):
    """Answer the exact empirical mean (optionally rounded, e.g. a Kaggle leaderboard)."""

    decimals: int | None = None

    @property
    def name(self) -> str:
        return "naive"

    def step(self, state, key, holdout_mean, train_mean, rows, n):
        answer = holdout_mean
        if self.decimals is not None:
            answer = jnp.round(answer, self.decimals)
        return answer, 0.0, 0, state.aux, False

    def ledger_terms(self, state, n):
        return _unaccounted(state)


def naive(decimals: int | None = None) -> Naive:
    """Naive reuse: ``a_i = E_S[phi_i]`` (spec §1.0). No adaptive guarantee (``halfwidth=inf``).

    Args:
      decimals: round answers to this many decimals (Kaggle leaderboards use 5), or None.
    """
    if decimals is not None:
        decimals = check_int(decimals, "decimals", min_value=0, max_value=12)
    return Naive(decimals=decimals)


@dataclasses.dataclass(frozen=True)
class SampleSplit(Mechanism):
    """Query ``i`` is answered on its own chunk of ``floor(n / m)`` rows."""

    max_queries: int
    beta: float = 0.05

    needs_rows = True

    @property
    def name(self) -> str:
        return "sample_split"

    def certificate(self, n):
        from theorylab.adaptive.bounds import split_width

        return split_width(n, self.max_queries, self.beta), self.beta

    def step(self, state, key, holdout_mean, train_mean, rows, n):
        chunk = n // self.max_queries
        # chunk index = answers so far (an invalid, unanswered query does not burn a chunk)
        start = jnp.minimum(state.answered, self.max_queries - 1) * chunk
        part = jax.lax.dynamic_slice_in_dim(rows, start, chunk)
        answer = jnp.mean(part)
        return answer, 0.0, 0, state.aux, state.answered + 1 >= self.max_queries


def sample_split(max_queries: int, beta: float = 0.05) -> SampleSplit:
    """Sample splitting (spec §1.0): a fresh chunk of ``floor(n/m)`` rows per query.

    The certificate is Hoeffding on the chunk with a union bound over ``m`` queries
    (:func:`theorylab.adaptive.bounds.split_width`); valid whatever the analyst does because
    each chunk is used once. Exhausted after ``max_queries`` answers. Needs per-row values.
    """
    max_queries = check_int(max_queries, "max_queries", min_value=1)
    beta = check_float(
        beta, "beta", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )
    return SampleSplit(max_queries=max_queries, beta=beta)


# ---------------------------------------------------------------------------------------------
# Laplace / Gaussian noise answering
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LaplaceMechanism(Mechanism):
    scale: float
    max_queries: int | None = None
    beta: float = 0.05
    clip: bool = True

    @property
    def name(self) -> str:
        return "laplace"

    def certificate(self, n):
        if self.max_queries is None:
            return math.inf, 1.0
        from theorylab.adaptive.bounds import laplace_certificate

        cert = laplace_certificate(n, self.max_queries, self.scale, self.beta)
        return cert.width, self.beta

    def step(self, state, key, holdout_mean, train_mean, rows, n):
        answer = holdout_mean + _laplace(key, self.scale, holdout_mean.dtype)
        if self.clip:
            answer = jnp.clip(answer, 0.0, 1.0)
        exhaust = False if self.max_queries is None else state.answered + 1 >= self.max_queries
        return answer, self.scale, 0, state.aux, exhaust

    def ledger_terms(self, state, n):
        eps = state.answered.astype(jnp.float32) / (self.scale * n)
        zero = jnp.zeros((), jnp.float32)
        return zero, eps, zero


def laplace(
    scale: float, max_queries: int | None = None, beta: float = 0.05, clip: bool = True
) -> LaplaceMechanism:
    """Laplace noise answering (DFHPRR STOC'15, spec §1.1): ``clip(E_S[phi] + Lap(b), 0, 1)``.

    Each answer is ``1/(b n)``-DP. With ``max_queries`` set, the mechanism stops after that
    many answers and certifies every answer by the Jung et al. transfer theorem
    (:func:`theorylab.adaptive.bounds.laplace_certificate`); without it, ``halfwidth=inf``.
    """
    scale = check_float(scale, "scale", min_value=0.0, min_inclusive=False)
    if max_queries is not None:
        max_queries = check_int(max_queries, "max_queries", min_value=1)
    beta = check_float(
        beta, "beta", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )
    return LaplaceMechanism(scale=scale, max_queries=max_queries, beta=beta, clip=bool(clip))


@dataclasses.dataclass(frozen=True)
class GaussianMechanism(Mechanism):
    sigma: float
    max_queries: int | None = None
    beta: float = 0.05
    clip: bool = True

    @property
    def name(self) -> str:
        return "gaussian"

    def certificate(self, n):
        if self.max_queries is None:
            return math.inf, 1.0
        from theorylab.adaptive.bounds import gaussian_certificate

        cert = gaussian_certificate(n, self.max_queries, self.sigma, self.beta)
        return cert.width, self.beta

    def step(self, state, key, holdout_mean, train_mean, rows, n):
        answer = holdout_mean + _normal(key, self.sigma, holdout_mean.dtype)
        if self.clip:
            answer = jnp.clip(answer, 0.0, 1.0)
        exhaust = False if self.max_queries is None else state.answered + 1 >= self.max_queries
        return answer, self.sigma, 0, state.aux, exhaust

    def ledger_terms(self, state, n):
        rho = state.answered.astype(jnp.float32) / (2.0 * n * n * self.sigma**2)
        zero = jnp.zeros((), jnp.float32)
        return rho, zero, zero


def gaussian(
    sigma: float, max_queries: int | None = None, beta: float = 0.05, clip: bool = True
) -> GaussianMechanism:
    """Gaussian noise answering with zCDP accounting (BNSSSU STOC'16, spec §1.1).

    Each answer is ``1/(2 n^2 sigma^2)``-zCDP; zCDP adds up adaptively. With ``max_queries``
    the mechanism stops after that many answers and certifies each by
    :func:`theorylab.adaptive.bounds.gaussian_certificate` (zCDP -> (eps, delta) -> Jung et
    al. transfer, optimised over the free constants); without it, ``halfwidth=inf``.
    Use :func:`theorylab.adaptive.bounds.gaussian_optimal` to choose ``sigma``.
    """
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    if max_queries is not None:
        max_queries = check_int(max_queries, "max_queries", min_value=1)
    beta = check_float(
        beta, "beta", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )
    return GaussianMechanism(sigma=sigma, max_queries=max_queries, beta=beta, clip=bool(clip))


# ---------------------------------------------------------------------------------------------
# Thresholdout
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Thresholdout(Mechanism):
    threshold: float
    sigma: float
    budget: int | None = None
    noise: str = "laplace"
    redraw: str = "on_hit"
    threshold_scale: float | None = None
    compare_scale: float | None = None
    release_scale: float | None = None
    max_queries: int | None = None
    beta: float = 0.05
    clip: bool = False

    needs_train = True

    @property
    def name(self) -> str:
        return "thresholdout"

    @property
    def scales(self) -> tuple[float, float, float]:
        s = self.sigma
        return (
            2.0 * s if self.threshold_scale is None else self.threshold_scale,
            4.0 * s if self.compare_scale is None else self.compare_scale,
            s if self.release_scale is None else self.release_scale,
        )

    def certificate(self, n):
        default_scales = (
            self.threshold_scale is None
            and self.compare_scale is None
            and self.release_scale is None
        )
        if (
            self.noise != "laplace"
            or self.budget is None
            or self.max_queries is None
            or not default_scales
            or not math.isfinite(self.threshold)
            or self.redraw != "on_hit"
        ):
            return math.inf, 1.0
        from theorylab.adaptive.bounds import thresholdout_certificate

        cert = thresholdout_certificate(
            n, self.max_queries, self.threshold, self.sigma, self.budget, self.beta
        )
        return cert.width, self.beta

    def _draw(self, key, scale, dtype):
        if scale == 0.0:
            return jnp.zeros((), dtype)
        if self.noise == "laplace":
            return _laplace(key, scale, dtype)
        return _normal(key, scale, dtype)

    def init_aux(self, key, n, dtype):
        t_scale, _, _ = self.scales
        k = jax.random.fold_in(key, -1 & 0x7FFFFFFF)
        return {
            "noisy_threshold": jnp.asarray(self.threshold, dtype) + self._draw(k, t_scale, dtype),
            "epoch_open": jnp.asarray(False),
        }

    def step(self, state, key, holdout_mean, train_mean, rows, n):
        dtype = holdout_mean.dtype
        t_scale, c_scale, r_scale = self.scales
        k_cmp, k_rel, k_thr, k_now = jax.random.split(key, 4)
        if self.redraw == "every_query":
            noisy_t = jnp.asarray(self.threshold, dtype) + self._draw(k_now, t_scale, dtype)
        else:
            noisy_t = state.aux["noisy_threshold"]
        gap = jnp.abs(holdout_mean - train_mean)
        hit = gap > noisy_t + self._draw(k_cmp, c_scale, dtype)
        released = holdout_mean + self._draw(k_rel, r_scale, dtype)
        if self.clip:
            released = jnp.clip(released, 0.0, 1.0)
        answer = jnp.where(hit, released, train_mean)
        new_t = jnp.where(
            hit,
            jnp.asarray(self.threshold, dtype) + self._draw(k_thr, t_scale, dtype),
            state.aux["noisy_threshold"],
        )
        aux = {"noisy_threshold": new_t, "epoch_open": ~hit}
        exhaust = False
        if self.budget is not None:
            exhaust = state.budget_used + hit.astype(jnp.int32) >= self.budget
        if self.max_queries is not None:
            exhaust = jnp.logical_or(exhaust, state.answered + 1 >= self.max_queries)
        noise = jnp.where(hit, r_scale, 0.0)
        return answer, noise, hit.astype(jnp.int32), aux, exhaust

    def ledger_terms(self, state, n):
        zero = jnp.zeros((), jnp.float32)
        default_scales = (
            self.threshold_scale is None
            and self.compare_scale is None
            and self.release_scale is None
        )
        if self.noise != "laplace" or self.redraw == "every_query" or not default_scales:
            # Gaussian noise, a fresh threshold per query, or custom (possibly zero) scales are
            # not covered by the pure-DP sparse-vector analysis: report "not accounted"
            return _unaccounted(state)
        # each epoch ended by a hit costs 1/(sigma n) (sparse vector) + 1/(sigma n) (release);
        # an open epoch has already paid its sparse-vector part
        epochs = 2.0 * state.budget_used.astype(jnp.float32) + state.aux["epoch_open"]
        return zero, epochs / (self.sigma * n), zero


def thresholdout(
    threshold: float,
    sigma: float,
    budget: int | None = None,
    *,
    noise: str = "laplace",
    redraw: str = "on_hit",
    threshold_scale: float | None = None,
    compare_scale: float | None = None,
    release_scale: float | None = None,
    max_queries: int | None = None,
    beta: float = 0.05,
    clip: bool = False,
) -> Thresholdout:
    """Thresholdout, the reusable holdout (Dwork et al. Science'15 / NeurIPS'15, spec §1.2).

    Answers from the training set unless ``|E_h[phi] - E_t[phi]| > T_hat + eta``; then it
    releases ``E_h[phi] + xi`` and spends one unit of budget. Noise (Laplace by default, as
    in the NeurIPS full version): threshold ``T_hat = T + gamma`` with ``gamma ~ Lap(2 sigma)``
    (re-drawn after every hit, or before every query with ``redraw="every_query"``),
    comparison ``eta ~ Lap(4 sigma)``, release ``xi ~ Lap(sigma)``; the three scales can be
    overridden (``*_scale``; 0 switches a noise off). Each hit costs ``2/(sigma n)`` of pure
    DP (basic composition), below-threshold answers are free.

    Args:
      threshold: T (``inf``: never consult the holdout -- returns the training answers).
      sigma: noise rate.
      budget: number of above-threshold events allowed (None: unlimited, as in Science).
      noise: ``"laplace"`` or ``"gaussian"`` (same scales used as standard deviations).
      redraw: ``"on_hit"`` (the paper) or ``"every_query"``.
      max_queries: optional cap on the number of queries (needed for a certificate).
      beta: certificate failure probability.
      clip: clip released values to [0, 1].

    Certificate: only for Laplace noise, default scales, a finite ``budget`` and
    ``max_queries``: the DP route of :func:`theorylab.adaptive.bounds.thresholdout_certificate`
    (derived here, not the paper's theorem, whose constants are impractical -- see
    :func:`theorylab.adaptive.bounds.thresholdout_theorem_parameters`). Otherwise ``inf``.
    """
    threshold = check_float(threshold, "threshold", allow_inf=True)
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0; got {threshold}")
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    if budget is not None:
        budget = check_int(budget, "budget", min_value=1)
    check_choice(noise, "noise", ("laplace", "gaussian"))
    check_choice(redraw, "redraw", ("on_hit", "every_query"))
    scales = {}
    for name, value in (
        ("threshold_scale", threshold_scale),
        ("compare_scale", compare_scale),
        ("release_scale", release_scale),
    ):
        scales[name] = None if value is None else check_float(value, name, min_value=0.0)
    if max_queries is not None:
        max_queries = check_int(max_queries, "max_queries", min_value=1)
    beta = check_float(
        beta, "beta", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )
    return Thresholdout(
        threshold=threshold,
        sigma=sigma,
        budget=budget,
        noise=noise,
        redraw=redraw,
        max_queries=max_queries,
        beta=beta,
        clip=bool(clip),
        **scales,
    )


def thresholdout_theorem(
    tau: float, max_queries: int, budget: int, beta: float = 0.05
) -> Thresholdout:
    """Thresholdout with the theorem's parameters (Dwork et al. NeurIPS'15 / Science'15).

    ``T = 3 tau / 4`` and ``sigma = tau / (96 ln(4 m / beta))``
    (:func:`theorylab.adaptive.bounds.thresholdout_theorem_parameters`), Laplace noise, the
    threshold re-drawn after every hit, at most ``budget`` hits and ``max_queries`` queries.
    The theorem then promises ``|a_i - P[phi_i]| < tau`` for every answer given before the
    training set has been wrong by ``tau/2`` on ``budget`` queries, once ``n`` exceeds a
    threshold of order ``ln(m/beta)/tau^2 * min(B, sqrt(B ...))`` whose constants make it
    ~10^8 for ``tau = 0.1, B = 100`` -- which is why practice uses
    :func:`thresholdout_science`. The certificate attached to each answer is our DP-route
    bound (:func:`theorylab.adaptive.bounds.thresholdout_certificate`), not the theorem's.
    """
    from theorylab.adaptive.bounds import thresholdout_theorem_parameters

    params = thresholdout_theorem_parameters(tau, max_queries, beta)
    return thresholdout(params.threshold, params.sigma, budget, max_queries=max_queries, beta=beta)


def thresholdout_science(n: int) -> Thresholdout:
    """Thresholdout exactly as in the Science'15 experiment's supplementary code.

    ``T = 4/sqrt(n)``, tolerance ``sigma = 1/sqrt(n)``, *Gaussian* noise: the comparison
    ``|E_h - E_t| > T + N(0, sigma^2)`` with fresh noise for every query (no separate threshold
    noise), release ``E_h + N(0, sigma^2)``, no budget. A heuristic: no certificate.
    """
    n = check_int(n, "n", min_value=1)
    s = 1.0 / math.sqrt(n)
    return Thresholdout(
        threshold=4.0 * s,
        sigma=s,
        budget=None,
        noise="gaussian",
        redraw="every_query",
        threshold_scale=0.0,
        compare_scale=s,
        release_scale=s,
    )


# ---------------------------------------------------------------------------------------------
# SparseValidate
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SparseValidate(Mechanism):
    level: float
    max_queries: int
    budget: int
    beta: float = 0.05

    @property
    def name(self) -> str:
        return "sparse_validate"

    def certificate(self, n):
        from theorylab.adaptive.bounds import sparse_validate_margin

        return sparse_validate_margin(n, self.max_queries, self.budget, self.beta), self.beta

    def step(self, state, key, holdout_mean, train_mean, rows, n):
        flagged = holdout_mean >= self.level
        answer = flagged.astype(holdout_mean.dtype)
        spent = flagged.astype(jnp.int32)
        exhaust = jnp.logical_or(
            state.budget_used + spent >= self.budget, state.answered + 1 >= self.max_queries
        )
        return answer, 0.0, spent, state.aux, exhaust

    def ledger_terms(self, state, n):
        zero = jnp.zeros((), jnp.float32)
        bits = state.budget_used.astype(jnp.float32) * math.log2(self.max_queries + 1)
        return zero, zero, bits


def sparse_validate(
    level: float, max_queries: int, budget: int, beta: float = 0.05
) -> SparseValidate:
    """SparseValidate (Dwork et al. NeurIPS'15, spec §1.3) for threshold tests of SQs.

    Query ``i`` is the validation procedure ``psi_i(S) = 1[E_S[phi_i] >= level]``, evaluated
    exactly; answers equal to 1 ("flagged") spend the budget, and the mechanism stops after
    ``budget`` ones or ``max_queries`` queries. The transcript is fixed by the positions of at
    most ``B`` ones, so (description length) every answered test is simultaneously within the
    margin ``theta = sqrt((B ln(m+1) + ln(2m/beta)) / (2n))`` of its population version:
    ``answer = 1`` certifies ``P[phi] >= level - theta``, ``answer = 0`` certifies
    ``P[phi] < level + theta`` (``halfwidth = theta``).
    """
    level = check_float(level, "level", min_value=0.0, max_value=1.0)
    max_queries = check_int(max_queries, "max_queries", min_value=1)
    budget = check_int(budget, "budget", min_value=1)
    beta = check_float(
        beta, "beta", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )
    return SparseValidate(level=level, max_queries=max_queries, budget=budget, beta=beta)


# ---------------------------------------------------------------------------------------------
# Ladder
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Ladder(Mechanism):
    step_size: float | None = None
    max_queries: int | None = None
    beta: float = 0.05

    @property
    def needs_rows(self) -> bool:  # the parameter-free Ladder needs per-row losses
        return self.step_size is None

    @property
    def name(self) -> str:
        return "ladder"

    def certificate(self, n):
        if self.step_size is None or self.max_queries is None:
            return math.inf, 1.0
        from theorylab.adaptive.bounds import ladder_epsilon

        eps = ladder_epsilon(n, self.max_queries, self.step_size, self.beta)
        return eps + self.step_size, self.beta

    def init_aux(self, key, n, dtype):
        aux = {"best": jnp.asarray(jnp.inf, dtype), "has_leader": jnp.asarray(False)}
        if self.step_size is None:
            aux["leader"] = jnp.zeros((n,), dtype)
        return aux

    def step(self, state, key, holdout_mean, train_mean, rows, n):
        best = state.aux["best"]
        if self.step_size is not None:
            eta = self.step_size
            accept = holdout_mean < best - eta
            new_best = jnp.where(accept, jnp.round(holdout_mean / eta) * eta, best)
            aux = {"best": new_best, "has_leader": state.aux["has_leader"] | accept}
        else:
            leader = state.aux["leader"]
            diff = jnp.where(state.aux["has_leader"], rows - leader, rows)
            s = jnp.std(diff)
            accept = holdout_mean < best - s / math.sqrt(n)
            aux = {
                "best": jnp.where(accept, holdout_mean, best),
                "has_leader": state.aux["has_leader"] | accept,
                "leader": jnp.where(accept, rows, leader),
            }
        exhaust = False if self.max_queries is None else state.answered + 1 >= self.max_queries
        return aux["best"], 0.0, accept.astype(jnp.int32), aux, exhaust

    def ledger_terms(self, state, n):
        zero = jnp.zeros((), jnp.float32)
        if self.step_size is None:  # releases exact losses: not accounted
            return _unaccounted(state)
        # each update releases a multiple of eta in [0, 1]: log2(1/eta + 1) bits
        bits = state.budget_used.astype(jnp.float32) * math.log2(1.0 / self.step_size + 1.0)
        return zero, zero, bits


def ladder(step: float | None = None, max_queries: int | None = None, beta: float = 0.05) -> Ladder:
    """The Ladder leaderboard (Blum & Hardt ICML'15, spec §1.4). Queries are per-row losses.

    The answer is the published score: the holdout loss of a submission when it beats the
    current best by a margin, else the current best. ``step=eta``: fixed-step Ladder (accept
    if ``R_S(f) < R - eta``, publish ``R_S(f)`` rounded to a multiple of ``eta``); with
    ``max_queries`` it certifies the running minimum: ``min_i R_D(f_i) - R_t <= eps + eta``
    (Thm 3.1, :func:`theorylab.adaptive.bounds.ladder_epsilon`) -- a statement about the
    best submission, not each one. ``step=None``: the parameter-free Ladder the authors
    deploy (accept if the loss drops by more than the paired standard error
    ``std(l_new - l_leader)/sqrt(n)``; needs per-row losses); no certificate.
    """
    if step is not None:
        step = check_float(step, "step", min_value=0.0, max_value=1.0, min_inclusive=False)
    if max_queries is not None:
        max_queries = check_int(max_queries, "max_queries", min_value=1)
    beta = check_float(
        beta, "beta", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )
    return Ladder(step_size=step, max_queries=max_queries, beta=beta)


# ---------------------------------------------------------------------------------------------
# Guess-and-Check
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GuessAndCheck(Mechanism):
    tau: float
    beta: float = 0.05
    guess_sigma: float = 0.0

    needs_train = True

    @property
    def name(self) -> str:
        return "guess_and_check"

    def certificate(self, n):
        return self.tau, self.beta  # per-answer beta_i is reported by step

    def init_aux(self, key, n, dtype):
        return {"log_gamma_sum": jnp.zeros((), jnp.float32), "beta_i": jnp.zeros((), jnp.float32)}

    def query_beta(self, state):
        """beta_i = beta w(i) w(f) / N(i, f) (Rogers et al. AISTATS'20), in log space."""
        i = state.count.astype(jnp.float32)
        f = state.budget_used.astype(jnp.float32)
        log_w = lambda x: -2.0 * jnp.log1p(x) - math.log(math.pi**2 / 6.0)  # noqa: E731
        log_choose = gammaln(i + 1.0) - gammaln(f + 1.0) - gammaln(i - f + 1.0)
        log_b = math.log(self.beta) + log_w(i) + log_w(f) - log_choose - state.aux["log_gamma_sum"]
        return jnp.exp(log_b), log_b

    def step(self, state, key, holdout_mean, train_mean, rows, n):
        dtype = holdout_mean.dtype
        guess = train_mean
        if self.guess_sigma > 0:
            guess = guess + _normal(key, self.guess_sigma, dtype)
        beta_i, log_b = self.query_beta(state)
        width = jnp.sqrt((math.log(2.0) - log_b) / (2.0 * n))
        ok = jnp.abs(guess - holdout_mean) <= self.tau - width
        gamma = self.tau - width
        halt = jnp.logical_and(~ok, gamma <= 0)
        safe_gamma = jnp.where(gamma > 0, gamma, 1.0)
        # a failure releases k * gamma, k = round(E_h / gamma) in {0, ..., round(1/gamma)},
        # clipped to [0, 1] (clipping moves towards E_h): round(1/gamma) + 1 possible values
        rounded = jnp.clip(jnp.round(holdout_mean / safe_gamma) * safe_gamma, 0.0, 1.0)
        answer = jnp.where(ok, guess, rounded)
        failed = jnp.logical_and(~ok, ~halt)
        aux = {
            "log_gamma_sum": state.aux["log_gamma_sum"]
            + jnp.where(failed, jnp.log(jnp.round(1.0 / safe_gamma) + 1.0), 0.0),
            "beta_i": beta_i,
        }
        # a halting query is not answered: signal exhaustion *before* the answer
        answer = jnp.where(halt, jnp.nan, answer)
        return answer, 0.0, failed.astype(jnp.int32), aux, halt

    def ledger_terms(self, state, n):
        zero = jnp.zeros((), jnp.float32)
        # transcript = failure positions + grid values: log2 C(i, f) + sum log2 (#grid values)
        i = state.count.astype(jnp.float32)
        f = state.budget_used.astype(jnp.float32)
        log_choose = gammaln(i + 1.0) - gammaln(f + 1.0) - gammaln(i - f + 1.0)
        bits = (log_choose + state.aux["log_gamma_sum"]) / math.log(2.0)
        return zero, zero, bits


def guess_and_check(tau: float, beta: float = 0.05, guess_sigma: float = 0.0) -> GuessAndCheck:
    """Guess-and-Check (Rogers, Roth, Smith, Srebro, Thakkar, Woodworth AISTATS'20, §1.6).

    The guess is the training-set answer (plus optional ``N(0, guess_sigma^2)`` noise). Query
    ``i`` after ``f`` failures gets the failure probability ``beta_i = beta w(i) w(f) / N``
    (``w(x) = 6/(pi^2 (x+1)^2)``, ``N = C(i, f) prod_j (round(1/gamma_j) + 1)`` counts the
    possible transcripts) and the holdout width ``c_i = sqrt(ln(2/beta_i)/(2n))`` (Hoeffding;
    the authors use an exact-MGF bound, slightly tighter -- documented deviation). If
    ``|guess - E_h| <= tau - c_i`` the guess is released; else ("failure") ``E_h`` rounded to
    the grid ``gamma = tau - c_i`` and clipped to [0, 1] is released; that grid has
    ``round(1/gamma) + 1`` values on [0, 1] (the authors' code counts ``ceil(1/gamma)``, one
    too few for some gamma, e.g. 4 values for gamma = 0.35 -- corrected here). Either way
    ``|answer - P[phi]| <= tau`` except with probability ``beta_i`` (``sum_i beta_i <= beta``).
    When ``gamma <= 0`` the mechanism halts (exhausted).
    """
    tau = check_float(tau, "tau", min_value=0.0, max_value=1.0, min_inclusive=False)
    beta = check_float(
        beta, "beta", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )
    guess_sigma = check_float(guess_sigma, "guess_sigma", min_value=0.0)
    return GuessAndCheck(tau=tau, beta=beta, guess_sigma=guess_sigma)


# ---------------------------------------------------------------------------------------------
# Running a mechanism
# ---------------------------------------------------------------------------------------------


def _check_mechanism(mechanism) -> Mechanism:
    if not isinstance(mechanism, Mechanism):
        raise TypeError(
            "mechanism must be a theorylab.adaptive mechanism (e.g. mechanisms.gaussian(...)); "
            f"got {type(mechanism).__name__}"
        )
    return mechanism


def init_mechanism(mechanism: Mechanism, key, n: int, dtype=jnp.float32) -> MechState:
    """Initial state of ``mechanism`` for a holdout of ``n`` rows.

    Host-side work (the certificate constants) depends only on ``mechanism`` and ``n``;
    the key may be traced, so ``jax.vmap(lambda k: init_mechanism(mech, k, n))(keys)`` gives
    one independent state per seed.
    """
    _check_mechanism(mechanism)
    n = check_int(n, "n", min_value=1)
    if not isinstance(key, jax.core.Tracer):  # under vmap/jit the key is traced
        check_key(key)
    max_q = mechanism.max_queries_or_none()
    if isinstance(mechanism, SampleSplit) and n < max_q:
        raise ValueError(
            f"n must be >= max_queries for sample splitting (one row per query at least); "
            f"got n={n}, max_queries={max_q}"
        )
    halfwidth, beta = mechanism.certificate(n)
    base, aux_key = jax.random.split(key)
    return MechState(
        key=base,
        count=jnp.zeros((), jnp.int32),
        answered=jnp.zeros((), jnp.int32),
        budget_used=jnp.zeros((), jnp.int32),
        exhausted=jnp.zeros((), bool),
        halfwidth=jnp.asarray(halfwidth, jnp.float32),
        beta=jnp.asarray(beta, jnp.float32),
        aux=mechanism.init_aux(aux_key, n, dtype),
        size_marker=jnp.zeros((n, 0), bool),
    )


def _one_query(mechanism: Mechanism, n: int, state: MechState, holdout_mean, train_mean, rows):
    """Answer one query; enforces exhaustion/validity semantics around ``mechanism.step``."""
    key = jax.random.fold_in(state.key, state.count)
    valid = jnp.isfinite(holdout_mean) & jnp.isfinite(train_mean)
    if rows is not None:
        valid = valid & jnp.all(jnp.isfinite(rows))
    live = valid & ~state.exhausted
    # feed harmless values when the query is invalid so no NaN leaks into the state
    h = jnp.where(valid, holdout_mean, 0.5)
    t = jnp.where(valid, train_mean, 0.5)
    r = None if rows is None else jnp.where(valid, rows, 0.5)
    answer, noise, spent, aux, exhaust_now = mechanism.step(state, key, h, t, r, n)
    answer = jnp.asarray(answer, holdout_mean.dtype)
    if isinstance(mechanism, GuessAndCheck):
        answered = live & jnp.isfinite(answer)
        beta = aux["beta_i"]
    else:
        answered = live
        beta = state.beta
    keep = lambda new, old: jnp.where(live, new, old)  # noqa: E731
    new_aux = jax.tree_util.tree_map(keep, aux, state.aux)
    budget_used = keep(state.budget_used + spent, state.budget_used)
    new_state = state._replace(
        count=state.count + 1,
        answered=state.answered + answered.astype(jnp.int32),
        budget_used=budget_used,
        exhausted=state.exhausted | (live & jnp.asarray(exhaust_now)),
        aux=new_aux,
    )
    cert = Certificate(
        answered=answered,
        halfwidth=jnp.where(answered, state.halfwidth, jnp.inf),
        beta=jnp.where(answered, beta, 1.0),
        index=state.count,
        noise_scale=jnp.where(answered, jnp.asarray(noise, jnp.float32), 0.0),
        budget_used=budget_used,
        method=jnp.asarray(METHOD_CODES[mechanism.name], jnp.int32),
    )
    out = jnp.where(answered, answer, jnp.nan)
    return out, cert, new_state


def _scan_queries(mechanism, n, state, holdout_means, train_means, rows):
    def body(st, xs):
        h, t, r = xs
        out, cert, st = _one_query(mechanism, n, st, h, t, r)
        return st, (out, cert)

    state, (answers, certs) = jax.lax.scan(body, state, (holdout_means, train_means, rows))
    return answers, certs, state


# compiled once per (mechanism, n, shapes); inlined when called inside a user's jit
_scan_queries_jit = jax.jit(_scan_queries, static_argnums=(0, 1))


def _validate_means(values, name, q=None):
    if isinstance(values, jax.core.Tracer):
        return values
    arr = check_array(values, name, ndim=1, kind="real")
    if q is not None and arr.shape[0] != q:
        raise ValueError(f"{name} must have {q} entries (one per query); got {arr.shape[0]}")
    return arr


def _train_or_dummy(mechanism, holdout_means, train_means):
    if train_means is None:
        if mechanism.needs_train:
            raise ValueError(
                f"train_means is required by the {mechanism.name} mechanism (it answers from a "
                "training set); got None"
            )
        return jnp.zeros_like(holdout_means)
    return _validate_means(train_means, "train_means", holdout_means.shape[0]).astype(
        holdout_means.dtype
    )


def answer_means(mechanism: Mechanism, state: MechState, holdout_means, train_means=None):
    """Answer a batch of ``q`` queries given their holdout (and training) means, in order.

    Equivalent, bit for bit, to submitting the queries one at a time. jit-able with
    ``mechanism`` static; ``vmap`` over a batch of states/means for many seeds.

    Args:
      mechanism: a mechanism without ``needs_rows`` (use :func:`answer_rows` otherwise).
      state: its :class:`MechState`.
      holdout_means: ``[q]`` empirical holdout means ``E_S[phi_i]`` in [0, 1].
      train_means: ``[q]`` training means (Thresholdout, Guess-and-Check), else None.

    Returns:
      ``(answers [q], Certificate of [q] arrays, new state)``; unanswered entries are NaN.
    """
    _check_mechanism(mechanism)
    if mechanism.needs_rows:
        raise ValueError(
            f"the {mechanism.name} mechanism needs per-row values: call answer_rows(mechanism, "
            "state, holdout_rows) instead of answer_means"
        )
    holdout_means = _validate_means(holdout_means, "holdout_means")
    train_means = _train_or_dummy(mechanism, holdout_means, train_means)
    n = _state_n(mechanism, state)
    return _scan_queries_jit(mechanism, n, state, holdout_means, train_means, None)


def answer_rows(mechanism: Mechanism, state: MechState, holdout_rows, train_means=None):
    """Answer ``q`` queries given their per-row holdout values ``[q, n]`` (in [0, 1]).

    Needed by sample splitting (each query reads its own chunk) and the parameter-free
    Ladder (paired standard deviation of per-row losses); works for every mechanism.
    """
    _check_mechanism(mechanism)
    if not isinstance(holdout_rows, jax.core.Tracer):
        holdout_rows = check_array(holdout_rows, "holdout_rows", ndim=2, kind="real")
    holdout_rows = jnp.asarray(holdout_rows)
    if not jnp.issubdtype(holdout_rows.dtype, jnp.floating):
        holdout_rows = holdout_rows.astype(jnp.float32)
    n = holdout_rows.shape[1]
    expected = _state_n(mechanism, state)
    if expected is not None and expected != n:
        raise ValueError(
            f"holdout_rows must have {expected} columns (the n the state was initialised "
            f"with); got {n}"
        )
    holdout_means = jnp.mean(holdout_rows, axis=1)
    train_means = _train_or_dummy(mechanism, holdout_means, train_means)
    return _scan_queries_jit(mechanism, n, state, holdout_means, train_means, holdout_rows)


def _state_n(mechanism, state):
    if not isinstance(state, MechState):
        raise TypeError(
            f"state must be a MechState from init_mechanism; got {type(state).__name__}"
        )
    return state.n


def ledger(mechanism: Mechanism, state: MechState) -> Ledger:
    """The :class:`Ledger` of a mechanism state (what has been spent so far)."""
    _check_mechanism(mechanism)
    n = _state_n(mechanism, state)
    rho, eps, bits = mechanism.ledger_terms(state, n)
    budget = mechanism.budget_or_none()
    if isinstance(mechanism, (LaplaceMechanism, GaussianMechanism, SampleSplit)):
        budget = mechanism.max_queries
        used = state.answered
    else:
        used = state.budget_used
    left = jnp.inf if budget is None else jnp.maximum(budget - used, 0).astype(jnp.float32)
    return Ledger(
        queries=state.count,
        answered=state.answered,
        budget_used=used,
        budget_left=jnp.asarray(left, jnp.float32),
        exhausted=state.exhausted,
        rho=rho,
        epsilon=eps,
        bits=bits,
    )
