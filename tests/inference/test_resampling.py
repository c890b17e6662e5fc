"""Resampler properties (spec A1 exact, A2 statistical) and their mutants."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from theorylab.inference import (
    RESAMPLERS,
    Resampler,
    conditional_multinomial,
    get_resampler,
    multinomial,
    residual,
    stratified,
    systematic,
)
from theorylab.inference.validation import check_resampler_unbiased, expected_offspring

SCHEMES = list(RESAMPLERS.names())


def _random_log_weights(rng, n, zeros=0):
    w = rng.dirichlet(np.full(n, 0.5))
    lw = np.log(w)
    if zeros:
        lw[rng.choice(n, size=min(zeros, n - 1), replace=False)] = -np.inf
    return lw


@functools.cache
def _batched_counts(scheme, n):
    def counts(key, log_w):
        return jnp.zeros(n, jnp.int32).at[scheme(key, log_w, n)].add(1)

    return jax.jit(jax.vmap(counts))


def _counts(ancestors, n):
    return np.bincount(np.asarray(ancestors), minlength=n)


@pytest.mark.parametrize(
    "n,precision",
    [(n, "float64") for n in (1, 2, 3, 7, 64, 1000)] + [(7, "float32"), (1000, "float32")],
)
def test_systematic_and_residual_count_bounds(n, precision):
    """A1: systematic O_i ∈ {⌊NW⌋, ⌊NW⌋+1}; residual O_i ≥ ⌊NW⌋; totals N; zero weights unused.

    The bounds are exact in the weights the resampler sees; the slack covers the rounding of
    N·W between float64 NumPy and the resampler's dtype (N·eps per entry).
    """
    if precision == "float64":
        with jax.enable_x64(True):
            _count_bounds(n, 8 * n * np.finfo(np.float64).eps)
    else:
        _count_bounds(n, 8 * n * np.finfo(np.float32).eps)


def _count_bounds(n, slack):
    rng = np.random.default_rng(n)
    reps = 10_000 if n <= 64 else 500
    lw = np.stack([_random_log_weights(rng, n, zeros=n // 3) for _ in range(reps)])
    keys = jax.random.split(jax.random.key(n), reps)
    for scheme in (systematic, residual, stratified, multinomial):
        counts = np.asarray(_batched_counts(scheme, n)(keys, jnp.asarray(lw)))
        w = np.exp(lw - lw.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        assert np.all(counts.sum(1) == n)
        assert np.all(counts[np.isneginf(lw)] == 0), scheme.name
        if scheme is systematic:
            assert np.all(counts >= np.floor(n * w - slack))
            assert np.all(counts <= np.floor(n * w + slack) + 1)
        if scheme is residual:
            assert np.all(counts >= np.floor(n * w - slack))


@pytest.mark.x64
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n,m", [(2, 2), (3, 3), (7, 7), (7, 4), (5, 9), (64, 64)])
def test_exact_expected_offspring(scheme, n, m):
    """A1: E[O_i] integrated exactly over the uniforms equals M·W_i to 1e-12."""
    rng = np.random.default_rng(100 * n + m)
    for _ in range(3):
        result = check_resampler_unbiased(scheme, _random_log_weights(rng, n, zeros=1), m)
        assert result.passed, result


@pytest.mark.x64
def test_exact_offspring_rejects_off_by_one_systematic_grid():
    """Mutant: systematic points (k+u)/(M+1) instead of (k+u)/M must fail the exact check."""

    def from_uniforms(u, log_w, m):
        from theorylab.inference.resampling import _inverse_cdf, normalized_cdf

        points = (jnp.arange(m) + u[0]) / (m + 1)
        return _inverse_cdf(normalized_cdf(log_w), points)

    def intervals(log_w, m):
        from theorylab.inference.resampling import _with_ends, normalized_cdf

        c = normalized_cdf(log_w) * (m + 1)
        return _with_ends(c - jnp.floor(c))[None]

    mutant = Resampler("off_by_one", lambda m: 1, from_uniforms, intervals)
    lw = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    assert not check_resampler_unbiased(mutant, lw, 4).passed
    assert check_resampler_unbiased(systematic, lw, 4).passed


def test_multinomial_chi_square():
    """A2: 2·10⁴ multinomial resamplings of N=8 fixed weights, χ² p > 1e-4 (false-positive
    rate 1e-4); the mutant that forgets to normalise the CDF has p < 1e-8 with the same keys."""
    from theorylab.inference.resampling import _inverse_cdf

    w = np.array([0.02, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.28])
    lw = jnp.log(jnp.asarray(w))
    keys = jax.random.split(jax.random.key(7), 20_000)
    anc = jax.jit(jax.vmap(lambda k: multinomial(k, lw, 8)))(keys)
    counts = _counts(np.asarray(anc).ravel(), 8)
    p = stats.chisquare(counts, counts.sum() * w).pvalue
    assert p > 1e-4

    def broken(key):  # cumsum of 1.3·w: unnormalised CDF, the last bin absorbs the excess
        u = jax.random.uniform(key, (8,))
        return _inverse_cdf(jnp.cumsum(1.3 * jnp.asarray(w)), u)

    bad = _counts(np.asarray(jax.jit(jax.vmap(broken))(keys)).ravel(), 8)
    assert stats.chisquare(bad, bad.sum() * w).pvalue < 1e-8


@given(
    n=st.sampled_from([1, 2, 5]),
    m=st.sampled_from([1, 3, 5]),
    scheme=st.sampled_from(SCHEMES),
    data=st.data(),
)
def test_degenerate_weights(n, m, scheme, data):
    """One particle with all mass, all equal, -inf entries, all -inf: valid indices, no NaN."""
    kind = data.draw(st.sampled_from(["one", "equal", "some_inf", "all_inf"]))
    lw = np.zeros(n)
    if kind == "one":
        lw[:] = -np.inf
        lw[data.draw(st.integers(0, n - 1))] = 0.0
    elif kind == "some_inf":
        lw[0] = -np.inf if n > 1 else 0.0
    elif kind == "all_inf":
        lw[:] = -np.inf
    anc = np.asarray(get_resampler(scheme)(jax.random.key(0), jnp.asarray(lw, jnp.float32), m))
    assert anc.shape == (m,) and anc.dtype == np.int32
    assert np.all((anc >= 0) & (anc < n))
    if kind == "one":
        assert np.all(anc == np.argmax(lw))
    if kind == "some_inf" and n > 1:
        assert np.all(anc != 0)


def test_from_uniforms_matches_call():
    lw = jnp.log(jnp.asarray([0.1, 0.5, 0.4]))
    key = jax.random.key(3)
    for scheme in RESAMPLERS.values():
        u = scheme.draw(key, 5)
        assert u.shape == (scheme.num_uniforms(5),)
        np.testing.assert_array_equal(scheme(key, lw, 5), scheme.from_uniforms(u, lw, 5))


@pytest.mark.x64
def test_expected_offspring_of_conditional_multinomial_keeps_reference():
    lw = jnp.log(jnp.asarray([0.05, 0.5, 0.45]))
    keys = jax.random.split(jax.random.key(1), 20_000)
    anc = np.asarray(jax.vmap(lambda k: conditional_multinomial(k, lw, 3, reference=0))(keys))
    assert np.all(anc[:, 0] == 0)
    counts = _counts(anc[:, 1:].ravel(), 3)
    assert stats.chisquare(counts, counts.sum() * np.array([0.05, 0.5, 0.45])).pvalue > 1e-4
    # exact offspring of the unconditional scheme for comparison
    np.testing.assert_allclose(expected_offspring("multinomial", lw, 3), 3 * np.exp(lw), atol=1e-12)


def test_unknown_resampler_name():
    with pytest.raises(ValueError, match="unknown resampler 'bogus'; valid names"):
        get_resampler("bogus")
    with pytest.raises(TypeError, match="resampler must be a name"):
        get_resampler(3)
