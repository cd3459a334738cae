"""Board files: the shipped ones load; malformed ones fail with one line naming the key."""

from __future__ import annotations

import json

import pytest

from hgpipe.errors import BoardError
from hgpipe.resources.board import board_names, load_board
from hgpipe.resources.model import full_size_margin


def test_shipped_boards_have_the_device_counts():
    assert {"zcu102", "vck190"} <= set(board_names())
    z, v = load_board("zcu102"), load_board("vck190")
    assert z.resources == {"lut": 274080, "ff": 548160, "dsp": 2520, "bram": 912, "uram": 0}
    assert v.resources == {"lut": 899840, "ff": 1799680, "dsp": 1968, "bram": 967, "uram": 463}
    assert v.clock_mhz == 425 and v.family == "versal" and z.family == "xcup"
    assert v.usable()["lut"] == int(899840 * v.usable_fraction)
    # the planner's budget: the usable share less the model's measured full-size shortfall
    m = full_size_margin()
    assert m["lut"] > 1 and m["ff"] > 1
    assert v.budget()["lut"] == int(899840 * v.usable_fraction / m["lut"])
    assert v.budget()["dsp"] == v.usable()["dsp"]
    # DDR: the smaller of the memory's usable share and a 128-bit word each way a cycle
    assert z.ddr.data_bits == 128 and z.ddr.gbytes_per_s == 19.2
    assert z.ddr.bytes_per_image(300_000, 300) == pytest.approx(19.2e9 * 0.5 * 1e-3)
    assert z.ddr.bytes_per_image(100, 300) == 2 * 16 * 100
    assert z.ddr.latency_cycles(300) == 60


GOOD = json.loads((load_board.__globals__["BOARD_DIR"] / "zcu102.json").read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("clock_mhz"), "missing key 'clock_mhz'"),
    (lambda d: d.update(family="stratix"), "family='stratix'"),
    (lambda d: d["resources"].update(lut=-5), "resources.lut=-5"),
    (lambda d: d["resources"].update(lutram=5), "resources.lutram"),
    (lambda d: d.update(usable_fraction=1.5), "usable_fraction=1.5"),
    (lambda d: d.update(name="other"), "name='other'"),
    (lambda d: d.update(speed=3), "speed: unknown key"),
    (lambda d: d["ddr"].update(data_bits=100), "ddr.data_bits=100"),
    (lambda d: d["ddr"].pop("latency_ns"), "ddr: missing key 'latency_ns'"),
    (lambda d: d["ddr"].update(usable_fraction=2), "ddr.usable_fraction=2"),
    (lambda d: d["ddr"].update(base_address=100), "ddr.base_address=100"),
    (lambda d: d["ddr"].update(gbytes_per_s="fast"), "ddr.gbytes_per_s='fast'"),
    (lambda d: d["ddr"].update(ecc=True), "ddr.ecc"),
])
def test_malformed_board_is_one_line(tmp_path, edit, message):
    d = json.loads(json.dumps(GOOD))
    edit(d)
    p = tmp_path / "zcu102.json"
    p.write_text(json.dumps(d))
    with pytest.raises(BoardError) as e:
        load_board(str(p))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unknown_board_and_bad_json(tmp_path):
    with pytest.raises(BoardError, match="'nope'.*expected one of .*vck190"):
        load_board("nope")
    p = tmp_path / "b.json"
    p.write_text("{not json")
    with pytest.raises(BoardError, match="not valid JSON"):
        load_board(str(p))
