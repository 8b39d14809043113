"""The report of a cohort (a sweep with ``[patients]``, docs/cohorts.md): waterfall, spider
and Kaplan-Meier plots, and the responses per arm in ``report.md``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.report.base import (
    NOT_AVAILABLE,
    ReportError,
    Sweep,
    _colours,
    _engine_line,
    _figure,
    _fmt,
    _read_run,
    _steps_text,
    _table,
    check_report_dir,
    series_columns,
    warn_partial,
    write_report_files,
)
from abm.sweep import (
    ARM,
    PATIENT,
    SweepError,
    load_sweep,
)
from abm.sweep.spec import count


def cohort_patients(sweep: Sweep) -> pd.DataFrame:
    """The cohort's ``patients.parquet`` (rebuilt from the run files while the cohort is not
    finished, so a partial report reads the runs done so far, and when the file cannot be
    read, as ``load_sweep`` does for ``summary.parquet``)."""
    from abm.sweep import patients_table
    from abm.sweep.storage import read_parquet

    path = sweep.dir / "patients.parquet"
    if sweep.complete and path.exists():
        try:
            return read_parquet(path)
        except (OSError, ValueError):  # broken (ArrowInvalid is a ValueError): the run files
            pass
    try:
        return patients_table(load_sweep(sweep.dir))
    except (SweepError, ValueError) as err:  # a broken run file, one without a column
        raise ReportError(str(err)) from None


def _arms(patients: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(patients[ARM]))


def reference_arm(arms: list[str]) -> str | None:
    """The untreated arm the others are compared with: one named like ``untreated``,
    ``control`` or ``placebo``, else the first arm; None with a single arm."""
    if len(arms) < 2:
        return None
    for arm in arms:
        if any(word in arm.lower() for word in ("untreated", "control", "placebo")):
            return arm
    return arms[0]


MANY_BARS = 100  # above this many patients in an arm, each waterfall bar gets an edge


def plot_waterfall(patients: pd.DataFrame) -> Any:
    from abm.analysis.response import PD_CHANGE, PR_CHANGE, RESPONSE_COLOURS, RESPONSES

    arms = _arms(patients)
    fig, axes = _figure(len(arms), width=5.5, height=3.8)
    for ax, arm in zip(axes, arms, strict=True):
        rows = patients[(patients[ARM] == arm) & patients["best_change_pct"].notna()]
        rows = rows.sort_values("best_change_pct", ascending=False)
        x = np.arange(len(rows))
        colours = [RESPONSE_COLOURS[r] for r in rows["best_response"]]
        # an edge of the bar's own colour keeps every bar at least a line wide: with hundreds
        # of patients a bar is narrower than a pixel, and a lone responder would vanish
        ax.bar(x, rows["best_change_pct"], width=1.0, color=colours, edgecolor=colours,
               linewidth=0.8 if len(rows) > MANY_BARS else 0.0)
        ax.axhline(PD_CHANGE, color="grey", ls="--", lw=0.8)
        ax.axhline(PR_CHANGE, color="grey", ls=":", lw=0.8)
        ax.axhline(0, color="black", lw=0.6)
        n_ne = int((patients[ARM] == arm).sum() - len(rows))
        ax.set(title=f"{arm} ({len(rows)} patients" + (f", {n_ne} NE)" if n_ne else ")"),
               xlabel="patient (sorted)", ylabel="best % change of diameter from baseline")
        ax.set_xticks([])
    from matplotlib.patches import Patch

    shown = [r for r in RESPONSES if (patients["best_response"] == r).any() and r != "NE"]
    axes[-1].legend([Patch(color=RESPONSE_COLOURS[r]) for r in shown], shown, fontsize="small",
                    loc="upper left", bbox_to_anchor=(1, 1))
    return fig


MAX_SPIDER_PATIENTS = 200  # above, the spider plot draws a random sample of the patients


def spider_patients(patients: pd.DataFrame) -> list[Any]:
    """The patients whose tracks the spider plot draws: all of them up to
    ``MAX_SPIDER_PATIENTS``, else that many drawn at random (a fixed seed, so a report drawn
    again is the same), the same patients in every arm. Thousands of tracks cover each other;
    the waterfall, the Kaplan-Meier curves and the tables keep every patient."""
    ids = sorted(patients[PATIENT].unique())
    if len(ids) <= MAX_SPIDER_PATIENTS:
        return ids
    picked = np.random.default_rng(0).choice(len(ids), MAX_SPIDER_PATIENTS, replace=False)
    return [ids[i] for i in sorted(picked)]


def plot_spider(sweep: Sweep, patients: pd.DataFrame) -> Any:
    from abm.analysis.response import NECROTIC, RESPONSE_COLOURS, RESPONSES, change_pct

    baseline = sweep.spec["response"]["baseline_day"] if sweep.spec.get("response") else 0.0
    arms = _arms(patients)
    fig, axes = _figure(len(arms), width=5.5, height=3.8)
    names = set(series_columns(sweep))
    columns = ["Day", "CancerCells", *([NECROTIC] if NECROTIC in names else [])]
    run_of = {
        (p[PATIENT], p.get(ARM, "all")): r["run_id"]
        for r in sweep.manifest["runs"] for p in [r["parameters"]]
    }
    done = set(sweep.summary["run_id"])
    shown = set(spider_patients(patients))
    for ax, arm in zip(axes, arms, strict=True):
        rows = patients[patients[ARM] == arm]
        drawn = 0
        for patient, response in zip(rows[PATIENT], rows["best_response"], strict=True):
            run_id = run_of.get((patient, arm))
            if run_id not in done or patient not in shown:
                continue
            track = change_pct(_read_run(sweep, run_id, columns), baseline)
            ax.plot(track["day"], track["change_pct"], color=RESPONSE_COLOURS[response],
                    lw=0.7, alpha=0.6)
            drawn += 1
        ax.axhline(0, color="black", lw=0.6)
        finished = sum(run_of.get((p, arm)) in done for p in rows[PATIENT])
        title = arm if drawn == finished else (
            f"{arm}: {drawn} of {finished} patients, drawn at random")
        ax.set(title=title, xlabel="days from baseline", ylabel="% change of diameter",
               ylim=(-105, None))
    from matplotlib.lines import Line2D

    shown = [r for r in RESPONSES if (patients["best_response"] == r).any()]
    axes[-1].legend([Line2D([], [], color=RESPONSE_COLOURS[r]) for r in shown], shown,
                    title="best response", fontsize="small", loc="upper left",
                    bbox_to_anchor=(1, 1))
    return fig


def plot_km(patients: pd.DataFrame) -> Any:
    from lifelines import KaplanMeierFitter

    fig, (ax,) = _figure(width=6.5, height=4.2)
    for colour, arm in zip(_colours(len(_arms(patients))), _arms(patients), strict=True):
        rows = patients[patients[ARM] == arm]
        kmf = KaplanMeierFitter(label=f"{arm} (n={len(rows)})")
        kmf.fit(rows["pfs_days"], event_observed=rows["progressed"].astype(bool))
        kmf.plot_survival_function(ax=ax, ci_show=True, color=colour)
    ax.set(xlabel="days from baseline", ylabel="progression-free (fraction)", ylim=(0, 1.02),
           title="progression-free survival (Kaplan-Meier, 95% band)")
    return fig


def median_pfs(rows: pd.DataFrame) -> tuple[float, float, float]:
    """Median progression-free time (days) and its 95% interval (lifelines); ``inf`` when
    fewer than half progress."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    kmf = KaplanMeierFitter().fit(rows["pfs_days"], rows["progressed"].astype(bool))
    ci = median_survival_times(kmf.confidence_interval_).to_numpy().ravel()
    return float(kmf.median_survival_time_), float(ci[0]), float(ci[1])


def strata(patients: pd.DataFrame, name: str, bins: int | None) -> pd.Series:
    """Each row's stratum: the parameter's value, or its quantile bin, labelled by the smallest
    and largest value drawn in it (``[low, high]``: both in the bin, so no value seems to be in
    two bins, as ``pd.qcut``'s half-open edges would make it)."""
    if not bins:
        return patients[name].map(_fmt)
    values = patients[name]
    codes = pd.qcut(values, bins, labels=False, duplicates="drop")
    ranges = values.groupby(codes).agg(["min", "max"])
    labels = {code: f"[{low:.3g}, {high:.3g}]" for code, (low, high) in ranges.iterrows()}
    return codes.map(labels).astype(str)


def paired_difference(patients: pd.DataFrame, treated: str, control: str) -> dict[str, Any]:
    """Objective response, treated minus control, over the patients in both arms: the
    difference, its 95% interval (Wald, for paired proportions), the discordant counts and the
    exact McNemar p-value (binomial test of the discordant pairs)."""
    from scipy.stats import binomtest

    from abm.analysis.response import objective_response

    wide = patients.pivot(index=PATIENT, columns=ARM, values="best_response")[
        [treated, control]
    ].dropna()
    t, c = objective_response(wide[treated]), objective_response(wide[control])
    n = len(wide)
    only_t, only_c = int(((t == 1) & (c == 0)).sum()), int(((t == 0) & (c == 1)).sum())
    diff = (only_t - only_c) / n if n else math.nan
    se = math.sqrt(max(only_t + only_c - n * diff**2, 0.0)) / n if n else math.nan
    p = binomtest(only_t, only_t + only_c).pvalue if only_t + only_c else 1.0
    return {"n": n, "diff": diff, "low": diff - 1.96 * se, "high": diff + 1.96 * se,
            "only_treated": only_t, "only_control": only_c, "p": p}


def _orr_cell(responses: pd.Series) -> str:
    """``hits/n = x% [low, high]``, or ``–`` without a patient (a stratum none of whose
    patients has finished in this arm yet, while the cohort runs)."""
    from abm.analysis.response import objective_response, wilson_interval

    hits, n = int(objective_response(responses).sum()), len(responses)
    if not n:
        return NOT_AVAILABLE
    low, high = wilson_interval(hits, n)
    return f"{hits}/{n} = {100 * hits / n:.0f}% [{100 * low:.0f}, {100 * high:.0f}]"


def _correlation_lines(cohort: dict, patients: pd.DataFrame, arms: list[str]) -> list[str]:
    """The drawn-together pairs: the rank correlation asked for and the one drawn (over the
    patients of one arm; every arm has the same patients)."""
    pairs = cohort.get("correlation") or []
    if not pairs:
        return []
    one = patients[patients[ARM] == arms[0]] if arms else patients
    shown = []
    for first, second, rho in pairs:
        drawn = one[first].astype(float).corr(one[second].astype(float), method="spearman")
        shown.append(f"`{first}` with `{second}` {rho:g} (drawn: "
                     + ("n/a" if pd.isna(drawn) else f"{drawn:.2f}") + ")")
    return ["- drawn together (Gaussian copula), rank correlation: " + "; ".join(shown)]


def _cohort_markdown(sweep: Sweep, patients: pd.DataFrame, figures: list[str]) -> str:
    from abm.analysis.response import NECROTIC, RESPONSES

    spec = sweep.spec["sweep"]
    cohort = sweep.spec["patients"]
    response = sweep.spec.get("response") or {"baseline_day": 0.0, "stratify": None, "bins": None}
    prov = sweep.manifest.get("provenance", {})
    arms = _arms(patients)  # the arms with a finished patient
    planned = [name for name, _ in sweep.spec.get("arms") or []] or arms
    necrotic = NECROTIC in series_columns(sweep)
    draws = ", ".join(f"`{name}` {kind} {args}" for name, kind, args in cohort["draws"])
    lines = [f"# Cohort report: {spec['name']}", ""]
    if spec.get("description"):
        lines += [f"**Question.** {spec['description']}", ""]
    lines += [
        f"- scenario: `{spec['scenario'] or 'defaults'}`; {spec['steps'] / 24:g} days per run, "
        f"rows (assessments) every {_steps_text(spec['record_every'])}",
        f"- {count(cohort['n'], 'patient')} (seed {cohort['seed']}) x "
        f"{count(len(planned), 'arm')} ({', '.join(planned)}); every patient in every arm "
        "with the same parameters and seed",
        f"- drawn: {draws}",
        *_correlation_lines(cohort, patients, arms),
        f"- baseline: day {response['baseline_day']:g}; lesion = cancer cells"
        + (" + necrotic sites" if necrotic else " (the model reports no necrotic sites)")
        + f"; SD counts after {_min_sd(response):g} days; RECIST-like rule of "
        "`abm.analysis.response` (docs/cohorts.md)",
        f"- {_engine_line(sweep)}; abm {prov.get('abm')}, mesa {prov.get('mesa')}, "
        f"git {prov.get('git_commit')}",
        "",
    ]
    if not sweep.complete:
        lines += [f"> **Partial:** {len(sweep.summary)} of {sweep.n_runs} runs finished.", ""]
        waiting = [arm for arm in planned if arm not in arms]
        if waiting:
            lines += [f"> No patient of the arm{'s' if len(waiting) > 1 else ''} "
                      f"{', '.join(waiting)} has finished yet: "
                      f"{'they are' if len(waiting) > 1 else 'it is'} left out below.", ""]
    for name in figures:
        lines += [f"![{name}]({name})", ""]
    rows = []
    for arm in arms:
        sub = patients[patients[ARM] == arm]
        counts = sub["best_response"].value_counts()
        med, low, high = median_pfs(sub)
        rows.append([arm, str(len(sub)), *[str(counts.get(r, 0)) for r in RESPONSES],
                     _orr_cell(sub["best_response"]),
                     f"{_days(med)} [{_days(low)}, {_days(high)}]"])
    lines += [
        "## Responses per arm",
        "",
        "ORR: objective response rate, CR + PR over all patients of the arm (NE counts as no "
        "response), with its 95% Wilson interval. Median PFS: days from baseline, with its 95% "
        "interval (Kaplan-Meier, lifelines; 'not reached' when fewer than half progress).",
        "",
        _table(["arm", "n", *RESPONSES, "ORR [95% CI]", "median PFS [95% CI]"], rows),
        "",
    ]
    control = reference_arm(arms)
    if control:
        rows = []
        for arm in arms:
            if arm == control:
                continue
            d = paired_difference(patients, arm, control)
            if not d["n"]:  # (a partial cohort: no patient has finished in both arms yet)
                rows.append([f"{arm} - {control}", "0", NOT_AVAILABLE, "0", "0", NOT_AVAILABLE])
                continue
            rows.append([f"{arm} - {control}", str(d["n"]),
                         f"{100 * d['diff']:+.0f} [{100 * d['low']:+.0f}, {100 * d['high']:+.0f}]",
                         str(d["only_treated"]), str(d["only_control"]), f"{d['p']:.3g}"])
        lines += [
            "## Paired difference (the same patients)",
            "",
            "Each patient is its own control: the difference of objective response in points, "
            "with a 95% Wald interval for paired proportions; the discordant patients (respond "
            "in one arm only) and the exact McNemar p-value.",
            "",
            _table(["arms", "patients", "ORR difference [95% CI]", "respond only in treated",
                    f"respond only in {control}", "McNemar p"], rows),
            "",
        ]
    if response.get("stratify"):
        name, bins = response["stratify"], response.get("bins")
        stratum = strata(patients, name, bins)
        order = list(dict.fromkeys(sorted(stratum, key=_stratum_key)))
        rows = [[value, *[_orr_cell(patients.loc[(stratum == value) & (patients[ARM] == arm),
                                                  "best_response"])
                          for arm in arms]]
                for value in order]
        made = len(order)
        how = ("value" if not bins else f"{bins} quantile bins" if made == bins else
               f"{made} quantile bins: {bins} asked for, fewer distinct values")
        lines += [f"## Objective response by `{name}` ({how})", "",
                  _table([name, *arms], rows), ""]
    lines += ["Data: `patients.parquet` (one row per patient and arm), `summary.parquet`, "
              "`runs/*.parquet`.", ""]
    return "\n".join(lines)


def _min_sd(response: dict[str, Any]) -> float:
    from abm.analysis.response import MIN_SD_DAYS

    value = response.get("min_sd_days")
    return MIN_SD_DAYS if value is None else value


def _stratum_key(value: str) -> Any:
    try:
        return (0, float(value.strip("[").split(",")[0]))
    except ValueError:
        return (1, value)


def _days(value: float) -> str:
    if math.isnan(value):
        return "-"
    return "not reached" if math.isinf(value) else f"{value:.3g}"


def write_cohort_report(sweep: Sweep, out: Path) -> Path:
    """A cohort's plots (waterfall, spider, Kaplan-Meier) and ``report.md``."""
    patients = cohort_patients(sweep)
    if patients.empty:
        raise ReportError(f"{sweep.dir}: no finished runs of the cohort yet")
    check_report_dir(sweep, out, ("waterfall.png", "spider.png", "km.png"))
    figures = {
        "waterfall.png": plot_waterfall(patients),
        "spider.png": plot_spider(sweep, patients),
        "km.png": plot_km(patients),
    }
    warn_partial(sweep, "the report")
    return write_report_files(out, figures, _cohort_markdown(sweep, patients, list(figures)))
