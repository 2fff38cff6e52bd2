"""End-to-end inference speed: detection + recognition on a folder of real photos, and POSTER++ alone.

    python benchmarks/inference.py --threads 2 --detector yunet \
        --detector-weights ../shared/weights/face_detection_yunet_2023mar.onnx

Table 1: images/s for ``Recognizer.predict(folder)`` (read, detect, crop, classify) in fp32 and bf16 autocast.
Table 2: POSTER++ ms/image at batch 1 and 8: eager model, ``for_inference`` copy (BN folded, channels-last),
onnxruntime on the exported file. Random weights (speed does not depend on them). Photos: scikit-image's sample
photographs (astronaut, camera: one face each; coffee, chelsea: none), repeated to ``--images``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import call_times  # noqa: E402  (this folder is on sys.path when run as a script)


def write_photos(folder: Path, n: int) -> Path:
    import skimage.data as skd
    from PIL import Image

    photos = [skd.astronaut(), skd.camera(), skd.coffee(), skd.chelsea()]
    for i in range(n):
        Image.fromarray(photos[i % len(photos)]).save(folder / f"photo_{i:03d}.jpg", quality=95)
    return folder


def time_it(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    return statistics.median(call_times(fn, repeats))


def end_to_end(args, model, folder: Path) -> list[tuple[str, float, int]]:
    import ferkit

    rows = []
    n = len(list(folder.glob("*.jpg")))
    for precision in ("fp32", "bf16"):
        rec = ferkit.load(model, detector=args.detector, detector_weights=args.detector_weights, device="cpu",
                          precision=precision, batch_size=args.batch_size)
        faces = sum(len(r.faces) for r in rec.predict(folder))
        sec = time_it(lambda rec=rec: rec.predict(folder), args.repeats)
        rows.append((precision, n / sec, faces))
    return rows


def model_only(args, model) -> list[tuple[str, int, float]]:
    from ferkit.nn.optimize import for_inference

    fast = for_inference(model)
    rows = []
    onnx_path = None
    if not args.skip_onnx:
        from ferkit.export.onnx import export_onnx

        onnx_path = Path(tempfile.mkdtemp()) / "poster_v2.onnx"
        export_onnx(model, onnx_path, check=False)
    for batch in (1, 8):
        x = torch.randn(batch, 3, 224, 224)
        for name, net in (("eager", model), ("for_inference", fast)):
            with torch.inference_mode():
                sec = time_it(lambda net=net, x=x: net(x), args.repeats)
            rows.append((name, batch, 1000 * sec / batch))
        if onnx_path is not None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            sec = time_it(lambda sess=sess, xn=xn: sess.run(None, {"images": xn}), args.repeats)
            rows.append(("onnxruntime", batch, 1000 * sec / batch))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", type=int, default=16, help="photos in the folder")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--detector", default="yunet")
    p.add_argument("--detector-weights", default=None)
    p.add_argument("--skip-onnx", action="store_true")
    p.add_argument("--skip-e2e", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import ferkit

    torch.manual_seed(0)
    model = ferkit.create_model("poster_v2").eval()
    print(f"torch {torch.__version__}, {args.threads} threads, CPU: {_cpu()}")
    if not args.skip_e2e:
        with tempfile.TemporaryDirectory() as tmp:
            folder = write_photos(Path(tmp), args.images)
            print(f"\nEnd to end ({args.images} photos, detector {args.detector}, POSTER++, batch {args.batch_size})")
            print("| precision | images/s | faces found |\n| --- | --- | --- |")
            for precision, ips, faces in end_to_end(args, model, folder):
                print(f"| {precision} | {ips:.2f} | {faces} |")
    print("\nPOSTER++ alone (ms/image, median)")
    print("| runtime | batch | ms/image |\n| --- | --- | --- |")
    for name, batch, ms in model_only(args, model):
        print(f"| {name} | {batch} | {ms:.1f} |")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
