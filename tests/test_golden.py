"""The golden model: deterministic, every stage close to the float model it approximates."""

import pickle

import numpy as np
import pytest

from hgpipe.golden import logits, run
from hgpipe.model import forward, preset, random_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model

from .conftest import images_for


def cosine(a, b):
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def float_taps(cfg, w, x):
    taps = {}
    forward(cfg, w, x, tap=taps.__setitem__)
    return taps


def test_every_stage_agrees_with_float_at_w8a8(graphs, digits_model):
    """Cumulative error: each stage's dequantized output against the float activation it
    approximates, with all integer stages before it in the loop."""
    cfg, w = digits_model
    g = graphs["w8a8"]
    x = images_for(cfg, 8, seed=11)  # not the calibration images
    out, taps = run(g, g.encode_images(x)), float_taps(cfg, w, x)
    worst = min((cosine(out[st.name] * np.asarray(st.out_scale), taps[st.ref]), st.name)
                for st in g.stages)
    assert worst[0] >= 0.99, worst
    assert len(out) == len(g.stages) == 3 + 2 * 16 + 2  # embed, 16 per block, norm+head


def test_lower_bit_widths_lose_more(graphs, digits_model):
    cfg, w = digits_model
    x = images_for(cfg, 8, seed=11)
    ref = forward(cfg, w, x)
    cos = {b: cosine(g.dequantize_logits(logits(g, g.encode_images(x))), ref)
           for b, g in graphs.items()}
    assert cos["w8a8"] > cos["w4a4"] > cos["w3a3"] > 0.5, cos


def test_outputs_stay_in_declared_ranges(graphs, digits_model):
    cfg, _ = digits_model
    for g in graphs.values():
        out = run(g, g.encode_images(images_for(cfg, 4, seed=12) * 5))  # overdriven input
        for st in g.stages:
            assert st.out_range.contains(out[st.name]), st.name


def test_golden_is_deterministic(digits_model):
    """Same weights, seed and calibration: identical graph and identical outputs."""
    cfg, w = digits_model
    calib = images_for(cfg, 8, seed=2)
    a = quantize_model(cfg, w, calib, QuantConfig(bits=BitSpec.parse("w4a4")))
    b = quantize_model(cfg, w, calib, QuantConfig(bits=BitSpec.parse("w4a4")))
    for sa, sb in zip(a.stages, b.stages):
        assert pickle.dumps(vars(sa)) == pickle.dumps(vars(sb)), sa.name
    x = a.encode_images(images_for(cfg, 4, seed=3))
    ra, rb = run(a, x), run(b, x)
    for k in ra:
        assert np.array_equal(ra[k], rb[k])
    assert np.array_equal(run(a, x)[a.output.name], ra[a.output.name])


def test_batched_execution_equals_one_by_one(graphs, digits_model):
    cfg, _ = digits_model
    g = graphs["w3a3"]
    p = g.encode_images(images_for(cfg, 5, seed=4))
    whole = logits(g, p, batch=5)
    single = np.concatenate([logits(g, p[i:i + 1]) for i in range(5)])
    assert np.array_equal(whole, single)


@pytest.mark.parametrize("mode, per_channel", [("replace", False), ("extra", True)])
def test_class_token_modes_and_per_channel_weights(mode, per_channel):
    cfg = preset("vit-micro").replace(class_token=mode)
    w = random_weights(cfg, seed=5)
    calib = images_for(cfg, 8, seed=6)
    g = quantize_model(cfg, w, calib, QuantConfig(bits=BitSpec.parse("w8a8"),
                                                    per_channel=per_channel))
    x = images_for(cfg, 4, seed=7)
    out = run(g, g.encode_images(x))
    assert out["tokens"].shape == (4, cfg.num_tokens, cfg.embed_dim)
    qkv_table = g["blocks.0.attn.qkv.requant"].table
    assert qkv_table.groups == (3 * cfg.embed_dim if per_channel else 3)
    assert cosine(g.dequantize_logits(out["head"]), forward(cfg, w, x)) > 0.98
