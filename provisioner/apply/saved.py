"""Recognise and read a saved plan file (`provision plan --out`). Reads one file; no tenant access.

`apply` takes either one saved plan or manifests. A saved plan is a JSON object with `formatVersion`;
anything else (YAML, a folder, several paths) is a manifest set and goes to the manifest loader.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from provisioner.errors import PlanError
from provisioner.model.plan import Plan

_PARSED: dict[Path, dict[str, Any]] = {}  # saved_plan_path's parse of the plan, for load_saved_plan
_LONG_NUMBER = re.compile(rb"[0-9]{19,}")  # 19 digits or more: a number that may not fit 64 bits


def saved_plan_path(paths: Sequence[Path]) -> Path | None:
    """The plan file when `paths` is exactly one file holding a JSON object with `formatVersion`, else None.

    A saved plan mixed with other paths is an error: apply takes one plan, or manifests, never both.
    """
    plans: list[tuple[Path, dict[str, Any]]] = []
    for p in paths:
        if not p.is_file():
            continue
        doc = _json_object(p)
        if doc is None and (why := _damaged_plan(p)):
            raise PlanError(
                f"{p}: this looks like a saved plan, but it is not valid JSON ({why}); it may be cut short",
                hint="Nothing was changed. Save it again with `provision plan MANIFESTS --out PLANFILE`.",
            )
        if doc is not None and "formatVersion" in doc:
            plans.append((p, doc))
    if plans and len(paths) > 1:
        raise PlanError(
            f"{plans[0][0]} is a saved plan; apply takes one saved plan, or manifests, not both",
            hint="Run `provision apply PLANFILE`, or `provision apply MANIFESTS...` to plan afresh.",
        ).as_usage()
    _PARSED.clear()
    if not plans:
        return None
    _PARSED[plans[0][0]] = plans[0][1]  # for load_saved_plan: a 10,000-change plan is 14 MB of JSON
    return plans[0][0]


def load_saved_plan(path: Path) -> Plan:
    """The Plan in `path`; PlanError naming the file when it is not a plan this version can apply."""
    doc = _PARSED.pop(path, None) or _json_object(path)
    if doc is None or "formatVersion" not in doc:
        raise PlanError(
            f"{path}: not a saved plan (a JSON object with formatVersion)",
            hint="Save one with `provision plan MANIFESTS --out PLANFILE`.",
        )
    try:
        plan = Plan.from_dict(doc)
    except ValueError as exc:  # an unknown formatVersion
        raise PlanError(f"{path}: {exc}", hint="Plan again with this version of provision.") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        what = f"the key {exc} is missing" if isinstance(exc, KeyError) else "a value has the wrong type"
        raise PlanError(
            f"{path}: the saved plan is damaged or incomplete ({what})",
            hint="Nothing was changed. Save it again with `provision plan MANIFESTS --out PLANFILE`.",
        ) from exc
    problems = integrity_problems(plan)
    if problems:
        raise edited_plan_error(problems, f"{path}: ")
    return plan


def edited_plan_error(problems: Sequence[str], where: str = "") -> PlanError:
    """The refusal of a plan no planner wrote (damaged or edited), naming its first ten problems."""
    listed = "\n".join(f"  {p}" for p in problems[:10]) + (
        f"\n  and {len(problems) - 10} more" if len(problems) > 10 else "")
    return PlanError(
        f"{where}the saved plan is not one `provision plan` made (damaged or edited):\n{listed}",
        hint="Nothing was changed. Save it again with `provision plan MANIFESTS --out PLANFILE`.",
    )


_TYPES = ("setUsageLocation", "assignLicenses")


def integrity_problems(plan: Plan) -> list[str]:
    """What a planner never writes: unknown action types or ids, repeated ids, an action on a user the plan
    recorded no preconditions for (apply could not check it is still true), licenses to change that are
    empty or named twice. Pure; the SKU ids against the tenant are checked with the stale check."""
    out: list[str] = []
    ids: set[str] = set()
    checked = {p.user_id for p in plan.user_preconditions}
    for a in plan.actions:
        if a.id in ids:
            out.append(f"action id {a.id!r} is used twice")
        if a.type not in _TYPES:
            out.append(f"action {a.id}: unknown type {a.type!r} (a plan has {' and '.join(_TYPES)} only)")
        unknown = [d for d in a.depends_on if d not in ids]
        if unknown:
            out.append(f"action {a.id}: dependsOn {', '.join(unknown)}, which is no earlier action of the plan")
        if len(set(a.depends_on)) != len(a.depends_on):
            out.append(f"action {a.id}: dependsOn names an action twice")
        if a.type == "setUsageLocation" and not a.usage_location_to:
            out.append(f"action {a.id}: setUsageLocation to no usage location")
        if plan.user_preconditions and a.user_id not in checked:
            out.append(f"action {a.id}: user {a.upn} has no recorded preconditions, so apply cannot check them")
        if a.type == "assignLicenses" and not (a.add or a.remove):
            out.append(f"action {a.id}: assignLicenses with nothing to add or remove")
        refs = [r.sku_id.lower() for r in (*a.add, *a.remove)]
        if len(refs) != len(set(refs)):
            out.append(f"action {a.id}: a license is named twice")
        ids.add(a.id)
    return out


def _damaged_plan(path: Path) -> str | None:
    """Why a file that opens like a saved plan (a JSON object naming formatVersion early on) does not parse."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
        if not head.lstrip().startswith(b"{") or b'"formatVersion"' not in head:
            return None
        json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return str(exc)
    return None


def _json_object(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as f:
            # Cheap sniff: YAML manifests do not start with "{"; do not parse them as JSON.
            if not f.read(4096).lstrip().startswith(b"{"):
                return None
        data = path.read_bytes()
        doc = None
        if _LONG_NUMBER.search(data) is None:  # orjson reads integers beyond 64 bits as floats; json exactly
            with contextlib.suppress(orjson.JSONDecodeError):  # json reads what orjson refuses (NaN, ...)
                doc = orjson.loads(data)  # ~5x json's speed: a 10,000-change plan is 14 MB
        if doc is None:
            doc = json.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def plan_catalog(plan: Plan, override: Path | None) -> Any:
    """The catalog `apply PLANFILE` judges managed licenses by: the override the plan was made with (recorded
    in it as `catalog: {path, sha256}`), `--catalog` when given, else the built-in one. A recorded file that is
    missing, changed, or another than `--catalog` is refused before any change: the plan's idea of which
    licenses the tool manages would not be the one checked."""
    from provisioner.catalog import load_catalog
    from provisioner.pipeline import file_sha256

    rec = plan.extra.get("catalog")
    if rec is not None and not (
        isinstance(rec, dict) and isinstance(rec.get("path"), str) and isinstance(rec.get("sha256"), str)
    ):
        raise PlanError("the saved plan's `catalog` is damaged (it records {path, sha256} of a catalog override)",
                        hint="Nothing was changed. Save it again with `provision plan MANIFESTS --out PLANFILE`.")
    if rec is None:
        return load_catalog(override) if override is not None else None
    path = override if override is not None else Path(rec["path"])
    try:
        digest = file_sha256(path)
    except OSError:
        raise PlanError(
            f"the plan was made with the catalog override {rec['path']}, which is not here ({path.absolute()})",
            hint="Nothing was changed. Run apply from the folder the plan was made in, or pass "
            "--catalog PATH to that file.",
        ) from None
    if digest != rec["sha256"]:
        made = f"the catalog override the plan was made with ({rec['path']}, sha256 {rec['sha256'][:12]}…)"
        raise PlanError(
            f"--catalog {override} is not {made}" if override is not None
            else f"{made} changed since: its sha256 is now {digest[:12]}…",
            hint="Nothing was changed. Plan again with the catalog you mean (`provision plan ... --out PLANFILE`), "
            "or pass --catalog with the file the plan was made with.",
        )
    return load_catalog(path)
