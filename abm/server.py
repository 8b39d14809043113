"""The dashboard's entry point: ``abm serve`` runs ``solara run abm.server``, which shows ``Page``.

The dashboard itself is the package ``abm.dashboard`` (see its docstring for the layout).
Importing this module also sets the Solara server up for a classroom
(``abm.dashboard.serving.configure_solara``: no badge, lost tabs culled after a minute).
"""

from abm.dashboard.app import Dashboard, Page
from abm.dashboard.serving import configure_solara

configure_solara()

__all__ = ["Dashboard", "Page"]
