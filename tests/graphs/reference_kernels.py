"""Plain numpy/scipy reference implementations of the graph kernels in
``shared/specs/graph_kernels.md`` sections 1.1-1.4.

This module is written straight from the *defining formulas* in the spec's
measure table (section 1.3). It works the way pygkernels does: one ``expm``,
``inv`` or ``pinv`` per parameter value, and no eigendecompositions. That keeps
it independent of an eigendecomposition-based implementation, so the two can
be compared in tests. Everything is float64.

Notation (spec section 1.1). ``A`` is a dense symmetric non-negative adjacency
matrix of a connected graph. The other quantities are:

    d   = A 1,      D = diag(d),      L = D - A
    NL  = D^{-1/2} L D^{-1/2}   (normalised Laplacian)
    P   = D^{-1} A              (random-walk matrix)
    vol = 1^T A 1,  J = 1 1^T,  H_c = I - J / n,  rho = spectral radius of A

Public API
----------
REFERENCE_KERNELS : dict name -> f(A, param) -> K (n, n)
    Each function takes the measure's *native* parameter. CT, CCT and SP
    ignore their parameter, so None is fine for them.
reference_rsp_distance(A, beta), reference_fe_distance(A, beta)
reference_shortest_paths(A)
reference_commute_time(A)
kernel_to_distance(K), distance_to_kernel(Delta)
FLAT_SCALERS : dict scaler name -> f(x, rho) -> native parameter
MEASURE_SCALER : dict measure name -> scaler name (measures with a parameter only)
spectral_radius(A), alpha_to_t(alpha, rho)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg
from scipy.sparse.csgraph import shortest_path

EPS = 1e-10  # the spec's epsilon in the flat-parameter scalers (section 1.3)

__all__ = [
    "EPS",
    "FLAT_SCALERS",
    "MEASURE_SCALER",
    "REFERENCE_KERNELS",
    "alpha_to_t",
    "distance_to_kernel",
    "elementwise_log",
    "kernel_to_distance",
    "reference_commute_time",
    "reference_fe_distance",
    "reference_rsp_distance",
    "reference_shortest_paths",
    "spectral_radius",
]


# ---------------------------------------------------------------------------
# Basic graph matrices (spec section 1.1)
# ---------------------------------------------------------------------------


def _as_float(A: np.ndarray) -> np.ndarray:
    return np.asarray(A, dtype=np.float64)


def degrees(A: np.ndarray) -> np.ndarray:
    """d = A 1."""
    A = _as_float(A)
    return A.sum(axis=1)


def laplacian(A: np.ndarray) -> np.ndarray:
    """Combinatorial Laplacian L = D - A."""
    A = _as_float(A)
    return np.diag(degrees(A)) - A


def normalized_laplacian(A: np.ndarray) -> np.ndarray:
    """Normalised Laplacian NL = D^{-1/2} L D^{-1/2} = I - D^{-1/2} A D^{-1/2}."""
    A = _as_float(A)
    d_inv_sqrt = np.diag(1.0 / np.sqrt(degrees(A)))
    return d_inv_sqrt @ laplacian(A) @ d_inv_sqrt


def random_walk_matrix(A: np.ndarray) -> np.ndarray:
    """P = D^{-1} A (row-stochastic)."""
    A = _as_float(A)
    return np.diag(1.0 / degrees(A)) @ A


def centering_matrix(n: int) -> np.ndarray:
    """H_c = I - J / n."""
    return np.eye(n) - np.ones((n, n)) / n


def spectral_radius(A: np.ndarray) -> float:
    """rho = largest |eigenvalue| of A.

    This uses ``np.linalg.eigvals``, the general non-symmetric routine that
    the spec says the pygkernels scalers call. It is only used to turn flat
    parameters into native ones.
    """
    A = _as_float(A)
    return float(np.max(np.abs(np.linalg.eigvals(A))))


# ---------------------------------------------------------------------------
# Conventions (spec section 1.2)
# ---------------------------------------------------------------------------


def elementwise_log(K: np.ndarray) -> np.ndarray:
    """Log transform (pygkernels ``ewlog``): H_log = ln K entry by entry.

    Entries <= 0 become -inf. NaN entries stay NaN.
    """
    K = _as_float(K)
    out = np.full(K.shape, -np.inf)
    positive = K > 0
    out[positive] = np.log(K[positive])
    out[np.isnan(K)] = np.nan
    return out


def kernel_to_distance(K: np.ndarray) -> np.ndarray:
    """``K_to_D``: D = (k 1^T + 1 k^T - K - K^T) / 2 with k = diag K.

    That is, d_ij = (k_ii + k_jj - k_ij - k_ji) / 2. No power is applied.
    """
    K = _as_float(K)
    n = K.shape[0]
    k = np.diag(K).reshape(n, 1)
    ones = np.ones((n, 1))
    return (k @ ones.T + ones @ k.T - K - K.T) / 2.0


def distance_to_kernel(Delta: np.ndarray) -> np.ndarray:
    """``D_to_K``: K = -1/2 H_c Delta H_c.

    This is applied to Delta itself, not to Delta squared (Kivimaki's
    convention, spec section 1.2).
    """
    Delta = _as_float(Delta)
    H = centering_matrix(Delta.shape[0])
    return -0.5 * H @ Delta @ H


def _sigmoid(X: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-X)) entry by entry (exp overflow -> 0 is intended)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-X))


# ---------------------------------------------------------------------------
# Plain kernels (spec section 1.3 table)
# ---------------------------------------------------------------------------


def pwalk_kernel(A: np.ndarray, t: float) -> np.ndarray:
    """pWalk / Katz / von Neumann: H = (I - tA)^{-1}, 0 < t < 1/rho.

    Computed with ``pinv``, as pygkernels ``Katz_H`` does. In the valid range
    I - tA is invertible, so pinv gives the same matrix as inv.
    """
    A = _as_float(A)
    n = A.shape[0]
    return np.linalg.pinv(np.eye(n) - t * A)


def forest_kernel(A: np.ndarray, t: float) -> np.ndarray:
    """For / regularised Laplacian: H = (I + tL)^{-1}, t > 0 (``inv``)."""
    A = _as_float(A)
    n = A.shape[0]
    return np.linalg.inv(np.eye(n) + t * laplacian(A))


def comm_kernel(A: np.ndarray, t: float) -> np.ndarray:
    """Comm / communicability: H = expm(tA), t > 0."""
    A = _as_float(A)
    return scipy.linalg.expm(t * A)


def heat_kernel(A: np.ndarray, t: float) -> np.ndarray:
    """Heat / Laplacian exponential diffusion: H = expm(-tL), t > 0."""
    A = _as_float(A)
    return scipy.linalg.expm(-t * laplacian(A))


def nheat_kernel(A: np.ndarray, t: float) -> np.ndarray:
    """NHeat: H = expm(-t NL) with NL = D^{-1/2} L D^{-1/2}, t > 0."""
    A = _as_float(A)
    return scipy.linalg.expm(-t * normalized_laplacian(A))


def ppr_kernel(A: np.ndarray, alpha: float) -> np.ndarray:
    """PPR: H = (I - alpha P)^{-1}, P = D^{-1} A, 0 < alpha < 1 (``inv``).

    The result is not symmetric, and the usual (1 - alpha) factor is left
    out, so every row sums to 1 / (1 - alpha).
    """
    A = _as_float(A)
    n = A.shape[0]
    return np.linalg.inv(np.eye(n) - alpha * random_walk_matrix(A))


def modif_ppr_kernel(A: np.ndarray, alpha: float) -> np.ndarray:
    """ModifPPR: H = (D - alpha A)^{-1}, 0 < alpha < 1 (``inv``; symmetric)."""
    A = _as_float(A)
    return np.linalg.inv(np.diag(degrees(A)) - alpha * A)


def heat_pr_kernel(A: np.ndarray, t: float) -> np.ndarray:
    """HeatPR: H = expm(-t (I - P)), P = D^{-1} A, t > 0."""
    A = _as_float(A)
    n = A.shape[0]
    return scipy.linalg.expm(-t * (np.eye(n) - random_walk_matrix(A)))


def _double_factorial(k: int) -> int:
    """k!! = k (k-2) (k-4) ... down to 1 or 2, with 0!! = 1!! = 1."""
    result = 1
    j = k
    while j > 1:
        result *= j
        j -= 2
    return result


def df_kernel(A: np.ndarray, t: float) -> np.ndarray:
    """DF (double factorial): H = sum_{k=0}^{29} (tA)^k / k!!  (30 terms).

    The powers (tA)^k are built by repeated matrix multiplication.
    """
    A = _as_float(A)
    n = A.shape[0]
    tA = t * A
    power = np.eye(n)  # (tA)^0
    total = np.zeros((n, n))
    for k in range(30):
        if k > 0:
            power = power @ tA
        total = total + power / float(_double_factorial(k))
    return total


def abs_kernel(A: np.ndarray, t: float) -> np.ndarray:
    """Abs (pygkernels-specific): H = pinv(tA + L), t > 0."""
    A = _as_float(A)
    return np.linalg.pinv(t * A + laplacian(A))


def ct_kernel(A: np.ndarray, param: float | None = None) -> np.ndarray:
    """CT: K = L^+ = pinv(L). ``param`` is ignored."""
    A = _as_float(A)
    return np.linalg.pinv(laplacian(A))


def sct_kernel(A: np.ndarray, alpha: float) -> np.ndarray:
    """SCT (sigmoid commute time): K_ij = 1 / (1 + exp(-alpha l+_ij / sigma)).

    Here l+ = pinv(L) and sigma = np.std of all n^2 entries of L^+ (ddof=0).
    """
    Lplus = ct_kernel(A)
    sigma = np.std(Lplus)
    return _sigmoid(alpha * Lplus / sigma)


def cct_kernel(A: np.ndarray, param: float | None = None) -> np.ndarray:
    """CCT (von Luxburg's corrected commute time). ``param`` is ignored.

    K_CCT = H_c D^{-1/2} M (I - M)^{-1} M D^{-1/2} H_c,
    M     = D^{-1/2} (A - d d^T / vol) D^{-1/2}.
    """
    A = _as_float(A)
    n = A.shape[0]
    d = degrees(A).reshape(n, 1)
    vol = float(A.sum())
    d_inv_sqrt = np.diag(1.0 / np.sqrt(d.ravel()))
    M = d_inv_sqrt @ (A - d @ d.T / vol) @ d_inv_sqrt
    H = centering_matrix(n)
    inner = M @ np.linalg.inv(np.eye(n) - M) @ M
    return H @ d_inv_sqrt @ inner @ d_inv_sqrt @ H


def scct_kernel(A: np.ndarray, alpha: float) -> np.ndarray:
    """SCCT: the SCT sigmoid applied to K_CCT / sigma, sigma = np.std(K_CCT).

    K_ij = 1 / (1 + exp(-alpha (K_CCT)_ij / sigma)).
    """
    K_cct = cct_kernel(A)
    sigma = np.std(K_cct)
    return _sigmoid(alpha * K_cct / sigma)


# ---------------------------------------------------------------------------
# Distance-based measures: SP, SP-CT, RSP, FE
# ---------------------------------------------------------------------------


def _cost_matrix(A: np.ndarray) -> np.ndarray:
    """Edge costs 1/a_ij on edges (a_ij > 0) and 0 elsewhere.

    Zero is how scipy's csgraph marks a missing edge in a dense matrix. RSP/FE
    set "max float" off the edges instead, but there C only ever appears
    multiplied by W, and W is zero off the edges.
    """
    A = _as_float(A)
    C = np.zeros_like(A)
    edges = A > 0
    C[edges] = 1.0 / A[edges]
    return C


def reference_shortest_paths(A: np.ndarray) -> np.ndarray:
    """Shortest-path distance matrix with edge cost 1/a_ij (scipy csgraph)."""
    C = _cost_matrix(A)
    return shortest_path(C, method="D", directed=False)


def sp_kernel(A: np.ndarray, param: float | None = None) -> np.ndarray:
    """SP kernel: K_SP = -1/2 H_c Delta_SP H_c. ``param`` is ignored."""
    return distance_to_kernel(reference_shortest_paths(A))


def spct_kernel(A: np.ndarray, lam: float) -> np.ndarray:
    """SP-CT: H = lambda K_SP + (1 - lambda) 2 L^+, lambda in [0, 1]."""
    return lam * sp_kernel(A) + (1.0 - lam) * 2.0 * ct_kernel(A)


def reference_commute_time(A: np.ndarray) -> np.ndarray:
    """Commute-time distance: vol (l+_ii + l+_jj - 2 l+_ij), l+ = pinv(L)."""
    A = _as_float(A)
    n = A.shape[0]
    vol = float(A.sum())
    Lplus = ct_kernel(A)
    CT = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            CT[i, j] = vol * (Lplus[i, i] + Lplus[j, j] - 2.0 * Lplus[i, j])
    return CT


def _rsp_matrices(A: np.ndarray, beta: float):
    """Shared RSP/FE pieces: cost C, W = P_ref ∘ exp(-beta C) (0 off edges),
    and Z = (I - W)^{-1}, with P_ref = D^{-1} A."""
    A = _as_float(A)
    n = A.shape[0]
    C = _cost_matrix(A)
    P_ref = random_walk_matrix(A)
    edges = A > 0
    W = np.zeros((n, n))
    W[edges] = P_ref[edges] * np.exp(-beta * C[edges])
    Z = np.linalg.inv(np.eye(n) - W)
    return C, W, Z


def reference_rsp_distance(A: np.ndarray, beta: float) -> np.ndarray:
    """RSP (randomised shortest paths) dissimilarity, spec section 1.3.

    S     = (Z (C∘W) Z) ÷ Z        (÷ = entry-by-entry division)
    Cbar  = S - 1 diag(S)^T        i.e. Cbar_ij = S_ij - S_jj
    Delta = (Cbar + Cbar^T) / 2, with the diagonal set to 0.

    Nothing guards against over- or underflow (spec section 1.5 item 6).
    For large beta, exp(-beta C) underflows, Z has zero entries, and S
    becomes 0/0 = NaN. As beta -> 0, I - W becomes singular. Delta tends
    to commute time / 2 as beta -> 0 and to the shortest-path distance as
    beta -> inf.
    """
    C, W, Z = _rsp_matrices(A, beta)
    n = Z.shape[0]
    S = (Z @ (C * W) @ Z) / Z
    ones = np.ones((n, 1))
    Cbar = S - ones @ np.diag(S).reshape(1, n)
    Delta = (Cbar + Cbar.T) / 2.0
    np.fill_diagonal(Delta, 0.0)
    return Delta


def reference_fe_distance(A: np.ndarray, beta: float) -> np.ndarray:
    """FE (free energy) dissimilarity, spec section 1.3.

    Zh    = Z diag(Z)^{-1}          i.e. Zh_ij = Z_ij / Z_jj
    Phi   = -(1/beta) ln Zh
    Delta = (Phi + Phi^T) / 2, with the diagonal set to 0.

    For large beta, Zh underflows to 0 and Phi becomes +inf (no guard). The
    approach to shortest paths is only O(1/beta): Phi_ij is roughly
    SP_ij - (1/beta) ln(product of P_ref along the path).
    """
    _, _, Z = _rsp_matrices(A, beta)
    Zh = Z @ np.diag(1.0 / np.diag(Z))
    Phi = -(1.0 / beta) * np.log(Zh)
    Delta = (Phi + Phi.T) / 2.0
    np.fill_diagonal(Delta, 0.0)
    return Delta


def rsp_kernel(A: np.ndarray, beta: float) -> np.ndarray:
    """RSP kernel: -1/2 H_c Delta_RSP H_c."""
    return distance_to_kernel(reference_rsp_distance(A, beta))


def fe_kernel(A: np.ndarray, beta: float) -> np.ndarray:
    """FE kernel: -1/2 H_c Delta_FE H_c."""
    return distance_to_kernel(reference_fe_distance(A, beta))


# ---------------------------------------------------------------------------
# Log variants and the registry
# ---------------------------------------------------------------------------


def _log_of(kernel: Callable[[np.ndarray, float], np.ndarray]):
    def log_kernel(A: np.ndarray, param: float) -> np.ndarray:
        return elementwise_log(kernel(A, param))

    log_kernel.__name__ = "log_" + kernel.__name__
    log_kernel.__doc__ = f"Entry-by-entry ln of ``{kernel.__name__}`` (entries <= 0 become -inf)."
    return log_kernel


REFERENCE_KERNELS: dict[str, Callable[[np.ndarray, float | None], np.ndarray]] = {
    "pWalk": pwalk_kernel,
    "Walk": _log_of(pwalk_kernel),
    "For": forest_kernel,
    "logFor": _log_of(forest_kernel),
    "Comm": comm_kernel,
    "logComm": _log_of(comm_kernel),
    "Heat": heat_kernel,
    "logHeat": _log_of(heat_kernel),
    "NHeat": nheat_kernel,
    "logNHeat": _log_of(nheat_kernel),
    "PPR": ppr_kernel,
    "logPPR": _log_of(ppr_kernel),
    "ModifPPR": modif_ppr_kernel,
    "logModifPPR": _log_of(modif_ppr_kernel),
    "HeatPR": heat_pr_kernel,
    "logHeatPR": _log_of(heat_pr_kernel),
    "DF": df_kernel,
    "logDF": _log_of(df_kernel),
    "Abs": abs_kernel,
    "logAbs": _log_of(abs_kernel),
    "CT": ct_kernel,
    "SCT": sct_kernel,
    "CCT": cct_kernel,
    "SCCT": scct_kernel,
    "SP": sp_kernel,
    "SP-CT": spct_kernel,
    "RSP": rsp_kernel,
    "FE": fe_kernel,
}


# ---------------------------------------------------------------------------
# Flat parameter x in [0, 1] -> native parameter (spec section 1.3, last column)
# ---------------------------------------------------------------------------


def _rho_scaler(x: float, rho: float | None = None) -> float:
    """Rho: t = x / (rho + eps)."""
    return x / (rho + EPS)


def _fraction_scaler(x: float, rho: float | None = None) -> float:
    """Fraction: t = 0.5 x / (1 - x + eps)."""
    return 0.5 * x / (1.0 - x + EPS)


def _linear_scaler(x: float, rho: float | None = None) -> float:
    """Linear: native = x."""
    return x


def _fraction_reversed_scaler(x: float, rho: float | None = None) -> float:
    """FractionReversed: beta = (1 - x) / (x + eps)."""
    return (1.0 - x) / (x + EPS)


FLAT_SCALERS: dict[str, Callable[[float, float | None], float]] = {
    "rho": _rho_scaler,
    "fraction": _fraction_scaler,
    "linear": _linear_scaler,
    "fraction_reversed": _fraction_reversed_scaler,
}

# Only measures that have a parameter; CT, CCT and SP have none.
MEASURE_SCALER: dict[str, str] = {
    "pWalk": "rho",
    "Walk": "rho",
    "For": "fraction",
    "logFor": "fraction",
    "Comm": "fraction",
    "logComm": "fraction",
    "Heat": "fraction",
    "logHeat": "fraction",
    "NHeat": "fraction",
    "logNHeat": "fraction",
    "PPR": "linear",
    "logPPR": "linear",
    "ModifPPR": "linear",
    "logModifPPR": "linear",
    "HeatPR": "fraction",
    "logHeatPR": "fraction",
    "DF": "fraction",
    "logDF": "fraction",
    "Abs": "fraction",
    "logAbs": "fraction",
    "SCT": "fraction",
    "SCCT": "fraction",
    "SP-CT": "linear",
    "RSP": "fraction_reversed",
    "FE": "fraction_reversed",
}


def alpha_to_t(alpha: float, rho: float) -> float:
    """Chebotarev's ``AlphaToT`` for Walk: t = 1 / (1/alpha + rho), alpha > 0."""
    return 1.0 / (1.0 / alpha + rho)
