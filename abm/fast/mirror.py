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
    "abm.agents.base.ImmuneCell.next_site": "27efdfa190f0",
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
    "abm.model.TumorModel._recruit_ctls": "a5e89dfb0a04",
    "abm.model.TumorModel._new_ctl": "33b2be96ce13",
    "abm.model.TumorModel._primed_antigen": "9b11c0d6cfd5",
    "abm.model.TumorModel.deplete_tregs": "e7e4a97235ea",
    "abm.model.TumorModel.infuse_cart": "36701201a2c6",
    "abm.model.TumorModel._census_killers": "a757a5f4d3a9",
}


def _resolve(qualname: str):
    module, cls, attr = qualname.rsplit(".", 2)
    member = inspect.getattr_static(getattr(importlib.import_module(module), cls), attr)
    return member.fget if isinstance(member, property) else member


def fingerprint(qualname: str) -> str:
    """A hash of the method's code without its docstring and comments (12 hex digits)."""
    source = textwrap.dedent(inspect.getsource(_resolve(qualname)))
    func = ast.parse(source).body[0]
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        func.body = body[1:] or [ast.Pass()]
    func.decorator_list = []
    return hashlib.sha256(ast.dump(func).encode()).hexdigest()[:12]


def changed() -> list[str]:
    """The mirrored methods whose code differs from what the fast engine mirrors."""
    return [name for name, digest in MIRRORED.items() if fingerprint(name) != digest]


if __name__ == "__main__":
    print("MIRRORED = {")
    for name in MIRRORED:
        print(f'    "{name}": "{fingerprint(name)}",')
    print("}")
