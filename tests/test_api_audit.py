"""The Python API researchers use (``abm.run.simulate``, ``abm.analysis``) on bad input and edge
cases: a clear ``ValueError`` naming the argument, its value and what is allowed, raised at the
boundary (not a pandas ``KeyError`` or ``IndexError`` from inside), and no made-up number where
there is no value."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abm import TumorModel
from abm.agents import Kind
from abm.analysis.growth import burden_on, loglog_slope
from abm.analysis.outcomes import summarise
from abm.analysis.probes import make_probes
from abm.analysis.runs import Run
from abm.analysis.spatial import distance_to_ctl_um, mean_by_distance, near_over_far
from abm.model import MEANS_OVER_CANCER_CELLS
from abm.run import simulate

SMALL = {"width": 12, "height": 12, "initial_tumor_cells": 10, "rng": 1}


def test_simulate_refuses_a_model_that_params_do_not_describe():
    """``model=`` with params it was not built from ran the model and ignored params."""
    model = TumorModel(**SMALL)
    with pytest.raises(ValueError, match=r"simulate: model was built with 'width' = 12, params "
                                         r"give 20: expected the model's own parameters"):
        simulate({**SMALL, "width": 20}, 2, model=model)
    with pytest.raises(ValueError, match=r"simulate: model was built with 'rng' = 1, params "
                                         r"give 2"):
        simulate({**SMALL, "rng": 2}, 2, model=model)
    with pytest.raises(ValueError, match=r"simulate: model str: expected a TumorModel "
                                         r"\(engine 'mesa'\)"):
        simulate(SMALL, 2, model="model")
    with pytest.raises(ValueError, match=r"expected a FastTumorModel \(engine 'fast'\)"):
        simulate(SMALL, 2, engine="fast", model=model)
    assert model.steps == 0  # refused before any step
    df, same = simulate(SMALL, 2, model=model)  # its own parameters (as the CLI passes them)
    assert same is model and model.steps == 2 and len(df) == 3
    _, again = simulate(model.p, 1, model=model)
    assert again.steps == 3


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"threads": 0}, "simulate: threads 0: expected a whole number >= 1"),
    ({"threads": "2"}, "simulate: threads '2': expected a whole number >= 1"),
    ({"stop_when_cleared": "no"}, "simulate: stop_when_cleared='no': expected True or False"),
    ({"progress": 1}, "simulate: progress=1: expected True or False"),
])
def test_simulate_checks_its_options(kwargs, says):
    with pytest.raises(ValueError, match=f"^{says}"):
        simulate(SMALL, 2, **kwargs)


def test_simulate_refuses_params_that_are_not_a_dict():
    with pytest.raises(ValueError, match=r"simulate: params NoneType: expected a dict"):
        simulate(None, 2)


class _Record:
    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df

    def series(self) -> pd.DataFrame:
        return self.df


def test_run_final_of_a_cleared_run_keeps_its_counts():
    """``Run.final`` gave NaN for every column of a cleared run, counts too (T cells,
    macrophage kills): NaN only for the means over the cancer cells."""
    df = pd.DataFrame({"Step": [0, 1], "CancerCells": [3, 0], "TCells": [2, 7],
                       "MacrophageKills": [0, 4], "MeanPDL1": [0.2, 0.0]})
    run = Run(1, {}, {"final_burden": 0, "initial_burden": 3}, _Record(df))
    assert run.final("TCells") == 7 and run.final("MacrophageKills") == 4
    assert math.isnan(run.final("MeanPDL1"))  # an old run's 0: no cell to average over
    assert "MeanPDL1" in MEANS_OVER_CANCER_CELLS
    alive = Run(1, {}, {"final_burden": 3, "initial_burden": 3}, _Record(df.iloc[:1]))
    assert alive.final("MeanPDL1") == 0.2 and alive.final("TCells") == 2


def test_no_ctl_is_no_distance_to_one():
    """Without any CTL, scipy measured to a point beyond the grid: a tumour with no CTL had PD-L1
    means in the 240-960 um bands of distance to the nearest CTL."""
    kind = np.zeros((60, 60), dtype=np.int8)
    kind[10:50, 10:50] = Kind.CANCER
    assert np.isinf(distance_to_ctl_um(kind)).all()
    pdl1 = np.full(kind.shape, 0.05)
    assert np.isnan(mean_by_distance(kind, pdl1)).all()
    assert math.isnan(near_over_far(kind, pdl1, min_cells=1))
    kind[0, 0] = Kind.TCELL  # with one CTL: distances again
    assert distance_to_ctl_um(kind)[0, 0] == 0 and np.isfinite(distance_to_ctl_um(kind)).all()


def _series() -> pd.DataFrame:
    df, _ = simulate(SMALL, 3)
    return df


def test_summarise_names_a_missing_column_or_an_empty_table():
    df = _series()
    assert summarise(df, sites=144)["steps_run"] == 3
    with pytest.raises(ValueError, match=r"^summarise: the time series has no column 'Kills': "
                                         r"expected a run's time series with the columns"):
        summarise(df.drop(columns=["Kills"]), sites=144)
    with pytest.raises(ValueError, match=r"^summarise: the time series has no rows"):
        summarise(df.iloc[:0], sites=144)
    with pytest.raises(ValueError, match=r"^summarise: expected a run's time series \(a pandas "
                                         r"DataFrame\), got dict"):
        summarise(df.to_dict(), sites=144)


def test_growth_functions_say_what_is_missing():
    df = _series()
    assert burden_on(df, 0) == df["CancerCells"].iloc[0]
    with pytest.raises(ValueError, match=r"^burden_on: day -1 is before the time series starts "
                                         r"\(day 0\): expected a day >= 0"):
        burden_on(df, -1)
    with pytest.raises(ValueError, match=r"^burden_on: the time series has no rows"):
        burden_on(df.iloc[:0], 1)
    with pytest.raises(ValueError, match=r"^burden_on: the time series has no column "
                                         r"'CancerCells'"):
        burden_on(df.drop(columns=["CancerCells"]), 1)
    with pytest.raises(ValueError, match=r"^loglog_slope: from_day 6.0: the series has 0 day\(s\) "
                                         r"from then on \(its last day is 0.125\): expected at "
                                         r"least 2"):
        loglog_slope(df["Day"].to_numpy(), df["CancerCells"].to_numpy())
    day = [7.0, 8.0, 9.0]  # lists, as the docstring's arrays
    assert loglog_slope(day, [5 * d**2 for d in day]) == pytest.approx(2.0)


@pytest.mark.parametrize("table", [["snapshot"], None, "snapshot"])
def test_make_probes_refuses_a_table_that_is_not_a_dict(table):
    with pytest.raises(ValueError, match=r"^probes: expected a table of probe name -> options"):
        make_probes(table)


@pytest.mark.parametrize("engine", ["mesa", "fast"])
def test_run_for_and_a_dose_beyond_a_float_are_named_in_short(engine):
    """``run_for(10**400)`` raised an ``OverflowError`` from ``math.isfinite``, and a dose of
    ``10**5000`` Python's own "Exceeds the limit (4300 digits)" in place of the message; both
    engines share the two methods."""
    from abm.fast import FastTumorModel

    cls = TumorModel if engine == "mesa" else FastTumorModel
    model = cls(**SMALL)
    with pytest.raises(ValueError, match=r"^run_for: duration 1e\+400 \(an integer of 401 "
                                         r"digits, beyond a float's range\) is not allowed: "
                                         r"expected a whole number of hours >= 0"):
        model.run_for(10**400)
    with pytest.raises(ValueError, match=r"^dose 1e\+5000 \(an integer of 5001 digits, beyond "
                                         r"a float's range\) for 'anti_pd1' is not allowed: "
                                         r"expected a number in \[0, 100\]"):
        model.administer("anti_pd1", dose=10**5000)
    assert model.steps == 0 and not model.dose_log
