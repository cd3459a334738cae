"""Row-level schedule of N images through the stage pipeline, with finite FIFOs.

Every stage takes its input in rows (token groups of its TP) and obeys the contract:
row ``g`` finishes at ``F[g] = max(F[g-1] + p, A[g] + lag, B[g])`` where ``p`` is the row
interval (``cycles / rows``), ``A[g]`` the time its inputs are there (the producer rows
holding the same tokens, or the producer's whole image for a ``tensor``-grain input) and
``B[g]`` the back-pressure: a row's last token can only enter a FIFO of depth ``D`` once the
consumer has taken the token ``D`` places earlier; a coarse (whole-tensor) buffer of ``k``
banks takes image ``n`` once the consumer has finished image ``n - k``. A consumer has
taken a row at ``max(F - p, A)``.

``simulate`` resolves these dependencies row by row; when no row of any stage can be
resolved while work remains, the pipeline is deadlocked, and it says where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil, inf

import numpy as np

from ..graph.contract import Folding, input_grains, lag, row_cycles, rows
from ..graph.graph import INPUT, IntGraph
from ..graph.kinds import InputGrain, StageKind
from ..graph.pipeline import Pipelining


BANK_RELEASE_CYCLES = 8
# The row model's latencies run up to this fraction short of the RTL's (the e2e tests
# allow 5%): a FIFO as deep as half an image spans a long path, and would stall the
# pipeline by that shortfall, so it holds this much more.
LATENCY_SHORTFALL = 0.05
# cycles a beat spends between stages in the generated RTL: the FIFO on the edge (its
# write-to-read latency and output register) and a gearbox or fork register
EDGE_LATENCY = 4


@dataclass(frozen=True)
class Node:
    """One stage as the scheduler sees it. ``source`` is the input stream."""

    name: str
    tp: int
    rows: int               # rows per image
    tokens: int             # output tokens per image
    p: float                # row interval
    lag: int
    lanes: int = 1          # output elements of one token per beat
    inputs: tuple[tuple[str, InputGrain], ...] = ()   # (producer, grain)
    out_row: int = -1       # the head: the image's output is this row's (the class token's)
    delays: tuple[float, ...] = ()   # per input, cycles its edge adds (an off-chip FIFO)

    def delay(self, k: int) -> float:
        return self.delays[k] if self.delays else 0.0


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    grain: InputGrain

    @property
    def key(self) -> str:
        return f"{self.src}->{self.dst}"


def nodes_of(graph: IntGraph, foldings: dict[str, Folding], source_beat_cycles: int,
             pipe: Pipelining) -> list[Node]:
    """The scheduler's view of a folded graph whose datapaths are pipelined as ``pipe``
    says; the source streams one patch row per ``source_beat_cycles`` cycles (the rate
    the patch embedding reads it)."""
    c, lay = graph.config, graph.layout
    first = graph.stages[0]
    f0 = foldings[first.name]
    out = [Node(INPUT, f0.tp, lay.patch_rows // f0.tp, lay.patch_rows, source_beat_cycles, 0,
                lanes=f0.cip)]
    for st in graph.stages:
        f = foldings[st.name]
        shape = graph.shape(st.inputs[0])
        tokens = shape[1] if len(shape) == 3 else shape[0]
        cin = shape[-1]
        if st.kind is StageKind.TOKENS:
            tokens = lay.rows
        out.append(Node(st.name, f.tp, rows(st, f, tokens), graph.shape(st.name)[-2],
                        row_cycles(st, f, tokens, cin), lag(st, f, tokens, cin, pipe) + EDGE_LATENCY,
                        f.cop * (c.num_heads if st.kind in (StageKind.QK, StageKind.AV) else 1),
                        tuple(zip(st.inputs, input_grains(st))),
                        out_row=lay.cls_row // f.tp if getattr(st, "cls_only", False) else -1))
    return out


def edges_of(nodes: list[Node]) -> list[Edge]:
    return [Edge(src, n.name, grain) for n in nodes for src, grain in n.inputs]


@dataclass
class Schedule:
    """Finish time of every row of every stage (``finish[name][n * rows + r]``), and when
    each row was taken from its inputs."""

    nodes: dict[str, Node]
    images: int
    finish: dict[str, list[float]] = field(default_factory=dict)
    taken: dict[str, list[float]] = field(default_factory=dict)
    deadlock: str = ""

    def done(self, name: str, image: int) -> float:
        """When stage ``name`` has produced all of image ``image``."""
        n = self.nodes[name]
        if n.out_row >= 0:
            return self.finish[name][image * n.rows + n.out_row] - n.p + n.lag
        return self.finish[name][(image + 1) * n.rows - 1]

    def start(self, name: str, image: int) -> float:
        n = self.nodes[name]
        return self.taken[name][image * n.rows]

    def end(self, name: str, image: int) -> float:
        n = self.nodes[name]
        return self.finish[name][(image + 1) * n.rows - 1]


class Deadlock(RuntimeError):
    pass


def simulate(nodes: list[Node], images: int, depths: dict[str, float],
             banks: dict[str, int], pace: float | None = None) -> Schedule:
    """Schedule ``images`` images. ``depths[edge.key]`` is a row edge's FIFO depth in
    tokens (missing: unbounded, except the source edge: 2 rows); ``banks[edge.key]`` the
    images a tensor edge's buffer holds (missing: unbounded). With ``pace``, image ``n``
    enters no earlier than ``n * pace`` (the steady state at that II); without, images
    enter back to back as fast as the pipeline takes them."""
    if not depths and not banks:
        return _free(nodes, images, pace)
    return _bounded(nodes, images, depths, banks, pace)


def _bounded(nodes: list[Node], images: int, depths: dict[str, float],
             banks: dict[str, int], pace: float | None) -> Schedule:
    """The row-by-row resolution (any bounds)."""
    by = {n.name: n for n in nodes}
    consumers: dict[str, list[Edge]] = {n.name: [] for n in nodes}
    for e in edges_of(nodes):
        consumers[e.src].append(e)
    sch = Schedule(by, images)
    fin = {n.name: [] for n in nodes}
    arr = {n.name: [] for n in nodes}
    sch.finish, sch.taken = fin, {n.name: [] for n in nodes}

    def taken(name: str, g: int) -> float | None:
        n = by[name]
        if g >= len(fin[name]):
            return None
        return max(fin[name][g] - n.p, arr[name][g])

    def need_row(prod: Node, cons: Node, image: int, r: int) -> int:
        last = min((r + 1) * cons.tp - 1, prod.tokens - 1)
        return image * prod.rows + max(last, 0) // prod.tp

    def ready(n: Node, g: int) -> float | None:
        image, r = divmod(g, n.rows)
        a = 0.0
        for k, (src, grain) in enumerate(n.inputs):
            prod = by[src]
            need = (image + 1) * prod.rows - 1 if grain is InputGrain.TENSOR \
                else need_row(prod, n, image, r)
            if need >= len(fin[src]):
                return None
            a = max(a, fin[src][need] + n.delay(k))
        return a

    def pressure(n: Node, g: int) -> float | None:
        image, r = divmod(g, n.rows)
        b = -inf
        for e in consumers[n.name]:
            cons = by[e.dst]
            if e.grain is InputGrain.TENSOR:
                k = banks.get(e.key)
                if k is not None and image - k >= 0:
                    last = (image - k + 1) * cons.rows - 1   # the bank frees when it is done
                    if last >= len(fin[e.dst]):
                        return None
                    b = max(b, fin[e.dst][last])
                continue
            depth = depths.get(e.key, 2 * n.tp if n.name == INPUT else None)
            if depth is None:
                continue
            tok = image * n.tokens + min((r + 1) * n.tp, n.tokens) - 1 - int(depth)
            if tok < 0:
                continue
            ci, ct = divmod(tok, n.tokens)
            cr = min(ct, cons.rows * cons.tp - 1) // cons.tp
            t = taken(e.dst, ci * cons.rows + cr)
            if t is None:
                return None
            b = max(b, t)
        return b

    total = {n.name: n.rows * images for n in nodes}
    while True:
        progressed = False
        for n in nodes:
            f = fin[n.name]
            while len(f) < total[n.name]:
                g = len(f)
                a = ready(n, g)
                if a is None:
                    break
                b = pressure(n, g)
                if b is None:
                    break
                if pace is not None and n.name == INPUT:
                    a = max(a, (g // n.rows) * pace)
                prev = f[-1] if f else -n.p
                # the head drains its other rows while it computes the class token's
                lag = n.p if n.out_row >= 0 else n.lag
                f.append(max(prev + n.p, a + lag, b))
                arr[n.name].append(a)
                progressed = True
        if all(len(fin[k]) == total[k] for k in fin):
            break
        if not progressed:
            stuck = [f"{k} at image {len(fin[k]) // by[k].rows} row {len(fin[k]) % by[k].rows}"
                     for k in fin if len(fin[k]) < total[k]]
            sch.deadlock = "; ".join(stuck[:4]) + (" ..." if len(stuck) > 4 else "")
            raise Deadlock(f"pipeline deadlock: {sch.deadlock}")
    for k in fin:
        sch.taken[k] = [max(fin[k][g] - by[k].p, arr[k][g]) for g in range(total[k])]
    return sch


def _free(nodes: list[Node], images: int, pace: float | None) -> Schedule:
    """``simulate`` with no bound but the source's: no stage past the source's consumers
    feels back-pressure, so each follows from its producers in one vectorised pass,
    ``F[g] = max(F[g-1] + p, A[g] + lag)``, that is ``g*p + cummax(A[g] + lag - g*p)``."""
    head = [n for n in nodes if n.name == INPUT or all(s == INPUT for s, _ in n.inputs)]
    sch = _bounded(head, images, {}, {}, pace)
    by = {n.name: n for n in nodes}
    fin = {k: np.asarray(v, dtype=float) for k, v in sch.finish.items()}
    taken = dict(sch.taken)
    for n in nodes:
        if n.name in fin:
            continue
        if any(src not in fin for src, _ in n.inputs):   # not in topological order
            return _bounded(nodes, images, {}, {}, pace)
        g = np.arange(n.rows * images)
        image, r = np.divmod(g, n.rows)
        a = np.zeros(len(g))
        for k, (src, grain) in enumerate(n.inputs):
            prod = by[src]
            if grain is InputGrain.TENSOR:
                need = (image + 1) * prod.rows - 1
            else:
                last = np.minimum((r + 1) * n.tp - 1, prod.tokens - 1)
                need = image * prod.rows + np.maximum(last, 0) // prod.tp
            a = np.maximum(a, fin[src][need] + n.delay(k))
        gp = g * n.p
        c = a + (n.p if n.out_row >= 0 else n.lag) - gp
        c[0] = max(c[0], 0.0)
        f = gp + np.maximum.accumulate(c)
        fin[n.name] = f
        taken[n.name] = np.maximum(f - n.p, a).tolist()
    out = Schedule(by, images)
    out.finish = {k: v.tolist() for k, v in fin.items()}
    out.taken = taken
    return out


def _needed_rows(prod: Node, cons: Node, rows_total: int) -> np.ndarray:
    """For each row of ``cons`` (over all images), the row of ``prod`` it needs last."""
    g = np.arange(rows_total)
    image, r = np.divmod(g, cons.rows)
    last = np.minimum((r + 1) * cons.tp - 1, prod.tokens - 1)
    return image * prod.rows + np.maximum(last, 0) // prod.tp


def slack(nodes: list[Node], sch: Schedule, src: str, dst: str) -> float:
    """The least time a row waits on the row edge ``src -> dst``: from the producer's
    finishing it to the consumer's taking it. A slower edge (an off-chip FIFO) delays
    nothing while its delay stays below this."""
    by = {n.name: n for n in nodes}
    prod, cons = by[src], by[dst]
    taken = np.asarray(sch.taken[dst])
    need = _needed_rows(prod, cons, len(taken))
    return float((taken - np.asarray(sch.finish[src])[need]).min())


def required_depths(nodes: list[Node], sch: Schedule) -> tuple[dict[str, int], dict[str, int]]:
    """From an unbounded schedule: each row edge's peak occupancy in tokens (rounded up to
    whole rows of both sides, at least two rows) and each tensor edge's peak number of
    images held; with these, ``simulate`` reproduces the unbounded schedule."""
    by = {n.name: n for n in nodes}
    depths, banks = {}, {}
    for e in edges_of(nodes):
        prod, cons = by[e.src], by[e.dst]
        if e.grain is InputGrain.TENSOR:
            # a bank is free a little after the consumer's last row (its pipeline drains);
            # a writer that would need it sooner gets another bank rather than a bubble
            slack = cons.p + BANK_RELEASE_CYCLES
            held = 0
            for i in range(sch.images):
                start = sch.finish[e.src][i * prod.rows]
                held = max(held, sum(1 for j in range(i + 1)
                                     if sch.finish[e.dst][(j + 1) * cons.rows - 1] + slack
                                     > start))
            banks[e.key] = max(held, 1)
            continue
        # tokens the consumer has taken by time t: a step function, sorted by time
        taken = np.asarray(sch.taken[e.dst])
        image, r = np.divmod(np.arange(len(taken)), cons.rows)
        counts = image * prod.tokens + np.maximum(
            np.minimum((r + 1) * cons.tp, prod.tokens), 0)
        order = np.argsort(taken, kind="stable")
        times, consumed = taken[order], np.maximum.accumulate(counts[order])
        # against the tokens produced when each producer row is emitted
        emitted = np.asarray(sch.finish[e.src])
        image, r = np.divmod(np.arange(len(emitted)), prod.rows)
        produced = image * prod.tokens + np.minimum((r + 1) * prod.tp, prod.tokens)
        k = np.searchsorted(times, emitted, side="right")   # rows taken by then
        held = produced - np.where(k > 0, consumed[np.maximum(k - 1, 0)], 0)
        peak = int(held.max())
        if peak >= prod.tokens // 2:   # a deep FIFO across a long path (attention's)
            peak = ceil(peak * (1 + LATENCY_SHORTFALL))
        unit = max(prod.tp, cons.tp)
        depths[e.key] = max(-(-peak // unit) * unit, 2 * unit)
    return depths, banks
