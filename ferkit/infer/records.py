"""Result records: one :class:`Record` per input (image or video frame), one :class:`FaceResult` per face.

Nested form (``Record.to_dict()``, JSON / JSONL)::

    {"input": "photo.jpg", "faces": [{"box": [x1, y1, x2, y2], "box_xywh": [x, y, w, h], "score": 0.99,
      "label": "happiness", "label_score": 0.87, "scores": {"neutral": 0.02, ...}, "landmarks": [[x, y], ...] | null}],
     "error": null}

plus ``"frame"`` and ``"timestamp"`` (seconds) for video frames, ``"logits"`` per face when requested and
``"track_id"`` per face when faces are tracked across video frames (``detect_every`` / ``track``).
Flat form (:func:`to_rows`, CSV): one row per face with the columns of :func:`columns`; an input without a face (or
with an error) still gets one row whose face fields are empty, so nothing disappears.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

LANDMARK_COLUMNS = tuple(f"lm{i}_{c}" for i in range(5) for c in "xy")


@dataclass
class FaceResult:
    """One face: where it is, how sure the detector was, and the expression probabilities.

    Attributes:
        box: (x1, y1, x2, y2) in pixels of the original image. score: detection score.
        label: top expression (canonical lower-case name). label_score: its probability.
        scores: probability per label name, in the model's label order; sums to 1.
        landmarks: five (x, y) points (eyes, nose, mouth corners) or None. logits: raw logits when requested.
        track_id: the same number for the same face across the frames of a video when faces are tracked
            (:mod:`ferkit.infer.tracking`), else None (and absent from ``to_dict()``).
    """

    box: tuple[float, float, float, float]
    score: float
    label: str
    label_score: float
    scores: dict[str, float]
    landmarks: list[list[float]] | None = None
    logits: dict[str, float] | None = None
    track_id: int | None = None

    @property
    def box_xywh(self) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.box
        return (x1, y1, x2 - x1, y2 - y1)

    def to_dict(self) -> dict[str, Any]:
        out = {"box": [round(float(v), 2) for v in self.box], "box_xywh": [round(float(v), 2) for v in self.box_xywh],
               "score": round(float(self.score), 6), "label": self.label, "label_score": float(self.label_score),
               "scores": {k: float(v) for k, v in self.scores.items()},
               "landmarks": None if self.landmarks is None else [[round(float(x), 2), round(float(y), 2)]
                                                                  for x, y in self.landmarks]}
        if self.logits is not None:
            out["logits"] = {k: float(v) for k, v in self.logits.items()}
        if self.track_id is not None:
            out["track_id"] = int(self.track_id)
        return out


@dataclass
class Record:
    """Result for one input: its faces (``[]`` when none was found) or an error message.

    Attributes:
        input: path or description of the input. faces: detected faces, best detection first.
        error: None, or a message saying what was wrong with this input. frame / timestamp: video frames only
            (frame index from 0, seconds from the start).
        untrained: the model's classifier was never trained (random weights): written as ``"untrained": true``
            (the key is absent for trained models), drawn as a banner on annotated images.
    """

    input: str
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None
    frame: int | None = None
    timestamp: float | None = None
    untrained: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input": self.input}
        if self.frame is not None:
            out["frame"] = self.frame
            out["timestamp"] = None if self.timestamp is None else round(float(self.timestamp), 6)
        out["faces"] = [f.to_dict() for f in self.faces]
        out["error"] = self.error
        if self.untrained:
            out["untrained"] = True
        return out


def columns(label_names: Sequence[str], *, logits: bool = False, track: bool = False) -> list[str]:
    """Flat column names: input, frame, timestamp, face index, ``track_id`` (when asked), box (both forms), detection
    score, label, label_score, ``p_<label>`` per class, ``logit_<label>`` (when asked), 5 landmarks, error."""
    cols = ["input", "frame", "timestamp", "face"] + (["track_id"] if track else [])
    cols += ["x1", "y1", "x2", "y2", "x", "y", "w", "h", "score", "label", "label_score"]
    cols += [f"p_{n}" for n in label_names]
    if logits:
        cols += [f"logit_{n}" for n in label_names]
    return cols + list(LANDMARK_COLUMNS) + ["error"]


def to_rows(records: Iterable[Record], label_names: Sequence[str], *, logits: bool = False,
            track: bool = False) -> list[dict[str, Any]]:
    """Flat rows (one per face; one per face-less input) with exactly the keys of :func:`columns`; missing = None."""
    cols = columns(label_names, logits=logits, track=track)
    rows = []
    for rec in records:
        base = {c: None for c in cols}
        base.update(input=rec.input, frame=rec.frame, timestamp=rec.timestamp, error=rec.error)
        if not rec.faces:
            rows.append(base)
        for i, face in enumerate(rec.faces):
            row = {**base, **_face_columns(face, i, label_names, logits)}
            if track:
                row["track_id"] = face.track_id
            rows.append(row)
    return rows


def _face_columns(face: FaceResult, index: int, label_names: Sequence[str], logits: bool) -> dict[str, Any]:
    d = face.to_dict()
    row: dict[str, Any] = {"face": index, "score": d["score"], "label": face.label, "label_score": d["label_score"]}
    row.update(zip(("x1", "y1", "x2", "y2"), d["box"]))
    row.update(zip(("x", "y", "w", "h"), d["box_xywh"]))
    row.update({f"p_{n}": d["scores"][n] for n in label_names})
    if logits and face.logits is not None:
        row.update({f"logit_{n}": d["logits"][n] for n in label_names})
    if d["landmarks"] is not None:
        row.update(zip(LANDMARK_COLUMNS, [v for pt in d["landmarks"] for v in pt]))
    return row
