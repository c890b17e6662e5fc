"""The guarded holdout: query forms, validation, isolation, key discipline (spec §4.1, A5-A6)."""

from __future__ import annotations

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theorylab.adaptive import guard
from theorylab.adaptive import mechanisms as M

N, D = 400, 6


def _data(seed):
    kx, ky = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (N, D))
    y = jnp.where(jax.random.bernoulli(ky, 0.5, (N,)), 1.0, -1.0)
    return x, y


def accuracy(w, row):
    """phi_w(x, y) = 1[sign(<w, x>) = y] (module-level: compiled once)."""
    x, y = row
    return (jnp.sign(x @ w) == y).astype(jnp.float32)


def first_feature_positive(row):
    x, _ = row
    return (x[0] > 0).astype(jnp.float32)


def out_of_range(w, row):
    x, _ = row
    return x @ w  # not in [0, 1]


def test_function_queries_equal_value_queries():
    holdout, train = _data(0), _data(1)
    params = jax.random.normal(jax.random.key(2), (5, D))
    mech = M.thresholdout(0.04, 0.01, budget=3)
    state = guard.init(jax.random.key(3), holdout, mechanism=mech, train=train)
    a1, c1, _ = guard.query(state, accuracy, params)
    hv = jax.vmap(lambda w: jax.vmap(lambda r: accuracy(w, r))(holdout))(params)
    tv = jax.vmap(lambda w: jax.vmap(lambda r: accuracy(w, r))(train))(params)
    a2, c2, _ = guard.query(state, hv, train_values=tv)
    np.testing.assert_array_equal(np.asarray(a1), np.asarray(a2))
    np.testing.assert_array_equal(np.asarray(c1.budget_used), np.asarray(c2.budget_used))
    # jit and the un-jitted path agree bit for bit
    a3, _, _ = guard.query(state, accuracy, params, jit=False)
    np.testing.assert_array_equal(np.asarray(a1), np.asarray(a3))
    # naive answers are exactly the empirical means
    st_n = guard.init(jax.random.key(3), holdout, mechanism=M.naive())
    a4, _, _ = guard.query(st_n, accuracy, params)
    np.testing.assert_allclose(np.asarray(a4), np.asarray(hv.mean(1)), rtol=1e-6)
    a5, _, _ = guard.query(st_n, first_feature_positive)
    np.testing.assert_allclose(float(a5[0]), float(jnp.mean(holdout[0][:, 0] > 0)), rtol=1e-6)


def test_batch_equals_sequential_through_guard():
    holdout, train = _data(0), _data(1)
    params = jax.random.normal(jax.random.key(2), (6, D))
    mech = M.guess_and_check(0.1)
    state = guard.init(jax.random.key(3), holdout, mechanism=mech, train=train)
    a_batch, _, s_batch = guard.query(state, accuracy, params)
    seq, s = [], state
    for i in range(6):
        a, _, s = guard.query(s, accuracy, params[i : i + 1])
        seq.append(a)
    np.testing.assert_array_equal(np.asarray(a_batch), np.concatenate(seq))
    assert int(guard.ledger(s).queries) == int(guard.ledger(s_batch).queries) == 6


def test_exhausted_guard_returns_unanswered_and_ignores_holdout():
    """A5 through the guard: after exhaustion, outputs are bit-identical for holdouts that
    differ in one row."""
    holdout = _data(0)
    params = jax.random.normal(jax.random.key(2), (8, D))
    mech = M.gaussian(0.01, max_queries=3)
    state = guard.init(jax.random.key(3), holdout, mechanism=mech)
    _, c, state = guard.query(state, accuracy, params[:4])
    np.testing.assert_array_equal(np.asarray(c.answered), [True, True, True, False])
    x, y = holdout
    other = guard.GuardState(
        holdout=(x.at[0].set(-x[0]), -y.at[0].get() * y),
        train=None,
        mech=state.mech,
        mechanism=mech,
    )
    out1 = guard.query(state, accuracy, params[4:])
    out2 = guard.query(other, accuracy, params[4:])
    for u, v in zip(jax.tree_util.tree_leaves(out1[:2]), jax.tree_util.tree_leaves(out2[:2])):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert bool(jnp.all(jnp.isnan(out1[0]))) and bool(guard.ledger(out1[2]).exhausted)


def test_traced_values_are_sanitised_not_refused():
    """Values outside [0, 1] produced inside the guard are clipped (NaN -> 0), never refused:
    whether a query is answered must not depend on the holdout (a refusal flag would be a
    noise-free membership test). Naive answers equal the means of the clipped values."""
    holdout = _data(0)
    params = jax.random.normal(jax.random.key(2), (3, D))
    state = guard.init(jax.random.key(3), holdout, mechanism=M.naive())
    a, c, _ = guard.query(state, out_of_range, params)
    assert bool(jnp.all(c.answered))
    x, _ = holdout
    expected = jnp.mean(jnp.clip(x @ params.T, 0.0, 1.0), axis=0)
    np.testing.assert_allclose(np.asarray(a), np.asarray(expected), rtol=1e-6)


def membership(t, row):
    """An attacker's query: 2.0 (invalid) exactly on holdout rows whose first feature is t."""
    x, _ = row
    return jnp.where(x[0] == t, 2.0, 0.5)


def test_answered_flag_does_not_reveal_membership():
    """The reviewer's attack: a query that is invalid only on one specific holdout row. The
    certificates (answered flags) must be identical whether or not the row is present."""
    holdout = _data(0)
    x, _ = holdout
    targets = jnp.asarray([x[17, 0], 12345.0])  # the first is a holdout value, the second not
    state = guard.init(jax.random.key(3), holdout, mechanism=M.gaussian(0.1, max_queries=100))
    _, c, st_ = guard.query(state, membership, targets)
    np.testing.assert_array_equal(np.asarray(c.answered), [True, True])
    assert int(guard.ledger(st_).answered) == 2


@pytest.mark.x64
def test_float64_guard():
    holdout, train = _data(0), _data(1)
    holdout = jax.tree_util.tree_map(lambda v: v.astype(jnp.float64), holdout)
    params = jax.random.normal(jax.random.key(2), (4, D), jnp.float64)
    state = guard.init(jax.random.key(3), holdout, train=train, dtype=jnp.float64,
                       mechanism=M.thresholdout(0.04, 0.01, budget=2))
    a, _, _ = guard.query(state, accuracy, params)
    assert a.dtype == jnp.float64


def test_reusable_holdout_object_never_exposes_data_or_key():
    holdout, train = _data(0), _data(1)
    rh = guard.ReusableHoldout(
        jax.random.key(0), holdout, train=train, mechanism=M.thresholdout_science(N)
    )
    params = jax.random.normal(jax.random.key(2), (4, D))
    rh.query(accuracy, params)
    rh.query(accuracy, params)
    assert int(rh.ledger.queries) == 8
    public = [name for name in dir(rh) if not name.startswith("_")]
    assert set(public) == {"query", "ledger", "mechanism", "n"}
    assert "Array" not in repr(rh) and "key" not in repr(rh)
    with pytest.raises(TypeError, match="cannot be"):
        copy.deepcopy(rh)
    with pytest.raises(TypeError, match="cannot be"):
        pickle.dumps(rh)
    with pytest.raises(TypeError):
        rh.query(accuracy, params, key=jax.random.key(0))  # no way to pass a key


def test_reusable_holdout_noise_keys_never_repeat():
    """Two identical Gaussian queries through the object get independent noise."""
    rh = guard.ReusableHoldout(jax.random.key(0), _data(0), mechanism=M.gaussian(0.05))
    w = jnp.ones((1, D))
    answers = np.array([float(rh.query(accuracy, w)[0][0]) for _ in range(5)])
    assert len(np.unique(answers)) == 5


def test_bad_input():
    holdout = _data(0)
    mech = M.naive()
    with pytest.raises(TypeError, match="key"):
        guard.init(0, holdout, mechanism=mech)
    with pytest.raises(ValueError, match="single PRNG key"):
        guard.init(jax.random.split(jax.random.key(0), 2), holdout, mechanism=mech)
    with pytest.raises(ValueError, match="at least 1 row"):
        guard.init(jax.random.key(0), jnp.zeros((0, 3)), mechanism=mech)
    with pytest.raises(ValueError, match="same number of rows"):
        guard.init(jax.random.key(0), (jnp.zeros((5, 3)), jnp.zeros(4)), mechanism=mech)
    with pytest.raises(TypeError, match="mechanism"):
        guard.init(jax.random.key(0), holdout, mechanism="naive")
    with pytest.raises(TypeError, match="dtype"):
        guard.init(jax.random.key(0), holdout, mechanism=mech, dtype=jnp.int32)
    state = guard.init(jax.random.key(0), holdout, mechanism=mech)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        guard.query(state, jnp.full((2, N), 1.5))
    with pytest.raises(ValueError, match="finite"):
        guard.query(state, jnp.full((2, N), jnp.nan))
    with pytest.raises(ValueError, match=f"shape \\(q, {N}\\)"):
        guard.query(state, jnp.zeros((2, N + 1)))
    with pytest.raises(ValueError, match="params"):
        guard.query(state, jnp.zeros((2, N)), params=jnp.zeros((2, D)))
    thr = guard.init(jax.random.key(0), holdout, mechanism=M.thresholdout(0.04, 0.01))
    with pytest.raises(ValueError, match="train"):
        guard.query(thr, accuracy, jnp.zeros((2, D)))
    with pytest.raises(ValueError, match="train_values"):
        guard.query(thr, jnp.zeros((2, N)))
    with pytest.raises(TypeError, match="GuardState"):
        guard.query({"holdout": holdout}, accuracy, jnp.zeros((2, D)))
