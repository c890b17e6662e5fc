"""Smoothed-loss learner for homogeneous halfspaces (spec §3.3) and the baselines of spec §5.3.

**Learner.** For a bandwidth ``σ > 0`` the smoothed step is ``S_σ(t) = 1 / (1 + e^{-t/σ})`` and
the surrogate loss of a direction ``w`` on ``(X, y)`` is

    ``L_σ(w) = mean_i S_σ(-y_i · w·x_i / ‖w‖)``   (:func:`smoothed_loss`).

Its derivative ``S'_σ(t) = s(t/σ)/σ`` with the logistic density ``s(u) = e^{-u}/(1+e^{-u})²`` is
even, so the band weights ``μ_i = S'_σ(w·x_i)`` (:func:`band_weights`) depend on ``w`` only and
the Riemannian gradient at a unit ``w`` is ``-P_{w⊥} mean_i μ_i y_i x_i``
(:func:`riemannian_gradient`). :func:`learn_halfspace` runs full-batch Riemannian gradient
ascent on ``-L_σ`` (DKTZ20-style, spec §3.3):

    w ← normalise(mean_i y_i x_i)                      (averaging warm start)
    repeat T times:  g ← P_{w⊥} mean_i μ_i y_i x_i;   w ← normalise(w + lr_t g)
    lr_t = max(lr0 · decay^t, σ/2)                      (defaults T=600, lr0=0.5, decay=0.97)

Each step is one pass over the data in two matrix-vector products (``z = X w`` then
``(μ ∘ y)ᵀ X``), O(N·d), inside a ``lax.fori_loop`` compiled once per ``(N, d, steps)``; ``σ``,
``lr0`` and ``decay`` are traced, so changing them does not recompile. The matrix-vector
products run at ``Precision.HIGHEST`` (TF32 would put an error of order 1e-3·‖x‖ into ``w·x``,
comparable to the bandwidths of interest). Constant steps of 0.5 do not converge (spec §3.3);
the decaying schedule ends with angular steps of order ``σ``. :func:`learn_candidates` vmaps
the learner over a grid of bandwidths, so ``S`` bandwidths cost one compile and one
``(N, d) x (d, S)`` product per step. The candidate list ``±w_σ`` is formed by the tester.

**Baselines** (spec §5.3); each takes ``(X, y, **kw)`` and returns a unit vector:

- :func:`averaging` -- ``normalise(mean_i y_i x_i)``.
- :func:`logistic_regression` -- homogeneous (no intercept) logistic regression,
  ``mean_i log(1 + e^{-y_i w·x_i}) + (l2/2)‖w‖²``, minimised by damped Newton (d × d Hessian,
  O(N·d²) per iteration, converges in a few tens of iterations; faster to compile and more
  accurate than L-BFGS for d ≲ 100); the same optimum as scikit-learn's
  ``LogisticRegression(fit_intercept=False, C=1/(N·l2))``.
- :func:`hinge_svm` -- linear SVM with the *squared* hinge (L2-SVM, scikit-learn's
  ``LinearSVC`` default), ``mean_i max(0, 1 - y_i w·x_i)² + (l2/2)‖w‖²``, by the same damped
  Newton with the generalised Hessian ``2 X_Aᵀ X_A / N + l2 I`` over the active set
  ``A = {y w·x < 1}`` (finite Newton, Keerthi & DeCoste 2005). The squared hinge is
  continuously differentiable, which this needs; the plain hinge would need a subgradient
  method.
- :func:`leaky_relu` -- the DGT19/CKMY convex surrogate
  ``L(w) = mean_i LeakyReLU_λ(-y_i w·x_i)`` with ``LeakyReLU_λ(t) = (1-λ)t`` for ``t ≥ 0`` and
  ``λt`` for ``t < 0``, minimised over the unit ball ``‖w‖ ≤ 1`` by projected subgradient
  descent (steps ``lr0/√(t+1)``, best iterate kept). ``L`` is positively homogeneous, so a
  minimiser with ``L < 0`` lies on the sphere; the direction of the best iterate is returned.
  Use ``λ`` ≈ the Massart rate ``η``: under RCN at rate ``η`` the population objective at
  ``w*`` is ``(η - λ)·E|w*·x|``, so ``λ`` slightly above ``η`` makes the minimum strictly
  negative (at ``λ = η`` it is 0, attained at ``w*`` and at ``w = 0``).
- :func:`sigmoid_gd` -- the learner above without the tester (DKTZ20 PSGD baseline):
  ``learn_halfspace(X, y, sigma).w``.

:data:`BASELINES` maps names to these callables.

Dtype: the floating dtype of ``X`` (float32 by default; float64 stays float64 under x64).
Labels are ±1 floats (integer ±1 labels are accepted and cast). Validation happens at the
public boundary before tracing; value checks are skipped for tracers.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import (
    check_array,
    check_float,
    check_int,
    describe,
    is_concrete,
)

__all__ = [
    "BASELINES",
    "LearnResult",
    "averaging",
    "band_weights",
    "hinge_svm",
    "leaky_relu",
    "learn_candidates",
    "learn_halfspace",
    "logistic_regression",
    "riemannian_gradient",
    "sigmoid_gd",
    "sigmoid_step",
    "smoothed_loss",
]

_HIGHEST = jax.lax.Precision.HIGHEST


class LearnResult(NamedTuple):
    """Result of :func:`learn_halfspace` (leading axis ``S`` from :func:`learn_candidates`).

    Attributes:
      w: ``(d,)`` unit vector, the final iterate.
      grad_norm: ``‖P_{w⊥} mean_i μ_i y_i x_i‖`` at the final iterate, on the training data.
      loss: the smoothed loss ``L_σ(w)`` at the final iterate, on the training data.
      steps: number of gradient steps run (int32).
    """

    w: jax.Array
    grad_norm: jax.Array
    loss: jax.Array
    steps: jax.Array


# --------------------------------------------------------------------------- primitives


def _logistic_density(u):
    """``s(u) = e^{-u}/(1+e^{-u})²`` in the overflow-free form ``e^{-|u|}/(1+e^{-|u|})²``."""
    e = jnp.exp(-jnp.abs(u))
    return e / (1.0 + e) ** 2


def sigmoid_step(t, sigma):
    """The smoothed step ``S_σ(t) = 1 / (1 + e^{-t/σ})`` (elementwise, jittable)."""
    return jax.nn.sigmoid(t / sigma)


def band_weights(z, sigma):
    """Band weights ``S'_σ(z) = s(z/σ)/σ`` with ``s`` the logistic density (elementwise).

    Even in ``z``, at most ``1/(4σ)``, integrates to 1; computed without overflow for any ``z``.
    Jittable.
    """
    return _logistic_density(z / sigma) / sigma


def _normalise(v):
    return v / jnp.linalg.norm(v)


def _margins(X, w):
    return jnp.matmul(X, w, precision=_HIGHEST)


def _weighted_mean(X, v):
    """``mean_i v_i x_i`` as one vector-matrix product (row-major friendly)."""
    return jnp.matmul(v, X, precision=_HIGHEST) / X.shape[0]


def _ascent(w, X, y, sigma):
    """Projected ascent direction ``g = P_{w⊥} mean μ y x`` and ``z = Xw`` (unit ``w``)."""
    z = _margins(X, w)
    r = _weighted_mean(X, band_weights(z, sigma) * y)
    return r - jnp.dot(r, w) * w, z


@jax.jit
def _smoothed_loss(w, X, y, sigma):
    z = _margins(X, w) / jnp.linalg.norm(w)
    return jnp.mean(sigmoid_step(-y * z, sigma))


@jax.jit
def _riemannian_gradient(w, X, y, sigma):
    u = _normalise(w)
    g, _ = _ascent(u, X, y, sigma)
    return -g


# --------------------------------------------------------------------------- learner


def _learn_core(X, y, sigma, lr0, decay, w0, steps: int):
    """Unvalidated learner for one bandwidth (jittable and vmappable over ``sigma``/``w0``)."""

    def body(t, w):
        g, _ = _ascent(w, X, y, sigma)
        lr = jnp.maximum(lr0 * decay**t, 0.5 * sigma)
        return _normalise(w + lr * g)

    w = jax.lax.fori_loop(0, steps, body, _normalise(w0))
    g, z = _ascent(w, X, y, sigma)
    loss = jnp.mean(sigmoid_step(-y * z, sigma))
    return LearnResult(w, jnp.linalg.norm(g), loss, jnp.asarray(steps, jnp.int32))


def _warm_start(X, y):
    """``normalise(mean y x)``, or ``e_1`` if that mean is exactly zero."""
    m = _weighted_mean(X, y)
    norm = jnp.linalg.norm(m)
    e1 = jnp.zeros_like(m).at[0].set(1.0)
    return jnp.where(norm > 0, m / jnp.where(norm > 0, norm, 1.0), e1)


@partial(jax.jit, static_argnames=("steps",))
def _learn(X, y, sigma, lr0, decay, w0, *, steps: int):
    if w0 is None:
        w0 = _warm_start(X, y)
    return _learn_core(X, y, sigma, lr0, decay, w0, steps)


@partial(jax.jit, static_argnames=("steps",))
def _learn_many(X, y, sigmas, lr0, decay, w0, *, steps: int):
    if w0 is None:
        w0 = _warm_start(X, y)
    w_axis = 0 if w0.ndim == 2 else None
    fn = jax.vmap(_learn_core, in_axes=(None, None, 0, None, None, w_axis, None))
    return fn(X, y, sigmas, lr0, decay, w0, steps)


def learn_halfspace(
    X, y, sigma, *, steps: int = 600, lr0: float = 0.5, decay: float = 0.97, w0=None
) -> LearnResult:
    """Learn a halfspace direction by full-batch Riemannian GD on the smoothed loss (§3.3).

    Args:
      X: ``(N, d)`` real array, ``d ≥ 1``, ``N ≥ 1``.
      y: ``(N,)`` labels in ``{-1, +1}`` (cast to the dtype of ``X``).
      sigma: bandwidth ``σ > 0`` of the smoothed step.
      steps: number of gradient steps ``T`` (static; ``0`` returns the warm start).
      lr0: initial step size (> 0).
      decay: geometric decay of the step size, in ``(0, 1]``; steps never fall below ``σ/2``.
      w0: optional ``(d,)`` non-zero start vector (normalised); default ``normalise(mean y x)``.

    Returns:
      :class:`LearnResult` ``(w, grad_norm, loss, steps)``; ``w`` is a unit vector.
      O(steps · N · d) time, one compile per ``(N, d, steps, dtype)``.

    Raises:
      ValueError / TypeError: bad shapes, non-finite data, labels other than ±1, bad scalars.
    """
    X, y = _validate_data(X, y)
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    steps, lr0, decay = _validate_schedule(steps, lr0, decay)
    w0 = _validate_w0(w0, X, batch=None)
    dt = X.dtype
    return _learn(
        X, y, jnp.asarray(sigma, dt), jnp.asarray(lr0, dt), jnp.asarray(decay, dt), w0, steps=steps
    )


def learn_candidates(
    X, y, sigmas, *, steps: int = 600, lr0: float = 0.5, decay: float = 0.97, w0=None
) -> LearnResult:
    """Run :func:`learn_halfspace` for every bandwidth of a grid, vmapped (one compile).

    Args:
      X, y: as in :func:`learn_halfspace`.
      sigmas: ``(S,)`` positive bandwidths (e.g. ``σ_max · 2^{-k}``, ``k = 0..5``).
      steps, lr0, decay: shared schedule, as in :func:`learn_halfspace`.
      w0: optional start, ``(d,)`` shared or ``(S, d)`` one per bandwidth.

    Returns:
      :class:`LearnResult` whose fields have a leading axis ``S`` (``w`` is ``(S, d)``).
      Each step is one ``(N, d) x (d, S)`` and one ``(S, N) x (N, d)`` product, so the ``S``
      runs share the passes over the data. The candidates ``±w`` are formed by the tester.
    """
    X, y = _validate_data(X, y)
    sigmas = check_array(sigmas, "sigmas", ndim=1, kind="real", finite=True, min_size=1)
    if is_concrete(sigmas) and not np.all(np.asarray(sigmas) > 0):
        raise ValueError(f"sigmas must be > 0; got min {float(np.min(np.asarray(sigmas)))}")
    steps, lr0, decay = _validate_schedule(steps, lr0, decay)
    w0 = _validate_w0(w0, X, batch=sigmas.shape[0])
    dt = X.dtype
    return _learn_many(
        X, y, sigmas.astype(dt), jnp.asarray(lr0, dt), jnp.asarray(decay, dt), w0, steps=steps
    )


def smoothed_loss(w, X, y, sigma):
    """Smoothed 0-1 loss ``L_σ(w) = mean_i S_σ(-y_i · w·x_i / ‖w‖)`` (scale invariant in ``w``).

    Args:
      w: ``(d,)`` non-zero direction.
      X, y: data as in :func:`learn_halfspace`.
      sigma: bandwidth ``σ > 0``.

    Returns:
      scalar array; ``L_σ → err(w)`` (with ties counted ½) as ``σ → 0``. Jittable internals.
    """
    X, y = _validate_data(X, y)
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    w = _validate_direction(w, X)
    return _smoothed_loss(w, X, y, jnp.asarray(sigma, X.dtype))


def riemannian_gradient(w, X, y, sigma):
    """Riemannian gradient of :func:`smoothed_loss` at ``u = w/‖w‖``: ``-P_{u⊥} mean μ_i y_i x_i``.

    ``μ_i = S'_σ(u·x_i)`` are the band weights. This is the Euclidean gradient of ``L_σ`` at a
    unit vector (which is already tangent, as ``L_σ`` is scale invariant); its negative is the
    ascent direction used by :func:`learn_halfspace`. Returns a ``(d,)`` array.
    """
    X, y = _validate_data(X, y)
    sigma = check_float(sigma, "sigma", min_value=0.0, min_inclusive=False)
    w = _validate_direction(w, X)
    return _riemannian_gradient(w, X, y, jnp.asarray(sigma, X.dtype))


# --------------------------------------------------------------------------- baselines


@jax.jit
def _averaging(X, y):
    return _warm_start(X, y)


def averaging(X, y):
    """Averaging algorithm: ``normalise(mean_i y_i x_i)`` (``e_1`` if the mean is zero)."""
    X, y = _validate_data(X, y)
    return _averaging(X, y)


def _margin_loss(kind: str, m):
    """Loss ``ℓ(m)`` of the margin ``m = y w·x`` and its first two derivatives."""
    if kind == "logistic":
        p = jax.nn.sigmoid(-m)
        return jnp.logaddexp(0.0, -m), -p, p * (1.0 - p)
    h = jnp.maximum(0.0, 1.0 - m)  # squared hinge; ℓ'' is the generalised second derivative
    return h * h, -2.0 * h, 2.0 * (m < 1.0).astype(m.dtype)


_LINE_SEARCH = 2.0 ** -np.arange(20)  # step sizes 1, 1/2, ..., 2^-19 tried by backtracking


@partial(jax.jit, static_argnames=("kind", "steps"))
def _newton(X, y, l2, tol, *, kind: str, steps: int):
    """Damped Newton for ``mean ℓ(y_i w·x_i) + (l2/2)‖w‖²`` from ``w = 0``.

    Each iteration: gradient and Hessian ``Xᵀ diag(ℓ'') X / N + l2 I`` in one pass, a
    Cholesky-free ``solve`` (d × d), and an Armijo backtracking line search evaluated for all
    20 trial steps at once from ``z = Xw`` and ``Xp`` (one more pass). Stops when the Newton
    decrement ``-g·p/2`` is at most ``tol``, when no trial step decreases the objective, or
    after ``steps`` iterations.
    """
    n, d = X.shape
    eye = jnp.eye(d, dtype=X.dtype)
    ts = jnp.asarray(_LINE_SEARCH, X.dtype)

    def objective(z, w):
        return jnp.mean(_margin_loss(kind, y * z)[0]) + 0.5 * l2 * jnp.dot(w, w)

    def body(carry):
        w, z, it, _ = carry
        _, d1, d2 = _margin_loss(kind, y * z)
        grad = _weighted_mean(X, d1 * y) + l2 * w
        hess = jnp.matmul(X.T, X * d2[:, None], precision=_HIGHEST) / n + l2 * eye
        # a tiny ridge keeps the solve defined when l2 = 0 and the active set is degenerate
        hess = hess + (1e-7 * jnp.trace(hess) / d + jnp.finfo(X.dtype).tiny) * eye
        p = -jnp.linalg.solve(hess, grad)
        slope = jnp.dot(grad, p)
        zp = _margins(X, p)
        trial_z = z[None, :] + ts[:, None] * zp[None, :]
        trial_w = w[None, :] + ts[:, None] * p[None, :]
        values = jax.vmap(objective)(trial_z, trial_w)
        ok = values <= objective(z, w) + 1e-4 * ts * slope
        k = jnp.argmax(ok)
        accept = ok[k] & (slope < 0)
        t = jnp.where(accept, ts[k], 0.0)
        done = (~accept) | (-0.5 * slope <= tol)
        return w + t * p, z + t * zp, it + 1, done

    def cond(carry):
        _, _, it, done = carry
        return (it < steps) & (~done)

    w0 = jnp.zeros(d, X.dtype)
    init = (w0, jnp.zeros(n, X.dtype), jnp.asarray(0, jnp.int32), jnp.asarray(False))
    w, _, _, _ = jax.lax.while_loop(cond, body, init)
    return _unit_or_fallback(w, X, y)


def _unit_or_fallback(w, X, y):
    norm = jnp.linalg.norm(w)
    return jnp.where(norm > 0, w / jnp.where(norm > 0, norm, 1.0), _warm_start(X, y))


def logistic_regression(X, y, *, l2: float = 1e-4, steps: int = 50, tol: float = 1e-9):
    """Homogeneous logistic regression direction (no intercept), by damped Newton.

    Minimises ``mean_i log(1 + e^{-y_i w·x_i}) + (l2/2)‖w‖²`` from ``w = 0``: at most
    ``steps`` Newton iterations (each O(N·d²), two passes over the data) with an Armijo
    backtracking line search, stopping when the Newton decrement is below ``tol`` or no step
    decreases the objective; equals scikit-learn's ``LogisticRegression(fit_intercept=False,
    C=1/(N·l2))``. Returns the unit vector ``w/‖w‖`` (the averaging direction if ``w = 0``).
    On separable data with ``l2 → 0`` the minimiser's norm diverges and the iteration cap
    binds; the direction is still meaningful.
    """
    X, y = _validate_data(X, y)
    l2 = check_float(l2, "l2", min_value=0.0)
    steps = check_int(steps, "steps", min_value=1)
    tol = check_float(tol, "tol", min_value=0.0)
    dt = X.dtype
    return _newton(X, y, jnp.asarray(l2, dt), jnp.asarray(tol, dt), kind="logistic", steps=steps)


def hinge_svm(X, y, *, l2: float = 1e-4, steps: int = 50, tol: float = 1e-9):
    """Homogeneous linear SVM direction with the squared hinge (L2-SVM), by finite Newton.

    Minimises ``mean_i max(0, 1 - y_i w·x_i)² + (l2/2)‖w‖²`` (the optimum of scikit-learn's
    ``LinearSVC(loss="squared_hinge", fit_intercept=False, C=1/(N·l2))``) by damped Newton
    with the generalised Hessian over the active set, as :func:`logistic_regression`. The
    squared hinge is chosen because it is continuously differentiable; returns ``w/‖w‖``.
    """
    X, y = _validate_data(X, y)
    l2 = check_float(l2, "l2", min_value=0.0)
    steps = check_int(steps, "steps", min_value=1)
    tol = check_float(tol, "tol", min_value=0.0)
    dt = X.dtype
    return _newton(
        X, y, jnp.asarray(l2, dt), jnp.asarray(tol, dt), kind="squared_hinge", steps=steps
    )


@partial(jax.jit, static_argnames=("steps",))
def _leaky_relu(X, y, lam, lr0, *, steps: int):
    # LeakyReLU_λ(t) = t/2 + (1-2λ)|t|/2, so L(w) = -½ w·mean(y x) + (1-2λ)/2 · mean|w·x|.
    m = _weighted_mean(X, y)
    c = 0.5 * (1.0 - 2.0 * lam)

    def objective_and_subgrad(w):
        z = _margins(X, w)
        value = -0.5 * jnp.dot(w, m) + c * jnp.mean(jnp.abs(z))
        return value, -0.5 * m + c * _weighted_mean(X, jnp.sign(z))

    def body(t, carry):
        w, best_w, best_val = carry
        value, grad = objective_and_subgrad(w)
        better = value < best_val
        best_w = jnp.where(better, w, best_w)
        best_val = jnp.where(better, value, best_val)
        w = w - lr0 / jnp.sqrt(t + 1.0) * grad
        w = w / jnp.maximum(1.0, jnp.linalg.norm(w))  # projection onto the unit ball
        return w, best_w, best_val

    w0 = _warm_start(X, y)
    inf = jnp.asarray(jnp.inf, X.dtype)
    w, best_w, best_val = jax.lax.fori_loop(0, steps, body, (w0, w0, inf))
    value, _ = objective_and_subgrad(w)
    best_w = jnp.where(value < best_val, w, best_w)
    return _unit_or_fallback(best_w, X, y)


def leaky_relu(X, y, *, lam: float = 0.2, steps: int = 1000, lr0: float = 1.0):
    """LeakyReLU_λ minimisation (DGT19 / CKMY Massart learner), direction of the minimiser.

    Minimises the convex ``L(w) = mean_i LeakyReLU_λ(-y_i w·x_i)`` over the unit ball by
    projected subgradient descent from the averaging direction, steps ``lr0/√(t+1)``, keeping
    the best iterate; ``λ ∈ [0, 1/2)`` should be about the Massart rate ``η``. Returns a unit
    vector (the averaging direction if the best iterate is 0).
    """
    X, y = _validate_data(X, y)
    lam = check_float(lam, "lam", min_value=0.0, max_value=0.5, max_inclusive=False)
    steps = check_int(steps, "steps", min_value=1)
    lr0 = check_float(lr0, "lr0", min_value=0.0, min_inclusive=False)
    return _leaky_relu(X, y, jnp.asarray(lam, X.dtype), jnp.asarray(lr0, X.dtype), steps=steps)


def sigmoid_gd(X, y, *, sigma: float = 0.02, **kwargs):
    """The §3.3 learner with the tester switched off: ``learn_halfspace(X, y, sigma, ...).w``."""
    return learn_halfspace(X, y, sigma, **kwargs).w


BASELINES = {
    "averaging": averaging,
    "logistic_regression": logistic_regression,
    "hinge_svm": hinge_svm,
    "leaky_relu": leaky_relu,
    "sigmoid_gd": sigmoid_gd,
}
"""Baseline learners by name: ``callable(X, y, **kwargs) -> (d,)`` unit vector."""


# --------------------------------------------------------------------------- validation


def _validate_data(X, y):
    X = check_array(X, "X", ndim=2, kind="real", finite=True)
    if X.dtype.kind != "f":
        X = X.astype(jnp.result_type(float))
    n, d = X.shape
    if n < 1 or d < 1:
        raise ValueError(f"X must have at least one row and one column; got {describe(X)}")
    y = check_array(y, "y", ndim=1, kind="real", finite=True)
    if y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) to match X; got {describe(y)}")
    if is_concrete(y):
        host = np.asarray(y)
        if not np.all(np.abs(host) == 1):
            bad = host[np.abs(host) != 1][:3].tolist()
            raise ValueError(f"y must contain only -1 and +1; got values such as {bad}")
    return X, y.astype(X.dtype)


def _validate_schedule(steps, lr0, decay):
    steps = check_int(steps, "steps", min_value=0)
    lr0 = check_float(lr0, "lr0", min_value=0.0, min_inclusive=False)
    decay = check_float(decay, "decay", min_value=0.0, max_value=1.0, min_inclusive=False)
    return steps, lr0, decay


def _validate_direction(w, X, name="w"):
    d = X.shape[1]
    w = check_array(w, name, shape=(d,), kind="real", finite=True)
    if is_concrete(w) and not np.any(np.asarray(w) != 0):
        raise ValueError(f"{name} must be a non-zero vector; got all zeros")
    return w.astype(X.dtype)


def _validate_w0(w0, X, *, batch):
    if w0 is None:
        return None
    d = X.shape[1]
    if batch is not None and np.ndim(w0) == 2:
        w0 = check_array(w0, "w0", shape=(batch, d), kind="real", finite=True)
        if is_concrete(w0) and np.any(np.all(np.asarray(w0) == 0, axis=1)):
            raise ValueError("w0 must have non-zero rows; got an all-zero row")
        return w0.astype(X.dtype)
    return _validate_direction(w0, X, name="w0")
