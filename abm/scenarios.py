"""Named presets: overrides on the defaults in ``abm.params``, each with what to look for.

Each scenario has a one-line ``summary`` (for ``abm scenarios``) and a ``lesson`` for the
dashboard's Info panel: what it shows, things to notice, things to try.
"""

from __future__ import annotations

from typing import Any

SCENARIOS: dict[str, dict[str, Any]] = {
    "tumor_only": {
        "summary": "No immune system: the colony grows compactly from its rim.",
        "lesson": (
            "With no T cells or suppressors the tumour grows as a compact disc. Only cells on "
            "the rim have room to divide (contact inhibition), so the count grows about "
            "quadratically in time, not exponentially. Notice: the interior never changes. "
            "Try: shorten the division time, or turn T cells back on."
        ),
        "params": {"tcell_influx": 0.0, "treg_influx": 0.0, "mdsc_influx": 0.0},
    },
    "elimination": {
        "summary": "A strongly antigenic tumour with a brisk T-cell response is eliminated.",
        "lesson": (
            "Elimination, the first of the three Es of immunoediting (Dunn, Old & Schreiber "
            "2004). The tumour carries several antigens with full MHC-I and mutates rarely; "
            "T cells flood in and clear it. Notice: kills come in waves as T cells arrive. "
            "Try: raise the mutation rate, or lower T-cell influx, and watch it escape."
        ),
        "params": {"founder_antigens": 4, "mutation_rate": 0.001, "tcell_influx": 4.0,
                   "treg_influx": 0.05, "mdsc_influx": 0.05, "initial_tumor_cells": 100},
    },
    "equilibrium": {
        "summary": "Immune control holds a small tumour in check without clearing it.",
        "lesson": (
            "Equilibrium, the second E: T cells kill as fast as the tumour grows, so a small, "
            "fluctuating tumour persists (Koebel 2007). Notice: the size wanders but stays "
            "small; T cells exhaust and are replaced. Try: set T-cell influx to 0 mid-run "
            "(outgrowth), or give anti-PD-1."
        ),
        "params": {"founder_antigens": 3, "mutation_rate": 0.0, "tcell_influx": 2.0,
                   "treg_influx": 0.1, "mdsc_influx": 0.1, "initial_tumor_cells": 100},
    },
    "escape": {
        "summary": "Mutation lets the tumour hide: it is edited and outgrows the T cells.",
        "lesson": (
            "Escape, the third E. Daughter cells mutate: they lose antigens or MHC-I, or raise "
            "PD-L1. T cells kill the visible clones, so the invisible ones take over and the "
            "mean antigenicity falls (immunoediting). Notice: clone colours shift; PD-L1 rises "
            "where T cells are. Try: anti-PD-1 early vs late; a vaccine."
        ),
        "params": {"founder_antigens": 3, "mutation_rate": 0.05, "tcell_influx": 1.5,
                   "treg_influx": 0.2, "mdsc_influx": 0.2},
    },
}


def scenario_params(name: str) -> dict[str, Any]:
    """The parameter overrides of scenario ``name`` (a copy)."""
    if name not in SCENARIOS:
        raise ValueError(
            f"unknown scenario {name!r}: expected one of {', '.join(SCENARIOS)}"
        )
    return dict(SCENARIOS[name]["params"])
