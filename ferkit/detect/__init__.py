"""Face detection and alignment.

    >>> from ferkit.detect import create_detector, crop_face
    >>> det = create_detector("retinaface")            # weights from the cache (or a verified download)
    >>> faces = det.detect(rgb_uint8_image)            # [Face(box, score, landmarks)], best first; [] if none
    >>> crop = crop_face(rgb_uint8_image, faces[0], method="five_point", margin=0.2)   # (224, 224, 3) uint8

Detectors: ``yunet`` and ``haar`` (OpenCV, extra ``ferkit[detect]``), ``retinaface`` and ``mtcnn`` (PyTorch),
``none`` (whole image). See ``docs/detection.md``.
"""

from ferkit.detect._registry import create_detector, get_detector_entry, list_detectors
from ferkit.detect.align import CROP_PRESETS, crop_face, crop_preset
from ferkit.detect.base import DEFAULT_MAX_SIDE, LANDMARK_NAMES, Face, FaceDetector
from ferkit.image import load_image, to_rgb_uint8

__all__ = [
    "create_detector", "list_detectors", "get_detector_entry", "Face", "FaceDetector", "DEFAULT_MAX_SIDE",
    "LANDMARK_NAMES", "crop_face", "crop_preset", "CROP_PRESETS", "to_rgb_uint8", "load_image",
]
