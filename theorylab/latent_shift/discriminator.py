"""Domain discriminator ``f(x) ≈ p(d | x)``: a Flax MLP trained with softmax cross-entropy.

DDFA's first step (Roberts et al. 2022, §1.4 (i) of the spec): train a classifier x -> d over
the ``r`` domains; its softmax output estimates ``p(d|x)``, whose push-forward fills the simplex
spanned by the columns of ``Q_{D|Y}``. The paper trains ResNets with Adam, an exponential
learning-rate decay ``γ = 0.97`` per epoch, batch size 32, and keeps the epoch with the lowest
validation cross-entropy. Here the network is an MLP (``flax.nnx``; ReLU hidden layers, a linear
head with ``r`` logits; default 2 x 128 as the spec's §5 D prototype) on standardised features.

Training (:func:`train_domain_discriminator`) is one jit-compiled call:

- the nnx model is split (``nnx.split``) into a static ``GraphDef`` and a parameter ``State``
  pytree, merged back (``nnx.merge``) inside the loss;
- epochs run in a ``lax.while_loop``; each epoch draws a fresh permutation of the training set
  and runs its minibatches in a ``lax.scan``. The permutation is padded to a whole number of
  batches and padded slots are masked out, so every example is used once per epoch and the
  last batch is smaller (PyTorch's ``drop_last=False``);
- optimiser: ``optax.adamw`` (``weight_decay=0`` gives plain Adam; decoupled decay otherwise)
  with learning rate ``learning_rate · lr_decay ** epoch`` (PyTorch ``ExponentialLR`` stepped
  once per epoch);
- after every epoch the validation cross-entropy is computed on the whole validation set; the
  parameters of the epoch with the lowest value are kept (the paper's rule). With ``patience``
  the loop stops once ``patience`` epochs in a row brought no improvement (a ``while_loop``
  condition, no Python loop). Unrun epochs show NaN in the history.

The recorded training loss of an epoch is the mean minibatch cross-entropy during that epoch
(a running average, as commonly logged), not a second pass over the training set.

Dtype: float32 throughout (features are cast). Everything is deterministic given the key and
vmappable over keys (``jax.vmap(lambda k: train_domain_discriminator(k, ...))``).
Cost: O(epochs · n_train · P) time with P the number of weights, O(n_val · width) memory.
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

from theorylab.core.checks import (
    check_array,
    check_bool,
    check_float,
    check_int,
    check_key,
    check_labels,
    describe,
    is_concrete,
)

__all__ = [
    "DomainDiscriminator",
    "TrainingHistory",
    "check_domain_posterior",
    "domain_log_posterior",
    "domain_posterior",
    "train_domain_discriminator",
]

_DTYPE = jnp.float32


class DomainMLP(nnx.Module):
    """ReLU MLP ``in_features -> hidden... -> num_domains`` logits."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_domains: int, *, rngs):
        sizes = (in_features, *hidden)
        self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])
        self.head = nnx.Linear(sizes[-1], num_domains, rngs=rngs)

    def __call__(self, x):
        for layer in self.hidden:
            x = jax.nn.relu(layer(x))
        return self.head(x)


class TrainingHistory(NamedTuple):
    """Per-epoch cross-entropies (nats), ``(epochs,)`` each; NaN for epochs not run.

    Attributes:
      train_loss: mean minibatch cross-entropy during the epoch.
      val_loss: validation cross-entropy after the epoch.
    """

    train_loss: jax.Array
    val_loss: jax.Array


@partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "params",
        "mean",
        "scale",
        "history",
        "best_epoch",
        "best_val_loss",
        "epochs_run",
    ],
    meta_fields=["graphdef"],
)
@dataclass(frozen=True)
class DomainDiscriminator:
    """A trained domain discriminator (a pytree; ``graphdef`` is static).

    Attributes:
      graphdef: the ``flax.nnx`` graph definition of the MLP (static).
      params: the ``nnx.State`` of the kept (best-validation) epoch.
      mean, scale: ``(dim,)`` input standardisation ``(x - mean) / scale`` (training-set mean
        and standard deviation; 0 and 1 with ``standardize=False``; constant features get
        scale 1).
      history: :class:`TrainingHistory`.
      best_epoch: 0-based index of the kept epoch (int32); ``-1`` if no epoch had a finite
        validation loss (training diverged; the initial parameters are kept).
      best_val_loss: validation cross-entropy of the kept epoch (``inf`` if none).
      epochs_run: number of epochs trained (< ``epochs`` when ``patience`` stopped the run).
    """

    graphdef: Any
    params: Any
    mean: jax.Array
    scale: jax.Array
    history: TrainingHistory
    best_epoch: jax.Array
    best_val_loss: jax.Array
    epochs_run: jax.Array


# --------------------------------------------------------------------------- model / loss


def _logits(graphdef, params, mean, scale, x):
    return nnx.merge(graphdef, params)((x - mean) / scale)


def _cross_entropy(logits, labels, mask):
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)


# --------------------------------------------------------------------------- training core


class _Carry(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array
    epoch: jax.Array
    best_params: Any
    best_val: jax.Array
    best_epoch: jax.Array
    stop: jax.Array
    train_hist: jax.Array
    val_hist: jax.Array


def _train_core(
    key,
    x_train,
    d_train,
    x_val,
    d_val,
    learning_rate,
    lr_decay,
    weight_decay,
    patience,
    standardize,
    *,
    num_domains: int,
    hidden: tuple[int, ...],
    epochs: int,
    batch_size: int,
) -> DomainDiscriminator:
    n, dim = x_train.shape
    batch_size = min(batch_size, n)
    num_batches = -(-n // batch_size)
    padded = num_batches * batch_size

    # ``standardize`` is a traced bool (no recompilation when it changes).
    std = jnp.std(x_train, axis=0)
    mean = jnp.where(standardize, jnp.mean(x_train, axis=0), 0.0)
    scale = jnp.where(standardize & (std > 0), std, 1.0)

    init_key, key = jax.random.split(key)
    graphdef, params = nnx.split(DomainMLP(dim, hidden, num_domains, rngs=nnx.Rngs(init_key)))

    def schedule(count):  # ExponentialLR stepped once per epoch (= optax staircase decay)
        return learning_rate * lr_decay ** (count // num_batches).astype(_DTYPE)

    optimizer = optax.adamw(schedule, weight_decay=weight_decay)
    val_mask = jnp.ones(x_val.shape[0], dtype=_DTYPE)

    def batch_loss(p, xb, db, mb):
        return _cross_entropy(_logits(graphdef, p, mean, scale, xb), db, mb)

    grad_fn = jax.value_and_grad(batch_loss)

    def step(state, batch):
        p, opt_state = state
        idx, mb = batch
        loss, grads = grad_fn(p, x_train[idx], d_train[idx], mb)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), loss * jnp.sum(mb)

    def epoch_body(c: _Carry) -> _Carry:
        key, perm_key = jax.random.split(c.key)
        perm = jax.random.permutation(perm_key, n)
        idx = jnp.concatenate([perm, jnp.zeros(padded - n, dtype=perm.dtype)])
        mask = (jnp.arange(padded) < n).astype(_DTYPE)
        batches = (idx.reshape(num_batches, batch_size), mask.reshape(num_batches, batch_size))
        (params, opt_state), losses = jax.lax.scan(step, (c.params, c.opt_state), batches)
        train_loss = jnp.sum(losses) / n
        val_loss = _cross_entropy(_logits(graphdef, params, mean, scale, x_val), d_val, val_mask)
        improved = val_loss < c.best_val  # False for NaN: a diverged epoch is never kept
        best_params = jax.tree.map(
            lambda new, old: jnp.where(improved, new, old), params, c.best_params
        )
        best_epoch = jnp.where(improved, c.epoch, c.best_epoch)
        stop = c.epoch - best_epoch >= patience
        return _Carry(
            params=params,
            opt_state=opt_state,
            key=key,
            epoch=c.epoch + 1,
            best_params=best_params,
            best_val=jnp.where(improved, val_loss, c.best_val),
            best_epoch=best_epoch,
            stop=stop,
            train_hist=c.train_hist.at[c.epoch].set(train_loss),
            val_hist=c.val_hist.at[c.epoch].set(val_loss),
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
        best_val=jnp.asarray(jnp.inf, dtype=_DTYPE),
        best_epoch=jnp.int32(-1),
        stop=jnp.array(False),
        train_hist=nan_hist,
        val_hist=nan_hist,
    )
    final = jax.lax.while_loop(keep_going, epoch_body, init)
    return DomainDiscriminator(
        graphdef=graphdef,
        params=final.best_params,
        mean=mean,
        scale=scale,
        history=TrainingHistory(final.train_hist, final.val_hist),
        best_epoch=final.best_epoch,
        best_val_loss=final.best_val,
        epochs_run=final.epoch,
    )


_train_jit = jax.jit(_train_core, static_argnames=("num_domains", "hidden", "epochs", "batch_size"))


def train_domain_discriminator(
    key,
    x_train,
    d_train,
    x_val,
    d_val,
    num_domains: int,
    *,
    hidden=(128, 128),
    learning_rate: float = 3e-3,
    epochs: int = 40,
    batch_size: int = 32,
    lr_decay: float = 0.97,
    weight_decay: float = 0.0,
    patience: int | None = None,
    standardize: bool = True,
) -> DomainDiscriminator:
    """Train an MLP domain discriminator ``x -> p(d|x)`` with early stopping (DDFA step (i)).

    Minimises the softmax cross-entropy over ``num_domains`` domains with Adam(W), exponential
    learning-rate decay per epoch, and keeps the parameters of the epoch with the lowest
    validation cross-entropy (Roberts et al. 2022, §1.4 (i) of the spec). See the module
    docstring for the exact training loop.

    Args:
      key: PRNG key (initialisation and the per-epoch permutations).
      x_train: ``(n, dim)`` real features (cast to float32), no NaN/inf.
      d_train: ``(n,)`` integer domains in ``[0, num_domains)``; every domain must occur.
      x_val: ``(n_val, dim)`` validation features.
      d_val: ``(n_val,)`` validation domains in ``[0, num_domains)``.
      num_domains: ``r >= 2`` (static).
      hidden: hidden-layer widths (static tuple of positive ints; ``()`` gives multinomial
        logistic regression). Default 2 x 128 (spec §5 D).
      learning_rate: Adam step size at epoch 0 (> 0). Default 3e-3 (spec §5 D).
      epochs: maximum number of epochs (static, >= 1). Default 40 (spec §5 D).
      batch_size: minibatch size (static, >= 1; capped at ``n``). Default 32 (the paper).
      lr_decay: per-epoch learning-rate factor in (0, 1]. Default 0.97 (the paper).
      weight_decay: decoupled weight decay (>= 0; AdamW). Default 0 (plain Adam).
      patience: stop after this many epochs without a new best validation loss (>= 1), or
        ``None`` (default) to train all ``epochs`` (the paper).
      standardize: standardise features with the training mean / standard deviation.

    Returns:
      :class:`DomainDiscriminator`; pass it to :func:`domain_posterior`.

    Raises:
      TypeError: non-array or non-integer arguments, a bad key.
      ValueError: shape mismatches, NaN/inf features, domains outside ``[0, num_domains)``,
        a domain with no training samples, ``num_domains < 2``, out-of-range options.
    """
    key = check_key(key)
    num_domains = check_int(num_domains, "num_domains", min_value=2)
    x_train = _check_features(x_train, "x_train")
    x_val = _check_features(x_val, "x_val", dim=x_train.shape[1])
    d_train = _check_domains(d_train, "d_train", x_train.shape[0], num_domains)
    d_val = _check_domains(d_val, "d_val", x_val.shape[0], num_domains)
    if is_concrete(d_train):
        present = np.bincount(np.asarray(d_train), minlength=num_domains)
        missing = np.flatnonzero(present == 0).tolist()
        if missing:
            raise ValueError(
                f"d_train has domains with no samples: {missing} (of num_domains={num_domains}); "
                "every domain needs training examples"
            )
    if isinstance(hidden, (int, np.integer)) or not hasattr(hidden, "__iter__"):
        raise TypeError(f"hidden must be a tuple of layer widths; got {describe(hidden)}")
    hidden = tuple(check_int(h, "hidden[i]", min_value=1) for h in hidden)
    learning_rate = check_float(learning_rate, "learning_rate", min_value=0.0, min_inclusive=False)
    epochs = check_int(epochs, "epochs", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr_decay = check_float(lr_decay, "lr_decay", min_value=0.0, max_value=1.0, min_inclusive=False)
    weight_decay = check_float(weight_decay, "weight_decay", min_value=0.0)
    if patience is not None:
        patience = check_int(patience, "patience", min_value=1)
    standardize = check_bool(standardize, "standardize")
    return _train_jit(
        key,
        x_train,
        d_train,
        x_val,
        d_val,
        jnp.asarray(learning_rate, _DTYPE),
        jnp.asarray(lr_decay, _DTYPE),
        jnp.asarray(weight_decay, _DTYPE),
        jnp.int32(epochs + 1 if patience is None else patience),
        jnp.asarray(standardize),
        num_domains=num_domains,
        hidden=hidden,
        epochs=epochs,
        batch_size=min(batch_size, x_train.shape[0]),
    )


# --------------------------------------------------------------------------- inference


@jax.jit
def _log_posterior(discriminator: DomainDiscriminator, x):
    d = discriminator
    return jax.nn.log_softmax(_logits(d.graphdef, d.params, d.mean, d.scale, x), axis=-1)


def _check_discriminator(discriminator, x):
    if not isinstance(discriminator, DomainDiscriminator):
        raise TypeError(
            "discriminator must be a DomainDiscriminator from train_domain_discriminator; "
            f"got {describe(discriminator)}"
        )
    dim = discriminator.mean.shape[-1]
    if discriminator.mean.ndim != 1:
        raise ValueError(
            "discriminator holds a batch of models (e.g. from vmap); apply domain_posterior "
            "under the same vmap"
        )
    return _check_features(x, "x", dim=dim)


def domain_log_posterior(discriminator: DomainDiscriminator, x):
    """``(n, r)`` log-probabilities ``log f(x)`` (log-softmax of the logits; jittable)."""
    x = _check_discriminator(discriminator, x)
    return _log_posterior(discriminator, x)


def domain_posterior(discriminator: DomainDiscriminator, x):
    """Estimated ``p(d | x)``: ``(n, r)`` softmax probabilities of the trained discriminator.

    Args:
      discriminator: a :class:`DomainDiscriminator`.
      x: ``(n, dim)`` features (cast to float32; standardised with the training statistics).

    Returns:
      ``(n, r)`` float32 array; rows are on the simplex (non-negative, sum 1 to float32
      rounding). Jittable and vmappable. O(n · P) with P the number of weights.
    """
    x = _check_discriminator(discriminator, x)
    return jnp.exp(_log_posterior(discriminator, x))


def check_domain_posterior(p, num_domains: int, *, atol: float = 1e-4):
    """Validate a (possibly user-supplied) ``p(d|x)`` matrix and return it as a float array.

    Args:
      p: ``(n, num_domains)`` array of probabilities.
      num_domains: ``r``.
      atol: tolerance on ``|Σ_d p[i, d] - 1|`` (default 1e-4, float32 softmax rounding is
        ~1e-7 · r).

    Raises:
      ValueError: wrong shape, NaN/inf, negative entries, or rows not summing to 1
        ("discriminator outputs not on the simplex").
    """
    num_domains = check_int(num_domains, "num_domains", min_value=2)
    atol = check_float(atol, "atol", min_value=0.0)
    p = check_array(p, "p", ndim=2, kind="real", finite=True)
    if p.shape[1] != num_domains:
        raise ValueError(
            f"p must have shape (n, {num_domains}) (one column per domain); got {describe(p)}"
        )
    if p.shape[0] < 1:
        raise ValueError(f"p must have at least one row; got {describe(p)}")
    if is_concrete(p):
        host = np.asarray(p, dtype=np.float64)
        if np.any(host < 0):
            raise ValueError(
                "discriminator outputs not on the simplex: p has negative entries "
                f"(min {host.min():.3g})"
            )
        worst = float(np.max(np.abs(host.sum(axis=1) - 1.0)))
        if worst > atol:
            raise ValueError(
                "discriminator outputs not on the simplex: rows of p must sum to 1; got "
                f"max |sum - 1| = {worst:.3g} (atol={atol:g})"
            )
    if p.dtype.kind != "f":
        p = p.astype(jnp.result_type(float))
    return p


# --------------------------------------------------------------------------- validation


def _check_features(x, name: str, *, dim: int | None = None):
    x = check_array(x, name, ndim=2, kind="real", finite=True)
    if x.shape[0] < 1:
        raise ValueError(f"{name} must have at least one row; got {describe(x)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (features); got {describe(x)}")
    return x.astype(_DTYPE)


def _check_domains(d, name: str, n: int, num_domains: int):
    d = check_labels(d, name, num_classes=num_domains)
    if d.shape[0] != n:
        raise ValueError(
            f"{name} must have one domain per row of the features ({n}); got {describe(d)}"
        )
    return d.astype(jnp.int32)
