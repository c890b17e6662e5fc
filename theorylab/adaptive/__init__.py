"""Adaptive data analysis: reusable holdout, noise mechanisms, Ladder, analysts and attacks.

Implements Dwork, Feldman, Hardt, Pitassi, Reingold, Roth, *Preserving statistical validity
in adaptive data analysis* (STOC'15) and follow-ups: the reusable holdout / Thresholdout
(Science'15, NeurIPS'15), SparseValidate, the Ladder (Blum & Hardt ICML'15), Gaussian/Laplace
answering with transfer-theorem certificates (Bassily et al. STOC'16; Jung et al. ITCS'20),
Guess-and-Check (Rogers et al. AISTATS'20) and private multiplicative weights.

Modules:

- :mod:`~theorylab.adaptive.bounds` -- closed-form widths, accountants, transfer theorems.
- :mod:`~theorylab.adaptive.mechanisms` -- mechanisms as ``init``/``step`` pairs.
- :mod:`~theorylab.adaptive.guard` -- the guarded holdout (functional + object API).
- :mod:`~theorylab.adaptive.analysts` -- simulated analysts and attacks, comparison harness.
- :mod:`~theorylab.adaptive.experiments` -- the papers' experiments (Science Fig 1/2, Ladder).
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("bounds", "mechanisms", "guard", "analysts", "experiments", "pmw")

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        module = importlib.import_module(f"theorylab.adaptive.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'theorylab.adaptive' has no attribute {name!r}")
