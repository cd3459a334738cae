"""The ``hgpipe`` command."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import HgpipeError


def _atomic_save(path: Path, array: np.ndarray) -> None:
    """Write the whole file or nothing: a temporary sibling renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_array(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise HgpipeError(f"{what}: file {path!r} does not exist")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as exc:
        raise HgpipeError(f"{what}: cannot read {path!r} as .npy: {exc}") from None


def _model(args: argparse.Namespace):
    from .model import load_config, load_weights, preset, random_weights
    if bool(args.model) == bool(args.config):
        raise HgpipeError("model: give exactly one of --model NAME or --config FILE")
    cfg = preset(args.model) if args.model else load_config(args.config)
    w = load_weights(cfg, args.weights) if args.weights else random_weights(cfg, args.seed)
    return cfg, w


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="preset name (see `hgpipe models`)")
    p.add_argument("--config", help="ViT config file (.json/.yaml)")
    p.add_argument("--weights", help="timm-named state dict (.npz/.safetensors/.pth); "
                   "default: random weights by --seed")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")


def _add_quant_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bits", default="w3a3", help="w3a3 (default), w4a4, w8a8, mixed w4a3, "
                   "residual width with r<N> (w3a3r10)")
    p.add_argument("--calib", help="calibration images .npy (default: the input images)")
    p.add_argument("--observer", default="mse", choices=("minmax", "percentile", "mse"),
                   help="activation observer")
    p.add_argument("--per-channel", action="store_true", help="per-channel weight scales")


def quant_config(args: argparse.Namespace):
    from .quant import BitSpec, QuantConfig
    return QuantConfig(bits=BitSpec.parse(args.bits), act_observer=args.observer,
                       per_channel=args.per_channel)


def cmd_models(args: argparse.Namespace) -> int:
    from .model.config import PRESET_NOTES, PRESETS
    print(f"{'name':18s} {'img':>4s} {'patch':>5s} {'dim':>4s} {'depth':>5s} {'heads':>5s} "
          f"{'tokens':>6s} {'classes':>7s}  notes")
    for name, c in PRESETS.items():
        print(f"{name:18s} {c.image_size:4d} {c.patch_size:5d} {c.embed_dim:4d} {c.depth:5d} "
              f"{c.num_heads:5d} {c.num_tokens:6d} {c.num_classes:7d}  {PRESET_NOTES[name]}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .model.forward import forward, image_batch
    cfg, w = _model(args)
    images = image_batch(cfg, _load_array(args.images, "images"))
    out = Path(args.out)
    t0 = time.perf_counter()
    if args.float:
        logits = forward(cfg, w, images)
        mode = "float"
    else:
        from .golden import logits as int_logits
        from .quant import quantize_model
        qcfg = quant_config(args)
        calib = image_batch(cfg, _load_array(args.calib, "calib")) if args.calib else images
        print(f"calibrating {qcfg.bits.name} on {len(calib)} images ...", file=sys.stderr)
        graph = quantize_model(cfg, w, calib, qcfg)
        print(f"running the integer model on {len(images)} images ...", file=sys.stderr)
        logits = graph.dequantize_logits(int_logits(graph, graph.encode_images(images)))
        mode = qcfg.bits.name
    _atomic_save(out, logits.astype(np.float32))
    top1 = logits.argmax(-1)
    for i, c in enumerate(top1):
        print(f"image {i}: class {int(c)}")
    print(f"{mode}: {len(images)} images in {time.perf_counter() - t0:.2f} s, logits -> {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hgpipe", description="Hybrid-grained pipeline "
                                 "accelerators for Vision Transformers.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("models", help="list the preset models").set_defaults(fn=cmd_models)
    r = sub.add_parser("run", help="run the float or integer model on images")
    _add_model_args(r)
    r.add_argument("--images", required=True, help="images .npy, (N, C, H, W) or (N, H, W, C)")
    r.add_argument("--float", action="store_true", help="run the float reference")
    _add_quant_args(r)
    r.add_argument("--out", required=True, help="logits .npy (dequantized to float)")
    r.set_defaults(fn=cmd_run)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except HgpipeError as exc:
        print(f"hgpipe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
