"""Stream plumbing shared by every stage: lane packing and the one-register pipeline step.

Streams are ``amaranth.lib.stream`` interfaces (valid/ready, AXI-Stream transfer rule)
whose payload is ``lanes`` elements of ``bits`` bits packed LSB first.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import stream

from ..graph.intrange import IntRange


def shape_of(r: IntRange) -> Shape:
    return signed(r.bits) if r.signed else unsigned(r.bits)


def stream_of(lanes: int, r: IntRange) -> stream.Signature:
    return stream.Signature(lanes * r.bits)


def lane(payload: Value, e: int, r: IntRange) -> Value:
    """Element ``e`` of a packed payload, with the range's signedness."""
    v = payload[e * r.bits:(e + 1) * r.bits]
    return v.as_signed() if r.signed else v


def pack(m, payload: Value, values: list[Value], r: IntRange, domain: str = "comb") -> None:
    """Drive the lanes of ``payload`` from ``values`` (truncated to the lane width)."""
    for e, v in enumerate(values):
        m.d[domain] += payload[e * r.bits:(e + 1) * r.bits].eq(v)


def pack_word(values, bits: int) -> int:
    """Constant lanes packed into one memory word, as ``lane`` reads them back."""
    mask = (1 << bits) - 1
    word = 0
    for e, v in enumerate(values):
        word |= (int(v) & mask) << (e * bits)
    return word


def payload_register(m: Module, s) -> Signal:
    """A register without reset that drives stream ``s``'s payload: the payload only
    counts with ``s.valid``, which resets.

    Datapath registers without reset leave the reset net's fanout to the control path in
    synthesis, and Verilator a branch less per register per cycle (on the whole
    DeiT-tiny, two threads: the MAC arrays' took it from 2,767 to 4,018 cycles/s, the
    other stages' from 2,804 to 3,394 on a slower host). A register that holds a DSP's
    operand or product keeps its reset (``wide_product``)."""
    r = Signal(len(s.payload), name=f"{s.payload.name}_r", reset_less=True)
    m.d.comb += s.payload.eq(r)
    return r


def next_bank(b, n: int):
    return Mux(b == n - 1, 0, b + 1)


def count(m: Module, en, *counters: tuple[Signal, int]):
    """Step nested counters (outermost first) when ``en``; return the signal that is high
    when the innermost step wraps all of them."""
    carry = en
    for sig, n in reversed(counters):
        wrap = Signal(name=f"{sig.name}_wrap")
        m.d.comb += wrap.eq(carry & (sig == n - 1))
        with m.If(carry):
            m.d.sync += sig.eq(Mux(sig == n - 1, 0, sig + 1))
        carry = wrap
    return carry


def fit(v: Value, r: IntRange) -> Value:
    """``v``, known to lie in ``r``, cut to the width ``r`` needs."""
    x = v[:r.bits]
    return x.as_signed() if r.signed else x


def delay(m: Module, en, sig, n: int, name: str | None = None, *, data: bool = False
          ) -> Value:
    """``sig`` seen ``n`` cycles later, advancing only when ``en`` (a pipeline's stall;
    None: every cycle). ``data``: the registers have no reset, for values whose every
    use is qualified by a delayed valid that has one."""
    sig = Value.cast(sig)
    for k in range(n):
        r = Signal(sig.shape(), name=f"{name or 'sig'}_d{k + 1}", reset_less=data)
        if en is None:
            m.d.sync += r.eq(sig)
        else:
            with m.If(en):
                m.d.sync += r.eq(sig)
        sig = r
    return sig


DSP_A, DSP_B = 27, 18      # DSP48E2's signed multiplier operands


def const_product(x: Value, c: int) -> Value:
    """``c * x`` as shifted copies of ``x`` added (one per set bit of ``|c|``): synthesis
    would put a constant product in a DSP whose output then runs into fabric."""
    terms = [x << k for k in range(abs(c).bit_length()) if abs(c) >> k & 1]
    total = sum(terms[1:], terms[0]) if terms else Const(0)
    return -total if c < 0 else total


def wide_product(m: Module, en, a: Value, ar: IntRange, b: Value, br: IntRange, name: str
                 ) -> Value:
    """``a * b`` over two register stages advancing with ``en``: a product that fits one
    DSP is registered twice (its M and P registers); a wider one is cut into pieces of
    the wider operand (17-bit unsigned low pieces and a signed top) that each fit a DSP,
    registered, then summed into the second register. So no DSP output runs into fabric
    logic in the same cycle. Its registers keep their reset, like every register that
    holds a DSP's operand or product: synthesis turns a chain of registers without reset
    into a shift-register LUT, which no DSP can absorb."""
    (x, xr), (y, yr) = sorted(((a, ar), (b, br)), key=lambda v: -v[1].bits)
    out = ar * br
    result = Signal(shape_of(out), name=name)
    wx, wy = xr.bits + (not xr.signed), yr.bits + (not yr.signed)
    if wx <= DSP_A and wy <= DSP_B:
        mid = Signal(shape_of(out), name=f"{name}_m")
        with m.If(en):
            m.d.sync += [mid.eq(a * b), result.eq(mid)]
        return result
    k = DSP_B - 1   # unsigned low pieces of the wide operand
    pieces, lo = [], 0
    while lo < xr.bits:
        top = lo + k >= xr.bits
        part = x[lo:] if top else x[lo:lo + k]
        part = part.as_signed() if top and xr.signed else part.as_unsigned()
        pr = (IntRange(xr.lo >> lo, xr.hi >> lo) if top else IntRange(0, (1 << k) - 1)) * yr
        p = Signal(shape_of(pr), name=f"{name}_p{len(pieces)}")
        with m.If(en):
            m.d.sync += p.eq(part * y)
        pieces.append((p, lo))
        lo += k
    with m.If(en):
        m.d.sync += result.eq(sum(p << sh for p, sh in pieces))
    return result


def tree_sum(m: Module, en, terms: list[tuple[Value, IntRange]], levels_per_stage: int,
             name: str) -> tuple[Value, IntRange, int]:
    """A balanced adder tree whose every node is only as wide as its exact range (a chain
    grows a bit per term and Amaranth a bit per addition, and synthesis cannot know that
    the high bits only repeat the sign), cut into register stages of
    ``levels_per_stage`` levels that advance when ``en``. Returns the sum, its range and
    the register stages (the sum's latency)."""
    level = stages = 0
    while len(terms) > 1:
        pairs = zip(terms[0::2], terms[1::2])
        nxt = [(fit(a + b, ra + rb), ra + rb) for (a, ra), (b, rb) in pairs]
        terms = nxt + ([terms[-1]] if len(terms) % 2 else [])
        level += 1
        if level % levels_per_stage == 0 or len(terms) == 1:
            stages += 1
            regs = []
            for k, (v, r) in enumerate(terms):
                reg = Signal(shape_of(r), name=f"{name}_s{stages}_{k}", reset_less=True)
                with m.If(en):
                    m.d.sync += reg.eq(v)
                regs.append((reg, r))
            terms = regs
    return terms[0][0], terms[0][1], stages


def mac(m, en, valid, first, last, a_words, b_words, a_range: IntRange, b_range: IntRange,
        tp: int, cop: int, cip: int, out_range: IntRange, o, pipe, start=None) -> None:
    """Accumulate ``acc[t][co] += sum_ci a[t][ci] * b[co][ci]``: ``a_words[t]`` and
    ``b_words[co]`` are packed ``cip``-element words present with ``valid`` (and the
    ``first``/``last`` flags of a sum) in the same cycle. Every product is registered,
    the adder tree is cut into register stages by ``pipe`` (``Pipelining``), and the
    accumulate ``Mux(first, start, acc) + partial`` has its stage alone, so the sums leave
    through ``o`` ``pipe.mac_stages(cip) + 1`` cycles after their last operands. A new
    sum starts from ``start[co]`` (or 0), which must be present ``pipe.mac_stages(cip)``
    cycles after the sum's first operands. Every register advances with ``en``.

    The products, the tree's registers and the accumulators have no reset: every use is
    qualified by the delayed ``valid`` and ``first``, which do reset. A datapath register
    without reset leaves the reset net's fanout to the control path (synthesis), and
    Verilator a branch less per register per cycle (``payload_register``)."""
    pr = a_range * b_range
    partials = []
    for t in range(tp):
        for co in range(cop):
            products = []
            for ci in range(cip):
                p = Signal(shape_of(pr), name=f"p_t{t}_c{co}_{ci}", reset_less=True)
                with m.If(en):
                    m.d.sync += p.eq(lane(a_words[t], ci, a_range) * lane(b_words[co], ci,
                                                                            b_range))
                products.append((p, pr))
            partial, _, stages = tree_sum(m, en, products, pipe.adder_levels, f"t{t}_c{co}")
            partials.append(partial)
    assert stages + 1 == pipe.mac_stages(cip)
    lag = pipe.mac_stages(cip)
    v, f, l = (delay(m, en, s, lag, n) for s, n in ((valid, "mac_valid"), (first, "mac_first"),
                                                  (last, "mac_last")))
    results = []
    for k, partial in enumerate(partials):
        t, co = divmod(k, cop)
        acc = Signal(shape_of(out_range), name=f"acc_t{t}_c{co}", reset_less=True)
        new = Signal(shape_of(out_range), name=f"new_t{t}_c{co}")
        m.d.comb += new.eq(Mux(f, 0 if start is None else start[co], acc) + partial)
        with m.If(en & v):
            m.d.sync += acc.eq(new)
        results.append(new)
    out = payload_register(m, o)
    with m.If(en):
        m.d.sync += o.valid.eq(v & l)
        with m.If(v & l):
            pack(m, out, results, out_range, domain="sync")
