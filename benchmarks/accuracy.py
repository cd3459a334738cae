"""Float vs integer top-1 of a small ViT trained here on scikit-learn's digits.

    python benchmarks/accuracy.py [--epochs 150] [--qat-epochs 100] [--calib 128]

Rows: the float model; hgpipe's post-training quantization of it (PTQ) at each width; and
the integer graph of a copy fine-tuned with fake quantization at the graph's own
quantization points (QAT with learned steps, distilled from the float model, as low-bit
deployments such as HG-PIPE's W3A3 DeiT are trained), built with the learned steps
(``QuantConfig.scales``) and the fake-quant model's own top-1 beside it. Targets: w4a4
drops <= 0.5 pt, w3a3 <= 1.5 pt (HG-PIPE loses 1.15 pt at W3A3 on ImageNet).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _train import digits_split, export, finetune_qat, qat_scales, train_vit  # noqa: E402

from hgpipe.golden import logits  # noqa: E402
from hgpipe.model import preset  # noqa: E402
from hgpipe.model import save_weights  # noqa: E402
from hgpipe.quant import BitSpec, QuantConfig, quantize_model, write_steps  # noqa: E402

TARGET_DROP = {"w4a4": 0.5, "w3a3": 1.5}


def torch_top1(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float(np.mean(model(torch.tensor(x, dtype=torch.float32)).argmax(-1).numpy() == y))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vit-digits-48")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--qat-epochs", type=int, default=100)
    ap.add_argument("--calib", type=int, default=128, help="calibration images (train split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="directory for the QAT weights (.npz), their learned steps "
                    "(.steps.json, for `hgpipe run --steps`) and the held-out digits (.npy)")
    args = ap.parse_args()

    cfg = preset(args.model)
    xtr, ytr, xte, yte = digits_split(args.seed)
    calib = xtr[:args.calib]
    t0 = time.perf_counter()
    model = train_vit(cfg, xtr, ytr, epochs=args.epochs, seed=args.seed)
    print(f"trained {args.model} for {args.epochs} epochs in {time.perf_counter() - t0:.0f} s "
          f"({len(xtr)} train / {len(xte)} held-out digits, {len(calib)} calibration)")
    w = export(model)

    def int_top1(weights, bits: str, **fixed) -> float:
        g = quantize_model(cfg, weights, calib, QuantConfig(bits=BitSpec.parse(bits), **fixed))
        return float(np.mean(logits(g, g.encode_images(xte)).argmax(-1) == yte))

    fp = torch_top1(model, xte, yte)
    rows = [("float", "-", fp, None)]
    for bits in ("w8a8", "w4a4", "w3a3"):
        rows.append(("PTQ", bits, int_top1(w, bits), None))
    for bits, n in (("w4a4", 4), ("w3a3", 3)):
        t0 = time.perf_counter()
        q = finetune_qat(model, xtr, ytr, n, n, n, epochs=args.qat_epochs, seed=args.seed)
        print(f"QAT {bits}: {args.qat_epochs} epochs in {time.perf_counter() - t0:.0f} s")
        # the learned steps fix the scales; the biases were trained with them, so no
        # bias correction towards the float path
        scales, signs = qat_scales(q)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            save_weights(export(q), out / f"{args.model}_{bits}.npz")
            write_steps(out / f"{args.model}_{bits}.steps.json", scales, signs)
            np.save(out / "digits_test.npy", xte.astype(np.float32))
        rows.append(("QAT", bits, int_top1(export(q), bits, scales=scales, signs=signs,
                                           bias_correction=False), torch_top1(q, xte, yte)))

    print(f"\n| {'model':9s} | {'bits':4s} | {'integer top-1 %':>15s} | {'drop (pt)':>9s} | "
          f"{'target':>7s} | {'fake-quant top-1 %':>18s} |")
    print(f"|{'-' * 11}|{'-' * 6}|{'-' * 17}|{'-' * 11}|{'-' * 9}|{'-' * 20}|")
    for kind, bits, top1, fq in rows:
        drop = 100 * (fp - top1)
        target = TARGET_DROP.get(bits)
        tgt = "-" if target is None else f"{'met' if drop <= target else 'missed'}"
        print(f"| {kind:9s} | {bits:4s} | {100 * top1:15.2f} | {drop:9.2f} | {tgt:>7s} | "
              f"{'-' if fq is None else f'{100 * fq:.2f}':>18s} |")


if __name__ == "__main__":
    main()
