"""Plain and logarithmic graph proximity measures and their parameter grids.

Implements every measure family of Ivashkin & Chebotarev, "Do logarithmic proximity measures
outperform plain ones in graph clustering?" (2016; spec §1.3), in the conventions of the
authors' library pygkernels: pWalk/Walk (Katz and its log), For/logFor, Comm/logComm,
Heat/logHeat, NHeat/logNHeat, PPR/logPPR, ModifPPR/logModifPPR, HeatPR/logHeatPR, DF/logDF,
Abs/logAbs, CT, SCT, CCT, SCCT, SP, SP-CT, RSP and FE.

**One eigendecomposition per operator, one GEMM per parameter** (spec §1.4, §4). With
``A = UΛUᵀ``, ``L = VMVᵀ`` and ``𝒜 = WΣWᵀ``:

- Walk ``(I - tA)^{-1} = U (1 - tΛ)^{-1} Uᵀ``; Comm ``e^{tA}``; DF ``Σ_{k<30} (tA)^k / k!!``;
- For ``(I + tL)^{-1} = V (1 + tM)^{-1} Vᵀ``; Heat ``e^{-tL}``; CT ``L⁺ = V M⁺ Vᵀ``;
- NHeat ``e^{-t𝓛} = W e^{-t(1-Σ)} Wᵀ``; ModifPPR ``(D - αA)^{-1} = D^{-1/2} W (1 - αΣ)^{-1}
  Wᵀ D^{-1/2}``; PPR ``(I - αP)^{-1} = D^{-1/2} W (1 - αΣ)^{-1} Wᵀ D^{1/2}``; HeatPR
  ``e^{-t(I-P)} = D^{-1/2} NHeat D^{1/2}``; CCT ``H_c D^{-1/2} W g(Σ) Wᵀ D^{-1/2} H_c`` with
  ``g(σ) = σ²/(1-σ)`` off the Perron pair.

logComm is computed in log-space with the spectral shift ``ln e^{tA} = tρ + ln(U e^{t(Λ-ρ)} Uᵀ)``
so it never overflows (spec §1.5.1). Abs (``pinv(tA + L)``, pygkernels' definition, not
Jacobsen-Tien's absorption kernel), RSP and FE need one O(n³) solve per parameter.

**Parameters.** Each measure has a native parameter (``t``, ``alpha``, ``beta`` or ``lambda``)
and pygkernels' flat parameter ``x ∈ [0, 1]`` mapped by the measure's scaler (ε = 1e-10):
``rho``: t = x/(ρ+ε); ``fraction``: t = ½x/(1-x+ε); ``linear``: α = x;
``fraction_reversed``: β = (1-x)/(x+ε).

**Precision.** Log measures, RSP and FE need float64 (tiny kernel entries for small parameters,
spec §1.5.3); the public functions raise a ``ValueError`` saying how to enable it. The plain
measures run in the input dtype.

Public entry points validate input (square, symmetric, non-negative, finite adjacency; connected
graphs where the measure needs it; parameter ranges such as Walk's ``t < 1/ρ``) before any tracing:
:func:`kernel`, :func:`kernel_grid`, :func:`distance`, :func:`native_parameter`. The jittable
core, for use inside your own ``jit``/``vmap`` over graphs, is ``MEASURES[name].kernel_fn(spectra,
param)`` with ``spectra = graph_spectra(A, measure.operators, ...)`` and
:func:`scale_parameter`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theorylab.core.checks import (
    check_array,
    check_float,
    check_int,
    require_x64,
)
from theorylab.core.linalg import symmetric_reconstruct
from theorylab.core.registry import Registry
from theorylab.graphs.clustering import FactoredKernel
from theorylab.graphs.operators import (
    GraphSpectra,
    adjacency_matrix,
    check_connected,
    graph_spectra,
    laplacian,
)
from theorylab.graphs.transforms import (
    distance_to_kernel,
    elementwise_log,
    kernel_to_distance,
    sigmoid_kernel,
)

__all__ = [
    "FAMILY_PAIRS",
    "MEASURES",
    "KernelGrid",
    "Measure",
    "distance",
    "factored_kernel",
    "get_measure",
    "kernel",
    "kernel_grid",
    "kernel_grids",
    "native_parameter",
    "scale_parameter",
    "walk_t_from_alpha",
]

EPS = 1e-10
SCALERS = ("rho", "fraction", "linear", "fraction_reversed")


# --------------------------------------------------------------------------- scalers


def scale_parameter(scaler: str | None, flat, spectral_radius=None):
    """Map pygkernels' flat parameter ``x ∈ [0, 1]`` to the native one (jittable).

    ``rho``: x/(ρ+ε) (needs ``spectral_radius``); ``fraction``: ½x/(1-x+ε); ``linear``: x;
    ``fraction_reversed``: (1-x)/(x+ε); ``None``: the measure has no parameter.
    """
    if scaler is None:
        return flat
    if scaler == "rho":
        return flat / (spectral_radius + EPS)
    if scaler == "fraction":
        return 0.5 * flat / (1.0 - flat + EPS)
    if scaler == "linear":
        return flat
    if scaler == "fraction_reversed":
        return (1.0 - flat) / (flat + EPS)
    raise ValueError(f"scaler must be one of {SCALERS} or None; got {scaler!r}")


def walk_t_from_alpha(alpha, spectral_radius):
    """Chebotarev's Walk parametrisation: ``t = 1 / (1/α + ρ)`` for ``α > 0`` (``AlphaToT``)."""
    return 1.0 / (1.0 / alpha + spectral_radius)


# --------------------------------------------------------------------------- kernels


def _sqrt_degrees(s: GraphSpectra):
    return jnp.sqrt(s.degrees)


def _factor(dec, spectrum, left=None, right=None) -> FactoredKernel:
    ones = jnp.ones_like(spectrum)
    left = ones if left is None else left
    right = left if right is None else right
    return FactoredKernel(dec.vectors, spectrum, left, right, symmetric=right is left)


def _pwalk_factor(s: GraphSpectra, t):
    dec = s.adjacency_eigh
    return _factor(dec, 1.0 / (1.0 - t * dec.values))


def _comm_factor(s: GraphSpectra, t):
    dec = s.adjacency_eigh
    return _factor(dec, jnp.exp(t * dec.values))


def _log_comm(s: GraphSpectra, t):
    dec = s.adjacency_eigh
    shifted = jnp.exp(t * (dec.values - s.spectral_radius))
    return t * s.spectral_radius + symmetric_reconstruct(
        dec.vectors, shifted, elementwise=elementwise_log
    )


def _double_factorial_coefficients(terms: int = 30) -> np.ndarray:
    coeffs = np.ones(terms)
    for k in range(2, terms):
        coeffs[k] = coeffs[k - 2] / k  # 1/k!! = (1/(k-2)!!) / k
    return coeffs


_DF_COEFFS = _double_factorial_coefficients()


def _df_factor(s: GraphSpectra, t):
    dec = s.adjacency_eigh
    x = t * dec.values
    series = jnp.zeros_like(x)
    for c in _DF_COEFFS[::-1]:  # Horner on the 30-term truncation, static unroll
        series = series * x + float(c)
    return _factor(dec, series)


def _forest_factor(s: GraphSpectra, t):
    dec = s.laplacian_eigh
    return _factor(dec, 1.0 / (1.0 + t * dec.values))


def _heat_factor(s: GraphSpectra, t):
    dec = s.laplacian_eigh
    return _factor(dec, jnp.exp(-t * dec.values))


def _ct_factor(s: GraphSpectra, _param=None):
    dec = s.laplacian_eigh
    # connected graph: exactly one zero eigenvalue, the first (eigh sorts ascending)
    first = jnp.arange(dec.values.shape[-1]) == 0
    return _factor(dec, jnp.where(first, 0.0, 1.0 / jnp.where(first, 1.0, dec.values)))


def _laplacian_pinv(s: GraphSpectra):
    return _ct_factor(s).dense()


def _nheat_factor(s: GraphSpectra, t):
    dec = s.normalized_adjacency_eigh
    return _factor(dec, jnp.exp(-t * (1.0 - dec.values)))


def _ppr_spectrum(s: GraphSpectra, alpha):
    return 1.0 / (1.0 - alpha * s.normalized_adjacency_eigh.values)


def _modif_ppr_factor(s: GraphSpectra, alpha):
    r = 1.0 / _sqrt_degrees(s)
    return _factor(s.normalized_adjacency_eigh, _ppr_spectrum(s, alpha), r)


def _ppr_factor(s: GraphSpectra, alpha):
    r = _sqrt_degrees(s)
    return _factor(s.normalized_adjacency_eigh, _ppr_spectrum(s, alpha), 1.0 / r, r)


def _heat_pr_factor(s: GraphSpectra, t):
    r = _sqrt_degrees(s)
    dec = s.normalized_adjacency_eigh
    return _factor(dec, jnp.exp(-t * (1.0 - dec.values)), 1.0 / r, r)


def _dense(factor_fn):
    def dense_kernel(s, p=None):
        return factor_fn(s, p).dense()

    return dense_kernel


def _abs(s: GraphSpectra, t):
    a = s.adjacency
    return jnp.linalg.pinv(t * a + laplacian(a), hermitian=True)


def _sct(s: GraphSpectra, alpha):
    return sigmoid_kernel(_laplacian_pinv(s), alpha)


def _cct(s: GraphSpectra, _param=None):
    dec = s.normalized_adjacency_eigh
    sigma = dec.values
    n = sigma.shape[-1]
    perron = jnp.arange(n) == n - 1  # eigenvalue 1 of 𝒜 for a connected graph
    g = jnp.where(perron, 0.0, sigma**2 / jnp.where(perron, 1.0, 1.0 - sigma))
    r = _sqrt_degrees(s)
    inner = symmetric_reconstruct(dec.vectors, g) / r[:, None] / r[None, :]
    centred = inner - inner.mean(axis=0, keepdims=True)
    return centred - centred.mean(axis=1, keepdims=True)


def _scct(s: GraphSpectra, alpha):
    return sigmoid_kernel(_cct(s), alpha)


def _sp_kernel(s: GraphSpectra, _param=None):
    return distance_to_kernel(s.shortest_paths)


def _spct(s: GraphSpectra, lam):
    return lam * distance_to_kernel(s.shortest_paths) + (1.0 - lam) * 2.0 * _laplacian_pinv(s)


def _rsp_fe_parts(s: GraphSpectra, beta):
    """W = P_ref ∘ exp(-βC), Z = (I - W)^{-1}, and C∘W with C = 1/a_ij on edges."""
    a = s.adjacency
    edge = a > 0
    cost = jnp.where(edge, 1.0 / jnp.where(edge, a, 1.0), 0.0)
    p_ref = a / s.degrees[:, None]
    w = jnp.where(edge, p_ref * jnp.exp(-beta * cost), 0.0)
    n = a.shape[-1]
    z = jnp.linalg.inv(jnp.eye(n, dtype=a.dtype) - w)
    return w, z, cost * w


def _rsp_distance(s: GraphSpectra, beta):
    """Randomized shortest-path dissimilarity (Kivimäki et al. 2014; spec §1.3)."""
    _, z, cw = _rsp_fe_parts(s, beta)
    numer = z @ cw @ z
    ratio = numer / z
    cbar = ratio - jnp.diagonal(ratio)[None, :]
    delta = 0.5 * (cbar + cbar.T)
    return delta * (1.0 - jnp.eye(delta.shape[-1], dtype=delta.dtype))


def _fe_distance(s: GraphSpectra, beta):
    """Free-energy distance: Φ = -(1/β) ln(Z diag(Z)^{-1}), Δ = (Φ + Φᵀ)/2 (spec §1.3)."""
    _, z, _ = _rsp_fe_parts(s, beta)
    zh = z / jnp.diagonal(z)[None, :]
    phi = -elementwise_log(zh) / beta
    delta = 0.5 * (phi + phi.T)
    return delta * (1.0 - jnp.eye(delta.shape[-1], dtype=delta.dtype))


def _rsp(s: GraphSpectra, beta):
    return distance_to_kernel(_rsp_distance(s, beta))


def _fe(s: GraphSpectra, beta):
    return distance_to_kernel(_fe_distance(s, beta))


def _logged(fn):
    def log_kernel(s, p):
        return elementwise_log(fn(s, p))

    return log_kernel


def _logged_factor(factor_fn):
    """``ln(l_i M_ij r_j) = ln M_ij + ln l_i + ln r_j`` for a factored kernel with positive
    scalings (ones or powers of degrees): the log is taken blockwise on the symmetric core
    ``M`` before mirroring, so it costs about half of the n² evaluations."""

    def log_kernel(s, p):
        f = factor_fn(s, p)
        core = symmetric_reconstruct(f.vectors, f.spectrum, elementwise=elementwise_log)
        return core + jnp.log(f.left)[:, None] + jnp.log(f.right)[None, :]

    return log_kernel


# distances with their own definition (the rest use kernel_to_distance with the power)
def _ct_distance(s: GraphSpectra, _param=None):
    return s.volume * 2.0 * kernel_to_distance(_laplacian_pinv(s))


def _sp_distance(s: GraphSpectra, _param=None):
    return s.shortest_paths


def _spct_distance(s: GraphSpectra, lam):
    return lam * s.shortest_paths + (1.0 - lam) * 2.0 * _ct_distance(s)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Measure:
    """A proximity measure: definition, parameter, scaler, requirements.

    Attributes:
      name: registry name (pygkernels' class name without the ``_H``/``_D`` suffix).
      family: the plain/log pair it belongs to (``"Comm"`` for Comm and logComm).
      log: whether it is the elementwise log of a plain kernel.
      parameter: native parameter name, or ``None`` (CT, CCT, SP).
      scaler: flat -> native mapping (see :func:`scale_parameter`).
      lower, upper: open/closed native range; ``upper="1/rho"`` for Walk.
      operators: eigendecompositions the kernel needs (``graph_spectra`` operators).
      shortest_paths: needs shortest-path distances.
      diagonalisable: whole grid from one eigendecomposition (one GEMM per parameter).
      needs_connected: raises for disconnected graphs / isolated nodes.
      needs_x64: raises unless float64 is enabled.
      distance_power: power used by :func:`distance` after ``kernel_to_distance``.
      kernel_fn: ``(GraphSpectra, native_param) -> (n, n)`` kernel, pure and jittable.
      factor_fn: for plain diagonalisable measures, ``(GraphSpectra, native_param) ->``
        :class:`FactoredKernel` (the kernel without forming it); ``None`` otherwise.
      distance_fn: optional native distance (CT, SP, SP-CT, RSP, FE).
      description: one line, with the formula.
    """

    name: str
    family: str
    log: bool
    parameter: str | None
    scaler: str | None
    lower: float | None
    upper: float | str | None
    lower_inclusive: bool
    upper_inclusive: bool
    operators: tuple[str, ...]
    shortest_paths: bool
    diagonalisable: bool
    needs_connected: bool
    needs_x64: bool
    distance_power: float
    kernel_fn: Callable
    factor_fn: Callable | None
    distance_fn: Callable | None
    description: str


MEASURES: Registry[Measure] = Registry("measure")

_A, _L, _NA = ("adjacency",), ("laplacian",), ("normalized_adjacency",)
_POSITIVE = {"lower": 0.0, "upper": None, "lower_inclusive": False, "upper_inclusive": False}
_UNIT_OPEN = {"lower": 0.0, "upper": 1.0, "lower_inclusive": False, "upper_inclusive": False}
_NONE = {"lower": None, "upper": None, "lower_inclusive": False, "upper_inclusive": False}


_FACTOR_FNS = {
    _pwalk_factor,
    _comm_factor,
    _df_factor,
    _forest_factor,
    _heat_factor,
    _ct_factor,
    _nheat_factor,
    _ppr_factor,
    _modif_ppr_factor,
    _heat_pr_factor,
}


def _add(
    name,
    family,
    fn,
    *,
    log=False,
    parameter="t",
    scaler="fraction",
    bounds=_POSITIVE,
    operators=(),
    shortest_paths=False,
    diagonalisable=True,
    connected=None,
    x64=None,
    power=1.0,
    distance_fn=None,
    description="",
):
    factor_fn = fn if fn in _FACTOR_FNS else None
    dense_fn = _dense(fn) if factor_fn is not None else fn
    MEASURES.add(
        name,
        Measure(
            name=name,
            family=family,
            log=log,
            parameter=parameter,
            scaler=scaler,
            operators=operators,
            shortest_paths=shortest_paths,
            diagonalisable=diagonalisable,
            needs_connected=log if connected is None else connected,
            needs_x64=log if x64 is None else x64,
            distance_power=power,
            kernel_fn=(_logged_factor(fn) if factor_fn is not None else _logged(dense_fn))
            if log and name != "logComm"
            else dense_fn,
            factor_fn=None if log else factor_fn,
            distance_fn=distance_fn,
            description=description,
            **bounds,
        ),
    )


_WALK = {"lower": 0.0, "upper": "1/rho", "lower_inclusive": False, "upper_inclusive": False}
_add(
    "pWalk",
    "Walk",
    _pwalk_factor,
    scaler="rho",
    bounds=_WALK,
    operators=_A,
    description="Katz / von Neumann kernel (I - tA)^{-1}, 0 < t < 1/ρ",
)
_add(
    "Walk",
    "Walk",
    _pwalk_factor,
    log=True,
    scaler="rho",
    bounds=_WALK,
    operators=_A,
    description="Chebotarev's walk kernel ln (I - tA)^{-1}, 0 < t < 1/ρ",
)
_add("For", "For", _forest_factor, operators=_L, description="forest kernel (I + tL)^{-1}")
_add("logFor", "For", _forest_factor, log=True, operators=_L, description="ln (I + tL)^{-1}")
_add("Comm", "Comm", _comm_factor, operators=_A, power=0.5, description="communicability exp(tA)")
_add(
    "logComm",
    "Comm",
    _log_comm,
    log=True,
    operators=_A,
    power=0.5,
    description="ln exp(tA) = tρ + ln(U e^{t(Λ-ρ)} Uᵀ) (shifted, never overflows)",
)
_add("Heat", "Heat", _heat_factor, operators=_L, description="heat kernel exp(-tL)")
_add("logHeat", "Heat", _heat_factor, log=True, operators=_L, description="ln exp(-tL)")
_add(
    "NHeat",
    "NHeat",
    _nheat_factor,
    operators=_NA,
    connected=True,
    description="normalised heat kernel exp(-t𝓛)",
)
_add("logNHeat", "NHeat", _nheat_factor, log=True, operators=_NA, description="ln exp(-t𝓛)")
_add(
    "PPR",
    "PPR",
    _ppr_factor,
    parameter="alpha",
    scaler="linear",
    bounds=_UNIT_OPEN,
    operators=_NA,
    connected=True,
    description="personalized PageRank (I - αP)^{-1}, 0 < α < 1",
)
_add(
    "logPPR",
    "PPR",
    _ppr_factor,
    log=True,
    parameter="alpha",
    scaler="linear",
    bounds=_UNIT_OPEN,
    operators=_NA,
    description="ln (I - αP)^{-1}",
)
_add(
    "ModifPPR",
    "ModifPPR",
    _modif_ppr_factor,
    parameter="alpha",
    scaler="linear",
    bounds=_UNIT_OPEN,
    operators=_NA,
    connected=True,
    description="modified PPR (D - αA)^{-1}, 0 < α < 1",
)
_add(
    "logModifPPR",
    "ModifPPR",
    _modif_ppr_factor,
    log=True,
    parameter="alpha",
    scaler="linear",
    bounds=_UNIT_OPEN,
    operators=_NA,
    description="ln (D - αA)^{-1}",
)
_add(
    "HeatPR",
    "HeatPR",
    _heat_pr_factor,
    operators=_NA,
    connected=True,
    description="heat PageRank exp(-t(I - P))",
)
_add(
    "logHeatPR", "HeatPR", _heat_pr_factor, log=True, operators=_NA, description="ln exp(-t(I - P))"
)
_add("DF", "DF", _df_factor, operators=_A, description="double factorial Σ_{k<30} (tA)^k / k!!")
_add("logDF", "DF", _df_factor, log=True, operators=_A, description="ln Σ_{k<30} (tA)^k / k!!")
_add(
    "Abs",
    "Abs",
    _abs,
    diagonalisable=False,
    description="pygkernels' Abs: pinv(tA + L) (one solve per parameter)",
)
_add("logAbs", "Abs", _abs, log=True, diagonalisable=False, description="ln pinv(tA + L)")
_add(
    "CT",
    "CT",
    _ct_factor,
    parameter=None,
    scaler=None,
    bounds=_NONE,
    operators=_L,
    connected=True,
    distance_fn=_ct_distance,
    description="commute time: kernel L⁺, distance vol·(l⁺_ii + l⁺_jj - 2 l⁺_ij)",
)
_add(
    "SCT",
    "SCT",
    _sct,
    parameter="alpha",
    operators=_L,
    connected=True,
    description="sigmoid commute time 1/(1 + exp(-α L⁺/σ)), σ = std of L⁺'s entries",
)
_add(
    "CCT",
    "CCT",
    _cct,
    parameter=None,
    scaler=None,
    bounds=_NONE,
    operators=_NA,
    connected=True,
    description="corrected commute time (von Luxburg et al.)",
)
_add(
    "SCCT",
    "SCCT",
    _scct,
    parameter="alpha",
    operators=_NA,
    connected=True,
    description="sigmoid corrected commute time",
)
_add(
    "SP",
    "SP",
    _sp_kernel,
    parameter=None,
    scaler=None,
    bounds=_NONE,
    shortest_paths=True,
    diagonalisable=False,
    connected=True,
    distance_fn=_sp_distance,
    description="shortest paths (cost 1/a_ij); kernel -½ H_c Δ H_c",
)
_add(
    "SP-CT",
    "SP-CT",
    _spct,
    parameter="lambda",
    scaler="linear",
    bounds={"lower": 0.0, "upper": 1.0, "lower_inclusive": True, "upper_inclusive": True},
    operators=_L,
    shortest_paths=True,
    diagonalisable=False,
    connected=True,
    distance_fn=_spct_distance,
    description="λ K_SP + (1-λ) 2L⁺ (kernel); λ D_SP + (1-λ) 2 D_CT (distance)",
)
_add(
    "RSP",
    "RSP",
    _rsp,
    parameter="beta",
    scaler="fraction_reversed",
    diagonalisable=False,
    connected=True,
    x64=True,
    distance_fn=_rsp_distance,
    description="randomized shortest paths (Kivimäki et al.), β > 0",
)
_add(
    "FE",
    "FE",
    _fe,
    parameter="beta",
    scaler="fraction_reversed",
    diagonalisable=False,
    connected=True,
    x64=True,
    distance_fn=_fe_distance,
    description="free energy distance (Kivimäki et al.), β > 0",
)

#: The plain/log family pairs of the paper's "log vs plain" figures.
FAMILY_PAIRS = (
    ("pWalk", "Walk"),
    ("For", "logFor"),
    ("Comm", "logComm"),
    ("Heat", "logHeat"),
    ("NHeat", "logNHeat"),
    ("PPR", "logPPR"),
    ("ModifPPR", "logModifPPR"),
    ("HeatPR", "logHeatPR"),
)


def get_measure(measure: str | Measure) -> Measure:
    """Look up a measure by name (``UnknownNameError`` lists the valid names)."""
    if isinstance(measure, Measure):
        return measure
    if not isinstance(measure, str):
        raise TypeError(f"measure must be a measure name (str); got {type(measure).__name__}")
    return MEASURES[measure]


# --------------------------------------------------------------------------- public API


class KernelGrid(NamedTuple):
    """A measure evaluated on a parameter grid.

    Attributes:
      kernels: ``(P, n, n)`` kernels (``-inf`` entries possible for log kernels).
      params: ``(P,)`` native parameters.
      flat: ``(P,)`` flat parameters (NaN where native parameters were given).
      finite: ``(P,)`` bool, all entries finite (log kernels can lose entries to underflow).
    """

    kernels: jax.Array
    params: jax.Array
    flat: jax.Array
    finite: jax.Array


def _prepare(adjacency, measure: Measure, name="adjacency"):
    if measure.needs_x64:
        require_x64(f"measure {measure.name!r}")
    a = adjacency_matrix(adjacency, name=name)
    if measure.needs_connected or measure.operators == _NA:
        check_connected(a, name, what=f"measure {measure.name!r}")
    return a


def _spectra(a, measure: Measure) -> GraphSpectra:
    return _spectra_jit(a, measure.operators, measure.shortest_paths)


@partial(jax.jit, static_argnums=(1, 2))
def _spectra_jit(a, operators, shortest_paths):
    return graph_spectra(a, operators, shortest_paths=shortest_paths)


def _native_upper(measure: Measure, rho: float):
    if measure.upper == "1/rho":
        return (1.0 / rho) * (1.0 - 1e-12)  # the series diverges at 1/ρ; keep off the pole
    return measure.upper


def _check_native(measure: Measure, values: np.ndarray, rho: float, label: str):
    lo, hi = measure.lower, _native_upper(measure, rho)
    for v in np.atleast_1d(values):
        check_float(
            float(v),
            label,
            min_value=lo,
            max_value=hi,
            min_inclusive=measure.lower_inclusive,
            max_inclusive=measure.upper_inclusive,
        )


def _resolve_params(measure: Measure, spectra: GraphSpectra, param, flat, *, grid: bool):
    """Validate exactly one of native/flat and return (native, flat) float arrays."""
    dtype = spectra.adjacency.dtype
    if measure.parameter is None:
        if param is not None or flat is not None:
            raise ValueError(f"measure {measure.name!r} has no parameter; got param/flat")
        return None, None
    if (param is None) == (flat is None):
        raise ValueError(
            f"measure {measure.name!r} needs exactly one of param= (native {measure.parameter}) "
            "or flat= (x in [0, 1])"
        )
    rho = float(spectra.spectral_radius)
    ndim = 1 if grid else 0
    if flat is not None:
        x = check_array(flat, "flat", ndim=ndim, kind="real", finite=True, min_size=1, to_jax=False)
        x = np.asarray(x, dtype=np.float64)
        if np.any((x < 0) | (x > 1)):
            raise ValueError(f"flat must be in [0, 1]; got values in [{x.min()}, {x.max()}]")
        native = np.asarray(scale_parameter(measure.scaler, x, rho))
        _check_native(
            measure,
            native,
            rho,
            f"native {measure.parameter} (from flat via the {measure.scaler} scaler)",
        )
        return jnp.asarray(native, dtype), jnp.asarray(x, dtype)
    p = check_array(param, "param", ndim=ndim, kind="real", finite=True, min_size=1, to_jax=False)
    p = np.asarray(p, dtype=np.float64)
    _check_native(measure, p, rho, f"param ({measure.name} {measure.parameter})")
    return jnp.asarray(p, dtype), jnp.full(p.shape, jnp.nan, dtype)


def native_parameter(adjacency, measure: str, flat):
    """The native parameter(s) that flat value(s) ``x ∈ [0, 1]`` map to on this graph."""
    m = get_measure(measure)
    a = adjacency_matrix(adjacency)
    if m.parameter is None:
        raise ValueError(f"measure {m.name!r} has no parameter")
    x = check_array(flat, "flat", kind="real", finite=True, to_jax=False)
    x = np.asarray(x, dtype=np.float64)
    if np.any((x < 0) | (x > 1)):
        raise ValueError(f"flat must be in [0, 1]; got values in [{x.min()}, {x.max()}]")
    rho = float(jnp.linalg.eigvalsh(a)[-1]) if m.scaler == "rho" else None
    return np.asarray(scale_parameter(m.scaler, x, rho))


def kernel(adjacency, measure: str, param=None, *, flat=None):
    """The kernel ``H`` of a measure at one parameter.

    Args:
      adjacency: ``(n, n)`` array or networkx graph (read unweighted).
      measure: a name from :data:`MEASURES` (e.g. ``"logComm"``).
      param: native parameter (``t``, ``alpha``, ``beta`` or ``lambda``), or
      flat: pygkernels' flat parameter in [0, 1]. Parameter-free measures (CT, CCT, SP) take
        neither.

    Returns:
      ``(n, n)`` kernel. Log kernels may hold ``-inf`` where the plain kernel underflowed.
    """
    m = get_measure(measure)
    a = _prepare(adjacency, m)
    spectra = _spectra(a, m)
    native, _ = _resolve_params(m, spectra, param, flat, grid=False)
    return _warn_if_not_finite(_kernel_jit(m.name, spectra, native), m, "kernel")


@partial(jax.jit, static_argnums=(0,))
def _kernel_jit(name, spectra, native):
    return MEASURES[name].kernel_fn(spectra, native)


def factored_kernel(adjacency, measure: str, param=None, *, flat=None) -> FactoredKernel:
    """A plain diagonalisable kernel as ``diag(l) U diag(s) Uᵀ diag(r)`` without forming it.

    Available for pWalk, For, Comm, Heat, NHeat, PPR, ModifPPR, HeatPR, DF and CT
    (``MEASURES[name].factor_fn is not None``). :func:`kernel_kmeans` consumes it directly, so
    clustering on such a kernel never pays the O(n³) GEMM that forms ``K``: each Lloyd step
    costs two thin O(k n²) products. Log kernels need every entry and cannot be factored.
    """
    m = get_measure(measure)
    if m.factor_fn is None:
        factorable = ", ".join(n for n, e in MEASURES.items() if e.factor_fn is not None)
        raise ValueError(
            f"measure {m.name!r} has no factored form; factorable measures: {factorable}"
        )
    a = _prepare(adjacency, m)
    spectra = _spectra(a, m)
    native, _ = _resolve_params(m, spectra, param, flat, grid=False)
    return _factor_jit(m.name, spectra, native)


@partial(jax.jit, static_argnums=(0,))
def _factor_jit(name, spectra, native):
    return MEASURES[name].factor_fn(spectra, native)


def kernel_grid(adjacency, measure: str, params=None, *, flat=None, chunk_size: int | None = 8):
    """A measure on a whole parameter grid, from one eigendecomposition.

    Diagonalisable families cost one ``eigh`` plus one GEMM (and elementwise log) per grid point;
    Abs, RSP, FE and SP-CT one O(n³) solve per point. ``chunk_size`` kernels are built per
    ``lax.map`` step, bounding peak memory.

    Args:
      adjacency: ``(n, n)`` array or networkx graph.
      measure: measure name.
      params: ``(P,)`` native parameters, or
      flat: ``(P,)`` flat parameters in [0, 1].
      chunk_size: kernels per ``lax.map`` step (``None``: all at once).

    Returns:
      :class:`KernelGrid`.
    """
    m = get_measure(measure)
    if m.parameter is None:
        raise ValueError(f"measure {m.name!r} has no parameter: use kernel() instead")
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    a = _prepare(adjacency, m)
    spectra = _spectra(a, m)
    native, x = _resolve_params(m, spectra, params, flat, grid=True)
    kernels, finite = _grid_jit(m.name, spectra, native, chunk_size, None)
    return KernelGrid(kernels, native, x, finite)


def kernel_grids(adjacency, measures, *, flat, chunk_size: int | None = 8, reduce=None):
    """Several measures on one flat grid, sharing a single :func:`graph_spectra` call.

    One batched ``eigh`` covers every operator the measures need; then each measure costs one
    GEMM (+ log) per grid point for diagonalisable families. With ``reduce`` (a function of one
    ``(n, n)`` kernel returning a pytree, traced once per measure) each kernel is consumed
    inside the compiled loop and only ``reduce(K)`` is kept: memory stays at ``chunk_size``
    kernels however long the grid (use it for large n, e.g. to cluster or score each kernel).

    Returns:
      ``{name: KernelGrid}``; with ``reduce`` the ``kernels`` field holds the stacked
      ``reduce(K)`` outputs. ``finite`` always says whether each kernel was finite.
    """
    if isinstance(measures, str):
        measures = [measures]
    ms = [get_measure(m) for m in measures]
    if not ms or any(m.parameter is None for m in ms):
        raise ValueError("measures must be a non-empty list of measures with a parameter")
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    a = adjacency_matrix(adjacency, name="adjacency")
    for m in ms:
        _prepare(a, m)  # x64 and connectivity requirements of every measure
    ops = tuple(
        op
        for op in ("adjacency", "laplacian", "normalized_adjacency")
        if any(op in m.operators for m in ms)
    )
    spectra = _spectra_jit(a, ops, any(m.shortest_paths for m in ms))
    out = {}
    for m in ms:
        native, x = _resolve_params(m, spectra, None, flat, grid=True)
        values, finite = _grid_jit(m.name, spectra, native, chunk_size, reduce)
        out[m.name] = KernelGrid(values, native, x, finite)
    return out


@partial(jax.jit, static_argnums=(0, 3, 4))
def _grid_jit(name, spectra, native, chunk_size, reduce):
    fn = MEASURES[name].kernel_fn

    def one(p):
        k = fn(spectra, p)
        return (k if reduce is None else reduce(k)), jnp.all(jnp.isfinite(k))

    return jax.lax.map(one, native, batch_size=chunk_size)


def distance(adjacency, measure: str, param=None, *, flat=None):
    """The distance of a measure (spec §1.2).

    CT, SP, SP-CT, RSP and FE have their own definitions (commute time ``vol·(l⁺_ii + l⁺_jj -
    2l⁺_ij)``, shortest paths, the RSP/FE dissimilarities). All others use
    ``kernel_to_distance(H) ** power`` with power 0.5 for Comm/logComm (Estrada's
    communicability distance) and 1 otherwise (Chebotarev's walk/forest distances). Entries
    may be slightly negative for non-PSD log kernels (power 1 keeps them).
    """
    m = get_measure(measure)
    a = _prepare(adjacency, m)
    spectra = _spectra(a, m)
    native, _ = _resolve_params(m, spectra, param, flat, grid=False)
    return _warn_if_not_finite(_distance_jit(m.name, spectra, native), m, "distance")


def _warn_if_not_finite(result, m: Measure, what: str):
    """Report (never hide) non-finite entries with the likely cause."""
    bad = int(jnp.sum(~jnp.isfinite(result)))
    if bad:
        cause = (
            "the plain kernel has non-positive or underflowed entries, whose log is -inf "
            "(small parameters on graphs with long distances, or a kernel that is not "
            "entrywise positive, such as pinv(tA + L) for t > 1)"
            if m.log
            else "overflow or underflow at this parameter"
        )
        warnings.warn(
            f"{m.name} {what} has {bad} non-finite entries of {result.size}: {cause}",
            RuntimeWarning,
            stacklevel=3,
        )
    return result


@partial(jax.jit, static_argnums=(0,))
def _distance_jit(name, spectra, native):
    m = MEASURES[name]
    if m.distance_fn is not None:
        return m.distance_fn(spectra, native)
    return kernel_to_distance(m.kernel_fn(spectra, native), m.distance_power)
