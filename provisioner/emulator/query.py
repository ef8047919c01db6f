"""OData query options for the emulator ($select, $top, $count, $filter, $skiptoken). Pure parsing.

Hostile input is always a Graph 400 (GraphRuleError), never an exception or a hang: the filter parser is a
single linear scan over at most MAX_FILTER characters, with no regular expression over the whole input.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field

from provisioner.emulator.rules import GUID, GraphRuleError, bad

# Declared v1.0 properties (microsoftgraph/msgraph-metadata v1.0 CSDL, as in ../shared/reference/graph-v1-types.json).
USER_PROPERTIES = frozenset("""
id deletedDateTime aboutMe accountEnabled ageGroup assignedLicenses assignedPlans authorizationInfo birthday
businessPhones city companyName consentProvidedForMinor country createdDateTime creationType
customSecurityAttributes department deviceEnrollmentLimit displayName employeeHireDate employeeId
employeeLeaveDateTime employeeOrgData employeeType externalUserState externalUserStateChangeDateTime faxNumber
givenName hireDate identities identityParentId imAddresses interests isManagementRestricted isResourceAccount
jobTitle lastPasswordChangeDateTime legalAgeGroupClassification licenseAssignmentStates mail mailNickname
mailboxSettings mobilePhone mySite officeLocation onPremisesDistinguishedName onPremisesDomainName
onPremisesExtensionAttributes onPremisesImmutableId onPremisesLastSyncDateTime onPremisesProvisioningErrors
onPremisesSamAccountName onPremisesSecurityIdentifier onPremisesSyncEnabled onPremisesUserPrincipalName otherMails
passwordPolicies passwordProfile pastProjects postalCode preferredDataLocation preferredLanguage preferredName print
provisionedPlans proxyAddresses responsibilities schools securityIdentifier serviceProvisioningErrors
showInAddressList signInActivity signInSessionsValidFromDateTime skills state streetAddress surname usageLocation
userPrincipalName userType
""".split())  # noqa: SIM905 - a word list reads better than quoted strings
USER_COLLECTIONS = frozenset("""
assignedLicenses assignedPlans businessPhones identities imAddresses interests licenseAssignmentStates
onPremisesProvisioningErrors otherMails pastProjects provisionedPlans proxyAddresses responsibilities schools
serviceProvisioningErrors skills
""".split())  # noqa: SIM905 - a word list reads better than quoted strings
# Graph's default user properties when there is no $select (user-list.md).
USER_DEFAULT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
                "preferredLanguage", "surname", "userPrincipalName", "id")
SKU_PROPERTIES = ("accountId", "accountName", "appliesTo", "capabilityStatus", "consumedUnits", "id",
                  "prepaidUnits", "servicePlans", "skuId", "skuPartNumber", "subscriptionIds")

MAX_FILTER = 8192
MAX_OR_CLAUSES = 15  # without advanced query headers (docs-contrib#1238 / graph-docs PR #22097)
DEFAULT_TOP, MAX_TOP = 100, 999  # user-list.md: "default and maximum page sizes are 100 and 999"


def parse_select(raw: str | None, allowed: frozenset[str] | tuple[str, ...], type_name: str) -> list[str] | None:
    if raw is None:
        return None
    out: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            raise bad("Invalid $select: empty property name.", "BadRequest")
        if name not in allowed:
            # Graph matches $select names case-insensitively; the emulator asks for the declared spelling.
            match = next((a for a in allowed if a.lower() == name.lower()), None)
            if match is None:
                raise bad(f"Could not find a property named '{name}' on type '{type_name}'.")
            name = match
        if name not in out:
            out.append(name)
    return out


def parse_top(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_TOP
    text = raw.strip()
    if not text.isdigit() or len(text) > 9:
        raise bad(f"Invalid value '{raw[:40]}' for $top query option found. The $top query option requires a "
                  "non-negative integer value.", "BadRequest")
    n = int(text)
    if not 1 <= n <= MAX_TOP:  # seen verbatim from Graph in public Go code (steampipe azuread plugin)
        raise bad(f"Invalid page size specified: '{n}'. Must be between 1 and 999 inclusive.",
                  "Request_UnsupportedQuery")
    return n


def parse_count(raw: str | None) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise bad(f"Invalid value '{raw[:40]}' for $count query option found. Valid values are 'true' and 'false'.",
              "BadRequest")


@dataclass
class UserFilter:
    """A parsed users $filter: OR of id matches, UPN matches and SKU matches (all lower-cased)."""

    upns: set[str] = field(default_factory=set)
    skus: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    clauses: int = 0
    any_clauses: int = 0

    def matches(self, upn: str, sku_ids: set[str] | dict[str, list[str]], user_id: str = "") -> bool:
        return (upn.lower() in self.upns or user_id.lower() in self.ids
                or any(s in sku_ids for s in self.skus))


class _Scanner:
    """Tokens: identifiers/paths, quoted strings, GUIDs, punctuation. One pass, bounded."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def _skip_ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t\r\n":
            self.i += 1

    def peek(self) -> str:
        self._skip_ws()
        return self.text[self.i] if self.i < len(self.text) else ""

    def eat(self, ch: str) -> None:
        if self.peek() != ch:
            raise self.error(f"expected '{ch}'")
        self.i += 1

    def word(self) -> str:
        self._skip_ws()
        start = self.i
        while self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] in "_/-.:$"):
            self.i += 1
        if start == self.i:
            raise self.error("expected a name")
        return self.text[start:self.i]

    def string(self) -> str:
        self.eat("'")
        out: list[str] = []
        while True:
            j = self.text.find("'", self.i)
            if j < 0:
                raise self.error("unterminated string literal")
            out.append(self.text[self.i:j])
            self.i = j + 1
            if self.text.startswith("'", self.i):  # OData escapes ' as ''
                out.append("'")
                self.i += 1
                continue
            return "".join(out)

    def done(self) -> bool:
        return self.peek() == ""

    def error(self, what: str) -> GraphRuleError:
        return bad(f"Invalid filter clause: syntax error at position {self.i}: {what}.", "BadRequest")


def _lambda(sc: _Scanner, f: UserFilter) -> None:
    """`assignedLicenses/any(x:x/skuId eq GUID)`; the scanner stands after `any`."""
    sc.eat("(")
    head = sc.word()  # "x:x/skuId"
    var, _, path = head.partition(":")
    if not var or path.lower() != f"{var.lower()}/skuid":
        raise bad("Invalid filter clause", "BadRequest")
    if sc.word().lower() != "eq":
        raise bad("Invalid filter clause", "BadRequest")
    if sc.peek() == "'":
        raise bad("A binary operator with incompatible types was detected. Found operand types 'Edm.Guid' and "
                  "'Edm.String' for operator kind 'Equal'.", "BadRequest")
    guid = sc.word()
    if not GUID.match(guid):
        raise bad(f"Invalid filter clause: '{guid[:40]}' is not a GUID.", "BadRequest")
    if sc.peek() != ")":
        # graph-docs#14036: `any(x:x/skuId eq A or x/skuId eq B)` answers 400 BadRequest "Invalid filter clause"
        raise bad("Invalid filter clause", "BadRequest")
    sc.eat(")")
    f.skus.add(guid.lower())
    f.clauses += 1
    f.any_clauses += 1


def _string_value(sc: _Scanner, prop: str, kind: str) -> str:
    if sc.peek() != "'" and prop == "id":
        raise bad("A binary operator with incompatible types was detected. Found operand types 'Edm.String' and "
                  f"'Edm.Guid' for operator kind '{kind}'.", "BadRequest")
    return sc.string()


def _eq_or_in(sc: _Scanner, f: UserFilter, prop: str) -> list[str]:
    """`PROP eq 'v'` or `PROP in ('a','b',...)` (at most 15 values); the scanner stands after PROP."""
    op = sc.word().lower()
    if op == "eq":
        f.clauses += 1
        return [_string_value(sc, prop, "Equal")]
    if op != "in":
        raise bad(f"Unsupported operator '{op[:20]}' on property '{prop}' in this emulator (it supports eq and in).",
                  "Request_UnsupportedQuery")
    sc.eat("(")
    values = [_string_value(sc, prop, "In")]
    while sc.peek() == ",":
        sc.eat(",")
        values.append(_string_value(sc, prop, "In"))
    sc.eat(")")
    f.clauses += len(values)
    if len(values) > MAX_OR_CLAUSES:  # the `in` operator is limited to 15 values (docs-contrib#1238)
        raise bad("Too many child clauses specified in search filter expression containing 'OR' "
                  f"operators: {len(values)}. Max allowed: {MAX_OR_CLAUSES}.", "Request_UnsupportedQuery")
    return values


def _clause(sc: _Scanner, f: UserFilter) -> None:
    if sc.peek() == "(":
        sc.eat("(")
        _or_list(sc, f)
        sc.eat(")")
        return
    name = sc.word()
    low = name.lower()
    if low == "assignedlicenses/any":
        _lambda(sc, f)
        return
    prop = low.split("/", 1)[0]
    if low == "userprincipalname":
        f.upns.update(v.lower() for v in _eq_or_in(sc, f, "userPrincipalName"))
        return
    if low == "id":
        # user.md: id is a String (opaque, a GUID in practice) that supports $filter (eq, ne, not, in); the
        # emulator serves eq and in. A bare GUID is an Edm.Guid literal, not a string: a type error, as for
        # skuId the other way round.
        f.ids.update(v.lower() for v in _eq_or_in(sc, f, "id"))
        return
    if not any(p.lower() == prop for p in USER_PROPERTIES):
        raise bad(f"Property '{name[:60]}' does not exist as a declared property or extension property.",
                  "Request_UnsupportedQuery")
    raise bad(f"Unsupported query on property '{name[:60]}' in this emulator (it filters on id and "
              "userPrincipalName eq/in and assignedLicenses/any(x:x/skuId eq GUID) joined by or).",
              "Request_UnsupportedQuery")


def _or_list(sc: _Scanner, f: UserFilter) -> None:
    _clause(sc, f)
    while sc.peek() not in ("", ")"):
        word = sc.word().lower()
        if word == "and":
            raise bad("Unsupported query: this emulator supports 'or' between clauses, not 'and'.",
                      "Request_UnsupportedQuery")
        if word != "or":
            raise sc.error(f"unexpected '{word[:20]}'")
        _clause(sc, f)


def parse_user_filter(raw: str | None, advanced: bool) -> UserFilter | None:
    """Parse a users $filter. `advanced` = ConsistencyLevel: eventual with $count=true."""
    if raw is None:
        return None
    if len(raw) > MAX_FILTER:
        raise bad("The filter expression is too long.", "Request_UnsupportedQuery")
    if raw.count("(") > 64:
        raise bad("Invalid filter clause: expression nested too deeply.", "BadRequest")
    f = UserFilter()
    sc = _Scanner(raw)
    if sc.done():
        raise bad("Invalid filter clause: the expression is empty.", "BadRequest")
    _or_list(sc, f)
    if not sc.done():
        raise sc.error("unexpected ')'")
    if not advanced:
        if f.clauses > MAX_OR_CLAUSES:  # wording from docs-contrib#1238
            raise bad("Too many child clauses specified in search filter expression containing 'OR' operators: "
                      f"{f.clauses}. Max allowed: {MAX_OR_CLAUSES}.", "Request_UnsupportedQuery")
        if f.any_clauses:
            # A filter by SKU is served as an advanced query (graph-docs PR #15703, issue #14231; Microsoft's
            # own Get-MgUser example passes -ConsistencyLevel eventual -CountVariable). The emulator requires
            # ConsistencyLevel: eventual + $count=true for it, in the form Graph words advanced-only queries
            # ("Operator 'endsWith' is not supported because the 'ConsistencyLevel:eventual' header is missing").
            raise bad("Filter on 'assignedLicenses' is not supported because the 'ConsistencyLevel:eventual' "
                      "header is missing or $count=true is not set. Refer to "
                      "https://aka.ms/graph-docs/advanced-queries for more information", "Request_UnsupportedQuery")
    return f


# -- $skiptoken: opaque, bound to the query it was issued for --------------------------------------------

def make_skiptoken(offset: int, bind: str) -> str:
    raw = f"{offset}.{zlib.crc32(f'{offset}|{bind}'.encode()):08x}".encode()
    return "RFNwd" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_skiptoken(token: str, bind: str) -> int:
    try:
        if not token.startswith("RFNwd") or len(token) > 200:
            raise ValueError
        body = token[5:]
        text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        off_s, _, crc = text.partition(".")
        offset = int(off_s)
        if offset < 0 or f"{zlib.crc32(f'{offset}|{bind}'.encode()):08x}" != crc:
            raise ValueError
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad("The $skiptoken is not valid for this request: follow @odata.nextLink exactly as returned.",
                  "Request_BadRequest") from exc
    return offset
