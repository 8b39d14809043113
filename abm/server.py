"""The browser dashboard: ``abm serve`` (or ``solara run abm.server``).

Layout and conventions follow Mesa's SolaraViz (a sidebar with Step / Play / Reset, parameter
controls generated from the model's parameters, the model's flat keyword arguments for Reset),
but the parts that must be fast are our own:

- the tissue is ONE raster image built from the model's numpy layers (``abm.render``), sent as
  an unscaled PNG and scaled up by the browser; hover and click report the site under the mouse;
- the live charts are ECharts (bundled with solara-assets, so the page works offline), updated
  at most a few times a second while playing, every time when stepping;
- the play loop runs in a thread per session and times the model and the drawing separately.

Every browser session builds its own ``Session`` (model, lock, history) inside the component
tree, so one student's Reset or Play never touches another's. Model work happens under the
session's lock; reactive state is only set after the lock is released (a render may need the
lock, so holding it while triggering a render could deadlock).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipyvuetify as v
import markdown
import numpy as np
import solara
import traitlets
from solara.components.echarts import EchartsWidget

from abm import params as P
from abm import render as R
from abm.agents import TREATMENTS
from abm.model import TumorModel
from abm.scenarios import SCENARIOS

log = logging.getLogger("abm.server")

DEFAULT_SCENARIO = "escape" if "escape" in SCENARIOS else next(iter(SCENARIOS))
PLOT_INTERVAL_S = 0.5  # while playing, charts refresh at most this often
MAX_CHART_POINTS = 240  # time series are thinned to this many points per chart
TOP_CLONES = 8  # clones shown by name in the clone chart; the rest are "other"

ABOUT = """
**What this is.** A 2-D slice of a solid tumour and its immune microenvironment, one cell per
15 µm site, one step per hour. Cancer cells divide from the rim and mutate; cytotoxic T cells
are recruited, follow chemokine, recognise antigens, kill and exhaust; regulatory T cells and
MDSCs suppress them; IFN-γ induces PD-L1. Treatments (anti-PD-1, anti-CTLA-4, a vaccine,
CAR-T cells) act on a schedule or when you press their button.

**Caveats.** This is a teaching and research model, **not for clinical decisions**. It is a
caricature: two dimensions, no vasculature growth, metabolism or lymph nodes; drugs are
well-mixed; many rates are modelling choices, calibrated to reproduce qualitative facts
(immunoediting, adaptive resistance, antigen-loss relapse), not any patient or cell line. Read
trends across several seeds, not single runs. Sources for each parameter are in its tooltip and
in `abm params`.
"""


# --- per-session state (not a UI object) ---------------------------------------------------
@dataclass
class Timing:
    """Where the time of a frame goes, as moving averages (milliseconds)."""

    model_ms: float = 0.0
    draw_ms: float = 0.0
    frame_ms: float = 0.0
    steps_per_frame: int = 1
    frame_times: deque = field(default_factory=lambda: deque(maxlen=30))

    @staticmethod
    def _ema(old: float, new: float) -> float:
        return new if old == 0.0 else 0.8 * old + 0.2 * new

    def model(self, seconds: float, steps: int) -> None:
        self.model_ms = self._ema(self.model_ms, seconds * 1000)
        self.steps_per_frame = steps

    def draw(self, seconds: float) -> None:
        self.draw_ms = self._ema(self.draw_ms, seconds * 1000)

    def frame(self, seconds: float) -> None:
        self.frame_ms = self._ema(self.frame_ms, seconds * 1000)
        self.frame_times.append(time.perf_counter())

    @property
    def fps(self) -> float:
        """Frames per second over the last frames while playing (server side)."""
        t = self.frame_times
        if len(t) < 2 or time.perf_counter() - t[-1] > 1.0:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])


class Session:
    """One browser session's model and history. Model work happens under ``lock``."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, values: dict | None = None,
                 seed: int | None = None):
        self.lock = threading.RLock()
        self.generation = 0
        self.scenario = scenario
        self.build(values if values is not None else scenario_values(scenario),
                   new_seed() if seed is None else seed)

    def build(self, values: dict[str, Any], seed: int | str) -> None:
        """(Re)build the model; raises ``ValueError`` for bad values, leaving the old one."""
        model = TumorModel(rng=seed, **values)  # outside the lock: a big grid takes a while
        with self.lock:
            self.model = model
            self.values = dict(values)
            self.generation += 1
            self.clone_history: list[tuple[float, dict[int, int]]] = [
                (model.day, R.clone_counts(model))
            ]
            self.timing = Timing()

    def advance(self, steps: int, generation: int | None = None) -> bool:
        """Step the model ``steps`` hours; False if it was rebuilt meanwhile or has stopped."""
        with self.lock:
            if generation is not None and generation != self.generation:
                return False
            model = self.model
            if not model.running:
                return False
            start = time.perf_counter()
            for _ in range(steps):
                model.step()
                if not model.running:
                    break
            self.timing.model(time.perf_counter() - start, steps)
            self.clone_history.append((model.day, R.clone_counts(model)))
            return True

    def draw(self, colour_by: str, overlay: str) -> tuple[str, R.Frame]:
        with self.lock:
            start = time.perf_counter()
            frame = R.tissue_rgb(self.model, colour_by, overlay)
            src = R.data_url(frame.rgb)
            self.timing.draw(time.perf_counter() - start)
        return src, frame

    def administer(self, therapy: str, scale: float = 1.0) -> str:
        """One dose now: ``scale`` times the model's dose parameter for this therapy."""
        with self.lock:
            treatment = self.model.treatments[therapy]
            spec = P.PARAMS[treatment.dose_param]
            dose = treatment.dose * scale
            dose = round(dose) if spec.kind is int else dose
            self.model.administer(therapy, dose)
            return (f"{TREATMENTS[therapy].label} given on day {self.model.day:.1f} "
                    f"({dose:g} {spec.unit}): it acts from the next hour")

    def snapshot(self) -> dict[str, Any]:
        """Copies of what the charts need, taken under the lock."""
        with self.lock:
            cols = R.model_vars(self.model)
            n = min(len(c) for c in cols.values())
            return {
                "vars": {k: list(c[:n]) for k, c in cols.items()},
                "clones": list(self.clone_history),
                "doses": list(self.model.dose_log),
            }


def new_seed() -> int:
    """A fresh seed for "new seed" (UI randomness, not model randomness)."""
    return secrets.randbelow(1_000_000)


def scenario_values(name: str) -> dict[str, Any]:
    """All parameter values of a scenario: the defaults plus its overrides."""
    return {**P.defaults(), **SCENARIOS[name]["params"]}


# --- the tissue image widget ---------------------------------------------------------------
TISSUE_TEMPLATE = """
<template>
  <div class="abm-tissue" style="line-height: 0">
    <img :src="src" alt="tissue" data-testid="tissue" :data-frame="frame"
         :style="'width: 100%; max-width: ' + max_width + 'px; aspect-ratio: ' + cols + ' / ' +
                 rows + '; image-rendering: pixelated; cursor: crosshair; border: 1px solid #bbb'"
         @mousemove="move" @mouseleave="leave" @click="pick" @load="loaded" />
  </div>
</template>
<script>
module.exports = {
  methods: {
    site(e) {
      const r = e.target.getBoundingClientRect();
      const c = Math.floor((e.clientX - r.left) / r.width * this.cols);
      const row = Math.floor((e.clientY - r.top) / r.height * this.rows);
      return {column: Math.min(Math.max(c, 0), this.cols - 1),
              row: Math.min(Math.max(row, 0), this.rows - 1)};
    },
    move(e) {
      // at most ~10 messages a second, and only when the site changes
      const s = this.site(e);
      if (this.last && this.last.column === s.column && this.last.row === s.row) return;
      this.last = s;
      if (this.timer) return;
      this.timer = setTimeout(() => { this.timer = null; this.hover(this.last); }, 100);
    },
    leave() { this.last = null; },
    pick(e) { this.select(this.site(e)); },
    loaded() {
      // frames shown in this browser tab (read by the benchmark and the browser tests)
      window.abmFrames = (window.abmFrames || 0) + 1;
    },
  },
};
</script>
"""


class TissueWidget(v.VuetifyTemplate):
    """An <img> of the tissue that reports the site under the mouse (hover) and clicks."""

    template = traitlets.Unicode(TISSUE_TEMPLATE).tag(sync=True)
    src = traitlets.Unicode("").tag(sync=True)
    cols = traitlets.Int(100).tag(sync=True)
    rows = traitlets.Int(100).tag(sync=True)
    frame = traitlets.Int(0).tag(sync=True)
    max_width = traitlets.Int(620).tag(sync=True)
    on_hover = traitlets.Callable(None, allow_none=True)
    on_select = traitlets.Callable(None, allow_none=True)

    def vue_hover(self, data):
        if self.on_hover is not None and data:
            self.on_hover(data)

    def vue_select(self, data):
        if self.on_select is not None and data:
            self.on_select(data)


# --- charts ------------------------------------------------------------------------------
def _thin(n: int) -> np.ndarray:
    if n <= MAX_CHART_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_CHART_POINTS).round().astype(int))


def _dose_marks(doses: list[dict]) -> dict:
    labels = {name: cls.label for name, cls in TREATMENTS.items()}
    return {
        "symbol": "none",
        "silent": True,
        "lineStyle": {"type": "dashed", "color": "#555"},
        "label": {"formatter": "{b}", "fontSize": 10},
        "data": [{"xAxis": round(d["day"], 3), "name": labels.get(d["therapy"], d["therapy"])}
                 for d in doses],
    }


def _line_chart(title: str, days: list, series: dict[str, tuple[list, str]], doses: list,
                y_name: str = "", y_max: float | None = None, log_axis: bool = False) -> dict:
    rows = [[d, *vals] for d, *vals in zip(days, *(s[0] for s in series.values()), strict=True)]
    out_series = []
    for i, (name, (_, colour)) in enumerate(series.items()):
        s = {"name": name, "type": "line", "showSymbol": False, "encode": {"x": 0, "y": i + 1},
             "lineStyle": {"width": 2}, "itemStyle": {"color": colour}}
        if i == 0 and doses:
            s["markLine"] = _dose_marks(doses)
        out_series.append(s)
    y_axis = {"type": "log" if log_axis else "value", "name": y_name, "scale": False}
    if y_max is not None:
        y_axis.update(min=0, max=y_max)
    return {
        "animation": False,
        "title": {"text": title, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 22, "textStyle": {"fontSize": 11}},
        "grid": {"top": 70, "left": 50, "right": 30, "bottom": 30},
        "dataset": {"source": rows},
        "xAxis": {"type": "value", "name": "day", "nameLocation": "end", "min": 0},
        "yAxis": y_axis,
        "series": out_series,
    }


def chart_options(snapshot: dict[str, Any]) -> dict[str, dict]:
    """ECharts options of the four live charts, from a ``Session.snapshot()``."""
    cols, doses = snapshot["vars"], snapshot["doses"]
    idx = _thin(len(cols["Day"]))

    def col(name: str, digits: int = 4) -> list:
        values = np.asarray(cols[name], dtype=float)[idx]
        return np.round(values, digits).tolist()

    days = col("Day", 3)
    c = {k: R.css(rgb) for k, rgb in R.KIND_RGB.items()}
    kinds = R.Kind
    populations = _line_chart(
        "Populations", days,
        {"cancer": (col("CancerCells"), R.css(R.CANCER_VISIBLE_RGB)),
         "T cells": (col("TCells"), c[kinds.TCELL]),
         "CAR-T": (col("CARTCells"), c[kinds.CART]),
         "Tregs": (col("Tregs"), c[kinds.TREG]),
         "MDSCs": (col("MDSCs"), c[kinds.MDSC])},
        doses, "cells",
    )
    traits = _line_chart(
        "Visibility and checkpoint", days,
        {"mean antigenicity": (col("MeanAntigenicity"), R.css(R.CANCER_VISIBLE_RGB)),
         "mean PD-L1": (col("MeanPDL1"), "#7b3294"),
         "PD-1 occupancy": (col("PD1Occupancy"), "#636363"),
         "antigen-negative fraction": (col("AntigenNegativeFraction"), "#1b9e77")},
        doses, "0-1", y_max=1.0,
    )
    kills = _line_chart(
        "Kills (cumulative)", days,
        {"kills": (col("Kills"), "#333333"),
         "exhausted T-cell fraction x 100": (
             (np.asarray(col("ExhaustedFraction")) * 100).round(2).tolist(), "#9ab8e8")},
        doses, "",
    )
    return {"populations": populations, "traits": traits, "clones": clone_chart(snapshot),
            "kills": kills}


def clone_chart(snapshot: dict[str, Any]) -> dict:
    """Stacked area of cancer cells per clone: the largest clones by name, the rest "other"."""
    history = snapshot["clones"]
    idx = _thin(len(history))
    sampled = [history[i] for i in idx]
    peak: dict[int, int] = {}
    for _, counts in sampled:
        for clone, n in counts.items():
            peak[clone] = max(peak.get(clone, 0), n)
    top = sorted(peak, key=peak.get, reverse=True)[:TOP_CLONES]
    days = [round(day, 3) for day, _ in sampled]
    columns = {f"clone {k}": ([counts.get(k, 0) for _, counts in sampled], R.clone_colour(k))
               for k in top}
    columns["other"] = ([sum(counts.values()) - sum(counts.get(k, 0) for k in top)
                         for _, counts in sampled], "#bbbbbb")
    # [count, day] pairs with encode x=1, y=0: with two value axes ECharts 5.4 stacks the
    # FIRST dimension, so the count must come first (day first stacks the days)
    series = [
        {"name": name, "type": "line", "stack": "all", "areaStyle": {}, "showSymbol": False,
         "lineStyle": {"width": 0}, "itemStyle": {"color": colour}, "encode": {"x": 1, "y": 0},
         "data": [[n, d] for d, n in zip(days, values, strict=True)]}
        for name, (values, colour) in columns.items()
    ]
    if snapshot["doses"]:
        series[0]["markLine"] = _dose_marks(snapshot["doses"])
    return {
        "animation": False,
        "title": {"text": "Clone composition", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 22, "type": "scroll", "textStyle": {"fontSize": 11}},
        "grid": {"top": 70, "left": 50, "right": 18, "bottom": 30},
        "xAxis": {"type": "value", "name": "day", "min": 0},
        "yAxis": {"type": "value", "name": "cancer cells"},
        "series": series,
    }


def status_text(session: Session) -> tuple[str, str]:
    """The status line (time and counts) and the performance line."""
    model, t = session.model, session.timing
    status = (
        f"day {model.day:.1f} · hour {model.steps} · cancer {model.n_cancer} · "
        f"T {model.n_tcells} · CAR-T {model.n_cart} · Tregs {model.n_tregs} · "
        f"MDSCs {model.n_mdscs} · kills {model.kills} · PD-1 occupancy "
        f"{model.pd1_occupancy:.2f} · seed {model.seed}"
    )
    perf = (
        f"{model.width}×{model.height} · model {t.model_ms:.1f} ms per frame "
        f"({t.steps_per_frame} step{'s' if t.steps_per_frame > 1 else ''}) · "
        f"draw {t.draw_ms:.1f} ms · whole frame {t.frame_ms:.1f} ms · "
        f"{t.fps:.1f} frames/s (server)"
    )
    return status, perf


def picked_text(session: Session, site: tuple[int, int]) -> str:
    with session.lock:
        return "Selected " + R.describe_site(session.model, *site)


# --- UI state ------------------------------------------------------------------------------
CHARTS = ("populations", "clones", "traits", "kills")


class Ui:
    """Everything one browser session's page holds: the session, its reactive state, and the
    live widgets.

    The live widgets (tissue image, status lines, colour bar, selected site, charts) are plain
    widgets created once per session and placed in the page as they are: the component tree
    does not own their values, so ``push`` can update them directly from the play loop (a
    re-render of the tree costs ~50 ms and would re-apply stale values to widgets it owns).
    Everything else is ordinary Solara components reading the reactive variables below.
    """

    def __init__(self, session: Session, problem: str | None = None):
        self.session = session
        self.frame = solara.reactive(0)  # bumped when the model changed outside the play loop
        self.generation = solara.reactive(session.generation)  # rebuilds restart the loop
        self.playing = solara.reactive(False)
        self.message: solara.Reactive[tuple[str, str] | None] = solara.reactive(
            ("error", problem) if problem else None
        )
        self.scenario = solara.reactive(session.scenario)
        self.raw = solara.reactive(dict(session.values))  # values as entered, used on Reset
        self.seed_text = solara.reactive(str(session.model.seed))
        self.speed = solara.reactive(30)  # frames per second at most
        self.steps_per_frame = solara.reactive(1)
        self.colour_by = solara.reactive("antigenicity")
        self.overlay = solara.reactive("none")
        self.dose_scale = solara.reactive(1.0)  # treatment buttons give this x the standard dose
        self.hover = solara.reactive("")
        self.picked: solara.Reactive[tuple[int, int] | None] = solara.reactive(None)

        self.tissue = TissueWidget(on_hover=self.guard(lambda d: self.site(d, False)),
                                   on_select=self.guard(lambda d: self.site(d, True)))
        self.status = v.Html(tag="span", children=[""], class_="abm-status",
                             style_="font-weight: 500")
        self.perf = v.Html(tag="span", children=[""], class_="abm-perf",
                           style_="font-size: 12px; color: #666")
        self.colourbar = solara.widgets.HTML(tag="div", unsafe_innerHTML="",
                                             attributes={"class": "abm-colourbar",
                                                         "style": "font-size: 12px"})
        self.picked_text = v.Html(tag="span", children=[""], class_="abm-picked",
                                  style_="font-size: 12px")
        self.charts = {
            key: EchartsWidget(
                option={}, responsive=True,
                attributes={"style": "height: 280px; width: 100%",
                            "class": f"abm-chart abm-chart-{key}"},
            )
            for key in CHARTS
        }
        self.push(charts=True)

    def widgets(self) -> list:
        return [self.tissue, self.status, self.perf, self.colourbar, self.picked_text,
                *self.charts.values()]

    def close(self) -> None:
        for widget in self.widgets():
            widget.close()

    # --- showing the model ----------------------------------------------------------------
    def push(self, charts: bool = True) -> None:
        """Show the current model in the live widgets (drawing happens here)."""
        session = self.session
        src, frame = session.draw(self.colour_by.value, self.overlay.value)
        model = session.model
        self.tissue.src = src
        self.tissue.cols, self.tissue.rows = model.width, model.height
        self.tissue.frame += 1
        status, perf = status_text(session)
        self.status.children = [status]
        self.perf.children = [perf]
        self.colourbar.unsafe_innerHTML = colourbar_html(frame)
        picked = self.picked.value
        self.picked_text.children = [picked_text(session, picked) if picked else ""]
        if charts:
            for key, option in chart_options(session.snapshot()).items():
                self.charts[key].option = option

    def changed(self) -> None:
        """The model changed outside the play loop: show it, and refresh the components that
        read model state (dose log, messages)."""
        self.push(charts=True)
        self.frame.set(self.frame.value + 1)

    def error(self, text: str) -> None:
        self.message.set(("error", text))

    def info(self, text: str) -> None:
        self.message.set(("info", text))

    def guard(self, action: Callable[..., Any]) -> Callable[..., None]:
        """Wrap an event handler: a bad value shows a message, never a traceback."""

        def handler(*args: Any) -> None:
            try:
                action(*args)
            except ValueError as err:
                self.error(str(err))
            except Exception as err:  # noqa: BLE001 - the page must survive any click
                log.exception("dashboard action failed")
                self.error(f"unexpected error ({type(err).__name__}): {err}")

        return handler

    # --- actions ---------------------------------------------------------------------------
    def step(self) -> None:
        if self.playing.value:
            return
        if not self.session.advance(1):
            self.info("the tumour is gone: press Reset (or pick a scenario) to start again")
        self.changed()

    def toggle_play(self) -> None:
        if not self.playing.value and not self.session.model.running:
            self.info("the tumour is gone: press Reset to start again")
            return
        self.playing.set(not self.playing.value)

    def rebuild(self, values: dict[str, Any], seed: int | str) -> None:
        """Stop playing and build a new model; on a bad value keep the old one."""
        self.playing.set(False)
        self.session.build(values, seed)
        self.seed_text.set(str(self.session.model.seed))
        self.message.set(None)
        self.picked.set(None)
        self.generation.set(self.session.generation)
        self.changed()

    def reset(self) -> None:
        values = P.validate(dict(self.raw.value))
        self.rebuild({**P.defaults(), **values}, P.validate_rng(self.seed_text.value))

    def fresh_seed(self) -> None:
        self.seed_text.set(str(new_seed()))
        self.reset()

    def pick_scenario(self, name: str) -> None:
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}")
        values = scenario_values(name)
        self.scenario.set(name)
        self.session.scenario = name
        self.raw.set(dict(values))
        self.rebuild(values, P.validate_rng(self.seed_text.value))

    def set_param(self, name: str, value: Any) -> None:
        self.raw.set({**self.raw.value, name: value})

    def set_view(self, colour_by: str | None = None, overlay: str | None = None) -> None:
        if colour_by is not None:
            self.colour_by.set(colour_by)
        if overlay is not None:
            self.overlay.set(overlay)
        self.push(charts=False)

    def treat(self, therapy: str) -> None:
        text = self.session.administer(therapy, self.dose_scale.value)
        self.info(text)
        self.changed()

    def site(self, data: dict, pick: bool) -> None:
        model = self.session.model
        x, y = R.site_from_pixel(model, data["column"], data["row"])
        if pick:
            self.picked.set((x, y))
            self.picked_text.children = [picked_text(self.session, (x, y))]
        else:
            with self.session.lock:
                text = R.describe_site(model, x, y)
            self.hover.set(text)

    # --- the play loop (runs in a thread per session) ---------------------------------------
    def play_loop(self, cancel: threading.Event) -> None:
        session = self.session
        generation = session.generation
        last_plot = 0.0
        try:
            while self.playing.value and not cancel.is_set():
                start = time.perf_counter()
                if not session.advance(max(1, int(self.steps_per_frame.value)), generation):
                    break
                now = time.perf_counter()
                charts = now - last_plot >= PLOT_INTERVAL_S
                if charts:
                    last_plot = now
                self.push(charts)
                session.timing.frame(time.perf_counter() - start)
                if not session.model.running:
                    self.playing.set(False)
                    self.info(f"the tumour is gone (day {session.model.day:.1f})")
                    break
                wait = 1.0 / max(1, self.speed.value) - (time.perf_counter() - start)
                if wait > 0:
                    cancel.wait(wait)
        except Exception as err:  # noqa: BLE001
            log.exception("play loop failed")
            self.playing.set(False)
            self.error(f"stopped: {type(err).__name__}: {err}")
        finally:
            if generation == session.generation:
                try:
                    self.changed()  # final charts and the components that read model state
                except Exception:  # noqa: BLE001 - e.g. the tab was closed meanwhile
                    log.debug("final refresh failed", exc_info=True)


def colourbar_html(frame: R.Frame) -> str:
    if frame.overlay is None:
        return ""
    spec = frame.overlay
    return (f'{spec.label}: 0 <img src="{R.colourbar_png(spec.cmap)}" width="200" height="10" '
            f'style="vertical-align: middle"> {frame.vmax:.3g} {spec.unit}')


def session_from_query(search: str | None) -> tuple[Session, str | None]:
    """A session from the page's query string, e.g. ``?scenario=escape&seed=3&width=200``.

    Any parameter of ``abm.params`` can be given; a bad value gives the default session and
    a message saying what was wrong (links are shared in class, typos happen).
    """
    from urllib.parse import parse_qsl

    query = dict(parse_qsl(search or "", keep_blank_values=True))
    try:
        scenario = query.pop("scenario", DEFAULT_SCENARIO)
        if scenario not in SCENARIOS:
            raise ValueError(
                f"unknown scenario {scenario!r}: expected one of {', '.join(SCENARIOS)}"
            )
        seed = query.pop("seed", query.pop("rng", None))
        values = {**scenario_values(scenario), **P.validate(query)}
        return Session(scenario, values, None if seed is None else P.validate_rng(seed)), None
    except ValueError as err:
        return Session(), f"link ignored: {err}"


def use_ui(session: Session | None, query: str | None = None) -> Ui:
    """This session's ``Ui``, made once per browser session (never shared between them)."""

    def make() -> Ui:
        if session is not None:
            return Ui(session)
        return Ui(*session_from_query(query))

    ui = solara.use_memo(make, [])
    solara.use_effect(lambda: ui.close, [])  # close the live widgets with the page
    return ui


# --- components ----------------------------------------------------------------------------
@solara.component
def Player(ui: Ui):
    """Runs the play loop in a thread while playing (restarted on Reset)."""
    solara.use_thread(ui.play_loop, dependencies=[ui.playing.value, ui.generation.value],
                      intrusive_cancel=False)


@solara.component
def RunControls(ui: Ui):
    playing = ui.playing.value
    Player(ui)
    with solara.Row(gap="6px"):
        solara.Button("Step", icon_name="mdi-step-forward", on_click=ui.guard(ui.step),
                      disabled=playing, color="primary", outlined=True)
        solara.Button("Pause" if playing else "Play",
                      icon_name="mdi-pause" if playing else "mdi-play",
                      on_click=ui.guard(ui.toggle_play), color="primary")
        solara.Button("Reset", icon_name="mdi-restore", on_click=ui.guard(ui.reset),
                      color="primary", outlined=True)
    solara.SliderInt(f"speed: at most {ui.speed.value} frames/s", value=ui.speed, min=1,
                     max=30)
    solara.SliderInt(f"{ui.steps_per_frame.value} hour(s) per frame", value=ui.steps_per_frame,
                     min=1, max=24)


@solara.component
def SeedControls(ui: Ui):
    with solara.Row(gap="6px", style={"align-items": "center"}):
        solara.InputText("seed", value=ui.seed_text, continuous_update=False,
                         style={"max-width": "140px"})
        solara.Button("new seed", icon_name="mdi-dice-5", on_click=ui.guard(ui.fresh_seed),
                      text=True)
    solara.Text("The seed is used on Reset; the same seed and parameters give the same run.",
                style={"font-size": "12px", "color": "#666"})


@solara.component
def TreatmentButtons(ui: Ui):
    with solara.Row(gap="6px", style={"flex-wrap": "wrap"}):
        for name, cls in TREATMENTS.items():
            solara.Button(cls.label, on_click=ui.guard(lambda name=name: ui.treat(name)),
                          color="deep-orange", dark=True, small=True, classes=["abm-treat"])
    solara.SliderFloat("dose (x standard)", value=ui.dose_scale, min=0.25, max=4.0, step=0.25,
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
def ParamPanel(ui: Ui):
    ui.frame.value  # noqa: B018 - subscribe: the model may have been rebuilt
    raw = ui.raw.value
    try:
        pending = P.validate(raw) != {k: ui.session.model.p[k] for k in raw}
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
                         lambda value, name=p.name: ui.set_param(name, value))


@solara.component
def ScenarioPicker(ui: Ui):
    solara.Select("scenario", values=list(SCENARIOS), value=ui.scenario.value,
                  on_value=ui.guard(ui.pick_scenario))


def lesson_markdown(name: str) -> str:
    spec = SCENARIOS[name]
    text = spec.get("lesson", "")
    parts = re.split(r"\s*(Notice:|Try:)\s*", text)
    out = [f"**{name}**: {spec.get('summary', '')}", "", parts[0]]
    for head, body in zip(parts[1::2], parts[2::2], strict=False):
        title = "Things to notice" if head.startswith("Notice") else "Things to try"
        out += ["", f"*{title}:* {body}"]
    return "\n".join(out)


@solara.component
def InfoPanel(ui: Ui):
    tab, set_tab = solara.use_state(0)
    with solara.Card(style={"max-width": "560px"}):
        with solara.lab.Tabs(value=tab, on_value=set_tab):
            solara.lab.Tab("Lesson")
            solara.lab.Tab("About")
        text = lesson_markdown(ui.scenario.value) if tab == 0 else ABOUT
        # plain HTML from the markdown package: solara.Markdown would fetch KaTeX from a CDN
        # that solara-assets does not bundle, and the page must work offline
        solara.HTML("div", unsafe_innerHTML=markdown.markdown(text),
                    classes=["abm-info"], style="font-size: 14px")


@solara.component
def Legend(colour_by: str):
    items = "".join(
        f'<span style="margin-right:10px;white-space:nowrap"><span style="display:inline-block;'
        f'width:11px;height:11px;background:{colour};border:1px solid #888;'
        f'vertical-align:middle"></span> {label}</span>'
        for label, colour in R.legend(colour_by)
    )
    solara.HTML("div", unsafe_innerHTML=items, style="font-size: 12px; line-height: 1.8",
                classes=["abm-legend"])


@solara.component
def TissueView(ui: Ui):
    solara.Column(children=[ui.tissue], gap="0px")
    Legend(ui.colour_by.value)
    solara.Column(children=[ui.colourbar, ui.picked_text], gap="2px")
    solara.Text(ui.hover.value or "Hover over the tissue to see what is at a site; click to "
                "follow a site.", style={"font-size": "12px", "color": "#444"},
                classes=["abm-hover"])


@solara.component
def ViewControls(ui: Ui):
    choices = R.overlays(ui.session.model)
    labels = {spec.label: key for key, spec in choices.items()}
    current = choices.get(ui.overlay.value, choices["none"]).label
    with solara.Row(gap="12px", style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.ToggleButtonsSingle(value=ui.colour_by.value, values=list(R.COLOUR_BY),
                                   on_value=ui.guard(lambda c: ui.set_view(colour_by=c)),
                                   dense=True)
        solara.Select("overlay", values=list(labels), value=current,
                      on_value=ui.guard(lambda label: ui.set_view(overlay=labels[label])),
                      style={"max-width": "300px"})


@solara.component
def StatusBar(ui: Ui):
    ui.frame.value  # noqa: B018 - subscribe: refresh when the model changed
    solara.Column(children=[ui.status, ui.perf], gap="0px")
    if not ui.session.model.running:
        solara.Success("The tumour is gone.", dense=True)


@solara.component
def Charts(ui: Ui):
    solara.GridFixed(columns=2, children=[ui.charts[key] for key in CHARTS])


@solara.component
def DoseLog(ui: Ui):
    ui.frame.value  # noqa: B018 - subscribe
    doses = list(ui.session.model.dose_log)
    if not doses:
        return
    lines = [f"day {d['day']:.1f}: {TREATMENTS[d['therapy']].label} ({d['dose']:g})"
             + (" scheduled" if d["scheduled"] else "") for d in doses[-6:]]
    solara.Text("Doses: " + "; ".join(lines), style={"font-size": "12px"},
                classes=["abm-doses"])


@solara.component
def Exports(ui: Ui):
    session = ui.session

    def csv() -> bytes:
        with session.lock:
            return R.timeseries_csv(session.model).encode()

    def png() -> bytes:
        with session.lock:
            m = session.model
            title = (f"{ui.scenario.value} · seed {m.seed} · day {m.day:.1f} · "
                     f"{m.n_cancer} cancer cells")
            return R.export_png(m, ui.colour_by.value, ui.overlay.value, title)

    stem = f"abm-{ui.scenario.value}-seed{ui.seed_text.value}"
    with solara.Row(gap="6px", style={"flex-wrap": "wrap"}):
        solara.FileDownload(csv, filename=f"{stem}.csv", label="time series (CSV)",
                            mime_type="text/csv")
        solara.FileDownload(png, filename=f"{stem}.png", label="view (PNG)",
                            mime_type="image/png")


@solara.component
def Message(ui: Ui):
    msg = ui.message.value
    if msg is None:
        return
    kind, text = msg
    with solara.v.Alert(type="error" if kind == "error" else "info", dense=True, text=True,
                        outlined=True, class_=f"abm-message abm-message-{kind}",
                        dismissible=True, v_model=True,
                        on_v_model=lambda shown: None if shown else ui.message.set(None)):
        solara.v.Html(tag="span", children=[text])


@solara.component
def Dashboard(session: Session | None = None, query: str | None = None):
    """The whole page for one session (``session`` is for tests; the page makes its own from
    the URL's query string)."""
    ui = use_ui(session, query)
    solara.Title("abm: tumour microenvironment")
    with solara.AppBar():
        solara.AppBarTitle("abm · tumour microenvironment")
    # our own two columns rather than solara.Sidebar: always visible on a projector, and the
    # same widget tree in the component tests as in the browser
    with solara.Row(gap="12px", style={"align-items": "flex-start", "padding": "8px"}):
        with solara.Column(gap="8px", style={"width": "340px", "min-width": "300px",
                                              "flex": "0 0 340px"}, classes=["abm-sidebar"]):
            with solara.Card("Run", margin=0):
                RunControls(ui)
            with solara.Card("Scenario", margin=0):
                ScenarioPicker(ui)
                SeedControls(ui)
            with solara.Card("Treat now", margin=0):
                TreatmentButtons(ui)
            with solara.Card("Export", margin=0):
                Exports(ui)
            with solara.Card(margin=0):
                ParamPanel(ui)
        with solara.Column(style={"flex": "1", "min-width": "0"}):
            Message(ui)
            StatusBar(ui)
            with solara.Row(gap="16px", style={"flex-wrap": "wrap",
                                                "align-items": "flex-start"}):
                with solara.Column(style={"min-width": "320px", "max-width": "640px",
                                          "flex": "1"}):
                    ViewControls(ui)
                    TissueView(ui)
                    DoseLog(ui)
                InfoPanel(ui)
            Charts(ui)


@solara.component
def Page():
    Dashboard(query=solara.use_router().search)
