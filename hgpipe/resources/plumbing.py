"""Resources of the plumbing between stages (``hgpipe.rtl.plumbing``): FIFO control, forks,
gearboxes and head merges, and of the status registers (``hgpipe.rtl.status``), as the
netlist's parts (``hgpipe.plan.netlist``) size them.

Each part's logic is ``a * size + b`` like a stage's (kinds ``fifo``, ``fork``,
``gearbox``, ``merge``, ``status`` in the calibrated coefficients, fitted on small and
DeiT-tiny-sized instances), with structural sizes counted from the part: a FIFO's pointers
and level (and its read register where the words sit in LUTs), a fork's per-output flags,
a gearbox's held lanes and, when it narrows, the chunk multiplexer, a merge's per-head
payload multiplexer, the status registers' counters. A FIFO's words are a memory placed by the plan (``fifo_words``).
"""

from __future__ import annotations

from math import ceil, log2

from .memory import Memory, options
from .model import Resources, logic, placed


def _clog2(n: int) -> int:
    return max(1, ceil(log2(max(n, 2))))


def mux_luts(n: int) -> int:
    """LUT6s per bit of an ``n``-to-1 multiplexer on a counted select: one takes four data
    inputs and their two selects, each further LUT three more."""
    return 0 if n <= 1 else 1 + ceil(max(0, n - 4) / 3)


def pmux_luts(n: int) -> float:
    """LUTs per bit of an ``n``-way one-hot-decoded multiplexer (Yosys's ``pmux``, as an
    ``Array`` indexed by a counter maps): one up to four ways, then about 0.3 a way (Yosys
    0.70 measured: 6 ways 3.2, 12 ways 5.1 LUTs a bit)."""
    return 0 if n <= 1 else (1 if n <= 4 else 1.4 + 0.3 * n)


def fifo_sizes(width: int, beats: int, memory: str | None) -> tuple[tuple, float]:
    """A FIFO's pointers, level and valid: LUTs in two terms, the control, and the control
    again where the words are in LUTs (their address decode); its read register is in
    FFs where its words are in LUTs (in a block RAM it is the block's own)."""
    a, lvl = _clog2(beats), _clog2(beats + 1)
    in_luts = memory in (None, "lutram")
    return (2 * a + lvl, (2 * a + lvl) * in_luts), 2 * a + lvl + 1 + width * in_luts


def fork_sizes(width: int, ways: int) -> tuple[float, float]:
    """Per output a taken flag and its valid; the payload is wires."""
    return 2 * ways + 1, ways


def merge_sizes(width: int, heads: int, row: int) -> tuple[float, float]:
    """The per-head payload multiplexer and the head and beat counters."""
    sel = _clog2(heads) + _clog2(row)
    return width * pmux_luts(heads) + sel, sel


def gearbox_sizes(tp: int, a: int, b: int, bits: int) -> tuple[float, float]:
    """Widening: the held beats and the output register; narrowing: the held beat, its
    chunk multiplexer and the output register; otherwise the general shift register."""
    if b % a == 0:
        k = b // a
        return k + _clog2(k), tp * (k - 1) * a * bits + tp * b * bits + _clog2(k) + 1
    if a % b == 0:
        k = a // b
        # the chunk is picked by ``k - left`` from an ``Array`` of k: Yosys's pmux
        return tp * b * bits * pmux_luts(k) + _clog2(k + 1), \
            tp * (a + b) * bits + _clog2(k + 1) + 1
    cap = 2 * a + b
    return tp * cap * bits * mux_luts(a + 2), tp * cap * bits + _clog2(cap + 1)


# cycle, images, snapshots and two shadows; the read data, both responses and valids
STATUS_FIXED_FF = 5 * 32 + 32 + 2 + 2 + 2


def status_sizes(counters: int) -> tuple[float, float]:
    """The status registers: per counter a 32-bit incrementer and its share of the read
    multiplexer (LUTs), the live count and its snapshot (FFs)."""
    return 32 * counters, 64 * counters + STATUS_FIXED_FF


def plumbing_logic(kind: str, sizes: tuple[float, float]) -> Resources:
    """Calibrated logic of a plumbing part of ``kind`` (``fifo``, ``fork``, ``gearbox``,
    ``merge``, ``status``) from its sizes."""
    lut, ff = logic(kind, *sizes)
    return Resources(lut=lut, ff=ff)


def fifo_words(name: str, width: int, beats: int, memory: str | None) -> Resources:
    """A FIFO's words where the plan placed them (unplaced: LUTs)."""
    kind, mem = memory or "lutram", Memory(name, width, max(beats, 2))
    return placed(kind, options(mem)[kind], mem)
