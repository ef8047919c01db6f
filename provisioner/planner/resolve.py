"""Resolve each declared user to the managed licenses and usage location the manifests ask for. Pure.

The result per user is a `Target`: the usage location change (if any) and the sets of SKU ids to add and
remove, already made safe (a Calling Plan never ends up without Phone System; a license the user inherits
from a group is never removed, even when also held directly; nothing is added to a user without a usage
location). Problems become diagnostics, never raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioner.model.desired import DesiredUser, Policy
from provisioner.model.observed import User
from provisioner.model.plan import Diagnostic
from provisioner.planner import messages as msg
from provisioner.planner.tenant import CALLING_PLAN, PHONE_SYSTEM, Licenses, SkuInfo, TenantView


@dataclass(slots=True)
class Target:
    """What one user should become. `add`/`remove` hold sku ids; `location_to` is None when unchanged."""

    user: User
    declared: DesiredUser | None
    location_to: str | None = None
    add: set[str] = field(default_factory=set)
    remove: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # reason fragments, display only
    blocked: str | None = None  # set by ordering when no seat order exists for this user
    key: str = ""  # the user's lower-case UPN (set on creation: read often, by sorting and ordering)
    # Resolver's memo key when every user with that key gets this same Target (replayed): the user's calls are
    # then the same too, and ordering works them out once per key (order.steps_for).
    memo: tuple[object, ...] | None = None

    def __post_init__(self) -> None:
        self.key = self.user.upn.lower()

    @property
    def location_after(self) -> str | None:
        return self.location_to if self.location_to is not None else self.user.usage_location

    @property
    def changes(self) -> bool:
        return bool(self.add or self.remove or self.location_to is not None)


@dataclass(frozen=True, slots=True)
class _Replay:
    """A resolution that changed something, as Resolver.declared keeps it for users with the same memo key."""

    location_to: str | None
    add: frozenset[str]
    remove: frozenset[str]
    notes: tuple[str, ...]
    log: tuple[tuple[Any, ...], ...]  # ("seat", SkuInfo) | ("diag", severity, code, message) | ("warned", sku) |
    # ("inactive", sku), in the order the resolution did them


class Resolver:
    """Per-plan resolution context: the tenant view, the policy, and the diagnostics being collected."""

    def __init__(self, view: TenantView, policy: Policy, diagnostics: list[Diagnostic]) -> None:
        self.view = view
        self.policy = policy
        self.diags = diagnostics
        # SKU id -> (UPN, FILE:LINE or None) of users whose add of it was dropped because the subscription
        # cannot assign (Suspended, ...)
        self.inactive: dict[str, list[tuple[str, str | None]]] = {}
        # (user key, SKU id) already reported as inherited-license: one warning per user and SKU
        self._inherited_warned: set[tuple[str, str]] = set()
        # Resolutions that changed nothing and touched nothing: (wish, location, account, licenses) of a user.
        # Resolution reads nothing else of a user but its UPN, which only diagnostics carry, so another user
        # with the same key resolves the same way: to nothing (the steady state's many users).
        self._no_ops: set[tuple[object, ...]] = set()
        # The same for resolutions that change something: the Target's values and what the resolution did
        # (seats taken, diagnostics, warnings remembered, subscriptions noted), replayed for the next user with
        # the same key. Not kept when the resolution chose among duplicate SKUs by the seats left (pick()):
        # that choice depends on earlier users.
        self._replays: dict[tuple[object, ...], _Replay] = {}
        self._log: list[tuple[Any, ...]] | None = None  # the effects of the resolution being recorded
        # Counts everything a resolution does besides building its Target (diagnostics, seats taken, warnings
        # remembered, subscriptions noted) or that depends on earlier users: a no-op leaves it unchanged.
        self._effects = 0

    # -- helpers -----------------------------------------------------------------------------------

    def _diag(self, severity: str, code: str, message: str, upn: str | None, source: object) -> None:
        """`source`: a Source (FILE:LINE, made a string only here: most users never need it) or None."""
        self._effects += 1
        if self._log is not None:
            self._log.append(("diag", severity, code, message))
        where = str(source) if source is not None else None
        self.diags.append(Diagnostic(severity, code, message, upn, where))  # type: ignore[arg-type]

    def _group_names(self, user: User, sku_id: str) -> str:
        return msg.group_list([self.view.group_name(g) for g in user.inherited_from(sku_id)])

    def _warn_inherited(self, user: User, sku_id: str, wish: str, source: object) -> None:
        self._effects += 1  # it reads the warnings of earlier users
        mark = (user.upn.lower(), sku_id)
        if mark in self._inherited_warned:
            return
        self._inherited_warned.add(mark)
        if self._log is not None:
            self._log.append(("warned", sku_id))
        also_direct = sku_id in self.view.hold(user).direct
        self._diag(
            "warning",
            "inherited-license",
            msg.inherited(self.view.part(sku_id), self._group_names(user, sku_id), wish, also_direct),
            user.upn,
            source,
        )

    def _take_seat(self, info: SkuInfo) -> None:
        self._effects += 1
        if self._log is not None:
            self._log.append(("seat", info))
        self.view.tentative_free[info.sku_id] = self.view.tentative_free.get(info.sku_id, 0) - 1

    # -- declared users ------------------------------------------------------------------------------

    def declared(self, du: DesiredUser, user: User, licenses: Licenses | None = None) -> Target | None:
        """The user's target; None when nothing managed can differ (the common case in a big tenant, kept cheap).

        With `licenses` (the user's, from TenantView.by_key), a user with the same memo key as an earlier one
        is not resolved again: None when that resolution changed nothing and did nothing (its wish already met,
        in a steady tenant), else a replay of it (_replay). Neither is kept when the resolution chose among
        duplicate SKUs by the seats earlier users left. Replays rely on each user being resolved once (the
        loader keeps the first of a UPN declared twice), as the inherited-license warnings are per user.
        """
        if licenses is None or not self.view.unique_ids:
            return self._declared(du, user)  # not indexed, or user ids repeat (never from Graph): no memo
        memo = (
            du.usage_location,
            du.calling_plan,
            du.phone_system,
            du.communications_credits,
            user.usage_location,
            user.account_enabled,
            licenses,
        )
        if memo in self._no_ops:
            return None
        known = self._replays.get(memo)
        if known is not None:
            return self._replay(known, du, user, memo)
        effects, seat_reads = self._effects, self.view.seat_reads
        log: list[tuple[Any, ...]] = []
        self._log = log
        try:
            t = self._declared(du, user)
        finally:
            self._log = None
        if self.view.seat_reads != seat_reads:
            return t  # chose among duplicate SKUs by the seats earlier users left: not the same for the next user
        if (t is None or not t.changes) and self._effects == effects:
            self._no_ops.add(memo)
        elif t is not None:
            t.memo = memo
            self._replays[memo] = _Replay(t.location_to, frozenset(t.add), frozenset(t.remove), tuple(t.notes),
                                          tuple(log))
        return t

    def _replay(self, r: _Replay, du: DesiredUser, user: User, memo: tuple[object, ...]) -> Target:
        """What `_declared(du, user)` would do, from an earlier user with the same memo key: the same effects, in
        the same order, under this user's UPN and source; the same Target for this user."""
        src = du.source
        for effect in r.log:
            kind = effect[0]
            if kind == "seat":
                self._take_seat(effect[1])
            elif kind == "diag":
                self._diag(effect[1], effect[2], effect[3], user.upn, src)
            elif kind == "warned":
                self._inherited_warned.add((user.upn.lower(), effect[1]))
            else:  # "inactive"
                self._effects += 1
                self.inactive.setdefault(effect[1], []).append((user.upn, str(src) if src is not None else None))
        return Target(user, du, r.location_to, set(r.add), set(r.remove), list(r.notes), memo=memo)

    def _declared(self, du: DesiredUser, user: User) -> Target | None:
        moving = (
            du.usage_location is not None and du.usage_location.upper() != (user.usage_location or "").upper()
        )
        if (
            not moving
            and du.calling_plan is None
            and du.phone_system is None
            and du.communications_credits is None
        ):
            return None
        t = Target(user, du)
        if moving:
            t.location_to = du.usage_location.upper()  # type: ignore[union-attr]
            t.notes.append(f"usage location {user.usage_location or '(none)'} → {t.location_to}")
        view, src = self.view, du.source
        country = t.location_after
        h = view.hold(user)
        direct, held, inh = h.direct, h.direct | h.inherited, h.inherited
        managed_direct = direct & view.managed

        if du.phone_system is False:
            # "ensure no managed license is directly assigned": every add-on, Calling Plan and credits license.
            t.remove |= managed_direct
            for sku_id in sorted(inh & view.managed, key=view.part):
                self._warn_inherited(user, sku_id, "phoneSystem: false", src)
            if managed_direct:
                t.notes.append("phoneSystem: false removes every managed license")
            self._finish(t, src)
            return t

        # Calling Plan
        calling_direct = set(direct & view.calling_plans)
        calling_inherited = set(inh & view.calling_plans)
        target_cp: SkuInfo | None = None
        cp_resolved = False
        bundled = view.bundled_calling_plans(user) if view.bundles_with_calling_plan else {}
        if du.calling_plan == "none":
            t.remove |= calling_direct
            for sku_id in sorted(calling_inherited, key=view.part):
                self._warn_inherited(user, sku_id, "callingPlan: none", src)
            for sku_id in sorted(bundled, key=view.part):
                self._diag("warning", "calling-plan-in-suite", msg.calling_plan_in_suite(view.part(sku_id)),
                           user.upn, src)
            cp_resolved = True
        elif du.calling_plan is not None:
            target_cp = self._calling_plan(du, user, country, src)
            if target_cp is not None:
                cp_resolved = True
                gives = view.calling_plan_plans[target_cp.sku_id]
                suite = next((k for k in sorted(bundled, key=view.part) if bundled[k] & gives), None)
                # Held but not working (inherited in error, or its plan switched off) is not had: add it (a
                # re-add of a direct copy enables its plan and takes no seat; a direct copy beside a group copy in
                # error takes one).
                has = view.gives_calling_plan(user, target_cp.sku_id)
                if suite is not None and (not has or target_cp.kind is None):
                    # a suite or bundle the user holds already includes this Calling Plan: nothing to buy
                    t.notes.append(f"Calling Plan {du.calling_plan} ({country}) from {view.part(suite)}")
                elif not has:
                    t.add.add(target_cp.sku_id)
                    if target_cp.sku_id not in (h.direct | h.active):
                        self._take_seat(target_cp)
                    t.notes.append(f"Calling Plan {du.calling_plan} ({country}) → {target_cp.part}")
                    for sku_id in sorted(bundled, key=view.part):
                        self._diag("warning", "calling-plan-in-suite",
                                   msg.second_calling_plan(view.part(sku_id), target_cp.part), user.upn, src)
                t.remove |= calling_direct - {target_cp.sku_id}
                for sku_id in sorted(calling_inherited - {target_cp.sku_id}, key=view.part):
                    self._warn_inherited(user, sku_id, f"callingPlan: {du.calling_plan}", src)
        elif t.location_to is not None:
            # Calling Plan not managed, but the user moves: warn when the plan they keep is not sold there.
            for sku_id in sorted(calling_direct | calling_inherited, key=view.part):
                if not view.valid_in(sku_id, country):
                    self._diag(
                        "warning",
                        "plan-not-available-in-country",
                        msg.kept_plan_invalid(view.part(sku_id), country or "?"),
                        user.upn,
                        src,
                    )

        # Phone System
        if du.wants_phone_system is True:
            after = (direct | t.add) - t.remove
            if not view.gives_phone_system(user, after | h.active, frozenset(t.add)):
                addon = view.first_of_parts([self.policy.phone_system_sku], held)
                if addon is None:
                    self._diag("error", "sku-not-in-tenant", msg.phone_system_missing(
                        self.policy.phone_system_sku, sorted(view.part(k) for k in view.phone_system_skus)),
                        user.upn, src)
                else:
                    t.add.add(addon.sku_id)
                    if addon.sku_id not in held:
                        self._take_seat(addon)
                    t.notes.append(f"Phone System → {addon.part}")

        # Communications Credits
        payg = self._ends_with_payg(t, user, target_cp, cp_resolved, du)
        want_cc = du.communications_credits
        implied = False
        if (
            want_cc is None
            and payg
            and du.calling_plan is not None
            and self.policy.payg_funding == "communicationsCredits"
        ):
            want_cc, implied = True, True
        credits_held = set(held & view.credits)
        if want_cc is True and not credits_held:
            cc = view.first_of_parts(list(view.catalog.communications_credits), held)
            if cc is None:
                if implied:
                    self._diag("warning", "payg-unfunded", msg.payg_unfunded_missing_sku(), user.upn, src)
                else:
                    self._missing(
                        "/".join(view.catalog.communications_credits), "Communications Credits", user, src
                    )
            else:
                t.add.add(cc.sku_id)
                self._take_seat(cc)
                t.notes.append(f"Communications Credits → {cc.part}")
        elif want_cc is False:
            t.remove |= direct & view.credits
            for sku_id in sorted(inh & view.credits, key=view.part):
                self._warn_inherited(user, sku_id, "communicationsCredits: false", src)
            if payg and self.policy.payg_funding == "communicationsCredits":
                # Declaring the Pay-As-You-Go plan and declining its funding is a contradiction (an error, as in
                # `validate`); keeping a PAYG plan the manifest does not manage is only a warning.
                severity = "error" if du.calling_plan is not None and du.calling_plan != "none" else "warning"
                self._diag(severity, "payg-unfunded", msg.payg_unfunded_declined(), user.upn, src)

        self._finish(t, src)
        return t

    def _calling_plan(self, du: DesiredUser, user: User, country: str | None, src: object) -> SkuInfo | None:
        """The tenant SKU for the user's declared Calling Plan in `country`, or None with an error diagnostic."""
        view, plan_id = self.view, du.calling_plan or ""
        held = self.view.hold(user).all
        if plan_id.startswith("sku:"):
            part = plan_id[4:]
            found = view.pick(view.by_part_number(part), held)
            if found is None:
                self._missing(part, f"callingPlan {plan_id}", user, src)
                return None
            if found.kind != CALLING_PLAN:
                self._diag(
                    "error",
                    "sku-not-a-calling-plan",
                    msg.not_a_calling_plan(found.part, found.kind),
                    user.upn,
                    src,
                )
                return None
            if country is not None and not view.valid_in(found.sku_id, country):
                # as `validate` says: a SKU named by part number is still sold only where its offer is
                sold = sorted(c for c in view.catalog.countries_for(found.plan_id or "") if view.valid_in(found.sku_id, c))
                self._diag("error", "plan-not-available-in-country", msg.not_in_country(plan_id, country, sold),
                           user.upn, src)
                return None
            return found
        if country is None:
            self._diag("error", "usage-location-required", msg.location_required(plan_id), user.upn, src)
            return None
        offer = view.offer(plan_id, country)
        if offer is None:
            countries = sorted(view.catalog.countries_for(plan_id))
            self._diag(
                "error",
                "plan-not-available-in-country",
                msg.not_in_country(plan_id, country, countries),
                user.upn,
                src,
            )
            return None
        found = view.pick(view.offer_candidates(offer, country), held)
        if found is None:
            # No standalone SKU in the tenant: a bundle the user holds that includes this plan satisfies it
            # (returned as the target: held, so nothing is added; unmanaged, so never removed).
            bundles = view.bundled_calling_plans(user) if view.bundles_with_calling_plan else {}
            mine = view.bundles_giving(offer, bundles)
            if mine:
                return mine[0]
            wanted = "/".join(offer.part_numbers) or "/".join(offer.service_plan_names) or offer.display_name
            what = f"{offer.display_name} for {country}"
            tenant_bundles = view.bundles_giving(offer, view.bundles_with_calling_plan)
            off = [b.part for b in tenant_bundles if b.sku_id in held]  # held, but its Calling Plan is not on
            if off:
                text = msg.sku_missing_bundle_off(wanted, what, off)
            elif tenant_bundles:
                text = msg.sku_missing_bundle_only(wanted, what, [b.part for b in tenant_bundles])
            else:
                text = msg.sku_missing(wanted, what)
            self._diag("error", "sku-not-in-tenant", text, user.upn, src)
            return None
        return found

    def _ends_with_payg(
        self, t: Target, user: User, target_cp: SkuInfo | None, cp_resolved: bool, du: DesiredUser
    ) -> bool:
        if target_cp is not None:
            return target_cp.plan_id == "payg"
        if cp_resolved or du.calling_plan is not None:
            return False
        after = (self.view.hold(user).all | t.add) - t.remove
        return any(self.view.plan_id(s) == "payg" for s in after)

    def _missing(self, part: str, what: str, user: User, src: object) -> None:
        self._diag("error", "sku-not-in-tenant", msg.sku_missing(part, what), user.upn, src)

    # -- unlisted users --------------------------------------------------------------------------------

    def unlisted(self, user: User) -> Target | None:
        """policy.unlisted: remove — take away every managed license the user holds directly."""
        managed_direct = self.view.hold(user).direct & self.view.managed
        if not managed_direct:
            return None
        t = Target(user, None, remove=set(managed_direct))
        t.notes.append("not declared in any manifest (policy.unlisted: remove)")
        self._finish(t, None)
        return t

    # -- safety ----------------------------------------------------------------------------------------

    def _finish(self, t: Target, src: object) -> None:
        """Make the target safe whatever went wrong above, so every plan keeps the contract's invariants."""
        if not t.add and not t.remove:
            return
        view, user = self.view, t.user
        h = view.hold(user)
        if not t.add.isdisjoint(h.direct):
            t.add -= {s for s in t.add if s in h.direct and not self._needs_reassign(user, s)}
        dropped: set[str] = set()  # adds that cannot happen
        # Adds need a usage location.
        if t.add and t.location_after is None:
            dropped |= t.add
            self._effects += 1  # it reads the diagnostics of earlier users
            if not any(d.code == "usage-location-required" and d.upn == user.upn for d in self.diags[-3:]):
                self._diag(
                    "error", "usage-location-required", msg.location_required_for_adds(), user.upn, src
                )
            t.add.clear()
        # A subscription that cannot hand out seats blocks its adds (a re-add of a held license needs no seat).
        for sku_id in sorted((t.add & view.unassignable) - h.direct):
            t.add.discard(sku_id)
            dropped.add(sku_id)
            self._effects += 1
            where = str(src) if src is not None else None
            self.inactive.setdefault(sku_id, []).append((user.upn, where))
            if self._log is not None:
                self._log.append(("inactive", sku_id))
        if not dropped.isdisjoint(view.calling_plans):
            # The new Calling Plan cannot be added: keep the one the user has rather than leave them without.
            t.remove -= view.calling_plans
        # Never remove a license the user does not hold directly.
        t.remove &= h.direct
        # Nor one the user also inherits from a group (CONTRACT §3): removing the direct copy frees no seat
        # (Graph counts the user once) and the license stays. The branches above name the manifest's wish;
        # this is the last guard for every path (unlisted users, country moves, ...).
        for sku_id in sorted(t.remove & h.inherited, key=view.part):
            wish = "policy.unlisted: remove" if t.declared is None else "the manifests remove it"
            self._warn_inherited(user, sku_id, wish, src)
        t.remove -= h.inherited
        t.remove -= t.add
        self._keep_phone_system(t, src)
        if t.add and user.account_enabled is False and t.declared is not None:
            self._diag("warning", "account-disabled", msg.account_disabled(), user.upn, src)

    def _needs_reassign(self, user: User, sku_id: str) -> bool:
        """A held Phone System add-on or Calling Plan whose service plan is disabled: re-adding it enables the plan."""
        info = self.view.skus.get(sku_id)
        if info is None:
            return False
        if info.kind == PHONE_SYSTEM:
            return not self.view.gives_phone_system(user, {sku_id})
        return info.kind == CALLING_PLAN and not self.view.gives_calling_plan(user, sku_id)

    def _keep_phone_system(self, t: Target, src: object) -> None:
        view, user = self.view, t.user
        h = view.hold(user)
        after = (h.direct - t.remove) | t.add | h.active
        has_cp = not view.calling_plans.isdisjoint(after)
        if not has_cp or view.gives_phone_system(user, after, frozenset(t.add)):
            return
        # Keep the Phone System licenses we meant to remove, when a Calling Plan stays (inherited, usually).
        providers = {s for s in t.remove if s in view.phone_system_skus}
        if providers:
            t.remove -= providers
            kept = sorted(after & view.calling_plans)
            self._diag(
                "warning",
                "inherited-license",
                msg.phone_system_kept(
                    ", ".join(view.part(s) for s in sorted(providers, key=view.part)),
                    ", ".join(f"{view.part(s)} ({self._group_names(user, s) or 'direct'})" for s in kept),
                ),
                user.upn,
                src,
            )
            return
        # Adding a Calling Plan without Phone System would be refused by Graph: drop the Calling Plan add.
        t.add -= view.calling_plans
        h = view.hold(user)
        after = (h.direct - t.remove) | t.add | h.active
        stuck = not view.calling_plans.isdisjoint(after) and not view.gives_phone_system(
            user, after, frozenset(t.add)
        )
        if (t.add or t.remove) and stuck:
            # The user already holds a Calling Plan without Phone System: Graph refuses every license change
            # of this user until that is fixed, so plan none and say how to fix it.
            plans = ", ".join(sorted(view.part(s) for s in after & view.calling_plans))
            self._diag("error", "calling-plan-without-phone-system", msg.cp_without_ps(plans), user.upn, src)
            t.add.clear()
            t.remove.clear()
