"""The workflow step helper on its own: body size cap, markers, page joining, exit codes, gh failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.gitops.__main__ import main
from provisioner.gitops.body import GITHUB_BODY_LIMIT, compose, marker, truncate
from provisioner.gitops.github import parse_concatenated_json

from .conftest import GitOps


def big_report(rows: int) -> str:
    lines = ["## Teams licensing plan", "", "<details><summary>Changes by user</summary>", "", "```diff"]
    lines += [f"+ user{i:06d}@contoso.com\n+     MCOPSTN1  (a{i})" for i in range(rows)]
    lines += ["```", "", "</details>", "", "### Seats"]
    return "\n".join(lines)


def test_a_huge_report_is_cut_under_githubs_limit_and_stays_well_formed() -> None:
    report = big_report(20_000)
    assert len(report) > 3 * GITHUB_BODY_LIMIT
    body = compose(
        "plan", "manifests", "provision plan", report, "<sub>footer</sub>", full_report="the artifact"
    )
    assert len(body) < GITHUB_BODY_LIMIT
    assert body.startswith(
        "<!-- provisioner:plan:manifests -->\n### provision plan\n\n## Teams licensing plan"
    )
    assert body.count("```") % 2 == 0  # the open diff fence was closed
    assert body.count("<details>") == body.count("</details>") == 1
    assert "> **Truncated**: " in body and "The full report is in the artifact." in body
    assert body.rstrip().endswith("<sub>footer</sub>")
    kept = body.count("@contoso.com")
    assert 1_000 < kept < 20_000  # cut at a line boundary, most of the budget used


def test_small_reports_are_untouched() -> None:
    assert truncate("a\nb\n") == "a\nb\n"
    assert compose("drift", "m", "T", "hello") == "<!-- provisioner:drift:m -->\n### T\n\nhello\n"


def test_markers_are_per_key_and_safe() -> None:
    assert marker("plan", "manifests/prod") == "<!-- provisioner:plan:manifests/prod -->"
    assert marker("plan", "a b-->c") == "<!-- provisioner:plan:a_b--_c -->"
    assert marker("plan", "") == "<!-- provisioner:plan:default -->"


def test_paginated_output_is_joined() -> None:
    assert parse_concatenated_json('[{"id": 1}, {"id": 2}][{"id": 3}]\n[]') == [
        {"id": 1},
        {"id": 2},
        {"id": 3},
    ]
    assert parse_concatenated_json("") == []


@pytest.mark.parametrize(("code", "expected"), [("0", 0), ("2", 0), ("1", 1), ("", 1), ("64", 1)])
def test_check_fails_only_on_errors(code: str, expected: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--exit-code", code]) == expected
    err = capsys.readouterr().err
    if code == "1":
        assert "provision reported errors" in err
    if code in ("", "64"):
        assert "the plan step did not report an exit code" in err


def test_usage_errors_exit_64_never_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comment"]) == 64  # --markdown missing
    assert main(["no-such-step"]) == 64
    assert "--markdown" in capsys.readouterr().err


def _step(gitops: GitOps, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioner.gitops", *args],
        cwd=gitops.workspace,
        env={
            **gitops.base_env,
            "GITHUB_REPOSITORY": "acme/voice-manifests",
            "GITHUB_ACTIONS": "true",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_huge_plan_comment_through_gh_is_under_the_limit(gitops: GitOps, tmp_path: Path) -> None:
    report = tmp_path / "plan.md"
    report.write_text(big_report(20_000))
    proc = _step(
        gitops, "comment", "--markdown", str(report), "--pr", "12", env={"GH_TOKEN": "t", "EXIT_CODE": "2"}
    )
    assert proc.returncode == 0, proc.stderr
    [call] = [c for c in gitops.calls() if c["method"] == "POST"]
    assert call["path"] == "repos/acme/voice-manifests/issues/12/comments"
    assert len(call["body"]["body"]) < GITHUB_BODY_LIMIT and "**Truncated**" in call["body"]["body"]


def test_gh_failures_are_one_plain_error_line(gitops: GitOps, tmp_path: Path) -> None:
    report = tmp_path / "plan.md"
    report.write_text("x")
    proc = _step(gitops, "comment", "--markdown", str(report), "--pr", "3", env={"GH_TOKEN": ""})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert (
        "::error::GitHub API GET repos/acme/voice-manifests/issues/3/comments?per_page=100 failed: gh: To use "
        in proc.stderr
    )
    assert "permissions:" in proc.stderr  # says what to do
    assert gitops.writes() == []


def test_comment_needs_a_pull_request(gitops: GitOps, tmp_path: Path) -> None:
    report = tmp_path / "plan.md"
    report.write_text("x")
    proc = _step(gitops, "comment", "--markdown", str(report), env={"GH_TOKEN": "t"})
    assert proc.returncode == 1 and "no pull request number" in proc.stderr
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 44}}))
    proc = _step(
        gitops, "comment", "--markdown", str(report), env={"GH_TOKEN": "t", "GITHUB_EVENT_PATH": str(event)}
    )
    assert proc.returncode == 0, proc.stderr
    assert gitops.writes() == [("POST", "repos/acme/voice-manifests/issues/44/comments")]


@pytest.mark.slow
def test_action_install_step_really_installs_the_tool(tmp_path: Path) -> None:
    """The action's install step for real: a fresh venv, `pip install` of this checkout, `provision` on PATH.

    PYTHONPATH points pip at this environment's site-packages, so the dependencies count as present and only
    the project itself is built and installed (downloading msgraph-sdk & co. would take minutes).
    """
    import sysconfig

    import yaml

    from .gha_runner import REPO, Runner

    runner_temp = tmp_path / "rt"
    runner_temp.mkdir()
    runner = Runner(
        workspace=tmp_path,
        event_name="push",
        event={},
        vars={},
        # the real HOME, so pip's download cache makes re-runs fast
        base_env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path))},
        runner_temp=runner_temp,
        artifacts=tmp_path / "a",
    )
    action = yaml.safe_load((REPO / "action.yml").read_text())
    install = action["runs"]["steps"][0]
    assert install["name"] == "Install provision"
    ctx = {
        "github": {**runner._github(), "action_path": str(REPO)},
        "inputs": {"python": sys.executable},
        "env": {},
        "vars": {},
        "secrets": {},
        "steps": {},
        "needs": {},
        "runner": {},
        "matrix": {},
    }
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = runner.run_step(install, ctx, env, "success", "install")
    assert result.outcome == "success", result.stderr[-3000:]
    venv_bin = runner_temp / "provisioner-venv" / "bin"
    assert runner.extra_path == [str(venv_bin)]
    installed = subprocess.run(
        [str(venv_bin / "python"), "-m", "pip", "show", "-f", "provisioner"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert installed.returncode == 0 and "provisioner/gitops/__main__.py" in installed.stdout, (
        installed.stderr
    )
    assert (venv_bin / "provision").is_file()
    # a second use of the action in the same job skips the install
    again = runner.run_step(install, ctx, env, "success", "install-2")
    assert again.outcome == "success" and again.stderr == ""
