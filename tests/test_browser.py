"""The dashboard in a real browser: `abm serve` on 127.0.0.1, driven by Playwright + Chromium.

The server is started by the fixture (``python -m abm.cli serve --port 0``, the command users
run) and stopped by its process id. Every request the page makes outside 127.0.0.1 is blocked
and recorded, so these tests also check that the dashboard works offline.

Needs Debian's Chromium at /usr/bin/chromium (``make chromium``; never ``playwright install``).
Screenshots of the main states go to pytest's temporary folder (for looking at a failure); the
ones in docs/img are made by ``docs/screenshots.py``, never by the tests.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from conftest import stop_process

from abm.dashboard.launch import CHROMIUM, CHROMIUM_ARGS, start_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

playwright_api = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 60_000

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (run `make chromium`)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`abm serve` on a free port of 127.0.0.1; yields its URL; stopped by process id.

    Its output goes to a file (a pipe nobody reads could fill up and stall the server); a
    traceback in it fails the module at teardown.
    """
    log_path = tmp_path_factory.mktemp("server") / "serve.log"
    try:
        proc, url = start_server(log_path)
    except RuntimeError as err:
        pytest.fail(str(err))
    try:
        yield url
    finally:
        stop_process(proc)
    text = log_path.read_text()
    if "Traceback" in text:
        pytest.fail(f"the server logged an exception:\n{text[-3000:]}")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Dashboard:
    """One browser session (its own context, so its own Solara session and model)."""

    def __init__(self, browser, url: str, query: str = "", shots: Path | None = None):
        self.shots = shots
        self.context = browser.new_context(viewport={"width": 1440, "height": 1000},
                                           accept_downloads=True)
        self.external: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.goto(url + query)
        # Solara renders over a websocket: wait for our widgets, not for the page load
        self.page.wait_for_selector("img[data-testid=tissue][src^='data:image/png']")
        self.page.wait_for_selector(".abm-chart canvas")

    def _route(self, route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    # --- reading the page --------------------------------------------------------------------
    def status(self) -> str:
        return self.page.locator(".abm-status").inner_text()

    def hour(self) -> int:
        return int(re.search(r"hour (\d+)", self.status()).group(1))

    def image(self) -> str:
        return self.page.locator("img[data-testid=tissue]").get_attribute("src")

    def wait_for_status(self, pattern: str) -> None:
        self.page.wait_for_function(
            "p => new RegExp(p).test(document.querySelector('.abm-status').textContent)",
            arg=pattern,
        )

    def errors(self) -> list[str]:
        return self.page.locator(".abm-message-error").all_inner_texts()

    # --- acting ------------------------------------------------------------------------------
    def button(self, name: str):
        return self.page.get_by_role("button", name=name, exact=True)

    def step(self) -> None:
        hour = self.hour()
        self.button("Step").click()
        self.wait_for_status(rf"hour {hour + 1}\b")

    def play_until(self, hours: int) -> None:
        self.button("Play").click()
        self.page.wait_for_function(
            "h => +(/hour (\\d+)/.exec(document.querySelector('.abm-status').textContent)[1]) >= h",
            arg=hours,
        )
        self.button("Pause").click()
        self.page.get_by_role("button", name="Play", exact=True).wait_for()

    def screenshot(self, name: str) -> None:
        """Save the whole dashboard (page, charts included) in the test's temporary folder."""
        assert self.shots is not None, "this Dashboard was made without a screenshot folder"
        self.page.set_viewport_size({"width": 1440, "height": 1560})
        self.page.mouse.move(1, 1)
        self.page.wait_for_timeout(800)  # charts resize to the new viewport
        path = self.shots / name
        self.page.screenshot(path=str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        self.page.set_viewport_size({"width": 1440, "height": 1000})

    def close(self) -> None:
        assert not self.external, f"the page tried to reach the network: {self.external[:3]}"
        self.context.close()


@pytest.fixture
def dashboard(browser, server, tmp_path):
    made = []

    def make(query: str = "") -> Dashboard:
        made.append(Dashboard(browser, server, query, shots=tmp_path))
        return made[-1]

    yield make
    for d in made:
        d.close()


def test_page_loads_offline_with_tissue_legend_charts_and_lesson(dashboard):
    d = dashboard("?seed=7")
    page = d.page
    assert "hour 0" in d.status() and "seed 7" in d.status()
    assert page.locator(".abm-legend").inner_text().count("cancer") >= 1
    assert page.locator(".abm-chart canvas").count() >= 4
    assert page.get_by_role("tab", name="Lesson").is_visible()
    page.get_by_role("tab", name="About").click()
    page.get_by_text("not for clinical decisions").wait_for()
    page.get_by_role("tab", name="Lesson").click()
    d.play_until(72)  # three days: a screenshot with something to see
    d.screenshot("dashboard.png")
    assert not d.errors()


def test_step_changes_the_image_and_the_step_counter(dashboard):
    d = dashboard("?seed=3")
    before = d.image()
    changed = False
    for _ in range(3):  # one hour can, rarely, change nothing visible
        d.step()
        d.page.wait_for_timeout(200)
        if d.image() != before:
            changed = True
            break
    assert changed, "the tissue image did not change in three steps"
    assert d.hour() >= 1


def test_hover_and_click_show_what_is_at_a_site(dashboard):
    d = dashboard("?seed=4")
    img = d.page.locator("img[data-testid=tissue]")
    box = img.bounding_box()
    d.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    d.page.wait_for_function(
        "() => /cancer cell/.test(document.querySelector('.abm-hover').textContent)")
    d.page.mouse.click(box["x"] + 3, box["y"] + 3)
    d.page.locator(".abm-picked").wait_for()
    assert d.page.locator(".abm-picked").inner_text().startswith("Selected (0, ")


def test_overlay_shows_a_field_with_a_colour_bar(dashboard):
    d = dashboard("?seed=5")
    d.play_until(24)
    plain = d.image()
    d.page.locator(".v-select:has(label:text-is('overlay')) .v-select__slot").click()
    d.page.get_by_role("option", name="IFN-γ").click()
    d.page.get_by_text(re.compile(r"IFN-γ: 0")).wait_for()
    assert d.image() != plain
    d.screenshot("dashboard-overlay.png")


def test_treatment_button_acts_now_and_the_csv_and_png_download(dashboard):
    d = dashboard("?seed=6")
    d.step()
    d.button("anti-PD-1").click()
    d.page.get_by_text(re.compile("anti-PD-1 given on day")).wait_for()
    d.step()
    d.step()
    occupancy = float(re.search(r"PD-1 blocked by anti-PD-1 (\d+)%", d.status()).group(1))
    assert occupancy > 0, "anti-PD-1 did not raise PD-1 occupancy"
    assert "anti-PD-1" in d.page.locator(".abm-doses").inner_text()
    with d.page.expect_download() as info:
        d.page.get_by_role("button", name=re.compile("time series", re.I)).click()
    path = info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert len(rows) == d.hour() + 1  # one row per hour, including hour 0
    assert float(rows[0]["PD1Occupancy"]) == 0 and float(rows[-1]["PD1Occupancy"]) > 0
    assert info.value.suggested_filename.endswith(".csv")
    with d.page.expect_download() as info:
        d.page.get_by_role("button", name=re.compile("view \\(PNG\\)", re.I)).click()
    png = Path(info.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert info.value.suggested_filename.endswith(".png")


def test_two_sessions_are_isolated(dashboard):
    a = dashboard("?seed=11")
    b = dashboard("?seed=11")
    a.step()
    a.step()
    assert b.hour() == 0
    b.play_until(5)
    assert a.hour() == 2
    a.button("Reset").click()
    a.wait_for_status(r"hour 0\b")
    assert b.hour() >= 5


def test_rapid_clicks_and_bad_values_never_break_the_page(dashboard):
    d = dashboard("?seed=12")
    page = d.page
    # bursts of clicks sent in one go, before the server has answered the first (so Step is
    # not yet disabled by Play): Step while playing, Reset while playing, Play after Reset
    burst = """names => {
        const find = n => [...document.querySelectorAll('button')]
            .find(b => b.textContent.trim().toLowerCase() === n);
        for (const n of names) { const b = find(n); if (b) b.click(); }
    }"""
    page.evaluate(burst, ["play", "step", "step", "reset", "step", "play"])
    page.wait_for_timeout(500)
    page.evaluate(burst, ["pause", "play", "reset", "step", "step"])
    d.play_until(d.hour() + 3)  # still plays
    d.button("Reset").click()
    d.wait_for_status(r"hour 0\b")
    assert not d.errors()
    page.get_by_text("Advanced: every parameter").click()  # the full set, by code name
    width = page.get_by_label(re.compile(r"^width"))
    width.fill("wide")
    width.press("Enter")
    d.button("Reset").click()
    page.locator(".abm-message-error").wait_for()
    assert "width" in page.locator(".abm-message-error").inner_text()
    assert "Traceback" not in page.locator("body").inner_text()
    width.fill("100")
    width.press("Enter")
    d.step()  # still alive


def test_the_server_does_not_publish_its_statistics(server):
    """Solara's /resourcez shows thread, kernel and websocket counts to anyone who can reach a
    network-served dashboard; abm's server removes the route."""
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server + "resourcez", timeout=10)
    assert err.value.code == 404
