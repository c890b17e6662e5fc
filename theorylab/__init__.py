"""theorylab: JIT-compiled, property-tested JAX implementations of theoretical-ML methods.

Subpackages are imported lazily (``import theorylab`` stays cheap and never touches JAX
configuration):

- :mod:`theorylab.core` -- argument checks, metrics, linear algebra, random keys, I/O helpers.
- one subpackage per method family (graphs, adaptive, inference, latent_shift, llp,
  halfspaces) as they land.

theorylab never flips ``jax_enable_x64`` at import; functions whose maths needs float64 say so
and raise a clear error (see :func:`theorylab.core.checks.require_x64`).
"""

from __future__ import annotations

import importlib
from typing import Any

from theorylab._version import __version__

_SUBPACKAGES = ("core", "graphs", "adaptive", "inference", "latent_shift", "llp", "halfspaces")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"theorylab.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'theorylab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
