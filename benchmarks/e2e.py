"""Whole accelerators simulated in Verilator: measured against modelled II and latency,
per-stage bubbles, simulation rate and build time.

    python benchmarks/e2e.py                       # vit-micro and one DeiT-tiny block
    python benchmarks/e2e.py --only micro --images 8
    python benchmarks/e2e.py --block-ii 57624      # the block at HG-PIPE's II
    python benchmarks/e2e.py --only whole --images 3   # the whole 12-block DeiT-tiny
    python benchmarks/e2e.py --only block --board zcu102 --offchip all   # residual and head
                                                   # weights in DDR (cocotbext-axi memory)

Cases: ``vit-micro`` (16 tokens x 16 channels, w4a4, planned at ``--micro-ii`` cycles per
image; 0 for the fastest plan that fits VCK190, whose C++ takes many minutes to compile)
and ``deit-tiny block``: HG-PIPE's DeiT-tiny with one encoder block (196 tokens x
192 channels, 3 heads, w3a3; patch embedding, final norm and head included) planned at
``--block-ii`` cycles per image. Target: every stage whose cycles are within 5% of the II
busy >= 95% of the time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hgpipe.model import preset, random_weights
from hgpipe.perf.model import evaluate
from hgpipe.plan import make_plan
from hgpipe.quant import BitSpec, QuantConfig, quantize_model
from hgpipe.resources.board import load_board
from hgpipe.rtl.generate import generate
from sim import e2e, native


def case(name: str, cfg, bits: str, target_ii: int | None, images: int,
         optimize: bool = True, board: str = "vck190", offchip: str = "auto",
         testbench: e2e.Testbench = e2e.Testbench.AUTO, threads: int = 0,
         status: bool = True, hier: bool = False, pgo: bool = False) -> dict:
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((2, cfg.in_chans, cfg.image_size, cfg.image_size))
    graph = quantize_model(cfg, random_weights(cfg, seed=1), calib,
                           QuantConfig(bits=BitSpec.parse(bits)))
    plan = make_plan(graph, load_board(board), target_ii=target_ii, offchip=offchip,
                     status=status)
    perf = evaluate(graph, plan)
    t0 = time.perf_counter()
    acc, source, _ = generate(graph, plan)
    t_gen = time.perf_counter() - t0
    patches = graph.encode_images(rng.standard_normal((images, cfg.in_chans, cfg.image_size,
                                                       cfg.image_size)))
    threads = threads or native.auto_threads(source.verilog, optimize)
    r = e2e.simulate(graph, acc, patches, cycles_per_image=plan.ii, source=source,
                     optimize=optimize, testbench=testbench, threads=threads,
                     hier=hier, train_cycles=round(perf.latency_cycles) if pgo else 0)
    t_build, t_sim = r.build_seconds, r.run_seconds
    cycles = r.image_end_cycles[-1]
    at_ii = {s.name: r.stage_busy.get(s.name, float("nan")) for s in plan.stages
             if s.cycles >= 0.95 * plan.ii}      # nan: too few images to fill the pipeline
    return {"case": name, "bits": bits, "tp": plan.tp, "bit_exact": r.bit_exact,
            "ii_model": plan.ii, "ii_measured": r.measured_ii_cycles,
            "lat_model": perf.latency_cycles, "lat_measured": r.measured_latency_cycles,
            "min_busy_at_ii": min(at_ii.values()) if at_ii else float("nan"),
            "stages_at_ii": len(at_ii), "gen_s": t_gen, "build_s": t_build,
            "sim_s": t_sim, "rate": cycles / t_sim, "busy": r.stage_busy, "threads": threads,
            "ddr": len(plan.ddr_regions)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--block-ii", type=int, default=57_624)
    ap.add_argument("--micro-ii", type=int, default=1024)
    ap.add_argument("--no-opt", action="store_true", help="compile Verilator's C++ at -O0: "
                    "slower to simulate, faster to build")
    ap.add_argument("--only", default="", help="micro, block or whole (all 12 blocks)")
    ap.add_argument("--whole-ii", type=int, default=0, help="the whole model's target II "
                    "(default 0: the fastest plan that fits)")
    ap.add_argument("--testbench", default="auto", help="native (a Verilog harness, no "
                    "Python per cycle), cocotb, or auto (native unless the plan uses DDR)")
    ap.add_argument("--threads", type=int, default=0, help="Verilator threads (native; "
                    "default 0: as hgpipe sim picks, sim.native.auto_threads)")
    ap.add_argument("--hier", action="store_true", help="the repeated parts without ROMs "
                    "as Verilator hierarchical blocks (sim.native.hier_blocks)")
    ap.add_argument("--pgo", action="store_true", help="profile-guided builds (as hgpipe "
                    "sim --pgo: trained on the first image's modelled latency)")
    ap.add_argument("--busy", action="store_true", help="print every stage's busy fraction")
    ap.add_argument("--board", default="vck190")
    ap.add_argument("--offchip", default="auto", help="auto, none or all (DDR streams)")
    ap.add_argument("--status", default="on", choices=("on", "off"),
                    help="the status registers, which give the busy fractions (on by "
                    "default; off: the plan hgpipe generate makes by default)")
    args = ap.parse_args()
    cases = []
    if args.only in ("", "micro"):
        cases.append(("vit-micro", preset("vit-micro"), "w4a4", args.micro_ii or None))
    if args.only in ("", "block"):
        cases.append(("deit-tiny block", preset("hgpipe-deit-tiny").replace(depth=1), "w3a3",
                      args.block_ii))
    if args.only == "whole":    # minutes to build: only on request
        cases.append(("deit-tiny whole", preset("hgpipe-deit-tiny"), "w3a3",
                      args.whole_ii or None))
    tb = e2e.Testbench.parse(args.testbench, "testbench")
    rows = [case(n, c, b, ii, args.images, not args.no_opt, args.board, args.offchip, tb,
                 args.threads, args.status == "on", args.hier, args.pgo and not args.no_opt)
            for n, c, b, ii in cases]
    print(f"board {args.board}, offchip {args.offchip}, testbench {args.testbench}, "
          f"{'hierarchical blocks, ' if args.hier else ''}thr: Verilator threads; "
          "build s includes verilating and C++ -O2"
          f"{' (twice) and the profile run' if args.pgo and not args.no_opt else ''}")
    print(f"{'case':16s} {'bits':5s} {'TP':>2s} {'DDR':>3s} {'exact':5s} {'II model':>9s} "
          f"{'II sim':>9s} {'lat model':>10s} {'lat sim':>9s} {'busy@II':>8s} "
          f"{'gen s':>6s} {'build s':>7s} {'thr':>3s} {'sim s':>6s} {'cycles/s':>9s}")
    for r in rows:
        print(f"{r['case']:16s} {r['bits']:5s} {r['tp']:2d} {r['ddr']:3d} {str(r['bit_exact']):5s} "
              f"{r['ii_model']:9,d} {r['ii_measured']:9,d} {r['lat_model']:10,.0f} "
              f"{r['lat_measured']:9,d} {r['min_busy_at_ii']:8.1%} {r['gen_s']:6.1f} "
              f"{r['build_s']:7.1f} {r['threads']:3d} {r['sim_s']:6.1f} {r['rate']:9,.0f}")
    if args.busy:
        for r in rows:
            print(f"\n{r['case']}: busy per stage")
            for k, v in r["busy"].items():
                print(f"  {k:32s} {v:6.1%}")


if __name__ == "__main__":
    main()
