"""One test per manifest rule and error message: the exact text and its FILE:LINE are asserted."""

from __future__ import annotations

from pathlib import Path

from manifest.helpers import ok, only_problem, problems, write
from provisioner.manifest import fastyaml, safeyaml
from provisioner.model.desired import Policy


def test_a_valid_manifest_gives_desired_users_with_sources(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", """
        users:
          - upn: Alice@Contoso.com
            usageLocation: US
            callingPlan: domestic
          - upn: carol@contoso.com
            phoneSystem: true
            callingPlan: none
        """)
    desired = ok(f)
    assert [u.upn for u in desired.users] == ["Alice@Contoso.com", "carol@contoso.com"]
    alice, carol = desired.users
    assert (alice.usage_location, alice.calling_plan, alice.phone_system) == ("US", "domestic", None)
    assert alice.wants_phone_system is True  # implied by the Calling Plan
    assert str(alice.source) == f"{f}:4"
    assert (carol.usage_location, carol.calling_plan, carol.phone_system) == (None, "none", True)
    assert desired.policy == Policy() and desired.tenant is None and desired.files == (str(f),)


def test_omitted_fields_stay_none_and_explicit_null_opts_out_of_a_default(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", """
        defaults:
          usageLocation: GB
          callingPlan: domestic
        users:
          - upn: a@contoso.com
          - upn: b@contoso.com
            callingPlan: null
          - upn: c@contoso.com
            callingPlan: payg
        """)
    a, b, c = ok(f).users
    assert (a.usage_location, a.calling_plan, a.communications_credits) == ("GB", "domestic", None)
    assert (b.usage_location, b.calling_plan) == ("GB", None)
    assert c.calling_plan == "payg"


def test_defaults_are_per_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "defaults:\n  usageLocation: GB\nusers:\n  - upn: a@contoso.com\n")
    write(tmp_path, "b.yaml", "users:\n  - upn: b@contoso.com\n")
    a, b = ok(tmp_path).users
    assert a.usage_location == "GB" and b.usage_location is None


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    usageLocaton: US\n")
    assert only_problem(f) == f"{f}:5: unknown key 'usageLocaton' in a user entry — did you mean 'usageLocation'?"


def test_unknown_top_level_key_lists_allowed_keys_when_nothing_is_close(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "zzz: 1\n")
    assert only_problem(f) == (
        f"{f}:3: unknown key 'zzz' in the manifest — allowed keys: apiVersion, kind, tenant, catalog, policy, "
        "defaults, users"
    )


def test_unknown_policy_key(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "policy:\n  maxRemoval: 3\n")
    assert only_problem(f) == f"{f}:4: unknown key 'maxRemoval' in policy — did you mean 'maxRemovals'?"


def test_missing_and_wrong_api_version_and_kind(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "apiVersion: provisioner/v2\nusers: []\n", head=False)
    assert problems(f) == [
        f"{f}:1: apiVersion must be provisioner/v1, not 'provisioner/v2' — write 'apiVersion: provisioner/v1'",
        f"{f}:1: missing kind — add 'kind: TeamsVoiceLicensing' at the top of the file",
    ]


def test_wrong_types_are_reported_together(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", """
        policy:
          unlisted: delete
          maxRemovals: -1
          paygFunding: credits
        users:
          - upn: a@contoso.com
            phoneSystem: yes
            usageLocation: 12
        """)
    assert problems(f) == [
        f"{f}:4: policy.unlisted must be ignore or remove, not 'delete' — use one of: ignore, remove",
        f"{f}:5: policy.maxRemovals must be a whole number >= 0, not -1",
        f"{f}:6: policy.paygFunding must be communicationsCredits or postUsage, not 'credits' — "
        "use one of: communicationsCredits, postUsage",
        f"{f}:9: phoneSystem must be true or false, not 'yes' — write true or false (yes/no are not booleans)",
        f"{f}:10: usageLocation must be a string, not 12 — quote the value",
    ]


def test_users_must_be_a_list_of_mappings_with_upn(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - just-a-name\n  - callingPlan: none\n  - upn: nobody\n")
    assert problems(f) == [
        f"{f}:4: each entry of users must be a mapping with upn:, not 'just-a-name' — write '- upn: name@domain'",
        f"{f}:5: a user entry without upn — add 'upn: name@domain' to this entry",
        f"{f}:6: upn 'nobody' is not a user principal name — write it as name@domain, e.g. alice@contoso.com",
    ]


def test_bad_country_code_with_did_you_mean(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    usageLocation: UK\n  - upn: b@contoso.com\n    usageLocation: de\n  - upn: c@contoso.com\n    usageLocation: XX\n")
    assert problems(f) == [
        f"{f}:5: usageLocation 'UK' is not an ISO 3166-1 alpha-2 country code — did you mean 'GB'? Use ISO 3166-1 alpha-2 codes",
        f"{f}:7: usageLocation 'de' is not an ISO 3166-1 alpha-2 country code — did you mean 'DE'? Country codes are upper case",
        f"{f}:9: usageLocation 'XX' is not an ISO 3166-1 alpha-2 country code — use an ISO 3166-1 alpha-2 code, "
        "e.g. US, GB, DE (`provision catalog` lists where plans are sold)",
    ]


def test_norway_is_a_country_not_false(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    usageLocation: NO\n    callingPlan: domestic\n")
    assert ok(f).users[0].usage_location == "NO"


def test_unknown_plan_id_with_did_you_mean(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    callingPlan: domestik\n")
    assert only_problem(f) == (
        f"{f}:5: unknown callingPlan 'domestik' — did you mean 'domestic'? (use one of none, domestic, "
        "domestic-120, domestic-240, international, payg or sku:<skuPartNumber>)"
    )


def test_sku_plan_accepts_any_catalog_calling_plan_part_number(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    usageLocation: GB\n    callingPlan: sku:mcopstn_5\n")
    assert ok(f).users[0].calling_plan == "sku:mcopstn_5"


def test_sku_plan_unknown_part_number_with_did_you_mean(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    callingPlan: sku:MCOPSTN22\n  - upn: b@contoso.com\n    callingPlan: sku:MCOEV\n")
    assert problems(f) == [
        f"{f}:5: callingPlan 'sku:MCOPSTN22' is not a Calling Plan SKU the catalog knows — did you mean 'sku:MCOPSTN2'?",
        f"{f}:7: callingPlan 'sku:MCOEV' is not a Calling Plan SKU the catalog knows — name a Calling Plan part "
        "number the catalog knows (`provision catalog`), or add it to a catalog override's partNumbers",
    ]


def test_a_bundle_named_as_sku_says_to_declare_the_plan_it_gives(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    callingPlan: sku:MCOTEAMS_ESSENTIALS\n")
    message = only_problem(f)
    assert "never a `sku:`: declare the plan it gives (`callingPlan: domestic`)" in message


def test_plan_not_sold_in_the_users_country_names_where_it_is_sold(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    usageLocation: PR\n    callingPlan: domestic-120\n")
    assert only_problem(f) == (
        f"{f}:6: callingPlan 'domestic-120' is not sold in PR (Puerto Rico), the user's usage location — "
        "domestic-120 is sold in AT, BE, CA, CH, CZ, DE, DK, EE, ES, FI, FR, GB, HR, HU, IE, IT, LT, LU, LV, NL, NO, "
        "PL, PT, RO, SE, SI, SK, US; use callingPlan: none (Direct Routing keeps phoneSystem: true), or a catalog "
        "override if your tenant sells it there"
    )


def test_payg_is_not_sold_in_croatia_by_default(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    usageLocation: HR\n    callingPlan: payg\n")
    message = only_problem(f)
    assert message.startswith(
        f"{f}:6: callingPlan 'payg' is not sold in HR (Croatia), the user's usage location — payg is sold in AT, BE, CA,"
    )
    assert "HK" in message and ", HR," not in message


def test_plan_from_defaults_not_sold_says_so_at_the_user_line(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "defaults:\n  callingPlan: domestic\nusers:\n  - upn: a@contoso.com\n    usageLocation: JP\n")
    message = only_problem(f)
    assert message.startswith(f"{f}:6: callingPlan 'domestic' is not sold in JP (Japan), the user's usage location (from defaults)")


def test_sku_plan_for_another_country(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    usageLocation: GB\n    callingPlan: sku:MCOPSTN5_US\n")
    assert only_problem(f) == (
        f"{f}:6: callingPlan 'sku:MCOPSTN5_US' is not sold in GB (United Kingdom) — "
        "that SKU is for US; use callingPlan: domestic-120, which resolves to the SKU of the user's country"
    )


def test_calling_plan_with_phone_system_false_is_invalid(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    callingPlan: domestic\n    phoneSystem: false\n")
    assert only_problem(f) == (
        f"{f}:6: callingPlan 'domestic' needs Phone System, but phoneSystem is false — a Calling Plan is only "
        "assigned with Phone System: remove phoneSystem: false, or set callingPlan: none"
    )


def test_credits_with_phone_system_false_is_invalid(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    phoneSystem: false\n    communicationsCredits: true\n")
    assert only_problem(f) == (
        f"{f}:6: communicationsCredits is true but phoneSystem is false, which removes every managed license — "
        "set communicationsCredits: false (or remove it), or phoneSystem: true"
    )


def test_payg_without_credits_is_unfunded_unless_post_usage(tmp_path: Path) -> None:
    body = "users:\n  - upn: a@contoso.com\n    usageLocation: GB\n    callingPlan: payg\n    communicationsCredits: false\n"
    f = write(tmp_path, "m.yaml", body)
    assert only_problem(f) == (
        f"{f}:7: callingPlan 'payg' with communicationsCredits: false leaves the Pay-As-You-Go plan unfunded "
        "(policy.paygFunding is communicationsCredits) — remove communicationsCredits: false, or set "
        "policy.paygFunding: postUsage (new commerce billing)"
    )
    g = write(tmp_path / "post", "m.yaml", "policy:\n  paygFunding: postUsage\n" + body)
    assert ok(g).users[0].communications_credits is False


def test_phone_system_sku_must_be_a_known_add_on(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "policy:\n  phoneSystemSku: MCOEVV\n")
    assert only_problem(f) == f"{f}:4: policy.phoneSystemSku 'MCOEVV' is not a Phone System add-on the catalog knows — did you mean 'MCOEV'?"


def test_bad_defaults_are_reported_once_at_the_defaults_line(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "defaults:\n  usageLocation: UK\nusers:\n  - upn: a@contoso.com\n  - upn: b@contoso.com\n")
    assert only_problem(f) == (
        f"{f}:4: defaults.usageLocation 'UK' is not an ISO 3166-1 alpha-2 country code — did you mean 'GB'? "
        "Use ISO 3166-1 alpha-2 codes"
    )


def test_user_declared_twice_in_one_file_names_both_lines(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n  - upn: A@Contoso.COM\n")
    assert only_problem(f) == (
        f"{f}:5: duplicate-user: A@Contoso.COM is declared twice: here and at {f}:4 — declare each user once "
        "(UPNs compare case-insensitively)"
    )


def test_user_declared_twice_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "users:\n  - upn: a@contoso.com\n")
    b = write(tmp_path, "b.yaml", "users:\n  - upn: x@contoso.com\n  - upn: a@CONTOSO.com\n")
    assert only_problem(tmp_path) == (
        f"{b}:5: duplicate-user: a@CONTOSO.com is declared twice: here and at {a}:4 — declare each user once "
        "(UPNs compare case-insensitively)"
    )


def test_tenant_must_agree_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "tenant: contoso.onmicrosoft.com\n")
    write(tmp_path, "b.yaml", "tenant: CONTOSO.onmicrosoft.com\n")  # same tenant, other case: fine
    c = write(tmp_path, "c.yaml", "tenant: fabrikam.com\n")
    assert only_problem(tmp_path) == (
        f"{c}:3: tenant 'fabrikam.com' differs from 'contoso.onmicrosoft.com' at {a}:3 — every file that sets "
        "tenant must name the same tenant"
    )


def test_policy_must_agree_across_files_key_by_key(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "policy:\n  unlisted: remove\n")
    write(tmp_path, "b.yaml", "policy:\n  maxRemovals: 3\n")
    c = write(tmp_path, "c.yaml", "policy:\n  unlisted: ignore\n")
    assert only_problem(tmp_path) == (
        f"{c}:4: policy.unlisted is 'ignore' here but 'remove' at {a}:4 — policy must agree across files: "
        "set it once, or the same everywhere"
    )
    c.unlink()
    assert ok(tmp_path).policy == Policy(unlisted="remove", max_removals=3)


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "users:\n  - upn: a@contoso.com\n    callingPlan: nope\n    usageLocation: ZZ\n")
    write(tmp_path, "b.yaml", "bogus: 1\n")
    write(tmp_path, "c.yaml", "users: [\n", head=False)
    found = problems(tmp_path)
    assert len(found) == 4
    assert [p.split(": ")[0].rsplit("/", 1)[1] for p in found] == ["a.yaml:5", "a.yaml:6", "b.yaml:3", "c.yaml:2"]


def test_folders_are_searched_recursively_for_yaml_and_yml_only(tmp_path: Path) -> None:
    write(tmp_path, "us/a.yaml", "users:\n  - upn: a@contoso.com\n")
    write(tmp_path, "gb/deeper/b.yml", "users:\n  - upn: b@contoso.com\n")
    write(tmp_path, "notes.txt", "not a manifest")
    write(tmp_path, ".hidden/c.yaml", "users:\n  - upn: c@contoso.com\n")
    desired = ok(tmp_path)
    assert [u.upn for u in desired.users] == ["a@contoso.com", "b@contoso.com"]
    assert desired.files == (str(tmp_path / "gb/deeper/b.yml"), str(tmp_path / "us/a.yaml"))


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert problems(tmp_path / "nope.yaml", tmp_path / "empty") == [
        f"{tmp_path / 'empty'}: no *.yaml or *.yml manifest in this folder — check the path",
        f"{tmp_path / 'nope.yaml'}: no such file or folder — check the path",
    ]


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("# nothing here\n")
    assert only_problem(f) == (
        f"{f}:1: the file is empty — a manifest starts with 'apiVersion: provisioner/v1' and 'kind: TeamsVoiceLicensing'"
    )


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n   callingPlan: [\n")
    message = only_problem(f)
    assert message.startswith(f"{f}:5: YAML syntax error")
    assert message.endswith("— fix the YAML syntax at this line")


def test_duplicate_yaml_key_names_both_lines(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    callingPlan: none\n    callingPlan: payg\n")
    assert only_problem(f) == f"{f}:6: key 'callingPlan' appears twice in this mapping (first at line 5) — remove one of them"


def test_a_duplicate_yaml_key_does_not_hide_the_files_other_problems(tmp_path: Path) -> None:
    # "all problems of all files at once": the first value is kept and the rest of the file is still checked
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    callingPlan: none\n    callingPlan: payg\n"
                                  "  - upn: b@contoso.com\n    usageLocation: XX\n    phonesystem: true\n")
    found = problems(f)
    assert [p.split(": ")[0].removeprefix(str(f) + ":") for p in found] == ["6", "8", "9"], found
    assert "appears twice" in found[0] and "'XX'" in found[1] and "phonesystem" in found[2]


def test_manifest_catalog_key_is_used_for_validation(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text("plans:\n  payg:\n    - zone: zone2\n      addCountries: [HR]\n")
    f = write(tmp_path / "m", "m.yaml", "catalog: ../catalog.yaml\nusers:\n  - upn: a@contoso.com\n    usageLocation: HR\n    callingPlan: payg\n")
    desired = ok(f)
    assert desired.catalog_path == str((tmp_path / "catalog.yaml").resolve())
    assert desired.users[0].calling_plan == "payg"


def test_manifest_catalog_key_with_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text("plans:\n  pagy: []\n")
    f = write(tmp_path, "m.yaml", "catalog: catalog.yaml\n")
    message = only_problem(f)
    assert message.startswith(f"{f}:3: the catalog override '{(tmp_path / 'catalog.yaml').resolve()}' cannot be used:")
    assert "catalog.yaml:2: unknown plan id 'pagy'" in message and "did you mean 'payg'?" in message


def test_error_text_lists_every_issue_and_a_count(tmp_path: Path) -> None:
    import pytest

    from provisioner.errors import ManifestError
    from provisioner.manifest import load_desired

    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    callingPlan: x\n  - upn: b\n")
    with pytest.raises(ManifestError) as info:
        load_desired([f])
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"{f}:5: unknown callingPlan 'x'")
    assert lines[1].startswith(f"{f}:6: upn 'b' is not a user principal name")
    assert lines[2] == "2 errors in manifests; nothing was changed. Fix them and run the command again."


def test_a_systematic_mistake_in_a_big_file_is_capped(tmp_path: Path) -> None:
    users = "".join(f"  - upn: u{i}@contoso.com\n    usageLocation: UK\n" for i in range(150))
    f = write(tmp_path, "m.yaml", "users:\n" + users)
    found = problems(f)
    assert len(found) == 101
    assert found[0] == f"{f}: 50 more problems in this file are not listed — the first 100 are"


def test_sku_prefix_is_lower_case_as_in_the_schema(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", "users:\n  - upn: a@contoso.com\n    callingPlan: SKU:MCOPSTN1\n")
    assert only_problem(f) == f"{f}:5: unknown callingPlan 'SKU:MCOPSTN1' — write the prefix in lower case: 'sku:MCOPSTN1'"


def test_line_numbers_are_the_same_whichever_yaml_reader_reads_the_file(tmp_path: Path) -> None:
    body = """
        policy:
          unlisted: keep
        users:
          - upn: a@contoso.com
            usageLocation: UK
            callingPlan: domestik
          - upn: b@contoso.com
            usageLocaton: US
          - upn: c@contoso.com
            callingPlan:
              nested: 1
          - upn: A@contoso.com
        """
    fast = write(tmp_path / "fast", "m.yaml", body)
    slow = write(tmp_path / "slow", "m.yaml", body)
    # The same document, but with an escape in a double-quoted scalar: outside the fast reader's subset,
    # so libyaml reads this file. Same lines, same values.
    slow.write_text(slow.read_text().replace("kind: TeamsVoiceLicensing", 'kind: "TeamsVoice\\x4cicensing"'))
    assert safeyaml.loads(slow.read_text())[0] == safeyaml.loads(fast.read_text())[0]
    marks = safeyaml.Marks()
    assert fastyaml.try_load(fast.read_text(), marks, safeyaml._RESOLVER.resolve, safeyaml.MAX_DEPTH)[0]
    assert not fastyaml.try_load(slow.read_text(), marks, safeyaml._RESOLVER.resolve, safeyaml.MAX_DEPTH)[0]
    found = problems(fast)
    assert len(found) == 6
    assert [p.replace(str(slow), str(fast)) for p in problems(slow)] == found
