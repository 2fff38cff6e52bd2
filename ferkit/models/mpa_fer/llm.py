"""Regenerate the class descriptions of the h3 hard prompts with any OpenAI-compatible chat endpoint
(docs/mpa_fer.md#d4-descriptions-file).

One ``POST {base_url}/chat/completions`` per class with the paper's question; the raw answer is kept, condensed to one
lower-case sentence ending in "." and shortened at a clause/word boundary until the h3 prompt fits the token budget.
Answers are cached on disk (keyed by endpoint, model, temperature, system text and question), so a rerun makes no
request. Training and inference never call this: they read the resulting JSON file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferkit.checkpoint import atomic_write_bytes
from ferkit.errors import FerkitError
from ferkit.models.mpa_fer.prompts import QUESTION, SCHEMA, class_word, hard_prompt

log = logging.getLogger(__name__)

SYSTEM = ("You describe facial expressions for an image classifier. Answer with visible facial cues only (brows, "
          "eyes, eyelids, cheeks, nose, mouth, lips, wrinkles), in a single sentence of at most 35 words.")
_LEAD_IN = re.compile(r"^.*?\b(?:include|includes|are|is)\b\s*:?\s*", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


@dataclass(frozen=True)
class ChatEndpoint:
    """An OpenAI-compatible chat-completions endpoint."""

    base_url: str
    model: str
    api_key: str | None = None
    temperature: float = 0.0
    timeout: float = 60.0

    def public(self) -> str:
        """Scheme, host and path of the endpoint (never the key)."""
        u = urllib.parse.urlsplit(self.base_url)
        return f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}{u.path}"


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ask(endpoint: ChatEndpoint, question: str, system: str = SYSTEM) -> str:
    """Send one chat request; return ``choices[0].message.content``.

    Raises:
        FerkitError: offline mode for a non-local endpoint, HTTP/connection errors, or an unexpected response.
    """
    if os.environ.get("FERKIT_OFFLINE") == "1" and not _is_loopback(endpoint.base_url):
        raise FerkitError(f"FERKIT_OFFLINE=1: refusing to contact {endpoint.public()} (unset it to allow network "
                          "access; local endpoints on 127.0.0.1/localhost are always allowed)")
    body = {"model": endpoint.model, "temperature": endpoint.temperature,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}]}
    headers = {"Content-Type": "application/json"}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    req = urllib.request.Request(endpoint.base_url.rstrip("/") + "/chat/completions",
                                 data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=endpoint.timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:300]
        raise FerkitError(f"{endpoint.public()} answered HTTP {e.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise FerkitError(f"cannot reach {endpoint.public()}: {getattr(e, 'reason', e)}") from None
    except json.JSONDecodeError as e:
        raise FerkitError(f"{endpoint.public()} returned invalid JSON: {e}") from None
    try:
        return str(data["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        raise FerkitError(f"{endpoint.public()} returned no choices[0].message.content: {str(data)[:200]}") from None


def condense(answer: str) -> str:
    """One lower-case sentence ending in "." from a free-form answer (lead-in, markdown and bullets removed)."""
    text = re.sub(r"[*_`#]+", "", answer)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines and lines[0].rstrip().endswith(":"):
        lines = lines[1:]  # "The most useful visual features ... include:"
    items = [_BULLET.sub("", ln) for ln in lines]
    if len(items) == 1 and re.search(r"most useful visual features", items[0], re.IGNORECASE):
        items = [_LEAD_IN.sub("", items[0], count=1)]
    parts = [re.sub(r"\s*:\s*", " ", it).strip().rstrip(".;,") for it in items]
    sentence = ", ".join(p for p in parts if p)
    sentence = re.sub(r"\.\s+", ", ", " ".join(sentence.split())).lower().strip(" .,;")
    if not sentence:
        raise FerkitError(f"the model's answer has no usable description: {answer[:200]!r}")
    return sentence + "."


def fit_budget(name: str, desc: str, max_tokens: int = 77, style: str = "noun") -> tuple[str, bool]:
    """Shorten ``desc`` (drop trailing clauses, then words) until the h3 prompt of ``name`` fits ``max_tokens``
    (SOT/EOT included). Returns (description, shortened?)."""
    from ferkit.clip.tokenizer import count_tokens

    def fits(d: str) -> bool:
        return count_tokens(hard_prompt(name, "h3", {name: d}, style)) <= max_tokens

    if fits(desc):
        return desc, False
    body = desc.rstrip(".")
    clauses = [c for c in re.split(r"(?<=[,;])\s+", body)]
    while len(clauses) > 1 and not fits(" ".join(clauses).rstrip(",;") + "."):
        clauses.pop()
    words = " ".join(clauses).rstrip(",;").split()
    while len(words) > 1 and not fits(" ".join(words) + "."):
        words.pop()
    return " ".join(words).rstrip(",;") + ".", True


def _cache_path(cache_dir: Path, endpoint: ChatEndpoint, system: str, question: str) -> Path:
    key = json.dumps({"url": endpoint.public(), "model": endpoint.model, "temperature": endpoint.temperature,
                      "system": system, "question": question}, sort_keys=True)
    return cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def cached_ask(endpoint: ChatEndpoint, question: str, cache_dir: Path | None, refresh: bool = False) -> str:
    """:func:`ask` through an on-disk cache of raw answers."""
    path = _cache_path(cache_dir, endpoint, SYSTEM, question) if cache_dir else None
    if path and path.is_file() and not refresh:
        return json.loads(path.read_text(encoding="utf-8"))["answer"]
    answer = ask(endpoint, question)
    if path:
        record = {"endpoint": endpoint.public(), "model": endpoint.model, "question": question, "answer": answer}
        atomic_write_bytes(path, lambda f: f.write(json.dumps(record, indent=1).encode()))
    return answer


def generate_descriptions(classes: Sequence[str], endpoint: ChatEndpoint, *, cache_dir: Path | None = None,
                          refresh: bool = False, max_prompt_tokens: int = 77, style: str = "noun") -> dict[str, Any]:
    """Ask the paper's question for each canonical class; return a descriptions document (schema:
    docs/mpa_fer.md#d4-descriptions-file)."""
    from ferkit import __version__

    descriptions, raw = {}, {}
    for name in classes:
        question = QUESTION.format(**{"class": class_word(name, style)})
        raw[name] = cached_ask(endpoint, question, cache_dir, refresh)
        desc, cut = fit_budget(name, condense(raw[name]), max_prompt_tokens, style)
        if cut:
            log.warning("description of %s shortened to fit %d prompt tokens: %r", name, max_prompt_tokens, desc)
        descriptions[name] = desc
    generator = {"endpoint": endpoint.public(), "model": endpoint.model, "temperature": endpoint.temperature,
                 "system": SYSTEM, "date": _dt.date.today().isoformat(), "ferkit_version": __version__}
    return {"schema": SCHEMA, "question": QUESTION, "generator": generator, "descriptions": descriptions, "raw": raw}


def write_descriptions(doc: dict[str, Any], path: str | os.PathLike) -> Path:
    """Atomically write a descriptions document as JSON."""
    path = Path(path)
    atomic_write_bytes(path, lambda f: f.write((json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()))
    return path
