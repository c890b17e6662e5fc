"""Bounds of adaptive data analysis: closed forms, spec numbers, independent checks.

Independent checks used here: exact binomial tails (scipy.stats.binom) for the Chernoff
splitting width, brute-force grids over p for its worst case, fixed-seed numpy simulations of
the Hoeffding / Gaussian / Laplace / Thresholdout sample-accuracy events (each with a broken
variant that the same check rejects), and re-evaluation of the certificates' free parameters
through the public one-line formulas.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from theorylab.adaptive import bounds as B

BETA = 0.05


@functools.cache
def _opt(n: int, m: int, beta: float = BETA) -> B.TransferCertificate:
    return B.gaussian_optimal(n, m, beta)


# ---------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------


def test_hoeffding_and_split_closed_forms():
    assert B.hoeffding_width(1000, 10, 0.05) == pytest.approx(math.sqrt(math.log(400) / 2000))
    # spec §1.0: splitting with m | n is sqrt(ln(2m/beta) m / (2n))
    assert B.split_width(10**4, 100, 0.05) == pytest.approx(math.sqrt(math.log(4000) * 100 / 2e4))
    # floor(n/m) rows per query
    assert B.split_width(1099, 100, 0.05) == B.split_width(1000, 100, 0.05)
    assert B.split_width(5, 5, 0.05) == pytest.approx(math.sqrt(math.log(200) / 2))


def test_privacy_accounting_formulas():
    assert B.zcdp_to_dp(0.01, 1e-6) == pytest.approx(0.01 + 2 * math.sqrt(0.01 * math.log(1e6)))
    assert B.zcdp_to_dp(0.0, 0.5) == 0.0
    assert B.gaussian_rho(100, 0.1, 50) == pytest.approx(50 / (2 * 100**2 * 0.01))
    # Laplace: basic at delta = 0; advanced wins for many answers; basic wins for few
    assert B.laplace_epsilon(1000, 0.01, 10) == pytest.approx(10 * 0.1)
    eps0 = 1 / (0.1 * 1000)
    adv = math.sqrt(2 * 10**4 * math.log(1e6)) * eps0 + 10**4 * eps0 * math.expm1(eps0)
    assert B.laplace_epsilon(1000, 0.1, 10**4, delta=1e-6) == pytest.approx(adv)
    assert adv < 10**4 * eps0
    assert B.laplace_epsilon(1000, 0.1, 2, delta=1e-6) == pytest.approx(2 * eps0)
    assert B.jung_transfer(0.1, 0.2, 1e-3, 0.01) == pytest.approx(
        0.1 + math.expm1(0.2) + 0.01 + 0.2
    )
    assert B.jung_transfer(0.0, 800.0, 0.0, 0.5) == math.inf
    assert B.thresholdout_epsilon(10**4, 0.01, 50) == pytest.approx(1.0)
    assert B.thresholdout_epsilon(10**4, 0.01, 0) == 0.0


def test_max_information_formulas():
    val = math.log2(math.e) * (0.1**2 * 1000 / 2 + 0.1 * math.sqrt(1000 * math.log(40) / 2))
    assert B.max_information_dp(0.1, 1000, 0.05) == pytest.approx(val)
    assert B.max_information_dp(0.0, 1000, 0.05) == 0.0
    assert B.max_information_bits(10, 0.25) == pytest.approx(12.0)


def test_dfhprr_conditions():
    n, beta = 10**5, 0.05
    min_tau = math.sqrt(48 * math.log(160) / n)
    res = B.dfhprr_transfer_conditions(n, 0.1, 0.02, 1e-100, beta)
    assert res.ok and res.tau_ok and res.eps_ok and res.delta_ok
    assert res.min_tau == pytest.approx(min_tau)
    assert res.max_eps == pytest.approx(0.025)
    assert res.max_delta == pytest.approx(math.exp(-4 * math.log(160) / 0.1))
    assert not B.dfhprr_transfer_conditions(n, 0.1, 0.03, 1e-100, beta).eps_ok
    assert not B.dfhprr_transfer_conditions(n, 0.1, 0.02, 1e-80, beta).delta_ok
    small = B.dfhprr_transfer_conditions(n, 0.9 * min_tau, 0.0, 0.0, beta)
    assert not small.tau_ok and not small.ok


def test_a3_correlation_attack_closed_form():
    # spec A3 / §2.3 (n = 1e4), formula values to ±0.002
    for m, want in [(100, 0.532), (1000, 0.600), (10**4, 0.788)]:
        assert B.correlation_attack_accuracy(10**4, m) == pytest.approx(want, abs=0.002)
    for sigma, want in [(0.01, 0.714), (0.03, 0.600), (0.1, 0.532)]:
        assert B.correlation_attack_accuracy(10**4, 10**4, sigma) == pytest.approx(want, abs=0.002)
    z = math.sqrt(2 * 300 / (math.pi * 500 * (1 + 500 * 0.02**2)))
    assert B.correlation_attack_accuracy(500, 300, 0.02) == pytest.approx(stats.norm.cdf(z))


def test_a9_sparse_validate_margin():
    theta = B.sparse_validate_margin(10**4, 10**4, 10, 0.05)
    assert theta == pytest.approx(0.072, abs=0.001)
    # independent: m (m+1)^B * 2 exp(-2 theta^2 n) == beta at the margin
    log_fail = math.log(10**4) + 10 * math.log(10**4 + 1) + math.log(2) - 2 * theta**2 * 10**4
    assert log_fail == pytest.approx(math.log(0.05), abs=1e-9)
    # B = 0 is the plain Hoeffding union bound
    assert B.sparse_validate_margin(500, 7, 0, 0.1) == pytest.approx(B.hoeffding_width(500, 7, 0.1))


def test_a10_pmw_max_updates():
    assert B.pmw_max_updates(1024, 0.1) == 2773
    assert B.pmw_max_updates(2, 1.0) == math.ceil(4 * math.log(2))


def test_a11_thresholdout_theorem_parameters():
    params = B.thresholdout_theorem_parameters(0.1, 10**4, 0.05)
    assert params.threshold == pytest.approx(0.075)
    assert params.sigma == pytest.approx(7.66e-5, rel=1e-3)
    assert params.sigma == pytest.approx(0.1 / (96 * math.log(4 * 10**4 / 0.05)))
    assert isinstance(params, B.ThresholdoutParameters)


def test_ladder_epsilon_inverts_tail_bound():
    for n, t, step, beta in [(4000, 400, 0.01, 0.05), (10**5, 3, 0.2, 0.5), (50, 1, 1.0, 0.01)]:
        eps = B.ladder_epsilon(n, t, step, beta)
        assert eps > 0 and math.isfinite(eps)
        assert B.ladder_tail_bound(n, t, step, eps) == pytest.approx(beta, rel=1e-9)
        assert B.ladder_tail_bound(n, t, step, 1.01 * eps) < beta
        assert B.ladder_tail_bound(n, t, step, 0.99 * eps) > beta
    # the bound is a probability: capped at 1 (no overflow) for tiny eps
    assert B.ladder_tail_bound(10, 1000, 0.001, 0.0) == 1.0
    log_b = -2 * 0.45**2 * 4000 + (1 / 0.01 + 2) * math.log(4 * 400 / 0.01) + 1
    assert B.ladder_tail_bound(4000, 400, 0.01, 0.45) == pytest.approx(math.exp(log_b))


def test_guess_and_check_beta_formula_and_total_budget():
    beta, i, f, lg = 0.05, 12, 3, 2.5
    w = lambda x: 6 / (math.pi**2 * (x + 1) ** 2)  # noqa: E731
    want = beta * w(i) * w(f) / (math.comb(i, f) * math.exp(lg))
    assert B.guess_and_check_beta(beta, i, f, lg) == pytest.approx(want, rel=1e-12)
    # Summed over every query index i and every transcript (C(i, f) failure patterns, no
    # grid factor) the per-query budgets stay below beta.
    total = sum(
        math.comb(i, f) * B.guess_and_check_beta(beta, i, f, 0.0)
        for i in range(120)
        for f in range(i + 1)
    )
    assert total <= beta
    assert total > 0.5 * beta * (6 / math.pi**2)  # and the weights are not wasteful
    # computed in log space: C(1e4, 50) ~ 1e140 does not overflow
    log_want = math.log(beta * w(10**4) * w(50)) - math.log(math.comb(10**4, 50)) - 10.0
    assert math.log(B.guess_and_check_beta(beta, 10**4, 50, 10.0)) == pytest.approx(log_want)


def test_guess_and_check_grid():
    n, tau, beta_i = 1000, 0.1, 1e-4
    gamma = B.guess_and_check_grid(n, tau, beta_i)
    assert 2 * n * (tau - gamma) ** 2 == pytest.approx(math.log(2 / beta_i))
    assert 0 < gamma < tau
    assert B.guess_and_check_grid(100, 0.05, 1e-6) <= 0  # no valid grid: the mechanism halts


# ---------------------------------------------------------------------------------------
# Splitting: Chernoff width, exact binomial and brute-force checks
# ---------------------------------------------------------------------------------------


def _kl_sum(p, t, k):
    """Brute-force worst-case sum, written independently (plain numpy KL)."""
    out = np.zeros_like(p)
    with np.errstate(all="ignore"):
        for q in (p + t, p - t):
            inside = (q >= 0) & (q <= 1)
            qc = np.clip(q, 0, 1)
            a = np.where(qc > 0, qc * np.log(qc / p), 0.0)
            b = np.where(qc < 1, (1 - qc) * np.log((1 - qc) / (1 - p)), 0.0)
            term = np.exp(-k * (a + b))
            out += np.where(inside & np.isfinite(term), term, 0.0)
    return out


@pytest.mark.parametrize("n,m,beta", [(200, 10, 0.1), (10**4, 100, 0.05), (3000, 1000, 0.05)])
def test_chernoff_split_width_is_smallest_valid(n, m, beta):
    k = n // m
    t = B.split_width(n, m, beta, method="chernoff")
    hoeff = B.split_width(n, m, beta)
    assert 0 < t <= hoeff
    p = np.concatenate([np.linspace(1e-9, 1 - 1e-9, 100_001), [t, 1 - t]])
    assert _kl_sum(p, t, k).max() <= beta / m * (1 + 1e-6)
    assert _kl_sum(p, t * (1 - 1e-3), k).max() > beta / m  # and no smaller t works


@pytest.mark.parametrize("n,m,beta", [(200, 10, 0.1), (600, 20, 0.05)])
def test_chernoff_split_width_exact_binomial_tails(n, m, beta):
    # Exact binomial tails (Bernoulli queries) at every p on a grid: P(|mean - p| >= t) <= beta/m.
    k = n // m
    t = B.split_width(n, m, beta, method="chernoff")
    p = np.linspace(0.001, 0.999, 999)
    up = stats.binom.sf(np.ceil(k * (p + t) - 1e-9) - 1, k, p)
    lo = stats.binom.cdf(np.floor(k * (p - t) + 1e-9), k, p)
    assert np.max(up + lo) <= beta / m


def test_split_width_simulated_coverage_hoeffding():
    # fixed seed; Bernoulli(1/2) is the worst case for Hoeffding's variance proxy
    rng = np.random.default_rng(0)
    n, m, beta, reps = 30, 10, 0.1, 20_000
    means = rng.binomial(n, 0.5, size=(reps, m)) / n
    dev = np.abs(means - 0.5).max(axis=1)
    width = B.hoeffding_width(n, m, beta)
    assert np.mean(dev <= width) >= 1 - beta
    assert np.mean(dev <= width / 2) < 1 - beta  # broken variant is rejected


# ---------------------------------------------------------------------------------------
# Sample-accuracy tails behind the certificates (simulations with broken variants)
# ---------------------------------------------------------------------------------------


def test_gaussian_sample_accuracy_simulation():
    rng = np.random.default_rng(1)
    m, sigma, beta_s, reps = 50, 0.3, 0.1, 20_000
    z = np.abs(rng.normal(0.0, sigma, size=(reps, m))).max(axis=1)
    alpha_s = sigma * math.sqrt(2 * math.log(2 * m / beta_s))
    assert np.mean(z <= alpha_s) >= 1 - beta_s
    assert np.mean(z <= 0.6 * alpha_s) < 1 - beta_s


def test_laplace_sample_accuracy_simulation():
    rng = np.random.default_rng(2)
    m, scale, beta_s, reps = 10, 0.2, 0.1, 40_000
    z = np.abs(rng.laplace(0.0, scale, size=(reps, m))).max(axis=1)
    alpha_s = scale * math.log(m / beta_s)
    exact = (1 - beta_s / m) ** m  # P(max |Lap| <= alpha_s), >= 1 - beta_s
    assert exact >= 1 - beta_s
    se = math.sqrt(exact * (1 - exact) / reps)
    assert abs(np.mean(z <= alpha_s) - exact) < 4 * se
    assert np.mean(z <= 0.7 * alpha_s) < 1 - beta_s


def _thresholdout_max_error(rng, diffs, threshold, sigma, reps):
    """Max |answer - E_h| of Laplace Thresholdout (unlimited budget) over given E_h - E_t."""
    gamma = rng.laplace(0.0, 2 * sigma, size=reps)
    worst = np.zeros(reps)
    for d in diffs:
        eta = rng.laplace(0.0, 4 * sigma, size=reps)
        hit = abs(d) > threshold + gamma + eta
        xi = rng.laplace(0.0, sigma, size=reps)
        worst = np.maximum(worst, np.where(hit, np.abs(xi), abs(d)))
        gamma = np.where(hit, rng.laplace(0.0, 2 * sigma, size=reps), gamma)
    return worst


def test_thresholdout_sample_accuracy_simulation():
    rng = np.random.default_rng(3)
    m, threshold, sigma, beta_s, reps = 20, 0.02, 1e-4, 0.1, 20_000
    diffs = threshold * np.linspace(0.5, 1.5, m)  # around the threshold: many hits
    worst = _thresholdout_max_error(rng, diffs, threshold, sigma, reps)
    alpha_s = threshold + 6 * sigma * math.log((2 * m + 1) / beta_s)
    assert np.mean(worst <= alpha_s) >= 1 - beta_s
    # broken variant: forgetting the threshold term
    assert np.mean(worst <= alpha_s - threshold) < 1 - beta_s


# ---------------------------------------------------------------------------------------
# Certificates: internal consistency, optimality, spec table (A8)
# ---------------------------------------------------------------------------------------


def _gaussian_width_at(n, m, sigma, beta, c, delta):
    alpha_s = sigma * math.sqrt(2 * math.log(2 * m / (beta * c)))
    eps = B.zcdp_to_dp(B.gaussian_rho(n, sigma, m), delta)
    return B.jung_transfer(alpha_s, eps, delta, c)


def test_gaussian_certificate_consistent_and_optimal_over_c_delta():
    n, m, sigma, beta = 10**5, 1000, 0.02, 0.05
    cert = B.gaussian_certificate(n, m, sigma, beta)
    assert isinstance(cert, B.TransferCertificate)
    assert cert.sigma_or_scale == sigma and cert.beta == beta
    assert 0 < cert.c < 1 and 0 < cert.delta < 1
    assert cert.beta_sample == pytest.approx(beta * cert.c)
    assert cert.alpha_sample == pytest.approx(
        sigma * math.sqrt(2 * math.log(2 * m / cert.beta_sample))
    )
    assert cert.eps == pytest.approx(B.zcdp_to_dp(B.gaussian_rho(n, sigma, m), cert.delta))
    assert cert.width == pytest.approx(
        B.jung_transfer(cert.alpha_sample, cert.eps, cert.delta, cert.c)
    )
    rng = np.random.default_rng(4)
    for log_c, log_d in zip(rng.uniform(-12, 0, 200), rng.uniform(-60, 0, 200)):
        other = _gaussian_width_at(n, m, sigma, beta, math.exp(log_c), math.exp(log_d))
        assert cert.width <= other + 1e-12


def test_gaussian_optimal_minimises_over_sigma():
    cert = _opt(10**5, 1000)
    assert cert == B.gaussian_certificate(10**5, 1000, cert.sigma_or_scale, BETA)
    for factor in (0.5, 0.8, 0.95, 1.05, 1.25, 2.0):
        other = B.gaussian_certificate(10**5, 1000, factor * cert.sigma_or_scale, BETA)
        assert cert.width <= other.width + 1e-12


# spec §1.1 table (Gaussian width, split width), beta = 0.05; None = ">1" / not listed.
_TABLE = {
    (10**4, 10): (0.18, 0.055),
    (10**4, 100): (0.33, 0.20),
    (10**4, 1000): (0.61, 0.73),
    (10**4, 10**4): (None, None),
    (10**4, 10**5): (None, None),
    (10**5, 10): (0.061, 0.017),
    (10**5, 100): (0.11, 0.064),
    (10**5, 1000): (0.20, 0.23),
    (10**5, 10**4): (0.36, 0.80),
    (10**5, 10**5): (0.65, None),
    (10**6, 10): (0.020, 0.005),
    (10**6, 100): (0.037, 0.020),
    (10**6, 1000): (0.066, 0.073),
    (10**6, 10**4): (0.12, 0.25),
    (10**6, 10**5): (0.21, 0.87),
}


@pytest.mark.parametrize("n,m", sorted(_TABLE))
def test_a8_table_of_certified_widths(n, m):
    gauss, split = _TABLE[n, m]
    cert = _opt(n, m)
    if gauss is None:
        assert cert.width > 1.0
    else:
        # the table prints two significant digits
        assert cert.width == pytest.approx(gauss, rel=0.06)
    if split is not None:
        assert B.split_width(n, m, BETA) == pytest.approx(split, rel=0.1)


def test_a8_acceptance_numbers():
    assert _opt(10**5, 1000).width == pytest.approx(0.20, abs=0.02)
    assert _opt(10**5, 10**4).width == pytest.approx(0.36, abs=0.03)
    big = _opt(10**6, 10**4)
    assert big.width == pytest.approx(0.12, abs=0.01)
    assert big.width <= 0.13  # A8 (ii)
    assert big.sigma_or_scale == pytest.approx(0.0093, abs=0.0005)


def test_a8_gaussian_beats_splitting_only_for_many_queries():
    for n in (10**5, 10**6):
        assert _opt(n, 10**4).width < B.split_width(n, 10**4, BETA)
    for n in (10**4, 10**5, 10**6):
        for m in (10, 100):
            assert _opt(n, m).width > B.split_width(n, m, BETA)


def test_laplace_certificate_consistent_and_optimal():
    n, m, scale, beta = 10**5, 1000, 0.01, 0.05
    cert = B.laplace_certificate(n, m, scale, beta)
    assert cert.beta_sample == pytest.approx(beta * cert.c)
    assert cert.alpha_sample == pytest.approx(scale * math.log(m / cert.beta_sample))
    assert cert.eps == pytest.approx(B.laplace_epsilon(n, scale, m, cert.delta))
    assert cert.width == pytest.approx(
        B.jung_transfer(cert.alpha_sample, cert.eps, cert.delta, cert.c)
    )
    rng = np.random.default_rng(5)
    for log_c, log_d in zip(rng.uniform(-12, 0, 200), rng.uniform(-60, 0, 200)):
        c, d = math.exp(log_c), math.exp(log_d) * (log_d > -50)  # some delta = 0
        eps = B.laplace_epsilon(n, scale, m, d)
        other = B.jung_transfer(scale * math.log(m / (beta * c)), eps, d, c)
        assert cert.width <= other + 1e-12
    # few answers: basic composition (pure DP, delta = 0) is optimal; c* = scale
    few = B.laplace_certificate(n, 10, scale, beta)
    assert few.delta == 0.0 and few.eps == pytest.approx(10 / (scale * n))
    assert few.c == pytest.approx(scale, rel=1e-4)


def test_thresholdout_certificate_consistent_and_optimal():
    n, m, thr, sigma, budget, beta = 10**5, 10**4, 0.04, 0.002, 20, 0.05
    cert = B.thresholdout_certificate(n, m, thr, sigma, budget, beta)
    assert cert.delta == 0.0
    assert cert.eps == pytest.approx(B.thresholdout_epsilon(n, sigma, budget))
    assert cert.alpha_sample == pytest.approx(
        thr + 6 * sigma * math.log((2 * m + 1) / cert.beta_sample)
    )
    assert cert.width == pytest.approx(B.jung_transfer(cert.alpha_sample, cert.eps, 0.0, cert.c))
    # d/dc [-6 sigma ln c + c] = 0  ->  c* = 6 sigma
    assert cert.c == pytest.approx(6 * sigma, rel=1e-4)
    # budget-independent sample accuracy; privacy grows with the budget
    more = B.thresholdout_certificate(n, m, thr, sigma, 2 * budget, beta)
    assert more.width > cert.width and more.alpha_sample == pytest.approx(cert.alpha_sample)


# ---------------------------------------------------------------------------------------
# Monotonicity (hypothesis, repo profile)
# ---------------------------------------------------------------------------------------

_n = st.integers(1, 10**7)
_m = st.integers(1, 10**5)
_beta = st.floats(1e-6, 0.5)


@given(_n, _n, _m, _beta)
def test_hoeffding_and_split_monotone(n1, n2, m, beta):
    lo, hi = sorted((n1, n2))
    assert B.hoeffding_width(hi, m, beta) <= B.hoeffding_width(lo, m, beta)
    assert B.hoeffding_width(lo, m + 1, beta) > B.hoeffding_width(lo, m, beta)
    if lo >= m + 1:
        assert B.split_width(hi, m, beta) <= B.split_width(lo, m, beta)
        assert B.split_width(lo, m + 1, beta) >= B.split_width(lo, m, beta)


@given(st.integers(1, 5000), st.integers(1, 200), _beta)
def test_chernoff_split_below_hoeffding(n, m, beta):
    if n < m:
        n = m
    t = B.split_width(n, m, beta, method="chernoff")
    assert 0 < t <= B.split_width(n, m, beta) + 1e-12
    assert t <= 1.0


@given(st.integers(10, 10**7), st.integers(1, 10**5), st.floats(1e-4, 1.0), _beta)
def test_gaussian_certificate_monotone(n, m, sigma, beta):
    base = B.gaussian_certificate(n, m, sigma, beta).width
    assert B.gaussian_certificate(2 * n, m, sigma, beta).width <= base * (1 + 1e-9)
    assert B.gaussian_certificate(n, 2 * m, sigma, beta).width >= base * (1 - 1e-9)


@given(_n, _m, st.integers(0, 100), _beta)
def test_other_bounds_monotone(n, m, budget, beta):
    assert B.sparse_validate_margin(n + 1, m, budget, beta) < B.sparse_validate_margin(
        n, m, budget, beta
    )
    assert B.sparse_validate_margin(n, m + 1, budget, beta) > B.sparse_validate_margin(
        n, m, budget, beta
    )
    assert B.ladder_epsilon(n + 1, m, 0.05, beta) < B.ladder_epsilon(n, m, 0.05, beta)
    assert B.ladder_epsilon(n, m + 1, 0.05, beta) > B.ladder_epsilon(n, m, 0.05, beta)
    acc = B.correlation_attack_accuracy(n, m)
    assert 0.5 < acc <= 1
    assert B.correlation_attack_accuracy(n, m + 1) >= acc
    assert B.correlation_attack_accuracy(n + 1, m) <= acc
    assert B.correlation_attack_accuracy(n, m, 0.01) <= acc


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------

_BAD = [
    (B.hoeffding_width, (0, 10, 0.05), ValueError, "n must be"),
    (B.hoeffding_width, (10.0, 10, 0.05), TypeError, "n must be an integer"),
    (B.hoeffding_width, (10, 0, 0.05), ValueError, "m must be"),
    (B.hoeffding_width, (10, 10, 1.0), ValueError, "beta must be"),
    (B.split_width, (5, 10, 0.05), ValueError, "n must be at least m"),
    (B.split_width, (50, 10, 0.05, "exact"), ValueError, "method must be one of"),
    (B.zcdp_to_dp, (-1.0, 0.1), ValueError, "rho must be"),
    (B.zcdp_to_dp, (1.0, 0.0), ValueError, "delta must be"),
    (B.gaussian_rho, (10, 0.0, 1), ValueError, "sigma must be"),
    (B.laplace_epsilon, (10, -1.0, 1), ValueError, "scale must be"),
    (B.laplace_epsilon, (10, 1.0, 1, 1.0), ValueError, "delta must be"),
    (B.jung_transfer, (-0.1, 0.1, 0.0, 0.1), ValueError, "alpha must be"),
    (B.jung_transfer, (0.1, float("nan"), 0.0, 0.1), ValueError, "eps must not be NaN"),
    (B.jung_transfer, (0.1, 0.1, 0.0, 0.0), ValueError, "c must be"),
    (B.gaussian_certificate, (100, 10, "a", 0.05), TypeError, "sigma must be"),
    (B.gaussian_optimal, (True, 10, 0.05), TypeError, "n must be an integer"),
    (B.gaussian_optimal, (100, 10, 0.0), ValueError, "beta must be"),
    (B.laplace_certificate, (100, 10, 0.0, 0.05), ValueError, "scale must be"),
    (B.thresholdout_theorem_parameters, (0.0, 10, 0.05), ValueError, "tau must be"),
    (B.thresholdout_epsilon, (100, 0.01, -1), ValueError, "budget must be"),
    (B.thresholdout_epsilon, (100, 0.01, 1.5), TypeError, "budget must be an integer"),
    (B.thresholdout_certificate, (100, 10, -0.1, 0.01, 5, 0.05), ValueError, "threshold must"),
    (B.sparse_validate_margin, (100, 10, -1, 0.05), ValueError, "budget must be"),
    (B.ladder_tail_bound, (100, 10, 0.0, 0.1), ValueError, "step must be"),
    (B.ladder_tail_bound, (100, 0, 0.1, 0.1), ValueError, "t must be"),
    (B.ladder_tail_bound, (100, 10, 0.1, -0.1), ValueError, "eps must be"),
    (B.ladder_epsilon, (100, 10, 0.1, 0.0), ValueError, "beta must be"),
    (B.correlation_attack_accuracy, (100, 10, -0.1), ValueError, "sigma must be"),
    (B.pmw_max_updates, (1, 0.1), ValueError, "domain_size must be"),
    (B.pmw_max_updates, (1024, 0.0), ValueError, "alpha must be"),
    (B.max_information_dp, (-1.0, 100, 0.05), ValueError, "eps must be"),
    (B.max_information_bits, (-1.0, 0.05), ValueError, "bits must be"),
    (B.dfhprr_transfer_conditions, (100, 0.0, 0.1, 0.0, 0.05), ValueError, "tau must be"),
    (B.guess_and_check_beta, (0.05, 2, 3, 0.0), ValueError, "failures must be"),
    (B.guess_and_check_beta, (0.05, -1, 0, 0.0), ValueError, "i must be"),
    (B.guess_and_check_beta, (0.05, 2, 1, -1.0), ValueError, "log_gamma_sum must be"),
    (B.guess_and_check_grid, (100, 0.1, 0.0), ValueError, "beta_i must be"),
]


@pytest.mark.parametrize(
    "fn,args,exc,match", _BAD, ids=[f"{f.__name__}-{i}" for i, (f, *_) in enumerate(_BAD)]
)
def test_bad_input_names_the_argument(fn, args, exc, match):
    with pytest.raises(exc, match=match):
        fn(*args)


def test_all_exports_exist():
    for name in B.__all__:
        assert hasattr(B, name), name
