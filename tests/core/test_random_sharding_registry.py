"""Keys, the 4-fake-device mesh, registries and atomic I/O."""

from __future__ import annotations

import json
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from theorylab.core import io, random, registry, sharding


def test_keys_for_seeds_reproduce_single_runs():
    keys = random.keys_for_seeds([3, 17])
    batch = jax.vmap(lambda k: jax.random.normal(k, (4,)))(keys)
    single = jax.random.normal(jax.random.key(17), (4,))
    np.testing.assert_array_equal(np.asarray(batch[1]), np.asarray(single))
    with pytest.raises(ValueError, match="seeds must contain at least one seed"):
        random.keys_for_seeds([])
    with pytest.raises(ValueError, match=r"seeds\[1\] must be in \[0"):
        random.keys_for_seeds([1, -2])


def test_as_key_and_split_like():
    k = random.as_key(5)
    assert jnp.issubdtype(k.dtype, jax.dtypes.prng_key)
    legacy = random.as_key(jax.random.PRNGKey(5))
    assert jnp.issubdtype(legacy.dtype, jax.dtypes.prng_key)
    tree = {"a": 1, "b": (2, 3)}
    keys = random.split_like(k, tree)
    assert jax.tree.structure(keys) == jax.tree.structure(tree)
    draws = [float(jax.random.uniform(x)) for x in jax.tree.leaves(keys)]
    assert len(set(draws)) == 3
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        random.as_key("seed")


def test_four_fake_devices_sharded_sum_equals_unsharded():
    assert len(jax.devices()) == 4, "conftest must create 4 CPU devices"
    mesh = sharding.data_mesh()
    x = jnp.arange(4 * 1000, dtype=jnp.float32) / 7.0
    xs = sharding.shard_leading_axis(x, mesh)
    assert len(xs.sharding.device_set) == 4
    assert {s.data.shape for s in xs.addressable_shards} == {(1000,)}

    @jax.jit
    @partial(jax.shard_map, mesh=mesh, in_specs=P("data"), out_specs=P())
    def sharded_sum(block):
        return jax.lax.psum(block.sum(), "data")

    assert float(sharded_sum(xs)) == pytest.approx(float(x.sum()), rel=1e-6)


def test_shard_leading_axis_error_names_leaf():
    mesh = sharding.data_mesh(4)
    with pytest.raises(ValueError, match=r"\['w'\] must have a leading axis divisible by 4"):
        sharding.shard_leading_axis({"w": jnp.ones(6)}, mesh)
    with pytest.raises(ValueError, match=r"num_devices must be in \[1, 4\]"):
        sharding.data_mesh(5)
    rep = sharding.replicate(jnp.ones(3), mesh)
    assert rep.sharding.is_fully_replicated


def test_registry_unknown_name_lists_valid():
    reg = registry.Registry("measure")
    reg.add("walk", 1)

    @reg.register("heat")
    def heat():
        return 2

    assert reg.names() == ["walk", "heat"] and "heat" in reg and len(reg) == 2
    with pytest.raises(KeyError, match="unknown measure 'katz'; valid names: heat, walk"):
        reg["katz"]
    with pytest.raises(ValueError, match="already registered"):
        reg.add("walk", 3)


def test_write_json_atomic_roundtrip(tmp_path):
    data = {"a": np.float32(1.5), "b": jnp.arange(3), "c": float("nan"), "d": (1, 2)}
    path = io.write_json_atomic(tmp_path / "sub" / "r.json", data)
    loaded = json.loads(path.read_text())
    assert loaded == {"a": 1.5, "b": [0, 1, 2], "c": "nan", "d": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temp file left
    env = io.environment_info()
    assert env["versions"]["jax"] == jax.__version__ and len(env["devices"]) == 4
