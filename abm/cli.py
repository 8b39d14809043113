"""Command line: ``abm run | scenarios | params | serve | sweep | report | export``.

Every command builds the model the same way, from ``abm.params`` and ``abm.scenarios``. Bad
input gives one clear line and exit code 2, never a traceback; output paths are checked before
any work starts, and a file-system error is one line naming the path.
"""

from __future__ import annotations

import inspect
import math
import sys
import typing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import typer.core

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="abm: an agent-based model of the tumour microenvironment.",
    pretty_exceptions_enable=False,
)

# `abm run` refuses more than this without --force (10 years of simulated time), or a run
# estimated to take longer than MAX_RUN_HOURS: most likely a typo (--days 1e9)
MAX_RUN_DAYS = 3650
MAX_RUN_HOURS = 24
# the parameters that schedule a therapy's first dose (a dose at hour h is given if the run
# has more than h steps)
THERAPY_STARTS = ("anti_pd1_start_day", "anti_ctla4_start_day", "vaccine_start_day",
                  "cart_start_day", "anti_csf1r_start_day")


@app.callback()
def _plain_warnings() -> None:
    """The model's own warnings (a deprecated parameter name, a vaccine with nothing to
    target) as one line each, like its errors, instead of Python's file-and-line form pointing
    inside the package."""
    import warnings

    shown = warnings.showwarning
    if getattr(shown, "abm_plain", False):
        return  # installed by an earlier command in this process
    package = str(Path(__file__).resolve().parent)

    def show(message, category, filename, lineno, file=None, line=None):
        if (issubclass(category, (FutureWarning, UserWarning))
                and str(filename).startswith(package)):
            typer.echo(f"warning: {message}", err=True)
        else:
            shown(message, category, filename, lineno, file, line)

    show.abm_plain = True
    warnings.showwarning = show


def fail(message: str) -> None:
    """Print one line to stderr and exit 2 (bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


# what people type for the seed, which abm run calls --rng (as TumorModel calls it rng)
SEED_NAMES = ("--seed", "--random-seed")


class PlainErrors(typer.core.TyperCommand):
    """A command whose options of the wrong type (``--steps 1.5``) get one line naming the
    option, the value and what it takes, like the checks of our own, instead of Typer's box
    that leaves the value out; whose ``--seed`` is pointed to ``--rng``; whose single-valued
    options refuse to be given twice (click would keep the last value without a word); and
    whose path options and arguments refuse an empty path (``--out ""``), which Typer would
    turn into ``.``, the current folder. Every ``abm`` command is one of these."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        given = list(args)
        try:
            rest = super().parse_args(ctx, args)
        except Exception as err:
            # click's BadParameter (Typer carries its own copy of click: matched by name)
            param = getattr(err, "param", None)
            if (type(err).__name__ == "NoSuchOption" and getattr(err, "option_name", None)
                    in SEED_NAMES and any("--rng" in p.opts for p in self.get_params(ctx))):
                fail(f"{err.option_name}: no such option; the seed is --rng, e.g. "
                     f"abm {self.name} --rng 3")
            if type(err).__name__ != "BadParameter" or not getattr(param, "opts", None):
                raise
            fail(bad_option(param.opts, _expected_type(param), given))
        if not ctx.resilient_parsing:
            _refuse_repeated_options(self, ctx, given)
            _refuse_empty_paths(self, ctx, given)
        return rest


def _refuse_repeated_options(command, ctx, args: list[str]) -> None:
    """Fail on an option that takes one value given more than once (``--days 3 --days 5``,
    ``--days=3 --days 5``, ``--open --no-open``): click keeps the last, so the other would be
    dropped without a word. Options meant to repeat (``--set``: ``multiple``) are not counted.
    Counts by parsing ``args`` (already parsed once without error) again with click's own
    parser, which lists each option once per occurrence, under whichever of its names."""
    import copy

    _, _, order = command.make_parser(ctx).parse_args(args=list(args))
    repeated = next((param for param in dict.fromkeys(order)
                     if param.param_type_name == "option" and not param.multiple
                     and not param.count and order.count(param) > 1), None)
    if repeated is None:
        return
    # the values given, in order: parsed once more with that option collecting every value
    collecting = copy.copy(repeated)
    collecting.multiple = True
    parser = command.make_parser(ctx)
    collecting.add_to_parser(parser, ctx)  # in place of the option: the same names
    values = parser.parse_args(args=list(args))[0][repeated.name]
    fail(f"{max(repeated.opts, key=len)}: given {_times(len(values))} ("
         f"{_and(_given_as(repeated, v) for v in values)}); give it once")


def _given_as(option, value) -> str:
    """A value of ``option`` as given: the text of a value, the flag itself for a flag."""
    from abm.params import value_text

    if not option.is_flag:
        return value_text(value)
    names = option.opts if value or not option.secondary_opts else option.secondary_opts
    return max(names, key=len)


def _times(n: int) -> str:
    return {2: "twice"}.get(n, f"{n} times")


def _and(items: Iterable[str]) -> str:
    """``"a and b"``, ``"a, b and c"``."""
    items = list(items)
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)


# what an empty path should have been, by command and parameter
EMPTY_PATH_HINTS = {
    ("run", "out"): "give a .parquet or .csv file name, e.g. --out run.parquet",
    ("sweep", "spec"): "give the spec file (TOML), e.g. abm sweep "
                       "experiments/checkpoint_timing.toml",
    ("sweep", "out"): "give a folder, e.g. --out sweeps/checkpoint",
    ("report", "directory"): "give the sweep folder, e.g. abm report sweeps/checkpoint "
                             "(. for the current folder)",
    ("export", "directory"): "give the sweep folder, e.g. abm export sweeps/checkpoint "
                             "(. for the current folder)",
    ("report", "out"): "give a folder, e.g. --out results (. for the current folder)",
    ("export", "out"): "give a folder, e.g. --out results (. for the current folder)",
}


def _refuse_empty_paths(command, ctx, args: list[str]) -> None:
    """Fail on an empty value (``--out ""``, ``abm report ""``) given to any path option or
    argument of ``command``: Typer's conversion would make it ``.`` (the current folder),
    used silently or shown as ``.``. Reads the raw values by parsing ``args`` (already parsed
    once without error) again."""
    from pathlib import PurePath

    opts, _, _ = command.make_parser(ctx).parse_args(args=list(args))
    for param in command.get_params(ctx):
        kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if not (isinstance(kind, type) and issubclass(kind, PurePath)):
            continue
        value = opts.get(param.name)
        if value != "" and not (isinstance(value, (list, tuple)) and "" in value):
            continue
        name = (max(param.opts, key=len) if param.param_type_name == "option"
                else f"abm {command.name}")  # an argument: the command it follows
        hint = EMPTY_PATH_HINTS.get((command.name, param.name),
                                    "give a path (. for the current folder)")
        fail(f'{name} "": an empty path; {hint}')


def bad_option(opts: list[str], expected: type | None, args: list[str]) -> str:
    """``--steps '1.5': expected an integer``: the option (its long name), the value given
    (the last one, as the parser keeps it) and what it takes."""
    value = None
    for i, arg in enumerate(args):
        for opt in opts:
            if arg == opt and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(opt + "="):
                value = arg[len(opt) + 1:]
    from abm.params import value_text

    what = {int: "an integer", float: "a number"}.get(expected, "a valid value")
    shown = f" {value_text(value)}" if value is not None else ""
    return f"{max(opts, key=len)}{shown}: expected {what}"


def _expected_type(param) -> type | None:
    """The Python type an option takes (int for ``int | None``), where it is a number."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is None:  # click's own types (Typer before it carried click)
        annotation = {"integer": int, "float": float}.get(getattr(param.type, "name", ""))
    for kind in (int, float):
        if annotation is kind or kind in typing.get_args(annotation):
            return kind
    return None


@contextmanager
def file_errors() -> Iterator[None]:
    """A file-system error (full disk, permissions, a read-only file system) as one line naming
    the path, exit 2, instead of a traceback."""
    from abm.sweep.storage import os_error_text

    try:
        yield
    except OSError as err:
        fail(os_error_text(err))


def parse_sets(items: list[str]) -> dict[str, str]:
    """``--set name=value`` pairs into a dict (values stay strings; the model validates). A
    parameter given twice (also under its old name) is refused: which value wins is not
    obvious."""
    from abm.params import canonical, value_text

    out: dict[str, str] = {}
    for item in items:
        name, _, value = (part.strip() for part in item.partition("="))
        if "=" not in item or not name:
            fail(f"--set {value_text(item)}: expected name=value, e.g. --set "
                 "mutation_rate=0.02")
        for other in out:
            if canonical(other) == canonical(name):
                fail(f"--set {name}: given twice ({other}={value_text(out[other])} and "
                     f"{name}={value_text(value)}); give each parameter once")
        out[name] = value
    return out


def check_output_file(path: Path, option: str = "--out") -> bool:
    """Check before any work that ``path`` can be written; return whether it exists (and will be
    replaced). The parent of a relative path is created; an absolute path's parent must exist
    (a typo must not create directories at the file system's root)."""
    if path.is_dir():
        fail(f"{option} {path}: is a directory; give a file name")
    if path.is_absolute() and not path.parent.exists():
        _no_directory(f"{option} {path}", path.parent)
    check_output_dir(path.parent, option, path)
    return path.exists()


def check_output_dir(directory: Path, option: str = "--out", shown: Path | None = None,
                     hint: str = "") -> list[Path]:
    """Check before any work that files can be written in ``directory``: created if missing
    (with its parents when relative; an absolute one's parent must exist). ``option`` "" for a
    default place (no option was given); ``hint`` ends each message. When the check fails, the
    folders it created are removed again (those still empty; never one that was there).
    Returns the folders it created, outermost first (for ``_remove_created`` if the command
    then writes nothing)."""
    import tempfile

    shown = directory if shown is None else shown
    named = f"{option} {shown}" if option else str(shown)
    if directory.exists() and not directory.is_dir():
        fail(f"{named}: {directory} exists and is not a directory{hint}")
    created: list[Path] = []  # by this check, outermost first
    if not directory.exists():
        if directory.is_absolute() and not directory.parent.is_dir():
            _no_directory(named, directory.parent)
        missing = [p for p in (directory, *directory.parents) if not p.exists()]
        try:
            for folder in reversed(missing):  # mkdir(parents=True), knowing which ones it made
                try:
                    folder.mkdir()
                except FileExistsError:
                    if not folder.is_dir():
                        raise
                    continue  # made meanwhile by someone else: not ours to remove
                created.append(folder)
        except OSError as err:
            _remove_created(created)
            fail(f"{named}: cannot create {directory} ({err.strerror or err}){hint}")
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".abm-write-check.")
    except OSError as err:
        _remove_created(created)
        fail(f"{named}: cannot write in {directory} ({err.strerror or err}){hint}")
    import os

    os.close(fd)
    Path(probe).unlink(missing_ok=True)
    return created


ELSEWHERE = "; give --out PATH to write elsewhere"  # a default output place that fails


def _no_directory(named: str, directory: Path) -> None:
    """Fail: ``directory`` (where the output ``named`` goes) is missing, or a file is in its
    way."""
    blocking = next((p for p in (directory, *directory.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        fail(f"{named}: {blocking} is a file, not a directory")
    fail(f"{named}: directory {directory} does not exist; create it first (or check the path)")


def _steps(days: float | None, steps: int | None) -> int:
    if days is not None and steps is not None:
        fail("give --days or --steps, not both")
    if days is not None:
        if not (math.isfinite(days) and days > 0):
            fail(f"--days {days}: expected a positive finite number of days")
        if not math.isfinite(days * 24):
            fail(f"--days {days}: too large")
        from abm.sweep.schema import not_whole_hours, whole_hours

        hours = whole_hours(days)  # as a sweep spec's days: whole hours, never rounded
        if hours is None or hours < 1:
            fail(not_whole_hours(days, f"--days {days:g}", "--steps"))
        return hours
    if steps is not None and steps <= 0:
        fail(f"--steps {steps}: expected a positive number of hours")
    return steps if steps is not None else 30 * 24


@app.command(cls=PlainErrors)
def run(
    scenario: Annotated[
        str | None,
        typer.Option(help="Named scenario (see `abm scenarios`).", show_default="the defaults"),
    ] = None,
    days: Annotated[
        float | None,
        typer.Option(help="Simulated days (24 steps each; whole hours only, e.g. 0.25).",
                     show_default="30"),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(help="Simulated hours (instead of --days).", show_default="720"),
    ] = None,
    species: Annotated[
        str | None,
        typer.Option(help="Species preset: mouse (twice-weekly rodent antibodies) or human "
                     "(clinical labels); applied before the scenario and --set.",
                     show_default="the scenario's, else none"),
    ] = None,
    rng: Annotated[
        str | None,
        typer.Option(help="Seed: an integer from 0 to 2**64 - 1 (as a sweep's seeds).",
                     show_default="a random seed, printed and recorded"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a parameter: --set name=value (repeatable).",
                     show_default="none"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the time series here (.parquet or .csv), and the run's "
                     "parameters, seed and versions to OUT.json.",
                     show_default="nothing written"),
    ] = None,
    record_every: Annotated[int, typer.Option(help="Keep every Nth step in the output.")] = 1,
    force: Annotated[
        bool, typer.Option(help=f"Run even above {MAX_RUN_DAYS} days or {MAX_RUN_HOURS} h "
                           "estimated.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    engine: Annotated[
        str, typer.Option(help="mesa (the reference) or fast (the same rules compiled, for "
                          "large grids; a grid of 250,000 sites or more uses every core for "
                          "its fields: docs/engines.md).")
    ] = "mesa",
) -> None:
    """Run one simulation headless and write its per-step time series.

    Example: abm run --scenario escape --days 30 --rng 3 --out run.parquet
    """
    from abm.params import model_seed, validate, validate_rng, value_text
    from abm.run import (
        AtomicFiles,
        build_model,
        build_params,
        json_bytes,
        provenance,
        simulate,
        table_bytes,
        threads_for,
    )
    from abm.species import effective_species
    from abm.sweep.spec import duration, estimate_seconds

    n_steps = _steps(days, steps)
    if record_every < 1:
        fail(f"--record-every {record_every}: expected an integer >= 1")
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        fail(f"--out {value_text(str(out))}: expected a .parquet or .csv file name")
    from abm.run import ENGINES

    if engine not in ENGINES:
        fail(f"--engine {value_text(engine)}: expected one of {', '.join(ENGINES)}")
    overrides = parse_sets(set_ or [])
    if "rng" in overrides:
        fail("give the seed with --rng, not --set rng=...")
    drawn = rng is None
    if not drawn:
        from abm.sweep.schema import SEED, seed

        # the bound of a sweep's seeds (stored as uint64), so that a run's seed can be given
        # again in a sweep (seeds = [...])
        try:
            rng = seed(validate_rng(rng))
        except ValueError:  # (the sweep check's Invalid is one)
            fail(f"--rng {value_text(rng)}: expected {SEED} (leave --rng out for a random "
                 "seed, printed so that it can be given again)")
    # no seed given: draw one from the system's entropy and record it, so the run can be
    # repeated (a model seeded from entropy by itself could not be)
    overrides["rng"] = model_seed(None) if drawn else rng
    try:
        params = validate(build_params(scenario, overrides, species=species))
    except ValueError as err:
        fail(str(err))
    for name in THERAPY_STARTS:  # a therapy set to start after the run: said, not silent
        start = params[name]
        if start is not None and start * 24 >= n_steps:
            typer.echo(f"note: {name} {start:g} is not before the run's end (day "
                       f"{n_steps / 24:g}): that therapy is never given", err=True)
    estimate = estimate_seconds(n_steps, params["width"] * params["height"], engine=engine)
    if not force and (n_steps > MAX_RUN_DAYS * 24 or estimate > MAX_RUN_HOURS * 3600):
        shown = n_steps if n_steps < 10**12 else f"{float(n_steps):.3g}"  # not 300 digits
        fail(f"{shown} steps ({n_steps / 24:g} days) on {params['width']} x "
             f"{params['height']} sites would take {duration(estimate)} on the {engine} "
             "engine: more than "
             f"{MAX_RUN_DAYS} days or {MAX_RUN_HOURS} h, probably a mistake; add --force to "
             "run it anyway")
    replaced = []
    if out is not None:
        sidecar = out.with_name(out.name + ".json")
        replaced = [p for p in (out, sidecar) if check_output_file(p)]
    with _sigterm_as_interrupt() as terminated:
        try:
            # built before anything is printed: the parameters the model checks only together
            # (a founder tumour larger than the grid) fail here, with no seed line of a run
            # that never started
            model = build_model(params, engine,
                                threads_for(engine, params["width"], params["height"]))
            if drawn:
                typer.echo(f"seed {params['rng']} (drawn at random; --rng {params['rng']} "
                           "repeats this run)")
            if engine == "fast":
                from abm.fast import ensure_compiled

                # said (else the first hours look stalled, with a wild ETA) unless --quiet
                ensure_compiled(lambda line: None if quiet else typer.echo(line, err=True))
            df, model = simulate(params, n_steps, record_every=record_every, progress=not quiet,
                                 engine=engine, model=model)
        except ValueError as err:
            fail(str(err))
        except KeyboardInterrupt:
            typer.echo(("\nstopped (SIGTERM)" if terminated() else "\ninterrupted")
                       + "; nothing written (the run is kept only when it finishes)", err=True)
            raise typer.Exit(143 if terminated() else 130) from None
    last = df.iloc[-1]
    typer.echo(
        f"day {last['Day']:.4g}: {int(last['CancerCells'])} cancer cells, "
        f"{int(last['TCells'])} T cells, {int(last['CARTCells'])} CAR-T, "
        f"{int(last['Kills'])} kills, "
        # with no cancer cell left there is no mean (the reporters are NaN): 0 would read as
        # complete immunoediting
        + (f"mean antigenicity {last['MeanAntigenicity']:.2f}; "
           f"{last['HypoxicFraction']:.0%} hypoxic" if last["CancerCells"] else
           "tumour eliminated (no mean antigenicity)")
        + f", {int(last['NecroticSites'])} necrotic sites"
        + f", {int(last['Vessels'])} of {len(model.vessels) + len(model.collapsed_vessels)} "
        "vessels open"
    )
    if out is None:
        typer.echo("nothing written (give --out FILE.parquet or FILE.csv to keep the time "
                   "series)")
        return
    from abm.report import csv_ready

    # the time series and its sidecar replace an earlier pair together, or not at all (a full
    # disk while writing either leaves both as they were)
    with file_errors(), AtomicFiles() as files:
        files.write(out, table_bytes(csv_ready(df) if out.suffix.lower() == ".csv" else df, out))
        files.write(sidecar, json_bytes(
            {"scenario": scenario, "species": effective_species(scenario, species),
             "engine": engine, "steps_requested": n_steps, "steps_run": int(model.steps),
             "seed": model.seed, "seed_drawn": drawn, "parameters": model.p,
             "doses": model.dose_log, **provenance()}))
    note = f" (replaced the existing {' and '.join(p.name for p in replaced)})" if replaced else ""
    typer.echo(f"wrote {out} ({len(df)} rows) and {sidecar}{note}")


@app.command(cls=PlainErrors)
def scenarios() -> None:
    """List the named scenarios with a one-line description."""
    from abm.scenarios import SCENARIOS

    width = max(map(len, SCENARIOS))
    for name, spec in SCENARIOS.items():
        typer.echo(f"{name:<{width}}  {spec['summary']}")


@app.command(cls=PlainErrors)
def params(
    markdown: Annotated[bool, typer.Option(help="Print the Markdown table for the docs.")] = False,
) -> None:
    """List every parameter with default, unit, range, description and source."""
    from abm.params import PARAMS, markdown_table

    if markdown:
        typer.echo(markdown_table())
        return
    for p in PARAMS.values():
        typer.echo(f"{p.name} = {p.default!r} [{p.unit}] {p.allowed()}: {p.description} "
                   f"(source: {p.source})")


@app.command(cls=PlainErrors)
def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep spec (TOML); see docs/sweeps.md.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Sweep directory (created; rerun to resume). Required unless "
                     "--dry-run.", show_default=False),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes.", show_default="all local cores")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="serial | process | dask.", show_default="process")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Run on an existing Dask cluster, e.g. tcp://HOST:8786 or "
                     "tls://HOST:8786 (see docs/sweeps.md to secure it).",
                     show_default="a local cluster"),
    ] = None,
    dask_dashboard: Annotated[
        str | None,
        typer.Option(help="Serve the local Dask cluster's dashboard here, e.g. "
                     "127.0.0.1:8787.", show_default="off"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Check the spec, print its size and first runs; run nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Accept a sweep above the size limits (docs/sweeps.md).")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Run a batch parameter sweep: every point x replicate, one Parquet file per run.

    Rerunning the same command after a crash or Ctrl-C runs only what is missing.
    Example: abm sweep experiments/checkpoint_timing.toml --out sweeps/checkpoint
    """
    import itertools

    from abm.params import value_text
    from abm.sweep import (
        BACKENDS,
        RunFailed,
        SpecError,
        SweepError,
        iter_runs,
        load_spec,
        read_spec_text,
        run_sweep,
        size_line,
    )
    from abm.sweep.runner import check_dashboard_address, check_out, check_scheduler
    from abm.sweep.spec import count

    if backend is not None and backend not in BACKENDS:
        fail(f"--backend {value_text(backend)}: expected one of {', '.join(BACKENDS)}")
    if scheduler and backend not in (None, "dask"):
        fail(f"--scheduler sends runs to Dask; it cannot be combined with --backend {backend}")
    if workers is not None and workers < 1:
        fail(f"--workers {workers}: expected an integer >= 1")
    if backend == "serial" and workers is not None and workers > 1:
        fail(f"--workers {workers}: the serial backend runs one run at a time in this process "
             "(--workers 1 at most); leave out --backend serial to use "
             f"{workers} processes (the process backend), or leave out --workers")
    if dask_dashboard and scheduler:
        fail("--dask-dashboard is for the local Dask cluster (--backend dask without "
             "--scheduler); an external cluster has its own")
    if dask_dashboard and backend != "dask":
        fail(f"--dask-dashboard is for the local Dask cluster: add --backend dask"
             f"{'' if backend is None else f' (not {backend})'}")
    if out is None and not dry_run:
        fail("--out DIR: required (the sweep directory; rerun the command to resume)")
    try:
        if scheduler:
            check_scheduler(scheduler)
        if dask_dashboard:
            check_dashboard_address(dask_dashboard, "--dask-dashboard")
        parsed = load_spec(spec, force=force)
        spec_text = read_spec_text(spec)
    except (SpecError, SweepError) as err:
        fail(str(err))
    if dry_run:
        typer.echo(f"{spec}: ok: {size_line(parsed)}; varied: {', '.join(parsed.varied) or '-'}")
        for run in itertools.islice(iter_runs(parsed), 20):
            values = ", ".join(f"{k}={v}" for k, v in run.varied.items())
            typer.echo(f"  {run.run_id}  seed={run.seed}  {values}")
        if parsed.n_runs > 20:
            typer.echo(f"  ... {parsed.n_runs - 20} more")
        return
    try:
        with file_errors():
            check_out(out)  # run_sweep's own check, before the CLI creates the directory
    except SweepError as err:
        fail(f"--out {err}")
    with _sigterm_as_interrupt() as terminated:
        created: list[Path] = []
        try:
            created = check_output_dir(out)
            result = run_sweep(
                parsed, out, backend=backend or "process", workers=workers, scheduler=scheduler,
                progress=not quiet, spec_text=spec_text, log=typer.echo, dashboard=dask_dashboard,
            )
        except SweepError as err:
            _remove_created(created)  # (run_sweep removed what it wrote before any run)
            fail(str(err))
        except RunFailed as err:
            typer.echo(f"error: {err}; finished runs are kept in {out}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            # stopped before any run finished (e.g. while connecting to Dask): run_sweep removed
            # what it wrote, and the folders made here go too, so nothing is left to confuse a
            # rerun; otherwise the finished runs are kept
            _remove_created(created)
            kept = ("nothing was written" if not out.exists() else
                    "finished runs are kept: rerun the same command to continue")
            typer.echo(("\nstopped (SIGTERM)" if terminated() else "\ninterrupted")
                       + f"; {kept}", err=True)
            raise typer.Exit(143 if terminated() else 130) from None
    counts = result.summary["outcome"].value_counts()
    typer.echo(
        f"done: {count(result.total, 'run')} ({result.ran} now, {result.already_done} before) "
        "on the "
        f"{parsed.engine} engine in {out}; "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[Callable[[], bool]]:
    """Within the block, SIGTERM (``kill``, a job scheduler's time limit) stops a run or a
    sweep as Ctrl-C does (``KeyboardInterrupt``: a sweep's finished runs are kept). Yields a
    check of whether it was SIGTERM; the previous handler is back after the block."""
    import signal

    got: list[int] = []

    def handler(signum, frame):
        got.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a test runner's thread): leave it alone
        previous = None
    try:
        yield lambda: bool(got)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _remove_empty(directory: Path) -> None:
    """Remove a directory this command created if nothing was written in it."""
    try:
        directory.rmdir()
    except OSError:
        pass


def _remove_created(folders: list[Path]) -> None:
    """Remove the folders a failed check created (given outermost first), deepest first; each
    only if still empty."""
    for folder in reversed(folders):
        _remove_empty(folder)


@contextmanager
def _removed_if_empty_on_failure(created: list[Path]) -> Iterator[None]:
    """The folders ``check_output_dir`` created go again (each only if still empty) when the
    command then fails or is interrupted, so a failed ``abm report`` or ``abm export`` leaves
    no empty folder behind."""
    try:
        yield
    except BaseException:
        _remove_created(created)
        raise


@app.command(cls=PlainErrors)
def report(
    directory: Annotated[Path, typer.Argument(help="A sweep directory (from `abm sweep`).")],
    outcome: Annotated[
        str, typer.Option(help="Summary column to plot and analyse (e.g. final_burden).")
    ] = "final_burden",
    series: Annotated[
        str, typer.Option(help="Time-series column for the per-point plot.")
    ] = "CancerCells",
    out: Annotated[
        Path | None, typer.Option(help="Where to write.", show_default="DIR/report")
    ] = None,
) -> None:
    """Plots (PNG) and a Markdown summary of a sweep (an unfinished one says how far it got)."""
    from abm.report import ReportError, Sweep, check_choices, write_report
    from abm.report.base import outside_runs

    target = out if out is not None else directory / "report"
    try:
        sweep = Sweep(directory)
        if "patients" in sweep.spec and (outcome, series) != ("final_burden", "CancerCells"):
            fail(f"{directory} is a cohort: its report is the responses per arm (waterfall, "
                 "spider, Kaplan-Meier; docs/cohorts.md), so --outcome and --series do not "
                 "apply; use abm export and your own plots for other columns")
        check_choices(sweep, outcome=outcome, series=series)
        outside_runs(sweep, target, "--out")
    except ReportError as err:
        fail(str(err))
    replacing = (target / "report.md").exists()
    created = check_output_dir(target, *(("--out",) if out is not None else ("", None,
                                                                            ELSEWHERE)))
    with _removed_if_empty_on_failure(created):
        try:
            with file_errors():
                path = write_report(directory, outcome=outcome, series=series, out=target)
        except ReportError as err:
            fail(str(err))
    typer.echo(f"wrote {path}" + (" (replaced the earlier report)" if replacing else ""))


@app.command(cls=PlainErrors)
def export(
    directory: Annotated[Path, typer.Argument(help="A sweep directory (from `abm sweep`).")],
    csv: Annotated[
        bool, typer.Option("--csv", help="Write CSV files (the default and only format).")
    ] = True,
    out: Annotated[
        Path | None, typer.Option(help="Where to write.", show_default="DIR/export")
    ] = None,
) -> None:
    """Export a sweep for spreadsheets (CSV files and about.json).

    summary.csv and timeseries.csv (all runs), for a cohort patients.csv (each patient's
    response in each arm), and about.json: how the runs were made (engine, spec, model and
    package versions, git commit; from the sweep's manifest) and whether the sweep was
    complete."""
    from abm.report import EXPORT_FILES, ReportError, Sweep, export_csv
    from abm.report.base import outside_runs

    target = out if out is not None else directory / "export"
    try:
        outside_runs(Sweep(directory), target, "--out")
    except ReportError as err:
        fail(str(err))
    replacing = [n for n in EXPORT_FILES if (target / n).exists()]
    created = check_output_dir(target, *(("--out",) if out is not None else ("", None,
                                                                            ELSEWHERE)))
    with _removed_if_empty_on_failure(created):
        try:
            with file_errors():
                paths = export_csv(directory, out=target)
        except ReportError as err:
            fail(str(err))
    for path in paths:
        typer.echo(f"wrote {path}" + (" (replaced)" if path.name in replacing else ""))
    stale = target / "patients.csv"
    if "patients.csv" in replacing and not stale.exists():
        typer.echo(f"removed {stale} (an earlier cohort export's; this sweep is not a cohort)")


@app.command(cls=PlainErrors)
def serve(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on. 0.0.0.0 opens it to the whole network "
                     "(a classroom); the default is this machine only."),
    ] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(help="Port; default 8765 (a link a teacher can bookmark) or the next free "
                     "one; 0 picks any free port."),
    ] = None,
    max_sites: Annotated[
        int | None,
        typer.Option("--max-sites", help="Largest width x height a tab may ask for; default "
                     "no limit on 127.0.0.1 and 250000 beyond it; 0 means no limit."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the dashboard in a browser.")
    ] = False,
) -> None:
    """Start the browser dashboard and print its URL (Ctrl-C stops it).

    Each browser tab gets its own model. Works offline: Solara's JavaScript and CSS are
    served from the installed solara-assets package, not a CDN.

    Example: abm serve            (then open the printed URL)
    Example: abm serve --host 0.0.0.0 --port 8765   (a classroom network)
    """
    import os
    import subprocess

    from abm.dashboard.serving import serve_settings

    try:
        settings = serve_settings(host, port, max_sites)
    except (ValueError, OSError) as err:  # a bad option; a host or port that cannot be bound
        fail(str(err))
    for line in settings.lines:
        typer.echo(line)
    if settings.warning:
        typer.echo(settings.warning, err=True)
    os.environ.update(settings.env)
    port = settings.port
    command = [sys.executable, "-m", "solara", "run", "abm.server", "--host", host,
               "--port", str(port), "--production", "--open" if open_browser else "--no-open",
               "--log-level", "warning"]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":  # the server takes over this process: one pid to stop
        os.execv(sys.executable, command)
    raise typer.Exit(subprocess.call(command))  # pragma: no cover - Windows


def _reflowed(doc: str) -> str:
    """A command's docstring as its ``--help`` text: each paragraph one line (Typer's rich
    help keeps the docstring's line breaks, which break sentences mid-line), except that each
    ``Example:`` line stays a line of its own."""
    paragraphs = []
    for paragraph in inspect.cleandoc(doc).split("\n\n"):
        lines: list[str] = []
        for line in paragraph.splitlines():
            if lines and not line.startswith("Example:") and not lines[-1].startswith("Example:"):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.strip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


for _command in app.registered_commands:
    if _command.help is None and _command.callback is not None and _command.callback.__doc__:
        _command.help = _reflowed(_command.callback.__doc__)


def main() -> None:
    """The ``abm`` command (``pyproject.toml``'s script): Ctrl-C before a command has started
    is one line and exit 130, as within one, not a traceback. So is one where a command does
    not catch it (while ``abm report`` reads a sweep, or a run's first seconds): Typer turns
    it into exit 130 without a word, which looked like a crash or a finished command.

    A path that is not UTF-8 (a folder named in another encoding) is printed as its bytes, as
    ``ls`` does: under a UTF-8 locale Python's output refused it, and a finished ``abm report``
    ended in a traceback."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("\ninterrupted", err=True)
        sys.exit(130)
    except SystemExit as done:  # Typer's: typer.Exit(130) raised from the KeyboardInterrupt
        if done.code == 130 and isinstance(getattr(done.__context__, "__cause__", None),
                                           KeyboardInterrupt):
            typer.echo("\ninterrupted", err=True)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
