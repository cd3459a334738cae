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

from .torch_vit import TimmViT


def _batched_range(f, x: torch.Tensor, n: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel min and max of ``f`` over every token of ``x``."""
    lo = hi = None
    for i in range(0, len(x), n):
        y = f(x[i:i + n]).reshape(-1, x.shape[-1])
        blo, bhi = y.min(0).values, y.max(0).values
        lo = blo if lo is None else torch.minimum(lo, blo)
        hi = bhi if hi is None else torch.maximum(hi, bhi)
    return lo, hi


def _rescale(norm: nn.LayerNorm, lin: nn.Linear, h: torch.Tensor, alpha: float) -> None:
    lo, hi = _batched_range(norm, h)
    mid, half = (hi + lo) / 2, ((hi - lo) / 2).clamp(min=1e-6)
    r = half ** alpha
    r = r / r.mean()
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
        h = torch.cat([model.embed(x[i:i + 128]) for i in range(0, len(x), 128)])
        for b in model.blocks:
            _rescale(b.norm1, b.attn.qkv, h, alpha)
            h = torch.cat([h[i:i + 128] + b.attn(b.norm1(h[i:i + 128]))
                           for i in range(0, len(h), 128)])
            _rescale(b.norm2, b.mlp.fc1, h, alpha)
            h = torch.cat([h[i:i + 128] + b.mlp(b.norm2(h[i:i + 128]))
                           for i in range(0, len(h), 128)])
