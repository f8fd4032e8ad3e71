"""Request metrics tallied in the process and flushed, and the one use of prometheus-client
internals that makes it possible: adding many histogram observations at once."""

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest

from app.http.access_log import Exchange
from app.metrics import RequestMetrics, _Tally, add_observations

BOUNDS = (0.001, 0.005, 0.1, 60)
DURATIONS = [0.0004, 0.001, 0.003, 0.003, 0.07, 2.0, 45.0, 1000.0]


def histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("t_seconds", "t", ["route"], buckets=BOUNDS, registry=registry)


def test_add_observations_gives_the_exposition_observe_gives() -> None:
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    observed = histogram(one_by_one).labels("/a")
    for seconds in DURATIONS:
        observed.observe(seconds)
    buckets = [0] * (len(BOUNDS) + 1)
    for seconds in DURATIONS:
        buckets[next((i for i, bound in enumerate(BOUNDS) if seconds <= bound), len(BOUNDS))] += 1
    add_observations(histogram(at_once).labels("/a"), sum(DURATIONS), buckets)
    assert samples(at_once) == samples(one_by_one)


def samples(registry: CollectorRegistry) -> list[str]:
    """The exposition's lines but the `_created` time, which differs between two histograms."""
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_tally_puts_a_duration_in_the_first_bucket_that_holds_it() -> None:
    tally = _Tally()
    for seconds in (0.001, 0.0011, 300.0, 301.0):
        tally.add(Exchange("GET", "/t", duration=seconds, bytes_out=10))
    assert tally.count == 4 and tally.sent == 40
    assert tally.buckets[0] == 1 and tally.buckets[1] == 1 and tally.buckets[-2:] == [1, 1]


def answered(route: str, status: int) -> Exchange:
    exchange = Exchange("GET", route, status=status, dialect="openai", route=route, duration=0.002)
    exchange.bytes_out = 10
    return exchange


def requests_total(route: str, status: str) -> float:
    labels = {"dialect": "openai", "route": route, "method": "GET", "status": status}
    return REGISTRY.get_sample_value("filedock_http_requests_total", labels) or 0.0


def test_flush_adds_each_request_once() -> None:
    metrics, route = RequestMetrics(), "/unit/flush/{id}"
    for _ in range(3):
        metrics.answered([answered(route, 200)])
    assert requests_total(route, "200") == 0.0  # tallied, not yet written
    metrics.flush()
    metrics.flush()
    assert requests_total(route, "200") == 3.0
    labels = {"dialect": "openai", "route": route, "method": "GET"}
    assert REGISTRY.get_sample_value("filedock_http_request_duration_seconds_count", labels) == 3.0
