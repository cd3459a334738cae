"""``hgpipe synth`` on a small design: every distinct module synthesized by Yosys, and none
deeper than the budget of the board clock (the check that keeps the FPS figures true)."""

from __future__ import annotations

import json
import re

import pytest

from hgpipe.cli import main


@pytest.fixture(scope="module")
def micro_synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    rc = main(["synth", "--model", "vit-micro", "--bits", "w4a4", "--target-ii", "1024",
               "--board", "vck190", "--out", str(out), "--quiet"])
    assert rc == 0
    return out, json.loads((out / "synth.json").read_text())


def test_every_module_of_a_small_design_is_within_the_425_mhz_budget(micro_synth):
    out, j = micro_synth
    assert j["clock_mhz"] == 425 and j["budget"]["lut_levels"] == 9
    over = [(m["kind"], m["worst"], m["max_luts"]["luts"]) for m in j["modules"]
            if m["over_budget"]]
    assert not over, over
    assert j["within_budget"] and j["fmax_mhz"] >= 425
    assert j["fps_at_estimate"] == j["fps_at_board_clock"]
    # paths through the top level, out of one part into the next, are bounded too
    cross = j["crossing"]
    assert cross["within_budget"] and 0 < cross["logic_ns"] <= j["budget"]["logic_ns"]
    assert "." in cross["from"] and "." in cross["into"]   # instance.port -> instance.port


def test_synth_covers_every_distinct_part_and_weighs_instances(micro_synth):
    out, j = micro_synth
    top = (out / "rtl" / "hgpipe_top.v").read_text()
    inst_re = r"^  (hgpipe_[a-z]+_[0-9a-f]{12}) (?:`HGPIPE_ROMS\(.*\) )?\S+ \($"  # ROM files
    parts = set(re.findall(inst_re, top, re.M))
    assert {m["module"] for m in j["modules"]} == parts
    inst = sum(m["instances"] for m in j["modules"])
    assert inst == len(re.findall(inst_re, top, re.M))
    assert j["totals"]["lut"] == sum(m["lut"] * m["instances"] for m in j["modules"])
    kinds = {m["kind"] for m in j["modules"]}
    assert {"linearstage", "qkhead", "avhead", "softmaxstage", "layernormstage",
            "lutstage", "fifo"} <= kinds
    md = (out / "synth.md").read_text()
    assert "estimated Fmax" in md and md.count("| hgpipe_") == len(j["modules"])


@pytest.mark.parametrize("argv, field", [
    (["--jobs", "0"], "jobs"),
    (["--instances", "a b"], "instances"),
    (["--quiet", "--instances", "blocks_0_,nosuch"], "instances: 'nosuch'"),  # no part
])
def test_bad_synth_arguments_are_one_line(tmp_path, capsys, argv, field):
    rc = main(["synth", "--model", "vit-micro", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"hgpipe: error: {field}")
    assert not (tmp_path / "o").exists()
