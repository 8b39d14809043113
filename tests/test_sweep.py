"""Batch sweeps (issue 5): spec validation, deterministic expansion, identical results on every
backend (serial, process pool, Dask LocalCluster, Dask scheduler + worker processes), and resume
after ``kill -9``. Runs are tiny (40x40 grid, 50 cells, 2 days) so the file runs in well under a
minute on two cores; backends are compared with each other, never with hard-coded numbers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from abm.cli import app
from abm.sweep import (
    SpecError,
    SweepError,
    expand,
    load_spec,
    parse_spec,
    replicate_seeds,
    run_sweep,
    sample_points,
)

TINY = """\
[sweep]
name = "tiny"
description = "test sweep"
scenario = "escape"
days = 2
replicates = 2
seed = 2026
record_every = 12

[parameters]
width = 40
height = 40
initial_tumor_cells = 50

[factors]
tcell_influx = [0.5, 3.0]
checkpoint_start_day = ["none", 1]
"""

runner = CliRunner()


def write_spec(tmp_path: Path, text: str = TINY, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def summary(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "summary.parquet")


def assert_same_sweep(a: Path, b: Path) -> None:
    """Same summary and the same time series in every run file."""
    pd.testing.assert_frame_equal(summary(a), summary(b))
    files_a = sorted(p.name for p in (a / "runs").glob("*.parquet"))
    assert files_a == sorted(p.name for p in (b / "runs").glob("*.parquet"))
    for name in files_a:
        pd.testing.assert_frame_equal(
            pd.read_parquet(a / "runs" / name), pd.read_parquet(b / "runs" / name)
        )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny sweep run serially: the reference every other backend must equal."""
    tmp = tmp_path_factory.mktemp("reference")
    out = tmp / "serial"
    run_sweep(load_spec(write_spec(tmp)), out, backend="serial", progress=False, log=lambda m: 0)
    return out


# --- spec validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("tcell_influx = [0.5, 3.0]", "tcell_influxx = [0.5, 3.0]"),
            ["factors.tcell_influxx", "unknown parameter", "did you mean tcell_influx"],
        ),
        (
            ("tcell_influx = [0.5, 3.0]", "tcell_influx = [0.5, -3.0]"),
            ["factors.tcell_influx[1]", "-3.0", "[0, 100]"],
        ),
        (("width = 40", "width = 5"), ["parameters.width", "[10, 1000]"]),
        (("width = 40", 'width = "wide"'), ["parameters.width", "'wide'"]),
        (("days = 2", ""), ["sweep.days", "days = 30 or steps = 720"]),
        (("days = 2", "days = 2\nsteps = 48"), ["sweep.days", "exactly one"]),
        (("replicates = 2", "replicates = 0"), ["sweep.replicates", "integer >= 1"]),
        (('scenario = "escape"', 'scenario = "escpe"'), ["sweep.scenario", "escape"]),
        (("seed = 2026", "seed = 2026\ncolour = 1"), ["sweep.colour", "unknown key"]),
        (("[factors]", "[factorz]"), ["factorz", "unknown table"]),
        (
            ("tcell_influx = [0.5, 3.0]", "tcell_influx = []"),
            ["factors.tcell_influx", "non-empty list"],
        ),
        (
            ("tcell_influx = [0.5, 3.0]", "tcell_influx = [1.0, 1]"),
            ["factors.tcell_influx", "repeat"],
        ),
        (("tcell_influx = [0.5, 3.0]", "rng = [1, 2]"), ["factors.rng", "sweep.seed"]),
        (
            ("width = 40", "width = 40\ntcell_influx = 1.0"),
            ["factors.tcell_influx", "also set in [parameters]"],
        ),
        (
            ("initial_tumor_cells = 50", "initial_tumor_cells = 5000"),
            ["parameters", "initial_tumor_cells", "width x height"],
        ),
        (("[factors]", "[factors"), ["not valid TOML", "line"]),
    ],
)
def test_a_bad_spec_is_refused_with_one_message_naming_the_key(tmp_path, edit, expected):
    text = TINY.replace(*edit)
    assert text != TINY
    path = write_spec(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            'method = "grid"\nn = 4\n[sample.bounds]\nmutation_rate = [0.0, 0.1]',
            ["sample.method", "lhs"],
        ),
        (
            'method = "sobol"\nn = 6\n[sample.bounds]\nmutation_rate = [0.0, 0.1]',
            ["sample.n", "power of 2"],
        ),
        (
            'method = "lhs"\nn = 4\n[sample.bounds]\nmutation_rate = [0.1, 0.0]',
            ["sample.bounds.mutation_rate", "low < high"],
        ),
        (
            'method = "lhs"\nn = 4\n[sample.bounds]\nmutation_rate = [0.0, 2.0]',
            ["sample.bounds.mutation_rate[1]", "[0, 1]"],
        ),
        (
            'method = "lhs"\nn = 4\n[sample.bounds]\ntcell_influx = [0.0, 2.0]',
            ["sample.bounds.tcell_influx", "also a factor"],
        ),
        ('method = "lhs"\nn = 4', ["sample.bounds", "required"]),
    ],
)
def test_a_bad_sample_is_refused_naming_the_key(tmp_path, sample, expected):
    path = write_spec(tmp_path, TINY + "\n[sample]\n" + sample + "\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    for part in expected:
        assert part in str(err.value), str(err.value)


def test_cli_bad_spec_exits_2_and_starts_nothing(tmp_path):
    path = write_spec(tmp_path, TINY.replace("[0.5, 3.0]", "[0.5, 300.0]"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--backend", "serial"])
    assert result.exit_code == 2
    assert "error:" in result.output and "factors.tcell_influx[1]" in result.output
    assert not out.exists()


def test_cli_dry_run_lists_the_runs_and_runs_nothing(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["sweep", str(write_spec(tmp_path)), "--out", str(out), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "4 points x 2 replicates = 8 runs" in result.output
    assert "p00003-r001" in result.output
    assert not out.exists()


# --- expansion --------------------------------------------------------------------------------


def test_expansion_is_deterministic_and_pairs_replicate_seeds_across_points(tmp_path):
    spec = load_spec(write_spec(tmp_path))
    runs = expand(spec)
    assert runs == expand(load_spec(write_spec(tmp_path)))
    assert len(runs) == spec.n_runs == 4 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    seeds = replicate_seeds(2026, 2)
    assert len(set(seeds)) == 2
    for run in runs:
        assert run.seed == seeds[run.replicate]  # replicate k: same seed at every point
    # first factor varies slowest; "none" means the therapy is not given
    assert [r.varied for r in runs[::2]] == [
        {"tcell_influx": 0.5, "checkpoint_start_day": None},
        {"tcell_influx": 0.5, "checkpoint_start_day": 1.0},
        {"tcell_influx": 3.0, "checkpoint_start_day": None},
        {"tcell_influx": 3.0, "checkpoint_start_day": 1.0},
    ]


@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_samples_are_deterministic_within_bounds_and_typed(method):
    data = {
        "sweep": {"name": "s", "days": 1, "seed": 5},
        "sample": {
            "method": method,
            "n": 8,
            "bounds": {"mutation_rate": [0.0, 0.05], "tcell_speed": [1, 10]},
        },
    }
    spec = parse_spec(data)
    points = sample_points(spec.sample)
    assert points == sample_points(parse_spec(data).sample)
    assert len(points) == spec.n_points == (8 if method == "lhs" else 8 * (2 + 2))
    assert all(0.0 <= p["mutation_rate"] <= 0.05 for p in points)
    assert all(isinstance(p["tcell_speed"], int) and 1 <= p["tcell_speed"] <= 10 for p in points)
    other = parse_spec({**data, "sweep": {**data["sweep"], "seed": 6}})
    assert sample_points(other.sample) != points


def test_factors_and_sample_combine_as_a_product():
    spec = parse_spec(
        {
            "sweep": {"name": "s", "days": 1, "replicates": 3},
            "factors": {"tcell_influx": [0.0, 1.0]},
            "sample": {"method": "lhs", "n": 5, "bounds": {"mutation_rate": [0.0, 0.05]}},
        }
    )
    runs = expand(spec)
    assert len(runs) == 2 * 5 * 3
    assert {r.varied["tcell_influx"] for r in runs[: 5 * 3]} == {0.0}


# --- backends give identical results ----------------------------------------------------------


def test_process_pool_equals_serial(reference, tmp_path):
    out = tmp_path / "process"
    run_sweep(
        load_spec(write_spec(tmp_path)),
        out,
        backend="process",
        workers=2,
        progress=False,
        log=lambda m: 0,
    )
    assert_same_sweep(reference, out)


def test_dask_local_cluster_equals_serial(reference, tmp_path):
    out = tmp_path / "dask"
    run_sweep(
        load_spec(write_spec(tmp_path)),
        out,
        backend="dask",
        workers=2,
        progress=False,
        log=lambda m: 0,
    )
    assert_same_sweep(reference, out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_dask_scheduler_and_worker_processes_equal_serial(reference, tmp_path):
    """``abm sweep --scheduler tcp://...`` against a cluster started the documented way."""
    from dask.distributed import Client

    dask = Path(sys.executable).parent / "dask"
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )
    worker = None
    try:
        worker = subprocess.Popen(
            [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            **quiet,
        )
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=90)
        out = tmp_path / "cluster"
        result = runner.invoke(
            app,
            [
                "sweep",
                str(write_spec(tmp_path)),
                "--out",
                str(out),
                "--scheduler",
                address,
                "--quiet",
            ],
        )
        assert result.exit_code == 0, result.output
        assert f"on Dask ({address})" in result.output
        assert_same_sweep(reference, out)
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)


# --- resume -----------------------------------------------------------------------------------


def test_a_sweep_killed_with_sigkill_resumes_to_the_uninterrupted_result(reference, tmp_path):
    spec = write_spec(tmp_path, TINY.replace("replicates = 2", "replicates = 4"))
    full = tmp_path / "uninterrupted"
    run_sweep(load_spec(spec), full, backend="serial", progress=False, log=lambda m: 0)

    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "abm.cli",
        "sweep",
        str(spec),
        "--out",
        str(out),
        "--backend",
        "serial",
        "--quiet",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "runs").glob("*.parquet"))) < 3:
            assert proc.poll() is None, "the sweep finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = len(list((out / "runs").glob("*.parquet")))
    assert 3 <= done < 16
    assert not (out / "summary.parquet").exists()

    result = runner.invoke(app, [*command[3:]])
    assert result.exit_code == 0, result.output
    assert f"({done} already done)" in result.output
    assert_same_sweep(full, out)
    assert not list((out / "runs").glob(".*"))  # no temporary files left behind


def test_rerunning_a_finished_sweep_runs_nothing_and_keeps_the_summary(reference, tmp_path):
    spec = write_spec(tmp_path)
    before = summary(reference)
    mtimes = {p: p.stat().st_mtime_ns for p in (reference / "runs").glob("*.parquet")}
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(reference), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "(0 now, 8 before)" in result.output
    pd.testing.assert_frame_equal(summary(reference), before)
    assert mtimes == {p: p.stat().st_mtime_ns for p in (reference / "runs").glob("*.parquet")}


def test_a_changed_spec_into_the_same_directory_is_refused(reference, tmp_path):
    spec = write_spec(tmp_path, TINY.replace("days = 2", "days = 3"))
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(reference), "--quiet"])
    assert result.exit_code == 2
    assert "different spec" in result.output and "sweep.steps" in result.output
    with pytest.raises(SweepError):
        run_sweep(load_spec(spec), reference, backend="serial", progress=False)


def test_manifest_records_spec_runs_versions_and_commit(reference):
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["spec"]["sweep"]["name"] == "tiny"
    assert [r["run_id"] for r in manifest["runs"]] == list(summary(reference)["run_id"])
    assert {"abm", "mesa", "numpy", "git_commit"} <= set(manifest["provenance"])
    assert manifest["base_parameters"]["width"] == 40
    assert manifest["completed"]


def test_run_files_and_summary_carry_ids_and_varied_parameters(reference):
    s = summary(reference)
    assert list(s.columns[:6]) == [
        "run_id",
        "point_id",
        "replicate",
        "seed",
        "tcell_influx",
        "checkpoint_start_day",
    ]
    assert set(s["outcome"]) <= {"eliminated", "controlled", "escape"}
    assert (s["peak_burden"] >= s["final_burden"]).all()
    run = pd.read_parquet(reference / "runs" / "p00001-r000.parquet")
    assert {
        "run_id",
        "point_id",
        "replicate",
        "seed",
        "tcell_influx",
        "checkpoint_start_day",
        "Day",
        "CancerCells",
    } <= set(run.columns)
    assert set(run["Step"]) == {0, 12, 24, 36, 48} or run["Step"].iloc[-1] < 48
