"""``ferkit weights`` sub-commands and their exit codes."""

import json

import pytest

from ferkit.cli.main import main
from ferkit.hub import cached_path
from tests._hub_helpers import DATA, SHA, Server, make_asset


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_list_json(capsys):
    assert main(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["yunet"]["sha256_known"] and rows["yunet"]["cached"] == "missing" and rows["yunet"]["size"] == 232589
    assert not rows["poster_v2.rafdb"]["sha256_known"] and rows["poster_v2.rafdb"]["kind"] == "checkpoint"
    assert main(["weights", "list", "--kind", "checkpoint"]) == 0
    assert "yunet" not in capsys.readouterr().out


def test_import_verify_and_path(capsys, tmp_path, shared_weights):
    f = shared_weights / "mtcnn_pnet.pt"
    assert main(["weights", "path", "mtcnn_pnet"]) == 1
    assert main(["weights", "import", str(f)]) == 0
    assert "imported mtcnn_pnet (verified)" in capsys.readouterr().out
    assert main(["weights", "path", "mtcnn_pnet"]) == 0
    assert capsys.readouterr().out.strip() == str(cached_path("mtcnn_pnet"))
    assert main(["weights", "verify"]) == 0
    cached_path("mtcnn_pnet").write_bytes(b"tampered")
    assert main(["weights", "verify"]) == 1
    assert "modified" in capsys.readouterr().out
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"x" * 10)
    assert main(["weights", "import", str(wrong), "--name", "mtcnn_rnet"]) == 2
    assert "wrong or truncated" in capsys.readouterr().err


def test_download_from_a_local_server(capsys, monkeypatch, server):
    asset = make_asset(monkeypatch, server)
    server.routes["/blob.bin"] = ("ok", DATA)
    assert main(["weights", "download", asset.name, "--no-progress"]) == 2  # offline (conftest)
    assert "offline" in capsys.readouterr().err
    monkeypatch.delenv("FERKIT_OFFLINE")
    assert main(["weights", "download", asset.name, "--no-progress"]) == 0
    assert cached_path(asset).read_bytes() == DATA
    server.routes["/other.bin"] = ("ok", DATA[::-1])
    monkeypatch.setitem(__import__("ferkit.hub", fromlist=["ASSETS"]).ASSETS, "test_blob2",
                        type(asset)("test_blob2", "blob2.bin", (server.url + "/other.bin",), SHA, len(DATA), "MIT",
                                    "https://example.org", "bad file", "detector"))
    assert main(["weights", "download", "test_blob2", asset.name, "--no-progress"]) == 1  # one of two failed
    assert "FAILED test_blob2" in capsys.readouterr().err
    assert main(["weights", "download", "--no-progress"]) == 2


def test_unverified_import_needs_the_flag(capsys, tmp_path):
    f = tmp_path / "ckpt.pth"
    f.write_bytes(b"weights")
    assert main(["weights", "import", str(f), "--name", "poster_v2.caer_s"]) == 2
    assert "--allow-unverified" in capsys.readouterr().err
    assert main(["weights", "import", str(f), "--name", "poster_v2.caer_s", "--allow-unverified"]) == 0
    assert "UNVERIFIED" in capsys.readouterr().out
    assert main(["weights", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "poster_v2.caer_s", "status": "unverified",
                                                    "path": str(cached_path("poster_v2.caer_s"))}]
