"""CLIP's BPE tokenizer, from the vocabulary file shipped inside the ``open_clip_torch`` wheel (no download).

Token ids: ``[SOT] text tokens [EOT]`` zero-padded to the context length (77); SOT = 49406, EOT = 49407.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache

import torch

log = logging.getLogger(__name__)

SOT_ID = 49406
EOT_ID = 49407
CONTEXT_LENGTH = 77


def require_open_clip():
    """Import ``open_clip`` or raise an actionable error (it is the ``clip`` extra)."""
    try:
        import open_clip
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("MPA-FER needs open_clip_torch (its CLIP model code and BPE vocabulary): "
                          "pip install 'ferkit[clip]'") from e
    return open_clip


@lru_cache(maxsize=1)
def get_tokenizer():
    """The shared ``open_clip.tokenizer.SimpleTokenizer`` (reads the wheel's ``bpe_simple_vocab_16e6.txt.gz``)."""
    require_open_clip()
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def encode(text: str) -> list[int]:
    """BPE ids of ``text`` without SOT / EOT (ftfy + HTML unescape + whitespace collapse + lower-case first)."""
    return get_tokenizer().encode(text)


def count_tokens(text: str) -> int:
    """Length of ``text`` as CLIP sees it, SOT and EOT included."""
    return len(encode(text)) + 2


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, *, warn: bool = True) -> torch.Tensor:
    """Token ids ``(N, context_length)`` int64. Over-long texts are cut and end in EOT (OpenAI's ``truncate=True``);
    each cut is logged as a warning unless ``warn=False``."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    tok = get_tokenizer()
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [SOT_ID, *tok.encode(text), EOT_ID]
        if len(ids) > context_length:
            if warn:
                log.warning("prompt has %d tokens (limit %d including SOT/EOT) and is truncated: %r",
                            len(ids), context_length, text)
            ids = ids[:context_length]
            ids[-1] = EOT_ID
        out[i, :len(ids)] = torch.tensor(ids)
    return out


def eot_index(tokens: torch.Tensor) -> torch.Tensor:
    """Position of EOT in each row of ``tokens`` (N, L): EOT has the largest id. Returns (N,) int64."""
    return tokens.argmax(dim=-1)
