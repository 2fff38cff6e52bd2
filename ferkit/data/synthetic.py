"""Tiny copies of every supported layout, written in the real file formats (for tests, benchmarks and smoke runs).

Each image is filled with a grey level that encodes its canonical class (:func:`class_value`), so a reader can check
that a loader's target really matches the image (:func:`class_of_image`) without trusting the loader's own tables.
``pattern="texture"`` writes smooth random textures instead (realistic JPEG sizes for benchmarks).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ferkit import labels as _labels

Counts = Mapping[str, Mapping[str, int]]  # split -> class name -> number of images


def class_value(name: str) -> int:
    """Grey level (20..230) that encodes a canonical class in synthetic images."""
    return 20 + 30 * _labels.CANONICAL.index(_labels.canonical(name))


def class_of_image(image: Image.Image | np.ndarray) -> str:
    """Canonical class whose :func:`class_value` is closest to the image's mean grey level."""
    mean = float(np.asarray(image, dtype=np.float64).mean())
    return min(_labels.CANONICAL, key=lambda n: abs(class_value(n) - mean))


def make_image(name: str, size: int | tuple[int, int] = 48, *, pattern: str = "flat", seed: int = 0) -> Image.Image:
    """An RGB image of class ``name``: flat grey :func:`class_value` or a smooth random texture."""
    w, h = (size, size) if isinstance(size, int) else size
    if pattern == "flat":
        return Image.new("RGB", (w, h), (class_value(name),) * 3)
    if pattern != "texture":
        raise ValueError(f"pattern must be 'flat' or 'texture', got {pattern!r}")
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), dtype=np.int16)
    grain = rng.integers(-12, 13, size=(h, w, 3))
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


def _sequence(counts: Mapping[str, int]) -> list[str]:
    """Class names interleaved (a, b, c, a, b, ...) so files of one class are not contiguous."""
    left = dict(counts)
    out: list[str] = []
    while any(left.values()):
        for name in list(left):
            if left[name] > 0:
                out.append(name)
                left[name] -= 1
    return out


def write_class_folders(root: str | Path, counts: Counts, *, folder_names: Mapping[str, str] | None = None,
                        size: int = 48, ext: str = ".jpg", pattern: str = "flat") -> Path:
    """``root/<split>/<folder>/<split>_<i>.<ext>``; ``folder_names`` maps class -> folder name (default: the class)."""
    root = Path(root)
    for split, per_class in counts.items():
        for i, name in enumerate(_sequence(per_class)):
            folder = root / split / (folder_names or {}).get(name, name)
            folder.mkdir(parents=True, exist_ok=True)
            make_image(name, size, pattern=pattern, seed=i).save(folder / f"{split}_{i:05d}{ext}")
        for name in per_class:  # empty classes still get their folder
            (root / split / (folder_names or {}).get(name, name)).mkdir(parents=True, exist_ok=True)
    return root


def write_rafdb(root: str | Path, counts: Counts, *, size: int = 100, pattern: str = "flat") -> Path:
    """Official RAF-DB basic layout under ``root/basic``: the list file (labels 1..7) and ``Image/aligned``."""
    base = Path(root) / "basic"
    (base / "EmoLabel").mkdir(parents=True, exist_ok=True)
    aligned = base / "Image" / "aligned"
    aligned.mkdir(parents=True, exist_ok=True)
    lines = []
    for split, per_class in counts.items():
        for i, name in enumerate(_sequence(per_class), start=1):
            stem = f"{split}_{i:05d}" if split == "train" else f"{split}_{i:04d}"
            make_image(name, size, pattern=pattern, seed=i).save(aligned / f"{stem}_aligned.jpg", quality=95)
            lines.append(f"{stem}.jpg {_labels.to_code('rafdb', name)}")
    (base / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return base


def _affectnet_image(path: Path, name: str, box: tuple[int, int, int, int], canvas: tuple[int, int]) -> None:
    """A canvas with black margins and the class grey inside ``box`` (so only a correct crop is uniform)."""
    image = Image.new("RGB", canvas, (0, 0, 0))
    x, y, w, h = box
    image.paste(make_image(name, (w, h)), (x, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=95)


def write_affectnet(root: str | Path, counts: Mapping[str, Mapping[str | int, int]], *,
                    header_in_validation: bool = False) -> Path:
    """Official AffectNet layout: ``training.csv`` (with header) / ``validation.csv`` (header optional) listing
    face boxes, and images under ``Manually_Annotated_Images/<dir>/<hash>.jpg``. Keys of ``counts[split]`` are class
    names, or the integer codes 8/9/10 (rows that loaders must drop; they still get an image)."""
    root = Path(root)
    files = {"train": "training.csv", "val": "validation.csv"}
    for split, per_class in counts.items():
        rows = []
        for i, key in enumerate(_sequence(per_class)):
            code = key if isinstance(key, int) else _labels.to_code("affectnet8", key)
            rel = f"{100 + i % 3}/{hashlib.sha1(f'{split}{i}'.encode()).hexdigest()}.jpg"
            box = (8 + i % 5, 6 + i % 4, 40, 44)
            _affectnet_image(root / "Manually_Annotated_Images" / rel, key if isinstance(key, str) else "neutral",
                             box, (64, 64))
            landmarks = ";".join(str(v) for v in range(136))
            rows.append([rel, *box, landmarks, code, "0.1", "-0.2"])
        with open(root / files[split], "w", newline="") as f:
            w = csv.writer(f)
            if split == "train" or header_in_validation:
                w.writerow(["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                            "facial_landmarks", "expression", "valence", "arousal"])
            w.writerows(rows)
    return root


def pixel_string(name: str, side: int = 48) -> str:
    """FER2013-style pixel string of a flat image of class ``name``."""
    return " ".join([str(class_value(name))] * (side * side))


def write_fer2013_csv(path: str | Path, counts: Counts) -> Path:
    """``fer2013.csv`` (``emotion,pixels,Usage``) with 48x48 pixel strings; splits train/val/test."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    usage = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for split, per_class in counts.items():
            for name in _sequence(per_class):
                w.writerow([_labels.to_code("fer2013", name), pixel_string(name), usage[split]])
    return path


def write_ferplus(root: str | Path, rows: Sequence[tuple[str, str, Sequence[int]]]) -> Path:
    """``fer2013.csv`` + ``fer2013new.csv`` with the given ``(split, image name, 10 votes)`` rows (an empty name
    writes a row without image name). The pixels encode the FER2013 ``emotion`` class, the plain vote winner."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    usage = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
    columns = _labels.NATIVE_NAMES["ferplus"]
    with open(root / "fer2013.csv", "w", newline="") as f_old, open(root / "fer2013new.csv", "w", newline="") as f_new:
        old, new = csv.writer(f_old), csv.writer(f_new)
        old.writerow(["emotion", "pixels", "Usage"])
        new.writerow(["Usage", "Image name", *columns])
        for split, name, votes in rows:
            winner = columns[int(np.argmax(votes))]
            klass = _labels.canonical(winner) if winner in _labels.ALIASES else "neutral"
            fer_code = _labels.to_code("fer2013", klass) if klass != "contempt" else 6
            old.writerow([fer_code, pixel_string(klass), usage[split]])
            new.writerow([usage[split], name, *votes])
    return root


def write_csv_table(root: str | Path, counts: Counts, *, size: int = 48,
                    label_spelling: Mapping[str, str] | None = None, ext: str = ".png") -> Path:
    """``root/labels.csv`` (``path,label,split``) plus ``root/images/<split>_<i>.<ext>``."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"])
        for split, per_class in counts.items():
            for i, name in enumerate(_sequence(per_class)):
                rel = f"images/{split}_{i:05d}{ext}"
                make_image(name, size).save(root / rel)
                w.writerow([rel, (label_spelling or {}).get(name, name), split])
    return root
