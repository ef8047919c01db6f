"""The Plan: frozen data produced by the planner and read by every renderer and by apply. Pure.

`to_dict()` is the promised JSON plan (CONTRACT §3, formatVersion 1) plus the extra keys apply needs
(`policy`, `preconditions`) and the per-user view renderers use (`users`). `from_dict()` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FORMAT_VERSION = 1

ActionType = Literal["setUsageLocation", "assignLicenses"]
Severity = Literal["error", "warning", "info"]

# Promised diagnostic codes (CONTRACT §3); the planner may add more, these spellings never change.
DIAGNOSTIC_CODES: tuple[str, ...] = (
    "user-not-found",
    "usage-location-required",
    "plan-not-available-in-country",
    "sku-not-in-tenant",
    "insufficient-seats",
    "subscription-not-active",
    "inherited-license",
    "payg-unfunded",
    "tenant-mismatch",
    "removal-limit",
    "duplicate-user",
)


@dataclass(frozen=True, order=True)
class LicenseRef:
    sku_id: str
    part_number: str

    def to_dict(self) -> dict[str, Any]:
        return {"skuId": self.sku_id, "skuPartNumber": self.part_number}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LicenseRef:
        return cls(sku_id=str(d["skuId"]).lower(), part_number=str(d["skuPartNumber"]))


@dataclass(frozen=True)
class Action:
    """One Graph write. setUsageLocation: PATCH the user. assignLicenses: one assignLicense call (add + remove)."""

    id: str
    type: ActionType
    user_id: str
    upn: str
    usage_location_from: str | None = None
    usage_location_to: str | None = None
    add: tuple[LicenseRef, ...] = ()
    remove: tuple[LicenseRef, ...] = ()
    depends_on: tuple[str, ...] = ()
    reason: str = ""  # display only; apply never reads it

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "type": self.type, "user": {"id": self.user_id, "upn": self.upn}}
        if self.type == "setUsageLocation":
            d["usageLocation"] = {"from": self.usage_location_from, "to": self.usage_location_to}
        else:
            d["add"] = [r.to_dict() for r in self.add]
            d["remove"] = [r.to_dict() for r in self.remove]
        d["dependsOn"] = list(self.depends_on)
        d["reason"] = self.reason
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Action:
        loc = d.get("usageLocation") or {}
        return cls(
            id=str(d["id"]),
            type=d["type"],
            user_id=str(d["user"]["id"]),
            upn=str(d["user"]["upn"]),
            usage_location_from=loc.get("from"),
            usage_location_to=loc.get("to"),
            add=tuple(LicenseRef.from_dict(x) for x in d.get("add", [])),
            remove=tuple(LicenseRef.from_dict(x) for x in d.get("remove", [])),
            depends_on=tuple(str(x) for x in d.get("dependsOn", [])),
            reason=str(d.get("reason", "")),
        )


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    upn: str | None = None
    source: str | None = None  # "FILE:LINE"

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "message": self.message, "upn": self.upn, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Diagnostic:
        return cls(d["severity"], d["code"], d["message"], d.get("upn"), d.get("source"))


@dataclass(frozen=True)
class SeatLine:
    part_number: str
    sku_id: str
    enabled: int
    consumed: int
    after: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "skuPartNumber": self.part_number,
            "skuId": self.sku_id,
            "enabled": self.enabled,
            "consumed": self.consumed,
            "after": self.after,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeatLine:
        return cls(d["skuPartNumber"], d.get("skuId", ""), d["enabled"], d["consumed"], d["after"])


@dataclass(frozen=True)
class PoolLine:
    """Pooled minutes of one (country, Calling Plan SKU); minutes are None where the catalog does not know them."""

    country: str
    part_number: str
    users_before: int
    users_after: int
    minutes_before: int | None
    minutes_after: int | None
    sku_id: str = ""  # part numbers are not unique (two SKUs are MCOPSTN5): the id tells pools apart
    pooled: bool = True  # False for plans whose minutes never pool (Pay-As-You-Go): minutes are then None

    def to_dict(self) -> dict[str, Any]:
        return {
            "country": self.country,
            "skuPartNumber": self.part_number,
            "usersBefore": self.users_before,
            "usersAfter": self.users_after,
            "minutesBefore": self.minutes_before,
            "minutesAfter": self.minutes_after,
            "skuId": self.sku_id,
            "pooled": self.pooled,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PoolLine:
        return cls(
            d["country"], d["skuPartNumber"], d["usersBefore"], d["usersAfter"], d.get("minutesBefore"),
            d.get("minutesAfter"), sku_id=d.get("skuId", ""), pooled=bool(d.get("pooled", True)),
        )  # fmt: skip


@dataclass(frozen=True)
class UserState:
    """A user's managed state as people read it: usage location and managed licenses by part number."""

    usage_location: str | None
    licenses: tuple[str, ...]  # managed part numbers held directly, sorted
    inherited: tuple[str, ...] = ()  # managed part numbers held through groups, sorted
    # Unmanaged licenses that give this user Phone System (suites such as SPE_E5), sorted: why no add-on is needed.
    phone_system_from: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"usageLocation": self.usage_location, "licenses": list(self.licenses), "inherited": list(self.inherited),
                "phoneSystemFrom": list(self.phone_system_from)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserState:
        return cls(d.get("usageLocation"), tuple(d.get("licenses", [])), tuple(d.get("inherited", [])),
                   tuple(d.get("phoneSystemFrom", [])))  # fmt: skip


@dataclass(frozen=True)
class UserChange:
    """Per-user before → after, for renderers and drift reports. `declared` is the manifest's wish in words."""

    upn: str
    user_id: str
    before: UserState
    after: UserState
    source: str | None = None
    declared: str | None = None
    problems: tuple[str, ...] = ()  # e.g. licenseAssignmentStates errors such as "CountViolation on MCOPSTN1 (group G)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "upn": self.upn,
            "userId": self.user_id,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "source": self.source,
            "declared": self.declared,
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserChange:
        return cls(
            d["upn"],
            d.get("userId", ""),
            UserState.from_dict(d["before"]),
            UserState.from_dict(d["after"]),
            d.get("source"),
            d.get("declared"),
            tuple(d.get("problems", [])),
        )


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings from a saved plan; TypeError (a damaged plan) for anything else."""
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise TypeError(f"expected a list of strings, got {type(value).__name__}")
    return tuple(value)


@dataclass(frozen=True)
class UserPrecondition:
    """What a touched user looked like when the plan was made; apply refuses the plan if it changed.

    `direct_disabled_plans` (directly assigned SKU -> the service plans it disables, only SKUs with some) and
    `inherited_sku_ids` (SKUs held through an active group assignment) are None in plans saved before they were
    recorded: those plans are checked without them.
    """

    user_id: str
    upn: str
    usage_location: str | None
    direct_sku_ids: tuple[str, ...]  # sorted
    direct_disabled_plans: tuple[tuple[str, tuple[str, ...]], ...] | None = None  # sorted by SKU id
    inherited_sku_ids: tuple[str, ...] | None = None  # sorted

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.user_id,
            "upn": self.upn,
            "usageLocation": self.usage_location,
            "directSkuIds": list(self.direct_sku_ids),
        }
        if self.direct_disabled_plans is not None:
            d["directDisabledPlans"] = {sku: list(plans) for sku, plans in self.direct_disabled_plans}
        if self.inherited_sku_ids is not None:
            d["inheritedSkuIds"] = list(self.inherited_sku_ids)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserPrecondition:
        disabled = d.get("directDisabledPlans")
        inherited = d.get("inheritedSkuIds")
        return cls(
            d["id"],
            d["upn"],
            d.get("usageLocation"),
            _strings(d.get("directSkuIds", [])),
            None if disabled is None else tuple(sorted((str(k), _strings(v)) for k, v in dict.items(disabled))),
            None if inherited is None else _strings(inherited),
        )


@dataclass(frozen=True)
class SeatPrecondition:
    """A SKU the plan adds: it needs at least `free_needed` free seats at apply time (net of its own removals)."""

    sku_id: str
    part_number: str
    free_needed: int

    def to_dict(self) -> dict[str, Any]:
        return {"skuId": self.sku_id, "skuPartNumber": self.part_number, "freeNeeded": self.free_needed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeatPrecondition:
        return cls(d["skuId"], d["skuPartNumber"], int(d["freeNeeded"]))


@dataclass(frozen=True)
class Plan:
    tenant_id: str
    tenant_name: str
    fingerprint: str
    actions: tuple[Action, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    seats: tuple[SeatLine, ...] = ()
    pools: tuple[PoolLine, ...] = ()
    users: tuple[UserChange, ...] = ()
    max_removals: int = 10
    user_preconditions: tuple[UserPrecondition, ...] = ()
    seat_preconditions: tuple[SeatPrecondition, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    @property
    def removal_count(self) -> int:
        """License assignments this plan removes (what policy.maxRemovals limits)."""
        return sum(len(a.remove) for a in self.actions)

    def summary(self) -> dict[str, int]:
        return {
            "actions": len(self.actions),
            "usersChanged": len({a.user_id for a in self.actions}),
            "licensesAdded": sum(len(a.add) for a in self.actions),
            "licensesRemoved": self.removal_count,
            "usageLocationsSet": sum(1 for a in self.actions if a.type == "setUsageLocation"),
        }

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "formatVersion": FORMAT_VERSION,
            "tenant": {"id": self.tenant_id, "displayName": self.tenant_name},
            "fingerprint": self.fingerprint,
            "hasChanges": self.has_changes,
            "summary": self.summary(),
            "actions": [a.to_dict() for a in self.actions],
            "diagnostics": [x.to_dict() for x in self.diagnostics],
            "seats": [s.to_dict() for s in self.seats],
            "pools": [p.to_dict() for p in self.pools],
            "users": [u.to_dict() for u in self.users],
            "policy": {"maxRemovals": self.max_removals},
            "preconditions": {
                "users": [u.to_dict() for u in self.user_preconditions],
                "seats": [s.to_dict() for s in self.seat_preconditions],
            },
        }
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        if d.get("formatVersion") != FORMAT_VERSION:
            raise ValueError(f"unsupported plan formatVersion {d.get('formatVersion')!r} (this version reads {FORMAT_VERSION})")
        pre = d.get("preconditions") or {}
        known = {
            "formatVersion", "tenant", "fingerprint", "hasChanges", "summary", "actions", "diagnostics",
            "seats", "pools", "users", "policy", "preconditions",
        }  # fmt: skip
        return cls(
            tenant_id=d["tenant"]["id"],
            tenant_name=d["tenant"].get("displayName", ""),
            fingerprint=d["fingerprint"],
            actions=tuple(Action.from_dict(a) for a in d.get("actions", [])),
            diagnostics=tuple(Diagnostic.from_dict(x) for x in d.get("diagnostics", [])),
            seats=tuple(SeatLine.from_dict(s) for s in d.get("seats", [])),
            pools=tuple(PoolLine.from_dict(p) for p in d.get("pools", [])),
            users=tuple(UserChange.from_dict(u) for u in d.get("users", [])),
            max_removals=int((d.get("policy") or {}).get("maxRemovals", 10)),
            user_preconditions=tuple(UserPrecondition.from_dict(u) for u in pre.get("users", [])),
            seat_preconditions=tuple(SeatPrecondition.from_dict(s) for s in pre.get("seats", [])),
            extra={k: v for k, v in d.items() if k not in known},
        )
