"""Every scenario reproduces the golden baseline (``tests/baseline.json``) for its seed.

A failure means the model's results changed. If that was the intent, regenerate the baseline
(``make baseline``) and commit it with the change; otherwise the change broke behaviour.
"""

from __future__ import annotations

import json
import math

import baseline
import pytest

EXPECTED = json.loads(baseline.PATH.read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED["scenarios"]))
def test_scenario_matches_the_golden_baseline(name):
    assert EXPECTED["seed"] == baseline.SEED and EXPECTED["days"] == baseline.DAYS
    got = baseline.scenario_outputs(name)
    want = EXPECTED["scenarios"][name]
    for column, values in want.items():
        for day, (g, w) in enumerate(zip(got[column], values, strict=True)):
            if w is None:  # a mean over no cancer cells: NaN, stored as null
                assert math.isnan(g), f"{name}: {column} on day {day} is {g}, baseline NaN"
                continue
            assert math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-12), (
                f"{name}: {column} on day {day} is {g}, baseline {w} "
                "(regenerate with `make baseline` only if the change is meant to alter results)"
            )


def test_baseline_covers_every_scenario():
    from abm.scenarios import SCENARIOS

    assert sorted(EXPECTED["scenarios"]) == sorted(SCENARIOS)
