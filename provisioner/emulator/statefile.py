"""The emulator state file on disk: shape checks that name the bad spot, and atomic writes. File I/O only.

A write goes to a temp file in the same folder, is fsynced, then os.replace()d over the target: a reader (or
a process killed mid-write) sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson

from provisioner.errors import ProvisionerError


class StateError(ProvisionerError):
    """An emulator state file that cannot be read or does not have the CONTRACT §4 shape."""


def need(d: Any, key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise StateError(f"{where}: missing `{key}`")
    value = d[key]
    if not isinstance(value, typ):
        raise StateError(f"{where}.{key}: expected {getattr(typ, '__name__', typ)}, got {type(value).__name__}")
    return value


GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def need_guid(d: Any, key: str, where: str) -> str:
    """d[key], a GUID (lower-cased), else StateError naming where."""
    value = str(need(d, key, str, where)).lower()
    if not GUID.match(value):
        raise StateError(f"{where}.{key}: {value!r} is not a GUID")
    return value


def parse_licenses(items: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(items, list):
        raise StateError(f"{where}: expected a list of {{skuId, disabledPlans}}")
    out: dict[str, list[str]] = {}
    for i, lic in enumerate(items):
        sku = need_guid(lic, "skuId", f"{where}[{i}]")
        plans = lic.get("disabledPlans") or []
        if not isinstance(plans, list):
            raise StateError(f"{where}[{i}].disabledPlans: expected a list")
        out[sku] = [str(p).lower() for p in plans]
    return out


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write `data` as indented JSON, atomically (see write_bytes_atomic)."""
    write_bytes_atomic(path, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace it over `path` (never a torn file)."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent or ".", prefix=f".{p.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600: keep the mode of the file replaced, or what open() would have given
        try:
            mode = os.stat(p).st_mode & 0o777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
