"""Gandy–Scott, SBC and Geweke checks: exact samplers pass, mutants are rejected.

Conjugate normal model: ``θ ~ N(0, 1)``, ``y_1..y_m | θ ~ N(θ, σ²)`` iid, ``m = 5``, ``σ = 1``.
Posterior precision ``1 + m/σ²``, so ``θ | y ~ N(Σy/(σ² + m), σ²/(σ² + m)) = N(Σy/6, 1/6)``.

Each check has false-positive rate ≤ alpha = 1e-4 (Bonferroni over its quantities); passing
cases use fixed seeds, and every mutant must reach a combined p-value < 1e-6. Pilot over seeds
0–5 with the settings used here (combined p-values): SBC exact 0.09–1.0, posterior variance ×2
7e-48–2e-61, mean +0.3 sd 2e-23–2e-30, AR(1) posterior chain φ = 0.95 unthinned
5e-112–3e-164, thinned ×60 0.047–0.86; Gandy–Scott RWMH (5 steps) 0.089–1.0, asymmetric
proposal (1 step) 1e-34–5e-56, shrink ×0.97 (5 steps) 1e-27–9e-34; Geweke Gibbs 0.34–1.0,
RWMH 0.083–1.0, posterior variance ×1.5 4e-37–5e-53; RWMH without the prior: ESS 1–18, always
inconclusive (its raw p-value ranged 5e-4–0.69, i.e. it would pass without the ESS guard).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theorylab.inference import mcmc
from theorylab.inference.calibration import gandy_scott_test, geweke_test, sbc
from theorylab.inference.validation import ValidationResult

M_OBS, SIGMA = 5, 1.0
POST_VAR = SIGMA**2 / (M_OBS + SIGMA**2)
MUTANT_P = 1e-6


def rng_key(seed):
    """``rbg`` keys: XLA compiles RngBitGenerator far faster than the vmapped threefry hash
    (≈1 s vs ≈5 s per program on a loaded 2-core machine), and compilation dominates these
    tests. The checks do not depend on the key implementation."""
    return jax.random.key(seed, impl="rbg")


def prior_sample(key):
    return jax.random.normal(key)


def simulate_data(key, theta):
    return theta + SIGMA * jax.random.normal(key, (M_OBS,))


def posterior_mean(y):
    return jnp.sum(y, axis=-1) / (M_OBS + SIGMA**2)


def make_posterior(var_factor=1.0, shift_sd=0.0):
    sd = np.sqrt(POST_VAR)

    def posterior_sample(key, y, n):
        eps = jax.random.normal(key, (n,))
        return posterior_mean(y) + shift_sd * sd + np.sqrt(var_factor) * sd * eps

    return posterior_sample


EXACT_POSTERIOR = make_posterior()


def loglik(theta, y):
    return -0.5 * jnp.sum((y - theta) ** 2) / SIGMA**2


def _check_contract(result):
    assert isinstance(result, ValidationResult)
    assert result.passed == (result.statistic <= result.threshold)
    assert result.threshold == pytest.approx(4.0)
    assert len(result.details["names"]) == len(result.details["p_values"])


# --------------------------------------------------------------------------- SBC


def _run_sbc(posterior_sample, seed=0, **kwargs):
    kwargs = {"num_replicates": 2000, "num_posterior_draws": 99, **kwargs}
    return sbc(rng_key(seed), prior_sample, simulate_data, posterior_sample, **kwargs)


def test_sbc_exact_posterior_passes():
    r = _run_sbc(EXACT_POSTERIOR, test_functions={"loglik": loglik})
    _check_contract(r)
    d = r.details
    assert r.passed, d["p_values"]
    assert d["names"] == ["theta", "loglik"]
    assert d["ranks"].shape == (2000, 2)
    assert d["ranks"].min() >= 0 and d["ranks"].max() <= 99
    assert d["histograms"].shape == (2, 20) and np.all(d["histograms"].sum(axis=1) == 2000)
    assert d["expected_count"] == 100


@pytest.mark.parametrize(
    "mutant",
    [make_posterior(var_factor=2.0), make_posterior(shift_sd=0.3)],
    ids=["variance_x2", "mean_shift_0.3sd"],
)
def test_sbc_rejects_mutant_posterior(mutant):
    r = _run_sbc(mutant, test_functions={"loglik": loglik})
    _check_contract(r)
    assert not r.passed
    assert r.details["p_value"] < MUTANT_P


def ar1_posterior_chain(key, y, n, phi=0.95):
    """Exact-marginal but autocorrelated posterior draws: an AR(1) chain started in p(θ|y)."""
    eps = jax.random.normal(key, (n + 1,))

    def body(z, e):
        z = phi * z + np.sqrt(1 - phi**2) * e
        return z, z

    _, zs = jax.lax.scan(body, eps[0], eps[1:])
    return posterior_mean(y) + np.sqrt(POST_VAR) * zs


def test_sbc_autocorrelated_draws_need_thinning():
    unthinned = _run_sbc(ar1_posterior_chain)
    assert unthinned.details["p_value"] < MUTANT_P
    # ∪-shaped histogram: the extreme bins are over-full.
    hist = unthinned.details["histograms"][0]
    assert hist[0] + hist[-1] > 4 * unthinned.details["expected_count"]
    thinned = _run_sbc(ar1_posterior_chain, thin=60)  # 0.95**60 ≈ 0.05
    assert thinned.passed, thinned.details["p_values"]


def test_sbc_discrete_parameter_ties_broken_at_random():
    """θ ∈ {0, 1}: most posterior draws tie with θ, and only random tie-breaking makes the
    rank uniform (counting only ``draws < θ`` would pile ranks at 0 and ~L/2)."""

    def prior(key):
        return jax.random.bernoulli(key).astype(jnp.float32)

    def simulate(key, theta):
        return theta + jax.random.normal(key, (2,))

    def posterior(key, y, n):
        # log-odds of θ = 1: Σ_i [−(y_i − 1)² + y_i²]/2 = Σ_i (y_i − 1/2)
        p1 = jax.nn.sigmoid(jnp.sum(y - 0.5))
        return jax.random.bernoulli(key, p1, (n,)).astype(jnp.float32)

    r = sbc(
        rng_key(3),
        prior,
        simulate,
        posterior,
        num_replicates=1000,
        num_posterior_draws=19,
        num_bins=10,
    )
    assert r.passed, r.details["p_values"]


def test_sbc_pytree_names_and_batching():
    # One random call per user function keeps the compiled programs small.
    def prior(key):
        z = jax.random.normal(key, (3,))
        return {"mu": z[0], "nu": z[1:]}

    def simulate(key, theta):
        eps = jax.random.normal(key, (3, M_OBS))
        return {"mu": theta["mu"] + eps[0], "nu": theta["nu"][:, None] + eps[1:]}

    def make(shift_nu1=0.0):
        def posterior(key, y, n):
            eps = jax.random.normal(key, (n, 3)) * np.sqrt(POST_VAR)
            nu_mean = posterior_mean(y["nu"]) + jnp.array([0.0, shift_nu1 * np.sqrt(POST_VAR)])
            return {"mu": posterior_mean(y["mu"]) + eps[:, 0], "nu": nu_mean + eps[:, 1:]}

        return posterior

    kw = {"num_replicates": 1000, "num_posterior_draws": 49, "num_bins": 10}
    exact = make()
    r = sbc(rng_key(1), prior, simulate, exact, batch_size=250, **kw)
    assert r.passed, r.details["p_values"]
    assert r.details["names"] == ["theta['mu']", "theta['nu'][0]", "theta['nu'][1]"]
    bad = sbc(rng_key(1), prior, simulate, make(shift_nu1=0.5), **kw)
    assert bad.details["p_value"] < MUTANT_P
    assert bad.details["names"][int(np.argmin(bad.details["p_values"]))] == "theta['nu'][1]"


# --------------------------------------------------------------------------- Gandy–Scott


def std_normal_logdensity(x):
    return -0.5 * jnp.sum(x**2)


def exact_std_normal(key, n):
    return jax.random.normal(key, (n,))


def _rwmh(key, x, drift=0.0):
    """Scalar random-walk Metropolis with step 2 for N(0, 1), from one uniform draw pair (one
    random call keeps the compiled program small). ``drift ≠ 0`` is the mutant."""
    u = jax.random.uniform(key, (2,), minval=1e-7, maxval=1.0 - 1e-7)
    y = x + 2.0 * (jax.scipy.special.ndtri(u[0]) + drift)
    log_ratio = std_normal_logdensity(y) - std_normal_logdensity(x)
    return jnp.where(jnp.log(u[1]) < log_ratio, y, x)


def rwmh_kernel(key, x):
    return _rwmh(key, x)


def biased_proposal_kernel(key, x):
    """Mutant: proposal ``y = x + 2(ε + 0.3)`` is not symmetric, but it is accepted with the
    symmetric-proposal ratio π(y)/π(x) (missing Hastings correction)."""
    return _rwmh(key, x, drift=0.3)


def shrinking_kernel(key, x):
    """Mutant: a valid RWMH step followed by a 3 % shrink toward 0."""
    return 0.97 * rwmh_kernel(key, x)


def _run_gs(kernel, num_steps, seed=0):
    return gandy_scott_test(
        rng_key(seed),
        exact_std_normal,
        kernel,
        num_chains=50_000,
        num_steps=num_steps,
        test_functions={"x^2": lambda x: x**2},
    )


def test_gandy_scott_rwmh_passes():
    r = _run_gs(rwmh_kernel, num_steps=5)
    _check_contract(r)
    assert r.passed, r.details["p_values"]
    assert r.details["names"] == ["x", "x^2"]


@pytest.mark.parametrize(
    "kernel,num_steps",
    [(biased_proposal_kernel, 1), (shrinking_kernel, 5)],
    ids=["asymmetric_proposal", "shrink_toward_zero"],
)
def test_gandy_scott_rejects_mutant_kernel(kernel, num_steps):
    r = _run_gs(kernel, num_steps)
    _check_contract(r)
    assert not r.passed
    assert r.details["p_value"] < MUTANT_P


def test_gandy_scott_pytree_position():
    def exact(key, n):
        z = jax.random.normal(key, (n, 3))
        return {"a": z[:, 0], "b": z[:, 1:]}

    def logdensity(x):
        return -0.5 * (x["a"] ** 2 + jnp.sum(x["b"] ** 2))

    def kernel(key, x):
        new, _ = mcmc.rwmh_step(key, mcmc.init(x, logdensity), logdensity, 1.0)
        return new.position

    def quad(x):
        return x["a"] ** 2 + jnp.sum(x["b"] ** 2)

    r = gandy_scott_test(
        rng_key(2), exact, kernel, num_chains=20_000, num_steps=2, test_functions=[quad]
    )
    assert r.passed, r.details["p_values"]
    assert r.details["names"] == ["x['a']", "x['b'][0]", "x['b'][1]", "quad"]


def test_gandy_scott_non_finite_output_fails():
    r = _run_gs(lambda key, x: jnp.where(x > 2.0, jnp.nan, x), num_steps=1)
    assert not r.passed
    assert r.details["p_values"][0] == 0.0 and r.details["num_nonfinite"][0] > 0


# --------------------------------------------------------------------------- Geweke


def make_gibbs(var_factor=1.0):
    def kernel(key, theta, y):
        return posterior_mean(y) + np.sqrt(var_factor * POST_VAR) * jax.random.normal(key)

    return kernel


def make_rwmh_posterior(with_prior=True):
    def kernel(key, theta, y):
        def logdensity(t):
            prior = -0.5 * t**2 if with_prior else 0.0
            return prior - 0.5 * jnp.sum((y - t) ** 2) / SIGMA**2

        def body(state, k):
            state, _ = mcmc.rwmh_step(k, state, logdensity, 0.8)
            return state, None

        state, _ = jax.lax.scan(body, mcmc.init(theta, logdensity), jax.random.split(key, 3))
        return state.position

    return kernel


def _run_geweke(kernel, seed=0):
    return geweke_test(
        rng_key(seed),
        prior_sample,
        simulate_data,
        kernel,
        num_iterations=20_000,
        test_functions={"loglik": loglik},
    )


@pytest.mark.parametrize(
    "kernel", [make_gibbs(), make_rwmh_posterior()], ids=["gibbs", "rwmh_3_steps"]
)
def test_geweke_valid_kernel_passes(kernel):
    r = _run_geweke(kernel)
    _check_contract(r)
    d = r.details
    assert r.passed, d["p_values"]
    assert d["names"] == ["theta", "theta^2", "loglik"]
    assert np.all(d["ess_sc"] > 500)
    # The MC simulator is iid: its moments match N(0, 1).
    assert abs(d["mean_mc"][0]) < 4 * d["se_mc"][0]
    assert abs(d["mean_mc"][1] - 1.0) < 4 * d["se_mc"][1]


def test_geweke_rejects_wrong_posterior_variance():
    r = _run_geweke(make_gibbs(var_factor=1.5))
    _check_contract(r)
    assert not r.passed
    assert r.details["p_value"] < MUTANT_P
    p = dict(zip(r.details["names"], r.details["p_values"]))
    assert p["theta^2"] < 1e-4  # the posterior variance enters through E[θ²]


def test_geweke_non_stationary_chain_is_inconclusive():
    """Mutant: RWMH on the likelihood alone (prior forgotten) targets an improper posterior;
    the joint chain is a random walk, its ESS collapses and the check must not pass."""
    r = _run_geweke(make_rwmh_posterior(with_prior=False))
    _check_contract(r)
    assert not r.passed
    assert "inconclusive" in r.details and "theta" in r.details["inconclusive"]
    assert r.statistic == np.inf


# --------------------------------------------------------------------------- bad input


def test_sbc_bad_input():
    key = rng_key(0)
    base = {"num_replicates": 200, "num_posterior_draws": 99}

    def call(**kw):
        args = {
            "prior_sample": prior_sample,
            "simulate_data": simulate_data,
            "posterior_sample": EXACT_POSTERIOR,
        }
        fn_args = {k: kw.pop(k) for k in list(kw) if k in args}
        args.update(fn_args)
        return sbc(key, *args.values(), **{**base, **kw})

    with pytest.raises(ValueError, match="num_bins must divide num_posterior_draws"):
        call(num_bins=7)
    with pytest.raises(ValueError, match="num_replicates"):
        call(num_replicates=0)
    with pytest.raises(ValueError, match="num_replicates must be >= 5"):
        call(num_replicates=50)
    with pytest.raises(ValueError, match="num_posterior_draws"):
        call(num_posterior_draws=-1)
    with pytest.raises(ValueError, match="thin"):
        call(thin=0)
    with pytest.raises(ValueError, match="batch_size"):
        call(batch_size=0)
    with pytest.raises(ValueError, match="alpha"):
        call(alpha=1.5)
    with pytest.raises(TypeError, match="prior_sample must be callable"):
        call(prior_sample=1.0)
    with pytest.raises(TypeError, match="posterior_sample must be callable"):
        call(posterior_sample="exact")
    with pytest.raises(TypeError, match=r"test_functions\['g'\] must be callable"):
        call(test_functions={"g": 3})
    with pytest.raises(TypeError, match="test_functions must be None"):
        call(test_functions=3)
    with pytest.raises(ValueError, match=r"test_functions\['g'\] must return a scalar"):
        call(test_functions={"g": lambda theta, y: y})
    with pytest.raises(ValueError, match="posterior_sample must return 99 draws"):
        call(posterior_sample=lambda k, y, n: jax.random.normal(k, (n + 1,)))
    with pytest.raises(TypeError, match="key"):
        sbc(0, prior_sample, simulate_data, EXACT_POSTERIOR, **base)


def test_gandy_scott_bad_input():
    key = rng_key(0)
    with pytest.raises(ValueError, match="num_chains"):
        gandy_scott_test(key, exact_std_normal, rwmh_kernel, num_chains=0)
    with pytest.raises(ValueError, match="num_steps"):
        gandy_scott_test(key, exact_std_normal, rwmh_kernel, num_chains=10, num_steps=0)
    with pytest.raises(TypeError, match="kernel_step must be callable"):
        gandy_scott_test(key, exact_std_normal, None, num_chains=10)
    with pytest.raises(TypeError, match="exact_sampler must be callable"):
        gandy_scott_test(key, [1.0], rwmh_kernel, num_chains=10)
    with pytest.raises(TypeError, match=r"test_functions\['g1'\] must be callable"):
        gandy_scott_test(
            key, exact_std_normal, rwmh_kernel, num_chains=10, test_functions=[jnp.sum, 2]
        )
    with pytest.raises(ValueError, match=r"exact_sampler.*leading axis n"):
        gandy_scott_test(key, lambda k, n: jax.random.normal(k, (3,)), rwmh_kernel, num_chains=10)
    with pytest.raises(ValueError, match="kernel_step must return a position"):
        gandy_scott_test(key, exact_std_normal, lambda k, x: jnp.stack([x, x]), num_chains=10)
    with pytest.raises(ValueError, match="alpha"):
        gandy_scott_test(key, exact_std_normal, rwmh_kernel, num_chains=10, alpha=0.0)


def test_geweke_bad_input():
    key = rng_key(0)
    gibbs = make_gibbs()
    with pytest.raises(ValueError, match="num_iterations"):
        geweke_test(key, prior_sample, simulate_data, gibbs, num_iterations=0)
    with pytest.raises(ValueError, match="num_marginal"):
        geweke_test(key, prior_sample, simulate_data, gibbs, num_iterations=100, num_marginal=1)
    with pytest.raises(TypeError, match="simulate_data must be callable"):
        geweke_test(key, prior_sample, 5, gibbs, num_iterations=100)
    with pytest.raises(TypeError, match="kernel_step must be callable"):
        geweke_test(key, prior_sample, simulate_data, object(), num_iterations=100)
    with pytest.raises(ValueError, match="kernel_step must return a parameter"):
        geweke_test(key, prior_sample, simulate_data, lambda k, t, y: (t, t), num_iterations=100)
    with pytest.raises(TypeError, match="include_moments"):
        geweke_test(
            key, prior_sample, simulate_data, gibbs, num_iterations=100, include_moments="yes"
        )
    with pytest.raises(ValueError, match="test_functions must name at least one"):
        geweke_test(
            key, prior_sample, simulate_data, gibbs, num_iterations=100, include_moments=False
        )
    with pytest.raises(ValueError, match="min_ess"):
        geweke_test(key, prior_sample, simulate_data, gibbs, num_iterations=100, min_ess=-1.0)
