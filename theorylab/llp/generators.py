"""Offline data sets for LLP experiments (spec ``llp_bp.md`` section 5.2).

Every function returns :class:`LLPData` ``(X_train, y_train, X_test, y_test)`` as **numpy**
arrays: features float32, labels int32 in {0, 1}. Randomness comes from an explicit JAX key
(first positional argument) through a numpy Generator seeded from it
(:func:`theorylab.llp.bags.numpy_rng`): sampling is host side, compiles nothing per shape, and
the same key gives the same data with or without x64.

- :func:`gaussian_classes`: y ~ Bernoulli(prior), x | y ~ N((2y − 1)·shift·1_d, I_d), i.e. class
  means **+shift** (y = 1) and **−shift** (y = 0) in every dimension. The mean gap is
  2·shift·√d, so the Bayes AUC is Φ(shift·√(2d)) (:func:`gaussian_bayes_auc`): 0.910 at the
  spec's d = 10, shift = 0.3, matching its "Bayes AUC ≈ 0.91" (the one-sided convention,
  means 0 and +shift, would give only 0.749).
- :func:`xor_clusters`: four equally likely Gaussian clusters centred at (±separation,
  ±separation) in the first two dimensions with standard deviation ``spread`` (default 1.0),
  plus ``noise_dims`` N(0, 1) dimensions; y = 1 for the diagonal pair (+, +), (−, −) and y = 0
  for (+, −), (−, +), so the classes are balanced and not linearly separable.
- :func:`load_breast_cancer` / :func:`load_digits`: scikit-learn's bundled data (read from the
  installed package, no download), a random train/test split drawn from ``key``, features
  standardised with the *training* mean and standard deviation (constant training columns
  are only centred). Breast cancer keeps scikit-learn's target (1 = benign, 357 of 569);
  digits are binarised as y = [digit >= threshold] (default 5: 896 of 1797 positive).
  scikit-learn is an optional dependency (the ``test``/``bench`` extras).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from theorylab.core.checks import check_float, check_int, check_key
from theorylab.llp.bags import numpy_rng

__all__ = [
    "LLPData",
    "gaussian_bayes_auc",
    "gaussian_classes",
    "load_breast_cancer",
    "load_digits",
    "xor_clusters",
]


class LLPData(NamedTuple):
    """A labelled train/test split (numpy arrays).

    Attributes:
      X_train: ``(n_train, d)`` float32 features.
      y_train: ``(n_train,)`` int32 labels in {0, 1} (hidden behind bags in LLP).
      X_test: ``(n_test, d)`` float32 features.
      y_test: ``(n_test,)`` int32 labels in {0, 1}.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _split(X, y, n_train):
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int32)
    return LLPData(X[:n_train], y[:n_train], X[n_train:], y[n_train:])


def _check_sizes(n_train, n_test):
    n_train = check_int(n_train, "n_train", min_value=1)
    n_test = check_int(n_test, "n_test", min_value=0)
    return n_train, n_test


def gaussian_bayes_auc(d: int = 10, shift: float = 0.3) -> float:
    """Bayes AUC of :func:`gaussian_classes`: Φ(‖μ₁ − μ₀‖ / √2) = Φ(shift·√(2d)).

    The Bayes score is the LDA direction Σ_j x_j; its difference between a random positive and
    a random negative is N(2·shift·d, 2d). Independent of the prior.
    """
    d = check_int(d, "d", min_value=1)
    shift = check_float(shift, "shift", min_value=0.0)
    return 0.5 * math.erfc(-shift * math.sqrt(2.0 * d) / math.sqrt(2.0))


def gaussian_classes(
    key, n_train: int, n_test: int, d: int = 10, prior: float = 0.3, shift: float = 0.3
) -> LLPData:
    """Two Gaussian classes with means ±shift in every dimension (spec section 5.2).

    Args:
      key: JAX PRNG key.
      n_train, n_test: sample sizes (n_test may be 0).
      d: dimension.
      prior: P(y = 1), in [0, 1].
      shift: class 1 has mean +shift·1_d, class 0 mean −shift·1_d; identity covariance.

    Returns:
      :class:`LLPData`; Bayes AUC :func:`gaussian_bayes_auc` (0.910 at the defaults).
    """
    key = check_key(key)
    n_train, n_test = _check_sizes(n_train, n_test)
    d = check_int(d, "d", min_value=1)
    prior = check_float(prior, "prior", min_value=0.0, max_value=1.0)
    shift = check_float(shift, "shift")
    n = n_train + n_test
    rng = numpy_rng(key)
    y = rng.random(n) < prior
    z = rng.standard_normal((n, d), dtype=np.float32)
    X = z + np.where(y, shift, -shift).astype(np.float32)[:, None]
    return _split(X, y, n_train)


def xor_clusters(
    key,
    n_train: int,
    n_test: int,
    noise_dims: int = 8,
    spread: float = 1.0,
    separation: float = 2.0,
) -> LLPData:
    """XOR of four Gaussian clusters plus noise dimensions (spec section 5.2).

    Args:
      key: JAX PRNG key.
      n_train, n_test: sample sizes (n_test may be 0).
      noise_dims: number of extra N(0, 1) dimensions (total dimension 2 + noise_dims).
      spread: standard deviation of each cluster in the first two dimensions (> 0).
      separation: cluster centres at (±separation, ±separation).

    Returns:
      :class:`LLPData` with y = 1 for the clusters (+, +) and (−, −), y = 0 for (+, −) and
      (−, +); each cluster has probability 1/4, so P(y = 1) = 1/2. The score x₁·x₂ ranks
      almost perfectly at the defaults, while every linear score has AUC ≈ 1/2.
    """
    key = check_key(key)
    n_train, n_test = _check_sizes(n_train, n_test)
    noise_dims = check_int(noise_dims, "noise_dims", min_value=0)
    spread = check_float(spread, "spread", min_value=0.0, min_inclusive=False)
    separation = check_float(separation, "separation", min_value=0.0)
    n = n_train + n_test
    rng = numpy_rng(key)
    cluster = rng.integers(0, 4, size=n)
    z = rng.standard_normal((n, 2 + noise_dims), dtype=np.float32)
    sign1 = np.where(cluster & 1, 1.0, -1.0)
    sign2 = np.where(cluster & 2, 1.0, -1.0)
    X = z.copy()
    X[:, 0] = separation * sign1 + spread * z[:, 0]
    X[:, 1] = separation * sign2 + spread * z[:, 1]
    y = sign1 == sign2
    return _split(X, y, n_train)


def _random_split_standardised(key, X, y, test_fraction):
    key = check_key(key)
    test_fraction = check_float(
        test_fraction,
        "test_fraction",
        min_value=0.0,
        max_value=1.0,
        min_inclusive=False,
        max_inclusive=False,
    )
    n = X.shape[0]
    n_test = min(max(1, round(test_fraction * n)), n - 2)
    perm = numpy_rng(key).permutation(n)
    train, test = perm[: n - n_test], perm[n - n_test :]
    X = np.asarray(X, dtype=np.float64)
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    Z = (X - mean) / std
    return LLPData(
        Z[train].astype(np.float32),
        np.asarray(y[train], dtype=np.int32),
        Z[test].astype(np.float32),
        np.asarray(y[test], dtype=np.int32),
    )


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the bundled LLP data sets need scikit-learn: pip install 'theorylab[test]'"
        ) from err
    return datasets


def load_breast_cancer(key, test_fraction: float = 0.2) -> LLPData:
    """scikit-learn's breast-cancer data (569 × 30), random split, standardised by train.

    Labels are scikit-learn's target (1 = benign, 0 = malignant). Offline: the data ship with
    scikit-learn.
    """
    data = _sklearn_datasets().load_breast_cancer()
    return _random_split_standardised(key, data.data, data.target, test_fraction)


def load_digits(key, threshold: int = 5, test_fraction: float = 0.2) -> LLPData:
    """scikit-learn's 8×8 digits (1797 × 64) binarised as y = [digit >= threshold].

    Random split from ``key``, standardised by training statistics (always-blank pixels are
    only centred). Offline: the data ship with scikit-learn.
    """
    threshold = check_int(threshold, "threshold", min_value=1, max_value=9)
    data = _sklearn_datasets().load_digits()
    y = (data.target >= threshold).astype(np.int32)
    return _random_split_standardised(key, data.data, y, test_fraction)
