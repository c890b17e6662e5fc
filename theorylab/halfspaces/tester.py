"""The tester-learner: learn candidates on one half, certify them on the other, accept or reject.

Testable learning (Rubinfeld & Vasilyan 2023) of homogeneous halfspaces after Gollakota, Klivans,
Stavropoulos, Vasilyan, *An Efficient Tester-Learner for Halfspaces* (ICLR 2024), in the explicit
form of spec ``halfspaces.md`` section 3:

1. split the sample at random into S1 (learning) and S2 (testing), N1 = N2 = N / 2;
2. learn one candidate per bandwidth sigma of a grid on S1 (smoothed-sigmoid-loss Riemannian
   gradient descent, :mod:`~theorylab.halfspaces.learner`); the candidate list is the S learned
   directions and their negations (K = 2S);
3. certify every candidate on S2 (:func:`~theorylab.halfspaces.certificate.certify`): a number,
   computed from the data, that bounds ``err_D(w) - opt`` with probability >= 1 - delta whatever
   the x-marginal (soundness; Massart labels with rate <= eta assumed, as in GKSV23);
4. **accept** the candidate with the smallest certificate when it is <= epsilon (and its
   orientation is certified), else **reject** with reasons taken from the diagnostics.

Completeness: at the Gaussian the statistics concentrate and the certificate is about 20 sigma
(Massart, eta = 0.2), so the grid is centred on ``sigma* = epsilon / (40 + 10 / (1 - 2 eta))``
(spec 3.5). Whether a given N suffices is predicted by :func:`predicted_certificate` from the
Gaussian population values with measured finite-sample inflation; when the data are rejected and N
is below :func:`required_samples`, the reasons say so, with the N that would suffice.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ndtr as _ndtr

from theorylab.core.checks import (
    check_array,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_key,
    describe,
)
from theorylab.halfspaces import certificate as _cert
from theorylab.halfspaces import learner as _learner

__all__ = [
    "Accept",
    "Reject",
    "TesterLearner",
    "gaussian_band_moments",
    "predicted_certificate",
    "required_samples",
    "sigma_grid",
    "tester_learner",
]


@dataclass(frozen=True)
class Accept:
    """The tester accepted: ``w`` with ``err_D(w) <= opt + certificate`` (w.p. >= 1 - delta).

    Attributes:
      w: the unit halfspace normal (``(d,)`` numpy array).
      certificate: the certified bound on the excess error (<= epsilon when ``certified``).
      diagnostics: every statistic of every candidate, the sigma grid, the split sizes.
      certified: False only for ``acceptance="diagnostics"`` (report mode: accepted because the
        diagnostics look Gaussian, *no* certified bound).
    """

    w: np.ndarray
    certificate: float
    diagnostics: dict[str, Any] = field(repr=False)
    certified: bool = True

    accepted = True


@dataclass(frozen=True)
class Reject:
    """The tester rejected the data; ``reasons`` explain why (statistic vs its Gaussian value)."""

    reasons: list[str]
    diagnostics: dict[str, Any] = field(repr=False)

    accepted = False
    w = None
    certificate = None


# ---------------------------------------------------------------------------------------------
# Gaussian population values and sample-size predictions


@functools.lru_cache(maxsize=256)
def _gaussian_band_moments(sigma: float) -> tuple[float, float, float]:
    u = np.linspace(-40.0, 40.0, 160001)
    du = u[1] - u[0]
    s = 0.25 / np.cosh(u / 2.0) ** 2  # logistic density
    phi = np.exp(-0.5 * (sigma * u) ** 2) / math.sqrt(2 * math.pi)
    # substitute z = sigma u: mu dz = s(u) du
    m0 = float(np.sum(s * phi) * du)
    B = float(np.sum(s * phi * sigma * np.abs(u)) * du)
    mu2 = float(np.sum(s * s * phi) * du / sigma)
    return m0, B, mu2


def gaussian_band_moments(sigma: float) -> dict[str, float]:
    """Population band statistics at N(0, I): m0 = E mu, B = E mu |z|, E mu^2 (quadrature).

    mu = s(z / sigma) / sigma with s the logistic density; for small sigma m0 -> phi(0) = 0.399,
    B -> 2 ln 2 phi(0) sigma and E mu^2 -> phi(0) / (6 sigma).
    """
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    m0, B, mu2 = _gaussian_band_moments(sigma)
    return {"m0": m0, "B": B, "mean_mu_sq": mu2}


def _gaussian_wedge(t: float, kappa4: float = 3.0, j_max: int = 64, tail: float = 0.05) -> float:
    if not math.isfinite(t) or t <= 0:
        return 1.0
    J = int(min(max(math.ceil((kappa4 / (tail * t)) ** 0.25), 1), j_max))
    W = 2.0 * _ndtr(t) - 1.0
    for j in range(1, J):
        W += 2.0 * (_ndtr((j + 1) * t) - _ndtr(j * t)) / j**2
    return float(min(W + kappa4 / J**4, 1.0))


def predicted_certificate(
    d: int, n2: int, sigma: float, *, eta: float = 0.0, delta: float = 0.05,
    num_candidates: int = 12,
) -> float:
    """Predicted Massart certificate + slack at N(0, I) for a stationary candidate (a forecast).

    Uses the population band moments (:func:`gaussian_band_moments`) with finite-sample
    inflation calibrated on Gaussian runs (d = 10-30): ``kappa_mu / (3 m0) ~ 1 + 1.35 d /
    sqrt(n2 sigma)``, ``lam_min / m0 ~ 1 - sqrt(d / (n2 sigma))``, ``tau ~ 1.5 sqrt((d - 1)
    E mu^2 / n2)`` (label noise of S2 plus the learner's residual angle), and the Bernstein
    label-noise term of :func:`~theorylab.halfspaces.certificate.massart_t_hat` with
    ``noise_lam_max ~ E mu^2 (1 + sqrt(d / (n2 sigma)))`` and ``max_mu_norm ~ (sqrt(d) + 3) /
    (4 sigma)``. It only drives
    :func:`required_samples` and the "insufficient samples" message; acceptance always uses the
    computed certificate.
    """
    d = check_int(d, "d", min_value=2)
    n2 = check_int(n2, "n2", min_value=1)
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    eta = check_float(eta, "eta", min_value=0.0, max_value=0.5, max_inclusive=False)
    delta = _check_delta(delta)
    num_candidates = check_int(num_candidates, "num_candidates", min_value=1)
    g = gaussian_band_moments(sigma)
    m0 = g["m0"]
    lam_min = m0 * max(1.0 - math.sqrt(d / (n2 * sigma)), 0.0)
    kappa_mu = 3.0 * m0 * (1.0 + 1.35 * d / math.sqrt(n2 * sigma))
    a_lb = lam_min**1.5 / math.sqrt(kappa_mu)
    tau = 1.5 * math.sqrt((d - 1) * g["mean_mu_sq"] / n2)
    noise = 0.0
    if eta > 0:
        L = math.log(num_candidates / (delta / 4))
        lam = g["mean_mu_sq"] * (1.0 + math.sqrt(d / (n2 * sigma)))
        peak = (math.sqrt(d) + 3.0) / (4.0 * sigma)
        noise = math.sqrt(8 * eta * (1 - eta) * lam * L / n2) + (4.0 / 3.0) * peak * L / n2
    tau_eff = tau + noise
    denom = (1 - 2 * eta) * a_lb - tau_eff
    if denom <= 0:
        return 1.0
    t_hat = (2 - 2 * eta) * g["B"] / denom
    W = _gaussian_wedge(t_hat)
    slack = float(_cert.generalization_slack(
        W, n=n2, d=d, delta=delta / 2, num_candidates=num_candidates))
    return float(min(W + slack, 1.0))


def sigma_grid(epsilon: float, *, noise: str = "massart", eta: float = 0.0,
               num_sigmas: int | None = None) -> np.ndarray:
    """The bandwidth grid (spec 3.7).

    Massart: ``sigma* 2^{1-k}``, k = 0..num_sigmas-1 (default 6), with ``sigma* = epsilon /
    (40 + 10 / (1 - 2 eta))``, the width whose Gaussian certificate is about epsilon / 2 -- larger
    samples can use the smaller widths. Agnostic: ``0.4 * 2^{-k}``, k = 0..num_sigmas-1 (default 9).
    """
    epsilon = _check_epsilon(epsilon)
    noise = check_choice(noise, "noise", ("massart", "agnostic"))
    eta = check_float(eta, "eta", min_value=0.0, max_value=0.5, max_inclusive=False)
    if num_sigmas is not None:
        num_sigmas = check_int(num_sigmas, "num_sigmas", min_value=1)
    if noise == "massart":
        k = num_sigmas or 6
        star = epsilon / (40.0 + 10.0 / (1.0 - 2.0 * eta))
        return star * 2.0 ** (1 - np.arange(k))
    k = num_sigmas or 9
    return 0.4 * 2.0 ** (-np.arange(k, dtype=np.float64))


def required_samples(
    d: int, epsilon: float, *, delta: float = 0.05, eta: float = 0.0, num_sigmas: int = 6,
    sigmas=None,
) -> int:
    """Predicted total N (both halves) for which Gaussian Massart data would be accepted.

    The smallest N = 2 n2 (to 2 significant digits) such that the best sigma of the grid has
    :func:`predicted_certificate` <= 0.9 epsilon. A forecast from population values (see
    :func:`predicted_certificate`); returns a huge number when no N up to 1e12 suffices.
    """
    d = check_int(d, "d", min_value=2)
    epsilon = _check_epsilon(epsilon)
    delta = _check_delta(delta)
    eta = check_float(eta, "eta", min_value=0.0, max_value=0.5, max_inclusive=False)
    if sigmas is not None:
        sigmas = check_array(sigmas, "sigmas", ndim=1, kind="real", finite=True, min_size=1,
                             to_jax=False)
        if np.any(sigmas <= 0):
            raise ValueError(f"sigmas must be positive; got {describe(sigmas)}")
    grid = np.asarray(sigmas if sigmas is not None else
                      sigma_grid(epsilon, eta=eta, num_sigmas=num_sigmas), np.float64)
    K = 2 * grid.size

    def ok(n2):
        return min(predicted_certificate(d, int(n2), float(s), eta=eta, delta=delta,
                                         num_candidates=K) for s in grid) <= 0.9 * epsilon

    lo, hi = 100.0, 100.0
    while not ok(hi):
        lo, hi = hi, hi * 2
        if hi > 5e11:
            return int(1e12)
    for _ in range(30):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
        if hi / lo < 1.01:
            break
    n = 2.0 * hi
    digits = 10 ** max(math.floor(math.log10(n)) - 1, 0)
    return int(math.ceil(n / digits) * digits)


# ---------------------------------------------------------------------------------------------
# input validation


def _check_epsilon(epsilon):
    return check_float(epsilon, "epsilon", min_value=0.0, max_value=1.0, min_inclusive=False,
                       max_inclusive=False)


def _check_delta(delta):
    return check_float(delta, "delta", min_value=0.0, max_value=1.0, min_inclusive=False,
                       max_inclusive=False)


def _check_data(X, y, *, labels01: bool):
    X = check_array(X, "X", ndim=2, kind="real", to_jax=False)
    if X.dtype.kind != "f" or X.dtype.itemsize < 4:
        X = X.astype(np.float32)
    if not np.all(np.isfinite(X)):
        raise ValueError("X must contain only finite values (found NaN or inf)")
    n, d = X.shape
    if d < 2:
        raise ValueError(f"X must have at least 2 features; got shape {X.shape}")
    if d > n:
        raise ValueError(f"X has more features than samples (d={d} > N={n}); need N >= d")
    spread = X.max(axis=0) - X.min(axis=0)
    if np.any(spread == 0):
        cols = np.flatnonzero(spread == 0).tolist()
        raise ValueError(f"X has constant features (columns {cols}); drop them first")
    y = check_array(y, "y", shape=(n,), kind="numeric", to_jax=False)
    values = set(np.unique(y).tolist())
    if labels01:
        if not values <= {0, 1}:
            raise ValueError(f"y must be in {{0, 1}} with labels01=True; got values {values}")
        y = 2.0 * y - 1.0
    elif not values <= {-1, 1}:
        hint = " (pass labels01=True for {0, 1} labels)" if values <= {0, 1} else ""
        raise ValueError(f"y must be in {{-1, +1}}; got values {sorted(values)[:5]}{hint}")
    return X, y.astype(X.dtype)


# ---------------------------------------------------------------------------------------------
# the tester-learner


def _explain(diag: dict[str, Any], cert: _cert.Certificate, k: int, eta: float, noise: str,
             sigma: float):
    """Human-readable reasons for candidate k's certificate (diag: the diagnostic ratios)."""
    reasons = []
    stats = jax.tree.map(lambda t: float(np.asarray(t)[k]), cert.stats)
    t_hat = float(np.asarray(cert.t_hat)[k])
    if not math.isfinite(t_hat):
        tau_eff = float(np.asarray(cert.tau_eff)[k])
        if noise == "massart":
            reasons.append(
                f"angle not certifiable: anti-concentration bound (1 - 2 eta) a_lb = "
                f"{(1 - 2 * eta) * stats.a_lb:.4g} <= stationarity tau_eff = {tau_eff:.4g}")
        else:
            opt_term = math.sqrt(float(np.asarray(cert.opt_hat)[k]) * stats.lam_max / sigma)
            reasons.append(
                f"angle not certifiable: a_lb - tau - sqrt(opt lam_max / sigma) = "
                f"{stats.a_lb:.4g} - {tau_eff:.4g} - {opt_term:.4g} <= 0")
    meaning = {
        "band_mass_ratio": "mass near the boundary vs the Gaussian's",
        "lam_min_ratio": "band covariance lambda_min / m0",
        "lam_max_ratio": "band covariance lambda_max / m0",
        "kappa_mu_ratio": "band 4th moment kappa_mu / (3 m0)",
        "kappa4_ratio": "global 4th moment kappa4 / 3",
        "cov_lam_max": "global covariance lambda_max",
    }
    for name in diag["fails"][k]:
        reasons.append(f"{meaning[name]} = {float(diag[name][k]):.3g} (outside [0.5, 2])")
    return reasons


def tester_learner(
    key,
    X,
    y,
    epsilon: float,
    delta: float = 0.05,
    *,
    noise: str = "massart",
    eta: float | None = None,
    sigmas=None,
    num_sigmas: int | None = None,
    steps: int = 600,
    labels01: bool = False,
    acceptance: str = "certificate",
    check_sample_size: bool = True,
    chunk_size: int | None = None,
) -> Accept | Reject:
    """Testable learning of a homogeneous halfspace: ``Accept(w, certificate)`` or ``Reject``.

    Args:
      key: PRNG key (the random split S1 / S2).
      X: ``(N, d)`` features; y: ``(N,)`` labels in {-1, +1} ({0, 1} with ``labels01=True``).
      epsilon: target excess error (accept only when the certificate is <= epsilon).
      delta: failure probability of soundness (and the target for completeness).
      noise: ``"massart"`` (certificate of ``err <= opt + epsilon`` assuming Massart labels with
        rate <= eta; GKSV23 do not test the noise assumption either) or ``"agnostic"``
        (certificate of the O(opt) + epsilon form, informative only for opt <~ 1e-4; see
        :func:`~theorylab.halfspaces.certificate.agnostic_t_hat`).
      eta: the Massart rate bound, in [0, 1/2) (required for ``noise="massart"``).
      sigmas: bandwidth grid (default :func:`sigma_grid`); num_sigmas: its size.
      steps: gradient steps of the learner.
      acceptance: ``"certificate"`` (default; accept iff certificate <= epsilon) or
        ``"diagnostics"`` (report mode, spec 7.9: accept the lowest-error candidate when its
        diagnostics are within [0.5, 2] of the Gaussian values; ``Accept.certified=False``).
      check_sample_size: add "insufficient samples" (with the N that would suffice at the
        Gaussian, :func:`required_samples`) to the reasons of a rejection when N is below it;
        when N is below the absolute floor (the generalisation slack alone exceeds epsilon) the
        data are rejected without learning.

    Returns:
      :class:`Accept` or :class:`Reject`; both carry ``diagnostics`` with every statistic of
      every candidate.

    Raises:
      ValueError / TypeError: bad labels, NaN/inf or constant features, d > N, eta >= 1/2,
        epsilon or delta outside (0, 1).
    """
    key = check_key(key)
    epsilon = _check_epsilon(epsilon)
    delta = _check_delta(delta)
    noise = check_choice(noise, "noise", ("massart", "agnostic"))
    acceptance = check_choice(acceptance, "acceptance", ("certificate", "diagnostics"))
    labels01 = check_bool(labels01, "labels01")
    steps = check_int(steps, "steps", min_value=1)
    if noise == "massart":
        if eta is None:
            raise ValueError("eta (the Massart noise-rate bound) is required for noise='massart'")
        eta = check_float(eta, "eta", min_value=0.0, max_value=0.5, max_inclusive=False)
    elif eta is not None:
        raise ValueError("eta is only used with noise='massart'; got eta with noise='agnostic'")
    X, y = _check_data(X, y, labels01=labels01)
    n, d = X.shape
    if sigmas is None:
        sigmas = sigma_grid(epsilon, noise=noise, eta=eta or 0.0, num_sigmas=num_sigmas)
    sigmas = check_array(sigmas, "sigmas", ndim=1, kind="real", finite=True, min_size=1,
                         to_jax=False).astype(np.float64)
    if np.any(sigmas <= 0):
        raise ValueError(f"sigmas must be positive; got {describe(sigmas)}")
    K = 2 * sigmas.size
    n1 = n // 2
    n2 = n - n1
    diag: dict[str, Any] = {"n1": n1, "n2": n2, "sigmas": sigmas, "epsilon": epsilon,
                            "delta": delta, "noise": noise, "eta": eta}
    floor = float(_cert.generalization_slack(0.0, n=n2, d=d, delta=delta / 2, num_candidates=K))

    def needed():
        if not (check_sample_size and noise == "massart"):
            return None
        diag["required_samples"] = required_samples(d, epsilon, delta=delta, eta=eta,
                                                    sigmas=sigmas)
        return diag["required_samples"]

    if check_sample_size and floor >= epsilon:
        msg = (f"insufficient samples: N={n} gives a generalisation slack of {floor:.3g} >= "
               f"epsilon={epsilon} before any certificate")
        need = needed()
        if need is not None:
            msg += f"; about N={need} would suffice at the Gaussian"
        return Reject([msg], diag)

    perm = np.asarray(jax.random.permutation(key, n))
    X1, y1 = jnp.asarray(X[perm[:n1]]), jnp.asarray(y[perm[:n1]])
    X2, y2 = jnp.asarray(X[perm[n1:]]), jnp.asarray(y[perm[n1:]])
    sig = jnp.asarray(sigmas, X.dtype)
    learned = _learner.learn_candidates(X1, y1, sig, steps=steps)
    W = learned.w
    if not bool(jnp.all(jnp.isfinite(W))):
        raise FloatingPointError("the learner produced non-finite candidates")
    cert = _cert.certify(X2, y2, W, sig, noise=noise, eta=eta or 0.0, delta=delta,
                         num_candidates=K, chunk_size=chunk_size)
    W = np.asarray(cert.w)
    ratios = _cert.diagnostics(cert.stats, sigmas)
    total = np.asarray(cert.total, np.float64)
    diag.update({
        "candidates": W,
        "certificate": total,
        "wedge": np.asarray(cert.wedge),
        "gen_slack": np.asarray(cert.gen_slack),
        "t_hat": np.asarray(cert.t_hat),
        "tau_eff": np.asarray(cert.tau_eff),
        "num_bands": np.asarray(cert.num_bands),
        "sign_certified": np.asarray(cert.sign_certified),
        "err_test": np.asarray(cert.stats.err),
        "stats": {k: np.asarray(v) for k, v in cert.stats._asdict().items()},
        "ratios": ratios,
        "learner_grad_norm": np.asarray(getattr(learned, "grad_norm", np.nan)),
    })
    if acceptance == "diagnostics":
        k = int(np.argmin(diag["err_test"]))
        diag["chosen"] = k
        if not ratios["fails"][k]:
            return Accept(W[k], float(total[k]), diag, certified=False)
        return Reject(_explain(ratios, cert, k, eta or 0.0, noise, sigmas[k]), diag)
    passing = (total <= epsilon) & diag["sign_certified"]
    if passing.any():
        k = int(np.argmin(np.where(passing, total, np.inf)))
        diag["chosen"] = k
        return Accept(W[k], float(total[k]), diag)
    k = int(np.argmin(total))
    reasons = [f"smallest certificate {total[k]:.4g} > epsilon = {epsilon} "
               f"(sigma = {sigmas[k]:.3g}: wedge {diag['wedge'][k]:.3g} + slack "
               f"{diag['gen_slack'][k]:.3g})"]
    if not diag["sign_certified"][k] and diag["wedge"][k] < 0.5:
        reasons.append("orientation of the best candidate not certified (error too close to 1/2)")
    reasons += _explain(ratios, cert, k, eta or 0.0, noise, sigmas[k])
    need = needed()
    if need is not None and n < need:
        reasons.append(f"insufficient samples: N={n}; about N={need} would suffice at the "
                       "Gaussian for this epsilon, delta and eta")
    return Reject(reasons, diag)


@dataclass
class TesterLearner:
    """scikit-learn-like wrapper around :func:`tester_learner`.

    ``fit(X, y)`` sets ``result_``, ``accepted_``, ``coef_`` (the unit normal, None when
    rejected) and ``certificate_``. ``predict`` / ``decision_function`` / ``score`` raise
    ``RuntimeError`` after a rejection (a rejected fit has no hypothesis to trust).
    """

    epsilon: float = 0.1
    delta: float = 0.05
    noise: str = "massart"
    eta: float | None = None
    labels01: bool = False
    random_state: int = 0
    steps: int = 600

    def fit(self, X, y) -> TesterLearner:
        if self.noise == "massart" and self.eta is None:
            raise ValueError("eta (the Massart noise-rate bound) is required for noise='massart'; "
                             "pass TesterLearner(eta=...), e.g. eta=0.0 for noiseless labels")
        eta = self.eta if self.noise == "massart" else None
        self.result_ = tester_learner(
            jax.random.key(self.random_state), X, y, self.epsilon, self.delta,
            noise=self.noise, eta=eta, labels01=self.labels01, steps=self.steps,
        )
        self.accepted_ = self.result_.accepted
        self.coef_ = self.result_.w
        self.certificate_ = self.result_.certificate
        return self

    def _require(self):
        if not hasattr(self, "result_"):
            raise RuntimeError("TesterLearner is not fitted; call fit(X, y) first")
        if not self.accepted_:
            raise RuntimeError("the tester rejected the data: " + "; ".join(self.result_.reasons))

    def decision_function(self, X):
        self._require()
        X = check_array(X, "X", ndim=2, kind="real", finite=True, to_jax=False)
        if X.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"X must have {self.coef_.shape[0]} features; got {X.shape[1]}")
        return X @ self.coef_

    def predict(self, X):
        z = self.decision_function(X)
        out = np.where(z >= 0, 1, -1)
        return (out + 1) // 2 if self.labels01 else out

    def score(self, X, y):
        return float(np.mean(self.predict(X) == np.asarray(y)))
