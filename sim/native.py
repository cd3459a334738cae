"""The native testbench: the whole-accelerator test without Python in the clock loop.

cocotb drives and samples every stream every cycle from Python, which caps a simulation
near 10k cycles/s however fast the compiled design is. For long runs the same protocol
(``sim.tb_top``: stalled input and output streams, the status registers' busy counters
read over AXI4-Lite after each image)
is generated as a Verilog harness (``harness.v.j2``) around the top level and compiled
with Verilator and a two-line C++ clock (``harness_main.cpp``). Python writes the input
beats as hex, reads back the output beats and the image-end records, and scores them
with the same ``Scoreboard``; the harness prints the simulated cycle every
``+progress`` cycles for a progress bar.

The harness uses the top level's ports only. Designs with an
AXI4 port to DDR need the cocotb testbench's memory model (``supported`` says so).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jinja2

from hgpipe.golden.vectors import Vectors

from . import runner, share
from .streams import Scoreboard

HERE = Path(__file__).resolve().parent
HARNESS = "hgpipe_harness"
PROGRESS = 1 << 16          # default cycles between progress lines
FLAVOUR = "native-6\n"      # part of the build digest
# A part module becomes a Verilator hierarchical block when its instances would repeat at
# least this much Verilog: Verilator otherwise generates each instance's code apart.
HIER_MIN_REPEAT = 100_000
HIER_MIN_SIZE = 100_000     # ... or when it is this big alone (verilated in parallel)
# Verilator threads pay once a cycle's work outweighs their synchronisation: on two
# threads the whole DeiT-tiny (6.4 MB of Verilog) ran 4,018 cycles/s, its one-block
# model (2.6 MB) 42,144 instead of 66,327 on one thread.
THREADS_MIN_VERILOG = 4_000_000


def auto_threads(source: str, optimize: bool) -> int:
    """Verilator threads for a build of ``source``: two for a long run of a large design
    where the machine has them, else one."""
    big = optimize and len(source) >= THREADS_MIN_VERILOG
    return min(2, os.cpu_count() or 1) if big else 1


def supported(acc) -> str | None:
    """Why the native testbench cannot run ``acc``, or None."""
    regions = acc.ddr_regions()
    if regions:
        return (f"the design keeps {len(regions)} streams in DDR, whose memory model is "
                "the cocotb testbench's")
    return None


def harness(acc, top: str) -> str:
    """The harness Verilog for ``acc``: its port widths, beats per image and stages. The
    run's settings (beats, stall, seed, timeout) are plusargs: one build, every run."""
    from hgpipe.rtl.status import Regs, addr_bits
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    counters = acc.netlist.counter_names
    return env.get_template("harness.v.j2").render(
        top=top, in_w=acc.in_width, out_w=acc.out_lanes * acc.out_bits,
        bpi_in=acc.beats_per_image_in, bpi_out=acc.beats_per_image_out,
        stages=counters, abits=addr_bits(len(counters)), regs=Regs)


def hier_blocks(source: str, top: str = "hgpipe_top", min_repeat: int = HIER_MIN_REPEAT,
                min_size: int = HIER_MIN_SIZE, roms: bool = False) -> list[str]:
    """The part modules to verilate apart, as Verilator hierarchical blocks, by name.

    Verilator 5 resolves a port to the parent's signal and schedules every instance's
    logic apart, so twelve instances of a stage are twelve copies of its C++ (-fno-inline
    or not): the whole DeiT-tiny model verilated to 135 MB. A hierarchical block is
    verilated and compiled once, as a library its instances call; blocks are verilated
    in parallel, the rest of the design in one single-threaded run. A block is a module
    whose instances would repeat at least ``min_repeat`` bytes of Verilog, or one of at
    least ``min_size`` bytes.

    But a block re-evaluates the logic its inputs drive at every call (Verilator's
    ``ico`` region, twice a cycle or more), where inline code evaluates it once. Measured
    on the whole DeiT-tiny: these blocks (the attention heads, gearboxes, FIFOs and the
    status registers) built in 910 s and ran 1,345 cycles/s, the same design without
    blocks in 643 s at 1,999 cycles/s (one thread); the compute stages (``roms``) as
    blocks too ran below 1,000 cycles/s. So ``build`` makes no blocks unless asked.
    """
    families = share.family_texts(source)
    if top not in families:
        raise ValueError(f"no module {top} in the source")
    size = {f: sum(map(len, t)) for f, t in families.items()}
    uses = collections.Counter(re.findall(r"^  (hgpipe_\w+) ", families[top][0], re.M))
    return sorted(m for m, n in uses.items()
                  if (size[m] * (n - 1) >= min_repeat or size[m] >= min_size)
                  and (roms or "hgpipe_romf" not in "".join(families[m])))


@dataclass(frozen=True)
class Training:
    """The run a profile-guided build learns from: the design's own vectors (and its
    ``Rtl``, whose ROM files the run loads), stopped after ``cycles`` cycles. The
    profile changes how the C++ is optimized, never what it computes. Code the run
    never reached (blocks the images had not reached yet) is compiled as without a
    profile (``-fprofile-partial-training``), not as cold code."""
    vectors: Vectors
    files: object
    cycles: int


# the profile's compiler flags: instrumented, then optimized with the counts
PGO_GENERATE = "-fprofile-generate -fprofile-update=single"
PGO_USE = "-fprofile-use -fprofile-partial-training -fprofile-correction -Wno-missing-profile"


def _step(cmd: list[str], cwd: Path, log, env: dict, what: str) -> None:
    log.write(" ".join(cmd) + "\n")
    log.flush()
    p = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if p.returncode:
        raise RuntimeError(f"{what} failed (exit {p.returncode}); see {log.name}")


def _trained(bdir: Path, level: str, log, env: dict, train: Training) -> None:
    """Compile the verilated C++ in ``bdir/obj`` instrumented, run it on the training
    vectors, and compile it again with the profile."""
    obj = bdir / "obj"
    env = {**env, "MAKEFLAGS": " ".join(f for f in env.get("MAKEFLAGS", "").split()
                                        if not f.startswith("OPT_FAST="))}
    make = ["make", "-j", str(os.cpu_count() or 1), "-f", f"V{HARNESS}.mk", "Vharness"]
    _step([*make, f"OPT_FAST={level} {PGO_GENERATE}", f"LDFLAGS={PGO_GENERATE}"], obj, log,
          env, "instrumented build")
    run(bdir, dataclasses.replace(train.vectors, timeout=train.cycles), files=train.files)
    for o in (*obj.glob("*.o"), obj / "Vharness"):
        o.unlink(missing_ok=True)
    _step([*make, f"OPT_FAST={level} {PGO_USE}"], obj, log, env, "profile-guided build")


def build(source: str, harness_text: str, build_root: Path = runner.DEFAULT_BUILD,
          optimize: bool = True, threads: int = 1, flags: tuple[str, ...] | None = None,
          blocks: list[str] | None = None, train: Training | None = None) -> Path:
    """Compile the design under the harness with Verilator once per content; its dir.

    ``optimize``: the C++ at -O2 (its slow half, which runs once, at -O0) and Verilator's
    module inlining off (``-fno-inline``: less C++ to compile). Otherwise -O0 (small
    designs, short runs). ``flags`` replaces the Verilator options ``optimize`` adds;
    ``runner.VERILATOR_FLAGS`` apply to every build. ``threads``: Verilator's threads
    (the whole DeiT-tiny: 2,767 cycles/s on two, 1,999 on one). Parts that differ only in
    memory placement are merged first (``sim.share``).

    ``blocks``: modules to build as Verilator hierarchical blocks, each verilated and
    compiled once (``hier_blocks`` picks some; none by default: see there why).

    ``train`` (with ``optimize``): profile-guided: the C++ is compiled instrumented, run
    on the training vectors for ``train.cycles`` cycles, and compiled again with the
    profile (see ``Training``)."""
    runner._check("verilator")
    level = "-O2" if optimize else "-O0"
    flags = ((("-fno-inline",) if optimize else ()) if flags is None else flags)
    into = share.merges(source)     # modules that differ only in placement: one
    source = share.shared(source, into=into)
    blocks = sorted({into.get(b, b) for b in blocks or ()})
    config = "`verilator_config\n" + "".join(f'hier_block -module "{m}"\n' for m in blocks)
    train = train if optimize else None
    pgo = f" pgo={train.cycles}" if train else ""
    key = (f"{FLAVOUR}{level}{pgo} threads={threads} "
           f"{' '.join((*runner.VERILATOR_FLAGS, *flags))}\n"
           f"{config}\n"
           f"{harness_text}\n{source}")
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    bdir = Path(build_root) / f"native-{digest}"
    if (bdir / ".built").exists():
        return bdir
    bdir.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock
    with FileLock(str(bdir) + ".lock"):
        if not (bdir / ".built").exists():
            (bdir / "top.v").write_text(source)
            (bdir / "harness.v").write_text(harness_text)
            (bdir / "hier.vlt").write_text(config)
            shutil.copy(HERE / "harness_main.cpp", bdir / "harness_main.cpp")
            make = " ".join([f for f in os.environ.get("MAKEFLAGS", "").split()
                             if not f.startswith("OPT")]
                            # the "slow" half of Verilator's C++ (constructors, initial
                            # blocks) runs once: compiled unoptimized
                            + [f"OPT_FAST={level}", "OPT_SLOW=-O0", f"OPT_GLOBAL={level}"])
            cmd = ["verilator", "--cc", "--exe", *([] if train else ["--build"]),
                   "-j", str(os.cpu_count() or 1),
                   "--top-module", HARNESS, "-Wno-fatal", "-Wno-WIDTH", "-Wno-lint",
                   "--x-assign", "fast", "--x-initial", "fast",
                   *(["--threads", str(threads)] if threads > 1 else []),
                   *runner.VERILATOR_FLAGS, *flags,
                   *(["--hierarchical", "hier.vlt"] if blocks else []),
                   "--Mdir", "obj", "-o", "Vharness",
                   "harness.v", "top.v", "harness_main.cpp"]
            log = bdir / "build.log"
            env = {**os.environ, "MAKEFLAGS": make}
            with open(log, "w") as f:
                _step(cmd, bdir, f, env, "verilator build")
                if train:
                    _trained(bdir, level, f, env, train)
            (bdir / ".built").write_text(digest)
    return bdir


def run(bdir: Path, vectors: Vectors, progress=None, every: int = PROGRESS,
        files=None) -> runner.SimResult:
    """Run ``vectors`` through the built harness (``files``: the design's ``Rtl``, whose
    ROM files the run loads); ``progress(cycle, beats_out)`` is called every ``every``
    simulated cycles."""
    run_id = hashlib.sha256(f"{vectors.seed}-{vectors.stall}-{os.getpid()}".encode()
                            ).hexdigest()[:8]
    tdir = bdir / f"run-{run_id}"
    tdir.mkdir(exist_ok=True)
    for f in ("out.hex", "result.txt", "status.txt"):
        (tdir / f).unlink(missing_ok=True)
    if files is not None:
        files.write_roms(tdir)
    s = vectors.inputs["s_axis"]
    digits = (s.bits * s.beats.shape[1] + 3) // 4
    (tdir / "in.hex").write_text("".join(f"{w:0{digits}x}\n" for w in s.pack()))
    with open(tdir / "sim.log", "w") as log:
        args = {"n_in": len(s.beats), "n_out": len(vectors.output.beats),
                "stall": round(vectors.stall * 65536), "seed": vectors.seed,
                "timeout": vectors.timeout, "progress": max(1, every)}
        p = subprocess.Popen([str(bdir / "obj" / "Vharness"),
                              *(f"+{k}={v}" for k, v in args.items())], cwd=tdir,
                             stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            for line in p.stdout:
                if line.startswith("progress ") and progress is not None:
                    cycle, beats = line.split()[1:]
                    progress(int(cycle), int(beats))
                else:
                    log.write(line)
            p.wait()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    if p.returncode or not (tdir / "result.txt").exists():
        raise RuntimeError(f"native simulation exited {p.returncode}; see {tdir / 'sim.log'}")
    return _result(tdir, vectors)


def _result(tdir: Path, vectors: Vectors) -> runner.SimResult:
    stages = vectors.meta["stages"]     # the status registers' order
    ends, bad_last, first_last, timeout = [], [], [0, 0], None
    status = []
    for line in (tdir / "status.txt").read_text().splitlines():
        first, cycle, images, *busy, last = map(int, line.split()[1:])
        if first == last:       # else a newer snapshot came in while it was read
            status.append({"cycle": cycle, "images": images, "busy": dict(zip(stages, busy))})
    for line in (tdir / "result.txt").read_text().splitlines():
        word, *vals = line.split()
        if word == "end":
            ends.append(int(vals[0]))
        elif word == "badlast":
            bad_last.append(int(vals[0]))
        elif word == "in":
            first_last = [int(v) for v in vals]
        elif word == "timeout":
            timeout = int(vals[0])
    words = [int(w, 16) for w in (tdir / "out.hex").read_text().split()]
    score = Scoreboard(vectors.output.beats, vectors.output.unpack).check(words)
    if timeout is not None and score["mismatches"] == 0:
        score["first_mismatch"] = {"timeout_cycle": timeout, "received": len(words)}
    return runner.SimResult(
        received=score["received"], expected=score["expected"],
        mismatches=score["mismatches"], first_mismatch=score["first_mismatch"],
        out_cycles=[], in_cycles={"s_axis": first_last},
        extra={"image_ends": ends, "status": status, "bad_tlast": bad_last[:10], "ddr_strays": []})
