"""Registry, timing and reporting for side-by-side benchmarks (``python -m benchmarks``).

A benchmark module ``benchmarks/<name>.py`` registers a function that receives a
:class:`BenchContext`, times theorylab and a peer on the *same inputs in the same process*,
checks that the two answers agree, and records one row per case::

    @register_benchmark("nmf", description="HALS NMF vs scikit-learn NMF")
    def run(ctx):
        ours = ctx.time(lambda: our_fn(X))           # compile excluded, reported separately
        peer = ctx.time(lambda: peer_fn(X))
        ctx.record("n=1000", sizes={"n": 1000}, ours=ours, peer=peer, peer_name="sklearn",
                   error=float(abs(ours.value - peer.value).max()), tolerance=1e-4)

Results go to ``benchmarks/results/<name>.json`` (machine, versions, sizes, times, the ratio
``peer / ours`` per row); a table is printed. Ratios, not absolute times, are what compare
across machines and runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from theorylab.core.io import environment_info, write_json_atomic
from theorylab.core.registry import Registry

__all__ = [
    "BENCHMARKS",
    "BenchContext",
    "Benchmark",
    "Timing",
    "register_benchmark",
    "run_benchmark",
    "time_call",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[BenchContext], None]


@dataclass
class Timing:
    """Wall-clock timing of one callable.

    Attributes:
      first_call_s: the first call (includes tracing + XLA compilation for JAX code).
      median_s: median over ``repeats`` timed calls after warm-up.
      times_s: every timed call.
      value: the output of the last call (for agreement checks; not serialised).
    """

    first_call_s: float
    median_s: float
    times_s: list[float]
    value: Any = field(default=None, repr=False)

    @property
    def compile_s(self) -> float:
        """First call minus a steady-state call: an estimate of compile/trace overhead."""
        return max(self.first_call_s - self.median_s, 0.0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("value")
        data["compile_s"] = self.compile_s
        return data


def _block(value):
    import jax

    return jax.block_until_ready(value)


def time_call(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1) -> Timing:
    """Time ``fn()``: first call separately, then ``warmup`` untimed calls, then ``repeats``.

    JAX outputs are waited for with ``jax.block_until_ready`` so asynchronous dispatch does not
    flatter either side.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    start = time.perf_counter()
    value = _block(fn())
    first = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        _block(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = _block(fn())
        times.append(time.perf_counter() - start)
    return Timing(first, statistics.median(times), times, value)


@dataclass
class BenchContext:
    """Passed to a benchmark: scale flag, timing helper, and the row recorder."""

    name: str
    quick: bool
    repeats: int = 5
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def time(self, fn: Callable[[], Any], *, repeats: int | None = None) -> Timing:
        return time_call(fn, repeats=repeats or self.repeats)

    def record(
        self,
        case: str,
        *,
        sizes: dict[str, Any],
        ours: Timing,
        peer: Timing,
        peer_name: str,
        error: float,
        tolerance: float,
        metrics: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record one case; ``error`` is the measured disagreement, ``tolerance`` its bound."""
        row = {
            "case": case,
            "sizes": sizes,
            "peer": peer_name,
            "ours": ours.to_json(),
            "peer_timing": peer.to_json(),
            "ratio": peer.median_s / ours.median_s if ours.median_s > 0 else float("inf"),
            "error": float(error),
            "tolerance": float(tolerance),
            "agree": bool(error <= tolerance),
            "metrics": metrics or {},
        }
        self.rows.append(row)
        return row


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")
_DISCOVERED = False


def register_benchmark(name: str, *, description: str):
    def decorator(run: Callable[[BenchContext], None]):
        BENCHMARKS.add(name, Benchmark(name=name, description=description, run=run))
        return run

    return decorator


def discover() -> Registry[Benchmark]:
    """Import every ``benchmarks/<name>.py`` module (not starting with ``_``)."""
    global _DISCOVERED
    if not _DISCOVERED:
        import importlib
        import pkgutil

        import benchmarks

        for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"benchmarks.{info.name}")
        _DISCOVERED = True
    return BENCHMARKS


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'case':<34} {'peer':<14} {'ours s':>10} {'peer s':>10} {'peer/ours':>10} "
        f"{'compile s':>10} {'error':>10} {'agree':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['case']:<34.34} {r['peer']:<14.14} {r['ours']['median_s']:>10.4g} "
            f"{r['peer_timing']['median_s']:>10.4g} {r['ratio']:>10.3g} "
            f"{r['ours']['compile_s']:>10.3g} {r['error']:>10.2g} "
            f"{'yes' if r['agree'] else 'NO':>6}"
        )
    return "\n".join(lines)


def run_benchmark(
    name: str, *, quick: bool = False, out_dir: str | Path | None = None, repeats: int = 5
) -> dict[str, Any]:
    """Run a registered benchmark, print its table, write ``<out_dir>/<name>.json``."""
    bench = BENCHMARKS[name]
    ctx = BenchContext(name=name, quick=quick, repeats=repeats)
    start = time.perf_counter()
    bench.run(ctx)
    record = {
        "benchmark": name,
        "description": bench.description,
        "quick": quick,
        "elapsed_s": time.perf_counter() - start,
        "environment": environment_info(),
        "notes": ctx.notes,
        "rows": ctx.rows,
        "all_agree": all(r["agree"] for r in ctx.rows),
    }
    out_path = Path(out_dir) if out_dir is not None else RESULTS_DIR
    write_json_atomic(out_path / f"{name}.json", record)
    print(f"[{name}] {bench.description}")
    print(format_table(ctx.rows))
    print(f"-> {out_path / (name + '.json')}")
    return record
