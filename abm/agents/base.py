"""What every cell on the grid shares: its kind, placement, death and migration."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar

from mesa.discrete_space import CellAgent

if TYPE_CHECKING:
    from mesa.discrete_space import Cell

    from abm.model import TumorModel


class Kind(IntEnum):
    """What occupies a grid site; the model keeps a numpy layer of these for vectorised work."""

    EMPTY = 0
    CANCER = 1
    TCELL = 2
    CART = 3
    TREG = 4
    MDSC = 5


class TissueCell(CellAgent):
    """A cell occupying one grid site (``capacity=1``).

    Every change of position goes through :meth:`place` and :meth:`leave`, which keep the model's
    ``kind`` layer in step with Mesa's grid.
    """

    KIND: ClassVar[Kind]
    model: TumorModel

    # "cell" is ambiguous here: Mesa's ``CellAgent.cell`` is the grid site the agent occupies,
    # while this class is a biological cell. ``site`` and ``alive`` say which is meant (``cell``
    # keeps working: Mesa needs it).
    @property
    def site(self) -> Cell | None:
        """The grid site this cell occupies (Mesa's ``Cell``), or None once it is gone."""
        return self.cell

    @property
    def alive(self) -> bool:
        """Still in the tissue: False once the cell has died or been killed."""
        return self.cell is not None

    def place(self, cell: Cell) -> None:
        """Occupy ``cell`` (which must be empty)."""
        self.cell = cell
        x, y = cell.coordinate
        self.model.kind[x, y] = self.KIND

    def leave(self) -> None:
        """Vacate the current site (before moving or dying)."""
        x, y = self.cell.coordinate
        self.model.kind[x, y] = Kind.EMPTY

    def move_to(self, cell: Cell) -> None:
        """Move to an empty neighbouring site."""
        self.leave()
        self.place(cell)

    def die(self) -> None:
        """Remove the cell from the tissue and the model."""
        self.leave()
        self.remove()

    def free_neighbours(self) -> list[Cell]:
        """Empty sites of the Moore neighbourhood.

        This is the hottest line of the model; ``Cell.is_empty`` is a property around
        ``len(cell._agents)``, so read the list directly (Mesa is pinned to 3.5.*)."""
        return [c for c in self.cell.connections.values() if not c._agents]


class ImmuneCell(TissueCell):
    """A migrating immune cell: several moves per hour, biased up the chemokine gradient.

    Each move goes, with probability ``chemotaxis_bias``, to the free neighbour with the most
    chemokine if that is more than here, and otherwise to a random free neighbour (a biased
    random walk, as PhysiCell's immune cells and Kather et al. 2017).
    """

    speed: int  # moves per hour
    lifespan_h: float

    def outlived(self) -> bool:
        """Random death with the mean lifespan (an exponential lifetime)."""
        return self.random.random() < 1.0 / self.lifespan_h

    def next_site(self) -> Cell | None:
        free = self.free_neighbours()
        if not free:
            return None
        chemokine = self.model.chemokine.data
        if self.random.random() < self.model.p["chemotaxis_bias"]:
            best = max(free, key=lambda c: chemokine[c.coordinate])
            if chemokine[best.coordinate] > chemokine[self.site.coordinate]:
                return best
        return self.random.choice(free)

    def migrate(self, moves: int) -> None:
        """Make up to ``moves`` moves."""
        for _ in range(moves):
            site = self.next_site()
            if site is None:
                return
            self.move_to(site)
