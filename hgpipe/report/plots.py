"""PNG plots of a plan: timing diagram, stage cycles against the II, resources against the
budget, roofline. Rendered with matplotlib's Agg backend, without a timestamp or version
in the PNG metadata, so the same plan gives the same bytes."""

from __future__ import annotations

from pathlib import Path

from ..graph.graph import IntGraph
from ..perf.model import Performance, macs, traffic_bytes
from ..plan.plan import Plan
from ..resources.board import KINDS

DPI = 110


def _figure(w: float, h: float):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 8, "svg.hashsalt": "hgpipe"})
    return plt, plt.figure(figsize=(w, h))


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)


def timing(path: Path, graph: IntGraph, plan: Plan, perf: Performance) -> None:
    """Which stage works on which image when (as in HG-PIPE's Fig. 1)."""
    names = [s.name for s in plan.stages]
    plt, fig = _figure(11, max(3.0, 0.13 * len(names) + 1))
    ax = fig.add_subplot(111)
    cmap = plt.get_cmap("tab10")
    from matplotlib.collections import PolyCollection
    # one collection of rectangles: a patch per bar takes seconds at 200 stages x 5 images
    rects, colors = [], []
    for y, name in enumerate(names):
        for i, (a, b) in enumerate(perf.timeline[name]):
            rects.append([(a, y - 0.4), (b, y - 0.4), (b, y + 0.4), (a, y + 0.4)])
            colors.append(cmap(i % 10))
    ax.add_collection(PolyCollection(rects, facecolors=colors, linewidths=0))
    ax.set_xlim(0, max((r[1][0] for r in rects), default=1))
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_yticks(range(len(names)), names, fontsize=5 if len(names) > 40 else 7)
    ax.invert_yaxis()
    ax.set_xlabel("cycle")
    ax.set_title(f"Timing diagram: {perf.images} images (colour = image), "
                 f"II {plan.ii:,} cycles, latency {perf.latency_cycles:,.0f} cycles")
    _save(plt, fig, path)


def cycles(path: Path, graph: IntGraph, plan: Plan, perf: Performance) -> None:
    """Each stage's cycles per image against the II: the gap is its bubble."""
    plt, fig = _figure(11, 4)
    ax = fig.add_subplot(111)
    xs = range(len(plan.stages))
    ax.bar(xs, [s.cycles for s in plan.stages], color="tab:blue")
    ax.axhline(plan.ii, color="tab:red", label=f"II = {plan.ii:,}")
    ax.set_xticks(xs, [s.name for s in plan.stages], rotation=90,
                  fontsize=4 if len(plan.stages) > 60 else 6)
    ax.set_ylabel("cycles / image")
    ax.legend()
    ax.set_title("Stage cycles against the II")
    _save(plt, fig, path)


def resources(path: Path, graph: IntGraph, plan: Plan, perf: Performance) -> None:
    plt, fig = _figure(6, 3.5)
    ax = fig.add_subplot(111)
    util = plan.utilization
    kinds = [k for k in KINDS if plan.board.resources[k]]
    ax.bar(range(len(kinds)), [100 * util[k] for k in kinds],
           color=["tab:red" if util[k] > plan.board.usable_fraction else "tab:green"
                  for k in kinds])
    ax.axhline(100 * plan.board.usable_fraction, color="k", linestyle="--",
               label=f"budget ({plan.board.usable_fraction:.0%})")
    for i, k in enumerate(kinds):
        ax.text(i, 100 * util[k] + 1, f"{getattr(plan.resources, k):,.0f}", ha="center")
    labels = [k.upper() for k in kinds]
    d = plan.board.ddr
    if plan.ddr_regions:   # off-chip bandwidth, as a share of the memory's peak
        gbs = plan.ddr_bytes * perf.fps / 1e9
        x = len(kinds)
        over = plan.ddr_bytes > plan.ddr_budget
        ax.bar([x], [100 * gbs / d.gbytes_per_s], color="tab:red" if over else "tab:blue")
        ax.hlines(100 * plan.ddr_budget * perf.fps / 1e9 / d.gbytes_per_s, x - 0.4, x + 0.4,
                  color="tab:blue", linestyle="--", label="DDR usable")
        ax.text(x, 100 * gbs / d.gbytes_per_s + 1, f"{gbs:.2f} GB/s", ha="center")
        labels.append("DDR BW")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel(f"% of {plan.board.name}")
    ax.legend(loc="center")   # between the bars, clear of the DDR budget mark
    ax.set_title(f"Resources on {plan.board.name} ({plan.board.part})")
    _save(plt, fig, path)


def roofline(path: Path, graph: IntGraph, plan: Plan, perf: Performance) -> None:
    """Operations per byte of on-chip traffic against the board's ceilings: compute (every
    LUT budget spent on low-bit MACs plus every DSP, at the clock) and on-chip memory
    bandwidth (every BRAM and URAM port, 72 bits a cycle, two ports)."""
    import numpy as np
    from ..graph.intrange import IntRange
    from ..resources.model import lut_per_mac
    b, clock = plan.board, plan.clock_mhz * 1e6
    s3 = IntRange.of_bits(3, True)   # the ceiling of w3a3 MACs
    peak = 2 * (b.budget()["lut"] / lut_per_mac(s3, s3) + b.budget()["dsp"]) * clock / 1e9
    bw = (b.budget()["bram"] + b.budget()["uram"]) * 2 * 72 / 8 * clock / 1e9  # GB/s
    plt, fig = _figure(6.5, 4.5)
    ax = fig.add_subplot(111)
    pts = []
    for s in plan.stages:
        st = graph[s.name]
        ops = 2 * macs(graph, st)
        if ops:
            pts.append((ops / traffic_bytes(graph, plan, st), ops * perf.fps / 1e9, s.kind))
    oi = np.logspace(-1, 3, 100)
    ax.loglog(oi, np.minimum(peak, oi * bw), "k-", label="board roofline")
    for kind, marker in (("linear", "o"), ("qk", "s"), ("av", "^")):
        sel = [(x, y) for x, y, k in pts if k == kind]
        if sel:
            ax.loglog(*zip(*sel), marker, linestyle="none", label=kind)
    ax.set_xlabel("operations per byte of on-chip traffic")
    ax.set_ylabel("GOP/s")
    ax.legend()
    ax.set_title(f"Roofline on {b.name}: peak {peak:,.0f} GOP/s, on-chip {bw:,.0f} GB/s")
    _save(plt, fig, path)


PLOTS = {"timing": timing, "cycles": cycles, "resources": resources, "roofline": roofline}
