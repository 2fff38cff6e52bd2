"""``ferkit detect``: detect (and optionally crop) faces in image files.

Exit codes: 0 every image was read (with or without faces); 1 some images could not be read (the others are still
processed); 2 usage errors (unknown detector, missing weights in offline mode, ...).
Python: ``ferkit.detect.detect_files(ferkit.detect.create_detector(...), paths, crops_dir=...)``.
"""

from __future__ import annotations

import argparse
import sys

from ferkit.cli._common import (
    add_detector_arg,
    add_device_arg,
    add_plugin_arg,
    add_trust_checkpoint_arg,
    import_plugins_of,
)


def register(sub: argparse._SubParsersAction) -> None:
    from ferkit.detect import CROP_PRESETS, DEFAULT_MAX_SIDE

    p = sub.add_parser("detect", help="detect faces in images (boxes, scores, 5 landmarks)",
                       description="Detect faces; print one line per face or JSON; optionally save aligned crops.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_detector_arg(p, default="retinaface")
    p.add_argument("--weights", default=None, help="weights file (mtcnn: folder) instead of the cache")
    add_trust_checkpoint_arg(p, what="a legacy PyTorch --weights file")
    add_device_arg(p, default="cpu")
    p.add_argument("--score-threshold", type=float, default=None, help="minimum score (default: per detector)")
    p.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                   help=f"downscale larger images for detection (default {DEFAULT_MAX_SIDE}; 0 = never)")
    p.add_argument("--option", dest="options", action="append", metavar="KEY=VALUE", default=[],
                   help="detector option, repeatable (e.g. --option min_face_size=40)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {image, faces}")
    p.add_argument("--crops", default=None, metavar="DIR", help="save one PNG crop per face into DIR")
    p.add_argument("--crop", default="square", choices=sorted(CROP_PRESETS), help="crop preset (default square)")
    p.add_argument("--size", type=int, default=224, help="crop size in pixels (default 224)")
    add_plugin_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ferkit.cli._common import check_output_dir, parse_overrides, print_json
    from ferkit.detect import create_detector, detect_files

    check_output_dir(args.crops, "--crops")
    import_plugins_of(args)
    try:
        det = create_detector(args.detector, weights=args.weights, device=args.device,
                              score_threshold=args.score_threshold, max_side=args.max_side or None,
                              trust_checkpoint=args.trust_checkpoint, **parse_overrides(args.options))
    except (TypeError, ImportError) as e:  # unknown --option, OpenCV missing: usage errors with a clear message
        raise ValueError(str(e)) from e
    results, failed = [], 0
    for item in detect_files(det, args.images, crops_dir=args.crops or None, crop=args.crop, size=args.size):
        if item.error is not None:
            print(f"ferkit detect: {item.path}: {item.error}", file=sys.stderr)
            failed += 1
            continue
        results.append(item.to_dict())
        if not args.json:
            print(f"{item.path}: {len(item.faces)} face(s)")
            for f in item.faces:
                print("  box=({:.1f}, {:.1f}, {:.1f}, {:.1f}) score={:.3f}".format(*f.box, f.score))
    if args.json:
        print_json(results)
    return 1 if failed else 0
