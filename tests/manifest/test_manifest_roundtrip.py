"""Random valid manifests round-trip: load -> dump -> load gives the same users, policy and tenant."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.catalog import load_catalog
from provisioner.manifest import dump_manifest, load_desired
from provisioner.manifest.dump import scalar
from provisioner.model.desired import Desired, DesiredUser, Policy, Source

CATALOG = load_catalog()
# (country, plan) pairs the catalog sells, plus plan-less users and sku: plans.
_SOLD = sorted(
    {(c, pid) for pid in CATALOG.plan_ids() for c in CATALOG.countries_for(pid)}
    | {("US", "sku:MCOPSTN1"), ("GB", "sku:mcopstn_5"), ("US", "sku:MCOPSTN5_US")}
)


@st.composite
def _user(draw: st.DrawFn, i: int) -> DesiredUser:
    local = draw(st.from_regex(r"[a-z][a-z0-9.'_-]{0,10}", fullmatch=True))
    upn = f"{local}{i}@{draw(st.sampled_from(['contoso.com', 'Fabrikam.onmicrosoft.com', 'x.y.no']))}"
    country, plan = draw(st.sampled_from(_SOLD))
    shape = draw(st.sampled_from(["plan", "plan-no-country", "dr", "leaver", "bare", "country-only"]))
    credits = draw(st.sampled_from([None, True, False]))
    if shape == "plan":
        phone = draw(st.sampled_from([None, True]))
        if plan.endswith("payg") or "pay_as_you_go" in plan:
            credits = draw(st.sampled_from([None, True]))
        return DesiredUser(upn, Source("", 0), country, plan, phone, credits)
    if shape == "plan-no-country":
        return DesiredUser(upn, Source("", 0), None, draw(st.sampled_from(["domestic", "payg", "none"])), None, None)
    if shape == "dr":
        return DesiredUser(upn, Source("", 0), country, "none", True, credits)
    if shape == "leaver":
        return DesiredUser(upn, Source("", 0), None, draw(st.sampled_from([None, "none"])), False, draw(st.sampled_from([None, False])))
    if shape == "country-only":
        return DesiredUser(upn, Source("", 0), country, None, None, None)
    return DesiredUser(upn, Source("", 0))


@st.composite
def _desired(draw: st.DrawFn) -> tuple[list[DesiredUser], Policy | None, str | None, dict[str, object]]:
    n = draw(st.integers(0, 12))
    users = [draw(_user(i)) for i in range(n)]
    policy = draw(st.one_of(st.none(), st.builds(
        Policy,
        unlisted=st.sampled_from(["ignore", "remove"]),
        max_removals=st.integers(0, 10_000),
        payg_funding=st.just("postUsage"),
        phone_system_sku=st.sampled_from(["MCOEV", "MCOEV_GOV"]),
    )))
    tenant = draw(st.one_of(st.none(), st.sampled_from(["contoso.onmicrosoft.com", "6f2a1c0e-0000-4000-8000-000000000001"])))
    defaults = draw(st.sampled_from([{}, {"usageLocation": "US"}, {"callingPlan": "none", "phoneSystem": True}]))
    return users, policy, tenant, defaults


def _essence(d: Desired) -> tuple[object, ...]:
    return (
        tuple((u.upn, u.usage_location, u.calling_plan, u.phone_system, u.communications_credits) for u in d.users),
        d.policy,
        d.tenant,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_desired())
def test_load_dump_load_round_trips(tmp_path: Path, case: tuple[list[DesiredUser], Policy | None, str | None, dict[str, object]]) -> None:
    users, policy, tenant, defaults = case
    first_text = dump_manifest(users, tenant=tenant, policy=policy, defaults=defaults, comments={u.upn: "note" for u in users[:2]})
    f = tmp_path / "first.yaml"
    f.write_text(first_text)
    first = load_desired([f])
    # Without defaults, dumping what was loaded gives the same text again (a fixed point) ...
    g = tmp_path / "second.yaml"
    g.write_text(dump_manifest(first.users, tenant=first.tenant, policy=policy))
    second = load_desired([g])
    assert _essence(second) == _essence(first)
    # ... and the first load kept exactly what was dumped, defaults filling only omitted fields.
    expected = []
    for u in sorted(users, key=lambda u: u.key):
        fields = {
            "usage_location": u.usage_location, "calling_plan": u.calling_plan,
            "phone_system": u.phone_system, "communications_credits": u.communications_credits,
        }
        expected.append((u.upn, *fields.values()))
    assert _essence(first)[0] == tuple(expected)
    assert first.policy == (policy or Policy())


def test_dump_quotes_what_another_yaml_reader_would_misread() -> None:
    assert scalar("NO") == '"NO"'  # YAML 1.1 readers take a plain NO for false
    assert scalar("yes") == '"yes"'
    assert scalar("012") == '"012"'
    assert scalar("a: b") == '"a: b"'
    assert scalar("sku:MCOPSTN1") == "sku:MCOPSTN1"
    assert scalar("US") == "US"
    assert scalar(None) == "null" and scalar(True) == "true" and scalar(10) == "10"


def test_dump_output_is_commented_and_deterministic() -> None:
    users = [
        DesiredUser("b@contoso.com", Source("", 0), "GB", "payg", None, True),
        DesiredUser("a@contoso.com", Source("", 0), "US", "domestic"),
    ]
    text = dump_manifest(users, tenant="contoso.com", comments={"B@contoso.com": "Bob Smith\nE5"}, header="Exported.")
    assert text == (
        "# yaml-language-server: $schema=./schema.json\n"
        "# Exported.\n"
        "apiVersion: provisioner/v1\n"
        "kind: TeamsVoiceLicensing\n"
        "tenant: contoso.com\n"
        "users:\n"
        "  - upn: a@contoso.com\n"
        "    usageLocation: US\n"
        "    callingPlan: domestic\n"
        "  # Bob Smith\n"
        "  # E5\n"
        "  - upn: b@contoso.com\n"
        "    usageLocation: GB\n"
        "    callingPlan: payg\n"
        "    communicationsCredits: true\n"
    )
    assert dump_manifest(reversed(users), tenant="contoso.com", comments={"b@contoso.com": "Bob Smith\nE5"}, header="Exported.") == text
