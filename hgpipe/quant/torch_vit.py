"""The ViT as a torch module for quantization-aware training: timm's parameter names (its
state dict is hgpipe's weights), fake quantization exactly where the integer graph
quantizes (``enable_fake_quant``), and the learned steps as ``QuantConfig.scales``
(``learned_steps``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..model import ViTConfig
from ..model.weights import ViTWeights, from_state_dict
from .bits import BitSpec
from .fakequant import FakeQuant, ResidualQuant


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

    def linears(self) -> dict[str, "QLinear"]:
        """The fake-quantized linears, by their timm names within the block."""
        return {"attn.qkv": self.attn.qkv, "attn.proj": self.attn.proj,
                "mlp.fc1": self.mlp.fc1, "mlp.fc2": self.mlp.fc2}

    def act_quantizers(self) -> dict[str, FakeQuant]:
        """The activation quantizers, by the integer graph's tap names within the block."""
        return {"norm1": self.n1_q, "norm2": self.n2_q, "attn.q": self.attn.q_q,
                "attn.k": self.attn.k_q, "attn.v": self.attn.v_q,
                "attn.softmax": self.attn.p_q, "attn.av": self.attn.o_q,
                "mlp.gelu": self.mlp.g_q}

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

    def embed(self, x):
        """The token stream entering the first block."""
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], 1) if self.cfg.class_token == "extra" else \
            torch.cat([cls, x[:, 1:]], 1)
        return self.t_q.add(x, self.pos_embed.expand(x.shape[0], -1, -1))

    def forward(self, x):
        x = self.embed(x)
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


def batched(fn, x: torch.Tensor, n: int = 128) -> torch.Tensor:
    """``fn`` over ``x`` in batches of ``n`` (bounded memory on many images), no gradient."""
    with torch.no_grad():
        return torch.cat([fn(x[i:i + n]) for i in range(0, len(x), n)])


def enable_fake_quant(model: TimmViT, weight: int, act: int, prob: int,
                      residual: int = 8) -> None:
    """Fake-quantize where hgpipe's integer graph quantizes: encoder weights, LayerNorm
    outputs, Q/K/V, attention probabilities, AV output, GELU output and the residual
    stream (``residual`` bits, 0 to leave it float)."""
    if residual:
        model.t_q.set(residual, True)
    for b in model.blocks:
        for lin in b.linears().values():
            lin.wq.set(weight, True)
        for fq in b.act_quantizers().values():
            fq.set(act, True)
        b.attn.p_q.set(prob, False)
        b.mlp.g_q.set(act, None)


def fake_quantize(model: TimmViT, bits: BitSpec) -> None:
    """``enable_fake_quant`` at the widths of ``bits`` (patch embedding and head stay float:
    the graph keeps them at 8 bits)."""
    enable_fake_quant(model, bits.weight, bits.act, bits.prob, bits.residual)


def from_weights(cfg: ViTConfig, weights: ViTWeights) -> TimmViT:
    """A module holding ``weights`` (float32), fake quantization off."""
    model = TimmViT(cfg)
    sd = {k: torch.tensor(np.asarray(v, dtype=np.float32))
          for k, v in weights.state_dict().items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    stray = [k for k in missing if not k.endswith((".step", ".shift"))]
    if stray or unexpected:
        raise ValueError(f"qat: the torch ViT and the weights disagree: missing {stray[:3]}, "
                         f"unexpected {unexpected[:3]}")
    return model


def to_weights(model: TimmViT) -> ViTWeights:
    """hgpipe weights from the module's timm-named parameters (fake-quant steps dropped)."""
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()
          if not k.endswith((".step", ".shift"))}
    return from_state_dict(model.cfg, sd, source="trained")


def learned_steps(model: TimmViT) -> tuple[dict[str, float], dict[str, bool]]:
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
        for key, fq in [*b.act_quantizers().items(),
                        *((f"{k}.weight", m.wq) for k, m in b.linears().items())]:
            if fq.bits:
                scales[f"{p}.{key}"] = float(fq.step.detach())
        if b.mlp.g_q.bits:
            signs[f"{p}.mlp.gelu"] = b.mlp.g_q.signed
    return scales, signs
