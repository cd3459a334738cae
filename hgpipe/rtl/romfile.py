"""ROM contents as data: a part converted on its own (``hgpipe.rtl.separate``) leaves its
ROMs' words out of its Verilog. Each ROM is then an instance of a generic module
(``memtext.rom_file_verilog``) that loads ``$readmemh`` from a file: its part's instance name
and its slot number within the part. Parts that differ only by their ROM contents (the
encoder blocks' linear stages) then share one module.

This module holds the mechanism's names and state: the slot markers a part's Verilog
carries until its instance is known, the per-part slot collector, the macros that tell a
part where its files are, and the files' text.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field

ROM_FILE_MODULE = "hgpipe_romf"
_MARKER = "@hgpipe_rom_slot_{}@"
MARKER_RE = r'"@hgpipe_rom_slot_(\d+)@"'


def slot_marker(k: int) -> str:
    return _MARKER.format(k)


@dataclass
class RomSlots:
    """The ROMs of one part, in elaboration order: (width, words) each, and the generic
    modules (style, latency) they instantiate."""
    roms: list = field(default_factory=list)
    modules: set = field(default_factory=set)


_slots: ContextVar[RomSlots | None] = ContextVar("hgpipe_rom_slots", default=None)


def current_slots() -> RomSlots | None:
    """The slots of the part being elaborated inside ``rom_slots``, else None."""
    return _slots.get()


@contextlib.contextmanager
def rom_slots():
    """Elaborate ROMs inside the block as file-loaded slots (collected in the result)."""
    slots = RomSlots()
    token = _slots.set(slots)
    try:
        yield slots
    finally:
        _slots.reset(token)


def rom_file_module(style: str | None, latency: int) -> str:
    return ROM_FILE_MODULE + (f"_{style}" if style else "") + ("_r2" if latency == 2 else "")


ROM_MACROS = """\
// ROM files: HGPIPE_ROM_DIR + part instance + "." + slot + ".hex" (hgpipe.rtl.romfile)
`ifndef HGPIPE_ROM_DIR
`define HGPIPE_ROM_DIR "roms/"
`endif
`ifdef SYNTHESIS
`define HGPIPE_ROMS(part) #(.ROMS({`HGPIPE_ROM_DIR, part}))
`else
`define HGPIPE_ROMS(part)
`endif
"""


def rom_file_text(width: int, words: list[int]) -> str:
    """A ROM's contents as ``$readmemh`` reads them: one hex word a line."""
    digits = (width + 3) // 4
    return "".join(f"{w:0{digits}x}\n" for w in words)
