"""Reading, checking and merging catalog files (the built-in `catalog.yaml` and user overrides).

Both use one format (documented in docs/manifest.md). An override is merged over the built-in data: top-level
lists replace, `knownSkuIds` merges per part number, and each entry of `plans.<plan id>` updates the offer with
the same `zone` (or adds one). Any problem raises `CatalogError` naming FILE:LINE. Pure apart from reading files.
"""

from __future__ import annotations

import difflib
import os
import re
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from provisioner.catalog.countries import COUNTRIES
from provisioner.catalog.model import Catalog, Offer
from provisioner.errors import CatalogError

BUILTIN_PATH = Path(__file__).with_name("catalog.yaml")

# The plan ids a catalog may define, in display order (CONTRACT §2; "none" is not a plan).
PLAN_IDS: tuple[str, ...] = ("domestic", "domestic-120", "domestic-240", "international", "payg")

_TOP_KEYS = (
    "sources",
    "phoneSystemPlanPrefix",
    "phoneSystemPlanExclusions",
    "suiteCallingPlanServicePlans",
    "phoneSystemAddons",
    "communicationsCredits",
    "knownSkuIds",
    "plans",
)
_OFFER_KEYS = (
    "zone",
    "displayName",
    "partNumbers",
    "servicePlanNames",
    "pooled",
    "source",
    "note",
    "countries",
    "minutes",
)
_OVERRIDE_ONLY_KEYS = ("addCountries", "removeCountries", "remove")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ANY = "*"
_HINT = "Fix the catalog file; see docs/manifest.md, 'The catalog and overrides'."


def load_catalog(override: str | os.PathLike[str] | None = None) -> Catalog:
    """The built-in catalog (parsed once, cached), with `override` (YAML or JSON file) merged over it."""
    if override is None:
        return _builtin()
    path = Path(override)
    doc = _File(path)
    doc.check(override=True)
    return _build(_merge(_builtin_doc(), doc))


@lru_cache(maxsize=1)
def _builtin() -> Catalog:
    return _build(_builtin_doc())


_BUILTIN_DOC: list[dict[str, Any]] = []  # the built-in file checked, as plain data: parsed once


def _builtin_doc() -> dict[str, Any]:
    if not _BUILTIN_DOC:
        doc = _File(BUILTIN_PATH)
        doc.check(override=False)
        _BUILTIN_DOC.append(doc.normalised())
    return _BUILTIN_DOC[0]


def builtin_doc_if_read() -> dict[str, Any] | None:
    """The built-in catalog as plain data, if this process has read it (manifest/background.py sends it)."""
    return _BUILTIN_DOC[0] if _BUILTIN_DOC else None


def adopt_builtin_doc(doc: dict[str, Any]) -> None:
    """Take the built-in catalog as a forked child of this process read it (the same file, by the same
    code), so that this process does not parse it again (manifest/background.py)."""
    if not _BUILTIN_DOC:
        _BUILTIN_DOC.append(doc)


class _File:
    """One catalog file read safely, with its line marks, and its problems as FILE:LINE lines."""

    def __init__(self, path: Path) -> None:
        from provisioner.manifest import safeyaml  # lazy: the manifest package imports the catalog

        self.path = path
        self.problems: list[str] = []
        try:
            self.raw, self.marks = safeyaml.load(path)
        except safeyaml.YamlProblem as exc:
            raise CatalogError(self._fmt(exc.line, exc.message, exc.hint), hint=_HINT) from None
        if self.raw is None:
            self.raw = {}

    def _fmt(self, line: int, message: str, hint: str | None = None) -> str:
        where = f"{self.path}:{line}" if line else str(self.path)
        return f"{where}: {message}" + (f" — {hint}" if hint else "")

    def problem(self, line: int, message: str, hint: str | None = None) -> None:
        self.problems.append(self._fmt(line, message, hint))

    def check(self, *, override: bool) -> None:
        raw = self.raw
        if not isinstance(raw, dict):
            self.problem(self.marks.container_line(raw) or 1, "a catalog file is a mapping (plans:, phoneSystemAddons:, ...)")
            self._raise()
        if "apiVersion" in raw and "kind" in raw:
            self.problem(
                self.marks.key_line(raw, "apiVersion"),
                "this is a manifest, not a catalog file",
                "name manifests as PATH arguments; --catalog takes a catalog override (plans:, ...)",
            )
            self._raise()
        self._keys(raw, _TOP_KEYS, "catalog")
        for key in ("phoneSystemPlanPrefix",):
            if key in raw and not (isinstance(raw[key], str) and raw[key]):
                self.problem(self.marks.value_line(raw, key), f"{key} must be a non-empty string")
        for key in ("sources", "phoneSystemPlanExclusions", "suiteCallingPlanServicePlans", "phoneSystemAddons", "communicationsCredits"):
            if key in raw:
                self._str_list(raw, key)
        if "knownSkuIds" in raw:
            ids = raw["knownSkuIds"]
            if not isinstance(ids, dict):
                self.problem(self.marks.value_line(raw, "knownSkuIds"), "knownSkuIds must map part numbers to lists of GUIDs")
            else:
                for pn, guids in ids.items():
                    line = self.marks.value_line(ids, pn)
                    if not isinstance(guids, list) or not all(isinstance(g, str) and _GUID.match(g.lower()) for g in guids):
                        self.problem(line, f"knownSkuIds.{pn} must be a list of GUIDs (skuId values)")
        if not override:
            for key in _TOP_KEYS:
                if key not in raw:
                    self.problem(1, f"the built-in catalog lacks '{key}'")
        plans = raw.get("plans", {})
        if not isinstance(plans, dict):
            self.problem(self.marks.value_line(raw, "plans"), "plans must map plan ids to lists of offers")
            plans = {}
        for plan_id, offers in plans.items():
            pline = self.marks.key_line(plans, plan_id)
            if plan_id not in PLAN_IDS:
                self.problem(pline, f"unknown plan id '{plan_id}'{_did_you_mean(str(plan_id), PLAN_IDS)}", f"use one of {', '.join(PLAN_IDS)}")
                continue
            if not isinstance(offers, list):
                self.problem(self.marks.value_line(plans, plan_id), f"plans.{plan_id} must be a list of offers")
                continue
            zones: dict[Any, int] = {}
            for offer in offers:
                self._offer(plan_id, offer, override=override, zones=zones)
        self._raise()

    def _raise(self) -> None:
        if self.problems:
            raise CatalogError("\n".join(self.problems), hint=_HINT)

    def _keys(self, mapping: dict[Any, Any], allowed: tuple[str, ...], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.problem(
                    self.marks.key_line(mapping, key),
                    f"unknown key '{key}' in {what}{_did_you_mean(str(key), allowed)}",
                    f"allowed keys: {', '.join(allowed)}",
                )

    def _str_list(self, mapping: dict[Any, Any], key: str) -> bool:
        value = mapping[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(self.marks.value_line(mapping, key), f"{key} must be a list of strings")
            return False
        return True

    def _offer(self, plan_id: str, offer: Any, *, override: bool, zones: dict[Any, int]) -> None:
        if not isinstance(offer, dict):
            self.problem(self.marks.container_line(offer) or 0, f"each entry of plans.{plan_id} must be a mapping")
            return
        line = self.marks.container_line(offer)
        allowed = _OFFER_KEYS + (_OVERRIDE_ONLY_KEYS if override else ())
        self._keys(offer, allowed, f"plans.{plan_id} offer")
        zone = offer.get("zone")
        if zone is not None and not isinstance(zone, str):
            self.problem(self.marks.value_line(offer, "zone"), "zone must be a string or null")
        if zone in zones:
            self.problem(line, f"plans.{plan_id} has two offers for zone {zone!r} (the other at line {zones[zone]})")
        zones[zone] = line
        if not override:
            for key in _OFFER_KEYS:
                if key not in offer:
                    self.problem(line, f"offer plans.{plan_id} zone {zone!r} lacks '{key}'")
        for key in ("displayName", "source", "note"):
            if key in offer and not isinstance(offer[key], str):
                self.problem(self.marks.value_line(offer, key), f"{key} must be a string")
        if "pooled" in offer and not isinstance(offer["pooled"], bool):
            self.problem(self.marks.value_line(offer, "pooled"), "pooled must be true or false")
        if "remove" in offer and not isinstance(offer["remove"], bool):
            self.problem(self.marks.value_line(offer, "remove"), "remove must be true or false")
        for key in ("partNumbers", "servicePlanNames"):
            if key in offer:
                value = offer[key]
                if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                    self.problem(self.marks.value_line(offer, key), f"{key} must be a list of strings")
        for key in ("countries", "addCountries", "removeCountries"):
            if key not in offer:
                continue
            value = offer[key]
            if not isinstance(value, list):
                self.problem(self.marks.value_line(offer, key), f"{key} must be a list of ISO 3166 alpha-2 codes")
                continue
            items = self.marks.seqs.get(id(value), (0, []))[1]
            for i, code in enumerate(value):
                if not isinstance(code, str) or code not in COUNTRIES:
                    where = items[i] if i < len(items) else self.marks.value_line(offer, key)
                    self.problem(where, f"{code!r} is not an ISO 3166 alpha-2 country code{_country_hint(code)}")
        if "minutes" in offer:
            minutes = offer["minutes"]
            if not isinstance(minutes, dict):
                self.problem(self.marks.value_line(offer, "minutes"), "minutes must map countries (or '*') to a number or null")
            else:
                for code, value in minutes.items():
                    mline = self.marks.key_line(minutes, code)
                    if code != _ANY and (not isinstance(code, str) or code not in COUNTRIES):
                        self.problem(mline, f"{code!r} is not an ISO 3166 alpha-2 country code{_country_hint(code)}")
                    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                        self.problem(self.marks.value_line(minutes, code), f"minutes for {code} must be a whole number >= 0 or null")

    def normalised(self) -> dict[str, Any]:
        """The checked file as plain data; each offer carries `_where` (FILE:LINE) for later errors."""
        raw = dict(self.raw)
        plans: dict[str, list[dict[str, Any]]] = {}
        for plan_id, offers in (raw.get("plans") or {}).items():
            plans[plan_id] = []
            for offer in offers:
                entry = dict(offer)
                entry["_where"] = f"{self.path}:{self.marks.container_line(offer)}"
                plans[plan_id].append(entry)
        raw["plans"] = plans
        return raw


def _merge(base: dict[str, Any], doc: _File) -> dict[str, Any]:
    """`base` (normalised) with the override `doc` merged over it; raises CatalogError on conflicts."""
    over = doc.normalised()
    out = {k: v for k, v in base.items() if k != "plans"}
    for key in ("sources", "phoneSystemPlanPrefix", "phoneSystemPlanExclusions", "suiteCallingPlanServicePlans", "phoneSystemAddons",
                "communicationsCredits"):
        if key in over:
            out[key] = over[key]
    # The override adds its sources; it never hides the built-in ones.
    out["sources"] = [*base.get("sources", []), f"OVERRIDE: {doc.path}", *over.get("sources", [])]
    known = {k: list(v) for k, v in base.get("knownSkuIds", {}).items()}
    for pn, guids in over.get("knownSkuIds", {}).items():
        known[pn] = list(guids)
    out["knownSkuIds"] = known
    plans = {pid: [dict(o) for o in offers] for pid, offers in base["plans"].items()}
    for plan_id, offers in over["plans"].items():
        current = plans.setdefault(plan_id, [])
        for patch in offers:
            zone = patch.get("zone")
            target = next((o for o in current if o.get("zone") == zone), None)
            if patch.get("remove"):
                if target is None:
                    doc.problem(int(patch["_where"].rsplit(":", 1)[1]), f"remove: no built-in offer plans.{plan_id} zone {zone!r}")
                else:
                    current.remove(target)
                continue
            if target is None:
                target = {
                    "zone": zone,
                    "displayName": f"{plan_id} ({zone})" if zone else plan_id,
                    "partNumbers": [],
                    "servicePlanNames": [],
                    "pooled": plan_id != "payg",
                    "source": f"override {doc.path}",
                    "note": "",
                    "countries": [],
                    "minutes": {},
                }
                current.append(target)
            for key in ("displayName", "partNumbers", "servicePlanNames", "pooled", "source", "note", "countries"):
                if key in patch:
                    target[key] = patch[key]
            if "minutes" in patch:
                target["minutes"] = {**target.get("minutes", {}), **patch["minutes"]}
            countries = list(target.get("countries", []))
            countries += [c for c in patch.get("addCountries", []) if c not in countries]
            countries = [c for c in countries if c not in set(patch.get("removeCountries", []))]
            target["countries"] = countries
            target["_where"] = patch["_where"]
    out["plans"] = plans
    doc._raise()
    return out


def _build(doc: dict[str, Any]) -> Catalog:
    """The Catalog object; checks the cross-offer rules (one offer per country per plan, unique part numbers)."""
    problems: list[str] = []
    offers: dict[str, tuple[Offer, ...]] = {}
    part_owner: dict[str, tuple[str, str]] = {}
    plan_owner: dict[str, tuple[str, str]] = {}
    for plan_id in sorted(doc["plans"], key=lambda p: PLAN_IDS.index(p)):
        built: list[Offer] = []
        seen: dict[str, str] = {}
        for entry in doc["plans"][plan_id]:
            where = entry.get("_where", "")
            countries = frozenset(entry.get("countries", []))
            raw_minutes = entry.get("minutes", {}) or {}
            minutes: dict[str, int | None] = {}
            for country in sorted(countries):
                if country in raw_minutes:
                    minutes[country] = raw_minutes[country]
                elif _ANY in raw_minutes:
                    minutes[country] = raw_minutes[_ANY]
            for country in sorted(countries):
                if country in seen:
                    problems.append(
                        f"{where}: {country} is in two offers of plan '{plan_id}' (also {seen[country]}) — "
                        "a country has at most one offer per plan id; remove it from one (removeCountries: [...])"
                    )
                seen[country] = where
            for pn in entry.get("partNumbers", []):
                owner = part_owner.get(pn.upper())
                if owner and owner[0] != plan_id:
                    if where.startswith(f"{BUILTIN_PATH}:") and not owner[1].startswith(f"{BUILTIN_PATH}:"):
                        # Blame the override, which the user can edit, not the built-in file.
                        problems.append(
                            f"{owner[1]}: part number {pn} is already a '{plan_id}' SKU ({where}) — a SKU provides one plan"
                        )
                    else:
                        problems.append(
                            f"{where}: part number {pn} is already a '{owner[0]}' SKU ({owner[1]}) — a SKU provides one plan"
                        )
                part_owner[pn.upper()] = (plan_id, where)
            for sp in entry.get("servicePlanNames", []):
                owner = plan_owner.get(sp.upper())
                if owner and owner[0] != plan_id:
                    problems.append(f"{where}: service plan {sp} already identifies a '{owner[0]}' SKU ({owner[1]})")
                plan_owner[sp.upper()] = (plan_id, where)
            built.append(
                Offer(
                    plan_id=plan_id,
                    zone=entry.get("zone"),
                    countries=countries,
                    part_numbers=tuple(entry.get("partNumbers", [])),
                    service_plan_names=tuple(entry.get("servicePlanNames", [])),
                    minutes=MappingProxyType(minutes),
                    pooled=bool(entry.get("pooled", plan_id != "payg")),
                    display_name=str(entry.get("displayName") or plan_id),
                    source=str(entry.get("source", "")),
                    note=" ".join(str(entry.get("note", "")).split()),
                )
            )
        if built:
            offers[plan_id] = tuple(built)
    if problems:
        raise CatalogError("\n".join(problems), hint=_HINT)
    return Catalog(
        offers=MappingProxyType(offers),
        phone_system_plan_prefix=doc["phoneSystemPlanPrefix"],
        phone_system_addons=tuple(doc["phoneSystemAddons"]),
        communications_credits=tuple(doc["communicationsCredits"]),
        known_sku_ids=MappingProxyType({k: tuple(g.lower() for g in v) for k, v in doc["knownSkuIds"].items()}),
        countries=MappingProxyType(COUNTRIES),
        sources=tuple(doc["sources"]),
        phone_system_plan_exclusions=tuple(doc.get("phoneSystemPlanExclusions", ())),
        suite_calling_plan_service_plans=tuple(doc.get("suiteCallingPlanServicePlans", ())),
    )


def _did_you_mean(word: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


_COUNTRY_ALIASES = {"UK": "GB", "EL": "GR", "EN": "GB"}


def _country_hint(code: Any) -> str:
    if isinstance(code, str):
        if code.upper() in COUNTRIES and code != code.upper():
            return f" — did you mean '{code.upper()}'?"
        if code.upper() in _COUNTRY_ALIASES:
            return f" — did you mean '{_COUNTRY_ALIASES[code.upper()]}'?"
    return ""
