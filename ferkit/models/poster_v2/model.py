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
from ferkit.models.poster_v2.streams import IMAGE_STREAMS, LANDMARK_STREAMS
from ferkit.models.poster_v2.vit import SEGate, TokenFuser

DIMS = (64, 128, 256)  # channels per scale
HEADS = (2, 4, 8)  # cross-attention heads per scale
MAPS = (28, 14, 7)  # feature-map side per scale (official streams at the 112x112 working resolution)
TOKEN_GRID = 7  # each scale's map is halved by stride-2 convs until its side is at most this


@dataclass(frozen=True)
class PosterV2Config:
    """Architecture options. Defaults reproduce the official code.

    Attributes:
        window_size: window side per scale; each must divide (28, 14, 7). Official: the whole map.
        window_query: how landmark queries meet image windows smaller than the map: ``"per_window"`` (ferkit: the
            landmark map is partitioned into the same windows as the image) or ``"shared"`` (paper Sec. 3.4: the
            landmark map is area-pooled to one window's size and that query window is shared by every image window).
            Identical when the window is the whole map (official).
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
        image_stream: ``"ir50"`` (official) or ``"dlib_resnet"`` (dlib's face-recognition ResNet, CC0).
        landmark_stream: ``"mobilefacenet"`` (official), ``"facemesh"`` (MediaPipe, Apache-2.0) or ``"none"`` (image
            stream only: no landmark stream, no cross-fusion).
        input_size: working resolution of both streams (official: 112, reached by a nearest resize of the input).
        aux_head: a data-set label order (``"fer2013"``) for a second classifier on the same features, trained on
            that data set's labels (``forward_aux``); ``None`` (official) builds none. aux_weight: its loss weight.
        grayscale: the weights were trained on grey faces (FER2013): ``data_config`` asks for grey input, so
            training, evaluation and inference transforms convert every face to 3-channel grey.
        crop: the face-crop preset of the training images (``ferkit.detect.CROP_PRESETS``), carried in
            ``data_config`` so that inference crops faces the same way (``None``: unknown).
    """

    window_size: tuple[int, int, int] = MAPS
    window_query: Literal["per_window", "shared"] = "per_window"
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
    image_stream: Literal["ir50", "dlib_resnet"] = "ir50"
    landmark_stream: Literal["mobilefacenet", "facemesh", "none"] = "mobilefacenet"
    input_size: int = 112
    aux_head: str | None = None
    aux_weight: float = 1.0
    grayscale: bool = False
    crop: str | None = None

    @property
    def official_streams(self) -> bool:
        return self.image_stream == "ir50" and self.landmark_stream == "mobilefacenet" and self.input_size == 112

    def maps(self) -> tuple[int, int, int]:
        """Side of the fused map per scale: the image stream's grids (after ``image_down`` for IR-50)."""
        spec, _ = IMAGE_STREAMS[self.image_stream]
        grids = spec.grids(self.input_size)
        return tuple((g - 1) // 2 + 1 for g in grids) if self.image_stream == "ir50" else grids

    def validate(self) -> None:
        if self.image_stream not in IMAGE_STREAMS:
            raise ConfigError(f"image_stream {self.image_stream!r} is not one of {list(IMAGE_STREAMS)}")
        if self.landmark_stream not in (*LANDMARK_STREAMS, "none"):
            raise ConfigError(f"landmark_stream {self.landmark_stream!r} is not one of {[*LANDMARK_STREAMS, 'none']}")
        if self.input_size < 64:
            raise ConfigError(f"input_size must be >= 64, got {self.input_size}")
        maps = self.maps()
        if self.official_streams or tuple(self.window_size) != MAPS:
            for w, m in zip(self.window_size, maps):
                if w < 1 or m % w:
                    raise ConfigError(f"window_size {tuple(self.window_size)}: each window must divide its map {maps}")
        if self.window_query not in ("per_window", "shared"):
            raise ConfigError(f"window_query {self.window_query!r} is not one of ['per_window', 'shared']")
        if self.landmark_stream == "none" and self.cross_fusion:
            raise ConfigError("landmark_stream 'none' has nothing to fuse: set cross_fusion=False")
        if self.vit_depth < 1 or self.embed_dim % self.vit_heads:
            raise ConfigError("vit_depth must be >= 1 and embed_dim divisible by vit_heads")

    def windows(self) -> tuple[int, int, int]:
        """Window side per scale: ``window_size``, or the whole map when it is the default and the maps differ."""
        maps = self.maps()
        return maps if tuple(self.window_size) == MAPS else tuple(self.window_size)


def _halvings(side: int) -> int:
    """Stride-2 convs that bring a map of this side to at most ``TOKEN_GRID`` (28 -> 2, 14 -> 1, 7 -> 0)."""
    n = 0
    while side > TOKEN_GRID:
        side, n = (side - 1) // 2 + 1, n + 1
    return n


def token_side(side: int) -> int:
    for _ in range(_halvings(side)):
        side = (side - 1) // 2 + 1
    return side


def _tokenizer(side: int, in_c: int, dim: int) -> nn.Sequential:
    """Per-scale token embedder to a grid of side <= 7: stride-2 3x3 convs, or a 1x1 conv when the map is small
    enough (official embed_q/k/v: two convs for 28x28, one for 14x14, a 1x1 conv for 7x7)."""
    n = _halvings(side)
    if n == 0:
        return nn.Sequential(nn.Conv2d(in_c, dim, 1))
    return nn.Sequential(*[nn.Conv2d(in_c if i == 0 else dim, dim, 3, 2, 1) for i in range(n)])


class PosterV2(FerModel):
    """POSTER++ classifier. Input (B, 3, H, W) RGB normalised as ``data_config`` says (official streams: ImageNet
    mean/std at 224x224; any size works, both streams see a nearest-resized ``input_size`` copy).
    Output: logits (B, num_classes)."""

    model_name = "poster_v2"  # create_model sets the registered variant's name
    default_explanation = "attention"

    def __init__(self, config: PosterV2Config | None = None, label_names=None, num_classes: int | None = None):
        super().__init__()
        from ferkit.labels import DATASET_ORDERS

        cfg = config or PosterV2Config()
        cfg.validate()
        self.config = cfg
        self._set_labels(label_names, num_classes, DATASET_ORDERS["rafdb"])
        img_spec, img_cls = IMAGE_STREAMS[cfg.image_stream]
        self.data_config = {"input_size": 224 if cfg.official_streams else cfg.input_size,
                            "mean": img_spec.spec.mean, "std": img_spec.spec.std,
                            "interpolation": "bilinear", "family": "poster_v2", "grayscale": cfg.grayscale,
                            "crop": cfg.crop}
        self.scales = (0, 1, 2) if cfg.multi_scale else (2,)
        self.maps = cfg.maps()
        d = cfg.embed_dim

        self.landmark_net = self._build_landmark_stream(cfg, img_spec.spec)
        self.image_net = img_cls()
        if self.landmark_net is not None:
            self.landmark_proj = nn.Conv2d(LANDMARK_STREAMS[cfg.landmark_stream][0].spec.channels[2], DIMS[2], 3, 1, 1)
        if cfg.image_stream == "ir50":
            self.image_down = nn.ModuleDict({str(s): nn.Conv2d(DIMS[s], DIMS[s], 3, 2, 1) for s in self.scales})
        dpr = torch.linspace(0, cfg.drop_path, 5).tolist()
        windows = cfg.windows()
        if cfg.cross_fusion:
            vanilla = cfg.attention == "vanilla"
            self.fusion = nn.ModuleDict({str(s): CrossFusion(
                DIMS[s], HEADS[s], self.maps[s], self.maps[s] if vanilla else windows[s], dpr[s], cfg.layer_scale,
                query_proj=cfg.query_proj or vanilla, rel_pos=not vanilla, shared_query=cfg.window_query == "shared")
                for s in self.scales})
        elif self.landmark_net is not None:
            self.landmark_tokenize = nn.ModuleDict({str(s): _tokenizer(self.maps[s], DIMS[s], d)
                                                    for s in self.scales})
        self.tokenize = nn.ModuleDict({str(s): _tokenizer(self.maps[s], DIMS[s], d) for s in self.scales})
        per_scale = [token_side(self.maps[s]) ** 2 for s in self.scales]
        self.token_counts = per_scale if cfg.cross_fusion or self.landmark_net is None else [
            n for n in per_scale for _ in range(2)]
        self.fuser = TokenFuser(sum(self.token_counts), d, cfg.vit_depth, cfg.vit_heads) if cfg.use_vit else None
        self.pool_norm = None if cfg.use_vit else nn.LayerNorm(d, eps=1e-6)
        self.se = SEGate(d)
        self.head = nn.Linear(d, self.num_classes)
        self.aux_label_names = tuple(DATASET_ORDERS[cfg.aux_head]) if cfg.aux_head else ()
        self.aux_head = nn.Linear(d, len(self.aux_label_names)) if cfg.aux_head else None
        self.num_features = d
        for m in (self.se, self.head, self.aux_head):
            for lin in m.modules() if m is not None else ():
                if isinstance(lin, nn.Linear):
                    nn.init.trunc_normal_(lin.weight, std=0.01)
                    nn.init.zeros_(lin.bias)

    def _build_landmark_stream(self, cfg: PosterV2Config, img_norm) -> nn.Module | None:
        """The frozen landmark network and the input conversion it needs (None for ``landmark_stream="none"``)."""
        if cfg.landmark_stream == "none":
            return None
        lm_spec, lm_cls = LANDMARK_STREAMS[cfg.landmark_stream]
        net = lm_cls().requires_grad_(False).eval()
        channels = lm_spec.spec.channels
        if channels[:2] != DIMS[:2]:
            raise ConfigError(f"landmark stream {cfg.landmark_stream!r} gives {channels[:2]} channels at scales 0-1, "
                              f"POSTER++ fuses {DIMS[:2]}")
        self.landmark_grids = lm_spec.grids(cfg.input_size)
        # x_landmark = x * scale + shift: from the image stream's normalisation to the landmark stream's
        mean, std = torch.tensor(img_norm.mean), torch.tensor(img_norm.std)
        lm_mean, lm_std = torch.tensor(lm_spec.spec.mean), torch.tensor(lm_spec.spec.std)
        official = cfg.image_stream == "ir50" and cfg.landmark_stream == "mobilefacenet"  # fed as-is, as officially
        self.landmark_input = None if official or (torch.equal(mean, lm_mean) and torch.equal(std, lm_std)) else True
        self.register_buffer("lm_scale", (std / lm_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("lm_shift", ((mean - lm_mean) / lm_std).view(1, 3, 1, 1), persistent=False)
        return net

    def train(self, mode: bool = True) -> PosterV2:
        super().train(mode)
        if self.config.landmark_bn_mode == "eval" and self.landmark_net is not None:
            self.landmark_net.eval()
        return self

    def reset_head(self, label_names) -> None:
        """Replace the classifier for a new label set (fine-tuning)."""
        self._set_labels(label_names, None, ())
        self.head = nn.Linear(self.num_features, self.num_classes).to(self.se.linear1.weight)
        nn.init.trunc_normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    @staticmethod
    def working_resolution(x: torch.Tensor, size: int = 112) -> torch.Tensor:
        """Legacy-nearest resize to the working resolution (112 officially), as both official streams do.
        (B, 3, H, W) -> (B, 3, size, size)."""
        return x if x.shape[-2:] == (size, size) else F.interpolate(x, size=(size, size), mode="nearest")

    def _align_landmarks(self, lm: list[torch.Tensor]) -> list[torch.Tensor]:
        """Bring each landmark map to its image map's side (area pooling down, bilinear up); scale 2 to 256 ch."""
        out = []
        for s, m in enumerate(lm):
            side = self.maps[s]
            if m.shape[-1] > side:
                m = _area_pool(m, side)
            elif m.shape[-1] < side:
                m = F.interpolate(m, size=(side, side), mode="bilinear", align_corners=False)
            out.append(m)
        out[2] = self.landmark_proj(out[2])
        return out

    def streams(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """Per-scale image and landmark maps, (B, C_s, M_s, M_s) each, for C = 64/128/256 and M = ``self.maps``
        (28/14/7 for the official streams). Landmark maps are None without a landmark stream."""
        x = self.working_resolution(x, self.config.input_size).contiguous(memory_format=self.memory_format)
        lm = None
        if self.landmark_net is not None:
            x_lm = x if self.landmark_input is None else x * self.lm_scale + self.lm_shift
            lm = self._align_landmarks(list(self.landmark_net(x_lm)))
        img = self.image_net(x)
        if self.config.image_stream == "ir50":
            img = [self.image_down[str(s)](img[s]) if str(s) in self.image_down else img[s] for s in range(3)]
        return list(img), lm

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Fused tokens (B, T, D): ``token_counts`` per scale (49 officially; x2 without cross-fusion), in scale
        order, row-major inside a scale."""
        img, lm = self.streams(x)
        out = []
        for s in self.scales:
            k = str(s)
            if self.config.cross_fusion:
                out.append(self.tokenize[k](self.fusion[k](img[s], lm[s])).flatten(2).transpose(1, 2))
            else:
                out.append(self.tokenize[k](img[s]).flatten(2).transpose(1, 2))
                if lm is not None:
                    out.append(self.landmark_tokenize[k](lm[s]).flatten(2).transpose(1, 2))
        return torch.cat(out, dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> gated features before the head (B, D)."""
        t = self.tokens(x)
        if self.fuser is not None:
            f = self.fuser(t)
        else:  # Table 8 "w/o ViT": sum of the mean-pooled scale features
            f = self.pool_norm(torch.stack([c.mean(1) for c in t.split(self.token_counts, 1)], 1).sum(1))
        return self.se(f)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_aux(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the auxiliary head (B, len(aux_label_names)), e.g. FER2013's original labels."""
        if self.aux_head is None:
            raise RuntimeError("this model has no auxiliary head (config aux_head is None)")
        return self.aux_head(self.forward_features(x))

    def attention_maps(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Landmark-to-image cross-attention per scale ``{scale: (B, M, M)}`` (Figs. 4 / 13); see
        :func:`ferkit.models.poster_v2.explain.attention_maps`."""
        from ferkit.models.poster_v2.explain import attention_maps

        return attention_maps(self, x)

    def training_loss(self, images: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0):
        """Cross-entropy on hard (B,) or soft (B, K) targets; with an auxiliary head, targets are (B, K + K_aux):
        the aux columns hold a one-hot (or all-zero = unlabelled) target and add ``CE_aux`` over the labelled rows.

        Returns ``(loss, logits, parts)``."""
        f = self.forward_features(images)
        logits = self.head(f)
        k = logits.shape[1]
        main_t = targets if targets.ndim == 1 else targets[:, :k]
        loss = F.cross_entropy(logits.float(), main_t, label_smoothing=label_smoothing)
        parts: dict[str, torch.Tensor] = {}
        if self.aux_head is not None and targets.ndim == 2 and targets.shape[1] > k:
            aux_t = targets[:, k:]
            rows = aux_t.sum(1) > 0
            aux_logits = self.aux_head(f).float()
            aux = (F.cross_entropy(aux_logits[rows], aux_t[rows], label_smoothing=label_smoothing)
                   if rows.any() else aux_logits.sum() * 0)
            parts = {"loss_main": loss.detach(), "loss_aux": aux.detach()}
            loss = loss + self.config.aux_weight * aux
        return loss, logits, parts


def _area_pool(x: torch.Tensor, side: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, side)`` of a square map, as a plain ``avg_pool2d`` when its windows are uniform
    (e.g. 14 -> 13, 7 -> 6, 4 -> 3: kernel 2, stride 1; or an integer ratio): the same values, and an ONNX export
    that does not depend on shape inference (the TorchScript exporter cannot size an adaptive pool after PReLU)."""
    n = int(x.shape[-1])
    starts = [(i * n) // side for i in range(side)]
    ends = [-((-(i + 1) * n) // side) for i in range(side)]
    kernels = {e - s for s, e in zip(starts, ends)}
    strides = {b - a for a, b in zip(starts, starts[1:])} or {1}
    if len(kernels) == 1 and len(strides) == 1:
        return F.avg_pool2d(x, kernel_size=kernels.pop(), stride=strides.pop())
    return F.adaptive_avg_pool2d(x, side)
