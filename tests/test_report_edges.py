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
from abm.report import NOT_AVAILABLE, Sweep, load_series, plot_outcome_by_parameter
from abm.report.base import OUTCOME_CLASSES
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


# --- a sweep of many runs: its time series and scatter stay readable ----------------------


def _series_by_pandas(directory: Path, series: str):
    """The time series as ``load_series`` promises it, built another way: each run file read
    whole into pandas, kept on the recording grid, aligned by day."""
    import pandas as pd

    from abm.sweep import read_run_table, run_path

    sweep = Sweep(directory)
    steps, every = sweep.spec["sweep"]["steps"], sweep.spec["sweep"]["record_every"]
    rows = {}
    for run_id in sweep.summary["run_id"]:
        df = read_run_table(run_path(directory, run_id))
        df = df[(df["Step"] % every == 0) | (df["Step"] == steps)]
        rows[run_id] = pd.Series(df[series].to_numpy(float), index=df["Day"].to_numpy())
    return pd.DataFrame(rows).T.sort_index(axis=1)


@pytest.mark.parametrize("series", ["TCells", "MeanAntigenicity", "CancerCells"])
def test_the_series_table_is_every_run_on_the_recording_grid(half_cleared, series):
    """``load_series`` reads the run files as Arrow arrays into one matrix: the same table as
    pandas reading each file whole, runs that stopped early (cleared) missing their last days,
    except the cancer cells of a cleared run, which stay 0."""
    import numpy as np
    import pandas as pd

    sweep = Sweep(half_cleared)
    table = load_series(sweep, series)
    expected = _series_by_pandas(half_cleared, series)
    cleared = sweep.summary.set_index("run_id")["outcome"] == "eliminated"
    assert cleared.sum() == 4 and expected.loc[cleared].isna().any(axis=None)  # stopped early
    if series == "CancerCells":
        expected.loc[cleared] = expected.loc[cleared].fillna(0)
    assert list(table.index) == list(sweep.summary["run_id"])
    np.testing.assert_array_equal(table.columns.to_numpy(), expected.columns.to_numpy())
    pd.testing.assert_frame_equal(table, expected.loc[table.index], check_names=False)


def test_many_runs_are_drawn_as_quantile_bands_per_outcome(half_cleared, monkeypatch):
    """Above ``MAX_RUN_LINES`` runs (and ``MAX_LINES`` points) each outcome class is its
    median line with 25-75% and 5-95% bands, labelled with its number of runs; up to it, one
    line per run."""
    import numpy as np

    from abm.report import sweeps

    sweep = Sweep(half_cleared)
    monkeypatch.setattr(sweeps, "MAX_LINES", 2)  # 4 points: more than that
    every_run = sweeps.plot_timeseries(sweep, "CancerCells").axes[0]
    assert len(every_run.lines) == 8 and not every_run.collections
    monkeypatch.setattr(sweeps, "MAX_RUN_LINES", 7)  # 8 runs: more than that
    ax = sweeps.plot_timeseries(sweep, "CancerCells").axes[0]
    table = load_series(sweep, "CancerCells")
    outcome_of = sweep.summary.set_index("run_id")["outcome"]
    classes = [c for c in OUTCOME_CLASSES if (outcome_of == c).any()]
    assert len(classes) >= 2
    assert [line.get_label() for line in ax.lines] == [
        f"{c} ({(outcome_of == c).sum()} runs)" for c in classes]
    assert len(ax.collections) == 2 * len(classes)  # two bands per class
    for line, cls in zip(ax.lines, classes, strict=True):
        runs = table.loc[outcome_of.index[outcome_of == cls]].to_numpy()
        np.testing.assert_allclose(line.get_ydata(), np.median(runs, axis=0))
        outer = ax.collections[2 * classes.index(cls)].get_paths()[0].vertices[:, 1]
        assert outer.max() == pytest.approx(np.quantile(runs, 0.95, axis=0).max())
    assert "median" in ax.get_title() and "8 runs" in ax.get_title()


def test_a_class_is_drawn_only_while_half_its_runs_last():
    """Cleared runs stop early, so on later days a class rests on fewer and fewer runs: its
    median and bands end on the last day where at least half its runs have a value (here 6
    cleared runs stopping after days 1, 2, 2, 3, 4 and 5: drawn to day 3, where 3 of 6 go on),
    and ``_class_bands`` says a class was cut short. A class whose runs all go on is whole."""
    import numpy as np
    import pandas as pd

    from abm.report import sweeps

    days = np.arange(6.0)
    last = [1, 2, 2, 3, 4, 5]
    rows = {f"e{i}": np.where(days <= stop, 100.0 - 10 * days + i, np.nan)
            for i, stop in enumerate(last)}
    rows |= {f"x{i}": 10.0 * days + i for i in range(3)}
    table = pd.DataFrame(rows, index=days).T
    outcome_of = pd.Series({k: "eliminated" if k[0] == "e" else "escape" for k in table.index})
    fig, (ax,) = sweeps._figure()
    assert sweeps._class_bands(ax, table, outcome_of, days) is True
    cleared, escaped = ax.lines
    expected = np.nanmedian(table.loc[[f"e{i}" for i in range(6)]], axis=0)
    expected[4:] = np.nan  # 2 and 1 of 6 runs left
    np.testing.assert_array_equal(np.asarray(cleared.get_ydata(), float), expected)
    np.testing.assert_array_equal(escaped.get_ydata(), 10.0 * days + 1)
    for band in ax.collections[:2]:  # the cleared class's bands end on day 3 too
        assert band.get_paths()[0].vertices[:, 0].max() == 3
    whole = table.loc[[f"x{i}" for i in range(3)]]
    fig, (ax,) = sweeps._figure()
    assert sweeps._class_bands(ax, whole, outcome_of.loc[whole.index], days) is False


def test_the_bands_title_says_when_a_class_was_cut_short(half_cleared, monkeypatch):
    """The plot's title says a class was cut short, and only then: a cleared run's cancer
    cells stay 0 after it stops, so that series is whole."""
    import numpy as np

    from abm.report import sweeps

    sweep = Sweep(half_cleared)
    monkeypatch.setattr(sweeps, "MAX_LINES", 2)
    monkeypatch.setattr(sweeps, "MAX_RUN_LINES", 7)
    cleared = sweep.summary.loc[sweep.summary["outcome"] == "eliminated", "run_id"]
    assert len(cleared) == 4

    def three_stop_a_day_early(sweep, series):  # the fixture's cleared runs stop together
        table = load_series(sweep, series)
        if series == "CancerCells":  # 0 after clearance: whole
            return table
        last = table.loc[cleared.iloc[0]].last_valid_index()
        table.loc[cleared.iloc[:3], last] = np.nan
        return table

    monkeypatch.setattr(sweeps, "load_series", three_stop_a_day_early)
    ax = sweeps.plot_timeseries(sweep, "TCells").axes[0]
    assert "at least half" in ax.get_title()
    line = next(ln for ln in ax.lines if ln.get_label().startswith("eliminated"))
    assert np.isnan(np.asarray(line.get_ydata(), float)).sum() == 4  # day 0.5 too, now
    whole = sweeps.plot_timeseries(sweep, "CancerCells").axes[0]
    assert all(np.isfinite(np.asarray(ln.get_ydata(), float)).all() for ln in whole.lines)
    assert "at least half" not in whole.get_title()


def test_a_scatter_of_many_runs_draws_the_rarer_classes_over_the_commonest(half_cleared,
                                                                            monkeypatch):
    """A sampled parameter's panel: one dot per run, the most frequent class drawn first so
    the others stay visible; the legend keeps the classes' order. Above ``MANY_DOTS`` runs the
    dots are smaller and the legend counts the runs."""
    from abm.report import sweeps

    sweep = Sweep(half_cleared)
    s = sweep.summary.copy()
    s.loc[s.index[:1], "outcome"] = "controlled"  # three classes, of 4, 3 and 1 runs
    counts = s["outcome"].value_counts()
    assert sorted(counts) == [1, 3, 4]
    for many, limit in ((False, 100), (True, 5)):
        monkeypatch.setattr(sweeps, "MANY_DOTS", limit)
        fig, (ax,) = sweeps._figure()
        sweeps._class_scatter(ax, s, "tcell_influx", OUTCOME)
        drawn = [len(c.get_offsets()) for c in ax.collections]
        assert drawn == sorted(counts, reverse=True)  # commonest first, rarest on top
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        classes = [c for c in OUTCOME_CLASSES if c in counts]
        assert labels == ([f"{c} ({counts[c]})" for c in classes] if many else classes)
        assert {c.get_sizes()[0] for c in ax.collections} == ({4} if many else {10})


# --- a point's mean +/- SD over its runs: drawn while at least half of them last ----------


@pytest.fixture(scope="module")
def staggered(tmp_path_factory) -> Path:
    """2 points x 4 runs whose tumours are cleared on different days (some not at all): a
    cleared run stops, so its T cells have no value on the days after."""
    return _sweep(tmp_path_factory.mktemp("edges"), "staggered",
                  sweep={"name": "staggered", "days": 2, "replicates": 4, "seed": 1,
                         "record_every": 6},
                  factors={"tcell_influx": [10.0, 20.0]})


def _point_lines(sweep: Sweep, ax) -> dict:
    """The mean line of each point in a mean +/- SD plot, by point id (the legend's order)."""
    import numpy as np

    labels = {sweep.label(pid): pid for pid in sweep.points}
    return {labels[ln.get_label()]: np.asarray(ln.get_ydata(), float) for ln in ax.lines}


def test_a_points_mean_is_drawn_only_while_half_its_runs_last(staggered):
    """On the days where fewer than half of a point's runs still have a value, their mean
    would be that of the one or two runs left (a jump as the others stop, though no run
    changed): the line and its band end before them, and the title says so."""
    import numpy as np

    from abm.report import plot_timeseries

    sweep = Sweep(staggered)
    table = load_series(sweep, "TCells")
    point_of = sweep.summary.set_index("run_id")["point_id"]
    ax = plot_timeseries(sweep, "TCells").axes[0]
    lines = _point_lines(sweep, ax)
    assert sorted(lines) == [0, 1]
    cut_short = 0
    for pid, drawn in lines.items():
        rows = table.loc[point_of.index[point_of == pid]]
        n = rows.notna().sum()
        np.testing.assert_array_equal(drawn, rows.mean().where(n >= len(rows) / 2))
        cut_short += int(((n > 0) & (n < len(rows) / 2)).sum())
    assert cut_short, "no point has a day with fewer than half its runs: the sweep changed"
    assert "at least half its runs last" in ax.get_title()
    for line, band in zip(ax.lines, ax.collections, strict=True):  # each band ends with it
        last = np.asarray(line.get_xdata())[np.isfinite(line.get_ydata())].max()
        assert band.get_paths()[0].vertices[:, 0].max() == last
    # cleared runs keep 0 cancer cells after they stop: every day drawn, no note
    whole = plot_timeseries(sweep, "CancerCells").axes[0]
    assert all(np.isfinite(y).all() for y in _point_lines(sweep, whole).values())
    assert "at least half" not in whole.get_title()


def test_a_point_whose_runs_stop_one_by_one_ends_where_half_go_on(staggered, monkeypatch):
    """Four runs of a point stopping after days 1, 2, 4 and 6 of 0..7: the mean is drawn on
    days 0-4 (there at least 2 of 4 runs have a value), each day the mean of the runs left;
    the other point's runs all go on, and it is drawn whole."""
    import numpy as np
    import pandas as pd

    from abm.report import sweeps

    sweep = Sweep(staggered)
    point_of = sweep.summary.set_index("run_id")["point_id"]
    days = np.arange(8.0)
    stops = dict(zip(point_of.index[point_of == 0], [1, 2, 4, 6], strict=True))
    rows = {run_id: np.where(days <= stops.get(run_id, 7), 10.0 * (k + 1) + days, np.nan)
            for k, run_id in enumerate(point_of.index)}
    table = pd.DataFrame(rows, index=days).T
    monkeypatch.setattr(sweeps, "load_series", lambda sweep, series: table)
    ax = sweeps.plot_timeseries(sweep, "TCells").axes[0]
    lines = _point_lines(sweep, ax)
    expected = table.loc[list(stops)].mean().to_numpy()
    expected[5:] = np.nan  # 1, 1 and 0 of 4 runs left: not the point's mean
    np.testing.assert_array_equal(lines[0], expected)
    np.testing.assert_allclose(lines[1], table.loc[point_of.index[point_of == 1]].mean())
    assert "each point drawn while at least half its runs last" in ax.get_title()
