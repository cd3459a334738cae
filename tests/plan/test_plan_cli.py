"""``hgpipe plan``: files and keys, determinism, one-line errors that write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hgpipe.cli import main
from hgpipe.resources.model import full_size_margin

KEYS = {"model", "bits", "board", "clock_mhz", "ii_cycles", "latency_cycles", "fps", "gops",
        "fits", "resources", "budget", "buffers", "stages"}


def test_plan_writes_report_plots_and_is_deterministic(tmp_path, capsys):
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["plan", "--model", "vit-micro", "--bits", "w4a4", "--board", "zcu102",
                     "--target-ii", "64", "--out", str(out), "--quiet"]) == 0
        outs.append(out)
    d = json.loads((outs[0] / "plan.json").read_text())
    assert KEYS <= set(d)
    assert set(d["resources"]) == {"lut", "ff", "dsp", "bram", "uram"}
    assert {"coarse_bits", "all_coarse_bits"} <= set(d["buffers"])
    assert d["ii_cycles"] <= 64 and d["board"] == "zcu102" and d["bits"] == "w4a4"
    s = d["stages"][0]
    assert {"name", "kind", "cycles", "busy", "folding", "resources"} <= set(s)
    files = sorted(p.name for p in outs[0].iterdir())
    assert files == [".hgpipe-manifest.json", "cycles.png", "plan.json", "report.md",
                     "resources.png", "roofline.png", "timing.png"]
    assert json.loads((outs[0] / files[0]).read_text())["files"] == files[1:]
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    report = (outs[0] / "report.md").read_text()
    assert "synth_xilinx -family xcup" in report and "II (cycles/image)" in report
    assert "II (cycles/image)" in capsys.readouterr().out


def test_vck190_report_says_the_mapping_is_ultrascale(tmp_path):
    assert main(["plan", "--model", "vit-micro", "--board", "vck190", "--out",
                 str(tmp_path), "--quiet"]) == 0
    assert "no open synthesis supports Versal" in (tmp_path / "report.md").read_text()


def test_usable_fraction_sets_the_budget(tmp_path):
    """--usable-fraction overrides the board file's share of every resource: the report and
    plan.json state the budget it gives."""
    assert main(["plan", "--model", "vit-micro", "--board", "zcu102", "--target-ii", "64",
                 "--usable-fraction", "0.5", "--out", str(tmp_path), "--quiet"]) == 0
    d = json.loads((tmp_path / "plan.json").read_text())
    assert d["usable"]["lut"] == int(d["device"]["lut"] * 0.5)
    assert d["budget"]["lut"] == int(d["device"]["lut"] * 0.5 / full_size_margin()["lut"])
    assert "50% of the device" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--board", "nope"], "board: 'nope'"),
    (["--target-ii", "1"], "target II 1 cycles cannot be met"),
    (["--target-ii", "0"], "target_ii=0"),
    (["--tp", "17"], "tp=17: expected 1 to 16"),
    (["--tp", "0"], "tp: 0: expected a positive token parallelism"),
    (["--tp", "-2"], "tp: -2: expected a positive token parallelism"),
    (["--target-fps", "nan"], "target-fps: nan: expected images/s >= 0.001"),
    (["--target-fps", "1e-300"], "target-fps: 1e-300: expected images/s >= 0.001"),
    (["--seed", "-1"], "seed: -1: expected an integer >= 0"),
    (["--bits", "w9"], "bits"),
    (["--usable-fraction", "1.5"], "usable-fraction: 1.5: expected a number in (0, 1]"),
    (["--offchip", "some"], "offchip='some': expected one of auto, none, all"),
])
def test_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = main(["plan", "--model", "vit-micro", "--out", str(out), "--quiet"] + args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists() or not any(out.iterdir())


def test_offchip_all_reports_the_ddr_streams(tmp_path):
    """The residual's ring and the head's weights in DDR: plan.json lists the regions and
    their traffic, the report has its section, the resources plot its bandwidth bar."""
    assert main(["plan", "--model", "vit-micro", "--board", "zcu102", "--target-ii", "512",
                 "--offchip", "all", "--out", str(tmp_path), "--quiet"]) == 0
    d = json.loads((tmp_path / "plan.json").read_text())["ddr"]
    assert d["offchip"] == "all" and {r["name"] for r in d["regions"]} == {
        "head:weights", "tokens->blocks.0.add1"}
    assert d["bytes_per_image"] == sum(r["bytes_per_image"] for r in d["regions"]) > 0
    report = (tmp_path / "report.md").read_text()
    assert "## Off-chip memory" in report and "| head:weights | weights | 0x40000000 |" in report


def test_offchip_all_needs_a_board_with_ddr(tmp_path, capsys):
    board = json.loads((Path(__file__).parents[2] / "boards" / "zcu102.json").read_text())
    board.pop("ddr")
    board["name"] = "bare"
    (tmp_path / "bare.json").write_text(json.dumps(board))
    out = tmp_path / "out"
    code = main(["plan", "--model", "vit-micro", "--board", str(tmp_path / "bare.json"),
                 "--offchip", "all", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "offchip=all: board bare has no ddr section" in err
    assert err.count("\n") == 1 and not out.exists()


def test_a_ddr_range_too_small_is_named_in_the_no_fit_message(tmp_path, capsys):
    board = json.loads((Path(__file__).parents[2] / "boards" / "zcu102.json").read_text())
    board["ddr"]["bytes"] = 64
    board["name"] = "smallddr"
    (tmp_path / "smallddr.json").write_text(json.dumps(board))
    code = main(["plan", "--model", "vit-micro", "--board", str(tmp_path / "smallddr.json"),
                 "--target-ii", "512", "--offchip", "all", "--out", str(tmp_path / "o"),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "DDR regions" in err and "> the board's 64" in err, err
