"""Property test of the writer's schedule (pure): random plans across users with cross-user dependsOn, and
random Graph answers (success, verdict, throttling, 424). Invariants hold for every run."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.graph.schedule import BATCH_SIZE, WriteSchedule
from provisioner.model.plan import Action, LicenseRef

SKU = LicenseRef("0dab259f-bf13-4952-b7f8-7db8f131b28d", "MCOPSTN1")


@st.composite
def plans(draw: st.DrawFn) -> list[Action]:
    n = draw(st.integers(1, 45))
    actions: list[Action] = []
    for i in range(n):
        user = f"u{draw(st.integers(0, 12))}"
        deps = draw(st.lists(st.integers(0, i - 1), max_size=2, unique=True)) if i else []
        kind = draw(st.sampled_from(["loc", "add", "remove"]))
        common = {
            "id": f"a{i}",
            "user_id": user,
            "upn": f"{user}@x.com",
            "depends_on": tuple(f"a{d}" for d in deps),
        }
        if kind == "loc":
            actions.append(Action(type="setUsageLocation", usage_location_to="US", **common))
        else:
            actions.append(Action(type="assignLicenses", **{kind: (SKU,)}, **common))  # type: ignore[arg-type]
    return actions


@settings(max_examples=150, deadline=None)
@given(plans(), st.randoms(use_true_random=False))
def test_schedule_invariants(actions: list[Action], rnd) -> None:  # type: ignore[no-untyped-def]
    s = WriteSchedule(actions)
    by_id = {a.id: a for a in actions}
    order = {a.id: i for i, a in enumerate(actions)}
    executed: list[str] = []  # ids Graph ran, in order
    now, rounds = 0.0, 0
    while not s.done:
        rounds += 1
        assert rounds < 2000, "no progress"
        batches = s.next_batches(now, rnd.randint(1, 4))
        if not batches:
            wake = s.next_wake()
            if wake is None:
                s.stuck()
                break
            now = max(now, wake)
            continue
        users_in_flight: set[str] = set()
        for b in batches:
            assert 0 < len(b.actions) <= BATCH_SIZE
            users = {a.user_id for a in b.actions}
            assert not users & users_in_flight  # a user's actions are in one batch at a time
            users_in_flight |= users
            body = b.body()["requests"]
            failed_in_batch: set[str] = set()
            for a, req in zip(b.actions, body, strict=True):
                for (
                    d
                ) in a.depends_on:  # sent only after its dependencies succeeded (or earlier in this batch)
                    earlier = [x.id for x in b.actions[: b.actions.index(a)]]
                    assert d in earlier or s.final[d].status == "succeeded"
                if set(req.get("dependsOn", [])) & failed_in_batch:  # Graph answers 424: not run
                    if a.id not in s.final:  # what the writer does with a 424
                        s.requeue(a.id)
                    failed_in_batch.add(req["id"])
                    continue
                roll = rnd.random()
                if roll < 0.6:
                    executed.append(a.id)
                    s.succeeded(a.id, 200, None)
                elif roll < 0.8:
                    s.failed(a.id, 400, "Request_BadRequest", "no", None)
                    failed_in_batch.add(req["id"])
                else:
                    s.retry_at(a.id, now + rnd.random())
                    failed_in_batch.add(req["id"])
        now += 0.01
    outcomes = s.outcomes()
    assert [o.action_id for o in outcomes] == [a.id for a in actions]  # exactly one each, in plan order
    status = {o.action_id: o.status for o in outcomes}
    for a in actions:
        if status[a.id] == "skipped":
            assert any(status[d] != "succeeded" for d in a.depends_on) or a.id not in executed
        if a.id in executed:
            assert all(status[d] == "succeeded" for d in a.depends_on)
    for u in {a.user_id for a in actions}:  # per user, Graph ran the actions in plan order
        ran = [x for x in executed if by_id[x].user_id == u]
        assert ran == sorted(ran, key=order.__getitem__)
