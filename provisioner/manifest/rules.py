"""The manifest rules that need the catalog or several fields: countries, plan ids, availability, funding. Pure.

Each check returns problems as (line, message, hint). Values come from `check.py` (types already right);
`from_defaults` tells which fields a user took from the file's `defaults:`, so a message can say so.
"""

from __future__ import annotations

from typing import Any

from provisioner.catalog import Catalog
from provisioner.manifest.suggest import closest, country_hint, did_you_mean
from provisioner.model.desired import CALLING_PLAN_IDS

SKU_PREFIX = "sku:"


def country_problem(name: str, code: str, catalog: Catalog) -> tuple[str, str] | None:
    if catalog.is_valid_country(code):
        return None
    return f"{name} '{code}' is not an ISO 3166-1 alpha-2 country code", country_hint(code, catalog.countries)


def plan_problem(name: str, plan: str, catalog: Catalog) -> tuple[str, str] | None:
    """A callingPlan value that names no plan id and no Calling Plan SKU the catalog knows."""
    if plan in CALLING_PLAN_IDS:
        return None
    if plan[:4] != SKU_PREFIX and plan[:4].lower() == SKU_PREFIX:
        return f"unknown {name} '{plan}'", f"write the prefix in lower case: '{SKU_PREFIX}{plan[4:]}'"
    if plan.startswith(SKU_PREFIX):
        part = plan[4:].strip()
        known = catalog.all_calling_plan_part_numbers()
        if part.upper() in known:
            return None
        names = sorted({pn for o in catalog.all_offers() for pn in o.part_numbers})
        near = closest(part, names)
        hint = (
            f"did you mean '{SKU_PREFIX}{near}'?"
            if near
            else "name a Calling Plan part number the catalog knows (`provision catalog`), or add it to a catalog "
            "override's partNumbers"
        )
        if not near and part.upper() not in {a.upper() for a in (*catalog.phone_system_addons,
                                                                  *catalog.communications_credits)}:
            hint += (". A bundle or suite that includes Phone System (MCOTEAMS_ESSENTIALS, Business Voice) is "
                     "never a `sku:`: declare the plan it gives (`callingPlan: domestic`) and assign the bundle "
                     "yourself; plans count it")
        if not part:
            return f"{name} '{plan}' names no SKU", f"write {SKU_PREFIX}<skuPartNumber>, e.g. {SKU_PREFIX}MCOPSTN1"
        return f"{name} '{plan}' is not a Calling Plan SKU the catalog knows", hint
    near = did_you_mean(plan, CALLING_PLAN_IDS)
    options = f"use one of {', '.join(CALLING_PLAN_IDS)} or {SKU_PREFIX}<skuPartNumber>"
    return f"unknown {name} '{plan}'", f"{near} ({options})" if near else options


def plan_id_of(plan: str, catalog: Catalog) -> str | None:
    """The catalog plan id a valid callingPlan value stands for (None for `none`)."""
    if plan == "none":
        return None
    if plan.startswith(SKU_PREFIX):
        found = catalog.classify_sku(plan[4:].strip(), ())
        return found[1] if found and found[0] == "callingPlan" else None
    return plan


def availability_problem(plan: str, country: str, catalog: Catalog) -> tuple[str, str] | None:
    """A valid plan (id or sku:) that is not sold in `country`."""
    plan_id = plan_id_of(plan, catalog)
    if plan_id is None:
        return None
    offer = catalog.offer_for(plan_id, country)
    if plan.startswith(SKU_PREFIX):
        part = plan[4:].strip().upper()
        where = sorted(c for o in catalog.offers.get(plan_id, ()) if part in {p.upper() for p in o.part_numbers} for c in o.countries)
        if offer is not None and part in {p.upper() for p in offer.part_numbers}:
            return None
        return (
            f"callingPlan '{plan}' is not sold in {country} ({catalog.countries.get(country, country)})",
            f"that SKU is for {', '.join(where) or 'no country'}; use callingPlan: {plan_id}, which resolves to the "
            f"SKU of the user's country" if offer is not None else f"that SKU is for {', '.join(where) or 'no country'}",
        )
    if offer is not None:
        return None
    sold = sorted(catalog.countries_for(plan_id))
    name = catalog.countries.get(country, country)
    return (
        f"callingPlan '{plan}' is not sold in {country} ({name}), the user's usage location",
        f"{plan} is sold in {', '.join(sold) or 'no country'}; use callingPlan: none (Direct Routing keeps "
        "phoneSystem: true), or a catalog override if your tenant sells it there",
    )


def check_user(
    fields: dict[str, Any],
    from_defaults: frozenset[str],
    catalog: Catalog,
    payg_funding: str,
    plan_checks: bool = True,
) -> list[tuple[str, str, str | None]]:
    """Every rule on one user's effective fields: (field to blame, message, hint) per problem.

    The result depends only on the arguments (not on lines), so callers may memoise it per distinct user shape.
    `plan_checks=False` leaves out the two rules the planner reports as diagnostics with a code (`plan` and
    `apply` load manifests so): a plan not sold in the declared country (plan-not-available-in-country) and a
    Pay-As-You-Go plan declared unfunded (payg-unfunded).
    """
    out: list[tuple[str, str, str | None]] = []

    def origin(key: str) -> str:
        return " (from defaults)" if key in from_defaults else ""

    country = fields.get("usageLocation")
    plan = fields.get("callingPlan")
    phone = fields.get("phoneSystem")
    credits = fields.get("communicationsCredits")
    country_ok = plan_ok = True
    # Values from defaults were checked once at the defaults' own line.
    if country is not None and "usageLocation" not in from_defaults:
        bad = country_problem("usageLocation", country, catalog)
        if bad:
            out.append(("usageLocation", *bad))
            country_ok = False
    if plan is not None and "callingPlan" not in from_defaults:
        bad = plan_problem("callingPlan", plan, catalog)
        if bad:
            out.append(("callingPlan", *bad))
            plan_ok = False
    if plan is not None and plan != "none" and phone is False:
        out.append((
            "phoneSystem",
            f"callingPlan '{plan}'{origin('callingPlan')} needs Phone System, but phoneSystem is false{origin('phoneSystem')}",
            "a Calling Plan is only assigned with Phone System: remove phoneSystem: false, or set callingPlan: none",
        ))
    if credits is True and phone is False:
        out.append((
            "communicationsCredits",
            f"communicationsCredits is true{origin('communicationsCredits')} but phoneSystem is false{origin('phoneSystem')}, "
            "which removes every managed license",
            "set communicationsCredits: false (or remove it), or phoneSystem: true",
        ))
    plan_valid = plan is not None and plan_ok and plan_problem("callingPlan", plan, catalog) is None
    if not plan_checks:
        return out
    if plan is not None and plan_valid and country is not None and country_ok and catalog.is_valid_country(country):
        bad = availability_problem(plan, country, catalog)
        if bad:
            out.append(("callingPlan", bad[0] + origin("callingPlan"), bad[1]))
    if (
        plan is not None
        and plan_valid
        and credits is False
        and payg_funding == "communicationsCredits"
        and plan_id_of(plan, catalog) == "payg"
    ):
        out.append((
            "communicationsCredits",
            f"callingPlan '{plan}' with communicationsCredits: false{origin('communicationsCredits')} leaves the "
            "Pay-As-You-Go plan unfunded (policy.paygFunding is communicationsCredits)",
            "remove communicationsCredits: false, or set policy.paygFunding: postUsage (new commerce billing)",
        ))
    return out
