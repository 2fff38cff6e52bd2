"""Record files that long runs append to as they go, that survive ``kill -9``, and that can be read back to resume.

``jsonl`` and ``csv`` are written in place: each record (all its rows) goes out with one ``os.write`` call, so once a
record has been handed over it is in the operating system's cache and a killed process loses nothing; the file is
also ``fsync``-ed every ``sync_every`` records, at most once a second (a power cut loses at most those). Reading a file
back (:func:`read_contents`) stops at the first torn or unreadable line; flat rows (``csv``, ``jsonl`` with ``flat``)
also leave out the file's last record, whose rows may be incomplete (it is computed again on resume).

``parquet`` cannot be appended to: records are buffered and written as numbered part files
(``<output>.parts/part-000000.parquet``, ...), one per ``part_records`` records or ``part_seconds`` seconds, each
written atomically; :meth:`DurableWriter.finish` joins the parts into ``<output>`` (one row group per part), and
:func:`remove_parts` deletes them once the caller has recorded that the file is complete. Parquet rows are the flat
rows of :func:`ferkit.infer.records.to_rows` (one per face); it needs ``pyarrow`` (``pip install 'ferkit[parquet]'``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferkit.infer.records import Record, columns, to_rows

#: the formats that can be appended to, read back and resumed
STREAM_FORMATS = ("jsonl", "csv", "parquet")
PARQUET_PART_RECORDS = 1024
PARQUET_PART_SECONDS = 60.0
_PART = re.compile(r"^part-(\d{6})\.parquet$")


def import_pyarrow() -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet``, or an ImportError that says how to install them."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as e:
        raise ImportError("the parquet format needs pyarrow: pip install 'ferkit[parquet]'") from e
    return pyarrow, pyarrow.parquet


def parts_dir(path: str | os.PathLike) -> Path:
    """The folder of a parquet output's part files while it is being written."""
    path = Path(path)
    return path.with_name(path.name + ".parts")


def is_flat(fmt: str, flat: bool) -> bool:
    """True when ``fmt`` holds flat rows (one per face) rather than one nested record per line."""
    return fmt in ("csv", "parquet") or bool(flat)


@dataclass(frozen=True)
class RecordKey:
    """What resuming and merging need of a record already in a file."""

    input: str
    frame: int | None = None
    error: str | None = None

    def record(self) -> Record:
        return Record(self.input, error=self.error, frame=self.frame)


@dataclass
class Contents:
    """The complete records of a file: ``keys[k]`` spans ``bounds[k]:bounds[k + 1]`` (bytes for jsonl/csv, rows for
    parquet; ``bounds[0]`` is after the CSV header). ``header``: the CSV header line as read (None when absent)."""

    fmt: str
    keys: list[RecordKey] = field(default_factory=list)
    bounds: list[int] = field(default_factory=lambda: [0])
    header: list[str] | None = None
    parts: list[tuple[Path, int]] = field(default_factory=list)  # parquet: (part file, rows)

    def __len__(self) -> int:
        return len(self.keys)


# ---- reading back ---------------------------------------------------------------------------------------------------
def read_contents(path: str | os.PathLike, fmt: str, *, flat: bool = False, complete: bool = False) -> Contents:
    """The complete records that ``path`` holds (an empty :class:`Contents` when it does not exist).

    Reading stops at the first torn line (no newline at the end of the file) or unreadable line; with flat rows the
    last record is left out too, unless the file is known to be ``complete``. A parquet output is read from its part
    files, or from the joined file when they are gone.
    """
    path = Path(path)
    if fmt == "parquet":
        return _read_parquet(path)
    out = Contents(fmt)
    if not path.is_file():
        return out
    with open(path, "rb") as f:
        rows = _csv_rows(f, out) if fmt == "csv" else _jsonl_rows(f)
        if is_flat(fmt, flat):
            _group_rows(rows, out, keep_last=complete)
        else:
            for (key, _), end in rows:
                out.keys.append(key)
                out.bounds.append(end)
    return out


def _complete_lines(f: Any, start: int = 0) -> Iterator[tuple[bytes, int]]:
    """``(line, end offset)`` for every line that ends with a newline."""
    pos = start
    for line in f:
        if not line.endswith(b"\n"):
            return
        pos += len(line)
        yield line, pos


def _jsonl_rows(f: Any) -> Iterator[tuple[Any, int]]:
    """``(RecordKey + face index, end offset)`` per line; stops at the first line that is not a JSON object."""
    for line, end in _complete_lines(f):
        try:
            item = json.loads(line)
        except ValueError:
            return
        if not isinstance(item, dict) or not isinstance(item.get("input"), str):
            return
        yield (RecordKey(item["input"], item.get("frame"), item.get("error")), item.get("face")), end


def _csv_rows(f: Any, out: Contents) -> Iterator[tuple[Any, int]]:
    pos = [0]

    def lines() -> Iterator[str]:
        for line, end in _complete_lines(f):
            pos[0] = end
            yield line.decode("utf-8")

    reader = csv.reader(lines())
    try:
        out.header = next(reader)
    except (StopIteration, csv.Error, UnicodeDecodeError):
        out.header = None
        return
    out.bounds[0] = pos[0]
    width = len(out.header)
    col = {name: i for i, name in enumerate(out.header)}
    if not {"input", "frame", "face", "error"} <= set(col):
        return
    try:
        for row in reader:
            if len(row) != width:
                return
            frame, face, error = row[col["frame"]], row[col["face"]], row[col["error"]]
            key = RecordKey(row[col["input"]], int(frame) if frame else None, error or None)
            yield (key, int(face) if face else None), pos[0]
    except (csv.Error, UnicodeDecodeError, ValueError):
        return


def _group_rows(rows: Iterator[tuple[Any, int]], out: Contents, keep_last: bool) -> None:
    """Flat rows -> records: a record starts at a row whose face index is empty or 0; the last one is dropped (its
    later rows may be missing) unless ``keep_last``."""
    pending: tuple[RecordKey, int] | None = None
    for (key, face), end in rows:
        if face is None or face == 0:
            if pending is not None:
                out.keys.append(pending[0])
                out.bounds.append(pending[1])
            pending = (key, end)
        elif pending is None:
            return
        else:
            pending = (pending[0], end)
    if keep_last and pending is not None:
        out.keys.append(pending[0])
        out.bounds.append(pending[1])


def _read_parquet(path: Path) -> Contents:
    out = Contents("parquet")
    folder = parts_dir(path)
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if _PART.match(p.name))
        files = [p for i, p in enumerate(files) if p.name == f"part-{i:06d}.parquet"]  # stop at a gap
    else:
        files = [path] if path.is_file() else []
    if not files:
        return out
    _, pq = import_pyarrow()
    for part in files:
        table = pq.read_table(part, columns=["input", "frame", "face", "error"])
        cols = {name: table.column(name).to_pylist() for name in table.column_names}
        rows = ((RecordKey(i, fr, e), fa) for i, fr, fa, e in zip(cols["input"], cols["frame"], cols["face"],
                                                                     cols["error"]))
        base = out.bounds[-1]
        for n, (key, face) in enumerate(rows):
            if face is None or face == 0:
                if n:
                    out.bounds.append(base + n)
                out.keys.append(key)
        if table.num_rows:
            out.bounds.append(base + table.num_rows)
        out.parts.append((part, table.num_rows))
    return out


def truncate(path: str | os.PathLike, contents: Contents, n: int) -> None:
    """Cut ``path`` after its first ``n`` complete records (a torn tail goes too) and update ``contents``."""
    path = Path(path)
    if contents.fmt == "parquet":
        _truncate_parquet(path, contents, n)
    elif path.is_file():
        with open(path, "r+b") as f:
            f.truncate(contents.bounds[n])
            f.flush()
            os.fsync(f.fileno())
    del contents.keys[n:]
    del contents.bounds[n + 1:]


def _truncate_parquet(path: Path, contents: Contents, n: int) -> None:
    from ferkit.checkpoint import atomic_write_bytes

    keep_rows, start, kept = contents.bounds[n], 0, []
    folder = parts_dir(path)
    if contents.parts and contents.parts[0][0].parent != folder:  # the joined file: back into a part
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(contents.parts[0][0], folder / "part-000000.parquet")
        contents.parts = [(folder / "part-000000.parquet", contents.parts[0][1])]
    for part, rows in contents.parts:
        if start >= keep_rows:
            part.unlink()
        elif start + rows > keep_rows:
            _, pq = import_pyarrow()
            table = pq.read_table(part).slice(0, keep_rows - start)
            atomic_write_bytes(part, lambda f, t=table, w=pq.write_table: w(t, f))
            kept.append((part, keep_rows - start))
        else:
            kept.append((part, rows))
        start += rows
    contents.parts = kept
    if folder.is_dir():
        for p in folder.iterdir():  # temporaries of a part that was being written when the run was killed
            if not _PART.match(p.name) or p not in {k for k, _ in kept}:
                p.unlink()


def remove_parts(path: str | os.PathLike) -> None:
    """Delete a parquet output's part files (after its joined file has been recorded as complete)."""
    shutil.rmtree(parts_dir(path), ignore_errors=True)


# ---- writing ---------------------------------------------------------------------------------------------------------
class DurableWriter:
    """Append records to ``path`` (see the module docs), after the first ``len(contents)`` records of a resumed file.

    Args:
        path: output file. fmt: ``jsonl`` | ``csv`` | ``parquet``. label_names, logits, flat: as
            :class:`~ferkit.infer.writers.RecordWriter`; track: flat rows with a ``track_id`` column.
        contents: what the file already holds (:func:`read_contents`, cut with :func:`truncate`); None = start anew.
        sync_every, sync_seconds: ``fsync`` after this many records (jsonl/csv; a batch), at most once per
            ``sync_seconds`` (an ``fsync`` can take milliseconds: at hundreds of records/s it would cost more than
            the writing).
        part_records, part_seconds: parquet: a part file per this many records or seconds.
    """

    def __init__(self, path: str | os.PathLike, fmt: str, label_names: Sequence[str], *, logits: bool = False,
                 flat: bool = False, contents: Contents | None = None, sync_every: int = 8,
                 part_records: int | None = None, part_seconds: float | None = None, track: bool = False,
                 sync_seconds: float = 1.0):
        if fmt not in STREAM_FORMATS:
            raise ValueError(f"format {fmt!r} cannot be appended to; expected one of {', '.join(STREAM_FORMATS)}")
        self.path, self.fmt, self.label_names, self.logits = Path(path), fmt, tuple(label_names), logits
        self.flat = is_flat(fmt, flat)
        self.row_options = row_options(logits=logits, track=track)
        self.cols = columns(self.label_names, **self.row_options)
        self.sync_every, self.sync_seconds = max(1, int(sync_every)), float(sync_seconds)
        self.unsynced, self.synced_at = 0, time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            self._open_parquet(contents, part_records, part_seconds)
            return
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)
        keep = contents.bounds[-1] if contents is not None else 0
        os.ftruncate(self.fd, keep)
        os.lseek(self.fd, keep, os.SEEK_SET)
        self._buf = io.StringIO()
        self._csv = csv.DictWriter(self._buf, fieldnames=self.cols)
        if fmt == "csv" and keep == 0:
            self._csv.writeheader()
            self._write(self._buf.getvalue().encode("utf-8"))
        self.sync()
        _fsync_dir(self.path.parent)

    def _open_parquet(self, contents: Contents | None, part_records: int | None, part_seconds: float | None) -> None:
        self.pa, self.pq = import_pyarrow()
        self.schema = parquet_schema(self.pa, self.cols)
        self.folder = parts_dir(self.path)
        if contents is None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.part_index = len(contents.parts) if contents is not None else 0
        self.part_records = int(part_records or PARQUET_PART_RECORDS)
        self.part_seconds = float(part_seconds or PARQUET_PART_SECONDS)
        self.rows: list[dict[str, Any]] = []
        self.buffered, self.since = 0, time.monotonic()
        _fsync_dir(self.path.parent)

    def encode(self, record: Record) -> bytes:
        """One record as the bytes it takes in a jsonl / csv file."""
        items = to_rows([record], self.label_names, **self.row_options) if self.flat else [record.to_dict()]
        if self.fmt == "csv":
            self._buf.seek(0)
            self._buf.truncate()
            self._csv.writerows(items)
            return self._buf.getvalue().encode("utf-8")
        return "".join(json.dumps(item) + "\n" for item in items).encode("utf-8")

    def write(self, record: Record) -> None:
        """Append one record (parquet: buffer it; a part file is written when enough have come)."""
        if self.fmt == "parquet":
            self.rows += to_rows([record], self.label_names, **self.row_options)
            self.buffered += 1
            if self.buffered >= self.part_records or time.monotonic() - self.since >= self.part_seconds:
                self.flush_part()
            return
        self._write(self.encode(record))
        self.unsynced += 1
        if self.unsynced >= self.sync_every and time.monotonic() - self.synced_at >= self.sync_seconds:
            self.sync()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def sync(self) -> None:
        """``fsync`` what has been written (parquet: write the buffered records as a part file)."""
        if self.fmt == "parquet":
            self.flush_part()
        else:
            os.fsync(self.fd)
            self.unsynced, self.synced_at = 0, time.monotonic()

    def flush_part(self) -> None:
        from ferkit.checkpoint import atomic_write_bytes

        if self.buffered:
            table = self.pa.Table.from_pylist(self.rows, schema=self.schema)
            part = self.folder / f"part-{self.part_index:06d}.parquet"
            atomic_write_bytes(part, lambda f: self.pq.write_table(table, f))
            self.part_index += 1
        self.rows, self.buffered, self.since = [], 0, time.monotonic()

    def close(self) -> None:
        """Make what was written durable and close the file (also after an error: the run can be resumed)."""
        if self.fmt == "parquet":
            self.flush_part()
        elif self.fd is not None:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = None

    def finish(self) -> None:
        """Close; parquet: join the part files into the output file (atomically; the parts stay until
        :func:`remove_parts`)."""
        self.close()
        if self.fmt == "parquet":
            join_parquet_parts(self.path, self.schema)


def row_options(*, logits: bool, track: bool) -> dict[str, bool]:
    """Keyword arguments of :func:`~ferkit.infer.records.columns` / ``to_rows`` (``track`` only when set)."""
    return {"logits": bool(logits), **({"track": True} if track else {})}


def parquet_schema(pa: Any, cols: Sequence[str]) -> Any:
    """Column types of the flat rows: strings for input / label / error, int64 for frame / face, else float64."""
    kinds = {"input": pa.string(), "label": pa.string(), "error": pa.string(), "frame": pa.int64(),
             "face": pa.int64(), "track_id": pa.int64()}
    return pa.schema([(c, kinds.get(c, pa.float64())) for c in cols])


def join_parquet_parts(path: Path, schema: Any) -> None:
    """Write every part file of ``path`` (in order) into ``path`` as one row group each."""
    from ferkit.checkpoint import atomic_path

    _, pq = import_pyarrow()
    parts = sorted(p for p in parts_dir(path).iterdir() if _PART.match(p.name))
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make a new directory entry durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
