"""The reusable-holdout experiments (spec §2.1-2.3, acceptance checks A1-A4) at CI scale.

Scaling used to transfer the paper-scale thresholds (n = d = 10^4) to n = d = 2000:

- Science'15 (A1, A2). Every accuracy is Phi of a z-score built from correlations of size
  ``O(1/sqrt n)`` summed over ``O(d)`` variables, so with ``d/n`` fixed and ``k`` (and the
  number of signal variables) proportional to ``d``, the *expected* curves are the same at
  both scales: our ``k`` corresponds to the paper's ``k * 10^4 / d``. Closed form for Fig. 1:
  a fraction ``2 (1 - Phi(1))^2 = 0.0504`` of the variables is selected, each with holdout
  correlation ``E[|Z| | |Z| > 1]/sqrt n = 1.525/sqrt n``, so the standard holdout accuracy
  of the classifier using all of them is ``Phi(1.525 sqrt(0.0504 d/n)) = 0.634`` at any scale
  (paper: > 0.63). The seed-to-seed standard deviation grows as ``sqrt(10^4/n) = sqrt 5``.
  Thresholdout's T = 4/sqrt(n) and sigma = 1/sqrt(n) are *not* scale-free on the accuracy
  scale (0.089 and 0.022 at n = 2000 instead of 0.04 and 0.01), so its tolerance "T + 0.01"
  becomes ``T + sigma = 5/sqrt(n) = 0.112``.
- Correlation attack (A3): the closed form is checked directly at n = 2000.
- Boosting attack (A4): the Kaggle bias is ``Theta(sqrt(k/n))``; derived here (see
  ``kaggle_boosting_loss``): boosted loss ``~ Phi(-sqrt(k/(pi n)))`` = 0.429 at n = 4000,
  k = 400 (authors' CSV 0.427) and 0.4005 at n = 1000, k = 200. The Ladder accepts ~2
  submissions, each with an ``O(1/sqrt n)`` advantage, so its bias scales as ``1/sqrt n``.

Seeds are fixed; each tolerance is stated with the seed-to-seed sd it was derived from
(measured over 10-40 seeds before the thresholds were set).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theorylab.adaptive import experiments as E
from theorylab.adaptive import mechanisms as M
from theorylab.adaptive.bounds import correlation_attack_accuracy

# One xdist worker runs the whole module, so its module-scoped fixtures are built once.
pytestmark = pytest.mark.xdist_group("adaptive_experiments")

N = 2000  # CI scale for the Science experiment and the correlation attack (spec)
SCALED_GRID = tuple(k * N // 10_000 for k in E.SCIENCE_K_GRID)  # paper k -> k d / 10^4
T, SIGMA = 4 / math.sqrt(N), 1 / math.sqrt(N)


def _keys(seed, count):
    return jax.random.split(jax.random.key(seed), count)


def _mean(x):
    return np.asarray(x, float).mean(axis=0)


# ---------------------------------------------------------------------------------------------
# Exact checks of the analyst (small sizes)
# ---------------------------------------------------------------------------------------------


def _authors_standard_holdout(x, y, krange):
    """Literal NumPy port of the standard-holdout part of the authors' ``runClassifier``."""
    n, d = x.shape[1], x.shape[2]
    xt, xh, xf = (np.asarray(a, np.float64) for a in x)
    yt, yh, yf = (np.asarray(a, np.float64) for a in y)
    tr = xt.T @ yt / n
    ho = xh.T @ yh / n
    thr = 1.0 / np.sqrt(n)
    selected = ((tr > thr) & (ho > thr)) | ((tr < -thr) & (ho < -thr))
    tr[~selected] = 0
    order = np.abs(tr).argsort()
    vals = []
    for k in krange:
        w = np.zeros(d)
        top = order[-k:] if k else order[:0]
        w[top] = np.sign(tr[top])
        row = [np.mean(np.sign(a @ w) == b) for a, b in ((xt, yt), (xh, yh), (xf, yf))]
        vals.append([0.5, 0.5, 0.5] if k == 0 else row)
    return np.asarray(vals), int(selected.sum())


def test_standard_holdout_equals_authors_code_and_transparent_thresholdout():
    """Same data -> the authors' algorithm gives identical accuracies (exact, no tolerance
    beyond float32 vs float64 rounding of the correlations, which never crosses the 1/sqrt n
    cut at this size); Thresholdout with T = 0 and no noise answers the exact holdout values,
    so its run must equal the standard one bit for bit (spec A6 analogue)."""
    n, d, grid = 200, 300, (0, 2, 5, 10, 20)
    key = jax.random.key(3)
    transparent = M.thresholdout(
        0.0,
        1.0,
        noise="gaussian",
        redraw="every_query",
        threshold_scale=0.0,
        compare_scale=0.0,
        release_scale=0.0,
    )
    pair = E.science_feature_selection(
        key, n, d, mechanism="both", k_grid=grid, thresholdout=transparent
    )
    cfg = E._science_config(n, d, "both", grid, 0, None, None, "full", jnp.float32)
    data = E._draw_full(jax.random.split(key)[0], cfg)
    x = data.columns(jnp.arange(d))
    expected, num_selected = _authors_standard_holdout(np.asarray(x), np.asarray(data.y), grid)
    std = pair.standard
    got = np.stack([std.train, std.holdout, std.fresh], axis=1)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert int(std.num_selected) == num_selected
    assert num_selected < grid[-1]  # the grid runs past the selected set: top-k of what is kept
    for field in ("train", "holdout", "fresh", "holdout_exact", "num_selected"):
        np.testing.assert_array_equal(getattr(pair.thresholdout, field), getattr(std, field))


def test_conditional_sampler_columns_have_the_drawn_correlations():
    """The conditional sampler's train/holdout columns reproduce the correlations exactly and
    have unit variance entries: ||x_j||^2 = n c_j^2 + chi^2_{n-1}, mean n. The same variable
    gets the same column whatever else is requested (both runs read the same data)."""
    n, d = 400, 1000
    cfg = E._science_config(n, d, "standard", (0, 100), 0, None, None, "conditional", jnp.float32)

    @jax.jit
    def draw(key, idx):
        data = E._draw_conditional(key, cfg)
        return data.y, data.c_train, data.c_holdout, data.columns(idx)

    idx = jnp.concatenate([jnp.arange(0, d, 10), jnp.arange(0, d, 10)[::-1]])
    y, c_train, c_holdout, cols = (np.asarray(a, np.float64) for a in draw(jax.random.key(1), idx))
    for s, c in ((0, c_train), (1, c_holdout)):
        np.testing.assert_allclose(y[s] @ cols[s] / n, c[np.asarray(idx)], atol=2e-6)
    # mean of x^2 over 3 x 400 x 100 entries: sd sqrt(2/120000) = 0.004; tolerance 5 sd
    assert abs((cols[:, :, :100] ** 2).mean() - 1.0) < 0.02
    np.testing.assert_array_equal(cols[:, :, 100:], cols[:, :, 99::-1])


# ---------------------------------------------------------------------------------------------
# A1: Science Fig. 1 (pure noise), n = d = 2000, 5 seeds, the authors' sampler
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fig1():
    return E.science_feature_selection_seeds(_keys(2015, 5), N, N, mechanism="both")


def test_a1_standard_holdout_overfits(fig1):
    """Paper: > 0.63 +- 0.004 at k = 500 (all ~500 selected variables used); closed form 0.634.
    At n = d = 2000 k = 500 also uses all (~100) selected variables. Measured over 30 seeds:
    mean 0.631, seed sd 0.010 -> 5-seed se 0.0045. Spec band [0.62, 0.645] about 0.632,
    widened by sqrt 5: [0.605, 0.66] (>= 5 se each side)."""
    std = fig1.standard
    k = list(E.SCIENCE_K_GRID).index(500)
    assert 0.605 <= _mean(std.holdout)[k] <= 0.66
    assert 0.605 <= _mean(std.train)[k] <= 0.66
    # the curve rises with k: the holdout reward for adding variables that fit it
    assert _mean(std.holdout)[1] < _mean(std.holdout)[6] - 0.04
    np.testing.assert_array_equal(std.holdout, std.holdout_exact)
    assert int(std.above_threshold_correlations.sum()) == 0


def test_a1_fresh_accuracy_is_chance(fig1):
    """Pure noise: every classifier's true accuracy is 0.5, and the fresh accuracy of a fixed
    classifier has sd 1/(2 sqrt n) = 0.0112 (binomial) -> 5-seed mean sd 0.005; 0.5 +- 0.022
    is 4.4 se (the spec's 0.5 +- 0.01 at n = 10^4 widened by sqrt 5)."""
    for run in fig1:
        fresh = _mean(run.fresh)
        assert np.all(np.abs(fresh - 0.5) <= 0.022), fresh


def test_a1_thresholdout_tracks_fresh(fig1):
    """Spec: |reported - fresh| <= T + 0.01 = 0.05 at n = 10^4; scaled: T + sigma = 0.112 on the
    5-seed means (measured max 0.06, at k = 10 where train and holdout still agree within T).
    Where the standard holdout overfits (k >= 100: gap ~0.13), Thresholdout's average gap must
    stay <= 0.05 (measured 0.005-0.015 over 30 seeds, seed sd ~0.015 -> se 0.007)."""
    thr, std = fig1.thresholdout, fig1.standard
    gap = _mean(thr.holdout) - _mean(thr.fresh)
    assert np.all(np.abs(gap) <= T + SIGMA), gap
    big = np.asarray(E.SCIENCE_K_GRID) >= 100
    assert gap[big].mean() <= 0.05
    assert (_mean(std.holdout) - _mean(std.fresh))[big].mean() >= 0.10


def test_a1_thresholdout_mechanism_contract(fig1):
    """Each reported value is the training accuracy (below threshold) or the holdout accuracy
    plus N(0, sigma^2): so |reported - holdout| <= T + 4 sigma except with probability
    P(N(0,1) > 4) = 3e-5 per query (60 queries here). The above-threshold rate of the d
    correlation queries is P(|N(0, 2/n)| > T + N(0, 1/n)) ~ 2 P(N(0, 3/n) > 4/sqrt n) = 0.0209
    (spec: ~2.1 %): over 5 x 2000 queries, 209 +- 4 binomial sd (14.3)."""
    thr = fig1.thresholdout
    rep, exact, train = (np.asarray(a)[:, 1:] for a in (thr.holdout, thr.holdout_exact, thr.train))
    assert np.all(np.abs(rep - exact) <= T + 4 * SIGMA)
    below = rep == train
    assert np.all(np.abs(train - exact)[below] <= T + 4 * SIGMA)
    hits = int(np.asarray(thr.above_threshold_correlations).sum())
    assert 152 <= hits <= 266, hits
    assert np.all(np.asarray(thr.above_threshold_accuracy) == (~below).sum(axis=1))
    # Thresholdout answers from the training set when train and holdout agree, so far more
    # variables pass the selection than with the standard holdout (~ |c_t| > 1/sqrt n: 32 %)
    assert np.all(np.asarray(thr.num_selected) > 3 * np.asarray(fig1.standard.num_selected))


def test_a1_broken_thresholdout_is_rejected():
    """Deliberately broken variant: T = inf never consults the holdout, i.e. it reports the
    training accuracy -- the same statistic that Thresholdout passes (average gap over
    k >= 100 <= 0.05) must fail (measured ~0.25). The other broken extreme, the standard
    holdout, is rejected by the same statistic in ``test_a1_thresholdout_tracks_fresh``."""
    broken = M.thresholdout(math.inf, SIGMA, noise="gaussian", redraw="every_query")
    run = E.science_feature_selection_seeds(
        _keys(2015, 5), N, N, mechanism="thresholdout", thresholdout=broken, sampler="conditional"
    )
    gap = _mean(run.holdout) - _mean(run.fresh)
    big = np.asarray(E.SCIENCE_K_GRID) >= 100
    assert gap[big].mean() > 0.10
    np.testing.assert_array_equal(run.holdout, run.train)
    assert int(np.asarray(run.above_threshold_correlations).sum()) == 0


# ---------------------------------------------------------------------------------------------
# A2: Science Fig. 2 (signal), scale-free version at n = d = 2000
# ---------------------------------------------------------------------------------------------


def test_a2_signal_is_found_and_thresholdout_does_not_overfit():
    """20 signal variables among 10^4 <-> 4 among 2000 (shift 6/sqrt n), grid scaled by 1/5.
    Measured over 20 seeds (conditional sampler): standard gap at the paper's k = 500 (ours
    100) 0.129 (seed sd 0.014 -> 5-seed se 0.006; spec >= 0.10, 4.8 se below); best fresh
    0.605 at k = 4 (paper's 20; sd 0.011 -> se 0.005; spec >= 0.58 at k <= 45 <-> 9);
    Thresholdout's largest mean gap 0.064 (tolerance T + sigma = 0.112, see A1)."""
    pair = E.science_feature_selection_seeds(
        _keys(7, 5),
        N,
        N,
        mechanism="both",
        k_grid=SCALED_GRID,
        signal_features=4,
        sampler="conditional",
    )
    std, thr = pair.standard, pair.thresholdout
    assert (_mean(std.holdout) - _mean(std.fresh))[-1] >= 0.10
    fresh = _mean(std.fresh)
    assert fresh.max() >= 0.58
    assert SCALED_GRID[int(np.argmax(fresh))] <= 9
    gap = _mean(thr.holdout) - _mean(thr.fresh)
    assert np.all(np.abs(gap) <= T + SIGMA), gap


# ---------------------------------------------------------------------------------------------
# A3: the correlation attack vs its closed form (n = 2000)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.0, SIGMA])
def test_a3_correlation_attack_matches_closed_form(sigma):
    """In-sample accuracy = Phi(sqrt(2m/(pi n (1 + n s^2)))) with s = 2 sigma the noise on the
    correlation scale; m in {200, 2000} as prefixes of one query stream. Measured over 20
    seeds: seed sd <= 0.013 and |mean - closed| <= 0.003; 10 seeds -> se <= 0.0041, tolerance
    4 se = 0.016 (the spec's 0.012 at n = 10^4, 3 seeds). Fresh accuracy is exactly 0.5 in
    expectation with binomial sd 1/(2 sqrt n): 10-seed mean within 4 se = 0.0141."""
    grid = (200, 2000)
    out = E.correlation_attack_seeds(_keys(5, 10), N, 2000, sigma=sigma, m_grid=grid)
    closed = np.asarray([correlation_attack_accuracy(N, m, 2 * sigma) for m in grid])
    np.testing.assert_allclose(out.closed_form, closed, rtol=1e-6)
    assert np.all(np.abs(_mean(out.in_sample) - closed) <= 0.016), _mean(out.in_sample)
    assert np.all(np.abs(_mean(out.fresh) - 0.5) <= 0.0141)
    if sigma == 0.0:  # naive answers are exact: the error is the sampling error itself
        assert float(np.max(out.max_answer_error)) < 5 / (2 * math.sqrt(N))
        assert closed[1] == pytest.approx(0.7875, abs=1e-4)
    else:  # noise costs the attacker (0.639 instead of 0.788) but it still beats chance
        assert closed[1] < correlation_attack_accuracy(N, 2000) - 0.1
        assert np.all(np.asarray(out.max_answer_error)[:, 1] > 2 * SIGMA)


# ---------------------------------------------------------------------------------------------
# A4: the boosting attack, reduced scale n = 1000, k = 200
# ---------------------------------------------------------------------------------------------


def kaggle_boosting_loss(n, k):
    """Closed form [derived here] of the Kaggle boosting attack's holdout loss.

    A random vector's loss is 0.5 + Z/(2 sqrt n); given loss <= 0.5 each coordinate agrees with
    the label with probability 0.5 + delta, delta = E|Z|/(2 sqrt n) = 1/sqrt(2 pi n). The
    majority of K = k/2 such vectors is right with probability Phi(2 delta sqrt K), so the
    boosted loss is Phi(-sqrt(k / (pi n))).
    """
    from scipy.stats import norm

    return float(norm.cdf(-math.sqrt(k / (math.pi * n))))


@pytest.fixture(scope="module")
def boosting():
    keys = _keys(11, 40)
    grid = (50, 100, 200)
    return {
        lb: E.boosting_attack_seeds(keys, 1000, 200, leaderboard=lb, k_grid=grid)
        for lb in ("kaggle", "ladder")
    }


def test_a4_kaggle_leaderboard_is_boosted(boosting):
    """n = 1000, k = 200: closed form 0.4005 (0.429 at the paper's n = 4000, k = 400; CSV
    0.427). Measured over 40 seeds: 0.402, seed sd 0.012 -> se 0.0019; tolerance 0.01
    (= 4 se + 0.0025 for the approximation: K ~ Bin(k, 1/2), ties at exactly 0.5)."""
    out = boosting["kaggle"]
    for g, k in enumerate((50, 100, 200)):
        assert abs(_mean(out.holdout)[g] - kaggle_boosting_loss(1000, k)) <= 0.01
    np.testing.assert_allclose(out.reported, np.round(np.asarray(out.holdout), 5), atol=1e-6)
    # kept: Bin(200, P(Bin(1000, 1/2) <= 500) = 0.5126) -> 102.5, 40-seed se 1.12; 4 se
    assert abs(_mean(out.kept)[-1] - 102.52) <= 4.5


def test_a4_ladder_resists_and_fresh_loss_is_chance(boosting):
    """The parameter-free Ladder accepts ~2 submissions, so the boosted loss stays near 0.5
    whatever k: spec >= 0.475 at n = 4000 (bias <= 0.025), scaled by sqrt(4000/1000) to
    >= 0.45 at n = 1000 (measured 0.472, se 0.002); and its bias does not grow with k (k = 50
    vs 200 within 0.01). Fresh loss: Bin(n, 1/2)/n for a vector independent of the fresh
    labels, sd 0.0158 -> 40-seed se 0.0025; 0.5 +- 0.01 (4 se)."""
    ladder, kaggle = boosting["ladder"], boosting["kaggle"]
    hold = _mean(ladder.holdout)
    assert hold[-1] >= 0.45
    assert abs(hold[-1] - hold[0]) <= 0.01
    assert 0.5 - _mean(kaggle.holdout)[-1] >= 2 * (0.5 - hold[-1])
    assert _mean(ladder.kept)[-1] < 5
    # the Ladder publishes its running best: never above the holdout loss of what it accepted
    assert np.all(np.asarray(ladder.reported) <= 0.5 + 3 / math.sqrt(1000))
    for out in (ladder, kaggle):
        assert np.all(np.abs(_mean(out.fresh) - 0.5) <= 0.01)


# ---------------------------------------------------------------------------------------------
# API: vmapping, chunking, validation
# ---------------------------------------------------------------------------------------------


def test_chunked_seeds_equal_single_runs():
    """lax.map over chunks of 2 (with a remainder chunk) gives each seed's single run."""
    keys = _keys(0, 5)
    chunked = E.correlation_attack_seeds(keys, 64, 40, chunk=2)
    single = E.correlation_attack(keys[3], 64, 40)
    for a, b in zip(single, chunked):
        assert float(a) == pytest.approx(float(np.asarray(b).reshape(-1)[3 if b.ndim else 0]))


def test_validation_errors():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="mechanism"):
        E.science_feature_selection(key, 100, 100, k_grid=(0, 10), mechanism="reusable")
    with pytest.raises(ValueError, match="k_grid"):
        E.science_feature_selection(key, 100, 50, k_grid=(0, 10, 100))
    with pytest.raises(ValueError, match="increasing"):
        E.science_feature_selection(key, 100, 100, k_grid=(10, 5))
    with pytest.raises(ValueError, match="sampler"):
        E.science_feature_selection(key, 100, 100, k_grid=(0, 10), sampler="lazy")
    with pytest.raises(TypeError, match="thresholdout"):
        E.science_feature_selection(key, 100, 100, k_grid=(0, 10), thresholdout=M.ladder())
    with pytest.raises(TypeError, match="key"):
        E.science_feature_selection(0, 100, 100, k_grid=(0, 10))
    with pytest.raises(TypeError, match="keys"):
        E.science_feature_selection_seeds(np.zeros(3), 100, 100, k_grid=(0, 10))
    with pytest.raises(ValueError, match="leaderboard"):
        E.boosting_attack(key, 100, 10, leaderboard="public")
    with pytest.raises(ValueError, match="end at k"):
        E.boosting_attack(key, 100, 10, k_grid=(5,))
    with pytest.raises(ValueError, match="sigma"):
        E.correlation_attack(key, 100, 10, sigma=-1.0)
    with pytest.raises(ValueError, match="x64"):
        E.correlation_attack(key, 100, 10, dtype=jnp.float64)


# ---------------------------------------------------------------------------------------------
# Paper scale (slow)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a1_paper_scale():
    """A1 at n = d = 10^4 with the paper's thresholds (conditional sampler, 5 seeds)."""
    pair = E.science_feature_selection_seeds(
        _keys(1, 5), 10_000, 10_000, mechanism="both", sampler="conditional"
    )
    k500 = list(E.SCIENCE_K_GRID).index(500)
    assert 0.62 <= _mean(pair.standard.holdout)[k500] <= 0.645
    assert 0.62 <= _mean(pair.standard.train)[k500] <= 0.645
    for run in pair:
        assert np.all(np.abs(_mean(run.fresh) - 0.5) <= 0.01)
    rep = _mean(pair.thresholdout.holdout)[2:]  # k >= 20
    assert np.all((rep >= 0.49) & (rep <= 0.545)), rep
    gap = _mean(pair.thresholdout.holdout) - _mean(pair.thresholdout.fresh)
    assert np.all(np.abs(gap) <= 0.05)


@pytest.mark.slow
def test_samplers_agree_statistically():
    """The conditional sampler has the same law as materialising the data: the 20-seed means
    of every curve agree within 4 standard errors of the difference (+ 0.005)."""
    keys_a, keys_b = _keys(21, 20), _keys(22, 20)
    full = E.science_feature_selection_seeds(keys_a, 1000, 1000, mechanism="both")
    cond = E.science_feature_selection_seeds(
        keys_b, 1000, 1000, mechanism="both", sampler="conditional"
    )
    for a, b in zip(full, cond):
        for field in ("train", "holdout", "fresh"):
            x, y = np.asarray(getattr(a, field)), np.asarray(getattr(b, field))
            se = np.sqrt(x.var(0, ddof=1) / len(x) + y.var(0, ddof=1) / len(y))
            assert np.all(np.abs(x.mean(0) - y.mean(0)) <= 4 * se + 0.005), field


@pytest.mark.slow
def test_a4_paper_scale():
    """A4 at n = 4000 (10 seeds): Kaggle [0.42, 0.445] at k = 400 and <= 0.40 at k = 1000;
    Ladder >= 0.475; fresh 0.5 +- 0.02."""
    keys = _keys(4, 10)
    kaggle = E.boosting_attack_seeds(keys, 4000, 1000, leaderboard="kaggle", k_grid=(400, 1000))
    ladder = E.boosting_attack_seeds(keys, 4000, 1000, leaderboard="ladder", k_grid=(400, 1000))
    assert 0.42 <= _mean(kaggle.holdout)[0] <= 0.445
    assert _mean(kaggle.holdout)[1] <= 0.40
    assert np.all(_mean(ladder.holdout) >= 0.475)
    for out in (kaggle, ladder):
        assert np.all(np.abs(_mean(out.fresh) - 0.5) <= 0.02)
