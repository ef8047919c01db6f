"""Publishing reports on GitHub: one sticky PR comment per manifests folder, one drift issue. Does I/O via `gh`.

Both are found again by a hidden marker in their body, so re-runs update instead of piling up duplicates.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from provisioner.gitops import actions_env as gha
from provisioner.gitops.body import compose, marker
from provisioner.gitops.github import GitHub

_PLAN_STATUS = {
    "0": "No changes: the tenant matches the manifests.",
    "1": "**Errors**: this change cannot be applied as it is.",
    "2": "Changes: merging applies the plan below.",
}


def _footer() -> str:
    url, sha = gha.run_url(), os.environ.get("GITHUB_SHA", "")[:7]
    parts = [f"commit {sha}" if sha else "", f"[run]({url})" if url else ""]
    detail = ", ".join(p for p in parts if p)
    return (
        f"<sub>Updated by `provision` ({detail}).</sub>" if detail else "<sub>Updated by `provision`.</sub>"
    )


def plan_comment(gh: GitHub, pr: int, markdown_file: Path, key: str, exit_code: str = "") -> str:
    """Create or update the one plan comment for `key` on PR `pr`. Returns "created" | "updated" | "unchanged"."""
    status = _PLAN_STATUS.get(exit_code.strip(), "")
    report = (
        markdown_file.read_text(encoding="utf-8") if markdown_file.is_file() else "_No report was produced._"
    )
    body = compose(
        "plan",
        key,
        f"provision plan: `{key}`",
        (status + "\n\n" if status else "") + report,
        _footer(),
        full_report="the `plan` artifact of this run",
    )
    tag = marker("plan", key)
    mine = [c for c in gh.comments(pr) if tag in (c.get("body") or "")]
    if not mine:
        created = gh.create_comment(pr, body)
        print(f"plan comment created: {created.get('html_url', created.get('id'))}", file=sys.stderr)
        return "created"
    first = min(mine, key=lambda c: int(c["id"]))
    if first.get("body") == body:
        print(f"plan comment {first['id']} is up to date.", file=sys.stderr)
        return "unchanged"
    gh.update_comment(int(first["id"]), body)
    print(f"plan comment {first['id']} updated.", file=sys.stderr)
    return "updated"


def drift_issue(
    gh: GitHub, exit_code: str, markdown_file: Path, key: str, title: str, labels: list[str]
) -> int:
    """Exit 2: open or update the drift issue. Exit 0: close it. Anything else: fail loudly, touch nothing."""
    code = exit_code.strip()
    tag = marker("drift", key)
    if code not in ("0", "2"):
        report = markdown_file.read_text(encoding="utf-8").strip() if markdown_file.is_file() else ""
        gha.error(
            f"the drift check could not run (exit {code or 'missing'}); the drift issue was left as it is."
            + (f"\n{report}" if report else "")
        )
        return 1
    issues = sorted(
        (i for i in gh.open_issues() if tag in (i.get("body") or "")), key=lambda i: int(i["number"])
    )
    if code == "0":
        for issue in issues:
            note = "No drift any more: the tenant matches the manifests"
            url = gha.run_url()
            gh.create_comment(int(issue["number"]), f"{note}{f' ([run]({url}))' if url else ''}. Closing.")
            gh.update_issue(int(issue["number"]), state="closed", state_reason="completed")
            print(f"drift issue #{issue['number']} closed.", file=sys.stderr)
        if not issues:
            print("no drift, and no drift issue open.", file=sys.stderr)
        return 0
    report = markdown_file.read_text(encoding="utf-8")
    intro = (
        "The tenant no longer matches the manifests: someone changed licenses outside this repository.\n"
        "Either change the manifests to accept the change (a PR), or run the apply workflow to undo it.\n\n"
    )
    body = compose(
        "drift", key, title, intro + report, _footer(), full_report="the `drift` artifact of this run"
    )
    if not issues:
        created = gh.create_issue(title, body, labels)
        print(f"drift issue #{created.get('number')} opened.", file=sys.stderr)
        return 0
    issue = issues[0]
    if issue.get("body") != body:
        gh.update_issue(int(issue["number"]), body=body)
        print(f"drift issue #{issue['number']} updated.", file=sys.stderr)
    else:
        print(f"drift issue #{issue['number']} is up to date.", file=sys.stderr)
    return 0
