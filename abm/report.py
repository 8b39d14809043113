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

from abm.sweep import ARM, ID_COLUMNS, SweepError, load_sweep, read_run_table, run_path

OUTCOME_CLASSES = ("eliminated", "controlled", "escape")
CLASS_COLOURS = {"eliminated": "#1b9e77", "controlled": "#7570b3", "escape": "#d95f02"}
MAX_TABLE_POINTS = 100
MAX_LINES = 12


class ReportError(ValueError):
    """A report that cannot be made (not a sweep directory, unknown outcome column, ...)."""


# --- loading ----------------------------------------------------------------------------------


class Sweep:
    """A sweep directory read back: manifest, summary (one row per run) and point table."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        try:
            data = load_sweep(self.dir)
        except (SweepError, ValueError) as err:
            raise ReportError(str(err)) from None
        if not data.runs:
            raise ReportError(f"{self.dir}: no finished runs yet (run `abm sweep` first)")
        self.manifest = data.manifest
        self.spec = self.manifest["spec"]
        self.varied: list[str] = self.manifest["varied"]
        # arms are a categorical factor (slowest in the point order, like the first factor)
        arms = [name for name, _ in self.spec.get("arms", [])]
        self.factors: dict[str, list[Any]] = {ARM: arms} if arms else {}
        self.factors.update(dict(self.spec["factors"]))
        self.sample = self.spec["sample"]
        self.sampled: list[str] = [name for name, _ in self.sample["bounds"]] if self.sample else []
        runs = self.manifest["runs"]
        self.points = {r["point_id"]: r["parameters"] for r in runs}
        self.complete = data.complete
        summary = data.summary.copy()
        for name in OUTCOME_CLASSES:
            summary[_class_column(name)] = (summary["outcome"] == name).astype(float)
        self.summary = summary
        self.n_runs = len(runs)

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
        raise ReportError(f"--outcome {outcome!r}: expected one of {', '.join(options)}")


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
        raise ReportError(f"--series {series!r}: expected one of {', '.join(options)}")


def _broken(path: Path, err: BaseException) -> SweepError:
    from abm.sweep.storage import broken

    return broken(path, err)


def _read_run(sweep: Sweep, run_id: str, columns: list[str] | None = None) -> pd.DataFrame:
    try:
        return read_run_table(run_path(sweep.dir, run_id), columns)
    except SweepError as err:
        raise ReportError(str(err)) from None


def csv_ready(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` for a CSV file without float32 noise: a float that is a float32 value printed in
    float64 (``0.05000000074505806``, from the model's float32 arrays) is written as the
    7-significant-digit number it stands for (``0.05``). A value is rounded only when that
    leaves its float32 value unchanged, so large or exact numbers keep every digit."""
    out = df.copy()
    for column in out.columns:
        values = out[column]
        if not pd.api.types.is_float_dtype(values):
            continue
        raw = values.to_numpy(dtype=float)
        rounded = np.array([float(f"{v:.7g}") for v in raw])
        with np.errstate(over="ignore", invalid="ignore"):
            same = rounded.astype(np.float32) == raw.astype(np.float32)
        out[column] = np.where(same, rounded, raw)
    return out


# --- the report -------------------------------------------------------------------------------


def write_report(
    directory: str | Path,
    *,
    outcome: str = "final_burden",
    series: str = "CancerCells",
    out: str | Path | None = None,
) -> Path:
    """Write the plots and ``report.md`` for a sweep; return the path of ``report.md``."""
    from abm.run import atomic_write_bytes

    sweep = Sweep(directory)
    check_choices(sweep, outcome=outcome, series=series)
    out = Path(out) if out is not None else sweep.dir / "report"
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
    """Mean, SD, and count of ``column`` over the replicates of each point."""
    grouped = sweep.summary.groupby("point_id")[column]
    table = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n": grouped.count()})
    return table.fillna({"sd": 0.0})


def plot_outcome_by_parameter(sweep: Sweep, outcome: str) -> Any:
    s = sweep.summary
    factors = list(sweep.factors)
    if not sweep.varied:
        fig, (ax,) = _figure()
        ax.hist(s[outcome].dropna(), bins=20, color="#7570b3")
        ax.set(xlabel=outcome, ylabel="runs", title=f"{outcome} over {len(s)} runs")
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
    """Mean +/- SD of the outcome at each level of one factor; dots are single runs."""
    s = sweep.summary
    levels = sweep.factors[name]
    key = s[name].map(_fmt)
    xs = np.arange(len(levels))
    means, sds = [], []
    rng = np.random.default_rng(0)  # jitter only
    for x, level in zip(xs, levels, strict=True):
        values = s.loc[key == _fmt(level), outcome].dropna().to_numpy()
        means.append(values.mean() if values.size else np.nan)
        sds.append(values.std(ddof=1) if values.size > 1 else 0.0)
        ax.scatter(
            x + rng.uniform(-0.08, 0.08, values.size), values, s=8, alpha=0.35, color="#555555"
        )
    means, sds = np.array(means), np.array(sds)
    ax.plot(xs, means, "-o", color="#d95f02", label="mean")
    ax.fill_between(xs, means - sds, means + sds, color="#d95f02", alpha=0.2, label="mean ± SD")
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
            if np.isfinite(grid[i, j]):
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:.3g}",
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
    except (KeyError, ValueError) as err:
        raise ReportError(f"--series {series!r}: not a time-series column ({err})") from None
    days = table.columns.to_numpy(dtype=float)
    point_of = sweep.summary.set_index("run_id")["point_id"]
    points = sorted(point_of.unique())
    fig, (ax,) = _figure(width=8, height=4.8)
    if len(points) <= MAX_LINES:
        colours = _colours(len(points))
        for colour, pid in zip(colours, points, strict=True):
            rows = table.loc[point_of.index[point_of == pid]]
            mean, sd = rows.mean(), rows.std(ddof=1).fillna(0)
            ax.plot(days, mean, color=colour, label=sweep.label(pid))
            ax.fill_between(days, mean - sd, mean + sd, color=colour, alpha=0.15)
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
    per combination of the factors (just one without ``[factors]``)."""
    from SALib.analyze import sobol

    from abm.sweep import Sample, salib_problem

    bounds = {name: tuple(b) for name, b in sweep.sample["bounds"]}
    problem = salib_problem(Sample("sobol", sweep.sample["n"], sweep.sample["seed"], bounds))
    means = per_point(sweep, outcome)["mean"]
    n_sample = sweep.sample["n"] * (len(bounds) + 2)
    n_points = len(sweep.points)
    if len(means) != n_points:
        raise ReportError(
            f"Sobol indices need every point; {n_points - len(means)} points have no finished "
            "run yet (finish the sweep first)"
        )
    results = []
    for start in range(0, n_points, n_sample):
        y = means.loc[start : start + n_sample - 1].to_numpy(dtype=float)
        label = sweep.label(start, list(sweep.factors)) if sweep.factors else "all"
        if not np.isfinite(y).all():
            raise ReportError(
                f"--outcome {outcome!r} is missing for {int((~np.isfinite(y)).sum())} points "
                f"({label}); Sobol indices need a value at every point: choose another outcome"
            )
        if np.ptp(y) == 0:
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
                }
            )
    return results


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
        ax.axhline(0, color="black", lw=0.5)
        ax.set(ylabel="Sobol index", title=f"{outcome}" + ("" if group == "all" else f"\n{group}"))
        ax.legend(fontsize="small")
    return fig


# --- Markdown ---------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


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
        f"({spec['steps'] / 24:g} days) per run, rows every {spec['record_every']} steps",
        f"- {len(sweep.points)} points x {spec['replicates']} replicates = {sweep.n_runs} runs "
        f"({seeds}; replicate k has the same seed at every point)",
        f"- varied: {', '.join(f'`{v}`' for v in sweep.varied) or 'nothing (replicates only)'}",
        "- outcomes: " + ", ".join(f"{c} {counts.get(c, 0)}" for c in OUTCOME_CLASSES),
        f"- abm {prov.get('abm')}, mesa {prov.get('mesa')}, git {prov.get('git_commit')}",
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
                f"{stats.loc[pid, 'mean']:.4g} ± {stats.loc[pid, 'sd']:.3g}",
                str(stats.loc[pid, "n"]),
                *[f"{classes.loc[pid, _class_column(c)]:.2f}" for c in OUTCOME_CLASSES],
            ]
        )
    lines += [f"## {outcome} by point", "", _table(header, rows), ""]
    if len(stats) > MAX_TABLE_POINTS:
        lines += [f"(first {MAX_TABLE_POINTS} of {len(stats)} points; all in summary.parquet)", ""]
    if sobol:
        lines += [
            f"## Sobol indices of {outcome}",
            "",
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
                    for r in sobol
                ],
            ),
            "",
        ]
    lines += [
        f"Time series plotted: `{series}`. Data: `summary.parquet` (one row per run), "
        "`runs/*.parquet` (time series); `abm export DIR` (CSV) for spreadsheets.",
        "",
    ]
    return "\n".join(lines)


# --- export -----------------------------------------------------------------------------------


def export_csv(directory: str | Path, *, out: str | Path | None = None) -> list[Path]:
    """``summary.csv`` and ``timeseries.csv`` (every run, in run order), streamed one run at a
    time so memory stays flat; both written atomically."""
    from abm.run import write_table

    sweep = Sweep(directory)
    out = Path(out) if out is not None else sweep.dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    summary = sweep.summary.drop(columns=[_class_column(c) for c in OUTCOME_CLASSES])
    path = out / "timeseries.csv"
    with _atomic_text(path) as fh:
        for i, run_id in enumerate(summary["run_id"]):
            csv_ready(_read_run(sweep, run_id)).to_csv(fh, index=False, header=i == 0)
    write_table(csv_ready(summary), out / "summary.csv")
    return [out / "summary.csv", path]


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

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            from abm.run import current_umask

            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.chmod(self.tmp, 0o666 & ~current_umask())  # as atomic_write_bytes
            os.replace(self.tmp, self.path)
        else:
            self.fh.close()
            Path(self.tmp).unlink(missing_ok=True)


def iter_runs(directory: str | Path) -> Iterator[pd.DataFrame]:
    """Each finished run's time series in run order (one in memory at a time)."""
    sweep = Sweep(directory)
    for run_id in sweep.summary["run_id"]:
        yield _read_run(sweep, run_id)
