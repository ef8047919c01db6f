"""Apply a plan to a tenant: stale check, safety guard, execution with audit log and progress.

Library code: raises `provisioner.errors` exceptions and never exits; `provisioner.cli.apply` picks exit codes.

    check_stale(plan, conn) -> list[str]       what changed in the tenant since a saved plan was made
    guard(plan, allow_removals) -> None         PlanError for error diagnostics or too many removals
    execute(plan, conn, ...) -> ApplyResult     run the actions; one outcome per action
    AuditLog(path)                              append-only JSON lines, one per attempted change, flushed each
    make_progress(stream)                       a rich bar on a terminal, plain lines otherwise
"""

from __future__ import annotations

from provisioner.apply.audit import AuditLog
from provisioner.apply.execute import ActionResult, ApplyResult, execute
from provisioner.apply.guard import guard
from provisioner.apply.progress import BarProgress, LineProgress, NullProgress, Progress, make_progress
from provisioner.apply.stale import check_stale, compare

__all__ = [
    "ActionResult",
    "ApplyResult",
    "AuditLog",
    "BarProgress",
    "LineProgress",
    "NullProgress",
    "Progress",
    "check_stale",
    "compare",
    "execute",
    "guard",
    "make_progress",
]
