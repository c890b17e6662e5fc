"""PRNG-key helpers: seeds to keys, key batches for ``vmap``, keys shaped like a pytree.

theorylab always takes randomness as an explicit ``key`` (first positional argument); these
helpers only make the common conversions explicit and validated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import check_int, check_key

__all__ = ["as_key", "keys_for_seeds", "split_like"]


def as_key(seed_or_key: Any, name: str = "key"):
    """Return a typed PRNG key from an ``int`` seed or an existing key (validated)."""
    if isinstance(seed_or_key, (int, np.integer)) and not isinstance(seed_or_key, bool):
        seed = check_int(seed_or_key, name, min_value=0, max_value=2**63 - 1)
        return jax.random.key(seed)
    key = check_key(seed_or_key, name)
    if key.dtype == jnp.uint32:  # legacy raw key -> typed key
        return jax.random.wrap_key_data(key)
    return key


def keys_for_seeds(seeds: Sequence[int]):
    """A batch of independent keys, one per integer seed (shape ``(len(seeds),)``).

    Each key is ``jax.random.key(seed)``, so run ``i`` of a vmapped sweep reproduces exactly
    the single run with seed ``seeds[i]``.
    """
    seeds = [
        check_int(s, f"seeds[{i}]", min_value=0, max_value=2**32 - 1) for i, s in enumerate(seeds)
    ]
    if not seeds:
        raise ValueError("seeds must contain at least one seed; got an empty sequence")
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32))


def split_like(key, tree: Any):
    """One independent key per leaf of ``tree``, returned in the same tree structure."""
    key = as_key(key)
    leaves, treedef = jax.tree.flatten(tree)
    if not leaves:
        return tree
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, list(keys))
