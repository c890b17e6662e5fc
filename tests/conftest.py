"""Test-suite configuration.

- Four fake CPU devices (set before any JAX computation) so sharding code is exercised on CPU.
- hypothesis profiles: ``ci`` (default; no deadline because XLA compilation times vary,
  derandomised so CI is reproducible) and ``thorough`` (``HYPOTHESIS_PROFILE=thorough``).
- float64 only where a test asks for it: ``@pytest.mark.x64`` or the ``x64`` fixture, so the
  default float32 behaviour is tested everywhere else.
"""

from __future__ import annotations

import os

# XLA CPU's concurrency-optimised scheduler (jaxlib 0.10) deadlocked on re-execution of some
# programs with concurrent LAPACK calls beside loops. theorylab's code avoids the pattern (see
# graphs.operators.graph_spectra, and tests/graphs/test_no_deadlock.py checks it WITHOUT this
# flag in a subprocess); the suite also switches the scheduler off so an unknown trigger fails
# a test through pytest-timeout instead of hanging CI.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 4)

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=30,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _x64_marker(request):
    """Run tests marked ``@pytest.mark.x64`` inside ``jax.enable_x64(True)``."""
    if request.node.get_closest_marker("x64") is None:
        yield
        return
    with jax.enable_x64(True):
        yield


@pytest.fixture
def x64():
    """Enable float64 for the duration of one test (restored afterwards)."""
    with jax.enable_x64(True):
        yield
