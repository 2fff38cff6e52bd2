"""End-to-end faces/s of ``Recognizer.predict`` on a folder and ``predict_video`` on a video: sequential
(``workers=0``, the code path before the overlapped pipeline) vs overlapped (``workers=1, 2``), and video tracking
(``detect_every``).

    python benchmarks/pipeline.py [--threads 2] [--images 48] [--frames 120] [--model poster_v2_open.ferplus]

Inputs: the photos packaged with ferkit (astronaut, Grace Hopper: one face each) repeated to ``--images`` JPEG files
of different sizes, and a generated 640x480 MJPG video of two faces (one moving) of ``--frames`` frames. Detector:
YuNet (packaged). Also prints the time of each stage alone (decode, detect, crop, classify) on the folder: the
sequential path costs their sum, an ideal overlap the largest of them (on enough cores). Numbers vary with the load
of the machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import cpu_flags  # noqa: E402  (this folder is on sys.path when run as a script)

import ferkit  # noqa: E402

EXAMPLES = Path(ferkit.__file__).parent / "resources" / "examples"


def write_folder(folder: Path, n: int) -> list[Path]:
    photos = [Image.open(EXAMPLES / name).convert("RGB") for name in ("astronaut.jpg", "grace_hopper.jpg")]
    out = []
    for i in range(n):
        img = photos[i % 2]
        scale = (1.0, 1.5, 2.0)[(i // 2) % 3]  # 512 px to ~1200 px photos
        img = img.resize((int(img.width * scale), int(img.height * scale)))
        out.append(folder / f"photo_{i:03d}.jpg")
        img.save(out[-1], quality=92)
    return out


def write_video(path: Path, frames: int) -> Path:
    import cv2

    a = Image.open(EXAMPLES / "astronaut.jpg").convert("RGB").crop((150, 30, 300, 200)).resize((135, 150))
    b = Image.open(EXAMPLES / "grace_hopper.jpg").convert("RGB").crop((100, 60, 420, 400)).resize((135, 144))
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 480))
    for t in range(frames):
        img = Image.new("RGB", (640, 480), (110, 120, 130))
        img.paste(a, (20 + (3 * t) % 460, 40))
        img.paste(b, (420, 280))
        w.write(np.ascontiguousarray(np.asarray(img)[:, :, ::-1]))
    w.release()
    return path


def stages(rec, files: list[Path]) -> dict[str, float]:
    """Seconds per image of each stage alone, in this thread."""
    from ferkit.infer.frames import Frame
    from ferkit.infer.inputs import InputItem, read_rgb
    from ferkit.infer.records import Record

    t = time.perf_counter()
    rgbs = [read_rgb(InputItem(str(f), f)) for f in files]
    decode = time.perf_counter() - t
    t = time.perf_counter()
    faces = [rec.detect(x) for x in rgbs]
    detect = time.perf_counter() - t
    frames = [Frame(Record(str(f)), rgb=x, faces=fs) for f, x, fs in zip(files, rgbs, faces)]
    t = time.perf_counter()
    crops = [c for fr in frames for _, c in rec.crop_faces(fr).crops]
    crop = time.perf_counter() - t
    batch = torch.stack(crops)
    t = time.perf_counter()
    rec.classify(batch)
    classify = time.perf_counter() - t
    n = len(files)
    return {"decode": decode / n, "detect": detect / n, "crop": crop / n, "classify": classify / n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", type=int, default=48)
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--model", default=None, help="default: ferkit's default model")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--backend", dest="backends", nargs="+", default=["torch"],
                   help="classifier runtimes to compare (torch onnx openvino auto; default: torch)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} torch threads, {os.cpu_count()} cores, CPU {cpu_flags()}, "
          f"load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        files = write_folder(Path(tmp), args.images)
        video = write_video(Path(tmp) / "two_faces.avi", args.frames)
        recs = {(b, w): ferkit.load(args.model, detector="yunet", device="cpu", batch_size=args.batch_size,
                                    workers=w, backend=b)
                for b in args.backends for w in args.workers}
        any_rec = next(iter(recs.values()))
        print(f"model {any_rec.model_name}, detector yunet, batch {args.batch_size}, {args.images} photos "
              f"(512-1200 px), video {args.frames} frames 640x480 MJPG\n")

        for b in args.backends:
            per = stages(recs[b, args.workers[0]], files[: min(16, len(files))])
            print(f"| stage alone (backend {b}) | ms / image |\n| --- | --- |")
            for name, sec in per.items():
                print(f"| {name} | {1e3 * sec:.1f} |")
            print(f"| sum (sequential bound) | {1e3 * sum(per.values()):.1f} |")
            print(f"| max (overlapped bound) | {1e3 * max(per.values()):.1f} |\n")

        configs = [("folder", k, None) for k in recs] + [("video", k, e) for k in recs for e in (1, 5)]
        runs = {c: [] for c in configs}
        counts = {}
        for c in configs:  # warm-up, and the record / face counts
            records = run(recs[c[1]], c, files, video)
            counts[c] = (len(records), sum(len(r.faces) for r in records))
        for _ in range(args.repeats):  # rounds over all configurations: a change of load hits them all alike
            for c in configs:
                t = time.perf_counter()
                run(recs[c[1]], c, files, video)
                runs[c].append(time.perf_counter() - t)
        print("| input | backend | workers | detect_every | items/s | faces/s |")
        print("| --- | --- | --- | --- | --- | --- |")
        for c in configs:
            sec = statistics.median(runs[c])
            print(f"| {c[0]} | {recs[c[1]].backend.name} | {c[1][1]} | {c[2] or '-'} | {counts[c][0] / sec:.2f} | "
                  f"{counts[c][1] / sec:.2f} |")
        print(f"\nmedian of {args.repeats} interleaved rounds; load average after: {os.getloadavg()[0]:.1f}")


def run(rec, config, files, video) -> list:
    kind, _, every = config
    return rec.predict(files) if kind == "folder" else list(rec.predict_video(video, detect_every=every))


if __name__ == "__main__":
    main()
