"""The native testbench (``sim.native``): the whole accelerator under a generated Verilog
harness in Verilator, no Python per cycle. It must agree with the cocotb testbench on the
same vectors, catch a wrong logit and a design that stops, and report progress."""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import pytest

from hgpipe.golden.vectors import Stream, top_vectors
from hgpipe.plan import make_plan
from hgpipe.resources.board import load_board
from hgpipe.rtl.generate import TOP, generate
from sim import e2e, native, runner, share

from ..conftest import images_for


@pytest.fixture(scope="module")
def design(micro_graphs):
    graphs, _ = micro_graphs
    g = graphs["w4a4"]
    plan = make_plan(g, load_board("vck190"), target_ii=1024, status=True)
    acc, src, _ = generate(g, plan)
    patches = g.encode_images(images_for(g.config, 4, seed=3))
    bdir = native.build(src.verilog, native.harness(acc, TOP), runner.DEFAULT_BUILD,
                        optimize=False)
    return g, plan, acc, src, patches, bdir


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_native_agrees_with_cocotb(design, stall):
    g, plan, acc, src, patches, _ = design
    kw = dict(cycles_per_image=plan.ii, source=src, stall=stall, seed=5)
    a = e2e.simulate(g, acc, patches, testbench=e2e.Testbench.NATIVE, **kw)
    b = e2e.simulate(g, acc, patches, testbench=e2e.Testbench.COCOTB, **kw)
    assert a.bit_exact and b.bit_exact and a.images == b.images == 4
    if stall == 0.0:    # no random draws: the same cycles (each counts its own edges)
        assert a.measured_ii_cycles == plan.ii
        assert abs(a.measured_latency_cycles - b.measured_latency_cycles) <= 16
        assert set(a.stage_busy) == set(b.stage_busy) == {st.name for st in g.stages}
        for k, v in a.stage_busy.items():
            assert abs(v - b.stage_busy[k]) <= 0.01, k


def test_native_catches_a_wrong_logit(design):
    g, plan, acc, src, patches, bdir = design
    vec = top_vectors(g, acc, patches, 0.2, 1, plan.ii)
    beats = vec.output.beats.copy()
    beats[5, 0] += 1
    bad = dataclasses.replace(vec, output=Stream(beats, vec.output.bits, vec.output.signed))
    r = native.run(bdir, bad, files=src)
    assert r.mismatches == 1 and not r.bit_exact
    assert r.first_mismatch == {"beat": 5, "lane": 0, "got": int(beats[5, 0]) - 1,
                                "expected": int(beats[5, 0])}


def test_native_stops_at_the_timeout_and_fails(design):
    g, plan, acc, src, patches, bdir = design
    vec = dataclasses.replace(top_vectors(g, acc, patches, 0.0, 0, plan.ii), timeout=500)
    r = native.run(bdir, vec, files=src)
    assert not r.bit_exact and r.received < r.expected
    assert r.first_mismatch["timeout_cycle"] == 500


def test_native_reports_progress_in_cycles(design):
    g, plan, acc, src, patches, bdir = design
    seen = []
    r = native.run(bdir, top_vectors(g, acc, patches, 0.0, 0, plan.ii),
                   progress=lambda c, beats: seen.append((c, beats)), every=1000, files=src)
    assert r.bit_exact
    cycles = [c for c, _ in seen]
    assert cycles == sorted(cycles) and len(cycles) >= r.extra["image_ends"][-1] // 1000 - 1
    assert np.diff(cycles).tolist() == [1000] * (len(cycles) - 1)
    assert seen[-1][1] <= len(r.extra["image_ends"]) * acc.beats_per_image_out


def test_native_refuses_a_design_with_ddr(micro_graphs):
    graphs, _ = micro_graphs
    g = graphs["w4a4"]
    plan = make_plan(g, load_board("zcu102"), target_ii=1024, offchip="all")
    acc, src, _ = generate(g, plan)
    assert "DDR" in native.supported(acc)
    assert e2e.Testbench.AUTO.pick("verilator", acc) is e2e.Testbench.COCOTB
    with pytest.raises(ValueError, match="testbench=native"):
        e2e.simulate(g, acc, g.encode_images(images_for(g.config, 2)), source=src,
                     testbench=e2e.Testbench.NATIVE)


def test_native_optimized_build_shares_module_code(design):
    """The long-run build (-O2, Verilator's inlining off, every repeated part module a
    hierarchical block verilated once) gives the same bits and cycles as the -O0 one; a
    ROM inside a block still finds its instance's file."""
    g, plan, acc, src, patches, bdir = design
    # the repeated part modules that load ROM files (each block is a library to build:
    # a few keep the test short)
    with_roms = {m.group(1).lstrip("\\").split(".")[0] for m in re.finditer(
        r"^module (\S+?)\s*\(((?!^endmodule).)*?hgpipe_romf", src.verilog, re.M | re.S)}
    blocks = sorted(with_roms & set(native.hier_blocks(src.verilog, min_repeat=1, roms=True)))
    assert blocks
    fast = native.build(src.verilog, native.harness(acc, TOP), runner.DEFAULT_BUILD,
                        optimize=True, blocks=blocks)
    command = (fast / "build.log").read_text().splitlines()[0].split()
    assert "-fno-inline" in command and "--hierarchical" in command and fast != bdir
    libraries = [p.name for p in (fast / "obj").iterdir() if p.is_dir()]
    assert all(any(n.startswith(f"V{b}") for n in libraries) for b in blocks)   # one each
    vec = top_vectors(g, acc, patches, 0.3, 2, plan.ii)
    a, b = native.run(fast, vec, files=src), native.run(bdir, vec, files=src)
    assert a.bit_exact and b.bit_exact
    assert a.extra["image_ends"] == b.extra["image_ends"]


def test_native_profile_guided_build_gives_the_same_bits(design):
    """The profile-guided build compiles the design instrumented, runs it on the training
    vectors (which leave the profile), compiles it again with the profile, and simulates
    what the -O0 build does, bit for bit and cycle for cycle, on other vectors."""
    g, plan, acc, src, patches, bdir = design
    train = native.Training(top_vectors(g, acc, patches[:1], 0.0, 0, plan.ii), src, 3000)
    pgo = native.build(src.verilog, native.harness(acc, TOP), runner.DEFAULT_BUILD,
                       optimize=True, train=train)
    log = (pgo / "build.log").read_text()
    assert native.PGO_GENERATE in log and native.PGO_USE in log and pgo != bdir
    assert list((pgo / "obj").glob("*.gcda"))        # the training run left its profile
    vec = top_vectors(g, acc, patches, 0.3, 4, plan.ii)
    a, b = native.run(pgo, vec, files=src), native.run(bdir, vec, files=src)
    assert a.bit_exact and b.bit_exact
    assert a.extra["image_ends"] == b.extra["image_ends"]


def test_hier_blocks_are_the_part_modules_that_repeat_most():
    """Blocks are top-level part modules, chosen by the Verilog their instances repeat
    or by their size alone; a part that loads ROM files (a compute stage) only when
    asked."""
    body = "\n".join(f"  {m} u{i} (\n  );" for i, m in
                     enumerate(["hgpipe_big", "hgpipe_big", "hgpipe_small", "hgpipe_small",
                                "hgpipe_once"]))
    src = (f"module hgpipe_top(a);\n{body}\nendmodule\n"
           f"module hgpipe_big(a);\n{'  wire x;' * 400}\nendmodule\n"
           f"module \\hgpipe_big.sub (a);\n{'  wire y;' * 400}\nendmodule\n"
           f"module hgpipe_small(a);\nendmodule\nmodule hgpipe_once(a);\n"
           f"{'  wire z;' * 4000}\nendmodule\n")
    assert native.hier_blocks(src, min_repeat=5000) == ["hgpipe_big"]   # with its submodule
    assert native.hier_blocks(src, min_repeat=1) == ["hgpipe_big", "hgpipe_small"]
    assert native.hier_blocks(src, min_repeat=5000, min_size=20_000) == ["hgpipe_big",
                                                                        "hgpipe_once"]
    with_rom = src.replace("  wire y;", "  hgpipe_romf_r2 r (\n  );", 1)
    assert native.hier_blocks(with_rom, min_repeat=1) == ["hgpipe_small"]
    assert native.hier_blocks(with_rom, min_repeat=1, roms=True) == ["hgpipe_big",
                                                                     "hgpipe_small"]
    with pytest.raises(ValueError, match="no module hgpipe_top"):
        native.hier_blocks(src.replace("hgpipe_top", "other"))


def test_busy_is_not_measured_when_no_image_ends_while_images_stream_in(design):
    """Three images through a pipeline deeper than three IIs: every interval between
    image ends comes after the input has ended, when the first stages only drain."""
    g, *_ = design
    names = sorted({st.name.replace(".", "_") for st in g.stages})
    snaps = [{"cycle": 100 * k, "images": k, "busy": {n: 50 * k for n in names}}
             for k in (1, 2, 3)]
    r = runner.SimResult(received=3, expected=3, mismatches=0, first_mismatch=None,
                         out_cycles=[], in_cycles={"s_axis": [10, 300]},
                         extra={"image_ends": [1000, 1100, 1200], "status": snaps})
    m = e2e.measure(g, r)
    assert m.stage_busy == {} and m.measured_ii_cycles == 100
    r.extra["image_ends"] = [200, 280, 400]      # one ends while images stream in
    assert e2e.measure(g, r).stage_busy == {st.name: 0.5 for st in g.stages}
    # a snapshot overtaken while it was read is missing: its intervals are not measured
    r.extra["status"] = [snaps[0], snaps[2]]
    assert e2e.measure(g, r).stage_busy == {}


def test_parts_that_differ_only_in_placement_share_one_module(design):
    """A part module used twice, its second instance given a copy whose ROMs and RAMs
    are placed in BRAM instead of LUTs (as the plan does for some blocks of DeiT-tiny):
    the simulation build merges the copy back and stays bit-exact, the copy's instance
    loading its own ROM files."""
    g, plan, acc, src, patches, plain = design
    top = re.search(rf"^module {TOP}\(.*?^endmodule", src.verilog, re.M | re.S).group(0)
    uses = re.findall(r"^  (hgpipe_\w+) (?:`HGPIPE_ROMS\(\S*\) )?(\w+) \($", top, re.M)
    families = share.family_texts(src.verilog)
    part, inst = next((m, i) for k, (m, i) in enumerate(uses)
                      if any(m == n for n, _ in uses[:k])
                      and "hgpipe_romf_lutram" in "".join(families[m]))
    copy = part + "_placed"
    texts = [t.replace(part, copy).replace("hgpipe_romf_lutram", "hgpipe_romf_bram")
             .replace("hgpipe_ram_lutram", "hgpipe_ram_bram")
             for t in families[part]]
    verilog = re.sub(rf"^  {part} (\S* )?{inst} \(", lambda m: f"  {copy} {m.group(1) or ''}{inst} (",
                     src.verilog, flags=re.M) + "".join(texts)
    assert share.merges(verilog)[copy] == part
    bdir = native.build(verilog, native.harness(acc, TOP), runner.DEFAULT_BUILD,
                        optimize=False)
    assert bdir == plain        # the same simulation source as the design's own
    r = native.run(bdir, top_vectors(g, acc, patches[:3], 0.3, 1, plan.ii), files=src)
    assert r.bit_exact and len(r.extra["image_ends"]) == 3


def test_share_merges_only_what_a_simulator_cannot_tell_apart():
    mod = ("module {n}(a);\n  {attr}reg [3:0] mem [0:1];\n  {n}_rom u (\n  );\n"
           "  \\{n}.sub s (\n  );\nendmodule\nmodule \\{n}.sub (a);\n  wire {w};\nendmodule\n")
    src = ("module hgpipe_top(a);\n  hgpipe_x_1 a (\n  );\n  hgpipe_x_2 b (\n  );\n"
           "  hgpipe_x_3 c (\n  );\nendmodule\n"
           + mod.format(n="hgpipe_x_1", attr='(* rom_style = "block" *) ', w="y")
           + mod.format(n="hgpipe_x_2", attr='(* ram_style = "ultra" *) ', w="y")
           + mod.format(n="hgpipe_x_3", attr="", w="z"))
    # the ROM modules each part names are its own: x_1 and x_2 merge once those do
    src += "".join(f"module hgpipe_x_{i}_rom(a);\n  {a}wire q;\nendmodule\n"
                   for i, a in ((1, ""), (2, '(* rom_style = "logic" *) '), (3, "")))
    into = share.merges(src)
    assert into == {"hgpipe_x_2": "hgpipe_x_1", "hgpipe_x_2_rom": "hgpipe_x_1_rom",
                    "hgpipe_x_3_rom": "hgpipe_x_1_rom"}
    out = share.shared(src)
    assert "hgpipe_x_2" not in out and "hgpipe_x_3 c (" in out
    assert out.count("  hgpipe_x_1 ") == 2 and "\\hgpipe_x_3.sub" in out


def test_threads_only_for_long_runs_of_large_designs():
    """Two Verilator threads slowed a one-block model (2.6 MB) and sped up the whole
    DeiT-tiny (6.4 MB): threads are picked by the design's size, for optimized builds."""
    small, big = "x" * 2_600_000, "x" * native.THREADS_MIN_VERILOG
    assert native.auto_threads(small, True) == 1
    assert native.auto_threads(big, False) == 1
    assert native.auto_threads(big, True) == min(2, os.cpu_count() or 1)
