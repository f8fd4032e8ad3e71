"""Prometheus metrics, `filedock_*`, through prometheus-client.

With several workers each process counts on its own; `filedock serve` sets
`PROMETHEUS_MULTIPROC_DIR` to a fresh directory (`<data_dir>/.metrics`) before any worker
starts, so the counters live in files there and a scrape of any worker sums them all. Without
that variable (one process, or another ASGI server) the process's own registry is served.

Per-project usage is read from the database when scraped, at most every `USAGE_TTL_SECONDS`.
"""

import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

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
# The file of one process's live gauges, as prometheus-client names it.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

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
    """The access log's observer: counts each request as it starts and as it ends.

    The labelled children are kept per label set: `labels()` takes a lock and builds a key each
    time, a cost every request would pay (the label sets are few: dialects, routes, statuses).
    """

    def __init__(self) -> None:
        self._answered: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}
        self._bytes: dict[str, tuple[Any, Any, Any]] = {}

    def started(self, exchange: Exchange) -> None:
        if exchange.has_body:
            UPLOADS_IN_PROGRESS.inc()

    def finished(self, exchange: Exchange) -> None:
        if exchange.has_body:
            UPLOADS_IN_PROGRESS.dec()
        requests, duration = self._answered_children(exchange)
        requests.inc()
        duration.observe(exchange.duration)
        received, sent, hangups = self._bytes_children(exchange.dialect)
        if exchange.bytes_in:
            received.inc(exchange.bytes_in)
        if exchange.bytes_out:
            sent.inc(exchange.bytes_out)
        if exchange.hung_up:
            hangups.inc()
        if exchange.storage_error:
            STORAGE_ERRORS.inc()

    def _answered_children(self, exchange: Exchange) -> tuple[Any, Any]:
        key = (exchange.dialect, exchange.route, exchange.method, exchange.status)
        children = self._answered.get(key)
        if children is None:
            dialect, route, method, status = key
            children = (
                REQUESTS.labels(dialect, route, method, str(status)),
                DURATION.labels(dialect, route, method),
            )
            self._answered[key] = children
        return children

    def _bytes_children(self, dialect: str) -> tuple[Any, Any, Any]:
        children = self._bytes.get(dialect)
        if children is None:
            children = (RECEIVED.labels(dialect), SENT.labels(dialect), HANGUPS.labels(dialect))
            self._bytes[dialect] = children
        return children


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
    directory = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if directory:
        forget_dead_workers(directory)
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (REQUESTS, DURATION, RECEIVED, SENT, HANGUPS, UPLOADS_IN_PROGRESS):
            registry.register(collector)
        for collector in (STORAGE_ERRORS, MAINTENANCE_RUNS, MAINTENANCE_REMOVED, MAINTENANCE_FAILURES):
            registry.register(collector)
    registry.register(_UsageCollector(usage))
    return generate_latest(registry)


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges (`filedock_uploads_in_progress`) of workers that are gone. A worker
    killed mid-request (out of memory, SIGKILL) never took its uploads back, and its file would
    count them for ever; whoever scrapes next notices the process is gone. Counters stay: what a
    dead worker counted did happen."""
    for name in os.listdir(directory):
        match = _LIVE_GAUGE_FILE.fullmatch(name)
        if match is not None and not _is_running(int(match[1])):
            multiprocess.mark_process_dead(int(match[1]), directory)  # type: ignore[no-untyped-call]


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal is sent: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's
    return True
