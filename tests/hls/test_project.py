"""The whole HLS project: the plan's part list one to one, C-simulated end to end bit-exact
against the golden model (also padded), deterministic, warning-free, and able to fail."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from hgpipe.hls.design import LINK_DEPTH, hls_files
from hgpipe.hls.kernels import IMPL
from hgpipe.hls.project import csim
from hgpipe.plan import make_plan
from hgpipe.plan.netlist import (INPUT_FIFO, FifoPart, ForkPart, GearboxPart, MergePart,
                                 StageUnit, netlist)
from hgpipe.resources.board import load_board


def hgpipe(*args):
    return subprocess.run([sys.executable, "-m", "hgpipe.cli", *map(str, args)],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def micro(hls_graphs):
    graph, patches = hls_graphs["w3a3"]
    return graph, make_plan(graph, load_board("zcu102"), model="vit-micro"), patches


def test_sim_cli_vit_micro(tmp_path):
    """The user's command: plan, render, compile, C-simulate, report; bit-exact."""
    out = tmp_path / "o"
    r = hgpipe("sim", "--model", "vit-micro", "--board", "zcu102", "--backend", "hls",
               "--images", 3, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "BIT-EXACT" in r.stdout
    res = json.loads((out / "sim.json").read_text())
    assert res["bit_exact"] and res["images"] == 3 and res["mismatches"] == 0
    for f in ("run_hls.tcl", "top.cpp", "top.h", "tb.cpp", "plumbing.h", "hgpipe.h",
              "vectors/in.txt", "vectors/expected.txt"):
        assert (out / "hls" / f).is_file(), f
    assert "set_part {xczu9eg-ffvb1156-2-e}" in (out / "hls" / "run_hls.tcl").read_text()
    assert (out / "plan.json").is_file() and (out / "report.md").is_file()


@pytest.mark.parametrize("bits,tp", [("w4a4", 2), ("w3a3", 4)])
def test_padded_prime_tokens_end_to_end(graphs, bits, tp):
    """vit-digits (17 tokens, a prime) streamed as 18 or 20 rows: the padded design's
    logits equal the unpadded golden model's."""
    from ..conftest import images_for
    graph = graphs[bits]
    plan = make_plan(graph, load_board("vck190"), model="vit-digits", tp=tp)
    assert plan.layout.rows > plan.layout.tokens == 17
    r = csim(graph, plan, graph.encode_images(images_for(graph.config, 3, seed=4)))
    assert r.bit_exact, r.first_mismatch
    assert r.warnings == ""


def test_parts_one_to_one(micro):
    """Every part of the plan's netlist is built once: a call per stage unit, fork,
    gearbox, merge (and the input's register slice), a stream per FIFO at its depth in
    the memory the plan placed it in."""
    graph, plan, _ = micro
    net = netlist(plan.laid_out(graph), plan)
    top = hls_files(graph, plan)["top.cpp"]
    calls = re.findall(r"^    (\w+)(?:<\d+>)?\(", top, re.M)
    procs = [p for p in net.parts if not isinstance(p, FifoPart) or p.name == INPUT_FIFO]
    units = {}
    for p in procs:
        key = p.owner.replace(".", "_") if isinstance(p, StageUnit) else p.name
        units[key] = units.get(key, 0) + 1
    assert sorted(calls) == sorted(k for k, n in units.items() for _ in range(n))
    assert any(isinstance(p, GearboxPart) for p in net.parts)
    assert any(isinstance(p, (ForkPart, MergePart)) for p in net.parts)
    for p in net.parts:
        if isinstance(p, FifoPart) and p.name != INPUT_FIFO:
            assert f"variable={p.name} depth={p.beats})" in top, p.name
            if p.memory in IMPL:
                assert f"variable={p.name} type=fifo impl={IMPL[p.memory]})" in top
    assert f"depth={LINK_DEPTH})" in top


def test_deterministic(micro, tmp_path):
    graph, plan, _ = micro
    assert hls_files(graph, plan) == hls_files(graph, plan)
    outs = []
    for k in range(2):
        d = tmp_path / f"g{k}"
        r = hgpipe("generate", "--model", "vit-micro", "--board", "zcu102", "--backend",
                   "hls", "--out", d, "--quiet")
        assert r.returncode == 0, r.stderr
        outs.append({p.relative_to(d): p.read_bytes() for p in (d / "hls").rglob("*")
                     if p.is_file()})
    assert outs[0] == outs[1] and len(outs[0]) > 20


def test_a_wrong_parameter_is_caught(micro):
    """One weight changed in the generated headers: the C simulation must report it."""
    graph, plan, patches = micro
    files = hls_files(graph, plan)
    name = "params/head.h"
    body = files[name]
    i = body.index("head_weight")
    j = body.index("{{", i) + 2
    k = body.index(",", j)
    w = int(body[j:k])
    files[name] = body[:j] + str(-w if w else 1) + body[k:]
    r = csim(graph, plan, patches, files=files)
    assert not r.bit_exact and r.mismatches > 0 and r.first_mismatch is not None


def test_a_narrow_width_is_caught(micro):
    """Kernels read their parameters through the ap_int type HLS builds them at: one bit
    fewer for the patch embedding's 3-bit weights wraps them, as the hardware would, and
    the C simulation must report it."""
    graph, plan, patches = micro
    files = hls_files(graph, plan)
    name = "stages/patch_embed.h"
    m = re.search(r"ap_int<(\d+)>\(patch_embed_weight", files[name])
    bits = int(m.group(1))
    files[name] = files[name].replace(m.group(0), f"ap_int<{bits - 1}>(patch_embed_weight")
    assert not csim(graph, plan, patches, files=files).bit_exact


@pytest.mark.parametrize("args,message", [
    (["--backend", "vhdl"], "backend='vhdl': expected one of rtl, hls"),
    (["--backend", "hls", "--stall", "0.3"], "stall: 0.3: C simulation has no cycles"),
    (["--backend", "hls", "--offchip", "all", "--bits", "w4a4", "--target-ii", "1024"],
     "the plan streams head's weights from DDR"),
])
def test_bad_input(tmp_path, args, message):
    out = tmp_path / "o"
    r = hgpipe("sim", "--model", "vit-micro", "--board", "zcu102", "--images", 2, "--out",
               out, "--quiet", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
