"""Stylized facts 1, 2, the spatial part of 3, 8, immune phenotypes and the size threshold,
checked over several seeds on both engines (the therapies' facts are in test_treatments.py).

Tolerances are stated in each test; seeds are fixed so a failure is reproducible, and each fact
must hold in most seeds, not one.
"""

from __future__ import annotations

import numpy as np
import pytest

from abm import TumorModel
from abm.analysis.growth import growth_rate_ratio, loglog_slope
from abm.analysis.kills import kill_probability, kills_per_ctl_per_day
from abm.analysis.outcomes import classify
from abm.analysis.probes import Contacts
from abm.analysis.spatial import ctl_density_by_region, near_over_far

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("either_engine")]


def trajectory(days: float, **params) -> tuple[np.ndarray, TumorModel]:
    model = TumorModel(**params)
    counts = [model.n_cancer]
    for _ in range(round(days * 24)):
        model.step()
        counts.append(model.n_cancer)
    return np.array(counts), model


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tumour_without_immunity_grows_quadratically_from_its_rim(seed):
    """2-D Eden-like growth: N ~ t^2 after the first days (log-log slope 2 +/- 0.3), and the
    per-day growth rate falls (exponential growth would keep it constant). The fit starts at
    day 10 (was day 6): since cancer cells die by apoptosis (0.32% per hour), a 5-cell founder
    colony starts after a random lag (131-202 cells at day 6 over seeds 1-3), and a power law
    fitted from day 6 against time since seeding then reads steeper (2.12-2.37; from day 10:
    2.04-2.26)."""
    counts, _ = trajectory(
        24,
        rng=seed,
        width=160,
        height=160,
        initial_tumor_cells=5,
        tcell_influx=0.0,
        treg_influx=0.0,
        mdsc_influx=0.0,
        macrophage_influx=0.0,
        nk_influx=0.0,
    )
    slope = loglog_slope(np.arange(len(counts)) / 24.0, counts, from_day=10)
    assert 1.7 <= slope <= 2.3, slope
    assert growth_rate_ratio(counts[::24], early=8, late=24) < 0.6


def outcome(scenario: str, seed: int, days: float):
    counts, model = trajectory(days, **{"rng": seed, **scenario_params(scenario)})
    return counts, model


def scenario_params(name):
    from abm.scenarios import scenario_params as sp

    return sp(name)


def test_three_es_elimination_equilibrium_escape():
    """Elimination clears the tumour in >= 4 of 5 seeds within 15 days; equilibrium keeps it
    alive and under 3x its start at day 21 in >= 4 of 5 (measured: 1.2-2.2x); escape escapes
    (``abm.analysis.outcomes.classify``: at least 5x) in 30 days in >= 4 of 5 (measured: about
    20x)."""
    seeds = range(5)
    eliminated = sum(outcome("elimination", s, 15)[1].n_cancer == 0 for s in seeds)
    assert eliminated >= 4, eliminated
    held = 0
    for s in seeds:
        counts, model = outcome("equilibrium", s, 21)
        held += 0 < model.n_cancer < 3 * counts[0]
    assert held >= 4, held
    escaped = 0
    for s in range(5):
        counts, model = outcome("escape", s, 30)
        escaped += classify(counts[0], counts[-1], sites=model.width * model.height) == "escape"
    assert escaped >= 4, escaped


def test_equilibrium_stays_bounded_over_two_months():
    """Equilibrium over a longer horizon (docs/validation.md): over 60 days the burden never
    exceeds 8x its start in any of seeds 0-5 (measured over seeds 0-9 in both engines: peaks
    1.2-5.5x; escape passes 20x in 30 days), and it has turned over, the burden at day 60 below
    its peak, in at least 5 of the 6 (measured: 20 of 20 runs; one seed still at its peak on day
    60 when the oxygen solves stopped nearer the exact field, a change within their tolerance).
    """
    turned_over = 0
    for seed in range(6):
        model = TumorModel.from_scenario("equilibrium", rng=seed)
        n0, peak = model.n_cancer, 0
        for _ in range(60 * 24):
            model.step()
            peak = max(peak, model.n_cancer)
            if model.n_cancer == 0:
                break
        assert peak < 8 * n0, (seed, peak)
        turned_over += model.n_cancer < peak
    assert turned_over >= 5, turned_over


def test_t_cells_edit_the_tumour_toward_lower_antigenicity():
    """Immunoediting: after 30 days of the escape scenario the tumour is less antigenic with
    T cells than the same tumour (paired seed) without them. Mutation alone also lowers
    antigenicity (MHC-I loss is one of the mutations), so the control without T cells is what
    isolates selection. Since cancer cells die by apoptosis (the tumour turns over, so neutral
    drift between clones is faster), single seeds are noisy: over seeds 0-9 the paired
    difference must be positive in at least 7 and its median above 0.05. Measured in both
    engines, and again with the oxygen solves stopped nearer the exact field (a change within
    their tolerance that moves every trajectory): positive in 7-9 of 10, medians 0.10-0.16,
    single seeds -0.09 to 0.27. (With 3 seeds, as before, that change failed the test.)"""
    differences = []
    for seed in range(10):
        _, edited = outcome("escape", seed, 30)
        _, unedited = trajectory(30, rng=seed, **{**scenario_params("escape"), "tcell_influx": 0.0})
        assert unedited.mean_antigenicity < 0.875
        differences.append(unedited.mean_antigenicity - edited.mean_antigenicity)
    assert sum(d > 0 for d in differences) >= 7, differences
    assert np.median(differences) > 0.05, differences


# A founder tumour of thousands of cells has no vessel inside (the model places vessels around
# the founder), so with oxygen its core dies by necrosis within 2 days (docs/validation.md,
# Tissue biology). The tests below measure immune mechanisms in such tumours, so they turn
# oxygen consumption off; necrosis is tested in tests/test_tissue_biology.py.
NO_HYPOXIA = {"oxygen_uptake": 0.0}


def pdl1_near_over_far(seed: int, **overrides) -> float:
    """Mean PD-L1 of cancer cells within 60 um of a CTL over that of cells 240-960 um away,
    in an untreated hot tumour of 8,000 founder cells on a 3 mm field after 7 days (without
    oxygen consumption: NO_HYPOXIA)."""
    model = TumorModel.from_scenario(
        "checkpoint",
        rng=seed,
        width=200,
        height=200,
        initial_tumor_cells=8000,
        anti_pd1_start_day=None,
        **{**NO_HYPOXIA, **overrides},
    )
    model.run_for(7 * 24)
    pdl1 = np.asarray(model.pdl1_map(), dtype=float)
    ratio = near_over_far(model.kind, pdl1, near_um=60, far_um=(240, 960), min_cells=100)
    assert np.isfinite(ratio), "fewer than 100 cancer cells near or far from CTLs"
    return ratio


def test_pdl1_clusters_near_t_cells_at_tissue_scale_more_with_a_shorter_ifng_range():
    """Fact 3, spatial part (docs/validation.md, tissue scale). Over seeds 0-2: PD-L1 near CTLs
    exceeds PD-L1 far from them with the default IFN-gamma diffusion (ratio > 1.02) and clearly
    with the 6x smaller sourced diffusion coefficient (> 1.1); the shorter range clusters more
    in every seed. Measured at the commit that added it: 1.03-1.06 and 1.20-1.27."""
    for seed in (0, 1, 2):
        default = pdl1_near_over_far(seed)
        short = pdl1_near_over_far(seed, ifng_diffusion=16.5)
        assert default > 1.02, (seed, default)
        assert short > 1.1, (seed, short)
        assert short > default, (seed, short, default)


def test_ctls_kill_2_to_16_cells_per_engaged_ctl_per_day():
    """Fact 8, first half (docs/validation.md): in vivo killing is slow, 2-16 kills per CTL per
    day (Halle et al. 2016). Over days 7-14 of the equilibrium and escape scenarios, seeds 0-3,
    every run's kills per engaged CTL per day (``abm.analysis.kills``) lie in 2-16 (measured:
    3.28-3.71 on the Mesa engine, 3.12-3.61 on the fast one). Kills per CTL present are 6-9x
    lower (0.39-0.59 and 0.36-0.57; docs/validation.md discusses which denominator the study
    used): checked to stay below the engaged rate and above a tenth of it."""
    for scenario in ("equilibrium", "escape"):
        for seed in range(4):
            _, model = outcome(scenario, seed, 14)
            rates = kills_per_ctl_per_day(model.datacollector.get_model_vars_dataframe(), 7, 14)
            assert 2.0 <= rates["engaged"] <= 16.0, (scenario, seed, rates)
            assert rates["engaged"] / 10 < rates["present"] < rates["engaged"], (
                scenario, seed, rates)


def test_a_cancer_cell_is_more_likely_killed_the_more_ctls_surround_it():
    """Fact 8, second half (docs/validation.md): in the untreated hot tumour, days 7-10, the
    hourly chance of being killed is higher for cells with 2 or more CTLs on their 8
    neighbouring sites than for cells with one, in each of seeds 0-2, and at least twice as
    high with 3 or more, pooled (measured at the commit that added it: 0.0081 with one CTL,
    0.044 with 3 or more)."""
    exposed, killed = np.zeros((3, 9)), np.zeros((3, 9))
    for seed in (0, 1, 2):
        model = TumorModel.from_scenario("checkpoint", rng=seed, anti_pd1_start_day=None)
        contacts = Contacts(days=[7, 10])
        for _ in range(10 * 24):
            contacts.before_step(model)
            model.step()
            contacts.after_step(model)
        exposed[seed], killed[seed] = contacts.exposed, contacts.died
        one = kill_probability(exposed[seed], killed[seed])[1]
        more = kill_probability([exposed[seed, 2:].sum()], [killed[seed, 2:].sum()])[0]
        assert exposed[seed, 1] > 1000 and more > one, (seed, one, more)
    p1 = killed[:, 1].sum() / exposed[:, 1].sum()
    p3 = killed[:, 3:].sum() / exposed[:, 3:].sum()
    assert p3 > 2 * p1, (p1, p3)


def ctl_density(seed: int, **overrides) -> dict[str, float]:
    """CTL densities (inside the outline, core deeper than 150 um, 150 um band around it) of an
    untreated hot tumour on day 10, and its number of CTLs."""
    model = TumorModel.from_scenario(
        "checkpoint", rng=seed, anti_pd1_start_day=None, **overrides
    )
    model.run_for(10 * 24)
    return ctl_density_by_region(model.kind, depth_um=150.0)


def test_inflamed_excluded_and_desert_tumours_all_arise():
    """Immune phenotypes (docs/validation.md), over seeds 0-3: a small antigenic tumour is
    inflamed (CTL density inside its outline at least 0.6x that of the 150 um band around it,
    as the mean ratio over the seeds), a large compact one is excluded (its core deeper than
    150 um holds under a fifth of the band's density, as the mean ratio, and under a quarter of
    the small tumour's mean ratio), and in seeds 0-1 a tumour without antigens is a desert
    (under a tenth of the CTLs of the antigenic one; measured 0-15 vs 182-208).

    Single tumours vary a lot, so the typical tumour of each kind is checked, not every one
    (measured over seeds 0-11 at the commit that made the test run on both engines; Mesa
    engine / fast engine): the small tumour's ratio 0.46-2.15, mean 1.11 / 0.38-1.88, mean 1.08
    (below 0.6 in 3 / 2 of the 12 seeds); the large one's core ratio 0.002-0.19, mean 0.074 /
    0.009-0.15, mean 0.055 (above 0.1 in 3 / 2 of the 12 seeds). The large founder has no
    vessel inside, so its core is necrotic by day 10."""
    small_ratio, large_ratio = [], []
    for seed in (0, 1, 2, 3):
        small = ctl_density(seed)
        large = ctl_density(seed, width=200, height=200, initial_tumor_cells=8000)
        small_ratio.append(small["inside"] / small["band"])
        large_ratio.append(large["core"] / large["band"])
        if seed <= 1:
            desert = ctl_density(seed, founder_antigens=0)
            assert desert["ctl"] < 0.1 * small["ctl"], (seed, desert, small)
    assert np.mean(small_ratio) >= 0.6, small_ratio
    assert np.mean(large_ratio) < 0.2, large_ratio
    assert np.mean(large_ratio) < 0.25 * np.mean(small_ratio), (large_ratio, small_ratio)


def test_small_tumours_are_cleared_where_large_ones_persist():
    """The spatial counterpart of Kuznetsov's size threshold (docs/validation_kuznetsov.md):
    with the elimination scenario's T cells at 3 CTL/h on a 120 x 120 field, a 300-cell founder
    is cleared within 20 days in at least 3 of seeds 0-3 (over seeds 0-47 it was cleared in 47
    runs of the Mesa engine, on days 5-18, and in 45 of the fast engine, days 4-20; the others
    kept 2-116 cells), while a 4,000-cell founder is still there at day 20 in seeds
    0-1. Before cancer cells died by apoptosis and PD-L1 decayed
    with its 0.1 d half-life, the large founder held its size (0.88x and 1.17x); now T cells
    shrink it steadily (0.18x and 0.04x at day 20; an 8,000-cell founder to 0.26x and 0.36x),
    so only "not cleared within 20 days" is asserted (docs/validation.md, What changed). Without
    oxygen consumption (NO_HYPOXIA): with it, the large founder (no vessel inside) also loses
    its core to necrosis whatever the T cells do."""
    small_left = []
    for seed in (0, 1, 2, 3):
        for n0 in (300, 4000):
            if n0 == 4000 and seed > 1:
                continue
            model = TumorModel.from_scenario(
                "elimination", rng=seed, width=120, height=120, tcell_influx=3.0,
                initial_tumor_cells=n0, **NO_HYPOXIA,
            )
            for _ in range(20 * 24):
                model.step()
                if model.n_cancer == 0:
                    break
            if n0 == 300:
                small_left.append(model.n_cancer)
            else:
                assert model.n_cancer > 0, (seed, n0, model.n_cancer)
    assert sum(n == 0 for n in small_left) >= 3, small_left
