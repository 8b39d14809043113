"""The tissue: who occupies each grid site, and the per-site layers that mirror it.

Mesa's grid holds the agents; counting, masks and field sources need numpy layers of the same
facts (what occupies each site, and the traits of the cancer cell there), so that the interior
of a dense tumour costs nothing per step. :class:`Tissue` owns both: its methods are the only
way a cell is placed, removed, moved, swapped or born onto a site, and each one updates Mesa's
grid and every layer together, so no move can forget a layer. The agents' own ``place``,
``move_to`` and ``die`` call these methods.

Invariants (checked by ``tests/test_tissue.py``): ``kind[x, y]`` is the ``KIND`` of the agent at
(x, y) or ``Kind.EMPTY``; at a cancer cell's site the trait layers hold its traits; everywhere
else they hold their empty values (0, or -1 for ``clone``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from abm.agents.base import Kind
from abm.compat import AgentLookup

if TYPE_CHECKING:
    from mesa.discrete_space import Cell, OrthogonalMooreGrid

    from abm.agents.base import TissueCell
    from abm.agents.cancer import CancerCell

_EMPTY = int(Kind.EMPTY)
_CANCER = int(Kind.CANCER)


class Tissue:
    """Mesa's grid plus the per-site layers, kept in step.

    Layers (arrays of the grid's shape, written only by this class):

    - ``kind``: what occupies each site (``Kind``);
    - traits of the cancer cell at each site: ``antigens`` (bitmask), ``antigenicity``,
      ``pdl1_base``, ``mhc`` (MHC-I presentation, 0-1), ``car_negative`` (lacks the CAR-T
      target), ``clone`` (-1 = none), and
      ``pdl1_induced`` (its IFN-gamma-induced PD-L1 state, 0-1: a state of the cell, not a
      heritable trait, so it lives only here).

    ``agent_at[x, y]`` is the agent at a site, or None.
    """

    def __init__(self, grid: OrthogonalMooreGrid) -> None:
        self.grid = grid
        self._allocate(tuple(grid.dimensions))
        self.agent_at = AgentLookup(grid)

    def _allocate(self, shape: tuple[int, int]) -> None:
        """The layers, empty (the fast engine, ``abm.fast``, keeps the same layers without
        Mesa's grid)."""
        self.kind = np.zeros(shape, dtype=np.int8)
        self.antigens = np.zeros(shape, dtype=np.uint8)
        self.antigenicity = np.zeros(shape, dtype=np.float32)
        self.pdl1_base = np.zeros(shape, dtype=np.float32)
        self.mhc = np.zeros(shape, dtype=np.float32)
        self.pdl1_induced = np.zeros(shape, dtype=np.float64)
        self.car_negative = np.zeros(shape, dtype=bool)
        self.clone = np.full(shape, -1, dtype=np.int32)
        # the layers that travel with a cancer cell, and their value where there is none
        self._traits = (self.antigens, self.antigenicity, self.pdl1_base, self.pdl1_induced,
                        self.car_negative, self.clone, self.mhc)
        self._none = (0, 0.0, 0.0, 0.0, False, -1, 0.0)

    # --- the only ways a cell occupies, leaves or changes its site ---------------------------
    def place(self, agent: TissueCell, site: Cell) -> None:
        """Put ``agent`` (not on the grid yet) on the empty ``site``."""
        if agent.cell is not None:
            raise ValueError(
                f"{type(agent).__name__} {agent.unique_id} is already at {agent.cell.coordinate}:"
                " a cell on the grid moves (move_to), it is not placed again"
            )
        agent.cell = site  # Mesa raises if the site is full
        x, y = site.coordinate
        self.kind[x, y] = agent.KIND
        if agent.KIND == _CANCER:
            self.record(agent)

    def remove(self, agent: TissueCell) -> None:
        """Take ``agent`` off the grid (it died); its site becomes empty."""
        x, y = agent.cell.coordinate
        agent.cell = None
        self.kind[x, y] = _EMPTY
        if agent.KIND == _CANCER:
            for layer, none in zip(self._traits, self._none, strict=True):
                layer[x, y] = none

    def move(self, agent: TissueCell, site: Cell) -> None:
        """Move ``agent`` to the empty ``site``; a cancer cell's traits go with it."""
        old = agent.cell.coordinate
        agent.cell = site
        kind = self.kind
        kind[old] = _EMPTY
        kind[site.coordinate] = agent.KIND
        if agent.KIND == _CANCER:
            new = site.coordinate
            for layer, none in zip(self._traits, self._none, strict=True):
                layer[new] = layer[old]
                layer[old] = none

    def swap(self, a: TissueCell, b: TissueCell) -> None:
        """``a`` and ``b`` exchange sites (a T cell squeezing past a cancer cell); each cell's
        layer values go with it."""
        site_a, site_b = a.cell, b.cell
        a.cell = None  # capacity 1: free both sites before either moves in
        b.cell = None
        a.cell = site_b
        b.cell = site_a
        xa, xb = site_a.coordinate, site_b.coordinate
        self.kind[xa], self.kind[xb] = b.KIND, a.KIND
        for layer in self._traits:  # empty values where there is no cancer cell: a plain swap
            layer[xa], layer[xb] = layer[xb], layer[xa]

    def add_daughter(self, parent: TissueCell, daughter: TissueCell, site: Cell) -> None:
        """Place a new ``daughter`` of ``parent`` on the empty ``site``. It inherits the
        parent's IFN-gamma-induced PD-L1 state (a cell state passed on at division)."""
        self.place(daughter, site)
        self.pdl1_induced[site.coordinate] = self.pdl1_induced[parent.cell.coordinate]

    # --- traits and states ----------------------------------------------------------------
    def record(self, cell: CancerCell) -> None:
        """Write the heritable traits of the cancer cell ``cell`` into the layers at its site.

        Traits are fixed at birth; call this again only if a test or a tool changes them by hand.
        """
        x, y = cell.cell.coordinate
        self.antigens[x, y] = cell.antigens
        self.antigenicity[x, y] = cell.antigenicity
        self.pdl1_base[x, y] = cell.pdl1_base
        self.mhc[x, y] = cell.mhc
        self.car_negative[x, y] = not cell.car_target
        self.clone[x, y] = cell.clone

    def relax_pdl1(self, response: np.ndarray, rate: float,
                   cancer: np.ndarray | None = None) -> None:
        """IFN-gamma-induced PD-L1 of every cancer cell relaxes toward ``response`` (its Hill
        response to local IFN-gamma, 0-1) by the fraction ``rate`` of the gap this hour.
        ``cancer`` is ``kind == Kind.CANCER`` if the caller has it already."""
        if cancer is None:
            cancer = self.kind == _CANCER
        self.pdl1_induced += cancer * rate * (response - self.pdl1_induced)
