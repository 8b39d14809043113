"""The CSV export of a sweep (``export_csv``: ``summary.csv``, ``timeseries.csv``, a cohort's
``patients.csv`` and ``about.json``) and ``iter_runs``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.report.base import (
    OUTCOME_CLASSES,
    ReportError,
    Sweep,
    _class_column,
    _out_dir,
    _own,
    _read_run,
    outside_runs,
    warn_partial,
)
from abm.report.cohort import cohort_patients


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
    from a fast one's when summaries are put together). The files are replaced together (each
    written whole, then all renamed, ``about.json`` last), so a failed export leaves an
    earlier one as it was; into a folder other than the sweep's own ``export``, only an
    earlier export's files are replaced (``check_export_dir``)."""
    from abm.run import AtomicFiles, json_bytes, table_bytes

    sweep = Sweep(directory, argument="export_csv: directory")
    out = outside_runs(sweep, _out_dir(out, sweep.dir / "export", "export_csv"),
                       "export_csv: out")
    if not _own(sweep, out, "export"):
        check_export_dir(out)
    warn_partial(sweep, "the export")  # (a UserWarning: one line from the CLI)
    # what can fail on a broken file is read before anything is written, so a failed export
    # leaves an earlier one in the folder whole, never some of its files replaced
    patients = cohort_patients(sweep) if "patients" in sweep.spec else None
    out.mkdir(parents=True, exist_ok=True)
    summary = sweep.summary.drop(columns=[_class_column(c) for c in OUTCOME_CLASSES])
    if "engine" not in summary.columns:
        summary["engine"] = sweep.engine
    path = out / "timeseries.csv"
    rows = {"summary.csv": len(summary), "timeseries.csv": 0}
    # every file written whole beside its place first, then all renamed: a failure anywhere
    # (a full disk, a broken run file) leaves an earlier export as it was, never half replaced
    with AtomicFiles() as files:
        with files.open_text(path) as fh:
            for i, series in enumerate(_series_batches(sweep, summary["run_id"])):
                csv_ready(series).to_csv(fh, index=False, header=i == 0)
                rows["timeseries.csv"] += len(series)
        files.write(out / "summary.csv", table_bytes(csv_ready(summary), out / "summary.csv"))
        written = [out / "summary.csv", path]
        if patients is not None:
            files.write(out / "patients.csv",
                        table_bytes(csv_ready(patients), out / "patients.csv"))
            written.append(out / "patients.csv")
            rows["patients.csv"] = len(patients)
        files.write(out / EXPORT_ABOUT, json_bytes(export_about(sweep, rows)))
        written.append(out / EXPORT_ABOUT)
    stale = out / "patients.csv"
    if patients is None and stale.is_file():
        stale.unlink()  # an earlier cohort export's: left beside these files, it would pass
        # for this sweep's patients
    return written


# rows of time series formatted as one table: pandas' per-table costs (a CSV writer, a column
# set per float column) paid once per batch, not once per run (12,288 runs of 31 rows: about
# 200 batches), with memory still flat in the number of runs (a few MB per batch)
EXPORT_BATCH_ROWS = 2000


def _series_batches(sweep: Sweep, run_ids: Any) -> Iterator[pd.DataFrame]:
    """The runs' time series in run order, consecutive runs joined into tables of about
    ``EXPORT_BATCH_ROWS`` rows. Runs are joined only while their columns and types are the
    same, so each batch is what the runs' own tables would give one after the other."""
    import pyarrow as pa

    batch: list[Any] = []
    n_rows = 0
    for run_id in run_ids:
        table = _read_run(sweep, run_id, arrow=True).replace_schema_metadata(None)
        if batch and (n_rows >= EXPORT_BATCH_ROWS or table.schema != batch[0].schema):
            yield pa.concat_tables(batch).to_pandas(use_threads=False)
            batch, n_rows = [], 0
        batch.append(table)
        n_rows += table.num_rows
    if batch:
        yield pa.concat_tables(batch).to_pandas(use_threads=False)


def check_export_dir(out: Path) -> None:
    """Refuse to write into a folder whose files of an export's names are not an earlier
    export's (its ``about.json`` says ``abm-export/``): a user's own ``summary.csv`` or
    ``patients.csv`` there would be replaced, or removed. ``ReportError`` naming them."""
    import json

    if not out.is_dir():
        return
    ours = [n for n in EXPORT_FILES if (out / n).exists()]
    if not ours:
        return
    try:
        about = json.loads((out / EXPORT_ABOUT).read_text(encoding="utf-8"))
        if isinstance(about, dict) and str(about.get("format", "")).startswith("abm-export/"):
            return
    except (OSError, ValueError):
        pass
    raise ReportError(
        f"{out}: holds {', '.join(ours)}, not written by abm export (no export's "
        f"{EXPORT_ABOUT} beside {'them' if len(ours) > 1 else 'it'}), which the export would "
        "replace: export into another folder, or move them away")


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


def iter_runs(directory: str | Path) -> Iterator[pd.DataFrame]:
    """Each finished run's time series in run order (one in memory at a time)."""
    sweep = Sweep(directory, argument="iter_runs: directory")
    for run_id in sweep.summary["run_id"]:
        yield _read_run(sweep, run_id)
