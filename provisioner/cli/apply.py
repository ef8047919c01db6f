"""`provision apply`: plan from manifests and ask, or apply a saved plan exactly; report and pick the exit code.

Order of events, each a gate before any change: read the plan (saved, or planned now and shown) → guard
(error diagnostics, removal limit) → stale check (saved plans) → approval (terminal prompt, --auto-approve,
or a saved plan) → execute with progress and audit log → results. Exit 0 only when every action succeeded.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from provisioner.apply import AuditLog, check_stale, execute, guard, make_progress
from provisioner.apply.report import render_json, render_text
from provisioner.apply.saved import load_saved_plan, plan_catalog, saved_plan_path
from provisioner.cli import use_colour
from provisioner.errors import PlanError, StalePlanError
from provisioner.model.plan import Plan

EXIT_OK, EXIT_ERROR = 0, 1


def run(
    *,
    paths: list[Path],
    tenant: str | None,
    graph_url: str | None,
    auto_approve: bool = False,
    allow_removals: bool = False,
    parallelism: int = 4,
    format: str = "text",
    audit_log: Path | None = None,
    auth: str = "auto",
    catalog: Path | None = None,
    debug: bool = False,
) -> int:
    from provisioner.pipeline import kept_until_exit

    with kept_until_exit():  # kept to the end: out of the cyclic collector's passes during the writes
        plan_file = saved_plan_path(paths)
        saved = load_saved_plan(plan_file) if plan_file else None
    saved_catalog = None
    if saved is not None:
        guard(saved, allow_removals)  # refuse before touching the tenant at all
        saved_catalog = plan_catalog(saved, catalog)
    audit_cm: AbstractContextManager[AuditLog | None] = AuditLog(audit_log) if audit_log else nullcontext()
    with audit_cm as audit, _connect(tenant, graph_url, auth, debug) as conn:
        if saved is not None:
            plan = saved
            with kept_until_exit():
                changes = check_stale(plan, conn, saved_catalog)
            if changes:
                raise StalePlanError(changes)
        else:
            plan = _build_plan(paths, conn, catalog)
            _show(plan, format)
            guard(plan, allow_removals)
        if not plan.actions:
            _say(f"No changes. {plan.tenant_name or plan.tenant_id} already matches; nothing to apply.")
            if format == "json":
                sys.stdout.write(render_json(execute(plan, conn)))
            return EXIT_OK
        if saved is None and not auto_approve and not _approved(plan):
            _say("Apply cancelled; nothing was changed.")
            return EXIT_ERROR
        result = execute(plan, conn, parallelism=parallelism, audit=audit, progress=make_progress(sys.stderr))
    sys.stdout.write(render_json(result) if format == "json" else render_text(result))
    sys.stdout.flush()
    if result.ok:
        return EXIT_OK
    totals = result.totals()
    _say(
        f"error: {totals['failed']} failed and {totals['skipped']} skipped of {len(result.results)} changes "
        f"on {plan.tenant_name or plan.tenant_id}; the summary says what to do for each."
    )
    return EXIT_ERROR


def _approved(plan: Plan) -> bool:
    """Ask on the terminal; without one, refuse (a pipeline must say --auto-approve or apply a saved plan)."""
    n = len(plan.actions)
    changes = f"{n} change{'s' if n != 1 else ''}"
    name = plan.tenant_name or plan.tenant_id
    if not _stdin_is_terminal():
        raise PlanError(
            f"refusing to apply {changes} to {name} without confirmation: there is no terminal to ask on",
            hint=(
                "Nothing was changed. Pass --auto-approve, or save the plan with "
                "`provision plan MANIFESTS --out PLANFILE`, review it, and run `provision apply PLANFILE`."
            ),
        )
    sys.stderr.write(f"Apply {changes} to {name}? [y/N] ")
    sys.stderr.flush()
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def _stdin_is_terminal() -> bool:
    isatty = getattr(sys.stdin, "isatty", None)
    return bool(isatty and isatty())


def _show(plan: Plan, format: str) -> None:
    """The plan as text: on stdout (what was asked for), or on stderr when stdout carries the JSON result."""
    from provisioner.render import render

    out = sys.stdout if format == "text" else sys.stderr
    text = render(plan, "text", color=use_colour(out))
    out.write(text if text.endswith("\n") else text + "\n")
    out.flush()




def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Seams: the tenant connection and the planning pipeline live in other packages (imported lazily so that
# `provision --help` stays fast); tests replace these two functions.


def _connect(
    tenant: str | None, graph_url: str | None, auth: str, debug: bool
) -> AbstractContextManager[Any]:
    from provisioner.graph import connect

    cm: AbstractContextManager[Any] = connect(tenant, graph_url=graph_url, auth=auth, debug=debug)
    return cm


def _build_plan(paths: list[Path], conn: Any, catalog: Path | None) -> Plan:
    from provisioner.apply.source import plan_from_manifests

    return plan_from_manifests(paths, conn, catalog)


__all__ = ["run"]
