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
from abm.sweep.spec import ARM, PATIENT, Patients, Sample, Spec


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


def patient_points(patients: Patients) -> list[dict[str, Any]]:
    """Each patient's drawn parameters, in patient order, reproducible from ``patients.seed``.

    One ``numpy`` Generator (from ``SeedSequence(seed)``'s first child) draws each parameter
    for all patients in turn, in the order of ``patients.draws`` (the lognormal lines, then the
    uniform, then the choice ones, each as the spec lists them); the patients' run seeds come
    from the second child (``patient_seeds``), so adding patients keeps the first ones' seeds.
    Integer parameters are rounded; a truncated lognormal is drawn by inverting its CDF (or
    log-uniformly, when a huge sigma leaves [low, high] a sliver around the median:
    ``_NARROW_WINDOW``).

    With ``correlation`` the parameters are drawn together by a Gaussian copula: one standard
    normal per patient and parameter (patient by patient, in the spec's order), correlated by
    the Cholesky factor of :func:`copula_matrix`, and each turned into its distribution by
    its inverse CDF (a choice by its values in the order listed), so the pairs' rank
    correlations are the ones asked for (less for a choice, whose ranks tie).
    """
    from scipy.stats import norm

    rng = np.random.default_rng(np.random.SeedSequence(patients.seed).spawn(2)[0])
    n = patients.n
    names = list(patients.draws)
    latent = None
    if patients.correlation:
        factor = np.linalg.cholesky(copula_matrix(names, patients.correlation))
        latent = rng.standard_normal((n, len(names))) @ factor.T
    columns = {}
    for j, (name, (kind, args)) in enumerate(patients.draws.items()):
        z = None if latent is None else latent[:, j]
        if kind == "choice":
            index = (rng.integers(0, len(args), size=n) if z is None
                     else np.minimum((norm.cdf(z) * len(args)).astype(int), len(args) - 1))
            values = [args[i] for i in index]
        elif kind == "uniform":
            values = (rng.uniform(args[0], args[1], size=n) if z is None
                      else args[0] + (args[1] - args[0]) * norm.cdf(z)).tolist()
        elif len(args) == 2:
            values = (args[0] * np.exp(args[1] * (rng.standard_normal(n) if z is None
                                                  else z))).tolist()
        else:
            median, sigma, low, high = args
            mu = np.log(median)
            cdf = [norm.cdf((np.log(b) - mu) / sigma) if b > 0 else 0.0 for b in (low, high)]
            if cdf[1] - cdf[0] < _NARROW_WINDOW and low <= median <= high:
                # a sigma so large (> 1e6) that [low, high] is a sliver of the normal around
                # its mode: the CDF is linear there, so the log is uniform between the bounds
                # (inverting the CDF would round every draw to the median)
                share = rng.uniform(size=n) if z is None else norm.cdf(z)
                log_low, log_high = np.log(low), np.log(high)
                values = np.clip(np.exp(log_low + (log_high - log_low) * share), low, high)
                values = values.tolist()
            else:
                u = (rng.uniform(cdf[0], cdf[1], size=n) if z is None
                     else cdf[0] + (cdf[1] - cdf[0]) * norm.cdf(z))
                values = np.clip(np.exp(mu + sigma * norm.ppf(u)), low, high).tolist()
        param = P.PARAMS[canonical(name)]
        if kind != "choice" and param.kind is int:
            values = [round(v) for v in values]
        columns[name] = [param.validate(v) for v in values]
    return [{PATIENT: i, **{k: v[i] for k, v in columns.items()}} for i in range(n)]


# a truncated lognormal whose [low, high] holds less than this share of the normal of its log,
# around the median (only a huge sigma does that; the spec refuses such a sliver in a tail), is
# drawn log-uniformly: the normal's CDF is linear to 1e-12 there, and inverting it in floating
# point would collapse the draws onto a few values (one, the median, for sigma >= 1e16)
_NARROW_WINDOW = 1e-6


def copula_matrix(names: list[str], pairs, check: bool = False) -> np.ndarray:
    """The Gaussian copula's correlation matrix over ``names`` for ``pairs`` of (name, name,
    Spearman rank correlation): each converted to the normals' correlation 2 sin(pi rho / 6),
    which gives that rank correlation to any continuous distributions drawn from them.
    ``check``: raise ValueError when the matrix is not positive definite."""
    where = {name: i for i, name in enumerate(names)}
    matrix = np.eye(len(names))
    for first, second, rho in pairs:
        i, j = where[first], where[second]
        matrix[i, j] = matrix[j, i] = 2.0 * np.sin(np.pi * rho / 6.0)
    if check and np.linalg.eigvalsh(matrix).min() <= 1e-9:
        raise ValueError("the correlation matrix is not positive definite")
    return matrix


def patient_seeds(patients: Patients) -> list[int]:
    """One run seed per patient, the same in every arm (the second child of the patients'
    ``SeedSequence``)."""
    child = np.random.SeedSequence(patients.seed).spawn(2)[1]
    return [int(s.generate_state(1)[0]) for s in child.spawn(patients.n)]


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
    if spec.patients:  # (a cohort has no factors or sample: its points are its patients)
        samples = patient_points(spec.patients)
    arms = [{ARM: name} for name in spec.arms] or [{}]
    for arm in arms:
        for combo in itertools.product(*spec.factors.values()):
            for sampled in samples:
                yield {**arm, **dict(zip(spec.factors, combo, strict=True)), **sampled}


def iter_runs(spec: Spec) -> Iterator[Run]:
    """The runs one at a time, in run-list order (``expand`` without the list: a dry run lists
    the first few of any size at once)."""
    seeds = list(spec.seeds) if spec.seeds else replicate_seeds(spec.seed, spec.replicates)
    if spec.patients:  # one run per patient and arm, with the patient's own seed in every arm
        by_patient = patient_seeds(spec.patients)
        for point_id, point in enumerate(iter_points(spec)):
            yield Run(f"p{point_id:05d}-r000", point_id, 0, by_patient[point[PATIENT]], point)
        return
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
        "engine": spec.engine,
    }
