"""The cocotb testbench of a whole generated accelerator: images streamed back to back
into ``s_axis`` (random valid stalls), logits out of ``m_axis`` (random ready stalls),
scored against the golden model; at each image's last output beat it records the cycle
and reads every stage's busy counter from the status registers over AXI4-Lite
(``sim.axil``, where the design has them), from which the II, latency and bubbles
follow. An
accelerator with FIFOs in DDR gets a memory model on ``m_axi`` (random stalls on every
channel) that fails the run on any access outside their rings."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Combine, with_timeout

from sim import ddr_model
from sim.axil import AxiLite, SnapshotReader
from sim.streams import Clocked, Scoreboard, drive, monitor
from hgpipe.golden.vectors import Vectors


@cocotb.test()
async def accelerator(dut):
    vec = Vectors.load(Path(os.environ["HGPIPE_VECTORS"]))
    meta = vec.meta
    rng = random.Random(vec.seed)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    clock = Clocked(dut)
    cocotb.start_soon(clock.run())
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tlast.value = 0
    dut.m_axis_tready.value = 0
    status = SnapshotReader(AxiLite(dut), meta["stages"]) if meta["stages"] else None
    ddr = ddr_model.attach(dut, "m_axi", vec.stall, random.Random(rng.random()),
                           meta.get("ddr_regions"), vec.memory)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    n_out = meta["beats_per_image_out"]
    ends, bad_last = [], []
    if status:
        cocotb.start_soon(status.run())

    def on_beat(i):
        last = int(dut.m_axis_tlast.value)
        if last != int(i % n_out == n_out - 1):
            bad_last.append(i)
        if i % n_out == n_out - 1:
            ends.append(clock.cycle)
            if status:
                status.request()

    taken, words, cycles = [], [], []
    driver = cocotb.start_soon(drive(dut, "s_axis", vec.inputs["s_axis"].pack(), vec.stall,
                                     random.Random(rng.random()), clock, taken,
                                     last_every=meta["beats_per_image_in"]))
    mon = cocotb.start_soon(monitor(dut, "m_axis", len(vec.output.beats), vec.stall,
                                    random.Random(rng.random()), clock, words, cycles, on_beat))
    await with_timeout(Combine(mon, driver), vec.timeout * 10, "ns")
    if status:
        await with_timeout(status.idle.wait(), 10 * (len(meta["stages"]) + 8) * 10, "ns")
    result = Scoreboard(vec.output.beats, vec.output.unpack).check(words)
    result.update(out_cycles=cycles, in_cycles={"s_axis": taken}, image_ends=ends,
                  status=status.records if status else [],
                  bad_tlast=bad_last[:10], ddr_strays=ddr.strays[:10] if ddr else [])
    Path(os.environ["HGPIPE_RESULT"]).write_text(json.dumps(result))
    assert result["mismatches"] == 0, result["first_mismatch"]
    assert not result["ddr_strays"], f"DDR accesses outside the rings: {result['ddr_strays']}"
    assert not bad_last, f"m_axis_tlast wrong at beats {bad_last[:10]}"
