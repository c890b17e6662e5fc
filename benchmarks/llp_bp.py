"""LLP belief propagation: count-mode scaling, and the paper's clique BP vs a NumPy peer (issue 8).

Data everywhere: :func:`theorylab.llp.gaussian_classes` (d = 10, prior 0.3, class means ±0.3),
random bags of size K (:func:`~theorylab.llp.random_bags`, remainder dropped) labelled with
their true positive counts, cosine 5-NN graph with Matérn-½ weights
(:func:`~theorylab.llp.knn_graph`). BP runs a fixed number of flooding iterations
(``tol = 1e-30``, ``max_iters`` = the count asked for; the ``iterations`` each run reports is
checked and recorded). The paper's couplings ``λ_s = λ_b = 10`` are used unless stated.

(a) Scaling (``notes["scaling"]``, printed as its own table): n ∈ {2^14, 2^16, 2^18},
    K ∈ {64, 1024}, count mode with Gaussian and with exact (tree-DP) count messages, float32.
    Per case: the first call with ``max_iters=1`` (= compilation + 1 iteration; ``max_iters`` is
    a traced argument, so later calls reuse the executable), then one 1-iteration call and the
    timed ``max_iters=100`` calls (median of up to 3 while their total stays under
    ``CAP_S``/2). ``compile_s`` = first call − the 1-iteration call. When a
    5-iteration probe predicts more than ``CAP_S`` seconds for 100 iterations, fewer
    iterations ``m`` are timed and ``t_100 = t_1 + (t_m − t_1)·99/(m − 1)`` is reported with
    ``extrapolated: true`` (the per-iteration work is fixed). kNN construction is timed
    separately (first call, compilation included: ~1 s). The exact blocked kNN is O(n²): at
    n = 2^18 it would take ~16× the 2^16 time (~5 min on this 2-core CPU), so on a CPU the 2^18
    graph is the union of the kNN graphs of 4 disjoint random quarters (4 × 2^16, each built by
    :func:`knn_graph`; same degree and edge count, which is all BP's cost depends on) and the
    full kNN time is reported as an O(n²) extrapolation from 2^16, flagged as such. Target
    (issue 8 / spec §2): n = 2^16, K = 1024 under 60 s including kNN on CPU.
(b) The paper's formulation at n = 4096, K = 64: our ``mode="clique"`` (Ising expansion, bag
    pairs merged with in-bag kNN edges, damping 0.5, 100 iterations) vs
    :func:`theorylab.llp.reference.numpy_clique_bp` (the NumPy float64 stand-in for PGMax,
    same factor graph and schedule). Agreement (tolerance 1e-4 on the marginals) is checked in
    float64 (``jax.enable_x64``) and for our float32 run, at ``λ_s = 10, λ_b = 0.1``: at the
    paper's ``λ_b = 10`` the damped clique iteration is chaotic (rounding differences grow
    exponentially; two float64 implementations separate completely by iteration ~60), so the
    λ = 10 disagreement is reported in the metrics against the iteration count instead of being
    asserted. Our count mode (float32, Gaussian and exact messages, damping 0.9) at the paper's
    λ = 10 against the same NumPy clique peer at λ = 10: count and clique BP are different
    approximations on different factor graphs, so their marginals are not compared entrywise;
    the check is that our pseudo-labels are no worse (AUC of the marginals against the hidden
    labels, ``error = max(0, AUC_peer − AUC_ours)``, tolerance 0.01). Issue target: count mode
    ≥ 10× faster than the NumPy clique reference.
(c) Paper scale (``notes["paper_scale"]``): n = 49,152 = 24 · 2048, K = 2048, count mode
    (Gaussian 200 iterations, exact 100), beside the paper's "BP stage takes only 1054 s" for
    Adult (~50k instances, K = 2048, PGMax clique expansion, one NVIDIA P100). Also the NumPy
    and our clique BP at this size (a dense (24, 2048, 2048) message array; full runs would take
    many minutes), extrapolated to 100 iterations: NumPy from a 0- and a 1-iteration run (setup
    + one iteration), ours from a 1- and a 2-iteration run after compilation.
(d) GPU scale test (spec §5.2: n = 2^20, K = 2048, count-Gaussian, 200 iterations, < 10 s on an
    H100 excluding kNN): run only when JAX's default backend is a GPU; otherwise recorded as
    not measured.

Quick mode (``--quick``): (a) n ∈ {2^12, 2^14}, K ∈ {64, 256}; (b) n = 1024, K = 32;
(c) n = 3 · 2048 = 6144, K = 2048 (not the paper's size: its "paper_1054s" ratios mean
nothing there).

The machine is shared: the 1-minute load average is recorded at the start and the end
(``notes["load_average"]``); timings taken under load > cores are inflated.
"""

from __future__ import annotations

import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._harness import Timing, register_benchmark
from theorylab.core.metrics import roc_auc
from theorylab.llp import (
    bag_counts,
    gaussian_classes,
    graph_from_edges,
    knn_graph,
    loopy_bp,
    make_layout,
    random_bags,
    undirected_edges,
)
from theorylab.llp.reference import numpy_clique_bp

K_NN = 5
DIM = 10
LAM = 10.0  # the paper's λ_s = λ_b
AGREE_LAM = (10.0, 0.1)  # (λ_s, λ_b) for the entrywise agreement check (not chaotic)
TOL = 1e-30  # "never converged": every run does max_iters iterations
ITERS = 100
CAP_S = 45.0  # above this predicted time per 100 iterations, time fewer and extrapolate
AGREE_TOL = 1e-4
AUC_TOL = 0.01
FULL_KNN_MAX_N = 2**16  # on CPU, larger graphs are built from 4 quarter-size kNN graphs
PAPER_BP_S = 1054.0
CHAOS_ITERS = (10, 20, 30, 40, 60, 100)


# --------------------------------------------------------------------------- helpers


def _block(x):
    return jax.block_until_ready(x)


def _timed(fn):
    start = time.perf_counter()
    value = _block(fn())
    return time.perf_counter() - start, value


def _load() -> float:
    try:
        return float(os.getloadavg()[0])
    except OSError:  # pragma: no cover - not on every platform
        return float("nan")


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or None


def _data(n: int, seed: int = 0):
    data = gaussian_classes(jax.random.key(seed), n, 0, d=DIM)
    return data.X_train, data.y_train


def _layout(y, K: int, seed: int = 1):
    n = y.shape[0]
    ids = random_bags(jax.random.key(seed), n, K)
    counts = bag_counts(jnp.asarray(y), ids, num_bags=n // K)
    return make_layout(ids, counts, num_instances=n)


def _knn(X):
    """``knn_graph(X, 5)`` and the time of that (first) call, compilation included."""
    return _timed(lambda: knn_graph(X, K_NN))


def _quartered_knn(X, parts: int = 4):
    """Union of the kNN graphs of ``parts`` disjoint consecutive row blocks (rows are iid)."""
    n = X.shape[0]
    size = n // parts
    edges, weights = [], []
    start = time.perf_counter()
    for p in range(parts):
        lo = p * size
        hi = n if p == parts - 1 else lo + size
        e, w = undirected_edges(_block(knn_graph(X[lo:hi], K_NN)))
        edges.append(e.astype(np.int64) + lo)
        weights.append(np.asarray(w, np.float64))
    graph = graph_from_edges(np.concatenate(edges), n, np.concatenate(weights))
    return time.perf_counter() - start, _block(graph)


def _auc(y, marginals) -> float:
    m = np.asarray(marginals, np.float64)
    if not np.all(np.isfinite(m)):
        return float("nan")
    return float(roc_auc(np.asarray(y), m))


def _bag_residual(result) -> float:
    return float(np.mean(np.abs(np.asarray(result.bag_residuals, np.float64))))


def _clique_inputs(layout, graph):
    """The NumPy peer's arguments: undirected edges, weights (float64), bag index lists, counts."""
    edges, weights = undirected_edges(graph)
    index, mask = np.asarray(layout.index), np.asarray(layout.mask)
    bags = [index[b][mask[b]] for b in range(index.shape[0])]
    return edges, np.asarray(weights, np.float64), bags, np.asarray(layout.counts, np.float64)


def time_bp(layout, graph, *, iters=ITERS, cap_s=CAP_S, repeats=3, fixed_timed=None,
            **bp_kwargs):
    """Fixed-iteration timing of :func:`loopy_bp` (see the module docstring, part (a)).

    ``fixed_timed``: skip the 5-iteration probe and time exactly that many iterations, then
    extrapolate to ``iters`` (for cases known to be far too slow to run in full).
    """

    def call(m):
        return loopy_bp(layout, graph, max_iters=m, tol=TOL, **bp_kwargs)

    first, _ = _timed(lambda: call(1))
    t1, result = _timed(lambda: call(1))
    if fixed_timed is None:
        t5, _ = _timed(lambda: call(5))
        per_iter = max((t5 - t1) / 4, 1e-9)
        predicted = t1 + per_iter * (iters - 1)
    if fixed_timed is None and predicted <= cap_s:
        reps = max(1, min(repeats, int((cap_s / 2) // max(predicted, 1e-9))))
        times = []
        for _ in range(reps):
            t, result = _timed(lambda: call(iters))
            times.append(t)
        median = float(np.median(times))
        ran, extrapolated = iters, False
    else:
        if fixed_timed is None:
            ran = min(iters - 1, max(10, int((cap_s - t1) / per_iter)))
        else:
            ran = fixed_timed
        if ran > 1:
            t, result = _timed(lambda: call(ran))
        else:
            t = t1
        times = [t]
        median = t1 + (t - t1) * (iters - 1) / max(ran - 1, 1)
        extrapolated = True
    if int(result.iterations) != ran:
        raise RuntimeError(f"loopy_bp stopped after {int(result.iterations)} of {ran} iterations")
    info = {
        "iterations": iters,
        "iterations_timed": ran,
        "extrapolated": extrapolated,
        "first_call_1_iter_s": first,
        "one_iter_call_s": t1,
        "compile_s": max(first - t1, 0.0),
        "seconds": median,
        "times_s": times,
        "residual": float(result.residual),
        "mean_abs_bag_residual": _bag_residual(result),
    }
    return info, result


def _timing(info) -> Timing:
    """A harness :class:`Timing` from :func:`time_bp` output (first call = compile + run)."""
    return Timing(info["compile_s"] + info["seconds"], info["seconds"], info["times_s"])


# --------------------------------------------------------------------------- (a) scaling


def scaling(ctx, sizes, bag_sizes, *, full_knn_max_n):
    rows = []
    knn_times = {}
    for n in sizes:
        X, y = _data(n)
        if n <= full_knn_max_n:
            knn_s, graph = _knn(X)
            knn = {"knn_s": knn_s, "knn_measured": True}
        else:
            quarter_s, graph = _quartered_knn(X)
            ref_n = max(knn_times)
            knn = {
                "knn_s": knn_times[ref_n] * (n / ref_n) ** 2,
                "knn_measured": False,
                "knn_note": (
                    f"extrapolated as (n/{ref_n})^2 x the measured n={ref_n} time; the graph BP "
                    f"ran on is the union of 4 kNN graphs of n/4 rows (built in {quarter_s:.1f} s)"
                ),
                "knn_quarters_s": quarter_s,
            }
        if knn["knn_measured"]:
            knn_times[n] = knn_s
        num_edges = int(graph.src.shape[0]) // 2
        for K in bag_sizes:
            layout = _layout(y, K)
            for method in ("gaussian", "exact"):
                info, result = time_bp(
                    layout, graph, lam_s=LAM, lam_b=LAM, mode="count", count_method=method,
                    repeats=min(ctx.repeats, 3),
                )
                row = {
                    "n": n,
                    "K": K,
                    "num_bags": n // K,
                    "undirected_edges": num_edges,
                    "method": f"count/{method}",
                    "dtype": str(result.marginals.dtype),
                    **knn,
                    "s_per_100_iters": info["seconds"] * 100 / info["iterations"],
                    **info,
                    "pseudo_label_auc": _auc(y, result.marginals),
                    "total_with_knn_100_iters_s": knn["knn_s"] + info["compile_s"]
                    + info["seconds"],
                }
                rows.append(row)
                print(
                    f"  n={n:>7} K={K:>5} {method:<8} kNN {knn['knn_s']:7.2f} s"
                    f"{'' if knn['knn_measured'] else '*'} compile {info['compile_s']:6.2f} s "
                    f"100 it {row['s_per_100_iters']:8.3f} s{'*' if info['extrapolated'] else ''}"
                    f"  AUC {row['pseudo_label_auc']:.3f}",
                    flush=True,
                )
    return rows


def _scaling_table(rows) -> str:
    header = (
        f"{'n':>8} {'K':>5} {'messages':<15} {'kNN s':>9} {'compile s':>9} {'s/100 it':>9} "
        f"{'it timed':>8} {'total s':>9} {'AUC':>6} {'|bag res|':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['n']:>8} {r['K']:>5} {r['method']:<15} "
            f"{r['knn_s']:>8.2f}{'' if r['knn_measured'] else '*'} {r['compile_s']:>9.2f} "
            f"{r['s_per_100_iters']:>9.3f} {r['iterations_timed']:>8} "
            f"{r['total_with_knn_100_iters_s']:>9.2f} {r['pseudo_label_auc']:>6.3f} "
            f"{r['mean_abs_bag_residual']:>9.3g}"
        )
    lines.append("kNN*: extrapolated O(n^2) (BP ran on the union of 4 quarter kNN graphs); "
                 "it timed < 100: s/100 it extrapolated; total = kNN + compile + 100 it; "
                 "AUC and |bag res| after the timed iterations")
    return "\n".join(lines)


# --------------------------------------------------------------------------- (b) paper form


def paper_formulation(ctx, n, K):
    repeats = min(ctx.repeats, 3)
    X, y = _data(n, seed=2)
    graph = _block(knn_graph(X, K_NN))
    layout = _layout(y, K, seed=3)
    with jax.enable_x64(True):
        graph64 = _block(knn_graph(X, K_NN))
        layout64 = _layout(y, K, seed=3)
    edges, weights, bags, counts = _clique_inputs(layout64, graph64)
    sizes = {"n": n, "K": K, "num_bags": n // K, "k_nn": K_NN, "undirected_edges": len(edges),
             "iterations": ITERS}

    def peer(lam_s, lam_b, iters=ITERS):
        with np.errstate(over="ignore"):  # sigmoid of a large |belief|: exactly 0 or 1
            return numpy_clique_bp(n, edges, weights, bags, counts, lam_s, lam_b, damping=0.5,
                                   num_iters=iters)

    def ours_clique(lay, g, lam_s, lam_b, iters=ITERS):
        return loopy_bp(lay, g, lam_s=lam_s, lam_b=lam_b, mode="clique", damping=0.5,
                        max_iters=iters, tol=TOL)

    ls, lb = AGREE_LAM
    peer_agree = ctx.time(lambda: peer(ls, lb), repeats=repeats)
    ref = peer_agree.value

    # chaos at the paper's λ: disagreement (float64 both sides) against the iteration count
    chaos = {}
    with jax.enable_x64(True):
        for it in CHAOS_ITERS:
            ours = np.asarray(ours_clique(layout64, graph64, LAM, LAM, it).marginals)
            peer_lam10 = peer(LAM, LAM, it)
            chaos[str(it)] = float(np.max(np.abs(ours - peer_lam10)))
        ours64 = ctx.time(lambda: ours_clique(layout64, graph64, ls, lb), repeats=repeats)
    iters64 = int(ours64.value.iterations)
    err64 = float(np.max(np.abs(np.asarray(ours64.value.marginals, np.float64) - ref)))
    ours32 = ctx.time(lambda: ours_clique(layout, graph, ls, lb), repeats=repeats)
    err32 = float(np.max(np.abs(np.asarray(ours32.value.marginals, np.float64) - ref)))
    ours32_lam10 = np.asarray(ours_clique(layout, graph, LAM, LAM).marginals, np.float64)
    agree_metrics = {
        "lambda_s": ls,
        "lambda_b": lb,
        "damping": 0.5,
        "peer_auc": _auc(y, ref),
        "chaos_lambda": LAM,
        "max_abs_diff_float64_at_lambda_10_by_iteration": chaos,
        "chaos_note": (
            "at lam_s = lam_b = 10 the damped clique iteration is chaotic: float64 differences "
            "in rounding grow exponentially with the iteration count, so two correct "
            "implementations disagree completely after ~60 iterations"
        ),
    }
    ctx.record(
        f"clique f64 vs numpy (lam {ls:g}/{lb:g})",
        sizes=sizes, ours=ours64, peer=peer_agree, peer_name="numpy_clique_bp",
        error=err64, tolerance=AGREE_TOL,
        metrics={**agree_metrics, "dtype": "float64 (jax.enable_x64)", "iterations_ours": iters64,
                 "ours_auc": _auc(y, ours64.value.marginals)},
    )
    ctx.record(
        f"clique f32 vs numpy (lam {ls:g}/{lb:g})",
        sizes=sizes, ours=ours32, peer=peer_agree, peer_name="numpy_clique_bp",
        error=err32, tolerance=AGREE_TOL,
        metrics={**agree_metrics, "dtype": "float32", "iterations_ours":
                 int(ours32.value.iterations), "ours_auc": _auc(y, ours32.value.marginals),
                 "max_abs_diff_at_lambda_10_after_100_iters": float(
                     np.max(np.abs(ours32_lam10 - peer_lam10)))},
    )

    # count mode (float32) at the paper's λ against the NumPy clique peer at the same λ
    peer10 = ctx.time(lambda: peer(LAM, LAM), repeats=repeats)
    peer10_auc = _auc(y, peer10.value)
    peer10_bag = float(np.mean(np.abs(
        np.array([peer10.value[b].sum() for b in bags]) - counts)))
    for method in ("gaussian", "exact"):
        info, result = time_bp(layout, graph, lam_s=LAM, lam_b=LAM, mode="count",
                               count_method=method, repeats=repeats)
        ours = _timing(info)
        auc = _auc(y, result.marginals)
        ctx.record(
            f"count/{method} f32 vs numpy clique (lam 10)",
            sizes=sizes, ours=ours, peer=peer10, peer_name="numpy_clique_bp",
            error=max(0.0, peer10_auc - auc), tolerance=AUC_TOL,
            metrics={
                "error_is": "max(0, AUC(peer marginals) - AUC(our marginals)) vs hidden labels",
                "lambda_s": LAM, "lambda_b": LAM, "damping_ours": 0.9, "damping_peer": 0.5,
                "ours_auc": auc, "peer_auc": peer10_auc,
                "ours_mean_abs_bag_residual": info["mean_abs_bag_residual"],
                "peer_mean_abs_bag_residual": peer10_bag,
                "max_abs_marginal_diff": float(np.max(np.abs(
                    np.asarray(result.marginals, np.float64) - peer10.value))),
                "iterations_ours": info["iterations_timed"], "residual_ours": info["residual"],
                "target_ratio": 10.0,
            },
        )


# (row case prefix, key) of the part (b) rows, for the ratio summary
RATIO_KEYS = (
    ("clique f64", "numpy_clique_over_ours_clique_f64"),
    ("clique f32", "numpy_clique_over_ours_clique_f32"),
    ("count/gaussian", "numpy_clique_over_ours_count_gaussian"),
    ("count/exact", "numpy_clique_over_ours_count_exact"),
)


def ratio_summary(rows, paper_scale_notes) -> dict:
    """``notes["ratio"]``: the part (b) row ratios and the paper-scale ratios, kept apart."""
    small = {}
    for prefix, key in RATIO_KEYS:
        for row in rows:
            if row["case"].startswith(prefix):
                small[key] = row["ratio"]
                if prefix.startswith("count"):
                    small[f"{key}_target_10x_met"] = bool(row["ratio"] >= 10.0)
    first = rows[0]["sizes"] if rows else {}
    scale = paper_scale_notes
    return {
        "meaning": "peer time / theorylab time (> 1: theorylab faster)",
        f"paper_formulation_n{first.get('n')}_K{first.get('K')}": small,
        f"paper_scale_n{scale['n']}_K{scale['K']}": dict(scale["ratio"]),
    }


# --------------------------------------------------------------------------- (c) paper scale


def paper_scale(ctx, n, K):
    X, y = _data(n, seed=4)
    knn_s, graph = _knn(X)
    layout = _layout(y, K, seed=5)
    out = {"n": n, "K": K, "num_bags": n // K, "undirected_edges": int(graph.src.shape[0]) // 2,
           "knn_s": knn_s, "paper_bp_s": PAPER_BP_S,
           "paper_setting": "Adult, ~50k instances, K = 2048, PGMax clique expansion, one "
                            "NVIDIA P100 (released code: 100 iterations, damping 0.5)"}
    for method, iters, cap in (("gaussian", 200, CAP_S), ("exact", 100, 90.0)):
        info, result = time_bp(layout, graph, lam_s=LAM, lam_b=LAM, mode="count",
                               count_method=method, iters=iters, cap_s=cap, repeats=1)
        per100 = info["seconds"] * 100 / iters
        out[f"count_{method}"] = {
            **info,
            "s_per_100_iters": per100,
            "pseudo_label_auc": _auc(y, result.marginals),
            "ratio_paper_1054s_over_ours_100_iters": PAPER_BP_S / per100,
        }
        print(f"  paper scale n={n} K={K} count/{method}: {info['seconds']:.2f} s for {iters} "
              f"iterations{' (extrapolated)' if info['extrapolated'] else ''}, compile "
              f"{info['compile_s']:.2f} s, AUC {out[f'count_{method}']['pseudo_label_auc']:.3f}",
              flush=True)

    # clique BP at this size: 2 timed iterations each, extrapolated to 100
    edges, weights, bags, counts = _clique_inputs(layout, graph)

    def peer(iters):
        with np.errstate(over="ignore"):
            return numpy_clique_bp(n, edges, weights, bags, counts, LAM, LAM, damping=0.5,
                                   num_iters=iters)

    p0, _ = _timed(lambda: peer(0))
    p1, _ = _timed(lambda: peer(1))
    peer_100 = p0 + (p1 - p0) * 100
    clique = {"numpy_clique_setup_s": p0, "numpy_clique_per_iter_s": p1 - p0,
              "numpy_clique_100_iters_extrapolated_s": peer_100}
    info, _ = time_bp(layout, graph, lam_s=LAM, lam_b=LAM, mode="clique", damping=0.5,
                      iters=100, repeats=1, fixed_timed=2)
    clique.update({"ours_clique_f32_100_iters_extrapolated_s": info["seconds"],
                   "ours_clique_f32_compile_s": info["compile_s"],
                   "ours_clique_iterations_timed": info["iterations_timed"]})
    out["clique"] = clique
    gauss100 = out["count_gaussian"]["s_per_100_iters"]
    exact100 = out["count_exact"]["s_per_100_iters"]
    out["ratio"] = {
        "paper_1054s_over_ours_count_gaussian_100_iters": PAPER_BP_S / gauss100,
        "paper_1054s_over_ours_count_exact_100_iters": PAPER_BP_S / exact100,
        "numpy_clique_over_ours_count_gaussian": peer_100 / gauss100,
        "numpy_clique_over_ours_count_exact": peer_100 / exact100,
        "numpy_clique_over_ours_clique_f32": peer_100 / info["seconds"],
    }
    out["note"] = (
        "the paper's 1054 s is a P100 GPU running PGMax on the clique expansion; ours is count "
        "mode on this CPU. Different hardware and factor graph: the ratio is indicative only. "
        "Clique times at this size are extrapolated from a few iterations."
    )
    print(f"  paper scale clique, 100 it (extrapolated): numpy {peer_100:.1f} s, ours f32 "
          f"{info['seconds']:.1f} s", flush=True)
    return out


# --------------------------------------------------------------------------- (d) GPU


def gpu_scale(ctx):  # pragma: no cover - needs a GPU
    n, K = 2**20, 2048
    X, y = _data(n, seed=6)
    knn_s, graph = _knn(X)
    layout = _layout(y, K, seed=7)
    info, result = time_bp(layout, graph, lam_s=LAM, lam_b=LAM, mode="count",
                           count_method="gaussian", iters=200, repeats=3)
    return {"n": n, "K": K, "knn_s": knn_s, "knn_target_s": 60.0, **info,
            "bp_target_s": 10.0, "target_met": bool(info["seconds"] < 10.0),
            "pseudo_label_auc": _auc(y, result.marginals)}


# --------------------------------------------------------------------------- entry point


@register_benchmark(
    "llp_bp", description="LLP BP: count-mode scaling; paper clique BP vs NumPy clique peer"
)
def run(ctx):
    load_start = _load()
    backend = jax.default_backend()
    if ctx.quick:
        sizes, bag_sizes, b_size, scale = (2**12, 2**14), (64, 256), (1024, 32), (3 * 2048, 2048)
    else:
        sizes, bag_sizes, b_size, scale = (2**14, 2**16, 2**18), (64, 1024), (4096, 64), (
            24 * 2048, 2048)
    full_knn_max_n = FULL_KNN_MAX_N if backend == "cpu" else 2**62

    print("(b) paper formulation", flush=True)
    paper_formulation(ctx, *b_size)
    print("(c) paper scale", flush=True)
    ctx.notes["paper_scale"] = paper_scale(ctx, *scale)
    print("(a) scaling", flush=True)
    scale_rows = scaling(ctx, sizes, bag_sizes, full_knn_max_n=full_knn_max_n)
    ctx.notes["scaling"] = scale_rows
    target = [r for r in scale_rows if r["n"] == 2**16 and r["K"] == 1024]
    ctx.notes["target_n65536_K1024_under_60s"] = {
        r["method"]: {
            "knn_s": r["knn_s"], "compile_s": r["compile_s"],
            "s_100_iters": r["s_per_100_iters"],
            "total_100_iters_s": r["total_with_knn_100_iters_s"],
            "total_200_iters_s": r["total_with_knn_100_iters_s"] + r["s_per_100_iters"],
            "met_100_iters": bool(r["total_with_knn_100_iters_s"] < 60.0),
            "met_200_iters": bool(r["total_with_knn_100_iters_s"] + r["s_per_100_iters"] < 60.0),
        }
        for r in target
    }
    if backend == "gpu":  # pragma: no cover
        ctx.notes["gpu_n2^20_K2048"] = gpu_scale(ctx)
    else:
        ctx.notes["gpu_n2^20_K2048"] = "not measured (no GPU lent)"

    ctx.notes["ratio"] = ratio_summary(ctx.rows, ctx.notes["paper_scale"])
    ctx.notes["protocol"] = (
        f"gaussian_classes d={DIM}, random bags of size K with true counts, cosine {K_NN}-NN "
        f"graph with Matern-1/2 weights, lam_s = lam_b = {LAM:g} unless stated; fixed iteration "
        "counts (tol 1e-30); count mode damping 0.9, clique mode damping 0.5"
    )
    ctx.notes["dtype"] = "theorylab float32 unless stated (clique agreement also in float64); " \
        "NumPy reference float64"
    ctx.notes["backend"] = backend
    ctx.notes["cpu_model"] = _cpu_model()
    ctx.notes["load_average"] = {"start_1min": load_start, "end_1min": _load(),
                                 "cores": os.cpu_count()}
    ctx.notes["numpy_threads_warning"] = (
        "timings on a machine shared with other jobs; compare ratios, and check load_average"
    )
    print("(a) scaling table (float32, count mode, lam = 10):")
    print(_scaling_table(scale_rows))
