"""Corpus-scale runs of ``ferkit predict``: the state file next to an output, shards and their merge.

State file: ``<output>.state.json`` (written atomically) records the settings that change the rows (format, inputs,
model and a SHA-256 of its weights, detector, crop, ``every``, ...), the shard, and whether the run finished. A
resumed run must have the same settings; :func:`merge_shards` checks that every shard finished with the same ones.

Shards: input item ``i`` (an image, or a whole video) belongs to shard ``i % world``; rank ``r`` writes
``<stem>.rank<r>-of-<world><suffix>`` (e.g. ``out.rank0-of-2.jsonl``). Each shard holds its items in input order, so
:func:`merge_shards` restores the single-process order by taking one item from each shard in turn (an image is one
record; a video is its run of records of one input with rising frame numbers).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ferkit.infer.durable import Contents, RecordKey, import_pyarrow, parquet_schema, parts_dir, read_contents
from ferkit.infer.records import columns
from ferkit.infer.writers import WriteSummary

STATE_SUFFIX = ".state.json"
#: how long the ranks of a ``torchrun`` launch wait for each other before rank 0 merges (shards of long videos may
#: finish hours apart)
MERGE_TIMEOUT = datetime.timedelta(days=7)


# ---- state file ------------------------------------------------------------------------------------------------------
def state_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.name + STATE_SUFFIX)


def read_state(output: str | os.PathLike) -> dict[str, Any] | None:
    """The state recorded next to ``output`` (None when there is none)."""
    path = state_path(output)
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path} is not a ferkit predict state file ({e}); remove it or use --overwrite") from e
    if not isinstance(state, dict) or not isinstance(state.get("settings"), dict):
        raise ValueError(f"{path} is not a ferkit predict state file; remove it or use --overwrite")
    return state


def write_state(output: str | os.PathLike, settings: dict[str, Any], *, shard: tuple[int, int] | None,
                complete: bool, records: int | None = None, failed: int | None = None, **extra: Any) -> None:
    from ferkit.checkpoint import atomic_write_bytes

    state = {"ferkit_predict_state": 1, "settings": settings, "shard": list(shard) if shard else None,
             "complete": complete, "records": records, "failed": failed,
             "updated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **extra}
    data = (json.dumps(state, indent=1) + "\n").encode("utf-8")
    atomic_write_bytes(state_path(output), lambda f: f.write(data))


def run_settings(recognizer: Any, *, fmt: str, flat: bool, inputs: Sequence[Any], from_list: Any, every: int,
                 max_frames: int | None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What makes the rows of a run what they are (compared when resuming and merging), as plain JSON values."""
    from ferkit.checkpoint import sha256_file

    backend = recognizer.backend
    settings = {
        "format": fmt, "flat": bool(flat) and fmt == "jsonl", "inputs": [str(x) for x in inputs],
        "from_list": None if from_list is None else {"path": str(from_list), "sha256": sha256_file(from_list)},
        "every": int(every), "max_frames": max_frames, "model": recognizer.model_name,
        "weights_sha256": weights_sha256(backend), "backend": getattr(backend, "name", type(backend).__name__),
        "precision": str(getattr(backend, "precision", "fp32")), "labels": list(recognizer.label_names),
        "detector": recognizer.detector_name, "crop": recognizer.crop, "logits": bool(recognizer.logits),
        "untrained": bool(recognizer.untrained), "options": dict(options or {}),
        # video face tracking (when the recognizer has it): detector every N-th frame, track ids
        "detect_every": getattr(recognizer, "detect_every", 1), "track": getattr(recognizer, "track", None),
    }
    return json.loads(json.dumps(settings, default=str))


def weights_sha256(backend: Any) -> str | None:
    """SHA-256 of the classifier's weights: its state dict (PyTorch) or its model file (ONNX); None when unknown."""
    from torch import nn

    from ferkit.checkpoint import sha256_file, state_dict_sha256

    model, path = getattr(backend, "model", None), getattr(backend, "path", None)
    if isinstance(model, nn.Module):
        return state_dict_sha256(model)
    if path is not None and Path(path).is_file():
        return sha256_file(path)
    return None


def settings_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every setting that differs."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {_short(old.get(k))} -> {_short(new.get(k))}" for k in keys if old.get(k) != new.get(k)]


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- shards ----------------------------------------------------------------------------------------------------------
def parse_shard(spec: Any) -> tuple[int, int] | None:
    """``(rank, world)`` from ``"RANK/WORLD"``, a pair, ``"env"`` (``RANK`` / ``WORLD_SIZE``, as set by ``torchrun``)
    or None. A world of 1 means no sharding (None).

    Raises:
        ValueError: a malformed spec, or not ``0 <= rank < world``.
    """
    if spec is None:
        return None
    if spec == "env":
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        spec = (int(os.environ.get("RANK", "0") or 0), world)
    elif isinstance(spec, str):
        found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
        if found is None:
            raise ValueError(f"shard {spec!r}: expected RANK/WORLD, e.g. 0/4")
        spec = (int(found.group(1)), int(found.group(2)))
    rank, world = (int(v) for v in spec)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard {rank}/{world}: expected 0 <= RANK < WORLD")
    return None if world == 1 else (rank, world)


def shard_path(output: str | os.PathLike, rank: int, world: int) -> Path:
    """``out.jsonl`` -> ``out.rank0-of-2.jsonl`` (the suffix stays last, so tools still know the format)."""
    output = Path(output)
    return output.with_name(f"{output.stem}.rank{rank}-of-{world}{output.suffix}")


def find_shards(output: str | os.PathLike) -> dict[int, dict[int, Path]]:
    """The shard files of ``output`` present next to it: ``{world: {rank: path}}``."""
    output = Path(output)
    pattern = re.compile(rf"^{re.escape(output.stem)}\.rank(\d+)-of-(\d+){re.escape(output.suffix)}$")
    found: dict[int, dict[int, Path]] = {}
    if output.parent.is_dir():
        for p in output.parent.iterdir():
            m = pattern.match(p.name)
            if m:
                found.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    return found


def item_sizes(keys: Sequence[RecordKey]) -> list[int]:
    """How many records each input item has: 1 per image record (``frame`` None); a video's records are a run of the
    same input with rising frame numbers."""
    sizes: list[int] = []
    prev: RecordKey | None = None
    for key in keys:
        if (key.frame is not None and prev is not None and prev.frame is not None and key.input == prev.input
                and key.frame > prev.frame):
            sizes[-1] += 1
        else:
            sizes.append(1)
        prev = key
    return sizes


def merge_shards(output: str | os.PathLike, *, world: int | None = None, keep: bool = False) -> WriteSummary:
    """Merge the finished shard files of ``output`` into ``output``, in the order of a single-process run.

    Args:
        output: the output the shards were made for (``out.jsonl`` for ``out.rank0-of-2.jsonl``, ...).
        world: the number of shards (default: the one present next to ``output``).
        keep: keep the shard files (default: remove them, and their state files, once ``output`` is written).

    Returns:
        The merged output's record and error counts (``merged`` = ``path`` = ``output``).

    Raises:
        FileNotFoundError: no shard file. ValueError: a shard is missing or unfinished, or the shards were made with
            different settings.
    """
    output = Path(output)
    found = find_shards(output)
    if world is None:
        if not found:
            raise FileNotFoundError(f"no shard files {output.stem}.rank*-of-*{output.suffix} next to {output}")
        if len(found) > 1:
            raise ValueError(f"shards of {output} for several world sizes ({', '.join(map(str, sorted(found)))}): "
                             "pass the number of shards")
        world = next(iter(found))
    paths = [shard_path(output, r, world) for r in range(world)]
    states = []
    for rank, path in enumerate(paths):
        state = read_state(path)
        if state is None:
            raise ValueError(f"cannot merge: shard {path} (or its state file) is missing")
        if not state.get("complete"):
            raise ValueError(f"cannot merge: shard {path} is not finished (resume rank {rank} with --resume)")
        if state.get("shard") != [rank, world]:
            raise ValueError(f"cannot merge: {path} says it is shard {state.get('shard')}, not {[rank, world]}")
        diff = settings_diff(states[0]["settings"], state["settings"]) if states else []
        if diff:
            raise ValueError(f"cannot merge: {path} was made with other settings than {paths[0]}: {'; '.join(diff)}")
        states.append(state)
    settings = states[0]["settings"]
    fmt, flat = settings["format"], settings["flat"]
    contents = [read_contents(p, fmt, flat=flat, complete=True) for p in paths]
    for path, state, cont in zip(paths, states, contents):
        torn = fmt != "parquet" and path.stat().st_size != cont.bounds[-1]
        if torn or (state.get("records") is not None and state["records"] != len(cont)):
            raise ValueError(f"cannot merge: {path} does not hold the {state.get('records')} whole records its state "
                             "file lists (changed since it was written?)")
    order = _interleave([item_sizes(c.keys) for c in contents], paths)
    if fmt == "parquet":
        _merge_parquet(output, contents, order, columns(settings["labels"], logits=settings["logits"]))
    else:
        _merge_bytes(output, paths, contents, order)
    keys = [contents[r].keys[k] for r, k0, k1 in order for k in range(k0, k1)]
    failed = [k for k in keys if k.error is not None]
    write_state(output, settings, shard=None, complete=True, records=len(keys), failed=len(failed),
                merged_from=[p.name for p in paths])
    if not keep:
        for path in paths:
            path.unlink(missing_ok=True)
            state_path(path).unlink(missing_ok=True)
            shutil.rmtree(parts_dir(path), ignore_errors=True)
    return WriteSummary(records=len(keys), failed=len(failed), first_error=failed[0].record() if failed else None,
                        path=output, merged=output)


def _interleave(sizes: list[list[int]], paths: list[Path]) -> list[tuple[int, int, int]]:
    """``(shard, first record, end record)`` per item, in global item order (item i is shard i % world's)."""
    counts = [len(s) for s in sizes]
    for rank, n in enumerate(counts):
        if n not in (counts[0], counts[0] - 1) or (rank and n > counts[rank - 1]):
            raise ValueError(f"cannot merge: the shards hold {counts} input items; shard i must hold the items i, "
                             f"i + {len(paths)}, ... of the same input list ({paths[rank]})")
    starts = [0] * len(sizes)
    order = []
    for j in range(counts[0]):
        for rank, shard_sizes in enumerate(sizes):
            if j < len(shard_sizes):
                order.append((rank, starts[rank], starts[rank] + shard_sizes[j]))
                starts[rank] += shard_sizes[j]
    return order


def _merge_bytes(output: Path, paths: list[Path], contents: list[Contents], order: list[tuple[int, int, int]]) -> None:
    from ferkit.checkpoint import atomic_path

    files = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed below
    try:
        with atomic_path(output) as tmp, open(tmp, "wb") as out:
            out.write(files[0].read(contents[0].bounds[0]))  # the CSV header (nothing for jsonl)
            for f, cont in zip(files, contents):
                f.seek(cont.bounds[0])
            for rank, k0, k1 in order:
                bounds = contents[rank].bounds
                out.write(files[rank].read(bounds[k1] - bounds[k0]))
            out.flush()
            os.fsync(out.fileno())
    finally:
        for f in files:
            f.close()


def _merge_parquet(output: Path, contents: list[Contents], order: list[tuple[int, int, int]],
                   cols: list[str]) -> None:
    import numpy as np

    from ferkit.checkpoint import atomic_path

    pa, pq = import_pyarrow()
    schema = parquet_schema(pa, cols)
    tables = [pq.read_table(part) for c in contents for part, _ in c.parts]
    whole = pa.concat_tables(tables) if tables else schema.empty_table()
    offsets = np.cumsum([0] + [c.bounds[-1] for c in contents])
    take = [np.arange(offsets[r] + contents[r].bounds[k0], offsets[r] + contents[r].bounds[k1]) for r, k0, k1 in order]
    merged = whole.take(pa.array(np.concatenate(take) if take else np.zeros(0, dtype=np.int64)))
    with atomic_path(output) as tmp:
        pq.write_table(merged, tmp, row_group_size=64 * 1024)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())


# ---- torchrun ----------------------------------------------------------------------------------------------------
class TorchrunGroup:
    """The process group of a ``torchrun`` launch (joined as a Gloo group at the start of a sharded run, or the one
    the caller initialised), so that rank 0 can merge once every rank has finished. ``active`` is False outside
    ``torchrun`` (then merge with :func:`merge_shards` / ``ferkit predict --merge``)."""

    def __init__(self, world: int):
        import torch.distributed as dist

        self.dist, self.created, self.active = dist, False, False
        if not dist.is_available():
            return
        if dist.is_initialized():
            self.active = dist.get_world_size() == world
        elif (all(os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "RANK"))
              and int(os.environ.get("WORLD_SIZE", "1")) == world):
            dist.init_process_group("gloo", timeout=MERGE_TIMEOUT)
            self.created = self.active = True

    def barrier(self) -> None:
        if not self.active:
            return
        if self.dist.get_backend() == "gloo":
            self.dist.monitored_barrier(timeout=MERGE_TIMEOUT, wait_all_ranks=True)
        else:
            self.dist.barrier()

    def close(self) -> None:
        if self.created and self.dist.is_initialized():
            self.dist.destroy_process_group()
        self.created = self.active = False
