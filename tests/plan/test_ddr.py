"""Off-chip FIFOs in the plan: when they go to DDR (policy, budget, bandwidth), their
layout and address map, and the delay the schedule gives their edges."""

from __future__ import annotations

import dataclasses

import pytest

from hgpipe.errors import PlanError
from hgpipe.graph.ddr import PAGE_BYTES, DdrLayout
from hgpipe.perf.model import evaluate
from hgpipe.graph.pipeline import Pipelining
from hgpipe.plan.fold import Folder
from hgpipe.plan import build, make_plan
from hgpipe.resources.board import load_board
from hgpipe.resources.memory import Memory, place_all

II = 3000


@pytest.fixture(scope="module")
def graph(graphs):
    return graphs["w3a3"]   # vit-digits: 2 blocks, a coarse residual FIFO in each


def _plan(graph, board, offchip):
    return build(graph, board, 1, Folder(graph, board, 1, Pipelining.at(board.clock_mhz)).choose(II), II, "", board.clock_mhz,
                 offchip)


def test_policies(graph):
    b = load_board("zcu102")
    none, coarse = _plan(graph, b, "none"), _plan(graph, b, "all")
    assert not none.ddr_buffers and none.ddr_bytes == 0
    coarse_edges = {(x.src, x.dst) for x in none.buffers if x.grain == "coarse"
                    and x.memory != "stage"}
    residuals = {("tokens", "blocks.0.add1"), ("blocks.0.add2", "blocks.1.add1")}
    # the residuals wait out the attention; AV -> proj is as deep but on the critical path
    assert residuals | {("blocks.0.attn.av.requant", "blocks.0.attn.proj")} <= coarse_edges
    assert {(x.src, x.dst) for x in coarse.ddr_buffers} == residuals
    # and the head's weights, read once an image
    assert {r.name for r in coarse.ddr_regions} == {f"{a}->{b}" for a, b in residuals} | {
        "head:weights"}
    assert dict(coarse.stage("head").memories)["weights"] == "ddr"
    # plenty of room on chip: auto keeps everything there
    assert not _plan(graph, b, "auto").ddr_buffers
    with pytest.raises(PlanError, match="offchip=all: board zcu102 has no ddr"):
        make_plan(graph, dataclasses.replace(b, ddr=None), offchip="all")


def test_auto_moves_a_fifo_off_chip_only_when_the_chip_cannot_hold_it():
    table = Memory("table", 8, 64, rom=True)                    # 0.5 BRAM or 8 LUTs
    fifo = Memory("fifo", 72, 5000, offchip_bytes=90_000)       # 10 BRAM, too deep for LUTs
    luts = {"fifo": 500}

    def place(bram, ddr, lut=2000):
        budget = {"lut": lut, "ff": 10 ** 6, "dsp": 0, "bram": bram, "uram": 0}
        if ddr is not None:
            budget["ddr"] = ddr
        return place_all([table, fifo], budget, {"lut": 0}, False, lambda m: luts[m.name])
    assert place(20, 10 ** 6)[1] == ("bram", 10)                        # room on chip
    assert place(5, 10 ** 6)[1] == ("ddr", 90_000.0)                    # the FIFO must go
    assert place(5, None)[1] == ("bram", 10)          # no DDR: over budget, as it was
    assert place(5, 50_000)[1] == ("bram", 10)        # no bandwidth for it
    assert place(5, 10 ** 6, lut=300)[1] == ("bram", 10)   # no LUTs for its port logic


def test_ddr_budget_and_regions(graph):
    b = load_board("zcu102")
    p = _plan(graph, b, "all")
    fps = p.clock_mhz * 1e6 / p.ii
    assert p.ddr_budget == pytest.approx(min(b.ddr.gbytes_per_s * 1e9 * b.ddr.usable_fraction
                                             / fps, 2 * 16 * p.ii))
    regions = p.ddr_regions
    assert p.ddr_bytes == sum((1 if r.layout.readonly else 2) * r.layout.bytes_per_image
                              for r in regions)
    assert p.fits
    bases = [r.base for r in regions]
    assert bases[0] == b.ddr.base_address and all(x % PAGE_BYTES == 0 for x in bases)
    for r, nxt in zip(regions, regions[1:]):
        assert r.base + r.layout.region_bytes <= nxt.base
    for x in p.ddr_buffers:   # the ring holds the planned depth
        assert x.ddr.capacity >= x.ddr.depth
    head = next(r for r in regions if r.layout.readonly)
    assert head.layout.bytes_per_image * 8 >= \
        graph["head"].weight.size * graph["head"].derived["weight"].bits
    d = p.to_dict()["ddr"]
    assert d["bytes_per_image"] == p.ddr_bytes and len(d["regions"]) == len(bases)
    small = dataclasses.replace(b, ddr=dataclasses.replace(b.ddr, bytes=PAGE_BYTES))
    assert not _plan(graph, small, "all").fits   # the rings do not fit the reserved bytes


def test_a_ddr_edge_delays_its_consumer_in_the_schedule(graph):
    b = load_board("zcu102")
    none, coarse = _plan(graph, b, "none"), _plan(graph, b, "all")
    by = {n.name: n for n in coarse.nodes}
    for x in coarse.ddr_buffers:
        n = by[x.dst]
        k = [src for src, _ in n.inputs].index(x.src)
        assert n.delay(k) >= 2 * b.ddr.latency_cycles(coarse.clock_mhz)
    # the skip path is not critical: the throughput holds
    assert evaluate(graph, coarse).steady_ii_cycles == evaluate(graph, none).steady_ii_cycles


@pytest.mark.parametrize("width, beats, depth", [(8, 17 * 32, 600), (96, 17, 40),
                                                 (300, 50, 75), (3, 1000, 999)])
def test_layout_holds_its_depth(width, beats, depth):
    lay = DdrLayout(width, beats, depth)
    assert lay.capacity >= depth
    assert lay.words_per_image * lay.word_bytes == lay.bytes_per_image
    assert (lay.bursts_per_image - 1) * lay.burst + lay.last_burst == lay.words_per_image
    assert 0 < lay.last_burst <= lay.burst and lay.region_bytes % PAGE_BYTES == 0
