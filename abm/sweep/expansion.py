"""From a spec to its runs: points (arms x factor grid x sample), replicate seeds, run ids, and
each run's task (everything a worker needs, as plain data).

The expansion is deterministic: the same spec always gives the same runs, ids and seeds, and
replicate ``k`` has the same seed at every point (paired comparisons).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from abm import params as P
from abm.sweep.schema import canonical
from abm.sweep.spec import ARM, Sample, Spec


@dataclass(frozen=True)
class Run:
    """One simulation: a point (its varied parameters) and a replicate (its seed)."""

    run_id: str
    point_id: int
    replicate: int
    seed: int
    varied: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "point_id": self.point_id,
            "replicate": self.replicate,
            "seed": self.seed,
            "parameters": self.varied,
        }


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """One seed per replicate from the master seed (``numpy.random.SeedSequence.spawn``)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(replicates)]


def sample_points(sample: Sample) -> list[dict[str, Any]]:
    """The sampled parameter values, in sample order (integers are rounded)."""
    names = list(sample.bounds)
    lows = np.array([sample.bounds[n][0] for n in names], dtype=float)
    highs = np.array([sample.bounds[n][1] for n in names], dtype=float)
    if sample.method == "lhs":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=len(names), rng=np.random.default_rng(sample.seed)).random(
            sample.n
        )
        values = qmc.scale(unit, lows, highs)
    else:
        values = _saltelli(sample)
    points = []
    params = [P.PARAMS[canonical(name)] for name in names]
    for row in values:
        point = {}
        for name, param, value in zip(names, params, row, strict=True):
            point[name] = param.validate(round(float(value)) if param.kind is int else float(value))
        points.append(point)
    return points


def _saltelli(sample: Sample) -> np.ndarray:
    import warnings

    from SALib.sample import sobol as salib_sobol

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return salib_sobol.sample(
            salib_problem(sample), sample.n, calc_second_order=False, seed=sample.seed
        )


def salib_problem(sample: Sample) -> dict[str, Any]:
    """The SALib problem definition of a sample (also used by ``abm report``)."""
    return {
        "num_vars": len(sample.bounds),
        "names": list(sample.bounds),
        "bounds": [[float(lo), float(hi)] for lo, hi in sample.bounds.values()],
    }


def iter_points(spec: Spec) -> Iterator[dict[str, Any]]:
    """Points in a fixed order: every arm (slowest), each with every combination of the factors
    (first factor slowest), each with every sample point."""
    samples = sample_points(spec.sample) if spec.sample else [{}]
    arms = [{ARM: name} for name in spec.arms] or [{}]
    for arm in arms:
        for combo in itertools.product(*spec.factors.values()):
            for sampled in samples:
                yield {**arm, **dict(zip(spec.factors, combo, strict=True)), **sampled}


def iter_runs(spec: Spec) -> Iterator[Run]:
    """The runs one at a time, in run-list order (``expand`` without the list: a dry run lists
    the first few of any size at once)."""
    seeds = list(spec.seeds) if spec.seeds else replicate_seeds(spec.seed, spec.replicates)
    for point_id, point in enumerate(iter_points(spec)):
        for k, seed in enumerate(seeds):
            yield Run(f"p{point_id:05d}-r{k:03d}", point_id, k, seed, point)


def expand(spec: Spec) -> list[Run]:
    """The run list, deterministic from the spec. Run ids are ``p<point>-r<replicate>``."""
    return list(iter_runs(spec))


def make_task(spec: Spec, run: Run) -> dict[str, Any]:
    """Everything a worker needs for one run (``abm.sweep.execute.execute_run``), as plain
    picklable data."""
    return {
        **run.as_dict(),
        "model": {**spec.params_for(run.varied), "rng": run.seed},
        "steps": spec.steps,
        "record_every": spec.record_every,
        "outcome": spec.outcome,
        "varied_names": spec.varied,
        "probes": spec.probes,
    }
