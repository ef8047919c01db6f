"""Writes an `Export` as manifest YAML (CONTRACT §2), with the comments a reviewer needs. Pure.

Hand-formatted rather than `yaml.safe_dump`, because comments (group-only users, notes) are part of the
output; every scalar still goes through PyYAML's quoting, so `NO` (Norway) stays a string.
"""

from __future__ import annotations

import yaml

from provisioner.export.build import Export, ExportEntry

API_VERSION = "provisioner/v1"
KIND = "TeamsVoiceLicensing"
NO_LOCATION_FILE = "no-usage-location.yaml"


def scalar(value: str | bool) -> str:
    """A YAML scalar that reads back as exactly `value` (quoted only when needed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True)
    return text.removesuffix("\n...\n").rstrip("\n")


def render_manifest(export: Export, *, country: str | None = None, split: bool = False) -> str:
    """The manifest text. `split`: this file is one country of a `--split-by country` export."""
    n_entries, n_group = len(export.entries), len(export.group_only)
    where = f" (users with usage location {country})" if split and country else ""
    if split and country is None:
        where = " (users without a usage location)"
    lines = [
        f"# Exported by `provision export` from tenant {export.tenant.display_name} ({export.tenant.id}){where}.",
        f"# {n_entries} user{_s(n_entries)} holding managed licenses directly; "
        f"{n_group} licensed only through groups (listed at the end, not managed here).",
        "# Planning this file against the same tenant shows no changes. Edit it, then run `provision plan`.",
    ]
    lines += [f"# {note}" for note in export.notes]
    lines += [
        f"apiVersion: {API_VERSION}",
        f"kind: {KIND}",
        f"tenant: {scalar(export.tenant.id)}",
        "policy:",
        "  unlisted: ignore  # users declared nowhere keep their licenses; `remove` would take them away",
    ]
    if export.payg_funding is not None:
        lines.append(f"  paygFunding: {scalar(export.payg_funding)}")
    default = export.default_usage_location
    if default is not None:
        lines += ["defaults:", f"  usageLocation: {scalar(default)}"]
    if export.entries:
        lines.append("users:")
        for entry in export.entries:
            lines += _entry_lines(entry, default)
    else:
        lines.append("users: []")
    if export.group_only:
        lines.append("")
        lines.append(
            "# Licensed only through groups (change the group, or add an entry to manage them directly):"
        )
        for g in export.group_only:
            loc = f" [{g.usage_location}]" if g.usage_location else " [no usage location]"
            held = "; ".join(f"{part} from {', '.join(groups)}" for part, groups in g.licenses)
            lines.append(f"#   {g.upn}{loc}: {held}")
    return "\n".join(lines) + "\n"


def _entry_lines(entry: ExportEntry, default_location: str | None) -> list[str]:
    out = [f"  # {note}" for note in entry.notes]
    out.append(f"  - upn: {scalar(entry.upn)}")
    if entry.usage_location is None and default_location is not None:
        out.append("    usageLocation: null  # none in the tenant: not managed (the default does not apply)")
    elif entry.usage_location is not None and entry.usage_location != default_location:
        out.append(f"    usageLocation: {scalar(entry.usage_location)}")
    if entry.phone_system is not None:
        out.append(f"    phoneSystem: {scalar(entry.phone_system)}")
    if entry.calling_plan is not None:
        out.append(f"    callingPlan: {scalar(entry.calling_plan)}")
    if entry.communications_credits is not None:
        out.append(f"    communicationsCredits: {scalar(entry.communications_credits)}")
    return out


def split_by_country(export: Export) -> dict[str, str]:
    """File name -> manifest text, one file per usage location (`us.yaml`, `gb.yaml`, ...), sorted by name."""
    files: dict[str, str] = {}
    for country in export.locations():
        name = f"{country.lower()}.yaml" if country else NO_LOCATION_FILE
        files[name] = render_manifest(export.for_country(country), country=country, split=True)
    return dict(sorted(files.items()))


def _s(n: int) -> str:
    return "" if n == 1 else "s"
