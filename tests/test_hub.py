"""Weights registry: downloads from a local HTTP server on 127.0.0.1 (interrupted, wrong bytes, 404, HTML), imports,
offline mode, cache verification and pretrained configs."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from ferkit.errors import WeightsError
from ferkit.hub import (
    ASSETS,
    cache_dir,
    cached_path,
    cached_status,
    download,
    get_weights,
    import_weights,
    verify_cache,
)
from ferkit.labels import DATASET_ORDERS
from ferkit.models import PRETRAINED, list_pretrained, resolve_pretrained
from tests._hub_helpers import DATA, SHA, Server, make_asset


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _parts(folder: Path):
    return sorted(p.name for p in folder.glob(".*.part"))


def test_cache_dir_honours_ferkit_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FERKIT_HOME", str(tmp_path / "fh"))
    assert cache_dir() == tmp_path / "fh"
    monkeypatch.delenv("FERKIT_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "ferkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "ferkit"


def test_download_verifies_and_caches(monkeypatch, server):
    asset = make_asset(monkeypatch, server)
    server.routes["/blob.bin"] = ("ok", DATA)
    path = download(asset.name, offline=False, progress=False)
    assert path == cached_path(asset) and path.read_bytes() == DATA
    record = json.loads(path.with_name("blob.bin.json").read_text())
    assert record["sha256"] == SHA and record["verified"] is True and record["source"].endswith("/blob.bin")
    assert get_weights(asset.name) == path  # offline (conftest): served from the cache
    assert len(server.requests) == 1
    assert _parts(path.parent) == []


def test_interrupted_download_resumes_with_a_range_request(monkeypatch, server):
    asset = make_asset(monkeypatch, server)
    server.routes["/blob.bin"] = ("drop_once", DATA)
    path = download(asset.name, offline=False, progress=False)
    assert path.read_bytes() == DATA
    assert server.requests[0][1] is None
    assert server.requests[1][1] == f"bytes={len(DATA) // 2}-"


def test_server_without_range_support_restarts(monkeypatch, server):
    asset = make_asset(monkeypatch, server)
    server.routes["/blob.bin"] = ("drop_once_no_range", DATA)
    path = download(asset.name, offline=False, progress=False)
    assert path.read_bytes() == DATA
    assert server.requests[1][1] is not None  # a resume was asked for; the server sent the whole file (200)


def test_connection_dropping_every_time_keeps_the_partial_file_and_resumes_later(monkeypatch, server):
    asset = make_asset(monkeypatch, server)
    server.routes["/blob.bin"] = ("drop_always", DATA)
    with pytest.raises(WeightsError, match="connection failed 2 times"):
        download(asset.name, offline=False, progress=False, retries=1)
    folder = cached_path(asset).parent
    assert not cached_path(asset).exists()
    part = folder / ".blob.bin.part"
    kept = part.stat().st_size
    assert 0 < kept < len(DATA) and part.read_bytes() == DATA[:kept]
    server.routes["/blob.bin"] = ("ok", DATA)
    path = download(asset.name, offline=False, progress=False)
    assert path.read_bytes() == DATA and server.requests[-1][1] == f"bytes={kept}-"
    assert _parts(folder) == []


def test_wrong_bytes_are_rejected_and_not_cached(monkeypatch, server):
    asset = make_asset(monkeypatch, server)
    server.routes["/blob.bin"] = ("ok", DATA[::-1])  # same size, wrong content
    with pytest.raises(WeightsError, match="SHA-256"):
        download(asset.name, offline=False, progress=False)
    assert not cached_path(asset).exists() and _parts(cached_path(asset).parent) == []
    assert cached_status(asset.name) == "missing"


def test_wrong_size_is_rejected(monkeypatch, server):
    asset = make_asset(monkeypatch, server)
    server.routes["/blob.bin"] = ("ok", DATA + b"extra")
    with pytest.raises(WeightsError, match="bytes"):
        download(asset.name, offline=False, progress=False)
    assert not cached_path(asset).exists()


def test_http_404_and_html_pages_fail_clearly(monkeypatch, server):
    asset = make_asset(monkeypatch, server, paths=("/missing.bin", "/page"))
    server.routes["/page"] = ("html", b"")
    with pytest.raises(WeightsError) as err:
        download(asset.name, offline=False, progress=False)
    assert "HTTP 404" in str(err.value) and "HTML page" in str(err.value)
    assert not cached_path(asset).exists()


def test_next_url_is_tried_after_a_failure(monkeypatch, server):
    asset = make_asset(monkeypatch, server, paths=("/missing.bin", "/mirror/blob.bin"))
    server.routes["/mirror/blob.bin"] = ("ok", DATA)
    assert download(asset.name, offline=False, progress=False).read_bytes() == DATA


def test_weights_url_environment_variable_replaces_the_urls(monkeypatch, server):
    asset = make_asset(monkeypatch, server, paths=("/nowhere",))
    server.routes["/mirror/blob.bin"] = ("ok", DATA)
    monkeypatch.setenv("FERKIT_WEIGHTS_URL", server.url + "/mirror/")
    assert download(asset.name, offline=False, progress=False).read_bytes() == DATA
    assert [p for p, _ in server.requests] == ["/mirror/blob.bin"]


def test_offline_mode_never_touches_the_network(monkeypatch, server):
    asset = make_asset(monkeypatch, server)
    server.routes["/blob.bin"] = ("ok", DATA)
    with pytest.raises(WeightsError, match="ferkit weights import"):
        get_weights(asset.name)  # FERKIT_OFFLINE=1 from conftest
    with pytest.raises(WeightsError, match="offline"):
        download(asset.name)
    monkeypatch.delenv("FERKIT_OFFLINE")
    with pytest.raises(WeightsError, match="offline"):
        get_weights(asset.name, offline=True)
    assert server.requests == []
    assert get_weights(asset.name, progress=False).read_bytes() == DATA  # online now


def test_concurrent_downloads_fetch_once(monkeypatch, server):
    asset = make_asset(monkeypatch, server)
    server.routes["/blob.bin"] = ("ok", DATA)
    results = []
    threads = [threading.Thread(target=lambda: results.append(download(asset.name, offline=False, progress=False)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1 and len(server.requests) == 1


def test_unverifiable_assets_need_an_explicit_opt_in(monkeypatch, server):
    asset = make_asset(monkeypatch, server, sha=None, size=None)
    server.routes["/blob.bin"] = ("ok", DATA)
    with pytest.raises(WeightsError, match="allow_unverified"):
        download(asset.name, offline=False, progress=False)
    assert server.requests == []
    path = download(asset.name, offline=False, progress=False, allow_unverified=True)
    record = json.loads(path.with_name("blob.bin.json").read_text())
    assert record["sha256"] == SHA and record["verified"] is False
    assert cached_status(asset.name) == "unverified" and get_weights(asset.name) == path
    path.write_bytes(DATA[:-1] + b"\x00")  # later modification is detected through the recorded hash
    assert cached_status(asset.name, full=True) == "modified"
    with pytest.raises(WeightsError, match="not in the cache"):
        get_weights(asset.name)


def test_import_verifies_and_identifies_by_hash(monkeypatch, server, tmp_path):
    asset = make_asset(monkeypatch, server)
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    good.write_bytes(DATA)
    bad.write_bytes(DATA[::-1])
    with pytest.raises(WeightsError, match="SHA-256"):
        import_weights(bad, asset.name)
    assert not cached_path(asset).exists()
    with pytest.raises(WeightsError, match="no known weights"):
        import_weights(bad)
    path = import_weights(good)  # found by its hash
    assert path == cached_path(asset) and path.read_bytes() == DATA
    assert get_weights(asset.name) == path  # offline
    with pytest.raises(FileNotFoundError):
        import_weights(tmp_path / "missing.bin")


def test_import_of_unverifiable_asset_records_the_hash(monkeypatch, server, tmp_path):
    asset = make_asset(monkeypatch, server, sha=None, size=None)
    src = tmp_path / "x.bin"
    src.write_bytes(DATA)
    with pytest.raises(WeightsError, match=SHA):
        import_weights(src, asset.name)
    path = import_weights(src, asset.name, allow_unverified=True)
    assert json.loads(path.with_name("blob.bin.json").read_text())["sha256"] == SHA


def test_verify_cache_and_hand_placed_files(monkeypatch, server, tmp_path):
    asset = make_asset(monkeypatch, server)
    path = cached_path(asset)
    path.parent.mkdir(parents=True)
    path.write_bytes(DATA)  # placed by hand, no record: accepted after hashing, record written
    assert cached_status(asset.name) == "unchecked"
    assert get_weights(asset.name) == path and cached_status(asset.name) == "ok"
    rows = {r["name"]: r["status"] for r in verify_cache()}
    assert rows[asset.name] == "ok" and rows["yunet"] == "missing"
    path.write_bytes(DATA[::-1])
    assert {r["name"]: r["status"] for r in verify_cache()}[asset.name] == "modified"
    with pytest.raises(WeightsError):
        get_weights(asset.name)  # corrupt and offline


def test_registry_entries_are_complete():
    for name, a in ASSETS.items():
        assert a.name == name and a.urls and a.licence and a.origin_url and a.kind in ("detector", "backbone",
                                                                                          "checkpoint")
        assert a.sha256 is None or (len(a.sha256) == 64 and int(a.sha256, 16) >= 0)
        assert all(u.startswith("https://") for u in a.urls)
    filenames = [a.filename for a in ASSETS.values()]
    assert len(filenames) == len(set(filenames))
    for n in ("clip_vit_b16", "clip_vit_l14"):  # OpenAI URLs embed the file's hash
        assert ASSETS[n].sha256 in ASSETS[n].urls[0]


def test_registry_hashes_match_the_shared_detector_files(shared_weights):
    sums = dict(line.split()[::-1] for line in (shared_weights / "SHA256SUMS").read_text().splitlines() if line)
    files = {"yunet": "face_detection_yunet_2023mar.onnx", "retinaface_mnet025": "retinaface_mobilenet0.25_Final.pth",
             "mtcnn_pnet": "mtcnn_pnet.pt", "mtcnn_rnet": "mtcnn_rnet.pt", "mtcnn_onet": "mtcnn_onet.pt"}
    for name, f in files.items():
        assert ASSETS[name].sha256 == sums[f]
        assert ASSETS[name].size == (shared_weights / f).stat().st_size


def test_pretrained_configs():
    assert list_pretrained() == ["poster_v2_open.ferplus", "poster_v2_open.fer2013", "poster_v2.rafdb",
                                 "poster_v2.affectnet7", "poster_v2.affectnet8", "poster_v2.caer_s"]
    assert list_pretrained("*affectnet*") == ["poster_v2.affectnet7", "poster_v2.affectnet8"]
    for name, cfg in PRETRAINED.items():
        assert cfg.num_classes == len(cfg.label_names) and cfg.tag == name.split(".")[1]
        assert (cfg.asset in ASSETS) != bool(cfg.packaged)  # a file either ships or comes through the cache
        assert cfg.input_size == (112 if cfg.packaged else 224) and cfg.interpolation == "bilinear"
    assert PRETRAINED["poster_v2_open.ferplus"].label_names == DATASET_ORDERS["ferplus"]
    assert PRETRAINED["poster_v2_open.fer2013"].label_names == DATASET_ORDERS["fer2013"]
    assert PRETRAINED["poster_v2_open.fer2013"].head == "aux" and PRETRAINED["poster_v2_open.ferplus"].head == "main"
    assert PRETRAINED["poster_v2.rafdb"].label_names == DATASET_ORDERS["rafdb"]
    assert PRETRAINED["poster_v2.caer_s"].label_names == DATASET_ORDERS["caer_s"]
    assert PRETRAINED["poster_v2.affectnet8"].label_names == DATASET_ORDERS["affectnet8"]
    assert not PRETRAINED["poster_v2.affectnet7"].label_order_verified
    assert PRETRAINED["poster_v2.rafdb"].metrics["top1"] == 92.21
    with pytest.raises(ValueError, match="unknown pretrained"):
        resolve_pretrained("poster_v2.ferplus")


def test_resolve_pretrained_through_the_cache(tmp_path):
    import ferkit

    with pytest.raises(WeightsError, match="--allow-unverified"):
        resolve_pretrained("poster_v2.rafdb")
    with pytest.raises(WeightsError, match="offline"):
        ferkit.create_model("poster_v2.rafdb")  # the factory resolves dotted names through the hub
    fake = tmp_path / "released.pth"
    fake.write_bytes(b"not really a checkpoint")
    import_weights(fake, "poster_v2.rafdb", allow_unverified=True)
    path, cfg = resolve_pretrained("poster_v2.rafdb")
    assert path.read_bytes() == fake.read_bytes() and cfg.num_classes == 7
    assert ferkit.list_pretrained() == list_pretrained()
