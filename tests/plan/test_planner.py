"""The planner on vit-micro and vit-digits: legal foldings, targets, buffers, fit."""

from __future__ import annotations

import dataclasses

import pytest

from hgpipe.errors import PlanError
from hgpipe.graph.contract import cycles
from hgpipe.perf.model import evaluate
from hgpipe.plan.fold import stage_dims
from hgpipe.plan import make_plan
from hgpipe.plan.schedule import Deadlock, simulate
from hgpipe.resources.board import load_board
from hgpipe.resources.memory import Memory, MemoryKind, bram_cost, lut_cost, place_all


@pytest.fixture(scope="module")
def graph(graphs):
    return graphs["w3a3"]  # vit-digits: 17 tokens, 32 channels, 2 blocks


def divides(folding, tokens: int, cin: int, cout: int) -> bool:
    return tokens % folding.tp == 0 and cin % folding.cip == 0 and cout % folding.cop == 0


def _check_foldings(graph, plan):
    graph = plan.laid_out(graph)
    assert graph.layout.rows % plan.tp == 0 and graph.layout.patch_rows % plan.tp == 0
    for s in plan.stages:
        st = graph[s.name]
        t, cin = stage_dims(graph, st)
        cout = st.out_features if st.kind == "linear" else cin
        if st.kind == "qk":
            assert st.head_dim % s.folding.cip == 0 and t % s.folding.cop == 0
        elif st.kind == "av":
            assert t % s.folding.cip == 0 and st.head_dim % s.folding.cop == 0
        elif st.kind == "softmax":
            assert cin % s.folding.cip == 0 and cin == graph.layout.rows >= st.row_len
        else:
            assert divides(s.folding, t, st.in_features if st.kind == "linear" else cin, cout)
        assert s.cycles == cycles(st, s.folding, t, cin)


def test_fastest_plan_fits_and_divides(graph):
    plan = make_plan(graph, load_board("vck190"))
    assert plan.fits and plan.ii == max(s.cycles for s in plan.stages)
    _check_foldings(graph, plan)
    # 17 tokens: no TP > 1 divides them, yet padding to a multiple of it is faster
    assert plan.tp > 1 and plan.layout.rows > plan.layout.tokens == 17


@pytest.mark.parametrize("target", [400, 1500, 6000])
def test_target_ii_is_met_by_the_cheapest_stages(graph, target):
    board = load_board("zcu102")
    plan = make_plan(graph, board, target_ii=target)
    assert plan.ii <= target and all(s.cycles <= target for s in plan.stages)
    _check_foldings(graph, plan)
    perf = evaluate(graph, plan)
    assert perf.steady_ii_cycles == plan.ii   # planned FIFOs: the slowest stage never starves
    assert min(perf.busy.values()) > 0 and max(perf.busy.values()) == 1.0


def test_slower_target_costs_less(graph):
    board = load_board("zcu102")
    fast, slow = (make_plan(graph, board, target_ii=t) for t in (400, 6000))
    assert slow.resources.lut < fast.resources.lut


def test_fps_target_is_ii_at_the_clock(graph):
    board = load_board("vck190")
    plan = make_plan(graph, board, target_fps=425e6 / 2000)
    assert plan.ii <= 2000 and plan.target_ii == 2000


def test_unreachable_target_names_the_stage(graph):
    with pytest.raises(PlanError, match=r"target II 3 cycles cannot be met.*stage \S+ needs "
                       r"at least \d+ cycles"):
        make_plan(graph, load_board("vck190"), target_ii=3)


def test_target_over_budget_names_the_resource(graph):
    small = dataclasses.replace(load_board("zcu102"), resources={
        "lut": 20000, "ff": 40000, "dsp": 20, "bram": 40, "uram": 0})
    with pytest.raises(PlanError, match=r"target II 400 cycles cannot be met on zcu102: .*"
                       r"needs (LUT|DSP|BRAM)"):
        make_plan(graph, small, target_ii=400)


def test_buffers_coarse_where_attention_needs_whole_tensors(graph):
    plan = make_plan(graph, load_board("vck190"), target_ii=1500)
    by = {(b.src, b.dst): b for b in plan.buffers}
    t = graph.config.num_tokens
    for i in range(graph.config.depth):
        k = by[(f"blocks.{i}.attn.qkv.requant", f"blocks.{i}.attn.qk")]
        v = by[(f"blocks.{i}.attn.qkv.requant", f"blocks.{i}.attn.av")]
        assert k.grain == v.grain == "coarse" and k.depth >= 1 and v.depth >= 1
        res = by[(graph[f"blocks.{i}.add1"].inputs[0], f"blocks.{i}.add1")]
        assert res.grain == "coarse" and res.depth >= t  # the residual around attention
        assert by[(f"blocks.{i}.mlp.fc1", f"blocks.{i}.mlp.gelu")].grain == "fine"
    assert 0 < plan.buffer_bits < plan.all_coarse_bits


def test_planned_residual_fifo_is_needed(graph):
    """Halving the residual FIFO around attention deadlocks the event schedule."""
    plan = make_plan(graph, load_board("vck190"), target_ii=1500)
    key = f"{graph['blocks.0.add1'].inputs[0]}->blocks.0.add1"
    depths = dict(plan.depths)
    depths[key] //= 2
    simulate(list(plan.nodes), 3, plan.depths, plan.banks)
    with pytest.raises(Deadlock):
        simulate(list(plan.nodes), 3, depths, plan.banks)


def test_memory_geometry_by_hand():
    assert bram_cost(72, 512) == 1 and bram_cost(36, 1024) == 1
    assert bram_cost(18, 1024) == 0.5 and bram_cost(144, 512) == 2
    assert bram_cost(4, 8192) == 1 and bram_cost(3, 16384) == 1.5  # three 16Kx1 BRAM18
    assert lut_cost(3, 64) == 3 and lut_cost(3, 65) == 6          # ROM: LUT6 = 64 x 1
    assert lut_cost(14, 32, rom=False) == 8                         # one RAM32M16


def test_block_layouts_as_yosys_maps_them():
    """Blocks and read-multiplexer LUTs Yosys 0.70 ``synth_xilinx -family xcup`` gave
    (random-content ROMs synthesized alone; the 32-bit FIFO from the DeiT-tiny block):
    a ROM's narrow last column holds its depth slices side by side."""
    from hgpipe.resources.memory import MemoryKind, block_mux_luts, uram_cost
    for (w, d), (blocks, mux) in {(384, 1152): (16, 384), (168, 1100): (7, 168),
                                  (100, 1500): (4.5, 100)}.items():
        assert bram_cost(w, d, rom=True) == blocks
        assert block_mux_luts(MemoryKind.BRAM, w, d, rom=True) == mux
    assert uram_cost(32, 10756) == 2         # two 32-bit slices in a 72-bit word
    assert block_mux_luts(MemoryKind.URAM, 32, 10756) == 32


def test_memories_move_out_of_an_overfull_resource():
    mems = [Memory(f"m{i}", 72, 256) for i in range(10)]  # 0.5 BRAM36 or 452 LUTs each
    budget = {"lut": 10000, "bram": 2, "uram": 0}
    placed = place_all(mems, budget, {"lut": 0})
    assert sum(n for k, n in placed if k == "bram") <= 2
    assert sum(n for k, n in placed if k == "lutram") <= 10000


def test_a_rom_in_luts_takes_the_blocks_of_memories_cheaper_in_luts():
    """Block RAM full, a weight ROM in LUTs: RAMs in the blocks that cost fewer LUTs
    together than the ROM go to LUT RAM and the ROM takes their blocks; where they would
    cost more, nothing moves."""
    from hgpipe.resources.memory import _exchange
    ram, rom = MemoryKind.BRAM, MemoryKind.LUTRAM
    for ram_luts, moves in ((50, True), (300, False)):
        opts = [{MemoryKind.BRAM: 1, MemoryKind.LUTRAM: ram_luts}] * 2 \
            + [{MemoryKind.BRAM: 2, MemoryKind.LUTRAM: 500}]
        choice = [(ram, 1), (ram, 1), (rom, 500)]
        total = {"bram": 2, "lut": 500}
        _exchange(choice, opts, {"bram": 2, "lut": 1000, "uram": 0}, total)
        if moves:
            assert choice == [(MemoryKind.LUTRAM, 50)] * 2 + [(MemoryKind.BRAM, 2)]
            assert total == {"bram": 2, "lut": 100}
        else:
            assert choice == [(ram, 1), (ram, 1), (rom, 500)] and total["lut"] == 500


def test_deep_roms_go_to_luts_only_when_blocks_run_out():
    deep = Memory("weights", 9, 4096, rom=True)     # 1 BRAM36 (4Kx9) or 9 * (64 + 22) LUTs
    assert lut_cost(9, 4096) == 774
    assert place_all([deep], {"lut": 100000, "bram": 10, "uram": 0}, {"lut": 0}) == [("bram", 1)]
    placed = place_all([deep] * 4, {"lut": 100000, "bram": 2, "uram": 0}, {"lut": 0})
    assert sorted(placed) == [("bram", 1), ("bram", 1), ("lutram", 774), ("lutram", 774)]
    # a deep RAM (written) has no LUT option: it stays over the budget, for the plan to report
    ram = Memory("k", 9, 4096)
    budget = {"lut": 100000, "bram": 2, "uram": 0}
    assert place_all([ram] * 3, budget, {"lut": 0}) == [("bram", 1)] * 3


def test_roms_stay_out_of_uram_that_cannot_be_initialised():
    # 72 x 4096: one URAM288, or 8 BRAM36; with URAM plentiful and BRAM scarce a RAM takes
    # URAM, a ROM takes URAM on Versal only (UltraScale+ URAM powers up zeroed)
    budget = {"lut": 1000, "bram": 100, "uram": 100}
    ram, rom = Memory("k", 72, 4096), Memory("w", 72, 4096, rom=True)
    assert place_all([ram], budget, {"lut": 0}, rom_in_uram=False) == [("uram", 1)]
    assert place_all([rom], budget, {"lut": 0}, rom_in_uram=True) == [("uram", 1)]
    assert place_all([rom], budget, {"lut": 0}, rom_in_uram=False) == [("bram", 8)]
    assert load_board("vck190").rom_in_uram and not load_board("zcu102").rom_in_uram
