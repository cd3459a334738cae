"""cocotb AXI4-Lite manager for the status registers (``hgpipe.rtl.status``), and the
reader that fetches a snapshot after each image.

Signals are driven on the falling edge and sampled after ``ReadOnly()``, as the stream
driver does; one read is an address handshake, then a data handshake (three cycles).
"""

from __future__ import annotations

from cocotb.triggers import Event, FallingEdge, ReadOnly

from hgpipe.rtl.status import Regs


class AxiLite:
    """Reads and writes on ``<prefix>_*``; idle (no valid, no ready) between transfers."""

    def __init__(self, dut, prefix: str = "s_axil"):
        self.dut = dut
        self.s = lambda name: getattr(dut, f"{prefix}_{name}")
        for name in ("arvalid", "rready", "awvalid", "wvalid", "bready"):
            self.s(name).value = 0

    async def _handshake(self, valid: str, ready: str) -> None:
        """Wait (in read-only) for ``ready`` while ``valid`` is up; it transfers at the
        next rising edge."""
        while True:
            await ReadOnly()
            if int(self.s(ready).value) and int(self.s(valid).value):
                return
            await FallingEdge(self.dut.clk)

    async def read(self, addr: int) -> tuple[int, int]:
        """(data, resp) of the word at byte address ``addr``."""
        await FallingEdge(self.dut.clk)
        self.s("araddr").value = addr
        self.s("arvalid").value = 1
        await self._handshake("arvalid", "arready")
        await FallingEdge(self.dut.clk)
        self.s("arvalid").value = 0
        self.s("rready").value = 1
        await self._handshake("rvalid", "rready")
        data, resp = int(self.s("rdata").value), int(self.s("rresp").value)
        await FallingEdge(self.dut.clk)
        self.s("rready").value = 0
        return data, resp

    async def write(self, addr: int, value: int) -> int:
        """The write response of ``value`` to byte address ``addr``."""
        await FallingEdge(self.dut.clk)
        for name, v in (("awaddr", addr), ("wdata", value), ("wstrb", 0xF), ("awvalid", 1),
                        ("wvalid", 1)):
            self.s(name).value = v
        await self._handshake("awvalid", "awready")
        await FallingEdge(self.dut.clk)
        self.s("awvalid").value = 0
        self.s("wvalid").value = 0
        self.s("bready").value = 1
        await self._handshake("bvalid", "bready")
        resp = int(self.s("bresp").value)
        await FallingEdge(self.dut.clk)
        self.s("bready").value = 0
        return resp


class SnapshotReader:
    """After each ``request()`` (an image ended), reads the newest snapshot: SNAPSHOTS,
    CYCLE, IMAGES, every BUSY counter, SNAPSHOTS again; kept only if no newer snapshot
    came in between (``records``: dicts of ``cycle``, ``images``, ``busy``)."""

    def __init__(self, bus: AxiLite, stages: list[str]):
        self.bus, self.stages = bus, stages
        self.records: list[dict] = []
        self.pending = Event()
        self.idle = Event()
        self.idle.set()

    def request(self) -> None:
        self.pending.set()
        self.idle.clear()

    async def run(self) -> None:
        while True:
            await self.pending.wait()
            self.pending.clear()
            first = (await self.bus.read(Regs.SNAPSHOTS))[0]
            cycle = (await self.bus.read(Regs.CYCLE))[0]
            images = (await self.bus.read(Regs.IMAGES))[0]
            busy = {s: (await self.bus.read(Regs.busy(k)))[0]
                    for k, s in enumerate(self.stages)}
            if (await self.bus.read(Regs.SNAPSHOTS))[0] == first:
                self.records.append({"cycle": cycle, "images": images, "busy": busy})
            if not self.pending.is_set():
                self.idle.set()
