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
from ..graph.contract import Folding
from ..graph.graph import INPUT, IntGraph
from ..resources.board import KINDS, Board
from ..resources.memory import Memory, place_all
from ..resources.model import Resources, placed, stage_logic
from .fold import Folder, Option, stage_dims
from .schedule import Node, edges_of, nodes_of, required_depths, simulate

SCHEDULE_IMAGES = 5
TP_CHOICES = (1, 2, 4, 7, 8)


@dataclass(frozen=True)
class StagePlan:
    name: str
    kind: str
    folding: Folding
    cycles: int
    tokens: int
    in_channels: int
    resources: Resources
    memories: tuple[tuple[str, str], ...] = ()   # (memory, lutram / bram / uram): the RTL's
                                                  # ram_style / rom_style


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
    memory: str         # lutram / bram / uram, or "stage" when the stage owns it (K, V, Q)

    @property
    def bits(self) -> int:
        per_token = self.channels * self.element_bits
        return self.depth * per_token * (self.tokens if self.memory == "stage" else 1)

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
        return all(getattr(r, k) <= b[k] for k in KINDS)

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
            "stages": [{"name": s.name, "kind": s.kind, "cycles": s.cycles,
                        "busy": round(s.cycles / self.ii, 4),
                        "folding": {"tp": s.folding.tp, "cip": s.folding.cip,
                                    "cop": s.folding.cop},
                        "resources": s.resources.as_dict(),
                        "memories": dict(s.memories)} for s in self.stages],
        }


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


def _fifo_memory(b: BufferPlan, nodes: dict[str, Node]) -> Memory:
    """A FIFO of the producer's beats (``tp`` tokens x ``lanes`` elements)."""
    n = nodes[b.src]
    lanes = min(n.lanes, b.channels)
    return Memory(f"{b.src}->{b.dst}", n.tp * lanes * b.element_bits,
                  ceil(b.depth / n.tp) * ceil(b.channels / lanes))


def build(graph: IntGraph, board: Board, tp: int, chosen: dict[str, Option],
          target_ii: int | None, model: str, clock_mhz: float) -> Plan:
    """Size buffers for the chosen foldings and total the resources."""
    foldings = {k: o.folding for k, o in chosen.items()}
    first = graph.stages[0]
    nodes = nodes_of(graph, foldings, graph.config.patch_dim // foldings[first.name].cip)
    # the steady state: images enter one II apart, so every FIFO's peak is bounded
    ii = max(o.cycles for o in chosen.values())
    sch = simulate(nodes, SCHEDULE_IMAGES, {}, {}, pace=ii)
    depths, banks = required_depths(nodes, sch)
    by = {n.name: n for n in nodes}
    budget = board.budget()
    heads = graph.config.num_heads
    edges = edges_of(nodes)
    buffers, fifo_mems = [], []
    for e in edges:
        ch, eb = _edge_channels(graph, e.src, e.dst), _element_bits(graph, e.src)
        tokens = by[e.src].tokens
        if e.grain == "tensor":
            buffers.append(BufferPlan(e.src, e.dst, "coarse", banks[e.key], tokens, ch, eb, "stage"))
            continue
        d = depths[e.key]
        b = BufferPlan(e.src, e.dst, "coarse" if d >= tokens // 2 else "fine", d, tokens, ch, eb, "")
        buffers.append(b)
        fifo_mems.append(_fifo_memory(b, by))
    logic, stage_mems = [], []
    for st in graph.stages:
        t, cin = stage_dims(graph, st)
        k = max((banks[e.key] for e in edges if e.dst == st.name and e.grain == "tensor"),
                default=2)
        res, mems = stage_logic(st, chosen[st.name].folding, t, cin, heads, k)
        logic.append(res)
        stage_mems.append(mems)
    used = sum(logic, Resources())
    flat = [m for mems in stage_mems for m in mems] + fifo_mems
    placement = iter(place_all(flat, budget, {"lut": used.lut}, board.rom_in_uram))
    stages = []
    for st, res, mems in zip(graph.stages, logic, stage_mems):
        kinds = []
        for mem in mems:
            kind, count = next(placement)
            res = res + placed(kind, count)
            kinds.append((mem.name, kind))
        o = chosen[st.name]
        stages.append(StagePlan(st.name, st.kind, o.folding, o.cycles, *stage_dims(graph, st),
                                res, tuple(kinds)))
    fifo = Resources()
    fifo_index = [i for i, b in enumerate(buffers) if b.memory != "stage"]
    for i, (kind, count) in zip(fifo_index, placement):
        buffers[i] = dataclasses.replace(buffers[i], memory=kind)
        fifo = fifo + placed(kind, count)
    ii = max(s.cycles for s in stages)
    return Plan(model, graph.bits, board, clock_mhz, tp, target_ii, ii, tuple(stages),
                tuple(buffers), fifo, tuple(nodes))


def _tp_choices(graph: IntGraph) -> list[int]:
    c = graph.config
    return [tp for tp in TP_CHOICES if c.num_tokens % tp == 0 and c.num_patches % tp == 0]


def _over(r: Resources, board: Board) -> str:
    """The resources over the board's budget, as ``LUT 1,200 > 1,000``."""
    b = board.budget()
    return ", ".join(f"{k.upper()} {getattr(r, k):,.0f} > {b[k]:,}" for k in KINDS
                     if getattr(r, k) > b[k])


def _limit(plan: Plan) -> str:
    return _over(plan.resources, plan.board)


def _stages_total(chosen: dict[str, Option], board: Board) -> Resources:
    """The stages' logic plus all their memories placed together (as ``build`` places
    them, FIFOs aside): a memory that cannot have a BRAM goes to LUTRAM while LUTs last."""
    used = sum((o.logic for o in chosen.values()), Resources())
    mems = [m for o in chosen.values() for m in o.memories]
    return sum((placed(*p) for p in place_all(mems, board.budget(), {"lut": used.lut},
                                                      board.rom_in_uram)), used)


def make_plan(graph: IntGraph, board: Board, *, target_ii: int | None = None,
              target_fps: float | None = None, clock_mhz: float | None = None,
              model: str = "", tp: int | None = None, progress=None) -> Plan:
    """The cheapest plan meeting the target II (or FPS at the clock), or by default the
    fastest plan that fits the board. Raises ``PlanError`` naming what limits it."""
    clock = clock_mhz or board.clock_mhz
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
                plan = build(graph, board, t, folder.choose(target_ii), target_ii, model, clock)
                if not plan.fits:
                    why[t] = f"it needs {_limit(plan)}"
                    continue
            elif not search:
                plan = build(graph, board, t, folder.choose(bound), None, model, clock)
                if not plan.fits:
                    why[t] = f"the plan at II {bound:,} needs {_limit(plan)}"
                    continue
            else:
                plan = _fastest_fit(graph, board, folder, bound, model, clock,
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
                 clock: float, below: int | None = None) -> Plan | None:
    """The first of the 16 IIs above the stage-only bound (and under ``below``) whose whole
    plan, FIFOs included, fits. A scan, not a search: where BRAM binds, a slower II's
    narrower, deeper memories can pack worse, so fitting is not monotonic in the II."""
    for ii in [ii for ii in folder.candidate_iis()
               if bound < ii and (below is None or ii < below)][:16]:
        plan = build(graph, board, folder.tp, folder.choose(ii), None, model, clock)
        if plan.fits:
            return plan
    return None
