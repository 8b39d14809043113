"""Paired-seed comparisons: the same seed with and without an intervention, so the difference
is the intervention's. Effects are reported as median [min, max] over seeds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence


def relative_benefit(treated: float, untreated: float) -> float:
    """(untreated - treated) / untreated burden: 1 = cleared, 0 = no effect, < 0 = harm.
    An untreated burden of 0 counts as 1 cell (no division by zero)."""
    return (untreated - treated) / max(untreated, 1)


def relative_benefits(treated: Sequence[float], untreated: Sequence[float]) -> list[float]:
    """``relative_benefit`` per seed, pairing the two sequences in order (same seeds)."""
    return [relative_benefit(t, u) for t, u in zip(treated, untreated, strict=True)]


def median_benefit(treated: Sequence[float], untreated: Sequence[float]) -> float:
    """The median over seeds of the paired relative benefit."""
    return statistics.median(relative_benefits(treated, untreated))


def med_range(values: Iterable[float], fmt: str = "{:.2f}") -> str:
    """``"median [min, max]"`` over the values that are not NaN (``"n/a"`` if none)."""
    vals = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return "n/a"
    median, low, high = (fmt.format(v) for v in (statistics.median(vals), min(vals), max(vals)))
    return f"{median} [{low}, {high}]"


def bliss_excess(none: float, a: float, b: float, both: float) -> float:
    """Bliss independence on paired final burdens: the surviving fraction expected if the two
    therapies acted independently, (a / none) x (b / none), minus the observed both / none
    (> 0 = synergy). An untreated burden of 0 counts as 1 cell."""
    u = max(none, 1)
    return (a / u) * (b / u) - both / u
