"""Named presets: overrides on the defaults in ``abm.params``, each with what to look for.

Each scenario has a one-line ``summary`` (for ``abm scenarios``) and a ``lesson`` for the
dashboard's Info panel: what it shows, things to notice, things to try.
"""

from __future__ import annotations

from typing import Any

SCENARIOS: dict[str, dict[str, Any]] = {
    "tumor_only": {
        "watch_days": 30,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Press Play (one hour per frame): the disc grows mostly at its rim.',
            'Around day 15 choose the oxygen overlay and untick "cells" to see under them: the '
            'inside of the tumour is hypoxic; vessels it has swallowed turn pale (collapsed) and '
            'stop supplying oxygen.',
            'By day 30 a dark-brown necrotic core has formed in the middle, and the Populations '
            'chart starts to bend; run on to day 40 to see growth stop as the tumour fills the '
            'tissue.',
            'Lower the division time under Parameters, press Reset and run to day 30 again.',
        ),
        "summary": "No immune system: the colony grows from its rim and forms a necrotic core.",
        "lesson": (
            "With no T cells or suppressors the tumour grows as a compact disc. Only cells with "
            "room divide (contact inhibition), so the count grows far slower than exponentially. "
            "Inside, cancer cells use up the oxygen: cells more than ~0.1 mm from a working "
            "vessel are hypoxic and divide more slowly, and beyond ~0.2 mm they stop; vessels "
            "enclosed by tumour collapse within "
            "about two weeks (Padera 2004; Holash 1999), and cells starved below 5 mmHg die by "
            "necrosis, leaving debris: a necrotic core. Try: shorten the division time, raise "
            "the vessel density, or turn T cells back on."
        ),
        "params": {"tcell_influx": 0.0, "treg_influx": 0.0, "mdsc_influx": 0.0,
                   "macrophage_influx": 0.0, "nk_influx": 0.0},
    },
    "elimination": {
        # 24 seeds (0-23, 2026-11-29): cleared by day 5.25 in half, by day 8 in 20 (the last
        # on day 15.6)
        "watch_days": 8,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Press Run to day 8 and watch the blue T cells arrive from the dark vessels.',
            'Kills come in waves; the tumour is gone in about five days (some seeds take a '
            'week or more).',
            'Raise the mutation rate to 0.05 and lower T-cell arrival to 1, press Reset, run '
            'again.',
        ),
        "summary": "A strongly antigenic tumour with a brisk T-cell response is eliminated.",
        "lesson": (
            "Elimination, the first of the three Es of immunoediting (Dunn, Old & Schreiber "
            "2004). The tumour carries several antigens with full MHC-I and mutates rarely; "
            "T cells flood in and clear it. Notice: kills come in waves as T cells arrive. "
            "Try: raise the mutation rate, or lower T-cell influx, and watch it escape."
        ),
        # modelling choices for the lesson: a small (100-cell), highly visible tumour with few
        # suppressors, so that T cells clear it within days in most seeds
        "params": {"founder_antigens": 4, "mutation_rate": 0.001, "tcell_influx": 4.0,
                   "treg_influx": 0.05, "mdsc_influx": 0.05, "initial_tumor_cells": 100},
    },
    "equilibrium": {
        "watch_days": 28,  # the lesson's time span (dashboard: "Run to day")
        # 12 seeds (0-11, 2026-12-01): on day 28 between 0.4 and 2.6 times the founder's 500
        # cells (6 above 2x, none near escape's growth), 1 cleared
        "steps": (
            'Run to day 28 (set 4 hours per frame to go faster).',
            'In most seeds the tumour neither clears nor takes off: it ends at most a few times '
            'its first size (about 1 in 10 clears by day 28); faded-blue (exhausted) T cells '
            'pile up.',
            'Give anti-PD-1 at day 10, or lower T-cell arrival and press Reset.',
        ),
        "summary": "Immune control holds the tumour in check: it persists but barely grows.",
        "lesson": (
            "Equilibrium, the second E: T-cell recruitment keeps pace with the tumour (it grows "
            "with tumour size and does not saturate here), so killing and IFN-gamma cytostasis "
            "nearly balance growth and the tumour persists for weeks without clearing or "
            "escaping (Koebel 2007). Notice: the size wanders slowly; most T cells end up "
            "exhausted and are replaced. Try: set T-cell influx lower and Reset (escape), or "
            "give anti-PD-1 (elimination). Caveat: this is control, not dormancy: the size "
            "drifts (by day 28 from under half to about 2.5 times the first size, half the "
            "seeds above 2 times), and over months most runs end in elimination (6 of 8 seeds "
            "by day 82; a few keep oscillating)."
        ),
        # tcell_influx 15 (was 20 before cancer cells died by apoptosis and PD-L1 decayed with
        # its 0.1 d half-life: at 20 the tumour was cleared by day 15-21 in 3 of 4 seeds)
        "params": {"founder_antigens": 3, "mutation_rate": 0.0, "tcell_influx": 15.0,
                   "recruitment_half_saturation": 20000, "initial_tumor_cells": 500,
                   "treg_influx": 0.1, "mdsc_influx": 0.1},
    },
    "escape": {
        "watch_days": 40,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 40; in the first two weeks the tumour grows '
            'several-fold while T cells gather and kill its most visible cells.',
            'Grey (hidden) cells survive and take over: watch mean antigenicity fall from about '
            'day 5.',
            'Switch to colour by clone to see which clones win; Reset and give anti-PD-1 on day 5.',
        ),
        "summary": "Mutation lets the tumour hide: it is edited and outgrows the T cells.",
        "lesson": (
            "Escape, the third E. Daughter cells mutate: they lose antigens or MHC-I, or raise "
            "PD-L1. T cells kill the visible clones, so the invisible ones take over and the "
            "mean antigenicity falls (immunoediting). Notice: clone colours shift; PD-L1 rises "
            "across the tumour as T cells engage. Try: anti-PD-1 early vs late; a vaccine."
        ),
        "params": {"founder_antigens": 3, "mutation_rate": 0.05, "tcell_influx": 1.5,
                   "treg_influx": 0.2, "mdsc_influx": 0.2},
    },
    "checkpoint": {
        # 24 seeds (0-23, 2026-11-29): cleared by day 14.8 in half, by day 18 in 21, all by
        # day 18.9
        "watch_days": 18,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 18; anti-PD-1 is given on day 7 (dashed line on the charts).',
            'Choose the PD-L1 overlay: once T cells engage, the whole tumour darkens (their '
            'IFN-γ spreads about 0.3 mm, the tumour\'s size, and raises PD-L1).',
            'After the dose kills climb and the tumour is cleared one to two weeks later in '
            'most seeds; Reset with Compare on to see the untreated twin beside it.',
        ),
        "summary": "An antigenic, infiltrated ('hot') tumour treated with anti-PD-1 from day 7.",
        "lesson": (
            "Adaptive resistance: engaged T cells release IFN-gamma, which makes nearby cancer "
            "cells raise PD-L1 and switch the T cells off. Anti-PD-1 from day 7 (every 3 weeks, "
            "half-life 22 days) blocks that brake. Notice: PD-L1 rises across the tumour (IFN-"
            "gamma spreads about 0.3 mm, about the tumour's size); after "
            "the dose, kills pick up and exhaustion falls. Try: the same tumour without the "
            "drug (set anti_pd1_start_day to None), or the cold tumour scenario."
        ),
        "params": {"founder_antigens": 3, "mutation_rate": 0.01, "tcell_influx": 1.5,
                   "anti_pd1_start_day": 7.0},
    },
    "checkpoint_cold": {
        "watch_days": 30,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 30; anti-PD-1 is given on days 7 and 28 but little changes.',
            'Few T cells, low PD-L1: there is little for the drug to release.',
            'Press Vaccine at day 3 and compare with a run without it.',
        ),
        "summary": "A poorly antigenic ('cold') tumour: anti-PD-1 has little to release.",
        "lesson": (
            "A cold tumour: one antigen, low MHC-I. Few T cells are primed or recognise it, so "
            "there is little IFN-gamma, little PD-L1 and little for anti-PD-1 to unleash "
            "(checkpoint blockade works best in infiltrated tumours, Spranger 2013). Notice: "
            "few T cells, low PD-L1. Try: add a vaccine to bring T cells in."
        ),
        "params": {"founder_antigens": 1, "founder_mhc": 0.3, "mutation_rate": 0.01,
                   "tcell_influx": 1.5, "anti_pd1_start_day": 7.0},
    },
    "combination": {
        "watch_days": 14,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 14; both drugs start on day 7.',
            'Tregs (orange) are depleted and more T cells arrive; the tumour clears fast.',
            'For one drug alone: under Advanced, clear the other one\'s start day, then Reset.',
        ),
        "summary": "Anti-PD-1 plus anti-CTLA-4 from day 7 on a hot tumour.",
        "lesson": (
            "Two brakes released at once: anti-CTLA-4 depletes Tregs and boosts priming, "
            "anti-PD-1 keeps the recruited T cells killing (CheckMate 067: the combination beat "
            "either drug alone). Try: each drug alone (set the other start day to None)."
        ),
        "params": {"founder_antigens": 3, "mutation_rate": 0.01, "tcell_influx": 1.5,
                   "anti_pd1_start_day": 7.0, "anti_ctla4_start_day": 7.0},
    },
    "vaccine": {
        "watch_days": 18,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 18; the vaccine on day 0 (boosted on days 14 and 28) needs about a week '
            'before primed T cells arrive.',
            'From day 9 the burden falls; look for surviving clones (colour by clone).',
            'Raise the mutation rate, press Reset and see whether clones escape the vaccine.',
        ),
        "summary": "A weakly controlled tumour vaccinated against its founder antigens from "
                   "day 0.",
        "lesson": (
            "A cancer vaccine primes T cells against the founder clone's antigens; they arrive "
            "after about a week of clonal expansion. Notice: the burden falls, then clones that "
            "lost the vaccine antigens take over (clone colours change, antigenicity falls). "
            "Try: a higher mutation rate, or a single dose (vaccine_doses 1)."
        ),
        # modelling choices for the lesson: T-cell influx half the default (0.5 per h), so
        # that without the vaccine the tumour is only weakly controlled and the vaccine's
        # effect, and the escape of antigen-loss clones under it, show
        "params": {"founder_antigens": 2, "mutation_rate": 0.03, "tcell_influx": 0.5,
                   "vaccine_start_day": 0.0},
    },
    "cart": {
        "watch_days": 10,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 10; CAR-T cells (teal) are infused on day 5.',
            'They kill every cell, visible or not, and multiply: the tumour is gone by day 9.',
            'Open the cart_antigen_loss scenario to see how this fails.',
        ),
        "summary": "CAR-T cells infused on day 5 into a tumour that keeps its CAR target.",
        "lesson": (
            "CAR-T cells recognise their target antigen without MHC-I, so they kill cells that "
            "hide from ordinary T cells. Every cell carries the target here: CAR-T cells expand "
            "on kills and clear the tumour, unless they exhaust first. Try: a smaller dose, or "
            "the antigen-loss scenario."
        ),
        # modelling choices for the lesson: a poorly visible tumour (MHC-I 0.3, little T-cell
        # influx) that ordinary T cells cannot hold, and a dose of 300 CAR-T cells (the
        # default's 1.5x) that clears it within days of the infusion
        "params": {"founder_antigens": 1, "founder_mhc": 0.3, "tcell_influx": 0.3,
                   "mutation_rate": 0.01, "antigen_loss_rate": 0.0, "cart_start_day": 5.0,
                   "cart_dose": 300},
    },
    "cart_antigen_loss": {
        "watch_days": 25,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 25; cancer cells are coloured by CAR target: black ones have lost it.',
            'CAR-T cells (teal) clear the red cells from day 5; the black ones survive and regrow.',
            'Watch the CAR-target-negative fraction climb to 1 on the Visibility and checkpoint '
            'chart.',
        ),
        "colour_by": "CAR target",  # the dashboard colours cells by CAR target
        "summary": "CAR-T with target loss: the relapse is antigen-negative.",
        "lesson": (
            "The known failure of CAR-T therapy: cells that lose the target antigen are "
            "invisible to CAR-T cells and grow back (41% of B-ALL relapses after CD19 CAR-T are "
            "CD19-negative). Notice: the antigen-negative fraction climbs toward 1 after the "
            "infusion. Try: antigen_loss_rate = 0 (the cart scenario) for comparison."
        ),
        # the cart scenario with target loss: 0.01 of divisions lose the CAR target (a
        # modelling choice, high enough that antigen-negative cells are present at the infusion)
        "params": {"founder_antigens": 1, "founder_mhc": 0.3, "tcell_influx": 0.3,
                   "mutation_rate": 0.01, "antigen_loss_rate": 0.01, "cart_start_day": 5.0,
                   "cart_dose": 300},
    },
    "macrophage_niche": {
        "watch_days": 25,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 8: macrophages arrive at the vessels and drift into the tumour; in its '
            'hypoxic core (Oxygen overlay) they turn pink (M2), near T cells purple (M1).',
            'Press anti-CSF-1R on day 8: macrophages die out and the survivors turn M1.',
            'Reset with Compare on and run to day 25: the treated tumour is smaller than its '
            'untreated twin; or set macrophage arrival to 0.',
        ),
        "summary": "A hypoxic tumour recruits macrophages that turn M2 and support it.",
        "lesson": (
            "Tumour-associated macrophages are recruited by the tumour's CSF-1 and CCL2. In "
            "hypoxia and in the suppressive (TGF-beta-like) factor they polarise to M2: "
            "cancer cells next to them divide faster and the factor they release weakens "
            "T cells. IFN-gamma from T cells turns them M1, which kill slowly and amplify the "
            "type-1 response. Notice: the pink M2 niche in the oxygen-poor core; the M2 share "
            "on the status line. Try: anti-CSF-1R (Ries et al. 2014: depletes TAMs; Pyonteck "
            "et al. 2013: repolarises them), or macrophage arrival 0."
        ),
        # modelling choices for the lesson: a 1,000-cell founder, large enough to have a hypoxic
        # core by day 8, and macrophages switched on (influx 1 per h)
        "params": {"initial_tumor_cells": 1000, "tcell_influx": 2.0, "macrophage_influx": 1.0},
    },
    "nk_surveillance": {
        "watch_days": 30,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 30: mutants that lower MHC-I hide from T cells, but olive NK cells '
            'kill them ("missing self").',
            'Watch mean MHC-I on the Visibility and checkpoint chart, and the NK kills on the '
            'Kills chart (hover over a cancer cell for its own MHC-I).',
            'Set NK-cell arrival to 0, press Reset and run again: MHC-I falls much further.',
        ),
        "summary": "NK cells make MHC-I loss costly: the tumour must balance two killers.",
        "lesson": (
            "Losing MHC-I hides a cancer cell from T cells, which see antigen only on MHC-I. "
            "NK cells do the opposite: their inhibitory receptors read MHC-I, so a cell that "
            "lost it is killed (missing self, Ljunggren & Kaerre 1990). Mutation here often "
            "lowers MHC-I. Notice: with NK cells the surviving cells keep more MHC-I (mean "
            "MHC-I on the Visibility and checkpoint chart). Try: NK-cell arrival 0, or more "
            "T cells."
        ),
        "params": {"founder_antigens": 3, "mutation_rate": 0.05, "tcell_influx": 1.5,
                   "mutation_weight_lower_mhc": 0.7, "nk_influx": 1.0},
    },
    "progenitor_burst": {
        "watch_days": 14,  # the lesson's time span (dashboard: "Run to day")
        "steps": (
            'Run to day 7: T cells primed in the lymph node arrive (from day 1 those primed '
            'before the run, then 5 days after each priming); the navy ones are progenitors, '
            'which divide on their antigen but do not kill.',
            'Anti-PD-1 on day 7 releases the brake on the progenitors: they divide and their '
            'blue effector daughters kill. Watch "progenitor T cells, %" and the kills.',
            'Set tcell_progenitor_fraction to 0 and tcell_exhaustion_limit to 1 (every T cell '
            'ends terminally exhausted), Reset: the drug no longer helps.',
        ),
        "summary": "T-cell states and lymph-node priming: anti-PD-1 acts through progenitors.",
        "lesson": (
            "In chronic stimulation CD8 T cells become exhausted in two steps: stem-like "
            "progenitors (TCF-1+) keep dividing and supply effectors, which exhaust for good "
            "after repeated stimulation (Miller et al. 2019). PD-1 blockade works through the "
            "progenitors: they proliferate and their daughters kill (Im et al. 2016); "
            "terminally exhausted cells do not respond. Here new T cells are primed in the "
            "lymph node from the antigen of dying cancer cells and arrive 5 days later (the "
            "clones primed before day 0 arrive from day 1); half arrive as progenitors. "
            "Notice: the kills climb after the dose. Try: no progenitors and an exhaustion "
            "limit of 1."
        ),
        "params": {"founder_antigens": 3, "mutation_rate": 0.01, "tcell_influx": 1.5,
                   "anti_pd1_start_day": 7.0, "lymph_node_priming": True,
                   "tcell_progenitor_fraction": 0.5},
    },
    "mc38_like": {
        "watch_days": 21,  # the lesson's time span (dashboard: "Run to day")
        "species": "mouse",  # abm.species: rodent antibodies twice weekly, half-life 4.5 d
        "steps": (
            'Run to day 21; anti-PD-1 is given on days 7, 10.5, 14 and 17.5 (dashed lines).',
            'Many antigens and full MHC-I: T cells crowd in, PD-L1 rises across the tumour, '
            'then the drug releases the brake and the burden falls.',
            'Switch on "Compare with an untreated twin" and run to day 21: the twin, the same '
            'tumour without the drug, grows beside the treated one.',
        ),
        "summary": "MC38-like hot mouse tumour: antigenic, infiltrated, responds to anti-PD-1.",
        "lesson": (
            "A mouse study, modelled on MC38 colon carcinoma: a highly mutated tumour with many "
            "neoantigens and full MHC-I, well infiltrated by CD8 T cells, that responds to "
            "anti-PD-1 (Mosely et al. 2017). The species preset is the mouse one: a rodent "
            "antibody twice weekly for four doses with a half-life of days, not the 3-weekly "
            "human schedule. Notice: T cells arrive early and PD-L1 rises as they engage; "
            "after the first dose kills rise. Try: the B16F10-like cold tumour, or start the "
            "drug later (a bigger tumour)."
        ),
        # tcell_influx 0.8: at 1.5 the untreated tumour was held near 1100-1500 cells at day
        # 21 and anti-PD-1 cleared it by day 12-14 in every seed (T/C 0)
        "params": {"founder_antigens": 4, "founder_mhc": 1.0, "mutation_rate": 0.01,
                   "tcell_influx": 0.8, "treg_influx": 0.2, "mdsc_influx": 0.2,
                   "anti_pd1_start_day": 7.0},
    },
    "b16f10_like": {
        "watch_days": 21,  # the lesson's time span (dashboard: "Run to day")
        "species": "mouse",  # abm.species: rodent antibodies twice weekly, half-life 4.5 d
        "steps": (
            'Run to day 21; anti-PD-1 is given on days 7, 10.5, 14 and 17.5, as for mc38_like.',
            'Few T cells find the tumour and fewer recognise it (low MHC-I): the drug has '
            'little to release and the tumour grows on.',
            'Give a vaccine on day 0, or raise founder_mhc to 1, and compare.',
        ),
        "summary": "B16F10-like cold mouse tumour: low MHC-I, few T cells, resists anti-PD-1.",
        "lesson": (
            "A mouse study, modelled on B16F10 melanoma: few presented antigens and very low "
            "MHC-I, a non-inflamed infiltrate dominated by suppressive cells, and no response "
            "to anti-PD-1 alone (Mosely et al. 2017). Same mouse schedule as mc38_like. "
            "Notice: few T cells, little IFN-gamma and PD-L1, the dose lines pass with no "
            "change. Try: a vaccine, or anti-CTLA-4 (which in mice also depletes Tregs)."
        ),
        "params": {"founder_antigens": 1, "founder_mhc": 0.2, "mutation_rate": 0.01,
                   "tcell_influx": 0.5, "treg_influx": 0.3, "mdsc_influx": 0.4,
                   "anti_pd1_start_day": 7.0},
    },
}


def scenario_params(name: str) -> dict[str, Any]:
    """The parameter overrides of scenario ``name`` (a copy)."""
    if not isinstance(name, str) or name not in SCENARIOS:
        from abm.params import did_you_mean, value_text

        raise ValueError(f"unknown scenario {value_text(name)}{did_you_mean(name, SCENARIOS)} "
                         f"(expected one of {', '.join(SCENARIOS)})")
    return dict(SCENARIOS[name]["params"])
