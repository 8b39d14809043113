"""Natural killer (NK) cells: they kill cancer cells that lost MHC-I ("missing self").

NK cells carry inhibitory receptors for MHC-I (KIR, NKG2A): a cell with full MHC-I is spared, a
cell that lost it is killed (Ljunggren & Kaerre 1990; Garrido et al. 2016). So losing MHC-I, the
escape from CTLs, exposes a cell to NK cells.

Each hour an NK cell: dies with its lifespan (``nk_lifespan_days``); if it has killed
``nk_kill_limit`` targets it is spent (serial killing is limited: Bhat & Watzl 2007; Prager et
al. 2019) and lingers at ``tcell_exhausted_speed``; otherwise it looks for a neighbouring cancer
cell with missing self (MHC-I below 1, chosen with weight 1 - MHC-I), moving ``tcell_speed``
sites up the chemokine gradient until it finds one (squeezing past cancer cells with
``tcell_infiltration``, as CTLs). On a target it releases IFN-gamma (``ifng_secretion``, as an
engaged CTL: NK cells are an early IFN-gamma source) and kills with probability
``nk_kill_prob`` x (1 - MHC-I) x (1 - ``nk_tgfb_suppression`` x the TGF-beta response) per hour:
activation rises linearly as inhibitory MHC-I falls; PD-L1 does not block it; the suppressive
(TGF-beta-like) field does (TGF-beta down-regulates NKG2D/NKp30 and NK cytotoxicity: Castriconi
et al. 2003; Viel et al. 2016). Killed cells get the fate ``"nk_killed"``.
"""

from __future__ import annotations

from abm.agents.base import ImmuneCell, Kind
from abm.compat import neighbour_agents

NK_KILLED = "nk_killed"  # fate of a cancer cell killed by an NK cell


class NKCell(ImmuneCell):
    """A natural killer cell."""

    KIND = Kind.NK

    def __init__(self, model):
        super().__init__(model)
        p = model.p
        self.speed = p["tcell_speed"]
        self.lifespan_h = p["nk_lifespan_days"] * 24.0
        self.kill_limit = p["nk_kill_limit"]
        self.kills = 0
        self.engaged = False

    @property
    def spent(self) -> bool:
        """Has killed ``nk_kill_limit`` targets: no more killing (serial-killing limit)."""
        return self.kills >= self.kill_limit

    def activation(self, cell) -> float:
        """Missing-self activation by a cancer cell, 0-1: 1 - its MHC-I."""
        return max(0.0, 1.0 - cell.mhc)

    def kill_probability(self, cell) -> float:
        """Per-hour kill probability of ``cell`` after suppression by the suppressive field."""
        p = self.model.p
        suppression = p["nk_tgfb_suppression"] * self.tgfb_response()
        return p["nk_kill_prob"] * self.activation(cell) * (1.0 - suppression)

    def step(self) -> None:
        self.engaged = False
        if self.outlived():
            self.die()
            return
        if self.spent:
            self.migrate(self.model.p["tcell_exhausted_speed"])
            return
        self.hunt()

    def find_target(self):
        candidates = [a for a in neighbour_agents(self.cell)
                      if a.KIND == Kind.CANCER and a.mhc < 1.0]
        if not candidates:
            return None
        weights = [self.activation(a) for a in candidates]
        return self.random.choices(candidates, weights=weights)[0]

    def attack(self, target) -> None:
        model = self.model
        self.engaged = True
        model.ifng_source[self.site.coordinate] += model.p["ifng_secretion"]
        if self.random.random() < self.kill_probability(target):
            target.fate = NK_KILLED
            target.die()
            model.nk_kills += 1
            self.kills += 1
