"""The calibration's instances (``calibrate_resources.py``): small stages of vit-micro at
several foldings, plumbing parts from a few LUTs to DeiT-tiny's, off-chip ports and
arbiters, and full-size points cut from DeiT-tiny's block 0 as its fastest VCK190 plan (and
HG-PIPE's II) builds them, each with the factory of its component."""

from __future__ import annotations

import functools

import numpy as np

from hgpipe.graph.contract import Folding
from hgpipe.model import preset, random_weights
from hgpipe.plan.fold import stage_dims
from hgpipe.quant import BitSpec, QuantConfig, quantize_model


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
