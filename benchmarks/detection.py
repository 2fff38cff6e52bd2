"""Face-detector speed: milliseconds per image on the CPU (2 threads by default).

Images: scikit-image's astronaut (512x512) and the same photo upscaled to 1080x1080 and centred on a 1920x1080
canvas (edge-padded). Large images are downscaled to ``--max-side`` for detection, as ``detect`` does by default.

    python benchmarks/detection.py                              # weights from the ferkit cache
    python benchmarks/detection.py --weights-dir ../shared/weights --repeat 10

``--fer2013 ROOT`` also reports the share of FER2013 validation faces found (48x48 faces upscaled 4x with bicubic
interpolation and padded by 64 edge pixels; a hit is a top box with IoU > 0.4 against the face area), with each
detector's default score threshold.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's ferkit, not an installed one
from _timing import call_times  # noqa: E402  (this folder is on sys.path when run as a script)

from ferkit.detect import DEFAULT_MAX_SIDE, create_detector  # noqa: E402


def images() -> dict[str, np.ndarray]:
    import skimage.data

    astro = skimage.data.astronaut()
    big = np.asarray(Image.fromarray(astro).resize((1080, 1080), Image.BILINEAR))
    hd = np.pad(big, ((0, 0), (420, 420), (0, 0)), mode="edge")
    return {"astronaut 512x512": astro, "1920x1080 upscale": hd}


def weights_for(name: str, folder: Path | None):
    if folder is None:
        return None
    return {"yunet": folder / "face_detection_yunet_2023mar.onnx", "retinaface": folder /
            "retinaface_mobilenet0.25_Final.pth", "mtcnn": folder}.get(name)


def time_ms(fn, repeat: int) -> tuple[float, float]:
    """Median and best milliseconds of ``repeat`` calls after one warm-up call."""
    runs = [t * 1000 for t in call_times(fn, repeat)]
    return statistics.median(runs), min(runs)


def fer2013_recall(det, root: Path, n: int) -> float:
    """Share of ``n`` FER2013 validation faces (evenly over classes, sorted file names) that ``det`` finds."""
    classes = sorted(p for p in (root / "val").iterdir() if p.is_dir())
    per_class = [sorted(c.glob("*.jpg")) for c in classes]
    files = [fs[i] for i in range(n) for fs in per_class if i < len(fs)][:n]
    hits = 0
    for f in files:
        face = Image.open(f).convert("L").resize((192, 192), Image.BICUBIC)
        faces = det.detect(np.pad(np.asarray(face), 64, mode="edge"))
        if faces:
            x1, y1, x2, y2 = faces[0].box
            inter = max(0, min(x2, 256) - max(x1, 64)) * max(0, min(y2, 256) - max(y1, 64))
            hits += inter / ((x2 - x1) * (y2 - y1) + 192 * 192 - inter) > 0.4
    return hits / len(files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detectors", default="yunet,retinaface,mtcnn,haar,none")
    ap.add_argument("--weights-dir", type=Path, default=None, help="folder with the detector files (else the cache)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE)
    ap.add_argument("--fer2013", type=Path, default=None, help="FER2013 folder: also report the share of faces found")
    ap.add_argument("--n", type=int, default=140, help="FER2013 faces to try (default 140)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import cv2

        cv2.setNumThreads(args.threads)
    except ImportError:
        pass
    imgs = images()
    print(f"threads={args.threads} repeat={args.repeat} max_side={args.max_side} torch={torch.__version__}")
    print(f"| {'detector':10s} | {'image':18s} | {'faces':>5s} | {'median ms':>9s} | {'min ms':>7s} |")
    print(f"|{'-' * 12}|{'-' * 20}|{'-' * 7}|{'-' * 11}|{'-' * 9}|")
    for name in args.detectors.split(","):
        det = create_detector(name, weights=weights_for(name, args.weights_dir), max_side=args.max_side)
        for label, img in imgs.items():
            n = len(det.detect(img))
            med, best = time_ms(lambda d=det, i=img: d.detect(i), args.repeat)
            print(f"| {name:10s} | {label:18s} | {n:5d} | {med:9.1f} | {best:7.1f} |")
        if args.fer2013 is not None and name != "none":
            rate = fer2013_recall(det, args.fer2013, args.n)
            print(f"| {name:10s} | FER2013 x4 faces found: {100 * rate:.1f}% of {args.n} "
                  f"(score >= {det.score_threshold})")


if __name__ == "__main__":
    main()
