"""Regenerate the dashboard screenshots used by the README and docs/dashboard.md.

    .venv/bin/python docs/screenshots.py                  # writes docs/img/dashboard*.png (3)
    .venv/bin/python docs/screenshots.py --out /tmp/shots  # somewhere else, to compare first

Starts ``abm serve --port 0`` on 127.0.0.1 (the command users run), drives Debian's Chromium
(``/usr/bin/chromium``, or ``$ABM_CHROMIUM``; ``make chromium`` installs it) with Playwright,
and stops the server by its process id. The states shown are fixed (scenario, seed, hours
played; Pause may land an hour or two late, so the pictures are not byte-identical between
runs). Run it when the page's look changed on purpose; the tests never write into docs/img.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from abm.dashboard.launch import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

VIEWPORT = {"width": 1280, "height": 720}  # a classroom projector
TIMEOUT_MS = 120_000


def start() -> tuple[subprocess.Popen, str, Path]:
    """`abm serve --port 0` on 127.0.0.1; returns the process, its URL and its log file."""
    with tempfile.NamedTemporaryFile(prefix="abm-serve-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    try:
        proc, url = start_server(log_path, cwd=ROOT)
    except RuntimeError as err:
        raise SystemExit(str(err)) from None
    return proc, url, log_path


def open_dashboard(browser, url: str, query: str):
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url + query)
    # Solara renders over a websocket: wait for our widgets, not for the page load
    page.wait_for_selector("img[data-testid=tissue][src^='data:image/png']")
    page.wait_for_selector(".abm-chart canvas")
    return page


def play_until(page, hours: int) -> None:
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_function(
        "h => +(/hour (\\d+)/.exec(document.querySelector('.abm-status').textContent)[1]) >= h",
        arg=hours,
    )
    page.get_by_role("button", name="Pause", exact=True).click()
    page.get_by_role("button", name="Play", exact=True).wait_for()


def save(page, path: Path) -> None:
    page.mouse.move(1, 1)  # no hover text or tooltip in the picture
    page.wait_for_timeout(800)  # charts finish resizing and drawing
    page.screenshot(path=str(path))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img",
                        help="folder for the images (default: docs/img)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no Chromium at {CHROMIUM} (run `make chromium`)")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    proc, url, log_path = start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                # the escape scenario (the default) after twenty days, as on a projector
                page = open_dashboard(browser, url, "?seed=7")
                play_until(page, 480)
                save(page, args.out / "dashboard.png")
                page.close()
                # the checkpoint lesson on day 9 with the IFN-γ overlay and its colour bar
                page = open_dashboard(browser, url, "?scenario=checkpoint&seed=4")
                play_until(page, 216)
                page.locator(".v-select:has(label:text-is('overlay')) .v-select__slot").click()
                page.get_by_role("option", name="IFN-γ").click()
                page.get_by_text(re.compile(r"IFN-γ: 0")).wait_for()
                save(page, args.out / "dashboard-overlay.png")
                page.close()
                # Compare: anti-PD-1 on day 3, then to day 5, beside the untreated twin
                page = open_dashboard(browser, url, "?seed=4&compare=1")
                play_until(page, 72)
                page.get_by_role("button", name="anti-PD-1", exact=True).click()
                play_until(page, 120)
                save(page, args.out / "dashboard-compare.png")
                page.close()
            finally:
                browser.close()
    finally:
        stop_server(proc)
    if "Traceback" in log_path.read_text():
        raise SystemExit(f"the server logged an exception; see {log_path}")
    log_path.unlink()


if __name__ == "__main__":
    main()
