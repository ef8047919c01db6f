"""A full read's pages decoded in a forked child while the parent fetches the next ones. Impure.

With no latency to hide behind, a scan of every user is bound by the client's CPU: per page of 999 users,
receiving it, parsing its JSON and building the User records, one after another on one core. Graph pages
only sequentially, but the next page's address (@odata.nextLink) can be found in a page's raw bytes without
parsing them. So the parent fetches page after page and sends each, as bytes, to a child (forked.py), which
parses it, keeps the users the scan keeps (Reader._scan's own rule, with user_from_json) and sends them back
as columns, which marshal writes and reads in C; the parent rebuilds the records with tuple.__new__, in C.
Parent, child and service each have their share of the machine's cores.

Only an accelerator, never a second behaviour. The child's parse of each page must agree with the address
the parent followed; when it does not, or the child fails in any way (a page it cannot parse, a crash, a
payload that does not decode), `scan_in_child` returns False and the caller reads again in-process, where
any problem is raised as it always was. What fetching raises (GraphError, throttling, a dropped connection)
is raised as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import marshal
import os
import re
import socket
from collections.abc import Callable
from itertools import repeat
from typing import Any

import orjson

from provisioner import forked
from provisioner.graph.parse import _assignment, holds_any, user_from_json
from provisioner.graph.strategy import PAGE_SIZE
from provisioner.model.observed import User

MIN_USERS = 20 * PAGE_SIZE  # fewer pages are not worth a process (measured: no gain at 10 pages)
LAG = 2  # pages the child may be behind by: the next one is decoded here

_KEY = b'"@odata.nextLink"'
_LINK = re.compile(rb'"@odata\.nextLink"[ \t\r\n]*:[ \t\r\n]*("(?:[^"\\]|\\.)*")')
_END = (0).to_bytes(4, "little")
_new = tuple.__new__


class Unsure(Exception):
    """A page whose nextLink cannot be told from its bytes alone: the scan is read in-process instead."""


def next_link(raw: bytes) -> str | None:
    """The page's @odata.nextLink, found in its bytes: None when the key is absent.

    Inside a JSON string every quote is escaped, so `"@odata.nextLink"` followed by a colon is a key; users
    read with our $select have no such key, so it is the page's. Anything else (the key twice, a value that
    is not a string) raises Unsure; the child's parse of the page is checked against the answer anyway.
    """
    at = raw.find(_KEY)
    if at < 0:
        return None
    m = _LINK.match(raw, at)
    if m is None or raw.find(_KEY, at + 1) >= 0:
        raise Unsure("nextLink not found in the page's bytes alone")
    try:
        link = orjson.loads(m.group(1))
    except orjson.JSONDecodeError:
        raise Unsure("nextLink not a JSON string") from None
    if not isinstance(link, str) or not link:
        raise Unsure("nextLink not a string")
    return link


def decode_page(raw: bytes | memoryview, named: set[str] | frozenset[str], managed: frozenset[str]) -> tuple[Any, ...]:
    """What the child answers for a page: (True, nextLink as parsed, then the kept users as columns: upns,
    ids, display names, accountEnabled, usage locations, an index into the distinct assignment tuples, and
    those as plain tuples). Raises what parsing or user_from_json raises (the child answers (False,))."""
    return decode_body(orjson.loads(raw), named, managed)


def decode_body(body: Any, named: set[str] | frozenset[str], managed: frozenset[str]) -> tuple[Any, ...]:
    """decode_page of a page already parsed."""
    link = body.get("@odata.nextLink")
    page = body.get("value") or []
    if not isinstance(page, list):
        raise TypeError("value is not a list")  # in-process, slicing it fails
    upns: list[str] = []
    ids: list[str] = []
    names: list[Any] = []
    enabled: list[Any] = []
    places: list[Any] = []
    index: list[int] = []
    shapes: dict[tuple[Any, ...], int] = {}
    for d in page:
        key = str(d.get("userPrincipalName") or "").lower()
        if key in named or (managed and holds_any(d, managed)):  # Reader._scan's rule
            u = user_from_json(d)
            upns.append(u.upn)
            ids.append(u.id)
            names.append(u.display_name)
            enabled.append(u.account_enabled)
            places.append(u.usage_location)
            i = shapes.get(u.assignments)
            if i is None:
                i = shapes[u.assignments] = len(shapes)
            index.append(i)
    plain = [tuple(map(tuple, s)) for s in shapes]  # marshal takes plain tuples only
    return (True, link, upns, ids, names, enabled, places, index, plain)


def add_page(answer: tuple[Any, ...], users: dict[str, User]) -> str | None:
    """Add the users of the child's `answer` to `users` (keyed by lower-cased UPN, later pages winning, as
    in-process); return the page's nextLink as the child parsed it. Raises ValueError for a failed page."""
    ok, link, upns, ids, names, enabled, places, index, plain = answer
    if ok is not True:
        raise ValueError("the child could not decode the page")
    shapes = [tuple(_assignment(*a) for a in s) for s in plain]  # the records in-process reads share
    built = map(_new, repeat(User), zip(ids, upns, names, enabled, places, map(shapes.__getitem__, index), strict=True))
    users.update(zip(map(str.lower, upns), built, strict=False))
    return str(link) if link else None


def _serve(sock: socket.socket, named: set[str], managed: frozenset[str]) -> None:
    """The child: answer each page sent (4-byte length, then the bytes) until an empty one or the end."""
    buf = bytearray(1 << 20)

    def receive(n: int) -> memoryview | None:
        nonlocal buf
        if len(buf) < n:
            buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = sock.recv_into(view[got:n])
            if not k:
                return None
            got += k
        return view[:n]

    with sock:
        while True:
            head = receive(4)
            size = int.from_bytes(head, "little") if head is not None else 0
            raw = receive(size) if size else None
            if raw is None:
                return
            try:
                out = marshal.dumps(decode_page(raw, named, managed))
            except Exception:
                out = marshal.dumps((False,))
            del raw
            sock.sendall(len(out).to_bytes(4, "little"))
            sock.sendall(out)


class _ChildGone(Exception):
    """Sending to the child failed: it has gone."""


class _Raised:
    """What a page's fetch raised, carried as a value: an exception, Ctrl-C above all, raised in a side task
    would leave the event loop from there, before this read has stopped its child (follow() does the same)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _here(decode: Callable[..., tuple[Any, ...]], page: Any, named: set[str], managed: frozenset[str]) -> tuple[Any, ...]:
    """A page (its bytes with decode_page, or parsed with decode_body) decoded here, as the child answers."""
    try:
        return decode(page, named, managed)
    except Exception:
        return (False,)


async def scan_in_child(
    fetch: Callable[[str], Any], first: bytes, named: set[str], managed: frozenset[str], users: dict[str, User]
) -> bool:
    """Every page from `first` on, decoded into `users` by a child, or by this process while the child is
    LAG pages behind (the two share the work, whatever each one's speed); `fetch(url)` (a coroutine) gives
    a page's bytes. Each page's next one is requested before this one is sent or decoded. A page whose
    nextLink its bytes alone do not tell is parsed here, as in-process. False when the child could not be
    used or failed, or its parse of a page disagrees with the nextLink followed (`users` then holds part of
    the read: the caller clears it and reads in-process); what `fetch` raises is raised, after the pages
    before it, as follow() does."""
    mine, theirs = socket.socketpair()

    def work() -> None:
        mine.close()  # else the child holds our end open, and never sees the end of what we send
        _close_all_but(theirs.fileno())
        _serve(theirs, named, managed)

    try:
        pid = forked.fork(work)
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    if pid is None:
        mine.close()
        return False
    writer: asyncio.StreamWriter | None = None
    producer: asyncio.Future[None] | None = None
    following: asyncio.Future[Any] | None = None
    try:
        reader, writer = await asyncio.open_unix_connection(sock=mine, limit=1 << 22)
        out = writer
        # per page, in order: the nextLink followed after it, and its answer when this process decoded it
        # (None: the child's, to read from the socket); or what stopped the fetching
        pages: asyncio.Queue[tuple[str | None, tuple[Any, ...] | None] | BaseException] = asyncio.Queue()
        behind = 0  # pages sent to the child and not answered yet

        async def fetched(url: str) -> Any:
            try:
                return await fetch(url)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                return _Raised(exc)

        async def produce() -> None:
            nonlocal behind, following
            raw = first
            try:
                while True:
                    parsed = None
                    try:
                        if not raw:
                            raise Unsure("no content")
                        link: str | None = next_link(raw)
                    except Unsure:
                        # parsed here as in-process (Answer.json, then follow()): what that raises is raised
                        body = orjson.loads(raw) if raw else None
                        value = body.get("@odata.nextLink")  # type: ignore[union-attr]
                        link, parsed = (str(value) if value else None), body
                    following = asyncio.ensure_future(fetched(link)) if link is not None else None
                    if parsed is not None or behind >= LAG:
                        await asyncio.sleep(0)  # the next page's request leaves before this one is decoded
                        answer = (_here(decode_page, raw, named, managed) if parsed is None
                                  else _here(decode_body, parsed, named, managed))
                        pages.put_nowait((link, answer))
                    else:
                        out.write(len(raw).to_bytes(4, "little"))
                        out.write(raw)
                        behind += 1  # no drain: the transport sends it as the child reads, while we go on
                        pages.put_nowait((link, None))
                    del raw
                    if following is None:
                        break
                    raw = await following
                    following = None
                    if isinstance(raw, _Raised):
                        raise raw.exc
                out.write(_END)
                try:
                    await out.drain()
                except ConnectionError as exc:
                    raise _ChildGone() from exc
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    out.write_eof()
                raise
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    out.write_eof()  # the child ends once it has answered what it was sent
                pages.put_nowait(exc)  # raised by the reading side, after the pages before it

        producer = asyncio.ensure_future(produce())
        while True:
            item = await pages.get()
            if isinstance(item, BaseException):
                if isinstance(item, _ChildGone):
                    return False
                raise item
            expected, answer = item
            try:
                if answer is None:
                    size = int.from_bytes(await reader.readexactly(4), "little")
                    answer = marshal.loads(await reader.readexactly(size))
                    behind -= 1
                link = add_page(answer, users)
            except (asyncio.IncompleteReadError, ConnectionError, EOFError, ValueError, TypeError, IndexError):
                return False  # the child died, or an answer did not decode (or was a failed page)
            if link != expected:
                return False
            if link is None:
                await producer
                return True
    finally:
        forked.reap(pid, kill=True)  # done with it (or giving up on it): it is only ever waiting for a page
        for task in (following, producer):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if writer is None:
            mine.close()
        else:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _close_all_but(keep: int) -> None:
    """In the child: close every inherited descriptor but stdio and `keep`, so that a connection the parent
    closes meanwhile is closed for real (not held open by the child)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)
