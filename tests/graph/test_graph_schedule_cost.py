"""The write schedule's cost: each ready fragment is built once, and a packing call looks at a bounded window."""

from __future__ import annotations

from provisioner.graph import schedule as schedule_module
from provisioner.graph.schedule import BATCH_SIZE, LOOKAHEAD, WriteSchedule
from provisioner.model.plan import Action, LicenseRef

CP = LicenseRef("0dab259f-bf13-4952-b7f8-7db8f131b28d", "MCOPSTN1")


def test_packing_walks_a_bounded_window_and_still_fills_every_batch(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    n = 10_000
    actions = [Action(f"a{i}", "assignLicenses", f"user-{i}", f"u{i}@contoso.com", remove=(CP,)) for i in range(n)]
    sched = WriteSchedule(actions)
    pulled: list[int] = []
    original = WriteSchedule._fragments

    def counting(self, now):  # type: ignore[no-untyped-def]
        count = 0
        try:
            for frag in original(self, now):
                count += 1
                yield frag
        finally:  # also when the caller stops early (GeneratorExit at the yield)
            pulled.append(count)

    monkeypatch.setattr(schedule_module.WriteSchedule, "_fragments", counting)
    calls = 0
    while not sched.done:
        batches = sched.next_batches(now=0.0, slots=4)
        calls += 1
        assert batches and all(len(b.actions) == BATCH_SIZE for b in batches)
        for b in batches:
            for a in b.actions:
                sched.succeeded(a.id, 200, None)
    assert calls == n // (4 * BATCH_SIZE)  # every call filled all four slots
    # Each call looked at no more than the window (+ the fragment that crossed it), and a ready fragment is
    # pulled once and kept until sent: a full scan per call would have pulled n, n - 80, n - 160, ...
    # fragments (about 625,000 in all).
    assert max(pulled) <= LOOKAHEAD + 1
    assert sum(pulled) == n
