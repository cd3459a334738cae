"""The power-of-two-indexed table: the one mechanism behind every requantizer and non-linearity.

    y = T[g][k][clamp((x + b[g][k]) >> s[g][k], 0, bound)]

A shift and a small ROM replace a multiplier. ``g`` is the table group of the channel
(one group for per-tensor scales, several for per-channel or Q/K/V scales); ``k`` is the
segment of ``x`` (most tables have one; the reciprocal and rsqrt tables cover a wide input
range with a few segments, each with its own shift, chosen by comparing ``x`` with the
``splits``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .intrange import IntRange


@dataclass(frozen=True, eq=False)
class PotTable:
    offset: np.ndarray    # (G, S) int: b
    shift: np.ndarray     # (G, S) int >= 0: s
    entries: np.ndarray   # (G, S, bound + 1) int: T
    splits: np.ndarray    # (G, S - 1) int, ascending: segment k holds splits[k-1] <= x < splits[k]
    group_size: int = 0   # channels per group (0: one group for every channel)

    def __post_init__(self) -> None:
        for f in ("offset", "shift", "entries", "splits"):
            object.__setattr__(self, f, np.asarray(getattr(self, f), dtype=np.int64))
        g, s = self.offset.shape
        if self.shift.shape != (g, s) or self.entries.shape[:2] != (g, s) \
                or self.splits.shape != (g, s - 1):
            raise ValueError("PotTable: inconsistent shapes")
        if np.any(self.shift < 0):
            raise ValueError("PotTable: negative shift")
        if np.any(np.diff(self.splits, axis=1) <= 0):
            raise ValueError("PotTable: splits must ascend")
        if g > 1 and self.group_size <= 0:
            raise ValueError("PotTable: several groups need a group_size")

    # Shape ------------------------------------------------------------------------------
    @property
    def groups(self) -> int:
        return self.offset.shape[0]

    @property
    def segments(self) -> int:
        return self.offset.shape[1]

    @property
    def bound(self) -> int:
        return self.entries.shape[2] - 1

    @property
    def size(self) -> int:
        """Entries per group (all segments)."""
        return self.segments * (self.bound + 1)

    @property
    def out_range(self) -> IntRange:
        return IntRange.of_array(self.entries)

    def index_sum_range(self, x: IntRange) -> IntRange:
        """Range of ``x + b`` before the shift, over every group and segment."""
        return IntRange(x.lo + int(self.offset.min()), x.hi + int(self.offset.max()))

    def words(self) -> list[int]:
        """The ROM's words, group by group, segment by segment (what ``table_index``
        addresses)."""
        return [int(v) for v in self.entries.reshape(-1)]

    # Semantics --------------------------------------------------------------------------
    def select(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(group, segment) of every element of ``x``; channels on the last axis."""
        x = np.asarray(x, dtype=np.int64)
        if self.groups == 1:
            g = np.zeros(x.shape, dtype=np.int64)
        else:
            channels = x.shape[-1]
            if channels != self.groups * self.group_size:
                raise ValueError(f"PotTable: {channels} channels, expected "
                                 f"{self.groups} groups x {self.group_size}")
            g = np.broadcast_to(np.arange(channels) // self.group_size, x.shape)
        if self.segments == 1:
            return g, np.zeros(x.shape, dtype=np.int64)
        return g, (x[..., None] >= self.splits[g]).sum(-1)

    def index_sum(self, x: np.ndarray) -> np.ndarray:
        """``x + b`` before the shift (what the hardware's adder holds)."""
        g, k = self.select(x)
        return np.asarray(x, dtype=np.int64) + self.offset[g, k]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Look ``x`` up. With several groups, channels are on the last axis."""
        x = np.asarray(x, dtype=np.int64)
        g, k = self.select(x)
        idx = np.clip((x + self.offset[g, k]) >> self.shift[g, k], 0, self.bound)
        return self.entries[g, k, idx]

    def to_dict(self) -> dict:
        return {"offset": self.offset.tolist(), "shift": self.shift.tolist(),
                "entries": self.entries.tolist(), "splits": self.splits.tolist(),
                "group_size": self.group_size}

    @classmethod
    def from_dict(cls, d: dict) -> "PotTable":
        g, s = np.asarray(d["offset"]).shape
        return cls(offset=np.asarray(d["offset"]), shift=np.asarray(d["shift"]),
                   entries=np.asarray(d["entries"]),
                   splits=np.asarray(d["splits"], dtype=np.int64).reshape(g, s - 1),
                   group_size=d["group_size"])
