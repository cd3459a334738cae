"""The per-stage hardware contract: folding, legal foldings, stream shapes, cycles per image.

One formula per stage kind, read by the planner, the performance and resource models and
the RTL (whose tests check that simulated cycles equal it). Streams carry beats of
``tp`` tokens x ``lanes`` channels, token groups outermost, channel chunks inside:
beat ``(g, c)`` holds tokens ``g*tp ...`` and channels ``c*lanes ...``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .stages import (AttentionScores, AttentionValue, LayerNorm, Linear, Requant, ResidualAdd,
                     Softmax, Stage, Tokens)


@dataclass(frozen=True)
class Folding:
    """Parallelism of one stage: ``tp`` tokens per beat; ``cip`` input and ``cop`` output
    channels per beat (element-wise stages use ``cip == cop``)."""

    tp: int = 1
    cip: int = 1
    cop: int = 1

    def __str__(self) -> str:
        return f"tp{self.tp}-cip{self.cip}-cop{self.cop}"

    def __post_init__(self) -> None:
        for k in ("tp", "cip", "cop"):
            if getattr(self, k) < 1:
                raise ValueError(f"folding: {k}={getattr(self, k)}: expected >= 1")


@dataclass(frozen=True)
class StreamShape:
    """A tensor as a stream: ``beats`` per image of ``tp`` x ``lanes`` elements."""

    tokens: int
    channels: int
    tp: int
    lanes: int
    bits: int

    @property
    def beats(self) -> int:
        return (self.tokens // self.tp) * (self.channels // self.lanes)

    @property
    def width(self) -> int:
        return self.tp * self.lanes * self.bits


def tokens_of(st: Stage, tokens: int) -> int:
    """Token rows a stage's output has (the head keeps the class token only)."""
    return 1 if isinstance(st, Linear) and st.cls_only else tokens


def divides(folding: Folding, tokens: int, cin: int, cout: int) -> bool:
    return tokens % folding.tp == 0 and cin % folding.cip == 0 and cout % folding.cop == 0


def channels(st: Stage, in_channels: int) -> tuple[int, int]:
    """(input, output) channels of a token-wise stage."""
    if isinstance(st, Linear):
        return st.in_features, st.out_features
    return in_channels, in_channels


def cycles(st: Stage, f: Folding, tokens: int, in_channels: int) -> int:
    """Steady-state cycles per image (the stage's initiation interval).

    Linear: every (token group, output chunk, input chunk) takes one cycle. Element-wise
    stages: one beat per cycle. LayerNorm and softmax overlap the statistics pass of one
    row with the output pass of the previous one (row double-buffering), so a row costs
    one pass. Attention: per head, one (query group, chunk, chunk) per cycle, heads in
    parallel.
    """
    t = tokens
    if isinstance(st, Linear):
        groups = 1 if st.cls_only else t // f.tp
        compute = groups * (st.in_features // f.cip) * (st.out_features // f.cop)
        return max(compute, (t // f.tp) * (st.in_features // f.cip))  # must drain all input
    if isinstance(st, (Requant, ResidualAdd, LayerNorm, Tokens)):
        return (t // f.tp) * (in_channels // f.cip)
    if isinstance(st, Softmax):
        return (t // f.tp) * (st.row_len // f.cip)
    if isinstance(st, AttentionScores):
        return (t // f.tp) * (st.head_dim // f.cip) * (t // f.cop)
    if isinstance(st, AttentionValue):
        return (t // f.tp) * (t // f.cip) * (st.head_dim // f.cop)
    raise TypeError(f"no contract for stage kind {st.kind!r}")


def to_beats(x, tp: int, lanes: int):
    """(images, tokens, channels) -> (beats, tp*lanes) in stream order; element ``t*lanes+e``
    of a beat is token ``t`` of the group, channel ``e`` of the chunk."""
    import numpy as np
    n, t, c = x.shape
    b = np.asarray(x).reshape(n, t // tp, tp, c // lanes, lanes).transpose(0, 1, 3, 2, 4)
    return b.reshape(-1, tp * lanes)


def from_beats(beats, images: int, tokens: int, channels: int, tp: int, lanes: int):
    """Inverse of ``to_beats``."""
    import numpy as np
    b = np.asarray(beats).reshape(images, tokens // tp, channels // lanes, tp, lanes)
    return b.transpose(0, 1, 3, 2, 4).reshape(images, tokens, channels)
