"""Observed state: what the Graph reader saw in the tenant, as our own slim records. Pure data.

SKU ids and service plan ids are lower-case GUID strings. A user's `assignments` come from Graph's
`licenseAssignmentStates` (one entry per source: direct, or each group), so one SKU may appear twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class TenantInfo:
    id: str
    display_name: str
    verified_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServicePlan:
    id: str
    name: str
    applies_to: str | None = None
    provisioning_status: str | None = None


@dataclass(frozen=True)
class Sku:
    """A subscribed SKU. `consumed` is Graph's consumedUnits; free seats = enabled − consumed."""

    sku_id: str
    part_number: str
    capability_status: str  # Enabled | Warning | Suspended | Deleted | LockedOut
    enabled: int
    consumed: int
    suspended: int = 0
    warning: int = 0
    locked_out: int = 0
    service_plans: tuple[ServicePlan, ...] = ()

    @property
    def free(self) -> int:
        return self.enabled - self.consumed


class Assignment(NamedTuple):
    """One license assignment of a user: direct when `by_group` is None, else inherited from that group id.

    A NamedTuple, as User: a read builds one User per user (100,000 here), and a tuple of assignments hashes
    in C, so planning keys its per-shape work by `user.assignments` itself.
    """

    sku_id: str
    by_group: str | None = None
    disabled_plans: tuple[str, ...] = ()
    state: str | None = None  # Active | ActiveWithError | Disabled | Error
    error: str | None = None  # CountViolation | MutuallyExclusiveViolation | ... | None


class User(NamedTuple):
    """A user as read. Immutable; `_replace` makes a changed copy."""

    id: str
    upn: str
    display_name: str | None
    account_enabled: bool | None
    usage_location: str | None
    assignments: tuple[Assignment, ...] = ()

    @property
    def key(self) -> str:
        return self.upn.lower()

    @property
    def direct_sku_ids(self) -> frozenset[str]:
        return frozenset(a.sku_id for a in self.assignments if a.by_group is None)

    @property
    def all_sku_ids(self) -> frozenset[str]:
        return frozenset(a.sku_id for a in self.assignments)

    @property
    def direct_disabled_plans(self) -> dict[str, tuple[str, ...]]:
        """Directly assigned SKU -> the service plans its direct assignment disables (sorted); only SKUs with some."""
        return {a.sku_id: tuple(sorted(a.disabled_plans)) for a in self.assignments if a.by_group is None and a.disabled_plans}

    def inherited_from(self, sku_id: str) -> tuple[str, ...]:
        """Group ids this user inherits `sku_id` from, sorted (empty when not inherited)."""
        return tuple(sorted({a.by_group for a in self.assignments if a.sku_id == sku_id and a.by_group}))

    def disabled_plans_of(self, sku_id: str) -> frozenset[str]:
        """Service plans disabled in every assignment of `sku_id` (a plan enabled by any source is enabled)."""
        sets = [frozenset(a.disabled_plans) for a in self.assignments if a.sku_id == sku_id]
        if not sets:
            return frozenset()
        out = sets[0]
        for s in sets[1:]:
            out &= s
        return out


@dataclass(frozen=True)
class Observed:
    """A snapshot of what planning needs.

    users: keyed by lower-case UPN; holds every user named in the manifests that exists, and every user
    holding a managed SKU (directly or through a group) when `complete_for_managed` is True.
    holder_counts: on a partial read (`complete_for_managed` False), how many users hold each Calling Plan SKU
    (directly or through an active group assignment) per usage location: (country, sku_id) -> users, for every
    pair with a holder (a pair absent holds none). None when not read.
    """

    tenant: TenantInfo
    skus: tuple[Sku, ...]
    users: dict[str, User]
    complete_for_managed: bool = True
    holder_counts: dict[tuple[str, str], int] | None = None

    def sku_by_id(self) -> dict[str, Sku]:
        return {s.sku_id: s for s in self.skus}

    def skus_by_part_number(self, part_number: str) -> list[Sku]:
        """All SKUs with this part number (part numbers are not unique: two SKUs are both MCOPSTN5)."""
        return [s for s in self.skus if s.part_number.lower() == part_number.lower()]
