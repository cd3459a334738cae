"""Off-chip streams in cocotb against cocotbext-axi's memory model: several FIFOs share one
AXI4 port through the arbiter, every channel stalls at random, and every beat comes out
once, in order, over many images (bursts wrap the ring several times); the classifier
head computes from weights streamed out of a preloaded DDR image."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hgpipe.graph.contract import Folding, cycles
from hgpipe.graph.ddr import DdrLayout
from hgpipe.rtl.axi import AxiParams, arbiter_params, top_members
from hgpipe.rtl.ddr import DdrFifo, DdrWeights, ddr_port
from hgpipe.rtl.linear import HeadStage, weight_words
from hgpipe.rtl.plumbing import Fork, Merge
from sim import runner
from sim.stage_io import stage_vectors
from hgpipe.golden.vectors import Stream, Vectors

from .conftest import SIMULATORS


class DdrHarness(wiring.Component):
    """i -> Fork -> ``n`` DdrFifos (one AXI port) -> Merge taking a beat from each in
    turn -> o: every beat comes out ``n`` times."""

    def __init__(self, layout: DdrLayout, n: int, axi: AxiParams = AxiParams()):
        self.layout, self.n, self.axi = layout, n, axi
        super().__init__({"i": In(stream.Signature(layout.width)),
                          "o": Out(stream.Signature(layout.width)),
                          **top_members(arbiter_params(n, axi), "m_axi")})

    def base(self, k: int) -> int:
        return 0x10000 + k * self.layout.region_bytes

    def elaborate(self, platform):
        m = Module()
        lay, n = self.layout, self.n
        m.submodules.fork = fork = Fork(lay.width, n)
        m.submodules.merge = merge = Merge(lay.width, n, 1)
        wiring.connect(m, wiring.flipped(self.i), fork.i)
        fifos = []
        for k in range(n):
            f = DdrFifo(lay, self.base(k), self.axi)
            m.submodules[f"fifo{k}"] = f
            wiring.connect(m, getattr(fork, f"o{k}"), f.i)
            wiring.connect(m, f.o, getattr(merge, f"i{k}"))
            fifos.append(f)
        wiring.connect(m, merge.o, wiring.flipped(self.o))
        ddr_port(m, self, "m_axi", fifos, self.axi)
        return m


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("width, beats, depth, n", [(8, 150, 200, 2), (40, 50, 60, 3),
                                                    (300, 9, 20, 2)])
def test_ddr_fifo_keeps_every_beat_in_order(simulator, stall, width, beats, depth, n):
    # 4-word bursts: several a image, the last one short (words per image 10, 17, 27)
    lay = DdrLayout(width, beats, depth, burst=4)
    images = 7
    rng = np.random.default_rng(width)
    x = rng.integers(0, 1 << min(width, 62), (images * beats, 1)) if width <= 62 else \
        rng.integers(0, 2, (images * beats, width))
    bits, lanes_x = (width, x) if width <= 62 else (1, x)
    vec = Vectors(inputs={"i": Stream(lanes_x, bits, False)},
                  output=Stream(np.repeat(lanes_x, n, axis=0), bits, False), images=images,
                  stall=stall, seed=5, timeout=60_000)
    dut = DdrHarness(lay, n)
    vec.meta["ddr_regions"] = [[dut.base(k), lay.ring_bytes] for k in range(n)]
    r = runner.run(dut, f"ddr_{width}_{beats}_{n}", vec, simulator)
    assert r.bit_exact and not r.extra["ddr_strays"], (r.first_mismatch, r.extra)
    # several images' bursts went round the ring
    assert images * lay.bursts_per_image > 2 * lay.ring_bursts


class HeadFromDdr(wiring.Component):
    """The classifier head with its weights streamed from a preloaded DDR image."""

    def __init__(self, st, f, tokens, base=0x2000):
        self.head_f = Folding(1, f.cip, f.cop)
        words = weight_words(st, self.head_f)
        self.layout = DdrLayout(f.cop * f.cip * st.derived["weight"].bits, len(words),
                                len(words), readonly=True)
        self.st, self.f, self.tokens, self.base = st, f, tokens, base
        self.image = self.layout.image(words)
        head = HeadStage(st, f, tokens, weights="stream")
        super().__init__({"i": In(head.i.signature.flip()), "o": Out(head.o.signature),
                          **top_members(arbiter_params(1, AxiParams()), "m_axi")})
        self.head = head

    def elaborate(self, platform):
        m = Module()
        m.submodules.head = head = self.head
        m.submodules.weights = w = DdrWeights(self.layout, self.base, AxiParams())
        wiring.connect(m, wiring.flipped(self.i), head.i)
        wiring.connect(m, head.o, wiring.flipped(self.o))
        wiring.connect(m, w.o, head.w)
        ddr_port(m, self, "m_axi", [w], AxiParams())
        return m


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("folding", [Folding(2, 4, 5), Folding(1, 16, 2)], ids=str)
def test_head_with_weights_from_ddr(micro_graphs, simulator, stall, folding):
    """Bit-exact with the ROM version's golden vectors, and, without stalls, at the ROM's
    cycles per image once the first weights have arrived (the read buffer covers the
    memory's latency)."""
    graphs, patches = micro_graphs
    g = graphs["w4a4"]
    tokens, channels = g.shape("norm")
    dut = HeadFromDdr(g["head"], folding, tokens)
    vec = stage_vectors(g, "head", patches["w4a4"], folding, stall=stall, seed=7)
    vec.memory = {dut.base: dut.image}
    vec.meta["ddr_regions"] = [[dut.base, dut.layout.ring_bytes]]
    r = runner.run(dut, f"head_ddr_{folding.tp}_{folding.cip}_{folding.cop}", vec, simulator)
    assert r.bit_exact and not r.extra["ddr_strays"], (r.first_mismatch, r.extra)
    if stall == 0.0:
        intervals = r.image_interval(len(vec.output.beats) // vec.images)
        declared = cycles(g["head"], folding, tokens, channels)
        assert intervals[-1] == declared and max(intervals) <= declared, (intervals, declared)
