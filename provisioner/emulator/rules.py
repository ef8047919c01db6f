"""Graph's licensing rules for assignLicense and PATCH /users, as the emulator enforces them. Pure validation.

Each rule raises GraphRuleError(status, code, message) with Graph's wording where a public source shows it
(cited per message). Everything is validated before anything changes, so a rejected call changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from provisioner.emulator.plans import CALLING_PLAN_PLANS, MCOEV_PLAN_ID, PHONE_SYSTEM_PREFIX
from provisioner.emulator.state import TenantState, User


class GraphRuleError(Exception):
    """A request Graph would refuse: HTTP status, Graph error code and message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad(message: str, code: str = "Request_BadRequest") -> GraphRuleError:
    return GraphRuleError(400, code, message)


GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

INACTIVE = frozenset({"Suspended", "LockedOut", "Deleted"})

# ISO 3166-1 alpha-2 (usageLocation "A two-letter country code (ISO standard 3166)", Graph user resource).
ISO_3166 = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO
FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE
JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO
MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM
TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
""".split())  # noqa: SIM905 - a word list reads better than quoted strings

# PATCH /users: what the emulator stores, and declared properties Graph never lets a client set.
WRITABLE = {"usageLocation", "displayName", "accountEnabled"}
READ_ONLY = {"id", "assignedLicenses", "licenseAssignmentStates", "assignedPlans", "provisionedPlans",
             "createdDateTime", "deletedDateTime", "onPremisesSyncEnabled", "securityIdentifier"}


def _plan_names(state: TenantState, licenses: dict[str, list[str]]) -> dict[str, str]:
    """Enabled service plans (name -> id) across the given SKU -> disabledPlans map."""
    out: dict[str, str] = {}
    for sku_id, disabled in licenses.items():
        sku = state.sku_by_id.get(sku_id)
        if sku is None:
            continue
        for p in sku.plans:
            if p["servicePlanId"] not in disabled:
                out.setdefault(p["servicePlanName"], p["servicePlanId"])
    return out


def phone_dependency_error(state: TenantState, user: User, direct_after: dict[str, list[str]]) -> None:
    """A Calling Plan needs an enabled Phone System plan (MCOEV*) among everything the user holds after the call.

    Wording from Graph's dependency error as scripts match it: "License assignment failed because service plan
    <id> depends on the service plan(s) <id>" (reference §3.3; e.g. a reprocessLicenseAssignment response
    quoted in public troubleshooting notes). Group-inherited Active licenses count, so a bundle or a group that
    provides MCOEV satisfies the rule.
    """
    held = {k: list(v) for k, v in direct_after.items()}
    for g in state.groups_of.get(user.id, ()):
        for sku, dis in g.licenses.items():
            if (g.id, sku) in state.group_errors:
                continue  # a group copy in DependencyViolation grants nothing
            if state.group_active(user, sku) or sku in direct_after:
                held[sku] = [p for p in held[sku] if p in dis] if sku in held else list(dis)
    plans = _plan_names(state, held)
    calling = sorted(n for n in plans if n in CALLING_PLAN_PLANS)
    if calling and not any(n.startswith(PHONE_SYSTEM_PREFIX) for n in plans):
        prereq = next((p["servicePlanId"] for s in state.skus for p in s.plans
                       if p["servicePlanName"] == "MCOEV"), MCOEV_PLAN_ID)
        raise bad(f"License assignment failed because service plan {plans[calling[0]]} depends on the "
                  f"service plan(s) {prereq}")


def validate_assign(state: TenantState, user: User, body: Any) -> dict[str, list[str]]:
    """Check an assignLicense body against every rule; return the user's new DIRECT licenses (skuId -> disabled)."""
    if not isinstance(body, dict):
        raise bad("Unable to read JSON request payload. Please ensure Content-Type header is set and payload "
                  "is of valid JSON format.", "BadRequest")
    # Both arrays are required (msgraph-sdk-powershell#3229, msgraph-sdk-go#163: Request_BadRequest).
    missing = [k for k in ("addLicenses", "removeLicenses") if body.get(k) is None]
    if missing:
        raise bad("One or more parameters of the operation 'assignLicense' are missing from the request payload. "
                  f"The missing parameters are: {', '.join(missing)}.")
    add, remove = body["addLicenses"], body["removeLicenses"]
    if add == [] and remove == []:  # Graph's answer to a call that changes nothing (msgraph-sdk-powershell#3286)
        raise bad("No license changes provided. At least one license to add or remove must be specified.")
    if not isinstance(add, list) or not all(isinstance(a, dict) for a in add):
        raise bad("Invalid value specified for property 'addLicenses' of resource 'User'.")
    if not isinstance(remove, list):
        raise bad("Invalid value specified for property 'removeLicenses' of resource 'User'.")
    adds: dict[str, list[str]] = {}
    for a in add:
        sku = a.get("skuId")
        if not isinstance(sku, str) or not GUID.match(sku):
            raise bad("Invalid value specified for property 'skuId' of resource 'AssignedLicense'.")
        dis = a.get("disabledPlans") or []
        if not isinstance(dis, list) or not all(isinstance(p, str) and GUID.match(p) for p in dis):
            raise bad("Invalid value specified for property 'disabledPlans' of resource 'AssignedLicense'.")
        key = sku.lower()
        if key in adds:  # UNVERIFIED wording: Graph refuses a duplicated skuId; its exact text is not public
            raise bad(f"License {key} is specified more than once in addLicenses.")
        adds[key] = sorted({p.lower() for p in dis})
    removes: list[str] = []
    for r in remove:
        if not isinstance(r, str) or not GUID.match(r):
            raise bad("Invalid value specified for property 'removeLicenses' of resource 'User'.")
        removes.append(r.lower())
    if len(set(removes)) != len(removes) or set(removes) & set(adds):
        raise bad("A license cannot be removed twice, or added and removed, in one assignLicense call.")
    # Unknown SKU, on add or remove (wording matched by public scripts, e.g. HelloID connectors, cli-microsoft365).
    for sku in [*adds, *removes]:
        if sku not in state.sku_by_id:
            raise bad(f"License {sku} does not correspond to a valid company License.")
    for sku, dis in adds.items():
        known = {p["servicePlanId"] for p in state.sku_by_id[sku].plans}
        stray = [p for p in dis if p not in known]
        if stray:  # UNVERIFIED wording (azure-docs#81269 reports "the service plan does not belong to" the SKU)
            raise bad(f"Service plan {stray[0]} does not belong to license {sku}.")
    inherited = state.inherited_skus(user)
    for sku in removes:
        if sku not in user.licenses:
            if sku in inherited:  # KelvinTegelaar/CIPP#4090 quotes this Graph message
                raise bad("User license is inherited from group membership and cannot be removed directly "
                          "from the user.")
            raise bad("User does not have a corresponding license.")  # OfficeDocs-Enterprise#873
    if adds and not user.usage_location:  # KelvinTegelaar/CIPP#783, #889
        raise bad("License assignment cannot be done for user with invalid usage location.")
    for sku in adds:
        if sku in user.licenses:
            continue  # re-adding a held SKU only replaces its disabledPlans: no new seat
        s = state.sku_by_id[sku]
        seat_held = sku in inherited and state.group_active(user, sku)
        # A Suspended/LockedOut/Deleted subscription has no assignable units, so Graph answers as for a full one.
        if s.status in INACTIVE or (not seat_held and s.enabled - state.consumed(sku) < 1):
            raise bad(f"Subscription {sku} does not have any available licenses.")
    after = {k: v for k, v in user.licenses.items() if k not in removes}
    after.update(adds)
    phone_dependency_error(state, user, after)
    return after


def validate_patch(body: Any) -> dict[str, Any]:
    """Check a PATCH /users body; return the fields to set."""
    if not isinstance(body, dict):
        raise bad("Unable to read JSON request payload. Please ensure Content-Type header is set and payload "
                  "is of valid JSON format.", "BadRequest")
    from provisioner.emulator.query import USER_PROPERTIES

    out: dict[str, Any] = {}
    for key, value in body.items():
        if key.startswith("@odata."):
            continue
        if key not in USER_PROPERTIES:
            raise bad(f"The property '{key}' does not exist on type 'microsoft.graph.user'. Make sure to only use "
                      "property names that are defined by the type or mark the type as open type.", "BadRequest")
        if key in READ_ONLY:
            raise bad(f"Property '{key}' is read-only and cannot be set.")
        if key not in WRITABLE:
            raise bad(f"Property '{key}' cannot be set on this emulator (it stores usageLocation, displayName "
                      "and accountEnabled only).")
        if key == "usageLocation":
            if not isinstance(value, str) or value.upper() not in ISO_3166:
                raise bad("Invalid value specified for property 'usageLocation' of resource 'User'.")
            out[key] = value.upper()
        elif key == "accountEnabled":
            if not isinstance(value, bool):
                raise bad("Invalid value specified for property 'accountEnabled' of resource 'User'.")
            out[key] = value
        else:
            if not isinstance(value, str) or not value.strip():
                raise bad("Invalid value specified for property 'displayName' of resource 'User'.")
            out[key] = value
    return out
