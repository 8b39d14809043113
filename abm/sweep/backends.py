"""Where runs execute: in the runner's process (``serial``), a local process pool
(``process``) or Dask (``dask``: a ``LocalCluster`` or an existing scheduler).

Each backend takes an iterator of tasks (``abm.sweep.expansion.make_task``), runs
``abm.sweep.execute.execute_run`` on each and yields the results as they finish, taking tasks
lazily so nothing piles up in memory. A lost worker costs a retry of its runs; a run that raises
stops the sweep (``RunFailed``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from typing import Any

from abm.sweep.execute import Result, execute_run
from abm.sweep.storage import SweepError

BACKENDS = ("serial", "process", "dask")

# run_sweep called while a worker process starts (a script without the ``__main__`` guard,
# imported again by each spawned worker): what the runner is told, and the exit code with which
# such a pool worker ends (silently: the runner says it once; see runner._check_not_spawning)
UNGUARDED = (
    "run_sweep was called while a worker process was starting: the process and dask "
    "backends start workers that import your script again, so call run_sweep under "
    '`if __name__ == "__main__":` (see docs/sweeps.md, From Python)'
)
UNGUARDED_EXIT = 86
POOL_WORKER_NAME = "abm-sweep-pool-worker"  # the name of the process pool's worker processes


class RunFailed(RuntimeError):
    """A run raised an error in the model (not a lost worker): retrying would not help."""


class WorkersUnreachable(SweepError):
    """Dask workers whose results cannot be fetched (a worker registered at port 0, or the
    same run's result lost on the way back again and again): the sweep would wait forever. The
    runner adds the finished runs it kept."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what}; the finished runs are kept; rerun the same command to continue")


class SchedulerLost(SweepError):
    """The connection to the Dask scheduler was lost mid-sweep (the runner names the finished
    runs it kept)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(
            f"lost the Dask scheduler at {address}; the finished runs are kept; rerun the same "
            "command to continue"
        )


def _worker_init(runner_pid: int, started: Any = None) -> None:
    """Set up a pool worker: Ctrl-C reaches the whole process group, but the runner stops the
    workers itself; and a worker exits on its own if the runner is killed (``kill -9``), rather
    than waiting forever on its task queue. ``started`` (an event) tells the runner that this
    worker got through its start-up (importing the calling script included)."""
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if started is not None:
        started.set()

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
    ``max_losses`` times (it probably kills its worker, e.g. out of memory) stops the sweep.
    Workers that die while starting, before any of them could run anything (e.g. a script
    without the ``__main__`` guard), stop the sweep at once with a ``SweepError``."""
    import multiprocessing as mp

    ctx = _NamedSpawn(mp.get_context("spawn"))  # not fork: the runner has threads (progress bar)
    pending = _TaskQueue(tasks)
    losses: dict[str, int] = {}
    while pending:
        lost: list[dict[str, Any]] = []
        yield from _pool_round(pending, workers, ctx, lost)
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


class _NamedSpawn:
    """The ``spawn`` context, with the pool's worker processes named ``POOL_WORKER_NAME``: a
    worker knows from its name, while it starts, that the runner watches its exit code."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def Process(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - multiprocessing's name
        kwargs.setdefault("name", POOL_WORKER_NAME)
        return self._ctx.Process(*args, **kwargs)


def _start_failure(processes: list[Any]) -> SweepError:
    """Why the pool's workers died before any of them started: the calling script without the
    ``__main__`` guard (the exit code ``UNGUARDED_EXIT``), or another error while starting."""
    codes = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
    if UNGUARDED_EXIT in codes:
        return SweepError(UNGUARDED)
    died = next((c for c in codes if c != -15), codes[0] if codes else None)  # -15: stopped
    how = (f"killed by signal {-died}" if died < 0 else f"exit code {died}") if died else "?"
    return SweepError(
        f"the worker processes died while starting, before running anything ({how}; their "
        "error, if any, is above; the serial backend runs without workers)"
    )


def _pool_round(
    pending: _TaskQueue, workers: int, ctx: Any, lost: list[dict[str, Any]]
) -> Iterator[Result]:
    """One pool's lifetime: run tasks from ``pending`` until it is empty or a worker dies (the
    pool breaks). The runs lost with it are appended to ``lost``; those not started go back to
    ``pending``; runs that finished before the pool broke are kept. A pool whose workers all
    died while starting (none got to run anything) raises ``SweepError``: retrying would not
    help."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    started = ctx.Event()  # set by the first worker that gets through its start-up
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(), started)
    )
    in_flight: dict[Future, dict[str, Any]] = {}
    salvaged: list[Result] = []
    processes: dict[int, Any] = {}  # every worker this pool started (the pool forgets none)
    try:
        while pending or in_flight:
            while pending and len(in_flight) < 2 * workers:
                future = pool.submit(execute_run, pending.peek())
                in_flight[future] = pending.pop()
                processes.update((id(p), p) for p in pool_processes(pool))
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
    if lost and not salvaged and not started.is_set():
        raise _start_failure(list(processes.values()))
    yield from salvaged


def pool_processes(pool: Any) -> list[Any]:
    """The worker processes of a ``ProcessPoolExecutor``. The one use of a private internal
    (``pool._processes``): the standard library offers no public way to terminate them."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _stop_pool(pool: Any) -> None:
    """Stop a process pool now: queued runs are cancelled and running ones abandoned (their
    workers are terminated; the runs are simply missing and run again next time)."""
    processes = pool_processes(pool)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


CONNECT_TIMEOUT = "20s"  # to an existing scheduler (--scheduler)


def local_cluster(workers: int | None, dashboard: str | None = None) -> Any:
    """A Dask ``LocalCluster`` of ``workers`` single-threaded processes that only this process
    can use: TLS with temporary credentials (``Security.temporary()``: a fresh key and
    certificate held in memory, never written), so another local user who finds the port can
    neither connect nor run code on a worker. The scheduler's HTTP dashboard is off unless
    ``dashboard`` gives an address (e.g. ``127.0.0.1:8787``)."""
    from dask.distributed import LocalCluster

    try:
        from distributed.security import Security

        security = Security.temporary()
    except ImportError as err:  # Security.temporary needs the cryptography package
        raise SweepError(
            f"the local Dask cluster uses TLS, which needs the cryptography package ({err}); "
            "install it (pip install cryptography) or use --backend process"
        ) from None
    import dask

    # without a dashboard the scheduler (and each worker) still listens on HTTP, serving worker
    # and task information with no authentication: serve no routes there at all
    quiet_http = {} if dashboard else {
        "distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []
    }
    import logging

    spec_log = logging.getLogger("distributed.deploy.spec")  # "Cluster closed without ..."
    level = spec_log.level
    spec_log.setLevel(logging.ERROR)  # a failed start is said once, below
    import warnings

    try:
        with dask.config.set(quiet_http), warnings.catch_warnings(), _workers_ignore_ctrl_c():
            if not dashboard:  # its route-less HTTP server moving off a busy 8787 is no news
                # (it said "Hosting the HTTP server on port ... instead", as if a dashboard
                # were up; an address of our own for it would turn the dashboard's routes on)
                warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
            return LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, protocol="tls://",
                security=security, dashboard_address=dashboard,
                # the cluster's own log (its workers', nannies' and scheduler's): a task
                # cancelled or a result cut off as the runner closes the cluster on Ctrl-C
                # printed warnings, errors and tracebacks; the runner says what happened, in
                # one line (a failed run, a lost worker or scheduler: RunFailed, SweepError)
                silence_logs=logging.CRITICAL,
            )
    except (OSError, RuntimeError) as err:  # "Cluster failed to start: <the cause>"
        cause = err.__cause__ if isinstance(err.__cause__, Exception) else err
        text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        reason = getattr(cause, "strerror", None) or text
        where = f"dashboard {dashboard}: " if dashboard else ""
        raise SweepError(f"{where}the local Dask cluster could not start ({reason})") from None
    finally:
        spec_log.setLevel(level)


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """SIGINT ignored while the local cluster starts its worker processes, which inherit that
    (an ignored signal survives the start of a new program; Python then leaves it ignored).
    Ctrl-C at a terminal goes to every process of the foreground group: the workers printed
    their tracebacks of KeyboardInterrupt before the runner's one line; now the runner alone
    gets it and closes the cluster. (A Ctrl-C in the second or so the workers take to start is
    not seen; the next one is.)"""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # (only the main thread can change a signal's handler)
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def connect(scheduler: str) -> Any:
    """A client of an existing scheduler; ``SweepError`` (one line) if it cannot be reached, or
    if what answers there is not a Dask scheduler (e.g. the dashboard's HTTP port, where
    ``Client`` would wait forever for the handshake). TLS settings come from Dask's
    configuration (``docs/sweeps.md``: securing a cluster)."""
    from dask.distributed import Client
    from dask.utils import parse_timedelta

    seconds = parse_timedelta(CONNECT_TIMEOUT, "s")
    try:
        if not _answers_as_scheduler(scheduler, seconds):
            raise SweepError(
                f"--scheduler {scheduler}: did not answer as a Dask scheduler within "
                f"{seconds:g} s: is it the dashboard's port? The scheduler listens on its own "
                "port (8786 by default; `dask scheduler` prints it)"
            )
        return Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SweepError(f"--scheduler {scheduler}: cannot connect ({reason})") from None


def _answers_as_scheduler(address: str, seconds: float) -> bool:
    """False if something accepts a connection at ``address`` but does not answer Dask's
    handshake within ``seconds`` (or answers nonsense); True otherwise, including when nothing
    can be reached there (then ``Client`` retries and says why). Runs in a thread of its own, so
    it works under a running event loop (Jupyter) too."""
    import asyncio
    import queue
    import threading

    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend
    from distributed.security import Security

    async def probe() -> bool:
        scheme, location = parse_address(address)
        connector = get_backend(scheme).get_connector()
        args = Security().get_connection_args("client")
        try:
            comm = await asyncio.wait_for(
                connector.connect(location, deserialize=False, **args), seconds
            )
        except Exception:  # unreachable, refused, TLS refused...: Client says so
            return True
        try:
            await asyncio.wait_for(comm.write(comm.handshake_info()), seconds)
            answer = await asyncio.wait_for(comm.read(), seconds)
            return isinstance(answer, dict)
        except Exception:  # no answer in time, a closed connection, bytes that are no message
            return False
        finally:
            comm.abort()

    # a daemon thread, not a pool: Ctrl-C or SIGTERM during the handshake stops the runner at
    # once (the command cleans up and exits) instead of waiting for the probe to time out
    answer: queue.Queue = queue.Queue()

    def run_probe() -> None:
        try:
            answer.put(asyncio.run(probe()))
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            answer.put(err)

    threading.Thread(target=run_probe, name="abm-probe-scheduler", daemon=True).start()
    while True:  # woken every 0.1 s: a signal delivered to another thread of the process
        try:     # (the probe's, Dask's) runs its handler only when this thread looks
            got = answer.get(timeout=0.1)
            break
        except queue.Empty:
            continue
    if isinstance(got, BaseException):
        raise got
    return got


def _not_finished(
    client: Any, fut: Any, result: Any, task: dict[str, Any], scheduler: str | None
) -> SweepError:
    """The error for a task that ended without a result and without an error of its own: the
    client lost its scheduler (Dask cancels every task then), or the task was cancelled on the
    cluster (e.g. by another client)."""
    reason = getattr(result, "reason", None)
    if reason == "scheduler-connection-lost" or client.status not in ("running", "newly-created"):
        address = scheduler or getattr(getattr(client, "scheduler", None), "address", "?")
        return SchedulerLost(address)
    return SweepError(
        f"run {task['run_id']} was {fut.status} on the Dask cluster ({reason or 'no reason '
        'given'}); the finished runs are kept; rerun the same command to continue"
    )


# how often the workers are checked while a Dask sweep runs (seconds), how many times one
# run's result may fail to come back from its worker before the sweep stops, and how long a
# sweep on an existing cluster waits with no worker connected before it says so (seconds)
WORKER_CHECK_EVERY = 2.0
MAX_GATHER_FAILURES = 3
NO_WORKERS_NOTE_AFTER = 30.0


def unreachable_workers(addresses: Iterable[str]) -> list[str]:
    """The worker addresses no one can connect to: registered with port 0 (a worker started
    with ``--listen-address tcp://HOST:0`` announces the port it asked for, 0, not the one it
    got), so the scheduler can never fetch the results it computes."""
    import re

    return [a for a in addresses if re.search(r":0+$", str(a))]


def _port_zero_message(bad: list[str]) -> str:
    shown = ", ".join(bad)
    one = len(bad) == 1
    return (
        f"Dask worker{'' if one else 's'} {shown} cannot be reached: registered at port 0 "
        f"(started with --listen-address ...:0?), so {'its' if one else 'their'} results can "
        f"never be fetched and the sweep would wait forever; stop {'it' if one else 'them'} and "
        "start again without --listen-address (a free port is then picked and registered) or "
        "with a fixed port, e.g. --listen-address tcp://HOST:9000"
    )


def _watched(futures: Any, check: Callable[[], None], every: float) -> Iterator[Any]:
    """``as_completed``'s results, calling ``check`` first and then every ``every`` seconds,
    also while no result comes (where iterating ``as_completed`` would block forever)."""
    import time

    last = time.monotonic()
    check()
    while True:
        now = time.monotonic()
        if now - last >= every:
            last = now
            check()
        if futures.has_ready():
            yield next(futures)
        elif futures.is_empty():
            return
        else:
            condition = getattr(futures, "thread_condition", None)
            if condition is None:  # pragma: no cover - another distributed
                time.sleep(0.1)
            else:
                with condition:
                    condition.wait(timeout=0.1)


def run_dask(
    tasks: Iterable[dict[str, Any]],
    workers: int | None,
    scheduler: str | None,
    key_prefix: str,
    *,
    dashboard: str | None = None,
    log: Callable[[str], None] = print,
) -> Iterator[Result]:
    """Runs on Dask: an existing cluster (``scheduler`` = ``tcp://host:8786``) or a
    ``LocalCluster`` of ``workers`` single-threaded processes (``local_cluster``: TLS, no
    dashboard unless asked for). One task per run returns the run's data to the runner, which
    writes it; a lost worker makes Dask reschedule the run elsewhere, and a failed task is
    retried once. Workers whose results cannot be fetched (registered at port 0, or one run's
    result failing to come back ``MAX_GATHER_FAILURES`` times) stop the sweep with
    ``WorkersUnreachable``; with no worker connected for ``NO_WORKERS_NOTE_AFTER`` seconds,
    ``log`` says so once."""
    import logging
    import time

    from dask.distributed import Client, as_completed

    cluster = None
    if scheduler:
        client = connect(scheduler)
    else:
        cluster = local_cluster(workers, dashboard)
        client = Client(cluster)
    client_log = logging.getLogger("distributed.client")
    said_here = _SaidHere()  # a lost scheduler is said once, by the runner (SchedulerLost)
    client_log.addFilter(said_here)
    noise = _ClosingNoise()
    logging.getLogger("tornado.application").addFilter(noise)
    alone_since = [time.monotonic()]  # since when no worker is connected (None: one is)

    def ask_workers() -> dict[str, int] | None:
        """The scheduler's workers and their threads; None when it cannot be asked while the
        client is still connected (a scheduler lost as the client asks fails the call before
        the client knows: ``Stream is closed``); a lost scheduler is said as such."""
        try:
            return client.nthreads()
        except Exception:
            if client.status in ("running", "newly-created"):
                return None
            raise _not_finished(client, None, None, {}, scheduler) from None

    def check() -> None:
        """Stop on workers whose results cannot be fetched; say once if none is there."""
        workers = ask_workers()
        if workers is None:
            return  # checked next time
        addresses = list(workers)
        bad = unreachable_workers(addresses)
        if bad:
            raise WorkersUnreachable(_port_zero_message(bad))
        failed = {k: n for k, n in said_here.gather_failures.items() if n >= MAX_GATHER_FAILURES}
        if failed:
            runs = sorted(str(k).removeprefix(f"{key_prefix}-") for k in failed)
            one = len(runs) == 1
            raise WorkersUnreachable(
                f"the result{'' if one else 's'} of run{'' if one else 's'} {', '.join(runs)} "
                f"could not be fetched from {'its Dask worker' if one else 'their Dask workers'} "
                f"{MAX_GATHER_FAILURES} times: the scheduler cannot connect to a worker at the "
                f"address it registered (workers: {', '.join(addresses) or 'none'}); check "
                "each worker's --listen-address / --contact-address, firewalls and NAT"
            )
        if addresses or not scheduler:
            alone_since[0] = None
        elif alone_since[0] is not None and time.monotonic() - alone_since[0] > (
                NO_WORKERS_NOTE_AFTER):
            alone_since[0] = None  # said once
            log(f"note: no Dask worker is connected to {scheduler}; the runs wait for one "
                f"(start workers with: dask worker {scheduler} --nthreads 1)")

    try:
        pending = _TaskQueue(tasks)

        last_window = [2]

        def window() -> int:
            """Tasks to keep submitted: two per worker thread (the last answer when the
            scheduler cannot be asked: the sweep then stops as a lost scheduler, by ``check``
            or the cancelled tasks, not with the failed call's error)."""
            workers = ask_workers()
            if workers is not None:
                last_window[0] = max(2, 2 * sum(workers.values()))
            return last_window[0]

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
        for fut, result in _watched(futures, check, WORKER_CHECK_EVERY):
            task = submitted.pop(fut.key)
            if fut.status == "error":
                err = fut.exception()
                raise RunFailed(f"run {task['run_id']} failed: {type(err).__name__}: {err}")
            if fut.status != "finished":  # cancelled: the scheduler is gone, or someone cancelled
                raise _not_finished(client, fut, result, task, scheduler)
            fut.release()
            yield result
            if pending:
                limit = window()
                while pending and len(submitted) < limit:
                    task = pending.pop()
                    new = submit(task)
                    submitted[new.key] = task
                    futures.add(new)
    except SchedulerLost:
        said_here.lost = True  # closing the client cancels its reconnection: an ERROR record
        raise
    finally:
        noise.closing = True  # results still being fetched fail as the client closes: quiet
        client.close()
        if cluster is not None:
            cluster.close()
        client_log.removeFilter(said_here)
        logging.getLogger("tornado.application").removeFilter(noise)


class _SaidHere:
    """A filter for the ``distributed.client`` log while a sweep uses the client: what the runner
    says itself, in one line, is not said again in Dask's words. Drops the client's "Failed to
    reconnect to scheduler" and, once the scheduler is known lost (``lost``), every record of
    the client (closing it then interrupts its reconnection, which it logs with a traceback).
    Counts, and drops, its "Couldn't gather N keys, rescheduling KEYS" (a result that could not
    be fetched from its worker) per key in ``gather_failures``: the sweep stops, in one line,
    when one run's result fails again and again."""

    def __init__(self) -> None:
        self.lost = False
        self.gather_failures: dict[str, int] = {}

    def filter(self, record: Any) -> bool:
        message = str(record.msg)
        if message.startswith("Couldn't gather"):
            args = record.args if isinstance(record.args, tuple) else ()
            keys = args[1] if len(args) > 1 else ()
            for key in keys if isinstance(keys, list | tuple | set) else (keys,):
                self.gather_failures[key] = self.gather_failures.get(key, 0) + 1
            return False
        return not (self.lost or message.startswith("Failed to reconnect to scheduler"))


class _ClosingNoise:
    """A filter for the ``tornado.application`` log: once the sweep closes its Dask client
    (``closing``), the results still being fetched (by ``as_completed``) fail with the closed
    connection, which tornado logs with a traceback; the sweep has said why it stopped."""

    def __init__(self) -> None:
        self.closing = False

    def filter(self, record: Any) -> bool:
        return not (self.closing and "_track_future" in record.getMessage())
