"""The dashboard in a classroom, in a real browser (Playwright + Debian's Chromium).

What a teacher meets: the keyboard on a slider, a projector's 1280 x 720 and a phone's 412 px,
the Compare twin, a grid too big for a network-served dashboard, and a tab that dies without
closing. Servers are started by the fixtures (``python -m abm.cli serve --port 0`` on
127.0.0.1) and stopped by process id; so is the Chromium the last test kills.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import stop_process
from test_browser import CHROMIUM, CHROMIUM_ARGS, Dashboard, browser, server

from abm.dashboard.launch import start_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]
__all__ = ["browser", "server"]  # fixtures used here


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory):
    """A server of its own (its CPU time is measured) that allows at most 40,000 sites."""
    log_path = tmp_path_factory.mktemp("capped") / "serve.log"
    proc, url = start_server(log_path, {"ABM_MAX_SITES": "40000"})
    try:
        yield proc, url
    finally:
        stop_process(proc)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]


@pytest.fixture
def page_at(browser, server):
    made = []

    def make(query: str = "", size: tuple[int, int] = (1440, 1000), url: str | None = None):
        d = Dashboard(browser, url or server, query)
        d.page.set_viewport_size({"width": size[0], "height": size[1]})
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_keyboard_on_a_slider_changes_only_that_parameter_and_shows_its_value(page_at):
    d = page_at("?scenario=escape&seed=2")
    page = d.page
    control = page.locator(".abm-basic .abm-param-mutation_rate")
    value = control.locator(".abm-param-value")
    assert value.inner_text() == "0.05"
    others = {name: page.locator(f".abm-basic .abm-param-{name} .abm-param-value").inner_text()
              for name in ("founder_pdl1", "founder_antigens", "tcell_influx")}
    thumb = control.get_by_role("slider")
    assert control.locator(".v-slider").bounding_box()["width"] >= 240  # not 87 px
    thumb.focus()
    for i in range(1, 6):
        page.keyboard.press("ArrowRight")
        page.wait_for_function(  # each press lands before the next (a student's pace)
            "([el, v]) => el.textContent.trim() === v",
            arg=[value.element_handle(), f"{0.05 + i * 0.001:g}"])
    assert value.inner_text() == "0.055"
    # focus stayed on the same slider, and nothing else moved
    assert page.evaluate("() => !!document.activeElement.closest('.abm-param-mutation_rate')")
    for name, shown in others.items():
        assert page.locator(f".abm-basic .abm-param-{name} .abm-param-value").inner_text() == shown
    page.get_by_text("press Reset to apply them").wait_for()
    d.button("Reset").click()
    d.wait_for_status(r"hour 0\b")
    assert not d.errors()


def test_a_projector_shows_tissue_and_population_chart_and_a_phone_the_main_column(page_at):
    d = page_at("?seed=3", size=(1280, 720))
    page = d.page
    page.wait_for_timeout(500)  # layout settles (charts resize)
    for selector in ("img[data-testid=tissue]", ".abm-chart-populations", ".abm-legend"):
        box = page.locator(selector).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 720, (selector, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1280, (selector, box)
    assert page.get_by_role("button", name="Play", exact=True).bounding_box()["y"] < 720
    for therapy in ("anti-PD-1", "CAR-T", "anti-CSF-1R"):  # a dose is one click mid-run
        box = page.get_by_role("button", name=therapy, exact=True).bounding_box()
        assert box["y"] + box["height"] <= 720, (therapy, box)
    assert not page.get_by_text("This website runs on").is_visible()
    assert not page.get_by_text("runs on Solara").count()
    # 4:3 and 5:4 projectors: the tissue leaves the chart its place beside it (it grew to the
    # window's height and pushed the chart below the screen: y = 868 of 768, 1082 of 1024)
    for width, height in ((1024, 768), (1280, 1024)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(500)
        tissue = page.locator("img[data-testid=tissue]").bounding_box()
        chart = page.locator(".abm-chart-populations").bounding_box()
        assert chart["y"] + chart["height"] <= height, (width, height, chart)
        assert chart["x"] >= tissue["x"] + tissue["width"], (width, height, tissue, chart)
        assert tissue["width"] >= 280 and tissue["y"] + tissue["height"] <= height
    # a window too narrow for both side by side keeps a large tissue, the charts below it
    page.set_viewport_size({"width": 860, "height": 700})
    page.wait_for_timeout(500)
    tissue = page.locator("img[data-testid=tissue]").bounding_box()
    chart = page.locator(".abm-chart-populations").bounding_box()
    assert tissue["width"] >= 400 and chart["y"] >= tissue["y"] + tissue["height"], (tissue,
                                                                                    chart)
    page.set_viewport_size({"width": 412, "height": 915})
    page.wait_for_timeout(500)
    main = page.locator(".abm-main").bounding_box()
    tissue = page.locator("img[data-testid=tissue]").bounding_box()
    assert main["width"] >= 340 and tissue["width"] >= 340
    play = page.get_by_role("button", name="Play", exact=True).bounding_box()
    assert play["y"] < tissue["y"]  # the run controls first, then the tissue
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 412


def test_a_message_covers_neither_the_tissue_nor_its_legend_nor_the_lesson(page_at):
    d = page_at("?seed=3", size=(1280, 720))
    page = d.page
    d.button("anti-PD-1").click()  # a message: the dose given
    page.locator(".abm-message").wait_for()
    page.wait_for_timeout(300)  # layout settles
    box = page.locator(".abm-message").bounding_box()
    for selector in ("img[data-testid=tissue]", ".abm-legend", ".abm-info"):
        other = page.locator(selector).bounding_box()
        apart = (box["x"] + box["width"] <= other["x"] or other["x"] + other["width"] <= box["x"]
                 or box["y"] + box["height"] <= other["y"]
                 or other["y"] + other["height"] <= box["y"])
        assert apart, (selector, box, other)
    assert not d.errors()


def test_large_text_for_the_back_of_the_room_still_fits_a_projector(page_at):
    d = page_at("?seed=3", size=(1280, 720))
    page = d.page

    def font(selector: str) -> float:
        return page.evaluate(
            f"() => parseFloat(getComputedStyle(document.querySelector('{selector}')).fontSize)")

    normal = {sel: font(sel) for sel in (".abm-legend", ".abm-info", ".abm-status")}
    page.get_by_role("button", name="Large text").click()
    page.locator(".abm-large").wait_for()
    page.wait_for_timeout(500)  # layout settles (charts resize)
    for selector, size in normal.items():
        assert font(selector) >= 1.15 * size, selector
    assert font(".abm-legend") >= 15
    for selector in ("img[data-testid=tissue]", ".abm-chart-populations", ".abm-legend"):
        box = page.locator(selector).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 720, (selector, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1280, (selector, box)
    assert page.locator("img[data-testid=tissue]").bounding_box()["width"] >= 380
    page.get_by_role("button", name="Normal text").click()
    page.wait_for_function("() => !document.querySelector('.abm-large')")
    assert font(".abm-legend") == normal[".abm-legend"]
    assert not d.errors()


def _lines(page, selector: str) -> float:
    """How many lines of text ``selector`` takes (its height over its line height)."""
    return page.evaluate(
        "s => { const el = document.querySelector(s); const style = getComputedStyle(el);"
        " return el.getBoundingClientRect().height / parseFloat(style.lineHeight); }", selector)


@pytest.mark.parametrize("query", ["?scenario=macrophage_niche&seed=3",
                                   "?scenario=nk_surveillance&seed=3"])
def test_large_text_keeps_the_status_line_on_one_line_at_1280x720(page_at, query):
    """The lessons with the longest status line (macrophages and their M2 share; NK cells and
    their kills), ten days in, CAR-T given too: the line wrapped to two lines in large text
    (57 px), even in the escape lesson at day 0."""
    d = page_at(query + "&large=1", size=(1280, 720))
    page = d.page
    page.wait_for_selector(".abm-grid.abm-large")
    d.play_until(240)
    d.button("CAR-T").click()  # (given earlier, it clears the tumour before day 10)
    page.get_by_text(re.compile("CAR-T given on day")).wait_for()
    d.step()
    page.wait_for_timeout(300)
    status = page.locator(".abm-status")
    assert "CAR-T" in status.inner_text() and "seed 3" in status.inner_text()
    assert _lines(page, ".abm-status") < 1.5, status.inner_text()
    box = status.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1280
    assert float(page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('.abm-status')).fontSize)"
    )) >= 19  # still large
    assert not d.errors()


def test_compare_in_large_text_gives_each_tissue_room_on_a_projector(page_at):
    """Compare and large text: each tissue was 235 px wide at 1280 x 720 and 147 px at
    1024 x 768, beside the charts; now the two take the row, the charts below them."""
    d = page_at("?scenario=escape&seed=3&compare=1&large=1", size=(1280, 720))
    page = d.page
    page.locator("img[data-testid=twin]").wait_for()
    for (width, height), least in (((1280, 720), 400), ((1024, 768), 300)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(500)  # layout settles
        tissue = page.locator("img[data-testid=tissue]").bounding_box()
        twin = page.locator("img[data-testid=twin]").bounding_box()
        legend = page.locator(".abm-legend").bounding_box()
        assert tissue["width"] >= least and twin["width"] == pytest.approx(tissue["width"]), (
            width, tissue, twin)
        assert twin["y"] == pytest.approx(tissue["y"]) and twin["x"] > tissue["x"]  # side by side
        assert twin["x"] + twin["width"] <= width
        assert legend["y"] + legend["height"] <= height, (width, legend)  # on screen
        chart = page.locator(".abm-chart-populations").bounding_box()
        assert chart["y"] >= legend["y"] + legend["height"]  # the charts below
        # a dose's message is on screen (its column went below), over neither the tissues
        # nor their legend
        d.button("anti-PD-1").click()
        message = page.locator(".abm-message")
        message.wait_for()
        page.wait_for_timeout(300)
        box = message.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, (width, box)
        for other in (tissue, twin, legend):
            assert (box["x"] + box["width"] <= other["x"] or other["x"] + other["width"] <= box["x"]
                    or box["y"] + box["height"] <= other["y"]
                    or other["y"] + other["height"] <= box["y"]), (width, box, other)
    assert not d.errors()


def test_compare_shows_two_tissues_that_differ_after_a_treatment(page_at):
    d = page_at("?scenario=escape&seed=3&compare=1")
    page = d.page
    twin = page.locator("img[data-testid=twin]")
    twin.wait_for()
    d.step()
    d.step()
    page.wait_for_timeout(300)
    assert d.image() == twin.get_attribute("src")  # same seed, same tissue before treating
    d.button("CAR-T").click()
    page.get_by_text(re.compile("CAR-T given on day")).wait_for()
    d.step()
    page.wait_for_timeout(300)
    assert d.image() != twin.get_attribute("src")
    assert page.get_by_text("untreated twin (same seed").is_visible()


def test_a_network_served_dashboard_refuses_an_oversized_grid(page_at, capped_server):
    _, url = capped_server
    d = page_at("?width=300&height=300", url=url)
    message = d.page.locator(".abm-message-error")
    message.wait_for()
    text = message.inner_text()
    assert "300 x 300" in text and "40,000" in text
    assert "100×100" in d.page.locator(".abm-perf").inner_text()  # the default grid instead


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_a_browser_killed_while_playing_stops_using_the_server_cpu(capped_server, browser,
                                                                   tmp_path):
    """No pagehide, no close: the browser process is killed (a crash, a laptop lid)."""
    proc, url = capped_server
    profile = tmp_path / "profile"
    chromium = subprocess.Popen(
        [CHROMIUM, "--headless=new", *CHROMIUM_ARGS, "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.time() < deadline, "Chromium did not start"
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        # the Playwright already running (the browser fixture's) drives it
        remote = browser.browser_type.connect_over_cdp(f"http://127.0.0.1:{port}")
        page = remote.contexts[0].new_page()
        page.set_default_timeout(60_000)
        page.goto(url + "?seed=5")
        page.wait_for_selector("img[data-testid=tissue][src^='data:image/png']")
        page.get_by_role("button", name="Play", exact=True).click()
        page.wait_for_function(
            "() => +/hour (\\d+)/.exec(document.querySelector('.abm-status')"
            ".textContent)[1] >= 24")
        playing = _cpu_seconds(proc.pid)
        time.sleep(3)
        busy = _cpu_seconds(proc.pid) - playing  # CPU seconds in 3 s of play (a loaded machine
        assert busy > 0.25, f"the server was not busy playing ({busy:.2f} s)"  # gives less)
        os.killpg(chromium.pid, signal.SIGKILL)  # the whole browser, at once
        chromium.wait()
        killed = time.time()
        quiet_since = None
        while time.time() - killed < 120:
            before = _cpu_seconds(proc.pid)
            time.sleep(3)
            used = _cpu_seconds(proc.pid) - before
            if used < min(0.1, busy / 4):  # idle: the play loop stopped
                quiet_since = time.time() - killed
                break
        assert quiet_since is not None, "the server kept using CPU for 2 minutes"
        print(f"server quiet {quiet_since:.1f} s after the browser was killed")
    finally:
        if chromium.poll() is None:
            os.killpg(chromium.pid, signal.SIGKILL)
            chromium.wait()
