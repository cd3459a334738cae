"""End-to-end simulation of a generated accelerator against the golden model.

``top_vectors`` turns images into the AXI-Stream beats the top level takes and the logits
it must give; ``simulate`` builds and runs the ``sim.tb_top`` testbench and measures the
steady-state II (between the last two images' last output beats), the first image's
latency (its first input beat to its last output beat) and each stage's busy fraction
over the last interval.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hgpipe.choice import Choice
from hgpipe.graph import IntGraph
from hgpipe.rtl.accelerator import Accelerator, safe
from hgpipe.rtl.generate import TOP, Rtl

from hgpipe.golden.vectors import Vectors, top_vectors  # noqa: F401  (re-exported)

from . import native, runner


class Testbench(Choice):
    """Which testbench runs the whole accelerator."""
    COCOTB = "cocotb"   # sim.tb_top: Python in the clock loop, both simulators, DDR model
    NATIVE = "native"   # sim.native: a Verilog harness under Verilator, no Python per cycle
    AUTO = "auto"       # native where it can run (Verilator, no DDR), else cocotb

    def pick(self, simulator: str, acc: Accelerator) -> "Testbench":
        if self is not Testbench.AUTO:
            return self
        ok = simulator == "verilator" and native.supported(acc) is None
        return Testbench.NATIVE if ok else Testbench.COCOTB


@dataclass
class E2EResult:
    bit_exact: bool
    images: int
    mismatches: int
    first_mismatch: dict | None
    measured_ii_cycles: int | None
    measured_latency_cycles: int
    image_end_cycles: list[int]
    stage_busy: dict[str, float]
    build_seconds: float = 0.0      # compiling the simulator (0 when cached)
    run_seconds: float = 0.0        # simulating

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def measure(graph: IntGraph, r: runner.SimResult) -> E2EResult:
    ends = r.extra["image_ends"]
    start = r.in_cycles["s_axis"][0]
    ii = ends[-1] - ends[-2] if len(ends) >= 2 else None
    stage_busy = {}
    # the status registers' snapshots by the images they count (a snapshot the reader
    # saw overtaken by the next is missing)
    snaps = {s["images"]: s for s in r.extra.get("status", [])}
    if len(ends) >= 2:
        # bubbles in the last interval that ends while images still stream in: after the
        # input has ended the first stages drain and would look idle. With too few images
        # for the pipeline's depth no interval does, and nothing is measured. Interval j
        # runs from image j - 1's last beat (j images out) to image j's (j + 1 out).
        last_in = r.in_cycles["s_axis"][-1]
        full = [j for j in range(1, len(ends))
                if ends[j] <= last_in and j in snaps and j + 1 in snaps]
        if full:
            a, b = snaps[full[-1]], snaps[full[-1] + 1]
            span = b["cycle"] - a["cycle"]
            for st in graph.stages:
                s = safe(st.name)
                stage_busy[st.name] = round(((b["busy"][s] - a["busy"][s]) % 2**32) / span, 4)
    return E2EResult(bit_exact=r.bit_exact and not r.extra.get("bad_tlast")
                     and not r.extra.get("ddr_strays"),
                     images=len(ends), mismatches=r.mismatches,
                     first_mismatch=r.first_mismatch, measured_ii_cycles=ii,
                     measured_latency_cycles=ends[0] - start, image_end_cycles=ends,
                     stage_busy=stage_busy)


def simulate(graph: IntGraph, acc: Accelerator, patches: np.ndarray, *,
             simulator: str = "verilator", stall: float = 0.0, seed: int = 0,
             cycles_per_image: int = 0, source: Rtl | None = None,
             build_root: Path = runner.DEFAULT_BUILD, optimize: bool = False,
             testbench: Testbench = Testbench.COCOTB, threads: int = 1,
             hier: bool = False, train_cycles: int = 0, progress=None) -> E2EResult:
    """Run the images through the accelerator (``source``: its RTL, if already made).
    The native testbench calls ``progress(cycle, beats_out)`` as it runs; ``hier``: its
    build makes ``native.hier_blocks`` Verilator hierarchical blocks; ``train_cycles``
    (with ``optimize``): its build is profile-guided by that many cycles of this run
    (``native.Training``)."""
    vec = top_vectors(graph, acc, patches, stall, seed, cycles_per_image)
    rtl = source if source is not None else Rtl(runner.verilog(acc, TOP))
    src = rtl.verilog
    testbench = testbench.pick(simulator, acc)
    if testbench is Testbench.NATIVE:
        why = native.supported(acc) or (None if simulator == "verilator" else
                                        f"it runs on Verilator only, not {simulator}")
        if why:
            raise ValueError(f"testbench=native: {why}")
        t0 = time.perf_counter()
        train = native.Training(vec, rtl, train_cycles) if train_cycles else None
        bdir = native.build(src, native.harness(acc, TOP), build_root, optimize, threads,
                            blocks=native.hier_blocks(src) if hier else None, train=train)
        t1 = time.perf_counter()
        r = native.run(bdir, vec, progress, every=max(1024, cycles_per_image // 16),
                       files=rtl)
    else:
        t0 = time.perf_counter()
        runner.build(src, TOP, simulator, build_root, optimize)
        t1 = time.perf_counter()
        r = runner.run(src, TOP, vec, simulator, build_root=build_root,
                       testbench="sim.tb_top", optimize=optimize, files=rtl)
    return dataclasses.replace(measure(graph, r), build_seconds=round(t1 - t0, 2),
                               run_seconds=round(time.perf_counter() - t1, 2))
