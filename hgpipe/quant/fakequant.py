"""Fake quantization for quantization-aware training (torch): learned steps (LSQ) with
straight-through rounding, initialised by the rule of hgpipe's ``mse`` observer, and the
residual stream's steps tied by powers of two as the integer graph's residual adds are."""

from __future__ import annotations

import math

import torch
from torch import nn


def mse_step(x: torch.Tensor, lo: int, hi: int, with_error: bool = False):
    """The step whose quantization error is least, over a grid of clipping values: the
    rule of hgpipe's ``mse`` observer, so the fine-tuned model meets the scales the
    calibration will choose."""
    v = x.detach().reshape(-1)
    if v.numel() > 8192:
        v = v[torch.randint(v.numel(), (8192,), generator=torch.Generator().manual_seed(0))]
    top = (v.abs() if lo < 0 else v.clamp(min=0)).max().clamp(min=1e-8)
    steps = top * torch.linspace(0.05, 1.0, 40) / hi
    q = torch.clamp(torch.round(v[None] / steps[:, None]), lo, hi) * steps[:, None]
    err = ((q - v[None]) ** 2).mean(1)
    i = err.argmin()
    return (steps[i], err[i]) if with_error else steps[i]


class FakeQuant(nn.Module):
    """Fake quantization with a learned step (LSQ: Esser et al., 2020) and straight-through
    rounding. The step starts at the MSE rule of hgpipe's ``mse`` observer on the first
    batch; ``qat_scales`` hands the learned steps to hgpipe's quantizer.

    Disabled (identity) until ``bits`` is set, so one module serves float training and
    quantization-aware fine-tuning."""

    def __init__(self):
        super().__init__()
        self.bits, self.signed, self.auto = 0, True, False
        self.drop = 0.0     # QDrop: the fraction of values left unquantized while fitting
        self.step = nn.Parameter(torch.zeros(()))

    def set(self, bits: int, signed: bool | None) -> None:
        """``signed=None``: whichever quantizes better, as hgpipe decides for GELU."""
        self.bits, self.signed, self.auto = bits, bool(signed), signed is None
        with torch.no_grad():
            self.step.zero_()

    def bounds(self, signed: bool | None = None) -> tuple[int, int]:
        b, signed = self.bits, self.signed if signed is None else signed
        return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if signed else (0, (1 << b) - 1)

    def forward(self, x):
        if not self.bits:
            return x
        self._start(x)
        return self.quant(x, self.scale(x))

    def _start(self, x) -> None:
        """On the first batch: the step (and, if automatic, the sign) by the MSE rule."""
        if float(self.step.detach()):
            return
        if self.auto:
            err = {sg: mse_step(x, *self.bounds(sg), True)[1] for sg in (True, False)}
            self.signed = bool(err[True] < err[False])
        with torch.no_grad():
            self.step.copy_(mse_step(x, *self.bounds()))

    def current(self):
        return self.step

    def scale(self, x):
        """The step, its gradient scaled as LSQ's (steps learn as fast as weights). In
        evaluation the step itself: the scaled sum can be an ULP off, by batch size, and one
        ULP flips roundings that move a 3-bit model's top-1."""
        if not self.training:
            return self.step
        g = (x.numel() * self.bounds()[1]) ** -0.5
        return self.step * g + (self.step * (1 - g)).detach()

    def quant(self, x, s):
        lo, hi = self.bounds()
        v = torch.clamp(x / s, lo, hi)
        q = ((v.round() - v).detach() + v) * s
        if self.drop and self.training:
            return torch.where(torch.rand_like(x) < self.drop, x, q)
        return q

    def grid(self, x):
        """``x`` rounded onto this quantizer's grid exactly (``quant``'s straight-through
        form can be an ULP off a grid point), as the integer graph rounds it."""
        lo, hi = self.bounds()
        return torch.clamp(torch.round(x / self.step), lo, hi) * self.step

    def add(self, a, b):
        """``a + b`` on this step, each term quantized first (the class token and position
        embedding add, as hgpipe quantizes both onto the residual stream)."""
        if not self.bits:
            return a + b
        self._start(a + b)
        s = self.scale(a)
        return self.quant(self.quant(a, s) + self.quant(b, s), s)


class ResidualQuant(nn.Module):
    """Fake quantization of a residual add's output on ``base``'s step times ``2^shift``:
    hgpipe's residual adds keep each new step a power of two above the skip's, so the skip
    is rescaled by a shift. ``shift`` is fixed on the first batch by the MSE rule, as
    hgpipe's calibration rounds the observed step up; the base step keeps learning."""

    def __init__(self, base: FakeQuant, prev: "FakeQuant | ResidualQuant"):
        super().__init__()
        self._base, self._prev = [base], [prev]   # lists: not registered twice
        self.register_buffer("shift", torch.tensor(-1))

    def current(self):
        return self._base[0].step * 2.0 ** int(self.shift)

    def add(self, skip, branch):
        base, prev = self._base[0], self._prev[0]
        if not base.bits:
            return skip + branch
        if int(self.shift) < 0:
            with torch.no_grad():
                s_prev = float(prev.current())
                s_obs = float(mse_step(skip + branch, *base.bounds()))
                k = max(0, math.ceil(math.log2(s_obs / s_prev) - 1e-9))
                self.shift.fill_(int(round(math.log2(s_prev / float(base.step)))) + k)
        s = base.scale(skip) * 2.0 ** int(self.shift)
        return base.quant(base.quant(skip, s) + base.quant(branch, s), s)
