"""The fast engine's field solvers and compiled census against the Mesa engine's code.

``abm/fast/fields.py`` solves the same equations as ``abm/fields.py`` with less work per hour
(batched transforms, kept spectra, a float32 preconditioner, precomputed Woodbury columns);
``abm/fast/census.py`` computes the census and per-hour maps of ``TumorModel`` in compiled
passes. Here both are run side by side with the Mesa engine's code on the same inputs.

Tolerances: the linear fields (float64 throughout) agree to 1e-10 of the field's maximum;
the conjugate-gradient fields agree to 1e-6 of the field's maximum (measured: about 1e-8; the
float32 preconditioner changes the iterates by round-off, and both solves stop by the same
test). The census and the maps agree exactly (counts, sites, draws) or to 1e-6 (means of
float32 layers, summed in another order).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from abm import FastTumorModel, TumorModel
from abm.agents.base import Kind
from abm.fast import census as C
from abm.fast import fields as F
from abm.fields import Field, ReactionField
from abm.model import _neighbourhood

SHAPE = (48, 37)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-300))


def test_linear_fields_match_field_step():
    rng = np.random.default_rng(0)
    mesa = [Field("a", SHAPE, 10.0, 2.0), Field("b", SHAPE, 5.0, 12.0),
            Field("c", SHAPE, 50.0, float("inf"))]
    fast = copy.deepcopy(mesa)
    linear = F.LinearFields(fast)
    for hour in range(40):
        sources = [
            (rng.random(SHAPE) < 0.1) * 0.5 if hour % 7 else None,  # some hours without
            (rng.random(SHAPE) < 0.05) * 1.0 if hour > 5 else np.zeros(SHAPE),  # late start
            None,  # never a source: stays exactly zero, and is skipped
        ]
        for field, source in zip(mesa, sources, strict=True):
            field.step(source)
        linear.step(sources)
        assert _rel(mesa[0].data, fast[0].data) < 1e-10
        if hour > 5:
            assert _rel(mesa[1].data, fast[1].data) < 1e-10
        else:
            assert not fast[1].data.any() and not mesa[1].data.any()
        assert not fast[2].data.any()
    assert fast[1].data.sum() > 0


def _pair(**kwargs) -> tuple[ReactionField, ReactionField]:
    return ReactionField(**kwargs), F.accelerate(ReactionField(**kwargs))


def _oxygen_like(pinned, **extra):
    return dict(name="o", shape=SHAPE, diffusion_um2_s=1e5 / 60, k_ref_per_h=80.0,
                boundary_level=38.0, pinned=pinned, pinned_level=38.0, tol=0.038,
                max_iter=500, **extra)


@pytest.mark.parametrize("variant", ["woodbury_columns", "woodbury_spectral", "block_diagonal"])
def test_reaction_field_oxygen_like_matches(variant, monkeypatch):
    rng = np.random.default_rng(1)
    n = 30 if variant != "block_diagonal" else 60
    vessels = sorted({(int(x), int(y)) for x, y in zip(rng.integers(0, SHAPE[0], n),
                                                         rng.integers(0, SHAPE[1], n),
                                                         strict=True)})
    if variant == "block_diagonal":
        monkeypatch.setattr(ReactionField, "MAX_WOODBURY", 10)
    if variant == "woodbury_spectral":
        monkeypatch.setattr(F, "_GREEN_BUDGET", 0)
    mesa, fast = _pair(**_oxygen_like(vessels))
    assert (fast._columns is not None) == (variant == "woodbury_columns")
    assert (fast._cap is None) == (variant == "block_diagonal")
    mesa.data[...] = fast.data[...] = 38.0
    for hour in range(30):
        cells = rng.random(SHAPE) < 0.3
        uptake = 0.06 + 600.0 * cells
        if hour == 15:
            mesa.unpin(vessels[:5])
            fast.unpin(vessels[:5])
        mesa.step(uptake)
        fast.step(uptake)
        assert _rel(mesa.data, fast.data) < 1e-6, hour
        assert abs(mesa.iterations - fast.iterations) <= 1


def test_reaction_field_ifng_like_matches_and_zero_is_skipped():
    rng = np.random.default_rng(2)
    kwargs = dict(name="i", shape=SHAPE, diffusion_um2_s=100.0, k_ref_per_h=1.0, tol=1e-5)
    mesa, fast = _pair(**kwargs)
    for hour in range(30):
        cancer = rng.random(SHAPE) < 0.3
        source = (rng.random(SHAPE) < 0.02) * 5.0 if hour >= 3 else np.zeros(SHAPE)
        mesa.step(0.3 + 3.6 * cancer, source)
        fast.step(0.3 + 3.6 * cancer, source)
        if hour < 3:  # nothing made yet: exactly zero, no iterations
            assert not fast.data.any() and not mesa.data.any() and fast.iterations == 0
        else:
            assert _rel(mesa.data, fast.data) < 1e-6, hour


def _fast_model(**overrides) -> FastTumorModel:
    params = dict(rng=4, width=40, height=40, initial_tumor_cells=300, tcell_influx=3.0,
                  treg_influx=1.0, mdsc_influx=1.0, vaccine_start_day=0.0)
    params.update(overrides)
    model = FastTumorModel(**params)
    for _ in range(30):
        model.step()
    return model


def test_census_matches_tumor_model_census():
    from abm.model import REPORTERS

    model = _fast_model()
    assert model.n_tregs and model.n_mdscs and model.n_tcells and model.n_necrotic >= 0
    C.take_census(model)
    fast = {attr: getattr(model, attr) for attr in REPORTERS.values()}
    fast_counts = model.antigen_counts.copy()
    TumorModel._census(model)
    for attr in REPORTERS.values():
        expected = getattr(model, attr)
        assert fast[attr] == pytest.approx(expected, rel=1e-6, abs=1e-12), attr
    assert np.array_equal(fast_counts, model.antigen_counts)


def test_census_counts_clone_ids_beyond_the_models_counter():
    """The census's clone count does not rely on ``_next_clone`` bounding the clone ids."""
    model = _fast_model()
    expected = model.clone_count
    assert expected > 1
    model._next_clone = 1  # every id but 0 beyond it
    C.take_census(model)
    assert model.clone_count == expected


def test_neighbourhood_dividers_and_vessel_collapse_match():
    a, b = _fast_model(), _fast_model()  # the same seed: the same state
    for radius in range(4):  # the niche maps from the cell arrays, against the grid's
        for kind in (Kind.TREG, Kind.MDSC, Kind.TCELL, Kind.NK):
            expected = _neighbourhood(a.kind == kind, radius)
            assert np.array_equal(C.near_cells(a, kind, radius), expected), (kind, radius)
        m2 = C.near_cells(a, Kind.MACROPHAGE, radius, state=1)
        assert np.array_equal(m2, _neighbourhood(a.m2_map(), radius))
    assert (a.kind == Kind.TREG).any() and (a.kind == Kind.MDSC).any()
    b.rng.bit_generator.state = a.rng.bit_generator.state
    xs, ys = C.draw_dividers(a)
    mx, my = TumorModel._draw_dividers(b)
    assert xs.size and np.array_equal(xs, mx) and np.array_equal(ys, my)
    assert np.array_equal(a.mdsc_near, b.mdsc_near) and np.array_equal(a.m2_near, b.m2_near)
    for model in (a, b):  # bury some vessels in tumour; collapse is quick
        model.p["vessel_collapse_days"] = 0.05
        for x, y in model.vessels[:6]:
            model.tissue.kind[max(x - 1, 0):x + 2, max(y - 1, 0):y + 2] = Kind.CANCER
            model.tissue.kind[x, y] = Kind.EMPTY
    b.rng.bit_generator.state = a.rng.bit_generator.state
    before = len(a.vessels)
    C.collapse_vessels(a)
    TumorModel._collapse_vessels(b)
    assert a.vessels == b.vessels and a.collapsed_vessels == b.collapsed_vessels
    assert len(a.vessels) < before
    assert np.array_equal(a.oxygen._pin_mask, b.oxygen._pin_mask)


def test_hour_of_fields_matches_tumor_model_update_fields():
    """``abm.fast.fields.update_fields`` against ``TumorModel._update_fields`` (with the Mesa
    engine's own solvers) on the same state, for several hours of the same cells."""
    a, b = _fast_model(), _fast_model()
    b.oxygen.__class__ = ReactionField  # b: back to the Mesa engine's solvers
    b.ifng.__class__ = ReactionField
    rng = np.random.default_rng(5)
    for hour in range(6):
        source = (rng.random(a.ifng_source.shape) < 0.01) * 5.0
        a.ifng_source[...] = source
        b.ifng_source[...] = source
        b.rng.bit_generator.state = a.rng.bit_generator.state
        F.update_fields(a)
        TumorModel._update_fields(b)
        for name in ("oxygen", "ifng", "chemokine", "tgfb"):
            assert _rel(b.fields[name].data, a.fields[name].data) < 1e-6, (hour, name)
        for name in ("oxygen_growth", "_necrosis_prob", "ifng_hill"):
            assert np.allclose(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-9), name
        assert np.allclose(a.tissue.pdl1_induced, b.tissue.pdl1_induced, rtol=1e-5, atol=1e-9)
        assert a.vessels == b.vessels
    assert a.ifng.data.max() > 0 and a.tgfb.data.max() > 0
