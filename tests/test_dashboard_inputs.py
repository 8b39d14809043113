"""What the dashboard does with bad input, without a browser: a link's repeated keys and page
options, an engine switch refused by a value typed, a day to run to refused and then fixed.

Each bad value is a message on the page naming it and what is allowed; the model (and what the
controls say about it) stays as it was.
"""

from __future__ import annotations

import time

import ipyvuetify as v
import pytest
import solara
from conftest import TINY

from abm import TumorModel
from abm.dashboard.app import Dashboard
from abm.dashboard.session import (
    DEFAULT_SCENARIO,
    Session,
    page_options,
    scenario_values,
    session_from_query,
)


def _widgets(root, kind) -> list:
    found, stack = [], [root]
    while stack:
        w = stack.pop()
        if isinstance(w, kind):
            found.append(w)
        children = [c for c in getattr(w, "children", None) or [] if not isinstance(c, str)]
        for slot in getattr(w, "v_slots", None) or []:
            children += slot.get("children", [])
        stack += children
    return found


def _texts(widget) -> list[str]:
    out = []
    for child in getattr(widget, "children", None) or []:
        out += [child] if isinstance(child, str) else _texts(child)
    return out


def _errors(box) -> list[str]:
    return [" ".join(_texts(w)) for w in _widgets(box, v.Alert)
            if "abm-message-error" in (w.class_ or "").split()]


def _field(box, label: str) -> v.TextField:
    found = [w for w in _widgets(box, v.TextField) if (w.label or "").startswith(label)]
    assert len(found) == 1, label
    return found[0]


def _enter(field: v.TextField, text: str) -> None:
    field.v_model = text
    field.fire_event("focusout", None)


def _engine_menu(box) -> v.Select:
    found = [w for w in _widgets(box, v.Select) if w.label == "engine"]
    assert len(found) == 1
    return found[0]


def _eventually(condition, seconds: float = 10.0) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize(("query", "said"), [
    ("width=40&width=50", "width given twice (width=40 and width=50); give each once"),
    ("seed=3&seed=4", "seed given twice (seed=3 and seed=4)"),
    ("rng=3&seed=4", "seed given twice (rng=3 and seed=4)"),  # the seed's old name
    ("scenario=checkpoint&scenario=escape", "scenario given twice"),
    ("teacher=1&teacher=0", "teacher given twice"),
])
def test_a_link_that_gives_a_key_twice_is_set_aside_with_a_message(query, said):
    """Which of two values wins is not obvious (``abm run --set`` refuses it too): the link
    is set aside, as for any bad value, and the message names the key and both values."""
    session, problem = session_from_query(query)
    assert problem is not None and said in problem and problem.startswith("link ignored: ")
    assert session.scenario == DEFAULT_SCENARIO
    assert session.model.width == scenario_values(DEFAULT_SCENARIO)["width"]


def test_a_page_option_that_is_neither_on_nor_off_is_named_with_what_is_allowed():
    """``teacher=maybe`` (or a bare ``teacher``) quietly gave the class every control."""
    for value in ("maybe", "", "2"):
        session, problem = session_from_query(f"teacher={value}&width=30&height=30")
        assert problem == (f"link ignored: teacher {value!r} is not allowed: expected 1 (on) "
                           "or 0 (off)")
    for value in ("1", "0", "on", "off", "yes", "no", "true", "FALSE"):
        session, problem = session_from_query(f"teacher={value}&compare={value}&large={value}"
                                              "&width=30&height=30&seed=2")
        assert problem is None and session.model.width == 30 and session.model.seed == 2
    assert page_options("large=off&teacher=yes") == {"teacher": True, "compare": False,
                                                     "large": False}
    box, _ = solara.render(Dashboard(query="compare=maybe&width=30&height=30"),
                           handle_error=False)
    assert any("compare 'maybe' is not allowed" in e for e in _errors(box))


def test_an_engine_switch_refused_keeps_the_model_its_engine_and_the_menu():
    """A bad value typed in a box refuses the switch (the rebuild fails): the session went on
    with the new engine under the old model, and Compare then built a twin on the other
    engine (not the same run without treatment); the menu showed the engine picked."""
    session = Session(DEFAULT_SCENARIO, {**scenario_values(DEFAULT_SCENARIO), **TINY}, 5)
    box, _ = solara.render(Dashboard(session=session), handle_error=False)
    model = session.model
    _enter(_field(box, "width"), "wide")
    _engine_menu(box).v_model = "fast"  # as the menu does
    assert any("'width' = 'wide' is not allowed" in e for e in _errors(box))
    assert session.model is model and session.engine == "mesa"
    assert _engine_menu(box).v_model == "mesa"  # what the model runs on
    switch = [w for w in _widgets(box, v.Switch) if "Compare" in (w.label or "")][0]
    switch.v_model = True
    assert type(session.twin) is TumorModel
    _enter(_field(box, "width"), "30")
    _field(box, "seed").v_model = "-3"
    _field(box, "seed").fire_event("focusout", None)
    _engine_menu(box).v_model = "fast"  # a bad seed refuses it too
    assert any("seed '-3' is not allowed" in e for e in _errors(box))
    assert session.engine == "mesa" and _engine_menu(box).v_model == "mesa"


def test_run_to_day_names_what_was_typed_and_a_day_that_runs_clears_the_complaint():
    session = Session(DEFAULT_SCENARIO, {**scenario_values(DEFAULT_SCENARIO), **TINY}, 5)
    box, _ = solara.render(Dashboard(session=session), handle_error=False)

    def run_to_button() -> v.Btn:
        return [w for w in _widgets(box, v.Btn)
                if any(isinstance(c, str) and c.startswith("Run to day") for c in w.children)][0]

    _enter(_field(box, "day"), "1e400")
    run_to_button().click()
    assert _errors(box) == ["run to day '1e400': expected a number of days"]  # not "inf"
    _enter(_field(box, "day"), "2000")
    run_to_button().click()
    assert _errors(box) == ["run to day 2000: expected a day up to 1000"]
    _enter(_field(box, "day"), "0.25")
    run_to_button().click()  # runs: the complaint about 2000 no longer applies
    assert not _errors(box)
    _eventually(lambda: session.model.steps == 6)


def test_a_seed_or_link_value_pasted_long_is_named_in_short():
    from abm.dashboard.session import link_query, parse_seed

    long = "7" * 5000
    with pytest.raises(ValueError, match="at most 4300 digits") as err:
        parse_seed(long)
    assert len(str(err.value)) < 300 and "(5000 characters)" in str(err.value)
    for query in (f"width=1&width={long}", f"teacher={'x' * 5000}"):
        with pytest.raises(ValueError) as err:
            link_query(query)
        assert len(str(err.value)) < 300 and "(5000 characters)" in str(err.value)
