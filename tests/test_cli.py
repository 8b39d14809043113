"""`abm run`, `abm scenarios`, `abm params`: outputs, sidecar and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Annotated

import pandas as pd
import pytest
import typer
from conftest import TINY, set_args
from typer.testing import CliRunner

from abm.cli import app
from abm.scenarios import SCENARIOS

runner = CliRunner()
SMALL = set_args(TINY)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_run_writes_the_time_series_and_a_sidecar(tmp_path, suffix):
    out = tmp_path / f"run{suffix}"
    result = runner.invoke(app, ["run", "--scenario", "escape", "--days", "1", "--rng", "3",
                                 "--out", str(out), "--quiet", *SMALL])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert len(df) == 25 and df["Day"].iloc[-1] == 1.0
    assert {"CancerCells", "TCells", "MeanAntigenicity", "CloneCount"} <= set(df.columns)
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["seed"] == 3 and meta["scenario"] == "escape"
    assert meta["parameters"]["width"] == 30 and meta["parameters"]["mutation_rate"] == 0.05
    assert meta["abm"] and "mesa" in meta


def test_same_seed_gives_the_same_file(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.csv"
        runner.invoke(app, ["run", "--steps", "12", "--rng", "5", "--out", str(out), "--quiet",
                            *SMALL])
        outs.append(out.read_text())
    assert outs[0] == outs[1]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--set", "mutation_rate=2"], "'mutation_rate' = '2' is not allowed"),
        (["--set", "mutaton_rate=0.1"], "did you mean mutation_rate"),
        (["--set", "width"], "expected name=value"),
        (["--set", "=3"], "--set '=3': expected name=value"),
        (["--rng", "abc"], "--rng 'abc': expected an integer in [0, 2**64 - 1] (leave --rng "
                           "out"),
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--out", "x.txt"], ".parquet or .csv"),
        (["--days", "-1"], "--days"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(args, fragment):
    result = subprocess.run([sys.executable, "-m", "abm.cli", "run", "--quiet", *args],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_scenarios_and_params_explain_themselves():
    listing = runner.invoke(app, ["scenarios"]).output
    for name in SCENARIOS:
        assert name in listing
    params = runner.invoke(app, ["params"]).output
    assert "mutation_rate = 0.01 [per division]" in params
    assert "| `tcell_kill_prob` |" in runner.invoke(app, ["params", "--markdown"]).output
    assert "--scenario" in runner.invoke(app, ["run", "--help"]).output


def test_help_texts_do_not_break_sentences_mid_line():
    """Typer's help keeps a docstring's line breaks: each paragraph must come out whole, with
    the examples still one per line, and the command list shows one short sentence each."""
    wide = {"COLUMNS": "250"}
    serve = runner.invoke(app, ["serve", "--help"], env=wide).output
    assert ("Each browser tab gets its own model. Works offline: Solara's JavaScript and CSS "
            "are served from the installed solara-assets package, not a CDN.") in serve
    examples = [line.strip() for line in serve.splitlines() if "Example:" in line]
    assert examples == ["Example: abm serve            (then open the printed URL)",
                        "Example: abm serve --host 0.0.0.0 --port 8765   (a classroom network)"]
    export = runner.invoke(app, ["export", "--help"], env=wide).output
    assert "for a cohort patients.csv (each patient's response in each arm), and about.json" \
        in export
    listing = runner.invoke(app, ["--help"], env=wide).output
    row = next(line for line in listing.splitlines() if line.startswith("│ export "))
    assert row.strip("│ ").split(None, 1)[1] == ("Export a sweep for spreadsheets (CSV files "
                                                  "and about.json).")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "99999"], "--port 99999: expected"),
        (["--max-sites", "-5"], "--max-sites -5: expected"),
        (["--host", "999.1.1.1"], "999.1.1.1"),
    ],
)
def test_serve_refuses_bad_options_in_one_line_before_starting(args, message):
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_a_cleared_tumour_reports_no_mean_antigenicity():
    result = runner.invoke(app, ["run", "--scenario", "elimination", "--days", "10", "--rng", "1",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert "tumour eliminated (no mean antigenicity)" in result.output
    assert "mean antigenicity 0.00" not in result.output


# --- days that are not whole hours; output only once the input is good; workers -------------


@pytest.mark.parametrize(
    ("days", "fragment"),
    [
        ("0.3", "--days 0.3 is 7.2 h, not a whole number of hours, and the model runs whole "
                "hourly steps (it does not round): give --steps 7 or --steps 8"),
        ("1.01", "--days 1.01 is 24.24 h, not a whole number of hours"),
        ("0.02", "--days 0.02 is 0.48 h, less than one step (1 h); give at least --steps 1"),
    ],
)
def test_days_that_are_not_whole_hours_are_refused_not_rounded(tmp_path, days, fragment):
    """``--days 0.3`` used to run 7 steps (7.2 h rounded) without a word, so the run was not
    the one asked for. Now it is one line naming the option, the value and what to give, exit
    2, and nothing is written or printed on stdout (a sweep spec's ``days`` says the same)."""
    out = tmp_path / "run.csv"
    result = subprocess.run(
        [sys.executable, "-m", "abm.cli", "run", "--quiet", "--days", days, "--out", str(out),
         *SMALL], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert fragment in result.stderr, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_days_that_are_whole_hours_run_exactly_those_hours(tmp_path):
    """Fractions of a day that are whole hours still run (0.25 days = 6 steps)."""
    out = tmp_path / "run.csv"
    result = runner.invoke(app, ["run", "--days", "0.25", "--rng", "1", "--quiet", "--out",
                                 str(out), *SMALL])
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["steps_requested"] == 6 and len(pd.read_csv(out)) == meta["steps_run"] + 1


def test_an_input_error_found_by_the_model_prints_no_seed_line_first(tmp_path):
    """A founder tumour larger than the grid is refused by the model when it is built. The seed
    line ("seed N (drawn at random; ...)") used to come first, as if a run had started; now
    stdout is empty and stderr is the one error line."""
    out = tmp_path / "run.parquet"
    result = subprocess.run(
        [sys.executable, "-m", "abm.cli", "run", "--quiet", "--steps", "2", "--set", "width=10",
         "--set", "height=10", "--set", "initial_tumor_cells=500", "--out", str(out)],
        capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stdout == "", result.stdout
    assert result.stderr == ("error: parameter 'initial_tumor_cells' = 500 is not allowed: "
                             "expected at most width x height = 100 sites\n")
    assert not out.exists()
    good = runner.invoke(app, ["run", "--quiet", "--steps", "2", *SMALL])
    assert good.exit_code == 0 and good.output.startswith("seed "), good.output  # still said


@pytest.mark.parametrize("workers", ["4", "2"])
def test_the_serial_backend_refuses_workers_instead_of_ignoring_them(tmp_path, workers):
    """``abm sweep --backend serial --workers 4`` ran one run at a time and said nothing of
    the 4; it is one line now (as ``--scheduler`` with ``--backend process`` is), before
    anything is created. ``--workers 1`` agrees with serial and is accepted."""
    spec = tmp_path / "spec.toml"
    spec.write_text('[sweep]\nname = "w"\nsteps = 2\n\n[parameters]\nwidth = 20\nheight = 20\n'
                    'initial_tumor_cells = 10\n')
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "abm.cli", "sweep", str(spec), "--out", str(out), "--backend",
         "serial", "--workers", workers, "--quiet"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: --workers {workers}: the serial backend runs one run at a time in this process "
        f"(--workers 1 at most); leave out --backend serial to use {workers} processes (the "
        "process backend), or leave out --workers\n"), result.stderr
    assert result.stdout == "" and not out.exists()
    one = runner.invoke(app, ["sweep", str(spec), "--out", str(out), "--backend", "serial",
                              "--workers", "1", "--quiet"])
    assert one.exit_code == 0, one.output
    assert len(list((out / "runs").glob("*.parquet"))) == 1


@pytest.mark.parametrize("pending", [True, False])
def test_a_fast_run_says_when_it_compiles_first(tmp_path, monkeypatch, pending):
    """On a fresh machine (or a cleared cache) the fast engine compiles for 15-45 s before its
    first hour: ``abm run`` and ``abm sweep`` say so, rather than show a stalled bar with an
    ETA of minutes; with the cache warm they say nothing of it."""
    import abm.fast

    monkeypatch.setattr(abm.fast, "compile_pending", lambda: pending)
    result = runner.invoke(app, ["run", "--engine", "fast", "--steps", "2", "--rng", "1",
                                 "--out", str(tmp_path / "r.parquet"), *set_args(TINY)])
    assert result.exit_code == 0, result.output
    assert ("compiling the fast engine" in result.output) == pending
    spec = tmp_path / "spec.toml"
    spec.write_text('[sweep]\nname = "s"\nengine = "fast"\nsteps = 2\nreplicates = 1\n'
                    "[parameters]\n" + "".join(f"{k} = {v}\n" for k, v in TINY.items()))
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "sw"),
                                 "--backend", "serial", "--quiet"])
    assert result.exit_code == 0, result.output
    assert ("compiling the fast engine" in result.output) == pending


# --- an option given twice; the seed's bound -----------------------------------------------


def one_error_line(result) -> str:
    """Exit 2, no traceback, the output exactly one ``error:`` line; return it."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    return result.output.strip()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--days", "3", "--days", "5"], "--days: given twice ('3' and '5')"),
        (["run", "--days=3", "--days", "5", "--days=7"], "--days: given 3 times ('3', '5' and "
                                                         "'7')"),
        (["run", "--rng", "1", "--steps", "2", "--rng=2"], "--rng: given twice ('1' and '2')"),
        (["run", "--quiet", "--no-quiet"], "--quiet: given twice (--quiet and --no-quiet)"),
        (["run", "--engine", "fast", "--engine", "mesa"], "--engine: given twice ('fast' and "
                                                          "'mesa')"),
        (["sweep", "spec.toml", "--out", "a", "--out", "b"], "--out: given twice ('a' and 'b')"),
        (["sweep", "spec.toml", "--dry-run", "--workers", "2", "--workers", "3"],
         "--workers: given twice ('2' and '3')"),
        (["report", "sweep", "--outcome", "final_burden", "--outcome", "kills"],
         "--outcome: given twice ('final_burden' and 'kills')"),
        (["export", "sweep", "--out", "a", "--out=b"], "--out: given twice ('a' and 'b')"),
        (["serve", "--port", "8000", "--port", "9000"], "--port: given twice ('8000' and "
                                                        "'9000')"),
        (["serve", "--open", "--no-open"], "--open: given twice (--open and --no-open)"),
        (["params", "--markdown", "--markdown"], "--markdown: given twice (--markdown and "
                                                 "--markdown)"),
    ],
)
def test_an_option_given_twice_is_refused_naming_both_values(tmp_path, monkeypatch, args,
                                                             message):
    """Click keeps the last value of an option given twice: ``abm run --days 3 --days 5`` ran
    5 days without a word (a repeated ``--set`` was already refused). Now every command refuses
    it before doing anything, as one line naming the option and the values."""
    import os

    import abm.run

    def started(*args, **kwargs):
        raise AssertionError("started despite the repeated option")

    monkeypatch.setattr(abm.run, "simulate", started)
    monkeypatch.setattr(os, "execv", started)  # (abm serve: the server takes over the process)
    monkeypatch.chdir(tmp_path)
    line = one_error_line(runner.invoke(app, args))
    assert line == f"error: {message}; give it once"
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_options_meant_to_repeat_still_repeat(tmp_path):
    out = tmp_path / "run.csv"
    result = runner.invoke(app, ["run", "--quiet", "--steps", "2", "--rng", "1", "--out",
                                 str(out), *SMALL, "--set", "tcell_influx=0.5"])
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["parameters"]["width"] == TINY["width"]
    assert meta["parameters"]["tcell_influx"] == 0.5


def test_the_short_and_long_names_of_an_option_are_one_option():
    """The check is the commands' own class, for any option: a short and a long name, a value
    attached (``-d3``, ``--days=5``) or after; list and count options may repeat."""
    from abm.cli import PlainErrors

    toy = typer.Typer()

    @toy.command(cls=PlainErrors)
    def go(days: Annotated[float, typer.Option("--days", "-d")] = 1.0,
           tag: Annotated[list[str] | None, typer.Option("--tag", "-t")] = None,
           verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0) -> None:
        typer.echo(f"{days} {tag} {verbose}")

    @toy.command(cls=PlainErrors)
    def other() -> None:  # (two commands, so that `go` is a subcommand as in abm)
        pass

    for args in (["-d", "3", "--days", "5"], ["-d3", "--days=5"], ["-vd", "3", "-d", "5"]):
        assert one_error_line(runner.invoke(toy, ["go", *args])) == (
            "error: --days: given twice ('3' and '5'); give it once")
    result = runner.invoke(toy, ["go", "-t", "a", "--tag", "b", "-vv", "--verbose", "-d", "2"])
    assert result.exit_code == 0 and result.output == "2.0 ['a', 'b'] 3\n", result.output


def test_every_command_refuses_an_option_given_twice():
    """Each ``abm`` command is a ``PlainErrors`` command, where the check lives (a new command
    declared without it would keep the last value of a repeated option)."""
    import typer.main

    from abm.cli import PlainErrors

    commands = typer.main.get_command(app).commands
    assert {"run", "sweep", "report", "export", "serve", "params", "scenarios"} <= set(commands)
    assert [name for name, command in commands.items()
            if not isinstance(command, PlainErrors)] == []


@pytest.mark.parametrize("seed", [str(2**64), str(2**70), "-1", "1" * 30])
def test_a_seed_beyond_a_sweep_s_seeds_is_refused_as_a_sweep_refuses_it(seed):
    """``abm run --rng`` took any seed of up to 4300 digits, while a sweep's seeds are at most
    2**64 - 1 (its run files store them as uint64): a run's seed could not be given again in a
    sweep. The run now refuses it with the sweep's words (one check, abm.sweep.schema.seed)."""
    from abm.sweep import SpecError, parse_spec

    result = runner.invoke(app, ["run", "--quiet", "--steps", "1", *SMALL, "--rng", seed])
    line = one_error_line(result)
    assert line.startswith(f"error: --rng '{seed}': expected an integer in [0, 2**64 - 1] ")
    with pytest.raises(SpecError) as err:
        parse_spec({"sweep": {"name": "s", "steps": 1, "seeds": [int(seed)]}})
    assert "expected an integer in [0, 2**64 - 1]" in str(err.value)


def test_the_largest_seed_a_sweep_takes_runs_and_is_recorded(tmp_path):
    out = tmp_path / "run.csv"
    result = runner.invoke(app, ["run", "--quiet", "--steps", "1", *SMALL, "--rng",
                                 str(2**64 - 1), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.with_name(out.name + ".json").read_text())["seed"] == 2**64 - 1
