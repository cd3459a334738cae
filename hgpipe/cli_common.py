"""What the ``hgpipe`` subcommands share: their model, quantization and plan arguments,
reading them into a graph and a plan, progress messages and the plan summary."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import sys
import time
from pathlib import Path

import numpy as np

from .errors import HgpipeError

INPUT_FILES = ("config", "weights", "images", "calib", "steps", "inputs", "train_images",
               "train_labels", "val_images", "val_labels")
MAX_CALIB_BYTES = 16 * 2**30    # the calibration pass's images and activations, float64


def _load_array(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise HgpipeError(f"{what}: file {path!r} does not exist")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as exc:
        raise HgpipeError(f"{what}: cannot read {path!r} as .npy: {exc}") from None


def need_torch(what: str) -> None:
    """A one-line error where ``what`` needs the optional torch and it is missing."""
    if importlib.util.find_spec("torch") is None:
        raise HgpipeError(f"{what}: needs torch: pip install 'hgpipe[torch]'")


def _config(args: argparse.Namespace):
    from .model import load_config, preset
    if bool(args.model) == bool(args.config):
        raise HgpipeError("model: give exactly one of --model NAME or --config FILE")
    return preset(args.model) if args.model else load_config(args.config)


def check_input_paths(args: argparse.Namespace) -> None:
    """Every input file named on the command line exists, before any work starts."""
    if hasattr(args, "config") and bool(args.model) == bool(args.config):
        raise HgpipeError("model: give exactly one of --model NAME or --config FILE")
    for key in INPUT_FILES:
        path = getattr(args, key, None)
        if isinstance(path, str) and not Path(path).is_file():
            raise HgpipeError(f"{key.replace('_', '-')}: file {path!r} does not exist"
                              + (" (or is not a file)" if Path(path).exists() else ""))


def _model(args: argparse.Namespace):
    from .model import load_weights, random_weights
    cfg = _config(args)
    w = load_weights(cfg, args.weights) if args.weights else random_weights(cfg, args.seed)
    return cfg, w


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="preset name (see `hgpipe models`)")
    p.add_argument("--config", help="ViT config file (.json/.yaml)")
    p.add_argument("--weights", help="timm-named state dict (.npz/.safetensors/.pth); "
                   "default: random weights by --seed")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")


def _add_quant_args(p: argparse.ArgumentParser) -> None:
    from .quant.bits import OBSERVERS, Ptq
    p.add_argument("--bits", default="w3a3", help="w3a3 (default), w4a4, w8a8, mixed w4a3, "
                   "residual width with r<N> (w3a3r10)")
    p.add_argument("--calib", help="calibration images .npy (default: the input images)")
    p.add_argument("--observer", default="mse", choices=OBSERVERS,
                   help="activation observer")
    p.add_argument("--per-channel", action="store_true", help="per-channel weight scales")
    p.add_argument("--ptq", default=Ptq.BASIC.value, choices=[w.value for w in Ptq],
                   help="post-training quantization: basic (default) observes each step "
                   "and rounds to nearest; full evens the LayerNorm outputs' channel "
                   "ranges into the linears they feed, then reconstructs block by block on "
                   "the calibration images, learning each weight's rounding and the "
                   "activation steps, then fits the steps and weights to the float model's "
                   "predictions on those images and mixes of them (needs torch; give real "
                   "images with --calib)")
    p.add_argument("--ptq-iters", type=int, default=4000,
                   help="ptq full: optimizer steps a block (default %(default)s)")
    p.add_argument("--steps", help="learned steps .json ({\"scales\": {tap or weight: step}, "
                   "\"signs\": {...}}, e.g. from QAT): fixed instead of observed, and no bias "
                   "correction")


def quant_config(args: argparse.Namespace, cfg):
    """The quantizer settings, checked against the model before any calibration runs."""
    from .quant import BitSpec, Ptq, QuantConfig, read_steps
    from .quant.calibrate import check_steps
    if Ptq(args.ptq) is Ptq.FULL:
        for key, given in (("steps", args.steps), ("per-channel", args.per_channel)):
            if given:
                raise HgpipeError(f"ptq: full with --{key}: expected --ptq basic (full "
                                  "learns its own per-tensor steps)")
        if args.ptq_iters < 1:
            raise HgpipeError(f"ptq-iters: {args.ptq_iters}: expected >= 1")
        need_torch("ptq: full")
    scales, signs = read_steps(args.steps) if args.steps else ({}, {})
    q = QuantConfig(bits=BitSpec.parse(args.bits), act_observer=args.observer,
                    per_channel=args.per_channel, scales=scales, signs=signs,
                    bias_correction=not args.steps)
    check_steps(cfg, q)
    return q


def _graph(args: argparse.Namespace, progress):
    """Quantize the model: calibrate on --calib images, or on --calib-images random images."""
    from .model.forward import image_batch
    if not args.calib:
        if args.calib_images < 1:
            raise HgpipeError(f"calib-images: {args.calib_images}: expected >= 1")
        cfg = _config(args)
        need = args.calib_images * 8 * 4 * (cfg.in_chans * cfg.image_size ** 2 + cfg.num_tokens
                                            * max(cfg.mlp_hidden, cfg.num_tokens * cfg.num_heads))
        if need > MAX_CALIB_BYTES:
            raise HgpipeError(f"calib-images: {args.calib_images}: calibrating would need about "
                              f"{need / 2**30:,.1f} GiB; expected at most "
                              f"{MAX_CALIB_BYTES / 2**30:g} GiB (fewer images)")
    cfg, w = _model(args)
    qcfg = quant_config(args, cfg)
    if args.calib:
        calib = image_batch(cfg, _load_array(args.calib, "calib"), "calib")
    else:
        rng = np.random.default_rng(args.seed)
        calib = rng.standard_normal((args.calib_images, cfg.in_chans, cfg.image_size,
                                     cfg.image_size))
    return quantize(args, cfg, w, calib, qcfg, progress)


def quantize(args: argparse.Namespace, cfg, w, calib: np.ndarray, qcfg, progress):
    """The integer graph by ``--ptq``: observed steps, or first the block reconstruction."""
    from .quant import Ptq, quantize_model
    if Ptq(args.ptq) is Ptq.FULL:
        from .quant.reconstruct import Reconstruction, reconstruct
        s = Reconstruction(iters=args.ptq_iters, seed=args.seed)
        progress(f"reconstructing {qcfg.bits.name} block by block on {len(calib)} images")

        def tick(done: int, total: int) -> None:
            if done % s.iters == 0 and done < total:
                progress(f"  block {done // s.iters} of {cfg.depth} fitted")
        w, scales, signs = reconstruct(cfg, w, calib, qcfg.bits, s, tick)
        qcfg = dataclasses.replace(qcfg, scales=scales, signs=signs, bias_correction=False)
    progress(f"calibrating {qcfg.bits.name} on {len(calib)} images")
    return quantize_model(cfg, w, calib, qcfg)


def _add_plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default="vck190", help="board name (boards/NAME.json) or a "
                   "board .json file")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--target-ii", type=int, help="cycles per image every stage must meet")
    t.add_argument("--target-fps", type=float, help="images/s at the board clock")
    p.add_argument("--clock-mhz", type=float, help="clock (default: the board's)")
    p.add_argument("--usable-fraction", type=float, help="share of every resource the plan "
                   "may use, in (0, 1] (default: the board's)")
    p.add_argument("--tp", type=int, help="token parallelism (default: the planner's choice)")
    p.add_argument("--offchip", default="auto",
                   help="keep the residuals around attention and the head's weights in the "
                   "board's DDR when the chip is full (auto, default), never (none) or "
                   "always (all)")
    p.add_argument("--status", choices=("on", "off"), default="off",
                   help="build the status registers: every stage's busy counter behind an "
                   "AXI4-Lite port s_axil_*, which sim reads for the busy fractions (about "
                   "20 LUT and 64 FF a stage; default %(default)s)")
    p.add_argument("--calib-images", type=int, default=2,
                   help="random calibration images when --calib is not given (default 2)")


def make_plan_from_args(args: argparse.Namespace, progress):
    from .perf.model import evaluate
    from .plan import check_offchip, make_plan
    from .resources.board import load_board
    board = load_board(args.board)  # before the slow steps: a bad board fails at once
    if args.tp is not None and args.tp < 1:
        raise HgpipeError(f"tp: {args.tp}: expected a positive token parallelism (or none "
                          "for the planner's choice)")
    if args.target_fps is not None and not (math.isfinite(args.target_fps)
                                            and args.target_fps >= 1e-3):
        raise HgpipeError(f"target-fps: {args.target_fps}: expected images/s >= 0.001")
    if getattr(args, "seed", 0) < 0:
        raise HgpipeError(f"seed: {args.seed}: expected an integer >= 0")
    if args.clock_mhz is not None and not 0 < args.clock_mhz <= 2000:
        raise HgpipeError(f"clock-mhz: {args.clock_mhz}: expected a number in (0, 2000]")
    if args.usable_fraction is not None:
        if not 0 < args.usable_fraction <= 1:
            raise HgpipeError(f"usable-fraction: {args.usable_fraction}: expected a number "
                              "in (0, 1]")
        board = dataclasses.replace(board, usable_fraction=args.usable_fraction)
    check_offchip(args.offchip, board)
    graph = _graph(args, progress)
    progress(f"planning for {board.name}")
    plan = make_plan(graph, board, target_ii=args.target_ii, target_fps=args.target_fps,
                     clock_mhz=args.clock_mhz, model=args.model or Path(args.config).stem,
                     tp=args.tp, offchip=args.offchip, status=args.status == "on",
                     progress=progress)
    progress("scheduling 5 images")
    return graph, plan, evaluate(graph, plan)


def _progress(quiet: bool):
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)
    return say


def headline(plan) -> str:
    """``model bits on board at clock, TP=n`` and the padding rows, if any."""
    lay = plan.layout
    pad = f" ({lay.tokens} tokens streamed as {lay.rows} rows)" \
        if lay and lay.rows > lay.tokens else ""
    return f"{plan.model} {plan.bits} on {plan.board.name} at {plan.clock_mhz:g} MHz, " \
        f"TP={plan.tp}{pad}"


def summary(plan, perf) -> str:
    from .resources.model import full_size_margin
    r, b, m = plan.resources, plan.board.budget(), full_size_margin()
    rows = [("II (cycles/image)", f"{plan.ii:,}"), ("latency (cycles)", f"{perf.latency_cycles:,.0f}"),
            ("FPS", f"{perf.fps:,.1f}"), ("GOP/s", f"{perf.gops:,.1f}"),
            *[(k.upper(), f"{getattr(r, k):,.0f} / {b[k]:,}" + (
                f" (x{m[k]:.3f} by Yosys: {getattr(r, k) * m[k]:,.0f} / "
                f"{plan.board.usable()[k]:,})" if m.get(k, 1) > 1 else ""))
              for k in ("lut", "ff")],
            ("DSP", f"{r.dsp:,} / {b['dsp']:,}"), ("BRAM36", f"{r.bram:,.1f} / {b['bram']:,}"),
            ("URAM", f"{r.uram:,} / {b['uram']:,}"),
            *([("DDR (bytes/image)", f"{plan.ddr_bytes:,} / {plan.ddr_budget:,.0f} "
                f"({len(plan.ddr_regions)} streams)")] if plan.ddr_regions else []),
            ("fits", "yes" if plan.fits else "NO"),
            ("buffers (bits)", f"{plan.buffer_bits:,} "
             f"({1 - plan.buffer_bits / plan.all_coarse_bits:.1%} below all-coarse)")]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:{w}s}  {v}" for k, v in rows)


def add_force_arg(p: argparse.ArgumentParser, text: str = "replace an --out directory that "
                  "is not new, empty or an earlier hgpipe result (its contents are lost)"
                  ) -> None:
    p.add_argument("--force", action="store_true", help=text)
