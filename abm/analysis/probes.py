"""Probes: measurements taken during a run, beyond the per-step reporters.

A sweep spec names them in a ``[probes]`` table, e.g. ::

    [probes.snapshot]
    day = 14            # the site layers after the step that ends day 14

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
from typing import Any, ClassVar

import numpy as np


class Probe:
    """Base class: does nothing on either side of a step and returns an empty result."""

    name: ClassVar[str]

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
            f"probe {name!r}: option {option!r} = {value!r} is not allowed: expected a day >= 0"
        )
    return float(value)


class Snapshot(Probe):
    """The site layers at the end of ``day``: what occupies each site (``kind``, ``abm.agents.Kind``
    values), total PD-L1 (``pdl1``, 0-1) and IFN-gamma (``ifng``, ng/mL). Empty if the run ended
    (tumour cleared) before that day."""

    name = "snapshot"

    def __init__(self, day: float) -> None:
        self.day = _day(self.name, "day", day)
        self.hour = round(self.day * 24)
        self.layers: dict[str, Any] = {}

    def after_step(self, model) -> None:
        if model.steps == self.hour:
            self.layers = {
                "day": model.day,
                "kind": model.kind.copy(),
                "pdl1": np.asarray(model.pdl1_map(), dtype=float),
                "ifng": model.ifng.data.copy(),
            }

    def result(self, model) -> dict[str, Any]:
        return self.layers


PROBES: dict[str, type[Probe]] = {cls.name: cls for cls in (Snapshot,)}


def make_probes(table: dict[str, dict[str, Any]]) -> list[Probe]:
    """Probes from a spec's ``[probes]`` table (name -> options); ``ValueError`` names a bad
    probe or option and what is allowed."""
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
