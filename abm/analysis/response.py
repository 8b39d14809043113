"""RECIST 1.1 adapted to a 2-D lesion: a run's best overall response, best % change of the
lesion's diameter from baseline, and progression-free time, written once (used by the sweep
runner for ``patients.parquet``, by ``abm report`` and by the tests).

The rule (``docs/cohorts.md`` states it for users):

- *Lesion.* Its area is the cancer cells plus, when the model reports them (``NecroticSites``),
  the necrotic sites, as a radiologist measures a necrotic mass whole. Its diameter is that of
  the disc of the same area, ``2 sqrt(area / pi)`` sites, times the site size
  (``abm.params.SITE_UM``, 15 um).
- *Assessments* are the recorded rows after the baseline day (every ``record_every`` steps of the
  sweep; daily by default), not RECIST's 6-8 weeks: a simulation measures without cost.
- *Per assessment:* CR when no living cancer cell is left; PD when the diameter is at least 20%
  above the nadir (the smallest diameter so far, baseline included) *and* at least one site
  (15 um) above it; PR when at least 30% below baseline; SD otherwise. RECIST's absolute floor of
  +5 mm guards against the measuring error of a CT scan and is larger than the whole grid here
  (100 sites = 1.5 mm), so the floor is the model's own resolution, one site, which keeps a
  1-cell residue that becomes 2 cells from counting as progression.
- *Best overall response:* the best of CR > PR > SD > PD over the assessments up to and
  including the first PD (after progression a patient leaves the trial), no confirmation of CR or
  PR; SD counts only once it has lasted ``min_sd_days`` from baseline (RECIST's minimum SD
  duration: without it, daily assessments would make almost every growing tumour "SD" on its
  first day). Progression before that is PD; neither by the end of the run is ``NE``, as is a
  lesion already absent at baseline.
- *Progression-free time:* days from baseline to the first PD; without PD, censored at the end
  of the run (a run that stopped early because the tumour was cleared is censored at its
  planned end: it stays cleared; one cleared before the baseline day is followed from the
  baseline day, not from the day it was cleared).
- *Thresholds met exactly* count (a diameter exactly 30% below baseline is PR, exactly 20% above
  the nadir can be PD): the comparisons allow a relative rounding error of ``THRESHOLD_TOL``,
  far below the change one cell makes, so 900 -> 441 cells (-30.000%) is not lost to rounding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from abm.params import SITE_UM

RESPONSES = ("CR", "PR", "SD", "PD", "NE")  # best first; NE: not evaluable
# CR and PR far apart (dark blue and light green), SD purple, PD orange, NE grey
RESPONSE_COLOURS = {"CR": "#1f4e9c", "PR": "#7fc97f", "SD": "#7570b3", "PD": "#d95f02",
                    "NE": "#999999"}
PR_CHANGE = -30.0  # % from baseline (RECIST 1.1, Eisenhauer et al. 2009, Eur J Cancer 45:228)
PD_CHANGE = 20.0  # % over the nadir (RECIST 1.1)
PD_MIN_UM = SITE_UM  # absolute floor of progression: one site (see the module docstring)
NECROTIC = "NecroticSites"
# Minimum duration of SD (days from baseline). RECIST 1.1 leaves it to the protocol (commonly
# 6-8 weeks, the first scan, in human trials); the model's tumours grow at mouse pace, doubling
# in days, so a week: modelling choice, set per cohort with [response] min_sd_days.
MIN_SD_DAYS = 7.0
# relative rounding error allowed at the PR and PD thresholds: the diameter of 441 cells over
# that of 900 is 0.7 in exact arithmetic (-30%) but 0.7000000000000001 in floating point, and a
# threshold met exactly must count; one cell in a million sites changes a diameter by 5e-7
THRESHOLD_TOL = 1e-9


def lesion_area(series: pd.DataFrame) -> np.ndarray:
    """The lesion's area in sites per row: cancer cells, plus necrotic sites when reported."""
    area = series["CancerCells"].to_numpy(dtype=float)
    if NECROTIC in series.columns:
        area = area + series[NECROTIC].fillna(0).to_numpy(dtype=float)
    return area


def diameter_um(area_sites: Any) -> np.ndarray:
    """The diameter (um) of the disc whose area is ``area_sites`` grid sites."""
    return 2.0 * np.sqrt(np.asarray(area_sites, dtype=float) / math.pi) * SITE_UM


def change_pct(series: pd.DataFrame, baseline_day: float) -> pd.DataFrame:
    """Day and % change of the diameter from baseline, for the rows from the baseline on (the
    spider plot's lines). Baseline: the last row at or before ``baseline_day``."""
    days, _ = _checked(series, baseline_day)
    diam = diameter_um(lesion_area(series))
    start = _baseline_index(days, baseline_day)
    base = diam[start]
    pct = (diam[start:] / base - 1.0) * 100.0 if base > 0 else np.full(len(days) - start, np.nan)
    return pd.DataFrame({"day": days[start:] - days[start], "change_pct": pct})


def _checked(series: Any, baseline_day: Any) -> tuple[np.ndarray, np.ndarray]:
    """The series' days and cancer cells, refused with a clear ValueError when they cannot be
    assessed (a missing column, no row, a day or count that is not a finite number, days not
    increasing) or when ``baseline_day`` is not a finite number."""
    if not isinstance(series, pd.DataFrame):
        raise ValueError(f"series: expected a pandas DataFrame (a run's time series), got "
                         f"{type(series).__name__}")
    missing = [c for c in ("Day", "CancerCells") if c not in series.columns]
    if missing:
        has = ", ".join(map(str, series.columns)) or "none"
        raise ValueError(f"series: missing column {', '.join(missing)} (a response needs Day "
                         f"and CancerCells; it has {has})")
    if not len(series):
        raise ValueError("series: no row (an empty time series cannot be assessed)")
    _check_days("baseline_day", baseline_day)
    out = []
    for column in ("Day", "CancerCells"):
        try:
            values = series[column].to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"series: column {column} holds values that are not numbers") from None
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if len(bad):
            row = int(bad[0])
            raise ValueError(f"series: column {column} is {float(values[row])!r} in row {row} "
                             "(expected a finite number >= 0 in every row)")
        out.append(values)
    if len(out[0]) > 1 and not np.all(np.diff(out[0]) > 0):
        row = int(np.flatnonzero(np.diff(out[0]) <= 0)[0]) + 1
        raise ValueError(f"series: Day must increase from row to row; row {row} is day "
                         f"{out[0][row]:g} after day {out[0][row - 1]:g}")
    return out[0], out[1]


def _check_days(name: str, value: Any) -> None:
    """A number of days: finite and >= 0, else a ValueError naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number of days >= 0, got {value!r}")


def _baseline_index(days: np.ndarray, baseline_day: float) -> int:
    before = np.flatnonzero(days <= baseline_day + 1e-9)
    if not len(before):
        raise ValueError(f"baseline_day {baseline_day:g} is before the series' first row (day "
                         f"{days[0]:g}): no row at or before the baseline day")
    return int(before[-1])


def assess(
    series: pd.DataFrame, baseline_day: float, end_day: float | None = None,
    min_sd_days: float = MIN_SD_DAYS,
) -> dict[str, Any]:
    """A run's response: ``best_response`` (CR / PR / SD / PD / NE), ``best_change_pct`` (the
    smallest % change of diameter from baseline, over the assessments counted), ``pfs_days``
    and ``progressed`` (False: censored at the end of the run, or at ``end_day`` if later).

    ``series`` needs ``Day``, ``CancerCells`` and, when the model has it, ``NecroticSites``.
    """
    days, cancer = _checked(series, baseline_day)
    _check_days("min_sd_days", min_sd_days)
    if end_day is not None:
        _check_days("end_day", end_day)
    if end_day is not None and end_day < baseline_day:
        raise ValueError(f"end_day {end_day:g} is before baseline_day {baseline_day:g}: the "
                         "baseline must be inside the run")
    if days[-1] < baseline_day - 1e-9 and cancer[-1] > 0:
        raise ValueError(f"baseline_day {baseline_day:g} is after the series' last row (day "
                         f"{days[-1]:g}, {cancer[-1]:g} cancer cells): only a run whose tumour "
                         "was cleared stops before its baseline")
    diam = diameter_um(lesion_area(series))
    start = _baseline_index(days, baseline_day)
    last = max(days[-1], end_day if end_day is not None else days[-1])
    # follow-up starts at the baseline row; a run cleared before the baseline day (its last
    # row is earlier) is followed from the baseline day, not from the day it was cleared
    origin = days[start] if days[-1] >= baseline_day - 1e-9 else float(baseline_day)
    censored = {"pfs_days": float(max(last - origin, 0.0)), "progressed": False}
    base = diam[start]
    if base <= 0 or cancer[start] <= 0:
        return {"best_response": "NE", "best_change_pct": math.nan, **censored}
    best, best_change, nadir, sd_lasted = "NE", math.inf, base, False
    progression = (1 + PD_CHANGE / 100) * (1 - THRESHOLD_TOL)
    partial = PR_CHANGE * (1 - THRESHOLD_TOL)  # (PR_CHANGE < 0: a bound just above -30%)
    for i in range(start + 1, len(days)):
        change = (diam[i] / base - 1.0) * 100.0
        if cancer[i] <= 0:
            now = "CR"
        elif diam[i] >= nadir * progression and diam[i] - nadir >= PD_MIN_UM:
            now = "PD"
        elif change <= partial:
            now = "PR"
        else:
            now = "SD"
        best_change = min(best_change, change)
        if now in ("CR", "PR") and RESPONSES.index(now) < RESPONSES.index(best):
            best = now
        sd_lasted = sd_lasted or (
            now != "PD" and days[i] - days[start] >= min_sd_days - 1e-9
        )
        if now == "PD":
            return {"best_response": _best(best, sd_lasted, "PD"), "best_change_pct": best_change,
                    "pfs_days": float(days[i] - days[start]), "progressed": True}
        nadir = min(nadir, diam[i])
    if not math.isfinite(best_change):  # no assessment after baseline
        return {"best_response": "NE", "best_change_pct": math.nan, **censored}
    return {"best_response": _best(best, sd_lasted, "NE"), "best_change_pct": best_change,
            **censored}


def _best(best: str, sd_lasted: bool, otherwise: str) -> str:
    """CR or PR if reached, else SD if it lasted long enough, else ``otherwise``."""
    if best in ("CR", "PR"):
        return best
    return "SD" if sd_lasted else otherwise


def objective_response(responses: Any) -> np.ndarray:
    """1 for CR or PR, 0 otherwise (NE counts as no response: every patient is in the
    denominator, as in an intention-to-treat analysis)."""
    return np.isin(np.asarray(responses, dtype=object), ["CR", "PR"]).astype(int)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (``scipy.stats.binomtest``)."""
    from scipy.stats import binomtest

    if n < 1:
        return (math.nan, math.nan)
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))
