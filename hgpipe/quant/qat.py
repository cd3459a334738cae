"""Quantization-aware fine-tuning (``hgpipe qat``; needs torch).

A copy of the float model is fine-tuned with fake quantization where the integer graph
quantizes (``torch_vit.fake_quantize``), its steps learned (LSQ) from the MSE rule of
hgpipe's observer, distilled from the float model. The result is hgpipe weights and the
learned steps, which ``quantize_model`` takes as ``QuantConfig.scales``/``signs``.

Deterministic by seed (one torch generator drives the shuffles and augmentation; its
state is in the checkpoint), resumable: with a checkpoint path, the state is saved after
every epoch and a run with the same settings continues from it.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..golden import logits as int_logits
from ..model import ViTConfig
from .bits import BitSpec, QuantConfig
from .calibrate import quantize_model
from .torch_vit import TimmViT, batched, fake_quantize, learned_steps, to_weights

CHECKPOINT_KIND = "hgpipe-qat-checkpoint"
INIT_IMAGES = 256       # the first training images set the initial steps


class CheckpointError(ValueError):
    """The checkpoint path holds something this run must not resume from or replace."""


@dataclass(frozen=True)
class Schedule:
    """AdamW with one-cycle decay, shift augmentation, label smoothing; with a teacher the
    loss mixes in ``distill`` of the KL divergence to its predictions."""

    epochs: int = 200
    lr: float = 1e-3
    batch: int = 64
    distill: float = 0.8
    seed: int = 0


def _optimizer(model: nn.Module, s: Schedule, batches: int):
    steps = [p for n, p in model.named_parameters() if n.endswith(".step")]
    rest = [p for n, p in model.named_parameters() if not n.endswith(".step")]
    opt = torch.optim.AdamW([{"params": rest}, {"params": steps, "weight_decay": 0.0}],
                            lr=s.lr, weight_decay=0.05)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr,
                                                    total_steps=s.epochs * batches)


def read_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The saved state, None if there is none; refuses a foreign file or other settings."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=True)
    except Exception:
        state = None
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"checkpoint: {str(path)!r} exists and is not an hgpipe qat "
                              "checkpoint: expected a new path")
    if state.get("fingerprint") != fingerprint:
        raise CheckpointError(f"checkpoint: {str(path)!r} was written by a run with other "
                              "settings (model, data, bits or schedule): expected the same "
                              "settings or a new path")
    return state


def _save(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, s: Schedule,
        teacher: nn.Module | None = None, checkpoint: Path | None = None,
        fingerprint: str = "", stop_after: int | None = None,
        progress: Callable[[int, int], None] | None = None, resume: dict | None = None
        ) -> int:
    """Train ``model`` for ``s.epochs``, saving to ``checkpoint`` every epoch; continue
    from ``resume`` (the checkpoint's state, as ``read_checkpoint`` gave it) if given, and
    stop after epoch ``stop_after`` if given. Returns the epochs done."""
    batches = (len(x) + s.batch - 1) // s.batch
    opt, sched = _optimizer(model, s, batches)
    gen = torch.Generator().manual_seed(s.seed)
    start = 0
    state = resume
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        start = int(state["epoch"])
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    model.train()
    if teacher is not None:
        teacher.eval()
    end = s.epochs if stop_after is None else min(s.epochs, stop_after)
    for epoch in range(start, end):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), s.batch):
            xb, yb = xt[perm[i:i + s.batch]], yt[perm[i:i + s.batch]]
            shift = torch.randint(-1, 2, (2,), generator=gen).tolist()
            xb = torch.roll(xb, shifts=shift, dims=(2, 3))
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb, label_smoothing=0.1)
            if teacher is not None and s.distill:
                with torch.no_grad():
                    target = teacher(xb).softmax(-1)
                kd = nn.functional.kl_div(out.log_softmax(-1), target, reduction="batchmean")
                loss = (1 - s.distill) * loss + s.distill * kd
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if progress:
                progress(epoch * batches + i // s.batch + 1, s.epochs * batches)
        if checkpoint:
            _save(checkpoint, {"kind": CHECKPOINT_KIND, "fingerprint": fingerprint,
                               "epoch": epoch + 1, "model": model.state_dict(),
                               "opt": opt.state_dict(), "sched": sched.state_dict(),
                               "gen": gen.get_state()})
    return max(start, end)


def train_float(cfg: ViTConfig, x: np.ndarray, y: np.ndarray, epochs: int = 150,
                seed: int = 0) -> TimmViT:
    """A float ViT trained from scratch (the accuracy benchmark's starting point)."""
    torch.manual_seed(seed)
    model = TimmViT(cfg)
    fit(model, x, y, Schedule(epochs=epochs, lr=3e-3, distill=0.0, seed=seed))
    return model


def prepare(float_model: TimmViT, x: np.ndarray, bits: BitSpec, seed: int) -> TimmViT:
    """A fake-quantized copy of ``float_model``, its steps set by the MSE rule on the
    first training images."""
    torch.manual_seed(seed)
    q = copy.deepcopy(float_model)
    fake_quantize(q, bits)
    q.train()
    with torch.no_grad():
        q(torch.tensor(x[:INIT_IMAGES], dtype=torch.float32))
    return q


def finetune(float_model: TimmViT, x: np.ndarray, y: np.ndarray, bits: BitSpec,
             s: Schedule, **kw) -> TimmViT:
    """Quantization-aware fine-tuning of a copy of ``float_model``, distilled from it
    (``fit``'s keywords: checkpoint, fingerprint, stop_after, progress)."""
    q = prepare(float_model, x, bits, s.seed)
    fit(q, x, y, s, teacher=float_model, **kw)
    return q


def torch_top1(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    was = model.training
    model.eval()
    out = batched(model, torch.tensor(x, dtype=torch.float32), 256)
    model.train(was)
    return float(np.mean(out.argmax(-1).numpy() == y))


def integer_graph(cfg: ViTConfig, q: TimmViT, bits: BitSpec, calib: np.ndarray):
    """The integer graph of a fine-tuned module at its learned steps (no bias correction:
    the biases were trained with the steps)."""
    scales, signs = learned_steps(q)
    return quantize_model(cfg, to_weights(q), calib, QuantConfig(
        bits=bits, scales=scales, signs=signs, bias_correction=False))


def integer_top1(graph, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(int_logits(graph, graph.encode_images(x)).argmax(-1) == y))
