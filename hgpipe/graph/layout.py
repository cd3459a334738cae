"""Token layout: which row of a stream holds which token, and how many rows are padding.

A stream carries ``rows`` token rows per image, a multiple of the token parallelism, so
every folding works for any token count (DeiT's 197 is prime). The real tokens are rows
``0 .. tokens-1``; rows ``tokens .. rows-1`` are padding. The patch stream likewise
carries ``patch_rows`` rows, its padding zeros.

In the stream order the patches keep their order and the class token follows them
(``extra``: row ``patches``) or overwrites the first one (``replace``: row 0); the
model's own order puts the class token first. Every operation but attention works row by
row, attention sums over keys, and integer sums do not depend on their order, so a real
token's result is the same bit for bit in either order; only the position embedding and
the head's class row follow the token. Padded rows are zeros from the tokens stage on,
their keys masked in softmax (probability 0), so they never reach a real token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.config import ViTConfig


def padded(n: int, tp: int) -> int:
    """``n`` rounded up to a multiple of ``tp``."""
    return -(-n // tp) * tp


@dataclass(frozen=True)
class TokenLayout:
    patches: int        # real patch rows
    tokens: int         # real token rows (patches, plus one with an extra class token)
    rows: int           # token rows a stream carries per image (>= tokens)
    patch_rows: int     # patch rows the input stream carries per image (>= patches)
    cls_row: int        # the class token's row

    def __post_init__(self) -> None:
        if not (self.patches <= self.patch_rows and self.tokens <= self.rows
                and 0 <= self.cls_row < self.tokens
                and self.tokens - self.patches in (0, 1)):
            raise ValueError(f"token layout: inconsistent {self}")

    @classmethod
    def model(cls, config: ViTConfig) -> "TokenLayout":
        """The float model's order: the class token first, no padding."""
        return cls(config.num_patches, config.num_tokens, config.num_tokens,
                   config.num_patches, 0)

    @classmethod
    def stream(cls, config: ViTConfig, tp: int) -> "TokenLayout":
        """The hardware's order at token parallelism ``tp``: patches in order, the class
        token after them (or in place of the first), padding to a multiple of ``tp``."""
        p, t = config.num_patches, config.num_tokens
        return cls(p, t, padded(t, tp), padded(p, tp), p if t > p else 0)

    @property
    def extra(self) -> bool:
        """The class token is a token of its own (not in place of a patch)."""
        return self.tokens > self.patches

    def model_index(self) -> np.ndarray:
        """For each real row, the index of its token in the model's order (class first)."""
        rows = np.arange(self.tokens)
        if not self.extra:
            return rows
        return np.where(rows == self.cls_row, 0, rows + (rows < self.cls_row))

    def patch_of_row(self) -> np.ndarray:
        """For each stream row, the patch row its input comes from, or -1 (the class
        token's row and padding read no patch)."""
        rows = np.arange(self.rows)
        patch = rows - (1 if self.extra and self.cls_row == 0 else 0)
        real = (rows < self.tokens) & (rows != self.cls_row) & (patch >= 0) \
            & (patch < self.patches)
        return np.where(real, patch, -1)

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "rows": self.rows, "patches": self.patches,
                "patch_rows": self.patch_rows, "cls_row": self.cls_row}
