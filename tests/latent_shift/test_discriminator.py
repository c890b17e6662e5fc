"""Tests for theorylab.latent_shift.discriminator (Flax MLP domain discriminator p(d|x)).

Reference: a tiny Gaussian latent-label-shift model built here with numpy, whose posterior
p(d|x) has a closed form: 3 latent classes y with unit-variance 2-D Gaussians p(x|y) centred
on a circle of radius 2, 3 equally sized domains with class priors Q[y, d] = p(y|d), so

    p(d|x) ∝ Σ_y Q[y, d] N(x; μ_y, I)      (p(d) = 1/3).

All training calls share one static configuration (same shapes, widths, epochs, batch size)
so the jitted training loop compiles once; the learning rate, patience and standardisation are
traced arguments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from theorylab.latent_shift.discriminator import (
    DomainDiscriminator,
    check_domain_posterior,
    domain_log_posterior,
    domain_posterior,
    train_domain_discriminator,
)

_ANGLES = np.deg2rad([90.0, 210.0, 330.0])
MU = 2.0 * np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)  # (k, 2)
Q = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])  # Q[y, d] = p(y | d)
R = 3
# One static configuration for every training call (one compilation per test session).
CONFIG = {"hidden": (32, 32), "epochs": 20, "batch_size": 64}
N_TRAIN, N_VAL = 600, 300  # per domain; test sets have the validation size (shared compile)


def _sample(rng, per_domain):
    d = np.repeat(np.arange(R), per_domain)
    cdf = np.cumsum(Q[:, d].T, axis=1)
    y = (rng.random(len(d))[:, None] > cdf).sum(axis=1)
    x = MU[y] + rng.normal(size=(len(d), 2))
    return x.astype(np.float32), d.astype(np.int32)


def _true_posterior(x):
    log_phi = -0.5 * np.sum((np.asarray(x, np.float64)[:, None, :] - MU[None]) ** 2, axis=-1)
    log_pxd = logsumexp(log_phi[:, :, None] + np.log(Q)[None], axis=1)  # (n, d)
    return np.exp(log_pxd - logsumexp(log_pxd, axis=1, keepdims=True))


def _data(seed):
    rng = np.random.default_rng(seed)
    return _sample(rng, N_TRAIN), _sample(rng, N_VAL), _sample(rng, N_VAL)


def _ce(p, d):
    return float(-np.mean(np.log(np.asarray(p, np.float64)[np.arange(len(d)), d])))


def _tv(p, q):
    return float(0.5 * np.abs(np.asarray(p, np.float64) - q).sum(axis=1).mean())


def test_learned_posterior_matches_closed_form():
    # Calibration (10 seeds, lr 1e-2, this configuration): mean total variation to the true
    # p(d|x) on fresh data 0.049 (max 0.061); validation CE above the Bayes CE by 0.008 on
    # average (max 0.020). Thresholds 0.09 and 0.04 (~1.5-2x the worst seen). With shuffled
    # training domains (the broken variant) the TV was >= 0.36 in every seed and the CE is
    # near log 3, so both checks reject it.
    for seed in range(3):
        (xt, dt), (xv, dv), (xs, _) = _data(seed)
        disc = train_domain_discriminator(
            jax.random.key(seed), xt, dt, xv, dv, R, learning_rate=1e-2, **CONFIG
        )
        assert isinstance(disc, DomainDiscriminator)
        truth = _true_posterior(xs)
        bayes_ce = _ce(_true_posterior(xv), dv)
        assert _tv(domain_posterior(disc, xs), truth) < 0.09
        assert float(disc.best_val_loss) - bayes_ce < 0.04
        assert float(disc.best_val_loss) > bayes_ce - 0.05  # no impossible better-than-Bayes

        shuffled = np.random.default_rng(100 + seed).permutation(dt)
        broken = train_domain_discriminator(
            jax.random.key(seed), xt, shuffled, xv, dv, R, learning_rate=1e-2, **CONFIG
        )
        assert _tv(domain_posterior(broken, xs), truth) > 0.2
        assert float(broken.best_val_loss) > np.log(R) - 0.1
        assert float(broken.best_val_loss) - bayes_ce > 0.2


def test_early_stopping_keeps_best_validation_epoch():
    # A large learning rate makes the validation CE non-monotone, so the best epoch (9 for this
    # seed) is not the last one and "return the last parameters" would be caught.
    (xt, dt), (xv, dv), _ = _data(0)
    disc = train_domain_discriminator(
        jax.random.key(0), xt, dt, xv, dv, R, learning_rate=5e-2, **CONFIG
    )
    val = np.asarray(disc.history.val_loss)
    train = np.asarray(disc.history.train_loss)
    assert val.shape == train.shape == (CONFIG["epochs"],)
    assert int(disc.epochs_run) == CONFIG["epochs"] and np.all(np.isfinite(val))
    best = int(disc.best_epoch)
    assert best == int(np.argmin(val))
    assert float(disc.best_val_loss) == val[best]
    assert best < CONFIG["epochs"] - 1
    # The returned model is the best epoch's: its validation CE reproduces best_val_loss
    # (float32 log-softmax vs log(softmax) rounding: 1e-5), not the last epoch's value.
    ce = _ce(domain_posterior(disc, xv), dv)
    assert ce == pytest.approx(float(disc.best_val_loss), rel=1e-5)
    assert abs(ce - val[-1]) > 1e-3
    log_p = np.asarray(domain_log_posterior(disc, xv))
    assert float(-np.mean(log_p[np.arange(len(dv)), dv])) == pytest.approx(ce, rel=1e-5)
    # Training CE drops from the first epoch (the optimiser does something).
    assert train[-1] < train[0]

    # patience: same key -> the same trajectory until it stops `patience` epochs after the
    # last improvement; later epochs are NaN; the kept epoch is the best of those run.
    stopped = train_domain_discriminator(
        jax.random.key(0), xt, dt, xv, dv, R, learning_rate=5e-2, patience=3, **CONFIG
    )
    run = int(stopped.epochs_run)
    assert run == int(stopped.best_epoch) + 4 and run < CONFIG["epochs"]
    np.testing.assert_array_equal(np.asarray(stopped.history.val_loss)[:run], val[:run])
    assert np.all(np.isnan(np.asarray(stopped.history.val_loss)[run:]))
    assert int(stopped.best_epoch) == int(np.argmin(val[:run]))


def test_same_key_same_result_and_simplex_outputs():
    (xt, dt), (xv, dv), (xs, _) = _data(1)
    a = train_domain_discriminator(jax.random.key(7), xt, dt, xv, dv, R, **CONFIG)
    b = train_domain_discriminator(jax.random.key(7), xt, dt, xv, dv, R, **CONFIG)
    c = train_domain_discriminator(jax.random.key(8), xt, dt, xv, dv, R, **CONFIG)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert not np.array_equal(np.asarray(a.history.val_loss), np.asarray(c.history.val_loss))
    p = np.asarray(domain_posterior(a, xs))
    assert p.shape == (len(xs), R) and p.dtype == np.float32
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert check_domain_posterior(p, R).shape == p.shape
    # domain_posterior is jittable (the discriminator is a pytree with a static graphdef).
    np.testing.assert_allclose(np.asarray(jax.jit(domain_posterior)(a, xs)), p, atol=1e-6)


def test_standardisation_makes_training_affine_invariant():
    # Standardised features are (up to float32 rounding) identical for x and 10 x + 5, so the
    # learned posteriors agree closely.
    (xt, dt), (xv, dv), (xs, _) = _data(2)
    a = train_domain_discriminator(jax.random.key(3), xt, dt, xv, dv, R, **CONFIG)
    b = train_domain_discriminator(jax.random.key(3), 10 * xt + 5, dt, 10 * xv + 5, dv, R, **CONFIG)
    pa = np.asarray(domain_posterior(a, xs))
    pb = np.asarray(domain_posterior(b, 10 * xs + 5))
    assert np.max(np.abs(pa - pb)) < 1e-3
    assert int(a.best_epoch) == int(b.best_epoch)


def _good_args():
    (xt, dt), (xv, dv), _ = _data(0)
    return [jax.random.key(0), xt, dt, xv, dv, R]


@pytest.mark.parametrize(
    ("change", "kwargs", "error", "match"),
    [
        ({2: "dt_out_of_range"}, {}, ValueError, r"d_train must contain integers in \[0, 3\)"),
        ({4: "dv_negative"}, {}, ValueError, r"d_val must contain integers in \[0, 3\)"),
        ({2: "dt_missing_domain"}, {}, ValueError, "domains with no samples: \\[2\\]"),
        ({1: "xt_nan"}, {}, ValueError, "x_train must contain only finite"),
        ({3: "xv_wrong_dim"}, {}, ValueError, "x_val must have 2 columns"),
        ({2: "dt_short"}, {}, ValueError, "d_train must have one domain per row"),
        ({2: "dt_float"}, {}, TypeError, "d_train must have a int dtype"),
        ({5: 1}, {}, ValueError, "num_domains"),
        ({}, {"hidden": 32}, TypeError, "hidden"),
        ({}, {"hidden": (32, 0)}, ValueError, "hidden"),
        ({}, {"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({}, {"epochs": 0}, ValueError, "epochs"),
        ({}, {"batch_size": 0}, ValueError, "batch_size"),
        ({}, {"lr_decay": 1.5}, ValueError, "lr_decay"),
        ({}, {"weight_decay": -1.0}, ValueError, "weight_decay"),
        ({}, {"patience": 0}, ValueError, "patience"),
        ({}, {"standardize": 1}, TypeError, "standardize"),
        ({0: 0}, {}, TypeError, "key"),
    ],
)
def test_bad_training_input(change, kwargs, error, match):
    args = _good_args()
    for pos, what in change.items():
        if what == "dt_out_of_range":
            args[2] = args[2].copy()
            args[2][0] = 3
        elif what == "dv_negative":
            args[4] = args[4].copy()
            args[4][0] = -1
        elif what == "dt_missing_domain":
            args[2] = np.minimum(args[2], 1)
        elif what == "xt_nan":
            args[1] = args[1].copy()
            args[1][5, 0] = np.nan
        elif what == "xv_wrong_dim":
            args[3] = np.concatenate([args[3], args[3][:, :1]], axis=1)
        elif what == "dt_short":
            args[2] = args[2][:-1]
        elif what == "dt_float":
            args[2] = args[2].astype(np.float32)
        else:
            args[pos] = what
    with pytest.raises(error, match=match):
        train_domain_discriminator(*args, **kwargs)


def test_posterior_input_checks():
    (xt, dt), (xv, dv), _ = _data(0)
    disc = train_domain_discriminator(jax.random.key(0), xt, dt, xv, dv, R, **CONFIG)
    with pytest.raises(ValueError, match="x must have 2 columns"):
        domain_posterior(disc, np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="x must contain only finite"):
        domain_posterior(disc, np.full((4, 2), np.nan, np.float32))
    with pytest.raises(TypeError, match="DomainDiscriminator"):
        domain_posterior({"params": 1}, xv)


def test_check_domain_posterior():
    p = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(check_domain_posterior(p, 3)), p)
    ok = p + np.float32(3e-5) * np.array([[1, 0, 0], [0, 0, 0]], np.float32)
    check_domain_posterior(ok, 3)  # within the 1e-4 tolerance
    with pytest.raises(ValueError, match=r"p must have shape \(n, 4\)"):
        check_domain_posterior(p, 4)
    with pytest.raises(ValueError, match="p must be 2-dimensional"):
        check_domain_posterior(p[0], 3)
    with pytest.raises(ValueError, match=r"not on the simplex.*negative"):
        check_domain_posterior(np.array([[1.1, -0.1, 0.0]]), 3)
    with pytest.raises(ValueError, match=r"not on the simplex.*sum to 1"):
        check_domain_posterior(np.array([[0.5, 0.3, 0.1]]), 3)
    with pytest.raises(ValueError, match="finite"):
        check_domain_posterior(np.array([[np.nan, 0.5, 0.5]]), 3)
    with pytest.raises(ValueError, match="num_domains"):
        check_domain_posterior(p[:, :1], 1)
    jnp_p = jnp.asarray(p)
    assert check_domain_posterior(jnp_p, 3).dtype == jnp.float32
