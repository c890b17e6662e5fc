"""Weighted particle populations and the measure-preserving blocks that act on them.

A :class:`Population` *means* the unnormalised measure ``exp(log_evidence) · Σ_i W_i δ_{x_i}``
(Ścibior et al., POPL 2018: ``PopulationT`` with its total weight factored out). Log-weights are
stored **normalised** (``logsumexp(log_weights) == 0``) and the total mass is kept as a scalar
log-evidence; this is the same measure as monad-bayes' unnormalised weights but stays accurate
in float32 over long runs (unnormalised log-weights near −10⁴ keep only ~10⁻³ resolution).

Blocks and their validity statements (each is checked exactly by the test suite):

* :func:`spawn` — ``n`` copies with weight ``1/n`` each: same measure.
* :func:`reweight` (monad-bayes ``score``) — multiplies each particle's weight by ``G_i``; the
  evidence increment is ``log Σ_i W_i G_i`` computed with the *previous normalised* weights.
* :func:`resample_population` — offspring get weight ``z/M``; valid in expectation whenever
  the ancestors have unbiased offspring counts (see :mod:`.resampling`).
* :func:`push_evidence` — moves the mass into an outer weight: same measure, factored.
* :func:`collapse` (monad-bayes ``proper``) — one particle ∝ weight, carrying weight ``Ẑ``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

__all__ = [
    "Population",
    "collapse",
    "ess",
    "expectation",
    "normalize_log_weights",
    "push_evidence",
    "resample_population",
    "reweight",
    "spawn",
]


class Population(NamedTuple):
    """Weighted particles: ``exp(log_evidence) · Σ_i exp(log_weights[i]) δ_{particles[i]}``.

    Attributes:
      particles: any pytree whose leaves have a leading particle axis ``N``.
      log_weights: ``f[N]`` normalised log-weights (``logsumexp == 0``).
      log_evidence: scalar log of the total mass (``log Ẑ`` of the run so far).
    """

    particles: Any
    log_weights: jax.Array
    log_evidence: jax.Array


def normalize_log_weights(log_weights):
    """Return ``(log_weights − lse, lse)`` with ``lse = logsumexp(log_weights)``.

    If every entry is ``-inf`` (no mass) the weights become uniform and ``lse = -inf``, so no
    NaN is ever produced; callers flag the population as collapsed.
    """
    log_weights = jnp.asarray(log_weights)
    lse = logsumexp(log_weights)
    dead = jnp.isneginf(lse)
    n = log_weights.shape[-1]
    uniform = jnp.full_like(log_weights, -jnp.log(n))
    return jnp.where(dead, uniform, log_weights - jnp.where(dead, 0.0, lse)), lse


def ess(log_weights) -> jax.Array:
    """Effective sample size ``(Σ w)² / Σ w²`` of (not necessarily normalised) log-weights."""
    log_weights = jnp.asarray(log_weights)
    return jnp.exp(2 * logsumexp(log_weights) - logsumexp(2 * log_weights))


def spawn(particles, log_evidence=0.0) -> Population:
    """A population of the given particles with equal weights ``1/N`` (monad-bayes ``spawn``)."""
    n = jax.tree.leaves(particles)[0].shape[0]
    dtype = jnp.result_type(float)
    return Population(
        particles,
        jnp.full((n,), -jnp.log(n), dtype),
        jnp.asarray(log_evidence, dtype),
    )


def reweight(population: Population, log_potentials):
    """Multiply weights by ``exp(log_potentials)``; return ``(population, log increment)``.

    ``log Ẑ_t − log Ẑ_{t−1} = log Σ_i W_{t−1,i} G_{t,i}`` with the previous *normalised* weights,
    which keeps the evidence unbiased whether or not the previous step resampled (using
    ``mean(G)`` after a step without resampling is the classic bug). NaN potentials must be
    handled by the caller (the filter maps them to ``-inf`` and counts them).
    """
    log_weights, increment = normalize_log_weights(population.log_weights + log_potentials)
    return (
        Population(population.particles, log_weights, population.log_evidence + increment),
        increment,
    )


def resample_population(population: Population, ancestors) -> Population:
    """Offspring ``x_{A_j}`` with equal weights; the total mass (log-evidence) is unchanged."""
    m = ancestors.shape[0]
    particles = jax.tree.map(lambda leaf: leaf[ancestors], population.particles)
    log_weights = jnp.full((m,), -jnp.log(m), population.log_weights.dtype)
    return Population(particles, log_weights, population.log_evidence)


def expectation(population: Population, fn=None):
    """Self-normalised estimate ``Σ_i W_i f(x_i)`` (``fn`` defaults to the identity)."""
    values = population.particles if fn is None else jax.vmap(fn)(population.particles)
    w = jnp.exp(population.log_weights)
    return jax.tree.map(lambda v: jnp.tensordot(w.astype(v.dtype), v, axes=(0, 0)), values)


def push_evidence(population: Population):
    """Return ``(population with log_evidence 0, log_evidence)`` (monad-bayes ``pushEvidence``)."""
    zero = jnp.zeros_like(population.log_evidence)
    return population._replace(log_evidence=zero), population.log_evidence


def collapse(key, population: Population):
    """One particle drawn ∝ weight, with weight ``Ẑ``: returns ``(particle, log_evidence)``.

    monad-bayes' ``proper``: a single Ẑ-weighted sample denotes the same measure as the
    population; the algebraic core of pseudo-marginal MCMC.
    """
    index = jax.random.categorical(key, population.log_weights)
    particle = jax.tree.map(lambda leaf: leaf[index], population.particles)
    return particle, population.log_evidence
