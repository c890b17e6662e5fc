"""Every measure against an independent per-parameter implementation (expm/inv/pinv, no eigh).

``reference_kernels.py`` was written from the specification's defining formulas alone, without
looking at theorylab's code, and computes each kernel the way pygkernels does (one dense
``expm``/``inv``/``pinv`` per parameter). Tolerances: plain kernels 1e-8 relative on entries
whose magnitude exceeds 1e-8 of the largest (dense factorisations carry ~1e-16·‖K‖ absolute error,
spec §5); log kernels 1e-8 absolute where the plain kernel is above that floor (an absolute error
in ln K is a relative error in K).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theorylab import graphs as g

from . import reference_kernels as ref
from .strategies import connected_graphs

pytestmark = pytest.mark.x64


def compare(name, ours, want, plain_want=None):
    ours, want = np.asarray(ours), np.asarray(want)
    if plain_want is None:  # plain kernel
        floor = 1e-8 * np.max(np.abs(want))
        big = np.abs(want) > floor
        np.testing.assert_allclose(ours[big], want[big], rtol=1e-8, err_msg=name)
        np.testing.assert_allclose(ours[~big], want[~big], atol=10 * floor, err_msg=name)
    else:  # log kernel: compare where the plain kernel is well above round-off
        ok = plain_want > 1e-8 * np.max(np.abs(plain_want))
        np.testing.assert_allclose(ours[ok], want[ok], atol=1e-8, rtol=1e-8, err_msg=name)


def native_from_flat(a, name, x):
    scaler = ref.MEASURE_SCALER[name]
    return ref.FLAT_SCALERS[scaler](x, ref.spectral_radius(a))


PARAMETRISED = [n for n, m in g.MEASURES.items() if m.parameter is not None]
PLAIN_OF_LOG = {
    m.name: m.family if m.family != "Walk" else "pWalk" for m in g.MEASURES.values() if m.log
}


@pytest.mark.filterwarnings("ignore:logAbs kernel has")  # t > 1: -inf entries, reported
@pytest.mark.parametrize("name", PARAMETRISED)
@settings(max_examples=8)
@given(a=connected_graphs(min_nodes=4, max_nodes=9), x=st.floats(0.1, 0.9))
def test_kernel_matches_reference(name, a, x):
    param = native_from_flat(a, name, x)
    np.testing.assert_allclose(g.native_parameter(a, name, x), param, rtol=1e-12)
    ours = g.kernel(a, name, flat=x)
    want = ref.REFERENCE_KERNELS[name](a, param)
    plain = ref.REFERENCE_KERNELS[PLAIN_OF_LOG[name]](a, param) if name in PLAIN_OF_LOG else None
    compare(name, ours, want, plain)


@pytest.mark.parametrize("name", ["CT", "CCT", "SP"])
@settings(max_examples=8)
@given(a=connected_graphs(min_nodes=4, max_nodes=9))
def test_parameter_free_kernels_match_reference(name, a):
    compare(name, g.kernel(a, name), ref.REFERENCE_KERNELS[name](a, None))


@settings(max_examples=10)
@given(a=connected_graphs(min_nodes=4, max_nodes=9), beta=st.floats(0.05, 10.0))
def test_rsp_fe_ct_sp_distances_match_reference(a, beta):
    np.testing.assert_allclose(
        np.asarray(g.distance(a, "RSP", beta)),
        ref.reference_rsp_distance(a, beta),
        rtol=1e-8,
        atol=1e-10,
    )
    np.testing.assert_allclose(
        np.asarray(g.distance(a, "FE", beta)),
        ref.reference_fe_distance(a, beta),
        rtol=1e-8,
        atol=1e-10,
    )
    np.testing.assert_allclose(
        np.asarray(g.distance(a, "CT")), ref.reference_commute_time(a), rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(np.asarray(g.distance(a, "SP")), ref.reference_shortest_paths(a))
    np.testing.assert_allclose(
        np.asarray(g.shortest_path_distances(a)), ref.reference_shortest_paths(a)
    )


@settings(max_examples=10)
@given(a=connected_graphs(min_nodes=4, max_nodes=9), x=st.floats(0.1, 0.9))
def test_kernel_to_distance_matches_reference(a, x):
    k = np.asarray(g.kernel(a, "logHeat", flat=x))
    np.testing.assert_allclose(
        np.asarray(g.kernel_to_distance(k)), ref.kernel_to_distance(k), atol=1e-12
    )
    d = ref.reference_shortest_paths(a)
    np.testing.assert_allclose(
        np.asarray(g.distance_to_kernel(d)), ref.distance_to_kernel(d), atol=1e-12
    )
