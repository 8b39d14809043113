"""The report of a sweep (a grid, arms or a sample): its plots, Sobol indices and
``report.md`` (``write_report``, which hands a cohort to ``abm.report.cohort``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.report.base import (
    CLASS_COLOURS,
    NOT_AVAILABLE,
    OUTCOME_CLASSES,
    ReportError,
    Sweep,
    _class_column,
    _colours,
    _engine_line,
    _figure,
    _fmt,
    _out_dir,
    _read_run,
    _steps_text,
    _table,
    check_choices,
    check_report_dir,
    outside_runs,
    warn_partial,
    write_report_files,
)
from abm.report.cohort import write_cohort_report
from abm.sweep.spec import count

MAX_TABLE_POINTS = 100
MAX_LINES = 12
MAX_RUN_LINES = 300  # above this many runs the time series are quantile bands per class
BAND_QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]
# a point's mean +/- SD, and a class's bands, end where fewer than this share of its runs go on
BAND_MIN_SHARE = 0.5
MANY_DOTS = 2000  # above this many runs a scatter's dots are smaller and fainter


def write_report(
    directory: str | Path,
    *,
    outcome: str = "final_burden",
    series: str = "CancerCells",
    out: str | Path | None = None,
) -> Path:
    """Write the plots and ``report.md`` for a sweep; return the path of ``report.md``. A
    cohort's report is its responses per arm (``write_cohort_report``): ``outcome`` and
    ``series`` do not apply, and other values than the defaults are a ``ReportError``."""
    sweep = Sweep(directory, argument="write_report: directory")
    out = outside_runs(sweep, _out_dir(out, sweep.dir / "report", "write_report"),
                       "write_report: out")
    if "patients" in sweep.spec:
        if (outcome, series) != ("final_burden", "CancerCells"):
            raise ReportError(
                f"{sweep.dir} is a cohort: its report is the responses per arm (waterfall, "
                "spider, Kaplan-Meier; docs/cohorts.md), so outcome and series do not apply; "
                "use export_csv and your own plots for other columns")
        return write_cohort_report(sweep, out)
    check_choices(sweep, outcome=outcome, series=series)
    check_report_dir(sweep, out, ("outcome_by_parameter.png", "outcome_classes.png",
                                  "timeseries.png", "sobol.png"))
    figures = {
        "outcome_by_parameter.png": plot_outcome_by_parameter(sweep, outcome),
        "outcome_classes.png": plot_outcome_classes(sweep),
        "timeseries.png": plot_timeseries(sweep, series),
    }
    sobol = None
    if sweep.sample and sweep.sample["method"] == "sobol":
        sobol = sobol_indices(sweep, outcome)
        figures["sobol.png"] = plot_sobol(sobol, outcome)
    drawn = {name: fig for name, fig in figures.items() if fig is not None}
    warn_partial(sweep, "the report")
    return write_report_files(out, drawn, _markdown(sweep, outcome, series, sobol, list(drawn)))


def per_point(sweep: Sweep, column: str) -> pd.DataFrame:
    """Mean, SD, and count of ``column`` over the replicates of each point (the values that
    are not missing). The SD is NaN, not 0, with fewer than two values, the mean with none."""
    grouped = sweep.summary.groupby("point_id")[column]
    return pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n": grouped.count()})


def _mean_sd(mean: float, sd: float, n: int) -> str:
    """``"0.09314 ± 0.012"``; ``"0.09314 ± –"`` from one value; ``"–"`` from none."""
    if n == 0 or not np.isfinite(mean):
        return NOT_AVAILABLE
    spread = f"{sd:.3g}" if n > 1 and np.isfinite(sd) else NOT_AVAILABLE
    return f"{mean:.4g} ± {spread}"


def plot_outcome_by_parameter(sweep: Sweep, outcome: str) -> Any:
    s = sweep.summary
    factors = list(sweep.factors)
    if not sweep.varied:
        fig, (ax,) = _figure()
        values = s[outcome].dropna()
        ax.hist(values, bins=20, color="#7570b3")
        missing = len(s) - len(values)  # e.g. a mean over cancer cells in a cleared run
        title = f"{outcome} over {count(len(values), 'run')}"
        if missing:
            title += f"\n({count(missing, 'run')} of {len(s)} without a value, left out)"
        ax.set(xlabel=outcome, ylabel="runs", title=title)
        return fig
    if not sweep.sampled and len(factors) == 2:
        return _heatmap(sweep, outcome, *factors)
    panels = factors + sweep.sampled
    fig, axes = _figure(len(panels))
    for ax, name in zip(axes, panels, strict=True):
        if name in sweep.factors:
            _factor_panel(ax, sweep, outcome, name)
        else:
            _class_scatter(ax, s, name, outcome)
            ax.set(xlabel=name, ylabel=outcome)
    if len(factors) > 1 or (factors and sweep.sampled):
        fig.suptitle("each factor averaged over the other varied parameters")
    return fig


def _class_scatter(ax: Any, s: pd.DataFrame, name: str, outcome: str) -> None:
    """One dot per run, coloured by outcome class; the most frequent class first, so the
    rarer ones are drawn over it (the legend stays in the classes' order)."""
    many = len(s) > MANY_DOTS
    counts = s["outcome"].value_counts()
    classes = [c for c in OUTCOME_CLASSES if c in counts]
    handles = {}
    for cls in sorted(classes, key=lambda c: -counts[c]):
        rows = s[s["outcome"] == cls]
        handles[cls] = ax.scatter(rows[name], rows[outcome], s=4 if many else 10,
                                  alpha=0.4 if many else 0.7, color=CLASS_COLOURS[cls],
                                  label=f"{cls} ({counts[cls]})" if many else cls, lw=0)
    ax.legend(handles=[handles[c] for c in classes], fontsize="small", title="outcome",
              markerscale=2 if many else 1)


def _factor_panel(ax: Any, sweep: Sweep, outcome: str, name: str) -> None:
    """Mean +/- SD of the outcome at each level of one factor; dots are single runs.

    Numeric levels sit at their values, joined by the mean's line and band; "none" (the
    parameter not given, e.g. a therapy never started) sits apart to their left, and named
    levels (arms, text) side by side, each with an error bar and no line, since neither lies
    on the numeric axis. The SD band stops at zero for an outcome that cannot be negative."""
    s = sweep.summary
    levels = list(sweep.factors[name])
    key = s[name].map(_fmt)

    def numeric(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and not (
            isinstance(v, float) and math.isnan(v))

    on_axis = [v for v in levels if numeric(v)]
    ordered = len(on_axis) >= 2 and all(numeric(v) or v is None for v in levels)
    if ordered:
        low, high = min(on_axis), max(on_axis)
        span = (high - low) or 1.0
        xs = np.array([v if numeric(v) else low - 0.15 * span for v in levels], dtype=float)
        jitter = 0.015 * span
    else:
        xs, jitter = np.arange(len(levels), dtype=float), 0.08
    nonnegative = bool((s[outcome].dropna() >= 0).all())
    means, sds = [], []
    rng = np.random.default_rng(0)  # jitter only
    for x, level in zip(xs, levels, strict=True):
        values = s.loc[key == _fmt(level), outcome].dropna().to_numpy()
        means.append(values.mean() if values.size else np.nan)
        sds.append(values.std(ddof=1) if values.size > 1 else 0.0)
        ax.scatter(x + rng.uniform(-jitter, jitter, values.size), values, s=8, alpha=0.35,
                   color="#555555")
    means, sds = np.array(means), np.array(sds)
    lower = np.maximum(means - sds, 0.0) if nonnegative else means - sds
    colour = "#d95f02"
    line = np.array([numeric(v) for v in levels]) if ordered else np.zeros(len(levels), bool)
    if line.any():
        order = np.argsort(xs[line])
        ax.plot(xs[line][order], means[line][order], "-o", color=colour, label="mean")
        ax.fill_between(xs[line][order], lower[line][order], (means + sds)[line][order],
                        color=colour, alpha=0.2, label="mean ± SD")
    apart = ~line
    if apart.any():  # "none" or named levels: a point with its error bar, no line
        ax.errorbar(xs[apart], means[apart],
                    yerr=[(means - lower)[apart], sds[apart]], fmt="s", color=colour,
                    capsize=4, label=None if line.any() else "mean ± SD")
    ax.set_xticks(xs, [_fmt(v) for v in levels])
    ax.set(xlabel=name, ylabel=outcome)
    ax.legend(fontsize="small")


def _heatmap(sweep: Sweep, outcome: str, row: str, col: str) -> Any:
    s = sweep.summary
    rows, cols = sweep.factors[row], sweep.factors[col]
    grid = np.full((len(rows), len(cols)), np.nan)
    rkey, ckey = s[row].map(_fmt), s[col].map(_fmt)
    for i, rv in enumerate(rows):
        for j, cv in enumerate(cols):
            values = s.loc[(rkey == _fmt(rv)) & (ckey == _fmt(cv)), outcome].dropna()
            if len(values):
                grid[i, j] = values.mean()
    fig, (ax,) = _figure(width=1.2 * len(cols) + 3, height=0.8 * len(rows) + 2)
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(cols)), [_fmt(v) for v in cols])
    ax.set_yticks(range(len(rows)), [_fmt(v) for v in rows])
    ax.set(xlabel=col, ylabel=row, title=f"mean {outcome} over replicates")
    finite = grid[np.isfinite(grid)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isfinite(grid[i, j]):  # no run with a value: say so, not a blank
                ax.text(j, i, NOT_AVAILABLE, ha="center", va="center", fontsize="small")
            else:
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:.0f}" if abs(grid[i, j]) >= 100 else f"{grid[i, j]:.3g}",
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="white" if grid[i, j] < middle else "black",
                )
    fig.colorbar(image, ax=ax, label=outcome)
    return fig


def plot_outcome_classes(sweep: Sweep) -> Any:
    """Stacked fractions of outcome classes per point (at most 60 points; else overall)."""
    s = sweep.summary
    fractions = s.groupby("point_id")[[_class_column(c) for c in OUTCOME_CLASSES]].mean()
    if len(fractions) > 60:
        fractions = fractions.mean().to_frame("all points").T
        labels = ["all points"]
    else:
        labels = [
            ", ".join(_fmt(sweep.points[pid][n]) for n in sweep.varied) or "all runs"
            for pid in fractions.index
        ]
    fig, (ax,) = _figure(width=max(5.0, 0.5 * len(labels) + 2), height=4.5)
    bottom = np.zeros(len(fractions))
    xs = np.arange(len(fractions))
    for cls in OUTCOME_CLASSES:
        values = fractions[_class_column(cls)].to_numpy()
        ax.bar(xs, values, bottom=bottom, color=CLASS_COLOURS[cls], label=cls)
        bottom += values
    ax.set_xticks(
        xs,
        labels,
        rotation=60 if len(labels) > 3 else 0,
        ha="right" if len(labels) > 3 else "center",
        fontsize="small",
    )
    ax.set(ylabel="fraction of replicates", ylim=(0, 1), title="outcome class by point")
    if len(fractions) > 1 or sweep.varied:
        ax.set_xlabel(", ".join(sweep.varied))
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def load_series(sweep: Sweep, series: str) -> pd.DataFrame:
    """Runs x days table of one time-series column, on the recording grid. After elimination a
    run's cancer-cell count is 0 (the run stops then); other columns are left missing."""
    steps, every = sweep.spec["sweep"]["steps"], sweep.spec["sweep"]["record_every"]
    run_ids = list(sweep.summary["run_id"])
    days, values = [], []
    for run_id in run_ids:  # as Arrow arrays, into one matrix: 12,288 runs in 7.5 s, not 16
        table = _read_run(sweep, run_id, ["Step", "Day", series], arrow=True)
        step = table.column("Step").to_numpy()
        keep = (step % every == 0) | (step == steps)
        days.append(table.column("Day").to_numpy()[keep])
        values.append(table.column(series).to_numpy(zero_copy_only=False)[keep])
    columns = np.unique(np.concatenate(days)) if days else np.array([], dtype=float)
    matrix = np.full((len(run_ids), len(columns)), np.nan)
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        matrix[i, np.searchsorted(columns, day)] = value
    table = pd.DataFrame(matrix, index=run_ids, columns=columns)
    if series == "CancerCells":
        eliminated = sweep.summary.set_index("run_id")["outcome"] == "eliminated"
        table.loc[eliminated[eliminated].index] = table.loc[eliminated[eliminated].index].fillna(0)
    return table


def plot_timeseries(sweep: Sweep, series: str) -> Any:
    """``series`` over time: up to ``MAX_LINES`` points, each point's mean and mean +/- SD
    over its runs, drawn on the days where at least half of them still have a value
    (``_too_few_left``; the title says so when a point is cut short); up to ``MAX_RUN_LINES``
    runs, every run coloured by its outcome; beyond, each class's quantile bands."""
    try:
        table = load_series(sweep, series)
    except ReportError:
        raise  # a broken run file (a ValueError too): its own message, not the series'
    except (KeyError, ValueError) as err:
        raise ReportError(f"--series {series!r}: not a time-series column ({err})") from None
    days = table.columns.to_numpy(dtype=float)
    point_of = sweep.summary.set_index("run_id")["point_id"]
    points = sorted(point_of.unique())
    outcome_of = sweep.summary.set_index("run_id")["outcome"]
    fig, (ax,) = _figure(width=8, height=4.8)
    if len(points) <= MAX_LINES:
        finite = table.to_numpy()[np.isfinite(table.to_numpy())]
        nonnegative = bool((finite >= 0).all())  # a count: no band below zero
        colours = _colours(len(points))
        cut = False
        for colour, pid in zip(colours, points, strict=True):
            rows = table.loc[point_of.index[point_of == pid]]
            few, short = _too_few_left(rows)
            cut |= short
            mean = rows.mean().to_numpy(dtype=float)
            sd = rows.std(ddof=1).fillna(0).to_numpy(dtype=float)
            mean[few] = np.nan  # a gap in the line and the band
            lower = np.maximum(mean - sd, 0.0) if nonnegative else mean - sd
            ax.plot(days, mean, color=colour, label=sweep.label(pid))
            ax.fill_between(days, lower, mean + sd, color=colour, alpha=0.15)
        ax.set_title(f"{series}: mean (line) and mean ± SD across replicates (band)"
                     + ("\neach point drawn while at least half its runs last" if cut else ""))
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1, 1))
    elif len(table) <= MAX_RUN_LINES:
        for cls in OUTCOME_CLASSES:
            ids = outcome_of.index[outcome_of == cls]
            for i, run_id in enumerate(ids):
                ax.plot(
                    days,
                    table.loc[run_id],
                    color=CLASS_COLOURS[cls],
                    alpha=0.25,
                    lw=0.7,
                    label=cls if i == 0 else None,
                )
        ax.set_title(f"{series}: every run ({len(points)} points), coloured by outcome")
        ax.legend(fontsize="small")
    else:
        cut = _class_bands(ax, table, outcome_of, days)
        ax.set_title(f"{series} of {count(len(table), 'run')} by outcome: median (line), "
                     "middle 50% and 90% of the runs (bands)"
                     + ("\neach class drawn while at least half its runs last" if cut else ""),
                     fontsize="medium")
        ax.legend(fontsize="small")
    ax.set(xlabel="day", ylabel=series)
    return fig


def _too_few_left(rows: pd.DataFrame) -> tuple[np.ndarray, bool]:
    """The days (columns of ``rows``, one row per run) on which fewer than ``BAND_MIN_SHARE``
    of the runs still have a value, and whether any of them has a value at all (a line cut
    short there, not one that ended by itself). A run that stopped early (cleared) leaves its
    later days out, so on those days a mean or a quantile would describe the few runs left,
    not the runs: its value jumps as runs stop, though no run changed."""
    n = rows.notna().sum().to_numpy()
    few = n < BAND_MIN_SHARE * len(rows)
    return few, bool((few & (n > 0)).any())


def _class_bands(ax: Any, table: pd.DataFrame, outcome_of: pd.Series, days: np.ndarray) -> bool:
    """Each outcome class's runs as quantiles day by day: the median, the 25-75% and the 5-95%
    bands. Thousands of single lines would cover each other, the largest class hiding the
    others. A class is drawn only on the days where at least half of its runs still have a
    value (``_too_few_left``): beyond them its quantiles would describe a shrinking remnant,
    not the class. Returns whether any class was cut short that way."""
    cut = False
    for cls in OUTCOME_CLASSES:
        rows = table.loc[outcome_of.index[outcome_of == cls]]
        if rows.empty:
            continue
        q = rows.quantile(BAND_QUANTILES).to_numpy(dtype=float)
        few, short = _too_few_left(rows)
        cut |= short
        q[:, few] = np.nan  # a gap in the line and the bands
        colour = CLASS_COLOURS[cls]
        ax.fill_between(days, q[0], q[4], color=colour, alpha=0.15, lw=0)
        ax.fill_between(days, q[1], q[3], color=colour, alpha=0.3, lw=0)
        ax.plot(days, q[2], color=colour, lw=1.8, label=f"{cls} ({count(len(rows), 'run')})")
    return cut


def sobol_indices(sweep: Sweep, outcome: str) -> list[dict[str, Any]]:
    """First-order and total Sobol indices (SALib) of the replicate-mean outcome: one analysis
    per combination of the factors (just one without ``[factors]``), one row per sampled
    parameter. A combination whose Saltelli sample is not whole has no indices (NaN), and its
    rows say why: ``unfinished`` points without a finished run (a sweep still running), or
    ``no_value`` points where no run has a value of the outcome (a mean over the cancer cells
    when every run there cleared its tumour); ``points`` is the sample's size. An outcome that
    does not vary has none either (``constant``: its value)."""
    from SALib.analyze import sobol

    from abm.sweep import Sample, salib_problem

    bounds = {name: tuple(b) for name, b in sweep.sample["bounds"]}
    problem = salib_problem(Sample("sobol", sweep.sample["n"], sweep.sample["seed"], bounds))
    n_sample = sweep.sample["n"] * (len(bounds) + 2)
    n_points = len(sweep.points)
    means = per_point(sweep, outcome)["mean"]
    finished = means.index
    means = means.reindex(range(n_points))
    results = []
    for start in range(0, n_points, n_sample):
        ids = range(start, start + n_sample)
        y = means.loc[ids].to_numpy(dtype=float)
        label = sweep.label(start, list(sweep.factors)) if sweep.factors else "all"
        unfinished = sum(1 for i in ids if i not in finished)
        no_value = int((~np.isfinite(y)).sum()) - unfinished
        constant = not (unfinished or no_value) and np.ptp(y) == 0  # no variance to apportion
        if unfinished or no_value or constant:
            indices = {k: np.full(len(bounds), np.nan) for k in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            indices = sobol.analyze(problem, y, calc_second_order=False, seed=0)
        for i, name in enumerate(bounds):
            results.append(
                {
                    "factors": label,
                    "parameter": name,
                    "S1": float(indices["S1"][i]),
                    "S1_conf": float(indices["S1_conf"][i]),
                    "ST": float(indices["ST"][i]),
                    "ST_conf": float(indices["ST_conf"][i]),
                    # the outcome's value at every point when it does not vary, else None
                    "constant": float(y[0]) if constant else None,
                    "points": n_sample,
                    "unfinished": unfinished,
                    "no_value": no_value,
                }
            )
    return results


def _has_indices(row: dict[str, Any]) -> bool:
    return row.get("constant") is None and not row.get("unfinished") and not row.get("no_value")


def _constant_line(outcome: str, value: float, group: str) -> str:
    where = "" if group == "all" else f" with {group}"
    return (f"`{outcome}` does not vary (it is {value:g} at every point{where}), so it has no "
            "Sobol indices")


def _why_no_value(outcome: str) -> str:
    """Why a point can have no value of ``outcome``: no run there has one, because..."""
    if outcome.startswith("final_mean_") or outcome == "final_antigen_negative_fraction":
        return "it is taken over the cancer cells, and every run there cleared its tumour"
    if outcome == "time_to_elimination_day":
        return "no run there eliminated its tumour"
    if outcome == "time_to_escape_day":
        return "no run there escaped"
    return "no run there has a value of it"


def _no_indices_line(outcome: str, row: dict[str, Any]) -> str:
    """Why a combination of the factors has no Sobol indices: the sweep is not finished, or
    the outcome has no value at some of its points."""
    group, points = row["factors"], row["points"]
    where = "" if group == "all" else f" with {group}"
    if row["unfinished"]:
        return (f"No Sobol indices of `{outcome}`{where} yet: {row['unfinished']} of {points} "
                "points have no finished run, and Saltelli's estimates need every "
                "point (rerun the same `abm sweep` command to finish the sweep)")
    return (f"`{outcome}` has no value at {row['no_value']} of {points} points{where} "
            f"({_why_no_value(outcome)}), so no Sobol indices can be computed: "
            "Saltelli's estimates need a value at every point. An outcome every run has (e.g. "
            "`final_burden`, or `eliminated`: the probability of clearing) has them")


def plot_sobol(results: list[dict[str, Any]], outcome: str) -> Any:
    table = pd.DataFrame(results)
    groups = list(dict.fromkeys(table["factors"]))[:6]
    fig, axes = _figure(len(groups), width=5.5, height=3.8)
    for ax, group in zip(axes, groups, strict=True):
        rows = table[table["factors"] == group]
        xs = np.arange(len(rows))
        for shift, index, label, colour in ((-0.2, "S1", "first order (S1)", "#1b9e77"),
                                            (0.2, "ST", "total (ST)", "#d95f02")):
            ax.bar(xs + shift, rows[index], 0.4, yerr=rows[f"{index}_conf"], label=label,
                   color=colour, capsize=3)
        ax.set_xticks(xs, rows["parameter"], rotation=20, ha="right")
        first = rows.iloc[0].to_dict()
        note = None
        if first.get("unfinished"):
            note = (f"{first['unfinished']} of {first['points']} points\nnot finished yet:\n"
                    "no Sobol indices")
        elif first.get("no_value"):
            note = (f"{outcome} has no value\nat {first['no_value']} of {first['points']} "
                    "points:\nno Sobol indices")
        elif first.get("constant") is not None and not pd.isna(first["constant"]):
            note = (f"{outcome} does not vary\n(it is {first['constant']:g} at every point):"
                    "\nno Sobol indices")
        if note:
            ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center",
                    bbox={"facecolor": "white", "edgecolor": "none"})
        ax.axhline(0, color="black", lw=0.5)
        ax.set(ylabel="Sobol index", title=f"{outcome}" + ("" if group == "all" else f"\n{group}"))
        ax.legend(fontsize="small")
    return fig


def _markdown(sweep: Sweep, outcome: str, series: str, sobol: list | None, figures: list) -> str:
    spec = sweep.spec["sweep"]
    s = sweep.summary
    prov = sweep.manifest.get("provenance", {})
    lines = [f"# Sweep report: {spec['name']}", ""]
    if spec.get("description"):
        lines += [f"**Question.** {spec['description']}", ""]
    counts = s["outcome"].value_counts()
    listed = spec.get("seeds")
    seeds = f"seeds {', '.join(map(str, listed))}" if listed else f"master seed {spec['seed']}"
    lines += [
        f"- scenario: `{spec['scenario'] or 'defaults'}`; {spec['steps']} steps "
        f"({spec['steps'] / 24:g} days) per run, rows every {_steps_text(spec['record_every'])}",
        f"- {count(len(sweep.points), 'point')} x {count(spec['replicates'], 'replicate')} = "
        f"{count(sweep.n_runs, 'run')} "
        f"({seeds}; replicate k has the same seed at every point)",
        f"- varied: {', '.join(f'`{v}`' for v in sweep.varied) or 'nothing (replicates only)'}",
        "- outcomes: " + ", ".join(f"{c} {counts.get(c, 0)}" for c in OUTCOME_CLASSES),
        f"- {_engine_line(sweep)}; abm {prov.get('abm')}, mesa {prov.get('mesa')}, "
        f"git {prov.get('git_commit')}",
        "",
    ]
    if not sweep.complete:
        lines += [f"> **Partial:** {len(s)} of {sweep.n_runs} runs finished so far.", ""]
    lines += [
        "Outcome classes: *eliminated* = no cancer cell left; *escape* = final burden at or above "
        "min(escape_multiple x initial, escape_fraction x grid sites) "
        f"({sweep.spec['outcome']['escape_multiple']:g} x, "
        f"{sweep.spec['outcome']['escape_fraction']:g}); *controlled* = otherwise.",
        "",
    ]
    for name in figures:
        lines += [f"![{name}]({name})", ""]
    stats = per_point(sweep, outcome)
    classes = s.groupby("point_id")[[_class_column(c) for c in OUTCOME_CLASSES]].mean()
    header = [
        "point",
        *sweep.varied,
        f"{outcome} mean ± SD",
        "n",
        *[f"P({c})" for c in OUTCOME_CLASSES],
    ]
    rows = []
    for pid in list(stats.index)[:MAX_TABLE_POINTS]:
        params = sweep.points[pid]
        rows.append(
            [
                str(pid),
                *[_fmt(params[v]) for v in sweep.varied],
                _mean_sd(stats.loc[pid, "mean"], stats.loc[pid, "sd"], stats.loc[pid, "n"]),
                str(stats.loc[pid, "n"]),
                *[f"{classes.loc[pid, _class_column(c)]:.2f}" for c in OUTCOME_CLASSES],
            ]
        )
    lines += [f"## {outcome} by point", "", _table(header, rows), ""]
    missing = int(s[outcome].isna().sum())
    if missing:  # e.g. a mean over the cancer cells of a run whose tumour is gone
        lines += [f"{count(missing, 'run')} of {len(s)} {'has' if missing == 1 else 'have'} no "
                  f"value of `{outcome}` and {'is' if missing == 1 else 'are'} left out; "
                  "n is the number of runs each mean rests on.", ""]
    if len(stats) > MAX_TABLE_POINTS:
        lines += [f"(first {MAX_TABLE_POINTS} of {len(stats)} points; all in summary.parquet)", ""]
    if sobol:
        varying = [r for r in sobol if _has_indices(r)]
        constant = {r["factors"]: r["constant"] for r in sobol if r.get("constant") is not None}
        without = {r["factors"]: r for r in sobol if r.get("unfinished") or r.get("no_value")}
        lines += [f"## Sobol indices of {outcome}", ""]
        if varying:
            lines += [
                "First-order (S1) and total (ST) indices with 95% confidence half-widths (SALib, "
                "Saltelli sampling; computed on the mean over replicates at each point).",
                "",
                _table(
                    ["factors", "parameter", "S1", "±", "ST", "±"],
                    [
                        [
                            r["factors"],
                            r["parameter"],
                            f"{r['S1']:.3f}",
                            f"{r['S1_conf']:.3f}",
                            f"{r['ST']:.3f}",
                            f"{r['ST_conf']:.3f}",
                        ]
                        for r in varying
                    ],
                ),
                "",
            ]
        lines += [f"{_constant_line(outcome, value, group)}." for group, value in
                  constant.items()]
        lines += [f"{_no_indices_line(outcome, row)}." for row in without.values()]
        if constant or without:
            lines += [""]
    lines += [
        f"Time series plotted: `{series}`. Data: `summary.parquet` (one row per run), "
        "`runs/*.parquet` (time series); `abm export DIR` (CSV) for spreadsheets.",
        "",
    ]
    return "\n".join(lines)
