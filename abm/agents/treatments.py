"""Therapies: anti-PD-1, anti-CTLA-4, a cancer vaccine, CAR-T infusions and anti-CSF-1R.

Each therapy is two separate things, as starsim separates delivery from product:

- **when** (:class:`Schedule`): the start day, interval, number of doses and the amount per
  dose, read from the parameters ``<therapy>_start_day``, ``<therapy>_interval_days``,
  ``<therapy>_doses`` and ``<therapy>_dose``; it turns them into the hours at which a dose is
  due, and knows nothing of what a dose does;
- **what** (a :class:`Treatment` subclass, the product): ``give(dose, hour)`` is what one dose
  does, acting from ``hour`` on (called for scheduled doses and by ``TumorModel.administer``
  for a dose given live, e.g. from the dashboard); ``act()`` runs every hour, decays the drug
  and writes its effect into the model's ``effects`` (PD-1 occupancy, recruitment factors,
  extra antigen-specific influx).

A treatment is a Mesa agent without a grid site, stepped first every hour (like starsim's
interventions): it gives the doses its schedule says are due, then acts. The model knows no
therapy by name: a new therapy is a new subclass added to ``TREATMENTS`` (and its parameters,
named after it, in ``abm.params``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from mesa import Agent

if TYPE_CHECKING:
    from abm.model import TumorModel


@dataclass(frozen=True)
class Schedule:
    """When a therapy is given: ``doses`` doses of ``dose`` each, ``interval_days`` apart from
    ``start_day`` (``None`` = not scheduled). ``hours`` holds the model hours at which a dose is
    due (hour h is simulated by the step that runs with ``model.steps`` = h + 1)."""

    start_day: float | None
    interval_days: float
    doses: int
    dose: float
    hours: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        hours: frozenset[int] = frozenset()
        if self.start_day is not None:
            hours = frozenset(
                round((self.start_day + k * self.interval_days) * 24) for k in range(self.doses)
            )
        object.__setattr__(self, "hours", hours)

    @classmethod
    def from_params(cls, p: Mapping[str, Any], therapy: str) -> Schedule:
        """The schedule of ``therapy`` from its parameters ``<therapy>_start_day`` etc."""
        return cls(p[f"{therapy}_start_day"], p[f"{therapy}_interval_days"],
                   p[f"{therapy}_doses"], p[f"{therapy}_dose"])

    def due(self, hour: int) -> bool:
        """Whether a scheduled dose starts acting in ``hour``."""
        return hour in self.hours


class Treatment(Agent):
    """Base class of the products: what one dose does (``give``) and what the therapy does
    every hour (``act``). Its :class:`Schedule` (``schedule``) is built from the parameters
    named after the therapy.

    Subclasses set ``name`` (the therapy: used by ``administer`` and as the parameter-name
    prefix), ``label`` (for people) and, if not standard doses, ``dose_unit``.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    dose_unit: ClassVar[str] = "standard doses"
    model: TumorModel

    def __init__(self, model: TumorModel):
        super().__init__(model)
        self.schedule = Schedule.from_params(model.p, self.name)

    @property
    def dose_param(self) -> str:
        """The parameter holding the amount per dose (validates live doses too)."""
        return f"{self.name}_dose"

    @property
    def dose(self) -> float:
        """The amount per dose (the schedule's; the default of a live dose)."""
        return self.schedule.dose

    @property
    def dose_hours(self) -> frozenset[int]:
        """The hours at which a scheduled dose is due (``schedule.hours``)."""
        return self.schedule.hours

    def step(self) -> None:
        # delivery: the hour this step simulates starts at steps - 1
        if self.schedule.due(self.model.steps - 1):
            self.model.administer(self.name, self.schedule.dose, scheduled=True)
        self.act()

    def give(self, dose: float, hour: int) -> int | None:  # pragma: no cover - abstract
        """One dose of ``dose`` that acts from ``hour`` (the hour it starts acting) on; a
        therapy of cells returns how many were placed (None for a drug)."""
        raise NotImplementedError

    def act(self) -> None:
        """Hourly effect; the default does nothing."""

    def census(self) -> dict[str, float]:
        """Values this therapy reports each step, as model attribute -> value (the model's
        reporters read them, e.g. ``ctla4_occupancy``); the default reports nothing."""
        return {}


class Antibody(Treatment):
    """A circulating antibody in a well-mixed plasma compartment feeding the tissue.

    Each dose adds to the level (in standard doses); the level decays with the antibody's
    half-life; receptor occupancy is level / (level + EC50).
    """

    def __init__(self, model):
        super().__init__(model)
        self.level = 0.0
        self._decay = math.exp(-math.log(2) / (model.p[self.half_life_param] * 24.0))

    @property
    def half_life_param(self) -> str:
        """The antibody's half-life parameter, ``<therapy>_half_life_days``."""
        return f"{self.name}_half_life_days"

    @property
    def ec50_param(self) -> str:
        """The level at half-maximal occupancy, ``<therapy>_ec50`` (each antibody its own)."""
        return f"{self.name}_ec50"

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

    def apply(self, occupancy: float) -> None:
        self.model.effects["pd1_occupancy"] = max(self.model.effects["pd1_occupancy"], occupancy)


class AntiCTLA4(Antibody):
    """Anti-CTLA-4 (ipilimumab, t1/2 about 15 d).

    Its main effect is where CTLA-4 acts, on priming: priming of new CTL clones rises by
    ``anti_ctla4_priming_boost`` x occupancy. Without the lymph node the extra endogenous CTLs
    arrive at once; with ``lymph_node_priming`` the boost acts in the node on endogenous and
    vaccine-primed clones, so the extra CTLs arrive after the priming delay
    (``abm.lymphnode``). Treg depletion is a
    separate, species-dependent option, ``anti_ctla4_treg_depletion`` (Tregs killed at each
    dose, Treg recruitment reduced in proportion to occupancy): Fc-gamma-R-dependent depletion
    of intratumoural Tregs is seen in mice (Simpson et al. 2013 J Exp Med 210:1695) and
    reportedly not with ipilimumab in human tumours (Sharma et al. 2019 Clin Cancer Res
    25:1233); set it to 0 for the human case."""

    name = "anti_ctla4"
    label = "anti-CTLA-4"

    def give(self, dose: float, hour: int) -> None:
        super().give(dose, hour)
        kill = 1.0 - (1.0 - self.model.p["anti_ctla4_treg_depletion"]) ** dose
        self.model.deplete_tregs(kill)  # each engine removes its Tregs

    def apply(self, occupancy: float) -> None:
        p, effects = self.model.p, self.model.effects
        effects["priming"] *= 1.0 + p["anti_ctla4_priming_boost"] * occupancy
        effects["treg_recruitment"] *= 1.0 - p["anti_ctla4_treg_depletion"] * occupancy

    def census(self) -> dict[str, float]:
        return {"ctla4_occupancy": self.occupancy}


class Vaccine(Treatment):
    """A cancer vaccine against ``vaccine_antigens`` (default: the founder clone's antigens).

    After a priming delay (``vaccine_priming_delay_days``, about a week of clonal expansion),
    vaccine-specific CTLs enter at up to ``vaccine_influx`` per hour per dose; the response then
    contracts with ``vaccine_response_half_life_days``. Clones that lost the vaccine antigens
    are not touched by these CTLs.

    With ``lymph_node_priming``, each dose instead presents the vaccine's antigens in the
    draining lymph node (``model.lymph_node``), which primes the same curve of vaccine-specific
    CTLs; and the cells they kill release all their antigens into the node, which primes CTLs
    against antigens the vaccine lacks (antigen spreading).
    """

    name = "vaccine"
    label = "vaccine"

    def __init__(self, model):
        super().__init__(model)
        p = model.p
        n = p["vaccine_antigens"] or p["founder_antigens"]
        self.antigens = list(range(n))
        self.doses_given: list[tuple[int, float]] = []  # (hour given, dose)

    def give(self, dose: float, hour: int) -> None:
        if not self.antigens:
            warnings.warn("vaccine: no antigen to target (vaccine_antigens 0 means the "
                          "founder's, and founder_antigens is 0): the dose primes no CTLs; set "
                          "vaccine_antigens", stacklevel=4)
        self.doses_given.append((hour, dose))
        node = self.model.lymph_node
        if self.antigens and node is not None:
            node.vaccinate(self.antigens, dose, hour)

    def act(self) -> None:
        """Without the lymph node: the vaccine-primed CTLs arriving this hour."""
        if self.antigens and self.doses_given and self.model.lymph_node is None:
            rate = self.model.p["vaccine_influx"] * self.response()
            self.model.effects["specific_influx"].append((rate, self.antigens))

    def response(self) -> float:
        """The response in the hour being simulated (``steps - 1``: the step that simulates
        hour h runs with ``steps`` = h + 1), in doses at peak strength (with the lymph node:
        its vaccine presentation ``vaccine_priming_delay_days`` earlier, whose clones arrive
        now)."""
        if not self.antigens:  # nothing to respond to
            return 0.0
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

    def census(self) -> dict[str, float]:
        return {"vaccine_response": self.response()}


class CART(Treatment):
    """A CAR-T infusion: ``cart_dose`` engineered T cells entering the tissue at vessel sites.

    Cells enter on a free site on or next to a vessel (about 9 per vessel); those that find no
    room at the dose wait in the blood (``waiting``) and enter in the following hours as room
    frees, as many as fit each hour, so that a dose larger than the vessels' room at once (a
    small grid, a crowded tumour) still arrives whole, only later.
    """

    name = "cart"
    label = "CAR-T"
    dose_unit = "cells"

    def __init__(self, model):
        super().__init__(model)
        self.waiting = 0  # infused cells not yet in the tissue
        self._given_hour: int | None = None  # the hour of the last dose (placed then)

    def give(self, dose: float, hour: int) -> int:
        n = int(round(dose))
        placed = self.model.infuse_cart(n)  # each engine places its CAR-T cells
        self.waiting += n - placed
        self._given_hour = hour
        return placed

    def act(self) -> None:
        """The cells still waiting enter where room has freed (from the hour after a dose)."""
        if self.waiting and self._given_hour != self.model.steps - 1:
            self.waiting -= self.model.infuse_cart(self.waiting)


class AntiCSF1R(Antibody):
    """CSF-1R blockade (emactuzumab/RG7155, t1/2 1.5-9 d; BLZ945, PLX3397): macrophages need
    CSF-1R signalling to differentiate and survive, so in proportion to occupancy it blocks
    macrophage recruitment (``anti_csf1r_recruitment_block``), raises their death rate
    (``anti_csf1r_depletion_rate``: Ries et al. 2014, TAM depletion) and repolarises the
    survivors toward M1 (``anti_csf1r_repolarisation``: Pyonteck et al. 2013, BLZ945 in
    glioma); new arrivals are M2-like only in the unblocked share (1 - occupancy)."""

    name = "anti_csf1r"
    label = "anti-CSF-1R"

    def apply(self, occupancy: float) -> None:
        p, effects = self.model.p, self.model.effects
        effects["macrophage_recruitment"] *= 1.0 - p["anti_csf1r_recruitment_block"] * occupancy
        death = -math.expm1(-p["anti_csf1r_depletion_rate"] * occupancy / 24.0)
        effects["macrophage_depletion"] = max(effects["macrophage_depletion"], death)
        effects["macrophage_arrival_m2"] = min(effects["macrophage_arrival_m2"], 1.0 - occupancy)
        effects["macrophage_repolarisation"] = max(
            effects["macrophage_repolarisation"], p["anti_csf1r_repolarisation"] * occupancy)

    def census(self) -> dict[str, float]:
        return {"csf1r_occupancy": self.occupancy}


TREATMENTS: dict[str, type[Treatment]] = {
    cls.name: cls for cls in (AntiPD1, AntiCTLA4, Vaccine, CART, AntiCSF1R)
}
