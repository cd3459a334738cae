"""``hgpipe synth``: generate, then synthesize each distinct module with Yosys and estimate
the clock the design would run at."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from tqdm import tqdm

from .cli_rtl import check_images, generate_for, rtl_files
from .errors import HgpipeError


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate, then synthesize each distinct module with Yosys and estimate the clock."""
    from .cli_common import _progress, summary
    from .report.plan_report import write
    from .rtl.generate import TOP
    from .synth.design import synth_design
    from .synth.report import clock_section, synth_json, synth_markdown
    from .outdir import OutDir
    from .synth.yosys import YosysMissing, yosys_command
    if args.jobs < 1:
        raise HgpipeError(f"jobs: {args.jobs}: expected >= 1")
    if args.instances is not None and not re.fullmatch(r"[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*",
                                                       args.instances):
        raise HgpipeError(f"instances: {args.instances!r}: expected prefixes of instance "
                          "names (letters, digits, _), comma-separated")
    try:
        yosys_command()
    except YosysMissing as exc:
        raise HgpipeError(f"synth: {exc}") from None
    check_images(args, 1)
    out = OutDir(args.out, args.force)
    say = _progress(args.quiet)
    graph, plan, perf, acc, source, patches, vec = generate_for(args, say, args.images)
    pipe = plan.pipelining
    say(f"synthesizing each distinct module with Yosys ({args.jobs} jobs; cached by digest)")
    with tqdm(total=0, unit="module", desc="Yosys", disable=args.quiet, file=sys.stderr,
              leave=False) as bar:
        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        try:
            d = synth_design(source.verilog, TOP, pipe, jobs=args.jobs, progress=tick,
                             files=source.roms,
                             prefix=args.instances or "")
        except ValueError as exc:       # an --instances prefix that names no part
            raise HgpipeError(str(exc)) from None
        except RuntimeError as exc:
            raise HgpipeError(f"synth: {exc}") from None
    j = synth_json(d, plan.clock_mhz, plan.ii)

    def extra(tmp: Path) -> None:
        rtl_files(source, vec, patches, acc)(tmp)
        (tmp / "synth.json").write_text(json.dumps(j, indent=1) + "\n")
        (tmp / "synth.md").write_text(synth_markdown(d, plan.clock_mhz, plan.ii))
        # the report states the FPS at the clock synthesis supports, beside the board's
        report = tmp / "report.md"
        report.write_text(report.read_text() + clock_section(j))
    files = write(out, graph, plan, perf, progress=say, extra=extra)
    print(f"{plan.model} {plan.bits} on {plan.board.name}, TP={plan.tp}:")
    print(summary(plan, perf))
    w = d.worst
    print(f"  Yosys: {len(d.modules)} distinct modules, {j['totals']['lut']:,.0f} LUT, "
          f"{j['totals']['ff']:,.0f} FF over all instances")
    print(f"  clock: budget {pipe.budget_ns:.2f} ns / {pipe.lut_levels} LUT levels at "
          f"{plan.clock_mhz:g} MHz; estimated Fmax {d.fmax_mhz:.0f} MHz (worst: "
          f"{w.kind if w else '-'}, {w.synth.worst.ns if w else 0:.2f} ns)")
    if d.cross:
        print(f"  between parts: {d.cross.ns:.2f} ns, {d.cross.producer} -> {d.cross.consumer}")
    print(f"  images/s {j['fps_at_estimate']:,.1f} at {j['clock_used_mhz']:g} MHz "
          f"(board clock: {j['fps_at_board_clock']:,.1f})")
    if d.over_budget:
        print(f"  OVER BUDGET: {', '.join(f'{m.kind} ({m.synth.module})' for m in d.over_budget)}")
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0
