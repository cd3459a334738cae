"""Train a small ViT on scikit-learn's bundled digits (no download) with torch.

The torch module names its parameters as timm does, so its state dict loads straight into
hgpipe's weights loader.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from hgpipe.model import ViTConfig
from hgpipe.model.weights import from_state_dict


def _mse_step(x: torch.Tensor, lo: int, hi: int, with_error: bool = False):
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
            err = {sg: _mse_step(x, *self.bounds(sg), True)[1] for sg in (True, False)}
            self.signed = bool(err[True] < err[False])
        with torch.no_grad():
            self.step.copy_(_mse_step(x, *self.bounds()))

    def current(self):
        return self.step

    def scale(self, x):
        """The step, its gradient scaled as LSQ's (steps learn as fast as weights)."""
        g = (x.numel() * self.bounds()[1]) ** -0.5
        return self.step * g + (self.step * (1 - g)).detach()

    def quant(self, x, s):
        lo, hi = self.bounds()
        v = torch.clamp(x / s, lo, hi)
        return ((v.round() - v).detach() + v) * s

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
                s_obs = float(_mse_step(skip + branch, *base.bounds()))
                k = max(0, math.ceil(math.log2(s_obs / s_prev) - 1e-9))
                self.shift.fill_(int(round(math.log2(s_prev / float(base.step)))) + k)
        s = base.scale(skip) * 2.0 ** int(self.shift)
        return base.quant(base.quant(skip, s) + base.quant(branch, s), s)


class QLinear(nn.Linear):
    """nn.Linear with fake-quantized weights (timm's parameter names are unchanged)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.wq = FakeQuant()

    def forward(self, x):
        return nn.functional.linear(x, self.wq(self.weight), self.bias)


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.heads = heads
        self.qkv = QLinear(d, 3 * d, bias=qkv_bias)
        self.proj = QLinear(d, d)
        self.q_q, self.k_q, self.v_q, self.p_q, self.o_q = (FakeQuant() for _ in range(5))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = self.q_q(q), self.k_q(k), self.v_q(v)
        a = self.p_q((q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5).softmax(-1))
        return self.proj(self.o_q((a @ v).transpose(1, 2).reshape(b, t, d)))


class Mlp(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = QLinear(d, hidden), QLinear(hidden, d)
        self.g_q = FakeQuant()

    def forward(self, x):
        return self.fc2(self.g_q(nn.functional.gelu(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        d = cfg.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.attn = Attention(d, cfg.num_heads, cfg.qkv_bias)
        self.norm2 = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(d, cfg.mlp_hidden)
        self.n1_q, self.n2_q = FakeQuant(), FakeQuant()
        self.a1_q = self.a2_q = None   # set by TimmViT: they share the token step

    def forward(self, x):
        x = self.a1_q.add(x, self.attn(self.n1_q(self.norm1(x))))
        return self.a2_q.add(x, self.mlp(self.n2_q(self.norm2(x))))


class PatchEmbed(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, cfg.patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimmViT(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(0.02 * torch.randn(1, 1, d))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, cfg.num_tokens, d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.t_q = FakeQuant()      # the residual stream's step, from the token add on
        prev = self.t_q
        for b in self.blocks:
            b.a1_q = ResidualQuant(self.t_q, prev)
            b.a2_q = prev = ResidualQuant(self.t_q, b.a1_q)
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.head = nn.Linear(d, cfg.num_classes)

    def forward(self, x):
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], 1) if self.cfg.class_token == "extra" else \
            torch.cat([cls, x[:, 1:]], 1)
        x = self.t_q.add(x, self.pos_embed.expand(x.shape[0], -1, -1))
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


def enable_fake_quant(model: TimmViT, weight: int, act: int, prob: int,
                      residual: int = 8) -> None:
    """Fake-quantize where hgpipe's integer graph quantizes: encoder weights, LayerNorm
    outputs, Q/K/V, attention probabilities, AV output, GELU output and the residual
    stream (``residual`` bits, 0 to leave it float)."""
    if residual:
        model.t_q.set(residual, True)
    for b in model.blocks:
        for lin in (b.attn.qkv, b.attn.proj, b.mlp.fc1, b.mlp.fc2):
            lin.wq.set(weight, True)
        for fq in (b.n1_q, b.n2_q, b.attn.q_q, b.attn.k_q, b.attn.v_q, b.attn.o_q):
            fq.set(act, True)
        b.attn.p_q.set(prob, False)
        b.mlp.g_q.set(act, None)


def _fit(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int,
         teacher: nn.Module | None = None, distill: float = 0.0) -> None:
    """AdamW with one-cycle decay and light shift augmentation; with a ``teacher``, the
    loss mixes in ``distill`` of the KL divergence to its predictions."""
    step_params = [p for n, p in model.named_parameters() if n.endswith(".step")]
    rest = [p for n, p in model.named_parameters() if not n.endswith(".step")]
    opt = torch.optim.AdamW([{"params": rest}, {"params": step_params, "weight_decay": 0.0}],
                            lr=lr, weight_decay=0.05)
    steps = epochs * ((len(x) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    if teacher is not None:
        teacher.eval()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            xb, yb = xt[perm[i:i + 64]], yt[perm[i:i + 64]]
            shift = torch.randint(-1, 2, (2,), generator=gen).tolist()
            xb = torch.roll(xb, shifts=shift, dims=(2, 3))
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb, label_smoothing=0.1)
            if teacher is not None and distill:
                with torch.no_grad():
                    target = teacher(xb).softmax(-1)
                kd = nn.functional.kl_div(out.log_softmax(-1), target, reduction="batchmean")
                loss = (1 - distill) * loss + distill * kd
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()


def export(model: TimmViT):
    """hgpipe weights from the module's timm-named parameters (fake-quant steps dropped)."""
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()
          if not k.endswith((".step", ".shift"))}
    return from_state_dict(model.cfg, sd, source="trained")


def qat_scales(model: TimmViT) -> tuple[dict[str, float], dict[str, bool]]:
    """The learned steps, keyed as hgpipe's ``QuantConfig.scales`` (activation taps and timm
    weight names), and the GELU outputs' signedness as ``QuantConfig.signs``."""
    scales, signs = {}, {}
    if model.t_q.bits:
        scales["tokens"] = float(model.t_q.step.detach())
    for i, b in enumerate(model.blocks):
        p = f"blocks.{i}"
        if model.t_q.bits:
            scales[f"{p}.add1"] = float(b.a1_q.current().detach())
            scales[f"{p}.add2"] = float(b.a2_q.current().detach())
        acts = {"norm1": b.n1_q, "norm2": b.n2_q, "attn.q": b.attn.q_q, "attn.k": b.attn.k_q,
                "attn.v": b.attn.v_q, "attn.softmax": b.attn.p_q, "attn.av": b.attn.o_q,
                "mlp.gelu": b.mlp.g_q}
        lins = {"attn.qkv": b.attn.qkv, "attn.proj": b.attn.proj, "mlp.fc1": b.mlp.fc1,
                "mlp.fc2": b.mlp.fc2}
        for key, fq in [*acts.items(), *((f"{k}.weight", m.wq) for k, m in lins.items())]:
            if fq.bits:
                scales[f"{p}.{key}"] = float(fq.step.detach())
        if b.mlp.g_q.bits:
            signs[f"{p}.mlp.gelu"] = b.mlp.g_q.signed
    return scales, signs


def digits_split(seed: int = 0):
    """Digits as (N, 1, 8, 8) floats normalised to about [-1, 1]; 75/25 split."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0 - 0.5) / 0.5
    x, y = x[:, None], d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.75 * len(x))
    return x[idx[:cut]], y[idx[:cut]], x[idx[cut:]], y[idx[cut:]]


def train_vit(cfg: ViTConfig, x: np.ndarray, y: np.ndarray, epochs: int = 150, seed: int = 0):
    """Float training; returns the torch module (``export`` gives hgpipe weights)."""
    torch.manual_seed(seed)
    model = TimmViT(cfg)
    _fit(model, x, y, epochs, 3e-3, seed)
    return model


def finetune_qat(model: TimmViT, x: np.ndarray, y: np.ndarray, weight: int, act: int,
                 prob: int, epochs: int = 200, seed: int = 0, distill: float = 0.8,
                 lr: float = 1e-3) -> TimmViT:
    """Quantization-aware fine-tuning of a copy of a float-trained module, distilled from
    the float one; the steps start from the MSE rule on 256 training images."""
    import copy
    torch.manual_seed(seed)
    q = copy.deepcopy(model)
    enable_fake_quant(q, weight, act, prob)
    q.train()
    with torch.no_grad():
        q(torch.tensor(x[:256], dtype=torch.float32))
    _fit(q, x, y, epochs, lr, seed + 1, teacher=model, distill=distill)
    return q
