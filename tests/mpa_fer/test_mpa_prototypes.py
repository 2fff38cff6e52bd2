"""Prototypes: values against a direct computation, subsets, label-order mapping, and the on-disk cache key."""

from __future__ import annotations

import pytest
import torch

from ferkit.errors import DatasetError
from ferkit.models.mpa_fer import prototypes as proto

RAF = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")


def _direct(model, ds, per_class):
    """Prototypes computed image by image with open_clip's own encode_image."""
    tf = proto.eval_transform(model.data_config)
    out = []
    for idx in per_class:
        feats = []
        for i in idx:
            img, _ = proto.raw_view(ds)[i]
            with torch.no_grad():
                feats.append(torch.nn.functional.normalize(model.clip.encode_image(tf(img)[None])[0], dim=-1))
        out.append(torch.nn.functional.normalize(torch.stack(feats).mean(0), dim=-1))
    return torch.stack(out)


def test_prototypes_equal_direct_computation_and_dataset_untouched(make_model, toy_faces, tmp_path):
    ds = toy_faces([i % 7 for i in range(15)], transform=lambda im: "not a PIL image")
    model = make_model()
    model.prepare_training(ds, cache_dir=tmp_path, batch_size=4)
    per_class = [[i for i in range(15) if i % 7 == c] for c in range(7)]
    assert torch.allclose(model.prototypes, _direct(model, ds, per_class), atol=1e-5)
    assert ds.transform is not None  # the caller's data set keeps its transform
    assert len(list(tmp_path.glob("mpa_fer_prototypes-*.pt"))) == 1


def test_subsets_are_seeded_and_capped(caplog):
    targets = [0] * 10 + [1] * 3
    a = proto.subset_indices(targets, 2, 4, seed=0)
    assert a == proto.subset_indices(targets, 2, 4, seed=0) and len(a[0]) == 4 and a[1] == [10, 11, 12]
    assert set(a[0]) <= set(range(10)) and a != proto.subset_indices(targets, 2, 4, seed=1)
    assert "only 3 images" in caplog.text
    assert proto.subset_indices(targets, 2, "all", 0) == [list(range(10)), [10, 11, 12]]
    with pytest.raises(DatasetError, match="class index 2 has no training image"):
        proto.subset_indices(targets, 3, "all", 0)


def test_dataset_order_is_mapped_by_name(make_model, toy_faces, tmp_path):
    order = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")  # AffectNet-7 order
    ds = toy_faces([0, 1, 2, 3, 4, 5, 6, 0], label_names=order)
    model = make_model()  # RAF-DB order
    model.prepare_training(ds, cache_dir=tmp_path, batch_size=8)
    per_class = [[i for i in range(8) if order[ds.targets[i]] == name] for name in RAF]
    assert torch.allclose(model.prototypes, _direct(model, ds, per_class), atol=1e-5)


def test_cache_hit_and_key_changes(make_model, toy_faces, tmp_path, monkeypatch, tiny_clip_file):
    ds = toy_faces([i % 7 for i in range(14)])
    first = make_model()
    first.prepare_training(ds, cache_dir=tmp_path)
    key = first.prototype_key

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(proto, "compute_prototypes", boom)
    again = make_model()
    again.prepare_training(toy_faces([i % 7 for i in range(14)]), cache_dir=tmp_path)  # same data, new object
    assert again.prototype_key == key and torch.equal(again.prototypes, first.prototypes)
    monkeypatch.undo()

    other_clip = tmp_path / "other_clip.pt"
    other_clip.write_bytes(tiny_clip_file.read_bytes())  # another path, same bytes: same identity
    variants = {
        "n_proto": (make_model(n_proto=1), ds),
        "seed": (make_model(n_proto=1, proto_seed=3), ds),
        "data": (make_model(), toy_faces([(i + 1) % 7 for i in range(14)])),
        "clip": (make_model(clip_weights="random"), ds),
        "labels": (make_model(label_names="affectnet7"), ds),
    }
    keys = {key}
    for name, (model, data) in variants.items():
        model.prepare_training(data, cache_dir=tmp_path)
        assert model.prototype_key not in keys, name
        keys.add(model.prototype_key)
    same = make_model(clip_weights=str(other_clip))
    assert same.prototype_fields(ds, proto.eval_transform(same.data_config))["clip_sha256"] == \
        first.clip_identity["sha256"]
    assert len(list(tmp_path.glob("mpa_fer_prototypes-*.pt"))) == len(keys)


def test_prototypes_off_is_a_noop(make_model, toy_faces, tmp_path):
    model = make_model("mpa_fer_vit_b16_coop_vp")
    model.prepare_training(toy_faces([0, 1]), cache_dir=tmp_path)
    assert model.prototypes is None and not list(tmp_path.iterdir())


def test_unknown_dataset_class_is_refused(make_model, toy_faces, tmp_path):
    ds = toy_faces([0, 7], label_names=("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger",
                                         "contempt"))
    with pytest.raises(DatasetError, match="contempt"):
        make_model().prepare_training(ds, cache_dir=tmp_path)
