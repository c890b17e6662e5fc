"""Tests for theorylab.llp.generators: synthetic LLP data and the bundled scikit-learn sets."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from theorylab.core.metrics import roc_auc
from theorylab.llp.generators import (
    LLPData,
    gaussian_bayes_auc,
    gaussian_classes,
    load_breast_cancer,
    load_digits,
    xor_clusters,
)


def _check_types(data: LLPData, d: int):
    assert data.X_train.dtype == np.float32 and data.X_test.dtype == np.float32
    assert data.y_train.dtype == np.int32 and data.y_test.dtype == np.int32
    assert data.X_train.shape[1] == data.X_test.shape[1] == d
    assert set(np.unique(np.concatenate([data.y_train, data.y_test]))) <= {0, 1}
    for a in data:
        assert isinstance(a, np.ndarray)


def test_gaussian_bayes_auc_closed_form():
    # spec §5.2: d = 10, means ±0.3 in every dimension -> Bayes AUC ≈ 0.91
    assert gaussian_bayes_auc(10, 0.3) == pytest.approx(0.9101, abs=1e-4)
    # the one-sided convention (means 0 and +shift) would be far lower
    one_sided = 0.5 * (1 + math.erf(0.3 * math.sqrt(10) / 2))
    assert one_sided == pytest.approx(0.749, abs=1e-3)


def test_gaussian_classes_distribution():
    data = gaussian_classes(jax.random.key(0), 2000, 20000)
    _check_types(data, 10)
    assert data.X_train.shape == (2000, 10) and data.y_test.shape == (20000,)
    y, X = data.y_test, data.X_test
    # prior 0.3: binomial sd at n = 20000 is 0.0032
    assert abs(y.mean() - 0.3) < 0.015
    # class means +0.3 / -0.3 in every dimension (sd of a coordinate mean < 0.012)
    np.testing.assert_allclose(X[y == 1].mean(0), 0.3, atol=0.05)
    np.testing.assert_allclose(X[y == 0].mean(0), -0.3, atol=0.05)
    np.testing.assert_allclose(X.std(0), np.sqrt(1 + 0.3**2 * 4 * 0.3 * 0.7), atol=0.05)
    # the Bayes score sum_j x_j reaches the closed-form AUC (sd of the estimate ~0.003);
    # a deliberately wrong generator with means 0 / +0.3 would give 0.749 and fail this
    auc = float(roc_auc(y, X.sum(axis=1)))
    assert auc == pytest.approx(gaussian_bayes_auc(10, 0.3), abs=0.015)
    # same key, same data (also under x64: draws are float32)
    again = gaussian_classes(jax.random.key(0), 2000, 20000)
    np.testing.assert_array_equal(again.X_train, data.X_train)
    with jax.enable_x64(True):
        x64 = gaussian_classes(jax.random.key(0), 2000, 20000)
    np.testing.assert_array_equal(x64.X_train, data.X_train)
    np.testing.assert_array_equal(x64.y_test, data.y_test)


def test_xor_clusters_distribution():
    data = xor_clusters(jax.random.key(1), 4000, 100)
    _check_types(data, 10)
    X, y = data.X_train, data.y_train
    assert abs(y.mean() - 0.5) < 0.04
    # clusters: (+,+) and (-,-) are class 1, the anti-diagonal class 0
    same_sign = np.sign(X[:, 0]) == np.sign(X[:, 1])
    assert np.mean(same_sign == (y == 1)) > 0.93  # ~0.955 at spread 1, separation 2
    assert float(roc_auc(y, X[:, 0] * X[:, 1])) > 0.97
    for j in range(10):  # no single coordinate (hence no axis-aligned linear rule) separates
        assert abs(float(roc_auc(y, X[:, j])) - 0.5) < 0.05
    np.testing.assert_allclose(X[:, 2:].std(0), 1.0, atol=0.08)
    np.testing.assert_allclose(np.abs(X[:, :2]).mean(0), 2.0, atol=0.1)
    with pytest.raises(ValueError, match="spread"):
        xor_clusters(jax.random.key(1), 10, 10, spread=0.0)
    with jax.enable_x64(True):
        x64 = xor_clusters(jax.random.key(1), 4000, 100)
    np.testing.assert_array_equal(x64.X_test, data.X_test)


def test_generator_validation():
    with pytest.raises(ValueError, match="prior"):
        gaussian_classes(jax.random.key(0), 10, 10, prior=1.5)
    with pytest.raises(ValueError, match="n_train"):
        gaussian_classes(jax.random.key(0), 0, 10)
    with pytest.raises(TypeError, match="key"):
        gaussian_classes(0, 10, 10)
    with pytest.raises(ValueError, match="test_fraction"):
        load_breast_cancer(jax.random.key(0), test_fraction=1.0)
    with pytest.raises(ValueError, match="threshold"):
        load_digits(jax.random.key(0), threshold=10)


def test_breast_cancer_split_and_standardisation():
    data = load_breast_cancer(jax.random.key(0))
    _check_types(data, 30)
    assert data.X_train.shape[0] + data.X_test.shape[0] == 569
    assert data.X_test.shape[0] == round(0.2 * 569)
    assert int(data.y_train.sum() + data.y_test.sum()) == 357  # benign = 1
    np.testing.assert_allclose(data.X_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(0), 1.0, atol=1e-4)
    # split is a function of the key
    same = load_breast_cancer(jax.random.key(0))
    np.testing.assert_array_equal(same.y_test, data.y_test)
    other = load_breast_cancer(jax.random.key(1))
    assert not np.array_equal(other.X_test, data.X_test)


def test_digits_binarised():
    data = load_digits(jax.random.key(0), threshold=5, test_fraction=0.25)
    _check_types(data, 64)
    assert data.X_train.shape[0] + data.X_test.shape[0] == 1797
    assert int(data.y_train.sum() + data.y_test.sum()) == 896  # digits 5..9
    std = data.X_train.std(0)
    assert np.all(np.isfinite(data.X_train)) and np.all(np.isfinite(data.X_test))
    assert np.all((np.abs(std - 1.0) < 1e-4) | (std == 0.0))  # blank pixels only centred
    high = load_digits(jax.random.key(0), threshold=9)
    assert int(high.y_train.sum() + high.y_test.sum()) == 180
