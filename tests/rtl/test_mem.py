"""Memories as Verilog modules (``hgpipe.rtl.mem``): ROM contents reach the Verilog
exactly, identical ROMs share a module, and misuse is an error rather than a design with
a ROM missing. Their read behaviour is checked in cocotb by every stage test."""

from __future__ import annotations

import re

import pytest
from amaranth import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hgpipe.rtl.generate import verilog
from hgpipe.rtl.mem import Rom
from sim.lint import lint


class TwoRoms(wiring.Component):
    """Two ROMs read at the same address: equal contents, and a signed one."""

    def __init__(self, words, signed_words):
        self.words, self.signed_words = words, signed_words
        super().__init__({"addr": In(2), "a": Out(8), "b": Out(8), "c": Out(signed(4))})

    def elaborate(self, platform):
        m = Module()
        ports = []
        for name, rom in (("ra", Rom(8, self.words)), ("rb", Rom(8, self.words)),
                          ("rc", Rom(signed(4), self.signed_words))):
            m.submodules[name] = rom
            p = rom.read_port()
            m.d.comb += p.addr.eq(self.addr)
            ports.append(p.data)
        m.d.comb += [self.a.eq(ports[0]), self.b.eq(ports[1]), self.c.eq(ports[2])]
        return m


def test_rom_words_reach_the_verilog_and_equal_roms_share_a_module():
    src = verilog(TwoRoms([1, 0xab, 0, 255], [-1, -8, 7, 0]), "two_roms")
    roms = re.findall(r"^module (hgpipe_rom_\w+)", src, re.M)
    assert len(roms) == 2                      # the two equal ROMs are one module
    assert "mem[1] = 8'hab;" in src and "mem[3] = 8'hff;" in src
    assert "mem[0] = 4'hf;" in src and "mem[1] = 4'h8;" in src    # two's complement
    assert lint(src, "two_roms") == []


def test_a_word_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        Rom(4, [16])
    with pytest.raises(ValueError, match="does not fit"):
        Rom(signed(4), [8])


def test_a_rom_converted_without_the_collector_is_an_error():
    from amaranth.back import verilog as back
    with pytest.raises(RuntimeError, match="outside hgpipe.rtl.generate.verilog"):
        back.convert(TwoRoms([0], [0]), name="x")


def test_placed_memories_carry_the_synthesis_attribute():
    from hgpipe.rtl.plumbing import Fifo
    src = verilog(Fifo(8, 16, style="lutram"), "fifo_lutram")
    assert re.search(r'^module hgpipe_ram_lutram\b', src, re.M)
    assert '(* ram_style = "distributed" *) reg [WIDTH-1:0] mem' in src
    assert "hgpipe_ram_lutram" in src.split("module hgpipe_ram ")[0]   # the FIFO uses it
    assert lint(src, "fifo_lutram") == []
    # unplaced: the tool chooses, and no placed variant is written
    src = verilog(Fifo(8, 16), "fifo_auto")
    assert "ram_style" not in src and "hgpipe_ram_lutram" not in src


def test_a_linear_stage_places_its_memories_as_told(micro_graphs):
    from hgpipe.graph.contract import Folding
    from hgpipe.rtl.linear import LinearStage
    st, f = micro_graphs[0]["w3a3"]["blocks.0.mlp.fc1"], Folding(1, 4, 2)
    src = verilog(LinearStage(st, f, styles={"weights": "bram", "bias": "lutram",
                                             "row": "lutram"}), "lin")
    # Vivado's attribute (a LUT ROM is "logic" to Yosys, behind `ifdef YOSYS)
    styles = re.findall(r'\(\* rom_style = "(block|distributed)" \*\)\s*(?:`endif\s*)?'
                        r'reg \[(\d+):0\]', src)
    assert '`ifdef YOSYS\n  (* rom_style = "logic" *)' in src
    wb, ab = st.derived["weight"].bits, st.derived["acc"].bits
    assert sorted(styles) == sorted([("block", str(f.cop * f.cip * wb - 1)),
                                     ("distributed", str(f.cop * ab - 1))])
    assert re.search(r"hgpipe_ram_lutram #\(", src)
    assert lint(src, "lin") == []
    with pytest.raises(ValueError, match="style='flash'"):
        Rom(4, [1], "flash")
