"""The manifest format (CONTRACT §2) as pydantic v2 models: the source of `provision schema`. Pure.

Field names are the YAML keys (camelCase). Every optional field defaults to None, which means *omitted*:
the loader tells omitted from an explicit value with `model_fields_set`. Validation is strict (no "10" -> 10
coercion) and forbids unknown keys. Rules that need the catalog or several users (UPN shape, ISO country,
plan availability, duplicates) are checked by `provisioner.manifest.rules`, with the same messages
whether a file was validated through these models or the fast path.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from provisioner.model.desired import API_VERSION, CALLING_PLAN_IDS, KIND

__all__ = ["API_VERSION", "KIND", "ManifestModel", "json_schema", "json_schema_text"]

_CALLING_PLAN_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "enum": list(CALLING_PLAN_IDS)},
        {"type": "string", "pattern": r"^sku:[A-Za-z0-9_().\-]+$", "description": "A tenant SKU by skuPartNumber."},
        {"type": "null", "description": "Explicit null: not managed (opts out of a file default)."},
    ],
    "description": (
        "none | domestic | domestic-120 | domestic-240 | international | payg | sku:<skuPartNumber>. "
        "The Calling Plan country is the user's usage location; payg resolves to the zone of that country."
    ),
}
# Checked by the rules (with "did you mean"), so the model itself accepts any string here.
CallingPlanField = Annotated[str | None, WithJsonSchema(_CALLING_PLAN_SCHEMA)]
_COUNTRY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "pattern": "^[A-Z]{2}$"}, {"type": "null"}],
    "description": "ISO 3166-1 alpha-2 country code, upper case (GB, not UK). The Calling Plan country. "
    "Explicit null: not managed.",
}
CountryField = Annotated[str | None, WithJsonSchema(_COUNTRY_SCHEMA)]

_STRICT = ConfigDict(extra="forbid", strict=True)


class PolicyModel(BaseModel):
    """Tenant-wide rules. Must be identical in every file that sets them."""

    model_config = ConfigDict(**_STRICT, title="Policy")

    unlisted: Literal["ignore", "remove"] | None = Field(
        None,
        description="Users holding managed licenses directly but declared in no manifest: "
        "ignore (default) leaves them; remove takes those licenses away.",
    )
    maxRemovals: int | None = Field(
        None,
        ge=0,
        description="apply refuses a plan that removes more license assignments than this, unless --allow-removals. "
        "Default 10.",
    )
    paygFunding: Literal["communicationsCredits", "postUsage"] | None = Field(
        None,
        description="How Pay-As-You-Go plans are funded: communicationsCredits (default; payg users get "
        "Communications Credits) or postUsage (new commerce billing: no credits needed).",
    )
    phoneSystemSku: str | None = Field(
        None,
        min_length=1,
        description="The Phone System add-on assigned when a user needs Phone System and no license provides it. "
        "Default MCOEV.",
    )


class DefaultsModel(BaseModel):
    """Values for every user entry of this file that omits the field. Per file."""

    model_config = ConfigDict(**_STRICT, title="Defaults")

    usageLocation: CountryField = Field(None, description="Default usage location.")
    callingPlan: CallingPlanField = Field(None, description="Default Calling Plan.")
    phoneSystem: bool | None = Field(None, description="Default Phone System wish.")
    communicationsCredits: bool | None = Field(None, description="Default Communications Credits wish.")


class UserModel(BaseModel):
    """One user. An omitted field (and no default) is not managed: the tool leaves it as it is.
    An explicit null opts the user out of a file default."""

    model_config = ConfigDict(**_STRICT, title="User")

    upn: str = Field(description="userPrincipalName, compared case-insensitively.", min_length=1)
    usageLocation: CountryField = Field(
        None, description="ISO 3166-1 alpha-2; the Calling Plan country. Set before any license is added."
    )
    callingPlan: CallingPlanField = Field(None)
    phoneSystem: bool | None = Field(
        None,
        description="true: ensure Phone System (Direct Routing users: true with callingPlan none). "
        "false: no managed license directly assigned. Defaults to true when callingPlan is not none.",
    )
    communicationsCredits: bool | None = Field(
        None,
        description="Ensure (true) or remove (false) Communications Credits. payg with "
        "paygFunding=communicationsCredits implies true.",
    )


class ManifestModel(BaseModel):
    """A `TeamsVoiceLicensing` manifest file."""

    model_config = ConfigDict(**_STRICT, title="TeamsVoiceLicensing manifest")

    apiVersion: Literal["provisioner/v1"] = Field(description="Always provisioner/v1.")
    kind: Literal["TeamsVoiceLicensing"] = Field(description="Always TeamsVoiceLicensing.")
    tenant: str | None = Field(
        None,
        min_length=1,
        description="Optional guard: tenant id or any verified domain. Planning against another tenant is an error.",
    )
    catalog: str | None = Field(
        None,
        min_length=1,
        description="A catalog override file (YAML/JSON), relative to this manifest. --catalog takes precedence.",
    )
    policy: PolicyModel | None = None
    defaults: DefaultsModel | None = None
    users: list[UserModel] | None = Field(None, description="The users this file declares.")


def json_schema() -> dict[str, Any]:
    """The manifest JSON Schema (draft 2020-12), deterministic."""
    schema = ManifestModel.model_json_schema(ref_template="#/$defs/{model}")
    # No $id: the project publishes the schema as manifests/schema.json, not at a URL of its own.
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return json.loads(json.dumps(schema, sort_keys=True))


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
