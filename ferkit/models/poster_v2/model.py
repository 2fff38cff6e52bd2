"""POSTER++ (POSTER V2): Mao et al., "POSTER V2: A simpler and stronger facial expression recognition network",
arXiv 2301.12149. Computes exactly what the official code (github.com/Talented-Q/POSTER_V2, MIT) computes, without
its dead modules; ablations of the paper's Table 8 and Fig. 6 are config options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ferkit.errors import ConfigError
from ferkit.models.base import FerModel
from ferkit.models.poster_v2.fusion import CrossFusion
from ferkit.models.poster_v2.ir50 import IR50
from ferkit.models.poster_v2.mobilefacenet import MobileFaceNet
from ferkit.models.poster_v2.vit import SEGate, TokenFuser

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DIMS = (64, 128, 256)  # channels per scale
HEADS = (2, 4, 8)  # cross-attention heads per scale
MAPS = (28, 14, 7)  # feature-map side per scale (for the 112x112 working resolution)


@dataclass(frozen=True)
class PosterV2Config:
    """Architecture options. Defaults reproduce the official code.

    Attributes:
        window_size: window side per scale; each must divide (28, 14, 7). Official: the whole map.
        attention: ``"window"`` (official W-MCSA) or ``"vanilla"`` (Table 8: global, projected query, no position bias).
        query_proj: project landmark queries with a Linear (paper Eq. 4); the official code does not.
        multi_scale: False = Table 8 "w/o multi-scale": only the last scale (7x7 maps).
        use_vit: False = Table 8 "w/o ViT": mean-pooled tokens of the scales are summed instead of the ViT.
        cross_fusion: False = Table 8 "w/o cross-fusion": image and landmark tokens go to the ViT side by side.
        vit_depth, vit_heads, embed_dim: token fuser size (Fig. 6 varies the depth: 2/4/6/8).
        layer_scale: initial gamma of the fusion residuals. drop_path: max of linspace(0, drop_path, 5); scales get
            the first three values (0, 0.125, 0.25 officially).
        landmark_bn_mode: ``"eval"`` keeps the frozen landmark BatchNorms in eval mode while training (ferkit);
            ``"train"`` reproduces the official quirk (their running statistics drift during training).
    """

    window_size: tuple[int, int, int] = MAPS
    attention: Literal["window", "vanilla"] = "window"
    query_proj: bool = False
    multi_scale: bool = True
    use_vit: bool = True
    cross_fusion: bool = True
    vit_depth: int = 2
    vit_heads: int = 8
    embed_dim: int = 768
    layer_scale: float = 1e-5
    drop_path: float = 0.5
    landmark_bn_mode: Literal["eval", "train"] = "eval"

    def validate(self) -> None:
        for w, m in zip(self.window_size, MAPS):
            if w < 1 or m % w:
                raise ConfigError(f"window_size {tuple(self.window_size)}: each window must divide its map {MAPS}")
        if self.vit_depth < 1 or self.embed_dim % self.vit_heads:
            raise ConfigError("vit_depth must be >= 1 and embed_dim divisible by vit_heads")


def _tokenizer(scale: int, in_c: int, dim: int) -> nn.Sequential:
    """Per-scale token embedder to a 7x7 grid: two / one stride-2 3x3 convs, or a 1x1 conv (official embed_q/k/v)."""
    if scale == 0:
        return nn.Sequential(nn.Conv2d(in_c, dim, 3, 2, 1), nn.Conv2d(dim, dim, 3, 2, 1))
    if scale == 1:
        return nn.Sequential(nn.Conv2d(in_c, dim, 3, 2, 1))
    return nn.Sequential(nn.Conv2d(in_c, dim, 1))


class PosterV2(FerModel):
    """POSTER++ classifier. Input (B, 3, H, W), ImageNet-normalised RGB (224x224 in the official pipeline; any size
    works, both streams see a nearest-resized 112x112 copy). Output: logits (B, num_classes)."""

    def __init__(self, config: PosterV2Config | None = None, label_names=None, num_classes: int | None = None):
        super().__init__()
        from ferkit.labels import DATASET_ORDERS

        cfg = config or PosterV2Config()
        cfg.validate()
        self.config = cfg
        self._set_labels(label_names, num_classes, DATASET_ORDERS["rafdb"])
        self.model_name = "poster_v2"
        self.data_config = {"input_size": 224, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                            "interpolation": "bilinear", "family": "poster_v2"}
        self.scales = (0, 1, 2) if cfg.multi_scale else (2,)
        d = cfg.embed_dim

        self.landmark_net = MobileFaceNet().requires_grad_(False)
        self.image_net = IR50()
        self.landmark_proj = nn.Conv2d(512, 256, 3, 1, 1)
        self.image_down = nn.ModuleDict({str(s): nn.Conv2d(DIMS[s], DIMS[s], 3, 2, 1) for s in self.scales})
        dpr = torch.linspace(0, cfg.drop_path, 5).tolist()
        if cfg.cross_fusion:
            vanilla = cfg.attention == "vanilla"
            self.fusion = nn.ModuleDict({str(s): CrossFusion(
                DIMS[s], HEADS[s], MAPS[s], MAPS[s] if vanilla else cfg.window_size[s], dpr[s], cfg.layer_scale,
                query_proj=cfg.query_proj or vanilla, rel_pos=not vanilla) for s in self.scales})
        else:
            self.landmark_tokenize = nn.ModuleDict({str(s): _tokenizer(s, DIMS[s], d) for s in self.scales})
        self.tokenize = nn.ModuleDict({str(s): _tokenizer(s, DIMS[s], d) for s in self.scales})
        num_tokens = 49 * len(self.scales) * (1 if cfg.cross_fusion else 2)
        self.fuser = TokenFuser(num_tokens, d, cfg.vit_depth, cfg.vit_heads) if cfg.use_vit else None
        self.pool_norm = None if cfg.use_vit else nn.LayerNorm(d, eps=1e-6)
        self.se = SEGate(d)
        self.head = nn.Linear(d, self.num_classes)
        self.num_features = d
        for m in (self.se, self.head):
            for lin in m.modules():
                if isinstance(lin, nn.Linear):
                    nn.init.trunc_normal_(lin.weight, std=0.01)
                    nn.init.zeros_(lin.bias)
        self.landmark_net.eval()

    memory_format = torch.contiguous_format  # ferkit.models.optimize.for_inference switches to channels_last

    def train(self, mode: bool = True) -> PosterV2:
        super().train(mode)
        if self.config.landmark_bn_mode == "eval":
            self.landmark_net.eval()
        return self

    def reset_head(self, label_names) -> None:
        """Replace the classifier for a new label set (fine-tuning)."""
        self._set_labels(label_names, None, ())
        self.head = nn.Linear(self.num_features, self.num_classes).to(self.se.linear1.weight)
        nn.init.trunc_normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    @staticmethod
    def working_resolution(x: torch.Tensor) -> torch.Tensor:
        """Legacy-nearest resize to 112x112, as both official streams do. (B, 3, H, W) -> (B, 3, 112, 112)."""
        return x if x.shape[-2:] == (112, 112) else F.interpolate(x, size=(112, 112), mode="nearest")

    def streams(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-scale image and landmark maps, (B, C_s, M_s, M_s) each, for C = 64/128/256 and M = 28/14/7."""
        x = self.working_resolution(x).contiguous(memory_format=self.memory_format)
        lm = list(self.landmark_net(x))
        lm[2] = self.landmark_proj(lm[2])
        img = self.image_net(x)
        return [self.image_down[str(s)](img[s]) if str(s) in self.image_down else img[s] for s in range(3)], lm

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Fused tokens (B, T, D): 49 per scale (x2 without cross-fusion), scale order, row-major inside a scale."""
        img, lm = self.streams(x)
        out = []
        for s in self.scales:
            k = str(s)
            if self.config.cross_fusion:
                out.append(self.tokenize[k](self.fusion[k](img[s], lm[s])).flatten(2).transpose(1, 2))
            else:
                out.append(self.tokenize[k](img[s]).flatten(2).transpose(1, 2))
                out.append(self.landmark_tokenize[k](lm[s]).flatten(2).transpose(1, 2))
        return torch.cat(out, dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> gated features before the head (B, D)."""
        t = self.tokens(x)
        if self.fuser is not None:
            f = self.fuser(t)
        else:  # Table 8 "w/o ViT": sum of the mean-pooled scale features
            f = self.pool_norm(t.view(t.shape[0], -1, 49, t.shape[-1]).mean(2).sum(1))
        return self.se(f)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
