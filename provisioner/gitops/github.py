"""A small client for the GitHub REST calls the workflows make, through the `gh` CLI. Does I/O (subprocess).

`gh` is on every GitHub-hosted runner and authenticates with env `GH_TOKEN`; going through it keeps tokens
out of this code entirely. Tests put a fake `gh` on PATH that records the calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from provisioner.errors import ProvisionerError


class GitHubError(ProvisionerError):
    """A `gh api` call that failed (the message carries gh's own error line, never the token)."""


def parse_concatenated_json(text: str) -> list[Any]:
    """`gh api --paginate` prints one JSON array per page back to back (`[...][...]`): join them."""
    decoder = json.JSONDecoder()
    items: list[Any] = []
    pos, end = 0, len(text)
    while pos < end:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            break
        value, pos = decoder.raw_decode(text, pos)
        if isinstance(value, list):
            items.extend(value)
        else:
            items.append(value)
    return items


class GitHub:
    """REST calls on one repository (`owner/name`) through `gh api`."""

    def __init__(self, repo: str, gh: str = "gh") -> None:
        if not repo or "/" not in repo:
            raise GitHubError(
                f"no repository to talk to (got {repo!r})",
                hint="Set GITHUB_REPOSITORY=owner/name (GitHub Actions sets it) or pass --repo.",
            )
        self.repo = repo
        self.gh = gh

    def _api(self, method: str, path: str, body: dict[str, Any] | None = None, paginate: bool = False) -> Any:
        exe = shutil.which(self.gh)
        if exe is None:
            raise GitHubError(
                "the GitHub CLI `gh` is not on PATH", hint="GitHub-hosted runners have it; install it."
            )
        argv = [exe, "api", "--method", method, path]
        if paginate:
            argv.insert(2, "--paginate")
        if body is not None:
            argv += ["--input", "-"]
        proc = subprocess.run(
            argv,
            input=json.dumps(body) if body is not None else None,
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            check=False,
        )
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise GitHubError(
                f"GitHub API {method} {path} failed: {detail[-1] if detail else f'exit {proc.returncode}'}",
                hint="Check the workflow's `permissions:` (pull-requests/issues: write) and that GH_TOKEN is set.",
            )
        out = proc.stdout.strip()
        if not out:
            return None
        return parse_concatenated_json(out) if paginate else json.loads(out)

    # -- issue and pull request comments ------------------------------------------------------------

    def comments(self, number: int) -> list[dict[str, Any]]:
        return list(
            self._api("GET", f"repos/{self.repo}/issues/{number}/comments?per_page=100", paginate=True) or []
        )

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        return dict(self._api("POST", f"repos/{self.repo}/issues/{number}/comments", {"body": body}))

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        return dict(self._api("PATCH", f"repos/{self.repo}/issues/comments/{comment_id}", {"body": body}))

    # -- issues -------------------------------------------------------------------------------------

    def open_issues(self) -> list[dict[str, Any]]:
        """Open issues only (the issues endpoint also lists pull requests: those are dropped)."""
        items = self._api("GET", f"repos/{self.repo}/issues?state=open&per_page=100", paginate=True) or []
        return [i for i in items if "pull_request" not in i]

    def create_issue(self, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        return dict(
            self._api("POST", f"repos/{self.repo}/issues", {"title": title, "body": body, "labels": labels})
        )

    def update_issue(self, number: int, **fields: Any) -> dict[str, Any]:
        return dict(self._api("PATCH", f"repos/{self.repo}/issues/{number}", fields))
