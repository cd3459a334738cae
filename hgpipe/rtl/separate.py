"""Separate compilation: convert each distinct part of the accelerator once, in parallel.

Amaranth converts a design as one netlist, so DeiT-tiny's 36 attention heads, hundreds of
FIFOs and gearboxes are each elaborated and converted again although most are copies.
Here every part the ``Accelerator`` builds through its ``make`` hook becomes an
``Instance`` of a module named by a digest of its construction: the class and every
constructor argument (numpy arrays by content; a stage's name, input names, reference
name and output scale, which are metadata, left out). Parts are pure functions of their
arguments, so equal digests mean equal hardware, and each distinct module is converted
once, in a pool of worker processes; the top level is then only wiring.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import hashlib
import os
import re
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from amaranth import ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal, Value
from amaranth.hdl import _ir
from amaranth.lib import wiring

from ..choice import Choice
from ..graph.stages import Stage
from .mem import collecting
from .romfile import MARKER_RE, ROM_MACROS, rom_file_module, rom_file_text, rom_slots

_STAGE_METADATA = {"name", "inputs", "ref", "out_scale"}
BATCHES = 8     # parts are converted in this many Yosys runs


def _feed(h, x) -> None:
    """Hash ``x`` canonically; refuse what it cannot key rather than key it loosely."""
    if isinstance(x, np.ndarray):
        h.update(f"nd{x.dtype}{x.shape}".encode())
        h.update(np.ascontiguousarray(x).tobytes())
    elif dataclasses.is_dataclass(x) and not isinstance(x, type):
        h.update(f"dc{type(x).__qualname__}(".encode())
        for f in dataclasses.fields(x):
            if isinstance(x, Stage) and f.name in _STAGE_METADATA:
                continue
            h.update(f"{f.name}=".encode())
            _feed(h, getattr(x, f.name))
        h.update(b")")
    elif isinstance(x, (list, tuple)):
        h.update(f"seq{len(x)}(".encode())
        for v in x:
            _feed(h, v)
        h.update(b")")
    elif isinstance(x, dict):
        h.update(f"map{len(x)}(".encode())
        for k in sorted(x):
            _feed(h, k)
            _feed(h, x[k])
        h.update(b")")
    elif isinstance(x, Choice):         # as its word: names stay what the word makes them
        h.update(f"str:{x.value!r};".encode())
    elif isinstance(x, (bool, int, float, str, type(None), np.integer, np.floating)):
        h.update(f"{type(x).__name__}:{x!r};".encode())
    else:
        raise TypeError(f"separate: cannot key a {type(x).__qualname__} argument")


def module_name(cls: type, args: tuple) -> str:
    h = hashlib.sha256(cls.__qualname__.encode())
    _feed(h, args)
    return f"hgpipe_{cls.__name__.lower()}_{h.hexdigest()[:12]}"


def _ports(comp) -> dict:
    """The component's ports as ``convert`` names them, plus its ``busy`` output."""
    ports = {}
    for path, member, value in comp.signature.flatten(comp):
        d = _ir.PortDirection.Input if member.flow == wiring.In else _ir.PortDirection.Output
        # a struct payload (the AXI channels) is a view of its signal
        ports["__".join(map(str, path))] = (Value.cast(value), d)
    if hasattr(comp, "busy"):
        ports["busy"] = (comp.busy, _ir.PortDirection.Output)
    return ports


class Blackbox(wiring.Component):
    """Stands in for a part: the same signature (and ``busy``), elaborated as an instance
    of the part's separately converted module."""

    def __init__(self, part, module: str, maker: Parts):
        self.module, self._maker = module, maker
        super().__init__(part.signature)
        if hasattr(part, "busy"):
            self.busy = Signal(len(part.busy), name="busy")

    def elaborate(self, platform):
        if self._maker.collecting:   # learning the parts: nothing is converted yet
            return Module()
        conns = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}  # checked by Parts.convert
        for name, (value, d) in _ports(self).items():
            conns[("i_" if d == _ir.PortDirection.Input else "o_") + name] = value
        return Instance(self.module, **conns)


PLACEHOLDER = "hgpipe_part"     # a part's module name while its structure is keyed
_PLACEHOLDER = re.compile(r"\\hgpipe_part(?=[.\s])")


def rtlil_batch(jobs: list[tuple[str, type, tuple, dict]]) -> tuple[list, dict]:
    """Each part's RTLIL under a placeholder name, its ROMs as slots (``romfile.rom_slots``):
    the text is the part's structure, its contents left out (runs in a worker process).
    Also returns the placed RAM variants the parts use."""
    from amaranth.back import rtlil
    out = []
    with collecting() as rams:
        for name, cls, args, kw in jobs:
            comp = cls(*args, **kw)
            with rom_slots() as slots:
                text = rtlil.convert(comp, name=PLACEHOLDER, ports=_ports(comp),
                                     emit_src=False)
            out.append((name, text, slots))
    return out, rams


def verilog_batch(jobs: list[tuple[str, str, bool]]) -> list[str]:
    """Verilog of each distinct structure ``(module, RTLIL text, has ROM slots)``, through
    one Yosys call: the bundled Yosys is WebAssembly and takes most of a second just to
    start (runs in a worker process)."""
    from amaranth.back.verilog import _convert_rtlil_text
    texts = [_PLACEHOLDER.sub(lambda _m: "\\" + module, text) for module, text, _ in jobs]
    modules = split_modules(_convert_rtlil_text("\n".join(texts), strip_internal_attrs=True))
    return with_rom_prefix(modules, {module for module, _, has in jobs if has})


_SUBMODULE = r"^  (\\{}\.\S+) "     # an instance of a part's own submodule


def with_rom_prefix(modules: list[str], slotted: set[str]) -> list[str]:
    """The modules of parts with ROM slots, with the ROM files' path prefix threaded
    through: each module that holds a ROM, or a submodule that does, takes the string
    parameter ``ROMS`` and passes it on; each ROM's file is ``ROMS`` + slot + ``.hex``."""
    names = [_module_of(t).lstrip("\\") for t in modules]
    needs = {n for n, t in zip(names, modules) if re.search(MARKER_RE, t)}
    while True:     # and the modules above them, up to the part's own
        more = {n for n, t in zip(names, modules) if n not in needs and any(
            re.search(r"^  \\" + re.escape(sub) + r" ", t, re.M) for sub in needs
            if sub.startswith(n + "."))}
        if not more:
            break
        needs |= more
    out = []
    for n, t in zip(names, modules):
        if n in needs and n.split(".")[0] in slotted:
            # Verilator 5 inlines a hierarchical block that has a parameter, however
            # set: the part's own module has one only in synthesis (a simulator finds
            # the files by the instance path instead, see rom_file_verilog)
            own = ('`ifdef SYNTHESIS\n  parameter ROMS = "";\n`else\n  localparam ROMS = "";\n'
                   '`endif\n') if "." not in n else '  parameter ROMS = "";\n'
            t = re.sub(r"^(module [^;]*;\n)", lambda m: m.group(1) + own, t, count=1,
                       flags=re.M)
            t = re.sub(_SUBMODULE.format(re.escape(n)),
                       lambda m: m.group(0) + ("#(.ROMS(ROMS)) " if m.group(1).lstrip("\\")
                                               in needs else ""), t, flags=re.M)
            # a ROM this many levels below the part (its module's depth, plus its own)
            levels = n.count(".") + 1
            t = re.sub(r"\.FILE\(" + MARKER_RE + r"\)",
                       rf'.PREFIX(ROMS), .FILE("\1.hex"), .LEVELS({levels})', t)
        out.append(t)
    return out


_AUTO = re.compile(r"(\\\$auto\$[^\s$]*\$)(\d+)")


def _renumber(module: str) -> str:
    """Yosys numbers its own names across the whole run; number them within the module
    so that its text does not depend on what else shared the run."""
    seen: dict[str, int] = {}
    return _AUTO.sub(lambda m: m.group(1) + str(seen.setdefault(m.group(0), len(seen) + 1)),
                     module)


def split_modules(verilog: str) -> list[str]:
    """The ``module ... endmodule`` texts of ``verilog``, each with what precedes it."""
    out, cur = [], []
    for line in verilog.splitlines(keepends=True):
        if line.startswith("/* Generated by"):
            continue
        cur.append(line)
        if line.startswith("endmodule"):
            out.append(_renumber("".join(cur)))
            cur = []
    return out


def _module_of(text: str) -> str:
    return re.search(r"^module (\\\S+|[^\s(]+)", text, re.MULTILINE).group(1)


def port_names(text: str) -> list[str]:
    head = re.search(r"^module \S+\s*\(([^)]*)\)", text, re.MULTILINE)
    return [p.strip() for p in head.group(1).split(",")]


def _silence(obj, seen=None) -> None:
    """Mark ``obj`` and the elaboratables it holds as deliberately unused."""
    seen = set() if seen is None else seen
    if id(obj) in seen or not isinstance(obj, Elaboratable):
        return
    seen.add(id(obj))
    obj._MustUse__silence = True
    for v in vars(obj).values():
        _silence(v, seen)


class Parts:
    """The ``make`` hook: records each distinct part and hands out its ``Blackbox``."""

    def __init__(self):
        self.parts: dict[str, tuple[type, tuple, dict]] = {}
        self.instances = 0
        self.collecting = False
        self._signatures: dict[str, object] = {}

    def __call__(self, cls: type, *args, **kw):
        name = module_name(cls, (*args, kw) if kw else args)
        self.parts.setdefault(name, (cls, args, kw))
        self.instances += 1
        part = self._signatures.get(name)
        if part is None:   # one construction per distinct part: only its signature is used
            part = self._signatures[name] = cls(*args, **kw)
            _silence(part)
        return Blackbox(part, name, self)

    def collect(self, design) -> None:
        """Elaborate ``design`` once to learn its parts (their bodies stay empty)."""
        self.parts.clear()
        self.instances = 0
        self.collecting = True
        try:
            _ir.Fragment.get(design, None)
        finally:
            self.collecting = False

    def convert(self, top=None, workers: int | None = None, progress=None) -> "Converted":
        """Convert every distinct part, and ``top`` (a picklable ``(fn, args)`` giving the
        top level's Verilog), in ``workers`` processes; ``progress(done, total)`` is
        called as jobs finish.

        Two rounds: each distinct construction's RTLIL (its ROMs as slots), then Yosys
        once per distinct structure (the RTLIL text), so that parts differing only by ROM
        contents share a module. Batches are fixed in number whatever the workers: Yosys
        orders a module's text by what else shares its run, so they must not depend on
        the machine. The top, the largest single job, goes first."""
        names = sorted(self.parts)
        workers = max(1, min(workers or len(os.sched_getaffinity(0)), BATCHES))
        nb = max(1, min(len(names), BATCHES))
        first = [(_call, top)] if top else []
        first += [(rtlil_batch, ([(n, *self.parts[n]) for n in names[k::nb]],))
                  for k in range(nb)]
        pool = ProcessPoolExecutor(workers) if workers > 1 else None
        done, total = 0, len(first) + nb

        def run(jobs):
            nonlocal done
            results = [pool.submit(fn, *args) for fn, args in jobs] if pool else None
            for k, (fn, args) in enumerate(jobs):
                yield results[k].result() if pool else fn(*args)
                done += 1
                if progress:
                    progress(done, total)
        try:
            top_text, mems, keyed = None, {}, {}
            for k, result in enumerate(run(first)):
                if top and k == 0:
                    top_text, top_mems = result
                    mems.update(top_mems)
                    continue
                parts, rams = result
                mems.update(rams)
                for name, text, slots in parts:
                    keyed[name] = (text, slots)
            # one module per distinct structure, named by its digest
            module, structures = {}, {}
            for name in names:
                text, slots = keyed[name]
                cls = self.parts[name][0]
                module[name] = f"hgpipe_{cls.__name__.lower()}_" \
                    f"{hashlib.sha256(text.encode()).hexdigest()[:12]}"
                structures.setdefault(module[name], (text, bool(slots.roms)))
                for style, latency in slots.modules:
                    mems[rom_file_module(style, latency)] = (style, latency)
            distinct = sorted(structures)
            n2 = max(1, min(len(distinct), BATCHES))
            total = len(first) + n2
            second = [(verilog_batch, ([(d, *structures[d]) for d in distinct[k::n2]],))
                      for k in range(n2)]
            modules = [t for texts in run(second) for t in texts]
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        modules.sort(key=_module_of)
        for text in modules:
            name = _module_of(text)
            if name in structures and not {"clk", "rst"} <= set(port_names(text)):
                raise RuntimeError(f"separate: {name} has no clk or rst port; its "
                                   f"instances connect both")
        files: dict[str, str] = {}
        if top_text is not None:
            top_text, files = _bind(top_text, module, {n: keyed[n][1] for n in names})
        return Converted(top_text, modules, mems, files, len(distinct))


ROM_DIR = "roms/"       # the default of HGPIPE_ROM_DIR (``romfile.ROM_MACROS``)


def _bind(top_text: str, module: dict[str, str], slots: dict) -> tuple[str, dict]:
    """The top level with each part instance renamed to its structure's module and, for a
    part with ROMs, given its files' prefix (its instance name) in synthesis; and the
    files (path -> ``$readmemh`` text), ``ROM_DIR`` + instance + ``.`` + slot + ``.hex``."""
    files: dict[str, str] = {}

    def inst(m: re.Match) -> str:
        name, instance = m.group(1), m.group(2)
        roms = slots[name].roms
        if not roms:
            return f"  {module[name]} {instance} ("
        for k, (width, words) in enumerate(roms):
            files[f"{ROM_DIR}{instance}.{k}.hex"] = rom_file_text(width, words)
        return f'  {module[name]} `HGPIPE_ROMS("{instance}.") {instance} ('
    text = re.sub(r"^  (hgpipe_[a-z0-9]+_[0-9a-f]{12}) (\S+) \($", inst, top_text, flags=re.M)
    return ROM_MACROS + text, files


@dataclass(frozen=True)
class Converted:
    """What ``Parts.convert`` gives: the top level's text, the part modules sorted by name,
    the memory modules they use (``mem.library``'s input), the ROM files and the number
    of distinct part structures."""
    top: str | None
    modules: list[str]
    mems: dict
    files: dict[str, str]
    structures: int


def _call(fn, args):
    """Run ``fn(*args)`` collecting its ROMs (a worker job)."""
    with collecting() as roms:
        return fn(*args), roms
