"""The GitHub Actions runtime seen from a step: outputs, step summary, run URL, annotations. Does file I/O.

Outside Actions (no GITHUB_OUTPUT, ...) every function degrades to printing, so steps run anywhere.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

STEP_SUMMARY_LIMIT = 1_000_000  # GitHub caps a step summary at 1 MiB


def set_output(name: str, value: str) -> None:
    """Append `name=value` to $GITHUB_OUTPUT (heredoc form, so any value is safe)."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        print(f"output {name}={value}", file=sys.stderr)
        return
    delim = f"EOF_{uuid.uuid4().hex}"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{name}<<{delim}\n{value}\n{delim}\n")


def add_summary(markdown: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown[:STEP_SUMMARY_LIMIT] + "\n")


def error(message: str) -> None:
    """An error annotation on the run (one line per message line), and the plain text on stderr."""
    for line in message.splitlines() or [message]:
        print(f"::error::{line}" if os.environ.get("GITHUB_ACTIONS") else f"error: {line}", file=sys.stderr)


def run_url() -> str | None:
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    repo, run_id = os.environ.get("GITHUB_REPOSITORY"), os.environ.get("GITHUB_RUN_ID")
    return f"{server}/{repo}/actions/runs/{run_id}" if repo and run_id else None


def pull_request_number() -> int | None:
    """The PR number from env PR_NUMBER, else from the event payload ($GITHUB_EVENT_PATH)."""
    value = os.environ.get("PR_NUMBER", "").strip()
    if value.isdigit():
        return int(value)
    event = os.environ.get("GITHUB_EVENT_PATH")
    if event and Path(event).is_file():
        payload = json.loads(Path(event).read_text(encoding="utf-8"))
        number = (payload.get("pull_request") or {}).get("number") or payload.get("number")
        if isinstance(number, int):
            return number
    return None
