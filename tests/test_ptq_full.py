"""``--ptq full``: block reconstruction learns each weight's rounding (floor or ceil, on the
grid the integer graph takes exactly) and the activation steps, and the block's output
comes closer to the float model's than rounding to nearest at the observed steps does."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
import torch

from hgpipe.cli import main
from hgpipe.model import preset, random_weights, save_weights
from hgpipe.quant import BitSpec, QuantConfig, quantize_model
from hgpipe.quant.qat import prepare
from hgpipe.quant.reconstruct import (Reconstruction, mixed_batch, reconstruct,
                                      reconstructed)
from hgpipe.quant.rescale import rescale_norms
from hgpipe.quant.torch_vit import from_weights

from .conftest import images_for
from .test_cli import hgpipe

BITS = BitSpec.parse("w3a3")
FAST = Reconstruction(iters=400, output_iters=0, seed=0, rescale=0)   # grids as observed


@pytest.fixture(scope="module")
def micro():
    cfg = preset("vit-micro")
    return cfg, random_weights(cfg, 0), images_for(cfg, 64, seed=1), images_for(cfg, 64, seed=2)


def _linears(model):
    for i, b in enumerate(model.blocks):
        for name, lin in (("attn.qkv", b.attn.qkv), ("attn.proj", b.attn.proj),
                          ("mlp.fc1", b.mlp.fc1), ("mlp.fc2", b.mlp.fc2)):
            yield f"blocks.{i}.{name}", lin


def _block_error(model, fp, x) -> float:
    """Mean squared distance of block 0's output from the float model's, both fed the
    float model's own embedding (so only the block's quantization differs)."""
    with torch.no_grad():
        t = fp.embed(torch.tensor(x, dtype=torch.float32))
        model.eval()
        err = float((model.blocks[0](t) - fp.blocks[0](t)).pow(2).mean())
        model.train()
        return err


def test_rounding_is_floor_or_ceil_on_the_grid_and_the_block_comes_closer(micro):
    cfg, w, calib, held_out = micro
    fp = from_weights(cfg, w).eval()
    q = reconstructed(cfg, w, calib, BITS, FAST)
    nearest = prepare(fp, calib, BITS, seed=0)     # observed steps, rounding to nearest
    moved = 0
    for (name, lin), (_, lin0) in zip(_linears(q), _linears(nearest)):
        step = float(lin.wq.step)
        assert step == float(lin0.wq.step.detach()), name   # the grid is the observed one
        t = lin.weight.detach().double().numpy() / step
        assert np.abs(t - np.rint(t)).max() < 1e-4, name    # on the grid
        ideal = lin0.weight.detach().double().numpy() / step
        lo, hi = -4, 3
        assert np.all((np.rint(t) == np.clip(np.floor(ideal), lo, hi))
                      | (np.rint(t) == np.clip(np.ceil(ideal), lo, hi))), name
        moved += int((np.rint(t) != np.clip(np.rint(ideal), lo, hi)).sum())
    assert moved > 0                                        # some roundings were learned
    for x in (calib, held_out):
        assert _block_error(q, fp, x) < 0.8 * _block_error(nearest, fp, x)


def test_each_step_switches_off(micro):
    """The ablation's switches: without AdaRound the weights stay where rounding to nearest
    puts them; without LSQ the activation steps stay the observed ones; the biases learn
    either way."""
    cfg, w, calib, _ = micro
    fp = from_weights(cfg, w).eval()
    nearest = prepare(fp, calib, BITS, seed=0)
    q = reconstructed(cfg, w, calib, BITS, Reconstruction(iters=100, output_iters=0, seed=0,
                                                          rounding=False, steps=False,
                                                          rescale=0))
    for (name, lin), (_, lin0) in zip(_linears(q), _linears(nearest)):
        step = float(lin.wq.step.detach())
        ints = torch.clamp(torch.round(lin.weight / step), -4, 3)
        ints0 = torch.clamp(torch.round(lin0.weight / step), -4, 3)
        assert torch.equal(ints, ints0), name
    b, b0 = q.blocks[0], nearest.blocks[0]
    for tap, fq in b.act_quantizers().items():
        assert float(fq.step.detach()) == float(b0.act_quantizers()[tap].step.detach()), tap
    assert not torch.equal(b.attn.proj.bias, b0.attn.proj.bias)
    learned = reconstructed(cfg, w, calib, BITS, Reconstruction(iters=100, output_iters=0,
                                                                seed=0, rounding=False,
                                                                rescale=0))
    assert float(learned.blocks[0].n1_q.step.detach()) != float(b0.n1_q.step.detach())


def test_the_output_fit_moves_the_weights_on_their_grids(micro):
    """``weight_lr``: the final fit moves weights to other points of their grids and they
    end on the grid; at 0 it leaves them where the blocks' fits froze them."""
    cfg, w, calib, _ = micro
    base = dict(iters=50, output_iters=60, seed=0, rescale=0)
    blocks = reconstructed(cfg, w, calib, BITS, Reconstruction(**{**base, "output_iters": 0}))
    frozen = reconstructed(cfg, w, calib, BITS, Reconstruction(**base, weight_lr=0.0))
    moved = reconstructed(cfg, w, calib, BITS, Reconstruction(**base, weight_lr=5e-3))
    changed = 0
    for (name, lin), (_, lin0), (_, lin1) in zip(_linears(moved), _linears(frozen),
                                                 _linears(blocks)):
        torch.testing.assert_close(lin0.weight, lin1.weight, rtol=0, atol=0)
        step = float(lin.wq.step)
        assert step == float(lin1.wq.step), name               # the grid is the blocks'
        t = lin.weight.detach().double().numpy() / step
        assert np.abs(t - np.rint(t)).max() < 1e-4, name       # on the grid
        assert -4 <= np.rint(t).min() and np.rint(t).max() <= 3, name
        changed += int((np.rint(t) != np.rint(lin1.weight.detach().double().numpy()
                                              / step)).sum())
    assert changed > 0
    assert Reconstruction().weight_lr > 0                      # on by default


@pytest.mark.parametrize("mix", [0.0, 0.5, 1.0])
def test_the_output_fit_mixes_a_share_of_its_images(mix):
    """Calibration image i is all i % 64: a drawn image is whole (an integer everywhere)
    unless mixed, and a mix is one value between two images' (each image its own weight)."""
    x = (torch.arange(4096) % 64).float()[:, None, None, None].expand(4096, 1, 8, 8)
    gen = torch.Generator().manual_seed(0)
    xb = mixed_batch(x, Reconstruction(batch=2000, mix=mix), gen)
    assert xb.shape == (2000, 1, 8, 8)
    v = xb.reshape(2000, -1)
    assert torch.equal(v, v[:, :1].expand_as(v))       # one weight for the whole image
    assert float(v.min()) >= 0 and float(v.max()) <= 63
    whole = int((v[:, 0] == v[:, 0].round()).sum())
    # unmixed, or mixed with itself (1 in 64): binomial bounds at 5 sigma
    p = (1 - mix) + mix / 64
    sigma = (2000 * p * (1 - p)) ** 0.5
    assert abs(whole - 2000 * p) <= 5 * sigma + 1e-9, (whole, 2000 * p)
    assert Reconstruction().mix == 0.5


@pytest.mark.parametrize("alpha, qkv_bias", [(0.25, True), (1.0, True), (1.0, False)])
def test_rescaling_keeps_the_function_and_evens_the_norm_outputs(micro, alpha, qkv_bias):
    """The float model computes the same logits; each LayerNorm output's half-ranges spread
    as ``h**(1 - alpha)`` (at 1 all equal) and it is centred on the calibration images,
    but for norm1 where the QKV linear has no bias to take the centre."""
    cfg, w, calib, held_out = micro
    if not qkv_bias:
        cfg = dataclasses.replace(cfg, qkv_bias=False)
        w = random_weights(cfg, 0)
    fp = from_weights(cfg, w).eval()
    moved = from_weights(cfg, w).eval()
    x = torch.tensor(calib, dtype=torch.float32)
    rescale_norms(moved, x, alpha)
    with torch.no_grad():
        for imgs in (calib, held_out):
            t = torch.tensor(imgs, dtype=torch.float32)
            np.testing.assert_allclose(moved(t).numpy(), fp(t).numpy(), rtol=0, atol=1e-4)
        h, h0 = moved.embed(x), fp.embed(x)
        for b, b0 in zip(moved.blocks, fp.blocks):
            y, y0 = b.norm1(h).reshape(-1, cfg.embed_dim), b0.norm1(h0).reshape(-1, cfg.embed_dim)
            lo, hi = y.min(0).values, y.max(0).values
            if qkv_bias:
                np.testing.assert_allclose((hi + lo).numpy(), 0, atol=1e-4)    # centred
            else:
                assert np.abs((hi + lo).numpy()).max() > 1e-2
            half, half0 = (hi - lo) / 2, (y0.max(0).values - y0.min(0).values) / 2
            ratio = (half / half0 ** (1 - alpha)).numpy()
            np.testing.assert_allclose(ratio, ratio.mean(), rtol=1e-4)
            h, h0 = b(h), b0(h0)


def test_rescaling_is_on_by_default_and_switches_off(micro):
    """The default reconstruction starts from the rescaled model (its LayerNorm affines and
    the linears they feed differ from the float model's), ``rescale=0`` from the model
    itself; either way the integer graph takes what it learned."""
    cfg, w, calib, _ = micro
    fp = from_weights(cfg, w)
    on = reconstructed(cfg, w, calib, BITS, Reconstruction(iters=5, output_iters=0, seed=0))
    off = reconstructed(cfg, w, calib, BITS, Reconstruction(iters=5, output_iters=0, seed=0,
                                                             rescale=0))
    assert not torch.allclose(on.blocks[0].norm1.weight, fp.blocks[0].norm1.weight)
    torch.testing.assert_close(off.blocks[0].norm1.weight, fp.blocks[0].norm1.weight)


def test_the_graph_takes_the_learned_grid_and_steps(micro):
    cfg, w, calib, _ = micro
    q = reconstructed(cfg, w, calib, BITS, Reconstruction(iters=50, output_iters=20, seed=0))
    w2, scales, signs = reconstruct(cfg, w, calib, BITS,
                                    Reconstruction(iters=50, output_iters=20, seed=0))
    g = quantize_model(cfg, w2, calib[:8], QuantConfig(bits=BITS, scales=scales, signs=signs,
                                                       bias_correction=False))
    for name, lin in _linears(q):       # and the same seed gives the same model
        ints = np.rint(lin.weight.detach().double().numpy() / float(lin.wq.step))
        np.testing.assert_array_equal(g[name].weight, ints.astype(np.int64))
    assert g["blocks.0.norm1"].out_scale == scales["blocks.0.norm1"]


def test_cli_runs_full_ptq(tmp_path):
    cfg = preset("vit-micro")
    save_weights(random_weights(cfg, 3), tmp_path / "w.safetensors")
    np.save(tmp_path / "x.npy", images_for(cfg, 2))
    np.save(tmp_path / "c.npy", images_for(cfg, 16, seed=4))
    base = ["run", "--model", "vit-micro", "--weights", tmp_path / "w.safetensors",
            "--images", tmp_path / "x.npy", "--calib", tmp_path / "c.npy"]
    r = hgpipe(*base, "--ptq", "full", "--ptq-iters", "30", "--out", tmp_path / "f.npy")
    assert r.returncode == 0, r.stderr
    assert "reconstructing w3a3 block by block on 16 images" in r.stderr
    assert main([*map(str, base), "--out", str(tmp_path / "b.npy")]) == 0
    full, basic = np.load(tmp_path / "f.npy"), np.load(tmp_path / "b.npy")
    assert full.shape == basic.shape == (2, 10) and not np.array_equal(full, basic)


@pytest.mark.parametrize("args, message", [
    (["--steps", "s.json"], "ptq: full with --steps: expected --ptq basic"),
    (["--per-channel"], "ptq: full with --per-channel: expected --ptq basic"),
    (["--ptq-iters", "0"], "ptq-iters: 0: expected >= 1"),
])
def test_full_ptq_refusals_are_one_line(tmp_path, args, message):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 16, 16), np.float32))
    (tmp_path / "s.json").write_text('{"scales": {"blocks.0.norm1": 0.5}}')
    r = hgpipe("run", "--model", "vit-micro", "--images", "x.npy", "--ptq", "full", *args,
               "--out", "out.npy", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("hgpipe: error: ") and message in r.stderr, r.stderr
    assert not (tmp_path / "out.npy").exists()


def test_full_ptq_without_torch_is_one_line(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 16, 16), np.float32))
    assert main(["run", "--model", "vit-micro", "--images", str(tmp_path / "x.npy"),
                 "--ptq", "full", "--out", str(tmp_path / "o.npy")]) == 2
    assert "ptq: full: needs torch: pip install 'hgpipe[torch]'" in capsys.readouterr().err
    assert not (tmp_path / "o.npy").exists()
