"""Released POSTER++ weights: the official checkpoints (RAF-DB, AffectNet-7/8, CAER-S) and ferkit's default model."""

from __future__ import annotations

from ferkit.constants import DLIB_NORM
from ferkit.hub import get_asset
from ferkit.labels import DATASET_ORDERS
from ferkit.models.pretrained import PretrainedCfg, register_pretrained

POSTER_V2_PAPER = ("Mao et al., POSTER V2: A simpler and stronger facial expression recognition network, "
                   "arXiv:2301.12149, 2023")


def _poster(tag: str, order: str, dataset: str, crop: str, verified: bool, metrics: dict[str, float],
            notes: str = "") -> PretrainedCfg:
    asset = get_asset(f"poster_v2.{tag}")
    return PretrainedCfg(name=f"poster_v2.{tag}", arch="poster_v2", asset=asset.name,
                         num_classes=len(DATASET_ORDERS[order]), label_names=DATASET_ORDERS[order],
                         label_order_verified=verified, dataset=dataset, crop=crop, licence=asset.licence,
                         paper=POSTER_V2_PAPER, origin_url=asset.origin_url, metrics=metrics, notes=notes)


_AFFECTNET_NOTE = ("class order unverified: assumes class folders named by AffectNet's native ids (0 neutral ... "
                   "6 anger, 7 contempt); the authors do not document it")

OPEN_FILE = "poster_v2_open_ferplus.safetensors"
OPEN_LICENCE = ("weights: CC-BY-4.0 by the ferkit developers, derived from dlib-models (CC0-1.0) and MediaPipe "
                "FaceMesh (Apache-2.0); trained on FER2013 images (Kaggle, research use) with FER+ labels (MIT) - "
                "see NOTICE and docs/model_card.md")
OPEN_SOURCES = {
    "image_stream": {"asset": "dlib_resnet",
                     "sha256": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                     "licence": "CC0-1.0"},
    "landmark_stream": {"asset": "facemesh",
                        "sha256": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
                        "licence": "Apache-2.0"},
    "data": "FER+ (FER2013Train votes, MIT labels) + FER2013 Training original labels; images: Kaggle FER2013",
}
OPEN_NOTE = ("trained here on a 2-core CPU (configs/poster_v2_open_ferplus.yaml); 48x48 grey training faces: inputs "
             "are converted to grey; crop 'fer2013' matches YuNet boxes to the FER framing; see docs/model_card.md")


def _open(tag: str, order: str, head: str, metrics: dict[str, float]) -> PretrainedCfg:
    return PretrainedCfg(name=f"poster_v2_open.{tag}", arch="poster_v2_open", asset=None,
                         num_classes=len(DATASET_ORDERS[order]), label_names=DATASET_ORDERS[order],
                         label_order_verified=True, dataset="FER+" if order == "ferplus" else "FER2013",
                         input_size=112, mean=DLIB_NORM[0], std=DLIB_NORM[1], crop="fer2013", licence=OPEN_LICENCE,
                         paper=POSTER_V2_PAPER, origin_url="https://github.com/ferkit/ferkit", metrics=metrics,
                         notes=OPEN_NOTE, packaged=OPEN_FILE, head=head, sources=OPEN_SOURCES,
                         recipe="configs/poster_v2_open_ferplus.yaml")


for _cfg in (
    _open("ferplus", "ferplus", "main", {"top1": 85.11, "mean_class": 62.25}),  # FER+ Valid, majority rule
    _open("fer2013", "fer2013", "aux", {"top1": 64.64, "mean_class": 57.35}),  # FER2013 PublicTest, all 3,589
    _poster("rafdb", "rafdb", "RAF-DB basic", "rafdb_aligned", True, {"top1": 92.21, "mean_class": 85.97},
            "order established from the official confusion matrix (RAF-DB label ids 1..7)"),
    _poster("affectnet7", "affectnet7", "AffectNet (7 classes)", "affectnet", False,
            {"top1": 67.49, "mean_class": 67.45}, _AFFECTNET_NOTE),
    _poster("affectnet8", "affectnet8", "AffectNet (8 classes)", "affectnet", False,
            {"top1": 63.77, "mean_class": 63.76}, _AFFECTNET_NOTE),
    _poster("caer_s", "caer_s", "CAER-S", "none", True, {"top1": 93.00},
            "alphabetical ImageFolder order of the official class folders; the official pipeline resizes whole "
            "CAER-S frames (faces with context), hence crop preset 'none'"),
):
    register_pretrained(_cfg)
