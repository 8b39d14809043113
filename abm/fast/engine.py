"""FastTumorModel: the Mesa model's rules on numpy arrays, with numba kernels for the agents.

The same constructor, step order, fields, therapies and reporters as ``abm.model.TumorModel``;
what differs is where the cells live. There are no Mesa agents on a grid: every site has a
``kind`` and an ``idx`` (the immune cell there), the cancer cells are only their trait layers
(``abm.tissue.Tissue``'s layers, the same arrays the Mesa engine keeps beside its grid), and the
immune cells are arrays of position, type and counters. The per-agent rules are numba kernels
(``abm.fast.kernels``) that follow the Mesa agents' methods one to one.

What is shared rather than copied: parameter validation (``abm.params.resolve``,
``validate_rng``, ``check_together``); the fields as ``abm.fields`` builds them; and the
therapies (``abm.agents.treatments``: schedules, antibody kinetics, the vaccine's response),
which touch the cells only through the hooks ``deplete_tregs`` and ``infuse_cart`` that each
engine implements. The hour's field updates (``abm.fast.fields``) and the census, niche maps,
cancer-cell deaths, debris clearance, divider draw and vessel collapse (``abm.fast.census``) are
cheaper versions of ``TumorModel``'s, with the same draws, tested against them.

The whole cast is mirrored: cancer cells, CTLs (effectors and progenitors) and CAR-T cells,
Tregs and MDSCs, macrophages (M1/M2) and NK cells; the draining lymph node is
``abm.lymphnode.LymphNode`` itself, fed with the antigens of the cells the kernels kill and of
the necrotic ones (``LymphNode.release``, as ``CancerCell.die`` does).
Random streams differ from the Mesa engine's: the two engines agree in distribution
(``tests/test_fast_engine.py``), and a seed gives the same run every time.
"""

from __future__ import annotations

import bisect
import ctypes
import numbers
from copy import deepcopy
from functools import partial
from itertools import accumulate
from operator import attrgetter, itemgetter
from typing import Any

import mesa
import numpy as np

from abm import params as P
from abm.agents.base import Kind
from abm.agents.cancer import MUTATIONS, N_ANTIGENS
from abm.agents.treatments import TREATMENTS
from abm.fast import census as C
from abm.fast import fields as F
from abm.fast import kernels as K
from abm.lymphnode import LymphNode
from abm.model import REPORTERS, TumorModel, _signature
from abm.tissue import Tissue

_EMPTY, _TCELL, _CART = int(Kind.EMPTY), int(Kind.TCELL), int(Kind.CART)
_OFFSETS = tuple(zip(K.DX.tolist(), K.DY.tolist(), strict=True))  # Mesa's neighbour order
_KILLERS = (_TCELL, _CART)
_SUPPRESSORS = (int(Kind.TREG), int(Kind.MDSC))
_INNATE = (int(Kind.MACROPHAGE), int(Kind.NK))
_IMMUNE_ARRAYS = {
    "ix": np.int64, "iy": np.int64, "ikind": np.int8, "antigen": np.int64,
    "exhaustion": np.int64, "ikills": np.int64, "divisions": np.int64,
    "engaged": np.bool_, "alive": np.bool_, "state": np.int8,
}


def unsupported(values: dict[str, Any]) -> str | None:
    """Why the fast engine cannot run these (resolved) parameters, or None if it can."""
    use_mesa = "use the Mesa engine (TumorModel, engine = \"mesa\")"
    # (parameter, refused, what the engine lacks, the fix): empty while the fast engine
    # mirrors the whole model; a rule added to the Mesa engine first is refused here by name
    checks: tuple[tuple[str, bool, str, str], ...] = ()
    for name, refused, what, fix in checks:
        if refused:
            return f"{name} = {values[name]!r}: the fast engine {what}; {use_mesa} or {fix}"
    return None


class _Layers(Tissue):
    """The tissue's per-site layers without Mesa's grid (the fast engine's cancer cells):
    ``kind`` and the trait layers, as ``abm.tissue.Tissue`` allocates them, and its
    ``relax_pdl1``. Cells are written by the kernels, not by ``place``/``move``."""

    def __init__(self, shape: tuple[int, int]) -> None:  # noqa: D107 - no grid
        self.grid = None
        self._allocate(shape)
        self.agent_at = None


class WatchedCancerCell:
    """A cancer cell of the fast engine, seen before a step (``FastTumorModel.watch_cancer_cells``).

    After that step, ``alive`` and ``fate`` say whether and how it left the tissue during it,
    as ``CancerCell.alive`` and ``CancerCell.fate`` do in the Mesa engine: ``"killed"`` (by a
    CTL or CAR-T cell), ``"apoptosis"`` or ``"necrosis"``; None and True if it is still there.
    The fast engine has no cell objects, so this follows the cell through that one step only
    (squeezing T cells move it; its daughters are not it)."""

    __slots__ = ("_i", "_watch")

    def __init__(self, watch: _Watch, i: int) -> None:
        self._watch = watch
        self._i = i

    @property
    def alive(self) -> bool:
        return bool(self._watch.alive[self._i])

    @property
    def fate(self) -> str | None:
        return self._watch.fate[self._i]


class _Watch:
    """The cancer cells watched through one step: ``index[x, y]`` is the watched cell at a site
    (-1 if none), ``alive`` and ``fate`` per watched cell."""

    def __init__(self, shape: tuple[int, int], xs: np.ndarray, ys: np.ndarray) -> None:
        self.index = np.full(shape, -1, dtype=np.int64)
        self.index[xs, ys] = np.arange(xs.size)
        self.alive = np.ones(xs.size, dtype=bool)
        self.fate = np.full(xs.size, None, dtype=object)

    def left(self, flat: np.ndarray, fate: np.ndarray | str) -> None:
        """The cells at these flat site indices (where they were watched) left with ``fate``."""
        index = self.index.ravel()
        i = index[flat]
        mine = i >= 0
        self.alive[i[mine]] = False
        fates = np.broadcast_to(np.asarray(fate, dtype=object), flat.shape)
        self.fate[i[mine]] = fates[mine]
        index[flat[mine]] = -1  # the site no longer holds a watched cell


_IMMUTABLE = (int, float, bool, str, type(None), np.generic)
_PLAIN = frozenset(_IMMUTABLE[:-1])  # the common ones, found by type


class _Collector(mesa.DataCollector):
    """``mesa.DataCollector`` for the model reporters of ``REPORTERS`` (attribute names):
    the same table, without deep-copying the immutable values (ints, floats, ...) it stores
    every hour. Anything else goes through ``mesa.DataCollector.collect``."""

    def collect(self, model) -> None:
        reporters = self.model_reporters
        plain = getattr(self, "_plain", None)
        if plain is None and getattr(self, "_validated", False):  # after Mesa's first collect
            plain = self._plain = not (self.agent_reporters or self.agenttype_reporters) and all(
                isinstance(r, str) for r in reporters.values())
        if not plain:
            super().collect(model)
            return
        if hasattr(self, "_collection_steps"):
            self._collection_steps.append(model.time)
        model_vars = self.model_vars
        read = self.__dict__.get("_read")  # the reporters' attributes, read in one call
        if read is None or read[0] is not reporters or read[1] != len(reporters):
            attrs, names = tuple(reporters.values()), tuple(reporters)
            many = len(attrs) > 1
            read = self._read = (reporters, len(attrs), attrgetter(*attrs) if many else None,
                                 itemgetter(*names) if many else None)
        try:
            values = read[2](model)
            columns = read[3](model_vars)
        except (AttributeError, TypeError):  # a missing attribute reads None (getattr's default)
            values = [getattr(model, attr, None) for attr in reporters.values()]
            columns = [model_vars[var] for var in reporters]
        for column, value in zip(columns, values, strict=True):
            column.append(value if type(value) in _PLAIN or isinstance(value, _IMMUTABLE)
                          else deepcopy(value))


class FastTumorModel(mesa.Model):
    """``TumorModel``'s rules on arrays, with compiled agent kernels (see the module docstring).

    Every keyword argument is a parameter from ``abm.params.PARAMS``; ``rng`` is the seed. A
    wrong name, type or out-of-range value raises the same ``ValueError`` as ``TumorModel``;
    a setting the fast engine did not model would raise ``ValueError`` naming the parameter
    (``unsupported``: none at present).
    """

    engine = "fast"
    _GROW = 256  # initial capacity of the immune-cell arrays

    def __init__(self, *, rng: int | str | None = None, **params: Any) -> None:
        values = P.resolve(None, params)
        seed = P.model_seed(rng)  # None: a drawn seed, recorded in model.seed
        P.check_together(values)
        reason = unsupported(values)
        if reason:
            raise ValueError(reason)
        width, height = values["width"], values["height"]
        self.mutation_weights = tuple(values[f"mutation_weight_{m}"] for m in MUTATIONS)
        self._cum_weights_of: tuple[tuple, np.ndarray] | None = None
        self._primed_cdf: tuple | None = None  # _primed_antigen's cdf, per census
        super().__init__(rng=seed)
        self.seed = seed
        self.p = values
        self.width, self.height = width, height
        shape = (width, height)
        self.tissue = _Layers(shape)
        self.agent_at = None  # no agent objects: read the layers (kind, antigens, ...)
        self.idx = np.full(shape, -1, dtype=np.int32)  # immune cell at each site
        self._alloc_immune(self._GROW)
        self.n_immune = np.zeros(1, dtype=np.int64)

        # the fields and per-hour maps, as TumorModel builds them (its own method)
        self._make_fields(shape)
        self.treg_near = np.zeros(shape, dtype=bool)
        self.mdsc_near = np.zeros(shape, dtype=bool)
        self.m2_near = np.zeros(shape, dtype=bool)
        self.ifng_hill = np.zeros(shape)

        self.kills = 0
        self.macrophage_kills = 0
        self.nk_kills = 0
        self.apoptoses = 0
        self.necroses = 0
        self.progenitor_divisions = 0
        self.dose_log: list[dict[str, Any]] = []
        self._next_clone = 0
        self.effects: dict[str, Any] = {}
        self._reset_effects()

        self._seed_tumour()
        self.vessels = self._place_vessels()
        self.collapsed_vessels: list[tuple[int, int]] = []
        self._setup_oxygen()
        F.accelerate(self.oxygen)  # the same solves, cheaper (abm.fast.fields)
        F.accelerate(self.ifng)
        self.linear_fields = F.LinearFields([self.chemokine, self.tgfb])
        self._field_scratch = None  # per-hour work arrays of F.update_fields
        self._field_thread = False  # F.update_fields solves oxygen on its own thread
        self.fields = {"oxygen": self.oxygen, "chemokine": self.chemokine, "ifng": self.ifng,
                       "tgfb": self.tgfb}
        self.treatments = {name: cls(self) for name, cls in TREATMENTS.items()}
        self.primed_by_antigen = np.zeros(N_ANTIGENS, dtype=np.int64)
        self.lymph_node: LymphNode | None = None
        if self.p["lymph_node_priming"]:
            self._census()  # the antigen counts the lymph node starts from
            self.lymph_node = LymphNode(self)  # abm.lymphnode, unchanged
        self._watch: _Watch | None = None  # cancer cells followed through the next step

        self.datacollector = _Collector(model_reporters=REPORTERS)
        self._census()
        self.datacollector.collect(self)

    @classmethod
    def from_scenario(cls, name: str, species: str | None = None,
                      **overrides: Any) -> FastTumorModel:
        """``TumorModel.from_scenario``: a named scenario plus overrides (``rng`` among them),
        with a ``species`` preset if given."""
        return TumorModel.from_scenario.__func__(cls, name, species, **overrides)

    # --- what is shared with TumorModel (its own functions, not copies) -------------------
    kind = TumorModel.kind
    antigens = TumorModel.antigens
    antigenicity = TumorModel.antigenicity
    pdl1_base = TumorModel.pdl1_base
    pdl1_induced = TumorModel.pdl1_induced
    car_negative = TumorModel.car_negative
    clone = TumorModel.clone
    pd1_occupancy = TumorModel.pd1_occupancy
    day = TumorModel.day
    administer = TumorModel.administer
    new_clone_id = TumorModel.new_clone_id
    _make_fields = TumorModel._make_fields
    _place_vessels = TumorModel._place_vessels
    _setup_oxygen = TumorModel._setup_oxygen
    _update_oxygen_effects = TumorModel._update_oxygen_effects
    _reset_effects = TumorModel._reset_effects
    run_for = TumorModel.run_for  # the same check of the duration
    _update_fields = F.update_fields  # TumorModel._update_fields, cheaper solves
    _collapse_vessels = C.collapse_vessels  # TumorModel._collapse_vessels, compiled
    ifng_response = TumorModel.ifng_response
    _draw_cancer_deaths = TumorModel._draw_cancer_deaths
    _draw_debris_clearance = TumorModel._draw_debris_clearance
    _draw_dividers = C.draw_dividers  # TumorModel._draw_dividers, compiled
    division_probability_map = TumorModel.division_probability_map
    burden_signal = TumorModel.burden_signal
    _poisson = TumorModel._poisson
    pdl1_map = TumorModel.pdl1_map
    necrotic_map = TumorModel.necrotic_map
    hypoxic_map = TumorModel.hypoxic_map
    ctl_contacts = TumorModel.ctl_contacts
    _census = C.take_census  # TumorModel._census, compiled

    def m2_map(self) -> np.ndarray:
        """``TumorModel.m2_map``: True where an M2 macrophage is (grid-shaped bool)."""
        return C.near_cells(self, Kind.MACROPHAGE, 0, state=1)

    # --- construction ---------------------------------------------------------------------
    def _alloc_immune(self, capacity: int) -> None:
        old = getattr(self, "ix", None)
        for name, dtype in _IMMUNE_ARRAYS.items():
            new = np.zeros(capacity, dtype=dtype)
            if old is not None:
                cur = getattr(self, name)
                new[: cur.size] = cur
            setattr(self, name, new)

    def _reserve(self, extra: int) -> None:
        """Room for ``extra`` more immune cells."""
        need = int(self.n_immune[0]) + extra
        if need > self.ix.size:
            self._alloc_immune(max(need, 2 * self.ix.size))

    def _seed_tumour(self) -> None:
        """``TumorModel._seed_tumour``: a compact disc of ``initial_tumor_cells`` at the centre
        (the CAR-target draws made for all cells at once)."""
        p = self.p
        xs, ys = np.indices((self.width, self.height))
        dist = np.hypot(xs - (self.width - 1) / 2, ys - (self.height - 1) / 2)
        order = np.argsort(dist, axis=None, kind="stable")[: p["initial_tumor_cells"]]
        x, y = np.divmod(order, self.height)
        founder = self.new_clone_id()
        car = self.rng.random(order.size) >= p["initial_antigen_negative_fraction"]
        t = self.tissue
        antigens = (1 << p["founder_antigens"]) - 1
        t.kind[x, y] = Kind.CANCER
        t.antigens[x, y] = antigens
        t.mhc[x, y] = p["founder_mhc"]
        t.pdl1_base[x, y] = p["founder_pdl1"]
        t.antigenicity[x, y] = p["founder_mhc"] * (
            1.0 - (1.0 - p["antigen_visibility"]) ** bin(antigens).count("1"))
        t.car_negative[x, y] = ~car
        t.clone[x, y] = founder
        if not car.all():
            t.clone[x[~car], y[~car]] = self.new_clone_id()

    # --- immune cells entering --------------------------------------------------------------
    def entry_site(self) -> tuple[int, int] | None:
        """``TumorModel.entry_site``: a free site at or next to a random vessel (or the domain
        edge if there are none); None if none was found in 20 tries."""
        kind = self.tissue.kind
        rng = self.rng
        for _ in range(20):
            if self.vessels:
                x, y = self.vessels[int(rng.integers(len(self.vessels)))]
            else:
                w, h = self.width - 1, self.height - 1
                if rng.integers(2):
                    x, y = (0, w)[int(rng.integers(2))], int(rng.integers(h + 1))
                else:
                    x, y = int(rng.integers(w + 1)), (0, h)[int(rng.integers(2))]
            if kind[x, y] == _EMPTY:
                return x, y
            free = [(x + dx, y + dy) for dx, dy in _OFFSETS
                    if 0 <= x + dx < self.width and 0 <= y + dy < self.height
                    and kind[x + dx, y + dy] == _EMPTY]
            if free:
                return free[int(rng.integers(len(free)))]
        return None

    def _add(self, site: tuple[int, int], kind: int, antigen: int = -1, divisions: int = 0,
             state: int = 0) -> None:
        self._reserve(1)
        i = int(self.n_immune[0])
        self.n_immune[0] += 1
        x, y = site
        self.ix[i], self.iy[i], self.ikind[i] = x, y, kind
        self.antigen[i], self.divisions[i] = antigen, divisions
        self.exhaustion[i] = self.ikills[i] = 0
        self.engaged[i], self.alive[i] = False, True
        self.state[i] = state
        self.tissue.kind[x, y] = kind
        self.idx[x, y] = i

    def _admit(self, n: int, kind: int, make=None) -> int:
        """``TumorModel._admit``: up to ``n`` new cells at entry sites. ``make``: a function
        giving the new cell's (antigen, state), called once the site is found, as the Mesa
        engine makes the cell after finding its site."""
        divisions = (self.p["tcell_max_divisions"] if kind == _TCELL else
                     self.p["cart_max_divisions"] if kind == _CART else 0)
        for entered in range(n):
            site = self.entry_site()
            if site is None:
                return entered
            antigen, state = make() if make else (-1, 0)
            self._add(site, kind, antigen, divisions, state)
        return n

    def _recruit(self, kind: int, rate_at_saturation: float) -> int:
        """``TumorModel._recruit``: Poisson recruitment at vessels, scaled by the burden. A
        macrophage arrives M2 with ``effects["macrophage_arrival_m2"]`` (``Macrophage``)."""
        make = None
        if kind == Kind.MACROPHAGE:
            def make():
                return -1, int(self.rng.random() < self.effects["macrophage_arrival_m2"])
        return self._admit(self._poisson(rate_at_saturation * self.burden_signal()), kind, make)

    def _recruit_ctls(self) -> None:
        """``TumorModel._recruit_ctls``: with the lymph node, the clones it primed that arrive
        now; without, CTLs primed against the antigens the tumour shows now; then the
        vaccine-primed ones (without the node)."""
        if self.lymph_node is not None:
            arriving = self.lymph_node.step()
            for antigen in range(N_ANTIGENS):
                self._admit(int(arriving[antigen]), Kind.TCELL,
                            lambda a=antigen: self._new_ctl(a))
        else:
            # no cancer cell, no antigen to prime against (mean_antigenicity is NaN then)
            antigenicity = self.mean_antigenicity if self.n_cancer else 0.0
            rate = self.p["tcell_influx"] * antigenicity * self.effects["priming"]
            n = self._poisson(rate * self.burden_signal())
            self._admit(n, Kind.TCELL, lambda: self._new_ctl(self._primed_antigen(), count=True))
        for rate, antigens in self.effects["specific_influx"]:
            self._admit(self._poisson(rate), Kind.TCELL,
                        lambda a=antigens: self._new_ctl(a[int(self.rng.integers(len(a)))],
                                                         count=True))

    def _new_ctl(self, antigen: int, count: bool = False) -> tuple[int, int]:
        """``TumorModel._new_ctl``: (antigen, state) of a new CTL, a progenitor (state 1) with
        probability ``tcell_progenitor_fraction`` (no draw when it is 0)."""
        share = self.p["tcell_progenitor_fraction"]
        if count:
            self.primed_by_antigen[antigen] += 1
        return int(antigen), int(share > 0 and self.rng.random() < share)

    def _primed_antigen(self) -> int:
        """``TumorModel._primed_antigen``: in proportion to the cells carrying each antigen."""
        counts = self.antigen_counts
        cached = self._primed_cdf
        if cached is None or cached[0] is not counts:  # the census makes a new array
            # Generator.choice(p=counts / total)'s normalised cumulative sum, in Python floats:
            # the same divisions and additions in the same order as np.cumsum's
            values = counts.tolist()
            total = sum(values)
            cdf = None
            if total:
                cdf = list(accumulate(v / total for v in values))
                cdf = [c / cdf[-1] for c in cdf]
            cached = self._primed_cdf = (counts, cdf)
        if cached[1] is None:
            return int(self.rng.integers(N_ANTIGENS))
        # Generator.choice's draw: one uniform, located in the cdf (searchsorted, "right")
        return bisect.bisect_right(cached[1], self.rng.random())

    # --- therapy hooks (abm.agents.treatments) ----------------------------------------------
    def deplete_tregs(self, kill: float) -> None:
        """``TumorModel.deplete_tregs``: each Treg dies with probability ``kill``."""
        n = int(self.n_immune[0])
        tregs = np.flatnonzero(self.alive[:n] & (self.ikind[:n] == Kind.TREG))
        dead = tregs[self.rng.random(tregs.size) < kill]
        self.tissue.kind[self.ix[dead], self.iy[dead]] = Kind.EMPTY
        self.idx[self.ix[dead], self.iy[dead]] = -1
        self.alive[dead] = False

    def infuse_cart(self, n: int) -> int:
        """``TumorModel.infuse_cart``: up to ``n`` CAR-T cells at vessel entry sites; returns
        how many found a site."""
        return self._admit(n, Kind.CART)

    # --- the hour -------------------------------------------------------------------------
    def _kernel_seed(self) -> int:
        """A seed for the next kernel (``kernels.seed``, or the kernel's ``seed_value``),
        drawn from ``model.rng``: ``int(rng.integers(2**32))``, which is the bit generator's
        ``next_uint32`` (numpy draws a full 32-bit range with it), called here through the bit
        generator's ctypes interface (a seventh of the cost; the same value and the same state
        after, ``tests/test_fast_engine.py``)."""
        return self._rng_handles()[1]()

    def _bits(self) -> np.ndarray:
        """``kernels.BITS_*``: the addresses through which compiled code draws from
        ``model.rng`` itself (``kernels.np_seed``, ``np_shuffle``, ``np_uniforms``)."""
        return self._rng_handles()[0]

    def _rng_handles(self) -> tuple[np.ndarray, Any]:
        """``(bits, next_uint32)`` of ``model.rng``'s bit generator, kept while the model has
        that generator (dropped when pickling: addresses in this process)."""
        kept = self.__dict__.get("_rng_handles_of")
        if kept is None or kept[0] is not self.rng:
            c = self.rng.bit_generator.ctypes
            bits = np.zeros(4, dtype=np.uintp)
            bits[K.BITS_NEXT_UINT32] = ctypes.cast(c.next_uint32, ctypes.c_void_p).value
            bits[K.BITS_NEXT_UINT64] = ctypes.cast(c.next_uint64, ctypes.c_void_p).value
            bits[K.BITS_NEXT_DOUBLE] = ctypes.cast(c.next_double, ctypes.c_void_p).value
            bits[K.BITS_STATE] = c.state_address
            # the generator, kept here, keeps its state (at state_address) alive
            kept = self._rng_handles_of = (self.rng, (bits, partial(c.next_uint32,
                                                                     c.state_address)))
        return kept[1]

    def __getstate__(self) -> dict[str, Any]:
        """Pickling (and deep copies): the model without the addresses of ``_rng_handles``
        (made again for the copy's generator when first needed)."""
        state = self.__dict__.copy()
        state.pop("_rng_handles_of", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """The copy's chemokine and suppressive-factor concentrations are views of its
        ``linear_fields``' stacked array again (a copy makes each view an array of its own, which
        the compiled update would no longer write: the copy's fields would stay frozen)."""
        self.__dict__.update(state)
        linear = self.linear_fields
        for i, field in enumerate(linear.fields):
            field.data = linear.data[i]
            field._growth, field._source_gain = linear.growth[i], linear.gain[i]

    def step(self) -> None:
        """One hour, in ``TumorModel.step``'s order."""
        self._reset_effects()
        for treatment in self.treatments.values():
            treatment.step()
        self._update_fields()
        self._step_cancer_cells()
        self._recruit_ctls()
        self.treg_near = C.near_cells(self, Kind.TREG, self.p["suppression_radius_sites"])
        self._step_killers()
        self._recruit(Kind.TREG, self.p["treg_influx"] * self.effects["treg_recruitment"])
        self._recruit(Kind.MDSC, self.p["mdsc_influx"])
        self._step_suppressors()
        self._recruit(Kind.MACROPHAGE,
                      self.p["macrophage_influx"] * self.effects["macrophage_recruitment"])
        self._recruit(Kind.NK, self.p["nk_influx"])
        self._step_innate()
        self._compact()
        self._watch = None  # the watched cells' fates are final for this step
        self._census()
        self.datacollector.collect(self)
        if self.n_cancer == 0:
            self.running = False

    def use_threads(self, threads: int) -> None:
        """Use ``threads`` threads for the fields (default 1): with two or more, oxygen is
        solved on a thread of its own while IFN-gamma and the linear fields are solved here,
        and the threads are shared out among their transforms. For one large model on an
        otherwise idle machine (the dashboard showing a whole tissue); a sweep already keeps
        every core busy with its own runs. Results do not depend on it."""
        if not isinstance(threads, numbers.Integral) or isinstance(threads, (bool, np.bool_)) \
                or threads < 1:
            raise ValueError(f"threads {threads!r} is not allowed: expected a whole number >= 1")
        threads = int(threads)
        self._field_thread = threads > 1
        self.oxygen.workers = max(1, threads // 2)
        self.ifng.workers = self.linear_fields.workers = max(1, threads - threads // 2)

    def watch_cancer_cells(self, xs: np.ndarray, ys: np.ndarray) -> list[WatchedCancerCell]:
        """The cancer cells at sites ``(xs, ys)`` as handles whose ``alive`` and ``fate`` tell,
        after the next step, whether and how each left during it (what the Mesa engine's
        ``agent_at[x, y]`` gives; ``abm.analysis.spatial.cancer_cells_and_contacts``). Call it
        before a step; it costs nothing in steps without a watch."""
        xs, ys = np.asarray(xs), np.asarray(ys)
        for name, v, size in (("xs", xs, self.width), ("ys", ys, self.height)):
            if v.ndim != 1 or (v.size and v.dtype.kind not in "iu"):
                raise ValueError(f"watch_cancer_cells: {name} {v.tolist()!r} is not allowed: "
                                 "expected a list of whole numbers (site coordinates)")
            if v.size and (v.min() < 0 or v.max() >= size):
                raise ValueError(f"watch_cancer_cells: {name} {v.tolist()!r} is not allowed: "
                                 f"expected coordinates from 0 to {size - 1}")
        if xs.size != ys.size:
            raise ValueError(f"watch_cancer_cells: {xs.size} xs and {ys.size} ys: expected "
                             "one of each per site")
        xs, ys = xs.astype(np.int64), ys.astype(np.int64)
        if not (self.kind[xs, ys] == Kind.CANCER).all():
            raise ValueError("watch_cancer_cells: every site must hold a cancer cell")
        self._watch = _Watch(self.kind.shape, xs, ys)
        return [WatchedCancerCell(self._watch, i) for i in range(xs.size)]

    def _step_cancer_cells(self) -> None:
        """``TumorModel._step_cancer_cells``: deaths and debris clearance, then the dividers in
        random order (``kernels.divide_cancer``). The draws are the Mesa engine's
        (``_draw_cancer_deaths``, ``_draw_debris_clearance``, ``_draw_dividers``: the same
        uniforms, cell by cell in ``np.nonzero``'s order), the passes compiled
        (``abm.fast.census``) over one list of the cancer cells and the debris, all but the
        divisions in one call (``census.cancer_hour``, which draws from ``model.rng``)."""
        t, p = self.tissue, self.p
        kind = t.kind
        shape = (self.width, self.height)
        self.mdsc_near = np.zeros(shape, dtype=bool)  # new maps each hour, as TumorModel's
        self.m2_near = np.zeros(shape, dtype=bool)
        need = 0
        while True:  # once, unless the lists need more room (then nothing was drawn)
            scratch = self._cancer_scratch(need)
            n_cancer, m, n_necrotic, r, seed = self._cancer_hour(scratch)
            if n_cancer >= 0:
                break
            need = m
        sites, dead, dead_apoptotic, dead_antigens, u, xs, ys, prob = scratch
        if m:
            apoptotic = dead_apoptotic[:m]
            if self._watch is not None:
                self._watch.left(dead[:m], np.where(apoptotic, "apoptosis", "necrosis"))
            if self.lymph_node is not None:  # CancerCell.die: necrosis releases antigen
                for antigens in dead_antigens[:m][~apoptotic].tolist():
                    self.lymph_node.release(antigens, "necrosis")
            self.apoptoses += m - n_necrotic
            self.necroses += n_necrotic
        if not r:
            return
        next_clone = self.__dict__.get("_next_clone_box")
        if next_clone is None:
            next_clone = self._next_clone_box = np.empty(1, dtype=np.int64)
        next_clone[0] = self._next_clone
        K.divide_cancer(xs[:r], ys[:r], kind, t.antigens, t.antigenicity, t.pdl1_base,
                        t.mhc, t.pdl1_induced, t.car_negative, t.clone, p["mutation_rate"],
                        self._cum_weights(), p["mhc_loss_factor"],
                        p["pdl1_mutation_gain"], p["antigen_loss_rate"], p["antigen_visibility"],
                        next_clone, seed)
        self._next_clone = int(next_clone[0])

    def _cancer_scratch(self, need: int) -> tuple[np.ndarray, ...]:
        """The lists of ``census.cancer_hour``: the sites (as large as the grid) and, with room
        for ``need`` cells (grown by a quarter beyond), the deaths, uniforms and dividers."""
        kind = self.tissue.kind
        kept = self.__dict__.get("_cancer_lists")
        if kept is None or kept[0].size != kind.size:
            kept = None
            sites = np.empty(kind.size, dtype=np.int64)
        else:
            sites = kept[0]
        if kept is None or need > kept[1].size:
            size = min(kind.size, max(need + need // 4, 1024))
            kept = self._cancer_lists = (
                sites, np.empty(size, dtype=np.int64), np.empty(size, dtype=np.bool_),
                np.empty(size, dtype=self.tissue.antigens.dtype), np.empty(size),
                np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64), np.empty(size))
        return kept

    def _cancer_hour(self, scratch: tuple[np.ndarray, ...]) -> tuple[int, int, int, int, int]:
        """``census.cancer_hour`` on the model with these lists (``_cancer_scratch``)."""
        t, p = self.tissue, self.p
        sites, dead, dead_apoptotic, dead_antigens, u, xs, ys, prob = scratch
        return C.cancer_hour(
            t.kind, sites, self._necrosis_prob,
            self._minus_expm1(-p["apoptosis_rate"] * 60.0),
            self._minus_expm1(-1.0 / (p["debris_clearance_days"] * 24.0)), t.antigens,
            t.antigenicity, t.pdl1_base, t.pdl1_induced, t.car_negative, t.clone, t.mhc, dead,
            dead_antigens, dead_apoptotic, u, self.ix, self.iy, self.ikind, self.alive,
            self.state, self.n_immune, int(p["suppression_radius_sites"]), self.mdsc_near,
            self.m2_near, self.oxygen_growth, self.ifng_hill, float(p["division_time_h"]),
            float(p["ifng_cytostasis"]), 1.0 + p["mdsc_growth_boost"],
            1.0 + p["m2_growth_boost"], xs, ys, prob, self._bits())

    def _minus_expm1(self, x: float) -> float:
        """``-np.expm1(x)`` (a per-hour probability from a rate), kept per value of ``x``."""
        kept = self.__dict__.setdefault("_expm1_of", {})
        key = float(x).hex()  # tells 0.0 from -0.0
        value = kept.get(key)
        if value is None:
            value = kept[key] = -np.expm1(x)
        return value

    def _cum_weights(self) -> np.ndarray:
        """The cumulative ``mutation_weights`` (kept while they are the same)."""
        if self._cum_weights_of is None or self._cum_weights_of[0] is not self.mutation_weights:
            self._cum_weights_of = (self.mutation_weights, np.cumsum(
                np.asarray(self.mutation_weights, dtype=np.float64)))
        return self._cum_weights_of[1]

    def _killer_params(self) -> tuple[np.ndarray, np.ndarray]:
        """The float and int parameter vectors of ``kernels.step_killers``: made again only
        when a value they are made from changed (the parameters, the PD-1 occupancy)."""
        p = self.p
        f = (p["chemotaxis_bias"], p["tcell_infiltration"], p["pd1_inhibition"],
             p["pdl1_induction"], self.pd1_occupancy, p["ifng_secretion"], p["tcell_kill_prob"],
             p["treg_suppression"], p["mdsc_suppression"], p["tgfb_half_max"],
             p["tcell_proliferation_prob"], p["tcell_lifespan_days"] * 24.0,
             p["cart_lifespan_days"] * 24.0, p["tcell_progenitor_lifespan_days"] * 24.0,
             p["tcell_progenitor_pd1_inhibition"], p["tcell_progenitor_division_prob"],
             p["chemokine_detection_limit"])
        i = (p["tcell_speed"], p["tcell_exhausted_speed"], p["tcell_exhaustion_limit"],
             p["cart_exhaustion_limit"], p["tcell_max_divisions"])
        return self._params_of("_killer_vectors", f, i)

    def _innate_params(self) -> tuple[np.ndarray, np.ndarray]:
        """The float and int parameter vectors of ``kernels.step_innate`` (kept while the
        values they are made from are the same)."""
        p, effects = self.p, self.effects
        f = (p["chemotaxis_bias"], p["tcell_infiltration"], p["macrophage_lifespan_days"] * 24.0,
             effects["macrophage_depletion"], 1.0 / p["macrophage_polarisation_time_h"],
             effects["macrophage_repolarisation"], p["hypoxic_threshold"], p["tgfb_half_max"],
             p["macrophage_ifng_secretion"], p["macrophage_kill_prob"],
             p["nk_lifespan_days"] * 24.0, p["ifng_secretion"], p["nk_kill_prob"],
             p["nk_tgfb_suppression"], p["chemokine_detection_limit"])
        i = (p["suppressor_speed"], p["tcell_speed"], p["tcell_exhausted_speed"],
             p["nk_kill_limit"])
        return self._params_of("_innate_vectors", f, i)

    def _params_of(self, name: str, f: tuple, i: tuple) -> tuple[np.ndarray, np.ndarray]:
        """``(float64 array of f, int64 array of i)``, kept in attribute ``name`` and made
        again only when ``f`` or ``i`` differ from the kept ones (as Python values: equal
        values give the same arrays). A kernel does not write them."""
        kept = self.__dict__.get(name)
        if kept is None or kept[0] != f or kept[1] != i:
            kept = (f, i, np.array(f, dtype=np.float64), np.array(i, dtype=np.int64))
            setattr(self, name, kept)
        return kept[2], kept[3]

    def _release(self, dead: np.ndarray, dead_fate: np.ndarray, counters: np.ndarray) -> None:
        """The cancer cells a kernel killed, to the lymph node (``CancerCell.die``)."""
        if self.lymph_node is None:
            return
        m = int(counters[K.C_DEAD])
        for antigens, fate in zip(dead[:m].tolist(), dead_fate[:m].tolist(), strict=True):
            self.lymph_node.release(antigens, K.FATES[fate])

    def _order(self, kinds: tuple[int, int]) -> tuple[np.ndarray, int]:
        """The living cells of ``kinds`` in random order (Mesa's shuffled agent list:
        ``rng.permutation``), and the seed of the kernel that steps them (drawn next, if there
        are any: ``census.order_cells``). The order is scratch, valid until the next call."""
        n = int(self.n_immune[0])
        chosen = self.__dict__.get("_chosen")
        if chosen is None or chosen.size < n:  # scratch, as large as the cell arrays
            chosen = self._chosen = np.empty(self.ix.size, dtype=np.int64)
        m, seed = C.order_cells(n, self.alive, self.ikind, kinds[0], kinds[1], chosen,
                                self._bits())
        return chosen[:m], seed

    def _step_killers(self) -> None:
        """CTLs and CAR-T cells in random order (``kernels.step_killers``)."""
        order, seed = self._order(_KILLERS)
        if not order.size:
            return
        self._reserve(order.size)  # at most one daughter each
        fp, ip = self._killer_params()
        t = self.tissue
        dead = np.zeros(order.size, dtype=np.int64)
        dead_fate = np.zeros(order.size, dtype=np.int8)
        counters = np.zeros(2, dtype=np.int64)
        before = self._watch_begin()
        self.kills += K.step_killers(
            order, self.ix, self.iy, self.ikind, self.antigen, self.exhaustion, self.ikills,
            self.divisions, self.engaged, self.alive, self.state, self.n_immune, t.kind,
            self.idx, t.antigens, t.antigenicity, t.pdl1_base, t.mhc, t.pdl1_induced,
            t.car_negative, t.clone, self.chemokine.data, self.tgfb.data, self.ifng_source,
            self.treg_near, fp, ip, dead, dead_fate, counters, seed)
        self._watch_end(before, "killed")
        self.progenitor_divisions += int(counters[K.C_PROGENITOR_DIVISIONS])
        self._release(dead, dead_fate, counters)

    def _watch_begin(self):
        """Before a kernel that can kill or move cancer cells, with a watch on: the clone layer
        holds each cancer cell's flat site index for the call (a trait that travels with the
        cell when a killer squeezes past it); returns what ``_watch_end`` needs."""
        if self._watch is None:
            return None
        t = self.tissue
        clones = t.clone.copy()
        before = np.flatnonzero(t.kind.ravel() == Kind.CANCER)
        t.clone.ravel()[before] = before
        return before, clones

    def _watch_end(self, started, fate: str) -> None:
        """After the kernel: the watched cells that vanished left by ``fate``; the clone layer
        gets its values back."""
        if started is None:
            return
        before, clones = started
        t = self.tissue
        cancer = t.kind == Kind.CANCER
        came_from = t.clone[cancer]
        self._watch.left(np.setdiff1d(before, came_from, assume_unique=True), fate)
        # the survivors' sites now (a squeezed cell moved): the next kernel starts from them
        index = self._watch.index.ravel()
        moved = np.full_like(index, -1)
        moved[np.flatnonzero(cancer.ravel())] = index[came_from]
        self._watch.index = moved.reshape(self._watch.index.shape)
        t.clone[cancer] = clones.ravel()[came_from]

    def _step_innate(self) -> None:
        """Macrophages and NK cells in random order (``kernels.step_innate``)."""
        order, seed = self._order(_INNATE)
        if not order.size:
            return
        gp, jp = self._innate_params()
        t = self.tissue
        dead = np.zeros(order.size, dtype=np.int64)
        dead_fate = np.zeros(order.size, dtype=np.int8)
        counters = np.zeros(2, dtype=np.int64)
        innate_kills = np.zeros(2, dtype=np.int64)
        before = self._watch_begin()
        K.step_innate(order, self.ix, self.iy, self.ikind, self.ikills, self.engaged,
                      self.alive, self.state, t.kind, self.idx, t.antigens, t.antigenicity,
                      t.pdl1_base, t.mhc, t.pdl1_induced, t.car_negative, t.clone,
                      self.chemokine.data, self.tgfb.data, self.oxygen.data, self.ifng_hill,
                      self.ifng_source, gp, jp, dead, dead_fate, counters, innate_kills, seed)
        # a watched cell killed here: "phagocytosed" or "nk_killed" when only one of them
        # killed this hour, else "innate" (the kernel does not say which cell died how)
        fate = ("innate" if innate_kills.all() else
                "phagocytosed" if innate_kills[0] else "nk_killed")
        self._watch_end(before, fate)
        self.macrophage_kills += int(innate_kills[0])
        self.nk_kills += int(innate_kills[1])
        self._release(dead, dead_fate, counters)

    def _step_suppressors(self) -> None:
        """Tregs and MDSCs in random order (``kernels.step_suppressors``)."""
        order, seed = self._order(_SUPPRESSORS)
        if not order.size:
            return
        p = self.p
        K.step_suppressors(order, self.ix, self.iy, self.ikind, self.alive, self.tissue.kind,
                           self.idx, self.chemokine.data, p["chemotaxis_bias"],
                           p["chemokine_detection_limit"], p["suppressor_speed"],
                           p["treg_lifespan_days"] * 24.0,
                           p["mdsc_lifespan_days"] * 24.0, seed)

    def _compact(self) -> None:
        """Drop the dead immune cells from the arrays (slots are reused; order kept)."""
        self.n_immune[0] = C.compact_cells(
            int(self.n_immune[0]), self.alive, self.ix, self.iy, self.ikind, self.antigen,
            self.exhaustion, self.ikills, self.divisions, self.engaged, self.state, self.idx)

    # --- observation ----------------------------------------------------------------------
    def _census_killers(self) -> None:
        """``TumorModel._census_killers`` on the arrays."""
        (self.n_engaged, n_killers, exhausted, n_ctls, progenitors, self.n_macrophages,
         m2) = C.killer_census(int(self.n_immune[0]), self.alive, self.ikind, self.engaged,
                               self.state, self.exhaustion, int(self.p["tcell_exhaustion_limit"]),
                               int(self.p["cart_exhaustion_limit"])).tolist()
        self.exhausted_fraction = exhausted / n_killers if n_killers else 0.0
        self.progenitor_fraction = progenitors / n_ctls if n_ctls else 0.0
        # TumorModel._census counts macrophages among its agents: here, from the arrays
        self.m2_fraction = m2 / self.n_macrophages if self.n_macrophages else 0.0

    def immune_cells(self) -> dict[str, np.ndarray]:
        """The living immune cells as arrays (x, y, kind, antigen, exhaustion, kills,
        divisions left, engaged this hour, state: 1 for a progenitor CTL or an M2 macrophage):
        the fast engine's view of its agents."""
        n = int(self.n_immune[0])
        alive = self.alive[:n]
        return {"x": self.ix[:n][alive], "y": self.iy[:n][alive], "kind": self.ikind[:n][alive],
                "antigen": self.antigen[:n][alive], "exhaustion": self.exhaustion[:n][alive],
                "kills": self.ikills[:n][alive], "divisions": self.divisions[:n][alive],
                "engaged": self.engaged[:n][alive], "state": self.state[:n][alive]}


FastTumorModel.__init__.__signature__ = _signature()
