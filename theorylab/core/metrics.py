"""Clustering and classification metrics, jittable where it matters.

- :func:`contingency_matrix`, :func:`adjusted_rand_index`, :func:`normalized_mutual_info`:
  partition-comparison scores. On host (concrete inputs) any hashable labels are accepted
  and re-encoded; inside ``jit``/``vmap`` pass ``num_true=``/``num_pred=`` (static) and
  integer labels in ``[0, num)``. Unused label ids (empty rows/columns) do not change the
  scores, so a fixed ``num_pred = k`` works for clusterings with empty clusters.
- :func:`roc_auc`: the Mann-Whitney form of the ROC-AUC with ties counted as one half
  (identical to the trapezoidal ROC area), O(n log n), with an optional mask for padded input.
- :func:`hungarian_match` (host, ``scipy.optimize.linear_sum_assignment``) and
  :func:`matching_accuracy` (jittable, ``optax.assignment.hungarian_algorithm``): accuracy of
  a clustering under the best one-to-one relabelling.

References: Hubert & Arabie (1985) for ARI; Strehl & Ghosh (2002) / Vinh et al. (2010) for NMI
normalisations; Hanley & McNeil (1982) for AUC = P(s+ > s-) + P(s+ = s-)/2.

Precision: scores are computed in JAX's default float dtype (float32 unless x64 is enabled);
pair counts n(n-1)/2 are formed in that dtype, so in float32 ARI carries a relative error of
order 1e-6 for n up to ~1e5, which is far below any difference that matters when comparing
clusterings. Enable x64 for exact-to-1e-12 agreement with reference implementations.
"""

from __future__ import annotations

from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.optimize import linear_sum_assignment

from theorylab.core.checks import (
    check_array,
    check_bool,
    check_choice,
    check_int,
    check_labels,
    check_same_leading_dim,
    is_concrete,
)

__all__ = [
    "MatchResult",
    "adjusted_rand_index",
    "ari_from_contingency",
    "contingency_matrix",
    "hungarian_match",
    "matching_accuracy",
    "nmi_from_contingency",
    "normalized_mutual_info",
    "roc_auc",
]


# --------------------------------------------------------------------------- encoding


def _encode(labels, name: str, num: int | None):
    """Return (integer codes, number of classes) with codes in [0, num)."""
    if num is not None:
        num = check_int(num, f"num_{name.split('_')[-1]}", min_value=1)
        return check_labels(labels, name, num_classes=num), num
    arr = check_labels(labels, name)
    _, codes = np.unique(arr, return_inverse=True)
    return jnp.asarray(codes.reshape(-1).astype(np.int32)), max(int(codes.max(initial=-1)) + 1, 1)


def _encode_pair(labels_true, labels_pred, num_true, num_pred):
    t, nt = _encode(labels_true, "labels_true", num_true)
    p, npred = _encode(labels_pred, "labels_pred", num_pred)
    n = check_same_leading_dim(labels_true=t, labels_pred=p)
    if n == 0:
        raise ValueError("labels_true and labels_pred must contain at least one sample; got 0")
    return t, p, nt, npred


# --------------------------------------------------------------------------- contingency


@partial(jax.jit, static_argnums=(2, 3))
def _contingency(t, p, num_true: int, num_pred: int):
    flat = t.astype(jnp.int32) * num_pred + p.astype(jnp.int32)
    ones = jnp.ones(flat.shape, dtype=jnp.result_type(float))
    counts = jax.ops.segment_sum(ones, flat, num_segments=num_true * num_pred)
    return counts.reshape(num_true, num_pred)


def contingency_matrix(labels_true, labels_pred, *, num_true=None, num_pred=None):
    """Counts ``C[i, j] = #{s : true(s) = i, pred(s) = j}`` as a float array.

    Args:
      labels_true, labels_pred: 1-D label arrays of equal length.
      num_true, num_pred: static numbers of classes; required inside ``jit``. Without them,
        labels are re-encoded on host in sorted order of ``np.unique``.

    Returns:
      ``(num_true, num_pred)`` array of counts (default float dtype).
    """
    t, p, nt, npred = _encode_pair(labels_true, labels_pred, num_true, num_pred)
    return _contingency(t, p, nt, npred)


# --------------------------------------------------------------------------- ARI


def _pairs(x):
    return x * (x - 1.0) / 2.0


@jax.jit
def ari_from_contingency(counts):
    """Adjusted Rand index from a contingency table (jittable, vmappable).

    ``ARI = (Σ C(n_ij,2) - E) / (½(Σ C(a_i,2) + Σ C(b_j,2)) - E)`` with
    ``E = Σ C(a_i,2) Σ C(b_j,2) / C(n,2)`` (Hubert & Arabie 1985). When the denominator
    vanishes the two partitions are identical (both all-singletons or both one block) and the
    index is 1, as in scikit-learn.
    """
    counts = jnp.asarray(counts, dtype=jnp.result_type(float))
    n = counts.sum()
    index = _pairs(counts).sum()
    sum_a = _pairs(counts.sum(axis=1)).sum()
    sum_b = _pairs(counts.sum(axis=0)).sum()
    total = _pairs(n)
    expected = jnp.where(total > 0, sum_a * sum_b / jnp.where(total > 0, total, 1.0), 0.0)
    maximum = 0.5 * (sum_a + sum_b)
    denom = maximum - expected
    safe = jnp.where(denom == 0, 1.0, denom)
    return jnp.where(denom == 0, 1.0, (index - expected) / safe)


def adjusted_rand_index(labels_true, labels_pred, *, num_true=None, num_pred=None):
    """Adjusted Rand index between two partitions (1 = identical, ~0 = chance level).

    Symmetric in its arguments, invariant to relabelling. Jittable given static
    ``num_true``/``num_pred``. Complexity O(n + num_true * num_pred).
    """
    t, p, nt, npred = _encode_pair(labels_true, labels_pred, num_true, num_pred)
    return ari_from_contingency(_contingency(t, p, nt, npred))


# --------------------------------------------------------------------------- NMI


def _xlogx(x):
    safe = jnp.where(x > 0, x, 1.0)
    return jnp.where(x > 0, x * jnp.log(safe), 0.0)


@partial(jax.jit, static_argnames=("average",))
def nmi_from_contingency(counts, average: str = "arithmetic"):
    """Normalised mutual information from a contingency table (jittable).

    ``NMI = I(U;V) / M(H(U), H(V))`` with M the arithmetic (default, scikit-learn's default),
    geometric mean, min or max of the entropies (natural log; NMI is base-free). Conventions:
    both partitions trivial (both entropies 0) gives 1; otherwise a zero normaliser gives 0.
    """
    counts = jnp.asarray(counts, dtype=jnp.result_type(float))
    n = counts.sum()
    a = counts.sum(axis=1)
    b = counts.sum(axis=0)
    log_n = jnp.log(n)
    # I = Σ p_ij log(p_ij / (p_i p_j)) = (Σ n_ij log n_ij - Σ a log a - Σ b log b)/n + log n
    h_u = log_n - _xlogx(a).sum() / n
    h_v = log_n - _xlogx(b).sum() / n
    mi = (_xlogx(counts).sum() - _xlogx(a).sum() - _xlogx(b).sum()) / n + log_n
    mi = jnp.maximum(mi, 0.0)
    if average == "arithmetic":
        norm = 0.5 * (h_u + h_v)
    elif average == "geometric":
        norm = jnp.sqrt(jnp.maximum(h_u, 0.0) * jnp.maximum(h_v, 0.0))
    elif average == "min":
        norm = jnp.minimum(h_u, h_v)
    else:
        norm = jnp.maximum(h_u, h_v)
    tiny = 1e-12
    both_trivial = (jnp.abs(h_u) < tiny) & (jnp.abs(h_v) < tiny)
    ratio = jnp.clip(mi / jnp.where(norm > tiny, norm, 1.0), 0.0, 1.0)
    return jnp.where(both_trivial, 1.0, jnp.where(norm > tiny, ratio, 0.0))


def normalized_mutual_info(
    labels_true,
    labels_pred,
    *,
    average: Literal["arithmetic", "geometric", "min", "max"] = "arithmetic",
    num_true=None,
    num_pred=None,
):
    """Normalised mutual information between two partitions, in [0, 1].

    Symmetric for every ``average``; jittable given static ``num_true``/``num_pred``.
    """
    check_choice(average, "average", ("arithmetic", "geometric", "min", "max"))
    t, p, nt, npred = _encode_pair(labels_true, labels_pred, num_true, num_pred)
    return nmi_from_contingency(_contingency(t, p, nt, npred), average)


# --------------------------------------------------------------------------- AUC


@jax.jit
def _auc_core(y, scores, mask):
    """AUC = mean over positives of (#neg below + ½ #neg tied) / #neg."""
    pos = y & mask
    neg = (~y) & mask
    n_pos = pos.sum()
    n_neg = neg.sum()
    big = jnp.asarray(jnp.inf, scores.dtype)
    neg_sorted = jnp.sort(jnp.where(neg, scores, big))
    below = jnp.searchsorted(neg_sorted, scores, side="left")
    below_or_tied = jnp.minimum(jnp.searchsorted(neg_sorted, scores, side="right"), n_neg)
    share = (below + below_or_tied).astype(scores.dtype) / (2.0 * jnp.maximum(n_neg, 1))
    auc = jnp.sum(jnp.where(pos, share, 0.0)) / jnp.maximum(n_pos, 1)
    return jnp.where((n_pos > 0) & (n_neg > 0), auc, jnp.nan)


def roc_auc(y_true, scores, *, mask=None):
    """Area under the ROC curve with ties counted as one half.

    Equals ``P(s+ > s-) + ½ P(s+ = s-)`` over all positive/negative pairs (the Mann-Whitney
    statistic), i.e. the trapezoidal area under the ROC curve. O(n log n) via one sort of the
    negatives' scores and two ``searchsorted`` passes.

    Args:
      y_true: 1-D array of binary labels (bool or integers in {0, 1}).
      scores: 1-D float array of the same length; higher means "more positive".
      mask: optional 1-D bool array; entries with ``False`` are ignored (padding).

    Returns:
      scalar AUC. Raises ``ValueError`` on host if only one class is present; inside ``jit``
      such input gives NaN.
    """
    y = check_array(y_true, "y_true", ndim=1, kind="numeric")
    s = check_array(scores, "scores", ndim=1, kind="real", finite=True)
    if s.dtype.kind != "f":
        s = s.astype(jnp.result_type(float))
    if mask is None:
        m = jnp.ones(y.shape, dtype=bool)
    else:
        m = check_array(mask, "mask", ndim=1, kind="bool")
        check_same_leading_dim(y_true=y, mask=m)
    check_same_leading_dim(y_true=y, scores=s)
    if is_concrete(y):
        values = np.unique(np.asarray(y))
        if not np.all(np.isin(values, [0, 1])):
            raise ValueError(f"y_true must contain only 0/1 (or bool) labels; got {values[:5]}")
        if is_concrete(m):
            yy, mm = np.asarray(y).astype(bool), np.asarray(m)
            if not (np.any(yy & mm) and np.any(~yy & mm)):
                raise ValueError("y_true must contain both classes (among unmasked entries)")
    return _auc_core(y.astype(bool), s, m)


# --------------------------------------------------------------------------- matching


class MatchResult(NamedTuple):
    """Best one-to-one matching of predicted to true labels.

    Attributes:
      accuracy: fraction of samples whose matched predicted label equals the true label.
      mapping: dict ``predicted label -> true label`` (unmatched predicted labels absent).
      true_labels, pred_labels: the label values indexing rows/columns of ``contingency``.
      contingency: ``(k_true, k_pred)`` count matrix.
    """

    accuracy: float
    mapping: dict
    true_labels: np.ndarray
    pred_labels: np.ndarray
    contingency: np.ndarray


def hungarian_match(labels_true, labels_pred) -> MatchResult:
    """Accuracy under the best one-to-one relabelling (host side, exact).

    Maximises the matched counts of the contingency table with
    ``scipy.optimize.linear_sum_assignment`` (rectangular tables allowed: surplus predicted
    clusters stay unmatched and count as errors). Labels may be any hashable values.
    """
    t = check_labels(labels_true, "labels_true")
    p = check_labels(labels_pred, "labels_pred")
    n = check_same_leading_dim(labels_true=t, labels_pred=p)
    if n == 0:
        raise ValueError("labels_true and labels_pred must contain at least one sample; got 0")
    true_vals, t_codes = np.unique(t, return_inverse=True)
    pred_vals, p_codes = np.unique(p, return_inverse=True)
    counts = np.zeros((true_vals.size, pred_vals.size), dtype=np.int64)
    np.add.at(counts, (t_codes.ravel(), p_codes.ravel()), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = {pred_vals[c].item(): true_vals[r].item() for r, c in zip(rows, cols)}
    accuracy = float(counts[rows, cols].sum()) / n
    return MatchResult(accuracy, mapping, true_vals, pred_vals, counts)


def matching_accuracy(labels_true, labels_pred, *, num_classes: int, return_permutation=False):
    """Jittable accuracy under the best relabelling, for ``num_classes`` labels on both sides.

    Uses ``optax.assignment.hungarian_algorithm`` on the negated ``(k, k)`` contingency, so
    it runs inside ``jit`` and ``vmap`` (e.g. over seeds). Labels must be integers in
    ``[0, num_classes)``.

    Returns:
      scalar accuracy, and with ``return_permutation=True`` also ``perm`` with
      ``perm[pred] = matched true label``.
    """
    k = check_int(num_classes, "num_classes", min_value=1)
    check_bool(return_permutation, "return_permutation")
    t = check_labels(labels_true, "labels_true", num_classes=k)
    p = check_labels(labels_pred, "labels_pred", num_classes=k)
    n = check_same_leading_dim(labels_true=t, labels_pred=p)
    if n == 0:
        raise ValueError("labels_true and labels_pred must contain at least one sample; got 0")
    accuracy, perm = _matching_core(t, p, k)
    return (accuracy, perm) if return_permutation else accuracy


@partial(jax.jit, static_argnums=(2,))
def _matching_core(t, p, k: int):
    counts = _contingency(t, p, k, k)
    rows, cols = optax.assignment.hungarian_algorithm(-counts)
    accuracy = counts[rows, cols].sum() / t.shape[0]
    perm = jnp.zeros(k, dtype=jnp.int32).at[cols].set(rows.astype(jnp.int32))
    return accuracy, perm
