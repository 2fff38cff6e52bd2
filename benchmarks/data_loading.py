"""Data-loading throughput: decoded + augmented images per second through a DataLoader.

Sources: the FER2013 image folder (48x48 grey JPEGs, real data when present) and synthetic RAF-DB-style 100x100
colour JPEGs written to a temporary folder (official RAF-DB layout). Transforms: the POSTER++ and MPA-FER training
pipelines (output 3x224x224 float). Each row times ``--images`` samples in batches of ``--batch-size``; the first
batch is excluded (worker start-up), so the figure is the steady-state rate. The main process uses ``--threads``
torch threads (default 1, as DataLoader workers do: per-image tensor ops gain nothing from intra-op threads and lose a
lot on a busy machine).

    python benchmarks/data_loading.py                     # full table (about a minute on 2 cores)
    python benchmarks/data_loading.py --images 500 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, SubsetRandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ferkit.data import build_dataset, synthetic  # noqa: E402
from ferkit.models.transforms import build_transform  # noqa: E402

DEFAULT_FER2013 = Path(os.environ.get("FERKIT_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data/fer2013"


def images_per_second(ds, n: int, batch_size: int, workers: int) -> float:
    """Steady-state rate over ``n`` random samples (the first batch, including worker start-up, is not timed)."""
    g = torch.Generator().manual_seed(0)
    indices = torch.randperm(len(ds), generator=g)[:n].tolist()
    loader = DataLoader(ds, batch_size=batch_size, sampler=SubsetRandomSampler(indices, generator=g),
                        num_workers=workers)
    it = iter(loader)
    next(it)
    start, seen = time.perf_counter(), 0
    for x, _ in it:
        seen += len(x)
    return seen / max(time.perf_counter() - start, 1e-9)


def sources(args: argparse.Namespace, tmp: Path) -> list[tuple[str, str, Path]]:
    out = []
    if (args.fer2013 / "train").is_dir():
        out.append(("FER2013 folder 48x48 grey JPEG", "fer2013", args.fer2013))
    else:
        print(f"(FER2013 not found at {args.fer2013}: skipped)", file=sys.stderr)
    per_class = -(-args.images // 7) + args.batch_size
    names = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
    base = synthetic.write_rafdb(tmp, {"train": dict.fromkeys(names, per_class)}, size=100, pattern="texture")
    out.append(("RAF-DB-style 100x100 colour JPEG", "rafdb", base))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=2000, help="samples timed per row")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--fer2013", type=Path, default=DEFAULT_FER2013)
    p.add_argument("--threads", type=int, default=1, help="torch threads in the main process (workers=0 rows)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, root in sources(args, Path(tmp)):
            for family in ("poster_v2", "mpa_fer"):
                ds = build_dataset(name, root, "train", transform=build_transform(family, train=True, dataset=name))
                for workers in args.workers:
                    rate = images_per_second(ds, min(args.images, len(ds)), args.batch_size, workers)
                    rows.append({"source": label, "transform": f"{family} train", "workers": workers,
                                 "images_per_s": round(rate, 1)})
                    if not args.json:
                        print(f"{label:34s} {family + ' train':18s} workers={workers}  {rate:8.1f} images/s",
                              flush=True)
    if args.json:
        print(json.dumps({"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "rows": rows},
                         indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
