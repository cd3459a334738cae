"""``hgpipe qat``: quantization-aware fine-tuning of a user's model on their labelled images."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from .errors import HgpipeError

MIN_SPLIT_IMAGES = 10     # below, a held-out fraction is not a validation set
CALIB_IMAGES = 128        # training images that calibrate what QAT does not learn


def _labels(path: str, what: str, n: int, classes: int) -> np.ndarray:
    from .cli_common import _load_array
    y = _load_array(path, what)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise HgpipeError(f"{what}: shape {tuple(y.shape)} dtype {y.dtype}: expected a 1-D "
                          "array of integer class indices")
    if len(y) != n:
        raise HgpipeError(f"{what}: {len(y)} labels: expected one per image ({n})")
    bad = np.flatnonzero((y < 0) | (y >= classes))
    if len(bad):
        raise HgpipeError(f"{what}: class {int(y[bad[0]])} at index {int(bad[0])}: expected "
                          f"0 to {classes - 1}")
    return y.astype(np.int64)


def _data(args: argparse.Namespace, cfg):
    """(train x, y, validation x, y): the validation split given, or held out by seed."""
    from .cli_common import _load_array
    from .model.forward import image_batch
    x = image_batch(cfg, _load_array(args.train_images, "train-images"), "train-images")
    y = _labels(args.train_labels, "train-labels", len(x), cfg.num_classes)
    if bool(args.val_images) != bool(args.val_labels):
        raise HgpipeError("val-images: give both --val-images and --val-labels, or neither "
                          "(a fraction of the training images is held out)")
    if args.val_images:
        xv = image_batch(cfg, _load_array(args.val_images, "val-images"), "val-images")
        return x, y, xv, _labels(args.val_labels, "val-labels", len(xv), cfg.num_classes)
    if not 0 < args.val_fraction < 1:
        raise HgpipeError(f"val-fraction: {args.val_fraction}: expected a number in (0, 1)")
    n_val = int(round(args.val_fraction * len(x)))
    if len(x) < MIN_SPLIT_IMAGES or n_val < 1 or n_val >= len(x):
        raise HgpipeError(f"train-images: {len(x)} images: expected at least "
                          f"{MIN_SPLIT_IMAGES} to hold out {args.val_fraction:g} for "
                          "validation (or give --val-images and --val-labels)")
    idx = np.random.default_rng(args.seed).permutation(len(x))
    return x[idx[n_val:]], y[idx[n_val:]], x[idx[:n_val]], y[idx[:n_val]]


def _fingerprint(weights, bits, x, y, schedule) -> str:
    h = hashlib.sha256()
    for a in (x, y):
        h.update(np.ascontiguousarray(a).tobytes())
    for k, v in sorted(weights.state_dict().items()):
        h.update(k.encode() + np.ascontiguousarray(v, dtype=np.float32).tobytes())
    h.update(json.dumps([bits.name, repr(schedule)]).encode())
    return h.hexdigest()


def _checks(args: argparse.Namespace) -> None:
    from .cli_common import need_torch
    need_torch("qat")
    for key, ok, want in (("epochs", args.epochs >= 1, ">= 1"),
                          ("batch", args.batch >= 1, ">= 1"),
                          ("lr", 0 < args.lr <= 1, "a learning rate in (0, 1]"),
                          ("distill", 0 <= args.distill <= 1, "a weight in [0, 1]"),
                          ("seed", args.seed >= 0, "an integer >= 0")):
        if not ok:
            raise HgpipeError(f"{key}: {getattr(args, key)}: expected {want}")
    if args.stop_after is not None and not 1 <= args.stop_after <= args.epochs:
        raise HgpipeError(f"stop-after: {args.stop_after}: expected 1 to {args.epochs} "
                          "(the epochs)")
    if args.stop_after is not None and not args.checkpoint:
        raise HgpipeError("stop-after: expected a --checkpoint to continue from")
    if args.checkpoint:
        p = Path(args.checkpoint)
        if p.exists() and not p.is_file():
            raise HgpipeError(f"checkpoint: {args.checkpoint!r}: exists and is not a file")
        if not p.parent.is_dir():
            raise HgpipeError(f"checkpoint: {args.checkpoint!r}: no directory "
                              f"{str(p.parent)!r}")


def cmd_qat(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from .cli_common import _model, _progress
    from .outdir import OutDir
    from .quant import BitSpec, write_steps
    _checks(args)
    out = OutDir(args.out, args.force)
    say = _progress(args.quiet)
    import torch
    from .model import save_weights
    from .quant import qat
    from .quant.torch_vit import from_weights, learned_steps, to_weights
    bits = BitSpec.parse(args.bits)
    cfg, weights = _model(args)
    x, y, xv, yv = _data(args, cfg)
    s = qat.Schedule(epochs=args.epochs, lr=args.lr, batch=args.batch, distill=args.distill,
                     seed=args.seed)
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    fingerprint = _fingerprint(weights, bits, x, y, s)
    state = None
    try:
        if ckpt:
            state = qat.read_checkpoint(ckpt, fingerprint)
            if state is not None:
                say(f"resuming from {ckpt} after epoch {int(state['epoch'])}")
    except qat.CheckpointError as exc:
        raise HgpipeError(str(exc)) from None
    torch.manual_seed(args.seed)
    teacher = from_weights(cfg, weights)
    say(f"fine-tuning {bits.name} on {len(x)} images ({len(xv)} held out), "
        f"{args.epochs} epochs")
    t0 = time.perf_counter()
    with tqdm(total=0, unit="batch", desc="QAT", disable=args.quiet, file=sys.stderr,
              leave=False) as bar:
        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        q = qat.prepare(teacher, x, bits, args.seed)
        done = qat.fit(q, x, y, s, teacher=teacher, checkpoint=ckpt, fingerprint=fingerprint,
                       stop_after=args.stop_after, progress=tick, resume=state)
    seconds = time.perf_counter() - t0
    if done < args.epochs:
        print(f"stopped after epoch {done} of {args.epochs}: the state is in {ckpt}; the "
              "same command continues from it")
        return 0
    say("building the integer graph at the learned steps")
    calib = x[:CALIB_IMAGES]
    graph = qat.integer_graph(cfg, q, bits, calib)
    scales, signs = learned_steps(q)
    result = {"model": args.model or Path(args.config).stem, "bits": bits.name,
              "train_images": len(x), "val_images": len(xv), "epochs": args.epochs,
              "seed": args.seed, "seconds": round(seconds, 1),
              "top1": {"float": qat.torch_top1(teacher, xv, yv),
                       "fake_quant": qat.torch_top1(q, xv, yv),
                       "integer": qat.integer_top1(graph, xv, yv)},
              "calibration_images": len(calib)}
    trained = to_weights(q)

    def fill(tmp: Path) -> None:
        save_weights(trained, tmp / "weights.safetensors")
        write_steps(tmp / "steps.json", scales, signs)
        (tmp / "qat.json").write_text(json.dumps(result, indent=1) + "\n")
    files = out.publish(fill)
    t = result["top1"]
    print(f"{result['model']} {bits.name}: {len(x)} training images, {args.epochs} epochs in "
          f"{seconds:.0f} s; top-1 on {len(xv)} validation images:")
    print(f"  float       {100 * t['float']:6.2f} %")
    print(f"  fake-quant  {100 * t['fake_quant']:6.2f} %")
    print(f"  integer     {100 * t['integer']:6.2f} %  ({100 * (t['integer'] - t['float']):+.2f} "
          "pt against float)")
    print(f"wrote {', '.join(str(f) for f in files)}; use them with --weights "
          f"{out.path / 'weights.safetensors'} --steps {out.path / 'steps.json'}")
    return 0


def add_command(sub) -> None:
    from .cli_common import _add_model_args, add_force_arg
    p = sub.add_parser("qat", help="quantization-aware fine-tuning on labelled images "
                       "(needs torch): weights and learned steps for --weights/--steps")
    _add_model_args(p)
    p.add_argument("--bits", default="w3a3", help="as for run/plan (default w3a3)")
    p.add_argument("--train-images", required=True, help="training images .npy "
                   "(N, C, H, W) or (N, H, W, C), normalised as the model expects")
    p.add_argument("--train-labels", required=True, help="their class indices .npy (N,)")
    p.add_argument("--val-images", help="validation images .npy (default: hold out "
                   "--val-fraction of the training images, by --seed)")
    p.add_argument("--val-labels", help="their class indices .npy")
    p.add_argument("--val-fraction", type=float, default=0.1, help="default %(default)s")
    p.add_argument("--epochs", type=int, default=200, help="default %(default)s")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (one-cycle; "
                   "default %(default)s)")
    p.add_argument("--batch", type=int, default=64, help="default %(default)s")
    p.add_argument("--distill", type=float, default=0.8, help="weight of the float model's "
                   "predictions in the loss, 0 to 1 (default %(default)s)")
    p.add_argument("--checkpoint", help="state file saved after every epoch; an existing "
                   "one from the same settings is resumed")
    p.add_argument("--stop-after", type=int, help="stop after this epoch (with "
                   "--checkpoint: the same command continues)")
    p.add_argument("--out", required=True, help="output directory")
    add_force_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(fn=cmd_qat)
