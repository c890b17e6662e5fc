"""Unsupervised learning under latent label shift (DDFA) with anchor-based recovery.

Implements Roberts, Mani, Garg, Lipton, *Unsupervised Learning under Latent Label Shift*
(NeurIPS 2022): classes are discovered because "elements that shift together group together".

Modules:

- :mod:`~theorylab.latent_shift.generators` -- class-prior matrices, discrete / Gaussian /
  two-blob LLS models with closed-form oracles, semi-synthetic domains from labelled data.
- :mod:`~theorylab.latent_shift.factorize` -- NMF (HALS, multiplicative updates), SPA anchors,
  simplex-constrained least squares, anchor recovery of Q_{Y|D}, SPA-initialised HALS.
- :mod:`~theorylab.latent_shift.kmeans` -- k-means++ / Lloyd in JAX (vmapped restarts).
- :mod:`~theorylab.latent_shift.discriminator` -- Flax MLP domain discriminator p(d|x).
- :mod:`~theorylab.latent_shift.ddfa` -- the DDFA pipeline, adjust step, evaluation, DDFA object.
- :mod:`~theorylab.latent_shift.experiments` -- the offline reproductions (papers and tests).
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("generators", "factorize", "kmeans", "discriminator", "ddfa", "experiments")

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        module = importlib.import_module(f"theorylab.latent_shift.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'theorylab.latent_shift' has no attribute {name!r}")
