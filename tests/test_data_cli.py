"""``ferkit data list`` / ``ferkit data check`` end to end, on synthetic layouts and on the real FER2013 copy."""

import json
import shutil
from pathlib import Path

import pytest

from ferkit.cli.main import main
from ferkit.data import build_dataset, synthetic
from tests._data_helpers import FERPLUS_EXPECTED, FERPLUS_VOTES

RAF = {"train": {"surprise": 2, "fear": 1, "disgust": 1, "happiness": 3, "sadness": 1, "anger": 1, "neutral": 2},
       "test": {"surprise": 1, "fear": 1, "disgust": 1, "happiness": 1, "sadness": 1, "anger": 1, "neutral": 1}}

# Published per-class counts of the shared FER2013 copy (its README).
FER2013_README = {
    "train": {"anger": 3995, "disgust": 436, "fear": 4097, "happiness": 7215, "neutral": 4965, "sadness": 4830,
              "surprise": 3171},
    "val": {"anger": 467, "disgust": 56, "fear": 496, "happiness": 895, "neutral": 607, "sadness": 653,
            "surprise": 415},
}


def run_json(capsys, *argv):
    code = main(["data", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_list(capsys):
    code, rows = run_json(capsys, "list")
    assert code == 0
    by_name = {r["name"]: r for r in rows}
    assert by_name["rafdb"]["splits"] == ["train", "test"] and by_name["rafdb"]["aliases"] == {"val": "test"}
    assert "label_rule" in by_name["ferplus"]["options"]


def test_check_valid_rafdb(tmp_path, capsys):
    synthetic.write_rafdb(tmp_path, RAF)
    code, report = run_json(capsys, "check", "rafdb", str(tmp_path), "--workers", "0")
    assert code == 0 and report["ok"]
    assert report["splits"] == RAF
    assert report["label_names"] == ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]
    assert report["official_sizes"] == {"train": 12271, "test": 3068}
    # flat synthetic images of one class are pixel-identical: every class with >1 image forms one group
    assert report["duplicate_groups"] == 7 and report["duplicate_label_conflicts"] == 0
    assert report["duplicate_cross_split"] == 7


def test_check_reports_corrupt_missing_and_conflicting_duplicates(tmp_path, capsys):
    base = synthetic.write_rafdb(tmp_path, RAF)
    ds = build_dataset("rafdb", base, "train")
    corrupt, missing = ds.samples[0][0], ds.samples[1][0]
    Path(corrupt).write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "gone").mkdir()
    shutil.move(missing, tmp_path / "gone")
    code, report = run_json(capsys, "check", "rafdb", str(base), "--split", "train", "--workers", "2")
    assert code == 1 and not report["ok"]
    assert [u["file"] for u in report["unreadable"]] == [corrupt]
    assert report["missing"] == [missing]
    assert list(report["splits"]) == ["train"]
    code = main(["data", "check", "rafdb", str(base), "--split", "train", "--workers", "0"])
    text = capsys.readouterr().out
    assert code == 1 and "PROBLEMS FOUND" in text and corrupt in text


def test_duplicate_with_conflicting_label(tmp_path, capsys):
    synthetic.write_class_folders(tmp_path, {"train": {"happiness": 1, "sadness": 1}})
    happy = next((tmp_path / "train" / "happiness").iterdir())
    shutil.copy(happy, tmp_path / "train" / "sadness" / "copy.jpg")
    code, report = run_json(capsys, "check", "folder", str(tmp_path), "--workers", "0")
    assert code == 0  # duplicates are reported, not failed
    assert report["duplicate_label_conflicts"] == 1
    assert sorted(report["duplicates"][0]["labels"]) == ["happiness", "sadness"]
    assert report["absent_splits"].keys() == {"val", "test"}


def test_wrong_layout_names_the_expected_one(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    code = main(["data", "check", "caer_s", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 1 and "no train/ folder" in text and "expected layout:" in text and "Anger" in text
    code, report = run_json(capsys, "check", "affectnet8", str(tmp_path))
    assert code == 1 and "training.csv" in report["error"] and "Manually_Annotated_Images" in report["expected_layout"]


def test_check_ferplus_majority_option(tmp_path, capsys):
    synthetic.write_ferplus(tmp_path, FERPLUS_VOTES)
    code, report = run_json(capsys, "check", "ferplus", str(tmp_path), "-o", "label_rule=majority", "--workers", "0")
    assert code == 0
    assert report["totals"] == {"train": len(FERPLUS_EXPECTED["majority"]["train"]), "test": 1}
    assert "val" in report["absent_splits"]  # no PublicTest row survives the majority rule
    assert report["dropped"]["train"] == {"no majority": 2, "won by unknown/NF": 1, "no image name": 1}


def test_unknown_split_and_name(capsys):
    assert main(["data", "check", "rafdb", ".", "--split", "dev"]) == 2
    assert "valid splits" in capsys.readouterr().err
    assert main(["data", "check", "nope", "."]) == 2
    assert main(["data", "check", "ferplus", ".", "-o", "rule=majority"]) == 2
    assert "accepted: label_rule" in capsys.readouterr().err


@pytest.mark.data
def test_real_fer2013_counts_and_val_check(fer2013_root, capsys):
    code, report = run_json(capsys, "check", "fer2013", str(fer2013_root), "--no-decode")
    assert code == 0
    assert {s: dict(sorted(c.items())) for s, c in report["splits"].items()} == FER2013_README
    assert report["label_names"] == ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
    code, report = run_json(capsys, "check", "fer2013", str(fer2013_root), "--split", "val", "--workers", "2")
    assert code == 0 and report["num_unreadable"] == 0
    assert report["duplicate_groups"] > 0  # the README: pixel-identical images exist


@pytest.mark.data
def test_real_fer2013_loader(fer2013_root):
    from ferkit.models.transforms import build_transform

    ds = build_dataset("fer2013", fer2013_root, "val", transform=build_transform("poster_v2", False, input_size=64))
    assert len(ds) == 3589
    x, y = ds[0]
    assert x.shape == (3, 64, 64) and ds.label_names[y] == "anger"  # val/anger sorts first
    clean = build_dataset("fer2013", fer2013_root, "val", clean_only=True)
    assert len(clean) == 3589 - 338  # the README: 338 PublicTest images are marked clean = 0


def test_check_csv_without_split_column(tmp_path, capsys):
    synthetic.write_csv_table(tmp_path, {"train": {"fear": 2, "anger": 1}})
    table = tmp_path / "labels.csv"
    table.write_text("\n".join(line.rsplit(",", 1)[0] for line in table.read_text().splitlines()) + "\n")
    code, report = run_json(capsys, "check", "csv", str(table), "--workers", "0")
    assert code == 0 and report["totals"] == {"train": 3} and set(report["absent_splits"]) == {"val", "test"}
