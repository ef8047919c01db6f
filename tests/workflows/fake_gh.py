#!/usr/bin/env python3
"""A fake GitHub CLI for the workflow tests: `gh api` on the few REST routes the steps use.

State (comments, issues) lives in the JSON file $FAKE_GH_STATE; every call is appended to $FAKE_GH_LOG as
{"method", "path", "body"} so tests can assert on exactly what was sent. `--paginate` prints pages of two
items back to back, as the real gh does (`[..][..]`), so the client's page joining is exercised.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

PAGE = 2


def load() -> dict[str, Any]:
    path = os.environ["FAKE_GH_STATE"]
    if not os.path.exists(path):
        return {"comments": [], "issues": [], "next_id": 1000}
    with open(path, encoding="utf-8") as fh:
        return dict(json.load(fh))


def save(state: dict[str, Any]) -> None:
    with open(os.environ["FAKE_GH_STATE"], "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1)


def fail(message: str, code: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


def main(argv: list[str]) -> None:
    if not argv or argv[0] != "api":
        fail(f"fake gh: only `gh api` is supported, got {argv!r}")
    if not os.environ.get("GH_TOKEN"):
        fail("gh: To use GitHub CLI in a GitHub Actions workflow, set the GH_TOKEN environment variable.", 4)
    args = argv[1:]
    paginate = "--paginate" in args
    args = [a for a in args if a != "--paginate"]
    method = "GET"
    if "--method" in args:
        i = args.index("--method")
        method = args[i + 1]
        del args[i : i + 2]
    body: Any = None
    if "--input" in args:
        i = args.index("--input")
        if args[i + 1] != "-":
            fail("fake gh: only --input - is supported")
        del args[i : i + 2]
        body = json.loads(sys.stdin.read())
    if len(args) != 1:
        fail(f"fake gh: unexpected arguments {args!r}")
    path = args[0]
    with open(os.environ["FAKE_GH_LOG"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"method": method, "path": path, "body": body}) + "\n")
    state = load()
    result = route(state, method, path.split("?")[0], body)
    save(state)
    if paginate and isinstance(result, list):
        pages = [result[i : i + PAGE] for i in range(0, len(result), PAGE)] or [[]]
        sys.stdout.write("".join(json.dumps(p) for p in pages))
    else:
        sys.stdout.write(json.dumps(result))


def route(state: dict[str, Any], method: str, path: str, body: Any) -> Any:
    m = re.fullmatch(r"repos/([^/]+/[^/]+)/issues/(\d+)/comments", path)
    if m and method == "GET":
        return [c for c in state["comments"] if c["issue"] == int(m.group(2))]
    if m and method == "POST":
        state["next_id"] += 1
        comment = {
            "id": state["next_id"],
            "issue": int(m.group(2)),
            "body": body["body"],
            "html_url": f"https://github.com/{m.group(1)}/issues/{m.group(2)}#issuecomment-{state['next_id']}",
        }
        state["comments"].append(comment)
        return comment
    m = re.fullmatch(r"repos/([^/]+/[^/]+)/issues/comments/(\d+)", path)
    if m and method == "PATCH":
        for c in state["comments"]:
            if c["id"] == int(m.group(2)):
                c["body"] = body["body"]
                return c
        fail(f"gh: Not Found (HTTP 404) comment {m.group(2)}")
    m = re.fullmatch(r"repos/([^/]+/[^/]+)/issues", path)
    if m and method == "GET":
        return [i for i in state["issues"] if i["state"] == "open"]
    if m and method == "POST":
        number = 1 + max((i["number"] for i in state["issues"]), default=0)
        issue = {
            "number": number,
            "title": body["title"],
            "body": body["body"],
            "labels": body.get("labels", []),
            "state": "open",
        }
        state["issues"].append(issue)
        return issue
    m = re.fullmatch(r"repos/([^/]+/[^/]+)/issues/(\d+)", path)
    if m and method == "PATCH":
        for i in state["issues"]:
            if i["number"] == int(m.group(2)):
                i.update(body)
                return i
        fail(f"gh: Not Found (HTTP 404) issue {m.group(2)}")
    fail(f"gh: fake has no route {method} {path}")
    return None


if __name__ == "__main__":
    main(sys.argv[1:])
