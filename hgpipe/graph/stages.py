"""Typed stages of the integer graph: their integer parameters and derived ranges.

Each stage states its exact integer semantics in its docstring; ``hgpipe.golden`` executes
them and the RTL implements them. ``ranges()`` derives the range (so the width) of every
intermediate signal from the input ranges and the stage's constants, such that no
operation can overflow; the golden model's trace uses the same names.
Tensor layout: (batch, tokens, channels); attention maps (batch, heads, tokens, tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from ..model.config import ClassToken
from .intrange import IntRange, dot_range
from .kinds import StageKind
from .table import PotTable


@dataclass(frozen=True, eq=False)
class Stage:
    name: str
    inputs: tuple[str, ...]
    in_ranges: tuple[IntRange, ...]
    ref: str            # the float activation this stage's output approximates
    out_scale: float    # real value of one output LSB (metadata: not part of the semantics)

    kind: ClassVar[StageKind]

    def ranges(self) -> dict[str, IntRange]:
        raise NotImplementedError

    @cached_property
    def derived(self) -> dict[str, IntRange]:
        return self.ranges()

    @property
    def out_range(self) -> IntRange:
        return self.derived["out"]


@dataclass(frozen=True, eq=False)
class Linear(Stage):
    """``acc[t, j] = bias[j] + sum_k x[t, k] * weight[j, k]`` (the raw accumulator).

    ``role`` is patch_embed, qkv, proj, fc1, fc2 or head; the head reads the class token's
    row only (``TokenLayout.cls_row``).
    """

    weight: np.ndarray = None  # (out, in) int
    bias: np.ndarray = None    # (out,) int, in accumulator units
    role: str = ""

    kind: ClassVar[StageKind] = StageKind.LINEAR

    @property
    def cls_only(self) -> bool:
        return self.role == "head"

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def ranges(self) -> dict[str, IntRange]:
        x = self.in_ranges[0]
        w = IntRange.of_array(self.weight)
        acc = dot_range(self.weight, x, self.bias)
        return {"weight": w, "product": x * w, "bias": IntRange.of_array(self.bias),
                "acc": acc, "out": acc}


@dataclass(frozen=True, eq=False)
class Requant(Stage):
    """``y = table(x)``: a requantizer, or GELU fused with its requantizer (``fn='gelu'``)."""

    table: PotTable = None
    fn: str = "identity"
    out_format: IntRange = None

    kind: ClassVar[StageKind] = StageKind.REQUANT

    def ranges(self) -> dict[str, IntRange]:
        x = self.in_ranges[0]
        return {"index_sum": self.table.index_sum_range(x),
                "index": IntRange(0, self.table.bound), "out": self.out_format}


@dataclass(frozen=True, eq=False)
class Tokens(Stage):
    """Class token and position embedding.

    ``mode='extra'`` prepends ``cls`` as token 0; ``'replace'`` overwrites patch token 0
    with it. Then ``y = clamp(x + pos, out_format)``. Streamed, each token goes to its
    row of the graph's ``TokenLayout`` and padding rows are 0.
    """

    cls: np.ndarray = None   # (D,) int
    pos: np.ndarray = None   # (T, D) int
    mode: ClassToken = ClassToken.EXTRA
    out_format: IntRange = None

    kind: ClassVar[StageKind] = StageKind.TOKENS

    def rom(self, layout) -> np.ndarray:
        """The position words a streamed stage adds, a row per stream row of ``layout``:
        ``pos`` in the layout's token order, the class token folded into its row, padding
        rows 0 (their input is zeroed too)."""
        pos = np.zeros((layout.rows, self.pos.shape[1]), dtype=np.int64)
        pos[:layout.tokens] = self.pos.astype(np.int64)[layout.model_index()]
        pos[layout.cls_row] += self.cls
        return pos

    def rom_range(self, padded: bool) -> IntRange:
        """The range of ``rom``'s words in any layout (with padding rows or without)."""
        folded = self.pos.astype(np.int64).copy()
        folded[0] += self.cls
        r = IntRange.of_array(folded)
        return IntRange.hull([r, IntRange(0, 0)]) if padded else r

    def ranges(self) -> dict[str, IntRange]:
        tok = IntRange.hull([self.in_ranges[0], IntRange.of_array(self.cls)])
        s = tok + IntRange.of_array(self.pos)
        return {"sum": s, "out": s.clamp(self.out_format.lo, self.out_format.hi)}


@dataclass(frozen=True, eq=False)
class LayerNorm(Stage):
    """Integer LayerNorm over the C channels of each token.

    ``s1 = sum x``, ``s2 = sum x^2``; ``d = C*x - s1`` (C times the centred value);
    ``v = C*s2 - s1^2`` (C^2 times the variance); ``r = rsqrt(v)`` (table);
    ``t = d * r``; ``u = t * gamma + beta``; ``y = clamp(u >> shift, out_format)``.
    The scale of x cancels in d / sqrt(v), so the table only depends on C and eps.
    """

    gamma: np.ndarray = None   # (C,) int
    beta: np.ndarray = None    # (C,) int (includes the rounding half)
    rsqrt: PotTable = None
    shift: int = 0
    out_format: IntRange = None

    kind: ClassVar[StageKind] = StageKind.LAYERNORM

    @property
    def channels(self) -> int:
        return self.gamma.shape[0]

    def ranges(self) -> dict[str, IntRange]:
        x, c = self.in_ranges[0], self.channels
        s1, s2 = x.scale(c), x.square().scale(c)
        span = x.hi - x.lo
        # d = (C-1) x_i - sum_{j != i} x_j
        d = IntRange(-(c - 1) * span, (c - 1) * span)
        # v = C^2 var(x) <= C^2 (hi - lo)^2 / 4, and v >= 0 (Cauchy-Schwarz)
        v = IntRange(0, (c * c * span * span) // 4)
        r = self.rsqrt.out_range
        t = d * r
        u = t * IntRange.of_array(self.gamma) + IntRange.of_array(self.beta)
        return {"s1": s1, "s2": s2, "c_s2": s2 * c, "s1_sq": s1.square(), "d": d, "v": v,
                "rsqrt_index_sum": self.rsqrt.index_sum_range(v),
                "r": r, "t": t, "u": u, "shifted": u.shr(self.shift),
                "out": u.shr(self.shift).clamp(self.out_format.lo, self.out_format.hi)}


@dataclass(frozen=True, eq=False)
class AttentionScores(Stage):
    """QK^T per head: ``s[h, i, j] = sum_d q[i, h*hd + d] * k[j, h*hd + d]``.

    The input is the requantized QKV tensor: Q in channels [0, D), K in [D, 2D).
    """

    heads: int = 1
    head_dim: int = 1

    kind: ClassVar[StageKind] = StageKind.QK

    def ranges(self) -> dict[str, IntRange]:
        x = self.in_ranges[0]
        p = x * x
        return {"product": p, "out": p.scale(self.head_dim)}


@dataclass(frozen=True, eq=False)
class Softmax(Stage):
    """Integer softmax over each row of scores.

    ``m = max x``; ``e = exp_table(m - x)``; ``z = sum e``; ``r = recip_table(z)``;
    ``y = clamp((e * r + 2^(shift-1)) >> shift, out_format)``. A streamed row may be
    longer than ``row_len`` (padding keys): those keys take part in neither the max nor
    the sum, and their ``y`` is 0.
    """

    exp: PotTable = None
    recip: PotTable = None
    shift: int = 1
    row_len: int = 1
    out_format: IntRange = None

    kind: ClassVar[StageKind] = StageKind.SOFTMAX

    def ranges(self) -> dict[str, IntRange]:
        x = self.in_ranges[0]
        d = IntRange(0, x.hi - x.lo)
        e = self.exp.out_range
        e_top = int(self.exp.apply(np.zeros(1, dtype=np.int64))[0])  # the row max's own term
        z = IntRange(max(e_top, 0), e.hi * self.row_len)
        r = self.recip.out_range
        prod = e * r + (1 << (self.shift - 1))
        return {"diff": d, "exp_index_sum": self.exp.index_sum_range(d), "e": e, "z": z,
                "recip_index_sum": self.recip.index_sum_range(z), "r": r, "product": prod,
                "out": prod.shr(self.shift).clamp(self.out_format.lo, self.out_format.hi)}


@dataclass(frozen=True, eq=False)
class AttentionValue(Stage):
    """AV per head, heads merged: ``o[i, h*hd + d] = sum_j p[h, i, j] * v[j, h*hd + d]``.

    Inputs: the softmax output and the requantized QKV tensor (V in channels [2D, 3D)).
    """

    heads: int = 1
    head_dim: int = 1
    tokens: int = 1

    kind: ClassVar[StageKind] = StageKind.AV

    def ranges(self) -> dict[str, IntRange]:
        p = self.in_ranges[0] * self.in_ranges[1]
        return {"product": p, "out": p.scale(self.tokens)}


@dataclass(frozen=True, eq=False)
class ResidualAdd(Stage):
    """``y = clamp(round(skip / 2^skip_shift) + branch, out_format)``.

    The branch arrives already requantized to the output scale; the skip path's scale is
    2^skip_shift times finer, so a rounding shift aligns it without a multiplier.
    """

    skip_shift: int = 0
    out_format: IntRange = None

    kind: ClassVar[StageKind] = StageKind.ADD

    def ranges(self) -> dict[str, IntRange]:
        k = self.skip_shift
        skip = self.in_ranges[0]
        aligned = (skip + (1 << (k - 1))).shr(k) if k else skip
        s = aligned + self.in_ranges[1]
        return {"aligned": aligned, "sum": s,
                "out": s.clamp(self.out_format.lo, self.out_format.hi)}


STAGE_KINDS: dict[StageKind, type[Stage]] = {
    cls.kind: cls for cls in (Linear, Requant, Tokens, LayerNorm, AttentionScores, Softmax,
                              AttentionValue, ResidualAdd)
}
