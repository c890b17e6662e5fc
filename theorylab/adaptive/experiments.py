"""The experiments of the reusable-holdout papers, as jitted, seed-vmappable JAX functions.

- :func:`science_feature_selection` -- Dwork, Feldman, Hardt, Pitassi, Reingold, Roth, *The
  reusable holdout* (Science 349, 2015), Figures 1 and 2 (spec §2.1): greedy feature selection
  on pure noise (or 20 weak signal features) with a standard holdout or with Thresholdout.
- :func:`boosting_attack` -- Blum & Hardt, *The Ladder* (ICML'15), the boosting attack on a
  Kaggle-style leaderboard and on the parameter-free Ladder (spec §1.4, §2.2).
- :func:`correlation_attack` -- the O(n)-query sign-vote attack on naive (or Gaussian-noise)
  answering of correlation queries (spec §2.3), with its closed form
  :func:`theorylab.adaptive.bounds.correlation_attack_accuracy`.

Every function takes an explicit PRNG ``key`` (first argument), computes in float32 by
default, is jit-compiled with its sizes static, and can be ``vmap``-ped over a batch of keys;
the ``*_seeds`` variants run a batch of keys in one program: vmapped in chunks of seeds on an
accelerator (``lax.map`` with a batch size, so memory stays bounded), a sequential
``lax.map`` on CPU (faster there to compile and to run). The holdout answers always go
through the mechanisms of :mod:`theorylab.adaptive.mechanisms` (``answer_means`` /
``answer_rows``, one mechanism state per seed), so the experiments exercise exactly what a
user of the library would call.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.adaptive import mechanisms as M
from theorylab.core.checks import check_choice, check_float, check_int, check_key

__all__ = [
    "SCIENCE_K_GRID",
    "BoostingResult",
    "CorrelationAttackResult",
    "SciencePair",
    "ScienceResult",
    "boosting_attack",
    "boosting_attack_seeds",
    "correlation_attack",
    "correlation_attack_seeds",
    "science_feature_selection",
    "science_feature_selection_seeds",
]

#: The grid of the number of selected variables in the Science figures.
SCIENCE_K_GRID = (0, 10, 20, 30, 45, 70, 100, 150, 200, 250, 300, 400, 500)

_DEFAULT_CHUNK_BYTES = 2 * 1024**3  # per-chunk budget when the device does not say


# ---------------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------------


class ScienceResult(NamedTuple):
    """One run of the Science'15 feature-selection experiment (arrays ``[len(k_grid)]``).

    Attributes:
      k: the grid of numbers of variables (``int32[K]``).
      train: accuracy of the classifier on the training set.
      holdout: the holdout accuracy the analyst *sees*: the exact holdout accuracy for the
        standard holdout, the Thresholdout answer ("reported") for Thresholdout.
      fresh: accuracy on a fresh set of ``n`` rows (the truth, up to ``1/(2 sqrt n)``).
      holdout_exact: exact holdout accuracy of the same classifier (equal to ``holdout`` for
        the standard run; never revealed to the analyst in the Thresholdout run).
      num_selected: number of variables passing the selection rule (scalar ``int32``).
      above_threshold_correlations: Thresholdout above-threshold events among the ``d``
        correlation queries (0 for the standard holdout).
      above_threshold_accuracy: above-threshold events among the accuracy queries.
    """

    k: Any
    train: Any
    holdout: Any
    fresh: Any
    holdout_exact: Any
    num_selected: Any
    above_threshold_correlations: Any
    above_threshold_accuracy: Any


class SciencePair(NamedTuple):
    """Standard holdout and Thresholdout runs on the *same* data (as in the authors' code)."""

    standard: ScienceResult
    thresholdout: ScienceResult


class BoostingResult(NamedTuple):
    """Boosting attack on a leaderboard, one entry per number of submissions in ``k_grid``.

    Attributes:
      k: numbers of random submissions before the boosted one (``int32[K]``).
      reported: the score the leaderboard publishes for the boosted submission (the rounded
        loss for Kaggle; the Ladder's published score -- its running best -- for the Ladder).
      holdout: exact 0-1 loss of the boosted submission on the holdout labels: the quantity
        plotted as "Kaggle"/"Ladder" in Blum & Hardt's figure (``Ladder.jl``'s
        ``examples/attacks.jl`` returns it).
      fresh: its 0-1 loss on independent fresh labels (the truth: 0.5 in expectation).
      kept: number of submissions the attacker kept for the majority vote.
    """

    k: Any
    reported: Any
    holdout: Any
    fresh: Any
    kept: Any


class CorrelationAttackResult(NamedTuple):
    """The sign-vote attack of spec §2.3 (scalars).

    Attributes:
      in_sample: accuracy of ``h(x) = sign(sum_j sign(a_j - 1/2) x_j)`` on the holdout.
      fresh: its accuracy on a fresh sample of ``n`` rows (the truth: exactly 0.5).
      closed_form: ``Phi(sqrt(2 m / (pi n (1 + 4 n sigma^2))))``: the closed form
        :func:`theorylab.adaptive.bounds.correlation_attack_accuracy` evaluated at the noise
        on the *correlation* scale, ``2 sigma`` (see :func:`correlation_attack`).
      max_answer_error: ``max_j |a_j - P[phi_j]|`` over the ``m`` answers (``P[phi_j] = 1/2``).
    """

    in_sample: Any
    fresh: Any
    closed_form: Any
    max_answer_error: Any


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _check_dtype(dtype) -> Any:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype (float32 or float64); got {dtype}")
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs x64: wrap the call in `with jax.enable_x64(True):`")
    return dtype


def _check_keys(keys) -> Any:
    if not hasattr(keys, "dtype") or not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        raise TypeError(
            "keys must be a batch of typed PRNG keys, e.g. jax.random.split(jax.random.key(0), "
            f"10); got {type(keys).__name__}"
        )
    if keys.ndim != 1 or keys.shape[0] < 1:
        raise ValueError(f"keys must have shape (seeds,) with seeds >= 1; got {keys.shape}")
    return keys


def _check_grid(grid, name: str, max_value: int, *, min_value: int = 0) -> tuple[int, ...]:
    if isinstance(grid, (int, np.integer)) or not isinstance(grid, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of integers; got {type(grid).__name__}")
    values = tuple(
        check_int(v, f"{name}[{i}]", min_value=min_value, max_value=max_value)
        for i, v in enumerate(grid)
    )
    if not values:
        raise ValueError(f"{name} must not be empty")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name} must be strictly increasing; got {values}")
    return values


def _auto_chunk(bytes_per_seed: int, seeds: int) -> int:
    """Default number of seeds vmapped together.

    CPU: 1, i.e. a sequential ``lax.map`` over seeds inside one program -- XLA:CPU gains
    nothing from batching these RNG- and matmul-bound steps (measured: the vmapped program ran
    1.2-4x slower and compiled 2-6x slower). Accelerators: as many seeds as fit half of the
    device memory (``bytes_per_seed`` is the working set of one seed). Bigger chunks matter
    there: the mechanisms' ``lax.scan`` over queries runs once per chunk (measured on an H200,
    Science Fig. 1 at n = d = 10^4, 100 seeds: 0.76 s with chunks of 14 seeds, 0.38 s with 50).
    """
    if jax.default_backend() == "cpu":
        return 1
    budget = _DEFAULT_CHUNK_BYTES
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            budget = int(0.5 * stats["bytes_limit"])
    except Exception:  # pragma: no cover - backends without memory_stats
        pass
    return int(max(1, min(seeds, budget // max(bytes_per_seed, 1))))


def _map_seeds(fn, keys, chunk: int):
    """``fn`` over a batch of keys: vmapped within chunks of ``chunk`` seeds, chunks in turn."""
    if chunk >= keys.shape[0]:
        return jax.vmap(fn)(keys)
    if chunk == 1:
        return jax.lax.map(fn, keys)
    return jax.lax.map(fn, keys, batch_size=chunk)


def _random_bits(key, shape):
    """Independent fair bits (bool) of ``shape``, 32 per random ``uint32`` word.

    Exactly the law of ``jax.random.bernoulli(key, 0.5, shape)`` at 1/32 of the random-number
    cost (the attacks draw ``n x m`` of them).
    """
    *lead, last = shape
    words = jax.random.bits(key, (*lead, -(-last // 32)), jnp.uint32)
    shifts = jnp.arange(32, dtype=jnp.uint32)
    bits = (words[..., None] >> shifts) & jnp.uint32(1)
    return bits.reshape(*lead, -1)[..., :last].astype(bool)


def _random_signs(key, shape, dtype):
    """Independent uniform ``+-1`` of ``shape`` (Rademacher) from :func:`_random_bits`."""
    return jnp.where(_random_bits(key, shape), 1.0, -1.0).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Science'15 Figures 1 and 2
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _ScienceConfig:
    n: int
    d: int
    k_grid: tuple[int, ...]
    runs: tuple[str, ...]
    signal_features: int
    signal: float
    thresholdout: M.Mechanism
    sampler: str
    dtype: Any

    @property
    def k_max(self) -> int:
        return max(max(self.k_grid), 1)


class _Data(NamedTuple):
    """What the analyst reads: labels, the d correlations, and a column sampler."""

    y: Any  # [3, n] labels in {-1, +1} of the (train, holdout, fresh) sets
    c_train: Any
    c_holdout: Any
    columns: Any  # columns(idx) -> [3, n, len(idx)]: those variables on the three sets


def _shift_vector(cfg: _ScienceConfig):
    shift = jnp.zeros((cfg.d,), cfg.dtype)
    if cfg.signal_features:
        shift = shift.at[: cfg.signal_features].set(cfg.signal)
    return shift


def _draw_full(key, cfg: _ScienceConfig) -> _Data:
    """Materialise the three ``n x d`` sets exactly as the authors' code (3 n d normals)."""
    k_y, k_x = jax.random.split(key)
    y = _random_signs(k_y, (3, cfg.n), cfg.dtype)
    x = jax.random.normal(k_x, (3, cfg.n, cfg.d), cfg.dtype)
    if cfg.signal_features:
        x = x + y[:, :, None] * _shift_vector(cfg)[None, None, :]
    c_train = y[0] @ x[0] / cfg.n
    c_holdout = y[1] @ x[1] / cfg.n

    def columns(idx):
        return jnp.take(x, idx, axis=2)

    return _Data(y, c_train, c_holdout, columns)


def _draw_conditional(key, cfg: _ScienceConfig) -> _Data:
    """The same joint law, drawing only what the analyst reads (exact in distribution).

    Given ``y`` (with ``y_i^2 = 1``), column ``j`` of a set is ``x_j = s_j y + z_j`` with
    ``z_j ~ N(0, I_n)``; its correlation ``c_j = y.x_j / n = s_j + y.z_j / n ~ N(s_j, 1/n)``
    and, given ``c_j``, ``x_j = c_j y + (I - y y^T / n) z'_j`` with a fresh ``z'_j`` (the
    Gaussian part orthogonal to ``y`` is independent of ``y.z_j``). So we draw the ``2d``
    correlations first and only the ``<= max(k)`` columns the classifier uses, each from its
    own key ``fold_in(key, j)`` so that the standard and Thresholdout runs see the same
    columns. Cost: ``2 d + O(n max(k))`` normals instead of ``3 n d``.
    """
    k_y, k_c, k_cols = jax.random.split(key, 3)
    n = cfg.n
    shift = _shift_vector(cfg)
    y = _random_signs(k_y, (3, n), cfg.dtype)
    c = shift + jax.random.normal(k_c, (2, cfg.d), cfg.dtype) / math.sqrt(n)

    def columns(idx):
        z = jax.vmap(lambda j: jax.random.normal(jax.random.fold_in(k_cols, j), (3, n), cfg.dtype))(
            idx
        )  # [k, 3, n]
        z = jnp.moveaxis(z, 0, 2)  # [3, n, k]
        # train / holdout: condition on the correlations the analyst has seen
        proj = jnp.einsum("sn,snk->sk", y[:2], z[:2]) / n  # [2, k]
        cond = z[:2] - y[:2, :, None] * proj[:, None, :] + y[:2, :, None] * c[:, idx][:, None, :]
        fresh = z[2] + y[2][:, None] * shift[idx][None, :]
        return jnp.concatenate([cond, fresh[None]], axis=0)

    return _Data(y, c[0], c[1], columns)


def _select(c_train, c_holdout_seen, cfg: _ScienceConfig):
    """Science selection: same sign and ``|c| > 1/sqrt(n)`` on both sets; rank by ``|c_t|``."""
    thr = 1.0 / math.sqrt(cfg.n)
    selected = ((c_train > thr) & (c_holdout_seen > thr)) | (
        (c_train < -thr) & (c_holdout_seen < -thr)
    )
    score = jnp.where(selected, jnp.abs(c_train), -1.0)
    _, idx = jax.lax.top_k(score, cfg.k_max)
    weights = jnp.where(selected[idx], jnp.sign(c_train[idx]), 0.0).astype(cfg.dtype)
    return idx, weights, jnp.sum(selected).astype(jnp.int32)


def _accuracies(data: _Data, selections, cfg: _ScienceConfig):
    """Train / holdout / fresh accuracies ``[runs, 3, K]`` of ``sign(<w_k, x>)`` on the grid.

    ``selections`` holds one ``(idx, weights, num_selected)`` per run; the columns of all runs
    are read in one go (one gather, or one draw for the conditional sampler).
    """
    runs = len(selections)
    grid = jnp.asarray(cfg.k_grid)
    idx = jnp.concatenate([sel[0] for sel in selections])
    weights = jnp.stack([sel[1] for sel in selections])  # [runs, k_max]
    cols = data.columns(idx).reshape(3, cfg.n, runs, cfg.k_max)
    # prefix masks: classifier g uses the top-k_g ranked variables
    mask = (jnp.arange(cfg.k_max)[:, None] < grid[None, :]).astype(cfg.dtype)  # [k_max, K]
    scores = jnp.einsum("snrk,rk,kg->rsng", cols, weights, mask)
    acc = jnp.mean((jnp.sign(scores) == data.y[None, :, :, None]).astype(cfg.dtype), axis=2)
    num_selected = jnp.stack([sel[2] for sel in selections])
    empty = jnp.minimum(grid[None, :], num_selected[:, None]) == 0  # no variable: 0.5, as
    return jnp.where(empty[:, None, :], jnp.asarray(0.5, cfg.dtype), acc)  # the authors' k=0


def _science_single(key, cfg: _ScienceConfig):
    k_data, k_mech = jax.random.split(key)
    data = (_draw_full if cfg.sampler == "full" else _draw_conditional)(k_data, cfg)
    grid = np.asarray(cfg.k_grid)
    positive = np.flatnonzero(grid > 0)  # static: k = 0 is not a query (reported as 0.5)
    zero = jnp.zeros((), jnp.int32)
    selections = []
    if "standard" in cfg.runs:
        selections.append(_select(data.c_train, data.c_holdout, cfg))
    if "thresholdout" in cfg.runs:
        mech = cfg.thresholdout
        state = M.init_mechanism(mech, k_mech, cfg.n, cfg.dtype)
        # d correlation queries, answered like the authors' code: the raw correlations
        # (Thresholdout without clipping is affine-equivariant, so this is exactly the SQ
        # (1 + x_j y)/2 answered with threshold T/2 and noise sigma/2, then mapped back).
        c_seen, _, state = M.answer_means(mech, state, data.c_holdout, data.c_train)
        hits_corr = state.budget_used
        selections.append(_select(data.c_train, c_seen, cfg))
    acc = _accuracies(data, selections, cfg)
    k_array = jnp.asarray(grid, jnp.int32)
    results = {}
    for r, run in enumerate(cfg.runs):
        train, hold, fresh = acc[r]
        nsel = selections[r][2]
        if run == "standard":
            results[run] = ScienceResult(k_array, train, hold, fresh, hold, nsel, zero, zero)
            continue
        # the accuracy queries (one per k > 0, in grid order) through the same state
        answers, _, state = M.answer_means(mech, state, hold[positive], train[positive])
        reported = jnp.full_like(train, 0.5).at[positive].set(answers)
        results[run] = ScienceResult(
            k_array, train, reported, fresh, hold, nsel, hits_corr, state.budget_used - hits_corr
        )
    if len(cfg.runs) == 2:
        return SciencePair(results["standard"], results["thresholdout"])
    return results[cfg.runs[0]]


@functools.partial(jax.jit, static_argnames=("cfg",))
def _science_jit(key, cfg: _ScienceConfig):
    return _science_single(key, cfg)


@functools.partial(jax.jit, static_argnames=("cfg", "chunk"))
def _science_seeds_jit(keys, cfg: _ScienceConfig, chunk: int):
    return _map_seeds(lambda k: _science_single(k, cfg), keys, chunk)


def _science_config(
    n, d, mechanism, k_grid, signal_features, signal, thresholdout, sampler, dtype
) -> _ScienceConfig:
    n = check_int(n, "n", min_value=2)
    d = check_int(d, "d", min_value=1)
    check_choice(mechanism, "mechanism", ("standard", "thresholdout", "both"))
    k_grid = _check_grid(k_grid, "k_grid", d)
    signal_features = check_int(signal_features, "signal_features", min_value=0, max_value=d)
    signal = 6.0 / math.sqrt(n) if signal is None else check_float(signal, "signal")
    check_choice(sampler, "sampler", ("full", "conditional"))
    if thresholdout is None:
        thresholdout = M.thresholdout_science(n)
    elif not isinstance(thresholdout, M.Mechanism) or thresholdout.needs_rows:
        raise TypeError(
            "thresholdout must be a mechanism answering from means (e.g. "
            "mechanisms.thresholdout(...)); got "
            f"{type(thresholdout).__name__}"
        )
    runs = ("standard", "thresholdout") if mechanism == "both" else (mechanism,)
    return _ScienceConfig(
        n,
        d,
        k_grid,
        runs,
        signal_features,
        float(signal),
        thresholdout,
        sampler,
        _check_dtype(dtype),
    )


def science_feature_selection(
    key,
    n: int,
    d: int,
    *,
    mechanism: str = "standard",
    k_grid: Sequence[int] = SCIENCE_K_GRID,
    signal_features: int = 0,
    signal: float | None = None,
    thresholdout: M.Mechanism | None = None,
    sampler: str = "full",
    dtype=jnp.float32,
) -> ScienceResult | SciencePair:
    """The Science'15 feature-selection experiment (Fig. 1: pure noise; Fig. 2: 20 signals).

    Dwork, Feldman, Hardt, Pitassi, Reingold, Roth, *The reusable holdout: Preserving validity
    in adaptive data analysis*, Science 349 (2015); the authors' supplementary code
    (``andyljones/thresholdout``); spec §2.1 and acceptance checks A1, A2.

    Data: three sets (train, holdout, fresh) of ``n`` rows, ``x ~ N(0, I_d)``, labels
    ``y = +-1`` uniform; the first ``signal_features`` coordinates are shifted by ``signal * y``
    (Fig. 2: 20 features, ``signal = 6/sqrt(n)``, the default when ``signal`` is None).

    Analyst (exact): correlations ``c = X^T y / n`` on train and holdout (``d`` queries); keep
    the variables with the same sign and ``|c| > 1/sqrt(n)`` on both; rank them by ``|c_t|``;
    for each k of ``k_grid`` the classifier is ``sign(<w, x>)`` with ``w = sign(c_t)`` on the
    top-k; report its accuracy on train, holdout and fresh.

    - When fewer than k variables are selected, the classifier uses all the selected ones
      (the authors' code takes the top k of ``|c_t|`` with unselected variables zeroed, so the
      extra weights are 0). A classifier with no variable at all (k = 0, or nothing selected)
      reports 0.5 on every set, the authors' convention for k = 0 (their code would count
      the all-zero classifier as wrong everywhere; that never happens at their scale).
    - ``mechanism="thresholdout"``: the ``d`` holdout correlations and then the accuracy
      queries (one per k > 0, in the order of ``k_grid``) go through ``thresholdout``, with
      one mechanism state per seed. Default ``thresholdout``:
      :func:`~theorylab.adaptive.mechanisms.thresholdout_science` (``T = 4/sqrt(n)``, Gaussian
      noise of ``sigma = 1/sqrt(n)`` on the comparison and the release, fresh comparison
      noise per query, no budget). As in the authors' code, the correlation queries are the
      raw correlations ``c_j`` (for Gaussian ``x`` the SQ ``(1 + x_j y)/2`` is not
      ``[0, 1]``-valued). Thresholdout without clipping is affine-equivariant: answering ``c``
      with ``(T, sigma)`` is exactly answering ``(1 + c)/2`` with ``(T/2, sigma/2)``.
    - ``mechanism="both"``: both runs on the same data (as in the authors' code), returned as
      a :class:`SciencePair`.

    Args:
      key: PRNG key.
      n: rows per set. d: number of variables.
      mechanism: ``"standard"``, ``"thresholdout"`` or ``"both"``.
      k_grid: strictly increasing numbers of variables (default: the paper's grid).
      signal_features: number of signal variables (Fig. 2: 20).
      signal: their shift (default ``6/sqrt(n)``).
      thresholdout: the mechanism for the Thresholdout run (default Science settings).
      sampler: ``"full"`` materialises the three ``n x d`` sets (the authors' procedure,
        ``3 n d`` normals); ``"conditional"`` draws the same joint law of everything the
        analyst reads -- the ``2d`` correlations, then only the columns of the ``<= max(k)``
        variables used, conditioned on their correlations -- so it costs ``O(d + n max(k))``
        (exact in distribution, not the same random numbers).
      dtype: float32 (default) or float64 (needs x64).

    Returns:
      :class:`ScienceResult` (or :class:`SciencePair` for ``"both"``), arrays ``[len(k_grid)]``.

    Complexity: ``full``: ``O(n d)`` time and ``3 n d`` floats of memory per seed;
    ``conditional``: ``O(d log d + n max(k))``.
    """
    check_key(key)
    cfg = _science_config(
        n, d, mechanism, k_grid, signal_features, signal, thresholdout, sampler, dtype
    )
    return _science_jit(key, cfg)


def science_feature_selection_seeds(
    keys,
    n: int,
    d: int,
    *,
    mechanism: str = "standard",
    k_grid: Sequence[int] = SCIENCE_K_GRID,
    signal_features: int = 0,
    signal: float | None = None,
    thresholdout: M.Mechanism | None = None,
    sampler: str = "full",
    dtype=jnp.float32,
    chunk: int | None = None,
) -> ScienceResult | SciencePair:
    """:func:`science_feature_selection` for a batch of keys ``[seeds]`` (one jitted call).

    Seeds are vmapped in chunks of ``chunk`` and the chunks run in turn (``lax.map`` with a
    batch size), bounding memory at ``chunk`` seeds' working set. ``chunk=None``: 1 on CPU
    (a sequential loop inside one program: faster to compile and to run there), else the
    largest chunk whose data fits half of the device memory (2 GiB where the backend does not
    report it). Results have a leading ``[seeds]`` axis (``k`` does not).
    """
    keys = _check_keys(keys)
    cfg = _science_config(
        n, d, mechanism, k_grid, signal_features, signal, thresholdout, sampler, dtype
    )
    seeds = keys.shape[0]
    if chunk is None:
        itemsize = jnp.dtype(cfg.dtype).itemsize
        per_seed = (
            3 * cfg.n * cfg.d * itemsize
            if cfg.sampler == "full"
            else (6 * cfg.n * cfg.k_max + 4 * cfg.d) * itemsize
        )
        chunk = _auto_chunk(per_seed, seeds)
    chunk = check_int(chunk, "chunk", min_value=1)
    out = _science_seeds_jit(keys, cfg, min(chunk, seeds))
    grid = jnp.asarray(cfg.k_grid, jnp.int32)
    if isinstance(out, SciencePair):
        return SciencePair(out.standard._replace(k=grid), out.thresholdout._replace(k=grid))
    return out._replace(k=grid)


# ---------------------------------------------------------------------------------------------
# Blum & Hardt boosting attack
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _BoostConfig:
    n: int
    k_grid: tuple[int, ...]
    leaderboard: str
    decimals: int | None
    dtype: Any


def _boosting_single(key, cfg: _BoostConfig):
    n, dtype = cfg.n, cfg.dtype
    k_max = cfg.k_grid[-1]
    k_bits, k_m = jax.random.split(key)
    bits = _random_bits(k_bits, (k_max + 2, n))
    y, y_fresh, subs = bits[0], bits[1], bits[2:]
    losses = (subs != y[None, :]).astype(dtype)  # per-row 0-1 losses [k_max, n]
    if cfg.leaderboard == "kaggle":
        mech = M.naive(decimals=cfg.decimals)
    else:
        mech = M.ladder()
    state = M.init_mechanism(mech, k_m, n, dtype)

    def submit(st, rows):
        if cfg.leaderboard == "kaggle":
            return M.answer_means(mech, st, jnp.mean(rows, axis=1))
        return M.answer_rows(mech, st, rows)

    # The submissions go in one at a time (lax.scan inside the mechanism); the leaderboard
    # state is kept at every k of the grid so the boosted vector is scored against it.
    scores, states, start = [], [], 0
    for kk in cfg.k_grid:
        out, _, state = submit(state, losses[start:kk])
        scores.append(out)
        states.append(state)
        start = kk
    scores = jnp.concatenate(scores)
    if cfg.leaderboard == "kaggle":
        keep = scores <= 0.5  # submissions that look better than chance
    else:  # submissions that lowered the published score (the first: if below 0.5)
        previous = jnp.concatenate([jnp.asarray([0.5], dtype), scores[:-1]])
        keep = scores < previous
    grid = jnp.asarray(cfg.k_grid)
    use = keep[None, :] & (jnp.arange(k_max)[None, :] < grid[:, None])  # [K, k_max]
    kept = jnp.sum(use, axis=1)
    ones = use.astype(dtype) @ subs.astype(dtype)  # [K, n]
    boosted = ones >= kept[:, None].astype(dtype) / 2  # majority; ties -> 1 (as Ladder.jl)
    boosted_losses = (boosted != y[None, :]).astype(dtype)
    holdout = jnp.mean(boosted_losses, axis=1)
    fresh = jnp.mean((boosted != y_fresh[None, :]).astype(dtype), axis=1)
    reported = jnp.stack(
        [submit(st, boosted_losses[g : g + 1])[0][0] for g, st in enumerate(states)]
    )
    return BoostingResult(grid.astype(jnp.int32), reported, holdout, fresh, kept.astype(jnp.int32))


@functools.partial(jax.jit, static_argnames=("cfg",))
def _boosting_jit(key, cfg):
    return _boosting_single(key, cfg)


@functools.partial(jax.jit, static_argnames=("cfg", "chunk"))
def _boosting_seeds_jit(keys, cfg, chunk):
    return _map_seeds(lambda k: _boosting_single(k, cfg), keys, chunk)


def _boosting_config(n, k, leaderboard, decimals, k_grid, dtype) -> _BoostConfig:
    n = check_int(n, "n", min_value=2)
    k = check_int(k, "k", min_value=1)
    check_choice(leaderboard, "leaderboard", ("kaggle", "ladder"))
    if decimals is not None:
        decimals = check_int(decimals, "decimals", min_value=0, max_value=12)
    k_grid = (k,) if k_grid is None else _check_grid(k_grid, "k_grid", k, min_value=1)
    if k_grid[-1] != k:
        raise ValueError(f"k_grid must end at k={k}; got {k_grid}")
    return _BoostConfig(n, k_grid, leaderboard, decimals, _check_dtype(dtype))


def boosting_attack(
    key,
    n: int,
    k: int,
    *,
    leaderboard: str = "kaggle",
    decimals: int | None = 5,
    k_grid: Sequence[int] | None = None,
    dtype=jnp.float32,
) -> BoostingResult:
    """Blum & Hardt's boosting attack on a leaderboard (ICML'15; spec §1.4, §2.2, check A4).

    Hidden holdout labels ``y`` (``n`` uniform bits). The attacker submits ``k`` uniformly
    random label vectors; the leaderboard answers each with the 0-1 loss:

    - ``"kaggle"``: the exact loss rounded to ``decimals`` (:func:`mechanisms.naive`); the
      attacker keeps the submissions with reported loss ``<= 0.5``;
    - ``"ladder"``: the parameter-free Ladder (:func:`mechanisms.ladder`, per-row losses via
      ``answer_rows``); the attacker keeps the submissions that lowered the published score
      (the first one if its score is below 0.5), as in ``Ladder.jl``'s ``examples/attacks.jl``.

    The boosted submission is the coordinate-wise majority of the kept vectors (ties -> 1,
    as in ``Ladder.jl``). Its holdout loss is biased down by ``Theta(sqrt(k/n))`` on Kaggle; its
    true loss is exactly 0.5 (measured on ``n`` independent fresh labels).

    Args:
      key: PRNG key.
      n: holdout size. k: number of random submissions.
      leaderboard: ``"kaggle"`` or ``"ladder"``.
      decimals: Kaggle rounding (5 = the authors' "highacc" setting; None: exact).
      k_grid: evaluate the attack after each of these numbers of submissions (increasing,
        ending at ``k``) from one stream of ``k`` submissions: each prefix is distributed
        exactly as an independent attack with that many submissions (the leaderboard is
        sequential, so the decisions on the first ``k'`` submissions ignore later ones);
        default ``(k,)``.
      dtype: float dtype of the losses.

    Returns:
      :class:`BoostingResult` with arrays ``[len(k_grid)]``. The same key gives the same
      labels and submissions for both leaderboards (a paired comparison, as the authors do).

    Complexity: ``O(k n)`` time and memory; the leaderboard runs as a ``lax.scan``.
    """
    check_key(key)
    cfg = _boosting_config(n, k, leaderboard, decimals, k_grid, dtype)
    return _boosting_jit(key, cfg)


def boosting_attack_seeds(
    keys,
    n: int,
    k: int,
    *,
    leaderboard: str = "kaggle",
    decimals: int | None = 5,
    k_grid: Sequence[int] | None = None,
    dtype=jnp.float32,
    chunk: int | None = None,
) -> BoostingResult:
    """:func:`boosting_attack` over a batch of keys (vmapped in chunks; leading seed axis)."""
    keys = _check_keys(keys)
    cfg = _boosting_config(n, k, leaderboard, decimals, k_grid, dtype)
    if chunk is None:
        chunk = _auto_chunk(4 * k * n * jnp.dtype(cfg.dtype).itemsize, keys.shape[0])
    chunk = check_int(chunk, "chunk", min_value=1)
    out = _boosting_seeds_jit(keys, cfg, min(chunk, keys.shape[0]))
    return out._replace(k=jnp.asarray(cfg.k_grid, jnp.int32))


# ---------------------------------------------------------------------------------------------
# The correlation (sign-vote) attack on naive answering
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _CorrConfig:
    n: int
    m: int
    m_grid: tuple[int, ...] | None
    sigma: float
    dtype: Any

    @property
    def grid(self) -> tuple[int, ...]:
        return (self.m,) if self.m_grid is None else self.m_grid


def _correlation_single(key, cfg: _CorrConfig):
    n, m, dtype = cfg.n, cfg.m, cfg.dtype
    k_x, k_m = jax.random.split(key)
    signs = _random_signs(k_x, (2, n, m + 1), dtype)  # holdout and fresh: [x | y]
    x, y = signs[0, :, :m], signs[0, :, m]
    # phi_j(x, y) = (1 + x_j y) / 2 in {0, 1}: holdout means (1 + c_j) / 2
    means = (1.0 + y @ x / n) / 2.0
    if cfg.sigma == 0.0:
        mech = M.naive()
    else:
        mech = M.gaussian(sigma=cfg.sigma, max_queries=m)
    state = M.init_mechanism(mech, k_m, n, dtype)
    answers, _, _ = M.answer_means(mech, state, means)
    grid = jnp.asarray(cfg.grid)
    # the attack after the first m' queries uses the first m' answers: weights [m, G]
    w = jnp.sign(answers - 0.5)[:, None] * (jnp.arange(m)[:, None] < grid[None, :])

    def accuracy(xs, ys):
        score = xs @ w.astype(dtype)  # [n, G]
        hit = jnp.where(score == 0, 0.5, (jnp.sign(score) == ys[:, None]).astype(dtype))
        return jnp.mean(hit, axis=0)  # ties count 1/2

    fresh = accuracy(signs[1, :, :m], signs[1, :, m])
    err = jax.lax.cummax(jnp.abs(answers - 0.5))[grid - 1]
    out = (accuracy(x, y), fresh, err)
    return out if cfg.m_grid is not None else tuple(a[0] for a in out)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _correlation_jit(key, cfg):
    return _correlation_single(key, cfg)


@functools.partial(jax.jit, static_argnames=("cfg", "chunk"))
def _correlation_seeds_jit(keys, cfg, chunk):
    return _map_seeds(lambda k: _correlation_single(k, cfg), keys, chunk)


def _correlation_config(n, m, sigma, m_grid, dtype) -> _CorrConfig:
    n = check_int(n, "n", min_value=1)
    m = check_int(m, "m", min_value=1)
    sigma = check_float(sigma, "sigma", min_value=0.0)
    if m_grid is not None:
        m_grid = _check_grid(m_grid, "m_grid", m, min_value=1)
        if m_grid[-1] != m:
            raise ValueError(f"m_grid must end at m={m}; got {m_grid}")
    return _CorrConfig(n, m, m_grid, sigma, _check_dtype(dtype))


def _closed_form(cfg: _CorrConfig):
    from theorylab.adaptive.bounds import correlation_attack_accuracy

    # the closed form's sigma is the noise on the correlation c_j = 2 phi_j - 1: 2 sigma
    values = [correlation_attack_accuracy(cfg.n, mm, 2.0 * cfg.sigma) for mm in cfg.grid]
    return jnp.asarray(values if cfg.m_grid is not None else values[0], cfg.dtype)


def correlation_attack(
    key,
    n: int,
    m: int,
    *,
    sigma: float = 0.0,
    m_grid: Sequence[int] | None = None,
    dtype=jnp.float32,
) -> CorrelationAttackResult:
    """The O(n)-query sign-vote attack on empirical-mean answering (spec §2.3, check A3).

    Pure noise: ``x in {-1, +1}^m`` uniform, ``y = +-1`` independent, ``n`` holdout rows. The
    analyst asks the ``m`` correlation SQs ``phi_j = (1 + x_j y)/2`` (non-adaptively), answered
    naively (``sigma = 0``, :func:`mechanisms.naive`) or with Gaussian noise of standard
    deviation ``sigma`` (:func:`mechanisms.gaussian`, clipped to [0, 1]), then builds
    ``h(x) = sign(sum_j sign(a_j - 1/2) x_j)`` (an answer of exactly 1/2 gives weight 0; a
    zero score counts as half a hit). Its holdout accuracy is about
    ``Phi(sqrt(2m / (pi n (1 + n s^2))))`` where ``s`` is the standard deviation of the noise
    on the *correlation* ``c_j = 2 phi_j - 1``, i.e. ``s = 2 sigma`` for noise ``sigma`` on the
    SQ: ``Phi(sqrt(2m / (pi n (1 + 4 n sigma^2))))``. (Spec §2.3's table -- 0.714 at
    ``n = m = 10^4``, ``sigma = 0.01`` -- adds the noise to the correlation, ``s = sigma``.)
    Its true accuracy is exactly 0.5. This version is specialised to naive/Gaussian answering
    with prefix grids; :func:`theorylab.adaptive.analysts.correlation_attack` runs the same
    attack against any mechanism and records every answer with its certificate.

    Args:
      key: PRNG key. n: holdout size. m: number of correlation queries (= dimension).
      sigma: standard deviation of the Gaussian mechanism's noise on each SQ answer.
      m_grid: also evaluate the attack that stops after each of these numbers of queries
        (increasing, ending at ``m``; the queries are non-adaptive, so a prefix is exactly
        an attack with fewer queries). With it, every field is an array ``[len(m_grid)]``.
      dtype: float dtype.

    Returns:
      :class:`CorrelationAttackResult` (scalars, or ``[len(m_grid)]``; ``closed_form`` from
      :func:`theorylab.adaptive.bounds.correlation_attack_accuracy` at ``2 sigma``).

    Complexity: ``O(n m)`` time, ``2 n m`` floats of memory.
    """
    check_key(key)
    cfg = _correlation_config(n, m, sigma, m_grid, dtype)
    acc, fresh, err = _correlation_jit(key, cfg)
    return CorrelationAttackResult(acc, fresh, _closed_form(cfg), err)


def correlation_attack_seeds(
    keys,
    n: int,
    m: int,
    *,
    sigma: float = 0.0,
    m_grid: Sequence[int] | None = None,
    dtype=jnp.float32,
    chunk: int | None = None,
) -> CorrelationAttackResult:
    """:func:`correlation_attack` over a batch of keys (vmapped in chunks; leading seed axis;
    ``closed_form`` has none)."""
    keys = _check_keys(keys)
    cfg = _correlation_config(n, m, sigma, m_grid, dtype)
    if chunk is None:
        chunk = _auto_chunk(3 * n * m * jnp.dtype(cfg.dtype).itemsize, keys.shape[0])
    chunk = check_int(chunk, "chunk", min_value=1)
    acc, fresh, err = _correlation_seeds_jit(keys, cfg, min(chunk, keys.shape[0]))
    return CorrelationAttackResult(acc, fresh, _closed_form(cfg), err)
