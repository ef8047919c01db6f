"""The planner and renderers load without the Graph stack (STYLE: only provisioner.graph talks to Graph)."""

from __future__ import annotations

import subprocess
import sys


def test_planner_and_render_import_without_msgraph() -> None:
    code = (
        "import sys, provisioner.planner, provisioner.render\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('msgraph', 'msgraph_core', 'azure', 'httpx', 'kiota_abstractions'))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
