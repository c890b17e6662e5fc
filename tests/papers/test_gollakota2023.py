"""Helpers of the Gollakota et al. reproduction (the end-to-end quick run is CI's main job)."""

from __future__ import annotations

import math

from papers import discover
from papers.gollakota2023 import reproduce as rep


def test_registered():
    assert "gollakota2023" in discover()
    assert set(rep.SCALES) == {"quick", "full"}


def test_wilson_interval():
    lo, hi = rep.wilson(0, 3)
    assert lo == 0.0 and math.isclose(hi, 0.5615, abs_tol=1e-3)
    lo, hi = rep.wilson(50, 50)
    assert hi == 1.0 and 0.92 < lo < 0.94
    assert rep.wilson(0, 0) == (0.0, 1.0)


def _acc(name, n, k, runs, required):
    return {name: {str(n): {"rate": k / runs, "wilson95": list(rep.wilson(k, runs)),
                            "required_samples": required}}}


def test_acceptance_verdicts_completeness_and_rejection():
    good = {"10": {**_acc("gaussian_eta0", 200_000, 3, 3, 140_000),
                   **_acc("ckmy", 200_000, 0, 2, 140_000)}}
    assert [r["verdict"] for r in rep.acceptance_verdicts(good)] == ["agrees", "agrees"]
    bad = {"10": {**_acc("gaussian_eta0", 200_000, 0, 20, 140_000),
                  **_acc("ckmy", 200_000, 1, 2, 140_000)}}
    assert [r["verdict"] for r in rep.acceptance_verdicts(bad)] == ["disagrees"] * 2
    below = {"10": _acc("gaussian_eta0.1", 200_000, 0, 3, 500_000)}
    assert rep.acceptance_verdicts(below)[0]["verdict"] == "below required N"


def test_soundness_verdict_flags_a_certificate_below_the_excess():
    ok = [{"certificate": 0.2, "excess": 1e-4}, {"certificate": 0.15, "excess": 3e-4}]
    v = rep.soundness_verdict(ok)
    assert v["verdict"] == "agrees" and math.isclose(v["median_ratio"], (2000 + 500) / 2)
    bad = [*ok, {"certificate": 0.01, "excess": 0.02}]
    v = rep.soundness_verdict(bad)
    assert v["verdict"] == "disagrees" and len(v["violations"]) == 1
    assert rep.soundness_verdict([])["verdict"].startswith("untested")


def _err(kind, level, opt, ours, baseline, accepted=False):
    names = ("tester_learner", *rep.BASELINE_NAMES)
    error = {m: (ours if m == "tester_learner" else baseline) for m in names}
    return {f"{kind}/{level}": {"kind": kind, "level": level, "opt": opt, "error": error,
                                "accepted": [accepted]}}


def test_error_verdicts():
    good = {**_err("rcn", 0.2, 0.2, 0.201, 0.203), **_err("band", 0.05, 0.05, 0.06, 0.07),
            **_err("ckmy", 0.2, 0.038, 0.05, 0.2)}
    assert {r["verdict"] for r in rep.error_verdicts(good)} == {"agrees"}
    bad = {**_err("rcn", 0.2, 0.2, 0.25, 0.203), **_err("band", 0.05, 0.05, 0.2, 0.07),
           **_err("ckmy", 0.2, 0.038, 0.05, 0.1, accepted=True)}
    assert {r["verdict"] for r in rep.error_verdicts(bad)} == {"disagrees"}


def test_runtime_verdict_and_exponent():
    assert math.isclose(rep.fit_exponent([5, 10, 20], [1.0, 8.0, 64.0]), 3.0)

    def rt(p):
        return {str(d): {"warm": {"learn_s": 0.1, "certify_s": 1e-3 * d**p}} for d in (5, 10, 20)}

    assert rep.runtime_verdict(rt(2.0))["verdict"] == "agrees"
    assert rep.runtime_verdict(rt(6.0))["verdict"] == "disagrees"


def test_null_verdict_needs_concentration():
    def run(n2, kappa, accepted=False):
        return {"d": 10, "n2": n2, "eta": 0.0, "accepted": accepted, "chosen": 0,
                "sigmas": [0.01], "tau": [0.01], "band_mass_ratio": [1.0],
                "lam_min_ratio": [0.9], "kappa_mu_ratio": [kappa]}

    v = rep.null_verdict([run(10_000, 3.0), run(1_000_000, 1.2, accepted=True)])
    assert v["verdict"] == "agrees" and not v["accepted_outside_band"]
    v = rep.null_verdict([run(10_000, 1.2), run(1_000_000, 3.0, accepted=True)])
    assert v["verdict"] == "disagrees" and len(v["accepted_outside_band"]) == 1
