"""The pieces every report reads and writes with: a sweep directory read back (``Sweep``),
the report's errors, and the shared figure, file and Markdown helpers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from abm.analysis.outcomes import OUTCOMES
from abm.params import did_you_mean
from abm.sweep import (
    ARM,
    ID_COLUMNS,
    SweepError,
    load_sweep,
    read_run_table,
    run_path,
)
from abm.sweep.storage import opened, read_run_arrow

OUTCOME_CLASSES = OUTCOMES  # the classes of abm.analysis.outcomes, in plotting order
CLASS_COLOURS = {"eliminated": "#1b9e77", "controlled": "#7570b3", "escape": "#d95f02"}


class ReportError(ValueError):
    """A report that cannot be made (not a sweep directory, unknown outcome column, ...)."""


class PartialSweep(UserWarning):
    """A report or export of a sweep that is not finished: it holds the runs done so far."""


def warn_partial(sweep: Sweep, what: str) -> None:
    """One ``PartialSweep`` warning (one line from the CLI) when ``sweep`` is unfinished:
    ``what`` (``the report``, ``the export``) holds the runs done so far."""
    if not sweep.complete:
        import warnings

        warnings.warn(f"{sweep.dir}: partial: {len(sweep.summary)} of {sweep.n_runs} runs "
                      f"finished so far; {what} holds those (rerun the same `abm sweep` "
                      "command to finish the sweep)", PartialSweep, stacklevel=3)


# keys of a manifest's spec that the report reads (besides factors, sample and arms)
SPEC_KEYS_READ = (("sweep", "name"), ("sweep", "steps"), ("sweep", "record_every"),
                  ("outcome", "escape_multiple"), ("outcome", "escape_fraction"))


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
        raise ReportError(f"--outcome {outcome!r}: not a numeric summary column of this sweep"
                          f"{did_you_mean(outcome, options)} (expected one of "
                          f"{', '.join(options)})")


def series_columns(sweep: Sweep) -> list[str]:
    """The time-series columns that can be plotted: the numeric model columns of the run files
    (not ids, varied parameters, Step or Day). Read from the first run's schema only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = run_path(sweep.dir, sweep.summary["run_id"].iloc[0])
    try:
        with opened(path) as fh:
            schema = pq.read_schema(fh)
    except (OSError, pa.ArrowException) as err:
        raise ReportError(str(_broken(path, err))) from None
    except SweepError as err:  # (unreadable)
        raise ReportError(str(err)) from None
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
        raise ReportError(f"--series {series!r}: not a time-series column of this sweep"
                          f"{did_you_mean(series, options)} (expected one of "
                          f"{', '.join(options)})")


def _broken(path: Path, err: BaseException) -> SweepError:
    from abm.sweep.storage import broken

    return broken(path, err)


def _read_run(sweep: Sweep, run_id: str, columns: list[str] | None = None,
              arrow: bool = False) -> Any:
    """A run's time series as a DataFrame (``arrow``: as an Arrow table, faster to read and to
    take arrays from); a broken file is a ``ReportError`` naming it."""
    read = read_run_arrow if arrow else read_run_table
    try:
        return read(run_path(sweep.dir, run_id), columns, run_id=run_id)
    except SweepError as err:
        raise ReportError(str(err)) from None


def outside_runs(sweep: Sweep, out: Path, named: str) -> Path:
    """``out``, refused (``ReportError`` starting with ``named``, e.g. ``--out``) inside the
    sweep's ``runs`` folder: other files there would break ``pd.read_parquet(DIR / "runs")``."""
    runs = (sweep.dir / "runs").resolve()
    where = Path(out).resolve()
    if where == runs or runs in where.parents:
        raise ReportError(f"{named} {out}: inside the sweep's runs folder, which holds only "
                          "run files; give another folder")
    return out


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


def _png(fig: Any) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


REPORT_HEADINGS = ("# Sweep report: ", "# Cohort report: ")  # report.md's first line


def check_report_dir(sweep: Sweep, out: Path, figures: tuple[str, ...]) -> None:
    """Before any plot is drawn: refuse (``ReportError``) an ``out`` other than the sweep's own
    ``report`` folder that holds files of the report's names (``figures`` and ``report.md``)
    which an earlier report did not write (its ``report.md`` starts with a report's
    heading): a user's own ``report.md`` would be replaced."""
    there = [n for n in (*figures, "report.md") if (out / n).exists()]
    if there and not _is_report(out / "report.md") and not _own(sweep, out, "report"):
        raise ReportError(
            f"{out}: holds {', '.join(there)}, not written by abm report (no report.md of a "
            "report beside them), which the report would replace: write it into another "
            "folder, or move them away")


def write_report_files(out: Path, figures: dict[str, Any], text: str) -> Path:
    """A report's figures (PNG) and ``report.md``, replaced together: each written whole
    beside its place, then all renamed, so a failure (a full disk) leaves an earlier report
    as it was (the folder checked before by ``check_report_dir``)."""
    from abm.run import AtomicFiles

    out.mkdir(parents=True, exist_ok=True)
    with AtomicFiles() as files:
        for name, fig in figures.items():
            files.write(out / name, _png(fig))
        files.write(out / "report.md", text.encode())
    return out / "report.md"


def _own(sweep: Sweep, out: Path, name: str) -> bool:
    """Whether ``out`` is the sweep's own folder ``name`` (``report``, ``export``), where
    nobody else's files are."""
    return Path(out).resolve() == (sweep.dir / name).resolve()


def _is_report(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().startswith(REPORT_HEADINGS)
    except (OSError, ValueError):
        return False


def _figure(n_panels: int = 1, width: float = 5.0, height: float = 3.8) -> tuple[Any, list]:
    from matplotlib.figure import Figure

    cols = min(n_panels, 3)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


NOT_AVAILABLE = "–"  # a table cell without a value (no SD from one value, no mean from none)


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


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
