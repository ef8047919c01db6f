"""Pure parts of provisioner.graph: filters and the read cost model, retry rules, error wording, JSON parsing,
and the writer's schedule (batches, dependsOn, skips, seat order, 424 re-sends)."""

from __future__ import annotations

import random
from urllib.parse import unquote

import pytest

from provisioner.errors import GraphError, ThrottledError
from provisioner.graph import failures, strategy
from provisioner.graph.parse import holds_any, skus_from_json, tenant_from_json, user_from_json
from provisioner.graph.retry import RetryPolicy, parse_retry_after
from provisioner.graph.schedule import WriteSchedule, action_request, is_idempotent
from provisioner.model.observed import Sku
from provisioner.model.plan import Action, LicenseRef

EV = LicenseRef("e43b5b99-8dfb-405f-9987-dc307f34bcbd", "MCOEV")
DOM = LicenseRef("0dab259f-bf13-4952-b7f8-7db8f131b28d", "MCOPSTN1")


# -- strategy ------------------------------------------------------------------------------------------
def test_upn_filters_chunk_15_distinct_sorted_and_quote() -> None:
    upns = [f"U{i:02d}@x.com" for i in range(31)] + ["u00@x.com", "o'brien@x.com"]
    fs = strategy.upn_filters(upns)
    assert len(fs) == 3  # 32 distinct → 15 + 15 + 2
    assert fs[0].startswith("userPrincipalName in ('o''brien@x.com','u00@x.com',")
    assert fs[0].count(",") == 14 and fs[2].count(",") == 1
    assert "U00" not in "".join(fs)  # lower-cased


def test_id_filters_chunk_15_distinct_guids_lower_cased_and_sorted() -> None:
    ids = [f"0000{i:04X}-AAAA-4000-8000-000000000000" for i in range(31)]
    ids += [ids[0].lower(), " ", "", "not-a-guid", "0'1", "00000000-0000-0000-0000-00000000000"]
    fs = strategy.id_filters(ids)
    assert len(fs) == 3  # 31 distinct GUIDs (case folded) → 15 + 15 + 1; the rest are not ids
    assert (
        fs[0] == "id in (" + ",".join(f"'0000{i:04x}-aaaa-4000-8000-000000000000'" for i in range(15)) + ")"
    )
    assert fs[2] == "id in ('0000001e-aaaa-4000-8000-000000000000')"
    assert strategy.id_filters([]) == [] and strategy.id_filters(["x"]) == []
    # percent-encoded, as the reader sends it in a $batch sub-request URL
    url = strategy.users_url("", filter_text=fs[2])
    assert url.startswith("/users?$filter=id%20in%20%28%270000001e-") and " " not in url


def test_sku_filters_split_by_encoded_length() -> None:
    ids = [f"{i:08x}-0000-0000-0000-000000000000" for i in range(40)]
    fs = strategy.sku_filters(ids, max_chars=900)
    assert len(fs) > 1
    assert all(len(strategy.encode(f)) <= 900 for f in fs)
    joined = " or ".join(fs)
    assert joined.count("assignedLicenses/any(x:x/skuId eq ") == 40
    one = strategy.sku_filters(ids[:3])
    assert one == [" or ".join(f"assignedLicenses/any(x:x/skuId eq {i})" for i in ids[:3])]


def test_users_url_encodes_filter_and_asks_count() -> None:
    url = strategy.users_url("", filter_text="userPrincipalName in ('a b@x.com')", count=True)
    assert url.startswith("/users?$filter=userPrincipalName%20in%20")
    assert url.endswith("&$top=999&$count=true")
    assert (
        "$select=id,userPrincipalName,displayName,accountEnabled,usageLocation,assignedLicenses,licenseAssignmentStates"
        in url
    )
    assert unquote(url.split("$filter=")[1].split("&")[0]) == "userPrincipalName in ('a b@x.com')"


@pytest.mark.parametrize(
    ("n_users", "managed", "named", "expected"),
    [
        (20000, 12000, 320, "filtered"),  # small manifest, big directory
        (20000, 20000, 20000, "scan"),  # everyone managed and named: one scan
        (20000, 20000, 0, "filtered"),  # export: a tie goes to the filter (it returns fewer users)
        (None, 50000, 5000, "filtered"),  # unknown directory size: never scan
        (500, 400, 450, "scan"),
    ],
)
def test_choose_picks_the_cheaper(n_users: int | None, managed: int, named: int, expected: str) -> None:
    c = strategy.choose(
        n_users=n_users, managed_estimate=managed, n_named=named, n_sku_filters=1, include_all_managed=True
    )
    assert c.strategy == expected, c


def test_choose_lookup_only_when_not_reading_all_managed() -> None:
    c = strategy.choose(
        n_users=20000, managed_estimate=9000, n_named=40, n_sku_filters=1, include_all_managed=False
    )
    assert (c.strategy, c.filtered_cost, c.scan_cost) == ("lookup", 1, 21)


# -- retry ---------------------------------------------------------------------------------------------
def test_retry_policy_statuses() -> None:
    p = RetryPolicy()
    for s in (429, 503, 504):
        assert p.is_retryable(s, idempotent=False)
    for s in (500, 502):
        assert p.is_retryable(s, idempotent=True) and not p.is_retryable(s, idempotent=False)
    for s in (400, 401, 403, 404, 409, 424, None):
        assert not p.is_retryable(s, idempotent=True)


def test_retry_delay_honours_retry_after_else_jittered_backoff() -> None:
    p = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    assert p.delay(3, 7.5) == 7.5
    rng = random.Random(1)
    ds = [p.delay(n, None, rng) for n in range(1, 7)]
    for n, d in enumerate(ds, start=1):
        ceiling = min(8.0, 2 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    assert len({round(d, 6) for d in ds}) == len(ds)  # jitter
    assert p.may_retry(1, 10, 0) and not p.may_retry(1, 10, p.budget_s - 5)
    assert not p.may_retry(p.max_attempts, 0, 0)


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0"}) == 0.0
    assert parse_retry_after({"Other": "1"}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    later = parse_retry_after({"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert later is not None and later > 1e6


# -- failures ------------------------------------------------------------------------------------------
SKUS = {DOM.sku_id: Sku(DOM.sku_id, "MCOPSTN1", "Enabled", 50, 50)}


def test_seat_error_in_plain_words() -> None:
    msg = f"Subscription {DOM.sku_id} does not have any available licenses."
    assert failures.plain_sentence(msg, SKUS).startswith(
        "no free Domestic Calling Plan (MCOPSTN1) seats: 0 of 50 free"
    )
    assert failures.plain_sentence(msg, {}).startswith(f"no free SKU {DOM.sku_id} seats;")
    assert "usage location" in (
        failures.plain_sentence("License assignment cannot be done for user with invalid usage location.")
        or ""
    )
    assert failures.plain_sentence("something else") is None


def test_graph_verdict_wordings_seen_in_the_wild_get_plain_words() -> None:
    from provisioner.model.observed import ServicePlan

    seats = f"Subscription with SKU {DOM.sku_id} does not have any available licenses."
    assert failures.plain_sentence(seats, SKUS).startswith("no free Domestic Calling Plan (MCOPSTN1) seats")
    assert failures.plain_sentence("Subscription does not have any available licenses", SKUS).startswith(
        "no free seats for a license in this call"
    )
    for inherited in ("User license is inherited from a group membership and it cannot be removed directly "
                      "from the user.",
                      "User license is inherited from group membership and cannot be removed directly from the user."):
        assert (failures.plain_sentence(inherited) or "").startswith("the license comes from a group"), inherited
    mcoev, teams, std = "4828c8ec-dc2e-4779-b502-87ac9ce28ab7", "57ff2da0-773e-42df-b2af-ffb7a2317929", \
        "0feaeb32-d00e-4d66-bd5a-43b5b83db82c"
    calling = ("License assignment failed because service plan 4ed3ff63-69d7-4fb7-b984-5aec7f605ca8 depends on "
               f"the service plan(s) {mcoev}.")
    assert (failures.plain_sentence(calling) or "").startswith("a Calling Plan needs Phone System")
    # Phone System's own prerequisites are another matter: named, not mistaken for the Calling Plan rule
    e5 = Sku("e5", "SPE_E5", "Enabled", 1, 1, service_plans=(ServicePlan(mcoev, "MCOEV"), ServicePlan(teams, "TEAMS1"),
                                                           ServicePlan(std, "MCOSTANDARD")))
    phone = f"License assignment failed because service plan {mcoev} depends on the service plan(s) {std}, {teams}."
    assert failures.plain_sentence(phone, {"e5": e5}) == (
        "service plan MCOEV needs MCOSTANDARD, TEAMS1, which the user does not have enabled: assign a license "
        "that includes it (or enable it) first"
    )


def test_sub_response_maps_to_graph_error() -> None:
    sub = {
        "id": "3",
        "status": 400,
        "headers": {"Content-Type": "application/json"},
        "body": {
            "error": {
                "code": "Request_BadRequest",
                "message": f"Subscription {DOM.sku_id} does not have any available licenses.",
                "innerError": {"request-id": "rid-9"},
            }
        },
    }
    err = failures.from_sub_response(
        sub, method="POST", url="https://graph.microsoft.com/v1.0/users/u1/assignLicense"
    )
    assert type(err) is GraphError
    assert (err.status, err.code, err.request_id) == (400, "Request_BadRequest", "rid-9")
    assert "POST https://graph.microsoft.com/v1.0/users/u1/assignLicense: HTTP 400 Request_BadRequest" in str(
        err
    )
    assert "(request-id rid-9)" in str(err)


def test_throttled_and_forbidden_errors() -> None:
    body = b'{"error":{"code":"TooManyRequests","message":"Please retry again later.","innerError":{"request-id":"r1"}}}'
    err = failures.from_response(429, {"Retry-After": "5"}, body, method="GET", url="https://g/v1.0/users")
    assert isinstance(err, ThrottledError) and err.retry_after == 5.0 and err.request_id == "r1"
    err = failures.from_response(
        403, {"request-id": "r2"}, b"not json", method="POST", url="https://g/v1.0/users/x/assignLicense"
    )
    assert err.request_id == "r2" and err.code is None
    assert "LicenseAssignment.ReadWrite.All" in (err.hint or "")


# -- parse ---------------------------------------------------------------------------------------------
def test_user_assignments_from_license_assignment_states() -> None:
    d = {
        "id": "u1",
        "userPrincipalName": "Alice@Contoso.com",
        "displayName": "Alice",
        "accountEnabled": True,
        "usageLocation": "US",
        "assignedLicenses": [{"skuId": EV.sku_id.upper(), "disabledPlans": []}],
        "licenseAssignmentStates": [
            {
                "skuId": EV.sku_id.upper(),
                "assignedByGroup": None,
                "disabledPlans": ["B", "A"],
                "state": "Active",
                "error": "None",
            },
            {
                "skuId": DOM.sku_id,
                "assignedByGroup": "G1",
                "disabledPlans": [],
                "state": "Error",
                "error": "CountViolation",
            },
        ],
    }
    u = user_from_json(d)
    assert u.key == "alice@contoso.com"
    assert u.direct_sku_ids == frozenset({EV.sku_id})
    assert u.inherited_from(DOM.sku_id) == ("g1",)
    assert u.assignments[0].disabled_plans == ("a", "b") and u.assignments[0].error is None
    assert (u.assignments[1].state, u.assignments[1].error) == ("Error", "CountViolation")
    assert holds_any(d, frozenset({DOM.sku_id})) and not holds_any(d, frozenset({"x"}))
    del d["licenseAssignmentStates"]
    assert user_from_json(d).direct_sku_ids == frozenset({EV.sku_id})  # fallback: assignedLicenses


def test_skus_and_tenant_parse_sorted() -> None:
    skus = skus_from_json({"value": [
        {"skuId": DOM.sku_id, "skuPartNumber": "MCOPSTN1", "capabilityStatus": "Enabled", "consumedUnits": 3, "prepaidUnits": {"enabled": 5, "suspended": 1}},
        {"skuId": EV.sku_id.upper(), "skuPartNumber": "MCOEV", "consumedUnits": 0, "prepaidUnits": {"enabled": 2}, "servicePlans": [{"servicePlanId": "P", "servicePlanName": "MCOEV"}]},
    ]})  # fmt: skip
    assert [s.part_number for s in skus] == ["MCOEV", "MCOPSTN1"]
    assert skus[0].sku_id == EV.sku_id and skus[0].service_plans[0].id == "p"
    assert (skus[1].free, skus[1].suspended) == (2, 1)
    t = tenant_from_json(
        {
            "value": [
                {"id": "T", "displayName": "C", "verifiedDomains": [{"name": "b.com"}, {"name": "a.com"}]}
            ]
        }
    )
    assert (t.id, t.verified_domains) == ("t", ("a.com", "b.com"))


# -- schedule ------------------------------------------------------------------------------------------
def loc(aid: str, user: str, deps: tuple[str, ...] = ()) -> Action:
    return Action(aid, "setUsageLocation", user, f"{user}@x.com", None, "US", depends_on=deps)


def lic(aid: str, user: str, add=(), remove=(), deps: tuple[str, ...] = ()) -> Action:  # type: ignore[no-untyped-def]
    return Action(
        aid, "assignLicenses", user, f"{user}@x.com", add=tuple(add), remove=tuple(remove), depends_on=deps
    )


def test_action_requests_match_graph_shapes() -> None:
    assert action_request(loc("a", "u1")) == {
        "method": "PATCH", "url": "/users/u1", "headers": {"Content-Type": "application/json"}, "body": {"usageLocation": "US"},
    }  # fmt: skip
    body = action_request(lic("b", "u1", add=[EV], remove=[DOM]))["body"]
    assert body == {
        "addLicenses": [{"skuId": EV.sku_id, "disabledPlans": []}],
        "removeLicenses": [DOM.sku_id],
    }
    assert is_idempotent(loc("a", "u")) and is_idempotent(lic("b", "u", add=[EV]))
    assert not is_idempotent(lic("c", "u", remove=[DOM]))


def test_batches_are_fully_parallel_and_a_users_next_action_waits_for_the_one_before() -> None:
    # Graph refuses a batch mixing dependsOn chains with independent requests (graph-docs#16280)
    acts = [loc("a1", "u1"), lic("a2", "u1", add=[EV, DOM], deps=("a1",)), loc("b1", "u2")]
    s = WriteSchedule(acts)
    (b,) = s.next_batches(0.0, 4)
    assert [(r["id"], r.get("dependsOn")) for r in b.body()["requests"]] == [("1", None), ("2", None)]
    assert [a.id for a in b.actions] == ["a1", "b1"]
    assert s.next_batches(0.0, 4) == []  # a2 waits for a1, which is in flight
    s.succeeded("a1", 204, "r1")
    s.succeeded("b1", 204, "r2")
    (b,) = s.next_batches(0.1, 4)
    assert [a.id for a in b.actions] == ["a2"] and "dependsOn" not in b.body()["requests"][0]


def test_batches_hold_at_most_20_and_one_action_per_user() -> None:
    acts = []
    for i in range(30):
        acts += [loc(f"l{i}", f"u{i}"), lic(f"c{i}", f"u{i}", add=[EV], deps=(f"l{i}",))]
    acts += [loc(f"x{i}", f"v{i}") for i in range(10)]  # 70 sub-requests; 40 can go now
    s = WriteSchedule(acts)
    batches = s.next_batches(0.0, 10)
    assert [len(b.actions) for b in batches] == [20, 20]  # = ceil(40 / 20)
    for b in batches:
        users = [a.user_id for a in b.actions]
        assert len(users) == len(set(users))
        assert all("dependsOn" not in r for r in b.body()["requests"])
    for b in batches:
        for a in b.actions:
            s.succeeded(a.id, 204, None)
    later = s.next_batches(1.0, 10)
    assert sorted(a.id for b in later for a in b.actions) == sorted(f"c{i}" for i in range(30))
    assert [len(b.actions) for b in later] == [20, 10]


def test_failure_skips_dependents_across_users_and_never_sends_them() -> None:
    acts = [
        lic("r", "u1", remove=[DOM]),
        lic("a", "u2", add=[DOM], deps=("r",)),
        lic("z", "u3", add=[DOM], deps=("a",)),
    ]
    s = WriteSchedule(acts)
    (b,) = s.next_batches(0.0, 4)
    assert [a.id for a in b.actions] == ["r"]  # a and z wait for r
    s.failed("r", 400, "Request_BadRequest", "no", "rid")
    out = {o.action_id: o for o in s.take_new_outcomes()}
    assert out["a"].status == "skipped" and out["a"].message == "not attempted: it depends on r, which failed"
    assert out["z"].status == "skipped" and "depends on a, which was skipped" in (out["z"].message or "")
    assert out["a"].attempts == 0 and s.done


def test_seat_order_adds_wait_for_earlier_removals_but_are_not_skipped() -> None:
    acts = [lic("r", "u1", remove=[DOM]), lic("a", "u2", add=[DOM]), loc("l", "u3")]
    s = WriteSchedule(acts)
    (b,) = s.next_batches(0.0, 4)
    assert [a.id for a in b.actions] == ["r", "l"]
    s.failed("r", 400, None, "x", None)
    (b2,) = s.next_batches(1.0, 4)
    assert [a.id for a in b2.actions] == ["a"]  # ordering only: a failed removal does not skip the add


def test_throttled_action_waits_and_a_424_is_resent_not_counted() -> None:
    acts = [loc("l", "u1"), lic("c", "u1", add=[EV], deps=("l",))]
    s = WriteSchedule(acts)
    (b,) = s.next_batches(0.0, 1)
    assert [a.id for a in b.actions] == ["l"]
    s.retry_at("l", 5.0)
    assert s.next_batches(1.0, 1) == [] and s.next_wake() == 5.0  # c waits for l, which waits for 5.0
    (b,) = s.next_batches(5.0, 1)
    assert [a.id for a in b.actions] == ["l"] and s.attempts["l"] == 2
    s.succeeded("l", 204, "r1")
    (b,) = s.next_batches(5.1, 1)
    assert [a.id for a in b.actions] == ["c"]
    s.requeue("c")  # a 424 (Graph has no reason to give one without dependsOn): sent again, not an attempt
    (b,) = s.next_batches(5.2, 1)
    assert [a.id for a in b.actions] == ["c"] and s.attempts["c"] == 1
    s.succeeded("c", 200, "r2")
    assert s.done and [o.status for o in s.outcomes()] == ["succeeded", "succeeded"]


def test_user_from_json_shares_assignments_and_builds_immutable_users() -> None:
    """parse.py shares Assignment instances between users: equal to building them one by one, and immutable."""
    from provisioner.model.observed import Assignment, User

    d = {"id": "u9", "userPrincipalName": "Bo@x.com", "displayName": None, "accountEnabled": False,
         "usageLocation": "", "licenseAssignmentStates": [{"skuId": DOM.sku_id, "assignedByGroup": None,
                                                          "disabledPlans": [], "state": "Active", "error": "None"}]}  # fmt: skip
    fast = user_from_json(d)
    slow = User("u9", "Bo@x.com", None, False, None, (Assignment(DOM.sku_id, None, (), "Active", None),))
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert user_from_json(d).assignments[0] is fast.assignments[0]  # shared, immutable
    with pytest.raises(AttributeError):
        fast.upn = "x"  # type: ignore[misc]
