"""The shape of one manifest file: keys, types, required fields. Pure.

This is the fast path of `ManifestModel` (model.py): the same keys, types and nullability, checked by hand
because pydantic per-entry validation of 100,000 users costs seconds. Tests assert both accept the same
documents and that the key sets are identical, so the JSON Schema (from the model) and this stay in step.
Every problem is collected (never the first only), each with its line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.manifest.safeyaml import Marks
from provisioner.manifest.suggest import did_you_mean
from provisioner.model.desired import API_VERSION, KIND

if TYPE_CHECKING:
    from provisioner.manifest.fastusers import UsersBlock

Problem = tuple[int, str, str | None]  # line, message, hint

# The kinds of value a manifest field takes (each also accepts null, except where `required`).
STR, BOOL, COUNT, UNLISTED, FUNDING = "str", "bool", "count", "unlisted", "funding"
_ENUMS = {UNLISTED: ("ignore", "remove"), FUNDING: ("communicationsCredits", "postUsage")}

TOP_FIELDS: dict[str, str] = {
    "apiVersion": STR,
    "kind": STR,
    "tenant": STR,
    "catalog": STR,
    "policy": "policy",
    "defaults": "defaults",
    "users": "users",
}
POLICY_FIELDS: dict[str, str] = {"unlisted": UNLISTED, "maxRemovals": COUNT, "paygFunding": FUNDING, "phoneSystemSku": STR}
DEFAULT_FIELDS: dict[str, str] = {
    "usageLocation": STR,
    "callingPlan": STR,
    "phoneSystem": BOOL,
    "communicationsCredits": BOOL,
}
USER_FIELDS: dict[str, str] = {"upn": STR, **DEFAULT_FIELDS}


@dataclass(slots=True)
class UserEntry:
    """One `users:` item as written: explicit keys only (a key set to null is present, with None).

    `fields` holds the valid keys (upn included; invalid ones were reported and left out); `lines` maps
    each key to its (key line, value line).
    """

    upn: str
    line: int
    fields: dict[str, Any]
    lines: dict[Any, tuple[int, int]]

    def line_of(self, key: str) -> int:
        """The value line of `key`, else the entry's own line (for a field taken from defaults)."""
        kv = self.lines.get(key)
        return kv[1] if kv else self.line


@dataclass
class FileManifest:
    """One file after the shape check: values with their lines; `problems` lists everything wrong."""

    path: str
    tenant: tuple[str, int] | None = None
    catalog: tuple[str, int] | None = None
    policy: dict[str, tuple[Any, int]] = field(default_factory=dict)
    defaults: dict[str, tuple[Any, int]] = field(default_factory=dict)
    users: list[UserEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # The users when `fastusers` read them (then `users` is empty): all valid as far as this module checks.
    block: UsersBlock | None = None


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _value_problem(name: str, kind: str, value: Any) -> tuple[str, str | None] | None:
    """Why `value` is not a valid `kind` (None when it is). `value` is never None here."""
    if kind == STR:
        if not isinstance(value, str):
            return f"{name} must be a string, not {_describe(value)}", "quote the value"
        if not value.strip():
            return f"{name} must not be empty", "write a value or remove the key"
        return None
    if kind == BOOL:
        if not isinstance(value, bool):
            return f"{name} must be true or false, not {_describe(value)}", "write true or false (yes/no are not booleans)"
        return None
    if kind == COUNT:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{name} must be a whole number >= 0, not {_describe(value)}", None
        return None
    options = _ENUMS[kind]
    if value not in options:
        hint = did_you_mean(value, options) if isinstance(value, str) else None
        return (
            f"{name} must be {' or '.join(options)}, not {_describe(value)}",
            hint or f"use one of: {', '.join(options)}",
        )
    return None


def _unknown_key(key: Any, allowed: dict[str, str], where: str) -> tuple[str, str]:
    hint = did_you_mean(str(key), allowed)
    return (
        f"unknown key '{key}' in {where}",
        hint or f"allowed keys: {', '.join(allowed)}",
    )


def check_file(path: str, raw: Any, marks: Marks) -> FileManifest:
    """Check one parsed file (value and line marks from `safeyaml`) and keep what is usable."""
    fm = FileManifest(path=path)
    add = fm.problems.append
    if raw is None:
        add((1, "the file is empty", f"a manifest starts with 'apiVersion: {API_VERSION}' and 'kind: {KIND}'"))
        return fm
    if not isinstance(raw, dict):
        add((marks.container_line(raw) or 1, f"a manifest is a mapping (apiVersion:, kind:, users:), not {_describe(raw)}", None))
        return fm
    top_line = marks.container_line(raw) or 1
    for key in raw:
        if key not in TOP_FIELDS:
            msg, hint = _unknown_key(key, TOP_FIELDS, "the manifest")
            add((marks.key_line(raw, key), msg, hint))
    for key, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        if key not in raw:
            add((top_line, f"missing {key}", f"add '{key}: {expected}' at the top of the file"))
        elif raw[key] != expected:
            add((marks.value_line(raw, key), f"{key} must be {expected}, not {_describe(raw[key])}", f"write '{key}: {expected}'"))
    for key in ("tenant", "catalog"):
        value = raw.get(key)
        if value is None:
            continue
        bad = _value_problem(key, STR, value)
        if bad:
            add((marks.value_line(raw, key), *bad))
        else:
            setattr(fm, key, (value.strip(), marks.value_line(raw, key)))
    fm.policy = _section(raw, "policy", POLICY_FIELDS, marks, add)
    fm.defaults = _section(raw, "defaults", DEFAULT_FIELDS, marks, add)
    users = raw.get("users")
    if users is None:
        return fm
    if not isinstance(users, list):
        add((marks.value_line(raw, "users"), f"users must be a list of user entries, not {_describe(users)}", "write '- upn: name@domain' items"))
        return fm
    item_lines = marks.seqs.get(id(users), (0, []))[1]
    fm.users = _users(users, item_lines, marks, add)
    return fm


def _section(
    raw: dict[str, Any], name: str, spec: dict[str, str], marks: Marks, add: Callable[[Problem], None]
) -> dict[str, tuple[Any, int]]:
    """policy: / defaults: — a mapping of optional fields; returns the non-null valid ones with their lines."""
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        add((marks.value_line(raw, name), f"{name} must be a mapping, not {_describe(value)}", None))
        return {}
    out: dict[str, tuple[Any, int]] = {}
    for key, v in value.items():
        if key not in spec:
            msg, hint = _unknown_key(key, spec, name)
            add((marks.key_line(value, key), msg, hint))
            continue
        if v is None:
            continue
        line = marks.value_line(value, key)
        bad = _value_problem(f"{name}.{key}", spec[key], v)
        if bad:
            add((line, *bad))
        else:
            out[key] = (v, line)
    return out


def _users(users: list[Any], item_lines: list[int], marks: Marks, add: Callable[[Problem], None]) -> list[UserEntry]:
    out: list[UserEntry] = []
    maps = marks.maps
    spec = USER_FIELDS
    for i, item in enumerate(users):
        line = item_lines[i] if i < len(item_lines) else 0
        if type(item) is not dict:
            add((line, f"each entry of users must be a mapping with upn:, not {_describe(item)}", "write '- upn: name@domain'"))
            continue
        entry = maps.get(id(item))
        key_lines: dict[Any, tuple[int, int]] = entry[1] if entry else {}
        fields: dict[str, Any] = item
        for key, value in item.items():
            kind = spec.get(key)
            # The common case first, inline: a valid value (this loop runs 300,000 times for 100k users).
            if kind is STR:
                if (type(value) is str and value.strip()) or (value is None and key != "upn"):
                    continue
            elif kind is BOOL and (value is None or type(value) is bool):
                continue
            if fields is item:
                fields = dict(item)  # keep the parsed value intact; drop bad fields from a copy
            del fields[key]
            kv = key_lines.get(key, (line, line))
            if kind is None:
                msg, hint = _unknown_key(key, spec, "a user entry")
                add((kv[0], msg, hint))
            elif value is None:
                add((kv[1], "upn must not be null", "write 'upn: name@domain'"))
            else:
                add((kv[1], *(_value_problem(key, kind, value) or ("invalid value", None))))
        upn = fields.get("upn")
        if upn is None:
            if "upn" not in item:
                add((line, "a user entry without upn", "add 'upn: name@domain' to this entry"))
            continue
        upn = upn.strip()
        local, at, domain = upn.partition("@")
        if not at or not local or not domain or "@" in domain or " " in upn:
            add((key_lines.get("upn", (line, line))[1], f"upn '{upn}' is not a user principal name",
                 "write it as name@domain, e.g. alice@contoso.com"))
        # An entry with bad fields is kept (without them) so duplicates and the other fields are still checked.
        out.append(UserEntry(upn, line, fields, key_lines))
    return out
