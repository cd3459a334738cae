"""Mapping a memory (width x depth bits) to LUTRAM, BRAM36 or URAM288, or off chip, and
what it costs.

Geometries are the UltraScale+ / Versal primitives: a LUT6 holds 64 x 1 bits (ROM or
LUTRAM); a BRAM36 is 32Kx1 ... 512x72 (a BRAM18 half counts 0.5); a URAM288 is 4Kx72.
A memory that can live in DDR (a deep FIFO: ``offchip_bytes`` moved per image) goes there
only when the chip's budget is exceeded, against a budget of bytes per image (``ddr``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from math import ceil

from ..choice import Choice
from ..graph.memories import MemoryDecl
from ..graph.table import PotTable
from .rom_logic import rom_luts

BRAM36_SHAPES = ((32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18), (1024, 36), (512, 72))
BRAM18_SHAPES = tuple((d // 2, w) for d, w in BRAM36_SHAPES[:-1])
LUTRAM_MAX_DEPTH = 256   # deeper memories start in blocks, and go to LUTs only when
                         # block memory runs out (``place_all``)
RAM_LUTRAM_MAX_DEPTH = 1024   # a deeper RAM never goes to LUTs (past a 16:1 read mux)


class MemoryKind(Choice):
    """Where a memory lives: a primitive on chip, DDR, or inside its stage (K, V, Q)."""

    LUTRAM = "lutram"
    BRAM = "bram"       # BRAM36 (BRAM18 halves count 0.5)
    URAM = "uram"       # URAM288
    DDR = "ddr"
    STAGE = "stage"     # a coarse buffer its stage builds and places itself


ON_CHIP = (MemoryKind.LUTRAM, MemoryKind.BRAM, MemoryKind.URAM)


@dataclass(frozen=True)
class Memory:
    """One memory of a stage: ``ports`` read ports (a multi-port ROM is replicated)."""

    name: str
    width: int
    depth: int
    rom: bool = False
    ports: int = 1
    offchip_bytes: int = 0    # written plus read per image if kept in DDR (0: on chip only)
    # LUTs the logic beside a ROM grows by when the ROM is in LUTs: with -flatten Yosys
    # merges a LUT ROM into its neighbours' LUTs (a fitted term of the stage's logic)
    lut_extra: float = 0.0
    # LUTs of one copy in LUTs where its contents are known (a table's: ``rom_logic``);
    # None: a random-content ROM's (``lut_cost``)
    luts: int | None = None
    async_read: bool = False  # read as it is addressed: LUT RAM only

    @property
    def bits(self) -> int:
        return self.width * self.depth * self.ports


def lut_cost(width: int, depth: int, rom: bool = True, words=None) -> int:
    """LUTs of a ROM of known ``words`` by its contents (``rom_logic.rom_luts``: what a
    table's costs), of a random-content ROM (a LUT6 is 64 x 1) or of a simple dual-port RAM (RAM32M16: 32 x 14
    in 8 LUTs; RAM64M8: 64 x 7 in 8 LUTs; deeper ones stack ``n`` rows), as Yosys maps
    them. Past 256 words (what a slice's MUXF7/MUXF8 combine) each ROM bit's read
    multiplexer takes about one more LUT per three leaves (``rom_luts`` in the
    coefficients); a RAM past 64 words adds about a LUT a row for the write decode and
    ``n / 3`` a bit for the read multiplexer (``ram_luts``)."""
    if rom and words is not None:
        return rom_luts(words, width)
    if rom:
        mux = width * ceil(depth / 192) if depth > 256 else 0
        return width * ceil(depth / 64) + mux
    if depth <= 32:
        return 8 * ceil(width / 14)
    n = ceil(depth / 64)
    return 8 * ceil(width / 7) * n + (ceil(width * n / 3) + n if n > 1 else 0)


@cache  # a table object stands for its contents (``PotTable`` hashes by identity)
def table_luts(table: PotTable, width: int) -> int:
    """LUTs of one copy of ``table``'s ROM in LUTs, by its contents (``rom_logic``): a
    requantizer's monotone, saturating table is a fraction of a random ROM's cost."""
    return lut_cost(width, table.groups * table.size, words=table.words())


def declared(decl: MemoryDecl, units: int = 1) -> Memory:
    """A stage contract's memory (``graph.memories``) in each of ``units`` units, a copy
    a port; a table's ROM costed in LUTs by its contents."""
    luts = table_luts(decl.table, decl.width) if decl.table is not None else None
    return Memory(decl.name, decl.width, decl.words, rom=decl.rom, ports=units * decl.copies,
                  luts=luts, async_read=decl.latency == 0)


def register_bits(mem: Memory, latency: int) -> int:
    """Flip-flops of ``latency`` stages of a memory's read registers (a set a copy)."""
    return mem.width * mem.ports * latency


def bram_cost(width: int, depth: int, rom: bool = False) -> float:
    """BRAM36 blocks (BRAM18 halves allowed) for the cheapest aspect ratio
    (``block_layout``)."""
    return block_layout(MemoryKind.BRAM, width, depth, rom)[0]


def uram_cost(width: int, depth: int, rom: bool = False) -> int:
    """URAM288 blocks (``block_layout``)."""
    return int(block_layout(MemoryKind.URAM, width, depth, rom)[0])


def block_mux_luts(kind: MemoryKind, width: int, depth: int, rom: bool = False) -> int:
    """LUTs of the read multiplexer over a block memory's depth slices: Yosys puts one LUT
    per output bit for up to four slices (a 3:1 select is a LUT5), about one more per
    three further slices."""
    slices = block_layout(kind, width, depth, rom)[1]
    return width * ceil((slices - 1) / 3)


BLOCK_SHAPES = {MemoryKind.BRAM: tuple((1.0, d, w) for d, w in BRAM36_SHAPES)
                + tuple((0.5, d, w) for d, w in BRAM18_SHAPES),
                MemoryKind.URAM: ((1.0, 4096, 72),)}
WRITE_GRANULE = 9      # a block's byte-write enables: 9 bits each, in 18-bit modes and wider


@cache
def block_layout(kind: MemoryKind, width: int, depth: int, rom: bool = False
                 ) -> tuple[float, int]:
    """(blocks, depth slices) as Yosys ``synth_xilinx`` maps a memory to BRAM36/BRAM18
    (a half block each) or URAM288: per aspect ratio, the full-width columns times the
    depth slices, and the last, narrower column holding several slices side by side (a
    ROM's freely; a RAM's on byte-write boundaries). Fewest blocks, then fewest slices.
    Checked against Yosys 0.70: random ROMs of 384 x 1152 in 16 RAMB36 and 384 LUT5,
    168 x 1100 in 7 RAMB36 and 168 LUT5, 100 x 1500 in 9 RAMB18 and 100 LUT5; a 32-bit
    FIFO of 10,756 words in 2 URAM288."""
    best = None
    for size, d, w in BLOCK_SHAPES[kind]:
        slices = ceil(depth / d)
        full, rest = divmod(width, w)
        if rest and rom:
            fold = w // rest
        elif rest and w >= 2 * WRITE_GRANULE:
            fold = w // (WRITE_GRANULE * ceil(rest / WRITE_GRANULE))
        else:
            fold = 1
        n = full * slices + (ceil(depth / (d * fold)) if rest else 0)
        if best is None or (n * size, slices) < best:
            best = (n * size, slices)
    return best


def options(mem: Memory, rom_in_uram: bool = True) -> dict[MemoryKind, float]:
    """Cost of the memory in each primitive that can hold it: ``lutram`` in LUTs, ``bram``
    in BRAM36 blocks, ``uram`` in URAM288 blocks, ``ddr`` in bytes per image. A ROM needs
    its contents loaded by the bitstream, which UltraScale+ URAM cannot take (Versal's
    can): ``rom_in_uram``."""
    return dict(_options(mem.width, mem.depth, mem.rom, mem.ports, rom_in_uram,
                         mem.offchip_bytes, mem.lut_extra, mem.luts, mem.async_read))


@cache  # the planner costs the same few geometries tens of thousands of times
def _options(width: int, depth: int, rom: bool, ports: int, rom_in_uram: bool,
             offchip_bytes: int = 0, lut_extra: float = 0.0, luts: int | None = None,
             async_read: bool = False) -> tuple[tuple[MemoryKind, float], ...]:
    if async_read:
        return ((MemoryKind.LUTRAM, float(lut_cost(width, depth, False) * ports)),)
    out = [(MemoryKind.BRAM, bram_cost(width, depth, rom) * ports)]
    if rom or depth <= RAM_LUTRAM_MAX_DEPTH:
        one = lut_cost(width, depth, rom) if luts is None else luts
        out.append((MemoryKind.LUTRAM, float(one * ports) + lut_extra))
    if rom_in_uram or not rom:
        out.append((MemoryKind.URAM, float(uram_cost(width, depth, rom) * ports)))
    if offchip_bytes:
        out.append((MemoryKind.DDR, float(offchip_bytes)))
    return tuple(out)


BUDGET_KEY = {MemoryKind.LUTRAM: "lut", MemoryKind.BRAM: "bram", MemoryKind.URAM: "uram",
              MemoryKind.DDR: "ddr"}


def place(mem: Memory, budget: dict[str, int], rom_in_uram: bool = True
          ) -> tuple[MemoryKind, float]:
    """(kind, count): the primitive that takes the smallest fraction of its budget
    (``budget`` keys ``lut``, ``bram``, ``uram``); a memory deeper than ``LUTRAM_MAX_DEPTH``
    only in a block."""
    return place_in(mem, budget_key(budget), rom_in_uram)


def budget_key(budget: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(budget.items()))


@cache  # the planner places the same few geometries tens of thousands of times
def place_in(mem: Memory, budget: tuple[tuple[str, int], ...], rom_in_uram: bool
             ) -> tuple[MemoryKind, float]:
    """``place`` against a ``budget_key``."""
    budget = dict(budget)
    best = None
    for kind, n in options(mem, rom_in_uram).items():
        b = budget.get(BUDGET_KEY[kind], 0)
        if not b or kind is MemoryKind.DDR or (kind is MemoryKind.LUTRAM
                                               and mem.depth > LUTRAM_MAX_DEPTH
                                               and not mem.async_read):
            continue
        frac = n / b
        if best is None or frac < best[0]:
            best = (frac, kind, n)
    if best is None:
        return MemoryKind.BRAM, options(mem)[MemoryKind.BRAM]
    return best[1], best[2]


def place_all(mems: list[Memory], budget: dict[str, int], used: dict[str, float],
              rom_in_uram: bool = True, ddr_luts=None) -> list[tuple[MemoryKind, float]]:
    """Place every memory at once: each first on chip where it takes the smallest budget
    fraction, then, while a resource is over budget (``used`` holds what logic already
    takes), move the memory that frees the most of it per fraction added elsewhere; DDR
    (with a ``ddr`` budget of bytes per image) costs its bytes and the LUTs of its port
    logic, ``ddr_luts(mem)``."""
    onchip = {k: v for k, v in budget.items() if k != "ddr"}
    choice = [place(m, onchip, rom_in_uram) for m in mems]
    opts = [options(m, rom_in_uram) for m in mems]
    total = dict(used)
    for kind, n in choice:
        total[BUDGET_KEY[kind]] = total.get(BUDGET_KEY[kind], 0) + n
    for _ in range(4 * len(mems)):
        over = [k for k in ("bram", "uram", "lut") if total.get(k, 0) > budget.get(k, 0)]
        if not over:
            break
        k = over[0]
        best = None
        for i, (kind, n) in enumerate(choice):
            if BUDGET_KEY[kind] != k:
                continue
            for alt, m in opts[i].items():
                a = BUDGET_KEY[alt]
                if a == k or not budget.get(a) or total.get(a, 0) + m > budget[a]:
                    continue
                added = m / budget[a]
                if alt is MemoryKind.DDR:
                    port = ddr_luts(mems[i])
                    if total.get("lut", 0) + port > budget.get("lut", 0):
                        continue
                    added += port / budget["lut"]
                score = (n / budget[k]) / (added + 1e-12)
                if best is None or score > best[0]:
                    best = (score, i, alt, m)
        if best is None:
            break
        _, i, alt, m = best
        kind, n = choice[i]
        total[BUDGET_KEY[kind]] -= n
        total[BUDGET_KEY[alt]] = total.get(BUDGET_KEY[alt], 0) + m
        if alt is MemoryKind.DDR:
            total["lut"] = total.get("lut", 0) + ddr_luts(mems[i])
        choice[i] = (alt, m)
    _relieve_luts(choice, opts, budget, total)
    _exchange(choice, opts, budget, total)
    return choice


def _relieve_luts(choice, opts, budget, total) -> None:
    """While LUTs are the most used resource, move LUTRAM memories into spare BRAM or URAM,
    most LUTs freed per block first, as long as the block resource stays within budget and
    below the LUTs' utilization (small designs keep small memories in LUTs)."""
    def frac(k):
        return total.get(k, 0) / budget[k] if budget.get(k) else float("inf")
    moves = sorted((-n / m, i, alt, m) for i, (kind, n) in enumerate(choice)
                   if kind is MemoryKind.LUTRAM for alt, m in opts[i].items()
                   if alt in (MemoryKind.BRAM, MemoryKind.URAM) and m > 0)
    for _, i, alt, m in moves:
        kind, n = choice[i]
        k = BUDGET_KEY[alt]
        if kind is not MemoryKind.LUTRAM or not budget.get(k) or total.get(k, 0) + m > budget[k]:
            continue
        if (total.get(k, 0) + m) / budget[k] > frac("lut") - n / budget["lut"]:
            continue
        total["lut"] -= n
        total[k] = total.get(k, 0) + m
        choice[i] = (alt, m)


def _exchange(choice, opts, budget, total) -> None:
    """Where block memory is full, trade it for LUTs: a memory in LUTs takes a block kind's
    blocks that memories cheaper in LUTs (per block) held, those going to LUT RAM, when
    that saves LUTs. The greedy placement fills the blocks first come, first placed: a
    FIFO in block RAM can keep out a weight ROM that costs ten times the LUTs."""
    lutram = MemoryKind.LUTRAM
    for kind in (MemoryKind.BRAM, MemoryKind.URAM):
        k = BUDGET_KEY[kind]
        if not budget.get(k):
            continue
        movers = sorted(((-n / opts[i][kind], i) for i, (c, n) in enumerate(choice)
                         if c is lutram and opts[i].get(kind, 0) > 0))
        for neg, i in movers:
            kind_i, luts = choice[i]
            need = opts[i][kind] - (budget[k] - total.get(k, 0))
            if kind_i is not lutram or need <= 0:   # room without a trade: _relieve_luts's
                continue
            out, freed, cost = [], 0.0, 0.0
            for per, j in sorted((opts[j][lutram] / n, j) for j, (c, n) in enumerate(choice)
                                 if c is kind and n > 0 and lutram in opts[j]):
                if per >= -neg or freed >= need:
                    break
                out.append(j)
                freed += choice[j][1]
                cost += opts[j][lutram]
            if freed < need or cost >= luts:
                continue
            for j in out:
                total[k] -= choice[j][1]
                choice[j] = (lutram, opts[j][lutram])
            total[k] += opts[i][kind]
            total["lut"] = total.get("lut", 0) + cost - luts
            choice[i] = (kind, opts[i][kind])
