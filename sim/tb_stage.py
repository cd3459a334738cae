"""The cocotb testbench every single-stage test runs: stream the vectors in (random valid
stalls), take the output (random ready stalls), score it and record transfer cycles. A
design with an AXI4 manager port ``m_axi`` gets an off-chip memory model on it, stalled
with the same probability."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Combine, with_timeout

from sim import ddr_model
from sim.streams import Clocked, Scoreboard, drive, monitor
from hgpipe.golden.vectors import Vectors


@cocotb.test()
async def stream_stage(dut):
    vec = Vectors.load(Path(os.environ["HGPIPE_VECTORS"]))
    rng = random.Random(vec.seed)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    clock = Clocked(dut)
    cocotb.start_soon(clock.run())
    for port in vec.inputs:
        getattr(dut, f"{port}__valid").value = 0
    dut.o__ready.value = 0
    ddr = ddr_model.attach(dut, "m_axi", vec.stall, random.Random(rng.random()),
                           vec.meta.get("ddr_regions"), vec.memory)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    taken = {p: [] for p in vec.inputs}
    words, cycles = [], []
    drivers = [cocotb.start_soon(drive(dut, p, s.pack(), vec.stall, random.Random(rng.random()),
                                       clock, taken[p])) for p, s in vec.inputs.items()]
    mon = cocotb.start_soon(monitor(dut, "o", len(vec.output.beats), vec.stall,
                                    random.Random(rng.random()), clock, words, cycles))
    await with_timeout(Combine(mon, *drivers), vec.timeout * 10, "ns")
    result = Scoreboard(vec.output.beats, vec.output.unpack).check(words)
    result.update(out_cycles=cycles, in_cycles=taken)
    if ddr is not None:
        result["ddr_strays"] = ddr.strays[:10]
    Path(os.environ["HGPIPE_RESULT"]).write_text(json.dumps(result))
    assert result["mismatches"] == 0, result["first_mismatch"]
    assert not result.get("ddr_strays"), f"accesses outside the regions: {ddr.strays[:10]}"
