"""cocotb testbench of the status registers alone (``hgpipe.rtl.status``): random busy
bits every cycle and random image ends, each snapshot read over AXI4-Lite and compared
with a count kept here; a snapshot on a CONTROL write; SLVERR for unmapped reads and for
writes other than CONTROL. Settings come in the vectors' ``meta``."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, with_timeout

from hgpipe.golden.vectors import Vectors
from hgpipe.rtl.status import STATUS_ID, Regs
from sim.axil import AxiLite, SnapshotReader


@cocotb.test()
async def status(dut):
    meta = Vectors.load(Path(os.environ["HGPIPE_VECTORS"])).meta
    n, cycles, p_busy, p_done = meta["counters"], meta["cycles"], meta["p_busy"], meta["p_done"]
    rng = random.Random(meta["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    bus = AxiLite(dut)
    names = [f"s{k}" for k in range(n)]
    reader = SnapshotReader(bus, names)
    dut.stage_busy.value = 0
    dut.image_done.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    cocotb.start_soon(reader.run())
    edges, images, busy = 0, 0, [0] * n
    expected: dict[int, dict] = {}      # by images counted: the snapshot as counted here
    for _ in range(cycles):
        bits = [int(rng.random() < p_busy) for _ in range(n)]
        done = int(rng.random() < p_done)
        dut.stage_busy.value = sum(b << k for k, b in enumerate(bits))
        dut.image_done.value = done
        # the rising edge ahead counts these bits, and a snapshot taken there holds them
        edges += 1
        images += done
        busy = [c + b for c, b in zip(busy, bits)]
        if done:
            expected[images] = {"cycle": edges, "images": images,
                                "busy": dict(zip(names, busy))}
            reader.request()
        await FallingEdge(dut.clk)
    dut.stage_busy.value = 0
    dut.image_done.value = 0
    await with_timeout(reader.idle.wait(), 100 * (n + 8), "ns")
    checks = {"id": (await bus.read(Regs.ID))[0] == STATUS_ID,
              "counters": (await bus.read(Regs.COUNTERS))[0] == n,
              "unmapped_read": (await bus.read(Regs.busy(n)))[1] == 0b10,
              "reserved_read": await bus.read(Regs.IMAGES + 4) == (0, 0),
              "write_elsewhere": await bus.write(Regs.ID, 1) == 0b10,
              "control_write": await bus.write(Regs.CONTROL, 1) == 0}
    # the CONTROL write took a snapshot with no image and no busy bit since the last
    snaps_before = len(expected) + 1
    control = {"snapshots": (await bus.read(Regs.SNAPSHOTS))[0],
               "images": (await bus.read(Regs.IMAGES))[0],
               "busy": [(await bus.read(Regs.busy(k)))[0] for k in range(n)]}
    checks["control_snapshot"] = control == {"snapshots": snaps_before, "images": images,
                                             "busy": busy}
    got = {r["images"]: r for r in reader.records}
    wrong = [k for k, r in got.items() if expected.get(k) != r]
    result = {"received": len(got), "expected": len(expected), "mismatches": len(wrong),
              "first_mismatch": {"got": got[wrong[0]], "expected": expected.get(wrong[0])}
              if wrong else None, "out_cycles": [], "in_cycles": {}, "checks": checks}
    Path(os.environ["HGPIPE_RESULT"]).write_text(json.dumps(result))
    assert not wrong and all(checks.values()), (wrong[:1], checks)
