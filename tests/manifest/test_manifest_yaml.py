"""Safe, bounded YAML reading: hostile input is refused quickly with a clear message; the fast reader and
libyaml agree on every document the fast reader accepts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifest.helpers import only_problem, write
from provisioner.manifest import fastyaml, safeyaml


def _refused(text: str) -> safeyaml.YamlProblem:
    with pytest.raises(safeyaml.YamlProblem) as info:
        safeyaml.loads(text)
    return info.value


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    start = time.perf_counter()
    problem = _refused("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 2
    assert "refusing a possible alias bomb" in problem.message
    assert problem.hint == "use fewer '*alias' references, or write the values out"


def test_recursive_anchor_is_refused() -> None:
    # libyaml cannot compose a self-reference; either way the document is refused with a line.
    problem = _refused("a: &a\n  b: *a\n")
    assert problem.line >= 1


def test_deep_nesting_is_refused() -> None:
    problem = _refused("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problem.message == f"nesting is deeper than {safeyaml.MAX_DEPTH} levels"
    deep_block = "".join("  " * i + f"k{i}:\n" for i in range(80)) + "  " * 80 + "v: 1\n"
    assert _refused(deep_block).message == f"nesting is deeper than {safeyaml.MAX_DEPTH} levels"


def test_python_tags_are_never_constructed() -> None:
    problem = _refused("users: !!python/object/apply:os.system ['echo pwned']\n")
    assert "is not allowed (manifests are read safely: no objects, no custom tags)" in problem.message


def test_custom_tags_are_refused() -> None:
    assert "tag '!secret' is not allowed" in _refused("a: !secret x\n").message


def test_several_documents_are_refused() -> None:
    problem = _refused("a: 1\n---\nb: 2\n")
    assert (problem.line, problem.hint) == (2, "put each document in its own file")


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    with open(f, "wb") as fh:
        fh.truncate(safeyaml.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    start = time.perf_counter()
    message = only_problem(f)
    assert time.perf_counter() - start < 1
    assert message == (
        f"{f}: the file is {safeyaml.MAX_FILE_BYTES + 1:,} bytes, over the {safeyaml.MAX_FILE_BYTES:,}-byte limit "
        "— split the users across several files"
    )


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_bytes(b"apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\nusers:\n  - upn: \xff@x.com\n")
    assert only_problem(f) == f"{f}:4: byte 0xff is not valid UTF-8 — save the file as UTF-8"


def test_merge_keys_and_anchors_work_within_budget(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", """
        users:
          - &gb
            upn: a@contoso.com
            usageLocation: GB
            callingPlan: domestic
          - <<: *gb
            upn: b@contoso.com
        """)
    from provisioner.manifest import load_desired

    users = load_desired([f]).users
    assert [(u.upn, u.usage_location, u.calling_plan) for u in users] == [
        ("a@contoso.com", "GB", "domestic"),
        ("b@contoso.com", "GB", "domestic"),
    ]


def test_crlf_comments_and_quotes_read_the_same_fast_and_slow() -> None:
    text = (
        "# head\r\napiVersion: 'provisioner/v1'  # c\r\nkind: \"TeamsVoiceLicensing\"\r\nusers:\r\n"
        "- upn: a@x.com #c\r\n  callingPlan: sku:MCOPSTN1\r\n  phoneSystem: true\r\n\r\n  usageLocation: 'it''s'\r\n"
    )
    fast, _ = safeyaml.loads(text)
    slow, _ = safeyaml.loads(text, fast=False)
    assert fast == slow
    assert fast["users"][0] == {"upn": "a@x.com", "callingPlan": "sku:MCOPSTN1", "phoneSystem": True, "usageLocation": "it's"}


def test_the_fast_reader_handles_a_typical_manifest() -> None:
    marks = safeyaml.Marks()
    ok, value = fastyaml.try_load(
        "apiVersion: provisioner/v1\nusers:\n  - upn: a@x.com\n    usageLocation: NO\n", marks,
        safeyaml._RESOLVER.resolve, safeyaml.MAX_DEPTH,
    )
    assert ok and value == {"apiVersion": "provisioner/v1", "users": [{"upn": "a@x.com", "usageLocation": "NO"}]}
    assert marks.line_of(value, ("users", 0, "usageLocation")) == 4


# Random documents over the block subset plus the things that send a file to libyaml.
_scalars = st.one_of(
    st.sampled_from(["none", "null", "~", "true", "false", "True", "NO", "yes", "on", "1", "0", "-3", "012", "1.5",
                     "2024-01-01", "x: y", "a #b", "'q'", "'it''s'", '"d"', '"e\\n"', "[1, 2]", "{}", "&a x", "*a",
                     "!t x", "|", "-", "- x", "sku:MCOPSTN1", "a@b.com", "=", "<<", "%x", "@x", "`x`", "a:", "a:b"]),
    st.from_regex(r"[A-Za-z0-9@._()-]{1,12}", fullmatch=True),
)
_keys = st.sampled_from(["upn", "usageLocation", "callingPlan", "phoneSystem", "k", "null", "true", "a-b", "x_1"])


@st.composite
def _documents(draw: st.DrawFn) -> str:
    lines: list[str] = []

    def block(indent: int, depth: int) -> None:
        kind = draw(st.sampled_from(["map", "seq"])) if depth < 4 else "map"
        for _ in range(draw(st.integers(1, 4))):
            pad = " " * indent
            if kind == "seq":
                if draw(st.booleans()):
                    lines.append(f"{pad}- {draw(_scalars)}")
                else:
                    lines.append(f"{pad}- {draw(_keys)}: {draw(_scalars)}")
                    for _ in range(draw(st.integers(0, 2))):
                        lines.append(f"{pad}  {draw(_keys)}: {draw(_scalars)}")
            else:
                key = draw(_keys)
                if depth < 4 and draw(st.integers(0, 3)) == 0:
                    lines.append(f"{pad}{key}:")
                    block(indent + draw(st.sampled_from([0, 2, 4])), depth + 1)
                else:
                    lines.append(f"{pad}{key}: {draw(_scalars)}")
            if draw(st.integers(0, 5)) == 0:
                lines.append(pad + "# comment")

    block(0, 0)
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


def _read(text: str, fast: bool) -> tuple[str, object]:
    try:
        value, _marks = safeyaml.loads(text, fast=fast)
    except safeyaml.YamlProblem:
        return ("problem", None)
    return ("ok", value)


@settings(max_examples=300, deadline=None)
@given(_documents())
def test_fast_reader_agrees_with_libyaml(text: str) -> None:
    marks = safeyaml.Marks()
    accepted, value = fastyaml.try_load(text, marks, safeyaml._RESOLVER.resolve, safeyaml.MAX_DEPTH)
    slow = _read(text, fast=False)
    if accepted:
        assert slow == ("ok", value), text
    # Whatever path is taken, the public reader gives what libyaml gives.
    assert _read(text, fast=True) == slow, text


@pytest.mark.parametrize(
    "text",
    [
        "a: x\u2028y\n",  # a YAML line break inside what looks like one line
        "a: x\x85y\n",
        "a:\tx\n",
        "a: x\ufeffy\n",
        "a: x\ry\n",
        "a: 'x' y\n",
        "a: 'x'#c\n",
        "a: x #c\n  b: y\n",
        "- a\n- b: c\n  d: e\n",
        "a:\n- b\n- c\nd: e\n",
        "key:value\n",
        "null: x\n",
        "a: 0x1F\nb: 1_000\nc: 0o17\nd: 012\n",
        "a: 2001-12-14\n",
        "a: !!str 5\n",
        "...\n",
        "%YAML 1.2\n---\na: 1\n",
    ],
)
def test_odd_inputs_read_the_same_fast_and_slow(text: str) -> None:
    assert _read(text, fast=True) == _read(text, fast=False)


def test_a_file_with_millions_of_items_is_refused_before_parsing() -> None:
    text = "a: [" + "x," * (safeyaml.MAX_ITEMS + 1) + "]\n"
    start = time.perf_counter()
    problem = _refused(text)
    assert time.perf_counter() - start < 1
    assert problem.message == f"the file has {safeyaml.MAX_ITEMS + 3:,} lines and list items, over the {safeyaml.MAX_ITEMS:,} limit"
    assert problem.hint == "split the users across several files (e.g. one per country)"
