"""Checks of the paper's *composed* algorithms: trace MH (MHG), resample–move SMC, PMMH,
particle Gibbs, and SBC rank histograms for RMSMC and PMMH.

Each check returns a :class:`~theorylab.inference.validation.ValidationResult`; p-value checks
use ``statistic = −log10 p`` against ``threshold = −log10 α`` (pass iff ``p > α``), with
α = 1e-4 per check (fixed seeds). Every valid algorithm is paired with a mutant the same check
must reject.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from theorylab.inference import (
    bootstrap,
    linear_gaussian,
    linear_gaussian_observation_sample,
    mcmc,
    pmcmc,
    reference,
    simulate,
    traced,
)
from theorylab.inference import tempering as tp
from theorylab.inference.calibration import sbc
from theorylab.inference.models import LinearGaussianParams
from theorylab.inference.validation import ValidationResult, check_evidence_unbiased

ALPHA = 1e-4


def _p_result(name, p, details=None):
    p = float(max(p, 1e-300))
    return ValidationResult(
        name, -np.log10(p), -np.log10(ALPHA), p > ALPHA, {"p": p, **(details or {})}
    )


# --- trace MH on the trans-dimensional program ------------------------------------------------

NMAX, K_BUFFER = 10, 20


def _chi2_p(counts, post):
    expected = post.ravel() * counts.sum()
    keep = expected > 0
    obs, exp = counts.ravel()[keep], expected[keep]
    small = exp < 5  # pool sparse cells
    obs = np.append(obs[~small], obs[small].sum())
    exp = np.append(exp[~small], exp[small].sum())
    return stats.chisquare(obs, exp).pvalue


@functools.cache
def _trace_runner(correct_dimension, num_steps):
    prog = traced.geometric_bernoulli_program(NMAX)

    def chain(key, u0):
        state, _ = traced.trace_mh_chain(
            key, prog, u0, num_steps, correct_dimension=correct_dimension
        )
        return state.out

    return jax.jit(jax.vmap(chain))


def trace_mh_checks(seed, chains, steps):
    """Chains from the prior must reach the enumerated posterior; the no-n/n′ mutant not."""
    post = reference.geometric_bernoulli_posterior(NMAX)
    rows = []
    for correct in (True, False):
        k0, k1 = jax.random.split(jax.random.key(seed))
        u0 = jax.random.uniform(k0, (chains, K_BUFFER))  # K ≥ 19 reads: every buffer is valid
        n, s = _trace_runner(correct, steps)(jax.random.split(k1, chains), u0)
        counts = np.zeros_like(post)
        np.add.at(counts, (np.asarray(n), np.asarray(s)), 1.0)
        tv = 0.5 * np.abs(counts / counts.sum() - post).sum()
        label = "trace MH (n/n′ included)" if correct else "MUTANT trace MH without n/n′"
        rows.append(_p_result(label, _chi2_p(counts, post), {"tv": float(tv)}))
    return rows


# --- resample–move (tempered) SMC -------------------------------------------------------------

D, M_OBS = 2, 20


@functools.cache
def _conjugate():
    rng = np.random.default_rng(0)
    ys = rng.normal(size=D) + rng.normal(size=(M_OBS, D))
    cov = np.eye(M_OBS) + np.ones((M_OBS, M_OBS))
    log_z = sum(stats.multivariate_normal(np.zeros(M_OBS), cov).logpdf(ys[:, d]) for d in range(D))
    return ys, float(log_z)


def _lp(z, a):
    return -0.5 * jnp.sum(z**2) - 0.5 * z.shape[-1] * jnp.log(2 * jnp.pi)


def _terms(z, a):
    return jnp.sum(-0.5 * (a - z) ** 2 - 0.5 * jnp.log(2 * jnp.pi), axis=1)


def _ll(z, a):
    return jnp.sum(_terms(z, a))


def _sample_prior(k, a):
    return jax.random.normal(k, (D,))


def _wrong_kernel(key, state, logdensity_fn, *, args):
    """Mutant: rejuvenates towards the final posterior, not the current tempered target."""

    def final(z):
        return _lp(z, args) + _ll(z, args)

    return mcmc.rwmh_step(key, mcmc.init(state.position, final), final, 0.3)


def rmsmc_checks(seed, seeds):
    ys, log_z = _conjugate()
    args = jnp.asarray(ys, jnp.float32)
    target = tp.target_from_functions(
        _lp, _ll, _sample_prior, log_likelihood_terms=_terms, args=args
    )
    keys = jax.random.split(jax.random.key(seed), seeds)
    schedule = np.geomspace(1e-3, 1.0, 10)
    common = {"num_particles": 128, "num_mcmc_steps": 3}
    rows = []
    res = tp.tempered_smc(
        keys, target, kernel="rwmh", kernel_params={"step_size": 0.3}, schedule=schedule, **common
    )
    rows.append(
        ("tempered RMSMC (fixed schedule)", check_evidence_unbiased(res.log_evidence, log_z))
    )
    res = tp.data_annealing_smc(
        keys, target, kernel="rwmh", kernel_params={"step_size": 0.3}, num_stages=10, **common
    )
    rows.append(("data-annealing RMSMC (IBIS)", check_evidence_unbiased(res.log_evidence, log_z)))
    res = tp.tempered_smc(
        keys,
        target,
        kernel=functools.partial(_wrong_kernel, args=args),
        schedule=schedule,
        **common,
    )
    rows.append(
        (
            "MUTANT RMSMC moving towards the final posterior",
            check_evidence_unbiased(res.log_evidence, log_z),
        )
    )
    return rows, log_z


# --- particle Gibbs: one CSMC sweep from exact smoothing draws ---------------------------------


@functools.cache
def _smoothing_problem(horizon=20):
    rng = np.random.default_rng(20)
    x = np.zeros(horizon)
    x[0] = rng.standard_normal()
    for t in range(1, horizon):
        x[t] = 0.9 * x[t - 1] + rng.standard_normal()
    ys = (x + rng.standard_normal(horizon))[:, None]
    return ys, reference.kalman_smoother(ys, 0.9, 1.0, 1.0, 1.0, 0.0, 1.0)


def csmc_checks(seed, runs):
    ys, sm = _smoothing_problem()
    ssm, params = linear_gaussian(0.9, 1.0, 1.0, 1.0, 0.0, 1.0)
    refs = reference.ffbs_sample(np.random.default_rng(seed), sm, runs).astype(np.float32)
    keys = jax.random.split(jax.random.key(seed), runs)
    horizon = ys.shape[0]
    rows = []
    for n, ancestor, conditional in ((2, True, True), (16, False, True), (2, False, False)):

        def one(k, ref, n=n, ancestor=ancestor, conditional=conditional):
            return pmcmc.csmc(
                k,
                ssm,
                jnp.asarray(ys, jnp.float32),
                ref,
                num_particles=n,
                params=params,
                ancestor_sampling=ancestor,
                conditional=conditional,
            )[0]

        paths = np.asarray(jax.jit(jax.vmap(one))(keys, jnp.asarray(refs)), float)[:, :, 0]
        ps = []
        for t in (0, horizon // 2, horizon - 1):
            z = (paths[:, t] - sm.means[t, 0]) / np.sqrt(sm.covariances[t, 0, 0])
            ps.append(stats.kstest(z, "norm").pvalue)
        z = (paths.sum(1) - sm.means.sum()) / np.sqrt(sm.joint_covariance.sum())
        ps.append(stats.kstest(z, "norm").pvalue)
        if conditional:
            label = f"CSMC sweep, N={n}, ancestor sampling={'on' if ancestor else 'off'}"
        else:
            label = f"MUTANT CSMC with the reference resampled like the others, N={n}"
        rows.append(_p_result(label, min(1.0, 4 * min(ps))))
    return rows


# --- SBC for RMSMC and PMMH ------------------------------------------------------------------


def _sbc_prior(key):
    return jax.random.normal(key, ())


def _sbc_data(key, theta):
    return theta + jax.random.normal(key, (5,))


def _sbc_lp(z, y):
    return -0.5 * z**2


def _sbc_ll(z, y):
    return -0.5 * jnp.sum((y - z) ** 2)


def _sbc_sample_prior(key, y):
    return jax.random.normal(key, ())


def _rmsmc_posterior(key, y, n, *, num_mcmc_steps):
    target = tp.target_from_functions(_sbc_lp, _sbc_ll, _sbc_sample_prior, args=y)
    return tp.tempered_smc(
        key,
        target,
        num_particles=n,
        kernel="rwmh",
        kernel_params={"step_size": 0.8},
        num_mcmc_steps=num_mcmc_steps,
        schedule=[0.05, 0.2, 0.5, 1.0],
    ).particles


SSM_T = 20
PMMH_PARTICLES = 10


@functools.cache
def _pmmh_model():
    return linear_gaussian(0.5, 1.0, 1.0, 1.0, 0.0, 1.0)


def _pmmh_prior(key):
    return jax.random.uniform(key, (), minval=-0.95, maxval=0.95)


def _pmmh_log_prior(a):
    return jnp.where(jnp.abs(a) < 0.95, 0.0, -jnp.inf)


def _pmmh_params(a):
    _, p = _pmmh_model()
    return LinearGaussianParams(jnp.reshape(a, (1, 1)), p.Q, p.H, p.R, p.m0, p.P0)


def _pmmh_data(key, a):
    ssm, _ = _pmmh_model()
    xs, ys = simulate(key, ssm, _pmmh_params(a), SSM_T, linear_gaussian_observation_sample)
    return {"ys": ys, "a": a, "xs": xs}


def _pmmh_posterior(key, data, n, *, recompute):
    """PMMH started in stationarity on its extended space: θ0 = the θ that generated the data
    (an exact posterior draw), and log Ẑ(θ0) from a conditional SMC run whose reference is the
    generating latent path (an exact draw of x | θ0, y) — a fresh filter run would not be
    stationary (its Ẑ is not size-biased). SBC's thinning makes kept draws nearly independent.
    """
    ssm, _ = _pmmh_model()
    k_csmc, k_pmmh = jax.random.split(key)
    _, info = pmcmc.csmc(
        k_csmc,
        ssm,
        data["ys"],
        data["xs"],
        num_particles=PMMH_PARTICLES,
        params=_pmmh_params(data["a"]),
        ancestor_sampling=False,
    )
    thetas, _, _ = pmcmc.pmmh(
        k_pmmh,
        bootstrap(ssm),
        data["ys"],
        _pmmh_log_prior,
        _pmmh_params,
        data["a"],
        num_particles=PMMH_PARTICLES,
        step_size=0.25,
        num_iterations=n,
        resampler="multinomial",
        ess_threshold=1.0,
        recompute_current=recompute,
        initial_log_evidence=info.log_evidence,
    )
    return thetas


def _sbc_prior_only(z):
    return -0.5 * z**2


def _prior_kernel(key, state, logdensity_fn):
    """Mutant: a random-walk move invariant for the prior, not for the current target."""
    return mcmc.rwmh_step(key, mcmc.init(state.position, _sbc_prior_only), _sbc_prior_only, 0.8)


def _wrong_move_posterior(key, y, n):
    target = tp.target_from_functions(_sbc_lp, _sbc_ll, _sbc_sample_prior, args=y)
    return tp.tempered_smc(
        key,
        target,
        num_particles=n,
        kernel=_prior_kernel,
        num_mcmc_steps=2,
        schedule=[0.05, 0.2, 0.5, 1.0],
    ).particles


def sbc_checks(seed, replicates, thin):
    """SBC (Talts et al. 2018) of the composed samplers, 19 draws per replicate, 20 bins.

    For PMMH the data pytree also carries the generating θ and latent path, used only to start
    the chain in stationarity (see :func:`_pmmh_posterior`). A chain that never moved would
    then still give uniform ranks (ties are broken at random), so SBC here checks
    *invariance*, which is what the MCwM mutant breaks.
    """
    out = {}
    _pmmh_model()  # build (and cache) the model outside any trace
    rm = functools.partial(_rmsmc_posterior, num_mcmc_steps=5)
    for label, post in (
        ("SBC: tempered RMSMC (19 particles)", rm),
        ("MUTANT SBC: RMSMC whose moves target the prior, not γ_k", _wrong_move_posterior),
    ):
        out[label] = sbc(
            jax.random.key(seed),
            _sbc_prior,
            _sbc_data,
            post,
            num_replicates=replicates,
            num_posterior_draws=19,
            num_bins=20,
        )
    # (the MCwM mutant is not detected by SBC at this budget — measured p ≈ 0.58 with 400
    # replicates — so its rejection is shown by the grid-posterior check of pmmh_checks)
    for label, recompute in (("SBC: PMMH (N=10 particles, thinned)", False),):
        out[label] = sbc(
            jax.random.key(seed + 1),
            _pmmh_prior,
            _pmmh_data,
            functools.partial(_pmmh_posterior, recompute=recompute),
            num_replicates=replicates,
            num_posterior_draws=19,
            num_bins=20,
            thin=thin,
        )
    return out


# --- PMMH against the Kalman grid posterior ---------------------------------------------------

PMMH_T, PMMH_A = 50, 0.7


@functools.cache
def _grid_problem():
    ssm, params = linear_gaussian(PMMH_A, 1.0, 1.0, 1.0, 0.0, 1.0)
    _, ys = simulate(jax.random.key(11), ssm, params, PMMH_T, linear_gaussian_observation_sample)
    y = np.asarray(ys, float)
    grid = np.linspace(-0.95, 0.95, 2000)
    loglik = np.array(
        [reference.kalman_filter(y, a, 1.0, 1.0, 1.0, 0.0, 1.0).log_likelihood for a in grid]
    )
    post = np.exp(loglik - loglik.max())
    return ssm, ys, grid, post / post.sum()


def pmmh_checks(seed, iterations, chains=4):
    """PMMH (N = 20) posterior mean of a vs the grid posterior: z = |mean − grid mean| / MCSE
    (bulk-ESS based, :mod:`theorylab.inference.diagnostics`) and KS of ESS-thinned draws
    against the grid CDF: pass iff z ≤ 4 and p > 1e-3 (spec A8); the Monte Carlo within
    Metropolis mutant (current Ẑ recomputed) must fail one of them."""
    from theorylab.inference import diagnostics

    _pmmh_model()  # build (and cache) outside any trace
    ssm, ys, grid, post = _grid_problem()
    truth = float(grid @ post)
    rows = []
    for label, recompute in (
        ("PMMH, N=20 (pseudo-marginal)", False),
        ("MUTANT PMMH recomputing the current Ẑ (MCwM)", True),
    ):

        def one(k, t0, recompute=recompute):
            thetas, infos, _ = pmcmc.pmmh(
                k,
                bootstrap(ssm),
                ys,
                _pmmh_log_prior,
                _pmmh_params,
                t0,
                num_particles=20,
                step_size=0.1,
                num_iterations=iterations,
                recompute_current=recompute,
            )
            return thetas, infos.accepted.mean()

        keys = jax.random.split(jax.random.key(seed), chains)
        thetas, acc = jax.jit(jax.vmap(one))(keys, jnp.linspace(0.3, 0.9, chains))
        draws = np.asarray(thetas, float)[:, iterations // 10 :]
        mcse = float(diagnostics.mcse_mean(draws))
        z = abs(draws.mean() - truth) / mcse
        ess = float(diagnostics.ess_bulk(draws))
        thinned = draws[:, :: max(1, int(np.ceil(draws.size / ess)))].ravel()
        cdf = np.cumsum(post)
        ks = stats.kstest(thinned, lambda x: np.interp(x, grid, cdf)).pvalue
        rows.append(
            ValidationResult(
                label,
                float(z),
                4.0,
                bool(z <= 4.0 and ks > 1e-3),
                {
                    "ks_p_thinned": float(ks),
                    "posterior_mean": float(draws.mean()),
                    "grid_mean": truth,
                    "mcse": mcse,
                    "ess_bulk": ess,
                    "acceptance": float(np.mean(acc)),
                },
            )
        )
    return rows
