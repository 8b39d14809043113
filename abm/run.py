"""Running one simulation headless, and writing its results: shared by the CLI and sweeps."""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from abm.model import TumorModel
from abm.params import resolve, value_text


def build_params(scenario: str | None, overrides: dict[str, Any],
                 species: str | None = None) -> dict[str, Any]:
    """Every parameter, validated: :func:`abm.params.resolve` (defaults, the species preset if
    any, the scenario if any, then ``overrides``, which may hold ``rng``). Kept for the CLI and
    the sweep runner."""
    return resolve(scenario, overrides, species=species)


ENGINES = ("mesa", "fast")  # "mesa": TumorModel (the reference); "fast": abm.fast (numba)
# one fast-engine model this large (sites), run alone, solves its fields on every core
THREADED_SITES = 250_000


def threads_for(engine: str, width: int, height: int) -> int:
    """Threads for the fields of one model run alone (``abm run``, the dashboard):
    every core for a fast-engine grid of ``THREADED_SITES`` or more, else 1 (a sweep keeps
    every core busy with its own runs). Results do not depend on it."""
    if engine == "fast" and width * height >= THREADED_SITES:
        return os.cpu_count() or 1
    return 1


def model_class(engine: str = "mesa") -> type:
    """The model class of ``engine``: ``"mesa"`` (``TumorModel``, the reference and default) or
    ``"fast"`` (``abm.fast.FastTumorModel``: the same rules compiled, the whole cast;
    docs/engines.md)."""
    if engine == "mesa":
        return TumorModel
    if engine == "fast":
        from abm.fast import FastTumorModel

        return FastTumorModel
    raise ValueError(f"engine {value_text(engine)} is not allowed: expected one of "
                     f"{', '.join(ENGINES)}")


def build_model(params: dict[str, Any], engine: str = "mesa", threads: int = 1) -> TumorModel:
    """The model of ``engine`` built from ``params`` (``ValueError`` for a combination the model
    refuses, e.g. a founder tumour larger than the grid), its fields on ``threads`` threads
    (fast engine)."""
    model = model_class(engine)(**params)
    if threads > 1 and hasattr(model, "use_threads"):
        model.use_threads(threads)
    return model


def simulate(
    params: dict[str, Any],
    steps: int,
    *,
    record_every: int = 1,
    progress: bool = False,
    stop_when_cleared: bool = True,
    engine: str = "mesa",
    threads: int = 1,
    model: TumorModel | None = None,
) -> tuple[pd.DataFrame, TumorModel]:
    """Run ``steps`` hours (fewer if the tumour is cleared) and return the time series.

    Rows are kept every ``record_every`` steps; the first and the final rows are always kept.
    ``engine``: ``"mesa"`` (default) or ``"fast"`` (``model_class``); ``threads``: the fast
    engine's fields on that many threads (``FastTumorModel.use_threads``). ``model``: a model
    already built from ``params`` (``build_model``: the CLI builds it first, so that an error
    in the parameters comes before any output), run instead of a new one.
    """
    for name, value, low in (("steps", steps, 0), ("record_every", record_every, 1),
                             ("threads", threads, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"simulate: {name} {value_text(value)}: expected a whole number "
                             f">= {low}")
    for name, value in (("progress", progress), ("stop_when_cleared", stop_when_cleared)):
        if not isinstance(value, bool):
            raise ValueError(f"simulate: {name}={value_text(value)}: expected True or False")
    if not isinstance(params, dict):
        raise ValueError(f"simulate: params {type(params).__name__}: expected a dict of "
                         "parameters (abm.params.resolve; {} for the defaults)")
    if model is not None:
        _check_model(model, params, engine)
    else:
        model = build_model(params, engine, threads)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, unit="h", desc="simulating", leave=False)
    for _ in range(steps):
        model.step()
        if bar is not None:
            bar.update(1)
            if model.steps % 24 == 0:
                bar.set_postfix(day=int(model.day), cancer=model.n_cancer, tcells=model.n_tcells)
        if stop_when_cleared and not model.running:
            break
    if bar is not None:
        bar.close()
    df = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    return thin(df, record_every), model


def _check_model(model: Any, params: dict[str, Any], engine: str) -> None:
    """``ValueError`` unless ``model`` is a model of ``engine`` built from ``params`` (the run
    would otherwise silently be the model's, not the one ``params`` and ``engine`` describe)."""
    cls = model_class(engine)
    if not isinstance(model, cls):
        raise ValueError(f"simulate: model {type(model).__name__}: expected a {cls.__name__} "
                         f"(engine {value_text(engine)}) built from params, or model=None")
    given = resolve(None, params)
    rng = given.pop("rng", None)
    differ = [name for name in given if given[name] != model.p.get(name)]
    if rng is not None and rng != model.seed:
        differ.insert(0, "rng")
    if differ:
        name = differ[0]
        ours = model.seed if name == "rng" else model.p[name]
        theirs = rng if name == "rng" else given[name]
        raise ValueError(
            f"simulate: model was built with {name!r} = {value_text(ours)}, params give "
            f"{value_text(theirs)}"
            f"{f' ({len(differ)} parameters differ)' if len(differ) > 1 else ''}: expected "
            "the model's own parameters (simulate(model.p, steps, model=model)), or model=None "
            "to build one from params")


def thin(df: pd.DataFrame, record_every: int) -> pd.DataFrame:
    """The rows of a full (every-step) time series that ``simulate`` keeps: every
    ``record_every`` steps, and the first and the final rows (``df`` has a 0..n-1 index)."""
    if record_every > 1:
        keep = (df["Step"] % record_every == 0) | (df.index == len(df) - 1)
        df = df[keep].reset_index(drop=True)
    return df


def git_commit() -> str | None:
    """The commit of the source tree, if it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


# what does not change a simulation's results: the views and the command line
_NOT_MODEL_CODE = ("dashboard/", "server.py", "cli.py", "report/")
# text that does not either: a scenario's lesson for the dashboard, and a parameter's
# description, source and group (``params._p``'s 7th to 9th arguments)
_LESSON_KEYS = frozenset({"steps", "summary", "lesson", "watch_days", "colour_by"})
_PARAM_TEXT_ARGS = (6, 7, 8)


def _code_of(name: str, source: str) -> bytes:
    """What of a module can change results: its syntax tree without docstrings (comments and
    layout are not in it), and without the lesson texts of ``scenarios.py``, the parameters'
    descriptions and sources in ``params.py`` and the species presets' summaries and sources
    in ``species.py`` (``(value, source)`` pairs)."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        if name == "scenarios.py" and isinstance(node, ast.Dict):
            kept = [(k, v) for k, v in zip(node.keys, node.values, strict=True)
                    if not (isinstance(k, ast.Constant) and k.value in _LESSON_KEYS)]
            node.keys, node.values = [k for k, _ in kept], [v for _, v in kept]
        if (name == "params.py" and isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name) and node.func.id == "_p"):
            node.args = [ast.Constant("") if i in _PARAM_TEXT_ARGS else arg
                         for i, arg in enumerate(node.args)]
        if name == "species.py" and isinstance(node, ast.Dict):
            kept = [(k, v) for k, v in zip(node.keys, node.values, strict=True)
                    if not (isinstance(k, ast.Constant) and k.value == "summary")]
            node.keys, node.values = [k for k, _ in kept], [v for _, v in kept]
            for value in node.values:
                if (isinstance(value, ast.Tuple) and len(value.elts) == 2
                        and isinstance(value.elts[1], ast.Constant)
                        and isinstance(value.elts[1].value, str)):
                    value.elts[1] = ast.Constant("")  # a preset value's source
    return ast.dump(tree, annotate_fields=False).encode()


def model_code_hash() -> str:
    """SHA-256 over the code that makes results (``abm/**/*.py`` as it is on disk, minus the
    dashboard, CLI and report code; of each module its syntax tree, so comments, docstrings,
    layout, lesson texts and parameter descriptions do not count): any change to the model,
    committed or not, gives a new hash, and sweeps refuse to mix runs made by different model
    code."""
    import hashlib

    pkg = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(pkg.rglob("*.py")):
        name = path.relative_to(pkg).as_posix()
        if not name.startswith(_NOT_MODEL_CODE):
            code = _code_of(name, path.read_text(encoding="utf-8"))
            digest.update(name.encode() + b"\0" + code + b"\0")
    return digest.hexdigest()


def provenance() -> dict[str, Any]:
    """Package versions and the git commit, for sidecars and sweep manifests: the libraries
    whose numerics a run rests on (scipy's transforms solve the fields; numba and rocket-fft
    compile the fast engine's kernels and field solves)."""
    from importlib.metadata import PackageNotFoundError, version

    import mesa
    import numpy
    import scipy

    from abm import __version__

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "abm": __version__,
        "mesa": mesa.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "numba": installed("numba"),
        "rocket_fft": installed("rocket-fft"),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "model_code": model_code_hash(),
    }


def current_umask() -> int:
    """The process's umask (read without changing it where Linux shows it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly process-wide)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one. An
    ``OSError`` without a file name (a full disk at ``write`` or ``fsync``) gets ``path`` as
    its file name, so messages say which file could not be written."""
    with AtomicFiles() as files:
        files.write(path, data)


class AtomicFiles:
    """Files that are replaced together: a data file and its sidecar, an export's CSV files
    and its ``about.json``, a report's figures and ``report.md``. Each is first written whole
    to a temporary file beside it (``write``, or streamed through ``open_text``); only when
    the ``with`` block ends without an error are they renamed into place, in the order
    written. A full disk, a broken run file or an interrupt before that leaves every earlier
    file as it was, and no temporary file. An ``OSError`` without a file name (a full disk at
    ``write`` or ``fsync``) gets the file's path, so messages say which file failed."""

    def __init__(self) -> None:
        self._staged: list[tuple[str, Path]] = []

    def __enter__(self) -> AtomicFiles:
        return self

    def _temporary(self, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self._staged.append((tmp, path))
        return fd

    def write(self, path: Path, data: bytes) -> None:
        path = Path(path)
        with _naming(path), os.fdopen(self._temporary(path), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    @contextlib.contextmanager
    def open_text(self, path: Path) -> Iterator[Any]:
        """A text file to stream into (``newline=""``, as the csv module wants)."""
        path = Path(path)
        fh = os.fdopen(self._temporary(path), "w", newline="")
        try:
            with _naming(path):
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            try:
                fh.close()  # (flushes the buffer: may fail again on a full disk)
            except OSError:
                pass

    def __exit__(self, exc_type: Any, exc: BaseException | None, *rest: Any) -> None:
        try:
            if exc_type is None:
                # mkstemp makes the file 0600; give it the mode a plain open() would (0666
                # less the umask), so colleagues can read results as they can any other file
                mode = 0o666 & ~current_umask()
                for tmp, path in self._staged:
                    with _naming(path):
                        os.chmod(tmp, mode)
                for tmp, path in self._staged:
                    with _naming(path):
                        os.replace(tmp, path)
        finally:
            for tmp, _ in self._staged:
                Path(tmp).unlink(missing_ok=True)  # (none left after the renames)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Give an ``OSError`` without a file name the file it was writing."""
    try:
        yield
    except OSError as err:
        if err.filename is None:
            err.filename = str(path)
        raise


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a table atomically as Parquet (``.parquet``) or CSV (``.csv``)."""
    atomic_write_bytes(Path(path), table_bytes(df, path))


def table_bytes(df: pd.DataFrame, path: Path) -> bytes:
    """``df`` as the file ``path`` names: Parquet (``.parquet``) or CSV (``.csv``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    if suffix == ".csv":
        return df.to_csv(index=False).encode()
    raise ValueError(f"output file {value_text(str(path))}: expected a .parquet or .csv "
                     "file name")


def write_json(obj: Any, path: Path) -> None:
    atomic_write_bytes(Path(path), json_bytes(obj))


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, default=str) + "\n").encode()
