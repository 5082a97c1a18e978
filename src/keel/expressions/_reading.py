"""Reading the text: old spellings and quoted names rewritten as Python, with a map back
to the columns of the text as written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from keel.errors import ExpressionError
from keel.expressions._contexts import Context

__all__ = ["Source", "char_offset", "read"]

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    | (?P<text>'(?:[^']|'')*')
    | (?P<dquoted>"(?:[^"]|"")*")
    | (?P<backtick>`(?:[^`]|``)+`)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>[^\W\d]\w*)
    | (?P<op><>|==|!=|<=|>=|=|.)""",
    re.VERBOSE | re.DOTALL,
)
_WORDS = {
    "and": "and",
    "or": "or",
    "not": "not",
    "is": "is",
    "in": "in",
    "true": "True",
    "false": "False",
    "null": "None",
    "none": "None",
}
_QUOTED = "_keel_quoted_"


@dataclass
class Source:
    """The text rewritten as Python, with where each piece came from."""

    python: str = ""
    starts: list[tuple[int, int]] = field(default_factory=list)  # (python offset, text offset)
    quoted: dict[str, str] = field(default_factory=dict)  # placeholder -> real name

    def add(self, piece: str, at: int) -> None:
        if not self.python:
            piece = piece.lstrip()  # Python reads leading space as an indent
            if not piece:
                return
        self.starts.append((len(self.python), at))
        self.python += piece

    def origin(self, offset: int) -> int:
        """The text offset of the piece holding this Python offset."""
        found = 0
        for python_at, text_at in self.starts:
            if python_at > offset:
                break
            found = text_at
        return found


def read(text: str, context: Context) -> Source:
    source = Source()
    for match in _TOKEN.finditer(text):
        kind, piece, at = match.lastgroup, match.group(), match.start()
        if kind == "space":
            source.add(" ", at)
        elif kind == "text":
            source.add(repr(piece[1:-1].replace("''", "'")), at)
        elif kind == "dquoted" and not context.sql_quoted_names:
            source.add(repr(piece[1:-1].replace('""', '"')), at)
        elif kind in ("dquoted", "backtick"):
            mark = piece[0]
            source.add(_placeholder(source, piece[1:-1].replace(mark * 2, mark)), at)
        elif kind == "name":
            source.add(_word(piece, text, at, context), at)
        elif kind == "number":
            source.add(piece.lower(), at)
        else:
            source.add({"=": "==", "<>": "!="}.get(piece, piece), at)
    return source


def _placeholder(source: Source, name: str) -> str:
    for placeholder, known in source.quoted.items():
        if known == name:
            return placeholder
    placeholder = f"{_QUOTED}{len(source.quoted)}"
    source.quoted[placeholder] = name
    return placeholder


def _word(piece: str, text: str, at: int, context: Context) -> str:
    if piece.startswith("__") or piece.startswith(_QUOTED):
        reason = f"'{piece}' is not a name keel.yaml may use"
        raise ExpressionError(text, at, reason, context.kind)
    word = _WORDS.get(piece.lower())
    return piece if word is None else f" {word} "  # spaced, so ``1and`` reads as ``1 and``


def char_offset(python: str, byte_offset: int) -> int:
    return len(python.encode()[:byte_offset].decode(errors="ignore"))
