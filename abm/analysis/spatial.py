"""Spatial measurements on a model's site layers, for analysis and validation.

Used by ``experiments/validation/run_facts.py`` and the statistical tests (``docs/validation.md``:
PD-L1 against distance to T cells, immune phenotypes, death against neighbouring CTLs).
Distances are in micrometres (``abm.params.SITE_UM`` per site); densities in cells per mm².
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from abm.agents import Kind
from abm.params import SITE_UM

SITE_MM2 = (SITE_UM / 1000.0) ** 2


def distance_to_ctl_um(kind: np.ndarray) -> np.ndarray:
    """Each site's distance to the nearest CTL (um; 0 on a CTL)."""
    return ndimage.distance_transform_edt(kind != Kind.TCELL) * SITE_UM


def tumour_outline(kind: np.ndarray) -> np.ndarray:
    """The tumour's area: the cancer mask, closed (2 sites) and with its holes filled, so sites
    inside the tumour held by T cells or left empty by kills count as tumour."""
    return ndimage.binary_fill_holes(ndimage.binary_closing(kind == Kind.CANCER, iterations=2))


def ctl_density_by_region(
    kind: np.ndarray, depth_um: float = 150.0, min_sites: int = 50
) -> dict[str, Any]:
    """CTLs per mm² inside the tumour outline, in its core (deeper than ``depth_um``) and in a
    band of ``depth_um`` around it (NaN for a region of fewer than ``min_sites`` sites), with
    the numbers of CTLs and cancer cells."""
    tumour = tumour_outline(kind)
    ctl = kind == Kind.TCELL
    depth = ndimage.distance_transform_edt(tumour) * SITE_UM
    outside = ndimage.distance_transform_edt(~tumour) * SITE_UM
    regions = {
        "inside": tumour,
        "core": tumour & (depth > depth_um),
        "band": ~tumour & (outside <= depth_um),
    }
    out: dict[str, Any] = {
        name: ctl[r].sum() / (r.sum() * SITE_MM2) if r.sum() >= min_sites else float("nan")
        for name, r in regions.items()
    }
    out.update(ctl=int(ctl.sum()), cancer=int((kind == Kind.CANCER).sum()))
    return out


def cancer_cells_and_contacts(model) -> tuple[list, np.ndarray]:
    """Every cancer cell and the number of CTLs on its 8 neighbouring sites (call before a step;
    after it, ``cell.cell is None`` tells which were killed)."""
    xs, ys = np.nonzero(model.kind == Kind.CANCER)
    cells = [model.agent_at[x, y] for x, y in zip(xs.tolist(), ys.tolist(), strict=True)]
    return cells, model.ctl_contacts()[xs, ys]
