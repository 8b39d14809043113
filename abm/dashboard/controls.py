"""The sidebar's controls: run (Step / Play / Reset, speed), seed, scenario, treatment buttons,
exports, and the parameter panel generated from ``abm/params.py``; the view controls above the
tissue. Each calls an action of the ``Tab`` through ``tab.guard``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import solara

from abm import params as P
from abm.agents import TREATMENTS
from abm.dashboard import render as R
from abm.dashboard.tab import Tab
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
    with solara.Row(gap="6px"):
        solara.Button("Step", icon_name="mdi-step-forward", on_click=tab.guard(tab.step),
                      disabled=playing, color="primary", outlined=True)
        solara.Button("Pause" if playing else "Play",
                      icon_name="mdi-pause" if playing else "mdi-play",
                      on_click=tab.guard(tab.toggle_play), color="primary")
        solara.Button("Reset", icon_name="mdi-restore", on_click=tab.guard(tab.reset),
                      color="primary", outlined=True)
    solara.SliderInt(f"speed: at most {tab.speed.value} frames/s", value=tab.speed, min=1,
                     max=30)
    solara.SliderInt(f"{tab.steps_per_frame.value} hour(s) per frame", value=tab.steps_per_frame,
                     min=1, max=24)


@solara.component
def SeedControls(tab: Tab):
    with solara.Row(gap="6px", style={"align-items": "center"}):
        solara.InputText("seed", value=tab.seed_text, continuous_update=False,
                         style={"max-width": "140px"})
        solara.Button("new seed", icon_name="mdi-dice-5", on_click=tab.guard(tab.fresh_seed),
                      text=True)
    solara.Text("The seed is used on Reset; the same seed and parameters give the same run.",
                style={"font-size": "12px", "color": "#666"})


@solara.component
def TreatmentButtons(tab: Tab):
    with solara.Row(gap="6px", style={"flex-wrap": "wrap"}):
        for name, cls in TREATMENTS.items():
            solara.Button(cls.label, on_click=tab.guard(lambda name=name: tab.treat(name)),
                          color="deep-orange", dark=True, small=True, classes=["abm-treat"])
    solara.SliderFloat("dose (x standard)", value=tab.dose_scale, min=0.25, max=4.0, step=0.25,
                       thumb_label="always")
    solara.Text("Gives one dose now (CAR-T: one infusion) to the running model; the standard "
                "doses are the dose parameters (checkpoint_dose, ctla4_dose, vaccine_dose, "
                "cart_dose).", style={"font-size": "12px", "color": "#666"})


def control_kind(p: P.Param) -> str:
    """How a parameter is edited: checkbox, slider or a validated text field."""
    if p.kind is bool:
        return "checkbox"
    if p.optional or p.low is None or p.high is None:
        return "text"
    if p.kind is float and p.low >= 0 and p.high <= 1:
        return "slider_float"
    if p.kind is int and p.high - p.low <= 50:
        return "slider_int"
    return "text"


def tooltip(p: P.Param) -> str:
    return (f"{p.description}. Unit: {p.unit}. Allowed: {p.allowed()}. Default: {p.default}. "
            f"Source: {p.source}.")


@solara.component
def ParamControl(p: P.Param, value: Any, on_value: Callable[[Any], None]):
    label = f"{p.name} [{p.unit}]"
    kind = control_kind(p)
    error: str | bool = False
    if kind == "text":
        try:
            p.validate(value)
        except ValueError as err:
            error = str(err).split(" (")[0]
    with solara.Tooltip(tooltip(p)):
        with solara.Column(gap="0px"):
            if kind == "checkbox":
                solara.Checkbox(label=label, value=bool(value), on_value=on_value)
            elif kind == "slider_float":
                solara.SliderFloat(label, value=float(value), min=p.low, max=p.high, step=0.001,
                                   on_value=on_value, thumb_label=False)
            elif kind == "slider_int":
                solara.SliderInt(label, value=int(value), min=int(p.low), max=int(p.high),
                                 on_value=on_value, thumb_label=False)
            else:
                text = "" if value is None else str(value)
                solara.InputText(label, value=text, on_value=on_value, continuous_update=False,
                                 error=error, dense=True,
                                 message="blank = not given" if p.optional else None)


@solara.component
def ParamPanel(tab: Tab):
    tab.frame.value  # noqa: B018 - subscribe: the model may have been rebuilt
    raw = tab.raw.value
    try:
        pending = P.validate(raw) != {k: tab.session.model.p[k] for k in raw}
    except ValueError:
        pending = True
    group, set_group = solara.use_state(P.GROUPS[0])
    solara.Text("Parameters", style={"font-weight": "500"})
    if pending:
        solara.Warning("Parameters changed: press Reset to apply them.", dense=True)
    # one group at a time keeps the page light (each re-render visits every control)
    solara.Select("group", values=list(P.GROUPS), value=group, on_value=set_group, dense=True)
    solara.Text("Hover over a control for its unit, range and source.",
                style={"font-size": "12px", "color": "#666"})
    for p in P.PARAMS.values():
        if p.group == group:
            ParamControl(p, raw.get(p.name, p.default),
                         lambda value, name=p.name: tab.set_param(name, value))


@solara.component
def ScenarioPicker(tab: Tab):
    solara.Select("scenario", values=list(SCENARIOS), value=tab.scenario.value,
                  on_value=tab.guard(tab.pick_scenario))


@solara.component
def ViewControls(tab: Tab):
    choices = R.overlays(tab.session.model)
    labels = {spec.label: key for key, spec in choices.items()}
    current = choices.get(tab.overlay.value, choices["none"]).label
    with solara.Row(gap="12px", style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.ToggleButtonsSingle(value=tab.colour_by.value, values=list(R.COLOUR_BY),
                                   on_value=tab.guard(lambda c: tab.set_view(colour_by=c)),
                                   dense=True)
        solara.Select("overlay", values=list(labels), value=current,
                      on_value=tab.guard(lambda label: tab.set_view(overlay=labels[label])),
                      style={"max-width": "300px"})


@solara.component
def Exports(tab: Tab):
    session = tab.session

    def csv() -> bytes:
        with session.lock:
            return R.timeseries_csv(session.model).encode()

    def png() -> bytes:
        with session.lock:
            m = session.model
            title = (f"{tab.scenario.value} · seed {m.seed} · day {m.day:.1f} · "
                     f"{m.n_cancer} cancer cells")
            return R.export_png(m, tab.colour_by.value, tab.overlay.value, title)

    stem = f"abm-{tab.scenario.value}-seed{tab.seed_text.value}"
    with solara.Row(gap="6px", style={"flex-wrap": "wrap"}):
        solara.FileDownload(csv, filename=f"{stem}.csv", label="time series (CSV)",
                            mime_type="text/csv")
        solara.FileDownload(png, filename=f"{stem}.png", label="view (PNG)",
                            mime_type="image/png")
