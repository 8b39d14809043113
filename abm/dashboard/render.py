"""Drawing for the dashboard: the tissue as one raster image, built from the model's numpy layers.

Nothing here touches Solara, so it is fast to test and reusable from a notebook. The dashboard
(``abm.dashboard.live``) sends the small, unscaled PNG and lets the browser scale it up with
``image-rendering: pixelated``; exports scale up here with ``np.repeat``.

Image orientation: column = x, row 0 = the top of the image = the largest y (y grows upward, as
in Mesa's space drawers). ``site_from_pixel`` converts back.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from abm.agents import Kind

if TYPE_CHECKING:
    from abm.model import TumorModel

# --- colours -------------------------------------------------------------------------------
EMPTY_RGB = (238, 234, 228)  # tissue stroma
VESSEL_RGB = (90, 90, 90)
COLLAPSED_VESSEL_RGB = (176, 150, 150)  # a vessel that collapsed inside the tumour: no supply
# Every cell colour stands out from the stroma on a projector: a contrast ratio (WCAG) of
# at least 2.8 against EMPTY_RGB (the yellow NK cells and amber Tregs of old were 1.0 and 1.7)
KIND_RGB = {
    Kind.TCELL: (31, 97, 226),  # blue
    Kind.CART: (0, 140, 160),  # teal
    Kind.TREG: (200, 110, 0),  # orange
    Kind.MDSC: (30, 130, 50),  # green
    Kind.NECROTIC: (92, 64, 51),  # debris of necrotic cancer cells: dark brown
    Kind.MACROPHAGE: (84, 39, 143),  # an M1 macrophage: dark purple (M2: M2_RGB)
    Kind.NK: (128, 128, 0),  # NK cell: olive
}
IMMUNE_KINDS = (Kind.TCELL, Kind.CART, Kind.TREG, Kind.MDSC, Kind.MACROPHAGE, Kind.NK)
M2_RGB = (240, 2, 127)  # an M2 (pro-tumour) macrophage: pink
EXHAUSTED_T_RGB = (100, 140, 205)  # faded blue
PROGENITOR_T_RGB = (8, 29, 88)  # a progenitor-exhausted (stem-like) CTL: navy
CANCER_HIDDEN_RGB = np.array((128, 116, 138), dtype=np.float32)  # antigenicity 0
CANCER_VISIBLE_RGB = np.array((214, 39, 40), dtype=np.float32)  # antigenicity 1
CAR_NEGATIVE_RGB = (25, 25, 25)  # a cancer cell without the CAR-T target (colour by CAR target)
# cancer cells by PD-L1: pale yellow (none) to coral red (the current maximum). Not the
# purples and pinks of matplotlib's RdPu (before): those are the macrophages' colours, and a
# class took PD-L1-high cancer cells for M2 macrophages. The cells' palette already holds dark
# blues, purples, greens, olives and browns, which a colour-blind eye sees as dark blues and
# dark olives: a ramp on to a dark colour would cross one of them, so this one stays light to
# medium, and each of its colours stands apart from every cell colour of the legend, also
# with deuteranopia and protanopia (tests/test_dashboard_projector.py)
PDL1_CMAP = "abm-pdl1"
RAMPS = {PDL1_CMAP: ((255, 245, 190), (225, 80, 80))}  # our colour maps: linear, first to last
# PD-L1 in the charts: a purple apart from the traits chart's other lines (the tissue's coral
# would read as the red of mean antigenicity beside it)
PDL1_CSS = "#7a0177"

# clones: matplotlib's tab20 without its browns and greys (debris, vessels and collapsed
# vessels are drawn in those). The clones the clone chart names (its largest, ``named``) each
# get a colour of their own, which no other clone is drawn in; the other clones share the
# remaining colours (``clone_palette``). While cancer cells are coloured by clone, every
# immune cell is drawn in IMMUNE_RGB: the clone colours are many and would otherwise be read
# as immune cell types
CLONE_PALETTE = np.array(
    [(214, 39, 40), (31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189),
     (227, 119, 194), (188, 189, 34), (23, 190, 207), (255, 152, 150),
     (174, 199, 232), (255, 187, 120), (152, 223, 138), (197, 176, 213),
     (247, 182, 210), (219, 219, 141), (158, 218, 229)],
    dtype=np.uint8,
)
IMMUNE_RGB = (20, 20, 20)  # any immune cell, while cancer cells are coloured by clone

# how cancer cells are coloured (the view's toggle); PD-L1 is an overlay, since it has a scale
COLOUR_BY = {"antigenicity": "antigenicity", "clone": "clone", "CAR target": "CAR target"}


def _kind_lut() -> np.ndarray:
    """Each kind's colour, by kind value (the free tissue's for ``Kind.EMPTY``; cancer cells
    are coloured after the lookup, by antigenicity, clone or CAR target)."""
    table = np.empty((max(int(k) for k in Kind) + 1, 3), dtype=np.uint8)
    table[...] = EMPTY_RGB
    for k, colour in KIND_RGB.items():
        table[int(k)] = colour
    return table


_KIND_LUT = _kind_lut()


def clone_palette(named: Sequence[int] = ()) -> tuple[dict[int, int], np.ndarray]:
    """Which colour of ``CLONE_PALETTE`` each clone gets: the ``named`` clones (the clone
    chart's) one each, kept apart from every other clone's (in the order of their ids, clone
    c taking colour c % 16 unless a named clone before it has it, then the next free one),
    and the other clones the remaining colours, clone c the (c mod their number)-th. Returns
    the named clones' colours and the remaining colours' indices. (Only the first 15 named
    clones by id get their own; any more are drawn as the others are.)"""
    n = len(CLONE_PALETTE)
    own: dict[int, int] = {}
    for clone in sorted(set(int(c) for c in named))[:n - 1]:
        i = clone % n
        while i in own.values():
            i = (i + 1) % n
        own[clone] = i
    rest = np.array([i for i in range(n) if i not in own.values()], dtype=np.intp)
    return own, rest


def clone_colours(clones: np.ndarray, named: Sequence[int] = ()) -> np.ndarray:
    """RGB of each clone id in ``clones`` (``clone_palette``)."""
    own, rest = clone_palette(named)
    index = rest[np.asarray(clones) % len(rest)]
    for clone, i in own.items():
        index[np.asarray(clones) == clone] = i
    return CLONE_PALETTE[index]


def clone_colour(clone: int, named: Sequence[int] = ()) -> str:
    """CSS colour of a clone (the same in the tissue and in the clone chart)."""
    r, g, b = clone_colours(np.array([clone]), named)[0]
    return f"#{r:02x}{g:02x}{b:02x}"


def css(rgb) -> str:
    r, g, b = (int(c) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def legend(colour_by: str = "antigenicity", overlay: str = "none",
           show_cells: bool = True, progenitors: bool = False) -> list[tuple[str, str]]:
    """(label, CSS colour) pairs for the legend under the tissue image, matching what
    ``tissue_rgb`` draws with the same view settings; ``progenitors``: the model has T-cell
    states (``tcell_progenitor_fraction`` > 0), so progenitor CTLs get an entry."""
    if not show_cells:  # (collapsed vessels are drawn there too)
        return [("cells hidden: only the overlay", css(EMPTY_RGB)), ("vessel", css(VESSEL_RGB)),
                ("collapsed vessel", css(COLLAPSED_VESSEL_RGB))]
    if overlay == "pdl1":
        cancer = [("cancer, no PD-L1", css(lut(PDL1_CMAP)[0])),
                  ("cancer, most PD-L1 (colour bar)", css(lut(PDL1_CMAP)[255]))]
    elif colour_by == "clone":
        cancer = [("cancer (colour = clone)", clone_colour(0))]
        return cancer + [
            ("immune cell (any kind)", css(IMMUNE_RGB)),
            ("necrotic (debris)", css(KIND_RGB[Kind.NECROTIC])),
            ("vessel", css(VESSEL_RGB)),
            ("collapsed vessel", css(COLLAPSED_VESSEL_RGB)),
            _stroma(overlay),
        ]
    elif colour_by == "CAR target":
        cancer = [("cancer, CAR target present", css(CANCER_VISIBLE_RGB)),
                  ("cancer, CAR target lost", css(CAR_NEGATIVE_RGB))]
    else:
        cancer = [("cancer, antigenic", css(CANCER_VISIBLE_RGB)),
                  ("cancer, hidden", css(CANCER_HIDDEN_RGB))]
    return cancer + [
        ("T cell", css(KIND_RGB[Kind.TCELL])),
        *([("progenitor T cell", css(PROGENITOR_T_RGB))] if progenitors else []),
        ("exhausted T cell", css(EXHAUSTED_T_RGB)),
        ("CAR-T cell", css(KIND_RGB[Kind.CART])),
        ("Treg", css(KIND_RGB[Kind.TREG])),
        ("MDSC", css(KIND_RGB[Kind.MDSC])),
        ("macrophage M1", css(KIND_RGB[Kind.MACROPHAGE])),
        ("macrophage M2", css(M2_RGB)),
        ("NK cell", css(KIND_RGB[Kind.NK])),
        ("necrotic (debris)", css(KIND_RGB[Kind.NECROTIC])),
        ("vessel", css(VESSEL_RGB)),
        ("collapsed vessel", css(COLLAPSED_VESSEL_RGB)),
        _stroma(overlay),
    ]


def _stroma(overlay: str) -> tuple[str, str]:
    """The legend's entry for the free tissue: its colour, or the overlay's."""
    if overlay not in ("none", "pdl1"):
        return ("stroma: colour = overlay (colour bar)", css(lut("viridis")[128]))
    return ("stroma (empty)", css(EMPTY_RGB))


# --- overlays --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Overlay:
    """A quantity shown under the cells, with its colour map and unit."""

    key: str
    label: str
    unit: str
    cmap: str
    fixed_max: float | None = None  # None: scale to the current maximum


def overlays(model: TumorModel) -> dict[str, Overlay]:
    """The selectable overlays: every field of the model (drawn in the free tissue between the
    cells), and PD-L1 (the colour of the cancer cells). The anti-PD-1 occupancy is not one:
    the drug is well-mixed, so it would be one flat colour (it is in the status line)."""
    out = {"none": Overlay("none", "none", "", "viridis")}
    for key, field in model.fields.items():
        unit = getattr(field, "unit", "") or "a.u."
        label = {"ifng": "IFN-γ", "tgfb": "suppressive factor (TGF-β)"}.get(key, field.name)
        # oxygen on a fixed scale from 0 to the supply level: hypoxia reads the same every frame
        top = model.p["oxygen_supply"] if key == "oxygen" else None
        out[key] = Overlay(key, label, unit, "viridis", top)
    out["pdl1"] = Overlay("pdl1", "PD-L1 on cancer cells", "(0-1 scale)", PDL1_CMAP)
    return out


def overlay_data(model: TumorModel, key: str) -> np.ndarray | None:
    """The (width, height) array behind an overlay, or None for "none"."""
    if key == "none":
        return None
    if key in model.fields:
        return model.fields[key].data
    if key == "pdl1":
        return model.pdl1_map()
    raise ValueError(f"unknown overlay {key!r}: expected one of {', '.join(overlays(model))}")


# the smallest top of a field's colour scale: a field that has decayed to nothing (the chemokine
# of a cleared tumour, 1e-25 a.u. a day later) is drawn empty, not stretched to full colour
NEGLIGIBLE_TOP = 1e-9


def overlay_max(data: np.ndarray, key: str) -> float:
    """Top of the colour scale: the current maximum, at least ``NEGLIGIBLE_TOP`` (0 for an
    empty grid); for PD-L1 rounded up to 0.1, so the scale does not jump every frame and a low
    PD-L1 is not stretched to the darkest colour."""
    top = float(np.max(data)) if data.size else 0.0
    if key == "pdl1":
        return min(1.0, max(0.1, np.ceil(top * 10 - 1e-9) / 10))
    return max(top, NEGLIGIBLE_TOP) if data.size else 0.0


def scale_max(model: TumorModel, key: str) -> float:
    """Top of ``key``'s colour scale for ``model``: fixed (oxygen, 0 to the supply level) or
    the current maximum (``overlay_max``); 0 for "none"."""
    data = overlay_data(model, key)
    if data is None:
        return 0.0
    fixed = overlays(model)[key].fixed_max
    return fixed if fixed is not None else overlay_max(data, key)


def shared_max(key: str, model: TumorModel, twin: TumorModel | None) -> float | None:
    """One colour scale for a model and its untreated twin (Compare): the larger of their
    tops for overlay ``key``; None (each its own, which is the same) without a twin or an
    overlay."""
    if twin is None or key == "none":
        return None
    return max(scale_max(m, key) for m in (model, twin))


_LUTS: dict[str, np.ndarray] = {}


def lut(cmap: str) -> np.ndarray:
    """A 256 x 3 uint8 lookup table for one of ``RAMPS`` or a matplotlib colour map (built
    once)."""
    if cmap not in _LUTS:
        if cmap in RAMPS:
            first, last = (np.array(rgb, dtype=float) for rgb in RAMPS[cmap])
            colours = first + np.linspace(0.0, 1.0, 256)[:, None] * (last - first)
            _LUTS[cmap] = colours.round().astype(np.uint8)
        else:
            import matplotlib

            colours = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3]
            _LUTS[cmap] = (colours * 255).round().astype(np.uint8)
    return _LUTS[cmap]


def colourbar_png(cmap: str, width: int = 256, height: int = 10) -> str:
    """A horizontal colour bar as a data URL (for the legend)."""
    row = lut(cmap)[np.linspace(0, 255, width).astype(int)]
    return data_url(np.repeat(row[None, :, :], height, axis=0))


# --- the tissue image ------------------------------------------------------------------------
@dataclass
class Frame:
    """One drawn view: the image (rows = y from the top) and what the colour bar needs."""

    rgb: np.ndarray  # (height, width, 3) uint8
    overlay: Overlay | None
    vmax: float


def tissue_rgb(model: TumorModel, colour_by: str = "antigenicity",
               overlay: str = "none", show_cells: bool = True,
               vmax: float | None = None, named: Sequence[int] = ()) -> Frame:
    """The tissue as an RGB array: each cell type its colour, cancer cells shaded by
    antigenicity (or coloured by clone or CAR target; ``named``: the clones the clone chart
    names, each in a colour of its own), and an optional overlay, on a scale from 0 to
    ``vmax`` (default: the overlay's own, fixed or the current maximum; a shared one draws two
    models alike).

    Every drawn colour means what the legend says: a field overlay colours the free tissue
    between the cells (with ``show_cells`` False, everywhere), and the PD-L1 overlay colours
    the cancer cells on its own scale; no colour is blended with another (a red cancer cell
    over yellow IFN-γ turned Treg-amber). Vectorised over the model's layers; only T cells are
    visited one by one (to mark the exhausted ones), and macrophages (to mark the M2 ones),
    which is a few hundred agents.
    """
    # drawn straight into the image's layout: row = height - 1 - y, column = x (views of the
    # layers, no transposed copy), every site's kind colour in one table lookup
    kind = model.kind
    h = kind.shape[1]
    shown = kind.T[::-1]
    if show_cells:
        rgb = _KIND_LUT[shown]
        empty = shown == Kind.EMPTY
    else:
        rgb = np.empty(shown.shape + (3,), dtype=np.uint8)
        rgb[...] = EMPTY_RGB
        empty = None

    spec, top = None, 0.0
    data = overlay_data(model, overlay)
    if data is not None:
        spec = overlays(model)[overlay]
        top = vmax if vmax is not None else (
            spec.fixed_max if spec.fixed_max is not None else overlay_max(data, overlay))
        scale = 255.0 / top if top > 0 else 0.0
        idx = np.clip(data * scale, 0, 255).astype(np.uint8).T[::-1]
        if overlay != "pdl1":  # the free tissue between the cells (everywhere without cells)
            if empty is None:
                rgb[...] = lut(spec.cmap)[idx]
            else:
                rgb[empty] = lut(spec.cmap)[idx[empty]]

    # over the overlay: where immune cells enter (and where vessels collapsed) stays visible
    for vessels, colour in ((model.vessels, VESSEL_RGB),
                            (model.collapsed_vessels, COLLAPSED_VESSEL_RGB)):
        if len(vessels):
            xs, ys = np.asarray(vessels, dtype=np.intp).reshape(-1, 2).T
            if show_cells:
                free = kind[xs, ys] == Kind.EMPTY
                xs, ys = xs[free], ys[free]
            rgb[h - 1 - ys, xs] = colour
    if not show_cells:
        return Frame(rgb, spec, top)

    cancer = shown == Kind.CANCER
    if cancer.any():
        if overlay == "pdl1":
            colours = lut(PDL1_CMAP)[idx[cancer]]
        elif colour_by == "clone":
            colours = clone_colours(model.clone.T[::-1][cancer], named)
        else:
            a = model.antigenicity.T[::-1][cancer][:, None]
            colours = (CANCER_HIDDEN_RGB + a * (CANCER_VISIBLE_RGB - CANCER_HIDDEN_RGB)
                       ).astype(np.uint8)
            if colour_by == "CAR target":
                colours = np.where(model.car_negative.T[::-1][cancer][:, None],
                                   CAR_NEGATIVE_RGB,
                                   np.array(CANCER_VISIBLE_RGB, dtype=np.uint8))
        rgb[cancer] = colours

    if colour_by == "clone" and overlay != "pdl1":  # the immune cells in one colour
        rgb[np.isin(shown, IMMUNE_KINDS)] = IMMUNE_RGB
        return Frame(rgb, spec, top)
    for (xs, ys), colour in zip(cell_states(model), (EXHAUSTED_T_RGB, PROGENITOR_T_RGB, M2_RGB),
                                strict=True):
        rgb[h - 1 - np.asarray(ys, dtype=np.intp), np.asarray(xs, dtype=np.intp)] = colour
    return Frame(rgb, spec, top)


def has_progenitors(model: TumorModel) -> bool:
    """Whether new CTLs can arrive as progenitors (the legend then shows them)."""
    return model.p["tcell_progenitor_fraction"] > 0


def cell_states(model: TumorModel) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The sites (xs, ys) of the exhausted CTLs, the progenitor CTLs and the M2 macrophages,
    from the agents (Mesa engine) or from the immune-cell arrays (fast engine, which has no
    agent objects: ``immune_cells()``)."""
    if model.agent_at is None:  # the fast engine
        cells = model.immune_cells()
        ctl = cells["kind"] == Kind.TCELL
        progenitor = ctl & (cells["state"] == 1)
        exhausted = ctl & ~progenitor & (cells["exhaustion"] >= model.p["tcell_exhaustion_limit"])
        m2 = (cells["kind"] == Kind.MACROPHAGE) & (cells["state"] == 1)
        return tuple((cells["x"][m], cells["y"][m]) for m in (exhausted, progenitor, m2))
    exhausted, progenitor = [], []
    for agent in _killers(model):
        if agent.cell is None:
            continue
        if agent.exhausted:
            exhausted.append(agent.cell.coordinate)
        elif agent.progenitor:
            progenitor.append(agent.cell.coordinate)
    m2 = [a.cell.coordinate for a in _macrophages(model) if a.m2 and a.cell is not None]
    return tuple(_sites(sites) for sites in (exhausted, progenitor, m2))


def _sites(sites: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    if not sites:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    xs, ys = np.array(sites).T
    return xs, ys


def _killers(model: TumorModel):
    from abm.agents import TCell

    return model.agents_by_type.get(TCell, ())


def _macrophages(model: TumorModel):
    from abm.agents import Macrophage

    return model.agents_by_type.get(Macrophage, ())


def site_from_pixel(model: TumorModel, column: int, row: int) -> tuple[int, int]:
    """The (x, y) site shown at image column/row (row 0 at the top)."""
    return int(column), int(model.height - 1 - row)


def png_bytes(rgb: np.ndarray, scale: int = 1, compress_level: int = 1) -> bytes:
    """Encode an RGB array as PNG, optionally scaled up by an integer factor (nearest)."""
    if scale > 1:
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def data_url(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb)).decode("ascii")


# --- what is at a site -----------------------------------------------------------------------
def describe_site(model: TumorModel, x: int, y: int) -> str:
    """One line on what occupies site (x, y) and the fields there, for hover and click."""
    if not (0 <= x < model.width and 0 <= y < model.height):
        return ""
    if model.agent_at is None:  # the fast engine: no agent objects
        return _describe(model, x, y, _describe_arrays(model, x, y))
    agent = model.agent_at[x, y]
    kind = Kind(int(model.kind[x, y]))
    if agent is None or kind == Kind.EMPTY:
        what = ("vessel" if (x, y) in set(model.vessels) else
                "collapsed vessel" if (x, y) in set(model.collapsed_vessels) else "empty stroma")
    elif kind == Kind.CANCER:
        antigens = [str(b) for b in range(8) if agent.antigens >> b & 1]
        what = (
            f"cancer cell, clone {agent.clone}"
            + (f" (from {agent.parent_clone})" if agent.parent_clone >= 0 else "")
            + f"; antigens {{{', '.join(antigens) or 'none'}}}, MHC-I {agent.mhc:.2f}, "
            f"antigenicity {agent.antigenicity:.2f}, PD-L1 {agent.pdl1:.2f}, "
            f"CAR target {'yes' if agent.car_target else 'no'}"
            + ("; hypoxic" if agent.hypoxic else "")
        )
    elif kind == Kind.NECROTIC:
        what = "necrotic debris"
    elif kind in (Kind.TCELL, Kind.CART):
        name = ("CAR-T cell" if kind == Kind.CART else
                f"{'progenitor ' if agent.progenitor else ''}T cell (antigen {agent.antigen})")
        what = (
            f"{name}; kills {agent.kills}, exhaustion {agent.exhaustion}/"
            f"{agent.exhaustion_limit}{' (exhausted)' if agent.exhausted else ''}"
        )
    elif kind == Kind.MACROPHAGE:
        what = (f"macrophage, {agent.state} ({'pro-tumour' if agent.m2 else 'anti-tumour'}); "
                f"kills {agent.kills}")
    elif kind == Kind.NK:
        what = (f"NK cell; kills {agent.kills}/{agent.kill_limit}"
                + (" (spent)" if agent.spent else ""))
    else:
        what = "Treg" if kind == Kind.TREG else "MDSC"
    return _describe(model, x, y, what)


def _describe_arrays(model, x: int, y: int) -> str:
    """``describe_site``'s description of the cell at (x, y) of the fast engine, read from
    its layers and immune-cell arrays."""
    kind = Kind(int(model.kind[x, y]))
    p = model.p
    if kind == Kind.EMPTY:
        return ("vessel" if (x, y) in set(model.vessels) else
                "collapsed vessel" if (x, y) in set(model.collapsed_vessels) else "empty stroma")
    if kind == Kind.CANCER:
        mask = int(model.antigens[x, y])
        antigens = [str(b) for b in range(8) if mask >> b & 1]
        hypoxic = model.oxygen.data[x, y] < p["hypoxic_threshold"]
        pdl1 = min(1.0, model.pdl1_base[x, y] + p["pdl1_induction"] * model.pdl1_induced[x, y])
        return (f"cancer cell, clone {int(model.clone[x, y])}; antigens "
                f"{{{', '.join(antigens) or 'none'}}}, MHC-I {model.tissue.mhc[x, y]:.2f}, "
                f"antigenicity {model.antigenicity[x, y]:.2f}, PD-L1 {pdl1:.2f}, "
                f"CAR target {'no' if model.car_negative[x, y] else 'yes'}"
                + ("; hypoxic" if hypoxic else ""))
    if kind == Kind.NECROTIC:
        return "necrotic debris"
    if kind in (Kind.TREG, Kind.MDSC):
        return "Treg" if kind == Kind.TREG else "MDSC"
    i = int(model.idx[x, y])
    kills, state = int(model.ikills[i]), int(model.state[i])
    if kind in (Kind.TCELL, Kind.CART):
        car = kind == Kind.CART
        limit = p["cart_exhaustion_limit"] if car else p["tcell_exhaustion_limit"]
        exhaustion = int(model.exhaustion[i])
        name = ("CAR-T cell" if car else
                f"{'progenitor ' if state else ''}T cell (antigen {int(model.antigen[i])})")
        exhausted = not state and exhaustion >= limit
        return (f"{name}; kills {kills}, exhaustion {exhaustion}/{limit}"
                + (" (exhausted)" if exhausted else ""))
    if kind == Kind.MACROPHAGE:
        return (f"macrophage, {'M2' if state else 'M1'} "
                f"({'pro-tumour' if state else 'anti-tumour'}); kills {kills}")
    limit = p["nk_kill_limit"]
    return f"NK cell; kills {kills}/{limit}" + (" (spent)" if kills >= limit else "")


def _describe(model, x: int, y: int, what: str) -> str:
    fields = ", ".join(
        f"{overlays(model)[k].label.split(' (')[0]} {f.data[x, y]:.3g}"
        + (f" {f.unit}" if getattr(f, "unit", "") else "")
        for k, f in model.fields.items()
    )
    return f"({x}, {y}): {what}. {fields}"


# --- clone composition -----------------------------------------------------------------------
def clone_counts(model: TumorModel) -> dict[int, int]:
    """Cancer cells per clone now (the model does not record this per step)."""
    clones = model.clone[model.kind == Kind.CANCER]
    if clones.size == 0:
        return {}
    counts = np.bincount(clones)
    ids = np.flatnonzero(counts)
    return dict(zip(ids.tolist(), counts[ids].tolist(), strict=True))


def export_png(model: TumorModel, colour_by: str = "antigenicity", overlay: str = "none",
               title: str = "", show_cells: bool = True,
               twin: TumorModel | None = None, named: Sequence[int] = ()) -> bytes:
    """The current view as a PNG for download: the scaled tissue (and, with Compare, the
    untreated ``twin`` beside it, on the same colour scale), a legend and a colour bar;
    ``named``: the clones the clone chart names (``tissue_rgb``)."""
    from PIL import ImageDraw

    font = _font(13)
    frame = tissue_rgb(model, colour_by, overlay, show_cells,
                       shared_max(overlay, model, twin), named)  # one colour bar, as on the page
    scale = max(1, 600 // max(model.width, model.height))
    tissues = [Image.open(io.BytesIO(png_bytes(frame.rgb, scale)))]
    if twin is not None:
        twin_rgb = tissue_rgb(twin, colour_by, overlay, show_cells, frame.vmax, named).rgb
        tissues.append(Image.open(io.BytesIO(png_bytes(twin_rgb, scale))))
    entries = legend(colour_by, overlay, show_cells, has_progenitors(model))
    pad, line = 10, 18
    legend_w = 230
    heading = 24 if twin is None else 44  # with the twin, a caption over each tissue
    tissue_h = max(t.height for t in tissues)
    tissues_w = sum(t.width for t in tissues) + pad * (len(tissues) - 1)
    height = max(tissue_h, len(entries) * line + 80) + 2 * pad + heading
    canvas = Image.new("RGB", (tissues_w + legend_w + 3 * pad, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, pad), title or f"day {model.day:.1f}", fill="black", font=font)
    top = pad + heading
    x = pad
    captions = ("treated (your run)", "untreated twin (same seed, no treatment)")
    for tissue, caption in zip(tissues, captions, strict=False):
        if twin is not None:
            draw.text((x, top - 20), caption, fill="black", font=font)
        canvas.paste(tissue, (x, top))
        x += tissue.width + pad
    lx = tissues_w + 2 * pad
    for i, (label, colour) in enumerate(entries):
        y = top + i * line
        draw.rectangle((lx, y, lx + 12, y + 12), fill=colour, outline="black")
        draw.text((lx + 18, y), label, fill="black", font=font)
    if frame.overlay is not None:
        y = top + len(entries) * line + 10
        draw.text((lx, y), f"{frame.overlay.label}, {frame.overlay.unit}", fill="black",
                  font=font)
        bar = lut(frame.overlay.cmap)[np.linspace(0, 255, 200).astype(int)]
        canvas.paste(Image.fromarray(np.repeat(bar[None], 12, axis=0), "RGB"), (lx, y + 16))
        draw.text((lx, y + 30), "0", fill="black", font=font)
        draw.text((lx + 160, y + 30), f"{frame.vmax:.3g}", fill="black", font=font)
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def _font(size: int):
    """DejaVu Sans from matplotlib (has Greek letters, unlike Pillow's bitmap default)."""
    from pathlib import Path

    import matplotlib
    from PIL import ImageFont

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:  # pragma: no cover - matplotlib always ships it
        return ImageFont.load_default()


def timeseries_csv(model: TumorModel) -> str:
    """The model's per-step time series as CSV text (one row per step), written as ``abm run
    --out run.csv`` writes it (``abm.report.csv_ready``: no float32 noise, 0.05 rather than
    0.05000000074505806)."""
    from abm.report import csv_ready  # (only when a CSV is asked for)

    return csv_ready(model.datacollector.get_model_vars_dataframe()).to_csv(index=False)


def model_vars(model: TumorModel) -> dict[str, list[Any]]:
    """The collected columns without building a DataFrame (cheap, called every frame)."""
    return model.datacollector.model_vars
