"""Program representation P2 and SMC samplers: tempering, data annealing, resample–move.

A static model becomes a *sequence of targets* (monad-bayes: "the program up to its k-th
score", with the scores of a fixed list masked by a static-shape vector):

* tempering: ``γ_k(θ) = p(θ) · exp(β_k · ℓ(θ))`` with ``0 = β_0 < β_1 < … < β_K = 1``;
* data annealing (IBIS): ``γ_k(θ) = p(θ) · exp(Σ_j mask_k[j] · ℓ_j(θ))`` where observation ``j``
  enters at some step and stays.

:class:`Target` holds the pieces as pure functions of an unconstrained position ``z`` (any
pytree) and a data pytree ``args``; :func:`from_numpyro` builds one from a numpyro model using
numpyro's own handlers (``seed``, ``trace``, ``substitute``) and ``numpyro.infer.util``
(``potential_energy`` — log joint with the Jacobian of the constraining transforms —,
``constrain_fn``, ``unconstrain_fn``); per-datum log-likelihoods are read from the observed
sites of a substituted trace. :func:`target_from_functions` wraps plain JAX functions.

The resample–move SMC sampler (Del Moral, Doucet & Jasra 2006; Chopin 2002) is built from
the population blocks of part 1. Each step ``k``:

1. **reweight** by the incremental weight ``log γ_k(θ) − log γ_{k−1}(θ)`` with the previous
   *normalised* weights: ``log Ẑ += logsumexp(log W + Δ)`` (:func:`~.population.reweight`);
2. **resample** when ``ESS < ess_threshold · N`` (:func:`~.smc.resample_step`);
3. **rejuvenate** every particle with ``num_mcmc_steps`` of an MCMC kernel that is invariant
   for the *current* ``γ_k`` (not the final posterior — spec §2.9), from :mod:`.mcmc`.

With a fixed schedule, fixed thresholds and fixed kernel parameters, ``Ẑ`` is unbiased for
``Z = ∫ p(θ) exp ℓ(θ) dθ`` (tested on conjugate models against the closed form). The adaptive
schedule (:func:`next_temperature`: bisection for ``ESS = target · N``, as in Jasra et al.
2011 and blackjax's ``adaptive_tempered_smc``) chooses ``β_k`` from the current particles, so
its ``Ẑ`` is consistent but **slightly biased**; for an unbiased estimate run it once as a
pilot and re-run with the schedule it found (:func:`tempered_smc` with ``schedule=``). The
solver uses exactly the increment the step applies, ``(β' − β) · ℓ(θ)`` (the sign bug of
blackjax #914 is the mutant the tests reject).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from theorylab.core.checks import check_float, check_int, is_concrete
from theorylab.inference import mcmc
from theorylab.inference.population import ess, reweight, spawn
from theorylab.inference.resampling import Resampler, get_resampler
from theorylab.inference.smc import (
    _check_keys,
    _sanitize,
    _unique_count,
    draw_resampling_uniforms,
    resample_step,
)

__all__ = [
    "SMCSamplerInfo",
    "SMCSamplerResult",
    "Target",
    "data_annealing_schedule",
    "data_annealing_smc",
    "from_numpyro",
    "next_temperature",
    "target_from_functions",
    "tempered_smc",
]


# --- targets (P2) --------------------------------------------------------------------------


class Target(NamedTuple):
    """A static model as pure functions of an unconstrained position ``z`` and data ``args``.

    Attributes:
      log_prior: ``(z, args) -> scalar`` log prior density of ``z`` (for numpyro models:
        in unconstrained space, Jacobian included).
      log_likelihood: ``(z, args) -> scalar``.
      sample_prior: ``(key, args) -> z``: one exact prior draw.
      log_likelihood_terms: optional ``(z, args) -> f[J]`` per-datum terms summing to
        ``log_likelihood`` (needed for data annealing).
      postprocess: optional ``(z, args) -> constrained values`` (numpyro: site dict).
      args: the data pytree (passed to the jitted sampler as a *traced* argument, so new data
        of the same shape does not recompile).
      discrete_sites: names of discrete latent sites (gradient kernels refuse these).
    """

    log_prior: Callable
    log_likelihood: Callable
    sample_prior: Callable
    log_likelihood_terms: Callable | None = None
    postprocess: Callable | None = None
    args: Any = None
    discrete_sites: tuple = ()


def target_from_functions(
    log_prior: Callable,
    log_likelihood: Callable,
    sample_prior: Callable,
    *,
    log_likelihood_terms: Callable | None = None,
    args=None,
) -> Target:
    """A :class:`Target` from plain JAX functions ``(z, args)`` / ``(key, args)``."""
    for name, fn in (
        ("log_prior", log_prior),
        ("log_likelihood", log_likelihood),
        ("sample_prior", sample_prior),
    ):
        if not callable(fn):
            raise TypeError(f"{name} must be callable; got {type(fn).__name__}")
    if log_likelihood_terms is not None and not callable(log_likelihood_terms):
        raise TypeError("log_likelihood_terms must be callable or None")
    return Target(log_prior, log_likelihood, sample_prior, log_likelihood_terms, None, args)


def _is_array(value) -> bool:
    """Data = an array, or a non-empty pytree whose leaves are all arrays."""
    leaves = jax.tree.leaves(value)
    return bool(leaves) and all(isinstance(x, (np.ndarray, jax.Array)) for x in leaves)


def _latent_sites(tr):
    return {
        name: site
        for name, site in tr.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def _is_discrete(site) -> bool:
    fn = site["fn"]
    support = getattr(fn, "support", None)
    return bool(getattr(fn, "is_discrete", False) or getattr(support, "is_discrete", False))


@functools.lru_cache(maxsize=64)
def _numpyro_functions(model: Callable, kwarg_names: tuple, static_items: tuple):
    """Pure functions for ``model``; cached on the model (and its static, non-array
    arguments) so the samplers compile once. ``static_items`` = ``((slot, value), ...)`` with
    ``slot`` an int (positional) or a str (keyword)."""
    from numpyro import handlers
    from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

    static = dict(static_items)

    def split(args):
        pos, kw = args
        pos = tuple(static.get(i, a) for i, a in enumerate(pos))
        kw = {k: static.get(k, v) for k, v in zip(kwarg_names, kw)}
        return pos, kw

    def observed_terms(z, args):
        pos, kw = split(args)
        values = constrain_fn(model, pos, kw, z)
        tr = handlers.trace(handlers.substitute(model, data=values)).get_trace(*pos, **kw)
        terms = []
        for site in tr.values():
            if site["type"] == "sample" and site["is_observed"]:
                lp = site["fn"].log_prob(site["value"])
                if site.get("scale") is not None:
                    lp = lp * site["scale"]
                terms.append(jnp.ravel(lp))
        if not terms:
            raise ValueError("the numpyro model has no observed sites (nothing to temper)")
        return jnp.concatenate(terms)

    def log_likelihood(z, args):
        return jnp.sum(observed_terms(z, args))

    def log_joint(z, args):
        pos, kw = split(args)
        return -potential_energy(model, pos, kw, z)

    def log_prior(z, args):
        return log_joint(z, args) - log_likelihood(z, args)

    def sample_prior(key, args):
        pos, kw = split(args)
        tr = handlers.trace(handlers.seed(model, key)).get_trace(*pos, **kw)
        values = {name: site["value"] for name, site in _latent_sites(tr).items()}
        return unconstrain_fn(model, pos, kw, values)

    def postprocess(z, args):
        pos, kw = split(args)
        return constrain_fn(model, pos, kw, z, return_deterministic=True)

    return log_prior, log_likelihood, sample_prior, observed_terms, postprocess


def from_numpyro(model: Callable, *model_args, **model_kwargs) -> Target:
    """A :class:`Target` from a numpyro model and its data (positional/keyword arguments).

    Positions are numpyro's unconstrained site dicts (``{"sigma": log σ, ...}``); the log prior
    includes the Jacobian of the constraining transforms, so MCMC and tempering work in
    unconstrained space and ``Ẑ`` estimates the model's evidence ``p(y)``. Observed sites
    (with their ``scale``/mask) form the likelihood; their flattened log-probabilities are the
    per-datum terms used by data annealing. ``postprocess`` returns constrained values (and
    deterministic sites).

    Array arguments (NumPy/JAX arrays) are data: they travel into the jitted sampler as traced
    inputs, so new data of the same shape does not recompile. Every other argument (Python
    ints such as plate sizes, floats, strings, ``None``) is static: it is bound into the
    cached functions and must be hashable.

    Discrete latent sites are recorded in ``discrete_sites``; numpyro's unconstrained potential
    cannot handle them, so the samplers refuse such targets with a clear error (marginalise the
    discrete sites out first).
    """
    from numpyro import handlers

    if not callable(model):
        raise TypeError(f"model must be a numpyro model (callable); got {type(model).__name__}")
    names = tuple(sorted(model_kwargs))
    slots = [*enumerate(model_args), *((k, model_kwargs[k]) for k in names)]
    static_items = tuple((slot, v) for slot, v in slots if not _is_array(v))
    for slot, v in static_items:
        try:
            hash(v)
        except TypeError:
            raise TypeError(
                f"model argument {slot!r} is neither an array (data) nor hashable (static); "
                f"got {type(v).__name__}: pass arrays as NumPy/JAX arrays"
            ) from None
    static_slots = {slot for slot, _ in static_items}
    args = (
        tuple(None if i in static_slots else a for i, a in enumerate(model_args)),
        tuple(None if k in static_slots else model_kwargs[k] for k in names),
    )
    tr = handlers.trace(handlers.seed(model, jax.random.key(0))).get_trace(
        *model_args, **model_kwargs
    )
    latent = _latent_sites(tr)
    if not latent:
        raise ValueError("the numpyro model has no latent sample sites")
    if not any(s["type"] == "sample" and s["is_observed"] for s in tr.values()):
        raise ValueError("the numpyro model has no observed sites (nothing to temper)")
    discrete = tuple(sorted(name for name, site in latent.items() if _is_discrete(site)))
    fns = _numpyro_functions(model, names, static_items)
    return Target(fns[0], fns[1], fns[2], fns[3], fns[4], args, discrete)


# --- schedules -----------------------------------------------------------------------------


def _conditional_ess(log_weights, increments):
    """Conditional ESS (Zhou, Johansen & Aston 2016): ``N (Σ W_i w_i)² / Σ W_i w_i²`` for the
    normalised current weights ``W`` and incremental weights ``w = exp(increments)``. Equal to
    the ESS of the new weights when ``W`` is uniform (just after resampling)."""
    n = log_weights.shape[0]
    log_w = log_weights - logsumexp(log_weights)
    return n * jnp.exp(2 * logsumexp(log_w + increments) - logsumexp(log_w + 2 * increments))


def next_temperature(log_weights, log_likelihoods, beta, target_ess: float, num_bisections=50):
    """Next inverse temperature by bisection: ``CESS((β' − β)·ℓ) = target_ess · N``.

    Uses exactly the weight increment :func:`tempered_smc` applies, ``(β' − β)·ℓ(θ_i)``
    (blackjax #914 shipped a sign error here), through the *conditional* ESS of the increment
    given the current weights (:func:`_conditional_ess`), so steps stay meaningful when the
    previous step did not resample. ``CESS(δ)`` is non-increasing in ``δ ≥ 0`` (its log-
    derivative is ``2(E_{p_δ}[ℓ] − E_{p_{2δ}}[ℓ]) ≤ 0`` with ``p_δ ∝ W e^{δℓ}``, an exponential
    family whose mean grows with its parameter), so bisection on ``[0, 1 − β]`` converges
    (tolerance 2^-50 of the interval). Returns ``β' ∈ (β, 1]``: 1 if even the full step keeps
    the CESS above target.
    """
    if isinstance(target_ess, (int, float)) and not 0.0 < target_ess < 1.0:
        raise ValueError(f"target_ess must be in (0, 1); got {target_ess}")
    n = log_weights.shape[0]
    goal = target_ess * n
    ll = jnp.where(jnp.isnan(log_likelihoods), -jnp.inf, log_likelihoods)

    def ess_at(delta):
        return _conditional_ess(log_weights, delta * ll)

    full = 1.0 - beta

    def bisect(_):
        def body(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            ok = ess_at(mid) >= goal
            return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

        lo, _ = jax.lax.fori_loop(0, num_bisections, body, (jnp.zeros_like(full), full))
        return beta + jnp.maximum(lo, jnp.finfo(lo.dtype).eps)  # always make progress

    return jax.lax.cond(ess_at(full) >= goal, lambda _: beta + full, bisect, None)


def _check_schedule(schedule) -> np.ndarray:
    arr = np.asarray(schedule, dtype=float)
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"schedule must be a 1-D array of temperatures; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("schedule must be finite")
    if arr[0] == 0.0:
        arr = arr[1:]
    if arr.size < 1 or np.any(arr <= 0) or np.any(np.diff(arr) <= 0):
        raise ValueError(
            "schedule must be strictly increasing in (0, 1] (a leading 0 is allowed); "
            f"got {np.asarray(schedule).tolist()}"
        )
    if arr[-1] != 1.0:
        raise ValueError(f"schedule must end at 1; got last value {arr[-1]}")
    return arr


def data_annealing_schedule(num_terms: int, num_steps: int) -> np.ndarray:
    """Boolean masks ``[num_steps, num_terms]``: step ``k`` includes the first
    ``round((k+1)·J/K)`` observations (monotone, the last step includes all)."""
    num_terms = check_int(num_terms, "num_terms", min_value=1)
    num_steps = check_int(num_steps, "num_steps", min_value=1, max_value=num_terms)
    counts = np.round(np.arange(1, num_steps + 1) * num_terms / num_steps).astype(int)
    return np.arange(num_terms)[None, :] < counts[:, None]


# --- the sampler -------------------------------------------------------------------------


class SMCSamplerInfo(NamedTuple):
    """Per-step diagnostics (after an adaptive run ends, rows are padded: ``beta = 1``, zeros
    and ``False``; use ``SMCSamplerResult.num_steps``).

    ``beta`` (or the fraction of data terms included), ``ess`` after reweighting (before
    resampling), ``resampled``, ``log_increment`` of ``log Ẑ``, ``acceptance_rate`` of the
    rejuvenation moves (mean over particles and inner steps), ``unique_ancestors``.
    """

    beta: jax.Array
    ess: jax.Array
    resampled: jax.Array
    log_increment: jax.Array
    acceptance_rate: jax.Array
    unique_ancestors: jax.Array


class SMCSamplerResult(NamedTuple):
    """Final population (``particles`` in unconstrained space, normalised ``log_weights``),
    ``log_evidence`` = log Ẑ, per-step ``info`` and ``num_steps`` (the adaptive run's length)."""

    particles: Any
    log_weights: jax.Array
    log_evidence: jax.Array
    info: SMCSamplerInfo
    num_steps: jax.Array


_KERNELS = {
    "rwmh": (mcmc.rwmh_step, False),
    "mala": (mcmc.mala_step, True),
    "hmc": (mcmc.hmc_step, True),
    "nuts": (mcmc.nuts_step, True),
}


def _freeze(value):
    """A hashable, value-equal stand-in for a kernel parameter (arrays by their contents)."""
    if np.ndim(value) == 0 and isinstance(
        value, (numbers.Number, np.generic, np.ndarray, jax.Array)
    ):
        return float(value) if not isinstance(value, (bool, int, np.integer)) else value
    if isinstance(value, (np.ndarray, jax.Array, list, tuple)):
        arr = np.asarray(value)
        return _FrozenArray(arr.tobytes(), arr.shape, str(arr.dtype))
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"kernel_params values must be numbers, arrays or hashable; got {type(value).__name__}"
        ) from None
    return value


class _FrozenArray(NamedTuple):
    data: bytes
    shape: tuple
    dtype: str

    def thaw(self):
        return jnp.asarray(np.frombuffer(self.data, self.dtype).reshape(self.shape))


def _resolve_kernel(kernel, kernel_params, target: Target):
    params = dict(kernel_params or {})
    if target.discrete_sites:
        raise ValueError(
            f"the model has discrete latent sites {list(target.discrete_sites)}; the samplers "
            "move unconstrained continuous positions only (numpyro's potential cannot handle "
            "discrete latent sites): marginalise them out first"
        )
    if callable(kernel):
        return _HashablePartial(kernel, tuple(sorted((k, _freeze(v)) for k, v in params.items())))
    if kernel not in _KERNELS:
        raise ValueError(
            f"kernel must be one of {sorted(_KERNELS)} or a callable "
            f"(key, MCMCState, logdensity_fn) -> (MCMCState, info); got {kernel!r}"
        )
    fn, _ = _KERNELS[kernel]
    if "step_size" not in params:
        raise ValueError(f"kernel_params must give 'step_size' for kernel={kernel!r}")
    mcmc._check_step_size(params["step_size"])
    if kernel == "hmc":
        if "num_steps" not in params:
            raise ValueError("kernel_params must give 'num_steps' for kernel='hmc'")
        params["num_steps"] = check_int(
            params["num_steps"], "kernel_params['num_steps']", min_value=1
        )
    return _HashablePartial(fn, tuple(sorted((k, _freeze(v)) for k, v in params.items())))


class _HashablePartial:
    """``partial`` with value equality, so equal kernel settings hit the jit cache."""

    def __init__(self, fn, items):
        self.fn, self.items = fn, items

    def __call__(self, key, state, logdensity_fn):
        kwargs = {k: v.thaw() if isinstance(v, _FrozenArray) else v for k, v in self.items}
        return self.fn(key, state, logdensity_fn, **kwargs)

    def __hash__(self):
        return hash((self.fn, self.items))

    def __eq__(self, other):
        return (
            isinstance(other, _HashablePartial)
            and self.fn is other.fn
            and self.items == other.items
        )


def _rejuvenate(key, particles, logdensity_fn, kernel, num_mcmc_steps):
    """``num_mcmc_steps`` of ``kernel`` (invariant for ``logdensity_fn``) on every particle."""
    n = jax.tree.leaves(particles)[0].shape[0]

    def one(k, z):
        state = mcmc.init(z, logdensity_fn)

        def body(state, kk):
            state, info = kernel(kk, state, logdensity_fn)
            return state, info.acceptance_probability

        state, acc = jax.lax.scan(body, state, jax.random.split(k, num_mcmc_steps))
        return state.position, acc.mean()

    z, acc = jax.vmap(one)(jax.random.split(key, n), particles)
    return z, acc.mean()


def _smc_step(key, pop, increments, logdensity_fn, *, kernel, num_mcmc_steps, resampler, thr):
    """reweight → resample → rejuvenate (one resample–move step)."""
    n = pop.log_weights.shape[0]
    k_res, k_move = jax.random.split(key)
    increments, _ = _sanitize(increments)
    pop, inc = reweight(pop, increments)
    step_ess = ess(pop.log_weights)
    u = draw_resampling_uniforms(k_res, resampler, n)
    pop, ancestors, resampled = resample_step(pop, u, resampler, thr)
    z, acc = _rejuvenate(k_move, pop.particles, logdensity_fn, kernel, num_mcmc_steps)
    pop = pop._replace(particles=z)
    return pop, (step_ess, resampled[0], inc, acc, _unique_count(ancestors, n))


def _init_particles(key, target_static, args, num_particles):
    keys = jax.random.split(key, num_particles)
    z = jax.vmap(target_static.sample_prior, (0, None))(keys, args)
    return spawn(z)


@partial(
    jax.jit,
    static_argnames=(
        "target_static",
        "num_particles",
        "kernel",
        "num_mcmc_steps",
        "resampler",
        "ess_threshold",
        "target_ess",
        "max_steps",
    ),
)
def _adaptive_tempered(
    key,
    args,
    *,
    target_static,
    num_particles,
    kernel,
    num_mcmc_steps,
    resampler,
    ess_threshold,
    target_ess,
    max_steps,
):
    t = target_static
    k_init, k_run = jax.random.split(key)
    pop = _init_particles(k_init, t, args, num_particles)
    dtype = pop.log_weights.dtype
    vll = jax.vmap(t.log_likelihood, (0, None))

    def logdensity_at(beta):
        return lambda z: t.log_prior(z, args) + beta * t.log_likelihood(z, args)

    step = partial(
        _smc_step,
        kernel=kernel,
        num_mcmc_steps=num_mcmc_steps,
        resampler=resampler,
        thr=ess_threshold,
    )

    def cond(carry):
        _, beta, k, _ = carry
        return (beta < 1.0) & (k < max_steps)

    def body(carry):
        pop, beta, k, rec = carry
        ll = vll(pop.particles, args)
        beta_new = next_temperature(pop.log_weights, ll, beta, target_ess)
        beta_new = jnp.where(k == max_steps - 1, 1.0, beta_new).astype(dtype)
        inc = (beta_new - beta) * ll
        pop, info = step(jax.random.fold_in(k_run, k), pop, inc, logdensity_at(beta_new))
        rec = tuple(r.at[k].set(v) for r, v in zip(rec, (beta_new, *info)))
        return pop, beta_new, k + 1, rec

    rec0 = (
        jnp.ones(max_steps, dtype),
        jnp.zeros(max_steps, dtype),
        jnp.zeros(max_steps, bool),
        jnp.zeros(max_steps, dtype),
        jnp.zeros(max_steps, dtype),
        jnp.zeros(max_steps, jnp.int32),
    )
    pop, _, num, rec = jax.lax.while_loop(
        cond, body, (pop, jnp.zeros((), dtype), jnp.asarray(0, jnp.int32), rec0)
    )
    info = SMCSamplerInfo(*rec)
    return SMCSamplerResult(pop.particles, pop.log_weights, pop.log_evidence, info, num)


def _check_common(key, target, num_particles, num_mcmc_steps, resampler, ess_threshold):
    if not isinstance(target, Target):
        raise TypeError(
            "target must be a theorylab.inference.tempering.Target (from_numpyro or "
            f"target_from_functions); got {type(target).__name__}"
        )
    key = _check_keys(key)
    num_particles = check_int(num_particles, "num_particles", min_value=2)
    num_mcmc_steps = check_int(num_mcmc_steps, "num_mcmc_steps", min_value=1)
    ess_threshold = check_float(ess_threshold, "ess_threshold", min_value=0.0, max_value=1.0)
    resampler = get_resampler(resampler)
    return key, num_particles, num_mcmc_steps, resampler, ess_threshold


def _first_key(key):
    return jax.random.fold_in(key if key.ndim == 0 else key[0], 7)


def _batched(fn, key):
    """``fn(key, *args, **static)`` for one key, vmapped over a 1-D batch of keys."""
    if key.ndim == 0:
        return partial(fn, key)

    def run(*args, **static):
        return jax.vmap(lambda k: fn(k, *args, **static))(key)

    return run


def _check_initial_density(target: Target, key):
    """A prior draw must have finite log prior and log-likelihood (else a clear error).

    Skipped when called under a JAX transformation (traced key or data): the sampler is then
    part of a bigger traced program (e.g. SBC vmapped over replicates) and the NaN/collapse
    diagnostics in the result are what reports trouble.
    """
    leaves = [jax.random.key_data(key), *jax.tree.leaves(target.args)]
    if not all(is_concrete(leaf) for leaf in leaves):
        return
    z = target.sample_prior(key, target.args)
    lp = float(target.log_prior(z, target.args))
    ll = float(target.log_likelihood(z, target.args))
    if not (np.isfinite(lp) and np.isfinite(ll)):
        raise ValueError(
            f"the target's log density is not finite at a prior draw (log_prior = {lp}, "
            f"log_likelihood = {ll}) at position {jax.tree.map(np.asarray, z)}"
        )


def tempered_smc(
    key,
    target: Target,
    *,
    num_particles: int,
    kernel: str | Callable = "rwmh",
    kernel_params: dict | None = None,
    num_mcmc_steps: int = 1,
    schedule=None,
    target_ess: float = 0.5,
    max_steps: int = 100,
    resampler: str | Resampler = "systematic",
    ess_threshold: float = 1.0,
) -> SMCSamplerResult:
    """Resample–move SMC from the prior to the posterior by likelihood tempering.

    Args:
      key: PRNG key, or a 1-D batch of keys (independent runs, vmapped in one compiled call).
      target: a :class:`Target` (:func:`from_numpyro` / :func:`target_from_functions`).
      num_particles: N.
      kernel: ``"rwmh" | "mala" | "hmc" | "nuts"`` (with ``kernel_params``, e.g.
        ``{"step_size": 0.1, "num_steps": 10}``) or a callable ``(key, MCMCState,
        logdensity_fn) -> (MCMCState, info)`` invariant for the ``logdensity_fn`` it is given
        (the *current* tempered target); its ``info`` must have ``acceptance_probability``.
        ``kernel_params`` are passed to it as keywords (numbers or arrays, e.g. a NUTS
        ``inverse_mass_matrix``).
      num_mcmc_steps: kernel applications per particle per step.
      schedule: fixed increasing temperatures ending at 1 (unbiased ``Ẑ``); ``None`` =
        adaptive (conditional-ESS bisection to ``target_ess · N``; ``Ẑ`` slightly biased, see module
        docstring), at most ``max_steps`` steps (the last forced to β = 1).
      resampler, ess_threshold: resample when ESS < threshold · N (default 1: every step).

    Returns:
      :class:`SMCSamplerResult`; ``info`` has one row per step (adaptive: ``max_steps`` rows,
      valid up to ``num_steps``). Cost: ``steps · N · num_mcmc_steps`` kernel calls.
    """
    key, num_particles, num_mcmc_steps, resampler, ess_threshold = _check_common(
        key, target, num_particles, num_mcmc_steps, resampler, ess_threshold
    )
    kern = _resolve_kernel(kernel, kernel_params, target)
    target_ess = check_float(
        target_ess,
        "target_ess",
        min_value=0.0,
        max_value=1.0,
        min_inclusive=False,
        max_inclusive=False,
    )
    max_steps = check_int(max_steps, "max_steps", min_value=1)
    sched = None if schedule is None else jnp.asarray(_check_schedule(schedule))
    _check_initial_density(target, _first_key(key))
    common = {
        "target_static": target._replace(args=None),
        "num_particles": num_particles,
        "kernel": kern,
        "num_mcmc_steps": num_mcmc_steps,
        "resampler": resampler,
        "ess_threshold": ess_threshold,
    }
    if sched is None:
        result = _batched(_adaptive_tempered, key)(
            target.args, target_ess=float(target_ess), max_steps=max_steps, **common
        )
    else:  # tempering = one likelihood term with coefficients β_k
        result = _batched(_fixed_sequence, key)(
            target.args, sched[:, None], per_term=False, **common
        )
    _report(result)
    return result


@partial(
    jax.jit,
    static_argnames=(
        "target_static",
        "per_term",
        "num_particles",
        "kernel",
        "num_mcmc_steps",
        "resampler",
        "ess_threshold",
    ),
)
def _fixed_sequence(
    key,
    args,
    coefficients,
    *,
    target_static,
    per_term,
    num_particles,
    kernel,
    num_mcmc_steps,
    resampler,
    ess_threshold,
):
    """Resample–move SMC through the fixed targets ``γ_k = p(θ)·exp(Σ_j c_k[j]·ℓ_j(θ))``.

    ``coefficients [K, J]``: tempering is ``J = 1`` with ``ℓ_1 = ℓ`` and ``c_k = [β_k]``
    (``per_term=False``); data annealing uses the per-datum terms and ``c_k = mask_k``. Each
    step's increment is ``Σ_j (c_k[j] − c_{k−1}[j])·ℓ_j``; ``info.beta`` records ``mean_j c_k``
    (β, or the fraction of terms included). One ``lax.scan``.
    """
    t = target_static

    def terms(z):
        return t.log_likelihood_terms(z, args) if per_term else t.log_likelihood(z, args)[None]

    def weighted(c, ell):  # Σ c·ℓ with 0·(−∞) = 0
        return jnp.sum(jnp.where(c != 0, c * ell, 0.0), axis=-1)

    k_init, k_run = jax.random.split(key)
    pop = _init_particles(k_init, t, args, num_particles)
    coefficients = coefficients.astype(pop.log_weights.dtype)

    def body(carry, inp):
        pop, prev = carry
        k, c = inp
        inc = weighted(c - prev, jax.vmap(terms)(pop.particles))
        pop, info = _smc_step(
            k,
            pop,
            inc,
            lambda z: t.log_prior(z, args) + weighted(c, terms(z)),
            kernel=kernel,
            num_mcmc_steps=num_mcmc_steps,
            resampler=resampler,
            thr=ess_threshold,
        )
        return (pop, c), (jnp.mean(c), *info)

    keys = jax.random.split(k_run, coefficients.shape[0])
    (pop, _), rec = jax.lax.scan(body, (pop, jnp.zeros_like(coefficients[0])), (keys, coefficients))
    num = jnp.asarray(coefficients.shape[0], jnp.int32)
    return SMCSamplerResult(
        pop.particles, pop.log_weights, pop.log_evidence, SMCSamplerInfo(*rec), num
    )


def data_annealing_smc(
    key,
    target: Target,
    *,
    num_particles: int,
    masks=None,
    num_stages: int | None = None,
    kernel: str | Callable = "rwmh",
    kernel_params: dict | None = None,
    num_mcmc_steps: int = 1,
    resampler: str | Resampler = "systematic",
    ess_threshold: float = 0.5,
) -> SMCSamplerResult:
    """Resample–move SMC adding observations in batches (data annealing / IBIS, Chopin 2002).

    ``masks`` (bool ``[K, J]``, monotone in ``k``, last row all True) says which per-datum
    log-likelihood terms are in ``γ_k``; or give ``num_stages`` for
    :func:`data_annealing_schedule`. Needs ``target.log_likelihood_terms``. ``Ẑ`` is unbiased
    (fixed masks). ``info.beta`` holds the fraction of terms included.
    """
    key, num_particles, num_mcmc_steps, resampler, ess_threshold = _check_common(
        key, target, num_particles, num_mcmc_steps, resampler, ess_threshold
    )
    if target.log_likelihood_terms is None:
        raise ValueError("data annealing needs target.log_likelihood_terms; got None")
    z = target.sample_prior(_first_key(key), target.args)
    num_terms = int(np.size(target.log_likelihood_terms(z, target.args)))
    if (masks is None) == (num_stages is None):
        raise ValueError("give exactly one of masks and num_stages")
    if masks is None:
        masks = data_annealing_schedule(num_terms, num_stages)
    masks = np.asarray(masks)
    if masks.dtype != bool or masks.ndim != 2 or masks.shape[1] != num_terms:
        raise ValueError(
            f"masks must be a boolean array [num_stages, {num_terms}]; got dtype {masks.dtype}"
            f" and shape {masks.shape}"
        )
    if np.any(masks[:-1] & ~masks[1:]) or not masks[-1].all():
        raise ValueError(
            "masks must be monotone (a term once included stays) and the last stage must "
            "include every term"
        )
    kern = _resolve_kernel(kernel, kernel_params, target)
    _check_initial_density(target, _first_key(key))
    result = _batched(_fixed_sequence, key)(
        target.args,
        jnp.asarray(masks),
        target_static=target._replace(args=None),
        per_term=True,
        num_particles=num_particles,
        kernel=kern,
        num_mcmc_steps=num_mcmc_steps,
        resampler=resampler,
        ess_threshold=ess_threshold,
    )
    _report(result)
    return result


def _report(result: SMCSamplerResult) -> None:
    """Warn (never silently return) when the evidence is not finite."""
    import warnings

    if is_concrete(result.log_evidence):
        lz = np.asarray(result.log_evidence)
        if not np.all(np.isfinite(lz)):
            warnings.warn(
                "SMC sampler: log evidence is not finite (all particles reached zero weight "
                "or the likelihood produced NaN); inspect result.info",
                RuntimeWarning,
                stacklevel=3,
            )
