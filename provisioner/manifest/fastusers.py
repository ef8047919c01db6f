"""A fast path for the dominant manifest shape: a trailing top-level `users:` block of flat entries. Pure.

Even the fast YAML reader (`fastyaml`) does Python work per line, and `check`/`loader` per field: about
15 µs per user for a 100,000-user file. Most of that work is the same for every user, as users share a few
dozen shapes (the lines after `- upn: ...`). This reader splits the block into entries with one regex pass
in C, reads each distinct shape once with `fastyaml`'s own tokenizer, and keeps per user only its UPN, its
line and its shape.

It accepts a file only when the general path would find nothing wrong in the users block: every entry
starts `- upn: <valid UPN>`, then at most four `key: scalar` lines at the entry's key column, keys known,
no key twice, every value of the right type. Anything else (comments or blank lines inside the block,
nesting, flow style, anchors, a bad field, a bad UPN, content after the block, ...) returns None and the
caller reads the file the general way, which reports any problem with its usual message and FILE:LINE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any

from provisioner.manifest import fastyaml
from provisioner.manifest.check import BOOL, STR, USER_FIELDS

# The `users:` line that opens the block; the block runs from the next line to the end of the file.
_USERS_LINE = "users:\n"
# Only these bytes (printable ASCII and newline) may appear for the cheap character check to pass.
_PLAIN_ASCII = bytes([0x0A, *range(0x20, 0x7F)])
# Field lines after `- upn:`: a user has at most four more fields, so a fifth line stops the match.
_MAX_FIELD_LINES = len(USER_FIELDS) - 1
# A double-quoted UPN without escapes, one '@', nothing to strip: the string between the quotes.
_QUOTED_UPN = r'"([^"\\\s@]+@[^"\\\s@]+)"'
# A plain UPN: starts with a letter, digit or '_' and holds an '@', so no implicit YAML resolver matches it
# (a test checks that); no spaces, ':' or '#', so no comment and no nested key.
_PLAIN_UPN = r"([A-Za-z0-9_][A-Za-z0-9_.+-]*@[A-Za-z0-9_.+-]+)"


@lru_cache(maxsize=16)
def _entry_pattern(dash: int) -> re.Pattern[str]:
    """One user entry whose "- " sits at column `dash`: the UPN (three ways) and its field lines as one string."""
    item = " " * dash + "- upn: "
    field = " " * (dash + 2) + r"[A-Za-z_][^\n]*\n"
    return re.compile(
        rf"{item}(?:{_QUOTED_UPN}|{_PLAIN_UPN}|([^\n]*))\n((?:{field}){{0,{_MAX_FIELD_LINES}}})"
    )


@dataclass(frozen=True, slots=True)
class Shape:
    """The field lines after `- upn:`, read: keys in file order and their values (explicit null kept)."""

    keys: tuple[str, ...]
    fields: dict[str, Any]

    def line_offset(self, key: str) -> int:
        """Lines from the entry's `- upn:` line to `key`'s line; 0 (the entry's line) when absent."""
        try:
            return 1 + self.keys.index(key)
        except ValueError:
            return 0


@dataclass(frozen=True, slots=True)
class UsersBlock:
    """Every entry of a users block: UPN (stripped, valid), its line, its shape; in file order.

    `distinct` lists each shape once (the entries share these objects).
    """

    upns: list[str]
    lines: list[int]
    shapes: list[Shape]
    distinct: list[Shape]


class _Decline(Exception):
    """The block is outside what this path reads: use the general path."""


def split(text: str, resolve: Any) -> tuple[str, int, UsersBlock] | None:
    """(head, users_line, block) when `text` is a head ending with a top-level `users:` line at `users_line`
    followed by a users block read in full; else None.

    The caller parses `head` the general way and checks it holds `users:` (null) at `users_line`: that proves
    the `users:` line is a top-level key and not inside a scalar or a flow collection of the head.
    """
    if "\r" in text or "\t" in text:
        return None
    at = text.rfind("\n" + _USERS_LINE)
    if at >= 0:
        start = at + 1 + len(_USERS_LINE)
    elif text.startswith(_USERS_LINE):
        start = len(_USERS_LINE)
    else:
        return None
    body = text[start:]
    if not body.endswith("\n"):
        body += "\n"  # the last line's missing newline changes nothing in YAML
    if not _plain_characters(body):
        return None
    head = text[:start]
    if "*" in head:
        return None  # a possible alias: the alias budget counts the whole document's nodes, so read it whole
    users_line = head.count("\n")
    try:
        block = _read_block(body, users_line + 1, fastyaml._Resolver(resolve))
    except (_Decline, fastyaml._Fallback):
        return None
    return head, users_line, block


def _plain_characters(body: str) -> bool:
    """No character the YAML reader treats specially (as `fastyaml.try_load` requires); fast for ASCII."""
    if body.isascii():
        return not body.encode("ascii").translate(None, _PLAIN_ASCII)
    return fastyaml._UNUSUAL.search(body) is None


def _read_block(body: str, first_line: int, resolver: fastyaml._Resolver) -> UsersBlock:
    dash = len(body) - len(body.lstrip(" "))
    parts = _entry_pattern(dash).split(body)
    # split() alternates text between matches with the 4 groups of each match: [gap, g1..g4, gap, g1..g4, ..., gap].
    # Every gap but the last must be empty (entries follow each other line after line); the last may hold
    # blank lines only.
    gaps = parts[0::5]
    if len(parts) == 1 or any(gaps[:-1]) or gaps[-1].strip(" \n"):
        raise _Decline
    # Column work in C: the groups of every match are every fifth item of `parts`.
    upns: list[str] = parts[1::5]
    if None in upns:  # some UPNs are not double-quoted: take the plain one, or read the line the general way
        upns = [
            quoted or plain or _upn(other, resolver)
            for quoted, plain, other in zip(upns, parts[2::5], parts[3::5], strict=True)
        ]
    shape_texts: list[str] = parts[4::5]
    col = dash + 2
    shapes = {text: _shape(text, col, resolver) for text in set(shape_texts)}
    entry_shapes = list(map(shapes.__getitem__, shape_texts))
    # An entry is its `- upn:` line and one line per field; the next one starts right after.
    entry_size = {text: 1 + len(shape.keys) for text, shape in shapes.items()}
    lines = list(accumulate(map(entry_size.__getitem__, shape_texts), initial=first_line))
    lines.pop()  # the line after the last entry
    return UsersBlock(upns, lines, entry_shapes, list(shapes.values()))


def _upn(rest: str, resolver: fastyaml._Resolver) -> str:
    """Any other `upn:` value, read as the general path reads it; declines what check.py would report."""
    tokens = fastyaml._tokenize("upn: " + rest, resolver)
    if len(tokens) != 1 or tokens[0][4] is fastyaml._OPEN:
        raise _Decline
    value = tokens[0][4]
    if type(value) is not str or not value.strip():
        raise _Decline
    upn = value.strip()
    local, at, domain = upn.partition("@")
    if not at or not local or not domain or "@" in domain or " " in upn:
        raise _Decline
    return upn


def _shape(text: str, col: int, resolver: fastyaml._Resolver) -> Shape:
    """The field lines of one entry, read by `fastyaml`'s tokenizer; declines what check.py would report."""
    keys: list[str] = []
    fields: dict[str, Any] = {}
    for _line, dash, tcol, key, value in fastyaml._tokenize(text, resolver) if text else ():
        if dash >= 0 or tcol != col or key is None or value is fastyaml._OPEN or key in fields or key == "upn":
            raise _Decline
        kind = USER_FIELDS.get(key)
        if kind is STR:
            if value is not None and not (type(value) is str and value.strip()):
                raise _Decline
        elif kind is BOOL:
            if value is not None and type(value) is not bool:
                raise _Decline
        else:
            raise _Decline
        keys.append(key)
        fields[key] = value
    if len(keys) != text.count("\n"):
        raise _Decline  # one key per line is what the entry lines are counted by
    return Shape(tuple(keys), fields)
