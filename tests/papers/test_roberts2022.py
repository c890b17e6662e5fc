"""Helpers of the Roberts et al. reproduction (the end-to-end quick run is CI's main job)."""

from __future__ import annotations

from papers import discover
from papers.roberts2022 import reproduce as rep


def test_registered():
    assert "roberts2022" in discover()


def _stat(mean):
    return {"mean": mean, "sd": 0.0, "n": 3}


def test_recovery_verdicts_flag_inconsistency_and_nmf_win():
    grid = (10_000, 1_000_000)
    good = {
        "10.0": {
            "10000": {"spa": _stat(0.05), "nmf": _stat(0.08)},
            "1000000": {"spa": _stat(0.008), "nmf": _stat(0.08)},
        }
    }
    bad = {
        "10.0": {
            "10000": {"spa": _stat(0.05), "nmf": _stat(0.08)},
            "1000000": {"spa": _stat(0.04), "nmf": _stat(0.01)},
        }
    }
    assert [r["verdict"] for r in rep.recovery_verdicts(good, grid)] == ["agrees"] * 2
    assert [r["verdict"] for r in rep.recovery_verdicts(bad, grid)] == ["disagrees"] * 2


def test_gaussian_verdicts_compare_with_bayes_and_kmeans():
    def summary(oracle, q, mlp):
        return {
            "bayes_accuracy": _stat(0.95),
            "kmeans_x_accuracy": _stat(0.5),
            "oracle/spa/m=15": {"accuracy": _stat(oracle), "q_mae": _stat(q)},
            "mlp/spa/m=15": {"accuracy": _stat(mlp), "q_mae": _stat(q)},
        }

    ok = rep.gaussian_verdicts({"3.0": summary(0.94, 0.01, 0.9)}, "two_blob")
    assert {r["verdict"] for r in ok} == {"agrees"}
    bad = rep.gaussian_verdicts({"3.0": summary(0.7, 0.05, 0.85)}, "two_blob")
    assert [r["verdict"] for r in bad] == ["disagrees"] * 4
