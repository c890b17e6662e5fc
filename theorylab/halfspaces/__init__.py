"""Testable learning of halfspaces: certifying tester-learners (Massart and agnostic noise).

Implements the tester-learner recipe of Gollakota, Klivans, Stavropoulos, Vasilyan, *An
Efficient Tester-Learner for Halfspaces* (ICLR 2024) in the testable-learning model of Rubinfeld
& Vasilyan (2023): the algorithm either rejects the data or outputs a halfspace together with a
number computed from the data -- the *certificate* -- that provably bounds its excess error.
Gaussian data must pass (completeness); no data may pass with a wrong certificate (soundness).

Modules:

- :mod:`~theorylab.halfspaces.generators` -- Gaussian data with Massart / agnostic noise profiles,
  the non-Gaussian distributions a tester must reject (CKMY mixture, boundary decoy, Student-t,
  far outliers) and log-concave marginals it may accept (uniform cube, Laplace product); exact opt.
- :mod:`~theorylab.halfspaces.learner` -- smoothed-sigmoid-loss Riemannian gradient descent over
  a sigma grid (candidate list) and the baselines (averaging, logistic regression, hinge,
  LeakyReLU).
- :mod:`~theorylab.halfspaces.certificate` -- the band statistics, degree-4 spectral certificate,
  wedge bound, Massart / agnostic certificates and generalisation slack (chunked, jitted).
- :mod:`~theorylab.halfspaces.tester` -- ``tester_learner`` -> ``Accept`` | ``Reject`` and the
  scikit-learn-like ``TesterLearner``.
- :mod:`~theorylab.halfspaces.reference` -- a plain NumPy reference of the statistics (tests and
  the benchmark peer).
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("generators", "learner", "certificate", "tester", "reference")

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        module = importlib.import_module(f"theorylab.halfspaces.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'theorylab.halfspaces' has no attribute {name!r}")
