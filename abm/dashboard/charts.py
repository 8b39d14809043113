"""The live charts: ECharts options built from a ``Session.snapshot()``.

Plain dictionaries (no widgets), so they are cheap to test. Colours come from
``abm.dashboard.render``, so a cell type or clone has the same colour in the tissue and the charts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from abm.agents import TREATMENTS
from abm.dashboard import render as R

CHARTS = ("populations", "clones", "traits", "kills")  # the order on the page
MAX_CHART_POINTS = 240  # time series are thinned to this many points per chart
TOP_CLONES = 8  # clones shown by name in the clone chart; the rest are "other"


def _thin(n: int) -> np.ndarray:
    if n <= MAX_CHART_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_CHART_POINTS).round().astype(int))


def _dose_marks(doses: list[dict]) -> dict:
    labels = {name: cls.label for name, cls in TREATMENTS.items()}
    return {
        "symbol": "none",
        "silent": True,
        "lineStyle": {"type": "dashed", "color": "#555"},
        "label": {"formatter": "{b}", "fontSize": 10},
        "data": [{"xAxis": round(d["day"], 3), "name": labels.get(d["therapy"], d["therapy"])}
                 for d in doses],
    }


def _line_chart(title: str, days: list, series: dict[str, tuple[list, str]], doses: list,
                y_name: str = "", y_max: float | None = None, log_axis: bool = False) -> dict:
    rows = [[d, *vals] for d, *vals in zip(days, *(s[0] for s in series.values()), strict=True)]
    out_series = []
    for i, (name, (_, colour)) in enumerate(series.items()):
        s = {"name": name, "type": "line", "showSymbol": False, "encode": {"x": 0, "y": i + 1},
             "lineStyle": {"width": 2}, "itemStyle": {"color": colour}}
        if i == 0 and doses:
            s["markLine"] = _dose_marks(doses)
        out_series.append(s)
    y_axis = {"type": "log" if log_axis else "value", "name": y_name, "scale": False}
    if y_max is not None:
        y_axis.update(min=0, max=y_max)
    return {
        "animation": False,
        "title": {"text": title, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 22, "textStyle": {"fontSize": 11}},
        "grid": {"top": 70, "left": 50, "right": 30, "bottom": 30},
        "dataset": {"source": rows},
        "xAxis": {"type": "value", "name": "day", "nameLocation": "end", "min": 0},
        "yAxis": y_axis,
        "series": out_series,
    }


def chart_options(snapshot: dict[str, Any]) -> dict[str, dict]:
    """ECharts options of the four live charts, from a ``Session.snapshot()``."""
    cols, doses = snapshot["vars"], snapshot["doses"]
    idx = _thin(len(cols["Day"]))

    def col(name: str, digits: int = 4) -> list:
        values = np.asarray(cols[name], dtype=float)[idx]
        return np.round(values, digits).tolist()

    days = col("Day", 3)
    c = {k: R.css(rgb) for k, rgb in R.KIND_RGB.items()}
    kinds = R.Kind
    populations = _line_chart(
        "Populations", days,
        {"cancer": (col("CancerCells"), R.css(R.CANCER_VISIBLE_RGB)),
         "T cells": (col("TCells"), c[kinds.TCELL]),
         "CAR-T": (col("CARTCells"), c[kinds.CART]),
         "Tregs": (col("Tregs"), c[kinds.TREG]),
         "MDSCs": (col("MDSCs"), c[kinds.MDSC])},
        doses, "cells",
    )
    traits = _line_chart(
        "Visibility and checkpoint", days,
        {"mean antigenicity": (col("MeanAntigenicity"), R.css(R.CANCER_VISIBLE_RGB)),
         "mean PD-L1": (col("MeanPDL1"), "#7b3294"),
         "PD-1 occupancy": (col("PD1Occupancy"), "#636363"),
         "antigen-negative fraction": (col("AntigenNegativeFraction"), "#1b9e77")},
        doses, "0-1", y_max=1.0,
    )
    kills = _line_chart(
        "Kills (cumulative)", days,
        {"kills": (col("Kills"), "#333333"),
         "exhausted T-cell fraction x 100": (
             (np.asarray(col("ExhaustedFraction")) * 100).round(2).tolist(), "#9ab8e8")},
        doses, "",
    )
    return {"populations": populations, "traits": traits, "clones": clone_chart(snapshot),
            "kills": kills}


def clone_chart(snapshot: dict[str, Any]) -> dict:
    """Stacked area of cancer cells per clone: the largest clones by name, the rest "other"."""
    history = snapshot["clones"]
    idx = _thin(len(history))
    sampled = [history[i] for i in idx]
    peak: dict[int, int] = {}
    for _, counts in sampled:
        for clone, n in counts.items():
            peak[clone] = max(peak.get(clone, 0), n)
    top = sorted(peak, key=peak.get, reverse=True)[:TOP_CLONES]
    days = [round(day, 3) for day, _ in sampled]
    columns = {f"clone {k}": ([counts.get(k, 0) for _, counts in sampled], R.clone_colour(k))
               for k in top}
    columns["other"] = ([sum(counts.values()) - sum(counts.get(k, 0) for k in top)
                         for _, counts in sampled], "#bbbbbb")
    # [count, day] pairs with encode x=1, y=0: with two value axes ECharts 5.4 stacks the
    # FIRST dimension, so the count must come first (day first stacks the days)
    series = [
        {"name": name, "type": "line", "stack": "all", "areaStyle": {}, "showSymbol": False,
         "lineStyle": {"width": 0}, "itemStyle": {"color": colour}, "encode": {"x": 1, "y": 0},
         "data": [[n, d] for d, n in zip(days, values, strict=True)]}
        for name, (values, colour) in columns.items()
    ]
    if snapshot["doses"]:
        series[0]["markLine"] = _dose_marks(snapshot["doses"])
    return {
        "animation": False,
        "title": {"text": "Clone composition", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 22, "type": "scroll", "textStyle": {"fontSize": 11}},
        "grid": {"top": 70, "left": 50, "right": 18, "bottom": 30},
        "xAxis": {"type": "value", "name": "day", "min": 0},
        "yAxis": {"type": "value", "name": "cancer cells"},
        "series": series,
    }
