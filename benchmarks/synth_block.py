"""One DeiT-tiny encoder block, part by part: the resource model against Yosys.

    python benchmarks/synth_block.py [--target-ii 57624 | --target-ii 0] [--board vck190]
                                     [--instances blocks_0_] [--jobs 2] [--hgpipe-repo PATH]

Plans DeiT-tiny w3a3 (HG-PIPE's 196-token variant) at HG-PIPE's II (57,624, default) or,
with ``--target-ii 0``, the board's fastest plan; generates it; synthesizes every distinct
module instantiated under the prefix with ``hgpipe synth``'s machinery (Yosys
``synth_xilinx -family xcup``, cached by module digest); and prints, per part kind, the
model's LUT/FF/DSP/BRAM/URAM (``hgpipe.plan.costing.part_costs``: the plan's netlist costed
part by part) beside Yosys's, with the block's totals. With ``--hgpipe-repo``, HG-PIPE's
MLP0 + ATTN0 synthesized the same way (``benchmarks/timing.py``) are printed beneath.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hgpipe.plan.costing import kind_label, part_costs  # noqa: E402
from hgpipe.resources.model import Resources  # noqa: E402

FIELDS = (("lut", "lut", "LUT"), ("ff", "ff", "FF"), ("dsp", "dsp", "DSP"),
          ("bram", "bram36", "BRAM36"), ("uram", "uram", "URAM"))


def as_yosys_maps(graph, plan, part, cost: Resources) -> Resources:
    """``cost`` with the stage's ROMs placed in URAM counted as the block RAM (and its read
    multiplexer) Yosys maps them to (its UltraScale+ mapping cannot initialise URAM;
    Versal's Vivado can)."""
    from hgpipe.plan.netlist import StageUnit
    from hgpipe.resources.memory import MemoryKind, block_mux_luts, bram_cost, uram_cost
    from hgpipe.resources.model import datapath
    if not isinstance(part, StageUnit):
        return cost
    sp = plan.stage(part.owner)
    where = dict(sp.memories)
    units = sum(1 for p in plan.netlist.parts
                if isinstance(p, StageUnit) and p.owner == part.owner)
    dp = datapath(graph[part.owner], sp.folding, sp.tokens, sp.in_channels,
                  graph.config.num_heads, part.banks or 2, plan.pipelining)
    for m in dp.memories:
        if m.rom and where.get(m.name) == "uram":
            cost = cost + Resources(
                lut=(block_mux_luts(MemoryKind.BRAM, m.width, m.depth, True)
                     - block_mux_luts(MemoryKind.URAM, m.width, m.depth, True)) * m.ports / units,
                bram=bram_cost(m.width, m.depth, True) * m.ports / units,
                uram=-uram_cost(m.width, m.depth, True) * m.ports // units)
    return cost


def compare(graph, plan, design, verilog_top: str, modules: dict, prefix: str,
            detail: tuple[str, ...] = ()):
    """{kind: [parts, model Resources, yosys dict]} over the parts under ``prefix``, the
    model's memories as Yosys maps them (``as_yosys_maps``)."""
    from hgpipe.synth.design import instance_modules
    by_module = {m.synth.module: m.synth for m in design.modules}
    inst = instance_modules(verilog_top, modules, prefix)
    rows: dict[str, list] = {}
    for part, cost in part_costs(plan):
        if part.name not in inst or inst[part.name] not in by_module:
            continue
        cost = as_yosys_maps(graph, plan, part, cost)
        s = by_module[inst[part.name]]
        label = kind_label(plan, part)
        if label in detail:    # this kind part by part
            label = f"{label} {part.name}"
        row = rows.setdefault(label, [0, Resources(), dict.fromkeys(
            (y for _, y, _ in FIELDS), 0.0)])
        row[0] += 1
        row[1] = row[1] + cost
        for _, y, _ in FIELDS:
            row[2][y] += getattr(s, y)
    return rows


def _ratio(model: float, yosys: float) -> str:
    return f"{model / yosys:.2f}" if yosys else ("-" if not model else "inf")


def table(rows: dict) -> str:
    head = "| part | n | " + " | ".join(f"{t} model / Yosys" for _, _, t in FIELDS) + \
        " | LUT ratio | FF ratio |"
    lines = [head, "|" + "---|" * (len(FIELDS) + 4)]
    total_m, total_y, n_all = Resources(), dict.fromkeys((y for _, y, _ in FIELDS), 0.0), 0
    for kind in sorted(rows, key=lambda k: -rows[k][2]["lut"]):
        n, m, y = rows[kind]
        n_all += n
        total_m = total_m + m
        for k in y:
            total_y[k] += y[k]
        lines.append(f"| {kind} | {n} | " + " | ".join(
            f"{getattr(m, mf):,.0f} / {y[yf]:,.0f}" for mf, yf, _ in FIELDS)
            + f" | {_ratio(m.lut, y['lut'])} | {_ratio(m.ff, y['ff'])} |")
    lines.append(f"| **total** | {n_all} | " + " | ".join(
        f"**{getattr(total_m, mf):,.0f} / {total_y[yf]:,.0f}**" for mf, yf, _ in FIELDS)
        + f" | **{_ratio(total_m.lut, total_y['lut'])}** | "
          f"**{_ratio(total_m.ff, total_y['ff'])}** |")
    return "\n".join(lines) + "\n"


def record(rows: dict, plan, board: str, key: str) -> None:
    """Store Yosys / model over the block's parts as this plan's (``key``) full-size check;
    the planner's margin is the largest over the checks stored (each plan's block differs:
    one margin must cover them all)."""
    import datetime
    import json
    from hgpipe.resources.model import COEFFICIENTS, coefficients
    model = sum((r[1] for r in rows.values()), Resources())
    yosys = {k: sum(r[2][k] for r in rows.values()) for k in ("lut", "ff")}
    c = json.loads(COEFFICIENTS.read_text())
    checks = c.get("full_size", {}).get("checks", {})
    checks[key] = {"lut": round(yosys["lut"] / model.lut, 4),
                   "ff": round(yosys["ff"] / model.ff, 4),
                   "check": f"DeiT-tiny w3a3 block 0 on {board} at II {plan.ii:,} "
                            f"(TP={plan.tp}), Yosys {yosys['lut']:,.0f} LUT / "
                            f"{yosys['ff']:,.0f} FF, model {model.lut:,.0f} / {model.ff:,.0f}",
                   "date": datetime.date.today().isoformat()}
    c["full_size"] = {"lut": max(v["lut"] for v in checks.values()),
                      "ff": max(v["ff"] for v in checks.values()),
                      "check": "benchmarks/synth_block.py: " + "; ".join(
                          v["check"] for _, v in sorted(checks.items())),
                      "checks": checks,
                      "date": max(v["date"] for v in checks.values())}
    COEFFICIENTS.write_text(json.dumps(c, indent=1, sort_keys=True) + "\n")
    coefficients.cache_clear()
    print(f"recorded {key}: LUT x{checks[key]['lut']}, FF x{checks[key]['ff']}; the "
          f"planner's margin: LUT x{c['full_size']['lut']}, FF x{c['full_size']['ff']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="vck190")
    ap.add_argument("--target-ii", type=int, default=57624, help="0: the fastest plan")
    ap.add_argument("--instances", default="blocks_0_", help="instance-name prefix")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--hgpipe-repo", type=Path, help="a checkout (or bare clone) of hguq/HG-PIPE")
    ap.add_argument("--out", type=Path, help="also write the table as Markdown here")
    ap.add_argument("--record", action="store_true", help="store the block's Yosys / model "
                    "LUT and FF ratios as this plan's check in "
                    "hgpipe/resources/coefficients.json (full_size); the planner's margin "
                    "is the largest over the checks")
    ap.add_argument("--detail", default="", help="part kinds to list part by part "
                    "(comma-separated, e.g. requant,layernorm)")
    args = ap.parse_args()
    from hgpipe.cli import build_parser, make_plan_from_args
    from hgpipe.rtl.generate import TOP, generate
    from hgpipe.synth.design import synth_design
    from hgpipe.synth.yosys import split
    argv = ["synth", "--model", "hgpipe-deit-tiny", "--bits", "w3a3", "--board", args.board,
            "--out", "unused"] + (["--target-ii", str(args.target_ii)] if args.target_ii else [])
    t0 = time.perf_counter()
    graph, plan, _ = make_plan_from_args(build_parser().parse_args(argv),
                                         lambda msg: print(f"  {msg}", file=sys.stderr))
    _, rtl, _ = generate(graph, plan)
    design = synth_design(rtl.verilog, TOP, plan.pipelining, jobs=args.jobs,
                          prefix=args.instances, files=rtl.roms)
    modules = split(rtl.verilog)
    rows = compare(graph, plan, design, modules[TOP], modules, args.instances,
                   tuple(k for k in args.detail.split(",") if k))
    text = (f"DeiT-tiny w3a3 on {args.board}, plan II {plan.ii:,} (TP={plan.tp}), parts "
            f"under '{args.instances}'; model: hgpipe.plan.costing; Yosys: synth_xilinx "
            f"-family xcup per distinct module ({time.perf_counter() - t0:.0f} s); ROMs the plan "
            f"puts in URAM counted as the block RAM Yosys maps them to\n\n"
            + table(rows))
    if args.hgpipe_repo:
        from timing import hgpipe_rows
        hg = hgpipe_rows(args.hgpipe_repo)
        text += "\n| HG-PIPE block (same Yosys command) | LUT | FF | DSP | BRAM36 | URAM |\n" \
                "|---|---|---|---|---|---|\n"
        for label, s in hg:
            text += f"| {label} | {s.lut:,} | {s.ff:,} | {s.dsp} | {s.bram36:g} | {s.uram} |\n"
        text += f"| MLP0 + ATTN0 | {sum(s.lut for _, s in hg):,} | " \
                f"{sum(s.ff for _, s in hg):,} | | | |\n"
    print(text)
    if args.record:
        record(rows, plan, args.board,
               "fastest" if args.target_ii == 0 else f"target {args.target_ii}")
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
