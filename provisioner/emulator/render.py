"""Graph JSON shapes of the emulator's users, groups, subscribedSkus and organization. Pure (reads TenantState only).

Only properties Graph declares (reference/graph-v1-types.json) are ever emitted; a declared property the
emulator does not store is null, or [] for a collection, as Graph shows an unset property.
"""

from __future__ import annotations

from typing import Any

from provisioner.emulator.query import GROUP_COLLECTIONS, SKU_PROPERTIES, USER_COLLECTIONS
from provisioner.emulator.state import Group, TenantState, User

# assignedPlan.service per service plan name prefix (what Graph shows for these workloads).
_SERVICE = (
    ("MCO", "MicrosoftCommunicationsOnline"),
    ("TEAMS", "TeamspaceAPI"),
    ("EXCHANGE", "exchange"),
    ("SHAREPOINT", "SharePoint"),
    ("OFFICESUBSCRIPTION", "MicrosoftOffice"),
    ("PSTN", "MicrosoftCommunicationsOnline"),
)


# Declared non-nullable scalars the emulator does not store, shown with a value as Graph must: an unset
# birthday/hireDate reads as DateTimeOffset.MinValue; deviceEnrollmentLimit is 5 or 1000 (user.md), 5 here.
_UNSET = {"birthday": "0001-01-01T00:00:00Z", "hireDate": "0001-01-01T00:00:00Z", "deviceEnrollmentLimit": 5}


def _service(plan_name: str) -> str:
    return next((svc for prefix, svc in _SERVICE if plan_name.startswith(prefix)), plan_name)


def _licenses(m: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [{"disabledPlans": list(dis), "skuId": sku} for sku, dis in m.items()]


def assignment_states(state: TenantState, user: User) -> list[dict[str, Any]]:
    """licenseAssignmentStates: one entry per source (direct, or each group), with Graph's state and error.

    A group member beyond the SKU's enabled seats gets state Error / error CountViolation (entra-docs
    licensing-groups-resolve-problems.md: "There aren't enough available licenses for one of the products");
    a group granting a Calling Plan without Phone System gets Error / DependencyViolation (same page).
    """
    out = []
    for a in state.assignments(user):
        out.append({
            "assignedByGroup": a.group,
            "disabledPlans": list(a.disabled),
            "error": a.error,
            "lastUpdatedDateTime": a.updated,
            "skuId": a.sku_id,
            "state": "Active" if a.active else "Error",
        })
    return out


def assigned_plans(state: TenantState, user: User) -> list[dict[str, Any]]:
    """assignedPlans: every enabled service plan of every license the user effectively holds."""
    out = []
    for sku_id, disabled in state.effective(user).items():
        sku = state.sku_by_id.get(sku_id)
        if sku is None:
            continue
        for p in sku.plans:
            if p["servicePlanId"] in disabled:
                continue
            out.append({"assignedDateTime": state.stamp(user, sku_id), "capabilityStatus": "Enabled",
                        "service": _service(p["servicePlanName"]), "servicePlanId": p["servicePlanId"]})
    return out


def user_json(state: TenantState, user: User, props: tuple[str, ...]) -> dict[str, Any]:
    """The user with exactly `props` (already validated against the declared user properties)."""
    out: dict[str, Any] = {}
    for p in props:
        if p == "id":
            out[p] = user.id
        elif p == "userPrincipalName":
            out[p] = user.upn
        elif p == "displayName":
            out[p] = user.display_name
        elif p == "accountEnabled":
            out[p] = user.account_enabled
        elif p == "usageLocation":
            out[p] = user.usage_location
        elif p == "assignedLicenses":
            out[p] = _licenses(state.effective(user))
        elif p == "licenseAssignmentStates":
            out[p] = assignment_states(state, user)
        elif p == "assignedPlans":
            out[p] = assigned_plans(state, user)
        elif p in _UNSET:
            out[p] = _UNSET[p]
        else:
            out[p] = [] if p in USER_COLLECTIONS else None
    return out


def group_json(group: Group, props: tuple[str, ...]) -> dict[str, Any]:
    """The group with exactly `props` (already validated against the declared group properties).

    The emulator's groups are licensing security groups: securityEnabled, not mail-enabled, no groupTypes.
    """
    out: dict[str, Any] = {}
    for p in props:
        if p == "id":
            out[p] = group.id
        elif p == "displayName":
            out[p] = group.display_name
        elif p == "assignedLicenses":
            out[p] = _licenses(group.licenses)
        elif p == "securityEnabled":
            out[p] = True
        elif p == "mailEnabled":
            out[p] = False
        else:
            out[p] = [] if p in GROUP_COLLECTIONS else None
    return out


def sku_json(state: TenantState, sku_id: str, props: tuple[str, ...] = SKU_PROPERTIES) -> dict[str, Any]:
    s = state.sku_by_id[sku_id]
    full: dict[str, Any] = {
        "accountId": state.tenant["id"],
        "accountName": state.tenant["displayName"],
        "appliesTo": s.applies_to,
        "capabilityStatus": s.status,
        "consumedUnits": state.consumed(sku_id),
        "id": f"{state.tenant['id']}_{s.sku_id}",  # Graph's subscribedSku id is "{tenantId}_{skuId}"
        "prepaidUnits": {k: s.prepaid.get(k, 0) for k in ("enabled", "suspended", "warning", "lockedOut")},
        "servicePlans": [dict(p) for p in s.plans],
        "skuId": s.sku_id,
        "skuPartNumber": s.part,
        "subscriptionIds": [],
    }
    return {k: full[k] for k in props}


def organization_json(state: TenantState) -> dict[str, Any]:
    t = state.tenant
    return {
        "id": t["id"],
        "deletedDateTime": None,
        "assignedPlans": [],
        "businessPhones": [],
        "city": None,
        "country": None,
        "countryLetterCode": None,
        "createdDateTime": None,
        "defaultUsageLocation": None,
        "displayName": t["displayName"],
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": None,
        "onPremisesSyncEnabled": None,
        "postalCode": None,
        "preferredLanguage": None,
        "provisionedPlans": [],
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": None,
        "street": None,
        "technicalNotificationMails": [],
        "tenantType": "AAD",
        "verifiedDomains": [dict(d) for d in t.get("verifiedDomains", [])],
    }
