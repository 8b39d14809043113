"""The fast engine: ``TumorModel``'s rules on numpy arrays with numba kernels
(``abm.fast.engine.FastTumorModel``; docs/engines.md)."""

from abm.fast.engine import FastTumorModel, unsupported

__all__ = ["FastTumorModel", "unsupported"]
