"""Image files, folders and video files given by path, processed in argument order (``ferkit predict``), at any
scale: folders are listed lazily, output files are appended to as records come and can be resumed after a crash,
and the inputs can be split across processes and machines (shards) whose outputs merge into the single-process file.

    >>> import ferkit
    >>> from ferkit.infer import predict_paths, write_predictions, merge_shards
    >>> rec = ferkit.load()
    >>> for record in predict_paths(rec, ["photos/", "clip.mp4"], out_dir="results/"):   # + annotated copies
    ...     print(record.input, [f.label for f in record.faces])
    >>> summary = write_predictions(rec, ["photos/"], "predictions.csv", fmt="csv")        # what the CLI does
    >>> write_predictions(rec, ["corpus/"], "out.jsonl", resume=True)                      # after kill -9: go on
    >>> write_predictions(rec, ["corpus/"], "out.jsonl", shard=(0, 4))                     # out.rank0-of-4.jsonl
    >>> merge_shards("out.jsonl")                                                          # -> out.jsonl

See docs/inference.md, "Corpus scale".
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferkit.image import is_image_file
from ferkit.infer.corpus import (
    TorchrunGroup,
    merge_shards,
    parse_shard,
    read_state,
    run_settings,
    settings_diff,
    shard_path,
    state_path,
    write_state,
)
from ferkit.infer.durable import (
    STREAM_FORMATS,
    DurableWriter,
    RecordKey,
    parts_dir,
    read_contents,
    remove_parts,
    row_options,
    truncate,
)
from ferkit.infer.frames import Frame
from ferkit.infer.inputs import is_video_file, read_path_list, walk_files
from ferkit.infer.records import Record, columns
from ferkit.infer.writers import RecordWriter, WriteSummary, write_records

PathArg = str | os.PathLike


def predict_paths(recognizer: Any, inputs: PathArg | Sequence[PathArg], *, out_dir: PathArg | None = None,
                  every: int = 1, max_frames: int | None = None, progress: bool = False,
                  from_list: PathArg | None = None, shard: Any = None) -> Iterator[Record]:
    """Records for image files, folders and video files, in argument order.

    Images (also across consecutive image arguments and folders) are recognised in batches of the recognizer's
    ``batch_size``; a folder contributes its images (recursively, sorted, listed lazily) and then its videos; a video
    (by extension, :data:`ferkit.infer.inputs.VIDEO_EXTENSIONS`) yields one record per processed frame. Bad inputs
    become records with ``error`` set and do not stop the others.

    Args:
        recognizer: a :class:`~ferkit.infer.Recognizer` (:func:`ferkit.load`).
        inputs: one path or several.
        out_dir: also write annotated images (folder structure kept, names made unique, never over an input) and
            videos (``<name>_annotated.mp4|avi``) into this folder.
        every, max_frames: videos: process every N-th frame; stop a video after this many processed frames.
        progress: progress bars on stderr (inputs with faces/s and ETA; frames of each video).
        from_list: a text file of more input paths, one per line (after ``inputs``).
        shard: ``(rank, world)``, ``"RANK/WORLD"`` or ``"env"`` (torchrun's ``RANK`` / ``WORLD_SIZE``): only the
            input items ``i`` (images, whole videos) with ``i % world == rank``.
    """
    shard = parse_shard(shard)
    return _predict_items(recognizer, lambda: iter_inputs(inputs, from_list), out=out_dir, every=every,
                          max_frames=max_frames, progress=progress, shard=shard)


def write_predictions(recognizer: Any, inputs: PathArg | Sequence[PathArg], output: Any = "-", *,
                      fmt: str = "jsonl", flat: bool = False, out_dir: PathArg | None = None, every: int = 1,
                      max_frames: int | None = None, progress: bool = False, from_list: PathArg | None = None,
                      resume: bool = False, overwrite: bool = False, shard: Any = None, merge: bool = True,
                      options: dict[str, Any] | None = None, sync_every: int | None = None) -> WriteSummary:
    """:func:`predict_paths` written to a records file: the whole of ``ferkit predict``.

    A file in ``jsonl``, ``csv`` or ``parquet`` is written as records come (see :mod:`ferkit.infer.durable`; every
    record reaches the file at once, ``fsync`` every ``sync_every`` records) next to a state file
    ``<output>.state.json`` that records the settings of the run and whether it finished; a killed run is continued
    with ``resume=True``. ``json`` files (one list) and streams are written as before (a ``json`` file atomically).

    Args:
        output: records file, an open text stream, or ``"-"`` for stdout. fmt: ``jsonl``, ``json``, ``csv`` or
            ``parquet`` (flat rows; needs pyarrow); ``flat``: JSON/JSONL with the flat CSV rows.
        out_dir: also annotated images / videos and ``<out_dir>/predictions.<fmt>`` (see :func:`predict_paths`).
        Logit columns are written when the recognizer was loaded with ``logits=True``.
        from_list: a text file of more input paths, one per line.
        resume: continue an interrupted run: keep the records the output holds (a torn last line is cut), skip the
            inputs (and video frames) they cover and append the rest, so the file ends as an uninterrupted run's.
            Refused when the settings differ from the state file's. Resuming a finished output does nothing.
        overwrite: start again over an output that holds an interrupted run (without it that is refused, so that
            a forgotten ``resume`` loses nothing; a finished output or a file without state is replaced as before).
        shard: ``(rank, world)``, ``"RANK/WORLD"`` or ``"env"`` (``RANK`` / ``WORLD_SIZE`` of ``torchrun``): process
            the input items ``i % world == rank`` into ``<stem>.rank<rank>-of-<world><suffix>``.
        merge: under ``torchrun`` (a sharded run), wait for every rank (Gloo group) and merge the shards into
            ``output`` on rank 0 (:func:`~ferkit.infer.corpus.merge_shards`). Elsewhere, merge with
            :func:`merge_shards` once every shard has finished.
        options: other settings that change the rows (e.g. the detector's threshold), recorded in the state file and
            compared on resume.
        sync_every: ``fsync`` after this many records (default: the recognizer's batch size).

    Returns:
        How many records the output holds (also those kept by ``resume``) and how many have an error.

    Raises:
        ValueError: ``resume`` with other settings, or over a file of other inputs; an interrupted output without
            ``resume`` / ``overwrite``; ``resume`` / ``shard`` without a ``jsonl`` / ``csv`` / ``parquet`` file.
    """
    if max_frames is not None and int(max_frames) < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    shard = parse_shard(shard)
    outputs = [output] + ([Path(out_dir) / f"predictions.{fmt}"] if out_dir is not None else [])
    files = [Path(o) for o in outputs if isinstance(o, (str, os.PathLike)) and str(o) != "-"]
    streams = [o for o in outputs if not (isinstance(o, (str, os.PathLike)) and str(o) != "-")]
    if fmt == "parquet" and streams:
        raise ValueError("parquet needs an output file (-o FILE.parquet), not a stream or stdout")
    if (resume or shard) and (fmt not in STREAM_FORMATS or streams):
        raise ValueError(f"{'resume' if resume else 'sharding'} needs an output file (-o FILE) in one of "
                         f"{', '.join(STREAM_FORMATS)}")
    if fmt not in STREAM_FORMATS or not files:
        records = predict_paths(recognizer, inputs, out_dir=out_dir, every=every, max_frames=max_frames,
                                progress=progress, from_list=from_list)
        return write_records(records, outputs, fmt, recognizer.label_names, logits=recognizer.logits, flat=flat,
                             track=tracks(recognizer))
    args = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    settings = run_settings(recognizer, fmt=fmt, flat=flat, inputs=args, from_list=from_list, every=every,
                            max_frames=max_frames, options=options)
    group = TorchrunGroup(shard[1]) if shard is not None and merge else None
    try:
        done = _finished(files, settings) if shard is not None and resume else None
        if done is not None:  # the shards were merged already
            summary = done
        else:
            run = _Run(recognizer, args, files, streams, fmt=fmt, flat=flat, out_dir=out_dir, every=every,
                       max_frames=max_frames, progress=progress, from_list=from_list, resume=resume,
                       overwrite=overwrite, shard=shard, settings=settings, sync_every=sync_every)
            summary = run.write()
        if group is not None and group.active:
            group.barrier()
            if shard[0] == 0 and done is None:
                merged = [merge_shards(f, world=shard[1]) for f in files]
                summary.merged = merged[0].merged
    finally:
        if group is not None:
            group.close()
    return summary


def _finished(files: list[Path], settings: dict[str, Any]) -> WriteSummary | None:
    """The summary of merged outputs that already hold a finished run with these settings (else None)."""
    states = [read_state(f) for f in files]
    if not all(s is not None and s.get("complete") and not settings_diff(s["settings"], settings) for s in states):
        return None
    return WriteSummary(records=states[0].get("records") or 0, failed=states[0].get("failed") or 0,
                        resumed=states[0].get("records") or 0, path=files[0], merged=files[0])


class _Run:
    """One durable run of :func:`write_predictions`: check and cut what the outputs hold, append, finish."""

    def __init__(self, recognizer: Any, inputs: list[Any], files: list[Path], streams: list[Any], *, fmt: str,
                 flat: bool, out_dir: PathArg | None, every: int, max_frames: int | None, progress: bool,
                 from_list: PathArg | None, resume: bool, overwrite: bool, shard: tuple[int, int] | None,
                 settings: dict[str, Any], sync_every: int | None):
        self.rec, self.inputs, self.streams, self.fmt, self.flat = recognizer, inputs, streams, fmt, flat
        self.out_dir, self.every, self.max_frames, self.progress = out_dir, every, max_frames, progress
        self.from_list, self.resume, self.overwrite, self.shard = from_list, resume, overwrite, shard
        self.settings, self.sync_every = settings, sync_every or recognizer.batch_size
        self.targets = [shard_path(f, *shard) if shard is not None else f for f in files]

    def write(self) -> WriteSummary:
        finished = _finished(self.targets, self.settings) if self.resume else None
        if finished is not None:
            finished.merged = None
            return finished
        contents = [self._existing(t) for t in self.targets]
        n = min(len(c) if c is not None else 0 for c in contents)
        for target, cont in zip(self.targets, contents):
            if cont is not None:
                truncate(target, cont, n)
        done = next((c.keys for c in contents if c is not None), [])[:n]
        summary = WriteSummary(path=self.targets[0], resumed=n)
        for key in done:
            self._count(summary, key.record())
        # the old state goes first: killed before the new one is written, the output has no state and is not resumed
        for target, cont in zip(self.targets, contents):
            if cont is None:
                state_path(target).unlink(missing_ok=True)
        writers: list[DurableWriter] = []
        try:
            for target, cont in zip(self.targets, contents):
                writers.append(DurableWriter(target, self.fmt, self.rec.label_names, logits=self.rec.logits,
                                             flat=self.flat, contents=cont, sync_every=self.sync_every,
                                             track=tracks(self.rec)))
        except BaseException:
            for w in writers:
                w.close()
            raise
        for target in self.targets:
            write_state(target, self.settings, shard=self.shard, complete=False)
        plain = [RecordWriter(s, self.fmt, self.rec.label_names, logits=self.rec.logits, flat=self.flat,
                              track=tracks(self.rec)) for s in self.streams]
        try:
            for record in _predict_items(self.rec, lambda: iter_inputs(self.inputs, self.from_list),
                                         out=self.out_dir, every=self.every, max_frames=self.max_frames,
                                         progress=self.progress, shard=self.shard, done=done):
                self._count(summary, record)
                for w in writers:
                    w.write(record)
                for w in plain:
                    w.write(record)
        except BaseException:
            for w in writers:
                w.close()  # what was written stays, for resume
            for w in plain:
                w.close(success=False)
            raise
        for w in writers:
            w.finish()
        for target in self.targets:
            write_state(target, self.settings, shard=self.shard, complete=True, records=summary.records,
                        failed=summary.failed)
            if self.fmt == "parquet":
                remove_parts(target)
        for w in plain:
            w.close()
        return summary

    def _existing(self, target: Path) -> Any:
        """What ``target`` holds that this run keeps (None: start it anew); refuses what must not be lost."""
        state = read_state(target)
        exists = target.exists() or parts_dir(target).exists()
        if not self.resume:
            if exists and state is not None and not state.get("complete") and not self.overwrite:
                raise ValueError(f"{target} holds an interrupted run; continue it with --resume (resume=True, same "
                                 "options) or start again with --overwrite (overwrite=True)")
            return None
        if state is None:
            if exists:
                raise ValueError(f"cannot resume {target}: it has no state file {state_path(target).name}, so its "
                                 "settings are unknown; start again with --overwrite")
            return None
        diff = settings_diff(state["settings"], self.settings)
        if diff:
            raise ValueError(f"cannot resume {target}: it was written with other settings ({'; '.join(diff)}); use "
                             "the same options, or start again with --overwrite")
        if state.get("shard") != (list(self.shard) if self.shard is not None else None):
            raise ValueError(f"cannot resume {target}: it is shard {state.get('shard')}, not {self.shard}")
        contents = read_contents(target, self.fmt, flat=self.flat, complete=bool(state.get("complete")))
        expected = columns(self.rec.label_names, **row_options(logits=self.rec.logits, track=tracks(self.rec)))
        if self.fmt == "csv" and contents.header is not None and contents.header != expected:
            raise ValueError(f"cannot resume {target}: its CSV columns are not this run's; start again with "
                             "--overwrite")
        return contents

    @staticmethod
    def _count(summary: WriteSummary, record: Record) -> None:
        summary.records += 1
        if record.error is not None:
            summary.failed += 1
            summary.first_error = summary.first_error or record


def tracks(recognizer: Any) -> bool:
    """True when the recognizer tracks faces across video frames (flat rows then have a ``track_id`` column)."""
    return bool(getattr(recognizer, "track", None)) or int(getattr(recognizer, "detect_every", 1) or 1) > 1


# ---- input items -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputPath:
    """One item of a run: an image (one record) or a video (one record per processed frame). ``path`` is the
    record's ``input``; ``rel`` the image's name under ``out_dir``."""

    kind: str
    path: str
    rel: str = ""


def iter_inputs(inputs: PathArg | Sequence[PathArg], from_list: PathArg | None = None) -> Iterator[InputPath]:
    """The items of a run, lazily and in a fixed order: the arguments in order (then the lines of ``from_list``); a
    folder gives its images (recursive, sorted) and then its videos; an empty folder one item (an error record)."""
    args = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    for arg in itertools.chain(args, read_path_list(from_list) if from_list is not None else ()):
        path = Path(arg)
        if path.is_dir():
            videos, images = [], 0
            for full, rel in walk_files(path, lambda name: is_image_file(name) or is_video_file(name)):
                if is_video_file(full):
                    videos.append(full)
                else:
                    images += 1
                    yield InputPath("image", full, os.path.join(path.name, rel))
            if not images and not videos:
                yield InputPath("image", str(path), path.name)  # becomes an error record ("no image files in folder")
            yield from (InputPath("video", v) for v in videos)
        elif is_video_file(arg):
            yield InputPath("video", str(arg))
        else:
            yield InputPath("image", str(path), path.name)


def _predict_items(recognizer: Any, make_items: Callable[[], Iterator[InputPath]], *, out: PathArg | None,
                   every: int, max_frames: int | None, progress: bool, shard: tuple[int, int] | None,
                   done: Sequence[RecordKey] = ()) -> Iterator[Record]:
    """Records of this shard's items, after the records ``done`` that an output already holds (checked against the
    items).

    Consecutive images go to :meth:`~ferkit.infer.Recognizer.predict_frames` in chunks of :func:`chunk_size` (cut
    again at every video). The numbers of a face depend a little (last bits) on the images it is batched with, so a
    resumed run recomputes the chunk it stopped in from its start and drops the records already written, and runs
    a video it stopped in again from its first frame: its rows then equal an uninterrupted run's bit for bit.
    """
    out = Path(out) if out is not None else None
    rank, world = shard or (0, 1)
    names = _OutputNames()
    bar = _Progress(progress, lambda: sum(1 for i, _ in enumerate(make_items()) if i % world == rank))
    pending: list[tuple[InputPath, Path | None, bool]] = []  # (image, annotated copy, already in the output)
    chunk = chunk_size(recognizer.batch_size)

    def flush() -> Iterator[Record]:
        batch = list(pending)
        pending.clear()
        if all(written for _, _, written in batch):
            return
        frames = recognizer.predict_frames([item.path for item, _, _ in batch])
        for (_, target, written), frame in zip(batch, frames):
            if written:
                continue
            if target is not None and frame.rgb is not None:
                _save_annotated(frame, target)
            bar.record(frame.record)
            yield frame.record
            bar.item()

    pos = 0
    try:
        for i, item in enumerate(make_items()):
            target = None  # annotated names are given to every item (all shards) so that they do not depend on them
            if out is not None:
                target = names.image(item.rel, out, item.path) if item.kind == "image" else names.video(item.path, out)
            if i % world != rank:
                continue
            written = 0
            if pos < len(done):
                written = _written(item, i, done, pos)
                pos += written
            if item.kind == "image":
                pending.append((item, target, written > 0))
                if written:
                    bar.skip()
                if len(pending) >= chunk:
                    yield from flush()
                continue
            yield from flush()
            if written and pos < len(done):  # records of later items follow: this video was finished
                bar.skip()
                continue
            records = recognizer.predict_video(item.path, every=every, max_frames=max_frames, out=target,
                                               progress=progress)
            for record in itertools.islice(records, written, None):
                bar.record(record)
                yield record
            bar.item()
        yield from flush()
        if pos < len(done):
            raise ValueError(f"cannot resume: the output holds {len(done)} records, the last ones for "
                             f"{done[-1].input!r}, which is no longer among the inputs; start again with --overwrite")
    finally:
        bar.close()


def chunk_size(batch_size: int) -> int:
    """How many consecutive images go to one ``predict_frames`` call (a multiple of the batch size)."""
    return 16 * max(1, int(batch_size))


def _written(item: InputPath, index: int, done: Sequence[RecordKey], pos: int) -> int:
    """How many of the records ``done[pos:]`` belong to ``item`` (1 for an image; a video's run of frames).

    Raises:
        ValueError: the records are for another input (the inputs changed since the output was written).
    """
    n, prev = 0, None
    if item.kind == "image":
        n = int(done[pos].input == item.path and done[pos].frame is None)
    else:
        while (pos + n < len(done) and done[pos + n].input == item.path and done[pos + n].frame is not None
               and (prev is None or done[pos + n].frame > prev)):
            prev = done[pos + n].frame
            n += 1
    if n == 0:
        raise ValueError(f"cannot resume: record {pos + 1} of the output is for {done[pos].input!r}, but input item "
                         f"{index + 1} is now {item.path!r} (the inputs changed since it was written); start again "
                         "with --overwrite")
    return n


class _Progress:
    """A bar over the input items of the run (images; a video counts once, its frames have their own bar) with
    faces/s; its total (hence the ETA) is counted in a background thread, so that work starts at once."""

    def __init__(self, enabled: bool, count: Callable[[], int]):
        from tqdm.auto import tqdm

        self.enabled, self.faces, self.start = enabled, 0, time.monotonic()
        self.bar = tqdm(total=None, unit=" inputs", disable=not enabled, leave=False, dynamic_ncols=True)
        if enabled:
            threading.Thread(target=self._count, args=(count,), daemon=True).start()

    def _count(self, count: Callable[[], int]) -> None:
        try:
            self.bar.total = count()
        except Exception:  # noqa: BLE001 - no total, no ETA: the run goes on
            return

    def skip(self) -> None:
        """An item already in the output (resume): counted, without changing the rate."""
        if self.enabled:
            self.bar.n += 1
            self.bar.last_print_n += 1
            self.bar.initial += 1

    def record(self, record: Record) -> None:
        if self.enabled:
            self.faces += len(record.faces)
            rate = self.faces / max(time.monotonic() - self.start, 1e-9)
            self.bar.set_postfix_str(f"{rate:.1f} faces/s", refresh=False)

    def item(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class _OutputNames:
    """Unique annotated-file names inside ``out_dir`` (``name.jpg``, ``name_1.jpg``, ...)."""

    def __init__(self):
        self.used: set[str] = set()

    def _unique(self, rel: Path) -> Path:
        cand, i = rel, 0
        while str(cand) in self.used:
            i += 1
            cand = rel.with_name(f"{rel.stem}_{i}{rel.suffix}")
        self.used.add(str(cand))
        return cand

    def image(self, rel: str, out: Path, source: str | None = None) -> Path:
        """Annotated-image path for input ``source`` (shown as ``rel``); never the input file itself."""
        rel_p = Path(rel)
        suffix = rel_p.suffix.lower() if rel_p.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
        rel_p = rel_p.with_suffix(suffix)
        if source and (out / rel_p).resolve() == Path(source).resolve():
            rel_p = rel_p.with_name(f"{rel_p.stem}_annotated{suffix}")
        return out / self._unique(rel_p)

    def video(self, path: str, out: Path) -> Path:
        suffix = ".avi" if Path(path).suffix.lower() == ".avi" else ".mp4"
        return out / self._unique(Path(Path(path).stem + "_annotated" + suffix))


def _save_annotated(frame: Frame, path: Path) -> None:
    from PIL import Image

    from ferkit.checkpoint import atomic_write_bytes
    from ferkit.infer.draw import annotate

    img = Image.fromarray(annotate(frame.rgb, frame.record.faces, untrained=frame.record.untrained))
    fmt = "JPEG" if path.suffix in (".jpg", ".jpeg") else "PNG"
    atomic_write_bytes(path, lambda f: img.save(f, format=fmt, quality=92) if fmt == "JPEG" else img.save(f, fmt))
