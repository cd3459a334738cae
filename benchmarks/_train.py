"""The accuracy benchmark's data: scikit-learn's bundled digits (no download). Training and
quantization-aware fine-tuning are hgpipe's own (``hgpipe.quant.qat``, ``hgpipe qat``)."""

from __future__ import annotations

import numpy as np


def digits_split(seed: int = 0):
    """Digits as (N, 1, 8, 8) floats normalised to about [-1, 1]; 75/25 split."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0 - 0.5) / 0.5
    x, y = x[:, None], d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.75 * len(x))
    return x[idx[:cut]], y[idx[:cut]], x[idx[cut:]], y[idx[cut:]]
