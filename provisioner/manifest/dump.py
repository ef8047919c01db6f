"""Desired users back to manifest YAML (for `provision export` and round-trip tests). Pure.

The output is deterministic (users sorted by UPN, keys in a fixed order) and reads back, with
`load_desired`, to the same users, policy and tenant: omitted stays omitted, and a user field that is
None where `defaults` sets a value is written as an explicit `null` so the default does not fill it in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from yaml.nodes import ScalarNode

from provisioner.model.desired import API_VERSION, KIND, DesiredUser, Policy

SCHEMA_LINE = "# yaml-language-server: $schema=./schema.json"
_USER_KEYS = (
    ("usageLocation", "usage_location"),
    ("callingPlan", "calling_plan"),
    ("phoneSystem", "phone_system"),
    ("communicationsCredits", "communications_credits"),
)
_POLICY_KEYS = (
    ("unlisted", "unlisted"),
    ("maxRemovals", "max_removals"),
    ("paygFunding", "payg_funding"),
    ("phoneSystemSku", "phone_system_sku"),
)
# A YAML 1.1 resolver: quote any string another tool (YAML 1.1: NO = false) could read as a non-string.
_RESOLVER = yaml.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"


def scalar(value: Any) -> str:
    """One value as a YAML scalar that every YAML 1.1/1.2 reader takes back as the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    plain_ok = (
        text != ""
        and text == text.strip()
        and text[0] not in "-?:,[]{}#&*!|>'\"%@`"
        and ": " not in text
        and " #" not in text
        and not text.endswith(":")
        and all(c.isprintable() for c in text)
        and _RESOLVER.resolve(ScalarNode, text, (True, False)) == _STR
        and text.lower() not in {"yes", "no", "on", "off", "y", "n", "true", "false"}
    )
    return text if plain_ok else json.dumps(text, ensure_ascii=False)


def dump_manifest(
    users: Iterable[DesiredUser],
    *,
    tenant: str | None = None,
    policy: Policy | None = None,
    defaults: Mapping[str, Any] | None = None,
    comments: Mapping[str, str] | None = None,
    header: str | None = None,
    schema_line: bool = True,
) -> str:
    """A manifest (YAML text) declaring `users`.

    users: DesiredUser objects; each field that is not None is written (None = omitted, not managed).
    tenant: written as `tenant:` when given.
    policy: written in full (all four keys) when given.
    defaults: YAML keys (usageLocation, callingPlan, phoneSystem, communicationsCredits) -> value, written
        as `defaults:`; user fields equal to the default are still written, so a reader sees each user whole.
    comments: UPN (any case) -> a comment written above that user's entry (may span lines).
    header: comment lines for the top of the file (without '#').
    schema_line: start with the `# yaml-language-server: $schema=./schema.json` line for editors.
    """
    out: list[str] = []
    if schema_line:
        out.append(SCHEMA_LINE)
    if header:
        out.extend(_comment(header, ""))
    out += [f"apiVersion: {API_VERSION}", f"kind: {KIND}"]
    if tenant is not None:
        out.append(f"tenant: {scalar(tenant)}")
    if policy is not None:
        out.append("policy:")
        out += [f"  {key}: {scalar(getattr(policy, attr))}" for key, attr in _POLICY_KEYS]
    defaults = {k: v for k, v in (defaults or {}).items() if v is not None}
    unknown = set(defaults) - {k for k, _ in _USER_KEYS}
    if unknown:
        raise ValueError(f"unknown defaults keys: {', '.join(sorted(unknown))}")
    if defaults:
        out.append("defaults:")
        out += [f"  {key}: {scalar(defaults[key])}" for key, _ in _USER_KEYS if key in defaults]
    notes = {k.lower(): v for k, v in (comments or {}).items()}
    ordered = sorted(users, key=lambda u: u.key)
    if not ordered:
        out.append("users: []")
        return "\n".join(out) + "\n"
    out.append("users:")
    for user in ordered:
        note = notes.get(user.key)
        if note:
            out.extend(_comment(note, "  "))
        out.append(f"  - upn: {scalar(user.upn)}")
        for key, attr in _USER_KEYS:
            value = getattr(user, attr)
            if value is None and key not in defaults:
                continue
            out.append(f"    {key}: {scalar(value)}")
    return "\n".join(out) + "\n"


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}".rstrip() for line in text.splitlines() or [""]]
