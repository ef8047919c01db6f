"""`provision validate PATH...`: offline schema and catalog checks of manifests. Prints a summary to stderr.

Success prints `ok: N users in M files` and returns 0. Problems (`ManifestError`: every issue
`FILE:LINE: what — what to do`, or a bad `--catalog` file) are printed as `error: ...` and return 1;
with `--debug` they are raised for a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from provisioner.errors import ProvisionerError


def run(paths: Sequence[Path | str], catalog: Path | str | None = None, debug: bool = False) -> int:
    from provisioner.catalog import load_catalog
    from provisioner.manifest import load_desired

    try:
        cat = load_catalog(catalog) if catalog is not None else None
        desired = load_desired(list(paths), catalog=cat)
    except ProvisionerError as exc:
        if debug:
            raise
        # Printed here, in the CLI's own `error: ...` form, so the exit code never depends on how the
        # top-level handler copes with this exception.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n, m = len(desired.users), len(desired.files)
    print(f"ok: {n:,} user{'s' if n != 1 else ''} in {m} file{'s' if m != 1 else ''}", file=sys.stderr)
    return 0
