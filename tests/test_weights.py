"""Weights: timm names, the three file formats, and errors naming the tensor."""

import numpy as np
import pytest
import torch

from hgpipe.errors import WeightsError
from hgpipe.model import load_weights, preset, random_weights, save_weights
from hgpipe.model.weights import expected_shapes, from_state_dict


@pytest.fixture()
def micro():
    cfg = preset("vit-micro")
    return cfg, random_weights(cfg, seed=7)


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], rtol=0, atol=1e-6, err_msg=k)


def test_timm_names():
    names = set(expected_shapes(preset("deit-tiny")))
    for n in ("patch_embed.proj.weight", "cls_token", "pos_embed", "blocks.11.norm1.weight",
              "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.3.attn.proj.bias",
              "blocks.5.mlp.fc1.weight", "blocks.5.mlp.fc2.bias", "norm.weight", "head.bias"):
        assert n in names
    assert expected_shapes(preset("deit-tiny"))["pos_embed"] == (1, 197, 192)
    assert len(names) == 4 + 12 * 12 + 4


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_roundtrip_npz_safetensors(micro, tmp_path, suffix):
    cfg, w = micro
    save_weights(w, tmp_path / f"w{suffix}")
    _same(load_weights(cfg, tmp_path / f"w{suffix}"), w)


@pytest.mark.parametrize("wrapped", [False, True])
def test_pth_state_dict_and_deit_checkpoint(micro, tmp_path, wrapped):
    cfg, w = micro
    sd = {k: torch.tensor(v, dtype=torch.float32) for k, v in w.state_dict().items()}
    torch.save({"model": sd, "epoch": 3} if wrapped else sd, tmp_path / "w.pth")
    _same(load_weights(cfg, tmp_path / "w.pth"), w)


def test_missing_extra_misshaped(micro, tmp_path):
    cfg, w = micro
    sd = w.state_dict()
    bad = dict(sd)
    del bad["blocks.0.mlp.fc1.bias"]
    with pytest.raises(WeightsError, match=r"missing tensor 'blocks.0.mlp.fc1.bias'.*\(32,\)"):
        from_state_dict(cfg, bad)
    bad = dict(sd, **{"blocks.1.norm1.weight": np.ones(16)})
    with pytest.raises(WeightsError, match="unexpected tensor 'blocks.1.norm1.weight'"):
        from_state_dict(cfg, bad)
    bad = dict(sd, **{"head.weight": np.ones((10, 17))})
    with pytest.raises(WeightsError, match=r"'head.weight' has shape \(10, 17\): expected "
                                           r"\(10, 16\)"):
        from_state_dict(cfg, bad)
    bad = dict(sd, **{"cls_token": np.full((1, 1, 16), np.nan)})
    with pytest.raises(WeightsError, match="'cls_token' holds NaN"):
        from_state_dict(cfg, bad)
    # the same errors come through every file format
    np.savez(tmp_path / "m.npz", **{k: v for k, v in sd.items() if k != "norm.bias"})
    with pytest.raises(WeightsError, match="missing tensor 'norm.bias'"):
        load_weights(cfg, tmp_path / "m.npz")
    torch.save({k: torch.tensor(v) for k, v in sd.items() if k != "pos_embed"},
               tmp_path / "m.pth")
    with pytest.raises(WeightsError, match="missing tensor 'pos_embed'"):
        load_weights(cfg, tmp_path / "m.pth")
    from safetensors.numpy import save_file
    save_file({k: np.asarray(v, np.float32) for k, v in sd.items()
               if k != "patch_embed.proj.bias"}, str(tmp_path / "m.safetensors"))
    with pytest.raises(WeightsError, match="missing tensor 'patch_embed.proj.bias'"):
        load_weights(cfg, tmp_path / "m.safetensors")


def test_unreadable_files(micro, tmp_path):
    cfg, _ = micro
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(cfg, tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="cannot read"):
        load_weights(cfg, tmp_path / "junk.npz")
    (tmp_path / "w.bin").write_bytes(b"")
    with pytest.raises(WeightsError, match="expected a .npz, .safetensors or .pth suffix"):
        load_weights(cfg, tmp_path / "w.bin")


def test_random_weights_are_deterministic():
    cfg = preset("vit-micro")
    a, b, c = random_weights(cfg, 1), random_weights(cfg, 1), random_weights(cfg, 2)
    _same(a, b)
    assert not np.allclose(a.head.weight, c.head.weight)
