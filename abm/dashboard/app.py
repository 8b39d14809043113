"""The page: its layout, and the components that show the model (status, tissue, legend,
lesson, charts, dose list, messages).

``Page`` is what ``abm serve`` (``solara run abm.server``) shows; ``Dashboard`` is the same page
for a given session (the component tests use it).
"""

from __future__ import annotations

import re

import ipyvuetify as v
import markdown
import solara
import traitlets

from abm.agents import TREATMENTS
from abm.dashboard import render as R
from abm.dashboard.charts import CHARTS
from abm.dashboard.controls import (
    BasicParams,
    Exports,
    ParamPanel,
    RunControls,
    ScenarioPicker,
    SeedControls,
    TreatmentButtons,
    ViewControls,
    page_link,
)
from abm.dashboard.session import Session
from abm.dashboard.tab import Tab, use_tab
from abm.scenarios import SCENARIOS

ABOUT = """
**What this is.** A 2-D slice of a solid tumour and its immune microenvironment, one cell per
15 µm site, one step per hour. Cancer cells divide from the rim and mutate; oxygen diffuses
from the vessels, and starved cells stop dividing and die, leaving a necrotic core. Cytotoxic
T cells are recruited, follow chemokine, recognise antigens, kill and exhaust; regulatory
T cells (Tregs) and myeloid-derived suppressor cells (MDSCs) suppress them; IFN-γ induces
PD-L1, the brake that switches T cells off. Some lessons add macrophages (M1 or M2) and NK
cells. Treatments (anti-PD-1, anti-CTLA-4, a vaccine, CAR-T cells, anti-CSF-1R) act on
a schedule or when you press their button.

**Caveats.** This is a teaching and research model, **not for clinical decisions**. It is a
caricature: two dimensions; vessels never grow (no angiogenesis) and oxygen is the only
nutrient; priming in the lymph node is a compartment without cells or space, switched on in
one lesson (progenitor_burst); drugs are well-mixed; many rates are modelling choices,
calibrated to reproduce qualitative facts (immunoediting, adaptive resistance, antigen-loss
relapse), not any patient or cell line. Read trends across several seeds, not single runs.
Sources for each parameter are in its tooltip and in `abm params`.
"""


def lesson_markdown(name: str) -> str:
    """A scenario's lesson: what it shows, the days to watch, the steps to follow (like the Info
    tab and "things to try" of a NetLogo model), things to notice and to try."""
    spec = SCENARIOS[name]
    text = spec.get("lesson", "")
    parts = re.split(r"\s*(Notice:|Try:)\s*", text)
    out = [f"**{name}**: {spec.get('summary', '')}", ""]
    if "watch_days" in spec:
        out += [f"*Watch:* days 0 to {spec['watch_days']} (press **Run to day "
                f"{spec['watch_days']}**).", ""]
    for i, step in enumerate(spec.get("steps", ()), 1):
        out.append(f"{i}. {step}")
    out += ["", parts[0]]
    for head, body in zip(parts[1::2], parts[2::2], strict=False):
        title = "Things to notice" if head.startswith("Notice") else "Things to try"
        out += ["", f"*{title}:* {body}"]
    return "\n".join(out)


@solara.component
def InfoPanel(tab: Tab):
    shown, set_shown = solara.use_state(0)  # which of the card's tabs: Lesson or About
    with solara.Card(margin=0, classes=["abm-info-card"]):
        with solara.lab.Tabs(value=shown, on_value=set_shown):
            solara.lab.Tab("Lesson")
            solara.lab.Tab("About")
        text = lesson_markdown(tab.scenario.value) if shown == 0 else ABOUT
        # plain HTML from the markdown package: solara.Markdown would fetch KaTeX from a CDN
        # that solara-assets does not bundle, and the page must work offline
        solara.HTML("div", unsafe_innerHTML=markdown.markdown(text), classes=["abm-info"])


@solara.component
def Legend(tab: Tab):
    entries = R.legend(tab.colour_by.value, tab.overlay.value, tab.show_cells.value,
                       R.has_progenitors(tab.session.model))
    items = "".join(
        f'<span class="abm-legend-item"><span class="abm-swatch" style="background:{colour}">'
        f'</span> {label}</span>'
        for label, colour in entries
    )
    # 14-15 entries: three compact rows under the tissue keep it on a 1280x720 projector screen
    # (sizes in CSS)
    solara.HTML("div", unsafe_innerHTML=items, classes=["abm-legend"])


@solara.component
def TissueView(tab: Tab):
    if tab.compare.value:  # the run and its untreated twin, side by side
        with solara.Row(gap="6px"):
            # short titles: one line each in large text on a 1280 x 720 projector (a longer
            # one was cut to "untreated twin (same seed, no tr...")
            for title, widget in (("your run", tab.live.tissue),
                                  ("untreated twin (same seed)", tab.live.twin)):
                with solara.Column(gap="0px", style={"flex": "1 1 0", "min-width": "0"}):
                    solara.Text(title, classes=["abm-twin-title"])
                    solara.Column(children=[widget], gap="0px")
    else:
        solara.Column(children=[tab.live.tissue], gap="0px")
    Legend(tab)
    solara.Column(children=[tab.live.colourbar, tab.live.picked_text, tab.live.hover_text],
                  gap="2px")


@solara.component
def StatusBar(tab: Tab):
    tab.frame.value  # noqa: B018 - subscribe: refresh when the model changed
    solara.Column(children=[tab.live.status, tab.live.perf], gap="0px",
                  classes=["abm-status-bar"])
    session = tab.session
    model = session.model
    if not model.running:  # the one message for a cleared tumour
        day = session.cleared_day if session.cleared_day is not None else model.day
        again = "press Reset or pick a scenario to start again."
        text = (f"Your tumour is gone (day {day:.1f}); the untreated twin plays on. "
                f"P{again[1:]}" if session.active  # Compare
                else f"The tumour is gone (day {day:.1f}): {again}")
        solara.Success(text, dense=True, classes=["abm-cleared"])


@solara.component
def Charts(tab: Tab, keys: tuple[str, ...]):
    with solara.Row(gap="8px", style={"flex-wrap": "wrap"}):
        for key in keys:
            solara.Column(children=[tab.live.charts[key]], gap="0px",
                          style={"flex": "1 1 340px", "min-width": "0"})


@solara.component
def DoseLog(tab: Tab):
    tab.frame.value  # noqa: B018 - subscribe
    doses = list(tab.session.model.dose_log)
    if not doses:
        return
    lines = [f"day {d['day']:.1f}: {TREATMENTS[d['therapy']].label} ({d['dose']:g})"
             + (" scheduled" if d["scheduled"] else "") for d in doses[-6:]]
    solara.Text("Doses: " + "; ".join(lines), classes=["abm-doses"])


@solara.component
def Message(tab: Tab):
    msg = tab.message.value
    if msg is None:
        return
    kind, text = msg
    with solara.v.Alert(type="error" if kind == "error" else "info", dense=True, text=True,
                        outlined=True, class_=f"abm-message abm-message-{kind} ma-0",
                        dismissible=True, v_model=True,
                        on_v_model=lambda shown: None if shown else tab.message.set(None)):
        solara.v.Html(tag="span", children=[text])


# The layout, as CSS (a grid with named areas: the components alone cannot reorder for a
# phone). A projector (1280 x 720, and the 4:3 and 5:4 ones, 1024 x 768 and 1280 x 1024)
# shows the tissue, sized to the viewport's height but leaving the charts' column its 320 px
# beside it (``--abm-beside``: the row less that column and the gap), next to the population
# chart, with the run controls on the left and the status line above the tissue; a phone
# (412 px) stacks the run controls, then the status, the tissue and charts, then everything
# else, each full width. In large text the status line spans the page (one line at 1280 x
# 720: it wrapped in the tissue's column). With Compare the two tissues take the row, the
# view controls and charts below them, unless each can be 380 px beside the charts' column
# (a window at least 1467 px wide): beside them in large text they were 235 px each at
# 1280 x 720 and 147 px at 1024 x 768.
CSS = """
.abm-grid { display: grid; grid-template-columns: 340px minmax(0, 1fr);
            grid-template-rows: auto auto 1fr;
            grid-template-areas: "run status" "run main" "rest main";
            gap: 12px; align-items: start; padding: 8px; }
.abm-grid.abm-large { grid-template-areas: "status status" "run main" "rest main"; }
.abm-run { grid-area: run; } .abm-rest { grid-area: rest; } .abm-main { grid-area: main; }
.abm-status-area { grid-area: status; min-width: 0; }
.abm-tissue-col { flex: 0 1 min(1000px, calc(100vh - 250px), var(--abm-beside));
                  min-width: min(100%, 260px);
                  /* the row less the charts' column (320 px and the gap) when at least 280 px
                     are left for the tissue; else the whole row (the charts go below) */
                  --abm-beside: calc(100% - clamp(0px, (100% - 611px) * 1000, 332px)); }
.abm-side-col { flex: 1 1 320px; min-width: min(100%, 280px); }
/* Compare: two tissues as large as the screen's height leaves them (their titles above,
   the legend below), the charts below them */
.abm-tissue-col.abm-comparing { flex: 0 1 min(100%, calc(2 * (100vh - 250px) + 6px)); }
.abm-large .abm-tissue-col.abm-comparing {
  flex-basis: min(100%, calc(2 * (100vh - 290px) + 6px)); }
@media (min-width: 1467px) {  /* room for both tissues, 380 px or more, beside the charts */
  .abm-tissue-col.abm-comparing, .abm-large .abm-tissue-col.abm-comparing {
    flex: 1 1 min(calc(100% - 332px), calc(2 * (100vh - 250px) + 6px)); }
}
.abm-info-card ol { margin-bottom: 12px; }
.abm-info { font-size: 14px; }
.abm-legend { font-size: 11.5px; line-height: 1.55; }
.abm-legend-item { margin-right: 8px; white-space: nowrap; }
.abm-swatch { display: inline-block; width: 10px; height: 10px; border: 1px solid #888;
              vertical-align: middle; }
.abm-perf, .abm-colourbar, .abm-picked, .abm-doses { font-size: 12px; }
.abm-perf { color: #666; }
.abm-hover { font-size: 12px; color: #444; min-height: 2.6em; }
.abm-twin-title { font-size: 12px; font-weight: 500; white-space: nowrap; overflow: hidden;
                  text-overflow: ellipsis; }  /* one line: the two tissues stay level */
/* large text, for the back of a classroom (the app bar's switch, or large=1 in the link):
   what the class reads grows; the timing line, for the teacher, does not */
.abm-large .abm-status { font-size: 19px; }
.abm-large .abm-info { font-size: 17px; }
.abm-large .abm-legend { font-size: 15px; line-height: 1.5; }
.abm-large .abm-swatch { width: 13px; height: 13px; }
.abm-large .abm-colourbar, .abm-large .abm-picked, .abm-large .abm-doses,
.abm-large .abm-hover, .abm-large .abm-twin-title { font-size: 15px; }
.abm-large .abm-chart { height: 340px !important; }
.abm-large .abm-tissue-col { flex-basis: min(1000px, calc(100vh - 325px), var(--abm-beside)); }
.abm-large .v-btn { font-size: 15px !important; }
.abm-large .v-label, .abm-large .v-input input, .abm-large .v-select__selection,
.abm-large .abm-param-value { font-size: 16px !important; }
/* a parameter's explanation: a readable column, not the window's width */
.v-tooltip__content { max-width: 420px; }
/* messages: at the top of the column beside the tissue (they cover neither the tissue, nor
   its legend, nor the lesson); across the bottom of a phone's screen */
.abm-message { background: white !important; }
@media (min-width: 761px) and (max-width: 1466px) {
  /* Compare, its charts' column below the tissues (and off a projector's screen): over the
     foot of the run controls' column, where the button that gave the dose is */
  .abm-compare-on .abm-message { position: fixed; left: 8px; bottom: 8px; width: 340px;
                                 z-index: 20; box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25); }
}
@media (max-width: 760px) {
  .abm-message { position: fixed; left: 8px; right: 8px; bottom: 8px; z-index: 20;
                 box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25); }
  .abm-grid, .abm-grid.abm-large { grid-template-columns: minmax(0, 1fr);
                                   grid-template-rows: auto;
                                   grid-template-areas: "run" "status" "main" "rest"; }
  /* the charts go below the tissue anyway: it takes the width */
  .abm-tissue-col, .abm-large .abm-tissue-col { flex-basis: 100%; }
}
"""
ROW_STYLE = {"flex-wrap": "wrap", "align-items": "flex-start"}


@solara.component
def Sidebar(tab: Tab):
    with solara.Card("Scenario", margin=0):
        ScenarioPicker(tab)
        SeedControls(tab)
    with solara.Card(margin=0, classes=["abm-basic"]):
        BasicParams(tab)
    if not tab.teacher:  # a teacher's link keeps the class on the basic controls
        with solara.Details("Advanced: every parameter", expand=False):
            ParamPanel(tab)
    # on a class link too: downloading one's own run changes nothing, and the lesson on a
    # projector (README: /?scenario=escape&teacher=1) exports its CSV and PNG
    with solara.Card("Export", margin=0):
        Exports(tab)


ADDRESS_TEMPLATE = """
<template>
  <span style="display: none"></span>
</template>
<script>
module.exports = {
  mounted() { this.show(); },
  watch: { query() { this.show(); } },
  methods: {
    show() {
      // in place (no history entry): Back does not step through every Reset
      if (this.query && window.location.search !== this.query) {
        window.history.replaceState(window.history.state, "",
                                    window.location.pathname + this.query + window.location.hash);
      }
    },
  },
};
</script>
"""


class AddressWidget(v.VuetifyTemplate):
    """Keeps the browser's address bar at ``query`` (``history.replaceState``: no reload)."""

    template = traitlets.Unicode(ADDRESS_TEMPLATE).tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)


@solara.component
def AddressBar(tab: Tab):
    """The address bar follows the page (``page_link``): after a reload, or the one the page
    makes itself once a restarted server could not restore its session (``serving.
    configure_solara``), it opens again on the same scenario, seed, parameters, Compare and
    text size (from day 0), not on the link it was first opened with."""
    tab.frame.value  # noqa: B018 - subscribe: Reset, a scenario, an engine, Compare
    tab.large.value  # noqa: B018 - subscribe
    AddressWidget.element(query=page_link(tab))


@solara.component
def LargeTextSwitch(tab: Tab):
    """Large text for the back of a classroom: the legend, lesson, status and charts grow."""
    large = tab.large.value
    solara.Button("Normal text" if large else "Large text", icon_name="mdi-format-size",
                  text=True, on_click=tab.guard(lambda: tab.set_large(not large)),
                  classes=["abm-large-text"], style={"color": "white"})


@solara.component
def Dashboard(session: Session | None = None, query: str | None = None):
    """The whole page for one session (``session`` is for tests; the page makes its own from
    the URL's query string)."""
    tab = use_tab(session, query)
    solara.Title("abm: tumour microenvironment")
    solara.Style(CSS)
    with solara.AppBar():
        solara.AppBarTitle("abm · tumour microenvironment")
        if isinstance(tab, Tab):
            LargeTextSwitch(tab)
    if not isinstance(tab, Tab):  # the server's settings allow no model at all
        solara.Error(f"This dashboard cannot build a model: {tab}. Whoever runs the server "
                     "can fix it (docs/dashboard.md).")
        return
    AddressBar(tab)
    # our own grid rather than solara.Sidebar: always visible on a projector, and the
    # same widget tree in the component tests as in the browser
    with solara.Div(classes=["abm-grid", *(["abm-large"] if tab.large.value else []),
                             *(["abm-compare-on"] if tab.compare.value else [])]):
        with solara.Column(gap="8px", classes=["abm-run"]):
            with solara.Card("Run", margin=0):
                RunControls(tab)
            # under Run: on a projector both are on screen, so a dose is one click mid-run
            with solara.Card("Treat now", margin=0):
                TreatmentButtons(tab)
        with solara.Column(gap="8px", classes=["abm-rest"]):
            Sidebar(tab)
        with solara.Column(gap="0px", classes=["abm-status-area"]):
            StatusBar(tab)
        with solara.Column(gap="8px", classes=["abm-main"]):
            with solara.Row(gap="12px", style=ROW_STYLE):
                comparing = ["abm-comparing"] if tab.compare.value else []
                with solara.Column(gap="4px", classes=["abm-tissue-col", *comparing]):
                    TissueView(tab)
                    DoseLog(tab)
                with solara.Column(gap="8px", classes=["abm-side-col"]):
                    Message(tab)  # here (CSS): it does not move or cover the tissue
                    ViewControls(tab)  # here, so the tissue and its legend fit a projector
                    Charts(tab, ("populations",))
                    InfoPanel(tab)
            Charts(tab, tuple(k for k in CHARTS if k != "populations"))


@solara.component
def Page():
    Dashboard(query=solara.use_router().search)
