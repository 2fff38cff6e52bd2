"""Descriptions file, hard-prompt texts, and `ferkit prompts generate/show` against a stub chat server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ferkit.cli.main import main
from ferkit.clip import count_tokens
from ferkit.errors import ConfigError, FerkitError
from ferkit.labels import CANONICAL
from ferkit.models.mpa_fer import llm
from ferkit.models.mpa_fer.prompts import (
    QUESTION,
    SCHEMA,
    builtin_descriptions_path,
    hard_prompt,
    load_descriptions,
    validate_descriptions,
)

LLM_STYLE = {
    "fear": "The most useful visual features for distinguishing the facial expression of fear include:\n"
            "1. **Eyebrows**: raised and pulled together.\n2. **Eyes**: wide open, upper lids lifted.\n"
            "3. **Mouth**: lips stretched horizontally.",
    "anger": "Lowered, knitted brows; a glaring stare. Lips pressed tightly together.",
}


def test_shipped_descriptions_validate_and_fit():
    doc = json.loads(builtin_descriptions_path().read_text())
    assert doc["schema"] == SCHEMA and doc["question"] == QUESTION
    descs, sha = load_descriptions("builtin")
    assert set(descs) == set(CANONICAL) and len(sha) == 64
    for style in ("noun", "adjective"):
        for name in CANONICAL:
            assert count_tokens(hard_prompt(name, "h3", descs, style)) <= 77
    assert hard_prompt("disgust", "h1") == "a photo of disgust."
    assert hard_prompt("happiness", "h2", style="adjective") == \
        "a photo of a person making a facial expression of happy."


def test_bad_descriptions_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="schema"):
        validate_descriptions({"descriptions": {}})
    with pytest.raises(ConfigError, match="ending in '.'"):
        validate_descriptions({"schema": SCHEMA, "descriptions": {"fear": "wide eyes"}})
    with pytest.raises(ConfigError, match="unknown expression label"):
        validate_descriptions({"schema": SCHEMA, "descriptions": {"boredom": "a yawn."}})
    with pytest.raises(ConfigError, match="not found"):
        load_descriptions(tmp_path / "missing.json")


def test_condense_and_budget():
    assert llm.condense(LLM_STYLE["fear"]) == ("eyebrows raised and pulled together, eyes wide open, upper lids "
                                               "lifted, mouth lips stretched horizontally.")
    assert llm.condense(LLM_STYLE["anger"]) == "lowered, knitted brows; a glaring stare, lips pressed tightly together."
    long = "brows raised, " + ", ".join(f"detail number {i}" for i in range(40)) + "."
    short, cut = llm.fit_budget("fear", long)
    assert cut and count_tokens(hard_prompt("fear", "h3", {"fear": short})) <= 77 and short.endswith(".")
    assert llm.fit_budget("fear", "wide eyes.") == ("wide eyes.", False)


class _Stub(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        question = body["messages"][-1]["content"]
        name = question.rsplit(" ", 1)[-1].rstrip("?")
        answer = LLM_STYLE.get(name, f"a clear sign of {name} around the eyes and mouth.")
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    _Stub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_generate_with_stub_server_and_cache(stub_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    out = tmp_path / "desc.json"
    argv = ["prompts", "generate", "--base-url", stub_server, "--model", "stub-1", "--api-key-env", "MY_KEY",
            "--classes", "fear", "angry", "contempt", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    assert len(_Stub.requests) == 3
    first = _Stub.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test-123"
    assert first["body"]["model"] == "stub-1" and first["body"]["temperature"] == 0
    assert first["body"]["messages"][-1]["content"] == QUESTION.format(**{"class": "fear"})
    doc = json.loads(out.read_text())
    descs = validate_descriptions(doc)
    assert list(descs) == ["fear", "anger", "contempt"] and doc["raw"]["fear"] == LLM_STYLE["fear"]
    assert doc["generator"]["model"] == "stub-1" and "sk-test" not in out.read_text()
    assert main(argv) == 0 and len(_Stub.requests) == 3  # every answer came from the cache
    assert main([*argv, "--refresh"]) == 0 and len(_Stub.requests) == 6
    assert "wrote" in capsys.readouterr().out


def test_generate_refuses_remote_when_offline_and_needs_endpoint(tmp_path, monkeypatch):
    endpoint = llm.ChatEndpoint("https://api.example.com/v1", "m", "secret")
    with pytest.raises(FerkitError, match="FERKIT_OFFLINE"):  # conftest sets FERKIT_OFFLINE=1
        llm.ask(endpoint, "q")
    for var in ("FERKIT_LLM_BASE_URL", "OPENAI_BASE_URL", "FERKIT_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    assert main(["prompts", "generate", "--out", str(tmp_path / "x.json")]) == 2


def test_prompts_show(capsys):
    assert main(["prompts", "show", "--labels", "rafdb"]) == 0
    out = capsys.readouterr().out
    assert out.count("a photo of a person making a facial expression of") == 7 and "OVER" not in out
