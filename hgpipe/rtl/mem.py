"""On-chip memories as small hand-written Verilog modules behind Amaranth ``Instance``s.

Amaranth writes every word of every memory's initial value into the netlist, zeros
included: for DeiT-tiny that was ~1.9M of the 2.3M lines of Verilog and most of the
conversion time. Here a RAM is one parameterised module, ``hgpipe_ram``, whose contents
start at zero in a loop, and each ROM is a module of its own, named by a hash of its
contents (identical tables share one), written by ``emit`` rather than by Amaranth.

A memory may carry the plan's placement (``style``: ``lutram``, ``bram`` or ``uram``), emitted
as the ``ram_style``/``rom_style`` attribute Vivado and Yosys both honour, so that synthesis
maps it where the resource estimate put it; without one the tool chooses.

Both have the port behaviour of ``amaranth.lib.memory`` with a synchronous read port:
``data`` is registered, updates only when ``en`` is high, and a read of the address being
written returns the old word. A memory with several read ports is replicated, one copy a
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
from .romfile import ROM_FILE_MODULE, current_slots, rom_file_module, slot_marker

RAM_MODULE = "hgpipe_ram"

# the plan's memory kinds as synthesis attribute values
STYLES = {"lutram": "distributed", "bram": "block", "uram": "ultra"}


# What Yosys (whose Xilinx mapping is UltraScale+) is told where its words differ from
# Vivado's: a ROM in LUTs is "logic" to it ("distributed" maps to LUTRAM only, which needs
# a write port), and a ROM in URAM, which Versal can initialise and UltraScale+ cannot,
# is a block RAM to it.
_YOSYS_ROM = {"lutram": "logic", "uram": "block"}


def _attribute(kind: str, style: str | None) -> str:
    if not style:
        return ""
    if kind == "rom" and style in _YOSYS_ROM:
        return (f'\n`ifdef YOSYS\n  (* rom_style = "{_YOSYS_ROM[style]}" *)\n`else\n'
                f'  (* rom_style = "{STYLES[style]}" *)\n`endif\n  ')
    return f'(* {kind}_style = "{STYLES[style]}" *) '


def ram_module(style: str | None) -> str:
    return RAM_MODULE if style is None else f"{RAM_MODULE}_{style}"


def ram_verilog(style: str | None = None) -> str:
    """The simple dual-port RAM module, placed as ``style`` (or where the tool chooses).
    ``LATENCY`` 2 adds the output register (block RAM's DOB_REG, URAM's OREG): the read
    data then leaves a register rather than the array."""
    return f"""\
// Simple dual-port RAM: one write port, one read port (read-first) of LATENCY 1 or 2.
module {ram_module(style)} #(parameter WIDTH = 1, parameter DEPTH = 2, parameter ABITS = 1,
    parameter LATENCY = 1) (
  input wire clk,
  input wire we,
  input wire [ABITS-1:0] waddr,
  input wire [WIDTH-1:0] wdata,
  input wire re,
  input wire [ABITS-1:0] raddr,
  output reg [WIDTH-1:0] rdata
);
  {_attribute("ram", style)}reg [WIDTH-1:0] mem [0:DEPTH-1];
  integer i;
  initial begin
    rdata = {{WIDTH{{1'b0}}}};
    for (i = 0; i < DEPTH; i = i + 1) mem[i] = {{WIDTH{{1'b0}}}};
  end
  always @(posedge clk) if (we) mem[waddr] <= wdata;
  generate if (LATENCY == 2) begin : oreg
    reg [WIDTH-1:0] array_q;
    initial array_q = {{WIDTH{{1'b0}}}};
    always @(posedge clk) if (re) begin
      array_q <= mem[raddr];
      rdata <= array_q;
    end
  end else begin : noreg
    always @(posedge clk) if (re) rdata <= mem[raddr];
  end endgenerate
endmodule
"""


ASYNC_RAM_MODULE = "hgpipe_lutram"


def async_ram_verilog() -> str:
    """The simple dual-port RAM whose read is not registered: LUT RAM."""
    return f"""\
// Simple dual-port RAM, its read port asynchronous: distributed (LUT) RAM.
module {ASYNC_RAM_MODULE} #(parameter WIDTH = 1, parameter DEPTH = 2, parameter ABITS = 1) (
  input wire clk,
  input wire we,
  input wire [ABITS-1:0] waddr,
  input wire [WIDTH-1:0] wdata,
  /* verilator lint_off UNUSEDSIGNAL */
  input wire re,
  /* verilator lint_on UNUSEDSIGNAL */
  input wire [ABITS-1:0] raddr,
  output wire [WIDTH-1:0] rdata
);
  {_attribute("ram", "lutram")}reg [WIDTH-1:0] mem [0:DEPTH-1];
  integer i;
  initial for (i = 0; i < DEPTH; i = i + 1) mem[i] = {{WIDTH{{1'b0}}}};
  always @(posedge clk) if (we) mem[waddr] <= wdata;
  assign rdata = mem[raddr];
endmodule
"""


def _abits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


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
        p = ReadPort(Signal(_abits(self.depth), name=f"raddr{len(self._reads)}"),
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
        self._write = WritePort(Signal(_abits(self.depth), name="waddr"),
                                Signal(self.width, name="wdata"), Signal(name="we"))
        return self._write

    def elaborate(self, platform):
        m = Module()
        w = self._write
        if w is None:
            raise ValueError("Ram: no write port (a memory nothing writes is a Rom)")
        params = {"p_WIDTH": self.width, "p_DEPTH": self.depth, "p_ABITS": _abits(self.depth),
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
                      "p_ABITS": _abits(self.depth), "p_FILE": slot_marker(len(slots.roms))}
            slots.roms.append((self.width, self.words))
            slots.modules.add((self.style, self.latency))
        for k, port in enumerate(self._reads):
            m.submodules[f"copy{k}"] = self._instance(module, params, port, {})
        return m


def rom_file_verilog(style: str | None, latency: int) -> str:
    """The generic ROM: ``DEPTH`` words of ``WIDTH`` bits by ``$readmemh``, a registered
    read port (and its output register at ``latency`` 2).

    Its file is its part's instance name, the slot ``FILE`` (``<k>.hex``) after it. In
    synthesis the part passes the prefix down as ``PREFIX``. A simulator, given none,
    finds the part ``LEVELS`` levels up the ROM's own instance path (``%m``) instead: a
    parameter that differs between instances would make Verilator compile a copy of the
    part for each, undoing the sharing."""
    read = _read_port("[WIDTH-1:0]", "{WIDTH{1'b0}}", latency)
    return (f"// Read-only memory loaded from its part's file ($readmemh: DEPTH hex words).\n"
            f"module {rom_file_module(style, latency)} #(parameter WIDTH = 1, "
            f"parameter DEPTH = 2, parameter ABITS = 1,\n"
            f"    parameter PREFIX = \"\", parameter FILE = \"\", parameter LEVELS = 1) (\n"
            f"  input wire clk,\n  input wire re,\n  input wire [ABITS-1:0] raddr,\n"
            f"  output reg [WIDTH-1:0] rdata\n);\n"
            f"  {_attribute('rom', style)}reg [WIDTH-1:0] mem [0:DEPTH-1];\n"
            f"  initial rdata = {{WIDTH{{1'b0}}}};\n"
            f"`ifdef SYNTHESIS\n"
            f"  // a tool that elaborates a module with its defaults (Yosys' read_verilog)\n"
            f"  // must not look for a file: only an instance given its prefix loads one\n"
            f"  generate if (PREFIX != \"\") begin : load\n"
            f"    initial $readmemh({{PREFIX, FILE}}, mem);\n"
            f"  end endgenerate\n"
            f"`else\n"
            f"  string path, part;\n"
            f"  integer i, dots, lo, hi, skip;\n"
            f"  initial if (PREFIX != \"\") $readmemh({{PREFIX, FILE}}, mem);\n"
            f"  else begin\n"
            f"    path = $sformatf(\"%m\");\n"
            f"    dots = 0; lo = 0; hi = path.len(); skip = 0;\n"
            f"    for (i = path.len() - 1; i >= 0; i = i - 1) if (path[i] == \".\") begin\n"
            f"      dots = dots + 1;\n"
            f"      if (dots == LEVELS + skip) hi = i;\n"
            f"      if (dots == LEVELS + skip + 1) begin\n"
            f"        lo = i + 1;\n"
            f"        // a Verilator hierarchical block puts its module's name after its\n"
            f"        // instance's: module names start hgpipe_, instance names never do\n"
            f"        if (skip == 0 && path.substr(lo, lo + 6) == \"hgpipe_\") begin\n"
            f"          skip = 1; hi = i;\n"
            f"        end else i = -1;\n"
            f"      end\n"
            f"    end\n"
            f"    part = path.substr(lo, hi - 1);\n"
            f"    path = $sformatf(\"%s%s.%s\", `HGPIPE_ROM_DIR, part, FILE);\n"
            f"    $readmemh(path, mem);\n"
            f"  end\n"
            f"`endif\n{read}endmodule\n")


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


def _read_port(bits: str, zero: str, latency: int) -> str:
    """A ROM's registered read port, through an output register at ``latency`` 2."""
    if latency == 1:
        return "  always @(posedge clk) if (re) rdata <= mem[raddr];\n"
    return (f"  reg {bits} array_q;\n  initial array_q = {zero};\n"
            "  always @(posedge clk) if (re) begin array_q <= mem[raddr]; rdata <= array_q; "
            "end\n")


def rom_verilog(module: str, width: int, words: list[int], style: str | None = None,
                latency: int = 1) -> str:
    """One ROM module: the words in an ``initial`` block, a registered read port (and its
    output register at ``latency`` 2)."""
    depth, abits, digits = len(words), _abits(len(words)), (width + 3) // 4
    body = "\n".join(f"    mem[{a}] = {width}'h{w:0{digits}x};" for a, w in enumerate(words))
    read = _read_port(f"[{width - 1}:0]", f"{width}'h0", latency)
    return (f"module {module} (\n  input wire clk,\n  input wire re,\n"
            f"  input wire [{abits - 1}:0] raddr,\n  output reg [{width - 1}:0] rdata\n);\n"
            f"  {_attribute('rom', style)}reg [{width - 1}:0] mem [0:{depth - 1}];\n"
            f"  initial begin\n"
            f"    rdata = {width}'h0;\n{body}\n  end\n"
            f"{read}endmodule\n")


def library(mems: dict) -> str:
    """The Verilog of the RAM module, of each placed RAM variant, of each generic ROM
    module and of every collected ROM, in a stable order."""
    def text(n: str) -> str:
        if n == ASYNC_RAM_MODULE:
            return async_ram_verilog()
        if n.startswith(RAM_MODULE):
            return ram_verilog(mems[n])
        if n.startswith(ROM_FILE_MODULE):
            return rom_file_verilog(*mems[n])
        return rom_verilog(n, *mems[n])
    return "\n".join([ram_verilog()] + [text(n) for n in sorted(mems)])
