"""Loading, reporting and exporting awkward sweep directories, as a researcher meets them: a
wrong argument, a sweep with no finished run, a Sobol sweep whose outcome has no value at some
points (or whose points are not all finished), a manifest that is not an abm sweep's, a path
next to a sweep directory, a cohort whose ``patients.parquet`` is broken or whose arms are not
all finished, and an export into a folder holding an earlier export. Sweeps are tiny (20x20
grid, 2 days, 10 founder cells) and run serially."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from abm.cli import app
from abm.report import ReportError, Sweep, export_csv, iter_runs, sobol_indices, write_report
from abm.sweep import SweepError, load_sweep, parse_spec, run_sweep

runner = CliRunner()
TINY = {"width": 20, "height": 20, "initial_tumor_cells": 10}
CLEARED = "final_mean_antigenicity"  # NaN for a run whose tumour is gone


def _sweep(tmp: Path, name: str, sweep: dict | None = None, **tables) -> Path:
    data = {
        "sweep": {"name": name, "days": 2, "replicates": 2, "seed": 1, "record_every": 12,
                  **(sweep or {})},
        "parameters": dict(TINY),
        **tables,
    }
    out = tmp / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_sweep(parse_spec(data), out, backend="serial", progress=False, log=lambda m: 0)
    return out


def _copy(src: Path, tmp: Path, name: str) -> Path:
    dst = tmp / name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("report", "export"))
    return dst


def _unfinish(directory: Path, *run_ids: str) -> None:
    """Make a finished sweep one that is still running: no summary, these runs not done."""
    for name in ("summary.parquet", "patients.parquet"):
        (directory / name).unlink(missing_ok=True)
    for run_id in run_ids:
        (directory / "runs" / f"{run_id}.parquet").unlink()


def _one_line(result, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, (result.output, result.exception)
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    return result.output.strip()


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    return _sweep(tmp_path_factory.mktemp("grid"), "grid",
                  factors={"tcell_influx": [0.0, 3.0]})


@pytest.fixture(scope="module")
def sobol(tmp_path_factory) -> Path:
    """Two Saltelli samples of 8 points: without T cells (every run keeps its tumour) and with
    many (every run clears it: no mean antigenicity anywhere)."""
    return _sweep(
        tmp_path_factory.mktemp("sobol"), "sobol", {"replicates": 1},
        factors={"tcell_influx": [0.0, 50.0]},
        sample={"method": "sobol", "n": 2,
                "bounds": {"mutation_rate": [0.0, 0.1], "tcell_kill_prob": [0.9, 1.0]}},
    )


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """2 patients x 2 arms (untreated, anti_pd1): runs p00000, p00001 untreated (patients 0
    and 1), p00002, p00003 anti_pd1."""
    data = {
        "sweep": {"name": "cohort", "days": 2, "seed": 1, "record_every": 1},
        "parameters": dict(TINY),
        "patients": {"n": 2, "seed": 11, "uniform": {"founder_mhc": [0.5, 1.0]}},
        "arms": {"untreated": {}, "anti_pd1": {"anti_pd1_start_day": 1}},
        "response": {"baseline_day": 1},
    }
    out = tmp_path_factory.mktemp("cohort") / "cohort"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1 day after baseline: SD can never be called
        run_sweep(parse_spec(data), out, backend="serial", progress=False, log=lambda m: 0)
    return out


# --- the argument -----------------------------------------------------------------------------


@pytest.mark.parametrize("value, shown", [(None, "None (NoneType)"), (3, "3 (int)"),
                                          (b"sweeps/x", "b'sweeps/x' (bytes)")])
def test_a_directory_that_is_not_a_path_is_named_with_what_is_allowed(value, shown):
    allowed = "must be the path of a sweep directory (str or Path, e.g. 'sweeps/checkpoint')"
    with pytest.raises(TypeError) as err:
        load_sweep(value)
    assert str(err.value) == f"load_sweep: out {allowed}, got {shown}"
    for call, name in ((write_report, "write_report"), (export_csv, "export_csv"),
                       (lambda d: list(iter_runs(d)), "iter_runs")):
        with pytest.raises(TypeError) as err:
            call(value)
        assert str(err.value) == f"{name}: directory {allowed}, got {shown}"


def test_an_empty_path_is_not_taken_for_the_current_folder(grid):
    with pytest.raises(SweepError, match='^load_sweep: out "": an empty path; give the sweep'):
        load_sweep("")
    for call in (write_report, export_csv):
        with pytest.raises(ReportError, match='directory "": an empty path'):
            call("")
        with pytest.raises(ReportError, match=f'^{call.__name__}: out "": an empty path'):
            call(grid, out="")
        with pytest.raises(TypeError, match=rf"^{call.__name__}: out must be a folder path "
                                            r"\(str or Path\), or None for .*, got 3 \(int\)$"):
            call(grid, out=3)


# --- a sweep with no finished run -------------------------------------------------------------


def _not_started(grid: Path, tmp: Path) -> Path:
    """A sweep stopped (or still running) before its first run finished: its manifest, lock
    and an empty runs/ folder."""
    out = tmp / "not-started"
    (out / "runs").mkdir(parents=True)
    shutil.copy(grid / "manifest.json", out / "manifest.json")
    (out / ".lock").write_text("12345")
    return out


def test_load_sweep_of_a_sweep_with_no_finished_run_has_the_usual_columns(grid, tmp_path):
    data = load_sweep(_not_started(grid, tmp_path))
    finished = load_sweep(grid).summary
    assert len(data.summary) == 0 and data.runs == [] and not data.complete
    assert list(data.summary.columns) == list(finished.columns)
    assert data.summary.dtypes.to_dict() == finished.dtypes.to_dict()
    assert data.summary.groupby("point_id")["final_burden"].mean().empty  # usable as usual


@pytest.mark.parametrize("command", ["report", "export"])
def test_report_and_export_say_no_run_has_finished(grid, tmp_path, command):
    out = _not_started(grid, tmp_path)
    line = _one_line(runner.invoke(app, [command, str(out)]))
    assert line == (f"error: {out}: no run of this sweep has finished yet (0 of 4), so there is "
                    "nothing to report or export; rerun the same `abm sweep` command to run "
                    "them (if it is running now, wait for its first run to finish)")
    assert sorted(p.name for p in out.iterdir()) == [".lock", "manifest.json", "runs"]


# --- Sobol indices ----------------------------------------------------------------------------


def test_a_sobol_outcome_without_a_value_at_some_points_still_gets_a_report(sobol, tmp_path):
    out = tmp_path / "report"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice", no SALib warning
        result = runner.invoke(app, ["report", str(sobol), "--outcome", CLEARED,
                                     "--series", "CancerCells", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    for name in ("outcome_by_parameter.png", "outcome_classes.png", "timeseries.png",
                 "sobol.png", "report.md"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    section = text.split(f"## Sobol indices of {CLEARED}")[1]
    assert "nan" not in section.lower()
    assert (f"`{CLEARED}` has no value at 8 of 8 points with tcell_influx=50 (it is taken over "
            "the cancer cells, and every run there cleared its tumour), so no Sobol indices can "
            "be computed: Saltelli's estimates need a value at every point.") in section
    # the combination with a value at every point keeps its indices, in the table
    assert "| tcell_influx=0 | mutation_rate |" in section
    assert "| tcell_influx=0 | tcell_kill_prob |" in section
    assert "| tcell_influx=50 |" not in section
    rows = [r for r in sobol_indices(Sweep(sobol), CLEARED) if r["factors"] == "tcell_influx=0"]
    assert len(rows) == 2 and all(math.isfinite(r["S1"]) and math.isfinite(r["ST"])
                                  for r in rows)


def test_an_outcome_every_run_has_keeps_its_indices_in_every_combination(sobol):
    rows = sobol_indices(Sweep(sobol), "final_burden")
    assert {r["factors"] for r in rows} == {"tcell_influx=0", "tcell_influx=50"}
    assert all(r["no_value"] == 0 and r["unfinished"] == 0 for r in rows)
    varying = [r for r in rows if r["constant"] is None]
    assert varying and all(math.isfinite(r["S1"]) for r in varying)


def test_a_sobol_sweep_not_yet_finished_gets_a_report_with_the_indices_it_can_have(sobol,
                                                                                   tmp_path):
    partial = _copy(sobol, tmp_path, "partial")
    _unfinish(partial, "p00009-r000")  # a point of the tcell_influx=50 sample
    result = runner.invoke(app, ["report", str(partial), "--outcome", CLEARED])
    assert result.exit_code == 0, (result.output, result.exception)
    text = (partial / "report" / "report.md").read_text()
    assert "> **Partial:** 15 of 16 runs finished so far." in text
    assert (f"No Sobol indices of `{CLEARED}` with tcell_influx=50 yet: 1 of 8 points have no "
            "finished run, and Saltelli's estimates need every point (rerun the same `abm "
            "sweep` command to finish the sweep).") in text
    assert "| tcell_influx=0 | mutation_rate |" in text


# --- manifests and paths that are not a sweep's ------------------------------------------------


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda m: m.update(runs=[]), 'its run list "runs" is empty'),
        (lambda m: m.update(n_runs=5), '"n_runs" is 5 but "runs" lists 4'),
        (lambda m: m["runs"][1].pop("seed"), "runs[1] is not a run"),
        (lambda m: m["runs"][0].update(run_id="../../x"), "runs[0] is not a run"),
        (lambda m: m["runs"][2].update(parameters={}), "runs[2] is not a run"),
    ],
)
def test_a_manifest_whose_run_list_is_not_an_abm_sweeps_is_named(grid, tmp_path, edit, problem):
    other = _copy(grid, tmp_path, "other")
    manifest = json.loads((other / "manifest.json").read_text())
    edit(manifest)
    (other / "manifest.json").write_text(json.dumps(manifest))
    expected = (f"{other / 'manifest.json'}: not an abm sweep manifest ({problem}")
    with pytest.raises(SweepError) as err:
        load_sweep(other)
    assert str(err.value).startswith(expected)
    assert str(err.value).endswith("; another program's file, or edited by hand?)")
    for command in ("report", "export"):
        line = _one_line(runner.invoke(app, [command, str(other)]))
        assert line.startswith(f"error: {expected}")


def test_a_manifest_whose_spec_is_not_an_abm_sweeps_is_one_line(grid, tmp_path):
    other = _copy(grid, tmp_path, "other")
    manifest = json.loads((other / "manifest.json").read_text())
    del manifest["spec"]["factors"]
    (other / "manifest.json").write_text(json.dumps(manifest))
    line = _one_line(runner.invoke(app, ["report", str(other)]))
    assert line == (f"error: {other / 'manifest.json'}: not an abm sweep manifest (its spec has "
                    "no key 'factors'; another program's file, or edited by hand?)")


def test_a_folder_inside_a_sweep_directory_points_to_the_sweep(grid):
    for inside in ("runs",):
        line = _one_line(runner.invoke(app, ["report", str(grid / inside)]))
        assert line == (f"error: {grid / inside}: not a sweep directory (no manifest.json); it "
                        f"is inside the sweep directory {grid}: give that one")


def test_run_files_without_their_manifest_are_said_to_be_still_there(grid, tmp_path):
    orphan = _copy(grid, tmp_path, "orphan")
    (orphan / "manifest.json").unlink()
    (orphan / "summary.parquet").unlink()
    with pytest.raises(SweepError) as err:
        load_sweep(orphan)
    assert str(err.value) == (
        f"{orphan}: not a sweep directory (no manifest.json), though runs/ holds 4 run files: "
        "without the manifest they cannot be read back as a sweep; each is a whole Parquet "
        "file (time series, summary row and seed) that pandas.read_parquet reads")
    assert len(list((orphan / "runs").glob("*.parquet"))) == 4  # nothing removed


def test_a_spec_file_given_for_a_sweep_directory_says_to_run_it_first(tmp_path):
    spec = tmp_path / "cohort.toml"
    spec.write_text('[sweep]\nname = "x"\ndays = 1\n')
    line = _one_line(runner.invoke(app, ["report", str(spec)]))
    assert line == (f"error: {spec}: is a file (a sweep spec?), not a sweep directory; run the "
                    "sweep first (abm sweep, or run_sweep from Python), then give the sweep "
                    "directory it writes")


# --- cohorts ----------------------------------------------------------------------------------


def test_a_broken_patients_file_is_rebuilt_from_the_runs(cohort, tmp_path):
    from abm.sweep import patients_table

    broken = _copy(cohort, tmp_path, "broken")
    expected = patients_table(load_sweep(broken))
    with open(broken / "patients.parquet", "r+b") as fh:
        fh.truncate(100)
    result = runner.invoke(app, ["report", str(broken)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "| untreated | 2 |" in (broken / "report" / "report.md").read_text()
    result = runner.invoke(app, ["export", str(broken)])
    assert result.exit_code == 0, (result.output, result.exception)
    exported = pd.read_csv(broken / "export" / "patients.csv")
    assert list(exported["best_response"]) == list(expected["best_response"])
    assert len(exported) == 4


def test_write_report_on_a_cohort_refuses_an_outcome_it_would_not_use(cohort, tmp_path):
    """As ``abm report`` does: a cohort's report is its responses per arm, so an outcome or
    a series asked for is refused rather than silently left out."""
    for asked in ({"outcome": "final_tcells"}, {"series": "TCells"}):
        with pytest.raises(ReportError, match=rf"^{cohort} is a cohort: its report is the "
                                              "responses per arm .* so outcome and series do "
                                              "not apply; use export_csv"):
            write_report(cohort, out=tmp_path / "report", **asked)
    assert not (tmp_path / "report").exists()
    assert write_report(cohort, out=tmp_path / "report").name == "report.md"


def test_a_partial_cohort_names_the_arms_not_yet_finished(cohort, tmp_path):
    partial = _copy(cohort, tmp_path, "partial")
    _unfinish(partial, "p00002-r000", "p00003-r000")  # the anti_pd1 arm
    result = runner.invoke(app, ["report", str(partial)])
    assert result.exit_code == 0, (result.output, result.exception)
    text = (partial / "report" / "report.md").read_text()
    assert "- 2 patients (seed 11) x 2 arms (untreated, anti_pd1);" in text
    assert "> No patient of the arm anti_pd1 has finished yet: it is left out below." in text


def test_a_paired_difference_without_a_shared_patient_shows_no_number(cohort, tmp_path):
    partial = _copy(cohort, tmp_path, "partial")
    _unfinish(partial, "p00001-r000", "p00002-r000")  # patient 0 untreated, 1 treated only
    result = runner.invoke(app, ["report", str(partial)])
    assert result.exit_code == 0, (result.output, result.exception)
    text = (partial / "report" / "report.md").read_text()
    assert "nan" not in text.lower()
    assert "| anti_pd1 - untreated | 0 | – | 0 | 0 | – |" in text


def test_a_failed_export_leaves_the_earlier_one_whole(cohort, tmp_path):
    """A run file that the time series can be read from but the responses cannot (no
    CancerCells column): the export stops with one line before it replaces any file of the
    earlier export in the folder."""
    from abm.sweep import read_run_summary, read_run_table, write_run

    partial = _copy(cohort, tmp_path, "partial")
    out = tmp_path / "export"
    assert runner.invoke(app, ["export", str(cohort), "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _unfinish(partial, "p00003-r000")
    path = partial / "runs" / "p00001-r000.parquet"
    row = read_run_summary(path)
    write_run(partial, read_run_table(path).drop(columns=["CancerCells"]),
              {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the export of a partial sweep warns)
        result = runner.invoke(app, ["export", str(partial), "--out", str(out)])
    line = _one_line(result)
    assert line.startswith(f"error: {path}: no column 'CancerCells' in this run file")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("command", ["report", "export"])
def test_a_report_or_export_that_fails_leaves_no_empty_folder(grid, tmp_path, command):
    """The CLI makes the output folder before writing; when the writing then fails (here a
    broken run file), the folder it made goes again instead of staying behind empty."""
    broken = _copy(grid, tmp_path, "broken")
    run_file = sorted((broken / "runs").glob("*.parquet"))[0]
    run_file.write_bytes(b"not parquet")  # the summary is whole: the sweep loads
    result = runner.invoke(app, [command, str(broken)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert not (broken / command).exists()
    given = tmp_path / "elsewhere" / "deeper"
    result = runner.invoke(app, [command, str(broken), "--out", str(given)])
    assert result.exit_code == 2 and not (tmp_path / "elsewhere").exists(), result.output


def test_a_manifest_nested_too_deeply_is_named(grid, tmp_path):
    """json raises RecursionError (not a ValueError) for deeply nested text."""
    deep = _copy(grid, tmp_path, "deep")
    (deep / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SweepError, match="manifest.json: unreadable .JSON nested too deeply"):
        load_sweep(deep)
    assert "nested too deeply" in _one_line(runner.invoke(app, ["report", str(deep)]))
