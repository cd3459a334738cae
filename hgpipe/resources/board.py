"""Board budgets: one JSON file per board in ``boards/`` (see boards/README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import BoardError

BOARD_DIR = Path(__file__).resolve().parents[2] / "boards"
KINDS = ("lut", "ff", "dsp", "bram", "uram")
FAMILIES = ("xcup", "versal")


@dataclass(frozen=True)
class DdrBoard:
    """Off-chip memory the PL reaches through one AXI4 port: ``gbytes_per_s`` peak, of which
    ``usable_fraction`` is the accelerator's (the rest: the processor, refresh, bank
    conflicts); ``bytes`` reserved for it from ``base_address``; ``latency_ns`` from a
    read's address to its first data."""

    memory: str
    gbytes_per_s: float
    usable_fraction: float
    data_bits: int
    addr_bits: int
    base_address: int
    bytes: int
    latency_ns: float

    def bytes_per_image(self, ii: int, clock_mhz: float) -> float:
        """Bytes (written plus read) an image may move at ``ii`` cycles an image: the
        memory's usable share, and at most one word each way a cycle on the port."""
        seconds = ii / (clock_mhz * 1e6)
        return min(self.gbytes_per_s * 1e9 * self.usable_fraction * seconds,
                   2 * self.data_bits / 8 * ii)

    def latency_cycles(self, clock_mhz: float) -> int:
        return int(-(-self.latency_ns * clock_mhz // 1000))


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    family: str
    clock_mhz: float
    usable_fraction: float
    resources: dict[str, int]
    description: str = ""
    ddr: DdrBoard | None = None

    def budget(self) -> dict[str, int]:
        """What the planner may use, in the resource model's units: the usable fraction of
        every resource, LUTs and FFs less the model's measured shortfall at full size
        (``full_size_margin``), so that a plan within it is within the usable fraction by
        synthesis too."""
        from .model import full_size_margin
        m = full_size_margin()
        return {k: int(self.resources[k] * self.usable_fraction / m.get(k, 1.0)) for k in KINDS}

    def usable(self) -> dict[str, int]:
        """The usable fraction of every resource (by synthesis's count)."""
        return {k: int(self.resources[k] * self.usable_fraction) for k in KINDS}

    @property
    def rom_in_uram(self) -> bool:
        """Whether URAM can hold a ROM: Versal URAM takes initial contents from the
        bitstream, UltraScale+ URAM powers up zeroed."""
        return self.family == "versal"

    @property
    def open_synthesis(self) -> bool:
        """Whether Yosys supports the family (the resource model was calibrated on it)."""
        return self.family == "xcup"


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARD_DIR.glob("*.json"))


def load_board(name_or_path: str) -> Board:
    """A board by name (``boards/NAME.json``) or by the path of a JSON file."""
    p = Path(name_or_path)
    if p.suffix != ".json":
        p = BOARD_DIR / f"{name_or_path}.json"
        if not p.is_file():
            raise BoardError(f"board: {name_or_path!r}: expected one of "
                             f"{', '.join(board_names())} or a .json file")
    if not p.is_file():
        raise BoardError(f"board: {str(p)!r}: no such file")
    try:
        d = json.loads(p.read_bytes().decode("utf-8"))
    except json.JSONDecodeError as e:
        raise BoardError(f"board {p.name}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError as e:
        raise BoardError(f"board {p.name}: not UTF-8 text (byte {e.start}): expected JSON"
                         ) from None
    except RecursionError:
        raise BoardError(f"board {p.name}: nested too deeply: expected a board object"
                         ) from None
    except OSError as e:
        raise BoardError(f"board {p.name}: cannot read it ({e.strerror})") from None
    if not isinstance(d, dict):
        raise BoardError(f"board {p.name}: expected a JSON object")
    return _parse(d, p)


def _keys(d: dict, where: str, section: str, required: tuple, optional: tuple = ()) -> None:
    """Every key of ``d`` known, every required one there (``section``: its name in the
    file, for the message)."""
    at = f"{section}." if section else ""
    for k in d:
        if k not in required + optional:
            raise BoardError(f"{where}: {at}{k}: unknown key, expected one of "
                             f"{', '.join(sorted(required + optional))}")
    for k in required:
        if k not in d:
            raise BoardError(f"{where}: {section + ': ' if section else ''}missing key {k!r}")


def _parse(d: dict, p: Path) -> Board:
    where = f"board {p.name}"
    _keys(d, where, "", ("name", "part", "family", "clock_mhz", "usable_fraction",
                         "resources"), ("description", "ddr"))
    if d["name"] != p.stem:
        raise BoardError(f"{where}: name={d['name']!r}: expected the file name {p.stem!r}")
    if d["family"] not in FAMILIES:
        raise BoardError(f"{where}: family={d['family']!r}: expected one of {', '.join(FAMILIES)}")
    clock = d["clock_mhz"]
    if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not 0 < clock <= 2000:
        raise BoardError(f"{where}: clock_mhz={clock!r}: expected a number in (0, 2000]")
    frac = d["usable_fraction"]
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
        raise BoardError(f"{where}: usable_fraction={frac!r}: expected a number in (0, 1]")
    res = d["resources"]
    if not isinstance(res, dict):
        raise BoardError(f"{where}: resources={res!r}: expected an object with {', '.join(KINDS)}")
    for k in res:
        if k not in KINDS:
            raise BoardError(f"{where}: resources.{k}: unknown resource, expected one of "
                             f"{', '.join(KINDS)}")
    for k in KINDS:
        v = res.get(k)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise BoardError(f"{where}: resources.{k}={v!r}: expected a count >= 0")
    if res["lut"] == 0:
        raise BoardError(f"{where}: resources.lut=0: expected a count > 0")
    return Board(name=d["name"], part=str(d["part"]), family=d["family"],
                 clock_mhz=float(clock), usable_fraction=float(frac),
                 resources={k: res[k] for k in KINDS}, description=str(d.get("description", "")),
                 ddr=_ddr(d["ddr"], where) if "ddr" in d else None)


DDR_KEYS = {"memory": str, "gbytes_per_s": float, "usable_fraction": float, "data_bits": int,
            "addr_bits": int, "base_address": int, "bytes": int, "latency_ns": float}


def _ddr(d, where: str) -> DdrBoard:
    if not isinstance(d, dict):
        raise BoardError(f"{where}: ddr={d!r}: expected an object with "
                         f"{', '.join(DDR_KEYS)}")
    _keys(d, where, "ddr", tuple(DDR_KEYS))
    out = {}
    for k, kind in DDR_KEYS.items():
        v = d[k]
        if kind is str:
            out[k] = str(v)
            continue
        ok = not isinstance(v, bool) and isinstance(v, (int, float) if kind is float else int)
        if not ok or v < 0 or (v == 0 and k != "base_address"):
            raise BoardError(f"{where}: ddr.{k}={v!r}: expected a positive "
                             f"{'number' if kind is float else 'integer'}")
        out[k] = kind(v)
    if out["usable_fraction"] > 1:
        raise BoardError(f"{where}: ddr.usable_fraction={d['usable_fraction']!r}: expected a "
                         f"number in (0, 1]")
    w = out["data_bits"]
    if w < 32 or w & (w - 1) or w > 1024:
        raise BoardError(f"{where}: ddr.data_bits={w}: expected a power of two in [32, 1024]")
    if out["base_address"] % 4096 or out["base_address"] + out["bytes"] > 1 << out["addr_bits"]:
        raise BoardError(f"{where}: ddr.base_address={out['base_address']}: expected a "
                         f"multiple of 4096 with the {out['bytes']} bytes inside "
                         f"{out['addr_bits']}-bit addresses")
    return DdrBoard(**out)
