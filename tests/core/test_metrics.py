"""Metrics against independent references: hand-computed tables, pair counting, brute force."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as skm

from theorylab.core import metrics

# --------------------------------------------------------------------------- references


def ari_by_pair_counting(t, p):
    """ARI from the four pair counts (Hubert & Arabie 1985, eq. 5 / Steinley 2004).

    a: pairs together in both, b: together in t only, c: together in p only, d: apart in both.
    ARI = 2(ad - bc) / ((a + b)(b + d) + (a + c)(c + d)); identical trivial partitions -> 1.
    """
    a = b = c = d = 0
    for i, j in itertools.combinations(range(len(t)), 2):
        same_t, same_p = t[i] == t[j], p[i] == p[j]
        a += same_t and same_p
        b += same_t and not same_p
        c += same_p and not same_t
        d += not same_t and not same_p
    denom = (a + b) * (b + d) + (a + c) * (c + d)
    if denom == 0:
        return 1.0
    return 2.0 * (a * d - b * c) / denom


def nmi_by_definition(t, p, average):
    n = len(t)
    labels_t, labels_p = sorted(set(t)), sorted(set(p))
    pt = {u: sum(1 for x in t if x == u) / n for u in labels_t}
    pp = {v: sum(1 for x in p if x == v) / n for v in labels_p}
    mi = 0.0
    for u in labels_t:
        for v in labels_p:
            puv = sum(1 for x, y in zip(t, p) if x == u and y == v) / n
            if puv > 0:
                mi += puv * math.log(puv / (pt[u] * pp[v]))
    hu = -sum(q * math.log(q) for q in pt.values())
    hv = -sum(q * math.log(q) for q in pp.values())
    if hu == 0 and hv == 0:
        return 1.0
    norm = {
        "arithmetic": (hu + hv) / 2,
        "geometric": math.sqrt(hu * hv),
        "min": min(hu, hv),
        "max": max(hu, hv),
    }[average]
    return 0.0 if norm == 0 else mi / norm


def auc_by_pairs(y, s):
    pos = [si for yi, si in zip(y, s) if yi]
    neg = [si for yi, si in zip(y, s) if not yi]
    total = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return total / (len(pos) * len(neg))


def best_accuracy_brute_force(t, p, k):
    best = 0
    for perm in itertools.permutations(range(k)):
        best = max(best, sum(perm[pi] == ti for ti, pi in zip(t, p)))
    return best / len(t)


labels = st.lists(st.integers(0, 4), min_size=2, max_size=40)


def paired_labels(max_k=4, min_size=2, max_size=40):
    return st.integers(min_size, max_size).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, max_k), min_size=n, max_size=n),
            st.lists(st.integers(0, max_k), min_size=n, max_size=n),
        )
    )


# --------------------------------------------------------------------------- ARI


def test_ari_hand_computed_table():
    # contingency [[2, 1, 0], [0, 1, 2]]: sum C(nij,2) = 2, rows 6, cols 3, C(6,2) = 15
    # E = 6 * 3 / 15 = 1.2, max = 4.5, ARI = 0.8 / 3.3 = 8/33
    t = [0, 0, 0, 1, 1, 1]
    p = [0, 0, 1, 1, 2, 2]
    assert float(metrics.adjusted_rand_index(t, p)) == pytest.approx(8 / 33, rel=1e-6)
    table = np.asarray(metrics.contingency_matrix(t, p))
    np.testing.assert_array_equal(table, [[2, 1, 0], [0, 1, 2]])


def test_ari_special_cases():
    assert float(metrics.adjusted_rand_index([1, 1, 1], [5, 5, 5])) == 1.0
    assert float(metrics.adjusted_rand_index([0, 1, 2], [2, 0, 1])) == 1.0
    assert float(metrics.adjusted_rand_index([3], [4])) == 1.0
    # one block vs all singletons: index 0, expected 0 -> ARI 0
    assert float(metrics.adjusted_rand_index([0, 0, 0, 0], [0, 1, 2, 3])) == pytest.approx(0.0)


@pytest.mark.x64
@given(paired_labels())
def test_ari_matches_pair_counting(pair):
    t, p = pair
    ours = float(metrics.adjusted_rand_index(t, p))
    assert ours == pytest.approx(ari_by_pair_counting(t, p), abs=1e-10)


@given(paired_labels(), st.permutations(range(5)))
def test_ari_symmetric_and_relabel_invariant(pair, perm):
    t, p = pair
    base = float(metrics.adjusted_rand_index(t, p))
    assert float(metrics.adjusted_rand_index(p, t)) == pytest.approx(base, abs=1e-5)
    relabelled = [perm[x] for x in p]
    assert float(metrics.adjusted_rand_index(t, relabelled)) == pytest.approx(base, abs=1e-5)
    assert float(metrics.adjusted_rand_index(t, t)) == pytest.approx(1.0, abs=1e-6)


def test_ari_accepts_string_labels_and_gaps():
    t = ["a", "a", "b", "b", "c"]
    p = [10, 10, 30, 30, 99]
    assert float(metrics.adjusted_rand_index(t, p)) == pytest.approx(1.0)


def test_ari_jit_and_vmap_with_static_sizes():
    key = jax.random.key(0)
    t = jax.random.randint(key, (8, 50), 0, 3)
    p = jax.random.randint(jax.random.fold_in(key, 1), (8, 50), 0, 4)

    @jax.jit
    def batch(t, p):
        return jax.vmap(lambda a, b: metrics.adjusted_rand_index(a, b, num_true=3, num_pred=4))(
            t, p
        )

    got = np.asarray(batch(t, p))
    want = [metrics.adjusted_rand_index(np.asarray(a), np.asarray(b)) for a, b in zip(t, p)]
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-5)


def test_ari_unused_label_ids_do_not_matter():
    t = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 1, 2, 2, 2])
    a = metrics.adjusted_rand_index(t, p)
    b = metrics.adjusted_rand_index(t, p, num_true=7, num_pred=9)
    assert float(a) == pytest.approx(float(b), abs=1e-6)


def test_ari_agrees_with_sklearn_on_large_input():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 6, size=5000)
    p = np.where(rng.random(5000) < 0.7, t, rng.integers(0, 6, size=5000))
    ours = float(metrics.adjusted_rand_index(t, p))
    assert ours == pytest.approx(skm.adjusted_rand_score(t, p), abs=1e-5)


# --------------------------------------------------------------------------- NMI


@pytest.mark.x64
@pytest.mark.parametrize("average", ["arithmetic", "geometric", "min", "max"])
@given(pair=paired_labels(max_size=25))
def test_nmi_matches_definition(average, pair):
    t, p = pair
    ours = float(metrics.normalized_mutual_info(t, p, average=average))
    assert ours == pytest.approx(nmi_by_definition(t, p, average), abs=1e-9)


@given(paired_labels())
def test_nmi_symmetric_bounded(pair):
    t, p = pair
    a = float(metrics.normalized_mutual_info(t, p))
    b = float(metrics.normalized_mutual_info(p, t))
    assert a == pytest.approx(b, abs=1e-5)
    assert -1e-6 <= a <= 1 + 1e-6


@pytest.mark.parametrize("average", ["arithmetic", "geometric", "min", "max"])
def test_nmi_agrees_with_sklearn(average):
    rng = np.random.default_rng(2)
    t = rng.integers(0, 5, size=3000)
    p = np.where(rng.random(3000) < 0.5, t, rng.integers(0, 7, size=3000))
    ours = float(metrics.normalized_mutual_info(t, p, average=average))
    want = skm.normalized_mutual_info_score(t, p, average_method=average)
    assert ours == pytest.approx(want, abs=1e-5)


def test_nmi_trivial_partitions():
    assert float(metrics.normalized_mutual_info([0, 0, 0], [1, 1, 1])) == 1.0
    assert float(metrics.normalized_mutual_info([0, 0, 1, 1], [0, 0, 0, 0])) == 0.0


def test_nmi_rejects_bad_average():
    with pytest.raises(ValueError, match="average must be one of"):
        metrics.normalized_mutual_info([0, 1], [0, 1], average="harmonic")


# --------------------------------------------------------------------------- AUC


@given(
    st.integers(2, 40).flatmap(
        lambda n: st.tuples(
            st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda y: 0 < sum(y) < len(y)),
            st.lists(st.integers(0, 4), min_size=n, max_size=n),  # many ties
        )
    )
)
def test_auc_matches_pair_count_with_ties(data):
    y, s = data
    ours = float(metrics.roc_auc(np.array(y), np.array(s, dtype=np.float32)))
    assert ours == pytest.approx(auc_by_pairs(y, s), abs=1e-6)


def test_auc_known_values():
    assert float(metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert float(metrics.roc_auc([0, 1], [0.5, 0.5])) == pytest.approx(0.5)
    assert float(metrics.roc_auc([1, 0], [0.9, 0.1])) == pytest.approx(1.0)


def test_auc_agrees_with_sklearn_on_tied_scores():
    rng = np.random.default_rng(3)
    y = rng.random(4000) < 0.3
    s = np.round(rng.normal(size=4000) + y, 1).astype(np.float32)
    assert float(metrics.roc_auc(y, s)) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-6)


def test_auc_mask_equals_subset_and_jits():
    rng = np.random.default_rng(4)
    y = rng.random(100) < 0.5
    s = rng.normal(size=100).astype(np.float32)
    mask = rng.random(100) < 0.6
    full = float(metrics.roc_auc(y[mask], s[mask]))
    masked = float(jax.jit(lambda a, b, m: metrics.roc_auc(a, b, mask=m))(y, s, mask))
    assert masked == pytest.approx(full, abs=1e-6)


def test_auc_errors():
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only 0/1"):
        metrics.roc_auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="scores must contain only finite"):
        metrics.roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="same number of rows"):
        metrics.roc_auc([0, 1, 1], [0.1, 0.2])
    assert np.isnan(float(jax.jit(metrics.roc_auc)(jnp.ones(3, int), jnp.arange(3.0))))


# --------------------------------------------------------------------------- matching


@given(paired_labels(max_k=3, max_size=25))
def test_hungarian_matches_brute_force(pair):
    t, p = pair
    ours = metrics.hungarian_match(t, p)
    assert ours.accuracy == pytest.approx(best_accuracy_brute_force(t, p, 4))
    jitted = float(metrics.matching_accuracy(t, p, num_classes=4))
    assert jitted == pytest.approx(ours.accuracy, abs=1e-6)


def test_hungarian_mapping_and_rectangular():
    t = ["x", "x", "y", "y", "y"]
    p = [7, 7, 3, 3, 5]  # 3 predicted clusters, 2 classes: cluster 5 stays unmatched
    res = metrics.hungarian_match(t, p)
    assert res.mapping == {7: "x", 3: "y"}
    assert res.accuracy == pytest.approx(4 / 5)


def test_matching_accuracy_permutation_and_vmap():
    t = jnp.array([0, 0, 1, 1, 2, 2])
    p = jnp.array([2, 2, 0, 0, 1, 1])
    acc, perm = metrics.matching_accuracy(t, p, num_classes=3, return_permutation=True)
    assert float(acc) == 1.0
    np.testing.assert_array_equal(np.asarray(perm)[np.asarray(p)], np.asarray(t))
    batch = jax.vmap(lambda a, b: metrics.matching_accuracy(a, b, num_classes=3))(
        jnp.stack([t, t]), jnp.stack([p, t])
    )
    np.testing.assert_allclose(np.asarray(batch), [1.0, 1.0])


def test_label_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"labels_pred must contain integers in \[0, 3\)"):
        metrics.matching_accuracy([0, 1], [0, 3], num_classes=3)
    with pytest.raises(ValueError, match="same number of rows"):
        metrics.adjusted_rand_index([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="at least one sample"):
        metrics.adjusted_rand_index([], [])
    with pytest.raises(ValueError, match="labels_true must be 1-dimensional"):
        metrics.normalized_mutual_info([[0, 1]], [0, 1])
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        metrics.matching_accuracy([0, 1], [0, 1], num_classes=2.0)
