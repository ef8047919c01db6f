"""docs/gitops.md stays true: its offline walk-through runs as written, and every test it cites exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .gha_runner import REPO

DOC = REPO / "docs" / "gitops.md"


def section(title_prefix: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title_prefix}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_offline_walkthrough_runs_as_written(tmp_path: Path) -> None:
    [script] = re.findall(r"```sh\n(.*?)```", section("7."), re.S)
    edit = (
        f"{sys.executable} -c \"import pathlib; p = pathlib.Path('manifests/tenant.yaml'); "
        "p.write_text(p.read_text().replace('carol.us@contoso.com\\n    phoneSystem: true\\n    callingPlan: none', "
        "'carol.us@contoso.com\\n    callingPlan: domestic'))\""
    )
    lines = [
        edit if line.startswith("# edit manifests/tenant.yaml") else line for line in script.splitlines()
    ]
    proc = subprocess.run(
        ["bash", "-c", "\n".join(lines)],  # as typed in a shell: no -e, the `echo $?` lines show each exit
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    exit_codes = [line for line in proc.stdout.splitlines() if line.strip() in ("0", "1", "2")]
    assert exit_codes == ["0", "2", "0"], proc.stdout + proc.stderr
    assert (tmp_path / "audit.jsonl").read_text().count("carol.us@contoso.com") == 1


def test_every_test_the_guide_cites_exists() -> None:
    cited = set(re.findall(r"`(test_[a-z0-9_]+)`", DOC.read_text()))
    assert len(cited) >= 8
    sources = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    missing = sorted(name for name in cited if f"def {name}(" not in sources)
    assert missing == []
