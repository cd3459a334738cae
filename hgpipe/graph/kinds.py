"""The words that pick a behaviour, as types: a stage's kind and an input's grain.

The other choices live beside what they describe: ``model.config.ClassToken``,
``resources.memory.MemoryKind``, ``plan.plan.Grain`` and ``Offchip``,
``rtl.linear.WeightSource`` (``hgpipe.choice`` says how they behave).
"""

from __future__ import annotations

from ..choice import Choice


class StageKind(Choice):
    LINEAR = "linear"          # a matrix product (patch embedding, QKV, O, FC1, FC2, head)
    REQUANT = "requant"        # a table lookup: requantizer, or GELU fused with one
    TOKENS = "tokens"          # class token and position embedding
    LAYERNORM = "layernorm"
    QK = "qk"                  # QK^T per head
    SOFTMAX = "softmax"
    AV = "av"                  # softmax x V per head
    ADD = "add"                # the residual add


class InputGrain(Choice):
    """What a stage needs of an input before it computes a row."""

    ROW = "row"                # the same rows (token groups) of the input
    TENSOR = "tensor"          # the whole tensor (K for QK^T, V for AV)
