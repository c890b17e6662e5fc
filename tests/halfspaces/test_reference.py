"""Tests for theorylab.halfspaces.reference (the float64 NumPy reference of the statistics).

Independent checks: closed forms and 1-D quadrature at the Gaussian (spec §3.1, §3.4, §7.3),
brute-force maximisation of the fourth moments over unit directions ``v ⊥ w`` (spec §7.12),
the empirical wedge mass for explicit ``w*`` (soundness of ``W``), exact identities at
``d = 2``, and invariances (rotation, duplication, chunking, ``w → −w``). All data come from
fixed seeds, so every assertion is deterministic; tolerances are stated where they are
statistical.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from theorylab.halfspaces import reference as R


def _unit(v):
    return v / np.linalg.norm(v)


def _gaussian(seed, n, d, eta=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = _unit(rng.standard_normal(d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    if eta:
        y = np.where(rng.random(n) < eta, -y, y)
    return X, y, w


def _perp(rng, w):
    v = rng.standard_normal(w.shape[0])
    return _unit(v - (v @ w) * w)


# --------------------------------------------------------------------------- small pieces


def test_logistic_density_facts():
    s = R.logistic_density
    assert integrate.quad(s, -np.inf, np.inf)[0] == pytest.approx(1.0, rel=1e-9)
    assert integrate.quad(lambda u: s(u) ** 2, -np.inf, np.inf)[0] == pytest.approx(1 / 6, 1e-9)
    assert integrate.quad(lambda u: abs(u) * s(u), -np.inf, np.inf)[0] == pytest.approx(
        2 * math.log(2), rel=1e-9
    )
    assert s(0.0) == 0.25 and np.isfinite(s(np.array([-1e4, 1e4]))).all()
    assert s(3.0) == pytest.approx(math.exp(-3) / (1 + math.exp(-3)) ** 2, rel=1e-14)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_svec_preserves_inner_products(k):
    rng = np.random.default_rng(k)
    A, B = rng.standard_normal((2, 3, k, k))
    A, B = A + np.swapaxes(A, -1, -2), B + np.swapaxes(B, -1, -2)
    sa, sb = R.np_svec(A), R.np_svec(B)
    assert sa.shape == (3, k * (k + 1) // 2)
    np.testing.assert_allclose(np.linalg.norm(sa, axis=-1), np.linalg.norm(A, axis=(-2, -1)))
    np.testing.assert_allclose((sa * sb).sum(-1), np.einsum("nab,nba->n", A, B))
    np.testing.assert_array_equal(sa[:, :k], np.diagonal(A, axis1=-2, axis2=-1))
    # the row helper used by the statistics is svec(P_i P_iᵀ − C)
    P = rng.standard_normal((4, k))
    C = A[0]
    np.testing.assert_allclose(
        R._svec_rows(P, C), R.np_svec(P[:, :, None] * P[:, None, :] - C), atol=1e-12
    )
    with pytest.raises(ValueError, match="M must be"):
        R.np_svec(np.zeros((2, 3)))


def test_orthonormal_complement():
    rng = np.random.default_rng(0)
    for d in (2, 3, 7):
        w = rng.standard_normal(d) * 3.0
        Q = R.np_orthonormal_complement(w)
        assert Q.shape == (d, d - 1)
        np.testing.assert_allclose(Q.T @ Q, np.eye(d - 1), atol=1e-12)
        np.testing.assert_allclose(Q.T @ w, 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="w must be"):
        R.np_orthonormal_complement(np.zeros(3))


# --------------------------------------------------------------------------- Gaussian values


def _population(sigma):
    """m0, B, mean μ² at N(0, I) by quadrature over u = z/σ (x_⊥ is independent of z)."""
    s, phi = R.logistic_density, stats.norm.pdf
    m0 = 2 * integrate.quad(lambda u: phi(sigma * u) * s(u), 0, np.inf)[0]
    B = 2 * integrate.quad(lambda u: sigma * u * phi(sigma * u) * s(u), 0, np.inf)[0]
    mu_sq = 2 * integrate.quad(lambda u: phi(sigma * u) * s(u) ** 2, 0, np.inf)[0] / sigma
    return m0, B, mu_sq


@pytest.mark.parametrize("sigma", [0.02, 0.1])
def test_gaussian_values(sigma):
    n, d = 200_000, 5
    X, y, w = _gaussian(1, n, d)
    st = R.np_band_statistics(X, y, w, sigma)
    assert set(st) == set(R.STAT_NAMES)
    m0, B, mu_sq = _population(sigma)
    # closed forms of spec §3.1/§3.4 (first order in σ)
    assert m0 == pytest.approx(stats.norm.pdf(0), rel=2 * sigma**2 + 1e-3)
    assert B == pytest.approx(stats.norm.pdf(0) * 2 * math.log(2) * sigma, rel=2 * sigma + 1e-3)
    assert mu_sq * sigma == pytest.approx(stats.norm.pdf(0) / 6, rel=2 * sigma + 1e-3)
    # sample means within 5 standard errors (computed from the same sample)
    z = X @ w
    mu = R.logistic_density(z / sigma) / sigma
    for value, pop, terms in (
        (st["m0"], m0, mu),
        (st["B"], B, mu * np.abs(z)),
        (st["mean_mu_sq"], mu_sq, mu**2),
        (st["band_mass"], 2 * stats.norm.cdf(sigma) - 1, (np.abs(z) <= sigma) * 1.0),
    ):
        assert abs(value - pop) <= 5 * terms.std() / math.sqrt(n)
    # spectral and degree-4 statistics (spec §7.3 ranges; population Σ_μ = m0 I, κ_μ = 3 m0)
    assert st["lam_min"] / st["m0"] >= 0.85 and st["lam_max"] / st["m0"] <= 1.15
    assert 0.97 <= st["kappa_mu"] / (3 * st["m0"]) <= 1.4
    assert 0.75 <= st["a_lb"] / (st["m0"] / math.sqrt(3)) <= 1.05
    assert 2.95 <= st["kappa4"] <= 3.3
    assert 0.98 <= st["cov_lam_max"] <= 1.05
    assert st["tau"] <= 3 * math.sqrt(0.0665 * d / (sigma * n))
    assert st["mean_mu_sq_norm"] == pytest.approx((d - 1) * st["mean_mu_sq"], rel=0.1)
    assert st["err"] == 0.0


def test_noisy_error_and_stationarity():
    n, d, eta, sigma = 100_000, 5, 0.2, 0.05
    X, y, w = _gaussian(2, n, d, eta=eta)
    st = R.np_band_statistics(X, y, w, sigma)
    assert abs(st["err"] - eta) <= 5 * math.sqrt(eta * (1 - eta) / n)
    assert st["tau"] <= 3 * math.sqrt(0.0665 * d / (sigma * n))
    # away from w* the ascent direction is large: (1−2η)·E_μ|v·x|-ish
    rng = np.random.default_rng(0)
    off = _unit(w + 0.3 * _perp(rng, w))
    assert R.np_band_statistics(X, y, off, sigma)["tau"] > 0.1


def test_d2_identities():
    """d = 2: x_⊥ is a scalar p and F4 is exact: κ_μ = mean μ p⁴, κ4 = mean p⁴."""
    rng = np.random.default_rng(3)
    X = rng.standard_t(4, size=(5000, 2)) + np.array([0.3, -0.2])
    y = np.where(rng.random(5000) < 0.5, 1.0, -1.0)
    w = _unit(np.array([1.0, 2.0]))
    sigma = 0.3
    st = R.np_band_statistics(X, y, w, sigma)
    p = X @ R.np_orthonormal_complement(w)[:, 0]
    mu = R.logistic_density(X @ w / sigma) / sigma
    assert st["lam_min"] == pytest.approx(np.mean(mu * p**2), rel=1e-12)
    assert st["lam_max"] == pytest.approx(st["lam_min"], rel=1e-12)
    assert st["kappa_mu"] == pytest.approx(np.mean(mu * p**4), rel=1e-10)
    assert st["kappa4"] == pytest.approx(np.mean(p**4), rel=1e-10)
    assert st["cov_lam_max"] == pytest.approx(np.mean(p**2), rel=1e-12)
    assert st["tau"] == pytest.approx(abs(np.mean(mu * y * p)), rel=1e-10)
    assert st["mean_mu_sq_norm"] == pytest.approx(np.mean(mu**2 * p**2), rel=1e-10)


# --------------------------------------------------------------------------- F4 exactness


def _brute_max_quartic(P, weights, num=100_000, seed=0):
    """max over unit u of mean_i weights_i (P_i·u)⁴: 1e5 random directions, then projected
    gradient ascent from the best 8 (spec §7.12)."""
    k = P.shape[1]
    T = np.einsum("n,na,nb,nc,nd->abcd", weights, P, P, P, P, optimize=True) / P.shape[0]
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((num, k))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    vals = np.einsum("abcd,na,nb,nc,nd->n", T, U, U, U, U, optimize=True)
    best = U[np.argsort(vals)[-8:]]
    for _ in range(300):
        grad = np.einsum("abcd,nb,nc,nd->na", T, best, best, best, optimize=True)
        best = best + 0.05 * grad
        best /= np.linalg.norm(best, axis=1, keepdims=True)
    refined = np.einsum("abcd,na,nb,nc,nd->n", T, best, best, best, best, optimize=True)
    return max(vals.max(), refined.max())


def _skewed(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.laplace(size=(n, d)) / math.sqrt(2)
    X[:, 1] = rng.exponential(size=n) - 1.0
    return X, np.where(rng.random(n) < 0.5, 1.0, -1.0)


@pytest.mark.parametrize("d", [3, 4])
def test_kappa_dominates_brute_force_fourth_moment(d):
    sigma = 0.2
    X, y, _ = _gaussian(10 + d, 100_000, d)
    rng = np.random.default_rng(d)
    w = _unit(rng.standard_normal(d))
    cases = [(X, y, True), (*_skewed(20 + d, 20_000, d), False)]
    for X, y, gaussian in cases:
        st = R.np_band_statistics(X, y, w, sigma)
        P = X @ R.np_orthonormal_complement(w)
        mu = R.logistic_density(X @ w / sigma) / sigma
        brute_mu = _brute_max_quartic(P, mu)
        brute_g = _brute_max_quartic(P, np.ones(X.shape[0]))
        # soundness: the spectral bounds dominate sup_v mean μ (v·x)⁴ and sup_v mean (v·x)⁴
        assert st["kappa_mu"] >= brute_mu * (1 - 1e-9)
        assert st["kappa4"] >= brute_g * (1 - 1e-9)
        if gaussian:  # tightness at the Gaussian (spec §7.12)
            assert st["kappa_mu"] <= 1.1 * brute_mu
            assert st["kappa4"] <= 1.1 * brute_g


def test_global_moments():
    """Full-space kappa4 bounds sup over all unit v, dominates the w-perp value, and swapping it
    in changes nothing else."""
    X, y = _skewed(30, 20_000, 3)
    w = _unit(np.array([0.3, -1.0, 0.5]))
    g = R.np_global_moments(X)
    assert g["kappa4"] >= _brute_max_quartic(X, np.ones(X.shape[0])) * (1 - 1e-9)
    eig = np.linalg.eigvalsh(X.T @ X / X.shape[0])
    assert (g["cov_lam_min"], g["cov_lam_max"]) == pytest.approx((eig[0], eig[-1]), rel=1e-10)
    perp = R.np_band_statistics(X, y, w, 0.2)
    full = R.np_band_statistics(X, y, w, 0.2, global_moments=g)
    assert full["kappa4"] == g["kappa4"] >= perp["kappa4"]
    assert full["cov_lam_max"] == g["cov_lam_max"] >= perp["cov_lam_max"]
    for name in set(R.STAT_NAMES) - {"kappa4", "cov_lam_max"}:
        assert full[name] == pytest.approx(perp[name], rel=1e-12, abs=1e-15)
    cand = R.np_candidate_statistics(X, y, np.stack([w, -w]), [0.2, 0.2], global_kappa4=True)
    np.testing.assert_allclose(cand["kappa4"], g["kappa4"], rtol=1e-12)
    Xg = np.random.default_rng(31).standard_normal((100_000, 4))
    assert 2.95 <= R.np_global_moments(Xg)["kappa4"] <= 3.3
    with pytest.raises(TypeError, match="global_moments"):
        R.np_band_statistics(X, y, w, 0.2, global_moments={"kappa4": 1.0})


# --------------------------------------------------------------------------- wedge bound


def _far_contaminated(seed, n, d):
    """Gaussian plus 1% mass far out along a direction that is almost ⊥ w (used with w = e_0)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    bad = rng.random(n) < 0.01
    X[bad] = rng.normal(scale=0.02, size=(bad.sum(), d)) + 30.0 * np.eye(d)[1]
    return X


@pytest.mark.parametrize("kind", ["gaussian", "skewed", "far"])
def test_wedge_bound_dominates_empirical_wedge(kind):
    n, d = 50_000, 5
    rng = np.random.default_rng(7)
    if kind == "gaussian":
        X = rng.standard_normal((n, d))
    elif kind == "skewed":
        X = _skewed(8, n, d)[0]
    else:
        X = _far_contaminated(9, n, d)
    w = np.eye(d)[0] if kind == "far" else _unit(rng.standard_normal(d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    kappa4 = R.np_band_statistics(X, y, w, 0.1)["kappa4"]
    z = X @ w
    for theta in (0.005, 0.03, 0.1, 0.3, 0.8, 1.3):
        for _ in range(3):
            v = np.eye(d)[1] if kind == "far" else _perp(rng, w)
            w_star = math.cos(theta) * w + math.sin(theta) * v
            wedge = np.mean(np.where(z >= 0, 1, -1) != np.where(X @ w_star >= 0, 1, -1))
            for t in (math.tan(theta), 1.5 * math.tan(theta)):
                bound = R.np_wedge_bound(X, w, t, kappa4)
                assert wedge <= bound <= 1.0
    assert R.np_wedge_bound(X, w, math.inf, kappa4) == 1.0
    if kind == "gaussian":  # W(t) ≈ 2t-ish at the Gaussian (spec §3.4): informative
        assert R.np_wedge_bound(X, w, 0.02, kappa4) <= 0.1


def test_wedge_bound_band_structure():
    """J from the tail rule; t = 0 keeps only the point mass at |z| = 0 and the J_max tail."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 3))
    w = np.eye(3)[0]
    kappa4 = 3.0
    # t large: J = 1 (kappa4 <= tail·t), so W = mean 1{|z| <= t} + kappa4
    t = 3.0 / 0.05
    assert R.np_wedge_bound(X, w, t, kappa4) == 1.0
    assert R.np_wedge_bound(X, w, 0.0, kappa4) == pytest.approx(kappa4 / 64**4)
    # explicit recomputation for one t
    t = 0.1
    J = next(j for j in range(1, 65) if kappa4 / j**4 <= 0.05 * t)
    z, P = np.abs(X @ w), X[:, 1:]
    expected = np.mean(z <= t) + kappa4 / J**4
    for j in range(1, J):
        m = (z > j * t) & (z <= (j + 1) * t)
        expected += np.linalg.eigvalsh(P[m].T @ P[m] / len(z))[-1] / j**2
    assert R.np_wedge_bound(X, w, t, kappa4) == pytest.approx(min(expected, 1.0), rel=1e-10)


# --------------------------------------------------------------------------- invariances


def test_invariances_and_candidates():
    X, y, w = _gaussian(4, 6000, 4, eta=0.1)
    sigma = 0.1
    base = R.np_band_statistics(X, y, w, sigma)
    # chunking, scaling of w, duplication of the sample
    for st in (
        R.np_band_statistics(X, y, w, sigma, chunk_size=777),
        R.np_band_statistics(X, y, 3.0 * w, sigma),
        R.np_band_statistics(np.concatenate([X, X]), np.concatenate([y, y]), w, sigma),
    ):
        for name in R.STAT_NAMES:
            assert st[name] == pytest.approx(base[name], rel=1e-9, abs=1e-14), name
    # rotating the data and w together
    Qr, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((4, 4)))
    rot = R.np_band_statistics(X @ Qr.T, y, Qr @ w, sigma)
    for name in R.STAT_NAMES:
        assert rot[name] == pytest.approx(base[name], rel=1e-9, abs=1e-14), name
    # antipodal candidates: everything but err is unchanged; reuse equals recomputation
    W = np.stack([w, _unit(w + 0.1), -w])
    sig = np.array([sigma, sigma, sigma])
    fast = R.np_candidate_statistics(X, y, W, sig)
    slow = R.np_candidate_statistics(X, y, W, sig, reuse_antipodal=False)
    for name in R.STAT_NAMES:
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-9, atol=1e-14)
        if name != "err":
            assert fast[name][2] == pytest.approx(base[name], rel=1e-9, abs=1e-14)
    assert fast["err"][0] + fast["err"][2] == pytest.approx(1.0)


def test_learn_and_pipeline():
    X1, y1, w_star = _gaussian(6, 20_000, 5, eta=0.1)
    rng = np.random.default_rng(7)
    X2 = rng.standard_normal((5000, 5))
    y2 = np.where(X2 @ w_star >= 0, 1.0, -1.0)
    w = R.np_learn(X1, y1, 0.05, steps=300)
    assert np.linalg.norm(w) == pytest.approx(1.0)
    assert math.acos(min(1.0, w @ w_star)) < 0.05
    # zero steps return the averaging warm start; w0 is respected
    np.testing.assert_allclose(R.np_learn(X1, y1, 0.05, steps=0), _unit(X1.T @ y1))
    np.testing.assert_allclose(R.np_learn(X1, y1, 0.05, steps=0, w0=2 * w_star), w_star)
    sigmas = np.array([0.1, 0.05])
    out = R.np_tester_pipeline(X1, y1, X2, y2, sigmas, steps=50)
    assert out["W"].shape == (4, 5)
    np.testing.assert_array_equal(out["sigmas"], [0.1, 0.05, 0.1, 0.05])
    np.testing.assert_array_equal(out["W"][2:], -out["W"][:2])
    assert all(out["stats"][name].shape == (4,) for name in R.STAT_NAMES)
    assert out["stats"]["err"][0] < 0.05 and out["stats"]["err"][2] > 0.95


def test_validation():
    X, y, w = _gaussian(0, 50, 3)
    with pytest.raises(ValueError, match="sigma"):
        R.np_band_statistics(X, y, w, 0.0)
    with pytest.raises(ValueError, match="y must"):
        R.np_band_statistics(X, 0.5 * y, w, 0.1)
    with pytest.raises(ValueError, match="y must"):
        R.np_band_statistics(X, y[:-1], w, 0.1)
    with pytest.raises(ValueError, match="w must"):
        R.np_band_statistics(X, y, np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="w must"):
        R.np_band_statistics(X, y, np.ones(4), 0.1)
    with pytest.raises(ValueError, match="X must"):
        R.np_band_statistics(X[:, :1], y, w[:1], 0.1)
    with pytest.raises(ValueError, match="chunk_size"):
        R.np_band_statistics(X, y, w, 0.1, chunk_size=0)
    with pytest.raises(ValueError, match="sigmas"):
        R.np_candidate_statistics(X, y, w[None], np.array([-1.0]))
    with pytest.raises(ValueError, match="sigmas"):
        R.np_candidate_statistics(X, y, w[None], np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="t must"):
        R.np_wedge_bound(X, w, -1.0, 3.0)
    with pytest.raises(ValueError, match="j_max"):
        R.np_wedge_bound(X, w, 0.1, 3.0, j_max=0)
    with pytest.raises(TypeError, match="steps"):
        R.np_learn(X, y, 0.1, steps=1.5)
    with pytest.raises(ValueError, match="X2"):
        R.np_tester_pipeline(X, y, X[:, :2], y, [0.1])
