"""Recognise and read a saved plan file (`provision plan --out`). Reads one file; no tenant access.

`apply` takes either one saved plan or manifests. A saved plan is a JSON object with `formatVersion`;
anything else (YAML, a folder, several paths) is a manifest set and goes to the manifest loader.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provisioner.errors import PlanError
from provisioner.model.plan import Plan


def saved_plan_path(paths: Sequence[Path]) -> Path | None:
    """The plan file when `paths` is exactly one file holding a JSON object with `formatVersion`, else None.

    A saved plan mixed with other paths is an error: apply takes one plan, or manifests, never both.
    """
    plans = [p for p in paths if p.is_file() and "formatVersion" in (_json_object(p) or {})]
    if plans and len(paths) > 1:
        raise PlanError(
            f"{plans[0]} is a saved plan; apply takes one saved plan, or manifests, not both",
            hint="Run `provision apply PLANFILE`, or `provision apply MANIFESTS...` to plan afresh.",
        )
    return plans[0] if plans else None


def load_saved_plan(path: Path) -> Plan:
    """The Plan in `path`; PlanError naming the file when it is not a plan this version can apply."""
    doc = _json_object(path)
    if doc is None or "formatVersion" not in doc:
        raise PlanError(
            f"{path}: not a saved plan (a JSON object with formatVersion)",
            hint="Save one with `provision plan MANIFESTS --out PLANFILE`.",
        )
    try:
        return Plan.from_dict(doc)
    except ValueError as exc:  # an unknown formatVersion
        raise PlanError(f"{path}: {exc}", hint="Plan again with this version of provision.") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise PlanError(
            f"{path}: the saved plan is damaged or incomplete (missing or wrong {exc})",
            hint="Nothing was changed. Save it again with `provision plan MANIFESTS --out PLANFILE`.",
        ) from exc


def _json_object(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as f:
            # Cheap sniff: YAML manifests do not start with "{"; do not parse them as JSON.
            if not f.read(4096).lstrip().startswith(b"{"):
                return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
