"""Run the official POSTER_V2 code from the user's own checkout of github.com/Talented-Q/POSTER_V2, with ferkit's
weights: ``ferkit bench --official-src PATH`` times it side by side with ferkit's model.

ferkit ships none of the official code. :func:`load_official_model` imports ``models/PosterV2_7cls.py`` (or
``PosterV2_8cls.py`` for 8 classes) of the checkout, which defines ``pyramid_trans_expr2`` and imports its siblings
``models/mobilefacenet.py``, ``models/ir50.py`` and ``models/vit_model*.py`` with relative imports (``models/`` has
no ``__init__.py``). What the official code needs and does not get here, and how it is handled:

* the constructor ``torch.load``s the two backbone files from hard-coded paths (an absolute Windows path for the
  7-class model, ``./pretrain/`` for the 8-class one) and loads them strictly: during construction ``torch.load``
  answers ``{"state_dict": {}}`` and ``load_state_dict`` is non-strict, so nothing is read from disk (the backbone
  weights are overwritten by the full state dict right after, as in any evaluation of a released checkpoint);
* ``thop`` (imported for a FLOP-count helper only) is replaced by a stub module when it is not installed;
* the constructor's ``print('load_weight', n)`` goes to the debug log, not stdout.

The full weights come from a ferkit ``poster_v2`` state dict through
:func:`ferkit.models.poster_v2.adapter.ferkit_to_official` and are loaded strictly, except the keys of the official
dead modules (``DEAD_PATTERNS``), which keep the official model's own values (they never reach the logits).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import logging
import re
import sys
import types
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferkit.errors import CheckpointError
from ferkit.models.poster_v2.adapter import DEAD_PATTERNS, ferkit_to_official

log = logging.getLogger(__name__)

#: modules the official files import only for helpers that inference never calls
OPTIONAL_IMPORTS = ("thop",)


def official_file(src: str | Path, num_classes: int = 7) -> Path:
    """``<src>/models/PosterV2_7cls.py`` (``_8cls`` for 8 classes).

    Raises:
        FileNotFoundError: ``src`` is not a POSTER_V2 checkout (naming what is missing).
        ValueError: a class count the official code has no file for.
    """
    if num_classes not in (7, 8):
        raise ValueError(f"the official POSTER_V2 code has 7- and 8-class models only, not {num_classes}")
    root = Path(src).expanduser()
    path = root / "models" / f"PosterV2_{num_classes}cls.py"
    if not path.is_file():
        raise FileNotFoundError(f"{root} is not a POSTER_V2 checkout (github.com/Talented-Q/POSTER_V2): "
                                f"{path.relative_to(root)} not found")
    return path


def import_official(src: str | Path, num_classes: int = 7) -> types.ModuleType:
    """Import the checkout's ``models/PosterV2_{7,8}cls.py`` under a private package name.

    ``models`` is a common top-level name: any ``models`` modules already imported are set aside during the import and
    put back afterwards, and the checkout's folder is registered both as a private package (relative imports) and, for
    the duration of the import, as ``models`` (absolute ``from models.ir50 import ...`` in forks).
    """
    path = official_file(src, num_classes).resolve()
    folder = path.parent
    pkg_name = "_ferkit_official_poster_v2_" + hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    name = f"{pkg_name}.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    pkg = types.ModuleType(pkg_name)
    pkg.__path__ = [str(folder)]
    pkg.__package__ = pkg_name
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "models" or k.startswith("models.")}
    sys.modules[pkg_name] = pkg
    sys.modules["models"] = pkg
    sys.path.insert(0, str(folder.parent))
    try:
        with _stub_missing(OPTIONAL_IMPORTS), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # timm.models.layers is deprecated
            warnings.simplefilter("ignore", UserWarning)  # torch.meshgrid without indexing=
            return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f"cannot import the official POSTER_V2 code from {path}: {e}") from e
    finally:
        sys.path.remove(str(folder.parent))
        for k in [k for k in sys.modules if k == "models" or k.startswith("models.")]:
            del sys.modules[k]
        sys.modules.update(saved)


@contextlib.contextmanager
def _stub_missing(names: tuple[str, ...]) -> Iterator[None]:
    """Empty stand-ins for modules that are not installed (their functions raise when called)."""
    added = []
    for n in names:
        if n in sys.modules or importlib.util.find_spec(n) is not None:
            continue
        stub = types.ModuleType(n)

        def missing(*_: Any, _n: str = n, **__: Any) -> None:
            raise ImportError(f"{_n} is not installed (a stub stands in for the official code's import)")

        stub.__getattr__ = lambda attr, _f=missing: _f  # every name the official code imports is `missing`
        sys.modules[n] = stub
        added.append(n)
    try:
        yield
    finally:
        for n in added:
            sys.modules.pop(n, None)


@contextlib.contextmanager
def _no_backbone_files() -> Iterator[io.StringIO]:
    """During the official constructor: ``torch.load`` returns an empty checkpoint, ``load_state_dict`` is lenient,
    stdout is captured."""
    real_load, real_lsd = torch.load, nn.Module.load_state_dict

    def fake_load(f: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        log.debug("official constructor asked for %s: answered with an empty state dict", f)
        return {"state_dict": {}}

    def lenient(self: nn.Module, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        return real_lsd(self, state_dict, strict=False, assign=assign)

    out = io.StringIO()
    torch.load, nn.Module.load_state_dict = fake_load, lenient
    try:
        with contextlib.redirect_stdout(out):
            yield out
    finally:
        torch.load, nn.Module.load_state_dict = real_load, real_lsd


def build_official(src: str | Path, num_classes: int = 7) -> nn.Module:
    """``pyramid_trans_expr2(img_size=224, num_classes=...)`` of the checkout, without reading its backbone files."""
    module = import_official(src, num_classes)
    cls = getattr(module, "pyramid_trans_expr2", None)
    if cls is None:
        raise ImportError(f"{module.__file__} does not define pyramid_trans_expr2 (the official model class)")
    with _no_backbone_files() as printed, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = cls(img_size=224, num_classes=num_classes)
    if printed.getvalue().strip():
        log.debug("official constructor printed: %s", printed.getvalue().strip())
    return model.eval()


def load_official_model(src: str | Path, ferkit_state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """The official model of checkout ``src`` in eval mode, holding the weights of a ferkit ``poster_v2`` state dict.

    Raises:
        CheckpointError: the ferkit weights do not fit the official model (another architecture or class count);
            the message names the keys.
    """
    official = ferkit_to_official(ferkit_state_dict)
    head = official.get("VIT.head.linear.weight")
    if head is None:
        raise CheckpointError("the ferkit state dict has no classifier head ('head.weight'): not a poster_v2 model")
    model = build_official(src, int(head.shape[0]))
    own = model.state_dict()
    missing = [k for k in own if k not in official and not any(re.match(p, k) for p in DEAD_PATTERNS)]
    extra = [k for k in official if k not in own]
    bad = [k for k in official if k in own and tuple(own[k].shape) != tuple(official[k].shape)]
    if missing or extra or bad:
        raise CheckpointError(f"ferkit weights do not fit the official model of {src}: missing {missing[:3]} "
                              f"({len(missing)}), unexpected {extra[:3]} ({len(extra)}), shape mismatch "
                              f"{bad[:3]} ({len(bad)})")
    model.load_state_dict({**own, **official}, strict=True)
    return model.eval()


def official_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of the official model (its ``forward`` may return a tuple: the logits come first)."""
    out = model(x)
    return out[0] if isinstance(out, (tuple, list)) else out
