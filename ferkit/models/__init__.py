"""Model registry and factory. Importing this package registers every built-in model family, model and weight.

Adding a model family = one folder under ``ferkit/models/`` that calls :func:`register_family`,
:func:`register_model` (and :func:`register_pretrained` for released weights) + one import line below; a plugin
outside ferkit does the same from its own module (``docs/architecture.md``).
"""

import ferkit.models.mpa_fer  # noqa: F401  (registers MPA-FER)
from ferkit.models import poster_v2  # noqa: F401  (registers POSTER++)
from ferkit.models._factory import create_model
from ferkit.models._registry import (
    Family,
    ModelEntry,
    get_entry,
    get_family,
    list_families,
    list_models,
    register_family,
    register_model,
)
from ferkit.models.base import FerModel
from ferkit.models.pretrained import (
    DEFAULT_MODEL,
    PRETRAINED,
    PretrainedCfg,
    get_pretrained_cfg,
    list_pretrained,
    register_pretrained,
    resolve_pretrained,
)
from ferkit.models.transforms import build_eval_transform, build_transform, resolve_transform_config

__all__ = ["create_model", "list_models", "get_entry", "register_model", "ModelEntry", "Family", "register_family",
           "get_family", "list_families", "FerModel", "DEFAULT_MODEL", "PRETRAINED", "PretrainedCfg",
           "get_pretrained_cfg", "list_pretrained", "register_pretrained", "resolve_pretrained", "build_transform",
           "build_eval_transform", "resolve_transform_config"]
