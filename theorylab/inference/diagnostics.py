"""MCMC convergence diagnostics: split-R̂, rank-normalized R̂, bulk/tail ESS and MCSE.

Follows Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization, folding,
and localization: an improved R̂ for assessing convergence of MCMC", *Bayesian Analysis*
16(2):667–718, and the estimators of Stan (``stan/analyze/mcmc``) and the R package
``posterior``:

* :func:`split_rhat` — classic split-R̂ (Gelman et al. BDA3 §11.4) on the raw draws.
* :func:`rank_normalized_split_rhat` — ``max(R̂_bulk, R̂_tail)``: split-R̂ of the
  rank-normalized draws and of the rank-normalized *folded* draws ``|x − median(x)|``
  (Vehtari et al. 2021, eq. 14 and §4.2). Folding makes chains that differ only in scale
  visible.
* :func:`ess_basic` — Geyer's (1992) initial-monotone-sequence estimator of the integrated
  autocorrelation time on split chains, with autocovariances computed by FFT and chains
  combined through the multi-chain variance estimate ``var⁺`` as in Stan (BDA3 eq. 11.7;
  Vehtari et al. 2021 §3.2). The estimate is capped below at ``τ ≥ 1/log10(S)`` as in Stan,
  which bounds the ESS of antithetic chains by ``S·log10(S)``.
* :func:`ess_bulk` — :func:`ess_basic` of the rank-normalized split chains.
* :func:`ess_tail` — ``min`` of the ESS of the indicators ``I(x ≤ q₀.₀₅)`` and
  ``I(x ≤ q₀.₉₅)`` (Vehtari et al. 2021 §4.3).
* :func:`mcse_mean` — Monte-Carlo standard error of the mean, ``sd / sqrt(ess_basic)``.
* :func:`summary` — all of the above for every leaf of a pytree of draws.

Shapes: every function takes ``chains`` of shape ``[num_chains, num_draws]`` or
``[num_chains, num_draws, *event]`` and returns one value per trailing component, as a
``numpy`` array of shape ``event`` (a NumPy scalar when ``event == ()``). Split chains use the
first and last ``num_draws // 2`` draws of each chain (the middle draw of an odd-length chain is
dropped, as in ``posterior``/ArviZ), so at least 4 draws per chain are required.

Implementation: NumPy/SciPy on the host. These are post-processing routines (a handful of
FFTs and sorts per component), not hot paths, and they need data-dependent loops (Geyer's
truncation) that are clumsy under ``jit``. JAX arrays are accepted and copied to the host.
Computations run in float64 regardless of ``jax_enable_x64``.

A component whose draws are all identical has undefined R̂ and ESS: NaN is returned for it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np
from scipy import fft as sp_fft
from scipy import stats

from theorylab.core.checks import check_array, check_choice, describe

__all__ = [
    "VariableSummary",
    "autocovariance",
    "ess_basic",
    "ess_bulk",
    "ess_tail",
    "mcse_mean",
    "rank_normalize",
    "rank_normalized_split_rhat",
    "split_chains",
    "split_rhat",
    "summary",
]

_MIN_HALF = 2  # draws per split half


# --------------------------------------------------------------------------- input handling


def _as_components(chains: Any, name: str = "chains") -> tuple[np.ndarray, tuple[int, ...]]:
    """Validate ``chains`` and return it as float64 ``[K, num_chains, num_draws]`` + event shape."""
    arr = check_array(chains, name, kind="real", to_jax=False)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must have shape [num_chains, num_draws, *event] (at least 2-dimensional); "
            f"got {describe(arr)}"
        )
    num_chains, num_draws = arr.shape[:2]
    if num_chains < 1:
        raise ValueError(f"{name} must contain at least one chain; got {describe(arr)}")
    if num_draws // 2 < _MIN_HALF:
        raise ValueError(
            f"{name} must have at least {2 * _MIN_HALF} draws per chain so that each split "
            f"half has >= {_MIN_HALF} draws; got {num_draws} draws (shape {arr.shape})"
        )
    if not np.all(np.isfinite(arr)):
        n_nan = int(np.sum(np.isnan(arr)))
        n_inf = int(np.sum(np.isinf(arr)))
        raise ValueError(
            f"{name} must contain only finite values; got {n_nan} NaN and {n_inf} inf entries "
            f"in an array of shape {arr.shape}"
        )
    event = arr.shape[2:]
    flat = arr.reshape(num_chains, num_draws, -1)
    return np.moveaxis(flat, -1, 0), event


def _finish(values: np.ndarray, event: tuple[int, ...]):
    """Reshape per-component results to ``event`` (a NumPy scalar for scalar events)."""
    return np.asarray(values, dtype=np.float64).reshape(event)[()]


def _constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x.flat[0]))


# --------------------------------------------------------------------------- building blocks


def split_chains(x: np.ndarray) -> np.ndarray:
    """``[..., m, n] → [..., 2m, n // 2]``: first and last halves of every chain."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., x.shape[-1] - half :]], axis=-2)


def rank_normalize(x: np.ndarray) -> np.ndarray:
    """Rank-normalize draws pooled over all chains (Vehtari et al. 2021, eq. 14).

    ``z = Φ⁻¹((r − 3/8) / (S + 1/4))`` with ``r`` the average rank of each draw among all ``S``
    draws of the ``[m, n]`` array (Blom's offset).
    """
    x = np.asarray(x, dtype=np.float64)
    ranks = stats.rankdata(x, method="average", axis=None).reshape(x.shape)
    return stats.norm.ppf((ranks - 0.375) / (x.size + 0.25))


def autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance ``γ̂_t = (1/n) Σ_{i<n−t} (x_i − x̄)(x_{i+t} − x̄)`` along the last
    axis, computed by FFT with zero padding to ``≥ 2n`` (no circular wrap-around)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    size = sp_fft.next_fast_len(2 * n, real=True)
    centered = x - x.mean(axis=-1, keepdims=True)
    spec = sp_fft.rfft(centered, n=size, axis=-1)
    acov = sp_fft.irfft(spec * np.conjugate(spec), n=size, axis=-1)[..., :n]
    return acov / n


def _rhat_2d(x: np.ndarray) -> float:
    """Classic R̂ of an ``[m, n]`` array (BDA3 eq. 11.3–11.4, no splitting here)."""
    if _constant(x):
        return np.nan
    _, n = x.shape
    within = np.mean(np.var(x, axis=1, ddof=1))
    between_over_n = np.var(np.mean(x, axis=1), ddof=1) if x.shape[0] > 1 else 0.0
    var_plus = (n - 1) / n * within + between_over_n
    if within == 0.0:
        return np.inf
    return float(np.sqrt(var_plus / within))


def _ess_2d(x: np.ndarray) -> float:
    """Stan's multi-chain ESS of an ``[m, n]`` array (no splitting here).

    Port of ``stan::analyze::compute_effective_sample_size``: autocorrelations
    ``ρ̂_t = 1 − (W − mean_chains γ̂_t) / var⁺``, Geyer's initial positive sequence truncated at
    the first negative pair sum ``ρ̂_{2k} + ρ̂_{2k+1}``, then made monotone, and
    ``τ̂ = −1 + 2 Σ ρ̂_t (+ last positive even term)``, ``ESS = m n / max(τ̂, 1/log10(m n))``.
    """
    if _constant(x):
        return np.nan
    m, n = x.shape
    acov = autocovariance(x)  # [m, n]
    mean_acov = acov.mean(axis=0)
    within = mean_acov[0] * n / (n - 1.0)  # W: mean of the chains' unbiased variances
    var_plus = within * (n - 1.0) / n
    if m > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    if var_plus <= 0.0:
        return np.nan
    rho = 1.0 - (within - mean_acov) / var_plus  # rho[0] == 1 up to rounding
    rho_hat = np.zeros(n)
    rho_even, rho_odd = 1.0, rho[1]
    rho_hat[0], rho_hat[1] = rho_even, rho_odd
    # Geyer's initial positive sequence.
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0.0:
        rho_even, rho_odd = rho[t + 1], rho[t + 2]
        if rho_even + rho_odd >= 0.0:
            rho_hat[t + 1], rho_hat[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0.0:  # the last even autocorrelation improves the estimate (Stan)
        rho_hat[max_t + 1] = rho_even
    # Geyer's initial monotone sequence: pair sums must not increase.
    t = 1
    while t <= max_t - 2:
        prev = rho_hat[t - 1] + rho_hat[t]
        if rho_hat[t + 1] + rho_hat[t + 2] > prev:
            rho_hat[t + 1] = rho_hat[t + 2] = prev / 2.0
        t += 2
    total = m * n
    tau = -1.0 + 2.0 * np.sum(rho_hat[: max_t + 1]) + rho_hat[max_t + 1]
    tau = max(tau, 1.0 / np.log10(total))
    return float(total / tau)


def _per_component(fn, comps: np.ndarray) -> np.ndarray:
    return np.array([fn(c) for c in comps], dtype=np.float64)


def _bulk_component(c: np.ndarray) -> np.ndarray:
    s = split_chains(c)
    return s if _constant(s) else rank_normalize(s)


def _folded_component(c: np.ndarray) -> np.ndarray:
    folded = np.abs(c - np.median(c))
    s = split_chains(folded)
    return s if _constant(s) else rank_normalize(s)


# --------------------------------------------------------------------------- public API


def split_rhat(chains: Any):
    """Classic split-R̂ of the raw draws (Gelman et al., BDA3 §11.4).

    Each chain is split in halves; with ``W`` the mean within-half variance and ``B/n`` the
    variance of the half means, ``R̂ = sqrt(((n−1)/n · W + B/n) / W)``.

    Args:
      chains: draws of shape ``[num_chains, num_draws, *event]`` (``num_draws ≥ 4``, finite).

    Returns:
      R̂ per component (shape ``event``; NaN for constant components).
    """
    comps, event = _as_components(chains)
    return _finish(_per_component(lambda c: _rhat_2d(split_chains(c)), comps), event)


def rank_normalized_split_rhat(chains: Any, *, kind: str = "max"):
    """Rank-normalized split-R̂ ``max(R̂_bulk, R̂_tail)`` (Vehtari et al. 2021, §4.2).

    ``R̂_bulk`` is split-R̂ of the rank-normalized draws (robust to heavy tails, exactly
    invariant under strictly increasing transforms); ``R̂_tail`` is split-R̂ of the
    rank-normalized folded draws ``|x − median(x)|``, which detects chains with equal location
    but different scales (folding does not commute with non-affine transforms, so the maximum
    is only invariant under increasing affine maps). Vehtari et al. recommend using the draws
    only when the maximum is below 1.01.

    Args:
      chains: draws of shape ``[num_chains, num_draws, *event]`` (``num_draws ≥ 4``, finite).
      kind: ``"max"`` (default, the recommended diagnostic), ``"bulk"`` or ``"tail"``.

    Returns:
      R̂ per component (shape ``event``; NaN for constant components).
    """
    check_choice(kind, "kind", ("max", "bulk", "tail"))
    comps, event = _as_components(chains)

    def one(c):
        bulk = _rhat_2d(_bulk_component(c)) if kind != "tail" else -np.inf
        tail = _rhat_2d(_folded_component(c)) if kind != "bulk" else -np.inf
        return float(np.fmax(bulk, tail))  # NaN only when both are

    return _finish(_per_component(one, comps), event)


def ess_basic(chains: Any, *, split: bool = True):
    """Effective sample size of the mean (Geyer's initial monotone sequence, Stan's estimator).

    Autocovariances per chain by FFT; the autocorrelation at lag ``t`` combines chains as
    ``ρ̂_t = 1 − (W − mean_c γ̂_{c,t}) / var⁺`` (Vehtari et al. 2021, eq. 10), so that
    between-chain disagreement lowers the ESS. For a stationary AR(1) chain
    ``x_t = φ x_{t−1} + sqrt(1 − φ²) ε_t`` the target is ``S (1 − φ) / (1 + φ)``.

    Args:
      chains: draws of shape ``[num_chains, num_draws, *event]`` (``num_draws ≥ 4``, finite).
      split: split the chains in halves first (default, as ``posterior::ess_basic``).

    Returns:
      ESS per component (shape ``event``; NaN for constant components).
    """
    comps, event = _as_components(chains)
    prep = split_chains if split else (lambda c: c)
    return _finish(_per_component(lambda c: _ess_2d(prep(c)), comps), event)


def ess_bulk(chains: Any):
    """Bulk ESS: :func:`ess_basic` of the rank-normalized split chains (Vehtari et al. 2021,
    §4.1). Invariant under monotone transforms and well defined for heavy tails.

    Args:
      chains: draws of shape ``[num_chains, num_draws, *event]`` (``num_draws ≥ 4``, finite).

    Returns:
      ESS per component (shape ``event``; NaN for constant components).
    """
    comps, event = _as_components(chains)
    return _finish(_per_component(lambda c: _ess_2d(_bulk_component(c)), comps), event)


def ess_tail(chains: Any):
    """Tail ESS: ``min`` of the ESS of ``I(x ≤ q₀.₀₅)`` and ``I(x ≤ q₀.₉₅)`` (Vehtari et al.
    2021, §4.3), with the quantiles of the pooled draws; reliability of 5 % / 95 % intervals.

    Args:
      chains: draws of shape ``[num_chains, num_draws, *event]`` (``num_draws ≥ 4``, finite).

    Returns:
      ESS per component (shape ``event``; NaN for constant components).
    """
    comps, event = _as_components(chains)

    def one(c):
        if _constant(c):
            return np.nan
        values = []
        for prob in (0.05, 0.95):
            indicator = (c <= np.quantile(c, prob)).astype(np.float64)
            values.append(_ess_2d(split_chains(indicator)))
        return float(np.nanmin(values)) if not np.all(np.isnan(values)) else np.nan

    return _finish(_per_component(one, comps), event)


def mcse_mean(chains: Any):
    """Monte-Carlo standard error of the posterior mean, ``sd / sqrt(ess_basic)``.

    ``sd`` is the standard deviation of all draws pooled (``ddof=1``).

    Args:
      chains: draws of shape ``[num_chains, num_draws, *event]`` (``num_draws ≥ 4``, finite).

    Returns:
      MCSE per component (shape ``event``; NaN for constant components).
    """
    comps, event = _as_components(chains)

    def one(c):
        ess = _ess_2d(split_chains(c))
        return np.std(c, ddof=1) / np.sqrt(ess)

    return _finish(_per_component(one, comps), event)


class VariableSummary(NamedTuple):
    """Posterior summary of one variable (every field has the variable's event shape).

    Attributes:
      mean: mean of all draws.
      sd: standard deviation of all draws (``ddof=1``).
      mcse: :func:`mcse_mean`.
      ess_bulk: :func:`ess_bulk`.
      ess_tail: :func:`ess_tail`.
      rhat: :func:`rank_normalized_split_rhat`.
    """

    mean: Any
    sd: Any
    mcse: Any
    ess_bulk: Any
    ess_tail: Any
    rhat: Any


def _path_name(path) -> str:
    parts = []
    for entry in path:
        if isinstance(entry, jax.tree_util.DictKey):
            parts.append(str(entry.key))
        elif isinstance(entry, jax.tree_util.SequenceKey):
            parts.append(str(entry.idx))
        elif isinstance(entry, jax.tree_util.GetAttrKey):
            parts.append(entry.name)
        elif isinstance(entry, jax.tree_util.FlattenedIndexKey):
            parts.append(str(entry.key))
        else:
            parts.append(str(entry))
    return "/".join(parts)


def summary(chains_pytree: Any) -> dict[str, VariableSummary]:
    """Summaries of every leaf of a pytree of draws.

    Args:
      chains_pytree: a pytree (dict, tuple, NamedTuple, ...) whose leaves are arrays of shape
        ``[num_chains, num_draws, *event]`` (as produced by ``vmap`` over chains of a
        ``lax.scan`` over draws, after moving axes), or a single such array.

    Returns:
      ``{name: VariableSummary}`` in leaf order; names join the pytree path with ``/``
      (``{"a": {"b": x}}`` → ``"a/b"``, ``(x, y)`` → ``"0"``, ``"1"``); a bare array is named
      ``"x"``.
    """
    leaves = jax.tree_util.tree_flatten_with_path(chains_pytree)[0]
    if not leaves:
        raise ValueError(
            f"chains_pytree must contain at least one array; got {describe(chains_pytree)}"
        )
    out: dict[str, VariableSummary] = {}
    for path, leaf in leaves:
        name = _path_name(path) or "x"
        label = f"chains_pytree[{name!r}]"
        comps, event = _as_components(leaf, label)
        pooled = comps.reshape(comps.shape[0], -1)
        out[name] = VariableSummary(
            mean=_finish(pooled.mean(axis=1), event),
            sd=_finish(pooled.std(axis=1, ddof=1), event),
            mcse=mcse_mean(leaf),
            ess_bulk=ess_bulk(leaf),
            ess_tail=ess_tail(leaf),
            rhat=rank_normalized_split_rhat(leaf),
        )
    return out
