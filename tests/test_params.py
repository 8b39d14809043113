"""One source of parameters: every default is documented and every bad value is refused."""

import inspect

import pytest

from abm import TumorModel
from abm.params import PARAMS, validate

REQUIRED = [
    "width", "height", "initial_tumor_cells", "mutation_rate", "antigen_loss_rate",
    "tcell_influx", "treg_influx", "mdsc_influx", "pdl1_induction", "anti_pd1_start_day",
    "anti_ctla4_start_day", "vaccine_start_day", "cart_start_day", "cart_dose",
]


def test_contract_parameters_exist_with_defaults():
    signature = inspect.signature(TumorModel.__init__)
    for name in REQUIRED + ["rng"]:
        assert name in signature.parameters, name
    for name in ("anti_pd1_start_day", "anti_ctla4_start_day", "vaccine_start_day",
                 "cart_start_day"):
        assert PARAMS[name].default is None and PARAMS[name].optional


@pytest.mark.parametrize("param", list(PARAMS.values()), ids=lambda p: p.name)
def test_every_parameter_has_unit_source_description_and_a_valid_default(param):
    assert param.unit and param.description and param.source and param.group
    assert param.validate(param.default) == param.default


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("mutation_rate", 1.5, "[0, 1]"),
        ("mutation_rate", "lots", "[0, 1]"),
        ("width", 2.5, "an integer"),
        ("width", 5, "[10, 1000]"),
        ("tcell_influx", -1, "[0, 100]"),
        ("cart_start_day", "soon", "or None"),
        ("founder_mhc", float("nan"), "[0, 1]"),
    ],
)
def test_bad_values_raise_value_error_naming_parameter_value_and_range(name, value, fragment):
    with pytest.raises(ValueError) as err:
        TumorModel(**{name: value})
    message = str(err.value)
    assert repr(name) in message and fragment in message and repr(value)[:4] in message


def test_unknown_parameter_suggests_the_right_name():
    with pytest.raises(ValueError, match="did you mean mutation_rate"):
        TumorModel(mutaton_rate=0.1)
    with pytest.raises(ValueError, match="'TCELL_INFLUX'; did you mean tcell_influx"):
        TumorModel(TCELL_INFLUX=2)  # the wrong case too
    with pytest.raises(ValueError, match="'escap'; did you mean escape\\? \\(expected one of"):
        TumorModel.from_scenario("escap")
    model = TumorModel(rng=1, width=20, height=20, initial_tumor_cells=10)
    with pytest.raises(ValueError, match="'anti-pd1'; did you mean anti_pd1\\?"):
        model.administer("anti-pd1")


def test_numpy_scalars_from_a_table_are_values_like_any_other():
    import numpy as np

    model = TumorModel(rng=1, width=np.int64(20), height=np.float64(20.0),
                       initial_tumor_cells=10, lymph_node_priming=np.bool_(True),
                       tcell_influx=np.float32(2.5))
    assert model.p["lymph_node_priming"] is True and model.p["tcell_influx"] == 2.5
    assert type(model.p["width"]) is int and type(model.p["height"]) is int
    for name, value in (("width", np.float32(20.5)), ("lymph_node_priming", np.int64(2)),
                        ("width", np.array([20]))):
        with pytest.raises(ValueError, match=f"parameter '{name}' = "):
            TumorModel(**{name: value})


def test_rng_accepts_int_and_numeric_string_but_not_junk():
    a = TumorModel(rng="7", width=20, height=20, initial_tumor_cells=10)
    b = TumorModel(rng=7, width=20, height=20, initial_tumor_cells=10)
    assert a.seed == b.seed == 7
    with pytest.raises(ValueError, match="'rng'"):
        TumorModel(rng="seven")


def test_strings_from_text_boxes_are_coerced():
    assert validate({"width": "50", "mutation_rate": "0.02", "cart_start_day": "None"}) == {
        "width": 50, "mutation_rate": 0.02, "cart_start_day": None}


def test_tumour_larger_than_the_grid_is_refused():
    with pytest.raises(ValueError, match="initial_tumor_cells"):
        TumorModel(width=10, height=10, initial_tumor_cells=101)


def test_parameter_docs_are_generated_from_params():
    from pathlib import Path

    from abm.params import markdown_table

    text = (Path(__file__).parents[1] / "docs" / "parameters.md").read_text()
    assert markdown_table().strip() in text, "regenerate: abm params --markdown"
    # and nothing after it: the table is the file's end, so no stale text can follow it
    assert text.rstrip().endswith(markdown_table().strip())


def test_resolve_is_the_one_way_scenario_and_overrides_become_parameters():
    from abm.params import defaults, resolve
    from abm.run import build_params
    from abm.scenarios import scenario_params

    values = resolve("checkpoint", {"width": "30"}, {"width": 40})
    assert set(values) == set(defaults())
    assert values["width"] == 40  # later overrides win
    assert values["tcell_influx"] == scenario_params("checkpoint")["tcell_influx"]
    model = TumorModel.from_scenario("checkpoint", rng=2, width=40)
    assert model.p == values and model.seed == 2
    assert build_params("checkpoint", {"width": 40, "rng": 2}) == {**values, "rng": 2}
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        resolve("nope")


def test_former_hidden_constants_are_parameters_with_todays_values():
    expected = {"suppression_radius_sites": 2, "antigen_visibility": 0.5,
                "mutation_weight_lose_antigen": 0.3, "mutation_weight_gain_antigen": 0.3,
                "mutation_weight_lower_mhc": 0.25, "mutation_weight_raise_pdl1": 0.15,
                "tcell_exhausted_speed": 1}
    for name, value in expected.items():
        assert PARAMS[name].default == value and type(PARAMS[name].default) is type(value), name
    assert PARAMS["anti_ctla4_ec50"].default == 0.1


def test_mutation_weights_must_not_all_be_zero():
    zeros = {f"mutation_weight_{m}": 0.0
             for m in ("lose_antigen", "gain_antigen", "lower_mhc", "raise_pdl1")}
    with pytest.raises(ValueError, match="mutation_weight_lose_antigen.*at least one > 0"):
        TumorModel(**zeros)
    only_mhc = TumorModel(**{**zeros, "mutation_weight_lower_mhc": 1.0})
    assert only_mhc.mutation_weights == (0.0, 0.0, 1.0, 0.0)


def test_old_names_are_deprecated_aliases_of_the_new_ones():
    from abm.params import ALIASES, defaults

    assert ALIASES["checkpoint_start_day"] == "anti_pd1_start_day"
    assert ALIASES["pd1_ec50"] == "anti_pd1_ec50"
    assert ALIASES["ctla4_priming_boost"] == "anti_ctla4_priming_boost"
    assert not set(ALIASES) & set(PARAMS) and set(ALIASES.values()) <= set(PARAMS)
    for old, new in ALIASES.items():
        with pytest.warns(FutureWarning, match=f"'{old}'.*'{new}'"):
            assert validate({old: PARAMS[new].default}) == {new: PARAMS[new].default}
    with pytest.warns(FutureWarning, match="'checkpoint_start_day'.*'anti_pd1_start_day'"):
        model = TumorModel(width=20, height=20, initial_tumor_cells=10, checkpoint_start_day="3")
    assert model.p["anti_pd1_start_day"] == 3.0
    assert set(model.p) == set(defaults())  # only the new names
    assert model.treatments["anti_pd1"].dose_hours == {72, 72 + 21 * 24, 72 + 42 * 24,
                                                       72 + 63 * 24}


def test_giving_an_old_and_a_new_name_together_is_refused():
    with pytest.raises(ValueError, match="'ctla4_dose' and 'anti_ctla4_dose' are both given"):
        validate({"ctla4_dose": 1.0, "anti_ctla4_dose": 2.0})
    with pytest.raises(ValueError, match="'pd1_ec50' and 'anti_pd1_ec50'"):
        TumorModel(pd1_ec50=0.2, anti_pd1_ec50=0.2)
    with pytest.warns(FutureWarning), pytest.raises(
            ValueError, match=r"'anti_pd1_dose' = -1 .*given as 'checkpoint_dose'"):
        validate({"checkpoint_dose": -1})


def test_the_parameter_list_shows_only_the_new_names():
    from abm.params import ALIASES, markdown_table

    table = markdown_table()
    assert "`anti_pd1_start_day`" in table and "`anti_ctla4_ec50`" in table
    assert not any(f"`{old}`" in table for old in ALIASES)


def test_an_integer_too_large_for_a_float_is_a_clear_error():
    short = r"1e\+400 \(an integer of 401 digits, beyond a float's range\)"
    with pytest.raises(ValueError, match=rf"^parameter 'tcell_influx' = {short} is not allowed: "
                                         "expected a number in \\[0, 100\\]"):
        validate({"tcell_influx": 10**400})


@pytest.mark.parametrize("kwargs", [
    {"tcell_kill_prob": 10**5000}, {"width": -(10**5000)}, {"rng": -(10**5000)},
])
def test_a_model_with_an_integer_of_thousands_of_digits_says_which_parameter(kwargs):
    """Beyond 4300 digits Python refuses to write an int (its own ValueError, naming nothing):
    the message gives it in short, with the parameter and what is allowed."""
    (name, value), = kwargs.items()
    sign = "-" if value < 0 else ""
    with pytest.raises(ValueError, match=rf"^parameter '{name}' = {sign}1e\+5000 \(an integer "
                                         r"of 5001 digits, beyond a float's range\) is not "
                                         r"allowed: expected (a|an) "):
        TumorModel(**{"rng": 0, **kwargs})


def test_value_text_shortens_integers_beyond_a_float():
    from abm.params import short_int, value_text

    assert value_text(10**20) == repr(10**20) and value_text(0.5) == "0.5"
    assert value_text("x") == "'x'" and value_text(True) == "True"
    assert value_text(2 * 10**308) == "2e+308 (an integer of 309 digits, beyond a float's range)"
    assert value_text([1, (10**400,)]) == (
        "[1, (1e+400 (an integer of 401 digits, beyond a float's range),)]")
    assert short_int(123456789 * 10**400) == "about 1.23456e+408"  # digits left out: said
    assert short_int(-25 * 10**309) == "-2.5e+310"
    assert short_int(10**400 - 1) == "about 9.99999e+399"


def test_the_seed_is_a_keyword_so_a_grid_size_given_positionally_is_not_taken_for_it():
    from abm import FastTumorModel

    for cls in (TumorModel, FastTumorModel):
        with pytest.raises(TypeError, match="positional"):
            cls(50)  # meant as a width: it was silently seed 50
