"""linalg against closed forms (scipy.linalg.expm, inverses), bisection and KKT conditions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from theorylab.core import linalg


def random_symmetric(n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n)) * scale
    return (a + a.T) / 2


@pytest.mark.x64
def test_matrix_function_exp_matches_expm():
    a = random_symmetric(12, 0)
    ours = np.asarray(linalg.matrix_function(a, jnp.exp))
    np.testing.assert_allclose(ours, scipy.linalg.expm(a), rtol=1e-10, atol=1e-12)


@pytest.mark.x64
def test_matrix_function_inverse_and_sqrt():
    a = random_symmetric(10, 1) + 10 * np.eye(10)  # positive definite
    inv = np.asarray(linalg.matrix_function(a, lambda lam: 1.0 / lam))
    np.testing.assert_allclose(inv, np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    root = np.asarray(linalg.matrix_function(a, jnp.sqrt))
    np.testing.assert_allclose(root @ root, a, rtol=1e-10, atol=1e-10)


@pytest.mark.x64
@pytest.mark.parametrize("chunk_size", [None, 1, 3, 7])
def test_matrix_function_grid_equals_per_parameter(chunk_size):
    a = random_symmetric(9, 2)
    ts = jnp.linspace(0.05, 1.0, 7)
    dec = linalg.spectral_decomposition(a)
    grid = np.asarray(
        linalg.matrix_function_grid(dec, lambda lam, t: jnp.exp(t * lam), ts, chunk_size=chunk_size)
    )
    assert grid.shape == (7, 9, 9)
    for g, t in zip(grid, np.asarray(ts)):
        np.testing.assert_allclose(g, scipy.linalg.expm(t * a), rtol=1e-10, atol=1e-12)


def test_matrix_function_grid_pytree_params_and_jit():
    a = random_symmetric(6, 3).astype(np.float32)
    params = {"t": jnp.array([0.1, 0.2]), "c": jnp.array([1.0, 2.0])}

    @jax.jit
    def run(a):
        return linalg.matrix_function_grid(
            linalg.spectral_decomposition(a, check=False),
            lambda lam, p: p["c"] * jnp.exp(p["t"] * lam),
            params,
            chunk_size=1,
        )

    out = np.asarray(run(a))
    for i in range(2):
        want = float(params["c"][i]) * scipy.linalg.expm(float(params["t"][i]) * a)
        np.testing.assert_allclose(out[i], want, rtol=2e-4, atol=2e-5)


def test_spectral_decomposition_errors():
    with pytest.raises(ValueError, match="matrix must be symmetric"):
        linalg.spectral_decomposition(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="matrix must be a square matrix"):
        linalg.spectral_decomposition(np.ones((2, 3)))
    with pytest.raises(ValueError, match="matrix must contain only finite"):
        linalg.spectral_decomposition(np.array([[np.nan, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="chunk_size must be in"):
        linalg.matrix_function_grid(np.eye(2), lambda lam, t: lam, jnp.ones(2), chunk_size=0)


# --------------------------------------------------------------------------- simplex


def simplex_by_bisection(v, radius=1.0):
    """Independent reference: find τ with Σ max(v - τ, 0) = radius by bisection (float64)."""
    v = np.asarray(v, dtype=np.float64)
    lo, hi = v.min() - radius, v.max()
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.maximum(v - mid, 0).sum() > radius:
            lo = mid
        else:
            hi = mid
    return np.maximum(v - (lo + hi) / 2, 0)


vectors = arrays(
    np.float64, st.integers(1, 12), elements=st.floats(-5, 5, allow_nan=False, allow_infinity=False)
)


@pytest.mark.x64
@given(vectors, st.floats(0.1, 10.0))
def test_simplex_projection_matches_bisection_and_kkt(v, radius):
    x = np.asarray(linalg.project_to_simplex(v, radius=radius))
    np.testing.assert_allclose(x, simplex_by_bisection(v, radius), atol=1e-9)
    assert np.all(x >= 0)
    assert x.sum() == pytest.approx(radius, abs=1e-9)
    # KKT: v - x is constant (= τ) on the support and <= τ off it.
    support = x > 1e-12
    tau = (v - x)[support]
    assert np.ptp(tau) < 1e-9
    assert np.all(v[~support] <= tau[0] + 1e-9)


def test_simplex_projection_axis_batching_and_idempotence():
    rng = np.random.default_rng(5)
    v = rng.normal(size=(3, 4, 5)).astype(np.float32)
    out = np.asarray(linalg.project_to_simplex(v, axis=1))
    assert out.shape == v.shape
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    for i in range(3):
        for k in range(5):
            np.testing.assert_allclose(out[i, :, k], simplex_by_bisection(v[i, :, k]), atol=1e-5)
    again = np.asarray(linalg.project_to_simplex(out, axis=1))
    np.testing.assert_allclose(again, out, atol=1e-6)


def test_simplex_projection_errors():
    with pytest.raises(ValueError, match=r"radius must be in \(0"):
        linalg.project_to_simplex(np.ones(3), radius=0.0)
    with pytest.raises(ValueError, match="axis must be in"):
        linalg.project_to_simplex(np.ones(3), axis=1)
    with pytest.raises(TypeError, match="v must be an array"):
        linalg.project_to_simplex("abc")


# --------------------------------------------------------------------------- log space


@pytest.mark.x64
def test_log1mexp_accuracy_across_ranges():
    xs = np.array([-1e-12, -1e-6, -0.1, -np.log(2), -1.0, -10.0, -50.0, -700.0])
    got = np.asarray(linalg.log1mexp(xs))
    # references: for tiny |x|, log(1 - e^x) = log(-x) + x/2 + O(x^2); else direct in float64
    want = np.where(xs > -1e-5, np.log(-xs) + xs / 2, np.log(-np.expm1(xs)))
    want[-2:] = -np.exp(xs[-2:])  # log(1 - e^x) ~ -e^x for very negative x
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert np.isneginf(float(linalg.log1mexp(0.0)))


@pytest.mark.x64
def test_log_sub_exp():
    a, b = np.log(5.0), np.log(3.0)
    assert float(linalg.log_sub_exp(a, b)) == pytest.approx(np.log(2.0), rel=1e-12)
    assert np.isneginf(float(linalg.log_sub_exp(1.0, 1.0)))
    assert np.isneginf(float(linalg.log_sub_exp(-np.inf, -np.inf)))
    # a = 1000: direct evaluation overflows, the stable form does not
    assert float(linalg.log_sub_exp(1000.0, 999.0)) == pytest.approx(
        1000.0 + np.log1p(-np.exp(-1.0)), rel=1e-12
    )


def test_log_normalize_mean_exp_and_masked():
    x = jnp.array([1000.0, 1000.0, -jnp.inf, 999.0])
    w = np.exp(np.asarray(linalg.log_normalize(x)))
    # float32 ulp at 1000 is 6.1e-5, so the shifted log-weights carry ~1e-5 relative error
    assert w.sum() == pytest.approx(1.0, abs=1e-4)
    assert w[2] == 0.0
    y = jnp.array([0.0, np.log(3.0)])
    assert float(linalg.log_mean_exp(y)) == pytest.approx(np.log(2.0), rel=1e-6)
    m = jnp.array([[True, False], [False, False]])
    out = np.asarray(linalg.masked_logsumexp(jnp.ones((2, 2)), m, axis=1))
    assert out[0] == pytest.approx(1.0)
    assert np.isneginf(out[1])


@pytest.mark.x64
@pytest.mark.parametrize("blocks", [None, 1, 2, 3, 5, 8])
@pytest.mark.parametrize("n", [7, 40])
def test_symmetric_reconstruct_equals_full_product(blocks, n):
    rng = np.random.default_rng(n)
    u = np.linalg.qr(rng.normal(size=(n, n)))[0]
    s = rng.normal(size=n)  # mixed signs
    want = (u * s) @ u.T
    got = np.asarray(linalg.symmetric_reconstruct(u, s, blocks=blocks))
    np.testing.assert_allclose(got, want, atol=1e-12)
    if blocks is not None and blocks > 1:
        np.testing.assert_array_equal(got, got.T)  # mirrored blocks: exactly symmetric
