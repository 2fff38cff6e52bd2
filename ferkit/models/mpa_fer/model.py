"""MPA-FER: Ma et al., "Multimodal Prompt Alignment for Facial Expression Recognition", ICCV 2025 (arXiv 2506.21017).

No official code exists; this follows ferkit's design decisions (docs/mpa_fer.md#design-decisions). A fully frozen
CLIP gets a shared learnable text context (CoOp) aligned with LLM-enriched hard prompts (L_ta + L_pa), deep visual
prompts anchored to frozen class prototypes (L_v), and global + top-k local image-text matching for the logits. Only
the prompts (``ctx``, ``vprompt``) train.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ferkit.clip.archs import get_arch
from ferkit.clip.tokenizer import tokenize
from ferkit.constants import CLIP_MEAN, CLIP_STD
from ferkit.labels import DATASET_ORDERS
from ferkit.models.base import FerModel
from ferkit.models.mpa_fer import encoders, losses
from ferkit.models.mpa_fer import prototypes as proto
from ferkit.models.mpa_fer.config import MPAFERConfig
from ferkit.models.mpa_fer.prompts import hard_prompt, soft_prompt

log = logging.getLogger(__name__)


class MPAFER(FerModel):
    """MPA-FER classifier on a frozen open_clip ``CLIP``.

    Input: (B, 3, 224, 224) CLIP-normalised RGB. Output: logits (B, C).

    Args:
        config: options (:class:`MPAFERConfig`). clip: a frozen open_clip ``CLIP`` of shape ``config.clip_arch``.
        label_names / num_classes: class order (default RAF-DB order). descriptions: ``{class: sentence}`` for h3.
        clip_identity: ``{"arch", "sha256", ...}`` of the CLIP weights. descriptions_sha256: of the descriptions file.
    """

    model_name = "mpa_fer"  # create_model sets the registered variant's name

    def __init__(self, config: MPAFERConfig, clip: nn.Module, label_names=None, num_classes: int | None = None,
                 descriptions: Mapping[str, str] | None = None, clip_identity: dict[str, Any] | None = None,
                 descriptions_sha256: str | None = None):
        super().__init__()
        config.validate()
        self.config = config
        self._set_labels(label_names, num_classes, DATASET_ORDERS["rafdb"])
        arch = get_arch(config.clip_arch)
        self.data_config = {"input_size": arch.image_size, "mean": CLIP_MEAN, "std": CLIP_STD,
                            "interpolation": "bicubic", "family": "mpa_fer"}
        self.clip = clip.requires_grad_(False).eval()
        self.clip_identity = dict(clip_identity or {"arch": arch.name, "sha256": None})
        self.descriptions = dict(descriptions or {})
        self.descriptions_sha256 = descriptions_sha256
        self.allow_clip_mismatch = False
        self.embed_dim = clip.text_projection.shape[1]
        self.num_features = self.embed_dim
        dev = clip.token_embedding.weight.device
        d_t, vis = clip.ln_final.weight.shape[0], clip.visual
        self.ctx = nn.Parameter(torch.empty(*self._ctx_shape(d_t), device=dev))
        n_layers, width = len(vis.transformer.resblocks), vis.conv1.weight.shape[0]
        self.vprompt = (nn.Parameter(torch.empty(n_layers, config.n_vprompt, width, device=dev))
                        if config.n_vprompt else None)
        self.reset_prompts()
        self.register_buffer("prototypes", None, persistent=False)
        self.prototype_key: str | None = None
        self._build_prompt_tokens()

    # ---- prompts -----------------------------------------------------------------------------------------------
    def _ctx_shape(self, d_t: int) -> tuple[int, ...]:
        m = self.config.n_ctx
        return (self.num_classes, m, d_t) if self.config.csc else (m, d_t)

    def reset_prompts(self) -> None:
        """Draw ``ctx`` and ``vprompt`` from N(0, init_std^2)."""
        nn.init.normal_(self.ctx, std=self.config.init_std)
        if self.vprompt is not None:
            nn.init.normal_(self.vprompt, std=self.config.init_std)

    def hard_texts(self) -> list[str]:
        cfg = self.config
        return [hard_prompt(c, cfg.hard_prompt, self.descriptions, cfg.class_words) for c in self.label_names]

    def soft_texts(self) -> list[str]:
        cfg = self.config
        hard = self.hard_texts() if cfg.soft_suffix == "hard" else [None] * self.num_classes
        return [soft_prompt(c, cfg.n_ctx, cfg.soft_suffix, h, cfg.class_words) for c, h in zip(self.label_names, hard)]

    def _build_prompt_tokens(self) -> None:
        """Token ids of the soft prompts (and hard prompts when needed); buffers, not saved."""
        ctx_len = self.clip.positional_embedding.shape[0]
        self.register_buffer("soft_tokens", tokenize(self.soft_texts(), ctx_len), persistent=False)
        needs_hard = self.config.text_align or self.config.soft_suffix == "hard"
        hard = tokenize(self.hard_texts(), ctx_len) if needs_hard else None
        self.register_buffer("hard_tokens", hard, persistent=False)
        self._text_cache: tuple | None = None
        self._hard_cache: tuple | None = None

    def reset_head(self, label_names) -> None:
        """Switch to another label set (fine-tuning): new class prompts; class-specific context and prototypes reset."""
        self._set_labels(label_names, None, ())
        if self.config.csc:
            self.ctx = nn.Parameter(torch.empty(*self._ctx_shape(self.ctx.shape[-1]), device=self.ctx.device))
            nn.init.normal_(self.ctx, std=self.config.init_std)
        self.prototypes, self.prototype_key = None, None
        self._build_prompt_tokens()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The learned tensors: ``ctx`` and ``vprompt`` (when visual prompts are on). Everything else is frozen."""
        return [p for p in (self.ctx, self.vprompt) if p is not None]

    # ---- text branch -------------------------------------------------------------------------------------------
    def soft_prompt_embeddings(self) -> torch.Tensor:
        """t_c: soft prompt token embeddings with the context spliced in at positions 1..M. -> (C, L, D_t)."""
        emb = self.clip.token_embedding(self.soft_tokens)  # (C, L, D_t), frozen table
        m = self.config.n_ctx
        ctx = self.ctx if self.config.csc else self.ctx.unsqueeze(0).expand(self.num_classes, -1, -1)
        return torch.cat([emb[:, :1], ctx.to(emb.dtype), emb[:, 1 + m:]], dim=1)

    def encode_text_embeddings(self, emb: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """θ: frozen text encoder on token embeddings (n, L, D_t) with their ids (n, L) -> (n, E)."""
        return encoders.encode_text_embeddings(self.clip, emb, tokens)

    def text_features(self) -> torch.Tensor:
        """θ(t_c) for all classes (C, E), unnormalised. Cached while no gradient is recorded (inference); the cache
        follows ``ctx`` (its version counter, device and dtype) and is dropped by ``train()``."""
        if torch.is_grad_enabled():
            return self.encode_text_embeddings(self.soft_prompt_embeddings(), self.soft_tokens)
        key = (self.ctx._version, self.ctx.data_ptr(), self.ctx.device, self.ctx.dtype)
        if self._text_cache is None or self._text_cache[0] != key:
            feats = self.encode_text_embeddings(self.soft_prompt_embeddings(), self.soft_tokens)
            self._text_cache = (key, feats)
        return self._text_cache[1]

    def hard_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard prompts: token embeddings t*_d (C, L, D_t) and θ(t*_d) (C, E); constant, computed once per device."""
        if self.hard_tokens is None:
            raise RuntimeError("hard prompts are off (text_align=False)")
        dev = self.hard_tokens.device
        if self._hard_cache is None or self._hard_cache[0] != dev:
            with torch.no_grad():
                emb = self.clip.token_embedding(self.hard_tokens)
                self._hard_cache = (dev, emb, self.encode_text_embeddings(emb, self.hard_tokens))
        return self._hard_cache[1], self._hard_cache[2]

    # ---- vision branch -----------------------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor, use_prompts: bool = True,
                     local: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prompted image encoder. (B, 3, H, W) -> z_g (B, E), Z_l (B, N_l, E) (None when ``local`` is False).

        ``use_prompts=False`` is the plain frozen CLIP (``z_g`` equals ``clip.encode_image``).
        """
        prompts = self.vprompt if use_prompts else None
        kind = self.config.local_feat if local else None
        return encoders.encode_image(self.clip.visual, images, prompts,
                                     before_ln_pre=self.config.vp_first == "before_ln_pre", local=kind)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Global image features z_g (B, E) of the prompted encoder (unnormalised; e.g. for t-SNE)."""
        return self.encode_image(images, local=False)[0]

    # ---- logits and losses -------------------------------------------------------------------------------------
    def logit_scale(self) -> torch.Tensor | float:
        s = self.config.logit_scale
        return self.clip.logit_scale.exp() if s == "clip" else float(s)

    def logits_from_features(self, z_g: torch.Tensor, z_l: torch.Tensor | None, text: torch.Tensor) -> torch.Tensor:
        """Eq. 10 scaled: s * (cos(z_g, T) + top-k local similarity). (B, E), (B, N_l, E), (C, E) -> (B, C)."""
        sim = losses.global_similarity(z_g, text)
        if self.config.local_align:
            sim = sim + losses.topk_local_similarity(z_l, text, self.config.topk, self.config.local_sim)
        return self.logit_scale() * sim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 224, 224) CLIP-normalised -> logits (B, C)."""
        z_g, z_l = self.encode_image(images, local=self.config.local_align)
        return self.logits_from_features(z_g, z_l, self.text_features())

    def training_loss(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Eq. 12: L = CE + beta (L_ta + L_pa) + gamma L_v. Text features are computed once for all classes.

        Returns (loss, logits (B, C), parts: floats of the active terms ``ce``, ``ta``, ``pa``, ``v``).
        """
        cfg = self.config
        e_soft = self.soft_prompt_embeddings()  # (C, L, D_t)
        text = self.encode_text_embeddings(e_soft, self.soft_tokens)  # (C, E), once per step for all classes
        z_g, z_l = self.encode_image(images, local=cfg.local_align)
        logits = self.logits_from_features(z_g, z_l, text)
        parts = {"ce": F.cross_entropy(logits, targets)}
        total = parts["ce"]
        if cfg.text_align:
            e_hard, t_hard = self.hard_features()
            parts["ta"] = losses.token_alignment_loss(e_soft, self.soft_tokens, e_hard,
                                                      self.hard_tokens, tau=cfg.tau, pool=cfg.ta_pool,
                                                      direction=cfg.align_dir)
            parts["pa"] = losses.prompt_alignment_loss(text, t_hard, tau=cfg.tau, direction=cfg.align_dir,
                                                       kind=cfg.pa_loss)
            total = total + cfg.beta * (parts["ta"] + parts["pa"])
        if cfg.proto_align:
            if self.prototypes is None:
                raise RuntimeError("proto_align is on but no prototypes are set: call model.prepare_training("
                                   "train_dataset, cache_dir=...) before training (or set proto_align=False)")
            parts["v"] = losses.prototype_loss(z_g, self.prototypes, targets, kind=cfg.v_loss,
                                               reduction=cfg.v_reduction, normalize=cfg.proto_norm == "per_image")
            total = total + cfg.gamma * parts["v"]
        return total, logits, {k: float(v.detach()) for k, v in parts.items()}

    # ---- training preparation ----------------------------------------------------------------------------------
    def prototype_fields(self, train_dataset: Any, transform: Any) -> dict[str, Any]:
        """Everything the prototypes depend on (the cache key is their hash)."""
        cfg = self.config
        return {"clip_arch": self.clip_identity.get("arch"), "clip_sha256": self.clip_identity.get("sha256"),
                "data": proto.dataset_fingerprint(train_dataset), "label_names": list(self.label_names),
                "n_proto": cfg.n_proto, "seed": cfg.proto_seed, "norm": cfg.proto_norm, "transform": repr(transform)}

    def prepare_training(self, train_dataset: Any, *, cache_dir: str | os.PathLike | None = None,
                         device: str | torch.device | None = None, batch_size: int = 64, num_workers: int = 0) -> None:
        """Set the class prototypes (un-prompted frozen CLIP over ``n_proto`` images per class, evaluation transform),
        from the on-disk cache when the same inputs were seen before. No-op when ``proto_align`` is off.

        Args:
            train_dataset: follows the data contract (``label_names``, ``targets``, ``__getitem__`` -> (PIL, target)
                when its ``transform`` is None; it is not modified).
            cache_dir: folder of the prototype cache (default ``$FERKIT_HOME/cache/prototypes``).
        """
        if not self.config.proto_align:
            return
        transform = proto.eval_transform(self.data_config)
        fields = self.prototype_fields(train_dataset, transform)
        key = proto.cache_key(fields)
        if self.prototypes is not None and self.prototype_key == key:
            return
        device = torch.device(device) if device is not None else self.ctx.device
        path = proto.cache_file(cache_dir or _default_cache_dir(), key)
        protos = proto.read_cached(path, key)
        if protos is None:
            targets = proto.model_targets(train_dataset, self.label_names)
            subsets = proto.subset_indices(targets, self.num_classes, self.config.n_proto, self.config.proto_seed)
            log.info("computing MPA-FER prototypes over %d images (%s per class)", sum(map(len, subsets)),
                     self.config.n_proto)
            protos = proto.compute_prototypes(self._plain_global, train_dataset, subsets, transform=transform,
                                              norm=self.config.proto_norm, device=device, batch_size=batch_size,
                                              num_workers=num_workers)
            proto.write_cached(path, key, protos, fields, [len(s) for s in subsets])
        else:
            log.info("MPA-FER prototypes from cache %s", path)
        self.set_prototypes(protos, key)

    def _plain_global(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode_image(images, use_prompts=False, local=False)[0]

    def set_prototypes(self, protos: torch.Tensor, key: str | None = None) -> None:
        """Install prototypes (C, E) (from ``prepare_training`` or a training checkpoint)."""
        if tuple(protos.shape) != (self.num_classes, self.embed_dim):
            raise ValueError(f"prototypes must be ({self.num_classes}, {self.embed_dim}), got {tuple(protos.shape)}")
        self.prototypes = protos.to(self.ctx.device, torch.float32)
        self.prototype_key = key

    # ---- mode and checkpoints ----------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> MPAFER:
        """Switch the prompts' mode; CLIP always stays in eval mode. Entering training drops the text cache."""
        super().train(mode)
        self.clip.eval()
        if mode:
            self._text_cache = None
        return self

    def exportable(self) -> nn.Module:
        """Images -> logits with the class text features as a constant buffer (ONNX export, gradient maps)."""
        from ferkit.models.mpa_fer.export import FoldedTextModel

        return FoldedTextModel(self)

    def prepare_inference(self) -> MPAFER:
        """Eval mode and the class text features computed now, so that timing / MAC counts see only the per-image
        cost (inference = prompted image encoder + two products with the cached (C, E) text features)."""
        self.eval()
        with torch.no_grad():
            self.text_features()
        return self

    def checkpoint_state_dict(self, include_prototypes: bool = False) -> dict[str, torch.Tensor]:
        """Only the learned tensors (``ctx``, ``vprompt``); ``prototypes`` too when asked (training checkpoints)."""
        out = {"ctx": self.ctx.detach().cpu()}
        if self.vprompt is not None:
            out["vprompt"] = self.vprompt.detach().cpu()
        if include_prototypes and self.prototypes is not None:
            out["prototypes"] = self.prototypes.detach().cpu()
        return out

    def checkpoint_dict(self, include_prototypes: bool = False, **meta: Any) -> dict[str, Any]:
        """ferkit checkpoint: learned tensors, label names, options, and in ``meta`` the CLIP identity and the
        descriptions file SHA-256 (never the CLIP weights)."""
        out = super().checkpoint_dict(**meta)
        out["state_dict"] = self.checkpoint_state_dict(include_prototypes)
        out["meta"] = {**meta, "clip": dict(self.clip_identity), "descriptions_sha256": self.descriptions_sha256,
                       "hard_prompts": self.hard_texts() if self.hard_tokens is not None else None}
        if "prototypes" in out["state_dict"]:
            out["meta"]["prototype_key"] = self.prototype_key
        return out


def _default_cache_dir() -> str:
    from ferkit.paths import cache_subdir

    return str(cache_subdir("cache", "prototypes"))

