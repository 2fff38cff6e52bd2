"""MPA-FER CPU benchmark: inference latency against plain CLIP ``encode_image``, and one training step.

    python benchmarks/mpa_fer.py                       # ViT-B/16, batches 1 and 8, training step at batch 32
    python benchmarks/mpa_fer.py --arch tiny --train-batch 4 --repeats 3   # quick smoke run

Random CLIP weights (timing does not depend on the values). The training step runs in a fresh subprocess so its peak
resident memory (``ru_maxrss``) is its own. Prints a table; no assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _timing import call_times  # noqa: E402  (this folder is on sys.path when run as a script)


def _model(arch: str):
    import ferkit

    return ferkit.create_model("mpa_fer_vit_b16", clip_arch=arch, clip_weights="random")


def _median_ms(fn, x, repeats: int, warmup: int) -> float:
    with torch.no_grad():
        return statistics.median(call_times(lambda: fn(x), repeats, warmup)) * 1e3


def inference_rows(arch: str, batches: list[int], repeats: int, warmup: int) -> list[dict]:
    model = _model(arch).prepare_inference()
    rows = []
    for b in batches:
        x = torch.randn(b, 3, 224, 224)
        clip_ms = _median_ms(model.clip.encode_image, x, repeats, warmup)
        mpa_ms = _median_ms(model, x, repeats, warmup)
        rows.append({"batch": b, "clip_encode_image_ms": clip_ms, "mpa_fer_ms": mpa_ms, "overhead": mpa_ms / clip_ms})
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = model.save(Path(tmp) / "mpa.pt").stat().st_size
    return rows, {"trainable": sum(p.numel() for p in model.trainable_parameters()), "checkpoint_bytes": ckpt}


def train_worker(arch: str, batch: int, steps: int) -> dict:
    """One process: build, then time ``steps`` SGD steps (the first is a warm-up); report peak RSS."""
    model = _model(arch).train()
    model.set_prototypes(torch.nn.functional.normalize(torch.randn(model.num_classes, model.embed_dim), dim=-1))
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.032, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(batch, 3, 224, 224), torch.randint(0, model.num_classes, (batch,))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _, _ = model.training_loss(x, y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timed = times[1:] or times
    return {"batch": batch, "step_s": statistics.median(timed), "peak_rss_mb": rss_peak / 1024,
            "rss_before_mb": rss_before / 1024}


def train_row(arch: str, batch: int, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--arch", arch, "--_train-worker", str(batch), "--train-steps", str(steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="ViT-B-16", help="CLIP shape: ViT-B-16, ViT-L-14 or tiny")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--train-batch", type=int, default=32, help="0 skips the training step")
    p.add_argument("--train-steps", type=int, default=2, help="including one warm-up step")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--_train-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._train_worker is not None:
        print(json.dumps(train_worker(args.arch, args._train_worker, args.train_steps)))
        return
    rows, extra = inference_rows(args.arch, args.batches, args.repeats, args.warmup)
    print(f"MPA-FER {args.arch}, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, random weights")
    print(f"trainable parameters {extra['trainable']:,}; checkpoint {extra['checkpoint_bytes'] / 1024:.0f} KiB")
    print(f"{'batch':>5} {'CLIP encode_image ms':>21} {'MPA-FER forward ms':>19} {'ratio':>6}")
    for r in rows:
        print(f"{r['batch']:>5} {r['clip_encode_image_ms']:>21.1f} {r['mpa_fer_ms']:>19.1f} {r['overhead']:>6.2f}")
    if args.train_batch:
        t = train_row(args.arch, args.train_batch, args.train_steps)
        print(f"training step (batch {t['batch']}, SGD, all loss terms): {t['step_s']:.2f} s; peak RSS "
              f"{t['peak_rss_mb']:.0f} MB (model alone {t['rss_before_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
