"""The fast engine: ``TumorModel``'s rules on numpy arrays with numba kernels
(``abm.fast.engine.FastTumorModel``; docs/engines.md)."""

from collections.abc import Callable

from abm.fast.engine import FastTumorModel, unsupported

__all__ = ["FastTumorModel", "compile_pending", "ensure_compiled", "unsupported", "warm_up"]

COMPILING = ("compiling the fast engine's kernels into numba's on-disk cache (the first run of "
             "this code on this machine: about 15-45 s{where}; `make setup` does it in advance, "
             "and later runs start in about a second)")

# scenarios that between them call every kernel and field solver within a few hours
_WARM_UP = (("escape", {"treg_influx": 2.0, "mdsc_influx": 2.0}), ("cart", {}),
            ("macrophage_niche", {}), ("nk_surveillance", {}), ("progenitor_burst", {}))


def warm_up() -> float:
    """Compile the fast engine's kernels and field solvers into numba's on-disk cache, so that
    the first run does not wait for them (15-45 s the first time, about 1 s once cached;
    ``make setup`` calls it). Runs a few hours of small models; returns the seconds taken."""
    import time

    start = time.perf_counter()
    for scenario, extra in _WARM_UP:
        model = FastTumorModel.from_scenario(scenario, rng=0, width=30, height=30,
                                             initial_tumor_cells=100, **extra)
        model.administer("cart")
        model.run_for(12)
    return time.perf_counter() - start


def ensure_compiled(say: Callable[[str], None], where: str = "") -> bool:
    """Before fast-engine runs (``abm run``, ``abm sweep``): if some kernel or field solver is
    not in numba's on-disk cache (:func:`compile_pending`), ``say`` so (:data:`COMPILING`,
    ``where`` added to it) and compile them all now (:func:`warm_up`). A run compiles only the
    kernels it calls, so compiling just those would leave the others (the innate cells', say)
    pending, and every later run would announce a compile it does not do; and a sweep's
    worker processes would each compile the same kernels. Returns whether it compiled."""
    if not compile_pending():
        return False
    say(COMPILING.format(where=where))
    warm_up()
    return True


def _tests_only() -> tuple:
    """Compiled functions no run calls (the tests call them, to check a kernel's parts)."""
    from abm.fast import fields, kernels

    return (kernels.seed, fields._apply, fields._apply_dot)


def compile_pending() -> bool:
    """Whether the next fast-engine run will compile: some cached kernel or field solver of
    ``abm.fast`` has no compiled code in numba's on-disk cache for the current source (a fresh
    machine, a cleared cache or changed code). Read from the cache's index files, without
    compiling; False when that cannot be told."""
    from numba.core.registry import CPUDispatcher

    from abm.fast import census, fields, kernels
    from abm.fast import engine as _engine

    try:
        tests_only = _tests_only()
        for module in (kernels, census, fields, _engine):
            for item in vars(module).values():
                cache = getattr(item, "_cache", None) if isinstance(item, CPUDispatcher) else None
                if cache is None or not getattr(cache, "_enabled", False) or (
                        item.targetoptions.get("inline") == "always") or item in tests_only:
                    continue  # (an inlined helper is compiled into its callers, not cached)
                if not cache._cache_file._load_index():  # missing, or for other source
                    return True
    except Exception:  # numba's internals moved: say nothing rather than guess
        return False
    return False
