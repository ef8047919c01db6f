"""What a plan reports besides its actions: seats, minute pools, the per-user view, fingerprint, preconditions. Pure."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping

from provisioner.model.desired import DesiredUser
from provisioner.model.observed import Observed, User
from provisioner.model.plan import (
    PoolLine,
    SeatLine,
    SeatPrecondition,
    UserChange,
    UserPrecondition,
    UserState,
)
from provisioner.planner.order import Schedule
from provisioner.planner.resolve import Target
from provisioner.planner.tenant import Licenses, TenantView, assignments_text


def fingerprint(observed: Observed, licenses: Mapping[str, Licenses] | None = None) -> str:
    """sha256 of everything the plan was computed from (tenant, SKUs and their seats, every user read).

    `licenses` (TenantView.by_key, when indexed) gives each user's assignments already spelled; the value is
    the same either way, and must stay so: a saved plan is checked against it.
    """
    lines = [f"tenant|{observed.tenant.id.lower()}"]
    for s in sorted(observed.skus, key=lambda s: s.sku_id):
        lines.append(f"sku|{s.sku_id}|{s.part_number}|{s.capability_status}|{s.enabled}|{s.consumed}")
    users = observed.users
    for key in sorted(users):
        u = users[key]
        lic = licenses[key].text if licenses is not None else assignments_text(u.assignments)
        lines.append(f"user|{u.id}|{key}|{u.usage_location or ''}|{lic}")
    if observed.holder_counts is not None:  # a partial read: the counts stood in for the other holders
        lines += [f"holders|{c}|{s}|{n}" for (c, s), n in sorted(observed.holder_counts.items())]
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def seat_lines(view: TenantView, sched: Schedule) -> tuple[SeatLine, ...]:
    """Every managed SKU, plus any other SKU the plan touches, sorted by part number then id."""
    touched = set(sched.taken) | set(sched.released)
    lines = []
    for sku_id, info in view.skus.items():
        if info.kind is None and sku_id not in touched:
            continue
        s = info.sku
        after = s.consumed + sched.taken.get(sku_id, 0) - sched.released.get(sku_id, 0)
        lines.append(SeatLine(s.part_number, sku_id, s.enabled, s.consumed, after))
    return tuple(sorted(lines, key=lambda x: (x.part_number.lower(), x.sku_id)))


def seat_preconditions(view: TenantView, sched: Schedule) -> tuple[SeatPrecondition, ...]:
    return tuple(
        SeatPrecondition(sku_id, view.part(sku_id), n)
        for sku_id, n in sorted(sched.used_initial.items(), key=lambda kv: (view.part(kv[0]).lower(), kv[0]))
        if n > 0
    )


def after_skus(view: TenantView, user: User, target: Target | None) -> frozenset[str]:
    """The SKUs a user holds (direct or through an active group) once the plan ran."""
    h = view.hold(user)
    held = h.direct
    if target is not None and target.blocked is None:
        held = (held - target.remove) | target.add
    return held | h.active


# Countries whose users share another country's minute pool, shown as that country's pool line: "Users assigned
# with the license usage location of U.S. and/or Puerto Rico share the same pool of minutes"
# (availability-in-the-united-states-u-s.md; reference §2.4).
SHARED_POOLS = {"PR": "US"}


def _fold(counts: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for (country, sku_id), n in counts.items():
        out[(SHARED_POOLS.get(country, country), sku_id)] += n
    return out


def pools(view: TenantView, observed: Observed, planned: dict[str, Target]) -> tuple[PoolLine, ...]:
    """Users and pooled minutes per (country, Calling Plan SKU), before and after; Puerto Rico's users in the
    United States' pool (SHARED_POOLS).

    From every holder on a complete read. On a partial read with `holder_counts` (the named users only, and
    how many hold each Calling Plan per country): before = the count; after = the count plus the named
    users' net change, which is what the complete read would find, user for user.
    """
    cp = view.calling_plans
    before: dict[tuple[str, str], int] = defaultdict(int)
    after: dict[tuple[str, str], int] = defaultdict(int)
    users = observed.users
    if not view.by_key and users:
        view.index(users)
    # Unchanged users (the many) count as they are: the index counted every user read, so take away the
    # users that change, and count those one by one.
    unchanged = dict(view.pool_holders)
    for key, t in planned.items():
        user = users.get(key)
        if user is None or t.blocked is not None:
            continue
        held_plans = view.by_key[key].pooled  # the working ones (a plan switched off or in error counts not)
        if held_plans:
            unchanged[(user.usage_location or "", held_plans)] -= 1
        for s in held_plans:
            before[(user.usage_location or "", s)] += 1
        for s in after_skus(view, user, t) & cp:
            if s in t.add or s in held_plans:
                after[(t.location_after or "", s)] += 1
    for (loc, held_plans), n in unchanged.items():
        if not n:
            continue  # every holder of these Calling Plans here changes (counted above, one by one)
        for s in held_plans:
            before[(loc, s)] += n
            after[(loc, s)] += n
    counts = observed.holder_counts
    if counts is not None and not observed.complete_for_managed:
        for k, n in counts.items():
            if k[1] in cp:
                net = after.get(k, 0) - before.get(k, 0)
                before[k] = n
                after[k] = max(0, n + net)  # never below 0, even if a count raced a change
    before, after = _fold(before), _fold(after)
    out = []
    for country, sku_id in sorted(
        set(before) | set(after), key=lambda k: (k[0], view.part(k[1]).lower(), k[1])
    ):
        info = view.skus[sku_id]
        per_user, pooled = None, True
        if info.plan_id is not None and country:
            offer = view.offer(info.plan_id, country)
            if offer is not None and view.valid_in(sku_id, country):
                pooled = offer.pooled
                per_user = offer.minutes_for(country)
        ub, ua = before.get((country, sku_id), 0), after.get((country, sku_id), 0)
        mb = per_user * ub if per_user is not None and pooled else None
        ma = per_user * ua if per_user is not None and pooled else None
        out.append(PoolLine(country, info.part, ub, ua, mb, ma, sku_id=sku_id, pooled=pooled))
    return tuple(out)


def user_state(view: TenantView, user: User, direct: frozenset[str], location: str | None) -> UserState:
    h = view.hold(user)
    inh = h.inherited & view.managed
    part = view.part
    # Suites the tool never touches that give Phone System here (E5): the drift view says where it comes from.
    suites = (direct | h.active) & view.phone_system_skus
    suites = (
        frozenset(s for s in suites - view.managed if view.gives_phone_system(user, {s}))
        if suites
        else suites
    )
    return UserState(
        location,
        tuple(sorted([part(s) for s in direct & view.managed])),
        tuple(sorted([part(s) for s in inh])) if inh else (),
        tuple(sorted([part(s) for s in suites])) if suites else (),
    )


def problems_of(view: TenantView, user: User) -> tuple[str, ...]:
    """licenseAssignmentStates errors on the user's managed licenses, in words (the drift view's "broken")."""
    out = []
    for a in user.assignments:
        if (
            a.error and a.error != "None" and (a.sku_id in view.managed or a.sku_id in view.phone_system_skus)
        ):  # rare
            source = f"group '{view.group_name(a.by_group)}'" if a.by_group else "direct assignment"
            out.append(f"{a.error} on {view.part(a.sku_id)} ({source})")
    return tuple(sorted(set(out)))


def declared_text(du: DesiredUser | None) -> str:
    """The manifest's wish in words, managed fields only."""
    if du is None:
        return "not declared (policy.unlisted: remove)"
    parts = []
    if du.usage_location is not None:
        parts.append(f"usageLocation {du.usage_location}")
    if du.calling_plan is not None:
        parts.append(f"callingPlan {du.calling_plan}")
    ps = du.wants_phone_system
    if ps is not None:
        parts.append(
            f"phoneSystem {'true' if ps else 'false'}" + ("" if du.phone_system is not None else " (implied)")
        )
    if du.communications_credits is not None:
        parts.append(f"communicationsCredits {'true' if du.communications_credits else 'false'}")
    return ", ".join(parts) or "(no managed fields)"


def user_changes(
    view: TenantView,
    targets: list[Target],
    observed: Observed,
    declared: dict[str, DesiredUser],
    flagged: set[str],
) -> tuple[UserChange, ...]:
    """The per-user view: users with changes or blocked changes, and the `flagged` ones (diagnostics, errors)."""
    by_key = {t.key: t for t in targets if t.changes}
    keys = set(by_key) | {k for k in flagged if k in observed.users}
    # Many users share a state and a wish (same location, same licenses): build each text and state once.
    states: dict[tuple[object, ...], UserState] = {}
    wishes: dict[tuple[str | None, str | None, bool | None, bool | None], str] = {}

    def state(user: User, direct: frozenset[str], location: str | None, lic: Licenses | None) -> UserState:
        k: tuple[object, ...]
        if lic is not None:
            # The user's Licenses stand for all its assignments, hence also its holdings (ids unique).
            k = (location, direct, lic)
        else:
            ps = view.phone_system_skus
            k = (location, direct, view.hold(user).inherited,
                 tuple((a.sku_id, a.by_group, a.state, a.disabled_plans) for a in user.assignments if a.sku_id in ps))  # fmt: skip
        got = states.get(k)
        if got is None:
            got = states[k] = user_state(view, user, direct, location)
        return got

    def wish(du: DesiredUser | None) -> str:
        if du is None:
            return declared_text(None)
        k = (du.usage_location, du.calling_plan, du.phone_system, du.communications_credits)
        got = wishes.get(k)
        if got is None:
            got = wishes[k] = declared_text(du)
        return got

    def change(key: str, user: User, t: Target | None, lic: Licenses | None
               ) -> tuple[UserState, UserState, tuple[str, ...]] | None:
        """(before, after, problems), or None when the user has nothing to show."""
        direct_before = view.hold(user).direct
        direct_after, loc_after = direct_before, user.usage_location
        problems = list(problems_of(view, user)) if lic is None or lic.has_error else []
        if not view.unique_ids:
            lic = None  # hold() may answer another user's holdings: key the states as before
        if t is not None and t.blocked is None:
            direct_after = (direct_before - t.remove) | t.add
            loc_after = t.location_after
        elif t is not None and t.blocked:
            problems.append(t.blocked)
        if t is not None and not t.changes and not problems and key not in flagged:
            return None
        return (state(user, direct_before, user.usage_location, lic),
                state(user, frozenset(direct_after), loc_after, lic), tuple(problems))

    # Targets replayed from one resolution (Target.memo) of users whose assignments Graph shows in no error have
    # the same before, after and problems: worked out once per memo key (and blocked or not).
    replayed: dict[tuple[object, ...], tuple[UserState, UserState, tuple[str, ...]]] = {}
    out = []
    for key in sorted(keys):
        user = observed.users[key]
        t = by_key.get(key)
        du = declared.get(key)
        if t is None and du is None:
            continue
        lic = view.by_key.get(key)
        mk = None
        if t is not None and t.memo is not None and lic is not None and not lic.has_error and view.unique_ids:
            mk = (t.memo, t.blocked)
        got = replayed.get(mk) if mk is not None else None
        if got is None:
            got = change(key, user, t, lic)
            if got is None:
                continue
            if mk is not None:
                replayed[mk] = got
        out.append(UserChange(upn=user.upn, user_id=user.id, before=got[0], after=got[1],
                              source=str(du.source) if du else None, declared=wish(du), problems=got[2]))
    return tuple(out)


def user_preconditions(view: TenantView, targets: list[Target]) -> tuple[UserPrecondition, ...]:
    """What apply re-checks of each user the plan changes: where they are and every license the plan relied on
    (direct ones with their disabled plans: a suite may give Phone System; and those inherited from groups)."""
    # Users with the same Licenses (the same assignments) have the same three license tuples: spelled once.
    spelled: dict[object, tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]] = {}

    def licenses(user: User, key: str) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]:
        lic = view.by_key.get(key) if view.unique_ids else None
        got = spelled.get(lic) if lic is not None else None
        if got is None:
            h = view.hold(user)
            got = (tuple(sorted(h.direct)), tuple(sorted(user.direct_disabled_plans.items())), tuple(sorted(h.active)))
            if lic is not None:
                spelled[lic] = got
        return got

    return tuple(
        UserPrecondition(t.user.id, t.user.upn, t.user.usage_location, *licenses(t.user, t.key))
        for t in sorted(targets, key=lambda t: t.key)
        if t.changes and t.blocked is None
    )
