"""The tissue keeps Mesa's grid and the per-site layers in step, whatever happens.

A seeded random walk over the operations that change who is where (entering, moving, dividing,
dying, swapping, and whole model steps), checking after every one that the layers agree with
the agents, and that each cancer cell's IFN-gamma-induced PD-L1 state travels with it.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from abm import TumorModel
from abm.agents import MDSC, CancerCell, CARTCell, Kind, TCell, Treg
from abm.agents.base import TissueCell

EMPTY_VALUES = {"antigens": 0, "antigenicity": 0.0, "pdl1_base": 0.0, "pdl1_induced": 0.0,
                "car_negative": False, "clone": -1, "mhc": 0.0}


def assert_layers_agree(model: TumorModel) -> None:
    tissue = model.tissue
    seen = 0
    for site in model.grid.all_cells:
        x, y = site.coordinate
        agents = site.agents
        assert len(agents) <= 1
        agent = agents[0] if agents else None
        assert model.agent_at[x, y] is agent
        assert tissue.kind[x, y] == (agent.KIND if agent else Kind.EMPTY), (x, y)
        if isinstance(agent, CancerCell):
            seen += 1
            assert tissue.antigens[x, y] == agent.antigens
            assert tissue.antigenicity[x, y] == np.float32(agent.antigenicity)
            assert tissue.pdl1_base[x, y] == np.float32(agent.pdl1_base)
            assert tissue.car_negative[x, y] == (not agent.car_target)
            assert tissue.clone[x, y] == agent.clone
            assert tissue.mhc[x, y] == np.float32(agent.mhc)
        else:
            for name, value in EMPTY_VALUES.items():
                assert getattr(tissue, name)[x, y] == value, (name, x, y, agent)
    tissue_cells = [a for a in model.agents if isinstance(a, TissueCell)]
    assert all(a.alive and a.site.agents == [a] for a in tissue_cells)
    assert seen == len(model.agents_by_type.get(CancerCell, ()))


def induced_by_agent(model: TumorModel) -> dict[CancerCell, float]:
    return {c: model.pdl1_induced[c.site.coordinate]
            for c in model.agents_by_type.get(CancerCell, ())}


def random_agent(model: TumorModel, rnd: random.Random, *types: type) -> TissueCell | None:
    agents = sorted((a for t in types for a in model.agents_by_type.get(t, ())),
                    key=lambda a: a.unique_id)
    return rnd.choice(agents) if agents else None


def one_operation(model: TumorModel, rnd: random.Random) -> str:
    """Apply one random operation; check that PD-L1 state followed the cells it concerns."""
    before = induced_by_agent(model)
    op = rnd.choice(["enter", "move", "divide", "die", "swap", "step"])
    if op == "enter":
        empty = [c for c in model.grid.all_cells if c.is_empty]
        if empty:
            cls = rnd.choice([CancerCell, TCell, CARTCell, Treg, MDSC])
            if cls is CancerCell:
                agent = CancerCell(model, rnd.randrange(256), rnd.random(), rnd.random(),
                                   rnd.random() < 0.5, model.new_clone_id(), -1)
            elif cls is TCell:
                agent = TCell(model, rnd.randrange(8))
            else:
                agent = cls(model)
            agent.place(rnd.choice(empty))
    elif op == "move":
        agent = random_agent(model, rnd, CancerCell, TCell, CARTCell, Treg, MDSC)
        free = agent.free_neighbours() if agent else []
        if free:
            agent.move_to(rnd.choice(free))
            if isinstance(agent, CancerCell):
                assert model.pdl1_induced[agent.site.coordinate] == before[agent]
    elif op == "divide":
        parent = random_agent(model, rnd, CancerCell, TCell)
        free = parent.free_neighbours() if parent else []
        if free:
            site = rnd.choice(free)
            if isinstance(parent, CancerCell):
                daughter = parent.divide(site)
                assert model.pdl1_induced[daughter.site.coordinate] == before[parent]
            else:
                parent.daughter(site)
    elif op == "die":
        agent = random_agent(model, rnd, CancerCell, TCell, CARTCell, Treg, MDSC)
        if agent:
            site = agent.site
            agent.die()
            assert not agent.alive and site.is_empty and model.agent_at[site.coordinate] is None
    elif op == "swap":
        tcell = random_agent(model, rnd, TCell, CARTCell)
        blockers = [a for c in tcell.site.connections.values() for a in c.agents
                    if isinstance(a, CancerCell)] if tcell else []
        if blockers:
            cancer = rnd.choice(blockers)
            t_site, c_site = tcell.site, cancer.site
            model.tissue.swap(tcell, cancer)
            assert tcell.site is c_site and cancer.site is t_site
            assert model.pdl1_induced[t_site.coordinate] == before[cancer]
    else:
        model.step()
    if op != "step":  # outside a step no PD-L1 state changes: it stays with each living cell
        for cell, induced in before.items():
            if cell.alive:
                assert model.pdl1_induced[cell.site.coordinate] == induced, (op, cell)
    return op


@pytest.mark.parametrize("seed", range(4))
def test_layers_agree_with_the_agents_after_any_sequence_of_operations(seed):
    model = TumorModel(rng=seed, width=15, height=15, initial_tumor_cells=40, tcell_influx=5.0,
                       recruitment_half_saturation=10, treg_influx=1.0, mdsc_influx=1.0,
                       mutation_rate=0.3, antigen_loss_rate=0.1)
    rnd = random.Random(seed)
    done = []
    for _ in range(400):
        done.append(one_operation(model, rnd))
        assert_layers_agree(model)
    assert set(done) == {"enter", "move", "divide", "die", "swap", "step"}
    # the walk reached states where the PD-L1 state matters
    assert (model.pdl1_induced > 0).any() or model.n_cancer == 0


def test_a_cancer_cells_traits_and_pdl1_state_move_with_it():
    model = TumorModel(rng=1, width=12, height=12, initial_tumor_cells=1, tcell_influx=0.0,
                       treg_influx=0.0, mdsc_influx=0.0)
    (cancer,) = model.agents_by_type[CancerCell]
    old = cancer.site
    model.tissue.pdl1_induced[old.coordinate] = 0.4  # as IFN-gamma would have induced
    new = cancer.free_neighbours()[0]
    cancer.move_to(new)
    assert model.pdl1_induced[new.coordinate] == 0.4 and model.pdl1_induced[old.coordinate] == 0
    assert model.clone[new.coordinate] == cancer.clone and model.clone[old.coordinate] == -1
    assert_layers_agree(model)


def test_a_full_site_is_refused_and_nothing_changes():
    model = TumorModel(rng=1, width=12, height=12, initial_tumor_cells=1, tcell_influx=0.0,
                       treg_influx=0.0, mdsc_influx=0.0)
    (cancer,) = model.agents_by_type[CancerCell]
    intruder = TCell(model, 0)
    with pytest.raises(Exception, match="full"):
        intruder.place(cancer.site)
    assert not intruder.alive
    intruder.remove()  # it never entered the tissue: drop it from the model
    with pytest.raises(ValueError, match="already at .*move_to"):
        cancer.place(cancer.free_neighbours()[0])
    assert_layers_agree(model)


def test_pool_processes_lists_the_workers_of_a_process_pool():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from abm.compat import pool_processes

    spawn = multiprocessing.get_context("spawn")  # no fork of a multi-threaded test process
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        assert pool.submit(abs, -3).result() == 3
        workers = pool_processes(pool)
        assert len(workers) == 1 and workers[0].is_alive()
    assert pool_processes(object()) == []
