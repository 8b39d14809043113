"""The analyses behind docs/validation.md: the stylized facts (docs/design.md section 5),
immune phenotypes, the size threshold and the calibration checks.

Run from the repository root:

    .venv/bin/python experiments/validation/run_facts.py            # all facts + calibration
    .venv/bin/python experiments/validation/run_facts.py 1 3 calib  # a subset
    .venv/bin/python experiments/validation/run_facts.py --workers 4 7
    .venv/bin/python experiments/validation/run_facts.py 2 7 --set lymph_node_priming=true

Every experiment is a sweep spec: ``factN_*.toml``, ``phenotypes.toml``, ``size_threshold.toml``
and ``calib_*.toml`` next to this file (``calib_all`` builds its two specs from the parameter
registry, see ``calib_all_spec``). Each is run by the sweep runner (``abm.sweep.run_sweep``, as
``abm sweep``) into ``experiments/validation/runs/<spec>/`` (git-ignored); measurements during a
run (spatial snapshots, kill contacts, antigen loss) are the spec's ``[probes]``. This script only
reads those sweep directories (``abm.sweep.load_sweep``) and measures with ``abm.analysis``: it
prints each fact's Markdown table and writes its figures to ``docs/img/``. Fact 8 reads the runs
of facts 2 and 3.

A sweep directory is reused only if it holds the same spec run by the same model code: the sweep
runner records a hash of the model's sources in its manifest and refuses to resume otherwise
(``StaleSweep``; uncommitted edits count), and then this script deletes the directory and reruns
it. Delete ``runs/`` to rerun everything.

``--set NAME=VALUE`` (repeatable; VALUE in TOML syntax) adds a parameter to every spec's
``[parameters]``, to measure the facts with a rule switched on that is off by default (e.g. the
T-cell states and the lymph node, docs/validation_tcells.md). Those runs go to
``runs-set/<spec>/`` and their figures to ``runs-set/img/``, so docs/img is not touched.

A smoke run (does every analysis still run on today's model?), in seconds to minutes a fact:

    .venv/bin/python experiments/validation/run_facts.py 1 tissue_onset --seeds 1 --workers 1

``--seeds N`` keeps the first N seeds of every spec (same arms, factors, grids and days): its
numbers are not the page's. Those runs go to ``runs/seedsN/<spec>/`` and their figures to
``runs/seedsN/img/``. ``--runs DIR`` and ``--img DIR`` put the sweep directories and the figures
elsewhere (e.g. a temporary directory).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tomllib
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from abm.agents import Kind  # noqa: E402
from abm.analysis.growth import burden_on, cleared_day, growth_rate_ratio, loglog_slope  # noqa: E402
from abm.analysis.kills import (  # noqa: E402
    independent_contacts,
    kill_probability,
    kills_per_ctl_per_day,
)
from abm.analysis.paired import (  # noqa: E402
    bliss_excess,
    med_range,
    relative_benefit,
    relative_benefits,
)
from abm.analysis.runs import Run, by_point, finals  # noqa: E402
from abm.analysis.spatial import (  # noqa: E402
    DIST_BINS_UM,
    ctl_density_by_region,
    inside_over_band,
    local_ctl_density,
    mean_by_distance,
    necrotic_core,
    pdl1_colocalisation,
)
from abm.run import atomic_write_bytes  # noqa: E402
from abm.sweep import StaleSweep, load_spec, load_sweep, parse_spec, run_sweep  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMG = ROOT / "docs" / "img"
RUNS = HERE / "runs"  # one sweep directory per spec (git-ignored)
WORKERS = 2  # processes per sweep (--workers)
EXTRA: dict[str, str] = {}  # --set NAME=VALUE: added to every spec's [parameters] (TOML values)
SEEDS: int | None = None  # --seeds N: only the first N seeds of every spec (a smoke run)


# --- the runs: sweep directories ----


_SWEEPS: dict[str, dict] = {}  # spec name -> its runs, so a spec is read once per invocation


def sweep(name: str, spec_text: str | None = None) -> dict[Any, list[Run]]:
    """The runs of spec ``name`` (``<name>.toml`` here, or ``spec_text``), grouped by point
    (``abm.analysis.runs.by_point``: keyed by arm or factor value, each group in seed order);
    runs what is missing into ``runs/<name>/`` first (``run_sweep``, as ``abm sweep``)."""
    if name in _SWEEPS:
        return _SWEEPS[name]
    text = spec_text if spec_text is not None else (HERE / f"{name}.toml").read_text()
    text = with_seeds(with_parameters(text, EXTRA), SEEDS, source=f"{name}.toml")
    spec = parse_spec(tomllib.loads(text), source=f"{name}.toml")
    out = RUNS / name
    backend = "serial" if WORKERS == 1 else "process"  # one worker: no pool to start
    try:
        run_sweep(spec, out, backend=backend, workers=WORKERS, spec_text=text, progress=False)
    except StaleSweep as err:  # another spec version, or runs made by other model code
        print(f"{err}\n-> deleting {shown(out)} and rerunning it", flush=True)
        shutil.rmtree(out)
        run_sweep(spec, out, backend=backend, workers=WORKERS, spec_text=text, progress=False)
    _SWEEPS[name] = by_point(load_sweep(out))
    return _SWEEPS[name]


def with_parameters(text: str, extra: dict[str, str]) -> str:
    """Spec ``text`` with ``extra`` (name -> TOML value) added to its ``[parameters]`` table
    (created before the first other table if the spec has none). A parameter the spec already
    sets is an error: the spec's own value would be silently replaced."""
    if not extra:
        return text
    own = tomllib.loads(text)
    for table in ("parameters", "factors"):
        clash = sorted(set(extra) & set(own.get(table, {})))
        if clash:
            raise SystemExit(f"--set {clash[0]}: the spec already sets it in [{table}]")
    lines = "".join(f"{k} = {v}\n" for k, v in extra.items())
    found = re.search(r"^\[parameters\][^\n]*\n", text, flags=re.M)
    if found:
        return text[:found.end()] + lines + text[found.end():]
    header = text.index("[sweep]")
    nxt = re.search(r"^\[", text[header + 1:], flags=re.M)
    at = header + 1 + nxt.start() if nxt else len(text)
    return f"{text[:at]}[parameters]\n{lines}\n{text[at:]}"


def with_seeds(text: str, n: int | None, source: str = "spec") -> str:
    """Spec ``text`` with only the first ``n`` seeds of its ``[sweep]`` table (``seeds = [...]``
    shortened, or ``replicates`` capped at ``n``); unchanged when ``n`` is None."""
    if n is None:
        return text
    table = tomllib.loads(text).get("sweep", {})
    if "seeds" in table:
        pattern, value = r"^(seeds\s*=\s*)\[[^\]]*\]", repr(list(table["seeds"])[:n])
    elif "replicates" in table:
        pattern, value = r"^(replicates\s*=\s*)\d+", str(min(n, table["replicates"]))
    else:
        return text  # one seed already (the runner's default)
    new, count = re.subn(pattern, lambda m: m.group(1) + value, text, count=1, flags=re.M)
    if count != 1:
        raise SystemExit(f"--seeds {n}: cannot find the seeds of {source} to shorten")
    return new


def limit_seeds(seeds) -> list:
    """``seeds`` as a list, only the first ``--seeds N`` of them when that is given."""
    return list(seeds)[:SEEDS] if SEEDS is not None else list(seeds)


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def spec_factors(name: str) -> dict[str, list]:
    return load_spec(HERE / f"{name}.toml").factors


def paired_benefits(treated: list[Run], untreated: list[Run]) -> list[float]:
    """Relative benefit of each treated run over the untreated run of the same seed."""
    return relative_benefits(finals(treated), finals(untreated))


# --- output helpers ----
def series(run: Run, col: str = "CancerCells") -> tuple[np.ndarray, np.ndarray]:
    df = run.df
    return df["Day"].to_numpy(), df[col].to_numpy()


def table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def save(fig, name):
    """Write ``fig`` to ``IMG/name`` atomically (a reader sees the old figure or the new one)."""
    import io

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(IMG / name, buffer.getvalue())


def heatmap(grid, rows, cols, labels, title, name, missing="n/a"):
    """A 0-1 heatmap with each cell's value written in it (``missing`` where it is NaN)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    im = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i, j in np.ndindex(grid.shape):
        v = grid[i, j]
        text = f"{v:.2f}" if np.isfinite(v) else missing
        # white on dark cells; black on light ones and on the white of a missing value
        ax.text(
            j, i, text, ha="center", va="center", fontsize=8, color="white" if v < 0.5 else "black"
        )
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel=labels[0], ylabel=labels[1], title=title)
    plt.colorbar(im, ax=ax, fraction=0.046)
    save(fig, name)


def plot_groups(ax, groups: dict[str, list[Run]], col="CancerCells", log=False):
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, runs) in enumerate(groups.items()):
        for j, r in enumerate(runs):
            d, y = series(r, col)
            ax.plot(
                d,
                y,
                color=colours[i % len(colours)],
                alpha=0.7,
                lw=1,
                label=label if j == 0 else None,
            )
    ax.set_xlabel("day")
    ax.set_ylabel(col)
    if log:
        ax.set_yscale("symlog", linthresh=10)
    ax.legend(fontsize=8)


# --- fact 1: compact (quadratic) growth without immunity ----
def fact1():
    days = 20  # fact1_compact_growth.toml
    (runs,) = sweep("fact1_compact_growth").values()
    slopes, ratios = [], []
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    for r in runs:
        d, n = series(r)
        slopes.append(loglog_slope(d, n, from_day=6))
        daily = n[::24]
        ratios.append(growth_rate_ratio(daily, early=8, late=days))
        a.loglog(d[d > 0], n[d > 0], lw=1)
        b.plot(d[24::24], np.diff(np.log(daily)), marker=".", lw=1)
    ref = np.linspace(6, days)
    d0, n0 = series(runs[0])
    k = n0[np.searchsorted(d0, 6)] / 36
    a.loglog(ref, k * ref**2, "k--", label="slope 2")
    a.set(xlabel="day", ylabel="cancer cells", title="tumor_only, 5 founder cells")
    a.legend(fontsize=8)
    b.set(xlabel="day", ylabel="daily log growth rate", title="per-day growth rate falls")
    save(fig, "fact1_growth.png")
    rows = [
        (
            "log-log slope of N(t), days 6-20",
            med_range(slopes),
            "2 (Eden), ~constant rate if exponential",
        ),
        ("late (d18-20) / early (d6-8) log growth rate", med_range(ratios), "<1 (1 if exp.)"),
    ]
    return {
        "slopes": slopes,
        "ratios": ratios,
        "table": table(rows, ("measure (3 seeds)", "median [range]", "expected")),
    }


# --- fact 2: three Es, and immunoediting ----
def fact2():
    groups = sweep("fact2_three_es")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    plot_groups(a, groups, log=True)
    a.set_title("three Es (4 seeds each)")
    plot_groups(b, {k: groups[k] for k in ("escape", "escape, no T cells")}, col="MeanAntigenicity")
    b.set_title("immunoediting: escape vs same seeds without T cells")
    save(fig, "fact2_three_es.png")
    rows = []
    for k, runs in groups.items():
        fin = finals(runs)
        clear_days = [cleared_day(r.df) for r in runs if r.n_cancer == 0]
        rows.append(
            (
                k,
                int(np.median([r.n0 for r in runs])),
                med_range([burden_on(r.df, 14) for r in runs], "{:.0f}"),
                med_range(fin, "{:.0f}"),
                f"{sum(f == 0 for f in fin)}/{len(fin)}",
                med_range(clear_days, "{:.1f}") if clear_days else "-",
                med_range([r.final("MeanAntigenicity") for r in runs], "{:.3f}"),
            )
        )
    diffs = [
        u.final("MeanAntigenicity") - e.final("MeanAntigenicity")
        for e, u in zip(groups["escape"], groups["escape, no T cells"], strict=True)
    ]
    t = table(
        rows,
        (
            "scenario",
            "N0",
            "N day 14",
            "N day 30",
            "cleared",
            "day cleared",
            "mean antigenicity day 30",
        ),
    )
    t += (
        "\n\nEditing: antigenicity(no T cells) - antigenicity(with T cells), paired seeds: "
        f"{med_range(diffs, '{:.3f}')}"
    )
    return {
        "groups": {k: finals(v) for k, v in groups.items()},
        "edit_diffs": diffs,
        "table": t,
    }


# --- fact 2 over 120 days: is the equilibrium bounded? ----
def fact2l():
    (runs,) = sweep("fact2_equilibrium_horizon").values()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rows = []
    for i, r in enumerate(runs):
        df = r.df
        day, n, t = df["Day"].to_numpy(), df["CancerCells"].to_numpy(), df["TCells"].to_numpy()
        colour = colours[i % len(colours)]
        a.plot(day, n, color=colour, lw=1, label=f"seed {r.seed}")
        b.plot(n, t, color=colour, lw=0.8, alpha=0.8)
        b.plot(n[-1], t[-1], "o", color=colour, ms=4)
        peak = int(np.argmax(n))
        after = n[peak:]
        at = {d: (burden_on(df, d) if day[-1] >= d else 0) for d in (30, 60, 90, 120)}
        cleared = f"day {cleared_day(df):.0f}" if n[-1] == 0 else "-"
        rows.append(
            (
                r.seed,
                int(n[0]),
                f"{int(n[peak])} (day {day[peak]:.0f})",
                int(after.min()),
                at[30],
                at[60],
                at[90],
                at[120],
                cleared,
            )
        )
    a.set(xlabel="day", ylabel="cancer cells", title="equilibrium scenario, 120 days")
    a.legend(fontsize=7, ncol=2)
    b.set(xlabel="cancer cells", ylabel="T cells", title="phase plane (dot = day 120)")
    save(fig, "fact2_equilibrium_horizon.png")
    peaks = [int(r.summary["peak_burden"]) for r in runs]
    n0 = runs[0].n0
    t = table(
        rows,
        (
            "seed",
            "N0",
            "peak (day)",
            "min after peak",
            "N d30",
            "N d60",
            "N d90",
            "N d120",
            "cleared",
        ),
    )
    base = load_spec(HERE / "fact2_equilibrium_horizon.toml").base_parameters
    t += (
        f"\n\nPeak / N0: {med_range([p / n0 for p in peaks], '{:.1f}')}; "
        f"grid sites: {base['width'] * base['height']}"
    )
    return {"table": t}


# --- fact 3: adaptive PD-L1 resistance; anti-PD-1 hot vs cold ----
def fact3():
    """PD-L1 / CTL maps from the ``snapshot`` probe (day 14) of the untreated hot runs."""
    g = sweep("fact3_adaptive_resistance")
    hot = paired_benefits(g["hot, anti-PD-1 d7"], g["hot, untreated"])
    cold = paired_benefits(g["cold, anti-PD-1 d7"], g["cold, untreated"])
    noind = paired_benefits(g["hot, no PD-L1 induction, anti-PD-1 d7"],
                     g["hot, no PD-L1 induction, untreated"])
    # untreated killing with and without PD-L1 induction: kills over 21 d, burden at day 21
    pairs = list(zip(g["hot, no PD-L1 induction, untreated"], g["hot, untreated"], strict=True))
    kill_ratio = [a.summary["total_kills"] / max(b.summary["total_kills"], 1) for a, b in pairs]
    burden_ratio = [a.n_cancer / max(b.n_cancer, 1) for a, b in pairs]
    # co-localisation at day 14, untreated hot tumour
    coloc = [pdl1_colocalisation(r.snapshot["kind"], r.snapshot["pdl1"])
             for r in g["hot, untreated"] if r.snapshot is not None]
    r_all, r_cancer, pos_ratio = ([c[k] for c in coloc if np.isfinite(c[k])]
                                  for k in ("r_all", "r_cancer", "near_far"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    plot_groups(
        axes[0],
        {
            k: g[k]
            for k in (
                "hot, anti-PD-1 d7",
                "hot, untreated",
                "cold, anti-PD-1 d7",
                "cold, untreated",
            )
        },
        log=True,
    )
    axes[0].axvline(7, color="grey", ls=":")
    axes[0].set_title("anti-PD-1 from day 7: hot vs cold")
    s = next(r.snapshot for r in g["hot, untreated"] if r.snapshot is not None)
    cancer = s["kind"] == Kind.CANCER
    im = axes[1].imshow(np.where(cancer, s["pdl1"], np.nan).T, origin="lower", cmap="magma")
    ty, tx = np.nonzero((s["kind"] == Kind.TCELL).T)
    axes[1].scatter(tx, ty, s=3, c="cyan", label="CTL")
    axes[1].set_title("untreated hot, day 14: PD-L1 (cancer) + CTLs")
    axes[1].legend(fontsize=7, loc="upper right")
    plt.colorbar(im, ax=axes[1], fraction=0.046)
    c = cancer.ravel()
    axes[2].scatter(local_ctl_density(s["kind"]).ravel()[c], s["pdl1"].ravel()[c], s=2, alpha=0.3)
    axes[2].set(
        xlabel="local CTL density (5x5 mean of kind==2)",
        ylabel="PD-L1 (cancer sites)",
        title="PD-L1 vs CTL density, seed 0",
    )
    save(fig, "fact3_checkpoint.png")
    rows = [
        ("relative benefit of anti-PD-1, hot (checkpoint)", med_range(hot)),
        ("relative benefit of anti-PD-1, cold (checkpoint_cold)", med_range(cold)),
        ("relative benefit of anti-PD-1, hot, pdl1_induction=0", med_range(noind)),
        ("untreated hot: kills by day 21, pdl1_induction=0 / default", med_range(kill_ratio)),
        ("untreated hot: burden day 21, pdl1_induction=0 / default", med_range(burden_ratio)),
        ("day 14 corr(PD-L1, CTL density), all sites", med_range(r_all)),
        ("day 14 corr(PD-L1, CTL density), cancer sites only", med_range(r_cancer)),
        ("day 14 mean PD-L1 of cancer cells with / without a CTL in 5x5", med_range(pos_ratio)),
    ]
    t = table(rows, ("measure (seeds 0-3, paired)", "median [range]"))
    t += "\n\nFinal burdens (day 21): " + "; ".join(f"{k}: {finals(v)}" for k, v in g.items())
    return {"table": t}


# --- fact 3 as a gradient: anti-PD-1 benefit over antigenicity x infiltration ----
def fact3g():
    spec = "fact3_hot_cold_gradient"
    factors = spec_factors(spec)
    antigens, influx = factors["founder_antigens"], factors["tcell_influx"]
    results = sweep(spec)  # keyed by (arm, founder_antigens, tcell_influx)
    median = np.full((len(antigens), len(influx)), np.nan)
    rows = []
    for a_i, a in enumerate(antigens):
        for f_i, f in enumerate(influx):
            treated = results[("anti-PD-1 d7", a, f)]
            untreated = results[("untreated", a, f)]
            # defined only where the untreated twin still has a tumour to treat
            pairs = zip(treated, untreated, strict=True)
            ben = [relative_benefit(t.n_cancer, u.n_cancer) for t, u in pairs if u.n_cancer > 0]
            if len(ben) >= 2:
                median[a_i, f_i] = statistics.median(ben)
            rows.append(
                (
                    a,
                    f"{f:g}",
                    med_range(finals(untreated), "{:.0f}"),
                    med_range(finals(treated), "{:.0f}"),
                    med_range(ben) + (f" ({len(ben)} seeds)" if len(ben) < len(treated) else ""),
                )
            )
    heatmap(
        median,
        rows=[str(a) for a in antigens],
        cols=[f"{f:g}" for f in influx],
        labels=("T-cell influx (CTL/h)", "founder antigens"),
        title="relative benefit of anti-PD-1 at day 21 (median, 4 seeds)",
        name="fact3_hot_cold_gradient.png",
        missing="untreated\ncleared",
    )
    return {
        "table": table(
            rows,
            (
                "founder antigens",
                "T-cell influx",
                "untreated burden d21",
                "treated burden d21",
                "relative benefit",
            ),
        )
    }


# --- fact 3 at tissue scale: PD-L1 against distance to the nearest CTL ----
def fact3s():
    """PD-L1 and IFN-gamma maps from the ``snapshot`` probe (day 10)."""
    g = sweep("fact3_tissue_scale")
    mids = [(lo + hi) / 2 for lo, hi in zip(DIST_BINS_UM[:-1], DIST_BINS_UM[1:], strict=True)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rows = []
    for i, (arm, runs) in enumerate(g.items()):
        ratios, ifng_ratios = [], []
        for j, r in enumerate(runs):
            kind = r.snapshot["kind"]
            pdl1 = mean_by_distance(kind, r.snapshot["pdl1"], DIST_BINS_UM, min_cells=20)
            ifng = mean_by_distance(kind, r.snapshot["ifng"], DIST_BINS_UM, min_cells=20)
            far = pdl1[4] if np.isfinite(pdl1[4]) else pdl1[3]  # 480-960 um (or 240-480)
            far_ifng = ifng[4] if np.isfinite(ifng[4]) else ifng[3]
            ratios.append(pdl1[0] / far)
            ifng_ratios.append(ifng[0] / far_ifng)
            axes[0].plot(
                mids, pdl1, "-o", ms=3, color=colours[i], alpha=0.8, label=arm if j == 0 else None
            )
        rows.append(
            (
                arm,
                med_range(ratios),
                med_range(ifng_ratios, "{:.2f}"),
                med_range(finals(runs), "{:.0f}"),
            )
        )
    axes[0].set(
        xscale="log",
        xlabel="distance to the nearest CTL (um)",
        ylabel="mean PD-L1 of cancer cells",
        title="day 10, untreated hot tumour",
    )
    axes[0].legend(fontsize=8)
    for ax, (arm, runs) in zip(axes[1:], g.items(), strict=True):
        s = runs[0].snapshot
        im = ax.imshow(
            np.where(s["kind"] == Kind.CANCER, s["pdl1"], np.nan).T,
            origin="lower",
            cmap="magma",
            vmin=0.05,
            vmax=0.45,
        )
        ty, tx = np.nonzero((s["kind"] == Kind.TCELL).T)
        ax.scatter(tx, ty, s=1, c="cyan")
        ax.set_title(f"PD-L1 and CTLs (cyan), {arm}", fontsize=9)
        plt.colorbar(im, ax=ax, fraction=0.046)
    save(fig, "fact3_tissue_scale.png")
    return {
        "table": table(
            rows,
            (
                "IFN-gamma diffusion (arm)",
                "PD-L1 near (< 60 um) / far (480-960 um) from a CTL",
                "IFN-gamma near / far",
                "burden day 10",
            ),
        )
    }


# --- fact 4: anti-CTLA-4 earlier is better ----
def fact4():
    g = sweep("fact4_ctla4_timing")  # keyed by anti_ctla4_start_day (None = untreated)
    starts = list(g)
    rows, med = [], []
    for d in starts[1:]:
        b = paired_benefits(g[d], g[None])
        med.append(statistics.median(b))
        rows.append(
            (f"day {d:g}", med_range(b), med_range(finals(g[d]), "{:.0f}"))
        )
    rows.insert(0, ("untreated", "-", med_range(finals(g[None]), "{:.0f}")))
    # the control: the same schedule in a tumour without antigens (fact4_non_antigenic.toml)
    h = sweep("fact4_non_antigenic")
    b0 = paired_benefits(h[1.0], h[None])
    rows.append(
        (
            "day 1, no tumour antigens",
            med_range(b0),
            med_range(finals(h[1.0]), "{:.0f}")
            + " (untreated "
            + med_range(finals(h[None]), "{:.0f}")
            + ")",
        )
    )
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    plot_groups(
        a,
        {("untreated" if d is None else f"anti-CTLA-4 day {d:g}"): g[d] for d in starts},
        log=True,
    )
    a.set_title("checkpoint (no anti-PD-1), mutation 0.03")
    for s_i, untreated in enumerate(g[None]):
        b.plot(
            starts[1:],
            [relative_benefit(g[d][s_i].n_cancer, untreated.n_cancer) for d in starts[1:]],
            marker="o",
            alpha=0.6,
            label=f"seed {untreated.seed}",
        )
    b.plot(starts[1:], med, "k-", lw=2, label="median")
    b.set(xlabel="anti-CTLA-4 start day", ylabel="relative benefit at day 21")
    b.legend(fontsize=8)
    save(fig, "fact4_ctla4_timing.png")
    return {
        "table": table(
            rows, ("anti-CTLA-4 start", "relative benefit, median [range]", "burden day 21")
        )
    }


# --- fact 5: vaccine ----
def fact5():
    g = sweep("fact5_vaccine")  # antigen fractions: the ``antigen_loss`` probe
    vac, ctl = g["vaccine day 0"], g["no vaccine"]
    ben = paired_benefits(vac, ctl)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    plot_groups(a, {"vaccine day 0": vac, "no vaccine": ctl}, log=True)
    a.set_title("vaccine scenario")
    plot_groups(b, {"vaccine day 0": vac, "no vaccine": ctl}, col="MeanAntigenicity")
    save(fig, "fact5_vaccine.png")
    # vaccine_antigens = 0 means the vaccine targets the founder clone's antigens, so
    # "lacking the founder's antigens" is comparable between vaccinated and control runs.
    rows = [
        ("relative benefit at day 24", med_range(ben)),
        ("burden day 24, vaccinated", med_range(finals(vac), "{:.0f}")),
        ("burden day 24, control", med_range(finals(ctl), "{:.0f}")),
        (
            "fraction of cells lacking all vaccine antigens, vaccinated survivors",
            med_range([r.probes["antigen_loss"]["lacking_vaccine"] for r in vac]),
        ),
        (
            "fraction lacking all founder (= vaccine) antigens, vaccinated",
            med_range([r.probes["antigen_loss"]["lacking_founder"] for r in vac]),
        ),
        (
            "fraction lacking all founder (= vaccine) antigens, control",
            med_range([r.probes["antigen_loss"]["lacking_founder"] for r in ctl]),
        ),
    ]
    return {
        "table": table(rows, ("measure (seeds 0-3, paired)", "median [range]")),
        "vac": vac,
        "ctl": ctl,
    }


# --- fact 6: CAR-T and antigen loss ----
def fact6():
    g = sweep("fact6_cart")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    plot_groups(a, g, log=True)
    a.axvline(5, color="grey", ls=":")
    a.set_title("CAR-T day 5 (dose 300)")
    plot_groups(b, g, col="AntigenNegativeFraction")
    save(fig, "fact6_cart.png")
    rows = []
    for k, runs in g.items():
        surv = [r for r in runs if r.n_cancer > 0]
        rows.append(
            (
                k,
                med_range(finals(runs), "{:.0f}"),
                f"{len(surv)}/{len(runs)}",
                med_range([r.final("AntigenNegativeFraction") for r in surv]),
            )
        )
    return {
        "table": table(
            rows,
            ("arm", "burden day 20", "tumour present", "antigen-negative fraction (survivors)"),
        )
    }


# --- fact 6, relapse against burden at infusion ----
def fact6b():
    g = sweep("fact6_relapse_vs_burden")  # keyed by (antigen_loss_rate, cart_start_day)
    rows = []
    for (loss, start), runs in g.items():
        at_infusion = [burden_on(r.df, start) for r in runs]
        relapsed = [r for r in runs if r.n_cancer > 0]
        rows.append(
            (
                f"{loss:g}",
                f"day {start:g}",
                med_range(at_infusion, "{:.0f}"),
                f"{len(relapsed)}/{len(runs)}",
                med_range(finals(relapsed), "{:.0f}") if relapsed else "-",
                med_range([r.final("AntigenNegativeFraction") for r in relapsed])
                if relapsed
                else "-",
            )
        )
    return {
        "table": table(
            rows,
            (
                "antigen loss rate",
                "CAR-T",
                "burden at infusion",
                "tumour present day 30",
                "its burden",
                "antigen-negative fraction",
            ),
        )
    }


# --- fact 7: combination ----
def fact7():
    start = 10.0
    by_doses = sweep("fact7_combination")  # keyed by (anti-PD-1 day, anti-CTLA-4 day)
    names = {(None, None): "none", (start, None): "anti-PD-1", (None, start): "anti-CTLA-4"}
    names[(start, start)] = "both"
    g = {names[k]: by_doses[k] for k in names}
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    plot_groups(ax, g, log=True)
    ax.axvline(start, color="grey", ls=":")
    ax.set_title("escape scenario, therapy from day 10")
    save(fig, "fact7_combination.png")
    rows = [
        (
            k,
            med_range(finals(v), "{:.0f}"),
            "-" if k == "none" else med_range(paired_benefits(v, g["none"])),
        )
        for k, v in g.items()
    ]
    wins = sum(
        b.n_cancer <= min(p.n_cancer, c.n_cancer)
        for b, p, c in zip(g["both"], g["anti-PD-1"], g["anti-CTLA-4"], strict=True)
    )
    # Bliss independence: expected surviving fraction = product of single-agent fractions
    bliss = [
        bliss_excess(n.n_cancer, p.n_cancer, c.n_cancer, b.n_cancer)
        for n, p, c, b in zip(g["none"], g["anti-PD-1"], g["anti-CTLA-4"], g["both"], strict=True)
    ]
    t = table(rows, ("arm", "burden day 24", "relative benefit vs none"))
    t += (
        f"\n\nCombination <= both single agents in {wins}/{len(g["none"])} seeds. Bliss excess "
        "(expected surviving fraction under independence minus observed; > 0 = synergy): "
        f"{med_range(bliss, '{:.3f}')}"
    )
    return {"table": t}


# --- fact 8: kills per CTL per day ----
def fact8():
    """Reads the runs of facts 2 and 3 (hourly rows); window = days 7-14 (T cells
    established)."""
    three_es = sweep("fact2_three_es")
    resistance = sweep("fact3_adaptive_resistance")
    sets = [
        ("equilibrium", three_es["equilibrium"]),
        ("escape", three_es["escape"]),
        ("checkpoint (untreated)", resistance["hot, untreated"]),
        ("checkpoint", resistance["hot, anti-PD-1 d7"]),
    ]
    lo, hi = 7.0, 14.0
    rows = []
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, runs in sets:
        rates = [kills_per_ctl_per_day(r.df, lo, hi) for r in runs]
        eng = [x["engaged"] for x in rates if np.isfinite(x["engaged"])]
        pres = [x["present"] for x in rates if np.isfinite(x["present"])]
        rows.append((label, med_range(eng), med_range(pres)))
        ax.scatter([label] * len(eng), eng, marker="o", label=None)
        ax.scatter([label] * len(pres), pres, marker="x", color="k")
    ax.axhspan(2, 16, color="green", alpha=0.15, label="2-16 (Halle 2016)")
    ax.set_yscale("log")
    ax.set_ylabel("kills per CTL per day (o engaged, x present)")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=8)
    save(fig, "fact8_kill_rate.png")
    return {
        "table": table(
            rows,
            (
                "scenario (days 7-14, seeds 0-3)",
                "kills / engaged CTL / day",
                "kills / CTL present / day",
            ),
        )
    }


# --- fact 8, second half: does a target's death rise with the CTLs around it? ----
def fact8c():
    """Untreated hot tumour (fact 3's runs), days 7-14: each hour, every cancer cell's number of
    CTLs on its 8 neighbouring sites, and whether it was killed within that hour."""
    runs = sweep("fact3_adaptive_resistance")["hot, untreated"]  # the ``contacts`` probe
    contacts = [r.probes["contacts"] for r in runs]
    exposed = sum(c["exposed"] for c in contacts)
    died = sum(c["died"] for c in contacts)
    ks = [k for k in range(9) if exposed[k] >= 200]
    p_obs = kill_probability(exposed, died)[ks]
    p1 = died[1] / exposed[1]
    independent = independent_contacts(p1, ks)  # each contact an independent chance to kill
    per_seed: dict[int, list[float]] = {k: [] for k in ks}
    for c in contacts:
        p = kill_probability(c["exposed"], c["died"], min_exposed=50)
        for k in ks:
            if np.isfinite(p[k]):
                per_seed[k].append(p[k])
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for k in ks:
        ax.scatter([k] * len(per_seed[k]), per_seed[k], color="grey", s=10, alpha=0.6)
    ax.plot(ks, p_obs, "o-", color="#d95f02", label="observed (4 seeds pooled)")
    ax.plot(ks, independent, "k--", label="independent contacts: 1-(1-p1)^k")
    ax.set(
        xlabel="CTLs on the 8 neighbouring sites",
        ylabel="probability killed within the hour",
        title="untreated hot tumour, days 7-14",
    )
    ax.legend(fontsize=8)
    save(fig, "fact8_contacts.png")
    rows = [
        (
            k,
            int(exposed[k]),
            int(died[k]),
            f"{died[k] / exposed[k]:.4f}",
            f"{1 - (1 - p1) ** k:.4f}",
            med_range(per_seed[k], "{:.4f}"),
        )
        for k in ks
    ]
    return {
        "table": table(
            rows,
            (
                "CTLs around",
                "cell-hours",
                "killed",
                "P(killed / h)",
                "independent expectation",
                "per seed, median [range]",
            ),
        )
    }


# --- immune phenotypes: inflamed, excluded, desert ----
def phenotypes():
    """CTLs per mm² inside the tumour outline, in its core (> 150 um deep) and in a 150 um band
    around it (``abm.analysis.spatial.ctl_density_by_region``), on the day-10 ``snapshot``."""
    g = sweep("phenotypes")
    rows = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (arm, runs) in zip(axes, g.items(), strict=True):
        d = [ctl_density_by_region(r.snapshot["kind"]) for r in runs]
        ratio = [inside_over_band(x, min_ctls=50) for x in d]
        rows.append(
            (
                arm,
                med_range([x["cancer"] for x in d], "{:.0f}"),
                med_range([x["ctl"] for x in d], "{:.0f}"),
                med_range([x["inside"] for x in d], "{:.0f}"),
                med_range([x["core"] for x in d], "{:.0f}"),
                med_range([x["band"] for x in d], "{:.0f}"),
                med_range(ratio),
            )
        )
        kind = runs[0].snapshot["kind"]
        rgb = np.ones(kind.shape + (3,))
        rgb[kind == Kind.CANCER] = (0.55, 0.55, 0.6)
        rgb[kind == Kind.TCELL] = (0.0, 0.75, 0.9)
        ax.imshow(np.transpose(rgb, (1, 0, 2)), origin="lower", interpolation="nearest")
        ax.set_title(f"{arm}, day 10 (CTLs cyan)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    save(fig, "phenotypes.png")
    return {
        "table": table(
            rows,
            (
                "tumour (seeds 0-2)",
                "cancer cells",
                "CTLs",
                "CTL/mm² inside",
                "CTL/mm² core (> 150 µm)",
                "CTL/mm² band (150 µm around)",
                "inside / band",
            ),
        )
    }


# --- size-dependent outcome (the spatial counterpart of Kuznetsov's threshold) ----
def size_threshold():
    factors = spec_factors("size_threshold")
    influx, sizes = factors["tcell_influx"], factors["initial_tumor_cells"]
    g = sweep("size_threshold")  # keyed by (tcell_influx, initial_tumor_cells)
    cleared = np.zeros((len(influx), len(sizes)))
    rows = []
    for i, f in enumerate(influx):
        for j, n0 in enumerate(sizes):
            runs = g[(f, n0)]
            fin = finals(runs)
            cleared[i, j] = np.mean([x == 0 for x in fin])
            days = [r.summary["time_to_elimination_day"] for r in runs if r.n_cancer == 0]
            rows.append(
                (
                    f"{f:g}",
                    n0,
                    f"{sum(x == 0 for x in fin)}/{len(fin)}",
                    med_range(days, "{:.1f}") if days else "-",
                    med_range([x / n0 for x in fin]),
                )
            )
    heatmap(
        cleared,
        rows=[f"{f:g}" for f in influx],
        cols=[str(n) for n in sizes],
        labels=("founder tumour (cells)", "T-cell influx (CTL/h)"),
        title="fraction cleared by day 30 (elimination scenario)",
        name="size_threshold.png",
    )
    return {
        "table": table(
            rows, ("T-cell influx", "founder cells", "cleared", "day cleared", "N(day 30) / N0")
        )
    }


# --- calibration: one-at-a-time ----
def calib():
    """Four key parameters halved and doubled (specs ``calib_escape.toml`` and
    ``calib_elimination.toml``, one arm per change): final burden and outcome class per seed."""
    tables = []
    for name in ("calib_escape", "calib_elimination"):
        g = sweep(name)
        base = g["baseline"]
        spec = load_spec(HERE / f"{name}.toml")
        # a ratio to a cleared baseline (burden 0, as in `elimination`) means nothing: no column
        paired = all(b.n_cancer > 0 for b in base)
        rows = []
        for k, runs in g.items():
            fold = [r.n_cancer / r.n0 for r in runs]
            outcome = ", ".join(r.summary["outcome"] for r in runs)  # abm.analysis.outcomes
            if paired:
                ratio = [r.n_cancer / b.n_cancer for r, b in zip(runs, base, strict=True)]
                rows.append((k, med_range(fold), med_range(ratio), outcome))
            else:
                rows.append((k, med_range(fold), outcome))
        header = (
            f"{spec.scenario} scenario, one change",
            f"N(day {spec.steps // 24})/N0",
            *(("burden / baseline (paired)",) if paired else ()),
            "outcome per seed (0,1,2)",
        )
        tables.append(table(rows, header))
    return {"table": "\n\n".join(tables)}


CALIB_ALL = (("escape", 21, "escape"), ("elimination", 15, "eliminated"))  # scenario, days, kept
CALIB_ALL_SEEDS = (0, 1, 2)


def calib_all_names() -> list[str]:
    """The parameters ``calib_all`` varies: every modelling choice of the registry except the
    domain and the therapies (not given in these two scenarios), booleans and optional ones."""
    from abm.params import PARAMS

    skip = {"width", "height", "initial_tumor_cells"}  # domain, not biology
    therapy = {"Anti-PD-1", "Anti-CTLA-4", "Vaccine", "CAR-T"}
    return [
        n
        for n, p in PARAMS.items()
        if "modelling choice" in p.source
        and not p.optional
        and p.kind is not bool
        and n not in skip
        and p.group not in therapy
        and p.default
    ]


def _scaled(name: str, base: float, factor: float):
    """``base`` times ``factor``, kept inside the parameter's allowed range (ints rounded)."""
    from abm.params import PARAMS

    param = PARAMS[name]
    value = base * factor
    if param.kind is int:
        value = round(value)
    if param.high is not None:
        value = min(value, param.high)
    if param.low is not None:
        value = max(value, param.low)
    return value


def calib_all_spec(scenario: str, days: int) -> str:
    """The sweep spec (TOML text) of ``calib_all`` for one scenario: an arm per parameter and
    factor (x0.5, x2) of ``calib_all_names``, scaled from the scenario's value. Built here, not
    kept as a file, because the values follow the registry's defaults."""
    from abm.params import resolve

    values = resolve(scenario)
    lines = [
        "[sweep]",
        f'name = "calib-all-{scenario}"',
        f'description = "Does {scenario} keep its outcome with each modelling choice x0.5, x2?"',
        f'scenario = "{scenario}"',
        f"days = {days}",
        f"seeds = {list(CALIB_ALL_SEEDS)}",
        "record_every = 24",
    ]
    for name in calib_all_names():
        for factor in (0.5, 2.0):
            value = _scaled(name, values[name], factor)
            if value == values[name]:  # at its allowed range's limit: the scenario itself
                continue  # (a sweep refuses an arm identical to another)
            lines += ["", f'[arms."{name} x{factor:g}"]', f"{name} = {value!r}"]
    return "\n".join(lines) + "\n"


def calib_all():
    """Every modelling-choice default halved and doubled, one at a time: does `escape` still
    escape (``abm.analysis.outcomes.classify``) at day 21 and `elimination` still clear at day
    15?"""
    from abm.params import PARAMS, resolve

    kept: dict[str, list[int]] = {}
    for scenario, days, ok in CALIB_ALL:
        name = f"calib_all_{scenario}"
        arms = sweep(name, calib_all_spec(scenario, days))
        for arm in (f"{n} x{f:g}" for n in calib_all_names() for f in (0.5, 2.0)):
            runs = arms.get(arm)  # None: the factor leaves the value at its range's limit
            kept.setdefault(arm, []).append(
                None if runs is None else sum(r.summary["outcome"] == ok for r in runs))
    n = len(CALIB_ALL_SEEDS)
    rows = []
    for name in calib_all_names():
        cells = [" / ".join("at limit" if k is None else f"{k}/{n}"
                            for k in kept[f"{name} x{f:g}"]) for f in (0.5, 2.0)]
        holds = all(k is None or k >= 2 for f in (0.5, 2.0) for k in kept[f"{name} x{f:g}"])
        values = list(dict.fromkeys(resolve(sc)[name] for sc, _, _ in CALIB_ALL))
        rows.append(
            (
                f"`{name}`",
                " / ".join(f"{v:g}" for v in values) + f" {PARAMS[name].unit}",
                cells[0],
                cells[1],
                "yes" if holds else "**no**",
            )
        )
    return {
        "table": table(
            rows,
            (
                "parameter (modelling choice)",
                "value in escape / elimination",
                "x0.5: escape kept / elimination kept",
                "x2: escape kept / elimination kept",
                "both outcomes kept (>= 2/3 seeds)",
            ),
        )
    }


# --- tissue biology: necrosis onset, viable rim, growth with oxygen, PD-L1 near vs far ----
def _disc_radius_um(n_sites: float) -> float:
    return float(np.sqrt(n_sites / np.pi) * 15.0)


def tissue_onset():
    """Necrotic core vs founder-disc radius, and the viable rim, on the day-2 snapshot."""
    sizes = spec_factors("tissue_necrosis_onset")["initial_tumor_cells"]
    g = sweep("tissue_necrosis_onset")
    rows, radii, fractions, rims = [], [], [], []
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for n0 in sizes:
        runs = g[n0]
        r0 = _disc_radius_um(n0)
        necrotic = [int(r.final("NecroticSites")) for r in runs]
        hypoxic = [r.final("HypoxicFraction") for r in runs]
        rim = []
        for j, r in enumerate(runs):
            snap = r.snapshot
            kind, o2 = snap["kind"], snap["oxygen"]
            tumour = (kind == Kind.CANCER) | (kind == Kind.NECROTIC)
            if necrotic[j] > 0.05 * n0:
                rim.append(_disc_radius_um(tumour.sum()) - _disc_radius_um(necrotic[j]))
            if j == 0:  # oxygen against depth below the tumour's surface
                from scipy import ndimage

                # depth below the outer surface (apoptosis leaves holes inside: fill them)
                depth = ndimage.distance_transform_edt(ndimage.binary_fill_holes(tumour)) * 15.0
                bins = np.arange(0, r0 + 30, 15.0)
                idx = np.digitize(depth[tumour], bins)
                prof = [o2[tumour][idx == i].mean() if (idx == i).any() else np.nan
                        for i in range(1, len(bins))]
                a.plot(bins[:-1], prof, lw=1.2, label=f"R = {r0:.0f} um")
        radii.append(r0)
        fractions.append(np.median(necrotic) / n0)
        rims += rim
        rows.append((f"{r0:.0f}", n0, med_range(necrotic, "{:.0f}"),
                     med_range(hypoxic, "{:.2f}"), med_range(rim, "{:.0f}") if rim else "-"))
    for level, name in ((15, "hypoxic"), (5, "necrosis")):
        a.axhline(level, color="grey", ls=":", lw=1)
        a.text(2, level + 0.5, name, fontsize=7, color="grey")
    a.set(xlabel="depth below the tumour surface (um)", ylabel="oxygen (mmHg)",
          title="oxygen vs depth, day 2 (seed 1)")
    a.legend(fontsize=7)
    b.plot(radii, fractions, "o-")
    b.set(xlabel="founder disc radius (um)", ylabel="necrotic sites / founder cells",
          title="necrotic core onset (median of 3)")
    save(fig, "tissue_necrosis_onset.png")
    return {
        "rims": rims,
        "table": table(rows, ("disc radius (um)", "cells", "necrotic sites, day 2",
                              "hypoxic fraction", "viable rim (um)")),
    }


def doubling_time_days(days: np.ndarray, counts: np.ndarray, start: float, end: float) -> float:
    """Mean doubling time over [start, end] days from the log growth between the two ends."""
    i, j = np.searchsorted(days, start), np.searchsorted(days, end)
    growth = np.log(counts[j] / counts[i])
    return float((days[j] - days[i]) * np.log(2) / growth) if growth > 0 else float("inf")


TISSUE_PHASES = ((0, 5), (5, 15), (15, 30), (30, 45), (45, 60))


def tissue_growth():
    """The untreated growth curve with oxygen and cell death (60 days)."""
    (runs,) = sweep("tissue_growth").values()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    doubling = {phase: [] for phase in TISSUE_PHASES}
    slopes = {phase: [] for phase in TISSUE_PHASES[1:]}
    ends = {"CancerCells": [], "NecroticSites": [], "HypoxicFraction": [], "Apoptoses": [],
            "Necroses": []}
    for r in runs:
        d, n = series(r)
        for phase in TISSUE_PHASES:
            doubling[phase].append(doubling_time_days(d, n, *phase))
        for lo, hi in TISSUE_PHASES[1:]:
            i, j = np.searchsorted(d, lo), np.searchsorted(d, hi)
            slopes[(lo, hi)].append(float(np.log(n[j] / n[i]) / np.log(d[j] / d[i])))
        for col in ends:
            ends[col].append(r.final(col))
        a.plot(d, n, lw=1)
        b.plot(d, r.df["HypoxicFraction"], lw=1, color="C1")
        b.plot(d, r.df["NecroticSites"] / np.maximum(n, 1), lw=1, color="C3")
    a.set(xlabel="day", ylabel="cancer cells", title="tumor_only, 200 founder cells, 1.5 mm")
    b.set(xlabel="day", ylabel="fraction", title="hypoxic fraction (orange), necrotic/cancer (red)")
    save(fig, "tissue_growth.png")
    cores = [necrotic_core(r.probes["snapshot"]["kind"]) for r in runs]
    core_rows = [(r.seed, f"{c['radius_um']:.0f}", f"{c['inner']:.2f}", f"{c['ring']:.3f}",
                  len(r.probes["snapshot"]["collapsed_vessels"]))
                 for r, c in zip(runs, cores, strict=True)]
    rows = [(f"days {lo}-{hi}", med_range(doubling[(lo, hi)], "{:.1f}"),
             med_range(slopes[(lo, hi)]) if (lo, hi) in slopes else "-")
            for lo, hi in TISSUE_PHASES]
    tail = "; ".join(f"{col} {med_range(v, '{:.2f}' if col == 'HypoxicFraction' else '{:.0f}')}"
                     for col, v in ends.items())
    return {
        "doubling": doubling,
        "table": table(rows, ("phase", "doubling time (d)", "log-log slope"))
        + f"\n\nDay 60: {tail}\n\nDay 30, where the debris is:\n\n"
        + table(core_rows, ("seed", "tumour radius (um)", "necrotic share, inner half-radius",
                            "necrotic share, outer ring", "collapsed vessels")),
    }


def tissue_pdl1():
    """PD-L1 of cancer cells touching a CTL vs > 60 um (4 sites) from any CTL, day-14 snapshots
    (at the default scale no cancer cell is 150 um from a CTL by day 14)."""
    from scipy import ndimage

    (runs,) = sweep("tissue_pdl1").values()
    rows = []
    ratios = []
    for r in runs:
        snap = r.snapshot
        if not snap:
            rows.append((r.seed, "cleared", "-", "-", "-"))
            continue
        kind, pdl1, ifng = snap["kind"], snap["pdl1"], snap["ifng"]
        cancer = kind == Kind.CANCER
        ctl = kind == Kind.TCELL
        contacts = ndimage.convolve(ctl.view(np.int8), np.ones((3, 3), np.int8), mode="constant")
        touching = cancer & (contacts > 0)
        far = cancer & (ndimage.distance_transform_edt(~ctl) * 15.0 > 60.0)
        near_p = pdl1[touching].mean() if touching.any() else np.nan
        far_p = pdl1[far].mean() if far.sum() >= 20 else np.nan
        ratios.append(near_p / far_p)
        rows.append((r.seed, f"{touching.sum()} / {far.sum()}", f"{near_p:.3f} / {far_p:.3f}",
                     f"{ifng[touching].mean():.2f} / "
                     + (f"{ifng[far].mean():.2f}" if far.any() else "-"),
                     f"{near_p / far_p:.2f}"))
    return {
        "ratios": ratios,
        "table": table(rows, ("seed", "cells touching / far", "PD-L1 touching / far",
                              "IFN-g (ng/mL) touching / far", "ratio")),
    }


FACTS = {
    "1": fact1,
    "2": fact2,
    "2l": fact2l,
    "3": fact3,
    "3s": fact3s,
    "3g": fact3g,
    "4": fact4,
    "5": fact5,
    "6": fact6,
    "6b": fact6b,
    "7": fact7,
    "8": fact8,
    "8c": fact8c,
    "pheno": phenotypes,
    "size": size_threshold,
    "calib": calib,
    "calib_all": calib_all,
    "tissue_onset": tissue_onset,
    "tissue_growth": tissue_growth,
    "tissue_pdl1": tissue_pdl1,
}


def add_sweep_options(parser: argparse.ArgumentParser, workers: int) -> None:
    """``--workers``, ``--seeds`` and ``--runs``: the options of every script that runs its
    sweeps through this module (this one, ``run_immune_myeloid.py``, ``run_immune_tcells.py``)."""
    parser.add_argument("--workers", type=int, default=workers,
                        help=f"processes per sweep (default {workers})")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="a smoke run: only the first N seeds of every spec; runs go to "
                        "runs/seedsN/ (numbers not comparable with the docs)")
    parser.add_argument("--runs", type=Path, default=None, metavar="DIR",
                        help="where the sweep directories go (default runs/, runs/seedsN/ "
                        "with --seeds)")


def use_sweep_options(parser: argparse.ArgumentParser, args: argparse.Namespace,
                      runs: Path) -> None:
    """Check ``add_sweep_options``'s options and set this module's ``WORKERS``, ``SEEDS`` and
    ``RUNS`` from them (``runs``: the default sweep folder before ``--seeds``)."""
    global WORKERS, RUNS, SEEDS
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: expected an integer >= 1")
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds {args.seeds}: expected an integer >= 1")
    WORKERS, SEEDS = args.workers, args.seeds
    _SWEEPS.clear()
    RUNS = runs if SEEDS is None else runs / f"seeds{SEEDS}"
    if args.runs is not None:
        RUNS = args.runs.resolve()


def main(argv: list[str] | None = None) -> None:
    global IMG
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("facts", nargs="*", choices=[*FACTS, []], metavar="FACT",
                        help=f"what to run (default: all): {', '.join(FACTS)}")
    add_sweep_options(parser, workers=2)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="add a parameter to every spec (TOML value); runs go to runs-set/")
    parser.add_argument("--img", type=Path, default=None, metavar="DIR",
                        help="where the figures go (default docs/img/; img/ in the runs "
                        "directory with --set or --seeds)")
    args = parser.parse_args(argv)
    EXTRA.clear()
    for item in args.set:
        key, sep, value = item.partition("=")
        try:
            tomllib.loads(f"{key.strip()} = {value.strip()}")
        except tomllib.TOMLDecodeError:
            sep = ""
        if not sep or not key.strip():
            parser.error(f"--set {item!r}: expected NAME=VALUE with a TOML value, "
                         "e.g. lymph_node_priming=true")
        EXTRA[key.strip()] = value.strip()
    use_sweep_options(parser, args, HERE / ("runs-set" if EXTRA else "runs"))
    IMG = RUNS / "img" if (EXTRA or SEEDS is not None) else ROOT / "docs" / "img"
    if args.img is not None:
        IMG = args.img.resolve()
    for name in args.facts or list(FACTS):
        out = FACTS[name]()
        print(f"\n### Fact {name}\n\n{out['table']}\n", flush=True)


if __name__ == "__main__":
    main()
