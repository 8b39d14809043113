"""Batch parameter sweeps: spec files, run expansion, execution backends, storage and resume.

A sweep is described by a TOML file (data only, never code; see ``docs/sweeps.md``)::

    [sweep]      name, scenario, days | steps, replicates, seed | seeds, record_every, description
    [parameters] fixed overrides on the scenario
    [arms.NAME]  optional named arms (e.g. treated / untreated): scenario and overrides per arm
    [factors]    full grid: name = [value, ...]
    [sample]     method = "lhs" | "sobol", n, seed (optional), [sample.bounds] name = [low, high]
    [outcome]    escape_multiple, escape_fraction (how runs are classified)
    [probes.NAME] optional measurements during each run (``abm.analysis.probes``), e.g.
                 [probes.snapshot] day = 14; stored in each run's file

Every name and value is checked against ``abm.params`` before anything runs. The spec expands to
points (every arm, times every combination of the factors, times every sample point) and each
point to ``replicates`` runs; replicate ``k`` has the same seed at every point (paired
comparisons), drawn from the master seed with ``numpy.random.SeedSequence`` or given as a list
(``seeds = [0, 1, 2, 3]``, to repeat runs made elsewhere).

A sweep directory holds::

    manifest.json            the normalised spec and its hash, the expanded run list, the resolved
                             base parameters, package versions and git commit
    runs/<run_id>.parquet    one file per finished run: the time series with run id, point id,
                             replicate, seed and every varied parameter as columns; the run's
                             summary row and probe results travel in the file's metadata
    summary.parquet          one row per run, rebuilt from runs/ when the sweep finishes

Files are written atomically, so a run is either wholly on disk or missing; rerunning the same
command runs only what is missing, and the summary is rebuilt from the files, so a resumed sweep
equals an uninterrupted one. Runs execute in the worker (a process, or a Dask worker) and return
their data; only the runner writes, so a worker that dies costs a retry of its run, nothing more.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import math
import os
import tomllib
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm import params as P
from abm.analysis.outcomes import ESCAPE_FRACTION, ESCAPE_MULTIPLE, summarise

FORMAT = "abm-sweep/1"
BACKENDS = ("serial", "process", "dask")
SAMPLE_METHODS = ("lhs", "sobol")
ID_COLUMNS = ["run_id", "point_id", "replicate", "seed"]
RUN_META_KEY = b"abm.run"
PROBES_META_KEY = b"abm.probes"  # {probe name: result}, numpy arrays encoded (encode_probes)

_SWEEP_KEYS = {
    "name": "a short name for the sweep",
    "description": "the question the sweep answers (free text)",
    "scenario": "a base scenario from abm.scenarios",
    "days": "simulated days per run",
    "steps": "simulated hours per run (instead of days)",
    "replicates": "runs per point, with different seeds",
    "seed": "master seed; replicate seeds derive from it",
    "seeds": "the replicate seeds themselves, instead of seed (e.g. [0, 1, 2, 3])",
    "record_every": "steps between time-series rows",
}
_TOP_KEYS = ("sweep", "parameters", "arms", "factors", "sample", "outcome", "probes")
ARM = "arm"  # the column naming a run's arm
_SAMPLE_KEYS = ("method", "n", "seed", "bounds")
_OUTCOME_DEFAULTS = {"escape_multiple": ESCAPE_MULTIPLE, "escape_fraction": ESCAPE_FRACTION}


class SpecError(ValueError):
    """A sweep spec that cannot run; the message names the file and the key."""


class SweepError(RuntimeError):
    """A sweep that cannot start or continue (e.g. a changed spec in an existing directory)."""


# --- the spec ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A space-filling sample over ``bounds`` (``scipy.stats.qmc`` / SALib's Saltelli scheme)."""

    method: str
    n: int
    seed: int
    bounds: dict[str, tuple[float, float]]

    @property
    def n_points(self) -> int:
        """LHS: ``n`` points. Sobol: ``n`` base samples x (D + 2) for first-order and total
        indices (Saltelli's scheme as in SALib, without second-order terms)."""
        return self.n if self.method == "lhs" else self.n * (len(self.bounds) + 2)


@dataclass(frozen=True)
class Spec:
    """A validated sweep spec. ``base`` is every model parameter resolved (defaults, then the
    scenario, then ``[parameters]``), so runs do not depend on defaults changing later."""

    name: str
    description: str
    scenario: str | None
    steps: int
    replicates: int
    seed: int
    record_every: int
    parameters: dict[str, Any]
    factors: dict[str, list[Any]]
    sample: Sample | None
    outcome: dict[str, float]
    base: dict[str, Any] = field(repr=False)
    seeds: tuple[int, ...] | None = None
    # name -> {"scenario": str | None, "parameters": {...}}; resolved parameters per arm
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    arm_bases: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    # probe name -> options, as given in [probes.NAME] (checked by abm.analysis.probes)
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def varied(self) -> list[str]:
        """Names of what differs between points (``arm`` first when there are arms)."""
        return (
            ([ARM] if self.arms else [])
            + list(self.factors)
            + (list(self.sample.bounds) if self.sample else [])
        )

    @property
    def n_points(self) -> int:
        grid = math.prod(len(v) for v in self.factors.values()) * max(len(self.arms), 1)
        return grid * (self.sample.n_points if self.sample else 1)

    @property
    def base_parameters(self) -> dict[str, Any]:
        """The resolved parameters every point starts from (per arm when there are arms)."""
        return self.arm_bases if self.arms else self.base

    def params_for(self, point: dict[str, Any]) -> dict[str, Any]:
        """The model's keyword arguments at one point (without ``rng``)."""
        rest = {k: v for k, v in point.items() if k != ARM}
        base = self.arm_bases[point[ARM]] if self.arms else self.base
        return {**base, **rest}

    @property
    def n_runs(self) -> int:
        return self.n_points * self.replicates

    def normalised(self) -> dict[str, Any]:
        """The spec as plain JSON data with every default filled in (what the hash covers)."""
        out: dict[str, Any] = {
            "sweep": {
                "name": self.name,
                "description": self.description,
                "scenario": self.scenario,
                "steps": self.steps,
                "replicates": self.replicates,
                "seed": self.seed,
                "record_every": self.record_every,
            },
            "parameters": dict(sorted(self.parameters.items())),
            # a list of pairs: the order of factors fixes the point ids
            "factors": [[name, list(values)] for name, values in self.factors.items()],
            "sample": None,
            "outcome": dict(sorted(self.outcome.items())),
        }
        # only when used, so sweeps started before arms and seed lists existed keep their hash
        if self.seeds is not None:
            out["sweep"]["seeds"] = list(self.seeds)
        if self.arms:
            out["arms"] = [
                [
                    name,
                    {
                        "scenario": arm["scenario"],
                        "parameters": dict(sorted(arm["parameters"].items())),
                    },
                ]
                for name, arm in self.arms.items()
            ]
        if self.probes:
            out["probes"] = {
                name: dict(sorted(options.items())) for name, options in sorted(self.probes.items())
            }
        if self.sample:
            out["sample"] = {
                "method": self.sample.method,
                "n": self.sample.n,
                "seed": self.sample.seed,
                "bounds": [[k, list(v)] for k, v in self.sample.bounds.items()],
            }
        return out


def load_spec(path: str | Path) -> Spec:
    """Read and validate a TOML sweep spec; raise ``SpecError`` naming the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(f"{path}: cannot read the spec ({err.strerror or err})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None
    return parse_spec(data, source=str(path))


def parse_spec(data: dict[str, Any], source: str = "spec") -> Spec:
    """Validate a spec given as data (the parsed TOML); raise ``SpecError`` naming the key."""

    def error(key: str, message: str) -> SpecError:
        return SpecError(f"{source}: {key}: {message}")

    for key in data:
        if key not in _TOP_KEYS:
            raise error(key, f"unknown table; expected {', '.join(f'[{k}]' for k in _TOP_KEYS)}")
    tables = {}
    for key in _TOP_KEYS:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise error(key, f"expected a table [{key}], got {_show(value)}")
        tables[key] = value
    sweep = tables["sweep"]
    if "sweep" not in data:
        raise error("sweep", "missing table [sweep] (with at least name and days or steps)")
    for key in sweep:
        if key not in _SWEEP_KEYS:
            raise error(f"sweep.{key}", "unknown key; expected one of " + ", ".join(_SWEEP_KEYS))

    name = sweep.get("name")
    if not isinstance(name, str) or not name.strip():
        raise error("sweep.name", 'required: a non-empty string, e.g. name = "checkpoint-timing"')
    description = sweep.get("description", "")
    if not isinstance(description, str):
        raise error("sweep.description", f"expected a string, got {_show(description)}")

    scenario = _check_scenario(sweep.get("scenario"), error, "sweep.scenario")

    if ("days" in sweep) == ("steps" in sweep):
        raise error("sweep.days", "give exactly one of days = 30 or steps = 720")
    if "days" in sweep:
        days = sweep["days"]
        if isinstance(days, bool) or not isinstance(days, int | float) or not days > 0:
            raise error("sweep.days", f"expected a positive number of days, got {_show(days)}")
        steps = round(days * 24)
        if steps < 1:
            raise error("sweep.days", f"{days} days is less than one step (1 h)")
    else:
        steps = _int(sweep["steps"], 1, error, "sweep.steps", "a positive number of hours")
    replicates = _int(sweep.get("replicates", 1), 1, error, "sweep.replicates", "an integer >= 1")
    seed = _int(sweep.get("seed", 0), 0, error, "sweep.seed", "a non-negative integer")
    seeds = None
    if "seeds" in sweep:
        seeds = _parse_seeds(sweep, error)
        replicates = len(seeds)
    record_every = _int(
        sweep.get("record_every", 24), 1, error, "sweep.record_every", "an integer >= 1 (steps)"
    )

    parameters = {}
    for pname, value in tables["parameters"].items():
        parameters[pname] = _check_param(pname, value, error, f"parameters.{pname}")

    arms = _parse_arms(tables["arms"], scenario, error)

    factors: dict[str, list[Any]] = {}
    for pname, values in tables["factors"].items():
        key = f"factors.{pname}"
        _check_name(pname, error, key)
        if not isinstance(values, list) or not values:
            raise error(key, f"expected a non-empty list of values, got {_show(values)}")
        checked = [_check_param(pname, v, error, f"{key}[{i}]") for i, v in enumerate(values)]
        if len(set(map(repr, checked))) != len(checked):
            raise error(key, f"values repeat: {checked} (each value once; use replicates)")
        if pname in parameters:
            raise error(key, "also set in [parameters]; a parameter is fixed or varied, not both")
        for arm_name, arm in arms.items():
            if pname in arm["parameters"]:
                raise error(
                    key, f"also set in [arms.{arm_name}]; an arm fixes it, a factor varies it"
                )
        factors[pname] = checked

    sample = None
    if "sample" in data:
        sample = _parse_sample(tables["sample"], seed, error)
        for pname in sample.bounds:
            key = f"sample.bounds.{pname}"
            if pname in parameters:
                raise error(key, "also set in [parameters]; a parameter is fixed or varied")
            if pname in factors:
                raise error(key, "also a factor; a parameter is a factor or sampled, not both")
            for arm_name, arm in arms.items():
                if pname in arm["parameters"]:
                    raise error(key, f"also set in [arms.{arm_name}]; fixed there, sampled here")

    outcome = dict(_OUTCOME_DEFAULTS)
    for key, value in tables["outcome"].items():
        if key not in _OUTCOME_DEFAULTS:
            raise error(f"outcome.{key}", "unknown key; expected " + ", ".join(_OUTCOME_DEFAULTS))
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise error(f"outcome.{key}", f"expected a positive number, got {_show(value)}")
        if key == "escape_fraction" and value > 1:
            raise error(f"outcome.{key}", f"expected a fraction in (0, 1], got {value}")
        outcome[key] = float(value)

    probes = _parse_probes(tables["probes"], error)

    base = _resolve(scenario, parameters)
    arm_bases = {  # the arm's scenario (else the sweep's), [parameters], then the arm's own
        arm_name: _resolve(arm["scenario"], parameters, arm["parameters"])
        for arm_name, arm in arms.items()
    }
    spec = Spec(
        name=name.strip(),
        description=description.strip(),
        scenario=scenario,
        steps=steps,
        replicates=replicates,
        seed=seed,
        record_every=record_every,
        parameters=parameters,
        factors=factors,
        sample=sample,
        outcome=outcome,
        base=base,
        seeds=seeds,
        arms=arms,
        arm_bases=arm_bases,
        probes=probes,
    )
    _check_domains(spec, error)
    return spec


def _check_scenario(scenario: Any, error: Callable, key: str) -> str | None:
    """A scenario name from abm.scenarios, or None (the defaults)."""
    if scenario is None:
        return None
    if not isinstance(scenario, str):
        raise error(key, f"expected a scenario name, got {_show(scenario)}")
    from abm.scenarios import scenario_params

    try:
        scenario_params(scenario)
    except ValueError as err:
        raise error(key, str(err)) from None
    return scenario


def _resolve(scenario: str | None, parameters: dict[str, Any], overrides=None) -> dict[str, Any]:
    """Every model parameter: the defaults, then the scenario, then ``parameters``, then
    ``overrides`` (an arm's own)."""
    from abm.run import build_params

    resolved = P.defaults()
    resolved.update(P.validate(build_params(scenario, parameters)))
    resolved.update(overrides or {})
    return resolved


def _parse_seeds(sweep: dict[str, Any], error: Callable) -> tuple[int, ...]:
    seeds = sweep["seeds"]
    if "seed" in sweep:
        raise error("sweep.seeds", "give seed (a master seed) or seeds (a list), not both")
    if not isinstance(seeds, list) or not seeds:
        raise error("sweep.seeds", f"expected a non-empty list of seeds, got {_show(seeds)}")
    for i, value in enumerate(seeds):
        _int(value, 0, error, f"sweep.seeds[{i}]", "a non-negative integer")
    if len(set(seeds)) != len(seeds):
        raise error("sweep.seeds", f"seeds repeat: {seeds} (each replicate needs its own seed)")
    if "replicates" in sweep and sweep["replicates"] != len(seeds):
        raise error(
            "sweep.replicates",
            f"{sweep['replicates']!r}, but {len(seeds)} seeds are listed; leave replicates out",
        )
    return tuple(seeds)


def _parse_arms(
    table: dict[str, Any], scenario: str | None, error: Callable
) -> dict[str, dict[str, Any]]:
    """``[arms.NAME]`` tables: each an optional ``scenario`` and parameter overrides."""
    arms: dict[str, dict[str, Any]] = {}
    for arm_name, arm in table.items():
        key = f"arms.{arm_name}"
        if not arm_name.strip():
            raise error("arms", "an arm needs a non-empty name")
        if not isinstance(arm, dict):
            raise error(key, f"expected a table of overrides (may be empty), got {_show(arm)}")
        arm_scenario = _check_scenario(arm.get("scenario", scenario), error, f"{key}.scenario")
        overrides = {
            pname: _check_param(pname, value, error, f"{key}.{pname}")
            for pname, value in arm.items()
            if pname != "scenario"
        }
        arms[arm_name] = {"scenario": arm_scenario, "parameters": overrides}
    if len(arms) == 1:
        raise error("arms", "one arm only; give at least two, or use [parameters]")
    return arms


def _parse_probes(table: dict[str, Any], error: Callable) -> dict[str, dict[str, Any]]:
    """``[probes.NAME]`` tables, checked by building the probes once (``make_probes``)."""
    from abm.analysis.probes import make_probes

    for name, options in table.items():
        try:
            make_probes({name: options})
        except (ValueError, TypeError) as err:
            raise error(f"probes.{name}", str(err)) from None
    return {name: dict(options) for name, options in table.items()}


def _parse_sample(table: dict[str, Any], master_seed: int, error: Callable) -> Sample:
    for key in table:
        if key not in _SAMPLE_KEYS:
            raise error(f"sample.{key}", "unknown key; expected " + ", ".join(_SAMPLE_KEYS))
    method = table.get("method")
    if method not in SAMPLE_METHODS:
        raise error("sample.method", f'expected "lhs" or "sobol", got {_show(method)}')
    if "n" not in table:
        raise error("sample.n", "required: the number of sample points (sobol: base samples)")
    n = _int(table["n"], 1, error, "sample.n", "an integer >= 1")
    if method == "sobol" and n & (n - 1):
        raise error("sample.n", f"{n}: the sobol method needs a power of 2 (e.g. 32, 64, 128)")
    seed = _int(table.get("seed", master_seed), 0, error, "sample.seed", "a non-negative integer")
    bounds_table = table.get("bounds")
    if not isinstance(bounds_table, dict) or not bounds_table:
        raise error("sample.bounds", "required: a table [sample.bounds] of name = [low, high]")
    bounds = {}
    for pname, pair in bounds_table.items():
        key = f"sample.bounds.{pname}"
        _check_name(pname, error, key)
        if not isinstance(pair, list) or len(pair) != 2:
            raise error(key, f"expected [low, high], got {_show(pair)}")
        low = _check_param(pname, pair[0], error, f"{key}[0]")
        high = _check_param(pname, pair[1], error, f"{key}[1]")
        if P.PARAMS[pname].kind is bool:
            raise error(key, "a true/false parameter cannot be sampled; make it a factor")
        if low is None or high is None or not low < high:
            raise error(key, f"expected low < high, got [{low}, {high}]")
        bounds[pname] = (low, high)
    return Sample(method=method, n=n, seed=seed, bounds=bounds)


def _check_name(name: str, error: Callable, key: str) -> None:
    if name == "rng":
        raise error(
            key, "seeds come from sweep.seed (or sweep.seeds) and sweep.replicates, not from rng"
        )
    if name not in P.PARAMS:
        try:
            P.validate({name: None})
        except ValueError as err:
            raise error(key, str(err)) from None


def _check_param(name: str, value: Any, error: Callable, key: str) -> Any:
    _check_name(name, error, key)
    try:
        return P.validate({name: value})[name]
    except ValueError as err:
        raise error(key, str(err)) from None


def _check_domains(spec: Spec, error: Callable) -> None:
    """Cross-parameter checks the model makes at construction (e.g. the founder tumour must fit
    the grid): build one model for each distinct domain among the points, before any run."""
    from abm.model import TumorModel

    names = ("width", "height", "initial_tumor_cells")
    varied = [n for n in names if n in spec.varied]
    seen = set()
    points = iter_points(spec) if varied or spec.arms else [{}]
    for point in points:
        params = spec.params_for(point)
        domain = tuple(params[n] for n in names)
        if domain in seen:
            continue
        seen.add(domain)
        if len(seen) > 20:  # a sampled domain: the per-parameter ranges were checked already
            return
        try:
            TumorModel(rng=0, **params)
        except ValueError as err:
            if spec.arms and not varied:
                raise error(f"arms.{point[ARM]}", str(err)) from None
            if not varied:
                raise error("parameters", str(err)) from None
            where = ", ".join(f"{n} = {point[n]}" for n in varied)
            key = "factors" if varied[0] in spec.factors else "sample.bounds"
            raise error(key, f"at {where}: {err}") from None


def _int(value: Any, low: int, error: Callable, key: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise error(key, f"expected {what}, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})" if not isinstance(value, dict) else "a table"


def spec_hash(spec: Spec) -> str:
    """SHA-256 of the normalised spec (what makes two specs the same sweep)."""
    return hashlib.sha256(_canonical(spec.normalised())).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


# --- expansion --------------------------------------------------------------------------------


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
        values = _saltelli(sample, names)
    points = []
    for row in values:
        point = {}
        for name, value in zip(names, row, strict=True):
            point[name] = P.PARAMS[name].validate(
                round(float(value)) if P.PARAMS[name].kind is int else float(value)
            )
        points.append(point)
    return points


def _saltelli(sample: Sample, names: list[str]) -> np.ndarray:
    import warnings

    from SALib.sample import sobol as salib_sobol

    problem = salib_problem(sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return salib_sobol.sample(problem, sample.n, calc_second_order=False, seed=sample.seed)


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


def expand(spec: Spec) -> list[Run]:
    """The run list, deterministic from the spec. Run ids are ``p<point>-r<replicate>``."""
    seeds = list(spec.seeds) if spec.seeds else replicate_seeds(spec.seed, spec.replicates)
    runs = []
    for point_id, point in enumerate(iter_points(spec)):
        for k, seed in enumerate(seeds):
            runs.append(Run(f"p{point_id:05d}-r{k:03d}", point_id, k, seed, point))
    return runs


# --- one run (executed in a worker) -----------------------------------------------------------

# a run's time series, summary row and probe results ({probe name: result})
Result = tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]


def make_task(spec: Spec, run: Run) -> dict[str, Any]:
    """Everything a worker needs for one run, as plain picklable data."""
    return {
        **run.as_dict(),
        "model": {**spec.params_for(run.varied), "rng": run.seed},
        "steps": spec.steps,
        "record_every": spec.record_every,
        "outcome": spec.outcome,
        "varied_names": spec.varied,
        "probes": spec.probes,
    }


def execute_run(task: dict[str, Any]) -> Result:
    """Run one simulation; return its thinned time series (with id and parameter columns), its
    summary row and its probe results (``{}`` without probes). Runs in a worker process; writes
    nothing."""
    from abm.run import simulate

    if task.get("probes"):
        df, model, probed = _simulate_with_probes(task)
    else:
        df, model = simulate(task["model"], task["steps"], record_every=task["record_every"])
        probed = {}
    full = model.datacollector.get_model_vars_dataframe()
    columns = {name: task[name] for name in ID_COLUMNS}
    columns.update({name: _cell(task["parameters"][name]) for name in task["varied_names"]})
    ids = pd.DataFrame({k: [v] * len(df) for k, v in columns.items()})
    df = pd.concat([ids, df.reset_index(drop=True)], axis=1)
    p = task["model"]
    summary = {**columns, **summarise(full, sites=p["width"] * p["height"], **task["outcome"])}
    return df, summary, probed


def _simulate_with_probes(task: dict[str, Any]) -> tuple[pd.DataFrame, Any, dict[str, Any]]:
    """``abm.run.simulate`` with each probe's hooks called around every step. The probes only
    read the model, so the trajectory (and the time series) is the one ``simulate`` gives."""
    from abm.analysis.probes import make_probes
    from abm.model import TumorModel

    probes = make_probes(task["probes"])
    model = TumorModel(**task["model"])
    for _ in range(task["steps"]):
        for probe in probes:
            probe.before_step(model)
        model.step()
        for probe in probes:
            probe.after_step(model)
        if not model.running:  # as simulate: stop when the tumour is cleared
            break
    df = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    every = task["record_every"]
    if every > 1:  # as simulate: every record_every steps, and the final row
        df = df[(df["Step"] % every == 0) | (df.index == len(df) - 1)].reset_index(drop=True)
    return df, model, {probe.name: probe.result(model) for probe in probes}


def _cell(value: Any) -> Any:
    """A parameter value as a table cell: ``None`` (therapy not given) becomes NaN."""
    return math.nan if value is None else value


# --- storage ----------------------------------------------------------------------------------


def run_path(out: Path, run_id: str) -> Path:
    return Path(out) / "runs" / f"{run_id}.parquet"


def write_run(
    out: Path, df: pd.DataFrame, summary: dict[str, Any], probes: dict[str, Any] | None = None
) -> Path:
    """Write one run's file atomically, its summary row (and probe results, if any) in the
    Parquet metadata: the file stays the single unit of a run, so resuming needs nothing else."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from abm.run import atomic_write_bytes

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[RUN_META_KEY] = json.dumps(_json_safe(summary)).encode()
    if probes:
        meta[PROBES_META_KEY] = encode_probes(probes)
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buf)
    path = run_path(out, summary["run_id"])
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_run_summary(path: Path) -> dict[str, Any]:
    """The summary row stored in a run file (reads the footer only)."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path).metadata or {}  # (read_schema keeps ~25 kB per file)
    if RUN_META_KEY not in meta:
        raise SweepError(f"{path}: not a run file of an abm sweep (no run summary in it)")
    row = json.loads(meta[RUN_META_KEY])
    return {k: (math.nan if v is None else v) for k, v in row.items()}


def read_run_probes(path: Path) -> dict[str, Any]:
    """``{probe name: result}`` stored in a run file, numpy arrays decoded (``{}`` if the sweep
    had no probes)."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path).metadata or {}
    if RUN_META_KEY not in meta:
        raise SweepError(f"{path}: not a run file of an abm sweep (no run summary in it)")
    return decode_probes(meta[PROBES_META_KEY]) if PROBES_META_KEY in meta else {}


_ARRAY = "__ndarray__"


def encode_probes(results: dict[str, Any]) -> bytes:
    """Probe results as JSON bytes; each numpy array becomes ``{"__ndarray__": base64 of the
    zlib-compressed ``np.save`` bytes, "dtype", "shape"}``, so dtype and shape survive."""

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=False)
            data = base64.b64encode(zlib.compress(buf.getvalue(), 6)).decode("ascii")
            return {_ARRAY: data, "dtype": value.dtype.str, "shape": list(value.shape)}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [encode(v) for v in value]
        return value

    return json.dumps(encode(results)).encode()


def decode_probes(data: bytes | str) -> dict[str, Any]:
    """The inverse of ``encode_probes``."""

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if _ARRAY in value:
                raw = zlib.decompress(base64.b64decode(value[_ARRAY]))
                return np.load(io.BytesIO(raw), allow_pickle=False)
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(json.loads(data))


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def build_summary(out: Path, run_ids: Iterable[str]) -> pd.DataFrame:
    """One row per run, in run-list order, from the run files (so resuming changes nothing)."""
    rows = [read_run_summary(run_path(out, run_id)) for run_id in run_ids]
    return pd.DataFrame(rows)


def read_manifest(out: Path) -> dict[str, Any]:
    path = Path(out) / "manifest.json"
    if not path.exists():
        raise SweepError(f"{out}: not a sweep directory (no manifest.json)")
    return json.loads(path.read_text())


@dataclass(frozen=True)
class RunRecord:
    """One finished run of a sweep directory, as the analysis sees it. The time series and the
    probe results are read from the run's file on demand (a sweep may hold thousands)."""

    run_id: str
    point_id: int
    replicate: int
    seed: int
    varied: dict[str, Any]  # the point's varied values (``arm`` first when there are arms)
    path: Path

    @property
    def arm(self) -> str | None:
        return self.varied.get(ARM)

    def series(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The run's time series (with its id and varied-parameter columns)."""
        return pd.read_parquet(self.path, columns=columns)

    def probes(self) -> dict[str, Any]:
        """``{probe name: result}`` (``read_run_probes``)."""
        return read_run_probes(self.path)


@dataclass(frozen=True)
class SweepData:
    """A sweep directory read back (``load_sweep``): its manifest, its summary (one row per
    finished run, in run-list order) and its finished runs."""

    dir: Path
    manifest: dict[str, Any]
    summary: pd.DataFrame
    runs: list[RunRecord]

    @property
    def spec(self) -> dict[str, Any]:
        """The normalised spec (``Spec.normalised``)."""
        return self.manifest["spec"]

    @property
    def varied(self) -> list[str]:
        return self.manifest["varied"]

    @property
    def complete(self) -> bool:
        return len(self.runs) == self.manifest["n_runs"]

    def run(self, run_id: str) -> RunRecord:
        for record in self.runs:
            if record.run_id == run_id:
                return record
        raise KeyError(f"{self.dir}: no finished run {run_id!r}")

    def probes(self, name: str) -> dict[str, Any]:
        """One probe's result for every finished run: ``{run_id: result}``."""
        return {r.run_id: r.probes().get(name) for r in self.runs}


def load_sweep(out: str | Path) -> SweepData:
    """Read a sweep directory (finished or not) for analysis: the manifest, the summary (read
    from ``summary.parquet`` when complete, else rebuilt from the finished runs' files) and a
    ``RunRecord`` per finished run, in run-list order."""
    out = Path(out)
    manifest = read_manifest(out)
    runs = [
        RunRecord(
            r["run_id"], r["point_id"], r["replicate"], r["seed"], r["parameters"],
            run_path(out, r["run_id"]),
        )
        for r in manifest["runs"]
    ]
    done = [r for r in runs if r.path.exists()]
    path = out / "summary.parquet"
    if len(done) == len(runs) and path.exists():
        summary = pd.read_parquet(path)
    else:
        summary = build_summary(out, [r.run_id for r in done])
    return SweepData(out, manifest, summary, done)


# --- backends ---------------------------------------------------------------------------------



class RunFailed(RuntimeError):
    """A run raised an error in the model (not a lost worker): retrying would not help."""


def _worker_init(runner_pid: int) -> None:
    """Set up a pool worker: Ctrl-C reaches the whole process group, but the runner stops the
    workers itself; and a worker exits on its own if the runner is killed (``kill -9``), rather
    than waiting forever on its task queue."""
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == runner_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="abm-watch-runner", daemon=True).start()


class _TaskQueue:
    """Tasks taken lazily, in run-list order, from an iterator; runs to retry come first."""

    def __init__(self, tasks: Iterable[dict[str, Any]]) -> None:
        self._source = iter(tasks)
        self._head: dict[str, Any] | None = None
        self._retry: list[dict[str, Any]] = []

    def _fill(self) -> None:
        if self._head is None and not self._retry:
            self._head = next(self._source, None)

    def __bool__(self) -> bool:
        self._fill()
        return bool(self._retry) or self._head is not None

    def peek(self) -> dict[str, Any]:
        self._fill()
        return self._retry[-1] if self._retry else self._head

    def pop(self) -> dict[str, Any]:
        self._fill()
        if self._retry:
            return self._retry.pop()
        task, self._head = self._head, None
        return task

    def extend(self, tasks: Iterable[dict[str, Any]]) -> None:
        self._retry.extend(tasks)


def run_serial(tasks: Iterable[dict[str, Any]]) -> Iterator[Result]:
    for task in tasks:
        try:
            result = execute_run(task)
        except Exception as err:
            raise RunFailed(f"run {task['run_id']} failed: {type(err).__name__}: {err}") from err
        yield result


def run_process(
    tasks: Iterable[dict[str, Any]],
    workers: int,
    *,
    max_losses: int = 3,
    log: Callable[[str], None] = print,
) -> Iterator[Result]:
    """Runs in a pool of ``workers`` processes (spawned: each imports ``abm`` once). At most two
    runs per worker are in flight, so nothing piles up in memory. A worker that dies breaks the
    pool: the pool is restarted and the runs that were in flight are retried; a run lost
    ``max_losses`` times (it probably kills its worker, e.g. out of memory) stops the sweep."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # not fork: the runner has threads (progress bar)
    pending = _TaskQueue(tasks)
    losses: dict[str, int] = {}
    while pending:
        pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
        )
        in_flight: dict[Future, dict[str, Any]] = {}
        lost: list[dict[str, Any]] = []
        salvaged: list[Result] = []
        try:
            while pending or in_flight:
                while pending and len(in_flight) < 2 * workers:
                    future = pool.submit(execute_run, pending.peek())
                    in_flight[future] = pending.pop()
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    task = in_flight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        lost.append(task)
                        continue
                    except Exception as err:
                        raise RunFailed(
                            f"run {task['run_id']} failed: {type(err).__name__}: {err}"
                        ) from err
                    yield result
                if lost:
                    raise BrokenProcessPool
        except BrokenProcessPool:
            for future, task in in_flight.items():  # finished before the pool broke: keep
                if future.done() and not future.cancelled() and future.exception() is None:
                    salvaged.append(future.result())
                else:
                    lost.append(task)
            in_flight.clear()
        finally:
            pending.extend(in_flight.values())
            _stop_pool(pool)
        yield from salvaged
        if lost:
            for task in lost:
                losses[task["run_id"]] = losses.get(task["run_id"], 0) + 1
                if losses[task["run_id"]] >= max_losses:
                    raise RunFailed(
                        f"run {task['run_id']} was lost with a dying worker process "
                        f"{max_losses} times (out of memory? see `dmesg`; or the workers "
                        "cannot start: from a Python script, call run_sweep under "
                        '`if __name__ == "__main__":`)'
                    )
            log(f"a worker process died; restarting the pool and retrying {len(lost)} runs")
            pending.extend(lost)


def _stop_pool(pool: Any) -> None:
    """Stop a process pool now: queued runs are cancelled and running ones abandoned (their
    workers are terminated; the runs are simply missing and run again next time)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def run_dask(
    tasks: Iterable[dict[str, Any]], workers: int | None, scheduler: str | None, key_prefix: str
) -> Iterator[Result]:
    """Runs on Dask: an existing cluster (``scheduler`` = ``tcp://host:8786``) or a
    ``LocalCluster`` of ``workers`` single-threaded processes. One task per run returns the run's
    data to the runner, which writes it; a lost worker makes Dask reschedule the run elsewhere,
    and a failed task is retried once."""
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        pending = _TaskQueue(tasks)

        def window() -> int:
            return max(2, 2 * sum(client.nthreads().values()))

        def submit(task: dict[str, Any]) -> Future:
            return client.submit(
                execute_run, task, key=f"{key_prefix}-{task['run_id']}", retries=1, pure=False
            )

        futures = as_completed(with_results=True, raise_errors=False)
        limit = window()
        submitted = {}
        while pending and len(submitted) < limit:
            task = pending.pop()
            fut = submit(task)
            submitted[fut.key] = task
            futures.add(fut)
        for fut, result in futures:
            task = submitted.pop(fut.key)
            if fut.status == "error":
                err = fut.exception()
                raise RunFailed(f"run {task['run_id']} failed: {type(err).__name__}: {err}")
            fut.release()
            yield result
            if pending:
                limit = window()
                while pending and len(submitted) < limit:
                    task = pending.pop()
                    new = submit(task)
                    submitted[new.key] = task
                    futures.add(new)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --- the runner -------------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    out: Path
    total: int
    already_done: int
    ran: int
    summary: pd.DataFrame


class _DirLock:
    """An exclusive lock on the sweep directory, released by the OS when the process ends (even
    on ``kill -9``), so two runners never write the same runs."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".lock"
        self.fh = None

    def __enter__(self) -> _DirLock:
        import fcntl

        self.fh = open(self.path, "a+")  # noqa: SIM115 - held for the sweep's lifetime
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            pid = self.fh.read().strip() or "?"
            self.fh.close()
            raise SweepError(
                f"{self.path.parent}: another `abm sweep` (pid {pid}) is writing to this "
                "directory; wait for it or stop it first"
            ) from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _manifest(spec: Spec, runs: list[Run], spec_text: str | None) -> dict[str, Any]:
    from abm.run import provenance

    fingerprint = {
        "spec": spec.normalised(),
        "base": spec.base_parameters,
        "runs": [r.as_dict() for r in runs],
    }
    return {
        "format": FORMAT,
        "spec_hash": spec_hash(spec),
        "content_hash": hashlib.sha256(_canonical(fingerprint)).hexdigest(),
        "spec": spec.normalised(),
        "spec_text": spec_text,
        "varied": spec.varied,
        "base_parameters": spec.base_parameters,
        "n_points": spec.n_points,
        "n_runs": len(runs),
        "runs": [r.as_dict() for r in runs],
        "provenance": provenance(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "completed": None,
    }


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two JSON values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [d for k in keys for d in _diff(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".") or "(all)"]


def _check_existing(out: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest already in ``out`` if it is the same sweep; ``SweepError`` otherwise."""
    path = out / "manifest.json"
    if not path.exists():
        runs_dir = out / "runs"
        if runs_dir.exists() and any(runs_dir.glob("*.parquet")):
            raise SweepError(f"{out}: has runs/ but no manifest.json; use a new --out directory")
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SweepError(f"{path}: unreadable ({err}); use a new --out directory") from None
    if old.get("format") != FORMAT:
        raise SweepError(f"{out}: not a sweep directory of this version ({old.get('format')})")
    fix = "use a new --out directory, or delete this one to start over"
    if old["spec_hash"] != manifest["spec_hash"]:
        changed = _diff(old.get("spec"), manifest["spec"])
        raise SweepError(
            f"{out} holds a sweep with a different spec (changed: {', '.join(changed)}); {fix}"
        )
    if old["content_hash"] != manifest["content_hash"]:
        changed = _diff(old.get("base_parameters"), manifest["base_parameters"])
        what = (
            f"the scenario or model defaults changed since it started ({', '.join(changed)})"
            if changed
            else "the expanded run list differs (a different SciPy/SALib sampler?)"
        )
        raise SweepError(f"{out}: same spec, but {what}; {fix}")
    return old


def run_sweep(
    spec: Spec,
    out: str | Path,
    *,
    backend: str = "process",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    spec_text: str | None = None,
    log: Callable[[str], None] = print,
) -> SweepOutcome:
    """Run every missing run of ``spec`` into ``out`` and (re)build ``summary.parquet``.

    Args:
        spec: a validated spec (``load_spec``).
        out: the sweep directory; created if needed. An existing one must hold the same sweep.
        backend: ``serial`` (in this process), ``process`` (a local process pool) or ``dask``.
        workers: processes for ``process`` and a local Dask cluster (default: all cores).
        scheduler: address of an existing Dask scheduler (implies ``backend="dask"``).
        progress: show a progress bar (runs done, rate, time left).
        spec_text: the spec file's text, kept in the manifest for the record.
        log: where one-line messages go.
    """
    from abm.run import provenance, write_json, write_table

    if scheduler:
        backend = "dask"
    if backend not in BACKENDS:
        raise SweepError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise SweepError(f"workers = {workers}: expected an integer >= 1")
    workers = workers or os.cpu_count() or 1
    out = Path(out)
    runs = expand(spec)
    manifest = _manifest(spec, runs, spec_text)
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    with _DirLock(out):
        old = _check_existing(out, manifest)
        if old is None:
            write_json(manifest, out / "manifest.json")
        else:
            before = (old.get("provenance") or {}).get("git_commit")
            now = manifest["provenance"]["git_commit"]
            if before and now and before != now:
                log(
                    f"warning: the code changed since this sweep started (git {before[:8]} -> "
                    f"{now[:8]}); finished runs are kept as they are"
                )
        runs_dir = out / "runs"
        runs_dir.mkdir(exist_ok=True)
        for tmp in runs_dir.glob(".*.tmp"):  # left by a runner killed mid-write
            tmp.unlink(missing_ok=True)
        done = {p.stem for p in runs_dir.glob("*.parquet")}
        missing = [r for r in runs if r.run_id not in done]
        already = len(runs) - len(missing)
        if missing:
            where = {
                "serial": "in this process",
                "process": f"on {workers} local processes",
                "dask": f"on Dask ({scheduler})"
                if scheduler
                else f"on a local Dask cluster of {workers} workers",
            }[backend]
            resumed = f" ({already} already done)" if already else ""
            log(f"sweep {spec.name!r}: {len(missing)} of {len(runs)} runs to do{resumed}, {where}")
        tasks = (make_task(spec, r) for r in missing)  # lazily: one dict per run otherwise
        if backend == "serial" or not missing:
            results = run_serial(tasks)
        elif backend == "process":
            results = run_process(tasks, min(workers, len(missing)), log=log)
        else:
            results = run_dask(tasks, workers, scheduler, f"abm-{manifest['content_hash'][:12]}")
        from tqdm import tqdm

        bar = tqdm(
            total=len(runs),
            initial=already,
            unit="run",
            desc=spec.name,
            disable=not progress or not missing,
            dynamic_ncols=True,
        )
        try:
            for df, summary, probed in results:
                write_run(out, df, summary, probed)
                bar.update(1)
        finally:
            bar.close()
            close = getattr(results, "close", None)
            if close:
                close()
        summary = build_summary(out, [r.run_id for r in runs])
        write_table(summary, out / "summary.parquet")
        manifest = old or manifest
        manifest["completed"] = datetime.now(UTC).isoformat(timespec="seconds")
        manifest["completed_with"] = {**provenance(), "backend": backend}
        write_json(manifest, out / "manifest.json")
    return SweepOutcome(out, len(runs), already, len(missing), summary)
