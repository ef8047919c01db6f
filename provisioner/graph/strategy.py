"""How to read the users planning needs at the fewest round trips: OData filters and the cost model. Pure.

Two ways to get "the named users plus every holder of a managed SKU":
  filtered  `assignedLicenses/any(x:x/skuId eq G) or ...` (an advanced query: ConsistencyLevel eventual +
            $count=true), plus UPN look-ups `userPrincipalName in (...)`, 15 values a GET, 20 GETs a $batch;
  scan      every user, `$top=999` a page, keeping the named and the managed.
When planning needs only the named users (no `unlisted: remove`), a third way:
  counted   the UPN look-ups, plus holder COUNTS of each Calling Plan SKU per usage location (the minute
            pools need only how many hold each, not who): `usageLocation eq 'XX' and
            assignedLicenses/any(x:x/skuId eq G)` with $count=true&$top=1, one GET a pair, 20 a $batch.
Users known by id (a saved plan's stale check) are read the same way as the UPN look-ups: `id in (...)`,
15 ids a GET, 20 GETs a $batch, so 300 users a round trip; so are group names (`/groups`, same filters).
Graph pages a query only sequentially (@odata.nextLink), so the cost that matters is round trips.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

PAGE_SIZE = 999  # Graph's maximum $top for users
UPNS_PER_FILTER = 15  # `in (...)` values per request: Graph's limit on OR clauses without advanced queries
BATCH_SIZE = 20  # requests per $batch (Graph's limit)
MAX_FILTER_CHARS = 1800  # encoded $filter length per request, well under Graph's URL limits

USER_SELECT = (
    "id",
    "userPrincipalName",
    "displayName",
    "accountEnabled",
    "usageLocation",
    "assignedLicenses",
    "licenseAssignmentStates",
)
SELECT_PARAM = "$select=" + ",".join(USER_SELECT)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, with embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def encode(filter_text: str) -> str:
    """Percent-encode a $filter value for a URL (also safe inside a $batch sub-request URL)."""
    return quote(filter_text, safe="")


def upn_filters(upns: Iterable[str], per_request: int = UPNS_PER_FILTER) -> list[str]:
    """`userPrincipalName in ('a','b',...)` filters over the distinct lower-cased UPNs, sorted, `per_request` each."""
    distinct = sorted({u.strip().lower() for u in upns if u and u.strip()})
    return [
        "userPrincipalName in (" + ",".join(odata_string(u) for u in distinct[i : i + per_request]) + ")"
        for i in range(0, len(distinct), per_request)
    ]


def is_guid(text: str) -> bool:
    """A directory object id: 8-4-4-4-12 hex digits (any case)."""
    return _GUID.fullmatch(text) is not None


def id_filters(ids: Iterable[str], per_request: int = UPNS_PER_FILTER) -> list[str]:
    """`id in ('a','b',...)` filters over the distinct GUIDs among `ids`, lower-cased, sorted, `per_request` each.

    user.md: a user's `id` is a String that supports `$filter` (eq, ne, not, in); an `in` list is held to the
    same 15 values a request as any OR list without advanced query headers. A string that is not a GUID names
    no directory object, so it is left out rather than risk a 400 for the whole request.
    """
    distinct = sorted({i.strip().lower() for i in ids if i and is_guid(i.strip())})
    return [
        "id in (" + ",".join(odata_string(i) for i in distinct[k : k + per_request]) + ")"
        for k in range(0, len(distinct), per_request)
    ]


def sku_filters(sku_ids: Iterable[str], max_chars: int = MAX_FILTER_CHARS) -> list[str]:
    """`assignedLicenses/any(x:x/skuId eq G1) or ...` filters, split so each encoded filter fits `max_chars`."""
    out: list[str] = []
    current: list[str] = []
    for sku in sorted({s.lower() for s in sku_ids}):
        clause = f"assignedLicenses/any(x:x/skuId eq {sku})"
        candidate = " or ".join([*current, clause])
        if current and len(encode(candidate)) > max_chars:
            out.append(" or ".join(current))
            current = [clause]
        else:
            current.append(clause)
    if current:
        out.append(" or ".join(current))
    return out


def users_url(base: str, *, filter_text: str | None = None, top: int = PAGE_SIZE, count: bool = False) -> str:
    parts = [SELECT_PARAM, f"$top={top}"]
    if filter_text is not None:
        parts.insert(0, "$filter=" + encode(filter_text))
    if count:
        parts.append("$count=true")
    return f"{base}/users?" + "&".join(parts)


GROUP_SELECT_PARAM = "$select=id,displayName"  # group names for messages: nothing else is read from groups


def groups_url(filter_text: str) -> str:
    """`/groups?$filter=...&$select=id,displayName` (relative: a `$batch` sub-request URL)."""
    return "/groups?$filter=" + encode(filter_text) + "&" + GROUP_SELECT_PARAM


def holders_filter(sku_id: str, country: str | None = None) -> str:
    """Holders of one SKU; with `country`, only those in that usage location ("": those with none).

    user.md: usageLocation "Supports $filter (eq, ne, not, ge, le, startsWith)"; `eq null` is one of the
    null-value filters aad-advanced-queries.md serves as an advanced query (these counts are advanced anyway).
    """
    clause = f"assignedLicenses/any(x:x/skuId eq {sku_id.lower()})"
    if country is None:
        return clause
    value = odata_string(country.upper()) if country else "null"
    return f"usageLocation eq {value} and {clause}"


def count_url(filter_text: str) -> str:
    """A count-only query: `@odata.count` answers it; one id rides along because $top must be at least 1."""
    return "/users?$filter=" + encode(filter_text) + "&$count=true&$top=1&$select=id"


def counted_cost(n_named: int, n_counts: int) -> int:
    """Round trips of the counted read: look-ups and counts packed together, 20 GETs a $batch."""
    return math.ceil((math.ceil(n_named / UPNS_PER_FILTER) + n_counts) / BATCH_SIZE)


@dataclass(frozen=True)
class ReadChoice:
    """The chosen strategy and the round trips each would take (for --debug and tests)."""

    strategy: str  # "filtered" | "scan" | "lookup" | "counted"
    filtered_cost: int
    scan_cost: int

    counted_cost: int = -1  # -1: not considered (the plan needs every holder)

    def describe(self) -> str:
        counted = f", named users + counts {self.counted_cost}" if self.counted_cost >= 0 else ""
        return (
            f"read strategy: {self.strategy} (estimated round trips: filtered {self.filtered_cost}, "
            f"full scan {self.scan_cost}{counted})"
        )


def pages(n: int) -> int:
    return max(1, math.ceil(n / PAGE_SIZE))


def lookup_batches(n_named: int) -> int:
    return math.ceil(math.ceil(n_named / UPNS_PER_FILTER) / BATCH_SIZE) if n_named else 0


def choose(
    *,
    n_users: int | None,
    managed_estimate: int,
    n_named: int,
    n_sku_filters: int,
    include_all_managed: bool,
) -> ReadChoice:
    """Pick the cheaper way to read.

    n_users: the directory size (@odata.count), None when unknown (then never scan).
    managed_estimate: an upper bound of the users holding a managed SKU (sum of their consumedUnits).
    The filtered cost counts the first page of each SKU filter as riding in the first look-up $batch.
    """
    scan = pages(n_users) if n_users is not None else math.inf
    lookups = lookup_batches(n_named)
    if include_all_managed and n_sku_filters:
        extra_pages = (
            pages(managed_estimate) - 1 if n_sku_filters == 1 else n_sku_filters * pages(managed_estimate)
        )
        filtered = max(1, lookups) + extra_pages
    else:
        filtered = lookups
    strategy = "filtered" if filtered <= scan else "scan"
    if strategy == "filtered" and not (include_all_managed and n_sku_filters):
        strategy = "lookup"
    return ReadChoice(strategy, int(filtered), int(scan) if scan != math.inf else -1)


def choose_counted(full: ReadChoice, *, n_named: int, n_counts: int) -> ReadChoice:
    """Counted read or the full one (`full`, from `choose(include_all_managed=True)`): the cheaper.

    A tie goes to the full read: as cheap, and complete. When the named users are most of the managed
    holders, their look-ups cost about what the holders' pages do, so the full read wins by itself.
    """
    counted = counted_cost(n_named, n_counts)
    best_full = full.scan_cost if full.strategy == "scan" else full.filtered_cost
    if best_full <= counted:
        return ReadChoice(full.strategy, full.filtered_cost, full.scan_cost, counted)
    return ReadChoice("counted", full.filtered_cost, full.scan_cost, counted)
