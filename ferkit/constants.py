"""Input normalisation of the pretrained networks ferkit uses: one home for every mean / std.

``*_MEAN`` / ``*_STD`` are per-channel RGB values on [0, 1] pixels (``x = (pixel / 255 - mean) / std``), except
``DLIB_MEAN`` / ``DLIB_SCALE``, which are dlib's own 0..255 form (``x = (pixel - DLIB_MEAN) / DLIB_SCALE``).
"""

from __future__ import annotations

#: torchvision / timm ImageNet statistics (IR-50 and MobileFaceNet of POSTER++).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: OpenAI CLIP (MPA-FER).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: dlib's face-recognition ResNet: input mean (R, G, B) in 0..255, then divided by 256.
DLIB_MEAN = (122.782, 117.001, 104.298)
DLIB_SCALE = 256.0
#: dlib's normalisation on [0, 1] RGB: (x - mean) / std == (255 x - DLIB_MEAN) / DLIB_SCALE.
DLIB_NORM = (tuple(m / 255 for m in DLIB_MEAN), (DLIB_SCALE / 255,) * 3)
#: no normalisation (MediaPipe FaceMesh takes [0, 1] RGB).
UNIT_NORM = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
