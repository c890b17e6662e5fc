"""Validated SMC built from composable blocks (after Ścibior et al., POPL 2018).

Populations (:mod:`.population`), resamplers as pure functions of explicit uniforms
(:mod:`.resampling`), Feynman–Kac / state-space models (:mod:`.models`), the particle filter
composed from ``spawn / resample / move / reweight`` blocks (:mod:`.smc`), sharded particles
over a device mesh (:mod:`.distributed`), NumPy references (:mod:`.reference`) and the
validation module that checks blocks exactly or statistically (:mod:`.validation`), and
MCMC kernels as ``(init, step)`` pairs (:mod:`.mcmc`: RWMH, MALA, HMC) and particle
marginal Metropolis–Hastings (:mod:`.pmcmc`).
"""

from theorylab.inference import mcmc, pmcmc, reference, validation
from theorylab.inference.models import (
    FeynmanKac,
    StateSpaceModel,
    auxiliary,
    bootstrap,
    guided,
    hidden_markov,
    hidden_markov_observation_sample,
    linear_gaussian,
    linear_gaussian_observation_sample,
    linear_gaussian_optimal_proposal,
    simulate,
)
from theorylab.inference.population import (
    Population,
    collapse,
    ess,
    expectation,
    normalize_log_weights,
    push_evidence,
    resample_population,
    reweight,
    spawn,
)
from theorylab.inference.resampling import (
    RESAMPLERS,
    Resampler,
    conditional_multinomial,
    get_resampler,
    multinomial,
    normalized_cdf,
    offspring_counts,
    residual,
    stratified,
    systematic,
)
from theorylab.inference.smc import (
    FilterResult,
    StepInfo,
    advance,
    draw_resampling_uniforms,
    init_population,
    move_step,
    particle_filter,
    resample_step,
    weighted_mean,
)

__all__ = [
    "RESAMPLERS",
    "FeynmanKac",
    "FilterResult",
    "Population",
    "Resampler",
    "StateSpaceModel",
    "StepInfo",
    "advance",
    "auxiliary",
    "bootstrap",
    "collapse",
    "conditional_multinomial",
    "draw_resampling_uniforms",
    "ess",
    "expectation",
    "get_resampler",
    "guided",
    "hidden_markov",
    "hidden_markov_observation_sample",
    "init_population",
    "linear_gaussian",
    "linear_gaussian_observation_sample",
    "linear_gaussian_optimal_proposal",
    "mcmc",
    "move_step",
    "multinomial",
    "normalize_log_weights",
    "normalized_cdf",
    "offspring_counts",
    "particle_filter",
    "pmcmc",
    "push_evidence",
    "reference",
    "resample_population",
    "resample_step",
    "residual",
    "reweight",
    "simulate",
    "spawn",
    "stratified",
    "systematic",
    "validation",
    "weighted_mean",
]
