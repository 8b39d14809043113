"""The sidebar's controls: run (Step / Play / Reset, speed), seed, scenario, treatment buttons,
exports, and the parameter panel generated from ``abm/params.py``; the view controls above the
tissue. Each calls an action of the ``Tab`` through ``tab.guard``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import solara

from abm import params as P
from abm.agents import TREATMENTS
from abm.dashboard import labels as L
from abm.dashboard import render as R
from abm.dashboard.session import scenario_values
from abm.dashboard.tab import OVERLAYS_WITH_CELLS, Tab
from abm.run import ENGINES
from abm.scenarios import SCENARIOS


@solara.component
def Player(tab: Tab):
    """Runs the play loop in a thread while playing (restarted on Reset)."""
    solara.use_thread(tab.play_loop, dependencies=[tab.playing.value, tab.generation.value],
                      intrusive_cancel=False)


@solara.component
def RunControls(tab: Tab):
    playing = tab.playing.value
    Player(tab)
    with solara.Row(gap="4px", style={"flex-wrap": "wrap"}):
        solara.Button("Step", icon_name="mdi-step-forward", on_click=tab.guard(tab.step),
                      disabled=playing, color="primary", outlined=True)
        solara.Button("Pause" if playing else "Play",
                      icon_name="mdi-pause" if playing else "mdi-play",
                      on_click=tab.guard(tab.toggle_play), color="primary")
        solara.Button("Reset", icon_name="mdi-restore", on_click=tab.guard(tab.reset),
                      color="primary", outlined=True)
    RunTo(tab)
    LabelledSlider("Speed (frames/s at most)", tab.speed.value, 1, 30, 1,
                   lambda n: tab.speed.set(int(n)), "abm-speed")
    LabelledSlider("Hours per frame", tab.steps_per_frame.value, 1, 24, 1,
                   lambda n: tab.steps_per_frame.set(int(n)), "abm-hours")


@solara.component
def LabelledSlider(label: str, value: float, low: float, high: float, step: float,
                   on_value: Callable[[float], None], css: str, unit: str = ""):
    """A full-width slider with its label and current value on the line above it."""
    with solara.Column(gap="0px", classes=[css]):
        with solara.Row(justify="space-between", style={"font-size": "13px"}):
            solara.Text(label)
            solara.Text(f"{value:g}{unit}", classes=["abm-slider-value"],
                        style={"font-weight": "500"})
        solara.v.Slider(v_model=value, min=low, max=high, step=step, on_v_model=on_value,
                        hide_details=True, dense=True)


@solara.component
def RunTo(tab: Tab):
    """Play until a day: the lesson's ``watch_days`` by default (set again with each
    scenario)."""
    text = tab.run_to_text.value
    target = tab.target_day.value

    def go():
        try:
            day = float(text)
        except ValueError:
            day = math.nan
        if not math.isfinite(day):  # named as typed: 1e400 is not "inf"
            raise ValueError(f"run to day {text!r}: expected a number of days")
        tab.run_to(day)

    try:
        number = float(text)
    except ValueError:
        number = math.nan
    # the box says what was typed; the button repeats only a day it can run to
    shown = f"{number:g}" if math.isfinite(number) else ""
    with solara.Row(gap="6px", style={"align-items": "center"}):
        solara.Button(f"Run to day {shown}".strip() if target is None
                      else f"running to day {target:g}",
                      icon_name="mdi-fast-forward", on_click=tab.guard(go), color="primary",
                      outlined=True, disabled=target is not None, classes=["abm-run-to"])
        solara.InputText("day", value=text, on_value=tab.run_to_text.set, continuous_update=False,
                         dense=True, style={"max-width": "70px"})


@solara.component
def SeedControls(tab: Tab):
    with solara.Row(gap="6px", style={"align-items": "center"}):
        solara.InputText("seed", value=tab.seed_text, continuous_update=False,
                         style={"max-width": "140px"})
        solara.Button("new seed", icon_name="mdi-dice-5", on_click=tab.guard(tab.fresh_seed),
                      text=True)
    solara.Text("The seed is used on Reset; the same seed and parameters give the same run.",
                style={"font-size": "12px", "color": "#666"})
    if not tab.teacher:
        EngineControl(tab)
        ClassLink(tab)


@solara.component
def EngineControl(tab: Tab):
    tab.frame.value  # noqa: B018 - subscribe: the model is rebuilt on a switch
    # the widget itself, not solara.Select: its value is set on every render, so a switch
    # refused (a bad value typed) shows the model's engine again, not the one picked
    solara.v.Select(label="engine", v_model=tab.session.engine, items=list(ENGINES),
                    on_v_model=tab.guard(tab.set_engine), class_="abm-engine")
    solara.Text("mesa: the reference; fast: the same rules compiled, for large grids (the "
                "two agree in distribution, not run by run). Switching rebuilds the model; "
                "the first switch on a machine where it was never compiled (make setup and make "
                "serve compile it) waits 15-45 s while it compiles.",
                style={"font-size": "12px", "color": "#666"})


def class_link(scenario: str, seed: str, compare: bool,
               values: dict[str, Any] | None = None, engine: str = "mesa",
               teacher: bool = True, large: bool = False) -> str:
    """The link (a query string) that opens this scenario and seed on this engine, with the
    parameters in ``values`` that differ from the scenario's (those the teacher changed and
    applied), with the basic controls only (``teacher``), for a class; ``large``: in large
    text (the page's own address, ``page_link``; a class link opens in normal text)."""
    preset = scenario_values(scenario)
    changed = {name: "" if value is None else str(value)
               for name, value in (values or {}).items() if preset.get(name) != value}
    query = urlencode({"scenario": scenario, "seed": seed}
                      | ({"engine": engine} if engine != "mesa" else {}) | changed
                      | ({"teacher": 1} if teacher else {}) | ({"compare": 1} if compare else {})
                      | ({"large": 1} if large else {}))
    return f"?{query}"


def page_link(tab: Tab) -> str:
    """This tab's page as a link: its model's scenario, seed, engine and applied parameters,
    and the page's options as they are now (teacher, compare, large). The address bar shows
    it, so a reload (also the page's own, after a server restart) opens the same lesson, seed
    and text size again, from day 0."""
    session = tab.session
    return class_link(session.scenario, str(session.model.seed), tab.compare.value,
                      session.values, session.engine, tab.teacher, tab.large.value)


@solara.component
def ClassLink(tab: Tab):
    tab.frame.value  # noqa: B018 - subscribe: the seed and parameters change on Reset
    session = tab.session
    href = class_link(tab.scenario.value, str(session.model.seed), tab.compare.value,
                      session.values, session.engine)
    solara.HTML("div", unsafe_innerHTML=(
        f'<a href="{html.escape(href)}" target="_blank">Link for the class</a>: this scenario, '
        "seed and applied parameters with the basic controls only (copy it from the address "
        "bar)"),
        classes=["abm-class-link"], style="font-size: 12px")


@solara.component
def TreatmentButtons(tab: Tab):
    with solara.Row(gap="6px", style={"flex-wrap": "wrap"}):
        for name, cls in TREATMENTS.items():
            solara.Button(cls.label, on_click=tab.guard(lambda name=name: tab.treat(name)),
                          color="deep-orange", dark=True, small=True, classes=["abm-treat"])
    solara.Switch(label="Compare with an untreated twin", value=tab.compare.value,
                  on_value=tab.guard(tab.set_compare), classes=["abm-compare"])
    LabelledSlider("Dose (x standard)", tab.dose_scale.value, 0.25, 4.0, 0.25,
                   lambda x: tab.dose_scale.set(float(x)), "abm-dose", "x")
    tab.generation.value  # noqa: B018 - subscribe: the CAR-T dose is the model's, after Reset
    solara.Text(treatment_note(tab.session.model.p["cart_dose"], tab.teacher),
                style={"font-size": "12px", "color": "#666"}, classes=["abm-treat-note"])


def treatment_note(cart_cells: int, teacher: bool) -> str:
    """What a treatment button gives, in plain words; the dose parameters' code names only
    where the Advanced panel that sets them is shown (not on a class link)."""
    note = (f"Each button gives one dose now: 1x is a standard dose (CAR-T: one infusion of "
            f"{cart_cells:g} cells), scaled by the slider.")
    if teacher:
        return note
    return note + (" The standard doses are parameters under Advanced (anti_pd1_dose, "
                   "anti_ctla4_dose, vaccine_dose, cart_dose, anti_csf1r_dose).")


def control_kind(p: P.Param, basic: bool = False) -> str:
    """How a parameter is edited: checkbox, slider or a validated text field (a basic control
    is always a slider, over its classroom range)."""
    if p.kind is bool:
        return "checkbox"
    if basic and p.name in L.BASIC_BY_NAME:
        return "slider_int" if p.kind is int else "slider_float"
    if p.optional or p.low is None or p.high is None:
        return "text"
    if p.kind is float and p.low >= 0 and p.high <= 1:
        return "slider_float"
    if p.kind is int and p.high - p.low <= 50:
        return "slider_int"
    return "text"


def tooltip(p: P.Param) -> str:
    return (f"{p.name}: {p.description}. Unit: {p.unit}. Allowed: {p.allowed()}. "
            f"Default: {p.default}. Source: {p.source}.")


@solara.component
def ParamControl(p: P.Param, value: Any, on_value: Callable[[Any], None], basic: bool = False):
    """One parameter: its label and current value on one line, the control under it (full
    width: a slider squeezed beside its label was 87 px wide)."""
    kind = control_kind(p, basic)
    label = L.plain_label(p.name) if basic else f"{p.name} [{L.display_unit(p.unit)}]"
    error: str | bool = False
    if kind == "text":
        try:
            p.validate(value)
        except ValueError as err:
            error = str(err).split(" (")[0]
    classes = ["abm-param", f"abm-param-{p.name}"]
    with solara.Tooltip(tooltip(p)):
        with solara.Column(gap="0px", classes=classes):
            if kind == "checkbox":
                solara.Checkbox(label=label, value=bool(value), on_value=on_value)
            elif kind in ("slider_float", "slider_int"):
                is_int = kind == "slider_int"
                number = int(value) if is_int else float(value)
                if basic:
                    b = L.BASIC_BY_NAME[p.name]
                    low, high = b.span(number)
                    step = b.step
                else:
                    low, high, step = p.low, p.high, L.slider_step(p)
                with solara.Row(justify="space-between", style={"font-size": "13px"}):
                    solara.Text(label)
                    solara.Text(L.format_value(p, number), classes=["abm-param-value"],
                                style={"font-weight": "500"})

                def changed(new, is_int=is_int):
                    on_value(int(round(new)) if is_int else round(float(new), 6))

                solara.v.Slider(v_model=number, min=low, max=high, step=step,
                                on_v_model=changed, hide_details=True, dense=True,
                                class_="abm-param-slider")
            else:
                text = "" if value is None else str(value)
                solara.InputText(label, value=text, on_value=on_value, continuous_update=False,
                                 error=error, dense=True,
                                 message="blank = not given" if p.optional else None)


@solara.component
def PendingNote(tab: Tab):
    """Says when parameters were changed but not applied yet. Always present in the tree (its
    content changes, not its position), so the controls after it keep their places and
    keyboard focus while a slider is moved."""
    tab.frame.value  # noqa: B018 - subscribe: the model may have been rebuilt
    raw = tab.raw.value
    try:
        pending = P.validate(raw) != {k: tab.session.model.p[k] for k in raw}
    except ValueError:
        pending = True
    with solara.Column(gap="0px", classes=["abm-pending"]):
        if pending:
            solara.Warning("Parameters changed: press Reset to apply them.", dense=True)


@solara.component
def BasicParams(tab: Tab):
    """The short classroom set, in plain words, values shown."""
    raw = tab.raw.value
    solara.Text("Parameters", style={"font-weight": "500"})
    PendingNote(tab)
    for b in L.BASIC:
        p = P.PARAMS[b.name]
        ParamControl(p, raw.get(p.name, p.default),
                     lambda value, name=p.name: tab.set_param(name, value),
                     basic=True).key(f"basic-{p.name}")


@solara.component
def ParamPanel(tab: Tab):
    """Every parameter, one group at a time (each re-render visits every shown control),
    labelled by code name; the basic ones are also above, in plain words."""
    raw = tab.raw.value
    group, set_group = solara.use_state(P.GROUPS[0])
    solara.Select("group", values=list(P.GROUPS), value=group, on_value=set_group, dense=True)
    solara.Text("Hover over a control for what it does, its unit, range and source.",
                style={"font-size": "12px", "color": "#666"})
    for p in P.PARAMS.values():
        if p.group == group:
            ParamControl(p, raw.get(p.name, p.default),
                         lambda value, name=p.name: tab.set_param(name, value)).key(p.name)


@solara.component
def ScenarioPicker(tab: Tab):
    solara.Select("scenario", values=list(SCENARIOS), value=tab.scenario.value,
                  on_value=tab.guard(tab.pick_scenario))


@solara.component
def ViewControls(tab: Tab):
    choices = R.overlays(tab.session.model)
    labels = {spec.label: key for key, spec in choices.items()}
    current = choices.get(tab.overlay.value, choices["none"]).label
    with solara.Row(gap="8px", style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.ToggleButtonsSingle(value=tab.colour_by.value, values=list(R.COLOUR_BY),
                                   on_value=tab.guard(lambda c: tab.set_view(colour_by=c)),
                                   dense=True)
        solara.Select("overlay", values=list(labels), value=current,
                      on_value=tab.guard(lambda label: tab.set_view(overlay=labels[label])),
                      style={"max-width": "250px", "min-width": "230px"}, dense=True)
        if tab.overlay.value not in OVERLAYS_WITH_CELLS:
            solara.Checkbox(label="cells", value=tab.show_cells.value,
                            on_value=tab.guard(lambda on: tab.set_view(show_cells=on)))


@solara.component
def Exports(tab: Tab):
    session = tab.session

    def csv() -> bytes:
        with session.lock:
            return R.timeseries_csv(session.model).encode()

    def png() -> bytes:
        with session.lock:
            m = session.model
            title = (f"{session.scenario} · seed {m.seed} · day {m.day:.1f} · "
                     f"{m.n_cancer} cancer cells")
            return R.export_png(m, tab.colour_by.value, tab.overlay.value, title,
                                tab.show_cells.value, session.twin, session.named_clones())

    tab.generation.value  # noqa: B018 - subscribe: the names follow the model when rebuilt
    # the model's scenario and seed, not the seed box's (typed but not yet applied)
    stem = f"abm-{session.scenario}-seed{session.model.seed}"
    with solara.Row(gap="6px", style={"flex-wrap": "wrap"}):
        solara.FileDownload(csv, filename=f"{stem}.csv", label="time series (CSV)",
                            mime_type="text/csv")
        solara.FileDownload(png, filename=f"{stem}.png", label="view (PNG)",
                            mime_type="image/png")
