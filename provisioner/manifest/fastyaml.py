"""A fast reader for the plain block-YAML subset manifests are written in. Pure.

libyaml through PyYAML costs about 60 µs per user entry here (Python objects for every event and node), too
slow for a 100,000-user manifest. This reader handles the subset people and `provision export` write: block
mappings and sequences, plain and simple quoted scalars, comments. It gives exactly what the safe loader
gives (same values, same line marks for keys and items) and declines, never with an error, anything
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
_UNUSUAL = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
# `key: rest`, `key:` — a simple key (no quotes, no spaces) then a colon ending the line or followed by a space.
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +|$)")
# A whole line: blank or comment (all groups empty), or indent, optional "- ", key, colon, rest of the line.
_KEYED_LINE = re.compile(r"^(?: *(?:#.*)?|( *)(- +)?([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*))?)$", re.MULTILINE)
_SIMPLE_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
# First characters that can make a plain scalar resolve to something other than a string (PyYAML's implicit
# resolvers, with YAML 1.2 booleans): anything else is a string without asking the resolver.
_MAY_RESOLVE = frozenset("tTfFnN~-+0123456789.<=")
# First characters a plain scalar may not start with in block context (YAML indicators).
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")


class _Fallback(Exception):
    """Outside the subset: read the file with libyaml instead."""


# A token is one meaningful line: (line, dash, col, key, value) — a tuple, as 300,000 of them are built for
# 100k users. line is 1-based; dash is the column of "- " on a sequence item line, else -1; col is where the
# key or scalar starts; key is None for a scalar sequence item; value is a scalar, or _OPEN for `key:` alone.
_Line = tuple[Any, ...]


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
        value = parser.node(0, 1)
        if parser.pos != len(lines):
            return False, None
    except _Fallback:
        return False, None
    marks.maps.update(parser.maps)
    marks.seqs.update(parser.seqs)
    marks.keep.append(value)
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
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            raise _Fallback
    found = _tokenize_keyed(text, resolver)
    return found if found is not None else _tokenize_lines(text, resolver)


def _tokenize_keyed(text: str, resolver: _Resolver) -> list[_Line] | None:
    """Tokens when every line is blank, a comment, `key: ...` or `- key: ...` (what manifests are), else None.

    One regex pass in C finds all lines; the match count equals the line count exactly when every line is of
    those shapes (`^`/`$` anchor each match to one whole line).
    """
    rows = _KEYED_LINE.findall(text)
    if len(rows) != text.count("\n") + 1:
        return None
    out: list[_Line] = []
    plain = resolver.plain
    for lineno, (ind, dash, key, rest) in enumerate(rows, start=1):
        if not key:
            continue  # blank or comment line
        if key[0] in "tTfFnN" and plain(key) != key:
            raise _Fallback
        if not rest or rest[0] == "#":
            value: Any = _OPEN
        elif rest[0] not in _INDICATORS and "#" not in rest and ": " not in rest and rest[-1] not in ": ":
            value = plain(rest) if rest[0] in _MAY_RESOLVE else rest
        else:
            value = _scalar(rest, plain)
        if dash:
            out.append((lineno, len(ind), len(ind) + len(dash), key, value))
        else:
            out.append((lineno, -1, len(ind), key, value))
    return out


def _tokenize_lines(text: str, resolver: _Resolver) -> list[_Line]:
    """Tokens line by line, for files with scalar list items too."""
    out: list[_Line] = []
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
            if not rest or rest[0] == "#":
                value: Any = _OPEN
            elif rest[0] not in _INDICATORS and "#" not in rest and ": " not in rest and rest[-1] not in ": ":
                # The common case (a plain one-word value, no comment), inlined: 300,000 of these per 100k users.
                value = plain(rest) if rest[0] in _MAY_RESOLVE else rest
            else:
                value = _scalar(rest, plain)
            out.append((lineno, dash, col, key, value))
        elif dash >= 0:
            out.append((lineno, dash, col, None, _scalar(stripped, plain)))
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
        # Line marks by id(); the returned value keeps every container alive, so the ids stay valid.
        self.maps: dict[int, Any] = {}
        self.seqs: dict[int, Any] = {}

    def node(self, i: int, depth: int) -> Any:
        if depth > self.max_depth:
            raise _Fallback  # the safe loader reports the nesting limit with its message
        _line, dash, col, key, _value = self.lines[i]
        if dash >= 0:
            return self.sequence(i, dash, depth)
        if key is None:
            raise _Fallback
        return self.mapping(i, col, depth, False)

    def sequence(self, i: int, dash: int, depth: int) -> list[Any]:
        items: list[Any] = []
        item_lines: list[int] = []
        lines = self.lines
        n = len(lines)
        start = lines[i][0]
        if depth + 1 > self.max_depth:
            raise _Fallback
        mapping = self.mapping
        while i < n:
            line, tdash, tcol, key, value = lines[i]
            if tdash != dash:
                if tdash > dash or (tdash < 0 and tcol > dash):
                    raise _Fallback
                break
            item_lines.append(line)
            if key is None:
                items.append(value)
                i += 1
            else:
                items.append(mapping(i, tcol, depth + 1, True))
                i = self.pos
        self.pos = i
        self.seqs[id(items)] = (start, item_lines)
        return items

    def mapping(self, i: int, col: int, depth: int, from_item: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        where: dict[Any, tuple[int, int]] = {}
        lines = self.lines
        n = len(lines)
        start = lines[i][0]
        first = from_item  # an item's first key sits on the "- " line: accept it whatever its dash
        opened = _OPEN
        while i < n:
            line, dash, tcol, key, value = lines[i]
            if first:
                first = False
            elif dash >= 0:
                if dash < col:
                    break
                raise _Fallback
            elif tcol != col:
                if tcol < col:
                    break
                raise _Fallback
            if key is None or key in out:
                raise _Fallback  # the safe loader reports duplicate keys with both lines
            i += 1
            if value is not opened:
                out[key] = value
                where[key] = (line, line)
                continue
            nxt = lines[i] if i < n else None
            if nxt is not None and ((nxt[1] >= 0 and nxt[1] >= col) or (nxt[1] < 0 and nxt[2] > col)):
                if nxt[1] == col and from_item:
                    raise _Fallback  # a sequence at the item's own column: rare, leave it to libyaml
                out[key] = self.node(i, depth + 1)
                where[key] = (line, nxt[0])
                i = self.pos
            else:
                out[key] = None
                where[key] = (line, line)
        self.pos = i
        self.maps[id(out)] = (start, where)
        return out
