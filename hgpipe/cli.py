"""The ``hgpipe`` command: ``models``, ``run`` and ``plan`` here, the RTL commands in
``cli_rtl``, what they share in ``cli_common``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np

from .cli_common import (_add_model_args, _add_plan_args, _add_quant_args, _load_array,
                         _model, _progress, add_force_arg, check_input_paths, headline,
                         make_plan_from_args,
                         quant_config, quantize, summary)
from .cli_qat import add_command as add_qat
from .cli_rtl import add_commands
from .errors import HgpipeError

__all__ = ["build_parser", "main", "make_plan_from_args"]


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
    from .outdir import OutFile, is_logits
    out = OutFile(args.out, is_logits, args.force)
    cfg, w = _model(args)
    images = image_batch(cfg, _load_array(args.images, "images"))
    t0 = time.perf_counter()
    if args.float:
        logits = forward(cfg, w, images)
        mode = "float"
    else:
        from .golden import logits as int_logits
        qcfg = quant_config(args, cfg)
        calib = image_batch(cfg, _load_array(args.calib, "calib"), "calib") \
            if args.calib else images
        graph = quantize(args, cfg, w, calib, qcfg,
                         lambda msg: print(f"{msg} ...", file=sys.stderr))
        print(f"running the integer model on {len(images)} images ...", file=sys.stderr)
        logits = graph.dequantize_logits(int_logits(graph, graph.encode_images(images)))
        mode = qcfg.bits.name
    out.write(lambda f: np.save(f, logits.astype(np.float32)))
    top1 = logits.argmax(-1)
    for i, c in enumerate(top1):
        print(f"image {i}: class {int(c)}")
    print(f"{mode}: {len(images)} images in {time.perf_counter() - t0:.2f} s, logits -> {out.path}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .outdir import OutDir
    from .report.plan_report import write
    out = OutDir(args.out, args.force)
    say = _progress(args.quiet)
    graph, plan, perf = make_plan_from_args(args, say)
    files = write(out, graph, plan, perf, progress=say)
    print(f"{headline(plan)}:")
    print(summary(plan, perf))
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, its errors as one line like every other bad input (``--help`` shows the
    usage)."""

    def error(self, message: str):
        self.exit(2, f"hgpipe: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="hgpipe", description="Hybrid-grained pipeline accelerators for Vision "
                 "Transformers.")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    sub.add_parser("models", help="list the preset models").set_defaults(fn=cmd_models)
    r = sub.add_parser("run", help="run the float or integer model on images")
    _add_model_args(r)
    r.add_argument("--images", required=True, help="images .npy, (N, C, H, W) or (N, H, W, C)")
    r.add_argument("--float", action="store_true", help="run the float reference")
    _add_quant_args(r)
    r.add_argument("--out", required=True, help="logits .npy (dequantized to float)")
    add_force_arg(r, "replace an existing file that is not an earlier run's logits")
    r.set_defaults(fn=cmd_run)
    p = sub.add_parser("plan", help="plan the accelerator and estimate its performance and "
                       "resources")
    _add_model_args(p)
    _add_quant_args(p)
    _add_plan_args(p)
    p.add_argument("--out", required=True, help="directory for plan.json, report.md, plots")
    add_force_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(fn=cmd_plan)
    add_commands(sub)
    add_qat(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    from .interrupt import Interrupted, handled, run_temp
    args = build_parser().parse_args(argv)
    with handled(), run_temp():
        try:
            check_input_paths(args)
            return args.fn(args)
        except HgpipeError as exc:
            print(f"hgpipe: error: {exc}", file=sys.stderr)
            return 2
        except Interrupted as sig:
            print(f"hgpipe: interrupted by {sig.name}; nothing written", file=sys.stderr)
            return sig.exit_code


if __name__ == "__main__":
    sys.exit(main())
