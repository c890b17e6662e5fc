"""The offline reproductions of Roberts et al. 2022 (spec §2, §5), shared by papers and tests.

The paper's image experiments (CIFAR-10/20, ImageNet-50, FieldGuide) need downloads and SCAN
weights; its *claims* are checked here on data whose ground truth is known:

- :func:`recovery_error` -- the factorise step alone on the discrete LLS / topic model with
  anchor words (spec §5 A): Q_{Y|D} error of ``"spa"``, ``"spa+hals"`` and the paper's
  random-init ``"nmf"`` versus the number of samples N.
- :func:`gaussian_experiment` -- DDFA end to end on continuous Gaussian LLS data or the
  two-blob failure mode (spec §5 B/C/D), with the oracle p(d|x) or a learned MLP
  discriminator, against the Bayes classifier p_d(y|x) and k-means on x.
- :func:`digits_experiment` -- semi-synthetic domains resampled from scikit-learn's digits
  (spec §5 E), DDFA against k-means on the pixels.

Every function returns plain floats (JSON-ready) and is deterministic given its key.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import check_choice, check_int, check_key
from theorylab.latent_shift import ddfa as _ddfa
from theorylab.latent_shift import discriminator as _disc
from theorylab.latent_shift import factorize as _fac
from theorylab.latent_shift import generators as _gen
from theorylab.latent_shift import kmeans as _km

__all__ = [
    "DIGITS_KAPPA_MAX",
    "DISCRETE_CONFIGS",
    "KAPPA_MAX",
    "digits_experiment",
    "gaussian_experiment",
    "recovery_error",
]

#: κ_max used with each α for k ≈ 5-10 (the paper's CIFAR-10 list is 4, 4, 8; the spec's
#: discrete-model table uses 8, 8, 20 for k = 5, r = 10).
KAPPA_MAX = {0.5: 8.0, 3.0: 8.0, 10.0: 20.0}

#: κ_max for square 10 x 10 priors (digits): the paper's CIFAR-10 values 4 / 4 / 8 are out of
#: reach at r = k = 10 (acceptance 2.5e-4 / 0 / 0 over 20,000 draws); these accept 0.4-4.5 %.
DIGITS_KAPPA_MAX = {0.5: 8.0, 3.0: 12.0, 10.0: 20.0}

#: Spec §5 A rows: (num_words m, k, r, α, κ_max).
DISCRETE_CONFIGS = (
    (20, 5, 10, 0.5, 8.0),
    (20, 5, 10, 3.0, 8.0),
    (20, 5, 10, 10.0, 20.0),
    (50, 10, 20, 3.0, 20.0),
    (100, 10, 10, 0.5, 8.0),
)


def recovery_error(
    key,
    num_words: int,
    num_classes: int,
    num_domains: int,
    alpha: float,
    num_samples: int,
    *,
    kappa_max: float | None = None,
    methods=("spa", "spa+hals", "nmf"),
) -> dict[str, float]:
    """Q_{Y|D} MAE per entry (rows matched on Q) of each factorisation method on one draw of
    the discrete LLS model (spec §5 A).

    The same counts feed every method; ``"nmf"`` uses a key split from ``key`` for its random
    initialisation (the paper's sklearn NMF: one random restart, 200 iterations).
    """
    key = check_key(key)
    key_data, key_nmf = jax.random.split(key)
    data = _gen.discrete_lls(
        key_data, num_words, num_classes, num_domains, alpha, num_samples, kappa_max=kappa_max
    )
    Q = np.asarray(data.class_priors, dtype=np.float64)
    out = {}
    for method in methods:
        fac = _fac.factorize_counts(
            data.counts, num_classes, method=method, key=key_nmf if method == "nmf" else None
        )
        out[method] = _ddfa.class_prior_error(Q, fac.class_priors)
    return out


def _kmeans_on_features(key, x, y, num_classes):
    """Hungarian accuracy of k-means (k clusters) run directly on the features (transductive
    on the evaluation split: the feature-clustering baseline the paper's FieldGuide story is
    about)."""
    clustering = _km.kmeans(key, jnp.asarray(x).reshape(x.shape[0], -1), num_classes)
    labels = np.asarray(clustering.labels)
    perm = _ddfa.match_labels(np.asarray(y), labels, num_classes)
    return float(np.mean(perm[labels] == np.asarray(y)))


def _evaluate_fit(fit, posterior_test, test, class_priors, num_classes, adjust):
    proba = _ddfa.predict_proba(fit, posterior_test, test.d, method=adjust)
    pred = np.asarray(jnp.argmax(proba, axis=1))
    ev = _ddfa.evaluate(np.asarray(test.y), pred, class_priors, fit.class_priors)
    return {
        "accuracy": ev.accuracy,
        "q_mae": ev.class_prior_mae,
        "q_mae_matched": ev.class_prior_mae_matched,
    }


def gaussian_experiment(
    key,
    alpha: float,
    *,
    kind: str = "gaussian",
    num_classes: int = 5,
    num_domains: int = 10,
    dim: int = 5,
    samples_per_domain: int = 2000,
    val_per_domain: int = 200,
    test_per_domain: int = 400,
    kappa_max: float | None = None,
    settings: tuple = (("oracle", "spa", None),),
    discriminator_options: dict | None = None,
    adjust: str = "simplex",
) -> dict[str, Any]:
    """DDFA on continuous LLS data with known Bayes classifier (spec §5 B, C, D).

    Args:
      key: PRNG key (model, samples, discriminator, clustering).
      alpha: Dirichlet total concentration of the class priors.
      kind: ``"gaussian"`` (one unit-variance blob per class at radius 4, spec §5 B) or
        ``"two_blob"`` (two interleaved blobs per class: k-means on x mixes classes, §5 C).
      samples_per_domain, val_per_domain, test_per_domain: split sizes (equal domains).
        The oracle clusters train + validation (as the paper), the learned discriminator is
        trained on train with early stopping on validation.
      kappa_max: condition-number cap of Q_{Y|D} (default :data:`KAPPA_MAX`).
      settings: tuples ``(posterior, method, num_clusters)`` with posterior ``"oracle"`` or
        ``"mlp"``, method ``"spa" | "spa+hals" | "nmf"``, ``num_clusters`` None for the
        default (3k with anchors, k with NMF).
      discriminator_options: keyword options of the MLP (hidden, epochs, batch_size, ...).
      adjust: ``"simplex"`` or ``"pinv"``.

    Returns:
      ``{"bayes_accuracy", "kmeans_x_accuracy", "<posterior>/<method>/m=<m>": {accuracy,
      q_mae, q_mae_matched}}``.
    """
    key = check_key(key)
    kind = check_choice(kind, "kind", ("gaussian", "two_blob"))
    k, r = check_int(num_classes, "num_classes"), check_int(num_domains, "num_domains")
    kappa = KAPPA_MAX.get(float(alpha)) if kappa_max is None else kappa_max
    k_model, k_tr, k_val, k_te, k_km, k_run = jax.random.split(key, 6)
    make = _gen.gaussian_lls_model if kind == "gaussian" else _gen.two_blob_lls_model
    model = make(k_model, k, r, dim, alpha, kappa_max=kappa)
    train = _gen.sample_lls(k_tr, model, samples_per_domain)
    val = _gen.sample_lls(k_val, model, val_per_domain)
    test = _gen.sample_lls(k_te, model, test_per_domain)
    Q = np.asarray(model.class_priors, dtype=np.float64)
    out: dict[str, Any] = {
        "bayes_accuracy": float(_gen.bayes_accuracy(model, test)),
        "kmeans_x_accuracy": _kmeans_on_features(k_km, test.x, test.y, k),
    }
    fit_x = jnp.concatenate([val.x, train.x])
    fit_d = jnp.concatenate([val.d, train.d])
    learned = None
    for i, (posterior, method, m) in enumerate(settings):
        posterior = check_choice(posterior, "posterior", ("oracle", "mlp"))
        k_i = jax.random.fold_in(k_run, i)
        if posterior == "oracle":
            posterior_fn = partial(_gen.oracle_domain_posterior, model)
        else:
            if learned is None:  # one discriminator per data set, shared by the settings
                learned = _disc.train_domain_discriminator(
                    jax.random.fold_in(k_run, 10_000),
                    train.x,
                    train.d,
                    val.x,
                    val.d,
                    r,
                    **(discriminator_options or {}),
                )
            posterior_fn = partial(_disc.domain_posterior, learned)
        fit = _ddfa.fit_from_domain_posterior(
            k_i, posterior_fn(fit_x), fit_d, k, num_clusters=m, method=method
        )
        post_test = posterior_fn(test.x)
        m_used = fit.cluster_centers.shape[0]
        out[f"{posterior}/{method}/m={m_used}"] = _evaluate_fit(fit, post_test, test, Q, k, adjust)
    return out


def digits_experiment(
    key,
    alpha: float,
    *,
    num_domains: int = 10,
    kappa_max: float | None = None,
    methods: tuple = (("spa", 30), ("nmf", 10)),
    samples_per_domain: tuple[int, int, int] | None = None,
    discriminator_options: dict | None = None,
) -> dict[str, Any]:
    """Semi-synthetic DDFA on scikit-learn's digits (spec §5 E; paper §1.5 construction).

    Domains are resampled from the labelled pool with Q_{Y|D} ~ Dirichlet(α/k) (κ ≤
    ``kappa_max``); an MLP discriminator on the 64 pixels is trained on the train split with
    early stopping on validation; clustering uses validation + train (the paper's setting).

    Returns:
      ``{"kmeans_x_accuracy", "naive/..." (the paper's Naive baseline: k-means on pixels then
      NMF), "<method>/m=<m>": {accuracy, q_mae, q_mae_matched}, "sizes": ...}``.
    """
    key = check_key(key)
    if kappa_max is None:
        kappa_max = DIGITS_KAPPA_MAX.get(float(alpha), 20.0)
    k_data, k_disc, k_km, k_naive, k_run = jax.random.split(key, 5)
    data = _gen.digits_lls(
        k_data,
        alpha,
        num_domains=num_domains,
        kappa_max=kappa_max,
        samples_per_domain=samples_per_domain,
        replace=samples_per_domain is not None,
    )
    k = 10
    Q = np.asarray(data.class_priors, dtype=np.float64)
    test = data.test
    out: dict[str, Any] = {
        "sizes": {s: int(getattr(data, s).x.shape[0]) for s in ("train", "val", "test")},
        "kmeans_x_accuracy": _kmeans_on_features(k_km, test.x, test.y, k),
    }
    naive = _ddfa.feature_clustering_baseline(
        k_naive, test.x, test.d, k, num_domains=num_domains, method="nmf"
    )
    ev = _ddfa.evaluate(np.asarray(test.y), naive["naive_labels"], Q, naive["class_priors"])
    out["naive/nmf/m=10"] = {
        "accuracy": ev.accuracy,
        "q_mae": ev.class_prior_mae,
        "q_mae_matched": ev.class_prior_mae_matched,
    }
    learned = _disc.train_domain_discriminator(
        k_disc,
        data.train.x,
        data.train.d,
        data.val.x,
        data.val.d,
        num_domains,
        **(discriminator_options or {}),
    )
    fit_x = jnp.concatenate([data.val.x, data.train.x])
    fit_d = jnp.concatenate([data.val.d, data.train.d])
    post_fit = _disc.domain_posterior(learned, fit_x)
    post_test = _disc.domain_posterior(learned, test.x)
    for i, (method, m) in enumerate(methods):
        fit = _ddfa.fit_from_domain_posterior(
            jax.random.fold_in(k_run, i), post_fit, fit_d, k, num_clusters=m, method=method
        )
        out[f"{method}/m={m}"] = _evaluate_fit(fit, post_test, test, Q, k, "simplex")
    return out
