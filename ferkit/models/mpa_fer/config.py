"""MPA-FER options. Defaults and the numbers #n: docs/mpa_fer.md#d10-options-and-defaults; every alternative is a
value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ferkit.errors import ConfigError

PROTO_SUBSETS = (1, 4, 16, 32, 64)  # paper Table 3 (plus "all")


@dataclass(frozen=True)
class MPAFERConfig:
    """Architecture, prompts, losses and ablation switches of MPA-FER.

    Attributes:
        clip_arch: frozen CLIP shape: ``"ViT-B-16"``, ``"ViT-L-14"`` or ``"tiny"`` (tests).
        n_ctx: soft text context tokens M (shared by all classes unless ``csc``).
        n_vprompt: visual prompt tokens per layer N_p, appended at every layer; 0 = no visual prompts (CoOp).
        init_std: std of the normal initialisation of both prompt kinds.
        csc: class-specific context (#14).
        vp_first: where the first layer's prompts enter: after ``ln_pre`` (default) or before it (IVLP) (#13).
        hard_prompt: hard-prompt configuration: ``h1`` "a photo of {c}.", ``h2`` "... facial expression of {c}.",
            ``h3`` h2 + LLM description (#18).
        descriptions: ``"builtin"`` (shipped ``fer_descriptions.json``) or a path to a file of the same schema (#19).
        class_words: ``"noun"`` (happiness) or ``"adjective"`` (happy) in all prompts (#17).
        soft_suffix: text after the learned context: ``"class"`` = CoOp "{c}." (default); ``"hard"`` = the hard
            prompt's text (ferkit's reading of Table 2's configurations without alignment).
        text_align: soft-hard prompt alignment L_ta + L_pa (Table 1 row 4).
        proto_align: prototype-guided visual alignment L_v (Table 1 row 3).
        local_align: global + top-k local logits (Table 1 row 5); False = global cosine only (CoOp).
        ta_pool: token-level representation: ``"mean"`` of content tokens or per-``"position"`` cosine (#1).
        align_dir: softmax orientation of L_ta / L_pa: ``"hard_anchor"`` (Eq. 1), ``"soft_anchor"``,
            ``"symmetric"`` (#2).
        pa_loss: ``"ce"`` (Eq. 3) or ``"l1"`` between normalised features (PromptSRC-style ablation) (#3).
        tau: temperature of L_ta and L_pa (#4).
        logit_scale: ``"clip"`` = the frozen CLIP temperature (100 for OpenAI weights) or a number (1.0 = Eq. 10) (#5).
        local_feat: patch features: ``"token"`` (ln_post + proj) or ``"value"`` (MaskCLIP value path) (#6).
        local_sim: ``"cos"`` or ``"dot"`` (raw inner product, Eq. 8 literally) (#7).
        topk: patches kept per class in the local similarity (k = min(topk, patches)) (#8).
        v_loss: prototype matching function: ``"cos"`` (1 - cos) or ``"l1"`` (#9).
        v_reduction: ``"mean"`` over the batch or ``"sum"`` (Eq. 7 literally) (#10).
        proto_norm: ``"per_image"`` (normalise, mean, renormalise) or ``"raw_mean"`` (Eq. 6 literally) (#11).
        n_proto: training images per class for the prototypes: ``"all"`` or a count (Table 3: 1/4/16/32/64) (#12).
        proto_seed: seed of the per-class subset draw.
        beta, gamma: weights of L_t and L_v in the total loss (Eq. 12).
        clip_quick_gelu: MLP activation of the frozen CLIP (True for OpenAI weights).
    """

    clip_arch: str = "ViT-B-16"
    n_ctx: int = 10
    n_vprompt: int = 8
    init_std: float = 0.02
    csc: bool = False
    vp_first: Literal["after_ln_pre", "before_ln_pre"] = "after_ln_pre"
    hard_prompt: Literal["h1", "h2", "h3"] = "h3"
    descriptions: str = "builtin"
    class_words: Literal["noun", "adjective"] = "noun"
    soft_suffix: Literal["class", "hard"] = "class"
    text_align: bool = True
    proto_align: bool = True
    local_align: bool = True
    ta_pool: Literal["mean", "position"] = "mean"
    align_dir: Literal["hard_anchor", "soft_anchor", "symmetric"] = "hard_anchor"
    pa_loss: Literal["ce", "l1"] = "ce"
    tau: float = 0.07
    logit_scale: float | str = "clip"
    local_feat: Literal["token", "value"] = "token"
    local_sim: Literal["cos", "dot"] = "cos"
    topk: int = 16
    v_loss: Literal["cos", "l1"] = "cos"
    v_reduction: Literal["mean", "sum"] = "mean"
    proto_norm: Literal["per_image", "raw_mean"] = "per_image"
    n_proto: int | str = "all"
    proto_seed: int = 0
    beta: float = 1.0
    gamma: float = 1.0
    clip_quick_gelu: bool = True

    def validate(self) -> None:
        from ferkit.clip.archs import get_arch

        try:
            get_arch(self.clip_arch)
        except ValueError as e:
            raise ConfigError(f"config key 'clip_arch': {e}") from None
        if self.n_ctx < 1 or self.n_vprompt < 0 or self.topk < 1:
            raise ConfigError("n_ctx and topk must be >= 1 and n_vprompt >= 0")
        if isinstance(self.logit_scale, str) and self.logit_scale != "clip":
            raise ConfigError(f"config key 'logit_scale': {self.logit_scale!r} is neither 'clip' nor a number")
        bad_str = isinstance(self.n_proto, str) and self.n_proto != "all"
        if bad_str or isinstance(self.n_proto, int) and self.n_proto < 1:
            raise ConfigError(f"config key 'n_proto': {self.n_proto!r} must be 'all' or a positive count "
                              f"(the paper uses {', '.join(map(str, PROTO_SUBSETS))} and all)")
        if self.tau <= 0:
            raise ConfigError("config key 'tau' must be > 0")
