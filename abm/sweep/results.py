"""A sweep directory read back for analysis (``load_sweep``): the manifest, the summary and,
per finished run, its ids, varied values, time series and probe results, read on demand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from abm.sweep.spec import ARM, PATIENT
from abm.sweep.storage import (
    build_summary,
    read_manifest,
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

    def series(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The run's time series (with its id and varied-parameter columns)."""
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
    run, in run-list order. ``SweepError`` if it is not a sweep directory."""
    out = Path(out)
    manifest = read_manifest(out)
    runs = [
        RunRecord(
            r["run_id"], r["point_id"], r["replicate"], r["seed"], r["parameters"],
            run_path(out, r["run_id"]),
        )
        for r in manifest["runs"]
    ]
    done = [r for r in runs if r.path.exists()]
    path = out / "summary.parquet"
    if len(done) == len(runs) and path.exists():
        try:
            summary = pd.read_parquet(path)
        except (OSError, ValueError):  # broken (ArrowInvalid is a ValueError): the run files
            summary = build_summary(out, [r.run_id for r in done])
    else:
        summary = build_summary(out, [r.run_id for r in done])
    return SweepData(out, manifest, summary, done)


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
        names = pq.read_schema(record.path).names
        series = record.series(["Day", "CancerCells", *([NECROTIC] if NECROTIC in names else [])])
        row = {PATIENT: record.varied[PATIENT], ARM: record.arm or "all"}
        row.update(assess(series, baseline, end_day, min_sd))
        row.update({name: record.varied[name] for name in drawn})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*PATIENT_COLUMNS, *drawn])
