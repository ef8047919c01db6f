"""OData query options for the emulator ($select, $top, $count, $filter, $skiptoken) on users and groups. Pure parsing.

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

# Declared v1.0 group properties (group, directoryObject and entity in the same reference file).
GROUP_PROPERTIES = frozenset("""
id deletedDateTime accessType allowExternalSenders assignedLabels assignedLicenses autoSubscribeNewMembers
classification createdDateTime description displayName expirationDateTime groupTypes hasMembersWithLicenseErrors
hideFromAddressLists hideFromOutlookClients infoCatalogs isArchived isAssignableToRole isFavorite
isManagementRestricted isSubscribedByMail licenseProcessingState mail mailEnabled mailNickname membershipRule
membershipRuleProcessingState onPremisesDomainName onPremisesExtensionAttributes onPremisesLastSyncDateTime
onPremisesNetBiosName onPremisesProvisioningErrors onPremisesSamAccountName onPremisesSecurityIdentifier
onPremisesSyncEnabled organizationId preferredDataLocation preferredLanguage proxyAddresses renewedDateTime
resourceBehaviorOptions resourceProvisioningOptions securityEnabled securityIdentifier serviceProvisioningErrors
theme uniqueName unseenConversationsCount unseenCount unseenMessagesCount visibility welcomeMessageEnabled
""".split())  # noqa: SIM905 - a word list reads better than quoted strings
GROUP_COLLECTIONS = frozenset("""
assignedLabels assignedLicenses groupTypes infoCatalogs onPremisesProvisioningErrors proxyAddresses
resourceBehaviorOptions resourceProvisioningOptions serviceProvisioningErrors
""".split())  # noqa: SIM905 - a word list reads better than quoted strings
# The properties group-list.md's sample response shows without $select (the mailbox-only ones, e.g.
# allowExternalSenders or unseenCount, come only when selected on one group).
GROUP_DEFAULT = ("id", "deletedDateTime", "classification", "createdDateTime", "description", "displayName",
                 "expirationDateTime", "groupTypes", "isAssignableToRole", "mail", "mailEnabled", "mailNickname",
                 "membershipRule", "membershipRuleProcessingState", "onPremisesDomainName",
                 "onPremisesLastSyncDateTime", "onPremisesNetBiosName", "onPremisesSamAccountName",
                 "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "preferredDataLocation",
                 "preferredLanguage", "proxyAddresses", "renewedDateTime", "resourceBehaviorOptions",
                 "resourceProvisioningOptions", "securityEnabled", "securityIdentifier", "theme", "visibility",
                 "onPremisesProvisioningErrors", "serviceProvisioningErrors")

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
    """A parsed users $filter: OR of id matches, UPN matches and SKU matches (all lower-cased), optionally
    ANDed with one `usageLocation eq 'XX'` (upper-cased; alone, it matches every user in that country)."""

    upns: set[str] = field(default_factory=set)
    skus: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    clauses: int = 0
    any_clauses: int = 0
    location: str | None = None  # "" = `usageLocation eq null` (no usage location)
    null_clauses: int = 0
    or_terms: int = 0  # the OR-joined terms read (0: the filter is the location alone)

    def matches(self, upn: str, sku_ids: set[str] | dict[str, list[str]], user_id: str = "",
                usage_location: str | None = None) -> bool:
        if self.location is not None and (usage_location or "").upper() != self.location:
            return False
        if not self.or_terms:
            return True
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
    if low == "usagelocation":
        raise bad("Unsupported query: this emulator takes one usageLocation eq 'XX' only at the top level, joined "
                  "by 'and' to one other clause (not inside 'or').", "Request_UnsupportedQuery")
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
              "userPrincipalName eq/in and assignedLicenses/any(x:x/skuId eq GUID) joined by or, and "
              "usageLocation eq joined by and).",
              "Request_UnsupportedQuery")


def _location(sc: _Scanner, f: UserFilter) -> None:
    """`usageLocation eq 'XX'` or `usageLocation eq null`; the scanner stands after the property name.

    user.md: usageLocation (a two-letter ISO 3166 code) "Supports $filter (eq, ne, not, ge, le, startsWith)";
    the emulator serves eq, compared case-insensitively like Graph's other directory string filters.
    """
    op = sc.word().lower()
    if op != "eq":
        raise bad(f"Unsupported operator '{op[:20]}' on property 'usageLocation' in this emulator (it supports eq).",
                  "Request_UnsupportedQuery")
    if sc.peek() != "'":
        start = sc.i
        if sc.word().lower() == "null":
            # aad-advanced-queries.md lists filters on null values among the advanced-only query scenarios;
            # "" stands for "no usage location" (the value Graph shows as null).
            if f.location is not None:
                raise bad("Unsupported query: this emulator takes one usageLocation clause per filter.",
                          "Request_UnsupportedQuery")
            f.location = ""
            f.null_clauses += 1
            f.clauses += 1
            return
        sc.i = start
        raise bad("A binary operator with incompatible types was detected. Found operand types 'Edm.String' and "
                  "'Edm.Guid' for operator kind 'Equal'.", "BadRequest")
    value = sc.string().upper()
    if f.location is not None:
        raise bad("Unsupported query: this emulator takes one usageLocation clause per filter.",
                  "Request_UnsupportedQuery")
    f.location = value
    f.clauses += 1


def _is_location(sc: _Scanner) -> bool:
    """Whether the next word is `usageLocation` (the scanner does not move)."""
    start = sc.i
    try:
        return sc.peek() != "(" and sc.word().lower() == "usagelocation"
    except GraphRuleError:
        return False
    finally:
        sc.i = start


def _or_list(sc: _Scanner, f: UserFilter, top: bool = False) -> None:
    """OR-joined clauses. At the top level, `and` may join one `usageLocation eq 'XX'` to them (either side).

    OData binds `and` tighter than `or`, so `A or B and C` is A or (B and C): rather than read that wrongly,
    the emulator refuses `and` next to an unparenthesised `or` and asks for parentheses.
    """
    if top and _is_location(sc):
        sc.word()
        _location(sc, f)
        if sc.done():
            return
        if sc.word().lower() != "and":
            raise bad("Unsupported query: this emulator joins usageLocation to other clauses with 'and' only.",
                      "Request_UnsupportedQuery")
        _clause(sc, f)  # one clause (a parenthesised 'or' list is one): `L and A or B` is (L and A) or B
        f.or_terms += 1
        if not sc.done():
            raise bad("Unsupported query: this emulator supports 'or' between clauses, and 'and' only to join "
                      "one usageLocation eq 'XX' to them (parenthesise an 'or' list next to 'and').",
                      "Request_UnsupportedQuery")
        return
    _terms(sc, f, allow_and=top)


def _terms(sc: _Scanner, f: UserFilter, allow_and: bool) -> None:
    _clause(sc, f)
    f.or_terms += 1
    terms = 1
    while sc.peek() not in ("", ")"):
        word = sc.word().lower()
        if word == "and":
            if not allow_and or terms > 1 or not _is_location(sc):
                raise bad("Unsupported query: this emulator supports 'or' between clauses, and 'and' only to join "
                          "one usageLocation eq 'XX' to them (parenthesise an 'or' list next to 'and').",
                          "Request_UnsupportedQuery")
            sc.word()
            _location(sc, f)
            if not sc.done():
                raise bad("Unsupported query: nothing may follow the usageLocation clause in this emulator.",
                          "Request_UnsupportedQuery")
            return
        if word != "or":
            raise sc.error(f"unexpected '{word[:20]}'")
        _clause(sc, f)
        terms += 1


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
    _or_list(sc, f, top=True)
    if not sc.done():
        raise sc.error("unexpected ')'")
    if not advanced:
        if f.clauses > MAX_OR_CLAUSES:  # wording from docs-contrib#1238
            raise bad("Too many child clauses specified in search filter expression containing 'OR' operators: "
                      f"{f.clauses}. Max allowed: {MAX_OR_CLAUSES}.", "Request_UnsupportedQuery")
        if f.null_clauses:
            raise bad("Filter on null values is not supported because the 'ConsistencyLevel:eventual' header is "
                      "missing or $count=true is not set. Refer to https://aka.ms/graph-docs/advanced-queries for "
                      "more information", "Request_UnsupportedQuery")
        if f.any_clauses and f.location is not None:
            # A filter by SKU alone answers its first page as a default query (routes.py: its nextLink needs the
            # advanced form); joined to a usage location, the emulator serves it only as an advanced query, in
            # the form Graph words advanced-only queries (the tool counts holders per country only that way).
            raise bad("Filter on 'assignedLicenses' and 'usageLocation' is not supported because the "
                      "'ConsistencyLevel:eventual' header is missing or $count=true is not set. Refer to "
                      "https://aka.ms/graph-docs/advanced-queries for more information", "Request_UnsupportedQuery")
    return f


LICENSE_ERRORS = "hasMembersWithLicenseErrors"


def parse_group_filter(raw: str | None) -> set[str] | None:
    """A groups $filter: `id eq 'x'` or `id in ('a',...)` clauses joined by `or` -> the lower-cased ids.

    group.md: id "Supports $filter (eq, ne, not, in)"; the emulator serves eq and in, with the same 15-value
    limit on OR/in lists as for users (no advanced query options on this route). `hasMembersWithLicenseErrors
    eq true` alone (group.md: "Supports $filter (eq)") is the caller's: see is_license_errors_filter.
    """
    if raw is None:
        return None
    if len(raw) > MAX_FILTER:
        raise bad("The filter expression is too long.", "Request_UnsupportedQuery")
    f = UserFilter()
    sc = _Scanner(raw)
    if sc.done():
        raise bad("Invalid filter clause: the expression is empty.", "BadRequest")
    while True:
        name = sc.word()
        if name.lower() != "id":
            if not any(p.lower() == name.lower().split("/", 1)[0] for p in GROUP_PROPERTIES):
                raise bad(f"Property '{name[:60]}' does not exist as a declared property or extension property.",
                          "Request_UnsupportedQuery")
            raise bad(f"Unsupported query on property '{name[:60]}' in this emulator (on /groups it filters "
                      "on id eq/in joined by or).", "Request_UnsupportedQuery")
        f.ids.update(v.lower() for v in _eq_or_in(sc, f, "id"))
        if sc.done():
            break
        word = sc.word().lower()
        if word != "or":
            raise sc.error(f"unexpected '{word[:20]}'")
    if f.clauses > MAX_OR_CLAUSES:
        raise bad("Too many child clauses specified in search filter expression containing 'OR' operators: "
                  f"{f.clauses}. Max allowed: {MAX_OR_CLAUSES}.", "Request_UnsupportedQuery")
    return f.ids


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


def is_license_errors_filter(raw: str | None) -> bool:
    """`hasMembersWithLicenseErrors eq true` (any spacing and case of `eq true`): groups with members in error."""
    return raw is not None and " ".join(raw.split()).lower() == f"{LICENSE_ERRORS.lower()} eq true"
