"""Host-side bounds of adaptive data analysis (NumPy/SciPy, float64, Python floats out).

Closed forms and small numerical optimisations used by the mechanisms of
``theorylab.adaptive`` to compute certificates at construction time, and by tests and
figures. Nothing here touches JAX: every function takes Python/NumPy scalars, validates them
at the boundary (``ValueError``/``TypeError`` naming the argument) and returns a Python
``float``/``int``/``bool`` or a small ``NamedTuple``.

Notation (spec ``adaptive.md`` §1.0): the holdout has ``n`` rows, ``m`` statistical queries
φ: X → [0, 1] are asked adaptively, ``beta`` is the total failure probability and a *width*
is a bound on max_i |a_i − P[φ_i]| (population accuracy) or on max_i |a_i − E_S[φ_i]|
(sample accuracy) that holds with probability ≥ 1 − beta.

Certificates for the noise mechanisms combine three ingredients:

1. *sample accuracy* of the noise (a Gaussian/Laplace tail plus a union bound over answers);
2. *privacy* of the whole interaction (zCDP or basic/advanced composition);
3. the *transfer theorem* of Jung, Ligett, Neel, Roth, Sharifi-Malvajerdi and Shenfeld
   (ITCS'20): an (ε, δ)-DP, (α, β_s)-sample-accurate mechanism is
   (α + (e^ε − 1) + c + 2δ/c, β_s/c)-accurate on the population for every c > 0.

The certificates put β_s = beta·c so that the population statement holds with probability
≥ 1 − beta, and minimise the width numerically over c (and δ, and the noise scale in
``gaussian_optimal``). The optimisation is deterministic (a log-spaced grid followed by a
bounded Nelder–Mead refinement), so the same inputs always give the same certificate.

Widths are returned unclipped: a width ≥ 1 is a valid but vacuous certificate for [0, 1]
queries (spec §1.1 prints those as ">1").
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import optimize, special, stats

from theorylab.core.checks import check_choice, check_float, check_int

__all__ = [
    "DFHPRRConditions",
    "ThresholdoutParameters",
    "TransferCertificate",
    "correlation_attack_accuracy",
    "dfhprr_transfer_conditions",
    "gaussian_certificate",
    "gaussian_optimal",
    "gaussian_rho",
    "guess_and_check_beta",
    "guess_and_check_grid",
    "hoeffding_width",
    "jung_transfer",
    "ladder_epsilon",
    "ladder_tail_bound",
    "laplace_certificate",
    "laplace_epsilon",
    "max_information_bits",
    "max_information_dp",
    "pmw_max_updates",
    "sparse_validate_margin",
    "split_width",
    "thresholdout_certificate",
    "thresholdout_epsilon",
    "thresholdout_theorem_parameters",
    "zcdp_to_dp",
]

# exp(x) overflows float64 above ~709.78; larger privacy losses give a vacuous (inf) width.
_MAX_EXP = 700.0
# Search boxes (natural logs) for the transfer-theorem free parameters c and δ.
_LOG_C_RANGE = (math.log(1e-15), math.log1p(-1e-12))
_LOG_DELTA_RANGE = (-700.0, math.log1p(-1e-12))
# Search box for the Gaussian noise scale in ``gaussian_optimal``.
_LOG_SIGMA_RANGE = (math.log(1e-8), math.log(10.0))


# ----------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------


def _n(n, name: str = "n") -> int:
    return check_int(n, name, min_value=1)


def _prob(beta, name: str = "beta") -> float:
    return check_float(
        beta, name, min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )


def _pos(x, name: str) -> float:
    return check_float(x, name, min_value=0.0, min_inclusive=False)


def _nonneg(x, name: str) -> float:
    return check_float(x, name, min_value=0.0)


def _expm1(x):
    """``e^x − 1`` that returns inf instead of overflowing (scalars or arrays)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.where(x > _MAX_EXP, np.inf, np.expm1(np.minimum(x, _MAX_EXP)))
    return out if out.ndim else float(out)


# ----------------------------------------------------------------------------------------
# Baselines: non-adaptive and sample splitting (spec §1.0)
# ----------------------------------------------------------------------------------------


def hoeffding_width(n, m, beta) -> float:
    """Non-adaptive baseline: Hoeffding plus a union bound over ``m`` fixed queries.

    τ = √(ln(2m/β) / (2n)), spec §1.0 "Non-adaptive". Valid only when the queries do not
    depend on the sample (or on each other's answers).

    Args:
      n: holdout size (int ≥ 1).
      m: number of queries (int ≥ 1).
      beta: total failure probability in (0, 1).

    Returns:
      the half-width τ as a float (may exceed 1 when vacuous).
    """
    n, m, beta = _n(n), _n(m, "m"), _prob(beta)
    return math.sqrt(math.log(2.0 * m / beta) / (2.0 * n))


def _log_kl_terms(p, t, k):
    """log[exp(−k·KL(p+t‖p)) + exp(−k·KL(p−t‖p))] for a vector of p (binary KL).

    Terms with p ± t outside [0, 1] are 0 (log −inf).
    """
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = p + t
        lo = p - t
        kl_up = special.rel_entr(up, p) + special.rel_entr(1.0 - up, 1.0 - p)
        kl_lo = special.rel_entr(lo, p) + special.rel_entr(1.0 - lo, 1.0 - p)
        # rel_entr is inf where the KL is infinite; round-off can push 1-up slightly negative.
        kl_up = np.where((up <= 1.0) & np.isfinite(kl_up), kl_up, np.inf)
        kl_lo = np.where((lo >= 0.0) & np.isfinite(kl_lo), kl_lo, np.inf)
        return np.logaddexp(-k * kl_up, -k * kl_lo)


def _chernoff_worst_log_prob(t: float, k: int) -> float:
    """max over p ∈ [0, 1] of ``_log_kl_terms(p, t, k)`` (grid plus local refinement)."""
    grid = np.concatenate([np.linspace(0.0, 1.0, 2001), [t, 1.0 - t, 0.5 - t / 2, 0.5 + t / 2]])
    grid = grid[(grid >= 0.0) & (grid <= 1.0)]
    vals = _log_kl_terms(grid, t, k)
    best = int(np.argmax(vals))
    p0, v0 = float(grid[best]), float(vals[best])
    # Refine inside a grid cell around the best point (the function is smooth there, apart
    # from the jumps at p = t and p = 1 − t that the grid contains exactly).
    h = 1.0 / 2000
    lo, hi = max(0.0, p0 - h), min(1.0, p0 + h)

    def neg(p):
        v = float(_log_kl_terms(np.array([p]), t, k)[0])
        return -v if np.isfinite(v) else 1e300

    res = optimize.minimize_scalar(
        neg,
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return max(v0, -float(res.fun))


def split_width(n, m, beta, method: str = "hoeffding") -> float:
    """Sample splitting: query i is answered on its own fresh chunk of k = ⌊n/m⌋ rows.

    Spec §1.0 "Sample splitting". Each answer is a mean of k fresh [0, 1] values, so the
    analyst's adaptivity is harmless and a union bound over the m answers gives, with
    probability ≥ 1 − β, max_i |a_i − P[φ_i]| ≤ width, where

    - ``"hoeffding"``: width = √(ln(2m/β) / (2k)) (Hoeffding 1963, Thm 1);
    - ``"chernoff"``: the smallest t with
      max_{p∈[0,1]} exp(−k·KL(p+t‖p)) + exp(−k·KL(p−t‖p)) ≤ β/m, where KL is the binary
      relative entropy (Chernoff–Hoeffding bound, Hoeffding 1963 eq. (2.1), valid for any
      [0, 1]-valued variables with mean p); terms with p ± t outside [0, 1] are 0. Since
      KL(q‖p) ≥ 2(q − p)² (Pinsker), this is never larger than the Hoeffding width. Solved
      by bisection on t (the worst-case tail is non-increasing in t), with the maximum over
      p taken on a 2001-point grid (plus p = t, 1 − t) refined by a bounded scalar search.
      Compare Rogers et al.'s ``chernoff_conf`` (exact binomial at p = 1/2, not worst-case
      over p).

    Args:
      n: total holdout size (int ≥ 1).
      m: number of queries (int ≥ 1), with ⌊n/m⌋ ≥ 1.
      beta: total failure probability in (0, 1).
      method: ``"hoeffding"`` or ``"chernoff"``.

    Returns:
      the half-width as a float.

    Raises:
      ValueError: if ⌊n/m⌋ < 1 (fewer rows than queries) or for invalid arguments.
    """
    n, m, beta = _n(n), _n(m, "m"), _prob(beta)
    check_choice(method, "method", ("hoeffding", "chernoff"))
    k = n // m
    if k < 1:
        raise ValueError(
            f"n must be at least m for sample splitting (floor(n/m) >= 1); got n={n}, m={m}"
        )
    hoeff = math.sqrt(math.log(2.0 * m / beta) / (2.0 * k))
    if method == "hoeffding":
        return hoeff
    log_target = math.log(beta / m)
    lo, hi = 0.0, min(hoeff, 1.0)  # feasible at hi: Pinsker, and the tail is 0 at t = 1
    while hi - lo > 1e-10 * max(hi, 1e-300):
        mid = 0.5 * (lo + hi)
        if _chernoff_worst_log_prob(mid, k) <= log_target:
            hi = mid
        else:
            lo = mid
    return hi


# ----------------------------------------------------------------------------------------
# Privacy accounting (spec §1.1)
# ----------------------------------------------------------------------------------------


def zcdp_to_dp(rho, delta) -> float:
    """Convert ρ-zCDP to (ε, δ)-DP: ε = ρ + 2√(ρ ln(1/δ)).

    Bun & Steinke (TCC'16), Proposition 1.3.

    Args:
      rho: zCDP parameter (≥ 0).
      delta: target δ in (0, 1).
    """
    rho, delta = _nonneg(rho, "rho"), _prob(delta, "delta")
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def gaussian_rho(n, sigma, m) -> float:
    """zCDP of m Gaussian answers N(0, σ²) to SQs on n rows: ρ = m / (2n²σ²).

    Each empirical mean has ℓ2-sensitivity 1/n, so one answer is 1/(2n²σ²)-zCDP
    (Bun & Steinke TCC'16, Gaussian mechanism) and zCDP composes additively and adaptively
    (ibid., composition lemma).

    Args:
      n: holdout size (int ≥ 1).
      sigma: noise standard deviation (> 0).
      m: number of answers (int ≥ 1).
    """
    n, sigma, m = _n(n), _pos(sigma, "sigma"), _n(m, "m")
    return m / (2.0 * n * n * sigma * sigma)


def laplace_epsilon(n, scale, m, delta=0.0) -> float:
    """ε of m Laplace answers Lap(b) to SQs on n rows (each ε₀ = 1/(b·n)-DP).

    - δ = 0: basic composition, ε = m·ε₀ (Dwork, McSherry, Nissim, Smith TCC'06).
    - δ > 0: the smaller of basic composition and advanced composition
      ε = √(2m ln(1/δ))·ε₀ + m·ε₀(e^{ε₀} − 1) (Dwork, Rothblum, Vadhan FOCS'10, Thm III.3;
      Dwork & Roth 2014, Thm 3.20), giving (ε, δ)-DP.

    Args:
      n: holdout size (int ≥ 1).
      scale: Laplace scale b (> 0).
      m: number of answers (int ≥ 1).
      delta: δ in [0, 1).
    """
    n, scale, m = _n(n), _pos(scale, "scale"), _n(m, "m")
    delta = check_float(delta, "delta", min_value=0.0, max_value=1.0, max_inclusive=False)
    eps0 = 1.0 / (scale * n)
    basic = m * eps0
    if delta == 0.0:
        return basic
    advanced = math.sqrt(2.0 * m * math.log(1.0 / delta)) * eps0 + m * eps0 * _expm1(eps0)
    return min(basic, advanced)


def jung_transfer(alpha, eps, delta, c) -> float:
    """Population width from the transfer theorem of Jung et al. (ITCS'20, main transfer theorem).

    If a mechanism answering SQs is (ε, δ)-DP and (α, β_s)-sample-accurate, then for every
    c > 0 it is (α + (e^ε − 1) + c + 2δ/c, β_s/c)-accurate on the population, simultaneously
    for all its answers and against every analyst. This function returns the width only; the
    failure probability of the population statement is β_s/c (so callers that want a total
    failure probability β take β_s = β·c).

    Args:
      alpha: sample accuracy α (≥ 0).
      eps: privacy ε (≥ 0); ε > 700 gives an infinite (vacuous) width.
      delta: privacy δ in [0, 1).
      c: the free parameter (> 0).
    """
    alpha, eps, c = _nonneg(alpha, "alpha"), _nonneg(eps, "eps"), _pos(c, "c")
    delta = check_float(delta, "delta", min_value=0.0, max_value=1.0, max_inclusive=False)
    return alpha + _expm1(eps) + c + 2.0 * delta / c


# ----------------------------------------------------------------------------------------
# Certificates: Gaussian / Laplace / Thresholdout + Jung et al. transfer
# ----------------------------------------------------------------------------------------


class TransferCertificate(NamedTuple):
    """A population-accuracy certificate from the Jung et al. transfer theorem.

    With probability ≥ 1 − ``beta`` every answer a_i satisfies |a_i − P[φ_i]| ≤ ``width``.

    Fields:
      width: certified population half-width α_s + (e^ε − 1) + c + 2δ/c (unclipped).
      beta: total failure probability (= beta_sample / c).
      sigma_or_scale: the noise parameter (Gaussian σ, Laplace scale b, Thresholdout σ).
      eps, delta: the (ε, δ)-DP guarantee of the whole interaction used in the transfer.
      c: the transfer theorem's free parameter.
      alpha_sample: sample accuracy α_s (max_i |a_i − E_S[φ_i]| ≤ α_s w.p. 1 − beta_sample).
      beta_sample: failure probability of the sample-accuracy statement (= beta·c).
    """

    width: float
    beta: float
    sigma_or_scale: float
    eps: float
    delta: float
    c: float
    alpha_sample: float
    beta_sample: float


def _minimise_2d(fun, x0_grid_a, x0_grid_b, bounds):
    """Minimise a vectorised fun(a, b) on a grid, then refine with bounded Nelder–Mead."""
    aa, bb = np.meshgrid(x0_grid_a, x0_grid_b, indexing="ij")
    with np.errstate(all="ignore"):
        vals = fun(aa, bb)
    vals = np.where(np.isnan(vals), np.inf, vals)
    i, j = np.unravel_index(int(np.argmin(vals)), vals.shape)
    x0 = np.array([aa[i, j], bb[i, j]])
    f0 = float(vals[i, j])
    if not np.isfinite(f0):
        return x0, f0

    def scalar(x):
        with np.errstate(all="ignore"):
            v = float(fun(np.asarray(x[0]), np.asarray(x[1])))
        return v if np.isfinite(v) else 1e300

    res = optimize.minimize(
        scalar,
        x0,
        method="Nelder-Mead",
        bounds=bounds,
        options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 4000, "maxfev": 8000},
    )
    if res.fun < f0:
        return np.asarray(res.x, dtype=np.float64), float(res.fun)
    return x0, f0


def _minimise_1d(fun, grid, bounds):
    """Minimise a vectorised fun(a) on a grid, then refine with a bounded scalar search."""
    with np.errstate(all="ignore"):
        vals = fun(grid)
    vals = np.where(np.isnan(vals), np.inf, vals)
    i = int(np.argmin(vals))
    x0, f0 = float(grid[i]), float(vals[i])
    if not np.isfinite(f0):
        return x0, f0
    lo = float(grid[max(i - 1, 0)])
    hi = float(grid[min(i + 1, len(grid) - 1)])
    lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    if hi > lo:
        res = optimize.minimize_scalar(
            lambda x: float(fun(np.asarray(x))),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-10},
        )
        if res.fun < f0:
            return float(res.x), float(res.fun)
    return x0, f0


def _gaussian_width(log_sigma, log_c, log_delta, n, m, beta):
    """Vectorised Gaussian + zCDP + Jung width (see ``gaussian_certificate``)."""
    sigma = np.exp(log_sigma)
    rho = m / (2.0 * n * n * sigma * sigma)
    # α_s = σ √(2 ln(2m/β_s)), β_s = β·c
    alpha_s = sigma * np.sqrt(2.0 * (math.log(2.0 * m / beta) - log_c))
    eps = rho + 2.0 * np.sqrt(rho * (-log_delta))
    return alpha_s + _expm1(eps) + np.exp(log_c) + 2.0 * np.exp(log_delta - log_c)


_GRID_C = np.linspace(*_LOG_C_RANGE, 97)
_GRID_DELTA = np.linspace(*_LOG_DELTA_RANGE, 141)


def gaussian_certificate(n, m, sigma, beta) -> TransferCertificate:
    """Certified population width of m Gaussian answers N(0, σ²) on an n-row holdout.

    Spec §1.1 ("Gaussian (preferred)", transfer theorem (c)):

    - privacy: ρ = m/(2n²σ²)-zCDP (``gaussian_rho``), hence (ε, δ)-DP with
      ε = ρ + 2√(ρ ln(1/δ)) (``zcdp_to_dp``) for every δ ∈ (0, 1);
    - sample accuracy: max_i |Z_i| ≤ α_s = σ√(2 ln(2m/β_s)) with probability ≥ 1 − β_s
      (Gaussian tail P(|Z| > t) ≤ 2e^{−t²/(2σ²)} and a union bound over the m answers;
      clipping answers to [0, 1] only reduces the error);
    - transfer (Jung et al. ITCS'20): width α_s + (e^ε − 1) + c + 2δ/c with failure
      probability β_s/c; we set β_s = β·c so the certificate holds with probability ≥ 1 − β.

    The width is minimised over c ∈ (0, 1) and δ ∈ (0, 1) (log-spaced grid over
    c ∈ [1e-15, 1) and δ ∈ [e^-700, 1), then bounded Nelder–Mead in (ln c, ln δ)).

    Args:
      n: holdout size (int ≥ 1).
      m: number of answered queries (int ≥ 1).
      sigma: noise standard deviation (> 0).
      beta: total failure probability in (0, 1).

    Returns:
      a ``TransferCertificate`` (``sigma_or_scale`` = σ).
    """
    n, m, sigma, beta = _n(n), _n(m, "m"), _pos(sigma, "sigma"), _prob(beta)
    log_sigma = math.log(sigma)

    def fun(log_c, log_delta):
        return _gaussian_width(log_sigma, log_c, log_delta, n, m, beta)

    (log_c, log_delta), _ = _minimise_2d(
        fun, _GRID_C, _GRID_DELTA, [_LOG_C_RANGE, _LOG_DELTA_RANGE]
    )
    return _gaussian_cert_at(n, m, sigma, beta, math.exp(log_c), math.exp(log_delta))


def _transfer_certificate(alpha_s, eps, delta, c, beta, noise) -> TransferCertificate:
    """Assemble the Jung et al. certificate: width α_s + (e^ε − 1) + c + 2δ/c at level β,
    where α_s holds with probability 1 − βc."""
    return TransferCertificate(
        width=float(alpha_s + _expm1(eps) + c + 2.0 * delta / c),
        beta=beta,
        sigma_or_scale=noise,
        eps=float(eps),
        delta=delta,
        c=c,
        alpha_sample=alpha_s,
        beta_sample=beta * c,
    )


def _gaussian_cert_at(n, m, sigma, beta, c, delta) -> TransferCertificate:
    rho = m / (2.0 * n * n * sigma * sigma)
    eps = rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))
    alpha_s = sigma * math.sqrt(2.0 * math.log(2.0 * m / (beta * c)))
    return _transfer_certificate(alpha_s, eps, delta, c, beta, sigma)


def gaussian_optimal(n, m, beta) -> TransferCertificate:
    """The Gaussian certificate with the noise σ chosen to minimise the certified width.

    Minimises ``gaussian_certificate(n, m, σ, beta).width`` jointly over σ, c and δ
    (spec §1.1 "Numbers" and acceptance check A8): a log grid over σ ∈ [1e-8, 10] with the
    inner (c, δ) grid, a bounded Nelder–Mead refinement in (ln σ, ln c, ln δ), and a final
    ``gaussian_certificate`` at the optimal σ (so the result is exactly reproducible from
    its ``sigma_or_scale``).

    Args:
      n: holdout size (int ≥ 1).
      m: number of queries (int ≥ 1).
      beta: total failure probability in (0, 1).

    Returns:
      a ``TransferCertificate`` with ``sigma_or_scale`` the optimal σ.
    """
    n, m, beta = _n(n), _n(m, "m"), _prob(beta)
    grid_s = np.linspace(*_LOG_SIGMA_RANGE, 91)
    # Coarse 3-D grid: (σ, c, δ), vectorised.
    gs, gc, gd = np.meshgrid(grid_s, _GRID_C[::2], _GRID_DELTA[::2], indexing="ij")
    with np.errstate(all="ignore"):
        vals = _gaussian_width(gs, gc, gd, n, m, beta)
    vals = np.where(np.isnan(vals), np.inf, vals)
    idx = np.unravel_index(int(np.argmin(vals)), vals.shape)
    x0 = np.array([gs[idx], gc[idx], gd[idx]])

    def scalar(x):
        with np.errstate(all="ignore"):
            v = float(_gaussian_width(x[0], x[1], x[2], n, m, beta))
        return v if np.isfinite(v) else 1e300

    res = optimize.minimize(
        scalar,
        x0,
        method="Nelder-Mead",
        bounds=[_LOG_SIGMA_RANGE, _LOG_C_RANGE, _LOG_DELTA_RANGE],
        options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 6000, "maxfev": 12000},
    )
    x = res.x if res.fun < vals[idx] else x0
    return gaussian_certificate(n, m, math.exp(x[0]), beta)


def laplace_certificate(n, m, scale, beta) -> TransferCertificate:
    """Certified population width of m Laplace answers Lap(b) on an n-row holdout.

    Spec §1.1 (Laplace variant, transfer theorem (c)):

    - sample accuracy: P(|Lap(b)| > t) = e^{−t/b}, so with a union bound over the m answers
      max_i |Z_i| ≤ α_s = b·ln(m/β_s) with probability ≥ 1 − β_s;
    - privacy: ``laplace_epsilon(n, b, m, δ)`` (basic composition at δ = 0, otherwise the
      better of basic and advanced composition);
    - transfer (Jung et al. ITCS'20) with β_s = β·c.

    The width is minimised over c ∈ (0, 1) and over δ ∈ {0} ∪ (0, 1): the pure-DP (δ = 0,
    basic composition) optimum over c and the (c, δ) optimum with advanced composition are
    both computed and the smaller is returned.

    Args:
      n: holdout size (int ≥ 1).
      m: number of answered queries (int ≥ 1).
      scale: Laplace scale b (> 0).
      beta: total failure probability in (0, 1).

    Returns:
      a ``TransferCertificate`` (``sigma_or_scale`` = b; ``delta`` = 0.0 when basic
      composition wins).
    """
    n, m, scale, beta = _n(n), _n(m, "m"), _pos(scale, "scale"), _prob(beta)
    eps0 = 1.0 / (scale * n)
    basic = m * eps0
    log_mb = math.log(m / beta)

    def eps_of(log_delta):
        adv = np.sqrt(2.0 * m * (-log_delta)) * eps0 + m * eps0 * _expm1(eps0)
        return np.minimum(basic, adv)

    def width_pure(log_c):
        return scale * (log_mb - log_c) + _expm1(basic) + np.exp(log_c)

    def width_approx(log_c, log_delta):
        return (
            scale * (log_mb - log_c)
            + _expm1(eps_of(log_delta))
            + np.exp(log_c)
            + 2.0 * np.exp(log_delta - log_c)
        )

    lc_pure, w_pure = _minimise_1d(width_pure, _GRID_C, _LOG_C_RANGE)
    (lc_app, ld_app), w_app = _minimise_2d(
        width_approx, _GRID_C, _GRID_DELTA, [_LOG_C_RANGE, _LOG_DELTA_RANGE]
    )
    if w_pure <= w_app:
        c, delta, eps = math.exp(lc_pure), 0.0, basic
    else:
        c, delta = math.exp(lc_app), math.exp(ld_app)
        eps = float(eps_of(ld_app))
        if eps >= basic:  # advanced composition does not help: δ > 0 only costs 2δ/c
            delta, eps = 0.0, basic
    alpha_s = scale * math.log(m / (beta * c))
    return _transfer_certificate(alpha_s, eps, delta, c, beta, scale)


# ----------------------------------------------------------------------------------------
# Thresholdout (spec §1.2)
# ----------------------------------------------------------------------------------------


class ThresholdoutParameters(NamedTuple):
    """Thresholdout's theorem-level parameters (threshold T and Laplace noise rate σ)."""

    threshold: float
    sigma: float


def thresholdout_theorem_parameters(tau, m, beta) -> ThresholdoutParameters:
    """Parameters of the Thresholdout guarantee: T = 3τ/4, σ = τ / (96 ln(4m/β)).

    Dwork et al., "Generalization in adaptive data analysis and holdout reuse" (NeurIPS'15,
    Thresholdout theorem / Science'15 supplement); spec §1.2 and acceptance check A11. With
    these values Pr[∃i ≤ m: Z_i < B and |a_i − P[φ_i]| ≥ τ] ≤ β for n ≥ n₀(τ, m, β, B).
    The theorem's n₀ is impractically large (≈10⁸ for τ = 0.1, m = 10⁴, B = 100), which is why
    practice uses the Science settings T = 4/√n, σ = 1/√n.

    Args:
      tau: target accuracy τ in (0, 1].
      m: number of queries (int ≥ 1).
      beta: failure probability in (0, 1).
    """
    tau = check_float(tau, "tau", min_value=0.0, max_value=1.0, min_inclusive=False)
    m, beta = _n(m, "m"), _prob(beta)
    return ThresholdoutParameters(
        threshold=0.75 * tau, sigma=tau / (96.0 * math.log(4.0 * m / beta))
    )


def thresholdout_epsilon(n, sigma, budget) -> float:
    """Privacy of Laplace Thresholdout: ε = 2B/(σn) (basic composition).

    Each above-threshold event ends a sparse-vector epoch (threshold noise Lap(2σ), comparison
    noise Lap(4σ): 1/(σn)-DP, since |E_h − E_t| has sensitivity 1/n) and releases
    E_h + Lap(σ) (1/(σn)-DP); at most B events happen (Dwork et al. NeurIPS'15, Thresholdout
    privacy lemma; spec §1.2). Below-threshold answers are free.

    Args:
      n: holdout size (int ≥ 1).
      sigma: Thresholdout noise rate σ (> 0).
      budget: number of above-threshold events allowed B (int ≥ 0).
    """
    n, sigma = _n(n), _pos(sigma, "sigma")
    budget = check_int(budget, "budget", min_value=0)
    return 2.0 * budget / (sigma * n)


def thresholdout_certificate(n, m, threshold, sigma, budget, beta) -> TransferCertificate:
    """Certified population width of Laplace Thresholdout (derived here, not from a paper).

    This certificate is our own derivation (documented so it can be checked), combining the
    privacy of Thresholdout with the Jung et al. (ITCS'20) transfer theorem; it is *not* the
    Thresholdout theorem of Dwork et al. (that one needs the Z_i < B condition and n ≥ n₀).

    Mechanism (spec §1.2, Laplace, threshold re-drawn on each hit): threshold noise
    γ ~ Lap(2σ) per epoch, comparison noise η ~ Lap(4σ) per query, release noise ξ ~ Lap(σ)
    per above-threshold answer, at most B above-threshold answers.

    - Privacy: ε = ``thresholdout_epsilon(n, σ, B)`` = 2B/(σn), δ = 0, whatever m is.
    - Sample accuracy w.r.t. the holdout mean E_h: a below-threshold answer E_t satisfies
      |E_t − E_h| ≤ T + |γ| + |η|, an above-threshold answer E_h + ξ is off by |ξ|.
      Imagine all noise pre-drawn: the first m threshold draws γ_j (only those can be in
      force during m queries), η_1..η_m and the first m release draws ξ_k. With
      L = ln((2m + 1)/β_s), the events {|γ_j| > 2σL} and {|η_i| > 4σL} have total probability
      ≤ 2m·e^{−L}, and {|ξ_k| > T + 6σL} (which is all an above-threshold answer needs) has
      probability ≤ m·e^{−6L} ≤ e^{−L}. So with probability ≥ 1 − β_s every answer is within
      α_s = T + 6σ·ln((2m + 1)/β_s) of E_h. (The ``+1`` accounts for the release noise; it
      changes α_s by at most 6σ/(2m).) Answers ⊥ after the budget is spent are not covered.
    - Transfer: width α_s + (e^ε − 1) + c with β_s = β·c (δ = 0), minimised over c ∈ (0, 1).

    Args:
      n: holdout size (int ≥ 1).
      m: number of queries (int ≥ 1).
      threshold: the threshold T (≥ 0).
      sigma: the noise rate σ (> 0).
      budget: the budget B (int ≥ 0).
      beta: total failure probability in (0, 1).

    Returns:
      a ``TransferCertificate`` (``sigma_or_scale`` = σ, ``delta`` = 0).
    """
    n, m = _n(n), _n(m, "m")
    threshold, sigma = _nonneg(threshold, "threshold"), _pos(sigma, "sigma")
    budget = check_int(budget, "budget", min_value=0)
    beta = _prob(beta)
    eps = 2.0 * budget / (sigma * n)
    log_mb = math.log((2.0 * m + 1.0) / beta)
    priv = _expm1(eps)

    def width(log_c):
        return threshold + 6.0 * sigma * (log_mb - log_c) + priv + np.exp(log_c)

    log_c, _ = _minimise_1d(width, _GRID_C, _LOG_C_RANGE)
    c = math.exp(log_c)
    alpha_s = threshold + 6.0 * sigma * math.log((2.0 * m + 1.0) / (beta * c))
    return _transfer_certificate(alpha_s, eps, 0.0, c, beta, sigma)


# ----------------------------------------------------------------------------------------
# SparseValidate, Ladder, PMW, max-information (spec §1.3–1.5, §1.8)
# ----------------------------------------------------------------------------------------


def sparse_validate_margin(n, m, budget, beta) -> float:
    """Certifiable margin of SparseValidate: θ = √((B ln(m+1) + ln(2m/β)) / (2n)).

    Spec §1.3 (derived from the description-length argument of Dwork et al. NeurIPS'15):
    the transcript is fixed by the positions of ≤ B ones among m answers, ≤ (m+1)^B
    transcripts, so with Hoeffding tests β′ = 2e^{−2θ²n} a union bound gives
    m·(m+1)^B·β′ ≤ β. Acceptance check A9: n = m = 10⁴, B = 10, β = 0.05 → 0.072.

    Args:
      n: holdout size (int ≥ 1).
      m: number of validation queries (int ≥ 1).
      budget: number B of queries that may be answered 1 (int ≥ 0).
      beta: failure probability in (0, 1).
    """
    n, m, beta = _n(n), _n(m, "m"), _prob(beta)
    budget = check_int(budget, "budget", min_value=0)
    return math.sqrt((budget * math.log(m + 1.0) + math.log(2.0 * m / beta)) / (2.0 * n))


def _ladder_log_terms(t: int, step: float) -> float:
    return (1.0 / step + 2.0) * math.log(4.0 * t / step) + 1.0


def ladder_tail_bound(n, t, step, eps) -> float:
    """Ladder tail bound, Blum & Hardt (ICML'15) Thm 3.1.

    For all t ≤ k, Pr[min_{i≤t} R_D(f_i) − R_t > ε + η] ≤
    min(1, exp(−2ε²n + (1/η + 2)·ln(4t/η) + 1)) where η is the step. The ``min(1, ·)`` keeps
    the value a probability (and finite).

    Args:
      n: holdout size (int ≥ 1).
      t: submission index / number of submissions so far (int ≥ 1).
      step: the Ladder step η in (0, 1].
      eps: the deviation ε (≥ 0).
    """
    n, t = _n(n), _n(t, "t")
    step = check_float(step, "step", min_value=0.0, max_value=1.0, min_inclusive=False)
    eps = _nonneg(eps, "eps")
    log_bound = -2.0 * eps * eps * n + _ladder_log_terms(t, step)
    return math.exp(min(log_bound, 0.0))


def ladder_epsilon(n, t, step, beta) -> float:
    """The ε at which ``ladder_tail_bound(n, t, step, ε)`` equals β (Blum & Hardt Thm 3.1).

    Solving −2ε²n + (1/η + 2)·ln(4t/η) + 1 = ln β for ε ≥ 0:
    ε = √(((1/η + 2)·ln(4t/η) + 1 + ln(1/β)) / (2n)), or 0 if the bound is already ≤ β at
    ε = 0. The Ladder's leaderboard error is then ≤ ε + η with probability ≥ 1 − β.

    Args:
      n: holdout size (int ≥ 1).
      t: number of submissions (int ≥ 1).
      step: the Ladder step η in (0, 1].
      beta: failure probability in (0, 1).
    """
    n, t = _n(n), _n(t, "t")
    step = check_float(step, "step", min_value=0.0, max_value=1.0, min_inclusive=False)
    beta = _prob(beta)
    numer = _ladder_log_terms(t, step) - math.log(beta)
    return math.sqrt(max(numer, 0.0) / (2.0 * n))


def correlation_attack_accuracy(n, m, sigma=0.0) -> float:
    """In-sample accuracy of the correlation (sign-vote) attack: Φ(√(2m/(πn(1 + nσ²)))).

    Spec §2.3 (closed form derived there, acceptance check A3): m correlation SQs on pure
    noise x ∈ {±1}^d, answers perturbed by noise of standard deviation σ (σ = 0: naive
    empirical means); the sign-vote classifier's holdout accuracy. Its true accuracy is 0.5.
    σ is the noise on the *correlation* ``c_j = x_j·y`` (range [−1, 1]); noise σ' on the
    statistical query ``(1 + x_j y)/2`` is ``σ = 2σ'`` here.

    Args:
      n: holdout size (int ≥ 1).
      m: number of correlation queries (int ≥ 1).
      sigma: noise standard deviation on the correlation scale (≥ 0).
    """
    n, m, sigma = _n(n), _n(m, "m"), _nonneg(sigma, "sigma")
    z = math.sqrt(2.0 * m / (math.pi * n * (1.0 + n * sigma * sigma)))
    return float(stats.norm.cdf(z))


def pmw_max_updates(domain_size, alpha) -> int:
    """Maximum number of multiplicative-weights updates of PMW: ⌈4 ln|X| / α²⌉.

    Hardt & Rothblum (FOCS'10); spec §1.5 and acceptance check A10 (|X| = 1024, α = 0.1 →
    2773).

    Args:
      domain_size: |X| (int ≥ 2).
      alpha: accuracy α in (0, 1].
    """
    domain_size = check_int(domain_size, "domain_size", min_value=2)
    alpha = check_float(alpha, "alpha", min_value=0.0, max_value=1.0, min_inclusive=False)
    return math.ceil(4.0 * math.log(domain_size) / (alpha * alpha))


def max_information_dp(eps, n, beta) -> float:
    """β-approximate max-information (bits) of an ε-DP algorithm on n i.i.d. rows.

    I^β_∞ ≤ log₂e·(ε²n/2 + ε√(n ln(2/β)/2)) (Dwork et al. NeurIPS'15, max-information of pure
    DP; spec §1.1(b), §1.8).

    Args:
      eps: pure-DP ε (≥ 0).
      n: number of rows (int ≥ 1).
      beta: failure probability in (0, 1).
    """
    eps, n, beta = _nonneg(eps, "eps"), _n(n), _prob(beta)
    return math.log2(math.e) * (
        eps * eps * n / 2.0 + eps * math.sqrt(n * math.log(2.0 / beta) / 2.0)
    )


def max_information_bits(bits, beta) -> float:
    """β-approximate max-information of a k-bit output: I^β_∞ ≤ k + log₂(1/β).

    Dwork et al. NeurIPS'15 (description-length bound); spec §1.8.

    Args:
      bits: description length k in bits (≥ 0).
      beta: failure probability in (0, 1).
    """
    bits, beta = _nonneg(bits, "bits"), _prob(beta)
    return bits + math.log2(1.0 / beta)


class DFHPRRConditions(NamedTuple):
    """The three hypotheses of the DFHPRR (ε, δ) transfer theorem and their thresholds.

    Fields:
      tau_ok: τ ≥ min_tau = √(48 ln(8/β)/n).
      eps_ok: ε ≤ max_eps = τ/4.
      delta_ok: δ ≤ max_delta = exp(−4 ln(8/β)/τ).
      ok: all three hold.
    """

    tau_ok: bool
    eps_ok: bool
    delta_ok: bool
    ok: bool
    min_tau: float
    max_eps: float
    max_delta: float


def dfhprr_transfer_conditions(n, tau, eps, delta, beta) -> DFHPRRConditions:
    """Check the conditions of the DFHPRR transfer theorem ((ε, δ) form).

    Dwork et al. (Science'15 supplement / NeurIPS'15, (ε, δ) transfer theorem; spec §1.1(a)): if an
    (ε, δ)-DP algorithm outputs φ: X → [0, 1] and τ ≥ √(48 ln(8/β)/n), ε ≤ τ/4 and
    δ ≤ exp(−4 ln(8/β)/τ), then Pr[|E_S[φ] − P[φ]| > τ] ≤ β.

    Args:
      n: sample size (int ≥ 1).
      tau: accuracy τ (> 0).
      eps: ε (≥ 0).
      delta: δ in [0, 1).
      beta: failure probability in (0, 1).
    """
    n, tau, eps = _n(n), _pos(tau, "tau"), _nonneg(eps, "eps")
    delta = check_float(delta, "delta", min_value=0.0, max_value=1.0, max_inclusive=False)
    beta = _prob(beta)
    log8b = math.log(8.0 / beta)
    min_tau = math.sqrt(48.0 * log8b / n)
    max_eps = tau / 4.0
    max_delta = math.exp(-4.0 * log8b / tau)
    tau_ok, eps_ok, delta_ok = tau >= min_tau, eps <= max_eps, delta <= max_delta
    return DFHPRRConditions(
        tau_ok=tau_ok,
        eps_ok=eps_ok,
        delta_ok=delta_ok,
        ok=tau_ok and eps_ok and delta_ok,
        min_tau=min_tau,
        max_eps=max_eps,
        max_delta=max_delta,
    )


# ----------------------------------------------------------------------------------------
# Guess-and-Check (spec §1.6)
# ----------------------------------------------------------------------------------------


def guess_and_check_beta(beta, i, failures, log_gamma_sum=0.0) -> float:
    """Per-query failure probability of Guess-and-Check (Rogers et al. AISTATS'20).

    β_i = β·w(i)·w(f)/N with w(x) = (x + 1)^{−2}/ζ(2) = 6/(π²(x + 1)²) and
    ln N = ln C(i, f) + Σ_{past failures j} ln(round(1/γ_j) + 1) (the number of transcripts still
    possible). Since Σ_x w(x) = 1, summing β_i over all queries and transcripts gives ≤ β.

    Args:
      beta: total failure probability in (0, 1).
      i: 0-based query index (int ≥ 0).
      failures: number f of failures before query i (int, 0 ≤ f ≤ i).
      log_gamma_sum: Σ ln(number of grid values) over past failures, i.e.
        Σ ln(round(1/γ_j) + 1) for a grid of step γ_j on [0, 1] (≥ 0).

    Returns:
      β_i as a float (computed in log space; may underflow to 0.0 for astronomically many
      transcripts).
    """
    beta = _prob(beta)
    i = check_int(i, "i", min_value=0)
    failures = check_int(failures, "failures", min_value=0, max_value=i)
    log_gamma_sum = _nonneg(log_gamma_sum, "log_gamma_sum")
    log_w = math.log(6.0 / math.pi**2)
    log_binom = special.gammaln(i + 1.0) - special.gammaln(failures + 1.0)
    log_binom -= special.gammaln(i - failures + 1.0)
    log_beta_i = (
        math.log(beta)
        + 2.0 * log_w
        - 2.0 * math.log(i + 1.0)
        - 2.0 * math.log(failures + 1.0)
        - float(log_binom)
        - log_gamma_sum
    )
    return math.exp(log_beta_i)


def guess_and_check_grid(n, tau, beta_i) -> float:
    """Largest rounding grid step γ with 2n(τ − γ)² ≥ ln(2/β_i): γ = τ − √(ln(2/β_i)/(2n)).

    Rogers et al. (AISTATS'20), Guess-and-Check failure branch (spec §1.6): the holdout
    answer is rounded to a multiple of γ (clipped to [0, 1]) so that a failure reveals one of
    round(1/γ) + 1 values. A
    value ≤ 0 means no valid grid exists and the mechanism must halt.

    Args:
      n: check-set size (int ≥ 1).
      tau: target width τ (> 0).
      beta_i: this query's failure probability in (0, 1).
    """
    n, tau, beta_i = _n(n), _pos(tau, "tau"), _prob(beta_i, "beta_i")
    return tau - math.sqrt(math.log(2.0 / beta_i) / (2.0 * n))
