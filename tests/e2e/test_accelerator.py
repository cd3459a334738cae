"""The composed accelerator through its API, as ``hgpipe generate`` builds it (each
distinct part converted once): a corrupted table inside the design is caught end to end,
and the Verilog is deterministic and lint-clean."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from hgpipe.graph.graph import IntGraph
from hgpipe.plan import make_plan
from hgpipe.resources.board import load_board
from hgpipe.rtl.generate import generate
from sim import e2e
from sim.lint import lint

from ..conftest import images_for


@pytest.fixture(scope="module")
def planned(micro_graphs):
    graphs, _ = micro_graphs
    g = graphs["w3a3"]
    return g, make_plan(g, load_board("vck190"), target_ii=512, status=True)


def _corrupt(g: IntGraph, name: str) -> IntGraph:
    """The graph with one GELU table entry changed to a value it never had."""
    st = g[name]
    entries = st.table.entries.copy()
    entries[..., entries.shape[-1] // 2] = st.out_range.hi if \
        entries[0, 0, entries.shape[-1] // 2] != st.out_range.hi else st.out_range.lo
    stages = tuple(replace(s, table=replace(s.table, entries=entries)) if s.name == name
                   else s for s in g.stages)
    return replace(g, stages=stages)


def test_a_corrupted_table_inside_the_design_is_caught(planned):
    g, plan = planned
    patches = g.encode_images(images_for(g.config, 3, seed=9))
    acc, src, _ = generate(g, plan)
    good = e2e.simulate(g, acc, patches, cycles_per_image=plan.ii, source=src)
    assert good.bit_exact
    acc, src, _ = generate(_corrupt(g, "blocks.0.mlp.gelu"), plan)
    bad = e2e.simulate(g, acc, patches, cycles_per_image=plan.ii, source=src)
    assert not bad.bit_exact and bad.mismatches > 0


def test_top_verilog_is_deterministic_and_lints_clean(planned):
    g, plan = planned
    a, b = generate(g, plan)[1], generate(g, plan)[1]
    assert a == b and a.roms     # the Verilog and every ROM file
    assert lint(a.verilog, "hgpipe_top") == []


def test_the_plans_memory_placement_reaches_the_verilog(planned):
    g, plan = planned
    src = generate(g, plan)[1].verilog
    kinds = {k for s in plan.stages for _, k in s.memories}
    kinds |= {b.memory for b in plan.buffers if b.memory != "stage"}
    attribute = {"lutram": "distributed", "bram": "block", "uram": "ultra"}
    vivado = re.sub(r"`ifdef YOSYS\n.*?`else\n", "", src, flags=re.S)  # Yosys's own words
    assert set(re.findall(r'\(\* (?:ram|rom)_style = "(\w+)" \*\)', vivado)) == \
        {attribute[k] for k in kinds}
    # every stage's memories are in plan.json, as placed
    stages = {s["name"]: s for s in plan.to_dict()["stages"]}
    fc1 = plan.stage("blocks.0.mlp.fc1")
    assert stages[fc1.name]["memories"] == dict(fc1.memories)
    assert set(dict(fc1.memories)) == {"weights", "row", "bias"}


def test_each_attention_output_row_fifo_takes_its_placement(planned):
    """The heads' output row FIFOs in front of the merge are one FIFO group of the plan
    (``stage:out``), and the RTL builds them where the plan puts them."""
    g, plan = planned
    av = next(s for s in plan.stages if s.kind == "av")
    st, f = g[av.name], av.folding
    key = f"{av.name}:out"
    assert key in dict(plan.fifo_memories)
    # the FIFO's RAM: tp x cop outputs a word, a row of them plus two
    ram = (rf"hgpipe_ram_(\w+) #\(\s*\.ABITS\(32'd\d+\),\s*\.DEPTH\(32'd{st.head_dim // f.cop + 2}\),"
           rf"\s*\.WIDTH\(32'd{f.tp * f.cop * st.out_range.bits}\)")
    for kind in ("uram", "bram"):
        moved = tuple((n, kind if n == key else k) for n, k in plan.fifo_memories)
        # a plan changed by hand: its netlist is derived again from the new decisions
        src = generate(g, replace(plan, fifo_memories=moved, netlist=None))[1].verilog
        assert kind in re.findall(ram, src)


def test_the_status_registers_are_the_plans_part(planned):
    """Built, costed and mapped where the plan says so (``--status on``), absent
    otherwise: the plan at the same II without them differs by their modelled logic, and
    the top has no AXI4-Lite port."""
    from hgpipe.rtl.accelerator import Accelerator
    g, plan = planned
    off = make_plan(g, load_board("vck190"), target_ii=512)
    assert off.netlist.status is None and off.to_dict()["status"] is None
    st = plan.netlist.status
    assert st.counters == tuple(s.name for s in g.stages)
    assert plan.plumbing.lut - off.plumbing.lut == pytest.approx(st.logic().lut)
    assert plan.plumbing.ff - off.plumbing.ff == pytest.approx(st.logic().ff)
    on, bare = Accelerator(g, plan), Accelerator(g, off)
    on._MustUse__silence = bare._MustUse__silence = True    # only their ports are looked at
    assert "s_axil_araddr" in on.signature.members
    assert not any(n.startswith("s_axil") for n in bare.signature.members)
    regs = plan.to_dict()["status"]
    assert list(regs["busy"]) == list(st.counters)
    assert regs["busy"][g.stages[0].name] == 0x20 and regs["registers"]["cycle"] == 0x10
