"""The integer graph: the ordered stages of one quantized ViT, and its input encoding."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..model.config import ViTConfig
from ..model.forward import image_batch, patchify
from .intrange import IntRange
from .kinds import StageKind
from .layout import TokenLayout
from .stages import Stage

INPUT = "patches"


@dataclass(frozen=True, eq=False)
class IntGraph:
    """Stages in execution order. Tensor names are stage names, plus the input ``patches``:
    (batch, patch rows, C*P*P) integers of ``input_range`` (pixels at ``input_scale``).
    ``layout`` says which stream row holds which token and which rows are padding: by
    default the model's order, unpadded; ``with_layout`` gives the same graph streamed
    as a plan lays it out."""

    config: ViTConfig
    bits: str
    input_scale: float
    input_range: IntRange
    stages: tuple[Stage, ...]
    layout: TokenLayout | None = None

    def __post_init__(self) -> None:
        if self.layout is None:
            object.__setattr__(self, "layout", TokenLayout.model(self.config))
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

    def with_layout(self, layout: TokenLayout) -> "IntGraph":
        """The same stages over streams laid out as ``layout``."""
        return self if layout == self.layout else dataclasses.replace(self, layout=layout)

    def streamed(self, tp: int) -> "IntGraph":
        """The same stages streamed at token parallelism ``tp`` (``TokenLayout.stream``)."""
        return self.with_layout(TokenLayout.stream(self.config, tp))

    @cached_property
    def _by_name(self) -> dict[str, Stage]:
        return {st.name: st for st in self.stages}

    def __getitem__(self, name: str) -> Stage:
        return self._by_name[name]

    @property
    def output(self) -> Stage:
        return self.stages[-1]

    def shape(self, name: str) -> tuple[int, ...]:
        """Per-image shape of a tensor as streamed (padding rows included): (rows,
        channels), or (heads, rows, rows) for attention maps."""
        from .stages import AttentionScores, Linear, Softmax, Tokens
        c, lay = self.config, self.layout
        if name == INPUT:
            return (lay.patch_rows, c.patch_dim)
        st = self[name]
        if isinstance(st, Linear):
            return (1 if st.cls_only else self.shape(st.inputs[0])[0], st.out_features)
        if isinstance(st, Tokens):
            return (lay.rows, self.shape(st.inputs[0])[1])
        if isinstance(st, (AttentionScores, Softmax)):
            return (c.num_heads, lay.rows, lay.rows)
        if st.kind is StageKind.AV:
            return (lay.rows, c.embed_dim)
        return self.shape(st.inputs[0])

    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """Float images -> the integer ``patches`` input (round to nearest, saturate)."""
        patches = patchify(self.config, image_batch(self.config, images))
        q = np.rint(patches / self.input_scale)
        return np.clip(q, self.input_range.lo, self.input_range.hi).astype(np.int64)

    def stream_patches(self, patches: np.ndarray) -> np.ndarray:
        """Integer ``patches`` (batch, patches, C*P*P) as the input stream carries them:
        zero rows appended up to the layout's patch rows."""
        patches = np.asarray(patches, dtype=np.int64)
        c = self.config
        if patches.ndim != 3 or patches.shape[1:] != (c.num_patches, c.patch_dim):
            raise ValueError(f"patches: shape {patches.shape}: expected (N, {c.num_patches}, "
                             f"{c.patch_dim})")
        pad = self.layout.patch_rows - c.num_patches
        return np.pad(patches, ((0, 0), (0, pad), (0, 0))) if pad else patches

    def dequantize_logits(self, acc: np.ndarray) -> np.ndarray:
        return acc.astype(np.float64) * self.output.out_scale

    def widths(self) -> dict[str, dict[str, int]]:
        """Every stage's derived intermediate widths in bits."""
        return {st.name: {k: r.bits for k, r in st.derived.items()} for st in self.stages}
