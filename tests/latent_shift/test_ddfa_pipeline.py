"""DDFA end to end on LLS data with a known Bayes classifier (spec §5 B, C, D).

Thresholds: spec §5 estimates, confirmed over seeds 0-7 before fixing them (numbers in each
test). Every statistical check uses fixed seeds; the stated slack is several times the
seed-to-seed spread measured, so the false-positive rate of a correct implementation is far
below 1% (the checks are deterministic given the seeds). Each check also has a broken variant
(the paper's random-init NMF at high α, or plain count-SPA with many clusters) that fails it.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
import pytest

from theorylab.latent_shift import ddfa as D
from theorylab.latent_shift import experiments as E
from theorylab.latent_shift import generators as G

ORACLE_SPA = ("oracle", "spa", None)  # m = 3k, anchors selected on the k-means centres


@pytest.mark.parametrize("alpha", [0.5, 3.0, 10.0])
def test_oracle_ddfa_reaches_bayes_gaussian(alpha):
    # Spec §5 B: oracle DDFA (SPA, m = 3k) >= Bayes - 0.03 and Q MAE <= 0.03.
    # Measured (seeds 0-7, α = 10): accuracy within 0.003 of Bayes, Q MAE 0.007-0.016.
    for seed in range(3):
        res = E.gaussian_experiment(jax.random.key(seed), alpha, settings=(ORACLE_SPA,))
        ours = res["oracle/spa/m=15"]
        assert ours["accuracy"] >= res["bayes_accuracy"] - 0.03, (seed, res)
        assert ours["q_mae"] <= 0.03, (seed, res)
        assert ours["q_mae_matched"] <= ours["q_mae"] + 1e-12


def test_paper_nmf_route_falls_short_at_high_alpha():
    # Documented limitation (spec §5 B: NMF 0.745 accuracy / 0.077 MAE at α = 10), and the
    # broken variant of the check above: the same threshold rejects it.
    accs, gaps = [], []
    for seed in range(3):
        res = E.gaussian_experiment(jax.random.key(seed), 10.0, settings=(("oracle", "nmf", None),))
        accs.append(res["oracle/nmf/m=5"]["accuracy"])
        gaps.append(res["bayes_accuracy"] - res["oracle/nmf/m=5"]["accuracy"])
    assert max(gaps) > 0.03, (accs, gaps)


def test_count_spa_with_many_clusters_is_the_broken_variant():
    # Plain SPA on count rows with m = 6k picks tiny clusters whose domain counts are extreme
    # by noise (measured: accuracy 0.41-0.78 at α = 10 on every seed 0-7); the default
    # centre-based anchor selection reaches Bayes on the same clustering.
    key = jax.random.key(2)
    model = G.gaussian_lls_model(jax.random.fold_in(key, 0), 5, 10, 5, 10.0, kappa_max=20.0)
    data = G.sample_lls(jax.random.fold_in(key, 1), model, 2000)
    test = G.sample_lls(jax.random.fold_in(key, 2), model, 400)
    post = G.oracle_domain_posterior(model, data.x)
    post_test = G.oracle_domain_posterior(model, test.x)
    bayes = float(G.bayes_accuracy(model, test))
    acc = {}
    for selection in ("centers", "counts"):
        fit = D.fit_from_domain_posterior(
            jax.random.key(0), post, data.d, 5, num_clusters=30, anchor_selection=selection
        )
        pred = np.asarray(D.predict_proba(fit, post_test, test.d)).argmax(1)
        acc[selection] = D.evaluate(test.y, pred, model.class_priors, fit.class_priors).accuracy
    assert acc["centers"] >= bayes - 0.03, acc
    assert acc["counts"] < bayes - 0.1, acc


@pytest.mark.parametrize("alpha", [0.5, 3.0, 10.0])
def test_two_blob_ddfa_beats_feature_clustering(alpha):
    # Spec §5 C: k-means on x ~0.5 (feature similarity is not class); oracle DDFA >= k-means
    # + 0.3 and >= Bayes - 0.03 (spec asks it at α <= 3; measured it holds at α = 10 too,
    # within 0.006 on seeds 0-2).
    for seed in range(2):
        res = E.gaussian_experiment(
            jax.random.key(seed), alpha, kind="two_blob", settings=(ORACLE_SPA,)
        )
        ours = res["oracle/spa/m=15"]["accuracy"]
        assert ours >= res["kmeans_x_accuracy"] + 0.3, (seed, res)
        assert ours >= res["bayes_accuracy"] - 0.03, (seed, res)


@pytest.mark.x64
def test_domain_relabelling_permutes_columns():
    # Exact invariance: k-means distances and SPA norms do not depend on the order of the
    # domain coordinates, so renaming domains permutes the columns of Q̂ and nothing else.
    key = jax.random.key(3)
    model = G.gaussian_lls_model(key, 3, 5, 2, 3.0, kappa_max=8.0)
    data = G.sample_lls(jax.random.fold_in(key, 1), model, 300)
    post = np.asarray(G.oracle_domain_posterior(model, data.x))
    perm = np.array([3, 0, 4, 1, 2])  # new id of old domain j is perm[j]
    post_p = np.empty_like(post)
    post_p[:, perm] = post
    fit = D.fit_from_domain_posterior(jax.random.key(1), post, data.d, 3)
    fit_p = D.fit_from_domain_posterior(jax.random.key(1), post_p, perm[np.asarray(data.d)], 3)
    Q, Qp = np.asarray(fit.class_priors), np.asarray(fit_p.class_priors)
    np.testing.assert_allclose(Qp[:, perm], Q, atol=1e-9)


def test_ddfa_object_with_callable_and_precomputed_posteriors():
    key = jax.random.key(4)
    model = G.gaussian_lls_model(key, 4, 6, 3, 1.0, kappa_max=8.0)
    data = G.sample_lls(jax.random.fold_in(key, 1), model, 800)
    test = G.sample_lls(jax.random.fold_in(key, 2), model, 200)
    oracle = partial(G.oracle_domain_posterior, model)
    model_obj = D.DDFA(num_classes=4, discriminator=oracle, random_state=0)
    model_obj.fit(np.asarray(data.x), np.asarray(data.d))
    proba = np.asarray(model_obj.predict_proba(np.asarray(test.x), np.asarray(test.d)))
    assert proba.shape == (test.x.shape[0], 4)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert proba.min() >= 0
    pred = model_obj.predict(np.asarray(test.x), np.asarray(test.d))
    ev = D.evaluate(test.y, pred, model.class_priors, model_obj.class_priors_)
    bayes = float(G.bayes_accuracy(model, test))
    assert ev.accuracy >= bayes - 0.05, (ev, bayes)
    assert model_obj.class_priors_.shape == (4, 6)
    # precomputed posteriors give the same model as the functional core with the same key
    pre = D.DDFA(num_classes=4, random_state=7).fit(None, data.d, domain_posterior=oracle(data.x))
    core = D.fit_from_domain_posterior(jax.random.key(7), oracle(data.x), data.d, 4)
    np.testing.assert_allclose(pre.class_priors_, core.class_priors, atol=1e-6)
    with pytest.raises(ValueError, match="domain_posterior"):
        pre.predict_proba(np.asarray(test.x), test.d)
    with pytest.raises(ValueError, match="simplex"):  # a callable returning non-probabilities
        D.DDFA(num_classes=4, discriminator=lambda x: 2 * oracle(x)).fit(
            np.asarray(data.x), np.asarray(data.d)
        )


@pytest.mark.slow
def test_learned_discriminator_end_to_end():
    # Spec §5 D, with the JAX MLP (2 x 128, Adam 3e-3, early stopping on validation CE):
    # mean over 3 seeds >= Bayes - 0.06 (Gaussian, α = 3) and >= Bayes - 0.10 (two-blob,
    # α = 10), Q MAE <= 0.04, two-blob >= k-means on x + 0.3.
    # Measured (seed 0): Gaussian α = 3 0.944 vs Bayes 0.954; two-blob α = 10 0.787 vs 0.825.
    options = {"epochs": 30, "batch_size": 256}
    for kind, alpha, slack in (("gaussian", 3.0, 0.06), ("two_blob", 10.0, 0.10)):
        runs = [
            E.gaussian_experiment(
                jax.random.key(seed),
                alpha,
                kind=kind,
                settings=(("mlp", "spa", None),),
                discriminator_options=options,
            )
            for seed in range(3)
        ]
        acc = np.mean([r["mlp/spa/m=15"]["accuracy"] for r in runs])
        bayes = np.mean([r["bayes_accuracy"] for r in runs])
        assert acc >= bayes - slack, (kind, runs)
        assert np.mean([r["mlp/spa/m=15"]["q_mae"] for r in runs]) <= 0.04, (kind, runs)
        if kind == "two_blob":
            assert acc >= np.mean([r["kmeans_x_accuracy"] for r in runs]) + 0.3, runs
