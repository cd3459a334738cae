"""The accelerator's parts and their connections, decided from the graph and the plan.

Every part that will be built is listed here as typed data: each stage's unit (one per
head for QK^T, softmax and AV), the head merge after AV, and per tensor the plumbing
that carries it to its consumers: a ``Fork`` where it has several lane counts or several
consumers, one ``Gearbox`` per lane count that differs from the producer's, and per
consumer a FIFO (on chip, as deep as the plan's buffer, or the DDR ring the plan chose).
The RTL (``hgpipe.rtl.accelerator``) instantiates this list one to one and wires its
links; the resource model (``hgpipe.resources.parts``) costs it one to one; the report
lists it.

A link joins ``(part, port)`` to ``(part, port)``; stage ports are the components' own:
``i`` (or ``i0``, ``i1``) and ``o``; plumbing has ``i``, ``o`` and ``o<k>`` / ``i<k>``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from ..graph.contract import Folding, contract, fifo_beats, input_lanes
from ..graph.ddr import DdrLayout
from ..graph.graph import INPUT, IntGraph
from ..graph.stages import AttentionScores, AttentionValue, Linear, Softmax, Stage
from ..resources import plumbing
from ..resources.model import Resources
from .plan import Plan

INPUT_FIFO = "s_axis_fifo"
INPUT_FIFO_BEATS = 2
OUT_GROUP = ":out"    # the FIFO group of a stage's per-head output FIFOs (AV's)


class PartKind(enum.Enum):
    STAGE = "stage"            # a stage's unit (per head for QK^T, softmax, AV)
    FIFO = "fifo"              # an on-chip FIFO
    DDR_FIFO = "ddr_fifo"      # a FIFO whose words wait in DDR
    DDR_WEIGHTS = "ddr_weights"  # a stage's weights streamed from DDR
    FORK = "fork"              # one stream to several
    GEARBOX = "gearbox"        # lanes per token slot changed
    MERGE = "merge"            # per-head rows into one stream
    STATUS = "status"          # the busy counters behind the AXI4-Lite status port


PLUMBING = (PartKind.FIFO, PartKind.FORK, PartKind.GEARBOX, PartKind.MERGE, PartKind.STATUS)
STATUS = "status"       # the status part's name and owner

@dataclass(frozen=True)
class Part:
    """One instance: its name in the Verilog and the stage or edge (``src->dst``) it
    serves."""
    name: str
    owner: str

    kind = PartKind.STAGE   # each subclass sets its own

    def sizes(self) -> tuple[float, float]:
        """(LUT size, FF size) of a plumbing part's logic (``hgpipe.resources.plumbing``)."""
        raise TypeError(f"{type(self).__name__} {self.name} is costed by its stage")

    def logic(self) -> Resources:
        """Calibrated logic of a plumbing part (a FIFO's words apart)."""
        return plumbing.plumbing_logic(self.kind.value, self.sizes())


@dataclass(frozen=True)
class StageUnit(Part):
    """A stage's component; ``head`` for per-head units, ``banks`` the image banks of an
    attention unit's K/Q (V) buffer."""
    head: int | None = None
    banks: int = 0
    kind = PartKind.STAGE


@dataclass(frozen=True)
class FifoPart(Part):
    width: int
    beats: int
    memory: str | None = None   # lutram / bram / uram as placed; None: the tool's choice
    kind = PartKind.FIFO

    def sizes(self):
        return plumbing.fifo_sizes(self.width, self.beats, self.memory)

    @property
    def group(self) -> str:
        """The memory the plan places its words in, shared with the FIFOs of the same
        group (one copy each): its edge ``src->dst``, the input FIFO's ``patches``, or
        ``stage:out`` for AV's per-head output FIFOs."""
        return self.owner if "->" in self.owner or self.owner == INPUT \
            else f"{self.owner}{OUT_GROUP}"

    def words(self) -> Resources:
        return plumbing.fifo_words(self.name, self.width, self.beats, self.memory)


@dataclass(frozen=True)
class DdrFifoPart(Part):
    width: int
    beats: int
    layout: DdrLayout
    base: int
    kind = PartKind.DDR_FIFO


@dataclass(frozen=True)
class DdrWeightsPart(Part):
    layout: DdrLayout
    base: int
    kind = PartKind.DDR_WEIGHTS


@dataclass(frozen=True)
class ForkPart(Part):
    width: int
    ways: int
    kind = PartKind.FORK

    def sizes(self):
        return plumbing.fork_sizes(self.width, self.ways)


@dataclass(frozen=True)
class GearboxPart(Part):
    tp: int
    lanes_in: int
    lanes_out: int
    bits: int
    kind = PartKind.GEARBOX

    def sizes(self):
        return plumbing.gearbox_sizes(self.tp, self.lanes_in, self.lanes_out, self.bits)


@dataclass(frozen=True)
class MergePart(Part):
    width: int
    heads: int
    row: int            # beats of one head's row
    kind = PartKind.MERGE

    def sizes(self):
        return plumbing.merge_sizes(self.width, self.heads, self.row)


@dataclass(frozen=True)
class StatusPart(Part):
    """The status registers (``hgpipe.rtl.status``): one busy counter per stage, in
    ``counters`` order (the graph's), read over AXI4-Lite."""
    counters: tuple[str, ...]
    kind = PartKind.STATUS

    def sizes(self):
        return plumbing.status_sizes(len(self.counters))


Port = tuple[str, str]   # (part name, port name)


@dataclass(frozen=True)
class Link:
    src: Port
    dst: Port


@dataclass(frozen=True)
class End:
    """A stream end: ``tp`` token slots of ``lanes`` elements of ``bits``."""
    port: Port
    tp: int
    lanes: int
    bits: int

    @property
    def width(self) -> int:
        return self.tp * self.lanes * self.bits


@dataclass(frozen=True)
class Netlist:
    parts: tuple[Part, ...]
    links: tuple[Link, ...]
    input: End          # the patches' stream (the input FIFO's input)
    output: End         # the logits' stream

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)

    @property
    def status(self) -> StatusPart | None:
        return next((p for p in self.parts if isinstance(p, StatusPart)), None)

    @property
    def counter_names(self) -> list[str]:
        """The status registers' busy counters, in their order, as the Verilog names
        them (none without status registers)."""
        return [safe(n) for n in self.status.counters] if self.status else []

    def units(self, stage: str) -> list[StageUnit]:
        return [p for p in self.parts if isinstance(p, StageUnit) and p.owner == stage]

    def counts(self) -> dict[PartKind, int]:
        out: dict[PartKind, int] = {}
        for p in self.parts:
            out[p.kind] = out.get(p.kind, 0) + 1
        return out


def safe(name: str) -> str:
    return name.replace(".", "_")


def output_end(st: Stage, f: Folding, port: Port) -> End:
    """The stream a stage emits: linear and attention at ``cop`` lanes (the class-token
    head one token a beat), the rest at ``cip``."""
    if isinstance(st, Linear) and st.cls_only:
        return End(port, 1, f.cop, st.out_range.bits)
    lanes = f.cop if isinstance(st, (Linear, AttentionScores, Softmax, AttentionValue)) \
        else f.cip
    return End(port, f.tp, lanes, st.out_range.bits)


@dataclass(frozen=True)
class Spec:
    """What decides the netlist: each stage's folding, the FIFO depth of each row edge
    (tokens) and the image banks of each tensor edge, and, once the plan has placed the
    memories, each FIFO group's primitive (``FifoPart.group``) and the edges and stage
    weights in DDR."""
    foldings: dict[str, Folding]
    depths: dict[str, int]
    banks: dict[str, int]
    fifo_memory: dict[str, str] = dataclasses.field(default_factory=dict)
    ddr: dict[str, tuple[DdrLayout, int]] = dataclasses.field(default_factory=dict)
    weights: dict[str, tuple[DdrLayout, int]] = dataclasses.field(default_factory=dict)
    status: bool = False     # the status registers


def spec_of(plan: Plan) -> Spec:
    """The plan's decisions as a netlist ``Spec``."""
    return Spec({s.name: s.folding for s in plan.stages}, plan.depths, plan.banks,
                dict(plan.fifo_memories),
                {f"{b.src}->{b.dst}": (b.ddr, b.base) for b in plan.ddr_buffers},
                {s.name: (lay, base) for s in plan.stages for mem, lay, base in s.ddr
                 if mem == "weights"}, plan.status)


class _Builder:
    def __init__(self, graph: IntGraph, spec: Spec):
        self.graph, self.spec = graph, spec
        self.parts: list[Part] = []
        self.links: list[Link] = []
        self.depths, self.banks = spec.depths, spec.banks

    def add(self, part: Part) -> Part:
        self.parts.append(part)
        return part

    def link(self, src: Port, dst: Port) -> None:
        self.links.append(Link(src, dst))

    # -- stages -------------------------------------------------------------------------
    def stage(self, st: Stage):
        """The stage's units: (consumer ends per input, producer ends)."""
        f = self.spec.foldings[st.name]
        name = safe(st.name)
        ranges = st.in_ranges
        if not contract(st).per_head:
            self.add(StageUnit(name, st.name))
            if st.name in self.spec.weights:
                layout, base = self.spec.weights[st.name]
                w = self.add(DdrWeightsPart(f"{name}_weights", st.name, layout, base))
                self.link((w.name, "o"), (name, "w"))
            ports = ["i"] if len(st.inputs) == 1 else ["i0", "i1"]
            ins = [[End((name, p), f.tp, input_lanes(st, f, k), r.bits)]
                   for k, (p, r) in enumerate(zip(ports, ranges))]
            return ins, [output_end(st, f, (name, "o"))]
        heads = self.graph.config.num_heads
        banks = max(2, self.banks.get(f"{st.inputs[-1]}->{st.name}", 2)) \
            if not isinstance(st, Softmax) else 0
        units = [self.add(StageUnit(f"{name}_h{h}", st.name, h, banks)) for h in range(heads)]
        if isinstance(st, AttentionValue):
            # heads finish their rows together but leave one after another: each buffers
            # a row of its output so that it never waits for the merge
            bits = st.out_range.bits
            row = st.head_dim // f.cop
            merge = self.add(MergePart(f"{name}_merge", st.name, f.tp * f.cop * bits, heads,
                                       row))
            memory = self.spec.fifo_memory.get(f"{st.name}{OUT_GROUP}")
            for h, u in enumerate(units):
                q = self.add(FifoPart(f"{u.name}_out", st.name, f.tp * f.cop * bits, row + 2,
                                      memory))
                self.link((u.name, "o"), (q.name, "i"))
                self.link((q.name, "o"), (merge.name, f"i{h}"))
            return ([[End((u.name, "i0"), f.tp, f.cip, ranges[0].bits) for u in units],
                     [End((u.name, "i1"), f.tp, f.cop, ranges[1].bits) for u in units]],
                    [output_end(st, f, (merge.name, "o"))])
        return ([[End((u.name, "i"), f.tp, f.cip, ranges[0].bits) for u in units]],
                [output_end(st, f, (u.name, "o")) for u in units])

    # -- plumbing -----------------------------------------------------------------------
    def connect(self, src: str, prod: list[End], consumers: list[tuple]) -> None:
        """One tensor to its consumers ``(dst, ends, channels)``; per-head tensors (one
        producer end per head) go head to head."""
        tag = safe(src)
        if len(prod) > 1:
            for dst, ends, channels in consumers:
                for h, (p, c) in enumerate(zip(prod, ends)):
                    self.fan(f"{tag}_h{h}", src, p, [(dst, c, channels)])
            return
        self.fan(tag, src, prod[0], [(dst, c, channels) for dst, ends, channels in consumers
                                     for c in ends])

    def fan(self, tag: str, src: str, p: End, flat: list[tuple]) -> None:
        """Producer -> one gearbox per lane count -> fork -> a FIFO per consumer."""
        by_lanes: dict[int, list] = {}
        for item in flat:
            by_lanes.setdefault(item[1].lanes, []).append(item)
        outs = self.fork(f"{tag}_fork", src, p, len(by_lanes))
        for k, (lanes, items) in enumerate(sorted(by_lanes.items())):
            s = outs[k]
            if lanes != p.lanes:
                gb = self.add(GearboxPart(f"{tag}_gear{lanes}", src, p.tp, p.lanes, lanes,
                                          p.bits))
                self.link(s.port, (gb.name, "i"))
                s = End((gb.name, "o"), p.tp, lanes, p.bits)
            branch = self.fork(f"{tag}_fork{lanes}", src, s, len(items))
            for j, ((dst, c, channels), b) in enumerate(zip(items, branch)):
                edge = f"{src}->{dst}"
                beats = fifo_beats(self.depths.get(edge, 2 * b.tp), b.tp, channels, b.lanes)
                name = f"{tag}_to_{safe(dst)}_{j}"
                if edge in self.spec.ddr:
                    layout, base = self.spec.ddr[edge]
                    if (layout.width, layout.depth) != (b.width, beats):
                        raise ValueError(f"netlist: edge {edge}: the plan's DDR FIFO holds "
                                         f"{layout.depth} beats of {layout.width} bits, the "
                                         f"stream {beats} of {b.width}")
                    q = self.add(DdrFifoPart(name, edge, b.width, beats, layout, base))
                else:
                    q = self.add(FifoPart(name, edge, b.width, beats,
                                          self.spec.fifo_memory.get(edge)))
                self.link(b.port, (q.name, "i"))
                self.link((q.name, "o"), c.port)

    def fork(self, name: str, src: str, p: End, n: int) -> list[End]:
        if n == 1:
            return [p]
        fk = self.add(ForkPart(name, src, p.width, n))
        self.link(p.port, (fk.name, "i"))
        return [End((fk.name, f"o{k}"), p.tp, p.lanes, p.bits) for k in range(n)]


def stage_ends(graph: IntGraph, st: Stage, f: Folding) -> tuple[list[list[End]], list[End]]:
    """The ends a stage's units present at folding ``f``: its consumer ends per input and
    its producer ends (what ``netlist`` joins with plumbing)."""
    return _Builder(graph, Spec({st.name: f}, {}, {})).stage(st)


def netlist(graph: IntGraph, spec: Spec | Plan) -> Netlist:
    """Every part of the accelerator ``spec`` (or a plan's) decides, and how they connect."""
    if isinstance(spec, Plan):
        graph = spec.laid_out(graph)
        spec = spec_of(spec)
    b = _Builder(graph, spec)
    made = {st.name: b.stage(st) for st in graph.stages}
    f0 = spec.foldings[graph.stages[0].name]
    bits = graph.input_range.bits
    b.add(FifoPart(INPUT_FIFO, INPUT, f0.tp * f0.cip * bits, INPUT_FIFO_BEATS,
                   spec.fifo_memory.get(INPUT)))
    producers = {INPUT: [End((INPUT_FIFO, "o"), f0.tp, f0.cip, bits)]}
    producers.update({name: made[name][1] for name in made})
    for name, prod in producers.items():
        consumers = [(st.name, made[st.name][0][k], graph.shape(name)[-1])
                     for st in graph.stages for k, inp in enumerate(st.inputs) if inp == name]
        if consumers:
            b.connect(name, prod, consumers)
    if spec.status:
        b.add(StatusPart(STATUS, STATUS, tuple(st.name for st in graph.stages)))
    return Netlist(tuple(b.parts), tuple(b.links),
                   End((INPUT_FIFO, "i"), f0.tp, f0.cip, bits), producers[graph.output.name][0])


def fifo_groups(net: Netlist) -> dict[str, list[FifoPart]]:
    """The on-chip FIFOs by ``group``: each group's words are one memory the plan places,
    a copy a FIFO."""
    out: dict[str, list[FifoPart]] = {}
    for p in net.parts:
        if isinstance(p, FifoPart):
            out.setdefault(p.group, []).append(p)
    return out
