"""The fake-quantized training model (``hgpipe.quant.torch_vit``) and the integer graph agree
on the residual stream: the steps it learns are tied by powers of two exactly as hgpipe's
residual adds shift the skip, so the graph built with them uses the same shifts."""

from __future__ import annotations

import math

import numpy as np
import torch

from hgpipe.model import preset
from hgpipe.quant import BitSpec, QuantConfig, quantize_model

from hgpipe.quant.fakequant import FakeQuant
from hgpipe.quant.torch_vit import TimmViT, enable_fake_quant, learned_steps, to_weights


def test_learned_residual_steps_reach_the_graph_as_its_shifts():
    cfg = preset("vit-micro")
    torch.manual_seed(0)
    model = TimmViT(cfg)
    with torch.no_grad():   # a float model whose residual stream grows block to block
        for b in model.blocks:
            b.attn.proj.weight.mul_(8.0)
            b.mlp.fc2.weight.mul_(8.0)
    enable_fake_quant(model, 3, 3, 3)
    x = np.random.default_rng(0).normal(size=(32, cfg.in_chans, cfg.image_size,
                                              cfg.image_size))
    with torch.no_grad():
        model(torch.tensor(x, dtype=torch.float32))
    scales, signs = learned_steps(model)
    chain = ["tokens"] + [f"blocks.{i}.{a}" for i in range(cfg.depth) for a in ("add1", "add2")]
    shifts = [math.log2(scales[b] / scales[a]) for a, b in zip(chain, chain[1:])]
    assert all(k >= 0 and k == round(k) for k in shifts) and sum(shifts) > 0
    g = quantize_model(cfg, to_weights(model), x[:8], QuantConfig(
        bits=BitSpec.parse("w3a3"), scales=scales, signs=signs, bias_correction=False))
    assert [g[n].skip_shift for n in chain[1:]] == [round(k) for k in shifts]
    assert [g[n].out_scale for n in chain[1:]] == [scales[n] for n in chain[1:]]


def test_evaluation_quantizes_at_the_step_itself_whatever_the_batch():
    """In evaluation a quantizer rounds at its learned step exactly, as the integer graph
    does: LSQ's gradient-scaled form of the step is an ULP off for some batch sizes (here
    3 values at step 0.1), and one ULP moves a 3-bit model's top-1."""
    fq = FakeQuant()
    fq.set(3, True)
    with torch.no_grad():
        fq.step.fill_(0.1)
    fq.eval()
    step = fq.step.detach()
    for n in (3, 5, 450):
        x = torch.linspace(-0.5, 0.4, n)
        expect = torch.clamp(torch.round(x / step), -4, 3) * step
        assert torch.equal(fq(x), expect), n
