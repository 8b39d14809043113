"""The dashboard without a browser: components rendered with ``solara.render``.

Small grids keep these fast; trajectories are never hard-coded (the model is still being tuned),
only what the dashboard must do with whatever the model does.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import math
import re
import time

import ipyvuetify as v
import numpy as np
import pandas as pd
import pytest
import solara
from conftest import TINY
from PIL import Image
from solara.components.echarts import EchartsWidget

from abm import params as P
from abm.agents import TREATMENTS, Kind
from abm.dashboard import labels as L
from abm.dashboard import render as R
from abm.dashboard import serving as S
from abm.dashboard.app import Dashboard, Page, lesson_markdown
from abm.dashboard.charts import LARGE_FONT, chart_options, clone_chart, large_text
from abm.dashboard.controls import control_kind, tooltip
from abm.dashboard.live import TissueWidget, colourbar_html
from abm.dashboard.session import (
    DEFAULT_SCENARIO,
    Session,
    page_options,
    scenario_values,
    session_from_query,
)
from abm.model import TumorModel
from abm.scenarios import SCENARIOS


def small_session(scenario: str = DEFAULT_SCENARIO, seed: int = 5) -> Session:
    return Session(scenario, {**scenario_values(scenario), **TINY}, seed)


def render(session: Session):
    box, rc = solara.render(Dashboard(session=session), handle_error=False)
    rc.root = box  # for ``walk``: rc.find stops at the first match, not below it
    return rc


def render_query(query: str):
    box, rc = solara.render(Dashboard(query=query), handle_error=False)
    rc.root = box
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


def widgets(rc, kind) -> list:
    return [w for w in walk(rc.root) if isinstance(w, kind)]


def button(rc, label: str) -> v.Btn:
    found = [w for w in widgets(rc, v.Btn) if label in [c for c in w.children
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
    found = [w for kind in (v.Html, v.Alert) for w in widgets(rc, kind)
             if cls in (w.class_ or "").split()]
    assert found, f"no element with class {cls!r}"
    return " ".join(_texts(found[0]))


def errors(rc) -> list[str]:
    """The texts of the error messages on the page (``Message`` renders a ``v.Alert``)."""
    return [" ".join(_texts(w)) for w in widgets(rc, v.Alert)
            if "abm-message-error" in (w.class_ or "").split()]


def html_of(rc, cls: str) -> str:
    """The inner HTML of a ``solara.HTML`` element with this class."""
    found = [w for w in widgets(rc, solara.widgets.HTML)
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
    found = widgets(rc, TissueWidget)
    assert len(found) == 1
    return found[0]


def text_field(rc, label_start: str) -> v.TextField:
    found = [w for w in widgets(rc, v.TextField) if (w.label or "").startswith(label_start)]
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
    charts = [w.attributes["class"] for w in widgets(rc, EchartsWidget)]
    assert sorted(charts) == sorted(f"abm-chart abm-chart-{k}"
                                    for k in ("populations", "clones", "traits", "kills"))
    assert SCENARIOS[DEFAULT_SCENARIO]["summary"] in html_of(rc, "abm-info")
    assert "cancer" in html_of(rc, "abm-legend")
    for label in ("Step", "Play", "Reset", "new seed", *(c.label for c in TREATMENTS.values())):
        button(rc, label)


def test_status_line_and_legend_name_only_the_cells_the_scenario_has():
    """The status line leaves out CAR-T cells, macrophages and NK cells while the scenario has
    none of them (so it fits a projector in large text), and names each once it is in play:
    CAR-T from a dose given (before the cells are counted), macrophages and NK cells from a
    scenario that recruits them. The populations chart's legend shows them once they have been
    in the tissue."""
    session = small_session("escape")
    rc = render(session)
    status = text_of(rc, "abm-status")
    assert "T cells 0 · Tregs" in status
    for absent in ("CAR-T", "macrophages", "NK"):
        assert absent not in status, status
    def legend() -> list[str]:
        return [s["name"] for s in chart_options(session.snapshot())["populations"]["series"]]

    assert legend() == ["cancer", "T cells", "Tregs", "MDSCs"]  # the chart's legend too
    button(rc, TREATMENTS["cart"].label).click()
    button(rc, "Step").click()
    assert re.search(r"CAR-T \d+ · Tregs", text_of(rc, "abm-status"))
    assert legend() == ["cancer", "T cells", "CAR-T", "Tregs", "MDSCs"]
    assert "macrophages 0 (M2 0%)" in status_of("macrophage_niche")
    assert "NK 0 · T-cell kills" in status_of("nk_surveillance")
    assert "CAR-T 0" in status_of("cart")  # scheduled, not yet given


def status_of(scenario: str) -> str:
    return text_of(render(small_session(scenario)), "abm-status")


def test_page_without_a_session_makes_its_own_per_render():
    rc1 = render_query("width=30&height=30&seed=1")
    rc2 = render_query("width=30&height=30&seed=1")
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
    assert field.error_messages or field.error
    button(rc, "Reset").click()
    assert session.model is model
    assert "width" in text_of(rc, "abm-message")
    assert errors(rc) and "width" in errors(rc)[0]  # the helper below finds real errors
    enter(text_field(rc, "seed"), "-3")
    enter(text_field(rc, "width"), "30")
    button(rc, "Reset").click()
    assert session.model is model
    assert "seed '-3' is not allowed" in text_of(rc, "abm-message")


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
    select = [w for w in widgets(rc, v.Select) if w.label == "scenario"][0]
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
    model = TumorModel(rng=1, **TINY)
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
    model = TumorModel(rng=2, **TINY)
    for _ in range(5):
        model.step()
    frame = R.tissue_rgb(model, "clone", key)
    assert frame.rgb.shape == (30, 30, 3) and frame.overlay.key == key
    assert frame.vmax >= 0


def test_a_field_decayed_to_nothing_is_drawn_empty_not_stretched_to_full_colour():
    """The chemokine of a cleared tumour decays to 1e-25 a.u. with a tiny gradient left: the
    scale's top was that maximum, so the noise filled the view from the first to the last
    colour. A top of at least ``NEGLIGIBLE_TOP`` draws it as the scale's first colour."""
    model = TumorModel(rng=2, **TINY)
    field = model.fields["chemokine"].data
    field[...] = 1e-25 * np.linspace(0.0, 1.0, field.size).reshape(field.shape)
    frame = R.tissue_rgb(model, "clone", "chemokine", show_cells=False)
    zero = R.lut(R.overlays(model)["chemokine"].cmap)[0]
    assert (frame.rgb.reshape(-1, 3) == zero).all(axis=1).mean() > 0.95
    assert frame.vmax == R.NEGLIGIBLE_TOP
    field[...] = 0.02 * np.linspace(0.0, 1.0, field.size).reshape(field.shape)  # a real field
    assert R.tissue_rgb(model, "clone", "chemokine", show_cells=False).vmax == pytest.approx(0.02)


def test_describe_site_says_what_is_there():
    model = TumorModel(rng=3, **TINY)
    x, y = (int(c) for c in np.argwhere(model.kind == Kind.CANCER)[0])
    text = R.describe_site(model, x, y)
    assert text.startswith(f"({x}, {y}): cancer cell, clone") and "PD-L1" in text
    assert R.site_from_pixel(model, x, model.height - 1 - y) == (x, y)


def test_exports_are_a_csv_time_series_and_a_png():
    model = TumorModel(rng=4, **TINY)
    for _ in range(3):
        model.step()
    text = R.timeseries_csv(model)
    csv = text.splitlines()
    assert csv[0].startswith("Step,Day,CancerCells") and len(csv) == 1 + 4
    # the same numbers as `abm run --out run.csv` writes: no float32 noise (the initial mean
    # PD-L1 is the float32 0.05, once written 0.05000000074505806)
    table = pd.read_csv(io.StringIO(text))
    assert table["MeanPDL1"].iloc[0] == 0.05
    assert "0000000" not in text
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


def test_the_clones_the_clone_chart_names_have_colours_no_other_clone_has():
    """The clone chart names the largest clones; in the tissue and the chart each has a colour
    no other clone is drawn in. (Colour c % 16 drew escape's clones 0 and 32, 1 and 17 alike
    among about 600 clones: which clones win could not be read.)"""
    named = [3, 0, 17, 1, 32, 63]
    colours = R.clone_colours(np.arange(2000), named)
    for clone in named:
        same = np.flatnonzero((colours == colours[clone]).all(axis=1))
        assert same.tolist() == [clone]
    assert len({tuple(c) for c in colours[1000:]}) == len(R.CLONE_PALETTE) - len(named)
    session = small_session("escape", seed=1)
    for _ in range(60):
        session.advance(4)
    snapshot = session.snapshot()
    top = snapshot["named_clones"]
    assert len(top) == 6 and top == session.named_clones()
    option = clone_chart(snapshot)
    chart = {s["name"]: s["itemStyle"]["color"] for s in option["series"]}
    _, frame = session.draw("clone", "none")
    model = session.model
    rgb = R.tissue_rgb(model, "clone", named=top).rgb
    flip = model.clone.T[::-1]
    cancer = (model.kind == Kind.CANCER).T[::-1]
    assert sum(int((cancer & (flip == c)).sum()) > 0 for c in top) >= 3  # clones on show
    assert len(np.unique(flip[cancer])) > len(R.CLONE_PALETTE)  # more clones than colours
    for clone in top:
        css = chart[f"clone {clone}"]
        drawn = {R.css(c) for c in rgb[cancer & (flip == clone)]}
        assert drawn <= {css}  # its cells (if any left) in the chart's colour
        others = rgb[cancer & (flip != clone)]
        assert css not in {R.css(c) for c in others}  # and no other clone's


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
        kind = control_kind(p)
        assert kind in ("checkbox", "slider_float", "slider_int", "text")
        if kind.startswith("slider"):  # a slider a hand can set: not a million positions
            assert (p.high - p.low) / L.slider_step(p) <= 1000, p.name
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


# --- the classroom: controls, views, lessons, sessions ----------------------------------
def basic_slider(rc, name: str) -> v.Slider:
    found = [w for w in by_class(rc, f"abm-param-{name}") if _in_basic(rc, w)]
    assert len(found) == 1, f"expected one basic control for {name}, found {len(found)}"
    return next(w for w in walk(found[0]) if isinstance(w, v.Slider))


def _in_basic(rc, widget) -> bool:
    (basic,) = by_class(rc, "abm-basic", v.Card)
    return any(w is widget for w in walk(basic))


def shown_value(rc, name: str) -> str:
    (control,) = [w for w in by_class(rc, f"abm-param-{name}") if _in_basic(rc, w)]
    values = [w for w in walk(control) if isinstance(w, v.Html)
              and "abm-param-value" in (w.class_ or "").split()]
    return " ".join(_texts(values[0]))


def test_a_slider_changes_only_its_parameter_keeps_its_place_and_shows_its_value():
    session = small_session()
    rc = render(session)
    sliders = {name: basic_slider(rc, name) for name in L.BASIC_BY_NAME}
    before = {name: s.v_model for name, s in sliders.items()}
    assert shown_value(rc, "mutation_rate") == f"{session.model.p['mutation_rate']:g}"
    for i in range(1, 6):  # five presses of the arrow key, one step each
        sliders["mutation_rate"].v_model = round(before["mutation_rate"] + i * 0.001, 6)
    after = {name: basic_slider(rc, name) for name in L.BASIC_BY_NAME}
    # the same widgets in the same places: the browser keeps focus on the slider it was on
    assert all(after[name] is sliders[name] for name in sliders)
    assert shown_value(rc, "mutation_rate") == f"{before['mutation_rate'] + 0.005:g}"
    assert {n: s.v_model for n, s in after.items() if n != "mutation_rate"} == \
        {n: v_ for n, v_ in before.items() if n != "mutation_rate"}
    assert by_class(rc, "abm-pending")  # "press Reset to apply them"
    button(rc, "Reset").click()
    assert session.model.p["mutation_rate"] == pytest.approx(before["mutation_rate"] + 0.005)
    assert session.model.p["founder_pdl1"] == scenario_values(DEFAULT_SCENARIO)["founder_pdl1"]


def test_basic_controls_are_plain_words_with_ranges_that_hold_every_preset():
    for b in L.BASIC:
        p = P.PARAMS[b.name]  # keyed by the model's parameter names
        assert "_" not in b.label and b.label[0].isupper()
        assert control_kind(p, basic=True).startswith("slider")
        assert (b.high - b.low) / b.step <= 400, f"{b.name}: too many positions to set by hand"
        for spec in SCENARIOS.values():
            value = spec["params"].get(b.name, p.default)
            low, high = b.span(value)
            assert low <= value <= high
    session = small_session()
    rc = render(session)
    labels = " ".join(c for w in walk(by_class(rc, "abm-basic", v.Card)[0])
                      if isinstance(w, v.Html) for c in w.children if isinstance(c, str))
    assert "Mutation rate (per division)" in labels and "T-cell arrival (cells/h)" in labels


def test_every_slider_shows_its_value():
    rc = render(small_session())
    for css in ("abm-speed", "abm-hours", "abm-dose"):
        (control,) = by_class(rc, css)
        values = [w for w in walk(control) if isinstance(w, v.Html)
                  and "abm-slider-value" in (w.class_ or "").split()]
        slider = next(w for w in walk(control) if isinstance(w, v.Slider))
        assert values and f"{slider.v_model:g}" in " ".join(_texts(values[0]))


def test_a_teacher_link_shows_the_basic_controls_only():
    rc = render_query("teacher=1&width=30&height=30&seed=1")
    assert by_class(rc, "abm-basic", v.Card)
    assert not [w for w in widgets(rc, v.Select) if w.label == "group"]  # no advanced panel
    assert not [w for w in widgets(rc, v.TextField) if (w.label or "").startswith("width")]
    button(rc, "Step").click()
    assert "hour 1" in text_of(rc, "abm-status")


@pytest.mark.parametrize("key", ["chemokine", "ifng", "tgfb"])
def test_a_field_overlay_never_changes_the_colour_of_a_cell(key):
    model = TumorModel(rng=2, **TINY, tcell_influx=20.0)
    for _ in range(60):
        model.step()
    plain = R.tissue_rgb(model).rgb
    frame = R.tissue_rgb(model, "antigenicity", key)
    rows = model.kind.T[::-1]  # image orientation
    cells = rows != Kind.EMPTY
    assert (frame.rgb[cells] == plain[cells]).all()  # the legend's colours, untinted
    stroma = ~cells & (frame.rgb != R.VESSEL_RGB).any(axis=2)
    assert (frame.rgb[stroma] != R.EMPTY_RGB).any(axis=1).mean() > 0.5  # the field is shown
    hidden = R.tissue_rgb(model, "antigenicity", key, show_cells=False).rgb
    assert not (hidden == R.KIND_RGB[Kind.TCELL]).all(axis=2).any()
    labels = [label for label, _ in R.legend("antigenicity", key)]
    assert any("overlay" in label for label in labels)


def test_the_pdl1_overlay_colours_cancer_cells_on_a_usable_scale():
    model = TumorModel(rng=2, **{**TINY, "initial_tumor_cells": 200}, tcell_influx=5.0)
    for _ in range(72):
        model.step()
    frame = R.tissue_rgb(model, "antigenicity", "pdl1")
    pdl1 = model.pdl1_map()[model.kind == Kind.CANCER]
    assert frame.vmax == pytest.approx(np.ceil(pdl1.max() * 10 - 1e-9) / 10)
    colours = frame.rgb[(model.kind.T[::-1] == Kind.CANCER)]
    assert len(np.unique(colours, axis=0)) >= min(5, len(np.unique(pdl1.round(2))))
    text = colourbar_html(frame)
    assert text.startswith("PD-L1 on cancer cells: 0 <img") and "(0-1 scale)" in text
    assert "pd1_occupancy" not in R.overlays(model)  # well-mixed: it would be one flat colour


def test_colour_by_car_target_shows_the_antigen_negative_cells():
    model = TumorModel(rng=3, **TINY, initial_antigen_negative_fraction=0.3)
    rgb = R.tissue_rgb(model, "CAR target").rgb
    negative = (model.kind == Kind.CANCER) & model.car_negative
    assert negative.any()
    drawn = (rgb == R.CAR_NEGATIVE_RGB).all(axis=2)
    assert (drawn == negative.T[::-1]).all()
    rc = render(small_session("cart_antigen_loss"))
    assert "CAR target lost" in html_of(rc, "abm-legend")


def test_after_clearance_the_means_have_no_point_instead_of_zero():
    snapshot = {"vars": {"Day": [0, 1, 2], "CancerCells": [10, 3, 0], "TCells": [1, 2, 2],
                         "CARTCells": [0, 0, 0], "Tregs": [0, 0, 0], "MDSCs": [0, 0, 0],
                         "Macrophages": [0, 0, 0], "NKCells": [0, 0, 0],
                         # no cancer cell: the means are NaN (0 in older runs: the same)
                         "MeanAntigenicity": [0.8, 0.7, math.nan], "MeanPDL1": [0.1, 0.2, 0.0],
                         "MeanMHC": [1.0, 0.9, math.nan], "NKKills": [0, 0, 0],
                         "PD1Occupancy": [0, 0, 0], "AntigenNegativeFraction": [0, 0, 0],
                         "Kills": [0, 7, 10], "ExhaustedFraction": [0, 0.5, 1],
                         "ProgenitorFraction": [0, 0.25, 0]},
                "clones": [(0, {0: 10}), (1, {0: 3}), (2, {})], "doses": []}
    options = chart_options(snapshot)
    rows = options["traits"]["dataset"]["source"]
    # mean antigenicity, mean PD-L1, mean MHC-I
    assert rows[-1][1] is None and rows[-1][2] is None and rows[-1][3] is None
    json.dumps(options, allow_nan=False)  # the page's JSON: no NaN in it
    assert rows[1][1] == 0.7 and rows[1][3] == 0.9


def test_the_hover_line_follows_the_model_and_clears_when_the_mouse_leaves():
    session = small_session()
    rc = render(session)
    x, y = (int(c) for c in np.argwhere(session.model.kind == Kind.CANCER)[0])
    tissue(rc).vue_hover({"column": x, "row": session.model.height - 1 - y})
    assert text_of(rc, "abm-hover") == session.describe(x, y)
    for _ in range(5):
        button(rc, "Step").click()
        assert text_of(rc, "abm-hover") == session.describe(x, y)  # not the old hour's
    tissue(rc).vue_hover(None)
    assert text_of(rc, "abm-hover").startswith("Hover over the tissue")


def test_a_dose_message_says_when_cells_enter_later_and_passes_on_the_model_warnings():
    session = Session("cart", {**scenario_values("cart"), "width": 20, "height": 20,
                               "initial_tumor_cells": 40, "founder_antigens": 0}, 3)
    text = session.administer("cart", scale=2.0)
    placed = session.model.dose_log[-1]["placed"]
    assert placed < 2 * session.model.p["cart_dose"]
    assert (f"{placed} of the {2 * session.model.p['cart_dose']} cells found room next to a "
            "vessel at once; the others enter over the next hours") in text
    text = session.administer("vaccine")
    assert "Note: vaccine: no antigen to target" in text


def test_messages_go_when_they_no_longer_apply():
    session = small_session()
    rc = render(session)
    button(rc, "anti-PD-1").click()
    assert "given on day" in text_of(rc, "abm-message")
    for _ in range(25):  # a dose message goes after a model day
        button(rc, "Step").click()
    assert not [w for w in widgets(rc, v.Alert) if "abm-message" in (w.class_ or "")]
    enter(text_field(rc, "width"), "wide")
    button(rc, "Reset").click()
    assert errors(rc)
    enter(text_field(rc, "width"), "30")  # fixed: the complaint goes
    assert not errors(rc)


def test_a_cleared_tumour_shows_one_message():
    session = Session("elimination", {**scenario_values("elimination"), "width": 24,
                                      "height": 24, "initial_tumor_cells": 5,
                                      "tcell_influx": 30.0}, 1)
    rc = render(session)
    button(rc, "Play").click()
    deadline = time.time() + 60
    while session.model.running and time.time() < deadline:
        time.sleep(0.1)
    assert not session.model.running, "the small tumour was not cleared"
    # the play thread's last refresh shows it (a loaded machine takes a while)
    eventually(lambda: len(by_class(rc, "abm-cleared", v.Alert)) == 1, 10)
    button(rc, "Step").click()
    button(rc, "Play").click()
    assert len(by_class(rc, "abm-cleared", v.Alert)) == 1
    assert not [w for w in widgets(rc, v.Alert) if "abm-message" in (w.class_ or "")]


def test_run_to_day_plays_until_that_day_and_stops():
    session = small_session()
    rc = render(session)
    day_field = [w for w in widgets(rc, v.TextField) if w.label == "day"][0]
    assert day_field.v_model == str(SCENARIOS[DEFAULT_SCENARIO]["watch_days"])
    enter(day_field, "1.5")
    button(rc, "Run to day 1.5").click()
    tab = rc_tab(rc)
    eventually(lambda: not tab.playing.value and session.model.steps >= 36, 30)
    assert session.model.steps == 36  # exactly day 1.5, then paused
    eventually(lambda: "day 1.5 reached" in text_of(rc, "abm-message"))
    button(rc, "Run to day 1.5").click()  # already there
    # the page re-renders once the play thread's last render is done
    eventually(lambda: "already at day 1.5" in " ".join(errors(rc)))


def test_run_to_day_follows_the_lesson_refuses_no_number_and_keeps_a_faster_frame():
    session = small_session()
    rc = render(session)
    tab = rc_tab(rc)

    def day_field():
        return [w for w in widgets(rc, v.TextField) if w.label == "day"][0]

    def run_to_label():
        return [c for w in widgets(rc, v.Btn) for c in w.children
                if isinstance(c, str) and "to day" in c]

    enter(day_field(), "3")
    tab.guard(tab.pick_scenario)("elimination")  # as the scenario menu does
    watch = SCENARIOS["elimination"]["watch_days"]
    assert day_field().v_model == str(watch)  # the new lesson's day, not the 3 typed before
    eventually(lambda: run_to_label() == [f"Run to day {watch:g}"])
    for bad in ("inf", "nan", "1e400", "abc"):
        enter(day_field(), bad)
        eventually(lambda: run_to_label() == ["Run to day"])  # what was typed is not repeated
        button(rc, "Run to day").click()
        # the page re-renders once the play thread's last render is done
        eventually(lambda: "expected a number of days" in " ".join(errors(rc)))
        assert not tab.playing.value
    tab.steps_per_frame.set(4)  # chosen to go faster: kept
    enter(day_field(), "0.5")
    eventually(lambda: run_to_label() == ["Run to day 0.5"])
    button(rc, "Run to day 0.5").click()
    eventually(lambda: not tab.playing.value and session.model.steps == 12, 30)
    assert tab.steps_per_frame.value == 4


def test_an_old_parameter_name_in_a_link_works_and_the_page_says_so():
    rc = render_query("scenario=checkpoint&seed=3&checkpoint_start_day=5&width=30&height=30")
    tab = rc_tab(rc)
    assert tab.session.model.p["anti_pd1_start_day"] == 5
    eventually(lambda: "link: parameter 'checkpoint_start_day' is deprecated" in
               text_of(rc, "abm-message") and "'anti_pd1_start_day'" in text_of(rc, "abm-message"))
    assert not errors(rc)


def test_units_on_the_page_say_micrometres():
    assert L.display_unit("sites (15 um)") == "sites (15 µm)"
    assert L.display_unit("um^2/s") == "µm^2/s" and L.display_unit("ng/mL") == "ng/mL"
    rc = render(small_session())
    labels = [w.label for w in widgets(rc, v.TextField) if (w.label or "").startswith("width")]
    assert labels == ["width [sites (15 µm)]"]
    enter(text_field(rc, "width"), "5")  # below the range: the message says µm as well
    button(rc, "Reset").click()
    eventually(lambda: any("width" in e for e in errors(rc)))
    said = " ".join(errors(rc))
    assert "15 µm" in said and "15 um" not in said


def test_a_bad_seed_is_called_the_seed_as_the_page_calls_it():
    _, problem = session_from_query("scenario=checkpoint&seed=abc")
    assert problem and "seed 'abc' is not allowed: expected a whole number >= 0" in problem
    rc = render(small_session())
    enter(text_field(rc, "seed"), "-4")
    button(rc, "Reset").click()
    eventually(lambda: "seed '-4' is not allowed" in " ".join(errors(rc)))


def test_the_cells_come_back_with_an_overlay_that_has_no_cells_box():
    rc = render(small_session())
    tab = rc_tab(rc)
    tab.set_view(overlay="oxygen")
    tab.set_view(show_cells=False)  # only the field
    assert not tab.show_cells.value
    tab.set_view(overlay="none")  # the "cells" box is gone with the overlay
    assert tab.show_cells.value and not R.tissue_rgb(
        tab.session.model, tab.colour_by.value, "none", tab.show_cells.value).rgb.sum() == 0


def test_a_dose_after_the_tumour_is_gone_is_refused_and_one_dose_is_singular():
    session = small_session()
    rc = render(session)
    tab = rc_tab(rc)
    tab.guard(tab.treat)("anti_pd1")
    eventually(lambda: "(1 standard dose)" in text_of(rc, "abm-message"))
    session.model.running = False  # as when the last cancer cell dies
    doses = len(session.model.dose_log)
    tab.guard(tab.treat)("cart")
    eventually(lambda: "CAR-T not given: the tumour is gone" in " ".join(errors(rc)))
    assert len(session.model.dose_log) == doses


def eventually(condition, seconds: float = 5.0) -> None:
    """Wait for ``condition()`` (state set by the play thread reaches the page)."""
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_every_lesson_has_days_to_watch_and_steps():
    for name, spec in SCENARIOS.items():
        assert 1 <= spec["watch_days"] <= 60 and len(spec["steps"]) >= 2
        text = lesson_markdown(name)
        assert f"Run to day {spec['watch_days']}" in text and spec["steps"][0] in text


def test_play_stops_when_no_page_is_connected():
    session = small_session()
    rc = render(session)
    tab_alive = {"alive": True}
    tab = rc_tab(rc)
    tab.alive = lambda: tab_alive["alive"]
    button(rc, "Play").click()
    deadline = time.time() + 20
    while session.model.steps < 2 and time.time() < deadline:
        time.sleep(0.05)
    tab_alive["alive"] = False  # the websocket went away
    time.sleep(0.5)
    steps = session.model.steps
    time.sleep(0.5)
    assert session.model.steps == steps and not tab.playing.value


def rc_tab(rc):
    """The ``Tab`` behind a rendered page (the tissue widget's hover handler holds it)."""
    from abm.dashboard.tab import Tab

    found = {id(t): t for t in _tabs}
    assert found, "no Tab was made"
    tab = list(found.values())[-1]
    assert isinstance(tab, Tab)
    return tab


_tabs: list = []


@pytest.fixture(autouse=True)
def _record_tabs(monkeypatch):
    from abm.dashboard import tab as tab_module

    original = tab_module.Tab.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        _tabs.append(self)

    monkeypatch.setattr(tab_module.Tab, "__init__", init)
    yield
    _tabs.clear()


def test_client_alive_follows_the_page_status(monkeypatch):
    from solara.server import kernel_context

    from abm.dashboard.tab import client_alive

    class Context:
        closed_event = __import__("threading").Event()
        page_status = {"p1": kernel_context.PageStatus.CONNECTED}

    monkeypatch.setattr(kernel_context, "get_current_context", lambda: Context)
    alive = client_alive()
    assert alive()
    Context.page_status["p1"] = kernel_context.PageStatus.DISCONNECTED
    assert not alive()
    Context.page_status["p2"] = kernel_context.PageStatus.CONNECTED  # a second tab, or a reload
    assert alive()
    Context.closed_event.set()
    assert not alive()


# --- serving a class ---------------------------------------------------------------------
def test_a_network_served_dashboard_caps_the_grid(monkeypatch):
    monkeypatch.delenv(S.ENV_MAX_SITES, raising=False)
    monkeypatch.setenv(S.ENV_HOST, "127.0.0.1")
    assert S.max_sites() is None
    monkeypatch.setenv(S.ENV_HOST, "0.0.0.0")
    assert S.max_sites() == S.NETWORK_MAX_SITES == 250_000
    session, problem = session_from_query("width=1000&height=1000")
    assert problem and "1000 x 1000" in problem and "250,000" in problem
    assert session.model.width == 100
    monkeypatch.setenv(S.ENV_MAX_SITES, "10000")
    rc = render(small_session())  # 30 x 30: allowed
    enter(text_field(rc, "width"), "334")
    button(rc, "Reset").click()
    assert "334 x 30" in errors(rc)[0] and "10,000" in errors(rc)[0]
    monkeypatch.setenv(S.ENV_MAX_SITES, "0")
    assert S.max_sites() is None
    assert S.serve_environment("0.0.0.0", 20000) == {S.ENV_HOST: "0.0.0.0",
                                                    S.ENV_MAX_SITES: "20000"}
    # a cap no scenario fits (every tab opens on a 100 x 100 grid), or not a number, is
    # refused when the server starts, not shown as a broken page
    for bad in (-1, 5000):
        with pytest.raises(ValueError, match=f"--max-sites {bad}: expected 0 .* at least 10,000"):
            S.serve_environment("0.0.0.0", bad)
    for bad in ("abc", "5000", "-3"):
        monkeypatch.setenv(S.ENV_MAX_SITES, bad)
        with pytest.raises(ValueError, match=f"ABM_MAX_SITES='{bad}': expected 0"):
            S.max_sites()
        with pytest.raises(ValueError, match="ABM_MAX_SITES"):
            S.serve_settings("127.0.0.1", 0)
    monkeypatch.setenv(S.ENV_MAX_SITES, "0")
    monkeypatch.delenv(S.ENV_HOST)
    monkeypatch.delenv(S.ENV_MAX_SITES)
    monkeypatch.setattr("sys.argv", ["solara", "run", "abm.server", "--host", "0.0.0.0"])
    assert S.max_sites() == 250_000  # read from the server's command line


def test_a_server_set_up_wrongly_shows_a_message_not_a_traceback(monkeypatch):
    """A cap in the environment that no model fits (set by hand, not through ``abm serve``)
    leaves the page a message naming the setting, with no controls."""
    monkeypatch.setenv(S.ENV_MAX_SITES, "5000")
    rc = render_query("?scenario=checkpoint&seed=3")
    alerts = [" ".join(_texts(w)) for w in widgets(rc, v.Alert)]
    assert any("cannot build a model" in a and "ABM_MAX_SITES='5000'" in a for a in alerts)
    assert not [w for w in widgets(rc, v.Btn) if "Play" in " ".join(_texts(w))]


def test_a_fixed_port_with_a_fallback_and_addresses_students_can_type():
    import socket

    port = S.pick_port("127.0.0.1", 0)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        assert S.pick_port("127.0.0.1", port) != port
    assert S.pick_port("127.0.0.1", port) == port  # free again
    # a server stopped a moment ago leaves its connections in TIME_WAIT: its port is free to
    # start again on (as the server itself binds), while one still listened on is not
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            assert S.pick_port("127.0.0.1", port, 1) != port  # listening
            accepted.close()  # the server side closes first: TIME_WAIT on the port
            client.recv(1)
    assert S.pick_port("127.0.0.1", port, 1) == port
    urls = S.urls("0.0.0.0", 8765)
    assert urls[-1] == "http://127.0.0.1:8765"
    assert all(re.match(r"http://\d+\.\d+\.\d+\.\d+:8765$", u) for u in urls)
    assert S.urls("127.0.0.1", 8765) == ["http://127.0.0.1:8765"]


def test_the_server_entry_point_sets_solara_up_for_a_class(monkeypatch):
    import solara.server.settings as settings

    monkeypatch.delenv("SOLARA_KERNEL_CULL_TIMEOUT", raising=False)
    monkeypatch.setattr(settings.theme, "show_banner", True)
    monkeypatch.setattr(settings.kernel, "cull_timeout", "24h")
    S.configure_solara()
    assert settings.theme.show_banner is False
    assert solara.util.parse_timedelta(settings.kernel.cull_timeout) <= 120


def test_compare_runs_an_untreated_twin_beside_the_run():
    rc = render_query("scenario=checkpoint&compare=1&width=30&height=30&seed=4")
    twins = widgets(rc, TissueWidget)
    assert [t.testid for t in twins] == ["tissue", "twin"]
    tab = rc_tab(rc)
    session = tab.session
    assert session.twin.p["anti_pd1_start_day"] is None  # the scenario's schedule, untreated
    for _ in range(3):
        button(rc, "Step").click()
    assert twins[0].src == twins[1].src  # same seed and parameters: the same tissue so far
    button(rc, "CAR-T").click()
    button(rc, "Step").click()
    assert twins[0].src != twins[1].src
    assert session.twin.steps == session.model.steps == 4 and not session.twin.dose_log
    series = chart_options(session.snapshot())["populations"]["series"]
    assert series[-1]["name"] == "untreated twin"
    # turning it on mid-run catches the twin up to the same hour
    switch = [w for w in widgets(rc, v.Switch) if w.label.startswith("Compare")][0]
    switch.v_model = False
    assert session.twin is None and len(widgets(rc, TissueWidget)) == 1
    switch.v_model = True
    assert session.twin.steps == session.model.steps == 4


def test_serve_settings_give_abm_serve_its_port_environment_and_lines():
    import socket

    with socket.socket() as taken:  # the fixed default port, or the next free one
        try:
            taken.bind(("127.0.0.1", S.DEFAULT_PORT))
        except OSError:
            pass  # someone has it already: just as good
        settings = S.serve_settings("127.0.0.1")
        assert S.DEFAULT_PORT < settings.port < S.DEFAULT_PORT + 20
        with pytest.raises(ValueError, match=f"--port {S.DEFAULT_PORT}: already in use"):
            S.serve_settings("127.0.0.1", S.DEFAULT_PORT)
    assert settings.lines == [f"abm dashboard: http://127.0.0.1:{settings.port}  (Ctrl-C to stop)"]
    assert settings.warning is None and settings.env == {S.ENV_HOST: "127.0.0.1"}
    open_ = S.serve_settings("0.0.0.0", 0)
    assert "anyone on this network" in open_.warning and "250,000 sites" in open_.warning
    assert not any(socket.gethostname() + ":" in line for line in open_.lines)
    assert open_.lines[-1].strip().startswith("http://127.0.0.1:") or len(open_.lines) == 1
    for host, says in (("", "empty"), ("nohost.invalid", "not an address or name this machine"),
                       ("8.8.8.8", "not an address of this machine")):
        with pytest.raises(ValueError, match=f"--host '{re.escape(host)}': {says}.*0.0.0.0"):
            S.serve_settings(host, 0)
    with pytest.raises(ValueError, match="--port 70000"):
        S.serve_settings("127.0.0.1", 70000)
    with pytest.raises(ValueError, match="--max-sites -5"):
        S.serve_settings("0.0.0.0", 0, -5)


def test_charts_read_on_a_projector():
    session = small_session()
    session.administer("anti_pd1")
    for _ in range(3):
        session.advance(1)
    options = chart_options(session.snapshot())
    for key, option in options.items():
        assert option["xAxis"]["nameLocation"] == "middle", key  # "day" under the axis
        assert option["legend"].get("type", "plain") == "plain", key  # not paged
        assert option["grid"]["bottom"] >= 40 and option["grid"]["top"] >= 80, key
        marks = option["series"][0]["markLine"]
        assert marks["label"]["position"] == "insideEndTop", key  # not into the legend
    axis = {s["name"]: s["yAxisIndex"] for s in options["populations"]["series"]}
    assert axis["cancer"] == 0 and axis["Tregs"] == axis["T cells"] == 1  # Tregs not flat
    kills = {s["name"]: s["yAxisIndex"] for s in options["kills"]["series"]}
    assert kills["T-cell kills"] == 0 and kills["exhausted T cells, %"] == 1
    assert options["kills"]["yAxis"][1]["max"] == 100


def test_a_link_for_the_class_opens_this_lesson_with_basic_controls_only():
    session = small_session("checkpoint", seed=12)
    rc = render(session)
    # the applied parameters that differ from the lesson's travel with it (the students' run
    # is the teacher's), then the page options
    assert ('href="?scenario=checkpoint&amp;seed=12&amp;width=30&amp;height=30&amp;'
            'initial_tumor_cells=40&amp;teacher=1"') in html_of(rc, "abm-class-link")
    tab = rc_tab(rc)
    tab.set_param("mutation_rate", 0.013)  # as its slider does
    tab.set_param("anti_pd1_start_day", "")  # as its text field does, blank = not given
    button(rc, "Reset").click()

    def link() -> str:
        return re.search(r'href="([^"]+)"', html_of(rc, "abm-class-link")).group(1).replace(
            "&amp;", "&")

    # the page re-renders once the rebuild's renders are done (the play thread restarts)
    eventually(lambda: "mutation_rate=0.013" in link())
    href = link()
    assert "anti_pd1_start_day=&" in href
    students, problem = session_from_query(href)
    assert problem is None and page_options(href)["teacher"]
    assert students.values == session.values and students.model.seed == 12
    assert page_options("scenario=checkpoint&seed=12&teacher=1") == {
        "teacher": True, "compare": False, "large": False}
    rc = render_query("scenario=checkpoint&seed=12&teacher=1&width=30&height=30")
    assert not [w for w in widgets(rc, solara.widgets.HTML)
                if "abm-class-link" in w.attributes.get("class", "")]


def _font_sizes(option) -> list[int]:
    """Every fontSize in a chart's option (nested anywhere)."""
    if isinstance(option, dict):
        return [size for key, value in option.items()
                for size in ([value] if key == "fontSize" else _font_sizes(value))]
    if isinstance(option, list):
        return [size for value in option for size in _font_sizes(value)]
    return []


def test_large_text_enlarges_every_chart_text_and_leaves_the_option_it_was_given():
    session = small_session()
    session.administer("anti_pd1")
    session.advance(2)
    for key, option in chart_options(session.snapshot()).items():
        before = repr(option)
        large = large_text(option)
        assert repr(option) == before, key  # a copy: the normal chart is untouched
        sizes = _font_sizes(large)
        assert min(sizes) >= LARGE_FONT["mark"] and max(_font_sizes(option)) < min(
            LARGE_FONT["legend"], LARGE_FONT["axis"]), key
        axes = [*np.atleast_1d(large["xAxis"]), *np.atleast_1d(large["yAxis"])]
        assert all(a["axisLabel"]["fontSize"] == LARGE_FONT["axis"] for a in axes), key
        assert large["legend"]["textStyle"]["fontSize"] == LARGE_FONT["legend"], key
        assert large["grid"]["top"] > option["grid"]["top"], key  # room for the legend
        assert large["series"][0]["markLine"]["label"]["fontSize"] == LARGE_FONT["mark"]


def test_large_text_and_its_link_enlarge_the_page_and_its_charts():
    """The switch itself is in the app bar, which only a browser shows (test_classroom.py)."""
    def grid_classes(rc) -> list[str]:
        return [w.class_ for w in widgets(rc, v.Html) if "abm-grid" in (w.class_ or "").split()]

    def populations(rc) -> dict:
        return [w for w in widgets(rc, EchartsWidget)
                if "abm-chart-populations" in w.attributes["class"]][0].option

    rc = render_query("scenario=escape&width=30&height=30&seed=2")
    assert grid_classes(rc) == ["abm-grid"]
    assert populations(rc)["legend"]["textStyle"]["fontSize"] < LARGE_FONT["legend"]
    rc_tab(rc).set_large(True)
    eventually(lambda: "abm-large" in grid_classes(rc)[0].split())
    assert populations(rc)["legend"]["textStyle"]["fontSize"] == LARGE_FONT["legend"]
    assert "large" not in html_of(rc, "abm-class-link")  # students' own screens: normal text
    button(rc, "Step").click()  # the next frame's charts stay large
    eventually(lambda: rc_tab(rc).session.model.steps == 1)
    assert populations(rc)["legend"]["textStyle"]["fontSize"] == LARGE_FONT["legend"]
    rc_tab(rc).set_large(False)
    eventually(lambda: grid_classes(rc) == ["abm-grid"])
    assert populations(rc)["legend"]["textStyle"]["fontSize"] < LARGE_FONT["legend"]
    # a teacher's bookmark opens with large text
    rc = render_query("scenario=escape&width=30&height=30&seed=2&teacher=1&large=1")
    assert "abm-large" in grid_classes(rc)[0].split()
    assert populations(rc)["legend"]["textStyle"]["fontSize"] == LARGE_FONT["legend"]
    assert session_from_query("scenario=escape&large=1")[1] is None  # not a model parameter


def test_picking_a_scenario_with_a_bad_seed_typed_loads_that_scenario_with_the_old_seed():
    # the page must not show one scenario's lesson over another scenario's model
    session = small_session("escape", seed=3)
    rc = render(session)
    tab = rc_tab(rc)
    enter(text_field(rc, "seed"), "abc")
    tab.guard(tab.pick_scenario)("checkpoint")
    assert tab.scenario.value == session.scenario == "checkpoint"
    assert session.model.p["anti_pd1_start_day"] == scenario_values("checkpoint")[
        "anti_pd1_start_day"]
    assert session.model.seed == 3 and tab.seed_text.value == "3"
    eventually(lambda: any("seed 'abc' is not allowed" in e and "loaded with seed 3" in e
                           for e in errors(rc)))


def test_the_exported_files_are_named_after_the_model_not_the_seed_box():
    from solara.components.file_download import FileDownloadWidget

    session = small_session("escape", seed=3)
    rc = render(session)
    enter(text_field(rc, "seed"), "77")  # typed, not applied (no Reset)
    names = {w.filename for w in widgets(rc, FileDownloadWidget)}
    assert names == {"abm-escape-seed3.csv", "abm-escape-seed3.png"}
    button(rc, "Reset").click()  # now it is the model's seed
    eventually(lambda: {w.filename for w in widgets(rc, FileDownloadWidget)}
               == {"abm-escape-seed77.csv", "abm-escape-seed77.png"})


def _contrast(a, b) -> float:
    """WCAG contrast ratio of two sRGB colours."""
    def luminance(rgb) -> float:
        c = np.asarray(rgb, dtype=float) / 255
        c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return float(c @ [0.2126, 0.7152, 0.0722])

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_every_cell_colour_stands_out_from_the_empty_tissue_on_a_projector():
    colours = {**{k.name: rgb for k, rgb in R.KIND_RGB.items()},
               "exhausted": R.EXHAUSTED_T_RGB, "progenitor": R.PROGENITOR_T_RGB,
               "M2": R.M2_RGB, "cancer": R.CANCER_VISIBLE_RGB, "hidden": R.CANCER_HIDDEN_RGB}
    low = {name: round(_contrast(rgb, R.EMPTY_RGB), 2) for name, rgb in colours.items()
           if _contrast(rgb, R.EMPTY_RGB) < 2.8}
    assert not low  # yellow NK cells were 1.0, amber Tregs 1.7


def test_the_legend_without_cells_names_the_collapsed_vessels_drawn():
    """With the cells hidden, an overlay shows the tissue under them, and the vessels the
    tumour has swallowed are drawn pale: the legend names them as well (it said only
    "vessel")."""
    model = TumorModel(rng=1, **{**TINY, "initial_tumor_cells": 600, "tcell_influx": 0.0,
                                 "vessel_collapse_days": 0.1, "vessel_density": 0.05})
    for _ in range(48):
        model.step()
    assert len(model.collapsed_vessels)  # enclosed vessels have collapsed
    rgb = R.tissue_rgb(model, "antigenicity", "oxygen", show_cells=False).rgb
    assert (rgb == R.COLLAPSED_VESSEL_RGB).all(axis=2).any()
    assert ("collapsed vessel", R.css(R.COLLAPSED_VESSEL_RGB)) in R.legend(
        "antigenicity", "oxygen", show_cells=False)


def test_colour_by_clone_draws_no_clone_in_an_immune_cell_colour():
    # what else this view draws: the immune cells in one colour, debris and vessels
    fixed = [R.IMMUNE_RGB, R.KIND_RGB[Kind.NECROTIC], R.VESSEL_RGB, R.COLLAPSED_VESSEL_RGB]
    for clone in R.CLONE_PALETTE.astype(int):
        nearest = min(np.linalg.norm(clone - np.array(c)) for c in fixed)
        # tab20's brown, pink-brown and mid grey were 52, 21 and 59 from them
        assert nearest > 60, (clone, nearest)
    model = TumorModel(rng=2, **{**scenario_values("escape"), **TINY, "tcell_influx": 3.0,
                                 "treg_influx": 1.0, "mdsc_influx": 1.0, "nk_influx": 1.0})
    for _ in range(72):
        model.step()
    immune = np.isin(model.kind, R.IMMUNE_KINDS).T[::-1]
    assert len(set(model.kind.T[::-1][immune].tolist())) >= 3  # several kinds to hide
    frame = R.tissue_rgb(model, "clone")
    assert (frame.rgb[immune] == R.IMMUNE_RGB).all()  # every kind, exhausted ones too
    labels = [label for label, _ in R.legend("clone")]
    assert "immune cell (any kind)" in labels and "T cell" not in labels
    # with PD-L1 the cancer cells are not coloured by clone, so the immune cells keep theirs
    assert not (R.tissue_rgb(model, "clone", "pdl1").rgb[immune] == R.IMMUNE_RGB).all()


def test_compare_draws_both_tissues_on_one_colour_scale():
    session = small_session("checkpoint", seed=4)
    session.set_compare(True)
    session.advance(24)
    twin_field = session.twin.fields["ifng"].data
    twin_field[...] = np.linspace(0, 3 * max(twin_field.max(), 0.01), twin_field.size).reshape(
        twin_field.shape)  # the twin's maximum now above the model's
    _, frame = session.draw("antigenicity", "ifng")
    assert frame.vmax == pytest.approx(twin_field.max())
    own = R.tissue_rgb(session.model, "antigenicity", "ifng").vmax
    assert own < frame.vmax
    twin_src = session.draw_twin("antigenicity", "ifng", True, frame.vmax)
    assert twin_src == R.data_url(R.tissue_rgb(session.twin, "antigenicity", "ifng", True,
                                               frame.vmax).rgb)
    assert session.draw("antigenicity", "oxygen")[1].vmax == session.model.p["oxygen_supply"]


def test_with_compare_the_twin_plays_on_after_the_treated_tumour_is_gone():
    values = {**scenario_values("elimination"), "width": 24, "height": 24,
              "initial_tumor_cells": 30, "tcell_influx": 30.0, "cart_start_day": 0.0,
              "cart_dose": 60}
    session = Session("elimination", values, 1)
    session.set_compare(True)
    hours = 0
    while session.model.running and hours < 400:
        session.advance(1)
        hours += 1
    assert not session.model.running, "the treated tumour was not cleared"
    assert session.twin.running, "the twin was cleared as soon (pick a slower elimination)"
    cleared, twin_hours = session.cleared_day, session.twin.steps
    assert session.active and session.advance(5)
    assert session.twin.steps == twin_hours + 5  # the twin grows on beside it
    assert session.model.steps == session.twin.steps and session.cleared_day == cleared
    rc = render(session)
    assert "the untreated twin plays on" in " ".join(
        " ".join(_texts(w)) for w in by_class(rc, "abm-cleared", v.Alert))
    session.twin.running = False
    assert not session.active and not session.advance(1)


def test_the_charts_show_mean_mhc_and_nk_kills_once_nk_cells_are_on():
    session = small_session("nk_surveillance")
    session.advance(48)
    options = chart_options(session.snapshot())
    assert "mean MHC-I" in {s["name"] for s in options["traits"]["series"]}
    kills = {s["name"] for s in options["kills"]["series"]}
    assert "NK kills" in kills and "T-cell kills" in kills
    plain = chart_options(small_session("tumor_only").snapshot())  # no NK cells: no NK line
    assert "NK kills" not in {s["name"] for s in plain["kills"]["series"]}


def test_run_to_day_refuses_a_day_too_far_and_a_stopped_run():
    session = small_session()
    rc = render(session)
    tab = rc_tab(rc)
    tab.guard(tab.run_to)(1e6)
    eventually(lambda: "expected a day up to 1000" in " ".join(errors(rc)))
    assert not tab.playing.value
    session.model.running = False  # as when the last cancer cell dies
    tab.guard(tab.run_to)(5)
    eventually(lambda: "the tumour is gone" in " ".join(errors(rc)))
    assert not tab.playing.value


def test_with_compare_the_exported_view_holds_both_tissues_on_one_scale():
    session = small_session("checkpoint", seed=4)
    session.set_compare(True)
    session.advance(12)
    session.administer("cart")  # the twin gets none: the tissues differ
    session.advance(12)
    model, twin = session.model, session.twin
    alone = Image.open(io.BytesIO(R.export_png(model, "antigenicity", "none", "t")))
    both = Image.open(io.BytesIO(R.export_png(model, "antigenicity", "none", "t", twin=twin)))
    scale = max(1, 600 // max(model.width, model.height))
    assert both.width == alone.width + model.width * scale + 10  # the twin and a gap
    pixels = np.asarray(both.convert("RGB"))
    left, top = 10 + model.width * scale + 10, 10 + 44
    shown = pixels[top:top + model.height * scale:scale, left:left + model.width * scale:scale]
    assert (shown == R.tissue_rgb(twin).rgb).all()  # the twin's tissue, pixel for pixel
    assert not (shown == R.tissue_rgb(model).rgb).all()
