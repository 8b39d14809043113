"""Cancer cells: division with contact inhibition, heritable immune visibility, mutation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from abm.agents.base import Kind, TissueCell

if TYPE_CHECKING:
    from mesa.discrete_space import Cell

N_ANTIGENS = 8  # antigen bitmask width: a small repertoire is enough (docs/design.md section 3)

# What a mutation does; each has a relative weight ``mutation_weight_<name>`` in abm.params
# (the model keeps them as ``model.mutation_weights``, in this order). Without selection these
# mutations drift visibility down a little; immune selection is what makes it fall fast (compare
# the same tumour with and without T cells).
MUTATIONS = ("lose_antigen", "gain_antigen", "lower_mhc", "raise_pdl1")


class CancerCell(TissueCell):
    """A tumour cell.

    Heritable traits: ``antigens`` (bitmask of antigens endogenous T cells can recognise),
    ``mhc`` (MHC-I presentation, 0-1), ``pdl1_base`` (constitutive PD-L1, 0-1), ``car_target``
    (carries the CAR-T target antigen, independent of MHC), ``clone`` and ``parent_clone``.
    PD-L1 also has an IFN-gamma-induced part, a state that lives in the tissue's
    ``pdl1_induced`` layer (``model.tissue``).

    A cell divides into a free neighbouring site with probability 1/``division_time_h`` per
    hour (PhysiCell cancer_immune: mean 23.1 h) times its oxygen factor; a cell with no free
    neighbour is quiescent (contact inhibition), so the model only steps the rim. Apoptosis and
    necrosis strike every cell, rim or core; the model draws them for all cells at once
    (``TumorModel._cancer_deaths``).
    """

    KIND = Kind.CANCER

    def __init__(self, model, antigens, mhc, pdl1_base, car_target, clone, parent_clone):
        super().__init__(model)
        self.antigens = antigens
        self.mhc = mhc
        self.pdl1_base = pdl1_base
        self.car_target = car_target
        self.clone = clone
        self.parent_clone = parent_clone
        # how it left: "killed" (by a CTL or CAR-T cell), "apoptosis", "necrosis",
        # "phagocytosed" (by an M1 macrophage) or "nk_killed" (by an NK cell)
        self.fate: str | None = None

    # --- traits seen by T cells ---------------------------------------------------------
    @property
    def antigenicity(self) -> float:
        """Visibility to endogenous T cells, 0-1: MHC-I times the chance that at least one of
        its antigens is seen, 1 - (1 - v)^n for n antigens (3 antigens: 0.875 at full MHC-I).
        Losing antigens or MHC-I lowers it; a neoantigen raises it a little."""
        visibility = self.model.p["antigen_visibility"]
        return self.mhc * (1.0 - (1.0 - visibility) ** self.antigens.bit_count())

    @property
    def pdl1(self) -> float:
        """Total PD-L1 (0-1): constitutive plus the IFN-gamma-induced part."""
        induced = self.model.tissue.pdl1_induced[self.site.coordinate]
        return min(1.0, self.pdl1_base + self.model.p["pdl1_induction"] * induced)

    @property
    def oxygen(self) -> float:
        """Oxygen at its site, mmHg."""
        return float(self.model.oxygen.data[self.site.coordinate])

    @property
    def hypoxic(self) -> bool:
        """Below ``hypoxic_threshold`` (15 mmHg, PhysiCell): a state the cell reports."""
        return self.oxygen < self.model.p["hypoxic_threshold"]

    def die(self) -> None:
        """Leave the tissue; an immunogenic death (killed, necrosis) releases the cell's
        antigens toward the draining lymph node (``abm.lymphnode``), an apoptotic one does not."""
        node = getattr(self.model, "lymph_node", None)
        if node is not None:
            node.release(self.antigens, self.fate)
        super().die()

    # --- behaviour ------------------------------------------------------------------------
    def step(self) -> None:
        """One hour of this cell on its own: divide with ``division_probability``. (The model
        draws the decision for all cells at once and calls ``divide_if_room``.)"""
        if self.free_neighbours() and self.random.random() < self.division_probability():
            self.divide_if_room()

    def divide_if_room(self) -> CancerCell | None:
        """Divide into a random free neighbouring site, if there is one."""
        free = self.free_neighbours()
        return self.divide(self.random.choice(free)) if free else None

    def division_probability(self) -> float:
        """Per-hour division probability: oxygen below saturation slows it (PhysiCell: linear
        between the proliferation threshold and saturation); IFN-gamma slows it (cytostasis);
        MDSCs and M2 macrophages nearby make a pro-growth niche."""
        site = self.site.coordinate
        p = self.model.oxygen_growth[site] / self.model.p["division_time_h"]
        p *= 1.0 - self.model.p["ifng_cytostasis"] * self.model.ifng_hill[site]
        if self.model.mdsc_near[site]:
            p *= 1.0 + self.model.p["mdsc_growth_boost"]
        if self.model.m2_near[site]:
            p *= 1.0 + self.model.p["m2_growth_boost"]
        return min(p, 1.0)

    def divide(self, site: Cell) -> CancerCell:
        """Place a daughter on ``site``; the daughter may mutate (immunoediting's raw material)."""
        daughter = CancerCell(
            self.model, self.antigens, self.mhc, self.pdl1_base, self.car_target,
            self.clone, self.parent_clone,
        )
        daughter.mutate(self)
        # the tissue records its traits; it inherits its parent's IFN-gamma-induced PD-L1 state
        self.model.tissue.add_daughter(self, daughter, site)
        return daughter

    def mutate(self, parent: CancerCell) -> None:
        """Heritable changes at division, each making a new clone.

        With ``mutation_rate``: lose an antigen, gain a neoantigen, lower MHC-I
        (``mhc_loss_factor``) or raise PD-L1 (``pdl1_mutation_gain``). Independently with
        ``antigen_loss_rate``: lose the CAR-T target.
        """
        rnd = self.random
        changed = False
        if rnd.random() < self.model.p["mutation_rate"]:
            kind = rnd.choices(MUTATIONS, weights=self.model.mutation_weights)[0]
            if kind == "lose_antigen" and self.antigens:
                carried = [b for b in range(N_ANTIGENS) if self.antigens >> b & 1]
                self.antigens &= ~(1 << rnd.choice(carried))
            elif kind == "gain_antigen" and self.antigens != (1 << N_ANTIGENS) - 1:
                absent = [b for b in range(N_ANTIGENS) if not self.antigens >> b & 1]
                self.antigens |= 1 << rnd.choice(absent)
            elif kind == "lower_mhc":
                self.mhc *= self.model.p["mhc_loss_factor"]
            elif kind == "raise_pdl1":
                self.pdl1_base = min(1.0, self.pdl1_base + self.model.p["pdl1_mutation_gain"])
            changed = True
        if self.car_target and rnd.random() < self.model.p["antigen_loss_rate"]:
            self.car_target = False
            changed = True
        if changed:
            self.parent_clone = parent.clone
            self.clone = self.model.new_clone_id()


class Debris(TissueCell):
    """What a cancer cell that died of necrosis leaves on its site: dead tissue that takes no
    oxygen, blocks division and migration into the site, and is cleared after
    ``debris_clearance_days`` on average (PhysiCell removes lysed necrotic cells after 60 d).
    It does not act; the model clears debris for all sites at once."""

    KIND = Kind.NECROTIC
