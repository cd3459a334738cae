"""AXI4 memory-mapped interfaces: the signature, the top level's flat port names, and a
round-robin arbiter that puts several managers on one port.

Each of the five channels is an ``amaranth.lib.stream`` interface (AXI's valid/ready rule
is the stream rule) whose payload is a struct of the channel's fields. Bursts are INCR,
every byte strobed; ``cache``, ``prot``, ``lock`` and ``qos`` are constants at the top.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Array, Cat, Const, Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


@dataclass(frozen=True)
class AxiParams:
    addr_bits: int = 32
    data_bits: int = 128
    id_bits: int = 1

    @property
    def size(self) -> int:
        """AxSIZE: log2 of the bytes of a word."""
        return (self.data_bits // 8).bit_length() - 1


def _address(p: AxiParams) -> data.StructLayout:
    return data.StructLayout({"id": p.id_bits, "addr": p.addr_bits, "len": 8, "size": 3,
                              "burst": 2})


class AxiSignature(wiring.Signature):
    """The manager's view: ``aw``, ``w``, ``ar`` out; ``b``, ``r`` in."""

    def __init__(self, p: AxiParams):
        self.params = p
        super().__init__({
            "aw": Out(stream.Signature(_address(p))),
            "w": Out(stream.Signature(data.StructLayout(
                {"data": p.data_bits, "strb": p.data_bits // 8, "last": 1}))),
            "b": In(stream.Signature(data.StructLayout({"id": p.id_bits, "resp": 2}))),
            "ar": Out(stream.Signature(_address(p))),
            "r": In(stream.Signature(data.StructLayout(
                {"id": p.id_bits, "data": p.data_bits, "resp": 2, "last": 1}))),
        })


# (top-level port suffix, channel, field or valid/ready, direction seen by the manager)
TOP_PORTS = [(f"{ch}{f}", ch, f, d) for ch, d, fields in (
    ("aw", "o", ("id", "addr", "len", "size", "burst")),
    ("w", "o", ("data", "strb", "last")),
    ("b", "i", ("id", "resp")),
    ("ar", "o", ("id", "addr", "len", "size", "burst")),
    ("r", "i", ("id", "data", "resp", "last"))) for f in (*fields, "valid", "ready")]
# constant outputs of the top-level port: normal non-cacheable bufferable, unprivileged
TOP_CONSTANTS = {"awcache": (4, 0b0011), "arcache": (4, 0b0011), "awprot": (3, 0),
                 "arprot": (3, 0), "awlock": (1, 0), "arlock": (1, 0), "awqos": (4, 0),
                 "arqos": (4, 0)}


def top_members(p: AxiParams, prefix: str) -> dict:
    """Flat ``<prefix>_awaddr`` ... members of a top-level manager port (Xilinx naming, as
    Vivado's interface inference and cocotbext-axi's ``from_prefix`` expect)."""
    layouts = {m: AxiSignature(p).members[m].signature.members["payload"].shape
               for m in ("aw", "w", "b", "ar", "r")}
    out = {}
    for name, ch, f, d in TOP_PORTS:
        width = 1 if f in ("valid", "ready") else Shape.cast(layouts[ch][f].shape).width
        manager_drives = (d == "o") != (f == "ready")
        out[f"{prefix}_{name}"] = Out(width) if manager_drives else In(width)
    for name, (width, _) in TOP_CONSTANTS.items():
        out[f"{prefix}_{name}"] = Out(width)
    return out


def connect_top(m: Module, top, prefix: str, bus) -> None:
    """Drive the flat top-level port ``prefix`` from (and to) the manager interface ``bus``."""
    for name, ch, f, d in TOP_PORTS:
        port = getattr(top, f"{prefix}_{name}")
        s = getattr(bus, ch)
        inner = getattr(s, f) if f in ("valid", "ready") else getattr(s.payload, f)
        if (d == "o") != (f == "ready"):
            m.d.comb += port.eq(inner)
        else:
            m.d.comb += inner.eq(port)
    for name, (_, value) in TOP_CONSTANTS.items():
        m.d.comb += getattr(top, f"{prefix}_{name}").eq(value)


def arbiter_params(n: int, p: AxiParams) -> AxiParams:
    """The port of an ``AxiArbiter`` of ``n`` managers: their index as its ID."""
    return AxiParams(p.addr_bits, p.data_bits, max(1, (n - 1).bit_length()))


def _pick(m: Module, req: Signal, last: Signal, n: int, name: str) -> Signal:
    """Round-robin: the lowest requester above ``last``, else the lowest requester."""
    pick = Signal(range(n), name=f"{name}_pick")
    above = Signal(n, name=f"{name}_above")
    m.d.comb += above.eq(req & ~((Const(2, n + 1) << last) - 1)[:n])
    with m.If(above.any()):
        for k in reversed(range(n)):
            with m.If(above[k]):
                m.d.comb += pick.eq(k)
    with m.Else():
        for k in reversed(range(n)):
            with m.If(req[k]):
                m.d.comb += pick.eq(k)
    return pick


class AxiArbiter(wiring.Component):
    """``n`` managers (``s0`` ...) onto one port ``m``, whose ID is the manager's index.

    Writes: a granted manager's address, then its whole burst of data (to WLAST), then the
    next grant, round robin; so write data is in address order, as AXI4 requires. Reads:
    addresses round robin. Responses (B, R) go back by ID. A manager must send a burst's
    data once its address is taken (``DdrFifo`` holds the burst before asking).
    """

    def __init__(self, n: int, p: AxiParams):
        self.n, self.p = n, p
        self.out = arbiter_params(n, p)
        super().__init__({**{f"s{k}": In(AxiSignature(p)) for k in range(n)},
                          "m": Out(AxiSignature(self.out))})

    def managers(self):
        return [getattr(self, f"s{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        ss, o = self.managers(), self.m
        self._address(m, [s.aw for s in ss], o.aw, "aw", data_of=[s.w for s in ss], w=o.w)
        self._address(m, [s.ar for s in ss], o.ar, "ar")
        for resp, out in (("b", o.b), ("r", o.r)):
            chans = [getattr(s, resp) for s in ss]
            ready = Signal(name=f"{resp}_ready")
            for k, c in enumerate(chans):
                sel = out.payload.id == k
                m.d.comb += [c.valid.eq(out.valid & sel), *_fields(c.payload, out.payload)]
                with m.If(sel):
                    m.d.comb += ready.eq(c.ready)
            m.d.comb += out.ready.eq(ready)
        return m

    def _address(self, m, chans, out, tag, data_of=None, w=None):
        """Round-robin grant of an address channel; with ``data_of``, hold the grant for
        the burst's write data."""
        n = self.n
        req = Signal(n, name=f"{tag}_req")
        m.d.comb += req.eq(Cat(*[c.valid for c in chans]))
        last = Signal(range(n), name=f"{tag}_last", init=n - 1)
        grant = Signal(range(n), name=f"{tag}_grant")
        busy = Signal(name=f"{tag}_busy")        # an address granted, not yet passed
        wdata = Signal(name=f"{tag}_wdata")      # passing the granted burst's data
        pick = _pick(m, req, last, n, tag)
        with m.If(~busy & ~wdata & req.any()):
            m.d.sync += [grant.eq(pick), busy.eq(1)]
        for k, c in enumerate(chans):
            mine = busy & (grant == k)
            m.d.comb += c.ready.eq(mine & out.ready)
            with m.If(grant == k):
                m.d.comb += [*_fields(out.payload, c.payload), out.payload.id.eq(k)]
        m.d.comb += out.valid.eq(busy & _index(chans, grant, "valid"))
        with m.If(out.valid & out.ready):
            m.d.sync += [busy.eq(0), last.eq(grant)]
            if data_of is not None:
                m.d.sync += wdata.eq(1)
        if data_of is None:
            return
        for k, c in enumerate(data_of):
            m.d.comb += c.ready.eq(wdata & (grant == k) & w.ready)
            with m.If(grant == k):
                m.d.comb += w.payload.eq(c.payload)
        m.d.comb += w.valid.eq(wdata & _index(data_of, grant, "valid"))
        with m.If(w.valid & w.ready & w.payload.last):
            m.d.sync += wdata.eq(0)


def _fields(dst, src):
    """Copy every field but the ID (the two sides' IDs differ in width)."""
    return [getattr(dst, f).eq(getattr(src, f)) for f, _ in src.shape() if f != "id"]


def _index(chans, sel, attr):
    return Array(getattr(c, attr) for c in chans)[sel]
