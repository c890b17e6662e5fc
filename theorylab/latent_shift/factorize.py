"""Non-negative and anchor-based factorisation of LLS count matrices (the DDFA "factorize" step).

Under latent label shift the population matrix factorises exactly as a topic model
(Roberts et al. 2022, §1.2 of the spec):

    ``Q_{X|D} = Q_{X|Y} Q_{Y|D}``,  (m, r) = (m, k)(k, r), every column a distribution,

where ``x`` is a word / cluster id, ``d`` a domain (document) and ``y`` a latent label (topic).
This module recovers ``Q_{Y|D}`` ("class priors") and ``Q_{C|Y}`` from an ``(m, r)`` count
matrix by three routes (:func:`factorize_counts`):

- ``"nmf"`` -- the reference pipeline (``ClusterNMFClassPriorEstimation`` in the official code):
  random-init Frobenius NMF of ``p̂(c|d)ᵀ`` with HALS, 200 iterations, ``tol=1e-4``, then a
  rescaling. Not anchor-aware: if ``Q_{Y|D}`` has no zeros (large Dirichlet α) other
  non-negative factorisations exist and the error plateaus as N grows (spec §5 A).
- ``"spa"`` -- anchor recovery (spec §1.6): the rows ``p̂(d|c)`` lie in the convex hull of the
  ``k`` columns of ``Q_{D|Y}``; the successive projection algorithm (Gillis & Vavasis 2014)
  finds ``k`` anchor clusters, simplex-constrained least squares gives ``p̂(y|c)``, and Bayes'
  rule gives ``Q̂_{Y|D}``. Consistent as N -> ∞ under the anchor (separability) condition.
- ``"spa+hals"`` -- the SPA factors initialise HALS on ``p̂(c|d) ≈ Q_{C|Y} Q_{Y|D}``.

Building blocks (all jit-compiled and ``vmap``-able; validation happens before tracing and
value checks are skipped for tracers):

- :func:`nmf` -- Frobenius NMF ``X ≈ W H`` by HALS (Cichocki & Phan 2009, the same cyclic
  column updates as scikit-learn's ``cd`` solver) or Lee & Seung (2001) multiplicative updates,
  initialised randomly (scikit-learn's ``|N(0,1)|·sqrt(mean(X)/k)``), by NNDSVD / NNDSVDa
  (Boutsidis & Gallopoulos 2008) or by the caller.
- :func:`spa` -- successive projection algorithm for separable NMF.
- :func:`simplex_least_squares` -- ``argmin_{w ∈ Δ^{k-1}} ||A w - b||₂`` for a batch of targets
  by accelerated projected gradient (FISTA with adaptive restart), one ``(n,k)x(k,k)`` GEMM per
  iteration.

Precision: everything runs in the input's floating dtype (float32 by default, float64 under
``jax.enable_x64``); float32 gives factor errors of order 1e-6..1e-5 on well-conditioned
problems, float64 is exact to ~1e-10.
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

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
    "Factorization",
    "FactorizationDiagnostics",
    "NMFResult",
    "SimplexLSInfo",
    "factorize_counts",
    "initialize_nmf",
    "nmf",
    "simplex_least_squares",
    "spa",
]

SOLVERS = ("hals", "mu")
INITS = ("random", "nndsvd", "nndsvda", "custom")
METHODS = ("spa", "nmf", "spa+hals")


# --------------------------------------------------------------------------- results


class NMFResult(NamedTuple):
    """Result of :func:`nmf` (``X ≈ W @ H``).

    Attributes:
      W: ``(n, k)`` non-negative.
      H: ``(k, p)`` non-negative.
      iterations: number of full (W, H) update sweeps performed (int32).
      relative_error: ``||X - W H||_F / ||X||_F`` at the returned factors (exact, not the
        expanded-norm shortcut).
      converged: True when the stopping rule fired (see :func:`nmf`) at or before
        ``max_iter``; False when the iteration budget ran out first.
      error_history: ``(ceil(max_iter / check_every) + 1,)`` relative errors at the checks:
        entry ``j`` is the error after ``min(j·check_every, max_iter)`` sweeps, entry 0 the
        error of the initial factors; NaN after the run stopped.
    """

    W: jax.Array
    H: jax.Array
    iterations: jax.Array
    relative_error: jax.Array
    converged: jax.Array
    error_history: jax.Array


class SimplexLSInfo(NamedTuple):
    """Diagnostics of :func:`simplex_least_squares` (``return_info=True``).

    Attributes:
      iterations: accelerated projected-gradient iterations performed.
      converged: the gradient-mapping norm fell below ``tol`` before ``max_iter``.
      gradient_mapping: final ``max |x_{t+1} - y_t|`` over the batch (0 at an exact optimum).
    """

    iterations: jax.Array
    converged: jax.Array
    gradient_mapping: jax.Array


class FactorizationDiagnostics(NamedTuple):
    """Diagnostics of :func:`factorize_counts`.

    Attributes:
      iterations: HALS/MU sweeps (0 for ``method="spa"``).
      relative_error: ``||X - Q_{C|Y} Q_{Y|D}||_F / ||X||_F`` with ``X = p̂(c|d)`` (column-
        normalised counts), for every method.
      converged: NMF stopping rule fired (``"nmf"``, ``"spa+hals"``); for ``"spa"`` the simplex
        least-squares solve converged.
      condition_number: 2-norm condition number of the recovered ``Q_{D|Y}`` (computed on the
        host; NaN when the call was traced). Large values (> ``cond_warning``) mean the
        recovered factorisation is (nearly) rank deficient and trigger a warning.
      rank_margin: anchor methods only (NaN for ``"nmf"`` or traced calls): σ_min of the k x r
        anchor rows p̂(d|y) divided by the Frobenius norm of their multinomial sampling noise,
        ``sqrt(Σ_y Σ_d p̂(1 - p̂) / N_{c_y})``. If the true Q_{D|Y} had rank < k, σ_min would be
        at most the noise norm (Weyl), so a margin below 1 means the counts cannot tell the k
        classes apart; a warning says so. Measured on the spec's discrete model (m=20, k=5,
        r=10, two classes merged): 0.40-0.90 at N = 1e4-1e6; full rank: 2.98-9.94 at N = 1e6
        (α = 10 / 0.5), but 0.41-0.88 at N = 1e4, where the warning is deserved. Computed only
        for integer-valued counts (the noise model needs counts, not frequencies).
    """

    iterations: Any
    relative_error: Any
    converged: Any
    condition_number: Any
    rank_margin: Any = math.nan


class Factorization(NamedTuple):
    """Result of :func:`factorize_counts`.

    Attributes:
      class_priors: ``Q̂_{Y|D}``, ``(k, r)``, column ``d`` = ``p̂(y|d)`` (columns sum to 1).
      cluster_given_class: ``Q̂_{C|Y}``, ``(m, k)``, column ``y`` = ``p̂(c|y)``.
      anchors: ``(k,)`` int32 anchor cluster of each recovered label (row ``y`` of
        ``class_priors`` belongs to anchor ``anchors[y]``); all -1 for ``method="nmf"``.
      diagnostics: :class:`FactorizationDiagnostics`.
    """

    class_priors: jax.Array
    cluster_given_class: jax.Array
    anchors: jax.Array
    diagnostics: FactorizationDiagnostics


# --------------------------------------------------------------------------- helpers


def _float_dtype(x):
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)


def _as_float(x):
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _check_nonnegative(x, name: str) -> None:
    if is_concrete(x):
        host = np.asarray(x)
        if host.size and host.min() < 0:
            raise ValueError(
                f"{name} must be non-negative; got {int((host < 0).sum())} negative entries "
                f"(min {host.min():.3g})"
            )


def _column_normalize(a, fallback: float | None = None):
    """Divide each column by its sum; all-zero columns become ``fallback`` (uniform if None)."""
    s = a.sum(axis=0, keepdims=True)
    fill = 1.0 / a.shape[0] if fallback is None else fallback
    return jnp.where(s > 0, a / jnp.where(s > 0, s, 1.0), jnp.asarray(fill, a.dtype))


def _row_normalize(a):
    """Divide each row by its sum; all-zero rows stay zero."""
    s = a.sum(axis=1, keepdims=True)
    return jnp.where(s > 0, a / jnp.where(s > 0, s, 1.0), jnp.zeros((), a.dtype))


def _relative_error(X, W, H, norm_x):
    return jnp.linalg.norm(X - W @ H) / norm_x


# --------------------------------------------------------------------------- NMF init


def _random_init(key, X, k: int):
    """scikit-learn's ``init="random"``: ``|N(0,1)| · sqrt(mean(X) / k)`` for W and H."""
    n, p = X.shape
    avg = jnp.sqrt(jnp.mean(X) / k)
    # one draw for both factors (H first, like scikit-learn's stream order): a single
    # normal sampler compiles ~2x faster than two
    z = avg * jnp.abs(jax.random.normal(key, (k * p + n * k,), X.dtype))
    return z[k * p :].reshape(n, k), z[: k * p].reshape(k, p)


def _nndsvd_init(X, k: int, fill_mean: bool):
    """NNDSVD (Boutsidis & Gallopoulos 2008, Table 1); NNDSVDa fills zeros with mean(X).

    From the truncated SVD ``X ≈ Σ_j s_j u_j v_jᵀ``: the first pair is ``sqrt(s_1)·(|u_1|,
    |v_1|)``; for ``j ≥ 2`` keep the positive or the negative parts of ``(u_j, v_j)``, whichever
    rank-one product ``||x₊|| ||y₊||`` vs ``||x₋|| ||y₋||`` is larger, normalise them and scale
    by ``sqrt(s_j · that product)``. The result does not depend on the SVD's sign convention
    (flipping ``(u_j, v_j)`` swaps the two candidates); exact ties pick the positive parts.
    """
    tiny = jnp.finfo(X.dtype).tiny
    U, S, Vt = jnp.linalg.svd(X, full_matrices=False)
    U, S, Vt = U[:, :k], S[:k], Vt[:k]

    def pair(u, s, v):
        up, un = jnp.maximum(u, 0), jnp.maximum(-u, 0)
        vp, vn = jnp.maximum(v, 0), jnp.maximum(-v, 0)
        nup, nun = jnp.linalg.norm(up), jnp.linalg.norm(un)
        nvp, nvn = jnp.linalg.norm(vp), jnp.linalg.norm(vn)
        mp, mn = nup * nvp, nun * nvn
        pos = mp >= mn
        uu = jnp.where(pos, up / jnp.maximum(nup, tiny), un / jnp.maximum(nun, tiny))
        vv = jnp.where(pos, vp / jnp.maximum(nvp, tiny), vn / jnp.maximum(nvn, tiny))
        lam = jnp.sqrt(s * jnp.where(pos, mp, mn))
        return lam * uu, lam * vv

    w, h = jax.vmap(pair, in_axes=(1, 0, 0))(U, S, Vt)  # (k, n), (k, p)
    first_w = jnp.sqrt(S[0]) * jnp.abs(U[:, 0])
    first_h = jnp.sqrt(S[0]) * jnp.abs(Vt[0])
    W = w.T.at[:, 0].set(first_w)
    H = h.at[0].set(first_h)
    if fill_mean:
        avg = jnp.mean(X)
        W = jnp.where(W == 0, avg, W)
        H = jnp.where(H == 0, avg, H)
    return W, H


def _init_factors(key, X, k: int, init: str):
    if init == "random":
        return _random_init(key, X, k)
    return _nndsvd_init(X, k, fill_mean=init == "nndsvda")


def _validate_nmf_inputs(key, X, num_components, init, W_init, H_init):
    X = check_array(X, "X", ndim=2, kind="real", finite=True, min_size=1)
    X = _as_float(X)
    _check_nonnegative(X, "X")
    if is_concrete(X) and not np.any(np.asarray(X) > 0):
        raise ValueError(
            "X must have at least one positive entry (the relative error "
            "||X - WH|| / ||X|| is undefined for X = 0)"
        )
    n, p = X.shape
    k = check_int(num_components, "num_components", min_value=1)
    check_choice(init, "init", INITS)
    if init == "random":
        key = check_key(key)
    if init in ("nndsvd", "nndsvda") and k > min(n, p):
        raise ValueError(
            f"num_components must be <= min(X.shape) = {min(n, p)} for init={init!r} "
            f"(the SVD has only that many components); got {k}"
        )
    if init == "custom":
        if W_init is None or H_init is None:
            raise ValueError("init='custom' needs both W_init (n, k) and H_init (k, p)")
        W_init = check_array(W_init, "W_init", shape=(n, k), kind="real", finite=True)
        H_init = check_array(H_init, "H_init", shape=(k, p), kind="real", finite=True)
        _check_nonnegative(W_init, "W_init")
        _check_nonnegative(H_init, "H_init")
        W_init, H_init = W_init.astype(X.dtype), H_init.astype(X.dtype)
    elif W_init is not None or H_init is not None:
        raise ValueError(f"W_init/H_init are only used with init='custom'; got init={init!r}")
    return key, X, k, W_init, H_init


def initialize_nmf(key, X, num_components: int, *, init: str = "random"):
    """Initial NMF factors ``(W (n,k), H (k,p))`` as used by :func:`nmf`.

    Args:
      key: PRNG key (used by ``init="random"`` only; may be None otherwise).
      X: ``(n, p)`` non-negative matrix.
      num_components: k.
      init: ``"random"`` (``|N(0,1)|·sqrt(mean(X)/k)``, scikit-learn's convention; one
        normal draw of size ``kp + nk``, the first ``kp`` values fill H row by row, the rest W),
        ``"nndsvd"`` or
        ``"nndsvda"`` (Boutsidis & Gallopoulos 2008; NNDSVDa replaces zeros by ``mean(X)``,
        which multiplicative updates need since they never move a zero).

    Cost: O(npk) (random) or one thin SVD O(np·min(n,p)) (NNDSVD).
    """
    check_choice(init, "init", INITS[:3])
    key, X, k, _, _ = _validate_nmf_inputs(key, X, num_components, init, None, None)
    return _init_jit(key, X, k=k, init=init)


@partial(jax.jit, static_argnames=("k", "init"))
def _init_jit(key, X, *, k: int, init: str):
    return _init_factors(key, X, k, init)


# --------------------------------------------------------------------------- NMF updates


def _hals_rows(U, UV, G, floor, dead):
    """Cyclic exact row updates of ``U`` (k, m) given ``UV = V Aᵀ`` (k, m) and ``G = V Vᵀ``.

    Solves ``min ½||A - Uᵀ V||²`` one row at a time: row ``j`` becomes ``max(floor, U[j] +
    (UV[j] - G[j] U) / G[jj])`` with the already-updated rows ``< j`` (Gauss-Seidel); a row whose
    curvature ``G[jj] <= dead`` is left unchanged (see :func:`_hals_sweep`).
    """

    def row(j, U):
        g = G[j, j]
        live = g > dead
        new = U[j] + (UV[j] - G[j] @ U) / jnp.where(live, g, 1.0)
        return U.at[j].set(jnp.where(live, jnp.maximum(new, floor), U[j]))

    return jax.lax.fori_loop(0, U.shape[0], row, U)


def _hals_sweep(X, Xt, Wt, H, floor):
    """One HALS sweep: every column of W, then every row of H (cyclic, in index order).

    ``W[:, j] <- max(floor, W[:, j] + ((X Hᵀ)[:, j] - W (H Hᵀ)[:, j]) / (H Hᵀ)[j, j])`` uses the
    already-updated columns ``< j`` (Gauss-Seidel), which is exactly scikit-learn's ``cd`` solver
    (without regularisation or shuffling) up to the floor; likewise for the rows of H.

    Layout: W is carried transposed (``Wt = Wᵀ``, (k, n)) next to a precomputed ``Xt = Xᵀ``, so
    both half-sweeps are the same row update (:func:`_hals_rows`) and every product contracts
    the minor (contiguous) axes of both operands (``H Xᵀ``, ``H Hᵀ``, ``Wt Xtᵀ``, ``Wt Wtᵀ``).
    Under ``vmap`` on CPU the batched GEMMs ``Wᵀ X`` and ``Wᵀ W`` of the natural layout, which
    contract the major axis of W (n, k) and X, ran ~3x slower than these.

    Collapsed components: if row j of H is entirely at the floor (``(HHᵀ)_jj <= 4 p floor²``),
    column j of W is left unchanged in this sweep (and symmetrically for H), exactly as
    scikit-learn skips a coordinate with zero curvature; the next half-sweep then revives the
    component from its other factor. Dividing by the near-zero curvature instead would make the
    exact block minimiser jump to ~1/floor scale and leave W and H badly unbalanced (a float32
    overflow risk after repeated collapses).
    """
    n, p = X.shape
    Wt = _hals_rows(Wt, H @ X.T, H @ H.T, floor, 4.0 * p * floor * floor)
    H = _hals_rows(H, Wt @ Xt.T, Wt @ Wt.T, floor, 4.0 * n * floor * floor)
    return Wt, H


def _mu_sweep(X, Xt, Wt, H, floor):
    """Lee & Seung (2001) multiplicative updates for the Frobenius loss, W first then H.

    ``W <- W ∘ (X Hᵀ) / (W H Hᵀ)``, ``H <- H ∘ (Wᵀ X) / (Wᵀ W H)``; a zero denominator (only
    possible with a zero numerator) is replaced by the smallest normal number. Zeros never move.
    Same transposed layout as :func:`_hals_sweep` (``Wt = Wᵀ``, ``Xt = Xᵀ``).
    """
    del floor
    tiny = jnp.finfo(X.dtype).tiny
    Wt = Wt * (H @ X.T) / jnp.maximum((H @ H.T) @ Wt, tiny)
    H = H * (Wt @ Xt.T) / jnp.maximum((Wt @ Wt.T) @ H, tiny)
    return Wt, H


class _NMFState(NamedTuple):
    W: jax.Array
    H: jax.Array
    it: jax.Array
    check: jax.Array
    err: jax.Array
    done: jax.Array
    history: jax.Array


def _nmf_iterate(X, W, H, tol, *, solver: str, max_iter: int, check_every: int):
    """Run sweeps in blocks of ``check_every`` until the stopping rule fires or ``max_iter``."""
    dtype = X.dtype
    finfo = jnp.finfo(dtype)
    norm_x = jnp.maximum(jnp.linalg.norm(X), finfo.tiny)
    floor = finfo.eps**2 * jnp.max(X) if solver == "hals" else jnp.zeros((), dtype)
    round_off = 10 * finfo.eps
    sweep = _hals_sweep if solver == "hals" else _mu_sweep
    n_checks = -(-max_iter // check_every)

    Xt = X.T  # once; the sweeps carry Wt = Wᵀ (see _hals_sweep)

    def rel_err(Wt, H):
        return _relative_error(X, Wt.T, H, norm_x)

    err0 = rel_err(W.T, H)
    history = jnp.full((n_checks + 1,), jnp.nan, dtype).at[0].set(err0)
    state = _NMFState(W.T, H, jnp.int32(0), jnp.int32(0), err0, err0 <= round_off, history)

    def cond(s):
        return (~s.done) & (s.it < max_iter)

    def body(s):
        steps = jnp.minimum(check_every, max_iter - s.it)
        W, H = jax.lax.fori_loop(0, steps, lambda _, wh: sweep(X, Xt, *wh, floor), (s.W, s.H))
        err = rel_err(W, H)
        check = s.check + 1
        done = ((s.err - err) < tol * s.err) | (err <= round_off)
        return _NMFState(W, H, s.it + steps, check, err, done, s.history.at[check].set(err))

    out = jax.lax.while_loop(cond, body, state)
    return NMFResult(out.W.T, out.H, out.it, out.err, out.done, out.history)


@partial(jax.jit, static_argnames=("k", "solver", "init", "max_iter", "check_every"))
def _nmf_core(key, X, W_init, H_init, tol, *, k, solver, init, max_iter, check_every):
    if init == "custom":
        W, H = W_init, H_init
    else:
        W, H = _init_factors(key, X, k, init)
    return _nmf_iterate(
        X,
        W,
        H,
        jnp.asarray(tol, X.dtype),
        solver=solver,
        max_iter=max_iter,
        check_every=check_every,
    )


def nmf(
    key,
    X,
    num_components: int,
    *,
    solver: str = "hals",
    init: str = "random",
    W_init=None,
    H_init=None,
    max_iter: int = 200,
    tol: float = 1e-4,
    check_every: int = 10,
) -> NMFResult:
    """Frobenius non-negative matrix factorisation ``X ≈ W H`` (W, H ≥ 0).

    Minimises ``½||X - W H||_F²`` by block coordinate descent.

    - ``solver="hals"``: hierarchical alternating least squares (Cichocki & Phan 2009; Gillis
      2014 §3), exact minimisation over one column of W (then one row of H) at a time, projected
      onto ``[floor, ∞)`` with ``floor = eps(dtype)² · max(X)``: the tiny positive floor keeps
      entries from becoming exactly zero, and a column / row that has collapsed to the floor is
      skipped for one half-sweep (no division by a vanishing ``(HHᵀ)_jj``), after which the
      other factor's update revives it. Same iterates as scikit-learn's ``solver="cd"`` (no
      regularisation, ``shuffle=False``) from the same start, up to the floor.
    - ``solver="mu"``: Lee & Seung multiplicative updates (W then H, like scikit-learn's
      ``"mu"``); entries that start at zero stay zero, so prefer ``init="nndsvda"`` to
      ``"nndsvd"`` with it.

    Stopping rule (differs from scikit-learn, whose ``cd`` solver compares projected-gradient
    norms and ``mu`` compares to the *initial* error): every ``check_every`` sweeps the exact
    relative error ``e_j = ||X - WH||_F / ||X||_F`` is computed, and the run stops (``converged
    = True``) as soon as ``e_{j-1} - e_j < tol · e_{j-1}`` (relative decrease since the previous
    check below ``tol``; an increase also stops it) or ``e_j <= 10·eps(dtype)`` (round-off level,
    including an exact start). Otherwise it stops after ``max_iter`` sweeps with
    ``converged = False``; non-convergence is never silent. ``max_iter=0`` returns the
    initialisation.

    Args:
      key: PRNG key for ``init="random"`` (ignored, may be None, otherwise).
      X: ``(n, p)`` non-negative finite matrix, not all zero. Integer input becomes the default
        float dtype; float32/float64 are kept.
      num_components: k >= 1 (static).
      solver: ``"hals"`` or ``"mu"`` (static).
      init: ``"random"``, ``"nndsvd"``, ``"nndsvda"`` (see :func:`initialize_nmf`) or
        ``"custom"`` with ``W_init (n, k)`` and ``H_init (k, p)`` (static).
      max_iter: maximal number of sweeps (static, >= 0).
      tol: relative-decrease threshold (>= 0; dynamic).
      check_every: sweeps between error checks (static, >= 1).

    Returns:
      :class:`NMFResult`.

    Composes with ``jit`` and ``vmap``: ``jax.vmap(lambda k, X: nmf(k, X, 10))(keys, Xs)``
    solves a batch; under ``vmap`` the loop runs until every problem has stopped, finished
    problems are frozen, so each result equals the single call's.

    Complexity: O(npk + (n + p)k²) per sweep plus O(npk) per check; memory O(np).
    """
    check_choice(solver, "solver", SOLVERS)
    key, X, k, W_init, H_init = _validate_nmf_inputs(key, X, num_components, init, W_init, H_init)
    max_iter = check_int(max_iter, "max_iter", min_value=0)
    check_every = check_int(check_every, "check_every", min_value=1)
    if not is_concrete(tol):
        raise TypeError("tol must be a concrete number; got a traced value")
    tol = check_float(tol, "tol", min_value=0.0)
    return _nmf_core(
        key,
        X,
        W_init,
        H_init,
        tol,
        k=k,
        solver=solver,
        init=init,
        max_iter=max_iter,
        check_every=check_every,
    )


# --------------------------------------------------------------------------- SPA


@partial(jax.jit, static_argnames=("num_anchors",))
def _spa_core(M, *, num_anchors: int):
    R = M
    chosen = jnp.zeros((num_anchors,), jnp.int32)
    available = jnp.ones((M.shape[0],), bool)

    def step(j, carry):
        R, chosen, available = carry
        norms = jnp.sum(R * R, axis=1)
        i = jnp.argmax(jnp.where(available, norms, -jnp.inf)).astype(jnp.int32)
        u = R[i] / jnp.maximum(jnp.sqrt(norms[i]), jnp.finfo(R.dtype).tiny)
        R = R - jnp.outer(R @ u, u)
        return R, chosen.at[j].set(i), available.at[i].set(False)

    _, chosen, _ = jax.lax.fori_loop(0, num_anchors, step, (R, chosen, available))
    return chosen


def spa(M, num_anchors: int):
    """Successive projection algorithm (Gillis & Vavasis 2014, Alg. 1) for separable NMF.

    The rows of ``M`` (n, d) are points. Repeat ``num_anchors`` times: pick the row of the
    residual with the largest Euclidean norm (ties: the lowest index; a row is never picked
    twice), then project every residual row onto the orthogonal complement of the picked
    residual. If ``M = H V`` with the rows of H in the probability simplex, ``V`` (k, d) of full
    row rank and every row of V present among the rows of M (anchors), the first k picks are
    exactly the anchor rows (one per vertex, noise-free); with noise the error of the picked
    vertices is O(κ(V)² · noise) (Gillis & Vavasis 2014, robustness theorem).

    Args:
      M: ``(n, d)`` real matrix (typically non-negative with rows on the simplex).
      num_anchors: k with ``1 <= k <= min(n, d)`` (static).

    Returns:
      ``(k,)`` int32 row indices in the order they were picked.

    Complexity: O(n d k). Jittable and vmappable.
    """
    M = check_array(M, "M", ndim=2, kind="real", finite=True, min_size=1)
    M = _as_float(M)
    n, d = M.shape
    k = check_int(num_anchors, "num_anchors", min_value=1)
    if k > n:
        raise ValueError(f"num_anchors must be <= the number of rows of M ({n}); got {k}")
    if k > d:
        raise ValueError(
            f"num_anchors must be <= the number of columns of M ({d}): after {d} projections "
            f"the residual is zero and further anchors are arbitrary; got {k}"
        )
    return _spa_core(M, num_anchors=k)


# --------------------------------------------------------------------------- simplex LS


def _project_rows(V):
    return jax.vmap(lambda v: optax.projections.projection_simplex(v))(V)


@partial(jax.jit, static_argnames=("max_iter",))
def _simplex_ls_core(A, B, tol, *, max_iter: int):
    dtype = A.dtype
    k = A.shape[1]
    G = A.T @ A  # (k, k)
    C = B @ A  # (n, k)
    lip = jnp.linalg.eigvalsh(G)[-1]
    step = 1.0 / jnp.maximum(lip, jnp.finfo(dtype).tiny)
    x0 = jnp.full((B.shape[0], k), 1.0 / k, dtype)
    t0 = jnp.ones((B.shape[0],), dtype)

    def cond(s):
        _, _, _, it, gap = s
        return (it < max_iter) & (gap > tol)

    def body(s):
        x, y, t, it, _ = s
        grad = y @ G - C
        x_new = _project_rows(y - step * grad)
        gap = jnp.max(jnp.abs(x_new - y))
        # adaptive (gradient) restart, O'Donoghue & Candès 2015, per target
        restart = jnp.sum((y - x_new) * (x_new - x), axis=1) > 0
        t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
        beta = jnp.where(restart, 0.0, (t - 1.0) / t_new)
        t_new = jnp.where(restart, 1.0, t_new)
        y_new = x_new + beta[:, None] * (x_new - x)
        return x_new, y_new, t_new, it + 1, gap

    init = (x0, x0, t0, jnp.int32(0), jnp.asarray(jnp.inf, dtype))
    x, _, _, it, gap = jax.lax.while_loop(cond, body, init)
    return x, SimplexLSInfo(it, gap <= tol, gap)


def simplex_least_squares(
    A, B, *, max_iter: int = 3000, tol: float | None = None, return_info: bool = False
):
    """``w_i = argmin_{w ∈ Δ^{k-1}} ||A w - b_i||₂`` for every target ``b_i`` (one per ROW of B).

    Batching convention: ``A`` is ``(r, k)`` (the k simplex vertices / dictionary columns live in
    R^r) and ``B`` is ``(n, r)`` with one target per **row** (e.g. rows ``p̂(d|x)`` with
    ``A = Q_{D|Y}``), or a single ``(r,)`` vector. The result is ``(n, k)`` (resp. ``(k,)``), each
    row in the probability simplex ``{w >= 0, Σ w = 1}``; it solves ``min ||W Aᵀ - B||_F``
    row by row.

    Algorithm: FISTA (Beck & Teboulle 2009) on ``½||A w - b||²`` with step ``1/L``,
    ``L = λ_max(AᵀA)`` (one ``eigvalsh`` of the k×k Gram matrix), Euclidean projection onto the
    simplex (``optax.projections.projection_simplex``, sort-based), and per-target adaptive
    restart (O'Donoghue & Candès 2015), which gives linear convergence when ``A`` has full
    column rank. ``AᵀA`` and ``B A`` are formed once, so each iteration costs one ``(n,k)x(k,k)``
    GEMM plus n projections, O(nk² + nk log k). Stops when the gradient mapping
    ``max_i ||x_{t+1} - y_t||_∞`` (zero exactly at the optimum) is ``<= tol``. On
    well-conditioned float64 problems the solution is exact to ~1e-10.

    Args:
      A: ``(r, k)`` real matrix.
      B: ``(n, r)`` or ``(r,)`` targets.
      max_iter: iteration cap (static).
      tol: gradient-mapping tolerance; default ``50·eps(dtype)`` (1.1e-14 in float64, 6e-6 in
        float32).
      return_info: also return :class:`SimplexLSInfo` (iterations, converged, final gap).

    Returns:
      ``W`` (or ``(W, info)``). The dtype follows ``A``/``B`` (their common float type).
    """
    A = _as_float(check_array(A, "A", ndim=2, kind="real", finite=True, min_size=1))
    B = check_array(B, "B", ndim=(1, 2), kind="real", finite=True, min_size=1)
    r, _ = A.shape
    if B.shape[-1] != r:
        raise ValueError(
            f"B must have {r} entries per target (one per row of A, shape (n, {r}) or "
            f"({r},)); got {describe(B)}"
        )
    max_iter = check_int(max_iter, "max_iter", min_value=1)
    dtype = jnp.result_type(A.dtype, _float_dtype(B))
    if tol is None:
        tol = 50.0 * float(jnp.finfo(dtype).eps)
    tol = check_float(tol, "tol", min_value=0.0)
    single = B.ndim == 1
    B2 = B[None, :] if single else B
    W, info = _simplex_ls_core(
        A.astype(dtype), B2.astype(dtype), jnp.asarray(tol, dtype), max_iter=max_iter
    )
    if single:
        W = W[0]
    return (W, info) if return_info else W


# --------------------------------------------------------------------------- counts


def _normalize_nmf_factors(C, P):
    """``C`` (m,k), ``P`` (k,r): columns of C to sums 1, rows of P rescaled, then columns of P
    normalised (spec §1.4 iii steps 3-4). Zero columns fall back to uniform distributions."""
    s = C.sum(axis=0)
    pos = s > 0
    C = jnp.where(pos[None, :], C / jnp.where(pos, s, 1.0)[None, :], 1.0 / C.shape[0])
    P = P * jnp.where(pos, s, 0.0)[:, None]
    return C, _column_normalize(P)


def _spa_route(counts, anchor_points, k: int, lsq_max_iter: int, lsq_tol):
    p_d_given_c = _row_normalize(counts)  # (m, r), rows p̂(d|c); zero rows stay 0
    select = p_d_given_c if anchor_points is None else anchor_points
    anchors = _spa_core(select, num_anchors=k)
    vertices = p_d_given_c[anchors]  # (k, r), row y = p̂(d|y)
    p_y_given_c, info = _simplex_ls_core(vertices.T, p_d_given_c, lsq_tol, max_iter=lsq_max_iter)
    total = counts.sum()
    p_c = counts.sum(axis=1) / total  # (m,)
    p_y = p_c @ p_y_given_c  # (k,)
    joint = vertices * p_y[:, None]  # p(y, d) = p(d|y) p(y)
    class_priors = _column_normalize(joint)  # p(y|d) = p(y, d) / p(d)
    cluster_given_class = _column_normalize(p_y_given_c * p_c[:, None])  # p(c|y) ∝ p(y|c)p(c)
    return class_priors, cluster_given_class, anchors, info.converged


@partial(
    jax.jit,
    static_argnames=("k", "method", "solver", "max_iter", "check_every", "lsq_max_iter"),
)
def _factorize_core(
    counts,
    key,
    tol,
    lsq_tol,
    anchor_points=None,
    *,
    k,
    method,
    solver,
    max_iter,
    check_every,
    lsq_max_iter,
):
    X = _column_normalize(counts)  # p̂(c|d), (m, r); columns are non-zero (validated)
    norm_x = jnp.maximum(jnp.linalg.norm(X), jnp.finfo(X.dtype).tiny)
    if method == "nmf":
        res = _nmf_core(
            key,
            X.T,
            None,
            None,
            tol,
            k=k,
            solver=solver,
            init="random",
            max_iter=max_iter,
            check_every=check_every,
        )
        C, P = _normalize_nmf_factors(res.H.T, res.W.T)
        anchors = jnp.full((k,), -1, jnp.int32)
        iterations, converged = res.iterations, res.converged
    else:
        P, C, anchors, converged = _spa_route(counts, anchor_points, k, lsq_max_iter, lsq_tol)
        iterations = jnp.int32(0)
        if method == "spa+hals":
            res = _nmf_core(
                None,
                X,
                C,
                P,
                tol,
                k=k,
                solver=solver,
                init="custom",
                max_iter=max_iter,
                check_every=check_every,
            )
            C, P = _normalize_nmf_factors(res.W, res.H)
            iterations, converged = res.iterations, res.converged
    err = _relative_error(X, C, P, norm_x)
    return P, C, anchors, iterations, err, converged


def _condition_number_q_d_given_y(class_priors, counts) -> float:
    """cond₂ of ``Q_{D|Y}[d, y] ∝ p(y|d) p̂(d)`` (columns normalised), on the host."""
    q = np.asarray(class_priors, dtype=np.float64)
    p_d = np.asarray(counts, dtype=np.float64).sum(axis=0)
    joint = (q * p_d[None, :]).T  # (r, k)
    sums = joint.sum(axis=0, keepdims=True)
    q_dy = joint / np.where(sums > 0, sums, 1.0)
    s = np.linalg.svd(q_dy, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else math.inf


def factorize_counts(
    counts,
    num_classes: int,
    *,
    method: str = "spa",
    key=None,
    solver: str = "hals",
    max_iter: int = 200,
    tol: float = 1e-4,
    check_every: int = 10,
    lsq_max_iter: int = 3000,
    lsq_tol: float | None = None,
    cond_warning: float = 1e6,
    anchor_points=None,
) -> Factorization:
    """Recover ``Q_{Y|D}`` and ``Q_{C|Y}`` from an ``(m, r)`` cluster-by-domain count matrix.

    ``counts[c, d]`` = number of examples in cluster / word c and domain d. Three methods
    (Roberts et al. 2022 §1.4 step iii and the anchor improvement of spec §1.6):

    - ``"nmf"`` (paper-faithful): ``X = p̂(c|d)`` (column-normalised counts); NMF ``Xᵀ ≈ W H``
      (r×k)(k×m) with random init, HALS, ``max_iter=200``, ``tol=1e-4`` (scikit-learn 1.0.2's
      defaults; the stopping rule is :func:`nmf`'s); ``P = Wᵀ``, ``C = Hᵀ``; ``s`` = column sums
      of C; ``C /= s``; ``P *= s[:, None]``; ``Q̂_{Y|D}`` = column-normalise(P). Needs ``key``.
      Known limitation: not anchor-aware, biased when ``Q_{Y|D}`` has no zeros.
    - ``"spa"`` (default): rows ``p̂(d|c)`` = row-normalised counts; anchors = :func:`spa` of
      those rows (k clusters); their rows estimate the columns ``p(d|y)`` of ``Q_{D|Y}``;
      ``p̂(y|c)`` = :func:`simplex_least_squares` of every cluster row onto those vertices;
      ``p̂(c)`` = row sums / total; ``p̂(y) = Σ_c p̂(c) p̂(y|c)``; ``p̂(y, d) = p̂(d|y) p̂(y)``;
      ``Q̂_{Y|D}[:, d] = p̂(y, d) / p̂(d)`` (column normalisation); ``Q̂_{C|Y}[c, y] ∝ p̂(y|c)
      p̂(c)`` (column normalised). Because ``p̂(d|c)`` and ``p̂(y)`` are built from the raw counts,
      the empirical domain sizes ``p̂(d)`` enter through Bayes' rule and unequal domain sizes
      are handled correctly (no ``p(d) = 1/r`` assumption). Clusters with zero counts get
      ``p̂(c) = 0`` and do not affect the result (no NaN). A domain column of the joint that
      is zero (no anchor-cluster example in that domain) falls back to the uniform prior.
    - ``"spa+hals"``: the SPA factors ``(Q̂_{C|Y}, Q̂_{Y|D})`` initialise HALS (``init="custom"``)
      on ``X = p̂(c|d) ≈ Q_{C|Y} Q_{Y|D}`` (m×k)(k×r), followed by the same normalisation as
      ``"nmf"``. In the noise-free separable case SPA is already exact and HALS keeps it.

    Label order: row y of ``class_priors`` (and column y of ``cluster_given_class``) is the
    class whose anchor was picked y-th by SPA; for ``"nmf"`` it is NMF's arbitrary order. The
    labels are identifiable only up to this permutation.

    Args:
      counts: ``(m, r)`` non-negative finite counts (ints or floats; float counts such as
        soft assignments are fine). Every domain (column) needs a positive total.
      num_classes: k, with ``1 <= k <= r`` and ``k <= m``.
      method: ``"spa"``, ``"nmf"`` or ``"spa+hals"`` (static).
      key: PRNG key, required by ``"nmf"`` (random init), ignored otherwise.
      solver: NMF solver for ``"nmf"`` / ``"spa+hals"`` (``"hals"`` or ``"mu"``).
      max_iter, tol, check_every: NMF stopping rule (see :func:`nmf`).
      lsq_max_iter, lsq_tol: simplex least-squares budget (see :func:`simplex_least_squares`).
      anchor_points: optional ``(m, p)`` points, one per cluster, on which SPA *selects* the
        anchors (``"spa"``/``"spa+hals"``); the vertices p̂(d|y) are still the count rows of
        the selected clusters. DDFA passes the k-means centres in p(d|x) space: a centre is
        the mean of p(d|x) over its cluster, i.e. an estimate of p(d|c) without the
        multinomial noise of the domain counts, so SPA (which picks extreme rows) no longer
        picks tiny, noisy clusters (measured: oracle DDFA at α = 10 with m = 3k picked
        clusters of 41-58 points and lost 0.2 accuracy on 2 of 8 seeds; see
        :func:`theorylab.latent_shift.ddfa.fit_from_domain_posterior`). Default: the
        row-normalised counts (plain SPA).
      cond_warning: warn (``UserWarning``) when the recovered ``Q_{D|Y}`` has a 2-norm
        condition number above this (checked only outside ``jit``/``vmap``).

    Returns:
      :class:`Factorization` with ``class_priors (k, r)``, ``cluster_given_class (m, k)``,
      ``anchors (k,)`` and diagnostics. Float dtype follows ``counts`` (ints -> default float).

    Raises:
      ValueError: negative or non-finite counts, a domain with zero total, ``num_classes > r``
        (not identifiable), ``num_classes > m``, unknown method/solver, ``"nmf"`` without a key.

    Complexity: SPA O(mrk) + least squares O(T·mk²); NMF O(max_iter·mrk). Jittable and
    vmappable over count matrices of equal shape (validation and the condition-number warning
    are skipped for traced inputs).
    """
    counts = check_array(counts, "counts", ndim=2, kind="real", finite=True, min_size=1)
    counts = _as_float(counts)
    m, r = counts.shape
    k = check_int(num_classes, "num_classes", min_value=1)
    check_choice(method, "method", METHODS)
    check_choice(solver, "solver", SOLVERS)
    if k > r:
        raise ValueError(
            f"num_classes must be <= the number of domains r = {r} (columns of counts); got "
            f"{k}. With fewer domains than classes Q_{{Y|D}} (k x r) cannot have full row rank "
            f"k, so the factorisation Q_{{X|D}} = Q_{{X|Y}} Q_{{Y|D}} is not identifiable (the "
            f"LLS identifiability condition needs r >= k)"
        )
    if k > m:
        raise ValueError(
            f"num_classes must be <= the number of clusters m = {m} (rows of counts); got {k}. "
            f"Each class needs at least one (anchor) cluster"
        )
    concrete = is_concrete(counts)
    if concrete:
        host = np.asarray(counts)
        _check_nonnegative(host, "counts")
        empty = np.flatnonzero(host.sum(axis=0) <= 0)
        if empty.size:
            raise ValueError(
                f"counts must have a positive total in every domain (column); domains "
                f"{empty.tolist()[:10]} have zero counts, so p(c|d) is undefined there"
            )
    if method == "nmf":
        if key is None:
            raise ValueError("key is required for method='nmf' (random NMF initialisation)")
        key = check_key(key)
    else:
        key = None
    max_iter = check_int(max_iter, "max_iter", min_value=0)
    check_every = check_int(check_every, "check_every", min_value=1)
    lsq_max_iter = check_int(lsq_max_iter, "lsq_max_iter", min_value=1)
    tol = check_float(tol, "tol", min_value=0.0)
    if lsq_tol is None:
        lsq_tol = 50.0 * float(jnp.finfo(counts.dtype).eps)
    lsq_tol = check_float(lsq_tol, "lsq_tol", min_value=0.0)
    cond_warning = check_float(cond_warning, "cond_warning", min_value=1.0, allow_inf=True)
    if anchor_points is not None:
        anchor_points = check_array(
            anchor_points, "anchor_points", ndim=2, kind="real", finite=True
        )
        if anchor_points.shape[0] != m:
            raise ValueError(
                f"anchor_points must have one row per cluster (m = {m}); got "
                f"{describe(anchor_points)}"
            )
        anchor_points = anchor_points.astype(counts.dtype)

    P, C, anchors, iterations, err, converged = _factorize_core(
        counts,
        key,
        jnp.asarray(tol, counts.dtype),
        jnp.asarray(lsq_tol, counts.dtype),
        anchor_points if method != "nmf" else None,
        k=k,
        method=method,
        solver=solver,
        max_iter=max_iter,
        check_every=check_every,
        lsq_max_iter=lsq_max_iter,
    )
    cond = math.nan
    if concrete and is_concrete(P):
        cond = _condition_number_q_d_given_y(P, counts)
        if not cond <= cond_warning:
            warnings.warn(
                f"the recovered Q_{{D|Y}} is (nearly) rank deficient: condition number "
                f"{cond:.3g} > {cond_warning:.3g}. num_classes={k} may exceed the number of "
                f"classes the domains can separate, or two recovered classes coincide; the "
                f"class priors are unreliable",
                UserWarning,
                stacklevel=2,
            )
    margin = math.nan
    host_counts = np.asarray(counts, np.float64) if concrete else None
    integral = concrete and np.array_equal(host_counts, np.round(host_counts))
    if method != "nmf" and integral and is_concrete(anchors):
        margin = _rank_margin(host_counts, np.asarray(anchors))
        if margin < 1.0:
            warnings.warn(
                f"Q_{{Y|D}} is not resolvable from these counts: the smallest singular value of "
                f"the anchor rows p̂(d|y) is {margin:.2f}x their sampling-noise norm (< 1), so "
                f"a rank-deficient Q_{{D|Y}} (classes that shift together) fits as well "
                f"(condition number {cond:.3g}). Use more samples, fewer classes or more "
                f"domains; the class priors are unreliable",
                UserWarning,
                stacklevel=2,
            )
    diagnostics = FactorizationDiagnostics(iterations, err, converged, cond, margin)
    return Factorization(P, C, anchors, diagnostics)


def _rank_margin(counts: np.ndarray, anchors: np.ndarray) -> float:
    """σ_min(anchor rows p̂(d|y)) / ‖multinomial noise‖_F (see FactorizationDiagnostics)."""
    rows = counts[anchors]
    sizes = rows.sum(axis=1, keepdims=True)
    if np.any(sizes <= 0):
        return 0.0
    V = rows / sizes
    noise = math.sqrt(float(np.sum(V * (1.0 - V) / sizes)))
    smallest = float(np.linalg.svd(V, compute_uv=False)[-1])
    return smallest / noise if noise > 0 else math.inf
