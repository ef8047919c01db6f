"""The presentation model of a Plan: every decision the templates need (symbols, lines, counts, truncation),
made here in Python so the Jinja2 templates only lay text out. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.model.plan import Diagnostic, Plan, UserChange, UserState


@dataclass(frozen=True)
class Line:
    sign: str  # "+" add, "-" remove, "~" change, "!" problem
    text: str
    action: str = ""  # action id, when the line is a planned change


@dataclass(frozen=True)
class UserView:
    upn: str
    symbol: str  # "+" only adds, "-" only removes, "~" mixed or location, "!" problems only
    lines: tuple[Line, ...]
    declared: str
    has: str
    after: str
    broken: str
    source: str


@dataclass
class PlanView:
    tenant: str
    tenant_id: str
    fingerprint: str
    summary: dict[str, int]
    summary_line: str
    has_changes: bool
    errors: int
    warnings: int
    diagnostics: list[Diagnostic]
    users: list[UserView]
    seats: list[dict[str, object]]
    seats_changed: list[dict[str, object]]
    pools: list[dict[str, object]]
    hidden_users: int = 0
    hidden_diagnostics: int = 0
    extra: dict[str, object] = field(default_factory=dict)


def _state(state: UserState) -> str:
    parts = list(state.licenses) + [f"{p} (group)" for p in state.inherited]
    text = f"{state.usage_location or 'no location'}: " + (
        ", ".join(parts) if parts else "no managed licenses"
    )
    if state.phone_system_from:
        text += f" (Phone System from {', '.join(state.phone_system_from)})"
    return text


def summary_line(plan: Plan) -> str:
    s = plan.summary()
    if not plan.actions:
        if plan.has_errors:
            return "No changes can be planned until the errors in the diagnostics are fixed."
        if plan.diagnostics:
            return "No changes. Some of the manifests cannot be met as things are: see the diagnostics."
        return "No changes. The tenant matches the manifests."
    locs = s["usageLocationsSet"]
    return (
        f"Plan: {s['actions']} change{'s' if s['actions'] != 1 else ''} for {s['usersChanged']} "
        f"user{'s' if s['usersChanged'] != 1 else ''}: {s['licensesAdded']} license"
        f"{'s' if s['licensesAdded'] != 1 else ''} to add, {s['licensesRemoved']} to remove, "
        f"{locs} usage location{'s' if locs != 1 else ''} to set."
        + (" It cannot be applied until the errors in the diagnostics are fixed." if plan.has_errors else "")
    )


def user_views(plan: Plan) -> list[UserView]:
    by_upn: dict[str, list[Line]] = {}
    for a in plan.actions:
        lines = by_upn.setdefault(a.upn.lower(), [])
        if a.type == "setUsageLocation":
            lines.append(
                Line("~", f"usageLocation: {a.usage_location_from or '(none)'} → {a.usage_location_to}", a.id)
            )
        else:
            lines += [Line("+", r.part_number, a.id) for r in a.add]
            lines += [Line("-", r.part_number, a.id) for r in a.remove]
    changes: dict[str, UserChange] = {u.upn.lower(): u for u in plan.users}
    codes: dict[str, list[str]] = {}
    for d in plan.diagnostics:
        if d.upn and d.code not in codes.setdefault(d.upn.lower(), []):
            codes[d.upn.lower()].append(d.code)
    out = []
    for key in sorted(set(by_upn) | set(changes)):
        lines = list(by_upn.get(key, []))
        uc = changes.get(key)
        upn = uc.upn if uc else next(a.upn for a in plan.actions if a.upn.lower() == key)
        problems = tuple(uc.problems) if uc else ()
        lines += [Line("!", p) for p in problems]
        said = " ".join(problems)
        lines += [Line("!", f"{code} (see diagnostics)") for code in codes.get(key, []) if code not in said]
        signs = {ln.sign for ln in lines if ln.sign != "!"}
        symbol = "!" if not signs else (signs.pop() if len(signs) == 1 else "~")
        out.append(
            UserView(
                upn=upn,
                symbol=symbol,
                lines=tuple(lines),
                declared=(uc.declared or "") if uc else "",
                has=_state(uc.before) if uc else "",
                after=_state(uc.after) if uc else "",
                broken="; ".join(problems),
                source=(uc.source or "") if uc else "",
            )
        )
    return out


def build(plan: Plan) -> PlanView:
    return PlanView(
        tenant=plan.tenant_name,
        tenant_id=plan.tenant_id,
        fingerprint=plan.fingerprint,
        summary=plan.summary(),
        summary_line=summary_line(plan),
        has_changes=plan.has_changes,
        errors=sum(1 for d in plan.diagnostics if d.severity == "error"),
        warnings=sum(1 for d in plan.diagnostics if d.severity == "warning"),
        diagnostics=list(plan.diagnostics),
        users=user_views(plan),
        seats=[s.to_dict() for s in plan.seats],
        seats_changed=[s.to_dict() for s in plan.seats if s.after != s.consumed or s.after > s.enabled],
        pools=[p.to_dict() for p in plan.pools],
    )


def limited(view: PlanView, max_users: int, max_diagnostics: int) -> PlanView:
    """A copy showing at most `max_users` users and `max_diagnostics` diagnostics, counting the rest."""
    return PlanView(
        **{
            **view.__dict__,
            "users": view.users[:max_users],
            "diagnostics": view.diagnostics[:max_diagnostics],
            "hidden_users": max(0, len(view.users) - max_users),
            "hidden_diagnostics": max(0, len(view.diagnostics) - max_diagnostics),
        }
    )
