"""Which service plans make a license a Calling Plan or Phone System: the facts rules and state share. Pure.

From reference/teams-licensing.md §1 and the PSTN usage report's capability list. Communications Credits
(MCOPSTNC) and MCOPSTN3 (MCOPSTNPP) are funding, not Calling Plans.
"""

from __future__ import annotations

from collections.abc import Iterable

CALLING_PLAN_PLANS = frozenset({
    "MCOPSTN1", "MCOPSTN2", "MCOPSTN5", "MCOPSTN6", "MCOPSTN8", "MCOPSTN9", "PSTN5_US",
    "MCOPSTN_PAYG_1", "MCOPSTN_PAYG_2", "MCOPSTN1_GOV", "MCOPSTNEAU",
})
PHONE_SYSTEM_PREFIX = "MCOEV"  # MCOEV, MCOEV_GOV, MCOEV_VIRTUALUSER, MCOEVSMB ...
MCOEV_PLAN_ID = "4828c8ec-dc2e-4779-b502-87ac9ce28ab7"


def lacks_phone_system(enabled_plan_names: Iterable[str]) -> bool:
    """True when the enabled plans include a Calling Plan but no Phone System (MCOEV*) plan."""
    names = set(enabled_plan_names)
    return bool(names & CALLING_PLAN_PLANS) and not any(n.startswith(PHONE_SYSTEM_PREFIX) for n in names)
