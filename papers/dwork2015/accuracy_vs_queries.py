"""Accuracy versus number of adaptive queries, for every mechanism (spec §2.4 item 1).

The adaptive analyst is the correlation attack (:func:`theorylab.adaptive.analysts
.correlation_attack`): ``m`` correlation queries on pure noise, then the accuracy of the
sign-vote classifier built from the answers. For each mechanism and ``m`` we record the
largest error ``max_i |a_i - P[phi_i]|`` over the interaction (the population values are
exactly 1/2) and the certified half-width where the mechanism has one; sample splitting is
drawn as its certified width (it cannot be fooled, its error is the width's order).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from theorylab.adaptive import analysts, bounds
from theorylab.adaptive import mechanisms as M


def mechanisms_for(n: int, m: int, beta: float = 0.05) -> dict[str, M.Mechanism]:
    """The compared mechanisms, tuned for ``m`` queries (+1 final accuracy query)."""
    total = m + 1
    gauss = bounds.gaussian_optimal(n, total, beta)
    return {
        "naive": M.naive(),
        "gaussian (σ*)": M.gaussian(gauss.sigma_or_scale, max_queries=total, beta=beta),
        "thresholdout (Science)": M.thresholdout_science(n),
        "guess-and-check τ=0.1": M.guess_and_check(0.1, beta=beta),
    }


def run(key, *, n: int, m_grid: list[int], seeds: int, beta: float = 0.05) -> dict[str, Any]:
    """Max error / certified width per mechanism and ``m`` (means over seeds)."""
    keys = jax.random.split(key, seeds)
    out: dict[str, Any] = {"n": n, "m_grid": list(m_grid), "seeds": seeds, "curves": {}}
    for m in m_grid:
        for name, mech in mechanisms_for(n, m, beta).items():
            rec = analysts.run_seeds(analysts.correlation_attack, keys, mech, n=n, m=m)
            s = analysts.summarize(rec)
            curve = out["curves"].setdefault(
                name,
                {
                    "max_error": [],
                    "max_error_sd": [],
                    "halfwidth": [],
                    "coverage": [],
                    "attack_reported": [],
                },
            )
            curve["max_error"].append(float(np.mean(s.max_error)))
            curve["max_error_sd"].append(float(np.std(s.max_error)))
            hw = float(np.mean(s.halfwidth))
            curve["halfwidth"].append(hw if math.isfinite(hw) else None)
            curve["coverage"].append(float(np.mean(s.coverage)) if math.isfinite(hw) else None)
            # NaN when a mechanism stopped answering before the final query (G&C halts)
            reported = float(np.mean(rec.final["attack_reported"]))
            curve["attack_reported"].append(reported if math.isfinite(reported) else None)
    out["curves"]["sample split (certified width)"] = {
        "halfwidth": [bounds.split_width(n, m + 1, beta) if n >= m + 1 else None for m in m_grid]
    }
    out["curves"]["non-adaptive Hoeffding width"] = {
        "halfwidth": [bounds.hoeffding_width(n, m + 1, beta) for m in m_grid]
    }
    return out


def plot(ax, result: dict[str, Any]) -> None:
    """Solid: measured max error; dashed: certified half-width (log-log)."""
    ms = result["m_grid"]
    for name, curve in result["curves"].items():
        color = None
        if "max_error" in curve:
            line = ax.errorbar(
                ms,
                curve["max_error"],
                yerr=curve["max_error_sd"],
                marker="o",
                ms=3,
                label=f"{name}: max error",
            )
            color = line[0].get_color()
        widths = curve.get("halfwidth", [])
        pts = [(m, w) for m, w in zip(ms, widths) if w is not None]
        if pts:
            ax.plot(
                *zip(*pts),
                ls="--",
                color=color,
                label=f"{name}: certified" if color is None else None,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of adaptive queries m")
    ax.set_ylabel("max |answer − P[φ]| (solid), certified (dashed)")
    ax.set_title(f"correlation attack, n = {result['n']}, {result['seeds']} seeds", fontsize=9)
    ax.legend(fontsize=6)
