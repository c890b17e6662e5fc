"""Learning from label proportions with belief propagation (Havaldar et al., ICLR 2024).

Spec: ``shared/specs/llp_bp.md``. Labels are ``y ∈ {0, 1}``; each bag ``B`` carries its count
``c_B`` of positives. LLP-BP writes a Gibbs distribution with a kNN similarity term and a
quadratic bag-count penalty, runs loopy BP for the marginals ``P(y_i = 1)``, thresholds them
into pseudo-labels and trains an MLP on them (optionally refining the kNN graph on the MLP's
embeddings).

Modules:

- :mod:`~theorylab.llp.bags` -- :class:`BagLayout` (padded ``(num_bags, K_max)`` index/mask,
  counts), random and feature bags, validation.
- :mod:`~theorylab.llp.graph` -- exact blocked cosine kNN in JAX, Matérn-½ weights,
  :class:`KnnGraph` (directed edges with reverse index), user edge lists.
- :mod:`~theorylab.llp.messages` -- count-factor messages: exact log-space binary-tree DP,
  prefix/suffix DP, Gaussian (CLT) approximation, hard constraint.
- :mod:`~theorylab.llp.bp` -- :func:`loopy_bp` in count mode (one count factor per bag) or the
  paper's clique mode, damped flooding in ``lax.while_loop``, bag sharding; energies.
- :mod:`~theorylab.llp.models` -- Flax MLP + optax trainer shared by LLP-BP and the baselines
  (DLLP, proportion matching, EasyLLP, supervised).
- :mod:`~theorylab.llp.pipeline` -- :func:`llp_bp` (Algorithm 1) and the :class:`LLPBP` object.
- :mod:`~theorylab.llp.generators` -- synthetic Gaussian / XOR data and sklearn's bundled
  breast_cancer and digits; :mod:`~theorylab.llp.reference` -- NumPy float64 oracles
  (enumeration, clique-mode BP peer).
"""

from theorylab.llp.bags import (
    BagLayout,
    bag_counts,
    bag_mean,
    bag_proportions,
    feature_bags,
    make_layout,
    random_bags,
)
from theorylab.llp.bp import BPResult, energy_clique, energy_count, ising_parameters, loopy_bp
from theorylab.llp.generators import (
    LLPData,
    gaussian_bayes_auc,
    gaussian_classes,
    load_breast_cancer,
    load_digits,
    xor_clusters,
)
from theorylab.llp.graph import KnnGraph, cosine_knn, graph_from_edges, knn_graph, undirected_edges
from theorylab.llp.messages import count_log_potential, count_messages, poisson_binomial_log_pmf
from theorylab.llp.models import (
    DEFAULT_WIDTHS,
    LOSSES,
    MLP,
    PAPER_WIDTHS,
    TrainedModel,
    embed,
    predict_logits,
    predict_proba,
    train_llp_model,
)
from theorylab.llp.pipeline import LLPBP, LLPBPResult, RoundInfo, llp_bp, pseudo_labels

__all__ = [
    "DEFAULT_WIDTHS",
    "LLPBP",
    "LOSSES",
    "MLP",
    "PAPER_WIDTHS",
    "BPResult",
    "BagLayout",
    "KnnGraph",
    "LLPBPResult",
    "LLPData",
    "RoundInfo",
    "TrainedModel",
    "bag_counts",
    "bag_mean",
    "bag_proportions",
    "cosine_knn",
    "count_log_potential",
    "count_messages",
    "embed",
    "energy_clique",
    "energy_count",
    "feature_bags",
    "gaussian_bayes_auc",
    "gaussian_classes",
    "graph_from_edges",
    "ising_parameters",
    "knn_graph",
    "llp_bp",
    "load_breast_cancer",
    "load_digits",
    "loopy_bp",
    "make_layout",
    "poisson_binomial_log_pmf",
    "predict_logits",
    "predict_proba",
    "pseudo_labels",
    "random_bags",
    "train_llp_model",
    "undirected_edges",
    "xor_clusters",
]
