"""Species presets (abm.species): resolved in one documented order (defaults, species, scenario,
overrides), names checked everywhere they can be given (resolve, ``abm run --species``,
``[sweep] species``), the mouse schedule doses every 3-4 days, and the MC38-like tumour responds
to anti-PD-1 more than the B16F10-like one (slow, paired seeds)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abm import params as P
from abm.cli import app
from abm.model import TumorModel
from abm.scenarios import SCENARIOS
from abm.species import SPECIES, check_species, effective_species, species_params, species_table
from abm.sweep import SpecError, parse_spec

runner = CliRunner()
SMALL = {"width": 30, "height": 30, "initial_tumor_cells": 30}


@pytest.fixture
def fake_scenario(monkeypatch):
    """A scenario that asks for the mouse preset and sets one of its parameters itself."""
    monkeypatch.setitem(SCENARIOS, "fake_mouse", {
        "species": "mouse", "summary": "x", "lesson": "x", "watch_days": 5, "steps": ("a", "b"),
        "params": {"anti_pd1_doses": 2, "founder_antigens": 5},
    })
    return "fake_mouse"


def test_every_preset_value_is_a_valid_parameter_with_a_source():
    for name, spec in SPECIES.items():
        assert spec["summary"]
        values = species_params(name)
        assert P.validate(values) == values  # valid and already of the parameter's kind
        for pname, (_value, source) in spec["values"].items():
            assert pname in P.PARAMS and len(source) > 20, (name, pname)
    table = species_table()
    for pname in species_params("mouse"):
        assert f"`{pname}` | {P.PARAMS[pname].unit}" in table


def test_presets_differ_where_mouse_and_human_differ():
    mouse, human = species_params("mouse"), species_params("human")
    assert 3 <= mouse["anti_pd1_interval_days"] <= 4 and 3 <= mouse["anti_pd1_doses"] <= 4
    assert 3 <= mouse["anti_ctla4_interval_days"] <= 4 and 3 <= mouse["anti_ctla4_doses"] <= 4
    assert mouse["anti_pd1_half_life_days"] < 7 < human["anti_pd1_half_life_days"]
    assert human["anti_pd1_interval_days"] == human["anti_ctla4_interval_days"] == 21
    # Fc-mediated Treg depletion in mice (Simpson 2013), none in patients (Sharma 2019)
    assert mouse["anti_ctla4_treg_depletion"] > 0 and human["anti_ctla4_treg_depletion"] == 0


def test_resolve_order_defaults_species_scenario_overrides(fake_scenario):
    plain = P.resolve(None)
    assert plain == P.defaults()  # no species: the defaults unchanged
    mouse = P.resolve(None, species="mouse")
    assert mouse["anti_pd1_half_life_days"] == 4.5 and mouse["anti_pd1_doses"] == 4
    # the scenario asks for mouse; its own value beats the species'
    values = P.resolve(fake_scenario)
    assert values["anti_pd1_half_life_days"] == 4.5  # from the species
    assert values["anti_pd1_doses"] == 2  # the scenario's own, after the species
    assert values["founder_antigens"] == 5
    # the user's overrides beat both
    assert P.resolve(fake_scenario, {"anti_pd1_doses": 7})["anti_pd1_doses"] == 7
    # a species given explicitly beats the scenario's
    human = P.resolve(fake_scenario, species="human")
    assert human["anti_pd1_half_life_days"] == 22.0 and human["anti_pd1_doses"] == 2
    assert effective_species(fake_scenario, None) == "mouse"
    assert effective_species(None, None) is None


def test_bad_species_names_are_refused_with_the_allowed_ones():
    for bad in ("rat", "Mouse", "", 3):
        with pytest.raises(ValueError, match="unknown species .*expected one of mouse, human"):
            check_species(bad)
    with pytest.raises(ValueError, match="unknown species 'rat'"):
        P.resolve("escape", species="rat")
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        P.resolve("nope", species="mouse")


def test_named_mouse_scenarios_use_the_mouse_preset():
    for name in ("mc38_like", "b16f10_like"):
        assert SCENARIOS[name]["species"] == "mouse"
        model = TumorModel.from_scenario(name, rng=1, **SMALL)
        assert model.p["anti_pd1_half_life_days"] == 4.5
        assert model.p["anti_pd1_interval_days"] == 3.5
    # the hot one is more antigenic, presents more and is better infiltrated than the cold one
    hot, cold = P.resolve("mc38_like"), P.resolve("b16f10_like")
    assert hot["founder_antigens"] > cold["founder_antigens"]
    assert hot["founder_mhc"] > cold["founder_mhc"] and hot["tcell_influx"] > cold["tcell_influx"]


def test_mouse_schedule_doses_every_3_to_4_days():
    values = P.resolve(None, {**SMALL, "tcell_influx": 0.0, "anti_pd1_start_day": 1.0,
                              "anti_ctla4_start_day": 1.0, "rng": 2}, species="mouse")
    model = TumorModel(**values)
    for _ in range(16 * 24):
        model.step()
    for therapy, count in (("anti_pd1", 4), ("anti_ctla4", 3)):
        days = [d["day"] for d in model.dose_log if d["therapy"] == therapy and d["scheduled"]]
        assert len(days) == count, (therapy, model.dose_log)
        gaps = [b - a for a, b in zip(days, days[1:], strict=False)]
        assert all(3 <= g <= 4 for g in gaps), (therapy, gaps)
    # the human preset's first two anti-PD-1 doses are three weeks apart
    human = P.resolve(None, {"anti_pd1_start_day": 1.0}, species="human")
    assert human["anti_pd1_interval_days"] == 21.0


def test_cli_run_species(tmp_path):
    out = tmp_path / "run.parquet"
    args = ["run", "--species", "mouse", "--days", "0.5", "--rng", "3", "--quiet", "--out",
            str(out)] + [f"--set={k}={v}" for k, v in SMALL.items()]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["species"] == "mouse"
    assert meta["parameters"]["anti_pd1_half_life_days"] == 4.5
    # --set still wins over the species
    result = runner.invoke(app, args[:-2] + ["--set", "anti_pd1_half_life_days=9"] + args[-2:])
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["parameters"]["anti_pd1_half_life_days"] == 9.0
    bad = runner.invoke(app, ["run", "--species", "rat", "--days", "0.5", "--rng", "1"])
    assert bad.exit_code == 2
    assert "unknown species 'rat': expected one of mouse, human" in bad.output
    assert "--species" in runner.invoke(app, ["run", "--help"]).output


def _spec(**sweep) -> dict:
    return {"sweep": {"name": "s", "days": 1, **sweep}, "parameters": dict(SMALL),
            "arms": {"a": {}, "b": {"anti_pd1_start_day": 0.5}}}


def test_sweep_species_resolves_before_the_scenario_and_is_hashed():
    spec = parse_spec(_spec(species="mouse", scenario="escape"))
    assert spec.species == "mouse"
    for base in spec.arm_bases.values():
        assert base["anti_pd1_half_life_days"] == 4.5
        assert base["mutation_rate"] == P.resolve("escape")["mutation_rate"]
    assert spec.normalised()["sweep"]["species"] == "mouse"
    # without a species the normalised spec (and so the hash of old sweeps) has no such key
    plain = parse_spec(_spec(scenario="escape"))
    assert "species" not in plain.normalised()["sweep"]
    # a scenario's species applies in a sweep too
    assert parse_spec(_spec(scenario="mc38_like")).base["anti_pd1_half_life_days"] == 4.5
    with pytest.raises(SpecError, match=r"sweep\.species: unknown species 'rat': expected one "
                                        "of mouse, human"):
        parse_spec(_spec(species="rat"))


def _final_lesion(scenario: str, seed: int, treated: bool, engine: str) -> float:
    from abm.analysis.response import lesion_area
    from abm.run import simulate

    over = {"rng": seed, **({} if treated else {"anti_pd1_start_day": None})}
    df, _ = simulate(P.resolve(scenario, over), 21 * 24, record_every=24,
                     stop_when_cleared=False, engine=engine)
    return float(lesion_area(df)[-1])


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["mesa", "fast"])
def test_mc38_like_responds_to_anti_pd1_and_b16f10_like_does_not(engine):
    """Paired seeds 1-3, 21 days at 100x100: treated/control lesion area, on both engines."""
    ratios = {}
    for scenario in ("mc38_like", "b16f10_like"):
        ratios[scenario] = [
            _final_lesion(scenario, seed, True, engine)
            / max(_final_lesion(scenario, seed, False, engine), 1)
            for seed in (1, 2, 3)
        ]
    # every paired seed: the hot tumour shrinks under the drug, the cold one does not
    assert max(ratios["mc38_like"]) < 0.5, ratios
    assert min(ratios["b16f10_like"]) > 0.8, ratios
    assert all(h < c for h, c in zip(ratios["mc38_like"], ratios["b16f10_like"], strict=True))


def test_docs_clinical_species_table_is_the_generated_one():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "clinical.md").read_text()
    block = text.split("<!-- species table: begin -->\n")[1].split("<!-- species table: end -->")[0]
    assert block.strip() == species_table().strip(), "regenerate with abm.species.species_table()"


@pytest.mark.parametrize("engine", ["mesa", "fast"])
def test_from_scenario_takes_a_species_as_abm_run_does(engine):
    from abm.run import model_class

    cls = model_class(engine)
    model = cls.from_scenario("escape", species="mouse", rng=1, width=30, height=30)
    expected = P.resolve("escape", {"width": 30, "height": 30}, species="mouse")
    assert model.p == expected != P.resolve("escape", {"width": 30, "height": 30})
    with pytest.raises(ValueError, match="unknown species 'rat': expected one of mouse, human"):
        cls.from_scenario("escape", species="rat")
