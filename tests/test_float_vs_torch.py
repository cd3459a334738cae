"""The numpy float reference against an implementation we did not write: torch's own
nn.TransformerEncoderLayer(norm_first=True, activation='gelu') and nn.Conv2d."""

import numpy as np
import pytest

from hgpipe.model import ViTConfig, forward, preset, random_weights

from .conftest import images_for

import torch  # noqa: E402  (a missing torch fails this test: CI installs it)

nn = torch.nn


def torch_vit(cfg: ViTConfig, w):
    """A ViT assembled from torch modules, loaded with the same weights."""
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)
    d = cfg.embed_dim
    conv = nn.Conv2d(cfg.in_chans, d, cfg.patch_size, stride=cfg.patch_size).double()
    conv.weight.data, conv.bias.data = t(w.patch.weight), t(w.patch.bias)
    layers = []
    for b in w.blocks:
        layer = nn.TransformerEncoderLayer(d, cfg.num_heads, dim_feedforward=cfg.mlp_hidden,
                                           dropout=0.0, activation="gelu",
                                           layer_norm_eps=cfg.layer_norm_eps,
                                           batch_first=True, norm_first=True).double()
        layer.self_attn.in_proj_weight.data = t(b.qkv.weight)
        layer.self_attn.in_proj_bias.data = t(b.qkv.bias if b.qkv.bias is not None
                                              else np.zeros(3 * d))
        layer.self_attn.out_proj.weight.data = t(b.proj.weight)
        layer.self_attn.out_proj.bias.data = t(b.proj.bias)
        layer.linear1.weight.data, layer.linear1.bias.data = t(b.fc1.weight), t(b.fc1.bias)
        layer.linear2.weight.data, layer.linear2.bias.data = t(b.fc2.weight), t(b.fc2.bias)
        layer.norm1.weight.data, layer.norm1.bias.data = t(b.norm1.weight), t(b.norm1.bias)
        layer.norm2.weight.data, layer.norm2.bias.data = t(b.norm2.weight), t(b.norm2.bias)
        layer.eval()
        layers.append(layer)
    norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps).double()
    norm.weight.data, norm.bias.data = t(w.norm.weight), t(w.norm.bias)
    head = nn.Linear(d, cfg.num_classes).double()
    head.weight.data, head.bias.data = t(w.head.weight), t(w.head.bias)

    def run(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = conv(t(images)).flatten(2).transpose(1, 2)
            cls = t(w.cls_token).expand(x.shape[0], -1, -1)
            if cfg.class_token == "extra":
                x = torch.cat([cls, x], dim=1)
            else:
                x = torch.cat([cls, x[:, 1:]], dim=1)
            x = x + t(w.pos_embed)
            for layer in layers:
                x = layer(x)
            return head(norm(x)[:, 0]).numpy()
    return run


@pytest.mark.parametrize("name", ["vit-digits", "vit-micro"])
def test_float_forward_matches_torch(name):
    cfg = preset(name)
    w = random_weights(cfg, seed=3)
    x = images_for(cfg, 5, seed=4)
    ours = forward(cfg, w, x)
    ref = torch_vit(cfg, w)(x)
    assert ours.shape == ref.shape == (5, cfg.num_classes)
    assert np.abs(ours - ref).max() <= 1e-4


def test_float_forward_matches_torch_at_deit_tiny_width():
    """DeiT-tiny's real widths (192 channels, 3 heads, 197 tokens), two blocks for speed."""
    cfg = preset("deit-tiny").replace(depth=2)
    w = random_weights(cfg, seed=5)
    x = images_for(cfg, 2, seed=6)
    assert np.abs(forward(cfg, w, x) - torch_vit(cfg, w)(x)).max() <= 1e-4


def test_torch_comparison_can_fail():
    """A wrong weight must show: swap Q and K in one block of the torch copy."""
    cfg = preset("vit-micro")
    w = random_weights(cfg, seed=3)
    x = images_for(cfg, 3, seed=4)
    qkv = w.blocks[0].qkv.weight
    d = cfg.embed_dim
    qkv_swapped = np.concatenate([qkv[d:2 * d], qkv[:d], qkv[2 * d:]])
    from dataclasses import replace
    bad = replace(w, blocks=(replace(w.blocks[0], qkv=replace(w.blocks[0].qkv,
                                                                weight=qkv_swapped)),))
    assert np.abs(forward(cfg, w, x) - torch_vit(cfg, bad)(x)).max() > 1e-3
