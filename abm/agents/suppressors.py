"""Suppressor cells: regulatory T cells and myeloid-derived suppressor cells."""

from __future__ import annotations

from typing import ClassVar

from abm.agents.base import ImmuneCell, Kind


class Suppressor(ImmuneCell):
    """A suppressor cell: recruited by the tumour, drifts up the chemokine gradient, dies with
    its lifespan. What it suppresses is read by the model from the grid once per step, so its
    own step is only living and moving."""

    LIFESPAN_PARAM: ClassVar[str]

    def __init__(self, model):
        super().__init__(model)
        self.speed = model.p["suppressor_speed"]
        self.lifespan_h = model.p[self.LIFESPAN_PARAM] * 24.0

    def step(self) -> None:
        if self.outlived():
            self.die()
            return
        self.migrate(self.speed)


class Treg(Suppressor):
    """A regulatory T cell.

    CTLs within ``suppression_radius_sites`` (2) of a Treg kill less (``treg_suppression``) and
    do not proliferate (contact-dependent suppression). Anti-CTLA-4 depletes Tregs (Onizuka 1999:
    depletion helps only when early).
    """

    KIND = Kind.TREG
    LIFESPAN_PARAM = "treg_lifespan_days"


class MDSC(Suppressor):
    """A myeloid-derived suppressor cell.

    It secretes the suppressive factor (a TGF-beta-like field, ``tgfb_secretion_mdsc``) that
    lowers CTL killing, and cancer cells within ``suppression_radius_sites`` (2) divide faster
    (``mdsc_growth_boost``): the supportive niche.
    """

    KIND = Kind.MDSC
    LIFESPAN_PARAM = "mdsc_lifespan_days"
