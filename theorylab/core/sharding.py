"""One-dimensional device meshes for data parallelism (particles, bags, seeds).

Thin, validated wrappers over ``jax.make_mesh`` and ``NamedSharding``; families use them to
lay a leading axis (particles, bags, seeds) across devices. On CPU, tests fake several
devices with ``jax.config.update("jax_num_cpu_devices", 4)`` before any computation.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec

from theorylab.core.checks import check_int

__all__ = ["data_mesh", "replicate", "shard_leading_axis"]


def data_mesh(num_devices: int | None = None, axis_name: str = "data") -> jax.sharding.Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (default: all of them)."""
    available = len(jax.devices())
    if num_devices is None:
        num_devices = available
    num_devices = check_int(num_devices, "num_devices", min_value=1, max_value=available)
    return jax.make_mesh((num_devices,), (axis_name,), devices=jax.devices()[:num_devices])


def shard_leading_axis(tree: Any, mesh: jax.sharding.Mesh, axis_name: str | None = None):
    """Place every leaf of ``tree`` with its leading axis split over ``mesh``'s axis.

    The leading dimension of each leaf must be divisible by the number of devices on that
    axis (pad with masked entries otherwise); a clear ``ValueError`` says which leaf is not.
    """
    axis_name = axis_name or mesh.axis_names[0]
    size = mesh.shape[axis_name]
    sharding = NamedSharding(mesh, PartitionSpec(axis_name))
    leaves, treedef = jax.tree.flatten_with_path(tree)
    out = []
    for path, leaf in leaves:
        if getattr(leaf, "ndim", 0) == 0 or leaf.shape[0] % size:
            where = jax.tree_util.keystr(path) or "leaf"
            shape = getattr(leaf, "shape", ())
            raise ValueError(
                f"{where} must have a leading axis divisible by {size} devices; got shape {shape}"
            )
        out.append(jax.device_put(leaf, sharding))
    return jax.tree.unflatten(treedef, out)


def replicate(tree: Any, mesh: jax.sharding.Mesh):
    """Place every leaf of ``tree`` fully replicated on ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))
