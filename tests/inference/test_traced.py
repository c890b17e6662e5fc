"""Trace MH over a buffer of uniforms (spec A7): exact balance, stationarity, overflow, errors.

Program P_N (``_program``): ``n ~ Geometric(½)`` on {1, 2, …} truncated at N by capping the
trials — one uniform per trial, success iff ``u < ½``; after N − 1 failures ``n = N`` without a
further read, so ``P(n) = 2^{−n}`` for ``n < N`` and ``P(N) = 2^{−(N−1)}`` —, then
``b_1 … b_n ~ Bernoulli(½)`` (``b = u < ½``), factor ``N(3 | s, 0.5)`` with ``s = Σ b``;
output ``(n, s)``. The exact posterior ``∝ P(n)·Binom(n, ½)(s)·N(3 | s, 0.5)`` is enumerated
in NumPy (``_posterior``), independently of the JAX code. A run reads ``g(n) + n`` uniforms,
``g(n) = n`` for ``n < N`` and ``N − 1`` for ``n = N``.

1. **Exact (float64, no randomness)** on P_4 with ``K = 8`` (at most 7 reads, so one entry is
   always unused). The program sees each uniform only through ``u < ½``, so the kernel on
   buffers lumps exactly onto the 2⁸ bit patterns ``c_j = [u_j < ½]`` (given the pattern the
   uniforms are i.i.d. uniform in their halves, and the transition law depends on ``u`` only
   through ``c``); the target is ``π(c) ∝ N(3 | s(c), 0.5)`` (each cell has volume 2⁻⁸).
   The transition matrix is built from the library's own ``trace_mh_propose`` run on the
   canonical representative (0.25 / 0.75) of every pattern, every index ``i < n_used`` and both
   halves of the refreshed ``u_i`` (each with probability ½): ``P(c, c') = Σ_i (1/n)(½)·α``.
   Checks: detailed balance ``π_c P_cc' = π_c' P_c'c`` and ``πP = π`` to 1e-12, also after the
   Gibbs refresh of unused entries (matrix built from its definition), and ``π`` lumped onto
   ``(n, s)`` equals the closed-form posterior. The no-``n/n'`` mutant moves ``π`` by more
   than 1e-3 in total variation on ``(n, s)`` (measured: 0.0041).
2. **Statistical (float32, fixed seeds)** on P_10 with ``K = 20``. Each test function has
   false-positive rate ≤ α = 1e-4: a test with m criteria uses α/m for each (Bonferroni). χ²
   tests pool the cells with expected count < 5.

   * From the prior: M = 2·10⁴ vmapped chains × T = 400 steps. The spec's 10⁵ × 200 does not
     fit the CI budget, and 200 steps are too few: the kernel's second eigenvalue is 0.986, and
     the exact T-step law (computed offline on the 2046 valid traces) is at TV 0.0067 from π
     after 200 steps and 2.9e-4 after 400. Asymptotically E TV ≈ √(1/(2πM)) Σ √p ≈ 0.010
     (≤ √(k/(2πM)) over k cells); the test uses the non-asymptotic bound
     TV ≤ ½ Σ √(p(1−p)/M) + √(log(2/α)/(2M)) ≈ 0.012 + 0.016 (the first term bounds E TV by
     Jensen, the second is McDiarmid's deviation at level α/2; the 2.9e-4 bias is negligible
     beside it), and χ² p > α/2.
   * One-step invariance (Gandy–Scott): M = 10⁵ exact posterior draws of ``(n, b)``, buffers
     with each uniform drawn inside the half that produces it, then 1 and 5 steps: χ² p > α/2
     after each.
   * Mutant without ``n/n'``: the same 5 steps must give p < 1e-8 (exact non-centrality from
     the 2046-trace matrix: λ ≈ 290 on 28 df, median p ≈ 1e-50, 0.1 % quantile ≈ 1e-31).
   * Overflow chains (K = 6 < 19): proposals that need more than K uniforms are flagged,
     counted and never accepted; the chain targets the posterior given ``n_used ≤ K`` (that is
     ``n ≤ 3``), χ² p > α with 4000 chains × 200 steps from the conditioned prior.
   * Involutive MH, scaling move ``(x, v) ↦ (x·e^v, −v)`` on N(0, I₂): one step from 10⁵ exact
     draws, KS on both coordinates and on |x|² ~ χ²₂ (each p > α/3); without the Jacobian
     ``e^{2v}`` the smallest p must be < 1e-8.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm
from scipy import stats

from theorylab.inference import reference, traced

OBS, SD = 3.0, 0.5
ALPHA = 1e-4
N_EXACT, K_EXACT = 4, 8
NMAX, K = 10, 20
M_PRIOR, T_PRIOR = 20_000, 400
M_POST = 100_000


# ------------------------------------------------------------------------------------------
# The program and its exact posterior
# ------------------------------------------------------------------------------------------


def _program(nmax):
    return traced.geometric_bernoulli_program(nmax, OBS, SD)


def _posterior(nmax):
    """Exact posterior table ``post[n, s]`` (float64), by enumeration in NumPy."""
    return reference.geometric_bernoulli_posterior(nmax, OBS, SD)


def _histogram(n, s, nmax):
    counts = np.zeros((nmax + 1, nmax + 1))
    np.add.at(counts, (np.asarray(n), np.asarray(s)), 1.0)
    return counts


def _chi2_p(counts, probs):
    """Pearson χ² p-value; cells with expected count < 5 are pooled into one."""
    counts, probs = counts.ravel(), probs.ravel()
    total = counts.sum()
    assert np.all(counts[probs == 0] == 0), "mass outside the support"
    small = probs * total < 5
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(probs[~small], probs[small].sum()) * total
    keep = exp > 0
    return stats.chisquare(obs[keep], exp[keep]).pvalue


def _tv(counts, probs):
    return 0.5 * np.abs(counts / counts.sum() - probs).sum()


# ------------------------------------------------------------------------------------------
# 1. Exact detailed balance on bit patterns (float64)
# ------------------------------------------------------------------------------------------


def _decode(bits, nmax):
    """NumPy interpreter of P_nmax on a bit pattern: ``(n, s, n_used)``."""
    pos, n = 0, 1
    while n < nmax:
        pos += 1
        if bits[pos - 1]:
            break
        n += 1
    return n, int(sum(bits[pos : pos + n])), pos + n


def _pattern_index(bits):
    return int(np.dot(np.asarray(bits, int), 1 << np.arange(len(bits))[::-1]))


@functools.cache
def _exact_setup():
    """Patterns, NumPy decoding, target π, traces, Gibbs-refresh matrix and proposal list."""
    prog = _program(N_EXACT)
    patterns = np.array(list(itertools.product((0, 1), repeat=K_EXACT)))  # index = binary
    decoded = np.array([_decode(c, N_EXACT) for c in patterns])
    pi = np.exp(-0.5 * ((OBS - decoded[:, 1]) / SD) ** 2)
    pi /= pi.sum()
    reps = np.where(patterns == 1, 0.25, 0.75)
    states = jax.jit(jax.vmap(lambda u: traced.trace_init(prog, u)))(jnp.asarray(reps, jnp.float64))
    size = len(patterns)
    G = np.zeros((size, size))  # Gibbs refresh: redraw the bits at positions >= n_used
    for c in range(size):
        used = decoded[c, 2]
        for tail in itertools.product((0, 1), repeat=K_EXACT - used):
            G[c, _pattern_index(tuple(patterns[c, :used]) + tail)] += 0.5 ** (K_EXACT - used)
    # every (pattern c, index i < n_used(c), half b of the refreshed u_i)
    moves = np.array([(c, i, b) for c in range(size) for i in range(decoded[c, 2]) for b in (0, 1)])
    return pi, G, decoded, states, moves


@functools.cache
def _exact_kernel(correct_dimension):
    """``(π, P, G, decoded, states)`` on the 2^K_EXACT bit patterns (float64)."""
    prog = _program(N_EXACT)
    pi, G, decoded, states, moves = _exact_setup()
    rows, idx, bit = moves.T

    def propose(state, i, new_u):
        proposal, log_ratio = traced.trace_mh_propose(
            state, prog, i, new_u, correct_dimension=correct_dimension
        )
        return proposal.u, jnp.exp(jnp.minimum(log_ratio, 0.0))

    batch = jax.tree.map(lambda a: a[rows], states)
    new_u, acc = jax.jit(jax.vmap(propose))(
        batch, jnp.asarray(idx), jnp.asarray(np.where(bit == 1, 0.25, 0.75))
    )
    new_bits = (np.asarray(new_u) < 0.5).astype(int)
    cols = new_bits @ (1 << np.arange(K_EXACT)[::-1])
    acc = np.asarray(acc, np.float64)
    weight = 0.5 / decoded[rows, 2]
    size = len(pi)
    P = np.zeros((size, size))
    np.add.at(P, (rows, cols), weight * acc)
    np.add.at(P, (rows, rows), weight * (1.0 - acc))
    return pi, P, G, decoded, states


def _lump(dist, decoded):
    out = np.zeros((N_EXACT + 1, N_EXACT + 1))
    np.add.at(out, (decoded[:, 0], decoded[:, 1]), dist)
    return out


@pytest.mark.x64
def test_exact_detailed_balance_on_bit_patterns():
    pi, P, G, decoded, states = _exact_kernel(True)
    # the JAX program agrees with the NumPy interpreter on every pattern
    n, s = (np.asarray(a) for a in states.out)
    np.testing.assert_array_equal(n, decoded[:, 0])
    np.testing.assert_array_equal(s, decoded[:, 1])
    np.testing.assert_array_equal(np.asarray(states.n_used), decoded[:, 2])
    assert not np.asarray(states.overflow).any()
    np.testing.assert_allclose(
        np.asarray(states.log_score), stats.norm.logpdf(OBS, decoded[:, 1], SD), rtol=1e-13
    )
    # π lumped onto (n, s) is the closed-form posterior
    np.testing.assert_allclose(_lump(pi, decoded), _posterior(N_EXACT), rtol=0, atol=1e-14)
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=0, atol=1e-13)
    np.testing.assert_allclose(G.sum(1), 1.0, rtol=0, atol=1e-13)
    # trans-dimensional moves happen (in both directions) and are sometimes rejected
    jumps = (P > 0) & (decoded[:, 2][:, None] != decoded[:, 2][None, :])
    assert jumps.sum() > 100
    assert np.any((np.diag(P) > 0) & (np.diag(P) < 1))
    flow = pi[:, None] * P
    assert np.abs(flow - flow.T).max() < 1e-12
    assert np.abs(pi @ P - pi).max() < 1e-12
    assert np.abs(pi @ G - pi).max() < 1e-12
    assert np.abs(pi @ P @ G - pi).max() < 1e-12


@pytest.mark.x64
def test_exact_mutant_without_dimension_factor_breaks_invariance():
    pi, P, G, decoded, _ = _exact_kernel(False)
    flow = pi[:, None] * P
    assert np.abs(flow - flow.T).max() > 1e-4
    tv = 0.5 * np.abs(_lump(pi @ P @ G, decoded) - _lump(pi, decoded)).sum()
    assert tv > 1e-3, tv


# ------------------------------------------------------------------------------------------
# 2. Statistical tests on P_10 (float32)
# ------------------------------------------------------------------------------------------


@functools.cache
def _init_runner():
    prog = _program(NMAX)
    return jax.jit(jax.vmap(lambda u: traced.trace_init(prog, u)))


@functools.cache
def _step_runner(correct_dimension):
    prog = _program(NMAX)

    def one(key, state):
        return traced.trace_mh_step(key, state, prog, correct_dimension=correct_dimension)

    return jax.jit(jax.vmap(one))


def test_chains_from_prior_reach_exact_posterior():
    # every buffer gives a valid trace of P_10 (K = 20 >= 19 reads), so trace_init on U(0, 1)^K
    # draws is a prior draw (trace_init_from_prior is exercised in the overflow test); the steps
    # run as T_PRIOR jitted vmapped calls, sharing the compilation with the one-step tests
    k0, k1 = jax.random.split(jax.random.key(2024))
    state = _init_runner()(jax.random.uniform(k0, (M_PRIOR, K)))
    step = _step_runner(True)
    keys = jax.random.split(k1, (T_PRIOR, M_PRIOR))
    acc, ovf = jnp.zeros(()), jnp.zeros((), jnp.int32)
    for t in range(T_PRIOR):
        state, info = step(keys[t], state)
        acc, ovf = acc + info.acceptance_probability.mean(), ovf + info.overflow.sum()
    post = _posterior(NMAX)
    counts = _histogram(state.out[0], state.out[1], NMAX)
    tv = _tv(counts, post)
    bound = 0.5 * np.sum(np.sqrt(post * (1 - post) / M_PRIOR)) + np.sqrt(
        np.log(2 / ALPHA) / (2 * M_PRIOR)
    )
    assert int(ovf) == 0  # overflow is impossible
    assert 0.1 < float(acc) / T_PRIOR < 0.9
    assert tv < bound, (tv, bound)
    assert _chi2_p(counts, post) > ALPHA / 2


def _posterior_buffers(seed, num):
    """Exact posterior draws of (n, b) and buffers producing them (float32 ``[num, K]``)."""
    rng = np.random.default_rng(seed)
    post = _posterior(NMAX)
    cell = rng.choice(post.size, size=num, p=post.ravel())
    n, s = np.divmod(cell, NMAX + 1)
    # b: s ones at uniformly random positions among the first n
    keys = np.where(np.arange(NMAX) < n[:, None], rng.random((num, NMAX)), np.inf)
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    b = ranks < s[:, None]
    g = np.where(n < NMAX, n, NMAX - 1)  # number of geometric trials read
    j = np.arange(K)[None, :]
    geo_bit = j == (n[:, None] - 1)  # success on the last trial (never when n = NMAX)
    b_pad = np.concatenate([b, np.zeros((num, K), bool)], axis=1)
    b_at = np.take_along_axis(b_pad, np.clip(j - g[:, None], 0, K + NMAX - 1), axis=1)
    bit = np.where(j < g[:, None], geo_bit, b_at)
    v = rng.random((num, K), dtype=np.float32)
    used = j < (g + n)[:, None]
    u = np.where(used, np.where(bit, 0.5 * v, 0.5 + 0.5 * v), v).astype(np.float32)
    return u, n, s


def _steps_from_posterior(correct_dimension, num_steps, seed=7):
    step = _step_runner(correct_dimension)
    u, n0, s0 = _posterior_buffers(seed, M_POST)
    state = _init_runner()(jnp.asarray(u))
    np.testing.assert_array_equal(np.asarray(state.out[0]), n0)  # buffers encode the draws
    np.testing.assert_array_equal(np.asarray(state.out[1]), s0)
    keys = jax.random.split(jax.random.key(seed), (num_steps, M_POST))
    p_values, acc = [], []
    for t in range(num_steps):
        state, info = step(keys[t], state)
        acc.append(float(info.accepted.mean()))
        counts = _histogram(state.out[0], state.out[1], NMAX)
        p_values.append(_chi2_p(counts, _posterior(NMAX)))
    return p_values, acc


def test_one_step_invariance_from_exact_posterior():
    p_values, acc = _steps_from_posterior(True, 5)
    assert min(acc) > 0.1  # the chains really move
    assert p_values[0] > ALPHA / 2  # one step
    assert p_values[4] > ALPHA / 2  # five steps


def test_mutant_without_dimension_factor_rejected():
    p_values, _ = _steps_from_posterior(False, 5)
    assert p_values[4] < 1e-8, p_values


# ------------------------------------------------------------------------------------------
# 3. Overflow
# ------------------------------------------------------------------------------------------


def test_tape_overflow_is_flagged_not_truncated():
    tape = traced.make_tape(jnp.array([0.1, 0.9]))
    for expected in (0.1, 0.9):
        value, tape = traced.read_uniform(tape)
        assert float(value) == pytest.approx(expected) and not bool(tape.overflow)
    value, tape = traced.read_uniform(tape)
    assert bool(tape.overflow) and int(tape.counter) == 3 and float(value) == 0.5

    prog = _program(NMAX)
    _, _, n_used, overflow = prog(jnp.full(6, 0.75))  # all geometric trials fail
    assert bool(overflow) and int(n_used) > 6
    with pytest.raises(ValueError, match="overflow"):
        traced.trace_init(prog, jnp.full(6, 0.75))
    state = traced.trace_init(prog, jnp.full(K, 0.75))  # n = 10 needs 19 <= 20 uniforms
    assert int(state.out[0]) == NMAX and int(state.n_used) == 19 and not bool(state.overflow)


def test_overflowing_proposals_rejected_and_counted():
    small_k, chains, steps = 6, 4000, 200
    prog = _program(NMAX)

    keys = jax.random.split(jax.random.key(5), (2, chains))
    init = jax.jit(jax.vmap(lambda k: traced.trace_init_from_prior(k, prog, small_k)))
    state = init(keys[0])  # prior given n_used <= K: P(n <= 3) = 7/8, so redraws happen
    run = jax.jit(jax.vmap(lambda k, s: traced.trace_mh_chain(k, prog, s, steps)))
    state, info = run(keys[1], state)
    assert int(info.overflow.sum()) > 1000  # proposals beyond n = 3 overflow K = 6
    assert not bool((info.overflow & info.accepted).any())
    assert np.all(np.asarray(info.proposed_n_used)[np.asarray(info.overflow)] > small_k)
    assert not bool(state.overflow.any()) and int(state.n_used.max()) <= small_k
    assert bool(jnp.isfinite(state.log_score).all())
    # target: the posterior given n_used <= K, i.e. given n <= 3 (2n reads)
    post = _posterior(NMAX)
    post[4:] = 0.0
    post /= post.sum()
    counts = _histogram(state.out[0], state.out[1], NMAX)
    assert _chi2_p(counts, post) > ALPHA


# ------------------------------------------------------------------------------------------
# 4. API: chain, categorical/normal readers, bad inputs
# ------------------------------------------------------------------------------------------


def test_chain_api_and_readers():
    def prog(u):
        tape = traced.make_tape(u)
        k, tape = traced.read_categorical(tape, jnp.array([0.2, 0.3, 0.5]))
        x, tape = traced.read_normal(tape, 1.0, 2.0)
        return traced.tape_result(tape, (k, x), norm.logpdf(0.5, x, 1.0))

    (k, x), _, n_used, overflow = prog(jnp.array([0.45, 0.5]))
    assert int(k) == 1 and float(x) == pytest.approx(1.0) and int(n_used) == 2
    assert not bool(overflow)
    (k, _), _, _, _ = prog(jnp.array([0.1999, 0.5]))
    assert int(k) == 0
    state, info = traced.trace_mh_chain(jax.random.key(0), prog, jnp.full(3, 0.5), 4)
    assert info.accepted.shape == (4,) and info.acceptance_probability.shape == (4,)
    assert state.u.shape == (3,) and state.u.dtype == jnp.float32
    assert bool(jnp.all((state.u > 0) & (state.u < 1)))


def test_bad_inputs():
    prog = _program(NMAX)
    key = jax.random.key(0)
    state = traced.trace_init(prog, jnp.full(K, 0.25))
    with pytest.raises(TypeError, match="prog"):
        traced.trace_init("not callable", jnp.full(K, 0.25))
    with pytest.raises(TypeError, match="prog"):
        traced.trace_mh_step(key, state, None)
    with pytest.raises(ValueError, match="u must be 1-dimensional"):
        traced.trace_init(prog, jnp.full((2, K), 0.25))
    with pytest.raises(TypeError, match="u must have a float dtype"):
        traced.trace_init(prog, jnp.zeros(K, jnp.int32))
    with pytest.raises(ValueError, match=r"u must contain uniforms in \[0, 1\]"):
        traced.trace_init(prog, jnp.full(K, 1.5))
    with pytest.raises(ValueError, match="K must be in"):
        traced.trace_init_from_prior(key, prog, 0)
    with pytest.raises(TypeError, match="K must be an integer"):
        traced.trace_init_from_prior(key, prog, 20.0)
    with pytest.raises(ValueError, match="max_tries"):
        traced.trace_init_from_prior(key, prog, K, max_tries=0)
    with pytest.raises(ValueError, match="num_steps must be in"):
        traced.trace_mh_chain(key, prog, state, 0)
    with pytest.raises(TypeError, match="key"):
        traced.trace_mh_step(0, state, prog)
    with pytest.raises(TypeError, match="state"):
        traced.trace_mh_step(key, (state.u,), prog)
    with pytest.raises(TypeError, match="must return a tuple"):
        traced.trace_init(lambda u: u.sum(), jnp.full(K, 0.25))
    # zero-density initial traces are refused; the prior initialiser redraws past them
    impossible = lambda u: (u[0], jnp.where(u[0] < 0.5, -jnp.inf, 0.0), 1, False)  # noqa: E731
    with pytest.raises(ValueError, match="finite log_score"):
        traced.trace_init(impossible, jnp.full(K, 0.25))
    state = traced.trace_init_from_prior(key, impossible, K)
    assert float(state.u[0]) >= 0.5 and float(state.log_score) == 0.0
    never = lambda u: (u[0], -jnp.inf, 1, False)  # noqa: E731
    with pytest.raises(ValueError, match="max_tries = 5"):
        traced.trace_init_from_prior(key, never, K, max_tries=5)


# ------------------------------------------------------------------------------------------
# Involutive MH: scaling move on a Gaussian
# ------------------------------------------------------------------------------------------


def _gauss_logdensity(x):
    return -0.5 * jnp.sum(x**2)


def _aux_sample(key, x):
    return jax.random.normal(key, (1,), x.dtype)


def _aux_logpdf(x, v):
    return -0.5 * jnp.sum(v**2)


def _scale_involution(x, v):
    return x * jnp.exp(v[0]), -v


@functools.cache
def _involutive_runner(include_jacobian):
    def one(key, x):
        state = traced.involutive_init(x, _gauss_logdensity)
        state, info = traced.involutive_mh_step(
            key,
            state,
            _gauss_logdensity,
            _aux_sample,
            _aux_logpdf,
            _scale_involution,
            include_jacobian=include_jacobian,
        )
        return state.position, info.accepted

    return jax.jit(jax.vmap(one))


def _involutive_p_value(include_jacobian):
    k0, k1 = jax.random.split(jax.random.key(3))
    x0 = jax.random.normal(k0, (M_POST, 2))
    x, accepted = _involutive_runner(include_jacobian)(jax.random.split(k1, M_POST), x0)
    x = np.asarray(x, float)
    p = min(
        stats.kstest(x[:, 0], "norm").pvalue,
        stats.kstest(x[:, 1], "norm").pvalue,
        stats.kstest((x**2).sum(1), stats.chi2(2).cdf).pvalue,
    )
    return p, float(np.mean(accepted))


def test_involutive_scaling_move_preserves_gaussian():
    x, v = jnp.array([0.3, -1.2]), jnp.array([0.7])
    back = _scale_involution(*_scale_involution(x, v))
    np.testing.assert_allclose(back[0], x, rtol=1e-6)
    np.testing.assert_allclose(back[1], v)
    p, acc = _involutive_p_value(True)
    assert 0.1 < acc < 0.95
    assert p > ALPHA / 3


def test_involutive_without_jacobian_rejected():
    p, _ = _involutive_p_value(False)
    assert p < 1e-8
