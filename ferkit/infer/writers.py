"""Streaming record writers: JSON (one list), JSONL (one nested record per line) and CSV (flat rows, one per face).

A writer to a file writes to a temporary file next to it and renames it when closed, so a crash never leaves a
half-written file under the final name (the partial file stays as ``.<name>.partial`` for inspection).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ferkit.infer.records import Record, columns, to_rows

FORMATS = ("json", "jsonl", "csv")


class RecordWriter:
    """Write records as they come.

    Args:
        path: output file, an open text stream, or None / ``"-"`` for stdout. fmt: ``json`` | ``jsonl`` | ``csv``.
        label_names: the model's labels (CSV columns). logits: add logit columns (CSV).
        flat: JSON/JSONL with the flat CSV rows instead of nested records. track: flat rows with a ``track_id`` column.
    """

    def __init__(self, path: str | os.PathLike | IO[str] | None, fmt: str, label_names: Sequence[str], *,
                 logits: bool = False, flat: bool = False, track: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.fmt, self.label_names, self.logits, self.flat, self.track = fmt, tuple(label_names), logits, flat, track
        stream = sys.stdout if path is None or path == "-" else path if hasattr(path, "write") else None
        self.path = None if stream is not None else Path(path)
        if stream is not None:
            self.tmp, self.fh = None, stream
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = self.path.with_name(f".{self.path.name}.partial")
            self.fh = open(self.tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.count = 0
        self._csv: csv.DictWriter | None = None
        if fmt == "csv":
            self._csv = csv.DictWriter(self.fh, fieldnames=columns(self.label_names, logits=logits, track=track))
            self._csv.writeheader()
        elif fmt == "json":
            self.fh.write("[")

    def write(self, record: Record) -> None:
        """Write one record (several CSV / flat rows when it has several faces)."""
        items: list[dict[str, Any]] = (to_rows([record], self.label_names, logits=self.logits, track=self.track)
                                       if self.flat or self._csv else [record.to_dict()])
        for item in items:
            if self._csv is not None:
                self._csv.writerow(item)
            elif self.fmt == "jsonl":
                self.fh.write(json.dumps(item) + "\n")
            else:
                self.fh.write(("," if self.count else "") + "\n" + json.dumps(item))
            self.count += 1
        self.fh.flush()

    def close(self, *, success: bool = True) -> None:
        """Finish the file and (for files) rename it to its final name; ``success=False`` keeps the partial file."""
        if self.fmt == "json":
            self.fh.write("\n]\n")
        self.fh.flush()
        if self.path is not None:
            self.fh.close()
            if success:
                os.replace(self.tmp, self.path)

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.close(success=exc_type is None)


@dataclass
class WriteSummary:
    """What :func:`write_records` wrote: ``records`` in all, ``failed`` of them with an error, the first of those.

    Runs of :func:`ferkit.infer.write_predictions` also fill ``resumed`` (records that the output already held:
    counted in ``records`` / ``failed`` too), ``path`` (the file written, e.g. this rank's shard) and ``merged`` (the
    merged output, on the rank that merged the shards).
    """

    records: int = 0
    failed: int = 0
    first_error: Record | None = None
    resumed: int = 0
    path: Path | None = None
    merged: Path | None = None


def write_records(records: Iterable[Record], path: str | os.PathLike | IO[str] | Sequence[str | os.PathLike | IO[str]]
                  | None, fmt: str, label_names: Sequence[str], *, logits: bool = False,
                  flat: bool = False, track: bool = False) -> WriteSummary:
    """Write every record (as it comes) to one destination or to each of a list of them, then close the files.

    Args:
        path: a file, an open text stream, None / ``"-"`` for stdout, or a list of these. Others: see
            :class:`RecordWriter`.
    """
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    writers = [RecordWriter(p, fmt, label_names, logits=logits, flat=flat, track=track) for p in paths]
    summary = WriteSummary()
    try:
        for record in records:
            summary.records += 1
            if record.error is not None:
                summary.failed += 1
                summary.first_error = summary.first_error or record
            for w in writers:
                w.write(record)
    finally:
        for w in writers:
            w.close()
    return summary


def dumps(records: Sequence[Record], fmt: str, label_names: Sequence[str], **kw: Any) -> str:
    """All records as one string in ``fmt`` (convenience for small batches and tests)."""
    buf = io.StringIO()
    with RecordWriter(buf, fmt, label_names, **kw) as writer:
        for r in records:
            writer.write(r)
    return buf.getvalue()
