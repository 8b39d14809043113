"""Does a better starting field make the hourly solves cheaper?

The conjugate gradients of oxygen and IFN-gamma (``abm.fast.fields._cg``) start from the last
hour's field. If the fields drift steadily from hour to hour, a start extrapolated from the last
two hours (``x0 = c + f (c - c_prev)``, clipped at 0) would be nearer the new field and need
fewer iterations. This runs the fast engine with each start and prints the iterations and the
CPU time per solve. The system solved is the same (its right-hand side keeps the last hour's
field; the start enters through the compiled solve's ``data`` with the ghost term corrected), so
only the starting point differs.

Run:
    .venv/bin/python benchmarks/warm_start.py [--seeds 3] [--days 30] [--factors 0 0.5 1]
    .venv/bin/python benchmarks/warm_start.py --seeds 1 --days 1 --factors 0 1   # a smoke run

One JSON line per seed and factor: mean iterations and CPU microseconds per solve of each field.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import abm.fast.fields as ff
from abm import FastTumorModel


def instrumented(factor: float, stats: dict):
    """``FastReactionField.step`` started from the extrapolated field (factor 0: the model's
    own start), counting iterations and CPU time per field."""
    plain = ff.FastReactionField.step

    def step(self, uptake_per_h, source=None):
        previous = getattr(self, "_bench_previous", None)
        current = self.data.copy()
        self._bench_previous = current
        ghost = self._ghost
        if factor and previous is not None:
            start = np.maximum(current + factor * (current - previous), 0.0)
            # b = data / dt + ghost (+ source): moving the start into data keeps b the same
            self._ghost = ghost + self.inv_dt * (current - start)
            self.data[...] = start
        began = time.process_time()
        try:
            plain(self, uptake_per_h, source)
        finally:
            self._ghost = ghost
        entry = stats.setdefault(self._bench_name, [0, 0, 0.0])
        entry[0] += 1
        entry[1] += self.iterations
        entry[2] += time.process_time() - began

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--factors", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    args = parser.parse_args(argv)
    for flag in ("seeds", "days"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} {getattr(args, flag)}: expected an integer >= 1")
    plain = ff.FastReactionField.step
    results = []
    FastTumorModel.from_scenario("escape", rng=0, width=30, height=30).step()  # compile
    for seed in range(args.seeds):
        for factor in args.factors:
            stats: dict = {}
            ff.FastReactionField.step = instrumented(factor, stats)
            try:
                model = FastTumorModel.from_scenario("escape", rng=seed)
                model.oxygen._bench_name, model.ifng._bench_name = "oxygen", "ifng"
                model.run_for(24 * args.days)
            finally:
                ff.FastReactionField.step = plain
            row = {"seed": seed, "factor": factor}
            for name, (solves, iterations, cpu) in stats.items():
                row[f"{name}_iterations"] = round(iterations / solves, 3)
                row[f"{name}_us"] = round(1e6 * cpu / solves)
            results.append(row)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
