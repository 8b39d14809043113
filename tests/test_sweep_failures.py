"""Sweep backends failing the way they do in real use, each stopping with one clear line and
exit code 2 (``SweepError`` from Python), no traceback, nothing written lost: a Dask scheduler
lost mid-sweep, a ``--scheduler`` port that is not a Dask scheduler (the dashboard's, an easy
mistake), and a script calling ``run_sweep`` without the ``if __name__ == "__main__":`` guard.
Everything started here binds 127.0.0.1 only and is stopped by its process id; every wait has
a deadline."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, start_dask_scheduler, stop_process

SPEC = """\
[sweep]
name = "lose"
days = 1
replicates = {replicates}
seed = 7

[parameters]
width = 24
height = 24
initial_tumor_cells = 20
"""

MINI = {"sweep": {"name": "mini", "steps": 2, "record_every": 1, "replicates": 2},
        "parameters": {"width": 20, "height": 20, "initial_tumor_cells": 10}}

# the CLI, with the scheduler's connect timeout shortened (a module constant) to keep tests fast
CLI_1S_TIMEOUT = ("import sys, abm.sweep.backends as b; b.CONNECT_TIMEOUT = '1s'; "
                  "from abm.cli import main; sys.argv[0] = 'abm'; main()")


def _run(command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` whose process is killed (by its id) if it outlives ``timeout``: a test
    of a hang fails instead of hanging."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{command[-6:]} still running after {timeout} s: {err[-2000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.05)


# --- 1. the Dask scheduler lost mid-sweep --------------------------------------------------


def _sweep_until_two_runs(tmp_path: Path, address: str, replicates: int,
                          pause: float) -> tuple[subprocess.Popen, Path]:
    """``abm sweep`` of ``replicates`` runs at the Dask scheduler ``address``, started and
    waited on until two of its runs are written (90 s at most); returns it and its folder."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(replicates=replicates))
    out = tmp_path / "sweep"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "abm.cli", "sweep", str(spec), "--out", str(out),
         "--scheduler", address, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 90
    try:
        while len(list((out / "runs").glob("*.parquet"))) < 2:
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "no run finished within 90 s"
            time.sleep(pause)
    except BaseException:  # the caller never gets it to stop
        stop_process(sweep)
        raise
    return sweep, out


def test_losing_the_dask_scheduler_mid_sweep_is_one_line_and_keeps_the_finished_runs(tmp_path):
    """``abm sweep --scheduler``; once two runs are on disk the scheduler is killed. Dask cancels
    every task then; the sweep stops with one line naming the scheduler and the runs kept, exit
    2, no traceback (it was ``TypeError: cannot unpack non-iterable FutureCancelledError``), and
    without distributed's own "Failed to reconnect" line."""
    dask = Path(sys.executable).parent / "dask"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler, address = start_dask_scheduler()
    worker = sweep = None
    try:
        _wait_for_port(int(address.rsplit(":", 1)[1]), scheduler)
        worker = subprocess.Popen(
            [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
             "--host", "127.0.0.1"], **quiet
        )
        sweep, out = _sweep_until_two_runs(tmp_path, address, 40, pause=0.01)
        scheduler.send_signal(signal.SIGKILL)
        stdout, stderr = sweep.communicate(timeout=60)
    finally:
        for proc in (sweep, worker, scheduler):
            if proc is not None:
                stop_process(proc)
    assert sweep.returncode == 2, stderr
    kept = len(list((out / "runs").glob("*.parquet")))
    assert 2 <= kept < 40
    assert stderr.strip() == (f"error: lost the Dask scheduler at {address}; the {kept} finished "
                              "runs are kept; rerun the same command to continue"), stderr
    assert (out / "manifest.json").exists() and not (out / "summary.parquet").exists()


def test_a_scheduler_that_cannot_be_asked_once_does_not_stop_the_sweep(tmp_path, monkeypatch):
    """Asking the scheduler for its workers can fail before the client knows the scheduler is
    gone (``Stream is closed``: under load, the lost-scheduler test above once ended with that
    error instead of its one line). A sweep whose client is still connected then keeps its last
    number of tasks in flight and goes on; a lost scheduler is said as such by the checks (the
    test above). Here the third question fails (the first sizes the window, the second is the
    worker check, the third sizes the window after the first result), and every run finishes."""
    from dask.distributed import Client, LocalCluster

    import abm.sweep.backends as backends
    from abm.sweep import parse_spec, run_sweep

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as cluster:

        def connect(address):
            client = Client(address, timeout="20s")
            nthreads, asked = client.nthreads, [0]

            def flaky_nthreads(*args, **kwargs):
                asked[0] += 1
                if asked[0] == 3:
                    raise OSError("ConnectionPool.ncores local=tcp://127.0.0.1 remote="
                                  f"{address}: Stream is closed")
                return nthreads(*args, **kwargs)

            client.nthreads = flaky_nthreads
            return client

        monkeypatch.setattr(backends, "connect", connect)
        out = tmp_path / "s"
        # four runs, two in flight at a time: the window is sized again after the first result
        spec = {**MINI, "sweep": {**MINI["sweep"], "replicates": 4}}
        run_sweep(parse_spec(spec), out, scheduler=cluster.scheduler_address, progress=False,
                  log=lambda m: 0)
    assert len(list((out / "runs").glob("*.parquet"))) == 4
    assert (out / "summary.parquet").exists()


def test_a_cancelled_dask_task_is_a_sweep_error_not_a_result(tmp_path, monkeypatch):
    """The result path itself, with a real ``distributed`` client: a task cancelled on the
    cluster (here explicitly) is named as such, never handed to the runner as a result."""
    from dask.distributed import Client, LocalCluster

    import abm.sweep.backends as backends
    from abm.sweep import SweepError, parse_spec, run_sweep

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as cluster:

        def connect(address):  # a real client, whose tasks are cancelled as soon as submitted
            client = Client(address, timeout="20s")
            submit = client.submit

            def submit_and_cancel(*args, **kwargs):
                future = submit(*args, **kwargs)
                future.cancel(reason="cancelled-by-test")
                return future

            client.submit = submit_and_cancel
            return client

        monkeypatch.setattr(backends, "connect", connect)
        with pytest.raises(SweepError, match=r"^run p00000-r00\d was cancelled on the Dask "
                           r"cluster \(cancelled-by-test\); the finished runs are kept"):
            run_sweep(parse_spec(MINI), tmp_path / "s", scheduler=cluster.scheduler_address,
                      progress=False, log=lambda m: 0)
    assert not (tmp_path / "s").exists()  # a new sweep with no finished run leaves nothing


# --- 2. a --scheduler port that is not a Dask scheduler ------------------------------------


@pytest.mark.parametrize("server", ["http", "silent"])
def test_a_port_that_is_no_dask_scheduler_gives_up_in_time_and_leaves_nothing(tmp_path, server):
    """``--scheduler`` at an HTTP server (as the dashboard's port 8787 is) or at a port that
    accepts connections and never answers: ``Client`` used to wait forever for the handshake,
    with ``manifest.json`` and ``.lock`` written. Now: one line after the connect timeout (1 s
    here), exit 2, and no directory left behind."""
    port = free_port()
    http = listener = None
    if server == "http":
        http = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    else:  # the kernel completes each connection; nobody reads or answers
        listener = socket.socket()
        listener.bind(("127.0.0.1", port))
        listener.listen(8)
    try:
        if http is not None:
            _wait_for_port(port, http)
        spec = tmp_path / "spec.toml"
        spec.write_text(SPEC.format(replicates=1))
        out = tmp_path / "sweep"
        address = f"tcp://127.0.0.1:{port}"
        started = time.monotonic()
        result = _run([sys.executable, "-c", CLI_1S_TIMEOUT, "sweep", str(spec), "--out",
                       str(out), "--scheduler", address, "--quiet"], timeout=60)
        took = time.monotonic() - started
    finally:
        if http is not None:
            stop_process(http)
        if listener is not None:
            listener.close()
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: --scheduler {address}: did not answer as a Dask scheduler within 1 s: is it "
        "the dashboard's port? The scheduler listens on its own port (8786 by default; "
        "`dask scheduler` prints it)"
    ), result.stderr
    assert took < 30
    assert not out.exists()  # no manifest.json, no .lock, no directory


# --- 3. run_sweep in a script without the __main__ guard -----------------------------------


def _script(tmp_path: Path, out: Path, guarded: bool, before: str = "") -> Path:
    """A script that runs a tiny sweep on the process pool and prints the ``SweepError`` it
    gets (exit 3), the call under the ``__main__`` guard or not; ``before``: code run first in
    every process that imports it."""
    call = (
        "try:\n"
        f"    run_sweep(spec, {str(out)!r}, backend='process', workers=2, progress=False)\n"
        "except SweepError as err:\n"
        "    print(f'SweepError: {err}')\n"
        "    raise SystemExit(3)\n"
    )
    if guarded:
        call = "if __name__ == '__main__':\n" + "".join(f"    {line}\n"
                                                      for line in call.splitlines())
    script = tmp_path / "script.py"
    script.write_text(
        "from abm.sweep import SweepError, parse_spec, run_sweep\n"
        f"spec = parse_spec({MINI!r})\n" + before + call
    )
    return script


def test_a_script_without_the_main_guard_gets_one_sweep_error_from_the_process_pool(tmp_path):
    """Each spawned worker imports the script again and so calls ``run_sweep`` while starting.
    The caller gets the ``SweepError`` saying so, at once (not ``RunFailed`` after three pool
    restarts), and the workers print nothing (it was 6 tracebacks for 2 workers)."""
    out = tmp_path / "out"
    script = _script(tmp_path, out, guarded=False)
    result = _run([sys.executable, str(script)], timeout=120, cwd=tmp_path)
    assert result.returncode == 3, result.stderr[-3000:]
    errors = [line for line in result.stdout.splitlines() if line.startswith("SweepError")]
    assert errors == [
        "SweepError: run_sweep was called while a worker process was starting: the process and "
        "dask backends start workers that import your script again, so call run_sweep under "
        '`if __name__ == "__main__":` (see docs/sweeps.md, From Python)'
    ], result.stdout
    assert "a worker process died" not in result.stdout  # no pool restarts
    assert result.stderr == "", result.stderr[-3000:]
    assert not out.exists()


def test_workers_that_die_while_starting_stop_the_sweep_at_once(tmp_path):
    """Workers that fail while importing the script (for any other reason) are not retried
    three times as lost runs: one ``SweepError`` with their exit code; their own error is
    printed once per worker."""
    out = tmp_path / "out"
    script = _script(tmp_path, out, guarded=True, before=(
        "if __name__ == '__mp_main__':\n"
        "    raise RuntimeError('no workers here')\n"
    ))
    result = _run([sys.executable, str(script)], timeout=120, cwd=tmp_path)
    assert result.returncode == 3, result.stderr[-3000:]
    assert re.search(r"^SweepError: the worker processes died while starting, before running "
                     r"anything \(exit code 1; their error, if any, is above",
                     result.stdout, re.M), result.stdout
    assert "a worker process died" not in result.stdout  # no pool restarts
    assert 1 <= result.stderr.count("RuntimeError: no workers here") <= 2
    assert not out.exists()


# --- 4. stopped (SIGTERM, Ctrl-C) while connecting to the Dask scheduler ------------------


def _ctrl_c_as_at_a_terminal() -> None:
    """In the child before it starts: Ctrl-C (SIGINT) acts, as it does for a command typed at a
    terminal. A shell ignores SIGINT in the jobs it starts in the background (``make test &``,
    ``nohup``), and a child inherits that: its Ctrl-C would then do nothing at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_sweep_stopped_during_the_scheduler_handshake_leaves_no_folder(tmp_path, stop):
    """``abm sweep --scheduler`` at a port that accepts and never answers, stopped (SIGTERM as
    a job scheduler sends, or Ctrl-C) while it waits for the handshake: it exits at once (143,
    130) with one line saying nothing was written, and the folders it created for ``--out``
    (here two, ``new/sweep``) are gone. They used to stay behind, empty (and the exit waited
    for the handshake's 20 s timeout)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(60)
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(replicates=1))
    sweep = subprocess.Popen(
        [sys.executable, "-m", "abm.cli", "sweep", str(spec), "--out", "new/sweep",
         "--scheduler", address, "--quiet"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ctrl_c_as_at_a_terminal)
    conn = None
    try:
        conn, _ = listener.accept()  # the runner is in the handshake now
        assert (tmp_path / "new" / "sweep").is_dir()  # created by the command
        time.sleep(0.3)
        started = time.monotonic()
        sweep.send_signal(stop)
        _, stderr = sweep.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        stop_process(sweep)
        if conn is not None:
            conn.close()
        listener.close()
    code, said = (143, "stopped (SIGTERM)") if stop == signal.SIGTERM else (130, "interrupted")
    assert sweep.returncode == code, stderr
    assert not (tmp_path / "new").exists(), list((tmp_path / "new").rglob("*"))
    assert stderr.strip() == f"{said}; nothing was written", stderr
    assert took < 15


def test_ctrl_c_at_a_terminal_stops_a_local_dask_sweep_in_one_line(tmp_path):
    """Ctrl-C at a terminal signals every process of the foreground group: the local Dask
    cluster's worker processes too, which printed their KeyboardInterrupt tracebacks and
    warnings (72 lines, 4 tracebacks) before the runner's line. The workers now ignore it and
    the runner, which gets it, closes the cluster: one line, exit 130, the finished runs kept
    and resumable."""
    import os

    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(replicates=60))  # (many: the sweep must not end before the signal)
    out = tmp_path / "sweep"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "abm.cli", "sweep", str(spec), "--out", str(out),
         "--backend", "dask", "--workers", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_ctrl_c_as_at_a_terminal)
    deadline = time.monotonic() + 120
    try:
        while not list((out / "runs").glob("*.parquet")):
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "no run finished within 120 s"
            time.sleep(0.1)
        os.killpg(sweep.pid, signal.SIGINT)  # as the terminal sends it: to the whole group
        _, stderr = sweep.communicate(timeout=60)
    finally:
        stop_process(sweep)
    assert sweep.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == ["interrupted; finished runs are kept: rerun the same command to "
                     "continue"], stderr
    assert list((out / "runs").glob("*.parquet"))


# --- 5. Dask workers whose results cannot be fetched ----------------------------------------


def test_a_worker_registered_at_port_0_stops_the_sweep_in_one_line_keeping_finished_runs(
        tmp_path):
    """A worker started with ``--listen-address tcp://127.0.0.1:0`` registers as
    ``tcp://127.0.0.1:0``: the runs it takes compute, but their results can never be fetched,
    and the sweep used to wait forever without a word. Here a good worker has finished some
    runs when such a worker joins: the sweep stops within seconds, in one line naming the
    worker and what to do, exit 2, with every finished run kept (the sweep resumes)."""
    dask = Path(sys.executable).parent / "dask"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler, address = start_dask_scheduler()
    good = bad = sweep = None
    try:
        _wait_for_port(int(address.rsplit(":", 1)[1]), scheduler)
        good = subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                 "--host", "127.0.0.1"], **quiet)
        sweep, out = _sweep_until_two_runs(tmp_path, address, 200, pause=0.05)
        bad = subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                "--listen-address", "tcp://127.0.0.1:0"], **quiet)
        try:
            _, stderr = sweep.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the sweep did not stop within 60 s of the port-0 worker starting")
    finally:
        for proc in (sweep, bad, good, scheduler):
            if proc is not None:
                stop_process(proc)
    assert sweep.returncode == 2, stderr
    kept = len(list((out / "runs").glob("*.parquet")))
    assert 2 <= kept < 200
    assert stderr.strip() == (
        "error: Dask worker tcp://127.0.0.1:0 cannot be reached: registered at port 0 (started "
        "with --listen-address ...:0?), so its results can never be fetched and the sweep would "
        "wait forever; stop it and start again without --listen-address (a free port is then "
        "picked and registered) or with a fixed port, e.g. --listen-address tcp://HOST:9000; "
        f"the {kept} finished runs are kept; rerun the same command to continue once the "
        "workers are fixed"), stderr
    assert (out / "manifest.json").exists() and not (out / "summary.parquet").exists()


def test_results_that_never_come_back_from_a_worker_stop_the_sweep_in_one_line(tmp_path):
    """A worker that registers an address the scheduler cannot connect to (here
    ``--contact-address`` at a port where nothing listens; in real use a wrong address, NAT
    or a firewall) computes its runs, but fetching each result fails and Dask computes it
    again, forever. After the same run's result failed three times the sweep stops with one
    line, exit 2. (The scheduler's connect timeout is 2 s here instead of 30 s, so this takes
    seconds.)"""
    import os

    dask = Path(sys.executable).parent / "dask"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}, **quiet)
    worker = None
    try:
        _wait_for_port(port, scheduler)
        nowhere = f"tcp://127.0.0.1:{free_port()}"
        worker = subprocess.Popen(
            [dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--listen-address",
             "tcp://127.0.0.1:0", "--contact-address", nowhere], **quiet)
        spec = tmp_path / "spec.toml"
        spec.write_text(SPEC.format(replicates=1))
        out = tmp_path / "sweep"
        result = _run([sys.executable, "-m", "abm.cli", "sweep", str(spec), "--out", str(out),
                       "--scheduler", address, "--quiet"], timeout=120)
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                stop_process(proc)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: the result of run p00000-r000 could not be fetched from its Dask worker 3 "
        "times: the scheduler cannot connect to a worker at the address it registered "
        f"(workers: {nowhere}); check each worker's --listen-address / --contact-address, "
        "firewalls and NAT; no run had finished; rerun the same command to continue once the "
        "workers are fixed"), result.stderr
    assert not out.exists()  # a new sweep with no finished run leaves nothing
