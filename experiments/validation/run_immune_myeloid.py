"""The analyses behind docs/validation_immune.md (macrophages, anti-CSF-1R and NK cells).

Run from the repository root:

    .venv/bin/python experiments/validation/run_immune_myeloid.py            # all
    .venv/bin/python experiments/validation/run_immune_myeloid.py a c        # a subset
    .venv/bin/python experiments/validation/run_immune_myeloid.py --workers 1
    .venv/bin/python experiments/validation/run_immune_myeloid.py c --seeds 1   # a smoke run

(a) macrophages net pro-tumour: burden with the default macrophages vs none vs anti-CSF-1R
    (immune_myeloid_macrophages.toml, immune_myeloid_niche.toml);
(b) M2 share vs hypoxia: the M2 share of macrophages on hypoxic vs oxygenated sites (direct
    runs of the default model, sampled daily), and M2Fraction against HypoxicFraction over the
    runs of (a);
(c) NK cells make MHC-I loss costly: mean MHC-I of the survivors with and without NK cells
    (immune_myeloid_nk.toml);
(d) the NK x macrophage influx grid (immune_myeloid_grid.toml);
(e) the default tumour's macrophage effect of (a) over 40 paired seeds
    (immune_myeloid_seeds.toml), with a Wilcoxon signed-rank test.

The sweeps run through run_facts.sweep (the sweep runner, into runs/<spec>/, reused while the
model code is unchanged); each analysis prints a Markdown table. ``--seeds N`` (a smoke run: the
first N seeds of every spec and of the direct runs of (b), into runs/seedsN/) and ``--runs DIR``
as in run_facts.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import t as t_dist
from scipy.stats import wilcoxon

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run_facts as F  # noqa: E402  (same directory)

from abm import TumorModel  # noqa: E402
from abm.agents import Macrophage  # noqa: E402
from abm.analysis.paired import med_range, relative_benefits  # noqa: E402
from abm.analysis.runs import finals  # noqa: E402

ALL_SEEDS = [1, 2, 3, 4]  # the specs' seeds
SEEDS = list(ALL_SEEDS)  # those used (--seeds N: the first N)


def _group(groups: dict, want) -> list:
    for key, runs in groups.items():
        if key == want or (isinstance(key, tuple) and want in key):
            return runs
    raise KeyError(f"{want!r} not in {list(groups)}")


def _arms(name: str, arms: list[str], day: int) -> tuple[str, dict]:
    g = {a: _group(F.sweep(name), a) for a in arms}
    base = arms[0]
    rows = []
    for arm in arms:
        runs = g[arm]
        change = ("-" if arm == base
                  else med_range([-b for b in relative_benefits(finals(runs), finals(g[base]))],
                                 "{:+.2f}"))
        rows.append((
            arm,
            med_range(finals(runs), "{:.0f}"),
            " / ".join(str(n) for n in finals(runs)),
            change,
            med_range([r.final("Macrophages") for r in runs], "{:.0f}"),
            med_range([r.final("M2Fraction") for r in runs]),
            med_range([r.final("MacrophageKills") for r in runs], "{:.0f}"),
            med_range([r.final("HypoxicFraction") for r in runs]),
        ))
    header = ("arm", f"burden day {day}, median [range]", f"per seed {SEEDS}",
              f"burden change vs {base} (paired)", "macrophages", "M2 share",
              "macrophage kills", "hypoxic fraction")
    return F.table(rows, header), g


def part_a():
    out = []
    t, g = _arms("immune_myeloid_macrophages", ["default", "no macrophages", "anti-CSF-1R d7"], 35)
    pro = sum(d.n_cancer > n.n_cancer for d, n in zip(g["default"], g["no macrophages"],
                                                       strict=True))
    out.append("Default tumour (no scenario), 100x100, day 35:\n\n" + t
               + f"\n\nDefault above no-macrophages in {pro}/{len(SEEDS)} seeds.")
    t, g = _arms("immune_myeloid_niche", ["default", "no macrophages", "anti-CSF-1R d8"], 25)
    pro = sum(d.n_cancer > n.n_cancer for d, n in zip(g["default"], g["no macrophages"],
                                                       strict=True))
    csf = sum(d.n_cancer > n.n_cancer for d, n in zip(g["default"], g["anti-CSF-1R d8"],
                                                       strict=True))
    out.append("macrophage_niche scenario, day 25:\n\n" + t
               + f"\n\nDefault above no-macrophages in {pro}/{len(SEEDS)} seeds; above "
               f"anti-CSF-1R in {csf}/{len(SEEDS)}.")
    return {"table": "\n\n".join(out)}


def m2_by_oxygen(seed: int, days: int = 35, start: int = 10, **params) -> tuple[list, list]:
    """M2 flags of macrophages on hypoxic and on oxygenated sites, sampled once a day."""
    model = TumorModel(rng=seed, **params)
    hypoxic, oxygenated = [], []
    threshold = model.p["hypoxic_threshold"]
    for hour in range(days * 24):
        model.step()
        if hour >= start * 24 and hour % 24 == 23:
            for m in model.agents_by_type.get(Macrophage, ()):
                low = model.oxygen.data[m.site.coordinate] < threshold
                (hypoxic if low else oxygenated).append(m.m2)
    return hypoxic, oxygenated


def part_b():
    rows = []
    # the default tumour with the innate cells on (off by default: influx 0), as in (a)
    innate = {"macrophage_influx": 0.2, "nk_influx": 0.2}
    for label, params in (("default", innate), ("macrophage_niche", _niche_params())):
        per_seed = [m2_by_oxygen(s, days=35 if label == "default" else 25, **params)
                    for s in SEEDS]
        hyp = [np.mean(h) if h else float("nan") for h, _ in per_seed]
        oxy = [np.mean(o) if o else float("nan") for _, o in per_seed]
        pooled_h = np.mean([x for h, _ in per_seed for x in h])
        pooled_o = np.mean([x for _, o in per_seed for x in o])
        higher = sum(h > o for h, o in zip(hyp, oxy, strict=True))
        rows.append((label, f"{pooled_h:.2f}", f"{pooled_o:.2f}",
                     " / ".join(f"{h:.2f}-{o:.2f}" for h, o in zip(hyp, oxy, strict=True)),
                     sum(len(h) for h, _ in per_seed), sum(len(o) for _, o in per_seed),
                     f"{higher}/{len(SEEDS)}"))
    t = F.table(rows, ("tumour", "M2 share, hypoxic sites", "M2 share, oxygenated sites",
                       "per seed (hypoxic-oxygenated)", "macrophage-days hypoxic",
                       "macrophage-days oxygenated", "seeds hypoxic > oxygenated"))
    # across runs of (a): final M2 share vs hypoxic fraction
    runs = [r for runs in F.sweep("immune_myeloid_macrophages").values() for r in runs]
    runs += [r for runs in F.sweep("immune_myeloid_niche").values() for r in runs]
    # a run that cleared its tumour has no hypoxic fraction of cancer cells (NaN): left out
    pts = [(r.final("HypoxicFraction"), r.final("M2Fraction")) for r in runs
           if r.final("Macrophages") >= 5
           and np.isfinite(r.final("HypoxicFraction")) and np.isfinite(r.final("M2Fraction"))]
    if len(pts) >= 3:
        x, y = np.array(pts).T
        rho = _spearman(x, y)
        t += (f"\n\nAcross the runs of (a) with at least 5 macrophages ({len(pts)} runs): "
              f"Spearman correlation of the final M2 share with the hypoxic fraction "
              f"{rho:+.2f}.")
    return {"table": t}


def _niche_params() -> dict:
    from abm.scenarios import scenario_params

    return scenario_params("macrophage_niche")


def _spearman(x, y) -> float:
    rx = np.argsort(np.argsort(x))
    ry = np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def part_c():
    g = F.sweep("immune_myeloid_nk")
    keys = sorted(g, key=lambda k: k if not isinstance(k, tuple) else k[0])
    rows = []
    base = g[keys[0]]
    for k in keys:
        runs = g[k]
        mhc = [r.final("MeanMHC") for r in runs]  # NaN where the tumour was cleared
        pairs = [(r.final("MeanMHC"), b.final("MeanMHC")) for r, b in zip(runs, base,
                                                                          strict=True)]
        pairs = [(x, y) for x, y in pairs if np.isfinite(x) and np.isfinite(y)]
        higher = sum(x > y for x, y in pairs)
        rows.append((k, med_range(mhc, "{:.3f}"), " / ".join(f"{v:.3f}" for v in mhc),
                     "-" if runs is base else f"{higher}/{len(pairs)}",
                     med_range(finals(runs), "{:.0f}"),
                     med_range([r.final("NKKills") for r in runs], "{:.0f}"),
                     med_range([r.final("NKCells") for r in runs], "{:.0f}"),
                     med_range([r.final("MeanAntigenicity") for r in runs], "{:.3f}")))
    t = F.table(rows, ("nk_influx", "mean MHC-I day 30", f"per seed {SEEDS}",
                       "seeds above nk_influx 0", "burden", "NK kills", "NK cells",
                       "mean antigenicity"))
    return {"table": t}


def part_d():
    g = F.sweep("immune_myeloid_grid")
    nks = sorted({k[0] for k in g})
    macs = sorted({k[1] for k in g})
    cells = {}
    for k, runs in g.items():
        # nanmedian: the mean MHC-I of a cleared tumour is NaN (statistics.median would sort
        # the NaN in anywhere); NaN only if every seed cleared it
        cells[k] = (float(np.median(finals(runs))),
                    float(np.nanmedian([r.final("MeanMHC") for r in runs])),
                    float(np.nanmedian([r.final("M2Fraction") for r in runs])))
    rows = []
    for nk in nks:
        rows.append((nk, *(f"{cells[(nk, m)][0]:.0f} / {cells[(nk, m)][1]:.3f} / "
                           f"{cells[(nk, m)][2]:.2f}" for m in macs)))
    t = F.table(rows, ("nk_influx \\ macrophage_influx", *(str(m) for m in macs)))
    t = ("Each cell: median over seeds of burden / mean MHC-I / M2 share on day 30.\n\n" + t)
    return {"table": t}


def part_e():
    g = F.sweep("immune_myeloid_seeds")
    default, none = finals(g["default"]), finals(g["no macrophages"])
    # the paired change without macrophages, as (a): negative = smaller without them
    change = np.array([-b for b in relative_benefits(none, default)])
    larger = int(sum(d > n for d, n in zip(default, none, strict=True)))
    n = len(change)
    rng = np.random.default_rng(0)  # the bootstrap's own stream: the table is reproducible
    boot = np.median(rng.choice(change, size=(10_000, n)), axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    p = wilcoxon(default, none).pvalue if n > 1 and np.any(change) else float("nan")
    # the burden ratio without / with macrophages: geometric mean over the seeds, with the t
    # interval of the mean log ratio (a cleared tumour, burden 0, has no ratio: left out)
    logs = np.log([b / a for a, b in zip(default, none, strict=True) if a > 0 and b > 0])
    if len(logs) > 1:
        half = t_dist.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs))
        ratio = (f"{np.exp(logs.mean()):.3f} [{np.exp(logs.mean() - half):.3f}, "
                 f"{np.exp(logs.mean() + half):.3f}]")
    else:
        ratio = "n/a"
    rows = [(n, med_range(default, "{:.0f}"), med_range(none, "{:.0f}"),
             f"{np.median(change):+.3f} [{low:+.3f}, {high:+.3f}]",
             f"{np.percentile(change, 25):+.3f} / {np.percentile(change, 75):+.3f}", ratio,
             f"{larger}/{n}", f"{p:.2g}")]
    t = F.table(rows, ("seeds", "burden day 35, default", "no macrophages",
                       "change without macrophages (paired), median [95% bootstrap]",
                       "quartiles", "burden ratio without / with, geometric mean [95% CI]",
                       "seeds larger with macrophages", "Wilcoxon signed-rank p"))
    return {"table": "Default tumour (no scenario), 100x100, day 35:\n\n" + t}


PARTS = {"a": part_a, "b": part_b, "c": part_c, "d": part_d, "e": part_e}


def main(argv: list[str] | None = None) -> None:
    global SEEDS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", choices=[*PARTS, []], metavar="PART",
                        help=f"what to run (default: all): {', '.join(PARTS)}")
    F.add_sweep_options(parser, workers=1)
    args = parser.parse_args(argv)
    F.use_sweep_options(parser, args, HERE / "runs")
    SEEDS = F.limit_seeds(ALL_SEEDS)
    for name in args.parts or list(PARTS):
        out = PARTS[name]()
        print(f"\n### ({name})\n\n{out['table']}\n", flush=True)


if __name__ == "__main__":
    main()
