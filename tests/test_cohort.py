"""Virtual-patient cohorts: the RECIST-like rule on hand-made series, patients drawn
reproducibly and identical across arms, arms identical before the baseline day, bad specs
refused naming the key, ``patients.parquet`` and the cohort report. Runs are tiny (30x30 grid,
40 cells, a few days, a few patients)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abm.analysis.response import (
    PD_MIN_UM,
    assess,
    change_pct,
    diameter_um,
    objective_response,
    wilson_interval,
)
from abm.params import SITE_UM
from abm.report import paired_difference, reference_arm, strata, write_report
from abm.sweep import (
    PATIENT_COLUMNS,
    SpecError,
    expand,
    parse_spec,
    patient_points,
    run_sweep,
)

# the tiny cohort (``cohort()``) runs 2 days after its baseline, too short for the default 7 days
# of stable disease: its warning is tested once (below), not repeated by every test using it
pytestmark = pytest.mark.filterwarnings("ignore:.*stable disease \\(SD\\) can never be called")


def cohort(**changes) -> dict:
    """A tiny cohort spec as data; ``changes``: table -> replacement (None drops the table)."""
    spec = {
        "sweep": {"name": "tiny-cohort", "scenario": "escape", "days": 3, "record_every": 1},
        "parameters": {"width": 30, "height": 30, "initial_tumor_cells": 40},
        "patients": {
            "n": 3,
            "seed": 11,
            "lognormal": {"tcell_influx": [3.0, 0.5, 0.5, 20.0]},
            "uniform": {"founder_mhc": [0.5, 1.0]},
            "choice": {"founder_antigens": [1, 2, 3, 4]},
        },
        "arms": {"untreated": {}, "anti_pd1": {"anti_pd1_start_day": 1}},
        "response": {"baseline_day": 1, "stratify": "founder_antigens"},
    }
    for table, value in changes.items():
        if value is None:
            spec.pop(table)
        else:
            spec[table] = value
    return spec


def series(days: list[float], cells: list[float], necrotic: list[float] | None = None):
    df = pd.DataFrame({"Day": days, "CancerCells": cells})
    if necrotic is not None:
        df["NecroticSites"] = necrotic
    return df


def cells_for(diameter_ratio: float, base_cells: float = 1000.0) -> float:
    """Cells whose lesion diameter is ``diameter_ratio`` x that of ``base_cells``."""
    return base_cells * diameter_ratio**2


# --- the response rule ------------------------------------------------------------------------


def test_diameter_of_a_disc():
    # a disc of 100 sites: 2 sqrt(100 / pi) sites across, 15 um each
    assert diameter_um(100) == pytest.approx(2 * math.sqrt(100 / math.pi) * SITE_UM)


def test_complete_response_when_no_cancer_cell_is_left():
    out = assess(series([0, 1, 2, 3], [900, 1000, 200, 0]), baseline_day=1, end_day=10)
    assert out["best_response"] == "CR"
    assert out["best_change_pct"] == pytest.approx(-100.0)
    # cleared tumours stop their run early: censored at the planned end, not the last row
    assert out["progressed"] is False and out["pfs_days"] == pytest.approx(9.0)


def test_partial_response_at_minus_30_percent():
    out = assess(series([0, 1, 2, 3], [1000, 1000, cells_for(0.69), cells_for(0.8)]), 0)
    assert out["best_response"] == "PR"
    assert out["best_change_pct"] == pytest.approx(-31.0)
    # -29%: not yet a PR
    out = assess(series([0, 1, 2], [1000, cells_for(0.71), cells_for(0.75)]), 0, min_sd_days=2)
    assert out["best_response"] == "SD"


def test_stable_disease_and_censoring():
    # 0.9 -> 1.05 of baseline is +17% over the nadir: still SD
    cells = [1000, cells_for(1.1), cells_for(0.9), cells_for(1.05)]
    out = assess(series([0, 1, 2, 3], cells), 0, min_sd_days=3)
    assert out["best_response"] == "SD"
    assert out["best_change_pct"] == pytest.approx(-10.0)
    assert out["progressed"] is False and out["pfs_days"] == pytest.approx(3.0)


def test_progression_at_the_first_assessment():
    out = assess(series([0, 1, 2], [1000, cells_for(1.25), cells_for(1.6)]), 0, end_day=5)
    assert out["best_response"] == "PD"
    assert out["progressed"] is True and out["pfs_days"] == pytest.approx(1.0)


def test_stable_disease_must_last_min_sd_days():
    # SD on days 1-3, then PD on day 4: SD had not lasted a week, so the best response is PD
    cells = [1000, cells_for(1.05), cells_for(1.1), cells_for(1.15), cells_for(1.4)]
    out = assess(series([0, 1, 2, 3, 4], cells), 0, min_sd_days=7)
    assert out["best_response"] == "PD" and out["pfs_days"] == pytest.approx(4.0)
    # the same growth assessed weekly: SD lasted 7 days before PD on day 14
    out = assess(series([0, 7, 14], [1000, cells_for(1.1), cells_for(1.4)]), 0, min_sd_days=7)
    assert out["best_response"] == "SD" and out["progressed"] is True
    # SD for 3 days and the run ends: not evaluable (neither SD long enough nor PD)
    out = assess(series([0, 1, 2, 3], [1000, 1000, 1000, 1000]), 0, min_sd_days=7)
    assert out["best_response"] == "NE" and out["progressed"] is False


def test_progression_is_measured_from_the_nadir_not_from_baseline():
    # shrinks to 0.6 of baseline (PR), then regrows to 0.75: +25% over the nadir, still 25%
    # below baseline, and progression
    cells = [1000, cells_for(0.6), cells_for(0.75), cells_for(1.0)]
    out = assess(series([0, 1, 2, 3], cells), 0)
    assert out["best_response"] == "PR"
    assert out["progressed"] is True and out["pfs_days"] == pytest.approx(2.0)
    assert out["best_change_pct"] == pytest.approx(-40.0)


def test_progression_needs_one_site_of_growth():
    # 1 cell -> 1.5 cells is +22% of a tiny diameter but less than one site (15 um)
    grown = diameter_um(1.5) - diameter_um(1)
    assert grown < PD_MIN_UM
    out = assess(series([0, 1, 2], [20, 1, 1.5]), 0)
    assert out["best_response"] == "PR" and out["progressed"] is False


def test_responses_after_progression_do_not_count():
    # PD on day 1, then (e.g. a late response) a CR: the patient left the trial at PD
    out = assess(series([0, 1, 2], [1000, cells_for(1.3), 0]), 0)
    assert out["best_response"] == "PD"


def test_necrotic_sites_count_in_the_lesion():
    # 60% of the living cells die, but the necrotic core keeps the mass the same size: SD, not
    # the PR (-37% of diameter) that counting living cells alone would give
    days, cells = [0, 1, 2], [1000, 600, 400]
    assert assess(series(days, cells), 0)["best_response"] == "PR"
    out = assess(series(days, cells, [0, 400, 600]), 0, min_sd_days=2)
    assert out["best_response"] == "SD"
    track = change_pct(series(days, cells, [0, 400, 600]), 0)
    assert track["change_pct"].tolist() == pytest.approx([0.0, 0.0, 0.0])


def test_a_lesion_absent_at_baseline_is_not_evaluable():
    out = assess(series([0, 1, 2], [100, 0, 0]), 1)
    assert out["best_response"] == "NE" and math.isnan(out["best_change_pct"])


def test_objective_response_counts_cr_and_pr_only():
    assert objective_response(["CR", "PR", "SD", "PD", "NE"]).tolist() == [1, 1, 0, 0, 0]


def test_wilson_interval_against_the_formula():
    # 8 of 20: Wilson score interval 0.2188 - 0.6134 (z = 1.96)
    low, high = wilson_interval(8, 20)
    assert low == pytest.approx(0.2188, abs=1e-4) and high == pytest.approx(0.6134, abs=1e-4)
    z, p, n = 1.959963984540054, 0.4, 20
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert (low, high) == pytest.approx((centre - half, centre + half))


def test_paired_difference_counts_discordant_patients():
    rows = []
    for patient, (t, c) in enumerate([("PR", "SD"), ("CR", "PD"), ("SD", "SD"), ("PR", "PR")]):
        rows += [{"patient": patient, "arm": "anti_pd1", "best_response": t},
                 {"patient": patient, "arm": "untreated", "best_response": c}]
    d = paired_difference(pd.DataFrame(rows), "anti_pd1", "untreated")
    assert (d["n"], d["only_treated"], d["only_control"]) == (4, 2, 0)
    assert d["diff"] == pytest.approx(0.5)
    assert d["low"] < 0.5 < d["high"]


def test_strata_by_value_and_by_quantile_bins():
    rows = pd.DataFrame({"founder_mhc": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "founder_antigens":
                         [1, 1, 2, 2, 3, 3]})
    assert strata(rows, "founder_antigens", None).tolist() == ["1", "1", "2", "2", "3", "3"]
    bins = strata(rows, "founder_mhc", 3)
    assert bins.nunique() == 3 and (bins.value_counts() == 2).all()
    assert bins.iloc[0] != bins.iloc[-1] and bins.iloc[0] == bins.iloc[1]
    # each bin is labelled by the values drawn in it: no value seems to be in two bins
    assert bins.tolist() == ["[0.1, 0.2]"] * 2 + ["[0.3, 0.4]"] * 2 + ["[0.5, 0.6]"] * 2
    whole = strata(pd.DataFrame({"n": [1, 2, 2, 3, 5, 5]}), "n", 2)
    assert whole.tolist() == ["[1, 2]"] * 3 + ["[3, 5]"] * 3


def test_the_untreated_arm_is_the_reference():
    assert reference_arm(["anti_pd1", "untreated"]) == "untreated"
    assert reference_arm(["a", "b"]) == "a"
    assert reference_arm(["only"]) is None


# --- patients -----------------------------------------------------------------------------------


def test_patients_reproducible_from_the_seed():
    a, b = parse_spec(cohort()), parse_spec(cohort())
    assert [r.as_dict() for r in expand(a)] == [r.as_dict() for r in expand(b)]
    other = cohort()
    other["patients"] = {**other["patients"], "seed": 12}
    assert patient_points(parse_spec(other).patients) != patient_points(a.patients)


def test_each_patient_is_in_every_arm_with_the_same_parameters_and_seed():
    spec = parse_spec(cohort())
    runs = expand(spec)
    assert len(runs) == 2 * 3
    by_arm = {}
    for run in runs:
        by_arm.setdefault(run.varied["arm"], {})[run.varied["patient"]] = run
    assert set(by_arm) == {"untreated", "anti_pd1"}
    for patient in range(3):
        u, t = by_arm["untreated"][patient], by_arm["anti_pd1"][patient]
        assert u.seed == t.seed
        assert {k: v for k, v in u.varied.items() if k != "arm"} == {
            k: v for k, v in t.varied.items() if k != "arm"
        }
    # and the patients differ from each other
    assert len({r.seed for r in runs}) == 3
    assert len({r.varied["founder_mhc"] for r in runs}) == 3


def test_draws_stay_inside_their_distributions():
    spec = cohort()
    spec["patients"] = {"n": 2000, "seed": 1,
                        "lognormal": {"tcell_influx": [2.0, 0.5, 0.5, 100.0]},
                        "uniform": {"founder_mhc": [0.5, 0.7]},
                        "choice": {"founder_antigens": [1, 4]}}
    spec["response"] = {"baseline_day": 1}
    points = pd.DataFrame(patient_points(parse_spec(spec, force=True).patients))
    assert points["tcell_influx"].between(0.5, 100.0).all()
    # truncation at 0.5 (2.8 sigma below) barely moves the median
    assert points["tcell_influx"].median() == pytest.approx(2.0, rel=0.05)
    assert points["founder_mhc"].between(0.5, 0.7).all()
    assert set(points["founder_antigens"]) == {1, 4}


@pytest.mark.parametrize(
    ("table", "value", "key"),
    [
        ("patients", {"n": 3, "normal": {"tcell_influx": [1, 2]}}, "patients.normal"),
        ("patients", {"n": 3, "lognormal": {"tcell_influx": [20.0, 0.5]}},
         "patients.lognormal.tcell_influx"),
        ("patients", {"n": 3, "lognormal": {"tcell_influx": [20.0, 0.5, 1.0, 200.0]}},
         "patients.lognormal.tcell_influx[3]"),
        ("patients", {"n": 3, "uniform": {"founder_mhc": [0.5, 1.5]}},
         "patients.uniform.founder_mhc[1]"),
        ("patients", {"n": 3, "uniform": {"founder_mhc": [0.9, 0.5]}},
         "patients.uniform.founder_mhc"),
        ("patients", {"n": 3, "choice": {"founder_antigens": [1, 9]}},
         "patients.choice.founder_antigens[1]"),
        ("patients", {"n": 0, "choice": {"founder_antigens": [1, 2]}}, "patients.n"),
        ("patients", {"n": 3}, "patients"),
        ("patients", {"n": 3, "choice": {"no_such_parameter": [1, 2]}},
         "patients.choice.no_such_parameter"),
        ("response", {"baseline_day": 3}, "response.baseline_day"),
        ("response", {"baseline_day": -1}, "response.baseline_day"),
        ("response", {"baseline_day": 1, "stratify": "width"}, "response.stratify"),
        ("response", {"baseline_day": 1, "bins": 3}, "response.bins"),
        # SD lasting 30 days can never be seen in the 2 days after the baseline
        ("response", {"baseline_day": 1, "min_sd_days": 30}, "response.min_sd_days"),
    ],
)
def test_bad_specs_are_refused_naming_the_key(table, value, key):
    with pytest.raises(SpecError) as err:
        parse_spec(cohort(**{table: value}))
    assert f"spec: {key}: " in str(err.value)


def test_a_drawn_parameter_cannot_also_be_fixed_or_replicated():
    spec = cohort()
    spec["arms"] = {"untreated": {"founder_mhc": 0.5}, "anti_pd1": {"anti_pd1_start_day": 1}}
    with pytest.raises(SpecError, match="patients.founder_mhc: also set in"):
        parse_spec(spec)
    spec = cohort()
    spec["sweep"] = {**spec["sweep"], "replicates": 2}
    with pytest.raises(SpecError, match="sweep.replicates"):
        parse_spec(spec)
    with pytest.raises(SpecError, match="spec: patients: a cohort's points"):
        parse_spec(cohort(factors={"mutation_rate": [0.01, 0.02]}))


# --- running a cohort -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cohort") / "out"
    run_sweep(parse_spec(cohort()), out, backend="serial", progress=False, log=lambda _: None)
    return out


def test_arms_are_identical_step_for_step_before_the_baseline_day(ran):
    from abm.sweep import load_sweep

    data = load_sweep(ran)
    runs = {(r.varied["patient"], r.arm): r for r in data.runs}
    differ_later = 0
    for patient in range(3):
        u = runs[(patient, "untreated")].series().drop(columns=["run_id", "point_id", "arm"])
        t = runs[(patient, "anti_pd1")].series().drop(columns=["run_id", "point_id", "arm"])
        before = 24  # the first dose is given on day 1 (step 24)
        assert (u["Step"] < before).sum() == before
        pd.testing.assert_frame_equal(u[u["Step"] < before], t[t["Step"] < before])
        n = min(len(u), len(t))
        differ_later += not u.iloc[:n].equals(t.iloc[:n])
    assert differ_later > 0  # treatment changes something, so the comparison can fail


def test_patients_parquet(ran):
    patients = pd.read_parquet(ran / "patients.parquet")
    assert list(patients.columns) == [*PATIENT_COLUMNS, "tcell_influx", "founder_mhc",
                                      "founder_antigens"]
    assert len(patients) == 6
    assert sorted(patients["arm"].unique()) == ["anti_pd1", "untreated"]
    assert set(patients["best_response"]) <= {"CR", "PR", "SD", "PD", "NE"}
    assert patients["pfs_days"].between(0, 2).all()
    # the sampled parameters are the patient's, the same in both arms
    wide = patients.pivot(index="patient", columns="arm", values="founder_mhc")
    assert (wide["anti_pd1"] == wide["untreated"]).all()


def test_resumed_cohort_equals_the_uninterrupted_one(ran, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ran, copy)
    (copy / "runs" / "p00004-r000.parquet").unlink()
    (copy / "patients.parquet").unlink()
    outcome = run_sweep(parse_spec(cohort()), copy, backend="serial", progress=False,
                        log=lambda _: None)
    assert outcome.ran == 1
    pd.testing.assert_frame_equal(pd.read_parquet(copy / "patients.parquet"),
                                  pd.read_parquet(ran / "patients.parquet"))


def test_cohort_export_has_the_patients_and_report_refuses_sweep_options(ran, tmp_path):
    from typer.testing import CliRunner

    from abm.cli import app

    result = CliRunner().invoke(app, ["export", str(ran), "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    exported = pd.read_csv(tmp_path / "x" / "patients.csv")
    patients = pd.read_parquet(ran / "patients.parquet")
    assert len(exported) == len(patients) and list(exported.columns) == list(patients.columns)
    assert (exported["best_response"] == patients["best_response"]).all()
    import json

    about = json.loads((tmp_path / "x" / "about.json").read_text())
    assert about["files"]["patients.csv"]["rows"] == len(patients)
    assert about["spec"]["patients"] == json.loads((ran / "manifest.json").read_text())[
        "spec"]["patients"]
    refused = CliRunner().invoke(app, ["report", str(ran), "--outcome", "total_kills",
                                       "--out", str(tmp_path / "r")])
    assert refused.exit_code == 2 and "is a cohort" in refused.output
    assert "--outcome and --series do not apply" in refused.output
    assert not (tmp_path / "r").exists()


def test_a_partial_cohorts_strata_without_a_finished_patient_show_no_number(ran, tmp_path):
    """While a cohort runs, a stratum may have no finished patient in an arm yet: its cell is
    ``–`` (the report said nothing else: it stopped on a division by zero)."""
    import shutil

    from typer.testing import CliRunner

    from abm.cli import app

    partial = tmp_path / "partial"
    shutil.copytree(ran, partial, ignore=shutil.ignore_patterns("report", "export"))
    patients = pd.read_parquet(ran / "patients.parquet")
    runs = pd.read_parquet(ran / "summary.parquet")
    treated = runs[runs["arm"] == "anti_pd1"]  # (with each patient's drawn parameters)
    assert treated["founder_antigens"].nunique() >= 2  # so one stratum loses its patients
    for name in ("summary.parquet", "patients.parquet"):
        (partial / name).unlink()
    for run_id in treated["run_id"].iloc[1:]:  # the first treated patient alone finished
        (partial / "runs" / f"{run_id}.parquet").unlink()
    result = CliRunner().invoke(app, ["report", str(partial)])
    assert result.exit_code == 0, (result.output, result.exception)
    text = (partial / "report" / "report.md").read_text()
    table = text.split("## Objective response by `founder_antigens` (value)")[1]
    done = treated["founder_antigens"].iloc[0]
    for value in sorted(patients["founder_antigens"].unique()):
        row = next(line for line in table.splitlines() if line.startswith(f"| {value} |"))
        assert row.endswith("| – |") == (value != done), row


def test_cohort_report_files(ran, tmp_path):
    path = write_report(ran, out=tmp_path / "report")
    for name in ("waterfall.png", "spider.png", "km.png", "report.md"):
        assert (tmp_path / "report" / name).stat().st_size > 1000 or name == "report.md"
    text = path.read_text()
    assert "- engine: `mesa` (the reference" in text  # which engine ran it
    assert "## Responses per arm" in text
    assert "## Paired difference" in text and "anti_pd1 - untreated" in text
    assert "## Objective response by `founder_antigens` (value)" in text
    patients = pd.read_parquet(ran / "patients.parquet")
    hits = int(objective_response(patients.loc[patients["arm"] == "anti_pd1",
                                               "best_response"]).sum())
    low, high = wilson_interval(hits, 3)
    assert f"{hits}/3 = {100 * hits / 3:.0f}% [{100 * low:.0f}, {100 * high:.0f}]" in text
    assert np.isfinite(low)


@pytest.mark.parametrize(("n", "arms"), [(1500, 1), (3000, 2)])
def test_a_lone_responder_among_thousands_of_patients_shows_in_the_waterfall(n, arms):
    """With hundreds of patients a waterfall bar is narrower than a pixel; a bar of its own
    colour's edge keeps it visible. In each arm, n - 1 patients at +5% and one partial
    response at -50%: the response's colour draws an unbroken line down to -50% in every
    panel of the rendered figure (before, at these sizes, not one pixel of that colour)."""
    import matplotlib.colors as mcolors
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from abm.analysis.response import RESPONSE_COLOURS
    from abm.report.cohort import plot_waterfall

    patients = pd.concat([pd.DataFrame({"patient": range(n), "arm": f"arm{a}",
                                        "best_change_pct": [5.0] * (n - 1) + [-50.0],
                                        "best_response": ["PD"] * (n - 1) + ["PR"]})
                          for a in range(arms)], ignore_index=True)
    fig = plot_waterfall(patients)
    fig.axes[-1].get_legend().remove()  # its PR patch is not a bar
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].astype(float) / 255
    pr = np.array(mcolors.to_rgb(RESPONSE_COLOURS["PR"]))
    close = np.abs(image - pr).max(axis=2) < 0.08
    height = fig.get_figheight() * fig.dpi
    for ax in fig.axes[:arms]:
        box = ax.get_window_extent()  # the panel, in pixels from the bottom
        panel = close[int(height - box.y1):int(height - box.y0), int(box.x0):int(box.x1)]
        rows = np.flatnonzero(panel.any(axis=1))
        assert rows.size and rows.max() - rows.min() > 0.25 * box.height, rows  # of -55..20%
        assert panel.sum() >= rows.max() - rows.min()  # unbroken


def test_a_large_cohorts_spider_plot_draws_the_same_random_patients_in_every_arm(
        ran, monkeypatch):
    """Up to ``MAX_SPIDER_PATIENTS`` every patient's track is drawn; above, that many patients
    drawn at random with a fixed seed, the same in every arm, and each panel's title says how
    many of how many (thousands of tracks would cover each other)."""
    from abm.report import Sweep
    from abm.report import cohort as rc

    sweep = Sweep(ran)
    patients = rc.cohort_patients(sweep)
    everyone = rc.plot_spider(sweep, patients)
    assert [len(ax.lines) - 1 for ax in everyone.axes[:2]] == [3, 3]  # (- the zero line)
    assert [ax.get_title() for ax in everyone.axes[:2]] == rc._arms(patients)
    monkeypatch.setattr(rc, "MAX_SPIDER_PATIENTS", 2)
    picked = rc.spider_patients(patients)
    assert len(picked) == 2 and set(picked) < set(patients["patient"])
    assert rc.spider_patients(patients.sample(frac=1.0, random_state=1)) == picked
    sample = rc.plot_spider(sweep, patients)
    for ax, arm, full in zip(sample.axes, rc._arms(patients), everyone.axes, strict=False):
        assert ax.get_title() == f"{arm}: 2 of 3 patients, drawn at random"
        assert len(ax.lines) - 1 == 2
        # the tracks drawn are the picked patients' own, in both arms
        rows = patients[patients["arm"] == arm].reset_index(drop=True)
        kept = [i for i, p in enumerate(rows["patient"]) if p in picked]
        for line, i in zip(ax.lines[:2], kept, strict=True):
            np.testing.assert_array_equal(line.get_ydata(), full.lines[i].get_ydata())


def test_dry_run_of_a_cohort_counts_patients_and_arms(tmp_path):
    import tomllib

    from typer.testing import CliRunner

    from abm.cli import app
    from abm.sweep import size_line

    spec = parse_spec(cohort())
    assert size_line(spec).startswith("3 patients x 2 arms = 6 runs of 72 steps")
    single = parse_spec(cohort(arms=None))
    assert size_line(single).startswith("3 patients x 1 arm = 3 runs")
    path = Path(__file__).resolve().parents[1] / "experiments" / "cohorts" / "pd1_tmb.toml"
    n = tomllib.loads(path.read_text())["patients"]["n"]
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "o"),
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"{n} patients x 2 arms = {2 * n} runs" in result.output
    assert "points x" not in result.output.split("\n")[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "where"),
    [([50.0, 0.1, 0.2, 1.0], "[0.2, 1]"),  # the median far above the truncation
     ([0.5, 0.1, 2.0, 3.0], "[2, 3]")],    # and far below it
)
def test_a_truncation_that_holds_almost_none_of_the_lognormal_is_refused(args, where):
    """Every patient used to get one bound (the CDF underflows at both), silently."""
    with pytest.raises(SpecError) as err:
        parse_spec(cohort(patients={"n": 3, "lognormal": {"tcell_influx": args}}))
    assert str(err.value) == (
        f"spec: patients.lognormal.tcell_influx: the truncation {where} holds almost none of a "
        f"lognormal with median {args[0]:g}, sigma {args[1]:g} (less than 1e-06 of it): every "
        "patient would get the same bound, with no variation; move the median or the truncation"
    )
    # a truncation in a tail that still holds a real share is drawn as before
    tail = parse_spec(cohort(response=None, patients={
        "n": 50, "seed": 1, "lognormal": {"tcell_influx": [1.0, 0.5, 2.5, 20.0]}}))
    drawn = {p["tcell_influx"] for p in patient_points(tail.patients)}
    assert len(drawn) == 50 and min(drawn) >= 2.5


def test_a_choice_with_repeated_values_is_refused_as_factors_are():
    with pytest.raises(SpecError) as err:
        parse_spec(cohort(patients={"n": 3, "choice": {"founder_antigens": [1, 1, 2]}}))
    assert str(err.value) == ("spec: patients.choice.founder_antigens: values repeat: [1, 1, 2] "
                              "(each value once: the values are drawn with equal chances)")


def test_numpy_values_in_a_cohort_spec_are_accepted():
    plain = parse_spec(cohort())
    spec = cohort()
    spec["patients"] = {**spec["patients"], "n": np.int64(3), "seed": np.uint64(11),
                        "lognormal": {"tcell_influx": np.array([3.0, 0.5, 0.5, 20.0])},
                        "uniform": {"founder_mhc": (np.float32(0.5), 1.0)},
                        "choice": {"founder_antigens": range(1, 5)}}
    from abm.sweep import spec_hash

    assert spec_hash(parse_spec(spec)) == spec_hash(plain)


def test_the_size_line_of_one_patient():
    from abm.sweep import size_line

    one = parse_spec(cohort(arms=None, response=None,
                            patients={"n": 1, "choice": {"founder_antigens": [1, 2]}}))
    assert size_line(one).startswith("1 patient x 1 arm = 1 run of 72 steps")


# --- parameters drawn together ([patients.correlation]) ---------------------------------------


def correlated(rho_day_loss: float, rho_mhc_influx: float, n: int = 3000, seed: int = 1) -> dict:
    spec = cohort(response=None)
    spec["patients"] = {
        "n": n, "seed": seed,
        "lognormal": {"tcell_influx": [2.0, 0.8, 0.2, 50.0]},
        "uniform": {"founder_mhc": [0.4, 1.0]},
        "choice": {"founder_antigens": [1, 2, 3, 4]},
        "correlation": {"founder_antigens": {"tcell_influx": rho_day_loss},
                        "founder_mhc": {"tcell_influx": rho_mhc_influx}},
    }
    return spec


def test_correlated_draws_have_the_asked_rank_correlation_and_keep_their_distributions():
    """Gaussian copula: the rank correlation of two continuous draws is the one asked for
    (sampling SD about 0.015 at n = 3000: tolerance 0.05, three seeds); a choice's ties lower
    it a little; pairs not named stay uncorrelated; each parameter keeps its distribution."""
    for seed in (1, 2, 3):
        points = pd.DataFrame(patient_points(parse_spec(correlated(0.6, -0.5, seed=seed),
                                                        force=True).patients))
        rank = points.drop(columns="patient").corr(method="spearman")
        assert rank.loc["founder_mhc", "tcell_influx"] == pytest.approx(-0.5, abs=0.05)
        assert 0.45 < rank.loc["founder_antigens", "tcell_influx"] < 0.65
        # not named: induced only through tcell_influx (-0.5 x 0.6 = -0.3 at most)
        assert abs(rank.loc["founder_antigens", "founder_mhc"]) < 0.4
        assert points["tcell_influx"].between(0.2, 50.0).all()
        assert points["tcell_influx"].median() == pytest.approx(2.0, rel=0.1)
        assert points["founder_mhc"].between(0.4, 1.0).all()
        assert points["founder_mhc"].mean() == pytest.approx(0.7, abs=0.02)
        shares = points["founder_antigens"].value_counts(normalize=True)
        assert set(shares.index) == {1, 2, 3, 4}
        assert shares.between(0.25 - 0.04, 0.25 + 0.04).all()
    # a negative correlation reverses the order
    points = pd.DataFrame(patient_points(parse_spec(correlated(-0.6, 0.0), force=True).patients))
    assert points["founder_antigens"].corr(points["tcell_influx"], method="spearman") < -0.45


def test_correlation_is_reproducible_recorded_and_absent_from_plain_cohorts():
    a, b = parse_spec(correlated(0.6, -0.5, n=20)), parse_spec(correlated(0.6, -0.5, n=20))
    assert patient_points(a.patients) == patient_points(b.patients)
    assert a.normalised()["patients"]["correlation"] == [
        ["founder_antigens", "tcell_influx", 0.6], ["founder_mhc", "tcell_influx", -0.5]]
    from abm.sweep import spec_hash

    assert spec_hash(a) != spec_hash(parse_spec(correlated(0.5, -0.5, n=20)))
    # a cohort without correlations records none (its manifest is the one it always had)
    assert "correlation" not in parse_spec(cohort()).normalised()["patients"]


@pytest.mark.parametrize(
    ("correlation", "key", "says"),
    [
        ({"width": {"tcell_influx": 0.5}}, "patients.correlation.width.tcell_influx",
         "width is not drawn"),
        ({"tcell_influx": {"tcell_influx": 0.5}}, "patients.correlation.tcell_influx.tcell_influx",
         "with itself"),
        ({"tcell_influx": {"founder_mhc": 0.5}, "founder_mhc": {"tcell_influx": 0.2}},
         "patients.correlation.founder_mhc.tcell_influx", "given twice"),
        ({"tcell_influx": {"founder_mhc": 1.0}}, "patients.correlation.tcell_influx.founder_mhc",
         "strictly between -1 and 1, got 1.0"),
        ({"tcell_influx": {"founder_mhc": True}}, "patients.correlation.tcell_influx.founder_mhc",
         "strictly between -1 and 1"),
        ({"tcell_influx": {"founder_mhc": "0.5"}}, "patients.correlation.tcell_influx.founder_mhc",
         "strictly between -1 and 1"),
        ({"tcell_influx": 0.5}, "patients.correlation.tcell_influx", "expected name.other"),
        ({"tcell_influx": {"founder_mhc": 0.9, "founder_antigens": 0.9},
          "founder_mhc": {"founder_antigens": -0.9}}, "patients.correlation",
         "cannot hold together"),
    ],
)
def test_bad_correlations_are_refused_naming_the_key(correlation, key, says):
    spec = cohort()
    spec["patients"] = {**spec["patients"], "correlation": correlation}
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert f"spec: {key}: " in str(err.value) and says in str(err.value)


def test_the_cohort_report_shows_the_asked_and_the_drawn_correlation():
    from abm.report.cohort import _correlation_lines

    points = pd.DataFrame(patient_points(parse_spec(correlated(0.6, -0.5, n=500),
                                                    force=True).patients))
    table = pd.concat([points.assign(arm="untreated"), points.assign(arm="anti_pd1")])
    cohort_dict = parse_spec(correlated(0.6, -0.5, n=500), force=True).normalised()["patients"]
    [line] = _correlation_lines(cohort_dict, table, ["untreated", "anti_pd1"])
    drawn = points["founder_mhc"].corr(points["tcell_influx"], method="spearman")
    assert f"`founder_mhc` with `tcell_influx` -0.5 (drawn: {drawn:.2f})" in line
    assert _correlation_lines(parse_spec(cohort()).normalised()["patients"], table, ["x"]) == []


def test_a_run_too_short_for_the_default_stable_disease_says_so():
    # 2 days after the baseline, SD must last 7 (the default): allowed (a pilot), but said
    with pytest.warns(UserWarning, match=r"spec: response: stable disease \(SD\) can never"):
        parse_spec(cohort())
    import warnings

    long_enough = cohort(response={"baseline_day": 1, "min_sd_days": 1.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_spec(long_enough)


def test_a_cohort_without_a_response_table_is_warned_too():
    # no [response]: baseline day 0 and the default min_sd_days (7) against a 3-day run
    with pytest.warns(UserWarning, match=r"can never be called.*3 days after the baseline "
                                         r"\(day 0\)"):
        parse_spec(cohort(response=None))
    import warnings

    with warnings.catch_warnings():  # 8 days: long enough for the default
        warnings.simplefilter("error")
        parse_spec(cohort(response=None, sweep={"name": "long", "scenario": "escape",
                                                "days": 8, "record_every": 1}))
