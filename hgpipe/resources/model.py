"""Analytic resource model: LUT / FF / DSP / BRAM / URAM of one stage at one folding.

Logic is ``a * size + b`` per stage kind, where ``size`` is a structural count of the
stage's datapath (partial-product bits, adder bits, register bits) derived from its
folding and its derived widths, and ``a, b`` are calibrated against Yosys
``synth_xilinx -family xcup`` (``benchmarks/calibrate_resources.py`` writes
``coefficients.json``). Memories are placed analytically (``memory.place``). In the
dot products, a product goes to DSPs where Yosys puts it (``dsp_blocks``: nine bits of
operands or more); narrower ones are LUT fabric, counted at the LUTs Yosys maps one product of those operand formats to (the
calibrated ``products`` table): a 3 x 3-bit product is one LUT6 per output bit, a 4 x 4-bit
one is a multiplier array twice that size, so bits x bits would misjudge one or the other.
LayerNorm's and softmax's few wide products go to DSPs as Yosys splits them
(``dsp_blocks``), their LUT size counting only the fabric around them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import cache
from math import ceil
from pathlib import Path

from ..graph.contract import Folding, stage_memories, units
from ..graph.intrange import IntRange
from ..graph.memories import row_banks
from ..graph.pipeline import Pipelining, default
from ..graph.table import PotTable
from ..graph.stages import (AttentionScores, AttentionValue, LayerNorm, Linear, Requant,
                            ResidualAdd, Softmax, Stage, Tokens)
from .registers import mac_pipe_ff, row_pass_ff, shift_register
from .memory import (BUDGET_KEY, ON_CHIP, Memory, MemoryKind, block_mux_luts,
                     budget_key, declared, place_in)

COEFFICIENTS = Path(__file__).with_name("coefficients.json")
FABRIC_MAX_BITS = 8         # the product table covers fabric operands up to this wide
MODEL_KIND = {"linear": "linear", "qk": "qk", "av": "av", "requant": "requant",
              "add": "add", "tokens": "add", "layernorm": "layernorm", "softmax": "softmax",
              "ddr": "ddr", "axi_arbiter": "axi_arbiter", "fifo": "fifo", "fork": "fork",
              "gearbox": "gearbox", "merge": "merge", "status": "status"}


@dataclass(frozen=True)
class Resources:
    lut: float = 0.0
    ff: float = 0.0
    dsp: int = 0
    bram: float = 0.0
    uram: int = 0

    def __add__(self, o: Resources) -> Resources:
        return Resources(self.lut + o.lut, self.ff + o.ff, self.dsp + o.dsp,
                         self.bram + o.bram, self.uram + o.uram)

    def as_dict(self) -> dict[str, float]:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Datapath:
    """What the logic model needs: structural sizes and the stage's memories."""

    lut_size: int | tuple[int, ...]     # several terms: each its own fitted cost
    ff_size: int
    dsp: int
    memories: tuple[Memory, ...]
    pipe_ff: int = 0        # register bits of the timing pipeline, counted exactly
    pipe_lut: int = 0       # its shift-register LUTs (``shift_register``), counted exactly
    # (memory, term of lut_size): that term's fitted LUTs come with the ROM, and only where
    # it is placed in LUTs (``Memory.lut_extra``)
    rom_terms: tuple[tuple[str, int], ...] = ()


def _bits(r: IntRange) -> int:
    return r.bits


def tree_bits(terms: int, r: IntRange) -> int:
    """Adder bits of ``hgpipe.rtl.stream.tree_sum`` over ``terms`` values in ``r``."""
    return _tree_bits(terms, r.lo, r.hi)


@cache
def _tree_bits(terms: int, lo: int, hi: int) -> int:
    level, bits = [IntRange(lo, hi)] * terms, 0
    while len(level) > 1:
        nxt = [a + b for a, b in zip(level[0::2], level[1::2])]
        bits += sum(x.bits for x in nxt)
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return bits


def operand_format(r: IntRange) -> str:
    """``s3``, ``u4``: the key of an operand in the calibrated products table."""
    return f"{'s' if r.signed else 'u'}{r.bits}"


def product_luts(x: IntRange, w: IntRange) -> int:
    """LUTs of one fabric product of operands in ``x`` and ``w`` (calibrated)."""
    key = f"{operand_format(x)}*{operand_format(w)}"
    try:
        return coefficients()["products"][key]
    except KeyError:
        raise KeyError(f"no calibrated product {key}: re-run benchmarks/calibrate_resources.py"
                       ) from None


def dsp_blocks(a: IntRange, b: IntRange) -> int:
    """DSP48E2 blocks of one product as Yosys ``synth_xilinx`` maps it: the multiplier is
    signed 27 x 18 (an unsigned operand takes one more bit), products under 9 bits stay in
    fabric, wider ones are split into 26 x 17-bit pieces. Checked against Yosys-measured
    products (``dsp_products`` in the coefficients) by the tests."""
    wa, wb = (r.bits + (not r.signed) for r in (a, b))
    if min(wa, wb) < 2 or a.bits + b.bits < 9:
        return 0
    hi, lo = max(wa, wb), min(wa, wb)
    if hi <= 27 and lo <= 18:
        return 1
    return max(ceil((p - 1) / 26) * ceil((q - 1) / 17) for p, q in ((hi, lo), (lo, hi)))


@cache  # the planner costs the same operand formats tens of thousands of times
def fabric_formats() -> list[tuple[IntRange, IntRange]]:
    """Every pair of operand formats up to ``FABRIC_MAX_BITS`` wide whose product Yosys
    keeps in LUT fabric (``dsp_blocks`` is 0): the calibrated product table's keys."""
    fmts = [IntRange.of_bits(b, s) for b in range(1, FABRIC_MAX_BITS + 1) for s in (True, False)]
    return [(x, w) for x in fmts for w in fmts if not dsp_blocks(x, w)]


def index_size(table: PotTable, x: IntRange) -> int:
    """LUT size of ``hgpipe.rtl.lut.table_index`` on ``x``: the offset adder, the segment
    comparators, the multiplexer over the table's distinct shifts and the clamp (a
    multiplexer per index bit, and the bits above the index reduced to its two limits)."""
    sb = table.index_sum_range(x).bits
    shifts = len(set(table.shift.ravel().tolist()))
    ib = table.bound.bit_length()
    above = max(0, sb - int(table.shift.min()) - ib)
    return ((sb if table.offset.any() else 0) + (table.segments - 1) * x.bits
            + sb * (shifts - 1).bit_length() + ib + -(-above // 3))


def _products(outputs: int, x: IntRange, w: IntRange, acc: int, cip: int
              ) -> tuple[int, int, int]:
    """(lut size, dsp, ff size) of ``outputs`` dot-product lanes of ``cip`` terms: the
    products (in LUTs, or DSPs for wide operands), their adder tree and the accumulator."""
    dsp = outputs * cip * dsp_blocks(x, w)
    pp = 0 if dsp else product_luts(x, w)
    return outputs * (cip * pp + tree_bits(cip, x * w) + acc), dsp, outputs * acc


def datapath(st: Stage, f: Folding, tokens: int, in_channels: int, heads: int = 1,
             coarse_banks: int = 2, pipe: Pipelining | None = None) -> Datapath:
    """The stage's datapath at folding ``f``, pipelined as ``pipe`` says: attention stages
    own their K/V/Q buffers, ``coarse_banks`` images deep."""
    d, n = st.derived, f.tp * f.cip
    pipe = pipe or default()
    # the memories the stage contract declares, in each unit (a head's, for the per-head
    # kinds: ``heads``)
    decls = stage_memories(st, f, pipe, tokens=tokens, channels=in_channels,
                           banks=coarse_banks)
    mems = tuple(declared(m, units(st, heads)) for m in decls.values())
    if isinstance(st, Linear):
        xb, ab = _bits(st.in_ranges[0]), _bits(d["acc"])
        tp = 1 if st.cls_only else f.tp    # the head computes the class token's row alone
        lut, dsp, ff = _products(tp * f.cop, st.in_ranges[0], d["weight"], ab, f.cip)
        return Datapath(lut, ff + tp * f.cip * xb, dsp, mems,
                        mac_pipe_ff(tp * f.cop, st.in_ranges[0], d["weight"], f.cip, pipe))
    if isinstance(st, (AttentionScores, AttentionValue)):
        h, ab = st.heads, _bits(d["out"])
        lut, dsp, ff = _products(h * f.tp * f.cop, st.in_ranges[0], st.in_ranges[-1], ab,
                                 f.cip)
        # LUTs in two terms: the dot products, and the K/V write port: its address
        # arithmetic, and where a beat fills only part of a word, the multiplexers that
        # merge its keys with the gathered ones, a word wide (``QkvWriter.keyed``; the
        # gather memory is costed where it is placed); FFs: the accumulators and the
        # output register (``stream.mac``), a word each
        kv = mems[0]        # K or V: a key chunk a word
        keys = f.cop if isinstance(st, AttentionScores) else f.cip
        lut = (lut, h * ((kv.depth - 1).bit_length() + (kv.width if f.tp < keys else 0)))
        return Datapath(lut, 2 * ff, dsp, mems,
                        mac_pipe_ff(h * f.tp * f.cop, st.in_ranges[0], st.in_ranges[-1], f.cip,
                                    pipe))
    if isinstance(st, Requant):
        t = st.table
        # every register is counted: the index pipeline below, the ROM's read registers
        # with its placement
        # per lane: a fixed cost (Yosys folds the index's add and clamp into the ROM's
        # LUTs where it can: widths barely show) and the multiplexers that pick the
        # offset and base of several groups or segments, by their select bits
        return Datapath((n, n * (t.groups * t.segments - 1).bit_length()), 0, 0, mems,
                        # the index's sum, then the index, per lane; the valid line
                        n * (_bits(t.index_sum_range(st.in_ranges[0]))
                             + (t.groups * t.size - 1).bit_length()) + pipe.read_latency + 1)
    if isinstance(st, (ResidualAdd, Tokens)):
        ob = _bits(d["sum"])
        # tokens: the input beat waits out the position ROM's read, the output is registered
        pff = n * _bits(st.out_range) + 1 + (pipe.read_latency - 1) * (
            n * _bits(st.in_ranges[0]) + 1) if isinstance(st, Tokens) else 0
        return Datapath(n * sum(_bits(r) for r in st.in_ranges) + n * ob, n * _bits(st.out_range),
                        0, mems, pff)
    if isinstance(st, LayerNorm):
        # per lane x*x, (C*x - s1)*r and t*gamma in DSPs; per token s1*s1
        xr, gr = st.in_ranges[0], IntRange.of_array(st.gamma)
        db, tb, ub, vb = (_bits(d[k]) for k in ("d", "t", "u", "v"))
        xb = _bits(xr)
        s1b, s2b = _bits(d["s1"]), _bits(d["s2"])
        nb = in_channels // f.cip
        banks = row_banks(decls["row"], nb)
        dsp = (n * (dsp_blocks(xr, xr) + dsp_blocks(d["d"], d["r"]) + dsp_blocks(d["t"], gr))
               + f.tp * dsp_blocks(d["s1"], d["s1"]))
        # three terms, each its fitted cost: per lane the adders and multiplexers around
        # the DSPs (C*x's shifted adds less s1, the sum of t*gamma's DSP pieces and
        # + beta, the clamp); per token the sums of x and x^2 and their accumulators,
        # C*s2's shifted adds, v, the rsqrt index (``index_size``) and the held s1 and r;
        # and per channel of the row, which DeiT-tiny's LayerNorm (192 channels: ~3 LUTs a
        # channel, at every TP) shows and the 16-channel instances cannot: the affine ROM
        # in LUTs merged into the logic beside it (Yosys -flatten), so it comes with that
        # ROM (``rom_terms``): Yosys 1,294 LUT a LayerNorm with the ROM in a block RAM,
        # the model 1,311 without the term
        adds = bin(in_channels).count("1")
        lut = (n * (adds * db + dsp_blocks(d["t"], gr) * ub + _bits(d["shifted"])),
               f.tp * (tree_bits(f.cip, xr) + tree_bits(f.cip, xr * xr) + 2 * s1b + s2b
                       + (adds - 1) * _bits(d["c_s2"]) + vb + index_size(st.rsqrt, d["v"])
                       + _bits(d["r"])),
               in_channels)
        # timing: the input beat; per token C*s2, s1^2, v, the rsqrt index and s1's wait;
        # per lane C*x - s1, *r, *gamma + beta, and gamma, beta and r waiting
        # s1 waits out the finish in a shift register; beta waits for t*gamma in one that
        # absorbs the affine ROM's read registers (counted with the ROM: taken off here)
        fl, bb = pipe.finish_latency("layernorm"), _bits(IntRange.of_array(st.beta))
        s1_lut, s1_ff = shift_register(f.tp * s1b, fl)
        b_lut, b_ff = shift_register(f.cip * bb, 4 + pipe.read_latency)
        pff = n * xb + f.tp * (s2b + 2 * s1b + 2 * vb + 8 + _bits(d["r"])) + s1_ff \
            + n * (db + tb + ub) + 2 * f.cip * gr.bits + b_ff - pipe.read_latency * f.cip * bb
        pff += row_pass_ff(f.tp, banks, s1b + _bits(d["r"]), pipe.read_latency)
        return Datapath(lut, n * (xb + _bits(st.out_range)) + 2 * f.tp * (s1b + s2b), dsp, mems,
                        pff, s1_lut + b_lut, rom_terms=(("affine", 2),))
    if isinstance(st, Softmax):
        h = heads  # one unit per head; per lane e * r in a DSP
        eb, rb, zb = (_bits(d[k]) for k in ("e", "r", "z"))
        xb = _bits(st.in_ranges[0])
        nb = in_channels // f.cip      # a streamed row, padding keys included
        lut = h * (n * (xb + eb) + f.tp * (zb + rb))
        # two row passes a head (``rtl.softmax``), each with its own row memory of
        # 2 + ceil((finish latency + 1) / nb) rows: scores, then exponentials
        banks = row_banks(decls["score_rows"], nb), row_banks(decls["exp_rows"], nb)
        # timing: both input beats; per lane max - x, the exp index, e and r, e * r; the
        # row max and reciprocal held per bank
        pff = h * (n * (xb + eb + _bits(d["diff"]) + 8 + eb + rb + _bits(d["product"]))
                   + f.tp * 8 + row_pass_ff(f.tp, banks[0], xb, pipe.read_latency)
                   + row_pass_ff(f.tp, banks[1], rb, pipe.read_latency))
        return Datapath(lut, h * (n * (xb + eb + _bits(st.out_range)) + 2 * f.tp * zb),
                        h * n * dsp_blocks(d["e"], d["r"]), mems, pff)
    raise TypeError(f"no resource model for stage kind {st.kind!r}")


@cache
def coefficients() -> dict:
    return json.loads(COEFFICIENTS.read_text())


def lut_per_mac(x: IntRange, w: IntRange) -> float:
    """Marginal LUTs of one more fabric MAC in a wide dot product: its product and one
    adder-tree node (for the roofline's compute ceiling)."""
    return coefficients()["kinds"]["linear"]["lut"][0] * (product_luts(x, w) + (x * w).bits + 1)


def full_size_margin() -> dict[str, float]:
    """Synthesis's count over the model's on a whole DeiT-tiny encoder block (LUT, FF;
    ``benchmarks/synth_block.py --record``), 1 where the model is not short: the planner's
    budget divides by it."""
    r = coefficients().get("full_size", {})
    return {k: max(1.0, float(r[k])) for k in ("lut", "ff") if k in r}


def fitted(coef: list[float], size) -> float:
    """``a * size + b``, or ``a1 * s1 + a2 * s2 + ... + b`` for a size of several terms
    (the parts of a datapath that scale differently, each with its fitted cost)."""
    terms = size if isinstance(size, (tuple, list)) else (size,)
    if len(coef) != len(terms) + 1:
        raise KeyError(f"coefficients {coef} do not fit a size of {len(terms)} terms: "
                       "re-run benchmarks/calibrate_resources.py")
    return sum(a * x for a, x in zip(coef, terms)) + coef[-1]


def logic(kind: str, lut_size, ff_size) -> tuple[float, float]:
    c = coefficients()["kinds"][MODEL_KIND[kind]]
    return fitted(c["lut"], lut_size), fitted(c["ff"], ff_size)


def placed(kind: MemoryKind, count: float, mem: Memory | None = None) -> Resources:
    """Resources of ``count`` units of on-chip memory primitive ``kind`` (DDR: none on chip,
    its port logic is ``offchip.ddr_fifo``); with the ``mem`` placed, a block memory's read
    multiplexer over its depth slices too (``block_mux_luts``)."""
    if kind is MemoryKind.DDR:
        return Resources()
    mux = block_mux_luts(MemoryKind(kind), mem.width, mem.depth, mem.rom) * mem.ports \
        if kind in (MemoryKind.BRAM, MemoryKind.URAM) and mem is not None else 0
    return Resources(**{BUDGET_KEY[kind]: int(count) if kind is MemoryKind.URAM else count}) \
        + Resources(lut=mux)


def memory_resources(mems, budget: dict[str, int], rom_in_uram: bool = True) -> Resources:
    """``mems`` each placed alone (``place_in``), as ``placed`` costs them (summed in
    place: the planner calls this for every folding it weighs)."""
    total = dict.fromkeys(ON_CHIP, 0.0)
    key = budget_key(budget)
    for mem in mems:
        kind, count = place_in(mem, key, rom_in_uram)
        total[kind] += count
        if kind is not MemoryKind.LUTRAM:
            total[MemoryKind.LUTRAM] += block_mux_luts(kind, mem.width, mem.depth,
                                                       mem.rom) * mem.ports
    return Resources(lut=total[MemoryKind.LUTRAM], bram=total[MemoryKind.BRAM],
                     uram=int(total[MemoryKind.URAM]))


def stage_logic(st: Stage, f: Folding, tokens: int, in_channels: int, heads: int = 1,
                coarse_banks: int = 2, pipe: Pipelining | None = None
                ) -> tuple[Resources, tuple[Memory, ...]]:
    """Calibrated logic of one stage, and its memories (placed by the caller); the timing
    pipeline's registers and shift registers are added as counted."""
    dp = datapath(st, f, tokens, in_channels, heads, coarse_banks, pipe)
    lut, ff = logic(st.kind, dp.lut_size, dp.ff_size)
    mems = dp.memories
    for name, k in dp.rom_terms:     # charged with the ROM, where the plan places it
        extra = coefficients()["kinds"][MODEL_KIND[st.kind]]["lut"][k] * dp.lut_size[k]
        lut -= extra
        mems = tuple(replace(m, lut_extra=extra) if m.name == name else m for m in mems)
    return Resources(lut=lut + dp.pipe_lut, ff=ff + dp.pipe_ff, dsp=dp.dsp), mems
