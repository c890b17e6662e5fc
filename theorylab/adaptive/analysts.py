"""Simulated analysts and attacks, and a harness that compares mechanisms against them.

Every analyst is a pure function ``analyst(key, mechanism, *, n, ...) -> Record`` that draws
its own data (holdout, training set and a fresh set from a known distribution), interacts
with ``mechanism`` through :func:`theorylab.adaptive.mechanisms.answer_means` and records,
for every query it asked, the mechanism's answer, the empirical holdout value, the value on
fresh data, the population value (when known in closed form) and the certificate. Iterative
analysts are written as ``analyst_step`` functions inside one ``lax.scan``; everything is
jit-able with the mechanism static and ``vmap``-ped over seeds by :func:`run_seeds`.

Analysts (spec §2.3, §4.3):

- :func:`correlation_attack` -- ask ``m`` correlation queries on pure noise, then the accuracy
  of the sign-vote classifier built from the answers (the O(n)-query attack on naive
  answering; in-sample accuracy ``Phi(sqrt(2m/(pi n (1 + n sigma^2))))``, true accuracy 1/2).
- :func:`reconstruction_attack` -- Dinur–Nissim: random subset-sum queries on secret holdout
  bits, least-squares reconstruction (naive answering with ``m = 2n`` queries recovers the
  bits; noise of order ``1/sqrt(n)`` and above defeats it).
- :func:`nonadaptive_random` -- ``m`` random halfspace-accuracy queries fixed in advance.
- :func:`gradient_descent_analyst` -- logistic-regression gradient descent on SQ gradients
  (a natural, "progressive" analyst in the sense of Zrnic & Hardt ICML'19).
- :func:`grid_search_analyst` -- ridge classifiers over a regularisation grid, selected by
  holdout accuracy.

The Science feature-selection analyst and the leaderboard boosting attack live in
:mod:`theorylab.adaptive.experiments`.

:func:`compare` runs mechanisms x analyst x seeds and summarises max/mean error, certified
width, coverage and budget (spec §4.4); :func:`plot_comparison` draws it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.adaptive import mechanisms as mech_lib
from theorylab.adaptive.mechanisms import Mechanism
from theorylab.core.checks import check_float, check_int, check_key

__all__ = [
    "Record",
    "Summary",
    "compare",
    "correlation_attack",
    "gradient_descent_analyst",
    "grid_search_analyst",
    "nonadaptive_random",
    "plot_comparison",
    "reconstruction_attack",
    "run_seeds",
    "summarize",
]


class Record(NamedTuple):
    """One interaction between an analyst and a mechanism (one entry per query).

    Attributes:
      reported: the mechanism's answers (NaN when not answered).
      holdout: empirical holdout values ``E_S[phi]``.
      fresh: values on an independent fresh sample.
      true: population values ``P[phi]`` (NaN where no closed form is available; the
        summaries then fall back to ``fresh``).
      answered: whether each query was answered.
      halfwidth: certified half-width of each answer (inf: none).
      budget_used: the mechanism's budget spent at the end.
      final: dict of scalar outcomes of the analysis (e.g. the attack classifier's
        reported / fresh accuracy, the fraction of reconstructed bits).
    """

    reported: Any
    holdout: Any
    fresh: Any
    true: Any
    answered: Any
    halfwidth: Any
    budget_used: Any
    final: Any


def _rademacher(key, shape):
    return jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0).astype(jnp.float32)


def _labelled_noise(key, n, d, features):
    """Pure noise: ``x`` independent of ``y``; ``x`` Rademacher or standard normal."""
    kx, ky = jax.random.split(key)
    x = _rademacher(kx, (n, d)) if features == "rademacher" else jax.random.normal(kx, (n, d))
    return x, _rademacher(ky, (n,))


def _three_sets(key, n, d, n_fresh, features):
    kh, kt, kf = jax.random.split(key, 3)
    return (
        _labelled_noise(kh, n, d, features),
        _labelled_noise(kt, n, d, features),
        _labelled_noise(kf, n_fresh, d, features),
    )


def _answer(mechanism, state, holdout_means, train_means):
    return mech_lib.answer_means(mechanism, state, holdout_means, train_means)


def _sign_vote_accuracy(w, data):
    """Accuracy of ``sign(<w, x>)`` against ``y``; a zero margin counts one half."""
    x, y = data
    margin = y * (x @ w)
    return jnp.mean(jnp.where(margin > 0, 1.0, jnp.where(margin == 0, 0.5, 0.0)))


def _check_common(key, mechanism, n):
    check_key(key)
    if not isinstance(mechanism, Mechanism):
        raise TypeError(
            f"mechanism must be a theorylab.adaptive mechanism; got {type(mechanism).__name__}"
        )
    if mechanism.needs_rows:
        raise ValueError(
            f"the {mechanism.name} mechanism needs per-row values; these analysts submit "
            "statistical queries by their means (use the Ladder with the boosting attack in "
            "theorylab.adaptive.experiments)"
        )
    return check_int(n, "n", min_value=2)


# ---------------------------------------------------------------------------------------------
# Correlation attack (spec §2.3)
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("mechanism", "n", "m", "n_fresh"))
def _correlation_attack(key, mechanism, n, m, n_fresh):
    k_data, k_mech = jax.random.split(key)
    holdout, train, fresh = _three_sets(k_data, n, m, n_fresh, "rademacher")
    state = mech_lib.init_mechanism(mechanism, k_mech, n)

    def correlations(data):  # phi_j(x, y) = (1 + x_j y) / 2, in [0, 1] for +-1 features
        x, y = data
        return 0.5 + 0.5 * (y @ x) / x.shape[0]

    h, t, f = correlations(holdout), correlations(train), correlations(fresh)
    answers, cert, state = _answer(mechanism, state, h, t)
    # the attack: vote with the sign of each answered correlation (0 if unanswered)
    w = jnp.where(jnp.isfinite(answers), jnp.sign(answers - 0.5), 0.0)
    acc_h, acc_t, acc_f = (_sign_vote_accuracy(w, s) for s in (holdout, train, fresh))
    a2, cert2, state = _answer(mechanism, state, acc_h[None], acc_t[None])
    return Record(
        reported=jnp.concatenate([answers, a2]),
        holdout=jnp.concatenate([h, acc_h[None]]),
        fresh=jnp.concatenate([f, acc_f[None]]),
        true=jnp.full((m + 1,), 0.5, jnp.float32),
        answered=jnp.concatenate([cert.answered, cert2.answered]),
        halfwidth=jnp.concatenate([cert.halfwidth, cert2.halfwidth]),
        budget_used=state.budget_used,
        final={
            "attack_reported": a2[0],
            "attack_holdout": acc_h,
            "attack_fresh": acc_f,
            "attack_true": jnp.asarray(0.5, jnp.float32),
        },
    )


def correlation_attack(
    key,
    mechanism: Mechanism,
    *,
    n: int,
    m: int,
    n_fresh: int | None = None,
) -> Record:
    """The O(n)-query attack on answering with empirical means (spec §2.3).

    Pure noise: ``x`` uniform in ``{-1, +1}^m``, ``y = +-1`` independent.
    Round 1 asks the ``m`` correlation queries ``phi_j = (1 + x_j y)/2`` (population value
    1/2); round 2 asks the accuracy of ``h(x) = sign(sum_j sign(a_j - 1/2) x_j)``, whose
    population value is exactly 1/2. With naive answering the reported accuracy is about
    ``Phi(sqrt(2m/(pi n)))`` (0.79 at ``m = n = 10^4``), with Gaussian noise ``sigma`` on
    each SQ about ``Phi(sqrt(2m/(pi n (1 + 4 n sigma^2))))``
    (:func:`theorylab.adaptive.bounds.correlation_attack_accuracy`, whose noise is on the
    correlation scale: Gaussian noise ``sigma`` on the SQ is ``2 sigma`` there).
    :func:`theorylab.adaptive.experiments.correlation_attack` is a specialised version
    (naive/Gaussian only, prefix grids over ``m``).

    Returns a :class:`Record` of ``m + 1`` queries; ``final`` holds the attack classifier's
    reported, holdout, fresh and true accuracy. Memory: three ``[n, m]`` float32 matrices.
    """
    n = _check_common(key, mechanism, n)
    m = check_int(m, "m", min_value=1)
    n_fresh = n if n_fresh is None else check_int(n_fresh, "n_fresh", min_value=1)
    return _correlation_attack(key, mechanism, n, m, n_fresh)


# ---------------------------------------------------------------------------------------------
# Reconstruction attack (Dinur & Nissim 2003)
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("mechanism", "n", "m"))
def _reconstruction_attack(key, mechanism, n, m):
    k_bits, k_sub, k_train, k_mech = jax.random.split(key, 4)
    bits = jax.random.bernoulli(k_bits, 0.5, (n,)).astype(jnp.float32)
    train_bits = jax.random.bernoulli(k_train, 0.5, (n,)).astype(jnp.float32)
    subsets = jax.random.bernoulli(k_sub, 0.5, (m, n)).astype(jnp.float32)
    state = mech_lib.init_mechanism(mechanism, k_mech, n)
    # query j: phi_j(i, b) = b * 1[i in S_j], mean = |S_j ∩ {b = 1}| / n
    h = subsets @ bits / n
    t = subsets @ train_bits / n
    answers, cert, state = _answer(mechanism, state, h, t)
    use = jnp.isfinite(answers)
    a = jnp.where(use, answers, 0.0) * n
    A = subsets * use[:, None]
    # least squares with a tiny ridge (rows of unanswered queries are zero)
    gram = A.T @ A + 1e-6 * jnp.eye(n)
    estimate = jnp.linalg.solve(gram, A.T @ a)
    recovered = jnp.mean((estimate > 0.5) == (bits > 0.5))
    return Record(
        reported=answers,
        holdout=h,
        fresh=jnp.full((m,), jnp.nan, jnp.float32),
        true=jnp.full((m,), jnp.nan, jnp.float32),
        answered=cert.answered,
        halfwidth=cert.halfwidth,
        budget_used=state.budget_used,
        final={"recovered_fraction": recovered},
    )


def reconstruction_attack(key, mechanism: Mechanism, *, n: int, m: int) -> Record:
    """Dinur–Nissim reconstruction of secret holdout bits from subset-sum queries.

    The holdout is ``n`` records ``(i, b_i)`` with secret uniform bits ``b_i``; query ``j``
    asks the fraction of records in a uniformly random subset ``S_j`` with ``b_i = 1``
    (a statistical query). The attacker solves the least-squares system
    ``min_b sum_j (|S_j| . b - n a_j)^2`` and rounds. Naive answering with ``m >= n``
    queries recovers every bit; answers with error ``o(1/sqrt(n))`` still recover most, and
    noise ``sigma >> 1/sqrt(n)`` (the price of answering ``~n`` adaptive queries) does not.
    ``final['recovered_fraction']`` is the fraction of correctly reconstructed bits (1/2 =
    chance). There is no population here (``true``/``fresh`` are NaN). O(m n^2 + n^3).
    """
    n = _check_common(key, mechanism, n)
    m = check_int(m, "m", min_value=1)
    if n > 4096:
        raise ValueError(f"n must be <= 4096 for the dense least-squares attack; got {n}")
    return _reconstruction_attack(key, mechanism, n, m)


# ---------------------------------------------------------------------------------------------
# Benign analysts
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("mechanism", "n", "m", "d", "n_fresh"))
def _nonadaptive_random(key, mechanism, n, m, d, n_fresh):
    k_data, k_q, k_mech = jax.random.split(key, 3)
    holdout, train, fresh = _three_sets(k_data, n, d, n_fresh, "gaussian")
    state = mech_lib.init_mechanism(mechanism, k_mech, n)
    directions = jax.random.normal(k_q, (m, d))
    acc = jax.vmap(_sign_vote_accuracy, in_axes=(0, None))
    h, t, f = acc(directions, holdout), acc(directions, train), acc(directions, fresh)
    answers, cert, state = _answer(mechanism, state, h, t)
    return Record(
        answers,
        h,
        f,
        jnp.full((m,), 0.5, jnp.float32),
        cert.answered,
        cert.halfwidth,
        state.budget_used,
        {},
    )


def nonadaptive_random(
    key, mechanism: Mechanism, *, n: int, m: int, d: int = 20, n_fresh: int | None = None
) -> Record:
    """``m`` accuracy queries of random Gaussian halfspaces, fixed before any answer.

    Data: ``x ~ N(0, I_d)`` independent of ``y = +-1``, so every population accuracy is
    exactly 1/2. The non-adaptive baseline: Hoeffding + union bound applies.
    """
    n = _check_common(key, mechanism, n)
    m = check_int(m, "m", min_value=1)
    d = check_int(d, "d", min_value=1)
    n_fresh = n if n_fresh is None else check_int(n_fresh, "n_fresh", min_value=1)
    return _nonadaptive_random(key, mechanism, n, m, d, n_fresh)


def _planted(key, n, d, signal):
    """``y = +-1``; ``x = N(0, I) + signal * y * e_1`` clipped to [-3, 3] (bounded queries)."""
    kx, ky = jax.random.split(key)
    y = _rademacher(ky, (n,))
    x = jax.random.normal(kx, (n, d)).at[:, 0].add(signal * y)
    return jnp.clip(x, -3.0, 3.0), y


def _three_planted(key, n, d, n_fresh, signal):
    kh, kt, kf = jax.random.split(key, 3)
    return _planted(kh, n, d, signal), _planted(kt, n, d, signal), _planted(kf, n_fresh, d, signal)


@functools.partial(
    jax.jit, static_argnames=("mechanism", "n", "d", "steps", "lr", "signal", "n_fresh")
)
def _gradient_descent(key, mechanism, n, d, steps, lr, signal, n_fresh):
    k_data, k_mech = jax.random.split(key)
    holdout, train, fresh = _three_planted(k_data, n, d, n_fresh, signal)
    state = mech_lib.init_mechanism(mechanism, k_mech, n)
    bound = 3.0

    def grad_queries(w, data):
        # phi_j(x, y) = 1/2 + (sigmoid(<w,x>) - [y=1]) x_j / (2B): in [0, 1] since |x_j| <= B
        x, y = data
        resid = jax.nn.sigmoid(x @ w) - (y > 0)
        return 0.5 + (resid @ x) / (2.0 * bound * x.shape[0])

    def analyst_step(carry, _):
        w, st = carry
        h, t, f = grad_queries(w, holdout), grad_queries(w, train), grad_queries(w, fresh)
        answers, cert, st = _answer(mechanism, st, h, t)
        grad = jnp.where(jnp.isfinite(answers), (answers - 0.5) * 2.0 * bound, 0.0)
        return (w - lr * grad, st), (answers, h, f, cert.answered, cert.halfwidth)

    (w, state), (a, h, f, ans, hw) = jax.lax.scan(
        analyst_step, (jnp.zeros((d,)), state), None, length=steps
    )
    acc = [_sign_vote_accuracy(w, s) for s in (holdout, train, fresh)]
    bayes = jax.scipy.stats.norm.cdf(jnp.asarray(signal, jnp.float32))
    return Record(
        a.reshape(-1),
        h.reshape(-1),
        f.reshape(-1),
        jnp.full((steps * d,), jnp.nan),
        ans.reshape(-1),
        hw.reshape(-1),
        state.budget_used,
        {
            "holdout_accuracy": acc[0],
            "train_accuracy": acc[1],
            "fresh_accuracy": acc[2],
            "bayes_accuracy_unclipped": bayes,
        },
    )


def gradient_descent_analyst(
    key,
    mechanism: Mechanism,
    *,
    n: int,
    d: int = 10,
    steps: int = 20,
    lr: float = 1.0,
    signal: float = 1.0,
    n_fresh: int | None = None,
) -> Record:
    """Logistic-regression gradient descent whose gradients are statistical queries.

    Data: ``y = +-1``, ``x = N(0, I_d) + signal * y * e_1`` clipped to ``[-3, 3]``. Each of
    ``steps`` steps asks the ``d`` gradient coordinates as SQs
    ``phi_j = 1/2 + (sigmoid(<w,x>) - [y=1]) x_j / 6`` and moves ``w`` by ``-lr`` times the
    decoded answers. Records ``steps * d`` queries (``true`` is NaN: compare with ``fresh``);
    ``final`` holds the holdout / train / fresh accuracy of the final ``w``.
    """
    n = _check_common(key, mechanism, n)
    d = check_int(d, "d", min_value=1)
    steps = check_int(steps, "steps", min_value=1)
    lr = check_float(lr, "lr", min_value=0.0, min_inclusive=False)
    signal = check_float(signal, "signal", min_value=0.0)
    n_fresh = n if n_fresh is None else check_int(n_fresh, "n_fresh", min_value=1)
    return _gradient_descent(key, mechanism, n, d, steps, lr, signal, n_fresh)


@functools.partial(
    jax.jit, static_argnames=("mechanism", "n", "d", "num_models", "signal", "n_fresh")
)
def _grid_search(key, mechanism, n, d, num_models, signal, n_fresh):
    k_data, k_mech = jax.random.split(key)
    holdout, train, fresh = _three_planted(k_data, n, d, n_fresh, signal)
    state = mech_lib.init_mechanism(mechanism, k_mech, n)
    x_t, y_t = train
    lambdas = jnp.logspace(-2, 4, num_models) * n
    gram = x_t.T @ x_t
    rhs = x_t.T @ y_t
    weights = jax.vmap(lambda lam: jnp.linalg.solve(gram + lam * jnp.eye(d), rhs))(lambdas)
    acc = jax.vmap(_sign_vote_accuracy, in_axes=(0, None))
    h, t, f = acc(weights, holdout), acc(weights, train), acc(weights, fresh)
    answers, cert, state = _answer(mechanism, state, h, t)
    best = jnp.argmax(jnp.where(jnp.isfinite(answers), answers, -jnp.inf))
    return Record(
        answers,
        h,
        f,
        jnp.full((num_models,), jnp.nan),
        cert.answered,
        cert.halfwidth,
        state.budget_used,
        {
            "selected_reported": answers[best],
            "selected_fresh": f[best],
            "selected_holdout": h[best],
        },
    )


def grid_search_analyst(
    key,
    mechanism: Mechanism,
    *,
    n: int,
    d: int = 50,
    num_models: int = 30,
    signal: float = 0.3,
    n_fresh: int | None = None,
) -> Record:
    """Hyperparameter grid search selected on the holdout (a benign adaptive analyst).

    Ridge-regression classifiers ``w_lambda`` trained on the training set for
    ``num_models`` regularisation strengths (log grid ``10^-2 .. 10^4`` times ``n``); their
    holdout accuracies are asked in one batch and the best reported one is selected
    (``final['selected_reported']`` vs ``final['selected_fresh']``).
    """
    n = _check_common(key, mechanism, n)
    d = check_int(d, "d", min_value=1)
    num_models = check_int(num_models, "num_models", min_value=1)
    signal = check_float(signal, "signal", min_value=0.0)
    n_fresh = n if n_fresh is None else check_int(n_fresh, "n_fresh", min_value=1)
    return _grid_search(key, mechanism, n, d, num_models, signal, n_fresh)


# ---------------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------------


def run_seeds(analyst: Callable[..., Record], keys, mechanism: Mechanism, **kwargs) -> Record:
    """Run ``analyst`` once per key (``vmap``; every field gains a leading seeds axis)."""
    keys = jnp.asarray(keys)
    if keys.ndim < 1:
        raise ValueError("keys must be a batch of PRNG keys (jax.random.split(key, seeds))")
    # the analyst validates its arguments in Python while vmap traces it (before any work)
    return jax.vmap(lambda k: analyst(k, mechanism, **kwargs))(keys)


class Summary(NamedTuple):
    """Per-seed summaries of a batch of :class:`Record` (arrays of shape ``[seeds]``).

    Attributes:
      max_error / mean_error: max / mean of ``|reported - reference|`` over answered queries,
        where the reference is the population value when known, else the fresh value.
      halfwidth: the smallest certified half-width among answered queries (inf: none).
      coverage: every answered query within its half-width of the reference (only
        meaningful where ``halfwidth`` is finite, the reference is the population value, and
        the certificate bounds ``|answer - P[phi]|`` -- not for SparseValidate, whose answers
        are decisions with a margin, nor for the Ladder, whose bound is on the running
        minimum).
      answered_fraction: fraction of queries answered.
      budget_used: the mechanism's budget spent.
      final: the analyst's ``final`` dict (per seed).
    """

    max_error: Any
    mean_error: Any
    halfwidth: Any
    coverage: Any
    answered_fraction: Any
    budget_used: Any
    final: Any


def summarize(record: Record) -> Summary:
    """Summaries of a (seed-batched) :class:`Record`; see :class:`Summary`."""
    ref = jnp.where(jnp.isfinite(record.true), record.true, record.fresh)
    err = jnp.abs(record.reported - ref)
    ok = record.answered & jnp.isfinite(err)
    max_err = jnp.max(jnp.where(ok, err, 0.0), axis=-1)
    count = jnp.maximum(jnp.sum(ok, axis=-1), 1)
    mean_err = jnp.sum(jnp.where(ok, err, 0.0), axis=-1) / count
    hw = jnp.min(jnp.where(record.answered, record.halfwidth, jnp.inf), axis=-1)
    covered = jnp.all(jnp.where(ok, err <= record.halfwidth, True), axis=-1)
    return Summary(
        max_error=max_err,
        mean_error=mean_err,
        halfwidth=hw,
        coverage=covered,
        answered_fraction=jnp.mean(record.answered, axis=-1),
        budget_used=record.budget_used,
        final=record.final,
    )


def compare(
    key,
    mechanisms: Mapping[str, Mechanism],
    analyst: Callable[..., Record],
    *,
    seeds: int,
    grid: Sequence[Mapping[str, Any]] | None = None,
    **kwargs,
) -> dict[str, list[dict[str, Any]]]:
    """Mechanisms x analyst x parameter grid x seeds -> summaries (spec §4.4).

    Args:
      key: PRNG key; every (mechanism, grid point) uses the same seeds (common random
        numbers), so differences between mechanisms are not seed noise.
      mechanisms: name -> mechanism.
      analyst: one of this module's analysts (or any function with the same signature).
      seeds: number of independent runs.
      grid: list of keyword dicts varied across runs (e.g. ``[{"m": 100}, {"m": 1000}]``).
      **kwargs: fixed keyword arguments of the analyst (e.g. ``n=2000``).

    Returns:
      ``{name: [row per grid point]}``, each row a dict with the grid values and NumPy
      arrays (per seed) of every :class:`Summary` field plus means.
    """
    check_key(key)
    seeds = check_int(seeds, "seeds", min_value=1)
    if not isinstance(mechanisms, Mapping) or not mechanisms:
        raise ValueError(
            "mechanisms must be a non-empty mapping name -> mechanism; got "
            f"{type(mechanisms).__name__}"
        )
    grid = [{}] if grid is None else list(grid)
    if not all(isinstance(point, Mapping) for point in grid):
        raise TypeError("grid must be a list of keyword dicts, e.g. [{'m': 100}, {'m': 1000}]")
    keys = jax.random.split(key, seeds)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, mechanism in mechanisms.items():
        rows = []
        for point in grid:
            record = run_seeds(analyst, keys, mechanism, **{**kwargs, **point})
            s = summarize(record)
            row: dict[str, Any] = dict(point)
            for field in (
                "max_error",
                "mean_error",
                "halfwidth",
                "coverage",
                "answered_fraction",
                "budget_used",
            ):
                value = np.asarray(getattr(s, field))
                row[field] = value
                row[f"{field}_mean"] = float(np.mean(value))
            row["final"] = {k: np.asarray(v) for k, v in s.final.items()}
            rows.append(row)
        out[name] = rows
    return out


def plot_comparison(
    results: Mapping[str, list[dict[str, Any]]], x: str, ax=None, *, certified: bool = True
):
    """Max error (solid) and certified half-width (dashed) vs grid parameter ``x``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for name, rows in results.items():
        xs = [row[x] for row in rows]
        line = ax.plot(xs, [row["max_error_mean"] for row in rows], marker="o", label=name)[0]
        if certified:
            widths = [row["halfwidth_mean"] for row in rows]
            if all(math.isfinite(w) for w in widths):
                ax.plot(xs, widths, ls="--", color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel("max |answer - truth| (solid), certified width (dashed)")
    ax.legend(fontsize=7)
    return ax
