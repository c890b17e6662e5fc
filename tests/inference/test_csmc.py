"""Conditional SMC and particle Gibbs (spec A9), with the mutant that must fail.

Model M1 with T = 20: ``x_0 ~ N(0,1)``, ``x_t = 0.9 x_{t−1} + N(0,1)``, ``y_t = x_t + N(0,1)``.
Exact smoothing draws come from the NumPy forward-filter backward-sampler
(:func:`theorylab.inference.reference.ffbs_sample`, no code shared with the CSMC). One CSMC
sweep started at exact draws must leave ``p(x_{0:T−1} | y)`` invariant for any ``N ≥ 2``:
one-sample KS tests of ``x_0, x_10, x_19`` and ``Σ_t x_t`` against their exact Gaussian
laws (RTS smoother moments / joint covariance), Bonferroni over the 4 statistics; each test
passes at ``min p > 1e-4`` (per-test false-positive rate ≤ 1e-4). The mutant (slot 0 resampled
like the others, i.e. an unconditional filter) must give ``p < 1e-8`` at N = 2 and N = 16.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from theorylab.inference import linear_gaussian, pmcmc, reference

T = 20
RUNS = 50_000


@functools.cache
def _problem():
    rng = np.random.default_rng(20)
    x = np.zeros(T)
    x[0] = rng.standard_normal()
    for t in range(1, T):
        x[t] = 0.9 * x[t - 1] + rng.standard_normal()
    ys = (x + rng.standard_normal(T))[:, None]
    sm = reference.kalman_smoother(ys, 0.9, 1.0, 1.0, 1.0, 0.0, 1.0)
    return ys, sm


def _p_values(paths, sm):
    paths = np.asarray(paths, float)[:, :, 0]
    ps = []
    for t in (0, T // 2, T - 1):
        sd = np.sqrt(sm.covariances[t, 0, 0])
        ps.append(stats.kstest((paths[:, t] - sm.means[t, 0]) / sd, "norm").pvalue)
    total_sd = np.sqrt(sm.joint_covariance.sum())
    ps.append(stats.kstest((paths.sum(1) - sm.means.sum()) / total_sd, "norm").pvalue)
    return min(1.0, 4 * min(ps))


@functools.cache
def _sweeps(num_particles, ancestor_sampling, conditional):
    ssm, params = linear_gaussian(0.9, 1.0, 1.0, 1.0, 0.0, 1.0)

    def one(key, ref, ys):
        return pmcmc.csmc(
            key,
            ssm,
            ys,
            ref,
            num_particles=num_particles,
            params=params,
            ancestor_sampling=ancestor_sampling,
            conditional=conditional,
        )

    return jax.jit(jax.vmap(one, (0, 0, None)))


def _run(num_particles, ancestor_sampling, conditional=True, seed=0):
    ys, sm = _problem()
    refs = reference.ffbs_sample(np.random.default_rng(seed), sm, RUNS).astype(np.float32)
    keys = jax.random.split(jax.random.key(seed + 1), RUNS)
    fn = _sweeps(num_particles, ancestor_sampling, conditional)
    paths, info = fn(keys, jnp.asarray(refs), jnp.asarray(ys, jnp.float32))
    return paths, info, sm


@pytest.mark.parametrize("num_particles", [2, 16])
@pytest.mark.parametrize("ancestor_sampling", [False, True])
def test_csmc_preserves_smoothing_distribution(num_particles, ancestor_sampling):
    paths, info, sm = _run(num_particles, ancestor_sampling)
    rate = np.asarray(info.updated).mean(axis=0)
    assert rate[-1] > 0.15  # the kernel really moves the last state (0.23 at N = 2)
    if ancestor_sampling:
        assert rate[0] > 0.3  # ... and, with ancestor sampling, the first one (0.39 at N = 2)
    assert _p_values(paths, sm) > 1e-4


@pytest.mark.parametrize("num_particles", [2, 16])
def test_mutant_reference_resampled_like_others_rejected(num_particles):
    paths, _, sm = _run(num_particles, False, conditional=False)
    assert _p_values(paths, sm) < 1e-8


def test_ancestor_sampling_improves_early_update_rate():
    _, info_plain, _ = _run(16, False)
    _, info_as, _ = _run(16, True)
    plain = np.asarray(info_plain.updated).mean(0)
    with_as = np.asarray(info_as.updated).mean(0)
    assert with_as[0] > plain[0] + 0.2
    # slot 0 keeps ancestor 0 without ancestor sampling
    assert np.all(np.asarray(info_plain.reference_ancestor) == 0)


def _a_posterior_grid(ys):
    grid = np.linspace(-1.5, 1.5, 3001)
    loglik = np.array(
        [reference.kalman_filter(ys, a, 1.0, 1.0, 1.0, 0.0, 1.0).log_likelihood for a in grid]
    )
    logpost = loglik - 0.5 * grid**2  # prior a ~ N(0, 1)
    w = np.exp(logpost - logpost.max())
    w /= w.sum()
    return grid, w


def test_particle_gibbs_matches_grid_posterior():
    """θ = a with prior N(0,1); exact conjugate draw of a | x. Posterior mean of a within
    4 batch-means standard errors of the Kalman-grid mean (false-positive rate ≈ 6e-5)."""
    ys, _ = _problem()
    ssm, params = linear_gaussian(0.9, 1.0, 1.0, 1.0, 0.0, 1.0)

    def params_fn(a):
        return params._replace(A=jnp.reshape(a, (1, 1)))

    def theta_step(key, a, x):
        x = x[:, 0]
        prec = 1.0 + jnp.sum(x[:-1] ** 2)
        mean = jnp.sum(x[1:] * x[:-1]) / prec
        return mean + jax.random.normal(key) / jnp.sqrt(prec)

    chains, iters, burn = 8, 2000, 200
    run = jax.jit(
        jax.vmap(
            lambda k: pmcmc.particle_gibbs(
                k,
                ssm,
                jnp.asarray(ys, jnp.float32),
                jnp.asarray(0.0),
                params_fn=params_fn,
                theta_step=theta_step,
                num_particles=10,
                num_iterations=iters,
            )[:3]
        )
    )
    thetas, _, rate = run(jax.random.split(jax.random.key(3), chains))
    draws = np.asarray(thetas)[:, burn:]
    grid, w = _a_posterior_grid(ys)
    truth = float(grid @ w)
    batches = draws.reshape(chains, 20, -1).mean(-1).ravel()
    se = batches.std(ddof=1) / np.sqrt(batches.size)
    assert abs(draws.mean() - truth) < 4 * se, (draws.mean(), truth, se)
    assert float(np.asarray(rate).min()) > 0.2


def test_csmc_bad_input():
    ssm, params = linear_gaussian(0.9, 1.0, 1.0, 1.0, 0.0, 1.0)
    ys = jnp.zeros((5, 1))
    ref = jnp.zeros((5, 1))
    with pytest.raises(ValueError, match="num_particles"):
        pmcmc.csmc(jax.random.key(0), ssm, ys, ref, num_particles=1, params=params)
    with pytest.raises(ValueError, match="reference"):
        pmcmc.csmc(jax.random.key(0), ssm, ys, jnp.zeros((4, 1)), num_particles=4, params=params)
    with pytest.raises(ValueError, match="transition_logpdf"):
        pmcmc.csmc(
            jax.random.key(0),
            ssm._replace(transition_logpdf=None),
            ys,
            ref,
            num_particles=4,
            params=params,
        )
    with pytest.raises(TypeError, match="ssm"):
        pmcmc.csmc(jax.random.key(0), object(), ys, ref, num_particles=4, params=params)
