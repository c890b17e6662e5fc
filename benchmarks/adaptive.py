"""Science'15 Fig. 1 (standard holdout + Thresholdout) over seeds: theorylab vs a NumPy loop.

The experiment (spec §2.1; :func:`theorylab.adaptive.experiments.science_feature_selection`):
three sets of ``n`` rows, ``x ~ N(0, I_d)``, ``y = +-1``; correlations on train and holdout;
select same-sign variables with ``|c| > 1/sqrt n`` on both; rank by ``|c_t|``; classifiers
``sign(<w, x>)`` on the top k for the Science grid of k; standard holdout, and Thresholdout
(T = 4/sqrt n, Gaussian noise 1/sqrt n, no budget) for the d correlation queries and the k
accuracy queries, on the same data.

Cases (same process, same sizes; full: n = d = 10^4, 20 seeds; quick: n = d = 1000, 4 seeds):

(a) theorylab, the authors' procedure (materialise the three ``n x d`` sets; one jitted
    program over all seeds: a sequential ``lax.map`` on CPU, vmapped chunks of seeds on an
    accelerator) vs ``numpy_science``: a straightforward NumPy implementation of the same
    algorithm, one seed at a time (float32 ``default_rng`` normals, the same gather-the-top-k
    computation of the accuracies, Thresholdout vectorised over the d correlation queries as
    in the authors' code and a loop over the accuracy queries).
(b) theorylab with the conditional sampler (draws the 2d correlations, then only the columns
    the classifier reads: exact in distribution, ~20x fewer random numbers) vs the same NumPy
    loop -- an algorithmic speed-up, reported separately.

For each side the *generation floor* is measured too: drawing the ``3 n d`` normals of a seed
and nothing else (theorylab: the same jitted seed loop around ``jax.random.normal``; NumPy:
``rng.standard_normal``), on ``min(seeds, 3)`` seeds and scaled to all seeds. Issue targets:
on 2 CPU cores theorylab >= 2x the NumPy loop and within 1.5x of its generation floor; on a
GPU >= 20x. The JSON says whether each was met.

Agreement: the two implementations draw different random numbers, so the check is
statistical: for every (run, set, k > 0) the means over seeds must agree within 4 standard
errors of the difference (pooled two-sample variance; the ``error`` column is the largest |z|
over the 72 entries; with independent normal z the chance of exceeding 4 somewhere is
~0.5 %).

Run ``python -m benchmarks adaptive [--quick]`` or, for more options,
``python -m benchmarks.adaptive [--quick] [--seeds S] [--peer-seeds P] [--out DIR]`` (the
NumPy loop runs ``peer-seeds`` seeds -- by default all of them on CPU and at most 10 on an
accelerator machine -- and its total is scaled to ``seeds``). ``THEORYLAB_BENCH_SEEDS`` sets
the seeds for ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import Timing, register_benchmark, run_benchmark
from theorylab.adaptive import experiments as E

OPTIONS: dict = {"seeds": None, "peer_seeds": None}
K_GRID = E.SCIENCE_K_GRID
FLOOR_SEEDS = 3


# --- the NumPy peer ------------------------------------------------------------------------------


def _numpy_select(c_train, c_seen, n, k_max):
    thr = 1.0 / math.sqrt(n)
    selected = ((c_train > thr) & (c_seen > thr)) | ((c_train < -thr) & (c_seen < -thr))
    score = np.where(selected, np.abs(c_train), -1.0)
    idx = np.argsort(-score, kind="stable")[:k_max]
    weights = np.where(selected[idx], np.sign(c_train[idx]), 0.0).astype(np.float32)
    return idx, weights, int(selected.sum())


def numpy_science(seed: int, n: int, d: int, k_grid=K_GRID) -> np.ndarray:
    """One seed of the Science Fig. 1 experiment in plain NumPy (float32).

    Returns ``[2, 3, K]``: runs (standard, Thresholdout) x sets (train, holdout/reported,
    fresh) x k.
    """
    rng = np.random.default_rng(seed)
    y = (2 * rng.integers(0, 2, size=(3, n)) - 1).astype(np.float32)
    x = rng.standard_normal((3, n, d), dtype=np.float32)
    c_train = y[0] @ x[0] / n
    c_holdout = y[1] @ x[1] / n
    thr_t, tol = 4.0 / math.sqrt(n), 1.0 / math.sqrt(n)
    # Thresholdout on the d correlation queries (vectorised, as in the authors' code)
    above = np.abs(c_train - c_holdout) > thr_t + rng.normal(0.0, tol, d)
    c_seen = np.where(above, c_holdout + rng.normal(0.0, tol, d), c_train)
    k_max = max(k_grid)
    grid = np.asarray(k_grid)
    mask = (np.arange(k_max)[:, None] < grid[None, :]).astype(np.float32)
    out = np.empty((2, 3, len(k_grid)))
    for r, seen in enumerate((c_holdout, c_seen)):
        idx, w, num_selected = _numpy_select(c_train, seen, n, k_max)
        scores = (x[:, :, idx] * w) @ mask  # [3, n, K]
        acc = np.mean(np.sign(scores) == y[:, :, None], axis=1)
        acc[:, np.minimum(grid, num_selected) == 0] = 0.5
        if r == 1:  # the accuracy queries go through Thresholdout, one after the other
            for g, k in enumerate(k_grid):
                if k == 0:
                    continue
                if abs(acc[0, g] - acc[1, g]) < thr_t + rng.normal(0.0, tol):
                    acc[1, g] = acc[0, g]
                else:
                    acc[1, g] += rng.normal(0.0, tol)
        out[r] = acc
    return out


def numpy_floor(seed: int, n: int, d: int) -> float:
    rng = np.random.default_rng(seed)
    return float(rng.standard_normal((3, n, d), dtype=np.float32)[0, 0, 0])


# --- theorylab ------------------------------------------------------------------------------------


def _ours_fn(n, d, sampler):
    def fn(keys):
        pair = E.science_feature_selection_seeds(
            keys, n, d, mechanism="both", k_grid=K_GRID, sampler=sampler
        )
        return jnp.stack(
            [jnp.stack([run.train, run.holdout, run.fresh], axis=1) for run in pair], axis=1
        )  # [seeds, 2, 3, K]

    return jax.jit(fn)


def _floor_fn(n, d, seeds):
    chunk = E._auto_chunk(3 * n * d * 4, seeds)

    def one(key):
        return jnp.sum(jax.random.normal(key, (3, n, d), jnp.float32))

    return jax.jit(lambda keys: E._map_seeds(one, keys, chunk))


def _time_compiled(fn, arg, repeats):
    """AOT-compile ``fn`` for ``arg`` (timed), then run it ``repeats`` times."""
    start = time.perf_counter()
    compiled = fn.lower(arg).compile()
    compile_s = time.perf_counter() - start
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = jax.block_until_ready(compiled(arg))
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return Timing(compile_s + times[0], median, times, np.asarray(value)), compile_s


def _time_numpy(fn, seeds, repeats):
    times, values = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        values = [fn(s) for s in seeds]
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return Timing(times[0], median, times, values)


def _scaled(timing: Timing, factor: float) -> Timing:
    return Timing(
        timing.first_call_s * factor,
        timing.median_s * factor,
        [t * factor for t in timing.times_s],
        timing.value,
    )


def agreement(ours: np.ndarray, peer: np.ndarray) -> tuple[float, dict]:
    """Largest |z| of the seed means over (run, set, k > 0), and the means themselves."""
    pos = np.asarray(K_GRID) > 0
    a, b = ours[..., pos], peer[..., pos]
    # two-sample z with the pooled variance: under agreement both sides have the same seed
    # variance, and the side with few seeds (the NumPy loop on an accelerator machine) cannot
    # estimate its own reliably
    pooled = ((len(a) - 1) * a.var(0, ddof=1) + (len(b) - 1) * b.var(0, ddof=1)) / (
        len(a) + len(b) - 2
    )
    se = np.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    z = np.abs(a.mean(0) - b.mean(0)) / np.maximum(se, 1e-12)
    last = len(K_GRID) - 1
    summary = {
        f"{who}_{run}_{field}_k500": float(vals.mean(0)[r, s, last])
        for who, vals in (("ours", ours), ("peer", peer))
        for r, run in enumerate(("standard", "thresholdout"))
        for s, field in enumerate(("train", "holdout", "fresh"))
    }
    return float(z.max()), summary


@register_benchmark(
    "adaptive",
    description="Science'15 Fig 1 (standard + Thresholdout) over seeds vs a NumPy seed loop",
)
def run(ctx):
    backend = jax.default_backend()
    env_seeds = os.environ.get("THEORYLAB_BENCH_SEEDS")
    if ctx.quick:
        n = d = 1000
        seeds = OPTIONS["seeds"] or 4
        repeats = peer_repeats = 3
    else:
        n = d = 10_000
        seeds = OPTIONS["seeds"] or (int(env_seeds) if env_seeds else 20)
        # minutes per NumPy / CPU repeat; on an accelerator a timed repeat of ours is cheap and
        # the first run after compiling is slower (allocation, autotuning): take the median of 3
        repeats = 1 if backend == "cpu" else 3
        peer_repeats = 1
    peer_seeds = OPTIONS["peer_seeds"] or (seeds if backend == "cpu" else min(seeds, 10))
    peer_seeds = min(peer_seeds, seeds)
    keys = jax.random.split(jax.random.key(0), seeds)
    sizes = {"n": n, "d": d, "seeds": seeds, "peer_seeds": peer_seeds, "k_grid": list(K_GRID)}

    # generation floors (per seed, measured on a few seeds)
    fs = min(seeds, FLOOR_SEEDS)
    floor_ours, _ = _time_compiled(_floor_fn(n, d, fs), keys[:fs], repeats)
    floor_peer = _time_numpy(lambda s: numpy_floor(s, n, d), range(fs), peer_repeats)
    floor_ours_total = floor_ours.median_s / fs * seeds
    floor_peer_total = floor_peer.median_s / fs * seeds

    peer = _time_numpy(lambda s: numpy_science(1000 + s, n, d), range(peer_seeds), peer_repeats)
    peer_values = np.stack(peer.value)
    peer_total = _scaled(peer, seeds / peer_seeds)
    ratio_note = "peer median time / theorylab median time (> 1: theorylab faster)"
    for sampler in ("full", "conditional"):
        ours, compile_s = _time_compiled(_ours_fn(n, d, sampler), keys, repeats)
        z, means = agreement(ours.value, peer_values)
        target_ratio = 2.0 if backend == "cpu" else 20.0
        ratio = peer_total.median_s / ours.median_s
        metrics = {
            "backend": backend,
            "device": str(jax.devices()[0]),
            "sampler": sampler,
            "ours_total_s": ours.median_s,
            "ours_compile_s": compile_s,
            "peer_total_s": peer_total.median_s,
            "peer_measured_seeds": peer_seeds,
            "peer_total_extrapolated": peer_seeds != seeds,
            "ours_per_seed_s": ours.median_s / seeds,
            "peer_per_seed_s": peer.median_s / peer_seeds,
            "ours_generation_floor_s": floor_ours_total,
            "peer_generation_floor_s": floor_peer_total,
            "floor_measured_seeds": fs,
            "ours_over_own_floor": ours.median_s / floor_ours_total,
            "peer_over_own_floor": peer_total.median_s / floor_peer_total,
            "target_ratio": target_ratio,
            "target_ratio_met": bool(ratio >= target_ratio),
            "target_within_1.5x_floor_met": bool(ours.median_s <= 1.5 * floor_ours_total),
            "max_abs_z_seed_means": z,
            **means,
        }
        if sampler == "conditional":
            metrics["note"] = (
                "conditional sampler: same law, draws 2d correlations + the used columns only; "
                "its floor is not the 3nd-normal floor of the row above"
            )
        label = "authors' sampler" if sampler == "full" else "conditional sampler"
        ctx.record(
            f"Science Fig1 n=d={n}, {seeds} seeds, {label}",
            sizes={**sizes, "sampler": sampler},
            ours=ours,
            peer=peer_total,
            peer_name="NumPy seed loop",
            error=z,
            tolerance=4.0,
            metrics=metrics,
        )
    ctx.notes["ratio"] = ratio_note
    ctx.notes["generation_floor"] = {
        "ours_s": floor_ours_total,
        "numpy_s": floor_peer_total,
        "what": "drawing the 3 n d float32 normals of every seed and nothing else",
    }
    ctx.notes["targets"] = "CPU (2 cores): >= 2x NumPy and <= 1.5x own floor; GPU: >= 20x"
    ctx.notes["caveats"] = (
        "the floors are measured on min(seeds, 3) seeds at another moment than the runs: on a "
        "shared machine they can differ by tens of percent; theorylab's program can beat its "
        "floor because XLA fuses the normal generation into its consumers (the correlation "
        "reduction, the column gather), so the unused columns of the fresh set are never drawn"
    )
    print(
        f"generation floor for {seeds} seeds: theorylab {floor_ours_total:.3g} s, "
        f"NumPy {floor_peer_total:.3g} s ({backend})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adaptive", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="n = d = 1000, 4 seeds")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (full default 20)")
    parser.add_argument(
        "--peer-seeds", type=int, default=None, help="seeds the NumPy loop runs (then scaled)"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for adaptive.json")
    args = parser.parse_args(argv)
    for name in ("seeds", "peer_seeds"):
        value = getattr(args, name)
        if value is not None and value < 2:
            parser.error(f"--{name.replace('_', '-')} must be >= 2 (standard errors need 2)")
    OPTIONS.update(seeds=args.seeds, peer_seeds=args.peer_seeds)
    record = run_benchmark("adaptive", quick=args.quick, out_dir=args.out)
    return 0 if record["all_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
