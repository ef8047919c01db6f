"""The users-block fast path (`fastusers`) gives exactly what the general path gives: the same Desired, or the
same problems with the same FILE:LINE, message and hint; and it engages on the shapes manifests are written in."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml.nodes import ScalarNode

from provisioner.errors import ManifestError
from provisioner.manifest import fastusers, loader, safeyaml

pytestmark = pytest.mark.timeout(300)

_SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

HEAD = "apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\n"


def _outcome(paths: list[Path], fast: bool, for_plan: bool = False) -> tuple[str, Any]:
    """What loading gives, as `validate` loads, or as `plan` does (for_plan: problems with a code deferred)."""
    try:
        desired = loader._load([str(p) for p in paths], None, fast_users=fast, for_plan=for_plan)
    except ManifestError as exc:
        return "error", (str(exc), [(i.file, i.line, i.message, i.hint) for i in exc.issues])
    return "ok", repr(desired)


def _engaged(path: Path) -> bool:
    try:
        return loader._read_file(str(path), True).block is not None
    except safeyaml.YamlProblem:
        return False  # only the general path raises


# ---- generated manifests ---------------------------------------------------------------------------------

_GOOD_UPNS = st.from_regex(r"[a-z][a-z0-9._+-]{0,5}@[a-z]{1,4}\.(com|org)", fullmatch=True)
_UPN_FORMS = st.sampled_from(["{}", '"{}"', "'{}'", '" {} "', "{}  ", '"{}"  # c', "{} # c", "{}", '"{}"'])
_ODD_UPNS = st.sampled_from([
    "nobody", '"a@b@c"', '""', "null", "123", '"a b@c"', "true", r'"tab\t@x.com"', "&a a@b.com", "*a",
    "[a@b.com]", "{x: y}", "'it''s@x.com'", '"ünï@x.com"', "a@b:c", '"a@b.com"x', "-a@b.com", "a@b.com:",
    "A@B.COM", "x@Y.com", "2001-12-14@x", "0x1F@y", "_u@d", "+1@x.org", ".inf@x", "'a b@c.com'", "a b@c.com",
])
_VALUES: dict[str, list[str]] = {
    "usageLocation": ["US", '"US"', "GB", "'DE'", "UK", '"us"', "null", "~", '""', '" "', "NO", "1", "US # c",
                      '"US"  ', "US  ", "&x US", "*x", "[US]", r'"U\u0053"', "FR", "CA", "'NL'"],
    "callingPlan": ["domestic", '"none"', "payg", '"sku:MCOPSTN1"', "sku:MCOPSTN_6", "domestik", "international",
                    "null", '"domestic-120"', "sku:nope", "SKU:MCOPSTN1", "none # dr", "domestic-240", "none"],
    "phoneSystem": ["true", "false", "True", "FALSE", "yes", "no", "null", '"true"', "1", "~", "true # c", "1.5"],
    "communicationsCredits": ["true", "false", "null", "off", "false   # leaver", "TRUE", "0"],
    "phonesystem": ["true"],
    "upn": ["a@b.com"],
    "null": ["x"],
    "extra": ["1"],
}
_FIELD_KEYS = ["usageLocation", "callingPlan", "phoneSystem", "communicationsCredits"]


@st.composite
def _entry(draw: Any, dash: int, odd: bool, index: int) -> list[str]:
    """One users item, as lines. With `odd`, one item in four has one odd thing the general path must handle
    (a bad or unusual value, an extra key, a comment, nesting, flow style, ...); the rest stay clean, so
    whether the file as a whole takes the fast path is decided by that one thing."""
    pad, key_pad = " " * dash, " " * (dash + 2)
    kind = draw(st.integers(0, 11)) if odd and draw(st.integers(0, 5)) == 0 else -1
    # Mostly distinct UPNs (the index), some repeated in another case (duplicates, across files too).
    name = draw(_GOOD_UPNS) if draw(st.integers(0, 8)) == 0 else f"u{index}.{draw(_GOOD_UPNS)}"
    upn = draw(_ODD_UPNS) if kind == 0 else draw(_UPN_FORMS).format(draw(st.sampled_from([name, name.upper()])))
    keys = draw(st.lists(st.sampled_from(_FIELD_KEYS), unique=True, max_size=4))
    values = [draw(st.sampled_from(sorted(_CLEAN_VALUES[k]))) for k in keys]
    if kind == 1 and keys:
        values[-1] = draw(st.sampled_from(_VALUES[keys[-1]]))
    if kind == 2:  # a key twice (within the four field lines an entry may have), or an unknown key
        del keys[3:], values[3:]
        keys.append(draw(st.sampled_from([*keys, "upn"] if draw(st.booleans()) else ["phonesystem", "null", "extra"])))
        values.append(draw(st.sampled_from(sorted(_CLEAN_VALUES.get(keys[-1], _VALUES[keys[-1]])))))
    gap = "  " if kind == 3 else " "
    fields = [f"{k}:{gap}{v}" for k, v in zip(keys, values, strict=True)]
    if kind == 4 and fields:
        fields.insert(1, f"upn: {upn}")  # upn not first
        lines = [f"{pad}- {fields[0]}"] + [key_pad + f for f in fields[1:]]
    else:
        lines = [f"{pad}- upn: {upn}"] + [key_pad + f for f in fields]
    if kind == 5:
        lines.insert(draw(st.integers(1, len(lines))), key_pad + "# a comment")
    elif kind == 6:
        lines.insert(draw(st.integers(1, len(lines))), "")
    elif kind == 7:
        lines += [key_pad + "nested:", key_pad + "  x: 1"]
    elif kind == 8:
        lines = [f"{pad}- {{upn: {draw(_GOOD_UPNS)}, usageLocation: US}}"]
    elif kind == 9:
        lines = [f"{pad}- {draw(_GOOD_UPNS)}"]
    elif kind == 10:
        lines[0] = lines[0].replace("- ", "-  ", 1)
    elif kind == 11 and len(lines) > 1:
        lines[1] = " " + lines[1]
    return lines


def _clean(key: str, value: str) -> bool:
    """A value the fast path reads: of the right type (rule problems like UK or domestik are fine), one line."""
    return value in _CLEAN_VALUES.get(key, ())


_CLEAN_VALUES = {
    "usageLocation": {"US", '"US"', "GB", "'DE'", "UK", "null", "~", "NO", "US # c", '"US"  ', "US  ", "FR", "CA", "'NL'"},
    "callingPlan": {"domestic", '"none"', "payg", '"sku:MCOPSTN1"', "sku:MCOPSTN_6", "domestik", "international", "null",
                    '"domestic-120"', "sku:nope", "none # dr", "domestic-240", "none", "SKU:MCOPSTN1"},
    "phoneSystem": {"true", "false", "True", "FALSE", "null", "~", "true # c"},
    "communicationsCredits": {"true", "false", "null", "false   # leaver", "TRUE"},
}


@st.composite
def _manifest(draw: Any, odd: bool) -> str:
    lines = HEAD.rstrip("\n").split("\n")
    if draw(st.booleans()):
        lines += ["policy:", f"  unlisted: {draw(st.sampled_from(['ignore', 'remove']))}"]
        if draw(st.booleans()):
            lines.append(f"  paygFunding: {draw(st.sampled_from(['postUsage', 'communicationsCredits']))}")
    if draw(st.booleans()):
        lines.append("defaults:")
        for key in draw(st.lists(st.sampled_from(_FIELD_KEYS), unique=True, min_size=1)):
            lines.append(f"  {key}: {draw(st.sampled_from([v for v in _VALUES[key] if _clean(key, v)]))}")
    if draw(st.integers(0, 5)) == 0:
        lines.append("# users follow")
    if odd and draw(st.integers(0, 10)) == 0:
        lines += ["x: &a 1", "y: *a"]
    lines.append("users:")
    dash = draw(st.sampled_from([0, 2, 2, 2, 4]))
    for index in range(draw(st.integers(1, 12))):
        lines += draw(_entry(dash, odd, index))
    if odd:
        tail = draw(st.integers(0, 16))
        if tail == 0:
            lines.append("tenant: contoso.com")
        elif tail == 1:
            lines.append("# the end")
        elif tail == 2:
            lines += ["", "  "]
        elif tail == 3:
            lines.insert(2, "users: []")
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))
    if odd and draw(st.integers(0, 30)) == 0:
        text = text.replace("\n", "\r\n")
    if odd and draw(st.integers(0, 30)) == 0:
        text = text.replace("  ", "\t", 1)
    return text


def _write_all(folder: Path, texts: list[str]) -> list[Path]:
    paths = []
    for i, text in enumerate(texts):
        path = folder / f"m{i}.yaml"
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    return paths


@_SETTINGS
@given(st.lists(_manifest(odd=True), min_size=1, max_size=3))
def test_fast_and_general_paths_agree_on_any_manifest(texts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write_all(Path(tmp), texts)
        assert _outcome(paths, fast=True) == _outcome(paths, fast=False), texts
        assert _outcome(paths, fast=True, for_plan=True) == _outcome(paths, fast=False, for_plan=True), texts


@_SETTINGS
@given(st.lists(_manifest(odd=False), min_size=1, max_size=3))
def test_the_fast_path_reads_the_usual_shapes_and_agrees(texts: list[str]) -> None:
    """Valid-looking fields in any order, quoted or not, comments after values, defaults, duplicates across files,
    rule problems (UK, domestik): the fast path engages, with the general path's result."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write_all(Path(tmp), texts)
        assert all(_engaged(p) for p in paths), texts
        assert _outcome(paths, fast=True) == _outcome(paths, fast=False), texts
        assert _outcome(paths, fast=True, for_plan=True) == _outcome(paths, fast=False, for_plan=True), texts


@_SETTINGS
@given(_manifest(odd=False))
def test_the_block_holds_what_the_general_reader_reads(text: str) -> None:
    """Entry by entry: the same fields (UPN stripped) and the same entry and key lines as (raw, marks)."""
    found = fastusers.split(text, safeyaml.resolver())
    assert found is not None
    _head, _users_line, block = found
    raw, marks = safeyaml.loads(text)
    items = raw["users"]
    assert len(items) == len(block.upns)
    assert marks.seqs[id(items)][1] == block.lines
    for item, upn, line, shape in zip(items, block.upns, block.lines, block.shapes, strict=True):
        assert {**item, "upn": item["upn"].strip()} == {"upn": upn, **shape.fields}
        assert list(item) == ["upn", *shape.keys]
        where = marks.maps[id(item)][1]
        assert where["upn"] == (line, line)
        for key in shape.keys:
            assert where[key] == (line + shape.line_offset(key),) * 2


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.from_regex(fastusers._PLAIN_UPN, fullmatch=True).map(lambda s: s.strip("()")))
def test_a_plain_upn_the_fast_path_takes_is_always_a_string(text: str) -> None:
    if not re.fullmatch(fastusers._PLAIN_UPN, text):
        return
    assert safeyaml.resolver()(ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"


# ---- examples ------------------------------------------------------------------------------------------

TYPICAL = HEAD + """policy:
  unlisted: ignore
users:
  - upn: "ann@contoso.com"
    usageLocation: "US"
    callingPlan: "sku:MCOPSTN1"
    phoneSystem: true
    communicationsCredits: false
  - upn: bob@contoso.com
    usageLocation: GB
    callingPlan: none   # Direct Routing
  - upn: carl@contoso.com
"""


def test_a_typical_manifest_takes_the_fast_path_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(TYPICAL)
    fm = loader._read_file(str(path), True)
    assert fm.block is not None
    assert fm.block.upns == ["ann@contoso.com", "bob@contoso.com", "carl@contoso.com"]
    assert fm.block.lines == [6, 11, 14]
    desired = loader.load_desired([path])
    assert [(u.upn, u.source.line, u.usage_location, u.calling_plan, u.phone_system) for u in desired.users] == [
        ("ann@contoso.com", 6, "US", "sku:MCOPSTN1", True),
        ("bob@contoso.com", 11, "GB", "none", None),
        ("carl@contoso.com", 14, None, None, None),
    ]


@pytest.mark.parametrize(
    "change",
    [
        ("    phoneSystem: true\n", "    phoneSystem: yes\n"),  # a type problem check.py reports
        ("    phoneSystem: true\n", "    phonesystem: true\n"),  # an unknown key
        ("    phoneSystem: true\n", "    # note\n    phoneSystem: true\n"),  # a comment line in the block
        ("    phoneSystem: true\n", "    phoneSystem: true\n    phoneSystem: true\n"),  # a key twice
        ('"ann@contoso.com"', '"ann"'),  # not a UPN
        ('"ann@contoso.com"', '"ann\\t@contoso.com"'),  # an escape
        ('"ann@contoso.com"', "&a ann@contoso.com"),  # an anchor
        ("  - upn: carl@contoso.com\n", "  - {upn: carl@contoso.com}\n"),  # flow style
        ("  - upn: carl@contoso.com\n", "  - upn: carl@contoso.com\ntenant: contoso.com\n"),  # users not last
        ("policy:\n", "x: &a 1\ny: *a\npolicy:\n"),  # an alias in the head: its budget counts the whole file
        ("\n", "\r\n"),
        ("    communicationsCredits: false\n", '    usageLocation: "US"\n'),  # a key twice, four field lines
        ("    communicationsCredits: false\n", "    upn: ann@contoso.com\n"),  # upn twice
        ('"ann@contoso.com"', "'ann smith@contoso.com'"),  # a space inside
    ],
)
def test_anything_else_takes_the_general_path_with_the_same_outcome(tmp_path: Path, change: tuple[str, str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(TYPICAL.replace(*change).encode())
    assert not _engaged(path)
    assert _outcome([path], fast=True) == _outcome([path], fast=False)


def test_rule_problems_and_duplicates_keep_their_lines(tmp_path: Path) -> None:
    body = TYPICAL.replace('usageLocation: "US"', 'usageLocation: "UK"') + "  - upn: Ann@Contoso.com\n    phoneSystem: false\n"
    path = tmp_path / "m.yaml"
    path.write_text(body)
    assert _engaged(path)
    kind, (text, issues) = _outcome([path], fast=True)
    assert kind == "error"
    assert [(line, message.split(" ")[0]) for _f, line, message, _h in issues] == [(7, "usageLocation"), (15, "duplicate-user:")]
    assert _outcome([path], fast=False) == (kind, (text, issues))
    # as `plan` loads it: the duplicate is deferred to the plan's diagnostics, the usage location still fails
    kind, (text, issues) = _outcome([path], fast=True, for_plan=True)
    assert kind == "error" and [(line, m.split(" ")[0]) for _f, line, m, _h in issues] == [(7, "usageLocation")]
    assert _outcome([path], fast=False, for_plan=True) == (kind, (text, issues))


@pytest.mark.parametrize(
    "head",
    ["", "# only a comment\n", "kind: TeamsVoiceLicensing\n", "apiVersion: v0\nkind: Other\nextra: 1\n",
     "apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\ndefaults:\n  usageLocation: UK\n  callingPlan: payg\n"],
)
def test_head_problems_keep_their_lines_when_the_users_are_read_fast(tmp_path: Path, head: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(head + "users:\n  - upn: ann@contoso.com\n    usageLocation: US\n  - upn: bob@contoso.com\n")
    assert _engaged(path)
    assert _outcome([path], fast=True) == _outcome([path], fast=False)
    assert _outcome([path], fast=True, for_plan=True) == _outcome([path], fast=False, for_plan=True)
    assert _outcome([path], fast=True)[0] == "error"
