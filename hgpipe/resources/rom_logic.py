"""LUTs of a ROM whose contents are known: the LUT6 cover a mapper finds for its words.

A random-content ROM of ``d`` words needs about ``d / 64`` LUT6 a bit and its read
multiplexer (``memory.lut_cost``). The tables of hgpipe are not random: a requantizer's
is monotone, saturates over much of its range, and its high bits are thresholds of the
index. Yosys (ABC) maps such a table to a fraction of the random figure, by an amount
that depends on the contents. This module estimates that cover by Shannon decomposition,
as a LUT mapper covers a truth table:

- each output bit is a Boolean function of the address bits, reduced to the bits it
  depends on; a function of at most six of them is one LUT6 (none for a constant or a
  plain address bit);
- a wider one is split on its top one or two address bits: one LUT6 selects among the
  distinct cofactors (a constant costs no input), each cofactor covered in turn; the
  split that needs fewest LUTs wins;
- identical functions are built once, across the bits of a word too (structural hashing);
- a bit of exactly seven address bits is ``abc9``'s LUT7 (two LUT6 and a MUXF7): Yosys
  maps a 128-word ROM so, while deeper ones come out near the six-input cover above.

Checked against Yosys 0.70 ``synth_xilinx -family xcup -nobram`` on the tables of
DeiT-tiny's blocks 0, 5 and 11 at w3a3 and w4a4 (sums per table kind: 512-word requant
tables 433 LUT against Yosys's 431, where a random ROM's figure is 792; 128-word rsqrt
0.92, reciprocal 0.95; 64- and 32-word tables 0.84-0.87) and on random ROMs of 512 to
4,096 words (0.95-1.02): ``tests/plan/test_resources.py``.
"""

from __future__ import annotations

from functools import cache

import numpy as np

LUT_INPUTS = 6


def rom_luts(words, width: int) -> int:
    """LUT6 of a ROM holding ``words`` (ints, ``width`` bits each, two's complement)."""
    words = [int(w) & ((1 << width) - 1) for w in words] or [0]
    return _rom_luts(tuple(words), width)


@cache
def _rom_luts(words: tuple[int, ...], width: int) -> int:
    n = max(1, (len(words) - 1).bit_length())
    # addresses past the last word are never read (the index is clamped): the last word
    # stands in for them, which keeps a saturated top as constant as it is
    w = np.array(words + (words[-1],) * ((1 << n) - len(words)), dtype=np.int64)
    built: set[bytes] = set()
    for b in range(width):
        tt = _reduce(((w >> b) & 1).astype(np.uint8).tobytes())
        if len(tt) == 1 << (LUT_INPUTS + 1):     # a LUT7: two LUT6 and a MUXF7
            built |= {tt, tt + b"7"}
        else:
            built |= _cover(tt)
    return len(built)


def _reduce(tt: bytes) -> bytes:
    """The truth table (lowest address bit fastest) over only the address bits it
    depends on."""
    a = np.frombuffer(tt, dtype=np.uint8)
    n = a.size.bit_length() - 1
    if n == 0:
        return tt
    v = a.reshape((2,) * n)          # axis 0: the top address bit
    keep = tuple(slice(None) if not np.array_equal(np.take(v, 0, axis=k), np.take(v, 1, axis=k))
                 else 0 for k in range(n))
    return np.ascontiguousarray(v[keep]).reshape(-1).tobytes()


@cache
def _cover(tt: bytes) -> frozenset[bytes]:
    """The set of functions (truth tables over their support) built as LUT6 to cover
    ``tt`` (already reduced)."""
    a = np.frombuffer(tt, dtype=np.uint8)
    n = a.size.bit_length() - 1
    if n <= 1:
        return frozenset()          # a constant or an address bit (or its inverse)
    if n <= LUT_INPUTS:
        return frozenset({tt})
    best: frozenset[bytes] = frozenset()
    for m in (1, 2):    # split on the top m bits: a LUT6 is at most a 4:1 multiplexer
        cof = a.reshape(1 << m, -1)
        distinct = {_reduce(np.ascontiguousarray(c).tobytes()) for c in cof}
        inputs = [c for c in distinct if len(c) > 1]     # a constant needs no input
        cover = frozenset({tt}).union(*(_cover(c) for c in inputs))
        if not best or len(cover) < len(best):
            best = cover
    return best
