"""The catalog's data classes: `Offer` and `Catalog`, with the look-ups the planner needs. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Offer:
    """One way to buy a Calling Plan: a plan id, in some countries, provided by some SKUs.

    `part_numbers` are candidate skuPartNumbers, preferred first (matched case-insensitively);
    `service_plan_names` are a fallback for offers whose part number is unverified (see
    `Catalog.sku_matches_offer`). `minutes` maps country -> monthly domestic minutes per user
    (None = unknown; payg = 0: no outgoing minutes are included).
    """

    plan_id: str
    zone: str | None
    countries: frozenset[str]
    part_numbers: tuple[str, ...]
    service_plan_names: tuple[str, ...]
    minutes: Mapping[str, int | None]
    pooled: bool
    display_name: str
    source: str = ""
    note: str = ""

    def minutes_for(self, country: str) -> int | None:
        """Monthly domestic minutes per user in `country`; None when unknown or not sold there."""
        return self.minutes.get(country.upper())

    def to_json(self) -> dict[str, Any]:
        return {
            "planId": self.plan_id,
            "zone": self.zone,
            "displayName": self.display_name,
            "partNumbers": list(self.part_numbers),
            "servicePlanNames": list(self.service_plan_names),
            "countries": sorted(self.countries),
            "minutes": {c: self.minutes.get(c) for c in sorted(self.countries)},
            "pooled": self.pooled,
            "source": self.source,
            "note": self.note,
        }


@dataclass(frozen=True)
class Catalog:
    """All offers by plan id, plus what identifies Phone System and Communications Credits SKUs.

    Lookup indexes are built once in `__post_init__`; the instance is immutable and safe to share.
    """

    offers: Mapping[str, tuple[Offer, ...]]
    phone_system_plan_prefix: str
    phone_system_addons: tuple[str, ...]
    communications_credits: tuple[str, ...]
    known_sku_ids: Mapping[str, tuple[str, ...]]
    countries: Mapping[str, str]
    sources: tuple[str, ...]
    # Service plans that start with the prefix but give no user Phone System (MCOEV_VIRTUALUSER: resource accounts).
    phone_system_plan_exclusions: tuple[str, ...] = ()
    # Calling Plan service plans sold only inside suites (MCOPSTN8 in SPE_E5_CALLINGMINUTES): they make the suite
    # recognised as one that includes a Calling Plan, and satisfy no declared plan.
    suite_calling_plan_service_plans: tuple[str, ...] = ()
    _by_country: dict[tuple[str, str], Offer] = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_part: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_service_plan: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _credits: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)
    _addons: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for plan_id, offers in self.offers.items():
            for offer in offers:
                for country in offer.countries:
                    self._by_country.setdefault((plan_id, country), offer)
                for pn in offer.part_numbers:
                    self._by_part.setdefault(pn.upper(), plan_id)
                for sp in offer.service_plan_names:
                    self._by_service_plan.setdefault(sp.upper(), plan_id)
        object.__setattr__(self, "_credits", frozenset(c.upper() for c in self.communications_credits))
        object.__setattr__(self, "_addons", frozenset(a.upper() for a in self.phone_system_addons))

    def offer_for(self, plan_id: str, country: str) -> Offer | None:
        """The offer of `plan_id` sold in `country` (ISO alpha-2), or None."""
        return self._by_country.get((plan_id, country.upper()))

    def countries_for(self, plan_id: str) -> frozenset[str]:
        return frozenset(c for offer in self.offers.get(plan_id, ()) for c in offer.countries)

    def plan_ids(self) -> tuple[str, ...]:
        return tuple(self.offers)

    def all_offers(self) -> tuple[Offer, ...]:
        return tuple(o for offers in self.offers.values() for o in offers)

    def all_calling_plan_part_numbers(self) -> frozenset[str]:
        """Every Calling Plan skuPartNumber the catalog names, upper-cased."""
        return frozenset(self._by_part)

    def all_calling_plan_service_plans(self) -> frozenset[str]:
        """Service plan names (upper-cased) that identify a Calling Plan SKU whose part number is unverified."""
        return frozenset(self._by_service_plan)

    def is_phone_system_service_plan(self, service_plan_name: str) -> bool:
        name = service_plan_name.upper()
        if not name.startswith(self.phone_system_plan_prefix.upper()):
            return False
        return not any(name.startswith(x.upper()) for x in self.phone_system_plan_exclusions)

    def classify_sku(self, part_number: str, service_plan_names: Iterable[str]) -> tuple[str, str | None] | None:
        """("callingPlan", plan id) | ("phoneSystem", None) for an add-on | ("credits", None) | None (unmanaged).

        A SKU whose service plans include Phone System (E5, MCOTEAMS_ESSENTIALS, Business Voice) is a suite
        or bundle: never managed, even when it also carries a Calling Plan service plan.
        """
        pn = part_number.upper()
        if pn in self._credits:
            return ("credits", None)
        if pn in self._addons:
            return ("phoneSystem", None)
        plan_id = self._by_part.get(pn)
        if plan_id is not None:
            return ("callingPlan", plan_id)
        plans = [s.upper() for s in service_plan_names]
        if any(self.is_phone_system_service_plan(s) for s in plans):
            return None
        for s in plans:
            plan_id = self._by_service_plan.get(s)
            if plan_id is not None:
                return ("callingPlan", plan_id)
        return None

    def sku_matches_offer(self, offer: Offer, part_number: str, service_plan_names: Iterable[str]) -> bool:
        """Whether a tenant SKU provides `offer`.

        By part number; else, only for a SKU whose part number no offer names and that is not a bundle,
        by one of the offer's service plan names. (So the US PAYG SKU, which carries MCOPSTN_PAYG_1, is
        never taken for the UK/Canada zone-1 offer.) Prefer SKUs in `offer.part_numbers` order.
        """
        pn = part_number.upper()
        if any(pn == p.upper() for p in offer.part_numbers):
            return True
        if not offer.service_plan_names or pn in self._by_part or pn in self._credits or pn in self._addons:
            return False
        plans = [s.upper() for s in service_plan_names]
        if any(self.is_phone_system_service_plan(s) for s in plans):
            return False
        wanted = {s.upper() for s in offer.service_plan_names}
        return any(s in wanted for s in plans)

    def is_valid_country(self, code: str) -> bool:
        """Whether `code` is an ISO 3166-1 alpha-2 code (exact, upper case)."""
        return code in self.countries

    def payg_zone_for(self, country: str) -> str | None:
        """The PAYG zone sold in `country`, or None."""
        offer = self.offer_for("payg", country)
        return offer.zone if offer else None

    def to_json(self) -> dict[str, Any]:
        return {
            "plans": {pid: [o.to_json() for o in offers] for pid, offers in self.offers.items()},
            "phoneSystemPlanPrefix": self.phone_system_plan_prefix,
            "phoneSystemPlanExclusions": list(self.phone_system_plan_exclusions),
            "suiteCallingPlanServicePlans": list(self.suite_calling_plan_service_plans),
            "phoneSystemAddons": list(self.phone_system_addons),
            "communicationsCredits": list(self.communications_credits),
            "knownSkuIds": {k: list(v) for k, v in sorted(self.known_sku_ids.items())},
            "sources": list(self.sources),
        }
