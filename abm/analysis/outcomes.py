"""A run's outcome, from its time series: the one place the outcome classes are defined.

Outcome classes (``classify``):

- ``eliminated``: no cancer cell left at the end;
- ``escape``: the final burden is at least the escape threshold,
  ``min(escape_multiple x initial burden, escape_fraction x grid sites)``;
- ``controlled``: a tumour persists below the threshold.

The sweep runner writes ``summarise``'s row for every run; the validation analyses and the tests
classify with the same functions, so "escape" means one thing everywhere.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

ESCAPE_MULTIPLE = 5.0  # x initial burden (modelling choice: a clear, sustained outgrowth)
ESCAPE_FRACTION = 0.5  # of the grid's sites (modelling choice: a tumour filling half the field)
OUTCOMES = ("eliminated", "controlled", "escape")


def escape_threshold(
    initial: float, sites: int, escape_multiple: float = ESCAPE_MULTIPLE,
    escape_fraction: float = ESCAPE_FRACTION,
) -> float:
    """The burden (cancer cells) at or above which a tumour has escaped."""
    return min(escape_multiple * initial, escape_fraction * sites)


def classify(
    initial: float, final: float, sites: int, escape_multiple: float = ESCAPE_MULTIPLE,
    escape_fraction: float = ESCAPE_FRACTION,
) -> str:
    """``"eliminated"``, ``"escape"`` or ``"controlled"`` (see the module docstring)."""
    if final == 0:
        return "eliminated"
    if final >= escape_threshold(initial, sites, escape_multiple, escape_fraction):
        return "escape"
    return "controlled"


# the columns of a run's time series that summarise reads
SUMMARY_COLUMNS = ("Step", "Day", "CancerCells", "TCells", "CARTCells", "Kills",
                   "MeanAntigenicity", "AntigenNegativeFraction", "MeanPDL1", "CloneCount")


def check_series(df: Any, columns: tuple[str, ...] | list[str], what: str) -> None:
    """``ValueError`` naming ``what`` unless ``df`` is a time series (a DataFrame) with at
    least one row and every one of ``columns``, rather than a pandas ``KeyError`` or
    ``IndexError`` from inside the analysis."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what}: expected a run's time series (a pandas DataFrame), got "
                         f"{type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what}: the time series has no column {', '.join(map(repr, missing))}: expected "
            f"a run's time series with the columns {', '.join(columns)} (as simulate, "
            "model.datacollector.get_model_vars_dataframe() or a sweep's run file give)")
    if df.empty:
        raise ValueError(f"{what}: the time series has no rows: expected at least one (step 0)")


def _of_cells(value: float, cells: float) -> float:
    """A mean over the cancer cells, or NaN when there are none."""
    return float(value) if cells > 0 else math.nan


def summarise(
    full: pd.DataFrame, *, sites: int, escape_multiple: float = ESCAPE_MULTIPLE,
    escape_fraction: float = ESCAPE_FRACTION,
) -> dict[str, Any]:
    """Outcome of one run from its full (every-step) time series: the sweep's summary row
    (final/peak burden, time to elimination or escape, outcome, final reporters).
    ``ValueError`` for a table with no rows or without one of ``SUMMARY_COLUMNS``."""
    check_series(full, SUMMARY_COLUMNS, "summarise")
    day = full["Day"].to_numpy(dtype=float)
    burden = full["CancerCells"].to_numpy(dtype=float)
    last = full.iloc[-1]
    initial, final = burden[0], burden[-1]
    threshold = escape_threshold(initial, sites, escape_multiple, escape_fraction)
    outcome = classify(initial, final, sites, escape_multiple, escape_fraction)
    cleared = np.flatnonzero(burden == 0)
    above = np.flatnonzero(burden >= threshold)
    peak = int(np.argmax(burden))
    return {
        "steps_run": int(last["Step"]),
        "final_day": float(last["Day"]),
        "initial_burden": int(initial),
        "final_burden": int(final),
        "peak_burden": int(burden[peak]),
        "peak_day": float(day[peak]),
        "escape_threshold": float(threshold),
        "time_to_elimination_day": float(day[cleared[0]]) if cleared.size else math.nan,
        "time_to_escape_day": (
            float(day[above[0]]) if above.size and outcome == "escape" else math.nan
        ),
        "outcome": outcome,
        "final_tcells": int(last["TCells"]),
        "final_cart_cells": int(last["CARTCells"]),
        "total_kills": int(last["Kills"]),
        # means over the cancer cells: none once the tumour is gone (NaN, which reports skip
        # and count, not 0, which would read as a fully hidden or antigen-negative tumour)
        "final_mean_antigenicity": _of_cells(last["MeanAntigenicity"], final),
        "final_antigen_negative_fraction": _of_cells(last["AntigenNegativeFraction"], final),
        "final_mean_pdl1": _of_cells(last["MeanPDL1"], final),
        "final_clone_count": int(last["CloneCount"]),
    }
