"""Inference: faces in, expressions out.

    >>> import ferkit
    >>> rec = ferkit.load("poster_v2", checkpoint="rafdb.pt", detector="retinaface")
    >>> record = rec.predict("photo.jpg")           # Record(input, faces=[FaceResult(box, score, label, ...)], error)
    >>> for rec_ in rec.predict_video("clip.mp4", every=5):
    ...     print(rec_.frame, rec_.timestamp, [f.label for f in rec_.faces])
    >>> summary = ferkit.infer.write_predictions(rec, ["photos/", "clip.mp4"], "out.csv", fmt="csv")  # = ferkit predict
    >>> ferkit.infer.write_predictions(rec, ["corpus/"], "out.jsonl", resume=True, shard=(0, 4))    # corpus scale
    >>> ferkit.infer.merge_shards("out.jsonl")

See ``docs/inference.md``.
"""

from ferkit.infer.api import load
from ferkit.infer.corpus import merge_shards
from ferkit.infer.files import predict_paths, write_predictions
from ferkit.infer.recognizer import Recognizer
from ferkit.infer.records import FaceResult, Record, columns, to_rows
from ferkit.infer.writers import RecordWriter, WriteSummary, write_records

__all__ = ["load", "Recognizer", "Record", "FaceResult", "to_rows", "columns", "predict_paths", "write_predictions",
           "merge_shards", "write_records", "RecordWriter", "WriteSummary"]
