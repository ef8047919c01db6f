"""The writer through the real msgraph-sdk against the in-process emulator: $batch packing with dependsOn,
verdicts in plain words, skipped dependents, and retries of throttled / transient sub-requests and batches."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from graph_helpers import FlakyApp, SubFlakyApp, emulator_stats

from provisioner.emulator.demo import SKUS, synthetic_state
from provisioner.emulator.faults import FaultConfig
from provisioner.emulator.local import LocalTenant
from provisioner.emulator.routes import create_app
from provisioner.emulator.state import TenantState
from provisioner.errors import ThrottledError
from provisioner.graph import ActionOutcome, connect
from provisioner.graph.connection import open_app
from provisioner.graph.retry import RetryPolicy
from provisioner.model.plan import Action, LicenseRef

FAST = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05, budget_s=20)
EV = LicenseRef(SKUS["MCOEV"][0], "MCOEV")
DOM = LicenseRef(SKUS["MCOPSTN1"][0], "MCOPSTN1")


def uid(state: TenantState, local: str) -> str:
    u = state.find_user(f"{local}@contoso.com")
    assert u is not None
    return u.id


def loc(aid: str, state: TenantState, who: str, to: str = "US", deps: tuple[str, ...] = ()) -> Action:
    return Action(aid, "setUsageLocation", uid(state, who), f"{who}@contoso.com", None, to, depends_on=deps)


def lic(aid: str, state: TenantState, who: str, add=(), remove=(), deps: tuple[str, ...] = ()) -> Action:  # type: ignore[no-untyped-def]
    return Action(aid, "assignLicenses", uid(state, who), f"{who}@contoso.com", add=tuple(add), remove=tuple(remove), depends_on=deps)  # fmt: skip


def test_a_users_steps_go_in_order_in_fully_parallel_batches_and_are_persisted(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    actions = [
        loc("sam-loc", state, "sam.new"),
        lic("sam-lic", state, "sam.new", add=[EV, DOM], deps=("sam-loc",)),
        loc("robin-loc", state, "robin.new", "GB"),
    ]
    seen: list[ActionOutcome] = []
    with connect(f"emulator:{demo_path}") as conn:
        local = conn.local
        outcomes = conn.execute(actions, on_outcome=seen.append)
        stats = emulator_stats(local.app)
        after = conn.read_users_by_id([uid(state, "sam.new")])[uid(state, "sam.new")]
    assert [(o.action_id, o.status, o.http_status, o.attempts) for o in outcomes] == [
        ("sam-loc", "succeeded", 204, 1),
        ("sam-lic", "succeeded", 200, 1),
        ("robin-loc", "succeeded", 204, 1),
    ]
    assert sorted(seen, key=lambda o: o.action_id) == sorted(outcomes, key=lambda o: o.action_id)
    assert all(o.request_id for o in outcomes)
    # sam's license waits for sam's location (a batch holds no dependsOn chains): two round trips
    assert (stats["requests"], stats["batches"], stats["subRequests"]) == (2, 2, 3)
    assert after.usage_location == "US" and after.direct_sku_ids == {EV.sku_id, DOM.sku_id}
    saved = TenantState.load(demo_path)  # the emulator tenant file has the writes
    assert saved.find_user("robin.new@contoso.com").usage_location == "GB"  # type: ignore[union-attr]


def test_verdicts_fail_once_in_plain_words_and_dependents_are_skipped_unsent(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    ev_free = state.sku_by_id[EV.sku_id].enabled - state.consumed(EV.sku_id)
    assert ev_free == 1
    actions = [
        lic("dave", state, "dave.us", add=[EV]),  # takes the last free MCOEV seat
        lic("harry", state, "harry.gb", add=[EV]),  # no seat left: Graph's 400
        lic(
            "ruth", state, "ruth.gb", add=[EV], deps=("harry",)
        ),  # another user, depends on harry: never sent
        lic("sam", state, "sam.new", add=[DOM]),  # no usage location: Graph's 400
    ]
    local = LocalTenant(demo_path)
    with open_app(local.app) as conn:
        conn.read_skus()  # the writer words seat errors with the last SKUs read
        out = {o.action_id: o for o in conn.execute(actions)}
    assert out["dave"].status == "succeeded"
    h = out["harry"]
    assert (h.status, h.http_status, h.code, h.attempts) == ("failed", 400, "Request_BadRequest", 1)
    total = state.sku_by_id[EV.sku_id].enabled
    assert (h.message or "").startswith(f"no free Phone System (MCOEV) seats: 0 of {total} free")
    assert h.request_id
    assert out["ruth"].status == "skipped" and out["ruth"].attempts == 0
    assert out["ruth"].message == "not attempted: it depends on harry, which failed"
    assert "no usage location" in (out["sam"].message or "")
    stats = emulator_stats(local.app)
    assert stats["subRequests"] == 3  # ruth never reached Graph
    assert state.find_user("ruth.gb@contoso.com") is not None


def test_a_failed_step_skips_the_rest_of_the_users_chain(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    actions = [loc("bad", state, "sam.new", "ZZ"), lic("then", state, "sam.new", add=[DOM], deps=("bad",))]
    with connect(f"emulator:{demo_path}") as conn:
        out = conn.execute(actions)
    assert [(o.status, o.http_status) for o in out] == [("failed", 400), ("skipped", None)]
    assert "usageLocation" in (out[0].message or "")


def test_sub_request_429_storm_is_absorbed_with_few_extra_round_trips(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    users = [u for u in state.users if u.usage_location]
    actions = [
        Action(
            f"a{i}",
            "setUsageLocation",
            u.id,
            u.upn,
            u.usage_location,
            "FR" if u.usage_location != "FR" else "DE",
        )
        for i, u in enumerate(users)
    ]
    app = create_app(state, faults=FaultConfig(throttle_rate=0.4, error_rate=0.1, seed=11, retry_after_s=0))
    with open_app(app, policy=FAST) as conn:
        out = conn.execute(actions, parallelism=3)
    assert all(o.status == "succeeded" for o in out), [o for o in out if o.status != "succeeded"]
    assert any(o.attempts > 1 for o in out)
    stats = emulator_stats(app)
    assert stats["throttled"] > 0
    # every round trip beyond ceil(n/20) was caused by a throttled or failed answer (one layer retries)
    assert stats["requests"] <= math.ceil(len(actions) / 20) + stats["throttled"] + stats["errors"]
    assert all(u.usage_location in ("FR", "DE") for u in state.users if u.usage_location)


def test_retry_after_is_honoured_for_sub_requests(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    app = SubFlakyApp(
        create_app(state), {("PATCH", f"/users/{uid(state, 'dave.us')}"): 1}, status=429, retry_after="1"
    )
    started = time.monotonic()
    with open_app(app, policy=FAST) as conn:
        (o,) = conn.execute([loc("d", state, "dave.us", "GB")])
    assert time.monotonic() - started >= 1.0
    assert (o.status, o.attempts) == ("succeeded", 2)


def test_throttling_past_the_budget_fails_the_action_and_says_so(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    app = SubFlakyApp(
        create_app(state), {("PATCH", f"/users/{uid(state, 'dave.us')}"): 99}, status=429, retry_after="0"
    )
    policy = RetryPolicy(base_delay_s=0.01, max_attempts=3)
    with open_app(app, policy=policy) as conn:
        (o,) = conn.execute([loc("d", state, "dave.us", "GB")])
    assert (o.status, o.http_status, o.attempts, app.failed) == ("failed", 429, 3, 3)
    assert o.message is not None and "(gave up after 3 attempts). Graph kept throttling" in o.message


def test_500s_retried_only_when_safe_and_424_chains_resent(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    dave, sam = uid(state, "dave.us"), uid(state, "sam.new")
    app = SubFlakyApp(
        create_app(state),
        {
            (
                "PATCH",
                f"/users/{sam}",
            ): 2,  # idempotent: retried; its chained assignLicense answers 424 meanwhile
            (
                "POST",
                f"/users/{dave}/assignLicense",
            ): 1,  # removes a license: an unknown outcome is not repeated
        },
        status=500,
    )
    actions = [
        loc("sam-loc", state, "sam.new"),
        lic("sam-lic", state, "sam.new", add=[EV, DOM], deps=("sam-loc",)),
        lic("dave-rm", state, "dave.us", remove=[LicenseRef(SKUS["ENTERPRISEPACK"][0], "ENTERPRISEPACK")]),
    ]
    with open_app(app, policy=FAST) as conn:
        out = {o.action_id: o for o in conn.execute(actions)}
    assert (out["sam-loc"].status, out["sam-loc"].attempts) == ("succeeded", 3)
    assert (out["sam-lic"].status, out["sam-lic"].attempts) == ("succeeded", 1)  # the 424s did not count
    d = out["dave-rm"]
    assert (d.status, d.http_status, d.code, d.attempts) == ("failed", 500, "generalException", 1)
    assert (d.request_id or "").startswith("sub-flaky-")
    assert state.find_user("sam.new@contoso.com").usage_location == "US"  # type: ignore[union-attr]


def test_whole_batch_throttling_is_retried_then_raised(demo_path: Path) -> None:
    state = TenantState.load(demo_path)
    once = FlakyApp(create_app(state), {"/v1.0/$batch": 1}, status=503)
    with open_app(once, policy=FAST) as conn:
        (o,) = conn.execute([loc("d", state, "dave.us", "GB")])
    assert o.status == "succeeded" and once.failed == 1
    always = FlakyApp(create_app(state), {"/v1.0/$batch": 99}, status=503)
    seen: list[ActionOutcome] = []
    conn = open_app(always, policy=RetryPolicy(base_delay_s=0.01, max_attempts=3))
    with conn, pytest.raises(ThrottledError) as e:
        conn.execute([loc("d", state, "dave.us", "CA")], on_outcome=seen.append)
    assert always.failed == 3 and seen == []
    assert "POST http://localhost/v1.0/$batch: HTTP 503" in str(e.value)


def test_many_actions_pack_20_per_batch_with_parallelism(tmp_path: Path) -> None:
    state = TenantState.from_dict(synthetic_state(400, 2))
    users = [u for u in state.users if u.usage_location][:300]
    actions = [
        Action(f"a{i}", "setUsageLocation", u.id, u.upn, u.usage_location, "NL") for i, u in enumerate(users)
    ]
    app = create_app(state)
    with open_app(app) as conn:
        out = conn.execute(actions, parallelism=4)
    assert [o.action_id for o in out] == [a.id for a in actions]
    assert all(o.status == "succeeded" for o in out)
    stats = emulator_stats(app)
    assert (stats["requests"], stats["subRequests"]) == (15, 300)  # ceil(300 / 20)


def test_chained_steps_pack_into_the_minimum_of_batches(tmp_path: Path) -> None:
    """150 users with two chained steps and 20 with three: 360 sub-requests in ceil(360 / 20) = 18 batches,
    though a user's next step waits for its last to come back (batches hold no dependsOn chains)."""
    state = TenantState.from_dict(synthetic_state(400, 3))
    users = [u for u in state.users if u.usage_location][:170]
    actions: list[Action] = []
    for i, u in enumerate(users):
        steps = ["NL", "DE"] if i < 150 else ["NL", "DE", "FR"]
        prev: tuple[str, ...] = ()
        for n, to in enumerate(steps):
            actions.append(Action(f"u{i}-{n}", "setUsageLocation", u.id, u.upn, None, to, depends_on=prev))
            prev = (f"u{i}-{n}",)
    app = create_app(state)
    with open_app(app) as conn:
        out = conn.execute(actions, parallelism=4)
    assert all(o.status == "succeeded" for o in out) and len(out) == 360
    stats = emulator_stats(app)
    assert (stats["requests"], stats["subRequests"]) == (18, 360)
    assert {u.usage_location for u in users} == {"DE", "FR"}  # every chain ran in order


def test_a_removal_whose_answer_was_lost_is_judged_by_the_users_licenses(tmp_path: Path) -> None:
    # The removal is made but its answer is lost (504, a gateway timeout: HTTP does not promise a 5xx changed
    # nothing). The retry is refused ("does not have a corresponding license"): the writer reads the user and
    # finds the call's result in place, so the action succeeded; it used to be reported failed (apply exit 1).
    state = synthetic_state(1000, seed=9)
    st = TenantState.from_dict(state)
    holders = [u for u in st.users if DOM.sku_id in u.licenses and EV.sku_id in u.licenses][:60]
    assert len(holders) == 60
    actions = [Action(f"a{i}", "assignLicenses", u.id, u.upn, remove=(DOM,)) for i, u in enumerate(holders)]
    app = create_app(st, faults=FaultConfig(lost_reply_rate=0.3, seed=4, retry_after_s=0))
    with open_app(app, policy=FAST) as conn:
        out = conn.execute(actions, parallelism=3)
    assert all(o.status == "succeeded" for o in out), [o for o in out if o.status != "succeeded"]
    assert sum(o.attempts > 1 for o in out) >= 5  # answers were lost, and retried
    assert all(DOM.sku_id not in u.licenses for u in holders)
    # a refusal the earlier attempt does not explain still fails: the license was never held
    again = [Action("b1", "assignLicenses", holders[0].id, holders[0].upn, add=(EV,), remove=(DOM,))]
    app = create_app(st, faults=FaultConfig(lost_reply_rate=0.0, seed=4))
    with open_app(app, policy=FAST) as conn:
        (o,) = conn.execute(again, parallelism=1)
    assert o.status == "failed" and "does not hold that license" in (o.message or "")
