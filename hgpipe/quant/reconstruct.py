"""Post-training quantization by block reconstruction (``--ptq full``; needs torch).

No labels: only the calibration images. First the LayerNorm outputs' per-channel ranges
are evened out into the linears they feed (``rescale``: the float model's function
unchanged). The model is fake-quantized where the integer graph
quantizes (``torch_vit.fake_quantize``) and each encoder block in turn, fed the quantized
model's own output of the blocks before it, is fitted to the float model's output of that
block (BRECQ: Li et al., 2021):

- every encoder weight's rounding, up or down, is learned (AdaRound: Nagel et al., 2020) at
  the step the MSE rule picks, and then frozen to integers;
- the block's activation steps (LayerNorm outputs, Q/K/V, probabilities, AV, GELU) are
  learned (LSQ) against the block's output error rather than each tensor's own;
- the linear biases follow;
- while fitting, each activation value is left unquantized with probability one half
  (QDrop: Wei et al., 2022), so that the fit does not lean on the calibration images'
  particular rounding.

Then the whole model is fitted to the float model's predictions (KL divergence) on the
same images, half of each batch mixed pairwise at random (as mixup: Zhang et al., 2018):
the calibration images are typically the float model's own training images, predicted
with near certainty, and a mix shows where its predictions are soft. This fit moves the
activation steps, biases and LayerNorm affines, and the encoder weights too, on the grids
their steps froze (straight-through rounding), so a weight may leave the two points
AdaRound chose between; they end on the grid. The residual stream's step, shared by every
block (its adds are power-of-two shifts apart), learns only there.
The result is weights on their integer grid and the steps, which ``quantize_model`` takes
as ``QuantConfig.scales``/``signs`` exactly as it takes QAT's.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..model import ViTConfig
from ..model.weights import ViTWeights
from .bits import BitSpec
from .fakequant import FakeQuant
from .rescale import rescale_norms
from .torch_vit import (Block, TimmViT, batched, fake_quantize, from_weights, learned_steps,
                        to_weights)

ZETA, GAMMA = 1.1, -0.1     # AdaRound's rectified sigmoid stretch


@dataclass(frozen=True)
class Reconstruction:
    """Per block: ``iters`` Adam steps on batches of ``batch`` calibration images; the
    rounding regulariser (weight ``reg``) starts after ``warmup`` of them with its
    exponent annealed from ``beta[0]`` to ``beta[1]``, as AdaRound's.

    Each step of the method can be switched off, for the accuracy benchmark's ablation:
    ``rounding=False`` keeps round-to-nearest weights, ``steps=False`` the observed
    activation steps (the biases still learn), ``drop=0`` turns QDrop off,
    ``output_iters=0`` the final fit to the float model's predictions, ``mix=0`` the mixed
    images in it (``mix``: the share of each batch), ``weight_lr=0`` the weights' moves in
    it, ``iters=0`` the block reconstruction and ``rescale=0`` the LayerNorm outputs'
    rescaling (``rescale``: its exponent)."""

    iters: int = 4000
    batch: int = 32
    lr: float = 3e-3          # rounding variables
    step_lr: float = 4e-5     # activation steps and biases (as BRECQ)
    reg: float = 0.01
    warmup: float = 0.2
    beta: tuple[float, float] = (20.0, 2.0)
    drop: float = 0.5         # QDrop (Wei et al., 2022) on the block's activations
    output_iters: int = 1000  # then the whole model against the float model's logits
    output_lr: float = 1e-4
    mix: float = 0.5          # of the final fit's images, the share mixed with another
    weight_lr: float = 5e-4   # the final fit's encoder weights, on their grids (0: frozen)
    seed: int = 0
    rounding: bool = True     # AdaRound; False: the weights round to nearest
    steps: bool = True        # LSQ on the block's activation steps
    rescale: float = 0.25     # LayerNorm output ranges into the next linear (0: off)


class AdaRound(nn.Module):
    """A weight's rounding learned between floor and ceil at a fixed step: soft (the
    rectified sigmoid of ``v``) while fitting, hard (``v >= 0`` rounds up) once frozen.
    Takes a ``FakeQuant``'s place in a ``QLinear`` and keeps its ``bits``/``step``, so
    the fitting reads it as the quantizer it replaces."""

    def __init__(self, w: torch.Tensor, step: torch.Tensor, bits: int):
        super().__init__()
        self.bits, self.hard = bits, False
        self.register_buffer("step", step.detach().clone())
        t = w.detach() / self.step
        self.register_buffer("base", torch.floor(t))
        rest = (t - self.base).clamp(1e-4, 1 - 1e-4)
        self.v = nn.Parameter(-torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1))
        self.lo, self.hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def up(self) -> torch.Tensor:
        if self.hard:
            return (self.v >= 0).to(self.v.dtype)
        return torch.clamp(torch.sigmoid(self.v) * (ZETA - GAMMA) + GAMMA, 0, 1)

    def forward(self, w):   # the QLinear's float weight is replaced by the rounded grid
        return torch.clamp(self.base + self.up(), self.lo, self.hi) * self.step

    def penalty(self, beta: float) -> torch.Tensor:
        return (1 - (2 * self.up() - 1).abs().pow(beta)).sum()


def _fit_block(b: Block, xq: torch.Tensor, y: torch.Tensor, s: Reconstruction,
               gen: torch.Generator, tick: Callable[[], None]) -> None:
    rounds = []
    for lin in b.linears().values() if s.rounding else ():
        lin.wq = AdaRound(lin.weight, lin.wq.step, lin.wq.bits)
        rounds.append(lin.wq)
    steps = [fq.step for fq in b.act_quantizers().values() if fq.bits and s.steps]
    biases = [lin.bias for lin in b.linears().values() if lin.bias is not None]
    groups = [{"params": [r.v for r in rounds], "lr": s.lr},
              {"params": steps + biases, "lr": s.step_lr}]
    opt = torch.optim.Adam([g for g in groups if g["params"]])
    for p in (*steps, *biases):
        p.requires_grad_(True)
    for fq in b.act_quantizers().values():
        fq.drop = s.drop
    start = int(s.warmup * s.iters)
    for it in range(s.iters):
        idx = torch.randint(len(xq), (min(s.batch, len(xq)),), generator=gen)
        loss = (b(xq[idx]) - y[idx]).pow(2).sum(-1).mean()
        if it >= start and rounds:
            frac = (it - start) / max(1, s.iters - start)
            beta = s.beta[1] + 0.5 * (s.beta[0] - s.beta[1]) * (1 + math.cos(math.pi * frac))
            loss = loss + s.reg * sum(r.penalty(beta) for r in rounds)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tick()
    for p in (*steps, *biases):
        p.requires_grad_(False)
    for fq in b.act_quantizers().values():
        fq.drop = 0.0
    with torch.no_grad():
        for lin, r in zip(b.linears().values(), rounds):
            r.hard = True
            lin.weight.copy_(r(lin.weight))    # the weight now sits on its integer grid
            lin.wq = FakeQuant()               # which the plain quantizer keeps as it is
            lin.wq.set(r.bits, True)
            lin.wq.step.copy_(r.step)
            lin.wq.step.requires_grad_(False)


def reconstruct(cfg: ViTConfig, weights: ViTWeights, calib: np.ndarray, bits: BitSpec,
                s: Reconstruction = Reconstruction(),
                progress: Callable[[int, int], None] | None = None
                ) -> tuple[ViTWeights, dict[str, float], dict[str, bool]]:
    """Weights on their integer grids and the steps (``QuantConfig.scales``, ``signs``) of
    ``weights`` reconstructed block by block on the calibration images ``calib``."""
    q = reconstructed(cfg, weights, calib, bits, s, progress)
    scales, signs = learned_steps(q)
    return to_weights(q), scales, signs


def reconstructed(cfg: ViTConfig, weights: ViTWeights, calib: np.ndarray, bits: BitSpec,
                  s: Reconstruction = Reconstruction(),
                  progress: Callable[[int, int], None] | None = None) -> TimmViT:
    """The fake-quantized model ``reconstruct`` exports."""
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    x = torch.tensor(np.asarray(calib), dtype=torch.float32)
    fp = from_weights(cfg, weights).eval()
    rescale_norms(fp, x, s.rescale)     # the same function, its LayerNorm outputs evened
    q = copy.deepcopy(fp).train()
    fake_quantize(q, bits)
    for p in q.parameters():    # each block's fit turns on what it learns
        p.requires_grad_(False)
    with torch.no_grad():
        q(x[:256])            # the MSE rule sets every step (and GELU's sign) on its first batch
    xf = batched(fp.embed, x)
    xq = batched(q.embed, x)
    done, total = 0, s.iters * cfg.depth + s.output_iters

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    for bf, bq in zip(fp.blocks, q.blocks):
        xf = batched(bf, xf)
        _fit_block(bq, xq, xf, s, gen, tick)
        xq = batched(bq, xq)
    _fit_output(q, fp, x, s, gen, tick)
    return q


def _fit_output(q: TimmViT, fp: TimmViT, x: torch.Tensor, s: Reconstruction,
                gen: torch.Generator, tick: Callable[[], None]) -> None:
    """The steps, biases and LayerNorms, and (``weight_lr``) the encoder weights on their
    frozen grids, against the float model's predictions (KL divergence), so what the
    blocks' errors leave is aimed at the output rather than at each block's tensor."""
    if not s.output_iters:
        return
    # activation steps (a weight's step is its grid's), biases and LayerNorm affines (1-D)
    learn = [p for n, p in q.named_parameters()
             if (n.endswith(".step") and ".wq." not in n) or p.ndim == 1]
    linears = [lin for b in q.blocks for lin in b.linears().values()] if s.weight_lr else []
    weights = [lin.weight for lin in linears]
    for p in (*learn, *weights):
        p.requires_grad_(True)
    # Adam moves a parameter about its lr a step and a weight starts on a grid point: at
    # 5e-5 no weight of the digits model crossed half a step in 1,000 steps; 5e-4 does
    opt = torch.optim.Adam([{"params": learn, "lr": s.output_lr},
                            *([{"params": weights, "lr": s.weight_lr}] if weights else [])])
    for _ in range(s.output_iters):
        xb = mixed_batch(x, s, gen)
        with torch.no_grad():
            target = fp(xb).softmax(-1)
        loss = nn.functional.kl_div(q(xb).log_softmax(-1), target, reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
        tick()
    with torch.no_grad():
        for lin in linears:          # back onto the grid
            lin.weight.copy_(lin.wq.grid(lin.weight))
    for p in (*learn, *weights):
        p.requires_grad_(False)


def mixed_batch(x: torch.Tensor, s: Reconstruction, gen: torch.Generator) -> torch.Tensor:
    """``s.batch`` images drawn from ``x``; a share ``s.mix`` of them, at random, mixed with
    another drawn image: ``l * a + (1 - l) * b``, ``l`` uniform in [0, 1)."""
    n = min(s.batch, len(x))
    xb = x[torch.randint(len(x), (n,), generator=gen)]
    if not s.mix:
        return xb
    other = x[torch.randint(len(x), (n,), generator=gen)]
    shape = (n,) + (1,) * (x.ndim - 1)
    lam = torch.rand(shape, generator=gen)
    lam = torch.where(torch.rand(shape, generator=gen) < s.mix, lam, 1.0)   # 1: unmixed
    return lam * xb + (1 - lam) * other
