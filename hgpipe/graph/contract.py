"""The per-stage hardware contract: folding, legal foldings, stream shapes, cycles per image,
memories.

One ``Contract`` object per stage kind (``CONTRACTS``), read by the planner, the performance and resource models and
the RTL (whose tests check that simulated cycles equal it). Streams carry beats of
``tp`` tokens x ``lanes`` channels, token groups outermost, channel chunks inside:
beat ``(g, c)`` holds tokens ``g*tp ...`` and channels ``c*lanes ...``.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import memories
from .kinds import InputGrain, StageKind
from .memories import MemoryDecl, q_ring_groups  # noqa: F401 (q_ring_groups: re-exported)
from .pipeline import Pipelining
from .stages import AttentionScores, AttentionValue, Linear, Stage


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


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class Contract:
    """One stage kind's hardware contract, stated once: its cycles per image, its lag, the
    grain and lanes of its inputs, its legal foldings and its memories. ``tokens`` is the
    streamed row count (padding included, a multiple of ``tp``) and ``channels`` the
    input's channels (softmax: the streamed keys). The RTL implements it; its tests check
    simulated cycles against ``cycles`` and the memories built against ``memories``."""

    def cycles(self, st: Stage, f: Folding, tokens: int, channels: int) -> int:
        """Steady-state cycles per image (the stage's initiation interval). Element-wise
        stages: one beat a cycle; LayerNorm and softmax overlap the statistics pass of one
        row with the output pass of the previous one, so a row costs one pass."""
        return (tokens // f.tp) * (channels // f.cip)

    def lag(self, st: Stage, f: Folding, tokens: int, channels: int, pipe: Pipelining) -> int:
        """Cycles from the last input beat of a row to the last output beat of that row,
        when the stage is otherwise idle."""
        raise NotImplementedError

    def input_grains(self, st: Stage) -> tuple[InputGrain, ...]:
        """Per input: ``ROW`` (a row is computed from the same rows of the input) or
        ``TENSOR`` (every row needs the whole input tensor)."""
        return (InputGrain.ROW,) * len(st.inputs)

    def input_lanes(self, st: Stage, f: Folding, k: int) -> int:
        """Channels a beat of input ``k`` carries."""
        return f.cip

    def foldings(self, st: Stage, tokens: int, channels: int, tp: int) -> list[Folding]:
        """Every folding with token parallelism ``tp`` that divides the dimensions
        (element-wise: ``cip == cop``)."""
        return [Folding(tp, a, a) for a in _divisors(channels)]

    declare = None    # the kind's memory declaration (``graph.memories``), None: no memory
    per_head = False  # one unit per attention head (its memories are a head's), else one

    def memories(self, st: Stage, f: Folding, pipe: Pipelining, *, tokens: int = 0,
                 channels: int = 0, banks: int = 2) -> tuple[MemoryDecl, ...]:
        """The memories one unit of the stage builds (a head's, for the per-head kinds),
        ``banks`` images deep where it keeps whole tensors (K, V). ``tokens`` and
        ``channels`` as for ``cycles``; a linear stage's memories need neither."""
        if self.declare is None:
            return ()
        return self.declare(st, f, tokens, channels, pipe, banks)


class _Stream(Contract):
    """A beat in, a beat out through a fixed pipeline: ``lag`` is its registers."""

    def __init__(self, lag, declare=None):
        self._lag, self.declare = lag, declare

    def lag(self, st, f, tokens, channels, pipe):
        return self._lag(pipe)


class _RowPasses(Contract):
    """LayerNorm and softmax: the row is replayed after its statistics, once a pass (a row
    of beats, a register stage and the pass's extra stages each)."""

    def __init__(self, declare, *steps: tuple[str, str], per_head: bool = False):
        self.declare, self.steps, self.per_head = declare, steps, per_head

    def lag(self, st, f, tokens, channels, pipe):
        n = len(self.steps)
        return n * (channels // f.cip) + 2 + n + sum(pipe.row_pass_extra(*s)
                                                     for s in self.steps)


class _Linear(Contract):
    """Every (token group, output chunk, input chunk) takes one cycle; the head computes
    its class token's row alone (and drains the others at one beat a cycle)."""

    declare = staticmethod(memories.linear)

    def cycles(self, st: Linear, f, tokens, channels):
        groups = 1 if st.cls_only else tokens // f.tp
        compute = groups * (st.in_features // f.cip) * (st.out_features // f.cop)
        return max(compute, (tokens // f.tp) * (st.in_features // f.cip))  # drains all input

    def lag(self, st: Linear, f, tokens, channels, pipe):
        # the whole row after it has arrived, through the multiply-accumulate's registers
        return (st.in_features // f.cip) * (st.out_features // f.cop) + 2 \
            + pipe.mac_extra(f.cip)

    def foldings(self, st: Linear, tokens, channels, tp):
        return [Folding(tp, a, b) for a in _divisors(st.in_features)
                for b in _divisors(st.out_features)]


class _Attention(Contract):
    """A per-head unit: one (query group, chunk, chunk) a cycle, heads in parallel; it also
    takes in the whole QKV stream, one beat a cycle. A word of K holds cop keys (of V, cip
    keys), so a beat's ``tp`` keys fill at most one word and start at most one more: at
    least ``tp`` keys a word."""

    per_head = True

    def lag(self, st, f, tokens, channels, pipe):
        return self.cycles(st, f, tokens, channels) / (tokens // f.tp) + 2 \
            + pipe.mac_extra(f.cip)


class _Qk(_Attention):
    declare = staticmethod(memories.qk)

    def cycles(self, st: AttentionScores, f, tokens, channels):
        qkv = 3 * st.heads * st.head_dim            # Q and K chunks at cip lanes
        return max((tokens // f.tp) * (st.head_dim // f.cip) * (tokens // f.cop),
                   (tokens // f.tp) * (qkv // f.cip))

    def input_grains(self, st):
        return (InputGrain.TENSOR,)

    def foldings(self, st: AttentionScores, tokens, channels, tp):
        return [Folding(tp, a, b) for a in _divisors(st.head_dim) for b in _divisors(tokens)
                if b >= tp]


class _Av(_Attention):
    declare = staticmethod(memories.av)

    def cycles(self, st: AttentionValue, f, tokens, channels):
        qkv = 3 * st.heads * st.head_dim            # V chunks at cop lanes
        return max((tokens // f.tp) * (tokens // f.cip) * (st.head_dim // f.cop),
                   (tokens // f.tp) * (qkv // f.cop))

    def input_grains(self, st):
        return (InputGrain.ROW, InputGrain.TENSOR)

    def input_lanes(self, st, f, k):
        return f.cop if k == 1 else f.cip           # V, read cop dims a beat

    def foldings(self, st: AttentionValue, tokens, channels, tp):
        return [Folding(tp, a, b) for a in _divisors(tokens) for b in _divisors(st.head_dim)
                if a >= tp]


CONTRACTS: dict[StageKind, Contract] = {
    StageKind.LINEAR: _Linear(),
    # the position word's read, then the output register
    StageKind.TOKENS: _Stream(lambda pipe: 1 + pipe.read_latency, memories.position),
    StageKind.ADD: _Stream(lambda pipe: 2),          # input registers, output register
    # the index's add, its shift and clamp, the ROM
    StageKind.REQUANT: _Stream(lambda pipe: 2 + pipe.read_latency, memories.requant),
    StageKind.LAYERNORM: _RowPasses(memories.layernorm, ("layernorm", "layernorm")),
    StageKind.SOFTMAX: _RowPasses(memories.softmax, ("max", "exp"), ("recip", "normalise"),
                                  per_head=True),
    StageKind.QK: _Qk(),
    StageKind.AV: _Av(),
}


def contract(st: Stage) -> Contract:
    try:
        return CONTRACTS[st.kind]
    except (KeyError, AttributeError):
        raise TypeError(f"no contract for stage {type(st).__name__}") from None


def cycles(st: Stage, f: Folding, tokens: int, in_channels: int) -> int:
    """Steady-state cycles per image (``Contract.cycles``)."""
    return contract(st).cycles(st, f, tokens, in_channels)


def units(st: Stage, heads: int) -> int:
    """Units the stage builds: one per head for the per-head kinds, else one."""
    return heads if contract(st).per_head else 1


def rows(st: Stage, f: Folding, tokens: int) -> int:
    """Rows (token groups of ``tp``) a stage takes in per image: its scheduling unit."""
    return tokens // f.tp


def row_cycles(st: Stage, f: Folding, tokens: int, in_channels: int) -> float:
    """Cycles between consecutive rows in steady state: ``cycles / rows`` (exact except for
    the head, whose one computed row is spread over the rows it drains)."""
    return cycles(st, f, tokens, in_channels) / rows(st, f, tokens)


def lag(st: Stage, f: Folding, tokens: int, in_channels: int, pipe: Pipelining) -> int:
    """``Contract.lag``."""
    return contract(st).lag(st, f, tokens, in_channels, pipe)


def stage_memories(st: Stage, f: Folding, pipe: Pipelining, *, tokens: int = 0,
                   channels: int = 0, banks: int = 2) -> dict[str, MemoryDecl]:
    """``Contract.memories`` by name."""
    return {m.name: m for m in contract(st).memories(st, f, pipe, tokens=tokens,
                                                     channels=channels, banks=banks)}


def input_grains(st: Stage) -> tuple[InputGrain, ...]:
    """``Contract.input_grains``."""
    return contract(st).input_grains(st)


def legal_foldings(st: Stage, tokens: int, in_channels: int, tp: int) -> list[Folding]:
    """Every folding with token parallelism ``tp`` that divides the stage's dimensions
    (``tokens``: the streamed rows, a multiple of ``tp`` once padded)."""
    if tokens % tp:
        return []
    return contract(st).foldings(st, tokens, in_channels, tp)


FIFO_MARGIN_BEATS = 4   # registers of gearboxes and forks that the plan's row model ignores

def fifo_beats(depth_tokens: int, tp: int, channels: int, lanes: int) -> int:
    """Beats of the FIFO on an edge whose plan holds ``depth_tokens`` tokens: beats of
    ``tp`` tokens x ``lanes`` channels (the consumer's), plus the margin."""
    return -(-depth_tokens // tp) * -(-channels // lanes) + FIFO_MARGIN_BEATS


def input_lanes(st: Stage, f: Folding, k: int) -> int:
    """Channels a beat of stage input ``k`` carries: AV's V at ``cop``, all others ``cip``."""
    return contract(st).input_lanes(st, f, k)


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
