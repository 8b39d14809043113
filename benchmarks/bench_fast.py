"""The fast engine against the Mesa engine, in one run on one machine.

Numbers go into docs/performance.md and docs/engines.md.

1. First-run compile time of the numba kernels (a fresh on-disk cache in a temporary
   directory), and the load time with the cache warm: each in its own process.
2. 100x100 `escape` for 30 days (720 steps), both engines, the same seeds: CPU time per run,
   and where the fast engine's time goes (fields, kernels, the rest).
3. The agent-heavy case of ``bench_model.py`` (200x200, 20,000-cell founder, raised influx):
   steps per second over the first 5 days, both engines.
4. Per agent actually stepped: agents whose own rule ran that hour (dividing cancer cells, CTLs,
   CAR-T cells, Tregs, MDSCs), counted in a separate untimed run of each engine; CPU time per
   agent-step for the whole step, and for the fast engine's kernels alone.
5. A 1000x1000 FastTumorModel with 300,000 cancer cells: construction time, memory (peak
   traced Python/numpy allocations) and the CPU time of a few steps; then steps 6-29 (after
   the unperfused core's necrosis), hourly and with the fields solved every k hours.
6. The same tissue grown to day 8, stepped from one state on one thread and on every core
   (``use_threads``): wall-clock steps per second.
7. Cases 2 and 5 again with the fields solved every k hours (``--field-step``, the parameter
   ``field_step_h``; default 2 and 4). (``process_max_rss_mb``
   is the whole benchmark process's, Mesa runs included: measure the model's own memory in a
   fresh process.)

Run:
    .venv/bin/python benchmarks/bench_fast.py [--seeds 3] [--skip-large] [--field-step 2 4]
    .venv/bin/python benchmarks/bench_fast.py --seeds 1 --days 1 --crowded-days 1 \
        --skip-compile --skip-large --field-step 2 --json out.json   # a smoke run (seconds)

``--days`` (default 30) is the length of the ``escape`` runs of cases 2, 4 and 7,
``--crowded-days`` (default 5) that of case 3; ``--skip-compile`` leaves out case 1 (tens of
seconds), ``--json PATH`` also writes the whole result. Each measurement runs in this process
(one core) except the compile times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPILE = """
import time
start = time.perf_counter()
from abm import FastTumorModel
m = FastTumorModel.from_scenario("cart", rng=0, width=30, height=30)
m.administer("cart")
for _ in range(3):
    m.step()
print(time.perf_counter() - start)
"""


def compile_times() -> dict:
    """Seconds to import, build and step a small model: cold cache (compiles), warm cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        out = {}
        for label in ("cold_cache_s", "warm_cache_s"):
            done = subprocess.run([sys.executable, "-c", COMPILE], env=env, capture_output=True,
                                  text=True, check=True)
            out[label] = float(done.stdout.strip().splitlines()[-1])
    return out


def run_escape(engine: str, seed: int, days: int = 30, **overrides) -> tuple[float, object]:
    from abm.run import model_class

    start = time.process_time()
    model = model_class(engine).from_scenario("escape", rng=seed, **overrides)
    for _ in range(days * 24):
        model.step()
    return time.process_time() - start, model


def count_agent_steps(engine: str, seed: int, days: int = 30) -> int:
    """Agents whose own rule ran, summed over the hours (an instrumented, untimed run)."""
    count = [0]
    if engine == "mesa":
        from abm.agents.cancer import CancerCell
        from abm.agents.suppressors import Suppressor
        from abm.agents.tcell import TCell

        originals = {cls: cls.__dict__[name] for cls, name in
                     ((CancerCell, "divide_if_room"), (TCell, "step"), (Suppressor, "step"))}

        def counted(fn):
            def wrapper(self, *a, **k):
                count[0] += 1
                return fn(self, *a, **k)
            return wrapper

        CancerCell.divide_if_room = counted(originals[CancerCell])
        TCell.step = counted(originals[TCell])
        Suppressor.step = counted(originals[Suppressor])
        try:
            run_escape("mesa", seed, days)
        finally:
            CancerCell.divide_if_room = originals[CancerCell]
            TCell.step = originals[TCell]
            Suppressor.step = originals[Suppressor]
    else:
        from abm.fast import kernels as K

        originals = {name: getattr(K, name)
                     for name in ("divide_cancer", "step_killers", "step_suppressors")}

        def counted(fn):
            def wrapper(order, *a, **k):
                count[0] += len(order)
                return fn(order, *a, **k)
            return wrapper

        for name, fn in originals.items():
            setattr(K, name, counted(fn))
        try:
            run_escape("fast", seed, days)
        finally:
            for name, fn in originals.items():
                setattr(K, name, fn)
    return count[0]


def fast_breakdown(seed: int, days: int = 30) -> dict:
    """CPU seconds of the fast engine's run spent in the field updates, the kernels, and the
    rest (the vectorised draws, census, recruitment, data collection)."""
    from abm.fast import FastTumorModel
    from abm.fast import kernels as K

    spent = {"fields": 0.0, "kernels": 0.0}

    def timed(fn, key):
        def wrapper(*a, **k):
            start = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.process_time() - start
        return wrapper

    kernels = {name: getattr(K, name)
               for name in ("divide_cancer", "step_killers", "step_suppressors")}
    fields = FastTumorModel._update_fields
    for name, fn in kernels.items():
        setattr(K, name, timed(fn, "kernels"))
    FastTumorModel._update_fields = timed(fields, "fields")
    try:
        total, _ = run_escape("fast", seed, days)
    finally:
        for name, fn in kernels.items():
            setattr(K, name, fn)
        FastTumorModel._update_fields = fields
    return {"total_s": total, **{f"{k}_s": v for k, v in spent.items()},
            "rest_s": total - sum(spent.values())}


def crowded(engine: str, days: int = 5) -> dict:
    """``bench_model.py``'s agent-heavy case: 200x200, a 20,000-cell founder, raised influx
    (thousands of immune cells by day 5); CPU steps per second over the first ``days``."""
    from abm.run import model_class

    model = model_class(engine)(rng=1, width=200, height=200, initial_tumor_cells=20_000,
                                tcell_influx=5.0, treg_influx=0.5, mdsc_influx=0.5)
    start = time.process_time()
    for _ in range(days * 24):
        model.step()
    cpu = time.process_time() - start
    return {"steps_per_s": days * 24 / cpu, "cancer": model.n_cancer,
            "immune": model.n_tcells + model.n_cart + model.n_tregs + model.n_mdscs}


def large(steps: int = 5, **overrides) -> dict:
    from abm.fast import FastTumorModel

    tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    model = FastTumorModel(rng=1, width=1000, height=1000, initial_tumor_cells=300_000,
                           **overrides)
    build = {"construction_wall_s": time.perf_counter() - start,
             "construction_cpu_s": time.process_time() - cpu}
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_step = []
    for _ in range(steps):
        t = time.process_time()
        model.step()
        per_step.append(time.process_time() - t)
    import resource

    return {**build, "construction_peak_traced_mb": peak / 2**20,
            "process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "oxygen_iterations_last_step": model.oxygen.iterations,
            "steps_per_s": len(per_step) / sum(per_step), "cancer": model.n_cancer,
            "immune": int(model.n_immune[0])}


def large_later(field_step: int = 1, first: int = 5, steps: int = 24) -> dict:
    """The same 1000x1000 tissue after its first ``first`` steps (the unperfused core's
    necrosis): CPU steps per second over the next ``steps`` (steps 6-29 by default)."""
    from abm.fast import FastTumorModel

    model = FastTumorModel(rng=1, width=1000, height=1000, initial_tumor_cells=300_000,
                           field_step_h=field_step)
    for _ in range(first):
        model.step()
    start = time.process_time()
    for _ in range(steps):
        model.step()
    return {"field_step_h": field_step, "steps": f"{first + 1}-{first + steps}",
            "steps_per_s": steps / (time.process_time() - start), "cancer": model.n_cancer}


def large_grown(hours: int = 190, steps: int = 20, field_step: int = 1) -> dict:
    """The 1000x1000 tissue after ``hours`` (day 8: about 30,000 cancer cells and 950 T cells),
    then ``steps`` more from that same state on one thread and on every core
    (``use_threads``): wall-clock steps per second, as the dashboard sees them."""
    import copy

    from abm.fast import FastTumorModel

    model = FastTumorModel(rng=1, width=1000, height=1000, initial_tumor_cells=300_000,
                           field_step_h=field_step)
    for _ in range(hours):
        model.step()
    out = {"cancer": model.n_cancer, "immune": int(model.n_immune[0])}
    for threads in (1, os.cpu_count() or 1):
        twin = copy.deepcopy(model)
        twin.use_threads(threads)
        start = time.perf_counter()
        for _ in range(steps):
            twin.step()
        out[f"steps_per_s_wall_{threads}_threads"] = steps / (time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--days", type=int, default=30,
                        help="days of each escape run (cases 2, 4, 7; default 30)")
    parser.add_argument("--crowded-days", type=int, default=5,
                        help="days of the 200x200 agent-heavy case (case 3; default 5)")
    parser.add_argument("--skip-compile", action="store_true",
                        help="leave out the compile times (case 1)")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--field-step", type=int, nargs="*", default=[2, 4],
                        help="also time both engines with field_step_h at these values")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the result here")
    args = parser.parse_args(argv)
    for flag in ("seeds", "days", "crowded_days"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} {getattr(args, flag)}: expected an "
                         "integer >= 1")
    if any(k < 1 for k in args.field_step):
        parser.error(f"--field-step {args.field_step}: expected integers >= 1")
    sys.path.insert(0, str(ROOT))
    days = args.days
    out: dict = {"days": days, "crowded_days": args.crowded_days}
    if not args.skip_compile:
        out["compile"] = compile_times()
        print(json.dumps(out["compile"]), flush=True)
    run_escape("fast", 0, 1)  # load the cached kernels before timing
    times: dict[str, list[float]] = {"mesa": [], "fast": []}
    for seed in range(args.seeds):  # alternate, so machine load affects both alike
        for engine in ("mesa", "fast"):
            times[engine].append(run_escape(engine, seed, days)[0])
    out[f"escape_100x100_{days}d_cpu_s"] = times
    mesa, fast = (sum(times[e]) / len(times[e]) for e in ("mesa", "fast"))
    out["speedup"] = mesa / fast
    print(json.dumps({"escape": times, "speedup": out["speedup"]}), flush=True)
    for k in args.field_step:  # fields solved every k hours (field_step_h), the same seeds
        slow = {"mesa": [], "fast": []}
        for seed in range(args.seeds):
            for engine in ("mesa", "fast"):
                slow[engine].append(run_escape(engine, seed, days, field_step_h=k)[0])
        fast_k, mesa_k = (sum(slow[e]) / len(slow[e]) for e in ("fast", "mesa"))
        out[f"escape_field_step_{k}_cpu_s"] = slow
        out[f"field_step_{k}_ratios"] = {"fast_k_vs_mesa_hourly": mesa / fast_k,
                                         "fast_k_vs_mesa_k": mesa_k / fast_k,
                                         "fast_k_vs_fast_hourly": fast / fast_k}
        print(json.dumps({f"field_step_{k}": slow, **out[f"field_step_{k}_ratios"]}),
              flush=True)
    out["fast_breakdown"] = fast_breakdown(0, days)
    print(json.dumps(out["fast_breakdown"]), flush=True)
    steps = {e: count_agent_steps(e, 0, days) for e in ("mesa", "fast")}
    out["agent_steps_seed0"] = steps
    out["us_per_agent_step"] = {
        "mesa_whole_step": 1e6 * times["mesa"][0] / steps["mesa"],
        "fast_whole_step": 1e6 * times["fast"][0] / steps["fast"],
        "fast_kernels_only": 1e6 * out["fast_breakdown"]["kernels_s"] / steps["fast"],
    }
    print(json.dumps({"agent_steps": steps, "us": out["us_per_agent_step"]}), flush=True)
    out[f"crowded_200x200_{args.crowded_days}d"] = {e: crowded(e, args.crowded_days)
                                                    for e in ("mesa", "fast")}
    print(json.dumps(out[f"crowded_200x200_{args.crowded_days}d"]), flush=True)
    if not args.skip_large:
        out["large_1000x1000"] = large()
        print(json.dumps(out["large_1000x1000"]), flush=True)
        out["large_1000x1000_later"] = [large_later(k) for k in (1, *args.field_step)]
        print(json.dumps(out["large_1000x1000_later"]), flush=True)
        out["large_1000x1000_day8"] = large_grown()
        print(json.dumps(out["large_1000x1000_day8"]), flush=True)
        for k in args.field_step:
            key = f"large_1000x1000_field_step_{k}"
            out[key] = large(steps=2 * k, field_step_h=k)
            print(json.dumps(out[key]), flush=True)
    print(json.dumps(out, indent=1))
    if args.json:
        from abm.run import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(out, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
