"""Off-chip memory for testbenches: cocotbext-axi's ``AxiRam`` on a design's AXI4 manager
port, every channel stalled at random (ready held low on AW/W/AR, valid on B/R) with the
run's stall probability. Given the design's regions (``[base, bytes]``), every access
outside them is recorded (``Ddr.strays``), so a FIFO that runs past its ring fails."""

from __future__ import annotations

import logging
import random


def _pauses(stall: float, rng: random.Random):
    while True:
        yield bool(stall) and rng.random() < stall


class Ddr:
    def __init__(self, ram, regions):
        self.ram, self.regions, self.strays = ram, [tuple(r) for r in regions or ()], []
        for side, name in ((ram.write_if, "_write"), (ram.read_if, "_read")):
            inner = getattr(side, name)

            async def checked(address, *args, _inner=inner, _kind=name[1:]):
                if self.regions and not any(b <= address < b + n for b, n in self.regions):
                    self.strays.append((_kind, address))
                return await _inner(address, *args)
            setattr(side, name, checked)


def attach(dut, prefix: str, stall: float, rng: random.Random, regions=None,
           preload: dict[int, bytes] | None = None, size: int = 1 << 32) -> Ddr | None:
    """A memory on port ``prefix`` if the design has one (holding ``preload``: base ->
    bytes), else None."""
    if not hasattr(dut, f"{prefix}_awvalid"):
        return None
    from cocotbext.axi import AxiBus, AxiRam
    ram = AxiRam(AxiBus.from_prefix(dut, prefix), dut.clk, dut.rst, size=size)
    for base, data in (preload or {}).items():
        ram.write(base, data)
    for side in (ram.write_if, ram.read_if):
        side.log.setLevel(logging.WARNING)
    for ch in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
               ram.read_if.ar_channel, ram.read_if.r_channel):
        ch.set_pause_generator(_pauses(stall, random.Random(rng.random())))
    return Ddr(ram, regions)
