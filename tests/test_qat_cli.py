"""``hgpipe qat``: fine-tuned weights and learned steps the other commands take, the same
bytes for the same seed, resumable from a checkpoint, one-line errors for bad input."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from hgpipe.cli import main
from hgpipe.model import forward, preset, random_weights

from .conftest import images_for

EPOCHS = "2"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """vit-micro's random model labels 120 random images (learnable labels); 40 more for
    validation."""
    d = tmp_path_factory.mktemp("qat")
    cfg = preset("vit-micro")
    x = images_for(cfg, 160, seed=3).astype(np.float32)
    y = forward(cfg, random_weights(cfg, 0), x).argmax(-1).astype(np.int64)
    for name, a in (("x", x[:120]), ("y", y[:120]), ("xv", x[120:]), ("yv", y[120:])):
        np.save(d / f"{name}.npy", a)
    return d


def qat(data, out, *extra):
    return main(["qat", "--model", "vit-micro", "--train-images", str(data / "x.npy"),
                 "--train-labels", str(data / "y.npy"), "--val-images", str(data / "xv.npy"),
                 "--val-labels", str(data / "yv.npy"), "--epochs", EPOCHS, "--quiet",
                 "--out", str(out), *extra])


def files(d):
    return {p.name: p.read_bytes() for p in d.iterdir() if p.name != "qat.json"}


def test_qat_writes_what_run_takes(data, tmp_path, capsys):
    out = tmp_path / "q"
    assert qat(data, out) == 0
    printed = capsys.readouterr().out
    assert "fake-quant" in printed and "integer" in printed
    res = json.loads((out / "qat.json").read_text())
    assert res["val_images"] == 40 and res["train_images"] == 120
    assert set(res["top1"]) == {"float", "fake_quant", "integer"}
    assert res["top1"]["float"] == 1.0       # the labels are the float model's own
    steps = json.loads((out / "steps.json").read_text())
    assert "blocks.0.attn.qkv.weight" in steps["scales"] and "tokens" in steps["scales"]
    # the integer graph the other commands build from these files: the same top-1
    assert main(["run", "--model", "vit-micro", "--weights", str(out / "weights.safetensors"),
                 "--steps", str(out / "steps.json"), "--images", str(data / "xv.npy"),
                 "--calib", str(data / "x.npy"), "--out", str(tmp_path / "l.npy")]) == 0
    top1 = float(np.mean(np.load(tmp_path / "l.npy").argmax(-1) == np.load(data / "yv.npy")))
    assert top1 == res["top1"]["integer"]


def test_same_seed_same_bytes_and_resume(data, tmp_path, capsys):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert qat(data, a) == 0 and qat(data, b) == 0
    assert files(a) == files(b)
    ck = tmp_path / "state.pt"
    assert qat(data, c, "--checkpoint", str(ck), "--stop-after", "1") == 0
    assert "stopped after epoch 1 of 2" in capsys.readouterr().out
    assert ck.is_file() and not c.exists()
    assert qat(data, c, "--checkpoint", str(ck)) == 0
    assert files(c) == files(a)          # resumed: the same as never stopped
    assert qat(data, tmp_path / "d", "--checkpoint", str(ck), "--seed", "1") == 2
    assert "other settings" in capsys.readouterr().err


def test_a_foreign_checkpoint_is_not_touched(data, tmp_path, capsys):
    ck = tmp_path / "notes.pt"
    ck.write_text("mine")
    assert qat(data, tmp_path / "o", "--checkpoint", str(ck)) == 2
    assert "is not an hgpipe qat checkpoint" in capsys.readouterr().err
    assert ck.read_text() == "mine" and not (tmp_path / "o").exists()


@pytest.mark.parametrize("case,message", [
    ("short", "train-labels: 119 labels: expected one per image (120)"),
    ("class", "train-labels: class 10 at index 0: expected 0 to 9"),
    ("float", "expected a 1-D array of integer class indices"),
    ("few", "train-images: 8 images: expected at least 10 to hold out 0.1"),
    ("half", "give both --val-images and --val-labels"),
    ("epochs", "epochs: 0: expected >= 1"),
])
def test_bad_input(data, tmp_path, capsys, case, message):
    x, y = np.load(data / "x.npy"), np.load(data / "y.npy")
    args = ["--train-images", str(data / "x.npy"), "--train-labels", str(tmp_path / "y.npy")]
    extra = ["--epochs", "1"]
    if case == "short":
        y = y[:-1]
    elif case == "class":
        y = y.copy()
        y[0] = 10
    elif case == "float":
        y = y.astype(np.float32)
    elif case == "few":
        np.save(tmp_path / "x8.npy", x[:8])
        args[1], y = str(tmp_path / "x8.npy"), y[:8]
    elif case == "half":
        extra += ["--val-images", str(data / "xv.npy")]
    elif case == "epochs":
        extra = ["--epochs", "0"]
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "o"
    assert main(["qat", "--model", "vit-micro", *args, *extra, "--quiet", "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_without_torch(data, tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    assert qat(data, tmp_path / "o") == 2
    assert "needs torch: pip install 'hgpipe[torch]'" in capsys.readouterr().err
