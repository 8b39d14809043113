"""Rules of the model core, the reporter contract and determinism."""

import mesa
import numpy as np
import pytest

from abm import TumorModel
from abm.agents import CancerCell, Kind, TCell
from abm.model import REPORTERS
from abm.scenarios import SCENARIOS

CONTRACT_COLUMNS = [
    "Day", "CancerCells", "TCells", "CARTCells", "Tregs", "MDSCs", "Kills", "MeanAntigenicity",
    "AntigenNegativeFraction", "MeanPDL1", "CloneCount", "ExhaustedFraction",
]
NO_IMMUNE = {"tcell_influx": 0.0, "treg_influx": 0.0, "mdsc_influx": 0.0}
NO_DEATH = {"apoptosis_rate": 0.0, "oxygen_uptake": 0.0}  # no apoptosis, no hypoxia


def run(model, hours):
    for _ in range(hours):
        model.step()
    return model.datacollector.get_model_vars_dataframe()


def assert_layers_match_grid(model):
    for cell in model.grid.all_cells:
        x, y = cell.coordinate
        agents = cell.agents
        assert len(agents) <= 1
        if agents:
            assert model.kind[x, y] == agents[0].KIND and model.agent_at[x, y] is agents[0]
        else:
            assert model.kind[x, y] == Kind.EMPTY and model.agent_at[x, y] is None


def test_reporters_follow_the_contract(small_params):
    df = run(TumorModel(rng=1, **small_params), 30)
    for column in CONTRACT_COLUMNS:
        assert column in df.columns
    assert len(df) == 31  # the initial state plus one row per step
    assert df["Day"].iloc[-1] == pytest.approx(30 / 24)
    assert df["CancerCells"].iloc[0] == small_params["initial_tumor_cells"]


def test_founder_tumour_is_a_compact_disc_at_the_centre():
    model = TumorModel(rng=1, width=41, height=41, initial_tumor_cells=45, **NO_IMMUNE)
    xs, ys = np.nonzero(model.kind == Kind.CANCER)
    assert len(xs) == 45
    assert np.hypot(xs - 20, ys - 20).max() < 4.0  # radius of a 45-site disc is about 3.8


def test_same_seed_same_series_different_seed_different(small_params):
    a = run(TumorModel(rng=3, **small_params), 72)
    b = run(TumorModel(rng=3, **small_params), 72)
    c = run(TumorModel(rng=4, **small_params), 72)
    assert a.equals(b)
    assert not a.equals(c)


@pytest.mark.parametrize("engine", ["mesa", "fast"])
def test_no_seed_draws_one_and_keeps_it_so_the_run_can_be_repeated(small_params, engine):
    from abm import FastTumorModel

    cls = FastTumorModel if engine == "fast" else TumorModel
    first, second = cls(**small_params), cls(rng=None, **small_params)
    assert isinstance(first.seed, int) and isinstance(second.seed, int)
    assert first.seed != second.seed  # drawn from the system's entropy (1 in 2**32 alike)
    again = cls(rng=first.seed, **small_params)
    assert run(first, 48).equals(run(again, 48))


def test_cells_divide_only_into_free_sites():
    """A grid packed with cancer cells cannot grow; a half-empty one can only fill up.
    (Without cell death: apoptosis frees sites and hypoxia kills, which is tested elsewhere.)"""
    full = TumorModel(rng=1, width=10, height=10, initial_tumor_cells=100, **NO_IMMUNE,
                      **NO_DEATH)
    assert run(full, 48)["CancerCells"].eq(100).all()
    model = TumorModel(rng=1, width=12, height=12, initial_tumor_cells=20, **NO_IMMUNE,
                       **NO_DEATH)
    df = run(model, 24 * 12)
    assert df["CancerCells"].is_monotonic_increasing
    assert df["CancerCells"].max() <= 144
    assert_layers_match_grid(model)


def test_interior_cells_do_not_divide(monkeypatch):
    """Division is drawn only for cells with a free neighbour (the rim, and cells next to
    sites freed by apoptosis): interior cells are skipped. Every cell asked to divide has room."""
    model = TumorModel(rng=1, width=30, height=30, initial_tumor_cells=400, **NO_IMMUNE)
    asked = []
    monkeypatch.setattr(CancerCell, "divide_if_room",
                        lambda self: asked.append((self, bool(self.free_neighbours()))))
    for _ in range(10):
        model.step()
    assert 0 < len(asked) < 400 * 0.1
    assert all(room for _, room in asked)


def test_division_map_matches_each_cells_probability():
    model = TumorModel(rng=3, width=40, height=40, initial_tumor_cells=600)
    model.run_for(30)
    probs = model.division_probability_map()
    for cell in list(model.agents_by_type[CancerCell])[:50]:
        assert probs[cell.site.coordinate] == pytest.approx(cell.division_probability())


def place_pair(model, antigens, tcell_antigen, mhc=1.0, pdl1=0.0):
    """Empty a small model and put one cancer cell and one T cell side by side."""
    for agent in list(model.agents):
        if hasattr(agent, "die"):
            agent.die()
    cancer = CancerCell(model, antigens, mhc, pdl1, True, 0, -1)
    cancer.place(model.grid[(5, 5)])
    tcell = TCell(model, tcell_antigen)
    tcell.place(model.grid[(5, 6)])
    model._census()
    return cancer, tcell


def test_recognition_requires_a_shared_antigen():
    model = TumorModel(rng=1, width=12, height=12, initial_tumor_cells=1, **NO_IMMUNE)
    cancer, tcell = place_pair(model, antigens=0b011, tcell_antigen=2)
    assert not any(tcell.recognises(cancer) for _ in range(100))
    tcell.antigen = 1
    assert all(tcell.recognises(cancer) for _ in range(100))
    cancer.mhc = 0.0  # no MHC-I: the antigen is not presented
    assert not any(tcell.recognises(cancer) for _ in range(100))


def test_ctl_contacts_counts_ctls_on_the_eight_neighbouring_sites():
    model = TumorModel(rng=1, width=12, height=12, initial_tumor_cells=1, **NO_IMMUNE)
    cancer, tcell = place_pair(model, antigens=0b1, tcell_antigen=0)  # T cell at (5, 6)
    for site in [(4, 4), (6, 6), (9, 9)]:
        TCell(model, 0).place(model.grid[site])
    contacts = model.ctl_contacts()
    assert contacts[5, 5] == 3  # (5, 6), (4, 4), (6, 6); not (9, 9), not itself
    assert contacts[5, 6] == 1  # a CTL does not count itself: only (6, 6) is next to it
    assert contacts[0, 0] == 0 and contacts[9, 9] == 0 and contacts[10, 10] == 1


def test_pd1_blocked_engagements_exhaust_a_t_cell_without_kills():
    model = TumorModel(rng=2, width=12, height=12, initial_tumor_cells=1, pd1_inhibition=1.0,
                       tcell_exhaustion_limit=4, tcell_lifespan_days=365, tcell_speed=0,
                       **NO_IMMUNE)
    cancer, tcell = place_pair(model, antigens=0b1, tcell_antigen=0, pdl1=1.0)
    for _ in range(4):
        tcell.step()
    assert tcell.exhaustion == 4 and tcell.exhausted
    assert tcell.kills == 0 and cancer.alive


def test_engaged_t_cell_kills_about_once_per_six_hours():
    """With no PD-L1 and no suppression, time to kill is geometric with p = tcell_kill_prob."""
    hours = []
    for seed in range(60):
        model = TumorModel(rng=seed, width=12, height=12, initial_tumor_cells=1,
                           tcell_speed=0, tcell_lifespan_days=365, **NO_IMMUNE)
        cancer, tcell = place_pair(model, antigens=0b1, tcell_antigen=0)
        for hour in range(1, 200):
            tcell.step()
            if not cancer.alive:
                hours.append(hour)
                break
    mean = np.mean(hours)
    assert len(hours) == 60
    assert 4.0 < mean < 8.5  # 1 / 0.17 = 5.9 h; the 95% range for 60 draws is about 4.6-7.4


def test_cancer_cells_mutate_into_new_clones():
    model = TumorModel(rng=5, width=40, height=40, initial_tumor_cells=50, mutation_rate=0.5,
                       antigen_loss_rate=0.2, **NO_IMMUNE)
    df = run(model, 96)
    assert df["CloneCount"].iloc[-1] > 10
    assert df["AntigenNegativeFraction"].iloc[-1] > 0.05
    parents = {a.parent_clone for a in model.agents_by_type[CancerCell]}
    assert 0 in parents  # lineage is recorded


def test_running_turns_false_when_the_tumour_is_gone_and_stays_false():
    model = TumorModel.from_scenario("elimination", rng=1, width=40, height=40,
                                     initial_tumor_cells=20, tcell_influx=20.0)
    for _ in range(24 * 20):
        model.step()
        if not model.running:
            break
    assert not model.running and model.n_cancer == 0
    for _ in range(5):
        model.step()
    assert not model.running


def test_batch_run_works_on_the_model_unchanged():
    results = mesa.batch_run(
        TumorModel,
        parameters={"width": 30, "height": 30, "initial_tumor_cells": 20,
                    "mutation_rate": [0.0, 0.1]},
        rng=[1, 2],
        max_steps=6,
        data_collection_period=-1,
        display_progress=False,
        number_processes=1,
    )
    assert len(results) == 4
    assert {r["mutation_rate"] for r in results} == {0.0, 0.1}
    assert all("CancerCells" in r for r in results)


def test_every_scenario_builds_and_steps():
    for name in SCENARIOS:
        model = TumorModel.from_scenario(name, rng=1, width=30, height=30,
                                         initial_tumor_cells=30)
        model.step()
        assert set(REPORTERS) <= set(model.datacollector.get_model_vars_dataframe().columns)
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        TumorModel.from_scenario("nope")


def test_finished_models_are_garbage_collected():
    import gc

    gc.collect()
    before = sum(isinstance(o, TumorModel) for o in gc.get_objects())
    for seed in range(3):
        run(TumorModel(rng=seed, width=30, height=30, initial_tumor_cells=30), 5)
    gc.collect()
    assert sum(isinstance(o, TumorModel) for o in gc.get_objects()) == before


def test_suppression_radius_sets_the_reach_of_tregs():
    from abm.agents import Treg

    for radius in (0, 1, 2):
        model = TumorModel(rng=1, width=12, height=12, initial_tumor_cells=1, suppressor_speed=0,
                           treg_lifespan_days=365, suppression_radius_sites=radius, **NO_IMMUNE)
        Treg(model).place(model.grid[(3, 3)])
        model.step()
        xs, ys = np.nonzero(model.treg_near)
        assert sorted(zip(xs.tolist(), ys.tolist(), strict=True)) == [
            (x, y) for x in range(3 - radius, 4 + radius) for y in range(3 - radius, 4 + radius)
        ]


def test_antigen_visibility_sets_antigenicity():
    model = TumorModel(rng=1, width=12, height=12, initial_tumor_cells=1, antigen_visibility=0.2,
                       **NO_IMMUNE)
    cancer, _ = place_pair(model, antigens=0b111, tcell_antigen=0, mhc=0.5)
    assert cancer.antigenicity == pytest.approx(0.5 * (1 - 0.8**3))
    assert model.antigenicity[5, 5] == pytest.approx(0.5 * (1 - 0.8**3))


def test_site_is_the_grid_site_and_alive_turns_false_when_killed():
    model = TumorModel(rng=1, width=12, height=12, initial_tumor_cells=1, **NO_IMMUNE)
    cancer, tcell = place_pair(model, antigens=0b1, tcell_antigen=0)
    assert cancer.site is model.grid[(5, 5)] and cancer.site is cancer.cell and cancer.alive
    cancer.die()
    assert cancer.site is None and not cancer.alive and tcell.alive


def test_immune_cells_do_not_follow_a_decayed_field_after_clearance(either_engine):
    """Once the tumour is gone its chemokine decays (to about 1e-25 a.u. in two days) but keeps
    a gradient; below ``chemokine_detection_limit`` the T cells no longer sense it and spread
    from where the tumour was, rather than march up the faint gradient to a corner (without
    the limit the T cells' centre moved 44-57 sites in 3 days; with it 6-16 over seeds 0-5,
    the new arrivals from the vessels included). Seeds 0-2, 100 x 100."""
    for seed in range(3):
        model = TumorModel.from_scenario("elimination", rng=seed)
        for _ in range(24 * 20):
            model.step()
            if not (model.kind == Kind.CANCER).any():
                break
        assert not (model.kind == Kind.CANCER).any(), seed
        before = np.argwhere(model.kind == Kind.TCELL).mean(axis=0)
        for _ in range(72):
            model.step()
        after = np.argwhere(model.kind == Kind.TCELL)
        shift = np.hypot(*(after.mean(axis=0) - before))
        spread = np.hypot(*(after - before).T).mean()
        assert shift < 25 and spread < 30, (seed, shift, spread)
