"""What ``predict`` accepts, expanded to a flat list of inputs, each read into an RGB uint8 array on demand.

Accepted: a path to an image file, a folder (its image files, recursively, in sorted order), a ``PIL.Image``, a numpy
array (H, W), (H, W, 1|3|4) — RGB unless ``channel_order="bgr"`` — or (N, H, W, C) for N images, and any list of these.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.image import IMAGE_EXTENSIONS, is_image_file

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


@dataclass(frozen=True)
class InputItem:
    """One input: ``name`` goes into the record; ``source`` is a path, PIL image or array; ``error`` is set when the
    input is known to be unusable before reading it (e.g. an empty folder)."""

    name: str
    source: Any
    error: str | None = None


def is_video_file(path: str | os.PathLike) -> bool:
    """True when the file name ends with a common video extension (case-insensitive)."""
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


def is_single(x: Any) -> bool:
    """True for one image (a file path, a PIL image, a 2-D/3-D array); False for lists, folders and 4-D arrays."""
    if isinstance(x, (str, os.PathLike)):
        return not Path(x).is_dir()
    if isinstance(x, np.ndarray):
        return x.ndim <= 3
    return _is_pil(x)


def expand(x: Any) -> Iterator[InputItem]:
    """Flatten ``x`` into :class:`InputItem` s (lazily; folders are listed when reached)."""
    if isinstance(x, (str, os.PathLike)):
        yield from _expand_path(Path(x))
    elif _is_pil(x):
        yield InputItem(f"<PIL image {x.width}x{x.height}>", x)
    elif isinstance(x, np.ndarray):
        if x.ndim == 4:
            for i, a in enumerate(x):
                yield InputItem(f"<array {i}>", a)
        else:
            yield InputItem(f"<array {'x'.join(map(str, x.shape))}>", x)
    elif isinstance(x, (list, tuple)):
        for item in x:
            yield from expand(item)
    else:
        yield InputItem(f"<{type(x).__name__}>", None, f"unsupported input type {type(x).__name__}; expected a path, "
                        "a folder, a PIL image, a numpy array or a list of these")


def _expand_path(path: Path) -> Iterator[InputItem]:
    if not path.is_dir():
        yield InputItem(str(path), path)
        return
    files = list_images(path)
    if not files:
        yield InputItem(str(path), None, f"no image files in folder {path} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    for f in files:
        yield InputItem(str(f), f)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden files and folders skipped), sorted by path."""
    return list(iter_files(folder, is_image_file))


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """Video files under ``folder`` (recursive, hidden entries skipped), sorted by path."""
    return list(iter_files(folder, is_video_file))


def iter_files(folder: str | os.PathLike, accept: Callable[[str], bool]) -> Iterator[Path]:
    """Files under ``folder`` whose name ``accept`` s, lazily, in sorted path order (``sorted()`` of the whole list).

    One folder is listed at a time (a corpus of 100,000 files starts at once and never holds its whole listing);
    hidden files and folders (``.name``) are skipped, symbolic links to folders are not followed and unreadable
    folders are skipped, like :func:`os.walk`.
    """
    return (Path(full) for full, _ in walk_files(folder, accept))


def walk_files(folder: str | os.PathLike, accept: Callable[[str], bool]) -> Iterator[tuple[str, str]]:
    """:func:`iter_files` as strings: ``(path, path relative to folder)``, ``path`` spelt as ``str(Path(...))``."""
    top = str(Path(folder))
    return _walk(top, "", accept, root=top == ".")


def _walk(top: str, rel: str, accept: Callable[[str], bool], root: bool = False) -> Iterator[tuple[str, str]]:
    try:
        with os.scandir(top) as it:
            entries = sorted((e.name, e.is_dir(), e.is_symlink()) for e in it if not e.name.startswith("."))
    except OSError:
        return
    # sorting the names of one folder (files and sub-folders together) gives the order of sorted(full paths)
    for name, is_dir, is_link in entries:
        full = name if root else os.path.join(top, name)
        sub = os.path.join(rel, name) if rel else name
        if is_dir:
            if not is_link:
                yield from _walk(full, sub, accept)
        elif accept(name):
            yield full, sub


def read_path_list(path: str | os.PathLike) -> Iterator[str]:
    """The paths listed in a text file, one per line (surrounding white space stripped, blank lines skipped), lazily.
    Relative paths are taken as they are (relative to the current folder), like command-line arguments."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                yield line


def read_rgb(item: InputItem, *, channel_order: str = "rgb") -> np.ndarray:
    """The item as an RGB uint8 (H, W, 3) array.

    Files are decoded with :func:`ferkit.image.load_pil` (EXIF orientation, grayscale / palette / RGBA
    composited on white / 16-bit scaled); arrays are converted with :func:`ferkit.image.to_rgb_uint8`.

    Raises:
        ferkit.image.ImageReadError: unreadable (or missing) file. ValueError: unsupported array.
    """
    if item.error is not None:
        raise ValueError(item.error)
    src = item.source
    if isinstance(src, (str, os.PathLike)):
        from ferkit.image import load_pil

        if is_video_file(src) and Path(src).is_file():
            raise ValueError(f"{src} is a video file; use predict_video() (CLI: ferkit predict handles videos)")
        return np.asarray(load_pil(src))
    if _is_pil(src):
        from ferkit.image import to_rgb

        return np.asarray(to_rgb(src))
    from ferkit.image import to_rgb_uint8

    return to_rgb_uint8(src, channel_order=channel_order)


def _is_pil(x: Any) -> bool:
    return type(x).__module__.startswith("PIL.")
