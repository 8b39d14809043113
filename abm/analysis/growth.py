"""Tumour growth from a burden time series: the shape of growth without immunity (fact 1 of
``docs/validation.md``) and the burden on a given day."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm.analysis.outcomes import check_series


def loglog_slope(day: np.ndarray, burden: np.ndarray, from_day: float = 6.0) -> float:
    """Slope of log(burden) against log(day) from ``from_day`` on: 2 for compact growth from a
    rim in 2-D (Eden), rising without bound for exponential growth. ``ValueError`` with
    fewer than 2 days from ``from_day`` on."""
    day, burden = np.asarray(day, dtype=float), np.asarray(burden, dtype=float)
    w = day >= from_day
    if w.sum() < 2:
        last = f"its last day is {day.max():g}" if day.size else "it is empty"
        raise ValueError(f"loglog_slope: from_day {from_day!r}: the series has {w.sum()} day(s) "
                         f"from then on ({last}): expected at least 2")
    return float(np.polyfit(np.log(day[w]), np.log(burden[w]), 1)[0])


def growth_rate_ratio(daily: np.ndarray, early: int, late: int, span: int = 2) -> float:
    """Late over early mean daily log growth rate, from a burden sampled once a day
    (``daily[d]`` = burden at day ``d``): the rate over days ``late - span`` to ``late`` over
    the rate over ``early - span`` to ``early``. 1 for exponential growth, < 1 for rim growth."""
    rate = lambda end: np.log(daily[end] / daily[end - span]) / span  # noqa: E731
    return float(rate(late) / rate(early))


def burden_on(df: pd.DataFrame, day: float) -> int:
    """Cancer cells at the last recorded row on or before ``day`` (``ValueError`` for a day
    before the first row)."""
    check_series(df, ("Day", "CancerCells"), "burden_on")
    before = df.loc[df["Day"] <= day, "CancerCells"]
    if before.empty:
        raise ValueError(f"burden_on: day {day!r} is before the time series starts (day "
                         f"{df['Day'].iloc[0]:g}): expected a day >= {df['Day'].iloc[0]:g}")
    return int(before.iloc[-1])


def cleared_day(df: pd.DataFrame) -> float:
    """The first recorded day with no cancer cell (NaN if never cleared)."""
    zero = np.flatnonzero(df["CancerCells"].to_numpy() == 0)
    return float(df["Day"].iloc[zero[0]]) if zero.size else float("nan")
