"""DDFA: discriminate, discretise, factorise, adjust (Roberts et al. 2022, §4 / Algorithm 1).

Unsupervised learning under *latent label shift*: every example carries a domain d, the
label y is never observed, and only the label marginals p_d(y) = p(y|d) change between
domains (p(x|y,d) = p(x|y)). DDFA recovers Q_{Y|D} (k x r, column d = p(y|d)) and the
domain-adjusted classifier p_d(y|x) up to a permutation of the labels:

1. **discriminate** -- a domain classifier f(x) ~ p(d|x) (:mod:`.discriminator`, or any
   user-supplied callable, or precomputed posteriors);
2. **discretise** -- k-means with m clusters in p(d|x) space (:mod:`.kmeans`); the cluster id
   c is a deterministic function of x, so p(c|y,d) = p(c|y) and the (m x r) cluster-by-domain
   count matrix is again a latent-label-shift / topic model (paper §4);
3. **factorise** -- recover Q_{Y|D} from the counts (:func:`.factorize.factorize_counts`):
   ``"spa"`` (anchor clusters by successive projection, the default), ``"spa+hals"`` or the
   paper's random-init ``"nmf"``;
4. **adjust** -- p(y|x) from f(x) = Q_{D|Y} p(y|x) (pseudo-inverse as in the paper, or the
   simplex-constrained solve, the default), then p_d(y|x) ∝ p(y|x) p(d|y) (Bayes, because
   x ⟂ d | y).

Evaluation follows the paper's code: Hungarian matching on test accuracy, the same
permutation applied to the rows of Q̂_{Y|D}, and the mean absolute error per entry of
Q_{Y|D}; :func:`evaluate` also reports the error under the permutation matched directly on Q
(never worse).

Functional core: :func:`cluster_counts`, :func:`fit_from_domain_posterior`,
:func:`class_posterior`, :func:`adjust`, :func:`ddfa`, :func:`evaluate`; a small
scikit-learn-style object, :class:`DDFA`, sits on top.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from theorylab.core.checks import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_key,
    check_labels,
    check_probability_vector,
    check_same_leading_dim,
    describe,
    is_concrete,
)
from theorylab.latent_shift import discriminator as _disc
from theorylab.latent_shift import factorize as _fac
from theorylab.latent_shift import kmeans as _km

__all__ = [
    "DDFA",
    "BootstrapResult",
    "DDFAFit",
    "Evaluation",
    "adjust",
    "bootstrap_class_priors",
    "class_posterior",
    "class_prior_error",
    "cluster_counts",
    "ddfa",
    "domain_given_class",
    "evaluate",
    "feature_clustering_baseline",
    "fit_from_domain_posterior",
    "match_class_priors",
    "match_labels",
    "permute_classes",
]

FACTORIZE_METHODS = ("spa", "spa+hals", "nmf")
ADJUST_METHODS = ("simplex", "pinv")


# --------------------------------------------------------------------------- results


class DDFAFit(NamedTuple):
    """What DDFA learns from (p(d|x), d) pairs.

    Attributes:
      class_priors: Q̂_{Y|D}, ``(k, r)``, column d = p̂(y|d) (labels in an arbitrary order).
      domain_given_class: Q̂_{D|Y}, ``(r, k)``, column y = p̂(d|y) (Bayes with ``domain_sizes``).
      domain_sizes: p̂(d), ``(r,)`` -- the empirical domain frequencies of the fitting data.
      cluster_given_class: p̂(c|y), ``(m, k)``.
      cluster_centers: k-means centres in p(d|x) space, ``(m, r)``.
      counts: the ``(m, r)`` cluster-by-domain count matrix that was factorised.
      factorization: the :class:`~theorylab.latent_shift.factorize.Factorization` (anchors,
        NMF diagnostics).
      kmeans_inertia: k-means objective of the clustering that was kept.
      kmeans_converged: whether that k-means run met its stopping rule before ``max_iter``.
      condition_number: 2-norm condition number of Q̂_{D|Y} (large: p(y|x) is ill-determined).
    """

    class_priors: jax.Array
    domain_given_class: jax.Array
    domain_sizes: jax.Array
    cluster_given_class: jax.Array
    cluster_centers: jax.Array
    counts: jax.Array
    factorization: Any
    kmeans_inertia: jax.Array
    condition_number: float
    kmeans_converged: bool = True


class Evaluation(NamedTuple):
    """Paper metrics of one DDFA run (spec §1.4, "Evaluation and the permutation").

    Attributes:
      accuracy: test accuracy under the Hungarian relabelling that maximises it.
      class_prior_mae: mean absolute error per entry of Q_{Y|D} after permuting the rows of
        Q̂ with the *accuracy* permutation (the paper's reported metric).
      class_prior_mae_matched: the same error with the permutation matched directly on Q
        (Hungarian on the L1 cost between rows; never larger).
      permutation: ``perm[predicted label] = true label`` (accuracy matching).
      permutation_matched: the Q-matched permutation, same convention.
    """

    accuracy: float
    class_prior_mae: float
    class_prior_mae_matched: float
    permutation: np.ndarray
    permutation_matched: np.ndarray


# --------------------------------------------------------------------------- small pieces


def cluster_counts(cluster_labels, domains, *, num_clusters: int, num_domains: int):
    """The ``(m, r)`` count matrix N[c, d] = #{examples in cluster c and domain d}.

    One ``segment_sum`` over the flattened (c, d) index; jittable and vmappable (sizes static).
    Returns float counts in JAX's default float dtype.
    """
    m = check_int(num_clusters, "num_clusters", min_value=1)
    r = check_int(num_domains, "num_domains", min_value=1)
    c = check_labels(cluster_labels, "cluster_labels", num_classes=m)
    d = check_labels(domains, "domains", num_classes=r)
    check_same_leading_dim(cluster_labels=c, domains=d)
    return _cluster_counts(c, d, m, r)


@partial(jax.jit, static_argnums=(2, 3))
def _cluster_counts(c, d, m: int, r: int):
    flat = c.astype(jnp.int32) * r + d.astype(jnp.int32)
    ones = jnp.ones(flat.shape, jnp.result_type(float))
    return jax.ops.segment_sum(ones, flat, num_segments=m * r).reshape(m, r)


def domain_given_class(class_priors, domain_sizes=None):
    """Q_{D|Y} (r x k) from Q_{Y|D} (k x r) by Bayes: p(d|y) ∝ p(y|d) p(d).

    Args:
      class_priors: ``(k, r)`` column-stochastic Q_{Y|D}.
      domain_sizes: p(d), ``(r,)``; default equal sizes 1/r (the paper's construction).

    Returns:
      ``(r, k)`` column-stochastic Q_{D|Y}. A class with zero mass in every domain gets the
      uniform column (it never occurs, so any column is consistent).
    """
    Q = check_probability_vector(class_priors, "class_priors", axis=0, atol=1e-4)
    if Q.ndim != 2:
        raise ValueError(f"class_priors must be a (k, r) matrix; got {describe(Q)}")
    r = Q.shape[1]
    if domain_sizes is None:
        p_d = jnp.full((r,), 1.0 / r, Q.dtype)
    else:
        p_d = check_probability_vector(domain_sizes, "domain_sizes", atol=1e-4, allow_zero=False)
        if p_d.shape != (r,):
            raise ValueError(f"domain_sizes must have shape ({r},); got {describe(p_d)}")
        p_d = p_d.astype(Q.dtype)
    return _domain_given_class(Q, p_d)


@jax.jit
def _domain_given_class(Q, p_d):
    joint = Q.T * p_d[:, None]  # (r, k): p(y, d)
    mass = joint.sum(axis=0, keepdims=True)
    r = joint.shape[0]
    return jnp.where(mass > 0, joint / jnp.where(mass > 0, mass, 1.0), 1.0 / r)


# --------------------------------------------------------------------------- adjust step


def class_posterior(domain_posterior, domain_given_class, *, method: str = "simplex"):
    """p̂(y|x) from the discriminator output f(x) = p(·|x) = Q_{D|Y} p(y|x) (spec §1.4 iv).

    Args:
      domain_posterior: ``(n, r)`` rows p(d|x).
      domain_given_class: Q_{D|Y}, ``(r, k)``.
      method: ``"simplex"`` (default): argmin over the probability simplex of
        ‖Q_{D|Y} w − f(x)‖₂ (:func:`~theorylab.latent_shift.factorize.simplex_least_squares`),
        a calibrated distribution; ``"pinv"``: the paper's unconstrained least squares
        ``pinv(Q_{D|Y}) f(x)`` (entries can be negative; kept for fidelity).

    Returns:
      ``(n, k)``.
    """
    method = check_choice(method, "method", ADJUST_METHODS)
    P = check_array(domain_posterior, "domain_posterior", ndim=2, kind="real", finite=True)
    _disc.check_domain_posterior(P, P.shape[1])
    A = check_probability_vector(domain_given_class, "domain_given_class", axis=0, atol=1e-4)
    if A.ndim != 2:
        raise ValueError(f"domain_given_class must be an (r, k) matrix; got {describe(A)}")
    if P.shape[1] != A.shape[0]:
        raise ValueError(
            f"domain_posterior has {P.shape[1]} columns (domains) but domain_given_class has "
            f"{A.shape[0]} rows; both must index the same r domains"
        )
    dtype = jnp.result_type(P.dtype, A.dtype, float)
    P, A = P.astype(dtype), A.astype(dtype)
    if method == "pinv":
        return P @ jnp.linalg.pinv(A).T
    W, info = _fac.simplex_least_squares(A, P, return_info=True)
    if is_concrete(info.converged) and not bool(info.converged):
        warnings.warn(
            "the simplex-constrained solve for p(y|x) did not converge (final gradient "
            f"mapping {float(info.gradient_mapping):.3g}); Q_D|Y may be ill-conditioned",
            RuntimeWarning,
            stacklevel=2,
        )
    return W


def adjust(domain_posterior, domains, class_priors, *, domain_sizes=None, method="simplex"):
    """Domain-adjusted classifier p̂_d(y|x) (spec §1.4 iv; paper eq. for p_d(y|x)).

    p_d(y|x) = p(d|y) p(y|x) / p(d|x) because x ⟂ d | y; p(y|x) comes from
    :func:`class_posterior` and p(d|y) from Q_{Y|D} by Bayes with ``domain_sizes``.

    Args:
      domain_posterior: ``(n, r)`` rows p(d|x) (oracle or a trained discriminator).
      domains: ``(n,)`` integer domain of each example.
      class_priors: Q̂_{Y|D}, ``(k, r)``.
      domain_sizes: p(d), default equal (1/r); pass ``fit.domain_sizes`` to match
        :func:`predict_proba` when domains have unequal sizes.
      method: ``"simplex"`` (default) or ``"pinv"`` (the paper's code; rows can then have
        negative entries -- only their argmax is meaningful, and as in the official
        ``solve_p_y_x_d`` a negative normaliser can flip it).

    Returns:
      ``(n, k)`` p̂_d(y|x). With ``"simplex"`` every row is a distribution; a row whose
      domain has zero estimated probability under p̂(y|x) falls back to p̂(y|x).
    """
    Q = check_array(class_priors, "class_priors", ndim=2, kind="real")
    P = check_array(domain_posterior, "domain_posterior", ndim=2, kind="real", finite=True)
    r = Q.shape[1]
    if P.shape[1] != r:
        raise ValueError(
            f"domain_posterior has {P.shape[1]} columns but class_priors has {r} domains"
        )
    d = check_labels(domains, "domains", num_classes=r)
    check_same_leading_dim(domain_posterior=P, domains=d)
    D_given_Y = domain_given_class(Q, domain_sizes)
    p_y_x = class_posterior(P, D_given_Y, method=method)
    return _reweight(p_y_x, d, D_given_Y)


@jax.jit
def _reweight(p_y_x, d, D_given_Y):
    joint = p_y_x * D_given_Y[d]  # (n, k): p(y|x) p(d|y)
    total = joint.sum(axis=1, keepdims=True)
    ok = total != 0
    return jnp.where(ok, joint / jnp.where(ok, total, 1.0), p_y_x)


# --------------------------------------------------------------------------- fit


def _check_domain_data(domain_posterior, domains, name="domain_posterior", *, all_domains=True):
    P = check_array(domain_posterior, name, ndim=2, kind="real", finite=True, min_size=1)
    r = P.shape[1]
    _disc.check_domain_posterior(P, r)
    d = check_labels(domains, "domains", num_classes=r)
    check_same_leading_dim(**{name: P, "domains": d})
    if all_domains and is_concrete(d):
        present = np.bincount(np.asarray(d), minlength=r)
        empty = np.flatnonzero(present == 0)
        if empty.size:
            raise ValueError(
                f"domains with no samples: {empty.tolist()} (of r={r}); every domain needs "
                "examples, otherwise its column of Q_{Y|D} is undetermined -- drop or merge it"
            )
    return P, d


def _default_clusters(num_classes: int, method: str) -> int:
    """m = 3k with anchor methods (more chances of a pure anchor cluster; spec §1.6, §5 B),
    m = k for the paper-faithful NMF (the paper's SI/SPI setting)."""
    return num_classes if method == "nmf" else 3 * num_classes


def fit_from_domain_posterior(
    key,
    domain_posterior,
    domains,
    num_classes: int,
    *,
    num_clusters: int | None = None,
    method: str = "spa",
    kmeans_restarts: int = 5,
    kmeans_max_iter: int = 100,
    nmf_max_iter: int | None = None,
    nmf_tol: float | None = None,
    anchor_selection: str = "centers",
) -> DDFAFit:
    """Steps (ii)-(iii) of DDFA: cluster p(d|x), count per domain, factorise (paper §4).

    Args:
      key: PRNG key (k-means++ seeding, random NMF init).
      domain_posterior: ``(n, r)`` rows p(d|x) on the fitting data (the paper clusters
        validation + train).
      domains: ``(n,)`` domain ids in ``[0, r)``; every domain must occur.
      num_classes: k ≤ r (identifiability needs Q_{Y|D} of full row rank k).
      num_clusters: m ≥ k; default 3k for ``"spa"``/``"spa+hals"`` and k for ``"nmf"``.
      method: ``"spa"`` (default), ``"spa+hals"`` or ``"nmf"`` (the paper's random-init
        NMF, kept for fidelity; plateaus at high α, spec §5).
      kmeans_restarts, kmeans_max_iter: the paper's faiss settings (nredo=5, niter=100).
      anchor_selection: ``"centers"`` (default): SPA selects the anchor clusters on the
        k-means centres (the mean of p(d|x) over a cluster estimates p(d|c) without the
        multinomial noise of its domain counts), among clusters holding at least a tenth of
        the average cluster size; the vertices p̂(d|y) are then the count rows of the selected
        clusters. ``"counts"``: plain SPA on the row-normalised counts (the
        topic-model recipe). With m = 3k and nearly uniform p(d|x) (high α) plain SPA tends
        to pick tiny clusters whose count rows are extreme only by noise (measured on the
        oracle Gaussian LLS at α = 10: accuracy 0.79 instead of 0.93-0.99 on 2 of 8 seeds).
      nmf_max_iter, nmf_tol: passed to the NMF of ``"nmf"``/``"spa+hals"`` (defaults: the
        factorize module's, sklearn-1.0.2-like 200 / 1e-4).

    Returns:
      :class:`DDFAFit`. Warns (``UserWarning``, from the factorise step) when Q̂_{D|Y} is
      badly conditioned (condition number > 1e6): some classes are then nearly
      indistinguishable by domain.
    """
    key = check_key(key)
    method = check_choice(method, "method", FACTORIZE_METHODS)
    anchor_selection = check_choice(anchor_selection, "anchor_selection", ("centers", "counts"))
    k = check_int(num_classes, "num_classes", min_value=1)
    P, d = _check_domain_data(domain_posterior, domains)
    n, r = P.shape
    if k > r:
        raise ValueError(
            f"num_classes={k} exceeds the number of domains r={r}: with fewer domains than "
            "classes Q_{Y|D} cannot have full row rank k and the classes are not identifiable "
            "from domain shifts (paper's condition (b)); use at least k domains"
        )
    m = _default_clusters(k, method) if num_clusters is None else num_clusters
    m = check_int(m, "num_clusters", min_value=k)
    if m > n:
        raise ValueError(f"num_clusters={m} exceeds the number of examples n={n}")
    restarts = check_int(kmeans_restarts, "kmeans_restarts", min_value=1)
    iters = check_int(kmeans_max_iter, "kmeans_max_iter", min_value=1)
    key_km, key_nmf = jax.random.split(key)
    clustering = _km.kmeans(key_km, P, m, n_init=restarts, max_iter=iters)
    counts = _cluster_counts(clustering.labels, d, m, r)
    nmf_options = {}
    if nmf_max_iter is not None:
        nmf_options["max_iter"] = check_int(nmf_max_iter, "nmf_max_iter", min_value=1)
    if nmf_tol is not None:
        nmf_options["tol"] = check_float(nmf_tol, "nmf_tol", min_value=0.0)
    if anchor_selection == "centers":
        # a centre is a candidate anchor only if its cluster holds at least a tenth of the
        # average cluster size: a near-empty cluster's count row (the vertex) is mostly noise.
        # Zero rows are never picked by SPA (it maximises the residual norm).
        big = counts.sum(axis=1) >= 0.1 * n / m
        nmf_options["anchor_points"] = jnp.where(big[:, None], clustering.centers, 0.0)
    fac = _fac.factorize_counts(
        counts, k, method=method, key=key_nmf if method == "nmf" else None, **nmf_options
    )
    domain_sizes = jnp.bincount(d, length=r).astype(fac.class_priors.dtype) / n
    D_given_Y = _domain_given_class(fac.class_priors, domain_sizes)
    cond = float(fac.diagnostics.condition_number)
    return DDFAFit(
        class_priors=fac.class_priors,
        domain_given_class=D_given_Y,
        domain_sizes=domain_sizes,
        cluster_given_class=fac.cluster_given_class,
        cluster_centers=clustering.centers,
        counts=counts,
        factorization=fac,
        kmeans_inertia=clustering.inertia,
        kmeans_converged=bool(clustering.converged),
        condition_number=cond,
    )


def predict_proba(fit: DDFAFit, domain_posterior, domains, *, method: str = "simplex"):
    """Step (iv) with a fitted :class:`DDFAFit`: p̂_d(y|x) for ``(n, r)`` posteriors."""
    if not isinstance(fit, DDFAFit):
        raise TypeError(f"fit must be a DDFAFit; got {describe(fit)}")
    P, d = _check_domain_data(domain_posterior, domains, all_domains=False)
    if P.shape[1] != fit.class_priors.shape[1]:
        raise ValueError(
            f"domain_posterior has {P.shape[1]} domains; the fit has {fit.class_priors.shape[1]}"
        )
    return adjust(P, d, fit.class_priors, domain_sizes=fit.domain_sizes, method=method)


# --------------------------------------------------------------------------- end to end


class DDFAResult(NamedTuple):
    """:func:`ddfa` output: the fit, the discriminator used and the test predictions."""

    fit: DDFAFit
    discriminator: Any
    domain_posterior: Callable[[Any], jax.Array]


def ddfa(
    key,
    x_train,
    d_train,
    x_val,
    d_val,
    num_classes: int,
    *,
    num_domains: int | None = None,
    discriminator: Any = None,
    discriminator_options: dict | None = None,
    num_clusters: int | None = None,
    method: str = "spa",
    cluster_on: str = "train+val",
    kmeans_restarts: int = 5,
) -> DDFAResult:
    """The whole DDFA pipeline (paper Algorithm 1, spec §1.4): discriminate → cluster →
    factorise; use :func:`predict_proba` / ``result.domain_posterior`` for step (iv).

    Args:
      key: PRNG key.
      x_train, d_train: training features ``(n, ...)`` and domains (discriminator fit).
      x_val, d_val: validation split (early stopping on domain cross-entropy).
      num_classes: k.
      num_domains: r (default: ``max(domain) + 1`` over both splits).
      discriminator: ``None`` (train the default Flax MLP,
        :func:`~theorylab.latent_shift.discriminator.train_domain_discriminator` with
        ``discriminator_options``), a trained
        :class:`~theorylab.latent_shift.discriminator.DomainDiscriminator`, or any callable
        ``x -> (n, r)`` probabilities (checked to lie on the simplex).
      num_clusters, method, kmeans_restarts: see :func:`fit_from_domain_posterior`.
      cluster_on: ``"train+val"`` (the paper: ``estimate_prior_valid_train=True``) or
        ``"val"`` (held-out posteriors only, less optimistic when the discriminator overfits).
    """
    key = check_key(key)
    cluster_on = check_choice(cluster_on, "cluster_on", ("train+val", "val"))
    x_train = check_array(x_train, "x_train", kind="real", finite=True, min_size=1)
    x_val = check_array(x_val, "x_val", kind="real", finite=True, min_size=1)
    if num_domains is None:
        if not (is_concrete(d_train) and is_concrete(d_val)):
            raise ValueError("pass num_domains=... when the domains are traced")
        num_domains = int(max(np.max(np.asarray(d_train)), np.max(np.asarray(d_val)))) + 1
    r = check_int(num_domains, "num_domains", min_value=2)
    d_train = check_labels(d_train, "d_train", num_classes=r)
    d_val = check_labels(d_val, "d_val", num_classes=r)
    check_same_leading_dim(x_train=x_train, d_train=d_train)
    check_same_leading_dim(x_val=x_val, d_val=d_val)
    key_disc, key_fit = jax.random.split(key)
    if discriminator is not None and discriminator_options:
        raise ValueError(
            "discriminator_options configure the default MLP; they cannot be combined with a "
            "user-supplied discriminator"
        )
    if discriminator is None:
        if x_train.ndim != 2:
            raise ValueError(
                "the default MLP discriminator needs 2-D features (n, dim); got x_train of "
                f"shape {x_train.shape} -- flatten them or pass your own discriminator"
            )
        options = dict(discriminator_options or {})
        model = _disc.train_domain_discriminator(
            key_disc, x_train, d_train, x_val, d_val, r, **options
        )
        posterior_fn = partial(_disc.domain_posterior, model)
    elif isinstance(discriminator, _disc.DomainDiscriminator):
        model = discriminator
        posterior_fn = partial(_disc.domain_posterior, model)
    elif callable(discriminator):
        model = discriminator
        posterior_fn = discriminator
    else:
        raise TypeError(
            "discriminator must be None, a DomainDiscriminator or a callable x -> p(d|x); "
            f"got {describe(discriminator)}"
        )
    if cluster_on == "train+val":
        x_fit = jnp.concatenate([jnp.asarray(x_val), jnp.asarray(x_train)])
        d_fit = jnp.concatenate([jnp.asarray(d_val), jnp.asarray(d_train)])
    else:
        x_fit, d_fit = x_val, d_val
    P_fit = posterior_fn(x_fit)
    fit = fit_from_domain_posterior(
        key_fit,
        P_fit,
        d_fit,
        num_classes,
        num_clusters=num_clusters,
        method=method,
        kmeans_restarts=kmeans_restarts,
    )
    return DDFAResult(fit=fit, discriminator=model, domain_posterior=posterior_fn)


# --------------------------------------------------------------------------- baseline


def feature_clustering_baseline(
    key,
    features,
    domains,
    num_classes: int,
    *,
    num_domains: int | None = None,
    method: str = "nmf",
    kmeans_restarts: int = 5,
):
    """The paper's "Naive" baseline and plain k-means on x (spec §1.4, baselines).

    k-means with m = k clusters directly on the features (no domain discriminator); each
    cluster is taken as a class, and Q̂_{Y|D} is estimated by factorising the (k x r)
    cluster-by-domain counts with ``method`` (the paper: random-init NMF). Predictions:
    ``argmax_y p̂(c|y) p̂(y|d)`` (the paper's Naive rule) and the raw cluster id
    (plain k-means-on-x).

    Returns:
      dict with ``cluster_labels`` (n,), ``naive_labels`` (n,), ``class_priors`` (k, r).
    """
    key = check_key(key)
    k = check_int(num_classes, "num_classes", min_value=1)
    X = check_array(features, "features", ndim=2, kind="real", finite=True, min_size=1)
    if num_domains is None:
        num_domains = int(np.max(np.asarray(domains))) + 1
    r = check_int(num_domains, "num_domains", min_value=1)
    d = check_labels(domains, "domains", num_classes=r)
    check_same_leading_dim(features=X, domains=d)
    if X.dtype.kind != "f":
        X = X.astype(jnp.result_type(float))
    if k > r:
        raise ValueError(
            f"num_classes={k} exceeds the number of domains r={r}: Q_{{Y|D}} is not "
            "identifiable from fewer domains than classes"
        )
    key_km, key_nmf = jax.random.split(key)
    clustering = _km.kmeans(key_km, X, k, n_init=check_int(kmeans_restarts, "kmeans_restarts"))
    counts = _cluster_counts(clustering.labels, d, k, r)
    fac = _fac.factorize_counts(counts, k, method=method, key=key_nmf if method == "nmf" else None)
    score = fac.cluster_given_class[clustering.labels] * fac.class_priors.T[d]
    return {
        "cluster_labels": np.asarray(clustering.labels),
        "naive_labels": np.asarray(jnp.argmax(score, axis=1)),
        "class_priors": fac.class_priors,
    }


# --------------------------------------------------------------------------- bootstrap


class BootstrapResult(NamedTuple):
    """Bootstrap distribution of Q̂_{Y|D} (spec §4 "bootstrap or ensemble factorisation").

    Attributes:
      estimate: Q̂_{Y|D} ``(k, r)`` from the observed counts.
      replicates: ``(B, k, r)``, each replicate's rows permuted to match ``estimate`` (Hungarian
        on the L1 row cost), so entries are comparable across replicates.
      standard_error: ``(k, r)`` entrywise standard deviation over replicates.
      anchor_agreement: fraction of replicates whose anchor clusters are the estimate's
        (as a set); NaN for ``"nmf"``, which has no anchors.
    """

    estimate: jax.Array
    replicates: np.ndarray
    standard_error: np.ndarray
    anchor_agreement: float


def bootstrap_class_priors(
    key,
    counts,
    num_classes: int,
    *,
    num_bootstrap: int = 200,
    method: str = "spa",
    anchor_points=None,
) -> BootstrapResult:
    """Parametric bootstrap of the factorise step: uncertainty of Q̂_{Y|D} from finite counts.

    Each replicate redraws every domain's column of counts from Multinomial(N_d, p̂(c|d))
    (domain sizes fixed, as in the paper's construction) and factorises it; all B
    factorisations run in one ``vmap``-ed call. Replicates are aligned to the estimate's label
    order before the standard errors are taken. Captures the sampling noise of the counts only
    (not of the discriminator or the clustering).

    Args:
      key: PRNG key (the resampling; ``"nmf"`` replicates get their own init keys).
      counts: ``(m, r)`` non-negative counts (validated as in
        :func:`~theorylab.latent_shift.factorize.factorize_counts`).
      num_classes: k.
      num_bootstrap: B ≥ 2 replicates.
      method: ``"spa"``, ``"spa+hals"`` or ``"nmf"``.
      anchor_points: optional ``(m, p)`` anchor-selection points (e.g. k-means centres), held
        fixed across replicates.
    """
    key = check_key(key)
    method = check_choice(method, "method", FACTORIZE_METHODS)
    B = check_int(num_bootstrap, "num_bootstrap", min_value=2)
    key_est, key_boot, key_init = jax.random.split(key, 3)
    options = {} if anchor_points is None or method == "nmf" else {"anchor_points": anchor_points}
    est = _fac.factorize_counts(
        counts, num_classes, method=method, key=key_est if method == "nmf" else None, **options
    )
    C = jnp.asarray(counts, est.class_priors.dtype)
    totals = C.sum(axis=0)
    probs = (C / totals).T  # (r, m)
    draws = jax.random.multinomial(key_boot, totals, probs, shape=(B, *probs.shape))
    boot_counts = jnp.swapaxes(draws, 1, 2)  # (B, m, r)

    def one(c, k_init):
        fac = _fac.factorize_counts(
            c, num_classes, method=method, key=k_init if method == "nmf" else None, **options
        )
        return fac.class_priors, fac.anchors

    # one NMF initialisation for every replicate, so the spread is the counts' noise only
    reps, anchors = jax.vmap(one, in_axes=(0, None))(boot_counts, key_init)
    reps = np.asarray(reps, np.float64)
    aligned = np.stack([permute_classes(q, match_class_priors(est.class_priors, q)) for q in reps])
    if method == "nmf":
        agreement = float("nan")
    else:
        ref = set(np.asarray(est.anchors).tolist())
        agreement = float(np.mean([set(a.tolist()) == ref for a in np.asarray(anchors)]))
    return BootstrapResult(
        estimate=est.class_priors,
        replicates=aligned,
        standard_error=aligned.std(axis=0, ddof=1),
        anchor_agreement=agreement,
    )


# --------------------------------------------------------------------------- evaluation


def match_labels(labels_true, labels_pred, num_classes: int) -> np.ndarray:
    """Hungarian permutation maximising accuracy: ``perm[pred] = true`` (host, scipy).

    Labels must be integers in ``[0, num_classes)``; the (k x k) contingency table is
    maximised with ``scipy.optimize.linear_sum_assignment`` (the paper's
    ``ScipyOptimizeLinearSumPermutationSolver``).
    """
    k = check_int(num_classes, "num_classes", min_value=1)
    t = np.asarray(check_labels(labels_true, "labels_true", num_classes=k))
    p = np.asarray(check_labels(labels_pred, "labels_pred", num_classes=k))
    check_same_leading_dim(labels_true=t, labels_pred=p)
    table = np.zeros((k, k), np.int64)
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    perm = np.empty(k, np.int64)
    perm[rows] = cols
    return perm


def match_class_priors(class_priors_true, class_priors_est) -> np.ndarray:
    """Permutation of Q̂'s rows minimising Σ|Q − Q̂_perm| (Hungarian on the L1 row cost).

    Returns ``perm`` with ``perm[estimated label] = true label``.
    """
    Q = check_array(class_priors_true, "class_priors_true", ndim=2, kind="real", to_jax=False)
    Qh = check_array(class_priors_est, "class_priors_est", ndim=2, kind="real", to_jax=False)
    Q, Qh = np.asarray(Q, np.float64), np.asarray(Qh, np.float64)
    if Q.shape != Qh.shape:
        raise ValueError(
            f"class_priors_true {Q.shape} and class_priors_est {Qh.shape} must have one shape"
        )
    cost = np.abs(Qh[:, None, :] - Q[None, :, :]).sum(axis=2)  # [est, true]
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(Q.shape[0], np.int64)
    perm[rows] = cols
    return perm


def permute_classes(class_priors_est, perm):
    """Rows of Q̂ relabelled: ``out[perm[j]] = Q̂[j]`` (``perm[estimated] = true``)."""
    Qh = np.asarray(class_priors_est, np.float64)
    perm = np.asarray(perm)
    if perm.shape != (Qh.shape[0],) or sorted(perm.tolist()) != list(range(Qh.shape[0])):
        raise ValueError(f"perm must be a permutation of range({Qh.shape[0]}); got {perm}")
    out = np.empty_like(Qh)
    out[perm] = Qh
    return out


def class_prior_error(class_priors_true, class_priors_est, perm=None) -> float:
    """Mean absolute error per entry of Q_{Y|D} (the paper's "Avg Q_{Y|D} L1 error", which
    its notebook divides by k·r), after relabelling Q̂ with ``perm`` (default: matched on Q)."""
    Q = check_array(class_priors_true, "class_priors_true", ndim=2, kind="real", to_jax=False)
    Q = np.asarray(Q, dtype=np.float64)
    if np.shape(class_priors_est) != Q.shape:
        raise ValueError(
            f"class_priors_est must have the shape of class_priors_true {Q.shape}; got "
            f"{describe(class_priors_est)}"
        )
    if perm is None:
        perm = match_class_priors(Q, class_priors_est)
    return float(np.mean(np.abs(Q - permute_classes(np.asarray(class_priors_est), perm))))


def evaluate(labels_true, labels_pred, class_priors_true, class_priors_est) -> Evaluation:
    """The paper's metrics: Hungarian accuracy, Q MAE under that permutation, and the Q MAE
    under the permutation matched on Q itself (spec §1.4, recommended for theorylab)."""
    Q = check_array(class_priors_true, "class_priors_true", ndim=2, kind="real", to_jax=False)
    Q = np.asarray(Q, np.float64)
    k = Q.shape[0]
    perm = match_labels(labels_true, labels_pred, k)
    t = np.asarray(labels_true)
    accuracy = float(np.mean(perm[np.asarray(labels_pred)] == t))
    perm_q = match_class_priors(Q, class_priors_est)
    return Evaluation(
        accuracy=accuracy,
        class_prior_mae=class_prior_error(Q, class_priors_est, perm),
        class_prior_mae_matched=class_prior_error(Q, class_priors_est, perm_q),
        permutation=perm,
        permutation_matched=perm_q,
    )


# --------------------------------------------------------------------------- object API


@dataclass
class DDFA:
    """scikit-learn-style DDFA on top of the functional core.

    ``DDFA(num_classes=5).fit(X, domains)`` holds out ``validation_fraction`` of each domain
    for early stopping, trains the default MLP discriminator (or uses ``discriminator``),
    clusters p(d|x) on validation + train and factorises. ``predict_proba(X, domains)``
    returns p̂_d(y|x); ``class_priors_`` is Q̂_{Y|D} (k x r).

    Fields are hyperparameters (see :func:`ddfa`); learned state lives in trailing-underscore
    attributes: ``fit_`` (:class:`DDFAFit`), ``class_priors_``, ``discriminator_``.
    """

    num_classes: int
    num_clusters: int | None = None
    method: str = "spa"
    adjust: str = "simplex"
    discriminator: Any = None
    discriminator_options: dict = field(default_factory=dict)
    validation_fraction: float = 0.1
    random_state: int = 0

    def fit(self, X, domains, *, domain_posterior=None) -> DDFA:
        """Fit on features ``X`` and integer ``domains``; with ``domain_posterior`` (n, r)
        the discriminator is skipped and the given p(d|x) are clustered directly."""
        key = jax.random.key(check_int(self.random_state, "random_state", min_value=0))
        check_choice(self.adjust, "adjust", ADJUST_METHODS)
        if domain_posterior is not None:
            self.discriminator_ = None
            self._posterior_fn = None
            self.fit_ = fit_from_domain_posterior(
                key,
                domain_posterior,
                domains,
                self.num_classes,
                num_clusters=self.num_clusters,
                method=self.method,
            )
        else:
            X = check_array(X, "X", kind="real", finite=True, min_size=1)
            d = np.asarray(check_labels(domains, "domains"))
            check_same_leading_dim(X=X, domains=d)
            if d.dtype.kind not in "iu":
                raise TypeError(f"domains must be integers; got dtype {d.dtype}")
            frac = check_float(
                self.validation_fraction,
                "validation_fraction",
                min_value=0.0,
                max_value=1.0,
                min_inclusive=False,
                max_inclusive=False,
            )
            key_split, key = jax.random.split(key)
            val = _stratified_holdout(key_split, d, frac)
            X_host = np.asarray(X)
            result = ddfa(
                key,
                X_host[~val],
                d[~val],
                X_host[val],
                d[val],
                self.num_classes,
                discriminator=self.discriminator,
                discriminator_options=self.discriminator_options,
                num_clusters=self.num_clusters,
                method=self.method,
            )
            self.fit_ = result.fit
            self.discriminator_ = result.discriminator
            self._posterior_fn = result.domain_posterior
        self.class_priors_ = self.fit_.class_priors
        return self

    def _posterior(self, X, domain_posterior):
        if not hasattr(self, "fit_"):
            raise RuntimeError("call fit() before predict_proba()/predict()")
        if domain_posterior is not None:
            return domain_posterior
        if self._posterior_fn is None:
            raise ValueError(
                "this DDFA was fitted on precomputed domain posteriors: pass domain_posterior="
            )
        X = check_array(X, "X", kind="real", finite=True, min_size=1)
        return self._posterior_fn(X)

    def predict_proba(self, X, domains, *, domain_posterior=None):
        """p̂_d(y|x), ``(n, k)``; labels are DDFA's own (a permutation of the truth)."""
        P = self._posterior(X, domain_posterior)
        return predict_proba(self.fit_, P, domains, method=self.adjust)

    def predict(self, X, domains, *, domain_posterior=None):
        """argmax_y p̂_d(y|x)."""
        proba = self.predict_proba(X, domains, domain_posterior=domain_posterior)
        return np.asarray(jnp.argmax(proba, axis=1))


def _stratified_holdout(key, domains: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask holding out ``fraction`` of each domain (at least one example each)."""
    u = np.asarray(jax.random.uniform(key, domains.shape))
    mask = np.zeros(domains.shape, bool)
    for dom in np.unique(domains):
        idx = np.flatnonzero(domains == dom)
        if idx.size < 2:
            raise ValueError(
                f"domain {int(dom)} has {idx.size} example(s); need at least 2 to hold out a "
                "validation example"
            )
        take = max(1, round(fraction * idx.size))
        take = min(take, idx.size - 1)
        mask[idx[np.argsort(u[idx])[:take]]] = True
    return mask
