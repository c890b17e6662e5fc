"""Halfspace tester-learner: theorylab (JAX, jit, chunked) vs the float64 NumPy reference.

Issue target: the learn step plus all tests for 12 candidates (6 bandwidths σ × ±w) at
d ∈ {10, 30, 50}, N = 10⁶ (N1 = N2 = N/2), in < 60 s on one GPU (spec §7.10).

Data (per d, same inputs for both sides, generated with NumPy): x ~ N(0, I_d), a random unit
w*, labels sign(w*·x) flipped with probability η = 0.1 (random classification noise).
Bandwidths σ_k = 0.04·2^{−k}, k = 0..5; 600 full-batch steps (spec §3.3 schedule).

Rows per d:

- ``learn``: :func:`theorylab.halfspaces.learner.learn_candidates` on (X1, y1), float32, one
  vmapped jitted call for the 6 σ, vs a Python loop of
  :func:`theorylab.halfspaces.reference.np_learn` (float64). ``error`` = the largest angle
  (rad) between the two sides' w_σ; tolerance = max(0.01 rad, the largest angle between the
  NumPy w_σ and w*). At small σ and N the smoothed loss is rough and float32/float64
  trajectories separate (measured: 0.015 rad at d = 30, N1 = 10⁴, σ = 0.00125), so the check
  is "the two runs are no farther apart than the learner is from the truth".
- ``tests``: :func:`theorylab.halfspaces.certificate.certify` on (X2, y2) -- every statistic,
  the Massart t_hat, the wedge bound and the slack -- for the 12 candidates ±w_σ formed from
  *our* learned directions (±w share every statistic except the error, so 6 evaluations), vs
  :func:`theorylab.halfspaces.reference.np_candidate_statistics` on the same 6 directions
  (float64, ``global_kappa4=True`` -- the same quantities as the library, which computes
  kappa4 once on the full x) plus :func:`~theorylab.halfspaces.reference.np_wedge_bound` at
  our t_hat. ``error`` = the largest relative difference over every statistic, the wedge
  bounds and candidates (``|a − b| / (|b| + 1e-12)``); tolerance 1e-3 (float32 vs float64).
- ``total``: learn + tests (sum of the medians; the peer is timed once).

Also reported (metrics of the ``tests`` row): the GEMM floor for F4 = 6 × the time of one
float32 ``(N2 × D)ᵀ(N2 × D)`` product, ``D = (d−1)d/2``, jitted with ``jnp`` in this process (the
Gram matrix that dominates each σ; the global-moment Gram and everything O(N d²) are not in
it), and ours / floor. In the notes: log–log slopes of the test time against d (ours and
NumPy; the F4 GEMM alone scales as d⁴).

The NumPy side uses NumPy's BLAS with its own threading; on a machine shared with other jobs
OpenBLAS threads can be slowed down badly, so compare ratios from a quiet machine.

Quick mode (``--quick``): N = 2·10⁴ (N1 = N2 = 10⁴), d ∈ {10, 20, 30}.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import Timing, register_benchmark, time_call
from theorylab.halfspaces import reference as R

ETA = 0.1
SIGMAS = 0.04 * 2.0 ** -np.arange(6)
STEPS = 600
LEARN_TOL = 0.01  # rad, raised to the learner's own accuracy (see the module docstring)
STATS_TOL = 1e-3  # relative, float32 vs float64


def _time_once(fn) -> Timing:
    """One timed call (NumPy has no compile step; the full-scale peer takes minutes)."""
    start = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - start
    return Timing(elapsed, elapsed, [elapsed], value)


def _sum_timings(*timings: Timing) -> Timing:
    first = sum(t.first_call_s for t in timings)
    median = sum(t.median_s for t in timings)
    return Timing(first, median, [median], None)


def _data(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w_star = rng.standard_normal(d)
    w_star /= np.linalg.norm(w_star)
    y = np.where(X @ w_star >= 0, 1.0, -1.0)
    y = np.where(rng.random(n) < ETA, -y, y)
    return X, y, w_star


def _angles(A, B):
    cos = np.sum(A * B, axis=1) / (np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def gemm_floor(n2, d, repeats=3):
    """6 × time of one jitted float32 ``VᵀV`` with ``V`` of shape ``(n2, (d−1)d/2)``."""
    D = (d - 1) * d // 2
    V = jax.random.normal(jax.random.key(0), (n2, D), jnp.float32)
    gram = jax.jit(lambda v: v.T @ v)
    one = time_call(lambda: gram(V), repeats=repeats).median_s
    return len(SIGMAS) * one


def case(ctx, n, d, seed=0):
    from theorylab.halfspaces import certificate, learner

    X, y, w_star = _data(seed, n, d)
    n1 = n // 2
    X1, y1, X2, y2 = X[:n1], y[:n1], X[n1:], y[n1:]
    n2 = X2.shape[0]
    X1j, y1j = jnp.asarray(X1, jnp.float32), jnp.asarray(y1, jnp.float32)
    X2j, y2j = jnp.asarray(X2, jnp.float32), jnp.asarray(y2, jnp.float32)
    sig_j = jnp.asarray(SIGMAS, jnp.float32)
    repeats = min(ctx.repeats, 3)

    # learn
    ours_learn = ctx.time(
        lambda: learner.learn_candidates(X1j, y1j, sig_j, steps=STEPS).w, repeats=repeats
    )
    peer_learn = _time_once(lambda: np.stack([R.np_learn(X1, y1, s, steps=STEPS) for s in SIGMAS]))
    W_ours = np.asarray(ours_learn.value, np.float64)
    learn_err = float(np.max(_angles(W_ours, peer_learn.value)))
    star = np.broadcast_to(w_star, W_ours.shape)
    angle_star = _angles(W_ours, star)
    peer_angle_star = _angles(peer_learn.value, star)
    learn_tol = max(LEARN_TOL, float(np.max(peer_angle_star)))
    sizes = {"N": n, "N1": n1, "N2": n2, "d": d, "D": (d - 1) * d // 2, "candidates": 12}
    ctx.record(
        f"learn d={d} N={n:.0e}",
        sizes=sizes,
        ours=ours_learn,
        peer=peer_learn,
        peer_name="numpy f64 loop",
        error=learn_err,
        tolerance=learn_tol,
        metrics={
            "steps": STEPS,
            "sigmas": SIGMAS.tolist(),
            "angle_ours_vs_peer": _angles(W_ours, peer_learn.value).tolist(),
            "ours_angle_to_w_star": angle_star.tolist(),
            "peer_angle_to_w_star": peer_angle_star.tolist(),
        },
    )

    # tests on the same 12 candidates: +-w share every statistic but the error, so both sides
    # evaluate the 6 learned directions (the peer's np_candidate_statistics would reuse -w too)
    W = W_ours / np.linalg.norm(W_ours, axis=1, keepdims=True)
    Wj, Sj = jnp.asarray(W, jnp.float32), jnp.asarray(SIGMAS, jnp.float32)
    chunk = int(certificate.default_chunk_size(n2, d))

    def ours_certify():
        return certificate.certify(X2j, y2j, Wj, Sj, noise="massart", eta=ETA, delta=0.05,
                                   num_candidates=12, chunk_size=chunk)

    ours_tests = ctx.time(ours_certify, repeats=repeats)
    cert = ours_tests.value
    t_hat = np.asarray(cert.t_hat, np.float64)
    W_oriented = np.asarray(cert.w, np.float64)

    def peer_certify():
        stats = R.np_candidate_statistics(X2, y2, W, SIGMAS, global_kappa4=True)
        wedge = [R.np_wedge_bound(X2, W_oriented[k], t_hat[k], stats["kappa4"][k])
                 for k in range(len(SIGMAS))]
        return stats, np.asarray(wedge)

    peer_tests = _time_once(peer_certify)
    peer_stats, peer_wedge = peer_tests.value
    rel = {}
    for name in R.STAT_NAMES:
        if name == "err":  # ours is the oriented candidate's error
            continue
        a = np.asarray(getattr(cert.stats, name), np.float64)
        b = peer_stats[name]
        rel[name] = float(np.max(np.abs(a - b) / (np.abs(b) + 1e-12)))
    rel["wedge"] = float(np.max(np.abs(np.asarray(cert.wedge) - peer_wedge)
                                / (np.abs(peer_wedge) + 1e-12)))
    stats_err = max(rel.values())
    floor = gemm_floor(n2, d, repeats=repeats)
    best = int(np.argmin(np.asarray(cert.total)))
    ctx.record(
        f"tests d={d} N2={n2:.0e} (12 cand.)",
        sizes=sizes,
        ours=ours_tests,
        peer=peer_tests,
        peer_name="numpy f64",
        error=stats_err,
        tolerance=STATS_TOL,
        metrics={
            "chunk_size": chunk,
            "max_relative_difference": rel,
            "gemm_floor_s": floor,
            "ours_over_floor": ours_tests.median_s / floor,
            "certificate": np.asarray(cert.total).tolist(),
            "best_candidate": {name: float(peer_stats[name][best]) for name in R.STAT_NAMES},
        },
    )

    # total
    ours_total = _sum_timings(ours_learn, ours_tests)
    peer_total = _sum_timings(peer_learn, peer_tests)
    ctx.record(
        f"total d={d} N={n:.0e}",
        sizes=sizes,
        ours=ours_total,
        peer=peer_total,
        peer_name="numpy f64",
        error=max(learn_err / learn_tol, stats_err / STATS_TOL),
        tolerance=1.0,
        metrics={
            "error_is": "max(learn error / its tolerance, stats error / its tolerance)",
            "target_s": 60.0,
            "ours_s": ours_total.median_s,
            "gemm_floor_s": floor,
            "ours_tests_over_floor": ours_tests.median_s / floor,
            "ours_total_over_floor": ours_total.median_s / floor,
        },
    )
    return ours_tests.median_s, peer_tests.median_s


def _slope(ds, times):
    """Least-squares slope of log(time) against log(d)."""
    if len(ds) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ds), np.log(times), 1)[0])


@register_benchmark(
    "halfspaces", description="tester-learner learn + 12-candidate tests vs NumPy float64"
)
def run(ctx):
    if ctx.quick:
        n, dims = 20_000, (10, 20, 30)
    else:
        n, dims = 1_000_000, (10, 30, 50)
    ours_t, peer_t = [], []
    for d in dims:
        o, p = case(ctx, n, d)
        ours_t.append(o)
        peer_t.append(p)
    ctx.notes["ratio"] = "peer median time / theorylab median time (> 1: theorylab faster)"
    ctx.notes["dtype"] = "theorylab float32 (library default); NumPy reference float64"
    ctx.notes["backend"] = jax.default_backend()
    ctx.notes["protocol"] = (
        f"Gaussian x, RCN eta={ETA}, sigmas 0.04*2^-k (k=0..5), {STEPS} steps, N1 = N2 = N/2; "
        "tests on the same 12 candidates (ours) on both sides; NumPy peer timed once"
    )
    ctx.notes["gemm_floor"] = (
        "6 x one jitted float32 (N2 x D)^T (N2 x D) product, D = (d-1)d/2, default matmul "
        "precision of the backend"
    )
    ctx.notes["scaling_exponent_tests_vs_d"] = {
        "dims": list(dims),
        "theorylab": _slope(dims, ours_t),
        "numpy": _slope(dims, peer_t),
    }
    ctx.notes["target"] = "spec 7.10: d=50, N=1e6, learn + tests for 12 candidates < 60 s (GPU)"
    ctx.notes["numpy_threads_warning"] = (
        "NumPy/OpenBLAS timings are unreliable on a machine shared with other jobs"
    )
