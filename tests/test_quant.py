"""Quantizer settings and observers."""

import numpy as np
import pytest

from hgpipe.errors import QuantError
from hgpipe.quant import BitSpec, QuantConfig, TableSizes
from hgpipe.quant.observers import choose_scale, quantize


def test_bitspec_parse():
    assert BitSpec.parse("w3a3") == BitSpec(3, 3, 8, 8, 8)
    assert BitSpec.parse("W4A4").name == "w4a4"
    assert BitSpec.parse("w4a3r10") == BitSpec(weight=4, act=3, residual=10)
    assert BitSpec.parse("w8a8").residual == 8
    for bad, msg in (("w3", "expected w<N>a<N>"), ("w9a3", "weight=9: expected 2 to 8"),
                     ("w3a1", "act=1: expected 2 to 8"), ("w4a4r3", "residual=3")):
        with pytest.raises(QuantError, match=msg):
            BitSpec.parse(bad)


def test_quant_config_validation():
    with pytest.raises(QuantError, match="act_observer='max'"):
        QuantConfig(act_observer="max")
    with pytest.raises(QuantError, match="exp=48: expected a power of two"):
        TableSizes(exp=48)
    with pytest.raises(QuantError, match="rsqrt=0x64"):
        TableSizes(rsqrt=(0, 64))


def test_observers_order_by_their_definition():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(100_000), [40.0]])  # one outlier
    s = {m: choose_scale(x, 4, True, m, 99.9) for m in ("minmax", "percentile", "mse")}
    assert s["minmax"] == pytest.approx(40.0 / 7)
    assert s["percentile"] < s["minmax"] and s["mse"] < s["minmax"]
    err = {m: np.mean((quantize(x, v, 4, True) * v - x) ** 2) for m, v in s.items()}
    assert err["mse"] <= min(err.values()) + 1e-12
    assert choose_scale(np.abs(x), 3, False, "minmax") == pytest.approx(40.0 / 7)


def test_fixed_scales_replace_the_observers(digits_model):
    """Steps fixed by QAT (``scales``/``signs``) are the ones the graph uses; the others
    stay observed as without them."""
    from hgpipe.quant import quantize_model
    from tests.conftest import images_for
    cfg, w = digits_model
    calib = images_for(cfg, 8, seed=3)
    plain = quantize_model(cfg, w, calib, QuantConfig(bits=BitSpec.parse("w3a3")))
    fixed = {"blocks.0.norm1": 0.123, "blocks.1.attn.k": 0.05,
             "blocks.0.attn.qkv.weight": 0.01, "blocks.1.attn.softmax": 1 / 8}
    g = quantize_model(cfg, w, calib, QuantConfig(bits=BitSpec.parse("w3a3"), scales=fixed,
                                                  signs={"blocks.0.mlp.gelu": False}))
    assert g["blocks.0.norm1"].out_scale == 0.123
    assert g["blocks.1.attn.softmax"].out_scale == 1 / 8
    # the score scale is Q step x K step: only K's changed
    qk_plain, qk = plain["blocks.1.attn.qk"].out_scale, g["blocks.1.attn.qk"].out_scale
    assert _k_step(plain, cfg) != 0.05 and _k_step(g, cfg) == 0.05
    assert qk == pytest.approx(qk_plain / _k_step(plain, cfg) * 0.05)
    expect = np.clip(np.rint(w.blocks[0].qkv.weight / 0.01), -4, 3)
    assert np.array_equal(g["blocks.0.attn.qkv"].weight, expect)
    assert g["blocks.0.mlp.gelu"].out_range.lo == 0
    assert g["blocks.0.norm2"].out_scale == plain["blocks.0.norm2"].out_scale


def _k_step(graph, cfg) -> float:
    """The observed K step: the requant table's output scale of the K channels."""
    s = np.asarray(graph["blocks.1.attn.qkv.requant"].out_scale).reshape(-1)
    return float(s[cfg.embed_dim])


def test_fixed_scales_errors(digits_model):
    from hgpipe.quant import quantize_model
    from tests.conftest import images_for
    cfg, w = digits_model
    with pytest.raises(QuantError, match=r"scales\['blocks.0.norm1'\]=0: expected a positive"):
        QuantConfig(scales={"blocks.0.norm1": 0})
    with pytest.raises(QuantError, match="'blocks.7.norm1': no such tap or weight"):
        quantize_model(cfg, w, images_for(cfg, 2), QuantConfig(scales={"blocks.7.norm1": 0.1}))


def test_every_step_name_is_applied(digits_model):
    """Each name ``step_names`` offers reaches its stage (the builder asserts it used them
    all): fixing every one gives those steps, residual steps rounded up to the skip's times
    a power of two."""
    from hgpipe.quant import quantize_model
    from hgpipe.quant.calibrate import step_names
    from tests.conftest import images_for
    cfg, w = digits_model
    names, signs = step_names(cfg)
    g = quantize_model(cfg, w, images_for(cfg, 4), QuantConfig(
        scales={n: 0.05 for n in names}, signs={n: False for n in signs}))
    for st in g.stages:
        if st.kind in ("layernorm", "softmax") or st.name.endswith(".gelu"):
            assert st.out_scale == 0.05, st.name
        if st.kind == "add":
            assert st.out_scale == g["tokens"].out_scale == 0.05
    assert g.input_scale == 0.05
