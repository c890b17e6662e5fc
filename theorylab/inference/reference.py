"""Independent reference implementations in NumPy (float64): no code shared with the filters.

* :func:`kalman_filter` — exact log-likelihood, filtering means and covariances of a
  linear-Gaussian state-space model (the Ẑ-unbiasedness and filtering-accuracy reference).
* :func:`kalman_smoother` — Rauch–Tung–Striebel smoothing moments, the full joint smoothing
  covariance and the backward gains; :func:`ffbs_sample` draws exact smoothing trajectories
  (forward filter, backward sample — the particle Gibbs invariance reference).
* :func:`geometric_bernoulli_posterior` — exact posterior of the trans-dimensional example
  program (:func:`theorylab.inference.traced.geometric_bernoulli_program`) by enumeration.
* :func:`hmm_forward` — the forward algorithm: ``p(x_t, y_{0:t})`` for a discrete HMM.
* :func:`hmm_path_joint` — brute force over all ``K^T`` paths: ``p(x_{0:T−1}, y_{0:T−1})``.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

__all__ = [
    "KalmanResult",
    "SmootherResult",
    "ffbs_sample",
    "geometric_bernoulli_posterior",
    "hmm_forward",
    "hmm_path_joint",
    "kalman_filter",
    "kalman_smoother",
]


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


class SmootherResult(NamedTuple):
    """RTS smoother output: ``means [T, d]``, ``covariances [T, d, d]``, the joint smoothing
    covariance ``joint_covariance [T·d, T·d]`` of ``x_{0:T−1} | y``, and the filter moments and
    backward gains ``J_t = P_t Aᵀ (A P_t Aᵀ + Q)⁻¹`` used by :func:`ffbs_sample`."""

    means: np.ndarray
    covariances: np.ndarray
    joint_covariance: np.ndarray
    filter_means: np.ndarray
    filter_covariances: np.ndarray
    gains: np.ndarray
    A: np.ndarray
    Q: np.ndarray


def kalman_smoother(observations, A, Q, H, R, m0, P0) -> SmootherResult:
    """Rauch–Tung–Striebel smoother (same model and conventions as :func:`kalman_filter`).

    ``Cov(x_s, x_t | y) = J_s J_{s+1} ⋯ J_{t−1} P^s_t`` for ``s < t`` gives the joint covariance.
    """
    filt = kalman_filter(observations, A, Q, H, R, m0, P0)
    mf, Pf = filt.means, filt.covariances
    T, d = mf.shape
    A = np.asarray(A, float).reshape(d, d) if np.ndim(A) >= 1 else np.eye(d) * float(A)
    Qm = np.asarray(Q, float)
    Qm = np.diag(Qm) if Qm.ndim == 1 else Qm.reshape(d, d)
    gains = np.zeros((max(T - 1, 0), d, d))
    ms, Ps = mf.copy(), Pf.copy()
    for t in range(T - 2, -1, -1):
        pred = A @ Pf[t] @ A.T + Qm
        J = np.linalg.solve(pred, A @ Pf[t]).T
        gains[t] = J
        ms[t] = mf[t] + J @ (ms[t + 1] - A @ mf[t])
        Ps[t] = Pf[t] + J @ (Ps[t + 1] - pred) @ J.T
        Ps[t] = 0.5 * (Ps[t] + Ps[t].T)
    joint = np.zeros((T * d, T * d))
    for t in range(T):
        joint[t * d : (t + 1) * d, t * d : (t + 1) * d] = Ps[t]
        block = Ps[t]
        for s in range(t - 1, -1, -1):
            block = gains[s] @ block  # Cov(x_s, x_t) = J_s Cov(x_{s+1}, x_t)
            joint[s * d : (s + 1) * d, t * d : (t + 1) * d] = block
            joint[t * d : (t + 1) * d, s * d : (s + 1) * d] = block.T
    return SmootherResult(ms, Ps, joint, mf, Pf, gains, A, Qm)


def ffbs_sample(rng: np.random.Generator, smoother: SmootherResult, num_samples: int):
    """Exact draws ``x_{0:T−1} ~ p(· | y)`` by forward filtering, backward sampling.

    ``x_{T−1} ~ N(m_{T−1}, P_{T−1})``; ``x_t | x_{t+1} ~ N(m_t + J_t (x_{t+1} − A m_t),
    P_t − J_t A P_t)`` with filter moments ``m_t, P_t``. Returns ``[num_samples, T, d]``.
    """
    mf, Pf, J, A = smoother.filter_means, smoother.filter_covariances, smoother.gains, smoother.A
    T, d = mf.shape
    out = np.zeros((num_samples, T, d))
    chol = np.linalg.cholesky(Pf[T - 1])
    out[:, T - 1] = mf[T - 1] + rng.standard_normal((num_samples, d)) @ chol.T
    for t in range(T - 2, -1, -1):
        cov = Pf[t] - J[t] @ A @ Pf[t]
        chol = np.linalg.cholesky(0.5 * (cov + cov.T))
        mean = mf[t] + (out[:, t + 1] - A @ mf[t]) @ J[t].T
        out[:, t] = mean + rng.standard_normal((num_samples, d)) @ chol.T
    return out


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


def geometric_bernoulli_posterior(nmax: int, obs: float = 3.0, sd: float = 0.5) -> np.ndarray:
    """Exact posterior table ``post[n, s]`` (float64, shape ``(nmax+1, nmax+1)``) of
    ``n ~ Geometric(½)`` capped at ``nmax`` (``P(n) = 2^{−n}`` for ``n < nmax``,
    ``P(nmax) = 2^{−(nmax−1)}``), ``s | n ~ Binomial(n, ½)``, factor ``N(obs | s, sd)``."""
    import math

    if int(nmax) != nmax or nmax < 1:
        raise ValueError(f"nmax must be an integer >= 1; got {nmax!r}")
    if not sd > 0:
        raise ValueError(f"sd must be > 0; got {sd!r}")
    nmax = int(nmax)
    table = np.zeros((nmax + 1, nmax + 1))
    for n in range(1, nmax + 1):
        prior_n = 0.5**n if n < nmax else 0.5 ** (nmax - 1)
        for s in range(n + 1):
            lik = np.exp(-0.5 * ((obs - s) / sd) ** 2)
            table[n, s] = prior_n * math.comb(n, s) * 0.5**n * lik
    return table / table.sum()
