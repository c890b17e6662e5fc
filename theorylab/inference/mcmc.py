"""MCMC kernels as pure ``(init, step)`` functions over a log-density on a pytree position.

blackjax's shape: ``state = init(position, logdensity_fn)``;
``state, info = step(key, state, logdensity_fn, ...)``. Every step returns an :class:`MCMCInfo`
with the acceptance probability, the accepted flag and the log acceptance ratio, and all
kernels ``vmap`` over chains. Positions may be any pytree of float arrays (flattened with
``jax.flatten_util.ravel_pytree`` inside).

Kernels (each is a Metropolis–Hastings kernel, hence π-invariant — the MHG theorem of
Ścibior et al. 2018 §1.4 of the spec):

* :func:`rwmh_step` — Gaussian random walk, ``ρ = π(y)/π(x)``.
* :func:`mala_step` — Langevin proposal ``y = x + ε²/2 ∇log π(x) + ε ξ`` with the Hastings
  correction ``q(x|y)/q(y|x)`` (Roberts & Tweedie 1996).
* :func:`hmc_step` — leapfrog with fixed ``ε`` and ``L`` steps, identity mass, accept on the
  Hamiltonian difference; a non-finite or > 1000 energy error is flagged as divergent.
* :func:`nuts_step` — one No-U-Turn transition (Hoffman & Gelman 2014, multinomial variant of
  Betancourt 2017) **delegated to numpyro's tree builder** (``numpyro.infer.hmc_util
  .build_tree``, the routine behind ``numpyro.infer.hmc.hmc(potential_fn, algo="NUTS")``), with
  a fixed step size and (diagonal or dense) inverse mass matrix: no adaptation, so the kernel
  is a fixed Markov kernel and can be composed (resample–move, Gibbs) and tested like the
  others.

Invariance is checked by Gandy–Scott one-step tests in ``tests/inference/test_mcmc.py``,
with mutants (MALA without correction, HMC without its final half momentum step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc_util import (
    IntegratorState,
    build_tree,
    euclidean_kinetic_energy,
    velocity_verlet,
)

from theorylab.core.checks import check_float, is_concrete

__all__ = [
    "MCMCInfo",
    "MCMCState",
    "NUTSInfo",
    "hmc_step",
    "init",
    "leapfrog",
    "mala_step",
    "nuts_step",
    "rwmh_step",
]


class MCMCState(NamedTuple):
    """Chain state: ``position`` (pytree), its ``logdensity`` and ``logdensity_grad``."""

    position: Any
    logdensity: jax.Array
    logdensity_grad: Any


class MCMCInfo(NamedTuple):
    """``acceptance_probability = min(1, exp(log_accept_ratio))``, ``accepted``, and
    ``divergent`` (HMC energy error non-finite or > 1000; always False for other kernels)."""

    acceptance_probability: jax.Array
    accepted: jax.Array
    log_accept_ratio: jax.Array
    divergent: jax.Array


def _check_step_size(step_size):
    """Reject a concrete non-positive or non-finite step size (traced values pass through)."""
    if is_concrete(step_size):
        check_float(step_size, "step_size", min_value=0.0, min_inclusive=False)


def _state(position, logdensity_fn: Callable) -> MCMCState:
    """Unchecked state (used for proposals: a non-finite proposal is simply rejected)."""
    value, grad = jax.value_and_grad(logdensity_fn)(position)
    return MCMCState(position, value, grad)


def init(position, logdensity_fn: Callable) -> MCMCState:
    """State at ``position`` with the log-density and its gradient.

    Called eagerly (concrete values), a NaN or infinite log-density or gradient at the
    *starting* position raises a ``ValueError`` naming the position: a chain cannot start
    there. Under ``jit``/``vmap`` (e.g. inside a sampler) the check is skipped. Proposals are
    never checked: the kernels reject moves to non-finite densities.
    """
    state = _state(position, logdensity_fn)
    if is_concrete(state.logdensity):
        flat_grad, _ = ravel_pytree(state.logdensity_grad)
        grad_ok = bool(jnp.all(jnp.isfinite(flat_grad)))
        if not (bool(jnp.isfinite(state.logdensity)) and grad_ok):
            raise ValueError(
                f"logdensity_fn is not finite at the initial position {position!r}: "
                f"log-density {float(state.logdensity)}, gradient finite: {grad_ok}"
            )
    return state


def _accept(key, state: MCMCState, proposal: MCMCState, log_ratio, divergent=None):
    log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
    accept_prob = jnp.exp(jnp.minimum(log_ratio, 0.0))
    accepted = jnp.log(jax.random.uniform(key)) < log_ratio
    new = jax.tree.map(lambda a, b: jnp.where(accepted, a, b), proposal, state)
    div = jnp.asarray(False) if divergent is None else divergent
    return new, MCMCInfo(accept_prob, accepted, log_ratio, div)


def rwmh_step(key, state: MCMCState, logdensity_fn: Callable, step_size):
    """Random-walk Metropolis: ``y = x + step_size · ξ``, accept w.p. ``min(1, π(y)/π(x))``."""
    _check_step_size(step_size)
    k_prop, k_acc = jax.random.split(key)
    flat, unravel = ravel_pytree(state.position)
    y = unravel(flat + step_size * jax.random.normal(k_prop, flat.shape, flat.dtype))
    proposal = _state(y, logdensity_fn)
    return _accept(k_acc, state, proposal, proposal.logdensity - state.logdensity)


def _mala_log_q(to_flat, from_flat, from_grad, step_size):
    """log q(to | from) up to a constant, q = N(from + ε²/2 ∇, ε² I)."""
    mean = from_flat + 0.5 * step_size**2 * from_grad
    return -0.5 * jnp.sum((to_flat - mean) ** 2) / step_size**2


def mala_step(key, state: MCMCState, logdensity_fn: Callable, step_size, *, correct: bool = True):
    """Metropolis-adjusted Langevin step.

    ``correct=False`` drops the Hastings ratio ``q(x|y)/q(y|x)``: that is **not** a valid
    kernel (it is kept only so tests can show their power to reject it).
    """
    _check_step_size(step_size)
    k_prop, k_acc = jax.random.split(key)
    x, unravel = ravel_pytree(state.position)
    gx, _ = ravel_pytree(state.logdensity_grad)
    y = x + 0.5 * step_size**2 * gx + step_size * jax.random.normal(k_prop, x.shape, x.dtype)
    proposal = _state(unravel(y), logdensity_fn)
    gy, _ = ravel_pytree(proposal.logdensity_grad)
    log_ratio = proposal.logdensity - state.logdensity
    if correct:
        log_ratio = log_ratio + _mala_log_q(x, y, gy, step_size) - _mala_log_q(y, x, gx, step_size)
    return _accept(k_acc, state, proposal, log_ratio)


def leapfrog(
    position, momentum, grad, logdensity_fn, step_size, num_steps: int, *, final_half=True
):
    """``num_steps`` leapfrog steps of ``H = −log π(x) + |p|²/2`` on flat arrays.

    Returns ``(position, momentum, logdensity, grad)``. ``final_half=False`` omits the last
    half momentum step (a classic bug, kept for the mutation test only).
    """
    value_and_grad = jax.value_and_grad(logdensity_fn)
    p = momentum + 0.5 * step_size * grad

    def body(carry, _):
        x, p = carry
        x = x + step_size * p
        _, g = value_and_grad(x)
        return (x, p + step_size * g), None

    (x, p), _ = jax.lax.scan(body, (position, p), None, length=num_steps - 1)
    x = x + step_size * p
    value, g = value_and_grad(x)
    if final_half:
        p = p + 0.5 * step_size * g
    return x, p, value, g


def hmc_step(
    key,
    state: MCMCState,
    logdensity_fn: Callable,
    step_size,
    num_steps: int,
    *,
    final_half: bool = True,
):
    """Hamiltonian Monte Carlo with identity mass, fixed ``step_size`` and ``num_steps``.

    Accepts with ``min(1, exp(−ΔH))``; ``info.divergent`` flags ``|ΔH| > 1000`` or NaN.
    ``final_half=False`` is the invalid mutant used by the tests.
    """
    _check_step_size(step_size)
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1; got {num_steps}")
    k_mom, k_acc = jax.random.split(key)
    x, unravel = ravel_pytree(state.position)
    g, _ = ravel_pytree(state.logdensity_grad)
    p0 = jax.random.normal(k_mom, x.shape, x.dtype)

    def flat_logdensity(z):
        return logdensity_fn(unravel(z))

    x1, p1, value1, g1 = leapfrog(
        x, p0, g, flat_logdensity, step_size, int(num_steps), final_half=final_half
    )
    h0 = -state.logdensity + 0.5 * jnp.sum(p0**2)
    h1 = -value1 + 0.5 * jnp.sum(p1**2)
    log_ratio = h0 - h1
    divergent = ~jnp.isfinite(log_ratio) | (jnp.abs(log_ratio) > 1000.0)
    proposal = MCMCState(unravel(x1), value1, unravel(g1))
    return _accept(k_acc, state, proposal, log_ratio, divergent)


class NUTSInfo(NamedTuple):
    """Info of :func:`nuts_step`.

    ``acceptance_probability`` is NUTS' mean Metropolis acceptance over the trajectory (the
    statistic step-size adaptation targets); ``accepted`` says whether the position moved;
    ``log_accept_ratio`` is its log; ``divergent`` flags an energy error > ``max_delta_energy``;
    ``num_steps`` counts leapfrog steps (gradient evaluations) and ``tree_depth`` the doublings.
    """

    acceptance_probability: jax.Array
    accepted: jax.Array
    log_accept_ratio: jax.Array
    divergent: jax.Array
    num_steps: jax.Array
    tree_depth: jax.Array


def _check_inverse_mass(m: np.ndarray) -> None:
    """A diagonal must be finite and > 0; a dense matrix symmetric positive definite."""
    if not np.all(np.isfinite(m)):
        raise ValueError("inverse_mass_matrix must be finite")
    if m.ndim == 1:
        if np.any(m <= 0):
            raise ValueError(f"inverse_mass_matrix (diagonal) must be > 0; got min {m.min()}")
        return
    if not np.allclose(m, m.T, rtol=1e-5, atol=1e-8):
        raise ValueError("inverse_mass_matrix must be symmetric")
    if np.linalg.eigvalsh(0.5 * (m + m.T)).min() <= 0:
        raise ValueError("inverse_mass_matrix must be positive definite")


def nuts_step(
    key,
    state: MCMCState,
    logdensity_fn: Callable,
    step_size,
    *,
    inverse_mass_matrix=None,
    max_tree_depth: int = 10,
    max_delta_energy: float = 1000.0,
):
    """One NUTS transition with fixed ``step_size``, wrapping numpyro's implementation.

    The momentum ``r ~ N(0, M)`` is drawn here (``M⁻¹ = inverse_mass_matrix``: ``None`` =
    identity, a vector = diagonal, a matrix = dense), then numpyro's ``build_tree`` runs the
    doubling procedure with multinomial sampling of the proposal and the generalised no-U-turn
    criterion. The NUTS kernel leaves ``π`` invariant for any fixed step size and mass matrix;
    step-size/mass adaptation (numpyro's warm-up) would not, so it is deliberately not offered
    here. Returns ``(MCMCState, NUTSInfo)``; vmaps over chains.
    """
    _check_step_size(step_size)
    depth = int(max_tree_depth)
    if depth < 1:
        raise ValueError(f"max_tree_depth must be >= 1; got {max_tree_depth}")
    k_mom, k_tree = jax.random.split(key)
    x, unravel = ravel_pytree(state.position)
    g, _ = ravel_pytree(state.logdensity_grad)
    dim = x.shape[0]
    if inverse_mass_matrix is None:
        inv_mass = jnp.ones(dim, x.dtype)
    else:
        inv_mass = jnp.asarray(inverse_mass_matrix, x.dtype)
        if inv_mass.shape not in ((dim,), (dim, dim)):
            raise ValueError(
                f"inverse_mass_matrix must have shape ({dim},) or ({dim}, {dim}); "
                f"got {inv_mass.shape}"
            )
        if is_concrete(inv_mass):
            _check_inverse_mass(np.asarray(inv_mass, float))
    if not float(max_delta_energy) > 0:
        raise ValueError(f"max_delta_energy must be > 0; got {max_delta_energy}")
    eps = jax.random.normal(k_mom, (dim,), x.dtype)
    if inv_mass.ndim == 1:
        momentum = eps / jnp.sqrt(inv_mass)
    else:  # r ~ N(0, M) with M = (M⁻¹)⁻¹: r = L⁻ᵀ ε where M⁻¹ = L Lᵀ
        chol = jnp.linalg.cholesky(inv_mass)
        momentum = jax.scipy.linalg.solve_triangular(chol.T, eps, lower=False)

    def potential(z):
        return -logdensity_fn(unravel(z))

    start = IntegratorState(x, momentum, -state.logdensity, -g)
    tree = build_tree(
        velocity_verlet(potential, euclidean_kinetic_energy)[1],
        euclidean_kinetic_energy,
        start,
        inv_mass,
        jnp.asarray(step_size, x.dtype),
        k_tree,
        max_delta_energy=max_delta_energy,
        max_tree_depth=depth,
    )
    new = MCMCState(unravel(tree.z_proposal), -tree.z_proposal_pe, unravel(-tree.z_proposal_grad))
    accept = tree.sum_accept_probs / jnp.maximum(tree.num_proposals, 1)
    moved = jnp.any(tree.z_proposal != x)
    info = NUTSInfo(
        accept,
        moved,
        jnp.log(accept),
        tree.diverging,
        tree.num_proposals,
        jnp.asarray(tree.depth),
    )
    return new, info
