"""``synth.json`` and ``synth.md``: per module cells, depth and estimated clock."""

from __future__ import annotations

from ..graph.pipeline import ANCHOR_LOGIC_NS, ANCHOR_MHZ, OVERHEAD_NS, SCALE
from .delays import BOUNDARY_PS
from .design import DesignSynth
from .yosys import SCRIPT

FIELDS = ("lut", "ff", "carry", "dsp", "bram36", "uram")


def _path(p) -> dict:
    return {"logic_ns": round(p.ns, 3), "luts": p.luts, "carries": p.carries,
            "start": p.start, "end": p.end}


def synth_json(d: DesignSynth, clock_mhz: float, ii: int | None = None) -> dict:
    fmax = d.fmax_mhz
    achieved = min(clock_mhz, fmax)
    return {
        "tool": f"Yosys ({SCRIPT}); paths walked on the JSON netlist with cells_sim pin "
                "delays",
        "estimator": {"period_ns": f"{OVERHEAD_NS} + {SCALE:.4f} * logic_ns",
                      "anchor": f"HG-PIPE ATTN0: {ANCHOR_LOGIC_NS} ns logic at {ANCHOR_MHZ:g} MHz",
                      "boundary_ps": BOUNDARY_PS},
        "clock_mhz": clock_mhz,
        "budget": {"logic_ns": round(d.pipe.budget_ns, 3), "lut_levels": d.pipe.lut_levels,
                   "adder_levels": d.pipe.adder_levels, "read_latency": d.pipe.read_latency},
        "fmax_mhz": round(fmax, 1),
        "clock_used_mhz": round(achieved, 1),
        **({"fps_at_board_clock": round(clock_mhz * 1e6 / ii, 1),
            "fps_at_estimate": round(achieved * 1e6 / ii, 1)} if ii else {}),
        "within_budget": not d.over_budget and d.cross_within,
        **({"crossing": {"logic_ns": round(d.cross.ns, 3), "from": d.cross.producer,
                         "into": d.cross.consumer, "within_budget": d.cross_within}}
           if d.cross else {}),
        "totals": {f: d.total(f) for f in FIELDS},
        "modules": [{"module": m.synth.module, "kind": m.kind, "instances": m.instances,
                     **{f: getattr(m.synth, f) for f in FIELDS},
                     "worst": _path(m.synth.worst), "max_luts": _path(m.synth.max_luts),
                     "max_cells": _path(m.synth.max_cells),
                     "fmax_mhz": round(m.fmax_mhz, 1), "over_budget": list(m.over_budget),
                     **({"untimed_cells": list(m.synth.unknown)} if m.synth.unknown else {})}
                    for m in d.modules],
    }


def synth_markdown(d: DesignSynth, clock_mhz: float, ii: int | None = None) -> str:
    j = synth_json(d, clock_mhz, ii)
    b = j["budget"]
    lines = [f"# Synthesis estimate ({len(d.modules)} distinct modules)", "",
             f"Each distinct module synthesized alone by {j['tool']}. Clock "
             f"{clock_mhz:g} MHz: budget {b['logic_ns']} ns of logic and {b['lut_levels']} "
             f"LUT levels a register stage (estimator: period = {j['estimator']['period_ns']}, "
             f"fitted on {j['estimator']['anchor']}).", "",
             f"- estimated Fmax: **{j['fmax_mhz']:g} MHz** (worst module "
             f"{d.worst.kind if d.worst else '-'}); clock used {j['clock_used_mhz']:g} MHz",
             *([f"- images/s: {j['fps_at_estimate']:,.1f} at the estimate, "
                f"{j['fps_at_board_clock']:,.1f} at the board clock"] if ii else []),
             f"- within budget: {'yes' if j['within_budget'] else 'NO'}",
             *([f"- worst path between two parts: {j['crossing']['logic_ns']:.2f} ns, "
                f"`{j['crossing']['from']}` -> `{j['crossing']['into']}`"] if d.cross else []),
             "- totals (instances weighed): " + ", ".join(
                 f"{f} {v:,.1f}" if f == "bram36" else f"{f} {v:,.0f}"
                 for f, v in j["totals"].items()), "",
             "| module | kind | inst | LUT | FF | CARRY | DSP | BRAM36 | URAM | logic ns | "
             "LUT lvls | carries | Fmax MHz | over | worst path |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in sorted(j["modules"], key=lambda m: m["fmax_mhz"]):
        w = m["worst"]
        lines.append(f"| {m['module']} | {m['kind']} | {m['instances']} | {m['lut']:,} | "
                     f"{m['ff']:,} | {m['carry']:,} | {m['dsp']} | {m['bram36']:g} | "
                     f"{m['uram']} | {w['logic_ns']:.2f} | {m['max_luts']['luts']} | "
                     f"{w['carries']} | {m['fmax_mhz']:.0f} | "
                     f"{', '.join(m['over_budget']) or '-'} | `{w['start']}` -> `{w['end']}` |")
    return "\n".join(lines) + "\n"


def clock_section(j: dict) -> str:
    """The plan report's section on the estimated clock (``synth.json`` as ``j``)."""
    b = j["budget"]
    return (f"\n## Clock (Yosys estimate, `synth.md`)\n\n"
            f"- board clock {j['clock_mhz']:g} MHz: budget {b['logic_ns']} ns of logic, "
            f"{b['lut_levels']} LUT levels a register stage\n"
            f"- estimated Fmax {j['fmax_mhz']:g} MHz; within budget: "
            f"{'yes' if j['within_budget'] else 'NO'}\n"
            f"- images/s {j['fps_at_estimate']:,.1f} at {j['clock_used_mhz']:g} MHz "
            f"(at the board clock: {j['fps_at_board_clock']:,.1f})\n")
