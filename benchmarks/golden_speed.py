"""Golden-model speed at DeiT size: integer forward seconds per image (target <= 1 s on 2 cores).

    python benchmarks/golden_speed.py [--model deit-tiny] [--bits w3a3] [--images 8]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hgpipe.golden import logits
from hgpipe.model import forward, preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="deit-tiny")
    ap.add_argument("--bits", default="w3a3")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--calib", type=int, default=8)
    args = ap.parse_args()
    cfg = preset(args.model)
    w = random_weights(cfg, seed=0)
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((args.calib, cfg.in_chans, cfg.image_size, cfg.image_size))
    x = rng.standard_normal((args.images, cfg.in_chans, cfg.image_size, cfg.image_size))
    rows = []
    t = time.perf_counter()
    g = quantize_model(cfg, w, calib, QuantConfig(bits=BitSpec.parse(args.bits)))
    rows.append(("calibrate + build graph", f"{args.calib} images", time.perf_counter() - t))
    p = g.encode_images(x)
    logits(g, p[:1])  # warm-up
    t = time.perf_counter()
    logits(g, p, batch=1)
    rows.append(("integer forward, batch 1", "per image", (time.perf_counter() - t) / len(x)))
    t = time.perf_counter()
    logits(g, p, batch=len(x))
    rows.append((f"integer forward, batch {len(x)}", "per image",
                 (time.perf_counter() - t) / len(x)))
    t = time.perf_counter()
    forward(cfg, w, x)
    rows.append(("float forward (float64)", "per image", (time.perf_counter() - t) / len(x)))
    print(f"{args.model} {g.bits}, {len(g.stages)} stages, {os.cpu_count()} cores\n")
    print(f"| {'step':28s} | {'unit':12s} | {'seconds':>8s} |")
    print(f"|{'-' * 30}|{'-' * 14}|{'-' * 10}|")
    for name, unit, sec in rows:
        print(f"| {name:28s} | {unit:12s} | {sec:8.3f} |")


if __name__ == "__main__":
    main()
