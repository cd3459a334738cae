"""Post-training quantization: float ViT + calibration images -> integer graph.

Stages are built in execution order and each one is run on the calibration batch as soon
as it exists, so every table is fitted to the integers it will really see (errors of the
stages before it included), not to an idealised input.
"""

from __future__ import annotations

from math import ceil, floor, log, log2, sqrt
from typing import Callable

import numpy as np

from ..errors import QuantError
from ..golden.ops import int_matmul, run_stage
from ..graph.graph import INPUT, IntGraph
from ..graph.intrange import IntRange
from ..graph.stages import (AttentionScores, AttentionValue, LayerNorm, Linear, Requant,
                            ResidualAdd, Softmax, Stage, Tokens)
from ..model.config import ViTConfig
from ..model.forward import forward, gelu
from ..model.weights import Affine, ViTWeights
from .bits import QuantConfig
from .fit import fit_grouped, fit_table
from .observers import choose_scale, qrange, quantize, weight_scales


class _Builder:
    def __init__(self, cfg: ViTConfig, q: QuantConfig, taps: dict[str, np.ndarray]):
        self.cfg, self.q, self.taps = cfg, q, taps
        self.stages: list[Stage] = []
        self.env: dict[str, np.ndarray] = {}
        self.range: dict[str, IntRange] = {}
        self.scale: dict[str, np.ndarray | float] = {}
        self.used: set[str] = set()   # the keys of q.scales / q.signs that were applied

    # Plumbing -----------------------------------------------------------------------------
    def emit(self, st: Stage) -> str:
        self.stages.append(st)
        self.env[st.name] = run_stage(st, [self.env[n] for n in st.inputs])
        self.range[st.name] = st.out_range
        self.scale[st.name] = st.out_scale
        return st.name

    def keep_only(self, *names: str) -> None:
        """Free calibration tensors no later stage reads (bounded memory on deep models)."""
        self.env = {k: v for k, v in self.env.items() if k in names}

    def fixed(self, table, key: str):
        """A value the config fixes (``scales``/``signs``), or None: the observers decide."""
        if key in table:
            self.used.add(key)
        return table.get(key)

    def act_scale(self, tap: str, bits: int, signed: bool,
                  samples: np.ndarray | None = None) -> float:
        fixed = self.fixed(self.q.scales, tap)
        if fixed is not None:
            return float(fixed)
        x = self.taps[tap] if samples is None else samples
        return choose_scale(x, bits, signed, self.q.act_observer, self.q.percentile)

    def better_signed(self, tap: str, bits: int) -> bool:
        """Signed or unsigned output, whichever quantizes the float activation better
        (GELU: unsigned doubles the positive resolution but loses the negative dip)."""
        fixed = self.fixed(self.q.signs, tap)
        if fixed is not None:
            return bool(fixed)
        x = self.taps[tap]
        err = {}
        for signed in (False, True):
            s = choose_scale(x, bits, signed, self.q.act_observer, self.q.percentile)
            err[signed] = float(np.mean((quantize(x, s, bits, signed) * s - x) ** 2))
        return err[True] < err[False]

    def base(self, name: str, inputs: tuple[str, ...], ref: str, out_scale) -> dict:
        return dict(name=name, inputs=inputs, in_ranges=tuple(self.range[i] for i in inputs),
                    ref=ref, out_scale=out_scale)

    # Stages -------------------------------------------------------------------------------
    def linear(self, name: str, src: str, a: Affine, bits: int, role: str,
               per_channel: bool) -> str:
        w = a.weight.reshape(a.weight.shape[0], -1)
        fixed = self.fixed(self.q.scales, "patch_embed.proj.weight" if role == "patch_embed"
                           else f"{name}.weight")
        s_w = np.full(w.shape[0], float(fixed)) if fixed is not None else \
            weight_scales(w, bits, self.q.weight_observer, per_channel, self.q.percentile)
        lo, hi = qrange(bits, True)
        w_int = np.clip(np.rint(w / s_w[:, None]), lo, hi).astype(np.int64)
        s_acc = float(self.scale[src]) * s_w
        bias = np.zeros(w.shape[0]) if a.bias is None else a.bias
        b_int = np.rint(bias / s_acc).astype(np.int64)
        out_scale = s_acc if per_channel else float(s_acc[0])
        if self.q.bias_correction:
            # Bias correction: the mean error of this channel on the calibration batch,
            # quantized weights and upstream integer error included, goes into the bias.
            x = self.env[src][:, 0] if role == "head" else self.env[src]
            acc = (int_matmul(x, w_int.T) + b_int).reshape(-1, w.shape[0])
            err = (self.taps[name].reshape(-1, w.shape[0]) / s_acc - acc).mean(0)
            b_int = b_int + np.rint(err).astype(np.int64)
        return self.emit(Linear(**self.base(name, (src,), name, out_scale), weight=w_int,
                                bias=b_int, role=role))

    def requant(self, name: str, src: str, s_out: np.ndarray | float, bits: int, signed: bool,
                fn: str, ref: str) -> str:
        """Table from the accumulator to ``bits``; one table per group of channels that
        share both the accumulator scale and the output scale."""
        acc = self.env[src]
        c = acc.shape[-1]
        ratio = np.broadcast_to(np.asarray(self.scale[src], dtype=np.float64), (c,)) / \
            np.broadcast_to(np.asarray(s_out, dtype=np.float64), (c,))
        s_acc = np.broadcast_to(np.asarray(self.scale[src], dtype=np.float64), (c,))
        group = c
        for g in (c, c // 3 if c % 3 == 0 else 0, 1):
            if g and np.all(ratio.reshape(-1, g) == ratio.reshape(-1, g)[:, :1]):
                group = g
                break
        lo, hi = qrange(bits, signed)
        # At least two bins per output level: 64 serves 3- and 4-bit outputs as in HG-PIPE;
        # an 8-bit residual output would otherwise lose two bits in the table.
        size = max(self.q.tables.gelu if fn == "gelu" else self.q.tables.requant,
                   2 * (hi - lo + 1))
        fns, samples = [], []
        for j in range(c // group):
            sa, so = float(s_acc[j * group]), float(s_acc[j * group] / ratio[j * group])
            f: Callable = (lambda x, sa=sa, so=so: gelu(x * sa) / so) if fn == "gelu" \
                else (lambda x, sa=sa, so=so: x * sa / so)
            fns.append(f)
            samples.append(acc[..., j * group:(j + 1) * group])
        table = fit_grouped(fns, samples, size, lo, hi, group)
        return self.emit(Requant(**self.base(name, (src,), ref, s_out), table=table, fn=fn,
                                 out_format=IntRange.of_bits(bits, signed)))

    def layernorm(self, name: str, src: str, a: Affine, bits: int) -> str:
        q, x = self.q, self.env[src]
        c = x.shape[-1]
        s_x = float(self.scale[src])
        s_out = self.act_scale(name, bits, True)
        s1 = x.sum(-1)
        v = c * (x * x).sum(-1) - s1 * s1
        eps_v = c * c * self.cfg.layer_norm_eps / (s_x * s_x)
        v_lo, v_hi = max(1, int(v.min()) // 2), max(2, 2 * int(v.max()))
        rmax = (1 << q.rsqrt_bits) - 1
        k = floor(log2(rmax * sqrt(v_lo + eps_v)))
        seg, size = q.tables.rsqrt
        rsqrt = fit_table(lambda t: 2.0 ** k / np.sqrt(t + eps_v), v, size, 0, rmax, seg,
                          domain=(v_lo, v_hi))
        g_real = a.weight / s_out
        gmax = (1 << (q.gamma_bits - 1)) - 1
        g = max(0, floor(log2(gmax / max(np.abs(g_real).max(), 1e-12))))
        shift = k + g
        gamma = np.rint(g_real * 2.0 ** g).astype(np.int64)
        beta = (np.rint(a.bias / s_out * 2.0 ** shift) + (1 << (shift - 1) if shift else 0)
                ).astype(np.int64)
        return self.emit(LayerNorm(**self.base(name, (src,), name, s_out), gamma=gamma, beta=beta,
                                   rsqrt=rsqrt, shift=shift,
                                   out_format=IntRange.of_bits(bits, True)))

    def softmax(self, name: str, src: str, sigma: float) -> str:
        """``sigma``: real value of one score LSB, 1/sqrt(head_dim) included."""
        q, s = self.q, self.env[src]
        emax = (1 << q.exp_bits) - 1
        d = s.max(-1, keepdims=True) - s
        d_cut = ceil(log(2 * emax) / sigma)  # exp(-d sigma) * emax < 0.5 beyond: entry 0
        exp = fit_table(lambda t: emax * np.exp(-t * sigma), d, q.tables.exp, 0, emax,
                        domain=(0, max(1, min(d_cut, int(d.max())))))
        s_p = self.act_scale(name, q.bits.prob, False)
        z = exp.apply(d).sum(-1)
        z_lo = max(1, int(exp.apply(np.zeros(1, np.int64))[0]))
        z_hi = min(max(2 * int(z.max()), z_lo + 1), s.shape[-1] * emax)
        rmax = (1 << q.recip_bits) - 1
        shift = max(1, floor(log2(rmax * z_lo * s_p)))
        seg, size = q.tables.recip
        recip = fit_table(lambda t: 2.0 ** shift / (t * s_p), z, size, 0, rmax, seg,
                          domain=(z_lo, z_hi))
        return self.emit(Softmax(**self.base(name, (src,), name, s_p), exp=exp, recip=recip,
                                 shift=shift, row_len=s.shape[-1],
                                 out_format=IntRange.of_bits(q.bits.prob, False)))

    def residual(self, prefix: str, skip: str, branch_acc: str, tap: str) -> str:
        """Requantize the branch to the new residual scale, 2^k times the skip's, and add."""
        r = self.q.bits.residual
        s_skip = float(self.scale[skip])
        s_obs = self.act_scale(tap, r, True)
        k = max(0, ceil(log2(s_obs / s_skip) - 1e-9))
        s_new = s_skip * 2.0 ** k
        br = self.requant(f"{branch_acc}.requant", branch_acc, s_new, r, True, "identity",
                          branch_acc)
        return self.emit(ResidualAdd(**self.base(f"{prefix}", (skip, br), tap, s_new),
                                     skip_shift=k, out_format=IntRange.of_bits(r, True)))


def step_names(cfg: ViTConfig) -> tuple[set[str], set[str]]:
    """The names ``QuantConfig.scales`` and ``signs`` may fix in a model of ``cfg``."""
    acts = {INPUT, "tokens", "norm"}
    weights = {"patch_embed.proj.weight", "head.weight"}
    for i in range(cfg.depth):
        p = f"blocks.{i}"
        acts |= {f"{p}.{t}" for t in ("norm1", "attn.q", "attn.k", "attn.v", "attn.softmax",
                                       "attn.av", "add1", "norm2", "mlp.gelu", "add2")}
        weights |= {f"{p}.{t}.weight" for t in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")}
    return acts | weights, {f"blocks.{i}.mlp.gelu" for i in range(cfg.depth)}


def check_steps(cfg: ViTConfig, q: QuantConfig) -> None:
    """Every fixed name must exist in the model (a misspelt one would silently not apply)."""
    scales, signs = step_names(cfg)
    for field, table, known, eg in (
            ("scales", q.scales, scales, "blocks.0.norm1, blocks.0.attn.q, blocks.0.mlp.fc1.weight"),
            ("signs", q.signs, signs, "blocks.0.mlp.gelu")):
        for key in sorted(set(table) - known):
            raise QuantError(f"quant: {field}: {key!r}: no such tap or weight in this model; "
                             f"expected e.g. {eg}")


def quantize_model(cfg: ViTConfig, weights: ViTWeights, calib_images: np.ndarray,
                   qcfg: QuantConfig | None = None) -> IntGraph:
    """Calibrate on ``calib_images`` (float, as the float model takes them) and build the
    integer graph. Weights or images whose scales the integer graph cannot hold (an
    overflow, a scale of zero or infinity) are a ``QuantError``, never a wrong graph."""
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return _quantize_model(cfg, weights, calib_images, qcfg)
    except (FloatingPointError, OverflowError, ZeroDivisionError) as exc:
        raise QuantError(f"quant: building the integer graph gives {exc}: expected weights "
                         "and calibration images of a usable range (finite, not all zero, "
                         "magnitudes up to 1e6)") from None


def _quantize_model(cfg: ViTConfig, weights: ViTWeights, calib_images: np.ndarray,
                    qcfg: QuantConfig | None) -> IntGraph:
    q = qcfg or QuantConfig()
    check_steps(cfg, q)
    bits = q.bits
    if len(calib_images) == 0:
        raise QuantError("calib: no calibration images: expected at least 1")
    taps: dict[str, np.ndarray] = {}
    forward(cfg, weights, calib_images, tap=taps.__setitem__)
    b = _Builder(cfg, q, taps)
    d, hd = cfg.embed_dim, cfg.head_dim

    s_in = b.act_scale(INPUT, bits.embed, True)
    in_range = IntRange.of_bits(bits.embed, True)
    b.env[INPUT], b.range[INPUT], b.scale[INPUT] = \
        quantize(taps[INPUT], s_in, bits.embed, True), in_range, s_in

    pe = b.linear("patch_embed", INPUT, weights.patch, bits.embed, "patch_embed", q.per_channel)
    s_r = b.act_scale("tokens", bits.residual, True)
    pe = b.requant("patch_embed.requant", pe, s_r, bits.residual, True, "identity", "patch_embed")
    x = b.emit(Tokens(**b.base("tokens", (pe,), "tokens", s_r),
                      cls=quantize(weights.cls_token.reshape(-1), s_r, bits.residual, True),
                      pos=quantize(weights.pos_embed[0], s_r, bits.residual, True),
                      mode=cfg.class_token, out_format=IntRange.of_bits(bits.residual, True)))

    for i, bw in enumerate(weights.blocks):
        p = f"blocks.{i}"
        y = b.layernorm(f"{p}.norm1", x, bw.norm1, bits.act)
        y = b.linear(f"{p}.attn.qkv", y, bw.qkv, bits.weight, "qkv", q.per_channel)
        qkv_tap = taps[f"{p}.attn.qkv"]
        s_qkv = [b.act_scale(f"{p}.attn.{part}", bits.act, True, qkv_tap[..., j * d:(j + 1) * d])
                 for j, part in enumerate("qkv")]
        s_out = np.repeat(np.array(s_qkv), d)
        y = b.requant(f"{p}.attn.qkv.requant", y, s_out, bits.act, True, "identity",
                      f"{p}.attn.qkv")
        qkv = y
        s = b.emit(AttentionScores(**b.base(f"{p}.attn.qk", (qkv,), f"{p}.attn.qk",
                                            s_qkv[0] * s_qkv[1]),
                                   heads=cfg.num_heads, head_dim=hd))
        a = b.softmax(f"{p}.attn.softmax", s, s_qkv[0] * s_qkv[1] / sqrt(hd))
        o = b.emit(AttentionValue(**b.base(f"{p}.attn.av", (a, qkv), f"{p}.attn.av",
                                           float(b.scale[a]) * s_qkv[2]),
                                  heads=cfg.num_heads, head_dim=hd, tokens=cfg.num_tokens))
        o = b.requant(f"{p}.attn.av.requant", o, b.act_scale(f"{p}.attn.av", bits.act, True),
                      bits.act, True, "identity", f"{p}.attn.av")
        o = b.linear(f"{p}.attn.proj", o, bw.proj, bits.weight, "proj", q.per_channel)
        x = b.residual(f"{p}.add1", x, o, f"{p}.add1")
        b.keep_only(x)
        y = b.layernorm(f"{p}.norm2", x, bw.norm2, bits.act)
        y = b.linear(f"{p}.mlp.fc1", y, bw.fc1, bits.weight, "fc1", q.per_channel)
        signed = b.better_signed(f"{p}.mlp.gelu", bits.act)
        y = b.requant(f"{p}.mlp.gelu", y, b.act_scale(f"{p}.mlp.gelu", bits.act, signed),
                      bits.act, signed, "gelu", f"{p}.mlp.gelu")
        y = b.linear(f"{p}.mlp.fc2", y, bw.fc2, bits.weight, "fc2", q.per_channel)
        x = b.residual(f"{p}.add2", x, y, f"{p}.add2")
        b.keep_only(x)

    y = b.layernorm("norm", x, weights.norm, bits.head)
    b.linear("head", y, weights.head, bits.head, "head", per_channel=False)
    assert b.used == {*q.scales, *q.signs}, "check_steps and the builder disagree"
    return IntGraph(config=cfg, bits=bits.name, input_scale=s_in, input_range=in_range,
                    stages=tuple(b.stages))
