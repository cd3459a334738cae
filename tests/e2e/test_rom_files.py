"""ROM contents as data (``hgpipe.rtl.separate``): parts that differ only by their ROM
words share one module, each instance loads its own ``$readmemh`` files, and the whole
accelerator stays bit-exact; a missing or wrong file is caught."""

from __future__ import annotations

import dataclasses
import re

import pytest

from hgpipe.model import preset, random_weights
from hgpipe.plan import make_plan
from hgpipe.quant import BitSpec, QuantConfig, quantize_model
from hgpipe.resources.board import load_board
from hgpipe.rtl.generate import generate
from sim import e2e

from ..conftest import images_for


@pytest.fixture(scope="module")
def deep():
    """vit-micro with three encoder blocks: their stages differ by weights and tables."""
    cfg = preset("vit-micro").replace(depth=3)
    g = quantize_model(cfg, random_weights(cfg, seed=4), images_for(cfg, 8),
                       QuantConfig(bits=BitSpec.parse("w4a4")))
    plan = make_plan(g, load_board("vck190"), target_ii=1024)
    acc, rtl, stats = generate(g, plan)
    return g, plan, acc, rtl, stats


def _instances(text: str) -> dict[str, str]:
    """instance -> module of the top level's part instances that load ROM files."""
    top = text[:text.index("endmodule")]
    return {i: m for m, i in re.findall(
        r'^  (hgpipe_\w+) `HGPIPE_ROMS\("\w+\."\) (\w+) \($', top, re.M)}


def test_blocks_share_modules_and_keep_their_own_rom_files(deep):
    g, plan, acc, rtl, stats = deep
    assert stats["structures"] < stats["modules"] < stats["parts"]
    inst = _instances(rtl.verilog)
    fc1 = {i: m for i, m in inst.items() if i.endswith("mlp_fc1")}
    assert len(fc1) == 3 and len(set(fc1.values())) < 3     # a module shared by blocks
    shared = [i for i in fc1 if list(fc1.values()).count(fc1[i]) > 1]
    weights = [rtl.roms[f"roms/{i}.1.hex"] for i in shared]
    assert len(set(weights)) == len(weights)                 # each block its own words
    # every file an instance names exists, and nothing else was written
    slots = {i: len([p for p in rtl.roms if p.startswith(f"roms/{i}.")]) for i in inst}
    assert all(slots.values()) and sum(slots.values()) == len(rtl.roms)
    assert '`define HGPIPE_ROM_DIR "roms/"' in rtl.verilog
    # no ROM word is left in the Verilog: the contents are data
    assert not re.search(r"mem\[\d+\] = ", rtl.verilog)
    assert stats["rom_files"] == len(rtl.roms)


def test_shared_modules_are_bit_exact_and_a_wrong_file_is_caught(deep, tmp_path):
    g, plan, acc, rtl, _ = deep
    patches = g.encode_images(images_for(g.config, 3, seed=2))
    kw = dict(cycles_per_image=plan.ii, testbench=e2e.Testbench.NATIVE)
    good = e2e.simulate(g, acc, patches, source=rtl, stall=0.3, **kw)
    assert good.bit_exact and good.images == 3
    # block 2's fc1 given block 1's weights: the same structure, other contents
    files = dict(rtl.roms)
    files["roms/blocks_2_mlp_fc1.1.hex"] = files["roms/blocks_1_mlp_fc1.1.hex"]
    swapped = e2e.simulate(g, acc, patches, source=dataclasses.replace(rtl, roms=files), **kw)
    assert not swapped.bit_exact and swapped.mismatches > 0
