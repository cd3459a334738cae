"""HLS backend: render, compile (g++) and C-simulate against the golden model; print a table.

    python benchmarks/hls.py                     # vit-micro and one DeiT-tiny block
    python benchmarks/hls.py --only deit-tiny    # the whole 12-block DeiT-tiny (197 tokens)

Cases: ``vit-micro`` (w3a3, ZCU102's fastest plan), ``deit-tiny block`` (HG-PIPE's DeiT-tiny
with one encoder block: 196 tokens x 192 channels, w3a3, patch embedding and head
included, VCK190 at HG-PIPE's II) and ``deit-tiny`` (the standard 197-token model, all 12
blocks, VCK190's fastest plan: 198 rows at TP=2). Weights are random (seed 1): the
numerics are what is checked. ``-O0`` builds are the warning-free ones; ``--opt`` uses
``-O2`` (faster runs, slower builds). Figures: wall-clock seconds on this machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hgpipe.hls.design import hls_files
from hgpipe.hls.project import csim
from hgpipe.model import preset, random_weights
from hgpipe.plan import make_plan
from hgpipe.quant import BitSpec, QuantConfig, quantize_model
from hgpipe.resources.board import load_board

CASES = {
    "vit-micro": (lambda: preset("vit-micro"), "zcu102", None),
    "deit-tiny block": (lambda: preset("hgpipe-deit-tiny").replace(depth=1), "vck190", 57_624),
    "deit-tiny": (lambda: preset("deit-tiny"), "vck190", None),
}


def case(name: str, images: int, optimize: bool) -> dict:
    make_cfg, board, target_ii = CASES[name]
    cfg = make_cfg()
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((2, cfg.in_chans, cfg.image_size, cfg.image_size))
    graph = quantize_model(cfg, random_weights(cfg, seed=1), calib,
                           QuantConfig(bits=BitSpec.parse("w3a3")))
    plan = make_plan(graph, load_board(board), target_ii=target_ii)
    t0 = time.perf_counter()
    files = hls_files(graph, plan)
    t_render = time.perf_counter() - t0
    patches = graph.encode_images(rng.standard_normal((images, cfg.in_chans, cfg.image_size,
                                                       cfg.image_size)))
    r = csim(graph, plan, patches, optimize=optimize, files=files)
    return {"case": name, "tp": plan.tp, "rows": plan.layout.rows, "ii": plan.ii,
            "bit_exact": r.bit_exact, "images": r.images, "files": len(files),
            "mb": sum(len(v) for v in files.values()) / 1e6, "render_s": t_render,
            "build_s": r.build_seconds, "cached": r.cached, "run_s": r.run_seconds,
            "warnings": len(r.warnings.splitlines())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--only", default="", help=", ".join(CASES))
    ap.add_argument("--opt", action="store_true", help="compile at -O2")
    args = ap.parse_args()
    names = [args.only] if args.only else ["vit-micro", "deit-tiny block"]
    rows = [case(n, args.images, args.opt) for n in names]
    print(f"g++ {'-O2' if args.opt else '-O0'}, {args.images} images, w3a3")
    print(f"{'case':16s} {'TP':>2s} {'rows':>4s} {'II':>7s} {'exact':5s} {'files':>5s} "
          f"{'MB':>5s} {'render s':>8s} {'build s':>8s} {'run s':>6s} {'s/image':>7s} "
          f"{'warn':>4s}")
    for r in rows:
        print(f"{r['case']:16s} {r['tp']:2d} {r['rows']:4d} {r['ii']:7,d} "
              f"{str(r['bit_exact']):5s} {r['files']:5d} {r['mb']:5.1f} {r['render_s']:8.1f} "
              f"{r['build_s']:8.1f}{'*' if r['cached'] else ' '} {r['run_s']:6.1f} "
              f"{r['run_s'] / r['images']:7.2f} {r['warnings']:4d}")
    if any(r["cached"] for r in rows):
        print("* cached build")


if __name__ == "__main__":
    main()
