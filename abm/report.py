"""Reports on a sweep directory: plots (PNG), a Markdown summary, and CSV export.

``abm report DIR`` writes into ``DIR/report/``:

* ``outcome_by_parameter.png``: the chosen outcome against the varied parameters: a heatmap of
  the mean for two factors; mean and spread (SD) across replicates, with each replicate as a dot,
  for one factor (or for each factor, averaged over the others, for three or more); a scatter per
  sampled parameter for ``lhs`` / ``sobol`` samples;
* ``outcome_classes.png``: the fraction of runs eliminated / controlled / escaped at each point;
* ``timeseries.png``: the mean and the band mean +/- SD across replicates of one time-series
  column per point (or every run, coloured by its outcome, when there are many points);
* ``sobol.png`` (``sobol`` samples): first-order and total Sobol indices (SALib) of the outcome,
  with their 95% confidence intervals;
* ``report.md``: the question, the setup, a table per point, and the Sobol indices.

A cohort (a sweep with ``[patients]``, ``docs/cohorts.md``) gets instead:

* ``waterfall.png``: each patient's best % change of lesion diameter from baseline, sorted,
  coloured by best overall response, one panel per arm;
* ``spider.png``: each patient's % change over time from baseline, one panel per arm;
* ``km.png``: progression-free survival per arm (lifelines' Kaplan-Meier estimate with its 95%
  confidence band);
* ``report.md``: best overall responses per arm, the objective response rate per arm and per
  stratum with 95% Wilson intervals, the paired difference of each treated arm against the
  untreated one (the same patients), and the median progression-free time.

Derived outcomes: besides the numeric columns of ``summary.parquet``, ``escaped``,
``eliminated`` and ``controlled`` are 0/1 per run, so their mean over replicates is a fraction
(e.g. ``--outcome escaped`` gives the probability of escape at each point).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.analysis.outcomes import OUTCOMES
from abm.params import did_you_mean
from abm.sweep import (
    ARM,
    ID_COLUMNS,
    PATIENT,
    SweepError,
    load_sweep,
    read_run_table,
    run_path,
)
from abm.sweep.spec import count

OUTCOME_CLASSES = OUTCOMES  # the classes of abm.analysis.outcomes, in plotting order
CLASS_COLOURS = {"eliminated": "#1b9e77", "controlled": "#7570b3", "escape": "#d95f02"}
MAX_TABLE_POINTS = 100
MAX_LINES = 12


class ReportError(ValueError):
    """A report that cannot be made (not a sweep directory, unknown outcome column, ...)."""


class PartialSweep(UserWarning):
    """An export of a sweep that is not finished: it holds the runs done so far."""


# keys of a manifest's spec that the report reads (besides factors, sample and arms)
SPEC_KEYS_READ = (("sweep", "name"), ("sweep", "steps"), ("sweep", "record_every"),
                  ("outcome", "escape_multiple"), ("outcome", "escape_fraction"))


# --- loading ----------------------------------------------------------------------------------


class Sweep:
    """A sweep directory read back: manifest, summary (one row per run) and point table."""

    def __init__(self, directory: str | Path, *, argument: str = "Sweep: directory") -> None:
        # argument: the caller's parameter, named if ``directory`` is not a path
        from abm.sweep.results import sweep_path

        try:
            self.dir = sweep_path(directory, argument)
            data = load_sweep(self.dir)
        except (SweepError, ValueError) as err:
            raise ReportError(str(err)) from None
        runs = data.manifest["runs"]
        if not data.runs:  # (a sweep started, e.g. still running or stopped, before any run)
            raise ReportError(
                f"{self.dir}: no run of this sweep has finished yet (0 of {len(runs)}), so "
                "there is nothing to report or export; rerun the same `abm sweep` command to "
                "run them (if it is running now, wait for its first run to finish)")
        self.manifest = data.manifest
        self.spec = self.manifest["spec"]
        self.varied: list[str] = self.manifest["varied"]
        try:
            # arms are a categorical factor (slowest in the point order, like the first factor)
            arms = [name for name, _ in self.spec.get("arms", [])]
            self.factors: dict[str, list[Any]] = {ARM: arms} if arms else {}
            self.factors.update(dict(self.spec["factors"]))
            self.sample = self.spec["sample"]
            self.sampled: list[str] = (
                [name for name, _ in self.sample["bounds"]] if self.sample else [])
            for table, key in SPEC_KEYS_READ:  # there, or this clear error now
                _ = self.spec[table][key]
        except (KeyError, TypeError, ValueError) as err:
            what = f"has no key {err}" if isinstance(err, KeyError) else "is of another shape"
            raise ReportError(f"{self.dir / 'manifest.json'}: not an abm sweep manifest (its "
                              f"spec {what}; another program's file, or edited by hand?)"
                              ) from None
        self.points = {r["point_id"]: r["parameters"] for r in runs}
        self.complete = data.complete
        summary = data.summary.copy()
        for name in OUTCOME_CLASSES:
            summary[_class_column(name)] = (summary["outcome"] == name).astype(float)
        self.summary = summary
        self.n_runs = len(runs)

    @property
    def engine(self) -> str:
        """Which engine ran the sweep (the manifest's ``engine``; sweeps written before it was
        recorded ran on the Mesa engine)."""
        return self.manifest.get("engine") or self.spec["sweep"].get("engine") or "mesa"

    def label(self, point_id: int, names: list[str] | None = None) -> str:
        params = self.points[point_id]
        names = self.varied if names is None else names
        return ", ".join(f"{n}={_fmt(params[n])}" for n in names) or "all runs"

    def numeric_outcomes(self) -> list[str]:
        skip = set(ID_COLUMNS) | set(self.varied)
        return [
            c
            for c in self.summary.columns
            if c not in skip and pd.api.types.is_numeric_dtype(self.summary[c])
        ]


def _class_column(name: str) -> str:
    return "escaped" if name == "escape" else name


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _check_outcome(sweep: Sweep, outcome: str) -> None:
    options = sweep.numeric_outcomes()
    if outcome not in options:
        raise ReportError(f"--outcome {outcome!r}{did_you_mean(outcome, options)} (expected "
                          f"one of {', '.join(options)})")


def series_columns(sweep: Sweep) -> list[str]:
    """The time-series columns that can be plotted: the numeric model columns of the run files
    (not ids, varied parameters, Step or Day). Read from the first run's schema only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = run_path(sweep.dir, sweep.summary["run_id"].iloc[0])
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as err:
        raise ReportError(str(_broken(path, err))) from None
    skip = {*ID_COLUMNS, *sweep.varied, "Step", "Day"}
    return [
        f.name for f in schema
        if f.name not in skip and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
    ]


def check_choices(sweep: Sweep, *, outcome: str, series: str) -> None:
    """``ReportError`` (one line, listing what is allowed) for an unknown outcome or series,
    before any plot is made."""
    _check_outcome(sweep, outcome)
    options = series_columns(sweep)
    if series not in options:
        raise ReportError(f"--series {series!r}{did_you_mean(series, options)} (expected one "
                          f"of {', '.join(options)})")


def _broken(path: Path, err: BaseException) -> SweepError:
    from abm.sweep.storage import broken

    return broken(path, err)


def _read_run(sweep: Sweep, run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return read_run_table(run_path(sweep.dir, run_id), columns, run_id=run_id)
    except SweepError as err:
        raise ReportError(str(err)) from None


def csv_ready(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` for a CSV file without float32 noise: a float that is exactly a float32 value
    (``0.05000000074505806``, ``0.8285782337188721``, from the model's float32 arrays) is
    written as the shortest number that is that float32 value (``0.05``, ``0.82857823``).
    Any other float (a parameter drawn in double precision, a mean taken in float64) keeps
    every digit, so values in a CSV match the Parquet files they came from."""
    out = df.copy()
    for column in out.columns:
        values = out[column]
        if not pd.api.types.is_float_dtype(values):
            continue
        raw = values.to_numpy(dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):
            single = raw.astype(np.float32)
            exact = (single.astype(np.float64) == raw) & np.isfinite(raw)
        shortest = np.array([float(str(v)) for v in single])
        out[column] = np.where(exact, shortest, raw)
    return out


# --- the report -------------------------------------------------------------------------------


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
    from abm.run import atomic_write_bytes

    sweep = Sweep(directory, argument="write_report: directory")
    out = _out_dir(out, sweep.dir / "report", "write_report")
    if "patients" in sweep.spec:
        if (outcome, series) != ("final_burden", "CancerCells"):
            raise ReportError(
                f"{sweep.dir} is a cohort: its report is the responses per arm (waterfall, "
                "spider, Kaplan-Meier; docs/cohorts.md), so outcome and series do not apply; "
                "use export_csv and your own plots for other columns")
        return write_cohort_report(sweep, out)
    check_choices(sweep, outcome=outcome, series=series)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "outcome_by_parameter.png": plot_outcome_by_parameter(sweep, outcome),
        "outcome_classes.png": plot_outcome_classes(sweep),
        "timeseries.png": plot_timeseries(sweep, series),
    }
    sobol = None
    if sweep.sample and sweep.sample["method"] == "sobol":
        sobol = sobol_indices(sweep, outcome)
        figures["sobol.png"] = plot_sobol(sobol, outcome)
    for name, fig in figures.items():
        if fig is not None:
            _save(fig, out / name)
    text = _markdown(sweep, outcome, series, sobol, [n for n, f in figures.items() if f])
    path = out / "report.md"
    atomic_write_bytes(path, text.encode())
    return path


def _out_dir(out: Any, default: Path, caller: str) -> Path:
    """Where ``caller`` writes: ``out`` (a folder path) or, for ``None``, ``default``;
    ``TypeError`` naming ``caller``'s ``out`` for anything else, ``ReportError`` for an empty
    path (which ``Path`` would make the current folder)."""
    if out is None:
        return default
    from abm.sweep.results import checked_path

    try:
        return checked_path(out, f"{caller}: out", f"a folder path (str or Path), or None for "
                            f"{default}", f"give a folder ('.' for the current folder), or None "
                            f"for {default}")
    except SweepError as err:
        raise ReportError(str(err)) from None


def _save(fig: Any, path: Path) -> None:
    import io

    from abm.run import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _figure(n_panels: int = 1, width: float = 5.0, height: float = 3.8) -> tuple[Any, list]:
    from matplotlib.figure import Figure

    cols = min(n_panels, 3)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def per_point(sweep: Sweep, column: str) -> pd.DataFrame:
    """Mean, SD, and count of ``column`` over the replicates of each point (the values that
    are not missing). The SD is NaN, not 0, with fewer than two values, the mean with none."""
    grouped = sweep.summary.groupby("point_id")[column]
    return pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n": grouped.count()})


NOT_AVAILABLE = "–"  # a table cell without a value (no SD from one value, no mean from none)


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
            for cls in OUTCOME_CLASSES:
                rows = s[s["outcome"] == cls]
                ax.scatter(
                    rows[name], rows[outcome], s=10, alpha=0.7, label=cls, color=CLASS_COLOURS[cls]
                )
            ax.set(xlabel=name, ylabel=outcome)
            ax.legend(fontsize="small", title="outcome")
    if len(factors) > 1 or (factors and sweep.sampled):
        fig.suptitle("each factor averaged over the other varied parameters")
    return fig


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
    frames = []
    for run_id in sweep.summary["run_id"]:
        df = _read_run(sweep, run_id, ["Step", "Day", series])
        df = df[(df["Step"] % every == 0) | (df["Step"] == steps)]
        frames.append(pd.Series(df[series].to_numpy(), index=df["Day"].to_numpy(), name=run_id))
    table = pd.concat(frames, axis=1).T.sort_index(axis=1)
    if series == "CancerCells":
        eliminated = sweep.summary.set_index("run_id")["outcome"] == "eliminated"
        table.loc[eliminated[eliminated].index] = table.loc[eliminated[eliminated].index].fillna(0)
    return table


def plot_timeseries(sweep: Sweep, series: str) -> Any:
    try:
        table = load_series(sweep, series)
    except ReportError:
        raise  # a broken run file (a ValueError too): its own message, not the series'
    except (KeyError, ValueError) as err:
        raise ReportError(f"--series {series!r}: not a time-series column ({err})") from None
    days = table.columns.to_numpy(dtype=float)
    point_of = sweep.summary.set_index("run_id")["point_id"]
    points = sorted(point_of.unique())
    fig, (ax,) = _figure(width=8, height=4.8)
    if len(points) <= MAX_LINES:
        finite = table.to_numpy()[np.isfinite(table.to_numpy())]
        nonnegative = bool((finite >= 0).all())  # a count: no band below zero
        colours = _colours(len(points))
        for colour, pid in zip(colours, points, strict=True):
            rows = table.loc[point_of.index[point_of == pid]]
            mean, sd = rows.mean(), rows.std(ddof=1).fillna(0)
            lower = (mean - sd).clip(lower=0) if nonnegative else mean - sd
            ax.plot(days, mean, color=colour, label=sweep.label(pid))
            ax.fill_between(days, lower, mean + sd, color=colour, alpha=0.15)
        ax.set_title(f"{series}: mean (line) and mean ± SD across replicates (band)")
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1, 1))
    else:
        outcome_of = sweep.summary.set_index("run_id")["outcome"]
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
    ax.set(xlabel="day", ylabel=series)
    return fig


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# --- Sobol indices ----------------------------------------------------------------------------


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
        ax.bar(
            xs - 0.2,
            rows["S1"],
            0.4,
            yerr=rows["S1_conf"],
            label="first order (S1)",
            color="#1b9e77",
            capsize=3,
        )
        ax.bar(
            xs + 0.2,
            rows["ST"],
            0.4,
            yerr=rows["ST_conf"],
            label="total (ST)",
            color="#d95f02",
            capsize=3,
        )
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


# --- Markdown ---------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _steps_text(n: int) -> str:
    """``"1 step"``, ``"24 steps"``."""
    return f"{n} step" if n == 1 else f"{n} steps"


def _engine_line(sweep: Sweep) -> str:
    """Which engine ran the sweep (``Sweep.engine``)."""
    what = "the reference" if sweep.engine == "mesa" else "compiled, the same rules"
    return f"engine: `{sweep.engine}` ({what}: docs/engines.md)"


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


# --- cohorts ----------------------------------------------------------------------------------


def cohort_patients(sweep: Sweep) -> pd.DataFrame:
    """The cohort's ``patients.parquet`` (rebuilt from the run files while the cohort is not
    finished, so a partial report reads the runs done so far, and when the file cannot be
    read, as ``load_sweep`` does for ``summary.parquet``)."""
    from abm.sweep import load_sweep, patients_table
    from abm.sweep.storage import read_parquet

    path = sweep.dir / "patients.parquet"
    if sweep.complete and path.exists():
        try:
            return read_parquet(path)
        except (OSError, ValueError):  # broken (ArrowInvalid is a ValueError): the run files
            pass
    try:
        return patients_table(load_sweep(sweep.dir))
    except (SweepError, ValueError) as err:  # a broken run file, one without a column
        raise ReportError(str(err)) from None


def _arms(patients: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(patients[ARM]))


def reference_arm(arms: list[str]) -> str | None:
    """The untreated arm the others are compared with: one named like ``untreated``,
    ``control`` or ``placebo``, else the first arm; None with a single arm."""
    if len(arms) < 2:
        return None
    for arm in arms:
        if any(word in arm.lower() for word in ("untreated", "control", "placebo")):
            return arm
    return arms[0]


def plot_waterfall(patients: pd.DataFrame) -> Any:
    from abm.analysis.response import PD_CHANGE, PR_CHANGE, RESPONSE_COLOURS, RESPONSES

    arms = _arms(patients)
    fig, axes = _figure(len(arms), width=5.5, height=3.8)
    for ax, arm in zip(axes, arms, strict=True):
        rows = patients[(patients[ARM] == arm) & patients["best_change_pct"].notna()]
        rows = rows.sort_values("best_change_pct", ascending=False)
        x = np.arange(len(rows))
        ax.bar(x, rows["best_change_pct"], width=1.0,
               color=[RESPONSE_COLOURS[r] for r in rows["best_response"]])
        ax.axhline(PD_CHANGE, color="grey", ls="--", lw=0.8)
        ax.axhline(PR_CHANGE, color="grey", ls=":", lw=0.8)
        ax.axhline(0, color="black", lw=0.6)
        n_ne = int((patients[ARM] == arm).sum() - len(rows))
        ax.set(title=f"{arm} ({len(rows)} patients" + (f", {n_ne} NE)" if n_ne else ")"),
               xlabel="patient (sorted)", ylabel="best % change of diameter from baseline")
        ax.set_xticks([])
    from matplotlib.patches import Patch

    shown = [r for r in RESPONSES if (patients["best_response"] == r).any() and r != "NE"]
    axes[-1].legend([Patch(color=RESPONSE_COLOURS[r]) for r in shown], shown, fontsize="small",
                    loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def plot_spider(sweep: Sweep, patients: pd.DataFrame) -> Any:
    from abm.analysis.response import NECROTIC, RESPONSE_COLOURS, RESPONSES, change_pct

    baseline = sweep.spec["response"]["baseline_day"] if sweep.spec.get("response") else 0.0
    arms = _arms(patients)
    fig, axes = _figure(len(arms), width=5.5, height=3.8)
    names = set(series_columns(sweep))
    columns = ["Day", "CancerCells", *([NECROTIC] if NECROTIC in names else [])]
    run_of = {
        (p[PATIENT], p.get(ARM, "all")): r["run_id"]
        for r in sweep.manifest["runs"] for p in [r["parameters"]]
    }
    done = set(sweep.summary["run_id"])
    for ax, arm in zip(axes, arms, strict=True):
        rows = patients[patients[ARM] == arm]
        for patient, response in zip(rows[PATIENT], rows["best_response"], strict=True):
            run_id = run_of.get((patient, arm))
            if run_id not in done:
                continue
            track = change_pct(_read_run(sweep, run_id, columns), baseline)
            ax.plot(track["day"], track["change_pct"], color=RESPONSE_COLOURS[response],
                    lw=0.7, alpha=0.6)
        ax.axhline(0, color="black", lw=0.6)
        ax.set(title=arm, xlabel="days from baseline", ylabel="% change of diameter",
               ylim=(-105, None))
    from matplotlib.lines import Line2D

    shown = [r for r in RESPONSES if (patients["best_response"] == r).any()]
    axes[-1].legend([Line2D([], [], color=RESPONSE_COLOURS[r]) for r in shown], shown,
                    title="best response", fontsize="small", loc="upper left",
                    bbox_to_anchor=(1, 1))
    return fig


def plot_km(patients: pd.DataFrame) -> Any:
    from lifelines import KaplanMeierFitter

    fig, (ax,) = _figure(width=6.5, height=4.2)
    for colour, arm in zip(_colours(len(_arms(patients))), _arms(patients), strict=True):
        rows = patients[patients[ARM] == arm]
        kmf = KaplanMeierFitter(label=f"{arm} (n={len(rows)})")
        kmf.fit(rows["pfs_days"], event_observed=rows["progressed"].astype(bool))
        kmf.plot_survival_function(ax=ax, ci_show=True, color=colour)
    ax.set(xlabel="days from baseline", ylabel="progression-free (fraction)", ylim=(0, 1.02),
           title="progression-free survival (Kaplan-Meier, 95% band)")
    return fig


def median_pfs(rows: pd.DataFrame) -> tuple[float, float, float]:
    """Median progression-free time (days) and its 95% interval (lifelines); ``inf`` when
    fewer than half progress."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    kmf = KaplanMeierFitter().fit(rows["pfs_days"], rows["progressed"].astype(bool))
    ci = median_survival_times(kmf.confidence_interval_).to_numpy().ravel()
    return float(kmf.median_survival_time_), float(ci[0]), float(ci[1])


def strata(patients: pd.DataFrame, name: str, bins: int | None) -> pd.Series:
    """Each row's stratum: the parameter's value, or its quantile bin, labelled by the smallest
    and largest value drawn in it (``[low, high]``: both in the bin, so no value seems to be in
    two bins, as ``pd.qcut``'s half-open edges would make it)."""
    if not bins:
        return patients[name].map(_fmt)
    values = patients[name]
    codes = pd.qcut(values, bins, labels=False, duplicates="drop")
    ranges = values.groupby(codes).agg(["min", "max"])
    labels = {code: f"[{low:.3g}, {high:.3g}]" for code, (low, high) in ranges.iterrows()}
    return codes.map(labels).astype(str)


def paired_difference(patients: pd.DataFrame, treated: str, control: str) -> dict[str, Any]:
    """Objective response, treated minus control, over the patients in both arms: the
    difference, its 95% interval (Wald, for paired proportions), the discordant counts and the
    exact McNemar p-value (binomial test of the discordant pairs)."""
    from scipy.stats import binomtest

    from abm.analysis.response import objective_response

    wide = patients.pivot(index=PATIENT, columns=ARM, values="best_response")[
        [treated, control]
    ].dropna()
    t, c = objective_response(wide[treated]), objective_response(wide[control])
    n = len(wide)
    only_t, only_c = int(((t == 1) & (c == 0)).sum()), int(((t == 0) & (c == 1)).sum())
    diff = (only_t - only_c) / n if n else math.nan
    se = math.sqrt(max(only_t + only_c - n * diff**2, 0.0)) / n if n else math.nan
    p = binomtest(only_t, only_t + only_c).pvalue if only_t + only_c else 1.0
    return {"n": n, "diff": diff, "low": diff - 1.96 * se, "high": diff + 1.96 * se,
            "only_treated": only_t, "only_control": only_c, "p": p}


def _orr_cell(responses: pd.Series) -> str:
    from abm.analysis.response import objective_response, wilson_interval

    hits, n = int(objective_response(responses).sum()), len(responses)
    low, high = wilson_interval(hits, n)
    return f"{hits}/{n} = {100 * hits / n:.0f}% [{100 * low:.0f}, {100 * high:.0f}]"


def _correlation_lines(cohort: dict, patients: pd.DataFrame, arms: list[str]) -> list[str]:
    """The drawn-together pairs: the rank correlation asked for and the one drawn (over the
    patients of one arm; every arm has the same patients)."""
    pairs = cohort.get("correlation") or []
    if not pairs:
        return []
    one = patients[patients[ARM] == arms[0]] if arms else patients
    shown = []
    for first, second, rho in pairs:
        drawn = one[first].astype(float).corr(one[second].astype(float), method="spearman")
        shown.append(f"`{first}` with `{second}` {rho:g} (drawn: "
                     + ("n/a" if pd.isna(drawn) else f"{drawn:.2f}") + ")")
    return ["- drawn together (Gaussian copula), rank correlation: " + "; ".join(shown)]


def _cohort_markdown(sweep: Sweep, patients: pd.DataFrame, figures: list[str]) -> str:
    from abm.analysis.response import NECROTIC, RESPONSES

    spec = sweep.spec["sweep"]
    cohort = sweep.spec["patients"]
    response = sweep.spec.get("response") or {"baseline_day": 0.0, "stratify": None, "bins": None}
    prov = sweep.manifest.get("provenance", {})
    arms = _arms(patients)  # the arms with a finished patient
    planned = [name for name, _ in sweep.spec.get("arms") or []] or arms
    necrotic = NECROTIC in series_columns(sweep)
    draws = ", ".join(f"`{name}` {kind} {args}" for name, kind, args in cohort["draws"])
    lines = [f"# Cohort report: {spec['name']}", ""]
    if spec.get("description"):
        lines += [f"**Question.** {spec['description']}", ""]
    lines += [
        f"- scenario: `{spec['scenario'] or 'defaults'}`; {spec['steps'] / 24:g} days per run, "
        f"rows (assessments) every {_steps_text(spec['record_every'])}",
        f"- {count(cohort['n'], 'patient')} (seed {cohort['seed']}) x "
        f"{count(len(planned), 'arm')} ({', '.join(planned)}); every patient in every arm "
        "with the same parameters and seed",
        f"- drawn: {draws}",
        *_correlation_lines(cohort, patients, arms),
        f"- baseline: day {response['baseline_day']:g}; lesion = cancer cells"
        + (" + necrotic sites" if necrotic else " (the model reports no necrotic sites)")
        + f"; SD counts after {_min_sd(response):g} days; RECIST-like rule of "
        "`abm.analysis.response` (docs/cohorts.md)",
        f"- {_engine_line(sweep)}; abm {prov.get('abm')}, mesa {prov.get('mesa')}, "
        f"git {prov.get('git_commit')}",
        "",
    ]
    if not sweep.complete:
        lines += [f"> **Partial:** {len(sweep.summary)} of {sweep.n_runs} runs finished.", ""]
        waiting = [arm for arm in planned if arm not in arms]
        if waiting:
            lines += [f"> No patient of the arm{'s' if len(waiting) > 1 else ''} "
                      f"{', '.join(waiting)} has finished yet: "
                      f"{'they are' if len(waiting) > 1 else 'it is'} left out below.", ""]
    for name in figures:
        lines += [f"![{name}]({name})", ""]
    rows = []
    for arm in arms:
        sub = patients[patients[ARM] == arm]
        counts = sub["best_response"].value_counts()
        med, low, high = median_pfs(sub)
        rows.append([arm, str(len(sub)), *[str(counts.get(r, 0)) for r in RESPONSES],
                     _orr_cell(sub["best_response"]),
                     f"{_days(med)} [{_days(low)}, {_days(high)}]"])
    lines += [
        "## Responses per arm",
        "",
        "ORR: objective response rate, CR + PR over all patients of the arm (NE counts as no "
        "response), with its 95% Wilson interval. Median PFS: days from baseline, with its 95% "
        "interval (Kaplan-Meier, lifelines; 'not reached' when fewer than half progress).",
        "",
        _table(["arm", "n", *RESPONSES, "ORR [95% CI]", "median PFS [95% CI]"], rows),
        "",
    ]
    control = reference_arm(arms)
    if control:
        rows = []
        for arm in arms:
            if arm == control:
                continue
            d = paired_difference(patients, arm, control)
            if not d["n"]:  # (a partial cohort: no patient has finished in both arms yet)
                rows.append([f"{arm} - {control}", "0", NOT_AVAILABLE, "0", "0", NOT_AVAILABLE])
                continue
            rows.append([f"{arm} - {control}", str(d["n"]),
                         f"{100 * d['diff']:+.0f} [{100 * d['low']:+.0f}, {100 * d['high']:+.0f}]",
                         str(d["only_treated"]), str(d["only_control"]), f"{d['p']:.3g}"])
        lines += [
            "## Paired difference (the same patients)",
            "",
            "Each patient is its own control: the difference of objective response in points, "
            "with a 95% Wald interval for paired proportions; the discordant patients (respond "
            "in one arm only) and the exact McNemar p-value.",
            "",
            _table(["arms", "patients", "ORR difference [95% CI]", "respond only in treated",
                    f"respond only in {control}", "McNemar p"], rows),
            "",
        ]
    if response.get("stratify"):
        name, bins = response["stratify"], response.get("bins")
        stratum = strata(patients, name, bins)
        order = list(dict.fromkeys(sorted(stratum, key=_stratum_key)))
        rows = [[value, *[_orr_cell(patients.loc[(stratum == value) & (patients[ARM] == arm),
                                                  "best_response"])
                          for arm in arms]]
                for value in order]
        made = len(order)
        how = ("value" if not bins else f"{bins} quantile bins" if made == bins else
               f"{made} quantile bins: {bins} asked for, fewer distinct values")
        lines += [f"## Objective response by `{name}` ({how})", "",
                  _table([name, *arms], rows), ""]
    lines += ["Data: `patients.parquet` (one row per patient and arm), `summary.parquet`, "
              "`runs/*.parquet`.", ""]
    return "\n".join(lines)


def _min_sd(response: dict[str, Any]) -> float:
    from abm.analysis.response import MIN_SD_DAYS

    value = response.get("min_sd_days")
    return MIN_SD_DAYS if value is None else value


def _stratum_key(value: str) -> Any:
    try:
        return (0, float(value.strip("[").split(",")[0]))
    except ValueError:
        return (1, value)


def _days(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "not reached" if math.isinf(value) else f"{value:.3g}"


def write_cohort_report(sweep: Sweep, out: Path) -> Path:
    """A cohort's plots (waterfall, spider, Kaplan-Meier) and ``report.md``."""
    from abm.run import atomic_write_bytes

    patients = cohort_patients(sweep)
    if patients.empty:
        raise ReportError(f"{sweep.dir}: no finished runs of the cohort yet")
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "waterfall.png": plot_waterfall(patients),
        "spider.png": plot_spider(sweep, patients),
        "km.png": plot_km(patients),
    }
    for name, fig in figures.items():
        _save(fig, out / name)
    path = out / "report.md"
    atomic_write_bytes(path, _cohort_markdown(sweep, patients, list(figures)).encode())
    return path


# --- export -----------------------------------------------------------------------------------


EXPORT_ABOUT = "about.json"
# every file ``abm export`` writes (patients.csv for a cohort only), in the order it names them
EXPORT_FILES = ("summary.csv", "timeseries.csv", "patients.csv", EXPORT_ABOUT)
EXPORT_FORMAT = "abm-export/1"


def export_csv(directory: str | Path, *, out: str | Path | None = None) -> list[Path]:
    """``summary.csv`` and ``timeseries.csv`` (every run, in run order), streamed one run at a
    time so memory stays flat; for a cohort also ``patients.csv`` (each patient's response in
    each arm, ``patients.parquet``); then ``about.json`` (``export_about``: how the runs were
    made, read from the sweep's manifest, and whether the sweep was complete). A
    ``patients.csv`` an earlier cohort export left in ``out`` is removed by the export of a
    sweep that is not a cohort. ``summary.csv``
    ends with an ``engine`` column (the same in every row: it tells the rows of a Mesa sweep
    from a fast one's when summaries are put together). All written atomically, ``about.json``
    last, so it is there only once the CSV files beside it are."""
    from abm.run import write_json, write_table

    sweep = Sweep(directory, argument="export_csv: directory")
    out = _out_dir(out, sweep.dir / "export", "export_csv")
    if not sweep.complete:  # as the report says it (a UserWarning: one line from the CLI)
        import warnings

        warnings.warn(f"{sweep.dir}: partial: {len(sweep.summary)} of {sweep.n_runs} runs "
                      "finished so far; the export holds those (rerun the same `abm sweep` "
                      "command to finish the sweep)", PartialSweep, stacklevel=2)
    # what can fail on a broken file is read before anything is written, so a failed export
    # leaves an earlier one in the folder whole, never some of its files replaced
    patients = cohort_patients(sweep) if "patients" in sweep.spec else None
    out.mkdir(parents=True, exist_ok=True)
    summary = sweep.summary.drop(columns=[_class_column(c) for c in OUTCOME_CLASSES])
    if "engine" not in summary.columns:
        summary["engine"] = sweep.engine
    path = out / "timeseries.csv"
    rows = {"summary.csv": len(summary), "timeseries.csv": 0}
    with _atomic_text(path) as fh:
        for i, run_id in enumerate(summary["run_id"]):
            series = csv_ready(_read_run(sweep, run_id))
            series.to_csv(fh, index=False, header=i == 0)
            rows["timeseries.csv"] += len(series)
    write_table(csv_ready(summary), out / "summary.csv")
    written = [out / "summary.csv", path]
    if patients is not None:
        write_table(csv_ready(patients), out / "patients.csv")
        written.append(out / "patients.csv")
        rows["patients.csv"] = len(patients)
    write_json(export_about(sweep, rows), out / EXPORT_ABOUT)
    written.append(out / EXPORT_ABOUT)
    stale = out / "patients.csv"
    if patients is None and stale.is_file():
        stale.unlink()  # an earlier cohort export's: left beside these files, it would pass
        # for this sweep's patients
    return written


# what each exported CSV file holds, for about.json
_EXPORT_HOLDS = {
    "summary.csv": "one row per run: run_id, point_id, replicate, seed, the varied parameters, "
                   "the outcome measures and class (docs/sweeps.md), and the engine",
    "timeseries.csv": "every run's time series, one row per recorded step, in run order, with "
                      "the run's ids and varied parameters (joins summary.csv on run_id)",
    "patients.csv": "a cohort's patients: one row per patient and arm with the best response, "
                    "best % change, progression-free days and the drawn parameters",
}


def export_about(sweep: Sweep, rows: dict[str, int]) -> dict[str, Any]:
    """``about.json`` of an export: how the sweep's runs were made, all read from its manifest
    (engine, spec, model and package versions, git commit, model-code hash; never this
    machine's), whether the sweep was complete, and what each file holds (``rows``: file name
    -> number of data rows). The export's own time and abm version are under ``exported``."""
    from datetime import UTC, datetime

    from abm import __version__

    manifest = sweep.manifest
    table = sweep.spec["sweep"]
    done = len(sweep.summary)
    listed = table.get("seeds")
    partial = None if sweep.complete else (
        f"{done} of {sweep.n_runs} runs had finished when this was exported, and the CSV "
        "files hold those; rerun the same `abm sweep` command to finish the sweep, then "
        "export again")
    return {
        "about": (f"CSV export of the abm sweep {table['name']!r}: how its runs were made, from "
                  "the sweep's manifest.json (provenance: the model and package versions and "
                  "git commit it was started with; completed_with: those that finished it), and "
                  "what each file holds. Columns: docs/sweeps.md."),
        "format": EXPORT_FORMAT,
        "sweep": table["name"],
        "description": table.get("description") or "",
        "complete": sweep.complete,
        "partial": partial,
        "runs_exported": done,
        "runs_in_sweep": sweep.n_runs,
        "engine": sweep.engine,
        "scenario": table.get("scenario"),
        "species": table.get("species"),
        "days": table["steps"] / 24,
        "steps": table["steps"],
        "record_every": table["record_every"],
        "replicates": table["replicates"],
        "seed": None if listed else table.get("seed"),
        "seeds": listed,
        "points": manifest.get("n_points", len(sweep.points)),
        "varied": sweep.varied,
        "files": {name: {"rows": n, "holds": _EXPORT_HOLDS[name]} for name, n in rows.items()},
        "provenance": manifest.get("provenance"),
        "completed_with": manifest.get("completed_with") if sweep.complete else None,
        "started": manifest.get("created"),
        "finished": manifest.get("completed") if sweep.complete else None,
        "spec_hash": manifest.get("spec_hash"),
        "content_hash": manifest.get("content_hash"),
        "exported": {"at": datetime.now(UTC).isoformat(timespec="seconds"),
                     "abm_version": __version__, "from": str(sweep.dir.resolve())},
        "spec": sweep.spec,
        "spec_text": manifest.get("spec_text"),
        "base_parameters": manifest.get("base_parameters"),
    }


class _atomic_text:  # noqa: N801 - used as a context manager
    """A text file that appears at ``path`` only when complete (streamed variant of
    ``abm.run.atomic_write_bytes``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Any:
        fd, self.tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        self.fh = os.fdopen(fd, "w", newline="")
        return self.fh

    def __exit__(self, exc_type: Any, exc: BaseException | None, *rest: Any) -> None:
        # as atomic_write_bytes: the temporary file goes whatever fails (the usual place for a
        # full disk is the flush, after the block), and an OSError without a file name (write,
        # flush, fsync) gets the target's, so the message says which file could not be written
        try:
            if exc_type is None:
                from abm.run import current_umask

                self.fh.flush()
                os.fsync(self.fh.fileno())
                self.fh.close()
                os.chmod(self.tmp, 0o666 & ~current_umask())
                os.replace(self.tmp, self.path)
        except BaseException as err:
            self._discard()
            _name(err, self.path)
            raise
        if exc_type is not None:
            self._discard()
            _name(exc, self.path)

    def _discard(self) -> None:
        try:
            self.fh.close()  # (flushes the buffer: may fail again on a full disk)
        except OSError:
            pass
        Path(self.tmp).unlink(missing_ok=True)


def _name(err: BaseException | None, path: Path) -> None:
    """Give an ``OSError`` without a file name the file it was writing."""
    if isinstance(err, OSError) and err.filename is None:
        err.filename = str(path)


def iter_runs(directory: str | Path) -> Iterator[pd.DataFrame]:
    """Each finished run's time series in run order (one in memory at a time)."""
    sweep = Sweep(directory, argument="iter_runs: directory")
    for run_id in sweep.summary["run_id"]:
        yield _read_run(sweep, run_id)
