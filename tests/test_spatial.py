"""abm.analysis.spatial on hand-made layers: distances in um, the tumour outline, CTL densities."""

from __future__ import annotations

import numpy as np

from abm.agents import Kind
from abm.analysis.spatial import SITE_MM2, ctl_density_by_region, distance_to_ctl_um, tumour_outline
from abm.params import SITE_UM


def disc(size: int = 60, radius: int = 20) -> np.ndarray:
    x, y = np.mgrid[:size, :size]
    kind = np.full((size, size), Kind.EMPTY, dtype=np.int8)
    kind[(x - size // 2) ** 2 + (y - size // 2) ** 2 <= radius**2] = Kind.CANCER
    return kind


def test_distance_to_ctl_is_in_micrometres():
    kind = np.full((10, 10), Kind.EMPTY, dtype=np.int8)
    kind[5, 5] = Kind.TCELL
    dist = distance_to_ctl_um(kind)
    assert dist[5, 5] == 0 and dist[5, 6] == SITE_UM and dist[5, 9] == 4 * SITE_UM


def test_outline_fills_holes_left_by_kills_and_t_cells():
    kind = disc()
    kind[30, 30], kind[31, 30] = Kind.EMPTY, Kind.TCELL  # a kill's gap and a T cell inside
    outline = tumour_outline(kind)
    assert outline[30, 30] and outline[31, 30] and not outline[0, 0]


def test_ctls_at_the_rim_make_an_excluded_tumour():
    kind = disc(radius=20)
    x, y = np.mgrid[:60, :60]
    ring = (np.hypot(x - 30, y - 30) > 21) & (np.hypot(x - 30, y - 30) <= 23)
    kind[ring] = Kind.TCELL
    d = ctl_density_by_region(kind, depth_um=150.0)
    assert d["core"] == 0 and d["band"] > 0 and d["ctl"] == ring.sum()
    assert d["cancer"] == (disc(radius=20) == Kind.CANCER).sum()
    band_sites = d["ctl"] / (d["band"] * SITE_MM2)  # the band holds every CTL
    assert 0 < band_sites < 60 * 60
