"""The LayerNorm outputs' per-channel ranges moved into the linear each one feeds, before
``--ptq full`` (the scale reparameterisation of RepQ-ViT: Li et al., 2023).

A LayerNorm output is quantized on one step for all its channels, whose ranges differ
several-fold after the affine. With ``d`` the middle of channel ``c``'s range on the
calibration images and ``r`` a per-channel factor, the LayerNorm's affine emits
``(y - d) / r`` and the linear it feeds takes ``W * r`` (its columns) and ``b + W d``: the
float model computes the same function, the integer graph needs nothing new (a LayerNorm's
affine and a linear's weights are per channel already), and the one step fits the
channels better. ``r = h**alpha`` over its mean, ``h`` the half-range: ``alpha`` 0 leaves
the model alone, 1 gives every channel the same range (and the linear's weights all the
spread, which its own per-tensor step then pays for)."""

from __future__ import annotations

import torch
from torch import nn

from .torch_vit import TimmViT, batched


def _rescale(norm: nn.LayerNorm, lin: nn.Linear, h: torch.Tensor, alpha: float) -> None:
    y = batched(norm, h).reshape(-1, h.shape[-1])
    lo, hi = y.min(0).values, y.max(0).values
    r = ((hi - lo) / 2).clamp(min=1e-6) ** alpha
    r = r / r.mean()
    # the centre moves into the linear's bias; a linear without one (qkv_bias false) keeps it
    if lin.bias is not None:
        mid = (hi + lo) / 2
        lin.bias += lin.weight @ mid
        norm.bias -= mid
    norm.weight /= r
    norm.bias /= r
    lin.weight *= r[None]


def rescale_norms(model: TimmViT, x: torch.Tensor, alpha: float) -> None:
    """In place, on a float model (no fake quantization on): every block's two LayerNorm
    outputs centred and divided by ``r`` (``alpha``: the module's docstring), ranges taken on
    the images ``x``."""
    if not alpha:
        return
    with torch.no_grad():
        h = batched(model.embed, x)
        for b in model.blocks:
            _rescale(b.norm1, b.attn.qkv, h, alpha)
            h = batched(lambda t, b=b: t + b.attn(b.norm1(t)), h)
            _rescale(b.norm2, b.mlp.fc1, h, alpha)
            h = batched(lambda t, b=b: t + b.mlp(b.norm2(t)), h)
