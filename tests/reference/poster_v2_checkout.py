"""A stand-in for a checkout of the official POSTER_V2 repository (which cannot be downloaded in the tests).

:func:`write_checkout` writes the official file and class layout into a folder: ``models/`` without ``__init__.py``,
``models/PosterV2_7cls.py`` defining ``pyramid_trans_expr2`` with relative imports of ``models/mobilefacenet.py``
(``MobileFaceNet``), ``models/ir50.py`` (``Backbone``) and ``models/vit_model.py`` (``VisionTransformer``), the
``from thop import profile`` import, and the official constructor's behaviour: ``torch.load`` of the two backbone files
from a hard-coded absolute Windows path, loaded strictly (MobileFaceNet) and by name-and-shape match (IR-50), with
``print('load_weight', n)``. The modules hold parameters and buffers under exactly the official state-dict keys
(``tests/reference/poster_v2_official.official_shapes``); ``forward`` is the literal re-statement of the official
computation (``poster_v2_official.forward``), copied into the checkout as ``models/_official_forward.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REFERENCE = Path(__file__).with_name("poster_v2_official.py")

_LAYOUT = '''"""Modules whose state-dict keys are given as a {key: shape} table (fake official checkout)."""
import torch
from torch import nn

from ._official_forward import official_shapes

INT_BUFFERS = ("num_batches_tracked", "relative_position_index")
FLOAT_BUFFERS = ("running_mean", "running_var")


class Holder(nn.Module):
    def __init__(self, shapes):
        super().__init__()
        for key, shape in shapes.items():
            *path, leaf = key.split(".")
            mod = self
            for p in path:
                if p not in mod._modules:
                    mod.add_module(p, nn.Module())
                mod = mod._modules[p]
            if leaf in INT_BUFFERS:
                mod.register_buffer(leaf, torch.zeros(shape, dtype=torch.int64))
            elif leaf in FLOAT_BUFFERS:
                mod.register_buffer(leaf, torch.ones(shape))
            else:
                mod.register_parameter(leaf, nn.Parameter(0.02 * torch.randn(shape)))


def part(prefix, num_classes=7):
    return {k[len(prefix):]: v for k, v in official_shapes(num_classes).items() if k.startswith(prefix)}
'''

_MOBILEFACENET = '''from ._layout import Holder, part


class MobileFaceNet(Holder):
    def __init__(self, input_size, embedding_size):
        super().__init__(part("face_landback."))
'''

_IR50 = '''from ._layout import Holder, part


class Backbone(Holder):
    def __init__(self, num_layers, drop_ratio, mode="ir"):
        super().__init__(part("ir_back."))
'''

_VIT = '''from ._layout import Holder, part


class VisionTransformer(Holder):
    def __init__(self, depth=2, embed_dim=768, num_classes=7):
        super().__init__(part("VIT.", num_classes))
'''

_POSTER = r'''import torch
import torch.nn as nn
from thop import profile

from ._layout import Holder, part
from ._official_forward import forward
from .ir50 import Backbone
from .mobilefacenet import MobileFaceNet
from .vit_model import VisionTransformer

TOP = ("attn", "window", "conv", "ffn", "last_face_conv", "embed_")


def load_pretrained_weights(model, checkpoint):
    state_dict = checkpoint["state_dict"] if "state_dict" in checkpoint else checkpoint
    model_dict = model.state_dict()
    matched = {k: v for k, v in state_dict.items() if k in model_dict and model_dict[k].size() == v.size()}
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    print("load_weight", len(matched))
    return model


class pyramid_trans_expr2(nn.Module):
    def __init__(self, img_size=224, num_classes=7, window_size=[28, 14, 7], num_heads=[2, 4, 8],
                 dims=[64, 128, 256], embed_dim=768):
        super().__init__()
        self.face_landback = MobileFaceNet([112, 112], 136)
        face_landback_checkpoint = torch.load(
            r"C:\Users\86187\Desktop\posterv2\mixfacial\models\pretrain\mobilefacenet_model_best.pth.tar",
            map_location=lambda storage, loc: storage)
        self.face_landback.load_state_dict(face_landback_checkpoint["state_dict"])
        for param in self.face_landback.parameters():
            param.requires_grad = False
        self.VIT = VisionTransformer(depth=2, embed_dim=embed_dim)
        self.ir_back = Backbone(50, 0.0, "ir")
        ir_checkpoint = torch.load(r"C:\Users\86187\Desktop\posterv2\mixfacial\models\pretrain\ir50.pth",
                                   map_location=lambda storage, loc: storage)
        self.ir_back = load_pretrained_weights(self.ir_back, ir_checkpoint)
        rest = Holder({k: v for k, v in part("").items() if k.startswith(TOP)})
        for name, module in rest.named_children():
            self.add_module(name, module)

    def forward(self, x):
        return forward(x, self.state_dict())
'''


def write_checkout(root: Path) -> Path:
    """Write the fake checkout into ``root`` (created) and return it."""
    models = Path(root) / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REFERENCE, models / "_official_forward.py")
    (models / "_layout.py").write_text(_LAYOUT)
    (models / "mobilefacenet.py").write_text(_MOBILEFACENET)
    (models / "ir50.py").write_text(_IR50)
    (models / "vit_model.py").write_text(_VIT)
    (models / "PosterV2_7cls.py").write_text(_POSTER)
    (Path(root) / "main.py").write_text("# the official training script (not used by ferkit)\n")
    return Path(root)
