"""Golden stream vectors for one stage of an integer graph, in the contract's beat order."""

from __future__ import annotations

import numpy as np

from hgpipe.golden import run
from hgpipe.graph import INPUT, IntGraph
from hgpipe.graph.contract import Folding, to_beats

from hgpipe.golden.vectors import Stream, Vectors


def port_names(n_inputs: int) -> list[str]:
    return ["i"] if n_inputs == 1 else [f"i{k}" for k in range(n_inputs)]


def input_lanes(st, f: Folding) -> tuple[int, ...]:
    """Lanes of each input stream: ``cip``, except AV's QKV input, read ``cop`` dims a beat."""
    if st.kind == "av":
        return (f.cip, f.cop)
    return (f.cip,) * len(st.inputs)


def cycle_budget(graph: IntGraph, name: str, f: Folding, images: int, beats: int) -> int:
    """Generous cycles for a run: a deadlock fails fast instead of running for hours."""
    from hgpipe.graph.contract import cycles
    shape = graph.shape(graph[name].inputs[0])
    tokens = shape[1] if len(shape) == 3 else shape[0]
    per_image = cycles(graph[name], f, tokens, shape[-1])
    return 4 * (images + 2) * per_image + 20 * beats + 2000


def stage_vectors(graph: IntGraph, name: str, patches: np.ndarray, f: Folding,
                  stall: float = 0.0, seed: int = 0, head: int | None = None) -> Vectors:
    """Inputs of stage ``name`` as the golden model produces them on ``patches``, and the
    output it must give; input streams carry ``cip`` lanes, the output ``cop``.
    Attention maps (images, heads, T, T) stream one ``head`` (a per-head unit's share)."""
    st = graph[name]
    env = run(graph, patches, keep=set(st.inputs) | {name})
    env[INPUT] = graph.stream_patches(patches)
    if head is not None:
        env = {k: (v[:, head] if v.ndim == 4 else v) for k, v in env.items()}
    inputs = {}
    for port, src, r, lanes in zip(port_names(len(st.inputs)), st.inputs, st.in_ranges,
                                   input_lanes(st, f)):
        inputs[port] = Stream(to_beats(env[src], f.tp, lanes), r.bits, r.signed)
    y = env[name]
    if st.kind == "av" and head is not None:  # one head's unit: its share of the channels
        y = y[..., head * st.head_dim:(head + 1) * st.head_dim]
    out = y[:, None, :] if y.ndim == 2 else y  # the head's (images, classes): one token
    tp_out = 1 if y.ndim == 2 else f.tp
    work = sum(len(s.beats) for s in inputs.values()) + out.shape[0] * out.shape[1]
    return Vectors(inputs=inputs, images=len(patches), stall=stall, seed=seed,
                   timeout=cycle_budget(graph, name, f, len(patches), work),
                   output=Stream(to_beats(out, tp_out, f.cop), st.out_range.bits,
                                 st.out_range.signed))
