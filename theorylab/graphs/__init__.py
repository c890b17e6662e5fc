"""Graph proximity measures, plain and logarithmic, and kernel clustering of nodes.

Implements Ivashkin & Chebotarev, "Do logarithmic proximity measures outperform plain ones in
graph clustering?" (NET 2016 / PROMS 197, 2017) in the conventions of pygkernels:

- :mod:`~theorylab.graphs.operators`: adjacency validation, Laplacians, normalised operators,
  spectral radius, ``L⁺``, shortest paths, and :func:`graph_spectra` (the eigendecompositions
  every grid is computed from).
- :mod:`~theorylab.graphs.measures`: the registry :data:`MEASURES` of 28 measures,
  :func:`kernel`, :func:`kernel_grid` (one eigh per operator, one GEMM per parameter),
  :func:`factored_kernel`, :func:`distance`, flat-parameter scalers.
- :mod:`~theorylab.graphs.transforms`: elementwise log, kernel <-> distance.
- :mod:`~theorylab.graphs.clustering`: kernel k-means (O(k n²) per step, vmapped restarts) and
  kernel Ward.
- :mod:`~theorylab.graphs.generators`: SBM / planted partition (resample-until-connected),
  karate club.
- :mod:`~theorylab.graphs.reject`: reject curves and their ROC-AUC.
- :mod:`~theorylab.graphs.experiments`: ARI-vs-parameter curves, vmapped over graphs.
"""

from theorylab.graphs.clustering import (
    FactoredKernel,
    KernelKMeansResult,
    kernel_kmeans,
    kernel_kmeans_core,
    kernel_ward,
    modularity,
)
from theorylab.graphs.experiments import ari_curve, ari_curves, ari_curves_core, kernel_at_flat
from theorylab.graphs.generators import (
    GraphBatch,
    karate_club,
    planted_partition,
    stochastic_block_model,
)
from theorylab.graphs.measures import (
    FAMILY_PAIRS,
    MEASURES,
    KernelGrid,
    Measure,
    distance,
    factored_kernel,
    get_measure,
    kernel,
    kernel_grid,
    kernel_grids,
    native_parameter,
    scale_parameter,
    walk_t_from_alpha,
)
from theorylab.graphs.operators import (
    GraphSpectra,
    adjacency_matrix,
    check_connected,
    degrees,
    graph_spectra,
    laplacian,
    laplacian_pinv,
    normalized_adjacency,
    normalized_laplacian,
    shortest_path_distances,
    spectral_radius,
    transition_matrix,
    volume,
)
from theorylab.graphs.reject import RejectCurve, average_reject_curves, reject_curve
from theorylab.graphs.transforms import (
    distance_to_kernel,
    elementwise_log,
    kernel_to_distance,
    sigmoid_kernel,
)

__all__ = [
    "FAMILY_PAIRS",
    "MEASURES",
    "FactoredKernel",
    "GraphBatch",
    "GraphSpectra",
    "KernelGrid",
    "KernelKMeansResult",
    "Measure",
    "RejectCurve",
    "adjacency_matrix",
    "ari_curve",
    "ari_curves",
    "ari_curves_core",
    "average_reject_curves",
    "check_connected",
    "degrees",
    "distance",
    "distance_to_kernel",
    "elementwise_log",
    "factored_kernel",
    "get_measure",
    "graph_spectra",
    "karate_club",
    "kernel",
    "kernel_at_flat",
    "kernel_grid",
    "kernel_grids",
    "kernel_kmeans",
    "kernel_kmeans_core",
    "kernel_to_distance",
    "kernel_ward",
    "laplacian",
    "laplacian_pinv",
    "modularity",
    "native_parameter",
    "normalized_adjacency",
    "normalized_laplacian",
    "planted_partition",
    "reject_curve",
    "scale_parameter",
    "shortest_path_distances",
    "sigmoid_kernel",
    "spectral_radius",
    "stochastic_block_model",
    "transition_matrix",
    "volume",
    "walk_t_from_alpha",
]
