"""What every cell on the grid shares: its kind, placement, death and migration."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar

from mesa.discrete_space import CellAgent

from abm import compat

if TYPE_CHECKING:
    from mesa.discrete_space import Cell

    from abm.model import TumorModel


class Kind(IntEnum):
    """What occupies a grid site; the tissue keeps a numpy layer of these (``Tissue.kind``)."""

    EMPTY = 0
    CANCER = 1
    TCELL = 2
    CART = 3
    TREG = 4
    MDSC = 5
    NECROTIC = 6  # debris of a cancer cell that died of necrosis, until cleared
    MACROPHAGE = 7  # tumour-associated macrophage (M1 or M2: abm.agents.macrophage)
    NK = 8  # natural killer cell (abm.agents.nk)


class TissueCell(CellAgent):
    """A cell occupying one grid site (``capacity=1``).

    Every change of site goes through the model's :class:`~abm.tissue.Tissue` (``place``,
    ``move_to``, ``die`` here; ``Tissue.swap`` and ``Tissue.add_daughter``), which keeps
    Mesa's grid and the per-site layers in step.
    """

    KIND: ClassVar[Kind]
    model: TumorModel

    # "cell" is ambiguous here: Mesa's ``CellAgent.cell`` is the grid site the agent occupies,
    # while this class is a biological cell. ``site`` and ``alive`` say which is meant (``cell``
    # keeps working: Mesa needs it). ``site`` reuses Mesa's getter, so it costs what ``cell``
    # costs, and is read-only: moves go through the tissue.
    site = property(CellAgent.cell.fget,
                    doc="The grid site this cell occupies (Mesa's ``Cell``), or None once gone.")

    @property
    def alive(self) -> bool:
        """Still in the tissue: False once the cell has died or been killed."""
        return self.cell is not None

    def place(self, site: Cell) -> None:
        """Occupy the empty ``site`` (a new cell entering the tissue)."""
        self.model.tissue.place(self, site)

    def move_to(self, site: Cell) -> None:
        """Move to the empty ``site``."""
        self.model.tissue.move(self, site)

    def die(self) -> None:
        """Leave the tissue and the model."""
        self.model.tissue.remove(self)
        self.remove()

    # Empty sites of the Moore neighbourhood: the hottest line of the model, so it reads Mesa's
    # internals directly (abm/compat.py) and is assigned rather than wrapped (no extra call).
    free_neighbours = compat.free_neighbours


class ImmuneCell(TissueCell):
    """A migrating immune cell: several moves per hour, biased up the chemokine gradient.

    Each move goes, with probability ``chemotaxis_bias``, to the free neighbour with the most
    chemokine if that is more than here and at least ``chemokine_detection_limit`` (a level
    the cell can sense), and otherwise to a random free neighbour (a biased random walk, as
    PhysiCell's immune cells and Kather et al. 2017). Without the limit, cells would follow
    the gradient of a field decayed to 1e-25 a.u. after a tumour is cleared, and march to a
    corner of the grid.
    """

    speed: int  # moves per hour
    lifespan_h: float

    def tgfb_response(self) -> float:
        """Response to the suppressive (TGF-beta-like) factor at its site, 0-1: c / (c +
        ``tgfb_half_max``). CTLs and NK cells kill less, and macrophages turn M2, with it."""
        tgfb = self.model.tgfb.data[self.site.coordinate]
        return tgfb / (tgfb + self.model.p["tgfb_half_max"])

    def outlived(self) -> bool:
        """Random death with the mean lifespan (an exponential lifetime)."""
        return self.random.random() < 1.0 / self.lifespan_h

    def next_site(self) -> Cell | None:
        free = self.free_neighbours()
        if not free:
            return None
        chemokine = self.model.chemokine.data
        p = self.model.p
        if self.random.random() < p["chemotaxis_bias"]:
            best = max(free, key=lambda c: chemokine[c.coordinate])
            level = chemokine[best.coordinate]
            if level > chemokine[self.site.coordinate] and level >= p["chemokine_detection_limit"]:
                return best
        return self.random.choice(free)

    def migrate(self, moves: int) -> None:
        """Make up to ``moves`` moves."""
        for _ in range(moves):
            site = self.next_site()
            if site is None:
                return
            self.move_to(site)

    # --- killers (CTLs, CAR-T and NK cells): seek a target, then attack it ------------------
    # A subclass that calls ``hunt`` defines ``find_target()`` (a neighbouring cancer cell it
    # would attack, or None) and ``attack(target)``.
    def hunt(self) -> None:
        """Look for a target here; otherwise move up to ``speed`` times, stopping as soon as one
        is found (killers arrest on their target, Boissonnas 2007), then attack it."""
        target = self.find_target()
        moves = 0
        while target is None and moves < self.speed:
            if not self.advance():
                break
            moves += 1
            target = self.find_target()
        if target is not None:
            self.attack(target)

    def advance(self) -> bool:
        """One move; squeeze past a cancer cell (``tcell_infiltration``) if boxed in. False if
        the cell cannot move."""
        site = self.next_site()
        if site is not None:
            self.move_to(site)
            return True
        if self.random.random() < self.model.p["tcell_infiltration"]:
            blockers = [a for a in compat.neighbour_agents(self.cell) if a.KIND == Kind.CANCER]
            if blockers:
                self.model.tissue.swap(self, self.random.choice(blockers))
                return True
        return False
