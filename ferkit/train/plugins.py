"""Import user modules named by a config's ``plugins`` so they can register models or data sets first.

Importing a plugin runs its code. A recipe the user passes runs its plugins; a run folder or checkpoint does not: the
plugins its saved config names need consent (:func:`require_consent`), since a ``last.pt`` can come from anywhere.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable, Sequence
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


def plugin_key(name: str) -> str:
    """What a plugin name refers to: the absolute path of a ``.py`` file (relative to the current folder), else the
    dotted module name."""
    return str(Path(name).expanduser().resolve()) if name.endswith(".py") else name


def would_run_code(name: str) -> bool:
    """False when importing ``name`` is a no-op because it is already imported (a file: a module of its stem)."""
    module = Path(name).stem if name.endswith(".py") else name
    return module not in sys.modules


def require_consent(names: Sequence[str], *, allowed: Iterable[str] = (), trust: bool = False, source: str) -> None:
    """Refuse to import plugins named by ``source`` (a run folder or checkpoint) that the user did not name.

    A plugin is consented when it is in ``allowed`` (the user's own ``--plugin`` list, compared by :func:`plugin_key`),
    when ``trust`` is set (``--trust-plugins``), or when it is already imported (nothing would run).

    Raises:
        ConfigError: naming every plugin without consent and both ways to give it.
    """
    if trust:
        return
    keys = {plugin_key(a) for a in allowed}
    refused = [n for n in names if plugin_key(n) not in keys and would_run_code(n)]
    if not refused:
        return
    listed = ", ".join(_describe(n) for n in refused)
    raise ConfigError(
        f"{source} names plugin code that ferkit would import and run: {listed}. Code named by a run or checkpoint "
        "is never run without your consent: if you trust it, pass --plugin NAME for each one (Python: "
        "train(plugins=[...])), or --trust-plugins to run all the plugins its config names (trust_plugins=True)")


def _describe(name: str) -> str:
    if not name.endswith(".py"):
        return f"module {name!r}"
    resolved = plugin_key(name)
    return f"file {name!r}" + ("" if resolved == name else f" (resolves to {resolved})")
