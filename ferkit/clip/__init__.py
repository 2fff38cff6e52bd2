"""Frozen CLIP for MPA-FER: open_clip model definitions, local weights (OpenAI or open_clip formats), BPE tokenizer.

    >>> from ferkit.clip import load_clip, tokenize
    >>> clip, identity = load_clip("ViT-B-16", "ViT-B-16.pt")   # or weights="random" for tests
    >>> clip.encode_text(tokenize(["a photo of happiness."]))

Needs the ``clip`` extra (``open_clip_torch``); nothing is downloaded at run time.
"""

from ferkit.clip.archs import ARCHS, OPENAI_SHA256, ClipArch, arch_from_state_dict, get_arch
from ferkit.clip.loader import RANDOM, build_clip, load_clip, read_clip_state_dict
from ferkit.clip.tokenizer import EOT_ID, SOT_ID, count_tokens, encode, eot_index, tokenize
from ferkit.constants import CLIP_MEAN, CLIP_STD

__all__ = ["ARCHS", "CLIP_MEAN", "CLIP_STD", "OPENAI_SHA256", "ClipArch", "arch_from_state_dict", "get_arch",
           "RANDOM", "build_clip", "load_clip", "read_clip_state_dict", "EOT_ID", "SOT_ID", "count_tokens",
           "encode", "eot_index", "tokenize"]
