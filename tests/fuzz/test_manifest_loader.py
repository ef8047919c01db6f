"""Hostile manifests: every input ends in a Desired or a ManifestError naming FILE(:LINE), never another
exception and never a hang.

Inputs: arbitrary text, binary junk, random YAML structures, byte-level mutations of a valid manifest,
alias bombs, deep nesting, huge scalars and many documents. Each example runs under a hypothesis deadline
(and the module under pytest-timeout), so a super-linear path shows up as a failure, not a stuck CI job.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.errors import ManifestError
from provisioner.manifest import loader, safeyaml

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(max_examples=120, deadline=timedelta(seconds=3), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

VALID = """\
apiVersion: provisioner/v1
kind: TeamsVoiceLicensing
tenant: contoso.onmicrosoft.com
policy:
  unlisted: ignore
  maxRemovals: 10
  paygFunding: communicationsCredits
  phoneSystemSku: MCOEV
defaults:
  usageLocation: US
  callingPlan: none
users:
  - upn: alice@contoso.com
    usageLocation: US
    callingPlan: domestic
  - upn: bob@contoso.com
    usageLocation: GB
    callingPlan: payg
    communicationsCredits: true
  - upn: carol@contoso.com
    phoneSystem: true
    callingPlan: none
  - upn: leaver@contoso.com
    phoneSystem: false
    callingPlan: none
"""

_DIR = tempfile.mkdtemp(prefix="fuzz-manifest-")


def load(data: str | bytes) -> tuple[str, Any]:
    """Write `data` to a file and load it: ("ok", Desired) or ("error", ManifestError). Anything else raises."""
    path = Path(_DIR) / "m.yaml"
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(data)
    try:
        return "ok", loader.load_desired([path])
    except ManifestError as exc:
        text = str(exc)
        assert exc.issues, "a ManifestError must list its issues"
        for issue in exc.issues:
            assert issue.file.endswith("m.yaml"), f"issue names no file: {issue}"
            assert issue.message.strip(), f"empty issue message: {issue}"
        assert "Traceback" not in text
        return "error", exc


def test_the_seed_manifest_is_valid() -> None:
    """The mutations below start from a manifest that loads: otherwise they would only ever test errors."""
    kind, desired = load(VALID)
    assert kind == "ok", desired
    assert len(desired.users) == 4


# -- arbitrary input --------------------------------------------------------------------------------------


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    load(text)


@FUZZ
@given(st.binary(max_size=400))
def test_binary_junk(data: bytes) -> None:
    load(data)


@FUZZ
@given(pos=st.integers(0, len(VALID)), cut=st.integers(0, 40),
       insert=st.one_of(st.text(max_size=20), st.sampled_from(["\t", ": ", "- ", "&a ", "*a", "!!python/object ",
                                                                "\n---\n", "'", '"', "{", "[", "|\n", "\ufeff", "\x00",
                                                                "\n  ", "#", "<<: *a\n", "~", "0x1F", "1e3"])))
def test_mutated_valid_manifest(pos: int, cut: int, insert: str) -> None:
    load(VALID[:pos] + insert + VALID[pos + cut:])


@FUZZ
@given(lines=st.lists(st.integers(0, VALID.count("\n") - 1), min_size=1, max_size=6), data=st.data())
def test_lines_shuffled_or_reindented(lines: list[int], data: st.DataObject) -> None:
    src = VALID.splitlines()
    for i in lines:
        op = data.draw(st.sampled_from(["dup", "drop", "indent", "dedent", "swap"]))
        if op == "dup":
            src.insert(i, src[i])
        elif op == "drop":
            src.pop(i)
        elif op == "indent":
            src[i] = "  " + src[i]
        elif op == "dedent":
            src[i] = src[i].lstrip()
        else:
            j = data.draw(st.integers(0, len(src) - 1))
            src[i], src[j] = src[j], src[i]
        if not src:
            break
    load("\n".join(src) + "\n")


KEYS = ["apiVersion", "kind", "tenant", "policy", "defaults", "users", "upn", "usageLocation", "callingPlan",
        "phoneSystem", "communicationsCredits", "unlisted", "maxRemovals", "paygFunding", "phoneSystemSku",
        "catalog", "user", "Users", "callingplan"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                    st.sampled_from(["provisioner/v1", "TeamsVoiceLicensing", "US", "GB", "domestic", "payg",
                                     "sku:MCOPSTN1", "none", "ignore", "remove", "alice@contoso.com", "NO"]))
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.one_of(st.sampled_from(KEYS), scalars),
                                                               inner, max_size=6),
    max_leaves=30,
)


@FUZZ
@given(doc=st.fixed_dictionaries({}, optional={k: structures for k in KEYS[:6]}), flow=st.booleans())
def test_random_structures_dumped_to_yaml(doc: dict[str, Any], flow: bool) -> None:
    try:
        text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)
    except yaml.YAMLError:
        return
    load(text)


@FUZZ
@given(users=st.lists(st.dictionaries(st.sampled_from(KEYS[6:11]), scalars, max_size=5), max_size=6),
       defaults=st.dictionaries(st.sampled_from(KEYS[7:11]), scalars, max_size=4))
def test_manifest_shaped_structures(users: list[dict[str, Any]], defaults: dict[str, Any]) -> None:
    doc = {"apiVersion": "provisioner/v1", "kind": "TeamsVoiceLicensing", "defaults": defaults, "users": users}
    load(yaml.safe_dump(doc, allow_unicode=True))


# -- pathological shapes (bounded in time) ---------------------------------------------------------------


def timed_load(data: str | bytes, limit_s: float) -> tuple[str, Any]:
    start = time.perf_counter()
    result = load(data)
    elapsed = time.perf_counter() - start
    assert elapsed < limit_s, f"took {elapsed:.2f}s (limit {limit_s}s)"
    return result


def billion_laughs(levels: int, width: int) -> str:
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"users: *a{levels - 1}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("levels", "width"), [(9, 10), (20, 9), (40, 2), (5, 200)])
def test_alias_bombs_are_refused_fast(levels: int, width: int) -> None:
    kind, err = timed_load(billion_laughs(levels, width), 5)
    assert kind == "error"
    assert any("alias" in i.message.lower() or "nest" in i.message.lower() for i in err.issues), err


def test_recursive_anchor_is_an_error() -> None:
    kind, err = timed_load("apiVersion: provisioner/v1\nusers: &u\n  - *u\n", 5)
    assert kind == "error"
    # libyaml hands back the anchored node for an alias, so the line may be the anchor's (2) or the alias's (3)
    assert any(i.line in (2, 3) and "recursive" in i.message for i in err.issues), [str(i) for i in err.issues]


# Block nesting costs O(depth²) bytes of indentation (1,000 levels is ~1 MB), so it stops at 1,000.
@pytest.mark.parametrize(("style", "depth"), [(s, d) for s in ("flow-seq", "flow-map") for d in (60, 1_000, 100_000)]
                         + [("block", 60), ("block", 1_000)])
def test_deep_nesting_is_refused_fast(depth: int, style: str) -> None:
    if style == "flow-seq":
        text = "users: " + "[" * depth + "]" * depth + "\n"
    elif style == "flow-map":
        text = "users: " + "{a: " * depth + "1" + "}" * depth + "\n"
    else:
        text = "users:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, depth)) + "  " * depth + "v: 1\n"
    kind, err = timed_load(text, 5)
    assert kind == "error"
    assert any("nest" in i.message.lower() or "deep" in i.message.lower() for i in err.issues), err


@pytest.mark.parametrize("size", [10_000, 1_000_000, 20_000_000])
def test_huge_scalars(size: int) -> None:
    text = VALID.replace("alice@contoso.com", "a" * size + "@contoso.com")
    # Either outcome is acceptable (the contract sets no UPN length limit; Graph's is 113 characters, so such
    # a user is simply not found at plan time); what matters is a bounded time and no crash.
    kind, result = timed_load(text, 15)
    assert kind in ("ok", "error"), result


def test_over_size_limit_is_refused_before_reading() -> None:
    path = Path(_DIR) / "big.yaml"
    with open(path, "wb") as fh:
        fh.truncate(safeyaml.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    try:
        start = time.perf_counter()
        with pytest.raises(ManifestError) as info:
            loader.load_desired([path])
        assert time.perf_counter() - start < 2
        assert "limit" in str(info.value)
    finally:
        os.unlink(path)


@pytest.mark.parametrize("n", [2, 1000])
def test_many_documents(n: int) -> None:
    kind, err = timed_load("\n---\n".join([VALID] * n), 10)
    assert kind == "error"
    assert any("document" in i.message for i in err.issues), err


def test_many_users_with_one_bad_line_names_the_line() -> None:
    """10,000 users with one bad country code: an error at that very line, quickly."""
    body = [VALID.split("users:")[0] + "users:"]
    for i in range(10_000):
        body.append(f"  - upn: u{i}@contoso.com\n    usageLocation: {'ZZ' if i == 7_777 else 'US'}")
    kind, err = timed_load("\n".join(body) + "\n", 10)
    assert kind == "error"
    bad_line = 1 + body[0].count("\n") + 2 * 7_777 + 2
    assert any(i.line == bad_line for i in err.issues), [str(i) for i in err.issues][:5]


# -- the two YAML readers agree on hostile input -----------------------------------------------------------


@FUZZ
@given(pos=st.integers(0, len(VALID)), cut=st.integers(0, 10),
       insert=st.one_of(st.text(st.characters(codec="utf-8"), max_size=8),
                        st.sampled_from(["  ", "- ", ": ", "'", '"', "#", " #", "\n", "- - ", "key: value\n"])))
def test_fast_reader_agrees_with_libyaml(pos: int, cut: int, insert: str) -> None:
    text = VALID[:pos] + insert + VALID[pos + cut:]
    try:
        slow = safeyaml.loads(text, fast=False)[0]
    except safeyaml.YamlProblem:
        slow = "error"
    try:
        fast = safeyaml.loads(text, fast=True)[0]
    except safeyaml.YamlProblem:
        fast = "error"
    assert fast == slow, f"the fast reader and libyaml disagree on:\n{text}"
