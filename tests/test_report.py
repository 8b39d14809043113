"""``abm report`` and ``abm export``: the files they promise exist and hold what the
sweep holds. Sweeps are tiny (40x40 grid, 1-2 days) and run serially."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL
from typer.testing import CliRunner

from abm.cli import app
from abm.report import Sweep, sobol_indices
from abm.sweep import parse_spec, run_sweep

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def sweep(tmp: Path, name: str, sweep: dict | None = None, **tables) -> Path:
    data = {
        "sweep": {
            "name": name,
            "description": f"what does {name} show?",
            "scenario": "escape",
            "days": 1,
            "replicates": 2,
            "seed": 1,
            "record_every": 6,
            **(sweep or {}),
        },
        "parameters": dict(SMALL),
        **tables,
    }
    data["sweep"] = {k: v for k, v in data["sweep"].items() if v is not None}  # None: left out
    out = tmp / name
    run_sweep(parse_spec(data), out, backend="serial", progress=False, log=lambda m: 0)
    return out


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    return sweep(
        tmp_path_factory.mktemp("grid"),
        "grid",
        factors={"tcell_influx": [0.0, 3.0], "mutation_rate": [0.0, 0.1]},
    )


@pytest.fixture(scope="module")
def sobol(tmp_path_factory) -> Path:
    return sweep(
        tmp_path_factory.mktemp("sobol"),
        "sobol",
        sweep={"replicates": 1},
        sample={
            "method": "sobol",
            "n": 4,
            "bounds": {"tcell_influx": [0.0, 4.0], "mutation_rate": [0.0, 0.1]},
        },
    )


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000, path


def test_report_writes_plots_and_a_markdown_table_for_a_two_factor_grid(grid):
    result = runner.invoke(app, ["report", str(grid)])
    assert result.exit_code == 0, result.output
    report = grid / "report"
    for name in ("outcome_by_parameter.png", "outcome_classes.png", "timeseries.png"):
        assert_png(report / name)
    assert not (report / "sobol.png").exists()
    text = (report / "report.md").read_text()
    assert text.startswith("# Sweep report: grid")
    assert "**Question.** what does grid show?" in text
    assert "| point | tcell_influx | mutation_rate | final_burden mean ± SD |" in text
    assert text.count("\n| 3 | 3 | 0.1 |") == 1  # one row per point
    assert "![timeseries.png](timeseries.png)" in text


def test_report_for_one_factor_and_a_chosen_outcome_and_series(tmp_path):
    out = sweep(tmp_path, "one", factors={"tcell_influx": [0.0, 2.0, 4.0]})
    target = tmp_path / "elsewhere"
    result = runner.invoke(
        app,
        ["report", str(out), "--outcome", "escaped", "--series", "TCells", "--out", str(target)],
    )
    assert result.exit_code == 0, result.output
    assert_png(target / "outcome_by_parameter.png")
    assert "## escaped by point" in (target / "report.md").read_text()


def test_report_treats_arms_as_a_categorical_factor(tmp_path):
    """Arms (treated / untreated, hot / cold) are the rows of the heatmap, in the spec's order."""
    out = sweep(
        tmp_path,
        "arms",
        arms={"untreated": {"anti_pd1_start_day": "none"}, "treated": {}},
        factors={"tcell_influx": [0.0, 3.0]},
        sweep={"scenario": "checkpoint"},
    )
    assert Sweep(out).factors == {"arm": ["untreated", "treated"], "tcell_influx": [0.0, 3.0]}
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert_png(out / "report" / "outcome_by_parameter.png")
    text = (out / "report" / "report.md").read_text()
    assert "| point | arm | tcell_influx | final_burden mean ± SD |" in text
    assert text.count("\n| 3 | treated | 3 |") == 1
    assert "(master seed 1;" in text


def test_one_factor_panel_puts_levels_where_they_are_and_none_apart(tmp_path):
    """Numeric levels at their values joined by the mean; "none" (never given) left of them
    and not joined; arms side by side and not joined; no SD band below zero for counts."""
    import matplotlib.pyplot as plt

    from abm.report import plot_outcome_by_parameter

    out = sweep(tmp_path, "timing", factors={"anti_pd1_start_day": ["none", 0, 3, 12]},
                sweep={"scenario": "checkpoint", "replicates": 3})
    fig = plot_outcome_by_parameter(Sweep(out), "final_burden")
    ax = fig.axes[0]
    (mean_line,) = [line for line in ax.lines if line.get_label() == "mean"]
    assert list(mean_line.get_xdata()) == [0, 3, 12]  # at their values, "none" not joined
    ticks = dict(zip([t.get_text() for t in ax.get_xticklabels()], ax.get_xticks(),
                     strict=True))
    assert ticks["none"] < 0 and ticks["12"] == 12  # apart, left of day 0
    band = [c for c in ax.collections if c.get_label() == "mean ± SD"][0]
    assert band.get_paths()[0].vertices[:, 1].min() >= 0  # a count's band stops at zero
    plt.close(fig)
    arms = sweep(tmp_path, "arms2", arms={"untreated": {"anti_pd1_start_day": "none"},
                                          "treated": {}}, sweep={"scenario": "checkpoint"})
    fig = plot_outcome_by_parameter(Sweep(arms), "final_burden")
    assert not [line for line in fig.axes[0].lines if line.get_label() == "mean"]
    plt.close(fig)


def test_report_names_listed_seeds(tmp_path):
    out = sweep(tmp_path, "listed", sweep={"seed": None, "replicates": None, "seeds": [4, 9]},
                factors={"tcell_influx": [0.0, 3.0]})
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert "= 4 runs (seeds 4, 9;" in (out / "report" / "report.md").read_text()


def test_report_of_a_sobol_sample_has_first_order_and_total_indices(sobol):
    result = runner.invoke(app, ["report", str(sobol)])
    assert result.exit_code == 0, result.output
    assert_png(sobol / "report" / "sobol.png")
    text = (sobol / "report" / "report.md").read_text()
    assert "## Sobol indices of final_burden" in text
    indices = sobol_indices(Sweep(sobol), "final_burden")
    assert [r["parameter"] for r in indices] == ["tcell_influx", "mutation_rate"]
    assert all({"S1", "S1_conf", "ST", "ST_conf"} <= set(r) for r in indices)


def test_report_refuses_an_unknown_outcome_and_a_directory_that_is_not_a_sweep(grid, tmp_path):
    result = runner.invoke(app, ["report", str(grid), "--outcome", "happiness"])
    assert result.exit_code == 2
    assert "--outcome 'happiness': not a numeric summary column of this sweep" in result.output
    assert "final_burden" in result.output
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest.json" in result.output


def test_report_on_an_unfinished_sweep_says_it_is_partial(grid, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(grid, partial)
    (partial / "summary.parquet").unlink()
    (partial / "runs" / "p00003-r001.parquet").unlink()
    result = runner.invoke(app, ["report", str(partial)])
    assert result.exit_code == 0, result.output
    assert "**Partial:** 7 of 8 runs" in (partial / "report" / "report.md").read_text()
    assert result.output.startswith(  # said where it is run, as the export says it
        f"warning: {partial}: partial: 7 of 8 runs finished so far; the report holds those "
        "(rerun the same `abm sweep` command to finish the sweep)\n"), result.output


def test_export_csv_writes_the_summary_and_every_run(grid):
    result = runner.invoke(app, ["export", str(grid), "--csv"])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(grid / "export" / "summary.csv")
    pd.testing.assert_series_equal(
        summary["final_burden"], pd.read_parquet(grid / "summary.parquet")["final_burden"]
    )
    series = pd.read_csv(grid / "export" / "timeseries.csv")
    rows = sum(len(pd.read_parquet(p)) for p in (grid / "runs").glob("*.parquet"))
    assert len(series) == rows
    assert list(series["run_id"].unique()) == list(summary["run_id"])


def test_every_exported_row_names_its_points_parameters(grid, tmp_path):
    """The export folder holds no file per point or run named by an index: a researcher finds
    a point's rows by the values of its varied parameters, which every row of summary.csv and
    timeseries.csv carries by name (those of the manifest's point)."""
    import json

    from abm.report import export_csv

    paths = export_csv(grid, out=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths) == [
        "about.json", "summary.csv", "timeseries.csv"]
    manifest = json.loads((grid / "manifest.json").read_text())
    points = {r["point_id"]: r["parameters"] for r in manifest["runs"]}
    varied = json.loads((tmp_path / "about.json").read_text())["varied"]
    assert varied == ["tcell_influx", "mutation_rate"]
    for name in ("summary.csv", "timeseries.csv"):
        rows = pd.read_csv(tmp_path / name)
        for point_id, values in rows.groupby("point_id")[varied]:
            assert (values == pd.Series(points[point_id])[varied]).all(axis=None), name
        assert rows.groupby(varied)["point_id"].nunique().eq(1).all()  # one point per values


@pytest.mark.parametrize("batch_rows", [1, 7, 10**9])
def test_the_time_series_are_exported_as_each_run_alone_would_be(grid, tmp_path, monkeypatch,
                                                                 batch_rows):
    """Runs are formatted together in batches of about ``EXPORT_BATCH_ROWS`` rows (one run
    each, two of these 5-row runs, all 8 at once): ``timeseries.csv`` is byte for byte each
    run's own table written in run order, the header once."""
    import io

    from abm.report import export
    from abm.sweep import read_run_table, run_path

    monkeypatch.setattr(export, "EXPORT_BATCH_ROWS", batch_rows)
    export.export_csv(grid, out=tmp_path)
    expected = io.StringIO()
    for i, run_id in enumerate(Sweep(grid).summary["run_id"]):
        own = export.csv_ready(read_run_table(run_path(grid, run_id)))
        own.to_csv(expected, index=False, header=i == 0)
    with open(tmp_path / "timeseries.csv", newline="") as fh:
        assert fh.read() == expected.getvalue()


def test_runs_whose_columns_differ_are_not_batched_together(monkeypatch):
    """A run whose column types differ from the run before starts a new batch, so no integer
    column is widened to float (``3`` would be written ``3.0``) by joining it with another."""
    import pyarrow as pa

    from abm.report import export

    tables = {"a": pa.table({"Step": [0, 1], "TCells": [3, 4]}),
              "b": pa.table({"Step": [0, 1], "TCells": [5, 6]}),
              "c": pa.table({"Step": [0, 1], "TCells": [0.5, 1.5]})}
    monkeypatch.setattr(export, "_read_run", lambda sweep, run_id, arrow: tables[run_id])
    batches = list(export._series_batches(None, ["a", "b", "c"]))
    assert [len(b) for b in batches] == [4, 2]
    assert batches[0]["TCells"].tolist() == [3, 4, 5, 6]
    assert str(batches[0]["TCells"].dtype) == "int64"
    monkeypatch.setattr(export, "EXPORT_BATCH_ROWS", 2)
    assert [len(b) for b in export._series_batches(None, ["a", "b", "c"])] == [2, 2, 2]


def test_export_defaults_to_csv_and_says_what_it_replaced(grid, tmp_path):
    out = tmp_path / "csv"
    first = runner.invoke(app, ["export", str(grid), "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert (out / "summary.csv").exists() and (out / "timeseries.csv").exists()
    assert "replaced" not in first.output
    again = runner.invoke(app, ["export", str(grid), "--out", str(out)])
    assert again.exit_code == 0 and again.output.count("(replaced)") == 3
    assert f"wrote {out / 'about.json'} (replaced)" in again.output


def test_export_of_a_plain_sweep_removes_an_earlier_cohort_exports_patients(grid, tmp_path):
    """A folder that held a cohort's export: exporting a sweep that is not a cohort into it
    replaces summary.csv, timeseries.csv and about.json, and removes the cohort's
    patients.csv, which would otherwise pass for this sweep's patients; the CLI says so."""
    import json

    out = tmp_path / "csv"
    out.mkdir()
    (out / "patients.csv").write_text("patient,arm,best_response\n0,untreated,PD\n")
    (out / "about.json").write_text(json.dumps({"format": "abm-export/1"}))  # an export's
    result = runner.invoke(app, ["export", str(grid), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "patients.csv").exists()
    assert sorted(p.name for p in out.iterdir()) == ["about.json", "summary.csv",
                                                     "timeseries.csv"]
    assert f"removed {out / 'patients.csv'} (an earlier cohort export's" in result.output


@pytest.mark.parametrize("about", [None, "{}", "not json", '{"format": "other/1"}'])
def test_export_into_a_folder_of_the_users_own_files_is_refused(grid, tmp_path, about):
    """A ``summary.csv`` or ``patients.csv`` that no export wrote (no export's about.json
    beside it) is the user's: the export refuses, naming them, and leaves them as they were
    (it removed a ``patients.csv`` and replaced a ``summary.csv`` before)."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.csv").write_text("my numbers\n")
    (out / "patients.csv").write_text("my patients\n")
    if about is not None:
        (out / "about.json").write_text(about)
    result = runner.invoke(app, ["export", str(grid), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {out}: holds summary.csv, patients.csv") and (
        "not written by abm export" in result.output), result.output
    assert (out / "summary.csv").read_text() == "my numbers\n"
    assert (out / "patients.csv").read_text() == "my patients\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["summary.csv", "patients.csv"] + (["about.json"] if about is not None else []))


def test_a_report_into_a_folder_with_the_users_own_report_md_is_refused(grid, tmp_path):
    """A ``report.md`` that does not start with a report's heading is the user's: the report
    refuses, naming it, and writes nothing there; an earlier report is replaced."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("# My notes\n")
    result = runner.invoke(app, ["report", str(grid), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {out}: holds report.md, not written by abm "
                                    "report"), result.output
    assert [p.name for p in out.iterdir()] == ["report.md"]
    assert (out / "report.md").read_text() == "# My notes\n"
    ours = tmp_path / "ours"
    for _ in range(2):
        again = runner.invoke(app, ["report", str(grid), "--out", str(ours)])
        assert again.exit_code == 0, again.output
    assert "(replaced the earlier report)" in again.output
    # the sweep's own report folder has only abm's files: figures an interrupted report of an
    # earlier version left there without their report.md are replaced
    partial = _copy(grid, tmp_path, "own")
    (partial / "report").mkdir()
    (partial / "report" / "timeseries.png").write_bytes(b"old")
    assert runner.invoke(app, ["report", str(partial)]).exit_code == 0
    assert (partial / "report" / "timeseries.png").read_bytes() != b"old"


def test_export_and_report_are_refused_inside_the_runs_folder(grid):
    """Files among the run files would break reading them all (``pd.read_parquet(DIR /
    "runs")``): ``--out DIR/runs`` (or a folder in it) is one line, and nothing is written."""
    from abm.report import ReportError, export_csv, write_report

    before = sorted((grid / "runs").iterdir())
    for command, out in (("export", grid / "runs"), ("report", grid / "runs" / "report")):
        result = runner.invoke(app, [command, str(grid), "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert result.output == (f"error: --out {out}: inside the sweep's runs folder, which "
                                 "holds only run files; give another folder\n")
    for write, name in ((export_csv, "export_csv"), (write_report, "write_report")):
        with pytest.raises(ReportError, match=rf"^{name}: out .*: inside the sweep's runs"):
            write(grid, out=grid / "runs")
    assert sorted((grid / "runs").iterdir()) == before


def test_a_failed_export_or_report_leaves_the_earlier_one_as_it_was(grid, tmp_path,
                                                                     monkeypatch):
    """Every file of an export (of a report) is written whole before any is renamed into
    place: a full disk at the last file (about.json; report.md) leaves the earlier files
    byte for byte, and no temporary file."""
    import abm.run
    from abm.report.export import export_csv
    from abm.report.sweeps import write_report

    export_csv(grid, out=tmp_path / "export")
    write_report(grid, out=tmp_path / "report")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    partial = _copy(grid, tmp_path, "partial")  # a different sweep: different files
    (partial / "summary.parquet").unlink()
    next(iter(sorted((partial / "runs").glob("*.parquet")))).unlink()
    real = abm.run.AtomicFiles.write

    def full_at_last(self, path, data):
        if path.name in ("about.json", "report.md"):
            raise OSError(28, "No space left on device", str(path))
        return real(self, path, data)

    monkeypatch.setattr(abm.run.AtomicFiles, "write", full_at_last)
    for command, name in (("export", "about.json"), ("report", "report.md")):
        result = runner.invoke(app, [command, str(partial), "--out", str(tmp_path / command)])
        assert result.exit_code == 2, result.output
        assert f"{tmp_path / command / name}: No space left on device" in result.output
    after = {p: p.read_bytes() for p in tmp_path.rglob("*")
             if p.is_file() and partial not in p.parents}
    assert after == before


def test_export_says_how_the_runs_were_made_in_about_json(grid, tmp_path):
    """about.json, next to the CSV files, carries what the sweep's manifest says of how the
    runs were made (read from it, not from the machine that exports: here the manifest is
    edited to show it), and summary.csv ends with the engine, the column to filter on when
    summaries of a Mesa and a fast sweep are put together."""
    import json

    import abm

    made = _copy(grid, tmp_path, "made")
    manifest = json.loads((made / "manifest.json").read_text())
    manifest["engine"] = "fast"
    manifest["provenance"] = {**manifest["provenance"], "git_commit": "0123abc" * 5 + "01234",
                              "abm": "0.0.9"}
    manifest["spec_text"] = '[sweep]\nname = "grid"\n'
    (made / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "csv"
    result = runner.invoke(app, ["export", str(made), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"wrote {out / name}" for name in
                                          ("summary.csv", "timeseries.csv", "about.json")]
    about = json.loads((out / "about.json").read_text())
    assert about["format"] == "abm-export/1" and about["sweep"] == "grid"
    assert about["description"] == "what does grid show?"
    assert about["engine"] == "fast"
    assert about["provenance"] == manifest["provenance"]  # as the runs were made
    assert about["completed_with"] == manifest["completed_with"]
    assert (about["started"], about["finished"]) == (manifest["created"], manifest["completed"])
    assert about["complete"] is True and about["partial"] is None
    assert about["runs_exported"] == about["runs_in_sweep"] == 8
    assert (about["scenario"], about["days"], about["steps"], about["replicates"]) == (
        "escape", 1.0, 24, 2)
    assert (about["seed"], about["seeds"], about["points"]) == (1, None, 4)
    assert about["varied"] == ["tcell_influx", "mutation_rate"]
    assert about["spec"] == manifest["spec"] and about["spec_text"] == manifest["spec_text"]
    assert about["base_parameters"] == manifest["base_parameters"]
    assert about["spec_hash"] == manifest["spec_hash"]
    summary = pd.read_csv(out / "summary.csv")
    series = pd.read_csv(out / "timeseries.csv")
    assert about["files"]["summary.csv"]["rows"] == len(summary) == 8
    assert about["files"]["timeseries.csv"]["rows"] == len(series)
    assert "patients.csv" not in about["files"]
    assert list(summary.columns)[-1] == "engine" and set(summary["engine"]) == {"fast"}
    parquet = pd.read_parquet(grid / "summary.parquet")
    assert list(summary.columns)[:-1] == list(parquet.columns)  # the columns as they were
    exported = about["exported"]  # the export's own, labelled so
    assert exported["abm_version"] == abm.__version__ and exported["from"] == str(made.resolve())


# --- writing on a full disk: the path is named, no temporary file is left ---------------------


def _full_disk(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")  # as os.fsync raises it: no file name


def test_atomic_write_bytes_names_the_file_on_a_full_disk(tmp_path, monkeypatch):
    import os

    from abm.run import atomic_write_bytes
    from abm.sweep.storage import os_error_text

    target = tmp_path / "runs" / "p00000-r000.parquet"
    monkeypatch.setattr(os, "fsync", _full_disk)
    with pytest.raises(OSError) as err:
        atomic_write_bytes(target, b"data")
    assert os_error_text(err.value) == f"{target}: No space left on device"
    assert list(target.parent.iterdir()) == []  # no temporary file, no half-written file


def test_a_sweep_on_a_full_disk_names_the_run_file_and_keeps_the_finished_runs(
    tmp_path, monkeypatch
):
    import errno

    import abm.run
    from abm.sweep import SweepError, run_path

    real = abm.run.os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 3:  # the manifest, the first run, then the second run's file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(abm.run.os, "fsync", fsync)
    out = tmp_path / "full"
    with pytest.raises(SweepError) as err:
        sweep(tmp_path, "full")
    assert str(err.value) == f"{run_path(out, 'p00000-r001')}: No space left on device"
    assert [p.name for p in (out / "runs").iterdir()] == ["p00000-r000.parquet"]


@pytest.mark.parametrize("fails", ["write", "flush", "fsync", "replace"])
def test_export_on_a_full_disk_names_the_file_and_leaves_no_temporary_file(
    grid, tmp_path, monkeypatch, fails
):
    """``abm export`` streams timeseries.csv through ``AtomicFiles.open_text``: whatever step
    fails (the usual place for a full disk is the flush after the block), the temporary file
    goes and the message names the file."""
    import io
    import os

    import abm.report.export as R
    import abm.run
    from abm.sweep.storage import os_error_text

    out = tmp_path / "export"
    out.mkdir()
    if fails == "write":
        monkeypatch.setattr(pd.DataFrame, "to_csv", _full_disk)
    elif fails == "flush":
        real_fdopen = os.fdopen

        def fdopen(fd, *args, **kwargs):
            fh = real_fdopen(fd, *args, **kwargs)
            proxy = type("Full", (io.TextIOWrapper,), {"flush": _full_disk})
            return proxy(fh.detach(), newline="")

        monkeypatch.setattr(abm.run.os, "fdopen", fdopen)
    else:
        monkeypatch.setattr(abm.run.os, fails, _full_disk)
    with pytest.raises(OSError) as err:
        R.export_csv(grid, out=out)
    assert os_error_text(err.value) == f"{out / 'timeseries.csv'}: No space left on device"
    assert list(out.iterdir()) == []


def test_report_counts_in_the_singular_too(tmp_path):
    one = sweep(tmp_path, "one", {"replicates": 1})
    result = runner.invoke(app, ["report", str(one)])
    assert result.exit_code == 0, result.output
    assert "- 1 point x 1 replicate = 1 run (" in (one / "report" / "report.md").read_text()


# --- broken and copied run files, partial sweeps, values that cannot be shown -----------------


def _copy(grid: Path, tmp: Path, name: str) -> Path:
    copy = tmp / name
    shutil.copytree(grid, copy, ignore=shutil.ignore_patterns("report", "export"))
    return copy


def _one_error_line(result, path: Path) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    assert result.output.startswith(f"error: {path}: broken run file (")
    assert "rerun the same `abm sweep` command" in result.output
    return result.output


def test_report_and_export_name_a_run_file_copied_from_another_run(grid, tmp_path):
    """A run file copied over another run's (finished sweep: summary.parquet still lists the
    old numbers; unfinished: the summary is rebuilt from the files) is named with the fix, not
    exported or plotted as if it were that run."""
    from abm.sweep import SweepError, load_sweep

    copied = _copy(grid, tmp_path, "copied")
    runs = copied / "runs"
    shutil.copy(runs / "p00000-r000.parquet", runs / "p00000-r001.parquet")
    bad = runs / "p00000-r001.parquet"
    for command in ("export", "report"):
        out = tmp_path / command
        line = _one_error_line(runner.invoke(app, [command, str(copied), "--out", str(out)]), bad)
        assert "not run p00000-r001's but run p00000-r000's" in line
        assert not (out / "timeseries.csv").exists()
    record = load_sweep(copied).run("p00000-r001")
    with pytest.raises(SweepError, match="p00000-r001.parquet: broken run file"):
        record.series()
    with pytest.raises(SweepError, match="p00000-r001.parquet: broken run file"):
        record.probes()
    (copied / "summary.parquet").unlink()  # unfinished: the summary comes from the run files
    (runs / "p00003-r001.parquet").unlink()
    _one_error_line(runner.invoke(app, ["export", str(copied), "--out", str(tmp_path / "e")]),
                    bad)


def test_a_broken_run_file_is_not_blamed_on_the_series(grid, tmp_path):
    broken = _copy(grid, tmp_path, "broken")
    bad = broken / "runs" / "p00001-r001.parquet"
    with open(bad, "r+b") as fh:
        fh.truncate(100)
    line = _one_error_line(runner.invoke(app, ["report", str(broken)]), bad)
    assert "--series" not in line and "time-series column" not in line


def test_the_point_table_shows_no_sd_from_one_value_and_no_mean_from_none(grid, tmp_path):
    """One run at a point: its value and no SD (not "± 0"); no value: "–" with n 0, not
    "nan ± 0". ``per_point`` keeps numbers: NaN, not 0 and not text."""
    from abm.report import per_point

    partial = _copy(grid, tmp_path, "partial")
    (partial / "summary.parquet").unlink()
    (partial / "runs" / "p00003-r001.parquet").unlink()
    stats = per_point(Sweep(partial), "final_burden")
    assert stats.loc[3, "n"] == 1 and pd.isna(stats.loc[3, "sd"]) and stats.loc[0, "sd"] >= 0
    assert pd.api.types.is_float_dtype(stats["sd"])
    result = runner.invoke(app, ["report", str(partial)])
    assert result.exit_code == 0, result.output
    text = (partial / "report" / "report.md").read_text()
    assert f"\n| 3 | 3 | 0.1 | {stats.loc[3, 'mean']:.4g} ± – | 1 |" in text
    summary = Sweep(partial).summary
    assert summary["time_to_elimination_day"].isna().all()  # nothing eliminated in a day
    result = runner.invoke(app, ["report", str(partial), "--outcome", "time_to_elimination_day"])
    assert result.exit_code == 0, result.output
    text = (partial / "report" / "report.md").read_text()
    assert "nan" not in text and "± 0 " not in text
    assert text.count(" | – | 0 | ") == 4  # every point: no value, n 0


def test_the_sobol_table_says_when_the_outcome_does_not_vary(sobol, tmp_path):
    out = tmp_path / "constant"
    result = runner.invoke(app, ["report", str(sobol), "--outcome", "initial_burden",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    section = text.split("## Sobol indices of initial_burden")[1]
    assert "nan" not in section and "| parameter |" not in section
    assert "`initial_burden` does not vary (it is 60 at every point), so it has no Sobol " \
           "indices." in section


def test_probes_of_a_misspelled_probe_is_an_error_naming_the_recorded_ones(grid, tmp_path):
    import dataclasses

    from abm.sweep import load_sweep

    with pytest.raises(ValueError, match="no probe 'snapshot' in this sweep.*recorded none"):
        load_sweep(grid).probes("snapshot")
    probed = sweep(tmp_path, "probed", {"replicates": 1}, probes={"snapshot": {"day": 1}})
    data = load_sweep(probed)
    assert data.probes("snapshot")["p00000-r000"]["day"] == 1.0
    with pytest.raises(ValueError, match=r"'snapshott'.*did you mean snapshot\? \(its probes: "
                                         r"snapshot\)"):
        data.probes("snapshott")
    # a probe the spec declares but a run holds no result of: None, as before
    spec = {**data.spec, "probes": {**data.spec["probes"], "contacts": {}}}
    other = dataclasses.replace(data, manifest={**data.manifest, "spec": spec})
    assert other.probes("contacts") == {"p00000-r000": None}


def test_export_of_an_unfinished_sweep_says_it_is_partial(grid, tmp_path):
    """As the report does: one line (a ``PartialSweep`` warning from Python)."""
    import warnings

    partial = _copy(grid, tmp_path, "partial")
    (partial / "summary.parquet").unlink()
    (partial / "runs" / "p00003-r001.parquet").unlink()
    result = runner.invoke(app, ["export", str(partial), "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    assert f"warning: {partial}: partial: 7 of 8 runs finished so far" in result.output
    from abm.report import PartialSweep, export_csv

    with pytest.warns(PartialSweep, match="7 of 8 runs"):
        export_csv(partial, out=tmp_path / "e2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_csv(grid, out=tmp_path / "e3")  # a finished sweep: nothing said


def test_the_export_of_an_unfinished_sweep_says_so_in_about_json(grid, tmp_path):
    """Someone given only the export folder can tell it holds part of the sweep."""
    import json
    import warnings

    from abm.report import export_csv

    partial = _copy(grid, tmp_path, "partial")
    (partial / "summary.parquet").unlink()
    (partial / "runs" / "p00003-r001.parquet").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = export_csv(partial, out=tmp_path / "e")
    assert [p.name for p in paths] == ["summary.csv", "timeseries.csv", "about.json"]
    about = json.loads((tmp_path / "e" / "about.json").read_text())
    assert about["complete"] is False
    assert about["partial"].startswith("7 of 8 runs had finished when this was exported")
    assert "rerun the same `abm sweep` command" in about["partial"]
    assert (about["runs_exported"], about["runs_in_sweep"]) == (7, 8)
    assert about["finished"] is None and about["completed_with"] is None
    assert about["files"]["summary.csv"]["rows"] == 7


def test_reading_a_sweep_starts_no_arrow_thread_pool(grid, tmp_path):
    """Loading a sweep, its report and its export read Parquet without Arrow's thread pools
    (``abm.sweep.storage.read_parquet``): a process that exits while a pool thread winds down
    can abort with "terminate called without an active exception" (exit code 134) after its
    work is done, as a script reading a sweep did twice here (apache/arrow#34314). In a fresh
    process, the native threads after these reads are those there were after the imports
    (pandas.read_parquet started three)."""
    import subprocess
    import sys

    script = f"""
import os, warnings
from pathlib import Path
import abm.report, abm.run, abm.sweep
from abm.sweep.storage import read_parquet, read_run_table
threads = lambda: len(os.listdir("/proc/self/task"))
before = threads()
warnings.simplefilter("ignore")
directory = Path({str(grid)!r})
sweep = abm.sweep.load_sweep(directory)
read_parquet(directory / "summary.parquet")
read_run_table(next((directory / "runs").glob("*.parquet")))
abm.report.export_csv(directory, out=Path({str(tmp_path / "x")!r}))
abm.report.write_report(directory, out=Path({str(tmp_path / "r")!r}))
print(before, threads())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert after == before, (before, after)
