"""Per-component RTL cycles at DeiT-tiny size, simulated in Verilator (cocotb).

    python benchmarks/rtl_ops.py [--images 3] [--bits w3a3] [--only softmax,layernorm]

One encoder block of HG-PIPE's DeiT-tiny (196 tokens, 192 channels, 3 heads, TP=2) with
HG-PIPE's foldings; for each component: the contract's cycles per image, the simulated
steady-state interval between consecutive images, and the simulation rate. Targets:
softmax and LayerNorm at <= 20,000 cycles per image (HG-PIPE: 57,624 and 56,448).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hgpipe.graph.contract import Folding, cycles
from hgpipe.model import preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model
from hgpipe.rtl.elementwise import ResidualAddStage
from hgpipe.rtl.layernorm import LayerNormStage
from hgpipe.rtl.linear import LinearStage
from hgpipe.rtl.lut import LutStage
from hgpipe.rtl.attention import AvHead, QkHead
from hgpipe.rtl.linear import HeadStage
from hgpipe.rtl.softmax import SoftmaxStage
from hgpipe.rtl.tokens import TokensStage
from sim import runner
from sim.stage_io import stage_vectors

HG = {  # HG-PIPE's DeiT-tiny parallelism (QKV: 6x12 for each of Q, K, V)
    "qkv": Folding(2, 6, 36), "proj": Folding(2, 12, 6), "fc1": Folding(2, 12, 24),
    "fc2": Folding(2, 24, 12), "ln": Folding(2, 1, 1), "softmax": Folding(2, 1, 1),
    "qk": Folding(2, 4, 7), "av": Folding(2, 7, 4),
}


def components(g):
    b = "blocks.0"
    lut = lambda n, f: LutStage(g[n].table, g[n].in_ranges[0], g[n].out_range, f.tp, f.cip,
                                g.shape(n)[1])
    f = Folding(2, 16, 16)
    yield "patch embed", "patch_embed", f, LinearStage(g["patch_embed"], f), None
    f = Folding(2, 4, 4)
    yield "tokens", "tokens", f, TokensStage(g["tokens"], f, g.layout), None
    yield "layernorm", f"{b}.norm1", HG["ln"], LayerNormStage(g[f"{b}.norm1"], HG["ln"], 192), None
    yield "linear qkv", f"{b}.attn.qkv", HG["qkv"], LinearStage(g[f"{b}.attn.qkv"], HG["qkv"]), None
    f = Folding(2, 36, 36)
    yield "requant qkv", f"{b}.attn.qkv.requant", f, lut(f"{b}.attn.qkv.requant", f), None
    yield "qk (1 head)", f"{b}.attn.qk", HG["qk"], QkHead(g[f"{b}.attn.qk"], HG["qk"], 0, 196), 0
    yield "softmax (1 head)", f"{b}.attn.softmax", HG["softmax"], \
        SoftmaxStage(g[f"{b}.attn.softmax"], HG["softmax"]), 0
    yield "av (1 head)", f"{b}.attn.av", HG["av"], AvHead(g[f"{b}.attn.av"], HG["av"], 0, 196), 0
    yield "linear proj", f"{b}.attn.proj", HG["proj"], LinearStage(g[f"{b}.attn.proj"], HG["proj"]), None
    f = Folding(2, 6, 6)
    yield "residual add", f"{b}.add1", f, ResidualAddStage(g[f"{b}.add1"], 12), None
    yield "linear fc1", f"{b}.mlp.fc1", HG["fc1"], LinearStage(g[f"{b}.mlp.fc1"], HG["fc1"]), None
    f = Folding(2, 24, 24)
    yield "gelu requant", f"{b}.mlp.gelu", f, lut(f"{b}.mlp.gelu", f), None
    yield "linear fc2", f"{b}.mlp.fc2", HG["fc2"], LinearStage(g[f"{b}.mlp.fc2"], HG["fc2"]), None
    f = Folding(2, 8, 8)
    yield "head", "head", f, HeadStage(g["head"], f, 196), None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--bits", default="w3a3")
    ap.add_argument("--only", default="", help="comma-separated name filters")
    args = ap.parse_args()
    cfg = preset("hgpipe-deit-tiny").replace(depth=1)
    rng = np.random.default_rng(0)
    w = random_weights(cfg, seed=0)
    img = lambda n: rng.standard_normal((n, 3, 224, 224))
    g = quantize_model(cfg, w, img(4), QuantConfig(bits=BitSpec.parse(args.bits)))
    patches = g.encode_images(img(args.images))
    print(f"hgpipe-deit-tiny block 0, {args.bits}, {args.images} images back to back, "
          "Verilator (-O2)\n")
    print(f"| {'component':17s} | {'folding':16s} | {'declared':>9s} | {'simulated':>9s} | "
          f"{'bit-exact':9s} | {'build s':>7s} | {'sim cycles/s':>12s} |")
    print(f"|{'-' * 19}|{'-' * 18}|{'-' * 11}|{'-' * 11}|{'-' * 11}|{'-' * 9}|{'-' * 14}|")
    for label, name, f, comp, head in components(g):
        if args.only and not any(k in label for k in args.only.split(",")):
            continue
        vec = stage_vectors(g, name, patches, f, head=head)
        shape = g.shape(g[name].inputs[0])
        tokens = shape[1] if len(shape) == 3 else shape[0]
        declared = cycles(g[name], f, tokens, shape[-1])
        src = runner.verilog(comp, name.replace(".", "_"))
        t = time.perf_counter()
        runner.build(src, name.replace(".", "_"), "verilator", optimize=True)
        built = time.perf_counter() - t
        t = time.perf_counter()
        r = runner.run(src, name.replace(".", "_"), vec, "verilator", optimize=True)
        wall = time.perf_counter() - t
        per_image = len(vec.output.beats) // vec.images
        sim = r.image_interval(per_image)
        total = r.out_cycles[-1] if r.out_cycles else 0
        print(f"| {label:17s} | {str(f):16s} | {declared:9d} | "
              f"{(sim[-1] if sim else -1):9d} | {str(r.bit_exact):9s} | {built:7.1f} | "
              f"{total / wall:12,.0f} |")


if __name__ == "__main__":
    main()
