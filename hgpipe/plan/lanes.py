"""Foldings chosen with the gearboxes they imply.

Each stage's cheapest folding is chosen alone (``fold.Folder``); where a producer's lanes
differ from a consumer's, the netlist puts a gearbox between them. ``match_lanes`` then
revisits the stages one by one: a stage takes another of its foldings that meets the II
when that folding's cost plus the gearboxes on its input and output tensors (costed as
``netlist`` builds them, ``resources.plumbing`` prices them) is lower. Sweeps repeat until
no stage changes (a cost that only falls: it ends).
"""

from __future__ import annotations

from ..graph.contract import Folding
from ..graph.graph import IntGraph
from ..resources.model import Resources
from ..resources.plumbing import gearbox_sizes, plumbing_logic
from .netlist import End, stage_ends

MAX_SWEEPS = 8


def gearbox_shapes(prod: list[End], consumers: list[list[End]]) -> list[tuple[int, ...]]:
    """``(tp, lanes in, lanes out, bits)`` of each gearbox ``netlist`` puts between a
    tensor's producer ends and its consumers' ends (a list per consumer): per-head
    producers go head to head, a gearbox wherever the lanes differ; one producer gets a
    gearbox per lane count its consumers take other than its own."""
    if len(prod) > 1:
        return [(p.tp, p.lanes, c.lanes, p.bits) for ends in consumers
                for p, c in zip(prod, ends) if c.lanes != p.lanes]
    p = prod[0]
    return [(p.tp, p.lanes, n, p.bits)
            for n in sorted({c.lanes for ends in consumers for c in ends} - {p.lanes})]


class LaneMatcher:
    """The gearbox cost of ``graph``'s tensors under given foldings, and the descent that
    trades it against the stages' own costs (``cost``: resources to a budget fraction)."""

    def __init__(self, graph: IntGraph, cost):
        self.graph, self.cost = graph, cost
        self._ends: dict[tuple[str, Folding], tuple[list[list[End]], list[End]]] = {}
        self._gearbox: dict[tuple[int, ...], float] = {}
        names = {st.name for st in graph.stages}
        # each stage's output tensor: its consumers (stage, input index)
        self.consumers = {st.name: [(c.name, k) for c in graph.stages
                                    for k, inp in enumerate(c.inputs) if inp == st.name]
                          for st in graph.stages}
        # the tensors whose gearboxes a stage's folding decides: its output and its inputs
        self.touching = {st.name: [st.name] + [i for i in st.inputs if i in names]
                         for st in graph.stages}

    def ends(self, name: str, f: Folding):
        key = (name, f)
        if key not in self._ends:
            self._ends[key] = stage_ends(self.graph, self.graph[name], f)
        return self._ends[key]

    def gearbox(self, shape: tuple[int, ...]) -> float:
        if shape not in self._gearbox:
            self._gearbox[shape] = self.cost(plumbing_logic("gearbox", gearbox_sizes(*shape)))
        return self._gearbox[shape]

    def shapes(self, src: str, fold: dict[str, Folding]) -> list[tuple[int, ...]]:
        """The gearboxes of tensor ``src`` under ``fold``."""
        prod = self.ends(src, fold[src])[1]
        return gearbox_shapes(prod, [self.ends(d, fold[d])[0][k]
                                     for d, k in self.consumers[src]])

    def tensor_cost(self, src: str, fold: dict[str, Folding]) -> float:
        return sum(self.gearbox(s) for s in self.shapes(src, fold))

    def resources(self, fold: dict[str, Folding]) -> Resources:
        """Every gearbox's logic under ``fold``."""
        return sum((plumbing_logic("gearbox", gearbox_sizes(*s))
                    for src in self.consumers for s in self.shapes(src, fold)), Resources())

    def match(self, chosen: dict, options: dict[str, list], ii: int) -> dict:
        """``chosen`` (stage -> option, each with ``folding``, ``cycles``, ``cost``) with
        each stage moved to the option within ``ii`` of least cost plus gearboxes."""
        chosen = dict(chosen)
        fold = {k: o.folding for k, o in chosen.items()}
        for _ in range(MAX_SWEEPS):
            changed = False
            for name, opts in options.items():
                def total(o):
                    fold[name] = o.folding
                    return o.cost + sum(self.tensor_cost(t, fold)
                                        for t in self.touching[name])
                current = chosen[name]
                best, best_cost = current, total(current)
                for o in opts:
                    if o.cycles <= ii and o is not current:
                        c = total(o)
                        if c < best_cost - 1e-12:
                            best, best_cost = o, c
                fold[name] = best.folding
                if best is not current:
                    chosen[name], changed = best, True
            if not changed:
                break
        return chosen
