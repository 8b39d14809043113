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
    """Each site's distance to the nearest CTL (um; 0 on a CTL; inf everywhere when there is no
    CTL: scipy would measure to a point beyond the grid, a made-up distance)."""
    if not (kind == Kind.TCELL).any():
        return np.full(kind.shape, np.inf)
    return ndimage.distance_transform_edt(kind != Kind.TCELL) * SITE_UM


def tumour_outline(kind: np.ndarray) -> np.ndarray:
    """The tumour's area: the cancer mask, closed (2 sites) and with its holes filled, so sites
    inside the tumour held by T cells or left empty by kills count as tumour."""
    # necrotic debris is dead tumour tissue: part of the tumour's outline
    mass = (kind == Kind.CANCER) | (kind == Kind.NECROTIC)
    return ndimage.binary_fill_holes(ndimage.binary_closing(mass, iterations=2))


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
    after it, ``not cell.alive`` tells which were killed)."""
    xs, ys = np.nonzero(model.kind == Kind.CANCER)
    if model.agent_at is None:  # the fast engine (abm.fast): no cell objects, handles instead
        return model.watch_cancer_cells(xs, ys), model.ctl_contacts()[xs, ys]
    cells = [model.agent_at[x, y] for x, y in zip(xs.tolist(), ys.tolist(), strict=True)]
    return cells, model.ctl_contacts()[xs, ys]


# --- PD-L1 against CTLs (fact 3) ---------------------------------------------------------------

DIST_BINS_UM = (0, 60, 120, 240, 480, 960, 2000)  # bands of distance to the nearest CTL (um)


def mean_by_distance(
    kind: np.ndarray, values: np.ndarray, bins_um: tuple[float, ...] = DIST_BINS_UM,
    min_cells: int = 20,
) -> np.ndarray:
    """Mean of ``values`` over the cancer cells in each band ``[bins_um[i], bins_um[i+1])`` of
    distance to the nearest CTL (NaN for a band of fewer than ``min_cells`` cells)."""
    cancer = kind == Kind.CANCER
    dist = distance_to_ctl_um(kind)
    out = []
    for lo, hi in zip(bins_um[:-1], bins_um[1:], strict=True):
        sel = cancer & (dist >= lo) & (dist < hi)
        out.append(values[sel].mean() if sel.sum() >= min_cells else np.nan)
    return np.array(out)


def near_over_far(
    kind: np.ndarray, values: np.ndarray, near_um: float = 60.0,
    far_um: tuple[float, float] = (240.0, 960.0), min_cells: int = 100,
) -> float:
    """Mean of ``values`` over cancer cells within ``near_um`` of a CTL divided by that over
    cancer cells ``far_um[0]``-``far_um[1]`` from one (NaN if either group has fewer than
    ``min_cells`` cells)."""
    cancer = kind == Kind.CANCER
    dist = distance_to_ctl_um(kind)
    near = cancer & (dist < near_um)
    far = cancer & (dist >= far_um[0]) & (dist < far_um[1])
    if near.sum() < min_cells or far.sum() < min_cells:
        return float("nan")
    return float(values[near].mean() / values[far].mean())


def local_ctl_density(kind: np.ndarray, size: int = 5) -> np.ndarray:
    """Fraction of the ``size`` x ``size`` sites around each site held by a CTL (sites beyond
    the edge count as empty)."""
    return ndimage.uniform_filter((kind == Kind.TCELL).astype(float), size=size, mode="constant")


def pdl1_colocalisation(kind: np.ndarray, pdl1: np.ndarray, size: int = 5) -> dict[str, float]:
    """How PD-L1 follows CTLs in one snapshot: its correlation with the local CTL density
    (``local_ctl_density``) over all sites (``r_all``) and over cancer sites (``r_cancer``, if
    more than 10), and the mean PD-L1 of cancer cells with a CTL in their ``size`` x ``size``
    window over that of those without (``near_far``). NaN where undefined."""
    p, t = pdl1.ravel(), local_ctl_density(kind, size).ravel()
    c = (kind == Kind.CANCER).ravel()
    nan = float("nan")
    out = {"r_all": nan, "r_cancer": nan, "near_far": nan}
    if c.sum() > 10 and p[c].std() > 0 and t[c].std() > 0:
        out["r_cancer"] = float(np.corrcoef(p[c], t[c])[0, 1])
    if p.std() > 0:
        out["r_all"] = float(np.corrcoef(p, t)[0, 1])
    near, far = c & (t > 0), c & (t == 0)
    if near.sum() and far.sum():
        out["near_far"] = float(p[near].mean() / max(p[far].mean(), 1e-9))
    return out


# --- immune phenotypes --------------------------------------------------------------------------


def inside_over_band(density: dict[str, Any], min_ctls: int = 50) -> float:
    """CTL density inside the tumour over that of the band around it (``ctl_density_by_region``),
    NaN with fewer than ``min_ctls`` CTLs (a ratio of a handful of CTLs means nothing): about 1
    inflamed, near 0 excluded."""
    if density["ctl"] < min_ctls:
        return float("nan")
    return float(density["inside"] / density["band"])


def necrotic_core(kind: np.ndarray) -> dict[str, float]:
    """Where the debris is: the necrotic share of the sites within half the tumour's radius of
    its centre of mass (``inner``) and of the tumour's outer ring (``ring``, the tumour's sites
    beyond that), with the tumour's equivalent radius (``radius_um``, from the area of its
    outline). A necrotic core shows as ``inner`` well above ``ring``."""
    mass = tumour_outline(kind)
    if not mass.any():
        return {"inner": float("nan"), "ring": float("nan"), "radius_um": 0.0}
    cx, cy = ndimage.center_of_mass(mass)
    xs, ys = np.indices(kind.shape)
    r = np.hypot(xs - cx, ys - cy)
    radius = float(np.sqrt(mass.sum() / np.pi))
    necrotic = kind == Kind.NECROTIC
    inner = mass & (r < radius / 2)
    ring = mass & ~inner
    return {"inner": float(necrotic[inner].mean()) if inner.any() else float("nan"),
            "ring": float(necrotic[ring].mean()) if ring.any() else float("nan"),
            "radius_um": radius * SITE_UM}
