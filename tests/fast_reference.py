"""The Mesa engine's side of the engine-equivalence test (``tests/test_fast_engine.py``).

For every named scenario the fast engine supports, ``SEEDS`` runs of the Mesa engine
(``TumorModel``) on a ``SIZE`` x ``SIZE`` grid for ``DAYS`` days, stopped when the tumour is
cleared (as ``abm.run.simulate``), summarised by ``abm.analysis.outcomes.summarise``: the outcome
class, final burden, kills and mean antigenicity of each seed. Computing them takes a few
minutes, so they are stored in ``tests/fast_reference.json``; the test runs the fast engine on
the same scenarios and seeds and compares the two samples.

When the Mesa engine's results change (a rule, a default, a scenario), regenerate the file:

    .venv/bin/python tests/fast_reference.py

``tests/test_fast_engine.py`` fails while the file is stale: it reruns the Mesa engine for the
first seed of every scenario and requires the stored numbers.

The file also records, for each scenario and metric, the power of the comparison: the smallest
shift of the fast engine's values, relative to the Mesa median, that the test would detect
80% of the time (resampling the Mesa values themselves; see ``detectable_shift``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from abm.analysis.outcomes import summarise
from abm.params import resolve
from abm.scenarios import SCENARIOS

PATH = Path(__file__).with_name("fast_reference.json")
SIZE = 50  # sites per side: small enough that 20 seeds x 13 scenarios run in about a minute
DAYS = 10
SEEDS = 20
METRICS = ("final_burden", "total_kills", "final_mean_antigenicity")
# final values of reporters of rules only some scenarios exercise, compared there as well
EXTRA = {
    "macrophage_niche": ("MacrophageKills", "M2Fraction"),
    "nk_surveillance": ("NKKills", "MeanMHC"),
    "progenitor_burst": ("ProgenitorDivisions", "PrimedCTLs"),
    "innate_probe": ("NKKills", "MacrophageKills", "M2Fraction", "MeanMHC"),
}
# configurations beyond the named scenarios, each made to exercise part of the cast strongly so
# that its reporters are far from 0 and vary little between seeds: (scenario, overrides).
# innate_probe: every cancer cell is an NK target (MHC-I 0.6), NK cells are not spent early,
# macrophages arrive and phagocytose 10x as often, fewer CTLs (with 20 seeds a 15% lower
# nk_kill_prob in one engine gives p = 0.0007 on the NK kills, half the macrophage_kill_prob
# p = 3e-7 on the macrophage kills; in nk_surveillance and macrophage_niche halving them was
# not detected)
PROBES = {
    "innate_probe": ("nk_surveillance", {"founder_mhc": 0.6, "nk_kill_limit": 50,
                                         "macrophage_influx": 1.0,
                                         "macrophage_kill_prob": 0.05, "tcell_influx": 0.5}),
}
# the level of each two-sample test: 0.05 shared (Bonferroni) among all the tests of the suite
# (per scenario the outcome classes, the 3 metrics and its EXTRA reporters)
TESTS_PER_SCENARIO = len(METRICS) + 1


def metrics(scenario: str) -> tuple[str, ...]:
    """The numbers compared for ``scenario``: ``METRICS`` and its ``EXTRA`` reporters."""
    return METRICS + EXTRA.get(scenario, ())


def n_tests(scenarios: list[str]) -> int:
    """How many two-sample tests the suite makes over ``scenarios``."""
    return sum(1 + len(metrics(name)) for name in scenarios)


def supported_scenarios() -> list[str]:
    """The named scenarios the fast engine runs (all of them while it mirrors the whole
    model)."""
    from abm.fast import unsupported

    return [name for name in SCENARIOS if unsupported(resolve(name, {})) is None]


def compared() -> list[str]:
    """What the equivalence test compares: the supported named scenarios, then ``PROBES``."""
    return supported_scenarios() + list(PROBES)


def unsupported_scenarios() -> dict[str, str]:
    """The named scenarios the fast engine refuses, with why."""
    from abm.fast import unsupported

    out = {}
    for name in SCENARIOS:
        reason = unsupported(resolve(name, {}))
        if reason is not None:
            out[name] = reason.split(":")[0]
    return out


def run(engine: str, scenario: str, seed: int, size: int = SIZE, days: int = DAYS,
        extra: dict | None = None) -> dict:
    """One run's summary (``summarise``) with the ``engine`` (``"mesa"`` or ``"fast"``) of a
    named scenario or a probe (``PROBES``), with ``extra`` parameters on top."""
    from abm.run import simulate

    name, overrides = PROBES.get(scenario, (scenario, {}))
    params = resolve(name, {**overrides, "rng": seed, "width": size, "height": size,
                            **(extra or {})})
    df, _ = simulate(params, days * 24, engine=engine)
    row = summarise(df, sites=size * size)
    # the reporter's final mean antigenicity; the final means over the cancer cells
    # (MeanAntigenicity, MeanMHC) are NaN for a cleared tumour in both engines, counted here as
    # 0, as the stored reference holds them: the rank test needs a number (a NaN would make
    # its p-value NaN, which no level rejects), and cleared runs are compared by their outcome
    # class and these values
    row["final_mean_antigenicity"] = _final(df, "MeanAntigenicity")
    return {"outcome": row["outcome"], **{m: row[m] for m in METRICS},
            **{m: _final(df, m) for m in EXTRA.get(scenario, ())}}


def _final(df, column: str) -> float:
    """A reporter's final value for the comparison: a mean over no cancer cells (NaN) as 0."""
    value = float(df[column].iloc[-1])
    if np.isnan(value):
        assert df["CancerCells"].iloc[-1] == 0, f"{column} is NaN with cancer cells left"
        return 0.0
    return value


def detectable_shift(values: list[float], alpha: float, power: float = 0.8,
                     draws: int = 200) -> float | None:
    """The smallest relative shift (of the median) of a second sample of the same size that a
    two-sided Mann-Whitney test at ``alpha`` detects with probability ``power``: both samples
    are resampled from ``values`` and the second is multiplied by (1 + shift). None when the
    values are all 0 (a scenario cleared in every run: nothing to shift)."""
    from scipy.stats import mannwhitneyu

    x = np.asarray(values, dtype=float)
    if not np.any(x):
        return None
    rng = np.random.default_rng(0)
    for shift in np.arange(0.05, 2.01, 0.05):
        hits = 0
        for _ in range(draws):
            a = rng.choice(x, x.size)
            b = rng.choice(x, x.size) * (1.0 + shift)
            if np.ptp(np.concatenate([a, b])) == 0:
                continue
            hits += mannwhitneyu(a, b, alternative="two-sided").pvalue < alpha
        if hits >= power * draws:
            return round(float(shift), 2)
    return None


def compute() -> dict:
    scenarios = compared()
    alpha = 0.05 / n_tests(scenarios)
    out: dict = {"size": SIZE, "days": DAYS, "seeds": SEEDS, "alpha_per_test": alpha,
                 "unsupported": unsupported_scenarios(), "scenarios": {}}
    for name in scenarios:
        start = time.process_time()
        runs = [run("mesa", name, seed) for seed in range(SEEDS)]
        out["scenarios"][name] = {
            "outcome": [r["outcome"] for r in runs],
            **{m: [r[m] for r in runs] for m in metrics(name)},
            "detectable_shift": {m: detectable_shift([r[m] for r in runs], alpha)
                                 for m in metrics(name)},
        }
        print(f"{name}: {time.process_time() - start:.1f} s CPU", file=sys.stderr)
    return out


def main() -> int:
    data = compute()
    PATH.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
