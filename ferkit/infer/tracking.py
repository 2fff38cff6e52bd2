"""Face tracks across video frames: a stable ``track_id`` per face, and boxes carried between detector frames.

With ``detect_every=N`` the detector runs on every N-th processed frame only. :class:`IouTracker` matches each
detector frame's faces to the tracks of the previous one (greedy, highest IoU first, after moving every track by its
constant-velocity prediction); faces left over are matched to tracks left over whose predicted centre is less than
one face size away, nearest first (a fast face whose velocity is not known yet moves out of its old box between two
detector frames); a face that matches no track starts a new one (ids count up from 0 per video). In
between, a frame gets the faces of the tracks seen at the last detector frame, moved by their velocity (pixels per
processed frame, estimated from the last two detector frames; zero for a track seen once), landmarks moved with
the box centre. A track that is missed at ``max_missed`` detector frames in a row is dropped; a missed track is not
drawn or classified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ferkit.detect.base import Face


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _centre_distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Distance of the box centres in units of the larger face size (inf when the sizes differ more than 2x)."""
    sa, sb = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    if min(sa, sb) <= 0 or max(sa, sb) > 2 * min(sa, sb):
        return float("inf")
    dx, dy = (a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2
    return float(np.hypot(dx, dy) / max(sa, sb))


@dataclass
class Track:
    """One face followed across frames: its last detection, the processed-frame step it was seen at, its velocity, its
    position in that frame's list of faces, and the detector frames in a row it was missed at."""

    id: int
    face: Face
    step: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    rank: int = 0
    missed: int = 0

    def predict(self, step: int) -> Face:
        """The face moved to processed-frame ``step`` at constant velocity."""
        dt = step - self.step
        if dt == 0 or not self.velocity.any():
            return self.face
        box = np.asarray(self.face.box, dtype=np.float64) + self.velocity * dt
        if box[2] <= box[0] or box[3] <= box[1]:  # shrunk to nothing: keep the last box
            return self.face
        lm = self.face.landmarks
        if lm is not None:
            shift = ((box[:2] + box[2:]) - (np.asarray(self.face.box[:2]) + np.asarray(self.face.box[2:]))) / 2
            lm = np.asarray(lm, dtype=np.float64) + shift
        return Face(box=tuple(float(v) for v in box), score=self.face.score, landmarks=lm)


class IouTracker:
    """IoU matching of detections to tracks, constant-velocity boxes in between (see the module docstring).

    Args:
        iou_threshold: minimum IoU between a detection and a track's predicted box to continue the track.
        max_missed: detector frames in a row a track may be missed before it is dropped.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 1):
        self.iou_threshold, self.max_missed = float(iou_threshold), int(max_missed)
        self.tracks: list[Track] = []
        self.next_id = 0
        self.detections = 0  # detector frames seen

    def update(self, faces: list[Face], step: int) -> list[int]:
        """A detector frame at processed-frame ``step``: the track id of each face (in the order given)."""
        self.detections += 1
        predicted = [t.predict(step) for t in self.tracks]
        pairs = sorted(((iou(f.box, p.box), i, j) for i, f in enumerate(faces) for j, p in enumerate(predicted)),
                       reverse=True)
        near = sorted((_centre_distance(f.box, p.box), i, j) for i, f in enumerate(faces)
                      for j, p in enumerate(predicted))
        ids: list[int | None] = [None] * len(faces)
        used: set[int] = set()
        matches = [(i, j) for overlap, i, j in pairs if overlap >= self.iou_threshold]
        matches += [(i, j) for dist, i, j in near if dist < 1.0]  # second pass: what IoU left unmatched
        for i, j in matches:
            if ids[i] is not None or j in used:
                continue
            track = self.tracks[j]
            dt = step - track.step
            if dt > 0:
                track.velocity = (np.asarray(faces[i].box, dtype=np.float64)
                                  - np.asarray(track.face.box, dtype=np.float64)) / dt
            track.face, track.step, track.rank, track.missed = faces[i], step, i, 0
            ids[i] = track.id
            used.add(j)
        for j, track in enumerate(self.tracks):
            if j not in used:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for i, face in enumerate(faces):
            if ids[i] is None:
                self.tracks.append(Track(self.next_id, face, step, rank=i))
                ids[i] = self.next_id
                self.next_id += 1
        return [int(i) for i in ids]

    def carry(self, step: int) -> tuple[list[Face], list[int]]:
        """A frame without detection at processed-frame ``step``: the faces (and ids) of the tracks seen at the last
        detector frame, moved to ``step``."""
        live = sorted((t for t in self.tracks if t.missed == 0), key=lambda t: t.rank)
        return [t.predict(step) for t in live], [t.id for t in live]
