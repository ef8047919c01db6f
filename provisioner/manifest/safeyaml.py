"""Safe, bounded YAML reading that keeps line numbers. Pure apart from reading the file.

Files are composed into nodes with libyaml (`CSafeLoader`: no object construction at all), then turned into
plain Python values by a small walker that refuses what a manifest never needs and a hostile file uses:
non-standard tags (`!!python/object`), alias expansion beyond a budget (billion laughs), recursive anchors,
nesting deeper than `MAX_DEPTH`, files over `MAX_FILE_BYTES`, invalid UTF-8 and several documents per file.

Booleans follow YAML 1.2 (only `true`/`false`), so `usageLocation: NO` is Norway, not `false`.
Line numbers are kept in a side table, `Marks`, keyed by the identity of each dict and list produced.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provisioner.manifest import fastyaml

MAX_FILE_BYTES = 32 * 1024 * 1024  # refuse larger files before reading them
# Refuse, before parsing, a document with more lines and flow items than this (lines + ',' + '[' + '{'):
# each becomes at least one object in memory. A 100,000-user manifest has about 400,000.
MAX_ITEMS = 2_000_000
MAX_DEPTH = 50  # nesting levels of mappings/sequences
MAX_EXPANDED_NODES_FACTOR = 4  # alias expansion may add at most this multiple of the file's own nodes...
MAX_EXPANDED_NODES_FLOOR = 100_000  # ...or this many nodes, whichever is larger

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Resolver(yaml.resolver.Resolver):
    """PyYAML's resolver, with YAML 1.2 booleans (`yes`/`no`/`on`/`off` stay strings)."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Resolver.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"))
    )


class Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader, _Resolver):  # type: ignore[misc]
    """libyaml's parser and composer; our resolver. Only `compose` is used: nothing is constructed."""


_CTOR = SafeConstructor()
_RESOLVER = _Resolver()


class YamlProblem(Exception):
    """A file that cannot be read as a manifest document; `line` is 1-based (0 = the file as a whole)."""

    def __init__(self, line: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.hint = hint


@dataclass
class Marks:
    """Line numbers of what `to_python` produced.

    `maps[id(d)] = (line, {key: (key_line, value_line)})`; `seqs[id(l)] = (line, [item_line, ...])`.
    The produced containers are kept referenced here so their ids stay valid.
    """

    maps: dict[int, tuple[int, dict[Any, tuple[int, int]]]] = field(default_factory=dict)
    seqs: dict[int, tuple[int, list[int]]] = field(default_factory=dict)
    keep: list[Any] = field(default_factory=list)
    # loads(..., soft_duplicates=True): keys given twice in a mapping, as (line, message, hint); the first wins.
    duplicates: list[tuple[int, str, str | None]] = field(default_factory=list)

    def line_of(self, root: Any, path: tuple[Any, ...]) -> int:
        """The best line for `path` (a pydantic `loc`, keys and indexes) under `root`: the deepest one known."""
        value, line = root, self.container_line(root)
        for part in path:
            if isinstance(value, dict) and id(value) in self.maps:
                entry = self.maps[id(value)][1].get(part)
                if entry is None:
                    return line
                line = entry[1]
                value = value.get(part)
            elif isinstance(value, list) and id(value) in self.seqs and isinstance(part, int):
                items = self.seqs[id(value)][1]
                if not 0 <= part < len(items):
                    return line
                line = items[part]
                value = value[part]
            else:
                return line
        return line

    def key_line(self, mapping: Any, key: Any) -> int:
        entry = self.maps.get(id(mapping))
        if entry is None:
            return 0
        kv = entry[1].get(key)
        return kv[0] if kv else entry[0]

    def value_line(self, mapping: Any, key: Any) -> int:
        entry = self.maps.get(id(mapping))
        if entry is None:
            return 0
        kv = entry[1].get(key)
        return kv[1] if kv else entry[0]

    def container_line(self, value: Any) -> int:
        if isinstance(value, dict) and id(value) in self.maps:
            return self.maps[id(value)][0]
        if isinstance(value, list) and id(value) in self.seqs:
            return self.seqs[id(value)][0]
        return 0


def read_text(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file's text, refusing oversized files (before reading) and bytes that are not UTF-8."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise YamlProblem(0, f"cannot read the file ({exc.strerror or exc})", "check the path and permissions") from None
    if size > max_bytes:
        raise YamlProblem(
            0,
            f"the file is {size:,} bytes, over the {max_bytes:,}-byte limit",
            "split the users across several files",
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise YamlProblem(0, f"cannot read the file ({exc.strerror or exc})", "check the path and permissions") from None
    if len(data) > max_bytes:
        raise YamlProblem(0, f"the file is over the {max_bytes:,}-byte limit", "split the users across several files")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlProblem(
            line, f"byte 0x{data[exc.start]:02x} is not valid UTF-8", "save the file as UTF-8"
        ) from None


def compose(text: str) -> Node | None:
    """One YAML document's node tree (None for an empty file). Several documents are refused."""
    loader = Loader(text)  # type: ignore[call-arg]  # CSafeLoader takes the stream
    try:
        node = loader.get_single_node()
    except yaml.composer.ComposerError as exc:
        if "expected a single document" in f"{exc.context} {exc.problem}":
            mark = exc.problem_mark
            raise YamlProblem(
                (mark.line + 1) if mark else 0,
                "a second YAML document starts here ('---'); one manifest file holds one document",
                "put each document in its own file",
            ) from None
        raise _problem_from_yaml_error(exc) from None
    except yaml.MarkedYAMLError as exc:
        raise _problem_from_yaml_error(exc) from None
    except yaml.YAMLError as exc:  # pragma: no cover - libyaml reports marks for all syntax errors
        raise YamlProblem(0, f"YAML error: {exc}", "fix the YAML syntax") from None
    except RecursionError:  # pragma: no cover - only PyYAML's pure-Python composer (no libyaml) recurses
        raise YamlProblem(0, f"nesting is deeper than {MAX_DEPTH} levels", "a manifest is at most a few levels deep") from None
    finally:
        loader.dispose()
    return node


def _problem_from_yaml_error(exc: yaml.MarkedYAMLError) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    line = (mark.line + 1) if mark else 0
    what = " ".join(p for p in (exc.context, exc.problem) if p)
    if "exceeded maximum nesting depth" in what:
        return YamlProblem(line, f"nesting is deeper than {MAX_DEPTH} levels", "a manifest is at most a few levels deep")
    return YamlProblem(line, f"YAML syntax error: {what or 'invalid YAML'}", "fix the YAML syntax at this line")


def _check_shape(root: Node) -> None:
    """Refuse recursive anchors, nesting over MAX_DEPTH and alias expansion over budget, in linear time."""
    expanded: dict[int, int] = {}  # id(node) -> size once every alias is expanded
    distinct = 0
    on_path: set[int] = set()
    # Iterative post-order walk over the DAG; each distinct node is sized once.
    stack: list[tuple[Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            size = 1 + sum(expanded[id(c)] for c in _children(node))
            expanded[nid] = size
            continue
        if nid in expanded:
            continue
        if nid in on_path:
            raise YamlProblem(node.start_mark.line + 1, "this alias refers to itself (recursive anchor)", "remove the alias")
        if isinstance(node, (MappingNode, SequenceNode)) and depth > MAX_DEPTH:
            raise YamlProblem(
                node.start_mark.line + 1, f"nesting is deeper than {MAX_DEPTH} levels", "a manifest is at most a few levels deep"
            )
        distinct += 1
        on_path.add(nid)
        stack.append((node, depth, True))
        for child in _children(node):
            cid = id(child)
            if cid in on_path:
                raise YamlProblem(
                    child.start_mark.line + 1, "an alias here refers to a node that contains it (recursive anchor)", "remove the alias"
                )
            if cid not in expanded:
                stack.append((child, depth + 1, False))
    budget = max(MAX_EXPANDED_NODES_FLOOR, MAX_EXPANDED_NODES_FACTOR * distinct)
    total = expanded[id(root)]
    if total > budget:
        raise YamlProblem(
            root.start_mark.line + 1,
            f"YAML aliases expand this document to {total:,} nodes (limit {budget:,}); refusing a possible alias bomb",
            "use fewer '*alias' references, or write the values out",
        )


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        out: list[Node] = []
        for k, v in node.value:
            out.append(k)
            out.append(v)
        return out
    return []


def resolver() -> Any:
    """The plain-scalar resolver both readers use (YAML 1.2 booleans): `resolve(ScalarNode, text, (True, False))`."""
    return _RESOLVER.resolve


def load(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> tuple[Any, Marks]:
    """Read `path` as one safe YAML document: (plain Python value or None when empty, its line marks)."""
    text = read_text(path, max_bytes=max_bytes)
    return loads(text)


def loads(text: str, *, fast: bool = True, counted: bool = False, soft_duplicates: bool = False) -> tuple[Any, Marks]:
    """Parse one document: the fast subset reader when it can (see `fastyaml`), else libyaml.

    `counted`: the caller already ran `check_items(text)` (counting 14 MB again costs 30 ms).
    `soft_duplicates`: a key given twice in a mapping goes to `Marks.duplicates` (the first value kept) rather
    than failing the document, so the caller reports it with the document's other problems.
    """
    if not counted:
        check_items(text)
    marks = Marks()
    if fast:
        ok, value = fastyaml.try_load(text, marks, _RESOLVER.resolve, MAX_DEPTH)
        if ok:
            return value, marks
    node = compose(text)
    if node is None:
        return None, marks
    _check_shape(node)
    return _Walker(marks, soft_duplicates).value(node), marks


def check_items(text: str) -> None:
    """Refuse a document with more than MAX_ITEMS lines and flow items, before parsing it."""
    # Cheap upper bound on what parsing would allocate, counted in C before any parsing starts.
    items = text.count("\n") + text.count(",") + text.count("[") + text.count("{")
    if items > MAX_ITEMS:
        raise YamlProblem(
            0,
            f"the file has {items:,} lines and list items, over the {MAX_ITEMS:,} limit",
            "split the users across several files (e.g. one per country)",
        )


class _Walker:
    def __init__(self, marks: Marks, soft_duplicates: bool = False) -> None:
        self.marks = marks
        self.soft_duplicates = soft_duplicates

    def value(self, node: Node, depth: int = 1) -> Any:
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if depth > MAX_DEPTH:  # aliases can nest a deep subtree under another one
            raise YamlProblem(
                node.start_mark.line + 1, f"nesting is deeper than {MAX_DEPTH} levels", "a manifest is at most a few levels deep"
            )
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise _bad_tag(node)
            items: list[Any] = []
            lines: list[int] = []
            for child in node.value:
                items.append(self.value(child, depth + 1))
                lines.append(child.start_mark.line + 1)
            self.marks.seqs[id(items)] = (node.start_mark.line + 1, lines)
            self.marks.keep.append(items)
            return items
        if isinstance(node, MappingNode):
            if node.tag != _MAP:
                raise _bad_tag(node)
            out: dict[Any, Any] = {}
            lines_map: dict[Any, tuple[int, int]] = {}
            merged: list[tuple[Any, Any, tuple[int, int]]] = []
            for knode, vnode in node.value:
                if knode.tag == _MERGE:
                    merged.extend(self.merge_sources(vnode, depth))
                    continue
                key = self.value(knode)
                if isinstance(key, (dict, list)):
                    raise YamlProblem(knode.start_mark.line + 1, "a mapping key must be a plain value", "use a name as key")
                if key in out:
                    twice = (knode.start_mark.line + 1,
                             f"key '{key}' appears twice in this mapping (first at line {lines_map[key][0]})",
                             "remove one of them")
                    if not self.soft_duplicates:
                        raise YamlProblem(*twice)
                    self.marks.duplicates.append(twice)
                    continue
                out[key] = self.value(vnode, depth + 1)
                lines_map[key] = (knode.start_mark.line + 1, vnode.start_mark.line + 1)
            for key, val, kl in merged:  # explicit keys win over merged ones (YAML merge semantics)
                if key not in out:
                    out[key] = val
                    lines_map[key] = kl
            self.marks.maps[id(out)] = (node.start_mark.line + 1, lines_map)
            self.marks.keep.append(out)
            return out
        raise _bad_tag(node)  # pragma: no cover - compose yields only the three node kinds

    def merge_sources(self, vnode: Node, depth: int) -> list[tuple[Any, Any, tuple[int, int]]]:
        sources = vnode.value if isinstance(vnode, SequenceNode) else [vnode]
        out: list[tuple[Any, Any, tuple[int, int]]] = []
        for src in sources:
            if not isinstance(src, MappingNode):
                raise YamlProblem(src.start_mark.line + 1, "'<<' merges only mappings", "merge a mapping ('<<: *anchor')")
            merged = self.value(src, depth)
            lines = self.marks.maps[id(merged)][1]
            for k, v in merged.items():
                out.append((k, v, lines[k]))
        return out

    def scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return node.value.lower() == "true"
        try:
            if tag == _INT:
                return _CTOR.construct_yaml_int(node)
            if tag == _FLOAT:
                return _CTOR.construct_yaml_float(node)
        except (ConstructorError, ValueError):
            raise YamlProblem(node.start_mark.line + 1, f"'{node.value}' is not a valid number", "fix the value") from None
        if tag == _TIMESTAMP:
            return node.value  # keep dates as written; no manifest field is a date
        raise _bad_tag(node)


def _bad_tag(node: Node) -> YamlProblem:
    return YamlProblem(
        node.start_mark.line + 1,
        f"the YAML tag '{node.tag}' is not allowed (manifests are read safely: no objects, no custom tags)",
        "remove the tag",
    )
