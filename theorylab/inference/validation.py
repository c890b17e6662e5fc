"""Validation of SMC building blocks: exact enumeration and statistical checks.

The criterion (Ścibior et al., POPL 2018): a transformation of weighted populations is *valid*
when the expected measure ``E[Ẑ · Σ_i W_i δ_{x_i}]``, averaged over all the randomness used,
is unchanged. For tiny discrete models this expectation can be computed **exactly** by
enumerating every random outcome of an SMC run — every initial draw, every transition and every
resampling outcome. Resampling outcomes come from the resampler's own ``intervals``: its
``from_uniforms`` map is piecewise constant in the uniforms, so evaluating it at the midpoint of
every interval and weighting by the interval's length integrates over the resampler *as
implemented* (monad-bayes' ``Enumerator`` + ``collapse`` check, vectorised).

The enumeration composes the same blocks the filter runs (:func:`~theorylab.inference.smc.
resample_step`, :func:`~theorylab.inference.population.reweight`); pass your own
``resample_fn``/``reweight_fn`` to validate a block of your own. Results are
:class:`ValidationResult` objects carrying the statistic, the threshold and the verdict.

Statistical checks (:func:`check_evidence_unbiased`) state their false-positive rate: a
two-sided z-test at ``z = 3.9`` rejects a correct estimator with probability ≈ 1e-4.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import check_array, check_float, check_int, require_x64
from theorylab.inference.population import Population, normalize_log_weights, reweight, spawn
from theorylab.inference.reference import hmm_forward, hmm_path_joint
from theorylab.inference.resampling import Resampler, get_resampler
from theorylab.inference.smc import resample_step

__all__ = [
    "DiscreteModel",
    "ExactMeasure",
    "ValidationResult",
    "check_evidence_unbiased",
    "check_resampler_unbiased",
    "check_smc_exactness",
    "discrete_model_from_hmm",
    "enumerate_smc",
    "exact_discrete_measure",
    "expected_offspring",
    "mutant_resample_drops_evidence",
    "mutant_reweight_mean_potential",
]


class ValidationResult(NamedTuple):
    """Outcome of a validation check.

    Attributes:
      name: what was checked.
      statistic: the test statistic (an error, a z-score, ...).
      threshold: the pass threshold for ``statistic``.
      passed: the verdict (``statistic <= threshold``).
      details: everything needed to re-derive the verdict.
    """

    name: str
    statistic: float
    threshold: float
    passed: bool
    details: dict

    def __bool__(self) -> bool:
        return bool(self.passed)


class DiscreteModel(NamedTuple):
    """A tiny discrete Feynman–Kac model for exact enumeration.

    ``x_0 ~ init_probs``, ``x_t ~ transition[x_{t−1}]``, potential ``exp(log_potentials[t,
    x_t])``. Its exact path measure is ``init · Π transition · Π exp(log_potentials)``.
    """

    init_probs: np.ndarray
    transition: np.ndarray
    log_potentials: np.ndarray


def discrete_model_from_hmm(init_probs, transition, emission, observations) -> DiscreteModel:
    """The bootstrap Feynman–Kac model of a discrete HMM with fixed observations."""
    emission = np.asarray(emission, float)
    ys = np.asarray(observations, int)
    with np.errstate(divide="ignore"):
        log_g = np.log(emission[:, ys].T)
    return DiscreteModel(np.asarray(init_probs, float), np.asarray(transition, float), log_g)


class ExactMeasure(NamedTuple):
    """Exact expectations of an SMC run: ``final[k] = E[Ẑ Σ_i W_i 1{x_T,i = k}]``,
    ``paths`` the same over whole paths (shape ``(K,)*T``), ``evidence = E[Ẑ]``, and the
    number of distinct enumerated branches."""

    final: np.ndarray
    paths: np.ndarray
    evidence: float
    num_branches: int


def _dedupe(states, paths, log_w, log_z, prob):
    """Merge identical branches (bitwise-equal states, paths, weights) by adding probabilities."""
    keep = prob > 0
    states, paths, log_w, log_z, prob = (
        states[keep],
        paths[keep],
        log_w[keep],
        log_z[keep],
        prob[keep],
    )
    rows = np.concatenate(
        [
            states.astype(float),
            paths.reshape(paths.shape[0], -1).astype(float),
            log_w,
            log_z[:, None],
        ],
        axis=1,
    )
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    merged = np.zeros(first.shape[0])
    np.add.at(merged, inverse, prob)
    return states[first], paths[first], log_w[first], log_z[first], merged


def _uniform_combinations(intervals):
    """All midpoint combinations of per-coordinate intervals: ``(u [C, Ncomb], prob [Ncomb])``."""
    mids = 0.5 * (intervals[:, 1:] + intervals[:, :-1])
    lengths = intervals[:, 1:] - intervals[:, :-1]
    c, p = mids.shape
    idx = np.asarray(list(itertools.product(range(p), repeat=c)), dtype=int)
    rows = np.arange(c)
    return mids[rows, idx], np.prod(lengths[rows, idx], axis=1)


def _padded(fn, *arrays):
    """Call a jitted batch function on arrays padded to a power-of-two batch (few compiles)."""
    b = arrays[0].shape[0]
    size = 1 << max(0, (b - 1).bit_length())
    padded = [np.concatenate([a, np.repeat(a[:1], size - b, 0)]) if size > b else a for a in arrays]
    out = fn(*(jnp.asarray(a) for a in padded))
    out = out if isinstance(out, tuple) else (out,)
    return tuple(np.asarray(o)[:b] for o in out)


@functools.lru_cache(maxsize=64)
def _compiled_blocks(resample_fn, reweight_fn, resampler, d, per):
    """Jitted, batched versions of the blocks being enumerated (cached per configuration)."""

    @jax.jit
    def reweight_jit(log_w, log_z, pot):
        particles = jnp.zeros(log_w.shape)
        out, _ = jax.vmap(reweight_fn)(Population(particles, log_w, log_z), pot)
        return out.log_weights, out.log_evidence

    @jax.jit
    def intervals_jit(log_w):
        def one(lw):
            local = lw.reshape(d, per)
            mass = jax.scipy.special.logsumexp(local, axis=1, keepdims=True)
            local = local - jnp.where(jnp.isneginf(mass), 0.0, mass)
            iv = jax.vmap(lambda w: resampler.intervals(w, per))(local)
            return iv.reshape(-1, iv.shape[-1])

        return jax.vmap(one)(log_w)

    @jax.jit
    def resample_jit(states, paths, log_w, log_z, u, ess_threshold):
        def one(s, p, lw, lz, uu):
            pop = Population({"x": s, "path": p}, lw, lz)
            out, _, _ = resample_fn(pop, uu, resampler, ess_threshold, d)
            return out.particles["x"], out.particles["path"], out.log_weights, out.log_evidence

        return jax.vmap(one)(states, paths, log_w, log_z, u)

    return reweight_jit, intervals_jit, resample_jit


def enumerate_smc(
    model: DiscreteModel,
    num_particles: int,
    resampler: str | Resampler = "systematic",
    ess_threshold: float = 1.0,
    *,
    num_islands: int = 1,
    resample_fn: Callable = resample_step,
    reweight_fn: Callable = reweight,
) -> ExactMeasure:
    """Exact expected weighted measure of an SMC run on a tiny discrete model (float64).

    Enumerates every outcome of: the ``N`` initial draws, and at each later step the
    resampling uniforms (by the resampler's breakpoint intervals) and the ``N`` transitions.
    Identical branches are merged, so ``K=2, N=2, T=3`` takes well under a second.

    Args:
      model: a :class:`DiscreteModel`.
      num_particles: ``N`` (keep ``K^N`` and the resampler's interval count small).
      resampler, ess_threshold, num_islands: as in
        :func:`~theorylab.inference.smc.particle_filter`.
      resample_fn: ``(population, uniforms[D, U], resampler, ess_threshold, num_islands) ->
        (population, ancestors, resampled)``; default the library's block.
      reweight_fn: ``(population, log_potentials) -> (population, increment)``.

    Returns:
      :class:`ExactMeasure`.
    """
    require_x64("exact SMC enumeration")
    n = check_int(num_particles, "num_particles", min_value=1, max_value=6)
    ess_threshold = check_float(ess_threshold, "ess_threshold", min_value=0.0, max_value=1.0)
    d = check_int(num_islands, "num_islands", min_value=1)
    if n % d:
        raise ValueError(f"num_particles must be divisible by num_islands={d}; got {n}")
    resampler = get_resampler(resampler)
    init = np.asarray(model.init_probs, float)
    trans = np.asarray(model.transition, float)
    log_g = np.asarray(model.log_potentials, float)
    k, t_len = init.shape[0], log_g.shape[0]
    per = n // d

    combos = np.asarray(list(itertools.product(range(k), repeat=n)), dtype=np.int64)

    reweight_jit, intervals_jit, resample_jit = _compiled_blocks(
        resample_fn, reweight_fn, resampler, d, per
    )

    def reweight_batch(states, log_w, log_z, step):
        pot = log_g[step][states]
        out_w, out_z = _padded(reweight_jit, log_w, log_z, pot)
        return out_w, out_z

    # t = 0: spawn + reweight
    states = combos
    prob = np.prod(init[combos], axis=1)
    paths = combos[:, :, None]
    base = spawn(jnp.zeros(n))
    log_w = np.broadcast_to(np.asarray(base.log_weights), (len(combos), n)).copy()
    log_z = np.zeros(len(combos))
    log_w, log_z = reweight_batch(states, log_w, log_z, 0)
    states, paths, log_w, log_z, prob = _dedupe(states, paths, log_w, log_z, prob)

    def resample_batch(states, paths, lw, lz, u):
        threshold = np.full(len(lw), ess_threshold)
        return _padded(
            lambda *a: resample_jit(*a[:-1], a[-1][0]), states, paths, lw, lz, u, threshold
        )

    for step in range(1, t_len):
        # resampling outcomes
        (ivs,) = _padded(intervals_jit, log_w)
        new = []
        for b in range(len(prob)):
            u, pu = _uniform_combinations(ivs[b])
            nb = len(pu)
            new.append(
                (
                    np.repeat(states[b : b + 1], nb, 0),
                    np.repeat(paths[b : b + 1], nb, 0),
                    np.repeat(log_w[b : b + 1], nb, 0),
                    np.repeat(log_z[b : b + 1], nb, 0),
                    prob[b] * pu,
                    u.reshape(nb, d, -1),
                )
            )
        s_, p_, w_, z_, pr_, u_ = (np.concatenate(parts) for parts in zip(*new))
        keep = pr_ > 0
        s_, p_, w_, z_ = resample_batch(s_[keep], p_[keep], w_[keep], z_[keep], u_[keep])
        states, paths, log_w, log_z, prob = _dedupe(s_, p_, w_, z_, pr_[keep])
        # transitions
        nb = len(prob)
        trans_prob = np.prod(trans[states[:, None, :], combos[None, :, :]], axis=2)  # (B, C)
        states2 = np.broadcast_to(combos[None], (nb, len(combos), n)).reshape(-1, n)
        prob2 = (prob[:, None] * trans_prob).reshape(-1)
        paths2 = np.concatenate([np.repeat(paths, len(combos), 0), states2[:, :, None]], axis=2)
        lw2 = np.repeat(log_w, len(combos), 0)
        lz2 = np.repeat(log_z, len(combos), 0)
        keep = prob2 > 0
        lw2, lz2 = reweight_batch(states2[keep], lw2[keep], lz2[keep], step)
        states, paths, log_w, log_z, prob = _dedupe(
            states2[keep], paths2[keep], lw2, lz2, prob2[keep]
        )

    mass = prob[:, None] * np.exp(log_z)[:, None] * np.exp(log_w)  # (B, N)
    final = np.zeros(k)
    np.add.at(final, states.reshape(-1), mass.reshape(-1))
    path_measure = np.zeros((k,) * t_len)
    flat_paths = paths.reshape(-1, t_len)
    np.add.at(path_measure, tuple(flat_paths.T), mass.reshape(-1))
    evidence = float(np.sum(prob * np.exp(log_z)))
    return ExactMeasure(final, path_measure, evidence, len(prob))


def exact_discrete_measure(model: DiscreteModel):
    """``(final, paths, Z)`` of a :class:`DiscreteModel` by brute force over all paths."""
    log_g = np.asarray(model.log_potentials, float)
    emission_like = np.exp(log_g).T  # (K, T): potential of state k at time t
    ys = np.arange(log_g.shape[0])
    paths = hmm_path_joint(model.init_probs, model.transition, emission_like, ys)
    alpha = hmm_forward(model.init_probs, model.transition, emission_like, ys)
    return alpha[-1], paths, float(alpha[-1].sum())


def check_smc_exactness(
    model: DiscreteModel,
    num_particles: int,
    resampler: str | Resampler = "systematic",
    ess_threshold: float = 1.0,
    *,
    num_islands: int = 1,
    tolerance: float = 1e-12,
    resample_fn: Callable = resample_step,
    reweight_fn: Callable = reweight,
) -> ValidationResult:
    """Exact check ``E[Ẑ Σ W δ_{x_{0:T}}] = p(x_{0:T}, y)`` (spec A3; zero false-positive rate).

    Statistic: the largest absolute error over final states and paths, relative to ``Z``.
    The reference is an independent brute-force sum over all ``K^T`` paths.
    """
    tolerance = check_float(tolerance, "tolerance", min_value=0.0)
    got = enumerate_smc(
        model,
        num_particles,
        resampler,
        ess_threshold,
        num_islands=num_islands,
        resample_fn=resample_fn,
        reweight_fn=reweight_fn,
    )
    final, paths, z = exact_discrete_measure(model)
    err = max(np.max(np.abs(got.final - final)), np.max(np.abs(got.paths - paths))) / z
    name = get_resampler(resampler).name
    return ValidationResult(
        f"SMC exactness ({name}, ess_threshold={ess_threshold}, N={num_particles}, "
        f"islands={num_islands})",
        float(err),
        tolerance,
        bool(err <= tolerance),
        {
            "expected_final": final,
            "enumerated_final": got.final,
            "evidence": z,
            "enumerated_evidence": got.evidence,
            "num_branches": got.num_branches,
        },
    )


@functools.lru_cache(maxsize=64)
def _batched_from_uniforms(resampler: Resampler, m: int):
    return jax.jit(jax.vmap(lambda u, lw: resampler.from_uniforms(u, lw, m), (0, None)))


def expected_offspring(resampler: str | Resampler, log_weights, num_samples: int) -> np.ndarray:
    """Exact ``E[O_i]`` of a resampler, integrating its ancestors over its uniform intervals.

    Single-uniform schemes (systematic) integrate all slots over the one coordinate;
    multi-uniform schemes use that coordinate ``k`` drives slot ``k`` (true for the built-in
    multinomial, stratified and residual implementations).
    """
    require_x64("exact offspring expectations")
    resampler = get_resampler(resampler)
    log_weights = jnp.asarray(check_array(log_weights, "log_weights", ndim=1, kind="real"))
    m = check_int(num_samples, "num_samples", min_value=1)
    n = log_weights.shape[0]
    iv = np.asarray(resampler.intervals(log_weights, m))
    mids = 0.5 * (iv[:, 1:] + iv[:, :-1])
    lengths = iv[:, 1:] - iv[:, :-1]
    coords = resampler.num_uniforms(m)
    counts = np.zeros(n)
    base = np.full(coords, 0.5)
    f = _batched_from_uniforms(resampler, m)
    for c in range(coords):
        us = np.repeat(base[None], mids.shape[1], 0)
        us[:, c] = mids[c]
        anc = np.asarray(f(jnp.asarray(us), log_weights))
        slots = anc if coords == 1 else anc[:, c : c + 1]
        for j in range(mids.shape[1]):
            np.add.at(counts, slots[j], lengths[c, j])
    return counts


def mutant_resample_drops_evidence(population, uniforms, resampler, ess_threshold, num_islands=1):
    """A deliberately **broken** resampling block: offspring get weight ``1/N`` of unit mass
    instead of ``Ẑ/N`` (the evidence is forgotten). For power checks: a validation that cannot
    reject this cannot fail."""
    out, ancestors, resampled = resample_step(
        population, uniforms, resampler, ess_threshold, num_islands
    )
    lost = jnp.where(jnp.any(resampled), 0.0, out.log_evidence)
    return out._replace(log_evidence=lost), ancestors, resampled


def mutant_reweight_mean_potential(population: Population, log_potentials):
    """A deliberately **broken** reweight block: evidence increment ``log mean(G)`` ignoring the
    incoming weights (right only when they are uniform; the classic bug after a step without
    resampling)."""
    log_w, _ = normalize_log_weights(population.log_weights + log_potentials)
    inc = jax.scipy.special.logsumexp(log_potentials) - jnp.log(log_potentials.shape[0])
    return Population(population.particles, log_w, population.log_evidence + inc), inc


def check_resampler_unbiased(
    resampler: str | Resampler, log_weights, num_samples: int, *, tolerance: float = 1e-12
) -> ValidationResult:
    """Exact check ``E[O_i] = M · W_i`` for every ``i`` (spec A1)."""
    lw = np.asarray(log_weights, float)
    w = np.exp(lw - np.max(lw))
    w = w / w.sum()
    got = expected_offspring(resampler, lw, num_samples)
    err = float(np.max(np.abs(got - num_samples * w)))
    return ValidationResult(
        f"unbiased offspring ({get_resampler(resampler).name}, M={num_samples})",
        err,
        tolerance,
        bool(err <= tolerance),
        {"expected_counts": num_samples * w, "integrated_counts": got},
    )


def check_evidence_unbiased(
    log_evidence_estimates, log_evidence_true: float, *, z: float = 3.9
) -> ValidationResult:
    """Statistical check that ``Ẑ`` is unbiased for ``Z`` (spec A4), false-positive rate ≈ 1e-4.

    Two z-tests over ``S`` independent runs: (i) ``R_s = Ẑ_s/Z``: ``|mean R − 1| ≤ z·SE(R)``;
    (ii) the log-normal moment check of Bérard, Del Moral & Doucet (2014):
    ``|mean(log Ẑ − log Z) + ½ var(log Ẑ)| ≤ z·SE``, with the SE of that combination from
    the delta method. The statistic is the larger of the two |z|-scores. (i) has heavy tails
    when ``sd(log Ẑ)`` exceeds ~0.5; (ii) stays reliable there.
    """
    est = np.asarray(check_array(log_evidence_estimates, "log_evidence_estimates", ndim=1), float)
    s = est.shape[0]
    if s < 10:
        raise ValueError(f"log_evidence_estimates needs at least 10 runs; got {s}")
    if not np.all(np.isfinite(est)):
        raise ValueError("log_evidence_estimates contains non-finite values (collapsed runs?)")
    z = check_float(z, "z", min_value=0.0, min_inclusive=False)
    delta = est - float(log_evidence_true)
    r = np.exp(delta)
    z_ratio = (r.mean() - 1.0) / (r.std(ddof=1) / np.sqrt(s))
    mu, var = delta.mean(), delta.var(ddof=1)
    stat = mu + 0.5 * var
    # delta method for mean + var/2: Var ≈ (σ² + σ⁴/2 + m3 + m4/4 - σ⁴/4)/S, via influence fn
    centred = delta - mu
    influence = centred + 0.5 * (centred**2 - var)
    se = influence.std(ddof=1) / np.sqrt(s)
    z_lognormal = stat / se
    worst = float(max(abs(z_ratio), abs(z_lognormal)))
    return ValidationResult(
        "evidence unbiasedness",
        worst,
        z,
        bool(worst <= z),
        {
            "num_runs": s,
            "mean_ratio": float(r.mean()),
            "z_ratio": float(z_ratio),
            "mean_log_error": float(mu),
            "sd_log_evidence": float(np.sqrt(var)),
            "lognormal_statistic": float(stat),
            "z_lognormal": float(z_lognormal),
        },
    )
