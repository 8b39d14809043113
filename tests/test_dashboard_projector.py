"""The dashboard read from the back of a classroom, without a browser: dose labels that do not
print over each other, PD-L1 colours that no cell type shares, and a status line short enough
for a projector in large text. (The layout itself is measured in Chromium in
``test_classroom.py``.)"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import TINY

from abm.agents import TREATMENTS
from abm.dashboard import render as R
from abm.dashboard.charts import chart_options, large_text
from abm.dashboard.live import status_text
from abm.dashboard.session import Session, scenario_values


def session_of(scenario: str = "escape", seed: int = 5) -> Session:
    return Session(scenario, {**scenario_values(scenario), **TINY}, seed)


def labelled(marks: dict) -> list[tuple[float, str]]:
    """The (day, text) of each mark whose label is drawn."""
    return [(m["xAxis"], m["name"]) for m in marks["data"]
            if m.get("label", {}).get("show", True)]


# --- 1. doses on one day -------------------------------------------------------------------
def test_doses_on_one_day_share_one_label_on_every_chart():
    """anti-PD-1 and a vaccine in the same hour, anti-CTLA-4 four hours later: their labels
    were printed over each other on one line; now one label names them all, and each dose
    keeps its dashed line."""
    session = session_of()
    session.advance(48)
    session.administer("anti_pd1")
    session.administer("vaccine")
    session.advance(4)
    session.administer("anti_ctla4")
    session.advance(72)
    for key, option in chart_options(session.snapshot()).items():
        for opt in (option, large_text(option)):
            marks = opt["series"][0]["markLine"]
            assert [m["xAxis"] for m in marks["data"]] == [2.0, 2.0, 2.167], key
            shown = labelled(marks)
            assert len(shown) == 1, (key, shown)
            day, text = shown[0]
            assert day == 2.0, key
            words = text.replace("\n", " ")
            for therapy in ("anti_pd1", "vaccine", "anti_ctla4"):
                assert TREATMENTS[therapy].label in words, (key, text)
            # a line of it fits down the plot (about 170 px, 13 px letters in large text)
            assert max(len(line) for line in text.split("\n")) <= 24, text
            assert opt["series"][0]["markLine"]["label"]["lineHeight"] >= \
                opt["series"][0]["markLine"]["label"]["fontSize"] + 2, key


def test_doses_days_apart_keep_their_own_labels_and_labels_never_crowd():
    session = session_of()
    session.administer("anti_pd1")
    session.advance(24 * 5)
    session.administer("anti_pd1")  # the same drug again, five days on: its own label
    session.advance(2)
    session.administer("anti_pd1")  # and twice in two hours: one label that says so
    session.advance(24 * 5)
    marks = chart_options(session.snapshot())["populations"]["series"][0]["markLine"]
    shown = labelled(marks)
    assert shown == [(0.0, "anti-PD-1"), (5.0, "anti-PD-1 ×2")]
    assert len(marks["data"]) == 3


@pytest.mark.parametrize("hours", [0, 1, 3, 6])
def test_labelled_doses_are_a_label_apart_on_the_axis(hours):
    """Labels are at least 1/20 of the time axis apart (15 px on a 300 px plot): a dose a
    few hours after another shares its label once the axis has grown long."""
    session = session_of("tumor_only")  # a tumour that no dose clears: the axis grows
    for therapy in ("anti_pd1", "vaccine", "anti_ctla4"):
        session.administer(therapy)
        session.advance(hours)
    session.advance(24 * 10)
    snapshot = session.snapshot()
    span = snapshot["vars"]["Day"][-1]
    assert span >= 10
    for option in chart_options(snapshot).values():
        days = sorted(day for day, _ in labelled(option["series"][0]["markLine"]))
        assert all(b - a >= span / 20 for a, b in zip(days, days[1:], strict=False)), days


# --- 2. PD-L1 colours against the cells' ----------------------------------------------------
# Machado, Oliveira & Fernandes 2009 (IEEE TVCG 15:1291), severity 1, on linear RGB
MACHADO = {
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
}


def lab(rgb: np.ndarray, vision: str = "normal") -> np.ndarray:
    """CIELAB (D65) of sRGB colours (0-255) as seen with ``vision``."""
    c = np.asarray(rgb, dtype=float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    if vision != "normal":
        linear = np.clip(linear @ MACHADO[vision].T, 0, 1)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                             [0.0193, 0.1192, 0.9505]]).T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def rgb_of(css: str) -> tuple[int, int, int]:
    return tuple(int(css[i:i + 2], 16) for i in (1, 3, 5))


def test_lab_matches_known_values():
    assert lab(np.array([255, 255, 255])) == pytest.approx([100, 0, 0], abs=0.1)
    assert lab(np.array([255, 0, 0])) == pytest.approx([53.2, 80.1, 67.2], abs=0.2)
    # a protanope and a deuteranope see red and green alike (the point of the simulation)
    for vision in MACHADO:
        red, green = lab(np.array([[200, 60, 0], [110, 130, 0]]), vision)
        assert np.linalg.norm(red - green) < 0.4 * np.linalg.norm(
            lab(np.array([200, 60, 0])) - lab(np.array([110, 130, 0])))


@pytest.mark.parametrize("vision, least", [("normal", 20), ("deuteranopia", 10),
                                           ("protanopia", 10)])
def test_the_pdl1_colours_are_no_cell_colour_of_the_legend(vision, least):
    """Every colour of the PD-L1 scale differs from every other colour of the legend by a
    CIELAB distance of at least ``least``, for normal and red-green colour-blind vision (the
    old purples were 12.8 from the M1 macrophages, and 0.5-2.4 from a cell colour for a
    colour-blind viewer)."""
    entries = R.legend(overlay="pdl1", progenitors=True)
    cells = np.array([rgb_of(colour) for label, colour in entries
                      if not label.startswith(("cancer", "stroma"))])
    assert len(cells) == 12  # every immune cell, debris and the vessels
    scale = R.lut(R.overlays(session_of().model)["pdl1"].cmap)
    distance = np.linalg.norm(lab(scale, vision)[:, None] - lab(cells, vision)[None], axis=-1)
    assert distance.min() >= least


def test_the_pdl1_legend_and_drawing_use_the_scale_and_its_top_stands_out():
    model = session_of("checkpoint").model
    model.run_for(24 * 6)
    scale = R.lut(R.overlays(model)["pdl1"].cmap)
    entries = dict(R.legend(overlay="pdl1"))
    assert entries["cancer, no PD-L1"] == R.css(scale[0])
    assert entries["cancer, most PD-L1 (colour bar)"] == R.css(scale[255])
    rgb = R.tissue_rgb(model, overlay="pdl1").rgb
    cancer = (model.kind == R.Kind.CANCER).T[::-1]
    drawn = {tuple(c) for c in rgb[cancer]}
    assert drawn and drawn <= {tuple(c) for c in scale}

    def luminance(c):
        c = np.asarray(c, dtype=float) / 255
        return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4) @ [
            0.2126, 0.7152, 0.0722]

    # its top stands out from the stroma as the cells do (a contrast ratio of at least 2.8)
    assert (luminance(R.EMPTY_RGB) + 0.05) / (luminance(scale[255]) + 0.05) >= 2.8


# --- 3. the status line in large text -------------------------------------------------------
def test_large_text_says_the_status_in_fewer_words_and_keeps_every_number():
    session = session_of("macrophage_niche")
    session.administer("cart")
    session.advance(30)
    normal, _ = status_text(session, large=False)
    large, _ = status_text(session, large=True)
    assert "PD-1 blocked by anti-PD-1" in normal and "T-cell kills" in normal
    assert re.search(r" · PD-1 blocked \d+% · ", large) and "by anti-PD-1" not in large
    assert re.search(r" · kills \d+ · ", large)  # only T cells kill here
    assert len(large) <= len(normal) - 18
    numbers = [w for w in normal.replace("(", " ").replace(")", " ").split() if w[0].isdigit()]
    assert [w for w in large.replace("(", " ").replace(")", " ").split()
            if w[0].isdigit()] == numbers  # the same numbers, in the same order
    for word in ("day", "hour", "cancer", "T cells", "CAR-T", "Tregs", "MDSCs", "macrophages",
                 "seed"):
        assert word in large


def test_with_nk_cells_large_text_still_says_whose_kills():
    session = session_of("nk_surveillance")
    session.advance(24)
    large, _ = status_text(session, large=True)
    assert re.search(r" · NK \d+ · T-cell kills \d+", large), large
