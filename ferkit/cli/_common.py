"""Helpers shared by sub-commands: the flags several commands take (each defined once here), help texts that name
registry entries, and output checks."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: ``--precision`` values (``torch.autocast`` dtypes; fp32 = no autocast).
PRECISIONS = ("fp32", "bf16", "fp16")
#: ``--precision`` of the inference commands (``ferkit.device.INFERENCE_PRECISIONS``; not imported: no torch here)
INFERENCE_PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: ``--backend`` of the inference commands (``ferkit.infer.precision.BACKENDS``; not imported: no torch here)
BACKENDS = ("auto", "torch", "onnx", "openvino")


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b.c=[2,3]"]`` -> ``{"a": 1, "b.c": [2, 3]}``; values parsed as YAML scalars/lists."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


class RegistryHelp(str):
    """A help text naming registry entries, filled in only when argparse shows it.

    ``RegistryHelp("data set: {names}", names=list_datasets)`` puts ``", ".join(list_datasets())`` in place of
    ``{names}`` when ``--help`` is printed, so building the parser imports no registry (and no torch): ``ferkit
    --help`` stays fast while every list comes from its registry. ``%(default)s`` works as in any help text.
    """

    fields: dict[str, Callable[[], Iterable[str] | str]]

    def __new__(cls, template: str, **fields: Callable[[], Iterable[str] | str]) -> RegistryHelp:
        self = super().__new__(cls, template)
        self.fields = fields
        return self

    def render(self) -> str:
        values = {k: f() for k, f in self.fields.items()}
        return str.format(self, **{k: v if isinstance(v, str) else ", ".join(v) for k, v in values.items()})

    def __mod__(self, params: Any) -> str:  # argparse: help % {"default": ..., "prog": ...}
        return self.render() % params

    def __contains__(self, item: object) -> bool:  # argparse may skip the % step for texts without "%"
        return item == "%" or str.__contains__(self, item)


def pretrained_models() -> list[str]:
    from ferkit.models.pretrained import list_pretrained

    return list_pretrained()


def default_model() -> str:
    from ferkit.models.pretrained import DEFAULT_MODEL

    return DEFAULT_MODEL


def registered_datasets() -> list[str]:
    from ferkit.data import list_datasets

    return list_datasets()


def registered_detectors() -> list[str]:
    from ferkit.detect import list_detectors

    return list_detectors()


# ---- flags shared by several commands (one definition each) ---------------------------------------------------------
def add_set_arg(p: Any, *, help: str = "model option, repeatable (e.g. --set clip_weights=ViT-B-16.pt)") -> None:
    """``--set KEY=VALUE`` (repeatable, into ``args.overrides``; read it with :func:`parse_overrides`)."""
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[], help=help)


def add_checkpoint_args(p: Any, *, required: bool = False, repeat: bool = False,
                        help: str = "ferkit or official checkpoint to load") -> None:
    """``--checkpoint`` (a list with ``repeat``) and ``--trust-checkpoint``."""
    many = {"action": "append"} if repeat else {}
    p.add_argument("--checkpoint", required=required, default=None, help=help, **many)
    add_trust_checkpoint_arg(p)


def add_trust_checkpoint_arg(p: Any, *, what: str = "a legacy checkpoint") -> None:
    """``--trust-checkpoint``: allow unpickling ``what`` (only for trusted files)."""
    p.add_argument("--trust-checkpoint", action="store_true",
                   help=f"allow full unpickling of {what} with Python objects (only for files you trust)")


def add_allow_unverified_arg(p: Any, *, help: str = "let a pretrained --model download weights that have no "
                                                     "published SHA-256 (their hash is recorded)") -> None:
    """``--allow-unverified``: accept weights without a published SHA-256."""
    p.add_argument("--allow-unverified", action="store_true", help=help)


def add_device_arg(p: Any, *, default: str = "auto") -> None:
    p.add_argument("--device", default=default, help=f"auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps (default "
                                                     f"{default})")


def add_precision_arg(p: Any, *, inference: bool = False) -> None:
    """``--precision``: autocast precisions; with ``inference`` also ``auto`` and ``int8`` (``ferkit.load``)."""
    if not inference:
        p.add_argument("--precision", default="fp32", choices=PRECISIONS, help="autocast precision (default fp32)")
        return
    p.add_argument("--precision", default=None, choices=INFERENCE_PRECISIONS,
                   help="auto: chosen from the CPU flags / GPU (bf16 with AMX or AVX512-BF16, int8 with VNNI when an "
                        "int8 model is at hand, else fp32; -v prints the choice); fp32, bf16, fp16 (autocast; fp16 "
                        "needs a GPU); int8 (an int8 .onnx, or --calibrate DIR). Default: fp32, or an ONNX file's own")


def add_detector_arg(p: Any, *, default: str, extra: str = "") -> None:
    """``--detector NAME``, one of the registered detectors (:func:`ferkit.detect.list_detectors`)."""
    p.add_argument("--detector", default=default, metavar="NAME",
                   help=RegistryHelp("face detector: {names}" + extra + " (default: %(default)s)",
                                     names=registered_detectors))


def add_plugin_arg(p: Any, *, extra: str = "") -> None:
    """``--plugin MODULE_OR_PY`` (repeatable, into ``args.plugins``): code that registers a model, data set or
    detector; import them with :func:`ferkit.train.plugins.import_plugins`."""
    p.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE_OR_PY",
                   help="import a module or .py file first (registers a custom model, data set or detector), "
                        "repeatable" + extra)


def import_plugins_of(args: argparse.Namespace) -> None:
    """Import the ``--plugin`` modules of a command (nothing is imported when there are none)."""
    if getattr(args, "plugins", None):
        from ferkit.train.plugins import import_plugins

        import_plugins(args.plugins)


def add_model_args(p: argparse.ArgumentParser, *, checkpoint: bool = True) -> None:
    """``--set``, ``--num-classes`` and (``checkpoint``) ``--checkpoint`` / ``--trust-checkpoint``."""
    add_set_arg(p, help="model config override, repeatable (e.g. --set vit_depth=4)")
    p.add_argument("--num-classes", type=int, default=None, help="class count (default: from the checkpoint, else 7)")
    if checkpoint:
        add_checkpoint_args(p)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def check_output_dir(path: str | os.PathLike | None, option: str) -> None:
    """Fail early, with one clear line, when output folder ``path`` (given as ``option``) is or lies under a file.

    Raises:
        ValueError: naming the file that is in the way.
    """
    if path is None:
        return
    blocker = _file_in_the_way(Path(path))
    if blocker is not None:
        raise ValueError(f"{option} {path}: {blocker} is a file, not a folder; choose another output folder")


def check_output_file(path: str | os.PathLike | None, option: str) -> None:
    """Fail early when output file ``path`` (``-`` = stdout) is an existing folder or lies under a file.

    Raises:
        ValueError: naming the folder or file that is in the way.
    """
    if path is None or str(path) == "-":
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; expected a file name")
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise ValueError(f"{option} {path}: {blocker} is a file, not a folder; choose another output path")


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ``folder`` or parent of it when that is not a folder (so ``mkdir`` would fail)."""
    for p in (folder, *folder.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None
