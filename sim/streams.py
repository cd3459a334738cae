"""cocotb stream driver, monitor and scoreboard (AXI-Stream handshake semantics).

A transfer happens on a rising edge where valid and ready are both high; once valid is
raised, it and the payload hold until taken. Inputs are driven on the falling edge and the
handshake is sampled after ReadOnly(), when everything has settled before the next
rising edge.
"""

from __future__ import annotations

import random

from cocotb.triggers import FallingEdge, ReadOnly


class Clocked:
    """Counts rising edges so every transfer gets a cycle number."""

    def __init__(self, dut):
        self.dut = dut
        self.cycle = 0

    async def run(self):
        from cocotb.triggers import RisingEdge
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1


def handles(dut, port: str):
    """(valid, payload, ready) of a stream port: Amaranth's ``<port>__valid`` naming, or
    AXI4-Stream's ``<port>_tvalid/_tdata/_tready``."""
    if hasattr(dut, f"{port}__valid"):
        return tuple(getattr(dut, f"{port}__{n}") for n in ("valid", "payload", "ready"))
    return tuple(getattr(dut, f"{port}_t{n}") for n in ("valid", "data", "ready"))


async def drive(dut, port: str, words: list[int], stall: float, rng: random.Random,
                clock: Clocked, taken: list[int], last_every: int = 0) -> None:
    """Offer ``words`` on ``port``; before each new beat, idle with probability ``stall``.
    With ``last_every``, ``<port>_tlast`` marks every ``last_every``-th beat."""
    valid, payload, ready = handles(dut, port)
    tlast = getattr(dut, f"{port}_tlast") if last_every else None
    i, holding = 0, False
    while i < len(words):
        await FallingEdge(dut.clk)
        if not holding:
            if stall and rng.random() < stall:
                valid.value = 0
            else:
                payload.value = words[i]
                valid.value = 1
                if tlast is not None:
                    tlast.value = int((i + 1) % last_every == 0)
                holding = True
        await ReadOnly()
        if holding and int(ready.value):
            taken.append(clock.cycle)
            i, holding = i + 1, False
    await FallingEdge(dut.clk)
    valid.value = 0


async def monitor(dut, port: str, count: int, stall: float, rng: random.Random, clock: Clocked,
                  words: list[int], cycles: list[int], on_beat=None) -> None:
    """Accept ``count`` beats from ``port``, refusing with probability ``stall`` each cycle;
    ``on_beat(index)`` runs at each transfer, in the same read-only phase."""
    valid, payload, ready = handles(dut, port)
    while len(words) < count:
        await FallingEdge(dut.clk)
        ready.value = 0 if (stall and rng.random() < stall) else 1
        await ReadOnly()
        if int(ready.value) and int(valid.value):
            words.append(int(payload.value.to_unsigned()))
            cycles.append(clock.cycle)
            if on_beat is not None:
                on_beat(len(words) - 1)


class Scoreboard:
    """Compares received beats with the golden ones, lane by lane."""

    def __init__(self, expected, unpack):
        self.expected, self.unpack = expected, unpack

    def check(self, words: list[int]) -> dict:
        got = self.unpack(words)
        exp = self.expected
        n = min(len(got), len(exp))
        bad = [(i, e) for i in range(n) for e in range(exp.shape[1]) if got[i, e] != exp[i, e]]
        first = None if not bad else {"beat": bad[0][0], "lane": bad[0][1],
                                      "got": int(got[bad[0]]), "expected": int(exp[bad[0]])}
        return {"received": len(got), "expected": int(len(exp)), "mismatches": len(bad),
                "first_mismatch": first}
