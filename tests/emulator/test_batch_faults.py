"""$batch (limit, dependsOn/424, any order, per-sub-request faults), seeded faults and /_emulator/stats."""

from __future__ import annotations

from typing import Any

from emu_helpers import DOM, EV, Client, error_of, make_client

from provisioner.emulator.faults import FaultConfig

JSON = {"Content-Type": "application/json"}


def _get(i: int, url: str = "/organization") -> dict[str, Any]:
    return {"id": str(i), "method": "GET", "url": url}


def _assign(i: int, upn: str, add: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": str(i), "method": "POST", "url": f"/users/{upn}/assignLicense", "headers": JSON,
            "body": {"addLicenses": [{"skuId": s, "disabledPlans": []} for s in add], "removeLicenses": []},
            **extra}


def test_batch_limit_is_20(client: Client) -> None:
    r = client.post("/v1.0/$batch", json={"requests": [_get(i) for i in range(21)]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    assert "exceeds the limit of 20" in r.json()["error"]["message"]
    r = client.post("/v1.0/$batch", json={"requests": [_get(i) for i in range(20)]})
    assert r.status_code == 200
    assert sorted(int(x["id"]) for x in r.json()["responses"]) == list(range(20))


def test_batch_runs_sub_requests_and_returns_them_by_id(client: Client) -> None:
    reqs = [
        {"id": "p", "method": "PATCH", "url": "/users/sam.new@contoso.com", "headers": JSON,
         "body": {"usageLocation": "FR"}},
        _assign(2, "dave.us@contoso.com", [EV, DOM]),
        _get(3, "/users/dave.us@contoso.com?$select=assignedLicenses"),
    ]
    reqs[1]["dependsOn"], reqs[2]["dependsOn"] = ["p"], ["2"]  # fully sequential: p, then 2, then 3
    r = client.post("/v1.0/$batch", json={"requests": reqs})
    by_id = {x["id"]: x for x in r.json()["responses"]}
    assert by_id["p"]["status"] == 204 and "body" not in by_id["p"]
    assert by_id["2"]["status"] == 200 and by_id["2"]["body"]["userPrincipalName"] == "dave.us@contoso.com"
    assert {lic["skuId"] for lic in by_id["3"]["body"]["assignedLicenses"]} >= {EV, DOM}
    # relative ids/urls work and the order is not promised: here it differs from the request order
    assert [x["id"] for x in r.json()["responses"]] != ["p", "2", "3"]


def test_dependents_of_a_failed_request_get_424(client: Client) -> None:
    reqs = [_assign(1, "dave.us@contoso.com", [DOM]),  # refused: no Phone System
            _assign(2, "dave.us@contoso.com", [EV], dependsOn=["1"]),
            _get(3, "/users/dave.us@contoso.com")]
    reqs[2]["dependsOn"] = ["2"]
    r = client.post("/v1.0/$batch", json={"requests": reqs})
    by_id = {x["id"]: x for x in r.json()["responses"]}
    assert by_id["1"]["status"] == 400
    assert by_id["1"]["body"]["error"]["message"].startswith("License assignment failed because service plan")
    assert by_id["2"]["status"] == 424 and by_id["3"]["status"] == 424
    assert by_id["2"]["body"]["error"]["code"] == "FailedDependency"
    got = client.get("/v1.0/users/dave.us@contoso.com", params={"$select": "assignedLicenses"}).json()
    assert EV not in {lic["skuId"] for lic in got["assignedLicenses"]}  # the dependent never ran


def test_batch_payload_errors(client: Client) -> None:
    cases = [
        {"requests": []},
        {"requests": [_get(1), _get(1)]},
        {"requests": [{**_get(1), "id": "a"}, {**_get(2), "id": "A"}]},  # ids are case insensitive
        {"requests": [{**_get(1), "dependsOn": ["9"]}]},
        {"requests": [{**_assign(1, "dave.us@contoso.com", [EV]), "headers": {}}]},
        {"nope": 1},
    ]
    for payload in cases:
        assert client.post("/v1.0/$batch", json=payload).status_code == 400, payload
    r = client.post("/v1.0/$batch", json={"requests": [{**_assign(1, "dave.us@contoso.com", [EV]), "headers": {}}]})
    assert error_of(r) == (400, "BadRequest", "Write request id : 1 does not contain Content-Type header or body.")


def test_each_sub_request_is_throttled_on_its_own() -> None:
    client = make_client(faults=FaultConfig(throttle_rate=0.5, seed=11, retry_after_s=2))
    statuses: list[int] = []
    envelopes_throttled = 0
    for _ in range(10):
        r = client.post("/v1.0/$batch", json={"requests": [_get(i) for i in range(20)]})
        if r.status_code == 429:  # the envelope itself can be throttled too
            assert r.headers["Retry-After"] == "2"
            envelopes_throttled += 1
            continue
        for sub in r.json()["responses"]:
            statuses.append(sub["status"])
            if sub["status"] == 429:
                assert sub["headers"]["Retry-After"] == "2"
                assert sub["body"]["error"]["code"] == "TooManyRequests"
    assert 429 in statuses and 200 in statuses  # mixed within batches, not all-or-nothing
    stats = client.get("/_emulator/stats").json()
    assert stats["throttled"] == statuses.count(429) + envelopes_throttled
    assert stats["subRequests"] == len(statuses) == 20 * (10 - envelopes_throttled)


def _statuses(seed: int, n: int = 60, **cfg: Any) -> list[int]:
    client = make_client(faults=FaultConfig(seed=seed, **cfg))
    return [client.get("/v1.0/organization").status_code for _ in range(n)]


def test_faults_are_seeded_and_repeatable() -> None:
    a = _statuses(5, throttle_rate=0.3, error_rate=0.2)
    assert a == _statuses(5, throttle_rate=0.3, error_rate=0.2)
    assert a != _statuses(6, throttle_rate=0.3, error_rate=0.2)
    assert {429, 503, 200} <= set(a)
    assert set(_statuses(5)) == {200}
    assert set(_statuses(5, error_rate=1.0)) == {503}


def test_throttle_answer_is_graphs() -> None:
    client = make_client(faults=FaultConfig(throttle_rate=1.0, retry_after_s=3))
    r = client.get("/v1.0/users")
    assert error_of(r) == (429, "TooManyRequests", "Please retry again later.")
    assert r.headers["Retry-After"] == "3" and r.headers["request-id"]


def test_stats_keys_counts_and_reset_never_faulted() -> None:
    client = make_client(faults=FaultConfig(throttle_rate=1.0))
    client.get("/v1.0/users")
    client.post("/v1.0/$batch", json={"requests": [_get(1)]})
    for url in ("/_emulator/stats", "/v1.0/_emulator/stats"):
        r = client.get(url)
        assert r.status_code == 200  # stats are never faulted
        stats = r.json()
        assert list(stats) == ["requests", "batches", "subRequests", "throttled", "errors", "byRoute"]
        assert stats["requests"] == 2 and stats["batches"] == 1 and stats["throttled"] == 2
        assert stats["byRoute"] == {"GET /users": 1, "POST /$batch": 1}
    assert client.post("/_emulator/stats/reset").status_code == 204
    assert client.get("/_emulator/stats").json() == {"requests": 0, "batches": 0, "subRequests": 0, "throttled": 0,
                                                     "errors": 0, "byRoute": {}}


def test_stats_count_sub_requests_and_errors(client: Client) -> None:
    client.post("/v1.0/$batch", json={"requests": [_get(1), _get(2, "/users/ghost@contoso.com"), _get(3, "/users")]})
    s = client.get("/_emulator/stats").json()
    assert (s["requests"], s["batches"], s["subRequests"], s["errors"]) == (1, 1, 3, 1)
    assert s["byRoute"] == {"GET /organization": 1, "GET /users/{id}": 1, "GET /users": 1, "POST /$batch": 1}


def test_latency_is_added_per_request_and_per_dependency_level_of_a_batch_but_not_to_stats() -> None:
    import time

    client = make_client(faults=FaultConfig(latency_ms=120))
    sleeps: list[float] = []
    faults = client.app.state.emulator.faults
    real_delay = faults.delay

    async def counted(times: int = 1) -> None:
        if times > 0:
            sleeps.append(times * faults.config.latency_ms)
        await real_delay(times)

    faults.delay = counted
    start = time.monotonic()
    assert client.get("/v1.0/organization").status_code == 200
    assert time.monotonic() - start >= 0.12  # a lower bound: not sensitive to a loaded machine
    assert client.get("/_emulator/stats").status_code == 200
    # independent sub-requests run side by side, as Graph runs them: one latency for the whole batch
    assert client.post("/v1.0/$batch", json={"requests": [_get(1), _get(2)]}).status_code == 200
    assert sleeps == [120, 120]  # organization and the $batch envelope; never stats
    # a dependsOn chain of three runs in sequence: the envelope's latency plus two more levels
    chain = [_get(1), {**_get(2), "dependsOn": ["1"]}, {**_get(3), "dependsOn": ["2"]}]
    start = time.monotonic()
    assert client.post("/v1.0/$batch", json={"requests": chain}).status_code == 200
    assert time.monotonic() - start >= 0.36
    assert sleeps == [120, 120, 120, 240]


def test_batch_sub_request_headers_must_be_an_object(client: Client) -> None:
    for headers in (True, "x", [1, 2], 5):
        r = client.post("/v1.0/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/organization",
                                                            "headers": headers}]})
        assert error_of(r) == (400, "BadRequest",
                               "Invalid batch payload format: headers of request '1' must be an object.")


def test_control_characters_in_the_path_get_a_graph_error(client: Client) -> None:
    for path in ("/v1.0/users/a%0Ab", "/v1.0/%0A0", "/v1.0/users/%0D%0A/assignLicense"):
        r = client.get(path)
        assert 400 <= r.status_code < 500 and r.json()["error"]["innerError"]["request-id"], path
    assert error_of(client.get("/v1.0/users/a%0Ab"))[:2] == (404, "Request_ResourceNotFound")


def test_batch_urls_must_be_relative_as_in_graph(client: Client) -> None:
    # json-batching.md: "this url is /users", not https://graph.microsoft.com/v1.0/users; Graph answers an absolute
    # url (msgraph-sdk-python#1015) and a version prefix (msgraph-sdk-javascript#1178) with 400 per sub-request.
    reqs = [_get(1, "https://graph.microsoft.com/v1.0/organization"), _get(2, "http://testserver/v1.0/organization"),
            _get(3, "/v1.0/organization"), _get(4, "organization"), _get(5, "/organization")]
    r = client.post("/v1.0/$batch", json={"requests": reqs})
    assert r.status_code == 200
    by_id = {x["id"]: x for x in r.json()["responses"]}
    for i, segment in (("1", "https:"), ("2", "http:"), ("3", "v1.0")):
        assert by_id[i]["status"] == 400, by_id[i]
        assert by_id[i]["body"]["error"] == {**by_id[i]["body"]["error"], "code": "BadRequest",
                                             "message": f"Resource not found for the segment '{segment}'."}
    assert by_id["4"]["status"] == by_id["5"]["status"] == 200  # the leading slash is optional
    assert by_id["4"]["body"] == by_id["5"]["body"]


def test_a_batch_is_fully_sequential_or_fully_parallel(client: Client) -> None:
    # json-batching.md's tip, which Graph enforces with a 400 for the whole batch (graph-docs#16280)
    def shape(*deps: list[str]) -> dict[str, Any]:
        return {"requests": [{**_get(i + 1), **({"dependsOn": d} if d else {})} for i, d in enumerate(deps)]}

    for ok in (shape([], [], []), shape([], ["1"], ["2"]), shape([], ["1"], ["1"])):
        assert client.post("/v1.0/$batch", json=ok).status_code == 200, ok
    for mixed in (shape([], ["1"], []),  # a chain beside an independent request
                  shape([], [], ["2"]),  # an independent request before a chain
                  shape([], ["1"], ["2"], ["1"]),  # a chain and a branch
                  shape([], [], ["1", "2"])):  # a join
        r = client.post("/v1.0/$batch", json=mixed)
        assert error_of(r) == (400, "BadRequest", "Batch should be either fully sequential or fully parallel."), mixed


def test_rate_limit_is_a_budget_that_refills() -> None:
    """`serve --rate-limit R`: R requests a second, with a burst of one second's worth; past it 429 with the
    whole seconds until a request fits again. Not random: the same load is refused the same way."""
    from provisioner.emulator.faults import FaultInjector

    now = [100.0]
    f = FaultInjector(FaultConfig(rate_limit=10), clock=lambda: now[0])
    assert [f.decide() for _ in range(10)] == [None] * 10  # the burst
    refused = f.decide()
    assert refused is not None and refused.status == 429 and refused.headers == {"Retry-After": "1"}
    assert f.decide(counted=False) is None  # a $batch envelope costs nothing: its requests are counted
    now[0] += 0.5  # half a second: five requests' worth
    assert [f.decide() is None for _ in range(6)] == [True] * 5 + [False]
    now[0] += 60  # a long pause refills to the burst, no more
    assert sum(f.decide() is None for _ in range(15)) == 10
    slow = FaultInjector(FaultConfig(rate_limit=0.2), clock=lambda: now[0])  # one request per 5 s
    assert slow.decide() is None
    late = slow.decide()
    assert late is not None and late.headers == {"Retry-After": "5"}
    assert f.rate_limited == 7 and slow.rate_limited == 1


def test_rate_limit_throttles_batch_sub_requests_one_by_one() -> None:
    client = make_client(faults=FaultConfig(rate_limit=5))
    r = client.post("/v1.0/$batch", json={"requests": [_get(i) for i in range(8)]})
    assert r.status_code == 200  # the envelope is not refused: its sub-requests are, each on its own
    statuses = sorted(x["status"] for x in r.json()["responses"])
    assert statuses == [200] * 5 + [429] * 3
    throttled = [x for x in r.json()["responses"] if x["status"] == 429]
    assert all(x["headers"]["Retry-After"] == "1" for x in throttled)


def test_random_faults_follow_the_arrival_order_whatever_the_rate_limit_refuses() -> None:
    """The n-th request gets the n-th random verdict, with or without a rate limit refusing some of them."""
    from provisioner.emulator.faults import FaultInjector

    now = [0.0]
    plain = FaultInjector(FaultConfig(throttle_rate=0.2, error_rate=0.2, seed=5))
    limited = FaultInjector(FaultConfig(throttle_rate=0.2, error_rate=0.2, seed=5, rate_limit=2), clock=lambda: now[0])
    refused = 0
    for _ in range(40):
        now[0] += 0.4  # a little faster than 2 a second: the limit refuses now and then
        want, got = plain.decide(), limited.decide()
        if limited.rate_limited > refused:
            refused = limited.rate_limited
            continue  # refused by the limit: its random verdict was drawn, and not used
        assert got == want
    assert 3 <= refused <= 20, refused
