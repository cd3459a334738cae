"""The status registers' map (``hgpipe.rtl.status`` builds them): the contract the RTL, the
testbenches and ``plan.json`` (for a host driver) share."""

from __future__ import annotations

STATUS_ID = 0x48475031


class Regs:
    """Byte offsets of the registers."""

    ID = 0x00
    COUNTERS = 0x04
    CONTROL = 0x08
    SNAPSHOTS = 0x0C
    CYCLE = 0x10
    IMAGES = 0x14
    BUSY = 0x20

    @staticmethod
    def busy(k: int) -> int:
        return Regs.BUSY + 4 * k


def addr_bits(counters: int) -> int:
    """Byte-address width of the register file: at least a 4 KiB page."""
    return max(12, (Regs.busy(counters) - 1).bit_length())


def description(counters) -> dict:
    """The map as ``plan.json`` gives it to a host driver: the interface, the ID, the fixed
    registers and every stage's BUSY address (``counters``: the stage names in order)."""
    return {"interface": "AXI4-Lite s_axil", "id": STATUS_ID,
            "registers": {"id": Regs.ID, "counters": Regs.COUNTERS, "control": Regs.CONTROL,
                          "snapshots": Regs.SNAPSHOTS, "cycle": Regs.CYCLE,
                          "images": Regs.IMAGES},
            "busy": {n: Regs.busy(k) for k, n in enumerate(counters)}}
