"""Synthesize every distinct module of a generated design, and judge it against a clock.

The generator converts each distinct part once (``hgpipe.rtl.separate``), so the design's
Verilog is a top level of instances plus one module per distinct part. Each part module
is synthesized alone (with the memory modules it instantiates) in a pool of workers;
totals weigh each by its instances in the top level. The top level itself is wiring and
the testbench's busy counters, and is not synthesized; the paths through it, from a
register in one part out of its port into the next part's logic, are bounded by each
part's latest arrival at its output ports and worst path from its input ports.
"""

from __future__ import annotations

import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

from ..graph.pipeline import Pipelining, fmax_mhz
from .yosys import ModuleSynth, closure, split, synthesize

_PART = re.compile(r"^hgpipe_([a-z0-9]+)_[0-9a-f]{12}$")


def kind_of(module: str) -> str:
    """The part's component class (``linearstage``, ``fifo``, ...) from its module name."""
    m = _PART.match(module)
    return m.group(1) if m else module


def instance_modules(top_text: str, modules: dict[str, str], prefix: str = ""
                     ) -> dict[str, str]:
    """The module of each part instance of the top level (instance names that start with
    one of the comma-separated ``prefix``es, e.g. ``blocks_0_``; all by default)."""
    prefixes = tuple(prefix.split(","))
    out = {}
    for name, inst in re.findall(r"^\s*(\\?\S+)\s+(?:`HGPIPE_ROMS\(.*\)\s+)?(\\?\S+)\s*\($",
                                 top_text, re.M):
        inst = inst.lstrip("\\")
        if name in modules and inst.startswith(prefixes):
            out[inst] = name
    return out


def instances(top_text: str, modules: dict[str, str], prefix: str = "") -> dict[str, int]:
    """How many times the top level instantiates each module (``instance_modules``); a
    prefix that names no instance is a ValueError."""
    insts = instance_modules(top_text, modules, prefix)
    for pf in filter(None, prefix.split(",")):
        if not any(i.startswith(pf) for i in insts):
            some = sorted(instance_modules(top_text, modules))[:3]
            raise ValueError(f"instances: {pf!r}: no part instance's name starts with it "
                             f"(e.g. {', '.join(some)})")
    out: dict[str, int] = {}
    for name in insts.values():
        out[name] = out.get(name, 0) + 1
    return out


_INST_BLOCK = re.compile(r"^  (\\?\S+) (?:`HGPIPE_ROMS\(.*?\) )?(\\?\S+) \(\n(.*?)^  \);",
                         re.M | re.S)
_CONN = re.compile(r"\.(\w+)\((.*?)\)(?:,|\s*$)", re.M)
_DIR = re.compile(r"^\s*(input|output)\b[^;]*?(\\?[\w$]+)\s*;", re.M)


def connections(top_text: str, modules: dict[str, str]
                ) -> list[tuple[str, str, str, str, str, str]]:
    """Nets between two part instances of the top level: ``(producer module, instance,
    output port, consumer module, instance, input port)``."""
    dirs = {}
    drivers: dict[str, tuple[str, str, str]] = {}
    loads: dict[str, list[tuple[str, str, str]]] = {}
    for mod, inst, body in _INST_BLOCK.findall(top_text):
        if mod not in modules:
            continue
        if mod not in dirs:
            dirs[mod] = {name: d for d, name in _DIR.findall(modules[mod])}
        for port, net in _CONN.findall(body):
            net = net.strip()
            if dirs[mod].get(port) == "output":
                drivers[net] = (mod, inst, port)
            elif dirs[mod].get(port) == "input" and port not in ("clk", "rst"):
                loads.setdefault(net, []).append((mod, inst, port))
    return [(*drivers[n], *ld) for n in sorted(loads) if n in drivers for ld in loads[n]]


@dataclass(frozen=True)
class CrossPath:
    """A path through the top level: from a register in ``producer`` out of its port,
    into ``consumer`` and to a register there."""

    ns: float
    producer: str       # "instance.port"
    consumer: str


@dataclass(frozen=True)
class ModuleResult:
    synth: ModuleSynth
    kind: str
    instances: int
    fmax_mhz: float
    over_budget: tuple[str, ...]    # what breaks the clock's budget: "delay", "luts", or
    #                                 "dsp" (a DSP whose registers cannot all be packed)


@dataclass(frozen=True)
class DesignSynth:
    top: str
    pipe: Pipelining
    modules: tuple[ModuleResult, ...]
    cross: CrossPath | None = None      # the worst path between two synthesized parts

    @property
    def fmax_mhz(self) -> float:
        """The slowest module's estimate, or the slowest path between two parts."""
        own = min((m.fmax_mhz for m in self.modules), default=float("inf"))
        return min(own, fmax_mhz(self.cross.ns)) if self.cross else own

    @property
    def worst(self) -> ModuleResult | None:
        return min(self.modules, key=lambda m: m.fmax_mhz, default=None)

    @property
    def over_budget(self) -> tuple[ModuleResult, ...]:
        return tuple(m for m in self.modules if m.over_budget)

    @property
    def cross_within(self) -> bool:
        return self.cross is None or self.cross.ns <= self.pipe.budget_ns + 1e-9

    def total(self, field: str) -> float:
        return sum(getattr(m.synth, field) * m.instances for m in self.modules)


def judge(s: ModuleSynth, pipe: Pipelining) -> tuple[str, ...]:
    over = []
    if s.worst.ns > pipe.budget_ns + 1e-9:
        over.append("delay")
    if s.max_luts.luts > pipe.lut_levels:
        over.append("luts")
    if s.unpacked_dsps:
        over.append("dsp")
    return tuple(over)


def _job(text: str, top: str, files: dict[str, str]) -> ModuleSynth:
    return synthesize(text, top, files=files)


_ROMS = re.compile(r'^  (\S+) `HGPIPE_ROMS\("([^"]*)"\) (\S+) \($', re.M)


def _with_roms(modules: dict[str, str], top: str, name: str, files: dict[str, str]
               ) -> tuple[str, dict[str, str]]:
    """The text to synthesize part module ``name`` (and what it instantiates) and the ROM
    files it loads: a part whose ROMs are data takes the first of its instances' files
    (their contents, not the structure, differ between instances)."""
    from ..rtl.separate import ROM_DIR
    text = closure(modules, name)
    for module, inst_prefix, _ in _ROMS.findall(modules[top]):
        if module == name:
            prefix = ROM_DIR + inst_prefix
            text = text.replace(modules[name], modules[name].replace(
                'parameter ROMS = "";', f'parameter ROMS = "{prefix}";', 1))
            return text, {p: t for p, t in files.items() if p.startswith(prefix)}
    return text, {}


def synth_design(verilog: str, top: str, pipe: Pipelining, *, jobs: int = 2,
                 progress=None, only: set[str] | None = None, prefix: str = "",
                 files: dict[str, str] | None = None) -> DesignSynth:
    """Synthesize each distinct part module of ``verilog`` (the generator's output, top
    level ``top``, its ROM ``files``) instantiated under names starting with ``prefix``
    (all by default), of the kinds in ``only`` (all by default); ``progress(done,
    total)`` as modules finish."""
    modules = split(verilog)
    if top not in modules:
        raise ValueError(f"synth: no module {top!r} in the Verilog")
    counts = instances(modules[top], modules, prefix)
    names = sorted(n for n in counts if only is None or kind_of(n) in only)
    results: dict[str, ModuleSynth] = {}
    work = [(*_with_roms(modules, top, n, files or {}), n) for n in names]
    if jobs > 1 and len(work) > 1:
        with ProcessPoolExecutor(min(jobs, len(work))) as pool:
            futures = {pool.submit(_job, text, n, f): n for text, f, n in work}
            for k, fut in enumerate(as_completed(futures), 1):
                results[futures[fut]] = fut.result()
                if progress:
                    progress(k, len(work))
    else:
        for k, (text, f, n) in enumerate(work, 1):
            results[n] = _job(text, n, f)
            if progress:
                progress(k, len(work))
    out = tuple(ModuleResult(results[n], kind_of(n), counts[n], fmax_mhz(results[n].worst.ns),
                             judge(results[n], pipe)) for n in names)
    return DesignSynth(top, pipe, out, worst_crossing(modules[top], modules, results))


def worst_crossing(top_text: str, modules: dict[str, str],
                   results: dict[str, ModuleSynth]) -> CrossPath | None:
    """The longest path that leaves one part and ends in the next: the producer's latest
    arrival at its output port plus the consumer's worst path from its input port."""
    best = None
    for pm, pi, pp, cm, ci, cp in connections(top_text, modules):
        if pm not in results or cm not in results:
            continue
        ps = (results[pm].port_out or {}).get(pp, 0) + (results[cm].port_in or {}).get(cp, 0)
        if best is None or ps > best[0]:
            best = (ps, f"{pi}.{pp}", f"{ci}.{cp}")
    return CrossPath(best[0] / 1000, best[1], best[2]) if best else None
