"""The cohort feature as a first-time user meets it (docs/cohorts.md): the response rule at its
exact thresholds and its edge cases (a tumour cleared before the baseline, a baseline after the
run, series that cannot be assessed), a truncated lognormal with a huge sigma, and bad cohort
specs through ``abm sweep``, refused in one line naming the key. All fast: no model is run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from abm.analysis.response import assess, diameter_um
from abm.sweep import parse_spec, patient_points


def series(days, cells, necrotic=None, **extra) -> pd.DataFrame:
    df = pd.DataFrame({"Day": days, "CancerCells": cells, **extra})
    if necrotic is not None:
        df["NecroticSites"] = necrotic
    return df


# --- the response rule: thresholds met exactly ----------------------------------------------


def test_a_diameter_exactly_30_percent_below_baseline_is_a_partial_response():
    # 441 of 900 cells: the diameter is 0.7 of baseline in exact arithmetic, -30% ("at least 30%
    # below baseline" is PR); floating point gives -29.999999999999993%, which was called SD
    assert math.sqrt(441 / 900) == 0.7  # the ratio itself is exact: only the rounding differs
    for base, cells in ((900, 441), (10000, 4900), (100, 49)):
        out = assess(series([0, 1], [base, cells]), 0, min_sd_days=1)
        assert out["best_response"] == "PR", (base, cells)
        assert out["best_change_pct"] == pytest.approx(-30.0)
    # one cell more is not 30% below any more
    assert assess(series([0, 1], [900, 442]), 0, min_sd_days=2)["best_response"] == "NE"


def test_a_diameter_exactly_20_percent_above_the_nadir_is_progression():
    # 14400 of 10000 cells: +20% of diameter exactly, and far more than one site (15 um) above
    assert diameter_um(14400) - diameter_um(10000) > 15
    for base, cells in ((10000, 14400), (100, 144), (2500, 3600)):
        out = assess(series([0, 1], [base, cells]), 0, min_sd_days=1)
        assert out["best_response"] == "PD" and out["progressed"] is True, (base, cells)
        assert out["pfs_days"] == 1.0
    # measured from the nadir: 10000 -> 9000 -> 12960 is +20% of the nadir's diameter
    out = assess(series([0, 1, 2], [10000, 9000, 12960]), 0, min_sd_days=5)
    assert out["best_response"] == "PD" and out["pfs_days"] == 2.0
    # one cell fewer is not progression
    out = assess(series([0, 1], [10000, 14399]), 0, min_sd_days=1)
    assert out["best_response"] == "SD" and out["progressed"] is False


# --- the response rule: edge cases ----------------------------------------------------------


def test_a_tumour_cleared_before_the_baseline_is_followed_from_the_baseline_day():
    # cleared at hour 36 (the run stops there: the last row is the clearance, with NaN means over
    # the cancer cells); baseline day 2, planned end day 6: not evaluable, censored after the 4
    # days from baseline to the end (it was 4.5: counted from the clearance, longer than any
    # patient's follow-up)
    cleared = series([0, 1, 1.5], [40, 10, 0], [0, 0, 0],
                     MeanAntigenicity=[0.5, 0.4, math.nan])
    out = assess(cleared, baseline_day=2, end_day=6)
    assert out == {"best_response": "NE", "best_change_pct": pytest.approx(math.nan, nan_ok=True),
                   "pfs_days": 4.0, "progressed": False}
    # cleared on the baseline day itself: the same follow-up
    assert assess(series([0, 1, 2], [40, 10, 0]), 2, end_day=6)["pfs_days"] == 4.0
    # without an end day there is no follow-up after the baseline to count (never negative)
    assert assess(cleared, baseline_day=2)["pfs_days"] == 0.0


def test_a_cleared_run_after_the_baseline_is_a_complete_response_censored_at_its_planned_end():
    # NaN means over the cancer cells (none left) do not matter to the rule
    out = assess(series([0, 1, 2, 2.5], [100, 120, 30, 0], MeanPDL1=[0.1, 0.1, 0.2, math.nan]),
                 baseline_day=1, end_day=5, min_sd_days=1)
    assert out["best_response"] == "CR" and out["best_change_pct"] == pytest.approx(-100.0)
    assert out["progressed"] is False and out["pfs_days"] == 4.0
    # a CR that leaves necrotic sites: the lesion is their area, so its change is not -100%
    out = assess(series([0, 1, 2], [100, 50, 0], [0, 20, 25]), 0, end_day=3, min_sd_days=1)
    assert out["best_response"] == "CR"
    assert out["best_change_pct"] == pytest.approx((math.sqrt(25 / 100) - 1) * 100)


def test_a_single_day_run_and_a_lesion_absent_at_baseline():
    # one assessment after the baseline: SD only if min_sd_days allows it, else not evaluable
    one_day = series([0, 1], [100, 90])
    assert assess(one_day, 0, end_day=1, min_sd_days=1)["best_response"] == "SD"
    assert assess(one_day, 0, end_day=1)["best_response"] == "NE"  # the default 7 days
    # the baseline is the last row: no assessment at all
    out = assess(one_day, 1, end_day=1)
    assert out["best_response"] == "NE" and math.isnan(out["best_change_pct"])
    assert out["pfs_days"] == 0.0 and out["progressed"] is False
    # no living cancer cell at baseline (only necrotic sites): not evaluable, never CR
    out = assess(series([0, 1, 2, 3], [100, 0, 0, 0], [0, 30, 30, 30]), 1, end_day=3)
    assert out["best_response"] == "NE" and out["pfs_days"] == 2.0


@pytest.mark.parametrize(
    ("frame", "kwargs", "says"),
    [
        # a baseline after the run: was silently "NE"
        (series([0, 1, 2], [40, 50, 60]), {"baseline_day": 5, "end_day": 3},
         "end_day 3 is before baseline_day 5"),
        (series([0, 1, 2], [40, 50, 60]), {"baseline_day": 5},
         "baseline_day 5 is after the series' last row (day 2, 60 cancer cells)"),
        # a count that is not one: NaN was silently skipped
        (series([0, 1, 2], [40, math.nan, 30]), {"baseline_day": 0},
         "column CancerCells is nan in row 1"),
        (series([0, 1, 2], [40, -1, 30]), {"baseline_day": 0}, "column CancerCells is -1.0"),
        (series([0, math.inf, 2], [40, 20, 30]), {"baseline_day": 0}, "column Day is inf"),
        (series([0, 2, 1], [40, 20, 30]), {"baseline_day": 0},
         "Day must increase from row to row; row 2 is day 1 after day 2"),
        # a missing column: was a bare KeyError
        (pd.DataFrame({"Day": [0, 1], "Cells": [40, 30]}), {"baseline_day": 0},
         "missing column CancerCells"),
        (series([], []), {"baseline_day": 0}, "series: no row (an empty time series"),
        (series([0, 1], [40, 30]), {"baseline_day": math.nan}, "baseline_day: expected a finite"),
        (series([0, 1], [40, 30]), {"baseline_day": 0, "min_sd_days": -1},
         "min_sd_days: expected a finite number of days >= 0, got -1"),
        (series([0, 1], [40, 30]), {"baseline_day": 0, "end_day": math.inf},
         "end_day: expected a finite"),
        (series([1, 2], [40, 30]), {"baseline_day": 0},
         "baseline_day 0 is before the series' first row (day 1)"),
    ],
)
def test_series_that_cannot_be_assessed_are_refused_naming_the_problem(frame, kwargs, says):
    with pytest.raises(ValueError) as err:
        assess(frame, **kwargs)
    assert says in str(err.value)


# --- drawing patients -------------------------------------------------------------------------


def cohort(patients: dict) -> dict:
    return {
        "sweep": {"name": "audit", "scenario": "escape", "days": 3, "record_every": 24},
        "parameters": {"width": 30, "height": 30},
        "patients": patients,
        "arms": {"untreated": {}, "anti_pd1": {"anti_pd1_start_day": 1}},
        "response": {"baseline_day": 1, "min_sd_days": 1},
    }


def test_a_truncated_lognormal_with_a_huge_sigma_still_varies_between_its_bounds():
    # inverting the CDF rounded every draw to the median (1.5) once sigma >= 1e16; with such a
    # sigma the truncated lognormal is log-uniform on [low, high] to within 1e-12
    from scipy.stats import kstest

    for sigma in (1e9, 1e300):
        spec = parse_spec(cohort({"n": 500, "seed": 4, "lognormal": {
            "tcell_influx": [1.5, sigma, 0.2, 10.0]}}))
        drawn = np.array([p["tcell_influx"] for p in patient_points(spec.patients)])
        assert drawn.min() >= 0.2 and drawn.max() <= 10.0
        assert len(np.unique(drawn)) == 500
        log_uniform = (np.log(drawn) - np.log(0.2)) / (np.log(10.0) - np.log(0.2))
        assert kstest(log_uniform, "uniform").pvalue > 0.01, sigma
    # and correlated with another parameter it keeps the asked rank correlation
    from scipy.stats import spearmanr

    spec = parse_spec(cohort({"n": 2000, "seed": 4,
                              "lognormal": {"tcell_influx": [1.5, 1e300, 0.2, 10.0]},
                              "uniform": {"founder_mhc": [0.4, 1.0]},
                              "correlation": {"tcell_influx": {"founder_mhc": 0.6}}}))
    points = pd.DataFrame(patient_points(spec.patients))
    rho = spearmanr(points["tcell_influx"], points["founder_mhc"]).statistic
    assert rho == pytest.approx(0.6, abs=0.05)


def test_an_ordinary_truncated_lognormal_draws_exactly_as_before():
    # the path of every sensible sigma is unchanged: the draws of the ready-made spec's line
    spec = parse_spec(cohort({"n": 3, "seed": 15,
                              "lognormal": {"tcell_influx": [1.5, 0.5, 0.2, 10.0]}}))
    from scipy.stats import norm

    rng = np.random.default_rng(np.random.SeedSequence(15).spawn(2)[0])
    mu = math.log(1.5)
    cdf = [norm.cdf((math.log(b) - mu) / 0.5) for b in (0.2, 10.0)]
    expected = np.exp(mu + 0.5 * norm.ppf(rng.uniform(cdf[0], cdf[1], size=3)))
    assert [p["tcell_influx"] for p in patient_points(spec.patients)] == expected.tolist()


# --- bad cohort specs through `abm sweep` -----------------------------------------------------

SPEC = """[sweep]
name = "audit"
scenario = "escape"
days = 3

[parameters]
width = 30
height = 30

[patients]
n = 2
[patients.lognormal]
tcell_influx = {lognormal}
[patients.uniform]
founder_mhc = [0.4, 1.0]
{extra}
[arms.untreated]
[arms.anti_pd1]
anti_pd1_start_day = 1

[response]
baseline_day = 1
min_sd_days = 1
"""


@pytest.mark.parametrize(
    ("lognormal", "extra", "key", "says"),
    [
        ("[1.5, 0.5, 0.2, 10.0]", "[patients.normal]\nfounder_pdl1 = [0, 1]",
         "patients.normal", "unknown distribution; expected one of lognormal, uniform, choice"),
        ("[1.5, -0.5, 0.2, 10.0]", "", "patients.lognormal.tcell_influx", "sigma > 0"),
        ("[1.5, 0.5, 10.0, 0.2]", "", "patients.lognormal.tcell_influx",
         "expected 0 <= low < high for the truncation, got [10.0, 0.2]"),
        ("[1.5, 0.5, 0.2, 10.0]", "no_such_parameter = [0, 1]",
         "patients.uniform.no_such_parameter", "unknown parameter 'no_such_parameter'"),
        ("[1.5, 0.5, 0.2, 10.0]", "[patients.correlation]\ntcell_influx.founder_mhc = 1.5",
         "patients.correlation.tcell_influx.founder_mhc", "strictly between -1 and 1, got 1.5"),
        ("[1.5, 0.5, 0.2, 10.0]", "[patients.correlation]\ntcell_influx.founder_pdl1 = 0.5",
         "patients.correlation.tcell_influx.founder_pdl1", "founder_pdl1 is not drawn"),
        ("[1.5, 0.5, 0.2, 10.0]",
         "[patients.choice]\nfounder_antigens = [1, 2, 3]\n[patients.correlation]\n"
         "tcell_influx.founder_mhc = 0.9\ntcell_influx.founder_antigens = 0.9\n"
         "founder_mhc.founder_antigens = -0.9", "patients.correlation", "cannot hold together"),
    ],
)
def test_bad_cohort_specs_are_refused_by_abm_sweep_in_one_line(tmp_path, lognormal, extra, key,
                                                                says):
    from abm.cli import app

    path = tmp_path / "bad.toml"
    path.write_text(SPEC.format(lognormal=lognormal, extra=extra))
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(f"error: {path}: {key}: ") and says in lines[0]
    assert not (tmp_path / "out").exists()  # refused before anything ran
