"""Fixtures of the HLS tests: small quantized graphs (as the RTL tests use) and one stage's
C simulation against its golden vectors."""

from __future__ import annotations

import pytest

from hgpipe.graph.contract import Folding, legal_foldings
from hgpipe.hls.bench import run_stage
from hgpipe.model import preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model
from sim.stage_io import stage_vectors

from ..conftest import images_for

IMAGES = 2


@pytest.fixture(scope="session")
def hls_graphs():
    """vit-micro (16 tokens, class token in place of a patch) at w3a3 and w4a4, and with
    an extra class token (17 tokens, a prime) at w4a4; each with test patches."""
    out = {}
    for name, bits, mode, seed in (("w3a3", "w3a3", "replace", 1), ("w4a4", "w4a4", "replace", 1),
                                   ("extra", "w4a4", "extra", 2)):
        cfg = preset("vit-micro").replace(class_token=mode)
        g = quantize_model(cfg, random_weights(cfg, seed=seed), images_for(cfg, 8),
                           QuantConfig(bits=BitSpec.parse(bits)))
        out[name] = (g, g.encode_images(images_for(cfg, IMAGES, seed=5)))
    return out


def folding_for(graph, st, tp: int, widest: bool) -> Folding:
    """A legal folding of ``st`` at ``tp``: the narrowest, or the widest with at most 8
    lanes a side."""
    shape = graph.shape(st.inputs[0])
    fs = [f for f in legal_foldings(st, graph.layout.rows, shape[-1], tp)
          if f.cip <= 8 and f.cop <= 8]
    return max(fs, key=lambda f: (f.cip * f.cop, f.cop)) if widest else \
        min(fs, key=lambda f: (f.cip * f.cop, f.cip))


def check_stage(graph, patches, name: str, f: Folding, head: int | None = None) -> None:
    """C-simulate stage ``name`` of ``graph`` (laid out as streamed) at ``f`` on the golden
    model's inputs; its output beats must equal the golden model's, and g++ -Wall quiet."""
    vec = stage_vectors(graph, name, patches, f, head=head)
    out, warnings = run_stage(graph, name, f, {k: s.beats for k, s in vec.inputs.items()},
                              vec.images, head=head)
    assert warnings == "", warnings[:2000]
    assert out.shape == vec.output.beats.shape
    bad = (out != vec.output.beats).any(axis=1).nonzero()[0]
    assert not len(bad), (f"{name} {f} head {head}: {len(bad)} of {len(out)} beats differ; "
                          f"first {bad[0]}: {out[bad[0]].tolist()} != "
                          f"{vec.output.beats[bad[0]].tolist()}")
