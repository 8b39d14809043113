"""Every parameter of the model, once: default, unit, allowed range, description and source.

This module is the single source of truth (PhysiCell's settings file is the model for it). The
model's keyword arguments and their validation, the CLI's ``--set`` options, the dashboard's
controls, the sweep bounds and the parameter table in the docs are all generated from ``PARAMS``.

Scales (docs/design.md section 2): one grid site is about 15 um (one cell; Kather et al. 2017 used
14.9 um voxels) and one model step is one hour.

A value "modelling choice" in ``source`` means no portable literature value exists; the
calibration notes in ``docs/`` say how robust the behaviour is to it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SITE_UM = 15.0  # grid spacing, micrometres (Kather et al. 2017: 14.9 um voxels)
STEP_H = 1.0  # one model step, hours
# spQSP-IO's IFN-gamma release (7.64e-10 ng/s per engaged T cell) into one 15 um site
# (3.375e-9 mL), in the model's unit ng/mL per h: 815. Not the default of ifng_secretion (see
# its source); give ifng_secretion=SPQSP_IFNG_SECRETION to run with it.
SPQSP_IFNG_SECRETION = 7.64e-10 * 3600.0 / (SITE_UM * 1e-4) ** 3


@dataclass(frozen=True)
class Param:
    """One model parameter.

    Attributes:
        name: keyword argument of ``TumorModel``.
        default: default value.
        unit: physical unit (or "1" for dimensionless, "day" for a day of simulated time).
        kind: ``int``, ``float`` or ``bool``.
        low, high: inclusive allowed range (``None`` = unbounded on that side).
        description: one line for tooltips and docs.
        source: literature source of the default, or "modelling choice".
        group: heading under which the dashboard and docs show it.
        optional: ``None`` is allowed (e.g. a therapy start day of ``None`` = not given).
    """

    name: str
    default: Any
    unit: str
    kind: type
    low: float | None
    high: float | None
    description: str
    source: str
    group: str
    optional: bool = False

    def allowed(self) -> str:
        """Human-readable allowed range, used in error messages and docs."""
        kind = {int: "an integer", float: "a number", bool: "true or false"}[self.kind]
        if self.kind is bool:
            text = kind
        elif self.low is not None and self.high is not None:
            text = f"{kind} in [{_fmt(self.low)}, {_fmt(self.high)}]"
        elif self.low is not None:
            text = f"{kind} >= {_fmt(self.low)}"
        elif self.high is not None:
            text = f"{kind} <= {_fmt(self.high)}"
        else:
            text = kind
        return text + (" or None" if self.optional else "")

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's kind, or raise ``ValueError``.

        Strings are accepted (the CLI, sweep files and dashboard text boxes give strings) when
        they parse cleanly as the parameter's kind.
        """
        bad = ValueError(
            f"parameter {self.name!r} = {value_text(value)} is not allowed: expected "
            f"{self.allowed()} ({self.unit}; {self.description})"
        )
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "")):
            if self.optional:
                return None
            raise bad
        if isinstance(value, str):
            value = _parse_text(value.strip(), self.kind, bad)
        if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
            value = value.item()  # a numpy scalar (np.bool_, np.int64, np.float32: a table's)
        if self.kind is bool:
            if isinstance(value, bool | int) and value in (0, 1):
                return bool(value)
            raise bad
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        if self.kind is int:
            if isinstance(value, float):
                if not value.is_integer():
                    raise bad
                value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:  # an int too large for a float (e.g. 10**400)
                raise bad from None
            if not math.isfinite(value):
                raise bad
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise bad
        return value


def _fmt(x: float) -> str:
    return f"{x:g}"


# A long text (a seed or a name pasted by mistake) is shown in a message by its first
# TEXT_KEPT characters and its length; a long list by its first ITEMS_KEPT items and its length.
TEXT_KEPT = 40
ITEMS_KEPT = 10


def value_text(value: Any) -> str:
    """``repr(value)`` for a message, except what would bury it:

    - an integer beyond a float's range (``10**400``: only Python gives one, never a TOML file
      or a text box), whose hundreds of digits Python may even refuse to write (more than
      4300): ``1e+400 (an integer of 401 digits, beyond a float's range)``;
    - a text of more than ``2 * TEXT_KEPT`` characters: its first ``TEXT_KEPT`` and its length,
      ``'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (5000 characters)``;
    - a list or a tuple of more than ``ITEMS_KEPT`` items: its first ``ITEMS_KEPT`` and its
      length, ``[0, 1, ..., 9, ... (5000 items)]``.

    The same inside a list or a tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return (f"{short_int(value)} (an integer of {_exponent(value) + 1} digits, beyond "
                    "a float's range)")
    if isinstance(value, str) and len(value) > 2 * TEXT_KEPT:
        return f"{value[:TEXT_KEPT]!r}... ({len(value)} characters)"
    if isinstance(value, list | tuple):
        shown = [value_text(v) for v in value[:ITEMS_KEPT]]
        if len(value) > ITEMS_KEPT:
            shown.append(f"... ({len(value)} items)")
        items = ", ".join(shown)
        if isinstance(value, tuple):
            return f"({items}{',' if len(value) == 1 else ''})"
        return f"[{items}]"
    return repr(value)


def _exponent(value: int) -> int:
    """The power of ten of a nonzero integer's leading digit (``floor(log10(|value|))``),
    exactly: no ``str`` of it (refused beyond 4300 digits) and no float rounding."""
    size = abs(value)
    exp = int(math.log10(size))  # (math.log10 takes an int of any size; may be one off)
    while 10**exp > size:
        exp -= 1
    while 10 ** (exp + 1) <= size:
        exp += 1
    return exp


def short_int(value: int) -> str:
    """A nonzero integer in scientific notation with up to six significant digits:
    ``1e+400``, ``-2.5e+310``; ``about 1.23456e+400`` when digits are left out."""
    exp = _exponent(value)
    lead, rest = divmod(abs(value), 10 ** max(exp - 5, 0))
    digits = str(lead).rstrip("0") or "0"
    mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
    return f"{'about ' if rest else ''}{'-' if value < 0 else ''}{mantissa}e+{exp}"


def _parse_text(text: str, kind: type, bad: ValueError) -> Any:
    try:
        if kind is bool:
            low = text.lower()
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise bad
        if kind is int:
            number = float(text)
            return int(number) if number.is_integer() else number
        return float(text)
    except ValueError:
        raise bad from None


def _p(name, default, unit, kind, low, high, description, source, group, optional=False):
    return Param(name, default, unit, kind, low, high, description, source, group, optional)


_MC = "modelling choice"

_LIST: list[Param] = [
    # --- domain -------------------------------------------------------------------------------
    _p("width", 100, "sites (15 um)", int, 10, 1000, "grid width",
       "modelling choice: 100x100 (1.5 mm) for class, 200x200 for research (docs/design.md)",
       "Domain"),
    _p("height", 100, "sites (15 um)", int, 10, 1000, "grid height",
       "modelling choice: 100x100 (1.5 mm) for class, 200x200 for research (docs/design.md)",
       "Domain"),
    _p("initial_tumor_cells", 200, "cells", int, 1, 1_000_000,
       "founder tumour, seeded as a compact disc at the centre", _MC, "Domain"),
    _p("vessel_density", 0.004, "vessels per site", float, 0.0, 0.1,
       "fraction of sites that are vessels where immune cells enter (about one per 240 um)",
       "modelling choice (tumour intervessel distances of 100-300 um)", "Domain"),
    _p("vessel_collapse_days", 14.0, "day", float, 0.1, 3650.0,
       "mean time for a vessel enclosed by tumour (all 8 neighbours cancer cells or debris) "
       "to collapse: it then supplies no oxygen and admits no immune cells (None = never)",
       "within the time course of Holash et al. 1999 (co-opted vessels regress inside the "
       "tumour within 1-4 weeks, leaving necrosis) and Padera et al. 2004 (proliferating "
       "cancer cells compress intratumour vessels); the value is a modelling choice",
       "Domain", optional=True),
    # --- cancer cells -------------------------------------------------------------------------
    _p("division_time_h", 23.0, "h", float, 4.0, 1000.0,
       "mean time between divisions of a cancer cell with a free neighbour",
       "PhysiCell cancer_immune sample: cycle rate 0.00072/min (mean 23.1 h)", "Cancer cells"),
    _p("founder_antigens", 3, "antigens (of 8)", int, 0, 8,
       "tumour antigens carried by the founder clone that endogenous T cells can recognise",
       _MC, "Cancer cells"),
    _p("founder_mhc", 1.0, "1 (0-1)", float, 0.0, 1.0,
       "MHC-I presentation of the founder clone: probability a CTL sees the cell's antigens at "
       "each look (drawn per neighbour each time a CTL looks for a target, before and after "
       "each move: up to 1 + tcell_speed looks an hour)",
       _MC, "Cancer cells"),
    _p("founder_pdl1", 0.05, "1 (0-1)", float, 0.0, 1.0,
       "constitutive PD-L1 of the founder clone", _MC, "Cancer cells"),
    _p("mutation_rate", 0.01, "per division", float, 0.0, 1.0,
       "probability a daughter cell mutates (loses or gains an antigen, lowers MHC-I or raises "
       "PD-L1)", _MC, "Cancer cells"),
    _p("mhc_loss_factor", 0.5, "1 (0-1)", float, 0.0, 1.0,
       "factor by which an MHC-I-lowering mutation multiplies presentation", _MC,
       "Cancer cells"),
    _p("pdl1_mutation_gain", 0.2, "1 (0-1)", float, 0.0, 1.0,
       "constitutive PD-L1 added by a PD-L1-raising mutation", _MC, "Cancer cells"),
    _p("antigen_loss_rate", 0.0, "per division", float, 0.0, 1.0,
       "probability a daughter cell loses the CAR-T target antigen",
       "modelling choice; CD19-negative relapse in 41% of B-ALL relapses (Blood Adv 2023 7:575)",
       "Cancer cells"),
    _p("initial_antigen_negative_fraction", 0.0, "1 (0-1)", float, 0.0, 1.0,
       "fraction of founder cells that lack the CAR-T target antigen", _MC, "Cancer cells"),
    _p("ifng_cytostasis", 0.5, "1 (0-1)", float, 0.0, 1.0,
       "maximum reduction of cancer-cell division by local IFN-gamma (Th1 cytostasis)",
       "modelling choice; IFN-gamma and TNF drive cancer cells into growth arrest "
       "(Braumueller 2013 Nature 494:361) and sustain equilibrium (Koebel 2007 Nature "
       "450:903)", "Cancer cells"),
    _p("mdsc_growth_boost", 0.5, "1 (fractional increase)", float, 0.0, 5.0,
       "extra division probability of a cancer cell within suppression_radius_sites of an MDSC",
       _MC, "Cancer cells"),
    _p("antigen_visibility", 0.5, "1 (0-1)", float, 0.0, 1.0,
       "chance that one presented antigen is seen by the T-cell repertoire: antigenicity is "
       "MHC-I x (1 - (1 - antigen_visibility)^antigens)", _MC, "Cancer cells"),
    _p("mutation_weight_lose_antigen", 0.3, "1 (relative weight)", float, 0.0, 1.0,
       "relative weight of antigen loss among a daughter's mutations",
       "modelling choice (gaining and losing an antigen equally likely)", "Cancer cells"),
    _p("mutation_weight_gain_antigen", 0.3, "1 (relative weight)", float, 0.0, 1.0,
       "relative weight of gaining a neoantigen among a daughter's mutations",
       "modelling choice (gaining and losing an antigen equally likely)", "Cancer cells"),
    _p("mutation_weight_lower_mhc", 0.25, "1 (relative weight)", float, 0.0, 1.0,
       "relative weight of MHC-I down-regulation among a daughter's mutations",
       "modelling choice; MHC-I loss is a common escape route (Garrido et al. 2016 "
       "Curr Opin Immunol 39:44)", "Cancer cells"),
    _p("mutation_weight_raise_pdl1", 0.15, "1 (relative weight)", float, 0.0, 1.0,
       "relative weight of a PD-L1 increase among a daughter's mutations", _MC,
       "Cancer cells"),
    # --- cytotoxic T cells --------------------------------------------------------------------
    _p("tcell_influx", 1.0, "CTL per h", float, 0.0, 100.0,
       "endogenous CTL recruitment at saturating tumour burden (0 disables T cells)",
       "modelling choice; influx grows with tumour size (Kather et al. 2017; Kuznetsov 1994)",
       "T cells"),
    _p("recruitment_half_saturation", 2000, "cancer cells", int, 1, 10_000_000,
       "tumour size at which immune recruitment is half its maximum",
       "modelling choice (Michaelis-Menten recruitment as in Kuznetsov et al. 1994)", "T cells"),
    _p("tcell_speed", 5, "sites per h", int, 0, 40,
       "CTL moves per hour, also CAR-T and NK cells' (5 sites/h = 1.25 um/min)",
       "1-10 um/min in tumour tissue (Boissonnas 2007); 1 um/min (PhysiCell)", "T cells"),
    _p("chemotaxis_bias", 0.7, "1 (0-1)", float, 0.0, 1.0,
       "probability an immune cell steps up the chemokine gradient rather than at random",
       _MC, "T cells"),
    _p("chemokine_detection_limit", 1e-8, "a.u.", float, 0.0, 100.0,
       "lowest chemokine level an immune cell senses: it steps up the gradient only to a "
       "neighbour with at least this much (below it, it moves at random; 0 follows any "
       "gradient, however faint)",
       "modelling choice: far below any level a tumour keeps on a 100x100 grid (the least "
       "in every scenario, 2 seeds each, while a tumour was there: 2.3e-7 a.u., with one "
       "cancer cell left), so there it binds only once the field has decayed, about 10 h after "
       "a tumour is cleared; in the chemokine's arbitrary units, so scale it with "
       "chemokine_secretion", "T cells"),
    _p("tcell_infiltration", 0.2, "per move", float, 0.0, 1.0,
       "probability a CTL (also a CAR-T cell, NK cell or macrophage) squeezes past a cancer "
       "cell when no free site is next to it", _MC,
       "T cells"),
    _p("tcell_kill_prob", 0.17, "per h of contact", float, 0.0, 1.0,
       "probability an engaged CTL kills its target in one hour (about 6 h per kill)",
       "Breart et al. 2008 JCI 118:1390 (about 6 h per CTL-target pair in vivo)", "T cells"),
    _p("tcell_exhaustion_limit", 5, "kills or PD-1 blocks", int, 1, 100,
       "kills plus PD-1-blocked hours of engagement after which a CTL is exhausted and stops "
       "killing",
       "Kather et al. 2017 (IMkmax = 5, a killing capacity: kills only); counting PD-1-blocked "
       "hours too is a modelling choice; CARCADE uses 10", "T cells"),
    _p("tcell_exhausted_speed", 1, "sites per h", int, 0, 40,
       "moves per hour of an exhausted CTL or CAR-T cell, and of a spent NK cell (one that "
       "reached nk_kill_limit): it lingers and no longer kills",
       "modelling choice (exhausted cells are barely motile)", "T cells"),
    _p("tcell_max_divisions", 5, "divisions", int, 0, 20,
       "times a CTL lineage can divide after kills",
       "Kather et al. 2018 3-D model (5); the Kather et al. 2017 code (immunoABM IMpmax) has 10; "
       "spQSP-IO 7", "T cells"),
    _p("tcell_proliferation_prob", 0.5, "per kill", float, 0.0, 1.0,
       "probability a CTL divides after a kill (if it has divisions left)", _MC, "T cells"),
    _p("tcell_lifespan_days", 10.0, "day", float, 0.1, 365.0,
       "mean CTL lifespan in the tumour",
       "PhysiCell v1.2.1 (6.94e-5/min); spQSP-IO 10 +/- 1.5 d", "T cells"),
    _p("pd1_inhibition", 0.5, "1 (0-1)", float, 0.0, 1.0,
       "probability PD-L1 = 1 on the target blocks a kill attempt (scales with PD-L1)", _MC,
       "T cells"),
    # --- fields and PD-L1 ---------------------------------------------------------------------
    _p("pdl1_induction", 0.6, "1 (0-1)", float, 0.0, 1.0,
       "maximum PD-L1 a cancer cell gains from IFN-gamma (0 disables adaptive resistance)",
       _MC, "Fields"),
    _p("pdl1_ifng_half_max", 0.11, "ng/mL", float, 1e-4, 100.0,
       "IFN-gamma at half-maximal PD-L1 induction", "spQSP-IO (half-max 0.11 ng/mL, Hill 1.26)",
       "Fields"),
    _p("pdl1_ifng_hill", 1.26, "1", float, 0.1, 10.0,
       "Hill coefficient of the cell response to IFN-gamma (PD-L1 induction and cytostasis)",
       "spQSP-IO (Hill 1.26)", "Fields"),
    _p("pdl1_induction_time_h", 3.46, "h", float, 0.1, 500.0,
       "time constant of PD-L1 induction and loss (half-life x 1/ln 2)",
       "spQSP-IO PD-L1 half-life 0.1 d = 2.4 h, time constant 2.4 h / ln 2 = 3.46 h (in-vitro "
       "onset: mRNA at 14 h, protein at 48 h, J Immunother Cancer 2019 7:305)", "Fields"),
    _p("ifng_secretion", 5.0, "ng/mL per h per engaged CTL", float, 0.0, 1e5,
       "IFN-gamma released into the site of an engaged CTL (also of an NK cell on its target)",
       "modelling choice between spQSP-IO's own two settings files: 7.64e-10 ng/s per T cell "
       "(NSCLC_single, NSCLC_sim) into one 15 um site (3.375e-9 mL) is 815 ng/mL per h, and "
       "holds IFN-gamma 10-25x above PD-L1's half-max across the whole tumour (PD-L1 near/far "
       "CTLs 1.00, elimination fails); 4.31e-13 ng/s (NSCLC_multi) is 0.46 ng/mL per h: "
       "docs/validation.md, Tissue biology", "Fields"),
    _p("ifng_uptake", 1e-3, "1/s per cancer cell", float, 0.0, 1.0,
       "IFN-gamma taken up (receptor-bound and internalised) by a cancer cell, as a loss rate "
       "of the concentration at its site",
       "spQSP-IO (1e-3 /s: the loss rate in its 20 um voxel, used here unchanged in a 15 um "
       "site; rescaled by volume as ifng_secretion is, it would be 2.4e-3 /s: modelling "
       "choice)", "Fields"),
    _p("ifng_diffusion", 100.0, "um^2/s", float, 0.0, 1e4,
       "IFN-gamma diffusion coefficient", "spQSP-IO (1e-6 cm^2/s)", "Fields"),
    _p("ifng_half_life_h", 3.0, "h", float, 0.01, 1000.0, "IFN-gamma half-life",
       "spQSP-IO (decay 6.5e-5/s)", "Fields"),
    _p("chemokine_secretion", 0.02, "a.u. per h per cancer cell", float, 0.0, 100.0,
       "baseline chemokine released by a cancer cell", _MC, "Fields"),
    _p("chemokine_ifng_secretion", 0.2, "a.u. per h per cancer cell", float, 0.0, 100.0,
       "extra chemokine released by a cancer cell at saturating IFN-gamma (CXCL9/10)", _MC,
       "Fields"),
    _p("chemokine_diffusion", 16.7, "um^2/s", float, 0.0, 1e4,
       "chemokine diffusion coefficient", "PhysiCell chemoattractant (1000 um^2/min)", "Fields"),
    _p("chemokine_half_life_h", 0.72, "h", float, 0.01, 1000.0, "chemokine half-life",
       "PhysiCell chemoattractant (decay 0.016/min)", "Fields"),
    _p("tgfb_secretion_tumor", 0.005, "a.u. per h per cancer cell", float, 0.0, 100.0,
       "suppressive factor (TGF-beta-like) released by a cancer cell", _MC, "Fields"),
    _p("tgfb_secretion_mdsc", 0.5, "a.u. per h per MDSC", float, 0.0, 100.0,
       "suppressive factor released by an MDSC", _MC, "Fields"),
    _p("tgfb_diffusion", 28.0, "um^2/s", float, 0.0, 1e4,
       "suppressive factor diffusion coefficient",
       "TGF-beta 2.8e-7 cm^2/s: posterior median (CV 0.6) of a Bayesian calibration to the "
       "diffusion-vs-molecular-size law of Ramanujan et al. 2002 in collagen gel, not a "
       "measurement of TGF-beta itself (popellab/SPQSP_PDAC, "
       "calibration/active/output/inference_log.md, round 1, a development log)", "Fields"),
    _p("tgfb_half_life_h", 1.16, "h", float, 0.01, 1000.0, "suppressive factor half-life",
       "TGF-beta decay 14.3/day (popellab SPQSP_PDAC)", "Fields"),
    _p("tgfb_half_max", 0.1, "a.u.", float, 1e-6, 1e3,
       "suppressive factor at half-maximal suppression of CTL killing", _MC, "Fields"),
    _p("field_step_h", 1, "h", int, 1, 24,
       "hours between solves of the four fields (oxygen, IFN-gamma, chemokine, suppressive "
       "factor); each solve advances them that many hours, with IFN-gamma's source the CTLs' "
       "mean secretion since the last solve. In between, cells read the last solve's fields "
       "and PD-L1 still relaxes every hour. 1 = a solve every hour",
       "modelling choice (numerics): 1 solves every hour. 2 changed no outcome measurably "
       "(60 seeds each of 8 scenarios, 100x100, 30 days, benchmarks/field_clock.py; the "
       "engine-equivalence suite) with the fast engine 1.5-1.6x faster; 4 (2.0-2.1x) changed "
       "none at 100x100 but cleared the 50x50 elimination scenario sooner (40 against 30 of 60 "
       "seeds by day 10, p 0.007): docs/engines.md", "Fields"),
    # --- oxygen, hypoxia and cell death ------------------------------------------------------
    _p("oxygen_supply", 38.0, "mmHg", float, 0.0, 160.0,
       "oxygen at vessels and at the domain's edge (the tissue beyond is perfused)",
       "PhysiCell cancer_immune: Dirichlet boundary 38 mmHg (5% O2, physioxia)",
       "Oxygen and death"),
    _p("oxygen_diffusion", 1e5, "um^2/min", float, 1.0, 1e7, "oxygen diffusion coefficient",
       "PhysiCell cancer_immune (1e5 um^2/min)", "Oxygen and death"),
    _p("oxygen_decay", 0.1, "1/min", float, 0.0, 100.0,
       "oxygen loss at every site (stroma, interstitium, debris; where a cell is, its uptake "
       "is added to it)",
       "PhysiCell cancer_immune oxygen decay (0.1 /min)", "Oxygen and death"),
    _p("oxygen_uptake", 10.0, "1/min per cancer cell", float, 0.0, 1000.0,
       "oxygen uptake by a cancer cell, as a loss rate of the concentration at its site (one "
       "cell fills its site; 0 disables hypoxia and necrosis)",
       "PhysiCell cancer_immune (10 /min)", "Oxygen and death"),
    _p("oxygen_immune_relative_uptake", 0.1, "1 (fraction of a cancer cell's)", float, 0.0,
       10.0, "oxygen uptake of an immune cell relative to a cancer cell",
       "PhysiCell cancer_immune immune_o2_relative_uptake (0.1)", "Oxygen and death"),
    _p("oxygen_proliferation_threshold", 5.0, "mmHg", float, 0.0, 160.0,
       "oxygen below which cancer cells do not divide (division rises linearly above it)",
       "PhysiCell default o2_proliferation_threshold (5 mmHg)", "Oxygen and death"),
    _p("oxygen_proliferation_saturation", 15.0, "mmHg", float, 0.0, 160.0,
       "oxygen at and above which division runs at the full rate (division_time_h)",
       "modelling choice: full rate in non-hypoxic cells (the 15 mmHg hypoxic threshold), so "
       "division_time_h stays the in-tumour rate; PhysiCell cancer_immune uses 38 mmHg, which "
       "here leaves about 3x fewer untreated cells by day 30 (tumor_only, seeds 1-2) and lets "
       "the escape scenario grow about 6-fold in 30 days instead of 25-fold (docs/validation.md, "
       "Tissue biology)",
       "Oxygen and death"),
    _p("hypoxic_threshold", 15.0, "mmHg", float, 0.0, 160.0,
       "oxygen below which a cancer cell is hypoxic (reported, HypoxicFraction), and below "
       "which a macrophage's site is hypoxic, a full signal toward M2",
       "PhysiCell default o2_hypoxic_threshold (15 mmHg; HIF-1a half-max near 1.5-2% O2); the "
       "same threshold is the macrophages' hypoxia signal (hypoxia drives TAMs toward M2: "
       "Murdoch et al. 2004 Blood 104:2224)",
       "Oxygen and death"),
    _p("necrosis_threshold", 5.0, "mmHg", float, 0.0, 160.0,
       "oxygen below which cancer cells start to die by necrosis",
       "PhysiCell default o2_necrosis_threshold (5 mmHg)", "Oxygen and death"),
    _p("necrosis_max", 2.5, "mmHg", float, 0.0, 160.0,
       "oxygen at and below which necrosis runs at its maximum rate (linear in between)",
       "PhysiCell default o2_necrosis_max (2.5 mmHg)", "Oxygen and death"),
    _p("necrosis_time_h", 6.0, "h", float, 0.1, 1000.0,
       "mean survival of a cancer cell at or below necrosis_max (1 / maximum necrosis rate)",
       "PhysiCell default max_necrosis_rate 1/(6 x 60) /min: cells survive 6 h in very low "
       "oxygen", "Oxygen and death"),
    _p("debris_clearance_days", 60.0, "day", float, 0.1, 10_000.0,
       "mean time a necrotic site stays as debris (blocks division and migration) until cleared",
       "PhysiCell necrosis model: a lysed necrotic cell is removed after 60 d (fixed there; an "
       "exponential time with that mean here)", "Oxygen and death"),
    _p("apoptosis_rate", 5.31667e-5, "1/min", float, 0.0, 0.1,
       "cancer-cell apoptosis rate, independent of immunity and oxygen (the site is freed at "
       "once)",
       "PhysiCell template default (5.31667e-5 /min, mean 13 d; its cancer_immune sample sets 0)",
       "Oxygen and death"),
    # --- suppressor cells ---------------------------------------------------------------------
    _p("treg_influx", 0.2, "Treg per h", float, 0.0, 100.0,
       "Treg recruitment at saturating tumour burden (0 disables Tregs)", _MC, "Suppressors"),
    _p("treg_suppression", 0.6, "1 (0-1)", float, 0.0, 1.0,
       "fraction of CTL killing blocked within suppression_radius_sites of a Treg (CTL "
       "proliferation there is blocked outright)",
       "modelling choice (no portable constant; spQSP k_Teff_inhibBy_Treg is QSP-specific)",
       "Suppressors"),
    _p("treg_lifespan_days", 10.0, "day", float, 0.1, 365.0, "mean Treg lifespan in the tumour",
       _MC, "Suppressors"),
    _p("mdsc_influx", 0.2, "MDSC per h", float, 0.0, 100.0,
       "MDSC recruitment at saturating tumour burden (0 disables MDSCs)", _MC, "Suppressors"),
    _p("mdsc_suppression", 0.5, "1 (0-1)", float, 0.0, 1.0,
       "maximum fraction of CTL killing blocked by the suppressive factor", _MC, "Suppressors"),
    _p("mdsc_lifespan_days", 3.0, "day", float, 0.1, 365.0, "mean MDSC lifespan in the tumour",
       _MC, "Suppressors"),
    _p("suppressor_speed", 2, "sites per h", int, 0, 40,
       "Treg, MDSC and macrophage moves per hour", _MC, "Suppressors"),
    _p("suppression_radius_sites", 2, "sites (15 um)", int, 0, 20,
       "reach of Treg contact suppression and of the MDSC and M2-macrophage growth niches "
       "(Chebyshev distance)",
       "modelling choice (contact-range suppression: 2 sites is about 30 um)", "Suppressors"),
    # --- anti-PD-1 ----------------------------------------------------------------------------
    _p("anti_pd1_start_day", None, "day", float, 0.0, 10_000.0,
       "first anti-PD-1 dose (None = not given)", _MC, "Anti-PD-1", optional=True),
    _p("anti_pd1_interval_days", 21.0, "day", float, 0.5, 365.0, "days between anti-PD-1 doses",
       "pembrolizumab every 3 weeks (label)", "Anti-PD-1"),
    _p("anti_pd1_doses", 4, "doses", int, 1, 1000, "number of scheduled anti-PD-1 doses", _MC,
       "Anti-PD-1"),
    _p("anti_pd1_dose", 1.0, "standard doses", float, 0.0, 100.0,
       "anti-PD-1 amount per dose (1 = one standard infusion)", _MC, "Anti-PD-1"),
    _p("anti_pd1_half_life_days", 22.0, "day", float, 0.1, 1000.0,
       "anti-PD-1 antibody half-life",
       "pembrolizumab t1/2 22 d (label); nivolumab 26.7 d (CPT:PSP 2019 8:962)", "Anti-PD-1"),
    _p("anti_pd1_ec50", 0.1, "standard doses", float, 1e-6, 100.0,
       "antibody level at half-maximal PD-1 occupancy",
       "modelling choice: standard 3-weekly dosing keeps occupancy high, as reported for PD-1 "
       "antibodies (Brahmer 2010 JCO: over 70% for two months or more after a single dose); "
       "here a single dose falls below 70% on day 46, sooner than reported (an EC50 of about "
       "0.065 would hold it to day 60)", "Anti-PD-1"),
    # --- anti-CTLA-4 --------------------------------------------------------------------------
    _p("anti_ctla4_start_day", None, "day", float, 0.0, 10_000.0,
       "first anti-CTLA-4 dose (None = not given)", _MC, "Anti-CTLA-4", optional=True),
    _p("anti_ctla4_interval_days", 21.0, "day", float, 0.5, 365.0,
       "days between anti-CTLA-4 doses", "ipilimumab every 3 weeks x 4 (label)", "Anti-CTLA-4"),
    _p("anti_ctla4_doses", 4, "doses", int, 1, 1000, "number of scheduled anti-CTLA-4 doses",
       "ipilimumab every 3 weeks x 4 (label)", "Anti-CTLA-4"),
    _p("anti_ctla4_dose", 1.0, "standard doses", float, 0.0, 100.0,
       "anti-CTLA-4 amount per dose (1 = one standard infusion)", _MC, "Anti-CTLA-4"),
    _p("anti_ctla4_half_life_days", 15.0, "day", float, 0.1, 1000.0,
       "anti-CTLA-4 antibody half-life",
       "ipilimumab mean terminal half-life 15.4 d (CV 34%) in the FDA's approval summary "
       "(Saung et al. 2021 Oncologist 26:797, Table 2; the YERVOY label itself not read): 15 d",
       "Anti-CTLA-4"),
    _p("anti_ctla4_ec50", 0.1, "standard doses", float, 1e-6, 100.0,
       "antibody level at half-maximal CTLA-4 occupancy",
       "modelling choice: set equal to the anti-PD-1 EC50 default (0.1), which anti-CTLA-4 "
       "used before it had its own, so results are unchanged", "Anti-CTLA-4"),
    _p("anti_ctla4_treg_depletion", 0.8, "1 (0-1)", float, 0.0, 1.0,
       "fraction of Tregs depleted per standard dose, and of Treg recruitment blocked at full "
       "occupancy (a species-dependent option: 0 for ipilimumab in human tumours)",
       "modelling choice (Fc-gamma-R-dependent Treg depletion in mice, Simpson et al. 2013 J "
       "Exp Med 210:1695; Onizuka 1999 for timing); reportedly absent with ipilimumab in human "
       "tumours (Sharma et al. 2019 Clin Cancer Res 25:1233)",
       "Anti-CTLA-4"),
    _p("anti_ctla4_priming_boost", 1.0, "1 (fractional increase)", float, 0.0, 20.0,
       "increase of CTL priming in the lymph node at full anti-CTLA-4 occupancy (the extra CTLs "
       "arrive after ln_priming_delay_days)", _MC, "Anti-CTLA-4"),
    # --- vaccine ------------------------------------------------------------------------------
    _p("vaccine_start_day", None, "day", float, 0.0, 10_000.0,
       "first vaccine dose (None = not given)", _MC, "Vaccine", optional=True),
    _p("vaccine_interval_days", 14.0, "day", float, 0.5, 365.0, "days between vaccine doses",
       _MC, "Vaccine"),
    _p("vaccine_doses", 3, "doses", int, 1, 1000, "number of scheduled vaccine doses", _MC,
       "Vaccine"),
    _p("vaccine_dose", 1.0, "standard doses", float, 0.0, 100.0, "vaccine amount per dose", _MC,
       "Vaccine"),
    _p("vaccine_antigens", 0, "antigens", int, 0, 8,
       "how many antigens the vaccine targets, from antigen 0 up (0 = the founder's antigens)",
       _MC, "Vaccine"),
    _p("vaccine_priming_delay_days", 7.0, "day", float, 0.0, 60.0,
       "clonal expansion before vaccine-primed CTLs arrive",
       "clonal expansion lasts up to 7 or 8 days before the effector peak (case 24 of an "
       "immunology case book, doi:10.4324/9780203856864-24; docs/references.md): 7 d",
       "Vaccine"),
    _p("vaccine_influx", 2.0, "CTL per h per dose", float, 0.0, 100.0,
       "extra recruitment of vaccine-specific CTLs at the response peak", _MC, "Vaccine"),
    _p("vaccine_response_half_life_days", 3.5, "day", float, 0.1, 365.0,
       "decay of the vaccine response after its peak (contraction)",
       "CD8 T-cell numbers contract by 90-95% after the peak (Badovinac et al. 2004 Nat "
       "Immunol 5:809), within about 1-2 weeks (timing not checked at source): 90% in 10 d or "
       "95% in 14 d is a half-life of 3.0-3.2 d (ln 2 x 10 / ln 10, ln 2 x 14 / ln 20); 3.5 d, "
       "a modelling choice a little slower than that, gives 75% contraction after 1 week and "
       "94% after 2 weeks", "Vaccine"),
    # --- CAR-T --------------------------------------------------------------------------------
    _p("cart_start_day", None, "day", float, 0.0, 10_000.0,
       "CAR-T infusion day (None = not given)", _MC, "CAR-T", optional=True),
    _p("cart_dose", 200, "cells", int, 0, 100_000, "CAR-T cells placed per infusion", _MC,
       "CAR-T"),
    _p("cart_doses", 1, "infusions", int, 1, 100, "number of scheduled CAR-T infusions", _MC,
       "CAR-T"),
    _p("cart_interval_days", 14.0, "day", float, 0.5, 365.0, "days between CAR-T infusions", _MC,
       "CAR-T"),
    _p("cart_lifespan_days", 42.0, "day", float, 0.1, 2000.0, "mean CAR-T lifespan",
       "CARCADE (a death age of 6 +- 1 weeks; here the mean of an exponential lifetime, so "
       "28% die within 14 days); persistence to 554 d seen in DLBCL (Awasthi 2020)",
       "CAR-T"),
    _p("cart_exhaustion_limit", 10, "kills or PD-1 blocks", int, 1, 1000,
       "kills plus PD-1-blocked hours of engagement after which a CAR-T cell is exhausted",
       "CARCADE MAX_ANTIGEN_BINDING = 10", "CAR-T"),
    _p("cart_max_divisions", 10, "divisions", int, 0, 30,
       "times a CAR-T lineage can divide after kills", "CARCADE (10)", "CAR-T"),
    # --- macrophages ---------------------------------------------------------------------------
    _p("macrophage_influx", 0.0, "macrophages per h", float, 0.0, 100.0,
       "macrophage (monocyte) recruitment at saturating tumour burden, driven by the tumour's "
       "CSF-1 / CCL2 (0 disables macrophages)",
       "modelling choice: off by default until the stylized facts are re-calibrated with the "
       "whole immune cast (with 0.2, as mdsc_influx, three fact tests fail on the tissue "
       "biology); scenarios macrophage_niche (1.0) and the validation (0.2) turn them on. TAMs "
       "are the most abundant immune cells of many solid tumours (Mantovani et al. 2017 Nat Rev "
       "Clin Oncol 14:399), which the longer lifespan gives", "Macrophages"),
    _p("macrophage_lifespan_days", 14.0, "day", float, 0.1, 365.0,
       "mean lifespan of a macrophage in the tumour",
       "modelling choice: monocyte-derived TAMs are replenished from blood monocytes over "
       "weeks (Movahedi et al. 2010 Cancer Res 70:5728); 2 weeks", "Macrophages"),
    _p("macrophage_polarisation_time_h", 24.0, "h", float, 1.0, 1000.0,
       "mean time for a macrophage to switch between M1 and M2 under a full signal",
       "modelling choice: M1/M2 marker programmes are set within about a day of IFN-gamma or "
       "IL-4 stimulation in vitro (Murray et al. 2014 Immunity 41:14); 24 h", "Macrophages"),
    _p("macrophage_kill_prob", 0.005, "per h of contact", float, 0.0, 1.0,
       "probability an M1 macrophage kills (phagocytoses) a neighbouring cancer cell in one hour",
       "modelling choice: macrophage tumoricidal activity is slow next to CTLs' (about 6 h per "
       "kill, Breart 2008); about 8 days of contact per kill", "Macrophages"),
    _p("macrophage_ifng_secretion", 1.0, "ng/mL per h per engaged M1", float, 0.0, 1e5,
       "IFN-gamma (and IL-12-driven IFN-gamma) released into the site of an M1 macrophage in "
       "contact with a cancer cell",
       "modelling choice: a fifth of an engaged CTL's ifng_secretion (5); M1 macrophages "
       "amplify the type-1 response through IL-12 (Mantovani et al. 2017)", "Macrophages"),
    _p("m2_growth_boost", 0.5, "1 (fractional increase)", float, 0.0, 5.0,
       "extra division probability of a cancer cell within suppression_radius_sites of an M2 "
       "macrophage (growth factors such as EGF)",
       "modelling choice: as mdsc_growth_boost (0.5); M2 TAMs supply EGF and other growth "
       "factors (Wyckoff et al. 2004 Cancer Res 64:7022)", "Macrophages"),
    _p("tgfb_secretion_m2", 0.5, "a.u. per h per M2 macrophage", float, 0.0, 100.0,
       "suppressive factor (TGF-beta / IL-10-like) released by an M2 macrophage",
       "modelling choice: as tgfb_secretion_mdsc (0.5)", "Macrophages"),
    # --- NK cells -----------------------------------------------------------------------------
    _p("nk_influx", 0.0, "NK cells per h", float, 0.0, 100.0,
       "NK cell recruitment at saturating tumour burden (0 disables NK cells)",
       "modelling choice: off by default like macrophage_influx (scenario nk_surveillance: "
       "1.0; validation: 0.2, as mdsc_influx); NK cells are a small share of the immune "
       "infiltrate of most solid tumours (Melaiu et al. 2020 Front Immunol 10:3038)",
       "NK cells"),
    _p("nk_kill_prob", 0.2, "per h of contact", float, 0.0, 1.0,
       "probability an NK cell kills a neighbouring cancer cell without MHC-I in one hour "
       "(scaled by 1 - MHC-I: missing self)",
       "modelling choice: NK cells kill a susceptible target within tens of minutes to a few "
       "hours in vitro (Prager et al. 2019 J Exp Med 216:2113); slower in tissue, as CTLs "
       "(tcell_kill_prob 0.17)", "NK cells"),
    _p("nk_kill_limit", 5, "kills", int, 1, 100,
       "kills after which an NK cell is spent (serial-killing limit)",
       "Bhat & Watzl 2007 PLoS One 2:e326 (up to about 4 targets per NK cell); Prager et al. "
       "2019 J Exp Med 216:2113 (up to about 6, then exhausted); 5", "NK cells"),
    _p("nk_lifespan_days", 10.0, "day", float, 0.1, 365.0, "mean NK cell lifespan in the tumour",
       "modelling choice within in vivo labelling of human NK cells: labelled cells lost at "
       "6.9%/day, half-life under 10 days, turnover in blood about 2 weeks (Zhang et al. 2007 "
       "Immunology 121:258); a mean of 10 days is a half-life of 6.9 days", "NK cells"),
    _p("nk_tgfb_suppression", 0.5, "1 (0-1)", float, 0.0, 1.0,
       "maximum fraction of NK killing blocked by the suppressive factor",
       "modelling choice: as mdsc_suppression (0.5) for CTLs; TGF-beta down-regulates "
       "NKG2D/NKp30 and NK cytotoxicity (Castriconi et al. 2003 PNAS 100:4120; Viel et al. "
       "2016 Sci Signal 9:ra19)", "NK cells"),
    # --- anti-CSF-1R --------------------------------------------------------------------------
    _p("anti_csf1r_start_day", None, "day", float, 0.0, 10_000.0,
       "first anti-CSF-1R dose (None = not given)", _MC, "Anti-CSF-1R", optional=True),
    _p("anti_csf1r_interval_days", 14.0, "day", float, 0.5, 365.0,
       "days between anti-CSF-1R doses",
       "emactuzumab every 2 weeks (Ries et al. 2014 Cancer Cell 25:846; Cassier et al. 2015 "
       "Lancet Oncol 16:949)", "Anti-CSF-1R"),
    _p("anti_csf1r_doses", 4, "doses", int, 1, 1000, "number of scheduled anti-CSF-1R doses",
       _MC, "Anti-CSF-1R"),
    _p("anti_csf1r_dose", 1.0, "standard doses", float, 0.0, 100.0,
       "anti-CSF-1R amount per dose (1 = one standard infusion)", _MC, "Anti-CSF-1R"),
    _p("anti_csf1r_half_life_days", 4.0, "day", float, 0.1, 1000.0,
       "anti-CSF-1R antibody half-life",
       "emactuzumab elimination half-life 1.5-9 d, rising with dose (target-mediated "
       "clearance; Ries et al. 2014); 4 d", "Anti-CSF-1R"),
    _p("anti_csf1r_ec50", 0.1, "standard doses", float, 1e-6, 100.0,
       "antibody level at half-maximal CSF-1R occupancy",
       "modelling choice: as anti_pd1_ec50 (0.1)", "Anti-CSF-1R"),
    _p("anti_csf1r_depletion_rate", 0.5, "1/day", float, 0.0, 50.0,
       "extra death rate of macrophages at full CSF-1R occupancy",
       "modelling choice: CSF-1R blockade depletes most TAMs within about a week in mouse "
       "tumours and patients (Ries et al. 2014 Cancer Cell 25:846); 0.5/day halves them in "
       "1.4 d", "Anti-CSF-1R"),
    _p("anti_csf1r_recruitment_block", 0.9, "1 (0-1)", float, 0.0, 1.0,
       "fraction of macrophage recruitment blocked at full CSF-1R occupancy",
       "modelling choice: monocyte-to-macrophage differentiation needs CSF-1R signalling "
       "(Ries et al. 2014)", "Anti-CSF-1R"),
    _p("anti_csf1r_repolarisation", 0.02, "per h", float, 0.0, 1.0,
       "extra probability per hour that an M2 macrophage turns M1 at full CSF-1R occupancy",
       "modelling choice: BLZ945 did not deplete glioma TAMs but lowered their M2 markers "
       "within a week (Pyonteck et al. 2013 Nat Med 19:1264); about 2 days", "Anti-CSF-1R"),
    # --- T-cell states and lymph-node priming (abm/agents/tcell.py, abm/lymphnode.py) ---------
    _p("tcell_progenitor_fraction", 0.0, "1 (0-1)", float, 0.0, 1.0,
       "share of newly primed CTLs that arrive as progenitor-exhausted (TCF-1+, stem-like) "
       "cells, which divide on antigen and give rise to effectors but do not kill (0 = none: "
       "every CTL arrives as an effector, the model without T-cell states)",
       "modelling choice. 0 by default: with states and the lymph node on, the stylized facts "
       "were re-measured; two fail (bounded equilibrium; combination beats anti-PD-1 alone) and "
       "several weaken without re-tuning the scenario presets (docs/validation_tcells.md). "
       "0.5, used in docs/validation_tcells.md, gives 4-10% progenitors among the tumour's CTLs "
       "in a hot tumour (effectors expand by killing), against about 10-30% progenitor-"
       "exhausted (TCF-1+ / SLAMF6+) cells among tumour PD-1+ CD8 T cells (Miller et al. 2019 "
       "Nat Immunol 20:326; Siddiqui et al. 2019 Immunity 50:195; CXCR5+ subset in chronic "
       "LCMV, Im et al. 2016 Nature 537:417)", "T-cell states and priming"),
    _p("lymph_node_priming", False, "1 (true/false)", bool, None, None,
       "prime CTL clones in the draining lymph node (abm.lymphnode): from antigen released by "
       "dying cancer cells and shed by living ones, arriving ln_priming_delay_days later; "
       "anti-CTLA-4 and vaccines act there. False: CTLs are recruited at once, primed against "
       "the antigens the tumour shows now",
       "modelling choice. False by default: with the node (and T-cell states) the delay and the "
       "kill -> antigen -> priming loop make outcomes bistable; the equilibrium scenario grows "
       "to fill the field (peak 12x in 120 d, 0 of 8 cleared) and anti-PD-1 alone clears the "
       "combination tumour, so two stylized facts fail without re-tuning the presets "
       "(docs/validation_tcells.md)", "T-cell states and priming"),
    _p("tcell_progenitor_lifespan_days", 30.0, "day", float, 0.1, 365.0,
       "mean lifespan of a progenitor-exhausted CTL in the tumour (effectors: "
       "tcell_lifespan_days)",
       "modelling choice: TCF-1+ progenitors are long-lived and self-renewing, sustaining the "
       "response in chronic infection (Utzschneider et al. 2016 Immunity 45:415; Im et al. "
       "2016 Nature 537:417); 3 x the effector lifespan", "T-cell states and priming"),
    _p("tcell_progenitor_division_prob", 0.1, "per h of antigen contact", float, 0.0, 1.0,
       "probability a progenitor-exhausted CTL in contact with its antigen divides in one hour "
       "(self-renewal plus one effector daughter), unless PD-1 signalling blocks it",
       "modelling choice: one division per 10 h of antigen contact (activated CD8 T cells "
       "divide every 6-12 h); progenitors are the "
       "cells that proliferate after PD-1 blockade (Im et al. 2016 Nature 537:417)",
       "T-cell states and priming"),
    _p("tcell_progenitor_pd1_inhibition", 3.0, "1 (per unit PD-L1)", float, 0.0, 10.0,
       "strength of PD-1 inhibition of a progenitor's division: blocked with probability "
       "min(1, this x PD-L1 of the contacted cell x (1 - PD-1 occupancy)) each hour",
       "modelling choice tuned so that anti-PD-1 multiplies progenitor divisions severalfold "
       "at the PD-L1 of a hot tumour (the proliferative burst of Im et al. 2016 Nature 537:417); "
       "PD-1 signalling shuts off the CD28 co-stimulation the burst needs (Kamphorst et al. "
       "2017 Science 355:1423; Hui et al. 2017 Science 355:1428)", "T-cell states and priming"),
    _p("ln_priming_delay_days", 5.0, "day", float, 0.0, 30.0,
       "delay from priming of a CTL clone in the draining lymph node to its arrival at the "
       "tumour's vessels (DC contacts, clonal expansion, egress)",
       "Mempel et al. 2004 Nature 427:154 (stable T cell-DC contacts 8-20 h after entry, "
       "proliferation from day 2); expansion over about 16 generations (spQSP-IO n_aT_prolif); "
       "clonal expansion lasts up to 7 or 8 days before the effector peak (case 24 of an "
       "immunology case book, doi:10.4324/9780203856864-24; docs/references.md): 5 d",
       "T-cell states and priming"),
    _p("ln_primed_before_start", True, "1 (true/false)", bool, None, None,
       "the founder tumour was primed against before day 0: CTL clones primed in the delay "
       "before day 0 arrive during the first ln_priming_delay_days (False: a naive lymph node, "
       "no CTL before the delay)",
       "modelling choice: the founder tumour (200 cells) existed before the simulation "
       "starts; keeps the early immune response of the scenarios", "T-cell states and priming"),
    _p("ln_antigen_half_life_days", 4.17, "day", float, 0.01, 365.0,
       "half-life of tumour antigen presented in the draining lymph node",
       "spQSP-IO param_all.xml: peptide-MHC degradation on mature APCs k_deg_p_M = 0.1663 "
       "/day (half-life 4.17 d)", "T-cell states and priming"),
    _p("ln_shedding", 0.05, "dying-cell equivalents per living cell per h", float, 0.0, 10.0,
       "antigen a living cancer cell sheds toward the lymph node each hour, relative to the "
       "antigen released by one cell killed by a CTL (the untreated tumour's priming)",
       "modelling choice: a kill releases as much antigen as 20 h of shedding by one cell; "
       "tuned so that killing feeds priming without doubling the recruitment of the hot "
       "scenarios (see docs/validation_tcells.md)", "T-cell states and priming"),
    _p("ln_necrotic_release", 1.0, "dying-cell equivalents", float, 0.0, 10.0,
       "antigen released toward the lymph node by a cell dying of necrosis, relative to one "
       "killed by a CTL (apoptotic cells release none: tolerogenic death)",
       "modelling choice; necrosis is immunogenic (DAMPs), apoptosis tolerogenic (Green et al. "
       "2009 Nat Rev Immunol 9:353)", "T-cell states and priming"),
]

PARAMS: dict[str, Param] = {p.name: p for p in _LIST}
GROUPS: list[str] = list(dict.fromkeys(p.group for p in _LIST))

# Deprecated names (old -> new), accepted with a FutureWarning for one release so saved sweep
# specs, scripts and dashboard links still run. One drug, one prefix: the therapy's name.
ALIASES: dict[str, str] = {
    "checkpoint_start_day": "anti_pd1_start_day",
    "checkpoint_interval_days": "anti_pd1_interval_days",
    "checkpoint_doses": "anti_pd1_doses",
    "checkpoint_dose": "anti_pd1_dose",
    "pd1_half_life_days": "anti_pd1_half_life_days",
    "pd1_ec50": "anti_pd1_ec50",
    "ctla4_start_day": "anti_ctla4_start_day",
    "ctla4_interval_days": "anti_ctla4_interval_days",
    "ctla4_doses": "anti_ctla4_doses",
    "ctla4_dose": "anti_ctla4_dose",
    "ctla4_half_life_days": "anti_ctla4_half_life_days",
    "ctla4_treg_depletion": "anti_ctla4_treg_depletion",
    "ctla4_priming_boost": "anti_ctla4_priming_boost",
}
assert set(ALIASES.values()) <= set(PARAMS) and not set(ALIASES) & set(PARAMS)


def defaults() -> dict[str, Any]:
    """The default value of every parameter."""
    return {name: p.default for name, p in PARAMS.items()}


def seed_digits_limit() -> int:
    """The most digits a seed may have: Python's limit on writing an integer out
    (``sys.get_int_max_str_digits()``, 4300 unless changed; 0 = none). A model records its seed
    (Mesa logs it, ``model.seed``, the run's JSON), so a longer one could not be run."""
    return sys.get_int_max_str_digits()


def validate_rng(value: Any) -> int | None:
    """The seed: ``None``, a non-negative int, or a numeric string (from a text box), of at
    most ``seed_digits_limit()`` digits."""
    if value is None:
        return None
    original = value
    limit = seed_digits_limit()
    if isinstance(value, str):
        text = value.strip()
        if limit and len(text) > limit and text.isdecimal():
            value = 10**limit  # too many digits for int(): refused below, naming the limit
        else:
            try:
                value = int(text)
            except ValueError:
                value = None
    if (limit and isinstance(value, int) and not isinstance(value, bool) and value > 0
            and _exponent(value) >= limit):
        raise ValueError(
            f"parameter 'rng' = {value_text(original)} is not allowed: expected a seed of at "
            f"most {limit} digits (Python's limit for writing a whole number out; the seed is "
            "recorded with the run)"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        try:
            import numpy as np

            if isinstance(original, np.integer) and original >= 0:
                return int(original)
        except ImportError:  # pragma: no cover
            pass
        raise ValueError(
            f"parameter 'rng' = {value_text(original)} is not allowed: expected a non-negative "
            "integer seed (or a string of digits) or None"
        )
    return value


def model_seed(value: Any) -> int:
    """A model's seed: ``value`` checked by ``validate_rng``, or, for None, one drawn from the
    system's entropy, so that every model records (``model.seed``) the seed that repeats it."""
    seed = validate_rng(value)
    if seed is None:
        import secrets

        seed = secrets.randbelow(2**32)
    return seed


def did_you_mean(name: Any, choices: Iterable[str], n: int = 1) -> str:
    """``"; did you mean tcell_influx?"`` for a mistyped (or wrongly cased) name, else ``""``."""
    import difflib

    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in choices], n=n)
    by_lower = {c.lower(): c for c in choices}
    return f"; did you mean {', '.join(by_lower[c] for c in close)}?" if close else ""


def canonical(name: str) -> str:
    """The current name of a parameter: ``ALIASES[name]`` for a deprecated name, else ``name``
    (no warning; :func:`validate` warns)."""
    return ALIASES.get(name, name)


# names people give as parameters that are settings of something else: the hint says where
NOT_PARAMETERS = {
    "engine": ": the engine is not a model parameter; choose it with `abm run --engine fast`, "
              "`engine = \"fast\"` in a sweep or cohort spec's [sweep] table, or "
              "`FastTumorModel` instead of `TumorModel` in Python",
    "seed": ": the seed is `rng` (`abm run --rng 3`, `TumorModel(rng=3)`; a sweep's [sweep] "
            "seed)",
    "species": ": the species is a preset of parameters, not a parameter; choose it with "
               "`abm run --species mouse`, `species = \"mouse\"` in a sweep's [sweep] table, or "
               "`TumorModel.from_scenario(name, species=\"mouse\")`",
}


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Validate overrides; return them coerced, under their current names.

    Unknown names raise ``ValueError``. A deprecated name (``ALIASES``) is accepted with a
    ``FutureWarning`` naming the old and the new name; giving both raises ``ValueError``.
    """
    out = {}
    for name, value in values.items():
        if name == "rng":
            out[name] = validate_rng(value)
            continue
        if name in ALIASES:
            new = ALIASES[name]
            if new in values:
                raise ValueError(
                    f"parameters {name!r} and {new!r} are both given: {name!r} is the old name "
                    f"of {new!r}; give only {new!r}"
                )
            import warnings

            warnings.warn(
                f"parameter {name!r} is deprecated and will be removed: use {new!r}",
                FutureWarning,
                stacklevel=3,
            )
            try:
                out[new] = PARAMS[new].validate(value)
            except ValueError as err:
                raise ValueError(f"{err} (given as {name!r}, its deprecated name)") from None
            continue
        if name not in PARAMS:
            hint = NOT_PARAMETERS.get(name, did_you_mean(name, PARAMS, n=3))
            raise ValueError(f"unknown parameter {value_text(name)}{hint} (see `abm params`)")
        out[name] = PARAMS[name].validate(value)
    return out


def resolve(scenario: str | None = None, *overrides: dict[str, Any],
            species: str | None = None) -> dict[str, Any]:
    """Every model parameter, validated: the defaults, then the species preset (``species``, else
    the scenario's ``"species"``, else none; ``abm.species``), then the scenario's presets (if
    any), then each ``overrides`` dict in order (later ones win).

    The one way the CLI, the sweep runner, the dashboard and ``TumorModel.from_scenario`` turn
    "a scenario plus some changes" into parameters. A bad scenario, species, name or value raises
    ``ValueError`` naming it.
    """
    from abm.scenarios import scenario_params
    from abm.species import effective_species, species_params

    values = defaults()
    if scenario is not None:
        scenario_params(scenario)  # an unknown scenario is named before a species is looked up
    chosen = effective_species(scenario, species)
    if chosen is not None:
        values.update(validate(species_params(chosen)))
    if scenario is not None:
        values.update(validate(scenario_params(scenario)))
    for changes in overrides:
        values.update(validate(changes))
    return values


def checked_together() -> list[str]:
    """The parameters ``check_together`` reads (the sweep checks every combination of them)."""
    return ["width", "height", "initial_tumor_cells", "necrosis_max", "necrosis_threshold",
            "oxygen_proliferation_threshold", "oxygen_proliferation_saturation",
            *(name for name in PARAMS if name.startswith("mutation_weight_"))]


def check_together(values: dict[str, Any]) -> None:
    """The rules that span several parameters, for a full set of resolved ``values``: the founder
    tumour must fit the grid, the oxygen thresholds must be in order, and the mutation weights
    cannot all be 0. ``ValueError`` names the
    parameters. The model checks these at construction; the sweep runner checks every point of a
    sweep with the same function before any run."""
    width, height = values["width"], values["height"]
    if values["initial_tumor_cells"] > width * height:
        raise ValueError(
            f"parameter 'initial_tumor_cells' = {values['initial_tumor_cells']} is not "
            f"allowed: expected at most width x height = {width * height} sites"
        )
    for low, high in (("necrosis_max", "necrosis_threshold"),
                      ("oxygen_proliferation_threshold", "oxygen_proliferation_saturation")):
        if not values[low] < values[high]:
            raise ValueError(
                f"parameters {low!r} = {values[low]} and {high!r} = {values[high]} are not "
                f"allowed: expected {low} < {high} (mmHg)"
            )
    weights = [name for name in PARAMS if name.startswith("mutation_weight_")]
    if not sum(values[name] for name in weights) > 0:
        raise ValueError(
            "parameters " + ", ".join(f"'{name}'" for name in weights)
            + " are all 0, which is not allowed: expected at least one > 0 (they are "
            "relative weights of what a mutation does)"
        )


def markdown_table() -> str:
    """The parameter table for the docs, generated from ``PARAMS``."""
    lines = []
    for group in GROUPS:
        lines += [f"\n### {group}\n", "| name | default | unit | allowed | description | source |",
                  "|---|---|---|---|---|---|"]
        for p in _LIST:
            if p.group == group:
                lines.append(
                    f"| `{p.name}` | {p.default} | {p.unit} | {p.allowed()} | {p.description} "
                    f"| {p.source} |"
                )
    return "\n".join(lines) + "\n"
