"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

# Small domains for fast tests, shared so that every file means the same by "small"
SMALL = {"width": 40, "height": 40, "initial_tumor_cells": 60}  # a model that still grows
TINY = {"width": 30, "height": 30, "initial_tumor_cells": 40}  # component and CLI tests

ROOT = Path(__file__).resolve().parents[1]


def load_script(script: str):
    """``script`` (a path from the repository root) imported as a module, its folder on the
    path while it imports (scripts import their neighbours)."""
    import importlib.util

    folder = str((ROOT / script).parent)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(f"script_{Path(script).stem}", ROOT / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


def set_args(params: dict) -> list[str]:
    """``params`` as ``abm run`` options: ``--set name=value`` for each."""
    return [arg for name, value in params.items() for arg in ("--set", f"{name}={value}")]


@pytest.fixture
def small_params() -> dict:
    """A small domain for fast unit tests."""
    return dict(SMALL)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dask_scheduler() -> tuple[subprocess.Popen, str]:
    """``dask scheduler`` on a free port of 127.0.0.1, as the docs start one (no dashboard):
    the process (the test stops it with ``stop_process``) and its address."""
    import sys
    from pathlib import Path

    port = free_port()
    scheduler = subprocess.Popen(
        [Path(sys.executable).parent / "dask", "scheduler", "--host", "127.0.0.1", "--port",
         str(port), "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return scheduler, f"tcp://127.0.0.1:{port}"


def stop_process(proc: subprocess.Popen) -> None:
    """Stop a server a test started, by its process id: SIGTERM, then SIGKILL after 15 s."""
    from abm.dashboard.launch import stop_server

    stop_server(proc)


@pytest.fixture(params=["mesa", "fast"])
def either_engine(request, monkeypatch) -> str:
    """Run the requesting test once per engine: the module's ``TumorModel`` name is bound to the
    engine's model class (``abm.run.model_class``), so the stylized-fact tests check the Mesa
    engine and the compiled one with the same code and thresholds."""
    from abm.run import model_class

    monkeypatch.setattr(request.module, "TumorModel", model_class(request.param))
    return request.param
