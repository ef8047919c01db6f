"""`provision apply` end to end through the CLI, with the tenant connection and planner replaced by fakes.

What these pin: which gate refuses what (exit 1, nothing executed), the terminal prompt and the no-terminal
refusal, stdout/stderr split, the results summary and JSON, the audit log, and exit codes.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import replace

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

import provisioner.cli.apply as cli_apply
from provisioner.cli import main
from provisioner.model.observed import TenantInfo
from provisioner.model.plan import Diagnostic, Plan


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> FakeConnection:
    c = FakeConnection(
        users={uid(n): user(n, None, (E3,)) for n in ("alice", "bob")},
        skus=(sku(EV, 10, 5), sku(DOM, 10, 5), sku(INTL, 10, 5), sku(E3, 10, 5)),
    )
    c.connects = 0  # type: ignore[attr-defined]

    def fake_connect(tenant, graph_url, auth, debug):
        c.connects += 1  # type: ignore[attr-defined]
        return nullcontext(c)

    monkeypatch.setattr(cli_apply, "_connect", fake_connect)
    return c


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> dict[str, Plan]:
    """`apply MANIFESTS` plans this (set `box["plan"]`); the plan text is a stand-in for the real renderer."""
    box: dict[str, Plan] = {"plan": onboarding_plan(["alice", "bob"])}
    monkeypatch.setattr(cli_apply, "_build_plan", lambda paths, conn, catalog: box["plan"])

    def fake_show(plan: Plan, format: str) -> None:
        import sys

        out = sys.stdout if format == "text" else sys.stderr
        out.write(f"PLAN: {len(plan.actions)} actions\n")

    monkeypatch.setattr(cli_apply, "_show", fake_show)
    return box


def save(tmp_path, plan: Plan):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan.to_dict(), indent=2))
    return p


def manifest(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\nusers: []\n")
    return p


# ---------------------------------------------------------------- saved plans


def test_saved_plan_applies_without_asking_and_reports(tmp_path, conn, capsys, monkeypatch):
    monkeypatch.setattr(cli_apply, "_stdin_is_terminal", lambda: False)
    audit = tmp_path / "audit.jsonl"
    rc = main(["apply", str(save(tmp_path, onboarding_plan(["alice", "bob"]))), "--audit-log", str(audit)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert conn.executed == ["alice-loc", "alice-lic", "bob-loc", "bob-lic"]
    assert out.startswith("Apply complete on Contoso: 4 changes, 4 succeeded, 0 failed, 0 skipped")
    assert "setUsageLocation" in out and "2 succeeded  0 failed  0 skipped" in out
    assert "[4/4] bob@contoso.com assignLicenses: succeeded" in err  # plain progress lines, on stderr
    assert "[1/4]" not in out
    recs = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [(r["user"]["upn"], r["action"]["type"], r["outcome"]) for r in recs] == [
        ("alice@contoso.com", "setUsageLocation", "succeeded"),
        ("alice@contoso.com", "assignLicenses", "succeeded"),
        ("bob@contoso.com", "setUsageLocation", "succeeded"),
        ("bob@contoso.com", "assignLicenses", "succeeded"),
    ]
    assert all(r["tenant"]["id"] == TENANT.id and r["requestId"] for r in recs)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c.users.__setitem__(uid("alice"), user("alice", "GB", (E3,))),
            "user alice@contoso.com: usage location changed (none) → GB since the plan was made",
        ),
        (
            lambda c: c.users.__setitem__(uid("bob"), user("bob", None, (E3, DOM))),
            "user bob@contoso.com: directly assigned licenses changed (+MCOPSTN1)",
        ),
        (
            lambda c: setattr(c, "skus", (sku(EV, 10, 9), sku(DOM, 10, 5), sku(E3, 10, 5))),
            "SKU MCOEV: 1 free seat, the plan needs 2",
        ),
        (
            lambda c: setattr(c, "tenant", TenantInfo("22222222-2222-2222-2222-222222222222", "Fabrikam")),
            "but this is tenant Fabrikam (22222222-2222-2222-2222-222222222222)",
        ),
    ],
    ids=["usage-location", "direct-licenses", "seats", "tenant"],
)
def test_stale_saved_plan_is_refused_naming_the_change(tmp_path, conn, capsys, change, expected):
    path = save(tmp_path, onboarding_plan(["alice", "bob"]))
    change(conn)
    audit = tmp_path / "audit.jsonl"
    rc = main(["apply", str(path), "--audit-log", str(audit)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert conn.executed == [] and out == ""
    assert err.startswith("error: the saved plan is stale")
    assert expected in err and "provision plan" in err and "Nothing was changed" in err
    assert "Traceback" not in err
    assert audit.read_text() == ""


def test_saved_plan_over_the_removal_limit_is_refused_before_connecting(tmp_path, conn, capsys):
    path = save(tmp_path, removal_plan(11, max_removals=10))
    rc = main(["apply", str(path)])
    err = capsys.readouterr().err
    assert rc == 1 and conn.connects == 0 and conn.executed == []  # type: ignore[attr-defined]
    assert "removes 11 license assignments" in err and "--allow-removals" in err


def test_allow_removals_lifts_the_limit(tmp_path, conn, capsys):
    plan = removal_plan(11, max_removals=10)
    conn.users.update({uid(f"u{i}"): user(f"u{i}", "US", (EV, DOM)) for i in range(11)})
    rc = main(["apply", str(save(tmp_path, plan)), "--allow-removals"])
    assert rc == 0, capsys.readouterr().err
    assert len(conn.executed) == 11


def test_saved_plan_with_error_diagnostics_never_applies(tmp_path, conn, capsys):
    plan = replace(
        onboarding_plan(["alice"]),
        diagnostics=(Diagnostic("error", "insufficient-seats", "MCOPSTN1: 2 seats short", None, "m.yaml:7"),),
    )
    rc = main(["apply", str(save(tmp_path, plan)), "--allow-removals", "--auto-approve"])
    err = capsys.readouterr().err
    assert rc == 1 and conn.executed == []
    assert "insufficient-seats" in err and "m.yaml:7" in err and "never apply" in err


def test_damaged_or_foreign_plan_file_is_a_plain_error(tmp_path, conn, capsys):
    p = tmp_path / "plan.json"
    p.write_text('{"formatVersion": 1, "actions": []}')
    assert main(["apply", str(p)]) == 1
    err = capsys.readouterr().err
    assert "plan.json: the saved plan is damaged or incomplete" in err and "Traceback" not in err
    p.write_text('{"formatVersion": 99, "tenant": {"id": "x"}, "fingerprint": "f"}')
    assert main(["apply", str(p)]) == 1
    assert "unsupported plan formatVersion 99" in capsys.readouterr().err
    assert conn.executed == []


def test_a_saved_plan_mixed_with_manifests_is_refused(tmp_path, conn, capsys):
    rc = main(["apply", str(save(tmp_path, onboarding_plan(["alice"]))), str(manifest(tmp_path))])
    err = capsys.readouterr().err
    assert rc == 64 and conn.connects == 0  # type: ignore[attr-defined]
    assert "plan.json is a saved plan; apply takes one saved plan, or manifests, not both" in err


# ---------------------------------------------------------------- manifests


def test_no_terminal_and_no_auto_approve_is_refused(tmp_path, conn, planned, capsys, monkeypatch):
    monkeypatch.setattr(cli_apply, "_stdin_is_terminal", lambda: False)
    rc = main(["apply", str(manifest(tmp_path))])
    out, err = capsys.readouterr()
    assert rc == 1 and conn.executed == []
    assert out == "PLAN: 4 actions\n"  # the plan is still shown, on stdout
    assert "refusing to apply 4 changes to Contoso without confirmation" in err
    assert "--auto-approve" in err and "--out PLANFILE" in err and "Nothing was changed" in err


def test_auto_approve_applies_without_a_terminal(tmp_path, conn, planned, capsys, monkeypatch):
    monkeypatch.setattr(cli_apply, "_stdin_is_terminal", lambda: False)
    rc = main(["apply", str(manifest(tmp_path)), "--auto-approve", "--parallelism", "8"])
    out = capsys.readouterr().out
    assert rc == 0 and len(conn.executed) == 4
    assert out.startswith("PLAN: 4 actions\nApply complete on Contoso")


@pytest.mark.parametrize(("answer", "applied"), [("y", True), ("yes", True), ("n", False), ("", False)])
def test_terminal_prompt(tmp_path, conn, planned, capsys, monkeypatch, answer, applied):
    monkeypatch.setattr(cli_apply, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr("builtins.input", lambda: answer)
    rc = main(["apply", str(manifest(tmp_path))])
    err = capsys.readouterr().err
    assert "Apply 4 changes to Contoso? [y/N] " in err
    assert (rc, bool(conn.executed)) == ((0, True) if applied else (1, False))
    if not applied:
        assert "Apply cancelled; nothing was changed." in err


def test_prompt_counts_one_change(tmp_path, conn, planned, capsys, monkeypatch):
    plan = onboarding_plan(["alice"])
    planned["plan"] = replace(plan, actions=plan.actions[:1])
    monkeypatch.setattr(cli_apply, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr("builtins.input", lambda: "N")
    assert main(["apply", str(manifest(tmp_path))]) == 1
    assert "Apply 1 change to Contoso? [y/N]" in capsys.readouterr().err


def test_no_changes_says_so_and_exits_0(tmp_path, conn, planned, capsys, monkeypatch):
    planned["plan"] = Plan(TENANT.id, "Contoso", "f")
    monkeypatch.setattr(cli_apply, "_stdin_is_terminal", lambda: False)
    rc = main(["apply", str(manifest(tmp_path))])
    err = capsys.readouterr().err
    assert rc == 0 and "No changes. Contoso already matches" in err


def test_planned_errors_are_shown_then_refused(tmp_path, conn, planned, capsys):
    planned["plan"] = replace(
        onboarding_plan(["alice"]),
        diagnostics=(Diagnostic("error", "user-not-found", "no such user", "zed@contoso.com", "m.yaml:9"),),
    )
    rc = main(["apply", str(manifest(tmp_path)), "--auto-approve"])
    out, err = capsys.readouterr()
    assert rc == 1 and conn.executed == []
    assert out == "PLAN: 2 actions\n" and "user-not-found" in err and "m.yaml:9 zed@contoso.com" in err


# ---------------------------------------------------------------- results and exit codes


def test_partial_failure_exit_1_names_user_change_graph_answer_and_advice(tmp_path, conn, capsys):
    conn.fail = {"bob-loc": (403, "Authorization_RequestDenied")}
    rc = main(["apply", str(save(tmp_path, onboarding_plan(["alice", "bob"])))])
    out, err = capsys.readouterr()
    assert rc == 1
    assert conn.executed == ["alice-loc", "alice-lic"]  # bob's licenses depended on his usage location
    assert "4 changes, 2 succeeded, 1 failed, 1 skipped" in out
    assert "  - bob@contoso.com: set usage location (none) → US" in out
    assert (
        "Graph: HTTP 403 Authorization_RequestDenied: Authorization_RequestDenied for bob@contoso.com" in out
    )
    assert "request-id: rid-bob-loc" in out
    assert "what to do: Grant the app the application permission User.ReadUpdate.All" in out
    assert "Skipped because a change they depend on failed (1):" in out
    assert "bob@contoso.com: assignLicenses +MCOEV +MCOPSTN1" in out
    assert "error: 1 failed and 1 skipped of 4 changes on Contoso" in err


def test_json_results_on_stdout(tmp_path, conn, capsys):
    conn.fail = {"alice-lic": (400, "Request_BadRequest")}
    rc = main(["apply", str(save(tmp_path, onboarding_plan(["alice"]))), "--format", "json"])
    out = capsys.readouterr().out
    doc = json.loads(out)  # stdout is exactly one JSON document
    assert rc == 1 and doc["ok"] is False
    assert doc["summary"]["byType"] == {
        "assignLicenses": {"failed": 1, "skipped": 0, "succeeded": 0},
        "setUsageLocation": {"failed": 0, "skipped": 0, "succeeded": 1},
    }
    bad = doc["outcomes"][1]
    assert (
        bad["status"] == "failed"
        and bad["requestId"] == "rid-alice-lic"
        and bad["code"] == "Request_BadRequest"
    )
    assert bad["what"] == "assignLicenses +MCOEV +MCOPSTN1" and "provision apply" in bad["advice"]


def test_json_format_keeps_the_plan_text_off_stdout(tmp_path, conn, planned, capsys):
    rc = main(["apply", str(manifest(tmp_path)), "--auto-approve", "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 0 and json.loads(out)["summary"]["succeeded"] == 4
    assert "PLAN: 4 actions" in err


def test_unwritable_audit_log_refuses_before_any_change(tmp_path, conn, capsys):
    rc = main(
        ["apply", str(save(tmp_path, onboarding_plan(["alice"]))), "--audit-log", str(tmp_path / "no/x.log")]
    )
    assert rc == 1 and conn.executed == [] and conn.connects == 0  # type: ignore[attr-defined]
    assert "cannot open the audit log" in capsys.readouterr().err


def test_usage_errors_exit_64(tmp_path, conn, capsys):
    assert main(["apply"]) == 64
    assert main(["apply", "x.yaml", "--parallelism", "0"]) == 64
    assert main(["apply", "x.yaml", "--format", "markdown"]) == 64
