"""Every use of private internals of Mesa (and of the standard library), in one place.

Mesa is pinned to 3.5.* (``pyproject.toml``). The model reads two private attributes because the
public API copies or checks on every call, and these reads are the hottest lines of the model:

- ``Cell._agents``: the list behind ``Cell.agents`` (which returns a copy on every call) and
  ``Cell.is_empty`` (a property around ``len(_agents)``);
- ``OrthogonalMooreGrid._cells``: the coordinate -> ``Cell`` dict behind ``grid[...]``.

On a Mesa upgrade, check these against Mesa's source (``mesa/discrete_space/cell.py`` and
``grid.py``) and run ``tests/test_tissue.py`` and ``tests/test_model.py``.

From the standard library: ``ProcessPoolExecutor._processes`` (:func:`pool_processes`), the only
way to terminate a pool's workers at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mesa.discrete_space import Cell, CellAgent, OrthogonalMooreGrid


def grid_cells(grid: OrthogonalMooreGrid) -> dict[tuple[int, ...], Cell]:
    """Mesa's own coordinate -> site dict (not a copy)."""
    return grid._cells


def free_neighbours(agent: CellAgent) -> list[Cell]:
    """Empty sites of the Moore neighbourhood of ``agent``'s site, in Mesa's neighbour order.

    Used as the method ``TissueCell.free_neighbours`` (assigned, not wrapped, so it costs no
    extra call: it is the hottest line of the model)."""
    return [c for c in agent.cell.connections.values() if not c._agents]


def neighbour_agents(site: Cell) -> list[Any]:
    """The agents on the neighbouring sites of ``site``, in Mesa's neighbour order (what
    ``[a for c in site.connections.values() for a in c.agents]`` gives, without copying each
    site's list)."""
    return [a for c in site.connections.values() for a in c._agents]


class AgentLookup:
    """``lookup[x, y]``: the agent at a site, or None, read from Mesa's grid.

    (Not a numpy object array: the cycle collector cannot see into those, so model -> array ->
    agent -> model cycles would keep every finished model in memory.)
    """

    __slots__ = ("_cells",)

    def __init__(self, grid: OrthogonalMooreGrid) -> None:
        self._cells = grid._cells

    def __getitem__(self, site: tuple[int, int]) -> Any:
        try:  # a tuple of ints (numpy integers hash and compare equal to ints)
            agents = self._cells[site]._agents
        except (TypeError, KeyError):  # e.g. a numpy array, or floats like (3.0, 4.0)
            agents = self._cells[tuple(int(i) for i in site)]._agents
        return agents[0] if agents else None


def pool_processes(pool: Any) -> list[Any]:
    """The worker processes of a ``concurrent.futures.ProcessPoolExecutor`` (its private
    ``_processes``; empty if there are none or the attribute is gone): the standard library
    offers no public way to terminate them."""
    return list((getattr(pool, "_processes", None) or {}).values())
