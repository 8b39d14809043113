"""Batch sweeps: spec validation, deterministic expansion, identical results on every
backend (serial, process pool, Dask LocalCluster, Dask scheduler + worker processes), and resume
after ``kill -9``. Runs are tiny (40x40 grid, 50 cells, 2 days) so the file runs in well under a
minute on two cores; backends are compared with each other, never with hard-coded numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import start_dask_scheduler, stop_process
from typer.testing import CliRunner

from abm.cli import app
from abm.sweep import (
    SpecError,
    SweepError,
    expand,
    load_spec,
    parse_spec,
    replicate_seeds,
    run_sweep,
    sample_points,
    spec_hash,
)

TINY = """\
[sweep]
name = "tiny"
description = "test sweep"
scenario = "escape"
days = 2
replicates = 2
seed = 2026
record_every = 12

[parameters]
width = 40
height = 40
initial_tumor_cells = 50

[factors]
tcell_influx = [0.5, 3.0]
anti_pd1_start_day = ["none", 1]
"""

runner = CliRunner()


def write_spec(tmp_path: Path, text: str = TINY, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def summary(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "summary.parquet")


def assert_same_sweep(a: Path, b: Path) -> None:
    """Same summary and the same time series in every run file."""
    pd.testing.assert_frame_equal(summary(a), summary(b))
    files_a = sorted(p.name for p in (a / "runs").glob("*.parquet"))
    assert files_a == sorted(p.name for p in (b / "runs").glob("*.parquet"))
    for name in files_a:
        pd.testing.assert_frame_equal(
            pd.read_parquet(a / "runs" / name), pd.read_parquet(b / "runs" / name)
        )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny sweep run serially: the reference every other backend must equal."""
    tmp = tmp_path_factory.mktemp("reference")
    out = tmp / "serial"
    run_sweep(load_spec(write_spec(tmp)), out, backend="serial", progress=False, log=lambda m: 0)
    return out


@pytest.fixture(scope="module")
def reference16(tmp_path_factory) -> tuple[Path, Path]:
    """A 16-run variant (4 replicates), run serially: (spec, sweep directory)."""
    tmp = tmp_path_factory.mktemp("reference16")
    spec = write_spec(tmp, TINY.replace("replicates = 2", "replicates = 4"))
    out = tmp / "serial"
    run_sweep(load_spec(spec), out, backend="serial", progress=False, log=lambda m: 0)
    return spec, out


def sweep_and_kill(out: Path, kill, **kwargs) -> None:
    """Run ``run_sweep`` in a thread; once two runs are on disk, call ``kill()`` (which stops a
    worker); then wait for the sweep to finish and re-raise its error, if any."""
    import threading

    spec_path = kwargs.pop("spec")
    errors = []

    def target() -> None:
        try:
            run_sweep(load_spec(spec_path), out, progress=False, **kwargs)
        except BaseException as err:  # re-raised in the test's thread
            errors.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 120
    while len(list((out / "runs").glob("*.parquet"))) < 2:
        assert thread.is_alive() and time.monotonic() < deadline, errors
        time.sleep(0.01)
    assert thread.is_alive(), "the sweep finished before a worker could be killed"
    kill()
    thread.join(timeout=300)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


# --- spec validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("tcell_influx = [0.5, 3.0]", "tcell_influxx = [0.5, 3.0]"),
            ["factors.tcell_influxx", "unknown parameter", "did you mean tcell_influx"],
        ),
        (
            ("tcell_influx = [0.5, 3.0]", "tcell_influx = [0.5, -3.0]"),
            ["factors.tcell_influx[1]", "-3.0", "[0, 100]"],
        ),
        (("width = 40", "width = 5"), ["parameters.width", "[10, 1000]"]),
        (("width = 40", 'width = "wide"'), ["parameters.width", "'wide'"]),
        (
            ("width = 40", "width = 40\nmutation_rate = [0.01, 0.05]"),
            ["parameters.mutation_rate", "[0.01, 0.05] is a list",
             "under [factors] (mutation_rate = [0.01, 0.05]", "[sample.bounds]"],
        ),
        (("days = 2", ""), ["sweep.days", "days = 30 or steps = 720"]),
        (("days = 2", "days = 2\nsteps = 48"), ["sweep.days", "exactly one"]),
        (("replicates = 2", "replicates = 0"), ["sweep.replicates", "integer >= 1"]),
        (('scenario = "escape"', 'scenario = "escpe"'), ["sweep.scenario", "escape"]),
        (("seed = 2026", "seed = 2026\ncolour = 1"), ["sweep.colour", "unknown key"]),
        (("[factors]", "[factorz]"), ["factorz", "unknown table"]),
        (
            ("tcell_influx = [0.5, 3.0]", "tcell_influx = []"),
            ["factors.tcell_influx", "non-empty list"],
        ),
        (
            ("tcell_influx = [0.5, 3.0]", "tcell_influx = [1.0, 1]"),
            ["factors.tcell_influx", "repeat"],
        ),
        (("tcell_influx = [0.5, 3.0]", "rng = [1, 2]"), ["factors.rng", "sweep.seed"]),
        (
            ("width = 40", "width = 40\ntcell_influx = 1.0"),
            ["factors.tcell_influx", "also set in [parameters]"],
        ),
        (
            ("initial_tumor_cells = 50", "initial_tumor_cells = 5000"),
            ["parameters", "initial_tumor_cells", "width x height"],
        ),
        (("[factors]", "[factors"), ["not valid TOML", "line"]),
    ],
)
def test_a_bad_spec_is_refused_with_one_message_naming_the_key(tmp_path, edit, expected):
    text = TINY.replace(*edit)
    assert text != TINY
    path = write_spec(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            'method = "grid"\nn = 4\n[sample.bounds]\nmutation_rate = [0.0, 0.1]',
            ["sample.method", "lhs"],
        ),
        (
            'method = "sobol"\nn = 6\n[sample.bounds]\nmutation_rate = [0.0, 0.1]',
            ["sample.n", "power of 2"],
        ),
        (
            'method = "lhs"\nn = 4\n[sample.bounds]\nmutation_rate = [0.1, 0.0]',
            ["sample.bounds.mutation_rate", "low < high"],
        ),
        (
            'method = "lhs"\nn = 4\n[sample.bounds]\nmutation_rate = [0.0, 2.0]',
            ["sample.bounds.mutation_rate[1]", "[0, 1]"],
        ),
        (
            'method = "lhs"\nn = 4\n[sample.bounds]\nanti_pd1_start_day = ["none", 5]',
            ["sample.bounds.anti_pd1_start_day", 'must be a number, not "none"'],
        ),
        (
            'method = "lhs"\nn = 4\n[sample.bounds]\ntcell_influx = [0.0, 2.0]',
            ["sample.bounds.tcell_influx", "also a factor"],
        ),
        ('method = "lhs"\nn = 4', ["sample.bounds", "required"]),
    ],
)
def test_a_bad_sample_is_refused_naming_the_key(tmp_path, sample, expected):
    path = write_spec(tmp_path, TINY + "\n[sample]\n" + sample + "\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    for part in expected:
        assert part in str(err.value), str(err.value)


def test_cli_bad_spec_exits_2_and_starts_nothing(tmp_path):
    path = write_spec(tmp_path, TINY.replace("[0.5, 3.0]", "[0.5, 300.0]"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--backend", "serial"])
    assert result.exit_code == 2
    assert "error:" in result.output and "factors.tcell_influx[1]" in result.output
    assert not out.exists()


def test_cli_dry_run_lists_the_runs_and_runs_nothing(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["sweep", str(write_spec(tmp_path)), "--out", str(out), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "4 points x 2 replicates = 8 runs" in result.output
    assert "p00003-r001" in result.output
    assert not out.exists()


# --- expansion --------------------------------------------------------------------------------


def test_expansion_is_deterministic_and_pairs_replicate_seeds_across_points(tmp_path):
    spec = load_spec(write_spec(tmp_path))
    runs = expand(spec)
    assert runs == expand(load_spec(write_spec(tmp_path)))
    assert len(runs) == spec.n_runs == 4 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    seeds = replicate_seeds(2026, 2)
    assert len(set(seeds)) == 2
    for run in runs:
        assert run.seed == seeds[run.replicate]  # replicate k: same seed at every point
    # first factor varies slowest; "none" means the therapy is not given
    assert [r.varied for r in runs[::2]] == [
        {"tcell_influx": 0.5, "anti_pd1_start_day": None},
        {"tcell_influx": 0.5, "anti_pd1_start_day": 1.0},
        {"tcell_influx": 3.0, "anti_pd1_start_day": None},
        {"tcell_influx": 3.0, "anti_pd1_start_day": 1.0},
    ]


@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_samples_are_deterministic_within_bounds_and_typed(method):
    data = {
        "sweep": {"name": "s", "days": 1, "seed": 5},
        "sample": {
            "method": method,
            "n": 8,
            "bounds": {"mutation_rate": [0.0, 0.05], "tcell_speed": [1, 10]},
        },
    }
    spec = parse_spec(data)
    points = sample_points(spec.sample)
    assert points == sample_points(parse_spec(data).sample)
    assert len(points) == spec.n_points == (8 if method == "lhs" else 8 * (2 + 2))
    assert all(0.0 <= p["mutation_rate"] <= 0.05 for p in points)
    assert all(isinstance(p["tcell_speed"], int) and 1 <= p["tcell_speed"] <= 10 for p in points)
    other = parse_spec({**data, "sweep": {**data["sweep"], "seed": 6}})
    assert sample_points(other.sample) != points


def test_factors_and_sample_combine_as_a_product():
    spec = parse_spec(
        {
            "sweep": {"name": "s", "days": 1, "replicates": 3},
            "factors": {"tcell_influx": [0.0, 1.0]},
            "sample": {"method": "lhs", "n": 5, "bounds": {"mutation_rate": [0.0, 0.05]}},
        }
    )
    runs = expand(spec)
    assert len(runs) == 2 * 5 * 3
    assert {r.varied["tcell_influx"] for r in runs[: 5 * 3]} == {0.0}


ARMS = """\
[sweep]
name = "arms"
scenario = "escape"
days = 1
seeds = [7, 3]
record_every = 6

[parameters]
width = 40
height = 40
initial_tumor_cells = 50

[arms.hot]
scenario = "checkpoint"

[arms.cold]
scenario = "checkpoint_cold"
width = 30

[arms.plain]

[factors]
anti_pd1_start_day = ["none", 0.5]
"""


def test_arms_expand_slowest_with_their_own_scenario_and_overrides(tmp_path):
    from abm.scenarios import scenario_params

    start_day = "anti_pd1_start_day"
    spec = load_spec(write_spec(tmp_path, ARMS))
    runs = expand(spec)
    assert spec.varied == ["arm", "anti_pd1_start_day"]
    assert len(runs) == spec.n_runs == 3 * 2 * 2
    assert [r.varied["arm"] for r in runs[::4]] == ["hot", "cold", "plain"]
    assert [r.seed for r in runs[:2]] == [7, 3]  # listed seeds, in order, at every point
    assert all(r.seed == [7, 3][r.replicate] for r in runs)
    for run in runs:
        params = spec.params_for(run.varied)
        scenario = {"hot": "checkpoint", "cold": "checkpoint_cold", "plain": "escape"}[
            run.varied["arm"]
        ]
        expected = {**scenario_params(scenario), "initial_tumor_cells": 50}
        for name, value in expected.items():
            if name not in ("width", start_day):
                assert params[name] == value, (run.run_id, name)
        # [parameters] apply to every arm; an arm's own override wins; factors win over both
        assert params["width"] == (30 if run.varied["arm"] == "cold" else 40)
        assert params[start_day] == run.varied["anti_pd1_start_day"]
    normal = load_spec(write_spec(tmp_path, TINY, "tiny.toml")).normalised()
    assert "arms" not in normal and "seeds" not in normal["sweep"]  # older sweeps keep their hash


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (('scenario = "checkpoint"\n', 'scenario = "chekpoint"\n'), ["arms.hot.scenario"]),
        (("width = 30", "width = 3"), ["arms.cold.width", "[10, 1000]"]),
        (("width = 30", "anti_pd1_start_day = 2"), ["factors.anti_pd1_start_day", "arms.cold"]),
        (("width = 30", "rng = 4"), ["arms.cold.rng", "sweep.seed"]),
        (("seeds = [7, 3]", "seeds = [7, 7]"), ["sweep.seeds", "repeat"]),
        (("seeds = [7, 3]", "seeds = []"), ["sweep.seeds", "non-empty"]),
        (("seeds = [7, 3]", "seeds = [7, -3]"), ["sweep.seeds[1]", "[0, 2**64 - 1]"]),
        (("seeds = [7, 3]", "seeds = [7, 3]\nseed = 1"), ["sweep.seeds", "not both"]),
        (("seeds = [7, 3]", "seeds = [7, 3]\nreplicates = 3"), ["sweep.replicates", "2 seeds"]),
        (("[arms.plain]", "[arms.plain]\ninitial_tumor_cells = 5000"), ["arms.plain"]),
    ],
)
def test_bad_arms_and_seed_lists_are_refused_naming_the_key(tmp_path, edit, expected):
    text = ARMS.replace(*edit)
    assert text != ARMS
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tmp_path, text))
    for part in expected:
        assert part in str(err.value), str(err.value)


def test_a_single_arm_is_refused(tmp_path):
    text = ARMS.split("[arms.hot]")[0] + '[arms.only]\nscenario = "checkpoint"\n'
    with pytest.raises(SpecError, match="one arm only"):
        load_spec(write_spec(tmp_path, text))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # a copied arm: the base scenario named, or not
        (('scenario = "checkpoint"\n', 'scenario = "escape"\n'),
         "arms.plain: identical to arms.hot: the same parameters once resolved (scenario "
         "'escape'), so every run of one repeats a run of the other; make the arms differ, "
         "or drop one"),
        # an override equal to the value the scenario gives anyway (escape's mutation rate)
        (('scenario = "checkpoint"\n', "mutation_rate = 0.05\n"),
         "arms.plain: identical to arms.hot: the same parameters once resolved (scenario "
         "'escape'; arms.hot's mutation_rate = 0.05: what both arms have anyway)"),
        (("width = 30", "width = 30\n\n[arms.cold_again]\nscenario = \"checkpoint_cold\"\n"
                        "width = 30"),
         "arms.cold_again: identical to arms.cold: the same parameters once resolved (scenario "
         "'checkpoint_cold'; arms.cold's width = 30, arms.cold_again's width = 30: what both "
         "arms have anyway)"),
        # checkpoint is escape with another mutation rate and anti-PD-1 start: both are factors
        (('anti_pd1_start_day = ["none", 0.5]', 'anti_pd1_start_day = ["none", 0.5]\n'
                                                'mutation_rate = [0.01, 0.05]'),
         "arms.plain: identical to arms.hot: the same parameters once resolved (scenarios "
         "'checkpoint' and 'escape'; mutation_rate, anti_pd1_start_day differ, but every point "
         "sets them)"),
    ],
)
def test_identical_arms_are_refused_naming_both(tmp_path, edit, message):
    """Two arms with the same parameters run the same simulations with the same seeds: almost
    surely a mistake in the design. The parameters are compared once resolved, so an arm that
    sets a parameter to the value it has anyway is still the same arm."""
    text = ARMS.replace(*edit)
    assert text != ARMS
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tmp_path, text))
    assert f"spec.toml: {message}" in str(err.value)


def test_a_cohort_s_identical_arms_are_refused_and_different_ones_accepted():
    cohort = {"patients": {"n": 2, "seed": 1, "choice": {"founder_antigens": [1, 2]}},
              "response": {"baseline_day": 0, "min_sd_days": 0.04},
              "sweep": {"scenario": "escape"}}
    with pytest.raises(SpecError, match=r"spec: arms\.treated: identical to arms\.untreated"):
        parse_spec(mini(**cohort, arms={"untreated": {}, "treated": {"anti_pd1_start_day":
                                                                      "none"}}))
    spec = parse_spec(mini(**cohort, arms={"untreated": {}, "treated": {"anti_pd1_start_day":
                                                                         1}}))
    assert list(spec.arms) == ["untreated", "treated"]


def test_an_arm_run_equals_the_same_run_made_by_hand(tmp_path):
    """Each run of an arms sweep is the simulation its arm describes, with its listed seed."""
    from abm.run import simulate
    from abm.scenarios import scenario_params

    out = tmp_path / "out"
    run_sweep(load_spec(write_spec(tmp_path, ARMS)), out, backend="serial", progress=False)
    table = summary(out)
    assert list(table["arm"].unique()) == ["hot", "cold", "plain"]
    row = table[(table["arm"] == "cold") & (table["replicate"] == 1)].iloc[1]
    assert row["seed"] == 3 and row["anti_pd1_start_day"] == 0.5
    params = {**scenario_params("checkpoint_cold"), "width": 30, "height": 40}
    params.update({"initial_tumor_cells": 50, "anti_pd1_start_day": 0.5, "rng": 3})
    df, _ = simulate(params, 24, record_every=6)
    run = pd.read_parquet(out / "runs" / f"{row['run_id']}.parquet")
    pd.testing.assert_frame_equal(
        run.drop(
            columns=["run_id", "point_id", "replicate", "seed", "arm", "anti_pd1_start_day"]
        ).reset_index(drop=True),
        df.reset_index(drop=True),
        check_dtype=False,
    )
    assert row["final_burden"] == df["CancerCells"].iloc[-1]


# --- backends give identical results ----------------------------------------------------------


@pytest.mark.parametrize("backend", ["process", "dask"])
def test_parallel_backends_equal_serial(reference, tmp_path, backend):
    """The process pool and a Dask LocalCluster give the serial sweep's results exactly."""
    out = tmp_path / backend
    run_sweep(
        load_spec(write_spec(tmp_path)),
        out,
        backend=backend,
        workers=2,
        progress=False,
        log=lambda m: 0,
    )
    assert_same_sweep(reference, out)


def test_a_pool_worker_killed_mid_sweep_costs_only_a_retry(reference16, tmp_path):
    import multiprocessing

    spec, reference = reference16
    out = tmp_path / "process"

    def kill_one_worker() -> None:
        workers = multiprocessing.active_children()
        assert workers
        os.kill(workers[0].pid, signal.SIGKILL)

    messages = []
    sweep_and_kill(
        out, kill_one_worker, spec=spec, backend="process", workers=2, log=messages.append
    )
    assert any("a worker process died" in m for m in messages), messages
    assert_same_sweep(reference, out)


def test_dask_scheduler_and_worker_processes_equal_serial_even_if_a_worker_dies(
    reference, reference16, tmp_path
):
    """``abm sweep --scheduler tcp://...`` against a cluster started the documented way
    (``dask scheduler`` and two ``dask worker`` processes); then a second sweep during which one
    worker is killed: its runs are redone by the other, and the result is unchanged."""
    from dask.distributed import Client

    dask = Path(sys.executable).parent / "dask"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler, address = start_dask_scheduler()
    workers = []
    try:
        for _ in range(2):
            workers.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                    ],
                    **quiet,
                )
            )
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=90)
        out = tmp_path / "cluster"
        args = ["sweep", str(write_spec(tmp_path)), "--out", str(out), "--scheduler", address]
        result = runner.invoke(app, [*args, "--quiet"])
        assert result.exit_code == 0, result.output
        assert f"on Dask ({address})" in result.output
        assert_same_sweep(reference, out)

        spec16, reference_16 = reference16
        out16 = tmp_path / "cluster16"
        kill = lambda: os.kill(workers[0].pid, signal.SIGKILL)  # noqa: E731
        sweep_and_kill(out16, kill, spec=spec16, scheduler=address, log=lambda m: 0)
        assert workers[0].wait(timeout=10) == -signal.SIGKILL
        assert_same_sweep(reference_16, out16)
    finally:
        for worker in workers:
            stop_process(worker)
        stop_process(scheduler)


# --- resume -----------------------------------------------------------------------------------


def signal_after_runs(proc: subprocess.Popen, out: Path, runs: int, signum: int) -> None:
    """Send ``signum`` to the sweep ``proc`` once ``runs`` run files are in ``out``."""
    deadline = time.monotonic() + 120
    while len(list((out / "runs").glob("*.parquet"))) < runs:
        assert proc.poll() is None, "the sweep finished before the signal could be sent"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signum)


def test_a_sweep_killed_with_sigkill_resumes_to_the_uninterrupted_result(reference16, tmp_path):
    spec, full = reference16

    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "abm.cli",
        "sweep",
        str(spec),
        "--out",
        str(out),
        "--backend",
        "serial",
        "--quiet",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        signal_after_runs(proc, out, 3, signal.SIGKILL)
    finally:
        proc.wait()
    done = len(list((out / "runs").glob("*.parquet")))
    assert 3 <= done < 16
    assert not (out / "summary.parquet").exists()

    result = runner.invoke(app, [*command[3:]])
    assert result.exit_code == 0, result.output
    assert f"({done} already done)" in result.output
    assert_same_sweep(full, out)
    assert not list((out / "runs").glob(".*"))  # no temporary files left behind


def test_a_sweep_stopped_with_sigterm_says_so_and_keeps_the_runs(reference16, tmp_path):
    """``kill`` (or a job scheduler's time limit) stops a sweep on the process pool as Ctrl-C
    does: the message, exit 143, the finished runs kept."""
    spec, _ = reference16
    out = tmp_path / "terminated"
    command = [sys.executable, "-m", "abm.cli", "sweep", str(spec), "--out", str(out),
               "--workers", "2", "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        signal_after_runs(proc, out, 2, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert "stopped (SIGTERM); finished runs are kept" in err and "Traceback" not in err
    assert len(list((out / "runs").glob("*.parquet"))) >= 2


def test_rerunning_a_finished_sweep_runs_nothing_and_keeps_the_summary(reference, tmp_path):
    spec = write_spec(tmp_path)
    before = summary(reference)
    mtimes = {p: p.stat().st_mtime_ns for p in (reference / "runs").glob("*.parquet")}
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(reference), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "(0 now, 8 before) on the mesa engine" in result.output
    pd.testing.assert_frame_equal(summary(reference), before)
    assert mtimes == {p: p.stat().st_mtime_ns for p in (reference / "runs").glob("*.parquet")}


def test_a_rerun_reads_each_run_files_footer_once(reference, tmp_path, monkeypatch):
    """Checking the finished runs reads their summary rows, and the sweep's summary is built
    from those rows: one footer read per run file (a 12,288-run sweep reran in half the time),
    the same summary as reading every file again."""
    import pyarrow.parquet as pq

    spec = write_spec(tmp_path)
    before = summary(reference)
    opened = []
    real = pq.read_metadata
    def spy(source, *args, **kwargs):  # (a path, or the file Python opened: its name)
        opened.append(Path(getattr(source, "name", source)))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_metadata", spy)
    run_sweep(load_spec(spec), reference, backend="serial", progress=False)
    runs = sorted((reference / "runs").glob("*.parquet"))
    assert len(runs) == 8 and sorted(opened) == runs
    pd.testing.assert_frame_equal(summary(reference), before)


def test_a_changed_spec_into_the_same_directory_is_refused(reference, tmp_path):
    spec = write_spec(tmp_path, TINY.replace("days = 2", "days = 3"))
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(reference), "--quiet"])
    assert result.exit_code == 2
    # what the folder holds and what was asked: 2 days, 48 hourly steps, against 3 (72)
    assert "different spec" in result.output and "sweep.steps 48 -> 72" in result.output
    fast = write_spec(tmp_path, TINY.replace("[sweep]", '[sweep]\nengine = "fast"'), "f.toml")
    result = runner.invoke(app, ["sweep", str(fast), "--out", str(reference), "--quiet"])
    assert result.exit_code == 2  # a key left out at its default is shown with that default
    assert 'sweep.engine "mesa" (the default) -> "fast"' in result.output, result.output
    with pytest.raises(SweepError):
        run_sweep(load_spec(spec), reference, backend="serial", progress=False)
    # a factor's levels: the factor and its levels are named, not only the table
    levels = write_spec(tmp_path, TINY.replace("tcell_influx = [0.5, 3.0]",
                                               "tcell_influx = [0.5, 2.0]"), "l.toml")
    result = runner.invoke(app, ["sweep", str(levels), "--out", str(reference), "--quiet"])
    assert result.exit_code == 2
    assert "changed: factors.tcell_influx [0.5, 3.0] -> [0.5, 2.0]" in result.output, result.output


def test_runs_made_by_other_model_code_are_not_resumed(reference, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["provenance"]["model_code"]  # a hash of the model's sources
    manifest["provenance"]["model_code"] = "0" * 64  # as if the model had changed since
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["sweep", str(write_spec(tmp_path)), "--out", str(out)])
    assert result.exit_code == 2
    assert "made by other model code" in result.output and "new directory" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_manifest_records_spec_runs_versions_and_commit(reference):
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["spec"]["sweep"]["name"] == "tiny"
    assert [r["run_id"] for r in manifest["runs"]] == list(summary(reference)["run_id"])
    assert {"abm", "mesa", "numpy", "scipy", "numba", "rocket_fft", "git_commit"} <= set(
        manifest["provenance"])
    assert manifest["provenance"]["numba"].startswith("0.")  # the installed version, recorded
    assert manifest["base_parameters"]["width"] == 40
    assert manifest["completed"]


def test_run_files_and_summary_carry_ids_and_varied_parameters(reference):
    s = summary(reference)
    assert list(s.columns[:6]) == [
        "run_id",
        "point_id",
        "replicate",
        "seed",
        "tcell_influx",
        "anti_pd1_start_day",
    ]
    assert set(s["outcome"]) <= {"eliminated", "controlled", "escape"}
    assert (s["peak_burden"] >= s["final_burden"]).all()
    run = pd.read_parquet(reference / "runs" / "p00001-r000.parquet")
    assert {
        "run_id",
        "point_id",
        "replicate",
        "seed",
        "tcell_influx",
        "anti_pd1_start_day",
        "Day",
        "CancerCells",
    } <= set(run.columns)
    assert set(run["Step"]) == {0, 12, 24, 36, 48} or run["Step"].iloc[-1] < 48


@pytest.mark.parametrize("engine", ["mesa", "fast"])
@pytest.mark.parametrize("probes", [False, True])
def test_a_run_is_the_simulation_thinned_and_summarised_from_every_step(tmp_path, engine, probes):
    """A worker's result (``execute_run``), with or without probes and on either engine: its
    series is ``simulate``'s with the same ``record_every`` (first, every 12th and final row),
    and its summary row is the outcome of the full every-step series, not of the kept rows."""
    from abm.analysis.outcomes import summarise
    from abm.run import simulate
    from abm.sweep import execute_run, make_task

    text = TINY.replace('record_every = 12', f'record_every = 12\nengine = "{engine}"')
    if probes:
        text += "\n[probes.snapshot]\nday = 1\n"
    spec = load_spec(write_spec(tmp_path, text))
    task = make_task(spec, expand(spec)[7])  # its burden peaks between two kept rows
    df, row, probed = execute_run(task)
    assert bool(probed) == probes
    every, _ = simulate(task["model"], task["steps"], record_every=12, engine=engine)
    full, _ = simulate(task["model"], task["steps"], engine=engine)
    assert len(full) > len(every) and list(every["Step"]) == [0, 12, 24, 36, 48]
    ids = ["run_id", "point_id", "replicate", "seed", *spec.varied]
    pd.testing.assert_frame_equal(df.drop(columns=ids), every)
    expected = summarise(full, sites=40 * 40, **spec.outcome)
    assert summarise(every, sites=40 * 40, **spec.outcome)["peak_day"] != expected["peak_day"]
    assert {k: row[k] for k in expected} == pytest.approx(expected, nan_ok=True)


def test_a_fast_engine_sweep_on_the_pool_writes_the_serial_sweeps_files(tmp_path):
    """The pool's workers live across runs (each loads the compiled kernels once): a fast-engine
    sweep of more runs than workers writes byte for byte the files the serial sweep writes."""
    text = TINY.replace('record_every = 12', 'record_every = 12\nengine = "fast"')
    spec = load_spec(write_spec(tmp_path, text))
    lines = []
    for backend in ("serial", "process"):
        run_sweep(spec, tmp_path / backend, backend=backend, workers=2, progress=False,
                  log=lines.append)
    # what the user reads names the engine: the start line and the report
    assert "(fast engine): 8 of 8 runs to do, on 2 local processes" in lines[-1], lines
    from abm.report import write_report

    report = write_report(tmp_path / "process")
    assert "- engine: `fast` (compiled" in Path(report).read_text()
    names = sorted(p.name for p in (tmp_path / "serial" / "runs").glob("*.parquet"))
    assert len(names) == spec.n_runs == 8
    for name in [*(f"runs/{n}" for n in names), "summary.parquet"]:
        assert (tmp_path / "process" / name).read_bytes() == (
            tmp_path / "serial" / name).read_bytes(), name


def test_a_finished_run_leaves_no_model_in_memory(tmp_path):
    """The runner's memory must not grow with the number of runs."""
    import gc

    from abm.model import TumorModel
    from abm.sweep import execute_run, make_task

    spec = load_spec(write_spec(tmp_path))
    gc.collect()
    before = sum(isinstance(o, TumorModel) for o in gc.get_objects())
    for run in expand(spec)[:3]:
        execute_run(make_task(spec, run))
    gc.collect()
    assert sum(isinstance(o, TumorModel) for o in gc.get_objects()) == before


# --- the ready-made experiments ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments").rglob("*.toml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_ready_made_experiment_is_a_valid_spec_with_its_question(path):
    spec = load_spec(path)
    runs = expand(spec)
    assert len(runs) == spec.n_runs > 1
    assert spec.description.endswith("?"), "each experiment states the question it answers"
    assert path.read_text().startswith("#"), "and explains itself at the top"


def test_the_validation_specs_are_paired_and_listed_in_the_docs():
    """Each fact's spec runs every arm on the same listed seeds, and docs/validation.md links
    it with its number of runs."""
    docs = (ROOT / "docs" / "validation.md").read_text()
    specs = sorted((ROOT / "experiments" / "validation").glob("fact*.toml"))
    # facts 1-7 (fact 2 also over 120 days, fact 3 also as a gradient and at tissue scale,
    # fact 4 with its non-antigenic control, fact 6 against burden at infusion);
    # fact 8 reuses the runs of facts 2 and 3
    assert len(specs) == 12
    for path in specs:
        spec = load_spec(path)
        assert spec.seeds is not None, path.name
        by_point: dict[int, list[int]] = {}
        for run in expand(spec):
            by_point.setdefault(run.point_id, []).append(run.seed)
        assert all(seeds == list(spec.seeds) for seeds in by_point.values()), path.name
        row = next(line for line in docs.splitlines() if f"`{path.name}`" in line)
        assert row.rstrip().endswith(f"| {spec.n_runs} |"), row


# --- probes -----------------------------------------------------------------------------------

PROBED = TINY + "\n[probes.snapshot]\nday = 1\n"


def test_probe_results_round_trip_with_dtype_shape_and_values():
    import numpy as np

    from abm.sweep import decode_probes, encode_probes

    results = {
        "snapshot": {
            "day": 1.0,
            "kind": np.arange(12, dtype=np.int8).reshape(3, 4),
            "pdl1": np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3),
            "mask": np.array([[True, False]]),
            "count": np.int64(7),
            "nested": [np.array([1.5, np.nan]), {"empty": np.zeros((0, 2), dtype=np.uint16)}],
        }
    }
    back = decode_probes(encode_probes(results))["snapshot"]
    assert back["day"] == 1.0 and back["count"] == 7
    for name in ("kind", "pdl1", "mask"):
        original = results["snapshot"][name]
        assert back[name].dtype == original.dtype and back[name].shape == original.shape
        np.testing.assert_array_equal(back[name], original)
    np.testing.assert_array_equal(back["nested"][0], [1.5, np.nan])
    empty = back["nested"][1]["empty"]
    assert empty.shape == (0, 2) and empty.dtype == np.uint16


@pytest.mark.parametrize(
    ("probes", "expected"),
    [
        ("[probes.snapshots]\nday = 1", ["probes.snapshots", "unknown probe", "snapshot"]),
        ("[probes.snapshot]\nday = -1", ["probes.snapshot", "'day'", "day >= 0"]),
        # a day that is not a whole number of hours is refused, not rounded (as --days)
        ("[probes.snapshot]\nday = 0.3", ["probes.snapshot", "'day'", "7.2 h", "0.291667"]),
        ("[probes.contacts]\ndays = [0.5, 1.01]", ["probes.contacts", "'days'", "24.24 h"]),
        ("[probes.snapshot]\nhour = 3", ["probes.snapshot", "unknown option 'hour'"]),
        ("[probes.snapshot]", ["probes.snapshot", "missing option 'day'"]),
        ("[probes]\nsnapshot = 3", ["probes.snapshot", "table of options"]),
        # the run (TINY: 2 days) ends before the probe measures anything
        ("[probes.snapshot]\nday = 30", ["probes.snapshot", "hour 720 (day 30)", "day 2)",
                                          "record nothing"]),
        ("[probes.contacts]\ndays = [3, 4]", ["probes.contacts", "hour 73", "record nothing"]),
    ],
)
def test_bad_probes_are_refused_naming_the_key_and_nothing_is_created(tmp_path, probes, expected):
    path = write_spec(tmp_path, TINY + "\n" + probes + "\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert message.startswith(f"{path}: probes") and "\n" not in message
    for part in expected:
        assert part in message, message
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--backend", "serial"])
    assert result.exit_code == 2 and "probes." in result.output
    assert not out.exists()


def test_probes_are_part_of_the_spec_hash(tmp_path):
    from abm.sweep import spec_hash

    plain = load_spec(write_spec(tmp_path, TINY, "plain.toml"))
    probed = load_spec(write_spec(tmp_path, PROBED, "probed.toml"))
    later = load_spec(write_spec(tmp_path, PROBED.replace("day = 1", "day = 1.5"), "later.toml"))
    assert probed.probes == {"snapshot": {"day": 1}}
    assert len({spec_hash(plain), spec_hash(probed), spec_hash(later)}) == 3
    assert "probes" not in plain.normalised()  # sweeps without probes keep their hash


def test_a_probed_sweep_has_the_same_series_and_stores_the_probes_in_each_run(
    reference, tmp_path
):
    """Probes only watch: every run file and the summary equal the sweep without probes; the
    snapshot read back is the model's own layers at the end of day 1."""
    import numpy as np

    from abm.model import TumorModel
    from abm.sweep import load_sweep, read_run_probes

    out = tmp_path / "probed"
    run_sweep(load_spec(write_spec(tmp_path, PROBED)), out, backend="serial", progress=False,
              log=lambda m: 0)
    assert_same_sweep(reference, out)
    assert read_run_probes(reference / "runs" / "p00000-r000.parquet") == {}

    sweep = load_sweep(out)
    assert sweep.complete and len(sweep.runs) == 8 and sweep.manifest["spec"]["probes"]
    pd.testing.assert_frame_equal(sweep.summary, summary(out))
    record = sweep.run("p00002-r001")
    assert record.varied == {"tcell_influx": 3.0, "anti_pd1_start_day": None}
    pd.testing.assert_frame_equal(record.series(), pd.read_parquet(record.path))
    one = record.series("CancerCells")  # one name, as a list of one (not one per letter)
    pd.testing.assert_frame_equal(one, record.series(["CancerCells"]))
    assert list(one.columns) == ["CancerCells"]
    snap = record.probes()["snapshot"]
    assert set(sweep.probes("snapshot")) == {r.run_id for r in sweep.runs}

    params = {**load_spec(write_spec(tmp_path, TINY, "tiny.toml")).params_for(record.varied)}
    model = TumorModel(**params, rng=record.seed)
    for _ in range(24):
        model.step()
    assert snap["day"] == 1.0
    assert snap["kind"].dtype == model.kind.dtype and snap["kind"].shape == (40, 40)
    np.testing.assert_array_equal(snap["kind"], model.kind)
    np.testing.assert_array_equal(snap["pdl1"], model.pdl1_map())
    np.testing.assert_array_equal(snap["ifng"], model.ifng.data)


def test_old_and_new_parameter_names_are_one_parameter():
    """A deprecated name works in a spec, keeps its name in the tables, reaches the model under
    the current name, and cannot be fixed under one name and varied under the other."""
    import warnings

    from abm.sweep.schema import canonical

    old, new = "checkpoint_start_day", canonical("checkpoint_start_day")
    base = {"sweep": {"name": "s", "days": 1}, "parameters": {"width": 40, "height": 40}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        spec = parse_spec({**base, "factors": {old: ["none", 2]}})
        assert spec.varied == [old]
        assert [spec.params_for(r.varied)[new] for r in expand(spec)] == [None, 2.0]
        if new != old:
            fixed = {**base, "parameters": {**base["parameters"], new: 3}}
            with pytest.raises(SpecError, match=rf"factors\.{old}: also set in \[parameters\]"):
                parse_spec({**fixed, "factors": {old: ["none", 2]}})


# --- error handling: seeds, numpy values, wrong types, the output directory, manifests -------

MINI = {"sweep": {"name": "mini", "steps": 2, "record_every": 1},
        "parameters": {"width": 20, "height": 20, "initial_tumor_cells": 10}}


def mini(**tables) -> dict:
    """A 1-run spec of 2 steps on a 20x20 grid; ``tables``: table -> entries to add."""
    data = {name: dict(table) for name, table in MINI.items()}
    for name, entries in tables.items():
        data.setdefault(name, {}).update(entries)
    return data


def quiet_sweep(spec, out, **kwargs):
    return run_sweep(spec, out, backend="serial", progress=False, log=lambda m: 0, **kwargs)


@pytest.mark.parametrize(
    ("tables", "key"),
    [
        ({"sweep": {"seeds": [2**64]}}, "sweep.seeds[0]"),
        ({"sweep": {"seeds": [1, 2**70]}}, "sweep.seeds[1]"),
        ({"sweep": {"seed": 2**64}}, "sweep.seed"),
        ({"sample": {"method": "lhs", "n": 2, "seed": 2**64,
                     "bounds": {"tcell_influx": [0.5, 2.0]}}}, "sample.seed"),
        ({"patients": {"n": 2, "seed": 2**64, "choice": {"founder_antigens": [1, 2]}}},
         "patients.seed"),
    ],
)
def test_a_seed_beyond_uint64_is_refused_when_the_spec_is_read(tables, key):
    """Run files store seeds as uint64: a larger one used to pass every check and fail with a
    pyarrow traceback after the run."""
    with pytest.raises(SpecError) as err:
        parse_spec(mini(**tables))
    assert f"spec: {key}: expected an integer in [0, 2**64 - 1], got " in str(err.value)


def test_the_largest_uint64_seed_runs_end_to_end(tmp_path):
    out = tmp_path / "big"
    quiet_sweep(parse_spec(mini(sweep={"seeds": [2**64 - 1]})), out)
    assert summary(out)["seed"].tolist() == [2**64 - 1]
    assert pd.read_parquet(out / "runs" / "p00000-r000.parquet")["seed"].iloc[0] == 2**64 - 1
    spec = parse_spec(mini(sweep={"seed": 2**64 - 1}))  # a master seed that large is fine too
    assert len(expand(spec)) == 1


def test_numpy_values_tuples_arrays_and_ranges_are_accepted_as_in_toml():
    """A spec built in code (values from numpy or pandas) is the same spec as its TOML twin."""
    import numpy as np

    plain = parse_spec(mini(sweep={"seeds": [3, 4]},
                            factors={"tcell_influx": [0.5, 1.0], "founder_antigens": [1, 2]}))
    numpy = parse_spec({
        "sweep": {"name": "mini", "steps": np.int64(2), "record_every": np.int32(1),
                  "seeds": np.arange(3, 5)},
        "parameters": {"width": np.int64(20), "height": 20, "initial_tumor_cells": 10},
        "factors": {"tcell_influx": np.array([0.5, 1.0]), "founder_antigens": range(1, 3)},
    })
    assert spec_hash(numpy) == spec_hash(plain)
    assert numpy.seeds == (3, 4) and all(type(s) is int for s in numpy.seeds)
    assert type(numpy.steps) is int and type(numpy.record_every) is int
    also = parse_spec(mini(sweep={"seeds": (np.uint64(3), 4), "replicates": np.int64(2)},
                           factors={"tcell_influx": (np.float32(0.5), 1.0),
                                    "founder_antigens": [np.int64(1), 2]}))
    assert spec_hash(also) == spec_hash(plain)
    days = parse_spec({**mini(), "sweep": {"name": "mini", "days": np.float64(0.5)}})
    assert days.steps == 12
    with pytest.raises(SpecError, match=r"sweep\.replicates: expected an integer >= 1, got "):
        parse_spec(mini(sweep={"replicates": np.bool_(True)}))
    with pytest.raises(SpecError, match=r"sweep\.seeds\[0\]: expected an integer"):
        parse_spec(mini(sweep={"seeds": [True]}))
    with pytest.raises(SpecError, match="factors.tcell_influx: expected a non-empty list"):
        parse_spec(mini(factors={"tcell_influx": np.array([[0.5], [1.0]])}))  # 2-D


def test_the_wrong_types_in_a_spec_get_a_sentence_not_a_traceback():
    for data, kind in ((None, "NoneType"), ([], "list"), ("spec.toml", "str")):
        with pytest.raises(SpecError, match=rf"^spec: expected a dict of tables, .*\({kind}\)$"):
            parse_spec(data)
    with pytest.raises(SpecError, match=r"parameters\.1: a parameter's name is a string"):
        parse_spec({**mini(), "parameters": {1: 2}})
    with pytest.raises(SpecError, match=r"factors\.None: a parameter's name is a string"):
        parse_spec(mini(factors={None: [1, 2]}))
    with pytest.raises(SpecError, match="arms: an arm needs a non-empty name"):
        parse_spec(mini(arms={3: {}, "b": {}}))
    with pytest.raises(TypeError, match="load_spec: expected the path of a TOML spec file"):
        load_spec(None)
    with pytest.raises(TypeError, match="parse_spec: this is already a Spec"):
        parse_spec(parse_spec(mini()))


def test_run_sweep_with_the_wrong_types_gets_a_sentence_not_a_traceback(tmp_path):
    spec = parse_spec(mini())
    with pytest.raises(TypeError, match=r"run_sweep: spec must be a Spec .* got dict"):
        quiet_sweep(mini(), tmp_path / "s")
    with pytest.raises(TypeError, match="run_sweep: out must be the sweep directory's path"):
        quiet_sweep(spec, None)
    before = set(Path.cwd().iterdir())
    with pytest.raises(SweepError, match='run_sweep: out "": an empty path'):
        quiet_sweep(spec, "")  # not the current folder, as Path("") would be
    assert set(Path.cwd().iterdir()) == before
    with pytest.raises(SweepError, match=r"workers = '2': expected an integer >= 1"):
        quiet_sweep(spec, tmp_path / "s", workers="2")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        ({"sweep": {"steps": 1.5}},
         "sweep.steps: expected a whole number of hours >= 1, got 1.5 (float)"),
        ({"arms": {"a": {"species": "mouse"}, "b": {}}},
         "arms.a.species: an arm cannot set species (a preset applied before every scenario of "
         "the sweep); set sweep.species"),
    ],
)
def test_spec_wording(tables, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(mini(**tables))
    assert str(err.value) == f"spec: {expected}"


def test_the_size_line_counts_in_the_singular_too():
    from abm.sweep import size_line

    assert size_line(parse_spec(mini())).startswith("1 point x 1 replicate = 1 run of 2 steps, ")
    one_step = parse_spec(mini(sweep={"steps": 1, "replicates": 2}))
    assert size_line(one_step).startswith("1 point x 2 replicates = 2 runs of 1 step, ")


def test_run_sweep_refuses_a_folder_of_other_files_and_a_file_naming_the_path(tmp_path):
    """The refusal is the sweep's (the Python API's too), and its messages name the path, not
    the CLI's --out."""
    spec = parse_spec(mini())
    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "draft.docx").write_bytes(b"x")
    with pytest.raises(SweepError) as err:
        quiet_sweep(spec, papers)
    assert str(err.value) == (
        f"{papers}: holds other files (draft.docx) and is not a sweep directory (no "
        "manifest.json); give a new or empty directory, or an earlier sweep's to resume it")
    assert [p.name for p in papers.iterdir()] == ["draft.docx"]
    orphans = tmp_path / "orphans"  # run files without their manifest: refused, and no lock
    (orphans / "runs").mkdir(parents=True)  # file is left behind among them
    (orphans / "runs" / "p00000-r000.parquet").write_bytes(b"x")
    with pytest.raises(SweepError):
        quiet_sweep(spec, orphans)
    assert sorted(p.name for p in orphans.rglob("*")) == ["p00000-r000.parquet", "runs"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SweepError, match=rf"^{afile}: exists and is not a directory$"):
        quiet_sweep(spec, afile)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert quiet_sweep(spec, empty).ran == 1  # an empty folder is fine


def test_no_sweep_message_mentions_the_clis_out_option():
    import abm.sweep

    sources = Path(abm.sweep.__file__).parent.glob("*.py")
    assert not [p.name for p in sources if "--out" in p.read_text()]


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        ("[]", "not an abm sweep manifest (JSON a list, not an object; another program's file?)"),
        ("{}", 'not an abm sweep manifest (no "format" key; another program\'s file?)'),
        ('{"name": "my web app", "version": 3}',
         'not an abm sweep manifest (no "format" key; another program\'s file?)'),
        ('{"format": 2}', "not an abm sweep manifest (format 2; another program's file?)"),
        ('{"format": "abm-sweep/0"}', "written by sweep format abm-sweep/0, this abm reads "
         "abm-sweep/1"),
        ('{"format": "abm-sweep/1", "spec_hash": "x"}',
         'not an abm sweep manifest (no "content_hash" key; another program\'s file?)'),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_named_when_resuming_and_reading(
    tmp_path, manifest, problem
):
    from abm.sweep import load_sweep

    out = tmp_path / "other"
    out.mkdir()
    (out / "manifest.json").write_text(manifest)
    with pytest.raises(SweepError) as err:
        quiet_sweep(parse_spec(mini()), out)
    assert str(err.value) == f"{out / 'manifest.json'}: {problem}; use a new directory"
    with pytest.raises(SweepError) as err:
        load_sweep(out)
    assert str(err.value) == f"{out / 'manifest.json'}: {problem}"
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == f"error: {out / 'manifest.json'}: {problem}"


def test_a_manifest_missing_the_spec_is_not_resumed_as_done(reference, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["spec"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SweepError, match='manifest.json: not an abm sweep manifest \\(no "spec"'):
        run_sweep(load_spec(write_spec(tmp_path)), out, backend="serial", progress=False)


def test_a_broken_manifest_says_the_finished_runs_are_kept(reference, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(SweepError) as err:
        run_sweep(load_spec(write_spec(tmp_path)), out, backend="serial", progress=False)
    message = str(err.value)
    assert message.startswith(f"{out / 'manifest.json'}: unreadable (")
    assert f"the finished runs in {out / 'runs'} are kept as they are" in message
    assert len(list((out / "runs").glob("*.parquet"))) == 8


def test_report_on_a_missing_path_or_a_file_says_so(tmp_path):
    from abm.sweep import read_manifest

    with pytest.raises(SweepError, match=r"nowhere: does not exist \(expected a sweep dir"):
        read_manifest(tmp_path / "nowhere")
    afile = tmp_path / "afile"
    afile.write_text("x")
    for command in ("report", "export"):
        result = runner.invoke(app, [command, str(afile)])
        assert result.exit_code == 2
        assert result.output.strip().startswith(f"error: {afile}: is a file, not a sweep dir")
    result = runner.invoke(app, ["export", str(tmp_path / "nowhere")])
    assert result.output.strip().startswith(f"error: {tmp_path / 'nowhere'}: does not exist")


@pytest.mark.parametrize("address", ["notanaddress", "127.0.0.1:99999", "127.0.0.1:0",
                                     ":8787", "127.0.0.1", "http://127.0.0.1:8787"])
def test_a_bad_dashboard_address_is_refused_before_anything_is_created(tmp_path, address):
    from abm.sweep.runner import check_dashboard_address

    with pytest.raises(SweepError) as err:
        check_dashboard_address(address, "--dask-dashboard")
    assert str(err.value) == (f"--dask-dashboard {address!r}: expected HOST:PORT with a port in "
                              "1-65535, e.g. 127.0.0.1:8787")
    out = tmp_path / "s"
    with pytest.raises(SweepError, match=rf"^dashboard {address!r}: expected HOST:PORT"):
        run_sweep(parse_spec(mini()), out, backend="dask", dashboard=address, progress=False)
    assert not out.exists()
    for good in ("127.0.0.1:8787", "localhost:1", "[::1]:65535", "0.0.0.0:8787"):
        check_dashboard_address(good)


def test_a_local_dask_cluster_that_cannot_start_is_one_sweep_error(monkeypatch):
    """The cluster's own failure (e.g. a dashboard host that does not resolve) names the
    address and the reason instead of Dask's traceback."""
    import socket

    import dask.distributed

    from abm.sweep.backends import local_cluster

    def failing(**kwargs):
        cause = socket.gaierror(-2, "Name or service not known")
        raise RuntimeError(f"Cluster failed to start: {cause}") from cause

    monkeypatch.setattr(dask.distributed, "LocalCluster", failing)
    with pytest.raises(SweepError) as err:
        local_cluster(1, "nohost.invalid:8787")
    assert str(err.value) == ("dashboard nohost.invalid:8787: the local Dask cluster could not "
                              "start (Name or service not known)")
    monkeypatch.setattr(dask.distributed, "LocalCluster",
                        lambda **kw: (_ for _ in ()).throw(OSError(98, "Address in use")))
    with pytest.raises(SweepError, match=r"^the local Dask cluster could not start \(Address"):
        local_cluster(1)


def test_dask_workers_are_capped_at_the_runs_to_do(tmp_path, monkeypatch):
    """As the process pool: no cluster of 100 workers for 2 runs."""
    from abm.sweep import runner as R
    from abm.sweep.backends import run_serial

    asked = []

    def fake_dask(tasks, workers, scheduler, key_prefix, *, dashboard=None, log=None):
        asked.append(workers)
        return run_serial(tasks)

    monkeypatch.setattr(R, "run_dask", fake_dask)
    messages = []
    run_sweep(parse_spec(mini(sweep={"replicates": 2})), tmp_path / "d", backend="dask",
              workers=100, progress=False, log=messages.append)
    assert asked == [2]
    assert "on a local Dask cluster of 2 workers" in messages[0]


def test_a_script_without_the_main_guard_is_told_at_once(tmp_path):
    """``run_sweep`` at the top level of a script: each spawned worker imports the script again
    and so calls ``run_sweep`` while it starts; that call says what to do, instead of taking the
    lock (``another abm sweep is writing``) and dying."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from abm.sweep import parse_spec, run_sweep\n"
        f"spec = parse_spec({mini()!r})\n"
        f"run_sweep(spec, {str(tmp_path / 'out')!r}, backend='process', workers=1, "
        "progress=False)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)
    assert proc.returncode != 0
    assert ("run_sweep was called while a worker process was starting" in proc.stderr
            ), proc.stderr[-3000:]
    assert '`if __name__ == "__main__":`' in proc.stderr
    assert "another `abm sweep`" not in proc.stderr


def test_the_model_code_hash_counts_code_not_comments_docstrings_or_lesson_texts():
    from pathlib import Path

    from abm import run as R

    src = Path(R.__file__).parent

    def same(name: str, old: str, new: str) -> bool:
        text = (src / name).read_text()
        assert old in text, old
        return R._code_of(name, text.replace(old, new, 1)) == R._code_of(name, text)

    # words for people: a lesson, a comment, a docstring, a parameter's description and source
    assert same("scenarios.py", '"lesson": (', '"lesson": ("An edited lesson. "')
    assert same("scenarios.py", '"steps": (', '"steps": ("An edited step.", ')
    assert same("model.py", "# ", "# an edited comment ")
    assert same("model.py", '"""', '"""An edited docstring. ')
    assert same("params.py", '"grid width"', '"grid width, in sites"')
    assert same("params.py", "modelling choice: 100x100", "modelling choice (edited): 100x100")
    assert same("species.py", '"pembrolizumab 200 mg every 3 weeks (label)"',
                '"pembrolizumab 200 mg every 3 weeks (the label)"')
    assert same("species.py", '"summary": "clinical:', '"summary": "clinical (edited):')
    # what makes results: a scenario's parameter, a default, a line of code
    assert not same("scenarios.py", '"tcell_influx": 4.0', '"tcell_influx": 5.0')
    assert not same("params.py", '_p("width", 100,', '_p("width", 101,')
    assert not same("species.py", '(21.0, "pembrolizumab 200 mg', '(14.0, "pembrolizumab 200 mg')
    assert not same("species.py", '"anti_pd1_interval_days": (21.0',
                    '"anti_pd1_dose": (21.0')  # (a preset setting another parameter)
    assert not same("model.py", "self.nk_kills = 0", "self.nk_kills = 1")


def test_the_views_are_not_model_code():
    """The dashboard, the CLI and the reports do not change a simulation's results, so editing
    them must not make stored sweeps stale: every module of theirs is left out of the model-code
    hash, and every module of the model is in it."""
    from pathlib import Path

    from abm import run as R

    pkg = Path(R.__file__).parent
    names = [p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py")]
    views = [n for n in names if n.split("/")[0] in ("dashboard", "report")
             or n in ("server.py", "cli.py")]
    assert len(views) > 10 and any(n.startswith("report/") for n in views)
    assert all(n.startswith(R._NOT_MODEL_CODE) for n in views)
    model = [n for n in names if n not in views]
    assert {"model.py", "agents/tcell.py", "fast/kernels.py", "run.py"} <= set(model)
    assert not any(n.startswith(R._NOT_MODEL_CODE) for n in model)


def test_a_cleared_tumour_has_no_final_means_in_its_summary():
    """A mean over no cancer cells is not 0: a cured run must not count as a fully hidden or
    antigen-negative tumour in a report's averages. (The reporters are NaN there now; run
    files written before recorded 0, as here, and their summaries are NaN too.)"""
    import math

    from abm.analysis.outcomes import summarise

    full = pd.DataFrame({
        "Step": [0, 1, 2], "Day": [0.0, 1 / 24, 2 / 24], "CancerCells": [5, 2, 0],
        "TCells": [1, 1, 1], "CARTCells": [0, 0, 0], "Kills": [0, 3, 5],
        "MeanAntigenicity": [0.9, 0.8, 0.0], "AntigenNegativeFraction": [0.0, 0.5, 0.0],
        "MeanPDL1": [0.1, 0.2, 0.0], "CloneCount": [1, 1, 0],
    })
    means = ("final_mean_antigenicity", "final_antigen_negative_fraction", "final_mean_pdl1")
    cleared = summarise(full, sites=100)
    assert cleared["outcome"] == "eliminated"
    assert all(math.isnan(cleared[name]) for name in means)
    alive = summarise(full.iloc[:2], sites=100)
    assert [alive[name] for name in means] == [0.8, 0.5, 0.2]


# --- days in whole hours, numbers given as text, workers on the serial backend ---------------


@pytest.mark.parametrize(
    ("days", "message"),
    [
        (0.3, "sweep.days: 0.3 days is 7.2 h, not a whole number of hours, and the model runs "
              "whole hourly steps (it does not round): give steps = 7 or steps = 8"),
        (2.01, "sweep.days: 2.01 days is 48.24 h, not a whole number of hours"),
        (0.02, "sweep.days: 0.02 days is 0.48 h, less than one step (1 h); give at least "
               "steps = 1"),
    ],
)
def test_spec_days_that_are_not_whole_hours_are_refused_as_abm_run_refuses_them(
        tmp_path, days, message):
    """``days = 0.3`` ran 7 steps without a word; the spec is refused now, naming the key, the
    value and what to give (as ``abm run --days 0.3``), and nothing is created. Days that are
    whole hours (0.25, 0.5, float noise such as 0.1 * 2.5) keep working."""
    text = TINY.replace("days = 2", f"days = {days}")
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tmp_path, text))
    assert str(err.value).startswith(f"{tmp_path / 'spec.toml'}: {message}"), err.value
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(write_spec(tmp_path, text)), "--out", str(out)])
    assert result.exit_code == 2 and message in result.output and not out.exists()
    assert parse_spec({**mini(), "sweep": {"name": "m", "days": 0.25}}).steps == 6
    assert parse_spec({**mini(), "sweep": {"name": "m", "days": 0.1 * 2.5}}).steps == 6


@pytest.mark.parametrize(
    ("tables", "key", "shown"),
    [
        ({"parameters": {"tcell_kill_prob": "0.5"}}, "parameters.tcell_kill_prob", "'0.5'"),
        ({"parameters": {"width": "20"}}, "parameters.width", "'20'"),
        ({"arms": {"a": {"tcell_influx": "2"}, "b": {}}}, "arms.a.tcell_influx", "'2'"),
        ({"factors": {"tcell_influx": [1, "2"]}}, "factors.tcell_influx[1]", "'2'"),
        ({"sample": {"method": "lhs", "n": 4, "bounds": {"tcell_influx": ["0.1", 2]}}},
         "sample.bounds.tcell_influx[0]", "'0.1'"),
        ({"patients": {"n": 2, "choice": {"founder_antigens": [1, "2"]}}},
         "patients.choice.founder_antigens[1]", "'2'"),
        ({"parameters": {"anti_pd1_start_day": "3"}}, "parameters.anti_pd1_start_day", "'3'"),
    ],
)
def test_numbers_written_as_text_in_a_spec_are_refused(tables, key, shown):
    """``tcell_kill_prob = "0.5"`` (quotes, a slip in TOML) was read as the number 0.5, and
    ``"0.1"`` as a bound likewise: no parameter is text, so the spec is refused, naming the key,
    the value and that a number is expected. ``"none"`` (a therapy not given) is still text
    where a parameter may be not given."""
    with pytest.raises(SpecError) as err:
        parse_spec(mini(**tables))
    message = str(err.value)
    assert message.startswith(f"spec: {key}: parameter "), message
    assert f"= {shown} is text (a string), which is not allowed: expected " in message
    assert "number" in message and "without quotes" in message
    assert "\n" not in message


def test_none_and_real_numbers_are_still_accepted_and_text_is_refused_from_the_cli(tmp_path):
    spec = parse_spec(mini(parameters={"anti_pd1_start_day": "none", "tcell_kill_prob": 0.5},
                           factors={"anti_ctla4_start_day": ["none", 1]}))
    assert spec.base["anti_pd1_start_day"] is None and spec.base["tcell_kill_prob"] == 0.5
    assert spec.factors["anti_ctla4_start_day"] == [None, 1.0]
    text = TINY.replace("width = 40", 'width = 40\ntcell_kill_prob = "0.5"')
    result = runner.invoke(app, ["sweep", str(write_spec(tmp_path, text)), "--dry-run"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {tmp_path / 'spec.toml'}: parameters.tcell_kill_prob: parameter "
        "'tcell_kill_prob' = '0.5' is text (a string), which is not allowed: expected a number "
        'in [0, 1]; write the number without quotes (0.5, not "0.5")')


def test_run_sweep_says_the_serial_backend_does_not_use_workers(tmp_path):
    """From Python, ``workers`` with the serial backend is not an error (scripts pass the same
    ``workers`` to every backend) but no longer silent: ``log`` gets one note."""
    lines: list[str] = []
    run_sweep(parse_spec(mini()), tmp_path / "s", backend="serial", workers=4, progress=False,
              log=lines.append)
    assert lines[0] == ("note: the serial backend runs one run at a time in this process; "
                        'workers = 4 is not used (backend="process" runs 4 processes)'), lines
    lines.clear()
    run_sweep(parse_spec(mini()), tmp_path / "t", backend="serial", workers=1, progress=False,
              log=lines.append)
    assert not any(line.startswith("note:") for line in lines), lines
