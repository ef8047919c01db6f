"""The emulated tenant's data: load/save of the state file, group inheritance and derived seat counts.

In-memory and file I/O only (no HTTP). Invariant: `consumedUnits` is never stored; it is derived from
direct assignments plus the group assignments that are Active.

Group licenses are processed once, when the state is loaded (as Entra processes a group when it is licensed
or its members change, in the background): in group order, then member order, a member gets every license of
the group if there is a seat for each one it does not hold yet, else none of them, all in Error
(CountViolation) — "If Microsoft Entra ID can't assign one of the products ... it won't assign the other
licenses in the group either" (entra-docs licensing-groups-resolve-problems.md). Later direct changes never
move group seats: a seat freed by removing a direct assignment is free, and members waiting in CountViolation
stay so until the group is reprocessed ("if you free up some licenses by removing direct license assignments
from users, you need to trigger the processing of groups that previously failed", same page), which here is
the next load of the state file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from provisioner.emulator.plans import lacks_phone_system
from provisioner.emulator.statefile import StateError, need, need_guid, parse_licenses, write_bytes_atomic

# lastUpdatedDateTime of assignments loaded from a file (the file does not store one): fixed, so output is stable.
LOADED_AT = "2024-01-01T00:00:00Z"


@dataclass(slots=True)
class Sku:
    sku_id: str
    part: str
    status: str
    applies_to: str
    prepaid: dict[str, int]
    plans: list[dict[str, Any]]

    @property
    def enabled(self) -> int:
        return int(self.prepaid.get("enabled", 0))


@dataclass(slots=True)
class User:
    id: str
    upn: str
    display_name: str | None
    account_enabled: bool
    usage_location: str | None
    licenses: dict[str, list[str]]  # DIRECT assignments: skuId -> disabledPlans, in assignment order


@dataclass(slots=True)
class Group:
    id: str
    display_name: str
    members: list[str]
    licenses: dict[str, list[str]]


@dataclass(slots=True)
class Assignment:
    """One licenseAssignmentState: direct when `group` is None."""

    sku_id: str
    group: str | None
    disabled: list[str]
    active: bool
    updated: str
    error: str = "None"  # Graph's licenseAssignmentState.error: None, CountViolation, DependencyViolation


_STAMP: list[Any] = [0, ""]  # (whole second, its text): a batch of writes stamps the same second many times


def _now() -> str:
    now = time.time()
    second = int(now)
    if _STAMP[0] != second:
        _STAMP[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    return str(_STAMP[1])


@dataclass
class TenantState:
    tenant: dict[str, Any]
    skus: list[Sku]
    users: list[User]
    groups: list[Group]
    version: int = 0  # bumped by every mutation; caches and "dirty" checks key on it
    _stamps: dict[tuple[str, str, str | None], str] = field(default_factory=dict, repr=False)
    # each user's state-file line, serialized once and dropped when the user changes: saving a big tenant
    # again after a few writes re-serializes only those users
    _rows: dict[str, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.sku_by_id = {s.sku_id: s for s in self.skus}
        self.user_by_id = {u.id.lower(): u for u in self.users}
        self.user_by_upn = {u.upn.lower(): u for u in self.users}
        self.groups_of: dict[str, list[Group]] = {}
        self.pos = {u.id: i for i, u in enumerate(self.users)}  # list order: the paging order
        # (group id, skuId) a group cannot grant: "both the prerequisite and add-on service plans [must] be
        # present in the same group" (entra-docs licensing-groups-resolve-problems.md), so a group giving a
        # Calling Plan without Phone System leaves that SKU in DependencyViolation on every member.
        self.group_errors: dict[tuple[str, str], str] = {}
        sku_by_id = {s.sku_id: s for s in self.skus}
        for g in self.groups:
            enabled = {p["servicePlanName"] for sku_id, dis in g.licenses.items() if sku_id in sku_by_id
                       for p in sku_by_id[sku_id].plans if p["servicePlanId"] not in dis}
            if lacks_phone_system(enabled):
                for sku_id in g.licenses:
                    names = {p["servicePlanName"] for p in sku_by_id[sku_id].plans} if sku_id in sku_by_id else set()
                    if lacks_phone_system(names):
                        self.group_errors[(g.id, sku_id)] = "DependencyViolation"
        self._direct: dict[str, int] = {}
        for u in self.users:
            for sku in u.licenses:
                self._direct[sku] = self._direct.get(sku, 0) + 1
        # The processing (see the module docstring): who got each SKU from a group, and which members a group
        # failed (all its licenses in Error). `_granted_only` counts, per SKU, the granted members not holding
        # it directly: their seats, on top of the direct ones.
        self.granted: dict[str, set[str]] = {}
        self.group_failed: set[tuple[str, str]] = set()  # (group id, user id)
        self._granted_only: dict[str, int] = {}
        for g in self.groups:
            # Graph licenses only first-level user members; an id that names no user holds no seat.
            g.members = [m for m in g.members if m in self.pos]
            skus = [sku for sku in g.licenses if (g.id, sku) not in self.group_errors]
            for uid in g.members:
                self.groups_of.setdefault(uid, []).append(g)
                direct = self.user_by_id[uid.lower()].licenses
                new = [sku for sku in skus if sku not in direct and uid not in self.granted.get(sku, ())]
                if any(self.consumed(sku) >= self._enabled(sku) for sku in new):
                    self.group_failed.add((g.id, uid))
                    continue
                for sku in skus:
                    self.granted.setdefault(sku, set()).add(uid)
                for sku in new:
                    self._granted_only[sku] = self._granted_only.get(sku, 0) + 1
        # skuId -> ids of users whose assignedLicenses show it (direct or Active inherited): $filter by SKU
        self.holders: dict[str, set[str]] = {}
        for u in self.users:
            for sku in self.effective(u):
                self.holders.setdefault(sku, set()).add(u.id)

    # -- loading and saving ------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Any) -> TenantState:
        if not isinstance(d, dict):
            raise StateError("the state file must hold a JSON object with tenant, subscribedSkus, users, groups")
        tenant = need(d, "tenant", dict, "state")
        need(tenant, "id", str, "tenant")
        need(tenant, "displayName", str, "tenant")
        domains = tenant.get("verifiedDomains") or []
        if not isinstance(domains, list):
            raise StateError("tenant.verifiedDomains: expected a list")
        for j, dom in enumerate(domains):
            need(dom, "name", str, f"tenant.verifiedDomains[{j}]")  # Graph's verifiedDomain objects
        tenant = {"id": tenant["id"], "displayName": tenant["displayName"], "verifiedDomains": domains}
        skus = []
        for i, s in enumerate(need(d, "subscribedSkus", list, "state")):
            where = f"subscribedSkus[{i}]"
            prepaid = need(s, "prepaidUnits", dict, where)
            plans = s.get("servicePlans") or []
            if not isinstance(plans, list):
                raise StateError(f"{where}.servicePlans: expected a list of service plans")
            for k in ("enabled", "suspended", "warning", "lockedOut"):
                if not isinstance(prepaid.get(k) or 0, int):
                    raise StateError(f"{where}.prepaidUnits.{k}: expected a whole number of seats")
            for j, p in enumerate(plans):
                need(p, "servicePlanId", str, f"{where}.servicePlans[{j}]")
                need(p, "servicePlanName", str, f"{where}.servicePlans[{j}]")
            skus.append(Sku(
                sku_id=need_guid(s, "skuId", where),
                part=need(s, "skuPartNumber", str, where),
                status=s.get("capabilityStatus") or "Enabled",
                applies_to=s.get("appliesTo") or "User",
                prepaid={k: int(prepaid.get(k) or 0) for k in ("enabled", "suspended", "warning", "lockedOut")},
                plans=[{"servicePlanId": p["servicePlanId"].lower(), "servicePlanName": p["servicePlanName"],
                        "provisioningStatus": p.get("provisioningStatus") or "Success",
                        "appliesTo": p.get("appliesTo") or "User"} for p in plans],
            ))
        users = []
        for i, u in enumerate(need(d, "users", list, "state")):
            where = f"users[{i}]"
            loc = u.get("usageLocation") if isinstance(u, dict) else None
            if loc is not None and not (isinstance(loc, str) and len(loc) == 2 and loc.isascii() and loc.isalpha()):
                raise StateError(f"{where}.usageLocation: expected a two-letter country code (ISO 3166) or null, "
                                 f"got {loc!r}")
            enabled = u.get("accountEnabled", True) if isinstance(u, dict) else True
            if not isinstance(enabled, bool):
                raise StateError(f"{where}.accountEnabled: expected true or false, got {enabled!r}")
            users.append(User(
                id=need(u, "id", str, where),
                upn=need(u, "userPrincipalName", str, where),
                display_name=u.get("displayName"),
                account_enabled=enabled,
                usage_location=loc.upper() if isinstance(loc, str) and loc else None,
                licenses=parse_licenses(u.get("assignedLicenses") or [], f"{where}.assignedLicenses"),
            ))
        groups = []
        raw_groups = d.get("groups") or []
        if not isinstance(raw_groups, list):
            raise StateError("groups: expected a list of groups")
        for i, g in enumerate(raw_groups):
            where = f"groups[{i}]"
            groups.append(Group(
                id=need(g, "id", str, where),
                display_name=g.get("displayName") or "",
                members=[str(m) for m in need(g, "members", list, where)],
                licenses=parse_licenses(g.get("assignedLicenses") or [], f"{where}.assignedLicenses"),
            ))
        known = {s.sku_id for s in skus}
        holders: list[tuple[str, dict[str, list[str]]]] = [
            *((f"users[{i}]", u.licenses) for i, u in enumerate(users)),
            *((f"groups[{i}]", g.licenses) for i, g in enumerate(groups)),
        ]
        for where, licenses in holders:
            unknown = sorted(set(licenses) - known)
            if unknown:
                raise StateError(f"{where}.assignedLicenses: skuId {unknown[0]} is not in subscribedSkus "
                                 "(a tenant assigns only the SKUs it subscribes to)")
        state = cls(tenant=tenant, skus=skus, users=users, groups=groups)
        ids = [u.id.lower() for u in users]
        if len(set(ids)) != len(ids) or len(state.user_by_upn) != len(users):
            raise StateError("users: ids and userPrincipalNames must be unique")
        return state

    def _sku_dict(self, s: Sku) -> dict[str, Any]:
        return {"skuId": s.sku_id, "skuPartNumber": s.part, "capabilityStatus": s.status, "appliesTo": s.applies_to,
                "prepaidUnits": dict(s.prepaid), "servicePlans": [dict(p) for p in s.plans]}

    @staticmethod
    def _user_dict(u: User) -> dict[str, Any]:
        return {"id": u.id, "userPrincipalName": u.upn, "displayName": u.display_name,
                "accountEnabled": u.account_enabled, "usageLocation": u.usage_location,
                "assignedLicenses": _lic_list(u.licenses)}

    @staticmethod
    def _group_dict(g: Group) -> dict[str, Any]:
        return {"id": g.id, "displayName": g.display_name, "members": list(g.members),
                "assignedLicenses": _lic_list(g.licenses)}

    def to_dict(self) -> dict[str, Any]:
        """The state-file content (CONTRACT §4) as fresh dicts; consumedUnits is derived, never stored."""
        return {
            "tenant": self.tenant,
            "subscribedSkus": [self._sku_dict(s) for s in self.skus],
            "users": [self._user_dict(u) for u in self.users],
            "groups": [self._group_dict(g) for g in self.groups],
        }

    def to_json(self) -> bytes:
        """The state file's bytes: one user per line (diff-friendly), users re-serialized only when changed."""
        rows = self._rows
        users = []
        for u in self.users:
            row = rows.get(u.id)
            if row is None:
                row = rows[u.id] = orjson.dumps(self._user_dict(u))
            users.append(row)

        def block(items: list[bytes]) -> bytes:
            return b"[\n" + b",\n".join(items) + b"\n]" if items else b"[]"

        return b"".join([
            b'{\n"tenant": ', orjson.dumps(self.tenant),
            b',\n"subscribedSkus": ', block([orjson.dumps(self._sku_dict(s)) for s in self.skus]),
            b',\n"users": ', block(users),
            b',\n"groups": ', block([orjson.dumps(self._group_dict(g)) for g in self.groups]),
            b"\n}\n",
        ])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TenantState:
        p = Path(path)
        hint = f"Fix it, or write a fresh one with `provision emulator init {p}`."
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise StateError(f"{p}: cannot read the emulator state file ({exc.strerror or exc}).", hint=hint) from exc
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StateError(f"{p}: not valid JSON ({exc}).", hint=hint) from exc
        try:
            return cls.from_dict(data)
        except StateError as exc:
            raise StateError(f"{p}: {exc.message}", hint=hint) from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state file atomically (temp file in the same folder, then os.replace)."""
        write_bytes_atomic(path, self.to_json())

    # -- seats and inheritance ---------------------------------------------------------------------------

    def _count(self, uid: str, sku: str, delta: int) -> None:
        """A direct assignment of `sku` to `uid` added (+1) or removed (-1). A member granted it by a group keeps
        one seat either way: it moves between the direct and the group-only count."""
        self._direct[sku] = self._direct.get(sku, 0) + delta
        if uid in self.granted.get(sku, ()):
            self._granted_only[sku] -= delta

    def _enabled(self, sku: str) -> int:
        s = self.sku_by_id.get(sku)
        return s.enabled if s else 0

    def consumed(self, sku: str) -> int:
        """Distinct users holding `sku` directly or through an Active group assignment (one seat each)."""
        return self._direct.get(sku, 0) + self._granted_only.get(sku, 0)

    def source_active(self, group: Group, user: User, sku: str) -> bool:
        """Whether `group`'s assignment of `sku` to `user` is Active (else Error)."""
        return (group.id, sku) not in self.group_errors and (group.id, user.id) not in self.group_failed

    def group_active(self, user: User, sku: str) -> bool:
        """Whether `user` holds `sku` through some group assignment that is Active."""
        return user.id in self.granted.get(sku, ())

    def assignments(self, user: User) -> list[Assignment]:
        """licenseAssignmentStates: the direct assignments, then one per (group, SKU) source."""
        out = [Assignment(sku, None, list(dis), True, self._stamps.get((user.id, sku, None), LOADED_AT))
               for sku, dis in user.licenses.items()]
        for g in self.groups_of.get(user.id, ()):
            for sku, dis in g.licenses.items():
                stamp = self._stamps.get((user.id, sku, g.id), LOADED_AT)
                error = self.group_errors.get((g.id, sku))
                if error is None and (g.id, user.id) in self.group_failed:
                    error = "CountViolation"
                out.append(Assignment(sku, g.id, list(dis), error is None, stamp, error or "None"))
        return out

    def effective(self, user: User) -> dict[str, list[str]]:
        """assignedLicenses as Graph shows them: direct plus Active inherited, one entry per SKU.

        A plan is disabled only if every source disables it (any source enabling it enables it).
        """
        out: dict[str, list[str]] = {k: list(v) for k, v in user.licenses.items()}
        for g in self.groups_of.get(user.id, ()):
            for sku, dis in g.licenses.items():
                if not self.source_active(g, user, sku):
                    continue
                if sku in out:
                    out[sku] = [p for p in out[sku] if p in dis]
                else:
                    out[sku] = list(dis)
        return out

    def stamp(self, user: User, sku: str) -> str:
        """When `user` got `sku` directly (lastUpdatedDateTime), or LOADED_AT for state read from a file."""
        return self._stamps.get((user.id, sku, None), LOADED_AT)

    def members_with_license_errors(self, group: Group, first_only: bool = False) -> list[User]:
        """group-list-memberswithlicenseerrors.md: members for whom some license of `group` is in error
        (CountViolation when seats ran out at processing, or the group's own DependencyViolation), in member
        order. `first_only` stops at the first (is there any?)."""
        every = any((group.id, sku) in self.group_errors for sku in group.licenses)
        out = []
        for uid in group.members:
            if every or (group.id, uid) in self.group_failed:
                out.append(self.user_by_id[uid.lower()])
                if first_only:
                    break
        return out

    def inherited_skus(self, user: User) -> set[str]:
        return {sku for g in self.groups_of.get(user.id, ()) for sku in g.licenses}

    # -- mutations (callers validate first: see rules.py) -----------------------------------------------

    def find_user(self, key: str) -> User | None:
        k = key.lower()
        return self.user_by_id.get(k) or self.user_by_upn.get(k)

    def set_direct_licenses(self, user: User, new: dict[str, list[str]]) -> set[str]:
        """Replace `user`'s direct licenses; return the ids of the users whose rendering changed: only `user`,
        as group seats never move after processing (the module docstring). O(1) in the tenant size."""
        stamp = _now()
        before = set(self.effective(user))
        for sku in set(user.licenses) - set(new):
            self._count(user.id, sku, -1)
        for sku, dis in new.items():
            if sku not in user.licenses:
                self._count(user.id, sku, +1)
            if user.licenses.get(sku) != dis:
                self._stamps[(user.id, sku, None)] = stamp
        user.licenses = {k: list(v) for k, v in new.items()}
        self._rows.pop(user.id, None)
        self.version += 1
        now = set(self.effective(user))
        for sku in before - now:
            self.holders.get(sku, set()).discard(user.id)
        for sku in now - before:
            self.holders.setdefault(sku, set()).add(user.id)
        return {user.id}

    def set_user_fields(self, user: User, fields: dict[str, Any]) -> None:
        if "usageLocation" in fields:
            user.usage_location = fields["usageLocation"]
        if "displayName" in fields:
            user.display_name = fields["displayName"]
        if "accountEnabled" in fields:
            user.account_enabled = fields["accountEnabled"]
        self._rows.pop(user.id, None)
        self.version += 1


def _lic_list(m: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [{"skuId": k, "disabledPlans": list(v)} for k, v in m.items()]
