"""Reproduce Ivashkin & Chebotarev, "Do logarithmic proximity measures outperform plain ones in
graph clustering?" (NET 2016; Springer PROMS 197, 2017) with theorylab.graphs.

Experiments (protocol from the authors' reproduction scripts, spec §2):

1. *Log vs plain* ARI-vs-parameter curves (mean ± std over graphs) for the 8 plain/log family
   pairs on G(100,(2)0.2,0.05), G(102,(3)0.3,0.1) and G(200,(2)0.3,0.1) -> ``figure.png``.
2. *Copeland competition* over N ∈ {100, 200} × m ∈ {2, 4} × p_out ∈ {0.1, 0.15}, p_in = 0.3:
   each measure's best and 90th-percentile flat parameter is chosen on training graphs, then
   every pair of measures is compared on fresh graphs (+1 / -1 / 0 per graph) -> table.
3. *Reject curves* on G(100,(2)0.3,p_out), p_out ∈ {0.05, 0.1, 0.15}, at the authors' optimal
   parameters -> ``reject_curves.png`` and the pairwise ROC-AUC per measure.
4. *Karate club*: best ARI over a 51-point flat grid per measure.

Clustering: kernel k-means (k-means++ seeding, best of ``n_init`` restarts by inertia), scored by
ARI; graphs resampled until connected. Flat grids are cell midpoints ``(i + ½)/P`` (the
endpoints 0 and 1 are degenerate for every family).
"""

from __future__ import annotations

import jax
import numpy as np

from papers._harness import PaperOutput, register_paper
from theorylab import graphs as g

PAIRS = g.FAMILY_PAIRS
FIGURE_CONFIGS = [  # (N, m, p_in, p_out)
    (100, 2, 0.2, 0.05),
    (102, 3, 0.3, 0.1),
    (200, 2, 0.3, 0.1),
]
COMPETITION_MEASURES = ["logComm", "Comm", "SCCT", "Heat", "pWalk", "logHeat", "SCT", "logFor",
                        "FE", "For", "RSP", "Walk", "SP-CT"]
COMPETITION_CONFIGS = [(n, m, 0.3, p) for n in (100, 200) for m in (2, 4) for p in (0.1, 0.15)]
# Author's rerun (pygkernels LogMeasures.tex), kernel k-means, 8 configurations.
PUBLISHED_COPELAND = {
    "logComm": (2471, 3866), "Comm": (1952, 1068), "SCCT": (1694, 2602), "Heat": (884, -1015),
    "pWalk": (647, -1), "logHeat": (169, 1055), "SCT": (151, 84), "logFor": (-635, 444),
    "FE": (-907, 266), "For": (-968, -4363), "RSP": (-969, -1402), "Walk": (-1141, 264),
    "SP-CT": (-3348, -2868),
}
# Author's optimal flat parameters for G(100,(2)0.3,p_out), p_out = 0.05, 0.1, 0.15.
REJECT_PARAMS = {
    "pWalk": (0.86, 0.80, 0.86), "Walk": (0.82, 0.76, 0.76), "For": (0.96, 0.98, 0.44),
    "logFor": (0.72, 0.40, 0.28), "Comm": (0.42, 0.36, 0.24), "logComm": (0.46, 0.54, 0.64),
    "Heat": (0.70, 0.74, 0.82), "logHeat": (0.70, 0.46, 0.18), "SCT": (0.46, 0.50, 0.48),
    "SCCT": (0.98, 0.74, 0.44), "RSP": (0.98, 0.98, 0.98), "FE": (0.96, 0.92, 0.76),
    "SP-CT": (0.00, 0.04, 0.36),
}
REJECT_P_OUT = (0.05, 0.1, 0.15)
# Best ARI on karate over a 51-point grid (pygkernels notebook "6. Datasets").
PUBLISHED_KARATE = {
    "pWalk": 0.06, "Walk": 1.00, "For": 0.06, "logFor": 0.88, "Comm": 1.00, "logComm": 1.00,
    "Heat": 0.88, "logHeat": 0.88, "SCT": 1.00, "SCCT": 1.00, "RSP": 1.00, "FE": 1.00,
    "logPPR": 1.00, "SP-CT": 1.00,
}

SCALES = {
    "quick": {"fig_graphs": 20, "fig_graphs_large": 6, "fig_points": 16, "n_init": 5,
              "train_graphs": 10, "test_graphs": 12, "train_points": 11, "reject_graphs": 20,
              "karate_points": 51, "karate_n_init": 10},
    "full": {"fig_graphs": 200, "fig_graphs_large": 200, "fig_points": 101, "n_init": 10,
             "train_graphs": 100, "test_graphs": 500, "train_points": 51, "reject_graphs": 100,
             "karate_points": 51, "karate_n_init": 10},
}


def midpoint_grid(points: int) -> np.ndarray:
    return (np.arange(points) + 0.5) / points


def config_name(n, m, p_in, p_out) -> str:
    return f"G({n},({m}){p_in},{p_out})"


def sample(key, n, m, p_in, p_out, num):
    return g.planted_partition(key, n, m, p_in, p_out, num_graphs=num)


def summarise_curves(curves: dict[str, np.ndarray], flat: np.ndarray) -> dict:
    """Mean/std over graphs per grid point; a point needs >= half of the graphs finite
    (non-finite kernels, e.g. Comm overflowing at large t, score NaN and are counted)."""
    out = {}
    for name, ari in curves.items():
        finite = np.isfinite(ari)
        count = finite.sum(axis=0)
        safe = np.where(finite, ari, 0.0)
        mean_all = safe.sum(axis=0) / np.maximum(count, 1)
        var = (np.where(finite, (ari - mean_all) ** 2, 0.0)).sum(axis=0) / np.maximum(count, 1)
        mean = np.where(count >= 0.5 * ari.shape[0], mean_all, np.nan)
        std = np.where(count > 0, np.sqrt(var), np.nan)
        best = int(np.nanargmax(mean)) if np.any(np.isfinite(mean)) else 0
        out[name] = {"mean": mean, "std": std, "best_ari": float(mean[best]),
                     "best_flat": float(flat[best]), "nan_share": float(1 - finite.mean())}
    return out


def log_vs_plain(ctx, scale):
    results = {}
    measures = [m for pair in PAIRS for m in pair]
    flat = midpoint_grid(scale["fig_points"])
    for idx, (n, m, p_in, p_out) in enumerate(ctx.progress(FIGURE_CONFIGS, desc="log vs plain")):
        num = scale["fig_graphs"] if n <= 102 else scale["fig_graphs_large"]
        key = jax.random.fold_in(ctx.key, 100 + idx)
        batch = sample(jax.random.fold_in(key, 0), n, m, p_in, p_out, num)
        curves = g.ari_curves(jax.random.fold_in(key, 1), batch.adjacency, batch.labels,
                              measures, flat, m, n_init=scale["n_init"])
        summary = summarise_curves(curves, flat)
        results[config_name(n, m, p_in, p_out)] = {
            "graphs": num, "flat": flat, "measures": summary,
            "log_minus_plain": {f"{log}-{plain}": summary[log]["best_ari"]
                                - summary[plain]["best_ari"] for plain, log in PAIRS},
        }
    return results


def choose_parameters(curve_mean: np.ndarray, flat: np.ndarray):
    """Best grid point, and the grid point whose ARI is closest to the curve's 90th percentile.

    An all-NaN curve (the measure failed everywhere) gets the middle of the grid for both.
    """
    if not np.any(np.isfinite(curve_mean)):
        mid = float(flat[len(flat) // 2])
        return mid, mid
    best = int(np.nanargmax(curve_mean))
    q90 = np.nanpercentile(curve_mean, 90)
    p90 = int(np.nanargmin(np.abs(curve_mean - q90)))
    return float(flat[best]), float(flat[p90])


def copeland_scores(test_ari: dict[str, np.ndarray]) -> dict[str, int]:
    names = list(test_ari)
    scores = dict.fromkeys(names, 0)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            x, y = np.nan_to_num(test_ari[a], nan=-1.0), np.nan_to_num(test_ari[b], nan=-1.0)
            wins = int(np.sum(x > y + 1e-12))
            losses = int(np.sum(y > x + 1e-12))
            scores[a] += wins - losses
            scores[b] += losses - wins
    return scores


def spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def competition(ctx, scale):
    flat = midpoint_grid(scale["train_points"])
    totals = {"optimal": dict.fromkeys(COMPETITION_MEASURES, 0),
              "percentile90": dict.fromkeys(COMPETITION_MEASURES, 0)}
    per_config = {}
    for idx, cfg in enumerate(ctx.progress(COMPETITION_CONFIGS, desc="Copeland")):
        n, m, p_in, p_out = cfg
        key = jax.random.fold_in(ctx.key, 200 + idx)
        train = sample(jax.random.fold_in(key, 0), n, m, p_in, p_out, scale["train_graphs"])
        curves = g.ari_curves(jax.random.fold_in(key, 1), train.adjacency, train.labels,
                              COMPETITION_MEASURES, flat, m, n_init=scale["n_init"])
        summary = summarise_curves(curves, flat)
        chosen = {name: choose_parameters(summary[name]["mean"], flat)
                  for name in COMPETITION_MEASURES}
        test = sample(jax.random.fold_in(key, 2), n, m, p_in, p_out, scale["test_graphs"])
        entry = {"chosen_flat": chosen}
        # Both rules in one call (one row per measure: optimal x, 90th-percentile x): the graph
        # spectra are computed once instead of twice, and every grid point of a graph uses the
        # same key, so the ARIs equal those of two one-column calls.
        params = np.array([chosen[name] for name in COMPETITION_MEASURES])
        test_ari = g.ari_curves(jax.random.fold_in(key, 3), test.adjacency, test.labels,
                                COMPETITION_MEASURES, params, m, n_init=scale["n_init"])
        for rule, col in (("optimal", 0), ("percentile90", 1)):
            ari = {name: a[:, col] for name, a in test_ari.items()}
            scores = copeland_scores(ari)
            for name, s in scores.items():
                totals[rule][name] += s
            entry[rule] = {"copeland": scores,
                           "mean_ari": {name: float(np.mean(a[np.isfinite(a)]))
                                        if np.any(np.isfinite(a)) else float("nan")
                                        for name, a in ari.items()}}
        per_config[config_name(*cfg)] = entry
    n_games = scale["test_graphs"] * len(COMPETITION_CONFIGS) * (len(COMPETITION_MEASURES) - 1)
    ours_opt = [totals["optimal"][k] for k in COMPETITION_MEASURES]
    ours_p90 = [totals["percentile90"][k] for k in COMPETITION_MEASURES]
    pub_opt = [PUBLISHED_COPELAND[k][0] for k in COMPETITION_MEASURES]
    pub_p90 = [PUBLISHED_COPELAND[k][1] for k in COMPETITION_MEASURES]
    return {
        "per_config": per_config,
        "totals": totals,
        "normalised": {rule: {k: v / n_games for k, v in t.items()} for rule, t in totals.items()},
        "published": PUBLISHED_COPELAND,
        "spearman_vs_published": {"optimal": spearman(ours_opt, pub_opt),
                                  "percentile90": spearman(ours_p90, pub_p90)},
        "games_per_measure": n_games,
    }


def reject_experiment(ctx, scale):
    results = {}
    curves_out = {}
    for j, p_out in enumerate(ctx.progress(REJECT_P_OUT, desc="reject curves")):
        batch = sample(jax.random.fold_in(ctx.key, 300 + j), 100, 2, 0.3, p_out,
                       scale["reject_graphs"])
        results[p_out] = {}
        curves_out[p_out] = {}
        for name, params in REJECT_PARAMS.items():
            curves = []
            for a in np.asarray(batch.adjacency):
                d = g.distance(a, name, flat=params[j])
                curves.append(g.reject_curve(d, batch.labels))
            aucs = np.array([float(c.auc) for c in curves])
            grid, mean_y = g.average_reject_curves(curves, bins=100)
            results[p_out][name] = {"flat": params[j], "auc_mean": float(aucs.mean()),
                                    "auc_std": float(aucs.std()),
                                    "bucketed_mean": float(mean_y.mean())}
            curves_out[p_out][name] = (grid, mean_y)
    return results, curves_out


def karate_experiment(ctx, scale):
    a, labels = g.karate_club()
    flat = midpoint_grid(scale["karate_points"])
    curves = g.ari_curves(jax.random.fold_in(ctx.key, 400), a, labels, list(PUBLISHED_KARATE),
                          flat, 2, n_init=scale["karate_n_init"])
    out = {}
    for name, ari in curves.items():
        best = int(np.nanargmax(ari))
        out[name] = {"best_ari": float(ari[best]), "best_flat": float(flat[best]),
                     "published": PUBLISHED_KARATE[name]}
    return out


def plot(fig_results, reject_curves):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(FIGURE_CONFIGS), len(PAIRS), figsize=(2.6 * len(PAIRS), 7.5),
                             sharey=True, squeeze=False)
    for row, (cfg_name, res) in enumerate(fig_results.items()):
        flat = np.asarray(res["flat"])
        for col, (plain, log) in enumerate(PAIRS):
            ax = axes[row, col]
            for name, style in ((plain, "--"), (log, "-")):
                s = res["measures"][name]
                ax.plot(flat, s["mean"], style, label=name)
                ax.fill_between(flat, s["mean"] - s["std"], s["mean"] + s["std"], alpha=0.15)
            ax.set_ylim(-0.05, 1.05)
            if row == 0:
                ax.set_title(f"{plain} vs {log}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{cfg_name}\nmean ARI", fontsize=8)
            if row == len(fig_results) - 1:
                ax.set_xlabel("flat parameter x", fontsize=8)
            ax.legend(fontsize=7, loc="lower center")
            ax.tick_params(labelsize=7)
    fig.suptitle("Log vs plain proximity measures: kernel k-means ARI (mean ± std over graphs)")
    fig.tight_layout()

    rfig, raxes = plt.subplots(1, len(REJECT_P_OUT), figsize=(15, 4.6), squeeze=False)
    for j, p_out in enumerate(REJECT_P_OUT):
        ax = raxes[0, j]
        for name, (grid, mean_y) in reject_curves[p_out].items():
            ax.plot(grid, mean_y, label=name, lw=1)
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_title(f"reject curves, G(100,(2)0.3,{p_out})", fontsize=9)
        ax.set_xlabel("share of inter-class pairs")
        ax.set_ylabel("share of intra-class pairs")
        ax.legend(fontsize=6, ncol=2)
    rfig.tight_layout()
    return fig, rfig


@register_paper(
    "ivashkin2016",
    title="Do logarithmic proximity measures outperform plain ones in graph clustering?",
    citation="V. Ivashkin, P. Chebotarev. NET 2016, Springer PROMS vol. 197 (2017), 87-105; "
             "arXiv:1605.01046",
)
def run(ctx):
    import matplotlib.pyplot as plt

    scale = SCALES[ctx.scale]
    with jax.enable_x64(True):  # log kernels need float64 (spec §1.5.3)
        fig_results = log_vs_plain(ctx, scale)
        copeland = competition(ctx, scale)
        reject, reject_curves = reject_experiment(ctx, scale)
        karate = karate_experiment(ctx, scale)
    fig, rfig = plot(fig_results, reject_curves)
    ctx.save_figure(rfig, "reject_curves.png")
    plt.close(rfig)
    results = {"log_vs_plain": fig_results, "copeland": copeland, "reject_curves": reject,
               "karate": karate}
    parameters = {**scale, "clustering": "kernel k-means, k-means++ seeding, best inertia",
                  "grid": "cell midpoints (i + 1/2)/P",
                  "connectivity": "resample until connected"}
    return PaperOutput(figure=fig, results=results, parameters=parameters)
