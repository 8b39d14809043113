"""abm: an agent-based model of the tumour microenvironment, on Mesa."""

from abm.model import TumorModel

__version__ = "0.1.0"
__all__ = ["TumorModel", "__version__"]
