"""``ferkit detect``: detect (and optionally crop) faces in image files.

Exit codes: 0 every image was read (with or without faces); 1 some images could not be read (the others are still
processed); 2 usage errors (unknown detector, missing weights in offline mode, ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ferkit.detect import CROP_PRESETS, DEFAULT_MAX_SIDE, list_detectors

    p = sub.add_parser("detect", help="detect faces in images (boxes, scores, 5 landmarks)",
                       description="Detect faces; print one line per face or JSON; optionally save aligned crops.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--detector", default="retinaface", choices=list_detectors())
    p.add_argument("--weights", default=None, help="weights file (mtcnn: folder) instead of the cache")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of a legacy PyTorch --weights file with Python objects (only for files "
                        "you trust)")
    p.add_argument("--device", default="cpu", help="cpu, cuda[:i] or auto")
    p.add_argument("--score-threshold", type=float, default=None, help="minimum score (default: per detector)")
    p.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                   help=f"downscale larger images for detection (default {DEFAULT_MAX_SIDE}; 0 = never)")
    p.add_argument("--option", dest="options", action="append", metavar="KEY=VALUE", default=[],
                   help="detector option, repeatable (e.g. --option min_face_size=40)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {image, faces}")
    p.add_argument("--crops", default=None, metavar="DIR", help="save one PNG crop per face into DIR")
    p.add_argument("--crop", default="square", choices=sorted(CROP_PRESETS), help="crop preset (default square)")
    p.add_argument("--size", type=int, default=224, help="crop size in pixels (default 224)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.cli._common import check_output_dir, parse_overrides, print_json
    from ferkit.detect import create_detector

    check_output_dir(args.crops, "--crops")
    try:
        det = create_detector(args.detector, weights=args.weights, device=args.device,
                              score_threshold=args.score_threshold, max_side=args.max_side or None,
                              trust_checkpoint=args.trust_checkpoint, **parse_overrides(args.options))
    except (TypeError, ImportError) as e:  # unknown --option, OpenCV missing: usage errors with a clear message
        raise ValueError(str(e)) from e
    results, failed = [], 0
    for path in args.images:
        try:
            faces = _process(det, path, args)
        except (OSError, ValueError) as e:
            print(f"ferkit detect: {path}: {e}", file=sys.stderr)
            failed += 1
            continue
        results.append({"image": path, "faces": [f.to_dict() for f in faces]})
        if not args.json:
            print(f"{path}: {len(faces)} face(s)")
            for f in faces:
                print("  box=({:.1f}, {:.1f}, {:.1f}, {:.1f}) score={:.3f}".format(*f.box, f.score))
    if args.json:
        print_json(results)
    return 1 if failed else 0


def _process(det, path: str, args: argparse.Namespace):
    from ferkit.detect import crop_preset, load_image

    image = load_image(path)
    faces = det.detect(image)
    if args.crops:
        from PIL import Image

        out = Path(args.crops)
        out.mkdir(parents=True, exist_ok=True)
        for i, face in enumerate(faces):
            crop = crop_preset(image, face, args.crop, size=args.size)
            Image.fromarray(crop).save(out / f"{Path(path).stem}_{i}.png")
    return faces
