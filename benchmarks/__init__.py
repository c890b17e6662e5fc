"""Side-by-side benchmarks of theorylab against peer libraries: ``python -m benchmarks --list``.

Not installed with the package; run from a checkout of the repository.
"""

from benchmarks._harness import (
    BENCHMARKS,
    BenchContext,
    Benchmark,
    Timing,
    discover,
    register_benchmark,
    run_benchmark,
    time_call,
)

__all__ = [
    "BENCHMARKS",
    "BenchContext",
    "Benchmark",
    "Timing",
    "discover",
    "register_benchmark",
    "run_benchmark",
    "time_call",
]
