"""Statistical validation of samplers: Gandy–Scott invariance, SBC and Geweke's joint test.

Three user-facing checks that an MCMC kernel or a posterior sampler targets the right
distribution, each returning a :class:`~theorylab.inference.validation.ValidationResult`:

* :func:`gandy_scott_test` — Gandy & Scott (2020), "Unit testing for MCMC and other Monte Carlo
  methods" (arXiv:2001.06465): start chains at exact draws from ``π``, apply the kernel a few
  times, and test with two-sample Kolmogorov–Smirnov tests that the output is still distributed
  as ``π``.
* :func:`sbc` — simulation-based calibration, Talts, Betancourt, Simpson, Vehtari & Gelman
  (2018), "Validating Bayesian inference algorithms with simulation-based calibration"
  (arXiv:1804.06788): for ``θ ~ p(θ)``, ``y ~ p(y | θ)`` and ``L`` posterior draws given ``y``,
  the rank of ``θ`` among the draws is uniform on ``{0, …, L}``; tested per quantity with a χ²
  test on binned ranks. Data-dependent test functions ``g(θ, y)`` (e.g. the log-likelihood)
  are supported as recommended by Modrák et al. (2023, Bayesian Analysis).
* :func:`geweke_test` — Geweke (2004), "Getting it right: joint distribution tests of posterior
  simulators" (JASA 99:799–804): the marginal-conditional simulator (iid ``θ ~ p(θ)``,
  ``y ~ p(y | θ)``) and the successive-conditional simulator (a chain alternating
  ``θ ← kernel(θ, y)`` and ``y ~ p(y | θ)``) have the same stationary joint law exactly when
  the kernel leaves ``p(θ | y)`` invariant; means of test functions are compared by z-tests.

Every check runs several tests (one per coordinate / test function) and combines them with a
Bonferroni correction, ``p = min(1, K · min_k p_k)``; it passes iff ``p > alpha``. Under a
correct sampler the **false-positive rate of each check is at most alpha** (default
``alpha = 1e-4``, so a CI suite of hundreds of such checks fails spuriously with probability
≲ 1 %); a mutant sampler is rejected when its discrepancy is large compared with the Monte
Carlo error, so size the number of draws for the effect you need to detect.

Result convention: :class:`ValidationResult` passes when ``statistic <= threshold``; here the
statistic is the *surprisal* ``−log10 p`` of the Bonferroni-combined p-value and the threshold
is ``−log10 alpha`` (4 for the default). ``details["p_value"]`` holds ``p`` itself, and
``details["p_values"]``/``details["names"]`` the per-quantity p-values.

User functions are JAX functions with explicit keys and are ``vmap``-ed / ``lax.scan``-ed; the
statistical tests themselves run in NumPy/SciPy on the host (float64).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from theorylab.core.checks import (
    check_bool,
    check_float,
    check_int,
    check_key,
    check_type,
    describe,
)
from theorylab.inference.diagnostics import ess_basic
from theorylab.inference.validation import ValidationResult

__all__ = ["gandy_scott_test", "geweke_test", "sbc"]


# --------------------------------------------------------------------------- helpers


def _check_callable(fn: Any, name: str) -> Callable:
    return check_type(fn, name, Callable, "callable")  # type: ignore[arg-type]


def _test_function_list(test_functions: Any, name: str = "test_functions"):
    """``None | callable | sequence of callables | mapping name → callable`` → [(name, fn)]."""
    if test_functions is None:
        return []
    if callable(test_functions):
        return [(getattr(test_functions, "__name__", "g0"), test_functions)]
    if isinstance(test_functions, Mapping):
        items = list(test_functions.items())
    elif isinstance(test_functions, Sequence) and not isinstance(test_functions, str):
        items = [(getattr(fn, "__name__", f"g{i}"), fn) for i, fn in enumerate(test_functions)]
        # Lambdas all share the name "<lambda>": number them.
        items = [(f"g{i}" if n == "<lambda>" else n, fn) for i, (n, fn) in enumerate(items)]
    else:
        raise TypeError(
            f"{name} must be None, a callable, a sequence of callables or a mapping "
            f"name -> callable; got {describe(test_functions)}"
        )
    out = []
    for key, fn in items:
        _check_callable(fn, f"{name}[{key!r}]")
        out.append((str(key), fn))
    return out


def _leaf_names(tree_shapes: Any, root: str) -> list[str]:
    """One name per scalar of a (per-draw) pytree of shapes, in ravel order."""
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree_shapes)[0]:
        base = root + jax.tree_util.keystr(path)
        shape = tuple(leaf.shape)
        if shape == ():
            names.append(base)
        else:
            for idx in np.ndindex(*shape):
                names.append(f"{base}[{','.join(str(i) for i in idx)}]")
    return names


def _flat(tree: Any, batch_ndim: int = 0) -> jax.Array:
    """Concatenate the leaves of a pytree into ``[*batch, D]`` (a common float dtype)."""
    leaves = jax.tree_util.tree_leaves(tree)
    batch = jnp.shape(leaves[0])[:batch_ndim]
    dtype = jnp.result_type(float, *leaves)
    return jnp.concatenate([jnp.reshape(a, (*batch, -1)).astype(dtype) for a in leaves], axis=-1)


def _same_structure(a: Any, b: Any) -> bool:
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)


def _cast_like(new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.asarray(n).astype(o.dtype), new, old)


def _check_scalar_functions(fns, arg_shapes, name: str) -> None:
    for fname, fn in fns:
        out = jax.eval_shape(fn, *arg_shapes)
        if not hasattr(out, "shape") or tuple(out.shape) != ():
            raise ValueError(f"{name}[{fname!r}] must return a scalar; got {describe(out)}")


def _check_draw(shapes: Any, reference: Any, name: str, what: str) -> None:
    """``shapes`` must have ``reference``'s structure and leaf shapes (per draw)."""
    if not _same_structure(shapes, reference):
        raise ValueError(
            f"{name} must return {what} with the structure "
            f"{jax.tree_util.tree_structure(reference)}; got {jax.tree_util.tree_structure(shapes)}"
        )
    for got, want in zip(jax.tree_util.tree_leaves(shapes), jax.tree_util.tree_leaves(reference)):
        if tuple(got.shape) != tuple(want.shape):
            raise ValueError(
                f"{name} must return {what} with leaf shapes matching the position; got "
                f"shape {tuple(got.shape)} where {tuple(want.shape)} was expected"
            )


def _bonferroni(p_values: np.ndarray) -> float:
    return float(min(1.0, np.min(p_values) * p_values.size))


def _result(
    name: str, p_values: np.ndarray, alpha: float, details: dict, inconclusive: str | None = None
) -> ValidationResult:
    """Bonferroni verdict; an ``inconclusive`` reason fails the check with statistic ``inf``."""
    p = _bonferroni(p_values)
    surprisal = abs(float(np.log10(p))) if p > 0 else float("inf")  # p ≤ 1: no "-0.0"
    details = {"p_value": p, "alpha": alpha, "num_tests": int(p_values.size), **details}
    if inconclusive is not None:
        details["inconclusive"] = inconclusive
        surprisal = float("inf")
    passed = p > alpha and inconclusive is None
    return ValidationResult(name, surprisal, float(-np.log10(alpha)), bool(passed), details)


def _batched_map(fn: Callable, keys: jax.Array, batch_size: int | None):
    if batch_size is None:
        return jax.vmap(fn)(keys)
    return jax.lax.map(fn, keys, batch_size=batch_size)


def _cached(builder: Callable) -> Callable:
    """Memoise a builder of jitted runners on its (hashable) arguments, so that repeated checks
    with the same user functions and sizes reuse the compiled program (only the key changes)."""
    cache = functools.lru_cache(maxsize=32)(builder)

    @functools.wraps(builder)
    def get(*args):
        try:
            hash(args)
        except TypeError:  # an unhashable user callable: build afresh
            return builder(*args)
        return cache(*args)

    return get


def _seed_from_key(key: jax.Array) -> list[int]:
    """Entropy for a host-side ``numpy`` generator from a (typed or raw ``uint32``) JAX key."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key).ravel().tolist()


def _check_common(key, alpha):
    check_key(key, "key")
    return check_float(
        alpha, "alpha", min_value=0.0, max_value=1.0, min_inclusive=False, max_inclusive=False
    )


def _check_batch_size(batch_size):
    if batch_size is None:
        return None
    return check_int(batch_size, "batch_size", min_value=1)


# --------------------------------------------------------------------------- Gandy–Scott


@_cached
def _gandy_scott_runner(exact_sampler, kernel_step, fns, num_chains, num_steps):
    def statistics(x):
        columns = [_flat(x, batch_ndim=1)]
        for _, fn in fns:
            columns.append(jax.vmap(fn)(x)[:, None].astype(columns[0].dtype))
        return jnp.concatenate(columns, axis=1)

    @jax.jit
    def run(k_draws, step_keys):
        # One call draws the start points and the reference batch (iid, so splitting is valid).
        both = exact_sampler(k_draws, 2 * num_chains)
        x0 = jax.tree.map(lambda a: a[:num_chains], both)
        reference = jax.tree.map(lambda a: a[num_chains:], both)

        def body(x, keys):
            new = jax.vmap(kernel_step)(keys, x)
            return _cast_like(new, x), None

        moved, _ = jax.lax.scan(body, x0, step_keys)
        return statistics(moved), statistics(reference)

    return run


def gandy_scott_test(
    key: jax.Array,
    exact_sampler: Callable,
    kernel_step: Callable,
    *,
    num_chains: int,
    num_steps: int = 1,
    test_functions: Any = None,
    alpha: float = 1e-4,
) -> ValidationResult:
    """Gandy & Scott (2020) invariance test of an MCMC kernel started in stationarity.

    Draw ``num_chains`` exact samples ``x_i ~ π``, apply ``num_steps`` transitions of the kernel
    to each (``vmap`` over chains, ``lax.scan`` over steps); if the kernel leaves ``π``
    invariant the outputs are again iid ``π``. Each coordinate of the position (and each test
    function) is compared with a fresh independent batch of ``num_chains`` exact draws by a
    two-sample Kolmogorov–Smirnov test (``scipy.stats.ks_2samp``); the p-values are combined
    with Bonferroni. Since the chains start in ``π``, no burn-in or mixing is needed: the test
    is exact for any ``num_steps`` (more steps let a small per-step bias accumulate). A
    quantity with non-finite values after the kernel gets p-value 0 (the check fails).

    Args:
      key: a JAX PRNG key.
      exact_sampler: ``exact_sampler(key, n) -> pytree`` of ``n`` iid draws from ``π`` (every
        leaf has leading axis ``n``); called once with ``n = 2 · num_chains`` (start points and
        reference batch).
      kernel_step: ``kernel_step(key, x) -> x`` for a single position ``x`` (pytree); must
        leave ``π`` invariant.
      num_chains: number of chains (and of reference draws), ≥ 2.
      num_steps: transitions per chain, ≥ 1.
      test_functions: optional extra scalar statistics ``g(x)``: a callable, a sequence of
        callables or a mapping ``name → callable`` (e.g. a log-density or a quadratic form).
      alpha: false-positive rate of the combined test.

    Returns:
      :class:`ValidationResult` (statistic ``−log10 p``, threshold ``−log10 alpha``); details:
      ``p_value``, ``names``, ``p_values``, ``ks_statistics``, ``num_nonfinite``,
      ``num_chains``, ``num_steps``.
    """
    alpha = _check_common(key, alpha)
    _check_callable(exact_sampler, "exact_sampler")
    _check_callable(kernel_step, "kernel_step")
    num_chains = check_int(num_chains, "num_chains", min_value=2)
    num_steps = check_int(num_steps, "num_steps", min_value=1)
    fns = _test_function_list(test_functions)

    batch_shapes = jax.eval_shape(lambda k: exact_sampler(k, 2 * num_chains), key)
    for leaf in jax.tree_util.tree_leaves(batch_shapes):
        if leaf.ndim < 1 or leaf.shape[0] != 2 * num_chains:
            raise ValueError(
                f"exact_sampler(key, n) must return draws with leading axis n (called with "
                f"n = {2 * num_chains}); "
                f"got a leaf of shape {tuple(leaf.shape)}"
            )
    if not jax.tree_util.tree_leaves(batch_shapes):
        raise ValueError("exact_sampler must return at least one array")
    one_shape = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype), batch_shapes)
    _check_draw(jax.eval_shape(kernel_step, key, one_shape), one_shape, "kernel_step", "a position")
    _check_scalar_functions(fns, (one_shape,), "test_functions")

    run = _gandy_scott_runner(exact_sampler, kernel_step, tuple(fns), num_chains, num_steps)
    k_draws, k_steps = jax.random.split(key)
    step_keys = jax.random.split(k_steps, (num_steps, num_chains))
    moved, reference = (np.asarray(a, np.float64) for a in run(k_draws, step_keys))
    names = _leaf_names(one_shape, "x") + [name for name, _ in fns]
    nonfinite = np.sum(~np.isfinite(moved), axis=0) + np.sum(~np.isfinite(reference), axis=0)
    p_values = np.zeros(moved.shape[1])
    ks_stat = np.ones(moved.shape[1])
    for j in np.flatnonzero(nonfinite == 0):
        res = stats.ks_2samp(moved[:, j], reference[:, j])
        p_values[j], ks_stat[j] = res.pvalue, res.statistic
    return _result(
        "Gandy-Scott invariance",
        p_values,
        alpha,
        {
            "names": names,
            "p_values": p_values,
            "ks_statistics": ks_stat,
            "num_nonfinite": nonfinite,
            "num_chains": num_chains,
            "num_steps": num_steps,
        },
    )


# --------------------------------------------------------------------------- SBC


@_cached
def _sbc_runner(prior_sample, simulate_data, posterior_sample, fns, num_draws, thin, batch_size):
    total = num_draws * thin

    def one_replicate(keys):
        k_prior, k_data, k_post = keys[0], keys[1], keys[2]
        theta = prior_sample(k_prior)
        y = simulate_data(k_data, theta)
        draws = posterior_sample(k_post, y, total)
        draws = jax.tree.map(lambda a: a[thin - 1 :: thin], draws)
        truth = [_flat(theta)]
        sample = [_flat(draws, batch_ndim=1)]
        for _, fn in fns:
            truth.append(jnp.reshape(fn(theta, y), (1,)))
            sample.append(jax.vmap(fn, in_axes=(0, None))(draws, y)[:, None])
        dtype = jnp.result_type(*truth, *sample)
        truth = jnp.concatenate([t.astype(dtype) for t in truth])
        sample = jnp.concatenate([s.astype(dtype) for s in sample], axis=1)
        nonfinite = jnp.sum(~jnp.isfinite(sample), axis=0) + ~jnp.isfinite(truth)
        return jnp.sum(sample < truth, axis=0), jnp.sum(sample == truth, axis=0), nonfinite

    return jax.jit(lambda keys: _batched_map(one_replicate, keys, batch_size))


def sbc(
    key: jax.Array,
    prior_sample: Callable,
    simulate_data: Callable,
    posterior_sample: Callable,
    *,
    num_replicates: int,
    num_posterior_draws: int,
    num_bins: int = 20,
    test_functions: Any = None,
    alpha: float = 1e-4,
    thin: int = 1,
    batch_size: int | None = None,
) -> ValidationResult:
    """Simulation-based calibration (Talts et al. 2018).

    For each of ``N = num_replicates`` replicates: ``θ ~ prior_sample``, ``y ~ simulate_data``,
    ``L = num_posterior_draws`` posterior draws given ``y``; the rank of every scalar of ``θ``
    (and of every test function ``g(θ, y)``) among the ``L`` draws, ``#{l : f_l < f}`` plus a
    uniform share of the ties, is uniform on ``{0, …, L}`` when the posterior sampler is exact
    (Talts et al., Theorem 1). Ranks are binned into ``num_bins`` equal bins of
    ``(L + 1)/num_bins`` ranks each and tested for uniformity with Pearson's χ² test
    (``num_bins − 1`` degrees of freedom); p-values are combined with Bonferroni.

    The theorem needs independent posterior draws: autocorrelated MCMC draws produce
    ∪-shaped rank histograms even when the chain is exact. Use ``thin`` to keep every
    ``thin``-th of ``L · thin`` draws (Talts et al. thin to the effective sample size).
    Non-finite values in a quantity give it p-value 0 (the check fails).

    Args:
      key: a JAX PRNG key.
      prior_sample: ``prior_sample(key) -> θ`` (one draw, a pytree).
      simulate_data: ``simulate_data(key, θ) -> y`` (a pytree).
      posterior_sample: ``posterior_sample(key, y, n) -> draws``, a pytree like ``θ`` whose
        leaves have leading axis ``n`` (``n = L · thin``; ``n`` is a static Python int).
      num_replicates: ``N``, at least ``5 · num_bins`` (≥ 5 expected counts per bin).
      num_posterior_draws: ``L`` draws kept after thinning; ``L + 1`` must be divisible by
        ``num_bins`` (e.g. ``L = 99`` with 20, 25, 50 or 100 bins).
      num_bins: histogram bins, ≥ 2.
      test_functions: optional scalar statistics ``g(θ, y)`` (callable, sequence or mapping
        ``name → callable``), ranked like the coordinates of ``θ``.
      alpha: false-positive rate of the combined test.
      thin: keep draws ``thin − 1, 2·thin − 1, …`` of the ``L · thin`` requested draws.
      batch_size: replicates per vectorised batch (``lax.map``) to bound memory; ``None``
        vectorises all replicates at once.

    Returns:
      :class:`ValidationResult` (statistic ``−log10 p``, threshold ``−log10 alpha``); details:
      ``p_value``, ``names``, ``p_values``, ``chi2`` (per-quantity statistics), ``ranks``
      (``[N, Q]`` ints in ``0..L``), ``num_ties`` (``[N, Q]``, draws equal to the true value),
      ``num_nonfinite`` (``[Q]``),
      ``histograms`` (``[Q, num_bins]``), ``expected_count``.
    """
    alpha = _check_common(key, alpha)
    _check_callable(prior_sample, "prior_sample")
    _check_callable(simulate_data, "simulate_data")
    _check_callable(posterior_sample, "posterior_sample")
    num_replicates = check_int(num_replicates, "num_replicates", min_value=1)
    num_draws = check_int(num_posterior_draws, "num_posterior_draws", min_value=1)
    num_bins = check_int(num_bins, "num_bins", min_value=2)
    thin = check_int(thin, "thin", min_value=1)
    batch_size = _check_batch_size(batch_size)
    if (num_draws + 1) % num_bins:
        raise ValueError(
            f"num_bins must divide num_posterior_draws + 1 = {num_draws + 1} (the number of "
            f"possible ranks) so that all bins are equally likely; got num_bins={num_bins}"
        )
    if num_replicates < 5 * num_bins:
        raise ValueError(
            f"num_replicates must be >= 5 * num_bins = {5 * num_bins} (at least 5 expected "
            f"counts per bin for the χ² test); got {num_replicates}"
        )
    fns = _test_function_list(test_functions)
    total = num_draws * thin

    theta_shape = jax.eval_shape(prior_sample, key)
    if not jax.tree_util.tree_leaves(theta_shape):
        raise ValueError("prior_sample must return at least one array")
    y_shape = jax.eval_shape(simulate_data, key, theta_shape)
    draws_shape = jax.eval_shape(lambda k, y: posterior_sample(k, y, total), key, y_shape)
    per_draw = jax.tree.map(lambda s: jax.ShapeDtypeStruct((total, *s.shape), s.dtype), theta_shape)
    _check_draw(draws_shape, per_draw, "posterior_sample", f"{total} draws stacked on axis 0")
    _check_scalar_functions(fns, (theta_shape, y_shape), "test_functions")

    run = _sbc_runner(
        prior_sample, simulate_data, posterior_sample, tuple(fns), num_draws, thin, batch_size
    )
    k_run, k_tie = jax.random.split(key)
    replicate_keys = jax.random.split(k_run, (num_replicates, 3))
    below, ties, nonfinite = (np.asarray(a, np.int64) for a in run(replicate_keys))
    # Ties (discrete parameters, or draws equal to θ) get a uniformly random share, drawn on the
    # host from a NumPy generator seeded by the key (keeps threefry out of the compiled program).
    rng = np.random.default_rng(_seed_from_key(k_tie))
    ranks = below + rng.integers(0, ties + 1)
    width = (num_draws + 1) // num_bins
    hist = np.stack([np.bincount(r // width, minlength=num_bins) for r in ranks.T])
    expected = num_replicates / num_bins
    chi2 = ((hist - expected) ** 2 / expected).sum(axis=1)
    p_values = stats.chi2.sf(chi2, df=num_bins - 1)
    nonfinite = nonfinite.sum(axis=0)
    p_values[nonfinite > 0] = 0.0
    names = _leaf_names(theta_shape, "theta") + [name for name, _ in fns]
    return _result(
        "simulation-based calibration",
        p_values,
        alpha,
        {
            "names": names,
            "p_values": p_values,
            "chi2": chi2,
            "ranks": ranks,
            "num_ties": ties,
            "num_nonfinite": nonfinite,
            "histograms": hist,
            "expected_count": expected,
            "num_posterior_draws": num_draws,
            "thin": thin,
        },
    )


# --------------------------------------------------------------------------- Geweke


def _moment_values(fns, include_moments):
    def g_values(theta, y):
        out = []
        if include_moments:
            flat = _flat(theta)
            out += [flat, flat**2]
        for _, fn in fns:
            out.append(jnp.reshape(fn(theta, y), (1,)))
        dtype = jnp.result_type(*out)
        return jnp.concatenate([o.astype(dtype) for o in out])

    return g_values


@_cached
def _geweke_marginal_runner(prior_sample, simulate_data, fns, include_moments, batch_size):
    g_values = _moment_values(fns, include_moments)

    def marginal(keys):
        k_prior, k_data = keys[0], keys[1]
        theta = prior_sample(k_prior)
        return g_values(theta, simulate_data(k_data, theta))

    return jax.jit(lambda keys: _batched_map(marginal, keys, batch_size))


@_cached
def _geweke_successive_runner(
    prior_sample, simulate_data, kernel_step, fns, include_moments, num_iterations
):
    g_values = _moment_values(fns, include_moments)

    def successive(k_start, chain_keys):
        def body(theta, keys):
            # (θ, y) ~ p(θ, y) after the data draw, and the kernel keeps p(θ | y) invariant,
            # so (θ', y) ~ p(θ, y) again: the chain is stationary from its exact start.
            y = simulate_data(keys[0], theta)
            theta = _cast_like(kernel_step(keys[1], theta, y), theta)
            return theta, g_values(theta, y)

        _, values = jax.lax.scan(body, prior_sample(k_start), chain_keys)
        return values

    return jax.jit(successive)


def geweke_test(
    key: jax.Array,
    prior_sample: Callable,
    simulate_data: Callable,
    kernel_step: Callable,
    *,
    num_iterations: int,
    test_functions: Any = None,
    include_moments: bool = True,
    alpha: float = 1e-4,
    num_marginal: int | None = None,
    min_ess: float = 100.0,
    batch_size: int | None = None,
) -> ValidationResult:
    """Geweke (2004) joint-distribution test of a posterior simulator.

    * Marginal-conditional simulator: ``M = num_marginal`` iid pairs ``θ ~ p(θ)``,
      ``y ~ p(y | θ)``.
    * Successive-conditional simulator: one chain started at ``θ ~ p(θ)`` and iterating
      ``y ~ p(y | θ)``, ``θ ← kernel_step(key, θ, y)`` for ``num_iterations`` steps
      (``lax.scan``), recording ``g(θ, y)`` after each kernel step. If the kernel leaves
      ``p(θ | y)`` invariant, every recorded pair is distributed as ``p(θ, y)``: the chain is
      stationary from the start and needs no burn-in.

    For every test function ``g(θ, y)``,
    ``z = (ḡ_MC − ḡ_SC) / sqrt(se_MC² + se_SC²)`` with ``se_MC = sd/sqrt(M)`` and
    ``se_SC = sd/sqrt(ESS)``, the ESS being
    :func:`~theorylab.inference.diagnostics.ess_basic` of the chain's values (Geyer's initial
    monotone sequence, in place of Geweke's spectral estimate); two-sided normal p-values,
    Bonferroni-combined.

    The check needs a mixing chain: a kernel that makes the joint chain non-stationary (e.g.
    one that targets an improper "posterior" without the prior, so that ``θ`` performs a random
    walk) gives a tiny ESS, hence a huge ``se_SC`` and no power. Therefore the check **fails as
    inconclusive** (statistic ``inf``, ``details["inconclusive"]`` says why) when the ESS of any
    test function is below ``min_ess``; increase ``num_iterations`` for a valid but slowly
    mixing kernel. A test function with non-finite values gets p-value 0 (the check fails).

    Args:
      key: a JAX PRNG key.
      prior_sample: ``prior_sample(key) -> θ`` (one draw, a pytree).
      simulate_data: ``simulate_data(key, θ) -> y``.
      kernel_step: ``kernel_step(key, θ, y) -> θ``, a transition leaving ``p(θ | y)``
        invariant (e.g. one Gibbs sweep or a few MH steps).
      num_iterations: length of the successive-conditional chain, ≥ 8.
      test_functions: optional scalar statistics ``g(θ, y)`` (callable, sequence or mapping
        ``name → callable``).
      include_moments: also test ``θ_i`` and ``θ_i²`` for every scalar of ``θ`` (default).
      alpha: false-positive rate of the combined test.
      num_marginal: marginal-conditional draws (default ``num_iterations``), ≥ 2.
      min_ess: smallest acceptable ESS of every test function along the chain (default 100).
      batch_size: marginal-conditional draws per vectorised batch (``lax.map``); ``None``
        vectorises all at once.

    Returns:
      :class:`ValidationResult` (statistic ``−log10 p``, threshold ``−log10 alpha``); details:
      ``p_value``, ``names``, ``p_values``, ``z``, ``mean_mc``, ``mean_sc``, ``se_mc``,
      ``se_sc``, ``ess_sc`` and, when it failed for lack of mixing, ``inconclusive``.
    """
    alpha = _check_common(key, alpha)
    _check_callable(prior_sample, "prior_sample")
    _check_callable(simulate_data, "simulate_data")
    _check_callable(kernel_step, "kernel_step")
    num_iterations = check_int(num_iterations, "num_iterations", min_value=8)
    num_marginal = num_iterations if num_marginal is None else num_marginal
    num_marginal = check_int(num_marginal, "num_marginal", min_value=2)
    min_ess = check_float(min_ess, "min_ess", min_value=0.0)
    batch_size = _check_batch_size(batch_size)
    include_moments = check_bool(include_moments, "include_moments")
    fns = _test_function_list(test_functions)
    if not fns and not include_moments:
        raise ValueError(
            "test_functions must name at least one function when include_moments=False"
        )

    theta_shape = jax.eval_shape(prior_sample, key)
    if not jax.tree_util.tree_leaves(theta_shape):
        raise ValueError("prior_sample must return at least one array")
    y_shape = jax.eval_shape(simulate_data, key, theta_shape)
    _check_draw(
        jax.eval_shape(kernel_step, key, theta_shape, y_shape),
        theta_shape,
        "kernel_step",
        "a parameter θ",
    )
    _check_scalar_functions(fns, (theta_shape, y_shape), "test_functions")

    fns = tuple(fns)
    mc_run = _geweke_marginal_runner(prior_sample, simulate_data, fns, include_moments, batch_size)
    sc_run = _geweke_successive_runner(
        prior_sample, simulate_data, kernel_step, fns, include_moments, num_iterations
    )
    k_mc, k_start, k_chain = jax.random.split(key, 3)
    mc = np.asarray(mc_run(jax.random.split(k_mc, (num_marginal, 2))), np.float64)
    chain_keys = jax.random.split(k_chain, (num_iterations, 2))
    sc = np.asarray(sc_run(k_start, chain_keys), np.float64)
    nonfinite = np.sum(~np.isfinite(mc), axis=0) + np.sum(~np.isfinite(sc), axis=0)
    mc = np.where(nonfinite > 0, 0.0, mc)  # failed quantities: p-value 0 below
    sc = np.where(nonfinite > 0, 0.0, sc)

    mean_mc, mean_sc = mc.mean(axis=0), sc.mean(axis=0)
    sd_mc, sd_sc = mc.std(axis=0, ddof=1), sc.std(axis=0, ddof=1)
    ess_sc = np.array(
        [
            float(ess_basic(sc[None, :, j])) if sd_sc[j] > 0 else float(num_iterations)
            for j in range(sc.shape[1])
        ]
    )
    se_mc = sd_mc / np.sqrt(num_marginal)
    se_sc = sd_sc / np.sqrt(ess_sc)
    diff = mean_mc - mean_sc
    se = np.sqrt(se_mc**2 + se_sc**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / se, np.where(diff == 0, 0.0, np.inf))
    z = np.where(nonfinite > 0, np.inf, z)
    p_values = 2.0 * stats.norm.sf(np.abs(z))

    names = []
    if include_moments:
        coords = _leaf_names(theta_shape, "theta")
        names += coords + [f"{c}^2" for c in coords]
    names += [name for name, _ in fns]
    low = [f"{n} (ESS {e:.1f})" for n, e in zip(names, ess_sc) if e < min_ess]
    inconclusive = None
    if low:
        inconclusive = (
            f"successive-conditional ESS below min_ess={min_ess:g} for {', '.join(low)}: the "
            "chain mixes too slowly or is not stationary (increase num_iterations, or check "
            "that kernel_step leaves p(θ | y) invariant)"
        )
    return _result(
        "Geweke joint-distribution test",
        p_values,
        alpha,
        {
            "names": names,
            "p_values": p_values,
            "z": z,
            "mean_mc": mean_mc,
            "mean_sc": mean_sc,
            "se_mc": se_mc,
            "se_sc": se_sc,
            "ess_sc": ess_sc,
            "num_nonfinite": nonfinite,
            "num_iterations": num_iterations,
            "num_marginal": num_marginal,
        },
        inconclusive,
    )
