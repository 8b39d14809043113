"""The sweep spec's tables and keys, declared once, and the one checker that reads them.

Each key is a ``Key``: what it means, how its value is checked, and its default. ``read_table``
refuses unknown keys, reports a missing required key, checks every value and fills the defaults,
so every message has one form, ``FILE: TABLE.KEY: what is wrong (the value, what is allowed)``.
Checks that span several keys (``days`` or ``steps``, ``seed`` or ``seeds``, a parameter fixed and
varied) are in :mod:`abm.sweep.spec`; a parameter's name and value are checked by ``abm.params``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from abm import params as P
from abm.analysis.outcomes import ESCAPE_FRACTION, ESCAPE_MULTIPLE

SAMPLE_METHODS = ("lhs", "sobol")
MISSING: Any = object()  # a key without a default: absent from the table read


class SpecError(ValueError):
    """A sweep spec that cannot run; the message names the file and the key."""


class Invalid(ValueError):
    """A value check failed: the message, and where inside the value (e.g. ``[1]`` of a list)."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


Error = Callable[[str, str], SpecError]  # (key, message) -> the error to raise


@dataclass(frozen=True)
class Key:
    """One key of a spec table."""

    help: str  # what it means (for the docs and the reader of this file)
    check: Callable[[Any], Any]  # the value, checked and coerced; raises ``Invalid``
    default: Any = MISSING
    required: str | None = None  # the message when the key is missing; None: optional


def show(value: Any) -> str:
    """A value in a message, with its TOML-ish type; an integer beyond a float's range (from
    Python) in short (``abm.params.value_text``: ``1e+400 (an integer of 401 digits, ...)``)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, int) and not isinstance(value, bool) and not _finite(value):
        return P.value_text(value)  # (says it is an integer)
    return f"{P.value_text(value)} ({type(value).__name__})"


def as_int(value: Any) -> int | None:
    """An integer given as ``int`` or a numpy integer (a spec built in code), as a Python
    ``int``; ``None`` for anything else, booleans included (``True`` is not a count)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


# the largest count (steps, replicates, a sample's or a cohort's size, ...): the run files keep
# counts in 64-bit integer columns (Step, replicate, point_id), and a count beyond a float's range
# (10**400, from Python) would fail inside the size estimate with an OverflowError, not here
COUNT_HIGH = 2**63 - 1


def integer(low: int, what: str, high: int | None = None) -> Callable[[Any], int]:
    """The check of an integer in [low, high]; without ``high``, at most ``COUNT_HIGH``."""

    def check(value: Any) -> int:
        number = as_int(value)
        if number is None or number < low or (high is not None and number > high):
            raise Invalid(f"expected {what}, got {show(value)}")
        if high is None and number > COUNT_HIGH:
            raise Invalid(f"expected {what} and at most 2**63 - 1, got {show(value)}")
        return number

    return check


# seeds are stored as uint64 (the run files' seed column), so a larger one would fail only when
# the first run's file is written, after the run
SEED_HIGH = 2**64 - 1
SEED = "an integer in [0, 2**64 - 1]"


def seed(value: Any) -> int:
    return integer(0, SEED, SEED_HIGH)(value)


def _finite(value: Any) -> bool:
    """A finite number: ``int``, ``float`` or a numpy integer or float (not a boolean). An int
    beyond a float's range (``10**400``, from Python) is not one: it cannot be used as a float."""
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # (math.isfinite converts an int to a float)
        return False


def as_list(value: Any) -> list[Any] | None:
    """A list of values given as a list, a tuple, a ``range`` or a 1-D numpy array (a spec built
    in code), as a list of plain Python values; ``None`` for anything else (a string, a table, a
    scalar, a 2-D array)."""
    if isinstance(value, list):
        return value
    if isinstance(value, tuple | range):
        return list(value)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value.tolist()
    return None


def positive(value: Any) -> float:
    if not _finite(value) or not value > 0:
        raise Invalid(f"expected a positive finite number, got {show(value)}")
    return float(value)


def fraction(value: Any) -> float:
    value = positive(value)
    if value > 1:
        raise Invalid(f"expected a fraction in (0, 1], got {value}")
    return value


def whole_hours(days: float) -> int | None:
    """``days`` as the model's hourly steps, or None if it is not a whole number of hours
    (``0.3`` days is 7.2 h). Float noise is forgiven (``0.1 * 3``), nothing more."""
    hours = days * 24
    whole = round(hours)
    return whole if abs(hours - whole) <= 1e-9 * max(1.0, abs(hours)) else None


def not_whole_hours(days: float, given: str, steps: str) -> str:
    """Why ``days`` cannot be run, and what to give instead: ``given`` names the value as the
    user wrote it (``--days 0.3``), ``steps`` how hours are given there (``--steps``,
    ``steps =``)."""
    hours = days * 24
    if hours < 1:
        return (f"{given} is {hours:.3g} h, less than one step (1 h); give at least {steps} 1 "
                "(one hour)")
    low, high = math.floor(hours), math.ceil(hours)
    return (f"{given} is {hours:.6g} h, not a whole number of hours, and the model runs whole "
            f"hourly steps (it does not round): give {steps} {low} or {steps} {high}, or days "
            "that are whole hours (days x 24 a whole number, e.g. 0.25 for 6 h)")


def days(value: Any) -> float:
    whole = as_int(value)  # a numpy integer too; any other number as a float
    too_large = "days is too large (expected at most a few thousand days)"
    if whole is not None and whole > 0 and not _finite(whole):  # 10**400, from Python
        raise Invalid(f"{P.short_int(whole)} {too_large}")
    if not _finite(value) or not value > 0:
        raise Invalid(f"expected a positive finite number of days, got {show(value)}")
    value = whole if whole is not None else float(value)
    if not math.isfinite(value * 24) or value * 24 > COUNT_HIGH:  # (steps: as a count's limit)
        raise Invalid(f"{value:g} {too_large}")
    hours = whole_hours(value)
    if hours is None or hours < 1:
        raise Invalid(not_whole_hours(value, f"{value:g} days", "steps ="))
    return value


NAME_HINT = 'required: a non-empty string, e.g. name = "checkpoint-timing"'


def name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(NAME_HINT)
    return value.strip()


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {show(value)}")
    return value.strip()


def scenario(value: Any) -> str | None:
    """A scenario name from ``abm.scenarios``, or None (the defaults)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"expected a scenario name, got {show(value)}")
    from abm.scenarios import scenario_params

    try:
        scenario_params(value)
    except ValueError as err:
        raise Invalid(str(err)) from None
    return value


def species(value: Any) -> str | None:
    """A species preset name from ``abm.species``, or None."""
    if value is None:
        return None
    from abm.species import check_species

    try:
        return check_species(value)
    except ValueError as err:
        raise Invalid(str(err)) from None


def engine(value: Any) -> str:
    """The engine that runs the sweep: ``"mesa"`` or ``"fast"`` (``abm.run.ENGINES``)."""
    from abm.run import ENGINES

    if value not in ENGINES:
        raise Invalid(f"expected one of {', '.join(map(repr, ENGINES))}, got {show(value)}")
    return value


def seed_list(value: Any) -> tuple[int, ...]:
    items = as_list(value)
    if not items:
        raise Invalid(f"expected a non-empty list of seeds, got {show(value)}")
    seeds = []
    for i, item in enumerate(items):
        try:
            seeds.append(seed(item))
        except Invalid as err:
            raise Invalid(str(err), f"[{i}]") from None
    if len(set(seeds)) != len(seeds):
        raise Invalid(f"seeds repeat: {seeds} (each replicate needs its own seed)")
    return tuple(seeds)


def method(value: Any) -> str:
    if value not in SAMPLE_METHODS:
        raise Invalid(f'expected "lhs" or "sobol", got {show(value)}')
    return value


def table(required: str) -> Callable[[Any], dict[str, Any]]:
    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            raise Invalid(required)
        return value

    return check


# --- the declared schema ----------------------------------------------------------------------

TABLES = {
    "sweep": "name, scenario, length, replicates and seeds",
    "parameters": "fixed overrides on the scenario: name = value",
    "arms": "named arms: [arms.NAME], each an optional scenario and overrides",
    "factors": "the full grid: name = [value, ...]",
    "sample": "a space-filling sample: method, n, seed, [sample.bounds]",
    "outcome": "how runs are classified",
    "probes": "measurements during each run: [probes.NAME] with the probe's options",
    "patients": "a virtual-patient cohort: n, seed, [patients.lognormal|uniform|choice], "
                "[patients.correlation]",
    "response": "RECIST-like responses of a cohort: baseline_day, stratify, bins",
}

SWEEP = {
    "name": Key("a short name for the sweep", name, required=NAME_HINT),
    "description": Key("the question the sweep answers (free text)", text, ""),
    "scenario": Key("a base scenario from abm.scenarios", scenario, None),
    "species": Key('a species preset from abm.species ("mouse" or "human"), applied before the '
                   "scenario (default: the scenario's, else none)", species, None),
    "days": Key("simulated days per run", days),
    "steps": Key("simulated hours per run (instead of days)",
                 integer(1, "a whole number of hours >= 1")),
    "replicates": Key("runs per point, with different seeds", integer(1, "an integer >= 1"), 1),
    "seed": Key("master seed; replicate seeds derive from it", seed, 0),
    "seeds": Key("the replicate seeds themselves, instead of seed (e.g. [0, 1, 2, 3])", seed_list),
    "record_every": Key("steps between time-series rows",
                        integer(1, "an integer >= 1 (steps)"), 24),
    "engine": Key('"mesa" (the reference) or "fast" (compiled, the same rules: '
                  "docs/engines.md)", engine, "mesa"),
}

BOUNDS_HINT = "required: a table [sample.bounds] of name = [low, high]"
SAMPLE = {
    "method": Key('"lhs" (Latin hypercube) or "sobol" (Saltelli)', method,
                  required='required: "lhs" or "sobol"'),
    "n": Key("lhs: points; sobol: base samples (a power of 2)", integer(1, "an integer >= 1"),
             required="required: the number of sample points (sobol: base samples)"),
    "seed": Key("the sample's seed (default: the master seed)", seed, None),
    "bounds": Key("name = [low, high] per sampled parameter", table(BOUNDS_HINT),
                  required=BOUNDS_HINT),
}

OUTCOME = {
    "escape_multiple": Key("x initial burden at which a tumour has escaped", positive,
                           ESCAPE_MULTIPLE),
    "escape_fraction": Key("fraction of the grid at which a tumour has escaped", fraction,
                           ESCAPE_FRACTION),
}


DISTRIBUTIONS = ("lognormal", "uniform", "choice")
PATIENTS = {
    "n": Key("the number of patients", integer(1, "an integer >= 1 (patients)"),
             required="required: the number of patients, e.g. n = 200"),
    "seed": Key("the patients' seed (default: the master seed)", seed, None),
    "lognormal": Key("name = [median, sigma of the log] or [median, sigma, low, high] "
                     "(truncated to [low, high])", table("expected a table of name = [...]"), {}),
    "uniform": Key("name = [low, high]", table("expected a table of name = [low, high]"), {}),
    "choice": Key("name = [value, ...], drawn with equal chances",
                  table("expected a table of name = [value, ...]"), {}),
    "correlation": Key("name.other = rank correlation (Spearman, between -1 and 1) of two "
                       "drawn parameters", table("expected a table of name.other = a number"),
                       {}),
}


def bins(value: Any) -> int:
    return integer(2, "an integer >= 2 (quantile bins)")(value)


def baseline_day(value: Any) -> float:
    if not _finite(value) or value < 0:
        raise Invalid(f"expected a day >= 0, got {show(value)}")
    return float(value)


RESPONSE = {
    "baseline_day": Key("the day responses are measured from (when treatment starts)",
                        baseline_day, required="required: the baseline day, e.g. 14"),
    "stratify": Key("a sampled parameter to give response rates per value (or per bin)", text,
                    None),
    "bins": Key("stratify by this many quantile bins instead of by value", bins, None),
    "min_sd_days": Key("days from baseline stable disease must last to count as SD",
                       baseline_day, None),
}


def read_tables(data: dict[str, Any], error: Error) -> dict[str, dict[str, Any]]:
    """The top-level tables (each ``{}`` when absent); unknown or non-table ones refused."""
    for key in data:
        if key not in TABLES:
            raise error(key, f"unknown table; expected {', '.join(f'[{k}]' for k in TABLES)}")
    tables = {}
    for key in TABLES:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise error(key, f"expected a table [{key}], got {show(value)}")
        tables[key] = value
    if "sweep" not in data:
        raise error("sweep", "missing table [sweep] (with at least name and days or steps)")
    return tables


def read_table(values: dict[str, Any], keys: dict[str, Key], prefix: str, error: Error):
    """The table's values checked against ``keys``, defaults filled in."""
    for key in values:
        if key not in keys:
            raise error(f"{prefix}.{key}", "unknown key; expected one of " + ", ".join(keys))
    out = {}
    for key, spec in keys.items():
        if key not in values:
            if spec.required:
                raise error(f"{prefix}.{key}", spec.required)
            if spec.default is not MISSING:
                out[key] = spec.default
            continue
        try:
            out[key] = spec.check(values[key])
        except Invalid as err:
            raise error(f"{prefix}.{key}{err.where}", str(err)) from None
    return out


# --- parameters -------------------------------------------------------------------------------


def canonical(pname: str) -> str:
    """A parameter's current name (a deprecated name is kept in the spec and the tables as the
    user wrote it, and renamed only where the model's arguments are built)."""
    return getattr(P, "ALIASES", {}).get(pname, pname)


def check_name(pname: str, error: Error, key: str) -> None:
    """A model parameter's name (``rng`` is not one: seeds come from [sweep])."""
    if not isinstance(pname, str):
        raise error(key, f"a parameter's name is a string, got {show(pname)}")
    if pname == "rng":
        raise error(
            key, "seeds come from sweep.seed (or sweep.seeds) and sweep.replicates, not from rng"
        )
    if canonical(pname) not in P.PARAMS:
        try:
            P.validate({pname: None})
        except ValueError as err:
            raise error(key, str(err)) from None


def check_param(pname: str, value: Any, error: Error, key: str) -> Any:
    """A model parameter's value, checked and coerced by ``abm.params``. Every parameter is a
    number or true/false, so a spec gives it as a TOML number or boolean: text is refused
    (``"0.5"``, a number in quotes, is most likely a slip, and ``abm.params`` would read it),
    except ``"none"`` for a parameter that may be not given (a therapy's start day)."""
    check_name(pname, error, key)
    if isinstance(value, str):
        param = P.PARAMS[canonical(pname)]
        if not (param.optional and value.strip().lower() == "none"):
            raise error(key, text_for_number(pname, value, param))
    try:
        checked = P.validate({pname: value})
    except ValueError as err:  # (also an integer too large for a float: abm.params says so)
        raise error(key, str(err)) from None
    return checked.get(pname, *checked.values())  # (a deprecated name may come back renamed)


def text_for_number(pname: str, value: str, param: P.Param) -> str:
    """The message for text given where a spec needs a number (or true/false)."""
    allowed = param.allowed()
    if param.optional:
        allowed = allowed.removesuffix(" or None") + ' or "none" (not given)'
    try:
        number = float(value)
    except ValueError:
        number = None
    if param.kind is bool:
        hint = "write true or false without quotes"
    elif number is not None and math.isfinite(number):
        if len(value) <= 2 * P.TEXT_KEPT:
            hint = f"write the number without quotes ({value.strip()}, not \"{value}\")"
        else:  # pasted long: not repeated whole
            hint = "write the number without quotes"
    else:
        hint = "write a number without quotes"
    return (f"parameter {pname!r} = {P.value_text(value)} is text (a string), which is not "
            "allowed: "
            f"expected {allowed}; {hint}")
