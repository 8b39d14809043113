"""TumorModel: the grid, the fields, the step order and the data collected.

One step is one hour; one site is about 15 um and holds one cell (docs/design.md section 2).

Step order (fixed):

1. treatments: scheduled doses are given; drugs decay and write their effects;
2. fields: vessels enclosed by tumour may collapse; oxygen (quasi-steady: supplied at the
   functional vessels and the domain's edge, taken up by living cells), IFN-gamma (taken up by
   cancer cells), chemokine and suppressive factor diffuse, decay and take up this hour's
   sources; IFN-gamma induces PD-L1 on cancer cells;
3. cancer cells: apoptosis (every cell) and necrosis (cells below the necrosis threshold, which
   leave debris) are drawn for all cells at once, debris is cleared at its rate; then, among
   cells with a free neighbour (contact inhibition), who divides is drawn for all at once and
   the dividers divide in random order, each into a neighbour still free at its turn;
4. T cells and CAR-T cells: recruitment at vessels, then each cell acts, in random order;
5. suppressors: Treg and MDSC recruitment, then each acts, in random order;
5b. innate cells: macrophage and NK recruitment, then each acts, in random order
   (``abm.agents.macrophage``, ``abm.agents.nk``);
6. data collection (one row per step) and the stop condition (the tumour is gone).

Besides Mesa's grid there are a few numpy layers per site (what occupies it, and the traits of
the cancer cell there) so that counting, masks and field sources are vectorised: the interior of
a dense tumour costs nothing per step. Both belong to ``model.tissue`` (``abm.tissue.Tissue``),
the only writer of the layers; ``model.kind``, ``model.antigens``, ``model.agent_at`` etc. read
them.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import mesa
import numpy as np
from mesa.discrete_space import Cell, OrthogonalMooreGrid
from scipy import ndimage

from abm import params as P
from abm.agents import TREATMENTS, CancerCell, CARTCell, Kind, TCell
from abm.agents.cancer import MUTATIONS, N_ANTIGENS, Debris
from abm.agents.macrophage import Macrophage
from abm.agents.nk import NKCell
from abm.agents.suppressors import MDSC, Treg
from abm.fields import Field, ReactionField
from abm.lymphnode import LymphNode
from abm.tissue import Tissue

# model reporters: column -> attribute (names, not lambdas, so runs pickle across processes)
REPORTERS = {
    "Step": "steps",
    "Day": "day",
    "CancerCells": "n_cancer",
    "TCells": "n_tcells",
    "CARTCells": "n_cart",
    "Tregs": "n_tregs",
    "MDSCs": "n_mdscs",
    "Kills": "kills",
    "MeanAntigenicity": "mean_antigenicity",
    "AntigenNegativeFraction": "antigen_negative_fraction",
    "MeanPDL1": "mean_pdl1",
    "CloneCount": "clone_count",
    "ExhaustedFraction": "exhausted_fraction",
    "EngagedTCells": "n_engaged",
    "PD1Occupancy": "pd1_occupancy",
    "CTLA4Occupancy": "ctla4_occupancy",
    "VaccineResponse": "vaccine_response",
    "NecroticSites": "n_necrotic",
    "HypoxicFraction": "hypoxic_fraction",
    "Apoptoses": "apoptoses",
    "Necroses": "necroses",
    "Vessels": "n_vessels",
    "Macrophages": "n_macrophages",
    "M2Fraction": "m2_fraction",
    "NKCells": "n_nk",
    "MeanMHC": "mean_mhc",
    "MacrophageKills": "macrophage_kills",
    "NKKills": "nk_kills",
    "CSF1ROccupancy": "csf1r_occupancy",
    "ProgenitorFraction": "progenitor_fraction",
    "ProgenitorDivisions": "progenitor_divisions",
    "PrimedAntigens": "primed_antigens",
    "PrimedCTLs": "primed_ctls",
}
# the reporters that are means over the living cancer cells: NaN, a missing value, once none
# is left (a mean over no cells is not 0: mean antigenicity 0 would read as complete
# immunoediting); the immune-cell fractions read 0 when there are no such cells
MEANS_OVER_CANCER_CELLS = ("MeanAntigenicity", "AntigenNegativeFraction", "MeanPDL1",
                           "HypoxicFraction", "MeanMHC")


def _neighbourhood(mask: np.ndarray, radius: int) -> np.ndarray:
    """Sites within ``radius`` (Chebyshev distance) of a True site."""
    if not mask.any():
        return np.zeros_like(mask)
    return ndimage.maximum_filter(mask, size=2 * radius + 1, mode="constant", cval=False)


class TumorModel(mesa.Model):
    """An agent-based model of a tumour and its immune microenvironment.

    Every keyword argument is a parameter from ``abm.params.PARAMS`` (default, unit, range and
    source are there and in ``docs/parameters.md``); ``rng`` is the seed (an int or a string of
    digits; None draws one, kept in ``model.seed`` so the run can be repeated). A wrong name,
    type or out-of-range value raises ``ValueError`` naming it.
    """

    def __init__(self, *, rng: int | str | None = None, **params: Any) -> None:
        values = P.resolve(None, params)
        seed = P.model_seed(rng)  # None: a drawn seed, recorded in model.seed
        P.check_together(values)
        width, height = values["width"], values["height"]
        # relative weights of what a mutation does, in the order of cancer.MUTATIONS
        self.mutation_weights = tuple(values[f"mutation_weight_{m}"] for m in MUTATIONS)
        super().__init__(rng=seed)
        self.seed = seed
        self.p = values
        self.width, self.height = width, height

        self.grid = OrthogonalMooreGrid((width, height), torus=False, capacity=1,
                                        random=self.random)
        shape = (width, height)
        self.tissue = Tissue(self.grid)  # who is where, and the per-site layers
        self.agent_at = self.tissue.agent_at

        self._make_fields(shape)
        self.treg_near = np.zeros(shape, dtype=bool)
        self.mdsc_near = np.zeros(shape, dtype=bool)
        self.m2_near = np.zeros(shape, dtype=bool)  # within suppression_radius_sites of an M2
        self.ifng_hill = np.zeros(shape)  # cells' response to local IFN-gamma, 0-1

        self.kills = 0  # by CTLs and CAR-T cells
        self.macrophage_kills = 0
        self.nk_kills = 0
        self.apoptoses = 0
        self.necroses = 0
        self.progenitor_divisions = 0  # divisions of progenitor-exhausted CTLs so far
        self.dose_log: list[dict[str, Any]] = []
        self._next_clone = 0
        self.effects: dict[str, Any] = {}
        self._reset_effects()

        self._seed_tumour()
        self.vessels = self._place_vessels()  # functional vessels: oxygen supply and entry
        self.collapsed_vessels: list[tuple[int, int]] = []
        self._setup_oxygen()
        self.fields = {"oxygen": self.oxygen, "chemokine": self.chemokine, "ifng": self.ifng,
                       "tgfb": self.tgfb}
        self.treatments = {name: cls(self) for name, cls in TREATMENTS.items()}
        # CTLs recruited so far per antigen (immediate recruitment; the lymph node keeps its own)
        self.primed_by_antigen = np.zeros(N_ANTIGENS, dtype=np.int64)
        self.lymph_node: LymphNode | None = None
        if self.p["lymph_node_priming"]:
            self._census()  # the antigen counts the lymph node starts from
            self.lymph_node = LymphNode(self)  # priming of CTL clones (abm.lymphnode)

        self.datacollector = mesa.DataCollector(model_reporters=REPORTERS)
        self._census()
        self.datacollector.collect(self)

    # --- construction ---------------------------------------------------------------------
    def _make_fields(self, shape: tuple[int, int]) -> None:
        """The chemokine, IFN-gamma and suppressive fields (oxygen is set up with the vessels,
        ``_setup_oxygen``) and the IFN-gamma source map. Shared with the fast engine."""
        p = self.p
        dt_h = float(p["field_step_h"])  # each solve advances the fields this many hours
        self._field_hours = 0  # hours stepped, for the solves every field_step_h hours
        self.chemokine = Field("chemokine", shape, p["chemokine_diffusion"],
                               p["chemokine_half_life_h"], dt_h=dt_h)
        # IFN-gamma is lost by decay everywhere and by uptake at cancer cells (spQSP-IO), so its
        # loss varies by site: an implicit solver (abm.fields.ReactionField), closed edges
        self._ifng_decay_h = np.log(2) / p["ifng_half_life_h"]
        self._ifng_uptake_h = p["ifng_uptake"] * 3600.0
        # preconditioner level: the decay alone (most sites hold no cancer cell); over 8
        # scenarios x 2 seeds (100x100, 30 days) this needs fewer iterations than the geometric
        # mean of the smallest and largest loss (1.0-3.1 per hour instead of 1.3-3.0, fewer in
        # 15 of 16 runs) and ends as close to the exact field or closer
        # (benchmarks/preconditioner.py)
        self.ifng = ReactionField(
            "IFN-gamma", shape, p["ifng_diffusion"], unit="ng/mL", tol=1e-5, dt_h=dt_h,
            k_ref_per_h=float(self._ifng_decay_h))
        self.tgfb = Field("suppressive factor", shape, p["tgfb_diffusion"],
                          p["tgfb_half_life_h"], dt_h=dt_h)
        self.ifng_source = np.zeros(shape)  # CTLs' secretion since the last field solve

    @classmethod
    def from_scenario(cls, name: str, species: str | None = None,
                      **overrides: Any) -> TumorModel:
        """Build the model from a named scenario (``abm.scenarios.SCENARIOS``) plus overrides
        (``rng`` among them), resolved by :func:`abm.params.resolve`; ``species`` (``"mouse"``
        or ``"human"``, ``abm.species``) applies that preset under the scenario's own, as
        ``abm run --species`` does."""
        rng = overrides.pop("rng", None)
        return cls(rng=rng, **P.resolve(name, overrides, species=species))

    def new_clone_id(self) -> int:
        clone = self._next_clone
        self._next_clone += 1
        return clone

    def _seed_tumour(self) -> None:
        """The founder tumour: a compact disc of ``initial_tumor_cells`` at the centre."""
        p = self.p
        xs, ys = np.indices((self.width, self.height))
        dist = np.hypot(xs - (self.width - 1) / 2, ys - (self.height - 1) / 2)
        order = np.argsort(dist, axis=None, kind="stable")[: p["initial_tumor_cells"]]
        founder = self.new_clone_id()
        negative = None
        antigens = (1 << p["founder_antigens"]) - 1
        for flat in order:
            x, y = divmod(int(flat), self.height)
            car_target = self.random.random() >= p["initial_antigen_negative_fraction"]
            clone, parent = founder, -1
            if not car_target:
                negative = self.new_clone_id() if negative is None else negative
                clone, parent = negative, founder
            founder_cell = CancerCell(self, antigens, p["founder_mhc"], p["founder_pdl1"],
                                      car_target, clone, parent)
            founder_cell.place(self.grid[(x, y)])

    def _place_vessels(self) -> list[tuple[int, int]]:
        """Vessel sites (where immune cells enter), scattered outside the founder tumour."""
        n = round(self.p["vessel_density"] * self.width * self.height)
        candidates = np.flatnonzero(self.kind.ravel() == Kind.EMPTY)
        if n == 0 or candidates.size == 0:
            return []
        chosen = self.rng.choice(candidates, size=min(n, candidates.size), replace=False)
        return [divmod(int(f), self.height) for f in chosen]

    def _setup_oxygen(self) -> None:
        """The oxygen field (mmHg): held at ``oxygen_supply`` at vessels and at the domain's
        edge, taken up by living cells, lost slowly elsewhere. D = 1e5 um^2/min on 15 um sites
        is 26,700 sites^2 per hour and uptake 10 /min is 600 per hour: the profile settles in
        seconds, so each hour's solve is the quasi-steady profile for that hour's cells (the
        diffusion length sqrt(D/k) is 100 um, 6.7 sites, in a tumour)."""
        p = self.p
        per_h = 60.0
        self._o2_background = p["oxygen_decay"] * per_h
        self._o2_uptake = np.zeros(len(Kind))  # loss rate per hour by what occupies the site
        self._o2_uptake[Kind.CANCER] = p["oxygen_uptake"] * per_h
        for k in (Kind.TCELL, Kind.CART, Kind.TREG, Kind.MDSC, Kind.MACROPHAGE, Kind.NK):
            self._o2_uptake[k] = p["oxygen_uptake"] * p["oxygen_immune_relative_uptake"] * per_h
        self._o2_uptake += self._o2_background
        # preconditioner level between the background and a cancer cell's loss (a higher one
        # needs fewer iterations only because its stopping test is looser: at 4.65x the solves
        # end up to 0.06-0.13 mmHg from the exact field instead of 0.03-0.05, tolerance 0.038;
        # benchmarks/preconditioner.py)
        k_ref = float(np.sqrt((self._o2_background + 1.0) * (self._o2_uptake[Kind.CANCER] + 1.0)))
        supply = p["oxygen_supply"]
        self.oxygen = ReactionField(
            "oxygen", (self.width, self.height), p["oxygen_diffusion"] / 60.0, k_ref,
            boundary_level=supply, pinned=self.vessels, pinned_level=supply, unit="mmHg",
            tol=1e-3 * max(supply, 1e-3), max_iter=500, dt_h=float(p["field_step_h"]))
        self.oxygen.data[...] = supply
        self.oxygen.step(self._o2_uptake[self.kind])
        self._update_oxygen_effects()

    def _update_oxygen_effects(self) -> None:
        """Per-site division factor (0-1) and necrosis probability this hour, from oxygen."""
        p, o2 = self.p, self.oxygen.data
        low, high = p["oxygen_proliferation_threshold"], p["oxygen_proliferation_saturation"]
        self.oxygen_growth = np.clip((o2 - low) / (high - low), 0.0, 1.0)
        thr, worst = p["necrosis_threshold"], p["necrosis_max"]
        rate = np.clip((thr - o2) / (thr - worst), 0.0, 1.0) / p["necrosis_time_h"]
        self._necrosis_prob = -np.expm1(-rate)

    # --- the per-site layers, owned by the tissue (read them here; write through the tissue) --
    @property
    def kind(self) -> np.ndarray:
        """What occupies each site (``Kind``)."""
        return self.tissue.kind

    @property
    def antigens(self) -> np.ndarray:
        """Antigen bitmask of the cancer cell at each site (0 where none)."""
        return self.tissue.antigens

    @property
    def antigenicity(self) -> np.ndarray:
        """Antigenicity of the cancer cell at each site (0 where none)."""
        return self.tissue.antigenicity

    @property
    def pdl1_base(self) -> np.ndarray:
        """Constitutive PD-L1 of the cancer cell at each site (0 where none)."""
        return self.tissue.pdl1_base

    @property
    def pdl1_induced(self) -> np.ndarray:
        """IFN-gamma-induced PD-L1 state (0-1) of the cancer cell at each site (0 where none)."""
        return self.tissue.pdl1_induced

    @property
    def car_negative(self) -> np.ndarray:
        """True where the cancer cell lacks the CAR-T target."""
        return self.tissue.car_negative

    @property
    def clone(self) -> np.ndarray:
        """Clone id of the cancer cell at each site (-1 where none)."""
        return self.tissue.clone

    def entry_site(self) -> Cell | None:
        """A free grid site at or next to a random vessel (or the domain edge if there are
        none); None if none was found in 20 tries."""
        for _ in range(20):
            if self.vessels:
                x, y = self.vessels[self.random.randrange(len(self.vessels))]
            else:
                # a random site on the domain edge: left/right or bottom/top
                w, h = self.width - 1, self.height - 1
                if self.random.randrange(2):
                    x, y = self.random.choice((0, w)), self.random.randint(0, h)
                else:
                    x, y = self.random.randint(0, w), self.random.choice((0, h))
            site = self.grid[(x, y)]
            if site.is_empty:
                return site
            free = [c for c in site.connections.values() if c.is_empty]
            if free:
                return self.random.choice(free)
        return None

    # --- treatments -----------------------------------------------------------------------
    def _reset_effects(self) -> None:
        self.effects = {
            "pd1_occupancy": 0.0,
            "treg_recruitment": 1.0,
            "specific_influx": [],  # (CTL per hour, antigens) from vaccines
            "macrophage_recruitment": 1.0,  # anti-CSF-1R lowers it
            "macrophage_depletion": 0.0,  # extra macrophage death probability per hour
            "macrophage_repolarisation": 0.0,  # extra M2 -> M1 probability per hour
            "macrophage_arrival_m2": 1.0,  # chance a new macrophage arrives M2-like (CSF-1)
            "priming": 1.0,  # factor on CTL priming (anti-CTLA-4)
        }

    @property
    def pd1_occupancy(self) -> float:
        """Fraction of PD-1 occupied by antibody this hour (0 without anti-PD-1)."""
        return self.effects["pd1_occupancy"]

    def administer(self, therapy: str, dose: float | None = None, *, scheduled: bool = False):
        """Give a therapy now: ``"anti_pd1"``, ``"anti_ctla4"``, ``"vaccine"``, ``"cart"`` or
        ``"anti_csf1r"``.

        ``dose`` defaults to the therapy's dose parameter (standard doses, or cells for CAR-T).
        The dose acts from the next step on, exactly as a scheduled dose on that day would.
        """
        if not isinstance(scheduled, bool):
            raise ValueError(f"administer: scheduled={scheduled!r}: expected True or False")
        if scheduled and self.steps == 0:  # the schedule gives its doses inside a step
            raise ValueError("administer: scheduled=True is for the therapy's own schedule, "
                             "inside a step; give a dose now with administer(name, dose)")
        if not isinstance(therapy, str) or therapy not in self.treatments:
            raise ValueError(
                f"unknown therapy {P.value_text(therapy)}"
                f"{P.did_you_mean(therapy, self.treatments)} "
                f"(expected one of {', '.join(self.treatments)})"
            )
        treatment = self.treatments[therapy]
        if dose is None:
            dose = treatment.dose
        else:
            spec = P.PARAMS[treatment.dose_param]
            try:
                dose = spec.validate(dose)
            except ValueError:
                raise ValueError(
                    f"dose {P.value_text(dose)} for {therapy!r} is not allowed: expected "
                    f"{spec.allowed()} ({spec.unit})"
                ) from None
        # a scheduled dose is given inside the step that simulates hour steps - 1; a live dose
        # between steps acts from hour steps on: both are stamped with the hour they start
        # acting, so the same dose on the same day has the same effect either way
        hour = self.steps - 1 if scheduled else self.steps
        placed = treatment.give(dose, hour)
        entry = {"day": hour / 24.0, "hour": hour, "therapy": therapy, "dose": dose,
                 "scheduled": scheduled}
        if placed is not None:  # cells: those that found a free site next to a vessel at once
            entry["placed"] = placed  # (the rest enter in the following hours: CART.act)
        self.dose_log.append(entry)

    def deplete_tregs(self, kill: float) -> None:
        """Each Treg dies with probability ``kill`` (anti-CTLA-4's depletion at a dose)."""
        for treg in list(self.agents_by_type.get(Treg, [])):
            if self.random.random() < kill:
                treg.die()

    def infuse_cart(self, n: int) -> int:
        """Place up to ``n`` CAR-T cells at vessel entry sites (a CAR-T infusion); returns how
        many found a site (fewer than ``n`` when the vessels' surroundings are full)."""
        return self._admit(n, lambda: CARTCell(self))

    # --- the hour -------------------------------------------------------------------------
    @property
    def day(self) -> float:
        """Simulated time in days (one step = one hour)."""
        return self.steps / 24.0

    def run_for(self, duration: float) -> None:
        """``mesa.Model.run_for``: advance ``duration`` hours, one step each, after checking
        it is a whole number of hours >= 0 (Mesa would run 2.5 as 2 steps and carry the half
        hour into its clock, ``model.time``, which would then no longer match ``steps``).
        Every hour is run, even after the tumour is gone (``running`` turns False)."""
        try:  # (an int beyond a float's range, 10**400, is no number of hours to run)
            whole = math.isfinite(duration) and duration >= 0 and float(duration).is_integer()
        except (OverflowError, TypeError):
            whole = False
        if isinstance(duration, bool) or not isinstance(duration, numbers.Real) or not whole:
            raise ValueError(f"run_for: duration {P.value_text(duration)} is not allowed: "
                             "expected a whole number of hours >= 0 (one step is one hour)")
        if duration:  # nothing to run (Mesa would warn that the end is not after now)
            mesa.Model.run_for(self, duration)

    def step(self) -> None:
        self._reset_effects()
        for treatment in self.treatments.values():
            treatment.step()
        self._update_fields()
        self._step_cancer_cells()
        self._recruit_ctls()
        self.treg_near = _neighbourhood(self.kind == Kind.TREG,
                                        self.p["suppression_radius_sites"])
        self._step_in_random_order(TCell, CARTCell)
        self._recruit(Treg, self.p["treg_influx"] * self.effects["treg_recruitment"])
        self._recruit(MDSC, self.p["mdsc_influx"])
        self._step_in_random_order(Treg, MDSC)
        self._recruit(Macrophage,
                      self.p["macrophage_influx"] * self.effects["macrophage_recruitment"])
        self._recruit(NKCell, self.p["nk_influx"])
        self._step_in_random_order(Macrophage, NKCell)
        self._census()
        self.datacollector.collect(self)
        if self.n_cancer == 0:
            self.running = False

    def _collapse_vessels(self) -> None:
        """Vessels enclosed by tumour (all 8 neighbours cancer cells or debris: compressed,
        Padera et al. 2004; regressing, Holash et al. 1999) collapse at 1 /
        ``vessel_collapse_days``: they stop supplying oxygen and admitting immune cells."""
        days = self.p["vessel_collapse_days"]
        if days is None or not self.vessels:
            return
        kind = self.kind
        solid = ((kind == Kind.CANCER) | (kind == Kind.NECROTIC)).view(np.int8)
        around = ndimage.convolve(solid, np.ones((3, 3), np.int8), mode="constant", cval=0)
        around -= solid
        xs, ys = np.array(self.vessels).T
        enclosed = np.flatnonzero(around[xs, ys] == 8)
        if not enclosed.size:
            return
        collapses = self.rng.random(enclosed.size) < -np.expm1(-1.0 / (days * 24.0))
        gone = [self.vessels[i] for i in enclosed[collapses].tolist()]
        if gone:
            gone_set = set(gone)
            self.vessels = [v for v in self.vessels if v not in gone_set]
            self.collapsed_vessels += gone
            self.oxygen.unpin(gone)

    def _update_fields(self) -> None:
        """The fields' part of the hour. Every ``field_step_h`` hours (every hour by default)
        the four fields are solved, each advanced by ``field_step_h`` hours (they are built with
        that step); IFN-gamma's source is then the CTLs' secretion since the last solve as a
        mean rate. Every hour, vessels may collapse and PD-L1 relaxes toward the last solve's
        IFN-gamma response."""
        p = self.p
        self._collapse_vessels()
        kind = self.kind
        cancer = kind == Kind.CANCER
        every = p["field_step_h"]
        solve = self._field_hours % every == 0
        self._field_hours += 1
        if solve:
            self.oxygen.step(self._o2_uptake[kind])
            self._update_oxygen_effects()
            source = self.ifng_source if every == 1 else self.ifng_source / every
            self.ifng.step(self._ifng_decay_h + self._ifng_uptake_h * cancer, source)
            self.ifng_source[...] = 0.0
            self.ifng_hill = self.ifng_response()
            self.chemokine.step(
                cancer * (p["chemokine_secretion"] + p["chemokine_ifng_secretion"] * self.ifng_hill)
            )
            self.tgfb.step(
                cancer * p["tgfb_secretion_tumor"]
                + (self.kind == Kind.MDSC) * p["tgfb_secretion_mdsc"]
                + self.m2_map() * p["tgfb_secretion_m2"]
            )
        # PD-L1 induction relaxes toward the IFN-gamma response with its time constant
        rate = 1.0 - np.exp(-1.0 / p["pdl1_induction_time_h"])
        self.tissue.relax_pdl1(self.ifng_hill, rate, cancer)

    def ifng_response(self) -> np.ndarray:
        """Hill response of a cell to local IFN-gamma (spQSP-IO: half-max 0.11 ng/mL, n 1.26)."""
        n = self.p["pdl1_ifng_hill"]
        c = self.ifng.data**n
        return c / (c + self.p["pdl1_ifng_half_max"] ** n)

    def _cancer_deaths(self) -> None:
        """Apoptosis (every cancer cell, ``apoptosis_rate``: the site is freed) and necrosis
        (below ``necrosis_threshold``: the cell becomes debris), drawn for all cancer cells at
        once; then debris is cleared at 1 / ``debris_clearance_days``."""
        xs, ys, apoptotic = self._draw_cancer_deaths()
        for x, y, by_apoptosis in zip(xs.tolist(), ys.tolist(), apoptotic.tolist(), strict=True):
            cell = self.agent_at[x, y]
            if by_apoptosis:
                cell.fate = "apoptosis"
                cell.die()
                self.apoptoses += 1
            else:
                site = cell.site
                cell.fate = "necrosis"
                cell.die()
                Debris(self).place(site)
                self.necroses += 1
        xs, ys = self._draw_debris_clearance()
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            self.agent_at[x, y].die()

    def _draw_cancer_deaths(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which cancer cells die this hour, drawn for all at once: their sites ``xs``, ``ys``
        and whether each dies by apoptosis (else necrosis). Shared with the fast engine
        (``abm.fast``), which applies the deaths to its arrays."""
        p = self.p
        xs, ys = np.nonzero(self.kind == Kind.CANCER)
        if not xs.size:
            return xs, ys, np.zeros(0, dtype=bool)
        apoptosis = -np.expm1(-p["apoptosis_rate"] * 60.0)
        u = self.rng.random(xs.size)
        # one draw per cell: [0, apoptosis) apoptosis, then necrosis with its probability
        necrosis = self._necrosis_prob[xs, ys]
        dies = u < apoptosis + (1.0 - apoptosis) * necrosis
        return xs[dies], ys[dies], u[dies] < apoptosis

    def _draw_debris_clearance(self) -> tuple[np.ndarray, np.ndarray]:
        """The debris sites cleared this hour (at 1 / ``debris_clearance_days``)."""
        xs, ys = np.nonzero(self.kind == Kind.NECROTIC)
        if not xs.size:
            return xs, ys
        cleared = self.rng.random(xs.size) < -np.expm1(-1.0 / (self.p["debris_clearance_days"]
                                                               * 24.0))
        return xs[cleared], ys[cleared]

    def _step_cancer_cells(self) -> None:
        """Death first (every cell); then division. Only cells with a free neighbour can divide
        (contact inhibition); whether each divides this hour is drawn for all of them at once
        from ``division_probability_map`` (apoptosis leaves holes all through a tumour, so
        stepping every cell next to one in Python would cost more than the rest of the hour),
        and the dividers divide in random order, each into a neighbour still free at its turn."""
        self._cancer_deaths()
        xs, ys = self._draw_dividers()
        dividers = [self.agent_at[site] for site in zip(xs.tolist(), ys.tolist(), strict=True)]
        self.random.shuffle(dividers)
        for cell in dividers:
            cell.divide_if_room()

    def _draw_dividers(self) -> tuple[np.ndarray, np.ndarray]:
        """The sites of the cancer cells that divide this hour (before their random order):
        the niche maps are updated, then among cells with a free neighbour who divides is drawn
        from ``division_probability_map``. Shared with the fast engine (``abm.fast``)."""
        self.mdsc_near = _neighbourhood(self.kind == Kind.MDSC, self.p["suppression_radius_sites"])
        self.m2_near = _neighbourhood(self.m2_map(), self.p["suppression_radius_sites"])
        free = ndimage.convolve((self.kind == Kind.EMPTY).view(np.int8), np.ones((3, 3), np.int8),
                                mode="constant", cval=0)
        xs, ys = np.nonzero((self.kind == Kind.CANCER) & (free > 0))
        if not xs.size:
            return xs, ys
        divides = self.rng.random(xs.size) < self.division_probability_map()[xs, ys]
        return xs[divides], ys[divides]

    def division_probability_map(self) -> np.ndarray:
        """Per-hour division probability of a cancer cell at each site with room (the same as
        ``CancerCell.division_probability``, for every site at once)."""
        p = self.p
        prob = self.oxygen_growth / p["division_time_h"]
        prob = prob * (1.0 - p["ifng_cytostasis"] * self.ifng_hill)
        prob = np.where(self.mdsc_near, prob * (1.0 + p["mdsc_growth_boost"]), prob)
        prob = np.where(self.m2_near, prob * (1.0 + p["m2_growth_boost"]), prob)
        return np.minimum(prob, 1.0)

    def _step_in_random_order(self, *types: type) -> None:
        agents = [a for t in types for a in self.agents_by_type.get(t, ())]
        self.random.shuffle(agents)
        for agent in agents:
            agent.step()

    def burden_signal(self) -> float:
        """Recruitment signal from the tumour, 0-1 (Michaelis-Menten in tumour size)."""
        n = self.n_cancer
        return n / (n + self.p["recruitment_half_saturation"])

    def _poisson(self, rate: float) -> int:
        """A Poisson number with mean ``rate`` (0, with no draw, for a rate of 0 or less).

        A NaN rate raises ``ValueError`` instead of drawing nothing: no path of the model makes
        one (the parameters are finite, the therapies' effects finite, the burden signal
        N/(N + K) has K >= 1, and recruitment by mean antigenicity takes 0 when there is no
        cancer cell to average over), so a NaN here is a bug or a changed ``model.p``, and 0
        would hide it. Shared by the fast engine (``FastTumorModel._poisson``) and the lymph
        node (``LymphNode.step``)."""
        if rate > 0:
            return int(self.rng.poisson(rate))
        if rate != rate:  # NaN
            raise ValueError(
                f"a recruitment or priming rate (cells per hour) is NaN (not a number) in step "
                f"{self.steps}: expected a number >= 0; it comes from the parameters in model.p "
                "(fixed at construction: changed since?) or from a bug, and would recruit no "
                "cell"
            )
        return 0

    def _admit(self, n: int, make: Callable[[], mesa.Agent]) -> int:
        """Place up to ``n`` new cells, each made by ``make()``, at vessel entry sites."""
        for entered in range(n):
            site = self.entry_site()
            if site is None:
                return entered
            make().place(site)
        return n

    def _recruit(self, kind: type, rate_at_saturation: float) -> int:
        """Poisson recruitment at vessels, scaled by the burden signal; returns how many."""
        n = self._poisson(rate_at_saturation * self.burden_signal())
        return self._admit(n, lambda: kind(self))

    def _recruit_ctls(self) -> None:
        """New CTLs enter at vessels, each as a progenitor-exhausted cell with probability
        ``tcell_progenitor_fraction``, else as an effector. Where they are primed depends on
        ``lymph_node_priming``:

        - False (default): primed against the antigens the tumour shows now (cross-priming in
          proportion to how many cells carry each) and recruited at once, so recruitment scales
          with mean antigenicity: a tumour that lost its antigens recruits few CTLs (a
          "desert"); vaccine-primed CTLs arrive at their own rate (``effects["specific_influx"]``).
        - True: clones primed in the draining lymph node ``ln_priming_delay_days`` earlier, from
          antigen released by dying cancer cells and shed by living ones, and vaccine-primed
          clones (``abm.lymphnode``).

        Anti-CTLA-4 multiplies priming (``effects["priming"]``) in both."""
        if self.lymph_node is not None:
            arriving = self.lymph_node.step()
            for antigen in range(N_ANTIGENS):
                self._admit(int(arriving[antigen]), lambda a=antigen: self._new_ctl(a))
        else:
            # no cancer cell, no antigen to prime against (mean_antigenicity is NaN then)
            antigenicity = self.mean_antigenicity if self.n_cancer else 0.0
            rate = self.p["tcell_influx"] * antigenicity * self.effects["priming"]
            n = self._poisson(rate * self.burden_signal())
            self._admit(n, lambda: self._new_ctl(self._primed_antigen(), count=True))
        for rate, antigens in self.effects["specific_influx"]:
            self._admit(self._poisson(rate),
                        lambda a=antigens: self._new_ctl(self.random.choice(a), count=True))

    def _new_ctl(self, antigen: int, count: bool = False) -> TCell:
        """A CTL specific for ``antigen``, a progenitor with probability
        ``tcell_progenitor_fraction`` (no random draw when it is 0, so runs without T-cell
        states keep their random stream). ``count``: record it as primed now (immediate
        recruitment; the lymph node counts its clones when it primes them)."""
        share = self.p["tcell_progenitor_fraction"]
        if count:
            self.primed_by_antigen[antigen] += 1
        return TCell(self, antigen, progenitor=share > 0 and self.random.random() < share)

    def _primed_antigen(self) -> int:
        """An antigen drawn in proportion to how many living cancer cells carry it (kept for
        callers of the old immediate recruitment; the lymph node primes by antigen now)."""
        counts = self.antigen_counts
        total = int(counts.sum())
        if total == 0:
            return self.random.randrange(N_ANTIGENS)
        return self.random.choices(range(N_ANTIGENS), weights=counts.tolist())[0]

    # --- observation ----------------------------------------------------------------------
    def pdl1_map(self) -> np.ndarray:
        """Total PD-L1 per site (0 where there is no cancer cell)."""
        total = np.minimum(1.0, self.pdl1_base + self.p["pdl1_induction"] * self.pdl1_induced)
        return np.where(self.kind == Kind.CANCER, total, 0.0)

    def necrotic_map(self) -> np.ndarray:
        """True where a site holds necrotic debris (grid-shaped bool, like ``pdl1_map()``)."""
        return self.kind == Kind.NECROTIC

    def hypoxic_map(self) -> np.ndarray:
        """True where a living cancer cell is hypoxic (below ``hypoxic_threshold``)."""
        return (self.kind == Kind.CANCER) & (self.oxygen.data < self.p["hypoxic_threshold"])

    def m2_map(self) -> np.ndarray:
        """True where an M2 macrophage is (grid-shaped bool)."""
        out = np.zeros((self.width, self.height), dtype=bool)
        for m in self.agents_by_type.get(Macrophage, ()):
            if m.m2:
                out[m.site.coordinate] = True
        return out

    def ctl_contacts(self) -> np.ndarray:
        """Number of CTLs on each site's 8 neighbouring sites (int array, grid-shaped)."""
        ctl = (self.kind == Kind.TCELL).view(np.int8)
        around = ndimage.convolve(ctl, np.ones((3, 3), np.int8), mode="constant", cval=0)
        return around - ctl

    def _census(self) -> None:
        kind = self.kind
        cancer = kind == Kind.CANCER
        self.n_cancer = int(cancer.sum())
        self.n_tcells = int((kind == Kind.TCELL).sum())
        self.n_cart = int((kind == Kind.CART).sum())
        self.n_tregs = int((kind == Kind.TREG).sum())
        self.n_mdscs = int((kind == Kind.MDSC).sum())
        self.n_necrotic = int((kind == Kind.NECROTIC).sum())
        self.n_vessels = len(self.vessels)
        macrophages = self.agents_by_type.get(Macrophage, ())
        self.n_macrophages = len(macrophages)
        self.m2_fraction = (sum(m.m2 for m in macrophages) / self.n_macrophages
                            if self.n_macrophages else 0.0)
        self.n_nk = int((kind == Kind.NK).sum())
        if self.n_cancer:
            self.mean_mhc = float(self.tissue.mhc[cancer].mean())
            self.hypoxic_fraction = float(
                (self.oxygen.data[cancer] < self.p["hypoxic_threshold"]).mean())
            self.mean_antigenicity = float(self.antigenicity[cancer].mean())
            self.antigen_negative_fraction = float(self.car_negative[cancer].mean())
            self.mean_pdl1 = float(self.pdl1_map()[cancer].mean())
            self.clone_count = int(np.unique(self.clone[cancer]).size)
            carried = self.antigens[cancer]
            self.antigen_counts = np.array(
                [np.count_nonzero(carried & (1 << b)) for b in range(N_ANTIGENS)]
            )
        else:
            # means over no cancer cells: none (NaN, a missing value in every output), not 0
            self.mean_antigenicity = self.antigen_negative_fraction = self.mean_pdl1 = math.nan
            self.hypoxic_fraction = self.mean_mhc = math.nan
            self.clone_count = 0
            self.antigen_counts = np.zeros(N_ANTIGENS, dtype=int)
        self._census_killers()
        node = getattr(self, "lymph_node", None)
        primed = node.primed_total if node is not None else self.primed_by_antigen
        self.primed_antigens = int(np.count_nonzero(primed))
        self.primed_ctls = int(primed.sum())
        for treatment in self.treatments.values():
            for name, value in treatment.census().items():
                setattr(self, name, value)


    def _census_killers(self) -> None:
        """The CTL and CAR-T reporters: engaged cells, exhausted and progenitor fractions."""
        killers = [a for t in (TCell, CARTCell) for a in self.agents_by_type.get(t, ())]
        self.n_engaged = sum(a.engaged for a in killers)
        self.exhausted_fraction = (
            sum(a.exhausted for a in killers) / len(killers) if killers else 0.0
        )
        ctls = self.agents_by_type.get(TCell, ())
        self.progenitor_fraction = (
            sum(a.state == "progenitor" for a in ctls) / len(ctls) if ctls else 0.0
        )

def _signature() -> inspect.Signature:
    """Flat keyword arguments with defaults, generated from ``abm.params`` (for help(),
    SolaraViz and batch_run, which inspect the constructor)."""
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  inspect.Parameter("rng", inspect.Parameter.KEYWORD_ONLY, default=None)]
    parameters += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=spec.default)
        for name, spec in P.PARAMS.items()
    ]
    return inspect.Signature(parameters)


TumorModel.__init__.__signature__ = _signature()
TumorModel.__init__.__doc__ = (
    "Create a model.\n\nArgs:\n    rng: seed (int or string of digits); None draws one.\n"
    + "".join(
        f"    {p.name}: {p.description} [{p.unit}; default {p.default}; {p.allowed()}]. "
        f"Source: {p.source}.\n"
        for p in P.PARAMS.values()
    )
)
