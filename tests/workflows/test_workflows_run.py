"""The user-facing workflows run, step by step, against the emulator with a fake `gh`: the docs/gitops.md flow.

export (fixture) -> PR: plan comment created, then updated (never duplicated), check fails on errors ->
merge: plan + apply behind the environment, audit log, stale plan refused -> drift: issue opened on 2,
updated, closed on 0, run fails loudly on 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provisioner.emulator.demo import SKUS

from .conftest import GitOps

PR = {"pull_request": {"number": 7}, "number": 7}
CAROL_DR = "  - upn: carol.us@contoso.com\n    phoneSystem: true\n    callingPlan: none"
CAROL_DOMESTIC = "  - upn: carol.us@contoso.com\n    callingPlan: domestic"
CAROL_INTL = "  - upn: carol.us@contoso.com\n    callingPlan: international"
DOM_SKU = SKUS["MCOPSTN1"][0]


def licenses_of(state: dict[str, Any], upn: str) -> set[str]:
    user = next(u for u in state["users"] if u["userPrincipalName"] == upn)
    return {lic["skuId"] for lic in user["assignedLicenses"]}


def test_exported_manifests_plan_clean_and_the_pr_gets_one_comment(gitops: GitOps) -> None:
    # A PR that changes nothing still gets a comment saying so, and the check passes.
    jobs = gitops.run("plan.yml", "pull_request", PR)
    job = jobs["plan"]
    assert job.status == "success", job.log
    assert job.step("Validate and plan").outputs["exitcode"] == "0"
    assert gitops.writes() == [("POST", "repos/acme/voice-manifests/issues/7/comments")]
    [comment] = gitops.github()["comments"]
    assert comment["body"].startswith("<!-- provisioner:plan:manifests -->\n### provision plan: `manifests`")
    assert "No changes: the tenant matches the manifests." in comment["body"]
    plan = json.loads((gitops.last_artifacts() / "plan" / "plan.json").read_text())
    assert plan["hasChanges"] is False and plan["formatVersion"] == 1


def test_pr_plan_comment_is_created_then_updated_not_duplicated(gitops: GitOps) -> None:
    gitops.edit_manifest(CAROL_DR, CAROL_DOMESTIC)
    first = gitops.run("plan.yml", "pull_request", PR)["plan"]
    assert first.status == "success", first.log
    assert first.step("Validate and plan").outputs["has-changes"] == "true"
    assert first.step("Fail on errors").outcome == "success"
    [comment] = gitops.github()["comments"]
    assert "Changes: merging applies the plan below." in comment["body"]
    assert "+ carol.us@contoso.com\n+     MCOPSTN1" in comment["body"]
    plan = json.loads((gitops.last_artifacts() / "plan" / "plan.json").read_text())
    assert plan["hasChanges"] is True
    assert [(a["user"]["upn"], [x["skuPartNumber"] for x in a["add"]]) for a in plan["actions"]] == [
        ("carol.us@contoso.com", ["MCOPSTN1"])
    ]

    # A second push to the PR edits the same comment.
    gitops.clear_calls()
    gitops.edit_manifest(CAROL_DOMESTIC, CAROL_INTL)
    second = gitops.run("plan.yml", "pull_request", PR)["plan"]
    assert second.status == "success", second.log
    assert gitops.writes() == [("PATCH", f"repos/acme/voice-manifests/issues/comments/{comment['id']}")]
    [updated] = gitops.github()["comments"]
    assert updated["id"] == comment["id"]
    assert "+     MCOPSTN2" in updated["body"] and "+     MCOPSTN1" not in updated["body"]  # the diff lines

    # Nothing new: no write at all.
    gitops.clear_calls()
    assert gitops.run("plan.yml", "pull_request", PR)["plan"].status == "success"
    assert gitops.writes() == []
    # the tenant was only read
    assert licenses_of(gitops.tenant_state(), "carol.us@contoso.com") == {
        SKUS["ENTERPRISEPACK"][0],
        SKUS["MCOEV"][0],
    }


def test_other_comments_and_other_prs_are_left_alone(gitops: GitOps) -> None:
    gitops.seed_github(
        {
            "comments": [
                {"id": 5, "issue": 7, "body": "LGTM", "html_url": "x"},
                {
                    "id": 6,
                    "issue": 8,
                    "body": "<!-- provisioner:plan:manifests -->\nother PR",
                    "html_url": "y",
                },
                {"id": 9, "issue": 7, "body": "another", "html_url": "z"},
            ],
            "issues": [],
            "next_id": 100,
        }
    )
    assert gitops.run("plan.yml", "pull_request", PR)["plan"].status == "success"
    # fake gh pages two by two: the client must join pages to see that no comment on #7 is ours
    assert gitops.writes() == [("POST", "repos/acme/voice-manifests/issues/7/comments")]
    bodies = {c["id"]: c["body"] for c in gitops.github()["comments"]}
    assert bodies[5] == "LGTM" and bodies[6].endswith("other PR") and bodies[9] == "another"


def test_pr_check_fails_on_invalid_manifests_after_posting_the_errors(gitops: GitOps) -> None:
    gitops.edit_manifest(CAROL_DR, "  - upn: carol.us@contoso.com\n    callingPlan: domestik")
    job = gitops.run("plan.yml", "pull_request", PR)["plan"]
    assert job.status == "failure"
    assert job.step("Validate and plan").outcome == "success"  # fail-on-error: "false": report first
    assert job.step("Validate and plan").outputs["exitcode"] == "1"
    assert job.step("Post or update the plan comment").outcome == "success"
    assert job.step("Upload the JSON plan").outcome == "skipped"  # no plan was made
    assert job.step("Fail on errors").outcome == "failure"
    assert "::error::provision reported errors" in job.step("Fail on errors").stderr
    [comment] = gitops.github()["comments"]
    assert "**Errors**: this change cannot be applied as it is." in comment["body"]
    assert "The manifests are invalid" in comment["body"]
    assert "manifests/tenant.yaml:" in comment["body"] and "domestik" in comment["body"]


def test_merge_applies_the_plan_with_an_audit_log(gitops: GitOps) -> None:
    gitops.edit_manifest(CAROL_DR, CAROL_DOMESTIC)
    jobs = gitops.run("apply.yml", "push")
    assert jobs["plan"].status == "success", jobs["plan"].log
    assert jobs["plan"].outputs == {"has-changes": "true"}
    assert jobs["apply"].status == "success", jobs["apply"].log
    assert jobs["apply"].step("Apply the saved plan (refused if stale)").outputs["exitcode"] == "0"
    assert DOM_SKU in licenses_of(gitops.tenant_state(), "carol.us@contoso.com")
    audit = (gitops.last_artifacts() / "audit-log" / "audit.jsonl").read_text().splitlines()
    assert len(audit) == 1 and "carol.us@contoso.com" in audit[0]

    # After the apply, the next push has nothing to do: the apply job does not even start.
    again = gitops.run("apply.yml", "push")
    assert again["plan"].outputs == {"has-changes": "false"}
    assert again["apply"].status == "skipped"
    assert gitops.writes() == []  # apply never talks to GitHub


def test_apply_refuses_a_plan_made_stale_while_waiting_for_approval(gitops: GitOps) -> None:
    gitops.edit_manifest(CAROL_DR, CAROL_DOMESTIC)

    before_apply: dict[str, Any] = {}

    def admin_changes_carol(job: str) -> None:
        """While the environment waits for a reviewer, an admin gives carol a Calling Plan by hand."""
        if job != "apply":
            return

        def give(state: dict[str, Any]) -> None:
            user = next(u for u in state["users"] if u["userPrincipalName"] == "carol.us@contoso.com")
            user["assignedLicenses"].append({"skuId": SKUS["MCOPSTN2"][0], "disabledPlans": []})

        gitops.edit_tenant(give)
        before_apply.update(gitops.tenant_state())

    jobs = gitops.run("apply.yml", "push", before_job=admin_changes_carol)
    assert jobs["apply"].status == "failure"
    step = jobs["apply"].step("Apply the saved plan (refused if stale)")
    assert step.outputs["exitcode"] == "1", step.stderr
    assert "stale" in step.stderr and "carol.us@contoso.com" in step.stderr
    assert gitops.tenant_state() == before_apply  # nothing was changed
    assert DOM_SKU not in licenses_of(gitops.tenant_state(), "carol.us@contoso.com")


def _remove_bobs_calling_plan(state: dict[str, Any]) -> None:
    user = next(u for u in state["users"] if u["userPrincipalName"] == "bob.us@contoso.com")
    user["assignedLicenses"] = [lic for lic in user["assignedLicenses"] if lic["skuId"] != DOM_SKU]


@pytest.mark.slow  # five workflow runs (~10 s): the whole drift lifecycle
def test_drift_issue_opened_updated_and_closed(gitops: GitOps) -> None:
    gitops.seed_github(
        {
            "comments": [],
            "issues": [  # a pull request carrying our marker must never be taken for the drift issue
                {
                    "number": 3,
                    "title": "PR",
                    "body": "<!-- provisioner:drift:manifests -->",
                    "state": "open",
                    "labels": [],
                    "pull_request": {"url": "x"},
                },
            ],
            "next_id": 100,
        }
    )
    # No drift, no issue: only a read.
    job = gitops.run("drift.yml", "schedule")["drift"]
    assert job.status == "success", job.log
    assert gitops.writes() == []

    # Someone removes bob's Calling Plan in the admin center: exit 2, one issue is opened.
    gitops.edit_tenant(_remove_bobs_calling_plan)
    job = gitops.run("drift.yml", "schedule")["drift"]
    assert job.status == "success", job.log
    assert job.step("Plan against the tenant").outputs["exitcode"] == "2"
    assert gitops.writes() == [("POST", "repos/acme/voice-manifests/issues")]
    issue = next(i for i in gitops.github()["issues"] if i["number"] != 3)
    assert issue["labels"] == ["drift"] and issue["state"] == "open"
    assert issue["title"] == "Drift: the tenant's voice licenses differ from the manifests"
    assert issue["body"].startswith("<!-- provisioner:drift:manifests -->")
    assert "bob.us@contoso.com" in issue["body"] and "MCOPSTN1" in issue["body"]
    assert (gitops.last_artifacts() / "drift" / "plan.md").is_file()

    # Still drifting the next day: the same issue is updated, not a second one.
    gitops.clear_calls()
    gitops.edit_tenant(lambda s: _remove_license(s, "heidi.us@contoso.com", SKUS["MCOPSTN2"][0]))
    assert gitops.run("drift.yml", "workflow_dispatch")["drift"].status == "success"
    assert gitops.writes() == [("PATCH", f"repos/acme/voice-manifests/issues/{issue['number']}")]
    issues = [i for i in gitops.github()["issues"] if "pull_request" not in i]
    assert len(issues) == 1 and "heidi.us@contoso.com" in issues[0]["body"]

    # Someone runs apply: the tenant matches again, the issue is closed with a comment.
    gitops.clear_calls()
    assert gitops.run("apply.yml", "workflow_dispatch")["apply"].status == "success"
    assert gitops.run("drift.yml", "schedule")["drift"].status == "success"
    number = issue["number"]
    assert gitops.writes() == [
        ("POST", f"repos/acme/voice-manifests/issues/{number}/comments"),
        ("PATCH", f"repos/acme/voice-manifests/issues/{number}"),
    ]
    closed = next(i for i in gitops.github()["issues"] if i["number"] == number)
    assert closed["state"] == "closed" and closed["state_reason"] == "completed"
    note = next(c for c in gitops.github()["comments"] if c["issue"] == number)
    assert note["body"].startswith("No drift any more")
    assert next(i for i in gitops.github()["issues"] if i["number"] == 3)["state"] == "open"


def _remove_license(state: dict[str, Any], upn: str, sku_id: str) -> None:
    user = next(u for u in state["users"] if u["userPrincipalName"] == upn)
    user["assignedLicenses"] = [lic for lic in user["assignedLicenses"] if lic["skuId"] != sku_id]


def test_drift_run_fails_loudly_on_errors_and_leaves_the_issue(gitops: GitOps) -> None:
    gitops.edit_tenant(_remove_bobs_calling_plan)
    assert gitops.run("drift.yml", "schedule")["drift"].status == "success"
    before = gitops.github()
    gitops.clear_calls()
    gitops.manifest.write_text(
        gitops.manifest.read_text().replace("apiVersion: provisioner/v1", "apiVersion: v0")
    )
    job = gitops.run("drift.yml", "schedule")["drift"]
    assert job.status == "failure"
    step = job.step("Open, update or close the drift issue")
    assert step.outcome == "failure"
    assert (
        "::error::the drift check could not run (exit 1); the drift issue was left as it is." in step.stderr
    )
    assert "apiVersion" in step.stderr  # the reason is in the run log
    assert gitops.writes() == [] and gitops.github() == before


def test_composite_action_export_and_validate(gitops: GitOps, tmp_path: Path) -> None:
    """The action on its own (`uses: your-org/provisioner@v1`): export into a folder, then validate it."""
    from .gha_runner import Runner

    runner = Runner(
        workspace=gitops.workspace,
        event_name="workflow_dispatch",
        event={},
        vars={},
        base_env=gitops.base_env,
        runner_temp=gitops.runner_temp,
        artifacts=tmp_path / "art",
    )
    ctx: dict[str, Any] = {
        "github": runner._github(),
        "vars": {},
        "secrets": {},
        "env": {},
        "steps": {},
        "needs": {},
        "runner": {},
        "matrix": {},
    }
    exported = runner.run_action(
        "export",
        {
            "command": "export",
            "manifests": "by-country",
            "tenant": f"emulator:{gitops.tenant}",
            "args": "--split-by country",
        },
        ctx,
        {},
        "t1",
    )
    assert exported.outcome == "success", exported.stderr
    assert exported.outputs["exitcode"] == "0"
    assert sorted(p.name for p in (gitops.workspace / "by-country").iterdir())[:2] == ["ca.yaml", "de.yaml"]
    checked = runner.run_action("validate", {"command": "validate", "manifests": "by-country"}, ctx, {}, "t2")
    assert checked.outcome == "success" and checked.outputs["exitcode"] == "0"
    assert "ok: 21 users in 7 files" in checked.stderr
    bad = runner.run_action("bad", {"command": "destroy"}, ctx, {}, "t3")
    assert bad.outcome == "failure" and "unknown command 'destroy'" in bad.stderr


def test_pr_check_fails_on_error_diagnostics_and_the_comment_shows_them(gitops: GitOps) -> None:
    def two_intl_seats(state: dict[str, Any]) -> None:  # both already used (heidi.us, olivia.ca)
        sku = next(s for s in state["subscribedSkus"] if s["skuPartNumber"] == "MCOPSTN2")
        sku["prepaidUnits"]["enabled"] = 2

    gitops.edit_tenant(two_intl_seats)
    gitops.edit_manifest(CAROL_DR, CAROL_INTL)
    job = gitops.run("plan.yml", "pull_request", PR)["plan"]
    assert job.status == "failure"
    assert job.step("Validate and plan").outputs["exitcode"] == "1"
    assert job.step("Upload the JSON plan").outcome == "success"  # the plan with its diagnostics is kept
    assert job.step("Fail on errors").outcome == "failure"
    [comment] = gitops.github()["comments"]
    assert "**Errors**: this change cannot be applied as it is." in comment["body"]
    assert "insufficient-seats" in comment["body"] and "MCOPSTN2" in comment["body"]
    plan = json.loads((gitops.last_artifacts() / "plan" / "plan.json").read_text())
    assert [d["code"] for d in plan["diagnostics"] if d["severity"] == "error"] == ["insufficient-seats"]
