"""The dashboard's entry point: ``abm serve`` runs ``solara run abm.server``, which shows ``Page``.

The dashboard itself is the package ``abm.dashboard`` (see its docstring for the layout).
"""

from abm.dashboard.app import Dashboard, Page

__all__ = ["Dashboard", "Page"]
