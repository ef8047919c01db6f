"""Finding manifest files: apart from the loader, which imports the YAML reader (~50 ms), so that deciding
how to load (manifest/background.py) does not import it. Pure apart from listing folders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from provisioner.errors import ManifestIssue

MANIFEST_SUFFIXES = (".yaml", ".yml")


def find_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[ManifestIssue]]:
    """The manifest files named by `paths` (files, or folders searched recursively), sorted, no duplicates."""
    files: dict[str, str] = {}  # resolved -> as displayed
    issues: list[ManifestIssue] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found = [
                f
                for f in p.rglob("*")
                if f.suffix.lower() in MANIFEST_SUFFIXES
                and f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            ]
            if not found:
                issues.append(ManifestIssue(str(p), 0, "no *.yaml or *.yml manifest in this folder", "check the path"))
            for f in found:
                files.setdefault(str(f.resolve()), str(f))
        elif p.is_file():
            files.setdefault(str(p.resolve()), str(p))
        else:
            issues.append(ManifestIssue(str(p), 0, "no such file or folder", "check the path"))
    return sorted(files.values()), issues
