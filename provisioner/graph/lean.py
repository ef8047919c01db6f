"""`import httpx` without httpx's command-line client. Impure (sys.modules).

httpx's `__init__` runs `from ._main import main`, its CLI, which imports click, rich and pygments whenever
they are installed (they are: typer needs rich, and rich pygments): ~0.06-0.09 s of every command that
talks to a tenant, for a CLI we never call. Upstream knows it (a lazy import of `_main` was merged in the
httpx2 fork, pydantic/httpx2#947; fastapi/fastapi#5883 measured the same). Registering a stand-in for
`httpx._main` before httpx is first imported skips it; the stand-in's `main` imports the real CLI if anyone
calls `httpx.main()`, so nothing is lost. Nothing else in httpx reads `_main`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

_NAME = "httpx._main"


def skip_httpx_cli() -> None:
    """Before the first `import httpx`: stand in for its CLI module. A no-op once httpx is imported, or when
    httpx's CLI module cannot be found where it was (then httpx is imported whole, as usual).

    The stand-in has the real module's spec; its `main` and any other attribute load the real module (and
    make it `httpx._main` from then on), so `httpx.main()`, `from httpx._main import X` and
    `importlib.util.find_spec("httpx._main")` work as without it.
    """
    if "httpx" in sys.modules or _NAME in sys.modules:
        return
    try:
        top = importlib.util.find_spec("httpx")  # finds, does not import
        where = list(top.submodule_search_locations or ()) if top is not None else []
        spec = importlib.machinery.PathFinder.find_spec(_NAME, where) if where else None
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return
    stand_in = types.ModuleType(_NAME, "Stands in for httpx's CLI until it is used (provisioner/graph/lean.py).")
    stand_in.__spec__ = spec
    stand_in.__file__ = spec.origin

    def real() -> types.ModuleType:
        if sys.modules.get(_NAME) is stand_in:
            del sys.modules[_NAME]
        return importlib.import_module(_NAME)  # sets it on the httpx package too

    def main(*args: Any, **kwargs: Any) -> Any:
        return real().main(*args, **kwargs)

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(real(), attr)

    stand_in.main = main  # type: ignore[attr-defined]
    stand_in.__getattr__ = __getattr__  # type: ignore[method-assign]
    stand_in.__dict__[_MARK] = True
    sys.modules[_NAME] = stand_in


_MARK = "__provisioner_stand_in__"


def is_stand_in(module: object) -> bool:
    """Whether `module` is the stand-in (tests tell it from the real httpx stack with this)."""
    return bool(getattr(module, "__dict__", {}).get(_MARK))


def settle() -> None:
    """After `import httpx`: make the stand-in `httpx._main` on the package, as an import would have."""
    httpx = sys.modules.get("httpx")
    stand_in = sys.modules.get(_NAME)
    if httpx is not None and stand_in is not None and not hasattr(httpx, "_main"):
        httpx._main = stand_in  # type: ignore[attr-defined]
