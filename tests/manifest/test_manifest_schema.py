"""The JSON Schema comes from the pydantic model, is checked in up to date, and the fast checker agrees with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from provisioner.manifest import check, json_schema, json_schema_text
from provisioner.manifest.model import DefaultsModel, ManifestModel, PolicyModel, UserModel
from provisioner.manifest.safeyaml import loads

REPO = Path(__file__).resolve().parents[2]


def test_checked_in_schema_is_up_to_date() -> None:
    checked_in = (REPO / "manifests" / "schema.json").read_text(encoding="utf-8")
    assert checked_in == json_schema_text(), "manifests/schema.json is stale: run `provision schema > manifests/schema.json`"


def test_schema_forbids_unknown_keys_and_documents_every_field() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"apiVersion", "kind"}
    for name in ("User", "Policy", "Defaults"):
        definition = next(d for d in schema["$defs"].values() if d["title"] == name)
        assert definition["additionalProperties"] is False
    user = next(d for d in schema["$defs"].values() if d["title"] == "User")
    assert user["required"] == ["upn"]
    assert "sku:" in json.dumps(user["properties"]["callingPlan"])


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (ManifestModel, check.TOP_FIELDS),
        (PolicyModel, check.POLICY_FIELDS),
        (DefaultsModel, check.DEFAULT_FIELDS),
        (UserModel, check.USER_FIELDS),
    ],
)
def test_fast_checker_knows_exactly_the_model_fields(model: Any, fields: dict[str, str]) -> None:
    assert list(model.model_fields) == list(fields)


_DOCS = [
    ("ok", "users:\n  - upn: a@b.c\n    phoneSystem: true\n"),
    ("ok", "policy:\n  unlisted: remove\n  maxRemovals: 0\n  paygFunding: postUsage\n  phoneSystemSku: MCOEV\n"),
    ("ok", "defaults:\n  usageLocation: null\nusers: []\n"),
    ("ok", "tenant: contoso.com\ncatalog: c.yaml\n"),
    ("bad", "users:\n  - upn: a@b.c\n    phoneSystem: 'true'\n"),
    ("bad", "users:\n  - upn: a@b.c\n    extra: 1\n"),
    ("bad", "users:\n  - phoneSystem: true\n"),
    ("bad", "policy:\n  maxRemovals: '3'\n"),
    ("bad", "policy:\n  maxRemovals: -1\n"),
    ("bad", "policy:\n  unlisted: keep\n"),
    ("bad", "policy: [1]\n"),
    ("bad", "users: {}\n"),
    ("bad", "tenant: 5\n"),
    ("bad", "defaults:\n  phoneSystem: 1\n"),
    ("bad", "nope: 1\n"),
]


@pytest.mark.parametrize(("expected", "body"), _DOCS)
def test_fast_checker_and_pydantic_accept_the_same_shapes(expected: str, body: str) -> None:
    raw, marks = loads("apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\n" + body)
    fast_ok = not check.check_file("m.yaml", raw, marks).problems
    try:
        ManifestModel.model_validate(raw)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert (fast_ok, model_ok) == (expected == "ok", expected == "ok")
