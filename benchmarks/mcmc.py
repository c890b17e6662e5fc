"""MCMC kernels: theorylab HMC / NUTS vs numpyro at identical settings, ESS per second.

Model: the Bayesian logistic regression posterior of ``benchmarks/tempered_smc.py`` (d = 10,
n = 1000, prior N(0, I)). Both libraries run 4 chains (vectorised in one compiled call) from
the same starting points near the posterior mode, with identity mass matrix and **no
adaptation** (fixed step size; HMC with fixed L). numpyro runs through its ``MCMC`` driver
(``chain_method="vectorized"``, ``num_warmup=0``), theorylab through ``lax.scan`` over
:func:`~theorylab.inference.mcmc.hmc_step` / :func:`~theorylab.inference.mcmc.nuts_step`.

numpyro is timed twice: through its ``MCMC`` driver (what users run; the table's ratio) and
as its bare transition function inside the same ``lax.scan``/``vmap`` driver as ours
(``metrics.ess_per_s_ratio_vs_kernel``: kernel against kernel).

Reported: wall time per run (median after compilation) and the bulk-ESS (minimum over the 10
coefficients, rank-normalised, :mod:`theorylab.inference.diagnostics`) per second; the ratio
column is ``(ESS/s ours) / (ESS/s numpyro)`` so that > 1 means theorylab is better. Agreement:
the largest |difference of posterior means| / combined MCSE over the coefficients (≤ 4).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import Timing, register_benchmark
from benchmarks.tempered_smc import log_likelihood, log_prior, make_data
from theorylab.inference import diagnostics, mcmc

CHAINS = 4


def logdensity(z):
    x, y, _ = make_data()
    return log_prior(z) + log_likelihood(z, (x, y))


@functools.cache
def start_points():
    """Four points near the mode (a few Newton-free gradient steps from β = 0)."""
    z = jnp.zeros(10)
    grad = jax.jit(jax.grad(logdensity))
    for _ in range(300):
        z = z + 2e-3 * grad(z)
    offsets = jax.random.normal(jax.random.key(9), (CHAINS, 10)) * 0.05
    return z[None] + offsets


@functools.cache
def ours_runner(kind, step_size, num_steps, num_draws):
    def chain(key, z0):
        state = mcmc.init(z0, logdensity)

        def body(s, k):
            if kind == "hmc":
                s, info = mcmc.hmc_step(k, s, logdensity, step_size, num_steps)
            else:
                s, info = mcmc.nuts_step(k, s, logdensity, step_size)
            return s, (s.position, info.acceptance_probability)

        _, (xs, acc) = jax.lax.scan(body, state, jax.random.split(key, num_draws))
        return xs, acc.mean()

    return jax.jit(lambda key, z0: jax.vmap(chain)(jax.random.split(key, CHAINS), z0))


def numpyro_mcmc(kind, step_size, num_steps, num_draws):
    from numpyro.infer import HMC, MCMC, NUTS

    def potential(z):
        return -logdensity(z)

    common = {
        "potential_fn": potential,
        "step_size": step_size,
        "adapt_step_size": False,
        "adapt_mass_matrix": False,
    }
    if kind == "hmc":  # trajectory_length=None, else numpyro rescales ε to 2π / num_steps
        kernel = HMC(num_steps=num_steps, trajectory_length=None, **common)
    else:
        kernel = NUTS(**common)
    return MCMC(
        kernel,
        num_warmup=0,
        num_samples=num_draws,
        num_chains=CHAINS,
        chain_method="vectorized",
        progress_bar=False,
    )


@functools.cache
def numpyro_kernel_runner(kind, step_size, num_steps, num_draws):
    """numpyro's own transition (``numpyro.infer.hmc.hmc``'s ``sample_kernel``) driven by the
    same ``lax.scan`` + ``vmap`` as ours: kernel against kernel, no driver overhead."""
    from numpyro.infer.hmc import hmc

    init_kernel, sample_kernel = hmc(lambda z: -logdensity(z), algo=kind.upper())
    extra = {"num_steps": num_steps, "trajectory_length": None} if kind == "hmc" else {}

    def chain(key, z0):
        state = init_kernel(
            z0,
            num_warmup=0,
            step_size=step_size,
            adapt_step_size=False,
            adapt_mass_matrix=False,
            rng_key=key,
            **extra,
        )

        def body(s, _):
            s = sample_kernel(s)
            return s, s.z

        _, xs = jax.lax.scan(body, state, None, length=num_draws)
        return xs

    return jax.jit(lambda key, z0: jax.vmap(chain)(jax.random.split(key, CHAINS), z0))


def _ess_rate(draws, timing: Timing):
    ess = float(np.min(diagnostics.ess_bulk(np.asarray(draws, float))))
    return ess, ess / timing.median_s


def case(ctx, kind, step_size, num_steps, num_draws):
    z0 = start_points()
    run = ours_runner(kind, step_size, num_steps, num_draws)
    key = jax.random.key(0)
    ours_t = ctx.time(lambda: run(key, z0))
    ours_draws, ours_acc = ours_t.value
    sampler = numpyro_mcmc(kind, step_size, num_steps, num_draws)

    def peer():
        sampler.run(jax.random.key(1), init_params=z0)
        return sampler.get_samples(group_by_chain=True)

    peer_t = ctx.time(peer)
    peer_draws = np.asarray(peer_t.value)
    kernel_run = numpyro_kernel_runner(kind, step_size, num_steps, num_draws)
    kernel_t = ctx.time(lambda: kernel_run(jax.random.key(2), z0))
    _, rate_kernel = _ess_rate(kernel_t.value, kernel_t)
    ess_ours, rate_ours = _ess_rate(ours_draws, ours_t)
    ess_peer, rate_peer = _ess_rate(peer_draws, peer_t)
    se = np.sqrt(
        diagnostics.mcse_mean(np.asarray(ours_draws, float)) ** 2
        + diagnostics.mcse_mean(peer_draws.astype(float)) ** 2
    )
    diff = np.abs(np.asarray(ours_draws, float).mean((0, 1)) - peer_draws.mean((0, 1)))
    row = ctx.record(
        f"{kind} eps={step_size} L={num_steps if kind == 'hmc' else 'NUTS'} S={num_draws}",
        sizes={
            "chains": CHAINS,
            "draws": num_draws,
            "step_size": step_size,
            "num_steps": num_steps,
            "kernel": kind,
        },
        ours=ours_t,
        peer=peer_t,
        peer_name="numpyro",
        error=float(np.max(diff / se)),
        tolerance=4.0,
        metrics={
            "ess_bulk_min_ours": ess_ours,
            "ess_bulk_min_numpyro": ess_peer,
            "ess_per_s_ours": rate_ours,
            "ess_per_s_numpyro": rate_peer,
            "ess_per_s_ratio": rate_ours / rate_peer,
            "acceptance_ours": float(np.mean(ours_acc)),
            "numpyro_kernel_in_our_driver_median_s": kernel_t.median_s,
            "ess_per_s_numpyro_kernel_in_our_driver": rate_kernel,
            "ess_per_s_ratio_vs_kernel": rate_ours / rate_kernel,
            "time_ratio_vs_kernel": kernel_t.median_s / ours_t.median_s,
        },
    )
    print(
        f"  {row['case']}: ESS/s ours {rate_ours:.0f}, numpyro {rate_peer:.0f} "
        f"(ratio {rate_ours / rate_peer:.2f}); bulk ESS {ess_ours:.0f} vs {ess_peer:.0f}; "
        f"numpyro kernel in our scan: {rate_kernel:.0f} ESS/s "
        f"(ratio {rate_ours / rate_kernel:.2f})"
    )


@register_benchmark(
    "mcmc",
    description="HMC and NUTS (fixed step) on logistic regression vs numpyro, ESS/s",
)
def run(ctx):
    draws = 500 if ctx.quick else 2000
    case(ctx, "hmc", 0.05, 10, draws)
    case(ctx, "nuts", 0.05, 0, draws)
    ctx.notes["ratio"] = "numpyro median time / theorylab median time (> 1: theorylab faster)"
    ctx.notes["ess_per_s_ratio"] = "metrics.ess_per_s_ratio: (ESS/s ours)/(ESS/s numpyro)"
