"""The plan: folding, grain, buffers and memories of every stage, for one graph and board.

``make_plan`` picks the token parallelism and every stage's folding (``fold``), schedules
a few images with unbounded buffers to size every FIFO and coarse buffer from the real
production/consumption times (``schedule.required_depths``), decides each edge's grain,
and totals the resources against the board budget. The result is typed and serialises to
JSON (``Plan.to_dict``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import ceil

from ..errors import PlanError
from ..graph.contract import Folding, fifo_beats, input_lanes, q_ring_groups
from ..graph.ddr import DdrLayout
from ..graph.graph import INPUT, IntGraph
from ..resources.board import KINDS, Board
from ..resources.memory import Memory, place_all
from ..resources.model import Resources, ddr_arbiter, ddr_fifo, placed, stage_logic
from .fold import Folder, Option, stage_dims
from .schedule import Node, edges_of, nodes_of, required_depths, simulate, slack

SCHEDULE_IMAGES = 5
TP_CHOICES = (1, 2, 4, 7, 8)
OFFCHIP = ("auto", "none", "all")   # DDR for what may go there: when the chip is full, never,
                                    # always


@dataclass(frozen=True)
class StagePlan:
    name: str
    kind: str
    folding: Folding
    cycles: int
    tokens: int
    in_channels: int
    resources: Resources
    memories: tuple[tuple[str, str], ...] = ()   # (memory, lutram / bram / uram / ddr): the
                                                  # RTL's ram_style / rom_style
    ddr: tuple[tuple[str, DdrLayout, int], ...] = ()   # (memory, layout, base) kept off chip


@dataclass(frozen=True)
class DdrRegion:
    """One stream kept in DDR: a FIFO edge ``src->dst`` (written and read once an image) or
    a stage's memory ``stage:memory`` (preloaded, read once an image)."""

    name: str
    layout: DdrLayout
    base: int

    @property
    def bytes_per_image(self) -> int:
        return self.layout.bytes_per_image * (1 if self.layout.readonly else 2)


@dataclass(frozen=True)
class BufferPlan:
    """The buffer on one edge. ``fine``: a FIFO of ``depth`` tokens; ``coarse``: ``banks``
    whole tensors (K, V, the Q wait) or a FIFO at least half a tensor deep (the residual
    around attention)."""

    src: str
    dst: str
    grain: str
    depth: int          # tokens (FIFOs) or tensors (banks of a whole-tensor buffer)
    tokens: int
    channels: int
    element_bits: int
    memory: str         # lutram / bram / uram / ddr, or "stage" when the stage owns it (K, V, Q)
    ddr: DdrLayout | None = None   # in DDR: the ring's layout and byte address
    base: int = 0
    ring_channels: int = 0   # of ``channels``, those a stage keeps in a ring of
    ring_tokens: int = 0     # ``ring_tokens`` rather than in banks (QK^T's Q wait)

    @property
    def bits(self) -> int:
        """Bits held on chip."""
        if self.memory == "ddr":
            return 0
        if self.memory != "stage":
            return self.depth * self.channels * self.element_bits
        banked = self.depth * self.tokens * (self.channels - self.ring_channels)
        return (banked + self.ring_tokens * self.ring_channels) * self.element_bits

    @property
    def all_coarse_bits(self) -> int:
        """The same edge in an all-coarse pipeline: a ping-pong pair of whole tensors."""
        return 2 * self.tokens * self.channels * self.element_bits


@dataclass(frozen=True)
class Plan:
    model: str
    bits: str
    board: Board
    clock_mhz: float
    tp: int
    target_ii: int | None
    ii: int                 # the slowest stage's cycles per image
    stages: tuple[StagePlan, ...]
    buffers: tuple[BufferPlan, ...]
    fifo_resources: Resources
    nodes: tuple[Node, ...]
    offchip: str = "auto"

    @property
    def ddr_buffers(self) -> tuple[BufferPlan, ...]:
        return tuple(b for b in self.buffers if b.memory == "ddr")

    @property
    def ddr_regions(self) -> tuple[DdrRegion, ...]:
        """Everything in DDR, in address order."""
        out = [DdrRegion(f"{s.name}:{mem}", lay, base) for s in self.stages
               for mem, lay, base in s.ddr]
        out += [DdrRegion(f"{b.src}->{b.dst}", b.ddr, b.base) for b in self.ddr_buffers]
        return tuple(sorted(out, key=lambda r: r.base))

    @property
    def ddr_bytes(self) -> int:
        """Bytes written to and read from DDR per image."""
        return sum(r.bytes_per_image for r in self.ddr_regions)

    @property
    def ddr_budget(self) -> float:
        """Bytes per image the board's DDR allows at this plan's II."""
        d = self.board.ddr
        return d.bytes_per_image(self.ii, self.clock_mhz) if d else 0.0

    @property
    def ddr_region_bytes(self) -> int:
        return sum(r.layout.region_bytes for r in self.ddr_regions)

    @property
    def resources(self) -> Resources:
        total = self.fifo_resources
        for s in self.stages:
            total = total + s.resources
        return total

    @property
    def utilization(self) -> dict[str, float]:
        r, dev = self.resources, self.board.resources
        return {k: (getattr(r, k) / dev[k] if dev[k] else (0.0 if not getattr(r, k) else
                                                           float("inf"))) for k in KINDS}

    @property
    def fits(self) -> bool:
        r, b = self.resources, self.board.budget()
        return all(getattr(r, k) <= b[k] for k in KINDS) and self.ddr_bytes <= self.ddr_budget \
            and (not self.ddr_regions or self.ddr_region_bytes <= self.board.ddr.bytes)

    @property
    def depths(self) -> dict[str, int]:
        return {f"{b.src}->{b.dst}": b.depth for b in self.buffers if b.memory != "stage"}

    @property
    def banks(self) -> dict[str, int]:
        return {f"{b.src}->{b.dst}": b.depth for b in self.buffers if b.memory == "stage"}

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    @property
    def coarse_bits(self) -> int:
        return sum(b.bits for b in self.buffers if b.grain == "coarse")

    @property
    def buffer_bits(self) -> int:
        return sum(b.bits for b in self.buffers)

    @property
    def all_coarse_bits(self) -> int:
        return sum(b.all_coarse_bits for b in self.buffers)

    def to_dict(self) -> dict:
        return {
            "model": self.model, "bits": self.bits, "board": self.board.name,
            "part": self.board.part, "clock_mhz": self.clock_mhz, "tp": self.tp,
            "target_ii": self.target_ii, "ii_cycles": self.ii, "fits": self.fits,
            "resources": self.resources.as_dict(), "budget": self.board.budget(),
            "device": dict(self.board.resources),
            "utilization": {k: round(v, 4) for k, v in self.utilization.items()},
            "buffers": {"coarse_bits": self.coarse_bits, "total_bits": self.buffer_bits,
                        "all_coarse_bits": self.all_coarse_bits,
                        "saving": round(1 - self.buffer_bits / self.all_coarse_bits, 4),
                        "edges": [{"src": b.src, "dst": b.dst, "grain": b.grain,
                                   "depth": b.depth, "unit": "tensors" if b.memory == "stage"
                                   else "tokens", "bits": b.bits, "memory": b.memory}
                                  for b in self.buffers]},
            "ddr": self._ddr_dict(),
            "stages": [{"name": s.name, "kind": s.kind, "cycles": s.cycles,
                        "busy": round(s.cycles / self.ii, 4),
                        "folding": {"tp": s.folding.tp, "cip": s.folding.cip,
                                    "cop": s.folding.cop},
                        "resources": s.resources.as_dict(),
                        "memories": dict(s.memories)} for s in self.stages],
        }


    def _ddr_dict(self) -> dict:
        d = self.board.ddr
        fps = self.clock_mhz * 1e6 / self.ii
        return {"offchip": self.offchip, "memory": d.memory if d else None,
                "bytes_per_image": self.ddr_bytes,
                "budget_bytes_per_image": round(self.ddr_budget),
                "gbytes_per_s": round(self.ddr_bytes * fps / 1e9, 4),
                "data_bits": d.data_bits if d else None,
                "regions": [{"name": r.name, "kind": "weights" if r.layout.readonly
                             else "fifo", "base": r.base, "bytes": r.layout.region_bytes,
                             "bytes_per_image": r.bytes_per_image,
                             "beat_bits": r.layout.width, "beats_per_image": r.layout.beats,
                             "depth_beats": r.layout.depth} for r in self.ddr_regions]}


def _element_bits(graph: IntGraph, name: str) -> int:
    return graph.input_range.bits if name == INPUT else graph[name].out_range.bits


def _edge_channels(graph: IntGraph, src: str, dst: str) -> int:
    """Channels of ``src`` that ``dst`` keeps: QK^T keeps Q and K, AV keeps V."""
    shape = graph.shape(src)
    c = shape[0] * shape[2] if len(shape) == 3 else shape[1]
    kind = graph[dst].kind
    if kind == "qk":
        return c * 2 // 3
    if kind == "av" and len(shape) == 2:
        return c // 3
    return c


def _fifo_geometry(graph: IntGraph, foldings: dict[str, Folding], b: BufferPlan,
                   nodes: dict[str, Node]) -> tuple[int, int, int]:
    """(beat bits, beats per image, depth in beats) of an edge's FIFO as the RTL builds it:
    the producer's token slots of the consumer's lanes (after any gearbox)."""
    st = graph[b.dst]
    tp = nodes[b.src].tp
    lanes = min(input_lanes(st, foldings[b.dst], st.inputs.index(b.src)), b.channels)
    return (tp * lanes * b.element_bits, (b.tokens // tp) * ceil(b.channels / lanes),
            fifo_beats(b.depth, tp, b.channels, lanes))


def build(graph: IntGraph, board: Board, tp: int, chosen: dict[str, Option],
          target_ii: int | None, model: str, clock_mhz: float, offchip: str = "auto") -> Plan:
    """Size buffers for the chosen foldings, place every memory and total the resources.

    Two kinds of memory may live in DDR: a coarse FIFO whose rows wait longer than a round
    trip (the residual around attention: the schedule, and so every other FIFO, stays as
    it is), and a weight ROM read once an image in address order (the head's) whose read
    buffer covers the latency. With ``offchip="auto"`` they go there when the chip is over
    budget, with ``"all"`` always, with ``"none"`` never."""
    foldings = {k: o.folding for k, o in chosen.items()}
    first = graph.stages[0]
    nodes = nodes_of(graph, foldings, graph.config.patch_dim // foldings[first.name].cip)
    # the steady state: images enter one II apart, so every FIFO's peak is bounded
    ii = max(o.cycles for o in chosen.values())
    sch = simulate(nodes, SCHEDULE_IMAGES, {}, {}, pace=ii)
    depths, banks = required_depths(nodes, sch)
    by = {n.name: n for n in nodes}
    budget = board.budget()
    ddr = board.ddr if offchip != "none" else None
    if ddr is not None and offchip == "auto":
        budget = {**budget, "ddr": ddr.bytes_per_image(ii, clock_mhz)}
    latency = ddr.latency_cycles(clock_mhz) if ddr is not None else 0
    layouts: dict[Memory, DdrLayout] = {}   # what may go off chip, as it would be laid out

    def offchip_ok(mem: Memory, lay: DdrLayout, fits: bool) -> Memory:
        if not fits:
            return mem
        layouts[mem] = lay
        new = dataclasses.replace(mem, offchip_bytes=lay.bytes_per_image * (
            1 if lay.readonly else 2))
        layouts[new] = lay
        return new

    heads = graph.config.num_heads
    edges = edges_of(nodes)
    buffers, fifo_mems = [], []
    for e in edges:
        ch, eb = _edge_channels(graph, e.src, e.dst), _element_bits(graph, e.src)
        tokens = by[e.src].tokens
        if e.grain == "tensor":
            q = graph[e.dst].kind == "qk"   # Q (half the channels) waits in a ring
            buffers.append(BufferPlan(e.src, e.dst, "coarse", banks[e.key], tokens, ch, eb,
                                      "stage", ring_channels=ch // 2 if q else 0,
                                      ring_tokens=q_ring_groups(tokens, by[e.dst].tp)
                                      * by[e.dst].tp if q else 0))
            continue
        d = depths[e.key]
        b = BufferPlan(e.src, e.dst, "coarse" if d >= tokens // 2 else "fine", d, tokens, ch, eb, "")
        buffers.append(b)
        width, beats, depth = _fifo_geometry(graph, foldings, b, by)
        mem = Memory(e.key, width, depth)
        if ddr is not None and b.grain == "coarse":
            lay = DdrLayout(width, beats, depth, ddr.data_bits)
            mem = offchip_ok(mem, lay, slack(nodes, sch, e.src, e.dst)
                             >= _ddr_delay(lay, by[e.src], latency))
        fifo_mems.append(mem)
    logic, stage_mems = [], []
    for st in graph.stages:
        t, cin = stage_dims(graph, st)
        k = max((banks[e.key] for e in edges if e.dst == st.name and e.grain == "tensor"),
                default=2)
        res, mems = stage_logic(st, chosen[st.name].folding, t, cin, heads, k)
        if ddr is not None and getattr(st, "cls_only", False):   # weights read once an image
            w = mems[0]
            lay = DdrLayout(w.width, w.depth, w.depth, ddr.data_bits, readonly=True)
            mems = (offchip_ok(w, lay, lay.buffer_words * lay.pack // lay.split
                               >= latency + 2 * lay.burst), *mems[1:])
        logic.append(res)
        stage_mems.append(mems)
    used = sum(logic, Resources())
    flat = [m for mems in stage_mems for m in mems] + fifo_mems
    forced = {i for i, m in enumerate(flat) if m.offchip_bytes} if offchip == "all" else set()
    placed_flat = iter(place_all([m for i, m in enumerate(flat) if i not in forced], budget,
                                 {"lut": used.lut}, board.rom_in_uram,
                                 ddr_luts=lambda m: ddr_fifo(layouts[m]).lut))
    choice = [("ddr", float(m.offchip_bytes)) if i in forced else next(placed_flat)
              for i, m in enumerate(flat)]
    base = ddr.base_address if ddr is not None else 0
    placement = iter(zip(flat, choice))
    stages = []
    for st, res, mems in zip(graph.stages, logic, stage_mems):
        kinds, off = [], []
        for mem in mems:
            m, (kind, count) = next(placement)
            res = res + placed(kind, count)
            kinds.append((mem.name, kind))
            if kind == "ddr":
                off.append((mem.name, layouts[m], base))
                base += layouts[m].region_bytes
                res = res + ddr_fifo(layouts[m])   # a read-only stream is costed as a FIFO
        o = chosen[st.name]
        stages.append(StagePlan(st.name, st.kind, o.folding, o.cycles, *stage_dims(graph, st),
                                res, tuple(kinds), tuple(off)))
    fifo = Resources()
    fifo_index = [i for i, b in enumerate(buffers) if b.memory != "stage"]
    for i in fifo_index:
        m, (kind, count) = next(placement)
        b = dataclasses.replace(buffers[i], memory=kind)
        if kind == "ddr":
            b = dataclasses.replace(b, ddr=layouts[m], base=base)
            base += b.ddr.region_bytes
            fifo = fifo + ddr_fifo(b.ddr)
        buffers[i] = b
        fifo = fifo + placed(kind, count)
    n_ddr = sum(1 for b in buffers if b.memory == "ddr") + sum(len(s.ddr) for s in stages)
    if n_ddr:
        fifo = fifo + ddr_arbiter(n_ddr, ddr.data_bits, ddr.addr_bits)
        nodes = _with_ddr_delays(nodes, buffers, latency)
    ii = max(s.cycles for s in stages)
    return Plan(model, graph.bits, board, clock_mhz, tp, target_ii, ii, tuple(stages),
                tuple(buffers), fifo, tuple(nodes), offchip)


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
            for b in buffers if b.memory == "ddr"}
    return [dataclasses.replace(n, delays=tuple(slow.get((src, n.name), 0.0)
                                                for src, _ in n.inputs))
            if any((src, n.name) in slow for src, _ in n.inputs) else n for n in nodes]


def _tp_choices(graph: IntGraph) -> list[int]:
    c = graph.config
    return [tp for tp in TP_CHOICES if c.num_tokens % tp == 0 and c.num_patches % tp == 0]


def _over(r: Resources, board: Board) -> str:
    """The resources over the board's budget, as ``LUT 1,200 > 1,000``."""
    b = board.budget()
    return ", ".join(f"{k.upper()} {getattr(r, k):,.0f} > {b[k]:,}" for k in KINDS
                     if getattr(r, k) > b[k])


def _limit(plan: Plan) -> str:
    over = _over(plan.resources, plan.board)
    if plan.ddr_bytes > plan.ddr_budget:
        over += (", " if over else "") + (f"DDR {plan.ddr_bytes:,} bytes an image > "
                                          f"{plan.ddr_budget:,.0f}")
    return over


def _stages_total(chosen: dict[str, Option], board: Board) -> Resources:
    """The stages' logic plus all their memories placed together (as ``build`` places
    them, FIFOs aside): a memory that cannot have a BRAM goes to LUTRAM while LUTs last."""
    used = sum((o.logic for o in chosen.values()), Resources())
    mems = [m for o in chosen.values() for m in o.memories]
    return sum((placed(*p) for p in place_all(mems, board.budget(), {"lut": used.lut},
                                                      board.rom_in_uram)), used)


def check_offchip(offchip: str, board: Board) -> None:
    if offchip not in OFFCHIP:
        raise PlanError(f"offchip={offchip!r}: expected one of {', '.join(OFFCHIP)}")
    if offchip == "all" and board.ddr is None:
        raise PlanError(f"offchip=all: board {board.name} has no ddr section")


def make_plan(graph: IntGraph, board: Board, *, target_ii: int | None = None,
              target_fps: float | None = None, clock_mhz: float | None = None,
              model: str = "", tp: int | None = None, offchip: str = "auto",
              progress=None) -> Plan:
    """The cheapest plan meeting the target II (or FPS at the clock), or by default the
    fastest plan that fits the board; coarse FIFOs in DDR per ``offchip`` (``build``).
    Raises ``PlanError`` naming what limits it."""
    clock = clock_mhz or board.clock_mhz
    check_offchip(offchip, board)
    if target_ii is not None and target_fps is not None:
        raise PlanError("target: give --target-ii or --target-fps, not both")
    if target_fps is not None:
        if target_fps <= 0:
            raise PlanError(f"target_fps={target_fps}: expected a positive number")
        target_ii = int(clock * 1e6 // target_fps)
        if target_ii < 1:
            raise PlanError(f"target_fps={target_fps}: above one image per cycle at {clock} MHz")
    if target_ii is not None and target_ii < 1:
        raise PlanError(f"target_ii={target_ii}: expected a positive number of cycles")
    tps = [tp] if tp else _tp_choices(graph)
    if not tps or (tp and (graph.config.num_tokens % tp or graph.config.num_patches % tp)):
        raise PlanError(f"tp={tp}: expected a divisor of {graph.config.num_tokens} tokens and "
                        f"{graph.config.num_patches} patches")
    # Cost every TP's stages first (cheap), then build plans (each schedules images to
    # size the FIFOs) in order of their stage-only II, which no FIFO can lower: a TP whose
    # bound is already slower than the best plan is never built.
    cands, why = [], {}   # why: TP -> what stops it
    for t in tps:
        folder = Folder(graph, board, t)
        if progress:
            progress(f"costing foldings at TP={t}")
        if target_ii is not None:
            chosen = folder.choose(target_ii)
            if chosen is None:
                slow = max(folder.fastest().items(), key=lambda kv: kv[1])
                why[t] = f"stage {slow[0]} needs at least {slow[1]:,} cycles"
                continue
            bound = max(o.cycles for o in chosen.values())
        else:
            bound = _stage_fit_ii(folder, board)
            if bound is None:
                cheapest = folder.choose(max(folder.candidate_iis()))
                over = _over(_stages_total(cheapest, board), board)
                why[t] = f"the cheapest foldings alone need {over}"
                continue
        cands.append((bound, t, folder))
    best = None
    cands.sort(key=lambda c: c[:2])
    # With a target, every TP meets it: the plan with the fewest LUTs wins. Without one,
    # two passes: each TP's plan at its own bound first (usually the answer), then a search
    # above the bound only for TPs whose bound is not above the best plan found; the
    # fastest wins, the fewest LUTs among equally fast ones.
    better = (lambda p: (p.resources.lut, p.ii)) if target_ii is not None else \
        (lambda p: (p.ii, p.resources.lut))
    for search in (False, True) if target_ii is None else (False,):
        for bound, t, folder in cands:
            if best is not None and target_ii is None and bound > best.ii:
                break
            if search and (t not in why or (best is not None and bound >= best.ii)):
                continue  # its plan at the bound fitted, or no faster one can exist
            if progress:
                progress(f"{'searching IIs' if search else 'sizing buffers'} at TP={t}")
            if target_ii is not None:
                plan = build(graph, board, t, folder.choose(target_ii), target_ii, model, clock,
                             offchip)
                if not plan.fits:
                    why[t] = f"it needs {_limit(plan)}"
                    continue
            elif not search:
                plan = build(graph, board, t, folder.choose(bound), None, model, clock, offchip)
                if not plan.fits:
                    why[t] = f"the plan at II {bound:,} needs {_limit(plan)}"
                    continue
            else:
                plan = _fastest_fit(graph, board, folder, bound, model, clock, offchip,
                                    below=None if best is None else best.ii)
                if plan is None:
                    why[t] += ", as do the next 16 IIs"
                    continue
            if best is None or better(plan) < better(best):
                best = plan
    if best is None:
        what = f"target II {target_ii:,} cycles cannot be met" if target_ii is not None \
            else "no plan fits"
        raise PlanError(f"{what} on {board.name}: "
                        + "; ".join(f"at TP={t} {w}" for t, w in why.items()))
    return best


def _stage_fit_ii(folder: Folder, board: Board) -> int | None:
    """The smallest achievable II whose stages fit the budget (each memory placed alone,
    FIFOs not counted): a binary search over the candidate IIs."""
    iis = folder.candidate_iis()
    budget = board.budget()

    def stages_fit(ii):
        chosen = folder.choose(ii)
        if chosen is None:
            return False
        total = _stages_total(chosen, board)
        return all(getattr(total, k) <= budget[k] for k in KINDS)
    lo, hi = 0, len(iis)
    while lo < hi:
        mid = (lo + hi) // 2
        if stages_fit(iis[mid]):
            hi = mid
        else:
            lo = mid + 1
    return iis[lo] if lo < len(iis) else None


def _fastest_fit(graph, board, folder: Folder, bound: int, model: str,
                 clock: float, offchip: str, below: int | None = None) -> Plan | None:
    """The first of the 16 IIs above the stage-only bound (and under ``below``) whose whole
    plan, FIFOs included, fits. A scan, not a search: where BRAM binds, a slower II's
    narrower, deeper memories can pack worse, so fitting is not monotonic in the II."""
    for ii in [ii for ii in folder.candidate_iis()
               if bound < ii and (below is None or ii < below)][:16]:
        plan = build(graph, board, folder.tp, folder.choose(ii), None, model, clock, offchip)
        if plan.fits:
            return plan
    return None
