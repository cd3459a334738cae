"""Performance of a plan: II, latency, FPS, GOP/s, bubbles, and the timing diagram.

The II is the slowest stage's contract cycles; the event-level schedule of ``images``
images through the planned FIFOs and buffers (``plan.schedule``) gives the first-image
latency, the steady-state interval it actually reaches (equal to the II when the FIFO
depths are right) and which stage works on which image when.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph.graph import INPUT, IntGraph
from ..graph.stages import AttentionScores, AttentionValue, Linear, Stage
from ..plan.plan import Plan
from ..plan.schedule import Schedule, simulate


def macs(graph: IntGraph, st: Stage) -> int:
    """Multiply-accumulates of one stage per image, on real tokens (padding rows are the
    hardware's cost, not the model's work)."""
    c = graph.config
    if isinstance(st, Linear):
        rows = 1 if st.cls_only else c.num_patches if st.inputs[0] == INPUT else c.num_tokens
        return rows * st.in_features * st.out_features
    if isinstance(st, (AttentionScores, AttentionValue)):
        return st.heads * c.num_tokens * c.num_tokens * st.head_dim
    return 0


def traffic_bytes(graph: IntGraph, plan: Plan, st: Stage) -> float:
    """On-chip bytes a stage moves per image: its input and output streams, and its weight
    (or K/V buffer) reads, once per token group; padding rows included."""
    graph = plan.laid_out(graph)

    def tensor_bits(name):
        shape = graph.shape(name)
        n = 1
        for d in shape:
            n *= d
        return n * (graph.input_range.bits if name == INPUT else graph[name].out_range.bits)
    bits = sum(tensor_bits(i) for i in st.inputs) + tensor_bits(st.name)
    sp = plan.stage(st.name)
    groups = sp.tokens // sp.folding.tp
    if isinstance(st, Linear):
        bits += (1 if st.cls_only else groups) * st.weight.size * st.derived["weight"].bits
    elif isinstance(st, (AttentionScores, AttentionValue)):
        bits += groups * st.heads * sp.tokens * st.head_dim * st.in_ranges[-1].bits
    return bits / 8


@dataclass(frozen=True)
class Performance:
    clock_mhz: float
    ii_cycles: int
    steady_ii_cycles: float       # measured between the last two images of the schedule
    latency_cycles: float         # first image: first input beat to last output beat
    ops_per_image: int            # 2 x MACs
    busy: dict[str, float]        # stage cycles / II: 1 - bubble fraction
    timeline: dict[str, list[tuple[float, float]]]  # per stage, per image: (start, end)
    images: int

    @property
    def fps(self) -> float:
        return self.clock_mhz * 1e6 / self.ii_cycles

    @property
    def latency_us(self) -> float:
        return self.latency_cycles / self.clock_mhz

    @property
    def gops(self) -> float:
        return self.ops_per_image * self.fps / 1e9

    def to_dict(self) -> dict:
        return {"ii_cycles": self.ii_cycles, "steady_ii_cycles": round(self.steady_ii_cycles, 1),
                "latency_cycles": round(self.latency_cycles, 1),
                "latency_us": round(self.latency_us, 2), "fps": round(self.fps, 1),
                "gops": round(self.gops, 1), "ops_per_image": self.ops_per_image,
                "schedule_images": self.images}


def schedule(plan: Plan, images: int) -> Schedule:
    return simulate(list(plan.nodes), images, plan.depths, plan.banks)


def evaluate(graph: IntGraph, plan: Plan, images: int = 5) -> Performance:
    if images < 2:
        raise ValueError(f"images={images}: expected >= 2 to measure an interval")
    sch = schedule(plan, images)
    out = graph.output.name
    done = [sch.done(out, n) for n in range(images)]
    timeline = {n.name: [(sch.start(n.name, i), sch.end(n.name, i)) for i in range(images)]
                for n in plan.nodes if n.name != INPUT}
    return Performance(
        clock_mhz=plan.clock_mhz, ii_cycles=plan.ii,
        steady_ii_cycles=done[-1] - done[-2], latency_cycles=done[0],
        ops_per_image=2 * sum(macs(graph, st) for st in graph.stages),
        busy={s.name: s.cycles / plan.ii for s in plan.stages},
        timeline=timeline, images=images)
