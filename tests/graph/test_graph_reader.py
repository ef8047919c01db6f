"""The reader through the real msgraph-sdk against the in-process emulator: contents, paging, filtered reads,
the round-trip targets (counted by the emulator), by-id / by-UPN reads, and reads under 429/503/500 storms."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from graph_helpers import FlakyApp, emulator_stats

from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.local import LocalTenant
from provisioner.emulator.routes import create_app
from provisioner.emulator.state import TenantState
from provisioner.errors import GraphError, ThrottledError
from provisioner.graph import connect
from provisioner.graph.connection import open_app
from provisioner.graph.retry import RetryPolicy
from provisioner.model.observed import Sku

FAST = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05, budget_s=20)


def voice_skus(skus: tuple[Sku, ...]) -> list[str]:
    """What the planner manages: Phone System add-on, Calling Plans, Communications Credits."""
    return [
        s.sku_id for s in skus if s.part_number.startswith("MCO") or "pay_as_you_go" in s.part_number.lower()
    ]


def expected_managed(state: TenantState, managed: set[str]) -> set[str]:
    return {u.upn.lower() for u in state.users if set(state.effective(u)) & managed}


def test_320_user_manifest_on_20k_tenant_in_at_most_12_round_trips(tenant20k: Path) -> None:
    local = LocalTenant(tenant20k)
    state = local.state
    named = [u.upn.upper() for u in state.users[::61][:318]] + ["ghost1@contoso.com", "Ghost2@contoso.com"]
    with open_app(local.app) as conn:
        obs = conn.read(named, voice_skus)
        choice = conn.reader.last_choice
    stats = emulator_stats(local.app)
    assert choice is not None and choice.strategy == "filtered"
    assert stats["requests"] <= 12, stats
    managed = {s.sku_id for s in obs.skus if s.sku_id in set(voice_skus(obs.skus))}
    want = expected_managed(state, managed) | {u.lower() for u in named[:318]}
    assert set(obs.users) == want  # every named user that exists, every managed holder, no ghosts
    assert "ghost1@contoso.com" not in obs.users and obs.complete_for_managed
    assert len(want) > 999  # the filtered read really paged
    u = state.users[61]
    got = obs.users[u.upn.lower()]
    assert (got.id, got.usage_location, got.direct_sku_ids) == (u.id, u.usage_location, frozenset(u.licenses))


def test_20k_managed_users_in_a_full_scan(tenant20k: Path) -> None:
    local = LocalTenant(tenant20k)
    everyone = [u.upn for u in local.state.users]
    with open_app(local.app) as conn:
        obs = conn.read(everyone, lambda skus: [s.sku_id for s in skus])
        choice = conn.reader.last_choice
    stats = emulator_stats(local.app)
    assert choice is not None and choice.strategy == "scan"
    assert len(obs.users) == 20_000
    assert stats["requests"] <= math.ceil(20_000 / 999) + 5, stats
    assert stats["byRoute"]["GET /users"] >= 21  # 21 pages (and the $count probe in the first $batch)


def test_demo_read_contents_groups_and_case(demo_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with connect(f"emulator:{demo_path}") as conn:
        info = conn.tenant_info()
        skus = conn.read_skus()
        obs = conn.read(["ALICE.US@contoso.com", "nobody@contoso.com", "kim.us@contoso.com"], voice_skus)
    assert capsys.readouterr().err == ""  # the file existed: no "created" note
    assert (info.display_name, "contoso.com" in info.verified_domains) == ("Contoso", True)
    assert obs.skus == skus and obs.tenant == info
    assert "alice.us@contoso.com" in obs.users and "nobody@contoso.com" not in obs.users
    assert "kim.us@contoso.com" in obs.users  # named, holds no managed SKU
    assert list(obs.users) == sorted(obs.users)
    inherited = [u for u in obs.users.values() if any(a.by_group for a in u.assignments)]
    assert inherited, "the demo's Sales group licenses MCOEV + MCOPSTN1 to its members"
    a = next(a for a in inherited[0].assignments if a.by_group)
    assert a.state in ("Active", "Error") and len(a.by_group or "") == 36


def test_emulator_tenant_is_created_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "new.json"
    with connect(f"emulator:{path}") as conn:
        assert conn.tenant_info().display_name == "Contoso"
    assert capsys.readouterr().err == f"note: created the demo tenant at {path}\n"
    assert path.exists()


@pytest.mark.parametrize("strategy", ["scan", "filtered"])
def test_forced_strategies_agree(demo_path: Path, strategy: str) -> None:
    with connect(f"emulator:{demo_path}") as conn:
        auto = conn.read(["sam.new@contoso.com"], voice_skus)
        forced = conn.read(["sam.new@contoso.com"], voice_skus, strategy=strategy)
    assert forced.users == auto.users


def test_by_id_and_by_upn(demo_path: Path) -> None:
    local = LocalTenant(demo_path)
    users = local.state.users
    ghost = "00000000-0000-0000-0000-000000000000"
    ids = [u.id for u in users[:25]] + [ghost, "not-a-guid", users[3].id.upper()]
    with open_app(local.app) as conn:
        by_id = conn.read_users_by_id(ids)
        by_upn = conn.read_users_by_upn([u.upn.upper() for u in users[:16]] + ["x@y.z"])
    # keyed by the id as asked (an upper-cased id too); absent ids, well-formed or not, are simply absent
    assert set(by_id) == {*ids[:25], users[3].id.upper()}
    assert by_id[users[3].id.upper()] == by_id[users[3].id]
    got = by_id[users[5].id]
    assert (got.upn, got.usage_location, got.direct_sku_ids) == (
        users[5].upn.lower(),
        users[5].usage_location,
        frozenset(users[5].licenses),
    )
    assert set(by_upn) == {u.upn.lower() for u in users[:16]}
    stats = emulator_stats(local.app)
    # 26 distinct GUIDs: `id in (...)` 15 + 11 in 1 batch (the non-GUID is never sent); 2 UPN filters in 1
    assert (stats["batches"], stats["subRequests"]) == (2, 2 + 2)
    assert stats["byRoute"]["GET /users"] == 4 and "GET /users/{id}" not in stats["byRoute"]


def test_700_users_by_id_in_3_round_trips_with_tenant_and_skus(tenant20k: Path) -> None:
    local = LocalTenant(tenant20k)
    picked = local.state.users[::25][:700]
    with open_app(local.app) as conn:
        tenant, users, skus = conn.read_stale_inputs([u.id for u in picked])
        assert conn.reader.skus == skus  # kept for the writer's seat wording
    stats = emulator_stats(local.app)
    # 700 ids: 47 `id in` GETs + organization + subscribedSkus = 49 GETs, 20 to a $batch
    assert (stats["requests"], stats["batches"], stats["subRequests"]) == (3, 3, 49), stats
    assert stats["requests"] <= math.ceil(700 / 300) + 1
    assert tenant.display_name == "Contoso" and {s.part_number for s in skus} >= {"MCOEV", "MCOPSTN1"}
    assert list(users) == sorted(u.id for u in picked)
    assert all(users[u.id].upn == u.upn.lower() for u in picked)


def test_reads_by_id_retry_each_throttled_lookup(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    ids = [u.id for u in state.users]
    with open_app(create_app(TenantState.load(demo_path))) as clean:
        want = clean.read_users_by_id(ids)
    app = create_app(state, faults=FaultConfig(throttle_rate=0.4, error_rate=0.2, seed=11, retry_after_s=0))
    with open_app(app, policy=FAST) as conn:
        got = conn.read_users_by_id(ids)
    assert got == want and len(got) == len(ids)
    stats = emulator_stats(app)
    assert stats["throttled"] > 0 and stats["errors"] > 0


def test_reads_survive_429_and_503_storms(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    clean = open_app(create_app(TenantState.load(demo_path)))
    with clean:
        want = clean.read([u.upn for u in state.users[:20]], voice_skus)
    app = create_app(state, faults=FaultConfig(throttle_rate=0.35, error_rate=0.2, seed=3, retry_after_s=0))
    with open_app(app, policy=FAST) as conn:
        got = conn.read([u.upn for u in state.users[:20]], voice_skus)
        assert conn.tenant_info().display_name == "Contoso"
    assert got == want
    stats = emulator_stats(app)
    assert stats["throttled"] > 0 and stats["errors"] > 0


def test_top_level_500_is_retried_for_gets_and_reported_when_it_persists(demo_path: Path) -> None:
    flaky = FlakyApp(
        create_app(TenantState.load(demo_path)), fail_first={"/v1.0/organization": 2}, status=500
    )
    with open_app(flaky, policy=FAST) as conn:
        assert conn.tenant_info().display_name == "Contoso"
    assert flaky.failed == 2
    always = FlakyApp(
        create_app(TenantState.load(demo_path)), fail_first={"/v1.0/subscribedSkus": 99}, status=503
    )
    with (
        open_app(always, policy=RetryPolicy(base_delay_s=0.01, max_attempts=4)) as conn,
        pytest.raises(ThrottledError) as e,
    ):
        conn.read_skus()
    assert always.failed == 4
    text = str(e.value)
    assert "GET http://localhost/v1.0/subscribedSkus: HTTP 503 serviceNotAvailable" in text
    assert "(request-id flaky-" in text and "Wait a few minutes" in text


def test_graph_error_bodies_are_mapped(demo_path: Path) -> None:
    flaky = FlakyApp(
        create_app(TenantState.load(demo_path)), fail_first={"/v1.0/organization": 1}, status=403
    )
    with open_app(flaky, policy=FAST) as conn, pytest.raises(GraphError) as e:
        conn.tenant_info()
    assert (e.value.status, e.value.code, e.value.request_id) == (
        403,
        "Authorization_RequestDenied",
        "flaky-1",
    )
    assert "Organization.Read.All" in str(e.value)
    assert flaky.failed == 1  # a 403 is a verdict: never retried
