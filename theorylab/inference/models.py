"""Program representation P1: Feynman–Kac models, state-space models and their builders.

A :class:`FeynmanKac` model is the static-shape encoding of a probabilistic program that
suspends after every ``score`` (monad-bayes ``SequentialT``): the latent state grows by one
time step per suspension. It is two pure per-particle functions,

* ``init(key, inputs_0, params) -> (x_0, log G_0)`` and
* ``step(key, t, x_prev, inputs_t, params) -> (x_t, log G_t)``,

which the filter ``vmap``s over particles and ``lax.scan``s over time. ``inputs`` is any
pytree with leading axis ``T`` (observations, covariates). The program's meaning is the path
measure ``M_0(dx_0) G_0(x_0) Π_t M_t(x_{t−1}, dx_t) G_t(x_{t−1}, x_t)``.

A :class:`StateSpaceModel` (prior, transition, observation density) turns into a Feynman–Kac
model in three standard ways: :func:`bootstrap` (propose from the transition, weight by the
observation), :func:`guided` (user proposal, weight by ``f·g/q``) and :func:`auxiliary` (Pitt &
Shephard's look-ahead written as a *twisted* Feynman–Kac model whose potentials telescope, so
the final target and ``Ẑ`` are unchanged). Constructors: :func:`linear_gaussian` (with the
locally optimal proposal available via :func:`linear_gaussian_optimal_proposal`) and
:func:`hidden_markov`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import check_array

__all__ = [
    "FeynmanKac",
    "StateSpaceModel",
    "auxiliary",
    "bootstrap",
    "guided",
    "hidden_markov",
    "hidden_markov_observation_sample",
    "linear_gaussian",
    "linear_gaussian_observation_sample",
    "linear_gaussian_optimal_proposal",
    "simulate",
]


class FeynmanKac(NamedTuple):
    """A Feynman–Kac model (see module docstring).

    Attributes:
      init: ``(key, inputs_0, params) -> (x_0, log_G_0)`` for one particle.
      step: ``(key, t, x_prev, inputs_t, params) -> (x_t, log_G_t)`` for one particle.
      prepare_inputs: optional ``inputs -> inputs`` applied once before the scan (the
        auxiliary filter pairs each observation with the next one).
      log_untwist: optional ``(t, x_t, inputs_t, params) -> log correction`` added to the
        weights when computing filtering summaries (removes an auxiliary look-ahead).
      transition_logpdf: optional ``(t, x_prev, x, params)``, kept for smoothing and
        conditional SMC with ancestor sampling.
    """

    init: Callable
    step: Callable
    prepare_inputs: Callable | None = None
    log_untwist: Callable | None = None
    transition_logpdf: Callable | None = None


class StateSpaceModel(NamedTuple):
    """A state-space model: ``x_0 ~ μ``, ``x_t ~ f(·|x_{t−1})``, ``y_t ~ g(·|x_t)``.

    Attributes (all per particle, pure):
      init_sample: ``(key, params) -> x_0``.
      transition_sample: ``(key, t, x_prev, params) -> x_t``.
      observation_logpdf: ``(t, x_t, y_t, params) -> log g``.
      init_logpdf: optional ``(x_0, params) -> log μ`` (needed by guided proposals at t = 0).
      transition_logpdf: optional ``(t, x_prev, x_t, params) -> log f`` (guided, smoothing).
    """

    init_sample: Callable
    transition_sample: Callable
    observation_logpdf: Callable
    init_logpdf: Callable | None = None
    transition_logpdf: Callable | None = None


@functools.lru_cache(maxsize=256)
def bootstrap(ssm: StateSpaceModel) -> FeynmanKac:
    """Bootstrap filter (Gordon, Salmond & Smith 1993): ``M_t = f``, ``G_t = g(y_t | x_t)``.

    Builders are cached, so ``bootstrap(ssm)`` returns the *same* model object each time and
    the jit-compiled filter (which treats the model as static) is not recompiled.
    """

    def init(key, y0, params):
        x0 = ssm.init_sample(key, params)
        return x0, ssm.observation_logpdf(0, x0, y0, params)

    def step(key, t, x_prev, y, params):
        x = ssm.transition_sample(key, t, x_prev, params)
        return x, ssm.observation_logpdf(t, x, y, params)

    return FeynmanKac(init, step, transition_logpdf=ssm.transition_logpdf)


@functools.lru_cache(maxsize=256)
def guided(
    ssm: StateSpaceModel,
    proposal_sample: Callable,
    proposal_logpdf: Callable,
    init_proposal_sample: Callable | None = None,
    init_proposal_logpdf: Callable | None = None,
) -> FeynmanKac:
    """Guided filter: ``x_t ~ q(·|x_{t−1}, y_t)``, ``G_t = g(y_t|x_t) f(x_t|x_{t−1}) / q``.

    Args:
      proposal_sample: ``(key, t, x_prev, y_t, params) -> x_t``.
      proposal_logpdf: ``(t, x_prev, x_t, y_t, params) -> log q``.
      init_proposal_sample / init_proposal_logpdf: ``(key, y_0, params)`` / ``(x_0, y_0,
        params)``; if omitted, ``x_0`` comes from the prior (bootstrap at t = 0).
    """
    if ssm.transition_logpdf is None:
        raise ValueError("ssm.transition_logpdf is required for a guided filter; got None")
    if (init_proposal_sample is None) != (init_proposal_logpdf is None):
        raise ValueError("give both init_proposal_sample and init_proposal_logpdf, or neither")
    if init_proposal_sample is not None and ssm.init_logpdf is None:
        raise ValueError("ssm.init_logpdf is required with an initial proposal; got None")

    def init(key, y0, params):
        if init_proposal_sample is None:
            x0 = ssm.init_sample(key, params)
            return x0, ssm.observation_logpdf(0, x0, y0, params)
        x0 = init_proposal_sample(key, y0, params)
        log_g = (
            ssm.observation_logpdf(0, x0, y0, params)
            + ssm.init_logpdf(x0, params)
            - init_proposal_logpdf(x0, y0, params)
        )
        return x0, log_g

    def step(key, t, x_prev, y, params):
        x = proposal_sample(key, t, x_prev, y, params)
        log_g = (
            ssm.observation_logpdf(t, x, y, params)
            + ssm.transition_logpdf(t, x_prev, x, params)
            - proposal_logpdf(t, x_prev, x, y, params)
        )
        return x, log_g

    return FeynmanKac(init, step, transition_logpdf=ssm.transition_logpdf)


class _AuxInputs(NamedTuple):
    current: Any
    following: Any
    has_next: jax.Array


def _pair_with_next(inputs):
    following = jax.tree.map(lambda a: jnp.concatenate([a[1:], a[-1:]], axis=0), inputs)
    t = jax.tree.leaves(inputs)[0].shape[0]
    return _AuxInputs(inputs, following, jnp.arange(t) < t - 1)


@functools.lru_cache(maxsize=256)
def auxiliary(
    ssm: StateSpaceModel,
    log_lookahead: Callable,
    proposal_sample: Callable | None = None,
    proposal_logpdf: Callable | None = None,
) -> FeynmanKac:
    """Auxiliary particle filter (Pitt & Shephard 1999) as a twisted Feynman–Kac model.

    With a look-ahead ``η_t(x_{t−1}) = exp(log_lookahead(t, x_{t−1}, y_t, params))`` (e.g. the
    observation density at the predicted mean), the potentials become
    ``G'_t = G_t · η_{t+1}(x_t) / η_t(x_{t−1})``; the product over a path telescopes to
    ``Π_t G_t``, so the final weighted population and ``Ẑ`` target exactly what the
    bootstrap/guided filter targets, while resampling at ``t`` already sees ``y_{t+1}``.
    Intermediate populations are twisted; the filter's summaries remove the twist through
    ``log_untwist`` so that they estimate ``p(x_t | y_{0:t})``.
    """
    base = (
        bootstrap(ssm) if proposal_sample is None else guided(ssm, proposal_sample, proposal_logpdf)
    )

    def lookahead(t, x, inputs, params):
        value = log_lookahead(t + 1, x, inputs.following, params)
        return jnp.where(inputs.has_next, value, 0.0)

    def init(key, inputs, params):
        x0, log_g = base.init(key, inputs.current, params)
        return x0, log_g + lookahead(0, x0, inputs, params)

    def step(key, t, x_prev, inputs, params):
        x, log_g = base.step(key, t, x_prev, inputs.current, params)
        back = log_lookahead(t, x_prev, inputs.current, params)
        return x, log_g - back + lookahead(t, x, inputs, params)

    def untwist(t, x, inputs, params):
        return -lookahead(t, x, inputs, params)

    return FeynmanKac(init, step, _pair_with_next, untwist, ssm.transition_logpdf)


# --- constructors --------------------------------------------------------------------------


class LinearGaussianParams(NamedTuple):
    """``x_0 ~ N(m0, P0)``, ``x_t = A x_{t−1} + N(0, Q)``, ``y_t = H x_t + N(0, R)``."""

    A: jax.Array
    Q: jax.Array
    H: jax.Array
    R: jax.Array
    m0: jax.Array
    P0: jax.Array


def _mvn_logpdf(x, mean, chol):
    """Gaussian log-density with covariance ``chol cholᵀ``.

    ``chol⁻¹`` is formed explicitly: inside a particle ``vmap`` the covariance is shared, so
    the inverse is computed once and each particle costs one small matvec (a batched
    triangular solve per particle is ~5x slower on CPU for small d).
    """
    d = x.shape[-1]
    inv_chol = jax.scipy.linalg.solve_triangular(chol, jnp.eye(d, dtype=chol.dtype), lower=True)
    z = inv_chol @ (x - mean)
    return -0.5 * jnp.sum(z**2) - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * d * jnp.log(2 * jnp.pi)


def _as_matrix(value, name, shape):
    arr = check_array(value, name, kind="real", to_jax=False)
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim == 1 and len(shape) == 2 and shape[0] == shape[1]:
        arr = np.diag(arr)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got non-finite entries")
    return arr


def _check_covariance(arr, name):
    if not np.allclose(arr, arr.T, rtol=1e-8, atol=1e-12):
        raise ValueError(f"{name} must be symmetric; got max asymmetry {np.abs(arr - arr.T).max()}")
    if np.linalg.eigvalsh(arr).min() <= 0:
        raise ValueError(
            f"{name} must be positive definite; got eigenvalues {np.linalg.eigvalsh(arr)}"
        )


def linear_gaussian(A, Q, H, R, m0, P0):
    """Linear-Gaussian state-space model; returns ``(StateSpaceModel, params)``.

    Scalars are accepted for 1-D models (``linear_gaussian(0.9, 1, 1, 1, 0, 1)``); vector
    covariances are read as diagonals. States are vectors ``f[d_x]``, observations ``f[d_y]``.
    The same matrices feed :func:`theorylab.inference.reference.kalman_filter`.
    """
    m0 = np.atleast_1d(np.asarray(check_array(m0, "m0", kind="real", to_jax=False), dtype=float))
    dx = m0.shape[0]
    A_ = _as_matrix(A, "A", (dx, dx))
    Q_ = _as_matrix(Q, "Q", (dx, dx))
    P0_ = _as_matrix(P0, "P0", (dx, dx))
    H_ = np.asarray(check_array(H, "H", kind="real", to_jax=False), dtype=float)
    H_ = H_.reshape(1, dx) if H_.ndim < 2 else H_
    if H_.shape[1] != dx:
        raise ValueError(f"H must have shape (d_y, {dx}); got shape {H_.shape}")
    dy = H_.shape[0]
    R_ = _as_matrix(R, "R", (dy, dy))
    for name, cov in (("Q", Q_), ("R", R_), ("P0", P0_)):
        _check_covariance(cov, name)
    dtype = jnp.result_type(float)
    params = LinearGaussianParams(*(jnp.asarray(a, dtype) for a in (A_, Q_, H_, R_, m0, P0_)))

    def chol(cov):
        return jnp.linalg.cholesky(cov)

    def init_sample(key, p):
        return p.m0 + chol(p.P0) @ jax.random.normal(key, p.m0.shape, p.m0.dtype)

    def init_logpdf(x, p):
        return _mvn_logpdf(x, p.m0, chol(p.P0))

    def transition_sample(key, t, x_prev, p):
        return p.A @ x_prev + chol(p.Q) @ jax.random.normal(key, x_prev.shape, x_prev.dtype)

    def transition_logpdf(t, x_prev, x, p):
        return _mvn_logpdf(x, p.A @ x_prev, chol(p.Q))

    def observation_logpdf(t, x, y, p):
        return _mvn_logpdf(y, p.H @ x, chol(p.R))

    ssm = StateSpaceModel(
        init_sample, transition_sample, observation_logpdf, init_logpdf, transition_logpdf
    )
    return ssm, params


@functools.lru_cache(maxsize=1)
def linear_gaussian_optimal_proposal():
    """Locally optimal proposal ``p(x_t | x_{t−1}, y_t)`` for :func:`linear_gaussian` models.

    Cached: it returns the same functions each call, so ``guided(ssm, *proposal())`` is the
    same (cached) model and the jitted filter is not recompiled.

    Returns ``(proposal_sample, proposal_logpdf)`` for :func:`guided`. With it the incremental
    weight is ``p(y_t | x_{t−1})``, independent of ``x_t`` (Doucet, Godsill & Andrieu 2000).
    """

    def moments(x_prev, y, p):
        mean_pred = p.A @ x_prev
        s = p.H @ p.Q @ p.H.T + p.R
        gain = jnp.linalg.solve(s, p.H @ p.Q).T
        mean = mean_pred + gain @ (y - p.H @ mean_pred)
        cov = p.Q - gain @ p.H @ p.Q
        return mean, jnp.linalg.cholesky(0.5 * (cov + cov.T))

    def proposal_sample(key, t, x_prev, y, p):
        mean, chol = moments(x_prev, y, p)
        return mean + chol @ jax.random.normal(key, mean.shape, mean.dtype)

    def proposal_logpdf(t, x_prev, x, y, p):
        mean, chol = moments(x_prev, y, p)
        return _mvn_logpdf(x, mean, chol)

    return proposal_sample, proposal_logpdf


class HiddenMarkovParams(NamedTuple):
    """Log initial probabilities ``[K]``, log transitions ``[K, K]``, log emissions ``[K, V]``."""

    log_init: jax.Array
    log_transition: jax.Array
    log_emission: jax.Array


def hidden_markov(init_probs, transition, emission):
    """Discrete HMM with integer states and integer observations; returns ``(ssm, params)``.

    ``transition[i, j] = P(x_t = j | x_{t−1} = i)``, ``emission[i, v] = P(y_t = v | x_t = i)``.
    The same matrices feed :func:`theorylab.inference.reference.hmm_forward` and the exact
    enumerator in :mod:`theorylab.inference.validation`.
    """
    init_probs = np.asarray(
        check_array(init_probs, "init_probs", ndim=1, kind="real", to_jax=False), float
    )
    k = init_probs.shape[0]
    transition = np.asarray(
        check_array(transition, "transition", ndim=2, kind="real", to_jax=False), float
    )
    emission = np.asarray(
        check_array(emission, "emission", ndim=2, kind="real", to_jax=False), float
    )
    if transition.shape != (k, k):
        raise ValueError(f"transition must have shape ({k}, {k}); got shape {transition.shape}")
    if emission.shape[0] != k:
        raise ValueError(f"emission must have {k} rows; got shape {emission.shape}")
    for name, arr in (
        ("init_probs", init_probs),
        ("transition", transition),
        ("emission", emission),
    ):
        if np.any(arr < 0) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite and non-negative")
        if not np.allclose(arr.sum(-1), 1.0, atol=1e-9):
            raise ValueError(f"{name} rows must sum to 1; got sums {arr.sum(-1)}")
    with np.errstate(divide="ignore"):
        params = HiddenMarkovParams(
            *(
                jnp.asarray(np.log(a), jnp.result_type(float))
                for a in (init_probs, transition, emission)
            )
        )

    def init_sample(key, p):
        return jax.random.categorical(key, p.log_init)

    def init_logpdf(x, p):
        return p.log_init[x]

    def transition_sample(key, t, x_prev, p):
        return jax.random.categorical(key, p.log_transition[x_prev])

    def transition_logpdf(t, x_prev, x, p):
        return p.log_transition[x_prev, x]

    def observation_logpdf(t, x, y, p):
        return p.log_emission[x, y]

    ssm = StateSpaceModel(
        init_sample, transition_sample, observation_logpdf, init_logpdf, transition_logpdf
    )
    return ssm, params


def linear_gaussian_observation_sample(key, t, x, p):
    """``y_t = H x_t + N(0, R)`` for :func:`simulate` with a :func:`linear_gaussian` model."""
    noise = jax.random.normal(key, (p.R.shape[0],), x.dtype)
    return p.H @ x + jnp.linalg.cholesky(p.R) @ noise


def hidden_markov_observation_sample(key, t, x, p):
    """``y_t ~ Categorical(emission[x_t])``, for :func:`simulate` with :func:`hidden_markov`."""
    return jax.random.categorical(key, p.log_emission[x])


def simulate(key, ssm: StateSpaceModel, params, num_steps: int, observation_sample: Callable):
    """Simulate ``(states[T], observations[T])`` from a state-space model.

    ``observation_sample(key, t, x_t, params) -> y_t`` (the density alone cannot be sampled).
    """
    num_steps = int(num_steps)
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1; got {num_steps}")
    k0, ky0, key = jax.random.split(key, 3)
    x0 = ssm.init_sample(k0, params)
    y0 = observation_sample(ky0, 0, x0, params)

    def body(x_prev, t):
        kt = jax.random.fold_in(key, t)
        kx, ky = jax.random.split(kt)
        x = ssm.transition_sample(kx, t, x_prev, params)
        return x, (x, observation_sample(ky, t, x, params))

    _, (xs, ys) = jax.lax.scan(body, x0, jnp.arange(1, num_steps))
    states = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), x0, xs)
    obs = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), y0, ys)
    return states, obs
