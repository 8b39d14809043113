"""Plain-language labels for the classroom: the "basic" parameters a student meets first.

UI text lives here, not in the model: ``abm/params.py`` keeps code names, units and sources;
this module only says how the dashboard presents some of them (keyed by parameter name).
Each basic control has a classroom range and step, narrower than the model's allowed range
(a 0-1 probability over 1000 slider positions cannot be set by hand), always widened to hold
the current value so a scenario's preset is never clipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from abm import params as P


@dataclass(frozen=True)
class Basic:
    """A basic control: which parameter, its plain label, and the slider's range and step."""

    name: str
    label: str
    low: float
    high: float
    step: float

    def span(self, value: float) -> tuple[float, float]:
        """The slider's range, widened to hold ``value`` (within the model's allowed range)."""
        p = P.PARAMS[self.name]
        low = min(self.low, value) if p.low is None else max(p.low, min(self.low, value))
        high = max(self.high, value) if p.high is None else min(p.high, max(self.high, value))
        return low, high


BASIC: tuple[Basic, ...] = (
    Basic("founder_antigens", "Antigens T cells can recognise (of 8)", 0, 8, 1),
    Basic("mutation_rate", "Mutation rate (per division)", 0.0, 0.1, 0.001),
    Basic("tcell_influx", "T-cell arrival (cells/h)", 0.0, 25.0, 0.1),
    Basic("tcell_kill_prob", "T-cell kill chance (per hour of contact)", 0.0, 1.0, 0.01),
    Basic("treg_influx", "Treg arrival (cells/h)", 0.0, 2.0, 0.05),
    Basic("mdsc_influx", "MDSC arrival (cells/h)", 0.0, 2.0, 0.05),
    Basic("macrophage_influx", "Macrophage arrival (cells/h)", 0.0, 2.0, 0.05),
    Basic("nk_influx", "NK-cell arrival (cells/h)", 0.0, 2.0, 0.05),
    Basic("founder_pdl1", "PD-L1 of the first tumour cells (0-1)", 0.0, 1.0, 0.01),
    Basic("division_time_h", "Cancer-cell division time (hours)", 6.0, 72.0, 1.0),
    Basic("initial_tumor_cells", "Starting tumour (cells)", 10, 3000, 10),
)
BASIC_BY_NAME = {b.name: b for b in BASIC}


def plain_label(name: str) -> str:
    """The label a control shows: plain words for the basic set, the code name otherwise."""
    basic = BASIC_BY_NAME.get(name)
    return basic.label if basic else name


def display_unit(unit: str) -> str:
    """A unit as the page shows it: micrometres as µm (the registry writes ``um``, ASCII for
    the command line and files)."""
    return re.sub(r"(?<![A-Za-z])um(?![A-Za-z])", "µm", unit)


def format_value(p: P.Param, value: object) -> str:
    """A parameter's value as a control shows it next to its label."""
    if value is None or value == "":
        return "not given"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return f"{value:g}"
    return str(value)


def slider_step(p: P.Param) -> float:
    """The step of an advanced slider: 1 for integers; for 0-1 floats 0.01, or 0.001 when
    the default or a scenario preset needs it (mutation rate 0.001)."""
    if p.kind is int:
        return 1
    from abm.scenarios import SCENARIOS

    values = [p.default] + [s["params"][p.name] for s in SCENARIOS.values()
                            if p.name in s["params"]]
    if all(abs(v * 100 - round(v * 100)) < 1e-9 for v in values if v is not None):
        return 0.01
    return 0.001
