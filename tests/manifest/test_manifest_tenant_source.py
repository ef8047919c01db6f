"""`Desired.tenant_source`: the FILE:LINE of the `tenant:` key, which the planner's tenant-mismatch points at."""

from __future__ import annotations

from pathlib import Path

from manifest.helpers import ok, write


def test_tenant_source_is_the_line_of_the_tenant_key(tmp_path: Path) -> None:
    f = write(tmp_path, "m.yaml", """
        users:
          - upn: a@contoso.com
        tenant: contoso.onmicrosoft.com
        """)
    desired = ok(f)
    assert desired.tenant == "contoso.onmicrosoft.com"
    assert str(desired.tenant_source) == f"{f}:5"  # 2 header lines, then users (3), the entry (4), tenant (5)


def test_tenant_source_is_the_first_file_that_sets_it_and_none_without_a_tenant(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", """
        tenant: Contoso.onmicrosoft.com
        users:
          - upn: a@contoso.com
        """)
    b = write(tmp_path, "b.yaml", """
        users:
          - upn: b@contoso.com
        tenant: contoso.onmicrosoft.com
        """)
    assert str(ok(b, a).tenant_source) == f"{a}:3"
    c = write(tmp_path, "c.yaml", """
        users:
          - upn: c@contoso.com
        """)
    assert ok(c).tenant is None and ok(c).tenant_source is None
