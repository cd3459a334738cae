"""``hgpipe generate`` for DeiT-tiny: wall time, memory, size, determinism and lint.

    python benchmarks/generate.py                     # hgpipe-deit-tiny w3a3 on VCK190
    python benchmarks/generate.py --model deit-small --runs 1 --no-lint

Runs the CLI ``--runs`` times into fresh directories (target: <= 60 s on 2 cores), checks
that every file it writes is byte-identical between runs, and lints the Verilog with
``verilator --lint-only -Wall`` (width warnings aside). The VM this was measured on has
CPU steal: take the fastest run as the figure, and look at the spread.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim.lint import lint


def run(model: str, bits: str, board: str, out: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hgpipe.cli", "generate", "--model", model,
                    "--bits", bits, "--board", board, "--out", str(out), "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, rss


def files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="hgpipe-deit-tiny")
    ap.add_argument("--bits", default="w3a3")
    ap.add_argument("--board", default="vck190")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--no-lint", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outs, walls = [], []
        for k in range(args.runs):
            out = Path(tmp) / f"run{k}"
            wall, rss = run(args.model, args.bits, args.board, out)
            outs.append(files(out))
            walls.append(wall)
            print(f"run {k + 1}: {wall:6.1f} s, peak RSS {rss:,.0f} MB", flush=True)
        first = outs[0]
        differ = sorted({name for o in outs[1:] for name in set(first) | set(o)
                         if first.get(name) != o.get(name)})
        v = first["rtl/hgpipe_top.v"].decode()
        problems = [] if args.no_lint else lint(v, "hgpipe_top")
    print(f"\n{'model':18s} {'bits':5s} {'board':7s} {'fastest s':>9s} {'slowest s':>9s} "
          f"{'Verilog MB':>10s} {'lines':>9s} {'identical':>9s} {'lint':>6s}")
    print(f"{args.model:18s} {args.bits:5s} {args.board:7s} {min(walls):9.1f} "
          f"{max(walls):9.1f} {len(v) / 1e6:10.1f} {v.count(chr(10)):9,d} "
          f"{'yes' if not differ else 'NO':>9s} "
          f"{'-' if args.no_lint else ('clean' if not problems else len(problems)):>6}")
    for name in differ:
        print(f"  differs between runs: {name}")
    for line in problems[:20]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
