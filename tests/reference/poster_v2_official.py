"""An independent, functional re-statement of the official POSTER_V2 computation, for equivalence tests.

Written from the official behaviour documented in docs/poster_v2.md (#r1-forward-pass, #r2-state-dict-layout), operating
directly on a state dict in the *official* key layout (``face_landback.*``, ``ir_back.*``, ``attn1.*``, ``VIT.*``).
It shares no code with ferkit's model, runs in the dtype of its input (float64 in the tests), and follows the official
structure literally (GDC head executed, MaxPool(1, s) shortcuts, full last ViT block, q scaled before the matmul,
explicit softmax).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------------------------
# Official key layout (names and shapes) -- docs/poster_v2.md#r2-state-dict-layout.


def _bn(p: str, c: int) -> dict:
    return {f"{p}.weight": (c,), f"{p}.bias": (c,), f"{p}.running_mean": (c,), f"{p}.running_var": (c,),
            f"{p}.num_batches_tracked": ()}


def _conv_block(p, cin, cout, k, groups=1, prelu=True):
    d = {f"{p}.conv.weight": (cout, cin // groups, k, k), **_bn(f"{p}.bn", cout)}
    if prelu:
        d[f"{p}.prelu.weight"] = (cout,)
    return d


def _depth_wise(p, cin, cout, g):
    return {**_conv_block(f"{p}.conv", cin, g, 1), **_conv_block(f"{p}.conv_dw", g, g, 3, groups=g),
            **_conv_block(f"{p}.project", g, cout, 1, prelu=False)}


MFN_BLOCKS = [  # (name, kind, in, out, groups, n)
    ("conv_23", "dw", 64, 64, 128, 1), ("conv_3", "res", 64, 64, 128, 4), ("conv_34", "dw", 64, 128, 256, 1),
    ("conv_4", "res", 128, 128, 256, 6), ("conv_45", "dw", 128, 128, 512, 1), ("conv_5", "res", 128, 128, 256, 2),
]


def mobilefacenet_shapes(prefix="face_landback.") -> dict:
    d = {**_conv_block("conv1", 3, 64, 3), **_conv_block("conv2_dw", 64, 64, 3, groups=64)}
    for name, kind, cin, cout, g, n in MFN_BLOCKS:
        if kind == "dw":
            d.update(_depth_wise(name, cin, cout, g))
        else:
            for i in range(n):
                d.update(_depth_wise(f"{name}.model.{i}", cin, cout, g))
    d.update(_conv_block("conv_6_sep", 128, 512, 1))
    d.update(_conv_block("output_layer.conv_6_dw", 512, 512, 7, groups=512, prelu=False))
    d["output_layer.linear.weight"] = (136, 512)
    d.update(_bn("output_layer.bn", 136))
    return {prefix + k: v for k, v in d.items()}


IR_STAGES = [("body1", 64, 64, 3), ("body2", 64, 128, 4), ("body3", 128, 256, 14)]


def ir50_shapes(prefix="ir_back.", output_layer=True) -> dict:
    d = {"input_layer.0.weight": (64, 3, 3, 3), **_bn("input_layer.1", 64), "input_layer.2.weight": (64,)}
    for body, cin, depth, n in IR_STAGES:
        for i in range(n):
            c_in = cin if i == 0 else depth
            p = f"{body}.{i}"
            d.update(_bn(f"{p}.res_layer.0", c_in))
            d[f"{p}.res_layer.1.weight"] = (depth, c_in, 3, 3)
            d[f"{p}.res_layer.2.weight"] = (depth,)
            d[f"{p}.res_layer.3.weight"] = (depth, depth, 3, 3)
            d.update(_bn(f"{p}.res_layer.4", depth))
            if c_in != depth:
                d[f"{p}.shortcut_layer.0.weight"] = (depth, c_in, 1, 1)
                d.update(_bn(f"{p}.shortcut_layer.1", depth))
    if output_layer:
        d.update(_bn("output_layer.0", 512))
        d["output_layer.3.weight"] = (512, 25088)
        d["output_layer.3.bias"] = (512,)
        d.update(_bn("output_layer.4", 512))
    return {prefix + k: v for k, v in d.items()}


def official_shapes(num_classes: int = 7) -> dict:
    """Every key of the official model's state dict -> shape (747 entries)."""
    d = mobilefacenet_shapes()
    v = {"VIT.cls_token": (1, 1, 768), "VIT.pos_embed": (1, 148, 768),
         "VIT.patch_embed.proj.weight": (768, 256, 1, 1), "VIT.patch_embed.proj.bias": (768,),
         "VIT.se_block.linear1.weight": (768, 768), "VIT.se_block.linear1.bias": (768,),
         "VIT.se_block.linear2.weight": (768, 768), "VIT.se_block.linear2.bias": (768,),
         "VIT.head.linear.weight": (num_classes, 768), "VIT.head.linear.bias": (num_classes,),
         "VIT.CON1.weight": (768, 256, 1, 1), "VIT.IRLinear1.weight": (768, 1024), "VIT.IRLinear1.bias": (768,),
         "VIT.IRLinear2.weight": (512, 768), "VIT.IRLinear2.bias": (512,), "VIT.eca_block.conv.weight": (1, 1, 5),
         "VIT.norm.weight": (768,), "VIT.norm.bias": (768,)}
    for b in range(2):
        p = f"VIT.blocks.{b}"
        v.update({f"{p}.norm1.weight": (768,), f"{p}.norm1.bias": (768,), f"{p}.attn.qkv.weight": (2304, 768),
                  f"{p}.attn.qkv.bias": (2304,), f"{p}.attn.proj.weight": (768, 768), f"{p}.attn.proj.bias": (768,),
                  f"{p}.norm2.weight": (768,), f"{p}.norm2.bias": (768,), f"{p}.mlp.fc1.weight": (3072, 768),
                  f"{p}.mlp.fc1.bias": (3072,), f"{p}.mlp.fc2.weight": (768, 3072), f"{p}.mlp.fc2.bias": (768,),
                  f"{p}.conv.weight": (148, 148, 1), f"{p}.conv.bias": (148,)})
    d.update(v)
    d.update(ir50_shapes())
    for s, (c, h, w) in enumerate([(64, 2, 28), (128, 4, 14), (256, 8, 7)], start=1):
        d.update({f"attn{s}.relative_position_bias_table": ((2 * w - 1) ** 2, h),
                  f"attn{s}.relative_position_index": (w * w, w * w),
                  f"attn{s}.qkv.weight": (2 * c, c), f"attn{s}.qkv.bias": (2 * c,),
                  f"attn{s}.proj.weight": (c, c), f"attn{s}.proj.bias": (c,)})
    for s, c in enumerate((64, 128, 256), start=1):
        d.update({f"window{s}.norm.weight": (c,), f"window{s}.norm.bias": (c,)})
    for s, c in enumerate((64, 128, 256), start=1):
        d.update({f"conv{s}.weight": (c, c, 3, 3), f"conv{s}.bias": (c,)})
    for s, c in enumerate((64, 128, 256), start=1):
        d.update({f"ffn{s}.gamma1": (c,), f"ffn{s}.gamma2": (c,), f"ffn{s}.mlp.fc1.weight": (4 * c, c),
                  f"ffn{s}.mlp.fc1.bias": (4 * c,), f"ffn{s}.mlp.fc2.weight": (c, 4 * c), f"ffn{s}.mlp.fc2.bias": (c,),
                  f"ffn{s}.norm.weight": (c,), f"ffn{s}.norm.bias": (c,)})
    d.update({"last_face_conv.weight": (256, 512, 3, 3), "last_face_conv.bias": (256,),
              "embed_q.0.weight": (768, 64, 3, 3), "embed_q.0.bias": (768,),
              "embed_q.1.weight": (768, 768, 3, 3), "embed_q.1.bias": (768,),
              "embed_k.0.weight": (768, 128, 3, 3), "embed_k.0.bias": (768,),
              "embed_v.proj.weight": (768, 256, 1, 1), "embed_v.proj.bias": (768,)})
    return d


def _rel_index(w: int) -> torch.Tensor:
    # written out longhand, independent of ferkit's vectorised version
    n = w * w
    j = torch.arange(n)
    yj, xj = j // w, j % w
    idx = torch.empty(n, n, dtype=torch.int64)
    for i in range(n):
        yi, xi = divmod(i, w)
        idx[i] = (yi - yj + w - 1) * (2 * w - 1) + (xi - xj + w - 1)
    return idx


def random_official_state_dict(num_classes: int = 7, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the official layout with non-trivial values everywhere (weights scaled by fan-in so activations
    stay O(1), BN statistics random, gammas O(1) so the cross-attention path matters)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in official_shapes(num_classes).items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7, dtype=torch.int64)
        elif k.endswith("relative_position_index"):
            out[k] = _rel_index(int(round(shape[0] ** 0.5)))
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) * 1.0 + 0.5
        elif k.endswith("running_mean"):
            out[k] = torch.randn(shape, generator=g) * 0.1
        elif k.endswith("prelu.weight") or (k.startswith("ir_back") and len(shape) == 1 and ".2." in k[-12:]):
            out[k] = torch.rand(shape, generator=g) * 0.5
        elif k.endswith("relative_position_bias_table"):
            out[k] = torch.randn(shape, generator=g)  # std 1 so the position bias visibly shapes the attention
        elif "gamma" in k:
            out[k] = torch.rand(shape, generator=g) * 0.5 + 0.5
        elif len(shape) >= 2 and k not in ("VIT.cls_token", "VIT.pos_embed"):
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            out[k] = torch.randn(shape, generator=g) * (1.0 / fan_in) ** 0.5
        elif k.endswith(".weight") and len(shape) == 1:  # norm weights
            out[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[k] = 0.1 * torch.randn(shape, generator=g)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Functional forward in the official structure.


def _bn_f(x, sd, p):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        False, 0.0, 1e-5)


def _conv_block_f(x, sd, p, stride=1, padding=0, groups=1, prelu=True):
    x = F.conv2d(x, sd[p + ".conv.weight"], None, stride, padding, 1, groups)
    x = _bn_f(x, sd, p + ".bn")
    return F.prelu(x, sd[p + ".prelu.weight"]) if prelu else x


def _depth_wise_f(x, sd, p, g, stride, residual):
    y = _conv_block_f(x, sd, p + ".conv")
    y = _conv_block_f(y, sd, p + ".conv_dw", stride, 1, g)
    y = _conv_block_f(y, sd, p + ".project", prelu=False)
    return x + y if residual else y


def mobilefacenet_f(x, sd, p="face_landback."):
    x = _conv_block_f(x, sd, p + "conv1", 2, 1)
    x = _conv_block_f(x, sd, p + "conv2_dw", 1, 1, 64)
    outs = {}
    for name, kind, _cin, _cout, g, n in MFN_BLOCKS:
        if kind == "dw":
            x = _depth_wise_f(x, sd, p + name, g, 2, False)
        else:
            for i in range(n):
                x = _depth_wise_f(x, sd, f"{p}{name}.model.{i}", g, 1, True)
        outs[name] = x
    feat = _conv_block_f(x, sd, p + "conv_6_sep")
    # GDC head: executed by the official code, output discarded
    gdc = _conv_block_f(feat, sd, p + "output_layer.conv_6_dw", groups=512, prelu=False).flatten(1)
    gdc = F.batch_norm(gdc @ sd[p + "output_layer.linear.weight"].t(), sd[p + "output_layer.bn.running_mean"],
                       sd[p + "output_layer.bn.running_var"], sd[p + "output_layer.bn.weight"],
                       sd[p + "output_layer.bn.bias"], False, 0.0, 1e-5)
    return outs["conv_3"], outs["conv_4"], feat


def ir50_f(x, sd, p="ir_back."):
    x = F.conv2d(x, sd[p + "input_layer.0.weight"], None, 1, 1)
    x = F.prelu(_bn_f(x, sd, p + "input_layer.1"), sd[p + "input_layer.2.weight"])
    outs = []
    for body, cin, depth, n in IR_STAGES:
        for i in range(n):
            c_in = cin if i == 0 else depth
            stride = 2 if i == 0 else 1
            q = f"{p}{body}.{i}"
            r = _bn_f(x, sd, q + ".res_layer.0")
            r = F.conv2d(r, sd[q + ".res_layer.1.weight"], None, 1, 1)
            r = F.prelu(r, sd[q + ".res_layer.2.weight"])
            r = F.conv2d(r, sd[q + ".res_layer.3.weight"], None, stride, 1)
            r = _bn_f(r, sd, q + ".res_layer.4")
            if c_in == depth:
                s = F.max_pool2d(x, 1, stride)
            else:
                s = _bn_f(F.conv2d(x, sd[q + ".shortcut_layer.0.weight"], None, stride), sd, q + ".shortcut_layer.1")
            x = r + s
        outs.append(x)
    return outs


def window_attention_f(q_map, x_norm, sd, s, heads):
    """q_map: (B, C, w, w) raw landmark features; x_norm: (B, w, w, C) LayerNorm-ed image features."""
    b, c, w, _ = q_map.shape
    n, d = w * w, c // heads
    q = q_map.permute(0, 2, 3, 1).reshape(b, n, heads, d).transpose(1, 2)  # (B, h, N, d)
    x = x_norm.reshape(b, n, c)
    kv = x @ sd[f"attn{s}.qkv.weight"].t() + sd[f"attn{s}.qkv.bias"]
    k = kv[..., :c].reshape(b, n, heads, d).transpose(1, 2)
    v = kv[..., c:].reshape(b, n, heads, d).transpose(1, 2)
    logits = (q * (c / heads) ** -0.5) @ k.transpose(-2, -1)
    table, index = sd[f"attn{s}.relative_position_bias_table"], sd[f"attn{s}.relative_position_index"]
    bias = table[index.reshape(-1)].reshape(n, n, heads).permute(2, 0, 1)
    attn = torch.softmax(logits + bias.unsqueeze(0), dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(b, n, c)
    return out @ sd[f"attn{s}.proj.weight"].t() + sd[f"attn{s}.proj.bias"]


def _ln(x, sd, p, eps):
    return F.layer_norm(x, (x.shape[-1],), sd[p + ".weight"], sd[p + ".bias"], eps)


def _mlp(x, sd, p):
    h = F.gelu(x @ sd[p + ".fc1.weight"].t() + sd[p + ".fc1.bias"])
    return h @ sd[p + ".fc2.weight"].t() + sd[p + ".fc2.bias"]


def fusion_f(img, lm, sd, s, heads):
    """img, lm: (B, C, w, w) -> fused (B, C, w, w)."""
    x = _ln(img.permute(0, 2, 3, 1), sd, f"window{s}.norm", 1e-5)  # (B, w, w, C) = shortcut
    b, w, _, c = x.shape
    a = window_attention_f(lm, x, sd, s, heads).reshape(b, w, w, c)
    y = x + sd[f"ffn{s}.gamma1"] * a
    y = y + sd[f"ffn{s}.gamma2"] * _mlp(_ln(y, sd, f"ffn{s}.norm", 1e-5), sd, f"ffn{s}.mlp")
    return y.permute(0, 3, 1, 2)


def vit_f(tokens, sd, heads: int = 8) -> dict[str, torch.Tensor]:
    """Official ``VIT`` on tokens (B, T, 768): every block over all T + 1 tokens. -> normed cls "vit" (B, 768), SE-gated
    "se" (B, 768), "logits" (B, C)."""
    b, t1, dim = tokens.shape[0], tokens.shape[1] + 1, tokens.shape[2]
    d = dim // heads
    x = torch.cat([sd["VIT.cls_token"].expand(b, -1, -1), tokens], 1) + sd["VIT.pos_embed"]
    depth = len({k.split(".")[2] for k in sd if k.startswith("VIT.blocks.") and k.endswith(".norm1.weight")})
    for i in range(depth):
        p = f"VIT.blocks.{i}"
        h = _ln(x, sd, p + ".norm1", 1e-6)
        qkv = (h @ sd[p + ".attn.qkv.weight"].t() + sd[p + ".attn.qkv.bias"]).reshape(b, t1, 3, heads, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * d ** -0.5, -1)
        o = (attn @ v).transpose(1, 2).reshape(b, t1, dim)
        x = x + o @ sd[p + ".attn.proj.weight"].t() + sd[p + ".attn.proj.bias"]
        x = x + _mlp(_ln(x, sd, p + ".norm2", 1e-6), sd, p + ".mlp")
    cls = _ln(x, sd, "VIT.norm", 1e-6)[:, 0]
    g = torch.relu(cls @ sd["VIT.se_block.linear1.weight"].t() + sd["VIT.se_block.linear1.bias"])
    g = torch.sigmoid(g @ sd["VIT.se_block.linear2.weight"].t() + sd["VIT.se_block.linear2.bias"])
    gated = cls * g
    return {"vit": cls, "se": gated, "logits": gated @ sd["VIT.head.linear.weight"].t() + sd["VIT.head.linear.bias"]}


def intermediates(x: torch.Tensor, sd: dict) -> dict[str, torch.Tensor]:
    """Official forward in eval mode with the named intermediates (dtype of ``x``; ``sd`` converted to it)."""
    sd = {k: (v.to(x.dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    x112 = F.interpolate(x, size=112)  # legacy nearest
    lm1, lm2, lm3 = mobilefacenet_f(x112, sd)
    lm3 = F.conv2d(lm3, sd["last_face_conv.weight"], sd["last_face_conv.bias"], 1, 1)
    i1, i2, i3 = ir50_f(F.interpolate(x, size=112), sd)
    i1 = F.conv2d(i1, sd["conv1.weight"], sd["conv1.bias"], 2, 1)
    i2 = F.conv2d(i2, sd["conv2.weight"], sd["conv2.bias"], 2, 1)
    i3 = F.conv2d(i3, sd["conv3.weight"], sd["conv3.bias"], 2, 1)
    f1 = fusion_f(i1, lm1, sd, 1, 2)
    f2 = fusion_f(i2, lm2, sd, 2, 4)
    f3 = fusion_f(i3, lm3, sd, 3, 8)
    o1 = F.conv2d(F.conv2d(f1, sd["embed_q.0.weight"], sd["embed_q.0.bias"], 2, 1),
                  sd["embed_q.1.weight"], sd["embed_q.1.bias"], 2, 1).flatten(2).transpose(1, 2)
    o2 = F.conv2d(f2, sd["embed_k.0.weight"], sd["embed_k.0.bias"], 2, 1).flatten(2).transpose(1, 2)
    o3 = F.conv2d(f3, sd["embed_v.proj.weight"], sd["embed_v.proj.bias"]).flatten(2).transpose(1, 2)
    tokens = torch.cat([o1, o2, o3], 1)
    return {"landmark": (lm1, lm2, lm3), "image": (i1, i2, i3), "fusion": (f1, f2, f3), "tokens": tokens,
            **vit_f(tokens, sd)}


def forward(x: torch.Tensor, sd: dict) -> torch.Tensor:
    """Official logits (B, C) for input x (B, 3, H, W) in eval mode."""
    return intermediates(x, sd)["logits"]
