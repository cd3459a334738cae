"""On-chip memories as small hand-written Verilog modules behind Amaranth ``Instance``s.

Amaranth writes every word of every memory's initial value into the netlist, zeros
included: for DeiT-tiny that was ~1.9M of the 2.3M lines of Verilog and most of the
conversion time. Here a RAM is one parameterised module, ``hgpipe_ram``, whose contents
start at zero in a loop, and each ROM is a module of its own, named by a hash of its
contents (identical tables share one), written by ``emit`` rather than by Amaranth. The
modules' Verilog text is ``memtext``'s.

A memory may carry the plan's placement (``style``: ``lutram``, ``bram`` or ``uram``), emitted
as the ``ram_style``/``rom_style`` attribute Vivado and Yosys both honour, so that synthesis
maps it where the resource estimate put it; without one the tool chooses.

Both have the port behaviour of ``amaranth.lib.memory`` with a synchronous read port:
``data`` is registered, updates only when ``en`` is high, and a read of the address being
written returns the old word (a RAM of latency 0 reads as it is addressed, in LUT RAM). A memory with several read ports is replicated, one copy a
port, as Vivado would map it.

ROM contents (and placed RAM variants) reach the Verilog through a collector that
``hgpipe.rtl.generate.verilog`` opens around conversion: elaborating a ``Rom`` outside it
is an error, never a design with a ROM missing.
"""

from __future__ import annotations

import contextlib
import hashlib
from contextvars import ContextVar
from dataclasses import dataclass, field

from amaranth import ClockSignal, Elaboratable, Instance, Module, Shape, Signal

from ..graph.memories import MemoryDecl
from .memtext import ASYNC_RAM_MODULE, STYLES, abits, ram_module
from .romfile import current_slots, rom_file_module, slot_marker

@dataclass
class ReadPort:
    addr: Signal
    data: Signal
    en: Signal


@dataclass
class WritePort:
    addr: Signal
    data: Signal
    en: Signal


class _Memory(Elaboratable):
    """``depth`` words of ``shape`` (an int is an unsigned width); read ports' ``data``
    has that shape."""

    table = False     # a table ROM (``Rom``): costed in LUTs by its words
    latencies = (1, 2)

    def __init__(self, shape, depth: int, style: str | None = None, latency: int = 1,
                 name: str | None = None):
        self.shape = Shape.cast(shape)
        self.name = name          # the stage contract's name for it (the census records it)
        if latency not in self.latencies:
            raise ValueError(f"memory: latency={latency}: expected "
                             + " or ".join(map(str, self.latencies)))
        self.latency = latency
        self.width, self.depth = self.shape.width, depth
        if self.width < 1 or depth < 1:
            raise ValueError(f"memory: width {self.width}, depth {depth}: expected both >= 1")
        if style is not None and style not in STYLES:
            raise ValueError(f"memory: style={style!r}: expected one of {', '.join(STYLES)}")
        self.style = style
        self._reads: list[ReadPort] = []

    def read_port(self) -> ReadPort:
        p = ReadPort(Signal(abits(self.depth), name=f"raddr{len(self._reads)}"),
                     Signal(self.shape, name=f"rdata{len(self._reads)}"),
                     Signal(init=1, name=f"re{len(self._reads)}"))
        self._reads.append(p)
        return p

    def _instance(self, module: str, params: dict, port: ReadPort, extra: dict) -> Instance:
        return Instance(module, **params, i_clk=ClockSignal(), i_re=port.en,
                        i_raddr=port.addr, o_rdata=port.data, **extra)


class Ram(_Memory):
    """``depth`` words, zero at start; one write port. At ``latency`` 0 a read port's
    ``data`` is the word at ``addr`` in the same cycle (LUT RAM only)."""

    latencies = (0, 1, 2)

    def __init__(self, shape, depth: int, style: str | None = None, latency: int = 1,
                 name: str | None = None):
        super().__init__(shape, depth, style, latency, name)
        self._write: WritePort | None = None

    @classmethod
    def declared(cls, decl: MemoryDecl, style: str | None = None) -> "Ram":
        """The RAM a stage contract declares (``graph.memories``), placed as ``style``."""
        return cls(decl.width, decl.words, style, decl.latency, decl.name)

    def write_port(self) -> WritePort:
        if self._write is not None:
            raise ValueError("Ram: one write port only")
        self._write = WritePort(Signal(abits(self.depth), name="waddr"),
                                Signal(self.width, name="wdata"), Signal(name="we"))
        return self._write

    def elaborate(self, platform):
        m = Module()
        w = self._write
        if w is None:
            raise ValueError("Ram: no write port (a memory nothing writes is a Rom)")
        params = {"p_WIDTH": self.width, "p_DEPTH": self.depth, "p_ABITS": abits(self.depth),
                  **({"p_LATENCY": 2} if self.latency == 2 else {})}
        if self.latency == 0:
            if self.style not in (None, "lutram"):
                raise ValueError(f"Ram: latency 0 in {self.style}: only LUT RAM reads as it "
                                 "is addressed")
            module = ASYNC_RAM_MODULE
            _collected().setdefault(module, None)
        else:
            module = ram_module(self.style)
            if self.style is not None:
                _collected().setdefault(module, self.style)
        _count("ram", self)
        for k, port in enumerate(self._reads):
            m.submodules[f"copy{k}"] = self._instance(
                module, params, port,
                {"i_we": w.en, "i_waddr": w.addr, "i_wdata": w.data})
        return m


_collector: ContextVar[dict | None] = ContextVar("hgpipe_roms", default=None)


class Rom(_Memory):
    """A read-only memory holding ``words`` (ints of ``shape``); a ``table``'s (a
    ``PotTable``'s) is costed in LUTs by its contents (``resources.rom_logic``)."""

    def __init__(self, shape, words: list[int], style: str | None = None, latency: int = 1,
                 table: bool = False, name: str | None = None):
        super().__init__(shape, max(len(words), 1), style, latency, name)
        self.table = table
        width, signed = self.width, self.shape.signed
        lo, hi = (-(1 << (width - 1)), 1 << (width - 1)) if signed else (0, 1 << width)
        words = [int(w) for w in words] or [0]
        if any(not lo <= w < hi for w in words):
            raise ValueError(f"Rom: a word does not fit in {self.shape}")
        self.words = [w & ((1 << width) - 1) for w in words]  # two's complement bits
        digest = hashlib.sha256(f"{width}:{','.join(map(str, self.words))}".encode())
        self.module = f"hgpipe_rom_{digest.hexdigest()[:16]}" + (f"_{style}" if style else "") \
            + ("_r2" if latency == 2 else "")

    @classmethod
    def declared(cls, decl: MemoryDecl, words: list[int] | None = None,
                 style: str | None = None) -> "Rom":
        """The ROM a stage contract declares holding ``words`` (a table's own words by
        default), placed as ``style``."""
        if words is None:
            words = decl.table.words()
        if len(words) != decl.words:
            raise ValueError(f"Rom {decl.name}: {len(words)} words, the contract declares "
                             f"{decl.words}")
        return cls(Shape(decl.width, decl.signed), words, style, decl.latency,
                   table=decl.table is not None, name=decl.name)

    def elaborate(self, platform):
        _count("rom", self)
        m = Module()
        slots = current_slots()
        if slots is None:           # contents in a module of their own
            _collected().setdefault(self.module, (self.width, self.words, self.style,
                                                  self.latency))
            module, params = self.module, {}
        else:                       # contents in a file the instance names (see RomSlots)
            module = rom_file_module(self.style, self.latency)
            params = {"p_WIDTH": self.width, "p_DEPTH": self.depth,
                      "p_ABITS": abits(self.depth), "p_FILE": slot_marker(len(slots.roms))}
            slots.roms.append((self.width, self.words))
            slots.modules.add((self.style, self.latency))
        for k, port in enumerate(self._reads):
            m.submodules[f"copy{k}"] = self._instance(module, params, port, {})
        return m


@dataclass(frozen=True)
class MemoryUse:
    """One memory as elaborated: ``rom`` or ``ram``, its word width and depth, and its
    copies (one a read port); a table ROM's words (two's complement), which its LUT cost
    depends on; the contract's name for it (``Ram.declared``, ``Rom.declared``)."""
    kind: str
    width: int
    depth: int
    copies: int
    words: tuple[int, ...] | None = field(default=None, compare=False, repr=False)
    name: str | None = field(default=None, compare=False)
    latency: int = field(default=1, compare=False)   # 0: no read registers

    @property
    def bits(self) -> int:
        return self.width * self.depth * self.copies


_census: ContextVar[list | None] = ContextVar("hgpipe_memory_census", default=None)


def _count(kind: str, mem: "_Memory") -> None:
    uses = _census.get()
    if uses is not None:
        words = tuple(mem.words) if mem.table else None
        uses.append(MemoryUse(kind, mem.width, mem.depth, len(mem._reads), words, mem.name,
                              mem.latency))


@contextlib.contextmanager
def census():
    """Every memory elaborated inside the block, as a list of ``MemoryUse`` (what tests
    compare with the resource model's memories)."""
    uses: list = []
    token = _census.set(uses)
    try:
        yield uses
    finally:
        _census.reset(token)


def _collected() -> dict:
    mems = _collector.get()
    if mems is None:
        raise RuntimeError("memory: elaborated outside hgpipe.rtl.generate.verilog, which "
                           "writes the ROM and placed RAM modules")
    return mems


@contextlib.contextmanager
def collecting():
    """Collect the memory modules elaborated inside the block: ROMs as ``{module: (width,
    words, style, latency)}``, placed RAM variants as ``{module: style}``."""
    roms: dict = {}
    token = _collector.set(roms)
    try:
        yield roms
    finally:
        _collector.reset(token)

