"""Known defects outside apply's files that its tests must work around, each with how it is detected.

`provisioner.cli.main` catches `click.exceptions.Abort`/`Exit`, which the click vendored in typer 0.29
(`typer._click`) does not define, so any error raised by a command turns into an AttributeError there
(a traceback instead of "error: ..."). Reported to the CLI module's owner.
"""

from __future__ import annotations

import inspect

import provisioner.cli

try:
    from typer import _click as vendored_click  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - an older typer uses click itself, which has both names
    vendored_click = None

# True while provisioner.cli.main still names the missing class. In-process tests get a shim (conftest);
# a subprocess cannot, so tests of a subprocess's error output are expected to fail until it is fixed.
CLI_MAIN_ABORT_BUG = "click.exceptions.Abort" in inspect.getsource(provisioner.cli.main) and not hasattr(
    getattr(vendored_click, "exceptions", None), "Abort"
)
