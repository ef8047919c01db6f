"""`provision catalog`: print the Calling Plan catalog (built-in, or with an override) as a table or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from provisioner.catalog import Catalog


def run(format: str = "text", catalog: Path | str | None = None) -> int:
    """Print the catalog; a bad override raises CatalogError (the CLI prints it and exits 1)."""
    from provisioner.catalog import load_catalog

    cat = load_catalog(catalog)
    if format == "json":
        sys.stdout.write(json.dumps(cat.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(cat))
    return 0


def _minutes(values: set[int | None]) -> str:
    if values == {0}:
        return "0 (pay per minute)"
    known = sorted(v for v in values if v is not None)
    text = "/".join(str(v) for v in known)
    if None in values:
        text = f"{text} (some unknown)" if text else "unknown"
    return text


def render_text(cat: Catalog) -> str:
    """One row per offer (plan id, zone), then the Phone System and Communications Credits SKUs."""
    rows = [("PLAN", "ZONE", "SKU PART NUMBERS", "MINUTES/USER", "POOLED", "COUNTRIES")]
    for plan_id in cat.plan_ids():
        for offer in cat.offers[plan_id]:
            parts = ", ".join(offer.part_numbers) or (
                "service plan " + ", ".join(offer.service_plan_names) if offer.service_plan_names else "(name it in an override)"
            )
            minutes = _minutes({offer.minutes_for(c) for c in offer.countries})
            rows.append((plan_id, offer.zone or "-", parts, minutes, "yes" if offer.pooled else "no",
                         " ".join(sorted(offer.countries))))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5] for r in rows]
    lines.append("")
    lines.append("Phone System add-ons: " + ", ".join(cat.phone_system_addons))
    lines.append(f"Phone System is also provided by any license with an enabled {cat.phone_system_plan_prefix}* service plan "
                 "(e.g. Microsoft 365 E5); such suites are never changed.")
    lines.append("Communications Credits: " + ", ".join(cat.communications_credits))
    lines.append("SKUs are found in the tenant by part number at run time; `provision catalog --format json` has "
                 "sources and notes.")
    return "\n".join(line.rstrip() for line in lines) + "\n"
