"""The hgpipe command: models, run, and one-line errors with exit code 2 and no output file."""

import json
import subprocess
import sys

import numpy as np
import pytest

from hgpipe.cli import main
from hgpipe.model import forward, preset, random_weights, save_weights

from .conftest import images_for


def hgpipe(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hgpipe.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_models_lists_presets(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("deit-tiny", "deit-small", "deit-base", "vit-digits", "vit-micro"):
        assert name in out


def test_run_float_and_integer(tmp_path, capsys):
    cfg = preset("vit-micro")
    x = images_for(cfg, 3, seed=1).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "nhwc.npy", x.transpose(0, 2, 3, 1))
    assert main(["run", "--model", "vit-micro", "--images", str(tmp_path / "x.npy"), "--float",
                 "--out", str(tmp_path / "f.npy")]) == 0
    f = np.load(tmp_path / "f.npy")
    np.testing.assert_allclose(f, forward(cfg, random_weights(cfg, 0), x), atol=1e-5)
    assert main(["run", "--model", "vit-micro", "--images", str(tmp_path / "nhwc.npy"),
                 "--bits", "w8a8", "--out", str(tmp_path / "q.npy")]) == 0
    q = np.load(tmp_path / "q.npy")
    out = capsys.readouterr().out
    assert q.shape == (3, 10)
    assert "image 2: class" in out and "w8a8" in out
    assert np.corrcoef(q.ravel(), f.ravel())[0, 1] > 0.95


def test_run_with_config_weights_and_calib(tmp_path):
    cfg = preset("vit-micro").replace(depth=2, class_token="extra")
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    save_weights(random_weights(cfg, 9), tmp_path / "w.safetensors")
    np.save(tmp_path / "x.npy", images_for(cfg, 2))
    np.save(tmp_path / "c.npy", images_for(cfg, 6, seed=3))
    r = hgpipe("run", "--config", tmp_path / "c.json", "--weights", tmp_path / "w.safetensors",
               "--images", tmp_path / "x.npy", "--bits", "w4a4", "--calib", tmp_path / "c.npy",
               "--out", tmp_path / "l.npy")
    assert r.returncode == 0, r.stderr
    assert "calibrating w4a4 on 6 images" in r.stderr
    assert np.load(tmp_path / "l.npy").shape == (2, 10)


@pytest.mark.parametrize("args, message", [
    (["--model", "deit-huge"], "model: 'deit-huge': expected one of"),
    (["--model", "vit-micro", "--config", "c.json"], "exactly one of --model"),
    (["--model", "vit-micro", "--bits", "w3"], "bits: 'w3': expected w<N>a<N>"),
    (["--model", "vit-micro", "--weights", "missing.npz"], "does not exist"),
    (["--config", "bad.json"], "config bad.json: unknown key 'dim'"),
    (["--model", "vit-micro", "--images", "wrong.npy"], "images: shape (2, 3, 8, 8): expected"),
    (["--model", "vit-micro", "--steps", "s.json"], "steps s.json: scales['blocks.0.norm1']='x'"
                                                    ": expected a number"),
    (["--model", "vit-micro", "--steps", "bad.json"], "steps bad.json: expected an object with "
                                                      "keys 'scales'"),
    (["--model", "vit-micro", "--steps", "t.json"], "'blocks.3.norm1': no such tap or weight"),
])
def test_errors_are_one_line_exit_2_and_write_nothing(tmp_path, args, message):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 16, 16), np.float32))
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 8, 8), np.float32))
    (tmp_path / "bad.json").write_text('{"dim": 3}')
    (tmp_path / "s.json").write_text('{"scales": {"blocks.0.norm1": "x"}}')
    (tmp_path / "t.json").write_text('{"scales": {"blocks.3.norm1": 0.5}}')
    if "--images" not in args:
        args = args + ["--images", "x.npy"]
    r = hgpipe("run", *args, "--out", "out.npy", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hgpipe: error: "), r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out.npy").exists()


def test_run_with_learned_steps(tmp_path):
    """``--steps`` fixes the named scales (the logits change with them) and the rest are
    observed as before."""
    from hgpipe.quant import write_steps
    cfg = preset("vit-micro")
    np.save(tmp_path / "x.npy", images_for(cfg, 4, seed=5))
    base = ["run", "--model", "vit-micro", "--images", tmp_path / "x.npy", "--bits", "w4a4"]
    write_steps(tmp_path / "s.json", {"blocks.0.norm1": 0.9, "blocks.0.attn.qkv.weight": 0.5},
                {"blocks.0.mlp.gelu": True})
    assert main([*map(str, base), "--out", str(tmp_path / "a.npy")]) == 0
    assert main([*map(str, base), "--steps", str(tmp_path / "s.json"),
                 "--out", str(tmp_path / "b.npy")]) == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == b.shape == (4, 10) and not np.array_equal(a, b)


@pytest.mark.parametrize("args, message", [
    (["plan", "--model", "vit-micro", "--observer", "foo", "--out", "o"], "--observer"),
    (["plan", "--model", "vit-micro", "--tp", "two", "--out", "o"], "--tp: invalid int"),
    (["plan", "--model", "vit-micro"], "--out"),
    (["frobnicate"], "invalid choice"),
])
def test_argument_errors_are_one_line_too(tmp_path, args, message):
    r = hgpipe(*args, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("hgpipe: error: ") and message in r.stderr, r.stderr
    assert not any(tmp_path.iterdir())
