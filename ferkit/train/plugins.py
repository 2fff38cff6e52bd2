"""Import user modules named by a config's ``plugins`` so they can register models or data sets first."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from ferkit.errors import ConfigError


def import_plugins(names: Iterable[str]) -> None:
    """Import each dotted module name or ``.py`` file path once (a file is registered under its stem)."""
    for name in names:
        if name.endswith(".py"):
            _import_file(Path(name))
        else:
            try:
                importlib.import_module(name)
            except ImportError as e:
                raise ConfigError(f"config key 'plugins': cannot import {name!r}: {e}") from e


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"config key 'plugins': file {str(path)!r} does not exist")
    module_name = path.stem
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
