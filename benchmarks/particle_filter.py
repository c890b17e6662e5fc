"""Bootstrap particle filter on the spec's model M1 (1-D LG-SSM, a=0.9, q=r=1), T=1000.

Cases (same data, same algorithm: bootstrap proposal, systematic resampling when ESS < N/2):

(a) theorylab (one jitted ``lax.scan``, float32 and float64) vs the ``particles`` library
    (N. Chopin, NumPy/numba, float64) at N ∈ {10³, 10⁴, 10⁵}: particle-steps/s and the ratio.
(b) theorylab vs a plain vectorised NumPy loop over t (float64), same N.
(c) 200 seeds batched in one vmapped call vs 200 single runs, N = 1000: throughput ratio.
(d) jitted vs an eager Python loop over t of the same jnp blocks (T = 100, N = 1000).

Agreement: every log Ẑ is compared with the Kalman log-likelihood in units of the Monte-Carlo
standard deviation of log Ẑ, measured from 20 theorylab seeds at the same N in the same run:
|log Ẑ − log Z| ≤ 4·sd (a 4-sigma band; the error column shows the largest z).

``particles`` declares ``numpy<2`` in its metadata although it runs with NumPy 2, so it cannot
be a dependency of a jax>=0.10 project; install it beside with ``pip install --no-deps particles
numba joblib``. Without it case (a) is skipped and recorded as such.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import Timing, register_benchmark
from theorylab.inference import (
    advance,
    bootstrap,
    get_resampler,
    init_population,
    linear_gaussian,
    particle_filter,
)
from theorylab.inference.reference import kalman_filter
from theorylab.inference.validation import check_evidence_unbiased

RHO, SIGMA_X, SIGMA_Y, SIGMA_0 = 0.9, 1.0, 1.0, 1.0


def simulate_data(num_steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal() * SIGMA_0
    ys = np.empty(num_steps)
    for t in range(num_steps):
        if t:
            x = RHO * x + SIGMA_X * rng.normal()
        ys[t] = x + SIGMA_Y * rng.normal()
    return ys


def numpy_bootstrap(ys: np.ndarray, n: int, seed: int) -> float:
    """Plain vectorised NumPy bootstrap filter (the same algorithm, float64)."""
    rng = np.random.default_rng(seed)
    x = SIGMA_0 * rng.normal(size=n)
    log_w = np.full(n, -np.log(n))
    log_z = 0.0
    for t, y in enumerate(ys):
        if t:
            w = np.exp(log_w)
            if 1.0 / np.sum(w**2) < 0.5 * n:
                cdf = np.cumsum(w)
                cdf /= cdf[-1]
                points = (np.arange(n) + rng.uniform()) / n
                x = x[np.minimum(np.searchsorted(cdf, points, side="right"), n - 1)]
                log_w = np.full(n, -np.log(n))
            x = RHO * x + SIGMA_X * rng.normal(size=n)
        log_g = -0.5 * ((y - x) / SIGMA_Y) ** 2 - np.log(SIGMA_Y) - 0.5 * np.log(2 * np.pi)
        a = log_w + log_g
        m = a.max()
        lse = m + np.log(np.sum(np.exp(a - m)))
        log_z += lse
        log_w = a - lse
    return log_z


def particles_bootstrap(ys: np.ndarray, n: int, seed: int) -> float:
    import particles
    from particles import kalman
    from particles import state_space_models as ssm

    np.random.seed(seed)  # noqa: NPY002 - particles draws from the global NumPy generator
    model = kalman.LinearGauss(rho=RHO, sigmaX=SIGMA_X, sigmaY=SIGMA_Y, sigma0=SIGMA_0)
    fk = ssm.Bootstrap(ssm=model, data=list(ys))
    alg = particles.SMC(fk=fk, N=n, resampling="systematic", ESSrmin=0.5, store_history=False)
    alg.run()
    return float(alg.logLt)


@functools.cache
def _model(x64: bool):
    ssm, params = linear_gaussian(RHO, SIGMA_X**2, 1.0, SIGMA_Y**2, 0.0, SIGMA_0**2)
    return bootstrap(ssm), params


def ours(ys, n: int, key, x64: bool):
    model, params = _model(x64)
    out = particle_filter(key, model, jnp.asarray(ys)[:, None], n, params=params)
    return out.log_evidence


def _time_ours(ctx, ys, n, x64):
    ctx_mgr = jax.enable_x64(x64)
    with ctx_mgr:
        key = jax.random.key(1)
        timing = ctx.time(lambda: ours(ys, n, key, x64))
        keys = jax.random.split(jax.random.key(2), 20)
        spread = np.asarray(ours(ys, n, keys, x64), float)
    return timing, float(timing.value), float(np.std(spread, ddof=1))


def _zscore(value, log_z, sd):
    return abs(value - log_z) / sd


def _steps_per_s(n, t, timing: Timing):
    return n * t / timing.median_s


def filter_cases(ctx, ys, log_z, sizes, have_particles):
    t = len(ys)
    for n in sizes:
        for x64 in (False, True):
            mine, mine_value, sd = _time_ours(ctx, ys, n, x64)
            label = "float64" if x64 else "float32"
            peers = [("numpy vectorised loop", numpy_bootstrap)]
            if have_particles:
                peers.insert(0, ("particles 0.4 (Chopin)", particles_bootstrap))
            for peer_name, fn in peers:
                if x64 is False and peer_name.startswith("numpy"):
                    continue  # the NumPy loop is compared with our float64 run only
                peer = ctx.time(lambda fn=fn: fn(ys, n, 3), repeats=3 if n >= 100_000 else None)
                err = max(_zscore(mine_value, log_z, sd), _zscore(float(peer.value), log_z, sd))
                ctx.record(
                    f"bootstrap PF T={t}, N={n}, ours {label} vs {peer_name}",
                    sizes={"T": t, "N": n},
                    ours=mine,
                    peer=peer,
                    peer_name=peer_name,
                    error=err,
                    tolerance=4.0,
                    metrics={
                        "ours_particle_steps_per_s": _steps_per_s(n, t, mine),
                        "peer_particle_steps_per_s": _steps_per_s(n, t, peer),
                        "ours_log_evidence": mine_value,
                        "peer_log_evidence": float(peer.value),
                        "kalman_log_evidence": log_z,
                        "sd_log_evidence_ours_20_seeds": sd,
                        "dtype_ours": label,
                    },
                )


def batched_case(ctx, ys, log_z, seeds):
    n, t = 1000, len(ys)
    keys = jax.random.split(jax.random.key(5), seeds)
    batch = ctx.time(lambda: ours(ys, n, keys, False), repeats=3)
    single = ctx.time(lambda: ours(ys, n, keys[0], False))
    per_run = Timing(single.first_call_s * seeds, single.median_s * seeds, [], single.value)
    check = check_evidence_unbiased(np.asarray(batch.value, float), log_z)
    ctx.record(
        f"{seeds} seeds vmapped vs {seeds} single runs, N={n}, T={t}",
        sizes={"T": t, "N": n, "seeds": seeds},
        ours=batch,
        peer=per_run,
        peer_name=f"{seeds} x single jitted run",
        error=check.statistic,
        tolerance=check.threshold,
        metrics={
            "batched_particle_steps_per_s": _steps_per_s(n * seeds, t, batch),
            "evidence_check": check.details,
        },
    )


def eager_case(ctx, ys, log_z):
    n = 1000
    ys = ys[:100]
    model, params = _model(False)
    resampler = get_resampler("systematic")
    inputs = jnp.asarray(ys)[:, None]
    key = jax.random.key(1)

    def eager():
        k0 = jax.random.split(jax.random.fold_in(key, 0))[1]
        pop, inc, _ = init_population(k0, model, inputs[0], params, n)
        total = inc
        for t in range(1, len(ys)):
            pop, info, _ = advance(
                key,
                pop._replace(log_evidence=jnp.zeros(())),
                t,
                inputs[t],
                model=model,
                params=params,
                resampler=resampler,
                ess_threshold=0.5,
            )
            total = total + info.log_evidence_increment
        return total

    def eager_no_jit():
        with jax.disable_jit():  # op-by-op dispatch, lax.cond/scan run as Python control flow
            return eager()

    jitted = ctx.time(lambda: ours(ys, n, key, False))
    slow = ctx.time(eager_no_jit, repeats=2)
    spread = np.asarray(ours(ys, n, jax.random.split(jax.random.key(9), 20), False), float)
    sd = float(np.std(spread, ddof=1))
    ctx.record(
        "jitted scan vs eager Python loop of the same blocks, N=1000, T=100",
        sizes={"T": len(ys), "N": n},
        ours=jitted,
        peer=slow,
        peer_name="eager jnp loop over t",
        # same keys, but float rounding can flip an ESS decision: compare in MC units
        error=abs(float(jitted.value) - float(slow.value)) / sd,
        tolerance=4.0,
    )


@register_benchmark(
    "particle_filter",
    description="bootstrap PF on an LG-SSM vs particles, NumPy loop, batched seeds, eager loop",
)
def run(ctx):
    t = 200 if ctx.quick else 1000
    ys = simulate_data(t)
    log_z = kalman_filter(ys, RHO, SIGMA_X**2, 1.0, SIGMA_Y**2, 0.0, SIGMA_0**2).log_likelihood
    try:
        import particles  # noqa: F401

        have_particles = True
    except ImportError:
        have_particles = False
        ctx.notes["particles"] = "not installed: pip install --no-deps particles numba joblib"
    sizes = [1000, 10_000] if ctx.quick else [1000, 10_000, 100_000]
    filter_cases(ctx, ys, log_z, sizes, have_particles)
    batched_case(ctx, ys, log_z, 20 if ctx.quick else 200)
    eager_case(ctx, ys, log_z)
    if jax.default_backend() == "gpu" and not ctx.quick:
        big = {}
        for n in (1_000_000,):
            timing, value, _ = _time_ours(ctx, ys, n, False)
            big[str(n)] = {
                "median_s": timing.median_s,
                "compile_s": timing.compile_s,
                "particle_steps_per_s": _steps_per_s(n, t, timing),
                "log_evidence": value,
                "kalman": log_z,
            }
        ctx.notes["gpu_large_n"] = big
    ctx.notes["kalman_log_evidence"] = log_z
    ctx.notes["ratio"] = "peer median time / theorylab median time (> 1: theorylab faster)"
