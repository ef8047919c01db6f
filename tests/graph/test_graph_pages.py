"""A full read's pages decoded in a forked child (provisioner/graph/pages.py): the same users as the in-process
read, whoever decodes which page; any failure of the child reads again in-process; what fetching raises is
raised as it is; no child is left behind."""

from __future__ import annotations

import json
import marshal
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner import forked
from provisioner.catalog import load_catalog
from provisioner.emulator.demo import synthetic_state
from provisioner.emulator.local import LocalTenant
from provisioner.emulator.state import TenantState
from provisioner.errors import GraphError
from provisioner.graph import pages
from provisioner.graph.connection import open_app
from provisioner.graph.parse import holds_any, user_from_json
from provisioner.graph.reader import Reader
from provisioner.planner import managed_sku_ids

TRICKY = 'Quote " back \\ "@odata.nextLink":"https://evil/" \u00e9\u4e2d'


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> LocalTenant:
    """2,500 users (3 pages), some with disabled plans, no usage location, disabled accounts, no display
    name, or a display name holding quotes, backslashes and the text of a nextLink (one ending with the
    key's text, so that its page's nextLink cannot be told from the bytes alone)."""
    state = synthetic_state(2_500, 11)
    for i, u in enumerate(state["users"]):
        if i % 97 == 0 and u["assignedLicenses"]:
            u["assignedLicenses"][0]["disabledPlans"] = ["4828c8ec-dc2e-4779-b502-87ac9ce28ab7"]
        if i % 101 == 0:
            u["usageLocation"] = None
        if i % 103 == 0:
            u["accountEnabled"] = False
        if i % 107 == 0:
            u["displayName"] = None
        if i % 109 == 0:
            u["displayName"] = TRICKY
        if i == 1500:  # its page's bytes alone do not tell its nextLink: that page is parsed by the parent
            u["displayName"] = 'ends "@odata.nextLink'
    path = tmp_path_factory.mktemp("pages") / "tenant.json"
    TenantState.from_dict(state).save(path)
    return LocalTenant(path)


def _read(tenant: LocalTenant, named: list[str] = ()) -> tuple[dict[str, Any], Any]:  # type: ignore[assignment]
    catalog = load_catalog()
    with open_app(tenant.app, debug=True) as conn:
        observed = conn.read(list(named), lambda skus: managed_sku_ids(skus, catalog), strategy="scan")
        return observed.users, conn


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every page child forked (its pid), with the child used for any tenant size."""
    monkeypatch.setattr(pages, "MIN_USERS", 0)
    pids: list[int] = []
    real = forked.fork

    def fork(work: Any) -> int | None:
        pid = real(work)
        if pid is not None:
            pids.append(pid)
        return pid

    monkeypatch.setattr(forked, "fork", fork)
    return pids


def _no_child_left() -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def _in_process(tenant: LocalTenant, monkeypatch: pytest.MonkeyPatch, named: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    with monkeypatch.context() as m:
        m.setattr(pages, "MIN_USERS", 10**9)
        users, _ = _read(tenant, named)
    return users


def test_the_child_reads_what_the_process_reads(
    tenant: LocalTenant, children: list[int], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    named = [*[u.upn for u in tenant.state.users][::2], "nobody@contoso.com"]  # half named, the rest if managed
    added: list[int] = []
    real_add = pages.add_page

    def add(answer: Any, users: dict[str, Any]) -> Any:
        added.append(len(answer[2]))
        return real_add(answer, users)

    monkeypatch.setattr(pages, "add_page", add)
    got, _ = _read(tenant, named)
    log = capsys.readouterr().err
    assert len(children) == 1 and len(added) == 3  # a child ran, and every page came through it (or here)
    assert "in-process" not in log and log.count("GET http://localhost/v1.0/users?") == 3  # no page read twice
    want = _in_process(tenant, monkeypatch, named)
    assert list(got) == list(want) and got == want
    assert len(got) > 1500 and sum(added) == len(got)
    shapes = {u.display_name for u in got.values()}
    assert TRICKY in shapes and None in shapes  # the tricky users were read, not skipped
    assert any(a.disabled_plans for u in got.values() for a in u.assignments)
    assert any(a.by_group for u in got.values() for a in u.assignments)
    _no_child_left()


def _dies_in_child(real: Any) -> Any:
    parent = os.getpid()

    def decode(raw: Any, named: Any, managed: Any) -> Any:
        if os.getpid() != parent:
            os._exit(3)
        return real(raw, named, managed)

    return decode


def _fails_second(real: Any) -> Any:
    calls: list[int] = []

    def decode(raw: Any, named: Any, managed: Any) -> Any:
        calls.append(1)
        if len(calls) >= 2:  # the second page this process (parent or child) decodes from bytes
            raise KeyError("id")
        return real(raw, named, managed)

    return decode


def _other_link(real: Any) -> Any:
    def decode(raw: Any, named: Any, managed: Any) -> Any:
        answer = real(raw, named, managed)
        return (answer[0], "http://localhost/v1.0/users?$skiptoken=other", *answer[2:])

    return decode


@pytest.mark.parametrize(
    "failing", [_dies_in_child, _fails_second, _other_link], ids=["child-dies", "page-not-decoded", "link-disagrees"]
)
def test_a_child_that_fails_or_disagrees_reads_again_in_process(
    tenant: LocalTenant,
    children: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failing: Any,
) -> None:
    monkeypatch.setattr(pages, "decode_page", failing(pages.decode_page))
    got, _ = _read(tenant)
    assert children and "reading every user again in-process" in capsys.readouterr().err
    assert got == _in_process(tenant, monkeypatch)
    _no_child_left()


@pytest.mark.parametrize(
    "error",
    [
        GraphError("Request_UnsupportedQuery: page refused", status=400, method="GET", url="u"),
        ConnectionResetError(104, "page refused"),  # not mistaken for the child's socket failing
        KeyboardInterrupt("page refused"),  # Ctrl-C while a page is fetched
    ],
    ids=["graph-error", "connection-reset", "ctrl-c"],
)
def test_what_fetching_raises_is_raised_and_the_child_is_reaped(
    tenant: LocalTenant, children: list[int], monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    calls: list[str] = []

    async def refused(self: Reader, url: str) -> bytes:
        calls.append(url)
        raise error

    monkeypatch.setattr(Reader, "_raw", refused)
    catalog = load_catalog()
    conn = open_app(tenant.app)
    try:
        with pytest.raises(type(error), match="page refused"):
            conn.read([], lambda skus: managed_sku_ids(skus, catalog), strategy="scan")
    finally:
        conn.close()  # and the connection still closes
    assert children and len(calls) == 1  # not read again in-process: the error is the fetch's, not the child's
    _no_child_left()


def test_an_empty_page_fails_as_in_process(tenant: LocalTenant, children: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    async def empty(self: Reader, url: str) -> bytes:
        return b""

    monkeypatch.setattr(Reader, "_raw", empty)
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'get'"):  # follow()'s own failure
        _read(tenant)
    assert children
    _no_child_left()


def test_ctrl_c_between_fork_and_unblocking_stops_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    import signal
    import time

    real = signal.pthread_sigmask
    calls: list[int] = []

    def mask(how: int, sigs: Any) -> Any:
        calls.append(how)
        if len(calls) == 2:  # the parent's unblocking (the child's is its own, after the fork)
            raise KeyboardInterrupt
        return real(how, sigs)

    monkeypatch.setattr(forked.signal, "pthread_sigmask", mask)
    with pytest.raises(KeyboardInterrupt):
        forked.fork(lambda: time.sleep(60))
    _no_child_left()


def test_a_child_someone_else_reaped_is_not_signalled(monkeypatch: pytest.MonkeyPatch) -> None:
    pid = forked.fork(lambda: None)
    assert pid is not None
    os.waitpid(pid, 0)  # reaped elsewhere (a SIGCHLD handler that waits): the pid may be another process's now
    sent: list[int] = []
    monkeypatch.setattr(forked.os, "kill", lambda p, s: sent.append(p))
    assert forked.reap(pid, kill=True) == 0 and sent == []


def test_no_child_while_another_thread_runs(tenant: LocalTenant, children: list[int]) -> None:
    import threading

    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        got, _ = _read(tenant)
    finally:
        stop.set()
        t.join()
    assert not children and len(got) > 500


# -- the pieces, on arbitrary input ----------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_link = st.one_of(st.none(), _text.map(lambda s: "https://graph.microsoft.com/v1.0/users?$skiptoken=" + s))


@settings(max_examples=300, deadline=None)
@given(link=_link, names=st.lists(_text, max_size=5), spaced=st.booleans(), first=st.booleans())
def test_next_link_is_the_parsed_one_or_unsure(link: str | None, names: list[str], spaced: bool, first: bool) -> None:
    value = [{"id": str(i), "userPrincipalName": f"u{i}@x", "displayName": n} for i, n in enumerate(names)]
    doc: dict[str, Any] = {"@odata.context": "x"}
    if link is not None and first:
        doc["@odata.nextLink"] = link
    doc["value"] = value
    if link is not None and not first:
        doc["@odata.nextLink"] = link
    raw = json.dumps(doc, ensure_ascii=spaced, separators=(", ", ": ") if spaced else (",", ":")).encode()
    try:
        found = pages.next_link(raw)
    except pages.Unsure:
        return
    assert found == (link or None)


def test_next_link_refuses_what_bytes_alone_cannot_tell() -> None:
    real = b'"@odata.nextLink":"https://g/v1.0/users?a=1"'
    assert pages.next_link(b'{' + real + b',"value":[]}') == "https://g/v1.0/users?a=1"
    assert pages.next_link(b'{"value":[{"displayName":"\\"@odata.nextLink\\": no"}]}') is None  # escaped quotes
    assert pages.next_link(b'{"value":[],"@odata.nextLink":"https:\\/\\/g\\u0026x"}') == "https://g&x"
    for unsure in (
        b'{"@odata.nextLink":null,"value":[]}',
        b'{"@odata.nextLink":"","value":[]}',
        b'{"value":[{"displayName":"ends \\"@odata.nextLink"}]}',  # the key's text closing a string
        b'{' + real + b',"value":[{"displayName":"ends \\"@odata.nextLink"}]}',
    ):
        with pytest.raises(pages.Unsure):
            pages.next_link(unsure)


_assignment_json = st.fixed_dictionaries(
    {
        "skuId": st.sampled_from(["A-1", "a-1", "b-2", None]),
        "assignedByGroup": st.sampled_from([None, "G-1", "g-1"]),
        "disabledPlans": st.one_of(st.none(), st.lists(st.sampled_from(["P-1", "p-2"]), max_size=2)),
        "state": st.sampled_from(["Active", "ActiveWithError", None]),
        "error": st.sampled_from(["None", "CountViolation", "", None]),
    }
)
_user_json = st.fixed_dictionaries(
    {
        "id": _text,
        "userPrincipalName": st.one_of(st.none(), st.sampled_from(["a@x", "A@x", "b@x", "c@x"])),
        "displayName": st.one_of(st.none(), _text, st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False)),
        "accountEnabled": st.one_of(st.none(), st.booleans()),
        "usageLocation": st.sampled_from([None, "", "US", "gb"]),
    },
    optional={
        "assignedLicenses": st.lists(st.fixed_dictionaries({"skuId": st.sampled_from(["A-1", "b-2"])}), max_size=3),
        "licenseAssignmentStates": st.lists(_assignment_json, max_size=3),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    page=st.lists(_user_json, max_size=8),
    named=st.sets(st.sampled_from(["a@x", "b@x"])),
    managed=st.sets(st.sampled_from(["a-1", "b-2"])),
)
def test_columns_rebuild_the_in_process_users(page: list[dict[str, Any]], named: set[str], managed: set[str]) -> None:
    frozen = frozenset(managed)
    raw = orjson.dumps({"value": page})
    want: dict[str, Any] = {}
    for d in orjson.loads(raw)["value"]:  # Reader._scan's sink, on the page as Graph's bytes give it
        key = str(d.get("userPrincipalName") or "").lower()
        if key in named or (frozen and holds_any(d, frozen)):
            want[key] = user_from_json(d)
    got: dict[str, Any] = {}
    assert pages.add_page(marshal.loads(marshal.dumps(pages.decode_page(raw, named, frozen))), got) is None
    assert list(got) == list(want) and got == want
    assert all(type(u) is type(w) for u, w in zip(got.values(), want.values(), strict=True))


def test_a_failed_answer_is_refused() -> None:
    with pytest.raises(ValueError):
        pages.add_page((False,), {})


def test_lean_import_skips_the_httpx_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, importlib.util\n"
        "import provisioner.graph.reader\n"
        "print(sorted(m for m in ('rich', 'click', 'pygments', 'httpx') if m in sys.modules))\n"
        "import httpx, httpx._main\n"
        "print(importlib.util.find_spec('httpx._main').origin.endswith('_main.py'), callable(httpx._main.main))\n"
        "from httpx._main import print_help\n"  # any other name loads the real module
        "print(sys.modules['httpx._main'] is httpx._main and 'rich' in sys.modules)\n"
        "sys.argv = ['httpx', '--help']\n"
        "httpx.main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert lines[:3] == ["['httpx']", "True True", "True"], out.stdout + out.stderr  # the SDK loaded, the CLI not
    assert out.returncode == 0 and "Usage" in out.stdout, out.stdout + out.stderr  # and httpx.main() still works
