"""The fast engine's census and per-hour maps as single compiled passes over the layers.

Each function computes what a ``TumorModel`` method computes with several numpy passes over the
whole grid, and names it; ``abm/fast/mirror.py`` fingerprints those methods, and
``tests/test_fast_fields.py`` checks that the results are the same on the same state.

- :func:`take_census`: ``TumorModel._census`` (one pass over the sites).
- :func:`near`: ``abm.model._neighbourhood`` (sites within a Chebyshev radius of a cell of a
  kind), by stamping a square around each such cell (they are few: Tregs, MDSCs, M2
  macrophages) instead of a maximum filter over the grid.
- :func:`draw_dividers`: ``TumorModel._draw_dividers``: the cancer cells with a free neighbour
  in the same (row-major) order, the same uniform draw per cell, the division probability of
  ``division_probability_map`` at those sites only.
- :func:`collapse_vessels`: ``TumorModel._collapse_vessels``, counting the solid neighbours of
  the vessels only.
"""

from __future__ import annotations

import numba
import numpy as np

from abm.agents.base import Kind
from abm.agents.cancer import N_ANTIGENS

_CANCER, _EMPTY, _NECROTIC = int(Kind.CANCER), int(Kind.EMPTY), int(Kind.NECROTIC)
_N_KINDS = len(Kind)


@numba.njit(cache=True)
def _grid_census(kind, mhc, oxygen, hypoxic_threshold, antigenicity, car_negative,
                 pdl1_base, pdl1_induced, induction, antigens, clone, n_clones, n_kinds,
                 n_antigens):  # pragma: no cover - compiled
    counts = np.zeros(n_kinds, dtype=np.int64)
    sums = np.zeros(5)  # mhc, hypoxic, antigenicity, car-negative, pd-l1
    antigen_counts = np.zeros(n_antigens, dtype=np.int64)
    seen = np.zeros(max(n_clones, 1), dtype=np.bool_)
    clones = 0
    w, h = kind.shape
    for x in range(w):
        for y in range(h):
            k = kind[x, y]
            counts[k] += 1
            if k != 1:  # Kind.CANCER
                continue
            sums[0] += mhc[x, y]
            if oxygen[x, y] < hypoxic_threshold:
                sums[1] += 1.0
            sums[2] += antigenicity[x, y]
            if car_negative[x, y]:
                sums[3] += 1.0
            sums[4] += min(1.0, pdl1_base[x, y] + induction * pdl1_induced[x, y])
            a = antigens[x, y]
            for b in range(n_antigens):
                if a & (1 << b):
                    antigen_counts[b] += 1
            c = clone[x, y]
            if c >= 0:
                if c >= seen.size:  # a clone id beyond the model's counter: grow
                    grown = np.zeros(2 * c + 1, dtype=np.bool_)
                    grown[: seen.size] = seen
                    seen = grown
                if not seen[c]:
                    seen[c] = True
                    clones += 1
    return counts, sums, antigen_counts, clones


def take_census(model) -> None:
    """``TumorModel._census`` on the fast engine's layers (one compiled pass)."""
    t, p = model.tissue, model.p
    counts, sums, antigen_counts, clones = _grid_census(
        t.kind, t.mhc, model.oxygen.data, float(p["hypoxic_threshold"]), t.antigenicity,
        t.car_negative, t.pdl1_base, t.pdl1_induced, float(p["pdl1_induction"]), t.antigens,
        t.clone, int(model._next_clone), _N_KINDS, N_ANTIGENS)
    n = model.n_cancer = int(counts[_CANCER])
    model.n_tcells = int(counts[Kind.TCELL])
    model.n_cart = int(counts[Kind.CART])
    model.n_tregs = int(counts[Kind.TREG])
    model.n_mdscs = int(counts[Kind.MDSC])
    model.n_necrotic = int(counts[_NECROTIC])
    model.n_vessels = len(model.vessels)
    model.n_macrophages = int(counts[Kind.MACROPHAGE])
    model.m2_fraction = (int(model.m2_map().sum()) / model.n_macrophages
                         if model.n_macrophages else 0.0)
    model.n_nk = int(counts[Kind.NK])
    model.mean_mhc = float(sums[0] / n) if n else 0.0
    if n:
        model.hypoxic_fraction = float(sums[1] / n)
        model.mean_antigenicity = float(sums[2] / n)
        model.antigen_negative_fraction = float(sums[3] / n)
        model.mean_pdl1 = float(sums[4] / n)
        model.clone_count = int(clones)
        model.antigen_counts = antigen_counts
    else:
        model.mean_antigenicity = model.antigen_negative_fraction = model.mean_pdl1 = 0.0
        model.hypoxic_fraction = 0.0
        model.clone_count = 0
        model.antigen_counts = np.zeros(N_ANTIGENS, dtype=int)
    model._census_killers()
    node = getattr(model, "lymph_node", None)
    primed = node.primed_total if node is not None else model.primed_by_antigen
    model.primed_antigens = int(np.count_nonzero(primed))
    model.primed_ctls = int(primed.sum())
    for treatment in model.treatments.values():
        for name, value in treatment.census().items():
            setattr(model, name, value)


@numba.njit(cache=True)
def _stamp(mask, radius, out):  # pragma: no cover - compiled
    w, h = mask.shape
    for x in range(w):
        for y in range(h):
            if mask[x, y]:
                for i in range(max(0, x - radius), min(w, x + radius + 1)):
                    for j in range(max(0, y - radius), min(h, y + radius + 1)):
                        out[i, j] = True


def near(mask: np.ndarray, radius: int) -> np.ndarray:
    """``abm.model._neighbourhood``: True within ``radius`` (Chebyshev) of a True site."""
    out = np.zeros(mask.shape, dtype=bool)
    _stamp(np.ascontiguousarray(mask), int(radius), out)
    return out


@numba.njit(cache=True)
def _with_room(kind):  # pragma: no cover - compiled
    """Row-major sites of cancer cells with an empty site among their 8 neighbours."""
    w, h = kind.shape
    xs = np.empty(w * h, dtype=np.int64)
    ys = np.empty(w * h, dtype=np.int64)
    n = 0
    for x in range(w):
        for y in range(h):
            if kind[x, y] != 1:  # Kind.CANCER
                continue
            room = False
            for i in range(max(0, x - 1), min(w, x + 2)):
                for j in range(max(0, y - 1), min(h, y + 2)):
                    if kind[i, j] == 0:  # Kind.EMPTY
                        room = True
            if room:
                xs[n] = x
                ys[n] = y
                n += 1
    return xs[:n], ys[:n]


def draw_dividers(model) -> tuple[np.ndarray, np.ndarray]:
    """``TumorModel._draw_dividers`` (the same maps, order and draws)."""
    p = model.p
    kind = model.tissue.kind
    radius = p["suppression_radius_sites"]
    model.mdsc_near = near(kind == Kind.MDSC, radius)
    model.m2_near = near(model.m2_map(), radius)
    xs, ys = _with_room(kind)
    if not xs.size:
        return xs, ys
    prob = model.oxygen_growth[xs, ys] / p["division_time_h"]
    prob = prob * (1.0 - p["ifng_cytostasis"] * model.ifng_hill[xs, ys])
    prob = np.where(model.mdsc_near[xs, ys], prob * (1.0 + p["mdsc_growth_boost"]), prob)
    prob = np.where(model.m2_near[xs, ys], prob * (1.0 + p["m2_growth_boost"]), prob)
    divides = model.rng.random(xs.size) < np.minimum(prob, 1.0)
    return xs[divides], ys[divides]


@numba.njit(cache=True)
def _solid_around(kind, vx, vy):  # pragma: no cover - compiled
    w, h = kind.shape
    out = np.zeros(vx.size, dtype=np.int64)
    for v in range(vx.size):
        x, y = vx[v], vy[v]
        for i in range(max(0, x - 1), min(w, x + 2)):
            for j in range(max(0, y - 1), min(h, y + 2)):
                if (i != x or j != y) and (kind[i, j] == 1 or kind[i, j] == 6):
                    out[v] += 1
    return out


def collapse_vessels(model) -> None:
    """``TumorModel._collapse_vessels`` (the same draws), counting around the vessels only."""
    days = model.p["vessel_collapse_days"]
    if days is None or not model.vessels:
        return
    xs, ys = np.array(model.vessels, dtype=np.int64).T
    enclosed = np.flatnonzero(_solid_around(model.tissue.kind, xs, ys) == 8)
    if not enclosed.size:
        return
    collapses = model.rng.random(enclosed.size) < -np.expm1(-1.0 / (days * 24.0))
    gone = [model.vessels[i] for i in enclosed[collapses].tolist()]
    if gone:
        gone_set = set(gone)
        model.vessels = [v for v in model.vessels if v not in gone_set]
        model.collapsed_vessels += gone
        model.oxygen.unpin(gone)
