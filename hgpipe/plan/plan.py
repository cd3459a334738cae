"""The plan: folding, grain, buffers and memories of every stage, for one graph and board.

``hgpipe.plan.search.make_plan`` picks the token parallelism and every stage's folding
(``fold``); ``hgpipe.plan.build.build`` sizes every FIFO and coarse buffer from a schedule
of a few images, decides each edge's grain, places every memory (on chip or in DDR) and
totals the resources against the board budget. The result, defined here, is typed and
serialises to JSON (``Plan.to_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph.contract import Folding
from ..graph.ddr import DdrLayout
from ..graph.graph import IntGraph
from ..choice import Choice
from ..graph.layout import TokenLayout
from ..graph.pipeline import Pipelining
from ..resources.board import KINDS, Board
from ..resources.memory import MemoryKind
from ..resources.model import Resources
from . import status_map
from .schedule import Node

class Offchip(Choice):
    """Where what may live in DDR goes (``build``)."""

    AUTO = "auto"       # off chip while a resource is over budget
    NONE = "none"       # never
    ALL = "all"         # always


class Grain(Choice):
    """An edge's buffer: a FIFO of a few rows, or a whole-tensor (or half-image) one."""

    FINE = "fine"
    COARSE = "coarse"


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
    grain: Grain
    depth: int          # tokens (FIFOs) or tensors (banks of a whole-tensor buffer)
    tokens: int
    channels: int
    element_bits: int
    memory: MemoryKind | None   # as placed (``STAGE``: the stage owns it: K, V, Q);
                                # None until placed
    ddr: DdrLayout | None = None   # in DDR: the ring's layout and byte address
    base: int = 0
    ring_channels: int = 0   # of ``channels``, those a stage keeps in a ring of
    ring_tokens: int = 0     # ``ring_tokens`` rather than in banks (QK^T's Q wait)

    @property
    def bits(self) -> int:
        """Bits held on chip."""
        if self.memory is MemoryKind.DDR:
            return 0
        if self.memory is not MemoryKind.STAGE:
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
    offchip: Offchip = Offchip.AUTO
    plumbing: Resources = Resources()   # the netlist's FIFO control, forks, gearboxes,
    #                                     merges and status registers
    netlist: object = None      # every part and link (``hgpipe.plan.netlist.Netlist``)
    fifo_memories: tuple[tuple[str, str], ...] = ()   # edge FIFO -> lutram / bram / uram
    layout: TokenLayout | None = None   # the streams' rows: the graph as planned is
                                        # ``graph.with_layout(layout)``
    status: bool = False    # the status registers (busy counters over AXI4-Lite) are built

    def laid_out(self, graph: IntGraph) -> IntGraph:
        """``graph`` with this plan's token layout (its streams padded to the plan's TP)."""
        return graph.with_layout(self.layout) if self.layout else graph

    @property
    def pipelining(self) -> Pipelining:
        """The register stages of every datapath, from the plan's clock."""
        return Pipelining.at(self.clock_mhz)

    @property
    def ddr_buffers(self) -> tuple[BufferPlan, ...]:
        return tuple(b for b in self.buffers if b.memory is MemoryKind.DDR)

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
        total = self.fifo_resources + self.plumbing
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
        return {f"{b.src}->{b.dst}": b.depth for b in self.buffers
                if b.memory is not MemoryKind.STAGE}

    @property
    def banks(self) -> dict[str, int]:
        return {f"{b.src}->{b.dst}": b.depth for b in self.buffers
                if b.memory is MemoryKind.STAGE}

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    @property
    def coarse_bits(self) -> int:
        return sum(b.bits for b in self.buffers if b.grain is Grain.COARSE)

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
            "tokens": self.layout.to_dict() if self.layout else None,
            "resources": self.resources.as_dict(), "budget": self.board.budget(),
            "usable": self.board.usable(),
            "device": dict(self.board.resources),
            "utilization": {k: round(v, 4) for k, v in self.utilization.items()},
            "buffers": {"coarse_bits": self.coarse_bits, "total_bits": self.buffer_bits,
                        "all_coarse_bits": self.all_coarse_bits,
                        "saving": round(1 - self.buffer_bits / self.all_coarse_bits, 4),
                        "edges": [{"src": b.src, "dst": b.dst, "grain": b.grain,
                                   "depth": b.depth, "unit": "tensors"
                                   if b.memory is MemoryKind.STAGE else "tokens",
                                   "bits": b.bits, "memory": b.memory}
                                  for b in self.buffers]},
            "ddr": self._ddr_dict(),
            "status": self._status_dict(),
            "stages": [{"name": s.name, "kind": s.kind, "cycles": s.cycles,
                        "busy": round(s.cycles / self.ii, 4),
                        "folding": {"tp": s.folding.tp, "cip": s.folding.cip,
                                    "cop": s.folding.cop},
                        "resources": s.resources.as_dict(),
                        "memories": dict(s.memories)} for s in self.stages],
        }


    def _status_dict(self) -> dict | None:
        """The status registers' map, for a host driver (None: not built)."""
        return status_map.description(self.netlist.status.counters) if self.status else None

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
