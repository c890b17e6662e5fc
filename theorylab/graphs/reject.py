"""Reject curves (Ivashkin & Chebotarev 2016, §2.3 of the spec).

Sort all unordered node pairs by distance (ascending) and walk the list, plotting the cumulative
share of *inter*-class pairs (x) against the cumulative share of *intra*-class pairs (y). A
perfect measure rises straight to (0, 1); a useless one follows the diagonal. The curve is the ROC
curve of "same class" scored by ``-distance``, so its area is the pairwise ROC-AUC with ties
counted one half (:func:`theorylab.core.metrics.roc_auc`), O(n² log n) with one sort.

Ties: pairs at equal distance are grouped and the curve passes straight through each group (the
expectation over random tie-breaking, as pygkernels' shuffled ties give on average).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import check_array, check_int, describe, is_concrete
from theorylab.core.metrics import roc_auc

__all__ = ["RejectCurve", "average_reject_curves", "reject_curve"]


class RejectCurve(NamedTuple):
    """``inter_share`` (x) and ``intra_share`` (y) at every sorted pair, plus the area."""

    inter_share: jax.Array
    intra_share: jax.Array
    auc: jax.Array


@jax.jit
def _reject_curve_core(distance, labels):
    n = distance.shape[0]
    iu, ju = jnp.triu_indices(n, k=1)
    d = distance[iu, ju]
    same = labels[iu] == labels[ju]
    order = jnp.argsort(d, stable=True)
    d_sorted, same_sorted = d[order], same[order]
    intra = jnp.cumsum(same_sorted)
    inter = jnp.cumsum(~same_sorted)
    # tie groups: every pair reports the counts at the end of its group
    group_end = jnp.searchsorted(d_sorted, d_sorted, side="right") - 1
    n_intra = jnp.maximum(intra[-1], 1)
    n_inter = jnp.maximum(inter[-1], 1)
    x = inter[group_end] / n_inter
    y = intra[group_end] / n_intra
    return x.astype(distance.dtype), y.astype(distance.dtype), same, d


def reject_curve(distance, labels) -> RejectCurve:
    """Reject curve and its area for one graph.

    Args:
      distance: ``(n, n)`` distance matrix (only the upper triangle is used; ``+inf`` allowed).
      labels: ``(n,)`` integer class labels; both intra- and inter-class pairs must exist.

    Returns:
      :class:`RejectCurve` with ``n(n-1)/2`` points and the ROC-AUC.
    """
    dist = check_array(distance, "distance", ndim=2, kind="real")
    if dist.shape[0] != dist.shape[1]:
        raise ValueError(f"distance must be a square (n, n) matrix; got {describe(dist)}")
    n = dist.shape[0]
    lab = check_array(labels, "labels", shape=(n,), kind="int")
    if is_concrete(dist) and bool(jnp.any(jnp.isnan(dist))):
        raise ValueError("distance must not contain NaN (inf is allowed: unreachable pairs)")
    if is_concrete(lab):
        counts = np.unique(np.asarray(lab), return_counts=True)[1]
        if counts.size < 2 or counts.max() < 2:
            raise ValueError("labels must define at least two classes and one class with 2 nodes")
    if dist.dtype.kind != "f":
        dist = dist.astype(jnp.result_type(float))
    x, y, same, d = _reject_curve_core(dist, lab)
    finite_max = jnp.max(jnp.where(jnp.isfinite(d), d, -jnp.inf))
    score = -jnp.where(jnp.isfinite(d), d, finite_max + 1.0)
    return RejectCurve(x, y, roc_auc(same, score))


def average_reject_curves(curves, bins: int = 100):
    """Average several reject curves on a common x grid of ``bins + 1`` points in [0, 1].

    Each curve's y is interpolated at the grid (curves are monotone), then averaged; the mean of
    the bucketed y is the AUC-type summary the paper reports.

    Returns:
      ``(grid, mean_y)`` as numpy arrays.
    """
    bins = check_int(bins, "bins", min_value=1)
    grid = np.linspace(0.0, 1.0, bins + 1)
    ys = []
    for c in curves:
        x = np.concatenate([[0.0], np.asarray(c.inter_share, dtype=np.float64)])
        y = np.concatenate([[0.0], np.asarray(c.intra_share, dtype=np.float64)])
        # one point per distinct x: the last one, i.e. the top of a vertical segment
        ux, last = np.unique(x[::-1], return_index=True)
        uy = y[::-1][last]
        ys.append(np.interp(grid, ux, uy, left=0.0, right=1.0))
    if not ys:
        raise ValueError("curves must contain at least one RejectCurve")
    return grid, np.mean(ys, axis=0)
