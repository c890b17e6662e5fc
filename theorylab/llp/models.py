"""Instance classifiers trained from bags: the LLP-BP MLP and the bag-loss baselines.

One Flax ``nnx`` MLP (ReLU hidden layers, a linear head with one logit) and one jit-compiled
optax trainer, :func:`train_llp_model`, shared by

- LLP-BP's embedding refinement and final classifier (spec §2): ``loss="pseudo"``, binary
  cross-entropy on (hard or soft) BP pseudo-labels, optionally plus ``agg_weight`` × the
  *aggregate-embedding* bag loss (released code's ``BPAggEmbModel``, weight 0.1): the embedding
  layer's outputs are mean-pooled over each bag, passed through Dense(64, ReLU) → Dense(1) and
  scored by binary cross-entropy against the bag proportion;
- ``loss="supervised"``: the same instance cross-entropy on true labels (an upper reference);
- the baselines of spec §4, all instance-level classifiers learned from bag proportions
  ``α_B = c_B / |B|``:

  - ``"dllp"`` (Ardehaly & Culotta 2017): ``BCE(α_B, mean_{i∈B} σ(f(x_i)))`` per bag;
  - ``"proportion"``: ``(α_B − mean_{i∈B} σ(f(x_i)))²`` per bag;
  - ``"easyllp"`` (Busa-Fekete, Choi, Dick, Gentile, Medina, "Easy learning from label
    proportions", NeurIPS 2023): per-instance soft label ``ỹ_i = K_B α_B − (K_B − 1) p̂`` with
    ``p̂`` the global positive rate, loss ``ỹ_i ℓ(f, 1) + (1 − ỹ_i) ℓ(f, 0)`` with the logistic
    losses ``ℓ(f, 1) = softplus(−f)``, ``ℓ(f, 0) = softplus(f)``. For bags drawn uniformly at
    random, ``E[ỹ_i | x_i, y_i] = y_i``, so the loss is an unbiased estimate of the
    instance-level risk. ``ỹ`` may lie outside [0, 1]; the loss is then not bounded below
    (a property of the method), so early stopping matters.

Training (one ``jax.jit`` call, the pattern of the other theorylab trainers):

- the nnx modules are split (``nnx.split``) into static ``GraphDef``s and parameter pytrees,
  raveled into one flat vector for the optimiser (``jax.flatten_util.ravel_pytree``: fewer
  kernels, shorter compilation) and merged back (``nnx.merge``) inside the loss;
- minibatches are groups of whole bags (``bags_per_batch``, by default ``batch_size // K_max``
  so that a minibatch holds about ``batch_size`` = 1024 instances, the paper's batch size):
  bag-shaped ``(bags_per_batch, K_max, d)`` inputs with the layout's mask, so bag losses and
  instance losses share one code path. Every epoch draws a fresh permutation of the bags; the
  last minibatch is padded with masked bags;
- epochs run in a ``lax.while_loop``, minibatches in a ``lax.scan``; ``optax.adamw``
  (learning rate 1e-3, weight decay 0 = Adam: the paper's setting);
- after every epoch a validation criterion is computed: the instance-level ROC-AUC on
  ``(X_val, y_val)`` (the paper's protocol, maximised), or the DLLP bag loss on a validation
  bag layout (bag labels only, minimised), or none. Early stopping as Keras'
  ``EarlyStopping(patience=4, min_delta=1e-4, restore_best_weights=True)``: an epoch improves
  when it beats the best value so far by more than ``min_delta``; training stops after
  ``patience`` epochs without improvement and the parameters of the best epoch are returned
  (also when the epoch budget runs out first). Unrun epochs show NaN in the history.

Instances are standardised with the training mean and standard deviation, which are stored in
the returned :class:`TrainedModel` and applied by :func:`predict_logits`,
:func:`predict_proba` and :func:`embed`.

Embedding layer: ``embed(model, X)`` returns the post-ReLU output of hidden layer ``layer``
(Python indexing over the hidden layers; default the second-to-last hidden layer, which for
the paper's 5040-1280-320-128-64 trunk is the 128-unit layer used by the released code, and
for :data:`DEFAULT_WIDTHS` = (128, 64) also a 128-unit layer). The aggregate head pools the
same layer. (The released ``BPAggEmbModel`` also feeds that layer straight into its instance
head, skipping the 64-unit layer; here the instance head always sees the whole trunk.)

Dtype: float32 throughout (features, targets and parameters are cast). Everything is
deterministic given the key. Cost: O(epochs · n · P) time for P weights; memory
O(batch · max width) for training, validation and prediction run in chunks of 8192 rows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.flatten_util import ravel_pytree

from theorylab.core.checks import (
    check_array,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_key,
    describe,
    is_concrete,
)
from theorylab.core.metrics import roc_auc

__all__ = [
    "DEFAULT_WIDTHS",
    "LOSSES",
    "MLP",
    "PAPER_WIDTHS",
    "AggregateHead",
    "TrainedModel",
    "TrainingHistory",
    "default_embed_layer",
    "dllp_loss",
    "easyllp_loss",
    "easyllp_soft_labels",
    "embed",
    "instance_bce",
    "llp_batch_loss",
    "predict_logits",
    "predict_proba",
    "proportion_loss",
    "train_llp_model",
]

_DTYPE = jnp.float32
_CHUNK = 8192  # rows per chunk for validation / prediction passes

#: The released code's trunk (``BaseHardMLPModel``): 5040-1280-320-128-64, ReLU.
PAPER_WIDTHS = (5040, 1280, 320, 128, 64)
#: Small CPU-friendly default; its default embedding layer is 128 units wide like the paper's.
DEFAULT_WIDTHS = (128, 64)
#: Loss names accepted by :func:`train_llp_model` and :func:`llp_batch_loss`.
LOSSES = ("pseudo", "supervised", "dllp", "proportion", "easyllp")
_CRITERIA = ("auc", "bags", "none")


# --------------------------------------------------------------------------- modules


def default_embed_layer(widths) -> int:
    """Default embedding layer for hidden ``widths``: the second-to-last (the last if only one).

    For :data:`PAPER_WIDTHS` this is layer 3, the 128-unit layer of the released code.
    """
    widths = tuple(widths)
    if not widths:
        raise ValueError("an MLP without hidden layers (widths=()) has no embedding layer")
    return max(len(widths) - 2, 0)


def _normalize_layer(layer, widths, name: str = "layer") -> int:
    num = len(widths)
    if num == 0:
        raise ValueError(f"{name}: an MLP without hidden layers (widths=()) has no embedding")
    if layer is None:
        return default_embed_layer(widths)
    layer = check_int(layer, name, min_value=-num, max_value=num - 1)
    return layer % num


class MLP(nnx.Module):
    """ReLU MLP ``in_features -> widths... -> 1`` logit (spec §2, ``BaseHardMLPModel``).

    ``widths=()`` gives logistic regression. Parameters use the ``nnx.Linear`` defaults
    (LeCun-normal kernels, zero biases). Calls take already standardised inputs of shape
    ``(..., in_features)``.
    """

    def __init__(self, in_features: int, widths: tuple[int, ...] = DEFAULT_WIDTHS, *, rngs):
        self.widths = tuple(int(w) for w in widths)
        sizes = (int(in_features), *self.widths)
        self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])
        self.head = nnx.Linear(sizes[-1], 1, rngs=rngs)

    def __call__(self, x):
        """Logits, shape ``x.shape[:-1]``."""
        for layer in self.hidden:
            x = jax.nn.relu(layer(x))
        return self.head(x)[..., 0]

    def embed(self, x, layer: int | None = None):
        """Post-ReLU output of hidden layer ``layer`` (default :func:`default_embed_layer`)."""
        layer = _normalize_layer(layer, self.widths)
        for hidden in self.hidden[: layer + 1]:
            x = jax.nn.relu(hidden(x))
        return x

    def logits_and_embedding(self, x, layer: int):
        """``(logits, embedding of hidden layer layer)`` in one forward pass."""
        emb = None
        for i, hidden in enumerate(self.hidden):
            x = jax.nn.relu(hidden(x))
            if i == layer:
                emb = x
        return self.head(x)[..., 0], emb


class AggregateHead(nnx.Module):
    """Bag head of the aggregate-embedding loss: Dense(width, ReLU) -> Dense(1) logit.

    Input: mean-pooled instance embeddings ``(..., in_features)``; output: bag logits
    ``(...)`` whose sigmoid predicts the bag proportion (spec §2, ``BPAggEmbModel``).
    """

    def __init__(self, in_features: int, width: int = 64, *, rngs):
        self.hidden = nnx.Linear(int(in_features), int(width), rngs=rngs)
        self.out = nnx.Linear(int(width), 1, rngs=rngs)

    def __call__(self, pooled):
        return self.out(jax.nn.relu(self.hidden(pooled)))[..., 0]


# --------------------------------------------------------------------------- losses


def _masked_mean(values, mask):
    m = mask.astype(values.dtype)
    return jnp.sum(values * m) / jnp.maximum(jnp.sum(m), 1.0)


def _bag_valid(mask):
    return jnp.any(mask, axis=-1)


def _proportions(counts, mask):
    sizes = jnp.sum(mask, axis=-1).astype(_DTYPE)
    return counts.astype(_DTYPE) / jnp.maximum(sizes, 1.0)


def instance_bce(logits, targets, mask):
    """Mean binary cross-entropy with logits over the real slots of a padded batch.

    ``t softplus(−z) + (1 − t) softplus(z)`` averaged over ``mask``; ``targets`` may be soft
    (in [0, 1]). Shapes: ``logits``, ``targets``, ``mask`` broadcastable, e.g. ``(bags, K)``.
    Returns 0 when the mask is empty.
    """
    per = optax.sigmoid_binary_cross_entropy(logits, targets.astype(logits.dtype))
    return _masked_mean(per, mask)


def _log_mean_probs(logits, mask):
    """``log mean_{i∈B} σ(z_i)`` and ``log mean_{i∈B} (1 − σ(z_i))`` per bag, stably."""
    valid = _bag_valid(mask)
    # Empty bags use all (finite, padded) slots so the result stays finite; callers drop them.
    use = mask | ~valid[..., None]
    size = jnp.sum(use, axis=-1).astype(logits.dtype)
    neg_inf = jnp.asarray(-jnp.inf, logits.dtype)
    log_p = jax.nn.logsumexp(jnp.where(use, jax.nn.log_sigmoid(logits), neg_inf), axis=-1)
    log_q = jax.nn.logsumexp(jnp.where(use, jax.nn.log_sigmoid(-logits), neg_inf), axis=-1)
    return log_p - jnp.log(size), log_q - jnp.log(size)


def dllp_loss(logits, mask, proportions):
    """DLLP bag loss: mean over bags of ``BCE(α_B, mean_{i∈B} σ(z_i))`` (Ardehaly & Culotta 2017).

    Args:
      logits: ``(bags, K)`` instance logits (padded slots arbitrary but finite).
      mask: ``(bags, K)`` bool, True for real members.
      proportions: ``(bags,)`` bag proportions ``α_B`` in [0, 1].

    Returns:
      scalar; bags with no members are ignored (0 if there are none). The log of the mean
      probability is a log-sum-exp of ``log σ(z_i)``, so it is exact for saturated logits; for
      ``K = 1`` it equals :func:`instance_bce` with targets ``α``. O(bags · K).
    """
    log_p, log_q = _log_mean_probs(logits, mask)
    alpha = proportions.astype(logits.dtype)
    per_bag = -(alpha * log_p + (1.0 - alpha) * log_q)
    return _masked_mean(per_bag, _bag_valid(mask))


def proportion_loss(logits, mask, proportions):
    """Proportion matching: mean over bags of ``(α_B − mean_{i∈B} σ(z_i))²``.

    Same arguments as :func:`dllp_loss`; zero iff every bag's mean prediction equals ``α_B``.
    """
    probs = jax.nn.sigmoid(logits)
    m = mask.astype(logits.dtype)
    mean = jnp.sum(probs * m, axis=-1) / jnp.maximum(jnp.sum(m, axis=-1), 1.0)
    per_bag = (proportions.astype(logits.dtype) - mean) ** 2
    return _masked_mean(per_bag, _bag_valid(mask))


def easyllp_soft_labels(proportions, sizes, prior):
    """EasyLLP soft labels ``ỹ_B = K_B α_B − (K_B − 1) p̂`` (Busa-Fekete et al. 2023).

    Args:
      proportions: ``(bags,)`` bag proportions ``α_B``.
      sizes: ``(bags,)`` bag sizes ``K_B``.
      prior: ``p̂``, the global positive rate (scalar).

    Returns:
      ``(bags,)`` soft label shared by all members of each bag (may lie outside [0, 1]). For
      bags of iid draws from a population with positive rate ``p̂``, ``E[ỹ | y_i] = y_i``;
      with ``p̂ = Σ c_B / Σ K_B`` the (unweighted) mean of ``ỹ_B`` over the bags equals ``p̂``
      exactly, whatever the sizes.
    """
    sizes = jnp.asarray(sizes).astype(_DTYPE)
    return sizes * jnp.asarray(proportions, _DTYPE) - (sizes - 1.0) * jnp.asarray(prior, _DTYPE)


def easyllp_loss(logits, mask, proportions, prior):
    """EasyLLP loss: mean over instances of ``ỹ softplus(−z) + (1 − ỹ) softplus(z)``.

    Args:
      logits, mask, proportions: as in :func:`dllp_loss`.
      prior: global positive rate ``p̂`` (scalar).

    Returns:
      scalar mean over the real instances (0 if there are none). With ``K = 1`` this is
      :func:`instance_bce` with targets ``α``.
    """
    sizes = jnp.sum(mask, axis=-1)
    soft = easyllp_soft_labels(proportions, sizes, prior).astype(logits.dtype)[..., None]
    per = soft * jax.nn.softplus(-logits) + (1.0 - soft) * jax.nn.softplus(logits)
    return _masked_mean(per, mask)


def _aggregate_bce(head, embeddings, mask, proportions):
    m = mask.astype(embeddings.dtype)[..., None]
    pooled = jnp.sum(embeddings * m, axis=-2) / jnp.maximum(jnp.sum(m, axis=-2), 1.0)
    bag_logits = head(pooled)
    per_bag = optax.sigmoid_binary_cross_entropy(bag_logits, proportions.astype(pooled.dtype))
    return _masked_mean(per_bag, _bag_valid(mask))


def llp_batch_loss(
    loss: str,
    mlp: MLP,
    x,
    mask,
    proportions,
    *,
    targets=None,
    agg_head: AggregateHead | None = None,
    agg_weight=0.0,
    prior=None,
    embed_layer: int | None = None,
):
    """Training objective of :func:`train_llp_model` on one bag-shaped minibatch.

    Args:
      loss: one of :data:`LOSSES`.
      mlp: the :class:`MLP`.
      x: ``(bags, K, d)`` standardised inputs (padded slots arbitrary but finite).
      mask: ``(bags, K)`` bool.
      proportions: ``(bags,)`` ``α_B`` (unused by ``"supervised"``, and by ``"pseudo"`` when
        ``agg_weight`` is 0 or there is no ``agg_head``).
      targets: ``(bags, K)`` instance targets for ``"pseudo"`` / ``"supervised"``.
      agg_head: :class:`AggregateHead` for ``"pseudo"`` (optional).
      agg_weight: weight of the aggregate bag loss (``"pseudo"`` only; may be traced).
      prior: ``p̂`` for ``"easyllp"``.
      embed_layer: hidden layer pooled by the aggregate head (default
        :func:`default_embed_layer`).

    Returns:
      scalar loss. ``"pseudo"``: ``instance_bce + agg_weight · BCE(α_B, σ(head(mean-pooled
      embeddings)))``; the aggregate term's gradient is exactly 0 when ``agg_weight == 0``.
    """
    if loss in ("pseudo", "supervised"):
        if targets is None:
            raise ValueError(f"loss={loss!r} needs targets")
        if loss == "pseudo" and agg_head is not None:
            layer = _normalize_layer(embed_layer, mlp.widths, "embed_layer")
            logits, emb = mlp.logits_and_embedding(x, layer)
            bag_term = _aggregate_bce(agg_head, emb, mask, proportions)
            return instance_bce(logits, targets, mask) + agg_weight * bag_term
        return instance_bce(mlp(x), targets, mask)
    logits = mlp(x)
    if loss == "dllp":
        return dllp_loss(logits, mask, proportions)
    if loss == "proportion":
        return proportion_loss(logits, mask, proportions)
    if loss == "easyllp":
        if prior is None:
            raise ValueError("loss='easyllp' needs prior")
        return easyllp_loss(logits, mask, proportions, prior)
    raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}; got {loss!r}")


# --------------------------------------------------------------------------- results


class TrainingHistory(NamedTuple):
    """Per-epoch record of :func:`train_llp_model`.

    Attributes:
      train_loss: ``(epochs,)`` mean minibatch loss during each epoch (a running average over
        the epoch's minibatches, weighted by their real instances, or real bags for the
        bag losses); NaN for epochs not run.
      val_metric: ``(epochs,)`` validation criterion after each epoch (AUC, or the DLLP
        validation bag loss); NaN for unrun epochs and without validation.
      best_epoch: 0-based index of the returned epoch (int32); the last epoch run without
        validation; ``-1`` if no epoch had a finite validation value (the initial parameters
        are returned).
      best_val: validation criterion of the returned epoch (NaN without validation or if none
        was finite).
      epochs_run: number of epochs trained (< ``epochs`` when early stopping triggered).
    """

    train_loss: jax.Array
    val_metric: jax.Array
    best_epoch: jax.Array
    best_val: jax.Array
    epochs_run: jax.Array


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["params", "mean", "scale", "history"],
    meta_fields=["graphdef", "criterion"],
)
@dataclass(frozen=True)
class TrainedModel:
    """A trained instance classifier (a pytree; ``graphdef`` and ``criterion`` are static).

    Attributes:
      graphdef: ``flax.nnx`` graph definition of the :class:`MLP`.
      params: its parameter ``nnx.State`` (best validation epoch).
      mean, scale: ``(d,)`` standardisation ``(x − mean) / scale`` (training mean and standard
        deviation; 0 and 1 with ``standardize=False``; constant features get scale 1).
      history: :class:`TrainingHistory`.
      criterion: ``"auc"`` (instance validation AUC, maximised), ``"bags"`` (validation DLLP
        bag loss, minimised) or ``"none"``.
    """

    graphdef: Any
    params: Any
    mean: jax.Array
    scale: jax.Array
    history: TrainingHistory
    criterion: str = "none"

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden widths of the MLP."""
        return nnx.merge(self.graphdef, self.params).widths

    def module(self) -> MLP:
        """The trained :class:`MLP` (expects standardised inputs: ``(x − mean) / scale``)."""
        return nnx.merge(self.graphdef, self.params)


# --------------------------------------------------------------------------- training core


def _map_rows(fn, x, chunk: int = _CHUNK):
    """``fn`` over the rows of ``x`` in chunks (``lax.map``) to bound memory."""
    n = x.shape[0]
    if n <= chunk:
        return fn(x)
    num = -(-n // chunk)
    padded = jnp.pad(x, ((0, num * chunk - n), (0, 0)))
    out = jax.lax.map(fn, padded.reshape(num, chunk, x.shape[1]))
    return jax.tree.map(lambda o: o.reshape(num * chunk, *o.shape[2:])[:n], out)


class _Carry(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array
    epoch: jax.Array
    best_params: Any
    best_score: jax.Array
    best_val: jax.Array
    best_epoch: jax.Array
    stop: jax.Array
    train_hist: jax.Array
    val_hist: jax.Array


def _train_core(
    key,
    x,
    index,
    mask,
    counts,
    targets,
    x_val,
    y_val,
    val_index,
    val_mask,
    val_counts,
    learning_rate,
    weight_decay,
    agg_weight,
    prior,
    patience,
    min_delta,
    standardize,
    *,
    loss: str,
    widths: tuple[int, ...],
    embed_layer: int,
    use_agg: bool,
    epochs: int,
    bags_per_batch: int,
    criterion: str,
) -> TrainedModel:
    dim = x.shape[1]
    num_bags = index.shape[0]
    num_batches = -(-num_bags // bags_per_batch)
    padded = num_batches * bags_per_batch

    std = jnp.std(x, axis=0)
    mean = jnp.where(standardize, jnp.mean(x, axis=0), 0.0)
    scale = jnp.where(standardize & (std > 0), std, 1.0)
    xs = (x - mean) / scale
    proportions = _proportions(counts, mask)

    mlp_key, agg_key, key = jax.random.split(key, 3)
    mlp_def, mlp_params = nnx.split(MLP(dim, widths, rngs=nnx.Rngs(mlp_key)))
    if use_agg:
        agg_def, agg_params = nnx.split(
            AggregateHead(widths[embed_layer], 64, rngs=nnx.Rngs(agg_key))
        )
    else:
        agg_def, agg_params = None, None
    # One flat parameter vector: fewer, larger kernels for the optimiser and the best-epoch
    # bookkeeping (shorter compile), the nnx State is rebuilt inside the loss.
    params, unravel = ravel_pytree({"mlp": mlp_params, "agg": agg_params})

    optimizer = optax.adamw(learning_rate, weight_decay=weight_decay)
    bag_level = loss in ("dllp", "proportion")

    def batch_loss(flat, xb, mb, pb, tb):
        p = unravel(flat)
        mlp = nnx.merge(mlp_def, p["mlp"])
        head = nnx.merge(agg_def, p["agg"]) if use_agg else None
        return llp_batch_loss(
            loss, mlp, xb, mb, pb, targets=tb, agg_head=head, agg_weight=agg_weight,
            prior=prior, embed_layer=embed_layer,
        )

    grad_fn = jax.value_and_grad(batch_loss)

    def step(state, batch):
        p, opt_state = state
        bag_ids, real = batch
        idx = index[bag_ids]
        mb = mask[bag_ids] & real[:, None]
        weight = jnp.sum(_bag_valid(mb) if bag_level else mb).astype(_DTYPE)
        value, grads = grad_fn(p, xs[idx], mb, proportions[bag_ids], targets[idx])
        updates, new_opt = optimizer.update(grads, opt_state, p)
        new_p = optax.apply_updates(p, updates)
        # A minibatch without real members (only possible with empty bags) changes nothing.
        keep = weight > 0
        p, opt_state = jax.tree.map(
            lambda a, b: jnp.where(keep, a, b), (new_p, new_opt), (p, opt_state)
        )
        return (p, opt_state), (value * weight, weight)

    def val_metric(flat):
        mlp = nnx.merge(mlp_def, unravel(flat)["mlp"])
        if criterion == "none":
            return jnp.asarray(jnp.nan, _DTYPE)
        logits = _map_rows(mlp, (x_val - mean) / scale)
        if criterion == "auc":
            return roc_auc(y_val, logits)
        return dllp_loss(logits[val_index], val_mask, _proportions(val_counts, val_mask))

    sign = 1.0 if criterion == "auc" else -1.0

    def epoch_body(c: _Carry) -> _Carry:
        key, perm_key = jax.random.split(c.key)
        perm = jax.random.permutation(perm_key, num_bags).astype(jnp.int32)
        ids = jnp.concatenate([perm, jnp.zeros(padded - num_bags, dtype=jnp.int32)])
        real = jnp.arange(padded) < num_bags
        batches = (
            ids.reshape(num_batches, bags_per_batch),
            real.reshape(num_batches, bags_per_batch),
        )
        (params, opt_state), (sums, weights) = jax.lax.scan(
            step, (c.params, c.opt_state), batches
        )
        train_loss = jnp.sum(sums) / jnp.maximum(jnp.sum(weights), 1.0)
        val = val_metric(params)
        if criterion == "none":
            improved = jnp.array(True)
            score = jnp.asarray(jnp.nan, _DTYPE)
        else:
            score = sign * val
            improved = score > c.best_score + min_delta  # False for NaN
        best_params = jax.tree.map(
            lambda new, old: jnp.where(improved, new, old), params, c.best_params
        )
        best_epoch = jnp.where(improved, c.epoch, c.best_epoch)
        return _Carry(
            params=params,
            opt_state=opt_state,
            key=key,
            epoch=c.epoch + 1,
            best_params=best_params,
            best_score=jnp.where(improved, score, c.best_score),
            best_val=jnp.where(improved, val, c.best_val),
            best_epoch=best_epoch,
            stop=c.epoch - best_epoch >= patience,
            train_hist=c.train_hist.at[c.epoch].set(train_loss),
            val_hist=c.val_hist.at[c.epoch].set(val),
        )

    def keep_going(c: _Carry):
        return (c.epoch < epochs) & ~c.stop

    nan_hist = jnp.full((epochs,), jnp.nan, dtype=_DTYPE)
    init = _Carry(
        params=params,
        opt_state=optimizer.init(params),
        key=key,
        epoch=jnp.int32(0),
        best_params=params,
        best_score=jnp.asarray(-jnp.inf, _DTYPE),
        best_val=jnp.asarray(jnp.nan, _DTYPE),
        best_epoch=jnp.int32(-1),
        stop=jnp.array(False),
        train_hist=nan_hist,
        val_hist=nan_hist,
    )
    final = jax.lax.while_loop(keep_going, epoch_body, init)
    history = TrainingHistory(
        train_loss=final.train_hist,
        val_metric=final.val_hist,
        best_epoch=final.best_epoch,
        best_val=final.best_val,
        epochs_run=final.epoch,
    )
    return TrainedModel(
        graphdef=mlp_def,
        params=unravel(final.best_params)["mlp"],
        mean=mean,
        scale=scale,
        history=history,
        criterion=criterion,
    )


_train_jit = jax.jit(
    _train_core,
    static_argnames=(
        "loss", "widths", "embed_layer", "use_agg", "epochs", "bags_per_batch", "criterion",
    ),
)


# --------------------------------------------------------------------------- public trainer


def train_llp_model(
    key,
    X,
    layout=None,
    *,
    loss: str = "pseudo",
    targets=None,
    agg_weight: float = 0.0,
    widths=DEFAULT_WIDTHS,
    embed_layer: int | None = None,
    epochs: int = 100,
    batch_size: int = 1024,
    bags_per_batch: int | None = None,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int | None = 4,
    min_delta: float = 1e-4,
    validation=None,
    prior: float | None = None,
    standardize: bool = True,
) -> TrainedModel:
    """Train an MLP instance classifier from bags (spec §2 refinement/final model, §4 baselines).

    See the module docstring for the losses and the training loop.

    Args:
      key: PRNG key (initialisation of the MLP and the aggregate head, bag order per epoch).
      X: ``(n, d)`` real finite features (cast to float32).
      layout: a :class:`~theorylab.llp.bags.BagLayout` over the ``n`` rows of ``X`` (fields
        ``index``, ``mask``, ``counts``, ``sizes``, ``bag_of``). Only instances in some bag are
        trained on; empty (padding) bags are dropped. ``None`` (``"pseudo"`` with
        ``agg_weight=0`` and ``"supervised"`` only) makes every instance its own bag.
      loss: ``"pseudo"`` (default), ``"supervised"``, ``"dllp"``, ``"proportion"`` or
        ``"easyllp"`` (:data:`LOSSES`).
      targets: ``(n,)`` instance targets in [0, 1] (hard pseudo-labels, BP marginals or true
        labels); required by ``"pseudo"`` and ``"supervised"``, not accepted otherwise.
      agg_weight: weight of the aggregate-embedding bag loss (``"pseudo"`` only; >= 0; the
        paper's value is 0.1; default 0).
      widths: hidden widths (static tuple of positive ints; ``()`` is logistic regression).
        :data:`DEFAULT_WIDTHS` = (128, 64); :data:`PAPER_WIDTHS` for the paper's trunk.
      embed_layer: hidden layer pooled by the aggregate head (default
        :func:`default_embed_layer`).
      epochs: maximum number of epochs (>= 1; default 100 as the paper).
      batch_size: instances per minibatch (default 1024 as the paper); minibatches hold
        ``max(1, batch_size // K_max)`` whole bags.
      bags_per_batch: bags per minibatch (overrides ``batch_size``).
      learning_rate: AdamW step size (> 0; default 1e-3).
      weight_decay: AdamW decoupled weight decay (>= 0; default 0 = Adam).
      patience: stop after this many epochs without improvement (>= 1; default 4), or
        ``None`` to run all epochs (the best epoch is still returned).
      min_delta: minimal improvement of the validation criterion (>= 0; default 1e-4).
      validation: ``None`` (train ``epochs`` epochs, return the last); ``(X_val, y_val)``
        with binary ``y_val`` containing both classes: instance ROC-AUC, maximised (the
        paper's protocol); ``(X_val, layout_val)`` (or ``("bags", X_val, layout_val)``) with
        a bag layout over the rows of ``X_val``: the DLLP bag loss, minimised (needs bag
        labels only).
      prior: ``p̂`` for ``"easyllp"`` in (0, 1); default ``Σ c_B / Σ |B|`` over the layout.
      standardize: standardise features with the training mean / standard deviation.

    Returns:
      :class:`TrainedModel`; use :func:`predict_proba`, :func:`predict_logits`,
      :func:`embed`. Deterministic given ``key``.

    Raises:
      TypeError: wrong argument types (non-array ``X``, non-layout ``layout``, a bad key).
      ValueError: unknown ``loss``, ``targets`` missing / not allowed / of the wrong shape or
        outside [0, 1], ``agg_weight < 0`` or ``> 0`` with a loss other than ``"pseudo"``,
        bag counts outside ``[0, |B|]``, index out of range, no non-empty bag, out-of-range
        options, a malformed ``validation``.

    Cost: O(epochs · Σ_B K_max · P) time with P the number of weights (padded slots are
    computed and masked), memory O(bags_per_batch · K_max · max(width, d)).
    """
    key = check_key(key)
    X = _check_features(X, "X")
    n, dim = X.shape
    loss = check_choice(loss, "loss", LOSSES)
    widths = _check_widths(widths)
    agg_weight = check_float(agg_weight, "agg_weight", min_value=0.0)
    if agg_weight > 0 and loss != "pseudo":
        raise ValueError(f"agg_weight > 0 is only used with loss='pseudo'; got loss={loss!r}")
    use_agg = loss == "pseudo" and layout is not None and len(widths) > 0
    if agg_weight > 0 and layout is None:
        raise ValueError("agg_weight > 0 needs a bag layout (layout=None given)")
    if agg_weight > 0 and not widths:
        raise ValueError("agg_weight > 0 needs at least one hidden layer (widths=() given)")
    layer = _normalize_layer(embed_layer, widths, "embed_layer") if widths else 0

    needs_targets = loss in ("pseudo", "supervised")
    if needs_targets:
        if targets is None:
            raise ValueError(f"loss={loss!r} needs targets: (n,) instance targets in [0, 1]")
        targets = check_array(targets, "targets", shape=(n,), kind="numeric", finite=True)
        if is_concrete(targets):
            host = np.asarray(targets, dtype=np.float64)
            if host.size and (host.min() < 0 or host.max() > 1):
                raise ValueError(
                    f"targets must lie in [0, 1]; got values in [{host.min():.3g}, "
                    f"{host.max():.3g}]"
                )
        targets = targets.astype(_DTYPE)
    elif targets is not None:
        raise ValueError(
            f"targets are only used by loss='pseudo' or 'supervised'; got loss={loss!r} "
            "(bag labels come from the layout)"
        )
    else:
        targets = jnp.zeros((n,), _DTYPE)

    if layout is None:
        if loss not in ("pseudo", "supervised"):
            raise ValueError(f"loss={loss!r} needs a bag layout; got layout=None")
        index = jnp.arange(n, dtype=jnp.int32)[:, None]
        mask = jnp.ones((n, 1), dtype=bool)
        counts = jnp.zeros((n,), _DTYPE)
    else:
        index, mask, counts = _check_layout(layout, "layout", n)

    if prior is not None:
        if loss != "easyllp":
            raise ValueError(f"prior is only used by loss='easyllp'; got loss={loss!r}")
        prior = check_float(prior, "prior", min_value=0.0, max_value=1.0,
                            min_inclusive=False, max_inclusive=False)
    elif loss == "easyllp":
        prior = float(np.sum(np.asarray(counts)) / max(float(np.sum(np.asarray(mask))), 1.0))
    else:
        prior = 0.5  # unused

    epochs = check_int(epochs, "epochs", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    num_bags, k_max = index.shape
    if bags_per_batch is None:
        bags_per_batch = max(1, batch_size // k_max)
    else:
        bags_per_batch = check_int(bags_per_batch, "bags_per_batch", min_value=1)
    bags_per_batch = min(bags_per_batch, num_bags)
    learning_rate = check_float(learning_rate, "learning_rate", min_value=0.0,
                                min_inclusive=False)
    weight_decay = check_float(weight_decay, "weight_decay", min_value=0.0)
    if patience is not None:
        patience = check_int(patience, "patience", min_value=1)
    min_delta = check_float(min_delta, "min_delta", min_value=0.0)
    standardize = check_bool(standardize, "standardize")
    criterion, val_arrays = _check_validation(validation, dim)

    return _train_jit(
        key,
        X,
        index,
        mask,
        counts,
        targets,
        *val_arrays,
        jnp.asarray(learning_rate, _DTYPE),
        jnp.asarray(weight_decay, _DTYPE),
        jnp.asarray(agg_weight, _DTYPE),
        jnp.asarray(prior, _DTYPE),
        jnp.int32(epochs + 1 if patience is None else patience),
        jnp.asarray(min_delta, _DTYPE),
        jnp.asarray(standardize),
        loss=loss,
        widths=widths,
        embed_layer=layer,
        use_agg=use_agg,
        epochs=epochs,
        bags_per_batch=bags_per_batch,
        criterion=criterion,
    )


# --------------------------------------------------------------------------- inference


@partial(jax.jit, static_argnames=("what", "layer"))
def _apply(model: TrainedModel, x, what: str, layer: int):
    mlp = nnx.merge(model.graphdef, model.params)
    xs = (x - model.mean) / model.scale
    if what == "embed":
        return _map_rows(lambda rows: mlp.embed(rows, layer), xs)
    return _map_rows(mlp, xs)


def _check_model(model, X):
    if not isinstance(model, TrainedModel):
        raise TypeError(f"model must be a TrainedModel from train_llp_model; got {describe(model)}")
    if model.mean.ndim != 1:
        raise ValueError(
            "model holds a batch of models (e.g. from vmap); apply the prediction under the "
            "same vmap"
        )
    return _check_features(X, "X", dim=model.mean.shape[0])


def predict_logits(model: TrainedModel, X):
    """``(n,)`` float32 logits ``f(x)`` of a trained model (features standardised as in training).

    O(n · P); rows are processed in chunks of 8192.
    """
    X = _check_model(model, X)
    return _apply(model, X, "logits", 0)


def predict_proba(model: TrainedModel, X):
    """``(n,)`` float32 probabilities ``P(y = 1 | x) = σ(f(x))`` of a trained model."""
    return jax.nn.sigmoid(predict_logits(model, X))


def embed(model: TrainedModel, X, layer: int | None = None):
    """``(n, widths[layer])`` post-ReLU activations of hidden layer ``layer`` (spec §2).

    Args:
      model: a :class:`TrainedModel`.
      X: ``(n, d)`` features (standardised with the stored training statistics).
      layer: hidden-layer index (negative values count from the last hidden layer); default
        :func:`default_embed_layer`, the second-to-last hidden layer (the 128-unit layer of
        the paper's 5040-1280-320-128-64 trunk).

    Returns:
      float32 array; used by LLP-BP as the refined covariates for the next kNN graph.
    """
    X = _check_model(model, X)
    layer = _normalize_layer(layer, model.widths)
    return _apply(model, X, "embed", layer)


# --------------------------------------------------------------------------- validation


def _check_features(x, name: str, *, dim: int | None = None):
    x = check_array(x, name, ndim=2, kind="real", finite=True)
    if x.shape[0] < 1:
        raise ValueError(f"{name} must have at least one row; got {describe(x)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (features); got {describe(x)}")
    return x.astype(_DTYPE)


def _check_widths(widths) -> tuple[int, ...]:
    if isinstance(widths, (int, np.integer, str)) or not hasattr(widths, "__iter__"):
        raise TypeError(f"widths must be a tuple of hidden-layer widths; got {describe(widths)}")
    return tuple(check_int(w, "widths[i]", min_value=1) for w in widths)


def _is_layout(obj) -> bool:
    return all(hasattr(obj, f) for f in ("index", "mask", "counts", "sizes", "bag_of"))


def _check_layout(layout, name: str, n: int):
    """Validate a bag layout over ``n`` instances; drop empty bags; return index, mask, counts."""
    if not _is_layout(layout):
        raise TypeError(
            f"{name} must be a BagLayout (theorylab.llp.bags.make_layout); got {describe(layout)}"
        )
    index = check_array(layout.index, f"{name}.index", ndim=2, kind="int")
    num_bags = index.shape[0]
    mask = check_array(layout.mask, f"{name}.mask", shape=index.shape, kind="bool")
    counts = check_array(layout.counts, f"{name}.counts", shape=(num_bags,), kind="real",
                         finite=True)
    bag_of = check_array(layout.bag_of, f"{name}.bag_of", ndim=1, kind="int")
    if bag_of.shape[0] != n:
        raise ValueError(
            f"{name} must describe the {n} rows of the features (bag_of has "
            f"{bag_of.shape[0]} entries)"
        )
    if index.shape[1] < 1:
        raise ValueError(f"{name}.index must have at least one slot per bag; got {describe(index)}")
    if is_concrete(index) and is_concrete(mask) and is_concrete(counts):
        idx, msk, cnt = np.asarray(index), np.asarray(mask), np.asarray(counts, np.float64)
        sizes = msk.sum(axis=1)
        keep = sizes > 0
        if not np.any(keep):
            raise ValueError(f"{name} has no non-empty bag")
        real = idx[msk]
        if real.size and (real.min() < 0 or real.max() >= n):
            raise ValueError(
                f"{name}.index must hold instance indices in [0, {n}); got values in "
                f"[{real.min()}, {real.max()}]"
            )
        if np.any(cnt < -1e-6) or np.any(cnt > sizes + 1e-6):
            raise ValueError(f"{name}.counts must lie in [0, bag size]")
        if not np.all(keep):
            index, mask, counts = index[keep], mask[keep], counts[keep]
    index = jnp.where(mask, index, 0).astype(jnp.int32)
    return index, mask, jnp.clip(counts.astype(_DTYPE), 0.0, None)


def _check_validation(validation, dim: int):
    """Return the static criterion and the five validation arrays of the jitted core."""
    dummy = (
        jnp.zeros((1, dim), _DTYPE),
        jnp.zeros((1,), bool),
        jnp.zeros((1, 1), jnp.int32),
        jnp.zeros((1, 1), bool),
        jnp.zeros((1,), _DTYPE),
    )
    if validation is None:
        return "none", dummy
    if not isinstance(validation, (tuple, list)):
        raise TypeError(
            "validation must be None, (X_val, y_val) or (X_val, layout_val); got "
            f"{describe(validation)}"
        )
    if len(validation) == 3 and isinstance(validation[0], str):
        check_choice(validation[0], "validation[0]", ("bags",))
        validation = tuple(validation[1:])
    if len(validation) != 2:
        raise ValueError(
            "validation must be (X_val, y_val) or (X_val, layout_val); got a sequence of "
            f"length {len(validation)}"
        )
    x_val = _check_features(validation[0], "X_val", dim=dim)
    second = validation[1]
    if _is_layout(second):
        index, mask, counts = _check_layout(second, "layout_val", x_val.shape[0])
        return "bags", (x_val, dummy[1], index, mask, counts)
    y_val = check_array(second, "y_val", shape=(x_val.shape[0],), kind="numeric")
    if is_concrete(y_val):
        host = np.asarray(y_val)
        if not np.all(np.isin(np.unique(host), [0, 1])):
            raise ValueError("y_val must contain only 0/1 (or bool) labels")
        if np.unique(host).size < 2:
            raise ValueError("y_val must contain both classes (the validation AUC needs them)")
    return "auc", (x_val, y_val.astype(bool), dummy[2], dummy[3], dummy[4])
