"""The resource model against the stored Yosys calibration points."""

from __future__ import annotations

import numpy as np

from hgpipe.resources.model import coefficients, logic

PLUMBING_KINDS = {"fifo", "fork", "gearbox", "merge"}


def test_calibration_is_recorded_with_its_tool_and_points():
    c = coefficients()
    assert c["yosys"].startswith("Yosys") and c["date"][:2] == "20"
    kinds = {p["kind"] for p in c["points"]}
    assert {"linear", "requant", "add", "layernorm", "softmax"} <= kinds
    for k in kinds:
        assert sum(p["kind"] == k for p in c["points"]) >= 3, k


def test_model_reproduces_the_stored_points_within_the_stated_error():
    c = coefficients()
    for kind, err in c["rms_relative_error"].items():
        pts = [p for p in c["points"] if p["kind"] == kind]
        for res in ("lut", "ff"):
            rel = []
            for p in pts:
                lut, ff = logic(p["stage_kind"], p["lut_size"], p["ff_size"])
                # counted, not fitted: memories in LUTs, pipeline and read registers
                model = (lut + p["memory_luts"] + p.get("pipe_lut", 0)) if res == "lut" \
                    else ff + p.get("pipe_ff", 0)
                rel.append(model / p[f"yosys_{res}"] - 1)
            rms = float(np.sqrt(np.mean(np.square(rel))))
            assert abs(rms - err[res]) < 0.002, (kind, res, rms, err[res])
            # the plumbing kinds are tens of LUTs an instance: a few LUTs are a large share;
            # LayerNorm's small instances sit ~20% over and its full-size one under
            assert rms < (0.35 if kind in PLUMBING_KINDS else 0.25), (kind, res, rms)


def test_stored_sizes_match_the_current_datapath_model(micro_graph_w3a3):
    """The sizes and DSPs stored with each point are what the model computes today for the
    same stage and folding (the model has not drifted from its calibration), and where
    Yosys kept products in DSPs it used as many as the model counts."""
    from hgpipe.graph.contract import Folding
    from hgpipe.plan.fold import stage_dims
    from hgpipe.resources.model import datapath
    from hgpipe.graph.ddr import DdrLayout
    from hgpipe.resources.offchip import arbiter_size, ddr_sizes
    g = micro_graph_w3a3
    kinds, plumbing = set(), []
    for p in coefficients()["points"]:
        if p["kind"] == "ddr":     # ddr/w8-b192-d400: beat bits, beats per image, depth
            w, b, d = (int(x[1:]) for x in p["label"].split("/")[1].split("-"))
            assert (p["lut_size"], p["ff_size"]) == ddr_sizes(DdrLayout(w, b, d)), p["label"]
            continue
        if p["kind"] == "axi_arbiter":     # axi_arbiter/n4: managers
            n = int(p["label"].split("/n")[1])
            assert (p["lut_size"], p["ff_size"]) == (arbiter_size(n, 128, 32), n), p["label"]
            continue
        if p["kind"] in PLUMBING_KINDS:
            plumbing.append(p)
            continue
        fields = p["label"].split("/")
        if len(fields) != 4 or fields[:2] != ["vit-micro", "w3a3"]:
            continue        # DeiT-tiny's and the attention units' own plans
        model, bits, stage, fold = fields
        tp, cip, cop = (int(x[len(k):]) for x, k in zip(fold.split("-"), ("tp", "cip", "cop")))
        st = g[stage]
        dp = datapath(st, Folding(tp, cip, cop), *stage_dims(g, st))
        assert (_listed(dp.lut_size), dp.ff_size, dp.dsp) == (p["lut_size"], p["ff_size"],
                                                              p["model_dsp"]), p["label"]
        assert dp.pipe_lut == p.get("pipe_lut", 0), p["label"]
        kinds.add(p["kind"])
    assert kinds == {"linear", "requant", "add", "layernorm", "softmax"}
    assert {p["kind"] for p in plumbing} == PLUMBING_KINDS
    for p in plumbing:
        part = _plumbing_part(p["label"])
        if part is not None:
            lut, ff = part.sizes()
            assert (p["lut_size"], p["ff_size"]) == (_listed(lut), ff), p["label"]
    dsp_points = [p for p in coefficients()["points"] if p["yosys_dsp"]]
    assert {p["kind"] for p in dsp_points} == {"layernorm", "softmax"}
    for p in dsp_points:
        assert p["model_dsp"] == p["yosys_dsp"], p["label"]


def test_the_head_is_costed_at_one_token_as_it_computes(micro_graph_w3a3):
    """``rtl.linear.HeadStage`` multiplies the class token's row alone, at any TP; every
    other linear stage has TP rows of products."""
    from hgpipe.graph.contract import Folding
    from hgpipe.plan.fold import stage_dims
    from hgpipe.resources.model import datapath
    g = micro_graph_w3a3
    for name, same in (("head", True), ("blocks.0.mlp.fc1", False)):
        st = g[name]
        one, two = (datapath(st, Folding(tp, 2, 2), *stage_dims(g, st)) for tp in (1, 2))
        assert ((one.lut_size, one.dsp, one.memories) == (two.lut_size, two.dsp,
                                                          two.memories)) == same, name


def test_dsp_split_matches_yosys():
    """``dsp_blocks`` against the DSP48E2 counts Yosys gave for stored signed products,
    from one block (<= 27 x 18) to splits in either operand."""
    from hgpipe.graph.intrange import IntRange
    from hgpipe.resources.model import dsp_blocks
    table = coefficients()["dsp_products"]
    assert len(table) >= 10 and max(table.values()) >= 3
    for key, n in table.items():
        a, b = (IntRange.of_bits(int(x[1:]), True) for x in key.split("*"))
        assert dsp_blocks(a, b) == n, key
    assert dsp_blocks(IntRange.of_bits(3, True), IntRange.of_bits(3, True)) == 0  # fabric


def test_deep_lut_roms_cost_what_yosys_maps_them_to():
    from hgpipe.resources.memory import lut_cost
    roms = coefficients()["rom_luts"]
    assert len(roms) >= 3
    for key, luts in roms.items():
        w, d = map(int, key.split("x"))
        assert abs(lut_cost(w, d) / luts - 1) < 0.1, (key, lut_cost(w, d), luts)


# ROMs measured once with Yosys 0.70 ``synth_xilinx -family xcup -nobram`` (the words in
# ``hgpipe.rtl.mem.rom_verilog``): name -> (width, words, Yosys LUTs)
_X = np.arange(512)
MEASURED_TABLES = {
    "3-bit requant, 512 words": (3, np.clip(np.round(_X * 0.037 - 9), -4, 3), 15),
    "8-bit requant, 512 words": (8, np.clip(np.round((_X - 256) * 0.7), -128, 127), 67),
    "16-bit rsqrt, 128 words": (16, np.round(2**15 / np.sqrt(np.arange(128) + 1)), 42),
}


def test_table_roms_cost_by_their_contents():
    """A table's ROM costs what its contents need (``rom_logic``), not a random ROM's
    figure: within 30% of Yosys on monotone tables whose random-content figure is up to
    1.3x Yosys's, and within 10% on the calibration's random ROMs; an identity table is
    its address bits, a constant one nothing."""
    from hgpipe.resources.memory import lut_cost
    for name, (w, words, yosys) in MEASURED_TABLES.items():
        words = [int(v) for v in words]
        est = lut_cost(w, len(words), words=words)
        assert 0.7 <= est / yosys <= 1.1, (name, est, yosys)
    # the calibration's random ROMs: its generator, in its order (``ROM_SHAPES`` of
    # benchmarks/calibrate_resources.py)
    rng, roms = np.random.default_rng(1), coefficients()["rom_luts"]
    for w, d in ((9, 512), (3, 2048), (9, 4096)):
        words = rng.integers(0, 1 << w, d).tolist()
        assert abs(lut_cost(w, d, words=words) / roms[f"{w}x{d}"] - 1) < 0.1, (w, d)
    assert lut_cost(9, 512, words=list(range(512))) == 0
    assert lut_cost(4, 300, words=[5] * 300) == 0
    # a 9-bit threshold (x >= c), a requant table's top bit: Yosys 3, 4, 2 LUTs
    for c, yosys in ((77, 3), (201, 4), (300, 2)):
        assert abs(lut_cost(1, 512, words=[int(x >= c) for x in range(512)]) - yosys) <= 1, c


def test_deep_lutrams_cost_what_yosys_maps_them_to():
    """Distributed RAMs past 64 words pay for the write decode and the read multiplexer
    (a 14 x 256 RAM: 82 LUTs measured, where its 32 RAM64M8 LUTs alone are 64)."""
    from hgpipe.resources.memory import lut_cost
    rams = coefficients()["ram_luts"]
    assert len(rams) >= 5 and max(int(k.split("x")[1]) for k in rams) >= 1024
    for key, luts in rams.items():
        w, d = map(int, key.split("x"))
        assert abs(lut_cost(w, d, rom=False) / luts - 1) < 0.1, (key, lut_cost(w, d, False), luts)


def test_adder_tree_bits_by_hand():
    from hgpipe.graph.intrange import IntRange
    from hgpipe.resources.model import tree_bits
    bit = IntRange(0, 1)
    assert tree_bits(1, bit) == 0
    assert tree_bits(4, bit) == 2 + 2 + 3          # [0,2] [0,2] -> [0,4]
    assert tree_bits(3, bit) == 2 + 2              # [0,2], carried [0,1] -> [0,3]
    assert tree_bits(2, IntRange(-12, 16)) == 7    # [-24, 32]


def test_every_fabric_product_is_calibrated():
    """The stored product table covers every pair of operand formats Yosys keeps in fabric
    (5 x 3 bits as well as 4 x 4), and a wider operand never costs fewer LUTs than a
    narrower one of the same signedness."""
    from hgpipe.graph.intrange import IntRange
    from hgpipe.resources.model import dsp_blocks, fabric_formats, product_luts
    pairs = fabric_formats()
    s3, s5 = IntRange.of_bits(3, True), IntRange.of_bits(5, True)
    assert (s5, s3) in pairs and (s5, IntRange.of_bits(4, True)) not in pairs
    for x, w in pairs:
        assert dsp_blocks(x, w) == 0
        n = product_luts(x, w)
        assert n >= 1
        if x.bits > 1:
            assert n >= product_luts(IntRange.of_bits(x.bits - 1, x.signed), w)
    # one LUT6 per output bit at most: 3 x 3 bits is a 6-input function
    assert product_luts(s3, s3) <= (s3 * s3).bits + 2


def test_a_product_costs_dsps_or_luts_as_yosys_maps_it():
    """A 5 x 3-bit product stays in fabric (8 bits of operands), a 5 x 4-bit one takes a
    DSP, as ``dsp_products`` measured."""
    from hgpipe.graph.intrange import IntRange
    from hgpipe.resources.model import _products, product_luts
    s3, s4, s5 = (IntRange.of_bits(b, True) for b in (3, 4, 5))
    lut, dsp, _ = _products(2, s5, s3, 12, 4)
    assert dsp == 0 and lut >= 2 * 4 * product_luts(s5, s3)
    assert _products(2, s5, s4, 12, 4)[1] == 2 * 4 * coefficients()["dsp_products"]["s5*s4"]


def test_placement_moves_luts_into_spare_blocks_only_while_luts_bind():
    from hgpipe.resources.memory import Memory, place_all
    rom = Memory("w", 4, 64, rom=True)             # 4 LUTs as a ROM, or a BRAM block
    budget = {"lut": 1000, "bram": 100, "uram": 0}
    # LUTs 90% used by logic: the ROM goes to a BRAM
    assert place_all([rom], budget, {"lut": 900})[0][0] == "bram"
    # LUTs barely used: it stays in LUTs rather than take a block
    assert place_all([rom], budget, {"lut": 0})[0][0] == "lutram"


def _plumbing_part(label: str):
    """The part a plumbing calibration label names (``gearbox/tp4-32to8-w3``,
    ``fork/w96-n3``, ``merge/w24-n3-r16``, ``fifo/w24-d16``, ``fifo/w24-d600-bram``); None
    for DeiT-tiny's own."""
    import re

    from hgpipe.plan.netlist import FifoPart, ForkPart, GearboxPart, MergePart
    kind, rest = label.split("/", 1)
    n = [int(x) for x in re.findall(r"\d+", rest)]
    if kind == "gearbox" and rest.startswith("tp"):
        return GearboxPart("g", "x", *n)
    if kind == "fork" and rest.startswith("w"):
        return ForkPart("f", "x", *n)
    if kind == "merge" and rest.startswith("w"):
        return MergePart("m", "x", *n)
    if kind == "fifo" and rest.startswith("w"):
        return FifoPart("q", "x", *n, "bram" if rest.endswith("-bram") else "lutram")
    return None

def _listed(size):
    """A size as JSON stores it (several terms: a list)."""
    return list(size) if isinstance(size, tuple) else size


def test_delay_lines_without_reset_are_shift_registers():
    """synth_xilinx's ``xilinx_srl -fixed -minlen 3``: three stages or more are one LUT a
    bit per 32 stages and no flip-flop; LayerNorm's s1 and beta waits are such lines
    (Yosys made 96 SRL16E of DeiT-tiny's norm1 at TP=4, where the model counts 98)."""
    from hgpipe.resources.registers import shift_register
    assert shift_register(8, 2) == (0, 16)
    assert shift_register(8, 3) == (8, 0)
    assert shift_register(8, 33) == (16, 0)
