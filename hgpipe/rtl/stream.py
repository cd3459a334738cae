"""Stream plumbing shared by every stage: lane packing and the one-register pipeline step.

Streams are ``amaranth.lib.stream`` interfaces (valid/ready, AXI-Stream transfer rule)
whose payload is ``lanes`` elements of ``bits`` bits packed LSB first.
"""

from __future__ import annotations

from amaranth import Shape, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import stream

from ..graph.intrange import IntRange


def shape_of(r: IntRange) -> Shape:
    return signed(r.bits) if r.signed else unsigned(r.bits)


def stream_of(lanes: int, r: IntRange) -> stream.Signature:
    return stream.Signature(lanes * r.bits)


def lane(payload: Value, e: int, r: IntRange) -> Value:
    """Element ``e`` of a packed payload, with the range's signedness."""
    v = payload[e * r.bits:(e + 1) * r.bits]
    return v.as_signed() if r.signed else v


def pack(m, payload: Value, values: list[Value], r: IntRange, domain: str = "comb") -> None:
    """Drive the lanes of ``payload`` from ``values`` (truncated to the lane width)."""
    for e, v in enumerate(values):
        m.d[domain] += payload[e * r.bits:(e + 1) * r.bits].eq(v)


def pack_word(values, bits: int) -> int:
    """Constant lanes packed into one memory word, as ``lane`` reads them back."""
    mask = (1 << bits) - 1
    word = 0
    for e, v in enumerate(values):
        word |= (int(v) & mask) << (e * bits)
    return word
