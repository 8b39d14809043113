"""Treatment agents: anti-PD-1, anti-CTLA-4, a cancer vaccine and CAR-T infusions.

A treatment is a Mesa agent without a grid cell, stepped first every hour (like starsim's
interventions). It has a schedule (start day, interval, number of doses, dose) and two methods:

- ``give(dose, hour)``: what one dose does now, acting from ``hour`` (called for scheduled
  doses and by ``TumorModel.administer`` for a dose given live, e.g. from the dashboard);
- ``act()``: called every hour; decays the drug and writes its effect into the model's
  ``effects`` (PD-1 occupancy, recruitment factors, extra antigen-specific influx).

The model knows no therapy by name: a new therapy is a new subclass added to ``TREATMENTS``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from mesa import Agent

if TYPE_CHECKING:
    from abm.model import TumorModel


class Treatment(Agent):
    """Base class: a schedule read from the parameters ``<prefix>_start_day`` etc.

    Subclasses set ``name`` (used by ``administer``), ``label``, ``prefix`` (parameter-name
    prefix) and ``dose_param`` (the parameter holding the amount per dose).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    prefix: ClassVar[str]
    dose_param: ClassVar[str]
    dose_unit: ClassVar[str] = "standard doses"
    model: TumorModel

    def __init__(self, model: TumorModel):
        super().__init__(model)
        p = model.p
        start = p[f"{self.prefix}_start_day"]
        self.dose = p[self.dose_param]
        self.dose_hours: set[int] = set()
        if start is not None:
            interval = p[f"{self.prefix}_interval_days"]
            n = p[f"{self.prefix}_doses"]
            self.dose_hours = {round((start + k * interval) * 24) for k in range(n)}

    def step(self) -> None:
        hour = self.model.steps - 1  # the hour this step simulates starts at steps - 1
        if hour in self.dose_hours:
            self.model.administer(self.name, self.dose, scheduled=True)
        self.act()

    def give(self, dose: float, hour: int) -> None:  # pragma: no cover - abstract
        """One dose of ``dose`` that acts from ``hour`` (the hour it starts acting) on."""
        raise NotImplementedError

    def act(self) -> None:
        """Hourly effect; the default does nothing."""


class Antibody(Treatment):
    """A circulating antibody in a well-mixed plasma compartment feeding the tissue.

    Each dose adds to the level (in standard doses); the level decays with the antibody's
    half-life; receptor occupancy is level / (level + EC50).
    """

    half_life_param: ClassVar[str]
    ec50_param: ClassVar[str]

    def __init__(self, model):
        super().__init__(model)
        self.level = 0.0
        self._decay = math.exp(-math.log(2) / (model.p[self.half_life_param] * 24.0))

    def give(self, dose: float, hour: int) -> None:
        self.level += dose

    @property
    def occupancy(self) -> float:
        return self.level / (self.level + self.model.p[self.ec50_param])

    def act(self) -> None:
        self.level *= self._decay
        self.apply(self.occupancy)

    def apply(self, occupancy: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class AntiPD1(Antibody):
    """Anti-PD-1 (pembrolizumab t1/2 22 d, nivolumab 26.7 d): occupied PD-1 cannot be inhibited
    by PD-L1, so the PD-1 block of a kill attempt is scaled by (1 - occupancy)."""

    name = "anti_pd1"
    label = "anti-PD-1"
    prefix = "anti_pd1"
    dose_param = "anti_pd1_dose"
    half_life_param = "anti_pd1_half_life_days"
    ec50_param = "anti_pd1_ec50"

    def apply(self, occupancy: float) -> None:
        self.model.effects["pd1_occupancy"] = max(self.model.effects["pd1_occupancy"], occupancy)


class AntiCTLA4(Antibody):
    """Anti-CTLA-4 (ipilimumab, t1/2 about 15 d): depletes Tregs at each dose, blocks Treg
    recruitment and boosts CTL priming in proportion to occupancy."""

    name = "anti_ctla4"
    label = "anti-CTLA-4"
    prefix = "anti_ctla4"
    dose_param = "anti_ctla4_dose"
    half_life_param = "anti_ctla4_half_life_days"
    ec50_param = "anti_ctla4_ec50"

    def give(self, dose: float, hour: int) -> None:
        super().give(dose, hour)
        from abm.agents.suppressors import Treg

        kill = 1.0 - (1.0 - self.model.p["anti_ctla4_treg_depletion"]) ** dose
        for treg in list(self.model.agents_by_type.get(Treg, [])):
            if self.random.random() < kill:
                treg.die()

    def apply(self, occupancy: float) -> None:
        p, effects = self.model.p, self.model.effects
        effects["tcell_recruitment"] *= 1.0 + p["anti_ctla4_priming_boost"] * occupancy
        effects["treg_recruitment"] *= 1.0 - p["anti_ctla4_treg_depletion"] * occupancy


class Vaccine(Treatment):
    """A cancer vaccine against ``vaccine_antigens`` (default: the founder clone's antigens).

    After a priming delay (about a week of clonal expansion), vaccine-specific CTLs enter at
    up to ``vaccine_influx`` per hour per dose; the response then contracts with
    ``vaccine_response_half_life_days``. Clones that lost the vaccine antigens are not touched.
    """

    name = "vaccine"
    label = "vaccine"
    prefix = "vaccine"
    dose_param = "vaccine_dose"

    def __init__(self, model):
        super().__init__(model)
        p = model.p
        n = p["vaccine_antigens"] or p["founder_antigens"]
        self.antigens = list(range(n))
        self.doses_given: list[tuple[int, float]] = []  # (hour given, dose)

    def give(self, dose: float, hour: int) -> None:
        self.doses_given.append((hour, dose))

    def response(self) -> float:
        """The response in the hour being simulated (``steps - 1``: the step that simulates
        hour h runs with ``steps`` = h + 1), in doses at peak strength."""
        p = self.model.p
        delay = p["vaccine_priming_delay_days"] * 24.0
        half_life = p["vaccine_response_half_life_days"] * 24.0
        now = self.model.steps - 1
        total = 0.0
        for hour, dose in self.doses_given:
            since_peak = now - hour - delay
            if since_peak >= 0:
                total += dose * 0.5 ** (since_peak / half_life)
        return total

    def act(self) -> None:
        if self.antigens and self.doses_given:
            rate = self.model.p["vaccine_influx"] * self.response()
            self.model.effects["specific_influx"].append((rate, self.antigens))


class CART(Treatment):
    """A CAR-T infusion: ``cart_dose`` engineered T cells placed at vessel sites."""

    name = "cart"
    label = "CAR-T"
    prefix = "cart"
    dose_param = "cart_dose"
    dose_unit = "cells"

    def give(self, dose: float, hour: int) -> None:
        from abm.agents.tcell import CARTCell

        for _ in range(int(round(dose))):
            site = self.model.entry_site()
            if site is None:
                break
            CARTCell(self.model).place(site)


TREATMENTS: dict[str, type[Treatment]] = {
    cls.name: cls for cls in (AntiPD1, AntiCTLA4, Vaccine, CART)
}
