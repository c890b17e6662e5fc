"""Helpers of the Ścibior et al. reproduction (the end-to-end quick run is CI's main job)."""

from __future__ import annotations

import numpy as np
import pytest

from papers import discover
from papers.scibior2018 import reproduce as rep
from theorylab.inference.validation import ValidationResult, check_smc_exactness


def test_registered():
    assert "scibior2018" in discover()


def test_row_marks_mutants_as_expected_only_when_rejected():
    ok = ValidationResult("x", 1e-16, 1e-12, True, {})
    bad = ValidationResult("x", 0.3, 1e-12, False, {})
    assert rep._row("b", "s", "m", ok)["as_expected"]
    assert rep._row("b", "s", "m", bad, expect_pass=False)["as_expected"]
    assert not rep._row("b", "s", "m", ok, expect_pass=False)["as_expected"]


@pytest.mark.x64
def test_paper_mutants_are_rejected():
    drop_evidence, mean_g = rep._mutants()
    model = rep.discrete_model_from_hmm(rep.INIT, rep.TRANS, rep.EMIT, [0, 1, 1])
    assert not check_smc_exactness(model, 2, "systematic", 1.0, resample_fn=drop_evidence)
    assert not check_smc_exactness(model, 2, "multinomial", 0.0, reweight_fn=mean_g)
    assert np.isfinite(check_smc_exactness(model, 2, "systematic", 1.0).statistic)
