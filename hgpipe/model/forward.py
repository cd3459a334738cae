"""Float reference forward of a ViT/DeiT in numpy (float64), with named taps.

The tap names are the integer graph's stage names, so any stage's integer output can be
compared with the float activation it approximates.
"""

from __future__ import annotations

from math import erf, sqrt
from typing import Callable

import numpy as np

from ..errors import HgpipeError
from .config import ClassToken, ViTConfig
from .weights import Affine, ViTWeights

Tap = Callable[[str, np.ndarray], None]

_erf = np.vectorize(erf, otypes=[np.float64])


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as torch's default."""
    try:
        from scipy.special import erf as fast_erf
        return 0.5 * x * (1.0 + fast_erf(x / sqrt(2.0)))
    except ImportError:  # scipy is optional; the vectorised math.erf is exact but slow
        return 0.5 * x * (1.0 + _erf(x / sqrt(2.0)))


def layer_norm(x: np.ndarray, a: Affine, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * a.weight + a.bias


def linear(x: np.ndarray, a: Affine) -> np.ndarray:
    y = x @ a.weight.T
    return y if a.bias is None else y + a.bias


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def image_batch(cfg: ViTConfig, images: np.ndarray, what: str = "images") -> np.ndarray:
    """Accept (N, C, H, W) or (N, H, W, C) images of finite real values; return
    (N, C, H, W) float64. Errors name the input as ``what``."""
    a = np.asarray(images)
    s, c = cfg.image_size, cfg.in_chans
    if a.ndim == 4 and a.shape[1:] == (c, s, s):
        out = a
    elif a.ndim == 4 and a.shape[1:] == (s, s, c):
        out = a.transpose(0, 3, 1, 2)
    else:
        raise HgpipeError(f"{what}: shape {tuple(a.shape)}: expected (N, {c}, {s}, {s}) "
                          f"or (N, {s}, {s}, {c})")
    if not np.issubdtype(out.dtype, np.number) or np.issubdtype(out.dtype, np.complexfloating):
        raise HgpipeError(f"{what}: dtype {a.dtype}: expected real numbers")
    if len(out) == 0:
        raise HgpipeError(f"{what}: shape {tuple(a.shape)}: expected at least one image")
    out = out.astype(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        n, *at = np.argwhere(bad)[0]
        raise HgpipeError(f"{what}: {int(bad.sum())} values are not finite (first: image {n}, "
                          f"{float(out[(n, *at)])} at {tuple(int(i) for i in at)}): expected "
                          "finite pixel values")
    big = np.abs(out) > 1e6
    if big.any():
        n, *at = np.argwhere(big)[0]
        raise HgpipeError(f"{what}: {int(big.sum())} values above 1e6 in magnitude (first: "
                          f"image {n}, {float(out[(n, *at)]):g} at {tuple(int(i) for i in at)}):"
                          " expected pixel values of at most 1e6 (normalised images are within "
                          "about 10)")
    return out


def patchify(cfg: ViTConfig, images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, patches, C*P*P), patches in raster order, each flattened (C, P, P)
    as the patch-embedding convolution's weight is."""
    n, c, p, g = images.shape[0], cfg.in_chans, cfg.patch_size, cfg.grid
    x = images.reshape(n, c, g, p, g, p).transpose(0, 2, 4, 1, 3, 5)
    return x.reshape(n, g * g, c * p * p)


def assemble_tokens(cfg: ViTConfig, patch_tokens: np.ndarray, cls: np.ndarray,
                    pos: np.ndarray) -> np.ndarray:
    """Class token (prepended or replacing patch 0) plus position embedding."""
    n, _, d = patch_tokens.shape
    cls_row = np.broadcast_to(cls.reshape(1, 1, d), (n, 1, d))
    if cfg.class_token is ClassToken.EXTRA:
        x = np.concatenate([cls_row, patch_tokens], axis=1)
    else:
        x = patch_tokens.copy()
        x[:, :1] = cls_row
    return x + pos.reshape(1, cfg.num_tokens, d)


def forward(cfg: ViTConfig, w: ViTWeights, images: np.ndarray, tap: Tap | None = None
            ) -> np.ndarray:
    """Logits (N, classes) of the float ViT. ``tap(name, array)`` sees every activation."""
    def t(name: str, x: np.ndarray) -> np.ndarray:
        if tap is not None:
            tap(name, x)
        return x

    images = image_batch(cfg, images)
    n, d, h, hd, tn = images.shape[0], cfg.embed_dim, cfg.num_heads, cfg.head_dim, cfg.num_tokens
    patches = t("patches", patchify(cfg, images))
    pe = Affine(w.patch.weight.reshape(d, -1), w.patch.bias)
    x = t("patch_embed", linear(patches, pe))
    x = t("tokens", assemble_tokens(cfg, x, w.cls_token, w.pos_embed))
    for i, b in enumerate(w.blocks):
        p = f"blocks.{i}"
        y = t(f"{p}.norm1", layer_norm(x, b.norm1, cfg.layer_norm_eps))
        qkv = t(f"{p}.attn.qkv", linear(y, b.qkv))
        q, k, v = (qkv[..., j * d:(j + 1) * d].reshape(n, tn, h, hd).transpose(0, 2, 1, 3)
                   for j in range(3))
        s = t(f"{p}.attn.qk", q @ k.transpose(0, 1, 3, 2))
        a = t(f"{p}.attn.softmax", softmax(s / sqrt(hd)))
        o = t(f"{p}.attn.av", (a @ v).transpose(0, 2, 1, 3).reshape(n, tn, d))
        o = t(f"{p}.attn.proj", linear(o, b.proj))
        x = t(f"{p}.add1", x + o)
        y = t(f"{p}.norm2", layer_norm(x, b.norm2, cfg.layer_norm_eps))
        y = t(f"{p}.mlp.fc1", linear(y, b.fc1))
        y = t(f"{p}.mlp.gelu", gelu(y))
        y = t(f"{p}.mlp.fc2", linear(y, b.fc2))
        x = t(f"{p}.add2", x + y)
    x = t("norm", layer_norm(x, w.norm, cfg.layer_norm_eps))
    return t("head", linear(x[:, 0], w.head))
