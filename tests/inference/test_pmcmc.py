"""PMMH (spec A8): the chain targets the exact posterior even with a noisy likelihood estimate.

Model M1 with T = 50 and unknown a ~ U(−1, 1); the reference posterior of a is computed on a
2000-point grid from the NumPy Kalman likelihood (independent code). Checks: |posterior mean −
grid mean| ≤ 4·MCSE (MCSE from numpyro's multi-chain ESS; false-positive rate ≈ 6e-5) and KS
of ESS-thinned draws against the grid CDF (p > 1e-3). The "recompute the current Ẑ" mutant
(Monte Carlo within Metropolis) must fail the same test at N = 20.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.diagnostics import effective_sample_size
from scipy import stats

from theorylab.inference import (
    bootstrap,
    linear_gaussian,
    linear_gaussian_observation_sample,
    simulate,
)
from theorylab.inference.models import LinearGaussianParams
from theorylab.inference.pmcmc import pmmh
from theorylab.inference.reference import kalman_filter

T, A_TRUE = 50, 0.7


@functools.cache
def _setup():
    ssm, params = linear_gaussian(A_TRUE, 1.0, 1.0, 1.0, 0.0, 1.0)
    _, ys = simulate(jax.random.key(11), ssm, params, T, linear_gaussian_observation_sample)
    y = np.asarray(ys, float)
    grid = np.linspace(-1, 1, 2002)[1:-1]
    loglik = np.array([kalman_filter(y, a, 1.0, 1.0, 1.0, 0.0, 1.0).log_likelihood for a in grid])
    post = np.exp(loglik - loglik.max())
    post /= post.sum()
    return ssm, params, ys, grid, post


def log_prior(theta):
    return jnp.where(jnp.abs(theta) < 1.0, -jnp.log(2.0), -jnp.inf)


def params_fn(theta):
    _, params, _, _, _ = _setup()
    return LinearGaussianParams(
        theta.reshape(1, 1), params.Q, params.H, params.R, params.m0, params.P0
    )


def _chains(n, iterations, recompute=False, chains=4):
    ssm, _, ys, _, _ = _setup()
    keys = jax.random.split(jax.random.key(100 + n), chains)
    theta0 = jnp.linspace(0.3, 0.9, chains)

    def one(k, t0):
        thetas, infos, _ = pmmh(
            k,
            bootstrap(ssm),
            ys,
            log_prior,
            params_fn,
            t0,
            num_particles=n,
            step_size=0.1,
            num_iterations=iterations,
            recompute_current=recompute,
        )
        return thetas, infos.accepted.mean()

    thetas, acc = zip(*(one(k, t0) for k, t0 in zip(keys, theta0)))
    burn = iterations // 10
    return np.stack([np.asarray(t)[burn:] for t in thetas]), float(np.mean(acc))


def _check(draws):
    _, _, _, grid, post = _setup()
    mean = float(np.sum(grid * post))
    ess = float(effective_sample_size(draws))
    mcse = draws.std() / np.sqrt(ess)
    z = abs(draws.mean() - mean) / mcse
    thin = max(1, int(np.ceil(draws.size / ess)))
    thinned = draws[:, ::thin].ravel()
    cdf = np.cumsum(post)
    ks = stats.kstest(thinned, lambda x: np.interp(x, grid, cdf)).pvalue
    return z, ks, ess


@pytest.mark.parametrize("n,iterations", [(20, 6000), (200, 2000)])
def test_pmmh_targets_grid_posterior(n, iterations):
    draws, acc = _chains(n, iterations)
    z, ks, ess = _check(draws)
    assert 0.05 < acc < 0.9
    assert ess > 100
    assert z <= 4.0, (z, ess)
    assert ks > 1e-3, (ks, ess)


def test_recompute_current_mutant_rejected():
    draws, _ = _chains(20, 6000, recompute=True)
    z, ks, _ = _check(draws)
    assert z > 4.0 or ks < 1e-3, (z, ks)


def test_bad_input():
    ssm, _, ys, _, _ = _setup()
    with pytest.raises(ValueError, match="finite prior density"):
        pmmh(
            jax.random.key(0),
            bootstrap(ssm),
            ys,
            log_prior,
            params_fn,
            jnp.asarray(2.0),
            num_particles=10,
            step_size=0.1,
            num_iterations=5,
        )
    with pytest.raises(ValueError, match="step_size must be in"):
        pmmh(
            jax.random.key(0),
            bootstrap(ssm),
            ys,
            log_prior,
            params_fn,
            jnp.asarray(0.5),
            num_particles=10,
            step_size=0.0,
            num_iterations=5,
        )
