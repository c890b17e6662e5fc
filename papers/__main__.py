"""``python -m papers [--list] [NAME ... | --all] [--quick | --full] [--out DIR] [--seed S]
[--jobs J]``."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys
from pathlib import Path

from papers._harness import discover
from papers._harness import run_one_in_process as _run_one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m papers", description="Reproduce the figures/tables of theorylab's papers."
    )
    parser.add_argument("names", nargs="*", help="papers to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the registered papers")
    parser.add_argument("--all", action="store_true", help="run every registered paper")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        "--quick",
        dest="scale",
        action="store_const",
        const="quick",
        help="minutes on 2 CPU cores (default)",
    )
    scale.add_argument(
        "--full",
        dest="scale",
        action="store_const",
        const="full",
        help="paper scale (hours on CPU; GPU welcome)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default results/NAME; with several papers, OUT/NAME)",
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="papers run at once, each in its own process (default 0: one per CPU core; "
        "1: one after another in this process)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 0:
        print(f"error: --jobs must be >= 0; got {args.jobs}", file=sys.stderr)
        return 2
    registry = discover()

    if args.list:
        if not len(registry):
            print("no papers registered yet")
        for name, paper in registry.items():
            print(f"{name:<20} {paper.title}")
        return 0
    names = registry.names() if args.all else args.names
    if not args.all and not names:
        parser.print_usage(sys.stderr)
        print("error: name a paper, or use --all / --list", file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in registry]
    if unknown:
        valid = ", ".join(registry.names()) or "(none registered)"
        print(
            f"error: unknown paper(s): {', '.join(unknown)}; valid names: {valid}", file=sys.stderr
        )
        return 2
    if not names:
        print("no papers registered yet: nothing to run")
        return 0
    scale_name = args.scale or "quick"
    jobs = args.jobs or (os.cpu_count() or 1)
    jobs = min(jobs, len(names))
    tasks = []
    for name in names:
        if args.out is None:
            out = None
        else:
            out = args.out / name if len(names) > 1 else args.out
        tasks.append((name, scale_name, out, args.seed, not args.no_progress))
    if jobs == 1:
        for task in tasks:
            _report(*_run_one(*task))
        return 0
    # separate processes (spawned, so no JAX state is forked); results print as they finish.
    # Longest first (by the committed run's elapsed time): with fewer workers than papers this
    # keeps the slowest paper from starting last and setting the wall time on its own.
    tasks.sort(key=lambda task: -expected_seconds(task[0], task[1]))
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(_run_one, *task) for task in tasks]
        for future in concurrent.futures.as_completed(futures):
            _report(*future.result())
    return 0


def expected_seconds(name: str, scale_name: str) -> float:
    """Elapsed time of the committed ``papers/NAME/SCALE/results.json`` (inf when absent)."""
    path = Path(__file__).resolve().parent / name / scale_name / "results.json"
    try:
        return float(json.loads(path.read_text())["elapsed_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("inf")


def _report(name, scale_name, out, elapsed):
    where = out if out is not None else Path("results") / name
    print(
        f"[{name}] {scale_name} run finished in {elapsed:.1f}s -> "
        f"{where}/figure.png, {where}/results.json",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
