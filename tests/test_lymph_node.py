"""The draining lymph node (abm/lymphnode.py): antigen from dying cells, priming after a delay,
anti-CTLA-4 on priming, the vaccine routed through the node."""

from __future__ import annotations

import numpy as np
import pytest

from abm.agents import TCell
from abm.model import TumorModel

BASE = {"width": 40, "height": 40, "initial_tumor_cells": 150, "treg_influx": 0.0,
        "mdsc_influx": 0.0, "mutation_rate": 0.0, "lymph_node_priming": True}
SEEDS = range(3)


def test_no_primed_ctl_arrives_before_the_delay():
    for seed in SEEDS:
        model = TumorModel(rng=seed, **BASE, tcell_influx=10.0, ln_priming_delay_days=2.0,
                           ln_primed_before_start=False)
        for _ in range(48):
            model.step()
        assert model.n_tcells == 0 and model.primed_ctls > 0  # primed, still expanding
        assert model.lymph_node.in_transit == model.primed_ctls
        for _ in range(24):
            model.step()
        assert model.n_tcells > 0


def test_a_new_antigen_is_primed_but_arrives_only_after_the_delay():
    for seed in SEEDS:
        model = TumorModel(rng=seed, **BASE, tcell_influx=10.0, founder_antigens=1,
                           ln_priming_delay_days=2.0)
        assert model.primed_antigens == 1  # the founder's antigen, primed before day 0
        for _ in range(10):
            for _ in range(200):
                model.lymph_node.release(0b1000, "killed")  # antigen 3, from hour 0
            model.step()
        for _ in range(38):
            model.step()
            assert all(a.antigen == 0 for a in model.agents_by_type.get(TCell, []))
        assert model.n_tcells > 0 and model.lymph_node.primed_total[3] > 0
        for _ in range(24):
            model.step()
        assert model.lymph_node.arrived_total[3] > 0


def test_antigens_of_killed_cells_are_primed_and_absent_antigens_are_not():
    for seed in SEEDS:
        model = TumorModel(rng=seed, **BASE, tcell_influx=10.0, founder_antigens=1)
        node = model.lymph_node
        for _ in range(20):
            for _ in range(200):
                node.release(0b10000, "killed")  # antigen 4: killed cells only
                node.release(0b100000, "apoptosis")  # antigen 5: apoptotic (tolerogenic)
            model.step()
        for _ in range(100):
            model.step()
        primed = node.primed_total
        assert primed[0] > 0 and primed[4] > 0  # the founder's antigen, the killed cells'
        assert primed[5] == 0 and primed[[1, 2, 3, 6, 7]].sum() == 0
        assert model.primed_antigens == 2


def test_a_tumour_without_antigens_primes_nothing():
    model = TumorModel(rng=0, **BASE, tcell_influx=10.0, founder_antigens=0)
    for _ in range(24 * 7):
        model.step()
    assert model.primed_ctls == 0 and model.n_tcells == 0 and model.primed_antigens == 0


def test_necrosis_releases_antigen_and_can_be_switched_off():
    model = TumorModel(rng=0, **BASE, ln_necrotic_release=0.0)
    model.lymph_node.release(0b1, "necrosis")
    assert not model.lymph_node.released.any()
    model = TumorModel(rng=0, **BASE)
    model.lymph_node.release(0b101, "necrosis")
    assert model.lymph_node.released.tolist() == [1, 0, 1, 0, 0, 0, 0, 0]


def test_anti_ctla4_raises_priming():
    def primed(**extra):
        totals = []
        for seed in SEEDS:
            model = TumorModel(rng=seed, **BASE, tcell_influx=5.0, ln_primed_before_start=False,
                               **extra)
            for _ in range(72):  # before any arrival: priming only, no feedback from killing
                model.step()
            totals.append(model.primed_ctls)
        return np.mean(totals)

    # boost 1 at occupancy ~0.9: about 1.9x
    assert primed(anti_ctla4_start_day=0.0) >= 1.4 * primed()


def test_vaccine_primes_its_antigens_after_its_delay():
    for seed in SEEDS:
        model = TumorModel(rng=seed, **BASE, tcell_influx=0.0, vaccine_start_day=0.0,
                           vaccine_antigens=2, vaccine_priming_delay_days=3.0,
                           vaccine_influx=5.0)
        for _ in range(72):
            model.step()
        assert model.n_tcells == 0 and model.lymph_node.vaccine_primed_total[:2].sum() > 0
        for _ in range(12):
            model.step()
        antigens = {a.antigen for a in model.agents_by_type.get(TCell, [])}
        assert antigens and antigens <= {0, 1}


def test_same_seed_same_priming():
    runs = []
    for _ in range(2):
        model = TumorModel(rng=7, **BASE, tcell_influx=3.0, ln_priming_delay_days=1.0)
        for _ in range(72):
            model.step()
        df = model.datacollector.get_model_vars_dataframe()
        runs.append(df[["TCells", "PrimedCTLs", "PrimedAntigens", "ProgenitorFraction"]])
    assert runs[0].equals(runs[1])


def test_without_the_node_ctls_are_recruited_at_once_and_counted_as_primed():
    """The default (lymph_node_priming False): no node, CTLs from the first hours, and the
    priming columns count the CTLs recruited so far, per antigen."""
    base = {**BASE, "lymph_node_priming": False}
    for seed in SEEDS:
        model = TumorModel(rng=seed, **base, tcell_influx=10.0, founder_antigens=2)
        assert model.lymph_node is None
        for _ in range(12):
            model.step()
        assert model.n_tcells > 0
        assert {a.antigen for a in model.agents_by_type.get(TCell, [])} <= {0, 1}
        assert set(np.flatnonzero(model.primed_by_antigen)) == {0, 1}
        assert model.primed_antigens == 2
        assert model.primed_ctls == model.primed_by_antigen.sum() > 0


def test_the_node_changes_nothing_until_switched_on():
    """Switching the node on changes the run (CTLs wait for priming); leaving it off keeps the
    immediate recruitment, so a run with the default equals one with it set False."""
    def final(**extra):
        model = TumorModel(rng=3, **{**BASE, **extra}, tcell_influx=5.0)
        for _ in range(48):
            model.step()
        return model.datacollector.get_model_vars_dataframe()[["CancerCells", "TCells", "Kills"]]

    off = final(lymph_node_priming=False)
    assert off.equals(final(lymph_node_priming=False))
    on = final(ln_primed_before_start=False)
    assert on["TCells"].iloc[-1] == 0 < off["TCells"].iloc[-1]


@pytest.mark.parametrize("name, value", [
    ("lymph_node_priming", "often"),
    ("ln_priming_delay_days", -1.0), ("ln_priming_delay_days", 100.0),
    ("ln_antigen_half_life_days", 0.0), ("ln_shedding", -0.5), ("ln_necrotic_release", "x"),
])
def test_bad_lymph_node_parameters_are_rejected(name, value):
    with pytest.raises(ValueError, match=f"'{name}' = .* is not allowed"):
        TumorModel(rng=0, width=12, height=12, initial_tumor_cells=1, **{name: value})
