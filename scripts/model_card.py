#!/usr/bin/env python
"""Measure a FER+ model for its model card: accuracy, per-class accuracy, confusion matrices and calibration on
FER+ Valid (majority rule) and FER2013 PublicTest (original labels, all images and the ``clean`` subset).

    python scripts/model_card.py                                  # the shipped default model
    python scripts/model_card.py --model poster_v2_open --checkpoint runs/x/last.pt --out docs/img/model_card
    python scripts/model_card.py --shared ../shared --json results.json

The FER+ head is scored on FER2013 by class name (its contempt predictions count as errors); the FER2013 head of
the same file (``poster_v2_open.fer2013``) is scored too. Prints markdown tables; writes PNGs and a JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="pretrained name (default: ferkit's default model) or arch")
    p.add_argument("--checkpoint", default=None, help="checkpoint for --model (a training run's last.pt)")
    p.add_argument("--aux", action="store_true", help="also score the checkpoint's auxiliary FER2013 head")
    p.add_argument("--shared", default=str(REPO.parent / "shared"), help="folder with data/ferplus, data/fer2013")
    p.add_argument("--out", default=None, help="folder for the PNG figures (none: no figures)")
    p.add_argument("--json", default=None, help="write all numbers here")
    p.add_argument("--tta", action="store_true", help="also score the FER+ head with horizontal-flip averaging")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def load_models(args: argparse.Namespace) -> dict[str, torch.nn.Module]:
    import ferkit
    from ferkit.models._factory import promote_aux_head
    from ferkit.models.pretrained import DEFAULT_MODEL

    if args.checkpoint is None:
        name = args.model or DEFAULT_MODEL
        models = {"FER+ head": ferkit.create_model(name)}
        if name.startswith("poster_v2_open."):
            models["FER2013 head"] = ferkit.create_model("poster_v2_open.fer2013")
        return models
    from ferkit.checkpoint import read_checkpoint

    ckpt = read_checkpoint(args.checkpoint)
    models = {"FER+ head": ferkit.create_model(args.model or ckpt["model"], checkpoint=ckpt)}
    if args.aux and (ckpt.get("model_args") or {}).get("aux_head"):
        models["FER2013 head"] = ferkit.create_model(args.model or ckpt["model"], checkpoint=promote_aux_head(ckpt))
    return models


@torch.no_grad()
def probabilities(model: torch.nn.Module, dataset, batch_size: int, flip: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """Softmax outputs (N, K) in the model's label order, dataset targets (N,), seconds. ``flip``: the mean of the
    softmax of each image and of its mirror image (test-time augmentation)."""
    from torch.utils.data import DataLoader

    from ferkit.models.transforms import build_eval_transform

    dataset.transform = build_eval_transform(model.data_config)
    model.eval()
    probs, targets = [], []
    start = time.perf_counter()
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0):
        p = model(x).float().softmax(1)
        if flip:
            p = (p + model(x.flip(3)).float().softmax(1)) / 2
        probs.append(p.numpy())
        targets.append(y.numpy())
    return np.concatenate(probs), np.concatenate(targets), time.perf_counter() - start


def score(probs: np.ndarray, targets: np.ndarray, model_names, data_names, subset: np.ndarray | None = None) -> dict:
    """Accuracy etc. with data targets mapped to model classes by name (unknown classes: excluded)."""
    from ferkit.evaluation.calibration import reliability
    from ferkit.evaluation.metrics import confusion_matrix, summarize
    from ferkit.labels import mapping

    lookup = np.array([-1 if i is None else i for i in mapping(data_names, model_names)])
    t = lookup[targets]
    keep = t >= 0 if subset is None else (t >= 0) & subset
    pred = probs.argmax(1)
    cm = confusion_matrix(torch.from_numpy(t[keep]), torch.from_numpy(pred[keep]), len(model_names))
    out = summarize(cm, model_names)
    rel = reliability(probs[keep], pred[keep] == t[keep])
    out.update(confusion_matrix=cm.tolist(), ece=rel.ece, mce=rel.mce, excluded=int((t < 0).sum()),
               _reliability=rel)
    return out


def evaluate_all(args: argparse.Namespace) -> dict:
    from ferkit.data import build_dataset

    shared = Path(args.shared)
    fp = build_dataset("ferplus", shared / "data" / "ferplus", "val", label_rule="majority")
    fe = build_dataset("fer2013", shared / "data" / "fer2013", "val")
    clean = _clean_mask(shared / "data" / "fer2013", fe)
    results = {}
    models = load_models(args)
    for head, model in models.items():
        for data_name, ds, subsets in (("FER+ Valid (majority)", fp, {"": None}),
                                       ("FER2013 PublicTest", fe, {"": None, " clean": clean})):
            probs, targets, secs = probabilities(model, ds, args.batch_size)
            for suffix, mask in subsets.items():
                r = score(probs, targets, model.label_names, ds.label_names, mask)
                r["images_per_second"] = len(ds) / secs
                results[f"{head} | {data_name}{suffix}"] = r
    if args.tta:
        head, model = next(iter(models.items()))
        probs, targets, secs = probabilities(model, fp, args.batch_size, flip=True)
        r = score(probs, targets, model.label_names, fp.label_names)
        r["images_per_second"] = len(fp) / secs
        results[f"{head} + flip TTA | FER+ Valid (majority)"] = r
    return results


def _clean_mask(root: Path, ds) -> np.ndarray:
    """``clean == 1`` of FER2013's labels.csv, aligned with the data set's samples."""
    import csv

    with open(root / "labels.csv", newline="") as f:
        rows = {str((root / r["path"]).resolve()): r.get("clean", "") for r in csv.DictReader(f)}
    return np.array([rows.get(str(Path(s).resolve()), "1") != "0" for s, _ in ds.samples])


def report(results: dict, out: Path | None) -> None:
    print("| model head | data | images | accuracy | mean class acc. | macro-F1 | ECE |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for key, r in results.items():
        head, data = key.split(" | ")
        print(f"| {head} | {data} | {r['num_samples']:,} | {100 * r['accuracy']:.2f} % | "
              f"{100 * r['mean_class_accuracy']:.2f} % | {100 * r['macro_f1']:.2f} % | {100 * r['ece']:.2f} % |")
    for key, r in results.items():
        print(f"\n{key}: per-class accuracy")
        print("| class | support | accuracy | precision |")
        print("| --- | ---: | ---: | ---: |")
        for row in r["per_class"]:
            acc = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f} %"
            prec = "-" if row["precision"] is None else f"{100 * row['precision']:.1f} %"
            print(f"| {row['class']} | {row['support']} | {acc} | {prec} |")
    if out is None:
        return
    from ferkit.evaluation.plots import plot_confusion, plot_reliability

    out.mkdir(parents=True, exist_ok=True)
    for key, r in results.items():
        slug = key.lower().replace(" | ", "_").replace("+", "plus").replace("(", "").replace(")", "").replace(" ", "_")
        names = [row["class"] for row in r["per_class"]]
        plot_confusion(r["confusion_matrix"], names, out / f"confusion_{slug}.png", normalize=True, title=key)
        plot_reliability(r["_reliability"], out / f"reliability_{slug}.png",
                         title=f"{key}\nECE {100 * r['ece']:.2f} %")


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    results = evaluate_all(args)
    report(results, Path(args.out) if args.out else None)
    if args.json:
        clean = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in results.items()}
        Path(args.json).write_text(json.dumps(clean, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
