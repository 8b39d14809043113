"""Batch parameter sweeps: spec files, run expansion, execution backends, storage and resume.

A sweep is described by a TOML file (data only, never code; see ``docs/sweeps.md``)::

    [sweep]       name, scenario, days | steps, replicates, seed | seeds, record_every, description
    [parameters]  fixed overrides on the scenario
    [arms.NAME]   optional named arms (e.g. treated / untreated): scenario and overrides per arm
    [factors]     full grid: name = [value, ...]
    [sample]      method = "lhs" | "sobol", n, seed (optional), [sample.bounds] name = [low, high]
    [outcome]     escape_multiple, escape_fraction (how runs are classified)
    [probes.NAME] optional measurements during each run (``abm.analysis.probes``), e.g.
                  [probes.snapshot] day = 14; stored in each run's file
    [patients]    a virtual-patient cohort (``docs/cohorts.md``): n, seed, and
                  [patients.lognormal|uniform|choice] name = [...], optionally
                  [patients.correlation] name.other = rho; every patient in every arm
    [response]    baseline_day, stratify, bins: RECIST-like responses (``abm.analysis.response``)

The package, one concern per module, in the order a sweep goes through them:

- :mod:`~abm.sweep.schema`: the spec's tables and keys, declared once, and their checker;
- :mod:`~abm.sweep.spec`: ``Spec``, ``load_spec`` / ``parse_spec`` (rules across keys), the hash;
- :mod:`~abm.sweep.expansion`: points, samples, replicate seeds, runs and their tasks;
- :mod:`~abm.sweep.execute`: one run in a worker (simulation, probes, summary row);
- :mod:`~abm.sweep.backends`: serial, process pool, Dask;
- :mod:`~abm.sweep.storage`: run files (time series, summary row, probe results), summary,
  manifest;
- :mod:`~abm.sweep.runner`: ``run_sweep`` (lock, manifest check, resume, summary);
- :mod:`~abm.sweep.results`: ``load_sweep``, a sweep directory read back for analysis.

A sweep directory holds::

    manifest.json            the normalised spec and its hash, the expanded run list, the resolved
                             base parameters, package versions and git commit
    runs/<run_id>.parquet    one file per finished run: the time series with run id, point id,
                             replicate, seed and every varied parameter as columns; the run's
                             summary row and probe results travel in the file's metadata
    summary.parquet          one row per run, rebuilt from runs/ when the sweep finishes
    patients.parquet         a cohort only: one row per patient and arm with its response and
                             sampled parameters, rebuilt from runs/ like the summary
"""

from abm.sweep.backends import (
    BACKENDS,
    RunFailed,
    SchedulerLost,
    WorkersUnreachable,
    run_dask,
    run_process,
    run_serial,
)
from abm.sweep.execute import Result, execute_run
from abm.sweep.expansion import (
    Run,
    expand,
    iter_points,
    iter_runs,
    make_task,
    patient_points,
    patient_seeds,
    replicate_seeds,
    salib_problem,
    sample_points,
)
from abm.sweep.results import PATIENT_COLUMNS, RunRecord, SweepData, load_sweep, patients_table
from abm.sweep.runner import SweepOutcome, run_sweep
from abm.sweep.schema import SAMPLE_METHODS, SpecError
from abm.sweep.spec import (
    ARM,
    LIMITS,
    PATIENT,
    Patients,
    Response,
    Sample,
    Spec,
    check_size,
    duration,
    estimate_seconds,
    load_spec,
    parse_spec,
    read_spec_text,
    size_line,
    spec_hash,
)
from abm.sweep.storage import (
    FORMAT,
    ID_COLUMNS,
    PROBES_META_KEY,
    RUN_META_KEY,
    StaleSweep,
    SweepError,
    build_summary,
    check_run_file,
    decode_probes,
    encode_probes,
    read_manifest,
    read_run_probes,
    read_run_summary,
    read_run_table,
    run_path,
    write_run,
)

__all__ = [
    "ARM",
    "BACKENDS",
    "FORMAT",
    "ID_COLUMNS",
    "LIMITS",
    "PATIENT",
    "PATIENT_COLUMNS",
    "Patients",
    "Response",
    "PROBES_META_KEY",
    "RUN_META_KEY",
    "SAMPLE_METHODS",
    "Result",
    "Run",
    "RunFailed",
    "RunRecord",
    "Sample",
    "SchedulerLost",
    "Spec",
    "SpecError",
    "SweepData",
    "StaleSweep",
    "SweepError",
    "SweepOutcome",
    "WorkersUnreachable",
    "build_summary",
    "check_run_file",
    "check_size",
    "decode_probes",
    "duration",
    "encode_probes",
    "estimate_seconds",
    "execute_run",
    "expand",
    "iter_points",
    "iter_runs",
    "load_spec",
    "load_sweep",
    "make_task",
    "parse_spec",
    "patient_points",
    "patient_seeds",
    "patients_table",
    "read_manifest",
    "read_run_probes",
    "read_run_summary",
    "read_run_table",
    "read_spec_text",
    "replicate_seeds",
    "run_dask",
    "run_path",
    "run_process",
    "run_serial",
    "run_sweep",
    "salib_problem",
    "sample_points",
    "size_line",
    "spec_hash",
    "write_run",
]
