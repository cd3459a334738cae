"""The jinja2 environment over ``hls_templates/``: every line of C++ and Tcl the backend
writes comes from a template there."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parents[2] / "hls_templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATES), str(TEMPLATES / "kernels")]),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        trim_blocks=False, lstrip_blocks=False, autoescape=False)


def render(template: str, **ctx) -> str:
    return environment().get_template(template).render(**ctx)


COPIED = ("hgpipe.h", "tb.h")   # C++ headers written as they are


def copied() -> dict[str, str]:
    return {name: (TEMPLATES / name).read_text() for name in COPIED}
