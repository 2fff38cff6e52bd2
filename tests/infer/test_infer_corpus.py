"""Corpus scale (``write_predictions`` / ``ferkit predict``): durable output files, resume after an interruption (also
with a torn last line), refusals, shards and their merge, lazy folder listing, ``--from-list``, parquet."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferkit.cli.main import main
from ferkit.infer import merge_shards, predict_paths, write_predictions
from ferkit.infer.corpus import item_sizes, read_state, shard_path, state_path
from ferkit.infer.durable import RecordKey, read_contents
from ferkit.infer.files import iter_inputs
from ferkit.infer.inputs import list_images
from ferkit.infer.writers import write_records
from tests.infer._helpers import TINY, StubDetector

cv2 = pytest.importorskip("cv2")


def _images(folder, n, size=24, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        sub = folder / ("a" if i % 3 == 0 else "b")
        sub.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(sub / f"img{i:03d}.png")
    return folder


def _video(path, n=7, size=32):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (size, size))
    for i in range(n):
        w.write(np.full((size, size, 3), 20 * i % 256, np.uint8))
    w.release()
    return path


@pytest.fixture
def corpus(tmp_path):
    """A folder of 10 images in two sub-folders with a video inside, a broken image, an empty folder and another
    video: images, whole videos and error records."""
    root = _images(tmp_path / "corpus", 10)
    _video(root / "b" / "clip.avi", n=7)
    (root / "b" / "broken.png").write_text("not an image")
    (tmp_path / "empty").mkdir()
    return [str(root), str(tmp_path / "empty"), str(_video(tmp_path / "other.avi", n=5))]


@pytest.fixture
def rec(make_rec):
    """The tiny model with two faces per image (several flat rows per record)."""
    return make_rec(detector=StubDetector((0, 0, 16, 16), (6, 6, 22, 22)), batch_size=3)


class Interrupted(Exception):
    pass


class Interrupting:
    """The recognizer, failing after ``after`` records (a crash in the middle of a run)."""

    def __init__(self, rec, after: int):
        self.rec, self.left = rec, after

    def __getattr__(self, name):
        return getattr(self.rec, name)

    def _count(self, items):
        for item in items:
            if self.left == 0:
                raise Interrupted
            self.left -= 1
            yield item

    def predict_frames(self, x, **kw):
        return self._count(self.rec.predict_frames(x, **kw))

    def predict_video(self, source, **kw):
        return self._count(self.rec.predict_video(source, **kw))


def _read(path, fmt):
    if fmt == "parquet":
        return pytest.importorskip("pyarrow.parquet").read_table(path).to_pylist()
    return path.read_bytes()


FORMATS = [("jsonl", False), ("jsonl", True), ("csv", False), ("parquet", False)]


@pytest.mark.required_in_ci
@pytest.mark.parametrize("fmt,flat", FORMATS, ids=["jsonl", "jsonl-flat", "csv", "parquet"])
def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, rec, corpus, fmt, flat):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    ref = tmp_path / f"ref.{fmt}"
    full = write_predictions(rec, corpus, ref, fmt=fmt, flat=flat)
    assert full.records == 10 + 1 + 1 + 7 + 5 and full.failed == 2  # images, broken, empty folder, two videos
    assert read_state(ref)["complete"] and read_state(ref)["records"] == full.records
    # before the first record (jsonl), among images, inside both videos
    for after in (0, 4, 13, 22) if fmt == "jsonl" and not flat else (4, 13, 22):
        out = tmp_path / f"out{after}.{fmt}"
        with pytest.raises(Interrupted):
            write_predictions(Interrupting(rec, after), corpus, out, fmt=fmt, flat=flat, sync_every=2)
        state = read_state(out)
        assert state is not None and not state["complete"]
        with pytest.raises(ValueError, match="interrupted run.*--resume"):
            write_predictions(rec, corpus, out, fmt=fmt, flat=flat)  # a forgotten --resume loses nothing
        summary = write_predictions(rec, corpus, out, fmt=fmt, flat=flat, resume=True)
        assert _read(out, fmt) == _read(ref, fmt), after
        assert (summary.records, summary.failed) == (full.records, full.failed)
        assert summary.resumed <= after and read_state(out)["complete"]
        assert not (out.parent / f"{out.name}.parts").exists()


def test_torn_last_line_is_cut_on_resume(tmp_path, rec, corpus):
    ref = tmp_path / "ref.jsonl"
    write_predictions(rec, corpus, ref)
    lines = ref.read_bytes().splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    with pytest.raises(Interrupted):
        write_predictions(Interrupting(rec, 6), corpus, out)
    assert out.read_bytes() == b"".join(lines[:6])
    with open(out, "ab") as f:  # a record cut in the middle of its line, as by kill -9 during a write
        f.write(lines[6][:40])
    assert len(read_contents(out, "jsonl")) == 6
    summary = write_predictions(rec, corpus, out, resume=True)
    assert out.read_bytes() == ref.read_bytes() and summary.resumed == 6
    # garbage after good lines (e.g. zeros after a power cut) is cut too; resuming a finished file does nothing
    with pytest.raises(Interrupted):
        write_predictions(Interrupting(rec, 3), corpus, out, overwrite=True)
    with open(out, "ab") as f:
        f.write(b"\0" * 50 + b"\n" + lines[5])
    write_predictions(rec, corpus, out, resume=True)
    assert out.read_bytes() == ref.read_bytes()
    before = state_path(out).read_bytes()
    assert write_predictions(rec, corpus, out, resume=True).resumed == 24
    assert state_path(out).read_bytes() == before


def test_flat_rows_cut_inside_a_record_are_redone(tmp_path, rec, corpus):
    ref = tmp_path / "ref.csv"
    write_predictions(rec, corpus, ref, fmt="csv")
    rows = ref.read_bytes().split(b"\r\n")
    out = tmp_path / "out.csv"
    with pytest.raises(Interrupted):
        write_predictions(Interrupting(rec, 3), corpus, out, fmt="csv")
    with open(out, "ab") as f:
        f.write(rows[7] + b"\r\n")  # the first of the two rows of record 4: it is dropped and computed again
    contents = read_contents(out, "csv")
    assert len(contents) == 3 and contents.bounds[-1] < out.stat().st_size
    write_predictions(rec, corpus, out, fmt="csv", resume=True)
    assert out.read_bytes() == ref.read_bytes()


def test_resume_refuses_other_settings_and_other_inputs(tmp_path, rec, corpus, make_rec):
    out = tmp_path / "out.jsonl"
    with pytest.raises(Interrupted):
        write_predictions(Interrupting(rec, 5), corpus, out)
    with pytest.raises(ValueError, match=r"other settings \(every: 1 -> 2\)"):
        write_predictions(rec, corpus, out, resume=True, every=2)
    with pytest.raises(ValueError, match="other settings.*detector"):
        write_predictions(make_rec(detector="none"), corpus, out, resume=True)
    with pytest.raises(ValueError, match="other settings.*flat"):
        write_predictions(rec, corpus, out, resume=True, flat=True)
    with pytest.raises(ValueError, match="needs an output file"):
        write_predictions(rec, corpus, "-", resume=True)
    # a file of the first records renamed: the output no longer matches the inputs
    first = list_images(corpus[0])[0]
    first.rename(first.with_name("zzz.png"))
    with pytest.raises(ValueError, match="inputs changed"):
        write_predictions(rec, corpus, out, resume=True)
    summary = write_predictions(rec, corpus, out, overwrite=True)
    assert summary.records == 24 and summary.resumed == 0
    # a finished output (or one without a state file) is replaced without --overwrite, as before
    assert write_predictions(rec, corpus[:1], out).records == 18
    state_path(out).unlink()
    with pytest.raises(ValueError, match="no state file"):
        write_predictions(rec, corpus, out, resume=True)
    assert write_predictions(rec, corpus, out).records == 24


def test_shards_merge_into_the_single_process_file(tmp_path, make_rec, corpus):
    # batch size 1: a face's numbers do not depend on the other images of its batch (which differ between shards)
    rec = make_rec(detector=StubDetector((0, 0, 16, 16), (6, 6, 22, 22)), batch_size=1)
    for fmt, flat in FORMATS:
        if fmt == "parquet" and pytest.importorskip("pyarrow") is None:
            continue
        ref = tmp_path / f"ref.{fmt}"
        write_predictions(rec, corpus, ref, fmt=fmt, flat=flat)
        out = tmp_path / f"out.{fmt}"
        for rank in range(3):
            summary = write_predictions(rec, corpus, out, fmt=fmt, flat=flat, shard=f"{rank}/3")
            assert summary.path == shard_path(out, rank, 3) and summary.merged is None
        with pytest.raises(Interrupted):  # rank 1 crashes, then resumes
            write_predictions(Interrupting(rec, 3), corpus, out, fmt=fmt, flat=flat, shard=(1, 3), overwrite=True)
        with pytest.raises(ValueError, match="not finished"):
            merge_shards(out)
        write_predictions(rec, corpus, out, fmt=fmt, flat=flat, shard=(1, 3), resume=True)
        summary = merge_shards(out)
        assert _read(out, fmt) == _read(ref, fmt), fmt
        assert (summary.records, summary.failed) == (24, 2) and not list(tmp_path.glob("out.rank*"))
        assert read_state(out)["complete"] and read_state(out)["settings"] == read_state(ref)["settings"]
        # resuming a shard of a merged run does nothing
        assert write_predictions(rec, corpus, out, fmt=fmt, flat=flat, shard=(2, 3), resume=True).records == 24


def test_shards_with_larger_batches_differ_only_in_the_last_bits(tmp_path, rec, corpus):
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    write_predictions(rec, corpus, ref)
    for rank in range(2):
        write_predictions(rec, corpus, out, shard=(rank, 2))
    merge_shards(out)
    want, got = ([json.loads(line) for line in f.read_text().splitlines()] for f in (ref, out))
    assert [(r["input"], r.get("frame"), r["error"]) for r in got] == [(r["input"], r.get("frame"), r["error"])
                                                                       for r in want]
    for a, b in zip(got, want):
        assert [f["label"] for f in a["faces"]] == [f["label"] for f in b["faces"]]
        for fa, fb in zip(a["faces"], b["faces"]):
            np.testing.assert_allclose(list(fa["scores"].values()), list(fb["scores"].values()), atol=1e-6)


def test_predict_paths_shards_partition_the_items(rec, corpus):
    everything = [(r.input, r.frame) for r in predict_paths(rec, corpus)]
    shards = [[(r.input, r.frame) for r in predict_paths(rec, corpus, shard=(k, 2))] for k in range(2)]
    assert sorted(everything, key=str) == sorted(shards[0] + shards[1], key=str)
    assert item_sizes([RecordKey(i, f) for i, f in everything]) == [1] * 11 + [7, 1, 5]


def test_merge_refuses_mixed_settings(tmp_path, rec, corpus):
    out = tmp_path / "out.jsonl"
    write_predictions(rec, corpus, out, shard=(0, 2))
    with pytest.raises(ValueError, match="missing"):
        merge_shards(out)
    write_predictions(rec, corpus, out, shard=(1, 2), every=2)
    with pytest.raises(ValueError, match="other settings.*every"):
        merge_shards(out)
    with pytest.raises(FileNotFoundError):
        merge_shards(tmp_path / "nothing.jsonl")


def test_lazy_folder_listing_is_sorted_like_the_full_list(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    for rel in ["a/b.jpg", "a/b/c.jpg", "a.b/x.jpg", "a b.jpg", "A/z.png", "a-/q.jpg", "a/b-c.jpg", "a/b0/d.jpg",
                ".hidden/x.jpg", "a/.h.jpg", "z.txt", "a/b/c/d/e.JPG", "ab.jpg", "a/Z.jpg"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    (root / "link").symlink_to(root / "a")  # not followed, like os.walk

    def walked(top):  # the eager listing this replaced: os.walk, then sorted
        out = []
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            out += [Path(folder) / f for f in files if not f.startswith(".") and f.lower().endswith((".jpg", ".png"))]
        return sorted(out)

    got = list_images(root)
    assert got == walked(root) and len(got) == 11 and not any("hidden" in str(p) or ".h" in p.name for p in got)
    monkeypatch.chdir(root)
    for top in (".", "./a", "a/"):
        items = list(iter_inputs([top]))
        assert [Path(i.path) for i in items] == walked(top) and all(i.kind == "image" for i in items)
        assert [i.rel for i in items] == [str(Path(Path(top).name) / p.relative_to(top)) for p in walked(top)]


def test_from_list_and_the_cli(tmp_path, capsys, tiny_ckpt, corpus):
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(corpus[1:]) + "\n\n")
    out = tmp_path / "out.jsonl"
    argv = ["predict", corpus[0], "--from-list", str(listing), "--model", TINY, "--checkpoint", str(tiny_ckpt),
            "--detector", "none", "-o", str(out)]
    assert main(argv) == 1  # the broken image and the empty folder
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 24 and records[-1]["input"] == corpus[2]
    assert main([*argv, "--resume"]) == 1 and "already held 24 records" in capsys.readouterr().err
    assert main(["predict", "--merge", str(out), corpus[0]]) == 2
    assert "takes no INPUT" in capsys.readouterr().err
    assert main(["predict", "--model", TINY]) == 2 and "at least one INPUT" in capsys.readouterr().err
    for shard in ("0/2", "1/2"):
        assert main([*argv[:-1], str(tmp_path / "s.jsonl"), "--shard", shard]) in (0, 1)  # 1: a failed input
        assert "ferkit predict --merge" in capsys.readouterr().err
    assert main(["predict", "--merge", str(tmp_path / "s.jsonl")]) == 1
    assert (tmp_path / "s.jsonl").read_bytes() == out.read_bytes()


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, rec, corpus, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"pip install 'ferkit\[parquet\]'"):
        write_predictions(rec, corpus, tmp_path / "out.parquet", fmt="parquet")
    with pytest.raises(ValueError, match="parquet needs an output file"):
        write_predictions(rec, corpus, "-", fmt="parquet")


def test_streams_and_json_files_are_written_as_before(tmp_path, rec, corpus):
    buf = io.StringIO()
    write_predictions(rec, corpus, buf)
    out = tmp_path / "out.jsonl"
    write_predictions(rec, corpus, out)
    assert out.read_text() == buf.getvalue()
    csv_buf = io.StringIO()
    write_records(predict_paths(rec, corpus), csv_buf, "csv", rec.label_names)
    write_predictions(rec, corpus, tmp_path / "out.csv", fmt="csv")
    assert (tmp_path / "out.csv").read_bytes() == csv_buf.getvalue().encode()
    write_predictions(rec, corpus, tmp_path / "out.json", fmt="json")
    assert len(json.loads((tmp_path / "out.json").read_text())) == 24
    assert not state_path(tmp_path / "out.json").exists()


def test_out_dir_outputs_resume_together(tmp_path, rec, corpus):
    ref_dir, res = tmp_path / "ref", tmp_path / "res"
    write_predictions(rec, corpus, tmp_path / "ref.jsonl", out_dir=ref_dir)
    out = tmp_path / "out.jsonl"
    with pytest.raises(Interrupted):
        write_predictions(Interrupting(rec, 14), corpus, out, out_dir=res)  # inside the first video
    (res / "predictions.jsonl").write_bytes(b"".join((res / "predictions.jsonl").read_bytes().splitlines(True)[:9]))
    summary = write_predictions(rec, corpus, out, out_dir=res, resume=True)
    assert summary.resumed == 9  # the shorter of the two outputs
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    assert (res / "predictions.jsonl").read_bytes() == (ref_dir / "predictions.jsonl").read_bytes()
    files = sorted(str(p.relative_to(res)) for p in res.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(ref_dir)) for p in ref_dir.rglob("*") if p.is_file())
    assert "corpus/a/img000.png" in files and "clip_annotated.avi" in files
    buf = io.StringIO()  # records to a stream and, durably, to out_dir
    write_predictions(rec, corpus, buf, out_dir=tmp_path / "s")
    assert buf.getvalue().encode() == (tmp_path / "s" / "predictions.jsonl").read_bytes() == out.read_bytes()
    with pytest.raises(ValueError, match="needs an output file"):
        write_predictions(rec, corpus, buf, out_dir=tmp_path / "s", resume=True)


def test_shard_specs(monkeypatch, tmp_path):
    from ferkit.infer.corpus import parse_shard

    assert parse_shard("1/4") == (1, 4) and parse_shard((0, 2)) == (0, 2) and parse_shard("0/1") is None
    assert parse_shard(None) is None and parse_shard("env") is None  # not under torchrun
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert parse_shard("env") == (3, 4)
    for bad in ("4/4", "1:4", "-1/2", "0/0"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)
    assert shard_path(tmp_path / "out.jsonl", 3, 4) == tmp_path / "out.rank3-of-4.jsonl"


def test_resume_inside_a_tracked_video(tmp_path, make_rec, corpus):
    """Faces tracked across frames (track_id column): a video cut in the middle is run again from its first frame, so
    the track ids after the resume are those of an uninterrupted run."""
    rec = make_rec(detector=StubDetector((0, 0, 16, 16), (6, 6, 22, 22)), batch_size=3, detect_every=2)
    ref, out = tmp_path / "ref.csv", tmp_path / "out.csv"
    write_predictions(rec, corpus, ref, fmt="csv")
    assert b"track_id" in ref.read_bytes().splitlines()[0]
    with pytest.raises(Interrupted):
        write_predictions(Interrupting(rec, 15), corpus, out, fmt="csv")
    write_predictions(rec, corpus, out, fmt="csv", resume=True)
    assert out.read_bytes() == ref.read_bytes()
