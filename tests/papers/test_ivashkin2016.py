"""Helpers of the Ivashkin & Chebotarev reproduction (the end-to-end quick run is CI's main job)."""

from __future__ import annotations

import numpy as np
import pytest

from papers import discover
from papers.ivashkin2016 import reproduce as rep


def test_registered():
    assert "ivashkin2016" in discover()


def test_midpoint_grid_avoids_degenerate_endpoints():
    grid = rep.midpoint_grid(4)
    np.testing.assert_allclose(grid, [0.125, 0.375, 0.625, 0.875])


def test_copeland_scores_pairwise_wins():
    ari = {"a": np.array([0.9, 0.5, 0.2]), "b": np.array([0.8, 0.5, 0.3]),
           "c": np.array([0.1, np.nan, 0.0])}
    scores = rep.copeland_scores(ari)
    # a vs b: +1, 0, -1 -> 0; a vs c: +3; b vs c: +3; NaN counts as a loss
    assert scores == {"a": 3, "b": 3, "c": -6}
    assert sum(scores.values()) == 0


def test_choose_parameters_best_and_90th_percentile():
    flat = np.linspace(0.05, 0.95, 10)
    curve = np.array([0.1, 0.2, 0.5, 0.9, 1.0, 0.95, 0.6, 0.3, 0.2, 0.1])
    best, p90 = rep.choose_parameters(curve, flat)
    assert best == pytest.approx(flat[4])
    q90 = np.percentile(curve, 90)  # 0.955 -> nearest grid value 0.95 at index 5
    assert q90 == pytest.approx(0.955)
    assert p90 == pytest.approx(flat[5])


def test_spearman_and_config_name():
    assert rep.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert rep.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert rep.config_name(102, 3, 0.3, 0.1) == "G(102,(3)0.3,0.1)"


def test_published_tables_cover_the_competition():
    assert set(rep.PUBLISHED_COPELAND) == set(rep.COMPETITION_MEASURES)
    assert set(rep.REJECT_PARAMS) == set(rep.COMPETITION_MEASURES)
    assert sum(v[0] for v in rep.PUBLISHED_COPELAND.values()) == 0


def test_summaries_handle_failed_kernels_without_warnings():
    import warnings

    ari = np.array([[0.5, np.nan, 1.0], [0.7, np.nan, np.nan], [0.6, np.nan, 1.0]])
    flat = np.array([0.1, 0.5, 0.9])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = rep.summarise_curves({"m": ari}, flat)["m"]
        assert rep.choose_parameters(np.full(3, np.nan), flat) == (0.5, 0.5)
    np.testing.assert_allclose(s["mean"], [0.6, np.nan, 1.0])
    assert s["best_flat"] == 0.9 and s["nan_share"] == pytest.approx(4 / 9)
