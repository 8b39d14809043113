"""``abm report`` on cleared tumours: the means over the cancer cells (``final_mean_*``) are
NaN for a run whose tumour is gone. The report says how many runs have no value and leaves
them out; no figure shows a blank or a count of runs that includes them. Sweeps are tiny
(30x30 grid, 2 days, 10 founder cells) and run serially."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abm.cli import app
from abm.report import NOT_AVAILABLE, Sweep, plot_outcome_by_parameter
from abm.report.sweeps import _heatmap
from abm.sweep import parse_spec, run_sweep

runner = CliRunner()
OUTCOME = "final_mean_antigenicity"


def _sweep(tmp: Path, name: str, **tables) -> Path:
    data = {
        "sweep": {"name": name, "days": 2, "replicates": 2, "seed": 1, "record_every": 12},
        "parameters": {"width": 30, "height": 30, "initial_tumor_cells": 10,
                       "tcell_kill_prob": 1.0},
        **tables,
    }
    out = tmp / name
    run_sweep(parse_spec(data), out, backend="serial", progress=False, log=lambda m: 0)
    return out


@pytest.fixture(scope="module")
def half_cleared(tmp_path_factory) -> Path:
    """A 2 x 2 grid: no T cell (never cleared) and many (cleared in every run)."""
    return _sweep(tmp_path_factory.mktemp("edges"), "half",
                  factors={"tcell_influx": [0.0, 50.0], "mutation_rate": [0.0, 0.01]})


@pytest.fixture(scope="module")
def all_cleared(tmp_path_factory) -> Path:
    return _sweep(tmp_path_factory.mktemp("edges"), "cleared",
                  parameters={"width": 30, "height": 30, "initial_tumor_cells": 10,
                              "tcell_kill_prob": 1.0, "tcell_influx": 50.0})


def test_the_sweeps_clear_where_they_should(half_cleared, all_cleared):
    s = Sweep(half_cleared).summary
    assert s.loc[s["tcell_influx"] == 50, OUTCOME].isna().all()
    assert s.loc[s["tcell_influx"] == 0, OUTCOME].notna().all()
    assert Sweep(all_cleared).summary[OUTCOME].isna().all()


@pytest.mark.parametrize("which", ["half_cleared", "all_cleared"])
def test_report_says_how_many_runs_have_no_value(which, request):
    directory = request.getfixturevalue(which)
    n_missing = int(Sweep(directory).summary[OUTCOME].isna().sum())
    n_runs = len(Sweep(directory).summary)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice", "invalid value", ...
        result = runner.invoke(app, ["report", str(directory), "--outcome", OUTCOME,
                                     "--series", "MeanAntigenicity"])
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output and "Traceback" not in result.output
    text = (directory / "report" / "report.md").read_text()
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    assert (f"{n_missing} runs of {n_runs} have no value of `{OUTCOME}` and are left out; "
            "n is the number of runs each mean rests on.") in text


def test_a_heatmap_cell_without_a_value_says_so_rather_than_staying_blank(half_cleared):
    fig = _heatmap(Sweep(half_cleared), OUTCOME, "tcell_influx", "mutation_rate")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count(NOT_AVAILABLE) == 2  # the two cleared points
    assert len(texts) == 4


def test_the_histogram_counts_only_the_runs_with_a_value(all_cleared):
    fig = plot_outcome_by_parameter(Sweep(all_cleared), OUTCOME)
    title = fig.axes[0].get_title()
    assert title.startswith(f"{OUTCOME} over 0 runs")  # not "over 2 runs": none has a value
    assert "2 runs of 2 without a value" in title
