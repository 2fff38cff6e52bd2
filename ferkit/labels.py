"""Canonical expression labels and every data set's native class order.

ferkit names classes with lower-case nouns. A data set's native order (the meaning of its integer labels) is data,
kept in :data:`DATASET_ORDERS`; mapping between two orders is always by name (:func:`mapping`).
"""

from __future__ import annotations

from collections.abc import Sequence

CANONICAL: tuple[str, ...] = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt")

#: Native integer order of each data set / released checkpoint family (index -> canonical name).
DATASET_ORDERS: dict[str, tuple[str, ...]] = {
    # RAF-DB basic: labels 1..7 in list_patition_label.txt (subtract 1).
    "rafdb": ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"),
    # AffectNet `expression` column 0..7 (8 none, 9 uncertain, 10 no-face are not expressions).
    "affectnet7": ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"),
    "affectnet8": ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt"),
    # FER2013 `emotion` column 0..6.
    "fer2013": ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"),
    # FERPlus fer2013new.csv vote columns (before `unknown`, `NF`).
    "ferplus": ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"),
    # CAER-S class folders Anger, Disgust, Fear, Happy, Neutral, Sad, Surprise sorted as ImageFolder does.
    "caer_s": ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"),
}

#: The integer a data set's own files use for its first class (RAF-DB's list file and folders count from 1).
INDEX_BASE: dict[str, int] = {"rafdb": 1}

#: Class names as each data set spells them (column headers, folder names), in native order. Extra entries after the
#: expressions are not expressions: FERPlus' ``unknown`` / ``NF`` (not a face) vote columns.
NATIVE_NAMES: dict[str, tuple[str, ...]] = {
    "ferplus": ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"),
    "caer_s": ("Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"),
    "fer2013": ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"),
}

#: AffectNet ``expression`` codes that are not expressions; rows carrying them are dropped by every loader.
AFFECTNET_NON_EXPRESSION: dict[int, str] = {8: "none", 9: "uncertain", 10: "no-face"}

#: Spellings found in the wild -> canonical noun.
ALIASES: dict[str, str] = {
    "neutral": "neutral", "ne": "neutral", "calm": "neutral",
    "happiness": "happiness", "happy": "happiness", "joy": "happiness", "ha": "happiness",
    "sadness": "sadness", "sad": "sadness", "sa": "sadness",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "fe": "fear",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "anger": "anger", "angry": "anger", "an": "anger",
    "contempt": "contempt", "contemptuous": "contempt", "co": "contempt",
}


def canonical(name: str) -> str:
    """Return the canonical noun for a label spelling (``"Happy"`` -> ``"happiness"``).

    Raises:
        ValueError: the name is not an expression ferkit knows.
    """
    key = str(name).strip().lower()
    if key not in ALIASES:
        raise ValueError(f"unknown expression label {name!r}; expected one of {', '.join(CANONICAL)} "
                         "(or an alias such as 'happy', 'sad', 'angry', 'surprised', 'fearful', 'disgusted')")
    return ALIASES[key]


def order(name_or_labels: str | Sequence[str]) -> tuple[str, ...]:
    """Resolve a data-set order name (``"rafdb"``) or an explicit list of labels to canonical names."""
    if isinstance(name_or_labels, str):
        key = name_or_labels.lower().replace("-", "_")
        if key not in DATASET_ORDERS:
            raise ValueError(f"unknown label order {name_or_labels!r}; known: {', '.join(DATASET_ORDERS)}")
        return DATASET_ORDERS[key]
    labels = tuple(canonical(n) for n in name_or_labels)
    if len(set(labels)) != len(labels):
        raise ValueError(f"label list has duplicates after normalisation: {list(name_or_labels)}")
    return labels


def mapping(src: Sequence[str], dst: Sequence[str], *, strict: bool = False) -> list[int | None]:
    """Index map from order ``src`` to order ``dst`` by name: ``m[i]`` is the index in ``dst`` of ``src[i]``.

    Classes of ``src`` missing in ``dst`` map to ``None`` (callers decide whether that is an error), or raise
    ``ValueError`` naming them when ``strict`` is true. Either argument may also be an order name such as ``"rafdb"``.
    """
    src_c, dst_c = order(src), order(dst)
    where = {n: i for i, n in enumerate(dst_c)}
    out = [where.get(n) for n in src_c]
    missing = [n for n, m in zip(src_c, out) if m is None]
    if strict and missing:
        raise ValueError(f"classes {missing} of {list(src_c)} are not in the target order {list(dst_c)}")
    return out


def from_code(dataset: str, code: int | str) -> str:
    """Canonical name of the integer label ``code`` as written in ``dataset``'s own files (RAF-DB: ``5`` ->
    ``"sadness"``, counting from 1; AffectNet: ``5`` -> ``"disgust"``, counting from 0).

    Raises:
        ValueError: ``code`` is not an integer or not one of the data set's class codes.
    """
    names = order(dataset)
    base = INDEX_BASE.get(dataset.lower().replace("-", "_"), 0)
    try:
        value = int(str(code).strip())
    except ValueError:
        raise ValueError(f"{dataset} label {code!r} is not an integer; "
                         f"expected {base}..{base + len(names) - 1}") from None
    if not base <= value < base + len(names):
        valid = ", ".join(f"{base + i}={n}" for i, n in enumerate(names))
        raise ValueError(f"{dataset} label {code!r} is out of range; expected one of {valid}")
    return names[value - base]


def to_code(dataset: str, name: str) -> int:
    """Inverse of :func:`from_code`: the integer ``dataset``'s own files use for the class ``name``."""
    names = order(dataset)
    key = canonical(name)
    if key not in names:
        raise ValueError(f"{dataset} has no class {name!r}; its classes: {', '.join(names)}")
    return names.index(key) + INDEX_BASE.get(dataset.lower().replace("-", "_"), 0)


def default_order(num_classes: int) -> tuple[str, ...]:
    """Order assumed for a checkpoint that carries no label names (the official POSTER++ releases):
    RAF-DB order for 7 classes (the RAF-DB checkpoint's folders ``1..7``), AffectNet order for 8."""
    if num_classes == 7:
        return DATASET_ORDERS["rafdb"]
    if num_classes == 8:
        return DATASET_ORDERS["affectnet8"]
    raise ValueError(f"no default label order for {num_classes} classes; pass label_names explicitly")
