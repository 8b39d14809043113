"""A mean over the living cancer cells has no value once none is left.

The reporters of ``abm.model.MEANS_OVER_CANCER_CELLS`` (MeanAntigenicity,
AntigenNegativeFraction, MeanPDL1, HypoxicFraction, MeanMHC) are NaN in a row with no cancer
cell, in both engines, and so a missing value in every output (Parquet, an empty CSV cell):
0 would read as complete immunoediting. The immune-cell fractions stay 0 with no such cells
(tests/test_tcell_states.py). With no cancer cell there is no antigen to recruit CTLs by.
"""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from conftest import set_args
from typer.testing import CliRunner

from abm import TumorModel
from abm.agents import CancerCell, Kind
from abm.analysis.outcomes import summarise
from abm.cli import app
from abm.fast import FastTumorModel
from abm.fast import census as C
from abm.model import MEANS_OVER_CANCER_CELLS, REPORTERS
from abm.params import resolve
from abm.report import csv_ready
from abm.run import simulate

runner = CliRunner()
ENGINES = {"mesa": TumorModel, "fast": FastTumorModel}
IMMUNE_FRACTIONS = ("ExhaustedFraction", "ProgenitorFraction", "M2Fraction")
# a small tumour that T cells clear within 4 days for most seeds, in both engines
CLEARED = {"width": 30, "height": 30, "initial_tumor_cells": 10, "tcell_influx": 20.0,
           "mutation_rate": 0.0}
MEANS = list(MEANS_OVER_CANCER_CELLS)
COUNTS = [c for c in REPORTERS if c not in MEANS_OVER_CANCER_CELLS]


def test_the_means_over_cancer_cells_are_reporters():
    assert set(MEANS_OVER_CANCER_CELLS) <= set(REPORTERS)
    assert not set(MEANS_OVER_CANCER_CELLS) & set(IMMUNE_FRACTIONS)


def _empty(model) -> None:
    """Take every cancer cell out of the tissue (as if the last ones were killed)."""
    if isinstance(model, FastTumorModel):  # the layers, as kernels._clear_cancer empties a site
        t = model.tissue
        gone = t.kind == Kind.CANCER
        t.kind[gone] = Kind.EMPTY
        for layer, empty in ((t.antigens, 0), (t.antigenicity, 0.0), (t.pdl1_base, 0.0),
                             (t.mhc, 0.0), (t.pdl1_induced, 0.0), (t.car_negative, False),
                             (t.clone, -1)):
            layer[gone] = empty
    else:
        for cell in list(model.agents_by_type[CancerCell]):
            cell.die()


def _model(engine: str, **extra):
    # T cells with states (progenitor fraction), macrophages (M2 fraction): every fraction of
    # an immune cast is there to be checked
    return ENGINES[engine].from_scenario(
        "elimination", rng=2, width=30, height=30, initial_tumor_cells=40,
        tcell_progenitor_fraction=0.3, macrophage_influx=0.5, **extra)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_emptied_tumour_records_no_means_and_recruits_no_ctls_by_antigen(engine):
    model = _model(engine)
    model.run_for(24)
    assert model.n_cancer > 0 and model.n_tcells > 0
    _empty(model)
    model._census()
    model.datacollector.collect(model)
    df = model.datacollector.get_model_vars_dataframe()
    last = df.iloc[-1]
    assert last["CancerCells"] == 0
    for column in MEANS_OVER_CANCER_CELLS:
        assert math.isnan(last[column]), column  # not 0: there is no cell to average over
        assert df[column].iloc[:-1].notna().all(), column  # with cancer cells: values
    for column in IMMUNE_FRACTIONS:
        assert not math.isnan(last[column]), column  # 0 with no such cell, never NaN
    # hours after clearance (run_for runs every hour): recruitment by antigen reads the NaN
    # mean antigenicity; no cancer cell, no CTL primed against one
    primed = model.primed_ctls
    model.run_for(3)
    assert model.primed_ctls == primed
    df = model.datacollector.get_model_vars_dataframe()
    assert df[MEANS].iloc[-4:].isna().all().all()
    assert df[COUNTS].notna().all().all()  # counts and the other reporters stay numbers


@pytest.mark.parametrize("engine", ENGINES)
def test_recruitment_without_cancer_cells_admits_no_primed_ctl(engine):
    model = _model(engine, tcell_influx=50.0)
    model.run_for(2)
    _empty(model)
    model._census()
    assert model.n_cancer == 0 and math.isnan(model.mean_antigenicity)
    before, primed = model.n_tcells, model.primed_ctls
    model._recruit_ctls()
    model._census()
    assert (model.n_tcells, model.primed_ctls) == (before, primed)


def test_the_fast_census_of_an_empty_tumour_is_the_mesa_census():
    """``abm.fast.census.take_census`` and ``TumorModel._census`` on the same empty tissue give
    the same reporters, NaN where TumorModel's are NaN."""
    model = _model("fast")
    model.run_for(12)
    _empty(model)
    C.take_census(model)
    fast = {attr: getattr(model, attr) for attr in REPORTERS.values()}
    TumorModel._census(model)
    for column, attr in REPORTERS.items():
        expected = getattr(model, attr)
        assert fast[attr] == pytest.approx(expected, rel=1e-6, abs=1e-12, nan_ok=True), attr
        assert math.isnan(fast[attr]) == (column in MEANS_OVER_CANCER_CELLS), column


def _cleared(engine: str) -> tuple[pd.DataFrame, object]:
    """The time series of the first seed whose tumour is cleared within 4 days."""
    for seed in range(10):
        df, model = simulate(resolve("elimination", {**CLEARED, "rng": seed}), 96,
                             engine=engine)
        if model.n_cancer == 0:
            return df, model
    raise AssertionError(f"no seed cleared the tumour in 4 days ({engine} engine)")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_cleared_run_ends_with_no_means_in_every_output(engine, tmp_path):
    df, model = _cleared(engine)
    last = df.iloc[-1]
    assert last["CancerCells"] == 0 and not model.running
    assert df[MEANS].iloc[-1].isna().all()
    alive = df["CancerCells"] > 0
    assert df.loc[alive, MEANS].notna().all().all()
    assert df.loc[alive, "MeanAntigenicity"].gt(0).all()
    # the summary: no final means (as before)
    summary = summarise(df, sites=CLEARED["width"] * CLEARED["height"])
    assert summary["outcome"] == "eliminated" and math.isnan(summary["final_mean_antigenicity"])
    # Parquet keeps the NaN; CSV writes an empty cell, read back as NaN
    df.to_parquet(tmp_path / "run.parquet", index=False)
    back = pd.read_parquet(tmp_path / "run.parquet")
    assert back[MEANS].iloc[-1].isna().all()
    text = csv_ready(df).to_csv(index=False)
    header, *rows = text.splitlines()
    cells = dict(zip(header.split(","), rows[-1].split(","), strict=True))
    assert all(cells[c] == "" for c in MEANS_OVER_CANCER_CELLS), cells
    assert all(cells[c] != "" for c in COUNTS), cells
    assert pd.read_csv(io.StringIO(text))[MEANS].iloc[-1].isna().all()


def test_the_dashboards_time_series_csv_has_empty_cells_after_clearance():
    from abm.dashboard.charts import _without_tumour
    from abm.dashboard.render import timeseries_csv

    _, model = _cleared("mesa")
    table = pd.read_csv(io.StringIO(timeseries_csv(model)))
    assert table["CancerCells"].iloc[-1] == 0
    assert table[MEANS].iloc[-1].isna().all()
    # the charts: no point there (None in the page's JSON, which has no NaN)
    assert _without_tumour([0.8, math.nan], [3, 0]) == [0.8, None]


def test_abm_run_writes_empty_cells_for_the_means_once_the_tumour_is_cleared(tmp_path):
    seed = int(_cleared("mesa")[1].seed)
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"run{suffix}"
        result = runner.invoke(app, ["run", "--scenario", "elimination", "--days", "4",
                                     "--rng", str(seed), "--quiet", "--out", str(out),
                                     *set_args(CLEARED)])
        assert result.exit_code == 0, result.output
        assert "tumour eliminated (no mean antigenicity)" in result.output
        assert "nan" not in result.output.lower()  # no "nan% hypoxic"
        if suffix == ".csv":
            header, *rows = out.read_text().splitlines()
            cells = dict(zip(header.split(","), rows[-1].split(","), strict=True))
            assert cells["CancerCells"] == "0"
            assert all(cells[c] == "" for c in MEANS_OVER_CANCER_CELLS), cells
        else:
            df = pd.read_parquet(out)
            assert df["CancerCells"].iloc[-1] == 0
            assert df[MEANS].iloc[-1].isna().all()


def test_a_sweep_stores_reports_and_exports_the_missing_means(tmp_path):
    """A sweep's run files keep the NaN, ``abm export``'s timeseries.csv has empty cells, and
    ``abm report --series MeanAntigenicity`` plots the runs (its per-day means over the runs
    skip a missing value: a cleared run does not pull them toward 0)."""
    from abm.report import Sweep, load_series
    from abm.sweep import parse_spec, run_sweep

    spec = {"sweep": {"name": "cleared", "description": "are the means missing?",
                      "scenario": "elimination", "days": 4, "replicates": 3, "seed": 1,
                      "record_every": 1},
            "parameters": dict(CLEARED)}
    out = tmp_path / "cleared"
    run_sweep(parse_spec(spec), out, backend="serial", progress=False, log=lambda m: 0)
    sweep = Sweep(out)
    ended = sweep.summary.set_index("run_id")
    cleared = ended.index[ended["outcome"] == "eliminated"].tolist()
    assert cleared, "no run of the sweep cleared its tumour"
    table = load_series(sweep, "MeanAntigenicity")
    for run_id in cleared:
        values = table.loc[run_id]
        day = ended.loc[run_id, "time_to_elimination_day"]
        assert math.isnan(values[day]), (run_id, day)  # the run's last row: no value
        assert values[values.index < day].notna().all(), run_id
    result = runner.invoke(app, ["export", str(out)])
    assert result.exit_code == 0, result.output
    exported = pd.read_csv(out / "export" / "timeseries.csv")
    ends = exported[exported["run_id"].isin(cleared)].groupby("run_id").tail(1)
    assert len(ends) == len(cleared) and (ends["CancerCells"] == 0).all()
    assert ends[MEANS].isna().all().all()
    assert exported.loc[exported["CancerCells"] > 0, "MeanAntigenicity"].notna().all()
    result = runner.invoke(app, ["report", str(out), "--series", "MeanAntigenicity"])
    assert result.exit_code == 0, result.output
    assert (out / "report" / "timeseries.png").stat().st_size > 5000
