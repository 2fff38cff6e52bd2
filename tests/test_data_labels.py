"""Native label orders (as published by each data set) and mapping between orders by name."""

import pytest

from ferkit import labels as L

# The published orders, written out from the data sets' documentation (not from ferkit's tables).
PUBLISHED = {
    "rafdb": {1: "Surprise", 2: "Fear", 3: "Disgust", 4: "Happiness", 5: "Sadness", 6: "Anger", 7: "Neutral"},
    "affectnet8": {0: "Neutral", 1: "Happy", 2: "Sad", 3: "Surprise", 4: "Fear", 5: "Disgust", 6: "Anger",
                   7: "Contempt"},
    "fer2013": {0: "Angry", 1: "Disgust", 2: "Fear", 3: "Happy", 4: "Sad", 5: "Surprise", 6: "Neutral"},
}


@pytest.mark.parametrize("dataset", sorted(PUBLISHED))
def test_codes_match_published_orders(dataset):
    for code, spelled in PUBLISHED[dataset].items():
        assert L.from_code(dataset, code) == L.canonical(spelled)
        assert L.to_code(dataset, spelled) == code


def test_affectnet7_is_affectnet8_without_contempt():
    assert L.DATASET_ORDERS["affectnet7"] + ("contempt",) == L.DATASET_ORDERS["affectnet8"]


def test_ferplus_order_is_the_vote_columns():
    cols = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
    assert L.NATIVE_NAMES["ferplus"] == tuple(cols)
    assert L.DATASET_ORDERS["ferplus"] == tuple(cols[:8])


def test_caer_s_order_is_imagefolder_sort_of_its_folders():
    folders = ["Surprise", "Anger", "Sad", "Neutral", "Happy", "Fear", "Disgust"]
    assert L.DATASET_ORDERS["caer_s"] == tuple(L.canonical(f) for f in sorted(folders))


def test_every_order_uses_the_vocabulary_once():
    for name, order in L.DATASET_ORDERS.items():
        assert len(set(order)) == len(order), name
        assert set(order) <= set(L.CANONICAL), name


def test_mapping_rafdb_to_fer2013_by_name():
    # RAF: surprise, fear, disgust, happiness, sadness, anger, neutral -> FER2013 positions of those names.
    assert L.mapping("rafdb", "fer2013") == [5, 2, 1, 3, 4, 0, 6]
    # and back again is the inverse permutation
    back = L.mapping("fer2013", "rafdb")
    assert [back[i] for i in L.mapping("rafdb", "fer2013")] == list(range(7))


def test_mapping_missing_class():
    assert L.mapping("affectnet8", "rafdb")[7] is None
    with pytest.raises(ValueError, match="contempt"):
        L.mapping("affectnet8", "rafdb", strict=True)


def test_mapping_accepts_aliases():
    assert L.mapping(["Happy", "angry"], ["anger", "happiness"]) == [1, 0]


@pytest.mark.parametrize("bad", ["0", "8", "x", "-1"])
def test_rafdb_code_out_of_range(bad):
    with pytest.raises(ValueError, match="rafdb"):
        L.from_code("rafdb", bad)


def test_unknown_label_names_vocabulary():
    with pytest.raises(ValueError, match="neutral, happiness"):
        L.canonical("smirk")
