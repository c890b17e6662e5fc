"""Independent reference implementations in NumPy (float64): no code shared with the filters.

* :func:`kalman_filter` — exact log-likelihood, filtering means and covariances of a
  linear-Gaussian state-space model (the Ẑ-unbiasedness and filtering-accuracy reference).
* :func:`hmm_forward` — the forward algorithm: ``p(x_t, y_{0:t})`` for a discrete HMM.
* :func:`hmm_path_joint` — brute force over all ``K^T`` paths: ``p(x_{0:T−1}, y_{0:T−1})``.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

__all__ = ["KalmanResult", "hmm_forward", "hmm_path_joint", "kalman_filter"]


class KalmanResult(NamedTuple):
    """``log_likelihood`` (scalar), ``means [T, d]``, ``covariances [T, d, d]`` and the
    per-step predictive log-densities ``log_increments [T]``."""

    log_likelihood: float
    means: np.ndarray
    covariances: np.ndarray
    log_increments: np.ndarray


def kalman_filter(observations, A, Q, H, R, m0, P0) -> KalmanResult:
    """Kalman filter for ``x_0 ~ N(m0,P0)``, ``x_t = A x_{t−1} + N(0,Q)``, ``y_t = H x_t + N(0,R)``.

    ``y_0`` observes ``x_0`` (the convention of :func:`theorylab.inference.linear_gaussian`).
    Float64 NumPy, Joseph-free textbook form with symmetric re-projection.
    """
    ys = np.asarray(observations, dtype=float)
    m0 = np.atleast_1d(np.asarray(m0, dtype=float))
    d = m0.shape[0]

    def mat(a, shape):
        a = np.asarray(a, dtype=float)
        if a.ndim == 0:
            a = a.reshape(1, 1)
        if a.ndim == 1 and shape[0] == shape[1]:
            a = np.diag(a)
        return a.reshape(shape)

    A, Q, P0 = (mat(a, (d, d)) for a in (A, Q, P0))
    H = np.asarray(H, dtype=float)
    H = H.reshape(1, d) if H.ndim < 2 else H
    dy = H.shape[0]
    R = mat(R, (dy, dy))
    ys = ys.reshape(ys.shape[0], dy)
    m, P = m0, P0
    means, covs, incs = [], [], []
    for t, y in enumerate(ys):
        if t > 0:
            m = A @ m
            P = A @ P @ A.T + Q
        S = H @ P @ H.T + R
        resid = y - H @ m
        _, logdet = np.linalg.slogdet(2 * np.pi * S)
        incs.append(-0.5 * (logdet + resid @ np.linalg.solve(S, resid)))
        K = np.linalg.solve(S, H @ P).T
        m = m + K @ resid
        P = P - K @ S @ K.T
        P = 0.5 * (P + P.T)
        means.append(m)
        covs.append(P)
    incs = np.asarray(incs)
    return KalmanResult(float(incs.sum()), np.asarray(means), np.asarray(covs), incs)


def hmm_forward(init_probs, transition, emission, observations) -> np.ndarray:
    """Forward algorithm: ``alpha[t, k] = p(x_t = k, y_{0:t})`` (float64, unscaled)."""
    init_probs = np.asarray(init_probs, float)
    transition = np.asarray(transition, float)
    emission = np.asarray(emission, float)
    ys = np.asarray(observations, int)
    alpha = np.zeros((len(ys), init_probs.shape[0]))
    alpha[0] = init_probs * emission[:, ys[0]]
    for t in range(1, len(ys)):
        alpha[t] = (alpha[t - 1] @ transition) * emission[:, ys[t]]
    return alpha


def hmm_path_joint(init_probs, transition, emission, observations) -> np.ndarray:
    """Brute force ``p(x_{0:T−1}, y_{0:T−1})`` as an array of shape ``(K,)*T``."""
    init_probs = np.asarray(init_probs, float)
    transition = np.asarray(transition, float)
    emission = np.asarray(emission, float)
    ys = np.asarray(observations, int)
    k, t = init_probs.shape[0], len(ys)
    out = np.zeros((k,) * t)
    for path in itertools.product(range(k), repeat=t):
        p = init_probs[path[0]] * emission[path[0], ys[0]]
        for s in range(1, t):
            p *= transition[path[s - 1], path[s]] * emission[path[s], ys[s]]
        out[path] = p
    return out
