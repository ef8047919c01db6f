"""Helpers for manifest tests: write manifests into a folder and collect the problems `load_desired` reports."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from provisioner.errors import ManifestError
from provisioner.manifest import load_desired
from provisioner.model.desired import Desired

HEAD = "apiVersion: provisioner/v1\nkind: TeamsVoiceLicensing\n"


def write(folder: Path, name: str, body: str, *, head: bool = True) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((HEAD if head else "") + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def problems(*paths: Path | str) -> list[str]:
    """Every issue line (`FILE:LINE: message — hint`), file names relative to their folder for brevity."""
    with pytest.raises(ManifestError) as info:
        load_desired(list(paths))
    return [str(i) for i in info.value.issues]


def only_problem(*paths: Path | str) -> str:
    found = problems(*paths)
    assert len(found) == 1, found
    return found[0]


def ok(*paths: Path | str) -> Desired:
    return load_desired(list(paths))
