"""A manifest naming a few users of a big tenant: read the named users + Calling Plan holder counts, not every
holder, in ≤ 10 round trips; and the plan equals the one made from the complete read (the correctness proof)."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from graph_helpers import emulator_stats, reset_stats

from provisioner.catalog import load_catalog
from provisioner.emulator.demo import synthetic_state
from provisioner.emulator.local import LocalTenant
from provisioner.emulator.state import TenantState
from provisioner.graph.connection import open_app
from provisioner.manifest import load_desired
from provisioner.model.observed import Sku
from provisioner.model.plan import Plan
from provisioner.pipeline import read_tenant
from provisioner.planner import calling_plan_sku_ids, managed_sku_ids, plan


def _manifest(
    state: TenantState, skus: tuple[Sku, ...], path: Path, n: int, seed: int, unlisted: str = "ignore"
) -> dict[str, str]:
    """Declare `n` sampled users as they are, except a few changes of every kind (returns upn -> change)."""
    parts = {s.sku_id: s.part for s in state.skus}
    cp = set(calling_plan_sku_ids(skus, load_catalog()))
    phone = {s.sku_id for s in state.skus if any(p["servicePlanName"] == "MCOEV" for p in s.plans)}
    credits = {s.sku_id for s in state.skus if any(p["servicePlanName"] == "MCOPSTNC" for p in s.plans)}
    dom = next(s.sku_id for s in state.skus if s.part == "MCOPSTN1")
    users = random.Random(seed).sample(sorted(state.users, key=lambda u: u.upn), n)
    lines = ["apiVersion: provisioner/v1", "kind: TeamsVoiceLicensing", "policy:", f"  unlisted: {unlisted}", "users:"]
    changes: dict[str, str] = {}
    for u in sorted(users, key=lambda u: u.upn):
        held = set(state.effective(u))
        plans = sorted(parts[s] for s in held & cp)
        direct = set(u.licenses)
        entry: dict[str, object] = {}
        if u.usage_location:
            entry["usageLocation"] = u.usage_location
        entry["callingPlan"] = f"sku:{plans[0]}" if plans else "none"
        entry["phoneSystem"] = bool(held & phone)
        entry["communicationsCredits"] = bool(held & credits)
        inherited = held - direct
        if not inherited and u.account_enabled:
            if plans and len(changes) < 20:
                entry["callingPlan"], changes[u.upn] = "none", "drops its Calling Plan"
            elif dom in direct and u.usage_location == "US" and len(changes) < 35:
                entry["usageLocation"], changes[u.upn] = "CA", "moves US -> CA keeping MCOPSTN1"
            elif not plans and u.usage_location == "GB" and not held & phone and len(changes) < 50:
                entry.update(callingPlan="sku:MCOPSTN1", phoneSystem=True)
                changes[u.upn] = "gets MCOPSTN1 and Phone System"
        lines.append(f"  - upn: {json.dumps(u.upn.upper() if len(lines) % 7 == 0 else u.upn)}")
        lines += [f"    {k}: {json.dumps(v)}" for k, v in entry.items()]
    lines += ["  - upn: ghost.user@contoso.com", "    usageLocation: US", "    callingPlan: none"]
    path.write_text("\n".join(lines) + "\n")
    return changes


def _without_fingerprint(p: Plan) -> Plan:
    # The fingerprint hashes what was read, which differs by construction (named users + counts vs all).
    return dataclasses.replace(p, fingerprint="")


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> LocalTenant:
    """20,000 users; three members of the group licensing MCOPSTN1 have no usage location (Graph allows it:
    group licensing falls back to the tenant's country), so a pool line has no country."""
    state = synthetic_state(20_000, 7)
    lost = set(state["groups"][0]["members"][:3])
    for u in state["users"]:
        if u["id"] in lost:
            u["usageLocation"] = None
    path = tmp_path_factory.mktemp("partial") / "tenant.json"
    TenantState.from_dict(state).save(path)
    return LocalTenant(path)


def test_1000_named_users_of_20k_plan_in_at_most_10_round_trips_and_as_a_full_read(
    tenant: LocalTenant, tmp_path: Path
) -> None:
    manifest = tmp_path / "subset.yaml"
    catalog = load_catalog()
    with open_app(tenant.app) as conn:
        changes = _manifest(tenant.state, conn.read_skus(), manifest, 1000, seed=7)
        assert len(changes) == 50, changes  # every kind of change is in the plan
        desired = load_desired([manifest])
        reset_stats(tenant.app)
        partial = read_tenant(conn, desired, catalog)
        stats = emulator_stats(tenant.app)
        choice = conn.reader.last_choice
        full = conn.read(
            [u.upn for u in desired.users],
            managed_sku_ids=lambda skus: managed_sku_ids(skus, catalog, desired),
            include_all_managed=True,
        )
    assert choice is not None and choice.strategy == "counted", choice
    assert stats["requests"] <= 10, stats
    assert stats["batches"] == stats["requests"], stats  # every round trip a $batch
    assert not partial.complete_for_managed and full.complete_for_managed
    assert len(partial.users) == 1000 and len(full.users) > 5000  # the partial read really read less
    assert partial.holder_counts and all(n > 0 for n in partial.holder_counts.values())
    dom_id = next(s.sku_id for s in partial.skus if s.part_number == "MCOPSTN1")
    assert partial.holder_counts[("", dom_id)] == 3  # counted with `usageLocation eq null`
    got, want = plan(desired, partial, catalog), plan(desired, full, catalog)
    assert _without_fingerprint(got) == _without_fingerprint(want)
    # and the equality is not vacuous: the plan changes users, and its pools move between countries
    assert {a.upn for a in got.actions} >= {u for u in changes} and len(got.actions) >= 50
    moved = {(p.country, p.part_number): (p.users_before, p.users_after) for p in got.pools}
    movers = sum(what.startswith("moves") for what in changes.values())
    assert movers >= 10
    dom = {s.sku_id for s in partial.skus if s.part_number == "MCOPSTN1"}
    ca_drops = sum(
        1
        for upn, what in changes.items()
        if what == "drops its Calling Plan"
        and (u := partial.users[upn.lower()]).usage_location == "CA"
        and u.direct_sku_ids & dom
    )
    assert moved[("CA", "MCOPSTN1")][1] - moved[("CA", "MCOPSTN1")][0] == movers - ca_drops
    assert moved[("CA", "MCOPSTN1")][0] == partial.holder_counts[("CA", min(dom))] > 100
    assert [d.code for d in got.diagnostics if d.severity == "error"] == ["user-not-found"]


def _named_manifest(path: Path, upns: list[str], unlisted: str, loc: str | None = None) -> None:
    lines = ["apiVersion: provisioner/v1", "kind: TeamsVoiceLicensing", "policy:", f"  unlisted: {unlisted}", "users:"]
    for upn in upns:
        lines.append(f"  - upn: {upn}")
        if loc:
            lines.append(f"    usageLocation: {loc}")
    path.write_text("\n".join(lines) + "\n")


def test_unlisted_remove_reads_every_holder(tenant: LocalTenant, tmp_path: Path) -> None:
    _named_manifest(tmp_path / "m.yaml", [u.upn for u in tenant.state.users[:30]], "remove")
    desired = load_desired([tmp_path / "m.yaml"])
    with open_app(tenant.app) as conn:
        obs = read_tenant(conn, desired, load_catalog())
        choice = conn.reader.last_choice
    assert choice is not None and choice.strategy in ("filtered", "scan") and choice.counted_cost == -1
    assert obs.complete_for_managed and obs.holder_counts is None and len(obs.users) > 5000


def test_holders_outside_the_counted_countries_fall_back_to_the_full_read(
    tenant: LocalTenant, tmp_path: Path
) -> None:
    # Only GB users named and declared: the counts cover GB, while most Calling Plan holders are in the US.
    gb = [u.upn for u in tenant.state.users if u.usage_location == "GB"][:40]
    _named_manifest(tmp_path / "m.yaml", gb, "ignore", loc="GB")
    desired = load_desired([tmp_path / "m.yaml"])
    with open_app(tenant.app) as conn:
        reset_stats(tenant.app)
        obs = read_tenant(conn, desired, load_catalog())
        choice = conn.reader.last_choice
    stats = emulator_stats(tenant.app)
    assert choice is not None and choice.strategy in ("filtered", "scan"), choice
    assert obs.complete_for_managed and obs.holder_counts is None and len(obs.users) > 5000
    # $batches: org + SKUs + size + groups with members in license error (none here); the look-ups with the counts (6 SKUs: all, no location, GB: 2 $batches,
    # tried, then found short); the full read's
    # look-ups with the first page of its SKU filter. Its other pages follow @odata.nextLink, one GET each.
    assert stats["batches"] == 4 and stats["subRequests"] == 4 + (3 + 6 + 6 + 6) + (3 + 1), stats


def test_a_count_graph_refuses_falls_back_to_the_full_read(
    tenant: LocalTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `usageLocation eq null` is documented for advanced queries only and unverified against a real tenant:
    # were Graph to refuse it (400 Request_UnsupportedQuery), the plan must still be made, from the full read.
    from provisioner.emulator import routes
    from provisioner.emulator.rules import bad

    real, refused = routes.parse_user_filter, []

    def refuse_null(raw: str | None, advanced: bool) -> object:
        if raw and "usageLocation eq null" in raw:
            refused.append(raw)
            raise bad("Unsupported query.", "Request_UnsupportedQuery")
        return real(raw, advanced)

    monkeypatch.setattr(routes, "parse_user_filter", refuse_null)
    us = [u.upn for u in tenant.state.users if u.usage_location == "US"][:40]
    _named_manifest(tmp_path / "m.yaml", us, "ignore", loc="US")
    desired, catalog = load_desired([tmp_path / "m.yaml"]), load_catalog()
    with open_app(tenant.app) as conn:
        obs = read_tenant(conn, desired, catalog)
        choice = conn.reader.last_choice
        full = conn.read(
            [u.upn for u in desired.users],
            managed_sku_ids=lambda skus: managed_sku_ids(skus, catalog, desired),
            include_all_managed=True,
        )
    assert refused, "the counted read was not tried"
    assert choice is not None and choice.strategy in ("filtered", "scan"), choice
    assert obs.complete_for_managed and obs.holder_counts is None and len(obs.users) > 5000
    assert plan(desired, obs, catalog) == plan(desired, full, catalog)


def test_a_filter_by_sku_graph_refuses_falls_back_to_reading_every_user(
    tenant: LocalTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SKU filters joined by `or` are unverified against a real tenant: refused, the read scans every user.
    from provisioner.emulator import routes
    from provisioner.emulator.rules import bad

    real, refused = routes.parse_user_filter, []

    def refuse_skus(raw: str | None, advanced: bool) -> object:
        if raw and "assignedLicenses/any" in raw and "usageLocation" not in raw:
            refused.append(raw)
            raise bad("Complex query on property assignedLicenses is not supported.", "Request_UnsupportedQuery")
        return real(raw, advanced)

    named = [u.upn for u in tenant.state.users[:40]]
    catalog = load_catalog()
    desired_skus = lambda skus: managed_sku_ids(skus, catalog)  # noqa: E731
    with open_app(tenant.app) as conn:
        want = conn.read(named, desired_skus, strategy="scan")
        monkeypatch.setattr(routes, "parse_user_filter", refuse_skus)
        got = conn.read(named, desired_skus, strategy="filtered")
        choice = conn.reader.last_choice
    assert refused, "the filtered read was not tried"
    assert choice is not None and choice.strategy == "scan"
    assert got == want and len(got.users) > 5000


def test_a_refusal_that_is_not_a_400_is_not_swallowed(
    tenant: LocalTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioner.emulator import routes
    from provisioner.emulator.rules import GraphRuleError
    from provisioner.errors import GraphError

    real = routes.parse_user_filter

    def forbid_null(raw: str | None, advanced: bool) -> object:
        if raw and "usageLocation eq null" in raw:
            raise GraphRuleError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        return real(raw, advanced)

    monkeypatch.setattr(routes, "parse_user_filter", forbid_null)
    _named_manifest(tmp_path / "m.yaml", [u.upn for u in tenant.state.users if u.usage_location == "US"][:40], "ignore")
    with open_app(tenant.app) as conn, pytest.raises(GraphError) as err:
        read_tenant(conn, load_desired([tmp_path / "m.yaml"]), load_catalog())
    assert err.value.status == 403 and "Insufficient privileges" in str(err.value)


def test_a_small_tenant_is_read_whole(demo_path: Path, tmp_path: Path) -> None:
    local = LocalTenant(demo_path)
    _named_manifest(tmp_path / "m.yaml", [local.state.users[0].upn], "ignore")
    with open_app(local.app) as conn:
        obs = read_tenant(conn, load_desired([tmp_path / "m.yaml"]), load_catalog())
        choice = conn.reader.last_choice
    # one page holds the whole tenant: as cheap as counting, and complete, so the full read wins the tie
    assert choice is not None and choice.strategy in ("filtered", "scan") and choice.counted_cost >= 1
    assert obs.complete_for_managed and obs.holder_counts is None


def test_counted_cost_and_the_tie_rule() -> None:
    from provisioner.graph.strategy import ReadChoice, choose_counted, count_url, counted_cost, holders_filter

    assert counted_cost(1000, 54) == 7  # 67 look-ups + 54 counts = 121 GETs, 20 a $batch
    assert choose_counted(ReadChoice("filtered", 7, 21), n_named=1000, n_counts=54).strategy == "filtered"
    assert choose_counted(ReadChoice("scan", 16, 8), n_named=1000, n_counts=54).strategy == "counted"
    flt = holders_filter("AB" * 4 + "-0000-4000-8000-000000000000", "gb")
    assert flt == "usageLocation eq 'GB' and assignedLicenses/any(x:x/skuId eq abababab-0000-4000-8000-000000000000)"
    assert count_url(flt).endswith("&$count=true&$top=1&$select=id") and " " not in count_url(flt)


def test_group_members_waiting_for_every_seat_are_read_and_take_no_freed_seat(tmp_path: Path) -> None:
    # A member waiting (CountViolation) for every license of its group has no assignedLicenses: no filter by
    # SKU finds them, while a scan does. The reader asks membersWithLicenseErrors, so both read the same users.
    # A seat the plan frees is free for anyone (the waiting members get one only when the group is reprocessed).
    state = synthetic_state(600, 2)
    ev, cp1, cp2 = (
        "e43b5b99-8dfb-405f-9987-dc307f34bcbd", "0dab259f-bf13-4952-b7f8-7db8f131b28d",
        "d3b4fe1f-9992-4930-8acb-ca6ec609365e",
    )

    def direct(sku: str) -> list[dict[str, object]]:
        return [u for u in state["users"] if any(x["skuId"] == sku for x in u["assignedLicenses"])]

    for s in state["subscribedSkus"]:
        if s["skuId"] in (ev, cp1):
            s["prepaidUnits"]["enabled"] = len(direct(s["skuId"]))  # every group member now waits
    grouped = {m for g in state["groups"] for m in g["members"]}
    a = next(u for u in direct(cp1) if u["id"] not in grouped and any(x["skuId"] == ev for x in u["assignedLicenses"]))
    b = next(u for u in direct(cp2) if u["id"] not in grouped and any(x["skuId"] == ev for x in u["assignedLicenses"]))
    path = tmp_path / "t.json"
    TenantState.from_dict(state).save(path)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\nusers:\n"
        f"  - upn: {a['userPrincipalName']}\n    phoneSystem: false\n    callingPlan: none\n"
        f"  - upn: {b['userPrincipalName']}\n    callingPlan: domestic\n"
    )
    local = LocalTenant(path)
    desired, catalog = load_desired([manifest]), load_catalog()
    with open_app(local.app) as conn:
        obs = read_tenant(conn, desired, catalog)
        choice = conn.reader.last_choice
    managed = set(managed_sku_ids(obs.skus, catalog))
    # found, though they hold no managed license (every one they would get waits): no SKU filter matches them
    invisible = [u for u in obs.users.values()
                 if any(x.error == "CountViolation" for x in u.assignments)
                 and not any(x.sku_id in managed and x.error is None for x in u.assignments)]
    assert choice is not None and choice.strategy != "scan" and invisible
    got = plan(desired, obs, catalog)
    assert [(d.code, d.upn) for d in got.diagnostics if d.severity == "error"] == []
    assert [a.upn for a in got.actions] == [a["userPrincipalName"], b["userPrincipalName"]]  # b takes a's seats
    with open_app(local.app) as conn:
        scanned = conn.read([], lambda skus: managed_sku_ids(skus, catalog), strategy="scan")
    assert set(obs.users) <= set(scanned.users) and {u.key for u in invisible} <= set(scanned.users)


def test_members_waiting_on_an_unmanaged_license_are_not_read(tmp_path: Path) -> None:
    # A group of E3 out of seats: its waiting members hold nothing this tool manages, so the filtered read
    # leaves them out, exactly as a scan does (the snapshot does not depend on the strategy).
    state = synthetic_state(3000, 5)
    e3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
    bare = [u for u in state["users"] if not u["assignedLicenses"]][:40]
    assert len(bare) == 40
    state["groups"].append({"id": "0c0ffee0-0000-4000-8000-000000000e03", "displayName": "E3 only",
                            "members": [u["id"] for u in bare], "assignedLicenses": [{"skuId": e3, "disabledPlans": []}]})
    for s in state["subscribedSkus"]:
        if s["skuId"] == e3:
            s["prepaidUnits"]["enabled"] = sum(any(x["skuId"] == e3 for x in u["assignedLicenses"]) for u in state["users"])
    path = tmp_path / "t.json"
    TenantState.from_dict(state).save(path)
    local, catalog = LocalTenant(path), load_catalog()
    with open_app(local.app) as conn:
        filtered = conn.read([], lambda skus: managed_sku_ids(skus, catalog), strategy="filtered")
        scanned = conn.read([], lambda skus: managed_sku_ids(skus, catalog), strategy="scan")
    assert sorted(filtered.users) == sorted(scanned.users)
    assert not {u["userPrincipalName"].lower() for u in bare} & set(filtered.users)
