"""``ferkit eval``: accuracy, mean class accuracy, macro-F1, per-class table, confusion matrices, optional t-SNE."""

from __future__ import annotations

import argparse

from ferkit.cli._common import (
    RegistryHelp,
    add_checkpoint_args,
    add_device_arg,
    add_plugin_arg,
    add_precision_arg,
    add_set_arg,
    parse_overrides,
    registered_datasets,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a checkpoint on a data set split",
        description="Evaluate a checkpoint. Labels are matched by name, so the data set's order may differ from the "
                    "checkpoint's; classes the data set lacks are reported as absent, samples of classes the model "
                    "lacks are excluded and counted. Writes report.json, per_class.md, confusion PNGs (and tsne.png).",
        epilog="example:\n  ferkit eval --checkpoint runs/poster_v2_rafdb/best.pt --data rafdb --root /data/RAF-DB "
               "--split test --tsne\n", formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_args(p, required=True, help="ferkit or official checkpoint")
    p.add_argument("--model", default=None, help="model name (default: read from the checkpoint; `ferkit models`)")
    add_set_arg(p)
    p.add_argument("--label-names", default=None,
                   help="class order of a checkpoint without label names: an order name (rafdb) or a comma list")
    p.add_argument("--data", required=True, help=RegistryHelp("data set: {names}", names=registered_datasets))
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
    add_device_arg(p)
    add_precision_arg(p)
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (faster CNNs on CPU)")
    p.add_argument("--tsne", action="store_true", help="also plot a t-SNE of the features before the head")
    p.add_argument("--tsne-max", type=int, default=2000, help="at most this many points in the t-SNE (stratified)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    add_plugin_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.cli._common import print_json
    from ferkit.evaluation import evaluate_checkpoint, per_class_table
    from ferkit.train.plugins import import_plugins

    import_plugins(args.plugins)
    labels = args.label_names
    if labels and "," in labels:
        labels = [s.strip() for s in labels.split(",")]
    report, paths = evaluate_checkpoint(
        args.checkpoint, args.data, args.root, args.split, model=args.model, label_names=labels,
        model_options=parse_overrides(args.overrides), data_options=parse_overrides(args.data_options),
        transform=parse_overrides(args.transform), on_error=args.on_error, out_dir=args.out,
        batch_size=args.batch_size, num_workers=args.workers, device=args.device, precision=args.precision,
        channels_last=args.channels_last, tsne=args.tsne, tsne_max=args.tsne_max,
        trust_checkpoint=args.trust_checkpoint, progress=not args.json)
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
