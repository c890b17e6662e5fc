"""Particle filters: Ẑ unbiasedness vs Kalman (A4), filtering accuracy (A5), block composition,
guided/auxiliary variants, degenerate weights, diagnostics and bad input."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

from theorylab.core.checks import x64_enabled
from theorylab.inference import (
    FeynmanKac,
    advance,
    auxiliary,
    bootstrap,
    guided,
    hidden_markov,
    hidden_markov_observation_sample,
    init_population,
    linear_gaussian,
    linear_gaussian_observation_sample,
    linear_gaussian_optimal_proposal,
    particle_filter,
    simulate,
    smc,
    systematic,
)
from theorylab.inference.reference import hmm_forward, kalman_filter
from theorylab.inference.validation import (
    check_evidence_unbiased,
    mutant_reweight_mean_potential,
)

A, Q, H, R, M0, P0 = 0.9, 1.0, 1.0, 1.0, 0.0, 1.0


def _m1(num_steps=100, seed=0):
    """Model M1 of the spec (1-D LG-SSM) with data simulated from a fixed seed (cached per
    precision, so float64 arrays never leak into float32 tests)."""
    return _m1_cached(num_steps, seed, x64_enabled())


@functools.cache
def _m1_cached(num_steps, seed, x64):
    ssm, params = linear_gaussian(A, Q, H, R, M0, P0)
    _, ys = simulate(
        jax.random.key(seed), ssm, params, num_steps, linear_gaussian_observation_sample
    )
    kf = kalman_filter(np.asarray(ys, float), A, Q, H, R, M0, P0)
    return ssm, params, ys, kf


def test_kalman_reference_against_dense_gaussian():
    """The NumPy Kalman log-likelihood equals the joint Gaussian density of y (independent)."""
    from scipy.stats import multivariate_normal

    t = 6
    ys = np.random.default_rng(0).normal(size=t)
    cov_x = np.zeros((t, t))
    var = [P0]
    for _ in range(1, t):
        var.append(A**2 * var[-1] + Q)
    for i in range(t):
        for j in range(t):
            cov_x[i, j] = A ** abs(i - j) * var[min(i, j)]
    expected = multivariate_normal(np.zeros(t), cov_x + R * np.eye(t)).logpdf(ys)
    assert abs(kalman_filter(ys, A, Q, H, R, M0, P0).log_likelihood - expected) < 1e-10


def test_evidence_unbiased_bootstrap():
    """A4: T=100, N=1000, systematic at every step, S=1000 seeds in one vmapped call; both
    z-tests at 3.9 (false-positive rate ≈ 1e-4 each). The mutant that forgets the evidence of
    the previous weights (mean-G increment) under adaptive resampling fails with the same keys."""
    ssm, params, ys, kf = _m1()
    keys = jax.random.split(jax.random.key(42), 1000)
    out = particle_filter(keys, bootstrap(ssm), ys, 1000, params=params, ess_threshold=1.0)
    result = check_evidence_unbiased(np.asarray(out.log_evidence, float), kf.log_likelihood)
    assert result.passed, result
    assert 0.1 < result.details["sd_log_evidence"] < 0.6


def test_evidence_unbiased_small_n_lognormal():
    """A4 at N=100 (sd(log Ẑ) ≈ 1): the log-normal moment check must pass."""
    ssm, params, ys, kf = _m1()
    keys = jax.random.split(jax.random.key(43), 1000)
    out = particle_filter(keys, bootstrap(ssm), ys, 100, params=params, ess_threshold=0.5)
    result = check_evidence_unbiased(np.asarray(out.log_evidence, float), kf.log_likelihood)
    assert abs(result.details["z_lognormal"]) <= 3.9, result


def test_evidence_mutant_mean_g_rejected(monkeypatch):
    """Power: with adaptive resampling, an increment of log mean(G) (ignoring weights) is biased
    and the same test rejects it with the same keys (|z| far above 3.9)."""
    ssm, params, ys, kf = _m1()

    monkeypatch.setattr(smc, "reweight", mutant_reweight_mean_potential)
    smc._filter.clear_cache()
    keys = jax.random.split(jax.random.key(42), 1000)
    out = particle_filter(keys, bootstrap(ssm), ys, 1000, params=params, ess_threshold=0.3)
    smc._filter.clear_cache()
    result = check_evidence_unbiased(np.asarray(out.log_evidence, float), kf.log_likelihood)
    assert not result.passed and result.statistic > 10, result


def test_filtering_accuracy_large_n():
    """A5: N=10⁵, T=100: max_t |Ê[x_t] − m_t|/√P_t ≤ 0.05 (MC error ≈ 0.005 per step, so the
    threshold is ~10 standard errors at the worst of 100 steps)."""
    ssm, params, ys, kf = _m1()
    out = particle_filter(
        jax.random.key(5),
        bootstrap(ssm),
        ys,
        100_000,
        params=params,
        summary_fn=lambda pop: jnp.stack(
            [
                jnp.sum(jnp.exp(pop.log_weights) * pop.particles[:, 0]),
                jnp.sum(jnp.exp(pop.log_weights) * pop.particles[:, 0] ** 2),
            ]
        ),
    )
    mean = np.asarray(out.summaries[:, 0], float)
    var = np.asarray(out.summaries[:, 1], float) - mean**2
    m, p = kf.means[:, 0], kf.covariances[:, 0, 0]
    assert np.max(np.abs(mean - m) / np.sqrt(p)) <= 0.05
    assert np.max(np.abs(var / p - 1)) <= 0.1


def test_guided_optimal_proposal_unbiased_and_better():
    ssm, params, ys, kf = _m1()
    model = guided(ssm, *linear_gaussian_optimal_proposal())
    keys = jax.random.split(jax.random.key(9), 400)
    g = particle_filter(keys, model, ys, 200, params=params)
    b = particle_filter(keys, bootstrap(ssm), ys, 200, params=params)
    result = check_evidence_unbiased(np.asarray(g.log_evidence, float), kf.log_likelihood)
    assert result.passed, result
    assert np.std(np.asarray(g.log_evidence)) < 0.7 * np.std(np.asarray(b.log_evidence))


def test_auxiliary_filter_unbiased_and_untwisted_means():
    ssm, params, ys, kf = _m1()

    def lookahead(t, x_prev, y, p):  # observation density at the predicted mean
        return jax.scipy.stats.norm.logpdf(y[0], (p.H @ p.A @ x_prev)[0], 1.0)

    model = auxiliary(ssm, lookahead)
    keys = jax.random.split(jax.random.key(11), 400)
    out = particle_filter(keys, model, ys, 300, params=params)
    result = check_evidence_unbiased(np.asarray(out.log_evidence, float), kf.log_likelihood)
    assert result.passed, result
    means = np.asarray(out.summaries[:, :, 0], float).mean(0)  # average over runs
    z = np.abs(means - kf.means[:, 0]) / np.sqrt(kf.covariances[:, 0, 0])
    assert np.max(z) < 0.05


def test_hmm_bootstrap_matches_forward():
    init = np.array([0.5, 0.3, 0.2])
    trans = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]])
    emit = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    ssm, params = hidden_markov(init, trans, emit)
    _, ys = simulate(jax.random.key(2), ssm, params, 50, hidden_markov_observation_sample)
    log_z = np.log(hmm_forward(init, trans, emit, np.asarray(ys))[-1].sum())
    keys = jax.random.split(jax.random.key(3), 500)
    out = particle_filter(keys, bootstrap(ssm), ys, 200, params=params, resampler="residual")
    result = check_evidence_unbiased(np.asarray(out.log_evidence, float), log_z)
    assert result.passed, result


@pytest.mark.x64
def test_scan_equals_manual_composition_of_blocks():
    """advance/finish: the jitted scan equals spawn+reweight then T−1 explicit ``advance`` calls
    with the same keys: identical ancestors at every step, and particles/evidence equal up to
    floating-point reassociation between the two compiled programs (1e-12)."""
    ssm, params, ys, _ = _m1(20)
    model = bootstrap(ssm)
    key = jax.random.key(8)
    out = particle_filter(
        key,
        model,
        ys,
        64,
        params=params,
        resampler="stratified",
        ess_threshold=0.6,
        return_ancestors=True,
    )
    k0 = jax.random.split(jax.random.fold_in(key, 0))[1]
    pop, inc, _ = init_population(k0, model, ys[0], params, 64)
    log_z = inc
    step = jax.jit(
        functools.partial(
            advance,
            model=model,
            params=params,
            resampler=smc.get_resampler("stratified"),
            ess_threshold=0.6,
        )
    )
    for t in range(1, len(ys)):
        pop, info, ancestors = step(key, pop._replace(log_evidence=jnp.zeros(())), t, ys[t])
        np.testing.assert_array_equal(np.asarray(ancestors), np.asarray(out.ancestors[t]))
        log_z = log_z + info.log_evidence_increment
    np.testing.assert_allclose(
        np.asarray(out.population.particles), np.asarray(pop.particles), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(float(out.log_evidence), float(log_z), rtol=1e-12)


@pytest.mark.x64
def test_no_resampling_equals_sequential_importance_sampling():
    """ESS threshold 0: log Ẑ = log mean_i Π_t G_t(x^i) recomputed from the stored paths."""
    ssm, params, ys, _ = _m1(15)
    out = particle_filter(
        jax.random.key(1),
        bootstrap(ssm),
        ys,
        50,
        params=params,
        ess_threshold=0.0,
        return_history=True,
        return_ancestors=True,
    )
    assert not np.any(np.asarray(out.info.resampled))
    np.testing.assert_array_equal(np.asarray(out.ancestors), np.tile(np.arange(50), (15, 1)))
    paths = np.asarray(out.history.particles[:, :, 0], float)  # (T, N)
    log_g = -0.5 * (np.asarray(ys)[:, :1] - paths) ** 2 - 0.5 * np.log(2 * np.pi)
    expected = logsumexp(log_g.sum(0)) - np.log(50)
    np.testing.assert_allclose(float(out.log_evidence), float(expected), rtol=1e-12)


def test_batched_keys_equal_single_runs():
    ssm, params, ys, _ = _m1(30)
    keys = jax.random.split(jax.random.key(0), 3)
    batch = particle_filter(keys, bootstrap(ssm), ys, 100, params=params)
    single = particle_filter(keys[1], bootstrap(ssm), ys, 100, params=params)
    np.testing.assert_array_equal(
        np.asarray(batch.log_evidence[1]), np.asarray(single.log_evidence)
    )
    same = particle_filter(keys[1], bootstrap(ssm), ys, 100, params=params)
    np.testing.assert_array_equal(
        np.asarray(same.population.particles), np.asarray(single.population.particles)
    )


def test_legacy_key_is_a_single_run():
    ssm, params, ys, _ = _m1(10)
    legacy = jax.random.PRNGKey(0)
    out = particle_filter(legacy, bootstrap(ssm), ys, 16, params=params)
    same = particle_filter(jax.random.wrap_key_data(legacy), bootstrap(ssm), ys, 16, params=params)
    assert out.log_evidence.shape == ()
    np.testing.assert_array_equal(np.asarray(out.log_evidence), np.asarray(same.log_evidence))


def test_diagnostics_shapes_and_values():
    ssm, params, ys, _ = _m1(40)
    out = particle_filter(
        jax.random.key(0),
        bootstrap(ssm),
        ys,
        256,
        params=params,
        ess_threshold=0.5,
        return_ancestors=True,
    )
    info = out.info
    assert info.ess.shape == (40,) and info.resampled.shape == (40,)
    ess = np.asarray(info.ess)
    resampled = np.asarray(info.resampled)
    assert np.all((ess >= 1 - 1e-3) & (ess <= 256 + 1e-3))
    assert np.all(ess[resampled] < 128)  # resampled exactly when ESS < 0.5 N
    assert np.all(ess[1:][~resampled[1:]] >= 128)
    unique = np.asarray(info.unique_ancestors)
    assert np.all(unique[~resampled] == 256) and np.all(unique[resampled] <= 256)
    np.testing.assert_allclose(
        float(np.sum(np.asarray(info.log_evidence_increment, float))),
        float(out.log_evidence),
        rtol=1e-5,
    )
    assert out.ancestors.shape == (40, 256)


def test_island_filter_runs_and_is_unbiased():
    ssm, params, ys, kf = _m1()
    keys = jax.random.split(jax.random.key(21), 500)
    out = particle_filter(keys, bootstrap(ssm), ys, 400, params=params, num_islands=4)
    assert out.info.resampled.shape == (500, 100, 4)
    result = check_evidence_unbiased(np.asarray(out.log_evidence, float), kf.log_likelihood)
    assert result.passed, result


# --- degenerate cases and bad input --------------------------------------------------------


def _const_model(log_g0, log_g):
    def init(key, y, params):
        return jax.random.normal(key, ()), jnp.asarray(log_g0, jnp.float32)

    def step(key, t, x, y, params):
        return x + jax.random.normal(key, ()), jnp.asarray(log_g, jnp.float32) + 0.0 * x

    return FeynmanKac(init, step)


def test_all_minus_inf_collapses_without_nan():
    model = _const_model(0.0, -jnp.inf)
    with pytest.warns(RuntimeWarning, match="collapsed"):
        out = particle_filter(jax.random.key(0), model, jnp.zeros(5), 10)
    assert bool(out.collapsed)
    assert np.isneginf(float(out.log_evidence))
    assert not np.any(np.isnan(np.asarray(out.population.log_weights)))
    assert not np.any(np.isnan(np.asarray(out.summaries)))


def test_nan_potentials_reported():
    def step(key, t, x, y, params):
        return x + jax.random.normal(key, ()), jnp.where(x > 0, jnp.nan, 0.0)

    model = FeynmanKac(lambda k, y, p: (jax.random.normal(k, ()), jnp.zeros(())), step)
    with pytest.warns(RuntimeWarning, match="NaN"):
        out = particle_filter(jax.random.key(0), model, jnp.zeros(4), 100)
    assert int(np.asarray(out.info.invalid_potentials).sum()) > 0
    assert np.isfinite(float(out.log_evidence))


def test_single_particle_and_one_step():
    ssm, params, ys, _ = _m1(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = particle_filter(jax.random.key(0), bootstrap(ssm), ys[:1], 1, params=params)
    assert out.info.ess.shape == (1,)
    assert np.isfinite(float(out.log_evidence))


def test_long_float32_run_warns():
    ssm, params, _, _ = _m1(10)
    with pytest.warns(RuntimeWarning, match="float32 log-evidence"):
        particle_filter(jax.random.key(0), bootstrap(ssm), jnp.zeros((1001, 1)), 4, params=params)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"num_particles": 0}, ValueError, "num_particles must be in"),
        ({"ess_threshold": 1.5}, ValueError, "ess_threshold must be in"),
        ({"ess_threshold": float("nan")}, ValueError, "ess_threshold must not be NaN"),
        ({"resampler": "bogus"}, ValueError, "unknown resampler"),
        ({"num_islands": 3}, ValueError, "divisible by num_islands"),
        ({"model": "not a model"}, TypeError, "model must be a theorylab.inference.FeynmanKac"),
        ({"inputs": {"a": jnp.zeros(3), "b": jnp.zeros(4)}}, ValueError, "same leading"),
        ({"inputs": jnp.zeros((0, 1))}, ValueError, "at least one time step"),
        ({"key": 3}, TypeError, "PRNG key"),
        ({"key": jax.random.split(jax.random.key(0), (2, 2))}, TypeError, "1-D batch"),
    ],
)
def test_bad_input(kwargs, exc, match):
    ssm, params, ys, _ = _m1(10)
    args = {"key": jax.random.key(0), "model": bootstrap(ssm), "inputs": ys, "num_particles": 8}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        particle_filter(
            args.pop("key"),
            args.pop("model"),
            args.pop("inputs"),
            args.pop("num_particles"),
            params=params,
            **args,
        )


def test_mismatched_particle_shapes_rejected():
    def init(key, y, params):
        return jnp.zeros(2), jnp.zeros(())

    def step(key, t, x, y, params):
        return jnp.zeros(3), jnp.zeros(())

    with pytest.raises(ValueError, match="same pytree structure, shapes and dtypes"):
        particle_filter(jax.random.key(0), FeynmanKac(init, step), jnp.zeros(3), 4)


def test_systematic_is_default():
    assert smc.get_resampler("systematic") is systematic
