"""``python -m benchmarks [--list] [NAME ... | --all] [--quick] [--out DIR] [--repeats R]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks._harness import discover, run_benchmark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Time theorylab against peer libraries."
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the registered benchmarks")
    parser.add_argument("--all", action="store_true", help="run every benchmark")
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds to minutes)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for NAME.json (default benchmarks/results)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median)")
    args = parser.parse_args(argv)
    registry = discover()
    if args.list:
        if not len(registry):
            print("no benchmarks registered yet")
        for name, bench in registry.items():
            print(f"{name:<20} {bench.description}")
        return 0
    names = registry.names() if args.all else args.names
    if not args.all and not names:
        parser.print_usage(sys.stderr)
        print("error: name a benchmark, or use --all / --list", file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in registry]
    if unknown:
        valid = ", ".join(registry.names()) or "(none registered)"
        print(
            f"error: unknown benchmark(s): {', '.join(unknown)}; valid names: {valid}",
            file=sys.stderr,
        )
        return 2
    if args.repeats < 1:
        print(f"error: --repeats must be >= 1; got {args.repeats}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        record = run_benchmark(name, quick=args.quick, out_dir=args.out, repeats=args.repeats)
        if not record["all_agree"]:
            print(
                f"[{name}] WARNING: theorylab and the peer disagree beyond tolerance",
                file=sys.stderr,
            )
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
