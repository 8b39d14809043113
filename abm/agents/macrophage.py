"""Tumour-associated macrophages, polarised toward M1 (anti-tumour) or M2 (pro-tumour).

Rules in the style of PhysiCell's cell rules (Johnson et al. 2023): each hour a macrophage reads
the signals at its site and may switch state.

- **Recruitment**: monocytes arrive at vessels at up to ``macrophage_influx`` per hour, scaled by
  the tumour's burden signal (CSF-1 / CCL2 from the tumour, like the Treg and MDSC influx), and
  by anti-CSF-1R (``effects["macrophage_recruitment"]``); they arrive M2-like (monocytes
  differentiated by CSF-1, the tumour's signal, are M2-like: Hamilton 2008 Nat Rev Immunol
  8:533; Verreck et al. 2004 PNAS 101:4560; under anti-CSF-1R a share equal to the occupancy
  arrives M1 instead) and drift up the chemokine gradient, squeezing
  past cancer cells with ``tcell_infiltration`` when boxed in, so they reach the tumour's core.
- **Polarisation** (``macrophage_polarisation_time_h``): toward M2 with hypoxia (oxygen below
  ``hypoxic_threshold``; hypoxia drives TAMs to a pro-angiogenic, M2-like state, Murdoch et al.
  2004; Casazza et al. 2013) or the suppressive (TGF-beta-like) field; toward M1 with IFN-gamma
  (the cell's Hill response ``model.ifng_hill``): P(M1 -> M2) = s2 / tau and P(M2 -> M1) =
  s1 / tau per hour, with s2 = max(hypoxic, TGF-beta response) and s1 the IFN-gamma response,
  so under steady signals the M2 share is s2 / (s1 + s2); anti-CSF-1R adds repolarisation
  toward M1 (Pyonteck et al. 2013).
- **M2** (pro-tumour): cancer cells within ``suppression_radius_sites`` divide faster
  (``m2_growth_boost``, read by the model's ``division_probability_map``), and the cell secretes
  the suppressive factor (``tgfb_secretion_m2``) that lowers CTL and NK killing.
- **M1** (anti-tumour): kills (phagocytoses) a neighbouring cancer cell with
  ``macrophage_kill_prob`` per hour (fate ``"phagocytosed"``; not counted in ``Kills``, which
  are CTL and CAR-T kills) and releases IFN-gamma (``macrophage_ifng_secretion``) while in
  contact with a cancer cell (IL-12/IFN-gamma amplification of the type-1 response).
- **Death**: an exponential lifetime with mean ``macrophage_lifespan_days``, plus the extra
  death rate of anti-CSF-1R (``effects["macrophage_depletion"]``, Ries et al. 2014).
"""

from __future__ import annotations

from abm.agents.base import ImmuneCell, Kind
from abm.compat import neighbour_agents

PHAGOCYTOSED = "phagocytosed"  # fate of a cancer cell killed by an M1 macrophage


class Macrophage(ImmuneCell):
    """A tumour-associated macrophage; ``m2`` is its polarisation (False = M1)."""

    KIND = Kind.MACROPHAGE

    def __init__(self, model, m2: bool | None = None):
        super().__init__(model)
        p = model.p
        if m2 is None:  # a new arrival: M2-like unless CSF-1R is blocked
            m2 = self.random.random() < model.effects["macrophage_arrival_m2"]
        self.m2 = m2
        self.speed = p["suppressor_speed"]
        self.lifespan_h = p["macrophage_lifespan_days"] * 24.0
        self.kills = 0
        self.engaged = False  # in contact with a cancer cell this hour

    @property
    def state(self) -> str:
        """"M1" or "M2"."""
        return "M2" if self.m2 else "M1"

    def step(self) -> None:
        model = self.model
        self.engaged = False
        death = 1.0 / self.lifespan_h + model.effects["macrophage_depletion"]
        if self.random.random() < death:
            self.die()
            return
        self.polarise()
        if not self.m2:
            targets = [a for a in neighbour_agents(self.cell) if a.KIND == Kind.CANCER]
            if targets:
                self.engaged = True
                self.attack(self.random.choice(targets))
                return  # held by its target this hour
        self.roam()

    def signals(self) -> tuple[float, float]:
        """(toward M2, toward M1) at its site, each 0-1."""
        model, p = self.model, self.model.p
        site = self.site.coordinate
        hypoxic = 1.0 if model.oxygen.data[site] < p["hypoxic_threshold"] else 0.0
        to_m2 = max(hypoxic, self.tgfb_response())
        return to_m2, float(model.ifng_hill[site])

    def polarise(self) -> None:
        model = self.model
        rate = 1.0 / model.p["macrophage_polarisation_time_h"]
        to_m2, to_m1 = self.signals()
        if self.m2:
            prob = rate * to_m1 + model.effects["macrophage_repolarisation"]
        else:
            prob = rate * to_m2
        if self.random.random() < prob:
            self.m2 = not self.m2

    def attack(self, target) -> None:
        """An M1 macrophage on a cancer cell: IFN-gamma release, and phagocytosis."""
        model, p = self.model, self.model.p
        model.ifng_source[self.site.coordinate] += p["macrophage_ifng_secretion"]
        if self.random.random() < p["macrophage_kill_prob"]:
            target.fate = PHAGOCYTOSED
            target.die()
            model.macrophage_kills += 1
            self.kills += 1

    def roam(self) -> None:
        """Up to ``speed`` moves up the chemokine gradient, squeezing past a cancer cell with
        ``tcell_infiltration`` when boxed in (``ImmuneCell.advance``, as CTLs do)."""
        for _ in range(self.speed):
            if not self.advance():
                return
