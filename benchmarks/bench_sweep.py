"""Sweep benchmarks: overhead per run, runner memory vs number of runs, parallel
efficiency, and a virtual-patient cohort. Not a test: prints a Markdown table for
docs/sweeps.md.

    .venv/bin/python benchmarks/bench_sweep.py            # the first three, minutes on 2 cores
    .venv/bin/python benchmarks/bench_sweep.py overhead   # one of: overhead, memory, parallel
    .venv/bin/python benchmarks/bench_sweep.py cohort --patients 200 --days 42 --size 100
    .venv/bin/python benchmarks/bench_sweep.py cohort --workers 1 --engine both
    .venv/bin/python benchmarks/bench_sweep.py fast --sobol-n 4 --size 100 --days 30
    .venv/bin/python benchmarks/bench_sweep.py --quick     # a smoke run of the first three
        # (tiny sweeps: 4 runs of 30x30 for 1 day, memory at 8 runs, one round; seconds)

* overhead: the same runs through ``simulate()`` in a plain loop (the model itself) and through
  ``abm sweep --backend serial`` (spec, manifest, id columns, run summary, one atomic Parquet
  file per run, summary rebuild); the difference per run, as a share of the model's time.
* memory: peak RSS of the runner process (``ru_maxrss``) for sweeps of 25 to 400 tiny runs,
  serial (the model runs inside the runner) and process (the runner only collects and writes).
* parallel: wall time of the same sweep serially and with the process and Dask backends on
  2 workers; efficiency = serial time / (2 x parallel time), with and without pool start-up.
* cohort: a 2-arm cohort (untreated / anti-PD-1 from day 14, ``experiments/cohorts/``-like
  patients) on all local cores through ``run_sweep``, then ``abm report``, on the Mesa engine,
  the fast engine or both in turn (``--engine``); wall and CPU time,
  per run, and the same scaled linearly to 200 patients (only the runs scale; model time grows
  with the tumour, so a shorter cohort underestimates a longer one).
* fast: where a fast-engine sweep's CPU goes beyond the model. A Sobol design of ``escape``
  (4 parameters, Saltelli, ``--sobol-n`` base samples: n x 6 runs) with ``engine = "fast"``:
  (1) every run in this process as a worker does it (``execute_run`` + ``write_run``), timed by
  part: model construction, stepping (of which data collection), the datacollector turned into
  a DataFrame, the rest of ``execute_run`` (thinning, id columns, summary row), pickling the
  task and the result (what the pool sends), encoding the Parquet file, and the atomic write
  (write, fsync, rename); (2) a worker's start-up in a fresh process (imports, then the numba
  kernels loaded from the on-disk cache on the first run: paid once per worker process, which
  the pool keeps for all its runs); (3) the whole ``abm sweep --workers W --quiet`` for W = 1
  and 2 (local process backend), its runner's and its workers' CPU separately; (4) the model
  alone (construction + stepping, no sweep code) in W plain processes at once, since two busy
  processes on two cores each take more CPU per run than one. Overhead per run = (sweep CPU -
  the runs' construction + stepping in (1)) / runs; beyond the once-per-sweep start-up, it is
  compared with (4); (5) ``run_sweep`` on the pool with every run timed inside its worker
  (``timed_execute_run``), which splits the CPU in the same processes under the same load:
  model, the rest of ``execute_run``, the pool's handling in the worker, the runner, start-up.
  The passes alternate over ``--repeats`` rounds (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from abm.analysis.outcomes import summarise
from abm.run import simulate
from abm.sweep import (
    execute_run,
    expand,
    make_task,
    parse_spec,
    run_sweep,
    write_run,
)


def spec_data(name: str, n_points: int, replicates: int, size: int, days: float) -> dict:
    return {
        "sweep": {
            "name": name,
            "scenario": "escape",
            "days": days,
            "replicates": replicates,
            "seed": 1,
            "record_every": 24,
        },
        "parameters": {"width": size, "height": size, "initial_tumor_cells": 100},
        "factors": {"mutation_rate": [round(0.1 * i / n_points, 6) for i in range(n_points)]},
    }


def quiet(_message: str) -> None:
    pass


def bench_overhead(runs: int = 16, size: int = 60, days: float = 10) -> dict:
    """Each run twice, back to back and in alternating order, so that load from other processes
    hits both alike: once as the bare model (``simulate``), once as the sweep does it
    (``execute_run`` + ``write_run``). CPU time of this process, not wall time, and the median
    of the per-run differences: other processes on a shared machine then barely disturb it (the
    same seed does the same work in both paths). Then the whole serial sweep end to end
    (manifest, progress bar, summary rebuild too), which is noisier."""
    import statistics

    spec = parse_spec(spec_data("overhead", runs // 2, 2, size, days))
    tasks = [make_task(spec, r) for r in expand(spec)]
    simulate(tasks[0]["model"], 24)  # warm up imports and caches
    model_times, sweep_times = [], []
    write_s = summarise_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:

        def model_path(task: dict) -> float:
            t0 = time.process_time()
            simulate(task["model"], task["steps"], record_every=task["record_every"])
            return time.process_time() - t0

        def sweep_path(task: dict) -> float:
            t0 = time.process_time()
            write_run(Path(tmp), *execute_run(task))
            return time.process_time() - t0

        for i, task in enumerate(tasks):
            if i % 2:
                sweep_times.append(sweep_path(task))
                model_times.append(model_path(task))
            else:
                model_times.append(model_path(task))
                sweep_times.append(sweep_path(task))
        for task in tasks[:4]:  # the parts of the overhead, timed alone
            _, model = simulate(task["model"], task["steps"], record_every=task["record_every"])
            full = model.datacollector.get_model_vars_dataframe()
            c0 = time.process_time()
            summarise(full, sites=size * size, **spec.outcome)
            summarise_s += time.process_time() - c0
            df, summary, _ = execute_run(task)
            w0 = time.perf_counter()
            write_run(Path(tmp), df, summary)
            write_s += time.perf_counter() - w0
        start = time.process_time()
        run_sweep(spec, Path(tmp) / "out", backend="serial", progress=True, log=quiet)
        end_to_end_s = time.process_time() - start
    n = len(tasks)
    diffs = [b - a for a, b in zip(model_times, sweep_times, strict=True)]
    model_median = statistics.median(model_times)
    return {
        "runs": n,
        "grid": f"{size}x{size}",
        "days": days,
        "model_s_per_run": model_median,
        "sweep_s_per_run": statistics.median(sweep_times),
        "overhead_s_per_run": statistics.median(diffs),
        "overhead_pct": 100 * statistics.median(diffs) / model_median,
        "end_to_end_s_per_run": end_to_end_s / n,
        "end_to_end_pct": 100 * (end_to_end_s - sum(model_times)) / sum(model_times),
        "write_ms": 1000 * write_s / 4,
        "summarise_ms": 1000 * summarise_s / 4,
    }


_MEMORY_CHILD = """
import json, sys, tempfile
from pathlib import Path
import abm.sweep as S
import abm.sweep.runner as R

def status(key):
    lines = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith(key + ":")) / 1024

data, backend = json.loads(sys.argv[1]), sys.argv[2]
spec = S.parse_spec(data)
quarters, written, write_run = [], [0], R.write_run  # the runner's own name for it

def counting_write_run(*args):
    write_run(*args)
    written[0] += 1
    if written[0] % max(1, spec.n_runs // 4) == 0:
        quarters.append(status("VmRSS"))

R.write_run = counting_write_run
if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        S.run_sweep(spec, Path(tmp) / "out", backend=backend, workers=2, progress=False,
                    log=lambda m: None)
    # VmHWM, not ru_maxrss: on Linux ru_maxrss keeps the parent's peak across fork + exec
    print(json.dumps({"quarters": quarters, "peak": status("VmHWM")}))
"""


def bench_memory(counts: tuple[int, ...] = (50, 200, 800), backends=("serial", "process")) -> list:
    """Resident memory of the runner process after 25/50/75/100% of the runs are written, and
    its peak over the whole sweep (start-up and the final summary included)."""
    rows = []
    for backend in backends:
        for n in counts:
            data = spec_data("memory", n, 1, 40, 1)
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", _MEMORY_CHILD, json.dumps(data), backend],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout)
            rows.append(
                {
                    "backend": backend,
                    "runs": n,
                    "quarters_mb": result["quarters"],
                    "peak_mb": result["peak"],
                    "wall_s": time.perf_counter() - start,
                }
            )
            print(rows[-1], file=sys.stderr)
    return rows


def bench_parallel(runs: int = 16, size: int = 60, days: float = 10, repeats: int = 3) -> list:
    """Wall time of the same sweep on each backend, ``repeats`` rounds with the backends
    alternating, keeping each backend's best (the usual guard against other processes on a
    shared machine). Start-up: a 2-run sweep of 1-step runs on the same backend."""
    spec = parse_spec(spec_data("parallel", runs // 2, 2, size, days))
    startup_spec = parse_spec(
        {
            **spec_data("startup", 1, 2, 40, 1),
            "sweep": {"name": "startup", "steps": 1, "replicates": 2},
        }
    )
    backends = ("serial", "process", "dask")
    best = {b: [math.inf, math.inf] for b in backends}
    cpu = {b: math.inf for b in backends}
    for _ in range(repeats):
        for backend in backends:
            for k, s in enumerate((startup_spec, spec)):
                with tempfile.TemporaryDirectory() as tmp:
                    start, cpu_start = time.perf_counter(), _cpu_seconds()
                    run_sweep(
                        s,
                        Path(tmp) / "out",
                        backend=backend,
                        workers=2,
                        progress=False,
                        log=quiet,
                    )
                    best[backend][k] = min(best[backend][k], time.perf_counter() - start)
                    if k == 1:
                        cpu[backend] = min(cpu[backend], _cpu_seconds() - cpu_start)
            print(backend, best[backend], file=sys.stderr)
    rows = []
    serial = best["serial"][1]
    for backend in backends:
        startup, wall = best[backend]
        workers = 1 if backend == "serial" else 2
        rows.append(
            {
                "backend": backend,
                "workers": workers,
                "runs": runs,
                "wall_s": wall,
                "startup_s": startup,
                "efficiency": serial / (workers * wall),
                "efficiency_after_startup": serial / (workers * (wall - startup)),
                "cpu_s": cpu[backend],
                "cpu_ratio": cpu["serial"] / cpu[backend],
            }
        )
    return rows


def cohort_data(patients: int, days: float, size: int, engine: str = "mesa") -> dict:
    return {
        "sweep": {"name": "bench-cohort", "scenario": "escape", "days": days, "seed": 1,
                  "record_every": 24, "engine": engine},
        "parameters": {"width": size, "height": size},
        "patients": {
            "n": patients,
            "seed": 15,
            "lognormal": {"tcell_influx": [1.5, 0.5, 0.2, 10.0]},
            "uniform": {"founder_mhc": [0.4, 1.0]},
            "choice": {"founder_antigens": [1, 2, 3, 4, 5]},
        },
        "arms": {"untreated": {}, "anti_pd1": {"anti_pd1_start_day": min(14, days / 3)}},
        "response": {"baseline_day": min(14, days / 3), "stratify": "founder_antigens"},
    }


def bench_cohort(patients: int = 20, days: float = 42, size: int = 100,
                 workers: int | None = None, engine: str = "mesa") -> dict:
    """Wall and CPU time of a 2-arm cohort on ``workers`` processes (default: every local core;
    1: serially in this process) with ``engine``, and of its report."""
    from abm.report import write_report

    spec = parse_spec(cohort_data(patients, days, size, engine), force=True)
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        run_sweep(spec, Path(tmp) / "c", backend="serial" if workers == 1 else "process",
                  workers=workers, progress=False, log=quiet)
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
        t1 = time.perf_counter()
        write_report(Path(tmp) / "c")
        report = time.perf_counter() - t1
    runs = 2 * patients
    return {"patients": patients, "runs": runs, "days": days, "grid": f"{size}x{size}",
            "engine": engine,
            "workers": workers or os.cpu_count(), "wall_s": wall, "cpu_s": cpu, "report_s": report,
            "wall_per_run_s": wall / runs, "cpu_per_run_s": cpu / runs,
            "wall_200_min": wall / runs * 400 / 60, "cpu_200_min": cpu / runs * 400 / 60}


SOBOL_SPEC = """
[sweep]
name = "sobol-fast"
scenario = "escape"
days = {days}
replicates = 1
seed = 2026
record_every = 24
engine = "{engine}"

[parameters]
width = {size}
height = {size}

[sample]
method = "sobol"
n = {n}

[sample.bounds]
mutation_rate = [0.0, 0.1]
tcell_influx = [0.25, 3.0]
treg_influx = [0.0, 0.6]
pdl1_induction = [0.0, 1.0]
"""

_WORKER_STARTUP = """
import json, sys, time
t0 = time.process_time()
from abm.sweep.execute import execute_run
t1 = time.process_time()
task = json.loads(sys.argv[1])
execute_run(task)
t2 = time.process_time()
execute_run(task)
t3 = time.process_time()
print(json.dumps({"imports_s": t1 - t0, "first_run_extra_s": (t2 - t1) - (t3 - t2)}))
"""

_SWEEP_CHILD = """
import atexit, json, resource, sys, time
start = time.perf_counter()

def report():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool's workers, joined
    print(json.dumps({"runner_cpu_s": own.ru_utime + own.ru_stime,
                      "workers_cpu_s": kids.ru_utime + kids.ru_stime,
                      "wall_s": time.perf_counter() - start}), file=sys.stderr)

atexit.register(report)
from abm.cli import app
sys.argv = ["abm", "sweep", *sys.argv[1:]]
app()
"""


_MODEL_CHILD = """
import json, sys, time
from abm.run import model_class
tasks = json.loads(open(sys.argv[1]).read())[int(sys.argv[2])::int(sys.argv[3])]
cls = model_class(tasks[0]["engine"])
cls(**tasks[0]["model"]).step()  # load the kernels before timing
start = time.process_time()
for task in tasks:
    model = cls(**task["model"])
    for _ in range(task["steps"]):
        model.step()
        if not model.running:
            break
print(json.dumps({"cpu_s": time.process_time() - start, "runs": len(tasks)}))
"""


_TIMING_LOG = "ABM_BENCH_TIMING_LOG"  # where timed_execute_run appends one line per run
_worker_state: dict = {}


def timed_execute_run(task: dict):
    """``execute_run`` in a pool worker, timed there: on the worker's first run its CPU so far
    (spawn, imports, and the numba kernels loaded by a 1-step run), then per run the CPU of
    ``execute_run`` and of the model within it (construction + stepping), appended to the file
    named by ``$ABM_BENCH_TIMING_LOG``."""
    import mesa

    from abm.run import model_class

    state = _worker_state
    if not state:  # the worker's first run: its start-up, then the kernels loaded (a 1-step run)
        cls = model_class(task["engine"])
        execute_run({**task, "steps": 1})
        state["startup_s"] = time.process_time()
        state["model_s"] = 0.0

        def timed(fn):
            def wrapper(*a, **k):
                c0 = time.process_time()
                try:
                    return fn(*a, **k)
                finally:
                    state["model_s"] += time.process_time() - c0
            return wrapper

        cls.__init__ = timed(cls.__init__)
        mesa.Model._wrapped_step = timed(mesa.Model._wrapped_step)
    startup, state["startup_s"] = state["startup_s"], 0.0
    model0, c0 = state["model_s"], time.process_time()
    result = execute_run(task)
    line = {"pid": os.getpid(), "startup_s": startup, "execute_s": time.process_time() - c0,
            "model_s": state["model_s"] - model0, "end_s": time.process_time()}
    with open(os.environ[_TIMING_LOG], "a") as fh:
        fh.write(json.dumps(line) + "\n")
    return result


def pool_split(spec, out: Path, workers: int) -> dict:
    """``run_sweep`` on the process pool with each run timed inside its worker
    (``timed_execute_run``): per run, the model, the rest of ``execute_run``, the pool's own
    handling in the worker (receiving the task, sending the result), and the runner's CPU;
    once per worker, its start-up. All measured in the same processes, under the same load."""
    import resource

    import abm.sweep.backends as backends

    log_path = out.with_suffix(".timing")
    os.environ[_TIMING_LOG] = str(log_path)
    original = backends.execute_run
    backends.execute_run = timed_execute_run
    try:
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        c0, w0 = time.process_time(), time.perf_counter()
        run_sweep(spec, out, backend="process", workers=workers, progress=False, log=quiet)
        runner, wall = time.process_time() - c0, time.perf_counter() - w0
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        backends.execute_run = original
        del os.environ[_TIMING_LOG]
    lines = [json.loads(x) for x in log_path.read_text().splitlines()]
    n = len(lines)
    worker_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    model = sum(x["model_s"] for x in lines)
    execute = sum(x["execute_s"] for x in lines)
    startup = sum(x["startup_s"] for x in lines)
    return {
        "workers": workers, "runs": n, "wall_s": wall, "load": os.getloadavg()[0],
        "model_s": model / n,
        "execute_rest_s": (execute - model) / n,
        "pool_in_worker_s": (worker_cpu - execute - startup) / n,
        "runner_s": runner / n,
        "startup_per_worker_s": startup / len({x["pid"] for x in lines}),
        "total_s": (worker_cpu + runner) / n,
    }


def model_processes(tasks_path: Path, k: int) -> float:
    """The runs' construction + stepping alone (no sweep code), split over ``k`` plain
    processes started at once (task i in process i mod k): CPU seconds per run. With k = 2 both
    cores are busy, as in ``abm sweep --workers 2``."""
    procs = [subprocess.Popen([sys.executable, "-c", _MODEL_CHILD, str(tasks_path), str(i),
                               str(k)], env=_abm_env(), stdout=subprocess.PIPE, text=True)
             for i in range(k)]
    results = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    return sum(r["cpu_s"] for r in results) / sum(r["runs"] for r in results)


def _abm_env() -> dict:
    """The environment for child processes: the ``abm`` this process imported first on the
    path (so the benchmark measures whichever tree it was pointed at)."""
    import abm

    root = str(Path(abm.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": root}


def fast_parts(tasks: list[dict], out: Path) -> dict:
    """Each task run as a pool worker runs it, then written as the runner writes it, in this
    process, timed by part (CPU seconds summed over the runs; the file write also in wall)."""
    import pickle
    from collections import defaultdict

    import mesa

    import abm.run as run_module
    from abm.run import model_class

    cls = model_class(tasks[0]["engine"])
    cpu: dict[str, float] = defaultdict(float)
    wall: dict[str, float] = defaultdict(float)

    def timed(fn, key):
        def wrapper(*a, **k):
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                cpu[key] += time.process_time() - c0
                wall[key] += time.perf_counter() - w0
        return wrapper

    from abm.fast import engine as fast_engine

    patches = [
        (cls, "__init__", "construct"),
        (mesa.Model, "_wrapped_step", "stepping"),
        (mesa.DataCollector, "collect", "collect"),
        (fast_engine._Collector, "collect", "collect"),  # the fast engine's own collector
        (mesa.DataCollector, "get_model_vars_dataframe", "to_dataframe"),
        (run_module, "atomic_write_bytes", "file_write"),
    ]
    originals = [(obj, name, obj.__dict__[name]) for obj, name, _ in patches]
    for obj, name, key in patches:
        setattr(obj, name, timed(getattr(obj, name), key))
    try:
        for task in tasks:
            c0 = time.process_time()
            sent = pickle.loads(pickle.dumps(task))
            cpu["pickling"] += time.process_time() - c0
            c0 = time.process_time()
            result = execute_run(sent)
            cpu["execute_run"] += time.process_time() - c0
            c0 = time.process_time()
            result = pickle.loads(pickle.dumps(result))
            cpu["pickling"] += time.process_time() - c0
            c0 = time.process_time()
            write_run(out, *result)
            cpu["write_run"] += time.process_time() - c0
    finally:
        for obj, name, fn in originals:
            setattr(obj, name, fn)
    n = len(tasks)
    model = cpu["construct"] + cpu["stepping"]
    return {
        "model_s": model / n,
        "construct_s": cpu["construct"] / n,
        "stepping_s": cpu["stepping"] / n,
        "collect_s": (cpu["collect"]) / n,  # inside construction (once) and stepping
        "to_dataframe_s": cpu["to_dataframe"] / n,
        "execute_rest_s": (cpu["execute_run"] - model - cpu["to_dataframe"]) / n,
        "pickling_s": cpu["pickling"] / n,
        "encode_s": (cpu["write_run"] - cpu["file_write"]) / n,
        "file_write_s": cpu["file_write"] / n,
        "file_write_wall_s": wall["file_write"] / n,
    }


def worker_startup(task: dict) -> dict:
    """A fresh process as a pool worker starts: the imports, then the first run's extra time
    (the numba kernels loaded from the on-disk cache), from a 1-step run done twice."""
    task = {**task, "steps": 1}
    done = subprocess.run([sys.executable, "-c", _WORKER_STARTUP, json.dumps(task)],
                          env=_abm_env(), capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def sweep_cli(spec_path: Path, out: Path, workers: int) -> dict:
    """``abm sweep SPEC --out OUT --workers W --quiet`` in a fresh process: wall time, the
    runner's CPU and its workers' CPU."""
    done = subprocess.run(
        [sys.executable, "-c", _SWEEP_CHILD, str(spec_path), "--out", str(out), "--workers",
         str(workers), "--quiet"],
        env=_abm_env(), capture_output=True, text=True, check=True,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


def bench_fast_sweep(sobol_n: int = 4, size: int = 100, days: float = 30, repeats: int = 2,
                     workers: tuple[int, ...] = (2, 1)) -> dict:
    """The ``fast`` benchmark (module docstring): per-run parts in this process, a worker's
    start-up, and ``abm sweep`` end to end, alternating over ``repeats`` rounds."""
    import statistics
    import tomllib

    text = SOBOL_SPEC.format(days=days, engine="fast", size=size, n=sobol_n)
    spec = parse_spec(tomllib.loads(text))
    tasks = [make_task(spec, r) for r in expand(spec)]
    n = len(tasks)
    execute_run({**tasks[0], "steps": 2})  # load the kernels before timing
    parts, startups, sweeps = [], [], {w: [] for w in workers}
    alone: dict[int, list[float]] = {1: [], 2: []}
    splits: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "sobol.toml"
        spec_path.write_text(text)
        tasks_path = Path(tmp) / "tasks.json"
        tasks_path.write_text(json.dumps(tasks))
        for rep in range(repeats):
            parts.append(fast_parts(tasks, Path(tmp) / f"parts{rep}"))
            print("parts", json.dumps(parts[-1]), os.getloadavg()[0], file=sys.stderr)
            startups.append(worker_startup(tasks[0]))
            for k in (1, 2):
                alone[k].append(model_processes(tasks_path, k))
                print(f"model in {k} plain processes", alone[k][-1], os.getloadavg()[0],
                      file=sys.stderr)
            for w in workers:
                splits.append(pool_split(spec, Path(tmp) / f"split{rep}-{w}", w))
                print("split", json.dumps(splits[-1]), file=sys.stderr)
            for w in workers:
                r = sweep_cli(spec_path, Path(tmp) / f"sweep{rep}-{w}", w)
                r["load"] = os.getloadavg()[0]
                sweeps[w].append(r)
                print(f"sweep w={w}", json.dumps(r), file=sys.stderr)
    model = statistics.mean(p["model_s"] for p in parts)
    rows = []
    for w in workers:
        for rep, r in enumerate(sweeps[w]):
            total = r["runner_cpu_s"] + r["workers_cpu_s"]
            part, start = parts[rep], startups[rep]
            # once per sweep: the runner's CPU less its share of each run (unpickling the
            # result, writing its file), and each worker's start-up
            runner_per_run = part["pickling_s"] / 2 + part["encode_s"] + part["file_write_s"]
            fixed = (r["runner_cpu_s"] - n * runner_per_run
                     + w * (start["imports_s"] + start["first_run_extra_s"]))
            per_run = (total - fixed) / n
            rows.append({
                "workers": w, "round": rep + 1, "runs": n, "wall_s": r["wall_s"],
                "wall_per_run_s": r["wall_s"] / n, "cpu_per_run_s": total / n,
                "runner_cpu_per_run_s": r["runner_cpu_s"] / n,
                "workers_cpu_per_run_s": r["workers_cpu_s"] / n,
                "overhead_per_run_s": total / n - parts[rep]["model_s"],
                "model_per_run_s": parts[rep]["model_s"],
                "plain_per_run_s": alone[w][rep],
                "fixed_s": fixed, "marginal_overhead_per_run_s": per_run - alone[w][rep],
                "hours_10k_2cores": (fixed + 10_000 * per_run) / 2 / 3600, "load": r["load"],
            })
    return {"runs": n, "grid": f"{size}x{size}", "days": days, "sobol_n": sobol_n,
            "parts": parts, "startup": startups, "sweeps": rows, "model_s": model,
            "plain": alone, "splits": splits}


def _print_fast(r: dict) -> None:
    keys = [
        ("model: construction", "construct_s"), ("model: stepping", "stepping_s"),
        ("of which data collection (each hour)", "collect_s"),
        ("datacollector to DataFrame", "to_dataframe_s"),
        ("rest of execute_run (thin, id columns, summary row)", "execute_rest_s"),
        ("pickling task + result (dispatch)", "pickling_s"),
        ("Parquet encoding (write_run less the file write)", "encode_s"),
        ("file write: write, fsync, rename (CPU)", "file_write_s"),
        ("file write: write, fsync, rename (wall)", "file_write_wall_s"),
    ]
    print(f"{r['runs']} runs (Sobol n = {r['sobol_n']}, 4 parameters), {r['grid']}, "
          f"{r['days']:g} days, engine fast\n")
    rounds = " | ".join(f"round {i + 1}" for i in range(len(r["parts"])))
    print(f"| part, in one process (ms per run) | {rounds} |\n|---|"
          + "---|" * len(r["parts"]))
    for label, key in keys:
        print(f"| {label} | " + " | ".join(f"{1000 * p[key]:.1f}" for p in r["parts"]) + " |")
    print("| worker start-up: imports (s, once per worker) | "
          + " | ".join(f"{s['imports_s']:.2f}" for s in r["startup"]) + " |")
    print("| worker start-up: numba kernels loaded on the first run (s, once per worker) | "
          + " | ".join(f"{s['first_run_extra_s']:.2f}" for s in r["startup"]) + " |")
    for k in (1, 2):
        print(f"| model alone (construction + stepping) in {k} plain process{'es' * (k > 1)} "
              "at once, no sweep code | "
              + " | ".join(f"{1000 * v:.1f}" for v in r["plain"][k]) + " |")
    print()
    print("| `run_sweep` on the process pool, each run timed in its worker (ms per run) | "
          "workers | model (construction + stepping) | rest of execute_run | the pool's "
          "handling in the worker | runner (receive, write, summary) | total CPU per run | "
          "sweep code per run (total - model - start-up) | start-up per worker (s) | wall (s) "
          "| load |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for i, x in enumerate(r["splits"]):
        code = x["total_s"] - x["model_s"] - x["workers"] * x["startup_per_worker_s"] / x["runs"]
        print(f"| round {i // 2 + 1} | {x['workers']} | {1000 * x['model_s']:.1f} | "
              f"{1000 * x['execute_rest_s']:.1f} | {1000 * x['pool_in_worker_s']:.1f} | "
              f"{1000 * x['runner_s']:.1f} | {1000 * x['total_s']:.1f} | {1000 * code:.1f} | "
              f"{x['startup_per_worker_s']:.2f} | {x['wall_s']:.1f} | {x['load']:.1f} |")
    print()
    print("| `abm sweep` | round | wall (s) | CPU per run (s) | runner CPU per run | "
          "workers' CPU per run | model per run (same round; in W plain processes) | "
          "overhead per run | "
          "once per sweep: runner + workers' start-up (s) | "
          "overhead per run beyond that, vs the model in W plain processes | "
          "10,000 runs on 2 cores (h) | load |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in r["sweeps"]:
        print(f"| --workers {s['workers']} | {s['round']} | {s['wall_s']:.1f} | "
              f"{s['cpu_per_run_s']:.3f} | {1000 * s['runner_cpu_per_run_s']:.0f} ms | "
              f"{s['workers_cpu_per_run_s']:.3f} | {s['model_per_run_s']:.3f}; "
              f"{s['plain_per_run_s']:.3f} | "
              f"{1000 * s['overhead_per_run_s']:.0f} ms | {s['fixed_s']:.1f} | "
              f"{1000 * s['marginal_overhead_per_run_s']:.0f} ms | {s['hours_10k_2cores']:.2f} | "
              f"{s['load']:.1f} |")
    print()


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (pool and Dask workers)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


BENCHMARKS = ("overhead", "memory", "parallel", "cohort", "fast")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="*", choices=[*BENCHMARKS, []], metavar="WHICH",
                        help=f"of {', '.join(BENCHMARKS)} (default: the first three)")
    parser.add_argument("--quick", action="store_true",
                        help="overhead, memory, parallel: tiny sweeps (a smoke run; numbers "
                        "not comparable with docs/sweeps.md)")
    parser.add_argument("--patients", type=int, default=20, help="cohort: patients")
    parser.add_argument("--days", type=float, default=None,
                        help="cohort, fast: days per run (default 42, 30)")
    parser.add_argument("--size", type=int, default=100, help="cohort, fast: grid side (sites)")
    parser.add_argument("--workers", type=int, default=None,
                        help="cohort: processes (default: all cores; 1: serial)")
    parser.add_argument("--sobol-n", type=int, default=4, help="fast: Sobol base samples")
    parser.add_argument("--repeats", type=int, default=2, help="fast: rounds")
    parser.add_argument("--engine", choices=["mesa", "fast", "both"], default="mesa",
                        help="cohort: the engine (both: one after the other, the same cohort)")
    args = parser.parse_args(argv)
    for flag in ("patients", "size", "sobol_n", "repeats", "workers"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} {value}: expected an integer >= 1")
    if args.days is not None and not args.days > 0:
        parser.error(f"--days {args.days}: expected a number > 0")
    args.which = args.which or ["overhead", "memory", "parallel"]
    tiny = {"runs": 4, "size": 30, "days": 1} if args.quick else {}
    load = os.getloadavg()[0]
    print(f"cores: {os.cpu_count()}, load average before: {load:.2f}\n")
    if "overhead" in args.which:
        r = bench_overhead(**tiny)
        print(f"{r['runs']} runs of {r['grid']} sites, {r['days']:g} days\n")
        print("| path | CPU s per run (median) | overhead per run (median) |\n|---|---|---|")
        print(f"| model alone (`simulate`) | {r['model_s_per_run']:.3f} | |")
        print(
            f"| sweep run (`execute_run` + `write_run`) | {r['sweep_s_per_run']:.3f} | "
            f"{1000 * r['overhead_s_per_run']:.1f} ms ({r['overhead_pct']:.1f}%) |"
        )
        print(
            f"| whole serial sweep, end to end | {r['end_to_end_s_per_run']:.3f} | "
            f"{r['end_to_end_pct']:.1f}% (noisier: not interleaved) |\n"
        )
        print(
            f"parts: run summary from the full series {r['summarise_ms']:.1f} ms CPU; "
            f"writing the run file (atomic Parquet + fsync) {r['write_ms']:.1f} ms wall\n"
        )
    if "memory" in args.which:
        print(
            "| backend | runs | runner RSS (MB) after 25% / 50% / 75% / 100% of the runs "
            "| peak (MB) | wall (s) |\n|---|---|---|---|---|"
        )
        for r in bench_memory(**({"counts": (8,)} if args.quick else {})):
            quarters = " / ".join(f"{q:.0f}" for q in r["quarters_mb"])
            print(
                f"| {r['backend']} | {r['runs']} | {quarters} | {r['peak_mb']:.0f} | "
                f"{r['wall_s']:.1f} |"
            )
        print()
    if "parallel" in args.which:
        print(
            "| backend | workers | runs | wall (s) | start-up (s) | efficiency | "
            "efficiency after start-up | CPU (s) | serial CPU / CPU |\n"
            "|---|---|---|---|---|---|---|---|---|"
        )
        for r in bench_parallel(**tiny, **({"repeats": 1} if args.quick else {})):
            print(
                f"| {r['backend']} | {r['workers']} | {r['runs']} | {r['wall_s']:.1f} | "
                f"{r['startup_s']:.1f} | {r['efficiency']:.2f} | "
                f"{r['efficiency_after_startup']:.2f} | {r['cpu_s']:.1f} | {r['cpu_ratio']:.2f} |"
            )
        print()
    if "cohort" in args.which:
        print(
            "| cohort | engine | runs | grid | days | workers | wall (s) | CPU (s) | "
            "wall / run (s) | CPU / run (s) | report (s) | wall for 200 patients (min, scaled) | "
            "CPU for 200 patients (min, scaled) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        )
        engines = ["mesa", "fast"] if args.engine == "both" else [args.engine]
        for engine in engines:
            r = bench_cohort(args.patients, args.days or 42, args.size, args.workers, engine)
            print(
                f"| {r['patients']} patients x 2 arms | {engine} | {r['runs']} | {r['grid']} | "
                f"{r['days']:g} | {r['workers']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
                f"{r['wall_per_run_s']:.2f} | {r['cpu_per_run_s']:.2f} | {r['report_s']:.1f} | "
                f"{r['wall_200_min']:.1f} | {r['cpu_200_min']:.1f} |", flush=True
            )
        print()
    if "fast" in args.which:
        _print_fast(bench_fast_sweep(args.sobol_n, args.size, args.days or 30, args.repeats))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
