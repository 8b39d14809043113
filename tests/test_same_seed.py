"""Same seed, same result: everywhere, in every backend.

One small scenario (30x30 sites, 60 founder cells, T cells, Tregs, macrophages and NK cells
arriving, anti-PD-1 and anti-CTLA-4 from day 1, 2 days) is run every way the project offers,
on each engine: ``abm.run.simulate`` is the reference, and ``abm run`` (in this process and in a
fresh one with another string-hash seed), ``run_for``, a ``step()`` loop, a sweep (serial,
process pool, Dask ``LocalCluster``), the dashboard's ``Session`` (built directly or from a
link) must give exactly its time series. The two engines use different random streams, so each
engine is compared with itself only.

Also here: a sweep stopped after some runs and resumed writes byte for byte the files of an
uninterrupted one; ``FastTumorModel.use_threads`` and ``record_every`` do not change values;
doses given live are reproducible (tests/test_treatments.py: equal to the same dose scheduled);
no hidden global randomness (other models, other threads, ``random``/``numpy.random``/numba's
generator used in between); a model copied mid-run (pickle, ``copy.deepcopy``) runs on as the
original does.

Every comparison is exact (``check_exact=True``): the same seed through the same code path must
be bit-identical, so no tolerance is justified anywhere in this file.
"""

from __future__ import annotations

import copy
import os
import pickle
import random
import subprocess
import sys
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from abm.run import build_params, model_class, simulate, thin

ENGINES = ["mesa", "fast"]
SCENARIO = "combination"
SEED = 7
STEPS = 48
# everything the hour does, at a size that runs in a fraction of a second on either engine
SETS = {
    "width": 30, "height": 30, "initial_tumor_cells": 60, "tcell_influx": 3.0,
    "treg_influx": 0.5, "macrophage_influx": 5.0, "nk_influx": 5.0,
    "anti_pd1_start_day": 1.0, "anti_ctla4_start_day": 1.0,
}
ID_COLUMNS = ["run_id", "point_id", "replicate", "seed"]

def params(seed: int = SEED, **changes) -> dict:
    return build_params(SCENARIO, {**SETS, **changes, "rng": seed})


def series(model) -> pd.DataFrame:
    """A model's time series as ``simulate`` returns it (a 0..n-1 index)."""
    return model.datacollector.get_model_vars_dataframe().reset_index(drop=True)


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_exact=True)


_REFERENCES: dict[tuple, pd.DataFrame] = {}


def reference(engine: str, seed: int = SEED, **changes) -> pd.DataFrame:
    """``simulate``'s every-step series for these parameters (computed once per module)."""
    key = (engine, seed, tuple(sorted(changes.items())))
    if key not in _REFERENCES:
        _REFERENCES[key] = simulate(params(seed, **changes), STEPS, engine=engine)[0]
    return _REFERENCES[key].copy()


@pytest.fixture(scope="module", params=ENGINES)
def engine(request) -> str:
    return request.param


def test_the_reference_run_exercises_the_model_and_depends_on_its_seed(engine):
    """Guards the rest of the file against comparing runs where nothing happens."""
    ref = reference(engine)
    assert len(ref) == STEPS + 1
    last = ref.iloc[-1]
    assert last["CancerCells"] > 0 and last["TCells"] > 0 and last["Kills"] > 0
    assert ref["PD1Occupancy"].max() > 0 and ref["Macrophages"].max() > 0
    assert ref["NKCells"].max() > 0
    assert not ref.equals(reference(engine, SEED + 1))


# --- (1) every way of running one model -------------------------------------------------------


def test_run_for_a_step_loop_and_from_scenario_give_simulates_series(engine):
    cls = model_class(engine)
    by_run_for = cls(**params())
    by_run_for.run_for(STEPS)
    same(series(by_run_for), reference(engine))
    by_steps = cls(**params())
    for _ in range(STEPS):
        by_steps.step()
    same(series(by_steps), reference(engine))
    by_name = cls.from_scenario(SCENARIO, rng=str(SEED), **SETS)  # the seed as typed
    by_name.run_for(STEPS // 2)
    by_name.run_for(STEPS - STEPS // 2)
    same(series(by_name), reference(engine))


def cli_args(engine: str, out: Path, *extra: str) -> list[str]:
    sets = [arg for name, value in SETS.items() for arg in ("--set", f"{name}={value}")]
    return ["run", "--scenario", SCENARIO, "--steps", str(STEPS), "--rng", str(SEED),
            "--engine", engine, *sets, "--quiet", "--out", str(out), *extra]


def test_abm_run_writes_simulates_series(engine, tmp_path):
    """``abm run --out x.parquet`` (and ``--record-every``) in this process."""
    from abm.cli import app

    out = tmp_path / "run.parquet"
    result = CliRunner().invoke(app, cli_args(engine, out))
    assert result.exit_code == 0, result.output
    same(pd.read_parquet(out), reference(engine))
    thinned = tmp_path / "thinned.parquet"
    result = CliRunner().invoke(app, cli_args(engine, thinned, "--record-every", "5"))
    assert result.exit_code == 0, result.output
    read = pd.read_parquet(thinned)
    assert list(read["Step"]) == [*range(0, STEPS, 5), STEPS]
    same(read, thin(reference(engine), 5))


def test_abm_run_in_a_fresh_process_with_another_hash_seed_gives_the_same_series(
        engine, tmp_path):
    """A new interpreter (new string hashes, set orders, import order): the same series. The
    hash seed is fixed to one this process almost surely does not use."""
    out = tmp_path / "run.parquet"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-m", "abm.cli", *cli_args(engine, out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    same(pd.read_parquet(out), reference(engine))


def session_series(session) -> pd.DataFrame:
    return series(session.model)


def test_the_dashboard_session_steps_simulates_series(engine):
    """The dashboard's ``Session`` built as the page builds it (scenario values, the typed
    parameters, the seed), stepped in frames of uneven size (play thread, Step button, Run to
    day): the same series; and a session from a link (string values) too."""
    from abm.dashboard.session import Session, scenario_values, session_from_query

    session = Session(SCENARIO, {**scenario_values(SCENARIO), **SETS}, SEED, engine=engine)
    for frame in (1, 1, 5, 17, STEPS - 24):
        assert session.advance(frame)
    assert session.model.steps == STEPS
    same(session_series(session), reference(engine))

    link = "&".join(f"{k}={v}" for k, v in SETS.items())
    linked, problem = session_from_query(f"?scenario={SCENARIO}&seed={SEED}&engine={engine}&"
                                         f"{link}")
    assert problem is None, problem
    assert linked.advance(STEPS)
    same(session_series(linked), reference(engine))


def test_the_dashboards_untreated_twin_is_the_untreated_run(engine):
    """Compare's twin, whether on from the start or switched on mid-run (caught up), is the
    run of the same seed without the scheduled therapies."""
    from abm.dashboard.session import Session, scenario_values, untreated

    values = {**scenario_values(SCENARIO), **SETS}
    expected = simulate({**untreated(params()), "rng": SEED}, STEPS, engine=engine)[0]
    assert not expected.equals(reference(engine))  # the therapies act within the run
    from_start = Session(SCENARIO, values, SEED, engine=engine)
    from_start.set_compare(True)
    from_start.build(values, SEED)  # Reset with Compare on
    mid_run = Session(SCENARIO, values, SEED, engine=engine)
    mid_run.advance(30)
    mid_run.set_compare(True)
    for session in (from_start, mid_run):
        while session.model.steps < STEPS:
            session.advance(min(7, STEPS - session.model.steps))
        same(series(session.twin), expected)
        same(series(session.model), reference(engine))


def sweep_spec(engine: str, replicates: int = 2, record_every: int = 1):
    from abm.sweep import parse_spec

    table = "\n".join(f"{k} = {v}" for k, v in SETS.items())
    text = (f'[sweep]\nname = "same_seed"\nscenario = "{SCENARIO}"\ndays = {STEPS // 24}\n'
            f'replicates = {replicates}\nseed = 11\nrecord_every = {record_every}\n'
            f'engine = "{engine}"\n\n[parameters]\n{table}\n')
    return parse_spec(tomllib.loads(text))


def assert_runs_are_simulates(out: Path, engine: str, record_every: int = 1) -> None:
    """Every run file of the sweep in ``out`` is ``simulate``'s series for the run's seed."""
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(summary) >= 2 and summary["seed"].nunique() == len(summary)
    for run_id, seed in zip(summary["run_id"], summary["seed"], strict=True):
        run = pd.read_parquet(out / "runs" / f"{run_id}.parquet")
        assert (run["seed"] == seed).all()
        same(run.drop(columns=ID_COLUMNS), thin(reference(engine, int(seed)), record_every))


def test_a_serial_sweep_run_is_the_simulation_of_its_seed(engine, tmp_path):
    from abm.sweep import run_sweep

    run_sweep(sweep_spec(engine, record_every=6), tmp_path / "serial", backend="serial",
              progress=False, log=lambda m: None)
    assert_runs_are_simulates(tmp_path / "serial", engine, record_every=6)


@pytest.mark.parametrize("backend", ["process", "dask"])
def test_a_parallel_sweep_of_the_fast_engine_is_the_simulation_of_its_seed(backend, tmp_path):
    """The process pool and a Dask ``LocalCluster`` of worker processes (the Mesa engine's are
    compared with the serial sweep in tests/test_sweep.py; the fast engine's pool too, but not
    its Dask workers, which load the compiled kernels in other processes)."""
    from abm.sweep import run_sweep

    run_sweep(sweep_spec("fast"), tmp_path / backend, backend=backend, workers=2,
              progress=False, log=lambda m: None)
    assert_runs_are_simulates(tmp_path / backend, "fast")


# --- (2) a sweep stopped and resumed ----------------------------------------------------------


def test_a_sweep_stopped_after_two_runs_and_resumed_writes_the_uninterrupted_files(
        engine, tmp_path, monkeypatch):
    """Stopped (Ctrl-C) once two run files are written, then run again: every run file and
    the summary are byte for byte those of a sweep that was never stopped."""
    from abm.sweep import run_sweep
    from abm.sweep import runner as R

    spec = sweep_spec(engine, replicates=4, record_every=6)
    quiet = {"backend": "serial", "progress": False, "log": lambda m: None}
    run_sweep(spec, tmp_path / "whole", **quiet)

    write_run, written = R.write_run, []

    def stop_after_two(*args, **kwargs):
        if len(written) == 2:
            raise KeyboardInterrupt
        write_run(*args, **kwargs)
        written.append(args)

    monkeypatch.setattr(R, "write_run", stop_after_two)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, **quiet)
    assert len(list((out / "runs").glob("*.parquet"))) == 2
    assert not (out / "summary.parquet").exists()
    monkeypatch.setattr(R, "write_run", write_run)
    outcome = run_sweep(spec, out, **quiet)
    assert (outcome.already_done, outcome.ran) == (2, 2)
    names = sorted(p.name for p in (tmp_path / "whole" / "runs").glob("*.parquet"))
    assert len(names) == 4
    assert names == sorted(p.name for p in (out / "runs").glob("*.parquet"))
    for name in [*(f"runs/{n}" for n in names), "summary.parquet"]:
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


# --- (3) threads ------------------------------------------------------------------------------


@pytest.mark.parametrize("field_step_h", [1, 3])
def test_fast_engine_threads_do_not_change_the_run(field_step_h):
    """``use_threads(2)`` from the start, and threads switched on and off between steps, give
    the one-thread series and fields (tests/test_fast_engine.py checks hourly solves without a
    lymph node; here fields every 3 hours and lymph-node priming as well)."""
    from abm.fast import FastTumorModel

    p = params(field_step_h=field_step_h, lymph_node_priming=True)
    runs = []
    for plan in ("one", "two", "switching"):
        model = FastTumorModel(**p)
        if plan == "two":
            model.use_threads(2)
        for hour in range(STEPS):
            if plan == "switching":
                model.use_threads(1 + hour % 2)
            model.step()
        runs.append((series(model), model.oxygen.data.copy(), model.chemokine.data.copy(),
                     model.ifng.data.copy(), model.tgfb.data.copy()))
    first, *fields = runs[0]
    assert first["Kills"].iloc[-1] > 0 and fields[2].max() > 0
    for df, *other in runs[1:]:
        same(df, first)
        assert all(np.array_equal(a, b) for a, b in zip(fields, other, strict=True))
    same(simulate(p, STEPS, engine="fast", threads=2)[0], first)


# --- (4) record_every -------------------------------------------------------------------------


@pytest.mark.parametrize("every", [2, 5, 7, STEPS, STEPS + 5])
def test_record_every_keeps_rows_without_changing_them(engine, every):
    full = reference(engine)
    kept, _ = simulate(params(), STEPS, record_every=every, engine=engine)
    steps = sorted({*range(0, STEPS + 1, every), STEPS})
    assert list(kept["Step"]) == steps
    same(kept, full[full["Step"].isin(steps)])


def test_record_every_keeps_the_last_row_of_a_run_that_stops_early(engine):
    """A tumour cleared before the end: the run stops, and its final row is kept."""
    p = build_params("elimination", {**SETS, "initial_tumor_cells": 5, "tcell_influx": 20.0,
                                     "rng": 2})
    full, model = simulate(p, 10 * 24, engine=engine)
    assert not model.running and len(full) < 10 * 24 + 1  # cleared early
    kept, _ = simulate(p, 10 * 24, record_every=24, engine=engine)
    assert kept["Step"].iloc[-1] == full["Step"].iloc[-1]
    same(kept, thin(full, 24))


# --- (5) doses given live ---------------------------------------------------------------------

LIVE = [("cart", 20), ("vaccine", None), ("anti_pd1", 2.0), ("anti_csf1r", None)]


def live_run(engine: str, via_session: bool = False) -> pd.DataFrame:
    """The reference run with four doses given by hand at hour 12 (as the dashboard's buttons
    give them, or ``model.administer``)."""
    from abm.dashboard.session import Session, scenario_values

    if via_session:
        session = Session(SCENARIO, {**scenario_values(SCENARIO), **SETS}, SEED, engine=engine)
        session.advance(12)
        for therapy, dose in LIVE:
            scale = 1.0 if dose is None else dose / session.model.treatments[therapy].dose
            session.administer(therapy, scale)
        session.advance(STEPS - 12)
        model = session.model
    else:
        model = model_class(engine)(**params())
        model.run_for(12)
        for therapy, dose in LIVE:
            model.administer(therapy, dose)
        model.run_for(STEPS - 12)
    assert [d["hour"] for d in model.dose_log if not d["scheduled"]] == [12] * len(LIVE)
    return series(model)


def test_doses_given_live_at_the_same_hour_give_the_same_run(engine):
    a, b = live_run(engine), live_run(engine)
    same(a, b)
    assert not a.equals(reference(engine))  # the doses changed the run
    same(live_run(engine, via_session=True), a)  # the dashboard's buttons: the same doses


# --- (6) no hidden global randomness ----------------------------------------------------------


def test_other_models_and_global_generators_in_between_change_nothing(engine):
    """Between every two steps: a model of the other seed and one of the other engine step,
    ``random``, ``numpy.random`` and numba's own generator are drawn from and reseeded, and a
    new model is built. The model's series is still the reference."""
    from abm.fast import kernels

    cls = model_class(engine)
    model = cls(**params())
    others = [cls(**params(SEED + 1)), model_class("fast" if engine == "mesa" else "mesa")(
        **params())]
    for hour in range(STEPS):
        model.step()
        for other in others:
            other.step()
        random.seed(hour)
        random.random()
        np.random.seed(hour)
        np.random.random(3)
        kernels.seed(hour)  # numba's generator, which the fast engine's kernels draw from
        cls(**params(SEED + 2 + hour))
    same(series(model), reference(engine))
    same(series(others[0]), reference(engine, SEED + 1))


def test_a_model_stepped_from_several_threads_gives_the_same_series(engine):
    """The dashboard steps a model from its play thread and from the page's handlers (Step,
    Run to day), and a server steps many tabs' models at once: numba's generator is per
    thread, the oxygen thread is shared. A model stepped alternately from two threads, and
    two models stepped concurrently (threaded fields on the fast engine) give their series."""
    cls = model_class(engine)
    model = cls(**params())
    with ThreadPoolExecutor(1) as pool:
        for hour in range(STEPS):
            pool.submit(model.step).result() if hour % 2 else model.step()
    same(series(model), reference(engine))

    models = [cls(**params()), cls(**params(SEED + 1))]
    for m in models:
        if hasattr(m, "use_threads"):
            m.use_threads(2)
    start = threading.Barrier(2)

    def play(m) -> None:
        start.wait()
        for _ in range(STEPS):
            m.step()

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(play, m) for m in models]:
            future.result()
    same(series(models[0]), reference(engine))
    same(series(models[1]), reference(engine, SEED + 1))


# --- (7) copies made mid-run ------------------------------------------------------------------

COPIERS = {"pickle": lambda m: pickle.loads(pickle.dumps(m)), "deepcopy": copy.deepcopy}


@pytest.mark.parametrize("how", list(COPIERS))
@pytest.mark.parametrize("engine_", ["mesa", "fast"])
def test_a_model_copied_mid_run_runs_on_as_the_original(engine_, how):
    """A copy made after 12 hours (the original kept or dropped) and the original, both run
    to the end: each gives the uncopied run's series."""
    model = model_class(engine_)(**params())
    model.run_for(12)
    twin = COPIERS[how](model)
    twin.run_for(STEPS - 12)
    model.run_for(STEPS - 12)
    same(series(model), reference(engine_))
    same(series(twin), reference(engine_))


@pytest.mark.parametrize("how", list(COPIERS))
def test_fast_engine_copy_keeps_its_fields_linked(how):
    """A fast model copied by pickle or deepcopy lost the link between its linear fields'
    stacked array and the chemokine and suppressive factor: the copy's run diverged within 10-20
    steps. Pinned down: after copying, each linear field's ``data``
    must still be a view of ``linear_fields.data`` (the array the compiled solve writes)."""
    from abm.fast import FastTumorModel

    model = FastTumorModel(**params())
    lf = model.linear_fields
    assert all(np.shares_memory(f.data, lf.data) for f in lf.fields)
    twin = COPIERS[how](model)
    assert twin.chemokine is twin.linear_fields.fields[0]
    assert all(np.shares_memory(f.data, twin.linear_fields.data)
               for f in twin.linear_fields.fields)
