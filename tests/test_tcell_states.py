"""T-cell differentiation states: progenitor-exhausted, effector, terminally exhausted
(abm/agents/tcell.py). Rules checked on a cancer cell and a CTL side by side, over seeds."""

from __future__ import annotations

import pytest

from abm.agents import CancerCell, CARTCell, TCell
from abm.model import TumorModel

NO_IMMUNE = {"tcell_influx": 0.0, "treg_influx": 0.0, "mdsc_influx": 0.0}
SEEDS = range(5)


def pair(seed, pdl1=0.0, progenitor=True, **params):
    """A tiny empty model with one cancer cell at (5, 5) and one CTL at (5, 6)."""
    model = TumorModel(rng=seed, width=12, height=12, initial_tumor_cells=1,
                       tcell_lifespan_days=365.0, tcell_speed=0, **{**NO_IMMUNE, **params})
    for agent in list(model.agents):
        if hasattr(agent, "die"):
            agent.die()
    cancer = CancerCell(model, 0b1, 1.0, pdl1, True, 0, -1)
    cancer.place(model.grid[(5, 5)])
    tcell = TCell(model, 0, progenitor=progenitor)
    tcell.lifespan_h = float("inf")  # no death by age during the test
    tcell.place(model.grid[(5, 6)])
    model._census()
    return model, cancer, tcell


def run_hours(model, tcell, hours):
    """Step only this CTL for ``hours``, removing its daughters so it keeps room to divide;
    return the daughters' states."""
    daughters = []
    for _ in range(hours):
        tcell.step()
        for other in list(model.agents_by_type.get(TCell, [])):
            if other is not tcell:
                daughters.append(other.state)
                other.die()
    return daughters


def test_progenitors_divide_on_antigen_into_effectors_and_do_not_kill():
    divisions = []
    for seed in SEEDS:
        model, cancer, tcell = pair(seed, tcell_progenitor_division_prob=0.1)
        daughters = run_hours(model, tcell, 100)
        assert cancer.alive and tcell.kills == 0 and model.kills == 0
        assert tcell.progenitor and not tcell.exhausted  # self-renews
        assert set(daughters) <= {"effector"}
        assert tcell.progenitor_divisions == len(daughters) == model.progenitor_divisions
        divisions.append(len(daughters))
    # 100 h of contact at 0.1 per h: 10 expected per seed; allow wide Poisson-like scatter
    assert 5 <= sum(divisions) / len(divisions) <= 15


def test_progenitors_without_antigen_do_not_divide():
    model, cancer, tcell = pair(0)
    tcell.antigen = 3  # the cancer cell carries antigen 0 only
    assert run_hours(model, tcell, 100) == [] and tcell.progenitor_divisions == 0


def test_terminally_exhausted_cells_neither_kill_nor_divide():
    for seed in SEEDS:
        model, cancer, tcell = pair(seed, progenitor=False, tcell_kill_prob=1.0,
                                    tcell_proliferation_prob=1.0)
        tcell.exhaustion = tcell.exhaustion_limit
        assert tcell.exhausted and tcell.state == "effector"
        model.effects["pd1_occupancy"] = 1.0  # anti-PD-1 does not revive it
        assert run_hours(model, tcell, 50) == []
        assert cancer.alive and tcell.kills == 0


def test_effectors_still_kill():
    killed = 0
    for seed in SEEDS:
        model, cancer, tcell = pair(seed, progenitor=False, tcell_kill_prob=0.5)
        run_hours(model, tcell, 20)
        killed += not cancer.alive
    assert killed == len(SEEDS)


def test_anti_pd1_raises_progenitor_divisions_on_pdl1_high_targets():
    def divisions(occupancy):
        total = 0
        for seed in SEEDS:
            model, _, tcell = pair(seed, pdl1=0.8, tcell_progenitor_division_prob=0.2,
                                   tcell_progenitor_pd1_inhibition=1.0)  # block = PD-L1
            model.effects["pd1_occupancy"] = occupancy
            total += len(run_hours(model, tcell, 100))
        return total

    blocked, released = divisions(0.0), divisions(0.95)
    # expected per seed: 100 x 0.2 x (1 - 0.8) = 4 vs 100 x 0.2 x (1 - 0.04) = 19
    assert released >= 2.5 * max(blocked, 1)


def test_progenitor_fraction_reporter():
    model = TumorModel(rng=0, width=12, height=12, initial_tumor_cells=1, **NO_IMMUNE)
    model._census()
    assert model.progenitor_fraction == 0.0  # no CTLs: 0, not NaN
    for i, progenitor in enumerate([True, False, False, False]):
        TCell(model, 0, progenitor=progenitor).place(model.grid[(0, i)])
    CARTCell(model).place(model.grid[(0, 8)])  # CAR-T cells are not CTLs here
    model._census()
    assert model.progenitor_fraction == pytest.approx(0.25)


@pytest.mark.parametrize("node", [False, True])
def test_arrival_share_of_progenitors_follows_the_parameter(node):
    shares = {}
    for share in (0.0, 1.0, 0.5):
        states = []
        for seed in range(2):
            model = TumorModel(rng=seed, width=40, height=40, initial_tumor_cells=150,
                               tcell_influx=50.0, ln_priming_delay_days=0.5,
                               tcell_progenitor_fraction=share, treg_influx=0.0,
                               ln_primed_before_start=False, lymph_node_priming=node,
                               tcell_progenitor_division_prob=0.0)
            for _ in range(16):
                model.step()
            states += [a.state for a in model.agents_by_type.get(TCell, [])]
        assert len(states) > 10
        shares[share] = states.count("progenitor") / len(states)
    # progenitors do not divide here; effectors may have divided after a kill
    assert shares[0.0] == 0.0 and shares[1.0] == 1.0 and 0.3 <= shares[0.5] <= 0.7


def test_cart_cells_are_effectors():
    model = TumorModel(rng=0, width=12, height=12, initial_tumor_cells=1, **NO_IMMUNE)
    assert CARTCell(model).state == "effector"


@pytest.mark.parametrize("name, value", [
    ("tcell_progenitor_fraction", 1.5), ("tcell_progenitor_fraction", -0.1),
    ("tcell_progenitor_division_prob", 2.0), ("tcell_progenitor_pd1_inhibition", -1.0),
    ("tcell_progenitor_pd1_inhibition", 11.0),
])
def test_bad_state_parameters_are_rejected(name, value):
    with pytest.raises(ValueError, match=f"'{name}' = .* is not allowed"):
        TumorModel(rng=0, width=12, height=12, initial_tumor_cells=1, **{name: value})


def test_dashboard_draws_progenitors_navy_with_a_legend_entry():
    from abm.dashboard import render as R

    model = TumorModel.from_scenario("progenitor_burst", rng=0, width=40, height=40,
                                     initial_tumor_cells=150, ln_priming_delay_days=0.5,
                                     tcell_influx=20.0)
    for _ in range(48):
        model.step()
    rgb = R.tissue_rgb(model).rgb
    states = {"progenitor": [], "effector": []}
    for t in model.agents_by_type.get(TCell, []):
        if not t.exhausted:
            x, y = t.site.coordinate
            states[t.state].append(tuple(rgb[model.height - 1 - y, x]))
    assert states["progenitor"] and states["effector"]
    assert set(states["progenitor"]) == {R.PROGENITOR_T_RGB}
    assert set(states["effector"]) == {R.KIND_RGB[R.Kind.TCELL]}
    assert "progenitor T cell" in [label for label, _ in R.legend(
        progenitors=R.has_progenitors(model))]
    plain = TumorModel(rng=0, width=12, height=12, initial_tumor_cells=1)
    assert "progenitor T cell" not in [label for label, _ in R.legend(
        progenitors=R.has_progenitors(plain))]
