"""What a docs-truth audit found: the docs say what the code does, and bad input is named in short.

- A very long text (a seed or a name pasted by mistake) is named in a message by its first
  characters and its length, never repeated whole; a seed Python cannot write out (more than
  4300 digits) is refused naming ``rng`` and the limit, not by Mesa's logging.
- A NaN Poisson rate (recruitment, the vaccine's priming) is an error naming the rate, in both
  engines, not a silent 0.
- The docs' run counts, layout map, command options, analyses, anchors and lesson days match the
  code and the specs.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from pathlib import Path

import pytest
from conftest import TINY, set_args
from typer.testing import CliRunner

from abm import TumorModel
from abm.cli import app
from abm.params import value_text

ROOT = Path(__file__).resolve().parent.parent
LONG = "x" * 5000
LONG_DIGITS = "1" * 5000
runner = CliRunner()
SMALL = set_args(TINY)
# a message that names a long value in short stays well under the value's length
SHORT = 600


# --- long values in messages ----------------------------------------------------------------


def test_value_text_names_a_long_text_by_its_start_and_length():
    from abm.params import TEXT_KEPT

    assert value_text(LONG) == f"{'x' * TEXT_KEPT!r}... (5000 characters)"
    assert value_text("short") == "'short'"
    assert value_text("y" * (2 * TEXT_KEPT)) == repr("y" * (2 * TEXT_KEPT))  # kept whole
    text = value_text(list(range(5000)))
    assert text.startswith("[0, 1, 2") and text.endswith("... (5000 items)]") and len(text) < 80
    assert value_text([LONG]) == f"[{value_text(LONG)}]"


@pytest.mark.parametrize("seed", [LONG, LONG_DIGITS, "-" + LONG_DIGITS])
def test_a_long_text_seed_is_named_in_short(seed):
    with pytest.raises(ValueError, match="'rng'") as err:
        TumorModel(rng=seed, **TINY)
    message = str(err.value)
    assert len(message) < SHORT and f"({len(seed)} characters)" in message


def test_a_seed_python_cannot_write_out_is_refused_naming_the_limit():
    """Mesa logs a model's seed: a seed of more than 4300 digits failed there, in Python's
    int-to-text limit, without naming rng."""
    limit = sys.get_int_max_str_digits()
    for seed in (10**5000, LONG_DIGITS):
        with pytest.raises(ValueError, match=f"'rng'.*at most {limit} digits") as err:
            TumorModel(rng=seed, **TINY)
        assert len(str(err.value)) < SHORT
    model = TumorModel(rng=10 ** (limit - 1), **TINY)  # the longest seed allowed still runs
    assert model.seed == 10 ** (limit - 1)


def test_a_long_seed_in_simulate_s_model_check_is_named_in_short():
    from abm.run import simulate

    model = TumorModel(rng=10**400, **TINY)
    with pytest.raises(ValueError, match="'rng'") as err:
        simulate({**TINY, "rng": 1}, 1, model=model)
    assert len(str(err.value)) < SHORT and "digits" in str(err.value)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--rng", LONG], "--rng 'xxxx"),
        (["--rng", LONG_DIGITS], "expected an integer in [0, 2**64 - 1]"),  # as a sweep's
        (["--scenario", LONG], "unknown scenario"),
        (["--engine", LONG], "--engine"),
        (["--set", f"{LONG}=1"], "unknown parameter"),
        (["--set", f"width={LONG}"], "'width'"),
        (["--set", LONG], "expected name=value"),
        (["--out", LONG + ".txt"], ".parquet or .csv"),
        (["--steps", LONG], "--steps"),
    ],
)
def test_abm_run_names_a_long_value_in_short(args, fragment):
    result = runner.invoke(app, ["run", "--quiet", "--steps", "1", *args])
    assert result.exit_code == 2
    assert fragment in result.output and len(result.output) < SHORT, result.output[:300]
    if args == ["--rng", LONG]:  # not digits: the digit limit is not the problem
        assert "digits" not in result.output


@pytest.mark.parametrize("option", [["--seed", "3"], ["--seed=3"]])
def test_abm_run_seed_option_points_to_rng(option):
    """The dashboard's links and sweep specs say seed; abm run says --rng. Click listed
    ``--set, --species, --steps`` as the options meant."""
    result = runner.invoke(app, ["run", "--quiet", *option])
    assert result.exit_code == 2 and "--rng" in result.output and len(result.output) < 200


def test_unknown_therapy_or_scenario_is_a_value_error_in_short():
    model = TumorModel(rng=1, **TINY)
    for therapy in (["anti_pd1"], LONG):
        with pytest.raises(ValueError, match="unknown therapy") as err:
            model.administer(therapy)
        assert len(str(err.value)) < SHORT
    for scenario in (["escape"], LONG):
        with pytest.raises(ValueError, match="unknown scenario") as err:
            TumorModel.from_scenario(scenario, rng=1)
        assert len(str(err.value)) < SHORT


def test_a_long_species_or_quoted_number_is_named_in_short():
    from abm.species import check_species
    from abm.sweep import SpecError, parse_spec

    with pytest.raises(ValueError, match="unknown species") as err:
        check_species(LONG)
    assert len(str(err.value)) < SHORT and f"({len(LONG)} characters)" in str(err.value)
    quoted = "1" * 5000  # a number written as text in a spec, pasted long
    spec = {"sweep": {"name": "x", "scenario": "escape", "days": 1},
            "parameters": {"tcell_kill_prob": quoted}}
    with pytest.raises(SpecError, match="tcell_kill_prob") as err:
        parse_spec(spec)
    assert len(str(err.value)) < SHORT and "(5000 characters)" in str(err.value)


# --- NaN Poisson rates --------------------------------------------------------------------


def _engines():
    from abm.fast import FastTumorModel

    return [TumorModel, FastTumorModel]


@pytest.mark.parametrize("engine", ["mesa", "fast"])
@pytest.mark.parametrize(
    "name, extra",
    [
        ("mdsc_influx", {}),
        ("treg_influx", {}),
        ("nk_influx", {}),
        ("macrophage_influx", {}),
        ("tcell_influx", {}),
        ("vaccine_influx", {"vaccine_start_day": 0, "vaccine_priming_delay_days": 0}),
        ("vaccine_influx", {"vaccine_start_day": 0, "vaccine_priming_delay_days": 0,
                            "lymph_node_priming": True}),
    ],
)
def test_a_nan_poisson_rate_is_an_error(engine, name, extra):
    """``_poisson`` drew nothing for a NaN rate, hiding whatever made it NaN. No path of the
    model makes one (the parameters are checked finite; mean antigenicity, NaN with no cancer
    cell, is read as 0 there), so a NaN is planted in ``model.p`` after construction."""
    cls = dict(zip(["mesa", "fast"], _engines(), strict=True))[engine]
    model = cls(rng=1, **TINY, **extra)
    model.p[name] = math.nan
    with pytest.raises(ValueError, match=r"recruitment or priming rate \(cells per hour\) is "
                                         r"NaN \(not a number\) in step \d+"):
        for _ in range(12):
            model.step()


def test_a_rate_of_zero_or_less_draws_nothing():
    model = TumorModel(rng=1, **TINY)
    state = model.rng.bit_generator.state
    assert model._poisson(0.0) == 0 and model._poisson(-1.0) == 0
    assert model.rng.bit_generator.state == state


# --- the docs match the code ----------------------------------------------------------------


def _spec_runs(path: Path) -> int:
    from abm.sweep import load_spec

    return load_spec(path).n_runs


@pytest.mark.parametrize("doc", ["validation.md", "validation_tcells.md"])
def test_the_run_counts_in_the_validation_tables_are_the_specs(doc):
    """Each table row linking specs and ending with the runs: the runs of those specs."""
    rows = []
    for line in (ROOT / "docs" / doc).read_text().splitlines():
        specs = re.findall(r"\]\(\.\./(experiments/validation/[\w.]+\.toml)\)", line)
        runs = re.search(r"\| (\d+)\b[^|]*\|$", line)
        if line.startswith("|") and specs and runs:
            rows.append((specs, int(runs.group(1))))
    assert len(rows) >= 4, "no table of specs found"
    wrong = [(specs, n, sum(_spec_runs(ROOT / spec) for spec in specs)) for specs, n in rows
             if n != sum(_spec_runs(ROOT / spec) for spec in specs)]
    assert not wrong, f"{doc}: (specs, runs in the doc, runs of the specs): {wrong}"


def test_the_layout_map_in_design_md_names_every_package_folder():
    text = (ROOT / "docs" / "design.md").read_text()
    layout = text[text.index("## 6. Layout"):]
    folders = sorted(p.name for p in (ROOT / "abm").iterdir()
                     if p.is_dir() and (p / "__init__.py").exists())
    missing = [name for name in folders if not re.search(rf"^\s+{name}/", layout, re.MULTILINE)]
    assert not missing, f"docs/design.md §6 does not list abm/{missing}"


def test_validation_md_names_every_analysis_of_run_facts():
    """The reproduce block lists what ``run_facts.py`` can be asked for."""
    source = (ROOT / "experiments" / "validation" / "run_facts.py").read_text()
    block = re.search(r"FACTS = \{(.*?)\n\}", source, re.S)
    names = re.findall(r'"(\w+)":', block.group(1))
    text = (ROOT / "docs" / "validation.md").read_text()
    reproduce = re.search(r"```bash\n(\.venv/bin/python experiments/validation/run_facts.*?)```",
                          text, re.S).group(1)
    # the facts by number are "all facts"; the named analyses are listed one by one
    missing = [n for n in names
               if not n.isdigit() and not re.search(rf"(?<!\w){n}(?!\w)", reproduce)]
    assert not missing, f"docs/validation.md's run_facts.py block does not name {missing}"


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, code and link marks dropped, punctuation other
    than - and _ dropped, spaces to -."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower()).replace("`", "")
    return "".join("-" if c == " " else c for c in heading
                   if c in "-_ " or c.isalnum() or unicodedata.category(c) == "Mn")


def _anchors(doc: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S)
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.MULTILINE):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_slug_follows_github():
    assert _slug("4. Public contract") == "4-public-contract"
    assert _slug("T-cell states and priming in the lymph node") == (
        "t-cell-states-and-priming-in-the-lymph-node")
    assert _slug("The fast engine (`benchmarks/bench_fast.py`)") == (
        "the-fast-engine-benchmarksbench_fastpy")


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_anchor_of_a_link_between_docs_exists(doc):
    from test_docs import CODE_SPAN, EXTERNAL, FENCE, INLINE_LINK, REFERENCE_LINK

    prose = CODE_SPAN.sub("", FENCE.sub("", doc.read_text()))
    broken = []
    for target in INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose):
        path, _, anchor = target.partition("#")
        if EXTERNAL.match(target) or not anchor:
            continue
        page = doc if not path else (doc.parent / path)
        if page.suffix == ".md" and page.exists() and anchor not in _anchors(page):
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links to missing sections: {broken}"


COMMAND = re.compile(r"\babm (run|sweep|report|export|serve|params|scenarios)\b([^`\n#]*)")


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_option_the_docs_give_an_abm_command_exists(doc):
    import typer.main

    group = typer.main.get_command(app)
    unknown = []
    for command, rest in COMMAND.findall(doc.read_text()):
        options = {opt for param in group.commands[command].params
                   for opt in (*param.opts, *param.secondary_opts)}
        unknown += [f"abm {command} {opt}" for opt in re.findall(r"(?<!\S)--[a-z][a-z-]*", rest)
                    if opt not in options]
    assert not unknown, f"{doc.relative_to(ROOT)}: options the command does not take: {unknown}"


def test_every_set_in_the_docs_names_a_parameter():
    from abm.params import ALIASES, PARAMS

    wrong = []
    for doc in _docs():
        for name in re.findall(r"--set[ =]+([A-Za-z_]\w*)=", doc.read_text()):
            if name not in PARAMS and name not in ALIASES:
                wrong.append(f"{doc.name}: {name}")
    assert not wrong


def test_the_lesson_days_in_dashboard_md_are_the_scenarios():
    from abm.scenarios import SCENARIOS

    text = (ROOT / "docs" / "dashboard.md").read_text()
    listed = text[text.index("Lessons and their days to watch:"):]
    listed = listed[:listed.index("\n\n")]
    days = dict(re.findall(r"`(\w+)`\s+(\d+)", listed))
    assert days == {name: str(spec["watch_days"]) for name, spec in SCENARIOS.items()}
