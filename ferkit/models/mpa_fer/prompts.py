"""Prompt texts: CoOp soft prompts, the paper's three hard-prompt configurations, the class-description file.

Hard prompts (paper §4.1; docs/mpa_fer.md#d3-hard-prompts)::

    h1  "a photo of {c}."
    h2  "a photo of a person making a facial expression of {c}."          (the prefix is 10 tokens = n_ctx)
    h3  "a photo of a person making a facial expression of {c}, {desc}"   (desc: one sentence ending in ".")
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ferkit.checkpoint import sha256_file
from ferkit.errors import ConfigError
from ferkit.labels import canonical

log = logging.getLogger(__name__)

SCHEMA = "ferkit.prompt_descriptions/1"
QUESTION = "What are the most useful visual features to distinguish the facial expression of {class}?"
H2_PREFIX = "a photo of a person making a facial expression of"
TEMPLATES = {"h1": "a photo of {c}.", "h2": H2_PREFIX + " {c}.", "h3": H2_PREFIX + " {c}, {desc}"}
ADJECTIVES = {"neutral": "neutral", "happiness": "happy", "sadness": "sad", "surprise": "surprised", "fear": "fearful",
              "disgust": "disgusted", "anger": "angry", "contempt": "contemptuous"}


def builtin_descriptions_path() -> Path:
    """Path of the shipped ``fer_descriptions.json`` (package data)."""
    return Path(str(resources.files("ferkit") / "resources" / "prompts" / "fer_descriptions.json"))


def resolve_descriptions_path(spec: str | os.PathLike) -> Path:
    path = builtin_descriptions_path() if str(spec) == "builtin" else Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(f"descriptions file not found: {path} (use descriptions='builtin' for the shipped file, "
                          "or regenerate one with `ferkit prompts generate`)")
    return path


def validate_descriptions(doc: Any, where: str = "descriptions") -> dict[str, str]:
    """Check a descriptions document against the schema; return ``{canonical class: description}``."""
    if not isinstance(doc, Mapping) or doc.get("schema") != SCHEMA:
        raise ConfigError(f"{where}: expected a JSON object with \"schema\": \"{SCHEMA}\"")
    descs = doc.get("descriptions")
    if not isinstance(descs, Mapping) or not descs:
        raise ConfigError(f"{where}: \"descriptions\" must map class names to one-sentence descriptions")
    out = {}
    for name, text in descs.items():
        try:
            key = canonical(name)
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
        if not isinstance(text, str) or not text.strip().endswith("."):
            raise ConfigError(f"{where}: description of {name!r} must be a non-empty sentence ending in '.'")
        out[key] = " ".join(text.split())
    return out


def load_descriptions(spec: str | os.PathLike = "builtin") -> tuple[dict[str, str], str]:
    """Read and validate a descriptions file (``"builtin"`` or a path). Returns (descriptions, file SHA-256)."""
    path = resolve_descriptions_path(spec)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"descriptions file {path} is not valid JSON: {e}") from None
    return validate_descriptions(doc, str(path)), sha256_file(path)


def class_word(name: str, style: str = "noun") -> str:
    """Word for a canonical class inside prompts: the noun itself or its adjective (``happiness`` -> ``happy``)."""
    return ADJECTIVES[name] if style == "adjective" else name


def hard_prompt(name: str, config: str = "h3", descriptions: Mapping[str, str] | None = None,
                style: str = "noun") -> str:
    """Hard prompt of class ``name`` in configuration ``h1`` / ``h2`` / ``h3``."""
    word = class_word(name, style)
    if config != "h3":
        return TEMPLATES[config].format(c=word)
    if not descriptions or name not in descriptions:
        raise ConfigError(f"hard_prompt='h3' needs a description for {name!r}; the descriptions file has "
                          f"{sorted(descriptions or {})}")
    desc = descriptions[name]
    return TEMPLATES["h3"].format(c=word, desc=desc[0].lower() + desc[1:])


def soft_prompt(name: str, n_ctx: int, suffix: str = "class", hard: str | None = None, style: str = "noun") -> str:
    """CoOp soft prompt text: ``n_ctx`` placeholder tokens ("X") then ``{c}.`` (or the hard prompt's text)."""
    tail = hard if suffix == "hard" else f"{class_word(name, style)}."
    if tail is None:
        raise ValueError("soft_suffix='hard' needs the hard prompt text")
    return "X " * n_ctx + tail

