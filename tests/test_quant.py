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
