"""Data-set test fixtures shared by several test modules."""

from __future__ import annotations

# FERPlus vote rows (split, image name, votes) and the labels each label rule keeps for them.
#            neutral happi surpr sadne anger disgu fear  conte unkno NF
FERPLUS_VOTES = [
    ("train", "fer0000000.png", [4, 0, 0, 4, 1, 0, 0, 0, 1, 0]),  # argmax: tie -> first = neutral; majority: 4 !> 4
    ("train", "fer0000001.png", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]),  # happiness / happiness
    ("train", "fer0000002.png", [0, 0, 0, 0, 0, 0, 0, 0, 3, 7]),  # NF wins: dropped / dropped
    ("train", "", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]),  # no image name: dropped / dropped
    ("train", "fer0000004.png", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),  # neutral (first tie) / all single votes: dropped
    ("train", "fer0000005.png", [2, 0, 6, 0, 0, 0, 0, 0, 1, 1]),  # surprise / surprise (6 > 8/2)
    ("train", "fer0000006.png", [0, 0, 0, 0, 0, 0, 0, 6, 0, 4]),  # contempt / contempt (6 > 10/2)
    ("val", "fer0000007.png", [0, 0, 0, 5, 5, 0, 0, 0, 0, 0]),  # sadness (first tie) / 5 !> 5: dropped
    ("test", "fer0000008.png", [0, 0, 0, 0, 0, 3, 2, 0, 5, 0]),  # unknown wins: dropped / dropped
    ("test", "fer0000009.png", [0, 0, 0, 0, 0, 0, 9, 0, 1, 0]),  # fear / fear
]
FERPLUS_EXPECTED = {
    "argmax": {"train": ["neutral", "happiness", "neutral", "surprise", "contempt"], "val": ["sadness"],
               "test": ["fear"]},
    "majority": {"train": ["happiness", "surprise", "contempt"], "val": [], "test": ["fear"]},
}
