"""Dashboard speed: frames per second while playing, measured in a real browser.

    .venv/bin/python benchmarks/bench_dashboard.py            # all three, ~2 minutes
    .venv/bin/python benchmarks/bench_dashboard.py --seconds 30 --json out.json

For each configuration it starts ``abm serve`` on 127.0.0.1 (stopped by process id), opens the
dashboard in Chromium (Playwright), presses Play and counts the tissue images the browser
actually loaded (``window.abmFrames``, incremented by the image's load event) over a fixed
window. One frame = one model step (1 hour per frame, the default), so frames/s is also
simulated hours per second.

Where the time goes is reported separately, so a slow model is not hidden by a fast view:

- model: ``model.step()`` per frame, and draw: raster image + PNG encoding per frame, both
  read from the dashboard's own timing line while it plays (moving averages, sampled each
  second), and cross-checked in-process without a browser, from the same seed advanced to
  the middle of the measuring window (charts: building the four chart options once);
- frame: the whole server-side frame (model + draw + sending widgets + charts every 0.5 s).

Configurations: the classroom default (100 x 100, escape scenario, 200 founder cells), the
same with Compare on (the untreated twin is stepped and drawn too), 200 x 200 with a grown
tumour (8000 founder cells, a disc ~1.5 mm across), warmed up for a
few seconds of play before measuring so that T cells have arrived, and a whole 15 mm tissue
(1000 x 1000, 300,000 founder cells) on the fast engine (``--config "1000x1000 fast"``; the
page takes ~10-20 s to build and compile it, hence a long ``--warmup``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from abm.dashboard.launch import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

CONFIGS = {
    "100x100": {"width": 100, "height": 100, "seed": 1},
    "100x100 compare": {"width": 100, "height": 100, "seed": 1, "compare": 1},
    "200x200 grown": {"width": 200, "height": 200, "initial_tumor_cells": 8000, "seed": 1},
    # a whole 15 mm tissue on the fast engine: a 300,000-cell founder (an 8 mm disc)
    "1000x1000 fast": {"width": 1000, "height": 1000, "initial_tumor_cells": 300_000,
                       "seed": 1, "engine": "fast"},
}
# on a quiet machine; "compare" also steps and draws the untreated twin every frame
TARGET_FPS = {"100x100": 20.0, "100x100 compare": 10.0, "200x200 grown": 4.0,
              "1000x1000 fast": 30.0}
PAGE_KEYS = ("seed", "compare", "engine")  # link keys that are not model parameters


def start() -> tuple[subprocess.Popen, str]:
    """`abm serve --port 0` on 127.0.0.1 (abm.dashboard.launch); its process and URL."""
    with tempfile.NamedTemporaryFile(prefix="abm-serve-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    try:
        return start_server(log_path, cwd=ROOT)
    except RuntimeError as err:
        raise SystemExit(str(err)) from None


def parse_perf(text: str) -> dict[str, float]:
    """The dashboard's timing line: model, draw and whole-frame milliseconds."""
    out = {}
    for key, pattern in (("model_ms", r"model ([\d.]+) ms"), ("draw_ms", r"draw ([\d.]+) ms"),
                         ("frame_ms", r"whole frame ([\d.]+) ms")):
        m = re.search(pattern, text)
        if m:
            out[key] = float(m.group(1))
    return out


def in_browser(browser, url: str, config: dict, warmup_s: float, seconds: float) -> dict:
    query = "?" + "&".join(f"{k}={v}" for k, v in config.items())
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(url + query)
    page.wait_for_selector("img[data-testid=tissue][src^='data:image/png']")
    page.wait_for_selector(".abm-chart canvas")
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_timeout(warmup_s * 1000)
    hour0 = int(re.search(r"hour (\d+)", page.locator(".abm-status").inner_text()).group(1))
    frames0 = page.evaluate("window.abmFrames || 0")
    t0 = time.perf_counter()
    samples = []
    while time.perf_counter() - t0 < seconds:
        page.wait_for_timeout(1000)
        samples.append(parse_perf(page.locator(".abm-perf").inner_text()))
    frames1 = page.evaluate("window.abmFrames || 0")
    elapsed = time.perf_counter() - t0
    status = page.locator(".abm-status").inner_text()
    hour1 = int(re.search(r"hour (\d+)", status).group(1))
    page.get_by_role("button", name="Pause", exact=True).click()
    page.close()
    result = {"browser_fps": (frames1 - frames0) / elapsed,
              "hours_per_s": (hour1 - hour0) / elapsed, "status_at_end": status,
              "mid_hour": (hour0 + hour1) // 2}
    for key in ("model_ms", "draw_ms", "frame_ms"):
        values = [s[key] for s in samples if key in s]
        result[key] = statistics.mean(values) if values else float("nan")
    return result


def in_process(config: dict, warmup_steps: int, steps: int) -> dict:
    """The same model and drawing without a browser or server (cross-check)."""
    from abm.dashboard.charts import chart_options
    from abm.dashboard.session import Session, scenario_values

    values = {**scenario_values("escape"),
              **{k: v for k, v in config.items() if k not in PAGE_KEYS}}
    session = Session("escape", values, config["seed"], engine=config.get("engine", "mesa"))
    session.set_compare(bool(config.get("compare")))
    for _ in range(warmup_steps):
        session.advance(1)
    model_t, draw_t, chart_t = [], [], []
    for _ in range(steps):
        t = time.perf_counter()
        session.advance(1)
        model_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        session.draw("antigenicity", "none")
        session.draw_twin("antigenicity", "none")  # None (no work) without Compare
        draw_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        chart_options(session.snapshot())
        chart_t.append(time.perf_counter() - t)
    ms = 1000.0
    return {"model_ms": statistics.mean(model_t) * ms, "draw_ms": statistics.mean(draw_t) * ms,
            "charts_ms": statistics.mean(chart_t) * ms, "cancer": session.model.n_cancer,
            "tcells": session.model.n_tcells}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds of play first")
    parser.add_argument("--config", action="append", choices=list(CONFIGS),
                        help="only these configurations (repeatable)")
    parser.add_argument("--no-browser", action="store_true", help="only the in-process part")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not (args.seconds > 0 and args.warmup >= 0):
        parser.error("--seconds must be > 0 and --warmup >= 0")
    names = args.config or list(CONFIGS)

    results: dict[str, dict] = {name: {} for name in names}
    if not args.no_browser:
        from playwright.sync_api import sync_playwright

        proc, url = start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    for name in names:
                        results[name]["browser"] = in_browser(browser, url, CONFIGS[name],
                                                              args.warmup, args.seconds)
                finally:
                    browser.close()
        finally:
            stop_server(proc)

    for name in names:
        # the same model state as in the browser's measuring window (mid-window hour)
        hour = results[name].get("browser", {}).get("mid_hour", 48)
        results[name]["in_process"] = in_process(CONFIGS[name], warmup_steps=hour, steps=24)

    print(f"\nmachine: {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| configuration | browser frames/s | target | model ms/frame | draw ms/frame | "
          "whole frame ms | in-process model ms | in-process draw ms | charts ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        b = results[name].get("browser", {})
        i = results[name]["in_process"]
        nan = float("nan")
        print(f"| {name} | {b.get('browser_fps', nan):.1f} | >= {TARGET_FPS[name]:g} "
              f"| {b.get('model_ms', nan):.1f} | {b.get('draw_ms', nan):.1f} "
              f"| {b.get('frame_ms', nan):.1f} | {i['model_ms']:.1f} | {i['draw_ms']:.1f} "
              f"| {i['charts_ms']:.1f} |")
    for name in names:
        if "browser" in results[name]:
            print(f"\n{name}, at the end: {results[name]['browser']['status_at_end']}")
    if args.json:  # atomically: an earlier file is replaced whole or not at all
        from abm.run import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(results, indent=2).encode())


if __name__ == "__main__":
    main()
