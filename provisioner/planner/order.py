"""Turn resolved targets into Graph calls in a valid execution order, simulating seats call by call. Pure.

Per user, the calls are: [assignLicenses removing the old Calling Plan, when the user moves to a country
where it is not sold] → setUsageLocation → one assignLicenses (adds and removes together). Across users, a
seat model mirrors Graph's (and the emulator's) counting: an add takes a free seat unless the user already
holds the SKU directly or through an active group assignment; a removal frees a seat unless the user also
inherits the SKU through an active group assignment. A freed seat is free for anyone: group members waiting in
CountViolation do not take it until their group is reprocessed (entra-docs licensing-groups-resolve-problems.md,
"Force group license processing"). A SKU already assigned beyond its enabled seats (seats expired or reduced)
frees nothing usable until it is back within them: its first removals only pay off that excess, and an add of
it waits for all of those. Calls that only free seats run first; a call that needs a seat freed by another user's call lists it in `dependsOn`, so any
execution that honours `dependsOn` (batched, parallel) stays within the seats, not only the listed order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from provisioner.planner.resolve import Target
from provisioner.planner.tenant import ASSIGNABLE, TenantView


@dataclass(slots=True)
class Step:
    """One planned call, before it gets its public id."""

    target: Target
    type: str  # setUsageLocation | assignLicenses
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # SKUs this call takes a new seat of
    frees: tuple[str, ...] = ()  # SKUs this call gives a seat back to
    reason: str = ""
    position: int = -1
    deps: set[int] = field(default_factory=set)


@dataclass
class Schedule:
    steps: list[Step]  # execution order; Step.position is the index
    blocked: list[Target]  # users none of whose calls are planned: no seat order exists
    initial_free: dict[str, int]
    used_initial: dict[str, int]  # per SKU, free seats the plan takes (its seat precondition)
    taken: dict[str, int]  # new seats taken, per SKU
    released: dict[str, int]  # seats given back, per SKU (including those paying off an excess)
    # (sku, seats the plan needs, free now, freed by the plan, stuck calls needing it, stuck calls freeing it)
    problems: list[tuple[str, int, int, int, list[Step], list[Step]]]


# A user's calls, as steps_for works them out: (type, add, remove, needs, frees, reason) per call.
_Recipe = list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], str]]


def steps_for(t: Target, view: TenantView, recipes: dict[tuple[object, ...], _Recipe] | None = None) -> list[Step]:
    """The calls of one user, in the order they must run.

    `recipes` keeps them per Resolver memo key (Target.memo): every user with that key has the same Target, the
    same licenses and location, hence the same calls."""
    if recipes is not None and t.memo is not None:
        recipe = recipes.get(t.memo)
        if recipe is None:
            worked = steps_for(t, view)
            recipes[t.memo] = [(st.type, st.add, st.remove, st.needs, st.frees, st.reason) for st in worked]
            return worked
        return [Step(t, *call) for call in recipe]
    user = t.user
    h = view.hold(user)
    act_inh, inh, direct = h.active, h.inherited, h.direct

    def assign(add: set[str], remove: set[str], reason: str) -> Step:
        a = tuple(sorted(add, key=lambda s: view.order.get(s, (s, s))))
        r = tuple(sorted(remove, key=lambda s: view.order.get(s, (s, s))))
        return Step(
            t,
            "assignLicenses",
            a,
            r,
            needs=tuple(s for s in a if s not in direct and s not in act_inh),
            frees=tuple(s for s in r if s not in inh),
            reason=reason,
        )

    steps: list[Step] = []
    moving = t.location_to is not None
    # Only a Calling Plan not sold in the new country goes first: otherwise one call swaps it, with no gap.
    remove_first = (
        moving
        and any(not view.valid_in(s, t.location_to) for s in t.remove & view.calling_plans)
        and _valid_between(t, view)
    )
    reason = "; ".join(t.notes)
    if remove_first:
        steps.append(assign(set(), t.remove, f"remove before moving to {t.location_to}: " + reason))
    if moving:
        steps.append(
            Step(
                t,
                "setUsageLocation",
                reason=f"usage location {t.user.usage_location or '(none)'} → {t.location_to}",
            )
        )
    if remove_first:
        if t.add:
            steps.append(assign(t.add, set(), reason))
    elif t.add or t.remove:
        steps.append(assign(t.add, t.remove, reason))
    return steps


def _valid_between(t: Target, view: TenantView) -> bool:
    """Removing first must not leave a Calling Plan without Phone System in between (it never should)."""
    h = view.hold(t.user)
    mid = (h.direct - t.remove) | h.active
    return bool(view.calling_plans.isdisjoint(mid)) or view.gives_phone_system(t.user, mid)


def schedule(targets: list[Target], view: TenantView) -> Schedule:
    """Order every target's calls; users whose calls no seat order allows are returned as `blocked`."""
    initial = {
        sku_id: (max(0, info.sku.free) if info.sku.capability_status in ASSIGNABLE else 0)
        for sku_id, info in view.skus.items()
    }
    # Seats assigned beyond the enabled ones: removals pay these off before any seat is free again.
    excess = {sku_id: -info.sku.free for sku_id, info in view.skus.items() if info.sku.free < 0}
    recipes: dict[tuple[object, ...], _Recipe] = {}
    plans = {t.key: steps_for(t, view, recipes) for t in targets if t.changes}
    first = _run(plans, initial, excess)
    if not first.stuck:
        return _result(first, [], initial, [])
    # Report against the whole plan, then plan without the stuck users (their calls, if run half-way, could
    # leave someone without a Calling Plan), repeating while dropping them strands others.
    problems = _problems(plans, first, initial, excess)
    blocked: list[Target] = []
    run = first
    while run.stuck:
        # Users stuck at their first call changed nothing in the run: dropping them changes no one else.
        replan = any(st.position >= 0 for key in run.stuck for st in plans[key])
        for key in sorted(run.stuck):
            blocked.append(plans[key][0].target)
            del plans[key]
        if not replan:
            break
        run = _run(plans, initial, excess)
    return _result(run, blocked, initial, problems)


@dataclass
class _Run:
    order: list[Step]
    stuck: set[str]
    used_initial: dict[str, int]
    taken: dict[str, int]
    released: dict[str, int]
    short: set[str] = field(default_factory=set)  # SKUs some stuck call waits for


def _run(plans: dict[str, list[Step]], initial: dict[str, int], excess_in: dict[str, int]) -> _Run:
    for steps in plans.values():
        for st in steps:
            st.position = -1
    left = dict(initial)
    excess = dict(excess_in)
    paying: dict[str, list[int]] = {}  # per SKU, the removals that paid off its excess
    freed: dict[str, deque[int]] = {}
    used: dict[str, int] = {}
    taken: dict[str, int] = {}
    released: dict[str, int] = {}
    order: list[Step] = []
    cursor = dict.fromkeys(plans, 0)
    waiting: dict[str, deque[str]] = {}
    # Two FIFO queues instead of a priority heap: calls that need no seat (they only free seats, or change a
    # location) run before calls that take one; within each queue, first come first served (deterministic:
    # users enter in UPN order and every later step enters when the one before it ran).
    free_first: deque[str] = deque()
    needing: deque[str] = deque()

    def push(key: str) -> None:
        (needing if plans[key][cursor[key]].needs else free_first).append(key)

    def available(s: str) -> int:
        return left.get(s, 0) + len(freed.get(s, ()))

    def wake(s: str) -> int:
        """Requeue as many callers waiting for `s` as there are seats of it: never all of them, which would
        make a long queue behind a scarce SKU quadratic."""
        queue = waiting.get(s)
        n = min(len(queue), available(s)) if queue else 0
        for _ in range(n):
            push(queue.popleft())  # type: ignore[union-attr]
        return n

    for key in sorted(plans):
        push(key)
    while True:
        if not free_first and not needing:
            # A woken caller may have gone back to wait for another SKU, leaving a seat unused: wake more.
            if not sum(wake(s) for s in sorted(waiting)):
                break
            continue
        key = free_first.popleft() if free_first else needing.popleft()
        step = plans[key][cursor[key]]
        short = next((s for s in step.needs if available(s) < 1), None)
        if short is not None:
            waiting.setdefault(short, deque()).append(key)
            continue
        step.position = len(order)
        step.deps = set()
        if cursor[key] > 0:
            step.deps.add(plans[key][cursor[key] - 1].position)
        for s in step.needs:
            taken[s] = taken.get(s, 0) + 1
            if left.get(s, 0) > 0:
                left[s] -= 1
                used[s] = used.get(s, 0) + 1
            else:
                step.deps.add(freed[s].popleft())
                # Which removal's seat is the free one depends on timing: wait for the ones paying the excess too.
                step.deps.update(paying.get(s, ()))
        order.append(step)
        for s in step.frees:
            released[s] = released.get(s, 0) + 1
            if excess.get(s, 0) > 0:
                excess[s] -= 1
                paying.setdefault(s, []).append(step.position)
                continue
            freed.setdefault(s, deque()).append(step.position)
            wake(s)
        cursor[key] += 1
        if cursor[key] < len(plans[key]):
            push(key)
    stuck = {k for ks in waiting.values() for k in ks}
    short_skus = {s for s in waiting if waiting[s]}
    return _Run(order, stuck, used, taken, released, short_skus)


def _problems(
    plans: dict[str, list[Step]], run: _Run, initial: dict[str, int], excess: dict[str, int]
) -> list[tuple[str, int, int, int, list[Step], list[Step]]]:
    """Per SKU some stuck call needs: (sku, seats needed by the whole plan, free now, freed by the plan, stuck)."""
    stuck_steps = [plans[k][_index_of_first_unplaced(plans[k])] for k in sorted(run.stuck)]
    skus = sorted({s for st in stuck_steps for s in st.needs if s in run.short})
    needs: dict[str, int] = {}  # per SKU, over the whole plan: counted in one pass, not once per short SKU
    gives: dict[str, int] = {}
    for steps in plans.values():
        for st in steps:
            for s in st.needs:
                needs[s] = needs.get(s, 0) + 1
            for s in st.frees:
                gives[s] = gives.get(s, 0) + 1
    out = []
    for sku in skus:
        need, frees = needs.get(sku, 0), gives.get(sku, 0)
        freed = max(0, frees - excess.get(sku, 0))
        blocked = [st for st in stuck_steps if sku in st.needs]
        givers = [st for st in stuck_steps if sku in st.frees]
        out.append((sku, need, initial.get(sku, 0), freed, blocked, givers))
    return out


def _index_of_first_unplaced(steps: list[Step]) -> int:
    for i, st in enumerate(steps):
        if st.position < 0:
            return i
    return 0


def _result(run: _Run, blocked: list[Target], initial: dict[str, int], problems: list) -> Schedule:  # type: ignore[type-arg]
    return Schedule(
        steps=run.order,
        blocked=sorted(blocked, key=lambda t: t.key),
        initial_free=initial,
        used_initial=run.used_initial,
        taken=run.taken,
        released=run.released,
        problems=problems,
    )
