"""The model's agents: cells on the grid and treatments."""

from abm.agents.base import Kind
from abm.agents.cancer import CancerCell, Debris
from abm.agents.macrophage import Macrophage
from abm.agents.nk import NKCell
from abm.agents.suppressors import MDSC, Treg
from abm.agents.tcell import CARTCell, TCell
from abm.agents.treatments import TREATMENTS, Schedule, Treatment

__all__ = ["Kind", "CancerCell", "Debris", "TCell", "CARTCell", "Treg", "MDSC", "Schedule",
           "Treatment", "TREATMENTS", "Macrophage", "NKCell"]
