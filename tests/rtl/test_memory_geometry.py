"""Each stage's memories, as its parts elaborate them, against the resource model's
declaration (``resources.model.datapath``): ROM bits and RAM bits per stage, all of its
units (a head each for attention); and every FIFO's words against its placed group."""

from __future__ import annotations

import pytest

from hgpipe.plan import make_plan
from hgpipe.plan.fold import stage_dims
from hgpipe.plan.netlist import FifoPart, StageUnit
from hgpipe.resources.board import load_board
from hgpipe.resources.model import datapath
from hgpipe.rtl.accelerator import Accelerator
from hgpipe.rtl.generate import verilog
from hgpipe.rtl.mem import census


@pytest.mark.parametrize("tp, extra", [(None, False), (2, False), (4, True)],
                         ids=["fastest", "tp2", "padded-tp4"])
def test_every_stage_builds_the_memories_the_model_declares(micro_graph_w3a3, extra_graph,
                                                             tp, extra):
    """``padded-tp4``: 17 tokens streamed as 20 rows (the position ROM's padding rows)."""
    g = extra_graph[0] if extra else micro_graph_w3a3
    plan = make_plan(g, load_board("vck190"), tp=tp)
    acc = Accelerator(g, plan)
    g = acc.graph                       # laid out as the plan streams it
    # block 0 and the stages outside the blocks (the other blocks repeat block 0's)
    stages = [s for s in g.stages if not s.name.startswith("blocks.")
              or s.name.startswith("blocks.0.")]
    wrong = []
    for st in stages:
        parts = [p for p in acc.netlist.parts if p.owner == st.name
                 and isinstance(p, StageUnit)]
        banks = max([p.banks for p in parts if isinstance(p, StageUnit)] + [2])
        t, cin = stage_dims(g, st)
        dp = datapath(st, plan.stage(st.name).folding, t, cin, g.config.num_heads, banks,
                      plan.pipelining)
        with census() as uses:
            for p in parts:
                verilog(acc._part(p, set()), "part")
        for kind, rom in (("rom", True), ("ram", False)):
            built = sum(m.bits for m in uses if m.kind == kind)
            declared = sum(m.bits for m in dp.memories if m.rom == rom)
            if built != declared:
                wrong.append(f"{st.name} {kind}: built {built} bits, declared {declared}")
    assert not wrong, "\n".join(wrong)


def test_every_fifo_builds_its_groups_words(micro_graph_w3a3):
    """A FIFO elaborates one memory of its beats and width (AV's per-head output FIFOs
    included), and the plan placed every group."""
    g = micro_graph_w3a3
    plan = make_plan(g, load_board("vck190"))
    acc = Accelerator(g, plan)
    placed = dict(plan.fifo_memories)
    fifos = [p for p in acc.netlist.parts if isinstance(p, FifoPart)]
    assert any(p.group.endswith(":out") for p in fifos)
    for p in fifos:
        assert p.group in placed, p.name
        assert p.memory == placed[p.group], p.name
        with census() as uses:
            verilog(acc._part(p, set()), "part")
        assert [(u.kind, u.width, u.depth) for u in uses] == [("ram", p.width, max(p.beats, 2))], \
            p.name
