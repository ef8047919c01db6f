"""What `provision export` writes, decided from an Observed snapshot and the catalog. Pure (no I/O).

Invariant (the round trip): a manifest made of these entries, planned against the same tenant, has no
actions. So a field is only written when the planner would read it back as "keep what is there"; anything
the manifest format cannot say exactly (two Calling Plans, a plan that comes from a group) is left out
(omitted = not managed) and explained in a note instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provisioner.model.observed import Observed, Sku, TenantInfo, User

if TYPE_CHECKING:
    from provisioner.catalog import Catalog

CALLING_PLAN, PHONE_SYSTEM, CREDITS = "callingPlan", "phoneSystem", "credits"


@dataclass(frozen=True)
class ExportEntry:
    """One `users:` entry. None on a field means "omit it" (not managed: the tool leaves it as it is)."""

    upn: str
    usage_location: str | None
    calling_plan: str | None
    phone_system: bool | None = None
    communications_credits: bool | None = None
    notes: tuple[str, ...] = ()  # comment lines written above the entry


@dataclass(frozen=True)
class GroupOnlyUser:
    """A user who holds managed licenses only through groups: written as a comment, never as an entry."""

    upn: str
    usage_location: str | None
    licenses: tuple[tuple[str, tuple[str, ...]], ...]  # (skuPartNumber, group labels), sorted


@dataclass(frozen=True)
class Export:
    """The whole export: entries and group-only users sorted by lower-case UPN."""

    tenant: TenantInfo
    entries: tuple[ExportEntry, ...]
    group_only: tuple[GroupOnlyUser, ...]
    notes: tuple[str, ...] = ()  # tenant-wide remarks for the file header
    # The most common usage location of the entries, lifted into `defaults` (None: not lifted).
    default_usage_location: str | None = None

    def for_country(self, country: str | None) -> Export:
        """The part of this export whose users have this usage location (None: users without one)."""
        entries = tuple(e for e in self.entries if e.usage_location == country)
        return Export(
            tenant=self.tenant,
            entries=entries,
            group_only=tuple(g for g in self.group_only if g.usage_location == country),
            notes=self.notes,
            default_usage_location=_most_common_location(entries),
        )

    def locations(self) -> list[str | None]:
        """Every usage location present (entries or group-only users), sorted, None (no location) last."""
        seen = {e.usage_location for e in self.entries} | {g.usage_location for g in self.group_only}
        return sorted(seen, key=lambda c: (c is None, c or ""))


def classify(skus: Iterable[Sku], catalog: Catalog) -> dict[str, tuple[str, str | None]]:
    """sku id -> (kind, plan id) for every SKU the tool manages (Phone System add-on, Calling Plan, credits)."""
    out: dict[str, tuple[str, str | None]] = {}
    for s in skus:
        cls = catalog.classify_sku(s.part_number, [p.name for p in s.service_plans])
        if cls is not None:
            out[s.sku_id] = cls
    return out


def managed_sku_ids(skus: Iterable[Sku], catalog: Catalog) -> list[str]:
    """The ids of the managed SKUs, sorted: what the Graph reader filters users by."""
    return sorted(classify(skus, catalog))


def build_export(
    observed: Observed, catalog: Catalog, group_names: Mapping[str, str] | None = None
) -> Export:
    """Every user holding a managed license directly becomes an entry; group-only holders become comments."""
    kinds = classify(observed.skus, catalog)
    skus = observed.sku_by_id()
    names = dict(group_names or {})
    part_counts = Counter(s.part_number.upper() for s in observed.skus)

    entries: list[ExportEntry] = []
    group_only: list[GroupOnlyUser] = []
    for key in sorted(observed.users):
        user = observed.users[key]
        direct = sorted(s for s in user.direct_sku_ids if s in kinds)
        inherited = sorted({a.sku_id for a in user.assignments if a.by_group and a.sku_id in kinds})
        if direct:
            entries.append(_entry(user, direct, inherited, kinds, skus, catalog, names, part_counts))
        elif inherited:
            group_only.append(
                GroupOnlyUser(
                    upn=user.upn,
                    usage_location=user.usage_location,
                    licenses=tuple(
                        sorted(
                            (_part(skus, s), tuple(_group_label(g, names) for g in user.inherited_from(s)))
                            for s in inherited
                        )
                    ),
                )
            )
    notes: list[str] = []
    if not observed.complete_for_managed:
        notes.append("WARNING: the tenant read was not complete for managed SKUs; some users may be missing.")
    return Export(
        tenant=observed.tenant,
        entries=tuple(entries),
        group_only=tuple(group_only),
        notes=tuple(notes),
        default_usage_location=_most_common_location(entries),
    )


def _entry(
    user: User,
    direct: list[str],
    inherited: list[str],
    kinds: Mapping[str, tuple[str, str | None]],
    skus: Mapping[str, Sku],
    catalog: Catalog,
    group_names: Mapping[str, str],
    part_counts: Mapping[str, int],
) -> ExportEntry:
    notes: list[str] = []
    if user.account_enabled is False:
        notes.append("account disabled")
    plans = [s for s in direct if kinds[s][0] == CALLING_PLAN]
    addons = [s for s in direct if kinds[s][0] == PHONE_SYSTEM]
    credits = [s for s in direct if kinds[s][0] == CREDITS]
    inherited_plans = [s for s in inherited if kinds[s][0] == CALLING_PLAN]

    calling_plan: str | None
    if len(plans) > 1:
        # The format names one Calling Plan per user: leave them all unmanaged rather than plan a removal.
        calling_plan = None
        notes.append(
            "holds several Calling Plans directly ("
            + ", ".join(sorted(_part(skus, s) for s in plans))
            + "): callingPlan left unmanaged; keep one and declare it"
        )
    elif plans:
        calling_plan = _plan_id_for(skus[plans[0]], kinds[plans[0]][1], user.usage_location, catalog)
        if calling_plan.startswith("sku:") and part_counts.get(skus[plans[0]].part_number.upper(), 0) > 1:
            notes.append(
                f"{part_counts[skus[plans[0]].part_number.upper()]} SKUs in the tenant share this part number"
            )
    elif inherited_plans:
        # `none` would ask for a removal the planner cannot make (inherited-license): leave it unmanaged.
        calling_plan = None
        notes.append(
            "Calling Plan from a group: " + _inherited_text(user, inherited_plans, skus, group_names)
        )
    else:
        calling_plan = "none"

    phone_system: bool | None = None
    if addons and calling_plan in (None, "none"):
        phone_system = True  # a Direct Routing user (or one whose plan is unmanaged): keep the add-on
    communications_credits: bool | None = True if credits else None
    if not credits and _is_payg(calling_plan, plans, kinds):
        # payg implies credits under the default policy; say "false" so the export keeps what is there.
        communications_credits = False
        notes.append(
            "payg without Communications Credits: set communicationsCredits: true to fund outgoing calls"
        )

    other_inherited = [s for s in inherited if s not in inherited_plans]
    if other_inherited:
        notes.append("also from a group: " + _inherited_text(user, other_inherited, skus, group_names))
    return ExportEntry(
        upn=user.upn,
        usage_location=user.usage_location,
        calling_plan=calling_plan,
        phone_system=phone_system,
        communications_credits=communications_credits,
        notes=tuple(notes),
    )


def _plan_id_for(sku: Sku, plan_id: str | None, country: str | None, catalog: Catalog) -> str:
    """The plan id that the planner resolves back to this SKU in `country`, else `sku:<skuPartNumber>`."""
    if plan_id is not None and country:
        offer = catalog.offer_for(plan_id, country)
        if offer is not None and catalog.sku_matches_offer(
            offer, sku.part_number, [p.name for p in sku.service_plans]
        ):
            return plan_id
    return f"sku:{sku.part_number}"


def _is_payg(calling_plan: str | None, plans: list[str], kinds: Mapping[str, tuple[str, str | None]]) -> bool:
    if calling_plan == "payg":
        return True
    return bool(calling_plan and calling_plan.startswith("sku:") and plans and kinds[plans[0]][1] == "payg")


def _inherited_text(
    user: User, sku_ids: list[str], skus: Mapping[str, Sku], group_names: Mapping[str, str]
) -> str:
    parts = []
    for s in sorted(sku_ids, key=lambda s: _part(skus, s)):
        groups = ", ".join(_group_label(g, group_names) for g in user.inherited_from(s))
        parts.append(f"{_part(skus, s)} from {groups}")
    return "; ".join(parts)


def _group_label(group_id: str, group_names: Mapping[str, str]) -> str:
    name = group_names.get(group_id)
    return f'group "{name}" ({group_id})' if name else f"group {group_id}"


def _part(skus: Mapping[str, Sku], sku_id: str) -> str:
    sku = skus.get(sku_id)
    return sku.part_number if sku else sku_id


def _most_common_location(entries: Iterable[ExportEntry]) -> str | None:
    """The most common usage location (ties: alphabetical), or None when some entry has none to inherit."""
    counts: Counter[str] = Counter()
    for e in entries:
        if e.usage_location is None:
            return None  # a default would fill in a location this user does not have: a change
        counts[e.usage_location] += 1
    if not counts:
        return None
    return min(counts, key=lambda c: (-counts[c], c))
