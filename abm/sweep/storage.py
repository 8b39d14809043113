"""What a sweep directory holds on disk: one Parquet file per run (its time series, with its
summary row and probe results in the file's metadata), the summary table built from them, and
the manifest (what the sweep is, to refuse resuming a different one).

A run's file is written atomically and is the single unit of a run: it is wholly on disk or
missing, and everything about the run can be read back from it, so resuming needs nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pandas as pd

from abm.sweep.spec import canonical_json, spec_hash

if TYPE_CHECKING:
    from abm.sweep.expansion import Run
    from abm.sweep.spec import Spec

FORMAT = "abm-sweep/1"
ID_COLUMNS = ["run_id", "point_id", "replicate", "seed"]
RUN_META_KEY = b"abm.run"  # the run's summary row (JSON)
PROBES_META_KEY = b"abm.probes"  # {probe name: result}, numpy arrays encoded (encode_probes)
_ARRAY = "__ndarray__"


class SweepError(RuntimeError):
    """A sweep that cannot start or continue (e.g. a changed spec in an existing directory)."""


class StaleSweep(SweepError):
    """The directory holds another sweep, or this one made by other model code or defaults:
    resuming would mix results (the message says what differs)."""


def os_error_text(err: OSError) -> str:
    """An ``OSError`` as one line naming the path: ``PATH: Permission denied``."""
    reason = err.strerror or str(err) or type(err).__name__
    paths = [str(f) for f in (err.filename, err.filename2) if f is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def run_path(out: Path, run_id: str) -> Path:
    return Path(out) / "runs" / f"{run_id}.parquet"


def write_run(
    out: Path, df: pd.DataFrame, summary: dict[str, Any], probes: dict[str, Any] | None = None
) -> Path:
    """Write one run's file atomically, its summary row (and probe results, if any) in the
    Parquet metadata."""
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


def broken(path: Path, err: BaseException) -> SweepError:
    """The error for a run file that cannot be read (truncated, empty, not Parquet); an error of
    the file system itself is ``unreadable``'s, not this."""
    if _os_level(err):
        return unreadable(path, err)
    return broken_because(path, _reason(err))


def unreadable(path: Path, err: OSError) -> SweepError:
    """A file the system will not let us read (permission, an I/O error, too many open files):
    it may well be sound, so it is never called broken, removed or run again."""
    return SweepError(f"{path}: cannot read it ({_reason(err)}); nothing was changed")


def _os_level(err: BaseException) -> bool:
    """An error of the file system (with an errno), not of the file's content. (pyarrow's own
    errors for a truncated or garbled file carry no errno.)"""
    return isinstance(err, OSError) and err.errno is not None


@contextmanager
def opened(path: Path) -> Iterator[BinaryIO]:
    """``path`` open for reading, for pyarrow: Python opens it, so a path that is not UTF-8
    (which pyarrow cannot encode) reads as any other, and a file the system will not open is
    ``unreadable``, not broken."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as err:
        raise unreadable(path, err) from None
    with fh:
        yield fh


def broken_because(path: Path, reason: str) -> SweepError:
    """The error for a run file that cannot be trusted, for ``reason`` (one clause: why)."""
    return SweepError(
        f"{path}: broken run file ({reason}); rerun the same `abm sweep` command to run it again"
    )


def _run_metadata(path: Path) -> dict[bytes, bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with opened(path) as fh:
            meta = pq.read_metadata(fh).metadata or {}  # the footer only (read_schema: ~25 kB)
    except (OSError, pa.ArrowException, ValueError) as err:
        raise broken(path, err) from None
    if RUN_META_KEY not in meta:
        raise SweepError(f"{path}: not a run file of an abm sweep (no run summary in it)")
    return meta


def read_run_table(
    path: Path, columns: list[str] | None = None, run_id: str | None = None
) -> pd.DataFrame:
    """A run file's time series; ``SweepError`` naming the file if it is broken. With
    ``run_id``, the file must also be that run's (``check_run_file``: not a copy of another
    run's file), checked on the footer the read needs anyway, so the file is read once."""
    return read_run_arrow(path, columns, run_id).to_pandas(use_threads=False)


def read_run_arrow(path: Path, columns: list[str] | None = None,
                   run_id: str | None = None) -> Any:
    """``read_run_table`` as a ``pyarrow.Table``, for readers of many run files that want a
    few columns as arrays: the same checks, without building a DataFrame (less than half the
    time of ``read_run_table``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with opened(path) as fh, pq.ParquetFile(fh) as file:
            if run_id is not None:
                problem = _footer_row(file.metadata, run_id)[1]
                if problem is not None:
                    raise broken_because(path, problem)
            names = file.schema_arrow.names
            missing = [c for c in columns or [] if c not in names]
            if missing:  # (ParquetFile.read would leave them out without a word)
                raise ValueError(f"{path}: no column {', '.join(map(repr, missing))} in this "
                                 f"run file (it has {', '.join(names)})")
            return file.read(columns=columns, use_pandas_metadata=True, use_threads=False)
    except (OSError, pa.ArrowException) as err:
        raise broken(path, err) from None


def read_parquet(path: Path) -> pd.DataFrame:
    """``pandas.read_parquet(path)`` without Arrow's thread pools (``read_run_table``
    too). pandas' reader starts Arrow's pool threads, and a process that exits while one of
    them is still winding down can abort at exit with "terminate called without an active
    exception" (exit code 134, after all its work was done: apache/arrow#34314; seen twice
    here at the end of a script that had read a sweep). The files are small, so the threads
    gain nothing. Raises what ``pandas.read_parquet`` raises for a broken file (``OSError``,
    ``ArrowInvalid``, a ``ValueError``)."""
    import pyarrow.parquet as pq

    with open(path, "rb") as fh, pq.ParquetFile(fh) as file:  # (Python opens: any path)
        table = file.read(use_pandas_metadata=True, use_threads=False)
    return table.to_pandas(use_threads=False)


def check_run_file(path: Path, run_id: str) -> str | None:
    """Why the run file at ``path`` cannot be trusted (``None`` if it can): it must have a
    Parquet footer, rows, and the summary row of this run. Reads the footer only."""
    return checked_run_summary(path, run_id)[1]


def checked_run_summary(path: Path, run_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """``check_run_file`` that also returns the summary row it read, as ``read_run_summary``
    gives it: ``(row, None)`` for a sound file, ``(None, why not)`` for a broken one, and a
    ``SweepError`` for one the system will not let us read (``unreadable``: never removed). A
    rerun checks every run file, and keeps the rows for the summary instead of reading them
    again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with opened(path) as fh:  # (unreadable: a SweepError, for the sweep to stop on)
        try:
            footer = pq.read_metadata(fh)
        except (OSError, pa.ArrowException, ValueError) as err:
            if _os_level(err):
                raise unreadable(path, err) from None
            return None, _reason(err)
    row, problem = _footer_row(footer, run_id)
    return (None, problem) if problem is not None else (_nan_for_none(row), None)


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err).splitlines()[0] or type(err).__name__


def _footer_row(footer: Any, run_id: str) -> tuple[Any, str | None]:
    """The stored summary row of a footer already read, and why the file cannot be trusted
    (``None`` if it can)."""
    try:
        row = json.loads((footer.metadata or {})[RUN_META_KEY])
    except KeyError:
        return None, "no run summary in it"
    except ValueError as err:
        return None, _reason(err)
    if footer.num_rows < 1:
        return row, "no rows"
    return row, _row_problem(row, run_id)


def _row_problem(row: Any, run_id: str) -> str | None:
    if not isinstance(row, dict) or row.get("run_id") != run_id or "outcome" not in row:
        found = row.get("run_id") if isinstance(row, dict) else None
        other = (f" but run {found}'s: copied from another run?"
                 if isinstance(found, str) and found != run_id else "")
        return f"its stored summary is not run {run_id}'s{other}"
    return None


def read_run_summary(path: Path, run_id: str | None = None) -> dict[str, Any]:
    """The summary row stored in a run file (reads the footer only). With ``run_id``, a file
    whose summary is another run's (a copied file) is a ``SweepError`` naming it."""
    return _nan_for_none(_stored_row(path, _run_metadata(path), run_id))


def _nan_for_none(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (math.nan if v is None else v) for k, v in row.items()}


def read_run_probes(path: Path, run_id: str | None = None) -> dict[str, Any]:
    """``{probe name: result}`` stored in a run file, numpy arrays decoded (``{}`` if the sweep
    had no probes). With ``run_id``, checked to be that run's file, as ``read_run_summary``."""
    meta = _run_metadata(path)
    if run_id is not None:
        _stored_row(path, meta, run_id)
    return decode_probes(meta[PROBES_META_KEY]) if PROBES_META_KEY in meta else {}


def _stored_row(path: Path, meta: dict[bytes, bytes], run_id: str | None) -> dict[str, Any]:
    try:
        row = json.loads(meta[RUN_META_KEY])
    except ValueError as err:
        raise broken(path, err) from None
    problem = _row_problem(row, run_id) if run_id is not None else None
    if problem is not None:
        raise broken_because(path, problem)
    return row


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


def build_summary(out: Path, run_ids: Iterable[str],
                  read: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per run, in run-list order, from the run files (so resuming changes nothing).
    ``read``: rows already read from their files (``checked_run_summary``), not read again."""
    read = read or {}
    rows = [read[run_id] if run_id in read else read_run_summary(run_path(out, run_id), run_id)
            for run_id in run_ids]
    return pd.DataFrame(rows)


# the manifest's keys that the runner and the readers rely on, with their JSON types
MANIFEST_KEYS = {"format": str, "spec_hash": str, "content_hash": str, "spec": dict,
                 "runs": list, "varied": list, "n_runs": int}


def manifest_problem(manifest: Any) -> str | None:
    """Why parsed JSON is not a manifest of an abm sweep of this version (``None`` if it is):
    one clause for a message about ``DIR/manifest.json``."""
    other = "another program's file?"
    if not isinstance(manifest, dict):
        kind = {list: "a list", str: "a string"}.get(type(manifest), f"a {type(manifest).__name__}")
        return f"not an abm sweep manifest (JSON {kind}, not an object; {other})"
    if "format" not in manifest:
        return f'not an abm sweep manifest (no "format" key; {other})'
    fmt = manifest["format"]
    if not (isinstance(fmt, str) and fmt.startswith("abm-sweep/")):
        return f"not an abm sweep manifest (format {fmt!r}; {other})"
    if fmt != FORMAT:
        return f"written by sweep format {fmt}, this abm reads {FORMAT}"
    for key, kind in MANIFEST_KEYS.items():
        if key not in manifest:
            return f'not an abm sweep manifest (no "{key}" key; {other})'
        if not isinstance(manifest[key], kind) or isinstance(manifest[key], bool):
            return (f'not an abm sweep manifest ("{key}" is {type(manifest[key]).__name__}, '
                    f"not {kind.__name__}; {other})")
    return None


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of the sweep directory ``out``; ``SweepError`` naming the path if there is
    none, or it cannot be read, or it is not an abm sweep's."""
    out = Path(out)
    path = out / "manifest.json"
    if not path.exists():
        if not out.exists():
            raise SweepError(f"{out}: does not exist (expected a sweep directory made by "
                             "`abm sweep`)")
        if not out.is_dir():
            raise SweepError(f"{out}: is a file, not a sweep directory (a directory made by "
                             "`abm sweep`)")
        raise SweepError(f"{out}: not a sweep directory (no manifest.json)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SweepError(f"{path}: unreadable ({getattr(err, 'strerror', None) or err})") from None
    except RecursionError:  # nested deeper than Python's parser goes: not a manifest we wrote
        raise SweepError(f"{path}: unreadable (JSON nested too deeply: not an abm sweep "
                         "manifest)") from None
    problem = manifest_problem(manifest)
    if problem:
        raise SweepError(f"{path}: {problem}")
    return manifest


def make_manifest(spec: Spec, runs: list[Run], spec_text: str | None) -> dict[str, Any]:
    """The manifest of a sweep: its normalised spec and hash, a hash of everything that fixes
    the results (spec, resolved parameters, run list), the run list, and provenance."""
    from abm.run import provenance

    fingerprint = {
        "spec": spec.normalised(),
        "base": spec.base_parameters,
        "runs": [r.as_dict() for r in runs],
    }
    return {
        "format": FORMAT,
        "spec_hash": spec_hash(spec),
        "content_hash": hashlib.sha256(canonical_json(fingerprint)).hexdigest(),
        "spec": spec.normalised(),
        "spec_text": spec_text,
        "engine": spec.engine,  # also in spec.sweep when not the default "mesa"
        "varied": spec.varied,
        "base_parameters": spec.base_parameters,
        "n_points": spec.n_points,
        "n_runs": len(runs),
        "runs": [r.as_dict() for r in runs],
        "provenance": provenance(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "completed": None,
    }


# keys a normalised spec leaves out at their default, with that default (for ``_diff``)
_LEFT_OUT = {"sweep.engine": "mesa"}


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two JSON values differ, each with its two values when both are short
    single values (``sweep.engine "fast" -> "mesa"``: what the folder holds, what was asked);
    a key only one side has shows "(none)" for the other."""
    old, new = _named(old), _named(new)
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [d for k in keys for d in _diff(old.get(k), new.get(k), f"{prefix}{k}.")]
    if old == new:
        return []
    key = prefix.rstrip(".") or "(all)"
    shown = [(f"{json.dumps(_LEFT_OUT[key])} (the default)" if key in _LEFT_OUT else "(none)")
             if v is None else json.dumps(v) for v in (old, new)]
    if any(isinstance(v, dict) for v in (old, new)) or max(map(len, shown)) > 40:
        return [key]
    return [f"{key} {shown[0]} -> {shown[1]}"]


def _named(value: Any) -> Any:
    """A normalised spec's list of named entries (``factors``: ``[[name, levels], ...]``;
    arms, a cohort's draws) as a dict by name, so that a change names its entry
    (``factors.tcell_influx [0.5, 1.0] -> [0.5, 1.5]``), not only the table."""
    if (isinstance(value, list) and value
            and all(isinstance(v, list) and len(v) >= 2 and isinstance(v[0], str) for v in value)
            and len({v[0] for v in value}) == len(value)):
        return {v[0]: v[1] if len(v) == 2 else v[1:] for v in value}
    return value


def check_existing(out: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest already in ``out`` if it is the same sweep; ``SweepError`` otherwise."""
    path = out / "manifest.json"
    keep = (f"the finished runs in {out / 'runs'} are kept as they are (each a whole Parquet "
            "file: time series, summary row and seed; pandas.read_parquet reads them); sweep "
            "into a new directory")
    if not path.exists():
        runs_dir = out / "runs"
        if runs_dir.exists() and any(runs_dir.glob("*.parquet")):
            raise SweepError(f"{out}: has runs/ but no manifest.json, so it cannot be resumed; "
                             f"{keep}")
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or err
        raise SweepError(f"{path}: unreadable ({reason}), so the sweep cannot be resumed; "
                         f"{keep}") from None
    problem = manifest_problem(old)
    if problem:
        raise SweepError(f"{path}: {problem}; use a new directory")
    fix = "use a new directory, or delete this one to start over"
    if old["spec_hash"] != manifest["spec_hash"]:
        changed = _diff(old.get("spec"), manifest["spec"])
        raise StaleSweep(
            f"{out} holds a sweep with a different spec (changed: {', '.join(changed)}); {fix}"
        )
    if old["content_hash"] != manifest["content_hash"]:
        changed = _diff(old.get("base_parameters"), manifest["base_parameters"])
        what = (
            f"the scenario or model defaults changed since it started ({', '.join(changed)})"
            if changed
            else "the expanded run list differs (a different SciPy/SALib sampler?)"
        )
        raise StaleSweep(f"{out}: same spec, but {what}; {fix}")
    return old
