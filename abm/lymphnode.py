"""The draining lymph node: a small systemic compartment where CTL clones are primed.

The model owns one (``model.lymph_node``). It holds no agents and no grid: per tumour antigen
(the ``N_ANTIGENS`` bits of ``abm.agents.cancer``) it keeps the antigen presented in the node,
and a delay line of CTLs primed and still expanding, which arrive at vessels when their delay
is over. Each hour (``step``, called by the model before CTL recruitment):

1. **Antigen reaching the node.** Presentation ``presented[b]`` (in dying-cell equivalents)
   decays with ``ln_antigen_half_life_days`` (spQSP-IO: degradation of peptide-MHC on mature
   APCs, k_deg_p_M = 0.1663 /day, a half-life of 4.2 d), and gains
   - the antigens of the cancer cells that died this hour by immunogenic death: a cell killed
     by a CTL or CAR-T cell (``fate`` "killed"), by an NK cell ("nk_killed": NK killing feeds
     dendritic-cell priming) or phagocytosed by an M1 macrophage ("phagocytosed": an
     antigen-presenting cell) adds 1 to each antigen it carries, a necrotic cell adds
     ``ln_necrotic_release``; apoptotic cells add nothing
     (apoptosis is the tolerogenic, "silent" death: Green et al. 2009 Nat Rev Immunol 9:353);
   - constitutive shedding: ``ln_shedding`` per living carrier per hour (so that an untreated
     tumour is primed at all). The founder tumour existed before day 0: the node starts with
     the presentation at its steady state for the founder tumour and, if
     ``ln_primed_before_start`` (default), with the clones primed during the delay before day 0
     already on their way (so CTLs arrive from day 0 at the founder tumour's rate; set it
     False to start from a naive node, where no CTL arrives before the delay).
2. **Priming.** Per antigen, the stimulus is ``S = A / (A + K)`` with ``K`` the presentation a
   tumour of ``recruitment_half_saturation`` carriers keeps up by shedding alone, so an
   untreated tumour's priming follows the burden curve of immediate recruitment without the
   node (half its maximum at ``recruitment_half_saturation`` carriers). CTL clones
   are primed at ``tcell_influx x S_max x (1 - (1 - v)^n)`` per hour in total, with
   ``v = antigen_visibility`` and ``n = sum_b S_b / S_max`` the number of antigens presented
   (weighted by stimulus), shared among antigens in proportion to ``S_b``, times the priming
   factor (anti-CTLA-4). At most ``tcell_influx`` (the parameter keeps its meaning, CTLs per
   hour at saturation). Priming here has no MHC-I factor, a modelling choice consistent with
   cross-priming: dendritic cells present antigen taken up from dying cells on their own
   MHC-I, so the tumour's MHC-I does not limit priming (recognition in the tissue still does:
   a CTL sees its target with probability MHC-I).
   Immediate recruitment without the node (``TumorModel._recruit_ctls``) scales with mean
   antigenicity, which includes MHC-I. So for the founder tumour (every antigen at the same
   S) this equals the immediate recruitment, ``tcell_influx`` x burden signal x antigenicity,
   only when ``founder_mhc`` = 1; a tumour with lower MHC-I is primed 1/MHC-I times as much
   at the same burden (3.3x for ``checkpoint_cold``, MHC-I 0.3; 5x for ``b16f10_like``,
   0.2). An antigen that no cell carries and no dying cell released is never primed: a
   tumour that lost its antigens recruits few CTLs.
3. **Delay.** Primed CTLs arrive ``ln_priming_delay_days`` later (5 d: Mempel et al. 2004, stable
   DC contacts 8-20 h after entry and proliferation from day 2; effector CTLs reach tissues
   days later, after clonal expansion of up to 7 or 8 days: case 24 of an immunology case
   book, doi:10.4324/9780203856864-24). The number primed is drawn when they are primed
   (Poisson), so ``primed_total`` counts clones primed so far, including those still in the
   delay line.

A vaccine (``vaccinate``) presents its antigens in the node: its presentation decays with
``vaccine_response_half_life_days`` and primes ``vaccine_influx`` CTLs per hour per dose of
presentation, arriving ``vaccine_priming_delay_days`` later (so the vaccine's response curve is
what it was before the node existed). Vaccine-primed CTLs kill cells that also carry other
antigens; those deaths release every antigen of the dead cell into the node, which primes
CTLs against antigens the vaccine did not contain (antigen spreading).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from abm.agents.cancer import N_ANTIGENS

if TYPE_CHECKING:
    from abm.model import TumorModel

# deaths that carry antigen to the node as a kill does (fates set by the killers: a CTL or
# CAR-T cell in abm/agents/tcell.py, an NK cell in nk.py, an M1 macrophage in macrophage.py)
IMMUNOGENIC_KILLS = frozenset({"killed", "nk_killed", "phagocytosed"})
_BITS = np.array([1 << b for b in range(N_ANTIGENS)], dtype=np.int64)


def antigen_bits(mask: int) -> list[int]:
    """The antigen indices set in a bitmask."""
    return [b for b in range(N_ANTIGENS) if mask >> b & 1]


class LymphNode:
    """The draining lymph node of ``model`` (see the module docstring for the rules)."""

    def __init__(self, model: TumorModel) -> None:
        self.model = model
        p = model.p
        self._decay = math.exp(-math.log(2) / (p["ln_antigen_half_life_days"] * 24.0))
        mean_life_h = 1.0 / (1.0 - self._decay)  # hours a unit of presentation lasts
        # presentation kept up by shedding from recruitment_half_saturation carriers
        self.half_max = max(p["ln_shedding"] * mean_life_h * p["recruitment_half_saturation"],
                            1e-12)
        self.delay_h = round(p["ln_priming_delay_days"] * 24.0)
        self.vaccine_delay_h = round(p["vaccine_priming_delay_days"] * 24.0)
        self._vaccine_decay = math.exp(-math.log(2) / (p["vaccine_response_half_life_days"]
                                                       * 24.0))
        counts = np.asarray(getattr(model, "antigen_counts", np.zeros(N_ANTIGENS)), dtype=float)
        self.presented = p["ln_shedding"] * mean_life_h * counts  # steady state, founder tumour
        self.released = np.zeros(N_ANTIGENS)  # antigen from deaths this hour
        self.released_total = np.zeros(N_ANTIGENS)
        self.primed_total = np.zeros(N_ANTIGENS, dtype=np.int64)  # endogenous + vaccine
        self.vaccine_primed_total = np.zeros(N_ANTIGENS, dtype=np.int64)
        self.arrived_total = np.zeros(N_ANTIGENS, dtype=np.int64)
        self.vaccine_presented = 0.0  # in doses
        self.vaccine_antigens: list[int] = []
        self._vaccine_doses: list[tuple[int, float]] = []
        # hour of arrival -> CTLs per antigen due then (endogenous and vaccine-primed)
        self._due: dict[int, np.ndarray] = {}
        if p["ln_primed_before_start"] and self.delay_h > 0:
            # the founder tumour existed before day 0: the clones primed in the delay before it
            # (at the steady presentation) are on their way and arrive in the first days
            rates = self.priming_rates()
            if rates.any():
                for hour in range(-self.delay_h, 0):
                    self._schedule(hour + self.delay_h, model.rng.poisson(rates))

    # --- inputs ---------------------------------------------------------------------------
    def release(self, antigens: int, fate: str | None) -> None:
        """A cancer cell with antigen bitmask ``antigens`` died by ``fate``: add its antigens
        to what reaches the node this hour (killed by a CTL, CAR-T or NK cell, or phagocytosed:
        1; necrotic: ``ln_necrotic_release``; apoptotic or unknown: 0)."""
        if not antigens or fate is None:
            return
        if fate in IMMUNOGENIC_KILLS:
            weight = 1.0
        elif fate == "necrosis":
            weight = self.model.p["ln_necrotic_release"]
        else:
            return
        if weight > 0:
            for b in antigen_bits(int(antigens)):
                self.released[b] += weight

    def vaccinate(self, antigens: list[int], dose: float, hour: int) -> None:
        """A vaccine dose presenting ``antigens`` in the node from ``hour`` on."""
        self.vaccine_antigens = list(antigens)
        self._vaccine_doses.append((hour, dose))

    def vaccine_presentation(self, hour: int) -> float:
        """Vaccine presentation in the node in ``hour`` (doses at full strength)."""
        total = 0.0
        for given, dose in self._vaccine_doses:
            if hour >= given:
                total += dose * self._vaccine_decay ** (hour - given)
        return total

    # --- the hour -------------------------------------------------------------------------
    def stimulus(self) -> np.ndarray:
        """Priming stimulus per antigen, 0-1 (presentation / (presentation + half-max))."""
        return self.presented / (self.presented + self.half_max)

    def priming_rates(self, factor: float = 1.0) -> np.ndarray:
        """Endogenous CTLs primed per hour per antigen now: in total ``tcell_influx`` x S_max x
        (1 - (1 - v)^n) with n = sum(S) / S_max the antigens presented (weighted by their
        stimulus), shared in proportion to S_b; with every antigen at the same stimulus S this
        is ``tcell_influx`` x S x the antigenicity of n antigens at full MHC-I (no MHC-I
        factor: cross-priming, see the module docstring)."""
        p = self.model.p
        stimulus = self.stimulus()
        top = float(stimulus.max())
        if top <= 0 or p["tcell_influx"] <= 0:
            return np.zeros(N_ANTIGENS)
        n = float(stimulus.sum()) / top
        total = p["tcell_influx"] * top * (1.0 - (1.0 - p["antigen_visibility"]) ** n) * factor
        return total * stimulus / float(stimulus.sum())

    def step(self) -> np.ndarray:
        """One hour: presentation, priming, and the CTLs per antigen that arrive this hour."""
        model, p = self.model, self.model.p
        hour = model.steps - 1  # the hour this step simulates
        counts = np.asarray(model.antigen_counts, dtype=float)
        self.presented = (self.presented * self._decay + self.released
                          + p["ln_shedding"] * counts)
        self.released_total += self.released
        self.released[...] = 0.0
        factor = model.effects.get("priming", 1.0)
        rates = self.priming_rates(factor)
        primed = model.rng.poisson(rates) if rates.any() else np.zeros(N_ANTIGENS, np.int64)
        self._schedule(hour + self.delay_h, primed)
        # the vaccine's antigens, presented in the node, prime their own clones
        self.vaccine_presented = self.vaccine_presentation(hour)
        if self.vaccine_antigens and self.vaccine_presented > 0:
            n = model._poisson(p["vaccine_influx"] * self.vaccine_presented * factor)
            if n:
                chosen = np.zeros(N_ANTIGENS, dtype=np.int64)
                for _ in range(n):
                    chosen[model.random.choice(self.vaccine_antigens)] += 1
                self.vaccine_primed_total += chosen
                self._schedule(hour + self.vaccine_delay_h, chosen)
        arriving = self._due.pop(hour, np.zeros(N_ANTIGENS, dtype=np.int64))
        self.arrived_total += arriving
        return arriving

    def _schedule(self, hour: int, primed: np.ndarray) -> None:
        if not primed.any():
            return
        self.primed_total += primed
        due = self._due.setdefault(hour, np.zeros(N_ANTIGENS, dtype=np.int64))
        due += primed

    # --- observation ----------------------------------------------------------------------
    @property
    def primed_antigens(self) -> int:
        """Antigens against which CTL clones have been primed so far (arrived or still
        expanding in the node)."""
        return int(np.count_nonzero(self.primed_total))

    @property
    def in_transit(self) -> int:
        """CTLs primed and not yet arrived."""
        return int(sum(int(v.sum()) for v in self._due.values()))
