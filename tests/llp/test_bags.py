"""Tests for theorylab.llp.bags: padded bag layouts, random/feature bags, bag statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theorylab.llp.bags import (
    BagLayout,
    bag_counts,
    bag_mean,
    bag_proportions,
    feature_bags,
    gather_bags,
    make_layout,
    num_instances,
    random_bags,
    scatter_bags,
)


def _members(layout: BagLayout) -> list[list[int]]:
    index, mask = np.asarray(layout.index), np.asarray(layout.mask)
    return [index[b][mask[b]].tolist() for b in range(index.shape[0])]


# --------------------------------------------------------------------------- make_layout


def test_layout_from_bag_ids():
    ids = np.array([2, 0, -1, 1, 0, 2, 2, 1])
    layout = make_layout(ids, [1.0, 0.5, 3.0])
    assert layout.index.dtype == jnp.int32 and layout.sizes.dtype == jnp.int32
    assert layout.bag_of.dtype == jnp.int32 and layout.mask.dtype == jnp.bool_
    assert layout.counts.dtype == jnp.float32
    assert isinstance(layout.index, jax.Array)
    assert layout.index.shape == (3, 3)
    assert _members(layout) == [[1, 4], [3, 7], [0, 5, 6]]  # bags by id, members increasing
    np.testing.assert_array_equal(layout.sizes, [2, 2, 3])
    np.testing.assert_allclose(layout.counts, [1.0, 0.5, 3.0])
    np.testing.assert_array_equal(layout.bag_of, ids)
    assert num_instances(layout) == 8
    from_jax = make_layout(jnp.asarray(ids), jnp.asarray([1.0, 0.5, 3.0]))
    for x, y in zip(layout, from_jax):
        np.testing.assert_array_equal(x, y)
    # padded slots hold index 0 and are masked
    assert int(layout.index[0, 2]) == 0 and not bool(layout.mask[0, 2])


def test_layout_from_sequence_matches_ids_and_sorts_members():
    seq = [np.array([4, 1]), [7, 3], (6, 0, 5)]
    a = make_layout(seq, [1, 2, 0], num_instances=9)
    ids = np.array([2, 0, -1, 1, 0, 2, 2, 1, -1])
    b = make_layout(ids, [1, 2, 0])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert num_instances(a) == 9
    # default num_instances = max index + 1
    assert num_instances(make_layout(seq, [1, 2, 0])) == 8
    # 2-D array: one bag per row
    c = make_layout(np.array([[3, 0], [1, 2]]), [0, 2])
    assert _members(c) == [[0, 3], [1, 2]]


def test_proportions_padding_and_multiple():
    ids = np.array([0, 0, 0, 0, 1, 1])
    layout = make_layout(
        ids, [0.25, 1.0], label_type="proportions", pad_to=8, pad_bags_to_multiple=4
    )
    assert layout.index.shape == (4, 8)
    np.testing.assert_allclose(layout.counts, [1.0, 2.0, 0.0, 0.0])
    np.testing.assert_array_equal(layout.sizes, [4, 2, 0, 0])
    assert not bool(np.asarray(layout.mask[2:]).any())
    np.testing.assert_allclose(bag_proportions(layout), [0.25, 1.0, 0.0, 0.0])


@pytest.mark.x64
def test_counts_float64_under_x64():
    layout = make_layout(np.array([0, 0, 1]), [0.5, 1.0])
    assert layout.counts.dtype == jnp.float64
    assert layout.index.dtype == jnp.int32


_BAD = [
    # (bags, bag_labels, kwargs, exception, fragment of the message)
    ([0, 0, 1], [1.0, 3.0], {}, ValueError, "bag_labels"),  # count > size
    ([0, 0, 1], [-0.5, 1.0], {}, ValueError, "bag_labels"),  # count < 0
    ([0, 0, 1], [0.5, 1.5], {"label_type": "proportions"}, ValueError, "bag_labels"),
    ([0, 0, 1], [-0.1, 0.5], {"label_type": "proportions"}, ValueError, "bag_labels"),
    ([0, 0, 1], [np.nan, 1.0], {}, ValueError, "bag_labels"),
    ([0, 0, 1], [1.0], {}, ValueError, "bag_labels"),  # id 1 without a label
    ([0, 0, 2], [1.0, 0.0, 1.0], {}, ValueError, "empty"),  # bag 1 empty
    ([[0, 1], []], [1.0, 0.0], {}, ValueError, r"bags\[1\] is empty"),
    ([[0, 1], [1, 2]], [1.0, 0.0], {}, ValueError, "instance 1 is in bags 0 and 1"),
    ([[0, 1, 1]], [1.0], {}, ValueError, "more than once"),
    ([[0, 5]], [1.0], {"num_instances": 4}, ValueError, "num_instances"),
    ([[0, -1]], [1.0], {}, ValueError, "bags"),
    ([0, -2, 1], [1.0, 0.0], {}, ValueError, "bags"),
    ([-1, -1], [1.0], {}, ValueError, "bags"),
    ([0, 0, 1], [1.0, 1.0], {"num_instances": 5}, ValueError, "num_instances"),
    ([0, 0, 1], [1.0, 1.0], {"pad_to": 1}, ValueError, "pad_to"),
    ([0, 0, 1], [1.0, 1.0], {"pad_bags_to_multiple": 0}, ValueError, "pad_bags_to_multiple"),
    ([0, 0, 1], [1.0, 1.0], {"label_type": "fractions"}, ValueError, "label_type"),
    ([], [1.0], {}, ValueError, "bags"),
    (np.array([0.0, 1.0]), [1.0, 1.0], {}, TypeError, "bags"),  # float ids
    ([0, 0, 1], ["a", "b"], {}, TypeError, "bag_labels"),
    ([0, 0, 1], [[1.0, 1.0]], {}, ValueError, "bag_labels"),
    ("abc", [1.0], {}, TypeError, "bags"),
]


@pytest.mark.parametrize(("bags", "labels", "kwargs", "exc", "fragment"), _BAD)
def test_make_layout_rejects_bad_input(bags, labels, kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        make_layout(bags, labels, **kwargs)


@settings(max_examples=15)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=6),
    extra=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_layout_round_trip_property(sizes, extra, seed):
    """Any partition (plus unbagged instances) is recovered exactly from the layout."""
    rng = np.random.default_rng(seed)
    n = sum(sizes) + extra
    perm = rng.permutation(n)
    ids = np.full(n, -1)
    start = 0
    for b, s in enumerate(sizes):
        ids[perm[start : start + s]] = b
        start += s
    counts = rng.integers(0, np.array(sizes) + 1).astype(float)
    layout = make_layout(ids, counts)
    assert _members(layout) == [np.flatnonzero(ids == b).tolist() for b in range(len(sizes))]
    np.testing.assert_array_equal(layout.bag_of, ids)
    np.testing.assert_array_equal(layout.sizes, sizes)
    np.testing.assert_allclose(layout.counts, counts)
    seq_layout = make_layout(
        [np.flatnonzero(ids == b)[::-1] for b in range(len(sizes))], counts, num_instances=n
    )
    for x, y in zip(layout, seq_layout):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- random / feature bags


def test_random_bags_partition():
    ids = np.asarray(random_bags(jax.random.key(0), 103, 10))
    assert ids.dtype == np.int32 and ids.shape == (103,)
    np.testing.assert_array_equal(np.bincount(ids[ids >= 0]), np.full(10, 10))
    assert np.sum(ids == -1) == 3
    again = np.asarray(random_bags(jax.random.key(0), 103, 10))
    np.testing.assert_array_equal(ids, again)
    other = np.asarray(random_bags(jax.random.key(1), 103, 10))
    assert not np.array_equal(ids, other)
    # the shuffle is not the identity: bag 0 is not the first 10 instances
    assert not np.array_equal(np.flatnonzero(ids == 0), np.arange(10))
    kept = np.asarray(random_bags(jax.random.key(0), 103, 10, drop_remainder=False))
    np.testing.assert_array_equal(np.bincount(kept), [10] * 10 + [3])
    layout = make_layout(ids, np.zeros(10))
    assert layout.index.shape == (10, 10)


def test_random_bags_validation():
    with pytest.raises(ValueError, match="bag_size"):
        random_bags(jax.random.key(0), 5, 6)
    with pytest.raises(ValueError, match="bag_size"):
        random_bags(jax.random.key(0), 5, 0)
    with pytest.raises(TypeError, match="key"):
        random_bags(0, 5, 2)
    with pytest.raises(TypeError, match="drop_remainder"):
        random_bags(jax.random.key(0), 5, 2, drop_remainder=1)


def test_feature_bags():
    cols = np.array([[1, 0], [0, 1], [1, 0], [0, 0], [0, 1]])
    ids = np.asarray(feature_bags(cols))
    np.testing.assert_array_equal(ids, [2, 1, 2, 0, 1])  # lexicographic order of (c0, c1)
    np.testing.assert_array_equal(np.asarray(feature_bags(np.array([3.0, 1.0, 3.0]))), [1, 0, 1])
    with pytest.raises(ValueError, match="X_columns"):
        feature_bags(np.array([1.0, np.nan]))


# --------------------------------------------------------------------------- bag statistics


@pytest.fixture(scope="module")
def small_layout():
    ids = np.array([1, 0, 0, -1, 1, 1, 2])
    return ids, make_layout(ids, [1.0, 2.0, 0.0], pad_to=4, pad_bags_to_multiple=2)


def test_bag_counts_layout_and_ids(small_layout):
    ids, layout = small_layout
    y = np.array([1, 1, 0, 1, 0, 1, 0])
    np.testing.assert_allclose(bag_counts(y, layout), [1.0, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(bag_counts(y, ids), [1.0, 2.0, 0.0])
    np.testing.assert_allclose(bag_counts(y, ids, num_bags=4), [1.0, 2.0, 0.0, 0.0])
    jitted = jax.jit(bag_counts)(jnp.asarray(y, jnp.float32), layout)
    np.testing.assert_allclose(jitted, [1.0, 2.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="y"):
        bag_counts(np.array([0, 2, 0, 0, 0, 0, 0]), layout)
    with pytest.raises(ValueError, match="y"):
        bag_counts(np.ones(3), layout)
    with pytest.raises(ValueError, match="bags"):
        bag_counts(y, ids, num_bags=2)


def test_bag_mean_gather_scatter(small_layout):
    ids, layout = small_layout
    v = np.arange(7, dtype=np.float32) * 1.5
    expected = [v[ids == b].mean() for b in range(3)] + [0.0]
    np.testing.assert_allclose(bag_mean(v, layout), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(bag_mean)(jnp.asarray(v), layout), expected, rtol=1e-6)
    emb = np.stack([v, -v], axis=1)
    out = bag_mean(emb, layout)
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out[:, 1], -np.asarray(expected), rtol=1e-6)
    g = gather_bags(v, layout, fill=-7.0)
    assert g.shape == (4, 4)
    assert np.all(np.asarray(g)[~np.asarray(layout.mask)] == -7.0)
    back = scatter_bags(g, layout, fill=99.0)
    np.testing.assert_allclose(back, np.where(ids >= 0, v, 99.0))
    with pytest.raises(ValueError, match="values"):
        bag_mean(np.ones(5), layout)
    with pytest.raises(ValueError, match="bag_values"):
        scatter_bags(np.ones((3, 4)), layout)
    with pytest.raises(TypeError, match="layout"):
        bag_mean(v, (layout.index, layout.mask))
