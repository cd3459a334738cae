"""Token padding in the golden model: a graph streamed as a plan lays it out (class token
after the patches, rows padded to a multiple of TP) gives every real token the result of
the model's order, unpadded, bit for bit, at every stage; padding rows stay defined (inside
every derived range) and never leak into a real token."""

import numpy as np
import pytest

from hgpipe.golden import run, run_stage
from hgpipe.graph import INPUT
from hgpipe.graph.layout import TokenLayout
from hgpipe.model import preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model

from .conftest import images_for
from .test_widths import extremal_inputs

TPS = [1, 2, 3, 4, 7, 8]


@pytest.fixture(scope="module", params=["extra", "replace"])
def model(request):
    """vit-micro with either class-token mode: 17 tokens (a prime) or 16."""
    cfg = preset("vit-micro").replace(class_token=request.param)
    g = quantize_model(cfg, random_weights(cfg, seed=4), images_for(cfg, 8),
                       QuantConfig(bits=BitSpec.parse("w3a3")))
    return g, g.encode_images(images_for(cfg, 3, seed=11))


def _as_model_order(lay, y, patch_rows: bool):
    """A streamed tensor's real rows, put in the model's token order."""
    order = np.argsort(lay.model_index())       # model token -> stream row
    if y.ndim == 4:                             # attention maps: queries and keys
        return y[:, :, order][:, :, :, order]
    return y[:, :lay.patches] if patch_rows else y[:, order]


@pytest.mark.parametrize("tp", TPS)
def test_every_real_token_equals_the_unpadded_model(model, tp):
    g, patches = model
    lay = TokenLayout.stream(g.config, tp)
    padded = g.with_layout(lay)
    assert lay.rows % tp == 0 and lay.patch_rows % tp == 0 and lay.rows >= lay.tokens
    ref, out = run(g, patches), run(padded, patches)
    patch_rows = True                           # until the tokens stage
    for st in g.stages:
        y = out[st.name]
        patch_rows &= st.kind != "tokens"
        if st.name == "head":
            assert np.array_equal(y, ref[st.name])
            continue
        assert y.shape[-2] == padded.shape(st.name)[-2], st.name
        assert np.array_equal(_as_model_order(lay, y, patch_rows), ref[st.name]), st.name
    # padding rows: zeros out of the tokens stage; masked keys get probability 0
    assert not out["tokens"][:, lay.tokens:].any()
    assert not out["blocks.0.attn.softmax"][..., lay.tokens:].any()


def test_the_class_token_follows_the_patches_when_extra():
    cfg = preset("vit-micro").replace(class_token="extra")
    lay = TokenLayout.stream(cfg, 4)
    assert (lay.patches, lay.tokens, lay.rows, lay.patch_rows, lay.cls_row) == (16, 17, 20, 16, 16)
    assert lay.model_index().tolist() == list(range(1, 17)) + [0]
    assert lay.patch_of_row().tolist() == list(range(16)) + [-1] * 4
    deit = TokenLayout.stream(preset("deit-tiny"), 2)
    assert (deit.tokens, deit.rows, deit.patch_rows, deit.cls_row) == (197, 198, 196, 196)
    hg = TokenLayout.stream(preset("hgpipe-deit-tiny"), 8)
    assert (hg.tokens, hg.rows, hg.patch_rows, hg.cls_row) == (196, 200, 200, 0)


@pytest.mark.parametrize("tp", [2, 4])
def test_padded_rows_stay_inside_every_derived_range(model, tp):
    """Extremal inputs on every stage of the padded graph, the padding executed: no traced
    intermediate leaves its derived range (so no table sees an undefined index). AV's
    accumulators are sized for the real keys: softmax's zeros on the padding keys are
    what keeps them in range."""
    g, patches = model
    padded = g.streamed(tp)
    shapes = {k: v.shape for k, v in run(padded, patches).items()}
    shapes[INPUT] = (2, padded.layout.patch_rows, g.config.patch_dim)
    ranges = {INPUT: g.input_range, **{st.name: st.out_range for st in g.stages}}
    rng = np.random.default_rng(1)
    for st in g.stages:
        gens = [extremal_inputs((2,) + shapes[n][1:], ranges[n], rng) for n in st.inputs]
        for inputs in zip(*gens):
            if st.kind == "av":     # its input's contract: padding keys have probability 0
                inputs[0][..., padded.layout.tokens:] = 0
            trace = {}
            y = run_stage(st, list(inputs), trace, layout=padded.layout)
            assert st.out_range.contains(y), st.name
            for key, r in st.derived.items():
                assert r.contains(trace[key]), (st.name, key)
