"""Argument checks: each names the argument, says what was expected and what was received."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theorylab.core import checks


def test_check_int():
    assert checks.check_int(np.int64(3), "n") == 3
    assert checks.check_int(jnp.asarray(4), "n") == 4
    with pytest.raises(TypeError, match=r"n must be an integer; got 2.0 \(float\)"):
        checks.check_int(2.0, "n")
    with pytest.raises(TypeError, match="n must be an integer; got True"):
        checks.check_int(True, "n")
    with pytest.raises(ValueError, match=r"n must be in \[1, inf\); got 0"):
        checks.check_int(0, "n", min_value=1)
    with pytest.raises(ValueError, match=r"k must be in \[1, 5\]; got 6"):
        checks.check_int(6, "k", min_value=1, max_value=5)


def test_check_float():
    assert checks.check_float(1, "p", min_value=0, max_value=1) == 1.0
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]; got 1.5"):
        checks.check_float(1.5, "p", min_value=0, max_value=1)
    with pytest.raises(ValueError, match=r"t must be in \(0, 0.5\); got 0.5"):
        checks.check_float(
            0.5, "t", min_value=0, max_value=0.5, min_inclusive=False, max_inclusive=False
        )
    with pytest.raises(ValueError, match="x must not be NaN"):
        checks.check_float(float("nan"), "x")
    with pytest.raises(ValueError, match="x must be finite"):
        checks.check_float(float("inf"), "x")
    assert checks.check_float(float("inf"), "x", allow_inf=True) == float("inf")
    with pytest.raises(TypeError, match="x must be a real number; got 'a'"):
        checks.check_float("a", "x")
    with pytest.raises(TypeError, match="x must be a real scalar; got array of shape"):
        checks.check_float(np.ones(2), "x")


def test_check_choice_and_bool():
    assert checks.check_choice("a", "mode", ("a", "b")) == "a"
    with pytest.raises(ValueError, match="mode must be one of 'a', 'b'; got 'c'"):
        checks.check_choice("c", "mode", ("a", "b"))
    with pytest.raises(TypeError, match="flag must be a bool"):
        checks.check_bool(1, "flag")


def test_check_array_shapes_kinds_finiteness():
    x = checks.check_array([[1.0, 2.0]], "x", ndim=2, shape=(None, 2), kind="float")
    assert isinstance(x, jax.Array) and x.dtype == jnp.float32
    with pytest.raises(ValueError, match=r"x must be 1-dimensional; got array of shape \(1, 2\)"):
        checks.check_array([[1.0, 2.0]], "x", ndim=1)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 3\)"):
        checks.check_array(np.ones((2, 2)), "x", shape=(None, 3))
    with pytest.raises(TypeError, match="x must have a float dtype"):
        checks.check_array(np.ones(3, dtype=int), "x", kind="float")
    with pytest.raises(ValueError, match="x must contain only finite values; got 1 NaN and 1 inf"):
        checks.check_array(np.array([np.nan, np.inf, 0.0]), "x", finite=True)
    with pytest.raises(TypeError, match="x must be an array; got None"):
        checks.check_array(None, "x")
    with pytest.raises(TypeError, match="x must be a numeric array"):
        checks.check_array([object()], "x")
    with pytest.raises(ValueError, match="at least 2 elements"):
        checks.check_array(np.ones(1), "x", min_size=2)


def test_check_array_passes_tracers_and_skips_value_checks():
    @jax.jit
    def f(x):
        y = checks.check_array(x, "x", ndim=1, kind="float", finite=True)
        return y.sum()

    assert float(f(jnp.array([1.0, 2.0]))) == 3.0
    assert np.isnan(float(f(jnp.array([np.nan, 2.0]))))  # traced: value checks skipped

    @jax.jit
    def g(x):
        return checks.check_array(x, "x", ndim=2)

    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        g(jnp.ones(3))


def test_square_symmetric_probability():
    with pytest.raises(ValueError, match="A must be a square matrix"):
        checks.check_square_matrix(np.ones((2, 3)), "A")
    with pytest.raises(ValueError, match="A must be symmetric; got max"):
        checks.check_symmetric(np.array([[0.0, 1.0], [0.0, 0.0]]), "A")
    p = checks.check_probability_vector([0.25, 0.75], "p")
    assert p.dtype.kind == "f"
    with pytest.raises(ValueError, match="p must sum to 1 along axis -1"):
        checks.check_probability_vector([0.5, 0.6], "p")
    with pytest.raises(ValueError, match="p must have entries >= 0"):
        checks.check_probability_vector([-0.5, 1.5], "p")


def test_check_key():
    key = jax.random.key(0)
    assert checks.check_key(key) is key
    assert checks.check_key(jax.random.PRNGKey(0)).shape == (2,)
    with pytest.raises(TypeError, match=r"key must be a JAX PRNG key \(e.g. jax.random.key\(3\)\)"):
        checks.check_key(3)
    with pytest.raises(ValueError, match="key must be a single PRNG key"):
        checks.check_key(jax.random.split(key, 2))
    with pytest.raises(TypeError, match="rng must be a JAX PRNG key"):
        checks.check_key(np.ones(3), "rng")


def test_x64_helpers(x64):
    assert checks.x64_enabled()
    checks.require_x64("log kernels")


def test_require_x64_message_says_how():
    assert not checks.x64_enabled()  # default precision outside x64-marked tests
    with pytest.raises(ValueError, match=r"log kernels needs float64: enable it with jax.config"):
        checks.require_x64("log kernels")


@pytest.mark.x64
def test_x64_marker_enables_float64():
    assert jnp.ones(1).dtype == jnp.float64
