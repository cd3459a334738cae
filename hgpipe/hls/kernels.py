"""One kernel per stage: the template of its kind (``hls_templates/kernels/``) filled from
the stage's integer parameters, its derived ranges (the ``ap_int`` widths) and its plan
(folding, memory placement).

``kernel(st, f, layout, memories)`` returns the kernel header and its parameter header;
the C++ is in the templates, this module only decides what fills them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..graph.intrange import IntRange
from ..graph.kinds import StageKind
from ..graph.layout import TokenLayout
from ..graph.stages import (AttentionScores, AttentionValue, LayerNorm, Linear, Requant,
                            ResidualAdd, Softmax, Stage, Tokens)
from ..graph.table import PotTable
from ..plan.netlist import safe
from ..resources.memory import MemoryKind
from .render import render
from .types import Array, Wire, array, ctype, with_zero

# HLS storage of each plan placement (``BIND_STORAGE impl``)
IMPL = {MemoryKind.LUTRAM: "lutram", MemoryKind.BRAM: "bram", MemoryKind.URAM: "uram"}


@dataclass(frozen=True)
class Kernel:
    """A stage's rendered kernel (``stages/<fn>.h``) and parameters (``params/<fn>.h``)."""

    fn: str
    header: str
    params: str


@dataclass
class _Ctx:
    st: Stage
    fn: str
    arrays: list[Array]
    binds: list[dict]
    memories: dict[str, MemoryKind]

    def types(self, **extra: IntRange) -> dict[str, str]:
        r = dict(self.st.derived)
        r.update(extra)
        return {k: ctype(v) for k, v in r.items()}

    def bind(self, memory: str, var: str, rom: bool) -> None:
        """``var`` stored as the plan placed ``memory`` (if it did)."""
        kind = self.memories.get(memory)
        if kind in IMPL:
            self.binds.append({"var": var, "type": "rom_2p" if rom else "ram_2p",
                               "impl": IMPL[kind]})

    def table(self, t: PotTable, name: str, x: IntRange, index_sum: IntRange) -> dict:
        """A table's arrays, and what the lookup macro needs."""
        fn = f"{self.fn}_{name}"
        note = f"{name} table: {t.groups} group(s) x {t.segments} segment(s) x {t.bound + 1}"
        self.arrays.append(array(f"{fn}_entries", t.entries, note))
        self.arrays.append(array(f"{fn}_offset", t.offset, f"{name}: offsets",
                                 c="long long"))
        self.arrays.append(array(f"{fn}_shift", t.shift, f"{name}: shifts", c="int"))
        if t.segments > 1:
            self.arrays.append(array(f"{fn}_splits", t.splits, f"{name}: segment splits",
                                     c="long long"))
        return {"fn": fn, "groups": t.groups, "group_size": t.group_size,
                "segments": t.segments, "bound": t.bound, "x_t": ctype(x),
                "sum_t": ctype(index_sum), "y_t": ctype(t.out_range)}


def _clamp(st: Stage) -> dict:
    return {"lo": st.out_format.lo, "hi": st.out_format.hi}


def _linear(c: _Ctx, st: Linear, f, layout: TokenLayout, wires) -> dict:
    x = st.in_ranges[0]
    w = np.asarray(st.weight, dtype=np.int64)
    # partial sums: every term's range widened to hold 0, so each prefix is in range
    lo = np.minimum(0, np.minimum(w * x.lo, w * x.hi)).sum(-1) + st.bias
    hi = np.maximum(0, np.maximum(w * x.lo, w * x.hi)).sum(-1) + st.bias
    acc = IntRange.hull([st.derived["acc"], IntRange(int(lo.min()), int(hi.max()))])
    c.arrays.append(array(f"{c.fn}_weight", w, f"weight[{st.out_features}][{st.in_features}]"))
    c.arrays.append(array(f"{c.fn}_bias", st.bias, "bias, in accumulator units",
                          rng=st.derived["bias"]))
    c.bind("weights", f"{c.fn}_weight", rom=True)
    c.bind("row", "x", rom=False)
    return {"role": st.role, "cin": st.in_features, "cout": st.out_features,
            "cls_only": st.cls_only, "cls_row": layout.cls_row,
            "t": c.types(acc=acc, x=x)}


def _requant(c: _Ctx, st: Requant, f, layout, wires) -> dict:
    tab = c.table(st.table, "table", st.in_ranges[0], st.derived["index_sum"])
    c.bind("table", f"{tab['fn']}_entries", rom=True)
    return {"tab": tab, "fn_word": st.fn, "t": c.types()}


def _tokens(c: _Ctx, st: Tokens, f, layout: TokenLayout, wires) -> dict:
    padded = layout.rows > layout.tokens
    rom = st.rom_range(padded)
    c.arrays.append(array(f"{c.fn}_pos", st.rom(layout), "position words per stream row "
                          "(class token folded in, padding rows 0)", rng=rom))
    c.bind("pos", f"{c.fn}_pos", rom=True)
    used = np.flatnonzero(layout.patch_of_row() >= 0)
    if used.size and not np.array_equal(layout.patch_of_row()[used], used):
        raise ValueError(f"{st.name}: stream rows read patches out of order")
    x = with_zero(st.in_ranges[0])
    s = IntRange.hull([st.derived["sum"], x + rom])
    return {"rows": layout.rows, "tokens": layout.tokens, "patch_rows": layout.patch_rows,
            "cls_row": layout.cls_row, "use_lo": int(used.min()) if used.size else 0,
            "use_hi": int(used.max()) + 1 if used.size else 0,
            "t": c.types(x=x, sum=s), **_clamp(st)}


def _layernorm(c: _Ctx, st: LayerNorm, f, layout, wires) -> dict:
    d = st.derived
    tab = c.table(st.rsqrt, "rsqrt", d["v"], d["rsqrt_index_sum"])
    c.arrays.append(array(f"{c.fn}_gamma", st.gamma, "gamma"))
    c.arrays.append(array(f"{c.fn}_beta", st.beta, "beta (with the rounding half)"))
    c.bind("rsqrt", f"{tab['fn']}_entries", rom=True)
    c.bind("row", "row", rom=False)
    return {"c": st.channels, "shift": st.shift, "tab": tab,
            "t": c.types(x=st.in_ranges[0], s1=with_zero(d["s1"]), s2=with_zero(d["s2"])),
            **_clamp(st)}


def _attention(st, layout: TokenLayout) -> dict:
    return {"rows": layout.rows, "hd": st.head_dim, "dim": st.heads * st.head_dim}


def _qk(c: _Ctx, st: AttentionScores, f, layout, wires) -> dict:
    c.bind("k", "k", rom=False)
    c.bind("q_wait", "q", rom=False)
    return {**_attention(st, layout),
            "t": c.types(x=st.in_ranges[0], acc=with_zero(st.derived["out"]))}


def _softmax(c: _Ctx, st: Softmax, f, layout, wires) -> dict:
    d = st.derived
    exp = c.table(st.exp, "exp", d["diff"], d["exp_index_sum"])
    recip = c.table(st.recip, "recip", with_zero(d["z"]), d["recip_index_sum"])
    c.bind("score_rows", "row", rom=False)
    c.bind("exp_rows", "ex", rom=False)
    c.bind("exp", f"{exp['fn']}_entries", rom=True)
    c.bind("recip", f"{recip['fn']}_entries", rom=True)
    return {"keys": wires["i"].row, "row_len": st.row_len, "shift": st.shift, "exp": exp,
            "recip": recip, "t": c.types(x=st.in_ranges[0], z=with_zero(d["z"])),
            **_clamp(st)}


def _av(c: _Ctx, st: AttentionValue, f, layout, wires) -> dict:
    c.bind("v", "v", rom=False)
    c.bind("rows", "p", rom=False)
    return {**_attention(st, layout),
            "t": c.types(p=st.in_ranges[0], v=st.in_ranges[1],
                         acc=with_zero(st.derived["out"]))}


def _add(c: _Ctx, st: ResidualAdd, f, layout, wires) -> dict:
    k = st.skip_shift
    half = st.in_ranges[0] + (1 << (k - 1)) if k else st.in_ranges[0]
    return {"k": k, "t": c.types(half=half), **_clamp(st)}


KERNELS: dict[StageKind, Callable[..., dict]] = {
    StageKind.LINEAR: _linear, StageKind.REQUANT: _requant, StageKind.TOKENS: _tokens,
    StageKind.LAYERNORM: _layernorm, StageKind.QK: _qk, StageKind.SOFTMAX: _softmax,
    StageKind.AV: _av, StageKind.ADD: _add,
}


def kernel(st: Stage, f, layout: TokenLayout, wires: dict[str, Wire],
           memories: dict[str, MemoryKind] | None = None) -> Kernel:
    """Render stage ``st`` at folding ``f``; ``wires`` are its ports' streams (``i`` or
    ``i0``/``i1``, and ``o``), ``memories`` the plan's placement of its memories."""
    fn = safe(st.name)
    c = _Ctx(st, fn, [], [], dict(memories or {}))
    ctx = KERNELS[st.kind](c, st, f, layout, wires)
    guard = f"HGPIPE_{fn.upper()}_H"
    rom = {a.name[len(fn) + 1:]: a.ctype for a in c.arrays}   # read through the ap_int type
    common = {"stage": st.name, "kind": st.kind.value, "fn": fn, "f": f, "bind": c.binds,
              "rom": rom, **wires}
    header = render(f"{st.kind.value}.h.j2", guard=guard, **common, **ctx)
    params = render("params.h.j2", stage=st.name, origin="the integer graph",
                    guard=f"HGPIPE_{fn.upper()}_PARAMS_H", arrays=c.arrays)
    return Kernel(fn, header, params)


def takes_head(st: Stage) -> bool:
    """QK^T and AV kernels pick their head's channels: a template parameter ``H``
    (softmax's units are alike, one function for every head)."""
    return st.kind in (StageKind.QK, StageKind.AV)
