"""The fast engine: ``TumorModel``'s rules on numpy arrays with numba kernels
(``abm.fast.engine.FastTumorModel``; docs/engines.md)."""

from abm.fast.engine import FastTumorModel, unsupported

__all__ = ["FastTumorModel", "unsupported", "warm_up"]

# scenarios that between them call every kernel and field solver within a few hours
_WARM_UP = (("escape", {"treg_influx": 2.0, "mdsc_influx": 2.0}), ("cart", {}),
            ("macrophage_niche", {}), ("nk_surveillance", {}), ("progenitor_burst", {}))


def warm_up() -> float:
    """Compile the fast engine's kernels and field solvers into numba's on-disk cache, so that
    the first run does not wait for them (about 10 s the first time, about 1 s once cached;
    ``make setup`` calls it). Runs a few hours of small models; returns the seconds taken."""
    import time

    start = time.perf_counter()
    for scenario, extra in _WARM_UP:
        model = FastTumorModel.from_scenario(scenario, rng=0, width=30, height=30,
                                             initial_tumor_cells=100, **extra)
        model.administer("cart")
        model.run_for(12)
    return time.perf_counter() - start
