"""Documented experiments for the eight stylized facts of DESIGN.md section 5 (issue 6).

Run from the repository root:

    .venv/bin/python experiments/validation/run_facts.py            # all facts + calibration
    .venv/bin/python experiments/validation/run_facts.py 1 3 calib  # a subset

Each fact's design (arms, factors, seeds, days) is the sweep spec ``factN_*.toml`` next to this
file, the same simulations ``abm sweep experiments/validation/factN_*.toml --out DIR`` runs;
this script is the analysis the sweep report cannot do (paired benefits, spatial snapshots,
kill rates). Each ``factN`` runs its spec's points on paired seeds (same seed with and without
the intervention), two at a time (ProcessPoolExecutor, max_workers=2), prints a Markdown table
of measured numbers and writes figures to ``docs/img/factN_*.png``. Fact 8 reuses the runs of
facts 2 and 3. The calibration runs (``calib``, ``calib_all``) are one-at-a-time variations
defined here.
Raw run summaries are cached in ``experiments/validation/cache/`` (not committed) so the
figures and tables can be remade without re-simulating; delete the cache to rerun.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMG = ROOT / "docs" / "img"
CACHE = Path(__file__).resolve().parent / "cache"
SEEDS = [0, 1, 2, 3]


# --- one simulation ----
def simulate(job: dict) -> dict:
    """Run one model; return its time series and final / snapshot summaries (picklable)."""
    from scipy.ndimage import uniform_filter

    from abm import TumorModel
    from abm.agents import Kind
    from abm.analysis.spatial import cancer_cells_and_contacts

    if "params" in job:  # a point of a sweep spec: every parameter resolved
        model = TumorModel(rng=job["seed"], **job["params"])
    else:  # a calibration variant: a scenario and overrides
        model = TumorModel.from_scenario(job["scenario"], rng=job["seed"], **job["overrides"])
    snap_hour = round(job["snapshot_day"] * 24) if job.get("snapshot_day") is not None else None
    out = {"job": job, "snapshot": None}
    founder = int(np.bincount(model.antigens[model.kind == Kind.CANCER]).argmax())
    contacts = job.get("contacts")  # [first day, last day]: watch cancer cells' CTL contacts
    if contacts:
        out["exposed"], out["died"] = np.zeros(9, int), np.zeros(9, int)
    for hour in range(1, round(job["days"] * 24) + 1):
        watched = None
        if contacts and contacts[0] * 24 <= hour - 1 < contacts[1] * 24:
            watched = cancer_cells_and_contacts(model)
        model.step()
        if watched:
            for cell, k in zip(*watched, strict=True):
                out["exposed"][k] += 1
                out["died"][k] += cell.cell is None  # removed this hour: killed
        if snap_hour is not None and hour == snap_hour:
            pdl1 = np.asarray(model.pdl1_map(), dtype=float)
            tdens = uniform_filter(
                (model.kind == Kind.TCELL).astype(float), size=5, mode="constant"
            )
            cancer = model.kind == Kind.CANCER
            out["snapshot"] = {
                "pdl1": pdl1,
                "tdens": tdens,
                "cancer": cancer,
                "kind": model.kind.copy(),
                "ifng": model.ifng.data.copy(),
            }
        if not model.running:
            break
    out["df"] = model.datacollector.get_model_vars_dataframe().copy()
    out["n_cancer"] = int(model.n_cancer)
    out["mean_antigenicity"] = float(model.mean_antigenicity) if model.n_cancer else float("nan")
    out["antigen_negative_fraction"] = (
        float(model.antigen_negative_fraction) if model.n_cancer else float("nan")
    )
    carried = model.antigens[model.kind == Kind.CANCER]
    out["lacking_founder"] = (
        float(np.mean((carried & founder) == 0)) if carried.size else float("nan")
    )
    if "vaccine" in model.treatments and getattr(model.treatments["vaccine"], "antigens", None):
        targets = sum(1 << a for a in model.treatments["vaccine"].antigens)
        carried = model.antigens[model.kind == Kind.CANCER]
        out["lacking_vaccine"] = (
            float(np.mean((carried & targets) == 0)) if carried.size else float("nan")
        )
    return out


def job(scenario, seed, days, snapshot_day=None, **overrides):
    j = {
        "scenario": scenario,
        "seed": seed,
        "days": days,
        "overrides": overrides,
        "snapshot_day": snapshot_day,
    }
    return j


def design(name: str, snapshots: dict | None = None, **extra) -> dict:
    """The runs of the sweep spec ``<name>.toml``, grouped by point, each group in seed order.

    A group's key is its arm name or its factor value, a tuple of them when several vary.
    ``snapshots`` maps a key to the day of a spatial snapshot for that group's runs."""
    from abm.sweep import expand, load_spec

    spec = load_spec(HERE / f"{name}.toml")
    groups: dict = {}
    for run in expand(spec):
        values = tuple(run.varied.values())
        key = values[0] if len(values) == 1 else values  # (arm, factor, ...) when several
        snapshot = (snapshots or {}).get(key)
        job_ = {"params": spec.params_for(run.varied), "seed": run.seed, "days": spec.steps / 24}
        groups.setdefault(key, []).append({**job_, "snapshot_day": snapshot, **extra})
    return groups


def run_design(name: str, snapshots: dict | None = None, **extra) -> dict:
    """Run (or load from the cache) every run of a spec; results grouped as ``design``."""
    groups = design(name, snapshots, **extra)
    flat = run_all([j for jobs in groups.values() for j in jobs])
    out, i = {}, 0
    for key, jobs in groups.items():
        out[key], i = flat[i : i + len(jobs)], i + len(jobs)
    return out


def run_all(jobs: list[dict]) -> list[dict]:
    """Run jobs (cached by their JSON description) two at a time; results in job order."""
    CACHE.mkdir(exist_ok=True)
    keys = [hashlib.sha1(json.dumps(j, sort_keys=True).encode()).hexdigest()[:16] for j in jobs]
    todo = [(k, j) for k, j in zip(keys, jobs, strict=True) if not (CACHE / f"{k}.pkl").exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=2) as pool:
            for (k, _), res in zip(todo, pool.map(simulate, [j for _, j in todo]), strict=True):
                (CACHE / f"{k}.pkl").write_bytes(pickle.dumps(res))
    return [pickle.loads((CACHE / f"{k}.pkl").read_bytes()) for k in keys]


# --- helpers ----
def med_range(values, fmt="{:.2f}") -> str:
    vals = [v for v in values if v == v]  # drop NaN
    if not vals:
        return "n/a"
    return (
        f"{fmt.format(statistics.median(vals))} [{fmt.format(min(vals))}, {fmt.format(max(vals))}]"
    )


def rel_benefit(treated: dict, untreated: dict) -> float:
    u, t = untreated["n_cancer"], treated["n_cancer"]
    return (u - t) / max(u, 1)


def series(res, col="CancerCells"):
    df = res["df"]
    return df["Day"].to_numpy(), df[col].to_numpy()


def table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def save(fig, name):
    IMG.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(IMG / name, dpi=110)
    plt.close(fig)


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


def plot_groups(ax, groups: dict[str, list[dict]], col="CancerCells", log=False):
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
    (runs,) = run_design("fact1_compact_growth").values()
    slopes, ratios = [], []
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    for r in runs:
        d, n = series(r)
        w = d >= 6
        slopes.append(np.polyfit(np.log(d[w]), np.log(n[w]), 1)[0])
        daily = n[::24]
        early = np.log(daily[8] / daily[6]) / 2
        late = np.log(daily[days] / daily[days - 2]) / 2
        ratios.append(late / early)
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
    groups = run_design("fact2_three_es")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    plot_groups(a, groups, log=True)
    a.set_title("three Es (4 seeds each)")
    plot_groups(b, {k: groups[k] for k in ("escape", "escape, no T cells")}, col="MeanAntigenicity")
    b.set_title("immunoediting: escape vs same seeds without T cells")
    save(fig, "fact2_three_es.png")
    rows = []
    for k, runs in groups.items():
        n0 = [r["df"]["CancerCells"].iloc[0] for r in runs]
        fin = [r["n_cancer"] for r in runs]
        d14 = [int(r["df"].loc[r["df"]["Day"] <= 14, "CancerCells"].iloc[-1]) for r in runs]
        cleared = [
            (r["df"]["CancerCells"] == 0).idxmax() if r["n_cancer"] == 0 else None for r in runs
        ]
        clear_days = [
            r["df"]["Day"].iloc[c] for r, c in zip(runs, cleared, strict=True) if c is not None
        ]
        rows.append(
            (
                k,
                int(np.median(n0)),
                med_range(d14, "{:.0f}"),
                med_range(fin, "{:.0f}"),
                f"{sum(f == 0 for f in fin)}/{len(fin)}",
                med_range(clear_days, "{:.1f}") if clear_days else "-",
                med_range([r["mean_antigenicity"] for r in runs], "{:.3f}"),
            )
        )
    diffs = [
        u["mean_antigenicity"] - e["mean_antigenicity"]
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
        "groups": {k: [r["n_cancer"] for r in v] for k, v in groups.items()},
        "edit_diffs": diffs,
        "table": t,
    }


# --- fact 2 over 120 days: is the equilibrium bounded? ----
def fact2l():
    (runs,) = run_design("fact2_equilibrium_horizon").values()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rows = []
    for i, r in enumerate(runs):
        df = r["df"]
        day, n, t = df["Day"].to_numpy(), df["CancerCells"].to_numpy(), df["TCells"].to_numpy()
        colour = colours[i % len(colours)]
        a.plot(day, n, color=colour, lw=1, label=f"seed {r['job']['seed']}")
        b.plot(n, t, color=colour, lw=0.8, alpha=0.8)
        b.plot(n[-1], t[-1], "o", color=colour, ms=4)
        peak = int(np.argmax(n))
        after = n[peak:]
        at = {d: (int(n[day <= d][-1]) if day[-1] >= d else 0) for d in (30, 60, 90, 120)}
        cleared = f"day {day[np.argmax(n == 0)]:.0f}" if n[-1] == 0 else "-"
        rows.append(
            (
                r["job"]["seed"],
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
    peaks = [int(r["df"]["CancerCells"].max()) for r in runs]
    n0 = int(runs[0]["df"]["CancerCells"].iloc[0])
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
    t += (
        f"\n\nPeak / N0: {med_range([p / n0 for p in peaks], '{:.1f}')}; "
        f"grid sites: {runs[0]['job']['params']['width'] * runs[0]['job']['params']['height']}"
    )
    return {"table": t}


# --- fact 3: adaptive PD-L1 resistance; anti-PD-1 hot vs cold ----
FACT3_SNAPSHOTS = {"hot, untreated": 14}  # PD-L1 / CTL maps on day 14 of the untreated hot runs


def fact3():
    g = run_design("fact3_adaptive_resistance", snapshots=FACT3_SNAPSHOTS)
    hot = [
        rel_benefit(t, u) for t, u in zip(g["hot, anti-PD-1 d7"], g["hot, untreated"], strict=True)
    ]
    cold = [
        rel_benefit(t, u)
        for t, u in zip(g["cold, anti-PD-1 d7"], g["cold, untreated"], strict=True)
    ]
    noind = [
        rel_benefit(t, u)
        for t, u in zip(
            g["hot, no PD-L1 induction, anti-PD-1 d7"],
            g["hot, no PD-L1 induction, untreated"],
            strict=True,
        )
    ]

    # untreated killing with and without PD-L1 induction: kills over 21 d / mean tumour size
    def kills(r):
        return r["df"]["Kills"].iloc[-1]

    kill_ratio = [
        kills(a) / max(kills(b), 1)
        for a, b in zip(g["hot, no PD-L1 induction, untreated"], g["hot, untreated"], strict=True)
    ]
    burden_ratio = [
        a["n_cancer"] / max(b["n_cancer"], 1)
        for a, b in zip(g["hot, no PD-L1 induction, untreated"], g["hot, untreated"], strict=True)
    ]
    # co-localisation at day 14, untreated hot tumour
    r_all, r_cancer, pos_ratio = [], [], []
    for r in g["hot, untreated"]:
        s = r["snapshot"]
        if s is None:
            continue
        p, t, c = s["pdl1"].ravel(), s["tdens"].ravel(), s["cancer"].ravel()
        if c.sum() > 10 and p[c].std() > 0 and t[c].std() > 0:
            r_cancer.append(float(np.corrcoef(p[c], t[c])[0, 1]))
        if p.std() > 0:
            r_all.append(float(np.corrcoef(p, t)[0, 1]))
        # PD-L1 on cancer cells near T cells vs far from them
        near = c & (t > 0)
        far = c & (t == 0)
        if near.sum() and far.sum():
            pos_ratio.append(float(p[near].mean() / max(p[far].mean(), 1e-9)))
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
    s = next(r["snapshot"] for r in g["hot, untreated"] if r["snapshot"] is not None)
    im = axes[1].imshow(np.where(s["cancer"], s["pdl1"], np.nan).T, origin="lower", cmap="magma")
    ty, tx = np.nonzero((s["kind"] == 2).T)
    axes[1].scatter(tx, ty, s=3, c="cyan", label="CTL")
    axes[1].set_title("untreated hot, day 14: PD-L1 (cancer) + CTLs")
    axes[1].legend(fontsize=7, loc="upper right")
    plt.colorbar(im, ax=axes[1], fraction=0.046)
    c = s["cancer"].ravel()
    axes[2].scatter(s["tdens"].ravel()[c], s["pdl1"].ravel()[c], s=2, alpha=0.3)
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
    finals = {k: [r["n_cancer"] for r in v] for k, v in g.items()}
    t = table(rows, ("measure (seeds 0-3, paired)", "median [range]"))
    t += "\n\nFinal burdens (day 21): " + "; ".join(f"{k}: {v}" for k, v in finals.items())
    return {"table": t}


# --- fact 3 as a gradient: anti-PD-1 benefit over antigenicity x infiltration ----
def fact3g():
    spec = "fact3_hot_cold_gradient"
    from abm.sweep import load_spec

    factors = load_spec(HERE / f"{spec}.toml").factors
    antigens, influx = factors["founder_antigens"], factors["tcell_influx"]
    results = run_design(spec)  # keyed by (arm, founder_antigens, tcell_influx)
    median = np.full((len(antigens), len(influx)), np.nan)
    rows = []
    for a_i, a in enumerate(antigens):
        for f_i, f in enumerate(influx):
            treated = results[("anti-PD-1 d7", a, f)]
            untreated = results[("untreated", a, f)]
            # defined only where the untreated twin still has a tumour to treat
            pairs = zip(treated, untreated, strict=True)
            ben = [rel_benefit(t, u) for t, u in pairs if u["n_cancer"] > 0]
            if len(ben) >= 2:
                median[a_i, f_i] = statistics.median(ben)
            rows.append(
                (
                    a,
                    f"{f:g}",
                    med_range([u["n_cancer"] for u in untreated], "{:.0f}"),
                    med_range([t["n_cancer"] for t in treated], "{:.0f}"),
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
DIST_BINS_UM = [0, 60, 120, 240, 480, 960, 2000]


def pdl1_by_distance(snapshot: dict) -> tuple[np.ndarray, np.ndarray]:
    """Mean PD-L1 and IFN-gamma of cancer cells per band of distance to the nearest CTL."""
    from abm.analysis.spatial import distance_to_ctl_um

    cancer = snapshot["cancer"]
    dist = distance_to_ctl_um(snapshot["kind"])
    pdl1, ifng = [], []
    for lo, hi in zip(DIST_BINS_UM[:-1], DIST_BINS_UM[1:], strict=True):
        sel = cancer & (dist >= lo) & (dist < hi)
        pdl1.append(snapshot["pdl1"][sel].mean() if sel.sum() >= 20 else np.nan)
        ifng.append(snapshot["ifng"][sel].mean() if sel.sum() >= 20 else np.nan)
    return np.array(pdl1), np.array(ifng)


def fact3s():
    g = run_design("fact3_tissue_scale", snapshots=FACT3S_SNAPSHOTS)
    mids = [(lo + hi) / 2 for lo, hi in zip(DIST_BINS_UM[:-1], DIST_BINS_UM[1:], strict=True)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rows = []
    for i, (arm, runs) in enumerate(g.items()):
        ratios, ifng_ratios = [], []
        for j, r in enumerate(runs):
            pdl1, ifng = pdl1_by_distance(r["snapshot"])
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
                med_range([r["n_cancer"] for r in runs], "{:.0f}"),
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
        s = runs[0]["snapshot"]
        im = ax.imshow(
            np.where(s["cancer"], s["pdl1"], np.nan).T,
            origin="lower",
            cmap="magma",
            vmin=0.05,
            vmax=0.45,
        )
        ty, tx = np.nonzero((s["kind"] == 2).T)
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


FACT3S_SNAPSHOTS = {"D 100 um2/s (spQSP-IO)": 10, "D 16.5 um2/s (Popel-lab)": 10}


# --- fact 4: anti-CTLA-4 earlier is better ----
def fact4():
    g = run_design("fact4_ctla4_timing")  # keyed by ctla4_start_day (None = untreated)
    starts = list(g)
    rows, med = [], []
    for d in starts[1:]:
        b = [rel_benefit(t, u) for t, u in zip(g[d], g[None], strict=True)]
        med.append(statistics.median(b))
        rows.append(
            (f"day {d:g}", med_range(b), med_range([r["n_cancer"] for r in g[d]], "{:.0f}"))
        )
    rows.insert(0, ("untreated", "-", med_range([r["n_cancer"] for r in g[None]], "{:.0f}")))
    # the control: the same schedule in a tumour without antigens (fact4_non_antigenic.toml)
    h = run_design("fact4_non_antigenic")
    b0 = [rel_benefit(t, u) for t, u in zip(h[1.0], h[None], strict=True)]
    rows.append(
        (
            "day 1, no tumour antigens",
            med_range(b0),
            med_range([r["n_cancer"] for r in h[1.0]], "{:.0f}")
            + " (untreated "
            + med_range([r["n_cancer"] for r in h[None]], "{:.0f}")
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
    for s_i in range(len(SEEDS)):
        b.plot(
            starts[1:],
            [rel_benefit(g[d][s_i], g[None][s_i]) for d in starts[1:]],
            marker="o",
            alpha=0.6,
            label=f"seed {SEEDS[s_i]}",
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
    g = run_design("fact5_vaccine")
    vac, ctl = g["vaccine day 0"], g["no vaccine"]
    ben = [rel_benefit(t, u) for t, u in zip(vac, ctl, strict=True)]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    plot_groups(a, {"vaccine day 0": vac, "no vaccine": ctl}, log=True)
    a.set_title("vaccine scenario")
    plot_groups(b, {"vaccine day 0": vac, "no vaccine": ctl}, col="MeanAntigenicity")
    save(fig, "fact5_vaccine.png")
    # vaccine_antigens = 0 means the vaccine targets the founder clone's antigens, so
    # "lacking the founder's antigens" is comparable between vaccinated and control runs.
    rows = [
        ("relative benefit at day 24", med_range(ben)),
        ("burden day 24, vaccinated", med_range([r["n_cancer"] for r in vac], "{:.0f}")),
        ("burden day 24, control", med_range([r["n_cancer"] for r in ctl], "{:.0f}")),
        (
            "fraction of cells lacking all vaccine antigens, vaccinated survivors",
            med_range([r.get("lacking_vaccine", float("nan")) for r in vac]),
        ),
        (
            "fraction lacking all founder (= vaccine) antigens, vaccinated",
            med_range([r["lacking_founder"] for r in vac]),
        ),
        (
            "fraction lacking all founder (= vaccine) antigens, control",
            med_range([r["lacking_founder"] for r in ctl]),
        ),
    ]
    return {
        "table": table(rows, ("measure (seeds 0-3, paired)", "median [range]")),
        "vac": vac,
        "ctl": ctl,
    }


# --- fact 6: CAR-T and antigen loss ----
def fact6():
    g = run_design("fact6_cart")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    plot_groups(a, g, log=True)
    a.axvline(5, color="grey", ls=":")
    a.set_title("CAR-T day 5 (dose 300)")
    plot_groups(b, g, col="AntigenNegativeFraction")
    save(fig, "fact6_cart.png")
    rows = []
    for k, runs in g.items():
        surv = [r for r in runs if r["n_cancer"] > 0]
        rows.append(
            (
                k,
                med_range([r["n_cancer"] for r in runs], "{:.0f}"),
                f"{len(surv)}/{len(runs)}",
                med_range([r["antigen_negative_fraction"] for r in surv]),
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
    g = run_design("fact6_relapse_vs_burden")  # keyed by (antigen_loss_rate, cart_start_day)
    rows = []
    for (loss, start), runs in g.items():
        at_infusion = [
            int(r["df"].loc[r["df"]["Day"] <= start, "CancerCells"].iloc[-1]) for r in runs
        ]
        relapsed = [r for r in runs if r["n_cancer"] > 0]
        rows.append(
            (
                f"{loss:g}",
                f"day {start:g}",
                med_range(at_infusion, "{:.0f}"),
                f"{len(relapsed)}/{len(runs)}",
                med_range([r["n_cancer"] for r in relapsed], "{:.0f}") if relapsed else "-",
                med_range([r["antigen_negative_fraction"] for r in relapsed]) if relapsed else "-",
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
    by_doses = run_design("fact7_combination")  # keyed by (anti-PD-1 day, anti-CTLA-4 day)
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
            med_range([r["n_cancer"] for r in v], "{:.0f}"),
            "-"
            if k == "none"
            else med_range([rel_benefit(t, u) for t, u in zip(v, g["none"], strict=True)]),
        )
        for k, v in g.items()
    ]
    wins = sum(
        b["n_cancer"] <= min(p["n_cancer"], c["n_cancer"])
        for b, p, c in zip(g["both"], g["anti-PD-1"], g["anti-CTLA-4"], strict=True)
    )
    # Bliss independence: expected surviving fraction = product of single-agent fractions
    bliss = []
    for n, p, c, b in zip(g["none"], g["anti-PD-1"], g["anti-CTLA-4"], g["both"], strict=True):
        u = max(n["n_cancer"], 1)
        bliss.append((p["n_cancer"] / u) * (c["n_cancer"] / u) - b["n_cancer"] / u)
    t = table(rows, ("arm", "burden day 24", "relative benefit vs none"))
    t += (
        f"\n\nCombination <= both single agents in {wins}/{len(SEEDS)} seeds. Bliss excess "
        "(expected surviving fraction under independence minus observed; > 0 = synergy): "
        f"{med_range(bliss, '{:.3f}')}"
    )
    return {"table": t}


# --- fact 8: kills per CTL per day ----
def fact8():
    """Reuses the (cached) runs of facts 2 and 3; window = days 7-14 (T cells established)."""
    three_es = run_design("fact2_three_es")
    resistance = run_design("fact3_adaptive_resistance", snapshots=FACT3_SNAPSHOTS)
    sets = [
        ("equilibrium", three_es["equilibrium"]),
        ("escape", three_es["escape"]),
        ("checkpoint (untreated)", resistance["hot, untreated"]),
        ("checkpoint", resistance["hot, anti-PD-1 d7"]),
    ]
    lo, hi = 7.0, 14.0
    rows, per_engaged_all = [], []
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, runs in sets:
        eng, pres = [], []
        for r in runs:
            df = r["df"]
            w = df[(df["Day"] >= lo) & (df["Day"] <= hi)]
            if len(w) < 24:
                continue
            dk = w["Kills"].iloc[-1] - w["Kills"].iloc[0]
            span = w["Day"].iloc[-1] - w["Day"].iloc[0]
            me, mt = w["EngagedTCells"].mean(), w["TCells"].mean()
            if me > 0:
                eng.append(dk / (me * span))
            if mt > 0:
                pres.append(dk / (mt * span))
        per_engaged_all += eng
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
    g = run_design("fact3_adaptive_resistance", contacts=[7, 14])
    runs = g["hot, untreated"]
    exposed = sum(r["exposed"] for r in runs)
    died = sum(r["died"] for r in runs)
    ks = [k for k in range(9) if exposed[k] >= 200]
    p_obs = died[ks] / exposed[ks]
    p1 = died[1] / exposed[1]
    independent = 1 - (1 - p1) ** np.array(ks)  # each contact an independent chance to kill
    per_seed = {
        k: [r["died"][k] / r["exposed"][k] for r in runs if r["exposed"][k] >= 50] for k in ks
    }
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
    around it (``abm.analysis.spatial.ctl_density_by_region``)."""
    from abm.analysis.spatial import ctl_density_by_region

    g = run_design(
        "phenotypes",
        snapshots=dict.fromkeys(["small, antigenic", "large, antigenic", "small, no antigens"], 10),
    )
    rows = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (arm, runs) in zip(axes, g.items(), strict=True):
        d = [ctl_density_by_region(r["snapshot"]["kind"]) for r in runs]
        # (a ratio of a handful of CTLs means nothing: only with at least 50 CTLs)
        ratio = [x["inside"] / x["band"] if x["ctl"] >= 50 else float("nan") for x in d]
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
        kind = runs[0]["snapshot"]["kind"]
        rgb = np.ones(kind.shape + (3,))
        rgb[kind == 1] = (0.55, 0.55, 0.6)  # cancer
        rgb[kind == 2] = (0.0, 0.75, 0.9)  # CTL
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
    from abm.sweep import load_spec

    factors = load_spec(HERE / "size_threshold.toml").factors
    influx, sizes = factors["tcell_influx"], factors["initial_tumor_cells"]
    g = run_design("size_threshold")  # keyed by (tcell_influx, initial_tumor_cells)
    cleared = np.zeros((len(influx), len(sizes)))
    rows = []
    for i, f in enumerate(influx):
        for j, n0 in enumerate(sizes):
            runs = g[(f, n0)]
            finals = [r["n_cancer"] for r in runs]
            cleared[i, j] = np.mean([x == 0 for x in finals])
            days = [r["df"]["Day"].iloc[-1] for r in runs if r["n_cancer"] == 0]
            rows.append(
                (
                    f"{f:g}",
                    n0,
                    f"{sum(x == 0 for x in finals)}/{len(finals)}",
                    med_range(days, "{:.1f}") if days else "-",
                    med_range([x / n0 for x in finals]),
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
def _calib(days, seeds):
    variants = [
        ("baseline", {}),
        ("tcell_influx 0.75", {"tcell_influx": 0.75}),
        ("tcell_influx 3.0", {"tcell_influx": 3.0}),
        ("pd1_inhibition 0.25", {"pd1_inhibition": 0.25}),
        ("pd1_inhibition 1.0", {"pd1_inhibition": 1.0}),
        ("ifng_secretion 2.5", {"ifng_secretion": 2.5}),
        ("ifng_secretion 10", {"ifng_secretion": 10.0}),
        ("tcell_exhaustion_limit 3", {"tcell_exhaustion_limit": 3}),
        ("tcell_exhaustion_limit 10", {"tcell_exhaustion_limit": 10}),
    ]
    tables = [
        _calib_table("escape", days, seeds, variants),
        _calib_table("elimination", 15, seeds, variants),
    ]
    return {"table": "\n\n".join(tables)}


def _calib_table(scenario, days, seeds, variants):
    jobs = [job(scenario, s, days, **ov) for _, ov in variants for s in seeds]
    res = run_all(jobs)
    g = {k: res[i * len(seeds) : (i + 1) * len(seeds)] for i, (k, _) in enumerate(variants)}
    base = g["baseline"]
    rows = []
    for k, runs in g.items():
        n0 = runs[0]["df"]["CancerCells"].iloc[0]
        fold = [r["n_cancer"] / n0 for r in runs]
        ratio = [r["n_cancer"] / max(b["n_cancer"], 1) for r, b in zip(runs, base, strict=True)]
        outcome = ", ".join(
            "cleared" if r["n_cancer"] == 0 else ("escape" if r["n_cancer"] > 5 * n0 else "held")
            for r in runs
        )
        rows.append((k, med_range(fold), med_range(ratio), outcome))
    return table(
        rows,
        (
            f"{scenario} scenario, one change",
            f"N(day {days})/N0",
            "burden / baseline (paired)",
            "outcome per seed (0,1,2)",
        ),
    )


def _scaled(param, factor):
    """``param``'s default times ``factor``, kept inside its allowed range (ints rounded)."""
    value = param.default * factor
    if param.kind is int:
        value = round(value)
    if param.high is not None:
        value = min(value, param.high)
    if param.low is not None:
        value = max(value, param.low)
    return value


def _calib_all(seeds=(0, 1, 2)):
    """Every modelling-choice default halved and doubled, one at a time: does `escape` still
    escape (N > 5 N0 at day 21) and `elimination` still clear (N = 0 at day 15)?"""
    from abm.params import PARAMS
    from abm.scenarios import scenario_params

    skip = {"width", "height", "initial_tumor_cells"}  # domain, not biology
    therapy = {"Anti-PD-1", "Anti-CTLA-4", "Vaccine", "CAR-T"}  # not given in these scenarios
    names = [
        n
        for n, p in PARAMS.items()
        if "modelling choice" in p.source
        and not p.optional
        and p.kind is not bool
        and n not in skip
        and p.group not in therapy
        and p.default
    ]
    rows = []
    for name in names:
        p = PARAMS[name]
        cells = []
        for factor in (0.5, 2.0):
            per_scenario = []
            for scenario, days, ok in (("escape", 21, "escape"), ("elimination", 15, "cleared")):
                base = scenario_params(scenario).get(name, p.default)
                value = _scaled(p.__class__(**{**p.__dict__, "default": base}), factor)
                res = run_all([job(scenario, sd, days, **{name: value}) for sd in seeds])
                n0 = res[0]["df"]["CancerCells"].iloc[0]
                kept = sum(
                    (r["n_cancer"] > 5 * n0) if ok == "escape" else (r["n_cancer"] == 0)
                    for r in res
                )
                per_scenario.append(f"{kept}/{len(seeds)}")
            cells.append(f"{per_scenario[0]} / {per_scenario[1]}")
        holds = all(int(c.split("/")[0]) >= 2 and int(c.split("/")[2].strip()) >= 2 for c in cells)
        values = list(
            dict.fromkeys(
                scenario_params(sc).get(name, p.default) for sc in ("escape", "elimination")
            )
        )
        rows.append(
            (
                f"`{name}`",
                " / ".join(f"{v:g}" for v in values) + f" {p.unit}",
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
    "calib": _calib,
    "calib_all": _calib_all,
}


def main(argv):
    wanted = argv or list(FACTS)
    for name in wanted:
        if name == "calib":
            out = _calib(21, [0, 1, 2])
        else:
            out = FACTS[name]()
        print(f"\n### Fact {name}\n\n{out['table']}\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
