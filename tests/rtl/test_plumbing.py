"""Stream plumbing in cocotb: gearboxes keep every element in order under stalls; a fork
feeding two FIFOs merged back gives each beat twice (broadcast without loss or repeats)."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hgpipe.graph.contract import from_beats, to_beats
from hgpipe.rtl.plumbing import Fifo, Fork, Gearbox, Merge
from sim import runner
from hgpipe.golden.vectors import Stream, Vectors

from .conftest import SIMULATORS

BITS = 5


def _tensor(seed, images=3, tokens=8, channels=12):
    return np.random.default_rng(seed).integers(-16, 16, (images, tokens, channels))


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("tp, a, b", [(2, 4, 6), (1, 12, 3), (2, 3, 12), (4, 2, 2),
                                      (4, 1, 12), (4, 12, 1), (2, 4, 1), (1, 1, 4)])
def test_gearbox(simulator, stall, tp, a, b):
    """Width converters (one count divides the other) and the shift register (4 -> 6):
    every element in order, and without stalls min(a, b) elements a cycle per slot."""
    x = _tensor(tp * 10 + a)
    vec = Vectors(inputs={"i": Stream(to_beats(x, tp, a), BITS, True)},
                  output=Stream(to_beats(x, tp, b), BITS, True), images=3, stall=stall,
                  seed=3, timeout=20_000)
    assert np.array_equal(from_beats(vec.output.beats, 3, 8, 12, tp, b), x)
    r = runner.run(Gearbox(tp, a, b, BITS), f"gearbox_{tp}_{a}_{b}", vec, simulator)
    assert r.bit_exact, r.first_mismatch
    if stall == 0.0 and (a % b == 0 or b % a == 0):   # full rate once primed
        span = r.out_cycles[-1] - r.out_cycles[0]
        assert span == (len(r.out_cycles) - 1) * max(1, b // a), (span, len(r.out_cycles))


class ForkMerge(wiring.Component):
    """Fork -> two FIFOs -> Merge taking one beat from each in turn."""

    def __init__(self, width):
        self.width = width
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fork = fork = Fork(self.width, 2)
        m.submodules.merge = merge = Merge(self.width, 2, 1)
        wiring.connect(m, wiring.flipped(self.i), fork.i)
        for k, depth in enumerate((2, 5)):
            m.submodules[f"fifo{k}"] = q = Fifo(self.width, depth)
            wiring.connect(m, getattr(fork, f"o{k}"), q.i)
            wiring.connect(m, q.o, getattr(merge, f"i{k}"))
        wiring.connect(m, merge.o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_fork_fifo_merge(simulator, stall):
    beats = np.random.default_rng(1).integers(0, 1 << 12, (60, 1))
    vec = Vectors(inputs={"i": Stream(beats, 12, False)},
                  output=Stream(np.repeat(beats, 2, axis=0), 12, False), stall=stall, seed=4,
                  timeout=5_000)
    r = runner.run(ForkMerge(12), "fork_merge", vec, simulator)
    assert r.bit_exact, r.first_mismatch


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("depth", [2, 7])
def test_fifo_keeps_order_and_runs_at_full_rate(simulator, stall, depth):
    """Every beat once, in order, under stalls; without them one beat a cycle."""
    beats = np.random.default_rng(depth).integers(0, 1 << 9, (50, 1))
    vec = Vectors(inputs={"i": Stream(beats, 9, False)}, output=Stream(beats, 9, False),
                  stall=stall, seed=6, timeout=5_000)
    r = runner.run(Fifo(9, depth), f"fifo_{depth}", vec, simulator)
    assert r.bit_exact, r.first_mismatch
    if stall == 0.0:
        assert r.out_cycles[-1] - r.out_cycles[0] == len(beats) - 1
