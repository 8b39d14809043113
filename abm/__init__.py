"""abm: an agent-based model of the tumour microenvironment, on Mesa."""

from typing import Any

from abm.model import TumorModel

__version__ = "0.1.0"
__all__ = ["FastTumorModel", "TumorModel", "__version__"]


def __getattr__(name: str) -> Any:
    """``abm.FastTumorModel`` is imported on first use (it loads numba)."""
    if name == "FastTumorModel":
        from abm.fast import FastTumorModel

        return FastTumorModel
    raise AttributeError(f"module 'abm' has no attribute {name!r}")
