"""What an off-chip stream costs on chip: its port logic (packer, burst counters, unpacker)
with its two word buffers, and the AXI arbiter that puts several streams on one port;
both calibrated on Yosys like the stages (kinds ``ddr`` and ``axi_arbiter``)."""

from __future__ import annotations

from ..graph.ddr import DdrLayout
from .memory import lut_cost
from .model import Resources, logic


def ddr_sizes(layout: DdrLayout) -> tuple[float, float]:
    """(LUT, FF) sizes of an off-chip FIFO's datapath beyond its fixed port logic: packing
    beats into a word (a slot multiplexer across the word, the unpacker's select) or
    splitting a wide beat (the beat and the held words)."""
    d, k, n, w = layout.data_bits, layout.pack, layout.split, layout.width
    lut = (d + 3 * k if k > 1 else 0) + (n - 1) * d / 2
    ff = (k * w if k > 1 else 0) + (w + (n - 1) * d if n > 1 else 0)
    return lut, ff


def ddr_fifo(layout: DdrLayout) -> Resources:
    """One off-chip FIFO on chip: its port logic (packer, burst counters, unpacker;
    calibrated as kind ``ddr`` on a FIFO alone on its port) and its two word buffers in
    LUTRAM. The arbiter of several is ``ddr_arbiter``."""
    lut, ff = logic("ddr", *ddr_sizes(layout))
    buffers = 2 * lut_cost(layout.data_bits, layout.buffer_words, rom=False)
    return Resources(lut=lut + buffers, ff=ff)


def arbiter_size(managers: int, data_bits: int, addr_bits: int = 32) -> float:
    """LUT size of the AXI arbiter: its multiplexed bits (write data and strobes, both
    address channels) times the LUTs Yosys spends per bit of a ``managers``-to-1
    multiplexer: one LUT6 up to 4 inputs, then about one per 2 (its ``pmux`` mapping)."""
    bits = data_bits + data_bits // 8 + 1 + 2 * (addr_bits + 13)
    return bits * (1.0 if managers <= 4 else managers / 2)


def ddr_arbiter(managers: int, data_bits: int, addr_bits: int = 32) -> Resources:
    """The AXI arbiter that puts ``managers`` off-chip FIFOs on one port (calibrated as kind
    ``axi_arbiter``); none for a single FIFO, which the ``ddr`` calibration includes."""
    if managers < 2:
        return Resources()
    lut, ff = logic("axi_arbiter", arbiter_size(managers, data_bits, addr_bits), managers)
    return Resources(lut=lut, ff=ff)
