"""Each stage's memories, as its units elaborate them, against its contract's declaration
(``Contract.memories``, what the resource model costs): name by name, width, words and
copies over all of its units (a head each for the per-head kinds); and every FIFO's words
against its placed group."""

from __future__ import annotations

import pytest

from hgpipe.graph.contract import contract
from hgpipe.plan import make_plan
from hgpipe.plan.fold import stage_dims
from hgpipe.plan.netlist import FifoPart, StageUnit
from hgpipe.resources.board import load_board
from hgpipe.resources.model import datapath
from hgpipe.rtl.accelerator import Accelerator
from hgpipe.rtl.generate import verilog
from hgpipe.rtl.mem import census


def _built(uses) -> tuple[dict, list[str]]:
    """{name: (kind, width, words, copies)} of the memories elaborated; memories of one
    name that differ, and memories no contract named."""
    got, odd = {}, []
    for u in uses:
        if u.name is None:
            odd.append(f"a {u.kind} of {u.width} x {u.depth} the contract does not declare")
            continue
        kind, width, depth, copies = got.get(u.name, (u.kind, u.width, u.depth, 0))
        if (kind, width, depth) != (u.kind, u.width, u.depth):
            odd.append(f"{u.name}: {u.width} x {u.depth} beside {width} x {depth}")
        got[u.name] = (kind, width, depth, copies + u.copies)
    return got, odd


@pytest.mark.parametrize("tp, extra", [(None, False), (2, False), (4, True)],
                         ids=["fastest", "tp2", "padded-tp4"])
def test_every_stage_builds_the_memories_its_contract_declares(micro_graph_w3a3, extra_graph,
                                                               tp, extra):
    """``padded-tp4``: 17 tokens streamed as 20 rows (the position ROM's padding rows)."""
    g = extra_graph[0] if extra else micro_graph_w3a3
    plan = make_plan(g, load_board("vck190"), tp=tp)
    acc = Accelerator(g, plan)
    g = acc.graph                       # laid out as the plan streams it
    # block 0 and the stages outside the blocks (the other blocks repeat block 0's)
    stages = [s for s in g.stages if not s.name.startswith("blocks.")
              or s.name.startswith("blocks.0.")]
    wrong, kinds = [], set()
    for st in stages:
        units = [p for p in acc.netlist.parts if p.owner == st.name
                 and isinstance(p, StageUnit)]
        banks = max([p.banks for p in units] + [2])
        t, cin = stage_dims(g, st)
        f = plan.stage(st.name).folding
        decls = contract(st).memories(st, f, plan.pipelining, tokens=t, channels=cin,
                                      banks=banks)
        want = {d.name: ("rom" if d.rom else "ram", d.width, d.words, d.copies * len(units))
                for d in decls}
        with census() as uses:
            for p in units:
                verilog(acc._part(p, set()), "part")
        got, odd = _built(uses)
        wrong += [f"{st.name}: {o}" for o in odd]
        if got != want:
            wrong.append(f"{st.name}: built {got}, declared {want}")
        # the resource model costs the declared memories, in every unit
        dp = datapath(st, f, t, cin, g.config.num_heads, banks, plan.pipelining)
        costed = {m.name: ("rom" if m.rom else "ram", m.width, m.depth, m.ports)
                  for m in dp.memories}
        if costed != want:
            wrong.append(f"{st.name}: costed {costed}, declared {want}")
        kinds |= {(st.kind, d.name) for d in decls}
    assert not wrong, "\n".join(wrong)
    # every kind's memories were elaborated (the configuration has them all)
    assert {n for _, n in kinds} >= {"weights", "row", "bias", "k", "q_wait", "v", "rows",
                                     "table", "pos", "rsqrt", "affine", "score_rows",
                                     "exp_rows", "exp", "recip"}


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
