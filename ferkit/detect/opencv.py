"""Detectors that run through OpenCV (optional extra ``ferkit[detect]``): YuNet and the Haar cascade.

* **YuNet** (Wu et al., "YuNet: A Tiny Millisecond-level Face Detector", 2023; ShiqiYu/libfacedetection.train,
  opencv_zoo ``face_detection_yunet_2023mar.onnx``) through ``cv2.FaceDetectorYN``: boxes, 5 landmarks, scores.
* **Haar** (Viola-Jones frontal-face cascade ``haarcascade_frontalface_default.xml`` that ships with
  opencv-python 4.x) through ``cv2.CascadeClassifier``: boxes only, no calibrated score (reported as 1.0; faces are
  ordered by area). OpenCV 5 no longer ships the cascades, hence the ``<5`` pin of the extra.

Importing this module registers both (``cv2`` itself is imported only when one is created).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.detect.base import DEFAULT_MAX_SIDE, FaceDetector, empty_result
from ferkit.detect.registry import WeightsArg, fetch_weights, register_detector


def import_cv2() -> Any:
    """Import OpenCV or raise an ImportError that says how to install it."""
    try:
        import cv2
    except ImportError as e:
        raise ImportError("this detector needs OpenCV: pip install 'ferkit[detect]' "
                          "(opencv-python-headless>=4.8,<5)") from e
    return cv2


_YUNET_MIN_SIDE = 64


def _require_cpu(name: str, device: str) -> None:
    if str(device) != "cpu":
        raise ValueError(f"{name} runs on the CPU through OpenCV; use device='cpu'")


def _plausible(rows: np.ndarray, w: int, h: int) -> np.ndarray:
    """Mask of YuNet rows with finite values, a positive size and a box overlapping the image."""
    finite = np.isfinite(rows).all(axis=1)
    x, y, bw, bh = (rows[:, i] for i in range(4))
    return finite & (bw > 0) & (bh > 0) & (x < w) & (y < h) & (x + bw > 0) & (y + bh > 0) & (bw < 4 * max(w, h))


class YuNetDetector(FaceDetector):
    """``yunet``: OpenCV's ``FaceDetectorYN`` with the 2023mar ONNX model.

    Options: ``nms_threshold`` (0.3) and ``top_k`` (5000), passed to ``FaceDetectorYN.create``.
    """

    name = "yunet"
    default_score_threshold = 0.6
    has_landmarks = True

    def __init__(self, onnx_path: str | os.PathLike, *, device: str = "cpu", score_threshold: float | None = None,
                 max_side: int | None = DEFAULT_MAX_SIDE, nms_threshold: float = 0.3, top_k: int = 5000,
                 **options: Any):
        super().__init__(score_threshold=score_threshold, max_side=max_side, **options)
        _require_cpu(self.name, device)
        cv2 = import_cv2()
        self._net = cv2.FaceDetectorYN.create(str(onnx_path), "", (320, 320), self.score_threshold,
                                              float(nms_threshold), int(top_k))

    def _detect(self, image: np.ndarray):
        cv2 = import_cv2()
        h, w = image.shape[:2]
        # FaceDetectorYN returns garbage for sides below its largest stride; pad small images (bottom / right)
        ph, pw = max(h, _YUNET_MIN_SIDE), max(w, _YUNET_MIN_SIDE)
        if (ph, pw) != (h, w):
            image = np.pad(image, ((0, ph - h), (0, pw - w), (0, 0)))
        self._net.setInputSize((pw, ph))
        _, rows = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if rows is None or len(rows) == 0:
            return empty_result(True)
        rows = rows.astype(np.float64)
        rows = rows[_plausible(rows, w, h)]
        boxes = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:4]], axis=1)
        # columns 4..13: right eye (of the person = image left), left eye, nose tip, right and left mouth corner
        return boxes, rows[:, 14], rows[:, 4:14].reshape(-1, 5, 2)


class HaarDetector(FaceDetector):
    """``haar``: Viola-Jones frontal-face cascade. No weights download; no landmarks; score 1.0.

    Options: ``scale_factor`` (1.1), ``min_neighbors`` (5), ``min_size`` (30, pixels), ``cascade`` (file name in
    ``cv2.data.haarcascades`` or a path; default ``haarcascade_frontalface_default.xml``).
    """

    name = "haar"
    default_score_threshold = 0.0

    def __init__(self, *, device: str = "cpu", score_threshold: float | None = None,
                 max_side: int | None = DEFAULT_MAX_SIDE, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 30, cascade: str = "haarcascade_frontalface_default.xml", **options: Any):
        super().__init__(score_threshold=score_threshold, max_side=max_side, **options)
        _require_cpu(self.name, device)
        cv2 = import_cv2()
        path = cascade
        if not os.path.isfile(cascade) and hasattr(cv2, "data"):
            path = os.path.join(cv2.data.haarcascades, cascade)
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FileNotFoundError(f"Haar cascade {path!r} not found or unreadable; opencv-python(-headless) 4.x "
                                    "ships it in cv2.data.haarcascades (OpenCV 5 does not)")
        self.scale_factor, self.min_neighbors, self.min_size = float(scale_factor), int(min_neighbors), int(min_size)

    def _detect(self, image: np.ndarray):
        cv2 = import_cv2()
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        found = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                               minSize=(self.min_size, self.min_size))
        if len(found) == 0:
            return empty_result(False)
        xywh = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        return boxes, np.ones(len(boxes)), None


def packaged_yunet() -> Path | None:
    """The YuNet ONNX file shipped inside the package (MIT / Apache-2.0, 232 KB; see NOTICE), if present."""
    from importlib.resources import files

    path = Path(str(files("ferkit") / "resources" / "detectors" / "face_detection_yunet_2023mar.onnx"))
    return path if path.is_file() else None


def build_yunet(weights: WeightsArg, *, trust_checkpoint: bool = False, **kw: Any) -> FaceDetector:
    path = weights or packaged_yunet() or fetch_weights("yunet", detector="yunet")
    if not Path(path).is_file():
        raise FileNotFoundError(f"YuNet ONNX file not found: {path}")
    return YuNetDetector(path, **kw)


def build_haar(weights: WeightsArg, *, trust_checkpoint: bool = False, **kw: Any) -> FaceDetector:
    if weights is not None:
        kw["cascade"] = str(weights)
    return HaarDetector(**kw)


register_detector("yunet", build_yunet, assets=("yunet",), landmarks=True,
                  description="YuNet 2023mar via cv2.FaceDetectorYN (needs OpenCV; weights ship with ferkit)")
register_detector("haar", build_haar,
                  description="OpenCV Haar frontal-face cascade (ships with OpenCV 4, no download)")
