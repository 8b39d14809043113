"""The page: its layout, and the components that show the model (status, tissue, legend,
lesson, charts, dose list, messages).

``Page`` is what ``abm serve`` (``solara run abm.server``) shows; ``Dashboard`` is the same page
for a given session (the component tests use it).
"""

from __future__ import annotations

import re

import markdown
import solara

from abm.agents import TREATMENTS
from abm.dashboard import render as R
from abm.dashboard.charts import CHARTS
from abm.dashboard.controls import (
    Exports,
    ParamPanel,
    RunControls,
    ScenarioPicker,
    SeedControls,
    TreatmentButtons,
    ViewControls,
)
from abm.dashboard.session import Session
from abm.dashboard.tab import Tab, use_tab
from abm.scenarios import SCENARIOS

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
def InfoPanel(tab: Tab):
    shown, set_shown = solara.use_state(0)  # which of the card's tabs: Lesson or About
    with solara.Card(style={"max-width": "560px"}):
        with solara.lab.Tabs(value=shown, on_value=set_shown):
            solara.lab.Tab("Lesson")
            solara.lab.Tab("About")
        text = lesson_markdown(tab.scenario.value) if shown == 0 else ABOUT
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
def TissueView(tab: Tab):
    solara.Column(children=[tab.live.tissue], gap="0px")
    Legend(tab.colour_by.value)
    solara.Column(children=[tab.live.colourbar, tab.live.picked_text], gap="2px")
    solara.Text(tab.hover.value or "Hover over the tissue to see what is at a site; click to "
                "follow a site.", style={"font-size": "12px", "color": "#444"},
                classes=["abm-hover"])


@solara.component
def StatusBar(tab: Tab):
    tab.frame.value  # noqa: B018 - subscribe: refresh when the model changed
    solara.Column(children=[tab.live.status, tab.live.perf], gap="0px")
    if not tab.session.model.running:
        solara.Success("The tumour is gone.", dense=True)


@solara.component
def Charts(tab: Tab):
    solara.GridFixed(columns=2, children=[tab.live.charts[key] for key in CHARTS])


@solara.component
def DoseLog(tab: Tab):
    tab.frame.value  # noqa: B018 - subscribe
    doses = list(tab.session.model.dose_log)
    if not doses:
        return
    lines = [f"day {d['day']:.1f}: {TREATMENTS[d['therapy']].label} ({d['dose']:g})"
             + (" scheduled" if d["scheduled"] else "") for d in doses[-6:]]
    solara.Text("Doses: " + "; ".join(lines), style={"font-size": "12px"},
                classes=["abm-doses"])


@solara.component
def Message(tab: Tab):
    msg = tab.message.value
    if msg is None:
        return
    kind, text = msg
    with solara.v.Alert(type="error" if kind == "error" else "info", dense=True, text=True,
                        outlined=True, class_=f"abm-message abm-message-{kind}",
                        dismissible=True, v_model=True,
                        on_v_model=lambda shown: None if shown else tab.message.set(None)):
        solara.v.Html(tag="span", children=[text])


@solara.component
def Dashboard(session: Session | None = None, query: str | None = None):
    """The whole page for one session (``session`` is for tests; the page makes its own from
    the URL's query string)."""
    tab = use_tab(session, query)
    solara.Title("abm: tumour microenvironment")
    with solara.AppBar():
        solara.AppBarTitle("abm · tumour microenvironment")
    # our own two columns rather than solara.Sidebar: always visible on a projector, and the
    # same widget tree in the component tests as in the browser
    with solara.Row(gap="12px", style={"align-items": "flex-start", "padding": "8px"}):
        with solara.Column(gap="8px", style={"width": "340px", "min-width": "300px",
                                              "flex": "0 0 340px"}, classes=["abm-sidebar"]):
            with solara.Card("Run", margin=0):
                RunControls(tab)
            with solara.Card("Scenario", margin=0):
                ScenarioPicker(tab)
                SeedControls(tab)
            with solara.Card("Treat now", margin=0):
                TreatmentButtons(tab)
            with solara.Card("Export", margin=0):
                Exports(tab)
            with solara.Card(margin=0):
                ParamPanel(tab)
        with solara.Column(style={"flex": "1", "min-width": "0"}):
            Message(tab)
            StatusBar(tab)
            with solara.Row(gap="16px", style={"flex-wrap": "wrap",
                                                "align-items": "flex-start"}):
                with solara.Column(style={"min-width": "320px", "max-width": "640px",
                                          "flex": "1"}):
                    ViewControls(tab)
                    TissueView(tab)
                    DoseLog(tab)
                InfoPanel(tab)
            Charts(tab)


@solara.component
def Page():
    Dashboard(query=solara.use_router().search)
