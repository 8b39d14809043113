"""The fast engine's field solvers and compiled census against the Mesa engine's code.

``abm/fast/fields.py`` solves the same equations as ``abm/fields.py`` with less work per hour
(batched transforms, kept spectra, a float32 preconditioner, precomputed Woodbury columns);
``abm/fast/census.py`` computes the census and per-hour maps of ``TumorModel`` in compiled
passes. Here both are run side by side with the Mesa engine's code on the same inputs.

Tolerances: the linear fields (their spectra, sources and transforms kept in float32) agree to
2e-6 of the field's maximum (measured: 3e-7 after 40 hours);
the conjugate-gradient fields agree to 1e-6 of the field's maximum (measured: about 1e-8; the
float32 preconditioner changes the iterates by round-off, and both solves stop by the same
test). The census and the maps agree exactly (counts, sites, draws) or to 1e-6 (means of
float32 layers, summed in another order).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from abm import FastTumorModel, TumorModel
from abm.agents.base import Kind
from abm.fast import census as C
from abm.fast import fields as F
from abm.fast import kernels as K
from abm.fields import Field, ReactionField
from abm.model import _neighbourhood

SHAPE = (48, 37)
LINEAR_TOL = 2e-6  # float32 round-off of the linear fields' kept spectra (module docstring)


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
        assert _rel(mesa[0].data, fast[0].data) < LINEAR_TOL
        if hour > 5:
            assert _rel(mesa[1].data, fast[1].data) < LINEAR_TOL
        else:
            assert not fast[1].data.any() and not mesa[1].data.any()
        assert not fast[2].data.any()
    assert fast[1].data.sum() > 0


def test_linear_fields_compiled_hour_matches_field_step(monkeypatch):
    """The usual hour (every field has a source) goes through one compiled call, with the
    sources given as arrays or written into the solver's own buffer."""
    calls = []
    compiled = F._linear_step
    monkeypatch.setattr(F, "_linear_step", lambda *a: calls.append(1) or compiled(*a))
    rng = np.random.default_rng(6)
    mesa = [Field("chem", SHAPE, 16.7, 0.72), Field("tgfb", SHAPE, 28.0, 1.16)]
    fast = copy.deepcopy(mesa)
    linear = F.LinearFields(fast)
    for hour in range(30):
        sources = [(rng.random(SHAPE) < 0.2) * 0.7, (rng.random(SHAPE) < 0.1) * 1.3]
        for field, source in zip(mesa, sources, strict=True):
            field.step(source)
        if hour % 2:  # as update_fields does: straight into the buffer
            for buffer, source in zip(linear.sources, sources, strict=True):
                buffer[...] = source
            sources = list(linear.sources)
        linear.step(sources)
        for a, b in zip(mesa, fast, strict=True):
            assert _rel(a.data, b.data) < LINEAR_TOL
    assert len(calls) == 30
    assert all(np.shares_memory(f.data, linear.data) for f in fast)  # read where written
    assert min(f.data.max() for f in fast) > 0


def _pair(**kwargs) -> tuple[ReactionField, ReactionField]:
    return ReactionField(**kwargs), F.accelerate(ReactionField(**kwargs))


def _oxygen_like(pinned, **extra):
    return dict(name="o", shape=SHAPE, diffusion_um2_s=1e5 / 60, k_ref_per_h=80.0,
                boundary_level=38.0, pinned=pinned, pinned_level=38.0, tol=0.038,
                max_iter=500, **extra)


@pytest.mark.parametrize("variant", ["woodbury", "woodbury_many", "block_diagonal"])
def test_reaction_field_oxygen_like_matches(variant, monkeypatch):
    rng = np.random.default_rng(1)
    n = {"woodbury": 30, "woodbury_many": 200, "block_diagonal": 60}[variant]
    vessels = sorted({(int(x), int(y)) for x, y in zip(rng.integers(0, SHAPE[0], n),
                                                         rng.integers(0, SHAPE[1], n),
                                                         strict=True)})
    if variant == "block_diagonal":
        monkeypatch.setattr(ReactionField, "MAX_WOODBURY", 10)
    mesa, fast = _pair(**_oxygen_like(vessels))
    assert fast._mode == (F.BLOCK_DIAGONAL if variant == "block_diagonal" else F.WOODBURY)
    assert (fast._cap is None) == (variant == "block_diagonal")
    mesa.data[...] = fast.data[...] = 38.0
    # the float32 preconditioner's round-off, carried through the iterations: about 1e-8 in
    # 2 iterations (Woodbury); the block-diagonal solves take 6-8, and end 1.0e-6 (the 2-D
    # transforms) or 1.6e-6 (the tridiagonal solves) apart. Both far inside the solver's own
    # tolerance, 0.038 of 38 (1e-3).
    tolerance = 5e-6 if variant == "block_diagonal" else 1e-6
    for hour in range(30):
        cells = rng.random(SHAPE) < 0.3
        uptake = 0.06 + 600.0 * cells
        if hour == 15:
            mesa.unpin(vessels[:5])
            fast.unpin(vessels[:5])
        mesa.step(uptake)
        fast.step(uptake)
        assert _rel(mesa.data, fast.data) < tolerance, hour
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


def _apply_by_neighbour(c, diag, d, sign):
    """The operator site by site, a branch per neighbour (up, down, left, right): the order of
    additions the compiled row-at-a-time operator keeps."""
    w, h = c.shape
    out = np.empty_like(c)
    for x in range(w):
        for y in range(h):
            v = c[x, y]
            s = (diag[x, y] + 4.0 * d) * v
            for inside, neighbour in ((x > 0, (x - 1, y)), (x < w - 1, (x + 1, y)),
                                      (y > 0, (x, y - 1)), (y < h - 1, (x, y + 1))):
                s = s - d * c[neighbour] if inside else s + sign * d * v
            out[x, y] = s
    return out


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1), (2, 2), (7, 9), (6, 8)])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_compiled_operator_is_the_site_by_site_operator_to_the_bit(shape, sign):
    """The row-at-a-time operator (edge rules out of the inner loop) adds each site's terms in
    the site-by-site order, so it is that loop's result exactly; its sum p . Ap (four partial
    sums) agrees to round-off, and the operator agrees with ReactionField._apply."""
    rng = np.random.default_rng(sum(shape))
    c = rng.random(shape) * 40.0
    diag = 1.0 + 600.0 * (rng.random(shape) < 0.3)
    field = ReactionField("o", shape, 1e5 / 60, 80.0,
                          boundary_level=38.0 if sign > 0 else None)  # sign +1: level held
    d = field.d
    out = np.empty_like(c)
    F._apply(c, diag, d, sign, out)
    expected = _apply_by_neighbour(c, diag, d, sign)
    assert np.array_equal(out, expected)
    total = F._apply_dot(c, diag, d, sign, np.empty_like(c))
    assert total == pytest.approx(float((c * expected).sum()), rel=1e-12)
    assert _rel(field._apply(c, diag), out) < 1e-12
    # the conjugate gradients' fused pass (the iterate's step, the new direction p = z + beta
    # p, then the operator and its sum, a row ahead) is the separate steps to the bit
    z = (rng.random(shape) * 40.0).astype(np.float32)
    x0 = rng.random(shape)
    for first in (True, False):
        x, p = x0.copy(), c.copy()
        ap = np.empty_like(c)
        fused = F._advance_apply_dot(x, p, z, 0.3, 0.7, first, diag, d, sign, ap)
        want_x = x0 if first else x0 + 0.3 * c
        want_p = z.astype(np.float64) + (0.0 if first else 0.7 * c)
        want_ap = np.empty_like(c)
        assert np.array_equal(x, want_x) and np.array_equal(p, want_p)
        assert fused == F._apply_dot(want_p, diag, d, sign, want_ap)
        assert np.array_equal(ap, want_ap)


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


def _cancer_hour_with_tumor_model_draws(model) -> None:
    """The cancer cells' hour through ``TumorModel``'s own draws (``_draw_cancer_deaths``,
    ``_draw_debris_clearance``, ``_draw_dividers``) applied with numpy, then the dividers'
    kernel: what the fast engine's compiled passes must reproduce exactly."""
    t = model.tissue
    xs, ys, apoptotic = TumorModel._draw_cancer_deaths(model)
    for layer, none in zip(t._traits, t._none, strict=True):
        layer[xs, ys] = none
    t.kind[xs, ys] = Kind.EMPTY
    t.kind[xs[~apoptotic], ys[~apoptotic]] = Kind.NECROTIC
    model.apoptoses += int(apoptotic.sum())
    model.necroses += int((~apoptotic).sum())
    xs, ys = TumorModel._draw_debris_clearance(model)
    t.kind[xs, ys] = Kind.EMPTY
    xs, ys = TumorModel._draw_dividers(model)
    if not xs.size:
        return
    order = model.rng.permutation(xs.size)
    next_clone = np.array([model._next_clone], dtype=np.int64)
    K.seed(model._kernel_seed())
    p = model.p
    K.divide_cancer(xs[order], ys[order], t.kind, t.antigens, t.antigenicity, t.pdl1_base,
                    t.mhc, t.pdl1_induced, t.car_negative, t.clone, p["mutation_rate"],
                    np.cumsum(model.mutation_weights), p["mhc_loss_factor"],
                    p["pdl1_mutation_gain"], p["antigen_loss_rate"], p["antigen_visibility"],
                    next_clone)
    model._next_clone = int(next_clone[0])


def test_cancer_hour_matches_tumor_model_draws():
    """``FastTumorModel._step_cancer_cells`` (one list of sites, compiled deaths, debris
    clearance and dividers) against ``TumorModel``'s draws on the same state: the same cells
    die, by the same death, the same debris is cleared and the same cells divide."""
    a, b = _fast_model(debris_clearance_days=0.2), _fast_model(debris_clearance_days=0.2)
    for model in (a, b):  # much necrosis in one corner of the tumour, some debris elsewhere
        model._necrosis_prob = np.zeros(SHAPE)
        model._necrosis_prob[:20] = 0.3
        xs, ys = np.nonzero(model.kind == Kind.EMPTY)
        model.tissue.kind[xs[::7], ys[::7]] = Kind.NECROTIC
    layers = ("kind", "antigens", "antigenicity", "pdl1_base", "mhc", "pdl1_induced",
              "car_negative", "clone")
    for hour in range(3):
        b.rng.bit_generator.state = a.rng.bit_generator.state
        necrotic = int((a.kind == Kind.NECROTIC).sum())
        a._step_cancer_cells()
        _cancer_hour_with_tumor_model_draws(b)
        assert a.rng.bit_generator.state == b.rng.bit_generator.state, hour
        for name in layers:
            assert np.array_equal(getattr(a.tissue, name), getattr(b.tissue, name)), name
        assert (a.apoptoses, a.necroses, a._next_clone) == (b.apoptoses, b.necroses,
                                                            b._next_clone)
        assert np.array_equal(a.mdsc_near, b.mdsc_near) and np.array_equal(a.m2_near, b.m2_near)
    assert a.necroses > 0 and a.apoptoses > 0 and necrotic > 0
    assert int((a.kind == Kind.NECROTIC).sum()) < necrotic + a.necroses  # some were cleared


@pytest.mark.parametrize("every", [1, 3])
def test_hour_of_fields_matches_tumor_model_update_fields(every):
    """``abm.fast.fields.update_fields`` against ``TumorModel._update_fields`` (with the Mesa
    engine's own solvers) on the same state, for several hours of the same cells; with
    ``field_step_h`` 3, the fields are solved every third hour and held in between, while
    PD-L1 relaxes every hour."""
    a, b = _fast_model(field_step_h=every), _fast_model(field_step_h=every)
    b.oxygen.__class__ = ReactionField  # b: back to the Mesa engine's solvers
    b.ifng.__class__ = ReactionField
    rng = np.random.default_rng(5)
    for hour in range(7):
        source = (rng.random(a.ifng_source.shape) < 0.01) * 5.0
        a.ifng_source += source  # the CTLs' secretion accumulates until a solve
        b.ifng_source += source
        b.rng.bit_generator.state = a.rng.bit_generator.state
        before = {name: a.fields[name].data.copy() for name in a.fields}
        pdl1_before = a.tissue.pdl1_induced.copy()
        solves = a._field_hours % every == 0
        F.update_fields(a)
        TumorModel._update_fields(b)
        for name in ("oxygen", "ifng", "chemokine", "tgfb"):
            assert _rel(b.fields[name].data, a.fields[name].data) < 1e-6, (hour, name)
            if not solves:  # held between solves
                assert np.array_equal(a.fields[name].data, before[name]), (hour, name)
        assert np.array_equal(a.ifng.data, before["ifng"]) != solves, hour
        for name in ("oxygen_growth", "_necrosis_prob", "ifng_hill"):
            assert np.allclose(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-9), name
        assert np.allclose(a.tissue.pdl1_induced, b.tissue.pdl1_induced, rtol=1e-5, atol=1e-9)
        assert not np.array_equal(a.tissue.pdl1_induced, pdl1_before), hour
        assert np.array_equal(a.ifng_source, b.ifng_source)
        assert a.ifng_source.any() != solves, hour  # kept until the solve, then spent
        assert a.vessels == b.vessels
    assert a.ifng.data.max() > 0 and a.tgfb.data.max() > 0


@pytest.mark.parametrize("hill, half_max, top", [
    (1.26, 0.11, 10.0),  # the defaults
    (10.0, 0.11, 1e5),  # powers beyond float32's range (3.4e38)
    (10.0, 1e-4, 3e-4),  # half_max ** hill = 1e-40: subnormal in float32
])
def test_the_float32_ifng_response_is_the_float64_one_over_the_allowed_range(hill, half_max,
                                                                             top):
    """The fast engine takes the IFN-gamma powers in float32, whose range is narrower than the
    Mesa engine's float64. At allowed parameters (Hill coefficient 10) much IFN-gamma
    overflowed them (inf / inf: a nan response, and nan PD-L1), and a tiny half-max made them
    subnormal (errors of 7e-6). Against ``TumorModel.ifng_response``'s formula in float64."""
    c = np.linspace(0.0, top, 20001).reshape(1, -1)
    want = c**hill / (c**hill + half_max**hill)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow warning either
        got = F._ifng_response(c, hill, half_max)
    assert np.isfinite(got).all()
    assert np.abs(got - want).max() < 1e-6
    assert want.min() < 0.01 and want.max() > 0.99  # the whole response, not one end of it


def test_a_steep_ifng_response_to_much_ifng_keeps_pdl1_finite_in_the_model():
    """The model's hour with a Hill coefficient of 10 and much IFN-gamma (the random run that
    found the fault, with ifng_secretion near its top, 1e5, reached 1.2e4 ng/mL; here 1e5 is
    planted): the response and PD-L1 match ``TumorModel._update_fields`` on the same state
    (they were nan)."""
    a = _fast_model(pdl1_ifng_hill=10.0)
    b = copy.deepcopy(a)
    b.oxygen.__class__ = ReactionField  # b: back to the Mesa engine's solvers
    b.ifng.__class__ = ReactionField
    field = 1e5 * np.random.default_rng(6).uniform(0.5, 1.5, a.ifng.data.shape)
    for model in (a, b):
        model.ifng.data[...] = field
    F.update_fields(a)
    TumorModel._update_fields(b)
    assert b.ifng_hill.min() > 0.99  # the reference: saturated
    assert np.isfinite(a.tissue.pdl1_induced).all()
    assert np.allclose(a.ifng_hill, b.ifng_hill, rtol=1e-5, atol=1e-9)
    assert np.allclose(a.tissue.pdl1_induced, b.tissue.pdl1_induced, rtol=1e-5, atol=1e-9)
    a.step()  # and the next hour
    assert np.isfinite(a.ifng_hill).all() and np.isfinite(a.tissue.pdl1_induced).all()


@pytest.mark.parametrize("engine", [TumorModel, FastTumorModel])
def test_solves_every_k_hours_advance_the_fields_k_hours(engine):
    """``field_step_h``: each solve advances a field by that many hours. A field with a
    constant source approaches the same steady state either way, and with IFN-gamma's
    secretion given as the mean over the step, as much IFN-gamma is made: after 12 hours
    with a source held constant, the fields solved every 4 hours match those solved every
    hour (the chemokine and the suppressive factor exactly, as their update is exact for a
    constant source; IFN-gamma and oxygen to their time discretisation). Both engines."""
    params = dict(rng=4, width=40, height=40, initial_tumor_cells=300,
                  chemokine_ifng_secretion=0.0)  # the chemokine's source held constant too
    hourly, every4 = engine(**params), engine(**params, field_step_h=4)
    assert np.array_equal(hourly.kind, every4.kind)  # the same tissue: not stepped yet
    assert hourly.ifng.inv_dt == 1.0 and every4.ifng.inv_dt == 0.25
    source = np.zeros(hourly.ifng_source.shape)
    source[18:22, 18:22] = 2.0  # ng/mL per hour at 16 sites
    for model in (hourly, every4):
        for field in model.fields.values():
            field.data[...] = 0.0
        if engine is FastTumorModel:  # its linear fields keep their spectra
            model.linear_fields.spectra[...] = 0.0
            model.linear_fields.zero = [True, True]
        model.oxygen.data[...] = model.p["oxygen_supply"]
        for _ in range(12):
            model.ifng_source += source
            model._update_fields()
    for name in ("chemokine", "tgfb"):  # exact in float64; the fast engine's are float32
        tol = 1e-9 if engine is TumorModel else LINEAR_TOL
        assert _rel(hourly.fields[name].data, every4.fields[name].data) < tol, name
    # backward Euler, 1 h against 4 h steps: 3% apart (without the mean rate, 4x as much)
    assert _rel(hourly.ifng.data, every4.ifng.data) < 0.1
    assert _rel(hourly.oxygen.data, every4.oxygen.data) < 1e-3  # quasi-steady: 3e-4 apart


@pytest.mark.parametrize("boundary_level", [None, 38.0])  # zero flux (cosine), held (sine)
@pytest.mark.parametrize("shape", [SHAPE, (7, 64), (120, 9)])
def test_the_tridiagonal_preconditioner_is_the_spectral_solve(boundary_level, shape):
    """The fast engine applies ``(D * -laplacian + 1/dt + k_ref)^-1`` by a transform along y
    and tridiagonal solves along x; the Mesa engine by 2-D transforms in float64. The same
    inverse, to float32 round-off, in both bases and on non-square grids."""
    kwargs = dict(name="p", shape=shape, diffusion_um2_s=1e5 / 60, k_ref_per_h=80.0,
                  boundary_level=boundary_level, tol=0.038)
    mesa, fast = _pair(**kwargs)
    r = np.random.default_rng(3).normal(size=shape)
    want = mesa._spectral_solve(r)
    got = F._spectral(r.astype(np.float32), fast._tri, -fast.d, fast._dirichlet, 1)
    assert got.dtype == np.float32
    assert _rel(want, got) < 1e-5


def test_the_tridiagonal_factors_keep_only_the_rows_before_they_converge():
    """Far from the first edge the elimination's factors stop changing (in float32): the table
    keeps the rows up to the first converged one, then the last row. Applying it gives the
    same numbers, bit for bit, as the whole table (rebuilt here by repeating the converged
    row)."""
    for boundary_level in (None, 38.0):
        shape = (600, 40)
        mesa, fast = _pair(name="o", shape=shape, diffusion_um2_s=1e5 / 60, k_ref_per_h=80.0,
                           boundary_level=boundary_level, tol=0.038)
        tri = fast._tri
        last = tri.shape[1] - 2
        assert last < 300  # oxygen's rates: about 160 rows
        rows = [min(i, last) for i in range(shape[0] - 1)] + [last + 1]
        whole = np.ascontiguousarray(tri[:, rows])
        r = np.random.default_rng(4).normal(size=shape).astype(np.float32)
        compact = F._spectral(r.copy(), tri, -fast.d, fast._dirichlet, 1)
        assert np.array_equal(compact, F._spectral(r.copy(), whole, -fast.d, fast._dirichlet, 1))
        assert _rel(mesa._spectral_solve(r.astype(np.float64)), compact) < 1e-5
