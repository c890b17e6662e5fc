"""End-to-end tests of theorylab.llp.pipeline: :func:`llp_bp` and the :class:`LLPBP` estimator.

One small problem shared by every test (Gaussian classes, n = 1024 training instances, 21
random bags of 48 with 16 instances in no bag, MLP widths (32, 16), 10 epochs of 4 bags), so
BP, the kNN search and the trainer compile once for the module; the runs that every test
needs are module-scoped fixtures. Argument validation is checked at the ``llp_bp`` boundary
(some of it lives in ``theorylab.llp.bags`` / ``bp`` and is unit-tested there).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from theorylab.core.metrics import roc_auc
from theorylab.llp.bags import BagLayout, bag_counts, make_layout, random_bags
from theorylab.llp.bp import BPResult, loopy_bp
from theorylab.llp.generators import gaussian_classes
from theorylab.llp.graph import KnnGraph, graph_from_edges, knn_graph
from theorylab.llp.models import TrainedModel, predict_proba
from theorylab.llp.pipeline import LLPBP, LLPBPResult, RoundInfo, llp_bp, pseudo_labels

# One xdist worker runs the whole module, so its module-scoped fixtures are built once.
pytestmark = pytest.mark.xdist_group("llp_pipeline")

N = 1024
K = 48  # 21 bags (not a multiple of the 4 test devices), 16 instances in no bag
NUM_BAGS = N // K
WIDTHS = (32, 16)
TRAIN = dict(epochs=10, bags_per_batch=4)
OPTIONS = dict(widths=WIDTHS, train_options=TRAIN)
KEY = 2  # llp_bp's key (and LLPBP's random_state)


@pytest.fixture(scope="module")
def problem():
    """Data, bag ids, true counts, the bag layout and sizes of the shared problem."""
    key = jax.random.key(0)
    data = gaussian_classes(key, N, N, prior=0.4, shift=0.4)
    ids = random_bags(jax.random.fold_in(key, 1), N, K)
    counts = np.asarray(bag_counts(data.y_train, ids))
    layout = make_layout(ids, counts)
    return data, ids, counts, layout


@pytest.fixture(scope="module")
def base(problem):
    """The default run (rounds = 1, threshold 0.5) with y_true for the diagnostics."""
    data, ids, counts, _ = problem
    return llp_bp(jax.random.key(KEY), data.X_train, ids, counts, y_true=data.y_train, **OPTIONS)


@pytest.fixture(scope="module")
def two_rounds(problem):
    data, ids, counts, _ = problem
    return llp_bp(jax.random.key(KEY), data.X_train, ids, counts, rounds=2,
                  y_true=data.y_train, **OPTIONS)


def _np(x):
    return np.asarray(x)


# --------------------------------------------------------------------------- result


def test_result_fields(problem, base):
    data, _, counts, layout = problem
    assert isinstance(base, LLPBPResult)
    assert isinstance(base.model, TrainedModel) and base.model.widths == WIDTHS
    assert isinstance(base.layout, BagLayout)
    for got, want in zip(base.layout, layout):
        np.testing.assert_array_equal(got, want)
    marginals = _np(base.marginals)
    assert marginals.shape == (N,) and np.all((marginals >= 0) & (marginals <= 1))
    labels = _np(base.pseudo_labels)
    assert labels.shape == (N,) and labels.dtype == np.float32
    np.testing.assert_array_equal(labels, (marginals > 0.5).astype(np.float32))
    assert len(base.rounds) == 1
    info = base.rounds[0]
    assert isinstance(info, RoundInfo) and isinstance(info.bp, BPResult)
    np.testing.assert_array_equal(info.bp.marginals, base.marginals)
    assert info.bp.bag_residuals.shape == (NUM_BAGS,)
    np.testing.assert_allclose(
        info.bp.bag_residuals,
        np.sum(np.where(_np(layout.mask), marginals[_np(layout.index)], 0), axis=1) - counts,
        atol=1e-4,
    )
    graph = knn_graph(data.X_train, 5)
    assert info.num_edges == graph.src.shape[0] // 2
    assert info.seconds_graph >= 0 and info.seconds_bp > 0 and info.seconds_train == 0
    assert info.pseudo_label_auc == pytest.approx(float(roc_auc(data.y_train, marginals)))
    assert base.converged is bool(info.bp.converged)
    assert int(info.bp.iterations) <= 200
    # it learned something: pseudo-labels and the final classifier (calibration over 4 seeds of
    # this problem: pseudo-label AUC 0.915-0.949, test AUC 0.943-0.955)
    assert info.pseudo_label_auc > 0.85
    assert float(roc_auc(data.y_test, predict_proba(base.model, data.X_test))) > 0.85


def test_round_one_is_bp_on_the_knn_graph(problem, base):
    """Round 1 is loopy_bp on knn_graph(X, 5) with the default count-mode options."""
    data, _, _, layout = problem
    direct = loopy_bp(layout, knn_graph(data.X_train, 5))
    np.testing.assert_array_equal(direct.marginals, base.marginals)


def test_pseudo_labels_threshold(problem, base):
    _, _, _, layout = problem
    marginals = _np(base.marginals)
    for t in (0.2, 0.5, 0.8):
        got = _np(pseudo_labels(base.marginals, layout, t))
        np.testing.assert_array_equal(got, (marginals > t).astype(np.float32))
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"threshold"):
            pseudo_labels(base.marginals, layout, bad)
    with pytest.raises(ValueError, match=r"threshold"):
        pseudo_labels(base.marginals, layout, "median")


def _check_top_count(labels, marginals, layout):
    """Every bag's hard labels sum to round(c_B); positives outrank negatives in each bag."""
    labels, marginals = _np(labels), _np(marginals)
    index, mask, counts = _np(layout.index), _np(layout.mask), _np(layout.counts)
    assert set(np.unique(labels)) <= {0.0, 1.0}
    for b in range(index.shape[0]):
        members = index[b][mask[b]]
        assert labels[members].sum() == np.round(counts[b]), b
        pos, neg = members[labels[members] == 1], members[labels[members] == 0]
        if pos.size and neg.size:
            assert marginals[pos].min() >= marginals[neg].max(), b
    outside = _np(layout.bag_of) < 0
    np.testing.assert_array_equal(labels[outside], (marginals[outside] > 0.5).astype(np.float32))


def test_top_count_matches_bag_counts_exactly(problem, base):
    data, ids, counts, layout = problem
    result = llp_bp(jax.random.key(KEY), data.X_train, ids, counts, threshold="top_count",
                    **OPTIONS)
    np.testing.assert_array_equal(result.marginals, base.marginals)  # same BP
    assert np.sum(_np(layout.bag_of) < 0) == N - NUM_BAGS * K > 0
    _check_top_count(result.pseudo_labels, result.marginals, layout)
    # broken variant: the 0.5 threshold does not reproduce the counts
    sums = np.array([_np(base.pseudo_labels)[_np(layout.index)[b][_np(layout.mask)[b]]].sum()
                     for b in range(NUM_BAGS)])
    assert np.any(sums != counts)
    # fractional counts are rounded (2.4 -> 2, 2.6 -> 3); ties in the marginals by index
    frac = make_layout(ids, np.clip(counts + np.where(np.arange(NUM_BAGS) % 2, 0.4, -0.4), 0, K))
    _check_top_count(pseudo_labels(base.marginals, frac, "top_count"), base.marginals, frac)
    flat = pseudo_labels(np.full(N, 0.3, np.float32), layout, "top_count")
    _check_top_count(flat, np.full(N, 0.3), layout)
    first = _np(layout.index)[0][: int(np.round(counts[0]))]
    assert np.all(_np(flat)[first] == 1)  # ties broken by slot (= instance) order


def test_two_rounds_report_both(problem, base, two_rounds):
    assert len(two_rounds.rounds) == 2
    first, second = two_rounds.rounds
    assert all(isinstance(r, RoundInfo) for r in two_rounds.rounds)
    np.testing.assert_array_equal(first.bp.marginals, base.marginals)  # round 1 = base BP
    assert first.seconds_train == 0 and second.seconds_train > 0
    assert second.num_edges > 0 and np.isfinite(second.pseudo_label_auc)
    np.testing.assert_array_equal(two_rounds.marginals, second.bp.marginals)
    np.testing.assert_array_equal(
        two_rounds.pseudo_labels, (_np(second.bp.marginals) > 0.5).astype(np.float32)
    )
    assert two_rounds.converged == (bool(first.bp.converged) and bool(second.bp.converged))
    assert two_rounds.model.widths == WIDTHS


@pytest.mark.xfail(
    strict=True,
    reason="known limitation of the released refinement (rounds=2, not the default; see the "
    "README's llp section and papers/havaldar2024): with a small MLP (32-unit embedding "
    "layer) round-2 BP on the embedding kNN graph settles in an inverted metastable mode "
    "(pseudo-label AUC 0.16-0.34, final test AUC ~0.07 on 4 seeds) although that graph is "
    "homophilous (0.84); strict, so a fix turns this test into a pass that must be kept",
)
def test_two_rounds_do_not_invert_the_pseudo_labels(problem, two_rounds):
    data = problem[0]
    assert two_rounds.rounds[1].pseudo_label_auc > 0.5
    assert float(roc_auc(data.y_test, predict_proba(two_rounds.model, data.X_test))) > 0.5


# --------------------------------------------------------------------------- options


def test_sharded_equals_unsharded(problem, base):
    """shard=True (4 fake CPU devices): 21 bags padded to 24; same marginals and labels.

    The final classifier is logistic regression here: the trainer recompiles anyway for the
    pseudo-labels' device placement (see report_stat.md), and widths=() compiles faster.
    """
    data, ids, counts, _ = problem
    sharded = llp_bp(jax.random.key(KEY), data.X_train, ids, counts, shard=True, widths=(),
                     train_options=TRAIN)
    layout = sharded.layout
    assert layout.index.shape == (24, K)
    assert not _np(layout.mask)[NUM_BAGS:].any()
    np.testing.assert_array_equal(_np(layout.counts)[NUM_BAGS:], 0)
    np.testing.assert_allclose(sharded.marginals, base.marginals, atol=1e-5)
    np.testing.assert_array_equal(sharded.pseudo_labels, base.pseudo_labels)
    residuals = _np(sharded.rounds[0].bp.bag_residuals)
    assert residuals.shape == (24,)
    np.testing.assert_array_equal(residuals[NUM_BAGS:], 0)
    np.testing.assert_allclose(residuals[:NUM_BAGS], base.rounds[0].bp.bag_residuals, atol=1e-4)


def test_user_supplied_graph(problem, base):
    data, ids, counts, layout = problem
    same = llp_bp(jax.random.key(KEY), data.X_train, ids, counts,
                  graph=knn_graph(data.X_train, 5), **OPTIONS)
    np.testing.assert_array_equal(same.marginals, base.marginals)
    uniform = knn_graph(data.X_train, 5, weight="uniform")
    other = llp_bp(jax.random.key(KEY), data.X_train, ids, counts, graph=uniform, **OPTIONS)
    np.testing.assert_array_equal(other.marginals, loopy_bp(layout, uniform).marginals)
    assert not np.allclose(other.marginals, base.marginals, atol=1e-3)  # the graph is used
    assert other.rounds[0].num_edges == uniform.src.shape[0] // 2


def test_proportions_equal_counts(problem, base):
    data, ids, counts, layout = problem
    sizes = _np(layout.sizes)
    result = llp_bp(jax.random.key(KEY), data.X_train, ids, counts / sizes,
                    label_type="proportions", **OPTIONS)
    np.testing.assert_allclose(result.layout.counts, counts, rtol=1e-6)
    np.testing.assert_allclose(result.marginals, base.marginals, atol=1e-6)
    np.testing.assert_array_equal(result.pseudo_labels, base.pseudo_labels)


def test_non_convergence_is_reported(problem, base):
    data, ids, counts, _ = problem
    result = llp_bp(jax.random.key(KEY), data.X_train, ids, counts, max_iters=1, **OPTIONS)
    assert result.converged is False
    assert not bool(result.rounds[0].bp.converged) and int(result.rounds[0].bp.iterations) == 1
    # weak couplings converge (101 iterations at tol 1e-4): the flag is not always False
    weak = llp_bp(jax.random.key(KEY), data.X_train, ids, counts, lam_s=1.0, lam_b=1.0,
                  **OPTIONS)
    assert weak.converged is True and int(weak.rounds[0].bp.iterations) < 200


# --------------------------------------------------------------------------- estimator


def test_estimator_fit_predict_score(problem, base):
    data, ids, counts, _ = problem
    est = LLPBP(widths=WIDTHS, train_options=TRAIN, random_state=KEY)
    for method in (est.predict, est.predict_proba):
        with pytest.raises(ValueError, match=r"not fitted"):
            method(data.X_test)
    with pytest.raises(ValueError, match=r"not fitted"):
        est.score(data.X_test, data.y_test)
    assert est.fit(data.X_train, ids, counts) is est
    np.testing.assert_array_equal(est.result_.marginals, base.marginals)
    assert est.converged_ == base.converged
    assert np.isnan(est.result_.rounds[0].pseudo_label_auc)  # no y_true given
    proba = est.predict_proba(data.X_test)
    assert isinstance(proba, np.ndarray) and proba.shape == (N,)
    np.testing.assert_allclose(proba, predict_proba(base.model, data.X_test), atol=1e-6)
    labels = est.predict(data.X_test)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, (proba > 0.5).astype(np.int32))
    assert est.score(data.X_test, data.y_test) == pytest.approx(
        float(roc_auc(data.y_test, proba))
    )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (dict(k_nn=N), ValueError, r"k_nn must be < the number of instances"),
        (dict(k_nn=0), ValueError, r"k_nn"),
        (dict(threshold=0.0), ValueError, r"threshold"),
        (dict(threshold=1.0), ValueError, r"threshold"),
        (dict(threshold="median"), ValueError, r"threshold"),
        (dict(rounds=0), ValueError, r"rounds"),
        (dict(rounds=1.5), TypeError, r"rounds"),
        (dict(label_type="fractions"), ValueError, r"label_type"),
        (dict(train_options=[("epochs", 1)]), TypeError, r"train_options"),
        (dict(graph="knn"), TypeError, r"graph"),
        (dict(y_true=np.zeros(N - 1)), ValueError, r"y_true"),
        (dict(length_scale="mean"), ValueError, r"length_scale"),
        (dict(embedding_length_scale=0.0), ValueError, r"embedding_length_scale"),
        (dict(lam_s=-1.0), ValueError, r"lam_s"),
        (dict(damping=1.0), ValueError, r"damping"),
        (dict(max_iters=0), ValueError, r"max_iters"),
        (dict(shard="yes"), TypeError, r"shard"),
    ],
)
def test_llp_bp_rejects_bad_options(problem, change, error, match):
    data, ids, counts, _ = problem
    with pytest.raises(error, match=match):
        llp_bp(jax.random.key(KEY), data.X_train, ids, counts, **{**OPTIONS, **change})


def test_llp_bp_rejects_bad_inputs(problem):
    data, ids, counts, _ = problem
    X, key = data.X_train, jax.random.key(KEY)
    bad_x = X.copy()
    bad_x[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X"):
        llp_bp(key, bad_x, ids, counts)
    bad_x[3, 2] = np.inf
    with pytest.raises(ValueError, match=r"X"):
        llp_bp(key, bad_x, ids, counts)
    with pytest.raises(ValueError, match=r"X"):
        llp_bp(key, X[:, 0], ids, counts)
    with pytest.raises(TypeError, match=r"key"):
        llp_bp("key", X, ids, counts)
    # bag labels outside [0, bag size], NaN, wrong length
    for bad in (np.where(np.arange(NUM_BAGS) == 3, K + 1.0, counts),
                np.where(np.arange(NUM_BAGS) == 3, -1.0, counts)):
        with pytest.raises(ValueError, match=r"bag_labels \(counts\) must be in \[0, bag size\]"):
            llp_bp(key, X, ids, bad)
    with pytest.raises(ValueError, match=r"bag_labels must be finite"):
        llp_bp(key, X, ids, np.where(np.arange(NUM_BAGS) == 3, np.nan, counts))
    with pytest.raises(ValueError, match=r"bag id"):
        llp_bp(key, X, ids, counts[:-1])
    # proportions outside [0, 1]
    with pytest.raises(ValueError, match=r"proportions\) must be in \[0, 1\]"):
        llp_bp(key, X, ids, counts / K + 0.5, label_type="proportions")
    # an instance in two bags
    with pytest.raises(ValueError, match=r"disjoint"):
        llp_bp(key, X, [np.arange(0, 48), np.arange(40, 96)], [10.0, 10.0])
    # empty bags: an unused bag id, or an empty index array
    with pytest.raises(ValueError, match=r"empty bags"):
        llp_bp(key, X, ids, np.append(counts, 0.0))
    with pytest.raises(ValueError, match=r"empty"):
        llp_bp(key, X, [np.arange(0, 48), np.array([], dtype=np.int32)], [10.0, 0.0])
    # bag ids of the wrong length, instance indices out of range
    with pytest.raises(ValueError, match=r"num_instances|len\(bags\)"):
        llp_bp(key, X, _np(ids)[:-1], counts)
    with pytest.raises(ValueError, match=r"out of range"):
        llp_bp(key, X, [np.arange(0, 48), np.array([N, N + 1])], [10.0, 1.0])


def test_llp_bp_rejects_a_graph_on_other_nodes(problem):
    """A user graph with node indices >= n surfaces loopy_bp's validation through llp_bp."""
    data, ids, counts, _ = problem
    graph = graph_from_edges(np.array([[0, 1], [N + 5, 2]]), N + 10)
    assert isinstance(graph, KnnGraph)
    with pytest.raises(ValueError, match=r"graph\.src must hold node indices"):
        llp_bp(jax.random.key(KEY), data.X_train, ids, counts, graph=graph, **OPTIONS)
