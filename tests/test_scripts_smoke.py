"""Smoke tests of the scripts in benchmarks/ and experiments/: the benchmarks that make
docs/performance.md's numbers and the analyses behind docs/validation*.md and docs/clinical.md.

Nothing else runs them, so without these they rot silently when the package changes (a renamed
function, a changed column, an option the docs still name). Each script must:

- state at its top what it measures and how to run it (its own path on a command line);
- answer ``--help`` (its imports and argument parser work);
- take only options its ``--help`` lists wherever the docs or its docstring show a command line;
- finish a tiny real run and print or write output of the expected shape (not just exit 0).

Tiny runs are subprocesses, as a user runs the scripts, writing under ``tmp_path`` (never
docs/img or the git-ignored runs/ folders). Runs longer than ~10 s are marked slow, the
benchmark of the dashboard in Chromium also browser. Scripts parts too slow to run tiny (over
~10 s whatever their options: ``bench_sweep.py`` memory, parallel and fast, the 1000x1000 cases
and compile times of ``bench_fast.py``, the myeloid analyses) get their --help and options
checked only; ``run_immune_myeloid.py``'s tables are also checked on stand-in runs.

    .venv/bin/pytest tests/test_scripts_smoke.py -m "not browser"   # ~1 min on 2 cores
    .venv/bin/pytest tests/test_scripts_smoke.py -m "not slow and not browser"   # ~35 s
"""

from __future__ import annotations

import ast
import json
import os
import re
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]

# every script, by path: a new one must be added here (and get a tiny run below)
SCRIPTS = (
    "benchmarks/bench_dashboard.py",
    "benchmarks/bench_fast.py",
    "benchmarks/bench_model.py",
    "benchmarks/bench_sweep.py",
    "benchmarks/field_clock.py",
    "benchmarks/preconditioner.py",
    "benchmarks/warm_start.py",
    "experiments/clinical/run_clinical.py",
    "experiments/kuznetsov/run_crosscheck.py",
    "experiments/validation/run_facts.py",
    "experiments/validation/run_immune_myeloid.py",
    "experiments/validation/run_immune_tcells.py",
)
DOCS = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md", ROOT / "experiments" / "README.md",
               ROOT / "Makefile"])


def run_script(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python SCRIPT ARGS`` from the repository root, as the docs run it; must exit 0."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{script} {' '.join(args)} exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}"
        f"\n--- stderr\n{done.stderr[-3000:]}")
    return done


def json_lines(text: str) -> list[dict]:
    """The lines of ``text`` that are whole JSON objects."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")
            and line.endswith("}")]


def markdown_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of the Markdown table rows of ``text`` whose first cell starts so."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]
    return [r for r in rows if r[0].startswith(first_cell)]


# --- every script: a docstring, --help, and the options the docs show -------------------------


def test_every_script_is_listed():
    found = {str(p.relative_to(ROOT)) for p in
             [*ROOT.glob("benchmarks/**/*.py"), *ROOT.glob("experiments/**/*.py")]}
    assert found == set(SCRIPTS), (
        f"scripts without a smoke test: {sorted(found - set(SCRIPTS))}; "
        f"listed but gone: {sorted(set(SCRIPTS) - found)}")


@pytest.mark.parametrize("script", SCRIPTS)
def test_docstring_says_what_and_how(script):
    doc = ast.get_docstring(ast.parse((ROOT / script).read_text())) or ""
    first = doc.split("\n\n")[0]
    assert len(first.split()) >= 5, f"{script}: no summary of what it measures at its top"
    assert script in doc, f"{script}: its docstring shows no command line running it"


_HELP: dict[str, str] = {}


def help_text(script: str, capsys) -> str:
    """``SCRIPT --help`` run in this process as ``__main__`` (imports and parser, no model)."""
    if script not in _HELP:
        argv, path = sys.argv, list(sys.path)
        sys.argv = [str(ROOT / script), "--help"]
        try:
            with pytest.raises(SystemExit) as exit_:
                runpy.run_path(str(ROOT / script), run_name="__main__")
        finally:
            sys.argv, sys.path[:] = argv, path
        out = capsys.readouterr().out
        assert exit_.value.code in (0, None), f"{script} --help exited {exit_.value.code}"
        assert out.startswith("usage:"), out[:500]
        _HELP[script] = out
    return _HELP[script]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, capsys):
    assert Path(script).name in help_text(script, capsys)


def shown_options(script: str) -> list[tuple[str, str]]:
    """(where, --option) for each option on a command line of ``script`` in the docs and in
    its own docstring: the text after the script's name up to the end of its code span or line
    (continued over a trailing backslash)."""
    name = re.escape(Path(script).name)
    found = []
    sources = [*DOCS, ROOT / script]
    for path in sources:
        text = path.read_text()
        if path == ROOT / script:
            text = ast.get_docstring(ast.parse(text)) or ""
        for m in re.finditer(rf"{name}((?:[ \t](?:[^`\n#\\]|\\\n|\\)*)?)", text):
            line = text.count("\n", 0, m.start()) + 1
            for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", m.group(1)):
                found.append((f"{path.relative_to(ROOT)}:{line}", option))
    return found


@pytest.mark.parametrize("script", SCRIPTS)
def test_options_shown_in_docs_exist(script, capsys):
    options = set(re.findall(r"--[a-z][\w-]*", help_text(script, capsys)))
    unknown = [(where, o) for where, o in shown_options(script) if o not in options]
    assert not unknown, f"{script}: the docs show options it does not take: {unknown}"


# --- experiments: the specs the analyses read ---------------------------------------------------


def spec_names(source: str) -> set[str]:
    """String literals of ``source`` that look like a spec's stem (not a dict key, such as the
    analyses' own names, nor part of an f-string)."""
    tree = ast.parse(source)
    skip = {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys}
    skip |= {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
             for v in node.values}
    stem = re.compile(r"(fact\d|immune_|calib_|tissue_|phenotypes|size_threshold|mouse_pair"
                      r"|tmb_pd1|checkmate067|cart_relapse)\w*")
    return {node.value.removesuffix(".toml") for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in skip and stem.fullmatch(node.value.removesuffix(".toml"))}


def test_analyses_name_existing_specs():
    """Every spec an analysis script names is a file next to it (a renamed spec is caught
    here, not after an hour of runs)."""
    seen = set()
    for script in SCRIPTS:
        if not script.startswith("experiments/"):
            continue
        folder = (ROOT / script).parent
        names = spec_names((ROOT / script).read_text())
        seen |= names
        missing = sorted(n for n in names if not (folder / f"{n}.toml").is_file())
        assert not missing, f"{script} names specs that are not in {folder}: {missing}"
    assert {"fact1_compact_growth", "calib_escape", "immune_tcells_spreading",
            "mouse_pair"} <= seen  # the check sees the names


def _run_facts():
    sys.path.insert(0, str(ROOT / "experiments" / "validation"))
    try:
        import run_facts
    finally:
        sys.path.remove(str(ROOT / "experiments" / "validation"))
    return run_facts


def test_seed_limit_shortens_every_validation_spec():
    """``--seeds N`` (the smoke runs') applies to every spec the analyses run."""
    from abm.sweep import parse_spec

    facts = _run_facts()
    texts = {p.name: p.read_text()
             for p in (ROOT / "experiments" / "validation").glob("*.toml")}
    texts |= {f"calib_all_{s}": facts.calib_all_spec(s, d) for s, d, _ in facts.CALIB_ALL}
    for name, text in texts.items():
        full = parse_spec(tomllib.loads(text), source=name)
        short = parse_spec(tomllib.loads(facts.with_seeds(text, 1, name)), source=name)
        assert short.n_runs == full.n_runs // len(full.seeds), name
        assert list(short.seeds) == list(full.seeds)[:1], name


# --- a cleared tumour: the means over cancer cells are NaN --------------------------------------


def test_field_clock_report_leaves_out_cleared_runs(capsys):
    """A run that cleared its tumour has no final mean antigenicity (NaN): the medians and the
    test use the other runs and say how many, instead of printing nan."""
    module = load_script("benchmarks/field_clock.py")
    rows = [{"scenario": "elimination", "every": k, "seed": seed, "cpu_s": 0.1,
             "final_burden": 0 if seed == 0 else 50 + seed + k, "total_kills": 10 + seed,
             "final_mean_antigenicity": float("nan") if seed == 0 else 0.5 + 0.01 * seed,
             "mean_pdl1": 0.2 + 0.01 * seed, "time_to_elimination_day": float("nan"),
             "outcome": "eliminated" if seed == 0 else "controlled"}
            for k in (1, 2) for seed in range(4)]
    module.report(rows)
    out = capsys.readouterr().out
    assert "nan" not in out, out
    assert re.search(r"final_mean_antigenicity +k=1 0\.52 \(of 3/4\) \| k=2 0\.52 \(of 3/4\)",
                     out), out


class _Run:
    def __init__(self, seed: int, n_cancer: int, **finals: float):
        self.seed, self.n_cancer, self._finals = seed, n_cancer, finals

    def final(self, column: str) -> float:
        return self._finals[column]


def test_immune_myeloid_tables_with_a_cleared_tumour(monkeypatch):
    """(c) and (d) with one seed's tumour cleared (its mean MHC-I NaN): counted among the
    comparable pairs only, and left out of the medians."""
    module = load_script("experiments/validation/run_immune_myeloid.py")
    nan = float("nan")

    def run(seed, n, mhc):
        return _Run(seed, n, MeanMHC=mhc, NKKills=5.0, NKCells=3.0, MeanAntigenicity=0.4,
                    M2Fraction=0.5)

    fake = {"immune_myeloid_nk": {0.0: [run(1, 100, 0.5), run(2, 90, 0.6)],
                                  0.2: [run(1, 0, nan), run(2, 80, 0.7)]},
            "immune_myeloid_grid": {(0.0, 0.0): [run(1, 0, nan), run(2, 80, 0.7)],
                                    (0.0, 0.5): [run(1, 10, 0.3), run(2, 20, 0.4)]}}
    monkeypatch.setattr(module.F, "sweep", lambda name: fake[name])
    monkeypatch.setattr(module, "SEEDS", [1, 2])
    rows = markdown_rows(module.part_c()["table"], "0.2")
    assert rows[0][3] == "1/1"  # seed 1 cleared: one comparable pair, in which MHC-I is higher
    grid = module.part_d()["table"]
    assert "40 / 0.700 / 0.50" in grid and "nan" not in grid


def test_immune_myeloid_seeds_table_pairs_the_seeds(monkeypatch):
    """(e): the paired change, the geometric-mean burden ratio (a cleared tumour, which has no
    ratio, left out of it), the seeds larger with macrophages and the signed-rank test."""
    module = load_script("experiments/validation/run_immune_myeloid.py")
    default = [_Run(s, 100 * s) for s in range(1, 7)]
    halved = [_Run(s, 50 * s if s < 6 else 0) for s in range(1, 7)]  # seed 6 cleared
    monkeypatch.setattr(module.F, "sweep", lambda name: {"default": default,
                                                         "no macrophages": halved})
    (row,) = markdown_rows(module.part_e()["table"], "6")
    assert row[3].startswith("-0.500 [")  # five seeds -0.5, one -1.0
    assert row[5] == "0.500 [0.500, 0.500]"  # the five ratios of 0.5, the cleared seed out
    assert row[6] == "6/6"
    assert row[7] == "0.031"  # exact signed-rank test: all six of one sign, 2/64


# --- tiny real runs: benchmarks ----------------------------------------------------------------


def test_field_clock_tiny(tmp_path):
    out = tmp_path / "runs.jsonl"
    done = run_script("benchmarks/field_clock.py", "--every", "1", "2", "--scenarios", "escape",
                      "--seeds", "2", "--days", "1", "--size", "30", "--workers", "1",
                      "--out", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and {r["every"] for r in rows} == {1, 2}
    assert {"cpu_s", "final_burden", "mean_pdl1", "outcome"} <= set(rows[0])
    assert "escape: CPU per run k=1" in done.stdout
    for metric in ("final_burden", "total_kills", "final_mean_antigenicity", "mean_pdl1"):
        assert re.search(rf"^  {metric} +k=1 [\d.]+.*\| k=2 ", done.stdout, re.M), done.stdout


def test_warm_start_tiny():
    done = run_script("benchmarks/warm_start.py", "--seeds", "1", "--days", "1",
                      "--factors", "0", "1")
    rows = json_lines(done.stdout)
    assert [r["factor"] for r in rows] == [0.0, 1.0]
    for r in rows:
        assert r["oxygen_iterations"] > 0 and r["oxygen_us"] > 0 and "ifng_iterations" in r


def test_preconditioner_tiny():
    done = run_script("benchmarks/preconditioner.py", "--seeds", "1", "--days", "1",
                      "--scenarios", "escape", "--oxygen", "1", "2", "--ifng", "1")
    (row,) = json_lines(done.stdout)
    assert row["case"] == "escape seed 0"
    assert set(row["oxygen"]) == {"1.0", "2.0", "tol"} and set(row["ifng"]) == {"1.0", "tol"}
    assert row["oxygen"]["1.0"]["iterations"] > 0
    assert row["oxygen"]["2.0"]["error_max"] >= row["oxygen"]["2.0"]["error_median"] >= 0


def test_bench_dashboard_in_process(tmp_path):
    out = tmp_path / "dash.json"
    done = run_script("benchmarks/bench_dashboard.py", "--no-browser", "--config", "100x100",
                      "--json", str(out))
    result = json.loads(out.read_text())
    assert set(result) == {"100x100"}
    measured = result["100x100"]["in_process"]
    assert measured["model_ms"] > 0 and measured["draw_ms"] > 0 and measured["cancer"] > 0
    (row,) = markdown_rows(done.stdout, "100x100")
    assert len(row) == 9 and row[2] == ">= 20"


def test_bench_fast_tiny(tmp_path):
    out = tmp_path / "fast.json"
    run_script("benchmarks/bench_fast.py", "--seeds", "1", "--days", "1", "--crowded-days", "1",
               "--skip-compile", "--skip-large", "--field-step", "2", "--json", str(out))
    result = json.loads(out.read_text())
    assert set(result["escape_100x100_1d_cpu_s"]) == {"mesa", "fast"}
    assert result["speedup"] > 0
    assert set(result["field_step_2_ratios"]) == {"fast_k_vs_mesa_hourly", "fast_k_vs_mesa_k",
                                                  "fast_k_vs_fast_hourly"}
    assert result["agent_steps_seed0"]["mesa"] > 0 and result["agent_steps_seed0"]["fast"] > 0
    assert set(result["crowded_200x200_1d"]) == {"mesa", "fast"}
    assert "compile" not in result and "large_1000x1000" not in result


def test_bench_model_tiny(tmp_path):
    out = tmp_path / "model.json"
    done = run_script("benchmarks/bench_model.py", "--days", "1", "--repeats", "1",
                      "--json", str(out))
    (run,) = json.loads(out.read_text())["this tree"]
    assert run["large"]["early_steps_per_s"] is None  # days 3-5 need 5 days
    assert run["large"]["whole_steps_per_s"] > 0 and run["escape"]["days"] == 1
    assert len(run["escape"]["window_cpu_s"]) == 1 and run["escape_traced"]["peak_traced_MB"] > 0
    assert "100x100 escape, 1 days" in done.stdout


@pytest.mark.slow
def test_bench_sweep_overhead_and_cohort_tiny():
    """``memory``, ``parallel`` (a Dask cluster) and ``fast`` start pools and processes: 8-25 s
    even tiny, so only their --help and options are checked here."""
    done = run_script("benchmarks/bench_sweep.py", "overhead", "cohort", "--quick",
                      "--patients", "1", "--days", "1", "--size", "30", "--workers", "1")
    assert "4 runs of 30x30 sites, 1 days" in done.stdout
    (sweep,) = markdown_rows(done.stdout, "sweep run (`execute_run` + `write_run`)")
    assert sweep[2].endswith("%)")
    (cohort,) = markdown_rows(done.stdout, "1 patients x 2 arms")
    assert cohort[1:4] == ["mesa", "2", "30x30"] and len(cohort) == 13


@pytest.mark.browser
@pytest.mark.slow
def test_bench_dashboard_in_browser(tmp_path):
    out = tmp_path / "dash.json"
    run_script("benchmarks/bench_dashboard.py", "--config", "100x100", "--seconds", "2",
               "--warmup", "1", "--json", str(out))
    browser = json.loads(out.read_text())["100x100"]["browser"]
    assert browser["browser_fps"] > 0 and browser["status_at_end"].startswith("day ")


# --- tiny real runs: experiments ---------------------------------------------------------------


def test_run_facts_fact1_one_seed(tmp_path):
    done = run_script("experiments/validation/run_facts.py", "1", "--seeds", "1", "--workers",
                      "1", "--runs", str(tmp_path / "runs"))
    (slope,) = markdown_rows(done.stdout, "log-log slope of N(t)")
    assert 1.0 < float(slope[1].split()[0]) < 3.0  # one seed of a quadratic growth
    assert (tmp_path / "runs" / "img" / "fact1_growth.png").stat().st_size > 0
    assert (tmp_path / "runs" / "fact1_compact_growth" / "manifest.json").is_file()


@pytest.mark.slow
def test_run_immune_tcells_a_one_seed(tmp_path):
    done = run_script("experiments/validation/run_immune_tcells.py", "a", "--seeds", "1",
                      "--workers", "1", "--runs", str(tmp_path))
    rows = markdown_rows(done.stdout, "")
    assert [r[0] for r in rows[2:]] == ["anti-PD-1 day 7", "untreated",
                                        "treated / untreated (paired)"]


def test_run_clinical_cart_one_patient(tmp_path):
    done = run_script("experiments/clinical/run_clinical.py", "--only", "cart", "--patients",
                      "1", "--runs", str(tmp_path))
    assert "--patients 1" in done.stdout.splitlines()[0]
    (everyone,) = markdown_rows(done.stdout, "all")
    assert everyone[1] == "1" and len(everyone) == 6
    assert len(markdown_rows(done.stdout, "burden at infusion")) == 2
    assert "Antigen-negative share of relapses" in done.stdout
    assert (tmp_path / "cart_relapse-n1" / "patients.parquet").is_file()


def test_run_clinical_stale_rerun_keeps_progress_off_the_tables(tmp_path):
    """A sweep directory made by another spec version is deleted and rerun; the rerun's
    progress goes to stderr like the first run's, so stdout stays the tables to paste."""
    run_script("experiments/clinical/run_clinical.py", "--only", "cart", "--patients", "2",
               "--engine", "fast", "--runs", str(tmp_path))
    (tmp_path / "cart_relapse-n2-fast").rename(tmp_path / "cart_relapse-n1-fast")
    done = run_script("experiments/clinical/run_clinical.py", "--only", "cart", "--patients",
                      "1", "--engine", "fast", "--runs", str(tmp_path))
    assert "deleting" in done.stderr and "runs to do" in done.stderr
    assert "runs to do" not in done.stdout, done.stdout
    (everyone,) = markdown_rows(done.stdout, "all")
    assert everyone[1] == "1"


def test_run_clinical_independent_action_counts_each_patient_across_arms():
    """The CheckMate table's independent-action rows, from a hand-made cohort: the expected
    combination from the monotherapy arms, and per patient who responded to what (a patient
    not evaluable in one arm is left out of every row)."""
    import pandas as pd

    clinical = load_script("experiments/clinical/run_clinical.py")
    best = {  # patient: (nivolumab, ipilimumab, nivo_ipi)
        0: ("CR", "PD", "CR"), 1: ("PD", "PR", "PR"), 2: ("PD", "PD", "CR"),
        3: ("SD", "SD", "SD"), 4: ("PR", "PD", "PD"), 5: ("NE", "CR", "CR")}
    pts = pd.DataFrame([{"patient": p, "arm": arm, "best_response": r}
                        for p, rs in best.items()
                        for arm, r in zip(("nivolumab", "ipilimumab", "nivo_ipi"), rs,
                                          strict=True)])
    rows = {r[0]: r[1:] for r in markdown_rows(clinical.independent_action(pts), "")}
    # a = 2/5, b = 1/5: 1 - 0.6 * 0.8 = 52%; the trial's 1 - 0.563 * 0.81 = 54%
    assert rows["combination if the monotherapies act independently, 1 - (1 - a)(1 - b)"] == [
        "52%", "54%"]
    assert rows["combination measured"] == ["60%", "57.6%"]
    assert rows["patients evaluable in every arm"][0] == "5"
    assert rows["responded to either drug alone"][0] == "3"
    assert rows["responded to the combination only (synergy)"][0] == "1"
    assert rows["responded to a drug alone, not to the combination"][0] == "1"


def test_run_clinical_engine_fast_runs_the_spec_on_the_compiled_engine(tmp_path):
    """``--engine fast`` (calibration pilots): its own sweep directory, the engine in the
    manifest and the header; the spec's own engine otherwise."""
    done = run_script("experiments/clinical/run_clinical.py", "--only", "cart", "--patients",
                      "1", "--engine", "fast", "--runs", str(tmp_path))
    assert "--engine fast" in done.stdout.splitlines()[0]
    (everyone,) = markdown_rows(done.stdout, "all")
    assert everyone[1] == "1"
    manifest = json.loads((tmp_path / "cart_relapse-n1-fast" / "manifest.json").read_text())
    assert manifest["engine"] == manifest["spec"]["sweep"]["engine"] == "fast"
    assert not (tmp_path / "cart_relapse-n1").exists()


@pytest.mark.slow
def test_run_crosscheck_one_seed(tmp_path):
    done = run_script("experiments/kuznetsov/run_crosscheck.py", "--seeds", "1",
                      "--threshold-seeds", "1", "--img", str(tmp_path))
    assert "ODE threshold T0* = 6." in done.stdout
    assert len(re.findall(r"^    T0=\S+: dormant \d/1, escaped \d/1", done.stdout, re.M)) == 6
    assert {p.name for p in tmp_path.iterdir()} == {"kuznetsov_dormancy.png",
                                                    "kuznetsov_threshold.png"}
