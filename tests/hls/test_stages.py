"""Every stage kind's HLS kernel, C-simulated with g++, bit-exact against the golden model:
at w3a3 and w4a4, at the narrowest and a wide folding, and padded (17 tokens streamed as
18 or 20 rows) with the class token after the patches."""

from __future__ import annotations

import pytest

from hgpipe.graph.kinds import StageKind

from .conftest import check_stage, folding_for

KINDS = list(StageKind)
CASES = [("w3a3", 1, False), ("w3a3", 4, True), ("w4a4", 2, True), ("extra", 2, True),
         ("extra", 4, False)]


def first_of(graph, kind: StageKind, role: str | None = None):
    return next(st for st in graph.stages if st.kind is kind
                and (role is None or getattr(st, "role", None) == role))


@pytest.mark.parametrize("case", CASES, ids=[f"{g}-tp{t}-{'wide' if w else 'narrow'}"
                                             for g, t, w in CASES])
@pytest.mark.parametrize("kind", KINDS, ids=[k.value for k in KINDS])
def test_stage_bit_exact(hls_graphs, kind, case):
    which, tp, wide = case
    graph, patches = hls_graphs[which]
    graph = graph.streamed(tp)
    st = first_of(graph, kind)
    f = folding_for(graph, st, tp, wide)
    heads = [0, graph.config.num_heads - 1] if kind in (StageKind.QK, StageKind.SOFTMAX,
                                                        StageKind.AV) else [None]
    for h in heads:
        check_stage(graph, patches, st.name, f, head=h)


@pytest.mark.parametrize("role", ["patch_embed", "head"])
@pytest.mark.parametrize("which,tp", [("w4a4", 4), ("extra", 4)])
def test_linear_roles(hls_graphs, role, which, tp):
    """The patch embedding (its input the padded patch rows) and the head (the class row
    only, one token a beat)."""
    graph, patches = hls_graphs[which]
    graph = graph.streamed(tp)
    st = first_of(graph, StageKind.LINEAR, role)
    check_stage(graph, patches, st.name, folding_for(graph, st, tp, True))


def test_gelu(hls_graphs):
    """The GELU table (a requant stage with its own function)."""
    graph, patches = hls_graphs["w3a3"]
    graph = graph.streamed(2)
    st = next(s for s in graph.stages if s.kind is StageKind.REQUANT and s.fn == "gelu")
    check_stage(graph, patches, st.name, folding_for(graph, st, 2, True))
