"""The browser dashboard (``abm serve``; the entry point Solara loads is ``abm.server``).

One module per concern, each depending only on the ones above it:

- ``render``: the tissue as one raster image from the model's numpy layers, colours, legend,
  hover text, exports (no Solara; usable from a notebook);
- ``session``: one tab's model (``Session``: model, lock, clone history, timing) and how a
  link's query string becomes one; parameters go through ``abm.params.resolve``;
- ``charts``: the ECharts options of the four live charts, from a session snapshot;
- ``live``: the widgets that change every frame (tissue image, status lines, colour bar,
  followed site, charts), updated in place;
- ``tab``: one browser tab (``Tab``): reactive state, the actions behind the buttons, the play
  thread;
- ``controls``: the sidebar's controls, the parameter panel generated from ``abm/params.py``,
  the treatment buttons and the view controls;
- ``app``: the page layout and the components that show the model (``Dashboard``, ``Page``).

Colours and UI state live here, never in the model.
"""
