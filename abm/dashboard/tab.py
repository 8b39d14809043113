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
import threading
import time
from collections.abc import Callable
from typing import Any

import solara

from abm import params as P
from abm.dashboard import render as R
from abm.dashboard.live import LiveView
from abm.dashboard.session import Session, new_seed, scenario_values, session_from_query

log = logging.getLogger("abm.dashboard")

PLOT_INTERVAL_S = 0.5  # while playing, charts refresh at most this often


class Tab:
    """Everything one browser tab holds: the session, its reactive state, the live widgets."""

    def __init__(self, session: Session, problem: str | None = None):
        self.session = session
        self.frame = solara.reactive(0)  # bumped when the model changed outside the play loop
        self.generation = solara.reactive(session.generation)  # rebuilds restart the loop
        self.playing = solara.reactive(False)
        self.message: solara.Reactive[tuple[str, str] | None] = solara.reactive(
            ("error", problem) if problem else None
        )
        self.scenario = solara.reactive(session.scenario)
        self.raw = solara.reactive(dict(session.values))  # values as entered, used on Reset
        self.seed_text = solara.reactive(str(session.model.seed))
        self.speed = solara.reactive(30)  # frames per second at most
        self.steps_per_frame = solara.reactive(1)
        self.colour_by = solara.reactive("antigenicity")
        self.overlay = solara.reactive("none")
        self.dose_scale = solara.reactive(1.0)  # treatment buttons give this x the standard dose
        self.hover = solara.reactive("")
        self.picked: solara.Reactive[tuple[int, int] | None] = solara.reactive(None)
        self.live = LiveView(on_hover=self.guard(lambda d: self.site(d, False)),
                             on_select=self.guard(lambda d: self.site(d, True)))
        self.push(charts=True)

    def close(self) -> None:
        self.live.close()

    # --- showing the model ----------------------------------------------------------------
    def push(self, charts: bool = True) -> None:
        """Show the current model in the live widgets (drawing happens here)."""
        self.live.show(self.session, self.colour_by.value, self.overlay.value,
                       self.picked.value, charts)

    def changed(self) -> None:
        """The model changed outside the play loop: show it, and refresh the components that
        read model state (dose log, messages)."""
        self.push(charts=True)
        self.frame.set(self.frame.value + 1)

    def error(self, text: str) -> None:
        self.message.set(("error", text))

    def info(self, text: str) -> None:
        self.message.set(("info", text))

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
        if not self.session.advance(1):
            self.info("the tumour is gone: press Reset (or pick a scenario) to start again")
        self.changed()

    def toggle_play(self) -> None:
        if not self.playing.value and not self.session.model.running:
            self.info("the tumour is gone: press Reset to start again")
            return
        self.playing.set(not self.playing.value)

    def rebuild(self, values: dict[str, Any], seed: int | str) -> None:
        """Stop playing and build a new model; on a bad value keep the old one."""
        self.playing.set(False)
        self.session.build(values, seed)
        self.seed_text.set(str(self.session.model.seed))
        self.message.set(None)
        self.picked.set(None)
        self.generation.set(self.session.generation)
        self.changed()

    def reset(self) -> None:
        """Rebuild with the parameters as entered (on top of the scenario) and the seed."""
        values = P.resolve(self.scenario.value, self.raw.value)
        self.rebuild(values, P.validate_rng(self.seed_text.value))

    def fresh_seed(self) -> None:
        self.seed_text.set(str(new_seed()))
        self.reset()

    def pick_scenario(self, name: str) -> None:
        values = scenario_values(name)  # raises ValueError naming an unknown scenario
        self.scenario.set(name)
        self.session.scenario = name
        self.raw.set(dict(values))
        self.rebuild(values, P.validate_rng(self.seed_text.value))

    def set_param(self, name: str, value: Any) -> None:
        self.raw.set({**self.raw.value, name: value})

    def set_view(self, colour_by: str | None = None, overlay: str | None = None) -> None:
        if colour_by is not None:
            self.colour_by.set(colour_by)
        if overlay is not None:
            self.overlay.set(overlay)
        self.push(charts=False)

    def treat(self, therapy: str) -> None:
        text = self.session.administer(therapy, self.dose_scale.value)
        self.info(text)
        self.changed()

    def site(self, data: dict, pick: bool) -> None:
        """Hover (``pick`` False) or click on the tissue image at ``data``'s column and row."""
        x, y = R.site_from_pixel(self.session.model, data["column"], data["row"])
        if pick:
            self.picked.set((x, y))
            self.live.show_picked(self.session, (x, y))
        else:
            self.hover.set(self.session.describe(x, y))

    # --- the play loop (runs in a thread per session) ---------------------------------------
    def play_loop(self, cancel: threading.Event) -> None:
        session = self.session
        generation = session.generation
        last_plot = 0.0
        try:
            while self.playing.value and not cancel.is_set():
                start = time.perf_counter()
                if not session.advance(max(1, int(self.steps_per_frame.value)), generation):
                    break
                now = time.perf_counter()
                charts = now - last_plot >= PLOT_INTERVAL_S
                if charts:
                    last_plot = now
                self.push(charts)
                session.timing.frame(time.perf_counter() - start)
                if not session.model.running:
                    self.playing.set(False)
                    self.info(f"the tumour is gone (day {session.model.day:.1f})")
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


def use_tab(session: Session | None, query: str | None = None) -> Tab:
    """This browser tab's ``Tab``, made once per tab (never shared between tabs)."""

    def make() -> Tab:
        if session is not None:
            return Tab(session)
        return Tab(*session_from_query(query))

    tab = solara.use_memo(make, [])
    solara.use_effect(lambda: tab.close, [])  # close the live widgets with the page
    return tab
