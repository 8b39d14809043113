"""A lesson on a classroom projector, as README.md and docs/dashboard.md describe it.

A teacher opens ``/?scenario=escape&teacher=1``, presses Large text, picks scenarios, gives
treatments, compares with the untreated twin and exports; 20-30 students open the same link.
What such a lesson met, each a test that failed before its fix:

- the class link's page had no Export (the README sends the projector to that link) and its
  treatment note listed code names (``anti_pd1_dose`` ...) of a panel it hides;
- a reload, or a server restarted mid-lesson, opened the link the tab was first opened with
  (another scenario, a new seed, normal text): the address bar now follows the page, and a
  page whose session is gone reloads itself (Solara's "Refresh now" button lay under its own
  "Server disconnected" overlay and could not be clicked);
- the class link dropped the engine, so the students' run was not the teacher's;
- the About tab said the model has no lymph nodes (a lesson primes T cells in one) and left
  out anti-CSF-1R;
- in large text on a 1280 x 720 projector the twin's title was cut ("untreated twin (same
  seed, no tr...").

Component tests use ``solara.render`` (no browser); the browser tests (``@pytest.mark.browser``)
start ``abm serve`` on 127.0.0.1 and stop it by process id.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import ipyvuetify as v
import pytest
import solara
from test_browser import browser
from test_dashboard_inputs import _texts as texts
from test_server import eventually, walk

from abm.agents import TREATMENTS
from abm.dashboard.launch import CHROMIUM, start_server, stop_server
from abm.dashboard.session import Session, page_options, scenario_values, session_from_query

__all__ = ["browser"]  # the fixture, from the suite's one Chromium launcher
SMALL = {"width": 30, "height": 30, "initial_tumor_cells": 40}


# --- helpers for solara.render ---------------------------------------------------------------
@pytest.fixture
def tabs(monkeypatch) -> list:
    """The ``Tab`` objects made while the test runs (the page makes its own)."""
    from abm.dashboard import tab as tab_module

    made: list = []
    original = tab_module.Tab.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(tab_module.Tab, "__init__", record)
    return made


def render_query(query: str):
    from abm.dashboard.app import Dashboard

    box, rc = solara.render(Dashboard(query=query), handle_error=False)
    return box


def render_session(session: Session):
    from abm.dashboard.app import Dashboard

    box, rc = solara.render(Dashboard(session=session), handle_error=False)
    return box


def address(root) -> str:
    """The query string the page keeps in the browser's address bar ("" if it keeps none)."""
    found = [w for w in walk(root) if hasattr(w, "query") and isinstance(w, v.VuetifyTemplate)]
    assert found, "the page does not keep its address bar"
    return found[0].query


# --- the class link's page -------------------------------------------------------------------
def test_a_class_link_exports_and_its_treatment_note_is_in_plain_words():
    from solara.components.file_download import FileDownloadWidget

    root = render_query("scenario=escape&teacher=1&width=30&height=30&seed=2")
    # README sends the projector to /?scenario=escape&teacher=1; the lesson exports from it
    names = {w.filename for w in walk(root) if isinstance(w, FileDownloadWidget)}
    assert names == {"abm-escape-seed2.csv", "abm-escape-seed2.png"}
    notes = [" ".join(texts(w)) for w in walk(root)
             if isinstance(w, v.Html) and "abm-treat-note" in (w.class_ or "").split()]
    assert len(notes) == 1
    note = notes[0]
    assert not re.search(r"\w+_\w+", note), note  # no code name of the hidden Advanced panel
    cart = scenario_values("escape")["cart_dose"]
    assert f"{cart:g} cells" in note  # what one CAR-T press gives, in cells
    # the full page still names the parameters its Advanced panel sets
    root = render_query("scenario=escape&width=30&height=30&seed=2")
    full = [" ".join(texts(w)) for w in walk(root)
            if isinstance(w, v.Html) and "abm-treat-note" in (w.class_ or "").split()]
    assert "anti_pd1_dose" in full[0] and "cart_dose" in full[0]


def test_the_address_bar_follows_the_page_so_a_reload_reopens_the_same_lesson(tabs):
    root = render_query("scenario=escape&teacher=1&width=30&height=30&seed=2")
    tab = tabs[-1]
    assert address(root) == "?scenario=escape&seed=2&width=30&height=30&teacher=1"
    tab.set_large(True)
    eventually(lambda: address(root).endswith("&teacher=1&large=1"), seconds=10.0)
    tab.set_compare(True)
    eventually(lambda: "&compare=1" in address(root), seconds=10.0)
    tab.set_param("mutation_rate", 0.013)  # as its slider does: applied on Reset
    assert "mutation_rate" not in address(root)
    tab.reset()
    eventually(lambda: "mutation_rate=0.013" in address(root), seconds=10.0)
    query = address(root)
    # what a reload (or a restarted server) opens is this page's model and options
    session, problem = session_from_query(query)
    assert problem is None
    assert session.values == tab.session.values and session.model.seed == 2
    assert page_options(query) == {"teacher": True, "compare": True, "large": True}
    # a page opened without a seed keeps the one it drew, so a reload runs the same tissue
    root = render_query("width=30&height=30")
    seed = tabs[-1].session.model.seed
    assert f"seed={seed}&" in address(root) and "teacher" not in address(root)


def test_a_class_link_opens_the_teachers_engine():
    session = Session("escape", {**scenario_values("escape"), **SMALL}, 12, engine="fast")
    root = render_session(session)
    links = [w.unsafe_innerHTML for w in walk(root) if isinstance(w, solara.widgets.HTML)
             and "abm-class-link" in w.attributes.get("class", "")]
    href = re.search(r'href="([^"]+)"', links[0]).group(1).replace("&amp;", "&")
    assert "engine=fast" in href
    students, problem = session_from_query(href)
    assert problem is None and students.engine == "fast"
    assert students.values == session.values and students.model.seed == 12
    assert "engine=fast" in address(root)


def test_a_page_whose_session_is_gone_reloads_itself(monkeypatch):
    """Solara's "Please refresh the page" dialog came up under its "Server disconnected"
    overlay (its button could not be clicked); with force_refresh the page reloads itself."""
    import solara.server.settings as settings

    from abm.dashboard import serving

    monkeypatch.delenv("SOLARA_THEME_FORCE_REFRESH", raising=False)
    monkeypatch.setattr(settings.theme, "force_refresh", False)
    serving.configure_solara()
    assert settings.theme.force_refresh is True
    monkeypatch.setenv("SOLARA_THEME_FORCE_REFRESH", "false")  # the server's own choice
    monkeypatch.setattr(settings.theme, "force_refresh", False)
    serving.configure_solara()
    assert settings.theme.force_refresh is False


def test_about_names_every_treatment_and_does_not_deny_what_a_lesson_uses():
    from abm.dashboard.app import ABOUT
    from abm.scenarios import SCENARIOS

    for cls in TREATMENTS.values():
        assert cls.label in ABOUT, cls.label  # every button of Treat now
    if any(s["params"].get("lymph_node_priming") for s in SCENARIOS.values()):
        assert not re.search(r"\bno\b[^.;]*lymph nodes?", ABOUT)
        assert "lymph node" in ABOUT
    assert "not for clinical decisions" in ABOUT


# --- in a browser ----------------------------------------------------------------------------
def _chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _chromium()
    log_path = tmp_path_factory.mktemp("audit") / "serve.log"
    proc, url = start_server(log_path)
    try:
        yield url
    finally:
        stop_server(proc)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]


def _open(browser, url: str, width: int = 1280, height: int = 720):
    context = browser.new_context(viewport={"width": width, "height": height})
    external: list[str] = []

    def route(r):
        if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("img[data-testid=tissue][src^='data:image/png']")
    return context, page, external


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_a_projected_class_link_in_large_text_keeps_its_titles_and_its_state_on_reload(
        browser, server):
    context, page, external = _open(browser, server + "?scenario=escape&teacher=1&seed=4&compare=1")
    try:
        page.wait_for_selector("img[data-testid=twin][src^='data:image/png']")
        page.get_by_role("button", name="Large text").click()
        page.wait_for_selector(".abm-grid.abm-large")
        page.wait_for_timeout(500)  # the layout settles at the larger sizes
        titles = page.evaluate("""() => [...document.querySelectorAll('.abm-twin-title')]
            .map(e => [e.textContent, e.scrollWidth, e.clientWidth])""")
        assert len(titles) == 2
        for text, needed, shown in titles:
            assert needed <= shown, f"{text!r} is cut: {needed} px wide in {shown} px"
        assert page.get_by_text("time series (CSV)").is_visible()
        page.wait_for_function("() => /[?&]large=1/.test(location.search)")
        query = page.evaluate("() => location.search")
        assert "scenario=escape" in query and "seed=4" in query and "compare=1" in query
        page.reload()  # or Solara's own reload once a restarted server is back
        page.wait_for_selector("img[data-testid=twin][src^='data:image/png']")
        page.wait_for_selector(".abm-grid.abm-large")
        assert "seed 4" in page.locator(".abm-status").inner_text()
        assert not page.locator(".abm-message-error").count()
    finally:
        context.close()
    assert not external, external[:3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, log_path: Path) -> subprocess.Popen:
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "abm.cli", "serve", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise AssertionError(f"no server on port {port}: {log_path.read_text()[-2000:]}")


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_a_restarted_server_brings_the_projector_back_to_its_lesson(browser, tmp_path):
    """The projector's tab picked another scenario and large text; the server is restarted
    (stopped by process id, started again on the same port): the page reloads itself, on the
    scenario, seed and text size it showed, without anyone touching it."""
    port = _free_port()
    log_path = tmp_path / "serve.log"
    proc = _serve(port, log_path)
    context = None
    try:
        context, page, external = _open(browser, f"http://127.0.0.1:{port}/?scenario=elimination"
                                        "&teacher=1&seed=6")
        page.get_by_role("button", name="Large text").click()
        page.wait_for_function("() => /[?&]large=1/.test(location.search)")
        page.evaluate("() => { window.abmBeforeRestart = true; }")
        stop_server(proc)
        proc = _serve(port, log_path)
        page.wait_for_function("() => window.abmBeforeRestart === undefined", timeout=90_000)
        page.wait_for_selector("img[data-testid=tissue][src^='data:image/png']")
        page.wait_for_selector(".abm-grid.abm-large")
        assert "seed 6" in page.locator(".abm-status").inner_text()
        assert "scenario=elimination" in page.evaluate("() => location.search")
        assert not external, external[:3]
    finally:
        if context is not None:
            context.close()
        stop_server(proc)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]
