"""A sweep directory read back for analysis (``load_sweep``): the manifest, the summary and,
per finished run, its ids, varied values, time series and probe results, read on demand."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from abm.sweep.spec import ARM, PATIENT
from abm.sweep.storage import (
    ID_COLUMNS,
    SweepError,
    build_summary,
    opened,
    read_manifest,
    read_parquet,
    read_run_probes,
    read_run_table,
    run_path,
)


@dataclass(frozen=True)
class RunRecord:
    """One finished run of a sweep directory. The time series and the probe results are read
    from the run's file on demand (a sweep may hold thousands)."""

    run_id: str
    point_id: int
    replicate: int
    seed: int
    varied: dict[str, Any]  # the point's varied values (``arm`` first when there are arms)
    path: Path

    @property
    def arm(self) -> str | None:
        return self.varied.get(ARM)

    def series(self, columns: list[str] | str | None = None) -> pd.DataFrame:
        """The run's time series (with its id and varied-parameter columns); ``columns``: the
        columns to read, a list or one name."""
        if isinstance(columns, str):
            columns = [columns]  # (not read as a list of one-letter names)
        return read_run_table(self.path, columns, run_id=self.run_id)

    def probes(self) -> dict[str, Any]:
        """``{probe name: result}`` (``read_run_probes``)."""
        return read_run_probes(self.path, self.run_id)


@dataclass(frozen=True)
class SweepData:
    """A sweep directory read back: its manifest, its summary (one row per finished run, in
    run-list order) and its finished runs."""

    dir: Path
    manifest: dict[str, Any]
    summary: pd.DataFrame
    runs: list[RunRecord]

    @property
    def spec(self) -> dict[str, Any]:
        """The normalised spec (``Spec.normalised``)."""
        return self.manifest["spec"]

    @property
    def varied(self) -> list[str]:
        return self.manifest["varied"]

    @property
    def complete(self) -> bool:
        return len(self.runs) == self.manifest["n_runs"]

    def run(self, run_id: str) -> RunRecord:
        for record in self.runs:
            if record.run_id == run_id:
                return record
        raise KeyError(f"{self.dir}: no finished run {run_id!r}")

    def probes(self, name: str) -> dict[str, Any]:
        """One probe's result for every finished run: ``{run_id: result}`` (``None`` for a run
        without a result of it). ``ValueError`` for a probe the sweep did not record
        (``[probes.NAME]`` in its spec)."""
        recorded = list(self.spec.get("probes") or {})
        if name not in recorded:
            from abm.params import did_you_mean

            what = (f"its probes: {', '.join(recorded)}" if recorded else
                    "it recorded none: a probe is a [probes.NAME] table of the spec")
            raise ValueError(f"{self.dir}: no probe {name!r} in this sweep"
                             f"{did_you_mean(name, recorded)} ({what})")
        return {r.run_id: r.probes().get(name) for r in self.runs}


def load_sweep(out: str | Path) -> SweepData:
    """Read a sweep directory, finished or not: the manifest, the summary (``summary.parquet``
    when complete, else rebuilt from the finished runs' files) and a ``RunRecord`` per finished
    run, in run-list order. A sweep with no finished run yet gives a summary with the usual
    columns and no rows. ``SweepError`` if it is not a sweep directory (or its manifest is not
    an abm sweep's); ``TypeError`` if ``out`` is not a path."""
    out = sweep_path(out, "load_sweep: out")
    _not_a_sweep_hint(out)
    manifest = read_manifest(out)
    problem = _run_list_problem(manifest)
    if problem:
        raise SweepError(f"{out / 'manifest.json'}: not an abm sweep manifest ({problem}; "
                         "another program's file, or edited by hand?)")
    runs = [
        RunRecord(
            r["run_id"], r["point_id"], r["replicate"], r["seed"], r["parameters"],
            run_path(out, r["run_id"]),
        )
        for r in manifest["runs"]
    ]
    done = [r for r in runs if r.path.exists()]
    path = out / "summary.parquet"
    if not done:
        summary = empty_summary(manifest)
    elif len(done) == len(runs) and path.exists():
        try:
            summary = read_parquet(path)
        except (OSError, ValueError):  # broken (ArrowInvalid is a ValueError): the run files
            summary = build_summary(out, [r.run_id for r in done])
    else:
        summary = build_summary(out, [r.run_id for r in done])
    return SweepData(out, manifest, summary, done)


def checked_path(value: Any, argument: str, kind: str, hint: str) -> Path:
    """``value`` as a path, for a function's ``argument`` (named in the message, e.g.
    ``"load_sweep: out"``): ``TypeError`` ("must be ``kind``") for anything but a ``str`` or a
    path, ``SweepError`` (ending with ``hint``) for an empty string, which ``Path`` would make
    the current folder."""
    from abm.sweep.schema import show

    if not isinstance(value, str | os.PathLike) or isinstance(os.fspath(value), bytes):
        raise TypeError(f"{argument} must be {kind}, got {show(value)}")
    if os.fspath(value) == "":
        raise SweepError(f'{argument} "": an empty path; {hint}')
    return Path(value)


def sweep_path(value: Any, argument: str) -> Path:
    """``value`` as the path of a sweep directory (``checked_path``)."""
    return checked_path(value, argument,
                        "the path of a sweep directory (str or Path, e.g. 'sweeps/checkpoint')",
                        "give the sweep directory made by `abm sweep` ('.' for the current "
                        "folder)")


def _not_a_sweep_hint(out: Path) -> None:
    """``SweepError`` with a hint for a path that is not a sweep directory but is close to one:
    a sweep's spec file (not yet run), a folder inside a sweep directory (``runs``,
    ``report``, ``export``), or run files without their manifest. Anything else is left to
    ``read_manifest``."""
    if out.is_file() and out.suffix.lower() == ".toml":
        raise SweepError(f"{out}: is a file (a sweep spec?), not a sweep directory; run the "
                         "sweep first (abm sweep, or run_sweep from Python), then give the sweep "
                         "directory it writes")
    if not out.is_dir() or (out / "manifest.json").exists():
        return
    if (out.parent / "manifest.json").is_file():
        raise SweepError(f"{out}: not a sweep directory (no manifest.json); it is inside the "
                         f"sweep directory {out.parent}: give that one")
    runs = out / "runs"
    n = sum(1 for _ in runs.glob("*.parquet")) if runs.is_dir() else 0
    if n:
        raise SweepError(f"{out}: not a sweep directory (no manifest.json), though runs/ holds "
                         f"{n} run file{'s' if n != 1 else ''}: without the manifest they cannot "
                         "be read back as a sweep; each is a whole Parquet file (time series, "
                         "summary row and seed) that pandas.read_parquet reads")


RUN_ID = re.compile(r"p\d{5,}-r\d{3,}")  # abm.sweep.expansion's run ids


def _run_list_problem(manifest: dict[str, Any]) -> str | None:
    """Why the manifest's run list cannot be read back (``None`` if it can): one clause.
    (``storage.manifest_problem`` checked its top-level keys and types.)"""
    runs, varied = manifest["runs"], manifest["varied"]
    if not runs:
        return 'its run list "runs" is empty'
    if len(runs) != manifest["n_runs"]:
        return f'"n_runs" is {manifest["n_runs"]} but "runs" lists {len(runs)}'
    for i, run in enumerate(runs):
        ok = (
            isinstance(run, dict)
            and isinstance(run.get("run_id"), str) and RUN_ID.fullmatch(run["run_id"])
            and all(isinstance(run.get(k), int) and not isinstance(run.get(k), bool)
                    for k in ("point_id", "replicate", "seed"))
            and isinstance(run.get("parameters"), dict)
            and all(name in run["parameters"] for name in varied)
        )
        if not ok:
            return (f"runs[{i}] is not a run: expected run_id (p<point>-r<replicate>), "
                    "point_id, replicate, seed and the varied parameters")
    return None


def empty_summary(manifest: dict[str, Any]) -> pd.DataFrame:
    """The summary of a sweep with no finished run: the columns (and types) a finished run's
    row has (ids, varied parameters, ``abm.analysis.outcomes.summarise``'s measures), no
    rows."""
    from abm.analysis.outcomes import SUMMARY_COLUMNS, summarise

    first = manifest["runs"][0]["parameters"]
    row: dict[str, Any] = dict(zip(ID_COLUMNS, ["", 0, 0, 0], strict=True))
    row.update({name: math.nan if first[name] is None else first[name]
                for name in manifest["varied"]})
    row.update(summarise(pd.DataFrame({c: [0] for c in SUMMARY_COLUMNS}), sites=1))
    return pd.DataFrame([row]).iloc[:0].reset_index(drop=True)


PATIENT_COLUMNS = [PATIENT, ARM, "best_response", "best_change_pct", "pfs_days", "progressed"]


def patients_table(data: SweepData) -> pd.DataFrame:
    """A cohort's ``patients.parquet``: one row per finished run (patient and arm), with the
    response by ``abm.analysis.response.assess`` and the patient's sampled parameters. Empty
    (no rows) for a sweep without ``[patients]``."""
    import pyarrow.parquet as pq

    from abm.analysis.response import MIN_SD_DAYS, NECROTIC, assess

    spec = data.spec
    if "patients" not in spec:
        return pd.DataFrame(columns=PATIENT_COLUMNS)
    response = spec.get("response") or {}
    baseline = response.get("baseline_day", 0.0)
    min_sd = response.get("min_sd_days")
    min_sd = MIN_SD_DAYS if min_sd is None else min_sd
    end_day = spec["sweep"]["steps"] / 24
    drawn = [name for name, _, _ in spec["patients"]["draws"]]
    rows = []
    for record in data.runs:
        with opened(record.path) as fh:
            names = pq.read_schema(fh).names
        series = record.series(["Day", "CancerCells", *([NECROTIC] if NECROTIC in names else [])])
        row = {PATIENT: record.varied[PATIENT], ARM: record.arm or "all"}
        row.update(assess(series, baseline, end_day, min_sd))
        row.update({name: record.varied[name] for name in drawn})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*PATIENT_COLUMNS, *drawn])
