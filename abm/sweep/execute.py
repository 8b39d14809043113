"""One run, in a worker (a pool process, a Dask worker, or the runner itself when serial): the
simulation, its probes and its summary row, returned as data. Nothing here writes a file: only
the runner does, so a worker that dies costs a retry of its run, nothing more."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from abm.analysis.outcomes import summarise
from abm.sweep.storage import ID_COLUMNS

# a run's time series, summary row and probe results ({probe name: result})
Result = tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]


def execute_run(task: dict[str, Any]) -> Result:
    """Run one simulation (``abm.sweep.expansion.make_task``); return its thinned time series
    (with id and parameter columns), its summary row and its probe results (``{}`` without
    probes)."""
    from abm.run import simulate, thin

    if task.get("probes"):
        full, model, probed = _simulate_with_probes(task)
    else:  # the full series once (the summary needs every step), then thinned as simulate does
        full, model = simulate(task["model"], task["steps"], record_every=1,
                               engine=task.get("engine", "mesa"))
        probed = {}
    df = thin(full, task["record_every"])
    columns = {name: task[name] for name in ID_COLUMNS}
    columns.update({name: _cell(task["parameters"][name]) for name in task["varied_names"]})
    ids = pd.DataFrame({k: [v] * len(df) for k, v in columns.items()})
    df = pd.concat([ids, df.reset_index(drop=True)], axis=1)
    p = task["model"]
    summary = {**columns, **summarise(full, sites=p["width"] * p["height"], **task["outcome"])}
    return df, summary, probed


def _simulate_with_probes(task: dict[str, Any]) -> tuple[pd.DataFrame, Any, dict[str, Any]]:
    """``abm.run.simulate`` with each probe's hooks called around every step. The probes only
    read the model, so the trajectory (and the time series) is the one ``simulate`` gives.
    Returns the full (every-step) series, as ``simulate`` with ``record_every=1``."""
    from abm.analysis.probes import make_probes
    from abm.run import model_class

    probes = make_probes(task["probes"])
    model = model_class(task.get("engine", "mesa"))(**task["model"])
    for _ in range(task["steps"]):
        for probe in probes:
            probe.before_step(model)
        model.step()
        for probe in probes:
            probe.after_step(model)
        if not model.running:  # as simulate: stop when the tumour is cleared
            break
    df = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    return df, model, {probe.name: probe.result(model) for probe in probes}


def _cell(value: Any) -> Any:
    """A parameter value as a table cell: ``None`` (therapy not given) becomes NaN."""
    return math.nan if value is None else value
