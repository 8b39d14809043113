"""`abm run`, `abm scenarios`, `abm params`: outputs, sidecar and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import TINY, set_args
from typer.testing import CliRunner

from abm.cli import app
from abm.scenarios import SCENARIOS

runner = CliRunner()
SMALL = set_args(TINY)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_run_writes_the_time_series_and_a_sidecar(tmp_path, suffix):
    out = tmp_path / f"run{suffix}"
    result = runner.invoke(app, ["run", "--scenario", "escape", "--days", "1", "--rng", "3",
                                 "--out", str(out), "--quiet", *SMALL])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert len(df) == 25 and df["Day"].iloc[-1] == 1.0
    assert {"CancerCells", "TCells", "MeanAntigenicity", "CloneCount"} <= set(df.columns)
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["seed"] == 3 and meta["scenario"] == "escape"
    assert meta["parameters"]["width"] == 30 and meta["parameters"]["mutation_rate"] == 0.05
    assert meta["abm"] and "mesa" in meta


def test_same_seed_gives_the_same_file(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.csv"
        runner.invoke(app, ["run", "--steps", "12", "--rng", "5", "--out", str(out), "--quiet",
                            *SMALL])
        outs.append(out.read_text())
    assert outs[0] == outs[1]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--set", "mutation_rate=2"], "'mutation_rate' = '2' is not allowed"),
        (["--set", "mutaton_rate=0.1"], "did you mean mutation_rate"),
        (["--set", "width"], "expected name=value"),
        (["--set", "=3"], "--set '=3': expected name=value"),
        (["--rng", "abc"], "--rng 'abc': expected a whole number >= 0 (leave --rng out"),
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--out", "x.txt"], ".parquet or .csv"),
        (["--days", "-1"], "--days"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(args, fragment):
    result = subprocess.run([sys.executable, "-m", "abm.cli", "run", "--quiet", *args],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_scenarios_and_params_explain_themselves():
    listing = runner.invoke(app, ["scenarios"]).output
    for name in SCENARIOS:
        assert name in listing
    params = runner.invoke(app, ["params"]).output
    assert "mutation_rate = 0.01 [per division]" in params
    assert "| `tcell_kill_prob` |" in runner.invoke(app, ["params", "--markdown"]).output
    assert "--scenario" in runner.invoke(app, ["run", "--help"]).output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "99999"], "--port 99999: expected"),
        (["--max-sites", "-5"], "--max-sites -5: expected"),
        (["--host", "999.1.1.1"], "999.1.1.1"),
    ],
)
def test_serve_refuses_bad_options_in_one_line_before_starting(args, message):
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_a_cleared_tumour_reports_no_mean_antigenicity():
    result = runner.invoke(app, ["run", "--scenario", "elimination", "--days", "10", "--rng", "1",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert "tumour eliminated (no mean antigenicity)" in result.output
    assert "mean antigenicity 0.00" not in result.output
