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
from provisioner.planner.tenant import INACTIVE_STATES

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
    payg_funding: str | None = None  # written to policy.paygFunding when set

    def for_country(self, country: str | None) -> Export:
        """The part of this export whose users have this usage location (None: users without one)."""
        entries = tuple(e for e in self.entries if e.usage_location == country)
        return Export(
            tenant=self.tenant,
            entries=entries,
            group_only=tuple(g for g in self.group_only if g.usage_location == country),
            notes=self.notes,
            default_usage_location=_most_common_location(entries),
            payg_funding=self.payg_funding,
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
    ctx = _Context(kinds, observed.sku_by_id(), catalog, dict(group_names or {}))
    post_usage = _tenant_pays_after_use(observed, ctx)

    entries: list[ExportEntry] = []
    group_only: list[GroupOnlyUser] = []
    for key in sorted(observed.users):
        user = observed.users[key]
        direct = sorted(s for s in user.direct_sku_ids if s in kinds)
        inherited = sorted({a.sku_id for a in user.assignments if a.by_group and a.sku_id in kinds})
        if direct:
            entries.append(_entry(user, direct, inherited, ctx, post_usage))
        elif inherited:
            group_only.append(
                GroupOnlyUser(
                    upn=user.upn,
                    usage_location=user.usage_location,
                    licenses=tuple(
                        sorted(
                            (ctx.part(s), tuple(ctx.group_label(g) for g in user.inherited_from(s)))
                            for s in inherited
                        )
                    ),
                )
            )
    notes: list[str] = []
    if not observed.complete_for_managed:
        notes.append("WARNING: the tenant read was not complete for managed SKUs; some users may be missing.")
    if post_usage:
        notes.append(
            "No Pay-As-You-Go user holds Communications Credits, so this export sets policy.paygFunding: "
            "postUsage (new commerce billing). Change it if your tenant funds PAYG with credits."
        )
    return Export(
        tenant=observed.tenant,
        entries=tuple(entries),
        group_only=tuple(group_only),
        notes=tuple(notes),
        default_usage_location=_most_common_location(entries),
        payg_funding="postUsage" if post_usage else None,
    )


@dataclass(frozen=True)
class _Context:
    kinds: Mapping[str, tuple[str, str | None]]
    skus: Mapping[str, Sku]
    catalog: Catalog
    group_names: Mapping[str, str]

    def part(self, sku_id: str) -> str:
        sku = self.skus.get(sku_id)
        return sku.part_number if sku else sku_id

    def group_label(self, group_id: str) -> str:
        name = self.group_names.get(group_id)
        return f'group "{name}" ({group_id})' if name else f"group {group_id}"

    def inherited_text(self, user: User, sku_ids: list[str]) -> str:
        parts = []
        for s in sorted(sku_ids, key=self.part):
            groups = ", ".join(self.group_label(g) for g in user.inherited_from(s))
            parts.append(f"{self.part(s)} from {groups}")
        return "; ".join(parts)

    def kind_of(self, sku_ids: Iterable[str], kind: str) -> list[str]:
        return [s for s in sku_ids if self.kinds[s][0] == kind]


def _tenant_pays_after_use(observed: Observed, ctx: _Context) -> bool:
    """True when there are PAYG users and none holds Communications Credits (directly or by group).

    Then the tenant evidently bills PAYG after use (new commerce), and `paygFunding: postUsage` says so;
    exporting the default (communicationsCredits) would make every PAYG entry plan a credits license.
    """
    payg_users = funded = 0
    for user in observed.users.values():
        plans = ctx.kind_of(sorted(user.direct_sku_ids & ctx.kinds.keys()), CALLING_PLAN)
        if len(plans) == 1 and ctx.kinds[plans[0]][1] == "payg":
            payg_users += 1
            funded += bool(ctx.kind_of(sorted(user.all_sku_ids & ctx.kinds.keys()), CREDITS))
    return payg_users > 0 and funded == 0


def _entry(
    user: User, direct: list[str], inherited: list[str], ctx: _Context, post_usage: bool
) -> ExportEntry:
    notes: list[str] = []
    if user.account_enabled is False:
        notes.append("account disabled")
    plans = ctx.kind_of(direct, CALLING_PLAN)
    addons = ctx.kind_of(direct, PHONE_SYSTEM)
    credits = ctx.kind_of(direct, CREDITS)
    inherited_plans = ctx.kind_of(inherited, CALLING_PLAN)
    funded_by_group = bool(ctx.kind_of(inherited, CREDITS))

    calling_plan: str | None = None  # unmanaged unless set below
    if len(plans) > 1:
        # The format names one Calling Plan per user: leave them all unmanaged rather than plan a removal.
        notes.append(
            "holds several Calling Plans directly ("
            + ", ".join(sorted(ctx.part(s) for s in plans))
            + "): callingPlan left unmanaged; keep one and declare it"
        )
    elif plans:
        calling_plan, why_not = _plan_value(
            ctx.skus[plans[0]], ctx.kinds[plans[0]][1], user.usage_location, ctx
        )
        if why_not:
            notes.append(why_not)
        elif (
            calling_plan is not None
            and _is_payg(calling_plan, plans, ctx.kinds)
            and not (credits or funded_by_group or post_usage)
        ):
            # payg implies credits (paygFunding: communicationsCredits) and `false` is refused with payg.
            notes.append(
                f"{ctx.part(plans[0])} (payg) without Communications Credits: callingPlan left unmanaged; "
                "declare callingPlan: payg to have credits assigned"
            )
            calling_plan = None
        if calling_plan not in (None, "none") and not _has_phone_system(user, ctx):
            # A Calling Plan with no enabled Phone System (MCOPSTN1 alone, or an E5 with Phone System switched
            # off): declaring the plan implies phoneSystem: true, which would plan an add; the state as it is
            # cannot be declared (phoneSystem: false with a Calling Plan is invalid), so leave it unmanaged.
            notes.append(
                f"holds {ctx.part(plans[0])} without an enabled Phone System (Graph refuses this user's license "
                f"changes until that is fixed): callingPlan left unmanaged; declare callingPlan: {calling_plan} "
                "to have Phone System added, or none to remove the plan"
            )
            calling_plan = None
    elif inherited_plans:
        # `none` would ask for a removal the planner cannot make (inherited-license): leave it unmanaged.
        notes.append("Calling Plan from a group: " + ctx.inherited_text(user, inherited_plans))
    else:
        calling_plan = "none"

    phone_system: bool | None = None
    if addons and calling_plan in (None, "none"):
        phone_system = True  # a Direct Routing user (or one whose plan is unmanaged): keep the add-on
    other_inherited = [s for s in inherited if s not in inherited_plans]
    if other_inherited:
        notes.append("also from a group: " + ctx.inherited_text(user, other_inherited))
    return ExportEntry(
        upn=user.upn,
        usage_location=user.usage_location,
        calling_plan=calling_plan,
        phone_system=phone_system,
        communications_credits=True if credits else None,
        notes=tuple(notes),
    )


def _has_phone_system(user: User, ctx: _Context) -> bool:
    """Whether some assignment that counts (direct, or from a group not in error) leaves a Phone System service
    plan enabled (the catalog's: MCOEV and its variants, not the resource account's MCOEV_VIRTUALUSER)."""
    for a in user.assignments:
        if a.by_group is not None and a.state in INACTIVE_STATES:
            continue  # a group copy in error gives nothing
        sku = ctx.skus.get(a.sku_id)
        if sku is not None and any(
            ctx.catalog.is_phone_system_service_plan(p.name) and p.id not in a.disabled_plans for p in sku.service_plans
        ):
            return True  # one assignment that leaves a Phone System plan enabled is enough
    return False


def _plan_value(
    sku: Sku, plan_id: str | None, country: str | None, ctx: _Context
) -> tuple[str | None, str | None]:
    """(callingPlan value, None), or (None, why it is left unmanaged).

    The plan id when the planner resolves it back to this SKU in `country`; `sku:<part>` when another tenant
    SKU with a different part number provides the same offer there (pins the one held). A SKU the catalog
    does not sell in the user's country cannot be declared (validate refuses it), so it stays unmanaged.
    """
    names = [p.name for p in sku.service_plans]
    if plan_id is None:
        return None, f"{sku.part_number} is not a Calling Plan the catalog names: callingPlan left unmanaged"
    if not country:
        return None, f"holds {sku.part_number} but has no usage location: callingPlan left unmanaged"
    offer = ctx.catalog.offer_for(plan_id, country)
    if offer is None or not ctx.catalog.sku_matches_offer(offer, sku.part_number, names):
        return None, (
            f"holds {sku.part_number}, which the catalog does not sell in {country}: callingPlan left unmanaged"
        )
    by_part = sku.part_number.upper() in {p.upper() for p in offer.part_numbers}
    rivals = {
        s.part_number.upper()
        for s in ctx.skus.values()
        if s.sku_id != sku.sku_id
        and ctx.kinds.get(s.sku_id, ("", None))[0] == CALLING_PLAN
        and ctx.catalog.sku_matches_offer(offer, s.part_number, [p.name for p in s.service_plans])
    } - {sku.part_number.upper()}
    if by_part and rivals:
        return f"sku:{sku.part_number}", None
    return plan_id, None


def _is_payg(calling_plan: str | None, plans: list[str], kinds: Mapping[str, tuple[str, str | None]]) -> bool:
    if calling_plan == "payg":
        return True
    return bool(calling_plan and calling_plan.startswith("sku:") and plans and kinds[plans[0]][1] == "payg")


def _most_common_location(entries: Iterable[ExportEntry]) -> str | None:
    """The most common usage location of the entries (ties: alphabetical), None when none has one.

    Entries without a location are written as `usageLocation: null`, so the default does not fill it in.
    """
    counts = Counter(e.usage_location for e in entries if e.usage_location is not None)
    if not counts:
        return None
    return min(counts, key=lambda c: (-counts[c], c))
