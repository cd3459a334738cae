"""``hgpipe sim`` end to end on vit-micro: the whole accelerator bit-exact against the
golden model on both simulators, with and without stalls on both AXI-Streams; without
stalls the measured II is within 1% of the model's and the latency within 5%."""

from __future__ import annotations

import json

import pytest

from hgpipe.cli import main
from sim import runner

from ..rtl.conftest import SIMULATORS

KEYS = {"bit_exact", "images", "measured_ii_cycles", "model_ii_cycles",
        "measured_latency_cycles", "model_latency_cycles", "stage_busy"}
TARGET_II = "1024"   # vit-micro at ~1k cycles per image


def _sim(tmp_path, simulator, stall, bits, images=4, extra=(), testbench="auto"):
    out = tmp_path / f"{simulator}-{stall}-{bits}"
    code = main(["sim", "--model", "vit-micro", "--bits", bits, "--target-ii", TARGET_II,
                 "--status", "on",
                 "--simulator", simulator, "--testbench", testbench,
                 "--stall", str(stall), "--images", str(images),
                 "--out", str(out), "--build-dir", str(runner.DEFAULT_BUILD), "--quiet",
                 *extra])
    return code, json.loads((out / "sim.json").read_text()), out


BENCHES = [(s, t) for s in SIMULATORS for t in ("native", "cocotb")
           if s == "verilator" or t == "cocotb"]


@pytest.mark.parametrize("simulator, testbench", BENCHES)
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_sim_is_bit_exact_and_meets_the_model(tmp_path, simulator, testbench, stall, capsys):
    """Enough images that the pipeline is full while images still stream in."""
    code, d, out = _sim(tmp_path, simulator, stall, "w4a4", images=8, testbench=testbench)
    assert code == 0
    assert KEYS <= set(d) and d["testbench"] == testbench
    assert d["bit_exact"] and d["images"] == 8 and d["mismatches"] == 0
    if stall == 0.0:
        assert abs(d["measured_ii_cycles"] - d["model_ii_cycles"]) <= 0.01 * d["model_ii_cycles"]
        assert abs(d["measured_latency_cycles"] - d["model_latency_cycles"]) <= \
            0.05 * d["model_latency_cycles"]
        assert set(d["stage_busy"]) == set(d["model_stage_busy"])   # the status registers
        for name, busy in d["stage_busy"].items():
            if d["model_stage_busy"][name] >= 0.95:
                assert busy >= 0.95, (name, busy)
    for f in ("rtl/hgpipe_top.v", "rtl/filelist.f", "vectors/top.npz", "plan.json"):
        assert (out / f).exists(), f
    assert "BIT-EXACT" in capsys.readouterr().out


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_sim_with_the_residual_in_ddr(tmp_path, simulator, stall):
    """``--offchip all``: the residual around attention goes through a DDR ring and the
    head's weights stream from a preloaded DDR image, on one AXI4 port; the memory model
    stalls every channel and refuses strays."""
    code, d, out = _sim(tmp_path, simulator, stall, "w4a4", images=6,
                        extra=["--offchip", "all", "--board", "zcu102"])
    assert code == 0 and d["bit_exact"] and d["images"] == 6
    assert d["testbench"] == "cocotb"       # auto: the DDR memory model is cocotb's
    plan = json.loads((out / "plan.json").read_text())
    ports = json.loads((out / "rtl" / "ports.json").read_text())
    regions = plan["ddr"]["regions"]
    assert {r["name"] for r in regions} == {"head:weights", "tokens->blocks.0.add1"}
    assert [(r["name"], r["base"]) for r in regions] == [
        (r["name"], r["base"]) for r in ports["m_axi"]["regions"]]
    head = next(r for r in ports["m_axi"]["regions"] if r["name"] == "head:weights")
    size = (out / "rtl" / head["preload"]).stat().st_size
    assert 16 * 10 <= size <= head["bytes"]    # 16 x 10 8-bit weights, in whole bursts
    assert plan["stages"][-1]["memories"]["weights"] == "ddr"
    assert "m_axi_awaddr" in (out / "rtl" / "hgpipe_top.v").read_text()
    if stall == 0.0:
        assert abs(d["measured_ii_cycles"] - d["model_ii_cycles"]) <= 0.01 * d["model_ii_cycles"]


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("tp", [2, 4])
def test_sim_pads_a_prime_token_count(tmp_path, simulator, tp):
    """vit-digits: 16 patches and an extra class token, 17 tokens, streamed at TP 2 and 4
    as 18 and 20 rows (the class token's row after the patches, then zero rows, their keys
    masked): bit-exact under stalls on both AXI-Streams; without them at the model's II."""
    for stall in (0.3, 0.0):
        out = tmp_path / f"{stall}"
        assert main(["sim", "--model", "vit-digits", "--bits", "w4a4", "--tp", str(tp),
                     "--target-ii", "300", "--simulator", simulator, "--stall", str(stall),
                     "--images", "4", "--out", str(out), "--build-dir",
                     str(runner.DEFAULT_BUILD), "--quiet"]) == 0
        d = json.loads((out / "sim.json").read_text())
        plan = json.loads((out / "plan.json").read_text())
        assert plan["tp"] == tp and plan["tokens"]["tokens"] == 17
        assert plan["tokens"]["rows"] == {2: 18, 4: 20}[tp] and plan["tokens"]["cls_row"] == 16
        assert d["bit_exact"] and d["images"] == 4 and d["mismatches"] == 0
    assert d["measured_ii_cycles"] == d["model_ii_cycles"]


def test_sim_w3a3_default_plan(tmp_path):
    """The fastest plan that fits (no target): wide foldings, several images in flight."""
    out = tmp_path / "fast"
    assert main(["sim", "--model", "vit-micro", "--bits", "w3a3", "--images", "4",
                 "--out", str(out), "--build-dir", str(runner.DEFAULT_BUILD), "--quiet"]) == 0
    d = json.loads((out / "sim.json").read_text())
    assert d["bit_exact"]
    assert abs(d["measured_ii_cycles"] - d["model_ii_cycles"]) <= 0.01 * d["model_ii_cycles"]


def test_sim_native_on_two_verilator_threads(tmp_path):
    """``--threads 2``: Verilator's multithreaded model, bit-exact under stalls."""
    build = tmp_path / "build"
    code, d, _ = _sim(tmp_path, "verilator", 0.3, "w4a4", images=4, testbench="native",
                      extra=("--threads", "2", "--build-dir", str(build)))
    assert code == 0 and d["bit_exact"] and d["images"] == 4 and d["threads"] == 2
    (log,) = build.glob("native-*/build.log")
    assert "--threads 2" in log.read_text().splitlines()[0]


@pytest.mark.parametrize("args, field", [
    (["--images", "1"], "images"), (["--stall", "1.5"], "stall"),
    (["--simulator", "modelsim"], "simulator"), (["--testbench", "uvm"], "testbench"),
    (["--testbench", "native", "--simulator", "icarus"], "testbench"),
    (["--testbench", "native", "--offchip", "all", "--board", "zcu102", "--target-ii",
      TARGET_II], "testbench"),
    (["--threads", "-1"], "threads"), (["--threads", "65"], "threads"),
    (["--threads", "2", "--testbench", "cocotb", "--target-ii", TARGET_II], "threads"),
    (["--pgo", "--testbench", "cocotb", "--target-ii", TARGET_II], "pgo")])
def test_sim_bad_input_is_one_line(tmp_path, capsys, args, field):
    out = tmp_path / "bad"
    code = main(["sim", "--model", "vit-micro", "--out", str(out), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"hgpipe: error: {field}:") and "\n" not in err
    assert not out.exists() or not any(out.iterdir())
