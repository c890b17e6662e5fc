"""Particle filters with particles sharded over a 1-D device mesh (spec §2.7).

``N = D · N_loc`` particles live on ``D`` devices. Mutation and reweighting are local; the
log-evidence increment and the ESS need only scalars per device (``pmax`` of the local maxima,
``psum`` of local sums). Two resampling modes, both valid:

* ``"global"`` — exactly the single-device algorithm. For systematic resampling each device
  computes its particles' **offspring counts locally** from its own CDF values plus the ``D``
  all-gathered block sums (``O_i = ⌈N C_i − u⌉ − ⌈N C_{i−1} − u⌉``); other schemes all-gather
  the ``N`` log-weights. The shared uniforms come from a key identical on every device, and
  per-particle keys are ``split(key, N)[global index]``, so ancestors and ``log Ẑ`` equal the
  single-device run with the same key (bitwise ancestors in float64 up to probability-zero
  rounding ties; tested). Particles move by an all-gather (``N·d`` values per device), the
  simple correct version of the spec.
* ``"island"`` — each device is an island that resamples locally on its own ESS with its own
  uniforms (``split(key, D)[device]``); offspring share the island's mass. Communication is
  O(1) scalars per step. Identical to :func:`~theorylab.inference.smc.particle_filter` with
  ``num_islands = D`` on one device, which the exactness enumeration validates.
"""

from __future__ import annotations

import functools
from functools import partial

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from theorylab.core.checks import check_choice, check_float, check_int, check_key
from theorylab.inference.models import FeynmanKac
from theorylab.inference.population import Population
from theorylab.inference.resampling import (
    Resampler,
    _ancestors_from_counts,
    get_resampler,
    systematic,
)
from theorylab.inference.smc import (
    FilterResult,
    StepInfo,
    _check_model_shapes,
    _kahan_add,
    _num_steps,
    _sanitize,
    resample_step,
)

__all__ = ["sharded_particle_filter"]

_AXIS = "particles"


def _global_normalize(log_w):
    """Globally normalised local log-weights and the global log-sum-exp (scalars only)."""
    top = jax.lax.pmax(jnp.max(log_w), _AXIS)
    safe_top = jnp.where(jnp.isfinite(top), top, 0.0)
    total = jax.lax.psum(jnp.sum(jnp.exp(log_w - safe_top)), _AXIS)
    lse = jnp.log(total) + safe_top
    dead = jnp.isneginf(lse)
    n_loc = log_w.shape[0]
    n = n_loc * jax.lax.axis_size(_AXIS)
    normalised = jnp.where(
        dead, -jnp.log(n) * jnp.ones_like(log_w), log_w - jnp.where(dead, 0.0, lse)
    )
    return normalised, lse


def _global_ess(log_w):
    return 1.0 / jax.lax.psum(jnp.sum(jnp.exp(2 * log_w)), _AXIS)


def _local_systematic_counts(log_w, u, n):
    """Systematic offspring counts of this device's particles from D all-gathered block sums."""
    top = jax.lax.pmax(jnp.max(log_w), _AXIS)
    w = jnp.exp(log_w - top)
    local_cum = jnp.cumsum(w)
    blocks = jax.lax.all_gather(local_cum[-1], _AXIS)
    d = jax.lax.axis_index(_AXIS)
    offset = jnp.sum(jnp.where(jnp.arange(blocks.shape[0]) < d, blocks, 0.0))
    total = jnp.sum(blocks)
    cdf = jnp.concatenate([offset[None], offset + local_cum]) / total
    below = jnp.clip(jnp.ceil(n * cdf - u), 0, n).astype(jnp.int32)
    return jnp.diff(below)


def _global_resample(pop, u, resampler: Resampler, ess_threshold, n):
    n_loc = pop.log_weights.shape[0]
    d = jax.lax.axis_index(_AXIS)
    step_ess = _global_ess(pop.log_weights)
    decide = (ess_threshold >= 1.0) | (step_ess < ess_threshold * n)
    if resampler is systematic:
        counts = jax.lax.all_gather(
            _local_systematic_counts(pop.log_weights, u[0], n), _AXIS, tiled=True
        )
        ancestors_all = _ancestors_from_counts(counts, n)
    else:
        log_w_all = jax.lax.all_gather(pop.log_weights, _AXIS, tiled=True)
        ancestors_all = resampler.from_uniforms(u, log_w_all, n)
    mine = jax.lax.dynamic_slice(ancestors_all, (d * n_loc,), (n_loc,))
    gidx = d * n_loc + jnp.arange(n_loc)
    ancestors = jnp.where(decide, mine, gidx).astype(jnp.int32)
    gathered = jax.tree.map(lambda a: jax.lax.all_gather(a, _AXIS, tiled=True), pop.particles)
    particles = jax.tree.map(lambda a: a[ancestors], gathered)
    log_w = jnp.where(decide, jnp.full_like(pop.log_weights, -jnp.log(n)), pop.log_weights)
    return Population(particles, log_w, pop.log_evidence), ancestors, decide, step_ess


def _island_resample(pop, key, resampler, ess_threshold):
    n_loc = pop.log_weights.shape[0]
    d = jax.lax.axis_index(_AXIS)
    step_ess = _global_ess(pop.log_weights)
    u = resampler.draw(jax.random.split(key, jax.lax.axis_size(_AXIS))[d], n_loc)[None]
    out, ancestors, decide = resample_step(pop, u, resampler, ess_threshold, 1)
    return out, (ancestors + d * n_loc).astype(jnp.int32), decide[0], step_ess


def _particle_keys_for(key, n, gidx):
    """The single-device keys ``split(key, N)`` restricted to this device's global indices."""
    return jax.random.split(key, n)[gidx]


def _move(key, pop, model, t, inputs_t, params, gidx, n):
    keys = _particle_keys_for(key, n, gidx)
    x, log_g = jax.vmap(model.step, (0, None, 0, None, None))(
        keys, t, pop.particles, inputs_t, params
    )
    log_g, invalid = _sanitize(log_g)
    log_w, inc = _global_normalize(pop.log_weights + log_g)
    return Population(x, log_w, pop.log_evidence + inc), inc, jax.lax.psum(invalid, _AXIS)


def _sharded_body(
    key, inputs, params, *, model, n, resampler, ess_threshold, mode, return_ancestors
):
    n_loc = n // jax.lax.axis_size(_AXIS)
    d = jax.lax.axis_index(_AXIS)
    gidx = d * n_loc + jnp.arange(n_loc)
    if model.prepare_inputs is not None:
        inputs = model.prepare_inputs(inputs)
    first = jax.tree.map(lambda a: a[0], inputs)
    rest = jax.tree.map(lambda a: a[1:], inputs)
    k0 = jax.random.split(jax.random.fold_in(key, 0))[1]
    keys0 = _particle_keys_for(k0, n, gidx)
    x0, log_g = jax.vmap(model.init, (0, None, None))(keys0, first, params)
    log_g, invalid0 = _sanitize(log_g)
    log_w0 = jnp.full((n_loc,), -jnp.log(n), log_g.dtype)
    log_w, inc0 = _global_normalize(log_w0 + log_g)
    pop = Population(x0, log_w, jnp.zeros((), log_g.dtype))

    def summarise(pop, t, inputs_t):
        corr = None
        if model.log_untwist is not None:
            corr = jax.vmap(model.log_untwist, (None, 0, None, None))(
                t, pop.particles, inputs_t, params
            )
        lw = pop.log_weights if corr is None else _global_normalize(pop.log_weights + corr)[0]
        w = jnp.exp(lw)
        return jax.tree.map(
            lambda v: jax.lax.psum(
                jnp.tensordot(w.astype(jnp.result_type(v, float)), v, axes=(0, 0)), _AXIS
            ),
            pop.particles,
        )

    def body(carry, xs):
        pop, total, comp = carry
        t, inputs_t = xs
        k_res, k_move = jax.random.split(jax.random.fold_in(key, t))
        if mode == "global":
            u = resampler.draw(k_res, n)
            pop, ancestors, resampled, step_ess = _global_resample(
                pop, u, resampler, ess_threshold, n
            )
        else:
            pop, ancestors, resampled, step_ess = _island_resample(
                pop, k_res, resampler, ess_threshold
            )
        pop, inc, invalid = _move(k_move, pop, model, t, inputs_t, params, gidx, n)
        total, comp = _kahan_add(total, comp, inc)
        hits = jax.lax.psum(jnp.zeros(n, jnp.int32).at[ancestors].add(1), _AXIS)
        unique = jnp.sum(hits > 0).astype(jnp.int32)
        resampled_out = jax.lax.all_gather(resampled, _AXIS) if mode == "island" else resampled
        info = StepInfo(step_ess, resampled_out, inc, unique, invalid)
        outs = (summarise(pop, t, inputs_t), ancestors if return_ancestors else None)
        return (pop, total, comp), (info, outs)

    ts = jnp.arange(1, jax.tree.leaves(inputs)[0].shape[0])
    (pop, total, _), (infos, outs) = jax.lax.scan(
        body, (pop, inc0, jnp.zeros_like(inc0)), (ts, rest)
    )
    num_dev = jax.lax.axis_size(_AXIS)
    info0 = StepInfo(
        jnp.asarray(n, inc0.dtype),
        jnp.zeros((num_dev,), bool) if mode == "island" else jnp.asarray(False),
        inc0,
        jnp.asarray(n, jnp.int32),
        jax.lax.psum(invalid0, _AXIS),
    )
    info = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), info0, infos)
    summary0 = summarise(Population(x0, log_w, jnp.zeros(())), 0, first)
    summaries = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), summary0, outs[0])
    ancestors = None
    if return_ancestors:
        ancestors = jnp.concatenate([gidx[None].astype(jnp.int32), outs[1]])
    pop = pop._replace(log_evidence=total)
    return pop, total, info, summaries, ancestors


def sharded_particle_filter(
    key,
    model: FeynmanKac,
    inputs,
    num_particles: int,
    *,
    mesh: jax.sharding.Mesh | None = None,
    mode: str = "global",
    params=None,
    resampler: str | Resampler = "systematic",
    ess_threshold: float = 0.5,
    return_ancestors: bool = False,
) -> FilterResult:
    """Particle filter with particles sharded over a 1-D device mesh (``jax.shard_map``).

    Args:
      key: a PRNG key (a single run; vmap is not supported across a sharded filter).
      model, inputs, num_particles, params, resampler, ess_threshold: as in
        :func:`~theorylab.inference.smc.particle_filter`; ``num_particles`` must be divisible
        by the number of devices.
      mesh: a 1-D mesh (default: all devices, e.g. ``theorylab.core.sharding.data_mesh()``).
      mode: ``"global"`` (same result as one device) or ``"island"`` (local resampling; same
        result as ``particle_filter(..., num_islands=D)``).
      return_ancestors: keep the ``int32[T, N]`` ancestor matrix.

    Returns:
      :class:`~theorylab.inference.smc.FilterResult` whose population is sharded along the
      particle axis; summaries are filtering means; ``history`` is ``None``.
    """
    key = check_key(key, "key")
    num_particles = check_int(num_particles, "num_particles", min_value=1)
    mode = check_choice(mode, "mode", ("global", "island"))
    ess_threshold = check_float(ess_threshold, "ess_threshold", min_value=0.0, max_value=1.0)
    resampler = get_resampler(resampler)
    if not isinstance(model, FeynmanKac):
        raise TypeError(
            f"model must be a theorylab.inference.FeynmanKac; got {type(model).__name__}"
        )
    if mesh is None:
        mesh = jax.make_mesh((len(jax.devices()),), (_AXIS,))
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must be 1-dimensional; got axes {mesh.axis_names}")
    num_dev = mesh.devices.size
    if num_particles % num_dev:
        raise ValueError(
            f"num_particles must be divisible by the {num_dev} devices of mesh; got {num_particles}"
        )
    _num_steps(inputs)
    prepared = model.prepare_inputs(inputs) if model.prepare_inputs is not None else inputs
    _check_model_shapes(model, prepared, params, key)
    local_mesh = jax.sharding.Mesh(mesh.devices, (_AXIS,))
    run = _compiled(
        model, num_particles, resampler, ess_threshold, mode, return_ancestors, local_mesh
    )
    pop, total, info, summaries, ancestors = run(key, inputs, params)
    return FilterResult(pop, total, info, summaries, ancestors, None, jnp.isneginf(total))


@functools.lru_cache(maxsize=32)
def _compiled(model, n, resampler, ess_threshold, mode, return_ancestors, mesh):
    """One jitted ``shard_map`` program per configuration (bounded cache)."""
    body = partial(
        _sharded_body,
        model=model,
        n=n,
        resampler=resampler,
        ess_threshold=ess_threshold,
        mode=mode,
        return_ancestors=return_ancestors,
    )
    pop_spec = Population(P(_AXIS), P(_AXIS), P())
    info_spec = StepInfo(P(), P(), P(), P(), P())
    out_specs = (pop_spec, P(), info_spec, P(), P(None, _AXIS) if return_ancestors else None)
    mapped = jax.shard_map(
        body, mesh=mesh, in_specs=(P(), P(), P()), out_specs=out_specs, check_vma=False
    )
    return jax.jit(mapped)
