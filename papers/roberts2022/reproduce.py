"""Roberts, Mani, Garg, Lipton (NeurIPS 2022), "Unsupervised Learning under Latent Label Shift".

The paper's own data (CIFAR-10/20, ImageNet-50, FieldGuide) and SCAN weights need downloads,
so its *claims* are reproduced offline with :mod:`theorylab.latent_shift.experiments`:

(a) Recovery of Q_{Y|D} from the cluster-by-domain counts versus the number of samples N on
    the discrete LLS / topic model with anchor words (spec §5 A): the anchor route (SPA,
    SPA-initialised HALS) against the paper's random-init NMF, α ∈ {0.5, 3, 10}.
(b) DDFA end to end on continuous Gaussian LLS data and on the two-blob failure mode (each
    class two distant blobs, so clustering the features mixes classes -- the paper's
    FieldGuide story): oracle p(d|x) and a learned MLP discriminator, against the Bayes
    classifier p_d(y|x) and k-means on x.
(c) Semi-synthetic domains resampled from scikit-learn's digits as the paper builds its
    CIFAR domains (§1.5), α ∈ {0.5, 3, 10}: DDFA against k-means on the pixels and the
    paper's Naive baseline.

Scales: ``--quick`` (a few minutes on 2 CPU cores): N up to 10^6 with 3 seeds, one learned
discriminator per (data, α), digits with one seed; ``--full``: N up to 10^7 with 10 seeds,
3 learned-discriminator seeds (the paper's and the spec's count), digits over 5 seeds.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from papers._harness import PaperOutput, register_paper
from theorylab.latent_shift import experiments as E

ALPHAS = (0.5, 3.0, 10.0)

SCALES = {
    "quick": {
        "recovery_n": (10_000, 100_000, 1_000_000),
        "recovery_seeds": 3,
        "gauss_oracle_seeds": 3,
        "gauss_mlp_seeds": 1,
        "digits_seeds": 2,
        "mlp": {"epochs": 30, "batch_size": 256},
    },
    "full": {
        "recovery_n": (10_000, 100_000, 1_000_000, 10_000_000),
        "recovery_seeds": 10,
        "gauss_oracle_seeds": 10,
        "gauss_mlp_seeds": 3,
        "digits_seeds": 5,
        "mlp": {"epochs": 40, "batch_size": 128},
    },
}

#: Spec §5 A/B/C/D: the numpy prototype's measured numbers (3-5 seeds), quoted beside ours.
SPEC_MEASURED = {
    "recovery_1e6": {
        "0.5": None,
        "3.0": {"spa": 0.0030, "nmf": 0.017},
        "10.0": {"spa": 0.0047, "nmf": 0.067},
    },
    "gaussian_oracle_spa_m3k": {"0.5": 0.984, "3.0": 0.966, "10.0": 0.947},
    "gaussian_bayes": {"0.5": 0.987, "3.0": 0.978, "10.0": 0.947},
    "two_blob_oracle_spa_m3k": {"0.5": 0.980, "3.0": 0.954, "10.0": 0.906},
    "two_blob_kmeans_x": "0.49-0.53",
}

#: κ_max for the square 10 x 10 digits priors (the paper's 4 / 4 / 8 is out of reach there).
DIGITS_KAPPA = E.DIGITS_KAPPA_MAX

#: Rows per domain (train, val, test). digits has ~180 images per class, so the paper's
#: no-replacement formula leaves ~50-70 rows per domain; each split is instead drawn with
#: replacement from its own (disjoint) pool of images, so an image can repeat within a split
#: with several domain labels -- which is what a discriminator needs to learn p(d|x).
DIGITS_SIZES = (1000, 200, 300)

ORACLE_SETTINGS = (("oracle", "spa", None), ("oracle", "spa", 5), ("oracle", "nmf", None))
MLP_SETTINGS = (("mlp", "spa", None), ("mlp", "nmf", None))


def _mean_sd(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "n": int(a.size),
    }


def recovery(ctx, scale):
    grid = scale["recovery_n"]
    out = {}
    for alpha in ctx.progress(ALPHAS, desc="(a) recovery vs N"):
        per_n = {}
        for n in grid:
            runs = [
                E.recovery_error(
                    jax.random.fold_in(jax.random.fold_in(ctx.key, 1000 + int(10 * alpha)), s),
                    20,
                    5,
                    10,
                    alpha,
                    n,
                    kappa_max=E.KAPPA_MAX[alpha],
                )
                for s in range(scale["recovery_seeds"])
            ]
            per_n[str(n)] = {m: _mean_sd([r[m] for r in runs]) for m in runs[0]}
        out[str(alpha)] = per_n
    return out


def recovery_verdicts(rec, grid) -> list[dict]:
    lo, hi = str(grid[0]), str(grid[-1])
    rows = []
    for alpha, per_n in rec.items():
        spa_lo, spa_hi = per_n[lo]["spa"]["mean"], per_n[hi]["spa"]["mean"]
        nmf_hi = per_n[hi]["nmf"]["mean"]
        rows.append(
            {
                "alpha": float(alpha),
                "claim": "anchor route consistent: SPA error falls >= 2x from min to max N",
                "spa_small_n": spa_lo,
                "spa_large_n": spa_hi,
                "fall": spa_lo / spa_hi,
                "verdict": "agrees" if spa_lo / spa_hi >= 2 else "disagrees",
            }
        )
        rows.append(
            {
                "alpha": float(alpha),
                "claim": "at the largest N the anchor route beats the paper's random-init NMF",
                "spa": spa_hi,
                "nmf": nmf_hi,
                "verdict": "agrees" if spa_hi <= nmf_hi else "disagrees",
            }
        )
    return rows


def gaussian(ctx, scale, kind):
    out = {}
    for alpha in ctx.progress(ALPHAS, desc=f"(b) {kind}"):
        runs = []
        for s in range(scale["gauss_oracle_seeds"]):
            settings = ORACLE_SETTINGS + (MLP_SETTINGS if s < scale["gauss_mlp_seeds"] else ())
            key = jax.random.fold_in(jax.random.fold_in(ctx.key, 2000 + (kind == "two_blob")), s)
            key = jax.random.fold_in(key, int(10 * alpha))
            runs.append(
                E.gaussian_experiment(
                    key, alpha, kind=kind, settings=settings, discriminator_options=scale["mlp"]
                )
            )
        summary = {
            "bayes_accuracy": _mean_sd([r["bayes_accuracy"] for r in runs]),
            "kmeans_x_accuracy": _mean_sd([r["kmeans_x_accuracy"] for r in runs]),
        }
        for name in runs[0]:
            if "/" not in name:
                continue
            have = [r[name] for r in runs if name in r]
            summary[name] = {m: _mean_sd([h[m] for h in have]) for m in have[0]}
        out[str(alpha)] = summary
    return out


def gaussian_verdicts(res, kind) -> list[dict]:
    rows = []
    for alpha, s in res.items():
        bayes = s["bayes_accuracy"]["mean"]
        oracle = s["oracle/spa/m=15"]["accuracy"]["mean"]
        rows.append(
            {
                "data": kind,
                "alpha": float(alpha),
                "claim": "oracle p(d|x) identifies p_d(y|x): oracle SPA (m=3k) >= Bayes - 0.03",
                "ours": oracle,
                "bayes": bayes,
                "verdict": "agrees" if oracle >= bayes - 0.03 else "disagrees",
            }
        )
        q = s["oracle/spa/m=15"]["q_mae"]["mean"]
        rows.append(
            {
                "data": kind,
                "alpha": float(alpha),
                "claim": "oracle p(d|x) identifies Q_{Y|D}: MAE per entry <= 0.03",
                "ours": q,
                "verdict": "agrees" if q <= 0.03 else "disagrees",
            }
        )
        if kind == "two_blob":
            km = s["kmeans_x_accuracy"]["mean"]
            rows.append(
                {
                    "data": kind,
                    "alpha": float(alpha),
                    "claim": "feature clustering fails where domains still identify classes: "
                    "oracle DDFA >= k-means on x + 0.3",
                    "ours": oracle,
                    "kmeans_x": km,
                    "verdict": "agrees" if oracle >= km + 0.3 else "disagrees",
                }
            )
        mlp = s.get("mlp/spa/m=15")
        if mlp is not None:
            slack = 0.10 if float(alpha) >= 10 else 0.06
            acc = mlp["accuracy"]["mean"]
            rows.append(
                {
                    "data": kind,
                    "alpha": float(alpha),
                    "claim": f"learned discriminator end to end: DDFA >= Bayes - {slack}",
                    "ours": acc,
                    "bayes": bayes,
                    "seeds": mlp["accuracy"]["n"],
                    "verdict": "agrees" if acc >= bayes - slack else "disagrees",
                }
            )
    return rows


def digits(ctx, scale):
    out = {}
    for alpha in ctx.progress(ALPHAS, desc="(c) digits"):
        runs = [
            E.digits_experiment(
                jax.random.fold_in(jax.random.fold_in(ctx.key, 3000 + int(10 * alpha)), s),
                alpha,
                kappa_max=DIGITS_KAPPA[alpha],
                samples_per_domain=DIGITS_SIZES,
                discriminator_options=scale["mlp"],
            )
            for s in range(scale["digits_seeds"])
        ]
        summary = {
            "kmeans_x_accuracy": _mean_sd([r["kmeans_x_accuracy"] for r in runs]),
            "sizes": runs[0]["sizes"],
        }
        for name in runs[0]:
            if "/" in name:
                summary[name] = {m: _mean_sd([r[name][m] for r in runs]) for m in runs[0][name]}
        out[str(alpha)] = summary
    return out


def digits_verdicts(res) -> list[dict]:
    rows = []
    for alpha, s in res.items():
        acc = s["spa/m=30"]["accuracy"]["mean"]
        km = s["kmeans_x_accuracy"]["mean"]
        rows.append(
            {
                "data": "digits",
                "alpha": float(alpha),
                "claim": "DDFA (SPA, m=3k) not worse than k-means on pixels by more than 0.05",
                "ours": acc,
                "kmeans_x": km,
                "q_mae": s["spa/m=30"]["q_mae"]["mean"],
                "verdict": "agrees" if acc >= km - 0.05 else "disagrees",
            }
        )
    return rows


def plot(rec, grid, gauss, blob, dig):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.3))
    ax = axes[0]
    styles = {"spa": "-o", "spa+hals": "--s", "nmf": ":^"}
    for alpha, color in zip(ALPHAS, ("C0", "C1", "C2")):
        for method, style in styles.items():
            mean = [rec[str(alpha)][str(n)][method]["mean"] for n in grid]
            ax.plot(
                grid,
                mean,
                style,
                color=color,
                ms=4,
                label=f"{method}, α={alpha:g}" if alpha == ALPHAS[0] or method == "spa" else None,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("samples N")
    ax.set_ylabel("Q_{Y|D} MAE per entry")
    ax.set_title("(a) discrete LLS, m=20 k=5 r=10: recovery vs N", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    for ax, res, title in ((axes[1], gauss, "(b) Gaussian LLS"), (axes[2], blob, "(b) two-blob")):
        names = [
            ("bayes_accuracy", "Bayes"),
            ("oracle/spa/m=15", "oracle SPA m=3k"),
            ("oracle/spa/m=5", "oracle SPA m=k"),
            ("oracle/nmf/m=5", "oracle NMF m=k"),
            ("mlp/spa/m=15", "MLP SPA m=3k"),
            ("mlp/nmf/m=5", "MLP NMF m=k"),
            ("kmeans_x_accuracy", "k-means on x"),
        ]
        width = 0.11
        for j, (name, label) in enumerate(names):
            vals, errs = [], []
            for alpha in ALPHAS:
                s = res[str(alpha)].get(name)
                s = s if s is None or "mean" in s else s["accuracy"]
                vals.append(np.nan if s is None else s["mean"])
                errs.append(0.0 if s is None else s["sd"])
            ax.bar(np.arange(3) + (j - 3) * width, vals, width, yerr=errs, label=label)
        ax.set_xticks(range(3), [f"α={a:g}" for a in ALPHAS])
        ax.set_ylim(0.3, 1.0)
        ax.set_ylabel("test accuracy (Hungarian)")
        ax.set_title(title + ", k=5 r=10 dim=5", fontsize=9)
        ax.legend(fontsize=6, loc="lower left")
    ax = axes[3]
    names = [
        ("spa/m=30", "DDFA SPA m=30"),
        ("nmf/m=10", "DDFA NMF m=10 (paper)"),
        ("naive/nmf/m=10", "Naive (k-means on pixels + NMF)"),
        ("kmeans_x_accuracy", "k-means on pixels"),
    ]
    for j, (name, label) in enumerate(names):
        vals = []
        for alpha in ALPHAS:
            s = dig[str(alpha)][name]
            vals.append((s if "mean" in s else s["accuracy"])["mean"])
        ax.bar(np.arange(3) + (j - 1.5) * 0.2, vals, 0.2, label=label)
    ax.set_xticks(range(3), [f"α={a:g}" for a in ALPHAS])
    ax.set_ylim(0.0, 1.0)
    ax.set_title("(c) semi-synthetic digits, k=10 r=10", fontsize=9)
    ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return fig


@register_paper(
    "roberts2022",
    title="Unsupervised learning under latent label shift (DDFA), offline reproduction",
    citation="M. Roberts, P. Mani, S. Garg, Z. C. Lipton. Unsupervised Learning under Latent "
    "Label Shift. NeurIPS 2022, arXiv:2207.13179",
)
def run(ctx):
    scale = SCALES[ctx.scale]
    timings = {}
    start = time.perf_counter()
    rec = recovery(ctx, scale)
    timings["recovery_s"] = time.perf_counter() - start
    start = time.perf_counter()
    gauss = gaussian(ctx, scale, "gaussian")
    timings["gaussian_s"] = time.perf_counter() - start
    start = time.perf_counter()
    blob = gaussian(ctx, scale, "two_blob")
    timings["two_blob_s"] = time.perf_counter() - start
    start = time.perf_counter()
    dig = digits(ctx, scale)
    timings["digits_s"] = time.perf_counter() - start
    verdicts = {
        "recovery": recovery_verdicts(rec, scale["recovery_n"]),
        "gaussian": gaussian_verdicts(gauss, "gaussian"),
        "two_blob": gaussian_verdicts(blob, "two_blob"),
        "digits": digits_verdicts(dig),
    }
    results = {
        "recovery": rec,
        "gaussian": gauss,
        "two_blob": blob,
        "digits": dig,
        "verdicts": verdicts,
        "all_agree": all(r["verdict"] == "agrees" for rows in verdicts.values() for r in rows),
        "spec_measured": SPEC_MEASURED,
        "timings_s": timings,
    }
    parameters = {
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in scale.items()},
        "alphas": list(ALPHAS),
        "kappa_max": {str(a): E.KAPPA_MAX[a] for a in ALPHAS},
        "recovery": "discrete LLS m=20 words, k=5, r=10, one anchor word per class, Q_{X|Y} "
        "columns Dirichlet(1); error = MAE per entry of Q_{Y|D}, rows matched on Q",
        "gaussian": "k=5, r=10, dim=5, unit-variance blobs at radius 4; 2000 (train) + 200 (val) "
        "+ 400 (test) per domain; clustering on val+train; adjust = simplex; accuracy and Q MAE "
        "with the paper's accuracy-derived permutation",
        "two_blob": "as gaussian, two interleaved blobs per class (k-means on x finds sites "
        "holding two classes each)",
        "digits_kappa_max": {str(a): DIGITS_KAPPA[a] for a in ALPHAS},
        "digits": "sklearn load_digits, pools split 3/4, 1/12, 1/6 per class, domains resampled "
        "as the paper's class_prior.py but with replacement inside each split (1000/200/300 "
        "rows per domain); MLP on 64 pixels; kappa_max 8 / 12 / 20 "
        "(the paper's 4 / 4 / 8 is unreachable for square 10 x 10 priors)",
    }
    fig = plot(rec, scale["recovery_n"], gauss, blob, dig)
    return PaperOutput(figure=fig, results=results, parameters=parameters)
