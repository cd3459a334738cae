"""The plan's netlist: the parts the RTL elaborates are the parts the model costs."""

from __future__ import annotations

import re

import pytest

from hgpipe.plan import make_plan
from hgpipe.plan.costing import part_costs
from hgpipe.plan.netlist import INPUT_FIFO, PLUMBING, GearboxPart, PartKind, StageUnit
from hgpipe.resources.board import load_board
from hgpipe.resources.model import Resources
from hgpipe.rtl.generate import TOP, generate
from hgpipe.synth.design import instance_modules, kind_of
from hgpipe.synth.yosys import split

# the component class each part kind elaborates to (module names carry the class)
COMPONENT = {PartKind.FIFO: "fifo", PartKind.FORK: "fork", PartKind.GEARBOX: "gearbox",
             PartKind.MERGE: "merge", PartKind.STATUS: "statusregs"}
STAGE_COMPONENT = {"linear": "linearstage", "qk": "qkhead", "softmax": "softmaxstage",
                   "av": "avhead", "layernorm": "layernormstage", "requant": "lutstage",
                   "add": "residualaddstage", "tokens": "tokensstage"}


@pytest.fixture(scope="module", params=[(None, False), (2, True)])
def planned(request, micro_graph_w3a3):
    tp, status = request.param      # the second with the status registers
    plan = make_plan(micro_graph_w3a3, load_board("vck190"), tp=tp, status=status)
    assert (plan.netlist.status is not None) == status
    return micro_graph_w3a3, plan


def test_elaborated_parts_are_the_costed_parts(planned):
    graph, plan = planned
    _, rtl, stats = generate(graph, plan)
    modules = split(rtl.verilog)
    built = instance_modules(modules[TOP], modules)
    costed = {p.name: p for p, _ in part_costs(plan)}
    assert set(built) == set(costed)
    assert stats["parts"] == len(costed)
    for name, module in built.items():
        p = costed[name]
        kind = kind_of(module)
        if isinstance(p, StageUnit):
            st = graph[p.owner]
            expected = "headstage" if getattr(st, "cls_only", False) else STAGE_COMPONENT[st.kind]
        else:
            expected = COMPONENT[p.kind]
        assert kind == expected, (name, kind, expected)


def test_part_costs_sum_to_the_plan(planned):
    _, plan = planned
    total = sum((r for _, r in part_costs(plan)), Resources())
    for k in ("lut", "ff", "dsp", "bram", "uram"):
        assert getattr(total, k) == pytest.approx(getattr(plan.resources, k), rel=0.02), k


def test_plumbing_costed(planned):
    graph, plan = planned
    net = plan.netlist
    kinds = net.counts()
    # every attention stage has one unit a head and AV a merge
    heads = graph.config.num_heads
    assert len(net.units("blocks.0.attn.qk")) == heads
    assert kinds[PartKind.MERGE] == graph.config.depth
    for p in net.parts:
        if p.kind in PLUMBING:
            r = p.logic()
            assert r.lut > 0 and r.ff > 0, p
    assert plan.plumbing.lut > 0
    assert net.part(INPUT_FIFO).kind is PartKind.FIFO


def test_gearbox_only_where_lanes_differ(planned):
    _, plan = planned
    for p in plan.netlist.parts:
        if isinstance(p, GearboxPart):
            assert p.lanes_in != p.lanes_out
            assert re.search(r"_gear\d+$", p.name)
