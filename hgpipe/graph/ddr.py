"""The contract of streams kept in off-chip memory (DDR), behind AXI4.

A FIFO edge too large for the chip can keep its beats in off-chip memory: they are packed
into AXI words (``pack`` beats a word, or a wide beat ``split`` over several words; an
image always starts a new word), written in bursts of ``burst`` words (the image's last
burst is shorter), read back in the same order once written, and unpacked. Bursts sit in
a ring of ``ring_bursts`` slots, each aligned so that no burst crosses a 4 KB boundary.
A ``readonly`` layout is a preloaded image read once an image (the words of a weight ROM
that is read in address order, once an image: the classifier head's), its region one
image long (``image`` gives its bytes). The RTL (``hgpipe.rtl.ddr``), the planner's
placement and traffic, and the testbench's memory model all read this one layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

AXI_DATA_BITS = 128     # a Zynq UltraScale+ HP port, a Versal NoC NMU
BURST_WORDS = 16        # 256-byte bursts at 128 bits
PAGE_BYTES = 4096       # an AXI burst may not cross a 4 KB boundary


@dataclass(frozen=True)
class DdrLayout:
    """``beats`` per image of ``width`` bits; the ring holds at least ``depth`` beats."""

    width: int
    beats: int
    depth: int
    data_bits: int = AXI_DATA_BITS
    burst: int = BURST_WORDS
    readonly: bool = False

    def __post_init__(self) -> None:
        for k in ("width", "beats", "depth", "burst"):
            if getattr(self, k) < 1:
                raise ValueError(f"ddr layout: {k}={getattr(self, k)}: expected >= 1")
        d = self.data_bits
        if d < 32 or d & (d - 1):
            raise ValueError(f"ddr layout: data_bits={d}: expected a power of two >= 32")
        if self.burst > 256 or PAGE_BYTES % (self.burst * d // 8):
            raise ValueError(f"ddr layout: burst={self.burst} words of {d} bits: expected at "
                             f"most 256 words whose bytes divide {PAGE_BYTES}")

    @property
    def pack(self) -> int:
        """Beats per AXI word (1 when a beat is as wide as a word or wider)."""
        return max(1, self.data_bits // self.width)

    @property
    def split(self) -> int:
        """AXI words per beat (1 unless a beat is wider than a word)."""
        return ceil(self.width / self.data_bits)

    @property
    def word_bytes(self) -> int:
        return self.data_bits // 8

    @property
    def words_per_image(self) -> int:
        return ceil(self.beats / self.pack) * self.split

    @property
    def bursts_per_image(self) -> int:
        return ceil(self.words_per_image / self.burst)

    @property
    def last_burst(self) -> int:
        """Words in an image's last burst."""
        return self.words_per_image - (self.bursts_per_image - 1) * self.burst

    @property
    def ring_bursts(self) -> int:
        """Burst slots of the ring: ``depth`` beats, plus the short last burst of every
        image they span, plus two in flight (read-only: one image)."""
        if self.readonly:
            return self.bursts_per_image
        words = ceil(self.depth / self.pack) * self.split
        return ceil(words / self.burst) + ceil(self.depth / self.beats) + 2

    @property
    def ring_bytes(self) -> int:
        return self.ring_bursts * self.burst * self.word_bytes

    @property
    def region_bytes(self) -> int:
        """The ring's address space, whole 4 KB pages."""
        return ceil(self.ring_bytes / PAGE_BYTES) * PAGE_BYTES

    @property
    def bytes_per_image(self) -> int:
        """Bytes written, and again read, per image."""
        return self.words_per_image * self.word_bytes

    @property
    def buffer_words(self) -> int:
        """On-chip words of each of the write and read buffers."""
        return 2 * self.burst

    @property
    def capacity(self) -> int:
        """Beats the FIFO holds: the ring (less the slots a short burst leaves empty) and
        its on-chip buffers."""
        slots = self.ring_bursts - ceil(self.depth / self.beats) - 2
        return (slots * self.burst + 2 * self.buffer_words) // self.split * self.pack

    def image(self, values) -> bytes:
        """The region's bytes holding one image of ``values`` (unsigned ``width``-bit
        beats), as the RTL unpacks them: words little-endian, beat ``j`` of a word at bits
        ``j * width``, a wide beat's ``s``-th word its bits ``s * data_bits`` up."""
        values = [int(v) for v in values]
        if len(values) != self.beats or any(not 0 <= v < 1 << self.width for v in values):
            raise ValueError(f"ddr image: expected {self.beats} values of {self.width} bits")
        words = []
        if self.split == 1:
            for k in range(0, self.beats, self.pack):
                words.append(sum(v << (j * self.width)
                                 for j, v in enumerate(values[k:k + self.pack])))
        else:
            mask = (1 << self.data_bits) - 1
            words = [(v >> (s * self.data_bits)) & mask for v in values
                     for s in range(self.split)]
        out = b"".join(w.to_bytes(self.word_bytes, "little") for w in words)
        return out + bytes(self.ring_bytes - len(out))
