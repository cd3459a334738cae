"""``Choice``: a closed set of words that pick a behaviour, as a type.

Members compare, hash, print and serialise as their value (``StageKind.QK == "qk"``,
``json.dumps`` writes ``"qk"``), so data files, reports and generated module names keep
their words while the code dispatches on members.
"""

from __future__ import annotations

import enum


class Choice(str, enum.Enum):
    """A closed set of words (a ``str`` subclass, for JSON and the calibration files)."""

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls, word: str, field: str):
        """The member named ``word``, or a ``ValueError`` naming ``field`` and the words."""
        try:
            return cls(word)
        except (ValueError, TypeError):
            raise ValueError(f"{field}={word!r}: expected one of "
                             f"{', '.join(m.value for m in cls)}") from None
