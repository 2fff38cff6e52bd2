"""``ferkit env``: versions, devices and paths, for bug reports."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform
import sys

from ferkit.cli._common import print_json

_PACKAGES = ("torch", "torchvision", "numpy", "pillow", "timm", "open_clip_torch", "opencv-python-headless",
             "onnxruntime", "onnx", "openvino", "safetensors", "scikit-learn", "matplotlib")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("env", help="print versions, devices and paths (for bug reports)",
                       description="Print ferkit, Python and package versions, available devices and the cache path.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def environment() -> dict:
    """Versions, devices and paths as a dict."""
    import torch

    import ferkit
    from ferkit.hub import cache_dir, is_offline

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {
        "ferkit": ferkit.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "mps_available": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "ferkit_home": str(cache_dir()),
        "offline": is_offline(),
    }


def run(args: argparse.Namespace) -> int:
    env = environment()
    if args.json:
        print_json(env)
        return 0
    for key, value in env.items():
        if key == "packages":
            for name, version in value.items():
                print(f"  {name:24s} {version or '-'}")
        else:
            print(f"{key:24s} {value}")
    return 0
