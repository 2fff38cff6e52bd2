"""``ferkit train CONFIG``: train a model from a recipe; ``--resume RUN_DIR`` continues a run exactly."""

from __future__ import annotations

import argparse
import signal

from ferkit.cli._common import add_plugin_arg, add_set_arg, add_trust_checkpoint_arg, parse_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model from a YAML recipe (configs/*.yaml)",
        description="Train from a recipe. Every key can be overridden with --set section.key=value. Under torchrun "
                    "(`torchrun --nproc_per_node N -m ferkit train CONFIG`) it trains with DistributedDataParallel.",
        epilog="examples:\n  ferkit train configs/poster_v2_rafdb.yaml --set data.root=/data/RAF-DB\n"
               "  ferkit train --resume runs/poster_v2_rafdb\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", default=None, help="YAML recipe (optional with --resume)")
    add_set_arg(p, help="config override, repeatable (e.g. --set optim.lr=1e-4 --set train.epochs=10)")
    p.add_argument("--out", default=None, help="run folder (default: output.dir of the config, runs/{name})")
    p.add_argument("--resume", default=None, metavar="RUN_DIR_OR_CKPT",
                   help="continue a run from its folder (last.pt) with its saved config")
    p.add_argument("--allow-changes", action="store_true",
                   help="with --resume: accept a config that differs from the saved one (e.g. more epochs)")
    add_plugin_arg(p, extra="; with --resume, the consent to run that plugin when the run's config names it")
    p.add_argument("--trust-plugins", action="store_true",
                   help="with --resume: import every plugin the run's saved config names (runs their code; only for "
                        "runs you trust). Without it, or --plugin for each, such a run is refused")
    add_trust_checkpoint_arg(p, what="a legacy --resume checkpoint or model.init_checkpoint")
    p.set_defaults(func=run)


def _sigterm_to_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    from ferkit.train import distributed, train

    if args.config is None and args.resume is None:
        raise ValueError("give a CONFIG file or --resume RUN_DIR")
    previous = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        result = train(args.config, overrides=parse_overrides(args.overrides), out_dir=args.out, resume=args.resume,
                       allow_changes=args.allow_changes, plugins=args.plugins, trust_plugins=args.trust_plugins,
                       trust_checkpoint=args.trust_checkpoint)
    finally:
        signal.signal(signal.SIGTERM, previous)
        distributed.cleanup()
    best = result.best
    if best.get("value") is not None:
        print(f"best {best['metric']} {best['value']:.4f} at epoch {best['epoch']}")
    note = ", stopped early" if result.stopped_early else ""
    print(f"run folder: {result.out_dir} ({result.epochs_done} epochs{note})")
    return 0
