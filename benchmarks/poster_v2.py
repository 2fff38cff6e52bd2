"""POSTER++ CPU inference speed: the official computation vs ferkit (eager and ``for_inference``), fp32 and bf16.

    python benchmarks/poster_v2.py [--threads 2] [--batches 1 8 32] [--repeats 5] [--compile]

Prints a markdown table: median latency per batch, ms per image, and the max |logit difference| to the official
computation in fp32. "official" is the literal re-statement of the official POSTER_V2 forward in
``tests/reference/poster_v2_official.py`` (same ops as the official modules: GDC head executed, MaxPool(1, s)
shortcuts, full last ViT block, explicit softmax attention).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import call_times  # noqa: E402  (this folder is on sys.path when run as a script)

import ferkit  # noqa: E402
from ferkit.nn.optimize import for_inference  # noqa: E402
from tests.reference import poster_v2_official as ref  # noqa: E402


def timeit(fn, x, repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``fn(x)`` under inference_mode."""
    with torch.inference_mode():
        return statistics.median(call_times(lambda: fn(x), repeats, warmup))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="also time torch.compile(for_inference(model)) (slow start)")
    p.add_argument("--skip-official", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    sd = ref.random_official_state_dict(7, seed=0)
    model = ferkit.create_model("poster_v2", checkpoint=sd, label_names="rafdb").eval()
    impls = {"ferkit eager": model, "ferkit for_inference": for_inference(model)}
    if not args.skip_official:
        impls = {"official computation": lambda x: ref.forward(x, sd), **impls}
    if args.compile:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        impls["ferkit for_inference + torch.compile"] = torch.compile(for_inference(model))

    print(f"torch {torch.__version__}, {args.threads} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, input 224x224, random weights, median of {args.repeats}\n")
    print("| implementation | precision | batch | latency (ms) | ms / image | max abs diff vs official fp32 |")
    print("|---|---|---|---|---|---|")
    for b in args.batches:
        x = torch.randn(b, 3, 224, 224)
        with torch.inference_mode():
            want = ref.forward(x, sd) if not args.skip_official else model(x)
        for name, fn in impls.items():
            for precision in ("fp32", "bf16"):
                ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

                def run(inp, fn=fn, ctx=ctx):
                    with ctx:
                        return fn(inp)

                sec = timeit(run, x, args.repeats if b < 32 else max(2, args.repeats // 2))
                with torch.inference_mode():
                    diff = (run(x).float() - want).abs().max().item()
                ms = sec * 1e3
                print(f"| {name} | {precision} | {b} | {ms:.1f} | {ms / b:.1f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
