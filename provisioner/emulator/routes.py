"""The emulator's HTTP layer: a starlette app serving CONTRACT §4's Graph routes under /v1.0, $batch and stats.

Impure (mutates the TenantState it is given). Rules live in rules.py, OData parsing in query.py, JSON shapes
in render.py; this module routes, counts, injects faults and shapes Graph's responses and error bodies.
Handlers are synchronous between awaits, so requests never interleave inside a mutation (no locks needed).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import orjson
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from provisioner.emulator import render
from provisioner.emulator.faults import FaultConfig, FaultInjector
from provisioner.emulator.query import (
    GROUP_DEFAULT,
    GROUP_PROPERTIES,
    SKU_PROPERTIES,
    USER_DEFAULT,
    USER_PROPERTIES,
    UserFilter,
    is_license_errors_filter,
    make_skiptoken,
    parse_count,
    parse_group_filter,
    parse_select,
    parse_top,
    parse_user_filter,
    read_skiptoken,
)
from provisioner.emulator.replies import JSON_TYPE, Reply, Stats, error_reply, json_reply
from provisioner.emulator.rules import GUID, GraphRuleError, bad, validate_assign, validate_patch
from provisioner.emulator.state import Group, TenantState, User

MAX_BATCH = 20  # json-batching.md: "JSON batch requests are currently limited to 20 individual requests."
STATS_KEYS = ("requests", "batches", "subRequests", "throttled", "errors", "byRoute")


class Emulator:
    """The routes, caches and counters around one TenantState (one per app)."""

    def __init__(self, state: TenantState, faults: FaultConfig | None,
                 on_write: Callable[[tuple[str, str, Any]], None] | None):
        self.state = state
        self.faults = FaultInjector(faults)
        self.on_write = on_write
        self.stats = Stats()
        self.last_batch_levels = 1  # levels of the last $batch's longest dependsOn chain (read right after batch())
        # serialized users per $select (few distinct selects in practice; bounded LRU), invalidated per user
        self._user_cache: OrderedDict[tuple[str, ...], dict[str, bytes]] = OrderedDict()
        # filtered user lists per (filter, state.version): paging a filter is not O(n) per page
        self._filter_cache: OrderedDict[tuple[Any, ...], list[User]] = OrderedDict()
        self._group_index: tuple[int, dict[str, Group]] = (-1, {})

    # -- dispatch ------------------------------------------------------------------------------------------

    def route(self, path: str) -> tuple[str | None, dict[str, Callable[..., Reply]], str | None]:
        """(route template, handlers by method, user key) for a path relative to /v1.0 (decoded).

        The template is None for a path the emulator does not serve."""
        parts = path.strip("/").split("/") if path.strip("/") else []
        low = [p.lower() for p in parts]
        if low == ["users"]:
            return "/users", {"GET": self.list_users}, None
        if len(low) == 2 and low[0] == "users":
            return "/users/{id}", {"GET": self.get_user, "PATCH": self.patch_user}, parts[1]
        if len(low) == 3 and low[0] == "users" and low[2] == "assignlicense":
            return "/users/{id}/assignLicense", {"POST": self.assign_license}, parts[1]
        if low == ["groups"]:
            return "/groups", {"GET": self.list_groups}, None
        if len(low) == 2 and low[0] == "groups":
            return "/groups/{id}", {"GET": self.get_group}, parts[1]
        if len(low) == 3 and low[0] == "groups" and low[2] == "memberswithlicenseerrors":
            return "/groups/{id}/membersWithLicenseErrors", {"GET": self.members_with_license_errors}, parts[1]
        if low == ["subscribedskus"]:
            return "/subscribedSkus", {"GET": self.list_skus}, None
        if low == ["organization"]:
            return "/organization", {"GET": self.organization}, None
        return None, {}, None

    def dispatch(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
                 body: Any, base: str, rid: str) -> tuple[str, Reply]:
        """Run one Graph request (top level or batch sub-request): route, fault, handle. Never raises."""
        label, reply = self._dispatch(method, path, query, headers, body, base, rid)
        if method in ("POST", "PATCH") and 200 <= reply.status < 300:
            lost = self.faults.lose_reply()
            if lost is not None:  # the write stands; only its answer is lost
                return label, error_reply(lost.status, lost.code, lost.message, rid, lost.headers)
        return label, reply

    def _dispatch(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
                  body: Any, base: str, rid: str) -> tuple[str, Reply]:
        template, handlers, key = self.route(path)
        segments = path.strip("/").split("/")
        segment = segments[0]
        # unknown paths count under their first segment only (byRoute must not grow with every user id)
        label = f"{method} {template or '/' + segment + ('/*' if len(segments) > 1 else '')}"
        self.stats.byRoute[label] = self.stats.byRoute.get(label, 0) + 1
        fault = self.faults.decide()
        if fault is not None:
            return label, error_reply(fault.status, fault.code, fault.message, rid, fault.headers)
        if template is None:
            return label, error_reply(400, "BadRequest", f"Resource not found for the segment '{segment}'.", rid)
        handler = handlers.get(method)
        if handler is None:
            return label, error_reply(405, "Request_BadRequest",
                                      "Specified HTTP method is not allowed for the request target.", rid)
        try:
            if key is not None and template.startswith("/groups/"):
                if not GUID.match(key):  # a group is known by its object id only (no alternate key)
                    return label, error_reply(400, "Request_BadRequest", f"Invalid object identifier '{key}'.", rid)
                group = self._groups().get(key.lower())
                if group is None:
                    return label, _not_found(key, rid)
                return label, handler(group, query=query, headers=headers, body=body, base=base)
            if key is not None:
                user = self.state.find_user(key)
                if user is None:
                    return label, _not_found(key, rid)
                return label, handler(user, query=query, headers=headers, body=body, base=base)
            return label, handler(query=query, headers=headers, body=body, base=base)
        except GraphRuleError as exc:
            return label, error_reply(exc.status, exc.code, exc.message, rid, exc.headers)

    # -- users -----------------------------------------------------------------------------------------------

    def _user_bytes(self, user: User, props: tuple[str, ...]) -> bytes:
        cache = self._user_cache.get(props)
        if cache is None:
            cache = self._user_cache[props] = {}
            if len(self._user_cache) > 8:  # ~50 MB per select on a 100k-user tenant: keep a few
                self._user_cache.popitem(last=False)
        data = cache.get(user.id)
        if data is None:
            data = cache[user.id] = orjson.dumps(render.user_json(self.state, user, props))
        return data

    def _invalidate(self, user_ids: set[str]) -> None:
        for cache in self._user_cache.values():
            for uid in user_ids:
                cache.pop(uid, None)
        self._filter_cache.clear()

    def _matching(self, flt: UserFilter | None) -> list[User]:
        st = self.state
        if flt is None:
            return st.users
        key = (frozenset(flt.upns), frozenset(flt.skus), frozenset(flt.ids), flt.location, flt.or_terms > 0,
               st.version)
        hit = self._filter_cache.get(key)
        if hit is not None:
            return hit
        if not flt.or_terms:  # `usageLocation eq 'XX'` alone: a scan (Graph has an index; the emulator need not)
            users = [u for u in st.users if (u.usage_location or "").upper() == flt.location]
            self._remember(key, users)
            return users
        ids: set[str] = set()
        for uid in flt.ids:
            by_id = st.user_by_id.get(uid)
            if by_id is not None:
                ids.add(by_id.id)
        for upn in flt.upns:
            u = st.user_by_upn.get(upn)
            if u is not None:
                ids.add(u.id)
        for sku in flt.skus:  # the skuId -> holders index, not a scan of every user
            ids.update(st.holders.get(sku, ()))
        users = [st.users[i] for i in sorted(st.pos[uid] for uid in ids)]
        if flt.location is not None:  # ANDed with the OR terms (usageLocation eq 'XX' and ...)
            users = [u for u in users if (u.usage_location or "").upper() == flt.location]
        self._remember(key, users)
        return users

    def _remember(self, key: tuple[object, ...], users: list[User]) -> None:
        self._filter_cache[key] = users
        if len(self._filter_cache) > 32:
            self._filter_cache.popitem(last=False)

    def list_users(self, *, query: dict[str, str], headers: Mapping[str, str], body: Any, base: str) -> Reply:
        if _opt(query, "skip") is not None:  # verbatim Graph answer (msgraph-metadata#135)
            raise bad("'$skip' is not supported by the service.")
        for name in ("orderby", "search", "expand"):
            if _opt(query, name) is not None:  # Graph supports these; the emulator does not, and says so
                raise bad(f"${name} is not supported by this emulator on /users.", "Request_UnsupportedQuery")
        select = parse_select(_opt(query, "select"), USER_PROPERTIES, "microsoft.graph.user")
        top = parse_top(_opt(query, "top"))
        count = parse_count(_opt(query, "count"))
        token = _opt(query, "skiptoken")
        eventual = headers.get("consistencylevel", "").lower() == "eventual"
        if count and not eventual and token is None:
            # Directory objects answer $count without the advanced-query header so (aad-advanced-queries.md)
            raise bad("$count is not currently supported.")
        raw_filter = _opt(query, "filter")
        # A nextLink carries a skiptoken minted for a query already accepted: its pages need no header again.
        flt = parse_user_filter(raw_filter, advanced=(count and eventual) or token is not None)
        if token is not None and flt is not None and flt.any_clauses and not count:
            # A filter by SKU answers its first page as a default query (query-parameters.md shows it without
            # the header), but its nextLink fails unless the query was advanced: graph-docs#14231, and #7855's
            # "Directory_ExpiredPageToken" on following it. Graph's fix was the docs: ConsistencyLevel + $count.
            raise GraphRuleError(400, "Directory_ExpiredPageToken",
                                 "The specified page token value has expired and can no longer be included in your "
                                 "request.")
        props = tuple(select) if select is not None else USER_DEFAULT
        bind = "|".join([raw_filter or "", ",".join(props), str(top), str(count)])
        offset = read_skiptoken(token, bind) if token is not None else 0
        users = self._matching(flt)
        page = users[offset:offset + top]
        parts = [b'{"@odata.context":', orjson.dumps(f"{base}/$metadata#users"
                                                     + (f"({','.join(props)})" if select else ""))]
        if count and token is None:  # only the first page carries the count (docs-contrib#1031)
            parts += [b',"@odata.count":', str(len(users)).encode()]
        if offset + top < len(users):
            keep = [(k, v) for k, v in query.items() if k.lstrip("$").lower() != "skiptoken"]
            keep.append(("$skiptoken", make_skiptoken(offset + top, bind)))
            qs = "&".join(f"{k}={quote(v, safe=_SAFE)}" for k, v in keep)
            parts += [b',"@odata.nextLink":', orjson.dumps(f"{base}/users?{qs}")]
        parts += [b',"value":[', b",".join(self._user_bytes(u, props) for u in page), b"]}"]
        return Reply(200, b"".join(parts), {"Content-Type": JSON_TYPE})

    def get_user(self, user: User, *, query: dict[str, str], headers: Mapping[str, str], body: Any,
                 base: str) -> Reply:
        select = parse_select(_opt(query, "select"), USER_PROPERTIES, "microsoft.graph.user")
        props = tuple(select) if select is not None else USER_DEFAULT
        context = f"{base}/$metadata#users" + (f"({','.join(props)})" if select else "") + "/$entity"
        data = self._user_bytes(user, props)
        return Reply(200, b'{"@odata.context":' + orjson.dumps(context) + b"," + data[1:],
                     {"Content-Type": JSON_TYPE})

    def patch_user(self, user: User, *, query: dict[str, str], headers: Mapping[str, str], body: Any,
                   base: str) -> Reply:
        fields = validate_patch(body)
        if fields:
            self.state.set_user_fields(user, fields)
            self._invalidate({user.id})
            self._wrote(("fields", user.id, fields))
        return Reply(204)

    def assign_license(self, user: User, *, query: dict[str, str], headers: Mapping[str, str], body: Any,
                       base: str) -> Reply:
        new = validate_assign(self.state, user, body)  # raises before anything changes
        affected = self.state.set_direct_licenses(user, new)
        self._invalidate(affected)
        self._wrote(("licenses", user.id, new))
        # user-assignlicense.md: "200 OK response code and a user object in the response body"
        context = f"{base}/$metadata#users/$entity"
        data = self._user_bytes(user, USER_DEFAULT)
        return Reply(200, b'{"@odata.context":' + orjson.dumps(context) + b"," + data[1:],
                     {"Content-Type": JSON_TYPE})

    def _wrote(self, op: tuple[str, str, Any]) -> None:
        """Tell the owner (LocalTenant: journal and save) what changed, before the answer goes out."""
        if self.on_write is not None:
            self.on_write(op)

    # -- groups (read-only: display names for messages) -----------------------------------------------------

    def _groups(self) -> dict[str, Group]:
        """Groups by lower-cased id; groups never change through the API, so one index per state version."""
        if self._group_index[0] != self.state.version:
            self._group_index = (self.state.version, {g.id.lower(): g for g in self.state.groups})
        return self._group_index[1]

    def list_groups(self, *, query: dict[str, str], headers: Mapping[str, str], body: Any, base: str) -> Reply:
        if _opt(query, "skip") is not None:
            raise bad("'$skip' is not supported by the service.")
        for name in ("orderby", "search", "expand", "count"):
            if _opt(query, name) is not None:  # Graph supports these; the emulator does not, and says so
                raise bad(f"${name} is not supported by this emulator on /groups.", "Request_UnsupportedQuery")
        select = parse_select(_opt(query, "select"), GROUP_PROPERTIES, "microsoft.graph.group")
        top = parse_top(_opt(query, "top"))
        token = _opt(query, "skiptoken")
        raw_filter = _opt(query, "filter")
        errors_only = is_license_errors_filter(raw_filter)
        if errors_only and headers.get("consistencylevel", "").lower() == "eventual" and token is None:
            # graph-docs-contrib#9437: this property "doesn't soft-fail if you use advanced query parameters"
            raise bad("Unsupported or invalid query filter clause specified for property "
                      "'hasMembersWithLicenseErrors' of resource 'Group'.", "Request_UnsupportedQuery")
        ids = None if errors_only else parse_group_filter(raw_filter)
        props = tuple(select) if select is not None else GROUP_DEFAULT
        bind = "|".join(["groups", raw_filter or "", ",".join(props), str(top)])
        offset = read_skiptoken(token, bind) if token is not None else 0
        groups = self.state.groups if ids is None else [g for g in self.state.groups if g.id.lower() in ids]
        if errors_only:
            groups = [g for g in groups if self.state.members_with_license_errors(g, first_only=True)]
        page = groups[offset:offset + top]
        out: dict[str, Any] = {"@odata.context": f"{base}/$metadata#groups"
                               + (f"({','.join(props)})" if select else "")}
        if offset + top < len(groups):
            keep = [(k, v) for k, v in query.items() if k.lstrip("$").lower() != "skiptoken"]
            keep.append(("$skiptoken", make_skiptoken(offset + top, bind)))
            out["@odata.nextLink"] = f"{base}/groups?" + "&".join(f"{k}={quote(v, safe=_SAFE)}" for k, v in keep)
        out["value"] = [render.group_json(g, props) for g in page]
        return json_reply(out)

    def members_with_license_errors(self, group: Group, *, query: dict[str, str], headers: Mapping[str, str],
                                    body: Any, base: str) -> Reply:
        """GET /groups/{id}/membersWithLicenseErrors (group-list-memberswithlicenseerrors.md): the members some
        license of the group is in error for, as directoryObjects (users here), paged like /users."""
        if _opt(query, "skip") is not None:
            raise bad("'$skip' is not supported by the service.")
        for name in ("orderby", "search", "expand", "count", "filter"):
            if _opt(query, name) is not None:
                raise bad(f"${name} is not supported by this emulator on membersWithLicenseErrors.",
                          "Request_UnsupportedQuery")
        select = parse_select(_opt(query, "select"), USER_PROPERTIES, "microsoft.graph.user")
        props = tuple(select) if select is not None else USER_DEFAULT
        top = parse_top(_opt(query, "top"))
        token = _opt(query, "skiptoken")
        bind = "|".join(["errors", group.id, ",".join(props), str(top)])
        offset = read_skiptoken(token, bind) if token is not None else 0
        members = self.state.members_with_license_errors(group)
        page = members[offset:offset + top]
        out: dict[str, Any] = {"@odata.context": f"{base}/$metadata#directoryObjects"}
        if offset + top < len(members):
            keep = [(k, v) for k, v in query.items() if k.lstrip("$").lower() != "skiptoken"]
            keep.append(("$skiptoken", make_skiptoken(offset + top, bind)))
            out["@odata.nextLink"] = (f"{base}/groups/{group.id}/membersWithLicenseErrors?"
                                      + "&".join(f"{k}={quote(v, safe=_SAFE)}" for k, v in keep))
        out["value"] = [{"@odata.type": "#microsoft.graph.user", **render.user_json(self.state, u, props)}
                        for u in page]
        return json_reply(out)

    def get_group(self, group: Group, *, query: dict[str, str], headers: Mapping[str, str], body: Any,
                  base: str) -> Reply:
        select = parse_select(_opt(query, "select"), GROUP_PROPERTIES, "microsoft.graph.group")
        props = tuple(select) if select is not None else GROUP_DEFAULT
        context = f"{base}/$metadata#groups" + (f"({','.join(props)})" if select else "") + "/$entity"
        return json_reply({"@odata.context": context, **render.group_json(group, props)})

    # -- tenant ----------------------------------------------------------------------------------------------

    def list_skus(self, *, query: dict[str, str], headers: Mapping[str, str], body: Any, base: str) -> Reply:
        select = parse_select(_opt(query, "select"), SKU_PROPERTIES, "microsoft.graph.subscribedSku")
        props = tuple(select) if select is not None else SKU_PROPERTIES
        value = [render.sku_json(self.state, s.sku_id, props) for s in self.state.skus]
        return json_reply({"@odata.context": f"{base}/$metadata#subscribedSkus", "value": value})

    def organization(self, *, query: dict[str, str], headers: Mapping[str, str], body: Any, base: str) -> Reply:
        return json_reply({"@odata.context": f"{base}/$metadata#organization",
                           "value": [render.organization_json(self.state)]})

    # -- $batch ----------------------------------------------------------------------------------------------

    def batch(self, body: Any, base: str, rid: str) -> Reply:
        """json-batching.md: <= 20 requests, dependsOn, 424 for dependents of a failed request, 200 envelope."""
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise bad("Invalid batch payload format.", "BadRequest")
        if len(requests) > MAX_BATCH:
            raise bad(f"The number of requests in the batch ({len(requests)}) exceeds the limit of {MAX_BATCH}.",
                      "BadRequest")
        ids: list[str] = []
        for r in requests:
            if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r["id"] \
                    or not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str):
                raise bad("Invalid batch payload format: each request needs id, method and url.", "BadRequest")
            if not isinstance(r.get("headers", {}), dict):
                raise bad(f"Invalid batch payload format: headers of request '{r['id']}' must be an object.",
                          "BadRequest")
            if r["id"].lower() in (i.lower() for i in ids):  # ids are case insensitive (json-batching.md)
                raise bad(f"Batch request id '{r['id']}' is not unique.", "BadRequest")
            deps = r.get("dependsOn", [])
            if not isinstance(deps, list) or any(d not in ids for d in deps):
                # a dependency must name an earlier request of the same batch (no cycles, no forward refs)
                raise bad(f"Invalid dependsOn in request '{r['id']}': it must list ids of earlier requests.",
                          "BadRequest")
            if r["method"].upper() in ("POST", "PATCH", "PUT") and (
                    r.get("body") is None or not any(str(k).lower() == "content-type"
                                                     for k in (r.get("headers") or {}))):
                # Graph refuses the whole batch when a write sub-request lacks a body or its Content-Type
                raise bad(f"Write request id : {r['id']} does not contain Content-Type header or body.",
                          "BadRequest")
            ids.append(r["id"])
        _check_batch_shape(requests)
        status: dict[str, int] = {}
        out: list[dict[str, Any]] = []
        # Graph runs independent sub-requests in parallel and a dependsOn chain in sequence: with added latency
        # per sub-request, the batch takes one latency per level of its longest chain (level 1 is the envelope's).
        level: dict[str, int] = {}
        for r in requests:
            level[r["id"]] = 1 + max((level[d] for d in r.get("dependsOn", [])), default=0)
        self.last_batch_levels = max(level.values())
        for r in requests:
            sub_rid = str(uuid.uuid4())
            self.stats.subRequests += 1
            failed = [d for d in r.get("dependsOn", []) if status[d] >= 400]
            if failed:
                reply = error_reply(424, "FailedDependency", "Failed dependency: request "
                                    f"'{failed[0]}' of this batch did not succeed.", sub_rid)
            else:
                method, url = r["method"].upper(), r["url"]
                path, query = _split_url(url)
                hdrs = {str(k).lower(): str(v) for k, v in (r.get("headers") or {}).items()}
                if path is None:  # an absolute URL: Graph resolves it under the version, and finds no such segment
                    segment = url.split("/", 1)[0][:100]
                    reply = error_reply(400, "BadRequest", f"Resource not found for the segment '{segment}'.", sub_rid)
                else:
                    _, reply = self.dispatch(method, path, query, hdrs, r.get("body"), base, sub_rid)
            self.stats.outcome(reply.status)
            status[r["id"]] = reply.status
            item: dict[str, Any] = {"id": r["id"], "status": reply.status,
                                    "headers": {k: v for k, v in reply.headers.items()}}
            if reply.body:
                item["body"] = orjson.loads(reply.body)
            out.append(item)
        # "responses can come back in any order": a fixed shuffle, so clients that assume order fail here
        out.sort(key=lambda it: uuid.uuid5(uuid.NAMESPACE_OID, it["id"]).hex)
        return json_reply({"responses": out})


def _check_batch_shape(requests: list[dict[str, Any]]) -> None:
    """json-batching.md: "Batch should be either fully sequential or fully parallel." Graph refuses the whole
    batch otherwise (graph-docs#16280: a mix of parallel requests and dependsOn chains "would get a 400 Bad
    Request: Batch should be either fully sequential or fully parallel", which Microsoft confirmed by fixing
    the example). Accepted, as Microsoft's JS SDK validates them: no dependsOn at all; each request depending
    on exactly the one before it; every other request depending on exactly the first one."""
    deps = [list(r.get("dependsOn") or []) for r in requests]
    if not any(deps):
        return
    ids = [r["id"] for r in requests]
    serial = all(d == [ids[i - 1]] for i, d in enumerate(deps) if i) and not deps[0]
    same = not deps[0] and all(d == [ids[0]] for d in deps[1:])
    if not (serial or same):
        raise bad("Batch should be either fully sequential or fully parallel.", "BadRequest")


def _not_found(key: str, rid: str) -> Reply:
    """Graph's 404 for a user or group id/key that names nothing."""
    return error_reply(404, "Request_ResourceNotFound",
                       f"Resource '{key}' does not exist or one of its queried reference-property objects "
                       "are not present.", rid)


_SAFE = "$,()':@/=-._~"  # a nextLink keeps OData punctuation readable; spaces become %20


def _opt(query: Mapping[str, str], name: str) -> str | None:
    """An OData system query option; v1.0 accepts it with or without the `$` prefix."""
    v = query.get(f"${name}")
    return v if v is not None else query.get(name)


def _split_url(url: str) -> tuple[str | None, dict[str, str]]:
    """A batch sub-request URL ("/users/x?$select=id", or "users/x") -> (path under /v1.0, query).

    json-batching.md: the url is "the relative resource URL for the individual request ... while the absolute URL
    is https://graph.microsoft.com/v1.0/users, this url is /users". Graph answers an absolute one with a 400
    (msgraph-sdk-python#1015, msgraph-sdk-javascript#1178): None here, for that answer.
    """
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None, {}
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    return unquote(path), dict(parse_qsl(parts.query, keep_blank_values=True))


class _AnyPath(Convertor[str]):
    """Like starlette's `path`, but also matching a decoded CR/LF, so such a path gets a Graph error body."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graphpath", _AnyPath())


def create_app(state: TenantState, *, faults: FaultConfig | None = None,
               on_write: Callable[[tuple[str, str, Any]], None] | None = None) -> Starlette:
    """The ASGI app for `state` (CONTRACT §4). `on_write(op)` runs after every successful mutation, before its
    answer is sent: op is ("fields", user id, {field: value}) or ("licenses", user id, {sku id: disabled plans})
    (the user's new direct licenses), each a whole new value, so replaying ops again is harmless."""
    emu = Emulator(state, faults, on_write)

    async def graph(request: Request) -> Response:
        rid = str(uuid.uuid4())
        client_rid = request.headers.get("client-request-id") or rid
        base = str(request.base_url).rstrip("/") + "/v1.0"
        path = request.path_params["path"]
        emu.stats.requests += 1
        await emu.faults.delay()
        raw = await request.body()
        body: Any = None
        reply: Reply | None = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                reply = error_reply(400, "BadRequest", "Unable to read JSON request payload. Please ensure "
                                    "Content-Type header is set and payload is of valid JSON format.", rid)
        if reply is None:
            query = dict(parse_qsl(request.url.query, keep_blank_values=True))
            headers = {k.lower(): v for k, v in request.headers.items()}
            if path.strip("/").lower() == "$batch" and request.method == "POST":
                emu.stats.batches += 1
                emu.stats.byRoute["POST /$batch"] = emu.stats.byRoute.get("POST /$batch", 0) + 1
                fault = emu.faults.decide(counted=False)
                if fault is not None:
                    reply = error_reply(fault.status, fault.code, fault.message, rid, fault.headers)
                else:
                    try:
                        reply = emu.batch(body, base, rid)
                        # latency applies to each sub-request too (CONTRACT §4): the levels beyond the first
                        await emu.faults.delay(emu.last_batch_levels - 1)
                    except GraphRuleError as exc:
                        reply = error_reply(exc.status, exc.code, exc.message, rid)
            else:
                _, reply = emu.dispatch(request.method, path, query, headers, body, base, rid)
        emu.stats.outcome(reply.status)
        return _respond(reply, rid, client_rid)

    async def not_graph(request: Request) -> Response:
        rid = str(uuid.uuid4())
        reply = error_reply(400, "BadRequest", f"Invalid version: the emulator serves /v1.0 (got {request.url.path}).",
                            rid)
        return _respond(reply, rid, request.headers.get("client-request-id") or rid)

    async def stats(request: Request) -> Response:
        return _respond(json_reply(emu.stats.as_dict()), str(uuid.uuid4()), None)

    async def stats_reset(request: Request) -> Response:
        emu.stats = Stats()
        return _respond(Reply(204), str(uuid.uuid4()), None)

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]  # HEAD comes with GET
    app = Starlette(routes=[
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/v1.0/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/stats/reset", stats_reset, methods=["POST"]),
        Route("/v1.0/_emulator/stats/reset", stats_reset, methods=["POST"]),
        Route("/v1.0/{path:graphpath}", graph, methods=methods),
        Route("/{path:graphpath}", not_graph, methods=methods),
    ])
    app.state.emulator = emu
    return app


def _respond(reply: Reply, rid: str, client_rid: str | None) -> Response:
    headers = dict(reply.headers)
    headers["request-id"] = rid
    headers["client-request-id"] = client_rid or rid
    media = headers.pop("Content-Type", None)
    return Response(content=reply.body or b"", status_code=reply.status, headers=headers, media_type=media)
