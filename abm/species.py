"""Species presets: the drug schedules and antibody kinetics of a mouse study or a clinic.

The model's tumour grows at mouse pace (a 23 h division time, a 1.5 mm field), while the
defaults of the drug parameters are the clinical labels (3-weekly infusions, half-lives of 2-3
weeks). A species preset sets the parameters that differ between a syngeneic mouse study and a
patient, each with its source:

- ``mouse``: preclinical. Surrogate anti-mouse antibodies (rat, hamster or mouse IgG, e.g.
  anti-PD-1 RMP1-14 or DX400, anti-CTLA-4 9H10 or 9D9) given twice weekly (every 3.5 days) for
  3-4 doses, with the half-life of a rodent IgG in an immunocompetent mouse (days, not
  weeks). Anti-CTLA-4 depletes intratumoural Tregs through Fc receptors (Simpson et al. 2013;
  Selby et al. 2013).
- ``human``: clinical. Pembrolizumab and ipilimumab as on their labels (every 3 weeks;
  half-lives 22 and 15 days), and NO Treg depletion by anti-CTLA-4: ipilimumab and tremelimumab
  do not deplete intratumoural FOXP3+ Tregs in patients (Sharma et al. 2019), so in the human
  preset anti-CTLA-4 acts only through priming (``anti_ctla4_priming_boost``).

Order (``abm.params.resolve``, the one place parameters are resolved): the defaults, then the
species preset, then the scenario's own parameters, then the user's overrides (``--set``,
``[parameters]``, an arm's table, a patient's draws). So a scenario or a user can still change
any value the species sets. The species is the one given (``--species``, ``[sweep] species``,
``species=``), else the scenario's ``"species"``, else none: no preset, the defaults as they are
(which equal the ``human`` preset except ``anti_ctla4_treg_depletion`` = 0.8 and
``anti_pd1_doses`` = 4 instead of 35, kept so results without a species do not change).
"""

from __future__ import annotations

from typing import Any

from abm.params import value_text

# name -> {"summary": one line, "values": {parameter: (value, source)}}. Units are those of the
# parameter in abm.params (``species_table`` shows them).
SPECIES: dict[str, dict[str, Any]] = {
    "mouse": {
        "summary": "preclinical syngeneic study: rodent antibodies twice weekly, half-life days",
        "values": {
            "anti_pd1_interval_days": (
                3.5, "twice-weekly intraperitoneal dosing (every 3-4 days) of syngeneic studies; "
                "Lindauer et al. 2017 dosed the anti-mouse PD-1 DX400 on days 0 and 4 in MC38"),
            "anti_pd1_doses": (
                4, "3-4 doses in syngeneic studies (modelling choice within that range)"),
            "anti_pd1_half_life_days": (
                4.5, "rodent IgG in immunocompetent mice: 4-5 d for murine IgG2a in BALB/c mice "
                "(Sharkey et al. 1991); rat IgG 5.3-8.1 d in rats (Bazin-Redureau et al. 1997); "
                "anti-drug antibodies appear after 4-7 d in C57BL/6 mice (Myzithras et al. "
                "2016), so the lower end"),
            "anti_ctla4_interval_days": (
                3.5, "twice-weekly dosing of anti-CTLA-4 (9H10, 9D9) in syngeneic studies, as "
                "for anti-PD-1"),
            "anti_ctla4_doses": (
                3, "3 doses (modelling choice within the 3-4 doses of syngeneic studies)"),
            "anti_ctla4_half_life_days": (
                4.5, "as anti-PD-1: a rodent IgG in the mouse (Sharkey et al. 1991)"),
            "anti_ctla4_treg_depletion": (
                0.8, "Fc-dependent depletion of intratumoural Tregs by anti-CTLA-4 in mice "
                "(Simpson et al. 2013 J Exp Med 210:1695; Selby et al. 2013 Cancer Immunol Res "
                "1:32: a rapid and dramatic reduction with the IgG2a isotype); the value is "
                "the default's modelling choice"),
        },
    },
    "human": {
        "summary": "clinical: pembrolizumab / ipilimumab labels, no Treg depletion",
        "values": {
            "anti_pd1_interval_days": (21.0, "pembrolizumab 200 mg every 3 weeks (label)"),
            "anti_pd1_doses": (
                35, "pembrolizumab for up to 24 months (label): 35 infusions every 3 weeks"),
            "anti_pd1_half_life_days": (
                22.0, "pembrolizumab t1/2 22 d (label); nivolumab 26.7 d"),
            "anti_ctla4_interval_days": (21.0, "ipilimumab every 3 weeks x 4 (label)"),
            "anti_ctla4_doses": (4, "ipilimumab every 3 weeks x 4 (label)"),
            "anti_ctla4_half_life_days": (
                15.0, "ipilimumab 15.4 d (CV 34%) in the FDA's approval summary (Saung et al. "
                "2021 Oncologist 26:797, Table 2)"),
            "anti_ctla4_treg_depletion": (
                0.0, "ipilimumab (IgG1) and tremelimumab (IgG2) do not deplete intratumoural "
                "FOXP3+ Tregs in melanoma, prostate and bladder cancer (Sharma et al. 2019 "
                "Clin Cancer Res 25:1233); anti-CTLA-4 then acts through priming only"),
        },
    },
}


def check_species(name: Any) -> str:
    """``name`` if it is a species preset, else ``ValueError`` listing the allowed names."""
    if not isinstance(name, str) or name not in SPECIES:
        raise ValueError(
            f"unknown species {value_text(name)}: expected one of {', '.join(SPECIES)}"
        )
    return name


def species_params(name: str) -> dict[str, Any]:
    """The parameter values of species preset ``name`` (a copy)."""
    return {k: v for k, (v, _src) in SPECIES[check_species(name)]["values"].items()}


def scenario_species(scenario: str | None) -> str | None:
    """The species a scenario asks for (its ``"species"`` key), or None."""
    if scenario is None:
        return None
    from abm.scenarios import SCENARIOS

    name = SCENARIOS.get(scenario, {}).get("species")
    return None if name is None else check_species(name)


def effective_species(scenario: str | None, species: str | None) -> str | None:
    """The species that applies: the one given, else the scenario's, else None."""
    if species is not None:
        return check_species(species)
    return scenario_species(scenario)


def species_table() -> str:
    """The presets as a Markdown table (for docs/clinical.md)."""
    from abm.params import PARAMS

    names = list(dict.fromkeys(k for s in SPECIES.values() for k in s["values"]))
    lines = ["| parameter | unit | default | " + " | ".join(SPECIES) + " |",
             "|---|---|---|" + "---|" * len(SPECIES)]
    for pname in names:
        cells = []
        for spec in SPECIES.values():
            value = spec["values"].get(pname)
            cells.append("(default)" if value is None else f"{value[0]:g}")
        p = PARAMS[pname]
        lines.append(f"| `{pname}` | {p.unit} | {p.default} | " + " | ".join(cells) + " |")
    lines.append("")
    for sname, spec in SPECIES.items():
        lines.append(f"Sources, `{sname}` ({spec['summary']}):")
        lines.append("")
        for pname, (_value, source) in spec["values"].items():
            lines.append(f"- `{pname}`: {source}")
        lines.append("")
    return "\n".join(lines)
