"""MCMC kernels: Gandy–Scott one-step invariance (spec A6) with mutants that must fail.

Start M = 2·10⁵ chains at exact draws from π (a 2-D Gaussian with ρ = 0.9), apply 1 and 5
kernel steps, and test that the output is still distributed as π: KS on both marginals and on
the χ²₂-distributed quadratic form. Each KS test has false-positive rate 1e-4 (p > 1e-4); the
mutants (MALA without the Hastings correction, HMC without its final half momentum step) must
give p < 1e-8 with the same keys.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from theorylab.inference import mcmc

RHO = 0.9
COV = np.array([[1.0, RHO], [RHO, 1.0]])
PREC = np.linalg.inv(COV)
CHAINS = 200_000


def logdensity(x):
    return -0.5 * x @ jnp.asarray(PREC, x.dtype) @ x


def _exact_draws(key):
    chol = jnp.linalg.cholesky(jnp.asarray(COV, jnp.float32))
    return jax.random.normal(key, (CHAINS, 2)) @ chol.T


def _p_values(x):
    x = np.asarray(x, float)
    sd = 1.0
    q = np.einsum("ni,ij,nj->n", x, PREC, x)
    return min(
        stats.kstest(x[:, 0] / sd, "norm").pvalue,
        stats.kstest(x[:, 1] / sd, "norm").pvalue,
        stats.kstest(q, stats.chi2(2).cdf).pvalue,
    )


@functools.cache
def _runner(kernel, chain_steps, kwargs_items):
    kwargs = dict(kwargs_items)

    def one_chain(key, x0):
        state = mcmc.init(x0, logdensity)

        def body(state, k):
            state, info = kernel(k, state, logdensity, **kwargs)
            return state, info.acceptance_probability

        state, acc = jax.lax.scan(body, state, jax.random.split(key, chain_steps))
        return state.position, acc.mean()

    return jax.jit(jax.vmap(one_chain))


def _run(kernel, chain_steps, seed=0, **kwargs):
    k0, k1 = jax.random.split(jax.random.key(seed))
    x0 = _exact_draws(k0)
    keys = jax.random.split(k1, CHAINS)
    out, acc = _runner(kernel, chain_steps, tuple(sorted(kwargs.items())))(keys, x0)
    return out, float(acc.mean())


KERNELS = [
    ("rwmh", mcmc.rwmh_step, {"step_size": 0.5}),
    ("mala", mcmc.mala_step, {"step_size": 0.5}),
    ("hmc", mcmc.hmc_step, {"step_size": 0.2, "num_steps": 10}),
    ("nuts", mcmc.nuts_step, {"step_size": 0.3}),
]


@pytest.mark.parametrize("name,kernel,kwargs", KERNELS, ids=[k[0] for k in KERNELS])
@pytest.mark.parametrize("chain_steps", [1, 5])
def test_one_step_invariance(name, kernel, kwargs, chain_steps):
    out, acc = _run(kernel, chain_steps, **kwargs)
    assert 0.05 < acc < 1.0  # the chains really move
    assert _p_values(out) > 1e-4


def test_mala_without_correction_rejected():
    out, _ = _run(mcmc.mala_step, 1, step_size=0.5, correct=False)
    assert _p_values(out) < 1e-8


def test_hmc_without_final_half_step_rejected():
    out, _ = _run(mcmc.hmc_step, 1, step_size=0.2, num_steps=10, final_half=False)
    assert _p_values(out) < 1e-8


def test_pytree_positions_and_info():
    def lp(pos):
        return -0.5 * (pos["a"] ** 2).sum() - 0.5 * pos["b"] ** 2

    state = mcmc.init({"a": jnp.zeros(2), "b": jnp.asarray(0.0)}, lp)
    for step, kw in (
        (mcmc.rwmh_step, {"step_size": 0.3}),
        (mcmc.mala_step, {"step_size": 0.3}),
        (mcmc.hmc_step, {"step_size": 0.1, "num_steps": 3}),
        (mcmc.nuts_step, {"step_size": 0.3}),
    ):
        new, info = step(jax.random.key(0), state, lp, **kw)
        assert jax.tree.structure(new.position) == jax.tree.structure(state.position)
        assert 0.0 <= float(info.acceptance_probability) <= 1.0
        assert not bool(info.divergent)


def test_hmc_flags_divergence():
    state = mcmc.init(jnp.ones(2), logdensity)
    _, info = mcmc.hmc_step(jax.random.key(0), state, logdensity, 5.0, 20)
    assert bool(info.divergent) and not bool(info.accepted)


def test_hmc_rejects_zero_steps():
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        mcmc.hmc_step(jax.random.key(0), mcmc.init(jnp.ones(2), logdensity), logdensity, 0.1, 0)


@pytest.mark.parametrize("step", [mcmc.rwmh_step, mcmc.mala_step])
@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan")])
def test_bad_step_size(step, bad):
    with pytest.raises(ValueError, match="step_size"):
        step(jax.random.key(0), mcmc.init(jnp.ones(2), logdensity), logdensity, bad)
    with pytest.raises(ValueError, match="step_size"):
        mcmc.hmc_step(jax.random.key(0), mcmc.init(jnp.ones(2), logdensity), logdensity, bad, 3)


def test_nuts_mass_matrix_and_depth():
    state = mcmc.init(jnp.ones(2), logdensity)
    for inv_mass in (jnp.asarray([1.0, 2.0]), jnp.asarray(COV, jnp.float32)):
        new, info = mcmc.nuts_step(
            jax.random.key(1), state, logdensity, 0.3, inverse_mass_matrix=inv_mass
        )
        assert int(info.num_steps) >= 1 and 1 <= int(info.tree_depth) <= 10
        assert jnp.allclose(new.logdensity, logdensity(new.position), atol=1e-5)
    _, info = mcmc.nuts_step(jax.random.key(1), state, logdensity, 0.01, max_tree_depth=2)
    assert int(info.tree_depth) <= 2 and int(info.num_steps) <= 3
    with pytest.raises(ValueError, match="inverse_mass_matrix"):
        mcmc.nuts_step(jax.random.key(1), state, logdensity, 0.3, inverse_mass_matrix=jnp.ones(3))
    with pytest.raises(ValueError, match="max_tree_depth"):
        mcmc.nuts_step(jax.random.key(1), state, logdensity, 0.3, max_tree_depth=0)
    with pytest.raises(ValueError, match="step_size"):
        mcmc.nuts_step(jax.random.key(1), state, logdensity, -1.0)


def test_init_rejects_non_finite_density():
    with pytest.raises(ValueError, match="not finite at the initial position"):
        mcmc.init(jnp.asarray([-1.0, 1.0]), lambda x: jnp.log(x[0]))
    with pytest.raises(ValueError, match="not finite"):
        mcmc.init(jnp.zeros(2), lambda x: jnp.sum(x) * jnp.nan)
