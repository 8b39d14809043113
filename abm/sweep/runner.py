"""The sweep runner (``run_sweep``): runs every missing run of a spec into a sweep directory,
on one of the backends, and rebuilds the summary.

Only the runner writes: the manifest first (or checks that the directory holds the same sweep),
then each run's file as its result arrives, then the summary. A lock keeps a second runner out.
Rerunning after a crash runs only the missing runs, and the summary is rebuilt from the files, so
a resumed sweep equals an uninterrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from abm.sweep.backends import (
    BACKENDS,
    POOL_WORKER_NAME,
    UNGUARDED,
    UNGUARDED_EXIT,
    SchedulerLost,
    WorkersUnreachable,
    run_dask,
    run_process,
    run_serial,
)
from abm.sweep.execute import Result
from abm.sweep.expansion import Run, expand, make_task
from abm.sweep.schema import as_int
from abm.sweep.spec import Spec
from abm.sweep.storage import (
    StaleSweep,
    SweepError,
    build_summary,
    check_existing,
    checked_run_summary,
    make_manifest,
    os_error_text,
    run_path,
    write_run,
)


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

        self.created = not self.path.exists()
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

        if self.created and not (self.path.parent / "manifest.json").exists():
            # a folder refused as not this sweep's (no manifest written): no lock file left
            # among someone else's files
            self.path.unlink(missing_ok=True)
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


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
    dashboard: str | None = None,
) -> SweepOutcome:
    """Run every missing run of ``spec`` into ``out`` and (re)build ``summary.parquet``.

    Args:
        spec: a validated spec (``load_spec``).
        out: the sweep directory; created if needed. An existing one must hold the same sweep.
        backend: ``serial`` (in this process), ``process`` (a local process pool) or ``dask``.
        workers: processes for ``process`` and a local Dask cluster (default: all cores; never
            more than the runs to do). The ``serial`` backend runs in this process, one run at
            a time: ``workers`` above 1 is not used, and ``log`` says so.
        scheduler: address of an existing Dask scheduler (implies ``backend="dask"``).
        progress: show a progress bar (runs done, rate, time left).
        spec_text: the spec file's text, kept in the manifest for the record.
        log: where one-line messages go.
        dashboard: address for the Dask dashboard of a local cluster (``HOST:PORT``, e.g.
            ``127.0.0.1:8787``); default: none (off).

    A file-system error (``OSError``) becomes a ``SweepError`` naming the path. A new sweep that
    fails before its first run leaves nothing behind. A wrong type for ``spec`` or ``out`` is a
    ``TypeError``; called from a script without ``if __name__ == "__main__":`` (in a worker
    that is starting), a ``SweepError`` saying so.
    """
    _check_not_spawning()
    if not isinstance(spec, Spec):
        raise TypeError(f"run_sweep: spec must be a Spec from load_spec() or parse_spec(), got "
                        f"{type(spec).__name__}")
    if not isinstance(out, str | os.PathLike):
        raise TypeError(f"run_sweep: out must be the sweep directory's path (str or Path), got "
                        f"{type(out).__name__}")
    if os.fspath(out) == "":  # (Path("") is the current folder, as the CLI refuses it too)
        raise SweepError('run_sweep: out "": an empty path; give the sweep directory to write, '
                         "e.g. 'sweeps/checkpoint' ('.' for the current folder)")
    backend = "dask" if scheduler else backend
    if backend not in BACKENDS:
        raise SweepError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if workers is not None:
        count = as_int(workers)
        if count is None or count < 1:
            raise SweepError(f"workers = {workers!r}: expected an integer >= 1")
        workers = count
    if scheduler:
        check_scheduler(scheduler)
    if dashboard is not None:
        if backend != "dask" or scheduler:
            raise SweepError(
                f"dashboard {dashboard!r}: for a local Dask cluster only (backend=\"dask\" "
                "without a scheduler); an existing cluster has its own"
            )
        check_dashboard_address(dashboard)
    if backend == "serial" and workers is not None and workers > 1:
        # (a note, not an error: scripts and benchmarks pass the same workers to every backend)
        log(f"note: the serial backend runs one run at a time in this process; workers = "
            f"{workers} is not used (backend=\"process\" runs {workers} processes)")
    workers = workers or os.cpu_count() or 1
    out = Path(out)
    try:
        check_out(out)
    except OSError as err:
        raise SweepError(os_error_text(err)) from None
    created = _new_dirs(out)
    try:
        return _run(spec, out, backend, workers, scheduler, progress, spec_text, log, dashboard)
    except OSError as err:
        raise SweepError(os_error_text(err)) from None
    finally:
        for path in created[::-1]:  # the folders made here, if still empty (see _run)
            try:
                path.rmdir()  # only if empty: nothing of the user's, or of another runner's
            except OSError:
                pass


def check_out(out: Path) -> None:
    """The sweep directory: new, empty, or holding a sweep (its ``manifest.json``); a file, or a
    directory of other files (the sweep's would mix with them), is refused before anything is
    created. (A ``runs/`` folder without a manifest is left to ``check_existing`` to explain.)"""
    if out.exists() and not out.is_dir():
        raise SweepError(f"{out}: exists and is not a directory")
    if out.is_dir() and not (out / "manifest.json").exists():
        others = sorted(p.name for p in out.iterdir() if p.name not in (".lock", "runs"))
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise SweepError(
                f"{out}: holds other files ({shown}) and is not a sweep directory (no "
                "manifest.json); give a new or empty directory, or an earlier sweep's to resume it"
            )


def _check_not_spawning() -> None:
    """Refuse a sweep started while this process is a worker starting up: the process pool and
    Dask start their workers with ``spawn``, which imports the calling script again in each
    worker, so a script that calls ``run_sweep`` without the ``__main__`` guard would start the
    sweep again in every worker (which then die, and the pool is restarted three times). The
    flag is the one ``multiprocessing`` itself checks for this
    (``spawn._check_not_importing_main``). A worker of the process pool ends quietly with the
    exit code ``UNGUARDED_EXIT``, and the runner raises the ``SweepError`` once, instead of each
    worker printing its traceback; elsewhere (a Dask worker) the ``SweepError`` is raised here."""
    import multiprocessing

    process = multiprocessing.current_process()
    if getattr(process, "_inheriting", False):
        if process.name == POOL_WORKER_NAME:
            raise SystemExit(UNGUARDED_EXIT)
        raise SweepError(UNGUARDED)


def check_dashboard_address(address: str, option: str = "dashboard") -> None:
    """An address for the local Dask cluster's dashboard: ``HOST:PORT`` (``[::1]:PORT`` for
    IPv6) with the port in 1-65535; ``SweepError`` otherwise, naming ``option`` (the CLI passes
    ``--dask-dashboard``), before anything is created."""
    import re

    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})",
                         address.strip()) if isinstance(address, str) else None
    if not match or not 0 < int(match.group(2)) < 65536:
        raise SweepError(
            f"{option} {address!r}: expected HOST:PORT with a port in 1-65535, e.g. "
            "127.0.0.1:8787"
        )


def _new_dirs(out: Path) -> list[Path]:
    """The directories that creating ``out`` makes (outermost first)."""
    missing = []
    for path in [out, *out.parents]:
        if path.exists():
            break
        missing.append(path)
    return missing[::-1]


def _completed(out: Path) -> bool:
    return (out / "summary.parquet").exists()


def _remove_new(out: Path) -> None:
    """What a new sweep wrote before its first run (called holding the lock); the folders
    that ``run_sweep`` made go after it, each if empty."""
    for name in ("manifest.json", ".lock"):
        (out / name).unlink(missing_ok=True)
    for tmp in (out / "runs").glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    try:
        (out / "runs").rmdir()  # only if empty
    except OSError:
        pass


def check_scheduler(address: str) -> None:
    """A Dask scheduler address: ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (``HOST:PORT`` is
    taken as tcp); ``SweepError`` otherwise, before anything is created."""
    import re

    match = re.fullmatch(r"(?:(tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})",
                         address.strip())
    if not match or not 0 < int(match.group(3)) < 65536:
        raise SweepError(
            f"--scheduler {address!r}: expected a Dask scheduler address such as "
            "tcp://HOST:8786 or tls://HOST:8786"
        )


def _run(
    spec: Spec, out: Path, backend: str, workers: int, scheduler: str | None, progress: bool,
    spec_text: str | None, log: Callable[[str], None], dashboard: str | None,
) -> SweepOutcome:
    runs = expand(spec)
    manifest = make_manifest(spec, runs, spec_text)
    out.mkdir(parents=True, exist_ok=True)
    with _DirLock(out):
        # decided and undone under the lock: a runner that loses the lock to another one
        # started at the same moment touches nothing of the winner's
        fresh = not (out / "manifest.json").exists()
        try:
            return _run_locked(spec, out, backend, workers, scheduler, progress, manifest,
                               runs, log, dashboard)
        finally:
            # a new sweep that failed before its first run leaves nothing behind (no
            # manifest, lock or runs folder), so the same command can simply be run again
            if fresh and not any((out / "runs").glob("*.parquet")) and not _completed(out):
                _remove_new(out)


def _run_locked(
    spec: Spec, out: Path, backend: str, workers: int, scheduler: str | None, progress: bool,
    manifest: dict[str, Any], runs: list[Run], log: Callable[[str], None],
    dashboard: str | None,
) -> SweepOutcome:
    from abm.run import provenance, write_json, write_table

    old = _open(out, manifest, log)
    missing, read = _missing(out, runs, log)
    already = len(runs) - len(missing)
    workers = min(workers, max(len(missing), 1))  # no idle workers (process pool, Dask)
    if missing:
        resumed = f" ({already} already done)" if already else ""
        log(
            f"sweep {spec.name!r} ({spec.engine} engine): {len(missing)} of {len(runs)} runs "
            f"to do{resumed}, "
            + _where(backend, workers, scheduler)
        )
        if spec.engine == "fast" and not scheduler:
            from abm.fast import ensure_compiled

            # here, once, before the workers start (each would compile the same kernels);
            # said, else the first runs look stalled, with a wild ETA
            ensure_compiled(log, ", once, before the runs start")
    tasks = (make_task(spec, r) for r in missing)  # lazily: one dict per run otherwise
    if backend == "serial" or not missing:
        results = run_serial(tasks)
    elif backend == "process":
        results = run_process(tasks, workers, log=log)
    else:
        results = run_dask(tasks, workers, scheduler, f"abm-{manifest['content_hash'][:12]}",
                           dashboard=dashboard, log=log)
    _write_all(out, results, spec.name, len(runs), already, progress and bool(missing))
    summary = build_summary(out, [r.run_id for r in runs], read)
    write_table(summary, out / "summary.parquet")
    if spec.patients:  # a cohort: one row per patient and arm, with its response
        from abm.sweep.results import load_sweep, patients_table

        write_table(patients_table(load_sweep(out)), out / "patients.parquet")
    manifest = old or manifest
    manifest["completed"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["completed_with"] = {**provenance(), "backend": backend}
    write_json(manifest, out / "manifest.json")
    return SweepOutcome(out, len(runs), already, len(missing), summary)


def _open(out: Path, manifest: dict[str, Any], log: Callable[[str], None]) -> dict | None:
    """Write the manifest of a new sweep, or check that ``out`` holds this one (then return
    its manifest). Runs made by other model code (``provenance.model_code``) are refused."""
    from abm.run import write_json

    old = check_existing(out, manifest)
    if old is None:
        write_json(manifest, out / "manifest.json")
        return None
    made_by = old.get("provenance") or {}
    before, now = made_by.get("model_code"), manifest["provenance"]["model_code"]
    if before and before != now:  # (manifests written before this check have no hash)
        commit = made_by.get("git_commit")
        raise StaleSweep(
            f"{out}: its runs were made by other model code (git "
            f"{str(commit)[:8] if commit else 'unknown'}; abm/ has changed since), and resuming "
            "would mix results of two models: sweep into a new directory, or delete this "
            "one to rerun it"
        )
    commit_before, commit_now = made_by.get("git_commit"), manifest["provenance"]["git_commit"]
    if before is None and commit_before and commit_now and commit_before != commit_now:
        log(
            f"warning: the code changed since this sweep started (git {commit_before[:8]} -> "
            f"{commit_now[:8]}); finished runs are kept as they are"
        )
    return old


def _missing(out: Path, runs: list[Run],
             log: Callable[[str], None] = print) -> tuple[list[Run], dict[str, dict[str, Any]]]:
    """The runs without a sound file, in run-list order, and the summary rows of the others
    (read in the check: rerunning a finished 12,288-run sweep reads each footer once). Each
    existing run file is checked (its Parquet footer and stored summary); a broken one
    (truncated, empty, another run's) is removed, named, and run again. Temporary files of a
    killed runner go."""
    runs_dir = out / "runs"
    runs_dir.mkdir(exist_ok=True)
    for tmp in runs_dir.glob(".*.tmp"):  # left by a runner killed mid-write
        tmp.unlink(missing_ok=True)
    done = {p.stem for p in runs_dir.glob("*.parquet")}
    missing, read = [], {}
    for run in runs:
        if run.run_id in done:
            path = run_path(out, run.run_id)
            row, problem = checked_run_summary(path, run.run_id)
            if problem is None:
                read[run.run_id] = row
                continue
            log(f"warning: {path} is broken ({problem}); running {run.run_id} again")
            path.unlink()
        missing.append(run)
    return missing, read


def _where(backend: str, workers: int, scheduler: str | None) -> str:
    if backend == "dask":
        return f"on Dask ({scheduler})" if scheduler else (
            f"on a local Dask cluster of {workers} worker{'s' if workers != 1 else ''}"
        )
    if backend == "serial":
        return "in this process"
    return f"on {workers} local process{'es' if workers != 1 else ''}"


def _kept(done: int) -> str:
    """What a stopped sweep kept: ``the 3 finished runs are kept``."""
    return f"the {done} finished run{'s are' if done != 1 else ' is'} kept" if done else (
        "no run had finished")


def _write_all(
    out: Path, results: Iterator[Result], name: str, total: int, already: int, progress: bool
) -> None:
    """Write each run's file as its result arrives, with a progress bar; stop the backend (its
    workers) when done or interrupted."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=already, unit="run", desc=name, disable=not progress,
               dynamic_ncols=True)
    done = already
    try:
        for df, summary, probed in results:
            write_run(out, df, summary, probed)
            done += 1
            bar.update(1)
    except SchedulerLost as err:  # one line with what is kept; nothing of Dask's traceback
        raise SweepError(f"lost the Dask scheduler at {err.address}; {_kept(done)}; rerun the "
                         "same command to continue") from None
    except WorkersUnreachable as err:
        raise SweepError(f"{err.what}; {_kept(done)}; rerun the same command to continue "
                         "once the workers are fixed") from None
    finally:
        bar.close()
        close = getattr(results, "close", None)
        if close:
            close()
