"""Graph JSON (already decoded by orjson) → our slim records in provisioner.model.observed. Pure.

Users are never turned into kiota models (msgraph-sdk-notes §5: ~7 ms and ~25 KB per user); these
functions read only the properties we `$select`.
"""

from __future__ import annotations

from typing import Any

from provisioner.model.observed import Assignment, ServicePlan, Sku, TenantInfo, User


def _lower(v: Any) -> str:
    return str(v).lower() if v is not None else ""


def _plans(items: Any) -> tuple[str, ...]:
    return tuple(sorted(_lower(p) for p in items)) if items else ()


# Bulk reads build ~100,000 users; keeping that within the cost of parsing the JSON (benchmarks/bench_read.py):
# User and Assignment are NamedTuples (built in C), and assignments, which repeat endlessly (same SKU, direct,
# Active), are one shared instance per distinct value.
_ASSIGNMENTS: dict[tuple[Any, ...], Assignment] = {}
_BY_RAW_STATE: dict[tuple[Any, ...], Assignment] = {}  # licenseAssignmentStates entries as Graph wrote them
_MAX_SHARED = 50_000


def _assignment(sku: str, group: str | None, plans: tuple[str, ...], state: Any, error: Any) -> Assignment:
    key = (sku, group, plans, state, error)
    a = _ASSIGNMENTS.get(key)
    if a is None:
        a = Assignment(sku, group, plans, state, error)
        if len(_ASSIGNMENTS) < _MAX_SHARED:
            _ASSIGNMENTS[key] = a
    return a


def user_from_json(d: dict[str, Any]) -> User:
    """One Graph user. Assignments come from licenseAssignmentStates (one per source: direct when
    assignedByGroup is null, else that group, with its state and error); when Graph did not return that
    property, assignedLicenses are taken as direct assignments."""
    states = d.get("licenseAssignmentStates")
    assignments: list[Assignment] = []
    if states is not None:
        for s in states:
            plans = s.get("disabledPlans")
            # keyed by the raw values: a repeat (nearly every state) costs one look-up, no normalising
            raw = (s.get("skuId"), s.get("assignedByGroup"), tuple(plans) if plans else (), s.get("state"), s.get("error"))
            a = _BY_RAW_STATE.get(raw)
            if a is None:
                sku, group, _, state, err = raw
                a = _assignment(
                    _lower(sku),
                    group.lower() if group else None,
                    _plans(plans) if plans else (),
                    state,
                    None if err in (None, "", "None") else err,
                )
                if len(_BY_RAW_STATE) < _MAX_SHARED:
                    _BY_RAW_STATE[raw] = a
            assignments.append(a)
    else:
        for a in d.get("assignedLicenses") or ():
            assignments.append(
                _assignment(_lower(a.get("skuId")), None, _plans(a.get("disabledPlans")), None, None)
            )
    return User(
        str(d["id"]),
        str(d.get("userPrincipalName") or ""),
        d.get("displayName"),
        d.get("accountEnabled"),
        d.get("usageLocation") or None,
        tuple(assignments),
    )


def sku_from_json(d: dict[str, Any]) -> Sku:
    units = d.get("prepaidUnits") or {}
    return Sku(
        sku_id=_lower(d.get("skuId")),
        part_number=str(d.get("skuPartNumber") or ""),
        capability_status=str(d.get("capabilityStatus") or "Enabled"),
        enabled=int(units.get("enabled") or 0),
        consumed=int(d.get("consumedUnits") or 0),
        suspended=int(units.get("suspended") or 0),
        warning=int(units.get("warning") or 0),
        locked_out=int(units.get("lockedOut") or 0),
        service_plans=tuple(
            ServicePlan(
                id=_lower(p.get("servicePlanId")),
                name=str(p.get("servicePlanName") or ""),
                applies_to=p.get("appliesTo"),
                provisioning_status=p.get("provisioningStatus"),
            )
            for p in d.get("servicePlans") or ()
        ),
    )


def skus_from_json(body: dict[str, Any]) -> tuple[Sku, ...]:
    return tuple(
        sorted((sku_from_json(s) for s in body.get("value") or ()), key=lambda s: (s.part_number, s.sku_id))
    )


def tenant_from_json(body: dict[str, Any]) -> TenantInfo:
    orgs = body.get("value") or []
    if not orgs:
        return TenantInfo(id="", display_name="")
    o = orgs[0]
    domains = tuple(sorted(str(v["name"]) for v in o.get("verifiedDomains") or () if v.get("name")))
    return TenantInfo(
        id=_lower(o.get("id")), display_name=str(o.get("displayName") or ""), verified_domains=domains
    )


def holds_any(d: dict[str, Any], sku_ids: frozenset[str]) -> bool:
    """Whether a raw user holds any of `sku_ids` (lower-case), directly or through a group (even in error)."""
    for key in ("assignedLicenses", "licenseAssignmentStates"):
        for a in d.get(key) or ():
            sku = a.get("skuId")
            if sku and (sku in sku_ids or sku.lower() in sku_ids):
                return True
    return False
