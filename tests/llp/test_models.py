"""Tests for theorylab.llp.models (MLP, bag losses, the jitted LLP trainer).

Loss functions are checked against closed forms and identities (DLLP with bags of size 1 is the
instance cross-entropy, proportion loss vanishes at matched proportions, EasyLLP soft labels
are unbiased for random bags, the aggregate term has no gradient at weight 0). The trainer is
checked on a linearly separable problem (supervised and DLLP learn it), for determinism, for
Keras-style early stopping with restoration of the best epoch, and for argument validation.

Compile budget: the trainer is compiled three times (supervised + AUC criterion, pseudo +
aggregate head + bag criterion, DLLP without validation); every other call reuses one of these
static configurations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from theorylab.core.metrics import roc_auc
from theorylab.llp.bags import make_layout
from theorylab.llp.models import (
    DEFAULT_WIDTHS,
    MLP,
    PAPER_WIDTHS,
    AggregateHead,
    TrainedModel,
    default_embed_layer,
    dllp_loss,
    easyllp_loss,
    easyllp_soft_labels,
    embed,
    instance_bce,
    llp_batch_loss,
    predict_logits,
    predict_proba,
    proportion_loss,
    train_llp_model,
)

# One xdist worker runs the whole module, so its module-scoped fixtures are built once.
pytestmark = pytest.mark.xdist_group("llp_models")

D = 5
K = 4
CONFIG = {"widths": (32, 16), "epochs": 30, "bags_per_batch": 8}


def _separable(rng, n):
    """Linearly separable data with margin: y = [x·w > 0], |x·w| >= 0.5."""
    w = np.linspace(1.0, -1.0, D) + 0.3
    w /= np.linalg.norm(w)
    x = rng.normal(size=(4 * n, D))
    keep = np.abs(x @ w) >= 0.5
    x = x[keep][:n]
    return (3.0 * x + 1.0).astype(np.float32), (x @ w > 0).astype(np.int32)


def _layout(y, k=K, **kwargs):
    ids = np.arange(len(y)) // k
    return make_layout(ids, np.bincount(ids, weights=y), **kwargs)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    (xt, yt), (xv, yv), (xs, ys) = (_separable(rng, m) for m in (256, 128, 256))
    return {"xt": xt, "yt": yt, "xv": xv, "yv": yv, "xs": xs, "ys": ys, "layout": _layout(yt)}


@pytest.fixture(scope="module")
def supervised(data):
    return train_llp_model(
        jax.random.key(0), data["xt"], data["layout"], loss="supervised",
        targets=data["yt"], validation=(data["xv"], data["yv"]), patience=3, **CONFIG,
    )


def _expected_best(val, min_delta, sign=1.0):
    best, best_epoch = -np.inf, -1
    for e, v in enumerate(val):
        if np.isfinite(v) and sign * v > best + min_delta:
            best, best_epoch = sign * v, e
    return best_epoch


# --------------------------------------------------------------------------- losses


def test_dllp_with_singleton_bags_is_instance_bce():
    rng = np.random.default_rng(1)
    logits = np.concatenate([rng.normal(size=20) * 3, [-30.0, 30.0, 0.0]]).astype(np.float32)
    alpha = rng.random(logits.shape[0]).astype(np.float32)

    @jax.jit
    def losses(z, a):
        mask = jnp.ones((z.shape[0], 1), bool)
        bce = instance_bce(z, a, jnp.ones(z.shape, bool))
        return bce, dllp_loss(z[:, None], mask, a), easyllp_loss(z[:, None], mask, a, 0.3)

    bce, dllp, easy = (float(v) for v in losses(logits, alpha))
    z = logits.astype(np.float64)
    manual = np.mean(alpha * np.logaddexp(0, -z) + (1 - alpha) * np.logaddexp(0, z))
    np.testing.assert_allclose(bce, manual, rtol=1e-6)
    np.testing.assert_allclose(dllp, bce, rtol=1e-6)
    # EasyLLP with K = 1 has ỹ = α: the same loss (any prior).
    np.testing.assert_allclose(easy, bce, rtol=1e-6)


def test_dllp_formula_padding_and_empty_bags():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(6, 5)).astype(np.float32) * 2
    mask = rng.random((6, 5)) < 0.7
    mask[:, 0] = True
    mask[5] = False  # an empty (padded) bag is ignored
    alpha = rng.random(6).astype(np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    pbar = (p * mask).sum(1)[:5] / mask.sum(1)[:5]
    expected = np.mean(-(alpha[:5] * np.log(pbar) + (1 - alpha[:5]) * np.log(1 - pbar)))
    # Values in padded slots do not matter; neither does extra padding width.
    noisy = np.where(mask, logits, 100.0).astype(np.float32)
    wide = np.pad(noisy, ((0, 0), (0, 3)), constant_values=-7.0)
    wide_mask = np.pad(mask, ((0, 0), (0, 3)))

    @jax.jit
    def run(z, zn, zw, m, mw, a):
        grad = jax.grad(dllp_loss)(zn, m, a)
        return dllp_loss(z, m, a), dllp_loss(zn, m, a), dllp_loss(zw, mw, a), grad

    got, got_noisy, got_wide, grad = run(logits, noisy, wide, mask, wide_mask, alpha)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    np.testing.assert_allclose(float(got_noisy), float(got), rtol=1e-6)
    np.testing.assert_allclose(float(got_wide), float(got), rtol=1e-6)
    # Gradient flows to real slots only and stays finite (the empty bag included).
    assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[~mask] == 0)


def test_proportion_loss_zero_at_matched_proportions():
    alpha = np.array([0.1, 0.5, 0.75, 0.9], np.float32)
    mask = np.ones((4, 3), bool)
    mask[0, 2] = False
    logits = np.repeat(np.log(alpha / (1 - alpha))[:, None], 3, axis=1)
    # Spreading the logits inside a bag but keeping the mean probability keeps it zero.
    spread = logits.copy()
    q = np.array([0.35, 0.65], np.float32)  # mean 0.5 in bag 1 (3 members: 0.35, 0.65, 0.5)
    spread[1, :2] = np.log(q / (1 - q))
    values = jax.jit(lambda *zs: [proportion_loss(z, mask, alpha) for z in zs])(
        logits, spread, logits + 1.0
    )
    assert float(values[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(values[1]) == pytest.approx(0.0, abs=1e-12)
    assert float(values[2]) > 1e-3


def test_easyllp_soft_labels_are_unbiased_for_random_bags():
    # Bags of K iid Bernoulli(p) labels: E[ỹ_i | y_i] = y_i (Busa-Fekete et al. 2023). With
    # 20000 bags of 8, the standard error of each conditional mean is <= 0.01; tolerance 0.04.
    rng = np.random.default_rng(3)
    p, k, bags = 0.3, 8, 20_000
    y = (rng.random((bags, k)) < p).astype(np.float64)
    alpha = y.mean(axis=1)
    soft = np.asarray(easyllp_soft_labels(alpha, np.full(bags, k), p), np.float64)
    per_instance = np.repeat(soft[:, None], k, axis=1)
    assert per_instance[y == 1].mean() == pytest.approx(1.0, abs=0.04)
    assert per_instance[y == 0].mean() == pytest.approx(0.0, abs=0.04)
    # The broken variant "use the bag proportion as the soft label" is rejected by this test.
    assert abs(np.repeat(alpha[:, None], k, axis=1)[y == 1].mean() - 1.0) > 0.5
    # Exact identity: with p̂ = Σc / ΣK the mean soft label over bags is p̂ (unequal sizes).
    sizes = rng.integers(1, 10, size=50)
    counts = rng.binomial(sizes, 0.4)
    prior = counts.sum() / sizes.sum()
    soft = np.asarray(easyllp_soft_labels(counts / sizes, sizes, prior), np.float64)
    assert soft.mean() == pytest.approx(prior, abs=1e-5)


def test_easyllp_loss_matches_formula():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
    alpha = np.array([0.75, 0.5, 1.0], np.float32)
    prior = 0.4
    sizes = mask.sum(1)
    soft = sizes * alpha - (sizes - 1) * prior
    z = logits.astype(np.float64)
    per = soft[:, None] * np.logaddexp(0, -z) + (1 - soft[:, None]) * np.logaddexp(0, z)
    expected = per[mask].mean()
    got = jax.jit(easyllp_loss)(logits, mask, alpha, prior)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_aggregate_term_changes_gradients_only_when_weighted():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, K, D)).astype(np.float32)
    mask = rng.random((3, K)) < 0.8
    mask[:, 0] = True
    targets = (rng.random((3, K)) < 0.5).astype(np.float32)
    alpha = np.array([0.25, 0.5, 1.0], np.float32)

    @jax.jit
    def run(x, mask, targets, alpha):
        rngs = nnx.Rngs(0)
        mlp = MLP(D, (16, 8), rngs=rngs)
        head = AggregateHead(16, rngs=rngs)

        def grads(weight, use_head=True):
            def f(m, h):
                return llp_batch_loss("pseudo", m, x, mask, alpha, targets=targets,
                                      agg_head=h if use_head else None, agg_weight=weight)
            g_mlp, g_head = nnx.grad(f, argnums=(0, 1))(mlp, head)
            return jax.tree.leaves(g_mlp), jax.tree.leaves(g_head)

        losses = (
            llp_batch_loss("supervised", mlp, x, mask, alpha, targets=targets),
            llp_batch_loss("pseudo", mlp, x, mask, alpha, targets=targets),
            instance_bce(mlp(x), targets, mask),
        )
        return grads(0.0, use_head=False), grads(0.0), grads(0.1), losses

    (plain_mlp, _), (zero_mlp, zero_head), (some_mlp, some_head), losses = run(
        x, mask, targets, alpha
    )
    for a, b in zip(zero_mlp, plain_mlp):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert all(np.all(np.asarray(g) == 0) for g in zero_head)
    assert any(np.any(np.asarray(g) != 0) for g in some_head)
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(some_mlp, plain_mlp))
    assert diff > 1e-6
    # The instance part alone is the supervised loss.
    assert float(losses[0]) == float(losses[1]) == float(losses[2])


# --------------------------------------------------------------------------- model


def test_mlp_shapes_and_embedding_layer():
    assert default_embed_layer(PAPER_WIDTHS) == 3 and PAPER_WIDTHS[3] == 128
    assert DEFAULT_WIDTHS[default_embed_layer(DEFAULT_WIDTHS)] == 128
    assert default_embed_layer((7,)) == 0
    x = np.ones((2, 3, D), np.float32)

    @jax.jit
    def run(x):
        mlp = MLP(D, (8, 6, 4), rngs=nnx.Rngs(0))
        logits, emb = mlp.logits_and_embedding(x, 0)
        linear = MLP(D, (), rngs=nnx.Rngs(0))(x)  # logistic regression
        return mlp(x), mlp.embed(x), mlp.embed(x, layer=-1), logits, emb, mlp.embed(x, 0), linear

    out, emb_default, emb_last, logits, emb, emb0, linear = run(x)
    assert out.shape == (2, 3) and linear.shape == (2, 3)
    assert emb_default.shape == (2, 3, 6) and emb_last.shape == (2, 3, 4)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(out), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(emb), np.asarray(emb0), rtol=1e-6)
    with pytest.raises(ValueError, match="no embedding"):
        jax.eval_shape(lambda x: MLP(D, (), rngs=nnx.Rngs(0)).embed(x), x)
    with pytest.raises(ValueError, match="layer"):
        jax.eval_shape(lambda x: MLP(D, (8, 6, 4), rngs=nnx.Rngs(0)).embed(x, layer=3), x)


# --------------------------------------------------------------------------- trainer


def test_supervised_learns_separable_problem(data, supervised):
    model = supervised
    assert isinstance(model, TrainedModel) and model.criterion == "auc"
    proba = predict_proba(model, data["xs"])
    assert proba.shape == (256,) and proba.dtype == jnp.float32
    assert float(roc_auc(data["ys"], proba)) > 0.97
    np.testing.assert_allclose(
        np.asarray(jax.nn.sigmoid(predict_logits(model, data["xs"]))), np.asarray(proba)
    )
    assert embed(model, data["xs"]).shape == (256, 32)
    assert embed(model, data["xs"], layer=1).shape == (256, 16)
    np.testing.assert_allclose(np.asarray(model.mean), data["xt"].mean(0), rtol=1e-4, atol=1e-4)
    hist = model.history
    train = np.asarray(hist.train_loss)
    run = int(hist.epochs_run)
    assert np.all(np.isfinite(train[:run])) and np.all(np.isnan(train[run:]))
    assert train[run - 1] < train[0]
    # Chunked prediction (> 8192 rows) agrees with the direct pass.
    big = np.tile(data["xs"], (33, 1))[:8200]
    np.testing.assert_allclose(
        np.asarray(predict_logits(model, big))[:256], np.asarray(predict_logits(model, data["xs"])),
        rtol=1e-5, atol=1e-5,
    )


def test_same_key_same_model_other_key_differs(data, supervised):
    again = train_llp_model(
        jax.random.key(0), data["xt"], data["layout"], loss="supervised",
        targets=data["yt"], validation=(data["xv"], data["yv"]), patience=3, **CONFIG,
    )
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(supervised)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = train_llp_model(
        jax.random.key(1), data["xt"], data["layout"], loss="supervised",
        targets=data["yt"], validation=(data["xv"], data["yv"]), patience=3, **CONFIG,
    )
    assert not np.array_equal(np.asarray(other.history.train_loss),
                              np.asarray(supervised.history.train_loss), equal_nan=True)
    # Padding bags (e.g. for sharding) changes nothing: empty bags are dropped.
    padded = _layout(data["yt"], pad_bags_to_multiple=7)
    assert padded.index.shape[0] > data["layout"].index.shape[0]
    same = train_llp_model(
        jax.random.key(0), data["xt"], padded, loss="supervised",
        targets=data["yt"], validation=(data["xv"], data["yv"]), patience=3, **CONFIG,
    )
    np.testing.assert_array_equal(np.asarray(same.history.val_metric),
                                  np.asarray(supervised.history.val_metric))


def test_early_stopping_restores_best_epoch(data, supervised):
    # Consistency of the normal run: the kept epoch is the Keras rule's best.
    val = np.asarray(supervised.history.val_metric)
    run = int(supervised.history.epochs_run)
    best = int(supervised.history.best_epoch)
    assert best == _expected_best(val[:run], 1e-4)
    assert run == CONFIG["epochs"] or run == best + 3 + 1
    # Validation labels flipped: the criterion gets worse as the model learns, so the best
    # epoch is early, training stops `patience` epochs later and the returned parameters are
    # the best epoch's, not the last ones.
    flipped = 1 - data["yv"]
    model = train_llp_model(
        jax.random.key(0), data["xt"], data["layout"], loss="supervised",
        targets=data["yt"], validation=(data["xv"], flipped), patience=3, **CONFIG,
    )
    hist = model.history
    val = np.asarray(hist.val_metric)
    run = int(hist.epochs_run)
    best = int(hist.best_epoch)
    assert run == best + 4 < CONFIG["epochs"]
    assert np.all(np.isfinite(val[:run])) and np.all(np.isnan(val[run:]))
    assert best == _expected_best(val[:run], 1e-4)
    auc = float(roc_auc(flipped, predict_proba(model, data["xv"])))
    assert auc == pytest.approx(float(hist.best_val), abs=1e-6)
    assert auc == pytest.approx(val[best], abs=1e-6)
    assert auc > val[run - 1] + 1e-3


def test_pseudo_with_aggregate_head_and_bag_validation(data):
    yv = data["yv"]
    layout_val = _layout(yv)
    soft = np.clip(data["yt"] * 0.9 + 0.05, 0, 1).astype(np.float32)
    model = train_llp_model(
        jax.random.key(2), data["xt"], data["layout"], loss="pseudo", targets=soft,
        agg_weight=0.1, validation=("bags", data["xv"], layout_val), patience=2, **CONFIG,
    )
    hist = model.history
    assert model.criterion == "bags"
    run = int(hist.epochs_run)
    val = np.asarray(hist.val_metric)[:run]
    assert np.all(np.isfinite(val)) and np.all(np.isfinite(np.asarray(hist.train_loss)[:run]))
    best = int(hist.best_epoch)
    assert best == _expected_best(val, 1e-4, sign=-1.0)
    # best_val is the DLLP loss of the returned model on the validation bags.
    logits = predict_logits(model, data["xv"])
    recomputed = jax.jit(lambda z, lay: dllp_loss(z[lay.index], lay.mask, lay.counts / lay.sizes))(
        logits, layout_val
    )
    assert float(recomputed) == pytest.approx(float(hist.best_val), rel=1e-5)
    assert float(roc_auc(data["ys"], predict_proba(model, data["xs"]))) > 0.95


def test_dllp_learns_without_validation(data):
    model = train_llp_model(jax.random.key(3), data["xt"], data["layout"], loss="dllp",
                            learning_rate=3e-3, **CONFIG)
    hist = model.history
    assert int(hist.epochs_run) == CONFIG["epochs"]
    assert int(hist.best_epoch) == CONFIG["epochs"] - 1
    assert np.all(np.isnan(np.asarray(hist.val_metric))) and np.isnan(float(hist.best_val))
    assert float(roc_auc(data["ys"], predict_proba(model, data["xs"]))) > 0.9


# --------------------------------------------------------------------------- validation


def _good(data):
    return {"key": jax.random.key(0), "X": data["xt"], "layout": data["layout"],
            "loss": "supervised", "targets": data["yt"]}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"loss": "vat"}, ValueError, r"loss must be one of"),
        ({"targets": None}, ValueError, r"loss='supervised' needs targets"),
        ({"targets": "short"}, ValueError, r"targets must have shape \(256,\)"),
        ({"targets": "big"}, ValueError, r"targets must lie in \[0, 1\]"),
        ({"loss": "dllp"}, ValueError, r"targets are only used by"),
        ({"agg_weight": -0.1}, ValueError, r"agg_weight must be in"),
        ({"agg_weight": 0.1}, ValueError, r"agg_weight > 0 is only used with loss='pseudo'"),
        ({"loss": "pseudo", "agg_weight": 0.1, "layout": None}, ValueError, r"needs a bag layout"),
        ({"loss": "pseudo", "agg_weight": 0.1, "widths": ()}, ValueError, r"hidden layer"),
        ({"loss": "easyllp", "targets": None, "layout": None}, ValueError, r"needs a bag layout"),
        ({"loss": "easyllp", "targets": None, "prior": 1.0}, ValueError, r"prior must be in"),
        ({"prior": 0.3}, ValueError, r"prior is only used by loss='easyllp'"),
        ({"layout": "wrong_n"}, ValueError, r"layout must describe the 256 rows"),
        ({"layout": "bad_counts"}, ValueError, r"layout.counts must lie in"),
        ({"layout": {"index": 1}}, TypeError, r"layout must be a BagLayout"),
        ({"X": "nan"}, ValueError, r"X must contain only finite"),
        ({"key": 0}, TypeError, r"key"),
        ({"widths": 32}, TypeError, r"widths"),
        ({"widths": (32, 0)}, ValueError, r"widths\[i\]"),
        ({"embed_layer": 2, "widths": (8, 4)}, ValueError, r"embed_layer"),
        ({"epochs": 0}, ValueError, r"epochs"),
        ({"bags_per_batch": 0}, ValueError, r"bags_per_batch"),
        ({"learning_rate": 0.0}, ValueError, r"learning_rate"),
        ({"weight_decay": -1.0}, ValueError, r"weight_decay"),
        ({"patience": 0}, ValueError, r"patience"),
        ({"min_delta": -1.0}, ValueError, r"min_delta"),
        ({"standardize": 1}, TypeError, r"standardize"),
        ({"validation": "xv"}, TypeError, r"validation must be None"),
        ({"validation": ("x",)}, ValueError, r"validation must be \(X_val, y_val\)"),
        ({"validation": "wrong_cols"}, ValueError, r"X_val must have 5 columns"),
        ({"validation": "one_class"}, ValueError, r"y_val must contain both classes"),
        ({"validation": "non_binary"}, ValueError, r"y_val must contain only 0/1"),
        ({"validation": "bad_tag"}, ValueError, r"validation\[0\] must be one of 'bags'"),
        ({"validation": "layout_rows"}, ValueError, r"layout_val must describe the 128 rows"),
    ],
)
def test_bad_training_input(data, change, error, match):
    args = _good(data)
    xv, yv = data["xv"], data["yv"]
    special = {
        ("targets", "short"): data["yt"][:-1],
        ("targets", "big"): data["yt"] * 2.0,
        ("layout", "wrong_n"): _layout(data["yt"][:-4]),
        ("layout", "bad_counts"): data["layout"]._replace(counts=data["layout"].counts + 5.0),
        ("X", "nan"): np.where(np.arange(D) == 0, np.nan, data["xt"]),
        ("validation", "wrong_cols"): (xv[:, :4], yv),
        ("validation", "one_class"): (xv, np.zeros_like(yv)),
        ("validation", "non_binary"): (xv, yv * 2),
        ("validation", "bad_tag"): ("instances", xv, yv),
        ("validation", "layout_rows"): (xv, _layout(data["yt"])),
    }
    for name, value in change.items():
        args[name] = special.get((name, value), value) if isinstance(value, str) else value
    with pytest.raises(error, match=match):
        train_llp_model(**args)


def test_prediction_input_checks(data, supervised):
    with pytest.raises(TypeError, match=r"TrainedModel"):
        predict_proba({"params": 1}, data["xs"])
    with pytest.raises(ValueError, match=r"X must have 5 columns"):
        predict_logits(supervised, data["xs"][:, :3])
    with pytest.raises(ValueError, match=r"layer"):
        embed(supervised, data["xs"], layer=5)


def test_loss_checks_in_batch_loss():
    x, mask, alpha = np.ones((1, 2, D), np.float32), np.ones((1, 2), bool), np.ones(1, np.float32)

    def call(loss, **kwargs):
        def f():
            mlp = MLP(D, (4,), rngs=nnx.Rngs(0))
            return llp_batch_loss(loss, mlp, x, mask, alpha, **kwargs)

        return jax.eval_shape(f)

    with pytest.raises(ValueError, match=r"needs targets"):
        call("pseudo")
    with pytest.raises(ValueError, match=r"needs prior"):
        call("easyllp")
    with pytest.raises(ValueError, match=r"loss must be one of"):
        call("vat")
    # optax's sigmoid BCE is the instance loss used throughout.
    z = np.array([-2.0, 0.5], np.float32)
    t = np.array([0.3, 1.0], np.float32)
    mine, ref = jax.jit(
        lambda z, t: (instance_bce(z, t, jnp.ones(2, bool)),
                      jnp.mean(optax.sigmoid_binary_cross_entropy(z, t)))
    )(z, t)
    np.testing.assert_allclose(float(mine), float(ref), rtol=1e-6)
