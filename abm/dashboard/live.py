"""The live widgets: what changes every frame (tissue image, status lines, colour bar, followed
site, charts), made once per browser tab and updated in place by ``LiveView.show``.

They are plain widgets placed in the page as they are: the component tree does not own their
values, so the play thread can update them directly (a re-render of the tree costs ~50 ms and
would re-apply stale values to widgets it owns).
"""

from __future__ import annotations

from collections.abc import Callable

import ipyvuetify as v
import solara
import traitlets
from solara.components.echarts import EchartsWidget

from abm.dashboard import render as R
from abm.dashboard.charts import CHARTS, chart_options, large_text
from abm.dashboard.session import Session

TISSUE_TEMPLATE = """
<template>
  <div class="abm-tissue" style="line-height: 0">
    <img :src="src" :alt="testid" :data-testid="testid" :data-frame="frame"
         :style="'width: 100%; max-width: ' + max_width + 'px; aspect-ratio: ' + cols + ' / ' +
                 rows + '; image-rendering: pixelated; cursor: crosshair; border: 1px solid #bbb;' +
                 ' display: block'"
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
    leave() { this.last = null; this.hover(null); },
    pick(e) { this.select(this.site(e)); },
    loaded() {
      // frames shown in this browser tab (read by the benchmark and the browser tests)
      if (this.testid === 'tissue') window.abmFrames = (window.abmFrames || 0) + 1;
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
    max_width = traitlets.Int(1000).tag(sync=True)  # the tissue column caps it (app.CSS)
    testid = traitlets.Unicode("tissue").tag(sync=True)  # "twin" for the untreated twin
    on_hover = traitlets.Callable(None, allow_none=True)
    on_select = traitlets.Callable(None, allow_none=True)

    def vue_hover(self, data):
        if self.on_hover is not None:
            self.on_hover(data or None)  # None: the mouse left the image

    def vue_select(self, data):
        if self.on_select is not None and data:
            self.on_select(data)


class LiveView:
    """One tab's live widgets, and how the session is shown in them."""

    def __init__(self, on_hover: Callable[[dict], None], on_select: Callable[[dict], None]):
        self.tissue = TissueWidget(on_hover=on_hover, on_select=on_select)
        self.twin = TissueWidget(testid="twin")  # Compare: the untreated twin
        self.status = v.Html(tag="span", children=[""], class_="abm-status",
                             style_="font-weight: 500")
        # their text sizes are in the page's CSS (app.CSS), larger with "large text"
        self.perf = v.Html(tag="span", children=[""], class_="abm-perf")
        self.colourbar = solara.widgets.HTML(tag="div", unsafe_innerHTML="",
                                             attributes={"class": "abm-colourbar"})
        self.picked_text = v.Html(tag="span", children=[""], class_="abm-picked")
        self.hover_text = v.Html(tag="div", children=[""], class_="abm-hover")
        self.charts = {
            key: EchartsWidget(
                option={}, responsive=True,
                attributes={"style": "height: 300px; width: 100%",
                            "class": f"abm-chart abm-chart-{key}"},
            )
            for key in CHARTS
        }

    def widgets(self) -> list:
        return [self.tissue, self.twin, self.status, self.perf, self.colourbar, self.picked_text,
                self.hover_text, *self.charts.values()]

    def close(self) -> None:
        for widget in self.widgets():
            widget.close()

    def show(self, session: Session, colour_by: str, overlay: str,
             picked: tuple[int, int] | None, charts: bool = True, show_cells: bool = True,
             hovered: tuple[int, int] | None = None, large: bool = False) -> None:
        """Draw the session's model into the widgets (the charts only if ``charts``; their
        text large with ``large``)."""
        src, frame = session.draw(colour_by, overlay, show_cells)
        model = session.model
        self.tissue.src = src
        self.tissue.cols, self.tissue.rows = model.width, model.height
        self.tissue.frame += 1
        twin = session.draw_twin(colour_by, overlay, show_cells, frame.vmax)
        if twin is not None:
            self.twin.src = twin
            self.twin.cols, self.twin.rows = model.width, model.height
            self.twin.frame += 1
        status, perf = status_text(session, large)
        self.status.children = [status]
        self.perf.children = [perf]
        self.colourbar.unsafe_innerHTML = colourbar_html(frame)
        self.show_picked(session, picked)
        if hovered is not None:  # what is under the mouse now, not when it last moved
            self.show_hover(session, hovered)
        if charts:
            for key, option in chart_options(session.snapshot()).items():
                self.charts[key].option = large_text(option) if large else option

    def show_hover(self, session: Session, site: tuple[int, int] | None) -> None:
        """The line about the site under the mouse (a hint when the mouse is elsewhere)."""
        self.hover_text.children = [
            session.describe(*site) if site else
            "Hover over the tissue to see what is at a site; click to follow a site."
        ]

    def show_picked(self, session: Session, site: tuple[int, int] | None) -> None:
        """The line about the followed site (empty when none is followed)."""
        self.picked_text.children = ["Selected " + session.describe(*site) if site else ""]


def status_text(session: Session, large: bool = False) -> tuple[str, str]:
    """The status line (time and counts) and the performance line. In ``large`` text the
    status line says the same in fewer words ("PD-1 blocked 89%"; "kills" while only T cells
    kill), so that it stays one line across a 1280 x 720 projector (``app.CSS``)."""
    model, t = session.model, session.timing
    p = model.p
    # the cells a scenario leaves out (no CAR-T given, no macrophages or NK cells recruited)
    # are left out of the line too, which then fits a projector's width in large text
    cart = model.n_cart or p["cart_start_day"] is not None or any(
        dose["therapy"] == "cart" for dose in model.dose_log)
    nk = model.n_nk or p["nk_influx"] > 0  # NK cells recruited, or still in the tissue
    status = (
        f"day {model.day:.1f} · hour {model.steps} · cancer {model.n_cancer} · "
        f"T cells {model.n_tcells} · "
        + (f"CAR-T {model.n_cart} · " if cart else "")
        + f"Tregs {model.n_tregs} · MDSCs {model.n_mdscs} · "
        + (f"macrophages {model.n_macrophages} (M2 {model.m2_fraction:.0%}) · "
           if model.n_macrophages or p["macrophage_influx"] > 0 else "")
        + (f"NK {model.n_nk} · " if nk else "")
        + ("kills" if large and not (nk or model.nk_kills) else "T-cell kills")
        + f" {model.kills}"
        + (f" · NK kills {model.nk_kills}" if model.nk_kills or model.n_nk else "")
        + (" · PD-1 blocked " if large else " · PD-1 blocked by anti-PD-1 ")
        + f"{model.pd1_occupancy:.0%} · seed {model.seed}"
    )
    perf = (
        f"{model.width}×{model.height} · model {t.model_ms:.1f} ms per frame "
        f"({t.steps_per_frame} step{'s' if t.steps_per_frame > 1 else ''}) · "
        f"draw {t.draw_ms:.1f} ms · whole frame {t.frame_ms:.1f} ms · "
        f"{t.fps:.1f} frames/s (server)"
    )
    return status, perf


def colourbar_html(frame: R.Frame) -> str:
    """The overlay's name, and its colour bar from 0 to the top of the scale, with the unit."""
    if frame.overlay is None:
        return ""
    spec = frame.overlay
    return (f'{spec.label}: 0 <img src="{R.colourbar_png(spec.cmap)}" width="160" height="10" '
            f'style="vertical-align: middle"> {frame.vmax:.2g} {spec.unit}')
