"""Which Mesa methods the fast engine mirrors, with a fingerprint of each as it was mirrored.

``tests/test_fast_engine.py`` recomputes the fingerprints: when one of these methods changes
(its code, not its docstring or comments), the test fails until the change is made in the
fast engine too (``abm/fast/kernels.py``, ``abm/fast/engine.py``) and the table below is
updated. Print the current table with ``python -m abm.fast.mirror``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import textwrap

MIRRORED = {
    "abm.agents.cancer.CancerCell.divide_if_room": "9c2b417e65a6",
    "abm.agents.cancer.CancerCell.divide": "da1685aa7b97",
    "abm.agents.cancer.CancerCell.mutate": "5988a23fc0e9",
    "abm.agents.cancer.CancerCell.antigenicity": "c7c8f6be001c",
    "abm.agents.cancer.CancerCell.pdl1": "ef3954fb9519",
    "abm.agents.base.ImmuneCell.outlived": "96d1b33b2e8c",
    "abm.agents.base.ImmuneCell.tgfb_response": "15cb61391e45",
    "abm.agents.base.ImmuneCell.next_site": "ebc7fab806d5",
    "abm.agents.base.ImmuneCell.migrate": "eb828242a77d",
    "abm.agents.base.ImmuneCell.hunt": "76b06a1a8aaf",
    "abm.agents.base.ImmuneCell.advance": "dd73eca9943f",
    "abm.agents.tcell.TCell.__init__": "a1804e16da6a",
    "abm.agents.tcell.TCell.step": "8564eccb7542",
    "abm.agents.tcell.TCell.recognises": "6d221ffdd8f3",
    "abm.agents.tcell.TCell.find_target": "b02454879178",
    "abm.agents.tcell.TCell.attack": "32f91cfa8319",
    "abm.agents.tcell.TCell.pd1_block": "bbe9804e42fe",
    "abm.agents.tcell.TCell.kill_probability": "687e2494bb00",
    "abm.agents.tcell.TCell.base_kill_prob": "859407d34ef1",
    "abm.agents.tcell.TCell.proliferate": "74648bc34fcc",
    "abm.agents.tcell.TCell.daughter": "beddb68db04d",
    "abm.agents.tcell.CARTCell.__init__": "2d2736e7cc62",
    "abm.agents.tcell.CARTCell.recognises": "a1224b91b5bd",
    "abm.agents.tcell.CARTCell.daughter": "145d5cdc94cf",
    "abm.agents.suppressors.Suppressor.__init__": "c6c6b633f9c1",
    "abm.agents.suppressors.Suppressor.step": "63d70bd42010",
    "abm.tissue.Tissue.swap": "0d93517c8990",
    "abm.tissue.Tissue.add_daughter": "b6d8aeafd286",
    "abm.model.TumorModel.step": "5128d9beb071",
    "abm.model.TumorModel._seed_tumour": "478b07591e5b",
    "abm.model.TumorModel.entry_site": "279d78fcbc6e",
    "abm.model.TumorModel._cancer_deaths": "4df40ac1d60b",
    "abm.model.TumorModel._step_cancer_cells": "8ecdc659289f",
    "abm.model.TumorModel._step_in_random_order": "30f6291fccc7",
    "abm.model.TumorModel._admit": "9f637dfbcfc4",
    "abm.model.TumorModel._recruit": "a1262c94d615",
    "abm.model.TumorModel._recruit_ctls": "2aeee0091284",
    "abm.model.TumorModel._new_ctl": "33b2be96ce13",
    "abm.model.TumorModel._primed_antigen": "9b11c0d6cfd5",
    "abm.model.TumorModel.deplete_tregs": "e7e4a97235ea",
    "abm.model.TumorModel.infuse_cart": "f6b150fb358c",
    "abm.model.TumorModel._census_killers": "a757a5f4d3a9",
    "abm.agents.cancer.CancerCell.die": "e29fbec54381",
    "abm.agents.tcell.TCell.exhausted": "8a8d5936d9d7",
    "abm.agents.tcell.TCell.expand": "395c9f2f604a",
    "abm.model.TumorModel.m2_map": "6c3b1a76dd16",
    "abm.agents.macrophage.Macrophage.__init__": "4c738933e490",
    "abm.agents.macrophage.Macrophage.step": "6973d022a610",
    "abm.agents.macrophage.Macrophage.signals": "0983c98c8b2e",
    "abm.agents.macrophage.Macrophage.polarise": "10363f26f398",
    "abm.agents.macrophage.Macrophage.attack": "5935e57ec633",
    "abm.agents.macrophage.Macrophage.roam": "727c56c912e0",
    "abm.agents.nk.NKCell.__init__": "be90e010b138",
    "abm.agents.nk.NKCell.spent": "785dbd11ba20",
    "abm.agents.nk.NKCell.activation": "a5c6b79b8d2f",
    "abm.agents.nk.NKCell.kill_probability": "9349aec6a2c0",
    "abm.agents.nk.NKCell.step": "ad6c2459e16d",
    "abm.agents.nk.NKCell.find_target": "c04ce13fe5d6",
    "abm.agents.nk.NKCell.attack": "e99e7b13f1e8",
    # the shared per-hour code the fast engine runs as cheaper solves and compiled passes
    # (abm/fast/fields.py, abm/fast/census.py)
    "abm.model.TumorModel._update_fields": "af95b19b62d9",
    "abm.model.TumorModel._collapse_vessels": "c2d367d4b479",
    "abm.model.TumorModel._draw_dividers": "5da8cda9d4c0",
    "abm.model.TumorModel._draw_cancer_deaths": "d54b3d30e9b2",
    "abm.model.TumorModel._draw_debris_clearance": "38a04f2a98c2",
    "abm.model.TumorModel.division_probability_map": "1ec3a59f5394",
    "abm.model.TumorModel._census": "77314c96dff3",
    "abm.model._neighbourhood": "c519126efff8",
    "abm.model.TumorModel._update_oxygen_effects": "75ebc729b94b",
    "abm.model.TumorModel.ifng_response": "b4ea865136b8",
    "abm.tissue.Tissue.relax_pdl1": "81a7b70c2ae8",
    "abm.fields.Field.step": "a3fbe6da1d31",
    "abm.fields.ReactionField.step": "efeef044d651",
    "abm.fields.ReactionField._precondition": "67f0edef1fcc",
    "abm.fields.ReactionField._apply": "033bb41c4bed",
    "abm.fields.ReactionField._spectral_solve": "ca21f99f1b44",
    "abm.fields.ReactionField.unpin": "52227e4e4985",
    # added after a mutation audit found rule changes that passed this table: the grid
    # helpers, the cells' placement and the methods it had left out ...
    "abm.compat.free_neighbours": "3e132b77de6e",
    "abm.compat.neighbour_agents": "359297f9e4be",
    "abm.tissue.Tissue.place": "0b84cb9a88b8",
    "abm.tissue.Tissue.remove": "de57cf8b0d87",
    "abm.tissue.Tissue.move": "1ecca5aa96dd",
    "abm.tissue.Tissue.record": "ffe10aefeea0",
    "abm.agents.base.TissueCell.place": "677a166c75cf",
    "abm.agents.base.TissueCell.move_to": "0361c307527f",
    "abm.agents.base.TissueCell.die": "d0d96a812b58",
    "abm.agents.cancer.CancerCell.__init__": "751f1d475974",
    "abm.agents.cancer.CancerCell.step": "878e2783cce8",
    "abm.agents.cancer.CancerCell.division_probability": "a6490f7664e4",
    "abm.agents.cancer.CancerCell.oxygen": "59854a2174b0",
    "abm.agents.cancer.CancerCell.hypoxic": "d9e89088ee11",
    "abm.agents.tcell.TCell.progenitor": "fb7312f5bc6f",
    # ... and each agent class's own data (class attributes such as a Treg's
    # LIFESPAN_PARAM, the kinds' numbers): a class's entry hashes its statements that are
    # not methods
    "abm.agents.base.Kind": "89c3cecc7562",
    "abm.agents.base.TissueCell": "783cbc4ca7aa",
    "abm.agents.base.ImmuneCell": "ff8ea4d71256",
    "abm.agents.cancer.CancerCell": "ad9d1d121d2c",
    "abm.agents.cancer.Debris": "2e3ebd06366c",
    "abm.agents.tcell.TCell": "b970613aefb3",
    "abm.agents.tcell.CARTCell": "a06c8b13241c",
    "abm.agents.suppressors.Suppressor": "e86afde34a77",
    "abm.agents.suppressors.Treg": "4c225a72d00e",
    "abm.agents.suppressors.MDSC": "892bc6bc43a7",
    "abm.agents.macrophage.Macrophage": "c6fb6423d1b6",
    "abm.agents.nk.NKCell": "ced6feca1627",
}


# Every parameter of abm.params is either honoured by the fast engine (HONOURED: read by its
# kernels or by the code it shares with TumorModel) or read only by parts it refuses
# (REFUSED_FEATURES: inert while ``unsupported`` lets a model through). A new parameter is in
# neither, and tests/test_fast_engine.py fails until it is placed: a new rule cannot be ignored
# by the fast engine without anyone deciding so.
HONOURED = frozenset({
    "width", "height", "initial_tumor_cells", "vessel_density", "vessel_collapse_days",
    "division_time_h", "founder_antigens", "founder_mhc", "founder_pdl1", "mutation_rate",
    "mhc_loss_factor", "pdl1_mutation_gain", "antigen_loss_rate",
    "initial_antigen_negative_fraction", "ifng_cytostasis", "mdsc_growth_boost",
    "antigen_visibility", "mutation_weight_lose_antigen", "mutation_weight_gain_antigen",
    "mutation_weight_lower_mhc", "mutation_weight_raise_pdl1", "tcell_influx",
    "recruitment_half_saturation", "tcell_speed", "chemotaxis_bias",
    "chemokine_detection_limit", "tcell_infiltration",
    "tcell_kill_prob", "tcell_exhaustion_limit", "tcell_exhausted_speed",
    "tcell_max_divisions", "tcell_proliferation_prob", "tcell_lifespan_days", "pd1_inhibition",
    "pdl1_induction", "pdl1_ifng_half_max", "pdl1_ifng_hill", "pdl1_induction_time_h",
    "ifng_secretion", "ifng_uptake", "ifng_diffusion", "ifng_half_life_h",
    "chemokine_secretion", "chemokine_ifng_secretion", "chemokine_diffusion",
    "chemokine_half_life_h", "tgfb_secretion_tumor", "tgfb_secretion_mdsc", "tgfb_diffusion",
    "tgfb_half_life_h", "tgfb_half_max", "field_step_h", "oxygen_supply", "oxygen_diffusion",
    "oxygen_decay", "oxygen_uptake", "oxygen_immune_relative_uptake",
    "oxygen_proliferation_threshold",
    "oxygen_proliferation_saturation", "hypoxic_threshold", "necrosis_threshold",
    "necrosis_max", "necrosis_time_h", "debris_clearance_days", "apoptosis_rate",
    "treg_influx", "treg_suppression", "treg_lifespan_days", "mdsc_influx", "mdsc_suppression",
    "mdsc_lifespan_days", "suppressor_speed", "suppression_radius_sites", "anti_pd1_start_day",
    "anti_pd1_interval_days", "anti_pd1_doses", "anti_pd1_dose", "anti_pd1_half_life_days",
    "anti_pd1_ec50", "anti_ctla4_start_day", "anti_ctla4_interval_days", "anti_ctla4_doses",
    "anti_ctla4_dose", "anti_ctla4_half_life_days", "anti_ctla4_ec50",
    "anti_ctla4_treg_depletion", "anti_ctla4_priming_boost", "vaccine_start_day",
    "vaccine_interval_days", "vaccine_doses", "vaccine_dose", "vaccine_antigens",
    "vaccine_priming_delay_days", "vaccine_influx", "vaccine_response_half_life_days",
    "cart_start_day", "cart_dose", "cart_doses", "cart_interval_days", "cart_lifespan_days",
    "cart_exhaustion_limit", "cart_max_divisions",
    "macrophage_influx", "macrophage_lifespan_days", "macrophage_polarisation_time_h",
    "macrophage_kill_prob", "macrophage_ifng_secretion", "m2_growth_boost", "tgfb_secretion_m2",
    "nk_influx", "nk_kill_prob", "nk_kill_limit", "nk_lifespan_days", "nk_tgfb_suppression",
    "anti_csf1r_start_day", "anti_csf1r_interval_days", "anti_csf1r_doses", "anti_csf1r_dose",
    "anti_csf1r_half_life_days", "anti_csf1r_ec50", "anti_csf1r_depletion_rate",
    "anti_csf1r_recruitment_block", "anti_csf1r_repolarisation", "tcell_progenitor_fraction",
    "lymph_node_priming", "tcell_progenitor_lifespan_days", "tcell_progenitor_division_prob",
    "tcell_progenitor_pd1_inhibition", "ln_priming_delay_days", "ln_primed_before_start",
    "ln_antigen_half_life_days", "ln_shedding", "ln_necrotic_release"
})
REFUSED_FEATURES: frozenset[str] = frozenset()  # the fast engine mirrors the whole model
# the therapies (abm.agents.treatments.TREATMENTS) and kinds of cell (abm.agents.Kind) it knows
THERAPIES = ("anti_pd1", "anti_ctla4", "vaccine", "cart", "anti_csf1r")
KINDS = ("EMPTY", "CANCER", "TCELL", "CART", "TREG", "MDSC", "NECROTIC", "MACROPHAGE", "NK")

def _resolve(qualname: str):
    module, cls, attr = qualname.rsplit(".", 2)  # also module.function (cls = last module)
    member = inspect.getattr_static(getattr(importlib.import_module(module), cls), attr)
    return member.fget if isinstance(member, property) else member


def fingerprint(qualname: str) -> str:
    """A hash of the method's code without its docstring and comments (12 hex digits); for a
    class, of its statements that are not methods (its class attributes), without its
    docstring."""
    member = _resolve(qualname)
    source = textwrap.dedent(inspect.getsource(member))
    node = ast.parse(source).body[0]
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if isinstance(node, ast.ClassDef):
        node.body = [s for s in body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
        node.bases = node.keywords = []  # (the bases' own rules have entries of their own)
    else:
        node.body = body or [ast.Pass()]
    node.decorator_list = []
    return hashlib.sha256(ast.dump(node).encode()).hexdigest()[:12]


def changed() -> list[str]:
    """The mirrored methods whose code differs from what the fast engine mirrors."""
    return [name for name, digest in MIRRORED.items() if fingerprint(name) != digest]


if __name__ == "__main__":
    print("MIRRORED = {")
    for name in MIRRORED:
        print(f'    "{name}": "{fingerprint(name)}",')
    print("}")
