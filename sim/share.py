"""One module for every set of part modules a simulator cannot tell apart.

The generator names a module by the digest of its text, so two linear stages that differ
only in where synthesis should place their weights (``rom_style``: LUTs, BRAM or URAM)
are two modules, and Verilator compiles each apart. Their behaviour is the same: in a
simulation build every such set becomes its first member. A module family is a module
and its own submodules (``\\name.sub``); families are compared with their own name taken
out, placement attributes taken out, whitespace collapsed and the families they
instantiate already merged, until nothing more merges.
"""

from __future__ import annotations

import re

_MODULE = re.compile(r"^module (\\?\S+?)\s*[#(].*?^endmodule[^\n]*\n?", re.M | re.S)
_NAME = re.compile(r"\bhgpipe_\w+")
# placement is synthesis' business: the attribute, and the Yosys-only spelling of it
_PLACEMENT = re.compile(r"`ifdef YOSYS\n\s*\(\*[^*]*\*\)\n`else\n\s*\(\*[^*]*\*\)\n`endif\n"
                        r"|\(\* (?:rom|ram)_style = \"\w+\" \*\)")


def family(module: str) -> str:
    """The part a module belongs to: ``\\hgpipe_x_1.sub`` and ``hgpipe_x_1`` to ``hgpipe_x_1``."""
    return module.lstrip("\\").split(".")[0]


def family_texts(source: str) -> dict[str, list[str]]:
    """``{family: its modules' texts}`` in the order of ``source``."""
    texts: dict[str, list[str]] = {}
    for m in _MODULE.finditer(source):
        texts.setdefault(family(m.group(1)), []).append(m.group(0))
    return texts


def merges(source: str, top: str = "hgpipe_top") -> dict[str, str]:
    """``{family: the family it becomes}`` for every family that merges into another."""
    texts = family_texts(source)
    texts.pop(top, None)
    into: dict[str, str] = {}
    while True:
        seen: dict[str, str] = {}
        more = {}
        for fam in sorted(texts):
            if fam in into:
                continue
            body = _NAME.sub(lambda n: "PART" if n.group(0) == fam
                             else into.get(n.group(0), n.group(0)), "".join(texts[fam]))
            key = " ".join(_PLACEMENT.sub("", body).split())
            if key in seen:
                more[fam] = seen[key]
            else:
                seen[key] = fam
        if not more:
            return into
        into.update(more)


def shared(source: str, top: str = "hgpipe_top", into: dict[str, str] | None = None) -> str:
    """``source`` with every family that ``merges`` finds (or ``into``, its result when the
    caller has it) replaced by its first member: the others' modules dropped, their
    instances renamed."""
    into = merges(source, top) if into is None else into
    out, at = [], 0
    for m in _MODULE.finditer(source):
        out.append(source[at:m.start()])
        if family(m.group(1)) not in into:
            out.append(_NAME.sub(lambda n: into.get(n.group(0), n.group(0)), m.group(0)))
        at = m.end()
    return "".join(out) + source[at:]
