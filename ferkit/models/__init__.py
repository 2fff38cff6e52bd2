"""Model registry and factory. Importing this package registers every built-in model."""

import ferkit.models.mpa_fer  # noqa: F401  (registers MPA-FER)
from ferkit.models import poster_v2  # noqa: F401  (registers POSTER++)
from ferkit.models._factory import create_model
from ferkit.models._registry import ModelEntry, get_entry, list_models, register_model

__all__ = ["create_model", "list_models", "get_entry", "register_model", "ModelEntry"]
