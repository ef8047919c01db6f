"""The Graph reader: organization, subscribed SKUs and the users planning needs, as an Observed snapshot.

Impure (network, through transport.py). Bulk reads are raw JSON parsed with orjson into our slim records.
Round trips: one `$batch` for organization + subscribedSkus + the directory size, then either a filtered
read plus UPN look-ups packed 20 to a `$batch`, or one full `$top=999` scan, or (when planning needs only the
named users) the look-ups plus Calling Plan holder counts per country (strategy.py decides). Users known by
id, and group names, are read as `id in (...)` look-ups, 300 to a `$batch`. A full scan of many pages is
decoded by a forked child while the next pages are fetched (pages.py), in-process otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from provisioner import forked
from provisioner.errors import GraphError
from provisioner.graph import failures
from provisioner.graph import pages as paged
from provisioner.graph.parse import holds_any, skus_from_json, tenant_from_json, user_from_json
from provisioner.graph.strategy import (
    BATCH_SIZE,
    ReadChoice,
    choose,
    choose_counted,
    count_url,
    encode,
    groups_url,
    holders_filter,
    id_filters,
    is_guid,
    sku_filters,
    upn_filters,
    users_url,
)
from provisioner.graph.transport import Transport
from provisioner.model.observed import Observed, Sku, TenantInfo, User

EVENTUAL = {"ConsistencyLevel": "eventual"}
MAX_BATCHES_IN_FLIGHT = 6
CHUNK = 100  # users converted between yields to the page fetcher


@dataclass(frozen=True)
class Get:
    """One GET to run inside a `$batch`: key (ours), URL relative to the base, extra headers."""

    key: str
    url: str
    headers: dict[str, str] | None = None
    missing_ok: bool = False  # 404 means "no such object": the answer is None, not an error
    soft: bool = False  # a refusal (a 4xx other than 429) is the answer (a GraphError), not raised


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Pause the cyclic GC while bulk records are built.

    Reading 100,000 users allocates millions of small objects that all stay alive; the collector's full
    passes over them made the read 2-3x slower (measured with benchmarks/bench_read.py). Nothing built here
    forms reference cycles, so nothing is lost by collecting afterwards.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


async def _all(coros: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run `coros` together; on the first error cancel the others (and wait for them) before raising it, so
    a read that falls back after an error leaves no page chain writing into what it reads next."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class Reader:
    """Async reads for one connection. `skus` keeps the last SKUs read: the writer words seat errors with them."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport
        self.last_choice: ReadChoice | None = None
        self.skus: tuple[Sku, ...] | None = None

    # -- small reads -----------------------------------------------------------------------------------
    async def tenant_info(self) -> TenantInfo:
        ri = self.t.client.organization.to_get_request_information()
        return tenant_from_json(await self.t.get_json("/organization", ri=ri))

    async def read_skus(self) -> tuple[Sku, ...]:
        ri = self.t.client.subscribed_skus.to_get_request_information()
        self.skus = skus_from_json(await self.t.get_json("/subscribedSkus", ri=ri))
        return self.skus

    # -- GETs packed into $batch, each retried on its own ------------------------------------------------
    async def get_many(self, gets: list[Get]) -> dict[str, Any]:
        """Run GETs packed 20 to a `$batch`, several batches in flight; retry throttled/transient ones.

        Returns key -> decoded body (None for a 404 that is `missing_ok`). Any other failure raises GraphError.
        """
        results: dict[str, Any] = {}
        attempts: dict[str, int] = {}
        todo = list(gets)
        started = time.monotonic()
        sem = asyncio.Semaphore(MAX_BATCHES_IN_FLIGHT)
        while todo:
            batches = [todo[i : i + BATCH_SIZE] for i in range(0, len(todo), BATCH_SIZE)]

            async def run(chunk: list[Get]) -> list[tuple[Get, dict[str, Any]]]:
                reqs = []
                for n, g in enumerate(chunk, start=1):
                    r: dict[str, Any] = {"id": str(n), "method": "GET", "url": g.url}
                    if g.headers:
                        r["headers"] = g.headers
                    reqs.append(r)
                async with sem:
                    answers = await self.t.batch(reqs, idempotent=True)  # GETs only
                return [(g, answers[str(n)]) for n, g in enumerate(chunk, start=1)]

            done = await asyncio.gather(*(run(b) for b in batches))
            todo, wait = [], 0.0
            for g, sub in (pair for chunk in done for pair in chunk):
                status = int(sub.get("status") or 0)
                attempts[g.key] = attempts.get(g.key, 0) + 1
                if 200 <= status < 300:
                    results[g.key] = sub.get("body")
                    continue
                if status == 404 and g.missing_ok:
                    results[g.key] = None
                    continue
                err = failures.from_sub_response(sub, method="GET", url=self.t.absolute(g.url))
                if g.soft and 400 <= status < 500 and status != 429:
                    results[g.key] = err
                    continue
                if self.t.policy.is_retryable(status, idempotent=True):
                    delay = self.t.policy.delay(attempts[g.key], err.retry_after, self.t.rng)
                    if self.t.policy.may_retry(attempts[g.key], delay, time.monotonic() - started):
                        todo.append(g)
                        wait = max(wait, delay)
                        continue
                raise err
            if todo:
                self.t.log(f"{len(todo)} batched GETs throttled or unavailable; retrying in {wait:.1f} s")
                await asyncio.sleep(wait)
        return results

    async def follow(
        self, first: dict[str, Any], sink: Callable[[list[dict[str, Any]]], None], advanced: bool
    ) -> None:
        """Feed `first` and every page after it (@odata.nextLink) to `sink`, in order.

        A fetcher task requests page n+1 while page n is converted; the conversion yields to it every
        CHUNK users, so the request leaves at once and the service works while we parse.
        """
        headers = EVENTUAL if advanced else None
        pages: asyncio.Queue[list[dict[str, Any]] | BaseException | None] = asyncio.Queue(maxsize=2)

        async def fetch() -> None:
            body = first
            try:
                while True:
                    await pages.put(body.get("value") or [])
                    link = body.get("@odata.nextLink")
                    if not link:
                        break
                    body = await self.t.get_json(str(link), headers=headers)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                await pages.put(exc)
                return
            await pages.put(None)

        fetcher = asyncio.ensure_future(fetch())
        try:
            while True:
                page = await pages.get()
                if page is None:
                    break
                if isinstance(page, BaseException):
                    raise page
                for i in range(0, len(page), CHUNK):
                    sink(page[i : i + CHUNK])
                    await asyncio.sleep(0)
        finally:
            if not fetcher.done():
                fetcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fetcher

    # -- the snapshot planning needs -------------------------------------------------------------------
    async def read(
        self,
        upns: Iterable[str],
        managed_sku_ids: Callable[[tuple[Sku, ...]], Iterable[str]],
        include_all_managed: bool = True,
        strategy: str = "auto",
        count_pairs_for: Callable[[tuple[Sku, ...]], Iterable[str]] | None = None,
        count_countries: Iterable[str] = (),
    ) -> Observed:
        """The snapshot planning needs (see connection.TenantConnection.read for the parameters)."""
        # a set: membership is all a scan needs, and the look-ups sort their own (upn_filters); sorting 100,000
        # UPNs here held the first request back ~0.04 s
        named = {k for u in upns if u and (k := u.strip().lower())}
        first = await self.get_many(
            [
                Get("org", "/organization"),
                Get("skus", "/subscribedSkus"),
                Get("count", "/users?$count=true&$top=1&$select=id", dict(EVENTUAL)),
                # not an advanced query: graph-docs-contrib#9437 (this filter fails with ConsistencyLevel)
                Get("errgroups", "/groups?$filter=" + encode("hasMembersWithLicenseErrors eq true")
                    + "&$select=id,assignedLicenses&$top=999", soft=True),
            ]
        )
        tenant = tenant_from_json(first["org"] or {})
        skus = skus_from_json(first["skus"] or {})
        self.skus = skus
        n_users = (first["count"] or {}).get("@odata.count")
        managed = frozenset(s.lower() for s in managed_sku_ids(skus))
        estimate = sum(s.consumed for s in skus if s.sku_id in managed)
        counting = not include_all_managed and count_pairs_for is not None and strategy == "auto"
        complete = include_all_managed or counting  # a counted read that cannot vouch for its counts reads all
        filters = sku_filters(managed) if complete else []
        choice = choose(
            n_users=int(n_users) if isinstance(n_users, int) else None,
            managed_estimate=estimate,
            n_named=len(named),
            n_sku_filters=len(filters),
            include_all_managed=complete,
        )
        plans = sorted({s.lower() for s in count_pairs_for(skus)}) if counting and count_pairs_for else []
        countries = sorted({c.strip().upper() for c in count_countries if c and c.strip()})
        if counting:
            # per SKU: all holders, holders with no usage location, holders in each declared country
            choice = choose_counted(choice, n_named=len(named), n_counts=len(plans) * (2 + max(1, len(countries))))
        if strategy != "auto":
            choice = ReadChoice(strategy, choice.filtered_cost, choice.scan_cost)
        self.last_choice = choice
        self.t.log(choice.describe())
        users: dict[str, User] = {}
        counts: dict[tuple[str, str], int] | None = None
        with no_gc_pauses():
            if choice.strategy == "counted":
                counts, why = await self._counted(users, named, plans, countries)
                if counts is None:
                    users.clear()
                    choice = choose(
                        n_users=int(n_users) if isinstance(n_users, int) else None,
                        managed_estimate=estimate,
                        n_named=len(named),
                        n_sku_filters=len(filters),
                        include_all_managed=True,
                    )
                    self.last_choice = choice
                    self.t.log(f"{why}: " + choice.describe())
            if choice.strategy == "scan":
                await self._scan(users, named, managed if complete else frozenset(), n_users)
            elif choice.strategy != "counted":
                try:
                    await self._filtered(users, named, filters)
                except GraphError as exc:
                    # Filters by SKU joined by `or` are served here, but unverified against a real tenant: were
                    # Graph to refuse one (400), every user is read instead (what a scan costs, and complete).
                    if exc.status != 400 or not filters:
                        raise
                    users.clear()
                    choice = ReadChoice("scan", choice.filtered_cost, choice.scan_cost)
                    self.last_choice = choice
                    self.t.log(f"Graph refused a filtered read ({exc.code or 'HTTP 400'}: {exc.graph_message}): "
                               "reading every user instead")
                    await self._scan(users, named, managed if complete else frozenset(), n_users)
            if choice.strategy != "scan":  # a scan reads every holder, waiting ones too (licenseAssignmentStates)
                await self._waiting_members(users, first["errgroups"], managed)
            ordered = {k: users[k] for k in sorted(users)}  # deterministic order for everything downstream
        partial = choice.strategy == "counted"
        return Observed(
            tenant=tenant, skus=skus, users=ordered, complete_for_managed=not partial and complete, holder_counts=counts
        )

    async def _counted(
        self, users: dict[str, User], named: set[str], plans: list[str], declared: list[str]
    ) -> tuple[dict[tuple[str, str], int] | None, str]:
        """Read the named users into `users`; return holders per (usage location, Calling Plan SKU), and why not.

        One wave: the UPN look-ups, each SKU's holder count, and its count in each `declared` country and
        among users with no usage location; a second (rare: manifests usually declare where their users are)
        counts the countries named users are in that no manifest declares. None when those counts do not add
        up to a SKU's holders (some hold it in a country not counted), one is missing, or Graph refuses one
        as a query it does not support (HTTP 400: the `usageLocation eq null` count is documented only for
        advanced queries, and not verified against a real tenant): the caller then reads every holder instead. Counts are eventually consistent (advanced queries): a license change made
        seconds ago can send it to the full read, or leave a pool line off by that change until the index
        catches up (pools are informational; seats and actions never come from counts).
        """

        def sink(page: list[dict[str, Any]]) -> None:
            for d in page:
                u = user_from_json(d)
                users[u.key] = u

        def pair_gets(countries: Iterable[str]) -> list[Get]:
            return [
                Get(f"in|{c}|{p}", count_url(holders_filter(p, c)), dict(EVENTUAL)) for c in countries for p in plans
            ]

        lookups = [Get(f"upn{i}", users_url("", filter_text=f, top=999)) for i, f in enumerate(upn_filters(named))]
        totals = [Get(f"all|{p}", count_url(holders_filter(p)), dict(EVENTUAL)) for p in plans]
        # "" counts the holders with no usage location (their pool line has no country)
        try:
            bodies = await self.get_many(lookups + totals + pair_gets(["", *declared]))
            await _all(self.follow(bodies[g.key] or {}, sink, advanced=False) for g in lookups)
            more = sorted({(u.usage_location or "").upper() for u in users.values()} - set(declared) - {""})
            if more and plans:
                bodies.update(await self.get_many(pair_gets(more)))
        except GraphError as exc:
            if exc.status != 400:
                raise
            return None, f"Graph refused a query of the counted read ({exc.code or 'HTTP 400'}: {exc.graph_message})"
        short = None, "some Calling Plan holders are outside the countries counted"
        counts: dict[tuple[str, str], int] = {}
        counted: dict[str, int] = {}
        for key, body in bodies.items():
            if key.startswith("in|"):
                _, country, sku = key.split("|")
                n = (body or {}).get("@odata.count")
                if not isinstance(n, int):
                    return short  # a count Graph did not give cannot be vouched for
                if n:
                    counts[(country, sku)] = n
                    counted[sku] = counted.get(sku, 0) + n
        for p in plans:
            total = (bodies[f"all|{p}"] or {}).get("@odata.count")
            if not isinstance(total, int) or counted.get(p, 0) != total:
                return short
        return dict(sorted(counts.items())), ""

    async def _scan(
        self, users: dict[str, User], named: set[str], managed: frozenset[str], n_users: Any = None
    ) -> None:
        def sink(page: list[dict[str, Any]]) -> None:
            for d in page:
                key = str(d.get("userPrincipalName") or "").lower()
                if key in named or (managed and holds_any(d, managed)):  # paged.decode_page keeps the same
                    users[key] = user_from_json(d)

        url = users_url(self.t.base_url)
        if isinstance(n_users, int) and n_users >= paged.MIN_USERS and forked.can_fork():
            # many pages: a child decodes each while the next is fetched (pages.py); if it fails, read here
            ri = self.t.client.users.with_url(url).to_get_request_information()
            first_raw = (await self.t.send("GET", url, ri=ri)).content
            if await paged.scan_in_child(self._raw, first_raw, named, managed, users):
                return
            users.clear()
            self.t.log("the page-decoding child failed: reading every user again in-process")
        ri = self.t.client.users.with_url(url).to_get_request_information()
        first = await self.t.get_json(url, ri=ri)
        await self.follow(first, sink, advanced=False)

    async def _raw(self, url: str) -> bytes:
        """A page's bytes (follow's GET of a nextLink, unparsed)."""
        return (await self.t.send("GET", url)).content

    async def _filtered(self, users: dict[str, User], named: Iterable[str], filters: list[str]) -> None:
        def sink(page: list[dict[str, Any]]) -> None:
            for d in page:
                u = user_from_json(d)
                users[u.key] = u

        gets = [
            Get(f"sku{i}", users_url("", filter_text=f, count=True), dict(EVENTUAL))
            for i, f in enumerate(filters)
        ]
        gets += [
            Get(f"upn{i}", users_url("", filter_text=f, top=999)) for i, f in enumerate(upn_filters(named))
        ]
        bodies = await self.get_many(gets)
        chains = []
        for g in gets:
            body = bodies[g.key] or {}
            chains.append(self.follow(body, sink, advanced=g.key.startswith("sku")))
        await _all(chains)

    async def _waiting_members(self, users: dict[str, User], groups: Any, managed: frozenset[str]) -> None:
        """Add the members of groups with license errors (membersWithLicenseErrors) not read yet, for the groups
        that give a managed SKU (a scan would read exactly those members: they hold it, in error).

        A member a group failed to license (CountViolation: none of the group's licenses) has no assignedLicenses,
        so no filter by SKU finds them, while a scan reads them (licenseAssignmentStates name the SKU, in error):
        read here, the filtered read sees the same users as a scan, so both give the same plan and fingerprint,
        and the drift view can show them. They take no seat a plan frees (that needs the group reprocessed).
        Needs GroupMember.Read.All: without it (a 403) they cannot be read, and a debug line says so.
        """
        if isinstance(groups, GraphError):
            self.t.log(f"groups with license errors not read ({groups.status}): members waiting for seats unknown")
            return
        found: list[dict[str, Any]] = []

        def keep(page: list[dict[str, Any]]) -> None:
            found.extend(g for g in page if isinstance(g, dict))

        await self.follow(groups if isinstance(groups, dict) else {}, keep, advanced=False)
        ids = sorted({
            str(g["id"]) for g in found
            if is_guid(str(g.get("id"))) and any(
                isinstance(a, dict) and str(a.get("skuId") or "").lower() in managed
                for a in g.get("assignedLicenses") or ()
            )
        })
        if not ids:
            return
        members: set[str] = set()

        def sink(page: list[dict[str, Any]]) -> None:
            members.update(str(d["id"]) for d in page if isinstance(d, dict) and d.get("id"))

        gets = [Get(f"g{i}", f"/groups/{gid}/membersWithLicenseErrors?$select=id&$top=999", soft=True)
                for i, gid in enumerate(ids)]
        bodies = await self.get_many(gets)
        readable = [b for b in bodies.values() if not isinstance(b, GraphError)]
        await _all(self.follow(b or {}, sink, advanced=False) for b in readable)
        known = {u.id.lower() for u in users.values()}
        missing = sorted(m for m in members if m.lower() not in known)
        if missing:
            for u in (await self.users_by_id(missing)).values():
                users.setdefault(u.key, u)
        self.t.log(f"{len(members)} members of {len(ids)} groups wait on a license error; {len(missing)} read")

    async def users_by_upn(self, upns: Iterable[str]) -> dict[str, User]:
        """Users by UPN (lower-cased keys); UPNs that do not exist are absent."""
        users: dict[str, User] = {}
        with no_gc_pauses():
            await self._filtered(users, sorted({u.lower() for u in upns if u}), [])
        return users

    async def users_by_id(self, ids: Iterable[str]) -> dict[str, User]:
        """Users by object id, keyed by the id as given; ids that do not exist are absent.

        `id in (...)` filters, 15 ids a GET and 20 GETs a `$batch`: 300 users a round trip (one `GET
        /users/{id}` each would take 20). A string that is not a GUID names no user, so it is absent unasked.
        """
        _, users = await self._by_id(ids, [])
        return users

    async def stale_inputs(self, ids: Iterable[str]) -> tuple[TenantInfo, dict[str, User], tuple[Sku, ...]]:
        """What a saved plan's stale check reads: the tenant, these users by id (as `users_by_id`) and the SKUs.

        `/organization` and `/subscribedSkus` ride in the first `$batch` of the id look-ups, so the whole check
        is ceil(ids / 300) round trips (at least one), plus retries of throttled GETs.
        """
        first, users = await self._by_id(ids, [Get("org", "/organization"), Get("skus", "/subscribedSkus")])
        self.skus = skus_from_json(first["skus"] or {})
        return tenant_from_json(first["org"] or {}), users, self.skus

    async def group_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Group display names by id (keyed by the id as given); ids with no group, or no name, are absent.

        `/groups` with the users' `id in (...)` filters: 15 ids a GET, 20 GETs a `$batch`. Nothing is asked
        when no id is a GUID. Reading groups needs GroupMember.Read.All (or Group.Read.All), beyond the
        least-privileged set: a 403 raises a GraphError whose first line says so (callers fall back to ids).
        """
        asked: dict[str, list[str]] = {}
        for i in sorted({i for i in ids if i}):
            asked.setdefault(i.strip().lower(), []).append(i)
        gets = [Get(f"group{k}", groups_url(f)) for k, f in enumerate(id_filters(asked))]
        names: dict[str, str] = {}

        def sink(page: list[dict[str, Any]]) -> None:
            for d in page:
                name = d.get("displayName")
                if isinstance(name, str) and name:
                    for key in asked.get(str(d.get("id") or "").lower(), ()):
                        names[key] = name

        if not gets:
            return names
        try:
            bodies = await self.get_many(gets)
            await _all(self.follow(bodies[g.key] or {}, sink, advanced=False) for g in gets)
        except GraphError as exc:
            if exc.status == 403:
                # keep status, code, request-id and URL; only the wording changes, so the caller's one-line
                # note says what is missing rather than a generic permission hint for /users
                first = str(exc.message).splitlines()[0]
                exc.message = f"group names need GroupMember.Read.All (or Group.Read.All) to be read: {first}"
                exc.args = (exc.message,)
                exc.hint = (
                    "Optional: grant the application permission GroupMember.Read.All (with admin consent) to see "
                    "group names instead of group ids; nothing else needs it."
                )
            raise
        return {k: names[k] for k in sorted(names)}

    async def _by_id(self, ids: Iterable[str], extra: list[Get]) -> tuple[dict[str, Any], dict[str, User]]:
        """The `extra` GETs' bodies and the users by id; `extra` goes first, so into the first `$batch`."""
        asked: dict[str, list[str]] = {}  # lower-cased id -> the spellings asked for (Graph's are lower-case)
        for i in sorted({i for i in ids if i}):
            asked.setdefault(i.strip().lower(), []).append(i)
        lookups = [Get(f"id{k}", users_url("", filter_text=f)) for k, f in enumerate(id_filters(asked))]
        users: dict[str, User] = {}

        def sink(page: list[dict[str, Any]]) -> None:
            for d in page:
                u = user_from_json(d)
                for key in asked.get(u.id.lower(), ()):
                    users[key] = u

        with no_gc_pauses():
            bodies = await self.get_many(extra + lookups)
            # 15 ids never fill a page, but a nextLink is followed all the same rather than trusted away
            await _all(self.follow(bodies[g.key] or {}, sink, advanced=False) for g in lookups)
        return {g.key: bodies[g.key] for g in extra}, {k: users[k] for k in sorted(users)}
