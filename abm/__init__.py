"""abm: an agent-based model of the tumour microenvironment, on Mesa."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["FastTumorModel", "TumorModel", "__version__"]


def __getattr__(name: str) -> Any:
    """``abm.TumorModel`` and ``abm.FastTumorModel`` are imported on first use: the ``abm``
    command starts (and answers Ctrl-C or ``--help``) before Mesa and numpy are loaded, and
    the fast engine loads numba only when it is used."""
    if name == "TumorModel":
        from abm.model import TumorModel

        return TumorModel
    if name == "FastTumorModel":
        from abm.fast import FastTumorModel

        return FastTumorModel
    raise AttributeError(f"module 'abm' has no attribute {name!r}")
