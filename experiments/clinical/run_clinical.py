"""The clinical and preclinical comparisons of docs/clinical.md, in one command.

    PYTHONPATH=. python experiments/clinical/run_clinical.py                 # all seven
    PYTHONPATH=. python experiments/clinical/run_clinical.py --only mouse,cart --workers 2
    PYTHONPATH=. python experiments/clinical/run_clinical.py --patients 12   # a quick pilot
    PYTHONPATH=. python experiments/clinical/run_clinical.py --only cart --engine fast  # pilot
    PYTHONPATH=. python experiments/clinical/run_clinical.py --only mouse,tmb --patients 2 \
        --seeds 1 --runs /tmp/clinical-smoke                                 # a smoke run

Each comparison is a spec in this directory, run with ``run_sweep`` (as ``abm sweep``) into
``experiments/clinical/runs/NAME`` (git-ignored; finished runs are reused, a spec or model change
reruns them). The script prints the Markdown tables of docs/clinical.md with the commit that
measured them; paste them there after a rerun. ``--patients N`` overrides every cohort's size
(into ``runs/NAME-nN``), for pilots; the documented numbers use the specs' own sizes.
``--engine fast`` runs every spec on the compiled engine (into ``runs/NAME-fast``): statistically
equivalent to the Mesa engine (docs/engines.md) and about 8x faster, for calibration pilots; the
documented numbers are the specs' own engine's.
``--seeds N`` keeps the first N seeds of the specs that list seeds instead of drawing patients
(mouse; into ``runs/NAME-sN``). ``--runs DIR`` puts the sweep directories elsewhere.

- mouse: mouse_pair.toml, MC38-like vs B16F10-like, treated/control at day 21 (paired seeds).
- tmb: tmb_pd1.toml, ORR under anti-PD-1 by founder antigens (the TMB proxy).
- checkmate: checkmate067.toml, ORR of nivolumab, ipilimumab and both.
- cart: cart_relapse.toml, the share of antigen-negative relapses by burden at infusion.
- cart_burden: cart_relapse_burden.toml, the same with the target-loss rate drawn together with
  the time to infusion; run twice, as written and with its correlations set to 0 (the same
  patients' draws, paired independently: runs/NAME-rho0), and compared.
- tmb_node, checkmate_node: tmb_pd1_node.toml, checkmate067_node.toml, the same cohorts with
  lymph-node priming and T-cell states switched on (off by default).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from abm.analysis.response import lesion_area, objective_response, wilson_interval
from abm.sweep import load_sweep, parse_spec, run_sweep
from abm.sweep.storage import StaleSweep, read_parquet

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNS = HERE / "runs"
SPECS = {"mouse": "mouse_pair", "tmb": "tmb_pd1", "checkmate": "checkmate067",
         "cart": "cart_relapse", "cart_burden": "cart_relapse_burden",
         # the same cohorts with lymph-node priming and T-cell states switched on
         "tmb_node": "tmb_pd1_node", "checkmate_node": "checkmate067_node"}
PUBLISHED_CHECKMATE = {"nivo_ipi": 57.6, "nivolumab": 43.7, "ipilimumab": 19.0}
PUBLISHED_TMB = {"low": 20.0, "high": 58.0}  # Goodman et al. 2017 (ORR %, low / high TMB)
PUBLISHED_CART_NEG = 41.0  # % of relapses antigen-negative (Blood Adv 2023 7:575)
TOLERANCE = 15.0  # points: the goal of docs/clinical.md


def commit() -> str:
    """The commit measured (with ``+dirty`` when the work tree differs from it)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = bool(git("status", "--porcelain", "--", "abm").strip())
    return head + ("+dirty" if dirty else "")


def run(name: str, *, patients: int | None, workers: int, uncorrelated: bool = False,
        seeds: int | None = None, engine: str | None = None) -> Any:
    """Run (or reuse) spec ``name`` and return the loaded sweep; ``uncorrelated``: with its
    ``[patients.correlation]`` set to 0 (the same latent draws, so the same patients' values,
    paired independently); ``seeds``: only the first ``seeds`` seeds of a spec that lists
    them; ``engine``: run on this engine instead of the spec's."""
    text = (HERE / f"{name}.toml").read_text()
    data = tomllib.loads(text)
    out = RUNS / name
    if patients is not None and "patients" in data:
        data["patients"]["n"] = patients
        out = RUNS / f"{name}-n{patients}"
    if seeds is not None and "seeds" in data["sweep"]:
        data["sweep"]["seeds"] = list(data["sweep"]["seeds"])[:seeds]
        out = out.with_name(f"{out.name}-s{seeds}")
        text += f"\n# run with the first {seeds} seeds (run_clinical.py --seeds)\n"
    if engine is not None and engine != data["sweep"].get("engine", "mesa"):
        data["sweep"]["engine"] = engine
        out = out.with_name(f"{out.name}-{engine}")
        text += f"\n# run on the {engine} engine (run_clinical.py --engine)\n"
    if uncorrelated:
        for inner in data["patients"]["correlation"].values():
            for other in inner:
                inner[other] = 0.0
        out = out.with_name(out.name + "-rho0")
        text += "\n# run with every [patients.correlation] set to 0 (run_clinical.py)\n"
    spec = parse_spec(data, source=f"{name}.toml")
    backend = "serial" if workers == 1 else "process"

    def log(msg: str) -> None:  # progress on stderr: stdout is the tables
        print(f"  [{name}] {msg}", file=sys.stderr, flush=True)

    try:
        run_sweep(spec, out, backend=backend, workers=workers, spec_text=text, progress=False,
                  log=log)
    except StaleSweep as err:  # another spec version, or runs made by other model code
        log(f"{err}: deleting {out} and rerunning")
        shutil.rmtree(out)
        run_sweep(spec, out, backend=backend, workers=workers, spec_text=text, progress=False,
                  log=log)
    return load_sweep(out)


def pct(k: int, n: int) -> str:
    """``k/n = x% [low, high]`` with the 95% Wilson interval."""
    if n == 0:
        return "- (n = 0)"
    low, high = wilson_interval(k, n)
    return f"{k}/{n} = {100 * k / n:.0f}% [{100 * low:.0f}, {100 * high:.0f}]"


def verdict(measured: float, published: float) -> str:
    gap = measured - published
    return f"{'within' if abs(gap) <= TOLERANCE else 'outside'} 15 points ({gap:+.0f})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def patients(sweep: Any) -> pd.DataFrame:
    return read_parquet(sweep.dir / "patients.parquet")


def orr(rows: pd.DataFrame) -> tuple[int, int]:
    evaluable = rows[rows["best_response"] != "NE"]
    return int(objective_response(evaluable["best_response"]).sum()), len(evaluable)


# --- mouse: MC38-like vs B16F10-like ----------------------------------------------------------
def mouse(sweep: Any) -> str:
    final: dict[str, dict[int, float]] = {}
    for record in sweep.runs:
        series = record.series(["Day", "CancerCells", "NecroticSites"])
        final.setdefault(record.arm, {})[record.seed] = float(lesion_area(series)[-1])
    rows = []
    for tumour in ("mc38", "b16f10"):
        ctl, trt = final[f"{tumour}_control"], final[f"{tumour}_anti_pd1"]
        seeds = sorted(ctl)
        area_tc = [trt[s] / max(ctl[s], 1.0) for s in seeds]
        vol_tc = [(trt[s] / max(ctl[s], 1.0)) ** 1.5 for s in seeds]
        group = np.mean([trt[s] for s in seeds]) / max(np.mean([ctl[s] for s in seeds]), 1.0)
        cleared = sum(trt[s] == 0 for s in seeds)
        rows.append([
            f"{tumour}_like", ", ".join(str(s) for s in seeds),
            f"{np.mean([ctl[s] for s in seeds]):.0f}", f"{np.mean([trt[s] for s in seeds]):.0f}",
            f"{group:.2f}", f"{group ** 1.5:.2f} (TGI {100 * (1 - group ** 1.5):.0f}%)",
            f"{np.median(area_tc):.2f} [{min(area_tc):.2f}, {max(area_tc):.2f}]",
            f"{np.median(vol_tc):.2f}", f"{cleared}/{len(seeds)}",
        ])
    return table(["tumour", "seeds", "control lesion (sites)", "treated lesion (sites)",
                  "T/C area (group means)", "T/C volume-equivalent", "T/C area per seed",
                  "T/C volume per seed (median)", "cleared"], rows)


# --- TMB -------------------------------------------------------------------------------------
def tmb(sweep: Any) -> str:
    pts = patients(sweep)
    treated = pts[pts["arm"] == "anti_pd1"]
    untreated = pts[pts["arm"] == "untreated"]
    rows = []
    for value in sorted(treated["founder_antigens"].unique()):
        k, n = orr(treated[treated["founder_antigens"] == value])
        rows.append([f"founder_antigens = {value}", pct(k, n), "", ""])
    for label, sel, key in (("low TMB (1 antigen)", [1], "low"),
                            ("high TMB (4-5 antigens)", [4, 5], "high")):
        k, n = orr(treated[treated["founder_antigens"].isin(sel)])
        rows.append([f"**{label}**", pct(k, n), f"{PUBLISHED_TMB[key]:.0f}%",
                     verdict(100 * k / max(n, 1), PUBLISHED_TMB[key])])
    k, n = orr(treated)
    rows.append(["all, anti-PD-1", pct(k, n), "", ""])
    k, n = orr(untreated)
    rows.append(["all, untreated (own counterfactual)", pct(k, n), "", ""])
    return table(["stratum (anti-PD-1 arm)", "ORR, 95% Wilson", "published", "verdict"], rows)


# --- CheckMate 067 ---------------------------------------------------------------------------
def checkmate(sweep: Any) -> str:
    pts = patients(sweep)
    rows, measured = [], {}
    for arm, published in PUBLISHED_CHECKMATE.items():
        k, n = orr(pts[pts["arm"] == arm])
        measured[arm] = k / max(n, 1)
        rows.append([arm, pct(k, n), f"{published}%", verdict(100 * k / max(n, 1), published)])
    order = sorted(measured, key=measured.get, reverse=True)
    ties = [f"{a} = {b}" for a, b in zip(order, order[1:], strict=False)
            if measured[a] == measured[b]]
    same = order == list(PUBLISHED_CHECKMATE) and not ties
    shown = "".join(f" {'=' if measured[a] == measured[b] else '>'} {b}"
                     for a, b in zip(order, order[1:], strict=False))
    return table(["arm", "ORR, 95% Wilson", "published (Larkin 2015)", "verdict"], rows) + (
        f"\n\nOrdering measured: {order[0]}{shown} "
        f"({'the published ordering' if same else 'NOT the published ordering'}"
        f"{': tied ' + ', '.join(ties) if ties else ''}).\n\n" + independent_action(pts)
    )


def independent_action(pts: pd.DataFrame) -> str:
    """The combination against independent drug action (each patient responds to the
    combination if to either drug alone, the two uncorrelated: 1 - (1 - a)(1 - b); Palmer et
    al. 2022 found no more than that in phase III trials of checkpoint combinations), from the
    monotherapy arms; and per patient, which the model can tell and a trial cannot: how many
    responded to the combination but to neither drug alone (synergy) or the reverse."""
    responded = (pts[pts["best_response"] != "NE"]
                 .assign(r=lambda d: objective_response(d["best_response"]))
                 .pivot(index="patient", columns="arm", values="r").dropna().astype(bool))
    a, b = responded["nivolumab"].mean(), responded["ipilimumab"].mean()
    either = responded["nivolumab"] | responded["ipilimumab"]
    combo = responded["nivo_ipi"]
    pub_a, pub_b = PUBLISHED_CHECKMATE["nivolumab"] / 100, PUBLISHED_CHECKMATE["ipilimumab"] / 100
    return table(
        ["independent drug action", "model", "CheckMate 067"],
        [["combination if the monotherapies act independently, 1 - (1 - a)(1 - b)",
          f"{100 * (1 - (1 - a) * (1 - b)):.0f}%",
          f"{100 * (1 - (1 - pub_a) * (1 - pub_b)):.0f}%"],
         ["combination measured", f"{100 * combo.mean():.0f}%",
          f"{PUBLISHED_CHECKMATE['nivo_ipi']}%"],
         ["patients evaluable in every arm", str(len(responded)), ""],
         ["responded to either drug alone", str(int(either.sum())), ""],
         ["responded to the combination only (synergy)", str(int((combo & ~either).sum())), ""],
         ["responded to a drug alone, not to the combination", str(int((either & ~combo).sum())),
          ""]])


# --- CAR-T relapse ---------------------------------------------------------------------------
def cart_patients(sweep: Any) -> pd.DataFrame:
    """One row per patient: the burden at infusion, whether the tumour halved after it
    (``responded``; ``refractory`` if not), relapsed (halved, and cancer cells left at the
    end), and whether a relapse is antigen-negative (at least half its cells lack the target);
    with the drawn CAR-T lifespan."""
    recs = []
    for record in sweep.runs:
        s = record.series(["Day", "CancerCells", "AntigenNegativeFraction"])
        start = float(record.varied["cart_start_day"])
        at = s[s["Day"] >= start]
        burden = float(at["CancerCells"].iloc[0]) if len(at) else float("nan")
        nadir = float(at["CancerCells"].min()) if len(at) else float("nan")
        final = float(s["CancerCells"].iloc[-1])
        responded = nadir <= 0.5 * burden
        relapsed = responded and final > 0
        recs.append({"burden": burden, "responded": responded, "relapsed": relapsed,
                     "refractory": not responded,
                     "negative": relapsed and s["AntigenNegativeFraction"].iloc[-1] >= 0.5,
                     "lifespan": record.varied.get("cart_lifespan_days")})
    return pd.DataFrame(recs)


def cart(sweep: Any) -> str:
    df = cart_patients(sweep)
    median = df["burden"].median()
    rows = []
    for label, sel in (("all", df), (f"burden at infusion <= {median:.0f} cells",
                                      df[df["burden"] <= median]),
                       (f"burden at infusion > {median:.0f} cells", df[df["burden"] > median])):
        rel = sel[sel["relapsed"]]
        rows.append([label, len(sel), int(sel["refractory"].sum()),
                     int((sel["responded"] & ~sel["relapsed"]).sum()), len(rel),
                     pct(int(rel["negative"].sum()), len(rel))])
    rel = df[df["relapsed"]]
    k = int(rel["negative"].sum())
    pos = rel[~rel["negative"]]
    neg = rel[rel["negative"]]
    high = rel["burden"] > median
    split = [[int((rel["negative"] & ~high).sum()), int((~rel["negative"] & ~high).sum())],
             [int((rel["negative"] & high).sum()), int((~rel["negative"] & high).sum())]]
    note = (f"\n\nAntigen-negative share of relapses: {pct(k, len(rel))}; published "
            f"{PUBLISHED_CART_NEG:.0f}%: {verdict(100 * k / max(len(rel), 1), PUBLISHED_CART_NEG)}."
            f" Below against above the median burden: Fisher's exact p = "
            f"{fisher_exact(split).pvalue:.2g} (two-sided)."
            f" Median CAR-T lifespan drawn: antigen-positive relapses "
            f"{pos['lifespan'].median():.1f} d, antigen-negative relapses "
            f"{neg['lifespan'].median():.1f} d, no relapse "
            f"{df[~df['relapsed']]['lifespan'].median():.1f} d.")
    return table(["patients", "n", "refractory (never halved)", "in remission at day 35",
                  "relapsed", "antigen-negative relapses, 95% Wilson"], rows) + note


def cart_burden(sweep: Any, independent: Any) -> str:
    """``cart`` for the correlated cohort and for the same patients drawn independently."""
    return ("With the correlation:\n\n" + cart(sweep)
            + "\n\nThe same patients with the correlation set to 0:\n\n" + cart(independent))


SECTIONS = {"mouse": mouse, "tmb": tmb, "checkmate": checkmate, "cart": cart,
            "cart_burden": cart_burden, "tmb_node": tmb, "checkmate_node": checkmate}


def main(argv: list[str] | None = None) -> None:
    global RUNS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help="comma-separated: " + ", ".join(SECTIONS))
    parser.add_argument("--patients", type=int, default=None,
                        help="override every cohort's size (a pilot; runs/NAME-nN)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="only the first N seeds of a spec listing seeds (mouse; a smoke "
                        "run; runs/NAME-sN)")
    parser.add_argument("--runs", type=Path, default=None, metavar="DIR",
                        help="where the sweep directories go (default experiments/clinical/runs)")
    parser.add_argument("--workers", type=int, default=1, help="processes per sweep")
    parser.add_argument("--engine", choices=("mesa", "fast"), default=None,
                        help="run every spec on this engine (default: the spec's; fast for "
                        "pilots, into runs/NAME-fast)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}: expected {', '.join(SECTIONS)}")
    for flag in ("patients", "seeds", "workers"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag} {value}: expected an integer >= 1")
    RUNS = args.runs.resolve() if args.runs is not None else HERE / "runs"
    options = "".join(f" --{flag} {getattr(args, flag)}"
                      for flag in ("patients", "seeds", "engine") if getattr(args, flag))
    print(f"Measured at commit {commit()} (experiments/clinical/run_clinical.py{options}).\n")
    for name in chosen:
        how = {"patients": args.patients, "workers": args.workers, "seeds": args.seeds,
               "engine": args.engine}
        sweep = run(SPECS[name], **how)
        extra = [run(SPECS[name], uncorrelated=True, **how)] if name == "cart_burden" else []
        print(f"### {name} ({SPECS[name]}.toml)\n")
        print(SECTIONS[name](sweep, *extra) + "\n", flush=True)


if __name__ == "__main__":
    main()
