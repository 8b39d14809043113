"""The golden baseline: key outputs of every scenario for a fixed seed.

``tests/test_baseline.py`` compares the model against ``tests/baseline.json``, so any change
that alters results is seen (starsim's ``test_baselines.py`` is the model). When a change is
meant to alter the results, regenerate the file and commit it with the change:

    make baseline          # or: .venv/bin/python tests/baseline.py

and say in the commit message why the numbers moved.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from abm import TumorModel
from abm.scenarios import SCENARIOS

PATH = Path(__file__).with_name("baseline.json")
SEED = 7
DAYS = 12  # long enough for every therapy to act (the vaccine's priming delay is 7 days)
# every reporter that summarises the state; counts are compared exactly, fractions to 1e-9.
# A mean over the cancer cells is NaN on a day with none left (abm.model.MEANS_OVER_CANCER_CELLS),
# stored as null (JSON has no NaN) and matched only by NaN
COLUMNS = [
    "CancerCells", "TCells", "CARTCells", "Tregs", "MDSCs", "Kills", "MeanAntigenicity",
    "AntigenNegativeFraction", "MeanPDL1", "CloneCount", "ExhaustedFraction", "EngagedTCells",
    "PD1Occupancy", "CTLA4Occupancy", "VaccineResponse",
    "ProgenitorFraction", "PrimedAntigens", "PrimedCTLs",
]


def scenario_outputs(name: str) -> dict[str, list]:
    """The reporters of ``name`` at the end of each day (seed ``SEED``, ``DAYS`` days)."""
    model = TumorModel.from_scenario(name, rng=SEED)
    model.run_for(24 * DAYS)
    df = model.datacollector.get_model_vars_dataframe()
    daily = df[df["Step"] % 24 == 0]
    return {"Day": daily["Day"].tolist()} | {c: daily[c].tolist() for c in COLUMNS}


def stored(values: list) -> list:
    """``values`` for the JSON file: NaN (no cancer cell to average over) as null."""
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


def compute() -> dict:
    return {
        "seed": SEED,
        "days": DAYS,
        "scenarios": {name: scenario_outputs(name) for name in SCENARIOS},
    }


def main() -> int:
    data = compute()
    lines = [f'{{"seed": {data["seed"]}, "days": {data["days"]}, "scenarios": {{']
    for i, (name, columns) in enumerate(data["scenarios"].items()):
        lines.append(f"  {json.dumps(name)}: {{")
        rows = [f"    {json.dumps(c)}: {json.dumps(stored(v))}" for c, v in columns.items()]
        lines.append(",\n".join(rows))
        lines.append("  }" + ("," if i < len(data["scenarios"]) - 1 else ""))
    lines.append("}}")
    PATH.write_text("\n".join(lines) + "\n")  # one line per column: diffs show what moved
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
