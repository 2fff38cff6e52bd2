"""Corpus-scale overheads of ``ferkit predict`` (no model: what the machinery around the recognizer costs).

* listing: a synthetic tree of ``--files`` empty ``.png`` files (100 folders), time to the first input item of the lazy
  walk (:func:`ferkit.infer.files.iter_inputs`) against the full sorted list, and items/s of the whole walk;
* writing: ``--records`` synthetic records (one face, 8 labels) per format, records/s of the durable writer (one
  ``os.write`` per record, ``fsync`` every 8) against the old temporary-file writer (:class:`RecordWriter`);
* resume: records/s of reading a file back (:func:`ferkit.infer.durable.read_contents`);
* merge: records/s of :func:`ferkit.infer.merge_shards` over 4 shards.

For scale: the recognizer itself runs at 10-300 faces/s on a CPU, so any figure here above ~10,000/s is noise in a run.

    python benchmarks/corpus.py                        # 100,000 files, 20,000 records (about a minute)
    python benchmarks/corpus.py --files 20000 --records 5000 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import cpu_flags  # noqa: E402

from ferkit.infer.corpus import merge_shards, shard_path, write_state  # noqa: E402
from ferkit.infer.durable import DurableWriter, read_contents  # noqa: E402
from ferkit.infer.files import iter_inputs  # noqa: E402
from ferkit.infer.inputs import list_images  # noqa: E402
from ferkit.infer.records import FaceResult, Record  # noqa: E402
from ferkit.infer.writers import RecordWriter  # noqa: E402

LABELS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def make_tree(root: Path, n: int) -> Path:
    for i in range(n):
        folder = root / f"d{i % 100:03d}"
        if i < 100:
            folder.mkdir(parents=True)
        (folder / f"img{i:07d}.png").touch()
    return root


def records(n: int) -> list[Record]:
    out = []
    for i in range(n):
        p = [(i * 7 + k) % 11 + 1.0 for k in range(len(LABELS))]
        p = [v / sum(p) for v in p]
        top = max(range(len(p)), key=p.__getitem__)
        face = FaceResult(box=(1.5, 2.5, 90.25, 101.75), score=0.98, label=LABELS[top], label_score=p[top],
                          scores=dict(zip(LABELS, p)), landmarks=[[10.0 + k, 20.0 + k] for k in range(5)])
        out.append(Record(f"/data/corpus/d{i % 100:03d}/img{i:07d}.png", faces=[face]))
    return out


def listing(root: Path) -> dict[str, float]:
    t = time.perf_counter()
    next(iter_inputs([str(root)]))
    first = time.perf_counter() - t
    t = time.perf_counter()
    n = sum(1 for _ in iter_inputs([str(root)]))
    walk = time.perf_counter() - t
    t = time.perf_counter()
    list_images(root)
    full = time.perf_counter() - t
    return {"first item s": first, "walk items/s": n / walk, "full sorted list s": full}


def writing(folder: Path, recs: list[Record]) -> list[dict[str, object]]:
    rows = []
    for fmt in ("jsonl", "csv", "parquet"):
        try:
            path = folder / f"out.{fmt}"
            t = time.perf_counter()
            w = DurableWriter(path, fmt, LABELS, sync_every=8)
            for r in recs:
                w.write(r)
            w.finish()
            durable = len(recs) / (time.perf_counter() - t)
        except ImportError as e:
            rows.append({"format": fmt, "error": str(e)})
            continue
        old = None
        if fmt != "parquet":
            t = time.perf_counter()
            with RecordWriter(folder / f"old.{fmt}", fmt, LABELS) as rw:
                for r in recs:
                    rw.write(r)
            old = len(recs) / (time.perf_counter() - t)
        t = time.perf_counter()
        read = len(read_contents(path, fmt, complete=True))
        back = read / (time.perf_counter() - t)
        rows.append({"format": fmt, "durable records/s": durable, "temp-file writer records/s": old,
                     "read back records/s": back})
    return rows


def merging(folder: Path, recs: list[Record], world: int = 4) -> float:
    out = folder / "merged.jsonl"
    for rank in range(world):
        path = shard_path(out, rank, world)
        w = DurableWriter(path, "jsonl", LABELS, sync_every=64)
        mine = recs[rank::world]
        for r in mine:
            w.write(r)
        w.finish()
        write_state(path, {"format": "jsonl", "flat": False, "labels": list(LABELS), "logits": False},
                    shard=(rank, world), complete=True, records=len(mine), failed=0)
    t = time.perf_counter()
    summary = merge_shards(out)
    return summary.records / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result = {"cpu": cpu_flags(), "files": args.files, "records": args.records,
                  "listing": listing(make_tree(tmp / "tree", args.files))}
        recs = records(args.records)
        result["writing"] = writing(tmp, recs)
        result["merge records/s"] = merging(tmp, recs)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{result['cpu']}; {args.files} files, {args.records} records")
    lst = result["listing"]
    print(f"listing: first item after {lst['first item s'] * 1000:.1f} ms (lazy walk), whole walk "
          f"{lst['walk items/s']:,.0f} items/s; full sorted list {lst['full sorted list s']:.2f} s")
    print(f"{'format':8} {'durable rec/s':>14} {'temp-file rec/s':>16} {'read back rec/s':>16}")
    for row in result["writing"]:
        if "error" in row:
            print(f"{row['format']:8} {row['error']}")
            continue
        old = row["temp-file writer records/s"]
        print(f"{row['format']:8} {row['durable records/s']:>14,.0f} {'-' if old is None else f'{old:,.0f}':>16} "
              f"{row['read back records/s']:>16,.0f}")
    print(f"merge of 4 jsonl shards: {result['merge records/s']:,.0f} records/s")


if __name__ == "__main__":
    main()
