"""``hgpipe generate`` and ``hgpipe sim``: the accelerator's RTL (or HLS C++), and its proof in
simulation; the arguments of those and of ``hgpipe synth``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .choice import Choice
from .errors import HgpipeError

class Backend(Choice):
    """What ``generate`` and ``sim`` build from the plan."""

    RTL = "rtl"     # Amaranth -> Verilog, simulated in cocotb
    HLS = "hls"     # Vitis HLS C++ from hls_templates/, C-simulated with g++


def backend(args: argparse.Namespace) -> Backend:
    try:
        return Backend.parse(args.backend, "backend")
    except ValueError as exc:
        raise HgpipeError(str(exc)) from None


MAX_STALL = 0.9     # beyond, a run takes ten times the cycles and more: the timeout's bound
MAX_IMAGES = 10_000  # random test images (their vectors are held in memory)
MAX_THREADS = 64
LONG_RUN = 200_000  # cycles from which a simulator build compiles at -O2


def _test_patches(args: argparse.Namespace, graph, n: int) -> np.ndarray:
    """The images the test vectors use: --inputs, or ``n`` random images by --seed."""
    from .model.forward import image_batch
    cfg = graph.config
    if getattr(args, "inputs", None):
        from .cli_common import _load_array
        images = image_batch(cfg, _load_array(args.inputs, "inputs"), "inputs")
    else:
        rng = np.random.default_rng(args.seed + 1)
        images = rng.standard_normal((n, cfg.in_chans, cfg.image_size, cfg.image_size))
    return graph.encode_images(images)


def check_images(args: argparse.Namespace, least: int) -> None:
    """``--images`` (random test images) in range, before any work."""
    if not args.inputs and not least <= args.images <= MAX_IMAGES:
        raise HgpipeError(f"images: {args.images}: expected {least} to {MAX_IMAGES:,} test "
                          "images")


def generate_for(args: argparse.Namespace, say, images: int):
    """Plan, elaborate and convert; returns what the writers and the simulator need."""
    from .cli_common import make_plan_from_args
    from .golden.vectors import top_vectors
    from .rtl.generate import generate
    graph, plan, perf = make_plan_from_args(args, say)
    say(f"converting {len(graph.stages)} stages to Verilog, each distinct part once")
    with tqdm(total=0, unit="batch", desc="Verilog", disable=args.quiet,
              file=sys.stderr, leave=False) as bar:
        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        acc, source, stats = generate(graph, plan, progress=tick)
    say(f"{stats['parts']} parts, {stats['structures']} distinct modules "
        f"({stats['rom_files']} ROM files)")
    patches = _test_patches(args, graph, images)
    say(f"golden vectors for {len(patches)} images")
    vec = top_vectors(graph, acc, patches, cycles_per_image=plan.ii)
    return graph, plan, perf, acc, source, patches, vec


def rtl_files(source, vec, patches: np.ndarray, acc):
    """The files ``generate`` adds to the report's output, written into ``tmp``: the
    Verilog, its ROM files under ``rtl/roms`` (``HGPIPE_ROM_DIR``, relative to where the
    tool runs: ``rtl/``), the ports and the test vectors."""
    from .rtl.generate import TOP

    def write(tmp: Path) -> None:
        rtl = tmp / "rtl"
        rtl.mkdir()
        (rtl / f"{TOP}.v").write_text(source.verilog)
        source.write_roms(rtl)
        (rtl / "filelist.f").write_text(f"{TOP}.v\n")
        (rtl / "ports.json").write_text(json.dumps({
            "top": TOP, "s_axis_tdata_bits": acc.in_width,
            "m_axis_tdata_bits": acc.out_lanes * acc.out_bits,
            "beats_per_image_in": acc.beats_per_image_in,
            "beats_per_image_out": acc.beats_per_image_out,
            "out_lanes": acc.out_lanes, "out_bits": acc.out_bits,
            **({"m_axi": _axi_port(acc)} if acc.ddr_regions() else {}),
            **({"s_axil": {"addr_bits": acc.status_abits, "data_bits": 32,
                           "map": "plan.json: status"}} if acc.status_abits else {})},
            indent=1) + "\n")
        images = acc.ddr_images()
        for name, _, base in acc.ddr_regions():
            if base in images:
                (rtl / "ddr").mkdir(exist_ok=True)
                (rtl / "ddr" / f"{_file(name)}.bin").write_bytes(images[base])
        v = tmp / "vectors"
        v.mkdir()
        vec.save(v / "top.npz")
        np.save(v / "patches.npy", patches)
    return write


def _axi_port(acc) -> dict:
    """The AXI4 manager port of the streams in DDR: its widths and the address range each
    uses (reserve them for the accelerator), and the files to load before starting."""
    from .rtl.axi import arbiter_params
    p = arbiter_params(len(acc.ddr_regions()), acc.axi)
    images = acc.ddr_images()
    return {"addr_bits": p.addr_bits, "data_bits": p.data_bits, "id_bits": p.id_bits,
            "regions": [{"name": name, "base": base, "bytes": lay.region_bytes,
                         **({"preload": f"ddr/{_file(name)}.bin"} if base in images else {})}
                        for name, lay, base in acc.ddr_regions()]}


def _file(name: str) -> str:
    return name.replace(":", "_").replace(".", "_").replace("->", "_to_")


def _hls(args: argparse.Namespace, say):
    """Plan and render the HLS view; returns what ``generate`` and ``sim`` need."""
    from .cli_common import make_plan_from_args
    from .hls.design import hls_files
    graph, plan, perf = make_plan_from_args(args, say)
    say("rendering the HLS C++ from hls_templates/")
    files = hls_files(graph, plan)
    patches = _test_patches(args, graph, args.images)
    return graph, plan, perf, files, patches


def cmd_generate_hls(args: argparse.Namespace) -> int:
    from .cli_common import _progress, headline, summary
    from .hls.project import write_project
    from .outdir import OutDir
    from .report.plan_report import write
    check_images(args, 1)
    out = OutDir(args.out, args.force)
    say = _progress(args.quiet)
    graph, plan, perf, files, patches = _hls(args, say)
    say(f"golden vectors for {len(patches)} images")
    written = write(out, graph, plan, perf, progress=say,
                    extra=lambda tmp: write_project(tmp / "hls", graph, plan, patches, files))
    lines = sum(v.count("\n") for k, v in files.items() if k.startswith("stages/")
                or k in ("top.cpp", "plumbing.h"))
    print(f"{headline(plan)}: {len(files)} HLS files, {lines:,} lines of kernels and top")
    print(summary(plan, perf))
    print(f"wrote {', '.join(str(f) for f in written)}")
    return 0


def cmd_sim_hls(args: argparse.Namespace) -> int:
    from .cli_common import _progress
    from .hls.csim import HlsMissing
    from .golden.vectors import io_beats
    from .hls.project import csim, write_project
    from .outdir import OutDir
    from .report.plan_report import write
    check_images(args, 1)
    if args.stall:
        raise HgpipeError(f"stall: {args.stall}: C simulation has no cycles to stall: "
                          "expected 0 with --backend hls")
    out = OutDir(args.out, args.force)
    say = _progress(args.quiet)
    graph, plan, perf, files, patches = _hls(args, say)
    say(f"compiling with g++ and C-simulating {len(patches)} images")
    beats = io_beats(graph, plan, patches)
    try:
        r = csim(graph, plan, patches, optimize=len(patches) * plan.ii > 2_000_000,
                 files=files, beats=beats)
    except (HlsMissing, RuntimeError) as exc:
        raise HgpipeError(f"simulation: {exc}") from None
    result = {"backend": "hls", "model": plan.model, "bits": plan.bits,
              "board": plan.board.name, "simulator": "g++ (C simulation)",
              "bit_exact": r.bit_exact, "images": r.images, "mismatches": r.mismatches,
              "first_mismatch": r.first_mismatch, "build_seconds": r.build_seconds,
              "build_cached": r.cached, "run_seconds": r.run_seconds}

    def extra(tmp: Path) -> None:
        write_project(tmp / "hls", graph, plan, patches, files, beats)
        (tmp / "sim.json").write_text(json.dumps(result, indent=1) + "\n")
    write(out, graph, plan, perf, progress=say, extra=extra)
    print(f"{plan.model} {plan.bits}, HLS C simulation (g++), {r.images} images: "
          f"{'BIT-EXACT' if r.bit_exact else f'{r.mismatches} MISMATCHES'}")
    print(f"  build {r.build_seconds:.1f} s{' (cached)' if r.cached else ''}, run "
          f"{r.run_seconds:.1f} s")
    print(f"wrote {out.path / 'sim.json'}")
    return 0 if r.bit_exact else 1


def cmd_generate(args: argparse.Namespace) -> int:
    from .cli_common import _progress, headline, summary
    from .outdir import OutDir
    from .report.plan_report import write
    if backend(args) is Backend.HLS:
        return cmd_generate_hls(args)
    check_images(args, 1)
    out = OutDir(args.out, args.force)
    say = _progress(args.quiet)
    graph, plan, perf, acc, source, patches, vec = generate_for(args, say, args.images)
    files = write(out, graph, plan, perf, progress=say,
                  extra=rtl_files(source, vec, patches, acc))
    print(f"{headline(plan)}: {len(source.verilog.splitlines()):,} lines of Verilog, "
          f"{len(source.roms)} ROM files")
    print(summary(plan, perf))
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    if backend(args) is Backend.HLS:
        return cmd_sim_hls(args)
    from sim import e2e, native, runner
    from .cli_common import _progress
    from .outdir import OutDir
    from .report.plan_report import write
    if not args.inputs and not 2 <= args.images <= MAX_IMAGES:
        raise HgpipeError(f"images: {args.images}: expected 2 to {MAX_IMAGES:,} (the II is "
                          "measured between consecutive images)")
    if not 0 <= args.stall <= MAX_STALL:
        raise HgpipeError(f"stall: {args.stall}: expected a probability in [0, {MAX_STALL}]")
    if args.inputs:     # the II is measured between images: two at least, checked up front
        from .cli_common import _load_array
        n = len(np.atleast_1d(_load_array(args.inputs, "inputs")))
        if n < 2:
            raise HgpipeError(f"inputs: {n} images in {args.inputs!r}: expected at least 2 "
                              "(the II is measured between consecutive images)")
    if not 0 <= args.threads <= MAX_THREADS:
        raise HgpipeError(f"threads: {args.threads}: expected 0 (automatic) to "
                          f"{MAX_THREADS} Verilator threads")
    if args.simulator not in runner.SIMULATORS:
        raise HgpipeError(f"simulator: {args.simulator!r}: expected one of "
                          f"{', '.join(runner.SIMULATORS)}")
    out = OutDir(args.out, args.force)
    build_root = Path(args.build_dir) if args.build_dir else \
        Path.home() / ".cache" / "hgpipe" / "sim_build"
    if build_root.exists() and not build_root.is_dir():
        raise HgpipeError(f"build-dir: {str(build_root)!r}: exists and is not a directory")
    if args.testbench not in {t.value for t in e2e.Testbench}:
        raise HgpipeError(f"testbench: {args.testbench!r}: expected one of "
                          f"{', '.join(t.value for t in e2e.Testbench)}")
    testbench = e2e.Testbench(args.testbench)
    if testbench is e2e.Testbench.NATIVE and args.simulator != "verilator":
        raise HgpipeError(f"testbench: native: runs on Verilator only, not {args.simulator} "
                          "(use --testbench cocotb)")
    say = _progress(args.quiet)
    graph, plan, perf, acc, source, patches, vec = generate_for(args, say, args.images)
    testbench = testbench.pick(args.simulator, acc)
    if testbench is e2e.Testbench.NATIVE and (why := native.supported(acc)):
        raise HgpipeError(f"testbench: native: {why} (use --testbench cocotb)")
    if args.pgo and testbench is not e2e.Testbench.NATIVE:
        raise HgpipeError(f"pgo: a profile-guided build needs the native testbench, not "
                          f"{testbench} (use --testbench native)")
    if args.threads > 1 and testbench is not e2e.Testbench.NATIVE:
        raise HgpipeError(f"threads: {args.threads}: Verilator threads need the native "
                          f"testbench, not {testbench} (use --testbench native)")
    n = len(patches)
    cycles = round(perf.latency_cycles + (n - 1) * plan.ii)     # the run, as modelled
    long_run = cycles > LONG_RUN
    # --pgo trains on the first image's modelled latency (long, optimized runs only)
    train = round(perf.latency_cycles) if args.pgo and long_run else 0
    threads = args.threads or (native.auto_threads(source.verilog, long_run)
                               if testbench is e2e.Testbench.NATIVE else 1)
    say(f"building and simulating with {args.simulator}, {testbench} testbench ({n} images, "
        f"stall {args.stall}, ~{cycles:,} cycles)")
    bars = []      # the progress bar starts with the simulation, after the build

    def progress(cycle: int, _beats: int) -> None:
        if not bars:
            bars.append(tqdm(total=cycles, unit="cycle", unit_scale=True, desc="simulated",
                             leave=False, file=sys.stderr, disable=args.quiet))
        bars[0].update(min(cycle, cycles) - bars[0].n)
    try:
        r = e2e.simulate(graph, acc, patches, simulator=args.simulator, stall=args.stall,
                         seed=args.seed, cycles_per_image=plan.ii, source=source,
                         build_root=build_root, optimize=long_run,
                         testbench=testbench, threads=threads, progress=progress,
                         train_cycles=train)
    except (runner.SimulatorMissing, RuntimeError) as exc:
        raise HgpipeError(f"simulation: {exc}") from None
    finally:
        for b in bars:
            b.close()
    result = {"model": plan.model, "bits": plan.bits, "board": plan.board.name,
              "simulator": args.simulator, "testbench": str(testbench),
              "threads": threads, "pgo": bool(train),
              "build_seconds": r.build_seconds,
              "run_seconds": r.run_seconds,
              "stall": args.stall, "bit_exact": r.bit_exact,
              "images": r.images, "mismatches": r.mismatches,
              "first_mismatch": r.first_mismatch,
              "measured_ii_cycles": r.measured_ii_cycles, "model_ii_cycles": plan.ii,
              "measured_latency_cycles": r.measured_latency_cycles,
              "model_latency_cycles": round(perf.latency_cycles, 1),
              "image_end_cycles": r.image_end_cycles, "stage_busy": r.stage_busy,
              "model_stage_busy": {s.name: round(s.cycles / plan.ii, 4) for s in plan.stages}}

    def extra(tmp: Path) -> None:
        rtl_files(source, vec, patches, acc)(tmp)
        (tmp / "sim.json").write_text(json.dumps(result, indent=1) + "\n")
    write(out, graph, plan, perf, progress=say, extra=extra)
    ii_err = (r.measured_ii_cycles - plan.ii) / plan.ii if r.measured_ii_cycles else None
    lat_err = (r.measured_latency_cycles - perf.latency_cycles) / perf.latency_cycles
    print(f"{plan.model} {plan.bits}, {args.simulator} ({testbench} testbench), "
          f"{r.images} images, stall "
          f"{args.stall}: {'BIT-EXACT' if r.bit_exact else f'{r.mismatches} MISMATCHES'}")
    print(f"  II       measured {r.measured_ii_cycles:,} cycles, model {plan.ii:,}"
          + (f" ({ii_err:+.2%})" if ii_err is not None else ""))
    print(f"  latency  measured {r.measured_latency_cycles:,} cycles, model "
          f"{perf.latency_cycles:,.0f} ({lat_err:+.2%})")
    low = {k: v for k, v in r.stage_busy.items() if v < 0.95 and plan.stage(k).cycles >= 0.95 * plan.ii}
    if r.stage_busy:
        print(f"  busy     {min(r.stage_busy.values()):.1%} .. "
              f"{max(r.stage_busy.values()):.1%}"
              + (f"; below 95% at the II: {', '.join(low)}" if low else ""))
    elif not plan.status:
        print("  busy     not measured: the design has no status registers (--status on "
              "builds them)")
    else:
        need = int(np.ceil(perf.latency_cycles / plan.ii)) + 2
        print(f"  busy     not measured: no image ended while images still streamed in "
              f"(the pipeline holds {need - 2}+ images; run {need} or more)")
    print(f"  speed    {r.image_end_cycles[-1] / max(r.run_seconds, 1e-9):,.0f} cycles/s "
          f"simulated (build {r.build_seconds:.0f} s, run {r.run_seconds:.1f} s)"
          if r.image_end_cycles else "  no image completed")
    print(f"wrote {out.path / 'sim.json'}")
    return 0 if r.bit_exact else 1


def cmd_synth(args: argparse.Namespace) -> int:
    from .cli_synth import cmd_synth as run     # Yosys' command, in a module of its own
    return run(args)


def add_commands(sub) -> None:
    from .cli_common import _add_model_args, _add_plan_args, _add_quant_args, add_force_arg
    for name, fn, text in (("generate", cmd_generate, "generate the accelerator's Verilog, "
                            "plan, reports and test vectors"),
                           ("sim", cmd_sim, "generate and verify the accelerator in cocotb "
                            "against the golden model"),
                           ("synth", cmd_synth, "generate, then synthesize each distinct "
                            "module with Yosys: cells, logic depth, estimated clock")):
        p = sub.add_parser(name, help=text)
        _add_model_args(p)
        _add_quant_args(p)
        _add_plan_args(p)
        p.add_argument("--inputs", help="test images .npy (default: random by --seed)")
        p.add_argument("--images", type=int, default=8 if name == "sim" else 2,
                       help="random test images (default %(default)s)")
        p.add_argument("--out", required=True, help="output directory")
        add_force_arg(p)
        p.add_argument("--quiet", action="store_true", help="no progress messages")
        if name in ("generate", "sim"):
            p.add_argument("--backend", default="rtl", help="rtl (Verilog, cocotb) or hls "
                           "(Vitis HLS C++, C simulation with g++); default %(default)s")
        if name == "sim":
            p.add_argument("--simulator", default="verilator", help="verilator or icarus")
            p.add_argument("--testbench", default="auto", help="native (a Verilog harness "
                           "under Verilator: no Python per cycle, for long runs), cocotb "
                           "(both simulators, DDR memory model) or auto: native unless "
                           "the simulator is Icarus or the plan uses DDR (default auto)")
            p.add_argument("--stall", type=float, default=0.0,
                           help="probability of a valid/ready stall per cycle on both streams, "
                           f"0 to {MAX_STALL}")
            p.add_argument("--threads", type=int, default=0,
                           help="Verilator threads of the native testbench (default 0: two "
                           f"for runs over {LONG_RUN:,} cycles of designs of 4 MB of Verilog "
                           "or more if the machine has them, else one)")
            p.add_argument("--pgo", action="store_true",
                           help="profile-guided native build: compile the simulator "
                           "instrumented, run it for the first image's modelled latency, "
                           "compile it again with that profile (the build takes that run "
                           "and a second compile longer, every later run of the cached "
                           "build is faster; long runs only)")
            p.add_argument("--build-dir", help="simulator build cache "
                           "(default ~/.cache/hgpipe/sim_build)")
        if name == "synth":
            p.add_argument("--jobs", type=int, default=2, help="Yosys processes (default 2)")
            p.add_argument("--instances", help="only the parts whose instance names start "
                           "with one of these comma-separated prefixes (e.g. blocks_0_ for "
                           "the first encoder block)")
        p.set_defaults(fn=fn)
