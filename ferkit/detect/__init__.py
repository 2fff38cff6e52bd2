"""Face detection and alignment.

    >>> from ferkit.detect import create_detector, crop_face
    >>> det = create_detector("retinaface")            # weights from the cache (or a verified download)
    >>> faces = det.detect(rgb_uint8_image)            # [Face(box, score, landmarks)], best first; [] if none
    >>> crop = crop_face(rgb_uint8_image, faces[0], method="five_point", margin=0.2)   # (224, 224, 3) uint8

Detectors are registered by name (:func:`list_detectors`): ``yunet`` and ``haar`` (OpenCV), ``retinaface`` and
``mtcnn`` (PyTorch), ``none`` (whole image); add one with :func:`register_detector`. See ``docs/detection.md``.
"""

# built-in detectors: importing each module registers its detectors (none imports OpenCV or torch before use)
import ferkit.detect.opencv  # noqa: F401  (yunet, haar)
import ferkit.detect.pytorch  # noqa: F401  (retinaface, mtcnn)
import ferkit.detect.whole  # noqa: F401  (none)
from ferkit.detect.align import CROP_PRESETS, crop_face, crop_preset
from ferkit.detect.base import DEFAULT_MAX_SIDE, LANDMARK_NAMES, Face, FaceDetector
from ferkit.detect.files import DetectedImage, detect_files
from ferkit.detect.registry import (
    DetectorEntry,
    create_detector,
    get_detector_entry,
    list_detectors,
    register_detector,
    unregister_detector,
)
from ferkit.image import load_image, to_rgb_uint8

__all__ = [
    "create_detector", "list_detectors", "register_detector", "unregister_detector", "get_detector_entry",
    "DetectorEntry", "Face", "FaceDetector", "DEFAULT_MAX_SIDE", "LANDMARK_NAMES", "crop_face", "crop_preset",
    "CROP_PRESETS", "to_rgb_uint8", "load_image", "detect_files", "DetectedImage",
]
