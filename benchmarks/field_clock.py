"""What solving the fields only every k hours (``field_step_h``) buys in speed and costs in
outcomes, on the fast engine. Numbers go into docs/performance.md and the parameter's source.

Every hour the model solves its four fields (oxygen, IFN-gamma, chemokine, suppressive factor)
before the cells act. With ``field_step_h = k`` they are solved every ``k`` hours instead, each
solve advancing them ``k`` hours, with IFN-gamma's source the CTLs' mean secretion since the
last solve; in the hours between, the cells read the last solve's fields, vessels still
collapse and PD-L1 still relaxes hourly (``TumorModel._update_fields``). ``k = 1`` is the
default.

For each scenario and ``k``: CPU time per run, and the medians of final burden, kills, mean
antigenicity, mean PD-L1 (averaged over the run) and time to elimination (runs that cleared
the tumour), each with a two-sided Mann-Whitney p-value against ``k = 1`` on the same seeds,
and the outcome classes.

Run:
    .venv/bin/python benchmarks/field_clock.py [--every 1 2 4] [--seeds 60] [--days 30]
        [--size 100] [--workers 2] [--scenarios escape checkpoint ...] [--out runs.jsonl]
    .venv/bin/python benchmarks/field_clock.py --every 1 2 --scenarios escape --seeds 2 \
        --days 1 --size 30 --workers 1       # a smoke run (seconds)

A run that cleared its tumour has no final mean antigenicity (NaN): each metric's medians and
test use the runs that have a value, and say how many when some have none.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SCENARIOS = ("escape", "checkpoint", "elimination", "equilibrium", "combination", "vaccine",
             "cart", "macrophage_niche")


def run(args: tuple[str, int, int, int, int]) -> dict:
    scenario, every, seed, days, size = args
    from abm import FastTumorModel
    from abm.analysis.outcomes import summarise
    from abm.params import resolve

    params = resolve(scenario, {"width": size, "height": size, "field_step_h": every})
    model = FastTumorModel(rng=seed, **params)
    start = time.process_time()
    for _ in range(days * 24):
        model.step()
        if not model.running:
            break
    cpu = time.process_time() - start
    table = model.datacollector.get_model_vars_dataframe()
    summary = summarise(table, sites=size * size)
    return {"scenario": scenario, "every": every, "seed": seed, "cpu_s": cpu,
            "final_burden": summary["final_burden"], "total_kills": summary["total_kills"],
            "final_mean_antigenicity": summary["final_mean_antigenicity"],
            "mean_pdl1": float(table["MeanPDL1"].mean()), "outcome": summary["outcome"],
            "time_to_elimination_day": summary["time_to_elimination_day"]}


def report(rows: list[dict]) -> None:
    from scipy.stats import mannwhitneyu

    metrics = ("final_burden", "total_kills", "final_mean_antigenicity", "mean_pdl1",
               "time_to_elimination_day")

    def values(runs: list[dict], metric: str) -> np.ndarray:
        out = np.array([r[metric] for r in runs], dtype=float)
        return out[~np.isnan(out)]

    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == scenario]
        clocks = sorted({r["every"] for r in mine})
        by = {k: [r for r in mine if r["every"] == k] for k in clocks}
        print(f"{scenario}: CPU per run " + ", ".join(
            f"k={k} {np.mean([r['cpu_s'] for r in by[k]]):.3f} s" for k in clocks))
        for metric in metrics:
            # NaN: time to elimination of a run that did not clear its tumour, and the final
            # mean antigenicity of one that did (no cancer cell left): left out
            base = values(by[1], metric)
            if metric == "time_to_elimination_day" and base.size < 5:
                continue

            def shown(v: np.ndarray, n: int) -> str:
                return "none" if not v.size else (
                    f"{np.median(v):.4g}" + (f" (of {v.size}/{n})" if v.size < n else ""))

            cells = [f"k=1 {shown(base, len(by[1]))}"]
            for k in clocks[1:]:
                other = values(by[k], metric)
                if not (base.size and other.size):
                    cells.append(f"k={k} {shown(other, len(by[k]))}")
                    continue
                shift = (np.median(other) / np.median(base) - 1) * 100 if np.median(base) else 0
                p = (mannwhitneyu(base, other).pvalue
                     if np.ptp(np.concatenate([base, other])) else 1.0)
                cells.append(f"k={k} {shown(other, len(by[k]))} ({shift:+.1f}%, p {p:.2g})")
            print(f"  {metric:24s} " + " | ".join(cells))
        print("  outcomes " + " | ".join(
            f"k={k} " + ", ".join(f"{o} {sum(r['outcome'] == o for r in by[k])}"
                                 for o in sorted({r['outcome'] for r in by[k]}))
            for k in clocks))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help="also write every run as JSON lines to this file")
    args = parser.parse_args(argv)
    if 1 not in args.every:
        parser.error("--every must include 1 (the model as it is), the reference")
    for flag in ("seeds", "days", "size", "workers"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} {getattr(args, flag)}: expected an integer >= 1")
    if any(k < 1 for k in args.every):
        parser.error(f"--every {args.every}: expected integers >= 1")
    from abm.scenarios import SCENARIOS as KNOWN

    unknown = [s for s in args.scenarios if s not in KNOWN]
    if unknown:  # before the pool starts, not as a traceback from a worker
        parser.error(f"--scenarios: unknown {unknown}: expected some of {', '.join(KNOWN)}")
    jobs = [(s, k, seed, args.days, args.size) for s in args.scenarios for k in args.every
            for seed in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(run, jobs, chunksize=4))
    if args.out:  # atomically: an earlier file is replaced whole or not at all
        from abm.run import atomic_write_bytes

        atomic_write_bytes(Path(args.out), "".join(json.dumps(r) + "\n" for r in rows).encode())
    report(rows)


if __name__ == "__main__":
    main()
