"""Start ``abm serve`` as a separate process and stop it by its process id.

Used by the browser tests, ``docs/screenshots.py`` and ``benchmarks/bench_dashboard.py`` (one
copy of the start-wait-stop logic), and handy for scripts that drive the dashboard. The server
listens on 127.0.0.1 only. Chromium for Playwright: Debian's ``/usr/bin/chromium`` (``make
chromium``), or ``$ABM_CHROMIUM``, started with ``CHROMIUM_ARGS``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("ABM_CHROMIUM", "/usr/bin/chromium")
# no sandbox (containers), no GPU, and no background requests (the dashboard works offline)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def start_server(log_path: Path, env: dict[str, str] | None = None, *, timeout_s: float = 90,
                 cwd: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``abm serve --port 0`` on 127.0.0.1 with extra environment ``env``; waits until the page
    answers and returns the process and its URL. Output goes to ``log_path`` (a pipe nobody
    reads could fill up and stall the server). ``RuntimeError`` (with the log's tail) if the
    server exits or does not answer within ``timeout_s``; the process is then stopped."""
    log_path = Path(log_path)
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-m", "abm.cli", "serve", "--port", "0"],
                                stdout=log, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                                env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout_s
    url = None
    while proc.poll() is None and time.monotonic() < deadline:
        if url is None:
            match = re.search(r"http://127\.0\.0\.1:\d+", log_path.read_text())
            url = match.group(0) + "/" if match else None
        if url is not None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return proc, url
            except OSError:
                pass
        time.sleep(0.5)
    exited = proc.poll() is not None
    stop_server(proc)
    what = "exited" if exited else f"did not answer within {timeout_s:g} s"
    raise RuntimeError(f"the server {what}; its log ({log_path}):\n"
                       f"{log_path.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started here, by its process id: SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
