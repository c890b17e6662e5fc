"""Plain float64 NumPy reference of the halfspace tester-learner statistics (spec §3.3–§3.4).

This module is written from the formulas only, independently of the JAX implementation in
:mod:`theorylab.halfspaces.certificate` and :mod:`theorylab.halfspaces.learner`. It serves two
purposes: the tests compare the JAX statistics with it, and ``benchmarks/halfspaces.py`` uses
it as the "straightforward NumPy implementation" peer. Everything is computed in float64,
in row chunks, with ordinary NumPy/BLAS calls (no JAX).

Definitions, for a test sample ``(X, y)`` (``X`` of shape ``(N, d)``, labels ``±1``), a
candidate unit vector ``w`` and a bandwidth ``σ``:

- ``z = X @ w``; ``Q`` an orthonormal basis of ``w⊥`` (``d × (d−1)``, from a QR of
  ``[w, I]``); ``P = X @ Q`` (the coordinates of ``x_⊥``). Every statistic below is
  invariant under the choice of ``Q``.
- Band weights ``μ_i = s(z_i/σ)/σ`` with the logistic density ``s(u) = e^{−u}/(1+e^{−u})²``.
- ``tau = ‖mean_i μ_i y_i P_i‖``; ``m0 = mean μ``; ``B = mean μ_i |z_i|``;
  ``band_mass = mean 1{|z| ≤ σ}``; ``mean_mu_sq = mean μ²``;
  ``mean_mu_sq_norm = mean μ_i² ‖P_i‖²`` (the label-noise scale of ``tau``).
- ``Σ_μ = mean μ_i P_i P_iᵀ``; ``lam_min``, ``lam_max`` its extreme eigenvalues.
- ``C = Σ_μ / m0``; ``v_i = svec(P_i P_iᵀ − C)`` (:func:`np_svec`: the ``d−1`` diagonal
  entries, then the off-diagonal entries ``a < b`` in ``numpy.triu_indices`` order times
  ``√2``, length ``D = (d−1)d/2``); ``F = mean μ_i v_i v_iᵀ``;
  ``kappa_mu = λ_max(F) + lam_max² / m0``. For every unit ``v ⊥ w``,
  ``mean μ (v·x)⁴ = mean μ (vᵀ(xxᵀ−C)v)² + (vᵀΣ_μ v)²/m0 ≤ kappa_mu``.
- ``a_lb = lam_min^{3/2} / sqrt(kappa_mu)`` (``lam_min`` clipped at 0).
- ``cov = mean P_i P_iᵀ`` (unweighted), ``F_g = mean v'_i v'_iᵀ`` with
  ``v'_i = svec(P_i P_iᵀ − cov)``; ``kappa4 = λ_max(F_g) + λ_max(cov)²`` (bounds
  ``sup_{v ⊥ w} mean (v·x)⁴``); ``cov_lam_max = λ_max(cov)``.
- ``err = mean(y ≠ sign(z))`` with ``sign(0) = +1``.

Global variant (``global_kappa4=True``, what :mod:`theorylab.halfspaces.certificate` computes):
``kappa4`` and ``cov_lam_max`` are replaced by the candidate-independent
:func:`np_global_moments` of the full ``d``-dimensional ``x`` (``cov = mean x xᵀ``,
``kappa4 = λ_max(mean svec(xxᵀ − cov) svec(xxᵀ − cov)ᵀ) + λ_max(cov)²``), which bounds
``sup_{‖v‖=1} mean (v·x)⁴`` over all directions and is ``≥`` the per-candidate value (the
``w⊥`` quantities are compressions of the full ones). Both equal 3 at the Gaussian.

Wedge bound (:func:`np_wedge_bound`): ``J`` is the smallest integer ``≥ 1`` with
``kappa4/J⁴ ≤ tail·t``, capped at ``j_max``; ``M_j = mean P_i P_iᵀ 1{j t < |z_i| ≤ (j+1) t}``;
``W(t) = mean 1{|z| ≤ t} + Σ_{j=1}^{J−1} λ_max(M_j)/j² + kappa4/J⁴``, clipped at 1
(``W(∞) = 1``). If ``|tan angle(w, w*)| ≤ t`` then ``W(t)`` bounds the fraction of points where
``sign(w·x) ≠ sign(w*·x)``.

Learner (:func:`np_learn`, spec §3.3): warm start ``normalise(mean y x)``, then ``steps``
full-batch steps ``w ← normalise(w + lr_t P_{w⊥} mean μ y x)`` with
``lr_t = max(lr0·decay^t, σ/2)``.

Cost: ``O(N d²)`` for the band/spectral statistics, ``O(N d⁴)`` for the two degree-4
matrices (one GEMM ``Vᵀ(μ V)`` per row chunk, ``V`` of shape ``(chunk, D)``), plus two
``eigvalsh`` of ``D × D`` matrices per candidate.
"""

from __future__ import annotations

import math

import numpy as np

from theorylab.core.checks import check_array, check_float, check_int

__all__ = [
    "STAT_NAMES",
    "logistic_density",
    "np_band_statistics",
    "np_candidate_statistics",
    "np_global_moments",
    "np_learn",
    "np_orthonormal_complement",
    "np_svec",
    "np_tester_pipeline",
    "np_wedge_bound",
]

STAT_NAMES = (
    "tau",
    "m0",
    "B",
    "band_mass",
    "mean_mu_sq",
    "mean_mu_sq_norm",
    "lam_min",
    "lam_max",
    "kappa_mu",
    "a_lb",
    "kappa4",
    "cov_lam_max",
    "err",
)

_SQRT2 = math.sqrt(2.0)


# --------------------------------------------------------------------------- small pieces


def logistic_density(u):
    """``s(u) = e^{−u}/(1+e^{−u})²`` (even; evaluated with ``e^{−|u|}`` so it never overflows)."""
    e = np.exp(-np.abs(np.asarray(u, dtype=np.float64)))
    return e / (1.0 + e) ** 2


def np_svec(M):
    """``svec`` of symmetric matrices ``(..., k, k) -> (..., k(k+1)/2)``.

    Lists the ``k`` diagonal entries, then the entries ``a < b`` (``numpy.triu_indices(k, 1)``
    order) times ``√2``, so that ``svec(A)·svec(B) = tr(AB)`` and ``‖svec(M)‖ = ‖M‖_F``.
    """
    M = np.asarray(M, dtype=np.float64)
    if M.ndim < 2 or M.shape[-1] != M.shape[-2]:
        raise ValueError(f"M must be a (..., k, k) array; got shape {M.shape}")
    k = M.shape[-1]
    ia, ib = np.triu_indices(k, 1)
    diag = np.diagonal(M, axis1=-2, axis2=-1)
    return np.concatenate([diag, _SQRT2 * M[..., ia, ib]], axis=-1)


def _svec_rows(P, C):
    """Rows ``svec(P_i P_iᵀ − C)`` for ``P`` of shape ``(n, k)``: an ``(n, k(k+1)/2)`` array."""
    k = P.shape[1]
    ia, ib = np.triu_indices(k, 1)
    diag = P * P - np.diag(C)
    off = _SQRT2 * (P[:, ia] * P[:, ib] - C[ia, ib])
    return np.concatenate([diag, off], axis=1)


def np_orthonormal_complement(w):
    """An orthonormal basis of ``w⊥`` as a ``(d, d−1)`` matrix (QR of ``[w/‖w‖, I]``)."""
    w = np.asarray(w, dtype=np.float64)
    norm = np.linalg.norm(w)
    if w.ndim != 1 or w.shape[0] < 2 or not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"w must be a finite nonzero vector of length >= 2; got shape {w.shape}")
    d = w.shape[0]
    Q, _ = np.linalg.qr(np.column_stack([w / norm, np.eye(d)]))
    return Q[:, 1:]


def _chunk_rows(n, width, chunk_size):
    if chunk_size is None:
        # ~4M float64 entries per (chunk, D) block (32 MB): large enough for BLAS throughput.
        chunk_size = int(min(20_000, max(256, 4_000_000 // max(width, 1))))
    return [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


def _sign(z):
    return np.where(z >= 0, 1.0, -1.0)


def _check_data(X, y, *, min_d=2):
    X = check_array(X, "X", ndim=2, kind="real", finite=True, min_size=1, to_jax=False)
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    if d < min_d:
        raise ValueError(f"X must have at least {min_d} columns; got shape {X.shape}")
    if n < 1:
        raise ValueError(f"X must have at least one row; got shape {X.shape}")
    y = check_array(y, "y", shape=(n,), kind="real", finite=True, to_jax=False)
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.abs(y) == 1.0):
        raise ValueError("y must contain only the labels -1 and +1")
    return X, y


def _check_w(w, d, name="w"):
    w = check_array(w, name, shape=(d,), kind="real", finite=True, to_jax=False)
    w = np.asarray(w, dtype=np.float64)
    norm = np.linalg.norm(w)
    if norm == 0.0:
        raise ValueError(f"{name} must be a nonzero vector; got the zero vector")
    return w / norm


def _check_chunk(chunk_size):
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size", min_value=1)
    return chunk_size


def _lam_max(M):
    return float(np.linalg.eigvalsh(M)[-1])


# --------------------------------------------------------------------------- statistics


def np_global_moments(X, *, chunk_size=None):
    """Candidate-independent moments of the full ``d``-dimensional sample.

    ``cov = mean x xᵀ``; ``F = mean svec(xxᵀ − cov) svec(xxᵀ − cov)ᵀ``;
    ``kappa4 = λ_max(F) + λ_max(cov)² ≥ sup_{‖v‖=1} mean (v·x)⁴``.

    Returns:
      dict with float keys ``kappa4``, ``cov_lam_max``, ``cov_lam_min``.
    """
    X = check_array(X, "X", ndim=2, kind="real", finite=True, min_size=1, to_jax=False)
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    chunk_size = _check_chunk(chunk_size)
    chunks = _chunk_rows(n, d * (d + 1) // 2, chunk_size)
    cov = sum(X[lo:hi].T @ X[lo:hi] for lo, hi in chunks) / n
    cov = (cov + cov.T) / 2
    F = np.zeros((d * (d + 1) // 2,) * 2)
    for lo, hi in chunks:
        V = _svec_rows(X[lo:hi], cov)
        F += V.T @ V
    eig = np.linalg.eigvalsh(cov)
    kappa4 = _lam_max((F + F.T) / (2 * n)) + eig[-1] ** 2
    return {"kappa4": float(kappa4), "cov_lam_max": float(eig[-1]), "cov_lam_min": float(eig[0])}


def np_band_statistics(X, y, w, sigma, *, chunk_size=None, global_moments=None):
    """All band statistics of one candidate ``(w, σ)`` on the sample ``(X, y)``.

    Args:
      X: ``(N, d)`` test sample, ``d ≥ 2`` (converted to float64).
      y: ``(N,)`` labels in ``{−1, +1}``.
      w: ``(d,)`` candidate direction (normalised here).
      sigma: bandwidth ``σ > 0``.
      chunk_size: rows per chunk for the degree-4 matrices (default: about 4M entries per
        ``(chunk, D)`` block, at most 20,000 rows).
      global_moments: ``None`` (default): ``kappa4`` and ``cov_lam_max`` are the per-candidate
        ``w⊥`` quantities of the plan (one extra ``D × D`` Gram matrix). Otherwise the dict of
        :func:`np_global_moments` of ``X``, whose values are used instead (the convention of
        :mod:`theorylab.halfspaces.certificate`).

    Returns:
      dict with the float keys :data:`STAT_NAMES` (definitions in the module docstring).
    """
    X, y = _check_data(X, y)
    n, d = X.shape
    w = _check_w(w, d)
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    chunk_size = _check_chunk(chunk_size)
    if global_moments is not None and not (
        isinstance(global_moments, dict) and {"kappa4", "cov_lam_max"} <= set(global_moments)
    ):
        raise TypeError("global_moments must be None or the dict returned by np_global_moments")
    Q = np_orthonormal_complement(w)
    k = d - 1
    D = k * (k + 1) // 2
    chunks = _chunk_rows(n, D, chunk_size)

    # pass 1: scalar, vector and (d-1) x (d-1) statistics
    m0 = B = band = mu_sq = mu_sq_norm = mistakes = 0.0
    grad = np.zeros(k)
    sigma_mu = np.zeros((k, k))
    cov = np.zeros((k, k))
    for lo, hi in chunks:
        Xc = X[lo:hi]
        z = Xc @ w
        P = Xc @ Q
        mu = logistic_density(z / sigma) / sigma
        m0 += mu.sum()
        B += (mu * np.abs(z)).sum()
        band += np.count_nonzero(np.abs(z) <= sigma)
        mu_sq += (mu * mu).sum()
        mu_sq_norm += (mu * mu * (P * P).sum(axis=1)).sum()
        mistakes += np.count_nonzero(y[lo:hi] != _sign(z))
        grad += P.T @ (mu * y[lo:hi])
        sigma_mu += P.T @ (P * mu[:, None])
        cov += P.T @ P
    m0, B, band, mu_sq, err = m0 / n, B / n, band / n, mu_sq / n, mistakes / n
    mu_sq_norm /= n
    grad /= n
    sigma_mu = (sigma_mu + sigma_mu.T) / (2 * n)
    cov = (cov + cov.T) / (2 * n)
    eig_mu = np.linalg.eigvalsh(sigma_mu)
    lam_min, lam_max = float(eig_mu[0]), float(eig_mu[-1])

    # pass 2: the degree-4 matrices F (band-weighted) and F_g (unweighted, w-perp)
    C = sigma_mu / m0 if m0 > 0 else np.zeros((k, k))
    F = np.zeros((D, D))
    F_g = np.zeros((D, D)) if global_moments is None else None
    for lo, hi in chunks:
        Xc = X[lo:hi]
        z = Xc @ w
        P = Xc @ Q
        mu = logistic_density(z / sigma) / sigma
        V = _svec_rows(P, C)
        F += V.T @ (V * mu[:, None])
        if F_g is not None:
            Vg = _svec_rows(P, cov)
            F_g += Vg.T @ Vg
    F = (F + F.T) / (2 * n)
    kappa_mu = _lam_max(F) + (lam_max**2 / m0 if m0 > 0 else 0.0)
    if F_g is not None:
        cov_lam_max = _lam_max(cov)
        kappa4 = _lam_max((F_g + F_g.T) / (2 * n)) + cov_lam_max**2
    else:
        cov_lam_max = float(global_moments["cov_lam_max"])
        kappa4 = float(global_moments["kappa4"])
    a_lb = max(lam_min, 0.0) ** 1.5 / math.sqrt(kappa_mu) if kappa_mu > 0 else 0.0
    return {
        "tau": float(np.linalg.norm(grad)),
        "m0": float(m0),
        "B": float(B),
        "band_mass": float(band),
        "mean_mu_sq": float(mu_sq),
        "mean_mu_sq_norm": float(mu_sq_norm),
        "lam_min": lam_min,
        "lam_max": lam_max,
        "kappa_mu": float(kappa_mu),
        "a_lb": float(a_lb),
        "kappa4": float(kappa4),
        "cov_lam_max": float(cov_lam_max),
        "err": float(err),
    }


def np_candidate_statistics(
    X, y, W, sigmas, *, chunk_size=None, reuse_antipodal=True, global_kappa4=False
):
    """:func:`np_band_statistics` for each candidate ``(W[s], sigmas[s])``.

    Args:
      X, y: the test sample.
      W: ``(S, d)`` candidate directions.
      sigmas: ``(S,)`` bandwidths.
      chunk_size: see :func:`np_band_statistics`.
      reuse_antipodal: when a candidate is exactly ``−W[r]`` with the same σ as an earlier
        candidate ``r``, copy its statistics and recompute only ``err``. This is exact: every
        statistic except ``err`` is invariant under ``w → −w`` (``μ`` is even, ``w⊥`` is the
        same subspace, ``tau`` is a norm).
      global_kappa4: compute :func:`np_global_moments` once and use its ``kappa4`` and
        ``cov_lam_max`` for every candidate (the convention of
        :mod:`theorylab.halfspaces.certificate`); default: the per-candidate ``w⊥`` values.

    Returns:
      dict ``name -> (S,)`` float64 array for every name in :data:`STAT_NAMES`.
    """
    X, y = _check_data(X, y)
    d = X.shape[1]
    W = check_array(W, "W", ndim=2, shape=(None, d), kind="real", finite=True, to_jax=False)
    W = np.asarray(W, dtype=np.float64)
    S = W.shape[0]
    sigmas = check_array(sigmas, "sigmas", shape=(S,), kind="real", finite=True, to_jax=False)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if np.any(sigmas <= 0):
        raise ValueError(f"sigmas must be positive; got {sigmas}")
    moments = np_global_moments(X, chunk_size=chunk_size) if global_kappa4 else None
    out = {name: np.zeros(S) for name in STAT_NAMES}
    done: list[int] = []
    for s in range(S):
        source = None
        if reuse_antipodal:
            for r in done:
                if sigmas[r] == sigmas[s] and np.array_equal(W[r], -W[s]):
                    source = r
                    break
        if source is None:
            stats = np_band_statistics(
                X, y, W[s], sigmas[s], chunk_size=chunk_size, global_moments=moments
            )
            done.append(s)
        else:
            stats = {name: out[name][source] for name in STAT_NAMES}
            w = W[s] / np.linalg.norm(W[s])
            stats["err"] = float(np.mean(y != _sign(X @ w)))
        for name in STAT_NAMES:
            out[name][s] = stats[name]
    return out


def np_wedge_bound(X, w, t, kappa4, *, j_max=64, tail=0.05):
    """Certified bound ``W(t)`` on the wedge mass ``P_S[sign(w·x) ≠ sign(w*·x)]``, valid for
    every unit ``w*`` with ``|tan angle(w, w*)| ≤ t`` (definition in the module docstring).

    Args:
      X: ``(N, d)`` sample.
      w: ``(d,)`` direction (normalised here).
      t: band width ``t ≥ 0`` (``inf`` gives 1).
      kappa4: the global fourth-moment bound of :func:`np_band_statistics` (any upper bound
        on ``sup_{v ⊥ w} mean (v·x)⁴`` keeps the result sound).
      j_max: cap on the number of bands ``J``.
      tail: ``J`` is the smallest integer with ``kappa4/J⁴ ≤ tail·t``.

    Returns:
      ``min(W(t), 1)`` as a float.
    """
    X = check_array(X, "X", ndim=2, kind="real", finite=True, min_size=1, to_jax=False)
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    if d < 2:
        raise ValueError(f"X must have at least 2 columns; got shape {X.shape}")
    w = _check_w(w, d)
    t = check_float(t, "t", min_value=0.0, allow_inf=True)
    kappa4 = check_float(kappa4, "kappa4", min_value=0.0)
    j_max = check_int(j_max, "j_max", min_value=1)
    tail = check_float(tail, "tail", min_value=0.0, min_inclusive=False)
    if math.isinf(t):
        return 1.0
    J = 1
    while J < j_max and kappa4 / J**4 > tail * t:
        J += 1
    Q = np_orthonormal_complement(w)
    absz = np.abs(X @ w)
    P = X @ Q
    total = float(np.mean(absz <= t))
    if t > 0:
        band = np.ceil(absz / t) - 1.0  # j with j t < |z| <= (j+1) t
        for j in range(1, J):
            Pj = P[band == j]
            if Pj.shape[0]:
                total += _lam_max(Pj.T @ Pj / n) / j**2
    total += kappa4 / J**4
    return float(min(total, 1.0))


# --------------------------------------------------------------------------- learner + pipeline


def np_learn(X, y, sigma, *, steps=600, lr0=0.5, decay=0.97, w0=None):
    """Full-batch Riemannian gradient ascent on ``−L_σ`` (spec §3.3), in float64.

    ``w ← normalise(mean y x)`` (or ``w0``), then for ``t = 0..steps−1``:
    ``g = P_{w⊥} mean_i s(w·x_i/σ)/σ · y_i x_i``, ``w ← normalise(w + lr_t g)``,
    ``lr_t = max(lr0·decay^t, σ/2)``. Returns the final unit vector ``(d,)``.
    """
    X, y = _check_data(X, y)
    n, d = X.shape
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    steps = check_int(steps, "steps", min_value=0)
    lr0 = check_float(lr0, "lr0", min_value=0.0)
    decay = check_float(decay, "decay", min_value=0.0, max_value=1.0)
    if w0 is None:
        w = X.T @ y / n
        if np.linalg.norm(w) == 0.0:
            raise ValueError("mean(y x) is zero, so the warm start is undefined; pass w0")
        w = w / np.linalg.norm(w)
    else:
        w = _check_w(w0, d, "w0")
    for t in range(steps):
        z = X @ w
        mu = logistic_density(z / sigma) / sigma
        g = X.T @ (mu * y) / n
        g -= (g @ w) * w
        lr = max(lr0 * decay**t, sigma / 2)
        w = w + lr * g
        w /= np.linalg.norm(w)
    return w


def np_tester_pipeline(
    X1,
    y1,
    X2,
    y2,
    sigmas,
    *,
    steps=600,
    lr0=0.5,
    decay=0.97,
    chunk_size=None,
    global_kappa4=False,
):
    """Learn on ``S1`` for each σ, then compute every statistic on ``S2`` for ``±w_σ``.

    Candidate order: ``[w_σ1, …, w_σS, −w_σ1, …, −w_σS]`` (so ``2S`` candidates).
    ``global_kappa4`` is passed to :func:`np_candidate_statistics`.

    Returns:
      dict with ``"W"`` ``(2S, d)``, ``"sigmas"`` ``(2S,)`` and ``"stats"`` (name -> ``(2S,)``
      array, see :func:`np_candidate_statistics`; the antipodal candidates reuse their
      partner's statistics except ``err``).
    """
    X1, y1 = _check_data(X1, y1)
    X2, y2 = _check_data(X2, y2)
    if X2.shape[1] != X1.shape[1]:
        raise ValueError(
            f"X2 must have the same number of columns as X1 ({X1.shape[1]}); got {X2.shape}"
        )
    sigmas = check_array(
        sigmas, "sigmas", ndim=1, kind="real", finite=True, min_size=1, to_jax=False
    )
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if np.any(sigmas <= 0):
        raise ValueError(f"sigmas must be positive; got {sigmas}")
    learned = np.stack([np_learn(X1, y1, s, steps=steps, lr0=lr0, decay=decay) for s in sigmas])
    W = np.concatenate([learned, -learned])
    all_sigmas = np.concatenate([sigmas, sigmas])
    stats = np_candidate_statistics(
        X2, y2, W, all_sigmas, chunk_size=chunk_size, global_kappa4=global_kappa4
    )
    return {"W": W, "sigmas": all_sigmas, "stats": stats}
