"""Flagship exactness (spec A3): E[Ẑ Σ W δ_path] of a whole SMC run, enumerated exactly, equals
the brute-force path measure — for every resampler, ESS threshold and island layout — and the
two classic bugs are rejected. Zero false-positive rate (deterministic, float64)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theorylab.inference import RESAMPLERS
from theorylab.inference.validation import (
    check_smc_exactness,
    discrete_model_from_hmm,
    enumerate_smc,
    exact_discrete_measure,
    mutant_resample_drops_evidence,
    mutant_reweight_mean_potential,
)

pytestmark = pytest.mark.x64

SCHEMES = list(RESAMPLERS.names())
INIT = np.array([0.6, 0.4])
TRANS = np.array([[0.7, 0.3], [0.2, 0.8]])
EMIT = np.array([[0.9, 0.1], [0.3, 0.7]])


def _model(ys=(0, 1, 1)):
    return discrete_model_from_hmm(INIT, TRANS, EMIT, list(ys))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("threshold", [0.0, 0.75, 1.0])
def test_smc_exact_n2_t3(scheme, threshold):
    result = check_smc_exactness(_model(), 2, scheme, threshold)
    assert result.passed, result
    if threshold == 1.0:  # the run really resampled: more branches than plain SIS
        assert result.details["num_branches"] > 64


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("threshold", [0.5, 1.0])
def test_smc_exact_n3_t2(scheme, threshold):
    result = check_smc_exactness(_model((1, 0)), 3, scheme, threshold)
    assert result.passed, result


@pytest.mark.parametrize("per_island", [1, 2])
@pytest.mark.parametrize("threshold", [0.75, 1.0])
def test_island_resampling_exact(per_island, threshold):
    """A10: island mode (D=2) is exact too, by the same enumeration."""
    result = check_smc_exactness(_model(), 2 * per_island, "systematic", threshold, num_islands=2)
    assert result.passed, result


def test_evidence_is_exact_expectation():
    got = enumerate_smc(_model(), 2, "stratified", 1.0)
    _, _, z = exact_discrete_measure(_model())
    assert abs(got.evidence - z) <= 1e-14
    np.testing.assert_allclose(got.final.sum(), z, rtol=1e-13)


# --- mutants: each must be rejected -------------------------------------------------------


def test_rejects_resampling_without_evidence():
    result = check_smc_exactness(
        _model(), 2, "systematic", 1.0, resample_fn=mutant_resample_drops_evidence
    )
    assert not result.passed and result.statistic > 1e-3, result


def test_rejects_mean_g_increment():
    result = check_smc_exactness(
        _model(), 2, "multinomial", 0.0, reweight_fn=mutant_reweight_mean_potential
    )
    assert not result.passed and result.statistic > 1e-3, result


# --- hypothesis: random tiny HMMs ----------------------------------------------------------


def _stochastic(values, rows, cols):
    a = np.asarray(values, float).reshape(rows, cols) + 0.05
    return a / a.sum(1, keepdims=True)


@settings(max_examples=25)
@given(
    init=st.lists(st.floats(0, 1), min_size=2, max_size=2),
    trans=st.lists(st.floats(0, 1), min_size=4, max_size=4),
    emit=st.lists(st.floats(0, 1), min_size=6, max_size=6),
    ys=st.lists(st.integers(0, 2), min_size=3, max_size=3),
    scheme=st.sampled_from(SCHEMES),
    threshold=st.sampled_from([0.0, 0.75, 1.0]),
)
def test_random_hmms_exact(init, trans, emit, ys, scheme, threshold):
    model = discrete_model_from_hmm(
        _stochastic(init, 1, 2)[0], _stochastic(trans, 2, 2), _stochastic(emit, 2, 3), ys
    )
    result = check_smc_exactness(model, 2, scheme, threshold)
    assert result.passed, result
