"""How the fields' preconditioner level ``k_ref`` changes the work of a solve.

Oxygen and IFN-gamma are solved by preconditioned conjugate gradients
(``abm.fields.ReactionField``); the preconditioner is the same operator with one uniform loss rate
``k_ref``. It changes how many iterations a solve takes, and also what the stopping test (the
preconditioned residual below the tolerance at every site) means: a higher level shrinks the
preconditioned residual of smooth errors where the loss is low, so the solve stops further from
the exact field. This runs the fast engine and, at every solve, solves the same system from the
same starting field with ``k_ref`` scaled by each factor given (1 is the model's own) and once
more to 1e-4 of the tolerance (the exact field), then goes on with the model's. It prints, per
case and factor, the mean iterations and milliseconds per solve, and the median and largest
distance from the exact field (the largest over the sites, in field units).

Run:
    .venv/bin/python benchmarks/preconditioner.py [--seeds 2] [--days 30] [--large]
        [--oxygen 0.2 0.5 1 2] [--ifng 0.5 1 2 4] [--field-step 1] [--scenarios escape ...]
    .venv/bin/python benchmarks/preconditioner.py --seeds 1 --days 1 --scenarios escape \
        --oxygen 1 --ifng 1                  # a smoke run (seconds)

``--large`` adds the 1000x1000 tissue with a 300,000-cell founder: its first 6 hours and 10
hours from day 8.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np

from abm import FastTumorModel

SCENARIOS = ("elimination", "equilibrium", "escape", "checkpoint", "combination", "vaccine",
             "cart", "macrophage_niche")


def _with_level(field, factor: float):
    """A copy of ``field`` whose preconditioner's ``k_ref`` is ``factor`` times its own."""
    v = copy.deepcopy(field)
    v.step = type(v).step.__get__(v)  # the class's step, not an instrumented one
    v.k_ref = field.k_ref * factor
    v._eig = field._eig + (v.k_ref - field.k_ref)  # eig = D * -mu + 1/dt + k_ref
    if v._cap is not None:  # the Woodbury correction depends on the preconditioner: rebuild
        v._woodbury()
    v._prepare()
    return v


def _instrument(model, name: str, factors: list[float], tally: dict) -> None:
    """Solve every system of ``model.<name>`` also with each factor's preconditioner."""
    field = getattr(model, name)
    own = field.step
    variants: dict = {}

    def step(*args, **kwargs):
        if variants.get("pins") != len(field._pinned):  # a vessel collapsed: rebuild
            variants.clear()
            variants["pins"] = len(field._pinned)
            variants["fields"] = {f: _with_level(field, f) for f in factors}
            exact = variants["exact"] = _with_level(field, 1.0)
            exact.tol, exact.max_iter = field.tol * 1e-4, 5000
        start = field.data.copy()
        variants["exact"].data[...] = start
        variants["exact"].step(*args, **kwargs)
        for factor, variant in variants["fields"].items():
            variant.data[...] = start
            began = time.perf_counter()
            variant.step(*args, **kwargs)
            tally[factor][0] += variant.iterations
            tally[factor][1] += time.perf_counter() - began
            tally[factor][2].append(float(np.abs(variant.data - variants["exact"].data).max()))
        own(*args, **kwargs)
        tally["solves"] += 1

    field.step = step


def measure(model, hours: int, oxygen: list[float], ifng: list[float]) -> dict:
    tallies = {}
    for name, factors in (("oxygen", oxygen), ("ifng", ifng)):
        tallies[name] = {f: [0, 0.0, []] for f in factors} | {"solves": 0}
        _instrument(model, name, factors, tallies[name])
    for _ in range(hours):
        model.step()
        if not model.running:
            break
    out = {}
    for name, tally in tallies.items():
        n = max(tally.pop("solves"), 1)
        out[name] = {str(f): {"iterations": it / n, "ms": 1e3 * s / n,
                              "error_median": float(np.median(err)) if err else 0.0,
                              "error_max": max(err, default=0.0)}
                     for f, (it, s, err) in tally.items()}
        out[name]["tol"] = getattr(model, name).tol
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS,
                        metavar="SCENARIO", help=f"of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--field-step", type=int, default=1)
    parser.add_argument("--oxygen", type=float, nargs="+", default=[0.2, 0.5, 1.0, 2.0])
    parser.add_argument("--ifng", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--large", action="store_true")
    args = parser.parse_args(argv)
    for flag in ("seeds", "days", "field_step"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} {getattr(args, flag)}: expected an "
                         "integer >= 1")
    for scenario in args.scenarios:
        for seed in range(args.seeds):
            model = FastTumorModel.from_scenario(scenario, rng=seed,
                                                 field_step_h=args.field_step)
            result = measure(model, args.days * 24, args.oxygen, args.ifng)
            print(json.dumps({"case": f"{scenario} seed {seed}", **result}), flush=True)
    if args.large:
        for label, before, hours in (("1000x1000 first hours", 0, 6),
                                     ("1000x1000 day 8", 190, 10)):
            model = FastTumorModel(rng=1, width=1000, height=1000, initial_tumor_cells=300_000,
                                   field_step_h=args.field_step)
            for _ in range(before):
                model.step()
            result = measure(model, hours, args.oxygen, args.ifng)
            print(json.dumps({"case": label, **result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
