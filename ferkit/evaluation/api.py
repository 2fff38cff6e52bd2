"""``evaluate_checkpoint``: a checkpoint on a data-set split, end to end (what ``ferkit eval`` does)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ferkit.checkpoint import read_checkpoint, sha256_file
from ferkit.evaluation.report import evaluate, write_report


def evaluate_checkpoint(checkpoint: str | os.PathLike, data: str, root: str | os.PathLike, split: str = "test", *,
                        model: str | None = None, label_names: Sequence[str] | str | None = None,
                        model_options: Mapping[str, Any] | None = None,
                        data_options: Mapping[str, Any] | None = None,
                        transform: Mapping[str, Any] | None = None, on_error: str = "raise",
                        out_dir: str | os.PathLike | None = None, batch_size: int = 64, num_workers: int = 2,
                        device: str = "auto", precision: str = "fp32", channels_last: bool = False,
                        tsne: bool = False, tsne_max: int = 2000, trust_checkpoint: bool = False,
                        progress: bool = False) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate ``checkpoint`` on ``split`` of data set ``data`` at ``root`` and write the report.

    Labels are matched by name (the data set's order may differ from the checkpoint's); the model's evaluation
    transform (its family's, with the checkpoint's input settings) is used, with ``transform`` overrides.

    Args:
        model: registered model name (default: the one the checkpoint names).
        label_names: class order of a checkpoint that carries none (an order name or a list).
        model_options / data_options: ``create_model`` / ``build_dataset`` options.
        out_dir: report folder (default: ``<checkpoint folder>/eval_<data>_<split>``).
        tsne: also write a t-SNE plot of the features before the head (at most ``tsne_max`` points).

    Returns:
        ``(report, paths)``: the report dict (accuracy, mean class accuracy, macro-F1, per class, confusion,
        ``checkpoint`` and its SHA-256) and the written files.
    """
    from ferkit.data import build_dataset
    from ferkit.device import resolve_device
    from ferkit.models import create_model
    from ferkit.models.transforms import build_transform
    from ferkit.nn.optimize import to_channels_last

    dataset = build_dataset(data, root, split, on_error=on_error, **dict(data_options or {}))
    ckpt = read_checkpoint(checkpoint, trust=trust_checkpoint)
    name = model or ckpt.get("model")
    if not name:
        raise ValueError(f"{checkpoint} does not name its model; pass model= (e.g. 'poster_v2')")
    net = create_model(name, checkpoint=ckpt, label_names=label_names, trust_checkpoint=trust_checkpoint,
                       **dict(model_options or {}))
    dataset.transform = build_transform(net.data_config, False, dataset=data, **dict(transform or {}))
    if channels_last:
        to_channels_last(net)
    report, feats = evaluate(net, dataset, batch_size=batch_size, device=resolve_device(device),
                             num_workers=num_workers, precision=precision, features=tsne,
                             channels_last=channels_last, progress=progress)
    report.update(checkpoint=str(checkpoint), checkpoint_sha256=sha256_file(checkpoint))
    out = Path(out_dir) if out_dir else Path(checkpoint).parent / f"eval_{data}_{split}"
    return report, write_report(report, out, features=feats, tsne_max=tsne_max)
