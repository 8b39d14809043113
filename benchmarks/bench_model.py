"""Model speed and memory (not a timed test; numbers go into docs/performance.md).

1. 200x200 with a 20,000-cell tumour and a few hundred immune cells: steps per second.
2. 100x100 `escape` for 30 days (720 steps): wall time and peak memory.

Run: .venv/bin/python benchmarks/bench_model.py  (one process, so one core)
"""

from __future__ import annotations

import resource
import time
import tracemalloc

from abm import TumorModel


def large_tumour(steps: int = 50) -> dict:
    model = TumorModel(rng=1, width=200, height=200, initial_tumor_cells=20_000,
                       tcell_influx=5.0, treg_influx=0.5, mdsc_influx=0.5)
    for _ in range(72):  # let a few hundred immune cells arrive
        model.step()
    immune = model.n_tcells + model.n_tregs + model.n_mdscs
    start = time.perf_counter()
    for _ in range(steps):
        model.step()
    elapsed = time.perf_counter() - start
    return {"steps_per_s": steps / elapsed, "cancer": model.n_cancer, "immune": immune}


def escape_30_days(trace_memory: bool = False) -> dict:
    """Timed without tracing; a second run traces Python allocations (which slows it)."""
    if trace_memory:
        tracemalloc.start()
    start = time.perf_counter()
    model = TumorModel.from_scenario("escape", rng=1)
    for _ in range(720):
        model.step()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    tracemalloc.stop()
    return {"seconds": elapsed, "peak_traced_MB": peak / 2**20, "cancer": model.n_cancer,
            "tcells": model.n_tcells}


if __name__ == "__main__":
    a = large_tumour()
    print(f"200x200, {a['cancer']} cancer cells, {a['immune']} immune cells: "
          f"{a['steps_per_s']:.1f} steps/s")
    b = escape_30_days()
    print(f"100x100 escape, 30 days: {b['seconds']:.1f} s (ends with {b['cancer']} cancer, "
          f"{b['tcells']} T cells)")
    c = escape_30_days(trace_memory=True)
    print(f"100x100 escape, 30 days: peak traced Python memory {c['peak_traced_MB']:.0f} MB")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of this process: {rss_mb:.0f} MB")
