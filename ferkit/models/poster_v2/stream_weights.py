"""Load pretrained stream weights into POSTER++: IR-50 / MobileFaceNet files of the official recipe, or the open
streams' source files (dlib ``.dat``, FaceMesh ``.tflite``, MobileFaceNet OpenVINO IR) converted on the fly, or
ferkit's converted ``.safetensors`` (``ferkit weights import``)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferkit.errors import CheckpointError

log = logging.getLogger(__name__)

#: keys of a full converted network that a truncated stream does not build (dlib: last level, embedding).
_UNUSED = {"dlib_resnet": ("levels.4.", "fc."), "facemesh": (), "mobilefacenet": ()}


def read_stream_state(source: str | os.PathLike | Mapping[str, torch.Tensor], *, trust: bool = False,
                      ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, info) from a foreign file (converted), a converted ``.safetensors`` or a torch state dict."""
    if isinstance(source, Mapping):
        return dict(source), {}
    from ferkit.convert import convert, detect_format

    path = Path(source)
    if not path.exists() and isinstance(source, str) and "/" not in source and "." not in source:
        from ferkit.hub import get_weights

        path = get_weights(source)  # a weights asset name (``ferkit weights list``), from the cache
    if detect_format(path):
        return convert(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
        info = json.loads(meta.get("ferkit_weights", "{}"))
        return {k: v.float() for k, v in state.items()}, info
    from ferkit.checkpoint import read_checkpoint, unwrap_state_dict

    return unwrap_state_dict(read_checkpoint(path, trust=trust)), {}


def _load(module: nn.Module, source, stream: str, *, trust: bool) -> dict[str, Any]:
    from ferkit.checkpoint import load_state_dict_strict

    state, info = read_stream_state(source, trust=trust)
    if info.get("model") and info["model"] != stream:
        raise CheckpointError(f"{source} holds {info['model']} weights, but this stream is {stream}")
    state = {k: v for k, v in state.items() if not k.startswith(_UNUSED[stream])}
    report = load_state_dict_strict(module, state)
    log.info("%s stream weights from %s: %d tensors", stream, source if not isinstance(source, Mapping) else "dict",
             report["loaded"])
    return {"loaded": report["loaded"], "source_sha256": info.get("source_sha256"), "licence": info.get("licence")}


def load_image_stream(model: nn.Module, source, *, trust: bool = False) -> dict[str, Any]:
    """Load the image stream of a :class:`PosterV2` (``ir50.pth`` or dlib weights) strictly."""
    stream = model.config.image_stream
    if stream == "ir50":
        from ferkit.models.poster_v2.adapter import load_ir50

        return load_ir50(model.image_net, source, trust=trust)
    return _load(model.image_net.net, source, stream, trust=trust)


def load_landmark_stream(model: nn.Module, source, *, trust: bool = False) -> dict[str, Any]:
    """Load the frozen landmark stream of a :class:`PosterV2` strictly (MobileFaceNet ``.pth.tar`` or IR, FaceMesh)."""
    stream = model.config.landmark_stream
    if stream == "none":
        raise CheckpointError("this model has no landmark stream (landmark_stream='none'); drop landmark_weights")
    if stream == "facemesh":
        return _load(model.landmark_net.net, source, stream, trust=trust)
    return _load(model.landmark_net, source, stream, trust=trust)
