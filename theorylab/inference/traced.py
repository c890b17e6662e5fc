"""Trace Metropolis–Hastings over a fixed-size buffer of uniforms (trans-dimensional programs).

A static-shape JAX port of monad-bayes' ``Traced`` (Ścibior, Kammar & Ghahramani, POPL 2018,
"Functional programming for modular Bayesian inference"). In monad-bayes a trace is the list of
uniforms a program consumed; here it is a fixed buffer ``u: f[K]`` read through a counter, so
every shape is static and the kernel ``jit``s and ``vmap``s over chains.

**Programs.** A program is a pure JAX function

    ``prog(u: f[K]) -> (out, log_score, n_used, overflow)``

that reads the uniforms ``u[0], u[1], …`` in order through a counter (it may branch with
``lax.cond`` and loop with ``lax.while_loop`` / ``lax.fori_loop``, so different runs read
different numbers of uniforms). ``out`` is any pytree; ``log_score`` is the sum of the
program's log-likelihood factors — the prior is absorbed into the inverse-CDF transforms of the
uniforms (normal via ``ndtri(u)``, Bernoulli via ``u < p``, categorical via ``searchsorted``),
so the density of a trace with respect to Lebesgue measure on ``[0, 1]^n`` is
``exp(log_score)``; ``n_used`` is the number of uniforms read and ``overflow`` is True when the
run needed more than ``K`` of them. An overflowing run has score ``−∞``: it is never silently
truncated — it is rejected as a proposal, counted in :class:`TraceMHInfo`, and refused as an
initial trace. Choose ``K`` so that overflow is impossible (or negligible: the chain targets the
posterior conditioned on ``n_used ≤ K``, and ``info.overflow`` reports how often it mattered).

The :class:`Tape` helpers write such programs::

    def prog(u):
        tape = make_tape(u)
        n, tape = read_geometric(tape, 0.5, 10)          # n ∈ {1, …, 10}
        def body(_, carry):
            s, tape = carry
            b, tape = read_bernoulli(tape, 0.5)
            return s + b.astype(jnp.int32), tape
        s, tape = jax.lax.fori_loop(0, n, body, (jnp.int32(0), tape))
        return tape_result(tape, (n, s), norm.logpdf(3.0, s.astype(u.dtype), 0.5))

**Kernel** (spec §1.4, the MHG theorem). From a trace ``u`` with ``n = n_used(u)`` pick
``i ~ U{0, …, n−1}``, replace ``u_i`` by a fresh uniform, rerun the program on the new buffer
``u'`` and accept with probability

    ``min(1, ρ)``,   ``ρ = (q/p) · (n/n')``,

where ``p = exp(log_score(u))``, ``q = exp(log_score(u'))`` are the trace densities and
``n' = n_used(u')``. The target is the density ``∝ exp(log_score)`` on ``[0, 1]^K`` (unused
entries uniform), i.e. the posterior given ``n_used ≤ K``.

The factor ``n/n'`` is the ratio of the index-selection probabilities ``(1/n')/(1/n)`` of the
reverse and forward moves. The reverse move always exists: changing ``u_i`` leaves the prefix
``u_0 … u_{i−1}`` unchanged, so the rerun reads position ``i`` again (``n' ≥ i + 1``), and from
``u'`` choosing ``i`` and drawing the old ``u_i`` returns to ``u``. ``correct_dimension=False``
drops ``n/n'``: that kernel is **invalid** (not invariant for the posterior when the dimension
changes); it exists only so that tests can show that they detect it.

After the MH step the unused entries ``u_j``, ``j ≥ n_used``, of the current trace are redrawn
from ``U(0, 1)``. This is an exact Gibbs move: the program's output, score and ``n_used`` depend
only on the used prefix, so under the target the unused entries are independent uniforms given
that prefix; redrawing them samples that conditional exactly. (It also makes the extension of
a trace by a dimension-increasing proposal read fresh uniforms, as in monad-bayes.)

:func:`involutive_mh_step` is the general involutive MH kernel on flat fixed-size states
(auxiliary variable + involution + Jacobian); the trace kernel is the special case whose
auxiliary variables are the index ``i`` and the fresh uniform, with unit Jacobian.

Fresh uniforms are drawn from ``(0, 1)`` (the smallest normal float replaces 0), so inverse-CDF
transforms such as ``ndtri`` stay finite.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from theorylab.core.checks import (
    check_array,
    check_int,
    check_key,
    check_type,
    describe,
    is_concrete,
)
from theorylab.inference.mcmc import MCMCInfo

__all__ = [
    "InvolutiveState",
    "Tape",
    "TraceMHInfo",
    "TraceState",
    "geometric_bernoulli_program",
    "involutive_init",
    "involutive_mh_step",
    "make_tape",
    "read_bernoulli",
    "read_categorical",
    "read_geometric",
    "read_normal",
    "read_uniform",
    "tape_result",
    "trace_init",
    "trace_init_from_prior",
    "trace_mh_chain",
    "trace_mh_propose",
    "trace_mh_step",
]


# ------------------------------------------------------------------------------------------
# Writing programs: a tape of uniforms read through a counter
# ------------------------------------------------------------------------------------------


class Tape(NamedTuple):
    """Reader over a buffer of uniforms: ``buffer`` (``f[K]``), ``counter`` (number of reads
    so far, may exceed ``K``) and ``overflow`` (True once a read went past ``K``)."""

    buffer: jax.Array
    counter: jax.Array
    overflow: jax.Array


def make_tape(u) -> Tape:
    """A :class:`Tape` at position 0 over the buffer ``u`` (1-D float array)."""
    u = jnp.asarray(u)
    return Tape(u, jnp.zeros((), jnp.int32), jnp.zeros((), bool))


def read_uniform(tape: Tape):
    """Read the next uniform: ``(u, tape)``.

    Past the end of the buffer the read sets ``tape.overflow`` and returns the harmless value
    0.5 (the counter still advances, so ``n_used > K`` records how many reads were attempted).
    Loops whose termination depends on the values read must also stop on ``tape.overflow``
    (:func:`read_geometric` does).
    """
    size = tape.buffer.shape[0]
    i = tape.counter
    inside = i < size
    value = jnp.where(
        inside, tape.buffer[jnp.minimum(i, size - 1)], jnp.asarray(0.5, tape.buffer.dtype)
    )
    return value, Tape(tape.buffer, i + 1, tape.overflow | ~inside)


def read_normal(tape: Tape, loc=0.0, scale=1.0):
    """``loc + scale · Φ⁻¹(u)`` from one uniform: ``(x, tape)``."""
    u, tape = read_uniform(tape)
    return loc + scale * ndtri(u), tape


def read_bernoulli(tape: Tape, p):
    """``u < p`` (a bool, True with probability ``p``) from one uniform: ``(b, tape)``."""
    u, tape = read_uniform(tape)
    return u < p, tape


def read_categorical(tape: Tape, probs):
    """Index ``k`` with probability ``probs[k] / Σ probs`` from one uniform: ``(k, tape)``.

    ``k = #{j : cdf[j] ≤ u·Σ probs}`` (searchsorted on the cumulative sums), clipped to the last
    index against rounding; ``probs`` need not be normalised.
    """
    u, tape = read_uniform(tape)
    cdf = jnp.cumsum(jnp.asarray(probs))
    k = jnp.searchsorted(cdf, u * cdf[-1], side="right")
    return jnp.minimum(k, cdf.shape[0] - 1).astype(jnp.int32), tape


def read_geometric(tape: Tape, p, max_value):
    """Number of Bernoulli(``p``) trials up to the first success, capped at ``max_value``.

    One uniform per trial (success iff ``u < p``). Trials stop at the first success or when the
    count reaches ``max_value``: ``k < max_value`` is returned with probability
    ``(1−p)^{k−1} p`` after reading ``k`` uniforms, and ``max_value`` with probability
    ``(1−p)^{max_value−1}`` after reading ``max_value − 1`` uniforms (the cap is a truncation
    of the trials, not a renormalisation). Stops on overflow. Returns ``(k, tape)``, ``k``
    int32 in ``{1, …, max_value}``.
    """

    def cond(carry):
        k, done, t = carry
        return ~done & (k < max_value) & ~t.overflow

    def body(carry):
        k, _, t = carry
        u, t = read_uniform(t)
        success = u < p
        # a read past the buffer is not a trial: the count stays (the run is invalid anyway)
        return jnp.where(success | t.overflow, k, k + 1), success, t

    init = (jnp.ones((), jnp.int32), jnp.zeros((), bool), tape)
    k, _, tape = jax.lax.while_loop(cond, body, init)
    return k, tape


def tape_result(tape: Tape, out, log_score):
    """The program return value ``(out, log_score, n_used, overflow)`` from the final tape."""
    return out, log_score, tape.counter, tape.overflow


# ------------------------------------------------------------------------------------------
# Trace MH
# ------------------------------------------------------------------------------------------


class TraceState(NamedTuple):
    """A trace: the buffer ``u`` (``f[K]``), the program's ``out`` (pytree), ``log_score``
    (``−inf`` when the run overflowed or scored NaN), ``n_used`` and ``overflow``."""

    u: jax.Array
    out: Any
    log_score: jax.Array
    n_used: jax.Array
    overflow: jax.Array


class TraceMHInfo(NamedTuple):
    """Per step: ``acceptance_probability = min(1, exp(log_accept_ratio))``, ``accepted``,
    ``log_accept_ratio`` (``log ρ = log q − log p + log n − log n'``), ``proposed_n_used``
    (``n'``)
    and ``overflow`` (the proposal overflowed the buffer and was therefore rejected)."""

    acceptance_probability: jax.Array
    accepted: jax.Array
    log_accept_ratio: jax.Array
    proposed_n_used: jax.Array
    overflow: jax.Array


def _check_prog(prog) -> None:
    if not callable(prog):
        raise TypeError(
            f"prog must be a callable u -> (out, log_score, n_used, overflow); got {describe(prog)}"
        )


def _uniform(key, shape, dtype):
    """Uniforms on ``(0, 1)``: 0 is replaced by the smallest normal float."""
    return jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)


def _run(prog, u) -> TraceState:
    """Run ``prog`` on ``u``; the score is ``−inf`` on overflow or NaN."""
    result = prog(u)
    if not isinstance(result, tuple) or len(result) != 4:
        raise TypeError(
            f"prog must return a tuple (out, log_score, n_used, overflow); got {describe(result)}"
        )
    out, log_score, n_used, overflow = result
    log_score = jnp.asarray(log_score, u.dtype)
    n_used = jnp.asarray(n_used, jnp.int32)
    overflow = jnp.asarray(overflow, bool)
    for name, value in (("log_score", log_score), ("n_used", n_used), ("overflow", overflow)):
        if value.shape != ():
            raise ValueError(f"prog's {name} must be a scalar; got {describe(value)}")
    overflow = overflow | (n_used > u.shape[0])
    bad = overflow | jnp.isnan(log_score)
    log_score = jnp.where(bad, jnp.asarray(-jnp.inf, u.dtype), log_score)
    return TraceState(u, out, log_score, n_used, overflow)


def _check_buffer(u, name="u"):
    u = check_array(u, name, ndim=1, kind="float", min_size=1)
    if is_concrete(u):
        host = np.asarray(u)
        if not np.all((host >= 0.0) & (host <= 1.0)):
            raise ValueError(
                f"{name} must contain uniforms in [0, 1]; got values in "
                f"[{host.min():.3g}, {host.max():.3g}]"
            )
    return u


def _check_valid(state: TraceState, what: str) -> None:
    """Raise ``ValueError`` for a concrete trace that overflowed or has zero density."""
    if not (is_concrete(state.log_score) and is_concrete(state.overflow)):
        return
    if bool(np.asarray(state.overflow)):
        raise ValueError(
            f"{what} overflowed the buffer: the program read {int(state.n_used)} uniforms but "
            f"K = {state.u.shape[0]}; use a larger buffer"
        )
    if not np.isfinite(float(state.log_score)):
        raise ValueError(
            f"{what} must have a finite log_score (nonzero density); got {float(state.log_score)}"
        )


def trace_init(prog: Callable, u) -> TraceState:
    """The trace of ``prog`` on the buffer ``u`` (``f[K]``, values in ``[0, 1]``).

    Raises ``ValueError`` if the run overflows the buffer or its ``log_score`` is ``−inf`` or
    NaN — checked when the values are concrete; under ``jit``/``vmap`` the check is skipped and
    the caller should test ``jnp.isfinite(state.log_score)`` (a chain started from a zero-
    density trace accepts the first finite proposal, so it is not exact from the start).
    """
    _check_prog(prog)
    u = _check_buffer(u)
    state = _run(prog, u)
    _check_valid(state, "the initial trace")
    return state


def trace_init_from_prior(key, prog: Callable, K: int, max_tries: int = 1000) -> TraceState:
    """Draw ``u ~ U(0, 1)^K`` until the trace has a finite score and no overflow.

    As monad-bayes' ``mcmcP`` discards zero-density traces: the result is a prior draw
    conditioned on nonzero likelihood. At most ``max_tries`` draws; if none is valid a
    ``ValueError`` is raised when the result is concrete (under ``vmap``/``jit`` the last,
    invalid, trace is returned: test ``jnp.isfinite(state.log_score)``). ``u`` has JAX's
    default float dtype (float32, or float64 under x64).
    """
    key = check_key(key, "key")
    _check_prog(prog)
    K = check_int(K, "K", min_value=1)
    max_tries = check_int(max_tries, "max_tries", min_value=1)
    dtype = jnp.result_type(float)

    def draw(k):
        return _run(prog, _uniform(k, (K,), dtype))

    def invalid(state):
        return state.overflow | ~jnp.isfinite(state.log_score)

    def cond(carry):
        tries, state = carry
        return (tries == 0) | ((tries < max_tries) & invalid(state))

    def body(carry):
        tries, _ = carry
        return tries + 1, draw(jax.random.fold_in(key, tries))

    # the program appears once (in the body), which halves the compile time: the loop starts
    # from a placeholder state of the right structure and always runs at least once
    shapes = jax.eval_shape(draw, key)
    placeholder = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
    _, state = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), placeholder))
    if is_concrete(state.log_score) and bool(np.asarray(invalid(state))):
        raise ValueError(
            f"no trace with finite log_score and no overflow in max_tries = {max_tries} prior "
            "draws; increase max_tries or K, or check the program's likelihood"
        )
    return state


def trace_mh_propose(
    state: TraceState, prog: Callable, index, new_uniform, *, correct_dimension: bool = True
):
    """The single-site proposal as a pure function of its randomness.

    Sets ``u[index] = new_uniform``, reruns ``prog`` and returns ``(proposal, log_ratio)`` with
    ``log_ratio = log q − log p + log n − log n'`` (spec §1.4: ``ρ = (q/p)·(n/n')``, ``p, q``
    the current and proposed trace densities ``exp(log_score)``, ``n, n'`` their ``n_used``,
    taken as 1 when 0). ``log_ratio`` is ``−inf`` when the
    proposal overflowed, and NaN becomes ``−inf``. ``index`` must lie in
    ``{0, …, n_used − 1}`` for the ratio to be the MH ratio (:func:`trace_mh_step` draws it
    so). ``correct_dimension=False`` omits ``log n − log n'``: an **invalid** kernel, for tests.
    """
    check_type(state, "state", TraceState, "a TraceState (from trace_init)")
    _check_prog(prog)
    u = state.u.at[index].set(jnp.asarray(new_uniform, state.u.dtype))
    proposal = _run(prog, u)
    log_ratio = proposal.log_score - state.log_score
    if correct_dimension:
        n_cur = jnp.maximum(state.n_used, 1).astype(state.u.dtype)
        n_new = jnp.maximum(proposal.n_used, 1).astype(state.u.dtype)
        log_ratio = log_ratio + jnp.log(n_cur) - jnp.log(n_new)
    log_ratio = jnp.where(jnp.isnan(log_ratio) | proposal.overflow, -jnp.inf, log_ratio)
    return proposal, log_ratio


def trace_mh_step(key, state: TraceState, prog: Callable, *, correct_dimension: bool = True):
    """One single-site trace MH step followed by the Gibbs refresh of the unused entries.

    ``i ~ U{0, …, n_used − 1}``, ``u_i ←`` fresh uniform, rerun, accept with
    ``min(1, (q/p)·(n/n'))`` (spec §1.4: the reverse move exists because changing ``u_i``
    leaves the prefix unchanged, so the rerun reads position ``i`` again). Overflowing proposals
    are rejected (score ``−∞``) and flagged in ``info.overflow``. Then ``u_j`` for
    ``j ≥ n_used`` of the resulting state are redrawn uniformly (exact Gibbs move, see module
    docstring). ``correct_dimension=False`` is the **invalid** mutant without ``n/n'``.

    Returns ``(state, TraceMHInfo)``; ``vmap`` over keys and states for several chains.
    """
    key = check_key(key, "key")
    check_type(state, "state", TraceState, "a TraceState (from trace_init)")
    _check_prog(prog)
    size, dtype = state.u.shape[0], state.u.dtype
    # One draw of size + 3 uniforms on (0, 1) supplies all the randomness of the step (much
    # cheaper to compile and run than four split keys): the index i = ⌊v₀·n⌋ (uniform on
    # {0, …, n−1} up to the float grid), the fresh u_i = v₁, the accept test log v₂ < log ρ,
    # and the refreshed unused entries v₃, …, v_{K+2}.
    draws = _uniform(key, (size + 3,), dtype)
    n = jnp.clip(state.n_used, 1, size)
    index = jnp.minimum(jnp.floor(draws[0] * n).astype(jnp.int32), n - 1)
    proposal, log_ratio = trace_mh_propose(
        state, prog, index, draws[1], correct_dimension=correct_dimension
    )
    accepted = jnp.log(draws[2]) < log_ratio
    new = jax.tree.map(lambda a, b: jnp.where(accepted, a, b), proposal, state)
    unused = jnp.arange(size) >= new.n_used
    new = new._replace(u=jnp.where(unused, draws[3:], new.u))
    info = TraceMHInfo(
        jnp.exp(jnp.minimum(log_ratio, 0.0)),
        accepted,
        log_ratio,
        proposal.n_used,
        proposal.overflow,
    )
    return new, info


def trace_mh_chain(key, prog: Callable, init, num_steps: int, *, correct_dimension: bool = True):
    """``num_steps`` trace MH steps by ``lax.scan``: ``(final_state, infos)``.

    ``init`` is a :class:`TraceState` or a buffer ``u`` (then :func:`trace_init` is applied,
    with its checks). ``infos`` is a :class:`TraceMHInfo` of arrays with leading axis
    ``num_steps``. ``vmap`` over ``key`` and ``init`` for several chains.
    """
    key = check_key(key, "key")
    _check_prog(prog)
    num_steps = check_int(num_steps, "num_steps", min_value=1)
    state = init if isinstance(init, TraceState) else trace_init(prog, init)
    _check_valid(state, "the initial trace")

    def body(state, k):
        return trace_mh_step(k, state, prog, correct_dimension=correct_dimension)

    return jax.lax.scan(body, state, jax.random.split(key, num_steps))


# ------------------------------------------------------------------------------------------
# Involutive MH on flat fixed-size states
# ------------------------------------------------------------------------------------------


class InvolutiveState(NamedTuple):
    """Flat ``position`` (``f[d]``) and its ``logdensity``."""

    position: jax.Array
    logdensity: jax.Array


def involutive_init(position, logdensity_fn: Callable) -> InvolutiveState:
    """State at the flat ``position`` (1-D float array)."""
    position = check_array(position, "position", ndim=1, kind="float", min_size=1)
    return InvolutiveState(position, jnp.asarray(logdensity_fn(position)))


def involutive_mh_step(
    key,
    state: InvolutiveState,
    logdensity_fn: Callable,
    aux_sample: Callable,
    aux_logpdf: Callable,
    involution: Callable,
    *,
    include_jacobian: bool = True,
):
    """Involutive MH (Neklyudov et al. 2020; Cusumano-Towner et al. 2020) on flat arrays.

    Draw ``v = aux_sample(key, x)`` (``f[m]``), map ``(x', v') = involution(x, v)`` (an
    involution: applying it twice is the identity) and accept with ``min(1, ρ)``,

        ``ρ = π(x') q(v'|x') / (π(x) q(v|x)) · |det ∂(x', v')/∂(x, v)|``,

    ``log q = aux_logpdf(x, v)``; the log-Jacobian is ``slogdet(jax.jacfwd(involution))`` of the
    flattened map. ``include_jacobian=False`` drops it: an **invalid** kernel for tests.
    Returns ``(state, MCMCInfo)`` (``divergent`` is always False).
    """
    key = check_key(key, "key")
    check_type(state, "state", InvolutiveState, "an InvolutiveState (from involutive_init)")
    for name, fn in (
        ("logdensity_fn", logdensity_fn),
        ("aux_sample", aux_sample),
        ("aux_logpdf", aux_logpdf),
        ("involution", involution),
    ):
        if not callable(fn):
            raise TypeError(f"{name} must be callable; got {describe(fn)}")
    k_aux, k_acc = jax.random.split(key)
    x = state.position
    v = jnp.asarray(aux_sample(k_aux, x))
    d = x.shape[0]

    def flat_map(z):
        xp, vp = involution(z[:d], z[d:].reshape(v.shape))
        return jnp.concatenate([jnp.ravel(xp), jnp.ravel(vp)])

    z = jnp.concatenate([x, jnp.ravel(v).astype(x.dtype)])
    zp = flat_map(z)
    xp, vp = zp[:d], zp[d:].reshape(v.shape)
    logdensity_new = jnp.asarray(logdensity_fn(xp))
    log_ratio = logdensity_new + aux_logpdf(xp, vp) - state.logdensity - aux_logpdf(x, v)
    if include_jacobian:
        _, log_det = jnp.linalg.slogdet(jax.jacfwd(flat_map)(z))
        log_ratio = log_ratio + log_det
    log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
    accepted = jnp.log(jax.random.uniform(k_acc, (), x.dtype)) < log_ratio
    new = jax.tree.map(
        lambda a, b: jnp.where(accepted, a, b), InvolutiveState(xp, logdensity_new), state
    )
    info = MCMCInfo(jnp.exp(jnp.minimum(log_ratio, 0.0)), accepted, log_ratio, jnp.zeros((), bool))
    return new, info


@functools.lru_cache(maxsize=32)
def geometric_bernoulli_program(nmax: int, obs: float = 3.0, sd: float = 0.5):
    """The spec's trans-dimensional example program (A7), as a template for users.

    ``n ~ Geometric(½)`` on ``{1, 2, …}`` truncated at ``nmax`` by capping the trials (one
    uniform per trial, success iff ``u < ½``; after ``nmax − 1`` failures ``n = nmax``), then
    ``b_1 … b_n ~ Bernoulli(½)``, and the factor ``N(obs | Σ b, sd)``. Output ``(n, s = Σ b)``.
    A run reads ``g(n) + n`` uniforms with ``g(n) = n`` for ``n < nmax`` and ``nmax − 1``
    otherwise, so ``K ≥ 2·nmax − 1`` makes overflow impossible. The exact posterior is
    :func:`theorylab.inference.reference.geometric_bernoulli_posterior`. Cached, so equal
    arguments give the same function (and jit caches hit).
    """
    nmax = check_int(nmax, "nmax", min_value=1)

    def prog(u):
        tape = make_tape(u)
        n, tape = read_geometric(tape, 0.5, nmax)

        def body(_, carry):
            s, tape = carry
            b, tape = read_bernoulli(tape, 0.5)
            return s + b.astype(jnp.int32), tape

        s, tape = jax.lax.fori_loop(0, n, body, (jnp.zeros((), jnp.int32), tape))
        log_score = jax.scipy.stats.norm.logpdf(obs, s.astype(u.dtype), sd)
        return tape_result(tape, (n, s), log_score)

    return prog
