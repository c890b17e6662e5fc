"""Validated SMC built from composable blocks (after Ścibior et al., POPL 2018).

Populations (:mod:`.population`), resamplers as pure functions of explicit uniforms
(:mod:`.resampling`), Feynman–Kac / state-space models (:mod:`.models`), the particle filter
composed from ``spawn / resample / move / reweight`` blocks (:mod:`.smc`), sharded particles
over a device mesh (:mod:`.distributed`), NumPy references (:mod:`.reference`) and the
validation module that checks blocks exactly or statistically (:mod:`.validation`), and
MCMC kernels as ``(init, step)`` pairs (:mod:`.mcmc`: RWMH, MALA, HMC, NUTS via numpyro),
particle MCMC (:mod:`.pmcmc`: PMMH, conditional SMC, particle Gibbs), and SMC samplers for
static models (:mod:`.tempering`: tempering and data annealing, numpyro adapter), trace MH
over uniform buffers and involutive MH for trans-dimensional programs (:mod:`.traced`), chain
diagnostics (:mod:`.diagnostics`: split/rank-normalised R-hat, bulk/tail ESS) and user-facing
statistical checks (:mod:`.calibration`: Gandy–Scott, SBC, Geweke).
"""

from theorylab.inference import (
    calibration,
    diagnostics,
    mcmc,
    pmcmc,
    reference,
    tempering,
    traced,
    validation,
)
from theorylab.inference.calibration import gandy_scott_test, geweke_test, sbc
from theorylab.inference.diagnostics import ess_bulk, ess_tail, rank_normalized_split_rhat
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
from theorylab.inference.pmcmc import csmc, particle_gibbs, pmmh
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
from theorylab.inference.tempering import (
    Target,
    data_annealing_smc,
    from_numpyro,
    target_from_functions,
    tempered_smc,
)
from theorylab.inference.traced import (
    involutive_mh_step,
    trace_init,
    trace_init_from_prior,
    trace_mh_chain,
    trace_mh_step,
)

__all__ = [
    "RESAMPLERS",
    "FeynmanKac",
    "FilterResult",
    "Population",
    "Resampler",
    "StateSpaceModel",
    "StepInfo",
    "Target",
    "advance",
    "auxiliary",
    "bootstrap",
    "calibration",
    "collapse",
    "conditional_multinomial",
    "csmc",
    "data_annealing_smc",
    "diagnostics",
    "draw_resampling_uniforms",
    "ess",
    "ess_bulk",
    "ess_tail",
    "expectation",
    "from_numpyro",
    "gandy_scott_test",
    "get_resampler",
    "geweke_test",
    "guided",
    "hidden_markov",
    "hidden_markov_observation_sample",
    "init_population",
    "involutive_mh_step",
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
    "particle_gibbs",
    "pmcmc",
    "pmmh",
    "push_evidence",
    "rank_normalized_split_rhat",
    "reference",
    "resample_population",
    "resample_step",
    "residual",
    "reweight",
    "sbc",
    "simulate",
    "spawn",
    "stratified",
    "systematic",
    "target_from_functions",
    "tempered_smc",
    "tempering",
    "trace_init",
    "trace_init_from_prior",
    "trace_mh_chain",
    "trace_mh_step",
    "traced",
    "validation",
    "weighted_mean",
]
