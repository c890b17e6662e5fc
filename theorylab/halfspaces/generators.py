"""Synthetic labelled distributions for testable learning of halfspaces (spec section 5.1).

Every generator returns :class:`HalfspaceData` ``(X, y, w_star, opt)``: ``X`` ``(n, d)``, labels
``y`` ``(n,)`` as floats +-1 in the dtype of ``X``, the target direction ``w_star`` (a unit
vector) and ``opt`` = err_D(w_star) = P_D[y != sign(w_star . x)], the *population* error of the
target, as a Python float. The sign convention is sign(0) = +1 everywhere.

Which ``opt`` are exact (closed form, float64 on the host) -- all of them:

- Massart data (:func:`gaussian_massart` with every profile, :func:`ckmy_mixture`,
  :func:`student_t`, :func:`uniform_cube`, :func:`laplace_product`): ``opt = E[eta(x)]`` in closed
  form, and w_star is the Bayes classifier, so ``opt = min_w err_D(w)``.
- :func:`gaussian_agnostic`: ``opt`` is err_D(w_star) exactly (the flipped mass); it is the
  adversary's budget, and an upper bound on min_w err_D(w).
- :func:`far_outliers`: ``opt = (1 - alpha) eta + alpha`` exactly; it equals min_w err_D(w) when
  ``(1 - alpha)(1 - 2 eta) atan(offset / radius) / pi >= alpha`` (true at the defaults for
  ``eta <= 0.34``), see the function.
- :func:`boundary_decoy`: ``opt`` = err_D(w_star) exactly (Gaussian-orthant formula); the labels
  favour the decoy, whose error is *smaller*: :func:`decoy_error` gives err_D(w) for any w.

Monte Carlo is only used by :func:`monte_carlo_error` (fresh-sample error of any ``w``).

Randomness: ``key`` (first positional argument) is split once into a *direction key* and a
*sample key*. The direction key fixes every random direction of the distribution (``w_star``
when not given, the auxiliary direction ``u`` of the correlated / adversarial / directional
profiles, the decoy, the outlier direction); the sample key draws the points. Passing
``sample_key=`` draws a fresh sample from the *same* distribution, which is how
:func:`monte_carlo_error` measures population errors.

The samplers are jitted with static ``n`` and ``d``. All randomness of a sample comes from one
compiled program per shape, ``(n, d + 2)`` uniforms shared by every generator (normals are
``ndtri`` of them, Laplace / cube coordinates their inverse CDFs); each generator then compiles a
small RNG-free transform. On CPU this cuts the compile time per new generator from ~1.5 s to
~0.2 s. Noise rates and thresholds are traced, so changing ``eta`` or ``opt`` does not
recompile. Precision: JAX's default float dtype (float32 unless x64 is enabled).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri
from scipy import special

from theorylab.core.checks import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_key,
    describe,
    is_concrete,
)

__all__ = [
    "BAD_DISTRIBUTIONS",
    "FAR_BAND",
    "FAR_NEAR_ETA",
    "GAUSSIAN_DISTRIBUTIONS",
    "GENERATORS",
    "HalfspaceData",
    "angle",
    "boundary_decoy",
    "ckmy_mixture",
    "decoy_error",
    "error_rate",
    "far_outliers",
    "gaussian_agnostic",
    "gaussian_excess",
    "gaussian_massart",
    "laplace_product",
    "monte_carlo_error",
    "random_unit_vector",
    "student_t",
    "uniform_cube",
]

FAR_BAND = 0.3
"""Half-width of the low-noise band of the "far" Massart profile (spec section 5.1 (b))."""
FAR_NEAR_ETA = 0.05
"""Noise rate inside the band of the "far" profile (capped at ``eta``)."""

_CKMY_BLOCK = ((8.0, 0.1), (0.1, 0.0024))
_CKMY_THRESHOLD = 0.3


class HalfspaceData(NamedTuple):
    """A labelled sample and the facts about its distribution.

    Attributes:
      X: ``(n, d)`` points.
      y: ``(n,)`` labels +-1 in the dtype of ``X``.
      w_star: ``(d,)`` unit target direction.
      opt: population error of ``w_star``, err_D(w_star) (a Python float, exact; see the module
        docstring for when it is also min_w err_D(w)).
    """

    X: jax.Array
    y: jax.Array
    w_star: jax.Array
    opt: float


def _float():
    return jnp.result_type(float)


def _sign(z):
    return jnp.where(z >= 0, 1.0, -1.0).astype(z.dtype)


def _normal_cdf(t: float) -> float:
    return 0.5 * math.erfc(-t / math.sqrt(2.0))


# --------------------------------------------------------------------------- argument checks


def _check_sizes(n, d):
    n = check_int(n, "n", min_value=1)
    d = check_int(d, "d", min_value=2)
    return n, d


def _check_eta(eta, name="eta"):
    return check_float(eta, name, min_value=0.0, max_value=0.5, max_inclusive=False)


def _check_unit(v, name, d):
    v = check_array(v, name, shape=(d,), kind="real", finite=True)
    v = v.astype(_float())
    if is_concrete(v):
        norm = float(np.linalg.norm(np.asarray(v, dtype=np.float64)))
        if not norm > 0:
            raise ValueError(f"{name} must be a nonzero vector; got the zero vector")
    return v / jnp.linalg.norm(v)


def _sample_key(key, sample_key):
    key = check_key(key)
    if sample_key is not None:
        return key, check_key(sample_key, "sample_key")
    return key, jax.random.split(key)[1]


def _keys(key, d, w_star, sample_key):
    """(sample key, unit w_star, auxiliary uniform unit vector) -- every generator's split:
    ``k_dir, k_x = split(key)``; w_star from ``fold_in(k_dir, 0)``, the auxiliary direction
    from ``fold_in(k_dir, 1)``, the points from ``k_x`` (or ``sample_key``)."""
    key, k_x = _sample_key(key, sample_key)
    k_dir = jax.random.split(key)[0]
    if w_star is None:
        w = _random_unit(jax.random.fold_in(k_dir, 0), d)
    else:
        w = _check_unit(w_star, "w_star", d)
    return k_x, w, _random_unit(jax.random.fold_in(k_dir, 1), d)


@partial(jax.jit, static_argnames=("shape",))
def _uniforms(key, shape):
    """All the randomness of a sample in ONE compiled threefry program per shape.

    Uniforms on the midpoints of JAX's uniform grid (k + 1/2) eps, k = 0 .. 1/eps - 1: inside
    the open interval (0, 1) and symmetric about 1/2, so the normals ``ndtri(u)`` are symmetric
    with tails up to +-5.4 (float32; +-8.3 in float64), like ``jax.random.normal``'s. The
    generators share this program (same shape ``(n, d + 2)``) and do the transforms in cheap
    RNG-free programs: on CPU a threefry program costs ~1 s of XLA compile time, the rest
    ~0.1 s.
    """
    dtype = _float()
    half = jnp.finfo(dtype).eps / 2
    return jnp.clip(jax.random.uniform(key, shape, dtype) + half, half, 1.0 - half)


def _draw(k_x, n, d):
    """``(n, d + 2)`` uniforms: the first d columns become the coordinates, the last two
    are the mixture-component and label-noise uniforms."""
    return _uniforms(k_x, (n, d + 2))


def _gaussian_part(U, d):
    return ndtri(U[:, :d]), U[:, d], U[:, d + 1]


# --------------------------------------------------------------------------- geometry


@partial(jax.jit, static_argnames=("d",))
def _random_unit(key, d: int):
    g = jax.random.normal(key, (d,), _float())
    return g / jnp.linalg.norm(g)


def random_unit_vector(key, d: int) -> jax.Array:
    """A uniformly random point of the unit sphere S^{d-1} (normalised standard Gaussian)."""
    key = check_key(key)
    d = check_int(d, "d", min_value=1)
    return _random_unit(key, d)


def _unit_perp(aux, w):
    """Unit vector orthogonal to the unit ``w`` from a uniform unit ``aux`` (project and
    normalise: uniform on the great subsphere orthogonal to ``w``)."""
    g = aux - jnp.dot(aux, w) * w
    g = g - jnp.dot(g, w) * w  # second Gram-Schmidt pass: orthogonal to float precision
    return g / jnp.linalg.norm(g)


_unit_perp_jit = jax.jit(_unit_perp)


def _angle(u, v):
    u = u / jnp.linalg.norm(u)
    v = v / jnp.linalg.norm(v)
    return 2.0 * jnp.arctan2(jnp.linalg.norm(u - v), jnp.linalg.norm(u + v))


def angle(u, v) -> jax.Array:
    """Angle in [0, pi] between two nonzero vectors (the stable 2 atan2(|u-v|, |u+v|) form on
    the normalised vectors, accurate for tiny angles where arccos of the dot product is not)."""
    u = check_array(u, "u", ndim=1, kind="real")
    v = check_array(v, "v", shape=(u.shape[0],), kind="real")
    return _angle(u, v)


def gaussian_excess(w, w_star) -> jax.Array:
    """P_{x ~ N(0, I)}[sign(w . x) != sign(w_star . x)] = angle(w, w_star) / pi (exact)."""
    return angle(w, w_star) / jnp.pi


@jax.jit
def _error_rate(X, y, w):
    return jnp.mean(y != _sign(X @ w))


def error_rate(X, y, w) -> jax.Array:
    """Empirical 0-1 error mean(y != sign(X @ w)) with sign(0) = +1. Jittable; O(n d)."""
    X = check_array(X, "X", ndim=2, kind="real")
    y = check_array(y, "y", shape=(X.shape[0],), kind="real")
    w = check_array(w, "w", shape=(X.shape[1],), kind="real")
    return _error_rate(X, y.astype(X.dtype), w.astype(X.dtype))


# --------------------------------------------------------------------------- Gaussian Massart

_PROFILES = ("rcn", "far", "correlated", "adversarial")


@partial(jax.jit, static_argnames=("n", "d", "profile"))
def _massart_core(U, w, aux, eta, *, n: int, d: int, profile: str):
    dtype = _float()
    X, _, noise = _gaussian_part(U, d)
    z = X @ w
    if profile == "rcn":
        rate = jnp.full((n,), eta, dtype)
    elif profile == "far":
        rate = jnp.where(jnp.abs(z) > FAR_BAND, eta, jnp.minimum(eta, FAR_NEAR_ETA))
    elif profile == "correlated":
        rate = jnp.where(X @ aux > 0, eta, 0.0)
    else:  # adversarial
        u = _unit_perp(aux, w)
        rate = jnp.where(z * (X @ u) < 0, eta, 0.0)
    flip = noise < rate
    y = jnp.where(flip, -1.0, 1.0).astype(dtype) * _sign(z)
    return X, y


def gaussian_massart(
    key, n: int, d: int, *, eta: float, profile: str = "rcn", w_star=None, sample_key=None
) -> HalfspaceData:
    """x ~ N(0, I_d), y = sign(w_star . x) flipped with probability eta(x) <= eta (Massart).

    Profiles (spec section 5.1):

    - ``"rcn"``: eta(x) = eta (random classification noise); opt = eta.
    - ``"far"``: eta(x) = eta on {|w_star . x| > 0.3} and min(eta, 0.05) inside the band (the
      profile of the spec's measurements); opt = eta P(|Z| > 0.3) + min(eta, 0.05) P(|Z| <= 0.3).
    - ``"correlated"``: eta(x) = eta 1{u . x > 0} for a uniformly random unit u (independent of
      w_star); opt = eta / 2.
    - ``"adversarial"``: eta(x) = eta 1{(w_star . x)(u . x) < 0} for a random unit u orthogonal
      to w_star: only the points on which sign(u . x) disagrees with the target are flipped, so
      the labels lean towards sign(u . x) and every convex surrogate is pulled towards u.
      Exactly, E[y x] = sqrt(2/pi)((1 - eta) w_star + eta u): averaging converges to the angle
      atan(eta / (1 - eta)) from w_star (0.245 rad at eta = 0.2). opt = eta / 2 (the two
      coordinates are independent).

    All ``opt`` are exact and equal min_w err_D(w) (eta(x) < 1/2 makes w_star Bayes-optimal).

    Args:
      key: PRNG key (fixes w_star when not given, the direction u, and the sample).
      n: number of points >= 1.
      d: dimension >= 2.
      eta: Massart rate in [0, 0.5).
      profile: one of ``"rcn"``, ``"far"``, ``"correlated"``, ``"adversarial"``.
      w_star: optional target direction ``(d,)`` (normalised here); random unit by default.
      sample_key: optional key for the points only (same distribution, fresh sample).

    Returns:
      :class:`HalfspaceData`. Cost O(n d).
    """
    n, d = _check_sizes(n, d)
    eta = _check_eta(eta)
    profile = check_choice(profile, "profile", _PROFILES)
    k_x, w, aux = _keys(key, d, w_star, sample_key)
    X, y = _massart_core(_draw(k_x, n, d), w, aux, eta, n=n, d=d, profile=profile)
    if profile == "rcn":
        opt = eta
    elif profile == "far":
        inside = math.erf(FAR_BAND / math.sqrt(2.0))
        opt = eta * (1.0 - inside) + min(eta, FAR_NEAR_ETA) * inside
    else:
        opt = eta / 2.0
    return HalfspaceData(X, y, w, float(opt))


# --------------------------------------------------------------------------- Gaussian agnostic

_AGNOSTIC_KINDS = ("band", "directional", "aligned")


@partial(jax.jit, static_argnames=("n", "d", "kind"))
def _agnostic_core(U, w, aux, threshold, *, n: int, d: int, kind: str):
    dtype = _float()
    X = _gaussian_part(U, d)[0]
    z = X @ w
    target = _sign(z)
    if kind == "band":
        y = jnp.where(jnp.abs(z) < threshold, -target, target)
    else:
        v = X @ _unit_perp(aux, w)
        if kind == "directional":
            y = jnp.where(jnp.abs(v) > threshold, -target, target)
        else:  # aligned
            y = jnp.where(jnp.abs(v) > threshold, _sign(v), target)
    return X, y.astype(dtype)


def gaussian_agnostic(
    key, n: int, d: int, *, opt: float, kind: str = "band", w_star=None, sample_key=None
) -> HalfspaceData:
    """x ~ N(0, I_d) with deterministic (agnostic) label corruption of mass exactly ``opt``.

    - ``"band"``: flip every label in the band |w_star . x| < b, 2 Phi(b) - 1 = opt (the
      boundary adversary).
    - ``"directional"``: flip every label where |u . x| > q, P(|N(0,1)| > q) = opt, u a random
      unit vector orthogonal to w_star (spec: the opt-fraction with the largest |u . x|). The
      law of (x, y) is symmetric under the reflection u . x -> -u . x, so the population
      minimiser of any convex surrogate keeps the direction of w_star: this adversary only
      shrinks the margin and adds variance.
    - ``"aligned"``: where |u . x| > q with P(|N(0,1)| > q) = 2 opt (needs opt <= 0.5), set
      y = sign(u . x); half of that region already agreed with w_star, so err(w_star) = opt.
      This is the adversary that rotates averaging / hinge-type learners towards u: exactly,
      E[y x] = sqrt(2/pi)(1 - 2 opt) w_star + 2 phi(q) u.

    ``opt`` is err_D(w_star), exact (it is the adversary's budget; min_w err_D(w) <= opt).

    Args:
      key, n, d, w_star, sample_key: as :func:`gaussian_massart`.
      opt: flipped mass in [0, 1) (``"aligned"``: [0, 0.5]).
      kind: ``"band"``, ``"directional"`` or ``"aligned"``.
    """
    n, d = _check_sizes(n, d)
    opt = check_float(opt, "opt", min_value=0.0, max_value=1.0, max_inclusive=False)
    kind = check_choice(kind, "kind", _AGNOSTIC_KINDS)
    if kind == "band":
        threshold = math.sqrt(2.0) * float(special.erfinv(opt))
    elif kind == "directional":
        threshold = math.sqrt(2.0) * float(special.erfcinv(opt))
    else:
        if opt > 0.5:
            raise ValueError(f'opt must be in [0, 0.5] for kind="aligned"; got {opt}')
        threshold = math.sqrt(2.0) * float(special.erfcinv(2.0 * opt))
    k_x, w, aux = _keys(key, d, w_star, sample_key)
    X, y = _agnostic_core(_draw(k_x, n, d), w, aux, threshold, n=n, d=d, kind=kind)
    return HalfspaceData(X, y, w, float(opt))


# --------------------------------------------------------------------------- CKMY mixture


@partial(jax.jit, static_argnames=("n", "d"))
def _ckmy_core(U, eta, *, n: int, d: int):
    dtype = _float()
    g, component, noise = _gaussian_part(U, d)
    (a, b), (_, c) = _CKMY_BLOCK
    l11 = math.sqrt(a)
    l21 = b / l11
    l22 = math.sqrt(c - l21 * l21)
    second = component < 0.5  # component N(0, Sigma_2)
    x0 = jnp.where(second, l11 * g[:, 0], g[:, 0])
    x1 = jnp.where(second, l21 * g[:, 0] + l22 * g[:, 1], g[:, 1])
    X = g.at[:, 0].set(x0).at[:, 1].set(x1)
    flip = (x1 > _CKMY_THRESHOLD) & (noise < eta)
    y = jnp.where(flip, -1.0, 1.0).astype(dtype) * _sign(x1)
    return X, y


def ckmy_mixture(key, n: int, d: int, *, eta: float = 0.2, sample_key=None) -> HalfspaceData:
    """The Chen-Koehler-Moitra-Yau (2020) mixture on which convex surrogates fail.

    x ~ 1/2 N(0, I) + 1/2 N(0, Sigma_2), Sigma_2 = I except the top-left 2 x 2 block
    [[8, 0.1], [0.1, 0.0024]]; target sign(x_2), i.e. ``w_star = e_2`` (index 1); Massart flips
    with probability eta on {x_2 > 0.3}. opt = eta P(x_2 > 0.3) = eta/2 [(1 - Phi(0.3)) +
    (1 - Phi(0.3 / sqrt(0.0024)))] exactly (0.0382 at eta = 0.2), and it is min_w err_D(w).
    Spec section 5.1 measured errors at d = 10, eta = 0.2: averaging 0.32, logistic 0.18. The
    tester must reject (band mass 3-8x the Gaussian's). No random direction: ``key`` only draws
    the sample (``sample_key`` overrides it, for the uniform interface).
    """
    n, d = _check_sizes(n, d)
    eta = _check_eta(eta)
    _, k_x = _sample_key(key, sample_key)
    X, y = _ckmy_core(_draw(k_x, n, d), eta, n=n, d=d)
    w = jnp.zeros((d,), _float()).at[1].set(1.0)
    tail = (1.0 - _normal_cdf(_CKMY_THRESHOLD)) + (
        1.0 - _normal_cdf(_CKMY_THRESHOLD / math.sqrt(_CKMY_BLOCK[1][1]))
    )
    return HalfspaceData(X, y, w, float(eta * tail / 2.0))


# --------------------------------------------------------------------------- boundary decoy


@partial(jax.jit, static_argnames=("n", "d"))
def _decoy_core(U, w, decoy, alpha, s, eta, *, n: int, d: int):
    dtype = _float()
    g, component, noise = _gaussian_part(U, d)
    slab = component < alpha
    squeezed = g - ((1.0 - s) * (g @ decoy))[:, None] * decoy[None, :]
    X = jnp.where(slab[:, None], squeezed, g)
    y = jnp.where(slab, _sign(X @ decoy), _sign(X @ w))
    y = jnp.where(noise < eta, -y, y)
    return X, y.astype(dtype)


def _decoy_error_np(w, w_star, decoy, alpha, s, eta):
    w, w_star, decoy = (np.asarray(v, dtype=np.float64) for v in (w, w_star, decoy))
    w, w_star, decoy = (v / np.linalg.norm(v) for v in (w, w_star, decoy))

    def orthant(a, b, cov_ab, cov_aa, cov_bb):  # P[sign(a.x) != sign(b.x)], x ~ N(0, Sigma)
        c = cov_ab / math.sqrt(cov_aa * cov_bb)
        return math.acos(min(1.0, max(-1.0, c))) / math.pi

    shrink = 1.0 - s * s  # Sigma = I - (1 - s^2) decoy decoy^T
    wd, ww = float(w @ decoy), float(w @ w_star)
    gauss = orthant(w, w_star, ww, 1.0, 1.0)
    slab = orthant(w, decoy, wd - shrink * wd, 1.0 - shrink * wd * wd, s * s)
    disagree = (1.0 - alpha) * gauss + alpha * slab
    return eta + (1.0 - 2.0 * eta) * disagree


def decoy_error(
    w, w_star, decoy, *, alpha: float = 0.2, s: float = 0.02, eta: float = 0.0
) -> float:
    """Exact population error err_D(w) of any ``w`` under :func:`boundary_decoy`'s law.

    err = eta + (1 - 2 eta)[(1 - alpha) angle(w, w_star)/pi + alpha arccos(rho)/pi], with rho
    the correlation of w . x and decoy . x under Sigma = I - (1 - s^2) decoy decoy^T (Gaussian
    orthant probability). Host computation in float64; returns a Python float.
    """
    w_star = check_array(w_star, "w_star", ndim=1, kind="real", finite=True, to_jax=False)
    d = w_star.shape[0]
    w = check_array(w, "w", shape=(d,), kind="real", finite=True, to_jax=False)
    decoy = check_array(decoy, "decoy", shape=(d,), kind="real", finite=True, to_jax=False)
    alpha = check_float(alpha, "alpha", min_value=0.0, max_value=1.0)
    s = check_float(s, "s", min_value=0.0, max_value=1.0, min_inclusive=False)
    eta = _check_eta(eta)
    for name, v in (("w", w), ("w_star", w_star), ("decoy", decoy)):
        if not np.linalg.norm(v) > 0:
            raise ValueError(f"{name} must be a nonzero vector; got the zero vector")
    return float(_decoy_error_np(w, w_star, decoy, alpha, s, eta))


def boundary_decoy(
    key,
    n: int,
    d: int,
    *,
    alpha: float = 0.2,
    s: float = 0.02,
    eta: float = 0.0,
    angle: float = 0.3,
    w_star=None,
    decoy=None,
    sample_key=None,
) -> HalfspaceData:
    """Boundary-heavy mixture (1 - alpha) N(0, I) + alpha N(0, I - (1 - s^2) w~ w~^T).

    The second component is a thin slab (standard deviation ``s`` across) around the decoy
    hyperplane w~ = cos(angle) w_star + sin(angle) v, v a random unit vector orthogonal to
    w_star (or ``decoy`` when given). Labels "favour the decoy": sign(w_star . x) on the
    Gaussian component, sign(w~ . x) on the slab, then random classification noise ``eta`` on
    both. ``opt`` = err_D(w_star) exactly (:func:`decoy_error`), 0.096 at the defaults; the
    decoy's own error is smaller ((1 - alpha) angle / pi = 0.076 at the defaults), so this is
    not a Massart distribution for w_star. Learners that converge to the decoy see 3-8x the
    Gaussian boundary mass and are rejected; theorylab's learner finds w_star here and the tester
    may accept it (soundly: its error is within the certificate of the decoy's). Under
    ``vmap``/``jit`` with both ``w_star`` and ``decoy`` traced, ``opt`` is NaN (unknown on the
    host).

    Args:
      key, n, d, w_star, sample_key: as :func:`gaussian_massart`.
      alpha: slab weight in [0, 1].
      s: slab width in (0, 1].
      eta: label noise rate in [0, 0.5).
      angle: angle (radians, in [0, pi]) between w_star and the random decoy.
      decoy: optional decoy direction ``(d,)`` (normalised; ``angle`` is then ignored).
    """
    n, d = _check_sizes(n, d)
    alpha = check_float(alpha, "alpha", min_value=0.0, max_value=1.0)
    s = check_float(s, "s", min_value=0.0, max_value=1.0, min_inclusive=False)
    eta = _check_eta(eta)
    theta = check_float(angle, "angle", min_value=0.0, max_value=math.pi)
    k_x, w, aux = _keys(key, d, w_star, sample_key)
    if decoy is None:
        v = _unit_perp_jit(aux, w)
        wt = math.cos(theta) * w + math.sin(theta) * v
    else:
        wt = _check_unit(decoy, "decoy", d)
    X, y = _decoy_core(_draw(k_x, n, d), w, wt, alpha, s, eta, n=n, d=d)
    if is_concrete(w) and is_concrete(wt):
        opt = _decoy_error_np(np.asarray(w), np.asarray(w), np.asarray(wt), alpha, s, eta)
    elif decoy is not None:  # traced directions, arbitrary decoy: unknown here
        opt = float("nan")
    else:  # traced key: the decoy's angle is known and the formula depends on it only
        c = math.cos(theta)
        rho = s * c / math.sqrt(max(1.0 - (1.0 - s * s) * c * c, 1e-300))
        opt = eta + (1.0 - 2.0 * eta) * alpha * math.acos(min(1.0, rho)) / math.pi
    return HalfspaceData(X, y, w, float(opt))


# --------------------------------------------------------------------------- non-Gaussian marginals


def _rcn_labels(noise, X, w, eta):
    return jnp.where(noise < eta, -1.0, 1.0).astype(X.dtype) * _sign(X @ w)


_GAMMA_PROPOSALS = 12


def _gamma_at_least_one(normals, uniforms, a):
    """Gamma(a, 1) variates for a shape a >= 1 by Marsaglia & Tsang (2000), vectorised.

    ``normals`` and ``uniforms`` have shape ``(T, n)``: T proposals per variate are made at once
    and the first accepted one is kept (no while loop: ``jax.random.gamma``'s loop costs seconds
    of compile time on CPU). The acceptance rate is >= 0.95 for a >= 1, so all T = 12 proposals
    fail with probability < 0.05^12 < 3e-16; the variate is then a - 1/3 (near the mode), so
    the law is within 3e-16 per variate in total variation of Gamma(a).
    """
    dm = a - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * dm)
    v = 1.0 + c * normals
    valid = v > 0
    log_v3 = 3.0 * jnp.log(jnp.where(valid, v, 1.0))
    accept = valid & (
        jnp.log(uniforms) < 0.5 * normals**2 + dm - dm * jnp.exp(log_v3) + dm * log_v3
    )
    first = jnp.argmax(accept, axis=0)
    chosen = jnp.take_along_axis(log_v3, first[None], axis=0)[0]
    return dm * jnp.exp(jnp.where(jnp.any(accept, axis=0), chosen, 0.0))


@partial(jax.jit, static_argnames=("n", "d"))
def _student_t_core(U, V, w, nu, eta, *, n: int, d: int):
    t = _GAMMA_PROPOSALS
    g, _, noise = _gaussian_part(U, d)
    chi2 = 2.0 * _gamma_at_least_one(ndtri(V[:, :t]).T, V[:, t : 2 * t].T, nu / 2.0)
    X = g * jnp.sqrt((nu - 2.0) / chi2)[:, None]
    return X, _rcn_labels(noise, X, w, eta)


def student_t(
    key, n: int, d: int, *, nu: float = 3.0, eta: float = 0.0, w_star=None, sample_key=None
) -> HalfspaceData:
    """Multivariate Student-t with ``nu`` > 2 degrees of freedom, rescaled to covariance I.

    x = g sqrt((nu - 2) / chi2_nu) with g ~ N(0, I_d) and an independent chi-square per point
    (rotation invariant; a t_nu marginal times sqrt((nu - 2)/nu)). Labels sign(w_star . x) with
    random classification noise ``eta``: opt = eta exactly (= min_w err_D(w)). For nu <= 4 the
    fourth moments are infinite (the spec's kappa_4 diverges): the tester *may* reject.
    """
    n, d = _check_sizes(n, d)
    nu = check_float(nu, "nu", min_value=2.0, min_inclusive=False)
    eta = _check_eta(eta)
    k_x, w, _ = _keys(key, d, w_star, sample_key)
    # the 2 T gamma-proposal uniforms come from further (n, d + 2) draws (folded keys): the
    # compiled sampler of the other generators is reused instead of compiling a new shape
    extra = -(-2 * _GAMMA_PROPOSALS // (d + 2))
    V = jnp.concatenate([_draw(jax.random.fold_in(k_x, i + 1), n, d) for i in range(extra)], 1)
    X, y = _student_t_core(_draw(k_x, n, d), V, w, nu, eta, n=n, d=d)
    return HalfspaceData(X, y, w, float(eta))


@partial(jax.jit, static_argnames=("n", "d"))
def _outliers_core(U, w, aux, alpha, radius, offset, eta, *, n: int, d: int):
    dtype = _float()
    g, component, noise = _gaussian_part(U, d)
    point = radius * _unit_perp(aux, w) + offset * w
    out = component < alpha
    X = jnp.where(out[:, None], point[None, :], g)
    y = jnp.where(noise < eta, -1.0, 1.0) * _sign(g @ w)
    y = jnp.where(out, -_sign(point @ w), y)
    return X, y.astype(dtype)


def far_outliers(
    key,
    n: int,
    d: int,
    *,
    alpha: float = 0.01,
    radius: float = 30.0,
    offset: float = 3.0,
    eta: float = 0.0,
    w_star=None,
    sample_key=None,
) -> HalfspaceData:
    """(1 - alpha) N(0, I) + alpha point mass at radius u + offset w_star, u a random unit
    vector orthogonal to w_star (an exact point, no jitter).

    Gaussian points get sign(w_star . x) with random classification noise ``eta``; the outliers
    get the *wrong* label -sign(w_star . x) = -1 (``offset`` >= 0), so averaging and logistic
    regression rotate towards -u (exactly, averaging's direction is
    (1 - alpha) sqrt(2/pi)(1 - 2 eta) w_star - alpha (radius u + offset w_star)), while the
    smoothed loss ignores them. The global second moment has
    lambda_max ~ 1 + alpha (radius^2 + offset^2) (10 at the defaults). With ``offset ~ 0`` (spec
    5.1.4: the outliers sit on w_star's boundary, where the band weights are largest) the
    tester rejects; with the default offset the outliers get no band weight, the learner finds
    w_star and the tester may accept it (soundly; the diagnostics flag ``cov_lam_max``).

    opt = err_D(w_star) = (1 - alpha) eta + alpha exactly. A direction classifies the outlier
    correctly only at angle > atan(offset / radius) from w_star, so w_star is the minimiser iff
    (1 - alpha)(1 - 2 eta) atan(offset / radius) / pi >= alpha (at the defaults: eta <= 0.34).
    ``offset`` keeps the outlier off the target hyperplane so that its label is unambiguous.
    """
    n, d = _check_sizes(n, d)
    alpha = check_float(alpha, "alpha", min_value=0.0, max_value=1.0)
    radius = check_float(radius, "radius", min_value=0.0)
    offset = check_float(offset, "offset", min_value=0.0)
    eta = _check_eta(eta)
    k_x, w, aux = _keys(key, d, w_star, sample_key)
    X, y = _outliers_core(_draw(k_x, n, d), w, aux, alpha, radius, offset, eta, n=n, d=d)
    return HalfspaceData(X, y, w, float((1.0 - alpha) * eta + alpha))


@partial(jax.jit, static_argnames=("n", "d", "marginal"))
def _product_core(U, w, eta, *, n: int, d: int, marginal: str):
    v = U[:, :d] - 0.5
    if marginal == "cube":
        X = (2.0 * math.sqrt(3.0)) * v
    else:  # inverse CDF of Laplace(scale 1/sqrt(2)); 1 - 2|v| >= eps > 0 on the midpoint grid
        X = (-1.0 / math.sqrt(2.0)) * jnp.sign(v) * jnp.log1p(-2.0 * jnp.abs(v))
    return X, _rcn_labels(U[:, d + 1], X, w, eta)


def uniform_cube(
    key, n: int, d: int, *, eta: float = 0.0, w_star=None, sample_key=None
) -> HalfspaceData:
    """x ~ U[-sqrt(3), sqrt(3)]^d (isotropic, log-concave), labels sign(w_star . x) with random
    classification noise ``eta``; opt = eta exactly. The tester is *allowed* to accept."""
    n, d = _check_sizes(n, d)
    eta = _check_eta(eta)
    k_x, w, _ = _keys(key, d, w_star, sample_key)
    X, y = _product_core(_draw(k_x, n, d), w, eta, n=n, d=d, marginal="cube")
    return HalfspaceData(X, y, w, float(eta))


def laplace_product(
    key, n: int, d: int, *, eta: float = 0.0, w_star=None, sample_key=None
) -> HalfspaceData:
    """x with i.i.d. Laplace(scale 1/sqrt(2)) coordinates (variance 1, log-concave), labels
    sign(w_star . x) with random classification noise ``eta``; opt = eta exactly. The tester
    is *allowed* to accept."""
    n, d = _check_sizes(n, d)
    eta = _check_eta(eta)
    k_x, w, _ = _keys(key, d, w_star, sample_key)
    X, y = _product_core(_draw(k_x, n, d), w, eta, n=n, d=d, marginal="laplace")
    return HalfspaceData(X, y, w, float(eta))


# --------------------------------------------------------------------------- registry


GENERATORS: dict[str, Callable[..., HalfspaceData]] = {
    "gaussian_rcn": partial(gaussian_massart, eta=0.2, profile="rcn"),
    "gaussian_far": partial(gaussian_massart, eta=0.2, profile="far"),
    "gaussian_correlated": partial(gaussian_massart, eta=0.2, profile="correlated"),
    "gaussian_adversarial": partial(gaussian_massart, eta=0.2, profile="adversarial"),
    "agnostic_band": partial(gaussian_agnostic, opt=0.01, kind="band"),
    "agnostic_directional": partial(gaussian_agnostic, opt=0.01, kind="directional"),
    "agnostic_aligned": partial(gaussian_agnostic, opt=0.01, kind="aligned"),
    "ckmy": partial(ckmy_mixture, eta=0.2),
    "decoy": boundary_decoy,
    "student_t": student_t,
    "far_outliers": partial(far_outliers, offset=1e-3),
    "uniform_cube": partial(uniform_cube, eta=0.2),
    "laplace": partial(laplace_product, eta=0.2),
}
"""Name -> generator ``f(key, n, d, **overrides)`` with the spec's default parameters."""

GAUSSIAN_DISTRIBUTIONS = (
    "gaussian_rcn",
    "gaussian_far",
    "gaussian_correlated",
    "gaussian_adversarial",
    "agnostic_band",
    "agnostic_directional",
    "agnostic_aligned",
)
"""Names with an exactly N(0, I) marginal: completeness says the tester must accept these."""

BAD_DISTRIBUTIONS = ("ckmy", "decoy", "far_outliers")
"""Names on which non-tested learners can fail (spec section 5.1): the tester must reject them
or accept only a hypothesis within its certificate. ``"ckmy"`` and ``"far_outliers"`` (registry
default: outliers on the boundary, ``offset=1e-3``) are rejected in the tests; on ``"decoy"``
theorylab's learner finds w_star, which the tester may accept. ``"student_t"`` may be rejected,
and ``"uniform_cube"`` / ``"laplace"`` may be accepted (the certificate stays valid there)."""


# --------------------------------------------------------------------------- Monte Carlo


def monte_carlo_error(
    key,
    generator_fn,
    w,
    *,
    n: int = 10**6,
    chunk_size: int = 2**18,
    sample_key=None,
    **kwargs,
) -> float:
    """Population error err_D(w) estimated on a fresh sample of about ``n`` points.

    ``key`` is the key that defines the distribution -- pass the one that generated the
    training data, so that w_star and every random direction (u, the decoy) are the same;
    the fresh points use keys ``fold_in(sample_key, i)`` per chunk (``sample_key`` defaults to
    ``fold_in(key, 1)``, never the training sample's key). ``generator_fn`` is a generator of
    this module or a name in :data:`GENERATORS`; ``kwargs`` go to it (e.g. ``eta=``,
    ``w_star=``). The sample is drawn in ``ceil(n / chunk_size)`` equal chunks (one
    compilation; at least ``n`` points in all) so memory stays O(chunk_size d).

    Returns the error as a Python float; its standard error is sqrt(err (1 - err) / n).
    """
    key = check_key(key)
    if isinstance(generator_fn, str):
        generator_fn = GENERATORS[check_choice(generator_fn, "generator_fn", tuple(GENERATORS))]
    elif not callable(generator_fn):
        raise TypeError(f"generator_fn must be callable or a name; got {describe(generator_fn)}")
    w = check_array(w, "w", ndim=1, kind="real", finite=True)
    d = check_int(w.shape[0], "w.shape[0]", min_value=2)
    n = check_int(n, "n", min_value=1)
    chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    chunks = -(-n // chunk_size)
    size = -(-n // chunks)
    base = jax.random.fold_in(key, 1) if sample_key is None else check_key(sample_key, "sample_key")
    w = w.astype(_float())
    errors = 0.0
    for i in range(chunks):
        data = generator_fn(key, size, d, sample_key=jax.random.fold_in(base, i), **kwargs)
        errors += float(_error_rate(data.X, data.y, w))
    return errors / chunks
