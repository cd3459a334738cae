"""Output safety: a user's files are never lost, a result appears whole or not at all, a
signal leaves nothing behind, and bad paths and non-finite data are refused up front."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hgpipe.cli import main
from hgpipe.interrupt import descendants
from hgpipe.outdir import MANIFEST

PLAN = ["plan", "--model", "vit-micro", "--quiet"]


def _one_line_error(capsys, code, *words):
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def _no_leftovers(parent: Path) -> None:
    assert not [p.name for p in parent.iterdir() if p.name.startswith(".hgpipe-")]


def test_a_users_file_in_the_out_dir_survives(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code = main(PLAN + ["--out", str(out)])
    _one_line_error(capsys, code, "out:", "did not write", "notes.txt", "--force")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    _no_leftovers(tmp_path)


def test_a_users_file_beside_an_earlier_result_survives(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(PLAN + ["--out", str(out)]) == 0
    (out / "rtl").mkdir()
    (out / "rtl" / "mine.v").write_text("module m; endmodule\n")
    code = main(PLAN + ["--out", str(out)])
    _one_line_error(capsys, code, "rtl")
    assert (out / "rtl" / "mine.v").is_file()


def test_a_new_result_replaces_the_earlier_one_stale_files_included(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(PLAN + ["--out", str(out)]) == 0
    # an earlier result with more files (as `sim` leaves a sim.json and an rtl/ tree)
    (out / "sim.json").write_text("{}")
    (out / "rtl").mkdir()
    (out / "rtl" / "top.v").write_text("// old\n")
    m = json.loads((out / MANIFEST).read_text())
    m["files"] += ["rtl/top.v", "sim.json"]
    (out / MANIFEST).write_text(json.dumps(m))
    assert main(PLAN + ["--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "sim.json" not in names and "rtl" not in names and "plan.json" in names
    assert json.loads((out / MANIFEST).read_text())["files"] == sorted(
        n for n in names if n != MANIFEST)
    _no_leftovers(tmp_path)


def test_force_replaces_a_foreign_directory_whole(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(PLAN + ["--out", str(out), "--force"]) == 0
    assert not (out / "notes.txt").exists() and (out / "plan.json").is_file()


@pytest.mark.parametrize("make, words", [
    (lambda t: (t / "f").write_text("x") and t / "f", ["exists and is not a directory"]),
    (lambda t: (t / "f").write_text("x") and t / "f" / "sub", ["is not a directory"]),
    (lambda t: "", ["expected a path"]),
    (lambda t: "/proc/hgpipe-out", ["cannot write in"]),
    (lambda t: "/", ["root or mount point"]),
    (lambda t: (t / "d").mkdir() or os.symlink(t / "d", t / "l") or t / "l",
     ["symbolic link"]),
])
def test_bad_out_paths_are_refused_before_any_work(tmp_path, capsys, make, words):
    out = make(tmp_path)
    t0 = time.perf_counter()
    code = main(["plan", "--model", "deit-base", "--quiet", "--out", str(out)])
    _one_line_error(capsys, code, "out:", *words)
    assert time.perf_counter() - t0 < 5      # before calibrating a DeiT-base
    _no_leftovers(tmp_path)


def test_run_replaces_its_own_logits_but_not_a_users_file(tmp_path, capsys):
    from .conftest import images_for
    from hgpipe.model import preset
    x = tmp_path / "x.npy"
    np.save(x, images_for(preset("vit-micro"), 2, seed=0))
    out = tmp_path / "logits.npy"
    args = ["run", "--model", "vit-micro", "--images", str(x), "--float", "--out", str(out)]
    assert main(args) == 0 and main(args) == 0          # its own logits: replaced
    user = tmp_path / "mine.npy"
    np.save(user, np.arange(4))
    code = main(args[:-1] + [str(user)])
    _one_line_error(capsys, code, "not a file hgpipe writes", "--force")
    assert np.array_equal(np.load(user), np.arange(4))
    assert main(args[:-1] + [str(user), "--force"]) == 0
    code = main(args[:-1] + [str(tmp_path)])
    _one_line_error(capsys, code, "is a directory")


@pytest.mark.parametrize("cmd", ["generate", "sim"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e300])
def test_a_non_finite_or_huge_pixel_is_refused(tmp_path, capsys, cmd, bad):
    from .conftest import images_for
    from hgpipe.model import preset
    x = images_for(preset("vit-micro"), 2, seed=0)
    x[1, 0, 3, 4] = bad
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    code = main([cmd, "--model", "vit-micro", "--quiet", "--inputs", str(tmp_path / "x.npy"),
                 "--out", str(out)])
    _one_line_error(capsys, code, "inputs:", "image 1")
    assert not out.exists()
    _no_leftovers(tmp_path)


def test_complex_images_are_refused(tmp_path, capsys):
    from .conftest import images_for
    from hgpipe.model import preset
    x = images_for(preset("vit-micro"), 2, seed=0).astype(np.complex128)
    np.save(tmp_path / "x.npy", x)
    code = main(["run", "--model", "vit-micro", "--float", "--images", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "l.npy")])
    _one_line_error(capsys, code, "images:", "real numbers")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                       (signal.SIGHUP, 129)])
def test_a_signal_during_conversion_leaves_no_process_and_no_partial_result(tmp_path, sig,
                                                                            code):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    p = subprocess.Popen([sys.executable, "-m", "hgpipe.cli", "generate", "--model",
                          "vit-digits-48", "--out", str(out)], stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "TMPDIR": str(tmp)})
    for line in p.stderr:       # wait until the conversion pool is at work
        if "converting" in line:
            break
    time.sleep(1.0)
    children = descendants(p.pid)
    p.send_signal(sig)
    err = p.stderr.read()
    assert p.wait(timeout=60) == code, err
    assert f"interrupted by {signal.Signals(sig).name}" in err and "Traceback" not in err, err
    assert err.strip().count("\n") == 0 or err.strip().splitlines()[-1].startswith("hgpipe:")
    assert children, "the conversion started no worker: the test did not test"
    time.sleep(0.5)
    alive = [c for c in children if _alive(c)]
    assert not alive, alive
    assert not out.exists()
    _no_leftovers(tmp_path)
    assert not any(tmp.iterdir()), list(tmp.iterdir())   # the run's temporaries too


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2] not in "ZX"


def test_sigterm_during_a_simulator_build_stops_the_build(tmp_path):
    """The simulator's make and compilers are the run's processes too."""
    out, build, tmp = tmp_path / "out", tmp_path / "build", tmp_path / "tmp"
    tmp.mkdir()
    p = subprocess.Popen([sys.executable, "-m", "hgpipe.cli", "sim", "--model", "vit-micro",
                          "--target-ii", "1024", "--images", "2", "--build-dir", str(build),
                          "--out", str(out)], stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "TMPDIR": str(tmp)})
    for line in p.stderr:
        if "building and simulating" in line:
            break
    children = []
    for _ in range(100):         # until the build has started its tools
        time.sleep(0.1)
        children = descendants(p.pid)
        if children:
            break
    time.sleep(1.0)
    children = sorted(set(children) | set(descendants(p.pid)))
    p.send_signal(signal.SIGTERM)
    err = p.stderr.read()
    assert p.wait(timeout=60) == 143, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err, err
    assert children, "no build process seen: the test did not test"
    time.sleep(0.5)
    assert not [c for c in children if _alive(c)]
    assert not out.exists()
    _no_leftovers(tmp_path)
    assert not any(tmp.iterdir()), list(tmp.iterdir())


def test_the_result_directory_has_the_usual_permissions(tmp_path):
    out = tmp_path / "out"
    assert main(PLAN + ["--out", str(out)]) == 0
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask
