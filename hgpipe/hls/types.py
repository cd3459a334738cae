"""C++ types and constants of the HLS view: ``ap_int`` widths from derived ranges, beats,
and parameter arrays as C initialisers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..graph.intrange import IntRange


def ctype(r: IntRange) -> str:
    """The narrowest ``ap_int``/``ap_uint`` that holds every value of ``r``."""
    return f"ap_int<{r.bits}>" if r.signed else f"ap_uint<{r.bits}>"


def with_zero(r: IntRange) -> IntRange:
    """``r`` widened to hold 0: an accumulator's type, whose partial sums start at 0."""
    return IntRange.hull([r, IntRange(0, 0)])


def beat(r: IntRange, n: int) -> str:
    return f"hgpipe::Beat<{ctype(r)}, {n}>"


@dataclass(frozen=True)
class Wire:
    """One stream: ``tp`` token slots x ``lanes`` elements of ``rng`` a beat, rows of
    ``row`` channels, ``rows`` rows an image."""

    rng: IntRange
    tp: int
    lanes: int
    row: int
    rows: int

    @property
    def n(self) -> int:
        return self.tp * self.lanes

    @property
    def beats(self) -> int:
        """Beats per image."""
        return (self.rows // self.tp) * (self.row // self.lanes)

    @property
    def groups(self) -> int:
        return self.rows // self.tp

    @property
    def beat(self) -> str:
        return beat(self.rng, self.n)

    @property
    def elem(self) -> str:
        return ctype(self.rng)

    def relaned(self, lanes: int) -> "Wire":
        return Wire(self.rng, self.tp, lanes, self.row, self.rows)


@dataclass(frozen=True)
class Array:
    """A constant array of a parameter header."""

    name: str
    ctype: str          # the element as HLS synthesizes it
    native: str         # the same values in a C type: C simulation compiles fast
    dims: tuple[int, ...]
    values: str         # the C initialiser
    note: str


def c_init(a: np.ndarray) -> str:
    """Nested braces, one line per innermost row."""
    if a.ndim == 1:
        return "{" + ", ".join(map(str, a.tolist())) + "}"
    sep = ",\n" if a.ndim == 2 else ",\n\n"
    return "{" + sep.join(c_init(x) for x in a) + "}"


def array(name: str, values: np.ndarray, note: str, rng: IntRange | None = None,
          c: str | None = None) -> Array:
    """``values`` as a constant of the narrowest type that holds them (or ``rng``'s, or
    the C type ``c``)."""
    v = np.asarray(values, dtype=np.int64)
    r = rng if rng is not None else IntRange.of_array(v)
    return Array(name, c or ctype(r), c or native(r), tuple(v.shape), c_init(v), note)


def native(r: IntRange) -> str:
    """The smallest C integer type that holds ``r``."""
    for bits, name in ((8, "char"), (16, "short"), (32, "int"), (64, "long long")):
        if r.bits <= bits:
            return f"{'signed' if r.signed else 'unsigned'} {name}"
    raise ValueError(f"no C integer type holds {r}")
