"""Macrophages (M1/M2) and anti-CSF-1R: the rules, over several seeds, and their reporters.

Stochastic claims are pooled or compared over paired seeds (the same seed with and without),
with the margins stated at each assertion.
"""

from __future__ import annotations

import numpy as np
import pytest

from abm import TumorModel
from abm.agents import CancerCell, Kind, Macrophage
from abm.agents.macrophage import PHAGOCYTOSED

SEEDS = range(3)
# a tumour with a hypoxic core from the start (radius about 11 sites, oxygen's diffusion length
# is about 7), T cells (whose IFN-gamma turns macrophages M1), many macrophages
NICHE = {"width": 60, "height": 60, "initial_tumor_cells": 400, "tcell_influx": 1.5,
         "macrophage_influx": 1.0, "nk_influx": 0.0}


def run(days: float, seed: int, **params) -> TumorModel:
    model = TumorModel(rng=seed, **params)
    model.run_for(round(days * 24))
    return model


def lone_macrophage(m2: bool, **params) -> tuple[TumorModel, Macrophage, CancerCell]:
    """A model with no recruitment and one macrophage placed next to a rim cancer cell."""
    model = TumorModel(rng=0, width=30, height=30, initial_tumor_cells=40, tcell_influx=0.0,
                       treg_influx=0.0, mdsc_influx=0.0, macrophage_influx=0.0, nk_influx=0.0,
                       **params)
    xs, ys = np.nonzero(model.kind == Kind.CANCER)
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        free = model.grid[(x, y)].connections.values()
        site = next((c for c in free if c.is_empty), None)
        if site is not None:
            cell = model.agent_at[x, y]
            mac = Macrophage(model, m2=m2)
            mac.place(site)
            return model, mac, cell
    raise AssertionError("no rim cell")


def test_no_influx_means_no_macrophages_and_the_reporters_say_so():
    model = run(5, 1, width=40, height=40, initial_tumor_cells=60, macrophage_influx=0.0)
    df = model.datacollector.get_model_vars_dataframe()
    for column in ("Macrophages", "M2Fraction", "MacrophageKills", "CSF1ROccupancy"):
        assert column in df.columns
    assert (df["Macrophages"] == 0).all() and (df["M2Fraction"] == 0).all()
    assert not model.agents_by_type.get(Macrophage)


def test_macrophages_are_recruited_and_the_m2_fraction_is_their_m2_share():
    model = run(8, 2, **NICHE)
    macs = list(model.agents_by_type.get(Macrophage, ()))
    assert model.n_macrophages == len(macs) > 10
    assert model.m2_fraction == pytest.approx(sum(m.m2 for m in macs) / len(macs))
    assert (model.kind == Kind.MACROPHAGE).sum() == len(macs)


def test_m2_share_is_higher_in_hypoxic_sites_than_in_oxygenated_ones():
    """Pooled over 3 seeds and days 6-12: the M2 share of macrophages on hypoxic sites
    exceeds that on oxygenated sites by at least 0.15."""
    hypoxic, oxygenated = [], []
    for seed in SEEDS:
        model = TumorModel(rng=seed, **NICHE)
        for hour in range(12 * 24):
            model.step()
            if hour >= 6 * 24 and hour % 12 == 0:
                for m in model.agents_by_type.get(Macrophage, ()):
                    low = model.oxygen.data[m.site.coordinate] < model.p["hypoxic_threshold"]
                    (hypoxic if low else oxygenated).append(m.m2)
    assert len(hypoxic) > 50 and len(oxygenated) > 50
    assert np.mean(hypoxic) > np.mean(oxygenated) + 0.15


def test_polarisation_follows_its_signals():
    """Under hypoxia alone an M1 cell turns M2 at 1/tau per hour; under IFN-gamma alone an M2
    turns M1 at 1/tau: 400 trials each, within 4 standard errors."""
    tau = 10.0
    model, mac, _ = lone_macrophage(False, macrophage_polarisation_time_h=tau)
    site = mac.site.coordinate
    n = 400
    model.oxygen.data[site] = 0.0  # hypoxic
    model.tgfb.data[site] = 0.0
    model.ifng_hill[site] = 0.0
    switched = 0
    for _ in range(n):
        mac.m2 = False
        mac.polarise()
        switched += mac.m2
    se = np.sqrt(0.1 * 0.9 / n)
    assert abs(switched / n - 1 / tau) < 4 * se
    model.oxygen.data[site] = model.p["oxygen_supply"]
    model.ifng_hill[site] = 1.0
    back = 0
    for _ in range(n):
        mac.m2 = True
        mac.polarise()
        back += not mac.m2
    assert abs(back / n - 1 / tau) < 4 * se
    model.ifng_hill[site] = 0.0  # no signal: no switching
    for _ in range(n):
        mac.polarise()
    assert mac.m2


def test_m2_macrophages_speed_up_division_nearby_and_secrete_the_suppressive_factor():
    model, mac, cell = lone_macrophage(True)
    site = cell.site.coordinate
    before = model.division_probability_map()[site]
    radius = model.p["suppression_radius_sites"]
    model.m2_near = np.zeros_like(model.m2_near)
    from abm.model import _neighbourhood

    model.m2_near = _neighbourhood(model.m2_map(), radius)
    after = model.division_probability_map()[site]
    assert before > 0 and after == pytest.approx(before * (1 + model.p["m2_growth_boost"]))
    assert cell.division_probability() == pytest.approx(after)
    _, silent, _ = lone_macrophage(True, tgfb_secretion_m2=0.0)
    model.step()
    silent.model.step()
    # the same seed: the fields differ by the M2 cell's secretion (0.5 per hour, spread out)
    extra = model.tgfb.data.sum() - silent.model.tgfb.data.sum()
    assert extra > 0.2


def test_an_m1_macrophage_kills_with_its_own_fate_and_not_as_a_ctl_kill():
    model, mac, cell = lone_macrophage(False, macrophage_kill_prob=1.0,
                                       macrophage_polarisation_time_h=1000.0)
    model.oxygen.data[mac.site.coordinate] = model.p["oxygen_supply"]
    model.ifng_hill[...] = 0.0
    model.tgfb.data[...] = 0.0
    kills_before = model.kills
    mac.attack(cell)
    assert not cell.alive and cell.fate == PHAGOCYTOSED
    assert model.macrophage_kills == 1 and model.kills == kills_before
    assert model.ifng_source[mac.site.coordinate] == model.p["macrophage_ifng_secretion"]


def test_m2_macrophages_do_not_kill():
    model, mac, cell = lone_macrophage(True, macrophage_kill_prob=1.0)
    for _ in range(5):
        mac.step()
        if not mac.alive:
            break
    assert cell.alive and model.macrophage_kills == 0


@pytest.mark.usefixtures("either_engine")
def test_anti_csf1r_lowers_macrophage_count_and_m2_share():
    """Paired over 3 seeds (anti-CSF-1R on day 5, counted on day 10): fewer macrophages in
    every seed (at most half), and a lower M2 share in every seed."""
    for seed in SEEDS:
        untreated = run(10, seed, **NICHE)
        treated = run(10, seed, **NICHE, anti_csf1r_start_day=5.0)
        assert treated.csf1r_occupancy > 0.5
        assert treated.n_macrophages <= 0.5 * untreated.n_macrophages, seed
        assert treated.m2_fraction < untreated.m2_fraction, seed


def test_anti_csf1r_can_be_given_live_and_reports_its_occupancy():
    model = TumorModel(rng=3, **NICHE)
    model.run_for(24)
    assert model.csf1r_occupancy == 0.0
    model.administer("anti_csf1r")
    model.run_for(2)
    assert model.csf1r_occupancy == pytest.approx(1 / 1.1, rel=0.01)
    assert model.effects["macrophage_recruitment"] < 0.2
    assert model.effects["macrophage_depletion"] > 0
    assert model.dose_log[-1]["therapy"] == "anti_csf1r"


@pytest.mark.parametrize("name, value", [
    ("macrophage_influx", -1), ("macrophage_lifespan_days", 0), ("m2_growth_boost", 9),
    ("macrophage_kill_prob", 1.5), ("anti_csf1r_recruitment_block", 2),
    ("anti_csf1r_half_life_days", 0), ("macrophage_polarisation_time_h", "soon"),
])
def test_bad_values_are_rejected_with_a_clear_message(name, value):
    with pytest.raises(ValueError, match=f"parameter '{name}' = .* is not allowed: expected"):
        TumorModel(rng=1, **{name: value})


def test_same_seed_same_result_with_macrophages_and_anti_csf1r():
    params = dict(NICHE, width=40, height=40, initial_tumor_cells=150,
                  anti_csf1r_start_day=2.0)
    a = run(4, 7, **params).datacollector.get_model_vars_dataframe()
    b = run(4, 7, **params).datacollector.get_model_vars_dataframe()
    assert a.equals(b)
    assert a["Macrophages"].max() > 0
