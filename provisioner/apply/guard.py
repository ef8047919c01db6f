"""The safety gate before any write: error diagnostics and the removal limit. Pure (raises PlanError)."""

from __future__ import annotations

from provisioner.errors import PlanError
from provisioner.model.plan import Plan

# The planner may flag the removal limit as a diagnostic; the count check below owns that decision,
# so that --allow-removals can lift it. Every other error diagnostic is final.
_LIFTED_BY_FLAG = frozenset({"removal-limit"})


def guard(plan: Plan, allow_removals: bool) -> None:
    """Raise PlanError when the plan must not be applied; return None when it may be."""
    errors = [d for d in plan.diagnostics if d.severity == "error" and d.code not in _LIFTED_BY_FLAG]
    if errors:
        lines = []
        for d in sorted(errors, key=lambda d: (d.source or "", d.upn or "", d.code)):
            where = " ".join(x for x in (d.source, d.upn) if x)
            lines.append(f"  - {d.code}: {d.message}" + (f" ({where})" if where else ""))
        n = len(errors)
        raise PlanError(
            f"the plan has {n} error diagnostic{'s' if n != 1 else ''}; plans with error diagnostics never apply:\n"
            + "\n".join(lines),
            hint="Nothing was changed. Fix the manifests or the tenant, then run `provision plan` again.",
        )
    removals = plan.removal_count
    if removals > plan.max_removals and not allow_removals:
        users = sorted({a.upn for a in plan.actions if a.remove})
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise PlanError(
            f"the plan removes {removals} license assignment{'s' if removals != 1 else ''} ({shown}), "
            f"more than the limit of {plan.max_removals} (policy.maxRemovals)",
            hint=(
                "Nothing was changed. Review the removals in the plan; if they are intended, pass "
                "--allow-removals, or raise policy.maxRemovals in the manifest."
            ),
        )
