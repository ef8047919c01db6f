"""The sentences of the planner's diagnostics: what is wrong, in a Teams admin's words, and what to do. Pure.

Kept in one place so the wording is reviewed together and the tests can pin it.
"""

from __future__ import annotations

BUY = "buy it in the Microsoft 365 admin center > Billing > Purchase services"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def group_list(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def inherited(part: str, groups: str, wish: str, also_direct: bool = False) -> str:
    if also_direct:
        return (
            f"{part} comes from group {groups}, so it cannot be removed from this user ({wish}). The user also "
            "holds it directly, and that copy is kept too: removing it frees no seat (Graph counts the user once). "
            "The license stays while the group grants it: change the group's licenses or remove the user from "
            "the group; a later plan removes the direct copy once the group no longer grants it."
        )
    return (
        f"{part} comes from group {groups}, so it cannot be removed from this user ({wish}). "
        "Change the group's licenses or remove the user from the group."
    )


def phone_system_kept(ps: str, plans: str) -> str:
    return (
        f"keeping {ps}: the user keeps the Calling Plan {plans}, and a Calling Plan needs Phone System. "
        "Change the group's licenses or remove the user from the group, then plan again."
    )


def sku_missing(part: str, what: str) -> str:
    return (
        f"the tenant has no {part} subscription ({what}). To use it, {BUY}; "
        "or, if your tenant calls it differently, name it with `callingPlan: sku:<skuPartNumber>` or a --catalog override."
    )


def phone_system_missing(addon: str, including: list[str]) -> str:
    have = (
        f" A user who holds a license that includes Phone System ({', '.join(including)} in this tenant) needs "
        "no add-on: assign it to the user (this tool never assigns suites or bundles)."
        if including else ""
    )
    return (
        f"the user needs Phone System and holds no license that includes it, and the tenant has no {addon} "
        f"subscription (the add-on policy.phoneSystemSku names). Buy it in the Microsoft 365 admin center > "
        f"Billing > Purchase services, or set policy.phoneSystemSku to the Phone System add-on the tenant has.{have}"
    )


def sku_missing_bundle_only(part: str, what: str, bundles: list[str]) -> str:
    names = " and ".join(bundles)
    return (
        f"the tenant has no {part} subscription ({what}); its {names} includes that Calling Plan with Phone "
        "System, but this tool never assigns bundles (it would also have to remove them). Assign "
        f"{bundles[0]} to the user in the Microsoft 365 admin center or through a group: the plan then counts it "
        f"as the user's Calling Plan. Or {BUY}."
    )


def sku_missing_bundle_off(part: str, what: str, bundles: list[str]) -> str:
    return (
        f"the tenant has no {part} subscription ({what}), and the user's {' and '.join(bundles)}, which includes "
        "that Calling Plan, does not give it: its Calling Plan service plan is switched off (disabledPlans) or the "
        "group assignment is in error. Turn it on for the user in the Microsoft 365 admin center (or fix the "
        f"group's license error); or {BUY}."
    )


def not_a_calling_plan(part: str, kind: str | None) -> str:
    what = {"phoneSystem": "a Phone System add-on", "credits": "Communications Credits"}.get(
        kind or "", "a suite or bundle"
    )
    return f"{part} is {what}, not a Calling Plan; `callingPlan: sku:` must name a Calling Plan SKU."


def location_required(plan_id: str) -> str:
    return (
        f"callingPlan {plan_id} depends on the user's country, and the user has no usage location. "
        "Add `usageLocation: XX` (ISO country code) to the user or to the file's defaults."
    )


def location_required_for_adds() -> str:
    return (
        "licenses can only be assigned to a user with a usage location, and this user has none. "
        "Add `usageLocation: XX` (ISO country code) to the user or to the file's defaults."
    )


def not_in_country(plan_id: str, country: str, countries: list[str]) -> str:
    where = ", ".join(countries) if countries else "no country in the catalog"
    return (
        f"callingPlan {plan_id} is not sold in {country} (the user's usage location). "
        f"It is sold in: {where}. Pick another plan, fix the usage location, or add the country with a --catalog override."
    )


def kept_plan_invalid(part: str, country: str) -> str:
    return (
        f"the user moves to {country}, where their Calling Plan {part} is not sold; its minutes will not work there. "
        "Declare a callingPlan for the user so the plan swaps it."
    )


def payg_unfunded_missing_sku() -> str:
    return (
        "the user gets a Pay-As-You-Go Calling Plan, which cannot make outgoing calls until funded, and the tenant "
        f"has no Communications Credits subscription. Either {BUY} (Communications Credits), or, on new-commerce "
        "billing, set `policy.paygFunding: postUsage`."
    )


def payg_unfunded_declined() -> str:
    return (
        "the user has a Pay-As-You-Go Calling Plan but `communicationsCredits: false`, and policy.paygFunding is "
        "communicationsCredits: they cannot make outgoing calls. Drop `communicationsCredits: false`, or set "
        "`policy.paygFunding: postUsage` if you pay for usage on new-commerce billing."
    )


def account_disabled() -> str:
    return "the account is disabled (sign-in blocked) but the plan assigns it licenses. Check it is meant to be licensed."


def tenant_mismatch(declared: str, tenant_id: str, name: str, domains: list[str]) -> str:
    shown = ", ".join(domains[:5]) + (f" and {len(domains) - 5} more" if len(domains) > 5 else "")
    return (
        f"the manifests are for tenant '{declared}', but this is {name} ({tenant_id}; domains: {shown or 'none'}). "
        "Nothing was planned. Check --tenant / PROVISION_TENANT, or the manifests' `tenant:`."
    )


def user_not_found() -> str:
    return (
        "no user with this userPrincipalName in the tenant. Check the spelling (UPNs are the sign-in names), or "
        "remove the entry if the user has left."
    )


def subscription_not_active(part: str, status: str, users: str) -> str:
    return (
        f"the {part} subscription is {status}: no license can be assigned from it, so it was not planned for "
        f"{users}. Renew or reactivate it in the Microsoft 365 admin center > Billing > Your products."
    )


def subscription_warning(part: str, users: int, who: str = "") -> str:
    named = f" ({who})" if who else ""
    return (
        f"the {part} subscription is in Warning (expired, in its grace period); the plan assigns it to "
        f"{plural(users, 'user')}{named}. Renew it in the Microsoft 365 admin center > Billing > Your products, or they lose it."
    )


def removal_limit(removals: int, limit: int) -> str:
    return (
        f"the plan removes {plural(removals, 'license assignment')}, more than policy.maxRemovals ({limit}). "
        "apply will refuse it unless you pass --allow-removals; check the removals are intended."
    )


def split_pool(country: str, plan_id: str, parts: str) -> str:
    return (
        f"users in {country} with Calling Plan '{plan_id}' are split across different SKUs ({parts}); pooling "
        "is only available on identical Calling Plans, so their minutes no longer pool. Move them to one SKU "
        "(`callingPlan: sku:<skuPartNumber>`)."
    )


def license_error(part: str, source: str, error: str) -> str:
    why = {
        "CountViolation": "there are not enough seats for everyone the group licenses",
        "MutuallyExclusiveViolation": "it conflicts with another license of the user",
        "DependencyViolation": "another license depends on it",
        "ProhibitedInUsageLocationViolation": "it is not allowed in the user's usage location",
    }.get(error, "Graph reports an assignment error")
    fix = (
        "buy more seats or take users out of the group"
        if error == "CountViolation"
        else "fix the group's licenses or the user's licenses"
    )
    return f"{part} from {source} is not active for this user ({error}: {why}); {fix}."


def cp_without_ps(plans: str) -> str:
    return (
        f"the user holds the Calling Plan {plans} without Phone System, and Graph refuses any license change "
        "for them until that is fixed. Declare `phoneSystem: true` (or `callingPlan: none`) for this user."
    )


def calling_plan_in_suite(part: str) -> str:
    return (
        f"the user holds {part}, which includes a Calling Plan; this tool never removes suites or bundles, so "
        "callingPlan: none leaves that plan in place. Remove that license in the Microsoft 365 admin center if "
        "the user must have no Calling Plan, or declare the plan it includes."
    )


def second_calling_plan(part: str, added: str) -> str:
    return (
        f"the user holds {part}, which includes another Calling Plan than the one declared; adding {added} gives "
        f"them two (this tool never removes suites or bundles). Remove {part} in the Microsoft 365 admin center, "
        "or declare the plan it includes."
    )
