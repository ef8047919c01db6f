"""Apply results for people and pipelines: the text summary, the JSON document, and advice per failure. Pure.

The summary counts outcomes per action type; every failure gets its own block naming the user, what was
attempted, Graph's status, code, message and request-id, and what to do next.
"""

from __future__ import annotations

import json
from typing import Any

from provisioner.apply.execute import STATUSES, ActionResult, ApplyResult

_RERUN = (
    "Then run `provision apply` again: it plans from the tenant as it is now, so it only does what is left."
)


def advice(r: ActionResult) -> str:
    """What to do about one failed action, from Graph's answer (status first, then the message's words)."""
    status = r.http_status
    text = f"{r.code or ''} {r.message or ''}".lower()
    if r.action.type == "setUsageLocation" and status == 400:
        return (
            f"Check usageLocation for {r.action.upn} in the manifest: Graph takes a two-letter ISO 3166 country "
            f"code. {_RERUN}"
        )
    if r.action.type == "assignLicenses" and "usage location" in text:
        return f"Set usageLocation for {r.action.upn} in the manifest (or the tenant). {_RERUN}"
    if "seat" in text or "insufficient" in text or "countviolation" in text or "available" in text:
        return f"Buy more seats or free some (see the plan's seats table). {_RERUN}"
    if status == 401:
        return (
            "Graph rejected the credential mid-run; sign in again (check the secret or certificate). "
            + _RERUN
        )
    if status == 403:
        perm = (
            "LicenseAssignment.ReadWrite.All"
            if r.action.type == "assignLicenses"
            else "User.ReadUpdate.All (or User.ReadWrite.All)"
        )
        return f"Grant the app the application permission {perm} with admin consent. {_RERUN}"
    if status == 404:
        return (
            f"The user {r.action.upn} no longer exists in the tenant; remove it from the manifest. {_RERUN}"
        )
    if status in (429, 503, 504):
        return f"Graph kept throttling or was unavailable past the retry budget. Wait a few minutes. {_RERUN}"
    if status is not None and status >= 500:
        return (
            "Graph had an internal error; the change may or may not have happened. "
            f"{_RERUN} If it persists, quote the request-id to Microsoft."
        )
    if "group" in text or "inherit" in text:
        return "The license comes from a group; change the group membership instead. " + _RERUN
    return f"Fix what Graph's message names (in the manifest or the tenant). {_RERUN}"


def render_text(result: ApplyResult) -> str:
    """The summary a person reads after an apply: totals, a line per action type, then each failure."""
    lines: list[str] = []
    totals = result.totals()
    n = len(result.results)
    head = "Apply complete" if result.ok else "Apply finished with problems"
    lines.append(
        f"{head} on {result.tenant_name or result.tenant_id}: {n} change{'s' if n != 1 else ''}, "
        + ", ".join(f"{totals[s]} {s}" for s in STATUSES)
        + f" ({result.elapsed_seconds:.1f} s)."
    )
    for action_type, counts in result.counts().items():
        lines.append(f"  {action_type:<18} " + "  ".join(f"{counts[s]} {s}" for s in STATUSES))
    if result.error:
        lines.append("")
        lines.append("The run stopped early: " + result.error.splitlines()[0])
        lines.append("Actions marked skipped were not confirmed; the next plan shows what is left.")
    failures = result.failures
    if failures:
        lines.append("")
        lines.append(f"Failed ({len(failures)}):")
        for r in failures:
            lines += _failure_block(r)
    skipped = [r for r in result.skipped if r.action.depends_on and "depends on" in (r.message or "")]
    if skipped:
        lines.append("")
        lines.append(f"Skipped because a change they depend on failed ({len(skipped)}):")
        for r in skipped:
            lines.append(f"  - {r.action.upn}: {r.what}")
    return "\n".join(lines) + "\n"


def _failure_block(r: ActionResult) -> list[str]:
    graph = " ".join(x for x in (f"HTTP {r.http_status}" if r.http_status else "", r.code or "") if x)
    out = [f"  - {r.action.upn}: {r.what}"]
    out.append(f"    Graph: {graph or 'no answer'}: {r.message or '(no message)'}")
    if r.request_id:
        out.append(f"    request-id: {r.request_id}")
    out.append(f"    what to do: {advice(r)}")
    return out


def result_document(result: ApplyResult) -> dict[str, Any]:
    """`--format json`: the result plus advice on each failed outcome (keys sorted on output)."""
    doc = result.to_dict()
    by_id = {r.action.id: r for r in result.results}
    for o in doc["outcomes"]:
        r = by_id[o["actionId"]]
        o["what"] = r.what
        if r.status == "failed":
            o["advice"] = advice(r)
    return doc


def render_json(result: ApplyResult) -> str:
    return json.dumps(result_document(result), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
