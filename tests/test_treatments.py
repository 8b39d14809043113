"""Treatments: scheduled and live dosing, and their effects over paired seeds.

The stylized facts of the therapies (3's anti-PD-1 part, 4, 5, 6 and 7) run on both engines
(the ``either_engine`` fixture: the same code and thresholds for the Mesa engine and the fast
one).

Paired design: the same seed with and without the therapy, so the difference is the therapy's.
Effects are checked on the median (fact 4: the mean) over seeds with stated margins.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from abm import TumorModel
from abm.agents import Kind

SEEDS = range(4)


def final_state(scenario: str, days: float, seed: int, **overrides) -> TumorModel:
    model = TumorModel.from_scenario(scenario, rng=seed, **overrides)
    for _ in range(round(days * 24)):
        model.step()
        if not model.running:
            break
    return model


def burdens(scenario, days, seeds=SEEDS, **overrides):
    return [final_state(scenario, days, s, **overrides).n_cancer for s in seeds]


def relative_benefit(treated, untreated):
    """Median over seeds of (untreated - treated) / untreated."""
    return statistics.median((u - t) / max(u, 1) for t, u in zip(treated, untreated, strict=True))


# --- dosing mechanics ---------------------------------------------------------------------------
def test_a_schedule_is_when_from_the_parameters_named_after_the_therapy():
    from abm.agents import TREATMENTS, Schedule
    from abm.params import defaults

    p = {**defaults(), "vaccine_start_day": 1.5, "vaccine_interval_days": 0.5,
         "vaccine_doses": 3, "vaccine_dose": 2.0}
    schedule = Schedule.from_params(p, "vaccine")
    assert schedule == Schedule(1.5, 0.5, 3, 2.0)
    assert schedule.hours == {36, 48, 60} and schedule.due(48) and not schedule.due(49)
    assert Schedule.from_params(defaults(), "cart").hours == frozenset()  # not scheduled
    model = TumorModel(rng=1, width=20, height=20, initial_tumor_cells=10, **{
        k: v for k, v in p.items() if k.startswith("vaccine_")})
    assert model.treatments["vaccine"].schedule == schedule
    for name, cls in TREATMENTS.items():  # the product is named after its parameters
        assert cls.name == name and f"{name}_dose" in defaults()
        assert model.treatments[name].dose_param == f"{name}_dose"


def test_scheduled_doses_are_given_at_their_hours_and_logged():
    model = TumorModel(rng=1, width=20, height=20, initial_tumor_cells=10, cart_start_day=0.5,
                       cart_doses=2, cart_interval_days=1.0, cart_dose=3, tcell_influx=0.0)
    model.run_for(60)
    assert [(d["hour"], d["therapy"], d["dose"], d["scheduled"]) for d in model.dose_log] == [
        (12, "cart", 3, True), (36, "cart", 3, True)]


def test_administer_validates_names_and_doses():
    model = TumorModel(rng=1, width=30, height=30, initial_tumor_cells=20)
    with pytest.raises(ValueError, match="unknown therapy 'aspirin'.*anti_pd1"):
        model.administer("aspirin")
    with pytest.raises(ValueError, match="dose -1 for 'anti_pd1'"):
        model.administer("anti_pd1", -1)
    with pytest.raises(ValueError, match="scheduled='yes': expected True or False"):
        model.administer("anti_pd1", scheduled="yes")
    with pytest.raises(ValueError, match="scheduled=True is for the therapy's own schedule"):
        model.administer("anti_pd1", scheduled=True)  # it would be logged at hour -1
    assert model.dose_log == []
    with pytest.raises(ValueError, match="dose 'lots' for 'cart'"):
        model.administer("cart", "lots")


@pytest.mark.parametrize("engine", ["mesa", "fast"])
@pytest.mark.parametrize("therapy", ["anti_pd1", "anti_ctla4", "vaccine", "cart", "anti_csf1r"])
def test_live_dose_equals_scheduled_dose_on_the_same_day(therapy, engine):
    """A dose given by hand between steps on day 2 and the same dose scheduled for day 2 give
    the same run, followed for 12 days after the dose: past the vaccine's 7-day priming delay,
    where stamping the two doses one hour apart once made them diverge. Both engines: they share
    the therapies, not the hour."""
    from abm.fast import FastTumorModel

    cls = FastTumorModel if engine == "fast" else TumorModel
    base = {"width": 50, "height": 50, "initial_tumor_cells": 80, "tcell_influx": 1.5}
    scheduled = cls(rng=9, **base, **{f"{therapy}_start_day": 2.0, f"{therapy}_doses": 1})
    live = cls(rng=9, **base)
    scheduled.run_for(48)
    live.run_for(48)
    live.administer(therapy)
    scheduled.run_for(12 * 24)
    live.run_for(12 * 24)
    a = scheduled.datacollector.get_model_vars_dataframe()
    b = live.datacollector.get_model_vars_dataframe()
    assert len(a) == len(b) == 1 + 14 * 24
    for column in a.columns:
        assert a[column].equals(b[column]), (therapy, column)
    assert [d["day"] for d in scheduled.dose_log] == [d["day"] for d in live.dose_log] == [2.0]
    assert [d["scheduled"] for d in scheduled.dose_log + live.dose_log] == [True, False]
    if therapy == "vaccine":  # the primed CTLs arrive from the hour 7 days after the dose
        assert b["VaccineResponse"].iloc[48 + 7 * 24] == 0.0
        assert b["VaccineResponse"].iloc[48 + 7 * 24 + 1] == 1.0


def test_administer_mid_run_changes_the_following_steps():
    base = {"width": 50, "height": 50, "initial_tumor_cells": 80}
    a, b = TumorModel(rng=3, **base), TumorModel(rng=3, **base)
    for _ in range(24):
        a.step()
        b.step()
    b.administer("cart", 50)
    assert b.n_cart == 0 and len(b.agents_by_type[type(next(
        ag for ag in b.agents if getattr(ag, "KIND", None) == Kind.CART))]) == 50
    a.step()
    b.step()
    assert b.n_cart >= 45 and a.n_cart == 0
    assert b.dose_log == [{"day": 1.0, "hour": 24, "therapy": "cart", "dose": 50,
                           "scheduled": False, "placed": 50}]


@pytest.mark.parametrize("engine", ["mesa", "fast"])
def test_a_cart_dose_larger_than_the_room_at_the_vessels_arrives_whole_over_the_next_hours(
        engine):
    """Cells enter next to a vessel (about 9 per vessel). On a small grid a large infusion
    finds room for only some of its cells at once (it used to lose the rest: 44-79 of 300 on
    50 x 50); the others wait and enter as the first move away, until the dose is in."""
    from abm import FastTumorModel

    cls = FastTumorModel if engine == "fast" else TumorModel
    model = cls(rng=1, width=20, height=20, initial_tumor_cells=50)
    before = model.kind.copy()
    model.administer("cart", 400)
    placed = int((model.kind == Kind.CART).sum() - (before == Kind.CART).sum())
    assert 0 < placed < 400 and placed <= 9 * len(model.vessels)
    assert model.dose_log[-1]["placed"] == placed and model.dose_log[-1]["dose"] == 400
    cart = model.treatments["cart"]
    assert cart.waiting == 400 - placed
    waiting = [cart.waiting]
    while cart.waiting and model.steps < 24 * 10:
        model.step()
        waiting.append(cart.waiting)
    assert cart.waiting == 0, waiting  # all 400 in within 10 days
    assert waiting[1] == waiting[0]  # not in the hour of the dose (as a scheduled dose)
    assert all(a >= b for a, b in zip(waiting, waiting[1:], strict=False))
    assert len(waiting) > 2  # it took more than one hour: room had to free


def test_antibody_level_decays_with_its_half_life():
    model = TumorModel(rng=1, width=30, height=30, initial_tumor_cells=20, anti_pd1_start_day=0,
                       anti_pd1_dose=1.0, anti_pd1_doses=1,
                       anti_pd1_half_life_days=22.0)
    for _ in range(22 * 24):
        model.step()
    assert model.treatments["anti_pd1"].level == pytest.approx(0.5, rel=1e-6)
    df = model.datacollector.get_model_vars_dataframe()
    assert df["PD1Occupancy"].iloc[1] == pytest.approx(1.0 / 1.1, rel=1e-3)


def test_each_antibody_has_its_own_ec50():
    model = TumorModel(rng=1, width=30, height=30, initial_tumor_cells=20, anti_pd1_ec50=0.5,
                       anti_ctla4_ec50=2.0)
    model.administer("anti_pd1", 1.0)
    model.administer("anti_ctla4", 1.0)
    assert model.treatments["anti_pd1"].occupancy == pytest.approx(1.0 / 1.5)
    assert model.treatments["anti_ctla4"].occupancy == pytest.approx(1.0 / 3.0)


def test_anti_ctla4_depletes_tregs():
    model = TumorModel(rng=2, width=60, height=60, initial_tumor_cells=300, treg_influx=3.0)
    for _ in range(72):
        model.step()
    before = model.n_tregs
    model.administer("anti_ctla4", 2.0)
    model._census()
    assert before > 10 and model.n_tregs < 0.25 * before


# --- effects over paired seeds --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.usefixtures("either_engine")
def test_anti_pd1_helps_more_in_a_hot_tumour_than_in_a_cold_one():
    days = 21
    hot = relative_benefit(burdens("checkpoint", days),
                           burdens("checkpoint", days, anti_pd1_start_day=None))
    cold = relative_benefit(burdens("checkpoint_cold", days),
                            burdens("checkpoint_cold", days, anti_pd1_start_day=None))
    assert hot > 0.5, hot  # anti-PD-1 at least halves the hot tumour
    assert hot > cold + 0.2, (hot, cold)


@pytest.mark.slow
@pytest.mark.usefixtures("either_engine")
def test_anti_ctla4_helps_more_when_early():
    """Fact 4: anti-CTLA-4 from day 1 lowers the day-21 burden more than from day 12, by more
    than 0.1 of the untreated burden on average over the paired seeds 0-7.

    Early treatment clears about half the tumours (the rest are partly held), so the median
    benefit over a few seeds jumps between 1 and about 0.6 with the seeds drawn; the old test
    (medians over seeds 0-3, early > late + 0.1) held in seeds 0-3 of the Mesa engine (early
    1.00, late 0.44) and failed in those of the fast one (0.50 against 0.44). Measured over
    144 seeds of each engine, early treatment clears 72 and 60 tumours (Fisher p 0.2), and
    over seeds 0-35 the paired difference is positive in 89% and 78% of seeds, mean 0.42 and
    0.26; this test's mean over 8 seeds exceeded 0.1 in 99.8% and 96.8% of random 8-seed sets
    drawn from them. Seeds 0-7: 0.52 (Mesa), 0.29 (fast)."""
    base = {"anti_pd1_start_day": None, "mutation_rate": 0.03}
    untreated = burdens("checkpoint", 21, range(8), **base)
    early = burdens("checkpoint", 21, range(8), anti_ctla4_start_day=1.0, **base)
    late = burdens("checkpoint", 21, range(8), anti_ctla4_start_day=12.0, **base)
    differences = [(lt - e) / max(u, 1) for e, lt, u in zip(early, late, untreated, strict=True)]
    assert statistics.mean(differences) > 0.1, (early, late, untreated)


@pytest.mark.slow
@pytest.mark.usefixtures("either_engine")
def test_anti_ctla4_does_nothing_in_a_tumour_without_antigens():
    """The control of fact 4: with no antigen to recognise, anti-CTLA-4 from day 1 changes the
    median burden at day 21 by less than 10% (measured: 0.00 [-0.10, 0.02] over seeds 0-3;
    in the antigenic tumour the same schedule gives 0.79, docs/validation.md fact 4)."""
    base = {"anti_pd1_start_day": None, "mutation_rate": 0.03, "founder_antigens": 0}
    untreated = burdens("checkpoint", 21, **base)
    treated = burdens("checkpoint", 21, anti_ctla4_start_day=1.0, **base)
    assert abs(relative_benefit(treated, untreated)) < 0.1, (treated, untreated)


@pytest.mark.slow
@pytest.mark.usefixtures("either_engine")
def test_anti_pd1_plus_anti_ctla4_beats_either_alone():
    days, start = 24, 10.0
    base = {"anti_pd1_start_day": None, "anti_ctla4_start_day": None}
    both = burdens("escape", days, anti_pd1_start_day=start, anti_ctla4_start_day=start)
    pd1 = burdens("escape", days, **{**base, "anti_pd1_start_day": start})
    ctla4 = burdens("escape", days, **{**base, "anti_ctla4_start_day": start})
    assert statistics.median(both) < statistics.median(pd1)
    assert statistics.median(both) < statistics.median(ctla4)
    assert sum(b <= min(p, c) for b, p, c in zip(both, pd1, ctla4, strict=True)) >= 3


def lacking_vaccine_antigens(model: TumorModel) -> float:
    """Fraction of cancer cells carrying none of the vaccine's antigens."""
    targets = sum(1 << a for a in model.treatments["vaccine"].antigens)
    carried = model.antigens[model.kind == Kind.CANCER]
    return float(np.mean((carried & targets) == 0)) if carried.size else 0.0


@pytest.mark.slow
@pytest.mark.usefixtures("either_engine")
def test_vaccine_slows_the_tumour_and_selects_clones_without_its_antigens():
    days = 24
    vaccinated = [final_state("vaccine", days, s) for s in SEEDS]
    control = [final_state("vaccine", days, s, vaccine_start_day=None) for s in SEEDS]
    benefit = relative_benefit([m.n_cancer for m in vaccinated], [m.n_cancer for m in control])
    assert benefit > 0.3, benefit
    survivors = [m for m in vaccinated if m.n_cancer > 0]
    assert survivors, "some vaccinated tumours should persist for the selection check"
    escaped = statistics.median(lacking_vaccine_antigens(m) for m in survivors)
    baseline = statistics.median(lacking_vaccine_antigens(m) for m in control)
    assert escaped > baseline + 0.2, (escaped, baseline)


@pytest.mark.slow
@pytest.mark.usefixtures("either_engine")
def test_cart_clears_target_positive_cells_and_antigen_loss_makes_negative_relapse():
    days = 20
    cleared = [final_state("cart", days, s) for s in SEEDS]
    untreated = [final_state("cart", days, s, cart_start_day=None) for s in SEEDS]
    lossy = [final_state("cart_antigen_loss", days, s) for s in SEEDS]
    # without antigen loss: the tumour is cleared or nearly so, and survivors are target-positive
    assert statistics.median(m.n_cancer for m in cleared) < 0.05 * statistics.median(
        m.n_cancer for m in untreated)
    assert all(m.antigen_negative_fraction < 0.5 for m in cleared if m.n_cancer > 0)
    # with antigen loss: what survives or relapses is mostly antigen-negative
    relapsed = [m for m in lossy if m.n_cancer > 0]
    assert len(relapsed) >= 3
    assert statistics.median(m.antigen_negative_fraction for m in relapsed) > 0.8


@pytest.mark.slow
@pytest.mark.usefixtures("either_engine")
def test_cart_into_a_larger_tumour_relapses_more_often():
    """Fact 6 against burden (docs/validation.md): with antigen loss 0.001 per division, CAR-T
    on day 14 (about 3,000 cells) leaves a tumour at day 30 in at least 3 more of seeds 0-7 than
    CAR-T on day 3 (about 520 cells). Measured over seeds 0-11: 4/12 against 11/12 (Mesa
    engine), 5/12 against 12/12 (fast); seeds 0-7: 1/8 against 7/8 and 4/8 against 8/8. (The
    test before, at least 2 more of seeds 0-2, failed on the fast engine: 2/3 against 3/3.)"""
    def relapses(start):
        return sum(
            final_state("cart_antigen_loss", 30, seed, antigen_loss_rate=0.001,
                        cart_start_day=start).n_cancer > 0
            for seed in range(8)
        )

    assert relapses(14.0) >= relapses(3.0) + 3


@pytest.mark.parametrize("engine", ["mesa", "fast"])
def test_a_vaccine_with_no_antigen_to_target_says_so_and_reports_no_response(engine):
    from abm import FastTumorModel

    cls = FastTumorModel if engine == "fast" else TumorModel
    model = cls(rng=2, width=20, height=20, initial_tumor_cells=20, founder_antigens=0)
    with pytest.warns(UserWarning, match="vaccine: no antigen to target"):
        model.administer("vaccine")
    model.run_for(24 * 8)  # past the priming delay
    assert model.datacollector.get_model_vars_dataframe()["VaccineResponse"].max() == 0.0
    targeted = cls(rng=2, width=20, height=20, initial_tumor_cells=20, founder_antigens=0,
                   vaccine_antigens=2)
    targeted.administer("vaccine")
    targeted.run_for(24 * 8)
    assert targeted.datacollector.get_model_vars_dataframe()["VaccineResponse"].max() > 0.5
