"""MCMC diagnostics (Vehtari et al. 2021) against independent facts.

* AR(1) chains ``x_t = φ x_{t−1} + sqrt(1 − φ²) ε_t`` started in stationarity have
  ``ESS = S (1 − φ)/(1 + φ)`` and ``MCSE = sqrt((1 + φ)/((1 − φ) S))``. Tolerances come from a
  pilot over 30 seeds with 4 × 20 000 draws: the relative sd of ``ess_basic/ESS`` was 1.9 %
  (φ = −0.3), 2.4 % (φ = 0.5) and 4.7 % (φ = 0.9; range 0.87–1.09), and ``ess_bulk`` agreed
  with ``ess_basic`` to 1e-3; the tolerances (10 %, 10 %, 15 %) are ≥ 3 pilot sd. The MCSE
  ratio had sd ≤ 2.8 %; tolerance 10 %.
* iid chains: ESS ≈ S (pilot: 0.97–1.02 for bulk/basic, 0.975–1.007 for tail) and R̂ < 1.01.
* Mutants: a chain offset by one sd gives split-R̂ ≈ sqrt(1 + var(half means)) (1.155 for 2
  chains, 1.102 for 4); a chain with doubled scale is invisible to classic split-R̂ (pilot
  ≤ 1.002) but flagged by the folded R̂ (pilot 1.065–1.069).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from theorylab.inference import diagnostics as diag

M, N = 4, 20_000


def ar1(seed, phi, m=M, n=N):
    """Stationary AR(1) chains with unit marginal variance, shape [m, n]."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((m, n))
    x0 = rng.standard_normal(m)
    y, _ = signal.lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], eps, axis=1, zi=(phi * x0)[:, None])
    return y


@pytest.mark.parametrize("phi,rtol", [(-0.3, 0.10), (0.5, 0.10), (0.9, 0.15)])
def test_ar1_ess_and_mcse_match_theory(phi, rtol):
    x = ar1(123, phi)
    target = M * N * (1 - phi) / (1 + phi)
    basic, bulk = float(diag.ess_basic(x)), float(diag.ess_bulk(x))
    assert basic == pytest.approx(target, rel=rtol)
    assert bulk == pytest.approx(target, rel=rtol)
    # Gaussian draws: rank normalization is nearly the identity, so bulk ≈ basic.
    assert bulk == pytest.approx(basic, rel=0.01)
    mcse = float(diag.mcse_mean(x))
    assert mcse == pytest.approx(np.sqrt((1 + phi) / ((1 - phi) * M * N)), rel=0.10)


@pytest.mark.parametrize("phi", [-0.3, 0.0, 0.9])
def test_matches_numpyro_reference_implementation(phi):
    """numpyro's ``effective_sample_size``/``split_gelman_rubin`` implement the same Stan
    estimators (no splitting for ESS). Its Geyer truncation differs slightly (it clips negative
    pair sums instead of stopping, and drops the final even term): observed gap ≤ 0.17 %."""
    from numpyro import diagnostics as nd

    x = ar1(11, phi, m=4, n=5000)
    np.testing.assert_allclose(
        diag.ess_basic(x, split=False), nd.effective_sample_size(x), rtol=5e-3
    )
    np.testing.assert_allclose(diag.split_rhat(x), nd.split_gelman_rubin(x), rtol=1e-10)


def test_iid_chains_ess_near_total_and_rhat_near_one():
    x = np.random.default_rng(0).standard_normal((M, 2000))
    total = x.size
    for fn in (diag.ess_basic, diag.ess_bulk, diag.ess_tail):
        assert float(fn(x)) == pytest.approx(total, rel=0.10), fn.__name__
    assert 0.99 < float(diag.split_rhat(x)) < 1.01
    assert 0.99 < float(diag.rank_normalized_split_rhat(x)) < 1.01


def test_shifted_chain_is_flagged():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4000))
    x[0] += 1.0
    # 4 half-chain means ≈ (1, 1, 0, 0): var = 1/3, so R̂ ≈ sqrt(1 + 1/3) = 1.155.
    assert float(diag.split_rhat(x)) > 1.1
    assert float(diag.rank_normalized_split_rhat(x)) > 1.1
    x4 = rng.standard_normal((4, 4000))
    x4[0] += 1.0
    # 8 half means ≈ (1, 1, 0 × 6): var = 3/14, R̂ ≈ sqrt(1 + 3/14) = 1.102.
    expected = np.sqrt(1 + 3 / 14)
    assert float(diag.split_rhat(x4)) == pytest.approx(expected, abs=0.02)
    assert float(diag.rank_normalized_split_rhat(x4)) == pytest.approx(expected, abs=0.02)


def test_scale_mismatch_caught_only_by_folded_rhat():
    x = np.random.default_rng(2).standard_normal((M, 2000))
    x[0] *= 2.0
    assert float(diag.split_rhat(x)) < 1.01  # classic R̂ is blind to scale
    assert float(diag.rank_normalized_split_rhat(x, kind="bulk")) < 1.01
    tail = float(diag.rank_normalized_split_rhat(x, kind="tail"))
    assert tail > 1.03
    assert float(diag.rank_normalized_split_rhat(x)) == tail


def test_invariances():
    x = ar1(7, 0.6, m=3, n=1000)
    y = np.exp(x)  # strictly increasing
    assert diag.ess_bulk(y) == diag.ess_bulk(x)
    r_bulk = diag.rank_normalized_split_rhat(x, kind="bulk")
    assert diag.rank_normalized_split_rhat(y, kind="bulk") == r_bulk
    affine = 3.0 * x + 2.0
    np.testing.assert_allclose(
        diag.rank_normalized_split_rhat(affine), diag.rank_normalized_split_rhat(x), rtol=1e-12
    )
    np.testing.assert_allclose(diag.ess_basic(affine), diag.ess_basic(x), rtol=1e-9)
    np.testing.assert_allclose(diag.split_rhat(affine), diag.split_rhat(x), rtol=1e-9)
    np.testing.assert_allclose(diag.ess_tail(affine), diag.ess_tail(x), rtol=1e-12)
    # Chain order does not matter.
    perm = x[::-1]
    for fn in (diag.split_rhat, diag.rank_normalized_split_rhat, diag.ess_basic, diag.ess_bulk):
        np.testing.assert_allclose(fn(perm), fn(x), rtol=1e-9)


def test_event_shapes_apply_per_component():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 200, 2, 3))
    x[..., 1, 2] *= 5.0
    fns = (
        diag.split_rhat,
        diag.rank_normalized_split_rhat,
        diag.ess_basic,
        diag.ess_bulk,
        diag.ess_tail,
        diag.mcse_mean,
    )
    for fn in fns:
        out = fn(x)
        assert isinstance(out, np.ndarray) and out.shape == (2, 3), fn.__name__
        for i in range(2):
            for j in range(3):
                assert out[i, j] == fn(x[..., i, j]), fn.__name__
    scalar = diag.ess_bulk(x[..., 0, 0])
    assert np.ndim(scalar) == 0 and isinstance(scalar, np.floating)
    # JAX arrays are accepted (float32 copied to float64 on the host).
    x32 = x[..., 0, 0].astype(np.float32)
    assert diag.ess_basic(jnp.asarray(x32)) == diag.ess_basic(x32)
    # A single chain is fine: it is split in two.
    assert np.isfinite(diag.split_rhat(x[:1, :, 0, 0]))


def test_autocovariance_matches_direct_sum():
    x = np.random.default_rng(4).standard_normal((2, 50))
    acov = diag.autocovariance(x)
    xc = x - x.mean(axis=1, keepdims=True)
    for t in (0, 1, 7, 49):
        direct = (xc[:, : 50 - t] * xc[:, t:]).sum(axis=1) / 50
        np.testing.assert_allclose(acov[:, t], direct, atol=1e-12)


def test_constant_component_gives_nan():
    x = np.random.default_rng(5).standard_normal((2, 100, 2))
    x[..., 1] = 3.0
    for fn in (diag.split_rhat, diag.rank_normalized_split_rhat, diag.ess_bulk, diag.ess_tail):
        out = fn(x)
        assert np.isfinite(out[0]) and np.isnan(out[1]), fn.__name__


def test_summary_pytree():
    rng = np.random.default_rng(6)
    tree = {
        "mu": rng.standard_normal((4, 500)),
        "beta": {"w": 2.0 + rng.standard_normal((4, 500, 3))},
    }
    out = diag.summary(tree)
    assert list(out) == ["beta/w", "mu"]
    s = out["beta/w"]
    assert isinstance(s, diag.VariableSummary)
    assert s.mean.shape == (3,) and s.rhat.shape == (3,)
    np.testing.assert_allclose(s.mean, tree["beta"]["w"].mean(axis=(0, 1)))
    np.testing.assert_allclose(s.ess_bulk, diag.ess_bulk(tree["beta"]["w"]))
    np.testing.assert_allclose(s.mcse, s.sd / np.sqrt(diag.ess_basic(tree["beta"]["w"])))
    assert np.all(s.rhat < 1.02)
    assert list(diag.summary(tree["mu"])) == ["x"]
    assert list(diag.summary((tree["mu"], tree["mu"]))) == ["0", "1"]


@pytest.mark.parametrize(
    "fn",
    [
        diag.split_rhat,
        diag.rank_normalized_split_rhat,
        diag.ess_basic,
        diag.ess_bulk,
        diag.ess_tail,
        diag.mcse_mean,
    ],
)
def test_bad_input(fn):
    with pytest.raises(ValueError, match=r"chains.*at least 4 draws"):
        fn(np.zeros((4, 3)))
    bad = np.random.default_rng(0).standard_normal((2, 10))
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="chains must contain only finite values; got 1 NaN"):
        fn(bad)
    with pytest.raises(ValueError, match="chains must have shape"):
        fn(np.zeros(10))
    with pytest.raises(TypeError, match="chains"):
        fn("abc")


def test_bad_kind_and_summary_leaf_names():
    with pytest.raises(ValueError, match="kind"):
        diag.rank_normalized_split_rhat(np.zeros((2, 10)), kind="median")
    with pytest.raises(ValueError, match=r"chains_pytree\['b'\]"):
        diag.summary({"a": np.ones((2, 10)), "b": np.ones((2, 2))})
    with pytest.raises(ValueError, match="chains_pytree"):
        diag.summary({})
