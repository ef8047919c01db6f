"""What the planner knows about the tenant's SKUs: which are managed, which give Phone System, and which
tenant SKU provides a Calling Plan offer in a country. Pure; built once per `plan()` call, with caches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provisioner.model.observed import Assignment, Observed, Sku, User

if TYPE_CHECKING:
    from provisioner.catalog import Catalog, Offer

CALLING_PLAN, PHONE_SYSTEM, CREDITS = "callingPlan", "phoneSystem", "credits"

# Capability statuses in which Graph still assigns seats; the others block adds (subscription-not-active).
ASSIGNABLE = frozenset({"Enabled", "Warning"})
# licenseAssignmentStates that do not give the user the license's capabilities.
INACTIVE_STATES = frozenset({"Error", "Disabled"})


@dataclass(frozen=True, slots=True)
class SkuInfo:
    """A subscribed SKU as the planner sees it. `kind` is None for SKUs the tool never touches (suites)."""

    sku: Sku
    kind: str | None
    plan_id: str | None
    phone_system_plans: frozenset[str]  # ids of its enabled-by-default Phone System service plans

    @property
    def sku_id(self) -> str:
        return self.sku.sku_id

    @property
    def part(self) -> str:
        return self.sku.part_number


@dataclass(frozen=True, slots=True)
class Holdings:
    """A user's licenses split the way planning needs them (sets of sku ids), computed once per user."""

    direct: frozenset[str]
    inherited: frozenset[str]  # through any group assignment, whatever its state
    active: frozenset[str]  # through a group assignment Graph counts (not in Error / Disabled)

    @property
    def all(self) -> frozenset[str]:
        return self.direct | self.inherited


def holdings(user: User) -> Holdings:
    direct: set[str] = set()
    inherited: set[str] = set()
    active: set[str] = set()
    for a in user.assignments:
        if a.by_group is None:
            direct.add(a.sku_id)
        else:
            inherited.add(a.sku_id)
            if a.state not in INACTIVE_STATES:
                active.add(a.sku_id)
    return Holdings(frozenset(direct), frozenset(inherited), frozenset(active))


def assignments_text(assignments: tuple[Assignment, ...]) -> str:
    """A user's assignments as the plan's fingerprint spells them: sorted, so their order does not matter."""
    lic = [
        f"{a.sku_id},{a.by_group or ''},{a.state or ''},{a.error or ''},{'+'.join(sorted(a.disabled_plans))}"
        for a in assignments
    ]
    if len(lic) > 1:
        lic.sort()
    return ";".join(lic)


@dataclass(frozen=True, slots=True, eq=False)
class Licenses:
    """What planning derives from one user's assignments. A tenant has few distinct sets of assignments
    (19 in the 100,000-user benchmark), so each is computed once and shared by every user holding it;
    `eq=False` keeps hashing by identity, which the resolver's memo relies on (one instance per set)."""

    holdings: Holdings
    text: str  # the fingerprint's spelling (assignments_text)
    has_error: bool  # Graph marks one of them in error (CountViolation, ...)
    pooled: frozenset[str]  # Calling Plans the minute pools count: working (gives_calling_plan)


# One user's assignments (Assignment is a NamedTuple: hashed and compared in C, field by field): equal shapes
# give equal Licenses.
_Shape = tuple[Assignment, ...]


class TenantView:
    """Index of the tenant's SKUs against the catalog. One instance per plan; never mutated by callers."""

    def __init__(
        self, observed: Observed, catalog: Catalog, extra_calling_plans: frozenset[str] = frozenset()
    ) -> None:
        """`extra_calling_plans`: upper-case part numbers named by `callingPlan: sku:<part>`; a SKU the catalog
        does not know (Mexico's Domestic plan, say) becomes a managed Calling Plan for this plan, unless it
        carries Phone System or is an add-on or credits (those are never Calling Plans)."""
        self.catalog = catalog
        self.tenant = observed.tenant
        self.skus: dict[str, SkuInfo] = {}
        for s in sorted(observed.skus, key=lambda s: s.sku_id):
            names = [p.name for p in s.service_plans]
            cls = catalog.classify_sku(s.part_number, names)
            ps = frozenset(p.id for p in s.service_plans if catalog.is_phone_system_service_plan(p.name))
            if cls is None and not ps and s.part_number.upper() in extra_calling_plans:
                cls = (CALLING_PLAN, None)
            self.skus[s.sku_id] = SkuInfo(s, cls[0] if cls else None, cls[1] if cls else None, ps)
        self.managed: frozenset[str] = frozenset(k for k, v in self.skus.items() if v.kind is not None)
        self.calling_plans: frozenset[str] = frozenset(
            k for k, v in self.skus.items() if v.kind == CALLING_PLAN
        )
        self.credits: frozenset[str] = frozenset(k for k, v in self.skus.items() if v.kind == CREDITS)
        # Calling Plan service plans (of the Calling Plan SKUs), and the suites or bundles the tool never manages
        # that carry one (MCOTEAMS_ESSENTIALS, Business Voice: a Calling Plan with Phone System).
        # A service plan is a Calling Plan's when a Calling Plan SKU of the tenant carries it, or when the catalog
        # names it as a Calling Plan (MCOPSTN1 is both the Domestic plan's part number and its service plan): so a
        # tenant with a bundle and no standalone Calling Plan SKU still knows what the bundle gives.
        known = (
            catalog.all_calling_plan_part_numbers()
            | catalog.all_calling_plan_service_plans()
            | {n.upper() for n in catalog.suite_calling_plan_service_plans}
        )
        self.calling_plan_service_plans: frozenset[str] = (
            frozenset(p.id for k in self.calling_plans for p in self.skus[k].sku.service_plans)
            | frozenset(p.id for v in self.skus.values() for p in v.sku.service_plans if p.name.upper() in known)
        ) - frozenset(p for v in self.skus.values() for p in v.phone_system_plans)
        # Per SKU, the Calling Plan service plans it carries (empty for most): read per user, so derived once.
        self.calling_plan_plans: dict[str, frozenset[str]] = {
            k: frozenset(p.id for p in v.sku.service_plans) & self.calling_plan_service_plans
            for k, v in self.skus.items()
        }
        self.bundles_with_calling_plan: frozenset[str] = frozenset(
            k for k, v in self.skus.items() if v.kind is None and self.calling_plan_plans[k]
        )
        # Subscriptions that cannot hand out seats now (Suspended, LockedOut, Deleted): subscription-not-active.
        self.unassignable: frozenset[str] = frozenset(
            k for k, v in self.skus.items() if v.sku.capability_status not in ASSIGNABLE
        )
        self._parts: dict[str, str] = {k: v.part for k, v in self.skus.items()}
        # Sort key for SKU ids wherever SKUs are listed: part number, then id (part numbers repeat).
        self.order: dict[str, tuple[str, str]] = {k: (v.part, k) for k, v in self.skus.items()}
        self.phone_system_skus: frozenset[str] = frozenset(
            k for k, v in self.skus.items() if v.phone_system_plans
        )
        self._offers: dict[tuple[str, str], Offer | None] = {}
        self._candidates: dict[tuple[str, str], tuple[SkuInfo, ...]] = {}
        self._by_part: dict[str, tuple[SkuInfo, ...]] = {}
        # Seats handed out by resolution so far, so users spread over duplicate SKUs before one runs out.
        self.tentative_free: dict[str, int] = {k: v.sku.free for k, v in self.skus.items()}
        self.seat_reads = 0  # how many choices pick() made by tentative_free: those depend on earlier users
        # Group display names, when the reader provides them (Observed.groups); else groups show by id.
        self._holdings: dict[str, Holdings] = {}
        self.groups: dict[str, str] = {
            k.lower(): v for k, v in (getattr(observed, "groups", None) or {}).items()
        }
        self._shapes: dict[_Shape, Licenses] = {}
        # Observed key -> Licenses, for every user read (index()); empty until then.
        self.by_key: dict[str, Licenses] = {}
        # (usage location or "", Calling Plans counted in the minute pools) -> users read holding exactly those.
        self.pool_holders: dict[tuple[str, frozenset[str]], int] = {}
        self.errors = True  # whether Graph marks some assignment of a user read in error; index() knows
        self.unique_ids = False  # index() found every user id distinct, and hold() answers from its pass

    def hold(self, user: User) -> Holdings:
        """The user's holdings, cached for this plan (users are read many times: resolve, order, report)."""
        h = self._holdings.get(user.id)
        if h is None:
            h = self._holdings[user.id] = self.licenses(user).holdings
        return h

    def licenses(self, user: User) -> Licenses:
        """The Licenses of this user's assignments (shared with every user holding the same ones)."""
        lic = self._shapes.get(user.assignments)
        if lic is None:
            lic = self._shapes[user.assignments] = self._licenses(user)
        return lic

    def _licenses(self, user: User) -> Licenses:
        h = holdings(user)
        return Licenses(
            h,
            assignments_text(user.assignments),
            any(a.error and a.error != "None" for a in user.assignments),
            frozenset(s for s in (h.direct | h.active) & self.calling_plans if self.gives_calling_plan(user, s)),
        )

    def index(self, users: dict[str, User]) -> None:
        """Fill `by_key`, `pool_holders`, `errors` and `unique_ids` from every user read, in one pass.

        plan() calls it once, before anything else reads users: what comes after relies on `by_key` covering
        every user read."""
        shapes, by_key, pool_holders = self._shapes, self.by_key, self.pool_holders
        by_id: dict[str, Holdings] = {}
        for key, user in users.items():
            # self.licenses(user), inlined: this loop runs for every user of the tenant
            lic = shapes.get(user.assignments)
            if lic is None:
                lic = shapes[user.assignments] = self._licenses(user)
            by_key[key] = lic
            by_id[user.id] = lic.holdings
            if lic.pooled:
                k = (user.usage_location or "", lic.pooled)
                pool_holders[k] = pool_holders.get(k, 0) + 1
        self.errors = any(lic.has_error for lic in shapes.values())
        if len(by_id) == len(users) and not self._holdings:
            # User ids are unique (Graph's always are), so hold() would compute exactly these, one by one.
            self._holdings = by_id
            self.unique_ids = True

    def group_name(self, group_id: str) -> str:
        return self.groups.get(group_id.lower()) or group_id

    # -- names ---------------------------------------------------------------------------------------

    def part(self, sku_id: str) -> str:
        return self._parts.get(sku_id, sku_id)

    def kind(self, sku_id: str) -> str | None:
        info = self.skus.get(sku_id)
        return info.kind if info else None

    def plan_id(self, sku_id: str) -> str | None:
        info = self.skus.get(sku_id)
        return info.plan_id if info else None

    # -- Phone System --------------------------------------------------------------------------------

    def gives_phone_system(
        self, user: User, sku_ids: frozenset[str] | set[str], added: frozenset[str] = frozenset()
    ) -> bool:
        """Whether any of `sku_ids` gives `user` an enabled Phone System service plan.

        For licenses the user holds, a plan counts when some active assignment of that SKU does not disable
        it; a license about to be added (`added`) is assigned with nothing disabled.
        """
        candidates = [s for s in sku_ids if s in self.phone_system_skus]
        if not candidates:
            return False
        for sku_id in candidates:
            plans = self.skus[sku_id].phone_system_plans
            if sku_id in added:
                return True
            for a in user.assignments:
                if a.sku_id == sku_id and a.state not in INACTIVE_STATES and plans - set(a.disabled_plans):
                    return True
        return False

    def gives_calling_plan(self, user: User, sku_id: str) -> bool:
        """Whether the Calling Plan `sku_id` works for `user`: an assignment of it that Graph counts (direct, or from
        a group not in error) with one of its Calling Plan service plans enabled. A copy inherited in error
        (CountViolation, DependencyViolation) or with its plan switched off (disabledPlans) gives nothing."""
        plans = self.calling_plan_plans.get(sku_id, frozenset())
        for a in user.assignments:
            if a.sku_id == sku_id and a.state not in INACTIVE_STATES and (not plans or plans - set(a.disabled_plans)):
                return True
        return False

    def bundled_calling_plans(self, user: User) -> dict[str, frozenset[str]]:
        """Unmanaged suites or bundles the user holds (directly, or from a group that counts) that give an
        enabled Calling Plan service plan: sku id -> those service plan ids. Empty for nearly every user."""
        if self.bundles_with_calling_plan.isdisjoint(a.sku_id for a in user.assignments):
            return {}
        out: dict[str, frozenset[str]] = {}
        for a in user.assignments:
            if a.sku_id not in self.bundles_with_calling_plan or a.state in INACTIVE_STATES:
                continue
            enabled = self.calling_plan_plans[a.sku_id] - user.disabled_plans_of(a.sku_id)
            if enabled:
                out[a.sku_id] = out.get(a.sku_id, frozenset()) | enabled
        return out

    def bundles_giving(self, offer: Offer, sku_ids: Iterable[str]) -> list[SkuInfo]:
        """Of `sku_ids`, the unmanaged bundles or suites that carry `offer`'s Calling Plan service plan (named
        like one of its part numbers or service plans: MCOTEAMS_ESSENTIALS carries MCOPSTN1), by part number."""
        names = {n.upper() for n in (*offer.part_numbers, *offer.service_plan_names)}
        found = [
            self.skus[k]
            for k in sku_ids
            if k in self.bundles_with_calling_plan
            and any(
                p.id in self.calling_plan_plans[k] and p.name.upper() in names for p in self.skus[k].sku.service_plans
            )
        ]
        return sorted(found, key=lambda i: (i.part, i.sku_id))

    # -- resolving SKUs ------------------------------------------------------------------------------

    def offer(self, plan_id: str, country: str) -> Offer | None:
        key = (plan_id, country)
        if key not in self._offers:
            self._offers[key] = self.catalog.offer_for(plan_id, country)
        return self._offers[key]

    def offer_candidates(self, offer: Offer, country: str) -> tuple[SkuInfo, ...]:
        """Tenant SKUs providing `offer`, best first: assignable status, free seats, catalog order, sku id."""
        key = (offer.plan_id, country)
        cached = self._candidates.get(key)
        if cached is not None:
            return cached
        order = {p.upper(): i for i, p in enumerate(offer.part_numbers)}
        found = [
            info
            for info in self.skus.values()
            if info.kind == CALLING_PLAN
            and self.catalog.sku_matches_offer(offer, info.part, [p.name for p in info.sku.service_plans])
        ]
        found.sort(
            key=lambda i: (
                i.sku.capability_status not in ASSIGNABLE,
                i.sku.free <= 0,
                order.get(i.part.upper(), len(order)),
                -i.sku.free,
                i.sku_id,
            )
        )
        result = tuple(found)
        self._candidates[key] = result
        return result

    def by_part_number(self, part_number: str) -> tuple[SkuInfo, ...]:
        """Tenant SKUs with this part number (case-insensitive; not unique), best first."""
        key = part_number.upper()
        cached = self._by_part.get(key)
        if cached is None:
            found = [i for i in self.skus.values() if i.part.upper() == key]
            found.sort(
                key=lambda i: (
                    i.sku.capability_status not in ASSIGNABLE,
                    i.sku.free <= 0,
                    -i.sku.free,
                    i.sku_id,
                )
            )
            cached = tuple(found)
            self._by_part[key] = cached
        return cached

    def pick(self, candidates: tuple[SkuInfo, ...], held: frozenset[str]) -> SkuInfo | None:
        """The candidate the user already holds, else the first with a seat left, else the best one."""
        if not candidates:
            return None
        for c in candidates:
            if c.sku_id in held:
                return c
        if len(candidates) > 1:
            self.seat_reads += 1  # the choice depends on the seats earlier users took (Resolver's memo)
            for c in candidates:
                if c.sku.capability_status in ASSIGNABLE and self.tentative_free.get(c.sku_id, 0) > 0:
                    return c
        return candidates[0]

    def first_of_parts(
        self, part_numbers: tuple[str, ...] | list[str], held: frozenset[str]
    ) -> SkuInfo | None:
        """The tenant SKU for the first part number (in preference order) the tenant has."""
        for pn in part_numbers:
            found = self.pick(self.by_part_number(pn), held)
            if found is not None:
                return found
        return None

    def valid_in(self, sku_id: str, country: str | None) -> bool:
        """Whether a Calling Plan SKU is sold in `country` (the offer of its plan id there accepts it)."""
        info = self.skus.get(sku_id)
        if info is None or info.plan_id is None or country is None:
            return True  # nothing to check against: never force a release on unknown data
        offer = self.offer(info.plan_id, country)
        if offer is None:
            return False
        return self.catalog.sku_matches_offer(offer, info.part, [p.name for p in info.sku.service_plans])
