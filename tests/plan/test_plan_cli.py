"""``hgpipe plan``: files and keys, determinism, one-line errors that write nothing."""

from __future__ import annotations

import json

import pytest

from hgpipe.cli import main

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
    assert files == ["cycles.png", "plan.json", "report.md", "resources.png", "roofline.png",
                     "timing.png"]
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
    assert d["budget"]["lut"] == int(d["device"]["lut"] * 0.5)
    assert "50% of the device" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--board", "nope"], "board: 'nope'"),
    (["--target-ii", "1"], "target II 1 cycles cannot be met"),
    (["--target-ii", "0"], "target_ii=0"),
    (["--tp", "3"], "tp=3"),
    (["--bits", "w9"], "bits"),
    (["--usable-fraction", "1.5"], "usable-fraction: 1.5: expected a number in (0, 1]"),
])
def test_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = main(["plan", "--model", "vit-micro", "--out", str(out), "--quiet"] + args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists() or not any(out.iterdir())
