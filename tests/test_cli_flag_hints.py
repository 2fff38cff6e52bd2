"""Every ``--flag`` a command's error message tells the user to pass exists on that command.

The failure paths of each sub-command are run for real (through ``ferkit.cli.main.main``) and their messages
collected. A flag inside a quoted command (```ferkit weights import PATH --name X```) must exist on *that* command;
every other ``--flag`` must exist on the command that printed it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from ferkit.cli.main import build_parser, main
from ferkit.config import to_dict
from ferkit.train import load_config
from ferkit.train.state import TRAINING_FORMAT

HERE = Path(__file__).resolve().parent
TINY_PLUGIN = str(HERE / "_tiny_fer_model.py")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
QUOTED = re.compile(r"`ferkit ([^`]*)`")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _resolve(words: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The (sub-)parser named by the leading words of a command line, and the command path."""
    parser, path = build_parser(), []
    for word in words:
        sub = _subparsers(parser)
        if word not in sub:
            break
        parser, path = sub[word], [*path, word]
    return parser, path


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def missing_flags(command: list[str], message: str) -> list[str]:
    """``"--flag (in: ferkit <cmd>)"`` for every flag the message names that its command lacks."""
    problems = []
    for quoted in QUOTED.findall(message):
        parser, path = _resolve(quoted.split())
        assert path, f"quoted command `ferkit {quoted}` names no ferkit sub-command"
        problems += [f"{f} (in: ferkit {' '.join(path)})" for f in FLAG.findall(quoted) if f not in _options(parser)]
    parser, path = _resolve(command)
    assert path == command, command
    rest = QUOTED.sub("", message)
    problems += [f"{f} (in: ferkit {' '.join(path)})" for f in FLAG.findall(rest) if f not in _options(parser)]
    return problems


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A face image, a legacy pickled checkpoint, a small folder data set, runs to resume and a recipe."""
    d = tmp_path_factory.mktemp("hints")
    out = {"image": d / "face.png", "legacy": d / "legacy.pt", "data": d / "data", "recipe": d / "recipe.yaml"}
    Image.new("RGB", (64, 64), (120, 90, 80)).save(out["image"])
    torch.save({"state_dict": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=0.1)}, out["legacy"])
    for cls in ("happiness", "sadness"):
        (out["data"] / "test" / cls).mkdir(parents=True)
        Image.new("RGB", (16, 16)).save(out["data"] / "test" / cls / "a.png")
        (out["data"] / "test" / cls / "b.png").write_text("not an image")
    cfg = load_config(overrides={"plugins": [TINY_PLUGIN, "plugins/not_consented.py"], "model.name": "tiny_fer",
                                 "data.name": "folder", "data.root": str(out["data"])})
    training = {"format": TRAINING_FORMAT, "config": to_dict(cfg)}
    for name, extra in (("run", {}), ("legacy_run", {"args": argparse.Namespace(lr=0.1)})):
        (d / name).mkdir()
        torch.save({"format": "ferkit.checkpoint/1", "model": "tiny_fer", "state_dict": {}, "training": training,
                    **extra}, d / name / "last.pt")
        out[name] = d / name
    out["recipe"].write_text(f"plugins: [{TINY_PLUGIN}]\nmodel: {{name: tiny_fer}}\n"
                             f"data: {{name: fer2013, root: {d / 'nowhere'}}}\n")
    return out


def _unverifiable_pretrained() -> tuple[str, str] | None:
    """A pretrained name whose weights file has no published hash, and that file's asset name."""
    from ferkit.hub import ASSETS
    from ferkit.models import PRETRAINED

    return next(((n, c.asset) for n, c in PRETRAINED.items() if c.asset and not ASSETS[c.asset].verifiable), None)


def _scenarios(f: dict[str, Path]) -> list[tuple[list[str], list[str], dict[str, str], str]]:
    """(command path, argv, environment, text proving the failure path was reached)."""
    img, legacy, onnx = str(f["image"]), str(f["legacy"]), str(f["image"].parent / "p.onnx")
    recognizer = ["--detector", "none", "--device", "cpu"]
    quick_bench = ["--batch", "1", "--repeats", "1", "--warmup", "0"]
    out = [
        (["train"], ["train", "--resume", str(f["legacy_run"])], {}, "pickled Python objects"),
        (["train"], ["train", "--resume", str(f["run"])], {}, "not_consented.py"),
        (["train"], ["train", "--resume", str(f["run"]), "--set", "optim.lr=0.5"], {}, "optim.lr"),
        (["train"], ["train", str(f["recipe"]), "--out", str(f["run"])], {}, "already holds a run"),
        (["train"], ["train", str(f["recipe"]), "--out", str(f["image"].parent / "fresh")], {}, "nowhere"),
        (["detect"], ["detect", img, "--detector", "retinaface", "--weights", legacy], {}, "pickled Python objects"),
        (["detect"], ["detect", img, "--detector", "retinaface"], {"FERKIT_OFFLINE": "1"}, "offline"),
        (["predict"], ["predict", img, "--model", "poster_v2", "--checkpoint", legacy, *recognizer], {}, "pickled"),
        (["predict"], ["predict", img, "--model", "mpa_fer_vit_b16", *recognizer], {"FERKIT_OFFLINE": "1"},
         "clip_weights"),
        (["predict"], ["predict", img, "--precision", "int8", *recognizer], {}, "calibrate"),
        (["export", "onnx"], ["export", "onnx", "--model", "poster_v2", "--out", onnx, "--int8"], {}, "--int8"),
        (["explain"], ["explain", img, "--model", "poster_v2", "--checkpoint", legacy, *recognizer, "--out",
                       str(f["image"].parent / "explain")], {}, "pickled"),
        (["export", "onnx"], ["export", "onnx", "--model", "poster_v2", "--checkpoint", legacy, "--out",
                              str(f["image"].parent / "m.onnx")], {}, "pickled"),
        (["eval"], ["eval", "--checkpoint", legacy, "--data", "folder", "--root", str(f["data"]), "--on-error",
                    "skip"], {}, "pickled"),
        (["info"], ["info", "poster_v2", "--checkpoint", legacy], {}, "pickled"),
        (["data", "check"], ["data", "check", "folder", str(f["data"]), "--workers", "0", "--max-listed", "1"], {},
         "more"),
        (["prompts", "generate"], ["prompts", "generate", "--out", str(f["image"].parent / "d.json")], {},
         "endpoint"),
        (["weights", "import"], ["weights", "import", legacy, "--name", "poster_v2.rafdb"], {}, "SHA-256"),
        (["bench"], ["bench", "--model", "poster_v2", "--checkpoint", legacy, *quick_bench], {}, "pickled"),
        (["bench"], ["bench", "--precision", "int8", *quick_bench], {}, "calibrate"),
        (["bench"], ["bench", "--model", "mpa_fer_vit_b16", *quick_bench], {"FERKIT_OFFLINE": "1"}, "clip_weights"),
    ]
    found = _unverifiable_pretrained()
    if found is not None:  # no published hash: refused before any network access, with and without offline mode
        name, asset = found
        explained = str(f["image"].parent / "explained")
        for offline in ("0", "1"):
            env = {"FERKIT_OFFLINE": offline}
            out += [(["predict"], ["predict", img, "--model", name, *recognizer], env, name),
                    (["explain"], ["explain", img, "--model", name, *recognizer, "--out", explained], env, name),
                    (["export", "onnx"], ["export", "onnx", "--model", name, "--out", onnx], env, name),
                    (["bench"], ["bench", "--model", name, "--batch", "1", "--repeats", "1"], env, name),
                    (["weights", "download"], ["weights", "download", asset], env, asset)]
    return out


#: Commands that load models like ``predict`` (same arguments, same loading errors) but cannot be run to that point
#: here: webcam checks its camera first, serve starts a server.
SAME_PATHS = {("webcam",): ("predict",), ("serve",): ("predict",)}
#: Commands whose errors name no flag.
NO_FLAG_HINTS = {"env", "models"}


def test_every_flag_named_by_an_error_exists_on_its_command(files, capsys, monkeypatch):
    for var in ("FERKIT_LLM_BASE_URL", "FERKIT_LLM_MODEL", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(files["image"].parent)
    messages: dict[tuple[str, ...], list[str]] = {}
    for command, argv, env, reached in _scenarios(files):
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            code = main(argv)
        captured = capsys.readouterr()
        text = captured.err + captured.out
        assert code != 0 and reached in text, (argv, code, text[-1500:])
        messages.setdefault(tuple(command), []).append(text)
    commands = set(_subparsers(build_parser()))
    for command, source in SAME_PATHS.items():
        if command[0] in commands:
            messages[command] = messages[source]
    problems = {" ".join(c): sorted({p for t in texts for p in missing_flags(list(c), t)})
                for c, texts in messages.items()}
    assert {c: p for c, p in problems.items() if p} == {}
    uncovered = commands - NO_FLAG_HINTS - {c[0] for c in messages}
    assert not uncovered, f"add the failure paths of {sorted(uncovered)} to _scenarios (or SAME_PATHS / NO_FLAG_HINTS)"


def test_the_checker_catches_a_missing_flag():
    assert missing_flags(["predict"], "pass --trust-checkpoint") == []
    assert missing_flags(["detect"], "pass --allow-unverified") == ["--allow-unverified (in: ferkit detect)"]
    assert missing_flags(["detect"], "run `ferkit weights import F --name x --allow-unverified`") == []
    assert missing_flags(["detect"], "run `ferkit weights list --bogus`") == ["--bogus (in: ferkit weights list)"]
