"""Logic depth and estimated clock of every distinct module hgpipe generates, beside
HG-PIPE's released blocks synthesized and measured the same way.

    python benchmarks/timing.py [--hgpipe-repo PATH] [--target-ii 57624] [--board vck190]
                                [--instances blocks_0_] [--jobs 2]

Our side: ``hgpipe synth``'s machinery (Yosys ``synth_xilinx -family xcup -noiopad -abc9
-flatten`` per distinct module, paths walked on the JSON netlist with Yosys' cells_sim
pin delays) on DeiT-tiny w3a3 (HG-PIPE's 196-token variant), the modules of one encoder
block plus the rest of the design by default. HG-PIPE's side: its per-block Verilog
(``SPINAL/src/main/verilog/{MLP0,ATTN0}/all.v`` of a checkout of the hguq/HG-PIPE
repository, given with ``--hgpipe-repo``; nothing is downloaded), whose ``$readmemh`` files
are not released: they get random contents of the declared size (seed 0). Prints one
table and writes it as Markdown with ``--out``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hgpipe.graph.pipeline import Pipelining, fmax_mhz  # noqa: E402
from hgpipe.synth.design import judge  # noqa: E402
from hgpipe.synth.yosys import SCRIPT, synthesize  # noqa: E402

BLOCKS = ("MLP0", "ATTN0")
_MEM = re.compile(r'\$readmemh\(\s*"([^"]+)"\s*,\s*(\w+)\s*\)')


def _read_block(repo: Path, block: str) -> str:
    path = f"SPINAL/src/main/verilog/{block}/all.v"
    if (repo / path).is_file():
        return (repo / path).read_text()
    # a bare clone (no work tree): read the file from HEAD
    return subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], check=True,
                          capture_output=True, text=True).stdout


def with_random_roms(text: str, seed: int = 0) -> tuple[str, dict[str, str]]:
    """The Verilog with every ``$readmemh`` pointed at a local file of random words of the
    memory's declared width and depth (``DataWidth``, ``AddressRange`` of its module)."""
    rng = np.random.default_rng(seed)
    files: dict[str, str] = {}
    out = []
    for mod in re.split(r"(?=^module )", text, flags=re.M):
        params = dict(re.findall(r"parameter\s+(\w+)\s*=\s*(\d+)", mod))
        width, depth = int(params.get("DataWidth", 8)), int(params.get("AddressRange", 1))

        def local(m):
            name = re.sub(r"\W", "_", Path(m.group(1).replace("\\", "/")).name)
            if name not in files:
                # every bit random (words are up to 864 bits wide): a zero bit would let
                # synthesis remove the weights' multipliers
                digits = (width + 3) // 4
                top = (1 << (width - 4 * (digits - 1))) - 1
                hexes = rng.integers(0, 16, (depth, digits))
                hexes[:, 0] &= top
                files[name] = "\n".join("".join("0123456789abcdef"[h] for h in row)
                                         for row in hexes) + "\n"
            return f'$readmemh("{name}", {m.group(2)})'
        out.append(_MEM.sub(local, mod))
    return "".join(out), files


def hgpipe_rows(repo: Path) -> list[tuple[str, object]]:
    """HG-PIPE's blocks, UltraScale+ mapping; where Yosys 0.70 fails on it (ATTN0: "invalid
    OPTION_ABITS/WIDTH combination" in its LUTRAM mapping, with or without -nolutram), the
    7-series mapping, which has the same LUT6 and CARRY4 cells and pin delays."""
    rows = []
    for block in BLOCKS:
        t0 = time.perf_counter()
        text, files = with_random_roms(_read_block(repo, block))
        label = f"HG-PIPE {block}"
        try:
            s = synthesize(text, block, files=files)
        except RuntimeError:
            s = synthesize(text, block, SCRIPT.replace("xcup", "xc7"), files=files)
            label += " (xc7 mapping)"
        print(f"  {label}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        rows.append((label, s))
    return rows


def our_rows(args) -> tuple[list[tuple[str, object]], Pipelining]:
    from hgpipe.cli import build_parser, make_plan_from_args
    from hgpipe.rtl.generate import TOP, generate
    from hgpipe.synth.design import synth_design
    argv = ["synth", "--model", "hgpipe-deit-tiny", "--bits", "w3a3", "--board", args.board,
            "--out", "unused"] + (["--target-ii", str(args.target_ii)] if args.target_ii else [])
    ns = build_parser().parse_args(argv)
    graph, plan, _ = make_plan_from_args(ns, lambda msg: print(f"  {msg}", file=sys.stderr))
    _, rtl, _ = generate(graph, plan)
    d = synth_design(rtl.verilog, TOP, plan.pipelining, jobs=args.jobs,
                     prefix=args.instances, files=rtl.roms)
    rows = [(f"{m.kind} x{m.instances}", m.synth) for m in
            sorted(d.modules, key=lambda m: m.fmax_mhz)]
    print(f"  plan: II {plan.ii:,}, TP={plan.tp}, clock {plan.clock_mhz:g} MHz", file=sys.stderr)
    return rows, plan.pipelining


def table(rows, pipe: Pipelining) -> str:
    lines = [f"Budget at {pipe.clock_mhz:g} MHz: {pipe.budget_ns:.2f} ns of logic, "
             f"{pipe.lut_levels} LUT levels.", "",
             "| module | LUT | FF | CARRY4 | DSP | BRAM36 | worst path: logic ns | LUTs | "
             "carries | most LUT levels | DSPs not packable | est. Fmax MHz | within |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in rows:
        over = judge(s, pipe)
        lines.append(f"| {name} | {s.lut:,} | {s.ff:,} | {s.carry:,} | {s.dsp} | {s.bram36:g} | "
                     f"{s.worst.ns:.2f} | {s.worst.luts} | {s.worst.carries} | "
                     f"{s.max_luts.luts} | {s.unpacked_dsps} | {fmax_mhz(s.worst.ns):.0f} | "
                     f"{'yes' if not over else 'NO: ' + ', '.join(over)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hgpipe-repo", type=Path, help="a checkout (or bare clone) of hguq/HG-PIPE")
    ap.add_argument("--board", default="vck190")
    ap.add_argument("--target-ii", type=int, default=57624, help="0: the fastest plan")
    ap.add_argument("--instances", default="blocks_0_",
                    help="instance-name prefix of the modules measured ('' for all)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the table as Markdown here")
    args = ap.parse_args()
    rows, pipe = our_rows(args)
    if args.hgpipe_repo:
        rows = hgpipe_rows(args.hgpipe_repo) + rows
    else:
        print("  (no --hgpipe-repo: HG-PIPE's blocks not measured)", file=sys.stderr)
    text = table(rows, pipe)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
