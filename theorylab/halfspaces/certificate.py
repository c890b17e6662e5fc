"""Band statistics, the degree-4 spectral certificate, the wedge bound and the error certificate.

This is the testing half of a tester-learner for homogeneous halfspaces, after Gollakota,
Klivans, Stavropoulos, Vasilyan, *An Efficient Tester-Learner for Halfspaces* (ICLR 2024;
"GKSV23"). GKSV23's recipe -- local, label-aware tests in a band around the candidate boundary,
stationarity of a smoothed loss, moment tests, then a bound on the disagreement wedge -- is made
fully explicit here (spec ``halfspaces.md`` section 3): every test feeds one number, the
*certificate*, which provably bounds ``err(w_hat) - opt`` on the test sample, whatever the
x-marginal is. Nothing is compared with a "Gaussian value"; the Gaussian only makes the
certificate small (completeness).

Statistics for one candidate ``w`` (unit) and bandwidth ``sigma`` on the test sample S2
(``BandStatistics``; z = w.x, x_perp = the coordinates of x in an orthonormal basis of w-perp,
mu_i = s(z_i / sigma) / sigma the band weights with s the logistic density; "mean" is over S2):

===============  ===========================================  =========================
field            definition                                   Gaussian value
===============  ===========================================  =========================
``tau``          ``|| mean mu y x_perp ||``  (stationarity)     O(sqrt(d / (sigma N)))
``m0``           ``mean mu``                                  ~ phi(0) = 0.399
``B``            ``mean mu |z|``                              ~ 2 ln 2 phi(0) sigma
``lam_min/max``  eigenvalues of ``Sigma_mu = mean mu x_perp x_perp^T``   ~ m0
``kappa_mu``     ``lam_max(F) + lam_max^2 / m0``, F below     ~ 3 m0
``a_lb``         ``lam_min^{3/2} / sqrt(kappa_mu)``           ~ m0 / sqrt(3)
``kappa4``       global 4th-moment bound (all directions)     ~ 3
===============  ===========================================  =========================

Degree-4 certificate (spec 3.4). With C = Sigma_mu / m0 and v_i = svec(x_perp x_perp^T - C)
(off-diagonal entries scaled by sqrt 2, so the Frobenius norm is kept), F = mean mu v v^T and for
every unit v in w-perp ``mean mu (v.x)^4 = mean mu <x x^T - C, v v^T>^2 + (v^T Sigma_mu v)^2 / m0
<= kappa_mu`` -- the simplest degree-4 sum-of-squares bound, tight at the Gaussian. It is computed
in one pass over row chunks as ``F = mean mu (s - c0)(s - c0)^T - m0 (c - c0)(c - c0)^T`` with
s = svec(x_perp x_perp^T), c = svec(C) and c0 = svec(I) (centring at the identity keeps float32
cancellation harmless), i.e. one weighted Gram matrix of N rows of dimension (d-1)d/2 per
candidate -- the GEMM that dominates the cost.

``kappa4`` deviates from the spec's per-candidate definition on purpose: it is computed once on the
full d-dimensional x (``lam_max(F_global) + lam_max(cov)^2``), so it bounds
``sup_{|v| = 1} mean (v.x)^4`` over *all* directions -- in particular over w-perp for every
candidate -- at the cost of one Gram matrix instead of one per candidate (same value, 3, at the
Gaussian).

Soundness lemma (spec 3.4; docstring of :func:`massart_t_hat`): for *any* unit w* with angle
theta to w, either |tan theta| <= t_hat or the stationarity inequality fails (the realised labels'
deviation from E[y | x] is covered by a one-direction Bernstein bound), so the disagreement
mass on S2 is at most ``wedge_bound(t_hat) = P_S[|z| <= t] + sum_{j=1}^{J-1} lam_max(M_j) / j^2 +
kappa4 / J^4`` (Chebyshev in bands of width t, the 4th-moment bound beyond band J). A relative
VC deviation bound (:func:`generalization_slack`) moves the wedge mass from S2 to the population.

Everything is jit-compiled, runs in row chunks (static ``chunk_size``; ``lax.scan``) so memory is
O(chunk_size d^2 + d^4) whatever N is (the (d-1)d/2-square Gram accumulator is the d^4), and maps
over candidates with ``lax.map``. Precision: the dtype of X (float32 by default; float16 is
upcast); every product runs at ``Precision.HIGHEST`` (no TF32 on GPUs), and the Gram
accumulations are centred, so float32 is adequate for N up to ~10^7 (checked against the float64
NumPy reference in the tests).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from theorylab.core.checks import check_array, check_choice, check_float, check_int
from theorylab.halfspaces.learner import band_weights  # mu = S'_sigma(z), shared with the learner

__all__ = [
    "DIAGNOSTIC_BAND",
    "BandStatistics",
    "Certificate",
    "GlobalMoments",
    "agnostic_t_hat",
    "band_statistics",
    "band_weights",
    "candidate_statistics",
    "certify",
    "default_chunk_size",
    "diagnostics",
    "generalization_slack",
    "global_moments",
    "massart_t_hat",
    "orthonormal_complement",
    "svec_size",
    "vc_dimension_wedges",
    "wedge_bound",
    "wedge_bounds",
]

#: A diagnostic "fails" when its ratio to the Gaussian value leaves this band (spec 3.7).
DIAGNOSTIC_BAND = (0.5, 2.0)


class BandStatistics(NamedTuple):
    """Statistics of one candidate (or a leading candidate axis) on the test sample."""

    tau: jax.Array  # || mean mu y x_perp ||
    m0: jax.Array  # mean mu
    B: jax.Array  # mean mu |w.x|
    band_mass: jax.Array  # P_S[|w.x| <= sigma]
    mean_mu_sq: jax.Array  # mean mu^2
    mean_mu_sq_norm: jax.Array  # mean mu^2 |x_perp|^2 (label-noise scale of tau)
    lam_min: jax.Array  # lambda_min(Sigma_mu)
    lam_max: jax.Array  # lambda_max(Sigma_mu)
    kappa_mu: jax.Array  # certified sup_v mean mu (v.x)^4
    a_lb: jax.Array  # lower bound on inf_v mean mu |v.x|
    kappa4: jax.Array  # certified sup_v mean (v.x)^4 (global)
    cov_lam_max: jax.Array  # lambda_max(mean x x^T) (global)
    err: jax.Array  # P_S[y != sign(w.x)]
    noise_lam_max: jax.Array  # lambda_max(mean mu^2 x_perp x_perp^T) (label-noise variance)
    max_mu_norm: jax.Array  # max_i mu_i |x_perp,i| (label-noise range)
    err_flipped: jax.Array  # P_S[y != sign(-w.x)] (differs from 1 - err on atoms at w.x = 0)
    zero_mass: jax.Array  # P_S[w.x = 0]


class GlobalMoments(NamedTuple):
    """Candidate-independent moments of the test sample."""

    kappa4: jax.Array
    cov_lam_max: jax.Array
    cov_lam_min: jax.Array


class Certificate(NamedTuple):
    """Certificates of a list of candidates (leading axis = candidate).

    Attributes:
      w: the candidates, each oriented by its test error (``w`` or ``-w``, whichever errs less).
      stats: the :class:`BandStatistics` of each candidate (``err`` of the oriented one).
      tau_eff: stationarity including the label-noise slack (Massart) or ``tau`` (agnostic).
      t_hat: certified bound on |tan angle(w, w*)| (``inf`` when the certificate is vacuous).
      num_bands: J, the number of bands used by the wedge bound.
      wedge: certified disagreement mass on the test sample, ``W(t_hat)`` (<= 1).
      gen_slack: the relative VC deviation from the test sample to the population.
      total: ``min(wedge + gen_slack, 1)`` -- the certified bound on ``err_D(w) - opt`` (Massart,
        or agnostic with :func:`agnostic_t_hat`); 1 where the orientation is not certified.
      sign_certified: the chosen orientation is provably the one near w* (otherwise the bound
        would hold for -w; see ``_sign_certified``).
      opt_hat: the agnostic noise level used (the smallest candidate error), 0 for Massart.
    """

    w: jax.Array
    stats: BandStatistics
    tau_eff: jax.Array
    t_hat: jax.Array
    num_bands: jax.Array
    wedge: jax.Array
    gen_slack: jax.Array
    total: jax.Array
    sign_certified: jax.Array
    opt_hat: jax.Array


# ---------------------------------------------------------------------------------------------
# small pieces


def orthonormal_complement(w):
    """An orthonormal basis of w-perp as the columns of a ``(d, d - 1)`` matrix (Householder).

    ``H = I - 2 v v^T / v^T v`` with ``v = w + sign(w_0) e_1`` maps e_1 to ``-sign(w_0) w``, so
    its other columns are orthonormal and orthogonal to the unit vector w.
    """
    d = w.shape[-1]
    sgn = jnp.where(w[0] >= 0, 1.0, -1.0).astype(w.dtype)
    v = w.at[0].add(sgn)
    H = jnp.eye(d, dtype=w.dtype) - 2.0 * jnp.outer(v, v) / jnp.dot(v, v)
    return H[:, 1:]


def svec_size(m: int) -> int:
    """Length of svec of an m x m symmetric matrix: m (m + 1) / 2."""
    return m * (m + 1) // 2


def _svec_indices(m: int):
    a, b = np.triu_indices(m)
    scale = np.where(a == b, 1.0, math.sqrt(2.0))
    return a, b, scale


def _svec_rows(P, a, b, scale):
    """svec(P_i P_i^T) for every row: (n, m) -> (n, m (m + 1) / 2)."""
    return P[:, a] * P[:, b] * scale


def _chunk_rows(X, y, chunk_size: int):
    """Pad the rows to a multiple of chunk_size and reshape to (num_chunks, chunk_size, ...)."""
    n, d = X.shape
    num_chunks = -(-n // chunk_size)
    pad = num_chunks * chunk_size - n
    mask = jnp.concatenate([jnp.ones(n, X.dtype), jnp.zeros(pad, X.dtype)])
    Xp = jnp.pad(X, ((0, pad), (0, 0)))
    yp = jnp.pad(y, (0, pad))
    return (
        Xp.reshape(num_chunks, chunk_size, d),
        yp.reshape(num_chunks, chunk_size),
        mask.reshape(num_chunks, chunk_size),
    )


def default_chunk_size(n: int, d: int) -> int:
    """Rows per chunk: 2048 (fewer for small n).

    Measured on a 2-core CPU (6 candidates, d = 10 / 30 / 50): 2048-row chunks ran the band Gram
    matrices at the speed of one monolithic GEMM of the same total size (the floor), while
    8192-32768-row chunks were up to 5x slower at d = 30 (the chunk of svec rows falls out of
    cache). ``chunk_size=`` overrides it (larger chunks suit GPUs).
    """
    del d
    return int(min(2048, max(256, 1 << math.ceil(math.log2(max(n, 1))))))


def _sign(z):
    return jnp.where(z >= 0, 1.0, -1.0).astype(z.dtype)


def _dot(a, b):
    """Matrix product at full float32 precision (no TF32 on GPUs: the certificate must bound the
    statistics of the exact w.x, and TF32 errors of ~1e-3 |x| exceed the smallest bandwidths)."""
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _lam_max(M):
    return jnp.linalg.eigvalsh(M)[..., -1]


# ---------------------------------------------------------------------------------------------
# global moments (one Gram matrix, shared by all candidates)


@partial(jax.jit, static_argnames=("chunk_size",))
def _global_moments(X, chunk_size: int):
    n, d = X.shape
    Xc, _, mc = _chunk_rows(X, jnp.zeros(n, X.dtype), chunk_size)
    a, b, scale = _svec_indices(d)
    c0 = jnp.asarray(np.where(a == b, 1.0, 0.0), X.dtype)
    scale = jnp.asarray(scale, X.dtype)
    D = a.size

    def body(acc, chunk):
        x, m = chunk
        xm = x * m[:, None]
        s = (_svec_rows(x, a, b, scale) - c0) * m[:, None]
        return (acc[0] + _dot(xm.T, x), acc[1] + _dot(s.T, s)), None

    init = (jnp.zeros((d, d), X.dtype), jnp.zeros((D, D), X.dtype))
    (cov, G), _ = jax.lax.scan(body, init, (Xc, mc))
    cov = cov / n
    cg = cov[a, b] * scale
    F = G / n - jnp.outer(cg - c0, cg - c0)
    lam = jnp.linalg.eigvalsh(cov)
    kappa4 = _lam_max(F) + lam[-1] ** 2
    return GlobalMoments(kappa4=kappa4, cov_lam_max=lam[-1], cov_lam_min=lam[0])


def global_moments(X, *, chunk_size: int | None = None) -> GlobalMoments:
    """kappa4 = lam_max(F_global) + lam_max(cov)^2 >= sup_{|v|=1} mean (v.x)^4, and cov's spectrum.

    F_global = mean (s - c)(s - c)^T with s = svec(x x^T), c = svec(mean x x^T). Cost: one Gram
    matrix of N rows of dimension d (d + 1) / 2.
    """
    X = check_array(X, "X", ndim=2, kind="float", min_size=1)
    chunk = chunk_size or default_chunk_size(X.shape[0], X.shape[1])
    return _global_moments(X, int(chunk))


# ---------------------------------------------------------------------------------------------
# per-candidate band statistics


def _band_statistics_core(Xc, yc, mc, n, w, sigma, moments: GlobalMoments):
    d = Xc.shape[-1]
    m = d - 1
    dtype = Xc.dtype
    Q = orthonormal_complement(w)
    a, b, scale = _svec_indices(m)
    c0 = jnp.asarray(np.where(a == b, 1.0, 0.0), dtype)
    scale = jnp.asarray(scale, dtype)
    D = a.size

    def body(carry, chunk):
        acc, peak = carry
        x, yy, mm = chunk
        z = _dot(x, w)
        P = _dot(x, Q)
        mu = band_weights(z, sigma) * mm
        norm2 = jnp.sum(P * P, axis=1)
        s = (_svec_rows(P, a, b, scale) - c0) * jnp.sqrt(mu)[:, None]
        upd = (
            jnp.sum(mu),
            jnp.sum(mu * jnp.abs(z)),
            jnp.sum(mm * (jnp.abs(z) <= sigma)),
            jnp.sum(mu * mu),
            jnp.sum(mu * mu * norm2),
            _dot(P.T, mu * yy),
            _dot((P * mu[:, None]).T, P),
            _dot((P * (mu * mu)[:, None]).T, P),
            _dot(s.T, s),
            jnp.sum(mm * (yy != _sign(z))),
            jnp.sum(mm * (yy != _sign(-z))),
            jnp.sum(mm * (z == 0)),
        )
        peak = jnp.maximum(peak, jnp.max(mu * jnp.sqrt(norm2)))
        return (jax.tree.map(jnp.add, acc, upd), peak), None

    zero = jnp.zeros((), dtype)
    mat = jnp.zeros((m, m), dtype)
    init = (zero, zero, zero, zero, zero, jnp.zeros(m, dtype), mat, mat,
            jnp.zeros((D, D), dtype), zero, zero, zero)
    (sums, peak), _ = jax.lax.scan(body, (init, zero), (Xc, yc, mc))
    (s_mu, s_b, s_band, s_mu2, s_mu2n, g, Sig, Sig2, G, s_err, s_err_neg,
     s_zero) = jax.tree.map(lambda t: t / n, sums)
    lam = jnp.linalg.eigvalsh(Sig)
    C = Sig / s_mu
    c = C[a, b] * scale
    F = G - s_mu * jnp.outer(c - c0, c - c0)
    kappa_mu = _lam_max(F) + lam[-1] ** 2 / s_mu
    lam_min = jnp.maximum(lam[0], 0.0)
    a_lb = lam_min**1.5 / jnp.sqrt(kappa_mu)
    return BandStatistics(
        tau=jnp.linalg.norm(g),
        m0=s_mu,
        B=s_b,
        band_mass=s_band,
        mean_mu_sq=s_mu2,
        mean_mu_sq_norm=s_mu2n,
        lam_min=lam[0],
        lam_max=lam[-1],
        kappa_mu=kappa_mu,
        a_lb=a_lb,
        kappa4=moments.kappa4,
        cov_lam_max=moments.cov_lam_max,
        err=s_err,
        noise_lam_max=_lam_max(Sig2),
        max_mu_norm=peak,
        err_flipped=s_err_neg,
        zero_mass=s_zero,
    )


@partial(jax.jit, static_argnames=("chunk_size",))
def _candidate_statistics(X, y, W, sigmas, chunk_size: int):
    n = X.shape[0]
    moments = _global_moments(X, chunk_size)
    Xc, yc, mc = _chunk_rows(X, y, chunk_size)
    return jax.lax.map(
        lambda ws: _band_statistics_core(Xc, yc, mc, n, ws[0], ws[1], moments), (W, sigmas)
    )


def _as_float32_or_wider(X):
    """float16 / bfloat16 inputs are upcast (eigvalsh and the Gram sums need >= float32)."""
    return X.astype(jnp.float32) if jnp.dtype(X.dtype).itemsize < 4 else X


def _check_candidates(X, y, W, sigmas):
    X = _as_float32_or_wider(check_array(X, "X", ndim=2, kind="float", finite=True, min_size=1))
    n, d = X.shape
    if d < 2:
        raise ValueError(f"X must have at least 2 features; got shape {X.shape}")
    y = check_array(y, "y", shape=(n,), kind="numeric", finite=True).astype(X.dtype)
    values = np.unique(np.asarray(y))
    if not set(values.tolist()) <= {-1.0, 1.0}:
        raise ValueError(f"y must contain labels in {{-1, +1}}; got values {values[:5]}")
    W = check_array(W, "W", ndim=2, kind="float", finite=True).astype(X.dtype)
    if W.shape[1] != d:
        raise ValueError(f"W must have shape (num_candidates, {d}); got {W.shape}")
    sigmas = check_array(sigmas, "sigmas", shape=(W.shape[0],), kind="float", finite=True)
    if np.any(np.asarray(sigmas) <= 0):
        raise ValueError("sigmas must be positive")
    norms = np.linalg.norm(np.asarray(W, np.float64), axis=1)
    if np.any(np.abs(norms - 1.0) > 1e-3):
        raise ValueError(f"rows of W must be unit vectors; got norms {norms}")
    return X, y, W / jnp.linalg.norm(W, axis=1, keepdims=True), sigmas.astype(X.dtype)


def candidate_statistics(X, y, W, sigmas, *, chunk_size: int | None = None) -> BandStatistics:
    """:class:`BandStatistics` of every candidate ``W[k]`` at bandwidth ``sigmas[k]``.

    Args:
      X: test sample, ``(N, d)`` float. y: labels in {-1, +1}, ``(N,)``.
      W: ``(S, d)`` unit candidate directions. sigmas: ``(S,)`` band widths.
      chunk_size: rows per chunk (static; default :func:`default_chunk_size`).

    Returns:
      BandStatistics with a leading axis S. Every statistic except ``err`` is invariant under
      ``w -> -w`` (mu is even, x_perp spans the same space, ``tau`` only changes its sign
      inside the norm), so the 2S candidates +-w share one evaluation.

    Cost: one Gram matrix of N rows of dimension (d-1)d/2 per candidate, plus one of dimension
    d(d+1)/2 for the global moments.
    """
    X, y, W, sigmas = _check_candidates(X, y, W, sigmas)
    chunk = chunk_size or default_chunk_size(X.shape[0], X.shape[1])
    return _candidate_statistics(X, y, W, sigmas, int(chunk))


def band_statistics(X, y, w, sigma, *, chunk_size: int | None = None) -> BandStatistics:
    """:class:`BandStatistics` of one candidate ``w`` (unit, ``(d,)``) at bandwidth ``sigma``."""
    w = check_array(w, "w", ndim=1, kind="float")
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    stats = candidate_statistics(
        X, y, w[None, :], jnp.asarray([sigma], w.dtype), chunk_size=chunk_size
    )
    return jax.tree.map(lambda t: t[0], stats)


# ---------------------------------------------------------------------------------------------
# angle bounds (the soundness lemma)


def massart_t_hat(stats: BandStatistics, *, eta, n, num_candidates: int, delta):
    """Certified bound on |tan angle(w, w*)| under Massart noise of rate <= eta (spec 3.4).

    Lemma: let w* be any unit vector with angle theta to w and v the unit vector of w-perp with
    ``w* = cos(theta) w + sin(theta) v``. If E[y | x] = (1 - 2 eta(x)) sign(w*.x) with
    eta(x) <= eta, the expected directional derivative ``mean mu E[y | x] (v.x)`` is

        >= (1 - 2 eta) mean mu |v.x| - (2 - 2 eta) |cot theta| B,

    because on the "bad" part of the band, where sign(w*.x) != sign(v.x), |v.x| < |cot theta| |w.x|
    (a point there loses its good term, at most (1 - 2 eta) mu |v.x|, and contributes at least
    -mu |v.x|). Hoelder gives mean mu |v.x| >= (mean mu (v.x)^2)^{3/2} / (mean mu (v.x)^4)^{1/2}
    >= a_lb, and the realised derivative ``g_v = v . mean mu y x_perp <= tau``.

    Label noise: ``g_v`` minus its expectation is ``mean_i mu_i xi_i (v.x_i)`` with independent,
    mean-zero ``xi_i = y_i - E[y_i | x_i]``, |xi_i| <= 2, Var xi_i = 4 eta(x)(1 - eta(x)) <=
    4 eta (1 - eta). v is fixed by w (learned on S1) and w*, so a one-sided scalar Bernstein
    bound applies; its variance proxy ``4 eta (1 - eta) v^T (mean mu^2 x_perp x_perp^T) v`` is
    bounded by ``noise_lam_max`` and its range by ``2 max_i mu_i |x_perp,i|``. With
    ``L = log(num_candidates / delta)`` (union over the candidates), with probability
    1 - delta the deviation is at most

        noise = sqrt(2 * 4 eta (1 - eta) noise_lam_max L / n) + (2 / 3) 2 max_mu_norm L / n

    (0 when eta = 0: the labels are then a deterministic function of x). Hence either
    ``|tan theta| <= t_hat = (2 - 2 eta) B / ((1 - 2 eta) a_lb - tau_eff)``, ``tau_eff = tau +
    noise``, or one of the probability-delta events failed. The bound holds for every
    x-marginal.

    Returns ``(t_hat, tau_eff)``; ``t_hat = inf`` when the denominator is <= 0.
    """
    L = math.log(num_candidates / delta)
    if eta > 0:
        var = 4.0 * eta * (1.0 - eta) * stats.noise_lam_max
        noise = jnp.sqrt(2.0 * var * L / n) + (4.0 / 3.0) * stats.max_mu_norm * L / n
    else:
        noise = jnp.zeros_like(stats.tau)
    tau_eff = stats.tau + noise
    denom = (1.0 - 2.0 * eta) * stats.a_lb - tau_eff
    t_hat = jnp.where(denom > 0, (2.0 - 2.0 * eta) * stats.B / jnp.maximum(denom, 1e-30), jnp.inf)
    return t_hat, tau_eff


def agnostic_t_hat(stats: BandStatistics, sigma, *, opt_hat):
    """Certified |tan angle(w, w*_S)| for the empirical optimum w*_S under arbitrary labels.

    On S2, y = sign(w*.x) (1 - 2 1{noisy}) exactly, with at most ``opt_hat`` noisy points (the
    smallest error among the candidates bounds opt_S). Cauchy-Schwarz and mu <= 1 / (4 sigma) bound
    the noisy part of g_v by 2 sqrt(opt_hat / (4 sigma)) sqrt(lam_max), so (spec 3.4, agnostic)

        t_hat = 2 B / (a_lb - tau - sqrt(opt_hat lam_max / sigma)).

    Deterministic on S2 (no label-noise slack). The provable constant in O(opt) is large (about
    500 opt for |tan theta|): the certificate is informative only for opt <~ 1e-4.
    """
    denom = stats.a_lb - stats.tau - jnp.sqrt(opt_hat * stats.lam_max / sigma)
    return jnp.where(denom > 0, 2.0 * stats.B / jnp.maximum(denom, 1e-30), jnp.inf)


# ---------------------------------------------------------------------------------------------
# wedge bound


def _num_bands(t, kappa4, j_max: int, tail: float):
    """J = the smallest J >= 1 with kappa4 / J^4 <= tail * t, capped at j_max."""
    J = jnp.ceil((kappa4 / (tail * t)) ** 0.25)
    return jnp.clip(jnp.nan_to_num(J, nan=j_max, posinf=j_max), 1, j_max).astype(jnp.int32)


def _wedge_core(Xc, mc, n, w, t, kappa4, j_max: int, tail: float):
    d = Xc.shape[-1]
    m = d - 1
    Q = orthonormal_complement(w)
    finite = jnp.isfinite(t) & (t > 0)
    t_safe = jnp.where(finite, t, 1.0)
    J = _num_bands(t_safe, kappa4, j_max, tail)

    def body(acc, chunk):
        x, mm = chunk
        z = jnp.abs(_dot(x, w))
        P = _dot(x, Q)
        central = z <= t_safe
        # band j holds j t < |z| <= (j + 1) t, j >= 1; one predicate decides central vs band
        band = jnp.where(central, 0.0, jnp.maximum(jnp.ceil(z / t_safe) - 1.0, 1.0))
        band = jnp.where(band < J, band, j_max)  # beyond band J-1: covered by kappa4 / J^4
        band = jnp.clip(band, 0, j_max).astype(jnp.int32)
        outer = (P[:, :, None] * P[:, None, :]).reshape(P.shape[0], m * m) * mm[:, None]
        Ms = jax.ops.segment_sum(outer, band, num_segments=j_max + 1)
        return (acc[0] + jnp.sum(mm * central), acc[1] + Ms), None

    init = (jnp.zeros((), Xc.dtype), jnp.zeros((j_max + 1, m * m), Xc.dtype))
    (mass0, Ms), _ = jax.lax.scan(body, init, (Xc, mc))
    Ms = Ms[1:j_max].reshape(j_max - 1, m, m) / n
    j = jnp.arange(1, j_max, dtype=Xc.dtype)
    lam = jnp.maximum(_lam_max(Ms), 0.0)
    bands = jnp.sum(jnp.where(j < J, lam / j**2, 0.0))
    W = mass0 / n + bands + kappa4 / J.astype(Xc.dtype) ** 4
    return jnp.where(finite, jnp.minimum(W, 1.0), 1.0), J


@partial(jax.jit, static_argnames=("chunk_size", "j_max", "tail"))
def _wedge_bounds(X, W, t, kappa4, chunk_size: int, j_max: int, tail: float):
    n = X.shape[0]
    Xc, _, mc = _chunk_rows(X, jnp.zeros(n, X.dtype), chunk_size)
    return jax.lax.map(
        lambda wt: _wedge_core(Xc, mc, n, wt[0], wt[1], kappa4, j_max, tail), (W, t)
    )


def wedge_bounds(X, W, t, kappa4, *, j_max: int = 64, tail: float = 0.05, chunk_size=None):
    """Certified disagreement mass ``W(t)`` for each candidate ``W[k]`` with slope bound ``t[k]``.

    For any unit w* at an acute angle theta to w with tan(theta) <= t (the orientation is
    certified separately, see ``_sign_certified``), every point where sign(w.x) != sign(w*.x) has
    |w.x| <= t |v.x| for a unit v in w-perp. Split by |w.x|: points with |w.x| <= t count fully;
    in band j (j t < |w.x| <= (j + 1) t) the point needs (v.x)^2 > j^2, at most lam_max(M_j) / j^2
    of mass by Chebyshev with ``M_j = mean x_perp x_perp^T 1{band j}``; beyond band J the point
    needs |v.x| > J, at most kappa4 / J^4 by Markov on the 4th moment. J is the smallest J with
    kappa4 / J^4 <= tail * t, capped at ``j_max`` (static; unused bands are masked). The bound
    holds for the empirical distribution of X whatever it is. Returns ``(wedge, J)``; ``t = inf``
    gives 1.
    """
    X = _as_float32_or_wider(check_array(X, "X", ndim=2, kind="float", finite=True, min_size=1))
    W = check_array(W, "W", ndim=2, kind="float", finite=True).astype(X.dtype)
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"W must have shape (num_candidates, {X.shape[1]}); got {W.shape}")
    norms = np.linalg.norm(np.asarray(W, np.float64), axis=1)
    if np.any(np.abs(norms - 1.0) > 1e-3):
        raise ValueError(f"rows of W must be unit vectors; got norms {norms}")
    t = check_array(t, "t", shape=(W.shape[0],), kind="float").astype(X.dtype)
    j_max = check_int(j_max, "j_max", min_value=2)
    tail = check_float(tail, "tail", min_value=0.0, min_inclusive=False)
    kappa4 = jnp.asarray(kappa4, X.dtype)
    chunk = chunk_size or default_chunk_size(X.shape[0], X.shape[1])
    return _wedge_bounds(X, W, t, kappa4, int(chunk), j_max, float(tail))


def wedge_bound(X, w, t, kappa4, **kwargs):
    """:func:`wedge_bounds` for one candidate; returns the scalar ``W(t)``."""
    w = check_array(w, "w", ndim=1, kind="float")
    wedge, _ = wedge_bounds(X, w[None, :], jnp.asarray([t], w.dtype), kappa4, **kwargs)
    return wedge[0]


# ---------------------------------------------------------------------------------------------
# generalisation


def vc_dimension_wedges(d: int) -> int:
    """A VC-dimension bound for disagreement regions {x : sign(w.x) != sign(u.x)} in R^d.

    Such a region is {x : x^T (w u^T) x < 0} (up to the measure-zero boundary), a sign condition
    on a quadratic form, so the class has VC dimension at most d (d + 1) / 2 (Dudley); it is
    also a Boolean combination of two homogeneous halfspaces (VC d), giving 2 * 2 d log2(6)
    (Blumer et al. 1989). The smaller of the two is used.
    """
    return int(min(d * (d + 1) // 2, math.ceil(4 * d * math.log2(6.0))))


def generalization_slack(wedge, *, n: int, d: int, delta: float, num_candidates: int):
    """Deviation slack moving the wedge mass and the candidates' errors from S2 to the population.

    With h = :func:`vc_dimension_wedges` (d) and ``L = h log(2 e n / h) + log(4 K / delta)``, the
    relative VC bound (Anthony & Shawe-Taylor 1993 form) ``P_D(A) <= P_S(A) + 2 sqrt(P_S(A) L / n)
    + 4 L / n`` holds for all wedges A simultaneously with probability 1 - delta / 2, and a
    Hoeffding term ``sqrt(log(4 K / delta) / (2 n))`` covers the errors of the K fixed candidates
    with probability 1 - delta / 2. The form is the spec's (its constants are an [estimate]);
    any textbook relative-deviation bound works.
    """
    n = check_int(n, "n", min_value=1)
    d = check_int(d, "d", min_value=1)
    delta = check_float(delta, "delta", min_value=0.0, max_value=1.0, min_inclusive=False,
                        max_inclusive=False)
    num_candidates = check_int(num_candidates, "num_candidates", min_value=1)
    h = vc_dimension_wedges(d)
    log_k = math.log(4.0 * num_candidates / delta)
    L = h * math.log(2.0 * math.e * n / h) + log_k
    return 2.0 * jnp.sqrt(wedge * L / n) + 4.0 * L / n + math.sqrt(log_k / (2.0 * n))


# ---------------------------------------------------------------------------------------------
# the certificate


def certify(
    X,
    y,
    W,
    sigmas,
    *,
    noise: str = "massart",
    eta: float = 0.0,
    delta: float = 0.05,
    num_candidates: int | None = None,
    j_max: int = 64,
    tail: float = 0.05,
    chunk_size: int | None = None,
) -> Certificate:
    """Certify every candidate ``W[k]`` (bandwidth ``sigmas[k]``) on the test sample (X, y).

    The orientation of each candidate is chosen by its error on (X, y) (w and -w share every
    statistic except the error); ``Certificate.w`` holds the oriented candidates and
    ``stats.err`` their errors.

    Args:
      X, y: the test sample S2 (independent of the candidates). y in {-1, +1}.
      W: ``(S, d)`` unit candidates; sigmas: ``(S,)``.
      noise: ``"massart"`` (needs ``eta``, the known bound on the flip rate) or ``"agnostic"``.
      eta: Massart rate bound in [0, 1/2).
      delta: failure probability of the whole certificate.
      num_candidates: K in the union bounds (default 2 S: both orientations).
      j_max, tail: wedge-bound parameters (:func:`wedge_bounds`).

    Returns:
      :class:`Certificate` with a leading axis S. With probability >= 1 - delta (over S2 and its
      labels), for every k at once and whatever the x-marginal is, ``err_D(w_k) - opt <=
      total[k]``, provided the noise assumption holds (Massart labels with rate <= eta; for
      ``"agnostic"`` the agnostic t_hat makes it an O(opt) + eps bound). ``total[k]`` is 1 when
      the orientation of candidate k is not certified. The failure budget is split delta/4
      (label noise), delta/2 (VC deviation of the wedges and Hoeffding for the candidates'
      errors) and delta/4 (the orientation; agnostic: the optimum's empirical error).
    """
    noise = check_choice(noise, "noise", ("massart", "agnostic"))
    eta = check_float(eta, "eta", min_value=0.0, max_value=0.5, max_inclusive=False)
    if noise == "agnostic" and eta != 0.0:
        raise ValueError("eta is only used with noise='massart'; got eta with noise='agnostic'")
    delta = check_float(delta, "delta", min_value=0.0, max_value=1.0, min_inclusive=False,
                        max_inclusive=False)
    X, y, W, sigmas = _check_candidates(X, y, W, sigmas)
    n, d = X.shape
    K = int(num_candidates or 2 * W.shape[0])
    chunk = chunk_size or default_chunk_size(n, d)
    stats = _candidate_statistics(X, y, W, sigmas, int(chunk))
    # orientation: w and -w share every statistic but the error
    flip = stats.err_flipped < stats.err
    W = jnp.where(flip[:, None], -W, W)
    stats = stats._replace(err=jnp.where(flip, stats.err_flipped, stats.err),
                           err_flipped=jnp.where(flip, stats.err, stats.err_flipped))
    # failure budget: label noise delta/4, VC + candidate errors delta/2, orientation or the
    # population optimum's error delta/4
    if noise == "massart":
        t_hat, tau_eff = massart_t_hat(stats, eta=eta, n=n, num_candidates=K, delta=delta / 4)
        opt_hat = jnp.zeros_like(stats.err)
        extra = 0.0
    else:
        opt_hat = jnp.broadcast_to(jnp.min(stats.err), stats.err.shape)
        t_hat = agnostic_t_hat(stats, sigmas, opt_hat=opt_hat)
        tau_eff = stats.tau
        extra = math.sqrt(math.log(4.0 / delta) / (2.0 * n))  # opt_S <= opt_D + extra
    wedge, J = wedge_bounds(X, W, t_hat, stats.kappa4[0], j_max=j_max, tail=tail,
                            chunk_size=int(chunk))
    slack = generalization_slack(wedge, n=n, d=d, delta=delta / 2, num_candidates=K) + extra
    signed = _sign_certified(stats.err, stats.zero_mass, wedge, noise, eta, n, delta / 4)
    total = jnp.where(signed, jnp.minimum(wedge + slack, 1.0), 1.0)
    return Certificate(
        w=W,
        stats=stats,
        tau_eff=tau_eff,
        t_hat=t_hat,
        num_bands=J,
        wedge=wedge,
        gen_slack=slack,
        total=total,
        sign_certified=signed,
        opt_hat=opt_hat,
    )


def _sign_certified(err, zero_mass, wedge, noise, eta, n, delta):
    """Whether the chosen orientation is provably the one near w* (not -w*).

    Suppose the candidate w, oriented so that err_S(w) <= err_S(-w), were the wrong one: -w within
    the certified wedge W of w*. Then err_S(-w) <= e* + W, with e* = err_S(w*), and since every
    point with w.x != 0 is misclassified by exactly one of +-w, err_S(w) >= 1 - p0 - err_S(-w)
    (p0 = P_S[w.x = 0]). Together: e* >= (1 - p0 - 2W) / 2. Massart: e* <= eta +
    sqrt(log(1 / delta) / (2n)) with probability 1 - delta (Hoeffding for the fixed w*), so the
    orientation is certified when W + p0 / 2 < 1/2 - eta - that term. Agnostic (w* the empirical
    optimum, e* <= err_S(w)): the wrong orientation forces err_S(w) >= (1 - p0 - W) / 2.
    """
    if noise == "agnostic":
        return err < (1.0 - zero_mass - wedge) / 2.0
    hoeffding = math.sqrt(math.log(1.0 / delta) / (2.0 * n))
    return wedge + zero_mass / 2.0 < 0.5 - eta - hoeffding


def diagnostics(stats: BandStatistics, sigmas) -> dict[str, np.ndarray]:
    """Each statistic divided by its Gaussian value (spec 3.7); ratios outside [0.5, 2] "fail".

    Returns a dict of float arrays (one entry per candidate) plus ``"fails"``: for each candidate
    the list of diagnostic names outside :data:`DIAGNOSTIC_BAND`. These explain *why* a
    certificate is large; acceptance never uses them.
    """
    sig = np.asarray(sigmas, np.float64)
    gauss_band = 2.0 * np.asarray(ndtr(jnp.asarray(sig))) - 1.0
    out = {
        "band_mass_ratio": np.asarray(stats.band_mass) / gauss_band,
        "lam_min_ratio": np.asarray(stats.lam_min) / np.asarray(stats.m0),
        "lam_max_ratio": np.asarray(stats.lam_max) / np.asarray(stats.m0),
        "kappa_mu_ratio": np.asarray(stats.kappa_mu) / (3.0 * np.asarray(stats.m0)),
        "kappa4_ratio": np.asarray(stats.kappa4) / 3.0,
        "cov_lam_max": np.asarray(stats.cov_lam_max),
    }
    lo, hi = DIAGNOSTIC_BAND
    names = [k for k in out if k != "cov_lam_max"]
    fails = []
    for i in range(sig.size):
        bad = [k for k in names if not lo <= out[k][i] <= hi]
        if not lo <= out["cov_lam_max"][i] <= hi:
            bad.append("cov_lam_max")
        fails.append(bad)
    out["fails"] = fails
    return out
