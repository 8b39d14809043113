"""One browser tab's model: the ``Session`` (model, lock, history, timing), and how a link's
query string becomes one.

No Solara here: the benchmarks and tests drive a ``Session`` directly. Model work happens
under the session's lock (the play thread and the page's event handlers share the model).
"""

from __future__ import annotations

import secrets
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from abm import params as P
from abm.agents import TREATMENTS
from abm.dashboard import render as R
from abm.dashboard.serving import check_grid
from abm.model import TumorModel
from abm.run import model_class, threads_for
from abm.scenarios import SCENARIOS

DEFAULT_SCENARIO = "escape" if "escape" in SCENARIOS else next(iter(SCENARIOS))
# the page's own link keys (see ``page_options``), not the model's
PAGE_KEYS = ("teacher", "compare", "large")
PAGE_ON, PAGE_OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def page_options(search: str | None) -> dict[str, bool]:
    """The page's own link options: ``teacher=1`` (basic controls only, for a class) and
    ``compare=1`` (the untreated twin beside the run) and ``large=1`` (large text, for the back
    of a classroom)."""
    query = dict(parse_qsl((search or "").lstrip("?"), keep_blank_values=True))
    return {key: query.get(key, "").lower() in PAGE_ON for key in PAGE_KEYS}


def _plain(text: str) -> str:
    """A link's value as typed, or, pasted long, in short (``abm.params.value_text``)."""
    return text if len(text) <= 2 * P.TEXT_KEPT else P.value_text(text)


def link_query(search: str | None) -> dict[str, str]:
    """A link's query string as a dict; ``ValueError`` for a key given twice (which value wins
    is not obvious; the seed's two names count as one) or a page option that is neither on nor
    off (``teacher=maybe`` must not quietly give a class every control)."""
    query: dict[str, str] = {}
    for key, value in parse_qsl((search or "").lstrip("?"), keep_blank_values=True):
        for other in query:
            if other == key or {other, key} == {"seed", "rng"}:
                raise ValueError(f"{key} given twice ({other}={_plain(query[other])} and "
                                 f"{key}={_plain(value)}); give each once")
        query[key] = value
    for key in PAGE_KEYS:
        if key in query and query[key].lower() not in PAGE_ON + PAGE_OFF:
            raise ValueError(f"{key} {P.value_text(query[key])} is not allowed: expected 1 (on) "
                             "or 0 (off)")
    return query


@dataclass
class Timing:
    """Where the time of a frame goes, as moving averages (milliseconds)."""

    model_ms: float = 0.0
    draw_ms: float = 0.0
    frame_ms: float = 0.0
    steps_per_frame: int = 1
    frame_times: deque = field(default_factory=lambda: deque(maxlen=30))

    @staticmethod
    def _ema(old: float, new: float) -> float:
        return new if old == 0.0 else 0.8 * old + 0.2 * new

    def model(self, seconds: float, steps: int) -> None:
        self.model_ms = self._ema(self.model_ms, seconds * 1000)
        self.steps_per_frame = steps

    def draw(self, seconds: float) -> None:
        self.draw_ms = self._ema(self.draw_ms, seconds * 1000)

    def frame(self, seconds: float) -> None:
        self.frame_ms = self._ema(self.frame_ms, seconds * 1000)
        self.frame_times.append(time.perf_counter())

    @property
    def fps(self) -> float:
        """Frames per second over the last frames while playing (server side)."""
        t = self.frame_times
        if len(t) < 2 or time.perf_counter() - t[-1] > 1.0:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])


def _threads(model) -> None:
    """A whole tissue on the fast engine (``abm.run.THREADED_SITES`` or more) uses every core
    for its fields: one model is stepped per frame, and they are most of its time."""
    if model is not None and hasattr(model, "use_threads"):
        threads = threads_for("fast", model.width, model.height)
        if threads > 1:
            model.use_threads(threads)


class Session:
    """One browser session's model and history. Model work happens under ``lock``."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, values: dict | None = None,
                 seed: int | None = None, engine: str = "mesa"):
        self.lock = threading.RLock()
        self.engine = engine  # "mesa" (TumorModel) or "fast" (abm.fast, for large grids)
        self.model_class = model_class(engine)  # raises ValueError naming a bad engine
        self.generation = 0
        self.scenario = scenario
        self.compare = False  # run an untreated twin beside the model (``twin``)
        self.notice: str | None = None  # a passing note for the page (an old name in a link)
        self.twin: TumorModel | None = None
        self.build(values if values is not None else scenario_values(scenario),
                   new_seed() if seed is None else seed)

    def build(self, values: dict[str, Any], seed: int | str) -> None:
        """(Re)build the model; raises ``ValueError`` for bad values, leaving the old one."""
        values = P.resolve(self.scenario, values)  # names a bad parameter or value
        check_grid(values["width"], values["height"])  # before the memory is taken
        cls = self.model_class
        model = cls(rng=seed, **values)  # outside the lock: a big grid takes a while
        twin = cls(rng=seed, **untreated(values)) if self.compare else None
        _threads(model)
        _threads(twin)
        with self.lock:
            self.model = model
            self.twin = twin
            self.values = dict(values)
            self.generation += 1
            self.cleared_day: float | None = None  # the day the model's tumour was gone
            self.clone_history: list[tuple[float, dict[int, int]]] = []
            self.clone_peak: dict[int, int] = {}  # each clone's largest count so far
            self._record_clones()
            self.timing = Timing()

    @property
    def active(self) -> bool:
        """Whether stepping shows anything new: the model's tumour is there, or the untreated
        twin's still is (a treated tumour that is gone stays beside its twin, which grows
        on: the comparison the lessons ask for)."""
        return self.model.running or (self.twin is not None and self.twin.running)

    def advance(self, steps: int, generation: int | None = None) -> bool:
        """Step the model (and the twin) ``steps`` hours; False if it was rebuilt meanwhile or
        has stopped (``active``)."""
        with self.lock:
            if generation is not None and generation != self.generation:
                return False
            model = self.model
            if not self.active:
                return False
            start = time.perf_counter()
            twin = self.twin
            for _ in range(steps):
                model.step()  # once its tumour is gone only while the twin grows on
                if not model.running and self.cleared_day is None:
                    self.cleared_day = model.day
                if twin is not None and twin.running:
                    twin.step()
                if not self.active:
                    break
            self.timing.model(time.perf_counter() - start, steps)
            self._record_clones()
            return True

    def _record_clones(self) -> None:
        counts = R.clone_counts(self.model)
        self.clone_history.append((self.model.day, counts))
        peak = self.clone_peak
        for clone, n in counts.items():
            if n > peak.get(clone, 0):
                peak[clone] = n

    def named_clones(self) -> list[int]:
        """The clones the clone chart names: the largest by their peak so far (``TOP_CLONES``),
        each drawn in a colour of its own in the tissue and the chart."""
        import heapq

        from abm.dashboard.charts import TOP_CLONES

        with self.lock:  # (each frame: thousands of clones on a whole tissue, so not sorted)
            peak = self.clone_peak
            return heapq.nlargest(TOP_CLONES, peak, key=lambda c: (peak[c], -c))

    def set_compare(self, on: bool) -> None:
        """Start (or stop) the untreated twin: the same seed and parameters without any
        treatment, caught up to the model's hour, so each dose's effect is seen beside it."""
        with self.lock:
            self.compare = bool(on)
            if not on:
                self.twin = None
                return
            model = self.model
            twin = self.model_class(rng=model.seed, **untreated(self.values))
            _threads(twin)
            while twin.steps < model.steps and twin.running:
                twin.step()
            self.twin = twin

    def set_engine(self, engine: str) -> None:
        """Run the model on ``engine`` ("mesa" or "fast") from the next build (Reset)."""
        cls = model_class(engine)  # raises ValueError naming a bad engine
        with self.lock:
            self.engine, self.model_class = engine, cls

    def draw_twin(self, colour_by: str, overlay: str, show_cells: bool = True,
                  vmax: float | None = None) -> str | None:
        """The twin's tissue as a PNG data URL (None without a twin), on the colour scale
        ``vmax`` (the frame's from ``draw``: the two tissues share the one colour bar)."""
        with self.lock:
            if self.twin is None:
                return None
            return R.data_url(R.tissue_rgb(self.twin, colour_by, overlay, show_cells,
                                           vmax, self.named_clones()).rgb)

    def draw(self, colour_by: str, overlay: str, show_cells: bool = True) -> tuple[str, R.Frame]:
        """The tissue image as a PNG data URL, and the drawn frame (for the colour bar). With
        the twin shown, an overlay scaled to its maximum is scaled to the larger of the two
        models' maxima, so equal colours mean equal values in both tissues."""
        with self.lock:
            start = time.perf_counter()
            frame = R.tissue_rgb(self.model, colour_by, overlay, show_cells,
                                 R.shared_max(overlay, self.model, self.twin),
                                 self.named_clones())
            src = R.data_url(frame.rgb)
            self.timing.draw(time.perf_counter() - start)
        return src, frame

    def administer(self, therapy: str, scale: float = 1.0) -> str:
        """One dose now: ``scale`` times the model's dose parameter for this therapy."""
        with self.lock:
            if not self.model.running:
                raise ValueError(f"{TREATMENTS[therapy].label} not given: the tumour is gone "
                                 f"(day {self.model.day:.1f}) and the run has stopped; press "
                                 "Reset to start again")
            treatment = self.model.treatments[therapy]
            spec = P.PARAMS[treatment.dose_param]
            dose = treatment.dose * scale
            dose = round(dose) if spec.kind is int else dose
            with warnings.catch_warnings(record=True) as caught:  # said on the page instead
                warnings.simplefilter("always")
                self.model.administer(therapy, dose)
            unit = spec.unit[:-1] if dose == 1 and spec.unit.endswith("s") else spec.unit
            text = (f"{TREATMENTS[therapy].label} given on day {self.model.day:.1f} "
                    f"({dose:g} {unit}): it acts from the next hour")
            placed = self.model.dose_log[-1].get("placed", dose)
            if placed < dose:
                text += (f". {placed} of the {dose:g} cells found room next to a vessel at once; "
                         "the others enter over the next hours as room frees")
            for warning in caught:  # e.g. a vaccine with no antigen to target
                text += f". Note: {warning.message}"
            return text

    def describe(self, x: int, y: int) -> str:
        """What is at site (x, y), read under the lock (the play thread may be stepping)."""
        with self.lock:
            return R.describe_site(self.model, x, y)

    def snapshot(self) -> dict[str, Any]:
        """Copies of what the charts need, taken under the lock."""
        with self.lock:
            cols = R.model_vars(self.model)
            n = min(len(c) for c in cols.values())
            twin = None
            if self.twin is not None:
                twin_cols = R.model_vars(self.twin)
                twin = list(twin_cols["CancerCells"][:n])
                twin += [None] * (n - len(twin))  # a cleared twin stops recording
            return {
                "vars": {k: list(c[:n]) for k, c in cols.items()},
                "clones": list(self.clone_history),
                "named_clones": self.named_clones(),
                "doses": list(self.model.dose_log),
                "twin_cancer": twin,
            }


def untreated(values: dict[str, Any]) -> dict[str, Any]:
    """The same parameters with no scheduled treatment (every therapy's start day blank)."""
    return {k: (None if k.endswith("_start_day") and P.PARAMS[k].optional else v)
            for k, v in values.items()}


def parse_seed(text: int | str) -> int:
    """The seed box's or a link's seed (``abm.params.validate_rng``), its error naming the
    seed as the page does."""
    try:
        return P.validate_rng(text)
    except ValueError:
        digits = str(text).strip()
        limit = P.seed_digits_limit()
        longest = (f" of at most {limit} digits" if limit and digits.isdecimal()
                   and len(digits) > limit else "")
        raise ValueError(f"seed {P.value_text(text)} is not allowed: expected a whole number "
                         f">= 0{longest} (the same seed and parameters give the same run)"
                         ) from None


def new_seed() -> int:
    """A fresh seed for "new seed" (UI randomness, not model randomness)."""
    return secrets.randbelow(1_000_000)


def scenario_values(name: str) -> dict[str, Any]:
    """All parameter values of a scenario: the defaults plus its presets."""
    return P.resolve(name)


def session_from_query(search: str | None) -> tuple[Session, str | None]:
    """A session from the page's query string, e.g. ``?scenario=escape&seed=3&width=200``.

    Any parameter of ``abm.params`` can be given; a bad value gives the default session and
    a message saying what was wrong (links are shared in class, typos happen).
    """
    try:
        query = link_query(search)
        for key in PAGE_KEYS:  # how the page looks, not the model
            query.pop(key, None)
        scenario = query.pop("scenario", DEFAULT_SCENARIO)
        seed = query.pop("seed", query.pop("rng", None))
        engine = query.pop("engine", "mesa")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FutureWarning)
            values = P.resolve(scenario, query)  # names the bad scenario, parameter or value
        session = Session(scenario, values, None if seed is None else parse_seed(seed), engine)
        # an old parameter name still works: say so on the page (the link can be updated)
        session.notice = "; ".join(f"link: {w.message}" for w in caught
                                   if issubclass(w.category, FutureWarning)) or None
        return session, None
    except ValueError as err:
        return Session(), f"link ignored: {err}"
