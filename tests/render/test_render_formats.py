"""Renderers: text (Terraform-like, colour only when asked), markdown (always fits a GitHub comment), JSON
(the promised keys, formatVersion first, stable)."""

from __future__ import annotations

import json

from provisioner.model.plan import (
    Action,
    Diagnostic,
    LicenseRef,
    Plan,
    PoolLine,
    SeatLine,
    UserChange,
    UserState,
)
from provisioner.render import MARKDOWN_LIMIT, _template_dirs, render

EV = LicenseRef("e43b5b99-8dfb-405f-9987-dc307f34bcbd", "MCOEV")
DOM = LicenseRef("0dab259f-bf13-4952-b7f8-7db8f131b28d", "MCOPSTN1")
INTL = LicenseRef("d3b4fe1f-9992-4930-8acb-ca6ec609365e", "MCOPSTN2")


def small_plan() -> Plan:
    actions = (
        Action("a001", "assignLicenses", "u-lee", "lee@contoso.com", remove=(EV, DOM), reason="leaver"),
        Action("a002", "setUsageLocation", "u-sam", "sam@contoso.com", None, "US", reason="usage location"),
        Action("a003", "assignLicenses", "u-sam", "sam@contoso.com", add=(EV, DOM), depends_on=("a002",)),
        Action("a004", "assignLicenses", "u-bob", "bob@contoso.com", add=(INTL,), remove=(DOM,)),
    )
    users = (
        UserChange("bob@contoso.com", "u-bob", UserState("US", ("MCOEV", "MCOPSTN1")), UserState("US", ("MCOEV", "MCOPSTN2")),
                   "m.yaml:4", "callingPlan international"),
        UserChange("erin@contoso.com", "u-erin", UserState("US", (), ("MCOPSTN1",)), UserState("US", (), ("MCOPSTN1",)),
                   "m.yaml:9", "callingPlan none", ("CountViolation on MCOPSTN1 (group 'Sales | Voice')",)),
        UserChange("lee@contoso.com", "u-lee", UserState("US", ("MCOEV", "MCOPSTN1")), UserState("US", ()),
                   "m.yaml:12", "phoneSystem false"),
        UserChange("sam@contoso.com", "u-sam", UserState(None, ()), UserState("US", ("MCOEV", "MCOPSTN1")),
                   "m.yaml:15", "usageLocation US, callingPlan domestic"),
    )  # fmt: skip
    return Plan(
        "tid",
        "Contoso",
        "sha256:abc",
        actions=actions,
        diagnostics=(Diagnostic("warning", "inherited-license", "MCOPSTN1 comes from group 'Sales | Voice'.", "erin@contoso.com", "m.yaml:9"),),
        seats=(SeatLine("MCOEV", EV.sku_id, 10, 9, 9), SeatLine("MCOPSTN2", INTL.sku_id, 3, 3, 4)),
        pools=(PoolLine("US", "MCOPSTN1", 3, 2, 9000, 6000, DOM.sku_id), PoolLine("US", "PAYG", 1, 1, None, None, "x", pooled=False)),
        users=users,
    )  # fmt: skip


def test_text_is_terraform_like_per_user_with_a_summary_line() -> None:
    text = render(small_plan(), "text")
    assert "\x1b[" not in text
    assert "  ~ bob@contoso.com\n      + MCOPSTN2  (a004)\n      - MCOPSTN1  (a004)\n" in text
    assert "  - lee@contoso.com\n      - MCOEV  (a001)\n      - MCOPSTN1  (a001)\n" in text
    assert "  ~ sam@contoso.com\n      ~ usageLocation: (none) → US  (a002)\n      + MCOEV  (a003)\n" in text
    assert "  ! erin@contoso.com\n      ! CountViolation on MCOPSTN1 (group 'Sales | Voice')\n" in text
    assert "warning [inherited-license] erin@contoso.com (m.yaml:9): MCOPSTN1 comes from group" in text
    # only the SKUs whose count changes are listed in the terminal view; an overrun is flagged
    assert "MCOPSTN2" in text.split("Seats the plan changes:")[1] and "over" in text
    assert "MCOEV " not in text.split("Seats the plan changes:")[1]
    assert text.rstrip().endswith(
        "Plan: 4 changes for 3 users: 3 licenses to add, 3 to remove, 1 usage location to set."
    )


def test_colour_only_when_asked() -> None:
    plain = render(small_plan(), "text", color=False)
    coloured = render(small_plan(), "text", color=True)
    assert "\x1b[" not in plain
    assert "\x1b[32m+\x1b[0m MCOPSTN2" in coloured and "\x1b[31m-\x1b[0m MCOPSTN1" in coloured
    assert "\x1b[33;1mwarning\x1b[0m" in coloured


def test_markdown_has_summary_diagnostics_on_top_tables_and_folded_changes() -> None:
    md = render(small_plan(), "markdown")
    order = [
        md.index(x)
        for x in (
            "| Actions |",
            "### Diagnostics",
            "### Drift by user",
            "<details>",
            "### Seats",
            "### Calling Plan minute pools",
        )
    ]
    assert order == sorted(order)
    assert "| 4 | 3 | 3 | 3 | 1 | 0 | 1 |" in md
    # drift view: manifest says / tenant has / after / broken; pipes inside cells are escaped
    assert ("| `erin@contoso.com` | callingPlan none | US: MCOPSTN1 (group) | US: MCOPSTN1 (group) | "
            "CountViolation on MCOPSTN1 (group 'Sales \\| Voice') |") in md  # fmt: skip
    assert "| `MCOPSTN2` | 3 | 3 | 4 ⚠️ |" in md
    assert (
        "| US | `MCOPSTN1` | 3 → 2 | 9,000 → 6,000 |" in md and "| US | `PAYG` | 1 → 1 | not pooled |" in md
    )
    assert "```diff\n~ bob@contoso.com\n+     MCOPSTN2  (a004)\n-     MCOPSTN1  (a004)\n" in md


def big_plan(users: int, diagnostics: int) -> Plan:
    actions = tuple(
        Action(f"a{i + 1:06d}", "assignLicenses", f"id{i}", f"user{i:06d}.with.a.long.name@contoso.com", add=(EV, DOM),
               reason="Calling Plan domestic (US) → MCOPSTN1; Phone System → MCOEV")
        for i in range(users)
    )  # fmt: skip
    changes = tuple(
        UserChange(f"user{i:06d}.with.a.long.name@contoso.com", f"id{i}", UserState("US", ()), UserState("US", ("MCOEV", "MCOPSTN1")),
                   f"manifests/us.yaml:{i * 3 + 5}", "usageLocation US, callingPlan domestic, phoneSystem true (implied)")
        for i in range(users)
    )  # fmt: skip
    diags = tuple(
        Diagnostic("error", "user-not-found", "no user with this userPrincipalName in the tenant. Check the spelling.",
                   f"ghost{i:05d}@contoso.com", f"manifests/us.yaml:{i}")
        for i in range(diagnostics)
    )  # fmt: skip
    return Plan("tid", "Contoso", "sha256:abc", actions=actions, diagnostics=diags, users=changes,
                seats=(SeatLine("MCOEV", EV.sku_id, 100000, 1, users + 1),))  # fmt: skip


def test_markdown_always_fits_a_github_comment_and_says_what_was_cut() -> None:
    md = render(big_plan(20_000, 3_000), "markdown")
    assert len(md) < MARKDOWN_LIMIT
    assert "Plan: 20000 changes for 20000 users" in md  # the summary survives
    assert "### Seats" in md and "| `MCOEV` |" in md  # and the seat table
    assert "more users, in the JSON plan" in md and "more diagnostics, in the JSON plan" in md
    shown = md.count("| `user0")
    hidden = int(md.split("_…and ")[-1].split(" more users")[0].replace(",", ""))
    assert shown > 10 and shown + hidden == 20_000
    assert "ghost00000@contoso.com" in md  # diagnostics are cut from the end, the first ones stay


def test_markdown_of_a_small_plan_is_not_cut() -> None:
    md = render(small_plan(), "markdown")
    assert "more users" not in md and "more diagnostics" not in md


def test_json_is_the_promised_plan_format_with_stable_order() -> None:
    p = small_plan()
    text = render(p, "json")
    assert text == render(p, "json")
    doc = json.loads(text)
    assert list(doc)[:10] == ["formatVersion", "tenant", "fingerprint", "hasChanges", "summary", "actions",
                              "diagnostics", "seats", "pools", "users"]  # fmt: skip
    assert doc["formatVersion"] == 1 and doc["hasChanges"] is True
    assert doc["summary"] == {
        "actions": 4,
        "usersChanged": 3,
        "licensesAdded": 3,
        "licensesRemoved": 3,
        "usageLocationsSet": 1,
    }
    a = doc["actions"][2]
    assert a == {"id": "a003", "type": "assignLicenses", "user": {"id": "u-sam", "upn": "sam@contoso.com"},
                 "add": [{"skuId": EV.sku_id, "skuPartNumber": "MCOEV"}, {"skuId": DOM.sku_id, "skuPartNumber": "MCOPSTN1"}],
                 "remove": [], "dependsOn": ["a002"], "reason": ""}  # fmt: skip
    assert doc["actions"][1]["usageLocation"] == {"from": None, "to": "US"}
    assert set(doc["diagnostics"][0]) == {"severity", "code", "message", "upn", "source"}
    assert set(doc["seats"][0]) >= {"skuPartNumber", "enabled", "consumed", "after"}
    assert set(doc["pools"][0]) >= {
        "country",
        "skuPartNumber",
        "usersBefore",
        "usersAfter",
        "minutesBefore",
        "minutesAfter",
    }
    assert Plan.from_dict(doc).to_dict() == doc


def test_templates_are_found_in_the_checkout() -> None:
    dirs = _template_dirs()
    assert dirs and all(d.endswith(("templates", "_templates")) for d in dirs)
