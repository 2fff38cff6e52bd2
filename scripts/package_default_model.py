#!/usr/bin/env python
"""Turn a finished training run into the model file that ships inside ferkit (fp16 safetensors).

    python scripts/package_default_model.py runs/open_main/last.pt [--metrics results.json]

Writes ``ferkit/resources/models/poster_v2_open_ferplus.safetensors``: every tensor in float16 (the BatchNorm-free
model loses < 1e-3 in probability, checked here against the float32 checkpoint on real faces when ../shared is
present), the model name and arguments (with ``grayscale: true``: the training faces were grey, and
``crop: fer2013``), label names, and
meta: source hashes and licences of the streams, the recipe, the run's history and the measured metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "ferkit" / "resources" / "models" / "poster_v2_open_ferplus.safetensors"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="the run's last.pt (the last epoch is shipped: no selection on FER+ Valid)")
    p.add_argument("--metrics", default=None, help="JSON from scripts/model_card.py --json, stored in meta")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()

    import ferkit
    from ferkit.checkpoint import read_checkpoint, save_checkpoint
    from ferkit.models.poster_v2.pretrained import OPEN_LICENCE, OPEN_SOURCES

    ckpt = read_checkpoint(args.checkpoint)
    model = ferkit.create_model(ckpt["model"], checkpoint=ckpt, grayscale=True, crop="fer2013")
    sd = {k: v.detach().to(torch.float16) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    meta = {"licence": OPEN_LICENCE, "sources": OPEN_SOURCES, "recipe": "configs/poster_v2_open_ferplus.yaml",
            "run": {"epoch": ckpt.get("epoch"), "history": (ckpt.get("meta") or {}).get("history")
                    or ckpt.get("history"), "config": ckpt.get("config")},
            "metrics": json.loads(Path(args.metrics).read_text()) if args.metrics else {}}
    obj = model.checkpoint_dict(**meta)
    obj["state_dict"] = sd
    out = save_checkpoint(obj, args.out)
    check = ferkit.create_model(ckpt["model"], checkpoint=out)
    x = torch.rand(16, 3, 112, 112) * 2 - 0.5
    with torch.no_grad():
        diff = (check.eval()(x).softmax(1) - model.eval()(x).softmax(1)).abs().max().item()
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); fp16 vs fp32 max probability difference {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
