"""The HLS project a user gets (``hgpipe generate --backend hls``) and its C simulation
against the golden model (``hgpipe sim --backend hls``)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..golden.vectors import io_beats
from ..graph.graph import IntGraph
from ..plan.plan import Plan
from .csim import FAST, build, load_beats, run, save_beats, write_tree
from .design import hls_files

SOURCES = ("top.cpp", "tb.cpp")


def write_project(root: Path, graph: IntGraph, plan: Plan, patches: np.ndarray,
                  files: dict[str, str] | None = None,
                  beats: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """``root`` (new): the HLS sources, ``run_hls.tcl`` and ``vectors/`` (``beats``: the
    ``io_beats`` of ``patches``, if already computed)."""
    write_tree(root, files or hls_files(graph, plan))
    x, y = beats or io_beats(graph, plan, patches)
    (root / "vectors").mkdir()
    save_beats(root / "vectors" / "in.txt", x)
    save_beats(root / "vectors" / "expected.txt", y)


@dataclass(frozen=True)
class CsimResult:
    bit_exact: bool
    images: int
    mismatches: int                  # logits that differ
    first_mismatch: dict | None
    build_seconds: float
    run_seconds: float
    cached: bool
    warnings: str


def csim(graph: IntGraph, plan: Plan, patches: np.ndarray, optimize: bool = False,
         files: dict[str, str] | None = None,
         beats: tuple[np.ndarray, np.ndarray] | None = None) -> CsimResult:
    """Compile the project with g++ and run its testbench on ``patches`` (``beats``: their
    ``io_beats``, if already computed)."""
    beats = beats or io_beats(graph, plan, patches)
    files = files or hls_files(graph, plan)
    t0 = time.perf_counter()
    b = build(files, SOURCES, flags=FAST if optimize else None)
    t1 = time.perf_counter()
    x, want = beats
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        save_beats(d / "in.txt", x)
        save_beats(d / "expected.txt", want)
        r = run(b.binary, [str(d / "in.txt"), str(d / "expected.txt"), str(d / "out.txt")])
        if r.returncode not in (0, 1) or not (d / "out.txt").is_file():
            raise RuntimeError(f"C simulation failed ({r.returncode}): "
                               f"{(r.stderr or r.stdout).strip()[-2000:]}")
        got = load_beats(d / "out.txt", want.shape[1])
    t2 = time.perf_counter()
    n = len(patches)
    classes = graph.config.num_classes
    got_l, want_l = got.reshape(n, classes), want.reshape(n, classes)
    bad = np.argwhere(got_l != want_l)
    first = None
    if len(bad):
        i, c = (int(v) for v in bad[0])
        first = {"image": i, "logit": c, "expected": int(want_l[i, c]),
                 "got": int(got_l[i, c])}
    return CsimResult(not len(bad), n, len(bad), first, round(t1 - t0, 2), round(t2 - t1, 2),
                      b.cached, b.warnings)
