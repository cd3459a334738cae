"""The Verilog text of the memory modules ``rtl.mem`` instantiates: the RAM (one module,
placed variants by ``ram_style``), the LUT RAM read as it is addressed, the generic ROM
loaded from its part's file, and a ROM with its words inline; and the library of those
a design uses. Yosys, Vivado and the simulators read the same text."""

from __future__ import annotations

from .romfile import ROM_FILE_MODULE, rom_file_module

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


# the clock and write port every RAM module starts its ports with
_WRITE_PORT = """\
  input wire clk,
  input wire we,
  input wire [ABITS-1:0] waddr,
  input wire [WIDTH-1:0] wdata,
"""


def ram_verilog(style: str | None = None) -> str:
    """The simple dual-port RAM module, placed as ``style`` (or where the tool chooses).
    ``LATENCY`` 2 adds the output register (block RAM's DOB_REG, URAM's OREG): the read
    data then leaves a register rather than the array."""
    return f"""\
// Simple dual-port RAM: one write port, one read port (read-first) of LATENCY 1 or 2.
module {ram_module(style)} #(parameter WIDTH = 1, parameter DEPTH = 2, parameter ABITS = 1,
    parameter LATENCY = 1) (
{_WRITE_PORT}  input wire re,
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
{_WRITE_PORT}  /* verilator lint_off UNUSEDSIGNAL */
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


def abits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


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
    depth, ab, digits = len(words), abits(len(words)), (width + 3) // 4
    body = "\n".join(f"    mem[{a}] = {width}'h{w:0{digits}x};" for a, w in enumerate(words))
    read = _read_port(f"[{width - 1}:0]", f"{width}'h0", latency)
    return (f"module {module} (\n  input wire clk,\n  input wire re,\n"
            f"  input wire [{ab - 1}:0] raddr,\n  output reg [{width - 1}:0] rdata\n);\n"
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
