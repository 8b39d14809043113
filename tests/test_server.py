"""The dashboard without a browser: components rendered with ``solara.render``.

Small grids keep these fast; trajectories are never hard-coded (the model is still being tuned),
only what the dashboard must do with whatever the model does.
"""

from __future__ import annotations

import base64
import importlib
import io
import time

import ipyvuetify as v
import numpy as np
import pytest
import solara
from PIL import Image
from solara.components.echarts import EchartsWidget

from abm import params as P
from abm.agents import TREATMENTS, Kind
from abm.dashboard import render as R
from abm.dashboard.app import Dashboard, Page
from abm.dashboard.charts import chart_options, clone_chart
from abm.dashboard.controls import control_kind, tooltip
from abm.dashboard.live import TissueWidget
from abm.dashboard.session import DEFAULT_SCENARIO, Session, scenario_values, session_from_query
from abm.model import TumorModel
from abm.scenarios import SCENARIOS

SMALL = {"width": 30, "height": 30, "initial_tumor_cells": 40}


def small_session(scenario: str = DEFAULT_SCENARIO, seed: int = 5) -> Session:
    return Session(scenario, {**scenario_values(scenario), **SMALL}, seed)


def render(session: Session):
    box, rc = solara.render(Dashboard(session=session), handle_error=False)
    rc.root = box  # for ``walk``: rc.find stops at the first match, not below it
    return rc


def walk(widget):
    """Every widget under ``widget`` (children and slots), depth first."""
    stack = [widget]
    while stack:
        w = stack.pop()
        yield w
        children = [c for c in getattr(w, "children", None) or [] if not isinstance(c, str)]
        for slot in getattr(w, "v_slots", None) or []:
            children += slot.get("children", [])
        stack += reversed(children)


def by_class(rc, cls: str, kind=v.Sheet) -> list:
    return [w for w in walk(rc.root) if isinstance(w, kind)
            and cls in (getattr(w, "class_", None) or "").split()]


def button(rc, label: str) -> v.Btn:
    found = [w for w in rc.find(v.Btn).widgets if label in [c for c in w.children
                                                            if isinstance(c, str)]]
    assert len(found) == 1, f"expected one {label!r} button, found {len(found)}"
    return found[0]


def _texts(widget) -> list[str]:
    out = []
    for child in getattr(widget, "children", None) or []:
        out += [child] if isinstance(child, str) else _texts(child)
    return out


def text_of(rc, cls: str) -> str:
    """All text inside the (first) element with this CSS class."""
    found = [w for kind in (v.Html, v.Alert) for w in rc.find(kind).widgets
             if cls in (w.class_ or "").split()]
    assert found, f"no element with class {cls!r}"
    return " ".join(_texts(found[0]))


def errors(rc) -> list[str]:
    """The texts of the error messages on the page (``Message`` renders a ``v.Alert``)."""
    return [" ".join(_texts(w)) for w in rc.find(v.Alert).widgets
            if "abm-message-error" in (w.class_ or "").split()]


def html_of(rc, cls: str) -> str:
    """The inner HTML of a ``solara.HTML`` element with this class."""
    found = [w for w in rc.find(solara.widgets.HTML).widgets
             if cls in w.attributes.get("class", "").split()]
    assert len(found) == 1, f"expected one element with class {cls!r}, found {len(found)}"
    return found[0].unsafe_innerHTML or ""


def slider_in(rc, cls: str) -> v.Slider:
    """The slider inside the (one) element with this CSS class."""
    found = by_class(rc, cls)
    assert len(found) == 1, f"expected one element with class {cls!r}, found {len(found)}"
    sliders = [w for w in walk(found[0]) if isinstance(w, v.Slider)]
    assert len(sliders) == 1
    return sliders[0]


def tissue(rc) -> TissueWidget:
    return rc.find(TissueWidget).widget


def text_field(rc, label_start: str) -> v.TextField:
    found = [w for w in rc.find(v.TextField).widgets if (w.label or "").startswith(label_start)]
    assert len(found) == 1, f"expected one text field {label_start!r}, found {len(found)}"
    return found[0]


def enter(field: v.TextField, text: str) -> None:
    """Type into a text field and leave it (InputText updates on focus-out)."""
    field.v_model = text
    field.fire_event("focusout", None)


def decode(src: str) -> np.ndarray:
    assert src.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


# --- the page ---------------------------------------------------------------------------
def test_page_builds_with_tissue_image_status_charts_and_lesson():
    session = small_session()
    rc = render(session)
    image = decode(tissue(rc).src)
    assert image.shape == (30, 30, 3)
    assert "hour 0" in text_of(rc, "abm-status")
    assert f"seed {session.model.seed}" in text_of(rc, "abm-status")
    charts = [w.attributes["class"] for w in rc.find(EchartsWidget).widgets]
    assert sorted(charts) == sorted(f"abm-chart abm-chart-{k}"
                                    for k in ("populations", "clones", "traits", "kills"))
    assert SCENARIOS[DEFAULT_SCENARIO]["summary"] in html_of(rc, "abm-info")
    assert "cancer" in html_of(rc, "abm-legend")
    for label in ("Step", "Play", "Reset", "new seed", *(c.label for c in TREATMENTS.values())):
        button(rc, label)


def test_page_without_a_session_makes_its_own_per_render():
    _, rc1 = solara.render(Dashboard(query="width=30&height=30&seed=1"), handle_error=False)
    _, rc2 = solara.render(Dashboard(query="width=30&height=30&seed=1"), handle_error=False)
    button(rc1, "Step").click()
    assert "hour 1" in text_of(rc1, "abm-status")
    assert "hour 0" in text_of(rc2, "abm-status")


def test_step_advances_the_model_and_redraws():
    session = small_session()
    rc = render(session)
    before = tissue(rc).src
    button(rc, "Step").click()
    assert session.model.steps == 1
    assert "hour 1" in text_of(rc, "abm-status")
    button(rc, "Step").click()
    assert session.model.steps == 2
    # the image is redrawn from the new state (it may look the same, but is drawn again)
    assert tissue(rc).src == R.data_url(R.tissue_rgb(session.model).rgb)
    assert before.startswith("data:image/png")


@pytest.mark.parametrize("therapy", list(TREATMENTS))
def test_treatment_button_calls_model_administer(therapy, monkeypatch):
    session = small_session()
    rc = render(session)
    calls = []
    original = session.model.administer
    monkeypatch.setattr(session.model, "administer",
                        lambda name, *a, **k: (calls.append(name), original(name, *a, **k)))
    button(rc, TREATMENTS[therapy].label).click()
    assert calls == [therapy]
    assert session.model.dose_log[-1]["therapy"] == therapy
    assert not session.model.dose_log[-1]["scheduled"]
    assert "given on day" in text_of(rc, "abm-message")


@pytest.mark.parametrize(("therapy", "scale"), [("anti_pd1", 2.0), ("cart", 0.25)])
def test_the_dose_slider_scales_the_dose_a_button_gives(therapy, scale):
    session = small_session()
    rc = render(session)
    slider_in(rc, "abm-dose").v_model = scale
    button(rc, TREATMENTS[therapy].label).click()
    treatment = session.model.treatments[therapy]
    given = session.model.dose_log[-1]["dose"]
    expected = treatment.dose * scale
    assert given == (round(expected) if therapy == "cart" else expected)
    assert f"({given:g} " in text_of(rc, "abm-message")


def test_reset_rebuilds_with_the_new_parameters_and_seed():
    session = small_session()
    rc = render(session)
    button(rc, "Step").click()
    first = session.model
    enter(text_field(rc, "width"), "24")
    enter(text_field(rc, "seed"), "77")
    button(rc, "Reset").click()
    assert session.model is not first
    assert session.model.width == 24 and session.model.height == 30
    assert session.model.steps == 0 and session.model.seed == 77
    assert decode(tissue(rc).src).shape == (30, 24, 3)  # rows = height, columns = width


def test_a_bad_value_shows_a_message_and_keeps_the_model():
    session = small_session()
    rc = render(session)
    model = session.model
    field = text_field(rc, "width")
    enter(field, "wide")
    assert field.error_messages or rc.find(v.TextField, label=field.label).widget.error
    button(rc, "Reset").click()
    assert session.model is model
    assert "width" in text_of(rc, "abm-message")
    assert errors(rc) and "width" in errors(rc)[0]  # the helper below finds real errors
    enter(text_field(rc, "seed"), "-3")
    enter(text_field(rc, "width"), "30")
    button(rc, "Reset").click()
    assert session.model is model
    assert "rng" in text_of(rc, "abm-message")


def test_new_seed_rebuilds_with_a_different_seed():
    session = small_session(seed=5)
    rc = render(session)
    seeds = set()
    for _ in range(3):
        button(rc, "new seed").click()
        seeds.add(session.model.seed)
    assert len(seeds) > 1
    assert f"seed {session.model.seed}" in text_of(rc, "abm-status")


def test_scenario_picker_loads_the_scenario_and_its_lesson():
    session = small_session()
    rc = render(session)
    other = next(name for name in SCENARIOS if name != DEFAULT_SCENARIO)
    select = [w for w in rc.find(v.Select).widgets if w.label == "scenario"][0]
    select.v_model = other
    for name, value in SCENARIOS[other]["params"].items():
        assert session.model.p[name] == value
    assert f"<strong>{other}</strong>" in html_of(rc, "abm-info")
    assert session.model.steps == 0


def test_play_runs_in_a_thread_and_survives_reset_and_step_while_playing():
    session = small_session()
    rc = render(session)
    button(rc, "Play").click()
    deadline = time.time() + 20
    while session.model.steps < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert session.model.steps >= 3, "the play loop did not advance the model"
    button(rc, "Step").click()  # disabled while playing in the browser; harmless here
    assert not errors(rc)
    button(rc, "Reset").click()  # stops playing and rebuilds
    time.sleep(0.3)
    assert session.model.steps == 0
    assert not errors(rc)
    button(rc, "Play").click()
    button(rc, "Pause").click()
    time.sleep(0.3)  # the play thread notices the pause and ends
    assert not errors(rc)


# --- pieces ------------------------------------------------------------------------------
def test_tissue_image_colours_each_cell_type():
    model = TumorModel(rng=1, **SMALL)
    for _ in range(30):
        model.step()
    frame = R.tissue_rgb(model)
    rgb = frame.rgb
    for x, y in zip(*np.nonzero(model.kind == Kind.TREG), strict=True):
        assert tuple(rgb[model.height - 1 - y, x]) == R.KIND_RGB[Kind.TREG]
    xs, ys = np.nonzero(model.kind == Kind.EMPTY)
    empty = [(x, y) for x, y in zip(xs, ys, strict=True) if (x, y) not in set(model.vessels)]
    x, y = empty[0]
    assert tuple(rgb[model.height - 1 - y, x]) == R.EMPTY_RGB
    cx, cy = np.argwhere(model.kind == Kind.CANCER)[0]
    assert rgb[model.height - 1 - cy, cx, 0] > rgb[model.height - 1 - cy, cx, 2]  # reddish


@pytest.mark.parametrize("key", ["chemokine", "ifng", "tgfb", "pdl1"])
def test_every_overlay_draws_with_a_colour_bar_scale(key):
    model = TumorModel(rng=2, **SMALL)
    for _ in range(5):
        model.step()
    frame = R.tissue_rgb(model, "clone", key)
    assert frame.rgb.shape == (30, 30, 3) and frame.overlay.key == key
    assert frame.vmax >= 0


def test_describe_site_says_what_is_there():
    model = TumorModel(rng=3, **SMALL)
    x, y = (int(c) for c in np.argwhere(model.kind == Kind.CANCER)[0])
    text = R.describe_site(model, x, y)
    assert text.startswith(f"({x}, {y}): cancer cell, clone") and "PD-L1" in text
    assert R.site_from_pixel(model, x, model.height - 1 - y) == (x, y)


def test_exports_are_a_csv_time_series_and_a_png():
    model = TumorModel(rng=4, **SMALL)
    for _ in range(3):
        model.step()
    csv = R.timeseries_csv(model).splitlines()
    assert csv[0].startswith("Step,Day,CancerCells") and len(csv) == 1 + 4
    png = R.export_png(model, "antigenicity", "ifng", "test")
    assert Image.open(io.BytesIO(png)).format == "PNG"


def test_clone_chart_stacks_counts_not_days():
    session = small_session()
    for _ in range(5):
        session.advance(1)
    option = clone_chart(session.snapshot())
    total = sum(series["data"][-1][0] for series in option["series"])
    assert total == session.model.n_cancer
    assert all(series["encode"] == {"x": 1, "y": 0} for series in option["series"])


def test_dose_marks_appear_on_the_charts():
    session = small_session()
    session.administer("anti_pd1")
    session.advance(1)
    options = chart_options(session.snapshot())
    marks = options["populations"]["series"][0]["markLine"]["data"]
    assert marks and marks[0]["name"] == TREATMENTS["anti_pd1"].label


def test_a_bad_link_gives_the_default_session_and_a_message():
    session, problem = session_from_query("width=5")
    assert problem and "width" in problem
    assert session.model.width == scenario_values(DEFAULT_SCENARIO)["width"]
    session, problem = session_from_query("scenario=nope")
    assert problem and "nope" in problem
    session, problem = session_from_query("width=40&height=40&seed=9")
    assert problem is None and session.model.width == 40 and session.model.seed == 9


def test_every_parameter_has_a_control_with_unit_and_tooltip():
    for p in P.PARAMS.values():
        assert control_kind(p) in ("checkbox", "slider_float", "slider_int", "text")
        tip = tooltip(p)
        assert p.unit in tip and p.source in tip and p.description in tip


# --- the command ----------------------------------------------------------------------
def test_serve_prints_the_url_and_warns_for_an_open_host(monkeypatch):
    from typer.testing import CliRunner

    import abm.cli

    launched = []

    def fake_execv(path, argv):
        launched.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr("os.execv", fake_execv)
    runner = CliRunner()
    result = runner.invoke(abm.cli.app, ["serve"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:" in result.output and "warning" not in result.output
    argv = launched[-1]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and int(argv[argv.index("--port") + 1])
    # the module Solara runs is the entry point, and it has the page
    assert importlib.import_module(argv[argv.index("run") + 1]).Page is Page
    result = runner.invoke(abm.cli.app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 0
    assert "warning" in result.output and "anyone on this network" in result.output
    result = runner.invoke(abm.cli.app, ["serve", "--port", "70000"])
    assert result.exit_code == 2 and "error: --port" in result.output
