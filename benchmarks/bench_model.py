"""Model speed and memory (not a timed test; numbers go into docs/performance.md).

1. 200x200 with a 20,000-cell tumour and a few hundred immune cells, raised influx: steps per
   second over an early window (days 3-5) and over the whole 30-day run (the per-step cost grows
   as exhausted T cells pile up, so the early window alone flatters the model).
2. 100x100 `escape` for 30 days (720 steps): wall and CPU time, the cost per 5-day window, and
   peak memory.

Run:
    .venv/bin/python benchmarks/bench_model.py                     # this source tree
    .venv/bin/python benchmarks/bench_model.py --compare OLD_TREE   # and another checkout of
        # the project (e.g. `git worktree add /tmp/before <commit>`), alternating runs of the two
        # so that machine load affects both alike; CPU times are the fairer comparison
    .venv/bin/python benchmarks/bench_model.py --days 1 --repeats 1 --json out.json
        # a smoke run (seconds): both cases over 1 day instead of 30; numbers not comparable

One process per measurement, so one core. ``--days`` (default 30) sets both cases' length; the
early window (days 3-5) needs at least 5 days. ``--json PATH`` also writes every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def large_tumour(days: int = 30) -> dict:
    """The 200x200 agent-heavy case over ``days``: CPU steps per second on days 3-5 (None when
    the run is shorter than 5 days) and over the whole run."""
    from abm import TumorModel

    model = TumorModel(rng=1, width=200, height=200, initial_tumor_cells=20_000,
                       tcell_influx=5.0, treg_influx=0.5, mdsc_influx=0.5)
    per_step = []
    for _ in range(days * 24):
        start = time.process_time()
        model.step()
        per_step.append(time.process_time() - start)
    early = per_step[72:120] if days >= 5 else []  # days 3-5
    return {
        "days": days,
        "early_steps_per_s": len(early) / sum(early) if early else None,
        "whole_steps_per_s": len(per_step) / sum(per_step),
        "cancer": model.n_cancer,
        "immune": model.n_tcells + model.n_tregs + model.n_mdscs,
    }


def escape_30_days(trace_memory: bool = False, days: int = 30) -> dict:
    """100x100 ``escape`` over ``days`` (30 by default), CPU per 5-day window. Timed without
    tracing; a second run traces Python allocations (which slows it)."""
    from abm import TumorModel

    if trace_memory:
        tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    model = TumorModel.from_scenario("escape", rng=1)
    windows = []
    for day in range(days):
        if day % 5 == 0:
            windows.append(0.0)
        start = time.process_time()
        model.run_for(24)
        windows[-1] += time.process_time() - start
    out = {
        "days": days,
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "window_cpu_s": windows,
        "cancer": model.n_cancer,
        "tcells": model.n_tcells,
    }
    if trace_memory:
        out["peak_traced_MB"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return out


def measure(days: int = 30) -> dict:
    return {
        "large": large_tumour(days),
        "escape": escape_30_days(days=days),
        "escape_traced": escape_30_days(trace_memory=True, days=days),
        "max_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_tree(tree: Path, days: int = 30) -> dict:
    """``measure(days)`` in a fresh process importing ``abm`` from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = (f"import sys, json; sys.path.insert(0, {str(tree)!r}); "
            f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); "
            f"import bench_model; print(json.dumps(bench_model.measure({int(days)})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(label: str, runs: list[dict]) -> None:
    def med(f) -> float:
        return statistics.median(f(r) for r in runs)

    r = runs[0]
    days = r["escape"]["days"]
    early = (f"{med(lambda r: r['large']['early_steps_per_s']):.1f} steps/s (CPU) on days 3-5, "
             if r["large"]["early_steps_per_s"] is not None else "")
    print(f"{label}:")
    print(f"  200x200 ({r['large']['cancer']} cancer cells at day {days}): {early}"
          f"{med(lambda r: r['large']['whole_steps_per_s']):.1f} steps/s over the whole "
          f"{days} days")
    windows = [med(lambda r, i=i: r['escape']['window_cpu_s'][i])
               for i in range(len(r["escape"]["window_cpu_s"]))]
    print(f"  100x100 escape, {days} days: {med(lambda r: r['escape']['seconds']):.2f} s wall, "
          f"{med(lambda r: r['escape']['cpu_seconds']):.2f} s CPU; CPU per 5-day window "
          + ", ".join(f"{w:.2f}" for w in windows) + " s"
          + f" (ends with {r['escape']['cancer']} cancer, {r['escape']['tcells']} T cells)")
    print(f"  peak traced Python memory {med(lambda r: r['escape_traced']['peak_traced_MB']):.0f}"
          f" MB; max RSS {med(lambda r: r['max_rss_MB']):.0f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=Path, help="another source tree of the project")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--days", type=int, default=30,
                        help="length of both cases in days (default 30; the documented numbers)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write every measurement here (JSON, per tree and repeat)")
    args = parser.parse_args(argv)
    for flag in ("repeats", "days"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} {getattr(args, flag)}: expected an integer >= 1")
    trees = {"this tree": ROOT}
    if args.compare:
        if not (args.compare / "abm" / "__init__.py").is_file():
            parser.error(f"--compare {args.compare}: not a source tree of the project "
                         "(no abm/__init__.py)")
        trees = {f"other ({args.compare})": args.compare.resolve(), "this tree": ROOT}
    results: dict[str, list[dict]] = {label: [] for label in trees}
    for _ in range(args.repeats):  # alternate, so load drifts affect both trees alike
        for label, tree in trees.items():
            results[label].append(measure_tree(tree, args.days))
    for label, runs in results.items():
        describe(label, runs)
    if args.json:
        from abm.run import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(results, indent=1).encode())


if __name__ == "__main__":
    main()
