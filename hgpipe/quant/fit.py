"""Fit a power-of-two-indexed table ``T[clamp((x + b) >> s, 0, bound)]`` to a function.

``fn`` maps the integer input to the ideal real output in output LSBs. For each candidate
shift and offset, every entry is the rounded mean of ``fn`` over the calibration samples
that land in its bin (the squared-error optimum; bins no sample reaches take ``fn`` at
their centre), and the candidate with the least squared error on the samples wins.
"""

from __future__ import annotations

from math import ceil, log2
from typing import Callable

import numpy as np

from ..graph.table import PotTable
from .observers import subsample

Fn = Callable[[np.ndarray], np.ndarray]


def _entries(fn: Fn, xs: np.ndarray, target: np.ndarray, b: int, s: int, size: int,
             out_lo: int, out_hi: int, lo: int, hi: int) -> tuple[np.ndarray, float]:
    idx = np.clip((xs + b) >> s, 0, size - 1)
    count = np.bincount(idx, minlength=size)
    total = np.bincount(idx, weights=target, minlength=size)
    centres = np.arange(size, dtype=np.int64) * (1 << s) - b + ((1 << s) - 1) / 2.0
    # A bin past the domain's edge holds inputs that clamp to the edge anyway.
    mean = np.where(count > 0, total / np.maximum(count, 1), fn(np.clip(centres, lo, hi)))
    entries = np.clip(np.rint(mean), out_lo, out_hi).astype(np.int64)
    err = float(np.mean((entries[idx] - target) ** 2)) if xs.size else 0.0
    return entries, err


def _interior(xs: np.ndarray, target: np.ndarray, out_lo: int, out_hi: int
              ) -> tuple[int, int]:
    """The input span whose outputs do not saturate: only it needs fine bins."""
    inside = (target > out_lo + 0.5) & (target < out_hi - 0.5)
    pick = xs[inside] if inside.any() else xs
    return int(pick.min()), int(pick.max())


def fit_segment(fn: Fn, xs: np.ndarray, size: int, out_lo: int, out_hi: int,
                domain: tuple[int, int] | None = None) -> tuple[int, int, np.ndarray]:
    """(offset, shift, entries) of one segment fitted to samples ``xs``."""
    xs = np.asarray(xs, dtype=np.int64)
    target = np.clip(fn(xs.astype(np.float64)), out_lo - 0.5, out_hi + 0.5)
    lo, hi = domain if domain is not None else _interior(xs, target, out_lo, out_hi)
    span = hi - lo + 1
    s0 = max(0, ceil(log2(span / size))) if span > size else 0
    # candidates are scored on 2^16 samples; the winner's entries come from all of them
    xc = subsample(xs, 1 << 16)
    tc = np.clip(fn(xc.astype(np.float64)), out_lo - 0.5, out_hi + 0.5)
    best = None
    for s in sorted({max(s0 - 1, 0), s0, s0 + 1}):
        w = 1 << s
        cover = size * w
        base = -(lo - max(cover - span, 0) // 2)  # centre the covered window on [lo, hi]
        for b in sorted({base, base + w // 2, -lo, -lo + w // 2}):
            err = _entries(fn, xc, tc, b, s, size, out_lo, out_hi, lo, hi)[1]
            if best is None or err < best[0] - 1e-12:
                best = (err, b, s)
    _, b, s = best
    return b, s, _entries(fn, xs, target, b, s, size, out_lo, out_hi, lo, hi)[0]


def fit_table(fn: Fn, samples: np.ndarray, size: int, out_lo: int, out_hi: int,
              segments: int = 1, domain: tuple[int, int] | None = None) -> PotTable:
    """One-group table; with several segments, split the domain geometrically (the
    reciprocal and rsqrt inputs span orders of magnitude) and fit each part."""
    xs = subsample(np.asarray(samples, dtype=np.int64))
    if segments == 1:
        b, s, e = fit_segment(fn, xs, size, out_lo, out_hi, domain)
        return PotTable(offset=[[b]], shift=[[s]], entries=[[e]], splits=np.zeros((1, 0)))
    lo, hi = domain if domain is not None else (int(xs.min()), int(xs.max()))
    lo = max(lo, 1)
    hi = max(hi, lo + segments * size)
    edges = np.unique(np.rint(lo * (hi / lo) ** (np.arange(segments + 1) / segments))
                      .astype(np.int64))
    if len(edges) != segments + 1:
        edges = np.linspace(lo, hi + 1, segments + 1).astype(np.int64)
    edges[-1] = hi + 1
    offs, shifts, ents = [], [], []
    for k in range(segments):
        a, z = int(edges[k]), int(edges[k + 1]) - 1
        grid = np.linspace(a, z, 4 * size).astype(np.int64)  # defines every bin
        part = xs[(xs >= a) & (xs <= z)]
        b, s, e = fit_segment(fn, np.concatenate([part, grid]), size, out_lo, out_hi, (a, z))
        offs.append(b)
        shifts.append(s)
        ents.append(e)
    return PotTable(offset=[offs], shift=[shifts], entries=[ents], splits=[edges[1:-1]])


def fit_grouped(fns: list[Fn], samples: list[np.ndarray], size: int, out_lo: int,
                out_hi: int, group_size: int) -> PotTable:
    """One single-segment table per channel group (per-channel or per-part scales)."""
    parts = [fit_segment(fn, subsample(x), size, out_lo, out_hi) for fn, x in zip(fns, samples)]
    if len(parts) == 1:
        group_size = 0
    return PotTable(offset=[[b] for b, _, _ in parts], shift=[[s] for _, s, _ in parts],
                    entries=[[e] for _, _, e in parts], splits=np.zeros((len(parts), 0)),
                    group_size=group_size)
