"""``ferkit eval``: accuracy, mean class accuracy, macro-F1, per-class table, confusion matrices, optional t-SNE."""

from __future__ import annotations

import argparse
from pathlib import Path

from ferkit.cli._common import parse_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a checkpoint on a data set split",
        description="Evaluate a checkpoint. Labels are matched by name, so the data set's order may differ from the "
                    "checkpoint's; classes the data set lacks are reported as absent, samples of classes the model "
                    "lacks are excluded and counted. Writes report.json, per_class.md, confusion PNGs (and tsne.png).",
        epilog="example:\n  ferkit eval --checkpoint runs/poster_v2_rafdb/best.pt --data rafdb --root /data/RAF-DB "
               "--split test --tsne\n", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="ferkit or official checkpoint")
    p.add_argument("--model", default=None, help="model name (default: read from the checkpoint)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", default=[],
                   help="model option, repeatable (e.g. --set clip_weights=/path/ViT-B-16.pt)")
    p.add_argument("--label-names", default=None,
                   help="class order of a checkpoint without label names: an order name (rafdb) or a comma list")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of a legacy checkpoint (only for files you trust)")
    p.add_argument("--data", required=True, help="data set name (rafdb, affectnet7, affectnet8, ferplus, caer_s, "
                                                  "fer2013, folder, csv)")
    p.add_argument("--root", required=True, help="data set root folder")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--data-option", dest="data_options", action="append", metavar="KEY=VALUE", default=[],
                   help="build_dataset option, repeatable (e.g. --data-option label_rule=majority)")
    p.add_argument("--transform", dest="transform", action="append", metavar="KEY=VALUE", default=[],
                   help="eval transform override, repeatable (e.g. --transform input_size=112)")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="unreadable image: stop (default) or skip it (logged; replaced by the next readable one)")
    p.add_argument("--out", default=None, help="output folder (default: next to the checkpoint, eval_<data>_<split>)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (faster CNNs on CPU)")
    p.add_argument("--tsne", action="store_true", help="also plot a t-SNE of the features before the head")
    p.add_argument("--tsne-max", type=int, default=2000, help="at most this many points in the t-SNE (stratified)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE_OR_PY",
                   help="import a module or .py file first (registers a custom model or data set), repeatable")
    p.set_defaults(func=run)


def _load_model(args: argparse.Namespace):
    import ferkit
    from ferkit.checkpoint import read_checkpoint

    ckpt = read_checkpoint(args.checkpoint, trust=args.trust_checkpoint)
    name = args.model or ckpt.get("model")
    if not name:
        raise ValueError(f"{args.checkpoint} does not name its model; pass --model (e.g. --model poster_v2)")
    labels = args.label_names
    if labels and "," in labels:
        labels = [s.strip() for s in labels.split(",")]
    model = ferkit.create_model(name, checkpoint=ckpt, label_names=labels, trust_checkpoint=args.trust_checkpoint,
                                **parse_overrides(args.overrides))
    return model


def run(args: argparse.Namespace) -> int:
    import torch

    from ferkit.checkpoint import sha256_file
    from ferkit.cli._common import print_json
    from ferkit.data import build_dataset
    from ferkit.data.transforms import build_transform
    from ferkit.device import resolve_device
    from ferkit.evaluation import evaluate, per_class_table, write_report
    from ferkit.train.plugins import import_plugins

    import_plugins(args.plugins)
    dataset = build_dataset(args.data, args.root, args.split, on_error=args.on_error,
                            **parse_overrides(args.data_options))
    model = _load_model(args)
    device = resolve_device(args.device)
    dataset.transform = build_transform(model.data_config, False, dataset=args.data, **parse_overrides(args.transform))
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
        if hasattr(model, "memory_format"):
            model.memory_format = torch.channels_last
    report, feats = evaluate(model, dataset, batch_size=args.batch_size, device=device, num_workers=args.workers,
                             precision=args.precision, features=args.tsne, channels_last=args.channels_last,
                             progress=not args.json)
    report.update(checkpoint=str(args.checkpoint), checkpoint_sha256=sha256_file(args.checkpoint))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval_{args.data}_{args.split}"
    paths = write_report(report, out, features=feats, tsne_max=args.tsne_max)
    if args.json:
        print_json(report)
        return 0
    print(per_class_table(report))
    if report.get("excluded"):
        ex = report["excluded"]
        print(f"excluded {ex['samples']} samples of classes the model does not have: {', '.join(ex['classes'])}")
    if report["absent_classes"]:
        print(f"classes without samples in this split (not scored): {', '.join(report['absent_classes'])}")
    print(f"accuracy {100 * report['accuracy']:.2f}%  mean class accuracy {100 * report['mean_class_accuracy']:.2f}%  "
          f"macro-F1 {100 * report['macro_f1']:.2f}%  ({report['num_samples']} images)")
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0
