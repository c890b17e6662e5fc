"""Regression: a program with several operators' eigendecompositions next to k-means loops,
executed repeatedly, must not deadlock under XLA's default CPU scheduler.

With jaxlib 0.10 separate concurrent ``eigh`` calls beside loops deadlocked on the *second*
execution of the compiled program; ``graph_spectra`` now issues one batched ``eigh``. The check
runs in a subprocess without the scheduler flag that ``conftest.py`` sets, with a timeout. With
the former separate ``eigh`` calls this exact script hung (checked when the test was written:
no output within 60 s), so the test can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from theorylab import graphs as g
batch = g.planted_partition(jax.random.key(0), 100, 2, 0.3, 0.1, num_graphs=2)
flat = np.linspace(0.02, 0.98, 6)
for _ in range(2):
    out = g.ari_curves(jax.random.key(1), batch.adjacency, batch.labels,
                       ["logComm", "For", "logNHeat"], flat, 2, n_init=10)
print("done", sorted(out))
"""


def test_repeated_multi_operator_program_does_not_deadlock():
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
        "--xla_cpu_enable_concurrency_optimized_scheduler=false", ""
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=root,
        timeout=240,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "done" in proc.stdout
