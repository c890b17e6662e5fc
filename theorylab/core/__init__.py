"""Shared building blocks: argument checks, metrics, linear algebra, keys, sharding, I/O.

Nothing here imports a method family; families import from here.
"""

from theorylab.core import checks, io, linalg, metrics, random, registry, sharding
from theorylab.core.checks import require_x64, x64_enabled
from theorylab.core.linalg import (
    SpectralDecomposition,
    log1mexp,
    log_mean_exp,
    log_normalize,
    log_sub_exp,
    logsumexp,
    masked_logsumexp,
    matrix_function,
    matrix_function_grid,
    project_to_simplex,
    reconstruct,
    spectral_decomposition,
    symmetric_reconstruct,
)
from theorylab.core.metrics import (
    MatchResult,
    adjusted_rand_index,
    contingency_matrix,
    hungarian_match,
    matching_accuracy,
    normalized_mutual_info,
    roc_auc,
)
from theorylab.core.random import as_key, keys_for_seeds, split_like
from theorylab.core.registry import Registry, UnknownNameError
from theorylab.core.sharding import data_mesh, replicate, shard_leading_axis

__all__ = [
    "MatchResult",
    "Registry",
    "SpectralDecomposition",
    "UnknownNameError",
    "adjusted_rand_index",
    "as_key",
    "checks",
    "contingency_matrix",
    "data_mesh",
    "hungarian_match",
    "io",
    "keys_for_seeds",
    "linalg",
    "log1mexp",
    "log_mean_exp",
    "log_normalize",
    "log_sub_exp",
    "logsumexp",
    "masked_logsumexp",
    "matching_accuracy",
    "matrix_function",
    "matrix_function_grid",
    "metrics",
    "normalized_mutual_info",
    "project_to_simplex",
    "random",
    "reconstruct",
    "registry",
    "replicate",
    "require_x64",
    "roc_auc",
    "shard_leading_axis",
    "sharding",
    "spectral_decomposition",
    "split_like",
    "symmetric_reconstruct",
    "x64_enabled",
]
