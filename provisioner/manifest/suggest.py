""""Did you mean" hints for keys, plan ids, part numbers and country codes. Pure."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

# Codes people write that are not ISO 3166-1 alpha-2, and the code they mean.
COUNTRY_ALIASES: Mapping[str, str] = {"UK": "GB", "EN": "GB", "EL": "GR", "USA": "US", "CAN": "CA", "MEX": "MX"}


def closest(word: str, options: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The option nearest to `word` (case-insensitive), or None when nothing is close."""
    opts = list(options)
    for o in opts:
        if o.lower() == word.lower():
            return o
    lowered = {o.lower(): o for o in opts}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[found[0]] if found else None


def did_you_mean(word: str, options: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """"did you mean 'x'?" or None."""
    found = closest(word, options, cutoff=cutoff)
    return f"did you mean '{found}'?" if found is not None and found != word else None


def country_hint(code: str, countries: Mapping[str, str] | Iterable[str]) -> str:
    """What to write instead of a bad country code."""
    known = countries if isinstance(countries, Mapping) else dict.fromkeys(countries, "")
    upper = code.upper().strip()
    if upper in known and upper != code:
        return f"did you mean '{upper}'? Country codes are upper case"
    if upper in COUNTRY_ALIASES:
        return f"did you mean '{COUNTRY_ALIASES[upper]}'? Use ISO 3166-1 alpha-2 codes"
    return "use an ISO 3166-1 alpha-2 code, e.g. US, GB, DE (`provision catalog` lists where plans are sold)"
