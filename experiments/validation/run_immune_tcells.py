"""The analyses behind docs/validation_tcells.md: T-cell exhaustion states and priming in the
lymph node (abm/agents/tcell.py, abm/lymphnode.py).

Run from the repository root (small sweeps: 100x100, seeds 0-3 (a, b) or 0-7 (c, d), <= 24
days):

    .venv/bin/python experiments/validation/run_immune_tcells.py          # a b c d
    .venv/bin/python experiments/validation/run_immune_tcells.py a c --workers 1
    .venv/bin/python experiments/validation/run_immune_tcells.py a --seeds 1   # a smoke run

- a: anti-PD-1 causes a proliferative burst from progenitors (immune_tcells_pd1_burst.toml);
- b: a tumour whose CTLs are terminally exhausted does not respond (immune_tcells_terminal.toml);
- c: a vaccine against the founder antigens primes CTLs against other antigens (antigen
  spreading; immune_tcells_spreading.toml, stepped here to read the lymph node per antigen);
- d: fact 4 (anti-CTLA-4 timing) re-measured with priming (immune_tcells_ctla4_timing.toml, and
  immune_tcells_ctla4_priming.toml without Treg depletion).

Sweeps a, b and d run through run_facts.sweep (into experiments/validation/runs/, git-ignored).
``--seeds N`` (a smoke run: the first N seeds of every spec, c's direct runs too, into
runs/seedsN/) and ``--runs DIR`` as in run_facts.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run_facts as rf  # noqa: E402

from abm.agents import TCell  # noqa: E402
from abm.analysis.paired import med_range, relative_benefits  # noqa: E402
from abm.analysis.runs import finals  # noqa: E402
from abm.model import TumorModel  # noqa: E402
from abm.sweep import load_spec  # noqa: E402
from abm.sweep.spec import ARM  # noqa: E402


def _at(run, day: float, col: str) -> float:
    df = run.df
    row = df[df["Step"] <= round(day * 24)].iloc[-1]
    return float(row[col])


def part_a() -> str:
    """Progenitor divisions in the 4 days after the first anti-PD-1 dose (days 7-11), per
    progenitor present, and CTLs on day 11, treated vs untreated (paired seeds)."""
    g = rf.sweep("immune_tcells_pd1_burst")
    rows = []
    out = {}
    for arm in ("anti-PD-1 day 7", "untreated"):
        divs, per_prog, ctls, fracs, kills = [], [], [], [], []
        for run in g[arm]:
            df = run.df
            window = df[(df["Step"] > 7 * 24) & (df["Step"] <= 11 * 24)]
            d = _at(run, 11, "ProgenitorDivisions") - _at(run, 7, "ProgenitorDivisions")
            progenitor_days = float((window["ProgenitorFraction"] * window["TCells"]).sum()) / 24
            divs.append(d)
            per_prog.append(d / progenitor_days if progenitor_days > 0 else float("nan"))
            ctls.append(_at(run, 11, "TCells"))
            fracs.append(float(window["ProgenitorFraction"].mean()))
            kills.append(_at(run, 11, "Kills") - _at(run, 7, "Kills"))
        out[arm] = (divs, per_prog, ctls)
        rows.append((arm, med_range(divs, "{:.0f}"), med_range(per_prog), med_range(ctls, "{:.0f}"),
                     med_range(fracs, "{:.3f}"), med_range(kills, "{:.0f}")))
    t, u = out["anti-PD-1 day 7"], out["untreated"]
    ratio = [a / b if b else float("nan") for a, b in zip(t[1], u[1], strict=True)]
    ctl_ratio = [a / b if b else float("nan") for a, b in zip(t[2], u[2], strict=True)]
    rows.append(("treated / untreated (paired)", "-", med_range(ratio), med_range(ctl_ratio),
                 "-", "-"))
    return rf.table(rows, ("arm (checkpoint, seeds 0-3)", "progenitor divisions d7-11",
                           "divisions per progenitor-day", "CTLs day 11",
                           "ProgenitorFraction d7-11", "kills d7-11"))


def part_b() -> str:
    g = rf.sweep("immune_tcells_terminal")
    rows = []
    for name in ("default", "terminal"):
        treated, untreated = g[f"{name}, anti-PD-1"], g[f"{name}, untreated"]
        b = relative_benefits(finals(treated), finals(untreated))
        exh = [r.final("ExhaustedFraction") for r in untreated]
        rows.append((name, med_range(b), med_range(finals(treated), "{:.0f}"),
                     med_range(finals(untreated), "{:.0f}"), med_range(exh)))
    return rf.table(rows, ("CTL states", "relative benefit of anti-PD-1 day 21",
                           "burden treated", "burden untreated",
                           "ExhaustedFraction untreated day 21"))


def part_c() -> str:
    """Steps the spreading spec's models here: CTL clones primed against antigens the vaccine
    lacks (lymph-node counts), and CTLs in the tissue specific for them, on day 24."""
    spec = load_spec(HERE / "immune_tcells_spreading.toml")
    days = spec.steps // 24
    results: dict[str, dict[str, list[float]]] = {}
    seeds = rf.limit_seeds(spec.seeds)
    for arm in spec.arms:
        params = spec.params_for({ARM: arm})
        vaccine = None
        res = {k: [] for k in ("primed_other", "ctl_other", "antigens_other", "burden",
                               "carriers_other", "per_carrier")}
        for seed in seeds:
            model = TumorModel(rng=seed, **params)
            vaccine = set(model.treatments["vaccine"].antigens)
            other = [b for b in range(len(model.lymph_node.primed_total)) if b not in vaccine]
            carrier_days = 0.0  # living carriers of non-vaccine antigens, summed over time
            for _ in range(24 * days):
                model.step()
                carrier_days += float(model.antigen_counts[other].sum()) / 24.0

            node = model.lymph_node
            res["primed_other"].append(int(node.primed_total[other].sum()))
            res["antigens_other"].append(int(np.count_nonzero(node.primed_total[other])))
            res["ctl_other"].append(sum(a.antigen in other
                                        for a in model.agents_by_type.get(TCell, [])))
            res["burden"].append(model.n_cancer)
            res["carriers_other"].append(int(model.antigen_counts[other].sum()))
            primed = int(node.primed_total[other].sum())
            res["per_carrier"].append(1000.0 * primed / carrier_days if carrier_days else
                                      float("nan"))
        results[arm] = res
    rows = [(arm, med_range(r["primed_other"], "{:.0f}"), med_range(r["antigens_other"], "{:.0f}"),
             med_range(r["ctl_other"], "{:.0f}"), med_range(r["carriers_other"], "{:.0f}"),
             med_range(r["per_carrier"], "{:.1f}"), med_range(r["burden"], "{:.0f}"))
            for arm, r in results.items()]
    for suffix in ("", ", shedding 0.01", ", shedding 0.002", ", founder antigens 0-3"):
        v, c = results[f"vaccine day 0{suffix}"], results[f"no vaccine{suffix}"]
        more = sum(a > b for a, b in zip(v["primed_other"], c["primed_other"], strict=True))
        more_per = sum(a > b for a, b in zip(v["per_carrier"], c["per_carrier"], strict=True))
        rows.append((f"vaccinated > control{suffix} (seeds)", f"{more} of {len(seeds)}",
                     "-", "-", "-", f"{more_per} of {len(seeds)}", "-"))
    shown = f"{seeds[0]}-{seeds[-1]}"
    return rf.table(rows, (f"arm (vaccine scenario, seeds {shown}, day {days})",
                           "CTLs primed vs non-vaccine antigens (total)",
                           "non-vaccine antigens primed", "CTLs vs non-vaccine antigens in tissue",
                           "carriers of non-vaccine antigens day 24 (cells x antigens)",
                           "primed per 1000 carrier-days", "burden"))


def part_d() -> str:
    rows = []
    g = rf.sweep("immune_tcells_ctla4_timing")
    for d in list(g)[1:]:
        b = relative_benefits(finals(g[d]), finals(g[None]))
        rows.append((f"day {d:g}", "0.8 (default)", med_range(b),
                     med_range(finals(g[d]), "{:.0f}")))
    rows.insert(0, ("untreated", "-", "-", med_range(finals(g[None]), "{:.0f}")))
    h = rf.sweep("immune_tcells_ctla4_priming")
    for d in list(h)[1:]:
        b = relative_benefits(finals(h[d]), finals(h[None]))
        rows.append((f"day {d:g}", "0 (priming only)", med_range(b),
                     med_range(finals(h[d]), "{:.0f}")))
    rows.append(("untreated", "0", "-", med_range(finals(h[None]), "{:.0f}")))
    return rf.table(rows, ("anti-CTLA-4 start", "Treg depletion", "relative benefit day 21",
                           "burden day 21"))


PARTS = {"a": part_a, "b": part_b, "c": part_c, "d": part_d}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", choices=[*PARTS, []], metavar="PART",
                        help=f"what to run (default: all): {', '.join(PARTS)}")
    rf.add_sweep_options(parser, workers=1)
    args = parser.parse_args(argv)
    rf.use_sweep_options(parser, args, HERE / "runs")
    for name in args.parts or list(PARTS):
        print(f"\n### {name}\n\n{PARTS[name]()}\n", flush=True)


if __name__ == "__main__":
    main()
