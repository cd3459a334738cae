"""One stage unit in C simulation: its kernel, fed the beats of given input streams."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..graph.contract import Folding
from ..graph.graph import IntGraph
from .csim import build, load_beats, run, save_beats
from .design import stage_wires
from .kernels import kernel, takes_head
from .render import copied, render


def run_stage(graph: IntGraph, name: str, f: Folding, inputs: dict[str, np.ndarray],
              images: int, head: int | None = None) -> tuple[np.ndarray, str]:
    """Output beats of stage ``name`` (laid out as ``graph``) at folding ``f`` on the input
    beats ``inputs`` (port -> (beats, lanes)), and the compiler's warnings."""
    st = graph[name]
    wires = stage_wires(graph, st, f)
    k = kernel(st, f, graph.layout, wires)
    ports = [{"name": p, "wire": wires[p]} for p in (["i"] if len(st.inputs) == 1
                                                        else ["i0", "i1"])]
    tb = render("stage_tb.cpp.j2", stage=name, fn=k.fn, head=head, images=images,
                ports=ports, o=wires["o"],
                takes_head=takes_head(st))
    files = {"tb.cpp": tb, f"stages/{k.fn}.h": k.header, f"params/{k.fn}.h": k.params,
             **copied()}
    b = build(files, ("tb.cpp",))
    with tempfile.TemporaryDirectory() as tmp:
        for port, beats in inputs.items():
            save_beats(Path(tmp) / f"in_{port}.txt", beats)
        r = run(b.binary, [tmp])
        if r.returncode:
            raise RuntimeError(f"{name}: C simulation failed ({r.returncode}): "
                               f"{r.stderr.strip()[-2000:]}")
        return load_beats(Path(tmp) / "out.txt", wires["o"].n), b.warnings
