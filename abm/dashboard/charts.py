"""The live charts: ECharts options built from a ``Session.snapshot()``.

Plain dictionaries (no widgets), so they are cheap to test. Colours come from
``abm.dashboard.render``, so a cell type or clone has the same colour in the tissue and the charts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from abm.agents import TREATMENTS
from abm.dashboard import render as R

CHARTS = ("populations", "clones", "traits", "kills")  # the order on the page
MAX_CHART_POINTS = 240  # time series are thinned to this many points per chart
TOP_CLONES = 6  # clones shown by name in the clone chart; the rest are "other"
MHC_CSS = "#2c7fb8"  # mean MHC-I in the traits chart
NK_KILLS_CSS = "#808000"  # NK kills (the NK cells' olive)


def _thin(n: int) -> np.ndarray:
    if n <= MAX_CHART_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_CHART_POINTS).round().astype(int))


# Doses closer in time than this share of the time axis have one label between them: two
# labels printed along lines a few pixels apart overlapped and neither could be read (the
# plot is 190-650 px wide, a label's line of text 12-16 px, and the axis runs somewhat past
# the last day)
DOSE_LABEL_GAP = 1 / 14
DOSE_LABEL_CHARS = 24  # a longer label breaks after a " +" (it runs down the plot's height)


def dose_labels(doses: list[dict], span: float) -> list[str | None]:
    """The label of each dose's mark on a time axis of ``span`` days: doses closer together
    than ``DOSE_LABEL_GAP`` of it (counted from the first of them) share one label, on the
    first one's line ("anti-PD-1 + vaccine", a therapy given twice "anti-PD-1 ×2"); the
    others' lines have none (None). Every dose keeps its own dashed line."""
    names = {name: cls.label for name, cls in TREATMENTS.items()}
    gap = DOSE_LABEL_GAP * max(span, 1.0)
    groups: list[list[int]] = []  # indices into doses, in time order
    for i in sorted(range(len(doses)), key=lambda i: doses[i]["day"]):
        if groups and doses[i]["day"] - doses[groups[-1][0]]["day"] < gap:
            groups[-1].append(i)
        else:
            groups.append([i])
    labels: list[str | None] = [None] * len(doses)
    for group in groups:
        given = Counter(doses[i]["therapy"] for i in group)  # in the order given
        labels[group[0]] = _wrapped([names.get(therapy, therapy) + (f" ×{n}" if n > 1 else "")
                                     for therapy, n in given.items()])
    return labels


def _wrapped(parts: list[str]) -> str:
    """``parts`` joined by " + ", on lines of at most ``DOSE_LABEL_CHARS`` where possible."""
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 3 + len(part) <= DOSE_LABEL_CHARS:
            lines[-1] += " + " + part
        else:
            lines[-1] += " +"
            lines.append(part)
    return "\n".join(lines)


def _dose_marks(doses: list[dict], span: float) -> dict:
    """A dashed line at each dose (``span``: the time axis's days, for ``dose_labels``)."""
    data = []
    for dose, label in zip(doses, dose_labels(doses, span), strict=True):
        mark = {"xAxis": round(dose["day"], 3), "name": label or ""}
        data.append(mark if label else {**mark, "label": {"show": False}})
    return {
        "symbol": "none",
        "silent": True,
        "lineStyle": {"type": "dashed", "color": "#555"},
        # inside the plot, along the line: at its top end the label ran into the legend
        # (a line height of its own: without one, a label's two lines were drawn over each other)
        "label": {"formatter": "{b}", "fontSize": 10, "lineHeight": 13,
                  "position": "insideEndTop"},
        "data": data,
    }


def _span(days: list, doses: list[dict]) -> float:
    """The days a time axis covers (from 0): to the last day drawn or dose given."""
    return max([*days[-1:], *(d["day"] for d in doses), 0.0])


X_AXIS = {"type": "value", "name": "day", "nameLocation": "middle", "nameGap": 22, "min": 0}
GRID = {"top": 86, "left": 52, "right": 52, "bottom": 42}  # two legend lines; "day" below


def _line_chart(title: str, days: list, series: dict[str, tuple], doses: list,
                y_axes: list[dict]) -> dict:
    """A line chart over days; each series is (values, colour) or (values, colour, y axis)."""
    rows = [[d, *vals] for d, *vals in zip(days, *(s[0] for s in series.values()), strict=True)]
    out_series = []
    for i, (name, spec) in enumerate(series.items()):
        s = {"name": name, "type": "line", "showSymbol": False, "encode": {"x": 0, "y": i + 1},
             "lineStyle": {"width": 2}, "itemStyle": {"color": spec[1]},
             "yAxisIndex": spec[2] if len(spec) > 2 else 0, "connectNulls": False}
        if i == 0 and doses:
            s["markLine"] = _dose_marks(doses, _span(days, doses))
        out_series.append(s)
    return {
        "animation": False,
        "title": {"text": title, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 22, "textStyle": {"fontSize": 11}, "itemWidth": 14},
        "grid": GRID,
        "dataset": {"source": rows},
        "xAxis": X_AXIS,
        "yAxis": [{"type": "value", "scale": False, **axis} for axis in y_axes],
        "series": out_series,
    }


def _positive(values: list) -> list:
    """None (no point) where a count is 0: a log axis has no 0."""
    return [v if v > 0 else None for v in values]


def _without_tumour(values: list, cancer: list) -> list:
    """None (no point) where there are no cancer cells: a mean over no cells is not 0 (the
    reporters are NaN there, which the page's JSON cannot hold; older runs recorded 0)."""
    return [None if n == 0 or v != v else v for v, n in zip(values, cancer, strict=True)]


def chart_options(snapshot: dict[str, Any]) -> dict[str, dict]:
    """ECharts options of the four live charts, from a ``Session.snapshot()``."""
    cols, doses = snapshot["vars"], snapshot["doses"]
    idx = _thin(len(cols["Day"]))

    def col(name: str, digits: int = 4) -> list:
        values = np.asarray(cols[name], dtype=float)[idx]
        return np.round(values, digits).tolist()

    days = col("Day", 3)
    cancer = col("CancerCells")
    c = {k: R.css(rgb) for k, rgb in R.KIND_RGB.items()}
    kinds = R.Kind
    # cancer cells on the left axis, immune cells on the right: ten Tregs next to thousands
    # of cancer cells would be a flat line at zero. The immune axis is logarithmic, so ten
    # Tregs stay visible next to hundreds of T cells or macrophages (0 is no point on it).
    # CAR-T cells, macrophages and NK cells once they have been in the tissue (as NK kills
    # below): a lesson without them has a legend of one row, clear of the axis names
    extra = {name: (_positive(col(column)), c[kind], 1)
             for name, column, kind in (("CAR-T", "CARTCells", kinds.CART),
                                        ("macrophages", "Macrophages", kinds.MACROPHAGE),
                                        ("NK cells", "NKCells", kinds.NK))
             if any(cols[column])}
    populations = _line_chart(
        "Populations", days,
        {"cancer": (cancer, R.css(R.CANCER_VISIBLE_RGB)),
         "T cells": (_positive(col("TCells")), c[kinds.TCELL], 1),
         **({"CAR-T": extra.pop("CAR-T")} if "CAR-T" in extra else {}),
         "Tregs": (_positive(col("Tregs")), c[kinds.TREG], 1),
         "MDSCs": (_positive(col("MDSCs")), c[kinds.MDSC], 1),
         **extra},
        doses, [{"name": "cancer cells", "nameTextStyle": {"color": R.css(R.CANCER_VISIBLE_RGB)},
                 "axisLabel": {"color": R.css(R.CANCER_VISIBLE_RGB)}},
                {"name": "immune cells (log)", "type": "log", "logBase": 10, "min": 1,
                 "splitLine": {"show": False}}],
    )
    if snapshot.get("twin_cancer") is not None:  # Compare: the untreated twin, dashed
        twin = np.asarray(snapshot["twin_cancer"], dtype=object)[idx].tolist()
        for row, value in zip(populations["dataset"]["source"], twin, strict=True):
            row.append(value)
        populations["series"].append(
            {"name": "untreated twin", "type": "line", "showSymbol": False,
             "encode": {"x": 0, "y": len(populations["series"]) + 1}, "yAxisIndex": 0,
             "lineStyle": {"width": 2, "type": "dashed"},
             "itemStyle": {"color": R.css(R.CANCER_HIDDEN_RGB)}})
    traits = _line_chart(
        "Visibility and checkpoint", days,
        {"mean antigenicity": (_without_tumour(col("MeanAntigenicity"), cancer),
                               R.css(R.CANCER_VISIBLE_RGB)),
         "mean PD-L1": (_without_tumour(col("MeanPDL1"), cancer), R.PDL1_CSS),
         "mean MHC-I": (_without_tumour(col("MeanMHC"), cancer), MHC_CSS),
         "PD-1 occupancy": (col("PD1Occupancy"), "#636363"),
         "CAR-target-negative fraction": (
             _without_tumour(col("AntigenNegativeFraction"), cancer), R.css(R.CAR_NEGATIVE_RGB))},
        doses, [{"name": "0-1", "min": 0, "max": 1}],
    )
    # NK kills, once NK cells have been in the tissue (a flat zero line otherwise)
    nk = ({"NK kills": (col("NKKills"), NK_KILLS_CSS)} if any(cols["NKCells"]) else {})
    kills = _line_chart(
        "Kills (cumulative) and T-cell states", days,
        {"T-cell kills": (col("Kills"), "#333333"), **nk,
         "exhausted T cells, %": (
             (np.asarray(col("ExhaustedFraction")) * 100).round(2).tolist(),
             R.css(R.EXHAUSTED_T_RGB), 1),
         # 0 throughout unless T-cell states are on (tcell_progenitor_fraction > 0)
         "progenitor T cells, %": (
             (np.asarray(col("ProgenitorFraction")) * 100).round(2).tolist(),
             R.css(R.PROGENITOR_T_RGB), 1)},
        doses, [{"name": "kills"},
                {"name": "% of T cells", "min": 0, "max": 100, "splitLine": {"show": False},
                 "nameTextStyle": {"color": R.css(R.EXHAUSTED_T_RGB)},
                 "axisLabel": {"color": R.css(R.EXHAUSTED_T_RGB)}}],
    )
    return {"populations": populations, "traits": traits, "clones": clone_chart(snapshot),
            "kills": kills}


def clone_chart(snapshot: dict[str, Any]) -> dict:
    """Stacked area of cancer cells per clone: the largest clones by name, the rest "other"."""
    history = snapshot["clones"]
    idx = _thin(len(history))
    sampled = [history[i] for i in idx]
    top = snapshot.get("named_clones")
    if top is None:  # (a snapshot without them: the largest by their peak in the samples)
        peak: dict[int, int] = {}
        for _, counts in sampled:
            for clone, n in counts.items():
                peak[clone] = max(peak.get(clone, 0), n)
        top = sorted(peak, key=lambda c: (-peak[c], c))[:TOP_CLONES]
    days = [round(day, 3) for day, _ in sampled]
    columns = {f"clone {k}": ([counts.get(k, 0) for _, counts in sampled],
                              R.clone_colour(k, top)) for k in top}
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
        series[0]["markLine"] = _dose_marks(snapshot["doses"], _span(days, snapshot["doses"]))
    return {
        "animation": False,
        "title": {"text": "Clone composition", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        # a plain legend wraps onto a second line; "scroll" paged and truncated it
        "legend": {"top": 22, "textStyle": {"fontSize": 10}, "itemWidth": 12, "itemGap": 6},
        "grid": {**GRID, "right": 18},
        "xAxis": X_AXIS,
        "yAxis": {"type": "value", "name": "cancer cells"},
        "series": series,
    }


# Large text, for the back of a classroom (the page's "large text" switch, ``large=1``): the
# sizes in pixels, and the room the larger legend and axis labels need around the plot.
LARGE_FONT = {"title": 18, "legend": 15, "axis": 15, "mark": 13, "tooltip": 15}
LARGE_GRID = {"top": 108, "left": 64, "right": 64, "bottom": 52}
LARGE_NAME_GAP = 28  # the x axis's "day" below its larger labels


def large_text(option: dict) -> dict:
    """``option`` with every text at ``LARGE_FONT`` and the plot area shrunk to make room for
    it (ECharts draws its text in a canvas: a page's CSS cannot reach it). A new dict; the
    parts it changes are copied, the data are shared (it runs every frame)."""
    def sized(part: dict, size: int) -> dict:
        return {**part, "textStyle": {**part.get("textStyle", {}), "fontSize": size}}

    def axis(spec: dict, x: bool) -> dict:
        out = {**spec, **{part: {**spec.get(part, {}), "fontSize": LARGE_FONT["axis"]}
                          for part in ("axisLabel", "nameTextStyle")}}
        return {**out, "nameGap": LARGE_NAME_GAP} if x else out

    def axes(spec: dict | list, x: bool) -> dict | list:
        return [axis(a, x) for a in spec] if isinstance(spec, list) else axis(spec, x)

    def marked(series: dict) -> dict:
        if "markLine" not in series:
            return series
        line = series["markLine"]
        return {**series, "markLine": {**line, "label": {
            **line["label"], "fontSize": LARGE_FONT["mark"], "lineHeight": LARGE_FONT["mark"] + 3}}}

    return {
        **option,
        "title": sized(option["title"], LARGE_FONT["title"]),
        "legend": {**sized(option["legend"], LARGE_FONT["legend"]), "top": 28, "itemWidth": 18},
        "tooltip": sized(option.get("tooltip", {}), LARGE_FONT["tooltip"]),
        # a narrow margin (the clone chart's right: no axis there) stays narrow
        "grid": {key: max(value, LARGE_GRID[key]) if value > 20 else value
                 for key, value in option["grid"].items()},
        "xAxis": axes(option["xAxis"], x=True),
        "yAxis": axes(option["yAxis"], x=False),
        "series": [marked(series) for series in option["series"]],
    }
