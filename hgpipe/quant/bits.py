"""Bit-width settings of a quantized ViT and the calibration knobs, as typed data."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from math import isfinite
from pathlib import Path
from typing import Mapping

from ..choice import Choice
from ..errors import QuantError

STEP_RANGE = (1e-12, 1e12)     # a learned step (the real value of one LSB), finite
_SPEC = re.compile(r"^w(\d+)a(\d+)(?:p(\d+))?(?:r(\d+))?$")
OBSERVERS = ("minmax", "percentile", "mse")


class Ptq(Choice):
    """Post-training quantization: ``basic`` observes every step and rounds to nearest
    (numpy); ``full`` reconstructs block by block, learning the rounding and the steps
    (``hgpipe.quant.reconstruct``, needs torch)."""

    BASIC = "basic"
    FULL = "full"


@dataclass(frozen=True)
class BitSpec:
    """Widths: ``weight``/``act`` in the encoder blocks (linear inputs, Q/K/V, attention
    probabilities, GELU output), ``residual`` for the residual stream, ``embed`` for input
    pixels and patch-embedding weights, ``head`` for the final LayerNorm output and head."""

    weight: int = 3
    act: int = 3
    residual: int = 8
    embed: int = 8
    head: int = 8
    prob: int = 0      # attention probabilities; 0: the activation width

    def __post_init__(self) -> None:
        if self.prob == 0:
            object.__setattr__(self, "prob", self.act)
        for key in ("weight", "act", "embed", "head", "prob"):
            v = getattr(self, key)
            if not 2 <= v <= 8:
                raise QuantError(f"bits: {key}={v}: expected 2 to 8 bits")
        if not self.act <= self.residual <= 16:
            raise QuantError(f"bits: residual={self.residual}: expected act={self.act} "
                             "to 16 bits")

    @classmethod
    def parse(cls, spec: str) -> "BitSpec":
        """``w3a3`` (HG-PIPE), ``w4a4``, ``w8a8``, mixed ``w4a3``; ``p<N>`` sets the attention
        probability width (default: the activation width), ``r<N>`` the residual width
        (default 8, or the activation width when wider)."""
        m = _SPEC.match(spec.strip().lower())
        if not m:
            raise QuantError(f"bits: {spec!r}: expected w<N>a<N>[p<N>][r<N>], e.g. w3a3, "
                             "w4a4, w8a8, w4a3, w3a3p4r10")
        if m.group(3) is not None and int(m.group(3)) == 0:
            raise QuantError(f"bits: {spec!r}: p0: expected a probability width of 2 to 8 "
                             "bits (or no p for the activation width)")
        w, a = int(m.group(1)), int(m.group(2))
        p = int(m.group(3)) if m.group(3) else a
        r = int(m.group(4)) if m.group(4) else max(8, a)
        return cls(weight=w, act=a, residual=r, prob=p)

    @property
    def name(self) -> str:
        return (f"w{self.weight}a{self.act}"
                + ("" if self.prob == self.act else f"p{self.prob}")
                + ("" if self.residual == max(8, self.act) else f"r{self.residual}"))


@dataclass(frozen=True)
class TableSizes:
    """Entries of each power-of-two-indexed table (defaults as HG-PIPE)."""

    requant: int = 64
    gelu: int = 64
    exp: int = 32
    recip: tuple[int, int] = (2, 64)    # segments x entries
    rsqrt: tuple[int, int] = (2, 64)    # segments x entries: 128 in all

    def __post_init__(self) -> None:
        for key in ("requant", "gelu", "exp"):
            v = getattr(self, key)
            if v < 2 or v & (v - 1):
                raise QuantError(f"tables: {key}={v}: expected a power of two >= 2")
        for key in ("recip", "rsqrt"):
            seg, n = getattr(self, key)
            if seg < 1 or n < 2 or n & (n - 1):
                raise QuantError(f"tables: {key}={seg}x{n}: expected >= 1 segments of a "
                                 "power-of-two >= 2 entries")


@dataclass(frozen=True)
class QuantConfig:
    bits: BitSpec = field(default_factory=BitSpec)
    act_observer: str = "mse"
    weight_observer: str = "mse"
    percentile: float = 99.99
    per_channel: bool = False
    tables: TableSizes = field(default_factory=TableSizes)
    exp_bits: int = 8        # unsigned exp table entries
    recip_bits: int = 16     # unsigned reciprocal entries: the softmax's narrow multiply is exp x recip
    rsqrt_bits: int = 16
    gamma_bits: int = 10     # signed LayerNorm affine weights
    bias_correction: bool = True  # fold each linear's mean calibration error into its bias
    # Steps fixed by quantization-aware training instead of observed: activation scales by
    # tap name (``blocks.0.norm1``, ``blocks.0.attn.q``/``k``/``v``, ``blocks.0.attn.softmax``,
    # ``blocks.0.attn.av``, ``blocks.0.mlp.gelu``, ...) and weight scales by timm parameter
    # name (``blocks.0.attn.qkv.weight``); ``signs`` fixes GELU outputs signed or unsigned.
    scales: Mapping[str, float] = field(default_factory=dict)
    signs: Mapping[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("act_observer", "weight_observer"):
            if getattr(self, key) not in OBSERVERS:
                raise QuantError(f"quant: {key}={getattr(self, key)!r}: expected one of "
                                 f"{', '.join(OBSERVERS)}")
        if not 50.0 < self.percentile <= 100.0:
            raise QuantError(f"quant: percentile={self.percentile}: expected (50, 100]")
        for key, v in self.scales.items():
            if not (isinstance(v, (int, float)) and isfinite(v) and v > 0):
                raise QuantError(f"quant: scales[{key!r}]={v!r}: expected a positive number")


def read_steps(path: str) -> tuple[dict[str, float], dict[str, bool]]:
    """Learned steps from a JSON file ``{"scales": {name: step}, "signs": {name: bool}}``
    (as ``QuantConfig.scales``/``signs``; ``signs`` optional), e.g. from QAT."""
    p = Path(path)
    if not p.is_file():
        raise QuantError(f"steps: file {path!r} does not exist")
    try:
        data = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise QuantError(f"steps: cannot read {path!r} as JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) - {"scales", "signs"} or "scales" not in data:
        raise QuantError(f"steps {path}: expected an object with keys 'scales' and "
                         "optionally 'signs'")
    scales, signs = data["scales"], data.get("signs", {})
    for key, table, kind in (("scales", scales, (int, float)), ("signs", signs, bool)):
        if not isinstance(table, dict):
            raise QuantError(f"steps {path}: {key}: expected an object of name -> value")
        for name, v in table.items():
            if not isinstance(v, kind) or (kind is not bool and isinstance(v, bool)):
                raise QuantError(f"steps {path}: {key}[{name!r}]={v!r}: expected "
                                 f"{'true or false' if kind is bool else 'a number'}")
            if kind is not bool and not STEP_RANGE[0] <= v <= STEP_RANGE[1]:
                raise QuantError(f"steps {path}: {key}[{name!r}]={v!r}: expected a step "
                                 f"from {STEP_RANGE[0]:g} to {STEP_RANGE[1]:g}")
    return {k: float(v) for k, v in scales.items()}, dict(signs)


def write_steps(path, scales: Mapping[str, float], signs: Mapping[str, bool]) -> None:
    Path(path).write_text(json.dumps({"scales": dict(sorted(scales.items())),
                                      "signs": dict(sorted(signs.items()))}, indent=1) + "\n")
