"""ferkit: facial expression recognition with POSTER++ and MPA-FER."""

from ferkit.hub import list_pretrained
from ferkit.infer import load
from ferkit.labels import CANONICAL
from ferkit.models import create_model, list_models

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "list_pretrained", "load", "CANONICAL", "__version__"]
