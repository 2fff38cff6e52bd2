"""Every loader on a small synthetic copy of its real layout (real file formats).

Synthetic images are filled with a grey level that encodes their class (``synthetic.class_value``), so each test
checks that the target a loader returns names the class the *image* was written for.
"""

import csv
import logging
from pathlib import Path

import pytest
from PIL import Image

from ferkit import labels as L
from ferkit.data import build_dataset, list_datasets, synthetic
from ferkit.errors import DatasetError
from tests._data_helpers import FERPLUS_EXPECTED, FERPLUS_VOTES

SEVEN = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")


def counts(*ns, names=SEVEN):
    return dict(zip(names, ns))


def assert_images_match_labels(ds):
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.mode == "RGB"
        assert synthetic.class_of_image(image) == ds.label_names[target], ds.samples[i]


# -- registry -------------------------------------------------------------------------------------------------------
def test_registered_names():
    assert set(list_datasets()) >= {"rafdb", "affectnet7", "affectnet8", "ferplus", "caer_s", "fer2013", "folder",
                                    "csv"}


def test_unknown_name_split_option_root(tmp_path):
    with pytest.raises(DatasetError, match="registered: .*rafdb"):
        build_dataset("rafdbx", tmp_path, "train")
    with pytest.raises(DatasetError, match="valid splits: train, test, val"):
        build_dataset("rafdb", tmp_path, "dev")
    with pytest.raises(DatasetError, match="unknown option.*accepted: images, layout"):
        build_dataset("rafdb", tmp_path, "train", colour=True)
    with pytest.raises(DatasetError, match="does not exist"):
        build_dataset("rafdb", tmp_path / "nope", "train")


# -- RAF-DB ---------------------------------------------------------------------------------------------------------
RAF = {"train": counts(3, 4, 2, 3, 1, 2, 1), "test": counts(1, 2, 1, 1, 1, 1, 1)}


def test_rafdb_official(tmp_path):
    base = synthetic.write_rafdb(tmp_path, RAF)
    ds = build_dataset("rafdb", tmp_path, "train")  # the parent of basic/ works too
    assert ds.label_names == ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
    assert ds.class_counts() == {n: RAF["train"][n] for n in ds.label_names}
    assert_images_match_labels(ds)
    test = build_dataset("raf-db", base, "val")
    assert test.split == "test" and len(test) == sum(RAF["test"].values())
    assert Image.open(ds.samples[0][0]).size == (100, 100)
    # the list file holds 1-based RAF codes: the first train line is written for its first image
    name, code = (base / "EmoLabel/list_patition_label.txt").read_text().split("\n")[0].split()
    first = [t for s, t in ds.samples if s.endswith(name.replace(".jpg", "_aligned.jpg"))][0]
    assert first == int(code) - 1


def test_rafdb_class_folders_1_to_7(tmp_path):
    folders = {n: str(L.to_code("rafdb", n)) for n in SEVEN}
    synthetic.write_class_folders(tmp_path, {"train": RAF["train"], "valid": RAF["test"]}, folder_names=folders)
    ds = build_dataset("rafdb", tmp_path, "test")
    assert ds.info["layout"] == "folder" and ds.label_names == L.DATASET_ORDERS["rafdb"]
    assert ds.class_counts() == {n: RAF["test"][n] for n in ds.label_names}
    assert_images_match_labels(ds)


def test_rafdb_bad_label_line(tmp_path, caplog):
    base = synthetic.write_rafdb(tmp_path, RAF)
    label_file = base / "EmoLabel/list_patition_label.txt"
    label_file.write_text(label_file.read_text() + "train_09999.jpg 9\n")
    line = sum(sum(c.values()) for c in RAF.values()) + 1
    with pytest.raises(DatasetError, match=rf"list_patition_label.txt:line {line}: rafdb label '9' is out of range"):
        build_dataset("rafdb", base, "train")
    with caplog.at_level(logging.WARNING):
        ds = build_dataset("rafdb", base, "train", on_error="skip")
    assert len(ds) == sum(RAF["train"].values()) and f"line {line}" in caplog.text


def test_rafdb_missing_file(tmp_path):
    base = synthetic.write_rafdb(tmp_path, RAF)
    victim = sorted((base / "Image/aligned").glob("train_*"))[2]
    victim.unlink()
    with pytest.raises(DatasetError, match=rf"1 listed image file\(s\) are missing, e.g.\n  {victim}"):
        build_dataset("rafdb", base, "train")
    ds = build_dataset("rafdb", base, "train", on_error="skip")
    assert len(ds) == sum(RAF["train"].values()) - 1 and ds.info["missing"] == [str(victim)]
    assert_images_match_labels(ds)


# -- bad images at read time ----------------------------------------------------------------------------------------
def _corrupt(tmp_path):
    base = synthetic.write_rafdb(tmp_path, RAF)
    ds = build_dataset("rafdb", base, "train")
    bad = 3
    path = ds.samples[bad][0]
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 3])  # truncated JPEG
    return base, bad, path


def test_corrupt_image_raises_naming_file(tmp_path):
    base, bad, path = _corrupt(tmp_path)
    ds = build_dataset("rafdb", base, "train")
    with pytest.raises(DatasetError, match=f"rafdb/train sample {bad}: .*{path}"):
        ds[bad]


def test_corrupt_image_skip_uses_next_sample_and_its_label(tmp_path, caplog):
    base, bad, path = _corrupt(tmp_path)
    ds = build_dataset("rafdb", base, "train", on_error="skip")
    with caplog.at_level(logging.WARNING):
        image, target = ds[bad]
        ds[bad]
    assert target == ds.targets[bad + 1]
    assert synthetic.class_of_image(image) == ds.label_names[target]
    assert caplog.text.count(path) == 1  # logged once


def test_dataloader_workers_error_is_readable(tmp_path):
    torch_data = pytest.importorskip("torch.utils.data")
    base, bad, path = _corrupt(tmp_path)
    from ferkit.models.transforms import build_transform

    tf = build_transform("poster_v2", train=False, input_size=32)
    ds = build_dataset("rafdb", base, "train", transform=tf)
    error = None
    try:
        list(torch_data.DataLoader(ds, batch_size=4, num_workers=2))
    except DatasetError as e:  # the worker's error, re-raised in the main process with its message
        e.__traceback__ = None  # let the loader shut its workers down now (its frames are in the traceback)
        error = e
    assert error is not None and path in str(error) and "cannot decode image" in str(error)
    skipping = build_dataset("rafdb", base, "train", transform=tf, on_error="skip")
    batches = list(torch_data.DataLoader(skipping, batch_size=4, num_workers=2))
    assert sum(len(y) for _, y in batches) == len(skipping)


# -- AffectNet ------------------------------------------------------------------------------------------------------
AFF = {"train": {"neutral": 2, "happiness": 3, "sadness": 1, "surprise": 1, "fear": 1, "disgust": 1, "anger": 2,
                 "contempt": 2, 8: 1, 9: 1, 10: 1},
       "val": {"neutral": 1, "happiness": 1, "sadness": 1, "surprise": 1, "fear": 1, "disgust": 1, "anger": 1,
               "contempt": 1}}


def test_affectnet8_csv_crops_face_box(tmp_path):
    synthetic.write_affectnet(tmp_path, AFF)
    ds = build_dataset("affectnet8", tmp_path, "train")
    assert ds.label_names == L.DATASET_ORDERS["affectnet8"]
    assert ds.class_counts() == {n: AFF["train"][n] for n in ds.label_names}
    assert ds.info["dropped"] == {"8 none": 1, "9 uncertain": 1, "10 no-face": 1}
    assert ds[0][0].size == (40, 44)  # the box, not the 64x64 canvas
    assert_images_match_labels(ds)
    whole = build_dataset("affectnet8", tmp_path, "train", crop=False)
    assert whole[0][0].size == (64, 64)


def test_affectnet7_drops_contempt_and_val_is_test(tmp_path):
    synthetic.write_affectnet(tmp_path, AFF)  # validation.csv is written without a header line
    ds = build_dataset("affectnet7", tmp_path, "test")
    assert ds.split == "val" and "contempt" not in ds.label_names
    assert len(ds) == 7 and ds.info["dropped"] == {"7 contempt": 1}
    assert_images_match_labels(ds)


def test_affectnet_bad_row(tmp_path):
    synthetic.write_affectnet(tmp_path, AFF)
    with open(tmp_path / "training.csv", "a", newline="") as f:
        csv.writer(f).writerow(["100/x.jpg", 1, 2, 0, 10, "", 3, 0, 0])
    line = sum(AFF["train"].values()) + 2  # header + rows + the new row
    with pytest.raises(DatasetError, match=rf"training.csv:line {line}: face box \(1, 2, 0, 10\) has no area"):
        build_dataset("affectnet8", tmp_path, "train")


def test_affectnet_class_folders(tmp_path):
    per = {"train": {"neutral": 1, "happiness": 2, "contempt": 1, "anger": 1}}
    synthetic.write_class_folders(tmp_path, per, folder_names={n: str(L.to_code("affectnet8", n)) for n in SEVEN +
                                                               ("contempt",)})
    (tmp_path / "train" / "9").mkdir()
    ds7 = build_dataset("affectnet7", tmp_path, "train")
    assert ds7.class_counts()["happiness"] == 2 and len(ds7) == 4
    assert_images_match_labels(ds7)
    assert len(build_dataset("affectnet8", tmp_path, "train")) == 5


# -- FER2013 --------------------------------------------------------------------------------------------------------
FER = {"train": counts(2, 3, 1, 1, 2, 1, 1), "val": counts(1, 1, 1, 1, 1, 1, 1), "test": counts(1, 0, 0, 1, 1, 1, 1)}


def test_fer2013_csv(tmp_path):
    path = synthetic.write_fer2013_csv(tmp_path / "fer2013.csv", FER)
    for split in ("train", "val", "test"):
        ds = build_dataset("fer2013", tmp_path, split)
        assert ds.label_names == ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
        assert ds.class_counts() == {n: FER[split][n] for n in ds.label_names}
        assert_images_match_labels(ds)
    assert build_dataset("fer2013", path, "val")[0][0].size == (48, 48)  # the CSV file itself as root


def test_fer2013_csv_bad_pixels(tmp_path):
    path = synthetic.write_fer2013_csv(tmp_path / "fer2013.csv", FER)
    with open(path, "a", newline="") as f:
        csv.writer(f).writerow([3, "1 2 3", "Training"])
    line = sum(sum(c.values()) for c in FER.values()) + 2
    with pytest.raises(DatasetError, match=f"fer2013.csv:line {line}: 3 pixel values do not form a square"):
        build_dataset("fer2013", tmp_path, "train")
    ds = build_dataset("fer2013", tmp_path, "train", on_error="skip")
    assert len(ds) == 11 and len(ds.info["invalid_rows"]) == 1


def test_fer2013_folder_aliases_and_codes(tmp_path):
    spelled = {"anger": "angry", "happiness": "Happy", "sadness": "sad", "neutral": "6"}
    synthetic.write_class_folders(tmp_path, {"train": FER["train"], "PublicTest": FER["val"]}, folder_names=spelled)
    ds = build_dataset("fer2013", tmp_path, "val")
    assert ds.class_counts() == {n: FER["val"][n] for n in ds.label_names}
    assert_images_match_labels(ds)


# -- FERPlus (vote rows and expected labels: tests/_data_helpers.py) --------------------------------------------


@pytest.mark.parametrize("rule", ["argmax", "majority"])
def test_ferplus_label_rules(tmp_path, rule):
    synthetic.write_ferplus(tmp_path, FERPLUS_VOTES)
    for split in ("train", "test"):
        ds = build_dataset("ferplus", tmp_path, split, label_rule=rule)
        assert ds.label_names == L.DATASET_ORDERS["ferplus"]
        assert [ds.label_names[t] for t in ds.targets] == FERPLUS_EXPECTED[rule][split]
        assert_images_match_labels(ds)
        assert all(len(v) == 10 for v in ds.votes)
    train = build_dataset("ferplus", tmp_path, "train", label_rule=rule)
    assert train.info["dropped"]["no image name"] == 1
    if rule == "majority":
        with pytest.raises(DatasetError, match="no usable PublicTest rows"):
            build_dataset("ferplus", tmp_path, "val", label_rule=rule)


def test_ferplus_files_must_be_aligned(tmp_path):
    synthetic.write_ferplus(tmp_path, FERPLUS_VOTES)
    lines = (tmp_path / "fer2013.csv").read_text().splitlines()
    lines[1] = lines[1].replace("Training", "PublicTest")
    (tmp_path / "fer2013.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="not aligned"):
        build_dataset("ferplus", tmp_path, "train")


def test_ferplus_generated_folders(tmp_path):
    folder = tmp_path / "FER2013Train"
    folder.mkdir()
    rows = [r for r in FERPLUS_VOTES if r[0] == "train" and r[1]]
    with open(folder / "label.csv", "w", newline="") as f:
        w = csv.writer(f)
        for i, (_, name, votes) in enumerate(rows):
            winner = L.NATIVE_NAMES["ferplus"][max(range(10), key=lambda k: (votes[k], -k))]
            klass = winner if winner in L.CANONICAL else "neutral"
            synthetic.make_image(klass).convert("L").save(folder / name)
            w.writerow([name, "(0, 0, 48, 48)", *votes] if i % 2 else [name, *votes])  # both label.csv variants
    ds = build_dataset("ferplus", tmp_path, "train", label_rule="majority")
    assert [ds.label_names[t] for t in ds.targets] == FERPLUS_EXPECTED["majority"]["train"]
    assert_images_match_labels(ds)


# -- CAER-S ---------------------------------------------------------------------------------------------------------
def test_caer_s(tmp_path):
    folders = dict(zip(("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"),
                       L.NATIVE_NAMES["caer_s"]))
    per = {"train": counts(1, 2, 1, 1, 1, 3, 1), "test": counts(1, 1, 1, 1, 1, 1, 1)}
    synthetic.write_class_folders(tmp_path / "CAER-S", per, folder_names=folders, ext=".png")
    ds = build_dataset("caer_s", tmp_path, "train")
    assert ds.label_names == ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
    assert ds.class_counts() == {n: per["train"][n] for n in ds.label_names}
    assert_images_match_labels(ds)
    assert build_dataset("caer_s", tmp_path, "val").split == "test"


# -- generic folder / CSV -------------------------------------------------------------------------------------------
def test_folder_aliases_sorted_by_canonical_name(tmp_path):
    spelled = {"happiness": "Happy", "anger": "angry", "neutral": "Neutral"}
    per = {"train": {"neutral": 2, "happiness": 1, "anger": 3}, "val": {"neutral": 1, "happiness": 1, "anger": 1}}
    synthetic.write_class_folders(tmp_path, per, folder_names=spelled)
    ds = build_dataset("folder", tmp_path, "validation")
    assert ds.label_names == ("anger", "happiness", "neutral")
    assert ds.class_counts() == {"anger": 1, "happiness": 1, "neutral": 1}
    assert_images_match_labels(ds)
    reordered = build_dataset("folder", tmp_path, "train", label_names=["neutral", "happy", "angry"])
    assert reordered.label_names == ("neutral", "happiness", "anger")
    assert_images_match_labels(reordered)


def test_folder_unknown_class_and_empty_class(tmp_path, caplog):
    synthetic.write_class_folders(tmp_path, {"train": {"neutral": 2, "fear": 1}}, folder_names={"fear": "smirk"})
    with pytest.raises(DatasetError, match="train/smirk: unknown expression label 'smirk'; expected one of neutral"):
        build_dataset("folder", tmp_path, "train")
    (tmp_path / "train" / "anger").mkdir()
    with caplog.at_level(logging.WARNING):
        ds = build_dataset("folder", tmp_path, "train", on_error="skip")
    assert ds.class_counts() == {"anger": 0, "neutral": 2}
    assert "smirk" in caplog.text and "has no images" in caplog.text
    with pytest.raises(DatasetError, match="anger has no images"):
        build_dataset("folder", tmp_path, "train", label_names=["neutral", "anger"], on_error="raise")


def test_folder_numeric_needs_index_base(tmp_path):
    synthetic.write_class_folders(tmp_path, {"train": {"surprise": 1, "neutral": 2}},
                                  folder_names={"surprise": "1", "neutral": "7"})
    with pytest.raises(DatasetError, match="index_base"):
        build_dataset("folder", tmp_path, "train", label_names="rafdb")
    ds = build_dataset("folder", tmp_path, "train", label_names="rafdb", index_base=1)
    assert ds.class_counts()["surprise"] == 1 and ds.class_counts()["neutral"] == 2
    assert_images_match_labels(ds)


def test_csv_table(tmp_path, caplog):
    per = {"train": {"happiness": 2, "sadness": 1}, "val": {"happiness": 1, "sadness": 2}}
    synthetic.write_csv_table(tmp_path, per, label_spelling={"happiness": "Happy"})
    ds = build_dataset("csv", tmp_path, "val")
    assert ds.label_names == ("happiness", "sadness") and ds.class_counts() == {"happiness": 1, "sadness": 2}
    assert_images_match_labels(ds)
    with open(tmp_path / "labels.csv", "a", newline="") as f:
        csv.writer(f).writerow(["images/val_00000.png", "bored", "val"])
    with pytest.raises(DatasetError, match="labels.csv:line 8: unknown expression label 'bored'"):
        build_dataset("csv", tmp_path, "val")
    assert len(build_dataset("csv", tmp_path, "val", on_error="skip")) == 3


def test_csv_integer_labels(tmp_path):
    synthetic.write_csv_table(tmp_path, {"train": {"happiness": 1, "anger": 1}})
    rows = (tmp_path / "labels.csv").read_text().replace("happiness", "3").replace("anger", "0")
    (tmp_path / "train.csv").write_text(rows)
    with pytest.raises(DatasetError, match="integer labels need label_names= .* and index_base="):
        build_dataset("csv", tmp_path, "train")
    ds = build_dataset("csv", tmp_path, "train", label_names="fer2013", index_base=0)
    assert ds.class_counts()["happiness"] == 1 and ds.class_counts()["anger"] == 1
    assert_images_match_labels(ds)


# -- remapping ------------------------------------------------------------------------------------------------------
def test_with_label_names_remaps_by_name(tmp_path):
    synthetic.write_rafdb(tmp_path, RAF)
    ds = build_dataset("rafdb", tmp_path, "train", label_names=L.CANONICAL[:7])
    assert ds.label_names == L.CANONICAL[:7]
    assert ds.class_counts() == {n: RAF["train"][n] for n in L.CANONICAL[:7]}
    assert_images_match_labels(ds)


def test_with_label_names_missing_class(tmp_path):
    synthetic.write_affectnet(tmp_path, AFF)
    ds = build_dataset("affectnet8", tmp_path, "val")
    with pytest.raises(ValueError, match="contempt"):
        ds.with_label_names("rafdb")
    seven = ds.with_label_names("rafdb", drop_missing=True)
    assert len(seven) == 7 and len(seven.boxes) == 7
    assert_images_match_labels(seven)


def test_datasets_pickle_for_spawned_workers(tmp_path):
    import pickle

    from ferkit.models.transforms import build_transform

    synthetic.write_affectnet(tmp_path / "aff", AFF)
    synthetic.write_fer2013_csv(tmp_path / "fer" / "fer2013.csv", FER)
    for ds in (build_dataset("affectnet8", tmp_path / "aff", "val"), build_dataset("fer2013", tmp_path / "fer", "val")):
        ds.transform = build_transform("mpa_fer", train=True)
        copy = pickle.loads(pickle.dumps(ds))
        assert copy.samples == ds.samples and copy[0][0].shape == (3, 224, 224)
