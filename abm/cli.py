"""Command line: ``abm run | scenarios | params | serve | sweep | report | export``.

Every command builds the model the same way, from ``abm.params`` and ``abm.scenarios``. Bad
input gives one clear line and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="abm: an agent-based model of the tumour microenvironment.",
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    """Print one line to stderr and exit 2 (bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def parse_sets(items: list[str]) -> dict[str, str]:
    """``--set name=value`` pairs into a dict (values stay strings; the model validates)."""
    out = {}
    for item in items:
        if "=" not in item:
            fail(f"--set {item!r}: expected name=value, e.g. --set mutation_rate=0.02")
        name, value = item.split("=", 1)
        out[name.strip()] = value.strip()
    return out


@app.command()
def run(
    scenario: Annotated[str | None, typer.Option(help="Named scenario (see `abm scenarios`).")]
    = None,
    days: Annotated[float | None, typer.Option(help="Simulated days (24 steps each).")] = None,
    steps: Annotated[int | None, typer.Option(help="Simulated hours (instead of --days).")]
    = None,
    rng: Annotated[str | None, typer.Option(help="Seed (an integer).")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a parameter: --set name=value (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the time series here (.parquet or .csv).")
    ] = None,
    record_every: Annotated[int, typer.Option(help="Keep every Nth step in the output.")] = 1,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Run one simulation headless and write its per-step time series.

    Example: abm run --scenario escape --days 30 --rng 3 --out run.parquet
    """
    from abm.params import validate
    from abm.run import build_params, provenance, simulate, write_json, write_table

    if days is not None and steps is not None:
        fail("give --days or --steps, not both")
    if days is not None and not days > 0:
        fail(f"--days {days}: expected a positive number of days")
    if steps is not None and steps <= 0:
        fail(f"--steps {steps}: expected a positive number of hours")
    if record_every < 1:
        fail(f"--record-every {record_every}: expected an integer >= 1")
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        fail(f"--out {str(out)!r}: expected a .parquet or .csv file name")
    n_steps = steps if steps is not None else round((days if days is not None else 30) * 24)
    try:
        overrides = parse_sets(set_ or [])
        if rng is not None:
            overrides["rng"] = rng
        params = build_params(scenario, overrides)
        params = validate(params)
        df, model = simulate(params, n_steps, record_every=record_every, progress=not quiet)
    except ValueError as err:
        fail(str(err))
    last = df.iloc[-1]
    typer.echo(
        f"day {last['Day']:.1f}: {int(last['CancerCells'])} cancer cells, "
        f"{int(last['TCells'])} T cells, {int(last['CARTCells'])} CAR-T, "
        f"{int(last['Kills'])} kills, mean antigenicity {last['MeanAntigenicity']:.2f}"
        + ("  (tumour eliminated)" if not model.running else "")
    )
    if out is not None:
        write_table(df, out)
        sidecar = out.with_name(out.name + ".json")
        write_json(
            {"scenario": scenario, "steps_requested": n_steps, "steps_run": int(model.steps),
             "seed": model.seed, "parameters": model.p, "doses": model.dose_log,
             **provenance()},
            sidecar,
        )
        typer.echo(f"wrote {out} ({len(df)} rows) and {sidecar}")


@app.command()
def scenarios() -> None:
    """List the named scenarios with a one-line description."""
    from abm.scenarios import SCENARIOS

    width = max(map(len, SCENARIOS))
    for name, spec in SCENARIOS.items():
        typer.echo(f"{name:<{width}}  {spec['summary']}")


@app.command()
def params(
    markdown: Annotated[bool, typer.Option(help="Print the Markdown table for the docs.")] = False,
) -> None:
    """List every parameter with default, unit, range and source."""
    from abm.params import PARAMS, markdown_table

    if markdown:
        typer.echo(markdown_table())
        return
    for p in PARAMS.values():
        typer.echo(f"{p.name} = {p.default!r} [{p.unit}] {p.allowed()}: {p.description}")


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep spec (TOML); see docs/sweeps.md.")],
    out: Annotated[Path, typer.Option(help="Sweep directory (created; rerun to resume).")],
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: all local cores).")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="serial | process | dask (default: process).")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Run on an existing Dask cluster, e.g. tcp://HOST:8786."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Check the spec and list the runs; run nothing.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Run a batch parameter sweep: every point x replicate, one Parquet file per run.

    Rerunning the same command after a crash or Ctrl-C runs only what is missing.
    Example: abm sweep experiments/checkpoint_timing.toml --out sweeps/checkpoint
    """
    from abm.sweep import BACKENDS, RunFailed, SpecError, SweepError, expand, load_spec, run_sweep

    if backend is not None and backend not in BACKENDS:
        fail(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if scheduler and backend not in (None, "dask"):
        fail(f"--scheduler sends runs to Dask; it cannot be combined with --backend {backend}")
    if workers is not None and workers < 1:
        fail(f"--workers {workers}: expected an integer >= 1")
    try:
        parsed = load_spec(spec)
    except SpecError as err:
        fail(str(err))
    if dry_run:
        runs = expand(parsed)
        typer.echo(
            f"{spec}: ok: {parsed.n_points} points x {parsed.replicates} replicates = "
            f"{len(runs)} runs of {parsed.steps} steps; varied: {', '.join(parsed.varied) or '-'}"
        )
        for run in runs[:20]:
            values = ", ".join(f"{k}={v}" for k, v in run.varied.items())
            typer.echo(f"  {run.run_id}  seed={run.seed}  {values}")
        if len(runs) > 20:
            typer.echo(f"  ... {len(runs) - 20} more")
        return
    try:
        result = run_sweep(
            parsed, out, backend=backend or "process", workers=workers, scheduler=scheduler,
            progress=not quiet, spec_text=spec.read_text(encoding="utf-8"), log=typer.echo,
        )
    except SweepError as err:
        fail(str(err))
    except RunFailed as err:
        typer.echo(f"error: {err}; finished runs are kept in {out}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("\ninterrupted; finished runs are kept: rerun the same command to continue",
                   err=True)
        raise typer.Exit(130) from None
    counts = result.summary["outcome"].value_counts()
    typer.echo(
        f"done: {result.total} runs ({result.ran} now, {result.already_done} before) in {out}; "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="A sweep directory (from `abm sweep`).")],
    outcome: Annotated[
        str, typer.Option(help="Summary column to plot and analyse (e.g. final_burden).")
    ] = "final_burden",
    series: Annotated[
        str, typer.Option(help="Time-series column for the per-point plot.")
    ] = "CancerCells",
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: DIR/report).")
    ] = None,
) -> None:
    """Plots (PNG) and a Markdown summary of a finished sweep."""
    from abm.report import ReportError, write_report

    try:
        path = write_report(directory, outcome=outcome, series=series, out=out)
    except ReportError as err:
        fail(str(err))
    typer.echo(f"wrote {path}")


@app.command()
def export(
    directory: Annotated[Path, typer.Argument(help="A sweep directory (from `abm sweep`).")],
    csv: Annotated[bool, typer.Option("--csv", help="Write CSV files.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: DIR/export).")
    ] = None,
) -> None:
    """Export a sweep for spreadsheets: summary.csv and timeseries.csv (all runs)."""
    from abm.report import ReportError, export_csv

    if not csv:
        fail("choose a format: --csv (the only one so far; the sweep itself is Parquet)")
    try:
        paths = export_csv(directory, out=out)
    except ReportError as err:
        fail(str(err))
    for path in paths:
        typer.echo(f"wrote {path}")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _free_port(host: str, port: int) -> int:
    """``port`` if it can be bound on ``host``; for 0, a free port chosen by the system."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as err:
            what = f"port {port} on {host}" if port else f"host {host!r}"
            fail(f"cannot listen on {what}: {err.strerror or err}")
        return sock.getsockname()[1]


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on. 0.0.0.0 opens it to the whole network "
                     "(a classroom); the default is this machine only."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
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
    import socket
    import subprocess

    if not 0 <= port <= 65535:
        fail(f"--port {port}: expected 0 (any free port) or 1-65535")
    port = _free_port(host, port)
    if host in LOOPBACK_HOSTS:
        typer.echo(f"abm dashboard: http://{host}:{port}  (Ctrl-C to stop)")
    else:
        typer.echo(f"abm dashboard: http://{socket.gethostname()}:{port} on the network, "
                   f"http://127.0.0.1:{port} here  (Ctrl-C to stop)")
        typer.echo(
            f"warning: --host {host} lets anyone on this network open the dashboard and run "
            "models on this machine; use it only on a network you trust (a classroom), and "
            "the default 127.0.0.1 otherwise.",
            err=True,
        )
    command = [sys.executable, "-m", "solara", "run", "abm.server", "--host", host,
               "--port", str(port), "--production", "--open" if open_browser else "--no-open",
               "--log-level", "warning"]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":  # the server takes over this process: one pid to stop
        os.execv(sys.executable, command)
    raise typer.Exit(subprocess.call(command))  # pragma: no cover - Windows


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
