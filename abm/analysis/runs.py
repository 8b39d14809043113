"""A sweep directory's runs as the analyses use them: grouped by point (arm and factor values),
each group in seed order, so groups of different points pair up by seed.

    from abm.sweep import load_sweep
    groups = by_point(load_sweep("sweeps/fact7"))
    benefit = relative_benefits(finals(groups[(10.0, None)]), finals(groups[(None, None)]))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd


@dataclass
class Run:
    """One finished run: its seed, varied values, summary row (``abm.analysis.outcomes.
    summarise``), and, read from its file when first used, its time series and probe results."""

    seed: int
    varied: dict[str, Any]
    summary: dict[str, Any]
    record: Any = field(repr=False)  # abm.sweep.RunRecord: where the file is

    @cached_property
    def df(self) -> pd.DataFrame:
        """The time series (rows every ``record_every`` steps, and the last)."""
        return self.record.series()

    @cached_property
    def probes(self) -> dict[str, Any]:
        """``{probe name: result}`` (``abm.analysis.probes``)."""
        return self.record.probes()

    @property
    def n_cancer(self) -> int:
        """Cancer cells at the end of the run."""
        return int(self.summary["final_burden"])

    @property
    def n0(self) -> int:
        """Cancer cells at the start."""
        return int(self.summary["initial_burden"])

    def final(self, column: str) -> float:
        """A reporter's last value; for a mean over the cancer cells
        (``abm.model.MEANS_OVER_CANCER_CELLS``) NaN when no cancer cell is left (runs recorded
        before those were NaN in the time series hold 0 there). Counts keep their value."""
        from abm.model import MEANS_OVER_CANCER_CELLS

        if column in MEANS_OVER_CANCER_CELLS and not self.n_cancer:
            return float("nan")
        return float(self.df[column].iloc[-1])

    @property
    def snapshot(self) -> dict[str, Any] | None:
        """The ``snapshot`` probe's layers, or None (no such probe, or the tumour was cleared
        before its day)."""
        return self.probes.get("snapshot") or None


def by_point(data) -> dict[Any, list[Run]]:
    """The finished runs of a sweep (``abm.sweep.load_sweep``) grouped by point, in run-list
    order (each group in seed order). A group's key is its varied value (the arm name, or the
    factor value) when one thing varies, else the tuple of them, arm first."""
    rows = {row["run_id"]: row for row in data.summary.to_dict("records")}
    groups: dict[Any, list[Run]] = {}
    for record in data.runs:
        values = tuple(record.varied.values())
        key = values[0] if len(values) == 1 else values
        groups.setdefault(key, []).append(
            Run(record.seed, dict(record.varied), rows[record.run_id], record)
        )
    return groups


def finals(runs: list[Run]) -> list[int]:
    """The final burden of each run."""
    return [r.n_cancer for r in runs]
