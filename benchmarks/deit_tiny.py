"""DeiT-tiny (and deit-small) w3a3 plans beside HG-PIPE's published design.

    python benchmarks/deit_tiny.py [--small]

HG-PIPE's 196-token DeiT-tiny on VCK190 at its own II, at the target II of 50,176 cycles,
the fastest plan that fits, and the fastest within HG-PIPE's 669k LUT; on ZCU102 the
fastest plan that fits (the residual delay lines and the head's weights in the PS DDR),
the same on chip alone (none fits: BRAM binds), and the fastest one the whole device
would hold; the standard 197-token
DeiT-tiny (streams padded to the TP) on both boards; with --small, deit-small on
VCK190. Random weights by seed (the plan depends on shapes and bit widths, not on
accuracy). Prints a Markdown table and the planning time.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from hgpipe.errors import PlanError
from hgpipe.model import preset, random_weights
from hgpipe.perf.model import evaluate
from hgpipe.plan import make_plan
from hgpipe.quant import BitSpec, QuantConfig, quantize_model
from hgpipe.resources.board import load_board

HGPIPE = {"ii": 57624, "mhz": 425, "fps": 7118, "lut": 669e3, "dsp": 312, "bram": 1006.5}


def graph(name: str):
    cfg = preset(name)
    imgs = np.random.default_rng(0).standard_normal((2, 3, cfg.image_size, cfg.image_size))
    t = time.perf_counter()
    g = quantize_model(cfg, random_weights(cfg, seed=0), imgs,
                       QuantConfig(bits=BitSpec.parse("w3a3")))
    return g, time.perf_counter() - t


def row(label, g, board, usable: float | None = None, **target):
    t = time.perf_counter()
    b = load_board(board)
    if usable is not None:
        b = dataclasses.replace(b, usable_fraction=usable)
    try:
        plan = make_plan(g, b, **target)
    except PlanError as e:
        return f"| {label} | {board} | - | - | - | - | - | - | - | - | no: {e} |"
    perf = evaluate(g, plan)
    dt = time.perf_counter() - t
    r = plan.resources
    ddr = (f"{plan.ddr_bytes / 1e6:.2f} MB, {plan.ddr_bytes * perf.fps / 1e9:.2f} GB/s "
           f"({len(plan.ddr_regions)})" if plan.ddr_regions else "-")
    return (f"| {label} | {board} | {plan.ii:,} | {plan.clock_mhz:g} | {perf.fps:,.0f} | "
            f"{r.lut / 1e3:,.0f}k | {r.dsp:,} | {r.bram:,.1f} | {r.uram} | {ddr} | "
            f"{'yes' if plan.fits else 'no'} (TP={plan.tp}, {dt:.1f} s) |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="also deit-small on VCK190")
    args = ap.parse_args()
    g, tq = graph("hgpipe-deit-tiny")
    print(f"hgpipe-deit-tiny w3a3 (196 tokens), quantized in {tq:.1f} s\n")
    print("| design | board | II (cycles) | MHz | FPS | LUT | DSP | BRAM36 | URAM | "
          "DDR an image (streams) | fits |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    h = HGPIPE
    print(f"| HG-PIPE (published, Vivado) | vck190 | {h['ii']:,} | {h['mhz']} | {h['fps']:,} | "
          f"{h['lut'] / 1e3:,.0f}k | {h['dsp']} | {h['bram']} | - | - | yes |")
    print(row("hgpipe at HG-PIPE's II", g, "vck190", target_ii=h["ii"]))
    print(row("hgpipe at the target II", g, "vck190", target_ii=50176))
    print(row("hgpipe fastest that fits", g, "vck190"))
    # HG-PIPE's own LUTs as the budget (Yosys's count: the planner's margin applies), the
    # same share of every other resource
    share = h["lut"] / load_board("vck190").resources["lut"]
    print(row(f"hgpipe fastest within HG-PIPE's LUTs (usable fraction {share:.4f})", g,
              "vck190", usable=share))
    print(row("hgpipe fastest that fits", g, "zcu102"))
    print(row("hgpipe on chip alone", g, "zcu102", offchip="none"))
    print(row("hgpipe fastest in 100% of the device", g, "zcu102", usable=1.0))
    gd, tq = graph("deit-tiny")
    for board in ("vck190", "zcu102"):
        print(row("standard deit-tiny (197 tokens, padded) fastest that fits", gd, board))
    if args.small:
        gs, tq = graph("deit-small")
        print(row(f"deit-small fastest that fits (quantized in {tq:.0f} s)", gs, "vck190"))


if __name__ == "__main__":
    main()
