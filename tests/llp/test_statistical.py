"""Statistical checks of LLP-BP on offline data (spec ``llp_bp.md`` §5.2).

Every check runs on ONE fixed seed (``SEED``); its threshold was calibrated beforehand over
several seeds with exactly the protocol of the test (data, bag draw, graph and model keys all
derived from the seed), and the calibration numbers (min / mean over seeds) are quoted next to
each threshold. The false-positive rate stated in each docstring is the estimated probability
that a correct implementation fails the check for a seed drawn at random (a normal fit to the
calibration values unless said otherwise); with the fixed seed the test is deterministic. Each
check is paired with a deliberately broken variant (no kNN edges, the diverging damping 0.5,
bag counts shuffled across bags) that the same threshold must reject.

Calibration: 2-core CPU, float32, ``tests/conftest.py``'s 4 fake devices (BP unsharded).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from theorylab.llp.bags import bag_counts, make_layout, random_bags
from theorylab.llp.bp import loopy_bp
from theorylab.llp.generators import (
    gaussian_classes,
    load_breast_cancer,
    load_digits,
    xor_clusters,
)
from theorylab.llp.graph import knn_graph
from theorylab.llp.models import predict_proba, train_llp_model
from theorylab.llp.pipeline import llp_bp

# One xdist worker runs the whole module, so its module-scoped fixtures are built once.
pytestmark = pytest.mark.xdist_group("llp_statistical")

SEED = 0
N = 4096  # training instances of the synthetic sets (spec §5.2)

# Synthetic Gaussian, BP pseudo-label AUC at K in {32, 128, 512} (spec: >= 0.83). Calibration
# over 30 seeds (90 values): min 0.8299 (K=128), mean 0.853, sd 0.009; per K min/mean
# 0.845/0.858 (32), 0.830/0.852 (128), 0.832/0.850 (512). The spec's 0.83 would fail ~1% of
# seeds per K, hence 0.82.
GAUSS_AUC = 0.82
# Mean |sum of marginals in B - c_B| (spec: < 1.0). Calibration: max 0.64, mean 0.29.
GAUSS_BAG_RESIDUAL = 1.0
# BP (K=512) >= DLLP logistic regression + margin, both averaged over DLLP_DRAWS bag draws.
DLLP_MARGIN = 0.02
DLLP_DRAWS = 4
# XOR clusters at K in {8, 32, 128} (spec: >= 0.95 and >= 0.2 above the no-edge control).
# Calibration over 10 seeds: min 0.992 / 0.983 / 0.980 (no-edge control max 0.71 / 0.61 / 0.56).
XOR_AUC = 0.95
XOR_GAP = 0.2
# breast_cancer, K=8, final classifier (logistic regression) test AUC (spec estimate: >= 0.97).
# Calibration over 10 seeds: min 0.980, mean 0.990, sd 0.0055; BP pseudo-label AUC: min 0.983,
# mean 0.988.
CANCER_TEST_AUC = 0.965
CANCER_PSEUDO_AUC = 0.97
# digits >= 5, K=32, BP pseudo-label AUC with length_scale="median" (spec estimate: >= 0.95).
# Calibration over 10 seeds: min 0.949, mean 0.975, sd 0.017.
DIGITS_AUC = 0.92

BP_OPTIONS = dict(lam_s=10.0, lam_b=10.0, mode="count", count_method="auto", max_iters=200)


def _auc(y, scores) -> float:
    """ROC AUC on the host (sklearn; equals theorylab.core.metrics.roc_auc, compiles nothing)."""
    return float(roc_auc_score(np.asarray(y), np.asarray(scores)))


def _bags(key, y, bag_size):
    """Random bags of ``bag_size`` (remainder dropped) and their layout with the true counts."""
    ids = random_bags(key, y.shape[0], bag_size)
    return ids, make_layout(ids, bag_counts(y, ids))


def _shuffled(counts, seed=SEED):
    """Broken variant: the bag counts permuted across bags (a bag-order mix-up)."""
    counts = np.asarray(counts)
    return counts[np.random.default_rng(seed).permutation(counts.shape[0])]


# --------------------------------------------------------------------------- Gaussian


@pytest.fixture(scope="module")
def gaussian():
    """Spec §5.2 Gaussian data (n = 4096 + 4096 test), its cosine 5-NN graph and BP runs."""
    key = jax.random.key(SEED)
    data = gaussian_classes(key, N, N, d=10, prior=0.3, shift=0.3)
    graph = knn_graph(data.X_train, 5)
    runs = {}
    for K in (32, 128, 512):
        _, layout = _bags(jax.random.fold_in(key, K), data.y_train, K)
        runs[K] = (layout, loopy_bp(layout, graph, **BP_OPTIONS))
    return key, data, graph, runs


def test_gaussian_bp_pseudo_label_auc(gaussian):
    """BP pseudo-labels rank instances well at K ∈ {32, 128, 512}; bag sums match c_B.

    Thresholds: AUC >= 0.82 (seed 0: 0.851 / 0.855 / 0.851), mean bag residual < 1.0 (seed 0:
    0.41 / 0.27 / 0.51). False-positive rate: AUC ~1e-4 per K (normal fit, z = 3.6), bag
    residual negligible (max 0.64 over 90 runs). With the tilted messages seed 0 gives AUC
    0.853 / 0.851 / 0.852 and residuals 0.14 / 0.11 / 0.83: the K = 512 residual is closer to
    its bound than in the calibration (not re-calibrated over seeds; a limit-cycle snapshot).
    Broken variants rejected at every K: no kNN edges (count factors only; calibration max
    0.62) and the spec's plain-Gaussian messages at damping 0.5, which diverge at K >= 32
    (calibration 0.43-0.65). (Calibration ran with the plain Gaussian messages, the earlier
    "auto"; "auto" now uses the tilted ones, which agree with the exact DP here to ~0.01 AUC
    and, unlike the plain ones, stay stable even at damping 0.5: 0.854 at K = 32.)
    """
    _, data, graph, runs = gaussian
    y = data.y_train
    for K, (layout, result) in runs.items():
        auc = _auc(y, result.marginals)
        residual = float(np.mean(np.abs(np.asarray(result.bag_residuals))))
        assert auc >= GAUSS_AUC, (K, auc)
        assert residual < GAUSS_BAG_RESIDUAL, (K, residual)
        assert np.all(np.isfinite(np.asarray(result.marginals)))
        no_edges = loopy_bp(layout, None, **BP_OPTIONS)
        assert _auc(y, no_edges.marginals) < GAUSS_AUC, K
        undamped = loopy_bp(layout, graph, damping=0.5, **{**BP_OPTIONS,
                                                           "count_method": "gaussian"})
        assert _auc(y, undamped.marginals) < GAUSS_AUC, K


def _dllp_lr(key, X, layout):
    """DLLP logistic regression: one bag per Adam step, 250 epochs = 2000 steps (the spec's
    2000 full-batch GD steps), lr 1e-2, no early stopping (no instance labels), last iterate."""
    return train_llp_model(key, X, layout, loss="dllp", widths=(), bags_per_batch=1,
                           epochs=250, learning_rate=1e-2, patience=None)


def test_gaussian_bp_beats_dllp_at_large_bags(gaussian):
    """At K = 512 (8 bags) BP pseudo-labels beat DLLP logistic regression (spec §5.2).

    Compared: BP's pseudo-label AUC on the training instances against DLLP-LR's test AUC
    (the spec's protocol; a linear model's train and test AUC differ by < 0.02 here), each
    averaged over 4 bag draws (draw 0 is the fixture's). Check: mean BP >= mean DLLP + 0.02.
    With 8 bags DLLP-LR is nearly unidentified (11 weights, 8 bag equations) and erratic:
    over 30 seeds its test AUC ranged 0.41-0.88 (mean 0.70) while BP ranged 0.83-0.87 (mean
    0.85); single-draw gaps BP - DLLP: min -0.031, mean 0.146, with 4/30 below 0.02 (the
    spec's single-draw "+0.02" would fail ~13% of seeds), hence the 4-draw mean. This test's
    protocol over 10 seeds: mean gap min 0.085, mean 0.166, sd 0.05 (seed 0: BP 0.851 vs
    DLLP 0.687, gap 0.164).
    False-positive rate: ~0.5% (normal fit z = 2.9: 0.2%; bootstrap of the 30 single-draw
    gaps, means of 4: 0.7%).
    Broken variant rejected: BP without kNN edges (AUC ~0.52) averaged over the same draws.
    """
    key, data, graph, runs = gaussian
    K = 512
    bp_auc, dllp_auc, no_edge_auc = [], [], []
    for draw in range(DLLP_DRAWS):
        if draw == 0:
            layout, result = runs[K]
            dkey = key
        else:
            dkey = jax.random.fold_in(key, 10_000 + draw)
            _, layout = _bags(dkey, data.y_train, K)
            result = loopy_bp(layout, graph, **BP_OPTIONS)
        bp_auc.append(_auc(data.y_train, result.marginals))
        no_edge_auc.append(_auc(data.y_train, loopy_bp(layout, None, **BP_OPTIONS).marginals))
        model = _dllp_lr(jax.random.fold_in(dkey, 1), data.X_train, layout)
        dllp_auc.append(_auc(data.y_test, predict_proba(model, data.X_test)))
    bp_mean, dllp_mean = np.mean(bp_auc), np.mean(dllp_auc)
    assert bp_mean >= dllp_mean + DLLP_MARGIN, (bp_auc, dllp_auc)
    assert np.mean(no_edge_auc) < dllp_mean + DLLP_MARGIN, (no_edge_auc, dllp_auc)


# --------------------------------------------------------------------------- XOR


def test_xor_clusters_bp_uses_the_graph():
    """XOR clusters (not linearly separable): BP AUC >= 0.95 at K ∈ {8, 32, 128} and >= 0.2
    above the count-factor-only (no-edge) control, which is the broken variant (< 0.95).

    Calibration (10 seeds): BP min 0.992 / 0.983 / 0.980, no-edge max 0.71 / 0.61 / 0.56.
    False-positive rate: negligible (BP's spread is ~0.002, 15 sd above the threshold).
    (At K = 512, i.e. 8 bags with counts ~256 ± 11, BP is bimodal: 0.98 on 4 of 10 seeds and
    ~0.5 on 6, so K = 512 is not checked.)
    """
    key = jax.random.key(SEED)
    data = xor_clusters(key, N, 0)
    graph = knn_graph(data.X_train, 5)
    y = data.y_train
    for K in (8, 32, 128):
        _, layout = _bags(jax.random.fold_in(key, K), y, K)
        auc = _auc(y, loopy_bp(layout, graph, **BP_OPTIONS).marginals)
        control = _auc(y, loopy_bp(layout, None, **BP_OPTIONS).marginals)
        assert auc >= XOR_AUC, (K, auc)
        assert auc - control >= XOR_GAP, (K, auc, control)
        assert control < XOR_AUC, (K, control)


# --------------------------------------------------------------------------- sklearn


def test_breast_cancer_pipeline_k8():
    """llp_bp on breast_cancer (455 train / 114 test, 56 bags of 8): final test AUC >= 0.965
    and BP pseudo-label AUC >= 0.97.

    The final classifier is logistic regression (``widths=()``, 100 epochs of 4 bags; an MLP
    (32, 16) gave the same AUCs, min 0.980 over 10 seeds, at twice the compile time).
    Calibration (10 seeds): test AUC min 0.980, mean 0.990, sd 0.0055 (seed 0: 0.988);
    pseudo-label AUC min 0.983 (seed 0: 0.989). False-positive rate: < 0.1% for the test AUC
    (z = 4.5, but the 114-instance test set makes the tail uncertain), ~1e-3 for the
    pseudo-label AUC (sd 0.0025, z = 5).
    Broken variant: bag counts shuffled across bags. Its pseudo-label AUC (0.63-0.88 over 10
    seeds) is always rejected; its final test AUC (0.77-0.98) only on 9 of 10 seeds (a linear
    classifier recovers the direction from noisy pseudo-labels), on seed 0 it is 0.77.
    """
    key = jax.random.key(SEED)
    data = load_breast_cancer(key)
    ids = random_bags(jax.random.fold_in(key, 8), data.X_train.shape[0], 8)
    counts = bag_counts(data.y_train, ids)
    options = dict(widths=(), train_options=dict(epochs=100, bags_per_batch=4))
    for bag_labels, good in ((counts, True), (_shuffled(counts), False)):
        result = llp_bp(jax.random.fold_in(key, 1), data.X_train, ids, bag_labels, **options)
        test_auc = _auc(data.y_test, predict_proba(result.model, data.X_test))
        pseudo_auc = _auc(data.y_train, result.marginals)
        assert (test_auc >= CANCER_TEST_AUC) is good, (good, test_auc)
        assert (pseudo_auc >= CANCER_PSEUDO_AUC) is good, (good, pseudo_auc)


def test_digits_bp_pseudo_labels_k32():
    """digits binarised as digit >= 5 (1438 train, 44 bags of 32): BP AUC >= 0.92.

    The graph uses ``length_scale="median"``: with the default ℓ = 1 the Matérn weights on the
    64 standardised pixels are ~exp(-4.2) (median kNN distance 4.2), the kNN coupling nearly
    vanishes and BP gives only 0.74-0.85 (10 seeds) although the 5-NN label homophily is 0.97.
    Calibration (10 seeds, ℓ = median): min 0.949, mean 0.975, sd 0.017; seed 0: 0.959.
    False-positive rate ~0.1% (z = 3.2). Broken variant rejected: bag counts shuffled across
    bags (calibration 0.43-0.73; seed 0: 0.45). (Without kNN edges BP gives ~0.60.)
    """
    key = jax.random.key(SEED)
    data = load_digits(key)
    y = data.y_train
    graph = knn_graph(data.X_train, 5, length_scale="median")
    ids, layout = _bags(jax.random.fold_in(key, 32), y, 32)
    assert _auc(y, loopy_bp(layout, graph, **BP_OPTIONS).marginals) >= DIGITS_AUC
    shuffled = make_layout(ids, _shuffled(layout.counts))
    assert _auc(y, loopy_bp(shuffled, graph, **BP_OPTIONS).marginals) < DIGITS_AUC
