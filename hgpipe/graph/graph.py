"""The integer graph: the ordered stages of one quantized ViT, and its input encoding."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..model.config import ViTConfig
from ..model.forward import image_batch, patchify
from .intrange import IntRange
from .stages import Stage

INPUT = "patches"


@dataclass(frozen=True, eq=False)
class IntGraph:
    """Stages in execution order. Tensor names are stage names, plus the input ``patches``:
    (batch, patches, C*P*P) integers of ``input_range`` (pixels at ``input_scale``)."""

    config: ViTConfig
    bits: str
    input_scale: float
    input_range: IntRange
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        ranges = {INPUT: self.input_range}
        seen = set()
        for st in self.stages:
            if st.name in seen or st.name == INPUT:
                raise ValueError(f"graph: duplicate tensor name {st.name!r}")
            for name, r in zip(st.inputs, st.in_ranges):
                if name not in ranges:
                    raise ValueError(f"graph: stage {st.name!r} reads {name!r} before it exists")
                if ranges[name] != r:
                    raise ValueError(f"graph: stage {st.name!r} expects {name!r} in {r}, "
                                     f"but it is produced in {ranges[name]}")
            seen.add(st.name)
            ranges[st.name] = st.out_range

    @cached_property
    def _by_name(self) -> dict[str, Stage]:
        return {st.name: st for st in self.stages}

    def __getitem__(self, name: str) -> Stage:
        return self._by_name[name]

    @property
    def output(self) -> Stage:
        return self.stages[-1]

    def shape(self, name: str) -> tuple[int, ...]:
        """Per-image shape of a tensor: (tokens, channels), or (heads, tokens, tokens) for
        attention maps."""
        from .stages import AttentionScores, Linear, Softmax, Tokens
        c = self.config
        if name == INPUT:
            return (c.num_patches, c.patch_dim)
        st = self[name]
        if isinstance(st, Linear):
            return (1 if st.cls_only else self.shape(st.inputs[0])[0], st.out_features)
        if isinstance(st, Tokens):
            return (c.num_tokens, self.shape(st.inputs[0])[1])
        if isinstance(st, (AttentionScores, Softmax)):
            return (c.num_heads, c.num_tokens, c.num_tokens)
        if st.kind == "av":
            return (c.num_tokens, c.embed_dim)
        return self.shape(st.inputs[0])

    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """Float images -> the integer ``patches`` input (round to nearest, saturate)."""
        patches = patchify(self.config, image_batch(self.config, images))
        q = np.rint(patches / self.input_scale)
        return np.clip(q, self.input_range.lo, self.input_range.hi).astype(np.int64)

    def dequantize_logits(self, acc: np.ndarray) -> np.ndarray:
        return acc.astype(np.float64) * self.output.out_scale

    def widths(self) -> dict[str, dict[str, int]]:
        """Every stage's derived intermediate widths in bits."""
        return {st.name: {k: r.bits for k, r in st.derived.items()} for st in self.stages}
