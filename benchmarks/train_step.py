"""Training-step throughput of a registered model on this machine: fp32 / channels-last / bf16, with and without SAM.

    python benchmarks/train_step.py --model poster_v2 --batch 16 --steps 3 --threads 2

Prints one row per setting: median seconds per optimiser step and images per second (after one warm-up step).
Timings on a shared machine are noisy; re-run on a quiet one for numbers to publish.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import ferkit
from ferkit.train.config import OptimSection
from ferkit.train.optim import SAM, build_optimizer
from ferkit.train.step import StepRunner, TrainForward

SETTINGS = [  # (name, channels_last, precision, sam)
    ("fp32", False, "fp32", False),
    ("fp32 channels-last", True, "fp32", False),
    ("bf16 autocast channels-last", True, "bf16", False),
    ("fp32 channels-last + SAM", True, "fp32", True),
]


def bench(model_name: str, batch: int, steps: int, channels_last: bool, precision: str, sam: bool) -> list[float]:
    torch.manual_seed(0)
    model = ferkit.create_model(model_name, num_classes=7).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
        if hasattr(model, "memory_format"):
            model.memory_format = torch.channels_last
    size = model.data_config.get("input_size", 224)
    opt = build_optimizer([p for p in model.parameters() if p.requires_grad], OptimSection(name="adam", lr=1e-5))
    runner = StepRunner(TrainForward(model), opt, device=torch.device("cpu"), precision=precision,
                        sam=SAM(opt) if sam else None, channels_last=channels_last)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 7, (batch,))
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        runner([(x, y)])
        times.append(time.perf_counter() - t)
    return times[1:]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="poster_v2")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default=None, help="comma list of setting names to run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    only = set(args.only.split(",")) if args.only else None
    print(f"{args.model}, batch {args.batch}, {args.threads} threads, torch {torch.__version__}")
    print(f"{'setting':32s} {'s/step':>8s} {'img/s':>8s}")
    for name, cl, prec, sam in SETTINGS:
        if only and name not in only:
            continue
        med = statistics.median(bench(args.model, args.batch, args.steps, cl, prec, sam))
        print(f"{name:32s} {med:8.2f} {args.batch / med:8.2f}", flush=True)


if __name__ == "__main__":
    main()
