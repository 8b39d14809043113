"""A sweep spec: the validated description of a sweep (``Spec``), read from TOML or data.

The tables and keys are declared in :mod:`abm.sweep.schema`; here are the rules that span keys
(``days`` or ``steps``, ``seed`` or ``seeds``, a parameter fixed or varied but not both), the
parameters resolved once with ``abm.params.resolve``, and the spec's hash.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abm import params as P
from abm.sweep import schema as S
from abm.sweep.schema import Error, SpecError, canonical, check_name, check_param, show

ARM = "arm"  # the column naming a run's arm
PATIENT = "patient"  # the column naming a run's patient (a cohort's point within an arm)


@dataclass(frozen=True)
class Patients:
    """A virtual-patient cohort: ``n`` draws of the parameters in ``draws`` (name -> (the
    distribution, its arguments)), reproducible from ``seed`` (``abm.sweep.expansion``);
    ``correlation``: (name, name, Spearman rank correlation) of pairs of drawn parameters
    drawn together (a Gaussian copula), in the spec's order."""

    n: int
    seed: int
    draws: dict[str, tuple[str, tuple[Any, ...]]]
    correlation: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True)
class Response:
    """How a cohort's responses are read (``abm.analysis.response``)."""

    baseline_day: float
    stratify: str | None = None
    bins: int | None = None
    min_sd_days: float | None = None  # None: abm.analysis.response.MIN_SD_DAYS


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
    patients: Patients | None = None
    response: Response | None = None
    species: str | None = None  # [sweep] species: abm.species preset, before the scenario
    engine: str = "mesa"  # [sweep] engine: "mesa" or "fast" (abm.run.ENGINES)

    @property
    def varied(self) -> list[str]:
        """Names of what differs between points (``arm`` first when there are arms, then
        ``patient`` and the patients' parameters in a cohort)."""
        return (
            ([ARM] if self.arms else [])
            + ([PATIENT, *self.patients.draws] if self.patients else [])
            + list(self.factors)
            + (list(self.sample.bounds) if self.sample else [])
        )

    @property
    def n_points(self) -> int:
        grid = math.prod(len(v) for v in self.factors.values()) * max(len(self.arms), 1)
        grid *= self.patients.n if self.patients else 1
        return grid * (self.sample.n_points if self.sample else 1)

    @property
    def n_runs(self) -> int:
        return self.n_points * self.replicates

    @property
    def base_parameters(self) -> dict[str, Any]:
        """The resolved parameters every point starts from (per arm when there are arms)."""
        return self.arm_bases if self.arms else self.base

    def params_for(self, point: dict[str, Any]) -> dict[str, Any]:
        """The model's keyword arguments at one point (without ``rng``)."""
        rest = {canonical(k): v for k, v in point.items() if k not in (ARM, PATIENT)}
        base = self.arm_bases[point[ARM]] if self.arms else self.base
        return {**base, **rest}

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
        # only when used, so sweeps started before arms, seed lists and probes keep their hash
        if self.seeds is not None:
            out["sweep"]["seeds"] = list(self.seeds)
        if self.species is not None:
            out["sweep"]["species"] = self.species
        if self.engine != "mesa":
            out["sweep"]["engine"] = self.engine
        if self.arms:
            out["arms"] = [
                [name, {"scenario": arm["scenario"],
                        "parameters": dict(sorted(arm["parameters"].items()))}]
                for name, arm in self.arms.items()
            ]
        if self.probes:
            out["probes"] = {
                name: dict(sorted(options.items())) for name, options in sorted(self.probes.items())
            }
        if self.patients:
            out["patients"] = {
                "n": self.patients.n,
                "seed": self.patients.seed,
                "draws": [[k, kind, list(args)] for k, (kind, args) in self.patients.draws.items()],
            }
            if self.patients.correlation:  # (absent when none: earlier manifests still match)
                out["patients"]["correlation"] = [list(c) for c in self.patients.correlation]
        if self.response:
            out["response"] = {
                "baseline_day": self.response.baseline_day,
                "stratify": self.response.stratify,
                "bins": self.response.bins,
            }
            if self.response.min_sd_days is not None:
                out["response"]["min_sd_days"] = self.response.min_sd_days
        if self.sample:
            out["sample"] = {
                "method": self.sample.method,
                "n": self.sample.n,
                "seed": self.sample.seed,
                "bounds": [[k, list(v)] for k, v in self.sample.bounds.items()],
            }
        return out


def canonical_json(obj: Any) -> bytes:
    """JSON bytes that are the same for equal data (what the hashes are taken of)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def spec_hash(spec: Spec) -> str:
    """SHA-256 of the normalised spec (what makes two specs the same sweep)."""
    return hashlib.sha256(canonical_json(spec.normalised())).hexdigest()


def read_spec_text(path: str | Path) -> str:
    """A spec file's text: UTF-8, a leading byte-order mark dropped (Windows editors add one);
    ``SpecError`` naming the file when it cannot be read or is not UTF-8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SpecError(f"{path}: cannot read the spec ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(
            f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "save the spec as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def load_spec(path: str | Path, *, force: bool = False) -> Spec:
    """Read and validate a TOML sweep spec; raise ``SpecError`` naming the file and the key.
    ``force``: accept sizes above ``LIMITS`` (see ``check_size``)."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"load_spec: expected the path of a TOML spec file (str or Path), got "
                        f"{show(path)}; for a spec built in code use parse_spec(dict)")
    path = Path(path)
    text = read_spec_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None
    return parse_spec(data, source=str(path), force=force)


def parse_spec(data: dict[str, Any], source: str = "spec", *, force: bool = False) -> Spec:
    """Validate a spec given as data (the parsed TOML); raise ``SpecError`` naming the key.
    Sizes above ``LIMITS`` are refused unless ``force`` (checked before anything is expanded)."""

    def error(key: str, message: str) -> SpecError:
        return SpecError(f"{source}: {key}: {message}")

    if isinstance(data, Spec):
        raise TypeError("parse_spec: this is already a Spec (parsed); pass it to run_sweep as is")
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a dict of tables, e.g. {{'sweep': {{'name': 'x', "
                        f"'days': 30}}, 'parameters': {{'width': 50}}}}, got {show(data)}")
    tables = S.read_tables(data, error)
    sweep = S.read_table(tables["sweep"], S.SWEEP, "sweep", error)
    steps = _steps(sweep, error)
    if "seeds" in sweep:
        _check_seed_list(tables["sweep"], error)
        sweep["replicates"] = len(sweep["seeds"])
    for pname, value in tables["parameters"].items():
        if isinstance(value, list):  # most likely meant to vary it: say where that goes
            listed = json.dumps(value, default=str)
            raise error(f"parameters.{pname}", f"{listed} is a list, but [parameters] holds "
                        "one fixed value per parameter; to vary it, give its values under "
                        f"[factors] ({pname} = {listed}, the full grid), or its bounds under "
                        "[sample.bounds] (a space-filling sample)")
    parameters = {
        pname: check_param(pname, value, error, f"parameters.{pname}")
        for pname, value in tables["parameters"].items()
    }
    arms = _parse_arms(tables["arms"], sweep["scenario"], error)
    fixed = {"set in [parameters]": parameters}
    fixed.update({f"set in [arms.{a}]": arm["parameters"] for a, arm in arms.items()})
    factors = _parse_factors(tables["factors"], fixed, error)
    sample = None
    if "sample" in data:
        sample = _parse_sample(tables["sample"], sweep["seed"], error)
        _check_not_fixed(sample.bounds, "sample.bounds", {**fixed, "a factor": factors}, error)
    patients = response = None
    if "patients" in data:
        patients = _parse_patients(tables["patients"], sweep, fixed, factors, sample, error)
    if "response" in data:
        response = _parse_response(tables["response"], patients, steps, error)
    elif patients is not None:  # the default response: baseline day 0, min_sd_days default
        _warn_short_sd(0.0, steps, error)
    spec = Spec(
        name=sweep["name"],
        description=sweep["description"],
        scenario=sweep["scenario"],
        steps=steps,
        replicates=sweep["replicates"],
        seed=sweep["seed"],
        record_every=sweep["record_every"],
        parameters=parameters,
        factors=factors,
        sample=sample,
        outcome=S.read_table(tables["outcome"], S.OUTCOME, "outcome", error),
        base=P.resolve(sweep["scenario"], parameters, species=sweep["species"]),
        seeds=sweep.get("seeds"),
        arms=arms,
        # the arm's scenario (else the sweep's), [parameters], then the arm's own
        arm_bases={a: P.resolve(arm["scenario"], parameters, arm["parameters"],
                                species=sweep["species"])
                   for a, arm in arms.items()},
        probes=_parse_probes(tables["probes"], error, steps),
        patients=patients,
        response=response,
        species=sweep["species"],
        engine=sweep["engine"],
    )
    _check_arms_differ(spec, error)
    if not force:
        check_size(spec, error)
    _check_domains(spec, error)
    _check_engine(spec, error)
    return spec


def _check_engine(spec: Spec, error: Error) -> None:
    """With ``engine = "fast"``, every point must use only what the fast engine models
    (``abm.fast.unsupported``), checked before any run."""
    if spec.engine != "fast":
        return
    from abm.fast import unsupported
    from abm.sweep.expansion import iter_points

    for point in iter_points(spec):
        reason = unsupported(spec.params_for(point))
        if reason is not None:
            where = ", ".join(f"{k} = {v}" for k, v in point.items())
            raise error("sweep.engine", f"{reason}" + (f" (at {where})" if where else ""))


# Sizes above these are refused unless forced (``--force``, ``force=True``): far beyond every
# sweep in experiments/ (at most 120 days, 20 replicates, a few hundred runs), so most likely a
# typo, and a sweep of 10^6 runs writes a manifest of hundreds of MB before its first run.
LIMITS = {"days": 3650, "replicates": 1000, "sample.n": 10_000, "runs": 100_000}
MAX_CPU_HOURS = 24 * 7  # estimated CPU time of the whole sweep
# CPU seconds of a step, by engine: a part per step whatever the grid (the step's and the
# solvers' fixed costs, the data collection) and a part per site (benchmarks/bench_fast.py,
# docs/performance.md). 100 x 100 `escape` over 30 days takes 3.0-3.8 s on the Mesa engine
# (4.2-5.2 ms a step) and 0.53-0.64 s on the fast one (0.74-0.89 ms); the first 10 days of
# the defaults and of `escape` (2026-12-01, one process, quiet) took 2.0-2.3, 2.5-2.8, 4.6 and
# 14.7-16.2 ms a step at 30, 50, 100 and 200 sites a side on the Mesa engine and 0.31,
# 0.36-0.47, 0.76-0.78 and 2.8-3.5 ms on the fast one. Early in a run and on a quiet grid a
# step is cheaper, on a crowded grid dearer, so an estimate is rough.
SECONDS_PER_STEP = {"mesa": 1.5e-3, "fast": 2.5e-4}
SECONDS_PER_SITE_STEP = {"mesa": 3e-7, "fast": 7e-8}


def estimate_seconds(steps: int, sites: int, runs: int = 1, engine: str = "mesa") -> float:
    """A rough estimate of the CPU time of ``runs`` runs of ``steps`` on ``sites`` sites on
    ``engine`` (``"mesa"`` or ``"fast"``)."""
    per_step = SECONDS_PER_STEP[engine] + sites * SECONDS_PER_SITE_STEP[engine]
    return float(runs) * steps * per_step


def duration(seconds: float) -> str:
    """A duration for people: ``"about 3 min"``, ``"about 40 h"``, ``"about 2.3 years"``."""
    if seconds < 60:
        return f"about {max(seconds, 1):.0f} s"
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600)):
        if seconds >= 2 * size:
            return f"about {seconds / size:.3g} {unit}"
    return f"about {seconds / 60:.0f} min" if seconds < 7200 else f"about {seconds / 3600:.0f} h"


def sweep_sites(spec: Spec) -> int:
    """Grid sites of a run (the largest base when arms differ; varied sizes are not counted)."""
    bases = list(spec.arm_bases.values()) or [spec.base]
    return max(b["width"] * b["height"] for b in bases)


def size_line(spec: Spec) -> str:
    """The sweep's size and estimated CPU time, one line."""
    cpu = estimate_seconds(spec.steps, sweep_sites(spec), spec.n_runs, spec.engine)
    engine = f" on the {spec.engine} engine"
    if spec.patients is not None:
        arms = max(len(spec.arms), 1)
        others = spec.n_points // (spec.patients.n * arms)
        extra = f" x {others} points" if others != 1 else ""
        return (
            f"{count(spec.patients.n, 'patient')} x {count(arms, 'arm')}{extra} = "
            f"{count(spec.n_runs, 'run')} of {count(spec.steps, 'step')}, {duration(cpu)} of "
            f"CPU time{engine}"
        )
    return (
        f"{count(spec.n_points, 'point')} x {count(spec.replicates, 'replicate')} = "
        f"{count(spec.n_runs, 'run')} of {count(spec.steps, 'step')}, {duration(cpu)} of CPU "
        f"time{engine}"
    )


def count(n: int, noun: str) -> str:
    """``"1 run"``, ``"2 runs"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def check_size(spec: Spec, error: Error) -> None:
    """Refuse a sweep above ``LIMITS`` (or ``MAX_CPU_HOURS``) with its size and estimated time.
    Arithmetic only: nothing is expanded, so it is fast at any size."""
    cpu_hours = estimate_seconds(spec.steps, sweep_sites(spec), spec.n_runs, spec.engine) / 3600
    checks = [
        ("sweep.days", spec.steps / 24, LIMITS["days"], "days per run"),
        ("sweep.replicates", spec.replicates, LIMITS["replicates"], "replicates"),
        ("sample.n", spec.sample.n if spec.sample else 0, LIMITS["sample.n"], "sample points"),
        ("sweep", spec.n_runs, LIMITS["runs"], "runs"),
        ("sweep", cpu_hours, MAX_CPU_HOURS, "hours of CPU time"),
    ]
    for key, value, limit, what in checks:
        if value > limit:
            raise error(
                key, f"{size_line(spec)}: more than {limit:g} {what}, probably a mistake; "
                "if you mean it, add --force (force=True from Python)"
            )


def _steps(sweep: dict[str, Any], error: Error) -> int:
    if ("days" in sweep) == ("steps" in sweep):
        raise error("sweep.days", "give exactly one of days = 30 or steps = 720")
    return round(sweep["days"] * 24) if "days" in sweep else sweep["steps"]


def _check_seed_list(given: dict[str, Any], error: Error) -> None:
    if "seed" in given:
        raise error("sweep.seeds", "give seed (a master seed) or seeds (a list), not both")
    if "replicates" in given and given["replicates"] != len(given["seeds"]):
        raise error(
            "sweep.replicates",
            f"{P.value_text(given['replicates'])}, but {len(given['seeds'])} seeds are listed; "
            "leave replicates out",
        )


def _parse_arms(table: dict[str, Any], scenario: str | None, error: Error) -> dict[str, Any]:
    """``[arms.NAME]`` tables: each an optional ``scenario`` and parameter overrides."""
    arms: dict[str, dict[str, Any]] = {}
    for arm_name, arm in table.items():
        key = f"arms.{arm_name}"
        if not isinstance(arm_name, str) or not arm_name.strip():
            raise error("arms", f"an arm needs a non-empty name (a string), got {show(arm_name)}")
        if not isinstance(arm, dict):
            raise error(key, f"expected a table of overrides (may be empty), got {show(arm)}")
        if "species" in arm:
            raise error(f"{key}.species", "an arm cannot set species (a preset applied before "
                        "every scenario of the sweep); set sweep.species")
        try:
            arm_scenario = S.scenario(arm.get("scenario", scenario))
        except S.Invalid as err:
            raise error(f"{key}.scenario", str(err)) from None
        overrides = {
            pname: check_param(pname, value, error, f"{key}.{pname}")
            for pname, value in arm.items()
            if pname != "scenario"
        }
        arms[arm_name] = {"scenario": arm_scenario, "parameters": overrides}
    if len(arms) == 1:
        raise error("arms", "one arm only; give at least two, or use [parameters]")
    return arms


def _check_arms_differ(spec: Spec, error: Error) -> None:
    """Refuse two arms whose runs would be the same simulations: the same parameters once
    resolved (scenario, [parameters], the arm's own; an override equal to the value the arm
    has anyway changes nothing), apart from those every point sets (factors, sampled, drawn),
    and the same seeds. Almost surely a mistake in the design (a copied arm)."""
    varied = {canonical(name) for name in spec.varied}
    arms = list(spec.arm_bases.items())
    for i, (name, base) in enumerate(arms):
        for other, other_base in arms[:i]:
            differ = [k for k in base if base[k] != other_base[k]]
            if any(k not in varied for k in differ):
                continue
            scenarios = dict.fromkeys(spec.arms[a]["scenario"] for a in (other, name))
            given = [f"arms.{a}'s {k} = {P.value_text(v)}" for a in (other, name)
                     for k, v in spec.arms[a]["parameters"].items()]
            why = [f"scenario{'s' if len(scenarios) > 1 else ''} " + " and ".join(
                P.value_text(s) if s is not None else "none (the defaults)" for s in scenarios)]
            if given:
                why.append(f"{', '.join(given)}: what both arms have anyway")
            if differ:
                why.append(f"{', '.join(differ)} differ, but every point sets them")
            raise error(
                f"arms.{name}",
                f"identical to arms.{other}: the same parameters once resolved "
                f"({'; '.join(why)}), so every run of one repeats a run of the other; make "
                "the arms differ, or drop one",
            )


def _parse_factors(
    table: dict[str, Any], fixed: dict[str, dict[str, Any]], error: Error
) -> dict[str, list[Any]]:
    factors = {}
    for pname, values in table.items():
        key = f"factors.{pname}"
        check_name(pname, error, key)
        levels = S.as_list(values)
        if not levels:
            raise error(key, f"expected a non-empty list of values, got {show(values)}")
        checked = [check_param(pname, v, error, f"{key}[{i}]") for i, v in enumerate(levels)]
        if len(set(map(repr, checked))) != len(checked):
            raise error(key, f"values repeat: {checked} (each value once; use replicates)")
        if any(canonical(other) == canonical(pname) for other in factors):
            raise error(key, "the same parameter as another factor (under its old name)")
        factors[pname] = checked
    _check_not_fixed(factors, "factors", fixed, error)
    return factors


def _check_not_fixed(
    varied: dict[str, Any], prefix: str, fixed: dict[str, dict[str, Any]], error: Error
) -> None:
    """A parameter is fixed ([parameters], an arm), a factor or sampled: one of these only.
    ``fixed``: where (e.g. "set in [parameters]", "a factor") -> the names there."""
    for pname in varied:
        for where, names in fixed.items():
            if canonical(pname) in map(canonical, names):
                raise error(
                    f"{prefix}.{pname}", f"also {where}; a parameter is fixed ([parameters] or "
                    "an arm), a factor or sampled: one of these only"
                )


def _parse_sample(table: dict[str, Any], master_seed: int, error: Error) -> Sample:
    sample = S.read_table(table, S.SAMPLE, "sample", error)
    n = sample["n"]
    if sample["method"] == "sobol" and n & (n - 1):
        raise error("sample.n", f"{n}: the sobol method needs a power of 2 (e.g. 32, 64, 128)")
    bounds = {}
    for pname, pair in sample["bounds"].items():
        key = f"sample.bounds.{pname}"
        check_name(pname, error, key)
        pair = S.as_list(pair) or pair
        if not isinstance(pair, list) or len(pair) != 2:
            raise error(key, f"expected [low, high], got {show(pair)}")
        low = check_param(pname, pair[0], error, f"{key}[0]")
        high = check_param(pname, pair[1], error, f"{key}[1]")
        if P.PARAMS[canonical(pname)].kind is bool:
            raise error(key, "a true/false parameter cannot be sampled; make it a factor")
        if low is None or high is None:
            raise error(key, f"{show(pair)}: a bound must be a number, not \"none\" (to "
                        "compare with the therapy not given, make it an arm or a factor)")
        if not low < high:
            raise error(key, f"expected low < high, got [{low}, {high}]")
        bounds[pname] = (low, high)
    seed = master_seed if sample["seed"] is None else sample["seed"]
    return Sample(method=sample["method"], n=n, seed=seed, bounds=bounds)


def _parse_patients(
    table: dict[str, Any], sweep: dict[str, Any], fixed: dict[str, dict[str, Any]],
    factors: dict[str, Any], sample: Sample | None, error: Error,
) -> Patients:
    """``[patients]``: n, seed and the distributions, each checked against the parameter's
    allowed range over the distribution's whole support (so no draw can be refused later)."""
    for key in table:
        if key not in S.PATIENTS and isinstance(table[key], dict):
            raise error(
                f"patients.{key}", "unknown distribution; expected one of "
                + ", ".join(S.DISTRIBUTIONS)
            )
    patients = S.read_table(table, S.PATIENTS, "patients", error)
    if factors or sample:
        raise error("patients", "a cohort's points are its patients: use [arms] with "
                    "[patients], not [factors] or [sample]")
    if sweep["replicates"] != 1:
        raise error("sweep.replicates", f"{sweep['replicates']}: a cohort has one run per "
                    "patient and arm (each patient has its own seed); leave replicates out")
    draws: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for kind in S.DISTRIBUTIONS:
        for pname, args in patients[kind].items():
            key = f"patients.{kind}.{pname}"
            check_name(pname, error, key)
            if any(canonical(other) == canonical(pname) for other in draws):
                raise error(key, "drawn twice (under two distributions or two names)")
            draws[pname] = (kind, _check_draw(kind, pname, args, error, key))
    if not draws:
        raise error("patients", "no parameter to draw: add [patients.lognormal], "
                    "[patients.uniform] or [patients.choice]")
    _check_not_fixed(draws, "patients", fixed, error)
    seed = sweep["seed"] if patients["seed"] is None else patients["seed"]
    correlation = _parse_correlation(patients["correlation"], draws, error)
    return Patients(n=patients["n"], seed=seed, draws=draws, correlation=correlation)


def _parse_correlation(
    table: dict[str, Any], draws: dict[str, tuple[str, tuple[Any, ...]]], error: Error
) -> tuple[tuple[str, str, float], ...]:
    """``[patients.correlation]``: ``a.b = rho``, the rank correlation of two drawn parameters;
    every pair once, and all of them together a valid correlation (checked on the copula's
    matrix, so that no draw fails later)."""
    pairs: list[tuple[str, str, float]] = []
    seen: dict[frozenset[str], str] = {}
    for first, inner in table.items():
        if not isinstance(inner, dict) or not inner:
            raise error(f"patients.correlation.{first}", "expected name.other = a rank "
                        f"correlation, e.g. {first}.other_parameter = 0.5, got {show(inner)}")
        for second, rho in inner.items():
            key = f"patients.correlation.{first}.{second}"
            for name in (first, second):
                if name not in draws:
                    raise error(key, f"{name} is not drawn; a correlation joins two parameters "
                                "drawn in [patients.lognormal], [patients.uniform] or "
                                f"[patients.choice] (drawn: {', '.join(draws)})")
            if first == second:
                raise error(key, "a parameter with itself; name two drawn parameters")
            pair = frozenset((first, second))
            if pair in seen:
                raise error(key, f"this pair is given twice (also as {seen[pair]})")
            seen[pair] = key
            if isinstance(rho, bool) or not S._finite(rho) or not -1 < rho < 1:
                raise error(key, f"expected a rank correlation strictly between -1 and 1, "
                            f"got {show(rho)}")
            pairs.append((first, second, float(rho)))
    if pairs:
        from abm.sweep.expansion import copula_matrix

        try:
            copula_matrix(list(draws), pairs, check=True)
        except ValueError:
            raise error("patients.correlation", "these correlations cannot hold together (their "
                        "matrix is not positive definite: e.g. a with b and b with c both "
                        "strong, a with c strongly opposite); weaken some of them") from None
    return tuple(pairs)


def _check_draw(kind: str, pname: str, args: Any, error: Error, key: str) -> tuple[Any, ...]:
    param = P.PARAMS[canonical(pname)]
    allowed = f"{pname} allows {param.allowed()}"
    if param.kind is bool and kind != "choice":
        raise error(key, "a true/false parameter can only be drawn from [patients.choice]")
    args = S.as_list(args) or args
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise error(key, f"expected a non-empty list of values, got {show(args)}")
        values = [check_param(pname, v, error, f"{key}[{i}]") for i, v in enumerate(args)]
        if any(v is None for v in values):
            raise error(key, "none (not given) cannot be drawn; use an arm for it")
        if len(set(map(repr, values))) != len(values):
            raise error(key, f"values repeat: {values} (each value once: the values are drawn "
                        "with equal chances)")
        return tuple(values)
    if not isinstance(args, list) or not all(S._finite(a) for a in args):
        want = ("[low, high]" if kind == "uniform"
                else "[median, sigma] or [median, sigma, low, high]")
        raise error(key, f"expected {want} (numbers), got {show(args)}")
    if kind == "uniform":
        if len(args) != 2 or not args[0] < args[1]:
            raise error(key, f"expected [low, high] with low < high, got {args}")
        for i, bound in enumerate(args):
            _inside(param, bound, error, f"{key}[{i}]", f"the bound {bound} is outside: {allowed}")
        return (float(args[0]), float(args[1]))
    if len(args) not in (2, 4) or not args[0] > 0 or not args[1] > 0:
        raise error(key, f"expected [median > 0, sigma > 0] or [median, sigma, low, high], "
                    f"got {args}")
    if len(args) == 2:
        if (param.low is not None and param.low > 0) or param.high is not None:
            raise error(key, f"a lognormal's support (0, inf) leaves the allowed range "
                        f"({allowed}); truncate it: [median, sigma, low, high] with low and "
                        "high in range")
        return (float(args[0]), float(args[1]))
    low, high = args[2], args[3]
    if not 0 <= low < high:
        raise error(key, f"expected 0 <= low < high for the truncation, got [{low}, {high}]")
    _inside(param, low, error, f"{key}[2]", f"the truncation's low {low} is outside: {allowed}")
    _inside(param, high, error, f"{key}[3]", f"the truncation's high {high} is outside: {allowed}")
    median, sigma = args[0], args[1]
    outside = median < low or median > high
    if outside and _lognormal_share(median, sigma, low, high) < MIN_TRUNCATED_SHARE:
        raise error(key, f"the truncation [{low:g}, {high:g}] holds almost none of a lognormal "
                    f"with median {median:g}, sigma {sigma:g} (less than "
                    f"{MIN_TRUNCATED_SHARE:g} of it): every patient would get the same bound, "
                    "with no variation; move the median or the truncation")
    return tuple(float(a) for a in args)


# a truncated lognormal must keep at least this share of its distribution: below it the draws
# (by inverting the CDF, abm.sweep.expansion) all land on one bound (the CDF underflows there)
MIN_TRUNCATED_SHARE = 1e-6


def _lognormal_share(median: float, sigma: float, low: float, high: float) -> float:
    """The share of a lognormal (median, sigma of the log) inside [low, high], computed on the
    tail that keeps its precision (so a share of 1e-300 is not rounded to 0 or lost in 1 - x)."""
    def z(bound: float) -> float:
        return (math.log(bound) - math.log(median)) / sigma if bound > 0 else -math.inf

    a, b = z(low), z(high)
    if a >= 0:  # both above the median: the upper tail, 1 - cdf = erfc(z / sqrt 2) / 2
        return 0.5 * (math.erfc(a / math.sqrt(2)) - math.erfc(b / math.sqrt(2)))
    return 0.5 * (math.erfc(-b / math.sqrt(2)) - math.erfc(-a / math.sqrt(2)))


def _inside(param: P.Param, value: float, error: Error, key: str, message: str) -> None:
    if (param.low is not None and value < param.low) or (
        param.high is not None and value > param.high
    ):
        raise error(key, message)


def _parse_response(
    table: dict[str, Any], patients: Patients | None, steps: int, error: Error
) -> Response:
    if patients is None:
        raise error("response", "[response] needs a cohort: add [patients]")
    response = S.read_table(table, S.RESPONSE, "response", error)
    day = response["baseline_day"]
    if day >= steps / 24:
        raise error("response.baseline_day", f"{day:g} is outside the run (0 to "
                    f"{steps / 24:g} days, and responses need days after the baseline)")
    stratify = response["stratify"]
    if stratify is not None and stratify not in patients.draws:
        raise error("response.stratify", f"{stratify!r}: expected one of the patients' "
                    f"parameters ({', '.join(patients.draws)})")
    if response["bins"] is not None and stratify is None:
        raise error("response.bins", "bins need response.stratify (the parameter to bin)")
    min_sd = response["min_sd_days"]
    after = steps / 24 - day
    if min_sd is not None and min_sd > after:
        raise error("response.min_sd_days", f"{min_sd:g} days of stable disease can never be "
                    f"seen: the run has {after:g} days after the baseline (day {day:g})")
    if min_sd is None:
        _warn_short_sd(day, steps, error)
    return Response(day, stratify, response["bins"], min_sd)


def _warn_short_sd(day: float, steps: int, error: Error) -> None:
    """Warn (allowed: a short pilot) when a cohort's run is too short after the baseline
    ``day`` for the default ``min_sd_days`` of stable disease ever to be seen."""
    from abm.analysis.response import MIN_SD_DAYS

    after = steps / 24 - day
    if MIN_SD_DAYS > after:
        import warnings

        warnings.warn(str(error("response", f"stable disease (SD) can never be called: it "
                                f"must last {MIN_SD_DAYS:g} days (the default min_sd_days) "
                                f"and the run has {after:g} days after the baseline (day "
                                f"{day:g}); set response.min_sd_days, or run longer")),
                      UserWarning, stacklevel=3)


def _parse_probes(table: dict[str, Any], error: Error,
                  steps: int) -> dict[str, dict[str, Any]]:
    """``[probes.NAME]`` tables, checked by building the probes once (``make_probes``), and
    refused if the run ends (``steps`` hours) before the probe could measure anything."""
    from abm.analysis.probes import make_probes

    for probe, options in table.items():
        try:
            (made,) = make_probes({probe: options})
        except (ValueError, TypeError) as err:
            raise error(f"probes.{probe}", str(err)) from None
        if made.last_hour > steps:
            raise error(f"probes.{probe}", f"{dict(options)} measures from hour "
                        f"{made.last_hour} (day {made.last_hour / 24:g}), after the run's last "
                        f"step ({steps} hours, day {steps / 24:g}): it would record nothing")
    return {probe: dict(options) for probe, options in table.items()}


def _check_domains(spec: Spec, error: Error) -> None:
    """The rules across parameters (``abm.params.check_together``, the model's own check), for
    every distinct combination of the parameters they read among all the points, before any
    run."""
    from abm.sweep.expansion import iter_points

    names = P.checked_together()
    varied = [n for n in spec.varied if canonical(n) in names]
    seen: set[tuple] = set()
    for point in iter_points(spec) if varied or spec.arms else [{}]:
        base = spec.arm_bases[point[ARM]] if spec.arms else spec.base
        values = {n: base[n] for n in names}
        values.update({canonical(n): point[n] for n in varied})
        domain = (point.get(ARM), *values.values())
        if domain in seen:
            continue
        seen.add(domain)
        try:
            P.check_together(values)
        except ValueError as err:
            if spec.arms and not varied:
                raise error(f"arms.{point[ARM]}", str(err)) from None
            if not varied:
                raise error("parameters", str(err)) from None
            where = ", ".join(f"{n} = {point[n]}" for n in varied)
            key = ("factors" if varied[0] in spec.factors
                   else "patients" if spec.patients else "sample.bounds")
            raise error(key, f"at {where}: {err}") from None
