"""Golden stream vectors for one stage of an integer graph, in the contract's beat order."""

from __future__ import annotations

import numpy as np

from hgpipe.golden import run
from hgpipe.graph import INPUT, IntGraph
from hgpipe.graph.contract import Folding, to_beats

from .vectors import Stream, Vectors


def port_names(n_inputs: int) -> list[str]:
    return ["i"] if n_inputs == 1 else [f"i{k}" for k in range(n_inputs)]


def stage_vectors(graph: IntGraph, name: str, patches: np.ndarray, f: Folding,
                  stall: float = 0.0, seed: int = 0) -> Vectors:
    """Inputs of stage ``name`` as the golden model produces them on ``patches``, and the
    output it must give; input streams carry ``cip`` lanes, the output ``cop``."""
    st = graph[name]
    env = run(graph, patches, keep=set(st.inputs) | {name})
    env[INPUT] = np.asarray(patches)
    inputs = {}
    for port, src, r in zip(port_names(len(st.inputs)), st.inputs, st.in_ranges):
        inputs[port] = Stream(to_beats(env[src], f.tp, f.cip), r.bits, r.signed)
    y = env[name]
    out = y[:, None, :] if y.ndim == 2 else y  # the head's (images, classes): one token
    tp_out = 1 if y.ndim == 2 else f.tp
    return Vectors(inputs=inputs, images=len(patches), stall=stall, seed=seed,
                   output=Stream(to_beats(out, tp_out, f.cop), st.out_range.bits,
                                 st.out_range.signed))
