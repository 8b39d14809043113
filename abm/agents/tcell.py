"""Cytotoxic T cells (CTLs) and CAR-T cells."""

from __future__ import annotations

from typing import TYPE_CHECKING

from abm.agents.base import ImmuneCell, Kind
from abm.agents.cancer import CancerCell
from abm.compat import neighbour_agents

if TYPE_CHECKING:
    from mesa.discrete_space import Cell


class TCell(ImmuneCell):
    """An endogenous cytotoxic T cell, specific for one tumour antigen (``antigen``, a bit index).

    Each hour it: dies with its lifespan (10 d, PhysiCell v1.2.1 / spQSP-IO); if not exhausted,
    looks for a neighbouring cancer cell it recognises (carries its antigen; seen with probability
    MHC-I); otherwise moves ``tcell_speed`` sites up the chemokine gradient, arresting as soon as
    it finds a target (CTLs arrest only on cognate antigen, Boissonnas 2007) and squeezing past
    cancer cells with probability ``tcell_infiltration`` when boxed in. On a target it releases
    IFN-gamma and attacks: PD-L1 can block the attempt (less so under anti-PD-1); otherwise it
    kills with ``tcell_kill_prob`` per hour (about 6 h per kill in vivo, Breart 2008), reduced by
    Tregs and the suppressive field. Kills and PD-1 blocks count toward exhaustion (Kather 2017:
    5); a kill may trigger a division (at most ``tcell_max_divisions``, 5: Kather et al. 2018;
    the Kather et al. 2017 code allows 10).

    Differentiation states (``state``; Im et al. 2016 Nature 537:417, Utzschneider et al. 2016
    Immunity 45:415, Siddiqui et al. 2019 Immunity 50:195, Miller et al. 2019 Nat Immunol
    20:326):

    - ``"progenitor"`` (progenitor-exhausted, TCF-1+, stem-like): homes to and arrests on its
      antigen like an effector but does not kill; each hour of antigen contact it divides with
      ``tcell_progenitor_division_prob`` unless PD-1 signalling blocks it (probability
      min(1, ``tcell_progenitor_pd1_inhibition`` x the target's PD-L1 x (1 - PD-1 occupancy)), as
      ``pd1_inhibition`` blocks a kill attempt), self-renewing and giving rise to an effector
      daughter (with the full ``tcell_max_divisions``). So anti-PD-1 causes a proliferative
      burst from progenitors.
      Tregs nearby block the division (as for effectors). It never becomes exhausted itself,
      and lives ``tcell_progenitor_lifespan_days`` (long-lived, self-renewing).
    - ``"effector"`` (effector / transitory): kills, as described above; kills and PD-1 blocks
      push it toward terminal exhaustion.
    - terminally exhausted (``exhausted`` is True: an effector that reached
      ``tcell_exhaustion_limit``): neither kills nor divides, and anti-PD-1 does nothing for it.

    Newly primed CTLs arrive from the lymph node as progenitors with probability
    ``tcell_progenitor_fraction`` (``abm.lymphnode``). CAR-T cells are always effectors.
    """

    KIND = Kind.TCELL

    def __init__(self, model, antigen: int | None, divisions_left: int | None = None,
                 progenitor: bool = False):
        super().__init__(model)
        self.state = "progenitor" if progenitor else "effector"
        self.progenitor_divisions = 0  # divisions as a progenitor (each gives an effector)
        p = model.p
        self.antigen = antigen
        self.speed = p["tcell_speed"]
        self.lifespan_h = p["tcell_lifespan_days"] * 24.0
        if progenitor:
            self.lifespan_h = p["tcell_progenitor_lifespan_days"] * 24.0
        self.exhaustion_limit = p["tcell_exhaustion_limit"]
        self.divisions_left = p["tcell_max_divisions"] if divisions_left is None else divisions_left
        self.exhaustion = 0  # kills + PD-1-blocked hours of engagement so far
        self.kills = 0
        self.engaged = False  # attacked a target this hour

    @property
    def exhausted(self) -> bool:
        """Terminally exhausted: an effector that reached its exhaustion limit."""
        return self.state == "effector" and self.exhaustion >= self.exhaustion_limit

    @property
    def progenitor(self) -> bool:
        """Progenitor-exhausted (TCF-1+, stem-like) state."""
        return self.state == "progenitor"

    def recognises(self, cell: CancerCell) -> bool:
        """Antigen-specific, MHC-I-restricted recognition."""
        return bool(cell.antigens >> self.antigen & 1) and self.random.random() < cell.mhc

    # --- the hour of a T cell -------------------------------------------------------------
    def step(self) -> None:
        self.engaged = False
        if self.outlived():
            self.die()
            return
        if self.exhausted:
            # exhausted cells linger, barely motile, and no longer kill
            self.migrate(self.model.p["tcell_exhausted_speed"])
            return
        self.hunt()  # attack() dispatches a progenitor to expand()

    def pd1_block(self, target: CancerCell) -> float:
        """Probability PD-1 signalling from ``target`` blocks this hour's response (a kill
        attempt of an effector, a division of a progenitor)."""
        p = self.model.p
        return p["pd1_inhibition"] * target.pdl1 * (1.0 - self.model.pd1_occupancy)

    def expand(self, target: CancerCell) -> None:
        """A progenitor on its antigen: IFN-gamma, and a division unless PD-1 blocks it;
        the daughter is an effector, the progenitor self-renews."""
        model = self.model
        p = model.p
        x, y = self.site.coordinate
        self.engaged = True
        model.ifng_source[x, y] += p["ifng_secretion"]
        block = min(1.0, p["tcell_progenitor_pd1_inhibition"] * target.pdl1
                    * (1.0 - model.pd1_occupancy))
        if self.random.random() < block:
            return
        if model.treg_near[x, y] or self.random.random() >= p["tcell_progenitor_division_prob"]:
            return
        free = self.free_neighbours()
        if free:
            child = TCell(model, self.antigen)
            model.tissue.add_daughter(self, child, self.random.choice(free))
            self.progenitor_divisions += 1
            model.progenitor_divisions += 1

    def find_target(self) -> CancerCell | None:
        candidates = [
            a for a in neighbour_agents(self.cell) if a.KIND == Kind.CANCER and self.recognises(a)
        ]
        return self.random.choice(candidates) if candidates else None

    def attack(self, target: CancerCell) -> None:
        """An effector's hour on its target: IFN-gamma, then a kill attempt unless PD-1
        blocks it. A progenitor expands on its antigen instead (``expand``)."""
        if self.state == "progenitor":
            self.expand(target)
            return
        model = self.model
        p = model.p
        x, y = self.site.coordinate
        self.engaged = True
        model.ifng_source[x, y] += p["ifng_secretion"]
        if self.random.random() < self.pd1_block(target):
            self.exhaustion += 1  # PD-1 signalling pushes the cell toward exhaustion
            return
        if self.random.random() < self.kill_probability():
            target.fate = "killed"
            target.die()
            model.kills += 1
            self.kills += 1
            self.exhaustion += 1
            self.proliferate()

    def kill_probability(self) -> float:
        """Per-hour kill probability after suppression by Tregs and the suppressive field."""
        model, p = self.model, self.model.p
        site = self.site.coordinate
        prob = self.base_kill_prob()
        if model.treg_near[site]:
            prob *= 1.0 - p["treg_suppression"]
        prob *= 1.0 - p["mdsc_suppression"] * self.tgfb_response()
        return prob

    def base_kill_prob(self) -> float:
        return self.model.p["tcell_kill_prob"]

    def proliferate(self) -> None:
        """Clonal expansion after a kill; Tregs nearby block it."""
        p = self.model.p
        if self.divisions_left <= 0 or self.model.treg_near[self.site.coordinate]:
            return
        if self.random.random() >= p["tcell_proliferation_prob"]:
            return
        free = self.free_neighbours()
        if free:
            self.divisions_left -= 1
            self.daughter(self.random.choice(free))

    def daughter(self, site: Cell) -> TCell:
        child = TCell(self.model, self.antigen, self.divisions_left)
        self.model.tissue.add_daughter(self, child, site)
        return child


class CARTCell(TCell):
    """An engineered CAR-T cell: kills cells carrying the CAR target regardless of MHC-I.

    Lifespan, exhaustion and expansion follow CARCADE (6 weeks; 10 antigen engagements; 10
    divisions). PD-1/PD-L1 still inhibits it, and antigen-negative cells are invisible to it:
    antigen-negative relapse is the known failure mode (Blood Adv 2023 7:575).
    """

    KIND = Kind.CART

    def __init__(self, model, divisions_left: int | None = None):
        super().__init__(model, antigen=None, divisions_left=divisions_left)
        p = model.p
        self.lifespan_h = p["cart_lifespan_days"] * 24.0
        self.exhaustion_limit = p["cart_exhaustion_limit"]
        if divisions_left is None:
            self.divisions_left = p["cart_max_divisions"]

    def recognises(self, cell: CancerCell) -> bool:
        return cell.car_target

    def daughter(self, site: Cell) -> CARTCell:
        child = CARTCell(self.model, self.divisions_left)
        self.model.tissue.add_daughter(self, child, site)
        return child
