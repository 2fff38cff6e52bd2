"""Faces in image files, one result per file, with optional aligned crops written to a folder (``ferkit detect``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ferkit.detect.base import Face, FaceDetector


@dataclass
class DetectedImage:
    """The faces found in one file, or why it could not be read (``error``), and the crops written for it."""

    path: str
    faces: list[Face] = field(default_factory=list)
    error: str | None = None
    crops: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict:
        """``{"image": path, "faces": [Face.to_dict(), ...]}``."""
        return {"image": self.path, "faces": [f.to_dict() for f in self.faces]}


def detect_files(detector: FaceDetector, paths: Iterable[str | os.PathLike], *,
                 crops_dir: str | os.PathLike | None = None, crop: str = "square",
                 size: int = 224) -> Iterator[DetectedImage]:
    """Detect the faces of each image file, in order.

    Args:
        detector: from :func:`ferkit.detect.create_detector`. paths: image files.
        crops_dir: if given, one PNG per face is saved there as ``<file stem>_<i>.png``, cut with preset ``crop``
            (:data:`ferkit.detect.CROP_PRESETS`) at ``size`` pixels.

    Yields:
        One :class:`DetectedImage` per path; a file that cannot be read or cropped gets ``error`` set (``OSError`` /
        ``ValueError`` message) and does not stop the others.
    """
    from ferkit.detect.align import crop_preset
    from ferkit.image import load_image

    for path in paths:
        item = DetectedImage(str(path))
        try:
            image = load_image(path)
            item.faces = detector.detect(image)
            if crops_dir is not None:
                from PIL import Image

                out = Path(crops_dir)
                out.mkdir(parents=True, exist_ok=True)
                for i, face in enumerate(item.faces):
                    target = out / f"{Path(path).stem}_{i}.png"
                    Image.fromarray(crop_preset(image, face, crop, size=size)).save(target)
                    item.crops.append(target)
        except (OSError, ValueError) as e:
            item.error = str(e)
        yield item
