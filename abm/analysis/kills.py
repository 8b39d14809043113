"""Killing: kills per CTL per day from the time series, and the kill chance of a cancer cell
against the number of CTLs around it (from the ``contacts`` probe). Fact 8 of
``docs/validation.md``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def kills_per_ctl_per_day(df: pd.DataFrame, first_day: float, last_day: float) -> dict[str, Any]:
    """Kills between ``first_day`` and ``last_day`` per day, divided by the mean number of
    engaged CTLs (``engaged``) and of CTLs present (``present``) over the window. Needs hourly
    rows (``record_every = 1``): NaN for a window of fewer than 24 rows or with no CTL."""
    w = df[(df["Day"] >= first_day) & (df["Day"] <= last_day)]
    nan = float("nan")
    if len(w) < 24:
        return {"engaged": nan, "present": nan}
    kills = w["Kills"].iloc[-1] - w["Kills"].iloc[0]
    span = w["Day"].iloc[-1] - w["Day"].iloc[0]
    engaged, present = w["EngagedTCells"].mean(), w["TCells"].mean()
    return {
        "engaged": float(kills / (engaged * span)) if engaged > 0 else nan,
        "present": float(kills / (present * span)) if present > 0 else nan,
    }


def kill_probability(exposed: np.ndarray, died: np.ndarray, min_exposed: int = 1) -> np.ndarray:
    """Hourly chance of being killed per number of neighbouring CTLs: ``died[k] / exposed[k]``
    (NaN where fewer than ``min_exposed`` cell-hours were seen)."""
    exposed, died = np.asarray(exposed, dtype=float), np.asarray(died, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(exposed >= max(min_exposed, 1), died / exposed, np.nan)


def independent_contacts(p1: float, contacts: Any) -> np.ndarray:
    """The kill chance with ``k`` CTLs around if each acted independently with the chance
    ``p1`` of a lone CTL: ``1 - (1 - p1)^k``."""
    return 1 - (1 - p1) ** np.asarray(contacts, dtype=float)
