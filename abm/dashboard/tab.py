"""One browser tab: its reactive state, the actions behind the buttons, and the play thread.

A ``Tab`` holds a ``Session`` (the model) and a ``LiveView`` (the widgets that change every
frame). The page's components (``controls``, ``app``) read the reactive variables here and call
the actions; every action is wrapped by ``guard``, so a bad value becomes a message on the
page, never a traceback.

Reactive state is only set after the session's lock is released: a render may need the lock,
so holding it while triggering a render could deadlock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import solara

from abm import params as P
from abm.dashboard import labels as L
from abm.dashboard import render as R
from abm.dashboard.live import LiveView
from abm.dashboard.session import (
    Session,
    new_seed,
    page_options,
    parse_seed,
    scenario_values,
    session_from_query,
)

log = logging.getLogger("abm.dashboard")

OVERLAYS_WITH_CELLS = ("none", "pdl1")  # always drawn with the cells (no "cells" box)
PLOT_INTERVAL_S = 0.5  # while playing, charts refresh at most this often
INFO_DAYS = 1.0  # a passing message (a dose given) goes after this many model days
RUN_TO_SECONDS = 30  # "Run to day N" picks hours per frame to take about this long
MAX_RUN_TO_DAY = 1000  # a typo (1e6) would otherwise play for days


LESSON_DEFAULTS = {"colour_by": "antigenicity", "watch_days": 30}  # without a lesson's own


def lesson_setting(name: str, key: str) -> Any:
    """A setting of a scenario's lesson (its dict in ``abm.scenarios.SCENARIOS``): how it
    colours the cancer cells (``colour_by``) and the days to watch (``watch_days``)."""
    from abm.scenarios import SCENARIOS

    return SCENARIOS.get(name, {}).get(key, LESSON_DEFAULTS[key])


def client_alive() -> Callable[[], bool]:
    """A check that this tab's browser page is still connected, for the play loop.

    Solara keeps a page's kernel for ``kernel.cull_timeout`` after its websocket closed (a
    reload can reconnect), and the play thread would keep stepping meanwhile. Outside a
    server (the component tests) there is no page, and the check is always true.
    """
    try:
        from solara.server import kernel_context

        context = kernel_context.get_current_context()
    except Exception:  # noqa: BLE001 - no kernel: not served
        return lambda: True

    def alive() -> bool:
        if context.closed_event.is_set():
            return False
        status = list(context.page_status.values())
        return not status or kernel_context.PageStatus.CONNECTED in status

    return alive


class Tab:
    """Everything one browser tab holds: the session, its reactive state, the live widgets."""

    def __init__(self, session: Session, problem: str | None = None, teacher: bool = False,
                 large: bool = False):
        self.session = session
        self.teacher = teacher  # a teacher's link: basic controls only
        self.large = solara.reactive(large)  # large text, for the back of a classroom
        self.frame = solara.reactive(0)  # bumped when the model changed outside the play loop
        self.generation = solara.reactive(session.generation)  # rebuilds restart the loop
        self.playing = solara.reactive(False)
        self.message: solara.Reactive[tuple[str, str] | None] = solara.reactive(
            ("error", problem) if problem else ("info", session.notice) if session.notice
            else None
        )
        self.scenario = solara.reactive(session.scenario)
        self.raw = solara.reactive(dict(session.values))  # values as entered, used on Reset
        self.seed_text = solara.reactive(str(session.model.seed))
        self.speed = solara.reactive(30)  # frames per second at most
        self.steps_per_frame = solara.reactive(1)
        self.colour_by = solara.reactive(lesson_setting(session.scenario, "colour_by"))
        self.overlay = solara.reactive("none")
        self.show_cells = solara.reactive(True)  # False: only the overlay's field
        self.target_day: solara.Reactive[float | None] = solara.reactive(None)  # "Run to day"
        self.run_to_text = solara.reactive(str(lesson_setting(session.scenario, "watch_days")))
        self.message_day = 0.0  # the model day an info message was shown (it expires)
        self.hover_site: tuple[int, int] | None = None  # redrawn every frame: never stale
        self.closed = False
        self.alive = client_alive()
        self.compare = solara.reactive(session.compare)  # the untreated twin is shown
        self.dose_scale = solara.reactive(1.0)  # treatment buttons give this x the standard dose
        self.picked: solara.Reactive[tuple[int, int] | None] = solara.reactive(None)
        self.live = LiveView(on_hover=self.guard(lambda d: self.site(d, False)),
                             on_select=self.guard(lambda d: self.site(d, True)))
        self.live.show_hover(session, None)
        self.push(charts=True)

    def close(self) -> None:
        """The page is gone (closed, or culled by Solara): stop playing, free the widgets."""
        self.closed = True
        self.live.close()

    # --- showing the model ----------------------------------------------------------------
    def push(self, charts: bool = True) -> None:
        """Show the current model in the live widgets (drawing happens here)."""
        self.live.show(self.session, self.colour_by.value, self.overlay.value,
                       self.picked.value, charts, self.show_cells.value, self.hover_site,
                       self.large.value)
        self.expire_message()

    def changed(self) -> None:
        """The model changed outside the play loop: show it, and refresh the components that
        read model state (dose log, messages)."""
        self.push(charts=True)
        self.frame.set(self.frame.value + 1)

    def error(self, text: str) -> None:
        self.message.set(("error", L.display_unit(text)))  # µm, as the labels say

    def info(self, text: str) -> None:
        """A passing message (a dose given, a day reached): it goes after one model day."""
        self.message_day = self.session.model.day
        self.message.set(("info", text))

    def expire_message(self) -> None:
        msg = self.message.peek()
        if msg and msg[0] == "info" and self.session.model.day - self.message_day >= INFO_DAYS:
            self.message.set(None)

    def guard(self, action: Callable[..., Any]) -> Callable[..., None]:
        """Wrap an event handler: a bad value shows a message, never a traceback."""

        def handler(*args: Any) -> None:
            try:
                action(*args)
            except ValueError as err:
                self.error(str(err))
            except Exception as err:  # noqa: BLE001 - the page must survive any click
                log.exception("dashboard action failed")
                self.error(f"unexpected error ({type(err).__name__}): {err}")

        return handler

    # --- actions ---------------------------------------------------------------------------
    def step(self) -> None:
        if self.playing.value:
            return
        self.session.advance(1)  # once the tumour is gone the status line says so
        self.changed()

    def toggle_play(self) -> None:
        if not self.playing.value and not self.session.active:
            return  # the status line says the tumour is gone and to press Reset
        if self.playing.value:
            self.target_day.set(None)
        self.playing.set(not self.playing.value)

    def run_to(self, day: float) -> None:
        """Play until the model reaches ``day``, with enough hours per frame to get there in
        about ``RUN_TO_SECONDS`` at full speed."""
        day = float(day)
        model = self.session.model
        if not math.isfinite(day):
            raise ValueError(f"run to day {day:g}: expected a number of days")
        if day > MAX_RUN_TO_DAY:
            raise ValueError(f"run to day {day:g}: expected a day up to {MAX_RUN_TO_DAY}")
        if not day > model.day:
            raise ValueError(f"run to day {day:g}: the model is already at day "
                             f"{model.day:.1f}; press Reset to start again")
        if not self.session.active:
            raise ValueError(f"run to day {day:g}: the tumour is gone and the run has "
                             "stopped; press Reset to start again")
        hours = (day - model.day) * 24
        # enough hours per frame to get there in about RUN_TO_SECONDS, or more if chosen
        needed = int(min(24, max(1, round(hours / (RUN_TO_SECONDS * 25)))))
        self.steps_per_frame.set(max(needed, int(self.steps_per_frame.value)))
        msg = self.message.peek()
        if msg and msg[0] == "error" and msg[1].startswith("run to day"):
            self.message.set(None)  # a day refused before: this one is running
        self.target_day.set(day)
        self.playing.set(True)

    def rebuild(self, values: dict[str, Any], seed: int | str) -> None:
        """Stop playing and build a new model; on a bad value keep the old one."""
        self.playing.set(False)
        self.target_day.set(None)
        self.session.build(values, seed)
        self.seed_text.set(str(self.session.model.seed))
        self.message.set(None)
        self.picked.set(None)
        self.generation.set(self.session.generation)
        self.changed()

    def reset(self) -> None:
        """Rebuild with the parameters as entered (on top of the scenario) and the seed."""
        values = P.resolve(self.scenario.value, self.raw.value)
        self.rebuild(values, parse_seed(self.seed_text.value))

    def set_engine(self, engine: str) -> None:
        """Run on ``engine`` ("mesa", or "fast" for large grids) and rebuild with the
        parameters as entered and the seed. On a bad value (a parameter or the seed as typed)
        the model stays, and so does its engine: a twin or the next Reset must not be built
        on the other one."""
        previous = self.session.engine
        self.session.set_engine(engine)
        try:
            self.reset()
        except Exception:
            self.session.set_engine(previous)
            self.frame.set(self.frame.value + 1)  # the engine menu shows the model's again
            raise

    def fresh_seed(self) -> None:
        self.seed_text.set(str(new_seed()))
        self.reset()

    def pick_scenario(self, name: str) -> None:
        """Load scenario ``name`` (its parameters, lesson and view) and build its model. A
        seed box left with a bad value does not stop it: the model keeps its seed, and the
        message says so (the page and the model must show the same scenario)."""
        values = scenario_values(name)  # raises ValueError naming an unknown scenario
        try:
            seed, problem = parse_seed(self.seed_text.value), None
        except ValueError as err:
            seed = self.session.model.seed
            problem = f"{err}; {name} was loaded with seed {seed}"
        previous = self.session.scenario
        self.session.scenario = name
        try:
            self.rebuild(values, seed)
        except ValueError:
            self.session.scenario = previous  # the old model and its scenario stay
            raise
        self.scenario.set(name)
        self.raw.set(dict(values))
        self.colour_by.set(lesson_setting(name, "colour_by"))
        self.run_to_text.set(str(lesson_setting(name, "watch_days")))  # the new lesson's day
        self.push(charts=False)  # the lesson's colouring
        if problem:
            self.error(problem)

    def set_param(self, name: str, value: Any) -> None:
        self.raw.set({**self.raw.value, name: value})
        msg = self.message.peek()
        if msg and msg[0] == "error" and name in msg[1]:
            self.message.set(None)  # the value it complained about was changed

    def set_view(self, colour_by: str | None = None, overlay: str | None = None,
                 show_cells: bool | None = None) -> None:
        if colour_by is not None:
            self.colour_by.set(colour_by)
        if overlay is not None:
            self.overlay.set(overlay)
            if overlay in OVERLAYS_WITH_CELLS:  # no "cells" box there: the cells come back
                self.show_cells.set(True)
        if show_cells is not None:
            self.show_cells.set(show_cells)
        self.push(charts=False)

    def set_large(self, on: bool) -> None:
        """Large text (the page's CSS, and the charts' own sizes: they draw in a canvas)."""
        self.large.set(bool(on))
        self.push(charts=True)

    def set_compare(self, on: bool) -> None:
        """Show (or hide) the untreated twin beside the run."""
        self.session.set_compare(on)
        self.compare.set(bool(on))
        self.changed()

    def treat(self, therapy: str) -> None:
        text = self.session.administer(therapy, self.dose_scale.value)
        self.info(text)
        self.changed()

    def site(self, data: dict, pick: bool) -> None:
        """Hover (``pick`` False) or click on the tissue image at ``data``'s column and row."""
        if data is None:  # the mouse left the image
            self.hover_site = None
            self.live.show_hover(self.session, None)
            return
        x, y = R.site_from_pixel(self.session.model, data["column"], data["row"])
        if pick:
            self.picked.set((x, y))
            self.live.show_picked(self.session, (x, y))
        else:
            self.hover_site = (x, y)
            self.live.show_hover(self.session, (x, y))

    # --- the play loop (runs in a thread per session) ---------------------------------------
    def play_loop(self, cancel: threading.Event) -> None:
        session = self.session
        generation = session.generation
        last_plot = 0.0
        try:
            while self.playing.value and not cancel.is_set():
                if self.closed or not self.alive():
                    # nobody is watching (the tab was closed, crashed or lost its network):
                    # stop, so a lost tab does not use the server's CPU until Solara culls it
                    log.info("no browser connected: pausing")
                    self.playing.set(False)
                    break
                start = time.perf_counter()
                steps = max(1, int(self.steps_per_frame.value))
                target = self.target_day.value
                if target is not None:
                    steps = max(1, min(steps, math.ceil((target - session.model.day) * 24 - 1e-6)))
                if not session.advance(steps, generation):
                    break
                now = time.perf_counter()
                charts = now - last_plot >= PLOT_INTERVAL_S
                if charts:
                    last_plot = now
                self.push(charts)
                session.timing.frame(time.perf_counter() - start)
                if not session.active:
                    self.playing.set(False)
                    self.target_day.set(None)
                    break  # the status line says the tumour is gone
                if target is not None and session.model.day >= target - 1e-9:
                    self.info(f"day {target:g} reached")  # before the pause shows
                    self.target_day.set(None)
                    self.playing.set(False)
                    break
                wait = 1.0 / max(1, self.speed.value) - (time.perf_counter() - start)
                if wait > 0:
                    cancel.wait(wait)
        except Exception as err:  # noqa: BLE001
            log.exception("play loop failed")
            self.playing.set(False)
            self.error(f"stopped: {type(err).__name__}: {err}")
        finally:
            if generation == session.generation:
                try:
                    self.changed()  # final charts and the components that read model state
                except Exception:  # noqa: BLE001 - e.g. the tab was closed meanwhile
                    log.debug("final refresh failed", exc_info=True)


def use_tab(session: Session | None, query: str | None = None) -> Tab | ValueError:
    """This browser tab's ``Tab``, made once per tab (never shared between tabs); or the
    ``ValueError`` that stopped even the default model from being built (a server set up
    wrongly), for the page to show."""

    def make() -> Tab | ValueError:
        options = page_options(query)
        try:
            made = (session, None) if session is not None else session_from_query(query)
        except ValueError as err:
            log.error("no model for this tab: %s", err)
            return err
        if options["compare"]:
            made[0].set_compare(True)
        return Tab(*made, teacher=options["teacher"], large=options["large"])

    tab = solara.use_memo(make, [])
    # close the live widgets with the page
    solara.use_effect(lambda: tab.close if isinstance(tab, Tab) else None, [])
    return tab
