"""GPU check for the particle filter (issue 4's A12): throughput and log Ẑ at N up to 10⁶.

Run on an accelerator machine: ``python -m benchmarks.gpu_particle_filter``. Uses the same
model, data and filter as ``benchmarks/particle_filter.py``; times the jitted filter (median
of 3 after a compile run) and checks log Ẑ against the Kalman value in units of the
Monte-Carlo sd over 5 seeds. Prints one line per (N, precision).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from benchmarks.particle_filter import RHO, SIGMA_0, SIGMA_X, SIGMA_Y, ours, simulate_data
from theorylab.inference.reference import kalman_filter


def main(sizes=(10_000, 100_000, 1_000_000), steps=1000):
    ys = simulate_data(steps)
    log_z = kalman_filter(ys, RHO, SIGMA_X**2, 1.0, SIGMA_Y**2, 0.0, SIGMA_0**2).log_likelihood
    print(jax.devices(), jax.__version__, flush=True)
    for n in sizes:
        for x64 in (False, True):
            with jax.enable_x64(x64):
                start = time.perf_counter()
                float(ours(ys, n, jax.random.key(1), x64))
                first = time.perf_counter() - start
                times = []
                for r in range(3):
                    start = time.perf_counter()
                    float(ours(ys, n, jax.random.key(2 + r), x64))
                    times.append(time.perf_counter() - start)
                median = sorted(times)[1]
                keys = jax.random.split(jax.random.key(9), 5)
                values = np.asarray(ours(ys, n, keys, x64), float)
                sd = float(np.std(values, ddof=1))
                z = float(np.max(np.abs(values - log_z)) / sd)
                print(
                    f"N={n} x64={x64} first_call_s={first:.2f} median_s={median:.4f} "
                    f"particle_steps_per_s={n * steps / median:.3g} mean_logZ={values.mean():.3f} "
                    f"kalman={log_z:.3f} sd={sd:.4f} max_z={z:.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
