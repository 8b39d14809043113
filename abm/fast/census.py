"""The fast engine's census and per-hour maps as single compiled passes over the layers.

Each function computes what a ``TumorModel`` method computes with several numpy passes over the
whole grid, and names it; ``abm/fast/mirror.py`` fingerprints those methods, and
``tests/test_fast_fields.py`` checks that the results are the same on the same state.

- :func:`take_census`: ``TumorModel._census`` (one pass over the sites).
- :func:`near_cells`: ``abm.model._neighbourhood`` (sites within a Chebyshev radius of a cell
  of a kind), by stamping a square around each such cell, found in the immune-cell arrays (they
  are few: Tregs, MDSCs, M2 macrophages), instead of a maximum filter over the grid.
- :func:`draw_dividers`: ``TumorModel._draw_dividers``: the cancer cells with a free neighbour
  in the same (row-major) order, the same uniform draw per cell, the division probability of
  ``division_probability_map`` at those sites only.
- the rest of ``TumorModel._step_cancer_cells`` (below): the deaths and the debris clearance;
  :func:`cancer_hour` runs the whole of it up to the divisions in one call, drawing the
  engine's uniforms and permutation from ``model.rng`` itself (``kernels.np_uniforms``).
- :func:`killer_census`, :func:`select_cells`, :func:`compact_cells`: passes over the
  immune-cell arrays (``TumorModel._census_killers``, the cells of a kind in Mesa's agent
  order before the shuffle, dropping the dead); :func:`order_cells`: the cells of a kind,
  shuffled as ``rng.permutation`` shuffles them, and their kernel's seed.

The passes that allocate nothing are compiled without reference counting (``_nrt=False``):
numba's reference counts on the arrays handed to inlined helpers, atomic operations, cost
more than the work of a pass.
- :func:`collapse_vessels`: ``TumorModel._collapse_vessels``, counting the solid neighbours of
  the vessels only.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from abm.agents.base import Kind
from abm.agents.cancer import N_ANTIGENS
from abm.fast.kernels import _clear_cancer, _np_interval, np_seed, np_shuffle, np_uniforms

_CANCER, _EMPTY, _NECROTIC = int(Kind.CANCER), int(Kind.EMPTY), int(Kind.NECROTIC)
_TCELL, _CART, _TREG, _MDSC, _NK = (int(k) for k in (Kind.TCELL, Kind.CART, Kind.TREG, Kind.MDSC,
                                                     Kind.NK))
_N_KINDS = len(Kind)


@numba.njit(cache=True)
def _grid_census(kind, mhc, oxygen, hypoxic_threshold, antigenicity, car_negative,
                 pdl1_base, pdl1_induced, induction, antigens, clone, n_clones, n_kinds,
                 n_antigens):  # pragma: no cover - compiled
    counts = np.zeros(n_kinds, dtype=np.int64)
    # the sums in locals (the same additions in the same order as into an array)
    s_mhc = s_hypoxic = s_antigenicity = s_car_negative = s_pdl1 = 0.0
    masks = np.zeros(1 << n_antigens, dtype=np.int64)  # cells per antigen bitmask
    seen = np.zeros(max(n_clones, 1), dtype=np.bool_)  # never reassigned in the loop: fast
    clones = 0
    beyond = -1
    w, h = kind.shape
    empty = 0
    for x in range(w):
        for y in range(h):
            k = kind[x, y]
            if k == 0:  # Kind.EMPTY, most sites: counted apart (one add, no store)
                empty += 1
                continue
            counts[k] += 1
            if k != 1:  # Kind.CANCER
                continue
            s_mhc += mhc[x, y]
            if oxygen[x, y] < hypoxic_threshold:
                s_hypoxic += 1.0
            s_antigenicity += antigenicity[x, y]
            if car_negative[x, y]:
                s_car_negative += 1.0
            s_pdl1 += min(1.0, pdl1_base[x, y] + induction * pdl1_induced[x, y])
            masks[antigens[x, y] & (masks.size - 1)] += 1
            c = clone[x, y]
            if c >= seen.size:  # a clone id beyond the model's counter: counted below
                beyond = max(beyond, c)
            elif c >= 0 and not seen[c]:
                seen[c] = True
                clones += 1
    if beyond >= 0:
        clones = _count_clones(kind, clone, beyond + 1)
    sums = np.array([s_mhc, s_hypoxic, s_antigenicity, s_car_negative, s_pdl1])
    antigen_counts = np.zeros(n_antigens, dtype=np.int64)
    for a in range(masks.size):
        if masks[a]:
            for b in range(n_antigens):
                if a & (1 << b):
                    antigen_counts[b] += masks[a]
    counts[0] += empty
    return counts, sums, antigen_counts, clones


@numba.njit(cache=True)
def _count_clones(kind, clone, size):  # pragma: no cover - compiled
    """The distinct clone ids (below ``size``) of the cancer cells."""
    seen = np.zeros(size, dtype=np.bool_)
    clones = 0
    w, h = kind.shape
    for x in range(w):
        for y in range(h):
            c = clone[x, y]
            if kind[x, y] == 1 and 0 <= c < size and not seen[c]:
                seen[c] = True
                clones += 1
    return clones


def take_census(model) -> None:
    """``TumorModel._census`` on the fast engine's layers (one compiled pass)."""
    t, p = model.tissue, model.p
    counts, sums, antigen_counts, clones = _grid_census(
        t.kind, t.mhc, model.oxygen.data, float(p["hypoxic_threshold"]), t.antigenicity,
        t.car_negative, t.pdl1_base, t.pdl1_induced, float(p["pdl1_induction"]), t.antigens,
        t.clone, int(model._next_clone), _N_KINDS, N_ANTIGENS)
    counts, sums = counts.tolist(), sums.tolist()  # Python ints and floats: the same values
    n = model.n_cancer = counts[_CANCER]
    model.n_tcells = counts[_TCELL]
    model.n_cart = counts[_CART]
    model.n_tregs = counts[_TREG]
    model.n_mdscs = counts[_MDSC]
    model.n_necrotic = counts[_NECROTIC]
    model.n_vessels = len(model.vessels)
    # n_macrophages and m2_fraction: model._census_killers, from the cell arrays
    model.n_nk = counts[_NK]
    if n:
        model.mean_mhc = sums[0] / n
        model.hypoxic_fraction = sums[1] / n
        model.mean_antigenicity = sums[2] / n
        model.antigen_negative_fraction = sums[3] / n
        model.mean_pdl1 = sums[4] / n
        model.clone_count = int(clones)
        model.antigen_counts = antigen_counts
    else:  # means over no cancer cells: NaN, not 0 (as TumorModel._census)
        model.mean_antigenicity = model.antigen_negative_fraction = model.mean_pdl1 = math.nan
        model.hypoxic_fraction = model.mean_mhc = math.nan
        model.clone_count = 0
        model.antigen_counts = np.zeros(N_ANTIGENS, dtype=int)
    model._census_killers()
    node = getattr(model, "lymph_node", None)
    primed = (node.primed_total if node is not None else model.primed_by_antigen).tolist()
    model.primed_antigens = len(primed) - primed.count(0)  # np.count_nonzero, on ints
    model.primed_ctls = sum(primed)
    for treatment in model.treatments.values():
        for name, value in treatment.census().items():
            setattr(model, name, value)


@numba.njit(cache=True, inline="always")
def _row_of(s, x, h):  # pragma: no cover - compiled
    """The row of flat site ``s`` (``s // h``), walking on from row ``x`` (the row of the
    previous site of an ascending list) rather than dividing; a division if ``s`` is behind."""
    if s < x * h:
        return s // h
    while s >= (x + 1) * h:
        x += 1
    return x


@numba.njit(cache=True, inline="always")
def _has_room(kf, s, x, y, w, h):  # pragma: no cover - compiled
    """An empty site (``Kind.EMPTY``) among the 8 neighbours of site ``s`` = ``(x, y)``
    (``kf``: the kind layer, flat)."""
    if 0 < x < w - 1 and 0 < y < h - 1:
        return (kf[s - h - 1] == 0 or kf[s - h] == 0 or kf[s - h + 1] == 0 or kf[s - 1] == 0
                or kf[s + 1] == 0 or kf[s + h - 1] == 0 or kf[s + h] == 0
                or kf[s + h + 1] == 0)
    for i in range(max(0, x - 1), min(w, x + 2)):
        for j in range(max(0, y - 1), min(h, y + 2)):
            if kf[i * h + j] == 0:
                return True
    return False


def draw_dividers(model) -> tuple[np.ndarray, np.ndarray]:
    """``TumorModel._draw_dividers`` (the same maps, order and draws)."""
    kind = model.tissue.kind
    sites = np.empty(kind.size, dtype=np.int64)
    n, _ = list_sites(kind, sites)
    return dividers(model, sites, n)


@numba.njit(cache=True)
def _enclosed(kind, vx, vy):  # pragma: no cover - compiled
    """Indices of the vessels whose 8 neighbours are all cancer cells or debris."""
    w, h = kind.shape
    out = np.empty(vx.size, dtype=np.int64)
    m = 0
    for v in range(vx.size):
        x, y = vx[v], vy[v]
        if not (0 < x < w - 1 and 0 < y < h - 1):  # fewer than 8 neighbours
            continue
        solid = True
        for i in range(x - 1, x + 2):
            for j in range(y - 1, y + 2):
                if (i != x or j != y) and kind[i, j] != 1 and kind[i, j] != 6:
                    solid = False
                    break
            if not solid:
                break
        if solid:
            out[m] = v
            m += 1
    return out[:m]


def vessel_sites(model) -> tuple[np.ndarray, np.ndarray]:
    """``np.array(model.vessels).T`` (x and y of the vessels), kept while ``model.vessels`` is
    the same list (collapse replaces the list)."""
    cached = getattr(model, "_vessel_sites", None)
    if cached is None or cached[0] is not model.vessels or cached[1] != len(model.vessels):
        xs, ys = np.array(model.vessels, dtype=np.int64).reshape(-1, 2).T
        cached = model._vessel_sites = (model.vessels, len(model.vessels),
                                        np.ascontiguousarray(xs), np.ascontiguousarray(ys))
    return cached[2], cached[3]


def collapse_vessels(model) -> None:
    """``TumorModel._collapse_vessels`` (the same draws), counting around the vessels only."""
    days = model.p["vessel_collapse_days"]
    if days is None or not model.vessels:
        return
    xs, ys = vessel_sites(model)
    enclosed = _enclosed(model.tissue.kind, xs, ys)
    if not enclosed.size:
        return
    cached = getattr(model, "_collapse_prob", None)
    if cached is None or cached[0] != days:  # the same value as computed every hour
        cached = model._collapse_prob = (days, -np.expm1(-1.0 / (days * 24.0)))
    collapses = model.rng.random(enclosed.size) < cached[1]
    gone = [model.vessels[i] for i in enclosed[collapses].tolist()]
    if gone:
        gone_set = set(gone)
        model.vessels = [v for v in model.vessels if v not in gone_set]
        model.collapsed_vessels += gone
        model.oxygen.unpin(gone)


# --- the cancer cells' hour (TumorModel._step_cancer_cells) as compiled passes ----------------
# The engine lists the cancer cells and the debris once (``list_sites``), then applies the
# deaths (``TumorModel._draw_cancer_deaths`` and ``_cancer_deaths``), the debris clearance
# (``_draw_debris_clearance``) and finds the dividers (``_draw_dividers``) from those lists,
# with the same uniform draws (numpy's, drawn by the engine between the passes) in the same
# (row-major, ``np.nonzero``) order.


@numba.njit(cache=True, _nrt=False)
def list_sites(kind, out):  # pragma: no cover - compiled
    """Row-major flat indices of the cancer cells into the front of ``out`` and of the debris
    into its back (``out[-1]`` the first, ``out[-2]`` the second, ...); their numbers."""
    flat = kind.reshape(-1)
    nc = 0
    nn = 0
    last = out.size - 1
    for s in range(flat.size):
        k = flat[s]
        if k == 1:  # Kind.CANCER
            out[nc] = s
            nc += 1
        elif k == 6:  # Kind.NECROTIC
            out[last - nn] = s
            nn += 1
    return nc, nn


@numba.njit(cache=True, _nrt=False)
def apply_cancer_deaths(sites, n, u, necrosis_prob, apoptosis, kind, antigens, antigenicity,
                        pdl1_base, pdl1_induced, car_negative, clone, mhc, dead, dead_antigens,
                        dead_apoptotic):  # pragma: no cover - compiled
    """``TumorModel._draw_cancer_deaths`` and ``_cancer_deaths`` on the layers: the cancer cell
    at ``sites[k]`` dies if ``u[k] < apoptosis + (1 - apoptosis) * necrosis_prob``, by apoptosis
    if ``u[k] < apoptosis`` (the site is freed) else by necrosis (it becomes debris); its trait
    layers are cleared (``Tissue``'s empty values). The dead go to ``dead`` (flat site, in
    order), ``dead_antigens`` and ``dead_apoptotic``; returns their number."""
    h = kind.shape[1]
    m = 0
    x = 0
    for k in range(n):
        s = sites[k]
        x = _row_of(s, x, h)
        y = s - x * h
        uk = u[k]
        if not uk < apoptosis + (1.0 - apoptosis) * necrosis_prob[x, y]:
            continue
        apoptotic = uk < apoptosis
        dead[m] = s
        dead_antigens[m] = antigens[x, y]
        dead_apoptotic[m] = apoptotic
        m += 1
        _clear_cancer(x, y, kind, antigens, antigenicity, pdl1_base, mhc, pdl1_induced,
                      car_negative, clone)
        if not apoptotic:
            kind[x, y] = 6  # Kind.NECROTIC: debris stays
    return m


@numba.njit(cache=True, _nrt=False)
def clear_debris(sites, n_old, dead, dead_apoptotic, m, u, clearance, kind):  # pragma: no cover
    """``TumorModel._draw_debris_clearance`` after the deaths: the debris in row-major order
    (the old debris, ``sites``' back as ``list_sites`` left it, merged with the new, the
    necrotic among ``dead[:m]``), each cleared if its ``u`` is below ``clearance``."""
    h = kind.shape[1]
    last = sites.size - 1
    i = 0  # old debris
    j = 0  # the dead
    k = 0  # draws
    while True:
        while j < m and dead_apoptotic[j]:
            j += 1
        if i < n_old and (j >= m or sites[last - i] < dead[j]):
            s = sites[last - i]
            i += 1
        elif j < m:
            s = dead[j]
            j += 1
        else:
            break
        if u[k] < clearance:
            x = s // h
            kind[x, s - x * h] = 0  # Kind.EMPTY
        k += 1
    return k


@numba.njit(cache=True, _nrt=False)
def _dividers(sites, n, kind, growth, hill, mdsc_near, m2_near, division_time_h, cytostasis,
              mdsc_factor, m2_factor, xs, ys, prob):  # pragma: no cover - compiled
    """The cells of ``sites[:n]`` still cancer cells with an empty Moore neighbour, in order,
    into ``xs``/``ys``, with ``TumorModel.division_probability_map`` at their sites in
    ``prob`` (the same arithmetic, site by site); their number."""
    w, h = kind.shape
    kf = kind.reshape(-1)
    r = 0
    x = 0
    for k in range(n):
        s = sites[k]
        x = _row_of(s, x, h)
        y = s - x * h
        if kind[x, y] != 1 or not _has_room(kf, s, x, y, w, h):  # died this hour; no room
            continue
        p = growth[x, y] / division_time_h
        p = p * (1.0 - cytostasis * hill[x, y])
        if mdsc_near[x, y]:
            p = p * mdsc_factor
        if m2_near[x, y]:
            p = p * m2_factor
        xs[r] = x
        ys[r] = y
        prob[r] = min(p, 1.0)
        r += 1
    return r


@numba.njit(cache=True, _nrt=False)
def _keep_below(xs, ys, prob, n, u):  # pragma: no cover - compiled
    """Keep, in place and in order, the first ``n`` of ``xs``/``ys`` whose ``u`` is below their
    ``prob``; their number."""
    m = 0
    for k in range(n):
        if u[k] < prob[k]:
            xs[m] = xs[k]
            ys[m] = ys[k]
            m += 1
    return m


@numba.njit(cache=True, inline="always")
def _stamp(out, x, y, radius):  # pragma: no cover - compiled
    """True on the sites within ``radius`` (Chebyshev) of (x, y)."""
    w, h = out.shape
    for i in range(max(0, x - radius), min(w, x + radius + 1)):
        for j in range(max(0, y - radius), min(h, y + radius + 1)):
            out[i, j] = True


@numba.njit(cache=True, _nrt=False)
def _stamp_niches(ix, iy, ikind, alive, state, n, radius, mdsc_near,
                  m2_near):  # pragma: no cover - compiled
    """``stamp_cells`` for the MDSCs into ``mdsc_near`` and the M2 macrophages into
    ``m2_near`` in one pass over the cells."""
    for c in range(n):
        if not alive[c]:
            continue
        if ikind[c] == 5:  # Kind.MDSC
            out = mdsc_near
        elif ikind[c] == 7 and state[c] == 1:  # Kind.MACROPHAGE, M2
            out = m2_near
        else:
            continue
        _stamp(out, ix[c], iy[c], radius)


@numba.njit(cache=True, _nrt=False)
def stamp_cells(ix, iy, ikind, alive, state, n, kind, want_state, radius, out):  # pragma: no cover
    """``abm.model._neighbourhood`` of the living immune cells of ``kind`` (and ``state``
    unless it is -1), stamped from the cell arrays: True within ``radius`` (Chebyshev)."""
    for c in range(n):
        if not alive[c] or ikind[c] != kind or (want_state >= 0 and state[c] != want_state):
            continue
        _stamp(out, ix[c], iy[c], radius)


def near_cells(model, kind: int, radius: int, state: int = -1) -> np.ndarray:
    """``near(model.kind == kind, radius)`` from the immune-cell arrays (``state``: only the
    cells in that state, e.g. M2 macrophages), without a pass over the grid."""
    out = np.zeros((model.width, model.height), dtype=bool)
    stamp_cells(model.ix, model.iy, model.ikind, model.alive, model.state,
                int(model.n_immune[0]), int(kind), int(state), int(radius), out)
    return out


@numba.njit(cache=True, _nrt=False)
def cancer_hour(kind, sites, necrosis_prob, apoptosis, clearance, antigens, antigenicity,
                pdl1_base, pdl1_induced, car_negative, clone, mhc, dead, dead_antigens,
                dead_apoptotic, u, ix, iy, ikind, alive, state, n_immune, radius, mdsc_near,
                m2_near, growth, hill, division_time_h, cytostasis, mdsc_factor, m2_factor, xs,
                ys, prob, bits):  # pragma: no cover - compiled
    """``TumorModel._step_cancer_cells`` up to the divisions, in one call: ``list_sites``,
    the deaths (``apply_cancer_deaths``), the debris clearance (``clear_debris``), the niche
    maps and the dividers (``dividers``) and their random order, with the engine's draws
    made here from ``model.rng`` (``bits``; ``u`` is scratch for the uniforms) in the same
    order: ``rng.random(n_cancer)``, ``rng.random(debris)``, ``rng.random(candidates)``,
    ``rng.permutation(dividers)`` (applied to ``xs``/``ys``), then the seed of
    ``kernels.divide_cancer`` (if any divide). Returns the cancer cells, the deaths (in
    ``dead``, ``dead_antigens``, ``dead_apoptotic``), the necrotic among them, the dividers
    (``xs``/``ys``) and the seed (-1 if none). ``sites`` is as large as the grid; the other
    lists need room for the cancer cells and debris: if they have less, nothing is drawn or
    changed and the call returns -1 and the room needed."""
    n_cancer, n_debris = list_sites(kind, sites)
    need = n_cancer + n_debris
    if need > dead.size or need > u.size or need > xs.size:
        return -1, need, 0, 0, -1
    m = 0
    if n_cancer:
        np_uniforms(bits, u, n_cancer)
        m = apply_cancer_deaths(sites, n_cancer, u, necrosis_prob, apoptosis, kind, antigens,
                                antigenicity, pdl1_base, pdl1_induced, car_negative, clone,
                                mhc, dead, dead_antigens, dead_apoptotic)
    n_necrotic = 0
    for k in range(m):
        if not dead_apoptotic[k]:
            n_necrotic += 1
    if n_debris + n_necrotic:  # the old debris and the new, in row-major order
        np_uniforms(bits, u, n_debris + n_necrotic)
        clear_debris(sites, n_debris, dead, dead_apoptotic, m, u, clearance, kind)
    _stamp_niches(ix, iy, ikind, alive, state, n_immune[0], radius, mdsc_near, m2_near)
    r = _dividers(sites, n_cancer, kind, growth, hill, mdsc_near, m2_near, division_time_h,
                  cytostasis, mdsc_factor, m2_factor, xs, ys, prob)
    if r:
        np_uniforms(bits, u, r)
        r = _keep_below(xs, ys, prob, r, u)
    if r == 0:
        return n_cancer, m, n_necrotic, 0, -1
    for i in range(r - 1, 0, -1):  # np_shuffle of xs and ys together: xs[permutation(r)]
        j = _np_interval(bits, i)
        if i != j:
            t = xs[i]
            xs[i] = xs[j]
            xs[j] = t
            t = ys[i]
            ys[i] = ys[j]
            ys[j] = t
    return n_cancer, m, n_necrotic, r, np_seed(bits)


def dividers(model, sites: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``TumorModel._draw_dividers`` for the cells listed in ``sites[:n]`` (row-major flat
    indices, as ``list_sites`` gives; cells no longer there are skipped): the niche maps, then
    the same draw per cell with room, in the same order."""
    p = model.p
    radius = p["suppression_radius_sites"]
    shape = (model.width, model.height)
    model.mdsc_near = np.zeros(shape, dtype=bool)  # near_cells of the MDSCs, M2 macrophages
    model.m2_near = np.zeros(shape, dtype=bool)
    _stamp_niches(model.ix, model.iy, model.ikind, model.alive, model.state,
                  int(model.n_immune[0]), int(radius), model.mdsc_near, model.m2_near)
    xs = np.empty(n, dtype=np.int64)
    ys = np.empty(n, dtype=np.int64)
    prob = np.empty(n)
    r = _dividers(sites, n, model.tissue.kind, model.oxygen_growth, model.ifng_hill,
                  model.mdsc_near, model.m2_near, float(p["division_time_h"]),
                  float(p["ifng_cytostasis"]), 1.0 + p["mdsc_growth_boost"],
                  1.0 + p["m2_growth_boost"], xs, ys, prob)
    if r:
        r = _keep_below(xs, ys, prob, r, model.rng.random(r))
    return xs[:r], ys[:r]


@numba.njit(cache=True)
def killer_census(n, alive, ikind, engaged, state, exhaustion, tcell_limit,
                  cart_limit):  # pragma: no cover - compiled
    """The counts of ``TumorModel._census_killers`` from the immune-cell arrays: engaged
    killers, killers, exhausted killers, CTLs, progenitor CTLs, macrophages, M2 macrophages."""
    out = np.zeros(7, dtype=np.int64)
    for c in range(n):
        if not alive[c]:
            continue
        k = ikind[c]
        if k == 2 or k == 3:  # Kind.TCELL, Kind.CART
            out[1] += 1
            if engaged[c]:
                out[0] += 1
            limit = cart_limit if k == 3 else tcell_limit
            if state[c] != 1 and exhaustion[c] >= limit:
                out[2] += 1
            if k == 2:
                out[3] += 1
                if state[c] == 1:
                    out[4] += 1
        elif k == 7:  # Kind.MACROPHAGE
            out[5] += 1
            if state[c] == 1:
                out[6] += 1
    return out


@numba.njit(cache=True, _nrt=False)
def select_cells(n, alive, ikind, k0, k1, out):  # pragma: no cover - compiled
    """The living cells of kind ``k0`` or ``k1``, in slot order, into ``out``; their number."""
    m = 0
    for c in range(n):
        if alive[c] and (ikind[c] == k0 or ikind[c] == k1):
            out[m] = c
            m += 1
    return m


@numba.njit(cache=True, _nrt=False)
def order_cells(n, alive, ikind, k0, k1, out, bits):  # pragma: no cover - compiled
    """The living cells of kind ``k0`` or ``k1`` in random order into ``out`` (Mesa's
    shuffled agent list): ``select_cells``, then ``rng.permutation`` of them, then (if there
    are any) a seed for the kernel that steps them (``int(rng.integers(2**32))``), drawn from
    the model's generator (``bits``, ``kernels.np_shuffle``); returns their number and the
    seed (-1 if none)."""
    m = select_cells(n, alive, ikind, k0, k1, out)
    np_shuffle(bits, out, m)  # no draw for fewer than two, as Generator.permutation
    if m == 0:
        return m, -1
    return m, np_seed(bits)


@numba.njit(cache=True, _nrt=False)
def compact_cells(n, alive, ix, iy, ikind, antigen, exhaustion, ikills, divisions, engaged,
                  state, idx):  # pragma: no cover - compiled
    """Drop the dead immune cells from the arrays, keeping the order of the living; ``idx``
    (the cell at each site) follows. Returns the number kept."""
    for c in range(n):
        if not alive[c] and idx[ix[c], iy[c]] == c:
            idx[ix[c], iy[c]] = -1
    m = 0
    for c in range(n):
        if not alive[c]:
            continue
        if m != c:
            ix[m] = ix[c]
            iy[m] = iy[c]
            ikind[m] = ikind[c]
            antigen[m] = antigen[c]
            exhaustion[m] = exhaustion[c]
            ikills[m] = ikills[c]
            divisions[m] = divisions[c]
            engaged[m] = engaged[c]
            state[m] = state[c]
            alive[m] = True
        idx[ix[m], iy[m]] = m
        m += 1
    for c in range(m, n):
        alive[c] = False
    return m
