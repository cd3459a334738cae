"""Plan reports: ``plan.json``, ``report.md`` and PNG plots, written deterministically."""

from __future__ import annotations

import json
from pathlib import Path

from ..graph.graph import IntGraph
from ..outdir import OutDir
from ..perf.model import Performance, traffic_bytes
from ..plan.plan import Plan
from ..resources.board import KINDS
from ..resources.memory import MemoryKind
from ..resources.model import coefficients

FAMILY_NOTE = {
    "xcup": "Resource estimates: analytic model calibrated against Yosys `synth_xilinx "
            "-family xcup` ({yosys}, {date}); Yosys counts run 1.07-1.26x Vivado's.",
    "versal": "Resource estimates: no open synthesis supports Versal; the model uses the "
              "UltraScale+ LUT6 mapping calibrated with Yosys `synth_xilinx -family xcup` "
              "({yosys}, {date}), so LUT/FF figures for this board are UltraScale+ "
              "equivalents.",
}


def plan_dict(graph: IntGraph, plan: Plan, perf: Performance) -> dict:
    d = plan.to_dict()
    d.update(perf.to_dict())
    cal = coefficients()
    d["resource_model"] = {"yosys": cal["yosys"], "date": cal["date"],
                           "rms_relative_error": cal["rms_relative_error"],
                           "note": FAMILY_NOTE[plan.board.family].format(**cal)}
    d["parts"] = parts_summary(plan)
    for s in d["stages"]:
        s["start_cycles"] = [round(a, 1) for a, _ in perf.timeline[s["name"]]]
        s["end_cycles"] = [round(b, 1) for _, b in perf.timeline[s["name"]]]
    return d


def parts_summary(plan: Plan) -> list[dict]:
    """The netlist by part kind: how many, and their modelled resources
    (``hgpipe.plan.costing``)."""
    from ..plan.costing import kind_label, part_costs
    from ..resources.model import Resources
    rows: dict[str, list] = {}
    for part, r in part_costs(plan):
        row = rows.setdefault(kind_label(plan, part), [0, Resources()])
        row[0] += 1
        row[1] = row[1] + r
    return [{"kind": k, "count": n, "resources": r.as_dict()}
            for k, (n, r) in sorted(rows.items(), key=lambda kv: -kv[1][1].lut)]


def _fmt(v: float) -> str:
    return f"{v:,.1f}" if v != int(v) else f"{int(v):,}"


def markdown(graph: IntGraph, plan: Plan, perf: Performance) -> str:
    c, b = graph.config, plan.board
    res, budget, util = plan.resources, b.budget(), plan.utilization
    cal = coefficients()
    lines = [
        f"# hgpipe plan: {plan.model or 'custom ViT'} {plan.bits} on {b.name}",
        "",
        f"{c.num_tokens} tokens"
        + (f" (streamed as {plan.layout.rows} rows, {plan.layout.rows - c.num_tokens} of them "
           f"padding)" if plan.layout and plan.layout.rows > c.num_tokens else "")
        + f" x {c.embed_dim} channels, {c.depth} blocks, {c.num_heads} heads; "
        f"part {b.part}; clock {plan.clock_mhz:g} MHz; token parallelism TP = {plan.tp}"
        + (f"; target II {plan.target_ii:,} cycles" if plan.target_ii else
           "; fastest plan that fits") + ".",
        "",
        "| metric | value |", "|---|---|",
        f"| II (cycles/image) | {plan.ii:,} |",
        f"| steady-state interval in the event schedule | {_fmt(perf.steady_ii_cycles)} |",
        f"| first-image latency (cycles) | {_fmt(round(perf.latency_cycles))} "
        f"({perf.latency_us:,.1f} us) |",
        f"| throughput | {perf.fps:,.1f} images/s, {perf.gops:,.1f} GOP/s |",
        f"| fits the budget ({b.usable_fraction:.0%} of the device) | "
        f"{'yes' if plan.fits else 'NO'} |",
        "",
        "## Resources", "",
        "| resource | estimate | budget | device | utilization |", "|---|---|---|---|---|",
    ]
    for k in KINDS:
        lines.append(f"| {k.upper()} | {_fmt(round(getattr(res, k), 1))} | {budget[k]:,} | "
                     f"{b.resources[k]:,} | {util[k]:.1%} |")
    err = cal["rms_relative_error"]
    full = cal.get("full_size")
    margin = (f" The LUT and FF budgets are the usable fraction divided by the model's "
              f"shortfall at full size (Yosys / model: LUT {full['lut']}, FF {full['ff']}; "
              f"{full['check']}), so a plan within them is within "
              f"{b.usable_fraction:.0%} of the device by Yosys's count too." if full else "")
    lines += ["", FAMILY_NOTE[b.family].format(**cal) + " Calibration RMS error per stage kind: "
              + ", ".join(f"{k} LUT {v['lut']:.0%} / FF {v['ff']:.0%}" for k, v in err.items())
              + "." + margin, "",
              "## Buffers", "",
              f"On-chip activation buffers: {plan.buffer_bits:,} bits, of which "
              f"{plan.coarse_bits:,} in coarse (whole-tensor or deep) buffers. An all-coarse "
              f"pipeline (a ping-pong pair of whole tensors on every edge) needs "
              f"{plan.all_coarse_bits:,} bits: a saving of "
              f"{1 - plan.buffer_bits / plan.all_coarse_bits:.1%}.", "",
              "| edge | grain | depth | bits | memory |", "|---|---|---|---|---|"]
    for x in plan.buffers:
        unit = "images" if x.memory is MemoryKind.STAGE else "tokens"
        lines.append(f"| {x.src} -> {x.dst} | {x.grain} | {x.depth} {unit} | {x.bits:,} | "
                     f"{x.memory} |")
    lines += _ddr_section(plan, perf)
    lines += ["", "## Parts", "",
              "Every part the RTL builds (`hgpipe.plan.netlist`), costed one to one: stage "
              "units (a head each for attention), FIFOs (control; their words as placed), "
              "forks, gearboxes and head merges.", "",
              "| part | count | LUT | FF | DSP | BRAM | URAM |", "|---|---|---|---|---|---|---|"]
    for row in parts_summary(plan):
        r = row["resources"]
        lines.append(f"| {row['kind']} | {row['count']:,} | {r['lut']:,.0f} | {r['ff']:,.0f} | "
                     f"{r['dsp']:g} | {r['bram']:g} | {r['uram']:g} |")
    lines += ["", "## Stages", "",
              "| stage | kind | folding | cycles | busy | LUT | FF | DSP | BRAM | URAM | "
              "GOP/s | ops/byte |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    from ..perf.model import macs
    for s in plan.stages:
        st = graph[s.name]
        ops = 2 * macs(graph, st)
        r = s.resources
        lines.append(f"| {s.name} | {s.kind} | {s.folding} | {s.cycles:,} | "
                     f"{s.cycles / plan.ii:.1%} | {r.lut:,.0f} | {r.ff:,.0f} | {r.dsp} | "
                     f"{r.bram:g} | {r.uram} | {ops * perf.fps / 1e9:,.1f} | "
                     f"{ops / traffic_bytes(graph, plan, st):.2f} |")
    return "\n".join(lines) + "\n"


def _ddr_section(plan: Plan, perf: Performance) -> list[str]:
    d = plan.board.ddr
    head = ["", "## Off-chip memory", ""]
    if d is None:
        return head + [f"{plan.board.name} has no DDR section: everything is on chip."]
    if not plan.ddr_regions:
        return head + [f"Nothing in DDR ({d.memory}; policy `{plan.offchip}`): everything is "
                       f"on chip."]
    gbs = plan.ddr_bytes * perf.fps / 1e9
    lines = head + [
        f"{d.memory}: {len(plan.ddr_regions)} streams on one AXI4 port ({d.data_bits}-bit), "
        f"policy `{plan.offchip}`. Traffic {plan.ddr_bytes:,} bytes an image "
        f"({gbs:,.2f} GB/s at {perf.fps:,.0f} images/s) against {plan.ddr_budget:,.0f} "
        f"bytes an image usable ({d.usable_fraction:.0%} of {d.gbytes_per_s:g} GB/s, at most "
        f"a word each way a cycle); {plan.ddr_region_bytes:,} bytes reserved from "
        f"0x{d.base_address:x}. Weights are preloaded from `rtl/ddr/`.", "",
        "| stream | kind | base | bytes | bytes / image |", "|---|---|---|---|---|"]
    for r in plan.ddr_regions:
        lines.append(f"| {r.name} | {'weights' if r.layout.readonly else 'FIFO'} | "
                     f"0x{r.base:x} | {r.layout.region_bytes:,} | {r.bytes_per_image:,} |")
    return lines


def write(out: OutDir, graph: IntGraph, plan: Plan, perf: Performance, progress=None,
          extra=None) -> list[Path]:
    """Publish the plan, the report and the plots as one result in ``out`` (whole or not
    at all: ``hgpipe.outdir``). ``extra(tmp)`` adds more files or directories (the RTL,
    test vectors) to the same result."""
    from . import plots

    def fill(tmp: Path) -> None:
        (tmp / "plan.json").write_text(json.dumps(plan_dict(graph, plan, perf), indent=1) + "\n")
        (tmp / "report.md").write_text(markdown(graph, plan, perf))
        for name, fn in plots.PLOTS.items():
            if progress:
                progress(f"plot {name}.png")
            fn(tmp / f"{name}.png", graph, plan, perf)
        if extra is not None:
            extra(tmp)
    return out.publish(fill)
