"""Folding: the cheapest legal parallelism of every stage that meets a target II.

For one token parallelism TP, each stage's legal foldings (those dividing its dimensions)
are costed once with the resource model (cost = sum of its budget fractions) and sorted,
so that choosing for any II is a scan. The fastest plan that fits is the smallest II, over
every stage's achievable cycle counts, whose cheapest foldings fit the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..graph.contract import Folding, cycles, legal_foldings
from ..graph.graph import IntGraph
from ..graph.kinds import StageKind
from ..graph.pipeline import Pipelining
from ..graph.stages import Stage
from ..resources.board import KINDS, Board
from ..resources.memory import Memory
from ..resources.model import Resources, memory_resources, stage_logic
from .lanes import LaneMatcher


def stage_dims(graph: IntGraph, st: Stage) -> tuple[int, int]:
    """(tokens, in_channels) the contract's formulas take for a stage: streamed rows,
    padding included."""
    shape = graph.shape(st.inputs[0])
    if st.kind is StageKind.TOKENS:
        return graph.layout.rows, shape[-1]
    return (shape[1] if len(shape) == 3 else shape[0]), shape[-1]


def cost(r: Resources, budget: dict[str, int]) -> float:
    total = 0.0
    for k in KINDS:
        v = getattr(r, k)
        if v:
            total += v / budget[k] if budget[k] else float("inf")
    return total


@dataclass(frozen=True)
class Option:
    folding: Folding
    cycles: int
    resources: Resources          # logic plus memories each placed alone (for ranking)
    cost: float
    logic: Resources              # for placing all stages' memories together
    memories: tuple[Memory, ...]


@dataclass
class Folder:
    """Costed foldings of every stage of ``graph`` at token parallelism ``tp`` (the graph
    laid out for ``tp``: its streams padded to a multiple of it)."""

    graph: IntGraph
    board: Board
    tp: int
    pipe: Pipelining

    def __post_init__(self) -> None:
        self.graph = self.graph.streamed(self.tp)

    @cached_property
    def options(self) -> dict[str, list[Option]]:
        budget = self.board.budget()
        heads = self.graph.config.num_heads
        out = {}
        for st in self.graph.stages:
            t, cin = stage_dims(self.graph, st)
            opts = []
            for f in legal_foldings(st, t, cin, self.tp):
                lg, mems = stage_logic(st, f, t, cin, heads, pipe=self.pipe)
                r = lg + memory_resources(mems, budget, self.board.rom_in_uram)
                opts.append(Option(f, cycles(st, f, t, cin), r, cost(r, budget), lg, mems))
            out[st.name] = sorted(opts, key=lambda o: (o.cost, o.cycles, str(o.folding)))
        return out

    @property
    def feasible(self) -> bool:
        return all(self.options.values())

    def fastest(self) -> dict[str, int]:
        """Each stage's fewest cycles at this TP."""
        return {k: min(o.cycles for o in v) for k, v in self.options.items()}

    def choose(self, ii: int, match_lanes: bool = True) -> dict[str, Option] | None:
        """The cheapest option of every stage with cycles <= ii (None if one has none),
        then, with ``match_lanes``, traded for the gearboxes between stages
        (``lanes.LaneMatcher``)."""
        out = {}
        for name, opts in self.options.items():
            best = next((o for o in opts if o.cycles <= ii), None)
            if best is None:
                return None
            out[name] = best
        return self.lanes.match(out, self.options, ii) if match_lanes else out

    @cached_property
    def lanes(self) -> LaneMatcher:
        budget = self.board.budget()
        return LaneMatcher(self.graph, lambda r: cost(r, budget))

    def candidate_iis(self) -> list[int]:
        lo = max(self.fastest().values())
        return sorted({o.cycles for v in self.options.values() for o in v if o.cycles >= lo})
