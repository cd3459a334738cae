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


def convert_batch(jobs: list[tuple[str, type, tuple, dict]]) -> tuple[list[str], dict]:
    """Verilog modules and ROMs of a batch of parts (runs in a worker process). The parts
    go through one Yosys call: the bundled Yosys is WebAssembly and takes most of a
    second just to start."""
    from amaranth.back import rtlil
    from amaranth.back.verilog import _convert_rtlil_text
    texts = []
    with collecting() as roms:
        for module, cls, args, kw in jobs:
            comp = cls(*args, **kw)
            texts.append(rtlil.convert(comp, name=module, ports=_ports(comp), emit_src=False))
    return split_modules(_convert_rtlil_text("\n".join(texts), strip_internal_attrs=True)), roms


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

    def convert(self, top=None, workers: int | None = None, progress=None
                ) -> tuple[str | None, list[str], dict]:
        """Convert every distinct part, and ``top`` (a picklable ``(fn, args)`` giving the
        top level's Verilog), in ``workers`` processes. Returns the top's text, the part
        modules sorted by name (the same text for any number of workers) and the ROMs
        they use. ``progress(done, total)`` is called as jobs finish."""
        names = sorted(self.parts)
        workers = max(1, min(workers or len(os.sched_getaffinity(0)), BATCHES))
        # A fixed number of batches, whatever the workers: Yosys orders a module's text by
        # what else shares its run, so the batches must not depend on the machine. The
        # top, the largest single job, goes first.
        nb = max(1, min(len(names), BATCHES))
        jobs = [(_call, top)] if top else []
        jobs += [(convert_batch, ([(n, *self.parts[n]) for n in names[k::nb]],))
                 for k in range(nb)]
        pool = ProcessPoolExecutor(workers) if workers > 1 else None
        top_text, modules, roms = None, [], {}
        try:
            if pool:
                futures = [pool.submit(fn, *args) for fn, args in jobs]
                results = (f.result() for f in futures)
            else:
                results = (fn(*args) for fn, args in jobs)
            for k, result in enumerate(results, 1):
                if top and k == 1:
                    top_text, top_roms = result
                    roms.update(top_roms)
                else:
                    modules += result[0]
                    roms.update(result[1])
                if progress:
                    progress(k, len(jobs))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        modules.sort(key=_module_of)
        for text in modules:
            name = _module_of(text)
            if name in self.parts and not {"clk", "rst"} <= set(port_names(text)):
                raise RuntimeError(f"separate: {name} has no clk or rst port; its "
                                   f"instances connect both")
        return top_text, modules, roms


def _call(fn, args):
    """Run ``fn(*args)`` collecting its ROMs (a worker job)."""
    with collecting() as roms:
        return fn(*args), roms
