"""The dashboard on the fast engine (``abm.fast.FastTumorModel``), without a browser.

The fast engine has no agent objects: the dashboard's drawing (exhausted and progenitor T
cells, M2 macrophages) and its site descriptions read the layers and immune-cell arrays
instead; an "engine" choice rebuilds the session's model on the other engine.
"""

from __future__ import annotations

import ipyvuetify as v
import numpy as np
import pytest
import solara
from conftest import TINY

from abm import FastTumorModel, TumorModel
from abm.agents import Kind
from abm.dashboard import render as R
from abm.dashboard.app import Dashboard
from abm.dashboard.session import Session, scenario_values, session_from_query


def _widgets(root, kind):
    stack = [root]
    while stack:
        w = stack.pop()
        if isinstance(w, kind):
            yield w
        children = [c for c in getattr(w, "children", None) or [] if not isinstance(c, str)]
        for slot in getattr(w, "v_slots", None) or []:
            children += slot.get("children", [])
        stack += children


def test_session_runs_and_draws_the_fast_engine():
    session = Session("progenitor_burst", {**scenario_values("progenitor_burst"), **TINY}, 3,
                      engine="fast")
    assert isinstance(session.model, FastTumorModel)
    session.advance(24)
    src, frame = session.draw("antigenicity", "oxygen")
    assert src.startswith("data:image/png") and frame.rgb.shape == (30, 30, 3)
    assert "(15, 15)" in session.describe(15, 15)
    session.set_compare(True)
    assert isinstance(session.twin, FastTumorModel) and session.twin.steps == session.model.steps
    session.set_engine("mesa")
    session.build(session.values, 3)
    assert isinstance(session.model, TumorModel) and isinstance(session.twin, TumorModel)
    with pytest.raises(ValueError, match="engine 'turbo'"):
        session.set_engine("turbo")


def test_link_selects_the_engine():
    session, problem = session_from_query("scenario=escape&seed=2&width=30&height=30"
                                          "&engine=fast")
    assert problem is None and isinstance(session.model, FastTumorModel)
    session, problem = session_from_query("engine=turbo")
    assert problem is not None and "turbo" in problem


def test_cell_states_are_drawn_from_the_arrays():
    """Exhausted and progenitor CTLs and M2 macrophages get their colours, as the Mesa
    engine's agents do; the site description reads the arrays."""
    model = FastTumorModel(rng=1, width=20, height=20, initial_tumor_cells=5,
                           vessel_density=0.0, tcell_influx=0.0)
    cells = {(2, 2): (Kind.TCELL, 1, 0), (4, 2): (Kind.TCELL, 0, 99), (6, 2): (Kind.TCELL, 0, 0),
             (8, 2): (Kind.MACROPHAGE, 1, 0), (10, 2): (Kind.MACROPHAGE, 0, 0),
             (12, 2): (Kind.NK, 0, 0)}
    for site, (kind, state, exhaustion) in cells.items():
        model._add(site, int(kind), 0, 0, state)
        model.exhaustion[int(model.n_immune[0]) - 1] = exhaustion
    rgb = R.tissue_rgb(model).rgb  # (row, column) with y up

    def colour(x, y):
        return tuple(rgb[model.height - 1 - y, x])

    assert colour(2, 2) == tuple(R.PROGENITOR_T_RGB)
    assert colour(4, 2) == tuple(R.EXHAUSTED_T_RGB)
    assert colour(6, 2) == tuple(R.KIND_RGB[Kind.TCELL])
    assert colour(8, 2) == tuple(R.M2_RGB)
    assert colour(10, 2) == tuple(R.KIND_RGB[Kind.MACROPHAGE])
    assert "progenitor T cell (antigen 0)" in R.describe_site(model, 2, 2)
    assert "(exhausted)" in R.describe_site(model, 4, 2)
    assert "macrophage, M2" in R.describe_site(model, 8, 2)
    assert "NK cell; kills 0/" in R.describe_site(model, 12, 2)
    (cx, *_), (cy, *_) = np.nonzero(model.kind == Kind.CANCER)
    assert "cancer cell, clone 0; antigens {0, 1, 2}" in R.describe_site(model, cx, cy)
    assert "empty stroma" in R.describe_site(model, 0, 19)


def test_engine_choice_in_the_dashboard_rebuilds_the_model():
    session = Session("escape", {**scenario_values("escape"), **TINY}, 4)
    box, rc = solara.render(Dashboard(session=session), handle_error=False)
    select = [w for w in _widgets(box, v.Select) if w.label == "engine"]
    assert len(select) == 1 and select[0].v_model == "mesa"
    select[0].v_model = "fast"
    assert isinstance(session.model, FastTumorModel) and session.model.seed == 4
    assert session.model.p["width"] == TINY["width"]


def test_a_cancer_cell_is_described_as_the_mesa_engine_describes_it():
    """The same founder cell (no vessels, no randomness in it) gets the same description on
    both engines, fields included."""
    params = {"width": 15, "height": 15, "initial_tumor_cells": 9, "vessel_density": 0.0,
              "founder_pdl1": 0.3, "founder_mhc": 0.7}
    mesa, fast = TumorModel(rng=1, **params), FastTumorModel(rng=1, **params)
    for site in ((7, 7), (7, 8), (0, 0)):
        assert R.describe_site(fast, *site) == R.describe_site(mesa, *site)


def test_a_whole_tissue_on_the_fast_engine_uses_every_core_for_its_fields(monkeypatch):
    """Past ``abm.run.THREADED_SITES`` a fast-engine session (and its twin) uses every core
    for its fields (oxygen on a thread of its own, the transforms split over the cores); a
    small grid, and the Mesa engine, keep one thread."""
    import abm.run

    monkeypatch.setattr(abm.run, "THREADED_SITES", 30 * 30 + 1)  # TINY is 30 x 30
    monkeypatch.setattr(abm.run.os, "cpu_count", lambda: 3)
    small = Session("escape", {**scenario_values("escape"), **TINY}, 4, engine="fast")
    assert small.model.oxygen.workers == 1 and not small.model._field_thread
    big = {**scenario_values("escape"), "width": 40, "height": 30, "initial_tumor_cells": 50}
    session = Session("escape", big, 4, engine="fast")
    assert session.model._field_thread and session.model.oxygen.workers == 1
    assert session.model.ifng.workers == session.model.linear_fields.workers == 2
    session.set_compare(True)
    assert session.twin._field_thread and session.twin.ifng.workers == 2
    session.build(big, 5)
    assert session.model._field_thread and session.twin.linear_fields.workers == 2
    assert Session("escape", big, 4).model.p["width"] == 40  # Mesa: nothing to thread
