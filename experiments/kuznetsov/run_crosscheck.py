"""Well-mixed cross-check against Kuznetsov, Makalkin, Taylor & Perelson (1994).

Runs the ODE and the stochastic packet model (:class:`abm.wellmixed.WellMixedModel`) for

(i)  dormancy: E0 = s/d, T0 = 1e7, 1000 days. Claim: settles near E = 1.61e6, T = 8.19e6
     through damped oscillations (eigenvalues −0.0055 ± 0.0634i /day, period ≈ 99 days);
(ii) the escape threshold: E0 = s/d, T0 <= 5e7 goes dormant, T0 >= 7e7 escapes to
     T = 4.47e8 (docs/references.md section 3).

Writes docs/img/kuznetsov_dormancy.png and docs/img/kuznetsov_threshold.png and prints every
number quoted in docs/validation_kuznetsov.md. Serial and small (about 1.5 min on one core):

    .venv/bin/python experiments/kuznetsov/run_crosscheck.py [--seeds 10] [--threshold-seeds 20]

A smoke run (about 10 s; its numbers are not the page's), figures kept out of docs/img:

    .venv/bin/python experiments/kuznetsov/run_crosscheck.py --seeds 1 --threshold-seeds 1 \
        --img /tmp/kuznetsov
"""

from __future__ import annotations

import argparse
import io
import math
import time
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402
from scipy.signal import find_peaks  # noqa: E402

from abm.run import atomic_write_bytes  # noqa: E402
from abm.wellmixed import (  # noqa: E402
    KuznetsovParams,
    equilibria,
    integrate_ode,
    run_stochastic,
)

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"

DORMANT_DAYS = 1000
AVERAGE_FROM_DAY = 400  # time averages over [400, 1000] d: > 2 decay times after the start
THRESHOLD_DAYS = 600
THRESHOLD_T0 = [2e7, 5e7, 6e7, 7e7, 1e8, 2e8]
ESCAPED_ABOVE = 2e8  # cells at the end; dormant runs stay below ~3e7, escaped ones near 4.5e8


# ---- measurements ------------------------------------------------------------------------------


def ode_period_and_decay(df: pd.DataFrame, T_star: float, after_day: float = 150.0):
    """Mean peak-to-peak period of T [d] and decay rate of the peak excess over T* [1/d]."""
    late = df[df.day >= after_day]
    peaks, _ = find_peaks(late["T"].to_numpy())
    t = late["day"].to_numpy()[peaks]
    excess = late["T"].to_numpy()[peaks] - T_star
    period = float(np.mean(np.diff(t)))
    keep = excess > 0
    slope = np.polyfit(t[keep], np.log(excess[keep]), 1)[0]
    return period, float(-slope), t


def autocorrelation_period(series: np.ndarray, max_lag: int = 250) -> float:
    """Lag [samples] of the first autocorrelation maximum after the first zero crossing."""
    x = series - series.mean()
    acf = np.correlate(x, x, mode="full")[len(x) - 1 :][: max_lag + 1]
    acf = acf / acf[0]
    below = np.flatnonzero(acf < 0)
    if below.size == 0:
        return math.nan
    start = below[0]
    lag = start + int(np.argmax(acf[start:]))
    if 0 < lag < max_lag:  # parabolic refinement
        y0, y1, y2 = acf[lag - 1], acf[lag], acf[lag + 1]
        denom = y0 - 2 * y1 + y2
        if denom != 0:
            return lag + 0.5 * (y0 - y2) / denom
    return float(lag)


def ode_threshold(params: KuznetsovParams, E0: float, T_saddle: float) -> float:
    """Initial tumour size separating dormancy from escape at E0 (bisection on the ODE)."""

    def escapes(T0: float) -> bool:
        return integrate_ode(params, E0, T0, 1500, dt_out_day=1500)["T"].iloc[-1] > T_saddle

    lo, hi = 5e7, 7e7
    assert not escapes(lo) and escapes(hi)
    while hi - lo > 1e4:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if escapes(mid) else (mid, hi)
    return 0.5 * (lo + hi)


def separatrix(params: KuznetsovParams, saddle) -> list[np.ndarray]:
    """Both branches of the saddle's stable manifold, integrated backward in time."""
    J = params.jacobian(saddle.E, saddle.T)
    w, v = np.linalg.eig(J)
    v_stable = np.real(v[:, int(np.argmin(w.real))])
    scale = np.array([saddle.E, saddle.T]) * 1e-4

    def back(_t, y):
        dE, dT = params.rhs(y[0], y[1])
        return [-dE, -dT]

    def leave(_t, y):
        return min(y[0], y[1] - 1e4, 5e8 - y[1], 2e7 - y[0])

    leave.terminal = True
    branches = []
    for sign in (1, -1):
        y0 = np.array([saddle.E, saddle.T]) + sign * scale * v_stable / np.abs(v_stable).max()
        sol = solve_ivp(back, (0, 2000), y0, events=leave, rtol=1e-9, atol=1e-3, max_step=1.0)
        branches.append(sol.y)
    return branches


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval for a binomial proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# ---- experiments -------------------------------------------------------------------------------


def save(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` atomically (a reader sees the old figure or the new one)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="stochastic seeds, dormancy")
    parser.add_argument("--threshold-seeds", type=int, default=20, help="seeds per T0")
    parser.add_argument("--img", type=Path, default=IMG, metavar="DIR",
                        help="where the two figures go (default docs/img)")
    args = parser.parse_args(argv)
    for flag in ("seeds", "threshold_seeds"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} {getattr(args, flag)}: expected an "
                         "integer >= 1")
    img = args.img.resolve()

    P = KuznetsovParams()
    E0 = P.effector_baseline
    t_start = time.perf_counter()

    # --- equilibria --------------------------------------------------------------------------
    eqs = {e.name: e for e in equilibria(P)}
    print("Equilibria (E, T in cells; eigenvalues in 1/day):")
    for e in eqs.values():
        ev = ", ".join(f"{z.real:+.4f}{z.imag:+.4f}i" for z in e.eigenvalues)
        print(f"  {e.name:12s} E={e.E:.4g}  T={e.T:.4g}  {e.kind:12s}  eig=({ev})")
    dorm, saddle, esc = eqs["dormant"], eqs["saddle"], eqs["escape"]
    print(
        f"  dormant focus: period 2pi/Im = {dorm.period_day:.1f} d,"
        f" decay time 1/|Re| = {dorm.decay_time_day:.0f} d"
    )

    # --- (i) dormancy ------------------------------------------------------------------------
    ode = integrate_ode(P, E0, 1e7, DORMANT_DAYS)
    # Period and decay from a longer run, past the nonlinear first swings (peaks after day 300).
    period, decay, peak_days = ode_period_and_decay(integrate_ode(P, E0, 1e7, 1500), dorm.T, 300)
    end = ode.iloc[-1]
    print(f"\n(i) Dormancy, E0 = s/d = {E0:.4g}, T0 = 1e7, {DORMANT_DAYS} d")
    print(
        f"  ODE: day {DORMANT_DAYS}: E={end.E:.4g} ({end.E / dorm.E - 1:+.2%}),"
        f" T={end['T']:.4g} ({end['T'] / dorm.T - 1:+.2%})"
    )
    print(
        f"  ODE (to day 1500): T peaks at days {np.round(peak_days).astype(int).tolist()};"
        f" period {period:.1f} d, decay rate of the peaks {decay:.4f}/d"
    )

    runs = []
    for seed in range(args.seeds):
        df = run_stochastic(E0, 1e7, DORMANT_DAYS, seed)
        runs.append(df.iloc[::10].reset_index(drop=True))  # daily samples
    rows = []
    for seed, df in enumerate(runs):
        w = df[df.Day >= AVERAGE_FROM_DAY]
        rows.append(
            {
                "seed": seed,
                "E_mean": w.E.mean(),
                "T_mean": w["T"].mean(),
                "T_cv": w["T"].std() / w["T"].mean(),
                "T_day600": df.loc[df.Day == 600, "T"].iloc[0],
                "period": autocorrelation_period(df.loc[df.Day >= 200, "T"].to_numpy()),
                "eliminated": df["T"].iloc[-1] == 0,
            }
        )
    st = pd.DataFrame(rows)
    print(
        f"  stochastic ({args.seeds} seeds; 1e4 cells per tumour agent, 1e3 per effector;"
        f" dt 0.1 d). Means over days {AVERAGE_FROM_DAY}-{DORMANT_DAYS}, mean ± sd over seeds:"
    )
    print(
        f"    E = {st.E_mean.mean():.4g} ± {st.E_mean.std():.2g}"
        f" ({st.E_mean.mean() / dorm.E - 1:+.1%} vs 1.61e6)"
    )
    print(
        f"    T = {st.T_mean.mean():.4g} ± {st.T_mean.std():.2g}"
        f" ({st.T_mean.mean() / dorm.T - 1:+.1%} vs 8.19e6)"
    )
    print(f"    T at day 600 = {st.T_day600.mean():.3g} ± {st.T_day600.std():.2g}")
    print(f"    coefficient of variation of T within a run: {st.T_cv.mean():.2f}")
    print(
        f"    oscillation period (autocorrelation peak): {st.period.mean():.1f}"
        f" ± {st.period.std():.1f} d; eliminated: {int(st.eliminated.sum())}/{len(st)}"
    )

    # --- (ii) threshold ----------------------------------------------------------------------
    T_star = ode_threshold(P, E0, saddle.T)
    print(f"\n(ii) Escape threshold at E0 = s/d: ODE threshold T0* = {T_star:.4g}")
    low_branch = min(separatrix(P, saddle), key=lambda y: y[0, -1])
    print(
        f"  separatrix (stable manifold of the saddle) reaches E = 0 at T = {low_branch[1, -1]:.3g}"
    )
    ode_runs = {}
    for T0 in THRESHOLD_T0:
        o = integrate_ode(P, E0, T0, THRESHOLD_DAYS)
        ode_runs[T0] = o
        verdict = "escape" if o["T"].iloc[-1] > ESCAPED_ABOVE else "dormant"
        print(f"  ODE T0={T0:.1e}: T(day {THRESHOLD_DAYS}) = {o['T'].iloc[-1]:.4g} -> {verdict}")
    ends = {}
    for T0 in THRESHOLD_T0:
        ends[T0] = np.array(
            [
                run_stochastic(E0, T0, THRESHOLD_DAYS, seed)["T"].iloc[-1]
                for seed in range(args.threshold_seeds)
            ]
        )
    print(
        f"  stochastic, {args.threshold_seeds} seeds per T0, state at day {THRESHOLD_DAYS}"
        f" (escaped: T > {ESCAPED_ABOVE:.0e}; eliminated: T = 0):"
    )
    fractions = []
    for T0, e in ends.items():
        n = len(e)
        k_esc, k_elim = int(np.sum(e > ESCAPED_ABOVE)), int(np.sum(e == 0))
        lo, hi = wilson(k_esc, n)
        fractions.append((T0, k_esc / n, lo, hi))
        esc_T = e[e > ESCAPED_ABOVE]
        esc_txt = (
            f"; escaped T = {esc_T.mean():.3g} ± {esc_T.std():.2g}"
            f" ({esc_T.mean() / esc.T - 1:+.1%} vs 4.47e8)"
            if esc_T.size
            else ""
        )
        print(
            f"    T0={T0:.1e}: dormant {n - k_esc - k_elim}/{n}, escaped {k_esc}/{n}"
            f" (95% CI {lo:.2f}-{hi:.2f}), eliminated {k_elim}/{n}{esc_txt}"
        )

    # --- figures -----------------------------------------------------------------------------
    plot_dormancy(ode, runs, dorm, img / "kuznetsov_dormancy.png")
    plot_threshold(P, ode_runs, fractions, eqs, T_star, img / "kuznetsov_threshold.png")
    print(f"\nFigures written to {img}; total {time.perf_counter() - t_start:.0f} s")


def plot_dormancy(ode, runs, dorm, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    ax_T, ax_E, ax_ph = axes
    for i, df in enumerate(runs[:4]):
        kw = {"lw": 0.7, "alpha": 0.6, "color": f"C{i + 1}"}
        ax_T.plot(df.Day, df["T"] / 1e6, label=f"stochastic seed {i}", **kw)
        ax_E.plot(df.Day, df.E / 1e6, **kw)
    ax_T.plot(ode.day, ode["T"] / 1e6, color="k", lw=2, label="ODE")
    ax_E.plot(ode.day, ode.E / 1e6, color="k", lw=2)
    ax_T.axhline(dorm.T / 1e6, ls="--", color="grey", label="dormant T* = 8.19e6")
    ax_E.axhline(dorm.E / 1e6, ls="--", color="grey", label="dormant E* = 1.61e6")
    ax_T.set(xlabel="day", ylabel="tumour cells T (millions)", title="(a) tumour")
    ax_E.set(xlabel="day", ylabel="effector cells E (millions)", title="(b) effectors")
    ax_T.legend(fontsize=7, loc="upper right")
    ax_E.legend(fontsize=7, loc="lower right")
    ax_ph.plot(runs[0]["T"] / 1e6, runs[0].E / 1e6, lw=0.5, color="C1", alpha=0.7,
               label="stochastic seed 0")  # fmt: skip
    ax_ph.plot(ode["T"] / 1e6, ode.E / 1e6, color="k", lw=1.5, label="ODE from (s/d, 1e7)")
    ax_ph.plot(dorm.T / 1e6, dorm.E / 1e6, "o", color="red", label="dormant focus")
    ax_ph.set(xlabel="T (millions)", ylabel="E (millions)", title="(c) phase plane")
    ax_ph.legend(fontsize=7)
    fig.suptitle(
        "Kuznetsov 1994, E0 = s/d, T0 = 1e7: damped oscillation into the dormant focus "
        f"(eigenvalues {dorm.eigenvalues[0].real:.4f} ± {dorm.eigenvalues[0].imag:.4f}i /d)",
        fontsize=10,
    )
    fig.tight_layout()
    save(fig, path)


def plot_threshold(P, ode_runs, fractions, eqs, T_star, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    ax_t, ax_ph, ax_f = axes
    cmap = plt.get_cmap("viridis")
    for i, (T0, o) in enumerate(ode_runs.items()):
        colour = cmap(i / max(1, len(ode_runs) - 1))
        ax_t.plot(o.day, o["T"], color=colour, label=f"T0 = {T0:.0e}")
        ax_ph.plot(o["T"], o.E / 1e6, color=colour, lw=1)
    for name, ls in (("dormant", ":"), ("saddle", "--"), ("escape", "-.")):
        ax_t.axhline(eqs[name].T, color="grey", ls=ls, lw=0.8)
    ax_t.set(yscale="log", xlabel="day", ylabel="tumour cells T", title="(a) ODE, E0 = s/d")
    ax_t.legend(fontsize=7, loc="lower right")
    for k, branch in enumerate(separatrix(P, eqs["saddle"])):  # branch rows: E, T
        ax_ph.plot(branch[1], branch[0] / 1e6, "r--", lw=1.2, label="separatrix" if k == 0 else "")
    for name, marker in (("dormant", "o"), ("saddle", "x"), ("escape", "s")):
        e = eqs[name]
        ax_ph.plot(e.T, e.E / 1e6, marker, color="red", ms=7)
    ax_ph.set(xscale="log", xlabel="T", ylabel="E (millions)", title="(b) phase plane")
    ax_ph.set_ylim(bottom=0)
    ax_ph.legend(fontsize=7)
    T0s = np.array([f[0] for f in fractions])
    frac = np.array([f[1] for f in fractions])
    err = np.array([[f[1] - f[2], f[3] - f[1]] for f in fractions]).T
    ax_f.errorbar(T0s, frac, yerr=err, fmt="o-", capsize=3, label="stochastic (95% Wilson CI)")
    ax_f.axvline(T_star, color="k", ls="--", label=f"ODE threshold {T_star:.3g}")
    ax_f.set(
        xscale="log",
        xlabel="initial tumour T0",
        ylabel="fraction escaped by day 600",
        title="(c) escape fraction",
        ylim=(-0.05, 1.05),
    )
    ax_f.set_xticks(T0s, [f"{T0:.0e}".replace("e+0", "e") for T0 in T0s], fontsize=7)
    ax_f.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_f.legend(fontsize=7, loc="upper left")
    fig.suptitle("Kuznetsov 1994: dormancy or escape by initial tumour size", fontsize=10)
    fig.tight_layout()
    save(fig, path)


if __name__ == "__main__":
    main()
