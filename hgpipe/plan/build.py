"""Sizing and placement of one folded plan (``build``): FIFO depths and coarse buffers
from a schedule of a few images, each memory on chip or in DDR, resources totalled."""

from __future__ import annotations

import dataclasses
from math import ceil

from ..graph.contract import Folding, input_lanes, q_ring_groups
from ..graph.ddr import DdrLayout
from ..graph.graph import INPUT, IntGraph
from ..graph.kinds import InputGrain, StageKind
from ..graph.pipeline import Pipelining
from ..resources.board import Board
from ..resources.memory import ON_CHIP, Memory, MemoryKind, place_all, register_bits
from ..resources.model import Resources, placed, stage_logic
from ..resources.offchip import ddr_arbiter, ddr_fifo
from .fold import Option, stage_dims
from .netlist import PLUMBING, Spec, fifo_groups, netlist
from .plan import BufferPlan, Grain, Offchip, Plan, StagePlan
from .schedule import Node, edges_of, nodes_of, required_depths, simulate, slack

SCHEDULE_IMAGES = 5


def _element_bits(graph: IntGraph, name: str) -> int:
    return graph.input_range.bits if name == INPUT else graph[name].out_range.bits


def _edge_channels(graph: IntGraph, src: str, dst: str) -> int:
    """Channels of ``src`` that ``dst`` keeps: QK^T keeps Q and K, AV keeps V."""
    shape = graph.shape(src)
    c = shape[0] * shape[2] if len(shape) == 3 else shape[1]
    kind = graph[dst].kind
    if kind is StageKind.QK:
        return c * 2 // 3
    if kind is StageKind.AV and len(shape) == 2:
        return c // 3
    return c


def _beats_per_image(graph: IntGraph, foldings: dict[str, Folding], b: BufferPlan,
                     nodes: dict[str, Node]) -> int:
    """Beats an image puts through an edge's FIFO: the producer's token slots of the
    consumer's lanes (after any gearbox)."""
    st = graph[b.dst]
    tp = nodes[b.src].tp
    lanes = min(input_lanes(st, foldings[b.dst], st.inputs.index(b.src)), b.channels)
    return (b.tokens // tp) * ceil(b.channels / lanes)


def build(graph: IntGraph, board: Board, tp: int, chosen: dict[str, Option],
          target_ii: int | None, model: str, clock_mhz: float,
          offchip: Offchip = Offchip.AUTO, status: bool = False) -> Plan:
    """Size buffers for the chosen foldings, place every memory and total the resources.

    Two kinds of memory may live in DDR: a coarse FIFO whose rows wait longer than a round
    trip (the residual around attention: the schedule, and so every other FIFO, stays as
    it is), and a weight ROM read once an image in address order (the head's) whose read
    buffer covers the latency. With ``offchip="auto"`` they go there when the chip is over
    budget, with ``"all"`` always, with ``"none"`` never. ``status``: the status registers
    are part of the design (and of its resources)."""
    graph = graph.streamed(tp)
    foldings = {k: o.folding for k, o in chosen.items()}
    first = graph.stages[0]
    pipe = Pipelining.at(clock_mhz)
    nodes = nodes_of(graph, foldings, graph.config.patch_dim // foldings[first.name].cip, pipe)
    # the steady state: images enter one II apart, so every FIFO's peak is bounded
    ii = max(o.cycles for o in chosen.values())
    sch = simulate(nodes, SCHEDULE_IMAGES, {}, {}, pace=ii)
    depths, banks = required_depths(nodes, sch)
    by = {n.name: n for n in nodes}
    budget = board.budget()
    offchip = Offchip(offchip)
    ddr = board.ddr if offchip is not Offchip.NONE else None
    if ddr is not None and offchip is Offchip.AUTO:
        budget = {**budget, "ddr": ddr.bytes_per_image(ii, clock_mhz)}
    latency = ddr.latency_cycles(clock_mhz) if ddr is not None else 0
    layouts: dict[Memory, DdrLayout] = {}   # what may go off chip, as it would be laid out

    def candidate(mem: Memory, lay: DdrLayout, ok: bool) -> Memory:
        """``mem``, able to go off chip as ``lay`` where ``ok``."""
        if not ok:
            return mem
        mem = dataclasses.replace(mem, offchip_bytes=lay.bytes_per_image * (
            1 if lay.readonly else 2))
        layouts[mem] = lay
        return mem

    heads = graph.config.num_heads
    edges = edges_of(nodes)
    buffers = []
    for e in edges:
        ch, eb = _edge_channels(graph, e.src, e.dst), _element_bits(graph, e.src)
        tokens = by[e.src].tokens
        if e.grain is InputGrain.TENSOR:
            q = graph[e.dst].kind is StageKind.QK   # Q (half the channels) waits in a ring
            buffers.append(BufferPlan(e.src, e.dst, Grain.COARSE, banks[e.key], tokens, ch, eb,
                                      MemoryKind.STAGE, ring_channels=ch // 2 if q else 0,
                                      ring_tokens=q_ring_groups(tokens, by[e.dst].tp)
                                      * by[e.dst].tp if q else 0))
            continue
        d = depths[e.key]
        grain = Grain.COARSE if d >= tokens // 2 else Grain.FINE
        buffers.append(BufferPlan(e.src, e.dst, grain, d, tokens, ch, eb, None))
    # the FIFOs the netlist builds (one a consumer; per-head ones of an edge a group),
    # each group one placed memory of as many copies
    row = {f"{b.src}->{b.dst}": b for b in buffers if b.memory is not MemoryKind.STAGE}
    spec = Spec(foldings, {k: b.depth for k, b in row.items()},
                {f"{b.src}->{b.dst}": b.depth for b in buffers if b.memory is MemoryKind.STAGE})
    groups = fifo_groups(netlist(graph, spec))
    fifo_mems = []
    for key, parts in groups.items():
        q = parts[0]
        mem = Memory(key, q.width, q.beats, ports=len(parts))
        b = row.get(key)
        if ddr is not None and b is not None and b.grain is Grain.COARSE and len(parts) == 1:
            beats = _beats_per_image(graph, foldings, b, by)
            lay = DdrLayout(q.width, beats, q.beats, ddr.data_bits)
            mem = candidate(mem, lay, slack(nodes, sch, b.src, b.dst)
                            >= _ddr_delay(lay, by[b.src], latency))
        fifo_mems.append(mem)
    logic, stage_mems = [], []
    for st in graph.stages:
        t, cin = stage_dims(graph, st)
        k = max((banks[e.key] for e in edges if e.dst == st.name and e.grain is InputGrain.TENSOR),
                default=2)
        res, mems = stage_logic(st, chosen[st.name].folding, t, cin, heads, k, pipe)
        if ddr is not None and getattr(st, "cls_only", False):   # weights read once an image
            w = mems[0]
            lay = DdrLayout(w.width, w.depth, w.depth, ddr.data_bits, readonly=True)
            mems = (candidate(w, lay, lay.buffer_words * lay.pack // lay.split
                              >= latency + 2 * lay.burst), *mems[1:])
        logic.append(res)
        stage_mems.append(mems)
    used = sum(logic, Resources())
    flat = [m for mems in stage_mems for m in mems] + fifo_mems
    forced = {i for i, m in enumerate(flat) if m.offchip_bytes} \
        if offchip is Offchip.ALL else set()
    placed_flat = iter(place_all([m for i, m in enumerate(flat) if i not in forced], budget,
                                 {"lut": used.lut}, board.rom_in_uram,
                                 ddr_luts=lambda m: ddr_fifo(layouts[m]).lut))
    choice = [(MemoryKind.DDR, float(m.offchip_bytes)) if i in forced else next(placed_flat)
              for i, m in enumerate(flat)]
    base = ddr.base_address if ddr is not None else 0
    placement = iter(zip(flat, choice))
    stages = []
    for st, res, mems in zip(graph.stages, logic, stage_mems):
        kinds, off = [], []
        for mem in mems:
            m, (kind, count) = next(placement)
            res = res + placed(kind, count, m)
            # read registers: in LUTs every one is flip-flops; a block RAM or URAM holds the
            # first, and Yosys leaves the output register (latency 2) in flip-flops beside it;
            # a memory read as it is addressed has none
            if kind in ON_CHIP and not m.async_read:
                res = res + Resources(ff=register_bits(
                    m, pipe.read_latency - (kind is not MemoryKind.LUTRAM)))
            kinds.append((mem.name, kind))
            if kind is MemoryKind.DDR:
                off.append((mem.name, layouts[m], base))
                base += layouts[m].region_bytes
                res = res + ddr_fifo(layouts[m])   # a read-only stream is costed as a FIFO
        o = chosen[st.name]
        stages.append(StagePlan(st.name, st.kind, o.folding, o.cycles, *stage_dims(graph, st),
                                res, tuple(kinds), tuple(off)))
    fifo = Resources()
    index = {f"{b.src}->{b.dst}": i for i, b in enumerate(buffers)}
    fifo_kinds = []
    for key in groups:
        m, (kind, count) = next(placement)
        if key in row:
            b = dataclasses.replace(buffers[index[key]], memory=kind)
            if kind is MemoryKind.DDR:
                b = dataclasses.replace(b, ddr=layouts[m], base=base)
                base += b.ddr.region_bytes
                fifo = fifo + ddr_fifo(b.ddr)
            buffers[index[key]] = b
        if kind is not MemoryKind.DDR:
            fifo_kinds.append((key, kind))
        fifo = fifo + placed(kind, count, m)
    n_ddr = sum(1 for b in buffers if b.memory is MemoryKind.DDR) + sum(len(s.ddr) for s in stages)
    if n_ddr:
        fifo = fifo + ddr_arbiter(n_ddr, ddr.data_bits, ddr.addr_bits)
        nodes = _with_ddr_delays(nodes, buffers, latency)
    ii = max(s.cycles for s in stages)
    plan = Plan(model, graph.bits, board, clock_mhz, tp, target_ii, ii, tuple(stages),
                tuple(buffers), fifo, tuple(nodes), offchip, fifo_memories=tuple(fifo_kinds),
                layout=graph.layout, status=status)
    net = netlist(graph, plan)
    return dataclasses.replace(plan, netlist=net, plumbing=sum(
        (p.logic() for p in net.parts if p.kind in PLUMBING), Resources()))


def _ddr_delay(layout: DdrLayout, prod: Node, latency: int) -> float:
    """Cycles an off-chip FIFO adds to a row at most: its burst filled at the producer's
    rate, written, acknowledged and read back (two memory latencies, two bursts on the
    port)."""
    beats_per_row = layout.beats / prod.rows
    fill = -(-layout.burst * layout.pack // layout.split // beats_per_row) * prod.p
    return fill + 2 * latency + 2 * layout.burst


def _with_ddr_delays(nodes: list[Node], buffers: list[BufferPlan], latency: int) -> list[Node]:
    """The nodes with each DDR edge's delay on its consumer's input (``_ddr_delay``)."""
    by = {n.name: n for n in nodes}
    slow = {(b.src, b.dst): _ddr_delay(b.ddr, by[b.src], latency)
            for b in buffers if b.memory is MemoryKind.DDR}
    return [dataclasses.replace(n, delays=tuple(slow.get((src, n.name), 0.0)
                                                for src, _ in n.inputs))
            if any((src, n.name) in slow for src, _ in n.inputs) else n for n in nodes]
