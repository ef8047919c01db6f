"""A fast reader for the plain block-YAML subset manifests are written in. Pure.

libyaml through PyYAML costs about 60 µs per user entry here (Python objects for every event and node), too
slow for a 100,000-user manifest. This reader handles the subset people and `provision export` write: block
mappings and sequences, plain and simple quoted scalars, comments. It gives exactly what the safe loader
gives (same values, same line marks for keys and items) and returns None, never an error, for anything
outside the subset (flow collections, anchors, aliases, tags, multi-line scalars, escapes, duplicate keys,
odd indentation, documents markers, ...): the caller then reads the file with libyaml, which reports real
errors with its own messages. A property test checks both readers agree.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from yaml.nodes import ScalarNode

if TYPE_CHECKING:
    from provisioner.manifest.safeyaml import Marks

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"

# Characters libyaml rejects or treats specially anywhere in a line; their presence sends the file to libyaml.
_UNUSUAL = re.compile("[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
# `key: rest`, `key:` — a simple key (no quotes, no spaces) then a colon ending the line or followed by a space.
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +|$)")
_SIMPLE_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
# First characters that can make a plain scalar resolve to something other than a string (PyYAML's implicit
# resolvers, with YAML 1.2 booleans): anything else is a string without asking the resolver.
_MAY_RESOLVE = frozenset("tTfFnN~-+0123456789.<=")
# First characters a plain scalar may not start with in block context (YAML indicators).
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")


class _Fallback(Exception):
    """Outside the subset: read the file with libyaml instead."""


class _Line:
    __slots__ = ("col", "dash", "key", "line", "value")

    def __init__(self, line: int, dash: int, col: int, key: str | None, value: Any) -> None:
        self.line = line  # 1-based
        self.dash = dash  # column of "- " when the line is a sequence item, else -1
        self.col = col  # column where the key or scalar starts
        self.key = key  # None for a scalar sequence item
        self.value = value  # a scalar, or _OPEN for `key:` with nothing after it


_OPEN = object()


def try_load(text: str, marks: Marks, resolve: Any, max_depth: int) -> tuple[bool, Any]:
    """(True, value) when `text` is in the subset (marks filled in), else (False, None) and marks untouched."""
    if "\t" in text or _UNUSUAL.search(text):
        return False, None
    try:
        lines = _tokenize(text, _Resolver(resolve))
        if not lines:
            return False, None  # empty or comments only: let the safe loader decide what that is
        parser = _Parser(lines, max_depth)
        maps: dict[int, Any] = {}
        seqs: dict[int, Any] = {}
        keep: list[Any] = []
        parser.sinks = (maps, seqs, keep)
        value = parser.node(0, 1)
        if parser.pos != len(lines):
            return False, None
    except _Fallback:
        return False, None
    marks.maps.update(maps)
    marks.seqs.update(seqs)
    marks.keep.extend(keep)
    return True, value


class _Resolver:
    """Plain scalar -> Python value, using the safe loader's resolver for the few first characters that need it."""

    def __init__(self, resolve: Any) -> None:
        self._resolve = resolve
        self._cache: dict[str, Any] = {}

    def plain(self, text: str) -> Any:
        if text[0] not in _MAY_RESOLVE:
            return text
        try:
            return self._cache[text]
        except KeyError:
            pass
        tag = self._resolve(ScalarNode, text, (True, False))
        if tag == _STR:
            value: Any = text
        elif tag == _NULL:
            value = None
        elif tag == _BOOL:
            value = text.lower() == "true"
        elif tag == _INT and _SIMPLE_INT.fullmatch(text):
            value = int(text)
        else:
            raise _Fallback  # floats, octal/hex/sexagesimal ints, timestamps, merge keys: the safe loader decides
        self._cache[text] = value
        return value


def _tokenize(text: str, resolver: _Resolver) -> list[_Line]:
    out: list[_Line] = []
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            raise _Fallback
    key_match = _KEY.match
    plain = resolver.plain
    for lineno, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.lstrip(" ")
        if not stripped or stripped[0] == "#":
            continue
        col = len(raw) - len(stripped)
        dash = -1
        if stripped[0] == "-":
            if stripped.startswith("---") or stripped.startswith("- -") or not stripped.startswith("- "):
                raise _Fallback  # document markers, nested inline sequences, "-" alone, "-5" as a key
            rest = stripped[1:].lstrip(" ")
            if not rest or rest[0] == "#":
                raise _Fallback
            dash, col = col, col + len(stripped) - len(rest)
            stripped = rest
        elif stripped[0] in "%." and (stripped.startswith("...") or stripped[0] == "%"):
            raise _Fallback
        m = key_match(stripped)
        if m is not None:
            key = m.group(1)
            if key[0] in "tTfFnN" and plain(key) != key:
                raise _Fallback  # `null:`, `true:` keys are not strings
            rest = stripped[m.end() :]
            value: Any = _OPEN if not rest or rest[0] == "#" else _scalar(rest, plain)
            out.append(_Line(lineno, dash, col, key, value))
        elif dash >= 0:
            out.append(_Line(lineno, dash, col, None, _scalar(stripped, plain)))
        else:
            raise _Fallback  # a bare scalar line: a top-level scalar or a multi-line plain scalar
    return out


def _scalar(text: str, plain: Any) -> Any:
    """One scalar that fills the rest of a line (already left-stripped), with an optional trailing comment."""
    first = text[0]
    if first == "'":
        end = 1
        while True:
            end = text.find("'", end)
            if end < 0:
                raise _Fallback
            if text.startswith("''", end):
                end += 2
                continue
            break
        value = text[1:end].replace("''", "'")
        _only_comment(text[end + 1 :])
        return value
    if first == '"':
        end = text.find('"', 1)
        if end < 0 or "\\" in text[1:end]:
            raise _Fallback
        _only_comment(text[end + 1 :])
        return text[1:end]
    if first in _INDICATORS:
        raise _Fallback
    hash_at = text.find(" #")
    if hash_at >= 0:
        text = text[:hash_at]
    text = text.rstrip(" ")
    if ": " in text or text.endswith(":"):
        raise _Fallback  # libyaml rejects (or reads as a mapping) what looks like a nested key
    return plain(text)


def _only_comment(tail: str) -> None:
    """After a quoted scalar only blanks, or blanks then a comment, may follow."""
    rest = tail.lstrip(" ")
    if rest and (rest[0] != "#" or rest == tail):
        raise _Fallback


class _Parser:
    """Builds values from the line list by indentation, the way a YAML block structure nests."""

    def __init__(self, lines: list[_Line], max_depth: int) -> None:
        self.lines = lines
        self.pos = 0
        self.max_depth = max_depth
        self.sinks: tuple[dict[int, Any], dict[int, Any], list[Any]] = ({}, {}, [])

    def node(self, i: int, depth: int) -> Any:
        if depth > self.max_depth:
            raise _Fallback  # the safe loader reports the nesting limit with its message
        t = self.lines[i]
        if t.dash >= 0:
            return self.sequence(i, t.dash, depth)
        if t.key is None:
            raise _Fallback
        return self.mapping(i, t.col, depth, from_item=False)

    def sequence(self, i: int, dash: int, depth: int) -> list[Any]:
        items: list[Any] = []
        item_lines: list[int] = []
        lines, n = self.lines, len(self.lines)
        start = lines[i].line
        while i < n:
            t = lines[i]
            if t.dash != dash:
                if t.dash > dash or (t.dash < 0 and t.col > dash):
                    raise _Fallback
                break
            item_lines.append(t.line)
            if t.key is None:
                items.append(t.value)
                i += 1
            else:
                if depth + 1 > self.max_depth:
                    raise _Fallback
                items.append(self.mapping(i, t.col, depth + 1, from_item=True))
                i = self.pos
        self.pos = i
        self.sinks[1][id(items)] = (start, item_lines)
        self.sinks[2].append(items)
        return items

    def mapping(self, i: int, col: int, depth: int, *, from_item: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        where: dict[Any, tuple[int, int]] = {}
        lines, n = self.lines, len(self.lines)
        start = lines[i].line
        first = True
        while i < n:
            t = lines[i]
            if not (first and from_item):
                if t.dash >= 0:
                    if t.dash < col:
                        break
                    raise _Fallback
                if t.col < col:
                    break
                if t.col > col or t.key is None:
                    raise _Fallback
            first = False
            key = t.key
            if key is None or key in out:
                raise _Fallback  # the safe loader reports duplicate keys with both lines
            i += 1
            if t.value is not _OPEN:
                out[key] = t.value
                where[key] = (t.line, t.line)
                continue
            nxt = lines[i] if i < n else None
            if nxt is not None and ((nxt.dash >= 0 and nxt.dash >= col) or (nxt.dash < 0 and nxt.col > col)):
                if nxt.dash == col and from_item:
                    raise _Fallback  # a sequence at the item's own column: rare, leave it to libyaml
                value = self.node(i, depth + 1)
                where[key] = (t.line, nxt.line)
                i = self.pos
            else:
                value = None
                where[key] = (t.line, t.line)
            out[key] = value
        self.pos = i
        self.sinks[0][id(out)] = (start, where)
        self.sinks[2].append(out)
        return out
