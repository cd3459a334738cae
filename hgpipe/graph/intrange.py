"""Closed integer intervals: the derived range, and so the bit width, of every signal."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class IntRange:
    """All values a signal can take: ``lo <= v <= hi``. Its width follows from it."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "lo", int(self.lo))
        object.__setattr__(self, "hi", int(self.hi))
        if self.lo > self.hi:
            raise ValueError(f"empty range [{self.lo}, {self.hi}]")

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @cached_property   # read tens of thousands of times by the planner's costing
    def bits(self) -> int:
        """Two's-complement width when signed, plain binary otherwise (at least 1)."""
        if self.signed:
            return max((-self.lo - 1).bit_length(), self.hi.bit_length()) + 1
        return max(self.hi.bit_length(), 1)

    @classmethod
    def of_bits(cls, bits: int, signed: bool) -> "IntRange":
        return cls(-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else cls(0, (1 << bits) - 1)

    @classmethod
    def hull(cls, ranges: Iterable["IntRange"]) -> "IntRange":
        rs = list(ranges)
        return cls(min(r.lo for r in rs), max(r.hi for r in rs))

    @classmethod
    def of_array(cls, a: np.ndarray) -> "IntRange":
        return cls(int(np.min(a)), int(np.max(a)))

    def __add__(self, other: "IntRange | int") -> "IntRange":
        o = other if isinstance(other, IntRange) else IntRange(other, other)
        return IntRange(self.lo + o.lo, self.hi + o.hi)

    def __sub__(self, other: "IntRange | int") -> "IntRange":
        o = other if isinstance(other, IntRange) else IntRange(other, other)
        return IntRange(self.lo - o.hi, self.hi - o.lo)

    def __mul__(self, other: "IntRange | int") -> "IntRange":
        o = other if isinstance(other, IntRange) else IntRange(other, other)
        p = (self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi)
        return IntRange(min(p), max(p))

    def scale(self, n: int) -> "IntRange":
        """The range of a sum of ``n`` values each in this range."""
        return IntRange(self.lo * n, self.hi * n)

    def shr(self, s: int) -> "IntRange":
        """Arithmetic right shift (floor division by 2**s) is monotonic."""
        return IntRange(self.lo >> s, self.hi >> s)

    def clamp(self, lo: int, hi: int) -> "IntRange":
        return IntRange(min(max(self.lo, lo), hi), max(min(self.hi, hi), lo))

    def square(self) -> "IntRange":
        hi = max(self.lo * self.lo, self.hi * self.hi)
        lo = 0 if self.lo <= 0 <= self.hi else min(self.lo * self.lo, self.hi * self.hi)
        return IntRange(lo, hi)

    def contains(self, a: np.ndarray) -> bool:
        return bool(np.size(a) == 0 or (np.min(a) >= self.lo and np.max(a) <= self.hi))

    def __str__(self) -> str:
        return f"[{self.lo}, {self.hi}] ({'s' if self.signed else 'u'}{self.bits})"


def dot_range(weight: np.ndarray, x: IntRange, bias: np.ndarray | None = None) -> IntRange:
    """Exact range of ``weight @ x + bias`` over all inputs with entries in ``x``.

    Each output row reaches its extremes at a corner (x_k = lo or hi by the sign of w_k),
    so the bound is attained: the width is as narrow as it can be and still cannot overflow.
    """
    w = np.asarray(weight, dtype=np.int64)  # weights are narrow: no int64 overflow
    hi = np.maximum(w * x.lo, w * x.hi).sum(axis=-1)
    lo = np.minimum(w * x.lo, w * x.hi).sum(axis=-1)
    if bias is not None:
        b = np.asarray(bias, dtype=np.int64)
        hi, lo = hi + b, lo + b
    return IntRange(int(np.min(lo)), int(np.max(hi)))
