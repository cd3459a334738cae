"""Run a whole integer graph: every stage in order, vectorised over batch and tokens."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..graph.graph import INPUT, IntGraph
from .ops import run_stage


def run(graph: IntGraph, patches: np.ndarray, keep: Iterable[str] | None = None
        ) -> dict[str, np.ndarray]:
    """Execute ``graph`` on integer ``patches`` (batch, patches, C*P*P), its streams laid
    out as ``graph.layout`` says (padding rows executed too).

    Returns the tensors named in ``keep`` (every stage's output when None) plus the
    final output under the last stage's name. Tensors nobody reads again are dropped as
    soon as possible, so a deep model runs in bounded memory.
    """
    patches = graph.stream_patches(patches)
    wanted = None if keep is None else set(keep) | {graph.output.name}
    last_use = {}
    for i, st in enumerate(graph.stages):
        for name in st.inputs:
            last_use[name] = i
    env = {INPUT: patches}
    out: dict[str, np.ndarray] = {}
    for i, st in enumerate(graph.stages):
        env[st.name] = run_stage(st, [env[n] for n in st.inputs], layout=graph.layout)
        if wanted is None or st.name in wanted:
            out[st.name] = env[st.name]
        for name in st.inputs:
            if last_use[name] == i:
                env.pop(name, None)
    return out


def logits(graph: IntGraph, patches: np.ndarray, batch: int = 16) -> np.ndarray:
    """Integer logits (head accumulators) of every image, in batches."""
    parts = [run(graph, patches[i:i + batch], keep=())[graph.output.name]
             for i in range(0, len(patches), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, graph.config.num_classes), np.int64)
