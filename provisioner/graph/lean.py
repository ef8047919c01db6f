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
import sys
import types
from typing import Any

_NAME = "httpx._main"


def skip_httpx_cli() -> None:
    """Before the first `import httpx`: stand in for its CLI module. A no-op once httpx is imported."""
    if "httpx" in sys.modules or _NAME in sys.modules:
        return
    stand_in = types.ModuleType(_NAME, "Stands in for httpx's CLI until it is called (provisioner/graph/lean.py).")

    def main(*args: Any, **kwargs: Any) -> Any:
        if sys.modules.get(_NAME) is stand_in:
            del sys.modules[_NAME]
        return importlib.import_module(_NAME).main(*args, **kwargs)

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in
