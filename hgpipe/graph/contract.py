"""The per-stage hardware contract: folding, legal foldings, stream shapes, cycles per image.

One formula per stage kind, read by the planner, the performance and resource models and
the RTL (whose tests check that simulated cycles equal it). Streams carry beats of
``tp`` tokens x ``lanes`` channels, token groups outermost, channel chunks inside:
beat ``(g, c)`` holds tokens ``g*tp ...`` and channels ``c*lanes ...``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .kinds import InputGrain
from .pipeline import Pipelining
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
        return (t // f.tp) * (in_channels // f.cip)     # padding keys included
    # a per-head attention unit also takes in the whole QKV stream, one beat per cycle:
    # QK^T at cip lanes (Q and K chunks), AV at cop lanes (V chunks)
    qkv = 3 * st.heads * st.head_dim if isinstance(st, (AttentionScores, AttentionValue)) \
        else 0
    if isinstance(st, AttentionScores):
        return max((t // f.tp) * (st.head_dim // f.cip) * (t // f.cop),
                   (t // f.tp) * (qkv // f.cip))
    if isinstance(st, AttentionValue):
        return max((t // f.tp) * (t // f.cip) * (st.head_dim // f.cop),
                   (t // f.tp) * (qkv // f.cop))
    raise TypeError(f"no contract for stage kind {st.kind!r}")


def rows(st: Stage, f: Folding, tokens: int) -> int:
    """Rows (token groups of ``tp``) a stage takes in per image: its scheduling unit."""
    return tokens // f.tp


def row_cycles(st: Stage, f: Folding, tokens: int, in_channels: int) -> float:
    """Cycles between consecutive rows in steady state: ``cycles / rows`` (exact except for
    the head, whose one computed row is spread over the rows it drains)."""
    return cycles(st, f, tokens, in_channels) / rows(st, f, tokens)


def lag(st: Stage, f: Folding, tokens: int, in_channels: int, pipe: Pipelining) -> int:
    """Cycles from the last input beat of a row to the last output beat of that row, when
    the stage is otherwise idle. Streaming stages pass a beat through two registers (the
    add: input and output; tokens: the position ROM's read and the output), a table lookup through its two index registers and its
    ROM; LayerNorm and
    softmax replay the row after its statistics (one and two passes); linear and attention
    stages compute the whole row after it has arrived, through the multiply-accumulate's
    register stages (``pipe.mac_extra``)."""
    if isinstance(st, Tokens):
        return 1 + pipe.read_latency    # the position word's read, then the output register
    if isinstance(st, ResidualAdd):
        return 2        # input registers, then the output register
    if isinstance(st, Requant):
        return 2 + pipe.read_latency    # the index's add, its shift and clamp, the ROM
    if isinstance(st, LayerNorm):
        return in_channels // f.cip + 3 + pipe.row_pass_extra("layernorm", "layernorm")
    if isinstance(st, Softmax):
        return 2 * (in_channels // f.cip) + 4 + pipe.row_pass_extra("max", "exp") \
            + pipe.row_pass_extra("recip", "normalise")
    if isinstance(st, Linear):
        return (st.in_features // f.cip) * (st.out_features // f.cop) + 2 \
            + pipe.mac_extra(f.cip)
    return row_cycles(st, f, tokens, in_channels) + 2 + pipe.mac_extra(f.cip)


def input_grains(st: Stage) -> tuple[InputGrain, ...]:
    """Per input: ``ROW`` (a row is computed from the same rows of the input) or ``TENSOR``
    (every row needs the whole input tensor: K for QK^T, V for AV)."""
    if isinstance(st, AttentionScores):
        return (InputGrain.TENSOR,)
    if isinstance(st, AttentionValue):
        return (InputGrain.ROW, InputGrain.TENSOR)
    return (InputGrain.ROW,) * len(st.inputs)


def legal_foldings(st: Stage, tokens: int, in_channels: int, tp: int) -> list[Folding]:
    """Every folding with token parallelism ``tp`` that divides the stage's dimensions
    (``tokens``: the streamed rows, a multiple of ``tp`` once padded)."""
    def divisors(n):
        return [d for d in range(1, n + 1) if n % d == 0]
    if tokens % tp:
        return []
    if isinstance(st, Linear):
        return [Folding(tp, a, b) for a in divisors(st.in_features)
                for b in divisors(st.out_features)]
    # K and V are banked by key (key mod cop for K, key mod cip for V) so that the ``tp``
    # keys of one beat are written into distinct banks: at least ``tp`` banks
    if isinstance(st, AttentionScores):
        return [Folding(tp, a, b) for a in divisors(st.head_dim) for b in divisors(tokens)
                if b >= tp]
    if isinstance(st, AttentionValue):
        return [Folding(tp, a, b) for a in divisors(tokens) for b in divisors(st.head_dim)
                if a >= tp]
    return [Folding(tp, a, a) for a in divisors(in_channels)]


FIFO_MARGIN_BEATS = 4   # registers of gearboxes and forks that the plan's row model ignores
Q_RING_SLACK = 2        # token groups of the Q wait ring beyond one image


def q_ring_groups(tokens: int, tp: int) -> int:
    """Token groups the QK^T unit's Q wait ring holds: every query of the image waits for
    the last key, and the next image's first groups arrive while the first are computed
    (each group is freed when its scores are done)."""
    return tokens // tp + Q_RING_SLACK


def fifo_beats(depth_tokens: int, tp: int, channels: int, lanes: int) -> int:
    """Beats of the FIFO on an edge whose plan holds ``depth_tokens`` tokens: beats of
    ``tp`` tokens x ``lanes`` channels (the consumer's), plus the margin."""
    return -(-depth_tokens // tp) * -(-channels // lanes) + FIFO_MARGIN_BEATS


def input_lanes(st: Stage, f: Folding, k: int) -> int:
    """Channels a beat of stage input ``k`` carries: AV's V at ``cop``, all others ``cip``."""
    return f.cop if isinstance(st, AttentionValue) and k == 1 else f.cip


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
