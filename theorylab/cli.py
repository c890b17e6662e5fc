"""Console entry point: ``theorylab --version`` and ``theorylab info``."""

from __future__ import annotations

import argparse
import json
import sys

from theorylab._version import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="theorylab", description="theorylab: tested JAX implementations of ML theory."
    )
    parser.add_argument("--version", action="version", version=f"theorylab {__version__}")
    sub = parser.add_subparsers(dest="command")
    info = sub.add_parser("info", help="versions, JAX devices and x64 status")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    if args.command != "info":
        parser.print_help()
        return 0 if args.command is None else 2
    from theorylab.core.io import environment_info

    env = environment_info()
    if args.json:
        print(json.dumps(env, indent=2))
        return 0
    print(f"theorylab {__version__}")
    print(f"python    {env['python']} on {env['platform']} ({env['cpu_count']} CPUs)")
    for name, version in env["versions"].items():
        if name != "theorylab":
            print(f"  {name:<13} {version or '(not installed)'}")
    print(f"jax backend {env['jax_backend']}; devices: {', '.join(env['devices'])}")
    print(f"x64 enabled: {env['x64_enabled']}  (enable: jax.config.update('jax_enable_x64', True))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
