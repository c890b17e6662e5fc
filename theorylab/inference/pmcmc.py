"""Particle MCMC: particle marginal Metropolis–Hastings (PMMH).

Andrieu, Doucet & Holenstein (2010); monad-bayes ``Inference/PMMH.hs``. The state is
``(θ, log Ẑ(θ), log p(θ))``; each iteration proposes ``θ' = θ + step_size·ξ`` (Gaussian random
walk on a flat parameter vector), runs a **fresh** particle filter for ``θ'`` and accepts with
``min(1, p(θ') Ẑ(θ') / (p(θ) Ẑ(θ)))``. The current ``Ẑ(θ)`` is stored and reused, never
recomputed: the chain is then an exact MH chain on the extended space (θ, filter randomness),
whose θ-marginal is the posterior because ``E[Ẑ(θ)] = Z(θ)`` (``collapse``/``push_evidence``
validity). Recomputing the current estimate ("Monte Carlo within Metropolis") targets the
wrong distribution; ``recompute_current=True`` does exactly that and exists only so tests can
show they reject it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from theorylab.core.checks import check_float, check_int, check_key
from theorylab.inference.models import FeynmanKac
from theorylab.inference.resampling import Resampler, get_resampler
from theorylab.inference.smc import _filter

__all__ = ["PMMHInfo", "PMMHState", "pmmh"]


class PMMHState(NamedTuple):
    """``theta`` (pytree), ``log_evidence`` = log Ẑ(θ) of the filter run when θ was accepted,
    ``log_prior`` = log p(θ)."""

    theta: Any
    log_evidence: jax.Array
    log_prior: jax.Array


class PMMHInfo(NamedTuple):
    """Per-iteration: acceptance probability, accepted flag, proposed log Ẑ."""

    acceptance_probability: jax.Array
    accepted: jax.Array
    proposed_log_evidence: jax.Array


def pmmh(
    key,
    model: FeynmanKac,
    inputs,
    log_prior: Callable,
    params_fn: Callable,
    theta0,
    *,
    num_particles: int,
    step_size: float,
    num_iterations: int,
    resampler: str | Resampler = "systematic",
    ess_threshold: float = 0.5,
    recompute_current: bool = False,
):
    """Run one PMMH chain (vmap over keys and ``theta0`` for several chains).

    Args:
      key: PRNG key.
      model: the Feynman–Kac model; its parameters come from ``params_fn(theta)``, so the
        split between static parameters (θ, sampled by MH) and latent states (integrated by the
        filter) is explicit.
      inputs: observations with leading time axis.
      log_prior: ``theta -> log p(θ)`` (``-inf`` outside the support).
      params_fn: ``theta -> params`` passed to the model functions.
      theta0: initial θ (pytree); must have finite prior density.
      num_particles, resampler, ess_threshold: of the inner particle filter.
      step_size: standard deviation of the Gaussian random-walk proposal on flattened θ.
      num_iterations: chain length.
      recompute_current: **invalid** variant for tests (re-estimates Ẑ(θ) every iteration).

    Returns:
      ``(thetas, infos, final_state)`` with ``thetas`` stacked over iterations.
    """
    key = check_key(key, "key")
    num_particles = check_int(num_particles, "num_particles", min_value=1)
    num_iterations = check_int(num_iterations, "num_iterations", min_value=1)
    step_size = check_float(step_size, "step_size", min_value=0.0, min_inclusive=False)
    ess_threshold = check_float(ess_threshold, "ess_threshold", min_value=0.0, max_value=1.0)
    if not isinstance(model, FeynmanKac):
        raise TypeError(
            f"model must be a theorylab.inference.FeynmanKac; got {type(model).__name__}"
        )
    lp0 = float(log_prior(theta0))
    if not jnp.isfinite(lp0):
        raise ValueError(f"theta0 must have finite prior density; got log_prior(theta0) = {lp0}")
    return _pmmh(
        key,
        inputs,
        theta0,
        model=model,
        log_prior=log_prior,
        params_fn=params_fn,
        num_particles=num_particles,
        step_size=step_size,
        num_iterations=num_iterations,
        resampler=get_resampler(resampler),
        ess_threshold=ess_threshold,
        recompute_current=bool(recompute_current),
    )


@partial(
    jax.jit,
    static_argnames=(
        "model",
        "log_prior",
        "params_fn",
        "num_particles",
        "num_iterations",
        "resampler",
        "ess_threshold",
        "recompute_current",
    ),
)
def _pmmh(
    key,
    inputs,
    theta0,
    *,
    model,
    log_prior,
    params_fn,
    num_particles,
    step_size,
    num_iterations,
    resampler,
    ess_threshold,
    recompute_current,
):
    _, unravel = ravel_pytree(theta0)
    run_filter = partial(
        _filter,
        model=model,
        num_particles=num_particles,
        resampler=resampler,
        ess_threshold=ess_threshold,
        num_islands=1,
        summary_fn=lambda pop: jnp.zeros(()),
        return_ancestors=False,
        return_history=False,
    )

    def log_evidence(k, theta):
        lp = log_prior(theta)
        # outside the prior's support the filter is not run (its value is irrelevant)
        value = jax.lax.cond(
            jnp.isfinite(lp),
            lambda: run_filter(k, inputs, params_fn(theta)).log_evidence,
            lambda: jnp.asarray(-jnp.inf, jnp.result_type(float)),
        )
        return value, lp

    k0, key = jax.random.split(key)
    z0, lp0 = log_evidence(k0, theta0)
    state0 = PMMHState(theta0, z0, lp0)

    def body(state, k):
        k_prop, k_pf, k_cur, k_acc = jax.random.split(k, 4)
        flat, _ = ravel_pytree(state.theta)
        proposal = unravel(flat + step_size * jax.random.normal(k_prop, flat.shape, flat.dtype))
        z_new, lp_new = log_evidence(k_pf, proposal)
        current = state
        if recompute_current:  # the invalid "Monte Carlo within Metropolis" variant
            z_cur, _ = log_evidence(k_cur, state.theta)
            current = state._replace(log_evidence=z_cur)
        log_ratio = lp_new + z_new - current.log_prior - current.log_evidence
        log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
        accepted = jnp.log(jax.random.uniform(k_acc)) < log_ratio
        new = jax.tree.map(
            lambda a, b: jnp.where(accepted, a, b), PMMHState(proposal, z_new, lp_new), current
        )
        info = PMMHInfo(jnp.exp(jnp.minimum(log_ratio, 0.0)), accepted, z_new)
        return new, (new.theta, info)

    final, (thetas, infos) = jax.lax.scan(body, state0, jax.random.split(key, num_iterations))
    return thetas, infos, final
