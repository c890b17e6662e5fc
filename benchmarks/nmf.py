"""NMF / LLS factorisation: theorylab (JAX, jit) vs scikit-learn's ``NMF`` (spec §3 benchmarks).

All cases run in float64 (``jax.enable_x64``; scikit-learn keeps float64), in the same process,
on the same inputs. Compile time is excluded from the ratios (reported separately).

(a) One large NMF. A 10,000 x 100 planted separable matrix ``X = W H + noise`` (k = 10; W has
    10 anchor rows ``e_j``, other rows Dirichlet(1); H uniform; noise ``0.01·mean(WH)·|N(0,1)|``),
    one shared random start ``|N(0,1)|·sqrt(mean X / k)``. Protocol "time to reach the same
    relative error": scikit-learn ``cd`` and ``mu`` run with their defaults (max_iter 200,
    tol 1e-4) from that start (init="custom"); their final relative error ``e_peer`` is the
    target. Ours is run once with an error check after every sweep to find the first sweep
    count ``t*`` with ``e <= e_peer·(1 + 1e-3)``, and then *timed* for exactly ``t*`` sweeps
    (``tol=0``, the default error check every 10 sweeps included). Rows: our HALS vs ``cd``
    (identical iterates, so this is a per-iteration comparison), our MU vs ``mu`` (identical
    iterates), our HALS vs ``mu`` (algorithmic). ``error`` = relative excess of our final error
    over ``e_peer`` (<= 1e-3 by construction unless ``t*`` was not reached).
(b) Many small problems. 1,000 independent LLS problems (m = 60 clusters, r = 20 domains,
    k = 10, α = 3, N = 1e5 samples): NMF of ``p̂(c|d)ᵀ`` (20 x 60) as in the paper pipeline.
    Ours: one jitted ``vmap`` of :func:`theorylab.latent_shift.factorize.nmf` over all problems;
    peer: a Python loop over ``sklearn.decomposition.NMF(solver="cd")``; both from the same
    per-problem random start (init="custom"). Two rows: "200 sweeps" (``tol=0`` on both sides:
    identical work and iterates; ``error`` = fraction of problems whose final errors differ by
    more than 1e-6 relative, tolerance 1%) and "default tol" (max_iter 200,
    tol 1e-4, each library's own stopping rule; the error column is the relative difference
    of the median relative errors, tolerance 5%). Target from the issue: >= 20x on 2 cores.
    Also reported: the GEMM floor (200 x the two batched GEMMs X Hᵀ, Wᵀ X, jitted) and our time
    over it.
(c) Accuracy on the discrete LLS model (spec §5 A: m = 20, k = 5, r = 10, α = 10, κ_max = 20,
    N = 1e6, 10 seeds): mean absolute error per entry of Q_{Y|D} (Hungarian on the L1 row
    cost) of ``factorize_counts(method="spa")`` vs the official pipeline with scikit-learn
    (``NMF(k, init="random", random_state=seed)`` on ``p̂(c|d)ᵀ``, then the paper's rescaling).
    ``error`` = our SPA MAE, tolerance 0.01 (the spec's threshold); the peer's MAE and our
    "nmf" and "spa+hals" routes are in the metrics. Timings: whole 10-seed loops.

Quick mode (``--quick``): (a) 2,000 x 50, (b) 100 problems, (c) 3 seeds.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from benchmarks._harness import register_benchmark, time_call
from theorylab.latent_shift import factorize as F


def _sk_nmf(X, k, solver, W0, H0, max_iter=200, tol=1e-4):
    from sklearn.decomposition import NMF

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        model = NMF(k, init="custom", solver=solver, max_iter=max_iter, tol=tol)
        W = model.fit_transform(X, W=W0.copy(), H=H0.copy())
    return W, model.components_, model.n_iter_


def _rel(X, W, H):
    return float(np.linalg.norm(X - W @ H) / np.linalg.norm(X))


# --------------------------------------------------------------------------- (a)


def _planted_separable(n, p, k, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(k), size=n)
    W[:k] = np.eye(k)
    W = W[rng.permutation(n)]
    H = rng.random((k, p))
    clean = W @ H
    X = clean + noise * clean.mean() * np.abs(rng.standard_normal((n, p)))
    return X, _rel(X, W, H)


def large_case(ctx, n, p, k=10):
    X, planted_err = _planted_separable(n, p, k)
    W0, H0 = (np.asarray(v) for v in F.initialize_nmf(jax.random.key(0), X, k))
    Xj = jnp.asarray(X)
    peers = {s: ctx.time(lambda s=s: _sk_nmf(X, k, s, W0, H0), repeats=3) for s in ("cd", "mu")}
    for ours_solver, peer_solver in (("hals", "cd"), ("mu", "mu"), ("hals", "mu")):
        peer = peers[peer_solver]
        W, H, peer_iter = peer.value
        target = _rel(X, W, H)
        budget = max(3 * peer_iter, 50)
        trace = F.nmf(
            None,
            Xj,
            k,
            solver=ours_solver,
            init="custom",
            W_init=W0,
            H_init=H0,
            max_iter=budget,
            tol=0.0,
            check_every=1,
        )
        hist = np.asarray(trace.error_history)
        hit = np.flatnonzero(hist <= target * (1 + 1e-3))
        t_star = int(hit[0]) if hit.size else budget
        ours = ctx.time(
            lambda s=ours_solver, t=t_star: F.nmf(
                None, Xj, k, solver=s, init="custom", W_init=W0, H_init=H0, max_iter=t, tol=0.0
            ),
            repeats=5,
        )
        ours_err = float(ours.value.relative_error)
        ctx.record(
            f"(a) {ours_solver} vs {peer_solver} {n}x{p} k={k}",
            sizes={"n": n, "p": p, "k": k},
            ours=ours,
            peer=peer,
            peer_name=f"sklearn {peer_solver}",
            error=max(0.0, (ours_err - target) / target),
            tolerance=1e-3,
            metrics={
                "peer_iterations": int(peer_iter),
                "ours_iterations_to_target": t_star,
                "reached": bool(hit.size),
                "peer_relative_error": target,
                "ours_relative_error": ours_err,
                "planted_relative_error": planted_err,
                "ours_s_per_sweep": ours.median_s / max(t_star, 1),
                "peer_s_per_sweep": peer.median_s / max(peer_iter, 1),
            },
        )


# --------------------------------------------------------------------------- LLS problems


def _class_priors(rng, k, r, alpha, kappa_max):
    while True:
        q = rng.dirichlet(np.full(k, alpha / k), size=r).T
        q[q < 1e-7] = 0.0
        q /= q.sum(axis=0)
        if np.linalg.cond(q) <= kappa_max:
            return q


def discrete_lls(seed, m, k, r, alpha, kappa_max, n_samples):
    """Spec §5 A generator (numpy): Q_{Y|D} ~ Dirichlet(α/k) columns with cond <= κ_max,
    Q_{X|Y} ~ Dirichlet(1) columns with k anchor words, N samples split evenly over domains."""
    rng = np.random.default_rng(seed)
    q = _class_priors(rng, k, r, alpha, kappa_max)
    a = rng.dirichlet(np.ones(m), size=k).T
    for y, c in enumerate(rng.choice(m, k, replace=False)):
        a[c, :] = 0.0
        a[c, y] = rng.uniform(0.5, 1.5) / m
    a /= a.sum(axis=0)
    pop = a @ q
    counts = np.stack(
        [rng.multinomial(n_samples // r, pop[:, d] / pop[:, d].sum()) for d in range(r)], 1
    )
    return q, counts.astype(np.float64)


def _mae(q, qhat):
    qhat = np.asarray(qhat)
    cost = np.abs(q[:, None, :] - qhat[None, :, :]).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return float(np.abs(q[rows] - qhat[cols]).mean())


# --------------------------------------------------------------------------- (b)


def _gemm_floor(X, W, H, sweeps):
    """Time of the two unavoidable batched GEMMs per sweep (H Xᵀ and Wᵀ X), ``sweeps`` times,
    in one jitted loop, in the layout the HALS sweep uses (W carried transposed, Xᵀ formed
    once, both products contracting the trailing axes): a lower bound for any HALS/MU
    implementation on this backend."""

    @jax.jit
    def loop(X, Wt, H):
        Xt = jnp.swapaxes(X, 1, 2)

        def body(_, carry):
            Wt, H = carry
            HXt = jnp.einsum("bkp,bnp->bkn", H, X)
            WtX = jnp.einsum("bkn,bpn->bkp", Wt, Xt)
            return Wt + 1e-30 * HXt, H + 1e-30 * WtX

        return jax.lax.fori_loop(0, sweeps, body, (Wt, H))

    Wt = jnp.swapaxes(W, 1, 2)
    return time_call(lambda: loop(X, Wt, H), repeats=3).median_s


def batched_case(ctx, num_problems, m=60, r=20, k=10):
    Xt = np.stack(
        [
            (lambda c: (c / c.sum(0)).T)(discrete_lls(1000 + i, m, k, r, 3.0, 20.0, 10**5)[1])
            for i in range(num_problems)
        ]
    )  # (P, r, m): NMF of p̂(c|d)ᵀ as in the paper pipeline
    keys = jax.random.split(jax.random.key(1), num_problems)
    Xj = jnp.asarray(Xt)
    W0, H0 = jax.vmap(lambda key, x: F.initialize_nmf(key, x, k))(keys, Xj)
    W0n, H0n = np.asarray(W0), np.asarray(H0)
    floor = _gemm_floor(Xj, W0, H0, 200)
    for label, tol in (("200 sweeps", 0.0), ("default tol", 1e-4)):
        run = jax.jit(
            jax.vmap(
                lambda x, w, h, tol=tol: F.nmf(
                    None, x, k, init="custom", W_init=w, H_init=h, max_iter=200, tol=tol
                )
            )
        )
        ours = ctx.time(lambda run=run: run(Xj, W0, H0), repeats=3)

        def peer_loop(tol=tol):
            return [_sk_nmf(Xt[i], k, "cd", W0n[i], H0n[i], 200, tol) for i in range(num_problems)]

        peer = ctx.time(peer_loop, repeats=2)
        peer_err = np.array([_rel(Xt[i], W, H) for i, (W, H, _) in enumerate(peer.value)])
        peer_iter = np.array([it for _, _, it in peer.value])
        ours_err = np.asarray(ours.value.relative_error)
        if tol == 0.0:
            # identical iterates; a chaotic problem could still amplify round-off, so the
            # check is the fraction of problems whose errors differ by > 1e-6 (relative)
            error = float(np.mean(np.abs(ours_err - peer_err) > 1e-6 * peer_err))
            tolerance = 0.01
        else:
            error = float(abs(np.median(ours_err) - np.median(peer_err)) / np.median(peer_err))
            tolerance = 0.05
        ctx.record(
            f"(b) {num_problems}x NMF {r}x{m} k={k}, {label}",
            sizes={"problems": num_problems, "n": r, "p": m, "k": k},
            ours=ours,
            peer=peer,
            peer_name="sklearn cd loop",
            error=error,
            tolerance=tolerance,
            metrics={
                "ours_median_relative_error": float(np.median(ours_err)),
                "peer_median_relative_error": float(np.median(peer_err)),
                "ours_mean_iterations": float(np.mean(np.asarray(ours.value.iterations))),
                "peer_mean_iterations": float(peer_iter.mean()),
                "ours_converged_fraction": float(np.mean(np.asarray(ours.value.converged))),
                "max_abs_error_difference": float(np.max(np.abs(ours_err - peer_err))),
                "gemm_floor_s": floor,
                "ours_over_floor": ours.median_s / floor,
                "target_ratio": 20.0,
            },
        )


# --------------------------------------------------------------------------- (c)


def _sk_paper_route(counts, k, seed):
    from sklearn.decomposition import NMF

    X = counts / counts.sum(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF(k, init="random", random_state=seed)
        W = model.fit_transform(X.T)
    P, C = W.T, model.components_.T
    s = C.sum(0)
    P = P * s[:, None]
    return P / P.sum(0)


def accuracy_case(ctx, seeds, cfg=(20, 5, 10, 10.0, 20.0), n_samples=10**6):
    m, k, r, alpha, kappa = cfg
    problems = [discrete_lls(s, m, k, r, alpha, kappa, n_samples) for s in seeds]

    def ours_loop(method="spa"):
        return [
            F.factorize_counts(c, k, method=method, key=jax.random.key(s)).class_priors
            for s, (_, c) in zip(seeds, problems)
        ]

    ours = ctx.time(ours_loop, repeats=3)
    peer = ctx.time(
        lambda: [_sk_paper_route(c, k, s) for s, (_, c) in zip(seeds, problems)], repeats=1
    )
    spa = np.array([_mae(q, qh) for (q, _), qh in zip(problems, ours.value)])
    sk = np.array([_mae(q, qh) for (q, _), qh in zip(problems, peer.value)])
    ours_nmf = np.array([_mae(q, qh) for (q, _), qh in zip(problems, ours_loop("nmf"))])
    spa_hals = np.array([_mae(q, qh) for (q, _), qh in zip(problems, ours_loop("spa+hals"))])
    ctx.record(
        f"(c) Q MAE SPA vs sklearn NMF, a={alpha:g} N=1e{round(np.log10(n_samples))}",
        sizes={"m": m, "k": k, "r": r, "alpha": alpha, "N": n_samples, "seeds": len(seeds)},
        ours=ours,
        peer=peer,
        peer_name="sklearn NMF route",
        error=float(spa.mean()),
        tolerance=0.01,
        metrics={
            "spa_mae_mean": float(spa.mean()),
            "spa_mae_max": float(spa.max()),
            "sklearn_nmf_mae_mean": float(sk.mean()),
            "sklearn_nmf_mae_min": float(sk.min()),
            "ours_nmf_route_mae_mean": float(ours_nmf.mean()),
            "spa_hals_mae_mean": float(spa_hals.mean()),
        },
    )


@register_benchmark("nmf", description="JAX HALS/MU NMF and SPA vs scikit-learn NMF")
def run(ctx):
    with jax.enable_x64(True):
        if ctx.quick:
            large_case(ctx, 2000, 50)
            batched_case(ctx, 100)
            accuracy_case(ctx, range(3))
        else:
            large_case(ctx, 10_000, 100)
            batched_case(ctx, 1000)
            accuracy_case(ctx, range(10))
    ctx.notes["ratio"] = "peer median time / theorylab median time (> 1: theorylab faster)"
    ctx.notes["dtype"] = "float64 on both sides"
    ctx.notes["backend"] = jax.default_backend()
    ctx.notes["protocol"] = (
        "(a) time to reach the peer's final relative error (ours timed for the first sweep "
        "count reaching it, same start); (b) one vmapped jitted call vs a Python loop, same "
        "starts; (c) Q_{Y|D} MAE per entry over seeds (Hungarian on L1 row cost)"
    )
