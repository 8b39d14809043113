"""Probes: measurements taken during a run, beyond the per-step reporters.

A sweep spec names them in a ``[probes]`` table, e.g. ::

    [probes.snapshot]
    day = 14            # the site layers after the step that ends day 14

    [probes.contacts]
    days = [7, 14]      # kill chance against neighbouring CTLs, days 7-14

    [probes.antigen_loss]   # fractions lacking the founder / vaccine antigens at the end

The sweep runner builds them for every run (``make_probes``), calls ``before_step(model)`` and
``after_step(model)`` around every step, and stores ``result(model)`` (called once, at the end)
with the run, where the analysis reads it back. A result is a dict of JSON values and numpy
arrays.

A new probe is a subclass with a ``name``, its options as keyword arguments of ``__init__``
(validated there: raise ``ValueError`` naming the option, its value and what is allowed) and the
hooks it needs, added to ``PROBES``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar

import numpy as np

from abm.agents import Kind
from abm.params import value_text


class Probe:
    """Base class: does nothing on either side of a step and returns an empty result."""

    name: ClassVar[str]
    last_hour: int = 0  # the run must reach this hour for the probe to measure anything

    def before_step(self, model) -> None:
        """Called before each step (the model is at hour ``model.steps``)."""

    def after_step(self, model) -> None:
        """Called after each step."""

    def result(self, model) -> dict[str, Any]:
        """What the probe measured, called once after the run (JSON values and numpy arrays)."""
        return {}


def _day(name: str, option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e6:
        raise ValueError(
            f"probe {name!r}: option {option!r} = {value_text(value)} is not allowed: expected "
            "a day >= 0"
        )
    from abm.sweep.schema import whole_hours  # (here: abm.sweep imports this module)

    if whole_hours(value) is None:  # as a sweep's days: never rounded
        hours = value * 24
        raise ValueError(
            f"probe {name!r}: option {option!r} = {value!r} is not allowed: day {value:g} is "
            f"{hours:.6g} h, and the model steps whole hours: expected days that are whole "
            f"hours (day x 24 a whole number, e.g. {math.floor(hours) / 24:g} or "
            f"{math.ceil(hours) / 24:g})"
        )
    return float(value)


def _window(name: str, days: Any) -> tuple[float, float]:
    if not isinstance(days, list | tuple) or len(days) != 2:
        raise ValueError(
            f"probe {name!r}: option 'days' = {value_text(days)} is not allowed: expected [first "
            "day, last day]"
        )
    first, last = (_day(name, "days", d) for d in days)
    if not first < last:
        raise ValueError(
            f"probe {name!r}: option 'days' = {days!r} is not allowed: the first day must be "
            "before the last"
        )
    return first, last


def killed(cell) -> bool:
    """Whether a cancer cell seen before a step was killed by a CTL or CAR-T cell during it (not
    dead by apoptosis or necrosis: ``cell.fate``)."""
    return not cell.alive and cell.fate == "killed"


class Snapshot(Probe):
    """The site layers at the end of ``day``: what occupies each site (``kind``, ``abm.agents.Kind``
    values), total PD-L1 (``pdl1``, 0-1), IFN-gamma (``ifng``, ng/mL), oxygen (``oxygen``, mmHg)
    and the vessel sites (``vessels``, n x 2; ``collapsed_vessels``, those that collapsed).
    Empty if the run ended (tumour cleared) before that day."""

    name = "snapshot"

    def __init__(self, day: float) -> None:
        self.day = _day(self.name, "day", day)
        self.hour = self.last_hour = round(self.day * 24)
        self.layers: dict[str, Any] = {}

    def after_step(self, model) -> None:
        if model.steps == self.hour:
            self.layers = {
                "day": model.day,
                "kind": model.kind.copy(),
                "pdl1": np.asarray(model.pdl1_map(), dtype=float),
                "ifng": model.ifng.data.copy(),
                "oxygen": model.oxygen.data.copy(),
                "vessels": np.array(model.vessels, dtype=np.int64).reshape(-1, 2),
                "collapsed_vessels": np.array(model.collapsed_vessels,
                                              dtype=np.int64).reshape(-1, 2),
            }

    def result(self, model) -> dict[str, Any]:
        return self.layers


MAX_CONTACTS = 8  # a site has 8 neighbouring sites (Moore neighbourhood)


class Contacts(Probe):
    """Kill chance against the number of CTLs around a cancer cell (fact 8, second half).

    Every hour from the start of day ``days[0]`` to the start of day ``days[1]``, each cancer
    cell's number of CTLs on its 8 neighbouring sites (``abm.analysis.spatial.
    cancer_cells_and_contacts``) before the step, and whether it was killed during it.
    ``exposed[k]`` counts cell-hours with ``k`` CTLs around, ``died[k]`` those that ended in a
    kill (``abm.analysis.kills.kill_probability`` turns them into rates)."""

    name = "contacts"

    def __init__(self, days: list[float]) -> None:
        self.first, self.last = _window(self.name, days)
        self.hours = (round(self.first * 24), round(self.last * 24))
        self.last_hour = self.hours[0] + 1  # at least one hour of the window
        self.exposed = np.zeros(MAX_CONTACTS + 1, dtype=np.int64)
        self.died = np.zeros(MAX_CONTACTS + 1, dtype=np.int64)
        self._watched: tuple[list, np.ndarray] | None = None

    def before_step(self, model) -> None:
        from abm.analysis.spatial import cancer_cells_and_contacts

        self._watched = None
        if self.hours[0] <= model.steps < self.hours[1]:
            self._watched = cancer_cells_and_contacts(model)

    def after_step(self, model) -> None:
        if self._watched is None:
            return
        cells, around = self._watched
        np.add.at(self.exposed, around, 1)
        np.add.at(self.died, around, np.fromiter((killed(c) for c in cells), bool, len(cells)))
        self._watched = None

    def result(self, model) -> dict[str, Any]:
        return {"days": [self.first, self.last], "exposed": self.exposed, "died": self.died}


class AntigenLoss(Probe):
    """At the end of the run, the fraction of cancer cells carrying none of the founder clone's
    antigens (``lacking_founder``) and none of the vaccine's targets (``lacking_vaccine``,
    whether or not a vaccine was given; NaN if it targets no antigen). The founder clone is the
    commonest antigen set before the first step. Both are NaN when no cancer cell is left. No
    options."""

    name = "antigen_loss"

    def __init__(self) -> None:
        self.founder: int | None = None

    def before_step(self, model) -> None:
        if self.founder is None:
            self.founder = founder_antigens(model)

    def result(self, model) -> dict[str, Any]:
        founder = founder_antigens(model) if self.founder is None else self.founder
        vaccine = model.treatments.get("vaccine")
        targets = sum(1 << a for a in getattr(vaccine, "antigens", None) or ())
        return {
            "founder_antigens": founder,
            "lacking_founder": lacking_fraction(model, founder),
            "lacking_vaccine": lacking_fraction(model, targets) if targets else float("nan"),
        }


def founder_antigens(model) -> int:
    """The commonest antigen set (bit mask) among the cancer cells: at the start, the founder
    clone's (0 without cancer cells)."""
    carried = model.antigens[model.kind == Kind.CANCER]
    return int(np.bincount(carried).argmax()) if carried.size else 0


def lacking_fraction(model, antigens: int) -> float:
    """Fraction of cancer cells carrying none of the antigens in the bit mask ``antigens`` (NaN
    without cancer cells)."""
    carried = model.antigens[model.kind == Kind.CANCER]
    return float(np.mean((carried & antigens) == 0)) if carried.size else float("nan")


PROBES: dict[str, type[Probe]] = {cls.name: cls for cls in (Snapshot, Contacts, AntigenLoss)}


def make_probes(table: dict[str, dict[str, Any]]) -> list[Probe]:
    """Probes from a spec's ``[probes]`` table (name -> options); ``ValueError`` names a bad
    probe or option and what is allowed."""
    if not isinstance(table, dict):
        raise ValueError(f"probes: expected a table of probe name -> options (a dict, e.g. "
                         f"{{'snapshot': {{'day': 14}}}}), got {value_text(table)}")
    probes = []
    for name, options in table.items():
        if name not in PROBES:
            raise ValueError(f"unknown probe {name!r}: expected one of {', '.join(PROBES)}")
        if not isinstance(options, dict):
            raise ValueError(f"probe {name!r}: expected a table of options, got {options!r}")
        cls = PROBES[name]
        allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = sorted(set(options) - set(allowed))
        missing = [
            p for p, spec in inspect.signature(cls.__init__).parameters.items()
            if p != "self" and spec.default is inspect.Parameter.empty and p not in options
        ]
        if unknown or missing:
            bad = f"unknown option {unknown[0]!r}" if unknown else f"missing option {missing[0]!r}"
            raise ValueError(
                f"probe {name!r}: {bad}: expected {', '.join(allowed) or 'no options'}"
            )
        probes.append(cls(**options))
    return probes
