"""The longest register-to-register path of a synthesized Xilinx netlist (Yosys JSON).

Yosys' ``ltp`` treats the flip-flops ``synth_xilinx`` emits as combinational and its
``sta`` does not run on these netlists, so the walk is done here: every net bit gets the
latest arrival of a path from a start point (a register, memory or DSP output, or a
module input), accumulating the cells' pin delays (``hgpipe.synth.delays``), LUT levels
and carry cells; each end point (a register, memory or DSP input, or a module output)
keeps the worst. DSPs are boundaries, as in the measurement of HG-PIPE's blocks the clock
estimate is fitted on; a DSP whose registers could not all be packed is reported instead
(``unpacked_dsps``), since its multiplier would sit in a fabric path. Reported: the worst path by logic delay with its start and end, and
separately the most LUT levels and the most LUT + carry cells on any path.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from .delays import BOUNDARY_PS, CellArcs, cell_arcs

_BRAM = ("RAMB18E1", "RAMB36E1", "RAMB18E2", "RAMB36E2")
_URAM = ("URAM288", "URAM288_BASE")
_LUTRAM_PREFIX = ("RAM32M", "RAM64M", "RAM32X", "RAM64X", "RAM128X", "RAM256X", "RAM512X",
                  "SRL16", "SRLC16", "SRLC32")
_CONST = ("GND", "VCC", "$scopeinfo")


@dataclass(frozen=True)
class Path:
    """One register-to-register path: logic delay (ps), LUT levels and carry cells."""

    ps: int = 0
    luts: int = 0
    carries: int = 0
    start: str = ""
    end: str = ""

    @property
    def cells(self) -> int:
        return self.luts + self.carries

    @property
    def ns(self) -> float:
        return self.ps / 1000.0


@dataclass(frozen=True)
class Depth:
    """The netlist's worst path by delay, and its deepest paths by LUT levels and by
    LUT + carry cells (each may be a different path)."""

    worst: Path
    max_luts: Path
    max_cells: Path
    unknown: tuple[str, ...] = ()   # cell types without timing data (taken as boundaries)
    unpacked_dsps: tuple[str, ...] = ()
    from_input: Path = Path()       # the worst path that starts at a module input
    to_output: Path = Path()        # the latest arrival at a module output
    port_in: dict = None            # input port -> the worst path from it (ps)
    port_out: dict = None           # output port -> the latest arrival at it (ps)


def _is_on(params: dict, key: str, default: int = 0) -> bool:
    v = params.get(key, default)
    if isinstance(v, str):
        s = v.strip().strip('"').upper()
        if s in ("TRUE", "FALSE"):
            return s == "TRUE"
        try:
            return int(s, 2) != 0
        except ValueError:
            return bool(s)
    return bool(v)


def _start_ps(typ: str, params: dict) -> int | None:
    """Extra delay at a sequential cell's outputs, or None for a combinational cell."""
    if typ.startswith("FD") or typ.startswith("LD"):
        return 0
    if typ in _BRAM:
        return BOUNDARY_PS["bram_reg" if _is_on(params, "DOA_REG") or
                           _is_on(params, "DOB_REG") else "bram_noreg"]
    if typ in _URAM:
        return BOUNDARY_PS["uram_reg" if _is_on(params, "OREG_A") or
                           _is_on(params, "OREG_B") else "uram"]
    if typ.startswith("DSP48"):
        return 0        # a boundary; whether its registers can be packed is checked apart
    if typ.startswith(_LUTRAM_PREFIX):
        return BOUNDARY_PS["lutram"]
    return None


class _Walker:
    def __init__(self, module: dict):
        self.cells = module.get("cells", {})
        self.arcs = cell_arcs()
        self.names: dict[int, str] = {}
        for name, net in sorted(module.get("netnames", {}).items(),
                                key=lambda kv: (kv[1].get("hide_name", 0), len(kv[0]))):
            for k, b in enumerate(net["bits"]):
                if isinstance(b, int) and b not in self.names:
                    self.names[b] = f"{name}[{k}]" if len(net["bits"]) > 1 else name
        self.ports = module.get("ports", {})

    def name(self, bit: int) -> str:
        return self.names.get(bit, f"net{bit}")

    def walk(self) -> Depth:
        worst: dict[int, Path] = {}     # by delay
        luts: dict[int, Path] = {}      # by LUT levels
        cells_: dict[int, Path] = {}    # by LUT + carry cells
        from_in: dict[int, Path] = {}   # by delay, from the module's inputs only
        unknown: set[str] = set()
        by_delay = lambda p: (p.ps, p.cells)  # noqa: E731
        tables = [(worst, by_delay), (luts, lambda p: (p.luts, p.ps)),
                  (cells_, lambda p: (p.cells, p.ps)), (from_in, by_delay)]

        def seed(bit, start: str, ps: int = 0, port: bool = False):
            p = Path(ps, 0, 0, start)
            for d in (worst, luts, cells_) + ((from_in,) if port else ()):
                if bit not in d or d[bit].ps < ps:
                    d[bit] = p

        comb: dict[str, tuple[dict, CellArcs | None, str]] = {}
        ends: list[tuple[int, str]] = []
        unpacked = self._unpacked_dsps()
        for pname, port in self.ports.items():
            for k, b in enumerate(port["bits"]):
                if not isinstance(b, int):
                    continue
                if port["direction"] == "input":
                    seed(b, f"input {pname}", port=True)
                else:
                    ends.append((b, f"output {pname}"))
        for cname, cell in self.cells.items():
            typ = cell["type"].lstrip("\\")
            dirs, conns = cell.get("port_directions", {}), cell.get("connections", {})
            if typ in _CONST:
                continue
            start = _start_ps(typ, cell.get("parameters", {}))
            if start is None and typ not in self.arcs:
                # a cell without timing data (a module Yosys left unflattened): a boundary,
                # so that it can neither hide a path's logic nor close a loop
                unknown.add(typ)
                start = 0
            arcs = self.arcs.get(typ)
            if start is not None:
                outs = [b for pin, bits in conns.items() if dirs.get(pin) == "output"
                        for b in bits if isinstance(b, int)]
                shown = self.name(outs[0]) if outs else cname
                for pin, bits in conns.items():
                    if dirs.get(pin) == "output":
                        for b in bits:
                            if isinstance(b, int):
                                seed(b, self.name(b), start)
                    else:
                        for k, b in enumerate(bits):
                            # a LUTRAM's read address passes through; other inputs end
                            if isinstance(b, int) and not (arcs and _has_arc(arcs, pin, k)):
                                ends.append((b, f"{shown}.{pin}"))
                if arcs is None:
                    continue
            comb[cname] = (cell, arcs, typ)

        # Kahn order over combinational cells: a cell is evaluated once all its inputs are
        driven_by: dict[int, str] = {}
        for cname, (cell, arcs, typ) in comb.items():
            for pin, bits in cell["connections"].items():
                if cell["port_directions"].get(pin) == "output":
                    for b in bits:
                        if isinstance(b, int):
                            driven_by[b] = cname
        users: dict[int, list[str]] = defaultdict(list)
        fan_in: dict[str, int] = {}
        for cname, (cell, arcs, typ) in comb.items():
            # a LUTRAM or shift register depends on its read address alone this cycle
            timed = _start_ps(typ, cell.get("parameters", {})) is not None
            n = 0
            for pin, bits in cell["connections"].items():
                if cell["port_directions"].get(pin) == "input":
                    for k, b in enumerate(bits):
                        if isinstance(b, int) and b in driven_by and \
                                not (timed and not _has_arc(arcs, pin, k)):
                            users[b].append(cname)
                            n += 1
            fan_in[cname] = n

        def propagate(tabs) -> int:
            waiting = dict(fan_in)
            queue = deque(sorted(c for c, n in waiting.items() if n == 0))
            done = 0
            while queue:
                cname = queue.popleft()
                done += 1
                cell, arcs, typ = comb[cname]
                for b in self._evaluate(cell, arcs, typ, tabs):
                    for u in users.get(b, ()):
                        waiting[u] -= 1
                        if waiting[u] == 0:
                            queue.append(u)
            return done

        done = propagate(tables)
        if done < len(comb):
            raise ValueError(f"paths: a combinational loop through {len(comb) - done} cells")
        # per input port, the worst path it starts (what an upstream module's output adds to)
        port_in = {}
        for pname, port in self.ports.items():
            if port["direction"] != "input" or pname in ("clk", "rst"):
                continue
            tab: dict[int, Path] = {b: Path(0, 0, 0, pname) for b in port["bits"]
                                    if isinstance(b, int)}
            propagate([(tab, by_delay)])
            port_in[pname] = max((tab[b].ps for b, end in ends if b in tab), default=0)
        port_out: dict[str, int] = {}
        for pname, port in self.ports.items():
            if port["direction"] == "output":
                port_out[pname] = max((worst[b].ps for b in port["bits"]
                                       if isinstance(b, int) and b in worst), default=0)

        def best(d: dict[int, Path], key) -> Path:
            cands = [(d[b], end) for b, end in ends if b in d]
            if not cands:
                return Path()
            p, end = max(cands, key=lambda pe: key(pe[0]))
            return Path(p.ps, p.luts, p.carries, p.start, end)
        outs = [(b, end) for b, end in ends if end.startswith("output ")]
        to_out = max(((worst[b], end) for b, end in outs if b in worst),
                     key=lambda pe: by_delay(pe[0]), default=(Path(), ""))
        return Depth(best(worst, by_delay), best(luts, lambda p: (p.luts, p.ps)),
                     best(cells_, lambda p: (p.cells, p.ps)), tuple(sorted(unknown)),
                     unpacked, best(from_in, by_delay),
                     Path(to_out[0].ps, to_out[0].luts, to_out[0].carries, to_out[0].start,
                          to_out[1]), port_in, port_out)

    def _unpacked_dsps(self) -> tuple[str, ...]:
        """DSPs whose registers Vivado could not all pack (Yosys packs none into a
        DSP48E2; the same RTL mapped for 7-series gets AREG/BREG/MREG/PREG): a data input
        (A, B, C, D) not straight from a flip-flop, or a used P bit that feeds anything
        but flip-flops. Such a DSP puts its multiplier in a fabric path."""
        drivers: dict[int, str] = {}
        loads: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for cname, cell in self.cells.items():
            dirs = cell.get("port_directions", {})
            for pin, bits in cell.get("connections", {}).items():
                for b in bits:
                    if isinstance(b, int):
                        if dirs.get(pin) == "output":
                            drivers[b] = cname
                        else:
                            loads[b].append((cname, pin))
        for port in self.ports.values():
            if port["direction"] == "output":
                for b in port["bits"]:
                    if isinstance(b, int):
                        loads[b].append(("", "output"))

        def is_ff(c):
            return bool(c) and self.cells[c]["type"].lstrip("\\").startswith("FD")

        out = []
        for cname, cell in self.cells.items():
            if not cell["type"].lstrip("\\").startswith("DSP48"):
                continue
            conns = cell["connections"]
            data = [b for pin in ("A", "B", "C", "D") for b in conns.get(pin, [])
                    if isinstance(b, int)]
            used = [b for b in conns.get("P", []) if isinstance(b, int) and loads.get(b)]
            if not all(is_ff(drivers.get(b)) for b in data) or \
                    not all(is_ff(c) and pin == "D" for b in used for c, pin in loads[b]):
                out.append(cname)
        return tuple(sorted(out))

    def _evaluate(self, cell, arcs, typ, tables):
        dirs, conns = cell["port_directions"], cell["connections"]
        ins = [(pin, k, b) for pin, bits in conns.items() if dirs.get(pin) == "input"
               for k, b in enumerate(bits) if isinstance(b, int)]
        is_lut = typ.startswith("LUT") or typ.startswith("RAM") or typ.startswith("SRL")
        is_carry = typ.startswith("CARRY")
        out_bits = []
        for pin, bits in conns.items():
            if dirs.get(pin) != "output":
                continue
            for k, b in enumerate(bits):
                if not isinstance(b, int):
                    continue
                out_bits.append(b)
                for table, key in tables:
                    cand = None
                    for ipin, ik, ib in ins:
                        src = table.get(ib)
                        if src is None:
                            continue
                        if arcs is None:
                            d = 0
                        else:
                            d = arcs.delay(ipin, ik, pin, k)
                            if d is None:
                                continue
                        p = Path(src.ps + d, src.luts + is_lut, src.carries + is_carry,
                                 src.start)
                        if cand is None or key(p) > key(cand):
                            cand = p
                    if cand is not None and (b not in table or key(cand) > key(table[b])):
                        table[b] = cand
        return out_bits


def _has_arc(arcs: CellArcs, pin: str, k: int) -> bool:
    return any(i in (pin, f"{pin}[{k}]") for i, _ in arcs.arcs)


def depth(netlist: dict, top: str | None = None) -> Depth:
    """Worst paths of module ``top`` (or the netlist's only module) of a Yosys JSON
    netlist, flattened."""
    mods = netlist["modules"]
    if top is None:
        tops = [n for n, m in mods.items() if m.get("attributes", {}).get("top")] or list(mods)
        top = tops[0]
    return _Walker(mods[top]).walk()
