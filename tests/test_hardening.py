"""Hardening: hostile and mistaken input gets one clear line and exit 2 (never a traceback, never
lost work), outputs are checked before simulating, sizes have limits, resume checks each run
file, the Dask cluster ``abm`` starts is not open to other users, and every run can be
reproduced from what it wrote."""

from __future__ import annotations

import os
import stat

from abm.run import atomic_write_bytes


def test_written_files_get_the_mode_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o600


# --- shared -----------------------------------------------------------------------------------

import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import free_port  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from abm.cli import app  # noqa: E402
from abm.sweep import SpecError, SweepError, load_spec, parse_spec, run_sweep  # noqa: E402

runner = CliRunner()
TINY_SETS = ["--set", "width=12", "--set", "height=12", "--set", "initial_tumor_cells=10"]
SPEC = """\
[sweep]
name = "hard"
days = 1
replicates = 2
seed = 5
record_every = 6

[parameters]
width = 20
height = 20
initial_tumor_cells = 20

[factors]
tcell_influx = [0.5, 2.0]
"""


def cli(*args: str):
    return runner.invoke(app, list(args))


def one_clean_error(result, fragment: str = "") -> str:
    """Exit 2, no traceback, exactly one `error:` line (containing ``fragment``); return it."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert fragment in errors[0], errors[0]
    return errors[0]


def write(tmp_path: Path, text: str = SPEC, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if a simulation starts (the check must come before the work)."""
    import abm.run

    def forbidden(*args, **kwargs):
        raise AssertionError("simulated before the output path was checked")

    monkeypatch.setattr(abm.run, "simulate", forbidden)


# --- crashes and lost work: `abm run` -----------------------------------------------------------


def test_a_sweep_into_a_folder_of_other_files_is_refused(tmp_path):
    out = tmp_path / "papers"
    out.mkdir()
    (out / "draft.docx").write_bytes(b"x")
    line = one_clean_error(cli("sweep", str(write(tmp_path)), "--out", str(out)),
                           "is not a sweep directory (no manifest.json)")
    assert str(out) in line and sorted(p.name for p in out.iterdir()) == ["draft.docx"]
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder is fine, and so is rerunning into the sweep it now holds
    import signal

    before = signal.getsignal(signal.SIGTERM)
    for _ in range(2):
        result = cli("sweep", str(write(tmp_path)), "--out", str(empty), "--backend", "serial",
                     "--quiet")
        assert result.exit_code == 0, result.output
    assert signal.getsignal(signal.SIGTERM) is before  # the sweep's SIGTERM handler is undone


def test_abm_run_stopped_by_sigterm_says_so_and_writes_nothing(tmp_path):
    import signal
    import subprocess
    import sys

    out = tmp_path / "run.parquet"
    proc = subprocess.Popen(
        [sys.executable, "-m", "abm.cli", "run", "--scenario", "escape", "--days", "60",
         "--rng", "1", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stderr.read(1)  # the progress bar has started: the run is simulating
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert b"stopped (SIGTERM); nothing written" in err and b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_before_a_command_starts_is_one_line_and_the_package_loads_lazily(
        monkeypatch, capsys):
    import subprocess
    import sys

    import abm.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(abm.cli, "app", interrupted)
    with pytest.raises(SystemExit) as stopped:
        abm.cli.main()
    assert stopped.value.code == 130 and capsys.readouterr().err.strip() == "interrupted"
    # the command line starts before Mesa and numpy load (the window where Ctrl-C would give
    # Python's traceback is short), and `from abm import TumorModel` still works
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, abm.cli; print('mesa' in sys.modules, "
         "'numpy' in sys.modules); from abm import TumorModel; print(TumorModel.__name__)"],
        capture_output=True, text=True, check=True).stdout.split()
    assert loaded == ["False", "False", "TumorModel"]


def test_ctrl_c_that_a_command_does_not_catch_is_one_line_too(monkeypatch, capsys, tmp_path):
    """Typer turns a KeyboardInterrupt inside a command into exit 130 without a word (seen in
    ``abm report`` and ``abm export``, and the first seconds of ``abm run``); a command that
    says it itself (``abm sweep``) is not said twice."""
    import sys

    import abm.cli
    import abm.scenarios

    class Interrupting(dict):
        def items(self):
            raise KeyboardInterrupt

    monkeypatch.setattr(abm.scenarios, "SCENARIOS", Interrupting(abm.scenarios.SCENARIOS))
    monkeypatch.setattr(sys, "argv", ["abm", "scenarios"])
    with pytest.raises(SystemExit) as stopped:
        abm.cli.main()
    assert stopped.value.code == 130 and capsys.readouterr().err.strip() == "interrupted"


def test_an_interrupted_run_says_so_and_writes_nothing(monkeypatch, tmp_path):
    import abm.run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(abm.run, "simulate", interrupted)
    out = tmp_path / "run.parquet"
    result = cli("run", "--quiet", *TINY_SETS, "--days", "1", "--out", str(out))
    assert result.exit_code == 130, result.output
    assert "interrupted; nothing written" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_deprecated_name_is_one_warning_line_not_a_source_line(monkeypatch):
    import warnings

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored afterwards
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = cli("run", "--quiet", *TINY_SETS, "--days", "0.25",
                     "--set", "checkpoint_start_day=3")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "deprecated" in line]
    assert lines == ["warning: parameter 'checkpoint_start_day' is deprecated and will be "
                     "removed: use 'anti_pd1_start_day'"], result.output
    with warnings.catch_warnings():  # the model's own UserWarning: a vaccine with no target
        warnings.simplefilter("always")
        result = cli("run", "--quiet", *TINY_SETS, "--days", "0.25", "--set",
                     "founder_antigens=0", "--set", "vaccine_start_day=0")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "no antigen" in line]
    assert len(lines) == 1 and re.fullmatch(
        r"warning: vaccine: no antigen to target .*", lines[0]), result.output


@pytest.mark.parametrize("name, fragment", [
    ("engine", "choose it with `abm run --engine fast`"),
    ("seed", "the seed is `rng`"),
    ("species", "choose it with `abm run --species mouse`"),
])
def test_a_setting_given_as_a_parameter_says_where_it_goes(no_simulation, name, fragment):
    one_clean_error(cli("run", "--quiet", *TINY_SETS, "--set", f"{name}=3"), fragment)
    with pytest.raises(SpecError, match=f"parameters.{name}: unknown parameter.*{fragment}"):
        parse_spec({"sweep": {"name": "e", "days": 1}, "parameters": {name: 3}})


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--days", "inf"], "--days inf: expected a positive finite number"),
        (["--days", "nan"], "--days nan"),
        (["--days", "0.01"], "less than one step"),
        (["--days", "1e9"], "--force"),
        (["--steps", str(10**23)], "--force"),
        (["--set", "width=12"], "--set width: given twice"),
        (["--set", "checkpoint_start_day=3", "--set", "anti_pd1_start_day=4"], "given twice"),
        (["--set", "rng=3"], "--rng"),
        # options of the wrong type: the option, the value and what it takes
        (["--steps", "1.5"], "--steps '1.5': expected an integer"),
        (["--steps=abc"], "--steps 'abc': expected an integer"),
        (["--days", "three"], "--days 'three': expected a number"),
        (["--record-every", "x"], "--record-every 'x': expected an integer"),
    ],
)
def test_run_refuses_mistakes_in_one_line_before_simulating(no_simulation, args, fragment):
    one_clean_error(cli("run", "--quiet", *TINY_SETS, *args), fragment)


def test_a_huge_run_is_refused_with_its_estimate_and_force_lets_it_start(monkeypatch):
    line = one_clean_error(cli("run", "--quiet", "--days", "4000", *TINY_SETS), "--force")
    assert "96000 steps (4000 days)" in line and "about" in line
    seen = []
    import abm.run

    def fake(params, steps, **kwargs):
        seen.append(steps)
        raise ValueError("stop here")

    monkeypatch.setattr(abm.run, "simulate", fake)
    one_clean_error(cli("run", "--quiet", "--days", "4000", "--force", *TINY_SETS), "stop here")
    assert seen == [96000]


@pytest.mark.parametrize("where", ["proc", "directory", "absolute_missing"])
def test_run_checks_the_output_path_before_simulating(no_simulation, tmp_path, where):
    if where == "proc":
        out = Path("/proc/abm-x.parquet")
    elif where == "directory":
        out = tmp_path / "run.parquet"
        out.mkdir()
    else:
        out = Path(f"/abm-nonexistent-{os.getpid()}/dir/run.csv")
    line = one_clean_error(cli("run", "--quiet", "--steps", "2", *TINY_SETS, "--out", str(out)))
    assert str(out) in line
    if where == "absolute_missing":
        assert not out.parent.parent.exists()  # nothing created at the file system's root


def test_the_parent_of_a_relative_output_path_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("run", "--quiet", "--steps", "2", "--rng", "1", *TINY_SETS,
                 "--out", "new/dir/run.csv")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "dir" / "run.csv").exists()


def test_a_file_system_error_while_writing_is_one_line_naming_the_path(tmp_path, monkeypatch):
    """... and the time series and its sidecar are replaced together or not at all: a sidecar
    that cannot be written leaves the earlier pair as it was (it left the new time series
    beside the old sidecar, which then described another run)."""
    import abm.run

    out = tmp_path / "run.parquet"
    first = cli("run", "--quiet", "--steps", "2", "--rng", "1", *TINY_SETS, "--out", str(out))
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = abm.run.AtomicFiles.write

    def denied(self, path, data):
        if path.suffix == ".json":
            raise PermissionError(13, "Permission denied", str(path))
        return real(self, path, data)

    monkeypatch.setattr(abm.run.AtomicFiles, "write", denied)
    line = one_clean_error(cli("run", "--quiet", "--steps", "2", "--rng", "2", *TINY_SETS,
                               "--out", str(out)))
    assert line == f"error: {out}.json: Permission denied"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary file


def test_an_absurd_run_length_is_said_in_a_short_line():
    line = one_clean_error(cli("run", "--days", "1.5e300"))
    assert line.startswith("error: 3.6e+301 steps (1.5e+300 days) on 100 x 100 sites") and (
        len(line) < 250), line


def test_a_therapy_that_starts_after_the_run_is_said_to_be_never_given(tmp_path):
    """A dose at hour h is given when the run has more than h steps: a start day at or after
    the end is a note (the sidecar's dose log stays empty), one before it is not."""
    import abm.cli
    from abm.params import PARAMS

    starts = {name for name in PARAMS if name.endswith("_start_day")}
    assert set(abm.cli.THERAPY_STARTS) == starts  # every therapy's start is checked
    for steps, dosed in ((24, False), (25, True)):
        out = tmp_path / f"r{steps}.csv"
        result = cli("run", "--quiet", "--steps", str(steps), "--rng", "1", *TINY_SETS,
                     "--set", "anti_pd1_start_day=1", "--out", str(out))
        assert result.exit_code == 0, result.output
        note = ("note: anti_pd1_start_day 1 is not before the run's end (day 1): that therapy "
                "is never given")
        assert (note in result.output) is not dosed, result.output
        doses = json.loads(out.with_name(out.name + ".json").read_text())["doses"]
        assert bool(doses) is dosed


# --- reproducibility and files ------------------------------------------------------------------


def test_a_run_without_rng_draws_prints_and_records_a_seed_that_repeats_it(tmp_path):
    first = tmp_path / "a.csv"
    result = cli("run", "--quiet", "--steps", "6", *TINY_SETS, "--out", str(first))
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "a.csv.json").read_text())
    seed = meta["seed"]
    assert isinstance(seed, int) and meta["seed_drawn"] is True
    assert f"seed {seed} (drawn at random; --rng {seed} repeats this run)" in result.output
    again = tmp_path / "b.csv"
    cli("run", "--quiet", "--steps", "6", "--rng", str(seed), *TINY_SETS, "--out", str(again))
    assert again.read_text() == first.read_text()
    assert json.loads((tmp_path / "b.csv.json").read_text())["seed_drawn"] is False


def test_replacing_a_file_is_said_and_no_out_says_nothing_was_written(tmp_path):
    out = tmp_path / "run.parquet"
    args = ["run", "--quiet", "--steps", "2", "--rng", "1", *TINY_SETS]
    assert "replaced" not in cli(*args, "--out", str(out)).output
    assert "(replaced the existing run.parquet and run.parquet.json)" in cli(
        *args, "--out", str(out)
    ).output
    assert "nothing written (give --out" in cli(*args).output


def test_csv_has_no_float32_noise(tmp_path):
    csv, parquet = tmp_path / "run.csv", tmp_path / "run.parquet"
    for out in (csv, parquet):
        cli("run", "--quiet", "--steps", "3", "--rng", "1", *TINY_SETS, "--out", str(out))
    text = csv.read_text()
    assert "0.05000000074505806" not in text and ",0.05," in text
    exact = pd.read_parquet(parquet)
    assert "0.05000000074505806" in exact.to_csv()  # the noise is real in the exact values
    read = pd.read_csv(csv)
    pd.testing.assert_frame_equal(read, exact, check_dtype=False, rtol=1e-6)


def test_csv_keeps_double_precision_values_and_shortens_only_float32_ones(tmp_path):
    """A parameter drawn in float64 is written with every digit (a CSV joins with its Parquet
    file); a float32 value is written as the shortest number that is it."""
    from abm.report import csv_ready

    df = pd.DataFrame({"founder_pdl1": [0.008785368004430194, 0.25],
                       "MeanPDL1": [0.8285782337188721, 0.05000000074505806]})
    path = tmp_path / "t.csv"
    csv_ready(df).to_csv(path, index=False)
    text = path.read_text()
    assert text.endswith("0.008785368004430194,0.82857823\n0.25,0.05\n"), text
    back = pd.read_csv(path, float_precision="round_trip")
    assert back["founder_pdl1"].tolist() == df["founder_pdl1"].tolist()
    assert (back["MeanPDL1"].to_numpy(np.float32) == df["MeanPDL1"].to_numpy(np.float32)).all()


def test_help_shows_defaults_and_params_shows_sources():
    wide = {"COLUMNS": "250"}
    text = runner.invoke(app, ["run", "--help"], env=wide).output
    for default in ("[default: (30)]", "[default: (a random seed", "[default: (nothing written)]"):
        assert default in text
    assert "[default: (all local cores)]" in runner.invoke(app, ["sweep", "--help"],
                                                          env=wide).output
    lines = cli("params").output.splitlines()
    assert lines and all("(source: " in line for line in lines)
    assert any("(source: modelling choice)" in line for line in lines)


# --- sweep specs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, fragment",
    [
        ("days = 1", "days = inf", "sweep.days: expected a positive finite number of days"),
        ("days = 1", "days = nan", "sweep.days"),
        ("record_every = 6", "record_every = 6\n[outcome]\nescape_multiple = inf",
         "outcome.escape_multiple: expected a positive finite number"),
    ],
)
def test_infinite_values_in_a_spec_are_refused_even_in_a_dry_run(tmp_path, old, new, fragment):
    path = write(tmp_path, SPEC.replace(old, new))
    with pytest.raises(SpecError, match=fragment):
        load_spec(path)
    one_clean_error(cli("sweep", str(path), "--dry-run"), fragment)


def test_a_spec_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(SPEC.replace('"hard"', '"d\xe9j\xe0"').encode("latin-1"))
    one_clean_error(cli("sweep", str(path), "--dry-run"), f"{path}: not UTF-8 text (byte 0xe9")


def test_a_spec_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SPEC.encode())
    assert load_spec(path).name == "hard"
    assert cli("sweep", str(path), "--dry-run").exit_code == 0


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (("replicates = 2", "replicates = 1000000"), "sweep.replicates"),
        (("days = 1", "days = 36500"), "sweep.days"),
        (("[factors]", "[sample]\nmethod = 'lhs'\nn = 100000000\n[sample.bounds]\n"
          "mutation_rate = [0.0, 0.1]\n[factors]"), "sample.n"),
        (("tcell_influx = [0.5, 2.0]", "tcell_influx = [" + ", ".join(
            f"{i / 100:g}" for i in range(1000)) + "]\nmutation_rate = [" + ", ".join(
            f"{i / 10000:g}" for i in range(200)) + "]"), "400000 runs"),
    ],
)
def test_a_clearly_mistaken_size_is_refused_fast_with_count_time_and_force(tmp_path, edit,
                                                                            fragment):
    path = write(tmp_path, SPEC.replace(*edit))
    start = time.monotonic()
    line = one_clean_error(cli("sweep", str(path), "--out", str(tmp_path / "o")), fragment)
    assert time.monotonic() - start < 10
    assert "runs of" in line and "of CPU time" in line and "--force" in line
    assert not (tmp_path / "o").exists()


def test_a_dry_run_of_a_million_runs_with_force_is_fast(tmp_path):
    values = ", ".join(f"{i / 100:g}" for i in range(1000))
    path = write(tmp_path, SPEC.replace("replicates = 2", "replicates = 1000").replace(
        "tcell_influx = [0.5, 2.0]", f"tcell_influx = [{values}]"))
    start = time.monotonic()
    result = cli("sweep", str(path), "--dry-run", "--force")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - start < 15
    assert "1000 points x 1000 replicates = 1000000 runs of 24 steps" in result.output
    assert "... 999980 more" in result.output


def test_every_grid_size_is_checked_not_only_the_first_20():
    # 25 valid widths, then one whose grid (14 x 10) cannot hold the 150 founder cells
    widths = list(range(40, 15, -1)) + [14]
    data = {
        "sweep": {"name": "sizes", "steps": 2},
        "parameters": {"height": 10, "initial_tumor_cells": 150},
        "factors": {"width": widths},
    }
    with pytest.raises(SpecError, match=r"factors: at width = 14: .*initial_tumor_cells"):
        parse_spec(data)


def test_the_model_and_the_sweep_share_one_check_across_parameters():
    from abm.model import TumorModel
    from abm.params import check_together, resolve

    cases = [
        ({"width": 10, "height": 10, "initial_tumor_cells": 100}, None),
        ({"width": 10, "height": 10, "initial_tumor_cells": 101}, "initial_tumor_cells"),
        ({"width": 10, "height": 10, "initial_tumor_cells": 5, "mutation_weight_lose_antigen": 0,
          "mutation_weight_gain_antigen": 0, "mutation_weight_lower_mhc": 0,
          "mutation_weight_raise_pdl1": 0}, "are all 0"),
    ]
    for case, refusal in cases:
        values = resolve(None, case)
        if refusal is None:
            check_together(values)
            TumorModel(rng=0, **values)
            continue
        with pytest.raises(ValueError, match=refusal) as direct:
            check_together(values)
        with pytest.raises(ValueError) as built:
            TumorModel(rng=0, **values)
        assert str(built.value) == str(direct.value)
        data = {"sweep": {"name": "x", "steps": 2}, "parameters": case}
        with pytest.raises(SpecError, match=refusal):
            parse_spec(data)


# --- sweeps: scheduler, output, resume ----------------------------------------------------------


@pytest.mark.parametrize("address", ["notaurl", "tcp://host", "http://x:80", "tcp://h:99999"])
def test_a_bad_scheduler_address_is_refused_and_nothing_is_created(tmp_path, address):
    out = tmp_path / "sweep"
    one_clean_error(cli("sweep", str(write(tmp_path)), "--out", str(out), "--scheduler", address),
                    "--scheduler")
    assert not out.exists()


def test_an_unreachable_scheduler_is_one_line_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import abm.sweep.backends

    monkeypatch.setattr(abm.sweep.backends, "CONNECT_TIMEOUT", "1s")
    out = tmp_path / "sweep"
    address = f"tcp://127.0.0.1:{free_port()}"
    one_clean_error(cli("sweep", str(write(tmp_path)), "--out", str(out), "--scheduler", address,
                        "--quiet"), f"--scheduler {address}: cannot connect")
    assert not out.exists()  # no .lock, no manifest.json, no directory


@pytest.mark.parametrize("where", ["proc", "file", "absolute_missing"])
def test_sweep_report_and_export_check_their_output_before_working(tmp_path, where, resumed):
    spec = write(tmp_path)
    if where == "proc":
        out = Path("/proc/abm-sweep")
    elif where == "file":
        out = tmp_path / "a-file"
        out.write_text("x")
    else:
        out = Path(f"/abm-nonexistent-{os.getpid()}/sweep")
    one_clean_error(cli("sweep", str(spec), "--out", str(out), "--backend", "serial"), str(out))
    one_clean_error(cli("report", str(resumed), "--out", str(out)), str(out))
    one_clean_error(cli("export", str(resumed), "--out", str(out)), str(out))
    assert not Path(f"/abm-nonexistent-{os.getpid()}").exists()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ref")
    out = tmp / "ref"
    run_sweep(load_spec(write(tmp)), out, backend="serial", progress=False, log=lambda m: 0)
    return out


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, reference) -> Path:
    """The reference sweep with one run file truncated and one emptied, as a crash or a full
    disk leaves them."""
    import shutil

    out = tmp_path_factory.mktemp("broken") / "sweep"
    shutil.copytree(reference, out)
    return out


def _break(out: Path) -> tuple[Path, Path]:
    truncated, empty = out / "runs" / "p00000-r001.parquet", out / "runs" / "p00001-r000.parquet"
    truncated.write_bytes(truncated.read_bytes()[:300])
    empty.write_bytes(b"")
    (out / "summary.parquet").unlink()  # as after a crash mid-sweep
    return truncated, empty


def test_report_and_export_name_a_broken_run_file(tmp_path, reference):
    import shutil

    out = tmp_path / "sweep"
    shutil.copytree(reference, out)
    truncated, empty = _break(out)
    for command in ("report", "export"):
        line = one_clean_error(cli(command, str(out)), "broken run file")
        assert str(truncated) in line or str(empty) in line
        assert "rerun the same `abm sweep` command" in line


def test_resume_reruns_broken_run_files_and_says_so(tmp_path, reference):
    import shutil

    out = tmp_path / "sweep"
    shutil.copytree(reference, out)
    truncated, empty = _break(out)
    messages = []
    outcome = run_sweep(load_spec(write(tmp_path)), out, backend="serial", progress=False,
                        log=messages.append)
    assert outcome.ran == 2 and outcome.already_done == 2
    assert any(str(truncated) in m and "broken" in m for m in messages), messages
    assert any(str(empty) in m and "broken" in m for m in messages), messages
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary.parquet"),
                                  pd.read_parquet(reference / "summary.parquet"))
    for name in (truncated.name, empty.name):
        pd.testing.assert_frame_equal(pd.read_parquet(out / "runs" / name),
                                      pd.read_parquet(reference / "runs" / name))


def test_a_run_file_of_another_run_is_not_trusted(tmp_path, reference):
    import shutil

    out = tmp_path / "sweep"
    shutil.copytree(reference, out)
    runs = out / "runs"
    shutil.copy(runs / "p00000-r000.parquet", runs / "p00001-r001.parquet")
    messages = []
    outcome = run_sweep(load_spec(write(tmp_path)), out, backend="serial", progress=False,
                        log=messages.append)
    assert outcome.ran == 1 and any("is not run p00001-r001's" in m for m in messages)


def _unreadable(monkeypatch, path: Path) -> None:
    """Python's ``open`` of ``path`` fails as a file of another user's (mode 0600) does: a
    test run as root reads every file, so the denial is made here."""
    import builtins

    import abm.sweep.storage as storage

    real = builtins.open

    def deny(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(storage, "open", deny, raising=False)


def test_a_run_file_the_system_will_not_let_us_read_is_not_removed_or_run_again(
        tmp_path, reference, monkeypatch):
    """A permission or I/O error is not a broken file: the file may be sound (a colleague's
    0600 file on a shared folder). Before, the resume called it broken, deleted it and ran it
    again, and report and export advised doing that."""
    import shutil

    out = tmp_path / "sweep"
    shutil.copytree(reference, out)
    (out / "summary.parquet").unlink()  # as after a crash mid-sweep: the runs are checked
    locked = out / "runs" / "p00000-r000.parquet"
    before = locked.read_bytes()
    _unreadable(monkeypatch, locked)
    messages = []
    with pytest.raises(SweepError, match=re.escape(
            f"{locked}: cannot read it (Permission denied); nothing was changed")):
        run_sweep(load_spec(write(tmp_path)), out, backend="serial", progress=False,
                  log=messages.append)
    assert locked.read_bytes() == before and not any("broken" in m for m in messages)
    for command in ("report", "export"):
        line = one_clean_error(cli(command, str(out)), f"{locked}: cannot read it")
        assert "broken" not in line and "rerun" not in line
    assert locked.read_bytes() == before


def test_a_sweep_that_loses_the_lock_leaves_the_winners_files(tmp_path, monkeypatch):
    """Two `abm sweep` started at once on a new folder: the one that loses the lock wrote
    nothing and removes nothing. Before, it had decided the sweep was new before it asked for
    the lock, and on losing it removed the winner's manifest.json and .lock (and the folder,
    when empty), while the winner went on; a third runner then got the lock and ran
    everything again beside it."""
    import fcntl

    import abm.sweep.runner as sweep_runner

    out = tmp_path / "sweep"
    out.mkdir()
    with open(out / ".lock", "a+") as winner:  # the winner holds the lock ...
        fcntl.flock(winner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        winner.write("4242")
        winner.flush()
        enter = sweep_runner._DirLock.__enter__

        def meanwhile(lock):  # ... and writes its manifest and runs folder meanwhile
            (out / "manifest.json").write_text("{}")
            (out / "runs").mkdir()
            return enter(lock)

        monkeypatch.setattr(sweep_runner._DirLock, "__enter__", meanwhile)
        with pytest.raises(SweepError, match=r"another `abm sweep` \(pid 4242\) is writing"):
            run_sweep(load_spec(write(tmp_path)), out, backend="serial", progress=False,
                      log=lambda m: 0)
        assert (out / "manifest.json").read_text() == "{}"
        assert (out / ".lock").read_text() == "4242" and (out / "runs").is_dir()


def test_a_sweep_into_a_folder_whose_name_is_not_utf8_finishes_and_resumes(tmp_path, reference):
    """A folder name that is not UTF-8 (a byte from another encoding; Python keeps it as a
    surrogate): pyarrow cannot encode such a path, so every run file was written, then called
    broken, and each rerun deleted them all and ran them again: the sweep never finished."""
    out = tmp_path / "caf\udce9"  # b"caf\xe9": Latin-1's é
    spec = load_spec(write(tmp_path))
    done = run_sweep(spec, out, backend="serial", progress=False, log=lambda m: 0)
    again = run_sweep(spec, out, backend="serial", progress=False, log=lambda m: 0)
    assert (done.ran, again.ran, again.already_done) == (4, 0, 4)
    pd.testing.assert_frame_equal(again.summary, pd.read_parquet(reference / "summary.parquet"))
    import os
    import subprocess
    import sys

    # the commands, as under a UTF-8 locale, whose output refuses such a name (strict): the
    # report was written, then printing its path ended in a traceback
    strict = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    for command in ("report", "export"):
        done = subprocess.run([sys.executable, "-m", "abm.cli", command, str(out)],
                              capture_output=True, timeout=300, env=strict)
        assert done.returncode == 0 and not done.stderr, done.stderr
        assert os.fsencode(out) in done.stdout  # the name's own bytes, as ls prints them
    assert (out / "report" / "report.md").exists() and (out / "export" / "summary.csv").exists()


@pytest.mark.parametrize("series, fragment", [
    ("run_id", "--series 'run_id': not a time-series column of this sweep (expected one of"),
    ("bogus", "--series 'bogus': not a time-series column of this sweep (expected one of"),
    ("CancerCell", "--series 'CancerCell': not a time-series column of this sweep; did you "
                   "mean CancerCells? (expected one of"),
])
def test_report_refuses_an_unknown_series_in_one_line(reference, tmp_path, series, fragment):
    line = one_clean_error(cli("report", str(reference), "--series", series,
                               "--out", str(tmp_path / "r")), fragment)
    assert "CancerCells" in line and "pyarrow" not in line
    assert not (tmp_path / "r").exists()


def test_export_csv_has_no_float32_noise(reference, tmp_path):
    result = cli("export", str(reference), "--out", str(tmp_path / "x"))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "x" / "timeseries.csv").read_text()
    assert "0.05000000074505806" not in text and ",0.05," in text


# --- security: the Dask cluster abm starts ------------------------------------------------------


def test_the_local_dask_cluster_uses_tls_and_refuses_other_clients():
    import socket
    import warnings

    from dask.distributed import Client
    from distributed.security import Security

    from abm.sweep.backends import local_cluster

    busy = socket.socket()  # the dashboard's usual port taken: nothing to say about it
    try:
        busy.bind(("127.0.0.1", 8787))
    except OSError:
        pass  # (taken already)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cluster = local_cluster(1)
    busy.close()
    assert not [w for w in caught if "8787" in str(w.message)], [str(w.message) for w in caught]
    try:
        assert cluster.scheduler_address.startswith("tls://")
        # the scheduler's HTTP server serves nothing: no dashboard, no worker or task info
        import urllib.error
        import urllib.request

        port = cluster.scheduler.http_server.port
        for page in ("status", "info/main/workers.html", "json/counts.json", "health"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=10)
        with Client(cluster) as ours:
            assert ours.submit(sum, [1, 2]).result(timeout=60) == 3
        plain = cluster.scheduler_address.replace("tls://", "tcp://")
        for address, security in ((plain, None), (cluster.scheduler_address,
                                                  Security.temporary())):
            with pytest.raises((OSError, TimeoutError, TypeError)):
                Client(address, security=security, timeout="3s")
    finally:
        cluster.close()


# --- property-based: random and hostile values ----------------------------------------------------

from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from abm import params as P  # noqa: E402

# deterministic (same examples every run: a failure is reproducible), and few examples: the
# CLI examples each build a model
PROPERTY = settings(
    max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
HOSTILE_TEXT = st.sampled_from([
    "", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e-400", "0x10", "1_000", "None",
    "none", "true", "yes", "2", "-0", "0.5", "1/2", "١٢", "∞", "\x00", "${HOME}", "$(id)",
    "__import__('os')", "9" * 400, "1e9", "-1", "3.0", "0b1", " 7 ", "1,5", "NULL",
])
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # TOML's integers
    st.booleans(),
)
VALUES = st.one_of(HOSTILE_TEXT, st.text(max_size=12), NUMBERS, st.none(),
                   st.lists(st.integers(0, 3), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                           st.integers(),
                                                                           max_size=1))


@PROPERTY
@given(name=st.sampled_from(sorted(P.PARAMS)), value=VALUES)
def test_parameter_validation_accepts_in_range_values_or_names_the_parameter(name, value):
    param = P.PARAMS[name]
    try:
        checked = P.validate({name: value})[name]
    except ValueError as err:
        assert f"{name!r}" in str(err) and "\n" not in str(err)
        return
    if checked is None:
        assert param.optional
        return
    assert type(checked) is param.kind
    if param.kind is not bool:
        assert param.low is None or checked >= param.low
        assert param.high is None or checked <= param.high
        assert checked == checked and abs(checked) != float("inf")


@PROPERTY
@given(value=VALUES)
def test_seed_validation_accepts_a_non_negative_integer_or_says_what_is_allowed(value):
    try:
        seed = P.validate_rng(value)
    except ValueError as err:
        assert "'rng'" in str(err)
        return
    assert seed is None or (type(seed) is int and seed >= 0)


SET_KEYS = st.sampled_from([
    "mutation_rate", "tcell_influx", "initial_tumor_cells", "tcell_kill_prob",
    "anti_pd1_start_day", "checkpoint_start_day", "vaccine_start_day",
    "mutation_weight_gain_antigen",
    "bogus", "", "rng", "width ", "MUTATION_RATE",
])
PLAIN = st.sampled_from(["0", "0.1", "0.5", "1", "3", "none", " 2 "])  # often valid
DAYS = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "0", "-1", "0.001", "0.02", "1e9", "1e308", "4000",
                     "abc", "", "1e-320", "0x1"]),
    st.floats(min_value=0.05, max_value=0.25).map(str),
)
RNG = st.one_of(st.integers(min_value=-5, max_value=2**70).map(str), HOSTILE_TEXT)


@PROPERTY
@given(sets=st.lists(st.tuples(SET_KEYS, st.one_of(PLAIN, HOSTILE_TEXT, NUMBERS.map(str))),
                    max_size=2),
       days=st.one_of(st.none(), st.none(), DAYS), rng=st.one_of(st.none(), RNG),
       fmt=st.sampled_from([".csv", ".parquet"]))
def test_abm_run_with_hostile_options_is_a_run_or_one_clean_error(tmp_path_factory, sets, days,
                                                                 rng, fmt):
    out = tmp_path_factory.mktemp("prop") / f"run{fmt}"
    args = ["run", "--quiet", "--set", "width=10", "--set", "height=10",
            "--set", "initial_tumor_cells=8", "--out", str(out)]
    for key, value in sets:
        args += ["--set", f"{key}={value}"]
    args += ["--days", days] if days is not None else ["--steps", "3"]
    args += ["--rng", rng] if rng is not None else []
    result = runner.invoke(app, args)
    event(f"exit code {result.exit_code}")
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        df = pd.read_parquet(out) if fmt == ".parquet" else pd.read_csv(out)
        meta = json.loads(out.with_name(out.name + ".json").read_text())
        assert len(df) == meta["steps_run"] + 1 and isinstance(meta["seed"], int)
        return
    if "Invalid value for '--days'" in result.output:  # not a number: Click's usage error
        assert result.exit_code == 2 and result.exception is None or isinstance(
            result.exception, SystemExit)
    else:
        one_clean_error(result)
    assert not out.exists() and not out.with_name(out.name + ".json").exists()  # no partial output
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary files


SPEC_KEYS = {
    "sweep": ["name", "days", "steps", "replicates", "seed", "seeds", "record_every", "scenario",
              "description", "bogus"],
    "parameters": ["mutation_rate", "tcell_influx", "width", "initial_tumor_cells", "rng", "x"],
    "factors": ["mutation_rate", "tcell_influx", "width", "anti_pd1_start_day", "rng"],
    "sample": ["method", "n", "seed", "bounds"],
    "outcome": ["escape_multiple", "escape_fraction", "other"],
    "probes": ["snapshot", "contacts", "bogus"],
    "bogus": ["a"],
}
SPEC_VALUES = st.one_of(
    st.sampled_from([0.1, 2, 3, "none", [0.1, 0.2], [1, 2], [0.5, 0.5], [], "x"]),
    NUMBERS, HOSTILE_TEXT, st.sampled_from(["lhs", "sobol", "escape", "t"]),
    st.lists(st.one_of(NUMBERS, HOSTILE_TEXT), max_size=3),
    st.dictionaries(st.sampled_from(["mutation_rate", "day", "every", "width", "q"]),
                    st.one_of(NUMBERS, st.lists(NUMBERS, max_size=3)), max_size=2),
)


@st.composite
def spec_data(draw):
    """A spec as parsed TOML: mostly the valid small spec with a few keys replaced by hostile
    values, sometimes tables of random keys."""
    import tomllib

    data = tomllib.loads(SPEC.replace("days = 1", "steps = 3"))
    for _ in range(draw(st.integers(0, 2))):
        table = draw(st.sampled_from(sorted(SPEC_KEYS)))
        key = draw(st.sampled_from(SPEC_KEYS[table]))
        value = draw(SPEC_VALUES)
        if draw(st.booleans()) and table != "sweep":
            data[table] = value if draw(st.integers(0, 9)) == 0 else {key: value}
        else:
            data.setdefault(table, {})
            if isinstance(data[table], dict):
                data[table][key] = value
    return data


@PROPERTY
@given(data=spec_data())
def test_the_spec_parser_gives_a_spec_or_one_line_naming_the_key(data):
    try:
        spec = parse_spec(data, source="hostile.toml")
    except SpecError as err:
        event("refused")
        assert str(err).startswith("hostile.toml: ") and "\n" not in str(err), str(err)
        return
    event("a valid spec")
    assert spec.n_runs >= 1 and spec.steps >= 1


@PROPERTY
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                     st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe[\x00",
                                      b"[sweep]\nname=\"x\"\n"])))
def test_any_file_as_a_spec_gives_a_spec_or_one_clean_line(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("spec") / "hostile.toml"
    path.write_bytes(raw)
    result = runner.invoke(app, ["sweep", str(path), "--dry-run"])
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        one_clean_error(result, f"{path}: ")


def test_an_integer_too_large_for_a_float_in_a_spec_is_named():
    data = {"sweep": {"name": "big", "steps": 2}, "parameters": {"tcell_influx": 10**400}}
    with pytest.raises(SpecError, match=r"parameters.tcell_influx: .*'tcell_influx' = 1e\+400 "
                                        r"\(an integer of 401 digits, beyond a float's range\)"):
        parse_spec(data)


BIG = "1e+400 (an integer of 401 digits, beyond a float's range)"
COUNT = "and at most 2**63 - 1, got " + BIG
UNIFORM = {"tcell_influx": [0.0, 1.0], "tcell_kill_prob": [0.1, 0.2]}


@pytest.mark.parametrize(("tables", "expected"), [
    ({"sweep": {"days": 10**400}},
     "sweep.days: 1e+400 days is too large (expected at most a few thousand days)"),
    ({"sweep": {"steps": 10**400}},
     f"sweep.steps: expected a whole number of hours >= 1 {COUNT}"),
    ({"sweep": {"replicates": 10**400}}, f"sweep.replicates: expected an integer >= 1 {COUNT}"),
    ({"outcome": {"escape_multiple": 10**400}},
     f"outcome.escape_multiple: expected a positive finite number, got {BIG}"),
    ({"sample": {"method": "lhs", "n": 10**400, "bounds": {"tcell_influx": [0, 1]}}},
     f"sample.n: expected an integer >= 1 {COUNT}"),
    ({"patients": {"n": 10**400, "uniform": UNIFORM}},
     f"patients.n: expected an integer >= 1 (patients) {COUNT}"),
    ({"patients": {"n": 4, "uniform": {"tcell_influx": [0, 10**400]}}},
     f"patients.uniform.tcell_influx: expected [low, high] (numbers), got [0, {BIG}] (list)"),
    ({"patients": {"n": 4, "uniform": UNIFORM,
                   "correlation": {"tcell_influx": {"tcell_kill_prob": -(10**400)}}}},
     "patients.correlation.tcell_influx.tcell_kill_prob: expected a rank correlation strictly "
     f"between -1 and 1, got -{BIG}"),
    ({"patients": {"n": 4, "uniform": UNIFORM}, "response": {"baseline_day": 10**400}},
     f"response.baseline_day: expected a day >= 0, got {BIG}"),
    ({"parameters": {"tcell_influx": 10**5000}},  # (Python writes no int of over 4300 digits)
     "parameters.tcell_influx: parameter 'tcell_influx' = 1e+5000 (an integer of 5001 digits, "
     "beyond a float's range) is not allowed: expected a number in [0, 100]"),
    ({"probes": {"snapshot": {"day": 10**5000}}},
     "probes.snapshot: probe 'snapshot': option 'day' = 1e+5000 (an integer of 5001 digits, "
     "beyond a float's range) is not allowed: expected a day >= 0"),
])
def test_an_integer_beyond_a_float_anywhere_in_a_spec_is_named_with_what_is_allowed(
    tables, expected
):
    """Only Python gives such an integer (TOML's are 64-bit): a SpecError naming the key, the
    value in short and what is allowed, never an OverflowError from the size estimate or a
    float conversion, nor Python's own "Exceeds the limit (4300 digits)"."""
    data = {"sweep": {"name": "big", "steps": 2}, **tables}
    data["sweep"] = {"name": "big", **({} if "days" in tables.get("sweep", {}) else
                                       {"steps": 2}), **tables.get("sweep", {})}
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert str(err.value).startswith(f"spec: {expected}"), str(err.value)


def test_an_absolute_output_path_needs_its_directory(no_simulation, tmp_path):
    out = tmp_path / "missing" / "run.csv"
    one_clean_error(cli("run", "--quiet", "--steps", "2", *TINY_SETS, "--out", str(out)),
                    f"directory {out.parent} does not exist")
    assert not out.parent.exists()
    blocker = tmp_path / "afile"  # a file where a directory of the path should be
    blocker.write_text("x")
    one_clean_error(cli("run", "--quiet", "--steps", "2", *TINY_SETS, "--out",
                        str(blocker / "sub" / "run.csv")), f"{blocker} is a file, not a directory")
    one_clean_error(cli("sweep", str(write(tmp_path)), "--out", str(blocker / "sub")),
                    f"{blocker} is a file, not a directory")


def test_the_dask_dashboard_option_is_for_the_local_cluster_only(tmp_path):
    spec = str(write(tmp_path))
    for extra, said in ((["--backend", "process"], "add --backend dask (not process)"),
                        ([], "add --backend dask"),
                        (["--scheduler", "tcp://127.0.0.1:8786"], "an external cluster has")):
        one_clean_error(cli("sweep", spec, "--out", str(tmp_path / "o"), "--dask-dashboard",
                            "127.0.0.1:8787", *extra), said)
    for address in ("notanaddress", "127.0.0.1:99999"):  # checked before anything starts
        for dry in ([], ["--dry-run"]):
            one_clean_error(cli("sweep", spec, "--out", str(tmp_path / "o"), "--backend", "dask",
                                "--dask-dashboard", address, *dry),
                            f"--dask-dashboard {address!r}: expected HOST:PORT")
    assert not (tmp_path / "o").exists()


def test_simulate_from_python_checks_its_steps_and_record_every():
    from abm.run import simulate

    params = {"width": 12, "height": 12, "initial_tumor_cells": 10, "rng": 1}
    for steps, every, says in ((-1, 1, "steps -1"), (2.5, 1, "steps 2.5"), (True, 1, "steps True"),
                               (4, 0, "record_every 0"), (4, -2, "record_every -2")):
        with pytest.raises(ValueError, match=f"simulate: {re.escape(says)}: expected a whole "
                                             "number >= "):
            simulate(params, steps, record_every=every)
    df, model = simulate(params, 4, record_every=2)
    assert model.steps == 4 and list(df["Step"]) == [0, 2, 4]


def test_report_and_export_into_an_unwritable_sweep_name_the_folder_not_an_option(
        reference, tmp_path, monkeypatch):
    import errno
    import tempfile

    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).is_relative_to(reference):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    for command, folder in (("report", "report"), ("export", "export")):
        line = one_clean_error(cli(command, str(reference)),
                               f"{reference / folder}: cannot write in")
        assert "--out " + str(reference) not in line
        assert line.endswith("(Read-only file system); give --out PATH to write elsewhere"), line
        result = cli(command, str(reference), "--out", str(tmp_path / folder))  # elsewhere: fine
        assert result.exit_code == 0, result.output


def test_a_failed_write_check_removes_only_the_folders_it_made(tmp_path, monkeypatch, capsys):
    import errno
    import tempfile

    import typer

    from abm.cli import check_output_dir

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "mkstemp", denied)
    (tmp_path / "kept").mkdir()  # there before: stays, as the target and as a parent
    for target in ("new/nested/dir", "kept/new/dir", "kept"):
        with pytest.raises(typer.Exit) as stopped:
            check_output_dir(Path(target))
        assert stopped.value.exit_code == 2
        assert capsys.readouterr().err == (f"error: --out {target}: cannot write in {target} "
                                           "(Permission denied)\n")
        assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["kept"]
    # a folder that gets a file meanwhile is kept (only empty ones are removed)
    real_rmdir = Path.rmdir

    def busy(self):
        if self.name == "busy":
            (self / "f").write_text("x")
        real_rmdir(self)

    monkeypatch.setattr(Path, "rmdir", busy)
    with pytest.raises(typer.Exit):
        check_output_dir(Path("a/busy/c"))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a", "a/busy", "a/busy/f", "kept"]
    # through the commands: nothing left behind
    for args in (["run", "--quiet", "--steps", "2", *TINY_SETS, "--out", "r/s/run.csv"],
                 ["sweep", str(write(tmp_path / "kept")), "--out", "sw/eep"]):
        one_clean_error(cli(*args), "cannot write in")
    assert not (tmp_path / "r").exists() and not (tmp_path / "sw").exists()


def test_a_failed_mkdir_removes_the_parents_the_check_made(tmp_path, monkeypatch, capsys):
    import typer

    from abm.cli import check_output_dir

    real_mkdir = Path.mkdir

    def refuse_deepest(self, *args, **kwargs):
        if self.name == "c":
            raise PermissionError(13, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Path, "mkdir", refuse_deepest)
    with pytest.raises(typer.Exit):
        check_output_dir(Path("a/b/c"))
    assert "error: --out a/b/c: cannot create a/b/c (Permission denied)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, fragment", [
    (["run", "--out", ""], '--out "": an empty path; give a .parquet or .csv file name, e.g. '
                           "--out run.parquet"),
    (["run", "--out="], '--out "": an empty path; give a .parquet or .csv file name'),
    (["sweep", "spec.toml", "--out", ""], '--out "": an empty path; give a folder, e.g. --out '),
    (["sweep", "", "--dry-run"], 'abm sweep "": an empty path; give the spec file'),
    (["report", ""], 'abm report "": an empty path; give the sweep folder'),
    (["export", ""], 'abm export "": an empty path; give the sweep folder'),
    (["report", "sweep", "--out", ""], '--out "": an empty path; give a folder'),
    (["export", "sweep", "--out", ""], '--out "": an empty path; give a folder'),
])
def test_an_empty_path_is_refused_naming_the_option(no_simulation, tmp_path, monkeypatch, args,
                                                   fragment):
    monkeypatch.chdir(tmp_path)
    write(tmp_path)
    (tmp_path / "sweep").mkdir()
    line = one_clean_error(cli(*args), fragment)
    assert "'.'" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml", "sweep"]  # nothing written


def test_every_path_option_and_argument_refuses_an_empty_path():
    import typer

    from abm.cli import EMPTY_PATH_HINTS

    commands = typer.main.get_command(app).commands
    checked = 0
    for name, command in commands.items():
        paths = [p for p in command.params if p.type_descriptor.annotation is Path]
        for param in paths:
            args = [name]
            for other in paths:  # the arguments before the options; the others given
                if other.param_type_name == "argument":
                    args.append("" if other is param else "x")
            if param.param_type_name == "option":
                args += [param.opts[0], ""]
            shown = param.opts[0] if param.param_type_name == "option" else f"abm {name}"
            one_clean_error(cli(*args), f'{shown} "": an empty path; '
                                        f"{EMPTY_PATH_HINTS[name, param.name]}")
            checked += 1
    assert checked == len(EMPTY_PATH_HINTS) == 7
