"""Foldings chosen with their gearboxes (``plan.lanes``): the matcher counts the gearboxes
the netlist builds, and its trade only lowers the plan's cost, within the II."""

from __future__ import annotations

from collections import Counter

import pytest

from hgpipe.graph.pipeline import Pipelining
from hgpipe.plan import make_plan
from hgpipe.plan.fold import Folder, cost
from hgpipe.plan.netlist import GearboxPart
from hgpipe.resources.board import load_board
from hgpipe.resources.model import Resources


@pytest.mark.parametrize("tp", [None, 2, 4])
def test_the_matcher_counts_the_gearboxes_the_netlist_builds(micro_graph_w3a3, tp):
    board = load_board("vck190")
    plan = make_plan(micro_graph_w3a3, board, tp=tp)
    folder = Folder(micro_graph_w3a3, board, plan.tp, plan.pipelining)
    fold = {s.name: s.folding for s in plan.stages}
    m = folder.lanes
    shapes = Counter(s for src in m.consumers for s in m.shapes(src, fold))
    built = Counter((p.tp, p.lanes_in, p.lanes_out, p.bits) for p in plan.netlist.parts
                    if isinstance(p, GearboxPart))
    assert shapes == built
    assert built, "no gearbox: the comparison would prove nothing"
    logic = sum((p.logic() for p in plan.netlist.parts if isinstance(p, GearboxPart)),
                Resources())
    assert m.resources(fold) == logic


def _total(folder: Folder, chosen) -> tuple[float, float]:
    """(stages' cost + gearboxes' cost, gearboxes' cost) of a choice."""
    fold = {k: o.folding for k, o in chosen.items()}
    gear = sum(folder.lanes.tensor_cost(src, fold) for src in folder.lanes.consumers)
    return sum(o.cost for o in chosen.values()) + gear, gear


@pytest.mark.parametrize("model", ["micro", "digits"])
def test_matching_lanes_only_lowers_the_cost_within_the_ii(micro_graph_w3a3, graphs, model):
    g = micro_graph_w3a3 if model == "micro" else graphs["w3a3"]
    board = load_board("vck190")
    fewer = 0
    for tp in (1, 2):
        folder = Folder(g, board, tp, Pipelining.at(board.clock_mhz))
        for ii in folder.candidate_iis()[::3]:
            alone, matched = folder.choose(ii, match_lanes=False), folder.choose(ii)
            assert all(o.cycles <= ii for o in matched.values())
            (a, ga), (b, gb) = _total(folder, alone), _total(folder, matched)
            assert b <= a + 1e-12, (tp, ii)
            fewer += gb < ga
    assert fewer, "matching never removed a gearbox"


def test_cost_is_the_budget_fraction():
    board = load_board("vck190")
    r = Resources(lut=board.budget()["lut"] / 2, ff=board.budget()["ff"] / 4)
    assert cost(r, board.budget()) == pytest.approx(0.75)
