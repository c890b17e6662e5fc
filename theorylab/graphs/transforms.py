"""Kernel <-> distance transforms and the elementwise log (spec §1.2).

- :func:`elementwise_log`: ``H_log = ln K`` with entries ``<= 0`` mapped to ``-inf``
  (pygkernels' ``ewlog`` masking rule).
- :func:`kernel_to_distance`: ``D = ½(k 1ᵀ + 1 kᵀ - K - Kᵀ)``, ``k = diag K``, optionally raised
  elementwise to a power (``0.5`` for communicability distances). For symmetric PSD ``K`` this is
  half the squared feature-space distance.
- :func:`distance_to_kernel`: ``K = -½ H_c Δ H_c`` applied to ``Δ`` itself (Kivimäki's
  convention, used for SP, RSP and FE), ``H_c = I - J/n``.

All are pure, jittable and broadcast over leading batch axes.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = [
    "centering",
    "distance_to_kernel",
    "elementwise_log",
    "kernel_to_distance",
    "sigmoid_kernel",
]


def elementwise_log(kernel):
    """``ln K`` entrywise; entries ``<= 0`` (and NaN) become ``-inf``.

    Needs float64 in practice: for small parameters the entries of plain kernels span hundreds
    of orders of magnitude (spec §1.5.3).
    """
    kernel = jnp.asarray(kernel)
    positive = kernel > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, kernel, 1.0)), -jnp.inf)


def kernel_to_distance(kernel, power: float = 1.0):
    """``d_ij = (k_ii + k_jj - k_ij - k_ji) / 2``, then ``max(d, 0) ** power`` if power != 1.

    The power is applied to the clipped distance so that non-PSD (log) kernels, whose "distances"
    can be slightly negative, never produce NaN from a square root; with ``power = 1`` the raw
    (possibly negative) values are returned.
    """
    kernel = jnp.asarray(kernel)
    diag = jnp.diagonal(kernel, axis1=-2, axis2=-1)
    dist = 0.5 * (diag[..., :, None] + diag[..., None, :] - kernel - jnp.swapaxes(kernel, -1, -2))
    if power == 1.0:
        return dist
    return jnp.maximum(dist, 0.0) ** power


def centering(n: int, dtype=None):
    """``H_c = I - J/n``."""
    dtype = dtype or jnp.result_type(float)
    return jnp.eye(n, dtype=dtype) - jnp.full((n, n), 1.0 / n, dtype=dtype)


def distance_to_kernel(distance):
    """``K = -½ H_c Δ H_c`` (double centring of Δ itself, not of Δ∘Δ)."""
    distance = jnp.asarray(distance)
    row = distance.mean(axis=-1, keepdims=True)
    col = distance.mean(axis=-2, keepdims=True)
    total = distance.mean(axis=(-2, -1), keepdims=True)
    return -0.5 * (distance - row - col + total)


def sigmoid_kernel(kernel, alpha):
    """``1 / (1 + exp(-α K / σ))`` with σ the standard deviation of all n² entries of ``K``.

    The sigmoid transform of SCT/SCCT (Yen et al. 2007; pygkernels' ``SCT_H``/``SCCT_H``).
    """
    kernel = jnp.asarray(kernel)
    sigma = jnp.std(kernel, axis=(-2, -1), keepdims=True)
    return 1.0 / (1.0 + jnp.exp(-alpha * kernel / sigma))
