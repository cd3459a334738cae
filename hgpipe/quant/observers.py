"""Observers: pick a per-tensor (or per-channel) scale from calibration samples."""

from __future__ import annotations

import numpy as np

_MAX_SAMPLES = 1 << 18


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def quantize(x: np.ndarray, scale: np.ndarray | float, bits: int, signed: bool) -> np.ndarray:
    lo, hi = qrange(bits, signed)
    return np.clip(np.rint(x / scale), lo, hi).astype(np.int64)


def subsample(x: np.ndarray, n: int = _MAX_SAMPLES, seed: int = 0) -> np.ndarray:
    x = np.asarray(x).reshape(-1)
    if x.size <= n:
        return x
    return np.random.default_rng(seed).choice(x, n, replace=False)


def _clip_mse(x: np.ndarray, top: float, bits: int, signed: bool) -> float:
    """The clipping value in (0, top] whose quantization error is smallest."""
    lo, hi = qrange(bits, signed)
    x = subsample(x, 1 << 16)

    def err(c: float) -> float:
        s = c / hi
        return float(np.mean((np.clip(np.rint(x / s), lo, hi) * s - x) ** 2))

    # coarse grid, then a fine one around the best point
    coarse = top * np.linspace(0.05, 1.0, 20)
    c0 = min(coarse, key=err)
    step = top * 0.05
    return min(np.linspace(max(c0 - step, 1e-3 * top), min(c0 + step, top), 21), key=err)


def choose_scale(samples: np.ndarray, bits: int, signed: bool, method: str,
                 percentile: float = 99.99) -> float:
    """Scale (real value of one LSB) for ``samples`` quantized to ``bits``."""
    x = subsample(np.asarray(samples, dtype=np.float64))
    mag = np.abs(x) if signed else np.maximum(x, 0.0)
    top = float(mag.max(initial=0.0))
    if top <= 0.0:
        return 1.0
    if method == "minmax":
        clip = top
    elif method == "percentile":
        clip = float(np.percentile(mag, percentile)) or top
    else:
        clip = _clip_mse(x, top, bits, signed)
    return clip / qrange(bits, signed)[1]


def weight_scales(w: np.ndarray, bits: int, method: str, per_channel: bool,
                  percentile: float = 99.99) -> np.ndarray:
    """Symmetric weight scale per output row (per channel) or one for all, as (out,)."""
    rows = w.reshape(w.shape[0], -1)
    if per_channel:
        return np.array([choose_scale(r, bits, True, method, percentile) for r in rows])
    return np.full(rows.shape[0], choose_scale(rows, bits, True, method, percentile))
