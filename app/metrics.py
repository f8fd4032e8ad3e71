"""Prometheus metrics, `filedock_*`, through prometheus-client.

With several workers each process counts on its own; `filedock serve` sets
`PROMETHEUS_MULTIPROC_DIR` to a fresh directory (`<data_dir>/.metrics`) before any worker
starts, so the counters live in files there and a scrape of any worker sums them all. Without
that variable (one process, or another ASGI server) the process's own registry is served.

Request metrics are tallied in each process and written to the metrics in batches
(`RequestMetrics.flush`). Per-project usage is read from the database when scraped, at most
every `USAGE_TTL_SECONDS`.
"""

import asyncio
import bisect
import os
import time
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from app.core.maintenance import RoundReport
from app.core.records import ProjectUsage
from app.http.access_log import Exchange

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
USAGE_TTL_SECONDS = 15.0
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_UPPER_BOUNDS = (*_BUCKETS, float("inf"))
FLUSH_SECONDS = 1.0  # how far behind a scrape of one worker may be on another's requests

REQUESTS = Counter(
    "filedock_http_requests", "HTTP requests answered.", ["dialect", "route", "method", "status"]
)
DURATION = Histogram(
    "filedock_http_request_duration_seconds",
    "Time from a request's headers to the end of its answer.",
    ["dialect", "route", "method"],
    buckets=_BUCKETS,
)
RECEIVED = Counter("filedock_http_received_bytes", "Request body bytes received.", ["dialect"])
SENT = Counter("filedock_http_sent_bytes", "Response body bytes sent.", ["dialect"])
HANGUPS = Counter(
    "filedock_http_client_hangups", "Requests whose client hung up before its body was complete.", ["dialect"]
)
UPLOADS_IN_PROGRESS = Gauge(
    "filedock_uploads_in_progress",
    "Requests with a body (uploads) being received or answered now.",
    multiprocess_mode="livesum",
)
STORAGE_ERRORS = Counter(
    "filedock_storage_errors", "Requests failed by the database or blob store (503, or a missing blob)."
)
MAINTENANCE_RUNS = Counter("filedock_maintenance_runs", "Background maintenance rounds run.", ["task"])
MAINTENANCE_REMOVED = Counter(
    "filedock_maintenance_removed", "What background maintenance removed.", ["kind"]
)
MAINTENANCE_FAILURES = Counter("filedock_maintenance_failures", "Background maintenance rounds that failed.")


class RequestMetrics:
    """The access log's observer: tallies the answered requests in plain dicts of this process,
    and adds the tallies to the metrics above in `flush`.

    In multiprocess mode each update of a metric is a locked write to a memory-mapped file, and
    a request made four (count, duration sum and bucket, bytes): a fifth of the CPU of a
    retrieve. A flush writes each label set once, however many requests it answered. It runs
    every `FLUSH_SECONDS` (`flush_forever`), before this worker renders a scrape, and at
    shutdown, each time after the access log has handed over the exchanges still waiting: a
    scrape is exact for the worker that answers it and at most `FLUSH_SECONDS` (and the access
    log's batch) behind for the others. The uploads gauge goes up at once (only uploads pay
    for it) and down with the batch.
    """

    def __init__(self) -> None:
        self._answered: dict[tuple[str, str, str, int], _Tally] = {}

    def started(self, exchange: Exchange) -> None:
        UPLOADS_IN_PROGRESS.inc()  # the access log tells of requests with a body only

    def answered(self, exchanges: Sequence[Exchange]) -> None:
        answered = self._answered
        for exchange in exchanges:
            if exchange.has_body:
                UPLOADS_IN_PROGRESS.dec()
            key = (exchange.dialect, exchange.route, exchange.method, exchange.status)
            tally = answered.get(key)
            if tally is None:
                tally = answered[key] = _Tally()
            tally.add(exchange)

    def flush(self) -> None:
        """Add what was tallied since the last flush to the metrics (and their files)."""
        answered, self._answered = self._answered, {}
        per_dialect: dict[str, list[int]] = {}  # received, sent, hang-ups
        storage_errors = 0
        for (dialect, route, method, status), tally in answered.items():
            REQUESTS.labels(dialect, route, method, str(status)).inc(tally.count)
            add_observations(DURATION.labels(dialect, route, method), tally.total, tally.buckets)
            counts = per_dialect.setdefault(dialect, [0, 0, 0])
            counts[0] += tally.received
            counts[1] += tally.sent
            counts[2] += tally.hangups
            storage_errors += tally.storage_errors
        for dialect, (received, sent, hangups) in per_dialect.items():
            for metric, amount in ((RECEIVED, received), (SENT, sent), (HANGUPS, hangups)):
                if amount:
                    metric.labels(dialect).inc(amount)
        if storage_errors:
            STORAGE_ERRORS.inc(storage_errors)

    async def flush_forever(self, interval: float = FLUSH_SECONDS) -> None:
        """Flush every `interval` seconds until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(interval)
                self.flush()
        finally:
            self.flush()


class _Tally:
    """Requests of one label set since the last flush: their summed duration and duration
    histogram (one count per bucket, not cumulative, as prometheus-client keeps it), whose
    total is their number, and their bytes, hang-ups and storage errors."""

    __slots__ = ("buckets", "hangups", "received", "sent", "storage_errors", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.buckets = [0] * len(_UPPER_BOUNDS)
        self.received = self.sent = self.hangups = self.storage_errors = 0

    def add(self, exchange: Exchange) -> None:
        self.total += exchange.duration
        self.buckets[bisect.bisect_left(_UPPER_BOUNDS, exchange.duration)] += 1
        self.received += exchange.bytes_in
        self.sent += exchange.bytes_out
        self.hangups += exchange.hung_up
        self.storage_errors += exchange.storage_error

    @property
    def count(self) -> int:
        return sum(self.buckets)


def add_observations(histogram: Histogram, total: float, buckets: Sequence[int]) -> None:
    """What `histogram.observe` would have done for observations summing to `total`, with
    `buckets[i]` of them in bucket i (the first whose upper bound is at least the value).

    prometheus-client has no public call to add many observations at once, so this is the one
    place that reaches into a labelled `Histogram`: `_sum` and `_buckets`, one value per bucket,
    not cumulative. Checked on 0.26; tests/unit/test_metrics.py
    checks that this and `observe` give the same exposition, and pyproject pins the version.
    """
    histogram._sum.inc(total)
    for value, count in zip(histogram._buckets, buckets, strict=True):
        if count:
            value.inc(count)


def observe_round(report: RoundReport) -> None:
    """Count one background maintenance round (`Maintenance`'s observer)."""
    if report.failed:
        MAINTENANCE_FAILURES.inc()
        return
    if report.sweep is not None:
        MAINTENANCE_RUNS.labels("sweep").inc()
        MAINTENANCE_REMOVED.labels("expired_files").inc(report.sweep.expired_files)
        MAINTENANCE_REMOVED.labels("expired_uploads").inc(report.sweep.expired_uploads)
        MAINTENANCE_REMOVED.labels("stale_temporaries").inc(report.sweep.temporaries)
    if report.gc is not None:
        MAINTENANCE_RUNS.labels("gc").inc()
        MAINTENANCE_REMOVED.labels("unreferenced_blobs").inc(report.gc.removed)


class UsageCache:
    """`all_usage()` answers, kept for `USAGE_TTL_SECONDS`: a scrape every few seconds from each
    of several Prometheus servers costs the database one query per interval."""

    def __init__(self) -> None:
        self._usage: list[ProjectUsage] = []
        self._read_at = float("-inf")

    def fresh(self) -> list[ProjectUsage] | None:
        return self._usage if time.monotonic() - self._read_at < USAGE_TTL_SECONDS else None

    def keep(self, usage: list[ProjectUsage]) -> None:
        self._usage, self._read_at = usage, time.monotonic()


class _UsageCollector(Collector):
    def __init__(self, usage: Iterable[ProjectUsage]) -> None:
        self.usage = list(usage)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = [
            ("filedock_project_stored_bytes", "Bytes of live files a project holds.", "bytes"),
            ("filedock_project_files", "Live files a project holds.", "files"),
            ("filedock_project_quota_bytes", "The project's storage quota in bytes.", "max_bytes"),
            ("filedock_project_quota_files", "The project's file-count quota.", "max_files"),
        ]
        for name, help_text, attribute in families:
            family = GaugeMetricFamily(name, help_text, labels=["project"])
            family.samples = [Sample(name, {"project": u.name}, getattr(u, attribute)) for u in self.usage]
            yield family


def exposition(usage: Iterable[ProjectUsage]) -> bytes:
    """The text a scrape gets: every process's counters (multiprocess mode) or this one's, and
    the projects' usage."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (REQUESTS, DURATION, RECEIVED, SENT, HANGUPS, UPLOADS_IN_PROGRESS):
            registry.register(collector)
        for collector in (STORAGE_ERRORS, MAINTENANCE_RUNS, MAINTENANCE_REMOVED, MAINTENANCE_FAILURES):
            registry.register(collector)
    registry.register(_UsageCollector(usage))
    return generate_latest(registry)
