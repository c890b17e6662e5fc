"""Particle MCMC: particle marginal Metropolis–Hastings (PMMH), conditional SMC and particle
Gibbs.

Andrieu, Doucet & Holenstein (2010); monad-bayes ``Inference/PMMH.hs``. The state is
``(θ, log Ẑ(θ), log p(θ))``; each iteration proposes ``θ' = θ + step_size·ξ`` (Gaussian random
walk on a flat parameter vector), runs a **fresh** particle filter for ``θ'`` and accepts with
``min(1, p(θ') Ẑ(θ') / (p(θ) Ẑ(θ)))``. The current ``Ẑ(θ)`` is stored and reused, never
recomputed: the chain is then an exact MH chain on the extended space (θ, filter randomness),
whose θ-marginal is the posterior because ``E[Ẑ(θ)] = Z(θ)`` (``collapse``/``push_evidence``
validity). Recomputing the current estimate ("Monte Carlo within Metropolis") targets the
wrong distribution; ``recompute_current=True`` does exactly that and exists only so tests can
show they reject it.

Conditional SMC (:func:`csmc`, Andrieu, Doucet & Holenstein 2010 §4.4) pins a reference
trajectory in slot 0 and runs the other ``N − 1`` particles as a bootstrap filter with
conditional multinomial resampling; with ``ancestor_sampling=True`` the reference's ancestor at
each step is redrawn ``∝ W_{t−1}^j f(x*_t | x_{t−1}^j)`` (Lindsten, Jordan & Schön 2014). One
output trajectory is drawn ∝ the final weights and traced back through the stored ancestors.
The CSMC kernel leaves ``p(x_{0:T−1} | y)`` invariant for any ``N ≥ 2``.
:func:`particle_gibbs` alternates it with a user's θ-update.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from theorylab.core.checks import check_float, check_int, check_key, is_concrete
from theorylab.core.random import as_key
from theorylab.inference.models import FeynmanKac, StateSpaceModel
from theorylab.inference.population import ess
from theorylab.inference.resampling import Resampler, conditional_multinomial, get_resampler
from theorylab.inference.smc import _filter, _num_steps, _sanitize, _unique_count

__all__ = ["CSMCInfo", "PMMHInfo", "PMMHState", "csmc", "particle_gibbs", "pmmh"]


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
    initial_log_evidence=None,
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
      initial_log_evidence: optional log Ẑ(θ0) to start from instead of a fresh filter run.
        A fresh run gives Ẑ ~ q(·|θ0), not the size-biased law of the extended target, so
        even θ0 ~ p(θ|y) is not a stationary start; the log evidence of a conditional SMC run
        (:func:`csmc`, ``info.log_evidence``) with a reference ``x ~ p(x | θ0, y)`` is (use
        ``resampler="multinomial"`` and ``ess_threshold=1`` then, the CSMC's scheme).

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
    lp0 = log_prior(theta0)
    if is_concrete(lp0) and not np.isfinite(float(lp0)):  # traced θ0 (vmapped chains): skip
        raise ValueError(
            f"theta0 must have finite prior density; got log_prior(theta0) = {float(lp0)}"
        )
    if initial_log_evidence is not None:
        if jnp.ndim(initial_log_evidence) != 0:
            raise ValueError(
                "initial_log_evidence must be a scalar log Ẑ; got shape "
                f"{jnp.shape(initial_log_evidence)}"
            )
        if is_concrete(initial_log_evidence) and not np.isfinite(float(initial_log_evidence)):
            raise ValueError(
                f"initial_log_evidence must be finite; got {float(initial_log_evidence)}"
            )
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
        initial_log_evidence=initial_log_evidence,
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
    initial_log_evidence=None,
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
    if initial_log_evidence is None:
        z0, lp0 = log_evidence(k0, theta0)
    else:
        z0 = jnp.asarray(initial_log_evidence, jnp.result_type(float))
        lp0 = log_prior(theta0)
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


# --- conditional SMC and particle Gibbs ---------------------------------------------------


class CSMCInfo(NamedTuple):
    """Diagnostics of one conditional SMC sweep.

    ``ess [T]`` of the weights at each step; ``unique_ancestors [T−1]`` (path degeneracy);
    ``reference_ancestor [T−1]`` the ancestor index of slot 0 (≠ 0 only with ancestor
    sampling); ``updated [T]`` whether the returned trajectory differs from the reference at
    ``t`` (the per-time update rate of particle Gibbs is its mean over iterations);
    ``invalid`` the number of NaN log-potentials (treated as −∞); ``log_evidence`` the
    conditional particle system's ``log Ẑ = Σ_t log mean_i G_t^i`` (multinomial resampling at
    every step). With a reference drawn from ``p(x | θ, y)`` this ``Ẑ`` is distributed as under
    PMMH's extended target (Andrieu, Doucet & Holenstein 2010, §4), so it can start a PMMH
    chain in stationarity (``pmmh(..., initial_log_evidence=...)``).
    """

    ess: jax.Array
    unique_ancestors: jax.Array
    reference_ancestor: jax.Array
    updated: jax.Array
    invalid: jax.Array
    log_evidence: jax.Array


def _take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def _set0(tree, value):
    return jax.tree.map(lambda a, v: a.at[0].set(v), tree, value)


@partial(
    jax.jit,
    static_argnames=("ssm", "num_particles", "ancestor_sampling", "conditional"),
)
def _csmc(key, inputs, reference, params, *, ssm, num_particles, ancestor_sampling, conditional):
    n = num_particles
    num_steps = jax.tree.leaves(inputs)[0].shape[0]
    k_init, k_scan, k_final = jax.random.split(key, 3)
    ys0 = _take(inputs, 0)
    x0 = jax.vmap(ssm.init_sample, (0, None))(jax.random.split(k_init, n), params)
    if conditional:
        x0 = _set0(x0, _take(reference, 0))
    log_g0, bad0 = _sanitize(
        jax.vmap(ssm.observation_logpdf, (None, 0, None, None))(0, x0, ys0, params)
    )

    def body(carry, t):
        x_prev, log_w, bad = carry
        k_res, k_as, k_move = jax.random.split(jax.random.fold_in(k_scan, t), 3)
        y_t = _take(inputs, t)
        ref_t = _take(reference, t)
        if conditional and ancestor_sampling:
            log_f = jax.vmap(ssm.transition_logpdf, (None, 0, None, None))(t, x_prev, ref_t, params)
            a0 = jax.random.categorical(k_as, log_w + log_f)
        else:
            a0 = jnp.asarray(0)
        if conditional:
            ancestors = conditional_multinomial(k_res, log_w, n, reference=a0)
        else:  # ordinary (unconditional) multinomial resampling for every slot
            ancestors = get_resampler("multinomial")(k_res, log_w, n)
        ancestors = ancestors.astype(jnp.int32)
        x = jax.vmap(ssm.transition_sample, (0, None, 0, None))(
            jax.random.split(k_move, n), t, _take(x_prev, ancestors), params
        )
        if conditional:
            x = _set0(x, ref_t)
        log_g, bad_t = _sanitize(
            jax.vmap(ssm.observation_logpdf, (None, 0, None, None))(t, x, y_t, params)
        )
        inc = jax.nn.logsumexp(log_g) - jnp.log(n)
        out = (ess(log_w), _unique_count(ancestors, n), ancestors[0], x, ancestors, inc)
        return (x, log_g, bad + bad_t), out

    (_, log_w_last, bad), (ess_steps, unique, ref_anc, xs, ancs, incs) = jax.lax.scan(
        body, (x0, log_g0, bad0), jnp.arange(1, num_steps)
    )
    history = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), x0, xs)
    idx_last = jax.random.categorical(k_final, log_w_last)

    def back(idx, anc_t):
        return anc_t[idx], idx

    idx0, idx_rest = jax.lax.scan(back, idx_last, ancs, reverse=True)
    path_idx = jnp.concatenate([idx0[None], idx_rest])
    trajectory = jax.tree.map(lambda h: h[jnp.arange(num_steps), path_idx], history)
    if reference is None:
        updated = jnp.ones(num_steps, bool)
    else:
        differs = jax.tree.map(
            lambda a, b: jnp.any((a != b).reshape(num_steps, -1), axis=1), trajectory, reference
        )
        updated = jnp.any(jnp.stack(jax.tree.leaves(differs)), axis=0)
    ess_all = jnp.concatenate([ess_steps, ess(log_w_last)[None]])
    log_z = jax.nn.logsumexp(log_g0) - jnp.log(n) + jnp.sum(incs)
    return trajectory, CSMCInfo(ess_all, unique, ref_anc, updated, bad, log_z)


def _check_ssm(ssm, need_transition_logpdf):
    if not isinstance(ssm, StateSpaceModel):
        raise TypeError(
            f"ssm must be a theorylab.inference.StateSpaceModel; got {type(ssm).__name__}"
        )
    if need_transition_logpdf and ssm.transition_logpdf is None:
        raise ValueError(
            "ancestor_sampling=True needs ssm.transition_logpdf (the density f(x_t | x_{t-1}))"
            "; got None"
        )


def _check_reference(reference, inputs):
    num_steps = _num_steps(inputs)
    lead = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in jax.tree.leaves(reference)}
    if lead != {num_steps}:
        raise ValueError(
            f"reference must be a trajectory with leading axis T = {num_steps} (the length of "
            f"inputs); got leading sizes {sorted(lead, key=str)}"
        )
    return num_steps


def csmc(
    key,
    ssm: StateSpaceModel,
    inputs,
    reference,
    *,
    num_particles: int,
    params=None,
    ancestor_sampling: bool = True,
    conditional: bool = True,
):
    """One conditional SMC sweep (the particle Gibbs kernel) for a state-space model.

    Bootstrap proposals: ``x_0 ~ μ``, ``x_t ~ f(·|x_{t−1})``, weights ``g(y_t | x_t)``
    (``y_0`` observes ``x_0``, as in :func:`~theorylab.inference.linear_gaussian`). Slot 0 holds
    the reference trajectory; the others are resampled with conditional multinomial resampling
    at every step. ``ancestor_sampling=True`` (default) redraws slot 0's ancestor
    ``∝ W_{t−1}^j f(x*_t | x^j_{t−1})``, which needs ``ssm.transition_logpdf`` and greatly
    improves mixing of the early states (Lindsten et al. 2014).

    ``conditional=False`` runs an ordinary bootstrap filter and returns a trajectory drawn
    from its final weights, ignoring the reference: useful to draw the *first* reference, but
    **not** a valid Gibbs kernel for ``p(x | y)`` (the tests use it as the "reference resampled
    like the others" mutant).

    Args:
      key: PRNG key.
      ssm: :class:`~theorylab.inference.StateSpaceModel` (``transition_logpdf`` needed for
        ancestor sampling).
      inputs: observations, leading axis ``T``.
      reference: the current trajectory, a pytree with leading axis ``T`` matching one
        particle's state per step (e.g. ``f[T, d]``).
      num_particles: ``N ≥ 2`` (invariance holds for any such ``N``).
      params: model parameters.

    Returns:
      ``(trajectory, CSMCInfo)``. Cost O(T·N) time, O(T·N·d) memory (the particle history).
      Not conditional systematic resampling (Chopin & Singh 2015): multinomial only.
    """
    key = as_key(check_key(key, "key"), "key")
    num_particles = check_int(num_particles, "num_particles", min_value=2)
    _check_ssm(ssm, bool(ancestor_sampling) and bool(conditional))
    _check_reference(reference, inputs)
    return _csmc(
        key,
        inputs,
        reference,
        params,
        ssm=ssm,
        num_particles=num_particles,
        ancestor_sampling=bool(ancestor_sampling),
        conditional=bool(conditional),
    )


@partial(
    jax.jit,
    static_argnames=(
        "ssm",
        "params_fn",
        "theta_step",
        "num_particles",
        "num_iterations",
        "ancestor_sampling",
        "return_trajectories",
    ),
)
def _particle_gibbs(
    key,
    inputs,
    theta0,
    reference0,
    *,
    ssm,
    params_fn,
    theta_step,
    num_particles,
    num_iterations,
    ancestor_sampling,
    return_trajectories,
):
    sweep = partial(
        _csmc.__wrapped__,
        ssm=ssm,
        num_particles=num_particles,
        ancestor_sampling=ancestor_sampling,
    )
    k_first, key = jax.random.split(key)
    if reference0 is None:  # first reference: an unconditional sweep at θ0
        reference0, _ = sweep(k_first, inputs, None, params_fn(theta0), conditional=False)

    def body(carry, k):
        theta, ref = carry
        k_x, k_theta = jax.random.split(k)
        ref, info = sweep(k_x, inputs, ref, params_fn(theta), conditional=True)
        theta = theta_step(k_theta, theta, ref)
        out = (theta, ref if return_trajectories else None, info.updated)
        return (theta, ref), out

    (theta, ref), (thetas, trajs, updated) = jax.lax.scan(
        body, (theta0, reference0), jax.random.split(key, num_iterations)
    )
    return thetas, trajs, updated, (theta, ref)


def particle_gibbs(
    key,
    ssm: StateSpaceModel,
    inputs,
    theta0,
    *,
    params_fn: Callable,
    theta_step: Callable,
    num_particles: int,
    num_iterations: int,
    reference0=None,
    ancestor_sampling: bool = True,
    return_trajectories: bool = False,
):
    """Particle Gibbs: alternate ``x ← CSMC(x; θ)`` and ``θ ← theta_step(key, θ, x)``.

    ``theta_step`` must leave ``p(θ | x, y)`` invariant (an exact conjugate draw, or any MH
    kernel from :mod:`~theorylab.inference.mcmc` targeting ``log p(θ) + log p(x, y | θ)``).
    Without ``reference0`` the first trajectory comes from an unconditional sweep at ``θ0``.
    ``ssm``, ``params_fn`` and ``theta_step`` are static arguments of the compiled program:
    define them once (module-level functions), not as fresh lambdas per call, or every call
    recompiles.

    Returns:
      ``(thetas, trajectories or None, update_rate [T], final (θ, x))``: ``update_rate[t]`` is
      the fraction of iterations in which ``x_t`` changed (low values at small ``t`` signal
      path degeneracy; ancestor sampling fixes it).
    """
    key = as_key(check_key(key, "key"), "key")
    num_particles = check_int(num_particles, "num_particles", min_value=2)
    num_iterations = check_int(num_iterations, "num_iterations", min_value=1)
    _check_ssm(ssm, bool(ancestor_sampling))
    if not callable(params_fn) or not callable(theta_step):
        raise TypeError("params_fn and theta_step must be callables")
    if reference0 is not None:
        _check_reference(reference0, inputs)
    thetas, trajs, updated, final = _particle_gibbs(
        key,
        inputs,
        theta0,
        reference0,
        ssm=ssm,
        params_fn=params_fn,
        theta_step=theta_step,
        num_particles=num_particles,
        num_iterations=num_iterations,
        ancestor_sampling=bool(ancestor_sampling),
        return_trajectories=bool(return_trajectories),
    )
    return thetas, trajs, updated.mean(axis=0), final
