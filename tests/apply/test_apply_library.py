"""apply's library against a fake connection: guard, stale check, execution, audit log, progress."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from apply_fakes import (
    DOM,
    E3,
    EV,
    INTL,
    TENANT,
    FakeConnection,
    onboarding_plan,
    removal_plan,
    sku,
    uid,
    user,
)

from provisioner.apply import AuditLog, LineProgress, check_stale, execute, guard, make_progress
from provisioner.errors import PlanError, ProvisionerError, StalePlanError
from provisioner.model.observed import Assignment, ServicePlan, TenantInfo
from provisioner.model.plan import Diagnostic, Plan

# ---------------------------------------------------------------- guard


def test_guard_refuses_error_diagnostics_whatever_the_flags():
    plan = removal_plan(0, diagnostics=[
        Diagnostic("error", "insufficient-seats", "MCOPSTN1 needs 3 more seats", None, "m.yaml:4"),
        Diagnostic("warning", "inherited-license", "kept", "a@contoso.com"),
    ])  # fmt: skip
    for allow in (False, True):
        with pytest.raises(PlanError) as e:
            guard(plan, allow_removals=allow)
        text = str(e.value)
        assert "never apply" in text and "insufficient-seats" in text and "m.yaml:4" in text
        assert "inherited-license" not in text  # warnings do not block and are not listed


def test_guard_removal_limit_names_count_limit_and_the_way_out():
    with pytest.raises(PlanError) as e:
        guard(removal_plan(11, max_removals=10), allow_removals=False)
    text = str(e.value)
    assert "removes 11 license assignments" in text and "limit of 10" in text
    assert "--allow-removals" in text and "policy.maxRemovals" in text and "Nothing was changed" in text


def test_guard_passes_at_the_limit_and_with_the_flag():
    guard(removal_plan(10, max_removals=10), allow_removals=False)
    guard(removal_plan(50, max_removals=10), allow_removals=True)
    guard(removal_plan(0, max_removals=0), allow_removals=False)
    with pytest.raises(PlanError):
        guard(removal_plan(1, max_removals=0), allow_removals=False)


def test_removal_limit_diagnostic_is_lifted_by_the_flag_not_by_itself():
    diag = [Diagnostic("error", "removal-limit", "removes 11 > 10")]
    guard(removal_plan(11, max_removals=10, diagnostics=diag), allow_removals=True)
    with pytest.raises(PlanError, match="limit of 10"):
        guard(removal_plan(11, max_removals=10, diagnostics=diag), allow_removals=False)


# ---------------------------------------------------------------- stale check


def fresh_conn(names=("alice", "bob")) -> FakeConnection:
    return FakeConnection(
        users={uid(n): user(n, None, (E3,)) for n in names},
        skus=(sku(EV, 10, 5), sku(DOM, 10, 5), sku(INTL, 10, 5), sku(E3, 10, 5)),
    )


def test_unchanged_tenant_is_not_stale_and_reads_users_in_one_batch():
    conn = fresh_conn()
    assert check_stale(onboarding_plan(["alice", "bob"]), conn) == []
    user_reads = [r for r in conn.reads if r[0] == "users"]
    assert user_reads == [("users", (uid("alice"), uid("bob")))]


def test_usage_location_change_is_named():
    conn = fresh_conn()
    conn.users[uid("alice")] = user("alice", "GB", (E3,))
    assert check_stale(onboarding_plan(["alice", "bob"]), conn) == [
        "user alice@contoso.com: usage location changed (none) → GB since the plan was made"
    ]


def test_direct_license_change_is_named_with_part_numbers():
    conn = fresh_conn()
    conn.users[uid("bob")] = user("bob", None, (INTL,))
    assert check_stale(onboarding_plan(["alice", "bob"]), conn) == [
        "user bob@contoso.com: directly assigned licenses changed (+MCOPSTN2, −ENTERPRISEPACK)"
    ]


def test_deleted_user_is_named():
    conn = fresh_conn()
    del conn.users[uid("alice")]
    assert check_stale(onboarding_plan(["alice", "bob"]), conn) == ["user alice@contoso.com no longer exists"]


def test_seats_dropping_below_the_need_is_named():
    conn = fresh_conn()
    conn.skus = (sku(EV, 10, 5), sku(DOM, 6, 5), sku(INTL, 10, 5), sku(E3, 10, 5))
    assert check_stale(onboarding_plan(["alice", "bob"]), conn) == [
        "SKU MCOPSTN1: 1 free seat, the plan needs 2"
    ]


def test_missing_or_suspended_subscription_is_named():
    conn = fresh_conn()
    conn.skus = (sku(EV, 10, 5, "Suspended"), sku(E3, 10, 5))
    changes = check_stale(onboarding_plan(["alice", "bob"]), conn)
    assert changes == [
        "SKU MCOEV: subscription is now Suspended, the plan assigns it",
        "SKU MCOPSTN1: no longer in the tenant, the plan needs 2 seat(s)",
    ]


def test_tenant_mismatch_is_the_only_change_named():
    conn = fresh_conn()
    conn.tenant = TenantInfo("22222222-2222-2222-2222-222222222222", "Fabrikam")
    del conn.users[uid("alice")]  # read in the same go, but another tenant's users say nothing
    changes = check_stale(onboarding_plan(["alice"]), conn)
    assert changes == [
        f"the plan was made for tenant Contoso ({TENANT.id}), "
        "but this is tenant Fabrikam (22222222-2222-2222-2222-222222222222)"
    ]


def test_every_change_is_listed_together_and_stale_error_says_what_to_do():
    conn = fresh_conn(("alice", "bob", "carol"))
    conn.users[uid("alice")] = user("alice", "GB", (E3,))
    conn.users[uid("bob")] = user("bob", None, (E3, INTL))
    del conn.users[uid("carol")]
    conn.skus = (sku(EV, 10, 9), sku(DOM, 10, 5), sku(INTL, 10, 5), sku(E3, 10, 5))
    changes = check_stale(onboarding_plan(["alice", "bob", "carol"]), conn)
    assert len(changes) == 4
    text = str(StalePlanError(changes))
    assert (
        "alice@contoso.com" in text and "+MCOPSTN2" in text and "carol@contoso.com no longer exists" in text
    )
    assert "SKU MCOEV: 1 free seat, the plan needs 3" in text and "provision plan" in text


def test_plan_without_recorded_preconditions_is_checked_against_its_actions():
    plan = replace(onboarding_plan(["alice"]), user_preconditions=())
    conn = fresh_conn(("alice",))
    assert check_stale(plan, conn) == []
    conn.users[uid("alice")] = user("alice", "DE", (E3, EV))
    assert check_stale(plan, conn) == [
        "user alice@contoso.com: usage location changed (none) → DE since the plan was made",
        "user alice@contoso.com: directly assigned licenses changed (+MCOEV)",
    ]


def _recorded(plan: Plan, disabled=(), inherited=()) -> Plan:
    """The plan as this version's planner saves it: with each user's disabled plans and inherited licenses."""
    pre = tuple(replace(p, direct_disabled_plans=tuple(disabled), inherited_sku_ids=tuple(inherited))
                for p in plan.user_preconditions)
    return replace(plan, user_preconditions=pre)


MCOEV_PLAN = "4828c8ec-dc2e-4779-b502-87ac9ce28ab7"


def test_a_service_plan_disabled_in_a_direct_license_since_the_plan_is_named():
    # The plan relied on E3 as it was (say, a suite giving Phone System): disabling a plan in it changes that.
    plan = _recorded(onboarding_plan(["alice", "bob"]))
    conn = fresh_conn()
    conn.skus = (*conn.skus[:3], replace(sku(E3, 10, 5), service_plans=(ServicePlan(MCOEV_PLAN, "MCOEV"),)))
    assert check_stale(plan, conn) == []
    conn.users[uid("alice")] = user("alice", None)._replace(assignments=(Assignment(E3.sku_id, None, (MCOEV_PLAN,)),))
    assert check_stale(plan, conn) == [
        "user alice@contoso.com: service plans of directly assigned ENTERPRISEPACK changed (now disabled: MCOEV)"
    ]
    # and the other way: a plan recorded with it disabled, now enabled again
    plan = _recorded(onboarding_plan(["bob"]), disabled=[(E3.sku_id, (MCOEV_PLAN,))])
    assert check_stale(plan, conn) == [
        "user bob@contoso.com: service plans of directly assigned ENTERPRISEPACK changed (now enabled: MCOEV)"
    ]


def test_a_license_inherited_from_a_group_gained_or_lost_since_the_plan_is_named():
    plan = _recorded(onboarding_plan(["alice"]), inherited=[EV.sku_id])
    conn = fresh_conn(("alice",))
    group = "9f0e0c3a-0000-4000-8000-000000000001"
    with_group = (Assignment(E3.sku_id), Assignment(EV.sku_id, group, (), "Active"))
    conn.users[uid("alice")] = user("alice", None)._replace(assignments=with_group)
    assert check_stale(plan, conn) == []
    conn.users[uid("alice")] = user("alice", None)  # left the group
    assert check_stale(plan, conn) == ["user alice@contoso.com: licenses inherited from groups changed (−MCOEV)"]
    # a group assignment in Error gives nothing, as in planning
    in_error = (Assignment(E3.sku_id), Assignment(EV.sku_id, group, (), "Error", "CountViolation"))
    conn.users[uid("alice")] = user("alice", None)._replace(assignments=in_error)
    assert check_stale(plan, conn) == ["user alice@contoso.com: licenses inherited from groups changed (−MCOEV)"]


def test_plans_saved_before_disabled_plans_were_recorded_are_not_called_stale_for_them():
    conn = fresh_conn(("alice",))
    conn.users[uid("alice")] = user("alice", None)._replace(assignments=(Assignment(E3.sku_id, None, (MCOEV_PLAN,)),))
    old = onboarding_plan(["alice"])
    assert old.user_preconditions[0].direct_disabled_plans is None
    assert check_stale(old, conn) == []
    # the new keys survive the plan file, and an old file without them reads as None
    d = _recorded(old, disabled=[(E3.sku_id, (MCOEV_PLAN,))], inherited=[EV.sku_id]).to_dict()
    pre = d["preconditions"]["users"][0]
    assert pre["directDisabledPlans"] == {E3.sku_id: [MCOEV_PLAN]} and pre["inheritedSkuIds"] == [EV.sku_id]
    again = Plan.from_dict(json.loads(json.dumps(d))).user_preconditions[0]
    assert again.direct_disabled_plans == ((E3.sku_id, (MCOEV_PLAN,)),) and again.inherited_sku_ids == (EV.sku_id,)
    del pre["directDisabledPlans"], pre["inheritedSkuIds"]
    assert Plan.from_dict(d).user_preconditions[0].direct_disabled_plans is None


# ---------------------------------------------------------------- execute


def test_all_succeed_counts_per_type_and_ok():
    conn = fresh_conn()
    result = execute(onboarding_plan(["alice", "bob"]), conn, parallelism=2)
    assert result.ok
    assert result.counts() == {
        "assignLicenses": {"succeeded": 2, "failed": 0, "skipped": 0},
        "setUsageLocation": {"succeeded": 2, "failed": 0, "skipped": 0},
    }
    assert [r.action.id for r in result.results] == ["alice-loc", "alice-lic", "bob-loc", "bob-lic"]


@pytest.mark.parametrize("dependent_status", ["skipped", "failed"])  # the writer's word, or Graph's raw 424
def test_failed_action_skips_its_dependents_and_nothing_else(dependent_status):
    conn = fresh_conn(("alice", "bob", "carol"))
    conn.fail = {"bob-loc": (400, "Request_BadRequest")}
    conn.dependent_status = dependent_status
    result = execute(onboarding_plan(["alice", "bob", "carol"]), conn)
    status = {r.action.id: r.status for r in result.results}
    assert status == {
        "alice-loc": "succeeded", "alice-lic": "succeeded",
        "bob-loc": "failed", "bob-lic": "skipped",
        "carol-loc": "succeeded", "carol-lic": "succeeded",
    }  # fmt: skip
    assert not result.ok
    assert result.totals() == {"succeeded": 4, "failed": 1, "skipped": 1}
    skipped = result.skipped[0]
    assert "depends on bob-loc" in (skipped.message or "") and "set usage location" in (skipped.message or "")
    assert [f.action.id for f in result.failures] == ["bob-loc"]
    assert "bob-lic" not in conn.executed and "carol-lic" in conn.executed


def test_each_action_has_exactly_one_outcome_even_when_the_writer_drops_or_repeats():
    conn = fresh_conn()
    conn.drop = {"bob-lic"}
    conn.also_return = True  # outcomes come through the callback *and* the return value
    result = execute(onboarding_plan(["alice", "bob"]), conn)
    assert [r.status for r in result.results] == ["succeeded", "succeeded", "succeeded", "skipped"]
    assert "no outcome" in (result.results[3].message or "")


def test_writer_error_midway_keeps_known_outcomes_and_marks_the_rest_unconfirmed(tmp_path):
    conn = fresh_conn(("alice", "bob"))
    conn.raise_after = 2
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        result = execute(onboarding_plan(["alice", "bob"]), conn, audit=audit)
    assert not result.ok and "token expired" in (result.error or "")
    assert [r.status for r in result.results] == ["succeeded", "succeeded", "skipped", "skipped"]
    assert "not confirmed" in (result.results[2].message or "")
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2  # only what Graph confirmed is in the record


def test_empty_plan_does_not_call_the_writer():
    class NoWrites(FakeConnection):
        def execute(self, *a, **k):
            raise AssertionError("no actions, no writes")

    result = execute(Plan(TENANT.id, "Contoso", "f"), NoWrites())
    assert result.ok and result.results == ()


def test_result_json_shape():
    conn = fresh_conn()
    conn.fail = {"alice-lic": (400, "Request_BadRequest")}
    d = execute(onboarding_plan(["alice"]), conn).to_dict()
    json.dumps(d)  # serialisable
    assert d["ok"] is False
    assert d["tenant"] == {"id": TENANT.id, "displayName": "Contoso"}
    assert d["summary"]["succeeded"] == 1 and d["summary"]["failed"] == 1 and d["summary"]["actions"] == 2
    assert d["summary"]["byType"]["assignLicenses"] == {"succeeded": 0, "failed": 1, "skipped": 0}
    o = d["outcomes"][1]
    assert o == {
        "actionId": "alice-lic", "type": "assignLicenses", "user": {"id": uid("alice"), "upn": "alice@contoso.com"},
        "status": "failed", "httpStatus": 400, "code": "Request_BadRequest",
        "message": "Request_BadRequest for alice@contoso.com", "requestId": "rid-alice-lic", "attempts": 3,
    }  # fmt: skip


# ---------------------------------------------------------------- audit log


def test_audit_line_is_on_disk_before_the_next_action_starts(tmp_path):
    path = tmp_path / "audit.jsonl"
    seen: list[int] = []
    conn = fresh_conn()
    # The writer's hook runs before each action: by then every earlier outcome must already be in the file.
    conn.before_each = lambda _id: seen.append(len(path.read_text().splitlines()) if path.exists() else 0)
    with AuditLog(path) as audit:
        execute(onboarding_plan(["alice", "bob"]), conn, audit=audit)
    assert seen == [0, 1, 2, 3]


def test_audit_lines_are_compact_sorted_json_in_utf8(tmp_path):
    """The line format readers may rely on (as `json.dumps(ensure_ascii=False, sort_keys=True, separators=(",",
    ":"))` writes it): one object per line, keys sorted, no spaces, non-ASCII as is, control characters escaped."""
    path = tmp_path / "audit.jsonl"
    record = {"user": {"upn": "zoë@contoso.com", "id": "u"}, "message": 'tab\there\nline \x01 "q" \\ ☃', "attempts": 2,
              "code": None, "before": {"licenses": ["b", "a"]}}
    with AuditLog(path) as audit:
        audit.write(record)
    raw = path.read_bytes()
    assert raw == (json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode()
    assert json.loads(raw) == record


def test_audit_records_say_who_what_before_after_and_graph_ids(tmp_path):
    path = tmp_path / "audit.jsonl"
    conn = fresh_conn()
    conn.fail = {"bob-lic": (403, "Authorization_RequestDenied")}
    with AuditLog(path) as audit:
        execute(onboarding_plan(["alice", "bob"]), conn, audit=audit)
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["action"]["id"] for r in recs] == ["alice-loc", "alice-lic", "bob-loc", "bob-lic"]
    loc, lic, _, bad = recs
    assert loc["time"].endswith("Z") and "T" in loc["time"]
    assert loc["tenant"]["id"] == TENANT.id
    assert loc["user"] == {"id": uid("alice"), "upn": "alice@contoso.com"}
    assert loc["action"]["type"] == "setUsageLocation"
    assert loc["before"] == {"usageLocation": None} and loc["after"] == {"usageLocation": "US"}
    assert lic["before"] == {"licenses": []} and lic["after"] == {"licenses": ["MCOEV", "MCOPSTN1"]}
    assert lic["action"]["add"] == ["MCOEV", "MCOPSTN1"] and lic["outcome"] == "succeeded"
    assert lic["requestId"] == "rid-alice-lic"
    assert bad["outcome"] == "failed" and bad["httpStatus"] == 403
    assert bad["code"] == "Authorization_RequestDenied" and bad["requestId"] == "rid-bob-lic"


def test_audit_before_after_fall_back_to_the_recorded_direct_licenses(tmp_path):
    path = tmp_path / "audit.jsonl"
    plan = replace(onboarding_plan(["alice"]), users=(), seats=())
    with AuditLog(path) as audit:
        execute(plan, fresh_conn(("alice",)), audit=audit)
    lic = json.loads(path.read_text().splitlines()[1])
    # E3 is not named anywhere in the plan: it is recorded by id rather than guessed.
    assert lic["before"] == {"licenses": [E3.sku_id]}
    assert lic["after"] == {"licenses": sorted([E3.sku_id, "MCOEV", "MCOPSTN1"])}


def test_audit_log_appends_and_never_truncates(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier":"run"}\n')
    for _ in range(2):
        with AuditLog(path) as audit:
            execute(onboarding_plan(["alice"]), fresh_conn(("alice",)), audit=audit)
    lines = path.read_text().splitlines()
    assert lines[0] == '{"earlier":"run"}' and len(lines) == 5
    assert all(json.loads(x) for x in lines)


def test_audit_log_in_a_missing_folder_is_a_plain_error(tmp_path):
    with pytest.raises(ProvisionerError, match="cannot open the audit log"):
        AuditLog(tmp_path / "no" / "such" / "audit.jsonl")


def test_audit_log_is_safe_across_threads(tmp_path):
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as audit:
        threads = [
            threading.Thread(
                target=lambda i=i: [audit.write({"t": i, "n": n, "pad": "x" * 500}) for n in range(50)]
            )
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(recs) == 400 and len({(r["t"], r["n"]) for r in recs}) == 400


# ---------------------------------------------------------------- progress


def test_plain_progress_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = make_progress(stream)
    assert isinstance(progress, LineProgress)
    conn = fresh_conn()
    conn.fail = {"bob-loc": (400, "Request_BadRequest")}
    execute(onboarding_plan(["alice", "bob"]), conn, progress=progress)
    assert stream.getvalue().splitlines() == [
        "[1/4] alice@contoso.com setUsageLocation: succeeded",
        "[2/4] alice@contoso.com assignLicenses: succeeded",
        "[3/4] bob@contoso.com setUsageLocation: failed (HTTP 400 Request_BadRequest: Request_BadRequest for bob@contoso.com)",
        "[4/4] bob@contoso.com assignLicenses: skipped (not attempted: it depends on bob-loc (set usage location (none) → US), which did not succeed)",
    ]


def test_bar_progress_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    progress = make_progress(stream)
    assert type(progress).__name__ == "BarProgress"
    conn = fresh_conn()
    conn.fail = {"bob-loc": (400, "Request_BadRequest")}
    execute(onboarding_plan(["alice", "bob"]), conn, progress=progress)
    out = stream.getvalue()
    assert "bob@contoso.com setUsageLocation: failed" in out  # failures are printed above the bar
    assert "alice@contoso.com setUsageLocation: succeeded" not in out  # successes only move the bar


def test_a_saved_plan_json_reads_but_orjson_refuses_or_reads_inexactly_loads_as_json_reads_it(tmp_path: Path) -> None:
    """Saved plans are parsed with orjson, and with json where orjson refuses the text (NaN) or would read it
    otherwise (it reads integers beyond 64 bits as floats): what loaded before loads the same."""
    from provisioner.apply.saved import load_saved_plan, saved_plan_path

    plan = onboarding_plan(["alice", "bob"])
    text = json.dumps(plan.to_dict(), indent=2)
    plain, nan, big = tmp_path / "plain.json", tmp_path / "nan.json", tmp_path / "big.json"
    plain.write_text(text)
    nan.write_text(text.replace("{", '{"note": NaN,', 1))
    big.write_text(text.replace("{", '{"big": 123456789012345678901234567890,', 1))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(nan.read_bytes())
    assert isinstance(orjson.loads(big.read_bytes())["big"], float)  # what orjson alone would give
    loaded = [load_saved_plan(p) for p in (saved_plan_path([f]) for f in (plain, nan, big)) if p is not None]
    assert len(loaded) == 3 and loaded[0] == load_saved_plan(plain) and loaded[0].actions == plan.actions
    assert replace(loaded[1], extra={}) == replace(loaded[2], extra={}) == loaded[0]  # unknown keys: `extra`
    assert loaded[2].extra["big"] == 123456789012345678901234567890
    assert type(loaded[2].extra["big"]) is int
