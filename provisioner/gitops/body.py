"""Bodies of the sticky PR comment and the drift issue: a hidden marker, the report, and a size cap. Pure.

GitHub rejects comment and issue bodies over 65,536 characters. Reports are cut at a line boundary well
below that, open code fences and <details> blocks are closed, and a footer points at the full report.
"""

from __future__ import annotations

import re

GITHUB_BODY_LIMIT = 65_536
# Headroom for the marker, header and footer, and for GitHub counting some characters as more than one.
DEFAULT_BUDGET = 60_000


def marker(kind: str, key: str) -> str:
    """The hidden HTML comment that identifies our one comment (or issue) for `kind` and `key`."""
    safe = re.sub(r"[^A-Za-z0-9_./:@-]", "_", key) or "default"
    return f"<!-- provisioner:{kind}:{safe} -->"


def truncate(markdown: str, budget: int = DEFAULT_BUDGET, full_report: str | None = None) -> str:
    """`markdown` cut to at most `budget` characters at a line boundary, still well-formed, with a note."""
    if len(markdown) <= budget:
        return markdown
    lines = markdown.splitlines()
    where = full_report or "the workflow run's artifacts"
    kept: list[str] = []
    size = 0
    reserve = 400  # for the closing tags and the note
    for line in lines:
        if size + len(line) + 1 > budget - reserve:
            break
        kept.append(line)
        size += len(line) + 1
    dropped = len(lines) - len(kept)
    closing: list[str] = []
    if sum(1 for line in kept if line.lstrip().startswith("```")) % 2:
        closing.append("```")
    opened = sum(line.count("<details") for line in kept) - sum(line.count("</details>") for line in kept)
    closing += ["</details>"] * max(0, opened)
    note = f"\n> **Truncated**: {dropped} more line{'s' if dropped != 1 else ''} not shown (GitHub's size limit). "
    note += f"The full report is in {where}."
    return "\n".join([*kept, *closing]) + "\n" + note + "\n"


def compose(
    kind: str, key: str, title: str, markdown: str, footer: str = "", full_report: str | None = None
) -> str:
    """Marker + title + (truncated) report + footer, always under GitHub's limit."""
    head = f"{marker(kind, key)}\n### {title}\n\n"
    tail = f"\n\n{footer}\n" if footer else "\n"
    budget = min(DEFAULT_BUDGET, GITHUB_BODY_LIMIT - len(head) - len(tail) - 100)
    body = head + truncate(markdown.strip("\n"), budget, full_report).rstrip("\n") + tail
    if len(body) >= GITHUB_BODY_LIMIT:  # only a huge title or footer could do this
        raise ValueError(f"{kind} body of {len(body)} characters exceeds GitHub's limit")
    return body
