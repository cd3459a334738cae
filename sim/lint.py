"""``verilator --lint-only -Wall`` on generated Verilog.

Suppressed, besides WIDTH: warning classes that Yosys' Verilog backend produces by
construction and that say nothing about the design: dotted submodule names (DECLFILENAME),
register initialisers (PROCASSINIT), wires it keeps for their names (UNUSEDSIGNAL),
``casez`` blocks whose default is a preceding assignment (CASEINCOMPLETE), and zero-width
wires (ASCRANGE). Everything else -- latches, multiple drivers, combinational loops,
constant comparisons -- is reported.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from .runner import _verilator_env

SUPPRESSED = ("WIDTH", "DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL", "CASEINCOMPLETE",
              "ASCRANGE")


def lint(source: str, top: str) -> list[str]:
    """The warning and error lines verilator reports (empty when clean)."""
    _verilator_env()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{top}.v"
        path.write_text(source)
        r = subprocess.run(["verilator", "--lint-only", "-Wall", *[f"-Wno-{w}" for w in
                                                                   SUPPRESSED],
                            "--top-module", top, str(path)], capture_output=True, text=True)
    return [line for line in r.stderr.splitlines() if line.startswith("%")]
